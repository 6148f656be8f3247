"""SO_MAX_PACING_RATE: what a sender caps itself to.

    maxpacing.py peer ADDR PORT          (a sink: reads each connection to
                                          its end, then closes it)
    maxpacing.py prog ADDR PORT CC RATE  (the sender)

The sender sets TCP_CONGESTION CC, then SO_MAX_PACING_RATE RATE (bytes
per second, 32 bits), connects, and sends 2 * RATE bytes, then shuts down
and waits for the sink's close. Linux caps the pacing rate of every
algorithm with it and paces in TCP where no fq qdisc does (its sockets'
sk_pacing_status turns SK_PACING_NEEDED): the transfer takes about two
seconds (the first ten segments leave unpaced). Prints what a program
sees; the time itself on stderr.
"""
import socket
import struct
import sys
import time

SO_MAX_PACING_RATE = 47
TCP_CONGESTION = 13


def peer(addr, port):
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind((addr, port))
    lst.listen(4)
    lst.settimeout(30)
    for _ in range(2):
        c, _ = lst.accept()
        c.settimeout(30)
        while c.recv(1 << 16):
            pass
        c.close()


def tcp_info_rates(s):
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    # tcpi_pacing_rate and tcpi_max_pacing_rate: two u64 at offset 104.
    return struct.unpack_from("QQ", info, 104)


def prog(addr, port, cc, rate):
    s = socket.socket()
    s.setsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, cc.encode())
    s.setsockopt(socket.SOL_SOCKET, SO_MAX_PACING_RATE, rate)
    print("getsockopt: %d" % s.getsockopt(socket.SOL_SOCKET, SO_MAX_PACING_RATE))
    s.connect((addr, port))
    pacing, cap = tcp_info_rates(s)
    print("TCP_INFO max_pacing_rate: %d, pacing_rate within it: %s" % (cap, 0 < pacing <= cap))
    data = b"x" * (2 * rate)
    start = time.monotonic()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    s.settimeout(30)
    s.recv(1)
    took = time.monotonic() - start
    print("%s: %d bytes at %d B/s took %.2f s" % (cc, len(data), rate, took), file=sys.stderr)
    # The cap holds (never faster than 0.8 of 2 s); the upper bound only
    # catches a stall: a loaded machine paces late (3.5 s seen in a run
    # beside CI), and speed is the benchmarks' business, not a test's.
    print("%d bytes took 1.6 to 10 s: %s" % (len(data), 1.6 <= took <= 10.0))
    s.close()


def main():
    if sys.argv[1] == "peer":
        peer(sys.argv[2], int(sys.argv[3]))
    else:
        prog(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))


main()
