"""A listener on the wildcard address, a forked child that closes its copy
of it and lives on, then the listener's close: a client on the same host
(127.0.0.1) must be refused, as on Linux, whose listening socket is gone
with its last fd. Prints "refused" or "connected".

    python3 lo_fork_close.py PORT
"""
import os
import socket
import sys
import time

port = int(sys.argv[1])
lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lst.bind(("0.0.0.0", port))
lst.listen(8)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    lst.close()
    os.write(w, b"x")
    time.sleep(10)
    os._exit(0)
os.close(w)
os.read(r, 1)  # the child closed its copy
lst.close()
time.sleep(0.5)  # the stack lets the listener go
cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
cli.settimeout(5)
try:
    cli.connect(("127.0.0.1", port))
    print("connected")
except ConnectionRefusedError:
    print("refused")
os.kill(pid, 9)
os.waitpid(pid, 0)
