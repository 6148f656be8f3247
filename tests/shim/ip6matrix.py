#!/usr/bin/env python3
"""Every IPPROTO_IPV6 option number on an AF_INET6 TCP socket, for
061-opts.bats: what getsockopt reads by default, what setsockopt answers
for a few values (ints in and out of range, 1 byte, none, a NULL
pointer, 8, 20 and 32 bytes) and what getsockopt reads after each, on a
fresh socket per option. The bats test runs it on the kernel and under
the library and compares the two outputs line by line.

    ip6matrix.py fresh
    ip6matrix.py connected ADDR6 PORT ADDR4   (a peer listening on both)

"connected" repeats the defaults, and a few sets, on a socket connected
to [ADDR6]:PORT, and tries IPV6_ADDRFORM there and on one connected to
the IPv4-mapped ADDR4.
"""
import errno
import socket
import struct
import sys

from shimlib import cmsg_list, sockopt_hex

OPTS = list(range(1, 81))
# in6_flowlabel_req: dst, label, action, share, flags, expires, linger
FL_REQ = struct.Struct("16sIBBHHH4x")


def err(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def get(s, opt, buflen=64, level=socket.IPPROTO_IPV6):
    return sockopt_hex(s, level, opt, buflen)


def cmsgs(s, buflen):
    """IPV6_2292PKTOPTIONS's control messages."""
    return cmsg_list(get(s, 6, buflen))


def put(s, opt, v):
    try:
        if v is None:
            s.setsockopt(socket.IPPROTO_IPV6, opt, None, 4)
        elif isinstance(v, int):
            s.setsockopt(socket.IPPROTO_IPV6, opt, v)
        else:
            s.setsockopt(socket.IPPROTO_IPV6, opt, v)
        return "ok"
    except OSError as e:
        return err(e)


def sockaddr6(addr):
    return struct.pack("=H", socket.AF_INET6) + bytes(6) + socket.inet_pton(socket.AF_INET6, addr) + bytes(4)


def group_req(family, addr):
    # struct group_req: u32 interface, pad, sockaddr_storage (128)
    if family == socket.AF_INET6:
        ss = sockaddr6(addr)
    else:
        ss = struct.pack("=H", socket.AF_INET) + bytes(2) + socket.inet_aton(addr)
    return struct.pack("=I4x", 0) + ss + bytes(128 - len(ss))


VALUES = [1, 0, 2, -1, 255, 256, 1280, 0x100, 0x402, 0x3, 0xc, 0x1000000, b"\x01", b"", None, bytes(8),
          b"\x00\x00\x01\x04\x00\x00\x00\x00", bytes(20), bytes(32),
          FL_REQ.pack(bytes(16), 0, 1, 0, 0, 0, 0), FL_REQ.pack(bytes(16), 0x12345, 0, 0, 1, 0, 0),
          FL_REQ.pack(bytes(16), 0, 0, 0, 4, 0, 0), group_req(socket.AF_INET, "224.0.0.1"),
          group_req(socket.AF_INET6, "::1")]


def show(v):
    if v is None:
        return "NULL"
    if isinstance(v, int):
        return str(v)
    return "b" + (v.hex() or "-")


def matrix():
    for opt in OPTS:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        print(opt, "default", get(s, opt), "len1", get(s, opt, 1), "len4", get(s, opt, 4), flush=True)
        for v in VALUES:
            print(opt, show(v), put(s, opt, v), get(s, opt), flush=True)
        s.close()


def pktoptions():
    """The RFC 2292 IPV6_PKTOPTIONS a socket reads with the receive
    options on (no segment received: from the socket's own state)."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    print("pktoptions none", cmsgs(s, 256))
    for opt in (49, 51, 66, 2, 8, 11):
        s.setsockopt(socket.IPPROTO_IPV6, opt, 1)
    print("pktoptions all", cmsgs(s, 512))
    print("pktoptions 20", cmsgs(s, 20))
    print("pktoptions 40", cmsgs(s, 40))
    print("pktinfo set", put(s, 50, struct.pack("=16sI", socket.inet_pton(socket.AF_INET6, "2001:db8::1"), 1)))
    print("pktoptions sticky", cmsgs(s, 512))
    print("pktinfo short", put(s, 50, bytes(19)), "empty", put(s, 50, b""))
    print("pktoptions set", put(s, 6, b""), put(s, 6, bytes(8)), put(s, 6, bytes(16)))
    s.close()


def connected(addr6, port, addr4):
    s = socket.create_connection((addr6, port), timeout=10)
    for opt in OPTS:
        print("conn", opt, "default", get(s, opt), flush=True)
    # IPV6_TCLASS drops the route (Linux's sk_dst_reset): no path MTU
    # until a segment goes again.
    for opt, v in ((26, 1), (26, 0), (24, 1400), (67, 0x20), (16, 7), (61, 0)):
        print("conn", opt, show(v), put(s, opt, v), get(s, opt), flush=True)
    print("conn addrform", put(s, 1, socket.AF_INET), get(s, 1))
    s.sendall(b"x")
    s.recv(1)
    print("conn routed again", get(s, 24), get(s, 61))
    s.close()
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(("::ffff:" + addr4, port))
    print("mapped addrform", get(s, 1), put(s, 1, socket.AF_INET6), put(s, 1, socket.AF_INET), get(s, 1))
    print("mapped after", get(s, 67), get(s, socket.SO_DOMAIN, 4, socket.SOL_SOCKET),
          get(s, socket.IP_TOS, 4, socket.IPPROTO_IP), s.getpeername()[0] == "::ffff:" + addr4)
    s.sendall(b"ok")
    print("mapped send", s.recv(2))
    s.close()


def main():
    if sys.argv[1] == "fresh":
        matrix()
        pktoptions()
    else:
        connected(sys.argv[2], int(sys.argv[3]), sys.argv[4])


if __name__ == "__main__":
    main()
