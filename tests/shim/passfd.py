#!/usr/bin/env python3
"""A connected TCP socket passed to another process with SCM_RIGHTS
(issue 14, item 12), and a listening one.

    passfd.py receive UNIX_PATH PEER_PORT  (start first; it listens on the path)
    passfd.py send UNIX_PATH PEER_ADDR PORT
    passfd.py accept UNIX_PATH COUNT       (start first, as receive)
    passfd.py listen UNIX_PATH PORT wait|exit
    passfd.py late-receive UNIX_PATH       (start first, as receive)
    passfd.py late-send UNIX_PATH PEER_ADDR PORT

late-send passes a plain AF_UNIX socket first (as a process with no stack
yet), then, 2.5 s later and from the same pid, a TCP socket connected to
the echo server; late-receive says what each is and uses the second.

The sender connects to an echo server (echo_server.py), writes 1000 bytes,
passes the socket over an AF_UNIX connection to the receiver, closes its
own copy and exits. The receiver, an unrelated process, prints what the
socket is (family, SO_DOMAIN/SO_TYPE/SO_PROTOCOL, the peer's port: PEER_PORT
is the echo server's), reads and sets options, reads TCP_INFO, writes 100,000
bytes, shuts its sending side down, reads
the whole echo to the peer's EOF and closes. Each prints its lines; the
same on the kernel's TCP and under ustcp.
"""
import array
import os
import socket
import sys
import time

import shimlib


def take_fd(path):
    """Accepts one connection on the AF_UNIX path and returns the message and
    the fd that came with it."""
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(path)
    ls.listen(1)
    ls.settimeout(20)
    u, _ = ls.accept()
    fds = array.array("i")
    msg, anc, _, _ = u.recvmsg(16, socket.CMSG_SPACE(fds.itemsize))
    for level, kind, raw in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(raw[:fds.itemsize])
    return msg.decode(), fds[0], u


def receive(path, port):
    msg, fd, _ = take_fd(path)
    s = socket.socket(fileno=fd)
    s.settimeout(20)
    print("receiver got %s" % msg, flush=True)
    # What the socket is here: the sender's TCP socket, with the option
    # it set, options that take and read back, and TCP_INFO.
    S = socket.SOL_SOCKET
    print("receiver's socket: %s %d %d %d, peer port %d, local port bound %s" % (
        s.family.name, s.getsockopt(S, socket.SO_DOMAIN), s.getsockopt(S, socket.SO_TYPE),
        s.getsockopt(S, socket.SO_PROTOCOL), s.getpeername()[1], s.getsockname()[1] > 0), flush=True)
    nodelay = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 77)
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 280)
    print("receiver's options: nodelay %d, then %d; keepidle %d; TCP_INFO %d bytes, state %d" % (
        nodelay, s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY),
        s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE), len(info), info[0]), flush=True)
    s.sendall(b"r" * 100000)
    s.shutdown(socket.SHUT_WR)
    print("receiver read %d, then EOF" % shimlib.read_to_eof(s), flush=True)
    s.close()


def pass_fd(path, msg, fd):
    """Connects to the receiver's AF_UNIX path (it may not listen yet) and
    sends MSG with FD; returns the connection."""
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    for _ in range(100):
        try:
            u.connect(path)
            break
        except OSError:
            time.sleep(0.1)
    u.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
    return u


def send(path, addr, port):
    s = socket.create_connection((addr, port), timeout=20)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"s" * 1000)
    u = pass_fd(path, b"tcp", s.fileno())
    s.close()
    u.close()
    print("sender passed it and closed its copy", flush=True)


def accept(path, count):
    """The listening socket's receiver: accepts COUNT connections on it, one
    at a time; each brings N bytes and the peer's FIN, and gets "got N"
    back before it is closed. Then tells the sender it may go."""
    msg, fd, u = take_fd(path)
    ls = socket.socket(fileno=fd)
    ls.settimeout(20)
    print("receiver got %s: listening %d, port %d" % (
        msg, ls.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN), ls.getsockname()[1]), flush=True)
    for _ in range(count):
        c, _ = ls.accept()
        c.settimeout(20)
        n = shimlib.read_to_eof(c)
        c.sendall(b"got %d" % n)
        c.close()
        print("accepted one: %d bytes, then EOF" % n, flush=True)
    ls.close()
    try:
        u.sendall(b"done")
    except OSError:
        pass  # a sender that did not wait
    u.close()


def listen(path, port, then):
    """Listens on PORT, passes the listening socket, closes its own copy,
    and stays until the receiver is done (THEN "wait": as a supervisor that
    hands its listeners to a worker does) or exits at once ("exit")."""
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(8)
    u = pass_fd(path, b"listener", ls.fileno())
    ls.close()
    print("sender passed the listener and closed its copy", flush=True)
    if then == "exit":
        return
    u.settimeout(60)
    print("sender told %s" % u.recv(16).decode(), flush=True)


def late_receive(path):
    msg, fd, u = take_fd(path)
    a = socket.socket(fileno=fd)
    print("first (%s): %s" % (msg, a.family.name), flush=True)
    fds = array.array("i")
    u.settimeout(20)
    msg, anc, _, _ = u.recvmsg(16, socket.CMSG_SPACE(fds.itemsize))
    for level, kind, raw in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(raw[:fds.itemsize])
    s = socket.socket(fileno=fds[0])
    s.settimeout(20)
    print("second (%s): %s, peer port %d" % (msg.decode(), s.family.name, s.getpeername()[1]), flush=True)
    s.sendall(b"r" * 1000)
    s.shutdown(socket.SHUT_WR)
    print("second read %d, then EOF" % shimlib.read_to_eof(s), flush=True)
    s.close()


def late_send(path, addr, port):
    """Passes the plain socket as a process without the library (none of
    its calls made a stack yet: under ustcp it execs itself without
    LD_PRELOAD first), then execs itself with it, the same pid, for the
    TCP socket (late_send_tcp)."""
    preload = os.environ.pop("LD_PRELOAD", None)
    if preload is not None:
        os.environ["PASSFD_PRELOAD"] = preload
        os.execv(sys.executable, [sys.executable] + sys.argv)
    a, b = socket.socketpair()
    u = pass_fd(path, b"plain", a.fileno())
    time.sleep(2.5)
    u.set_inheritable(True)
    preload = os.environ.pop("PASSFD_PRELOAD", None)
    if preload is not None:
        os.environ["LD_PRELOAD"] = preload
    os.execv(sys.executable, [sys.executable, sys.argv[0], "late-send-tcp", str(u.fileno()), addr, str(port)])


def late_send_tcp(ufd, addr, port):
    u = socket.socket(fileno=ufd)
    s = socket.create_connection((addr, port), timeout=20)
    u.sendmsg([b"tcp"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [s.fileno()]))])
    s.close()
    u.close()


if sys.argv[1] == "receive":
    receive(sys.argv[2], int(sys.argv[3]))
elif sys.argv[1] == "accept":
    accept(sys.argv[2], int(sys.argv[3]))
elif sys.argv[1] == "late-receive":
    late_receive(sys.argv[2])
elif sys.argv[1] == "late-send":
    late_send(sys.argv[2], sys.argv[3], int(sys.argv[4]))
elif sys.argv[1] == "late-send-tcp":
    late_send_tcp(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
elif sys.argv[1] == "listen":
    listen(sys.argv[2], int(sys.argv[3]), sys.argv[4])
else:
    send(sys.argv[2], sys.argv[3], int(sys.argv[4]))
