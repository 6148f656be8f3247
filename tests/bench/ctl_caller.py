#!/usr/bin/env python3
# The cheapest caller of a stack's socket dump, for tests/bench/ctl_flood:
# THREADS threads in one process ask back to back until the file DONE exists
# (at most SECONDS), and print how many dumps were answered.
#   ustcp:  connect to the control socket PATH and read the dump to its end,
#           as ustcp-stat does, without starting a process per request;
#   kernel: one sock_diag request for every IPv4 TCP socket (what ss -tan
#           asks the kernel) over NETLINK_SOCK_DIAG, read to NLMSG_DONE.
#
# It prints "ANSWERED CPU-SECONDS" (its own user and system time).
#
#   ctl_caller.py ustcp PATH THREADS DONE SECONDS
#   ctl_caller.py kernel - THREADS DONE SECONDS
import os
import socket
import struct
import sys
import threading
import time

kind, path, threads, done, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
end = time.monotonic() + seconds
count = [0]
lock = threading.Lock()

NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY = 4, 20
NLM_F_REQUEST, NLM_F_DUMP, NLMSG_DONE, NLMSG_ERROR = 1, 0x300, 3, 2


def ask_ustcp():
    s = socket.socket(socket.AF_UNIX)
    try:
        # Blocking: a full backlog (the stack paces its answers) makes
        # connect wait, as ustcp-stat's callers queue, instead of spin.
        s.connect(path)
        s.settimeout(5)
        got = b""
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            got += b
        return got.startswith(b"ustcp 1")
    except OSError:
        time.sleep(0.001)
        return False
    finally:
        s.close()


def ask_kernel():
    # struct inet_diag_req_v2: family, protocol, ext, pad, states, then an
    # empty inet_diag_sockid (48 bytes).
    req = struct.pack("=BBBBI", socket.AF_INET, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + bytes(48)
    msg = struct.pack("=IHHII", 16 + len(req), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + req
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
    try:
        s.settimeout(5)
        s.send(msg)
        while True:
            b = s.recv(1 << 16)
            off = 0
            while off + 16 <= len(b):
                length, typ = struct.unpack_from("=IH", b, off)
                if typ == NLMSG_DONE:
                    return True
                if typ == NLMSG_ERROR or length < 16:
                    return False
                off += (length + 3) & ~3
    except OSError:
        return False
    finally:
        s.close()


def caller():
    ask = ask_ustcp if kind == "ustcp" else ask_kernel
    while time.monotonic() < end and not os.path.exists(done):
        if ask():
            with lock:
                count[0] += 1


ts = [threading.Thread(target=caller) for _ in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
t = os.times()
print(count[0], "%.2f" % (t.user + t.system))
