#!/usr/bin/env python3
"""IP_PKTOPTIONS' IP_TOS on a TCP socket, for 061-opts.bats: Linux's
rcv_tos, the TOS byte of the segment that completed an accepted socket's
handshake (tcp_v4_syn_recv_sock), and 0 on a socket that connected; over
IPv6 the same segment's hop limit and flow information
(tcp_v6_syn_recv_sock: np->mcast_hops, np->rcv_flowinfo), which
IPV6_MULTICAST_HOPS and IPV6_2292PKTOPTIONS read.

    rcvtos.py server ADDR PORT READY   listens (IP_RECVTOS, inherited by
                                       the accepted socket), creates READY,
                                       accepts one: "accepted CMSGS", sends
                                       a byte
    rcvtos.py client ADDR PORT TOS     connects with IP_TOS TOS and
                                       IP_RECVTOS: "connected CMSGS", waits
                                       for a byte
    rcvtos.py server6 ADDR PORT READY  the same over IPv6 (IPV6_RECVHOPLIMIT,
                                       IPV6_RECVTCLASS, IPV6_FLOWINFO; its
                                       SYN-ACK with traffic class 0x48 and
                                       no flow label): "accepted HOPS
                                       CMSGS", sends a byte, then once a
                                       byte came "data HOPS CMSGS", and
                                       once its connection is closed
                                       (the peer's FIN, ours, its ACK)
                                       "closed HOPS CMSGS"
    rcvtos.py server6 ADDR PORT READY ext   the same, asking for the
                                       extension headers too (RFC 3542's
                                       and RFC 2292's receive options)
    rcvtos.py client6 ADDR PORT TCLASS connects with IPV6_UNICAST_HOPS 33,
                                       IPV6_TCLASS TCLASS, no flow label
                                       (IPV6_AUTOFLOWLABEL 0) and the same
                                       receive options: "connected HOPS
                                       CMSGS"; once a byte came, sends one
                                       with hop limit 44
    rcvtos.py client6 ADDR PORT TCLASS ext   the same with a hop-by-hop
                                       and a destination options header
                                       on every segment
"""
import socket
import sys
import time

from shimlib import cmsg_list, sockopt_hex

IP_RECVTOS, IP_PKTOPTIONS = 13, 9
IPV6_2292PKTOPTIONS, IPV6_FLOWINFO, IPV6_RECVPKTINFO, IPV6_RECVHOPLIMIT, IPV6_RECVTCLASS, IPV6_AUTOFLOWLABEL = 6, 11, 49, 51, 66, 70
RECV6 = (IPV6_RECVPKTINFO, IPV6_RECVHOPLIMIT, IPV6_RECVTCLASS, IPV6_FLOWINFO)
TCP_CLOSE = 7  # TCP_INFO's tcpi_state
# The extension headers' receive options, RFC 3542's and RFC 2292's
IPV6_2292HOPOPTS, IPV6_2292DSTOPTS, IPV6_RECVHOPOPTS, IPV6_RECVRTHDR, IPV6_RECVDSTOPTS = 3, 4, 53, 56, 58
RECV6_EXT = (IPV6_RECVHOPOPTS, IPV6_RECVRTHDR, IPV6_RECVDSTOPTS, IPV6_2292HOPOPTS, IPV6_2292DSTOPTS)
IPV6_HOPOPTS, IPV6_DSTOPTS = 54, 59
HOP8 = bytes([0, 0, 1, 4, 0, 0, 0, 0])  # a PadN of 4
DST16 = bytes([0, 1, 0x1e, 12]) + bytes(range(1, 13))  # an option to skip (RFC 3692 experimental)


def pkt(s):
    return cmsg_list(sockopt_hex(s, socket.IPPROTO_IP, IP_PKTOPTIONS, 256))


def pkt6(s):
    hops = s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS)
    return hops, cmsg_list(sockopt_hex(s, socket.IPPROTO_IPV6, IPV6_2292PKTOPTIONS, 256))


if sys.argv[1] == "server":
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.setsockopt(socket.IPPROTO_IP, IP_RECVTOS, 1)
    ls.bind((sys.argv[2], int(sys.argv[3])))
    ls.listen(1)
    open(sys.argv[4], "w").close()
    ls.settimeout(20)
    c, _ = ls.accept()
    print("accepted", pkt(c), flush=True)
    c.send(b"y")
    c.recv(1)
elif sys.argv[1] == "client":
    c = socket.socket()
    c.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, int(sys.argv[4], 0))
    c.setsockopt(socket.IPPROTO_IP, IP_RECVTOS, 1)
    c.settimeout(10)
    c.connect((sys.argv[2], int(sys.argv[3])))
    print("connected", pkt(c))
    c.recv(1)  # the server has read its options
elif sys.argv[1] == "server6":
    ls = socket.socket(socket.AF_INET6)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    for o in RECV6 + (RECV6_EXT if sys.argv[5:] == ["ext"] else ()):
        ls.setsockopt(socket.IPPROTO_IPV6, o, 1)
    ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, 0x48)
    ls.setsockopt(socket.IPPROTO_IPV6, IPV6_AUTOFLOWLABEL, 0)
    ls.bind((sys.argv[2], int(sys.argv[3])))
    ls.listen(1)
    open(sys.argv[4], "w").close()
    ls.settimeout(20)
    c, _ = ls.accept()
    print("accepted", *pkt6(c), flush=True)
    c.send(b"y")
    c.recv(1)
    print("data", *pkt6(c))
    c.recv(1)  # the peer's FIN
    # Our FIN, then CLOSED once the peer ACKs it: the values stay.
    c.shutdown(socket.SHUT_WR)
    for _ in range(100):
        if c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == TCP_CLOSE:
            break
        time.sleep(0.05)
    print("closed", *pkt6(c))
else:
    c = socket.socket(socket.AF_INET6)
    c.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 33)
    c.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, int(sys.argv[4], 0))
    c.setsockopt(socket.IPPROTO_IPV6, IPV6_AUTOFLOWLABEL, 0)
    for o in RECV6:
        c.setsockopt(socket.IPPROTO_IPV6, o, 1)
    if sys.argv[5:] == ["ext"]:
        c.setsockopt(socket.IPPROTO_IPV6, IPV6_HOPOPTS, HOP8)
        c.setsockopt(socket.IPPROTO_IPV6, IPV6_DSTOPTS, DST16)
    c.settimeout(10)
    c.connect((sys.argv[2], int(sys.argv[3])))
    print("connected", *pkt6(c))
    c.recv(1)  # the server has read its options
    c.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 44)
    c.send(b"x")
