#!/usr/bin/env python3
"""The kernel side of killed.py (090-lifetime.bats): how its connections end.

    rst_peer.py serve ADDR PORT      accept one connection, send 1000 bytes,
                                     read to the end
    rst_peer.py connect ADDR PORT N  open N connections (the other side does
                                     not accept them), print "connected N",
                                     read each to its end

Each connection's end, one line each: "eof" (a FIN), "reset" (ECONNRESET),
"timeout" (nothing in 30 s).
"""
import socket
import sys


def end_of(s):
    s.settimeout(30)
    try:
        while True:
            if not s.recv(65536):
                return "eof"
    except ConnectionResetError:
        return "reset"
    except socket.timeout:
        return "timeout"


def main():
    mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "serve":
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((addr, port))
        ls.listen(1)
        s, _ = ls.accept()
        s.sendall(b"x" * 1000)
        print(end_of(s), flush=True)
    else:
        conns = [socket.create_connection((addr, port), timeout=30) for _ in range(int(sys.argv[4]))]
        print("connected %d" % len(conns), flush=True)
        for s in conns:
            print(end_of(s), flush=True)


if __name__ == "__main__":
    main()
