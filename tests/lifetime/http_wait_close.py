#!/usr/bin/env python3
"""An HTTP/1.1 server that lets the client close first (090-lifetime.bats,
tests/bench/keepers).

    http_wait_close.py ADDR PORT [SECONDS]

Each connection, on a thread of its own: the request's head is read, 100
zero bytes are answered with a Content-Length, and the connection is
closed only once the client has closed its side, as nginx does with
keep-alive: the client is the one left in TIME-WAIT. Serves until killed,
or for SECONDS (default 600).
"""
import socket
import sys
import threading

REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + bytes(100)


def serve(c):
    with c:
        head = b""
        while b"\r\n\r\n" not in head:
            d = c.recv(4096)
            if not d:
                return
            head += d
        c.sendall(REPLY)
        while c.recv(4096):
            pass


def main():
    addr, port = sys.argv[1], int(sys.argv[2])
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 600
    l = socket.create_server((addr, port), backlog=128)
    l.settimeout(1)
    end = threading.Event()
    timer = threading.Timer(seconds, end.set)
    timer.daemon = True
    timer.start()
    while not end.is_set():
        try:
            c, _ = l.accept()
        except socket.timeout:
            continue
        c.settimeout(None)
        threading.Thread(target=serve, args=(c,), daemon=True).start()


if __name__ == "__main__":
    main()
