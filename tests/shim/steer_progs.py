#!/usr/bin/python3
"""Programs for tests/bats/099-steering.bats, run under the launcher (one
broker, so one steering group for all of them). Standard library only.

  steer_progs.py hold ADDR PORT PIDFILE STOPFILE
      connects to ADDR:PORT, writes its pid to PIDFILE once connected, and
      holds the connection until STOPFILE exists (40 s at most).
  steer_progs.py bulk ADDR PORT
      connects, reads to the end, prints "bulk BYTES".
  steer_progs.py bulk-after ADDR PORT PIDFILE GOFILE STOPFILE
      makes its socket (its stack joins the group) and writes its pid to
      PIDFILE; once GOFILE exists connects, reads to the end, prints
      "bulk BYTES", and waits for STOPFILE (40 s at most) before it exits.
  steer_progs.py fork-server ADDR PORT N READYFILE
      listens on ADDR:PORT, writes READYFILE, accepts N connections, and
      serves each in a child of its own (a stack of its own, a member of
      the group): the child echoes what it reads until the peer's end.
  steer_progs.py churn ADDR PORT N [eof]
      N connections one after the other (more than a pool of client ports
      holds), each sending 1000 bytes that the peer echoes; with eof, each
      then waits for the peer's end before it closes (no TIME-WAIT here);
      prints "churn OK" or the first failure.
  steer_progs.py serve FAMILY ADDR PORT N READYFILE STOPFILE
      an AF_INET (FAMILY 4) or IPV6_V6ONLY AF_INET6 (6) listener on
      ADDR:PORT; writes READYFILE, then answers N connections with
      "FAMILY PID\n" each; prints "served FAMILY N" and waits for
      STOPFILE (30 s at most) before it exits.
"""
import os
import socket
import sys
import time


def hold(addr, port, pidfile, stopfile):
    s = socket.create_connection((addr, int(port)), timeout=10)
    with open(pidfile + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(pidfile + ".tmp", pidfile)
    wait_for(stopfile, 40)
    s.close()


def wait_for(path, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end and not os.path.exists(path):
        time.sleep(0.05)


def read_all(s):
    n = 0
    while True:
        b = s.recv(1 << 16)
        if not b:
            break
        n += len(b)
    s.close()
    print("bulk", n, flush=True)


def bulk(addr, port):
    read_all(socket.create_connection((addr, int(port)), timeout=20))


def bulk_after(addr, port, pidfile, gofile, stopfile):
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
    with open(pidfile + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(pidfile + ".tmp", pidfile)
    wait_for(gofile, 40)
    s.settimeout(20)
    s.connect((addr, int(port)))
    read_all(s)
    wait_for(stopfile, 40)


def fork_server(addr, port, n, readyfile):
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((addr, int(port)))
    l.listen(64)
    l.settimeout(30)
    open(readyfile, "w").close()
    kids = []
    for _ in range(int(n)):
        c, _ = l.accept()
        pid = os.fork()
        if pid == 0:
            l.close()
            c.settimeout(20)
            while True:
                b = c.recv(65536)
                if not b:
                    break
                c.sendall(b)
            c.close()
            os._exit(0)
        c.close()
        kids.append(pid)
    bad = 0
    for pid in kids:
        _, st = os.waitpid(pid, 0)
        bad += st != 0
    print("fork-server served", len(kids), "failed", bad, flush=True)


def churn(addr, port, n, end="close"):
    data = bytes(range(250)) * 4
    for i in range(int(n)):
        try:
            s = socket.create_connection((addr, int(port)), timeout=10)
            s.sendall(data)
            got = b""
            while len(got) < len(data):
                b = s.recv(65536)
                if not b:
                    break
                got += b
            if end == "eof":
                while s.recv(65536):
                    pass
            s.close()
        except OSError as e:
            print("churn failed at", i, e, flush=True)
            return
        if got != data:
            print("churn failed at", i, "echo", len(got), flush=True)
            return
    print("churn OK", flush=True)


def serve(family, addr, port, n, readyfile, stopfile):
    l = socket.socket(socket.AF_INET6 if family == "6" else socket.AF_INET)
    if family == "6":
        l.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((addr, int(port)))
    l.listen(16)
    l.settimeout(30)
    open(readyfile, "w").close()
    for _ in range(int(n)):
        c, _ = l.accept()
        c.sendall(("%s %d\n" % (family, os.getpid())).encode())
        c.close()
    print("served", family, n, flush=True)
    end = time.monotonic() + 30
    while time.monotonic() < end and not os.path.exists(stopfile):
        time.sleep(0.05)


if __name__ == "__main__":
    {"hold": hold, "bulk": bulk, "bulk-after": bulk_after, "fork-server": fork_server, "churn": churn,
     "serve": serve}[sys.argv[1]](*sys.argv[2:])
