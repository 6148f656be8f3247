#!/usr/bin/env python3
"""Fast Open on the client's side (issue 14): the stack keeps no cookies,
so it answers as Linux does with net.ipv4.tcp_fastopen's client bit off
(the bats test sets 0 in the namespace, for the kernel's run):
MSG_FASTOPEN fails with EOPNOTSUPP in any state, before anything else
(no EPIPE, no SIGPIPE), and TCP_FASTOPEN_CONNECT is checked, then refused.

    fastopen.py ADDR PORT   the program; ccinfo.py sink listens there
"""
import socket
import sys

from shimlib import attempt

MSG_FASTOPEN = 0x20000000
TCP_FASTOPEN_CONNECT = 30


def main(addr, port):
    s = socket.socket()
    print("sendto", attempt(lambda: s.sendto(b"x", MSG_FASTOPEN, (addr, port))))
    s.setblocking(False)
    print("sendto nonblocking", attempt(lambda: s.sendto(b"x", MSG_FASTOPEN, (addr, port))))
    print("send unconnected", attempt(lambda: s.send(b"x", MSG_FASTOPEN)))
    print("connect option", s.getsockopt(socket.IPPROTO_TCP, TCP_FASTOPEN_CONNECT),
          attempt(lambda: s.setsockopt(socket.IPPROTO_TCP, TCP_FASTOPEN_CONNECT, 2)),
          attempt(lambda: s.setsockopt(socket.IPPROTO_TCP, TCP_FASTOPEN_CONNECT, 1)),
          attempt(lambda: s.setsockopt(socket.IPPROTO_TCP, TCP_FASTOPEN_CONNECT, b"\x01")))
    s = socket.create_connection((addr, port), timeout=10)
    print("connected sendto", attempt(lambda: s.sendto(b"x", MSG_FASTOPEN, (addr, port))))
    print("connected sendmsg", attempt(lambda: s.sendmsg([b"x"], [], MSG_FASTOPEN)))
    print("send", s.send(b"abc"))
    s.shutdown(socket.SHUT_WR)
    print("answer", s.recv(2))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
