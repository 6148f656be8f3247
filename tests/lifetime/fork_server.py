#!/usr/bin/env python3
"""A forking server (socketserver.ForkingTCPServer) for 090-lifetime.bats.

    fork_server.py PORT

Each connection is served by a child process: it reads to the client's EOF,
answers "SHA256 BYTES PID\n" and closes (socketserver shuts the sending side
down and closes). Runs until killed.
"""
import hashlib
import os
import socketserver
import sys


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        h, n = hashlib.sha256(), 0
        while True:
            b = self.request.recv(65536)
            if not b:
                break
            h.update(b)
            n += len(b)
        self.request.sendall(("%s %d %d\n" % (h.hexdigest(), n, os.getpid())).encode())


def main():
    socketserver.ForkingTCPServer.allow_reuse_address = True
    with socketserver.ForkingTCPServer(("0.0.0.0", int(sys.argv[1])), Handler) as srv:
        srv.serve_forever()


if __name__ == "__main__":
    main()
