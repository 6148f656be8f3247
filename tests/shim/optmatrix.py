#!/usr/bin/env python3
"""SOL_SOCKET and IPPROTO_TCP options on a fresh TCP socket of each
family, for 061-opts.bats: the default, then a few values (ints in and
out of range, -1, 1 byte, 8 bytes) and what getsockopt reads after each,
a fresh socket per option; first TCP_INFO of a fresh and of a listening
socket. The bats test runs it on the kernel and under
the library and compares the outputs line by line.

    optmatrix.py [ADDR]   (ADDR: our address, for a listener's queue)

Options whose value is the socket's own identity (SO_COOKIE, the
incoming CPU and NAPI id) are left out; so are those ustcp does not take
(listed in 061-opts.bats and the manual's CAVEATS).
"""
import errno
import socket
import struct
import sys
import time

from shimlib import sockopt_hex

SOL = [o for o in range(1, 80) if o not in (
    49, 56, 57,           # SO_INCOMING_CPU, SO_INCOMING_NAPI_ID, SO_COOKIE: the socket's own
    60,                   # SO_ZEROCOPY: not taken (CAVEATS)
    17, 59, 31, 39)]      # SO_PEERCRED, SO_PEERGROUPS, SO_PEERSEC, SO_PEERNAME: of a peer
TCP = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 16, 17, 18, 23, 25, 26, 27, 28, 36]
VALUES = [1, 0, 2, 255, 4096, 1 << 30, -1, b"\x01", bytes(8)]


def get(s, level, opt, buflen=64):
    return sockopt_hex(s, level, opt, buflen)


def put(s, level, opt, v):
    try:
        s.setsockopt(level, opt, v)
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


# Linux 6.18's struct tcp_info, as tcpinfo.py reads it.
INFO = struct.Struct("8B24I4Q6I4Q2I2Q4I2I2H2I")
AGO = (17, 18, 19, 20)  # last_data_sent .. last_ack_recv: the clock's


def info(s):
    """TCP_INFO, its times since the last segment masked (never any)."""
    v = list(INFO.unpack(s.getsockopt(socket.IPPROTO_TCP, 11, 512)[:INFO.size]))
    for i in AGO:
        v[i] = "t" if v[i] else 0
    return " ".join(map(str, v))


def queue(addr):
    """A listener's TCP_INFO with connections waiting for accept():
    unacked counts them, sacked is the backlog."""
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind((addr, 0))
    ls.listen(7)
    cs = [socket.create_connection(ls.getsockname(), timeout=10) for _ in range(2)]
    time.sleep(0.2)
    v = INFO.unpack(ls.getsockopt(socket.IPPROTO_TCP, 11, 512)[:INFO.size])
    print("listener waiting", v[12], v[13], flush=True)
    ls.accept()[0].close()
    v = INFO.unpack(ls.getsockopt(socket.IPPROTO_TCP, 11, 512)[:INFO.size])
    print("listener after accept", v[12], v[13], flush=True)
    for c in cs:
        c.close()
    ls.close()


def lowat():
    """SO_RCVLOWAT against the receive buffer: capped at half of one the
    program set, else at half of tcp_rmem's largest, when the buffer
    grows to hold it (tcp_set_rcvlowat)."""
    for rcvbuf, mark in ((4096, 100000), (None, 1000000), (None, 0), (None, -1)):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, mark)
        print("rcvlowat", rcvbuf, mark, s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT),
              s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF), flush=True)
        s.close()


def main():
    if len(sys.argv) > 1:
        queue(sys.argv[1])
    lowat()
    for family, anyaddr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        s = socket.socket(family, socket.SOCK_STREAM)
        print(family, "tcp_info fresh", info(s))
        s.bind((anyaddr, 0))
        s.listen()
        print(family, "tcp_info listening", info(s))
        s.close()
    for family in (socket.AF_INET, socket.AF_INET6):
        for level, opts in ((socket.SOL_SOCKET, SOL), (socket.IPPROTO_TCP, TCP)):
            for opt in opts:
                s = socket.socket(family, socket.SOCK_STREAM)
                print(family, level, opt, "default", get(s, level, opt), flush=True)
                for v in VALUES:
                    shown = v.hex() or "-" if isinstance(v, bytes) else v
                    print(family, level, opt, shown, put(s, level, opt, v), get(s, level, opt), flush=True)
                s.close()


if __name__ == "__main__":
    main()
