#!/usr/bin/env python3
"""Options and shutdown on an inherited connection (issue 14, item 6).

    forkopts.py PEER_ADDR PORT

Connects to an echo server (echo_server.py), has 1000 bytes echoed, forks,
and in the child reads TCP_INFO, sets TCP_CONGESTION and other options on
the inherited socket and reads them back, writes, and shuts the
sending side down; the parent, which still holds the socket, then reads the
echo up to the peer's EOF. Prints one line per result; the same lines on
the kernel's TCP and under ustcp (where the parent's stack serves the
socket and the child's calls must reach it). Exit status 0 if the child and
the parent both finished.
"""
import os
import socket
import struct
import sys

import shimlib

addr, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((addr, port), timeout=10)
TCP, SOL = socket.IPPROTO_TCP, socket.SOL_SOCKET


def opt(level, name, value):
    try:
        s.setsockopt(level, name, value)
        return "%d" % s.getsockopt(level, name)
    except OSError as e:
        return "errno %d" % e.errno


def congestion(name):
    try:
        s.setsockopt(TCP, socket.TCP_CONGESTION, name)
        return s.getsockopt(TCP, socket.TCP_CONGESTION, 16).rstrip(b"\0").decode()
    except OSError as e:
        return "errno %d" % e.errno


def tcp_info():
    """TCP_INFO's state, whether an MSS and a round trip are known, and the
    bytes acknowledged so far (struct tcp_info: tcpi_state at 0, snd_mss at
    16, rtt at 68, bytes_acked at 120: the SYN counts, as in Linux)."""
    try:
        ti = s.getsockopt(TCP, socket.TCP_INFO, 232)
    except OSError as e:
        return "errno %d" % e.errno
    state, = struct.unpack_from("B", ti, 0)
    mss, = struct.unpack_from("I", ti, 16)
    rtt, = struct.unpack_from("I", ti, 68)
    acked, = struct.unpack_from("Q", ti, 120)
    return "state %d mss>0 %s rtt>0 %s acked %d" % (state, mss > 0, rtt > 0, acked)


s.sendall(b"y" * 1000)
got = 0
while got < 1000:
    got += len(s.recv(1000 - got))
pid = os.fork()
if pid == 0:
    out = ["child TCP_INFO %s" % tcp_info(),
           "child TCP_CONGESTION %s" % congestion(b"reno"),
           "child TCP_CONGESTION nosuch %s" % congestion(b"nosuch"),
           "child TCP_NODELAY %s" % opt(TCP, socket.TCP_NODELAY, 1),
           "child SO_KEEPALIVE %s" % opt(SOL, socket.SO_KEEPALIVE, 1),
           "child TCP_KEEPIDLE %s" % opt(TCP, socket.TCP_KEEPIDLE, 77),
           "child TCP_USER_TIMEOUT %s" % opt(TCP, socket.TCP_USER_TIMEOUT, 5000)]
    s.sendall(b"x" * 100000)
    try:
        s.shutdown(socket.SHUT_WR)
        out.append("child shutdown 0")
    except OSError as e:
        out.append("child shutdown errno %d" % e.errno)
    print("\n".join(out), flush=True)
    os._exit(0)
_, status = os.waitpid(pid, 0)
print("parent TCP_NODELAY %d" % s.getsockopt(TCP, socket.TCP_NODELAY))
print("parent TCP_KEEPIDLE %d" % s.getsockopt(TCP, socket.TCP_KEEPIDLE))
print("parent TCP_CONGESTION %s" % s.getsockopt(TCP, socket.TCP_CONGESTION, 16).rstrip(b"\0").decode())
print("parent echoed %d more, then EOF" % shimlib.read_to_eof(s))
s.close()
sys.exit(0 if status == 0 else 1)
