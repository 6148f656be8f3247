"""Pieces the shim tests' peers and programs share (import shimlib: the
script's own directory is on Python's path)."""
import socket


def accept_one(addr, port, rcvbuf=None, timeout=30):
    """Listens on addr:port (SO_REUSEADDR; SO_RCVBUF before listen, so that
    the accepted socket gets it) and returns the first connection, both
    with timeout. An address with a colon is IPv6's."""
    ls = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf:
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    ls.bind((addr, port))
    ls.listen(1)
    ls.settimeout(timeout)
    c, _ = ls.accept()
    ls.close()
    c.settimeout(timeout)
    return c


def read_to_eof(s):
    """Reads until the peer's FIN; how many bytes came."""
    got = 0
    while True:
        b = s.recv(65536)
        if not b:
            return got
        got += len(b)
