#!/usr/bin/env python3
"""IPv6 socket options of an AF_INET6 server, for 032-shim6.bats.

    ip6opts.py PORT COUNT

Prints what setsockopt answers for values out of range and what
getsockopt reads back (IPV6_TCLASS, IPV6_UNICAST_HOPS, IPV6_MTU_DISCOVER,
IPV6_MTU), then listens on [::]:PORT with IPV6_TCLASS 0x28,
IPV6_UNICAST_HOPS 17 and IP_TOS 0x10 (which is for IPv4-mapped
connections only) and serves COUNT connections: reads "hi", answers 100
bytes, waits for the peer's FIN, closes. For the first it prints the
accepted socket's options ("child ...").
"""
import errno
import socket
import sys

IPV6_MTU_DISCOVER = 23  # Python names neither
IPV6_MTU = 24


def try_set(s, name, opt, v):
    try:
        s.setsockopt(socket.IPPROTO_IPV6, opt, v)
        r = "0"
    except OSError as e:
        r = errno.errorcode.get(e.errno, str(e.errno))
    print("set", name, v, r, flush=True)


def get(s, opt):
    try:
        return s.getsockopt(socket.IPPROTO_IPV6, opt)
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def main():
    port, count = int(sys.argv[1]), int(sys.argv[2])
    ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    print("default tclass", get(ls, socket.IPV6_TCLASS), "hops", get(ls, socket.IPV6_UNICAST_HOPS),
          "pmtud", get(ls, IPV6_MTU_DISCOVER), "mtu", get(ls, IPV6_MTU), flush=True)
    for name, opt, v in (("TCLASS", socket.IPV6_TCLASS, 256), ("TCLASS", socket.IPV6_TCLASS, -2),
                         ("HOPS", socket.IPV6_UNICAST_HOPS, 256), ("HOPS", socket.IPV6_UNICAST_HOPS, -2),
                         ("PMTUD", IPV6_MTU_DISCOVER, 6), ("MTU", IPV6_MTU, 1279), ("MTU", IPV6_MTU, 1280)):
        try_set(ls, name, opt, v)
    try_set(ls, "TCLASS", socket.IPV6_TCLASS, 0x2b)
    print("tclass", hex(get(ls, socket.IPV6_TCLASS)), flush=True)
    try_set(ls, "HOPS", socket.IPV6_UNICAST_HOPS, 0)
    print("hops", get(ls, socket.IPV6_UNICAST_HOPS), flush=True)
    try_set(ls, "HOPS", socket.IPV6_UNICAST_HOPS, -1)
    print("hops", get(ls, socket.IPV6_UNICAST_HOPS), flush=True)
    ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, 0x28)
    ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 17)
    ls.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x10)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("::", port))
    ls.listen(4)
    ls.settimeout(30)
    print("listening", flush=True)
    for i in range(count):
        c, _ = ls.accept()
        c.settimeout(30)
        if i == 0:
            print("child tclass", hex(get(c, socket.IPV6_TCLASS)), "hops", get(c, socket.IPV6_UNICAST_HOPS),
                  "pmtud", get(c, IPV6_MTU_DISCOVER), "mtu", get(c, IPV6_MTU), flush=True)
        c.recv(2)
        c.sendall(b"x" * 100)
        while c.recv(100):
            pass
        c.close()


if __name__ == "__main__":
    main()
