"""A kernel server that holds idle connections and counts their ends.

    idle_server.py ADDR PORT N OUT [SECONDS]

Listens on ADDR:PORT (backlog 4096), accepts connections and reads from each
until EOF. Writes "accepted A eof E rst R" to OUT when N connections have
ended (EOF or reset), or after SECONDS (default 120) in any case, then exits.
The fd limit is raised to the hard limit first.
"""
import os
import resource
import selectors
import socket
import sys
import time


def main():
    addr, port, n, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    limit = float(sys.argv[5]) if len(sys.argv) > 5 else 120.0
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(4096)
    ls.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ)
    accepted = eof = rst = 0
    end = time.monotonic() + limit
    while eof + rst < n and time.monotonic() < end:
        for key, _ in sel.select(timeout=0.5):
            if key.fileobj is ls:
                while True:
                    try:
                        c, _ = ls.accept()
                    except BlockingIOError:
                        break
                    c.setblocking(False)
                    sel.register(c, selectors.EVENT_READ)
                    accepted += 1
                continue
            c = key.fileobj
            try:
                data = c.recv(4096)
            except ConnectionResetError:
                data = None
            except BlockingIOError:
                continue
            if data:
                continue
            if data is None:
                rst += 1
            else:
                eof += 1
            sel.unregister(c)
            c.close()
    with open(out + ".tmp", "w") as f:
        f.write("accepted %d eof %d rst %d\n" % (accepted, eof, rst))
    os.rename(out + ".tmp", out)


main()
