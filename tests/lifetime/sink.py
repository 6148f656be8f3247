#!/usr/bin/env python3
"""Kernel-side sink for the lifetime tests (090-lifetime.bats).

    sink.py ADDR PORT COUNT [SECONDS] [ARM]

Accepts COUNT connections on ADDR:PORT (each served by a thread, so they may
come in parallel), reads each to its end and records how it ended: "eof"
(recv() returned b'': the peer's FIN after all its bytes), "reset"
(ECONNRESET: a RST) or "timeout"/"error NAME". After the end, the connection
is closed (our FIN). One line per connection on stdout, in the order they
end:

    conn N PEERADDR:PORT BYTES SHA256 END

then "done COUNT" once all have ended (or "timeout" after SECONDS, default
300, in all). With ARM (a shell command), it runs once a connection has been
read to its end and before it is closed (050-close.bats's way of dropping our
final ACK once: the command arms an nftables rule).
"""
import errno
import hashlib
import socket
import subprocess
import sys
import threading

lock = threading.Lock()
ended = []


def out(line):
    with lock:
        print(line, flush=True)


def serve(n, s, peer, arm):
    h, got, end = hashlib.sha256(), 0, "eof"
    s.settimeout(60)
    try:
        while True:
            b = s.recv(262144)
            if not b:
                break
            h.update(b)
            got += len(b)
    except ConnectionResetError:
        end = "reset"
    except socket.timeout:
        end = "timeout"
    except OSError as e:
        end = "error " + errno.errorcode.get(e.errno, str(e.errno))
    if arm and end == "eof":
        subprocess.run(arm, shell=True, check=False)
    try:
        s.close()
    except OSError:
        pass
    out("conn %d %s:%d %d %s %s" % (n, peer[0], peer[1], got, h.hexdigest(), end))
    with lock:
        ended.append(n)


def main():
    addr, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 300
    arm = sys.argv[5] if len(sys.argv) > 5 else None
    ls = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(128)
    ls.settimeout(seconds)
    threads = []
    try:
        for n in range(1, count + 1):
            s, peer = ls.accept()
            t = threading.Thread(target=serve, args=(n, s, peer, arm), daemon=True)
            t.start()
            threads.append(t)
    except socket.timeout:
        out("timeout accepting (%d accepted)" % len(threads))
        sys.exit(1)
    for t in threads:
        t.join(90)
    with lock:
        if len(ended) != count:
            print("timeout (%d of %d ended)" % (len(ended), count), flush=True)
            sys.exit(1)
    out("done %d" % count)


if __name__ == "__main__":
    main()
