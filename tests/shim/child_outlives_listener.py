#!/usr/bin/env python3
"""A listener's connection that outlives it, for 032-shim6.bats's port
spaces across processes.

    child_outlives_listener.py inet|v6only|dual PORT GO_FILE

Listens on PORT (as bind_listen.py makes its sockets), prints
"listening", accepts one client, closes the listener and prints
"holding": from then on only the connection holds the port, in the
families its listener took. When GO_FILE exists (at most 60 s later) it
sends "bye" and closes.
"""
import os
import socket
import sys
import time


def main():
    fam, port, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if fam == "inet":
        s, addr = socket.socket(socket.AF_INET), "0.0.0.0"
    else:
        s, addr = socket.socket(socket.AF_INET6), "::"
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if fam == "v6only" else 0)
    s.bind((addr, port))
    s.listen(4)
    print("listening", flush=True)
    s.settimeout(60)
    c, _ = s.accept()
    s.close()
    print("holding", flush=True)
    end = time.monotonic() + 60
    while not os.path.exists(go) and time.monotonic() < end:
        time.sleep(0.05)
    c.sendall(b"bye\n")
    c.close()


if __name__ == "__main__":
    main()
