#!/usr/bin/env python3
"""wirecheck.py ADDR < tcpdump -S -n -r PCAP

Checks what ADDR's side of a capture with many connections did, as Linux
would have done it:

1. New incarnations are newer (RFC 6528, RFC 6191). Whenever ADDR opens a
   connection on a 4-tuple it used before, the new SYN's sequence number is
   after the last one ADDR sent on the earlier connection, and its TSval is
   not older than any TSval ADDR sent there (the clock ticks in ms: a port
   reused within the same ms has an equal one, as on Linux): a peer still
   in TIME-WAIT takes it for a new connection (Linux's
   tcp_timewait_state_process accepts a SYN whose sequence number is after
   RCV.NXT unless PAWS rejects its TSval as older).
2. No stray RST. Every RST ADDR sent is the one Linux sends in SYN-SENT when
   the peer answers a SYN with an ACK of an older incarnation: on the same
   flow the segment before it is the peer's bare ACK whose ack is the RST's
   seq, and before that ADDR's SYN.

Prints a summary and the first few violations; exit 1 on any.
"""
import re
import sys
from collections import defaultdict, deque

me = sys.argv[1]
seg_re = re.compile(r' IP (\S+)\.(\d+) > (\S+)\.(\d+): Flags \[([^\]]*)\]'
                    r'(?:, seq (\d+)(?::(\d+))?)?(?:, ack (\d+))?')
ts_re = re.compile(r'TS val (\d+)')


def after(a, b):
    """Sequence-number (or TSval) order, modulo 2^32: a is after b."""
    return 0 < ((a - b) & 0xffffffff) < 0x80000000


recent = defaultdict(lambda: deque(maxlen=6))
# Per flow, ADDR's side of the current incarnation: ISN, highest sequence
# number sent, highest TSval sent.
incarnation = {}
bad = []
segs = resets = tw_acks = reopened = 0
for line in sys.stdin:
    m = seg_re.search(line)
    if not m:
        continue
    segs += 1
    src, sport, dst, dport, flags, seq, end, ack = m.groups()
    mine = src == me
    flow = (sport, dst, dport) if mine else (dport, src, sport)
    hist = recent[flow]
    if mine:
        ts = ts_re.search(line)
        ts = int(ts.group(1)) if ts else None
        seqn = int(seq) if seq else None
        top = int(end) if end else seqn
        cur = incarnation.get(flow)
        if 'S' in flags and (cur is None or cur['isn'] != seqn):
            if cur is not None:
                reopened += 1
                if not after(seqn, cur['top']):
                    bad.append(f'ISN {seqn} not after {cur["top"]}, the last sequence number '
                               f'of the previous connection: {line.strip()}')
                elif ts is not None and cur['ts'] is not None and after(cur['ts'], ts):
                    bad.append(f'TSval {ts} older than {cur["ts"]}, the previous '
                               f'connection\'s: {line.strip()}')
            cur = incarnation[flow] = {'isn': seqn, 'top': seqn, 'ts': ts}
        elif cur is not None:
            if top is not None and after(top + ('F' in flags), cur['top']):
                cur['top'] = top + ('F' in flags)
            if ts is not None and (cur['ts'] is None or after(ts, cur['ts'])):
                cur['ts'] = ts
        if 'R' in flags:
            resets += 1
            if (len(hist) >= 2 and not hist[-1][0] and hist[-1][1] == '.'
                    and hist[-1][3] == seq and hist[-2][0] and 'S' in hist[-2][1]):
                tw_acks += 1
            else:
                bad.append(f'stray RST: {line.strip()}; the flow before it: ' + '; '.join(
                    f'{"us" if w else "peer"} [{f}] seq={s} ack={a}' for w, f, s, a in hist))
    hist.append((mine, flags, seq, ack))

print(f'{segs} segments; {reopened} connections from {me} reopened a 4-tuple it used before; '
      f'{resets} RSTs from {me}, {tw_acks} of them answering a TIME-WAIT\'s ACK to its SYN; '
      f'{len(bad)} violations')
for b in bad[:5]:
    print(b)
sys.exit(1 if bad else 0)
