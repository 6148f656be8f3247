#!/usr/bin/env python3
"""IPv4 socket options on a TCP socket, as Linux takes them (issue 14,
items 10 and 13e): IP_TOS, IP_TTL, IP_MTU_DISCOVER and IP_MTU, with int
and 1-byte values, read back with 4- and 1-byte buffers. ipsniff.py, on
the peer's side, shows what went on the wire.

    ipopts.py client ADDR PORT PMTUDISC   the matrix; then TOS 0x28, TTL 33
                                          and the mode, connect, send; TOS
                                          0x10 and TTL -1, send again
    ipopts.py server ADDR PORT            a listener with TOS 0x48, TTL 17
                                          and IP_PMTUDISC_DONT: what the
                                          accepted socket reads, "hi", close

Every result is printed: a value as hex bytes, or an errno name.
"""
import errno
import socket
import sys
import time

IP = socket.IPPROTO_IP
IP_MTU_DISCOVER, IP_MTU = 10, 14


def get(s, name, size=4):
    try:
        return s.getsockopt(IP, name, size).hex()
    except OSError as e:
        return errno.errorcode[e.errno]


def put(s, name, v):
    try:
        s.setsockopt(IP, name, v)
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]


def matrix(s):
    print("fresh tos", get(s, socket.IP_TOS), "ttl", get(s, socket.IP_TTL),
          "pmtudisc", get(s, IP_MTU_DISCOVER), "mtu", get(s, IP_MTU))
    print("1-byte reads: tos", get(s, socket.IP_TOS, 1), "ttl", get(s, socket.IP_TTL, 1),
          "ttl in 2", get(s, socket.IP_TTL, 2))
    # The ECN bits are TCP's; a TOS is a byte.
    for v in (0xb7, 0x1ff, -1, b"\x29", b"\x29\x00", b""):
        print("tos", v, put(s, socket.IP_TOS, v), get(s, socket.IP_TOS))
    for v in (0, 1, 255, 256, -1, -2, 33, b"\x07", b""):
        print("ttl", v, put(s, socket.IP_TTL, v), get(s, socket.IP_TTL))
    for v in (0, 1, 2, 3, 4, 5, 6, -1, b"\x02"):
        print("pmtudisc", v, put(s, IP_MTU_DISCOVER, v), get(s, IP_MTU_DISCOVER))


def client(addr, port, pmtudisc):
    s = socket.socket()
    matrix(s)
    put(s, socket.IP_TOS, 0x28)
    put(s, socket.IP_TTL, 33)
    put(s, IP_MTU_DISCOVER, pmtudisc)
    s.connect((addr, port))
    print("connected tos", get(s, socket.IP_TOS), "ttl", get(s, socket.IP_TTL),
          "pmtudisc", get(s, IP_MTU_DISCOVER), "mtu", get(s, IP_MTU),
          "in 1", get(s, IP_MTU, 1), "in 2", get(s, IP_MTU, 2))
    s.sendall(b"hello")
    time.sleep(0.2)
    put(s, socket.IP_TOS, 0x10)
    put(s, socket.IP_TTL, -1)
    s.sendall(b"world")
    time.sleep(0.2)
    print("changed tos", get(s, socket.IP_TOS), "ttl", get(s, socket.IP_TTL))
    s.shutdown(socket.SHUT_WR)
    s.settimeout(10)
    while s.recv(100):
        pass
    s.close()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("", port))
    ls.listen()
    print("listener mtu", get(ls, IP_MTU))


def server(addr, port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    put(ls, socket.IP_TOS, 0x48)
    put(ls, socket.IP_TTL, 17)
    put(ls, IP_MTU_DISCOVER, 0)
    ls.bind((addr, port))
    ls.listen()
    print("listening", flush=True)
    c, _ = ls.accept()
    print("accepted tos", get(c, socket.IP_TOS), "ttl", get(c, socket.IP_TTL),
          "pmtudisc", get(c, IP_MTU_DISCOVER))
    c.sendall(b"hi")
    c.shutdown(socket.SHUT_WR)
    c.settimeout(10)
    while c.recv(100):
        pass
    # TIME-WAIT's last ACK has gone; the socket is still open.
    time.sleep(0.2)
    print("closed tos", get(c, socket.IP_TOS), "ttl", get(c, socket.IP_TTL), "mtu", get(c, IP_MTU))
    c.close()


if sys.argv[1] == "client":
    client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
else:
    server(sys.argv[2], int(sys.argv[3]))
