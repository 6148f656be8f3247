"""A pre-forked server: workers accepting on one listener they inherited.

    prefork.py serve ADDR PORT WORKERS DIR     (the program)
    prefork.py ask ADDR PORT N CONCURRENCY     (the peer)

"serve" listens, writes DIR/ready, forks WORKERS children that each block
in accept() on the listener they share (Apache's prefork, gunicorn's sync
workers), answer each connection's line with their pid and close, until
DIR/stop appears; the parent then ends them. "ask" makes N connections,
CONCURRENCY at a time, and prints whether every one was answered and by
how many workers.
"""
import os
import signal
import socket
import sys
import threading
import time

import shimlib


def worker(lst):
    while True:
        c, _ = lst.accept()
        f = c.makefile("rb")
        f.readline()
        c.sendall(b"%d\n" % os.getpid())
        c.close()


def serve(addr, port, workers, ctl):
    lst = socket.socket(shimlib.family(addr))
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind((addr, port))
    lst.listen(64)
    kids = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            try:
                worker(lst)
            finally:
                os._exit(0)
        kids.append(pid)
    open(os.path.join(ctl, "ready"), "w").close()
    deadline = time.monotonic() + 50
    while time.monotonic() < deadline and not os.path.exists(os.path.join(ctl, "stop")):
        time.sleep(0.05)
    for pid in kids:
        os.kill(pid, signal.SIGTERM)
    for pid in kids:
        os.waitpid(pid, 0)
    lst.close()


def ask(addr, port, n, conc):
    answers = []
    lock = threading.Lock()
    todo = list(range(n))

    def client():
        while True:
            with lock:
                if not todo:
                    return
                todo.pop()
            c = socket.socket(shimlib.family(addr))
            c.settimeout(20)
            try:
                c.connect((addr, port))
                c.sendall(b"hello\n")
                who = c.makefile("rb").readline().strip()
            except OSError as e:
                who = b"error %d" % e.errno
            c.close()
            with lock:
                answers.append(who)

    threads = [threading.Thread(target=client) for _ in range(conc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [a for a in answers if a.isdigit()]
    print("%d connections answered by a worker: %s" % (n, len(ok) == n))
    spread = {a: ok.count(a) for a in set(ok)}
    print("workers that answered: %d" % len(spread))
    print("spread: %s" % sorted(spread.values()), file=sys.stderr)


def main():
    if sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        ask(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))


main()
