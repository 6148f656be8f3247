"""An epoll set that registered a socket before connect() or bind() to a
loopback address still watches it afterwards.

    epoll_handover.py

Under ustcp a socket that connects to a USTCP_PASSTHROUGH address
(127.0.0.0/8) or binds an address not the stack's becomes a kernel socket
under the same number (the shim's us_to_kernel); on Linux it is the same
file all along, and an epoll set that watched it goes on watching. A
kernel listener on 127.0.0.1 (the kernel's in both modes) takes the
connections. Prints, for each way, whether the set reports the socket
writable once connected and readable once the other side writes. The
sets: made here by libc's epoll_create1 (the library notes those), one
another image made and sent with SCM_RIGHTS, one inherited across exec.
"""
import os
import select
import socket
import sys


def watched(bind_first, lst, ep=None):
    c = socket.socket()
    ep = ep or select.epoll()
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


def say(way, out, got):
    print("%s: writable %s, readable %s" % (way, out, got), flush=True)


def received_epoll():
    """An epoll set another image made (libc's epoll_create1 there, not
    here), received with SCM_RIGHTS."""
    a, b = socket.socketpair()
    b.set_inheritable(True)
    pid = os.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, __file__, "send-epoll", str(b.fileno())])
    b.close()
    _, fds, _, _ = socket.recv_fds(a, 10, 1)
    os.waitpid(pid, 0)
    a.close()
    return select.epoll.fromfd(fds[0])


def main():
    if sys.argv[1:2] == ["send-epoll"]:
        ep = select.epoll()
        socket.send_fds(socket.socket(fileno=int(sys.argv[2])), [b"e"], [ep.fileno()])
        return
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(4)
    if sys.argv[1:2] == ["exec-child"]:
        # The set the image before the exec made.
        say("a set inherited across exec", *watched(False, lst, select.epoll.fromfd(int(sys.argv[2]))))
        return
    # First: at a number where libc's epoll_create1 made no set here.
    say("a set received with SCM_RIGHTS", *watched(False, lst, received_epoll()))
    for way, bind_first in (("connect to 127.0.0.1", False), ("bind 127.0.0.1, then connect", True)):
        say(way, *watched(bind_first, lst))
    # Last: a set for the image exec makes.
    ep = select.epoll()
    os.set_inheritable(ep.fileno(), True)
    os.execv(sys.executable, [sys.executable, __file__, "exec-child", str(ep.fileno())])


main()
