#!/usr/bin/env python3
"""Every IPPROTO_IP option number on a TCP socket of each family, for
061-opts.bats: what getsockopt reads by default, what setsockopt answers
for a few values (ints in and out of range, 1 byte, none, a NULL
pointer, 8, 12 and 40 bytes, a group request) and what getsockopt reads
after each, on a fresh socket per option; then the ancillary data
IP_PKTOPTIONS gives with the receive options on, and IP_PROTOCOL (the
local port) once bound; getsockname of a socket not yet connected. The
bats test runs it on the kernel and under
the library and compares the two outputs line by line.

    ip4matrix.py fresh
    ip4matrix.py wire ADDR PORT OURS  (an echo server there, 3 connections;
                                       OURS: our address)
    ip4matrix.py portrange ADDR PORT OURS  (a server there that takes 13
                                            connections and holds them)

"wire" tries IP_MINTTL against the peer's TTL (64): 255 before connect
(the SYN-ACK is dropped: the connect times out), 64 (connects), and 255
in the middle of a connection (the echo's reply is dropped until it is
set back to 0, then its retransmission arrives); then IP_BIND_ADDRESS_NO_PORT
(a bind to OURS:0 has no port until connect).
"""
import errno
import socket
import struct
import sys

from shimlib import cmsg_list, sockopt_hex

OPTS = list(range(1, 81))
def err(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def get(s, opt, buflen=64, level=socket.IPPROTO_IP):
    return sockopt_hex(s, level, opt, buflen)


def put(s, opt, v):
    try:
        if v is None:
            s.setsockopt(socket.IPPROTO_IP, opt, None, 4)
        else:
            s.setsockopt(socket.IPPROTO_IP, opt, v)
        return "ok"
    except OSError as e:
        return err(e)


MREQ = socket.inet_aton("224.0.0.1") + bytes(4)  # struct ip_mreq, any interface
VALUES = [1, 0, 2, -1, 255, 256, 0x10001, 0x7fff0400, b"\x01", b"", None, bytes(8), bytes(12), bytes(40),
          b"\x01\x01\x01\x00", MREQ]


def show(v):
    if v is None:
        return "NULL"
    if isinstance(v, int):
        return str(v)
    return "b" + (v.hex() or "-")


def matrix(family):
    for opt in OPTS:
        s = socket.socket(family, socket.SOCK_STREAM)
        print(family, opt, "default", get(s, opt), "len1", get(s, opt, 1), "len4", get(s, opt, 4), flush=True)
        for v in VALUES:
            print(family, opt, show(v), put(s, opt, v), get(s, opt), flush=True)
        s.close()


def cmsgs(s, buflen):
    """IP_PKTOPTIONS's control messages."""
    return cmsg_list(get(s, 9, buflen))


def pktoptions():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    print("pktoptions none", cmsgs(s, 256))
    for opt in (8, 12, 13):  # IP_PKTINFO, IP_RECVTTL, IP_RECVTOS
        s.setsockopt(socket.IPPROTO_IP, opt, 1)
    print("pktoptions all", cmsgs(s, 512))
    print("pktoptions 20", cmsgs(s, 20))
    s.bind(("0.0.0.0", 0))
    print("pktoptions bound", cmsgs(s, 512))
    print("protocol bound", get(s, 52) == struct.pack("=i", s.getsockname()[1]).hex())
    s.close()


IP_MINTTL = 21


def wire(addr, port):
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.setsockopt(socket.IPPROTO_IP, IP_MINTTL, 255)
    c.settimeout(2)
    try:
        c.connect((addr, port))
        print("minttl 255: connected", flush=True)
    except socket.timeout:
        print("minttl 255: timeout", flush=True)
    c.close()
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.setsockopt(socket.IPPROTO_IP, IP_MINTTL, 64)
    c.settimeout(10)
    c.connect((addr, port))
    c.sendall(b"hi")
    print("minttl 64:", c.recv(2), get(c, IP_MINTTL), flush=True)
    c.close()
    c = socket.create_connection((addr, port), timeout=10)
    c.setsockopt(socket.IPPROTO_IP, IP_MINTTL, 255)
    c.sendall(b"hi")
    c.settimeout(1)
    try:
        print("mid 255:", c.recv(2), flush=True)
    except socket.timeout:
        print("mid 255: nothing", flush=True)
    c.setsockopt(socket.IPPROTO_IP, IP_MINTTL, 0)
    c.settimeout(10)
    print("mid 0:", c.recv(2), flush=True)
    c.close()


def noport(addr, port, ours):
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.setsockopt(socket.IPPROTO_IP, 24, 1)  # IP_BIND_ADDRESS_NO_PORT
    c.bind((ours, 0))
    print("noport bound:", c.getsockname() == (ours, 0), flush=True)
    c.settimeout(10)
    c.connect((addr, port))
    a = c.getsockname()
    c.sendall(b"np")
    print("noport connected:", a[0] == ours, a[1] > 0, c.recv(2), flush=True)
    c.close()


def portrange(addr, port, ours):
    """IP_LOCAL_PORT_RANGE: the ports a connect, a bind to port 0 and a
    listen's own choice may take, as the namespace's ephemeral range
    narrowed by the socket's (each bound where it falls inside)."""
    R = 51  # IP_LOCAL_PORT_RANGE

    def rng(lo, hi):
        return struct.pack("I", lo | hi << 16)

    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        eph_lo, eph_hi = (int(x) for x in f.read().split())
    # ten ports for ten connections to one peer: the eleventh finds none
    cs = []
    for i in range(11):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setsockopt(socket.IPPROTO_IP, R, rng(40000, 40009))
        c.settimeout(10)
        try:
            c.connect((addr, port))
            cs.append(c)
        except OSError as e:
            print("range connect", i, err(e), flush=True)
            c.close()
    print("range ports", sorted(c.getsockname()[1] for c in cs) == list(range(40000, 40010)), flush=True)
    b = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    b.setsockopt(socket.IPPROTO_IP, R, rng(41000, 41004))
    b.bind((ours, 0))
    print("range bind", 41000 <= b.getsockname()[1] <= 41004, flush=True)
    l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    l.setsockopt(socket.IPPROTO_IP, R, rng(42000, 42000))
    l.listen(1)
    print("range listen", l.getsockname()[1], flush=True)
    def connected(family, lo, hi, to):
        c = socket.socket(family, socket.SOCK_STREAM)
        c.setsockopt(socket.IPPROTO_IP, R, rng(lo, hi))
        c.settimeout(10)
        c.connect((to, port))
        cs.append(c)
        return c.getsockname()[1]

    # a low bound under the namespace's range counts for nothing
    p = connected(socket.AF_INET, 1000, eph_lo + 20, addr)
    print("range low outside", eph_lo <= p <= eph_lo + 20, flush=True)
    # the high bound alone
    p = connected(socket.AF_INET, 0, eph_lo + 40, addr)
    print("range high alone", eph_lo <= p <= eph_lo + 40, flush=True)
    # an AF_INET6 socket's connect to an IPv4 peer
    p = connected(socket.AF_INET6, 44000, 44001, "::ffff:" + addr)
    print("range v6", p in (44000, 44001), flush=True)
    print("range lo > hi", put(socket.socket(), R, rng(45001, 45000)), flush=True)
    for c in cs + [b, l]:
        c.close()


def names():
    """getsockname of a socket never connected: no address until a
    connect chooses one (Linux's inet_rcv_saddr), a port once bound."""
    for family, any_addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        s = socket.socket(family, socket.SOCK_STREAM)
        print("name", family, "fresh", s.getsockname()[:2])
        s.bind((any_addr, 0))
        a = s.getsockname()
        print("name", family, "bound", a[0], a[1] > 0)
        s.close()


def main():
    if sys.argv[1] == "fresh":
        matrix(socket.AF_INET)
        matrix(socket.AF_INET6)
        pktoptions()
        names()
    elif sys.argv[1] == "portrange":
        portrange(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        wire(sys.argv[2], int(sys.argv[3]))
        noport(sys.argv[2], int(sys.argv[3]), sys.argv[4])


if __name__ == "__main__":
    main()
