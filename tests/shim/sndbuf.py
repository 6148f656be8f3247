#!/usr/bin/env python3
"""How many bytes a socket with SO_SNDBUF set takes while the peer reads
nothing (issue 14, 13d).

    sndbuf.py PEER_ADDR PORT SNDBUF

Connects twice to a peer that accepts and never reads (SO_SNDBUF set
before connect, as Linux locks it then). On the first connection a
non-blocking send of 1 MB, then more such sends every 0.2 s until three
rounds take nothing; on the second a blocking send of 1 MB with
SO_SNDTIMEO 2 s, which returns what it wrote when the time is up. Prints
"first N", "nonblocking total N" and "blocking N".
"""
import socket
import sys
import time

addr, port, sndbuf = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
chunk = b"x" * 1000000


def connect():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    s.connect((addr, port))
    time.sleep(0.3)  # the handshake's last ACK and the window settle
    return s


s = connect()
s.setblocking(False)
first = s.send(chunk)
total, idle = first, 0
while idle < 3:
    time.sleep(0.2)
    took = 0
    try:
        while True:
            took += s.send(chunk)
    except BlockingIOError:
        pass
    total += took
    idle = idle + 1 if took == 0 else 0
print("first %d" % first)
print("nonblocking total %d" % total)

b = connect()
b.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, b"\x02\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0")
try:
    print("blocking %d" % b.send(chunk))
except OSError as e:
    print("blocking errno %d" % e.errno)
s.close()
b.close()
