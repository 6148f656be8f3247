"""A connection's local port against another process's bind().

    port_share.py ADDR PORT

Opens a connection to ADDR:PORT, once without and once with SO_REUSEADDR,
and for each asks a child process (the same program, "bind" mode, so under
the same LD_PRELOAD) to bind a socket to the connection's local port,
without and with SO_REUSEADDR. Linux refuses the bind (EADDRINUSE) unless
both sockets have SO_REUSEADDR and neither listens. Prints one line each:
    conn=plain|reuse bind=plain|reuse ok|ERRNO_NAME
"""
import errno
import socket
import subprocess
import sys


def bind_child(addr, port, reuse):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if reuse:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((addr, port))
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    finally:
        s.close()
    return "ok"


def main():
    if sys.argv[1] == "bind":
        print(bind_child(sys.argv[2], int(sys.argv[3]), sys.argv[4] == "reuse"))
        return
    addr, port = sys.argv[1], int(sys.argv[2])
    for conn_reuse in (False, True):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if conn_reuse:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        c.connect((addr, port))
        laddr, lport = c.getsockname()
        for bind_reuse in (False, True):
            out = subprocess.run([sys.executable, sys.argv[0], "bind", laddr, str(lport),
                                  "reuse" if bind_reuse else "plain"],
                                 capture_output=True, text=True, timeout=20)
            print("conn=%s bind=%s %s" % ("reuse" if conn_reuse else "plain",
                                          "reuse" if bind_reuse else "plain",
                                          out.stdout.strip() or out.stderr.strip()))
        sys.stdout.flush()
        c.close()


if __name__ == "__main__":
    main()
