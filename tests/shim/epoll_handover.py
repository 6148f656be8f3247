"""An epoll set that registered a socket before connect() or bind() to a
loopback address still watches it afterwards.

    epoll_handover.py

Under ustcp a socket that connects to a USTCP_PASSTHROUGH address
(127.0.0.0/8) or binds an address not the stack's becomes a kernel socket
under the same number (the shim's us_to_kernel); on Linux it is the same
file all along, and an epoll set that watched it goes on watching. A
kernel listener on 127.0.0.1 (the kernel's in both modes) takes the
connections. Prints, for each way, whether the set reports the socket
writable once connected and readable once the other side writes.
"""
import select
import socket


def watched(bind_first, lst):
    c = socket.socket()
    ep = select.epoll()
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
    for way, bind_first in (("connect to 127.0.0.1", False), ("bind 127.0.0.1, then connect", True)):
        out, got = watched(bind_first, lst)
        print("%s: writable %s, readable %s" % (way, out, got))


main()
