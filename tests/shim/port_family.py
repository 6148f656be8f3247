#!/usr/bin/env python3
"""One port space per family, for 032-shim6.bats: in one process, an
AF_INET listener and an IPV6_V6ONLY AF_INET6 one on PORT, a dual-stack
AF_INET6 socket refused there, and on PORT+1 a dual-stack listener first,
refusing both others. Then it serves one client of each family on PORT,
each on its own family's listener.

    port_family.py PORT

Prints "bind NAME PORT RESULT" for each bind (0 or the errno's name),
"listening", then "FAMILY-listener peer ADDR" for each client (which
listener accepted whom), answering each with one line and closing.
"""
import errno
import select
import socket
import sys


def bind(name, family, v6only, port):
    s = socket.socket(family, socket.SOCK_STREAM)
    if v6only is not None:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
    try:
        s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
        r = "0"
    except OSError as e:
        r = errno.errorcode.get(e.errno, str(e.errno))
        s.close()
        s = None
    print("bind", name, port, r, flush=True)
    return s


def main():
    port = int(sys.argv[1])
    v4 = bind("inet", socket.AF_INET, None, port)
    v6 = bind("inet6-v6only", socket.AF_INET6, 1, port)
    bind("inet6-dual", socket.AF_INET6, 0, port)
    dual = bind("inet6-dual", socket.AF_INET6, 0, port + 1)
    bind("inet", socket.AF_INET, None, port + 1)
    bind("inet6-v6only", socket.AF_INET6, 1, port + 1)
    v4.listen(4)
    v6.listen(4)
    dual.listen(4)
    print("listening", flush=True)
    names = {v4: "inet", v6: "inet6"}
    for _ in range(2):
        r, _, _ = select.select([v4, v6], [], [], 30)
        if not r:
            sys.exit("no client in 30 s")
        c, peer = r[0].accept()
        print(names[r[0]] + "-listener peer", peer[0], flush=True)
        c.sendall(b"served by %s\n" % names[r[0]].encode())
        c.close()


if __name__ == "__main__":
    main()
