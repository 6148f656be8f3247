#!/usr/bin/env python3
"""HTTP/1.1 file server for the shim tests (keep-alive: python3 -m http.server
speaks HTTP/1.0 and closes after every response).

    httpd.py ADDR PORT DIR

Serves the files of DIR on ADDR:PORT, one thread per connection, until killed.
"""
import functools
import http.server
import socket
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        # The client's port too: requests on one connection share it.
        sys.stderr.write("httpd: %s:%d %s\n" % (self.client_address[0], self.client_address[1],
                                                fmt % args))
        sys.stderr.flush()


def main():
    addr, port, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    if ":" in addr:
        http.server.ThreadingHTTPServer.address_family = socket.AF_INET6
    http.server.ThreadingHTTPServer.daemon_threads = True
    srv = http.server.ThreadingHTTPServer(
        (addr, port), functools.partial(Handler, directory=root))
    srv.serve_forever()


if __name__ == "__main__":
    main()
