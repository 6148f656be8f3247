#!/usr/bin/env python3
"""Is anything listening on ADDR:PORT? Asked without disturbing it.

    synprobe.py ADDR PORT [SECONDS]

(ADDR IPv4 or IPv6.)
Sends a bare SYN from a raw socket every 0.2 s until a SYN-ACK comes back
(exit 0) or SECONDS (default 10) pass (exit 1). The local kernel knows nothing
of the probe's port and answers the SYN-ACK with a RST, which sends the
listener's half-open connection back to LISTEN: nothing reaches accept().

Servers run under ustcp cannot be seen by `ss -l` (no kernel socket listens
for them); this works for both.
"""
import os
import socket
import struct
import sys
import time

import shimlib


def main():
    dst, port = sys.argv[1], int(sys.argv[2])
    limit = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    rs = socket.socket(shimlib.family(dst), socket.SOCK_RAW, socket.IPPROTO_TCP)
    src = shimlib.route_source(dst, port)
    sport = 20000 + os.getpid() % 20000
    seq = struct.unpack("!I", os.urandom(4))[0]
    syn = shimlib.tcp_segment(src, dst, sport, port, seq, 0, 0x02)
    deadline = time.monotonic() + limit
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            rs.sendto(syn, (dst, 0))
        except OSError as e:  # no neighbour yet, say
            last = str(e)
        for flags, ack in shimlib.raw_replies(rs, dst, port, sport, min(deadline, time.monotonic() + 0.2)):
            if flags & 0x12 == 0x12 and ack == (seq + 1) & 0xFFFFFFFF:
                return 0
            if flags & 0x04:
                last = "RST (nothing listens)"
    print("synprobe: nothing listens on %s port %d after %g s: %s" % (dst, port, limit, last),
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
