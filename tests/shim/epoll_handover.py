"""An epoll set that registered a socket before connect() or bind() to a
loopback address still watches it afterwards.

    epoll_handover.py

Under ustcp a socket that connects to a USTCP_PASSTHROUGH address
(127.0.0.0/8) or binds an address not the stack's becomes a kernel socket
under the same number (the shim's us_to_kernel); on Linux it is the same
file all along, and an epoll set that watched it goes on watching. A
kernel listener on 127.0.0.1 (the kernel's in both modes) takes the
connections. Prints, for each way, whether the set reports the socket
writable once connected and readable once the other side writes; the first
two ways with a set made and filled by direct system calls, which the
library finds only by looking at every open number.
"""
import ctypes
import select
import socket
import struct

libc = ctypes.CDLL(None, use_errno=True)
SYS_EPOLL_CREATE1, SYS_EPOLL_CTL = 291, 233  # x86_64


class RawEpoll:
    """An epoll set made and filled by direct system calls, as a runtime
    that bypasses libc (Go's) makes it: the library never sees it made."""

    def __init__(self):
        self.fd = libc.syscall(SYS_EPOLL_CREATE1, 0)
        assert self.fd >= 0
        self.ep = select.epoll.fromfd(self.fd)  # only for poll() and close()

    def register(self, fd, events):
        ev = ctypes.create_string_buffer(struct.pack("=IQ", events, fd), 12)
        assert libc.syscall(SYS_EPOLL_CTL, self.fd, 1, fd, ev) == 0

    def poll(self, timeout):
        return self.ep.poll(timeout)

    def close(self):
        self.ep.close()


def watched(bind_first, lst, raw=False):
    c = socket.socket()
    ep = RawEpoll() if raw else select.epoll()
    ep.register(c.fileno(), select.EPOLLOUT | select.EPOLLIN)
    if bind_first:
        c.bind(("127.0.0.1", 0))
    c.setblocking(False)
    try:
        c.connect(lst.getsockname())
    except BlockingIOError:
        pass
    out = [ev & select.EPOLLOUT != 0 for fd, ev in ep.poll(2) if fd == c.fileno()] == [True]
    a, _ = lst.accept()
    a.sendall(b"hi")
    got = [ev & select.EPOLLIN != 0 for fd, ev in ep.poll(2) if fd == c.fileno()] == [True]
    a.close()
    c.close()
    ep.close()
    return out, got


def main():
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(4)
    # The sets made by syscall() first: at a number where libc's
    # epoll_create1 made none before (the library notes those numbers).
    for way, bind_first, raw in (("connect, a set made by syscall()", False, True),
                                 ("bind, then connect, a set made by syscall()", True, True),
                                 ("connect to 127.0.0.1", False, False),
                                 ("bind 127.0.0.1, then connect", True, False)):
        out, got = watched(bind_first, lst, raw)
        print("%s: writable %s, readable %s" % (way, out, got))


main()
