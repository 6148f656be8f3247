#!/usr/bin/env python3
"""A server on the wildcard address that a client on the same host reaches
over loopback, as well as the peer over the link (issue 14, item 11).

    lo_server.py PORT N [::]

Listens on 0.0.0.0:PORT (with "::", on [::]:PORT, an AF_INET6 socket with
IPV6_V6ONLY as the kernel's bindv6only leaves it) and serves N
connections one by one (epoll waits
for the listener first, as event loops do): reads a line, answers "NAME
from ADDR to ADDR" with its peer's and its own address (no ports) and
closes. Prints the same lines; exits after N.
"""
import select
import socket
import sys

port, n = int(sys.argv[1]), int(sys.argv[2])
any_addr = sys.argv[3] if len(sys.argv) > 3 else "0.0.0.0"
ls = socket.socket(socket.AF_INET6 if ":" in any_addr else socket.AF_INET)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((any_addr, port))
ls.listen(8)
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
    c.sendall((line + "\n").encode())
    c.close()
    print(line, flush=True)
