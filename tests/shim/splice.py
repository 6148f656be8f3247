#!/usr/bin/env python3
"""splice(2) between pipes and a TCP socket (issue 14, item 12).

    splice.py PEER_ADDR PORT

Connects to an echo server (echo_server.py) and moves 200,000 bytes from a
pipe into the socket with os.splice, shuts the sending side down, then
moves the echo from the socket into another pipe with os.splice until the
peer's EOF. Prints "spliced out N", "spliced in N", "same True"; the same
on the kernel's TCP and under ustcp (where the socket is the pair's app end,
which splices as any stream socket does).
"""
import os
import socket
import sys
import threading

addr, port = sys.argv[1], int(sys.argv[2])
data = os.urandom(200000)
s = socket.create_connection((addr, port), timeout=20)
s.settimeout(None)  # blocking: splice honours the file's O_NONBLOCK


def feed(w):
    """Fills the outgoing pipe from another thread: it holds 64 kB."""
    os.write(w, data)
    os.close(w)


r_out, w_out = os.pipe()
threading.Thread(target=feed, args=(w_out,), daemon=True).start()
sent = 0
while sent < len(data):
    n = os.splice(r_out, s.fileno(), len(data) - sent)
    if n == 0:
        break
    sent += n
s.shutdown(socket.SHUT_WR)
print("spliced out %d" % sent)

r_in, w_in = os.pipe()
got = bytearray()
while True:
    n = os.splice(s.fileno(), w_in, 65536)
    if n == 0:
        break
    while n:
        chunk = os.read(r_in, n)
        got += chunk
        n -= len(chunk)
print("spliced in %d" % len(got))
print("same %s" % (bytes(got) == data))
s.close()
