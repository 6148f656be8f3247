#!/usr/bin/env python3
"""SOL_SOCKET and IPPROTO_TCP options on a fresh TCP socket of each
family, for 061-opts.bats: the default, then a few values (ints in and
out of range, -1, 1 byte, 8 bytes) and what getsockopt reads after each,
a fresh socket per option. The bats test runs it on the kernel and under
the library and compares the outputs line by line.

    optmatrix.py

Options whose value is the socket's own identity (SO_COOKIE, the
incoming CPU and NAPI id) are left out; so are those ustcp does not take
(listed in 061-opts.bats and the manual's CAVEATS).
"""
import ctypes
import errno
import socket

LIBC = ctypes.CDLL(None, use_errno=True)
SOL = [o for o in range(1, 80) if o not in (
    49, 56, 57,           # SO_INCOMING_CPU, SO_INCOMING_NAPI_ID, SO_COOKIE: the socket's own
    60, 74,               # SO_ZEROCOPY, SO_TXREHASH: not taken (CAVEATS)
    17, 59, 31, 39)]      # SO_PEERCRED, SO_PEERGROUPS, SO_PEERSEC, SO_PEERNAME: of a peer
TCP = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 17, 18, 23, 25]
VALUES = [1, 0, 2, 255, 4096, 1 << 30, -1, b"\x01", bytes(8)]


def get(s, level, opt, buflen=64):
    buf = ctypes.create_string_buffer(buflen)
    n = ctypes.c_uint32(buflen)
    if LIBC.getsockopt(s.fileno(), level, opt, buf, ctypes.byref(n)) < 0:
        return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
    return buf.raw[:n.value].hex() or "-"


def put(s, level, opt, v):
    try:
        s.setsockopt(level, opt, v)
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def main():
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
