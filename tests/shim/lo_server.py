#!/usr/bin/env python3
"""A server on the wildcard address that a client on the same host reaches
over loopback, as well as the peer over the link (issue 14, item 11).

    lo_server.py PORT N [::] [--opts]

Listens on 0.0.0.0:PORT (with "::", on [::]:PORT, an AF_INET6 socket with
IPV6_V6ONLY as the kernel's bindv6only leaves it) and serves N
connections one by one (epoll waits
for the listener first, as event loops do): reads a line, answers "NAME
from ADDR to ADDR" with its peer's and its own address (no ports) and
closes. Prints the same lines; exits after N.

--opts: the listener gets options before listen() (and TCP_KEEPCNT after
it), and each connection's line ends with what its accepted socket reads
of them: a child has its listener's, on Linux over loopback as over the
link.
"""
import select
import socket
import sys

TCP_INQ, TCP_THIN_LINEAR_TIMEOUTS, SO_TXREHASH = 36, 16, 74
OPTS = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1), (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
        (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 77), (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 11),
        (socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 5000), (socket.IPPROTO_TCP, TCP_INQ, 1),
        (socket.IPPROTO_TCP, TCP_THIN_LINEAR_TIMEOUTS, 1), (socket.SOL_SOCKET, SO_TXREHASH, 0),
        (socket.IPPROTO_IP, socket.IP_TOS, 0x20), (socket.IPPROTO_IP, socket.IP_TTL, 33)]
AFTER = [(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 4)]

args = [a for a in sys.argv[1:] if a != "--opts"]
opts = "--opts" in sys.argv
port, n = int(args[0]), int(args[1])
any_addr = args[2] if len(args) > 2 else "0.0.0.0"
ls = socket.socket(socket.AF_INET6 if ":" in any_addr else socket.AF_INET)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if opts:
    for level, name, v in OPTS:
        ls.setsockopt(level, name, v)
    ls.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"reno")
ls.bind((any_addr, port))
ls.listen(8)
for level, name, v in AFTER if opts else ():
    ls.setsockopt(level, name, v)
ep = select.epoll()
ep.register(ls.fileno(), select.EPOLLIN)
for _ in range(n):
    if not ep.poll(20):
        print("timed out")
        break
    c, peer = ls.accept()
    c.settimeout(10)
    name = c.makefile("rb").readline().decode().strip()
    line = "%s from %s to %s" % (name, peer[0], c.getsockname()[0])
    if opts:
        got = [str(c.getsockopt(level, o)) for level, o, _ in OPTS + AFTER]
        got.append(c.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\0").decode())
        line += " opts " + " ".join(got)
    c.sendall((line + "\n").encode())
    c.close()
    print(line, flush=True)
