#!/usr/bin/env python3
"""IPV6_AUTOFLOWLABEL and IPV6_MINHOPCOUNT on the wire, for 061-opts.bats:
connections to [ADDR]:PORT, an echo server, each sending "hi" and reading
it back:

    ip6label.py ADDR PORT

  auto    the default (net.ipv6.auto_flowlabels 1: a label per flow)
  nolabel IPV6_AUTOFLOWLABEL 0 before connect: label 0
  relabel IPV6_AUTOFLOWLABEL 0 after "hi", before "hi" again
  minhops IPV6_MINHOPCOUNT 255: the peer's SYN-ACK (hop limit 64) is
          dropped, connect times out after 2 s
  minok   IPV6_MINHOPCOUNT 64: connects

Prints "NAME PORT ok" or "NAME timeout" per connection, PORT ours, for the
capture on the peer to be read by.
"""
import socket
import sys

IPV6_AUTOFLOWLABEL = 70  # Python names neither
IPV6_MINHOPCOUNT = 73


def echo(c):
    c.sendall(b"hi")
    got = b""
    while len(got) < 2:
        b = c.recv(2 - len(got))
        if not b:
            raise OSError("EOF")
        got += b


def conn(name, addr, port, before=(), after=()):
    c = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    for opt, v in before:
        c.setsockopt(socket.IPPROTO_IPV6, opt, v)
    c.settimeout(2 if name == "minhops" else 10)
    try:
        c.connect((addr, port))
    except socket.timeout:
        print(name, "timeout", flush=True)
        c.close()
        return
    c.settimeout(10)
    echo(c)
    for opt, v in after:
        c.setsockopt(socket.IPPROTO_IPV6, opt, v)
        echo(c)
    print(name, c.getsockname()[1], "ok", "autoflowlabel", c.getsockopt(socket.IPPROTO_IPV6, IPV6_AUTOFLOWLABEL),
          flush=True)
    c.close()


def main():
    addr, port = sys.argv[1], int(sys.argv[2])
    conn("auto", addr, port)
    conn("nolabel", addr, port, before=((IPV6_AUTOFLOWLABEL, 0),))
    conn("relabel", addr, port, after=((IPV6_AUTOFLOWLABEL, 0),))
    conn("minhops", addr, port, before=((IPV6_MINHOPCOUNT, 255),))
    conn("minok", addr, port, before=((IPV6_MINHOPCOUNT, 64),))


if __name__ == "__main__":
    main()
