#!/usr/bin/env python3
"""A program that dies by SIGKILL with something pending (090-lifetime.bats).

    killed.py unread ADDR PORT
    killed.py listen ADDR PORT READYFILE

unread: connect to ADDR:PORT, wait until data has come (the peer sends
        first), read none of it, and SIGKILL itself: Linux answers with a
        RST, as for a close with unread data.
listen: listen on ADDR:PORT (backlog 16), write READYFILE, and wait to be
        killed, accepting nothing: the connections in its queue get a RST.
        Once three connections wait in the queue (TCP_INFO's unacked of a
        listener: the peer's connect returns at the SYN-ACK, its ACK may
        still be on its way), it writes READYFILE.queued.
"""
import os
import select
import signal
import socket
import struct
import sys
import time


def main():
    mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "unread":
        s = socket.create_connection((addr, port), timeout=30)
        r, _, _ = select.select([s], [], [], 30)
        if not r:
            sys.exit("killed.py: no data in 30 s")
        os.kill(os.getpid(), signal.SIGKILL)
    elif mode == "listen":
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        s.listen(16)
        with open(sys.argv[4] + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(sys.argv[4] + ".tmp", sys.argv[4])
        end = time.monotonic() + 60
        while time.monotonic() < end:
            info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
            if struct.unpack_from("I", info, 24)[0] >= 3:  # tcpi_unacked
                open(sys.argv[4] + ".queued", "w").close()
                break
            time.sleep(0.01)
        time.sleep(120)
        sys.exit("killed.py: not killed in 120 s")
    else:
        sys.exit("killed.py: unknown mode " + mode)


if __name__ == "__main__":
    main()
