#!/usr/bin/env python3
"""TCP_SAVE_SYN and TCP_SAVED_SYN (issue 14): a listener keeps the SYN
headers of each connection it accepts; the accepted socket gives them
once (EINVAL to a short buffer, nothing the second time); with 2 the
link's header comes first.

    savesyn.py server ADDR PORT   the program: prints what it reads
    savesyn.py client ADDR PORT   the kernel peer: two connections
    savesyn.py self ADDR PORT     the program is its own client (Linux's lo:
                                  a zeroed link header for 2)

(an IPv6 ADDR, or :: for the server: over IPv6)

The headers are the peer kernel's SYN, the same for both runs but for
what varies per connection (ports, sequence numbers, timestamps, the IP
ID and checksums): what is printed is the rest.
"""
import socket
import struct
import sys

from shimlib import attempt

TCP_SAVE_SYN, TCP_SAVED_SYN = 27, 28


def describe(h, mac):
    """The saved headers, what does not vary per connection."""
    out = []
    if mac:
        out.append(f"link {len(h[:14])} type {h[12:14].hex()}")
        h = h[14:]
    if h[0] >> 4 == 6:
        ihl = 40
        out.append(f"ip v6 plen {struct.unpack('!H', h[4:6])[0]} next {h[6]} hops {h[7]}"
                   f" src {socket.inet_ntop(socket.AF_INET6, h[8:24])}"
                   f" dst {socket.inet_ntop(socket.AF_INET6, h[24:40])}")
    else:
        ihl = (h[0] & 15) * 4
        out.append(f"ip v{h[0] >> 4} hl {ihl} len {struct.unpack('!H', h[2:4])[0]} ttl {h[8]} proto {h[9]}"
                   f" src {socket.inet_ntoa(h[12:16])} dst {socket.inet_ntoa(h[16:20])}")
    t = h[ihl:]
    thl = (t[12] >> 4) * 4
    kinds, i = [], 20
    while i < thl:
        k = t[i]
        kinds.append(str(k))
        i += 1 if k in (0, 1) else max(t[i + 1], 2)
    out.append(f"tcp dport {struct.unpack('!H', t[2:4])[0]} hl {thl} flags {t[13]:#x}"
               f" win {struct.unpack('!H', t[14:16])[0]} options {','.join(kinds)}"
               f" total {len(h) + (14 if mac else 0)}")
    return "; ".join(out)


def server(addr, port):
    l = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_STREAM)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    print("fresh", l.getsockopt(socket.IPPROTO_TCP, TCP_SAVE_SYN))
    print("set 3", attempt(lambda: l.setsockopt(socket.IPPROTO_TCP, TCP_SAVE_SYN, 3)))
    print("set saved", attempt(lambda: l.setsockopt(socket.IPPROTO_TCP, TCP_SAVED_SYN, 1)))
    l.setsockopt(socket.IPPROTO_TCP, TCP_SAVE_SYN, 1)
    l.bind((addr, port))
    l.listen(2)
    print("listening", flush=True)
    print("listener", l.getsockopt(socket.IPPROTO_TCP, TCP_SAVE_SYN),
          "saved", len(l.getsockopt(socket.IPPROTO_TCP, TCP_SAVED_SYN, 512)))
    for mac in (False, True):
        c, _ = l.accept()
        print("accepted", c.getsockopt(socket.IPPROTO_TCP, TCP_SAVE_SYN))
        print("short", attempt(lambda: c.getsockopt(socket.IPPROTO_TCP, TCP_SAVED_SYN, 20)))
        print(describe(c.getsockopt(socket.IPPROTO_TCP, TCP_SAVED_SYN, 512), mac))
        print("again", len(c.getsockopt(socket.IPPROTO_TCP, TCP_SAVED_SYN, 512)))
        l.setsockopt(socket.IPPROTO_TCP, TCP_SAVE_SYN, 2)  # before the peer's next SYN
        c.sendall(b"x")
        c.close()
    l.close()


def own(addr, port):
    l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    l.setsockopt(socket.IPPROTO_TCP, TCP_SAVE_SYN, 2)
    l.bind((addr, port))
    l.listen(1)
    s = socket.create_connection((addr, port), timeout=10)
    c, _ = l.accept()
    h = c.getsockopt(socket.IPPROTO_TCP, TCP_SAVED_SYN, 512)
    print("link", h[:12].hex(), describe(h, True))
    s.close()
    c.close()


def client(addr, port):
    for _ in range(2):
        s = socket.create_connection((addr, port), timeout=10)
        s.recv(1)
        s.close()


if __name__ == "__main__":
    {"server": server, "client": client, "self": own}[sys.argv[1]](sys.argv[2], int(sys.argv[3]))
