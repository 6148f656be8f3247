#!/usr/bin/env python3
"""The kernel peer of ipopts.py: one connection, and the IPv4 header of
every segment the other side sent on it.

    ipsniff.py sink ADDR PORT     accept one connection on ADDR:PORT,
                                  read to EOF, close
    ipsniff.py fetch ADDR PORT    connect to ADDR:PORT, read to EOF, close

With a fourth argument "win", SYN and SYN-ACK lines also give the window
and the window scale option ("win=N ws=N", ws=- without the option).

A raw socket (it sees the segments that arrive, not those sent) records
the other side's segments from the start; once that side's last ACK
(after both FINs) arrives, or after 10 s, it prints one line per segment,
"KIND tos=0xNN ttl=N df=N", KIND being SYN, SYN-ACK, DATA, FIN, RST or
ACK; a run of equal lines is printed once, so that a different number of
pure ACKs (delayed-ACK timing) does not show.
"""
import select
import socket
import struct
import sys
import threading
import time


def kind(flags, payload):
    if flags & 0x04:
        return "RST"
    if flags & 0x02:
        return "SYN-ACK" if flags & 0x10 else "SYN"
    if flags & 0x01:
        return "FIN"
    return "DATA" if payload else "ACK"


def syn_window(tcp):
    """The window field and the window scale option of a SYN."""
    opts, i, ws = tcp[20:(tcp[12] >> 4) * 4], 0, "-"
    while i < len(opts) and opts[i] != 0:
        if opts[i] == 1:
            i += 1
            continue
        if opts[i] == 3:
            ws = str(opts[i + 2])
        i += max(opts[i + 1], 2)
    return " win=%d ws=%s" % (struct.unpack("!H", tcp[14:16])[0], ws)


def sniff(raw, other, lines, done, win):
    """Until done is set and the other side's ACK after both FINs came."""
    fins = 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r, _, _ = select.select([raw], [], [], 0.05)
        if not r:
            continue
        b, a = raw.recvfrom(65535)
        if a[0] != other:
            continue
        ihl = (b[0] & 15) * 4
        flags = b[ihl + 13]
        payload = len(b) - ihl - (b[ihl + 12] >> 4) * 4
        k = kind(flags, payload)
        frag = struct.unpack("!H", b[6:8])[0]
        line = "%s tos=%#04x ttl=%d df=%d" % (k, b[1], b[8], frag >> 14 & 1)
        if win and flags & 0x02:
            line += syn_window(b[ihl:])
        if not lines or lines[-1] != line:
            lines.append(line)
        if k == "FIN" or k == "RST":
            fins += 1
        if (k == "ACK" and fins and done.is_set()) or k == "RST":
            return


def main():
    mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    win = len(sys.argv) > 4 and sys.argv[4] == "win"
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    lines, done = [], threading.Event()
    if mode == "sink":
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((addr, port))
        ls.listen()
        s, (other, _) = ls.accept()
        # The SYN came before accept: the sniffer is already reading, and
        # a raw socket keeps what arrived since it was opened.
    else:
        other = addr
        s = socket.create_connection((addr, port), timeout=10)
    t = threading.Thread(target=sniff, args=(raw, other, lines, done, win))
    t.start()
    s.settimeout(10)
    while s.recv(65536):
        pass
    done.set()  # before our FIN: the ACK that answers it ends the capture
    s.close()
    t.join()
    print("\n".join(lines))


main()
