#!/usr/bin/env python3
"""What idle connections that carried data cost the program (issue 13).

    idle_rss.py ADDR PORT N

Opens N connections to an echo server at ADDR:PORT one after the other,
sends 1000 bytes on each and reads them back, then holds them all idle.
Prints the process's VmRSS (kB) after the last echo and after 3 s idle.
Run it on the kernel's TCP and under LD_PRELOAD=libustcp.so with a small
and a large N: the difference per connection is what an idle connection
that once received costs (tests/bench/README.md, "scale"). For example,
in a topology from build/ustcp-netns up NAME:

    ip netns exec NAME-p socat TCP-LISTEN:7100,reuseaddr,fork,backlog=512 EXEC:cat &
    ip netns exec NAME-s env USTCP_IFACE=ust0 USTCP_ADDR=10.9.0.2/24 \\
        LD_PRELOAD=build/libustcp.so tests/bench/idle_rss.py 10.9.0.1 7100 300
"""
import socket
import sys
import time


def vmrss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return -1


def main():
    addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    conns = []
    for _ in range(n):
        s = socket.create_connection((addr, port), timeout=30)
        s.sendall(b"x" * 1000)
        got = 0
        while got < 1000:
            b = s.recv(65536)
            if not b:
                sys.exit("idle_rss.py: the server closed early")
            got += len(b)
        conns.append(s)
    print("after the echoes: VmRSS %d kB" % vmrss(), flush=True)
    time.sleep(3)
    print("3 s idle:         VmRSS %d kB" % vmrss(), flush=True)


if __name__ == "__main__":
    main()
