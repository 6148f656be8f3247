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
import struct
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
    rs = socket.socket(shimlib.family(addr), socket.SOCK_RAW, socket.IPPROTO_TCP)
    src = shimlib.route_source(addr, port)
    counts = []
    for i in range(n):
        sport = 10000 + (os.getpid() * 7 + i * 13) % 20000  # not ephemeral
        seq, ack = struct.unpack("!II", os.urandom(8))
        rs.sendto(shimlib.tcp_segment(src, addr, sport, port, seq, ack, 0x10), (addr, 0))
        # The first RST within 3 s (a loaded machine answers late), then
        # any other within 0.4 s of it (a second stack's would come about
        # as soon).
        rsts = 0
        for flags, _ in shimlib.raw_replies(rs, addr, port, sport, time.monotonic() + 3):
            if flags & 0x04:
                rsts = 1
                break
        if rsts:
            later = shimlib.raw_replies(rs, addr, port, sport, time.monotonic() + 0.4)
            rsts += sum(1 for flags, _ in later if flags & 0x04)
        counts.append(rsts)
    rs.close()
    print("RSTs per bare ACK:", " ".join(map(str, counts)))


def main():
    if sys.argv[1] == "hold":
        hold(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        ask(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))


main()
