#!/usr/bin/env python3
"""Readiness and error matrix of a TCP socket, state by state, as Linux has it
(close conformance reference, C48). Run it on the kernel's TCP or under ustcp;
the results must be the same.

    pollmatrix.py PEER_ADDR CTL_PORT

The kernel side is pollpeer.py, listening on PEER_ADDR:CTL_PORT (control) and
CTL_PORT+1 (data); nothing listens on CTL_PORT+2 (refused); CTL_PORT+3 drops
SYNs (connect never completes). This program's own listener uses CTL_PORT+4.

In every state it checks the revents of poll() (events POLLIN|POLLOUT|
POLLRDHUP), of a new epoll (EPOLLIN|EPOLLOUT|EPOLLRDHUP, level-triggered) and
of an epoll the socket was added to when it was created (so wake-ups must have
happened), then what recv, send and SO_ERROR give. One line per check:
"ok   STATE: WHAT = GOT" or "FAIL STATE: WHAT: expected X, got Y". Exit status
1 if any check failed.
"""
import errno
import select
import signal
import socket
import struct
import sys
import time

IN, OUT, ERR, HUP, RDHUP = (select.POLLIN, select.POLLOUT, select.POLLERR,
                            select.POLLHUP, select.POLLRDHUP)
EVENTS = IN | OUT | RDHUP
NAMES = [(IN, "IN"), (select.POLLPRI, "PRI"), (OUT, "OUT"), (ERR, "ERR"),
         (HUP, "HUP"), (select.POLLNVAL, "NVAL"), (RDHUP, "RDHUP")]
assert (select.EPOLLIN, select.EPOLLOUT, select.EPOLLERR, select.EPOLLHUP,
        select.EPOLLRDHUP) == (IN, OUT, ERR, HUP, RDHUP)

failures = 0

# Where ustcp knowingly differs from Linux (README.md, "Conformance"): under
# the library (USTCP_MODE=ustcp), these checks report the difference as
# "diff", not as a failure. Each entry is (state, what).
POLLS = ("poll", "epoll (new)", "epoll (added at socket())")
DEPARTURES = {
    # The pair's stack end is closed when TCP lets go: IN|RDHUP besides
    # Linux's OUT|ERR|HUP (its tcp_disconnect clears the shutdown bits).
    ("shutdown in SYN-SENT", what) for what in POLLS
}
UNDER_USTCP = __import__("os").environ.get("USTCP_MODE") == "ustcp"


def names(mask):
    if not mask:
        return "0"
    out = [n for b, n in NAMES if mask & b]
    rest = mask & ~sum(b for b, _ in NAMES)
    if rest:
        out.append(hex(rest))
    return "|".join(out)


def check(state, what, got, want):
    global failures
    if got == want:
        print("ok   %s: %s = %s" % (state, what, got), flush=True)
    elif UNDER_USTCP and (state, what) in DEPARTURES:
        print("diff %s: %s: Linux %s, ustcp %s (documented)" % (state, what, want, got), flush=True)
    else:
        failures += 1
        print("FAIL %s: %s: expected %s, got %s" % (state, what, want, got), flush=True)


def errname(e):
    return errno.errorcode.get(e, str(e)) if e else "0"


def poll_mask(s):
    p = select.poll()
    p.register(s, EVENTS)
    r = p.poll(0)
    return r[0][1] if r else 0


def epoll_mask(ep):
    r = ep.poll(0)
    return r[0][1] if r else 0


def new_epoll(s):
    ep = select.epoll()
    ep.register(s, EVENTS)
    return ep


class Sock:
    """A TCP socket and the epoll it was added to at creation."""

    def __init__(self, s=None):
        self.s = s or socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ep = new_epoll(self.s)

    def close(self):
        self.ep.close()
        self.s.close()


def expect_ready(state, k, want, wait=5.0):
    """Wait (bounded) until poll() gives WANT, then check poll, a new epoll and
    the old one. WANT = 0 (not ready at all) is checked after 0.3 s."""
    if want == 0:
        time.sleep(0.3)
    else:
        end = time.monotonic() + wait
        while poll_mask(k.s) != want and time.monotonic() < end:
            time.sleep(0.01)
        time.sleep(0.05)  # anything that comes late shows now
    check(state, "poll", names(poll_mask(k.s)), names(want))
    ep = new_epoll(k.s)
    check(state, "epoll (new)", names(epoll_mask(ep)), names(want))
    ep.close()
    check(state, "epoll (added at socket())", names(epoll_mask(k.ep)), names(want))


def recv(k):
    try:
        b = k.s.recv(4096, socket.MSG_DONTWAIT)
        return "data %d" % len(b) if b else "0 (EOF)"
    except OSError as e:
        return errname(e.errno)


def send(k, n=1):
    try:
        k.s.send(b"m" * n, socket.MSG_NOSIGNAL | socket.MSG_DONTWAIT)
        return "ok"
    except OSError as e:
        return errname(e.errno)


def so_error(k):
    return errname(k.s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))


class Peer:
    def __init__(self, addr, port):
        self.addr, self.port = addr, port
        self.ctl = socket.create_connection((addr, port), timeout=10)
        self.rf = self.ctl.makefile("rb")

    def __call__(self, state, cmd, want=None):
        self.ctl.sendall((cmd + "\n").encode())
        reply = self.rf.readline().decode().strip()
        if not reply.startswith("ok") or (want is not None and reply != want):
            check(state, "peer: " + cmd, reply, want or "ok")
        return reply

    def connect(self, state):
        """A connection to the peer's data port, accepted there."""
        k = Sock()
        k.s.connect((self.addr, self.port + 1))  # blocking
        self("%s" % state, "accept")
        return k


def unconnected(st, k):
    """A socket in CLOSE without an error: OUT|HUP, ENOTCONN, EPIPE."""
    expect_ready(st, k, OUT | HUP)
    check(st, "recv", recv(k), "ENOTCONN")
    check(st, "send", send(k), "EPIPE")
    check(st, "SO_ERROR", so_error(k), "0")


def reset_read_first(st, k):
    """After a reset: recv reports it once, then the end of file; SO_ERROR
    has nothing left; send fails with EPIPE."""
    check(st, "recv", recv(k), "ECONNRESET")
    check(st, "recv again", recv(k), "0 (EOF)")
    check(st, "SO_ERROR", so_error(k), "0")
    check(st, "send", send(k), "EPIPE")


def established_idle(peer):
    st = "ESTABLISHED, idle"
    k = peer.connect(st)
    expect_ready(st, k, OUT)
    check(st, "recv", recv(k), "EAGAIN")
    check(st, "SO_ERROR", so_error(k), "0")
    check(st, "send", send(k), "ok")
    k.close()
    peer(st, "close")


def peer_fin(peer):
    st = "peer's FIN (CLOSE-WAIT)"
    k = peer.connect(st)
    peer(st, "fin")
    expect_ready(st, k, IN | OUT | RDHUP)
    check(st, "recv", recv(k), "0 (EOF)")
    check(st, "recv again", recv(k), "0 (EOF)")
    check(st, "SO_ERROR", so_error(k), "0")
    check(st, "send", send(k), "ok")
    k.close()
    peer(st, "close")


def own_shut_wr(peer):
    st = "own SHUT_WR (FIN-WAIT-2)"
    k = peer.connect(st)
    k.s.shutdown(socket.SHUT_WR)
    peer(st, "readeof", "ok eof 0")  # our FIN arrived
    expect_ready(st, k, OUT)
    check(st, "send", send(k), "EPIPE")
    check(st, "SO_ERROR", so_error(k), "0")
    check(st, "recv", recv(k), "EAGAIN")
    st = "own SHUT_WR + peer's FIN (TIME-WAIT)"
    peer(st, "fin")
    expect_ready(st, k, IN | OUT | HUP | RDHUP)
    check(st, "recv", recv(k), "0 (EOF)")
    check(st, "send", send(k), "EPIPE")
    check(st, "SO_ERROR", so_error(k), "0")
    k.close()
    peer(st, "close")


def own_shut_rd(peer):
    st = "own SHUT_RD"
    k = peer.connect(st)
    k.s.shutdown(socket.SHUT_RD)
    expect_ready(st, k, IN | OUT | RDHUP)
    check(st, "recv", recv(k), "0 (EOF)")
    check(st, "send", send(k), "ok")
    check(st, "SO_ERROR", so_error(k), "0")
    st = "own SHUT_RD, then 5 bytes from the peer"
    peer(st, "send 5")
    time.sleep(0.2)
    expect_ready(st, k, IN | OUT | RDHUP)
    check(st, "recv", recv(k), "data 5")
    k.close()
    peer(st, "close")


def rst_recv_first(peer):
    st = "RST in ESTABLISHED"
    k = peer.connect(st)
    peer(st, "rst")
    expect_ready(st, k, IN | OUT | ERR | HUP | RDHUP)
    check(st, "recv", recv(k), "ECONNRESET")
    check(st, "recv again", recv(k), "0 (EOF)")
    st = "RST in ESTABLISHED, error read"
    expect_ready(st, k, IN | OUT | HUP | RDHUP)
    check(st, "SO_ERROR", so_error(k), "0")
    check(st, "send", send(k), "EPIPE")
    k.close()


def rst_so_error_first(peer):
    st = "RST in ESTABLISHED (SO_ERROR first)"
    k = peer.connect(st)
    peer(st, "rst")
    expect_ready(st, k, IN | OUT | ERR | HUP | RDHUP)
    check(st, "SO_ERROR", so_error(k), "ECONNRESET")
    check(st, "SO_ERROR again", so_error(k), "0")
    check(st, "recv", recv(k), "0 (EOF)")
    k.close()


def rst_send_first(peer):
    st = "RST in ESTABLISHED (send first)"
    k = peer.connect(st)
    peer(st, "rst")
    expect_ready(st, k, IN | OUT | ERR | HUP | RDHUP)
    check(st, "send", send(k), "ECONNRESET")
    check(st, "send again", send(k), "EPIPE")
    check(st, "recv", recv(k), "0 (EOF)")
    check(st, "SO_ERROR", so_error(k), "0")
    k.close()


def rst_close_wait(peer):
    st = "RST in CLOSE-WAIT"
    k = peer.connect(st)
    peer(st, "fin")
    expect_ready("peer's FIN, before its RST", k, IN | OUT | RDHUP)
    peer(st, "rst")
    expect_ready(st, k, IN | OUT | ERR | HUP | RDHUP)
    check(st, "recv", recv(k), "0 (EOF)")
    check(st, "SO_ERROR", so_error(k), "EPIPE")
    check(st, "SO_ERROR again", so_error(k), "0")
    check(st, "send", send(k), "EPIPE")
    k.close()


def refused_nonblocking(peer, first):
    st = "RST to SYN, non-blocking connect (%s first)" % first
    k = Sock()
    k.s.setblocking(False)
    check(st, "connect", errname(k.s.connect_ex((peer.addr, peer.port + 2))), "EINPROGRESS")
    expect_ready(st, k, IN | OUT | ERR | HUP | RDHUP)
    if first == "SO_ERROR":
        check(st, "SO_ERROR", so_error(k), "ECONNREFUSED")
        check(st, "SO_ERROR again", so_error(k), "0")
        check(st, "recv", recv(k), "0 (EOF)")
    else:
        check(st, "recv", recv(k), "ECONNREFUSED")
        check(st, "recv again", recv(k), "0 (EOF)")
        check(st, "SO_ERROR", so_error(k), "0")
    check(st, "send", send(k), "EPIPE")
    k.close()


def refused_so_error_first(peer):
    refused_nonblocking(peer, "SO_ERROR")


def refused_recv_first(peer):
    refused_nonblocking(peer, "recv")


def refused_blocking(peer):
    st = "blocking connect refused"
    k = Sock()
    check(st, "connect", errname(k.s.connect_ex((peer.addr, peer.port + 2))), "ECONNREFUSED")
    unconnected(st, k)
    k.close()


def user_timeout(peer):
    st = "TCP_USER_TIMEOUT 1 s, the peer silent"
    k = peer.connect(st)
    k.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 1000)
    peer(st, "drop %d" % k.s.getsockname()[1])
    check(st, "send", send(k, 1000), "ok")
    expect_ready(st, k, IN | OUT | ERR | HUP | RDHUP, wait=15)
    check(st, "recv", recv(k), "ETIMEDOUT")
    check(st, "recv again", recv(k), "0 (EOF)")
    check(st, "SO_ERROR", so_error(k), "0")
    check(st, "send", send(k), "EPIPE")
    k.close()
    peer(st, "close")


def listener(peer):
    st = "listening, nothing queued"
    port = peer.port + 4
    k = Sock()
    ls = k.s
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(8)
    expect_ready(st, k, 0)
    check(st, "SO_ERROR", so_error(k), "0")
    st = "listening, one connection queued"
    peer(st, "connect %d" % port)
    expect_ready(st, k, IN)
    st = "listening, two queued, one accepted"
    peer(st, "connect %d" % port)
    a1 = Sock(ls.accept()[0])
    expect_ready(st, k, IN)
    expect_ready("accepted connection, idle", a1, OUT)
    st = "listening, both accepted"
    a2 = Sock(ls.accept()[0])
    expect_ready(st, k, 0)
    a1.close()
    a2.close()
    k.close()
    peer(st, "drop-conns")


def syn_sent(peer, st):
    """A non-blocking connect to the port whose SYNs the peer drops."""
    k = Sock()
    k.s.setblocking(False)
    check(st, "connect", errname(k.s.connect_ex((peer.addr, peer.port + 3))), "EINPROGRESS")
    return k


def connecting(peer):
    st = "SYN-SENT (SYN dropped)"
    k = syn_sent(peer, st)
    expect_ready(st, k, 0)
    check(st, "SO_ERROR", so_error(k), "0")
    check(st, "recv", recv(k), "EAGAIN")
    k.close()


def fresh_socket(peer):
    st = "fresh socket, never connected"
    k = Sock()
    unconnected(st, k)
    k.close()


def bound_port_zero(peer):
    st = "bind to port 0"
    k = Sock()
    k.s.bind(("0.0.0.0", 0))
    port = k.s.getsockname()[1]
    check(st, "getsockname port assigned", port != 0, True)
    expect_ready(st, k, OUT | HUP)
    k.s.listen(1)
    check(st, "getsockname after listen", k.s.getsockname()[1], port)
    k.close()


def shut_wr_with_queue(peer):
    """Readiness after SHUT_WR must not depend on what is still queued."""
    st = "own SHUT_WR with data queued"
    k = peer.connect(st)
    k.s.setblocking(False)
    sent = 0
    while sent < 300000:
        try:
            sent += k.s.send(b"q" * min(65536, 300000 - sent), socket.MSG_NOSIGNAL)
        except BlockingIOError:
            break
    k.s.shutdown(socket.SHUT_WR)
    check(st, "poll at once has OUT", names(poll_mask(k.s) & OUT), "OUT")
    check(st, "send", send(k), "EPIPE")
    peer(st, "readeof", "ok eof %d" % sent)
    expect_ready(st + ", all read", k, OUT)
    k.close()
    peer(st, "close")


def shut_wr_then_rst(peer):
    st = "own SHUT_WR, then the peer's RST"
    k = peer.connect(st)
    k.s.shutdown(socket.SHUT_WR)
    peer(st, "readeof", "ok eof 0")
    peer(st, "rst")
    expect_ready(st, k, IN | OUT | ERR | HUP | RDHUP)
    reset_read_first(st, k)
    k.close()


def shut_rdwr_then_data(peer):
    st = "own SHUT_RDWR (FIN-WAIT-2)"
    k = peer.connect(st)
    k.s.shutdown(socket.SHUT_RDWR)
    peer(st, "readeof", "ok eof 0")
    expect_ready(st, k, IN | OUT | HUP | RDHUP)
    check(st, "recv", recv(k), "0 (EOF)")
    st = "own SHUT_RDWR, then 5 bytes from the peer (RST)"
    peer(st, "send 5")
    expect_ready(st, k, IN | OUT | ERR | HUP | RDHUP)
    reset_read_first(st, k)
    k.close()
    peer(st, "close")


def shutdown_connecting(peer):
    st = "shutdown in SYN-SENT"
    k = syn_sent(peer, st)
    try:
        k.s.shutdown(socket.SHUT_RDWR)
        r = "0"
    except OSError as e:
        r = errname(e.errno)
    check(st, "shutdown", r, "0")
    expect_ready(st, k, OUT | ERR | HUP)
    check(st, "recv", recv(k), "ECONNRESET")
    check(st, "SO_ERROR", so_error(k), "0")
    check(st, "send", send(k), "EPIPE")
    k.close()


CASES = [
    established_idle, peer_fin, own_shut_wr, own_shut_rd,
    rst_recv_first, rst_so_error_first, rst_send_first, rst_close_wait,
    refused_so_error_first, refused_recv_first,
    refused_blocking, user_timeout, listener, connecting,
    fresh_socket, bound_port_zero, shut_wr_with_queue, shut_wr_then_rst,
    shut_rdwr_then_data, shutdown_connecting,
]


class Watchdog(Exception):
    pass


def alarm(signum, frame):
    raise Watchdog("no progress for 20 s")


def main():
    global failures
    addr, port = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGALRM, alarm)
    peer = Peer(addr, port)
    for case in CASES:
        signal.alarm(20)
        try:
            case(peer)
        except Exception as e:  # one broken case must not hide the others
            failures += 1
            print("FAIL case %s: %r" % (getattr(case, "__name__", case), e), flush=True)
        signal.alarm(0)
    print("%d check(s) failed" % failures if failures else "all checks passed", flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
