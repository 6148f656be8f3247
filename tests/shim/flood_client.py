#!/usr/bin/env python3
"""A real client beside a SYN flood: how long its connections take.

    flood_client.py ADDR PORT N REPLY_BYTES [SECONDS]

(ADDR IPv4 or IPv6.)
Opens N connections one after the other to ADDR:PORT (flood_server.py),
each: connect, one line, the whole reply (REPLY_BYTES, checked), close
(the client closes first: the server waits for it).
Stops early after SECONDS (default 60). Prints "key value" lines: connects,
ok, failed, connect_p50_ms, connect_p99_ms, connect_max_ms, total_p50_ms
(connect to the reply's end), and "error WHAT" for the first failure.
"""
import socket
import sys
import time


def pct(v, p):
    if not v:
        return "-"
    v = sorted(v)
    return "%.2f" % v[min(len(v) - 1, int(len(v) * p / 100))]


def main():
    addr, port, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    secs = float(sys.argv[5]) if len(sys.argv) > 5 else 60.0
    want = bytes((i * 7 + 1) & 0xff for i in range(size))
    conn_ms, total_ms = [], []
    failed, tried, first_err = 0, 0, None
    end = time.monotonic() + secs
    while tried < n and time.monotonic() < end:
        tried += 1
        s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(10)
        t0 = time.monotonic()
        try:
            s.connect((addr, port))
            t1 = time.monotonic()
            s.sendall(b"GET\n")
            got = bytearray()
            while len(got) < size:
                d = s.recv(65536)
                if not d:
                    break
                got += d
            if bytes(got) != want:
                raise OSError("reply of %d bytes differs" % len(got))
            conn_ms.append((t1 - t0) * 1000)
            total_ms.append((time.monotonic() - t0) * 1000)
        except OSError as e:
            failed += 1
            first_err = first_err or "%s after %.0f ms" % (e, (time.monotonic() - t0) * 1000)
        finally:
            s.close()
    print("connects", tried)
    print("ok", len(conn_ms))
    print("failed", failed)
    print("connect_p50_ms", pct(conn_ms, 50))
    print("connect_p99_ms", pct(conn_ms, 99))
    print("connect_max_ms", "%.2f" % max(conn_ms) if conn_ms else "-")
    print("total_p50_ms", pct(total_ms, 50))
    if first_err:
        print("error", first_err)


if __name__ == "__main__":
    main()
