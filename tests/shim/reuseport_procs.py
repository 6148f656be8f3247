"""An SO_REUSEPORT group of listeners in independent processes.

    reuseport_procs.py server NAME ADDR PORT DIR   (on the stack's side)
    reuseport_procs.py bind ADDR PORT              (on the stack's side)
    reuseport_procs.py client ADDR PORT DIR        (the peer)

Two servers, started apart (no common parent that opened the socket),
each bind ADDR:PORT with SO_REUSEPORT and listen. A server answers every
connection with its NAME and closes it, except one that asks "hold": that
one it keeps, echoing what comes with its name. Files in DIR steer it:
NAME.ready once it listens; on NAME.unlisten it closes its listener (its
held connection stays) and writes NAME.unlistened; on NAME.exit it exits.

"bind" binds a third socket there without SO_REUSEPORT and prints the
errno's name (Linux: EADDRINUSE) or "ok".

The client, with servers A and B ready, prints what a program could see:
  - 20 connections (new source ports each) are all answered, by both
    servers (Linux spreads a group's connections by the 4-tuple's hash);
  - it holds one connection to A; 10 bare ACKs from source ports nobody
    connected from are each reset once (by one member: the group answers
    for a 4-tuple no member holds);
  - A closes its listener: 20 more are all B's, 10 stray ACKs are each
    reset once again, and A's held connection still echoes (nobody reset
    it);
  - A exits: 10 more are all B's.
"""
import errno
import os
import select
import socket
import sys
import time

import shimlib


def bind_tentative(s, addr, port):
    """bind(), again while the address is tentative: a new IPv6 address
    is until duplicate address detection ends (a second), and bind()
    refuses it until then (EADDRNOTAVAIL), as Linux does."""
    for _ in range(60):
        try:
            s.bind((addr, port))
            return
        except OSError as e:
            if e.errno != errno.EADDRNOTAVAIL:
                raise
            time.sleep(0.05)
    s.bind((addr, port))


def server(name, addr, port, ctl):
    lst = socket.socket(shimlib.family(addr), socket.SOCK_STREAM)
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    bind_tentative(lst, addr, port)
    lst.listen(64)
    open(os.path.join(ctl, name + ".ready"), "w").close()
    held = []
    deadline = time.monotonic() + 50
    while time.monotonic() < deadline:
        if lst and os.path.exists(os.path.join(ctl, name + ".unlisten")):
            lst.close()
            lst = None
            open(os.path.join(ctl, name + ".unlistened"), "w").close()
        if os.path.exists(os.path.join(ctl, name + ".exit")):
            return
        ready, _, _ = select.select(([lst] if lst else []) + held, [], [], 0.05)
        for s in ready:
            if s is lst:
                c, _ = lst.accept()
                c.settimeout(5)
                if c.recv(16) == b"hold\n":
                    c.sendall(name.encode() + b"\n")
                    held.append(c)
                else:
                    c.sendall(name.encode() + b"\n")
                    c.close()
                continue
            data = s.recv(100)
            if not data:
                held.remove(s)
                s.close()
                continue
            s.sendall(name.encode() + b" " + data)


def bind_third(addr, port):
    s = socket.socket(shimlib.family(addr), socket.SOCK_STREAM)
    try:
        bind_tentative(s, addr, port)
        print("ok")
    except OSError as e:
        print(errno.errorcode.get(e.errno, str(e.errno)))
    finally:
        s.close()


def ask(addr, port, what=b"name\n"):
    c = socket.create_connection((addr, port), timeout=10)
    c.sendall(what)
    with c.makefile("rb") as f:
        return c, f.readline().decode().strip()


def names(addr, port, n):
    got = []
    for _ in range(n):
        try:
            c, who = ask(addr, port)
            c.close()
        except OSError as e:
            who = "error " + (os.strerror(e.errno) if e.errno else str(e))
        got.append(who)
    return got


def wait_file(path):
    for _ in range(200):
        if os.path.exists(path):
            return True
        time.sleep(0.05)
    return False


def client(addr, port, ctl):
    got = names(addr, port, 20)
    print("20 connections answered: %s, by both: %s" % (
        all(w in ("A", "B") for w in got), {"A", "B"} <= set(got)))
    print("spread: A %d B %d" % (got.count("A"), got.count("B")), file=sys.stderr)
    held = None
    for _ in range(40):
        c, who = ask(addr, port, b"hold\n")
        if who == "A":
            held = c
            break
        c.close()
    print("a connection held by A: %s" % (held is not None))
    counts = shimlib.stray_ack_rsts(addr, port, 10)
    print("10 stray ACKs, each reset once: %s" % (counts == [1] * 10))
    if counts != [1] * 10:
        print("RSTs per stray ACK:", counts, file=sys.stderr)
    open(os.path.join(ctl, "A.unlisten"), "w").close()
    print("A closed its listener: %s" % wait_file(os.path.join(ctl, "A.unlistened")))
    got = names(addr, port, 20)
    print("then 20 connections, all B's: %s" % (got == ["B"] * 20))
    if got != ["B"] * 20:
        print(got, file=sys.stderr)
    counts = shimlib.stray_ack_rsts(addr, port, 10)
    print("10 stray ACKs, each reset once: %s" % (counts == [1] * 10))
    if counts != [1] * 10:
        print("RSTs per stray ACK:", counts, file=sys.stderr)
    echo = ""
    if held:
        held.sendall(b"ping\n")
        try:
            echo = held.recv(100).decode().strip()
        except OSError as e:
            echo = os.strerror(e.errno)
        held.close()
    print("A's held connection still echoes: %r" % echo)
    open(os.path.join(ctl, "A.exit"), "w").close()
    time.sleep(0.5)
    got = names(addr, port, 10)
    print("A exited, then 10 connections, all B's: %s" % (got == ["B"] * 10))
    if got != ["B"] * 10:
        print(got, file=sys.stderr)
    open(os.path.join(ctl, "B.exit"), "w").close()


def main():
    mode = sys.argv[1]
    if mode == "server":
        server(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    elif mode == "bind":
        bind_third(sys.argv[2], int(sys.argv[3]))
    else:
        client(sys.argv[2], int(sys.argv[3]), sys.argv[4])


main()
