#!/usr/bin/env python3
"""SO_RCVLOWAT and readiness (issue 14, b): poll and epoll report a socket
readable only once the low-water mark's worth of bytes is there, or the
peer's FIN, as Linux's tcp_poll does.

    rcvlowat.py peer ADDR PORT     the kernel peer: accepts one connection
    rcvlowat.py prog ADDR PORT     the program under test, connects to it

The peer sends on command: the program writes one byte N, the peer answers
with N * 100 bytes (N = 0: it closes, a FIN). The program prints one line
per check; the same lines on the kernel's TCP and under ustcp.
"""
import select
import socket
import sys
import time

import shimlib

role, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])

if role == "peer":
    c = shimlib.accept_one(addr, port)
    while True:
        b = c.recv(1)
        if not b or b[0] == 0:
            break
        c.sendall(b"p" * (b[0] * 100))
    c.close()
    sys.exit(0)

IN, RDHUP = select.POLLIN, select.POLLRDHUP
s = socket.create_connection((addr, port), timeout=10)
ep = select.epoll()
ep.register(s, select.EPOLLIN | select.EPOLLRDHUP)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1000)


def ready():
    """poll and the epoll, each after the bytes had time to arrive."""
    time.sleep(0.3)
    p = select.poll()
    p.register(s, IN | RDHUP)
    r = p.poll(0)
    e = ep.poll(0)
    return "poll %s epoll %s" % (r[0][1] if r else 0, e[0][1] if e else 0)


def ask(n):
    s.send(bytes([n]))


print("SO_RCVLOWAT", s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT))
ask(3)
print("300 of 1000:", ready())
ask(6)
print("900 of 1000:", ready())
ask(1)
print("1000 of 1000:", ready())
s.setblocking(False)
print("recv", len(s.recv(65536)))
print("after reading all:", ready())
ask(2)
print("200 of 1000:", ready())
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 150)
print("mark lowered to 150:", ready())
print("recv", len(s.recv(65536)))
ask(1)
print("100 of 150:", ready())
ask(0)
print("then the FIN:", ready())
print("recv", len(s.recv(65536)))
print("recv", len(s.recv(65536)))
s.close()
