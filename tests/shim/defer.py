#!/usr/bin/env python3
"""TCP_DEFER_ACCEPT as Linux takes it (issue 14, item 10).

    defer.py server ADDR PORT SECONDS   the readbacks of a few values, then
                                        a listener with SECONDS: when
                                        accept() returns (to 0.5 s), and
                                        what is readable then
    defer.py client ADDR PORT WAIT      connect, send "data" after WAIT
                                        seconds (never if WAIT < 0), hold
                                        the connection 10 s at most

Linux 6.18 rounds the seconds up to SYN-ACK timeouts (1, 2, 4 s…) and
reads back their sum: 2 -> 3, 5 -> 7, 8 -> 15. A handshake ACKed without
data waits for data, or for the SYN-ACK Linux sends again at the last
timeout (7 s for 5), whose ACK establishes it.
"""
import socket
import sys
import time

T = socket.IPPROTO_TCP


def server(addr, port, secs):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    for v in (0, 1, 2, 3, 5, 8, 30, -1):
        ls.setsockopt(T, socket.TCP_DEFER_ACCEPT, v)
        print("set", v, "reads", ls.getsockopt(T, socket.TCP_DEFER_ACCEPT))
    ls.setsockopt(T, socket.TCP_DEFER_ACCEPT, secs)
    ls.bind((addr, port))
    ls.listen()
    print("listening", flush=True)
    ls.settimeout(20)
    c, _ = ls.accept()
    t = time.monotonic()
    c.setblocking(False)
    try:
        data = c.recv(100)
    except BlockingIOError:
        data = b""
    print("readable at accept", data, flush=True)
    return t


def client(addr, port, wait):
    s = socket.create_connection((addr, port), timeout=20)
    t0 = time.monotonic()
    if wait >= 0:
        time.sleep(wait)
        s.sendall(b"data")
    s.settimeout(12)
    try:
        s.recv(100)  # the server closes once it accepted
    except OSError:
        pass
    print("server closed after %.0f s" % round(time.monotonic() - t0))


if sys.argv[1] == "server":
    server(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
else:
    client(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
