#!/usr/bin/env python3
"""Bulk sends over each family from one process, for 032-shim6.bats (GSO
per family): one stack carries both, so what one family's frames do to the
link's GSO the other's see.

    gso_families.py peer ADDR4 ADDR6 PORT
        the kernel peer: a listener on each address (the same PORT), reading
        one connection on each to its end; prints "got FAMILY BYTES" for
        each, IPv6 first.
    gso_families.py send ADDR6 ADDR4 PORT BYTES DIR
        the program: BYTES to [ADDR6]:PORT, to the peer's end; then writes
        DIR/v6.done holding its pid and waits for DIR/go4 (20 s at most);
        then BYTES to ADDR4:PORT, writes DIR/v4.done and waits for DIR/stop
        (20 s at most), so that the test reads its counters in between.
"""
import os
import socket
import sys
import time


def wait_for(path, secs=20):
    end = time.monotonic() + secs
    while time.monotonic() < end and not os.path.exists(path):
        time.sleep(0.05)


def mark(path):
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(path + ".tmp", path)


def send(family, addr, port, n):
    s = socket.socket(family)
    s.settimeout(30)
    s.connect((addr, port))
    buf = bytes(1 << 16)
    while n > 0:
        n -= s.send(buf[:min(n, len(buf))])
    s.shutdown(socket.SHUT_WR)
    assert s.recv(1) == b""
    s.close()


def peer(addr4, addr6, port):
    ls = []
    for fam, a in ((socket.AF_INET6, addr6), (socket.AF_INET, addr4)):
        l = socket.socket(fam)
        l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        l.bind((a, port))
        l.listen(1)
        l.settimeout(40)
        ls.append(l)
    for name, l in zip(("v6", "v4"), ls):
        c, _ = l.accept()
        n = 0
        while True:
            b = c.recv(1 << 16)
            if not b:
                break
            n += len(b)
        c.close()
        print("got", name, n, flush=True)


def main():
    if sys.argv[1] == "peer":
        peer(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    addr6, addr4, port, n, d = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
    send(socket.AF_INET6, addr6, port, n)
    mark(os.path.join(d, "v6.done"))
    wait_for(os.path.join(d, "go4"))
    send(socket.AF_INET, addr4, port, n)
    mark(os.path.join(d, "v4.done"))
    wait_for(os.path.join(d, "stop"))


main()
