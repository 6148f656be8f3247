#!/usr/bin/env python3
"""TCP_NOTSENT_LOWAT and writability (issue 14, b): Linux's socket takes
bytes, and polls writable, only while fewer than the mark are queued and
not yet sent.

    notsent.py peer ADDR PORT     the kernel peer: reads nothing for 2 s,
                                  then everything; prints how much
    notsent.py prog ADDR PORT     the program under test

The program writes 1000-byte chunks without blocking until the socket takes
no more, while the peer's window is closed; prints where it stopped; then
waits for the socket to poll writable again once the peer reads. The same
lines on the kernel's TCP and under ustcp.
"""
import select
import socket
import struct
import sys
import time

import shimlib

role, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
MARK = 16384

if role == "peer":
    c = shimlib.accept_one(addr, port, rcvbuf=32768)  # a small window, soon closed
    time.sleep(2)
    print("peer got", shimlib.read_to_eof(c), flush=True)
    sys.exit(0)


def writable(s):
    p = select.poll()
    p.register(s, select.POLLOUT)
    r = p.poll(0)
    return bool(r and r[0][1] & select.POLLOUT)


def notsent(s):
    # struct tcp_info: tcpi_notsent_bytes is the u32 at offset 144
    ti = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 280)
    return struct.unpack_from("I", ti, 144)[0]


s = socket.socket()
# A send buffer far above the mark: without it, writes would go on to 2 MB.
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
s.settimeout(10)
s.connect((addr, port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, MARK)
s.setblocking(False)
print("writable at first:", writable(s))
sent, end = 0, time.monotonic() + 1.5
while time.monotonic() < end:
    try:
        sent += s.send(b"w" * 1000)
    except BlockingIOError:
        # the stack may still be moving bytes: wait a little, then again
        time.sleep(0.05)
time.sleep(0.2)
# Linux stops within a segment train (its size goal, up to 64 kB) of the
# mark: 28960 unsent in one run (20 segments); ustcp within the pair's two
# skbs (about 4 kB).
n = notsent(s)
print("writable with the window closed:", writable(s))
print("unsent bytes at least the mark:", n >= MARK, "and below the mark + 64 kB:", n < MARK + 65536)
print("sent less than the peer's buffer + 256 kB:", sent < 32768 * 2 + 262144)
end = time.monotonic() + 10
while not writable(s) and time.monotonic() < end:
    time.sleep(0.01)
print("writable once the peer reads:", writable(s))
s.setblocking(True)
s.shutdown(socket.SHUT_WR)
print("unsent", n, file=sys.stderr)
print("sent", sent, file=sys.stderr)
s.close()
