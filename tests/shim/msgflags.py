#!/usr/bin/env python3
"""recv and send flags on a TCP socket, and urgent data both ways (issue
14, item 10): what a program sees on Linux's TCP.

    msgflags.py peer ADDR PORT     the kernel peer: listens, plays its part
    msgflags.py client ADDR PORT   the program: prints what it sees

MSG_PEEK, MSG_TRUNC (TCP discards), MSG_WAITALL, MSG_DONTWAIT; MSG_OOB
with no urgent data (EINVAL), SIOCATMARK, SO_OOBINLINE; send(MSG_OOB)
(the peer reads the last byte out of band: its report comes back); the
peer's urgent byte (a read stops at the mark, SIOCATMARK, recv(MSG_OOB),
select's exceptional set), and with SO_OOBINLINE in band.
"""
import fcntl
import select
import socket
import struct
import sys
import time

from shimlib import attempt

SIOCATMARK = 0x8905


def atmark(s):
    return struct.unpack("i", fcntl.ioctl(s, SIOCATMARK, b"\0" * 4))[0]


def readn(s, n):
    b = b""
    while len(b) < n:
        got = s.recv(n - len(b))
        if not got:
            raise SystemExit("EOF")
        b += got
    return b


def peer(addr, port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen()
    c, _ = ls.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.sendall(b"hello world")
    readn(c, 2)                       # "go"
    c.sendall(b"x" * 10)
    time.sleep(0.3)
    c.sendall(b"y" * 10)
    readn(c, 2)                       # "oo": the client's urgent send follows
    time.sleep(0.3)
    oob = attempt(lambda: c.recv(10, socket.MSG_OOB | socket.MSG_DONTWAIT))
    inband = c.recv(100)
    c.sendall(("oob=%r inband=%r\n" % (oob, inband)).encode().ljust(64))
    readn(c, 2)                       # "ur": send urgent data
    c.sendall(b"abc")
    c.send(b"XY", socket.MSG_OOB)
    c.sendall(b"tail")
    readn(c, 2)                       # "in": again, for SO_OOBINLINE
    c.sendall(b"12")
    c.send(b"3", socket.MSG_OOB)
    c.sendall(b"45")
    readn(c, 2)
    c.close()


def client(addr, port):
    s = socket.create_connection((addr, port), timeout=10)
    s.settimeout(None)
    time.sleep(0.3)
    print("peek 5", attempt(lambda: s.recv(5, socket.MSG_PEEK)))
    print("peek all", attempt(lambda: s.recv(100, socket.MSG_PEEK)))
    print("trunc 3", attempt(lambda: len(s.recv(3, socket.MSG_TRUNC))))
    print("after trunc", attempt(lambda: s.recv(100)))
    print("oob none", attempt(lambda: s.recv(1, socket.MSG_OOB | socket.MSG_DONTWAIT)))
    print("atmark", atmark(s), "oobinline", s.getsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE))
    s.sendall(b"go")
    print("waitall", attempt(lambda: len(s.recv(20, socket.MSG_WAITALL))))
    print("dontwait", attempt(lambda: s.recv(10, socket.MSG_DONTWAIT)))
    s.sendall(b"oo")
    print("send oob", s.send(b"xyz", socket.MSG_OOB))
    print("peer:", readn(s, 64).decode().strip())
    s.sendall(b"ur")
    time.sleep(0.3)
    r, _, x = select.select([s], [], [s], 1)
    print("select r", r != [], "x", x != [])
    print("atmark", atmark(s), "recv", s.recv(100), "atmark", atmark(s))
    print("oob", attempt(lambda: s.recv(1, socket.MSG_OOB)), "then", s.recv(100))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
    s.sendall(b"in")
    time.sleep(0.3)
    print("inline", s.recv(100), s.recv(100), attempt(lambda: s.recv(100, socket.MSG_DONTWAIT)))
    s.sendall(b"ok")
    print("end", s.recv(100))
    s.close()


if sys.argv[1] == "peer":
    peer(sys.argv[2], int(sys.argv[3]))
else:
    client(sys.argv[2], int(sys.argv[3]))
