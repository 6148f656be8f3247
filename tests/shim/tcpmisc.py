#!/usr/bin/env python3
"""TCP options whose only effect a program can see here is what they read
back (issue 14; shim/sockopt.c, tcp_misc_set): TCP_ULP, TCP_FASTOPEN_KEY,
TCP_FASTOPEN_NO_COOKIE and TCP_TX_DELAY, for 061-opts.bats. On a fresh socket, a listener and a connected one: each
set and get, in order; then what a listener's accepted connection starts
with.

    tcpmisc.py PEER_ADDR PORT OWN_ADDR   (PORT: a listener of the peer's)
"""
import socket
import sys

from shimlib import attempt

T = socket.IPPROTO_TCP
ULP, FOKEY, NOCOOKIE, TXD = 31, 33, 34, 37
KEY16, KEY32 = b"0123456789abcdef", b"0123456789abcdefGHIJKLMNOPQRSTUV"


def r(f):
    """attempt(f), with "ok" for a call that returned nothing."""
    v = attempt(f)
    return "ok" if v is None else str(v)


def steps(s):
    return [
        ("ULP get", lambda: s.getsockopt(T, ULP, 16)),
        ("ULP set tls", lambda: s.setsockopt(T, ULP, b"tls")),
        ("ULP set empty", lambda: s.setsockopt(T, ULP, b"")),
        ("FOKEY get", lambda: s.getsockopt(T, FOKEY, 32)),
        ("FOKEY set 15", lambda: s.setsockopt(T, FOKEY, KEY16[:15])),
        ("FOKEY set 16", lambda: s.setsockopt(T, FOKEY, KEY16)),
        ("FOKEY get", lambda: s.getsockopt(T, FOKEY, 32)),
        ("FOKEY get 8", lambda: s.getsockopt(T, FOKEY, 8)),
        ("FOKEY set 32", lambda: s.setsockopt(T, FOKEY, KEY32)),
        ("FOKEY get 40", lambda: s.getsockopt(T, FOKEY, 40)),
        ("NOCOOKIE get", lambda: s.getsockopt(T, NOCOOKIE)),
        ("NOCOOKIE set 2", lambda: s.setsockopt(T, NOCOOKIE, 2)),
        ("NOCOOKIE set 1", lambda: s.setsockopt(T, NOCOOKIE, 1)),
        ("NOCOOKIE get", lambda: s.getsockopt(T, NOCOOKIE)),
        ("TXD get", lambda: s.getsockopt(T, TXD)),
        ("TXD set -1", lambda: s.setsockopt(T, TXD, -1)),
        ("TXD set 1000", lambda: s.setsockopt(T, TXD, 1000)),
        ("TXD get", lambda: s.getsockopt(T, TXD)),
    ]


def main():
    peer = (sys.argv[1], int(sys.argv[2]))
    own = sys.argv[3]
    for state in ("fresh", "listener", "connected"):
        s = socket.socket()
        if state == "listener":
            s.listen(1)
        elif state == "connected":
            s.connect(peer)
        print(state, "; ".join(f"{k} {r(f)}" for k, f in steps(s)), flush=True)
        s.close()
    # A listener's accepted connection: TCP_TX_DELAY and
    # TCP_FASTOPEN_NO_COOKIE are the listener's, the Fast Open key not.
    l = socket.socket()
    l.bind((own, 0))
    l.setsockopt(T, TXD, 777)
    l.setsockopt(T, NOCOOKIE, 1)
    l.setsockopt(T, FOKEY, KEY16)
    l.listen(1)
    c = socket.create_connection(l.getsockname(), timeout=10)
    a, _ = l.accept()
    print("accepted", "; ".join(f"{k} {r(f)}" for k, f in [
        ("TXD get", lambda: a.getsockopt(T, TXD)),
        ("NOCOOKIE get", lambda: a.getsockopt(T, NOCOOKIE)),
        ("FOKEY get", lambda: a.getsockopt(T, FOKEY, 32))]), flush=True)
    a.close()
    c.close()
    l.close()


if __name__ == "__main__":
    main()
