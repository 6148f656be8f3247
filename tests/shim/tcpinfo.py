#!/usr/bin/env python3
"""TCP_INFO after a transfer, field by field, for the shim tests.

    tcpinfo.py ADDR PORT BYTES [open|ended SECONDS]

Connects to an echo server (echo_server.py), sends BYTES, reads them back,
waits 300 ms for the last ACKs to settle, then reads TCP_INFO with room
for 512 bytes (the connection still ESTABLISHED) and prints "len N" and one
"name value" line per field of Linux 6.18's struct tcp_info (280 bytes). A
second getsockopt with 8 bytes checks that a short length gets a prefix
("short N first8hex").

With "ended SECONDS" the connection ends first, the socket still open: the
program shuts down its sending side and reads until the peer's FIN ("eof")
or RST ("ECONNRESET"), then waits SECONDS (past TIME-WAIT) before reading
TCP_INFO; the fields read while the connection was open come first, as
"open NAME VALUE" lines.
"""
import errno
import socket
import struct
import sys
import time

# Linux 6.18's struct tcp_info (include/uapi/linux/tcp.h), in order.
FIELDS = [
    ("B", "state"), ("B", "ca_state"), ("B", "retransmits"), ("B", "probes"),
    ("B", "backoff"), ("B", "options"), ("B", "wscale"), ("B", "flags"),
    ("I", "rto"), ("I", "ato"), ("I", "snd_mss"), ("I", "rcv_mss"),
    ("I", "unacked"), ("I", "sacked"), ("I", "lost"), ("I", "retrans"), ("I", "fackets"),
    ("I", "last_data_sent"), ("I", "last_ack_sent"), ("I", "last_data_recv"), ("I", "last_ack_recv"),
    ("I", "pmtu"), ("I", "rcv_ssthresh"), ("I", "rtt"), ("I", "rttvar"), ("I", "snd_ssthresh"),
    ("I", "snd_cwnd"), ("I", "advmss"), ("I", "reordering"), ("I", "rcv_rtt"), ("I", "rcv_space"),
    ("I", "total_retrans"),
    ("Q", "pacing_rate"), ("Q", "max_pacing_rate"), ("Q", "bytes_acked"), ("Q", "bytes_received"),
    ("I", "segs_out"), ("I", "segs_in"), ("I", "notsent_bytes"), ("I", "min_rtt"),
    ("I", "data_segs_in"), ("I", "data_segs_out"),
    ("Q", "delivery_rate"), ("Q", "busy_time"), ("Q", "rwnd_limited"), ("Q", "sndbuf_limited"),
    ("I", "delivered"), ("I", "delivered_ce"),
    ("Q", "bytes_sent"), ("Q", "bytes_retrans"),
    ("I", "dsack_dups"), ("I", "reord_seen"), ("I", "rcv_ooopack"), ("I", "snd_wnd"),
    ("I", "rcv_wnd"), ("I", "rehash"),
    ("H", "total_rto"), ("H", "total_rto_recoveries"), ("I", "total_rto_time"),
    ("I", "received_ce"),
    ("I", "delivered_e1_bytes"), ("I", "delivered_e0_bytes"), ("I", "delivered_ce_bytes"),
    ("I", "received_e1_bytes"), ("I", "received_e0_bytes"), ("I", "received_ce_bytes"),
    ("H", "accecn_fail_mode"), ("H", "accecn_opt_seen"),
]
FMT = "=" + "".join(f for f, _ in FIELDS)
assert struct.calcsize(FMT) == 280


def fields(b):
    v = struct.unpack(FMT, b[:280].ljust(280, b"\0"))
    return [(name, x) for (_, name), x in zip(FIELDS, v)]


def end(s, wait):
    """Ends the connection from our side and sees the peer's end."""
    s.shutdown(socket.SHUT_WR)
    try:
        while s.recv(65536):
            pass
        print("end eof")
    except OSError as e:
        print("end", errno.errorcode[e.errno])
    time.sleep(wait)


def main():
    addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ended = len(sys.argv) > 4 and sys.argv[4] == "ended"
    s = socket.create_connection((addr, port), timeout=30)
    data = bytes((i * 7 + 3) & 0xff for i in range(n))
    got = bytearray()

    s.sendall(data)
    while len(got) < n:
        b = s.recv(65536)
        if not b:
            break
        got += b
    time.sleep(0.3)
    if bytes(got) != data:
        print("echo differs: %d bytes back" % len(got))
        return 1
    b = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 512)
    if ended:
        for name, x in fields(b):
            print("open", name, x)
        end(s, float(sys.argv[5]))
        b = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 512)
    print("len", len(b))
    for name, x in fields(b):
        print(name, x)
    short = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    print("short", len(short), short.hex() == b[:8].hex())
    s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
