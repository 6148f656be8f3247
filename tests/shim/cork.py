#!/usr/bin/env python3
"""TCP_CORK and MSG_MORE as Linux times them (issue 14, item 10), against
an echo server (echo_server.py): how long each write takes to come back.

    cork.py ADDR PORT

"held" is at least 150 ms (a partial segment waits for the probe timer:
max(RTO, 200 ms) on a fast link), "prompt" under 100 ms; anything else is
printed in ms. Linux 6.18 prints, on veth: corked 10 held; corked 3000
held; uncork prompt; more 10 held; more 10 + 20 prompt; nodelay+cork held;
and TCP_CORK reads 1 while set, 0 after.
"""
import socket
import sys
import time

T = socket.IPPROTO_TCP


def verdict(secs):
    if secs >= 0.15:
        return "held"
    if secs < 0.1:
        return "prompt"
    return "%d ms" % (secs * 1000)


def back(s, n):
    """Reads n echoed bytes; when the last came."""
    got = 0
    while got < n:
        b = s.recv(n - got)
        if not b:
            raise SystemExit("EOF")
        got += len(b)
    return time.monotonic()


def main():
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
    s.sendall(b"w" * 100)  # an RTT sample, and the echo path warm
    back(s, 100)
    time.sleep(0.1)

    s.setsockopt(T, socket.TCP_CORK, 1)
    print("TCP_CORK", s.getsockopt(T, socket.TCP_CORK))
    t = time.monotonic()
    s.send(b"a" * 10)
    print("corked 10", verdict(back(s, 10) - t))
    t = time.monotonic()
    s.sendall(b"b" * 3000)
    print("corked 3000", verdict(back(s, 3000) - t))

    s.send(b"c" * 100)
    time.sleep(0.05)
    t = time.monotonic()
    s.setsockopt(T, socket.TCP_CORK, 0)
    print("uncork", verdict(back(s, 100) - t))
    print("TCP_CORK", s.getsockopt(T, socket.TCP_CORK))
    time.sleep(0.1)

    t = time.monotonic()
    s.send(b"d" * 10, socket.MSG_MORE)
    print("more 10", verdict(back(s, 10) - t))
    time.sleep(0.1)
    t = time.monotonic()
    s.send(b"e" * 10, socket.MSG_MORE)
    time.sleep(0.02)
    s.send(b"f" * 20)
    print("more 10 + 20", verdict(back(s, 30) - t - 0.02))
    time.sleep(0.1)

    s.setsockopt(T, socket.TCP_NODELAY, 1)
    s.setsockopt(T, socket.TCP_CORK, 1)
    t = time.monotonic()
    s.send(b"g" * 5)
    print("nodelay+cork", verdict(back(s, 5) - t))
    s.setsockopt(T, socket.TCP_CORK, 0)
    s.shutdown(socket.SHUT_WR)
    while s.recv(100):
        pass
    s.close()


main()
