"""Opens N idle connections, holds them, closes them, and says what it cost.

    idle_conns.py ADDR PORT[:COUNT] N [HOLD_SECONDS]

Raises the soft fd limit to the hard one, then opens N TCP connections to
ADDR:PORT (or to COUNT ports from PORT in turn: one local address has at
most one connection per local port to each) one after the other (blocking connect, SO_KEEPALIVE on), holds them
HOLD_SECONDS (default 0), and closes them all. Prints "key value" lines:

    fds_before, fds_open, fds_after   open fds (/proc/self/fd) at each point
    rss_before_kb, rss_open_kb        VmRSS
    memavail_before_kb, memavail_open_kb   MemAvailable (the machine's)
    slab_growth                       the slab caches that grew most while
                                      opening (name:bytes,...; root only)
    open_ms_first, open_ms_last       ms to open the first and the last 1000
                                      (or tenth, when N < 10000)
    open_s, close_s                   seconds to open all, to close all
    opened                            how many connections opened
    error                             CALL:ERRNO, the first error, if one
                                      stopped it
The first error stops the opening; what was opened is still closed. One fd
is kept back while opening, so that the counts can be read at EMFILE.
"""
import errno
import os
import resource
import socket
import sys
import time


def fds():
    return len(os.listdir("/proc/self/fd")) - 1  # the listing's own


def status_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def memavail_kb():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0


def slabs():
    """name -> bytes in use, from /proc/slabinfo (root only)."""
    out = {}
    try:
        with open("/proc/slabinfo") as f:
            for line in f.readlines()[2:]:
                p = line.split()
                out[p[0]] = int(p[1]) * int(p[3])  # active objects x size
    except OSError:
        pass
    return out


def main():
    addr, ports, n = sys.argv[1], sys.argv[2].split(":"), int(sys.argv[3])
    port, nports = int(ports[0]), int(ports[1]) if len(ports) > 1 else 1
    hold = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    step = 1000 if n >= 10000 else max(1, n // 10)
    # The first socket starts a user-space stack (its own fds): counted
    # from after it.
    socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
    time.sleep(0.1)
    r = {"fds_before": fds(), "rss_before_kb": status_kb("VmRSS"),
         "memavail_before_kb": memavail_kb()}
    slab0 = slabs()
    socks, marks, err = [], [], ""
    # One fd kept back while opening: the kernel's sockets fill the table
    # to the last number at EMFILE, and reading /proc then needs one.
    reserve = os.open("/dev/null", os.O_RDONLY)
    t0 = time.monotonic()
    for i in range(n):
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError as e:
            err = "socket:" + errno.errorcode.get(e.errno, str(e.errno))
            break
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            s.connect((addr, port + i % nports))
        except OSError as e:
            err = "connect:" + errno.errorcode.get(e.errno, str(e.errno))
            s.close()
            break
        socks.append(s)
        if (i + 1) % step == 0:
            marks.append(time.monotonic())
    t1 = time.monotonic()
    os.close(reserve)
    time.sleep(0.5)  # the last handshakes' memory settles
    # Memory first: listing /proc/self/fd makes kernel objects of its own.
    r.update(opened=len(socks), open_s="%.3f" % (t1 - t0),
             rss_open_kb=status_kb("VmRSS"), memavail_open_kb=memavail_kb())
    slab1 = slabs()
    r["fds_open"] = fds()
    grown = sorted(((slab1.get(k, 0) - slab0.get(k, 0), k) for k in slab1), reverse=True)
    r["slab_growth"] = ",".join("%s:%d" % (k, v) for v, k in grown[:12] if v > 0) or "-"
    if len(marks) >= 2:
        r["open_ms_first"] = "%.1f" % ((marks[0] - t0) * 1000)
        r["open_ms_last"] = "%.1f" % ((marks[-1] - marks[-2]) * 1000)
    if hold > 0:
        time.sleep(hold)
    t2 = time.monotonic()
    for s in socks:
        s.close()
    socks = []
    t3 = time.monotonic()
    # The stack lets go of its ends as it hears of the closes: wait (bounded)
    # for the count to come back.
    deadline = time.monotonic() + 30
    while fds() > r["fds_before"] and time.monotonic() < deadline:
        time.sleep(0.05)
    r.update(close_s="%.3f" % (t3 - t2), fds_after=fds(), step=step)
    if err:
        r["error"] = err
    for k, v in r.items():
        print(k, v)
    sys.stdout.flush()


main()
