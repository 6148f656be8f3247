#!/usr/bin/env python3
"""TCP_INQ (issue 14): recvmsg's TCP_CM_INQ control message, the bytes
left to read after the read, as Linux's tcp_inq_hint counts them (the
peer's FIN among them once it came); set on a listener, an accepted socket
has it; the message cut to a short control buffer (MSG_CTRUNC), and none
without one.

    inq.py server ADDR PORT   the program: prints what its reads see
    inq.py client ADDR PORT   the kernel peer: 3000 bytes, then its FIN
                              when the server's byte comes
"""
import socket
import sys
import time

from shimlib import attempt

TCP_INQ = 36
FULL = socket.CMSG_SPACE(4)
HEADER = socket.CMSG_LEN(0)


def read(c, n, anc, flags=0):
    """One recvmsg: its length, the control messages and MSG_CTRUNC."""
    data, ancdata, fl, _ = c.recvmsg(n, anc, flags)
    msgs = []
    for level, kind, d in ancdata:
        v = int.from_bytes(d, "little") if len(d) == 4 else d.hex()
        msgs.append(f"{'tcp' if level == socket.IPPROTO_TCP else level}/{kind}={v}")
    return f"{len(data)} [{' '.join(msgs)}] ctrunc={int(bool(fl & socket.MSG_CTRUNC))}"


def server(addr, port):
    l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    print("fresh", l.getsockopt(socket.IPPROTO_TCP, TCP_INQ))
    print("set 2", attempt(lambda: l.setsockopt(socket.IPPROTO_TCP, TCP_INQ, 2)))
    print("set -1", attempt(lambda: l.setsockopt(socket.IPPROTO_TCP, TCP_INQ, -1)))
    l.setsockopt(socket.IPPROTO_TCP, TCP_INQ, 1)
    print("listener", l.getsockopt(socket.IPPROTO_TCP, TCP_INQ))
    l.bind((addr, port))
    l.listen(1)
    c, _ = l.accept()
    print("accepted", c.getsockopt(socket.IPPROTO_TCP, TCP_INQ))
    time.sleep(0.5)  # the 3000 bytes are here
    print("peek", read(c, 100, FULL, socket.MSG_PEEK))
    print("read", read(c, 1000, FULL))
    print("no buffer", read(c, 500, 0))
    print("short buffer", read(c, 500, HEADER + 2))
    print("header only", read(c, 10, HEADER))
    c.send(b"g")
    time.sleep(0.5)  # the FIN is here
    print("after FIN", read(c, 490, FULL))
    print("the rest", read(c, 1000, FULL))
    print("end", read(c, 1000, FULL))
    c.setsockopt(socket.IPPROTO_TCP, TCP_INQ, 0)
    print("off", read(c, 1000, FULL))
    c.close()


def client(addr, port):
    s = socket.create_connection((addr, port), timeout=10)
    s.sendall(bytes(3000))
    s.recv(1)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    s.close()


if __name__ == "__main__":
    {"server": server, "client": client}[sys.argv[1]](sys.argv[2], int(sys.argv[3]))
