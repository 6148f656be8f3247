#!/usr/bin/env python3
"""One listener of a family, for 032-shim6.bats's port spaces across
processes.

    bind_listen.py inet|v6only|dual PORT SECONDS

Binds an AF_INET socket to 0.0.0.0:PORT, or an AF_INET6 one (IPV6_V6ONLY
1 or 0) to [::]:PORT, and listens; prints "FAMILY PORT RESULT" (0 or the
errno's name). With SECONDS and a listener, it answers the first client
with "served by FAMILY" and exits, or exits after SECONDS.
"""
import errno
import socket
import sys


def main():
    fam, port, hold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    if fam == "inet":
        s, addr = socket.socket(socket.AF_INET), "0.0.0.0"
    else:
        s, addr = socket.socket(socket.AF_INET6), "::"
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if fam == "v6only" else 0)
    try:
        s.bind((addr, port))
        s.listen(4)
        r = "0"
    except OSError as e:
        r = errno.errorcode.get(e.errno, str(e.errno))
    print(fam, port, r, flush=True)
    if r != "0" or not hold:
        return
    s.settimeout(hold)
    try:
        c, _ = s.accept()
    except socket.timeout:
        return
    c.sendall(b"served by %s\n" % fam.encode())
    c.close()


if __name__ == "__main__":
    main()
