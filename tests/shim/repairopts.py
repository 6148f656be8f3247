#!/usr/bin/env python3
"""The repair options and TCP_TIMESTAMP (issue 14), for 061-opts.bats,
run without CAP_NET_ADMIN: Linux refuses TCP_REPAIR to such a process,
and every option that needs the repair mode answers as outside it. On a
fresh socket, a listener and a connected one: what each set and get
returns, then TCP_TIMESTAMP, the TSval clock in ms: a fresh socket's is
CLOCK_MONOTONIC's (no offset before a connect), and a connected one's
ticks in ms.

    repairopts.py ADDR PORT   (a listener of the peer's to connect to)
"""
import socket
import sys
import time

from shimlib import attempt

TCP_REPAIR, TCP_REPAIR_QUEUE, TCP_QUEUE_SEQ, TCP_REPAIR_OPTIONS = 19, 20, 21, 22
TCP_TIMESTAMP, TCP_REPAIR_WINDOW = 24, 29
NAMES = {TCP_REPAIR: "REPAIR", TCP_REPAIR_QUEUE: "REPAIR_QUEUE", TCP_QUEUE_SEQ: "QUEUE_SEQ",
         TCP_REPAIR_OPTIONS: "REPAIR_OPTIONS", TCP_TIMESTAMP: "TIMESTAMP", TCP_REPAIR_WINDOW: "REPAIR_WINDOW"}


def r(f):
    """attempt(f), with "ok" for a call that returned nothing."""
    v = attempt(f)
    return "ok" if v is None else str(v)


def sock(state, peer):
    s = socket.socket()
    if state == "listener":
        s.listen(1)
    elif state == "connected":
        s.connect(peer)
    return s


def main():
    peer = (sys.argv[1], int(sys.argv[2]))
    for state in ("fresh", "listener", "connected"):
        for opt, name in NAMES.items():
            s = sock(state, peer)
            row = [state, name]
            if opt != TCP_TIMESTAMP:
                row.append("get " + r(lambda: s.getsockopt(socket.IPPROTO_TCP, opt)))
            if opt == TCP_REPAIR_WINDOW:  # its struct's length
                row.append("get20 " + r(lambda: s.getsockopt(socket.IPPROTO_TCP, opt, 20)))
            for v in (1, 0, bytes(20)):
                row.append("set " + r(lambda: s.setsockopt(socket.IPPROTO_TCP, opt, v)))
            print(*row)
            s.close()
        s = sock(state, peer)
        ts = s.getsockopt(socket.IPPROTO_TCP, TCP_TIMESTAMP) & 0xffffffff
        mono = int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1000) & 0xffffffff
        time.sleep(0.2)
        ticks = (s.getsockopt(socket.IPPROTO_TCP, TCP_TIMESTAMP) - ts) & 0xffffffff
        if state == "connected":
            print(state, "TIMESTAMP ticks 200 ms", 190 <= ticks <= 400)
        else:
            print(state, "TIMESTAMP CLOCK_MONOTONIC", abs(ts - mono) < 100, "ticks 200 ms", 190 <= ticks <= 400)
        s.close()


if __name__ == "__main__":
    main()
