#!/usr/bin/env python3
"""A dual-stack (or v6only) echo server for 032-shim6.bats.

    dualstack.py PORT COUNT V6ONLY

Listens on [::]:PORT with IPV6_V6ONLY set to V6ONLY ("default": left as the
kernel's bindv6only makes it) and serves COUNT connections: for each, one
line "peer ADDR local ADDR family F flow N scope N" (accept's address,
getsockname, SO_DOMAIN, accept's flow info and scope id), then the bytes it reads echoed
back until EOF. First it prints "v6only N" and "listening ADDR".
"""
import socket
import sys


def main():
    port, count, v6only = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if v6only != "default":
        ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
    print("v6only", ls.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY), flush=True)
    ls.bind(("::", port))
    ls.listen(4)
    print("listening", ls.getsockname()[0], flush=True)
    ls.settimeout(30)
    for _ in range(count):
        s, peer = ls.accept()
        s.settimeout(30)
        print("peer", peer[0], "local", s.getsockname()[0], "family",
              s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN), "flow", peer[2], "scope", peer[3],
              flush=True)
        while True:
            d = s.recv(65536)
            if not d:
                break
            s.sendall(d)
        s.close()


if __name__ == "__main__":
    main()
