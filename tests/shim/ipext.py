#!/usr/bin/env python3
"""IP_OPTIONS and the sticky IPv6 extension headers on the wire, for
061-opts.bats and 032-shim6.bats.

    ipext.py client ADDR PORT KIND        the program: a client
    ipext.py server ADDR PORT KIND READY  the program: a listener, one connection
    ipext.py sniff ADDR PORT IFACE ROLE [KIND]
                                          the kernel peer: ROLE server
                                          (listens on ADDR) or client
                                          (connects to ADDR, with KIND's
                                          IPv4 options), a packet socket
                                          on IFACE recording what the
                                          other side sends

KIND says what the program's socket sets before connect or listen:
  rr      IP_OPTIONS: record route with three slots, then a NOP
  ts      IP_OPTIONS: timestamps only, three slots
  tsaddr  IP_OPTIONS: addresses and timestamps, two pairs
  lsrr    IP_OPTIONS: a loose source route through the peer (which drops
          it: only the SYN is seen)
  lsrr-far  the same through a first hop there is no route to
  hop     IPV6_HOPOPTS: a PadN option
  dst     IPV6_DSTOPTS: a PadN option
  all     IPV6_HOPOPTS, IPV6_RTHDRDSTOPTS, a segment routing header with
          the peer as its one segment (IPV6_RTHDR, type 4), IPV6_DSTOPTS
  big     IPV6_HOPOPTS of 1024 bytes: four options of a type to skip
          (0x1e, RFC 4727's experiment) and one empty
  huge    IPV6_HOPOPTS and IPV6_DSTOPTS of 2040 bytes each (Linux's most):
          a datagram longer than the MTU, which Linux does not send; the
          client connects without blocking and says whether the connection
          opened within a second ("connect pending": it did not)
The program prints what getsockopt reads back, TCP_MAXSEG once connected
(the options' length comes off it, as Linux's icsk_ext_hdr_len), and what
came back. The client sends 3000 bytes and half-closes; the server echoes.
A listener with KIND "none" sets nothing: what it sends answers the IP
options of its peer's segments (Linux echoes record route and timestamps).

The sniffer prints "syn EXT" for the other side's first SYN (or SYN-ACK),
"rest EXT" for each distinct header of its other segments, then "got N"
(the bytes the peer received). EXT is the bytes between the IP header and
TCP's in hex, with an address of the program's shown as [me] and the
peer's as [peer], and the time fields of a timestamp option as [t]; "-"
for none. A header longer than 64 bytes shows as its first 8 bytes, its
length and the first 8 bytes of its SHA-256 ("3c7f1efd...ab 1024 #..."),
and so does a value read back longer than 64 bytes.
"""
import errno
import hashlib
import os
import select
import socket
import struct
import sys
import threading
import time

ETH_P_ALL = 0x0003
IP_OPTIONS = 4
IPV6_HOPOPTS, IPV6_RTHDRDSTOPTS, IPV6_RTHDR, IPV6_DSTOPTS = 54, 55, 57, 59
PADN8 = bytes([0, 0, 1, 4, 0, 0, 0, 0])  # next header, length 0 (8 bytes), PadN of 4


def v4_kind(kind, peer):
    if kind == "rr":
        return bytes([7, 15, 4]) + bytes(12) + bytes([1])
    if kind == "ts":
        return bytes([68, 16, 5, 0]) + bytes(12)
    if kind == "tsaddr":
        return bytes([68, 20, 5, 1]) + bytes(16)
    if kind == "lsrr":
        return bytes([131, 7, 4]) + socket.inet_aton(peer)
    if kind == "lsrr-far":  # through a first hop there is no route to
        return bytes([131, 7, 4]) + socket.inet_aton("198.51.100.1")
    raise SystemExit("unknown kind " + kind)


def skip_opts_hdr(size):
    """An options header of size bytes (a multiple of 8): options of
    type 0x1e, which a receiver skips, of at most 253 bytes of data each,
    then one of what is left (at least 2 bytes: its type and length)."""
    body, left = b"", size - 2
    while left > 255 + 1:
        body += bytes([0x1E, 253]) + bytes([0xAB]) * 253
        left -= 255
    body += bytes([0x1E, left - 2]) + bytes([0xCD]) * (left - 2)
    return bytes([0, size // 8 - 1]) + body


def show_bytes(b):
    if len(b) <= 64:
        return b.hex()
    return "%s... %d #%s" % (b[:8].hex(), len(b), hashlib.sha256(b).hexdigest()[:16])


def v6_kind(kind, peer):
    if kind == "hop":
        return [(IPV6_HOPOPTS, PADN8)]
    if kind == "big":
        return [(IPV6_HOPOPTS, skip_opts_hdr(1024))]
    if kind == "huge":
        return [(IPV6_HOPOPTS, skip_opts_hdr(2040)), (IPV6_DSTOPTS, skip_opts_hdr(2040))]
    if kind == "dst":
        return [(IPV6_DSTOPTS, PADN8)]
    if kind == "all":
        seg = socket.inet_pton(socket.AF_INET6, peer)
        # next header, length 4 (two segments), type 4, segments left 1,
        # last entry 1, flags, tag; segment 0 (the destination's slot),
        # segment 1 (the first hop)
        srh = bytes([0, 4, 4, 1, 1, 0, 0, 0]) + bytes(16) + seg
        return [(IPV6_HOPOPTS, PADN8), (IPV6_RTHDRDSTOPTS, PADN8), (IPV6_RTHDR, srh),
                (IPV6_DSTOPTS, PADN8)]
    raise SystemExit("unknown kind " + kind)


def set_kind(s, six, kind, peer):
    if kind == "none":
        return
    if not six:
        s.setsockopt(socket.IPPROTO_IP, IP_OPTIONS, v4_kind(kind, peer))
        print("readback", s.getsockopt(socket.IPPROTO_IP, IP_OPTIONS, 40).hex())
        return
    for name, val in v6_kind(kind, peer):
        s.setsockopt(socket.IPPROTO_IPV6, name, val)
        # (1024: the most Python reads back; Linux cuts a longer header)
        print("readback", name, show_bytes(s.getsockopt(socket.IPPROTO_IPV6, name, 1024)))


def recv_all(c):
    got = b""
    while True:
        d = c.recv(65536)
        if not d:
            return got
        got += d


def client(addr, port, kind):
    six = ":" in addr
    s = socket.socket(socket.AF_INET6 if six else socket.AF_INET, socket.SOCK_STREAM)
    set_kind(s, six, kind, addr)
    if kind.startswith("lsrr") or kind == "huge":
        # The peer drops a source-routed datagram: only the SYN matters;
        # a datagram longer than the MTU does not go.
        s.setblocking(False)
        try:
            s.connect((addr, port))
        except BlockingIOError:
            pass
        except OSError as e:
            print("connect", errno.errorcode[e.errno])
            return
        _, w, _ = select.select([], [s], [], 1.0)
        print("connect", "done" if w else "pending")
        s.close()
        return
    s.settimeout(20)
    s.connect((addr, port))
    print("maxseg", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG))
    s.sendall(b"x" * 3000)
    s.shutdown(socket.SHUT_WR)
    print("back", len(recv_all(s)))
    s.close()


def server(addr, port, kind, ready):
    six = ":" in addr
    lst = socket.socket(socket.AF_INET6 if six else socket.AF_INET, socket.SOCK_STREAM)
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    set_kind(lst, six, kind, addr)
    lst.bind((addr, port))
    lst.listen(1)
    lst.settimeout(20)
    open(ready, "w").close()
    c, _ = lst.accept()
    c.settimeout(20)
    opt = (socket.IPPROTO_IPV6, IPV6_HOPOPTS, 1024) if six else (socket.IPPROTO_IP, IP_OPTIONS, 40)
    print("accepted readback", show_bytes(c.getsockopt(*opt)) or "-")
    print("maxseg", c.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG))
    got = recv_all(c)
    c.sendall(got)
    c.close()
    print("echoed", len(got))


def show_v4_opts(opts, me, peer):
    """The options' bytes, addresses and times named."""
    out, i = [], 0
    while i < len(opts):
        t = opts[i]
        if t in (0, 1):
            out.append("%02x" % t)
            i += 1
            continue
        n = opts[i + 1]
        o = opts[i:i + n]
        words = []
        if t == 68:  # timestamps: the times vary
            flg = o[3] & 0xF
            for j in range(4, n, 4):
                w = o[j:j + 4]
                is_time = flg == 0 or (j - 4) % 8 == 4
                words.append("[t]" if is_time and w != bytes(4) else name_addr(w, me, peer))
            out.append(o[:4].hex() + " " + " ".join(words))
        elif t in (7, 131, 137):
            words = [name_addr(o[j:j + 4], me, peer) for j in range(3, n, 4)]
            out.append(o[:3].hex() + " " + " ".join(words))
        else:
            out.append(o.hex())
        i += n
    return " ".join(out)


def name_addr(w, me, peer):
    return "[me]" if w == me else "[peer]" if w == peer else w.hex()


def show_v6_ext(ext, me, peer):
    out, i = [], 0
    while i < len(ext):
        n = (ext[i + 1] + 1) * 8
        h = ext[i:i + n]
        if h[2] == 4 and len(h) >= 8:  # a routing header of type 4: its segments
            segs = [name_addr(h[j:j + 16], me, peer) for j in range(8, n, 16)]
            out.append(h[:8].hex() + " " + " ".join(segs))
        else:
            out.append(show_bytes(h))
        i += n
    return " | ".join(out)


def sniff(addr, port, iface, role, kind):
    six = ":" in addr
    fam = socket.AF_INET6 if six else socket.AF_INET
    pk = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    pk.bind((iface, ETH_P_ALL))
    pk.settimeout(0.05)
    seen = {"syn": None, "rest": []}
    done = threading.Event()

    def record():
        while not done.is_set():
            try:
                frame, where = pk.recvfrom(65535)
            except socket.timeout:
                continue
            if where[2] == socket.PACKET_OUTGOING:
                continue
            ip = frame[14:]
            if six and len(ip) >= 40 and ip[0] >> 4 == 6:
                nh, off = ip[6], 40
                while nh in (0, 43, 60) and off + 8 <= len(ip):
                    nh, off = ip[off], off + (ip[off + 1] + 1) * 8
                if nh != 6:
                    continue
                text = show_v6_ext(ip[40:off], ip[8:24], ip[24:40]) or "-"
            elif not six and len(ip) >= 20 and ip[0] >> 4 == 4 and ip[9] == 6:
                off = (ip[0] & 15) * 4
                text = show_v4_opts(ip[20:off], ip[12:16], ip[16:20]) or "-"
            else:
                continue
            th = ip[off:]
            if len(th) < 20 or port not in struct.unpack("!HH", th[:4]):
                continue
            if th[13] & 0x02:
                if seen["syn"] is None:
                    seen["syn"] = text
            elif text not in seen["rest"]:
                seen["rest"].append(text)

    t = threading.Thread(target=record)
    t.start()
    got = 0
    try:
        if role == "server":
            lst = socket.socket(fam, socket.SOCK_STREAM)
            lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            lst.bind((addr, port))
            lst.listen(1)
            print("listening", flush=True)
            lst.settimeout(5)
            try:
                c, _ = lst.accept()
                c.settimeout(20)
                got = len(recv_all(c))
                c.close()
            except socket.timeout:
                pass  # a source route the kernel dropped
        else:
            c = socket.socket(fam, socket.SOCK_STREAM)
            if kind:
                c.setsockopt(socket.IPPROTO_IP, IP_OPTIONS, v4_kind(kind, addr))
            c.settimeout(20)
            c.connect((addr, port))
            c.sendall(b"y" * 3000)
            c.shutdown(socket.SHUT_WR)
            got = len(recv_all(c))
            c.close()
        time.sleep(0.3)
    finally:
        done.set()
        t.join()
    print("syn", seen["syn"])
    for r in seen["rest"]:
        print("rest", r)
    print("got", got)


def main():
    mode = sys.argv[1]
    if mode == "client":
        client(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif mode == "server":
        server(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif mode == "sniff":
        sniff(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6] if len(sys.argv) > 6 else None)
    else:
        raise SystemExit(__doc__)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
