#!/usr/bin/env python3
"""A blocking recv() and a signal (090-lifetime.bats).

    eintr.py ADDR PORT restart|norestart

Connects (the peer sends one byte after 1.5 s), sets a SIGALRM handler that
raises, with SA_RESTART (restart) or without (norestart), arms a 0.3 s timer
and blocks in recv(). Without SA_RESTART, recv() fails with EINTR at the
signal and the handler's exception comes at once; with SA_RESTART the call
goes on (the handler runs only when recv() returns, once the byte came).
Prints "alarm after SECONDS" and exits 0.
"""
import signal
import socket
import sys
import time


class Alarm(Exception):
    pass


def on_alarm(signum, frame):
    raise Alarm()


def main():
    addr, port, how = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    s = socket.create_connection((addr, port), timeout=10)
    s.settimeout(None)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.siginterrupt(signal.SIGALRM, how == "norestart")
    t0 = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    try:
        got = s.recv(10)
        print("recv returned %r after %.2f, no alarm" % (got, time.monotonic() - t0))
        sys.exit(1)
    except Alarm:
        print("alarm after %.2f" % (time.monotonic() - t0), flush=True)
    s.close()


if __name__ == "__main__":
    main()
