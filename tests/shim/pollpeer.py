#!/usr/bin/env python3
"""The kernel side of pollmatrix.py: does to the connection under test what
the matrix asks, over a control connection.

    pollpeer.py ADDR CTL_PORT

Listens on ADDR:CTL_PORT (control) and ADDR:CTL_PORT+1 (data). In its own
network namespace it also makes an nftables table "ushim" dropping input to
port CTL_PORT+3 (a SYN there is never answered) and from the source ports
added by "drop". Control commands, one per line; each is answered by one line,
"ok [RESULT]" or "err MESSAGE":

    accept          accept the next data connection: it becomes the current one
    fin             shutdown(SHUT_WR) the current connection
    rst             SO_LINGER {1, 0} and close(): a RST
    close           read what is pending, then close() (a FIN)
    readeof         read until EOF (5 s at most): "ok eof BYTES"
    send N          send N bytes
    connect PORT    connect to the control connection's peer address at PORT
                    (kept open until "drop-conns")
    drop-conns      close the connections made by "connect"
    drop SPORT      drop every segment from the control peer's source port SPORT

It exits when the control connection ends.
"""
import select
import socket
import struct
import subprocess
import sys
import time


def nft(script):
    subprocess.run(["nft", "-f", "-"], input=script.encode(), check=True, timeout=10)


def main():
    addr, ctl_port = sys.argv[1], int(sys.argv[2])
    data_port, drop_port = ctl_port + 1, ctl_port + 3
    nft("""
table inet ushim {
    set sports { type inet_service; }
    chain input {
        type filter hook input priority 0; policy accept;
        tcp dport %d drop
        tcp sport @sports drop
    }
}
""" % drop_port)

    def listener(port, backlog):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((addr, port))
        ls.listen(backlog)
        ls.settimeout(5)
        return ls

    lctl = listener(ctl_port, 1)
    ldata = listener(data_port, 16)
    lctl.settimeout(30)
    ctl, (client, _) = lctl.accept()
    lctl.close()
    ctl.settimeout(60)
    rf = ctl.makefile("rb")
    cur = None
    conns = []

    while True:
        line = rf.readline()
        if not line:
            break
        words = line.decode().split()
        cmd, args = words[0], words[1:]
        res = ""
        try:
            if cmd == "accept":
                cur, _ = ldata.accept()
                cur.settimeout(5)
            elif cmd == "fin":
                cur.shutdown(socket.SHUT_WR)
            elif cmd == "rst":
                cur.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                cur.close()
                cur = None
            elif cmd == "close":
                try:
                    while select.select([cur], [], [], 0)[0] and cur.recv(65536):
                        pass
                except OSError:
                    pass
                cur.close()
                cur = None
            elif cmd == "readeof":
                n, end = 0, time.monotonic() + 5
                while time.monotonic() < end:
                    b = cur.recv(65536)
                    if not b:
                        break
                    n += len(b)
                else:
                    raise TimeoutError("no EOF within 5 s")
                res = "eof %d" % n
            elif cmd == "send":
                cur.sendall(b"p" * int(args[0]))
            elif cmd == "connect":
                conns.append(socket.create_connection((client, int(args[0])), timeout=5))
            elif cmd == "drop-conns":
                for c in conns:
                    c.close()
                conns = []
            elif cmd == "drop":
                nft("add element inet ushim sports { %d }\n" % int(args[0]))
            else:
                raise ValueError("unknown command " + cmd)
            reply = ("ok " + res).strip()
        except Exception as e:  # reported to the matrix, which fails the check
            reply = "err %s: %r" % (cmd, e)
        print("pollpeer: %s -> %s" % (line.decode().strip(), reply), file=sys.stderr, flush=True)
        ctl.sendall((reply + "\n").encode())


if __name__ == "__main__":
    main()
