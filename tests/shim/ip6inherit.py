#!/usr/bin/env python3
"""IPPROTO_IPV6 options a TCP socket keeps, across a socket's end and an
accept, for 061-opts.bats:

    ip6inherit.py ADDR6 PORT READY   (ADDR6: the listener's, :: for any)

1. A socket sets IPV6_RECVPKTINFO, IPV6_RECVTCLASS and a hop-by-hop
   options header (IPV6_HOPOPTS), reads them back and closes; the next
   socket reads the defaults (under ustcp it may be given the same slot,
   which must not remember them).
2. A listener on [ADDR6]:PORT with the same options writes READY and
   accepts one connection (from the peer): the accepted socket has the
   listener's options, as Linux's tcp_v6_syn_recv_sock copies them.
One line per reading; the bats test compares the kernel's and ustcp's.
"""
import ctypes
import errno
import socket
import sys

LIBC = ctypes.CDLL(None, use_errno=True)
RECVPKTINFO, RECVTCLASS, HOPOPTS = 49, 66, 54
# next header (ignored), length 0 (8 bytes), a PadN option of 4 bytes
HOP = bytes([0, 0, 1, 4, 0, 0, 0, 0])


def get(s, opt):
    buf = ctypes.create_string_buffer(64)
    n = ctypes.c_uint32(64)
    if LIBC.getsockopt(s.fileno(), socket.IPPROTO_IPV6, opt, buf, ctypes.byref(n)) < 0:
        return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
    return buf.raw[:n.value].hex() or "-"


def show(what, s):
    print("%s: recvpktinfo %s recvtclass %s hopopts %s" % (
        what, get(s, RECVPKTINFO), get(s, RECVTCLASS), get(s, HOPOPTS)))


def set_all(s):
    s.setsockopt(socket.IPPROTO_IPV6, RECVPKTINFO, 1)
    s.setsockopt(socket.IPPROTO_IPV6, RECVTCLASS, 1)
    s.setsockopt(socket.IPPROTO_IPV6, HOPOPTS, HOP)


def main():
    addr, port, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    for i in range(3):
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        show("fresh %d" % i, s)
        set_all(s)
        show("set %d" % i, s)
        s.close()
    lst = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    set_all(lst)
    lst.bind((addr, port))
    lst.listen(1)
    lst.settimeout(20)
    open(ready, "w").close()
    c, _ = lst.accept()
    show("accepted", c)
    c.close()
    lst.close()
    show("after", socket.socket(socket.AF_INET6, socket.SOCK_STREAM))


main()
