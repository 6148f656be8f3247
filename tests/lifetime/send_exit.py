#!/usr/bin/env python3
"""Connect, send a file, and exit at once (090-lifetime.bats).

    send_exit.py MODE ADDR PORT FILE [PIDFILE]

MODE close:   close() the socket, then sys.exit(0) at once.
MODE noclose: sys.exit(0) with the socket still open: its fd is detached from
              the socket object (kept in a global), so that no finalizer
              closes it; the process's exit is the only close.
MODE fork:    fork after connect; the parent exits at once (sys.exit, the
              socket still open); the child waits until its parent is gone,
              then sends the file, closes and exits.
MODE kill:    send the file, then SIGKILL itself, the socket still open.
MODE segv:    the same with SIGSEGV (no core file).
MODE forkkill: as fork, but the child SIGKILLs itself after sending, the
              socket still open.
MODE execfail: three times, an exec that fails (no such file) and then a
              new connection that sends the file and closes; then the
              first socket sends it and closes. Prints "threads N M": the
              process's threads before the first exec and at the end, once
              they are as many again or after 2 s (equal on Linux; under
              ustcp a failed exec must leave no thread behind).

With PIDFILE, the pid of the process that exits first is written there
(the program's pid, to tell it from an exit keeper's).
"""
import os
import resource
import signal
import socket
import sys
import time

KEEP = None


def main():
    global KEEP
    mode, addr, port, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    pidfile = sys.argv[5] if len(sys.argv) > 5 else None
    with open(path, "rb") as f:
        data = f.read()
    s = socket.create_connection((addr, port), timeout=30)
    s.settimeout(None)
    if pidfile:
        with open(pidfile + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(pidfile + ".tmp", pidfile)
    if mode in ("fork", "forkkill"):
        parent = os.getpid()
        if os.fork() != 0:
            KEEP = s.detach()
            sys.exit(0)
        for _ in range(1000):
            if os.getppid() != parent:
                break
            time.sleep(0.01)
        else:
            sys.stderr.write("send_exit.py: the parent is still there\n")
            os._exit(1)
        s.sendall(data)
        if mode == "forkkill":
            os.kill(os.getpid(), signal.SIGKILL)
        s.close()
        sys.exit(0)
    if mode == "execfail":
        before = len(os.listdir("/proc/self/task"))
        for _ in range(3):
            try:
                os.execv("/nonexistent/ustcp-no-such-program", ["x"])
            except FileNotFoundError:
                pass
            t = socket.create_connection((addr, port), timeout=30)
            t.sendall(data)
            t.close()
        s.sendall(data)
        s.close()
        # An old stack thread ends just after its guardian: give the
        # last one a moment (one left parked for good stays counted).
        for _ in range(100):
            now = len(os.listdir("/proc/self/task"))
            if now <= before:
                break
            time.sleep(0.02)
        print("threads %d %d" % (before, now))
        sys.exit(0)
    s.sendall(data)
    if mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif mode == "segv":
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.kill(os.getpid(), signal.SIGSEGV)
    elif mode == "close":
        s.close()
    elif mode == "noclose":
        KEEP = s.detach()
    else:
        sys.exit("send_exit.py: unknown mode " + mode)
    sys.exit(0)


if __name__ == "__main__":
    main()
