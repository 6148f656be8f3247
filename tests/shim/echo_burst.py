#!/usr/bin/python3
"""ICMP echo requests sent without waiting for any answer, as fast as this
process can, through a packet socket: COUNT of them, numbered 0..COUNT-1,
from this side's address and MAC on IFACE to DST (its MAC given), for 30
seconds at most. For a test that every frame a stack was sent reached it
once, whatever the stack did meanwhile; run it only inside a test's own
network namespace.

    echo_burst.py IFACE SRC DST DST_MAC COUNT

Prints "sent N seconds S"."""
import socket
import struct
import sys
import time

from shimlib import csum


def main():
    iface, src, dst, dst_mac, count = sys.argv[1:6]
    count = int(count)
    with open("/sys/class/net/%s/address" % iface) as f:
        src_mac = bytes.fromhex(f.read().strip().replace(":", ""))
    eth = bytes.fromhex(dst_mac.replace(":", "")) + src_mac + b"\x08\x00"
    payload = b"ustcp-echo-burst" * 2
    ip_len = 20 + 8 + len(payload)
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, ip_len, 0, 0x4000, 64, 1, 0,
                               socket.inet_aton(src), socket.inet_aton(dst)))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    start = time.monotonic()
    sent = 0
    for seq in range(count):
        struct.pack_into("!H", ip, 4, seq & 0xFFFF)
        struct.pack_into("!H", ip, 10, 0)
        struct.pack_into("!H", ip, 10, csum(bytes(ip)))
        icmp = struct.pack("!BBHHH", 8, 0, 0, 0x7573, seq % 65536) + payload
        icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
        s.send(eth + bytes(ip) + icmp)
        sent += 1
        if time.monotonic() - start > 30:
            break
    print("sent %d seconds %.3f" % (sent, time.monotonic() - start))


main()
