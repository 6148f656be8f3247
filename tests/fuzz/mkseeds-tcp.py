#!/usr/bin/env python3
"""Seed programs for tests/fuzz/fuzz_tcp.c, encoded by hand.

    tests/fuzz/mkseeds-tcp.py [OUTDIR]      (default tests/fuzz/seeds-tcp)
    tests/fuzz/mkseeds-tcp.py --repro [OUTDIR]   (default build/fuzz/repro-tcp)

The input format is described at the top of fuzz_tcp.c; the functions below
write one operation each. Run a seed with FUZZ_TCP_TRACE=1 to see what it
does:  FUZZ_TCP_TRACE=1 build/fuzz/fuzz_tcp tests/fuzz/seeds-tcp/NAME
"""
import os
import struct
import sys

F, S, R, P, A, U = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20

SMALL_BUFS, RFC1337, SMALL_POOL, SHORT_MSL, FEW_CONNS, FEW_RETRIES = 1, 2, 4, 8, 16, 32

SEQ_RAW, SEQ_RCV_NXT, SEQ_PEER_ISN, SEQ_RCV_ADV = range(4)
ACK_RAW, ACK_SND_UNA, ACK_SND_NXT, ACK_SND_MAX = range(4)
PORTS_CONN, PORTS_LISTEN, PORTS_SLOT, PORTS_RAW = range(4)


def u8(v):
    return struct.pack(">B", v & 0xff)


def u16(v):
    return struct.pack(">H", v & 0xffff)


def u32(v):
    return struct.pack(">I", v & 0xffffffff)


def header(mtu=1500, setup=0):
    assert 576 <= mtu <= 9000
    return u16(mtu - 576) + u8(setup)


def opts(mss=None, ws=None, sackok=False, ts=None, sack=None, raw=None, eol=False,
         nop_first=False):
    """ts: (val delta, ecr lag); sack: [(start past SND.UNA, length)]."""
    mask, args = 0, b""
    if mss is not None:
        mask |= 0x01
        args += u16(mss)
    if ws is not None:
        mask |= 0x02
        args += u8(ws)
    if sackok:
        mask |= 0x04
    if ts is not None:
        mask |= 0x08
        args += u8(ts[0]) + u8(ts[1])
    if sack:
        mask |= 0x10
        args += u8(len(sack) - 1)
        for start, length in sack:
            args += u16(start) + u16(length)
    if raw is not None:
        mask |= 0x20
        args += u8(len(raw)) + bytes(raw)
    if eol:
        mask |= 0x40
    if nop_first:
        mask |= 0x80
    return u8(mask) + args


SYN_OPTS = dict(mss=1460, ws=7, sackok=True, ts=(0, 0))
TS = dict(ts=(0, 0))


def seg(flags, ports=PORTS_CONN, idx=0, j=0, seq=SEQ_RCV_NXT, seqarg=0, ack=ACK_SND_MAX,
        ackarg=0, wnd=65535, o=None, plen=0, badcsum=False, other=False, csum_ok=False,
        urg=False, sport=0, dport=0, doff=None):
    sel = idx | ports << 3 | (0x20 if badcsum else 0) | j << 6
    mode = seq | ack << 2 | (0x10 if other else 0) | (0x20 if csum_ok else 0) | \
        (0x40 if urg else 0) | (0x80 if doff is not None else 0)
    b = u8(0) + u8(sel) + u8(flags) + u8(mode)
    if ports == PORTS_RAW:
        b += u16(sport) + u16(dport)
    b += u32(seqarg) if seq == SEQ_RAW else u16(seqarg)
    b += u32(ackarg) if ack == ACK_RAW else u16(ackarg)
    b += u16(wnd)
    b += opts(**(o or {}))
    if plen < 128:
        b += u8(plen)
    else:
        assert plen % 64 == 0 and plen // 64 < 128
        b += u8(0x80 | plen // 64)
    if doff is not None:
        b += u8(doff)
    return b


def icmp(idx=0, kind=0, code=3, seqarg=0, mtu=0, router=False):
    return u8(5) + u8(idx | kind << 3 | (0x20 if router else 0)) + u8(code) + u16(seqarg) + u16(mtu)


def ms(n):       # 1..64 ms
    assert 1 <= n <= 64
    return u8(6) + u8(n - 1)


def ms50(n):     # n * 50 ms, n < 64
    return u8(6) + u8(0x40 | n)


def sec2(n):     # n * 2 s, n < 64
    return u8(6) + u8(0x80 | n)


def deadlines(n):  # to the next timer deadline, n times
    assert 1 <= n <= 64
    return u8(6) + u8(0xc0 | (n - 1))


def socket(slot, bind=0, reuse=False):
    return u8(8) + u8(slot | bind << 3 | (0x40 if reuse else 0))


def listen(slot, port=0, backlog=4):
    return u8(9) + u8(slot | port << 3 | backlog << 5)


def connect(slot, k=0, other=False, bind_listen_port=False):
    return u8(10) + u8(slot | k << 3 | (0x40 if other else 0) | (0x80 if bind_listen_port else 0))


def accept(slot):
    return u8(11) + u8(slot)


def send(slot, n):
    return u8(12) + u8(slot) + u16(n)


def recv(slot, n=65535):
    return u8(13) + u8(slot) + u16(n)


CLOSE, ABORT, SHUT_RD, SHUT_WR, SHUT_RDWR = range(5)


def close(slot, how=CLOSE):
    return u8(14) + u8(slot | how << 3)


NODELAY, KEEPALIVE, KEEPIDLE, KEEPINTVL, KEEPCNT, USER_TIMEOUT, LINGER2, SNDBUF, RCVBUF, \
    MAXSEG, SYNCNT = range(11)


def setopt(slot, opt, value, shift=0):
    return u8(15) + u8(slot | opt << 3) + u16(value) + u8(shift)


def quickack(slot, value):
    return u8(15) + u8(slot | 14 << 3) + u16(value) + u8(0)


def linger(slot, on, secs):
    return u8(15) + u8(slot | 12 << 3) + u8(on) + u8(secs)


def status(slot):
    return u8(15) + u8(slot | 13 << 3)


# ---- building blocks ----

def passive_open(listen_slot=0, child_slot=1, o=SYN_OPTS, port=0, wnd=65535):
    """LISTEN on 8000+port, the peer's handshake from 40000, accept."""
    ack_o = TS if o and o.get("ts") else None
    return (listen(listen_slot, port)
            + seg(S, ports=PORTS_LISTEN, j=port, seq=SEQ_PEER_ISN, ack=ACK_RAW, wnd=wnd, o=o)
            + seg(A, ports=PORTS_LISTEN, j=port, o=ack_o, wnd=wnd)
            + accept(listen_slot))


def active_open(slot=0, k=0, o=SYN_OPTS, wnd=65535):
    """connect() to 40000+k, the peer's SYN-ACK."""
    return (connect(slot, k)
            + seg(S | A, ports=PORTS_CONN, seq=SEQ_PEER_ISN, wnd=wnd, o=o))


def ack(o=TS, wnd=65535, **kw):
    return seg(A, o=o, wnd=wnd, **kw)


SEEDS = {}

# Passive open, data both ways, the peer closes first, we close: LAST-ACK.
SEEDS["passive-data-fin"] = (
    header() + passive_open()
    + seg(P | A, o=TS, plen=100)
    + recv(1)
    + send(1, 3000)
    + ms(41)
    + ack()
    + seg(F | A, o=TS)
    + recv(1)
    + close(1)
    + ack()
    + close(0))

# Active open, data, we close first: FIN-WAIT-1, FIN-WAIT-2, TIME-WAIT, gone.
SEEDS["active-close-time-wait"] = (
    header() + active_open()
    + send(0, 2000)
    + ack()
    + close(0)
    + ack()
    + seg(F | A, o=TS)
    + sec2(31))

# Out-of-order data with SACK, the gap filled, then read.
SEEDS["ofo-sack-reassembly"] = (
    header() + passive_open()
    + seg(P | A, seqarg=1000, o=TS, plen=512)
    + seg(P | A, seqarg=2000, o=TS, plen=512)
    + seg(P | A, seqarg=0, o=TS, plen=1024)
    + recv(1, 1500)
    + seg(P | A, o=TS, plen=1024)
    + recv(1)
    + seg(F | A, o=TS)
    + close(1, SHUT_WR)
    + ack()
    + recv(1)
    + close(1))

# Simultaneous close: both FINs cross, CLOSING, then TIME-WAIT.
SEEDS["simultaneous-close"] = (
    header(setup=SHORT_MSL) + active_open(o=dict(mss=1000))
    + send(0, 1000)
    + ack(o=None)
    + close(0, SHUT_WR)
    + seg(F | A, ack=ACK_SND_UNA, o=None)
    + ack(o=None)
    + deadlines(2)
    + close(0))

# Zero window, persist probes, the window opens again; small buffers.
SEEDS["zero-window-persist"] = (
    header(setup=SMALL_BUFS) + active_open(o=dict(mss=536), wnd=0)
    + send(0, 5000)
    + deadlines(4)
    + ack(o=None, wnd=0)
    + deadlines(2)
    + ack(o=None, wnd=2000)
    + ack(o=None, wnd=8000)
    + ms50(10)
    + ack(o=None)
    + close(0))

# Losses: RTO, then duplicate ACKs with SACK blocks, fast retransmit.
SEEDS["rto-fast-retransmit"] = (
    header() + active_open()
    + send(0, 20000)
    + deadlines(1)
    + ack(ack=ACK_SND_UNA, ackarg=1448)
    + send(0, 20000)
    + ack(ack=ACK_SND_UNA, o=dict(ts=(0, 0), sack=[(1448, 1448)]))
    + ack(ack=ACK_SND_UNA, o=dict(ts=(0, 0), sack=[(1448, 2896)]))
    + ack(ack=ACK_SND_UNA, o=dict(ts=(0, 0), sack=[(1448, 4344)]))
    + ack(ack=ACK_SND_UNA, ackarg=2896)
    + ack()
    + close(0, ABORT))

# Resets: an out-of-window RST (challenge ACK), then one at RCV.NXT.
SEEDS["rst-established"] = (
    header() + passive_open()
    + seg(R, seqarg=100, o=None)
    + seg(R | A, seqarg=0, o=None)
    + recv(1)
    + close(1)
    + close(0))

# TIME-WAIT on a listening port, reopened by a newer SYN.
SEEDS["time-wait-reopen"] = (
    header() + passive_open(o=dict(mss=1460))
    + close(1)
    + ack(o=None)
    + seg(F | A, o=None)
    + ms(10)
    + seg(S, ports=PORTS_LISTEN, seqarg=30000, ack=ACK_RAW, o=dict(mss=1460))
    + seg(A, ports=PORTS_LISTEN, o=None)
    + accept(0)
    + close(1, ABORT)
    + close(0))

# Simultaneous open: our SYN, the peer's SYN, then its SYN-ACK.
SEEDS["simultaneous-open"] = (
    header() + connect(0, 1)
    + seg(S, ports=PORTS_CONN, seq=SEQ_PEER_ISN, ack=ACK_RAW, o=dict(mss=1200, sackok=True))
    + seg(S | A, ports=PORTS_CONN, seq=SEQ_PEER_ISN, o=dict(mss=1200, sackok=True))
    + send(0, 100)
    + ack(o=None, ports=PORTS_CONN)
    + close(0))

# Options: keepalive and its probes, linger 0 close, MSS/buffer options.
SEEDS["keepalive-linger"] = (
    header(mtu=9000) + passive_open()
    + setopt(1, KEEPALIVE, 1)
    + setopt(1, KEEPIDLE, 10)
    + setopt(1, KEEPINTVL, 2)
    + setopt(1, KEEPCNT, 2)
    + setopt(1, RCVBUF, 8192)
    + setopt(1, SNDBUF, 8192)
    + setopt(1, NODELAY, 1)
    + send(1, 100)
    + ack()
    + sec2(6)
    + deadlines(3)
    + status(1)
    + linger(1, 1, 0)
    + close(1)
    + close(0))

# An ICMP "fragmentation needed" shrinks the MSS; then port unreachable on
# a fresh connect.
SEEDS["icmp-errors"] = (
    header() + active_open()
    + send(0, 4000)
    + icmp(kind=0, code=4, mtu=800)
    + ack()
    + connect(1, 2)
    + icmp(idx=1, kind=0, code=3)
    + icmp(idx=0, kind=0, code=3)
    + recv(1)
    + close(1)
    + close(0))

# Small pool, few connections: SYN flood on a listener.
SEEDS["listen-flood"] = (
    header(setup=SMALL_POOL | FEW_CONNS | FEW_RETRIES) + listen(0, 0, 1)
    + b"".join(seg(S, ports=PORTS_LISTEN, idx=i, seq=SEQ_PEER_ISN, ack=ACK_RAW, o=dict(mss=1460))
               for i in range(8))
    + seg(A, ports=PORTS_LISTEN, idx=0, o=None)
    + seg(A, ports=PORTS_LISTEN, idx=1, o=None)
    + accept(0)
    + deadlines(5)
    + close(0))

# Seventeen holes: the out-of-order set (16 ranges) overflows; then the
# gaps are filled in one segment and everything is read.
SEEDS["ofo-full"] = (
    header() + passive_open()
    + b"".join(seg(P | A, seqarg=20 * i, o=TS, plen=10) for i in range(1, 18))
    + seg(P | A, seqarg=0, o=TS, plen=448)
    + recv(1)
    + close(1)
    + close(0))

# The receiver: TCP_QUICKACK both ways around in-order data, then more
# out-of-order ranges than the old fixed set held, in small buffers that
# grow, and the hole filled.
SEEDS["ack-engine-ofo"] = (
    header(setup=SMALL_BUFS) + passive_open()
    + quickack(1, 0)
    + seg(P | A, seqarg=0, o=TS, plen=100)
    + recv(1)
    + quickack(1, 1)
    + seg(P | A, seqarg=0, o=TS, plen=100)
    + b"".join(seg(P | A, seqarg=20 * i, o=TS, plen=10) for i in range(1, 41))
    + seg(P | A, seqarg=0, o=TS, plen=832)
    + recv(1)
    + close(1)
    + close(0))

# TCP_LINGER2 < 0: the orphan gets a RST instead of FIN-WAIT-2.
SEEDS["linger2-negative"] = (
    header() + passive_open()
    + setopt(1, LINGER2, -1)
    + close(1)
    + ack()
    + close(0))

# ---- reproducers of engine bugs the harness found (each aborts) ----
# Not seeds: libFuzzer stops on a seed that crashes. Written with --repro.
# All are fixed: sack-mss, sack-mss-overrun, mss-underflow*, maxseg,
# icmp-syn and ofo-fin in f03a87c; sack-nagle (which came with that fix),
# ofo-fin-stale and ofo-fin-passed* in 826a1df. Each should now run clean.

REPROS = {}

# Segments carrying SACK blocks are not shortened: 1448 bytes of data with
# timestamps and one SACK block make a 1512-byte datagram on a 1500 MTU.
REPROS["sack-mss"] = (
    header() + active_open()
    + seg(P | A, seqarg=1000, o=TS, plen=100)
    + send(0, 2000))

# The same without timestamps and four SACK blocks: 1460 bytes of data
# behind a 56-byte header, 16 bytes more than the buffer's MTU, 4 more than
# its slack: the adjacent packet buffer's free-list link is overwritten and
# the next allocation crashes (SEGV in ust_pkt_alloc) before the frame
# reaches the harness's check.
REPROS["sack-mss-overrun"] = (
    header() + active_open(o=dict(mss=1460, sackok=True))
    + b"".join(seg(P | A, seqarg=1000 * i, o=None, plen=100) for i in range(1, 5))
    + send(0, 20000))

# The peer's MSS 2 with timestamps: 2 - 12 wraps, t->mss = 65526, and a
# 20000-byte segment overruns the packet pool.
REPROS["mss-underflow"] = (
    header() + active_open(o=dict(mss=2, ts=(0, 0)))
    + send(0, 20000))

# The same from a client's SYN, on a listener.
REPROS["mss-underflow-passive"] = (
    header() + listen(0)
    + seg(S, ports=PORTS_LISTEN, seq=SEQ_PEER_ISN, ack=ACK_RAW, o=dict(mss=5, ts=(0, 0)))
    + seg(A, ports=PORTS_LISTEN, o=TS)
    + accept(0)
    + send(1, 20000))

# TCP_MAXSEG 9000 on a 1500-byte MTU: announced in the SYN, and used.
REPROS["maxseg"] = (
    header() + socket(0)
    + setopt(0, MAXSEG, 9000)
    + connect(0)
    + seg(S | A, seq=SEQ_PEER_ISN, o=dict(mss=9000))
    + send(0, 20000))

# ICMP "fragmentation needed" quoting our SYN: SND.NXT goes back to the
# ISN; the SYN-ACK then leaves SND.NXT below SND.UNA.
REPROS["icmp-syn"] = (
    header() + connect(0)
    + icmp(kind=0, code=4, mtu=900)
    + seg(S | A, seq=SEQ_PEER_ISN, o=None)
    + send(0, 1000))

# Data beyond the peer's FIN, then the FIN: the out-of-order range stays,
# starting at RCV.NXT.
REPROS["ofo-fin"] = (
    header() + passive_open()
    + seg(P | A, seqarg=1, o=TS, plen=10)
    + seg(F | A, o=TS))

# A FIN beyond a gap, then a FIN in order at another sequence number: the
# held FIN (ofo_fin) stays, and keeps being SACKed, after the real one.
REPROS["ofo-fin-stale"] = (
    header() + passive_open()
    + seg(F | A, seqarg=10, o=TS)
    + seg(F | A, o=TS))

# A FIN beyond a gap, then in-order data running past it: RCV.NXT moves
# beyond the held FIN, which stays (and is SACKed below RCV.NXT).
REPROS["ofo-fin-passed"] = (
    header() + passive_open()
    + seg(F | A, seqarg=10, o=TS)
    + seg(P | A, o=TS, plen=20))

# The same with the data past the FIN already held out of order when the
# FIN comes: filling the gap pulls the held range, and RCV.NXT, past it.
REPROS["ofo-fin-passed-held"] = (
    header() + passive_open()
    + seg(P | A, seqarg=8, o=TS, plen=12)
    + seg(F | A, seqarg=10, o=TS)
    + seg(P | A, o=TS, plen=8))

# SACK blocks due (data held out of order) and 2000 bytes to send: the
# first full segment, 1436 bytes, is held by the Nagle/SWS test as if it
# were small, and leaves only when the persist timer fires 200 ms later.
REPROS["sack-nagle"] = (
    header() + active_open()
    + seg(P | A, seqarg=1000, o=TS, plen=100)
    + send(0, 2000)
    + ms(64))


def write(out, items):
    os.makedirs(out, exist_ok=True)
    for name, data in items.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--repro":
        out = sys.argv[2] if len(sys.argv) > 2 else "build/fuzz/repro-tcp"
        write(out, REPROS)
        print(f"{len(REPROS)} reproducers in {out}")
        return
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "seeds-tcp")
    write(out, SEEDS)
    print(f"{len(SEEDS)} seeds in {out}")


if __name__ == "__main__":
    main()
