#!/usr/bin/env python3
"""connect() again on a socket whose connect failed, as Linux has it
(issue 14): Linux's __inet_stream_connect disconnects the socket once it
reported the failure, so it polls OUT|HUP and a later connect() is a new
attempt, from the port bind() gave it.

    reconnect.py PEER_ADDR PORT BOUND_PORT SILENT_ADDR

An echo server (echo_server.py) listens on PEER_ADDR:PORT for 4
connections; nothing listens on PORT+1; one on PORT+2 aborts (RST) at the
end of its one connection. BOUND_PORT is free on this side; nothing
answers ARP for SILENT_ADDR. One line per
case, the results in order; the caller compares them with the kernel's.
"""
import errno
import select
import socket
import sys
import threading
import time

peer, port, bport, silent = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
OK, REFUSED, RST = (peer, port), (peer, port + 1), (peer, port + 2)
NAMES = [(select.POLLIN, "IN"), (select.POLLOUT, "OUT"), (select.POLLERR, "ERR"),
         (select.POLLHUP, "HUP"), (select.POLLRDHUP, "RDHUP")]


def names(mask):
    return "|".join(n for b, n in NAMES if mask & b) or "0"


def poll(s, wait=0):
    p = select.poll()
    p.register(s, select.POLLIN | select.POLLOUT | select.POLLRDHUP)
    r = p.poll(wait)
    return names(r[0][1] if r else 0)


def conn(s, a):
    e = s.connect_ex(a)
    return errno.errorcode.get(e, str(e)) if e else "ok"


def echo(s):
    s.settimeout(10)
    s.sendall(b"hello")
    got = s.recv(100)
    return got.decode() if got else "EOF"


def line(*words):
    print(" ".join(str(w) for w in words), flush=True)


# A blocking connect refused twice, then one to the listener: each is a new
# attempt, and the last connects and echoes.
s = socket.socket()
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
a, b = conn(s, REFUSED), conn(s, REFUSED)
c = conn(s, OK)
line("blocking:", a, b, c, "peer-port", s.getpeername()[1], "nodelay",
     s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0, "echo", echo(s))
s.close()

# Bound to a port: the new attempt comes from it.
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", bport))
a = conn(s, REFUSED)
line("bound:", a, "poll", poll(s), "then", conn(s, OK), "from-bound-port", s.getsockname()[1] == bport,
     "echo", echo(s))
s.close()

# Non-blocking, SO_ERROR read: the next connect says ECONNABORTED and
# leaves it disconnected (OUT|HUP, in an epoll set it was added to at
# first as well); the one after is a new attempt.
s = socket.socket()
ep = select.epoll()
ep.register(s, select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP)
s.setblocking(False)
a = conn(s, REFUSED)
time.sleep(0.5)
err = errno.errorcode.get(s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), "0")
b = conn(s, REFUSED)
after = poll(s)
epo = names(sum(m for _, m in ep.poll(0)))
c = conn(s, OK)
ready = poll(s, 5000)
s.setblocking(True)
line("nonblocking SO_ERROR first:", a, err, b, "poll", after, "epoll", epo, "then", c, ready,
     "peer-port", s.getpeername()[1], "epoll", names(sum(m for _, m in ep.poll(0))), "echo", echo(s))
ep.close()
s.close()

# Non-blocking, the error not taken: the next connect reports it, the
# one after is a new attempt.
s = socket.socket()
s.setblocking(False)
a = conn(s, REFUSED)
time.sleep(0.5)
b = conn(s, REFUSED)
c = conn(s, OK)
ready = poll(s, 5000)
s.setblocking(True)
line("nonblocking error not taken:", a, b, "then", c, ready, "echo", echo(s))
s.close()

# Another thread polls while a blocking connect waits (for a neighbour
# that never answers ARP): Linux's SYN-SENT socket polls 0; the connect
# fails with EHOSTUNREACH.
s = socket.socket()
res = []
t = threading.Thread(target=lambda: res.append(conn(s, (silent, port))))
t.start()
time.sleep(0.5)
during = poll(s)
t.join(30)
line("polled during a blocking connect:", during, "connect", *res)
s.close()

# A connection that was established and reset is still connected to
# Linux's connect: EISCONN.
s = socket.socket()
a = conn(s, RST)
e = echo(s)
s.shutdown(socket.SHUT_WR)
time.sleep(0.5)
try:
    r = s.recv(10)
    r = "EOF" if not r else r
except OSError as x:
    r = errno.errorcode[x.errno]
line("reset:", a, e, r, "connect", conn(s, OK))
s.close()
