#!/usr/bin/env python3
"""Packet too big over IPv6 (RFC 8201), for 032-shim6.bats: the sender's
MSS and the segments it puts on the wire before and after one.

    pmtu6.py send ADDR PORT [MODE]
                                  the program (IPV6_MTU_DISCOVER MODE, if
                                  given): connect to [ADDR]:PORT, print
                                  "mss N" (TCP_MAXSEG), send 100000 bytes,
                                  wait for the peer's "P", send 100000
                                  more, print "mss N" again, FIN, read to EOF
    pmtu6.py peer ADDR PORT IFACE [MTU]
                                  the kernel peer: accept one connection on
                                  [ADDR]:PORT, read the first 100000 bytes,
                                  send an ICMPv6 packet too big (MTU 1280,
                                  or MTU) quoting the connection at the
                                  sender's snd_nxt, then "P"; read to EOF

The peer watches IFACE with a packet socket (the topology has no
offloads, so frames are segments as sent) and prints "wire before=N
after=N": the largest IPv6 datagram of the sender's data before the
error (sequence numbers in the first 100000 bytes) and after it. A
router would drop the datagrams too big; this peer takes them all, so
nothing is lost and nothing needs to go again.
"""
import socket
import struct
import sys
import threading
import time

import shimlib

ETH_P_IPV6 = 0x86DD
IPV6_MTU_DISCOVER = 23  # Python does not name these
SO_RCVBUFFORCE = 33
SOL_PACKET = 263
PACKET_STATISTICS = 6
PART = 100000
MTU = 1280


def send(addr, port, mode):
    s = socket.socket(socket.AF_INET6)
    if mode is not None:
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, mode)
    s.settimeout(30)
    s.connect((addr, port))
    print("mss", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG), flush=True)
    s.sendall(b"a" * PART)
    if s.recv(1) != b"P":
        sys.exit("no P from the peer")
    s.sendall(b"b" * PART)
    print("mss", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG), flush=True)
    s.shutdown(socket.SHUT_WR)
    shimlib.read_to_eof(s)
    s.close()


class Wire(threading.Thread):
    """The sender's segments to PORT as they arrive on IFACE: its ISN (from
    the SYN), its address and port, and the largest datagram of data in
    each part."""

    def __init__(self, iface, port):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IPV6))
        # Room for both parts' frames (~140 of 1514 bytes) should this
        # thread fall behind: a packet socket drops what overflows it,
        # and a part missed would read as no datagram (drops() says).
        self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
        self.sock.bind((iface, ETH_P_IPV6))
        self.sock.settimeout(0.05)
        self.port = port
        self.isn = None
        self.src = None
        self.sport = None
        self.largest = [0, 0]
        self.fin = threading.Event()
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                frame, where = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            if where[2] == socket.PACKET_OUTGOING or len(frame) < 14 + 40 + 20:
                continue
            ip = frame[14:]
            plen, nh = struct.unpack("!HB", ip[4:7])
            tcp = ip[40:40 + plen]
            if nh != 6 or struct.unpack("!H", tcp[2:4])[0] != self.port:
                continue
            seq = struct.unpack("!I", tcp[4:8])[0]
            flags = tcp[13]
            data = plen - (tcp[12] >> 4) * 4
            if flags & 0x02:
                self.isn, self.src, self.sport = seq, ip[8:24], tcp[0:2]
            elif self.isn is not None and data > 0:
                part = 0 if (seq - self.isn - 1) % 2**32 < PART else 1
                self.largest[part] = max(self.largest[part], 40 + plen)
            if flags & 0x01:
                self.fin.set()

    def drops(self):
        """Frames the packet socket dropped since the last call."""
        return struct.unpack("II", self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))[1]


def too_big(wire, addr, port, mtu):
    """ICMPv6 packet too big from us to the sender, quoting a segment of
    the connection at its snd_nxt (everything before is acknowledged):
    as much of it as fits in the minimum MTU (RFC 4443 §3.2)."""
    seq = (wire.isn + 1 + PART) % 2**32
    quoted_len = MTU - 40 - 8 - 40
    tcp = wire.sport + struct.pack("!HIIBBHHH", port, seq, 0, 5 << 4, 0x10, 65535, 0, 0)
    ip = struct.pack("!IHBB", 6 << 28, 1400, 6, 64) + wire.src + socket.inet_pton(socket.AF_INET6, addr)
    quote = (ip + tcp).ljust(40 + quoted_len, b"\0")
    icmp = struct.pack("!BBHI", 2, 0, 0, mtu) + quote  # the kernel sums raw ICMPv6
    raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    raw.sendto(icmp, (socket.inet_ntop(socket.AF_INET6, wire.src), 0))
    raw.close()


def peer(addr, port, iface, mtu):
    wire = Wire(iface, port)
    wire.start()
    c = shimlib.accept_one(addr, port)
    got = 0
    while got < PART:
        b = c.recv(PART - got)
        if not b:
            sys.exit("EOF before %d bytes" % PART)
        got += len(b)
    deadline = time.monotonic() + 5
    while wire.isn is None and time.monotonic() < deadline:
        time.sleep(0.01)
    if wire.isn is None:
        sys.exit("no SYN seen on " + iface)
    too_big(wire, addr, port, mtu)
    c.sendall(b"P")
    shimlib.read_to_eof(c)
    c.close()
    wire.fin.wait(5)
    wire.stop.set()
    wire.join()
    dropped = wire.drops()
    if dropped:
        print("wire: the capture dropped %d frames" % dropped, flush=True)
    print("wire before=%d after=%d" % tuple(wire.largest), flush=True)


def main():
    if sys.argv[1] == "send":
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else None)
    else:
        peer(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]) if len(sys.argv) > 5 else MTU)


if __name__ == "__main__":
    main()
