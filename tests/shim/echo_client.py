#!/usr/bin/env python3
"""Echo client for the shim tests.

    echo_client.py ADDR PORT [BYTES [THREADS]]

Each of THREADS threads (default 1) opens its own connection, sends BYTES
(default 1000000) random bytes from one thread while reading the echo in
another, shuts its side down (SHUT_WR) and reads until EOF. The echo must be
the bytes sent. One line per connection; exit status 1 on any mismatch or
error.
"""
import hashlib
import os
import socket
import sys
import threading

failed = []
lock = threading.Lock()


def say(line):
    """One whole line per call: threads' lines must not interleave."""
    with lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def one(n, addr, port, size):
    try:
        one_connection(n, addr, port, size)
    except Exception as e:  # a thread's exception must fail the run
        say("conn %d: FAIL %r" % (n, e))
        failed.append(n)


def one_connection(n, addr, port, size):
    data = os.urandom(size)
    s = socket.create_connection((addr, port), timeout=30)
    err = []

    def send():
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=send)
    t.start()
    h, total = hashlib.sha256(), 0
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            h.update(b)
            total += len(b)
    except OSError as e:
        err.append(e)
    t.join()
    s.close()
    want = hashlib.sha256(data).hexdigest()
    if err or total != size or h.hexdigest() != want:
        say("conn %d: FAIL sent %d %s, echo %d %s %s" %
            (n, size, want, total, h.hexdigest(), err))
        failed.append(n)
    else:
        say("conn %d: ok %d bytes %s" % (n, total, want))


def main():
    addr, port = sys.argv[1], int(sys.argv[2])
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 1000000
    nthreads = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    threads = [threading.Thread(target=one, args=(n, addr, port, size))
               for n in range(1, nthreads + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
