#!/usr/bin/env python3
"""The kernel peer of ip6opts.py: COUNT connections to [ADDR]:PORT, each
sending "hi", reading 100 bytes and closing first, while a packet socket
on IFACE records the IPv6 header of every segment the other side sends.

    ip6wire.py ADDR PORT IFACE COUNT

Prints, per connection, "conn N class 0xNN hlim N labels N" (the
traffic classes and hop limits seen, and how many distinct flow labels:
Linux's auto flow labels give one per connection), then "zero labels N"
and "distinct labels N" over all connections.
"""
import socket
import struct
import sys
import threading
import time

ETH_P_IPV6 = 0x86DD


def main():
    addr, port, iface, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IPV6))
    sniff.bind((iface, ETH_P_IPV6))
    sniff.settimeout(0.05)
    seen = {}  # the peer's port (ours) -> [classes, hop limits, labels]
    done = threading.Event()

    def run():
        while not done.is_set():
            try:
                frame, where = sniff.recvfrom(65535)
            except socket.timeout:
                continue
            if where[2] == socket.PACKET_OUTGOING or len(frame) < 14 + 40 + 20:
                continue
            ip = frame[14:]
            first, = struct.unpack("!I", ip[:4])
            if ip[6] != 6 or struct.unpack("!H", ip[40:42])[0] != port:
                continue
            dport = struct.unpack("!H", ip[42:44])[0]
            s = seen.setdefault(dport, [set(), set(), set()])
            s[0].add(first >> 20 & 0xff)
            s[1].add(ip[7])
            s[2].add(first & 0xfffff)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    ports = []
    for _ in range(count):
        c = socket.create_connection((addr, port), timeout=10)
        ports.append(c.getsockname()[1])
        c.sendall(b"hi")
        got = 0
        while got < 100:
            b = c.recv(100 - got)
            if not b:
                break
            got += len(b)
        c.shutdown(socket.SHUT_WR)
        while c.recv(100):
            pass
        c.close()
    time.sleep(0.3)
    done.set()
    t.join()
    labels = []
    for n, p in enumerate(ports):
        cls, hl, lab = seen.get(p, [set(), set(), set()])
        print("conn %d class %s hlim %s labels %d" % (n, ",".join("%#04x" % v for v in sorted(cls)),
                                                      ",".join(str(v) for v in sorted(hl)), len(lab)))
        labels += sorted(lab)
    print("zero labels", labels.count(0))
    print("distinct labels", len(set(labels)))


if __name__ == "__main__":
    main()
