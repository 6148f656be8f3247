#!/usr/bin/env python3
"""TCP_CC_INFO (issue 14): the congestion control's model as Linux's
getsockopt gives it: nothing for Reno and CUBIC, BBR's struct
tcp_bbr_info (bw_lo, bw_hi, min_rtt, pacing_gain, cwnd_gain: 20 bytes),
zeros before the handshake, the model's own once connected, kept once
the connection is gone (TCP_INFO's state CLOSE from TIME-WAIT on) until
TCP_CONGESTION switches to another (zeros for BBR then, as Linux's).

    ccinfo.py sink ADDR PORT     the kernel peer: reads until EOF, answers
                                 "ok" and closes
    ccinfo.py client ADDR PORT WAIT
                                 the program: prints what it reads, the
                                 connection open, then WAIT seconds after
                                 the peer's FIN (past TIME-WAIT)
"""
import socket
import struct
import sys
import time

from shimlib import attempt

TCP_CC_INFO = 26
# Linux's BBR (tcp_bbr.c): the gains, 256 = 1.0.
HIGH_GAIN = 256 * 2885 // 1000 + 1
GAINS = {HIGH_GAIN, 256 * 1000 // 2885, 256 * 5 // 4, 256 * 3 // 4, 256, 2 * 256}


def cc_info(s, n=64):
    return s.getsockopt(socket.IPPROTO_TCP, TCP_CC_INFO, n)


def client(addr, port, wait):
    for cc in (b"reno", b"cubic", b"bbr"):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc)
        print(cc.decode(), "fresh", cc_info(s).hex() or "-")
        s.close()
    l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    l.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"bbr")
    l.listen(1)
    print("bbr listener", cc_info(l).hex())
    print("set", attempt(lambda: l.setsockopt(socket.IPPROTO_TCP, TCP_CC_INFO, 1)))
    l.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"bbr")
    s.settimeout(20)
    s.connect((addr, port))
    s.sendall(bytes(1 << 20))
    s.shutdown(socket.SHUT_WR)
    assert s.recv(2) == b"ok"
    assert s.recv(1) == b""
    b = cc_info(s)
    bw_lo, bw_hi, min_rtt, pacing_gain, cwnd_gain = struct.unpack("5I", b)
    bw = bw_hi << 32 | bw_lo
    print("bbr connected", len(b), "bytes; bandwidth", "> 0" if bw else "0",
          "; min RTT", "1 us .. 1 s" if 0 < min_rtt < 1000000 else min_rtt,
          "; gains", "Linux's" if pacing_gain in GAINS and cwnd_gain in GAINS else (pacing_gain, cwnd_gain))
    print("cut to 8", cc_info(s, 8) == b[:8])
    # The connection is gone (TIME-WAIT, then past it): the socket keeps
    # its algorithm and the model, until switched to another.
    print("state", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0])
    time.sleep(wait)
    print("after", wait, "s: kept", cc_info(s) == b, s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\0"))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"cubic")
    print("cubic", cc_info(s).hex() or "-", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\0"))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"bbr")
    print("bbr again", cc_info(s).hex())
    s.close()


def sink(addr, port):
    l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((addr, port))
    l.listen(1)
    c, _ = l.accept()
    c.settimeout(20)
    while c.recv(65536):
        pass
    c.sendall(b"ok")
    c.close()


if __name__ == "__main__":
    if sys.argv[1] == "client":
        client(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        sink(sys.argv[2], int(sys.argv[3]))
