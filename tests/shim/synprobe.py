#!/usr/bin/env python3
"""Is anything listening on ADDR:PORT? Asked without disturbing it.

    synprobe.py ADDR PORT [SECONDS]

Sends a bare SYN from a raw socket every 0.2 s until a SYN-ACK comes back
(exit 0) or SECONDS (default 10) pass (exit 1). The local kernel knows nothing
of the probe's port and answers the SYN-ACK with a RST, which sends the
listener's half-open connection back to LISTEN: nothing reaches accept().

Servers run under ustcp cannot be seen by `ss -l` (no kernel socket listens
for them); this works for both.
"""
import os
import select
import socket
import struct
import sys
import time


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def main():
    dst, port = sys.argv[1], int(sys.argv[2])
    limit = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    rs = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    # The source address the route gives, through a throw-away UDP socket.
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.connect((dst, port))
    src = u.getsockname()[0]
    u.close()
    sport = 20000 + os.getpid() % 20000
    seq = struct.unpack("!I", os.urandom(4))[0]
    hdr = struct.pack("!HHIIBBHHH", sport, port, seq, 0, 5 << 4, 0x02, 65535, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(hdr))
    c = csum(pseudo + hdr)
    syn = hdr[:16] + struct.pack("!H", c) + hdr[18:]
    deadline = time.monotonic() + limit
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            rs.sendto(syn, (dst, 0))
        except OSError as e:  # no neighbour yet, say
            last = str(e)
        until = min(deadline, time.monotonic() + 0.2)
        while True:
            left = until - time.monotonic()
            if left <= 0 or not select.select([rs], [], [], left)[0]:
                break
            pkt, (frm, _) = rs.recvfrom(65535)
            ihl = (pkt[0] & 0x0F) * 4
            if frm != dst or len(pkt) < ihl + 20:
                continue
            sp, dp, _, ack, _, flags = struct.unpack("!HHIIBB", pkt[ihl:ihl + 14])
            if sp != port or dp != sport:
                continue
            if flags & 0x12 == 0x12 and ack == (seq + 1) & 0xFFFFFFFF:
                return 0
            if flags & 0x04:
                last = "RST (nothing listens)"
    print("synprobe: nothing listens on %s:%d after %g s: %s" % (dst, port, limit, last),
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
