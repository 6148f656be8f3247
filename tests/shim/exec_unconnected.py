#!/usr/bin/env python3
"""A socket neither connected nor listening, carried across exec.

    exec_unconnected.py client PEER PORT bind|nobind
    exec_unconnected.py server ADDR PORT
    exec_unconnected.py ports ADDR PORT

The first image makes a TCP socket, sets options (TCP_NODELAY,
SO_KEEPALIVE, SO_REUSEADDR), binds it (client: to port 0 with "bind";
server: to ADDR:PORT) and execs python with the fd inherited. The new
image prints what the socket is (family, SO_DOMAIN/SO_TYPE/SO_PROTOCOL,
the options, whether getsockname kept the bound port), then uses it:
the client connects to PEER:PORT, sends "ping" and prints the echo (and
whether its port is still the one bound before exec); the server
listens, prints "listening", accepts one connection and echoes a line
back to it. "ports" binds ADDR:PORT (inherited) and ADDR:PORT+1
(close-on-exec); the new image tries both ports with sockets of its own
(the first is held, the second free), then exits holding the first,
which the next process then finds free.
"""
import os
import socket
import sys

NEW_IMAGE = r'''
import errno, socket, sys
role, fd, port0 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(fileno=fd)
S = socket.SOL_SOCKET
print("new image:", s.family.name, s.getsockopt(S, socket.SO_DOMAIN), s.getsockopt(S, socket.SO_TYPE),
      s.getsockopt(S, socket.SO_PROTOCOL))
print("options: nodelay", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY),
      "keepalive", s.getsockopt(S, socket.SO_KEEPALIVE) != 0,
      "reuseaddr", s.getsockopt(S, socket.SO_REUSEADDR) != 0)
print("bound port kept:", s.getsockname()[1] == port0)
def try_bind(port):
    t = socket.socket()
    try:
        t.bind((sys.argv[4], port))
        return "free"
    except OSError as e:
        return errno.errorcode[e.errno]
    finally:
        t.close()
if role == "ports":
    print("inherited port", try_bind(port0), "close-on-exec port", try_bind(port0 + 1))
elif role == "client":
    s.connect((sys.argv[4], int(sys.argv[5])))
    print("connected from the bound port:", port0 == 0 or s.getsockname()[1] == port0,
          "peer", s.getpeername()[1])
    s.sendall(b"ping\n")
    s.shutdown(socket.SHUT_WR)
    print("echo", s.makefile().read().strip())
else:
    s.listen(4)
    print("listening", s.getsockname()[1] == port0, flush=True)
    c, _ = s.accept()
    print("accepted: local port", c.getsockname()[1] == port0)
    c.sendall(c.makefile("rb").readline())
    c.close()
'''


def main():
    role, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    s = socket.socket()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if role == "server":
        s.bind((addr, port))
    elif role == "ports":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        s.bind((addr, port))
        other = socket.socket()
        other.bind((addr, port + 1))  # close-on-exec, as Python makes every socket
    elif sys.argv[4] == "bind":
        s.bind(("0.0.0.0", 0))
    port0 = s.getsockname()[1]
    fd = s.detach()
    os.set_inheritable(fd, True)
    sys.stdout.flush()
    args = [sys.executable, "-c", NEW_IMAGE, role, str(fd), str(port0)]
    if role != "server":
        args += [addr, str(port)]
    os.execv(sys.executable, args)


main()
