"""What a peer sees of a host with several programs on its address.

    one_host.py hold ADDR PORT DIR      (on the stack's side, twice or more)
    one_host.py ask ADDR PORT N         (the peer)

"hold" listens on ADDR:PORT and writes DIR/PORT.ready, then waits for
DIR/stop. "ask" sends N bare ACKs to PORT, which nobody holds, from source
ports nobody connected from, and prints how many RSTs came back for each
(a host answers each with one RST: Linux's, and under ustcp whichever
stack answers for the address).
"""
import os
import socket
import sys
import time

import shimlib


def hold(addr, port, ctl):
    s = socket.socket(shimlib.family(addr), socket.SOCK_STREAM)
    s.bind((addr, port))
    s.listen(1)
    open(os.path.join(ctl, "%d.ready" % port), "w").close()
    deadline = time.monotonic() + 50
    while time.monotonic() < deadline and not os.path.exists(os.path.join(ctl, "stop")):
        time.sleep(0.05)


def ask(addr, port, n):
    counts = shimlib.stray_ack_rsts(addr, port, n)
    print("RSTs per bare ACK:", " ".join(map(str, counts)))


def main():
    if sys.argv[1] == "hold":
        hold(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        ask(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))


main()
