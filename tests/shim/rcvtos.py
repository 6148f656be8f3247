#!/usr/bin/env python3
"""IP_PKTOPTIONS' IP_TOS on a TCP socket, for 061-opts.bats: Linux's
rcv_tos, the TOS byte of the segment that completed an accepted socket's
handshake (tcp_v4_syn_recv_sock), and 0 on a socket that connected.

    rcvtos.py server ADDR PORT READY   listens (IP_RECVTOS, inherited by
                                       the accepted socket), creates READY,
                                       accepts one: "accepted CMSGS"
    rcvtos.py client ADDR PORT TOS     connects with IP_TOS TOS and
                                       IP_RECVTOS: "connected CMSGS"
"""
import socket
import sys

from shimlib import cmsg_list, sockopt_hex

IP_RECVTOS, IP_PKTOPTIONS = 13, 9


def pkt(s):
    return cmsg_list(sockopt_hex(s, socket.IPPROTO_IP, IP_PKTOPTIONS, 256))


if sys.argv[1] == "server":
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.setsockopt(socket.IPPROTO_IP, IP_RECVTOS, 1)
    ls.bind((sys.argv[2], int(sys.argv[3])))
    ls.listen(1)
    open(sys.argv[4], "w").close()
    ls.settimeout(20)
    c, _ = ls.accept()
    print("accepted", pkt(c))
    c.recv(1)
else:
    c = socket.socket()
    c.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, int(sys.argv[4], 0))
    c.setsockopt(socket.IPPROTO_IP, IP_RECVTOS, 1)
    c.settimeout(10)
    c.connect((sys.argv[2], int(sys.argv[3])))
    print("connected", pkt(c))
