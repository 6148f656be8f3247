"""A server that accepts until it runs out of fds, then recovers.

    accept_exhaust.py PORT OUT

Listens on 0.0.0.0:PORT (backlog 128) and accepts, keeping every connection,
until accept() fails or nothing comes for 10 s. Then, 2 s later, closes five
of them and accepts once more. Writes to OUT:
    accepted K
    error ERRNO_NAME | error none
    again ok | again ERRNO_NAME
The fd limit is the caller's (ulimit -n).
"""
import errno
import os
import socket
import sys
import time


def name(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__


def main():
    port, out = int(sys.argv[1]), sys.argv[2]
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(128)
    ls.settimeout(10)
    held, err = [], "none"
    while True:
        try:
            c, _ = ls.accept()
        except OSError as e:
            err = name(e)
            break
        held.append(c)
    # The clients' last connections arrive meanwhile (under ustcp, each
    # one handed over before accept() costs the process an fd, the stack
    # end: up to the backlog's worth).
    time.sleep(2)
    for c in held[:5]:
        c.close()
    try:
        ls.accept()[0].close()
        again = "ok"
    except OSError as e:
        again = name(e)
    with open(out + ".tmp", "w") as f:
        f.write("accepted %d\nerror %s\nagain %s\n" % (len(held), err, again))
    os.rename(out + ".tmp", out)


main()
