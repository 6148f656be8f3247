"""A kernel server that holds idle connections and counts their ends.

    idle_server.py ADDR PORT[:COUNT] N OUT [SECONDS]

Listens on ADDR:PORT (and the COUNT - 1 ports after it: one client address
has at most one connection per local port to each of them; backlog 4096),
accepts connections and reads from each
until EOF. Writes "accepted A eof E rst R" to OUT when N connections have
ended (EOF or reset), or after SECONDS (default 120), or on SIGTERM (what it
counted by then: for a caller that learns N only afterwards), then exits.
The fd limit is raised to the hard limit first.
"""
import os
import resource
import selectors
import signal
import socket
import sys
import time


def main():
    addr, ports, n, out = sys.argv[1], sys.argv[2].split(":"), int(sys.argv[3]), sys.argv[4]
    first, count = int(ports[0]), int(ports[1]) if len(ports) > 1 else 1
    limit = float(sys.argv[5]) if len(sys.argv) > 5 else 120.0
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sel = selectors.DefaultSelector()
    listeners = set()
    for port in range(first, first + count):
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((addr, port))
        ls.listen(4096)
        ls.setblocking(False)
        sel.register(ls, selectors.EVENT_READ)
        listeners.add(ls)
    accepted = eof = rst = 0
    end = time.monotonic() + limit
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    while eof + rst < n and time.monotonic() < end and not stop:
        for key, _ in sel.select(timeout=0.5):
            if key.fileobj in listeners:
                ls = key.fileobj
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
