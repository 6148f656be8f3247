#!/usr/bin/env python3
"""Echo server for the shim tests.

    echo_server.py ADDR PORT [COUNT [rst]]

Accepts COUNT connections (default 1), each served by a thread that echoes
everything until EOF, then closes (with "rst": aborts, sending a RST, as
SO_LINGER with a zero timeout does). Prints one line per connection,
"conn N: echoed BYTES SHA256", and exits when all are done: status 0 if every
connection ended with EOF, 1 otherwise.
"""
import hashlib
import socket
import struct
import sys
import threading

failed = []
lock = threading.Lock()


def say(line):
    """One whole line per call: threads' lines must not interleave."""
    with lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def serve(n, s, abort):
    h, total = hashlib.sha256(), 0
    try:
        s.settimeout(30)
        while True:
            b = s.recv(65536)
            if not b:
                break
            h.update(b)
            total += len(b)
            s.sendall(b)
        if abort:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            s.shutdown(socket.SHUT_WR)
        say("conn %d: echoed %d %s" % (n, total, h.hexdigest()))
    except Exception as e:  # a thread's exception must fail the run
        say("conn %d: error after %d bytes: %r" % (n, total, e))
        failed.append(n)
    finally:
        s.close()


def main():
    addr, port = sys.argv[1], int(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    abort = len(sys.argv) > 4 and sys.argv[4] == "rst"
    ls = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(count)
    ls.settimeout(30)
    threads = []
    for n in range(1, count + 1):
        s, _ = ls.accept()
        t = threading.Thread(target=serve, args=(n, s, abort))
        t.start()
        threads.append(t)
    ls.close()
    for t in threads:
        t.join()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
