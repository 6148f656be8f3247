#!/usr/bin/python3
"""Churn for the soak (tests/soak/soak, issue 13): connections opened,
data sent both ways and checked byte for byte, closed by either side, some
aborted. The same program runs on the kernel's TCP and under ustcp
(LD_PRELOAD), as a server or as a client.

  soak.py server ADDR PORT SECONDS REPORT
  soak.py client ADDR PORT SECONDS THREADS SEED REPORT

A connection begins with one line from the client, "SEED UP DOWN HOW\\n";
the client then sends UP bytes, the server checks them and answers DOWN
bytes, which the client checks. The bytes are a stream drawn from SEED
(stream()), so each side knows what the other must send. HOW says who ends
it:

  cfirst  the client closes first, after reading DOWN bytes (its TIME-WAIT)
  sfirst  the server closes first after sending (the server's TIME-WAIT)
  cabort  the client resets it (SO_LINGER 0) part way through sending
  sabort  the server resets it part way through answering

Whatever arrives before a reset must be a prefix of the stream. An
operation that waits longer than OP_TIMEOUT is a hang. At its end each
process waits for its TIME-WAITs to pass (SETTLE) and writes one JSON
report: connections by outcome, bytes, errors, and its fd count and VmRSS
at the start (after a first round of connections) and at the end.
"""
import json
import os
import random
import socket
import struct
import sys
import threading
import time

OP_TIMEOUT = 60.0     # one send or receive: longer is a hang
SETTLE = 4.0          # TIME-WAITs (USTCP_MSL=1) and closes gone
HOWS = ("cfirst", "sfirst", "cabort", "sabort")
LINGER0 = struct.pack("ii", 1, 0)


def keepalive(s):
    """Probes after 2 s idle: a reset is never sent again (by Linux
    neither), so a side waiting to read after its peer's reset was lost
    would wait for ever; the probe draws another from the peer's TCP. The
    soak then exercises keepalive too."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 2)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 10)


def stream(seed, tag, n):
    """The n bytes one side of connection seed sends (tag "u" or "d")."""
    return random.Random(f"{seed}{tag}").randbytes(n)


def fds():
    return len(os.listdir("/proc/self/fd"))


def warm_after(seconds):
    """The VmRSS a process has under load: sampled once, after seconds."""
    sample = {}

    def take():
        sample["rss_kib"] = rss_kib()
    t = threading.Timer(seconds, take)
    t.daemon = True
    t.start()
    return sample


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.outcomes = {}
        self.bytes_in = self.bytes_out = 0
        self.errors = []

    def done(self, outcome, got, sent):
        with self.lock:
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
            self.bytes_in += got
            self.bytes_out += sent

    def error(self, what):
        with self.lock:
            if len(self.errors) < 50:
                self.errors.append(what)
            self.outcomes["error"] = self.outcomes.get("error", 0) + 1


def recv_check(s, want, n, allow_short):
    """Reads until n bytes (or the end, or a reset where allow_short);
    every byte must be want's. Returns the count read and whether the
    stream ended early."""
    got = 0
    while got < n:
        try:
            b = s.recv(min(65536, n - got))
        except ConnectionResetError:
            if allow_short:
                return got, True
            raise
        if not b:
            if allow_short:
                return got, True
            raise EOFError(f"end after {got} of {n} bytes")
        if b != want[got:got + len(b)]:
            raise ValueError(f"bytes {got}..{got + len(b)} differ from the stream")
        got += len(b)
    return got, False


def read_line(s):
    line = b""
    while not line.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            raise EOFError("end before the request line")
        line += b
        if len(line) > 100:
            raise ValueError("request line too long")
    return line.decode()


def serve_one(c, tally):
    c.settimeout(OP_TIMEOUT)
    keepalive(c)
    seed = how = None
    try:
        seed, up, down, how = read_line(c).split()
        up, down = int(up), int(down)
        got, short = recv_check(c, stream(seed, "u", up), up, how == "cabort")
        if short:
            tally.done("cabort", got, 0)
            return
        data = stream(seed, "d", down)
        if how == "sabort":
            c.sendall(data[:down // 2])
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
            tally.done(how, got, down // 2)
            return
        c.sendall(data)
        if how == "cfirst":
            b = c.recv(1)  # the client's FIN
            if b:
                raise ValueError("bytes after the answer")
        elif how == "cabort":
            try:  # the client resets once it has sent a part; or it sent all
                c.recv(1)
            except ConnectionResetError:
                pass
        tally.done(how, got, down)
    except (ConnectionResetError, BrokenPipeError) as e:
        if how == "cabort":
            tally.done("cabort", 0, 0)
        elif how is None:
            # A client's reset discards what it had not sent (as Linux
            # does), the request line too: the client, which knows what it
            # did, reports a reset it did not ask for.
            tally.done("reset-before-request", 0, 0)
        else:
            tally.error(f"server {seed} {how}: {e!r}")
    except Exception as e:  # a timeout (hang), bad bytes, an early end
        tally.error(f"server {seed} {how}: {e!r}")
    finally:
        c.close()


def server(addr, port, seconds, report):
    tally = Tally()
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((addr, port))
    l.listen(128)
    l.settimeout(0.5)
    start = {"fds": fds(), "rss_kib": rss_kib()}
    warm = warm_after(min(30.0, seconds / 4))
    end_at = time.monotonic() + seconds
    workers = []
    while time.monotonic() < end_at:
        try:
            c, _ = l.accept()
        except socket.timeout:
            continue
        t = threading.Thread(target=serve_one, args=(c, tally), daemon=True)
        t.start()
        workers.append(t)
        workers = [w for w in workers if w.is_alive()]
    for w in workers:
        w.join(OP_TIMEOUT * 3)
        if w.is_alive():
            tally.error("server: a connection still open at the end (hang)")
    time.sleep(SETTLE)
    write_report(report, "server", tally, start, warm)
    l.close()


def sabort_read(s, want):
    """The server sends want, then resets (keepalive: a lost reset)."""
    got, short = recv_check(s, want, len(want), True)
    if short:
        return got
    try:
        if s.recv(1):
            raise ValueError("bytes after the reset point")
    except ConnectionResetError:
        pass
    return got


def client_one(addr, port, seed, rng, tally):
    up = rng.choice((0, rng.randrange(1, 2000), rng.randrange(1, 300000)))
    down = rng.choice((0, rng.randrange(1, 2000), rng.randrange(1, 600000)))
    how = rng.choice(HOWS)
    s = socket.socket()
    s.settimeout(OP_TIMEOUT)
    keepalive(s)
    try:
        s.connect((addr, port))
        s.sendall(f"{seed} {up} {down} {how}\n".encode())
        data = stream(seed, "u", up)
        if how == "cabort":
            s.sendall(data[:up // 2])
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
            tally.done(how, 0, up // 2)
            return
        if data:  # sendall(b"") still calls send(), which meets a reset that came early
            s.sendall(data)
        if how == "sabort":
            got = sabort_read(s, stream(seed, "d", down)[:down // 2])
        else:
            got, _ = recv_check(s, stream(seed, "d", down), down, False)
        if how == "sfirst":
            if s.recv(1):
                raise ValueError("bytes after the answer")
        tally.done(how, got, up)
    except Exception as e:
        tally.error(f"client {seed} {how} up {up} down {down}: {e!r}")
    finally:
        s.close()


def client(addr, port, seconds, threads, seed, report):
    tally = Tally()
    # A first round starts the stack and its tables: the start values are
    # taken after it, once its TIME-WAITs are gone.
    rng = random.Random(f"{seed}warm")
    for i in range(4):
        client_one(addr, port, f"{seed}w{i}", rng, tally)
    time.sleep(SETTLE)
    start = {"fds": fds(), "rss_kib": rss_kib()}
    warm = warm_after(min(30.0, seconds / 4))
    end_at = time.monotonic() + seconds

    def loop(k):
        rng = random.Random(f"{seed}t{k}")
        i = 0
        while time.monotonic() < end_at:
            client_one(addr, port, f"{seed}t{k}c{i}", rng, tally)
            i += 1

    ts = [threading.Thread(target=loop, args=(k,), daemon=True) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(seconds + OP_TIMEOUT * 4)
        if t.is_alive():
            tally.error("client: a thread still running at the end (hang)")
    time.sleep(SETTLE)
    write_report(report, "client", tally, start, warm)


def write_report(path, role, tally, start, warm):
    r = {"role": role, "pid": os.getpid(), "outcomes": tally.outcomes,
         "bytes_in": tally.bytes_in, "bytes_out": tally.bytes_out,
         "errors": tally.errors, "start": start, "warm": warm,
         "end": {"fds": fds(), "rss_kib": rss_kib()}}
    with open(path + ".tmp", "w") as f:
        json.dump(r, f)
    os.rename(path + ".tmp", path)


def main(argv):
    if len(argv) == 6 and argv[1] == "server":
        server(argv[2], int(argv[3]), float(argv[4]), argv[5])
    elif len(argv) == 8 and argv[1] == "client":
        client(argv[2], int(argv[3]), float(argv[4]), int(argv[5]), argv[6], argv[7])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
