#!/usr/bin/env python3
"""A client port whose connection is in TIME-WAIT, used again (issue 14,
item 9): Linux's rules for bind and connect (inet_bind_conflict,
tcp_twsk_unique).

    twreuse.py PEER_ADDR PORT LPORT STEP...

Each STEP, in order, in this process:
  close        connect from LPORT (SO_REUSEADDR) to PEER_ADDR:PORT, an echo,
               then close first: LPORT's connection waits in TIME-WAIT here
  bind         a socket without SO_REUSEADDR binds LPORT
  bind-reuse   one with SO_REUSEADDR binds LPORT, then connects to the same
               peer (the 4-tuple in TIME-WAIT) and echoes
  other        one with SO_REUSEADDR binds LPORT, connects to PORT+1 (another
               4-tuple) and echoes
One line per step: what bind and connect returned, and the echo.
"""
import errno
import socket
import sys

peer, port, lport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def err(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def echo(s):
    s.sendall(b"hello")
    got = b""
    while len(got) < 5:
        b = s.recv(5 - len(got))
        if not b:
            break
        got += b
    s.shutdown(socket.SHUT_WR)
    while s.recv(100):
        pass
    return "echo " + got.decode()


def attempt(reuse, dport, do_connect=True):
    s = socket.socket()
    s.settimeout(10)
    if reuse:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    out = []
    try:
        s.bind(("", lport))
        out.append("bind 0")
    except OSError as e:
        out.append("bind " + err(e))
        s.close()
        return " ".join(out)
    if do_connect:
        try:
            s.connect((peer, dport))
            out.append("connect 0")
            out.append(echo(s))
        except OSError as e:
            out.append("connect " + err(e))
    s.close()
    return " ".join(out)


for step in sys.argv[4:]:
    if step == "close":
        print("close:", attempt(True, port), flush=True)
    elif step == "bind":
        print("bind:", attempt(False, port, do_connect=False), flush=True)
    elif step == "bind-reuse":
        print("bind-reuse:", attempt(True, port), flush=True)
    elif step == "other":
        print("other:", attempt(True, port + 1), flush=True)
