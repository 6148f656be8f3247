#!/usr/bin/env python3
"""TCP options whose only effect a program can see here is what they read
back (issue 14; shim/sockopt.c, tcp_misc_set): TCP_ULP, TCP_FASTOPEN_KEY,
TCP_FASTOPEN_NO_COOKIE and TCP_TX_DELAY, for 061-opts.bats; and
TCP_ZEROCOPY_RECEIVE where nothing is mapped (zc_get). On a fresh socket, a listener and a connected one: each
set and get, in order; then what a listener's accepted connection starts
with.

    tcpmisc.py PEER_ADDR PORT OWN_ADDR   (PORT: the peer's echo server,
                                          for two connections)
"""
import ctypes
import errno
import socket
import struct
import sys
import time

from shimlib import LIBC, attempt

T = socket.IPPROTO_TCP
ULP, FOKEY, NOCOOKIE, ZC, TXD = 31, 33, 34, 35, 37
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
        ("TXD set 2^28", lambda: s.setsockopt(T, TXD, 1 << 28)),
        ("TXD set 1000", lambda: s.setsockopt(T, TXD, 1000)),
        ("TXD get", lambda: s.getsockopt(T, TXD)),
    ]


def zc(s, buflen=64, address=0, copybuf=None):
    """TCP_ZEROCOPY_RECEIVE with a zeroed request of buflen bytes (but
    the address, and a copy buffer): length, recv_skip_hint, inq, err and
    copybuf_len of the answer, and what the copy buffer got; or the
    errno's name."""
    buf = ctypes.create_string_buffer(buflen)
    if buflen >= 12:
        struct.pack_into("=Q", buf, 0, address)
    if copybuf is not None and buflen >= 36:
        struct.pack_into("=Qi", buf, 24, ctypes.addressof(copybuf), len(copybuf))
    n = ctypes.c_uint32(buflen)
    if LIBC.getsockopt(s.fileno(), T, ZC, buf, ctypes.byref(n)) < 0:
        return errno.errorcode[ctypes.get_errno()]
    raw = buf.raw[:n.value] + bytes(64)
    length, skip, inq, err = struct.unpack_from("=IIIi", raw, 8)
    (cblen,) = struct.unpack_from("=i", raw, 32)
    out = f"len {n.value} length {length} skip {skip} inq {inq} err {err} copied {cblen}"
    if copybuf is not None and cblen > 0:
        out += " " + copybuf.raw[:cblen].decode()
    return out


def zc_steps(peer):
    """TCP_ZEROCOPY_RECEIVE on a connection to the echo server: nothing
    to read, 5 bytes (told to read them; read into the copy buffer), a
    request too short, an address not a page's, 5000 bytes (a page and
    more, which only a mapping takes), and the peer's end (EIO)."""
    out = []
    s = socket.create_connection(peer, timeout=10)
    out.append(("none", zc(s)))
    s.sendall(b"hello")
    time.sleep(0.3)
    out.append(("5", zc(s)))
    out.append(("5 len 20", zc(s, 20)))
    out.append(("5 len 16", zc(s, 16)))
    out.append(("5 len 11", zc(s, 11)))
    out.append(("5 address 1", zc(s, address=1)))
    out.append(("5 copybuf 4", zc(s, copybuf=ctypes.create_string_buffer(4))))
    out.append(("5 copybuf 100", zc(s, copybuf=ctypes.create_string_buffer(100))))
    out.append(("after", zc(s)))
    s.sendall(bytes(5000))
    time.sleep(0.3)
    out.append(("5000", zc(s)))
    got = 0
    while got < 5000:
        got += len(s.recv(65536))
    s.shutdown(socket.SHUT_WR)
    time.sleep(0.3)
    out.append(("eof", zc(s)))
    s.close()
    return out


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
    print("zerocopy", "; ".join(f"{k}: {v}" for k, v in zc_steps(peer)), flush=True)


if __name__ == "__main__":
    main()
