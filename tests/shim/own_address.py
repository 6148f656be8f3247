"""Connections from the host to its own address, as a program sees them.

    own_address.py one ADDR PORT          (one process: both ends)
    own_address.py serve ADDR PORT DIR    (a server; DIR/ready once listening)
    own_address.py client ADDR PORT       (a client of that server)

"one" connects to its own listener on ADDR:PORT and checks the names both
ends see, 1 MB each way with half-closes, a refused port (PORT+1), a
socket connected to itself (bound to PORT+2, simultaneous open with
itself) and a close with unread data (the other end reads ECONNRESET).
"serve" and "client" are the same connection between two processes; the
client also finds PORT+1 refused. Each prints what it saw, the same lines
on the kernel's TCP as under ustcp.
"""
import errno
import hashlib
import os
import select
import socket
import sys
import threading
import time

import shimlib

MB = 1000000


def fam(addr):
    return shimlib.family(addr)


def bind(s, addr, port):
    """bind, waiting out an IPv6 address's DAD (EADDRNOTAVAIL while it is
    tentative, on Linux as under ustcp, whose stack starts with the
    program)."""
    deadline = time.monotonic() + 5
    while True:
        try:
            s.bind((addr, port))
            return
        except OSError as e:
            if e.errno != errno.EADDRNOTAVAIL or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def refused(addr, port):
    c = socket.socket(fam(addr))
    c.settimeout(10)
    try:
        c.connect((addr, port))
        return "connected"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    finally:
        c.close()


def read_all(s):
    """Everything until the peer's FIN."""
    parts = []
    while True:
        b = s.recv(65536)
        if not b:
            return b"".join(parts)
        parts.append(b)


def exchange(a, b):
    """1 MB from a to b and 1 MB from b to a at once; a shuts down its
    side first, b after reading a's end. Returns whether both arrived
    whole."""
    da, db = os.urandom(MB), os.urandom(MB)
    got = {}

    def side(s, data, name, first):
        if first:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            got[name] = read_all(s)
        else:
            # b writes while it reads: both directions in flight at once.
            w = threading.Thread(target=s.sendall, args=(data,))
            w.start()
            got[name] = read_all(s)
            w.join()
            s.shutdown(socket.SHUT_WR)

    ta = threading.Thread(target=side, args=(a, da, "a", True))
    tb = threading.Thread(target=side, args=(b, db, "b", False))
    ta.start()
    tb.start()
    ta.join()
    tb.join()
    return got.get("a") == db and got.get("b") == da


def one(addr, port):
    lst = socket.socket(fam(addr))
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    bind(lst, addr, port)
    lst.listen(4)
    c = socket.socket(fam(addr))
    c.settimeout(20)
    c.connect((addr, port))
    s, peer = lst.accept()
    s.settimeout(20)
    cname = c.getsockname()[:2]
    print("client: to %s:%d" % c.getpeername()[:2])
    print("client from the address: %s" % (cname[0] == addr))
    print("server: from the client's address and port: %s" % (peer[:2] == cname))
    print("1 MB each way, half-closed in turn, whole: %s" % exchange(c, s))
    c.close()
    s.close()

    print("a port nobody holds: %s" % refused(addr, port + 1))

    me = socket.socket(fam(addr))
    me.settimeout(10)
    me.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    bind(me, addr, port + 2)
    me.connect((addr, port + 2))
    itself = me.getpeername()[:2] == me.getsockname()[:2]
    me.sendall(b"hello me")
    first = me.recv(100)
    me.shutdown(socket.SHUT_WR)
    print("connected to itself: to itself %s, reads %r, then %r" % (itself, first, me.recv(100)))
    me.close()

    c = socket.socket(fam(addr))
    c.settimeout(10)
    c.connect((addr, port))
    s, _ = lst.accept()
    c.sendall(b"unread")
    # Closed once the bytes are there, unread: a RST, not a FIN.
    select.select([s], [], [], 10)
    s.close()
    try:
        c.recv(100)
        print("close with unread data: the client reads no error")
    except OSError as e:
        print("close with unread data: the client reads %s" % errno.errorcode.get(e.errno, str(e.errno)))
    c.close()
    lst.close()


def serve(addr, port, ctl):
    lst = socket.socket(fam(addr))
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    bind(lst, addr, port)
    lst.listen(4)
    open(os.path.join(ctl, "ready"), "w").close()
    lst.settimeout(30)
    s, peer = lst.accept()
    s.settimeout(20)
    data = read_all(s)
    s.sendall(("%s %s:%d\n" % (hashlib.md5(data).hexdigest(), peer[0], peer[1])).encode())
    s.close()
    lst.close()


def client(addr, port):
    c = socket.socket(fam(addr))
    c.settimeout(20)
    c.connect((addr, port))
    # (Names before the close: after it, in TIME-WAIT, there are none.)
    me = "%s:%d" % c.getsockname()[:2]
    print("server: to %s:%d" % c.getpeername()[:2])
    data = os.urandom(MB)
    c.sendall(data)
    c.shutdown(socket.SHUT_WR)
    digest, who = read_all(c).decode().split()
    print("1 MB to the server, whole: %s" % (digest == hashlib.md5(data).hexdigest()))
    print("the server saw the client's address and port: %s" % (who == me))
    c.close()
    print("a port nobody holds: %s" % refused(addr, port + 1))


def main():
    if sys.argv[1] == "one":
        one(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        client(sys.argv[2], int(sys.argv[3]))


main()
