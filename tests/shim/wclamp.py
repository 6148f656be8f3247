#!/usr/bin/env python3
"""TCP_WINDOW_CLAMP as Linux takes it (issue 14, item 10): what it reads
back before and after connect, and TCP_NOTSENT_LOWAT's readbacks.
ipsniff.py ... win, at the peer, shows the SYN's window and scale.

    wclamp.py ADDR PORT

Every result is printed: a value, or an errno name.
"""
import errno
import socket
import sys

T = socket.IPPROTO_TCP


def get(s):
    try:
        return s.getsockopt(T, socket.TCP_WINDOW_CLAMP)
    except OSError as e:
        return errno.errorcode[e.errno]


def put(s, v):
    try:
        s.setsockopt(T, socket.TCP_WINDOW_CLAMP, v)
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]


s = socket.socket()
# TCP_NOTSENT_LOWAT reads back what was set (0 fresh), -1 too.
n = getattr(socket, "TCP_NOTSENT_LOWAT", 25)
print("notsent_lowat", s.getsockopt(T, n), end=" ")
s.setsockopt(T, n, 16384)
print(s.getsockopt(T, n), end=" ")
s.setsockopt(T, n, -1)
print(s.getsockopt(T, n))
print("fresh", get(s))
for v in (100, 0, -1, 5000):
    print("set", v, put(s, v), get(s))
s.connect((sys.argv[1], int(sys.argv[2])))
print("connected", get(s))
print("set 0", put(s, 0), get(s))
print("set 20000", put(s, 20000), get(s))
s.shutdown(socket.SHUT_WR)
s.settimeout(10)
while s.recv(100):
    pass
s.close()
