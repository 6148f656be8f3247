#!/usr/bin/env python3
"""TCP_MD5SIG and TCP_MD5SIG_EXT (RFC 2385) as a program sees them, for
061-opts.bats (issue 14): what setsockopt answers, and signed connections
with the kernel's TCP as the peer, which checks every signature.

    md5sig.py matrix OWN_ADDR
        each setsockopt (and getsockopt) on fresh and listening sockets of
        both families, and how many keys one socket takes: "name answer"
        lines
    md5sig.py client ADDR PORT KEY N [RADDR:RPORT]
        connects with KEY for ADDR ("-": no key), sends N random bytes and
        closes its side, reads the echo: "echoed N same" (or the connect's
        error); with RADDR:RPORT, the same socket first connects there,
        where nobody listens ("first connect: ECONNREFUSED")
    md5sig.py server ADDR PORT PEER[/PREFIX][,PEER...] KEY READY [FORKPEER]
        listens at ADDR:PORT with KEY for each PEER (TCP_MD5SIG_EXT with
        a prefix), creates the file READY once listening, echoes one
        connection: "served N"; with FORKPEER, a forked child sets the
        key for that address on the listener it inherited

An ADDR with a colon is IPv6's (and so is every PEER then). Every
connect and accept waits at most 3 seconds (a SYN whose signature
the other side refuses is dropped without an answer: "timeout").
"""
import hashlib
import os
import socket
import struct
import sys

from shimlib import attempt, sockopt_hex

T = socket.IPPROTO_TCP
MD5SIG, MD5SIG_EXT = 14, 32
FLAG_PREFIX, FLAG_IFINDEX = 1, 2


def sockaddr(family, addr):
    """struct sockaddr_storage for addr, as struct tcp_md5sig holds it."""
    if family == socket.AF_INET:
        raw = struct.pack("=H", family) + struct.pack("!H", 0) + socket.inet_aton(addr)
    else:
        raw = struct.pack("=H", family) + struct.pack("!HI", 0, 0) + socket.inet_pton(socket.AF_INET6, addr)
    return raw.ljust(128, b"\0")


def md5sig(family, addr, key, flags=0, prefix=0, ifindex=0, keylen=None):
    """struct tcp_md5sig, 216 bytes."""
    return (sockaddr(family, addr) + struct.pack("=BBHi", flags, prefix, len(key) if keylen is None else keylen,
                                                 ifindex) + key.ljust(80, b"\0")[:80])


def put(s, value, name=MD5SIG):
    v = attempt(lambda: s.setsockopt(T, name, value))
    return "ok" if v is None else str(v)


def matrix(own):
    A4, A6 = socket.AF_INET, socket.AF_INET6
    out = []
    s = socket.socket(A4)
    good = md5sig(A4, "10.9.0.1", b"sekrit")
    out.append("v4 int " + put(s, struct.pack("=i", 1)))
    out.append("v4 short " + put(s, good[:215]))
    out.append("v4 family6 " + put(s, md5sig(A6, "::1", b"sekrit")))
    out.append("v4 keylen81 " + put(s, md5sig(A4, "10.9.0.1", b"k" * 80, keylen=81)))
    out.append("v4 keylen80 " + put(s, md5sig(A4, "10.9.0.1", b"k" * 80)))
    out.append("v4 del " + put(s, md5sig(A4, "10.9.0.1", b"", keylen=0)))
    out.append("v4 del-again " + put(s, md5sig(A4, "10.9.0.1", b"", keylen=0)))
    out.append("v4 set " + put(s, good))
    out.append("v4 replace " + put(s, md5sig(A4, "10.9.0.1", b"other")))
    # Plain TCP_MD5SIG takes no prefix: the whole address is the key's.
    out.append("v4 del-prefix24 " + put(s, md5sig(A4, "10.9.0.1", b"", FLAG_PREFIX, 24, keylen=0)))
    out.append("v4 del-ext32 " + put(s, md5sig(A4, "10.9.0.1", b"", FLAG_PREFIX, 32, keylen=0), MD5SIG_EXT))
    out.append("v4 ext-prefix33 " + put(s, md5sig(A4, "10.9.0.0", b"k", FLAG_PREFIX, 33), MD5SIG_EXT))
    out.append("v4 ext-prefix24 " + put(s, md5sig(A4, "10.9.0.0", b"k", FLAG_PREFIX, 24), MD5SIG_EXT))
    out.append("v4 del-prefix24-plain " + put(s, md5sig(A4, "10.9.0.0", b"", FLAG_PREFIX, 24, keylen=0)))
    out.append("v4 ext-ifindex1 " + put(s, md5sig(A4, "10.9.0.1", b"k", FLAG_IFINDEX, 0, 1), MD5SIG_EXT))
    out.append("v4 ext-ifindex0 " + put(s, md5sig(A4, "10.9.0.1", b"k", FLAG_IFINDEX, 0, 0), MD5SIG_EXT))
    # A key of its own: with the flag, beside the one without.
    out.append("v4 del-noflag " + put(s, md5sig(A4, "10.9.0.1", b"", keylen=0)))
    out.append("v4 del-flag " + put(s, md5sig(A4, "10.9.0.1", b"", FLAG_IFINDEX, keylen=0), MD5SIG_EXT))
    out.append("v4 get " + sockopt_hex(s, T, MD5SIG, 216))
    s.bind((own, 0))
    s.listen(1)
    out.append("v4 listening " + put(s, good))
    s.close()
    s = socket.socket(A6)
    out.append("v6 family4 " + put(s, md5sig(A4, "10.9.0.1", b"k")))
    out.append("v6 mapped " + put(s, md5sig(A6, "::ffff:10.9.0.1", b"k")))
    out.append("v6 mapped-prefix33 " + put(s, md5sig(A6, "::ffff:10.9.0.0", b"k", FLAG_PREFIX, 33), MD5SIG_EXT))
    out.append("v6 mapped-prefix16 " + put(s, md5sig(A6, "::ffff:10.9.0.0", b"k", FLAG_PREFIX, 16), MD5SIG_EXT))
    out.append("v6 prefix129 " + put(s, md5sig(A6, "2001:db8::", b"k", FLAG_PREFIX, 129), MD5SIG_EXT))
    out.append("v6 any " + put(s, md5sig(A6, "::", b"k", FLAG_PREFIX, 0), MD5SIG_EXT))
    out.append("v6 del-any " + put(s, md5sig(A6, "::", b"", FLAG_PREFIX, 0, keylen=0), MD5SIG_EXT))
    out.append("v6 del-any-again " + put(s, md5sig(A6, "::", b"", FLAG_PREFIX, 0, keylen=0), MD5SIG_EXT))
    s.close()
    # How many keys one socket holds (Linux: its option memory,
    # net.core.optmem_max): the first refused, and after it the same.
    s, n = socket.socket(A4), 0
    while n < 2000 and put(s, md5sig(A4, "10.%d.%d.1" % (n // 256, n % 256), b"k")) == "ok":
        n += 1
    out.append("keys %d then %s" % (n, put(s, md5sig(A4, "10.99.0.1", b"k"))))
    s.close()
    print("\n".join(out))


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def echo_client(addr, port, key, n, refused=None):
    s = socket.socket(family(addr))
    if key != "-":
        s.setsockopt(T, MD5SIG, md5sig(family(addr), addr, key.encode()))
    s.settimeout(3)
    if refused:
        # A connect that fails first (to an address without a key, whose
        # RST comes: a signed SYN to a closed port gets none), and the
        # keys stay on the socket.
        raddr, _, rport = refused.rpartition(":")
        s.settimeout(None)  # blocking: the next connect is a new attempt
        print("first connect: " + str(attempt(lambda: s.connect((raddr, int(rport))))))
        s.settimeout(3)
    try:
        s.connect((addr, port))
    except socket.timeout:
        print("timeout")
        return
    except OSError as e:
        print(os.strerror(e.errno))
        return
    s.settimeout(30)
    data = os.urandom(n)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    h, got = hashlib.sha256(), 0
    while True:
        b = s.recv(65536)
        if not b:
            break
        h.update(b)
        got += len(b)
    print("echoed %d %s" % (got, "same" if h.digest() == hashlib.sha256(data).digest() else "different"))


def echo_server(addr, port, peer, key, ready, fork_key=None):
    ls = socket.socket(family(addr))
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    for p in peer.split(","):
        p, _, prefix = p.partition("/")
        ls.setsockopt(T, MD5SIG_EXT, md5sig(family(addr), p, key.encode(), FLAG_PREFIX,
                                            int(prefix or (128 if ":" in p else 32))))
    ls.bind((addr, port))
    ls.listen(4)
    if fork_key:
        # The key comes from a child that inherited the listener.
        pid = os.fork()
        if pid == 0:
            ls.setsockopt(T, MD5SIG_EXT, md5sig(family(addr), fork_key, key.encode(), FLAG_PREFIX,
                                                128 if ":" in fork_key else 32))
            os._exit(0)
        os.waitpid(pid, 0)
    open(ready, "w").close()
    ls.settimeout(20)
    c, _ = ls.accept()
    c.settimeout(30)
    served = 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        c.sendall(b)
        served += len(b)
    c.close()
    print("served %d" % served)


if __name__ == "__main__":
    if sys.argv[1] == "matrix":
        matrix(sys.argv[2])
    elif sys.argv[1] == "client":
        echo_client(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]),
                    sys.argv[6] if len(sys.argv) > 6 else None)
    else:
        echo_server(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6],
                    sys.argv[7] if len(sys.argv) > 7 else None)
