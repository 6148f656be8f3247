#!/usr/bin/env python3
"""Kernel clients of fork_server.py (090-lifetime.bats).

    clients.py ADDR PORT COUNT BYTES PARALLEL

COUNT connections, PARALLEL at a time: each sends BYTES random bytes, shuts
its sending side down, reads the answer to EOF and checks it (the SHA-256
and the count of what it sent). One line per connection, "ok N PID" or
"bad N WHAT", then "ok COUNT of COUNT" (exit 0) or "bad K of COUNT" (exit 1).
The PIDs are the server's children that answered.
"""
import concurrent.futures
import hashlib
import os
import socket
import sys


def one(n, addr, port, size):
    data = os.urandom(size)
    want = "%s %d" % (hashlib.sha256(data).hexdigest(), size)
    try:
        s = socket.create_connection((addr, port), timeout=30)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            got += b
        s.close()
    except OSError as e:
        return "bad %d %s" % (n, e)
    words = got.decode(errors="replace").split()
    if len(words) == 3 and " ".join(words[:2]) == want:
        return "ok %d %s" % (n, words[2])
    return "bad %d answer %r" % (n, got)


def main():
    addr, port, count, size, par = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
        int(sys.argv[4]), int(sys.argv[5])
    with concurrent.futures.ThreadPoolExecutor(par) as ex:
        lines = list(ex.map(lambda n: one(n, addr, port, size), range(1, count + 1)))
    for line in lines:
        print(line)
    bad = sum(1 for line in lines if not line.startswith("ok "))
    if bad:
        print("bad %d of %d" % (bad, count))
        sys.exit(1)
    print("ok %d of %d" % (count, count))


if __name__ == "__main__":
    main()
