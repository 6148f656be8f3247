"""How many segments an old connection's TIME-WAIT sent after its 4-tuple
was taken over, in a capture.

    tw_old_answers.py PCAP ADDR PORT

In PCAP (taken on the peer), the second SYN from ADDR to PORT opens a new
connection on the 4-tuple of the first. Every segment ADDR sends on that
4-tuple afterwards must belong to the new connection: its ACK number
within the peer's new sequence space (from the peer's SYN-ACK on), not
the old connection's. Prints the count of those that do not (Linux: 0,
its TIME-WAIT is gone once the new socket takes the 4-tuple). Needs scapy
(/usr/bin/python3).
"""
import sys

from scapy.all import IP, TCP, rdpcap  # noqa: E402

pcap, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
syns, new_isn, stray = 0, None, 0
for p in rdpcap(pcap):
    if IP not in p or TCP not in p:
        continue
    ip, tcp = p[IP], p[TCP]
    if ip.src == addr and tcp.dport == port and tcp.flags & 0x12 == 0x02:
        syns += 1
        continue
    if syns < 2:
        continue
    if ip.dst == addr and tcp.sport == port and tcp.flags & 0x12 == 0x12 and new_isn is None:
        new_isn = tcp.seq
        continue
    if ip.src == addr and tcp.dport == port and tcp.flags & 0x10:
        if new_isn is None or (tcp.ack - new_isn) % (1 << 32) > (1 << 24):
            stray += 1
print(stray)
