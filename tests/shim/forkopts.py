#!/usr/bin/env python3
"""Options and shutdown on an inherited connection (issue 14, item 6).

    forkopts.py PEER_ADDR PORT

Connects to an echo server (echo_server.py), forks, and in the child sets
and reads back options on the inherited socket, writes, and shuts the
sending side down; the parent, which still holds the socket, then reads the
echo up to the peer's EOF. Prints one line per result; the same lines on
the kernel's TCP and under ustcp (where the parent's stack serves the
socket and the child's calls must reach it). Exit status 0 if the child and
the parent both finished.
"""
import os
import socket
import sys

import shimlib

addr, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((addr, port), timeout=10)
TCP, SOL = socket.IPPROTO_TCP, socket.SOL_SOCKET


def opt(level, name, value):
    try:
        s.setsockopt(level, name, value)
        return "%d" % s.getsockopt(level, name)
    except OSError as e:
        return "errno %d" % e.errno


pid = os.fork()
if pid == 0:
    out = ["child TCP_NODELAY %s" % opt(TCP, socket.TCP_NODELAY, 1),
           "child SO_KEEPALIVE %s" % opt(SOL, socket.SO_KEEPALIVE, 1),
           "child TCP_KEEPIDLE %s" % opt(TCP, socket.TCP_KEEPIDLE, 77),
           "child TCP_USER_TIMEOUT %s" % opt(TCP, socket.TCP_USER_TIMEOUT, 5000)]
    s.sendall(b"x" * 100000)
    try:
        s.shutdown(socket.SHUT_WR)
        out.append("child shutdown 0")
    except OSError as e:
        out.append("child shutdown errno %d" % e.errno)
    print("\n".join(out), flush=True)
    os._exit(0)
_, status = os.waitpid(pid, 0)
print("parent TCP_NODELAY %d" % s.getsockopt(TCP, socket.TCP_NODELAY))
print("parent TCP_KEEPIDLE %d" % s.getsockopt(TCP, socket.TCP_KEEPIDLE))
print("parent echoed %d, then EOF" % shimlib.read_to_eof(s))
s.close()
sys.exit(0 if status == 0 else 1)
