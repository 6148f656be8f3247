"""Pieces the shim tests' peers and programs share (import shimlib: the
script's own directory is on Python's path)."""
import ctypes
import errno
import os
import select
import socket
import struct
import time

LIBC = ctypes.CDLL(None, use_errno=True)


def attempt(f):
    """f()'s result, or the name of the errno it failed with."""
    try:
        return f()
    except OSError as e:
        return errno.errorcode[e.errno]


def sockopt_hex(s, level, opt, buflen=64):
    """getsockopt into a zeroed buffer (Python's own is not: some options
    read it), through the C library, as a program calls it: the bytes in
    hex ("-" for none), or the errno's name."""
    buf = ctypes.create_string_buffer(buflen)
    n = ctypes.c_uint32(buflen)
    if LIBC.getsockopt(s.fileno(), level, opt, buf, ctypes.byref(n)) < 0:
        return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
    return buf.raw[:n.value].hex() or "-"


def cmsg_list(raw):
    """Control messages a getsockopt wrote (IP_PKTOPTIONS,
    IPV6_2292PKTOPTIONS), as sockopt_hex gave them: "len/level/type:data"
    each, less the padding Linux leaves as it was in the buffer."""
    if raw == "-" or not all(c in "0123456789abcdef" for c in raw):
        return raw
    b, out = bytes.fromhex(raw), []
    while len(b) >= 16:
        ln, lvl, typ = struct.unpack("=QII", b[:16])
        out.append("%d/%d/%d:%s" % (ln, lvl, typ, b[16:ln].hex()))
        b = b[(ln + 7) & ~7:]
    return " ".join(out) + (" +" + b.hex() if b else "")


def accept_one(addr, port, rcvbuf=None, timeout=30):
    """Listens on addr:port (SO_REUSEADDR; SO_RCVBUF before listen, so that
    the accepted socket gets it) and returns the first connection, both
    with timeout. An address with a colon is IPv6's."""
    ls = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf:
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    ls.bind((addr, port))
    ls.listen(1)
    ls.settimeout(timeout)
    c, _ = ls.accept()
    ls.close()
    c.settimeout(timeout)
    return c


def read_to_eof(s):
    """Reads until the peer's FIN; how many bytes came."""
    got = 0
    while True:
        b = s.recv(65536)
        if not b:
            return got
        got += len(b)


def csum(data):
    """The Internet checksum of data."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def family(addr):
    """AF_INET6 for an IPv6 address, AF_INET for an IPv4 one."""
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def route_source(dst, port):
    """The source address the route to dst gives (a throw-away UDP
    socket's)."""
    u = socket.socket(family(dst), socket.SOCK_DGRAM)
    u.connect((dst, port))
    src = u.getsockname()[0]
    u.close()
    return src


def tcp_segment(src, dst, sport, dport, seq, ack, flags):
    """A bare TCP header (no options, window 65535) from src:sport to
    dst:dport, its checksum filled in (IPv4's or IPv6's pseudo-header), for
    a raw IPPROTO_TCP socket."""
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    fam = family(dst)
    if fam == socket.AF_INET6:
        pseudo = (socket.inet_pton(fam, src) + socket.inet_pton(fam, dst) +
                  struct.pack("!IxxxB", len(hdr), 6))
    else:
        pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(hdr))
    return hdr[:16] + struct.pack("!H", csum(pseudo + hdr)) + hdr[18:]


def raw_replies(rs, dst, dport, sport, until):
    """The segments from dst:dport to our sport that the raw socket rs
    reads until time.monotonic() reaches until: (flags, ack) each."""
    while True:
        left = until - time.monotonic()
        if left <= 0 or not select.select([rs], [], [], left)[0]:
            return
        pkt, frm = rs.recvfrom(65535)
        frm = frm[0]
        # An IPv4 raw socket reads the IP header; an IPv6 one does not.
        ihl = (pkt[0] & 0x0F) * 4 if rs.family == socket.AF_INET else 0
        if frm != dst or len(pkt) < ihl + 20:
            continue
        sp, dp, _, ack, _, flags = struct.unpack("!HHIIBB", pkt[ihl:ihl + 14])
        if sp == dport and dp == sport:
            yield flags, ack


def stray_ack_rsts(addr, port, n):
    """Sends n bare ACKs to addr:port from source ports nobody connected
    from and returns how many RSTs came back for each (a host answers
    each with one)."""
    rs = socket.socket(family(addr), socket.SOCK_RAW, socket.IPPROTO_TCP)
    src = route_source(addr, port)
    counts = []
    for i in range(n):
        # Below the peer's ephemeral range (32768-60999): a source port
        # one of the earlier connections used would find its 4-tuple in
        # the server's TIME-WAIT, which answers with an ACK, not a RST,
        # on Linux as under ustcp (the 0 RSTs of a CI run, 2026-12-05).
        sport = 10000 + (os.getpid() * 7 + i * 13) % 20000
        seq, ack = struct.unpack("!II", os.urandom(8))
        rs.sendto(tcp_segment(src, addr, sport, port, seq, ack, 0x10), (addr, 0))
        # The first RST within 3 s (a loaded machine, a CI running two
        # test files at once, answers late), then any other within 0.4 s
        # of it (a second stack's would come about as soon).
        rsts = 0
        for flags, _ in raw_replies(rs, addr, port, sport, time.monotonic() + 3):
            if flags & 0x04:
                rsts = 1
                break
        if rsts:
            later = raw_replies(rs, addr, port, sport, time.monotonic() + 0.4)
            rsts += sum(1 for flags, _ in later if flags & 0x04)
        counts.append(rsts)
    rs.close()
    return counts
