#!/usr/bin/env python3
"""A server for the SYN flood test and benchmark.

    flood_server.py ADDR PORT BACKLOG REPLY_BYTES SECONDS

Listens on ADDR:PORT (IPv4 or IPv6) with BACKLOG, accepts connections one at a time, reads
one line from each, answers REPLY_BYTES bytes ((i * 7 + 1) & 0xff), waits
for the client's end (EOF) and closes: the client closes first, so TIME-WAIT
is the client's and the server's memory is the flood's and its queues'
alone. Writes "served N" to stdout after SECONDS, or at SIGTERM, and exits.
"""
import errno
import signal
import socket
import sys
import time


def main():
    addr, port, backlog, size, secs = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                       int(sys.argv[4]), float(sys.argv[5]))
    reply = bytes((i * 7 + 1) & 0xff for i in range(size))
    ls = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # A fresh IPv6 address is tentative while DAD runs (a second): bind
    # fails with EADDRNOTAVAIL then, on ustcp as on Linux. Tried for 5 s.
    for _ in range(50):
        try:
            ls.bind((addr, port))
            break
        except OSError as e:
            if e.errno != errno.EADDRNOTAVAIL:
                raise
            time.sleep(0.1)
    else:
        ls.bind((addr, port))
    ls.listen(backlog)
    ls.settimeout(0.2)
    served = 0
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *a: stop.__setitem__(0, True))
    end = time.monotonic() + secs
    while not stop[0] and time.monotonic() < end:
        try:
            c, _ = ls.accept()
        except (socket.timeout, InterruptedError):
            continue
        try:
            c.settimeout(5)
            buf = b""
            while not buf.endswith(b"\n"):
                d = c.recv(100)
                if not d:
                    break
                buf += d
            c.sendall(reply)
            while c.recv(100):
                pass
            served += 1
        except OSError:
            pass
        finally:
            c.close()
    print("served", served, flush=True)


if __name__ == "__main__":
    main()
