#!/usr/bin/env python3
"""Half-close partner: read everything until EOF, then answer with the SHA-256
of what arrived and a reply file, then close.

    sinkreply.py listen ADDR PORT REPLY [SAVE]   accept one TCP connection
    sinkreply.py stdio REPLY [SAVE]               stdin/stdout (socat EXEC:)

The answer is the hex digest, a newline, then the bytes of REPLY. What arrived
is written to SAVE if given. In listen mode a line "got BYTES SHA256" goes to
stdout at the end.
"""
import hashlib
import socket
import sys


def sink(read):
    h, n, chunks = hashlib.sha256(), 0, []
    while True:
        b = read(65536)
        if not b:
            return h.hexdigest(), n, b"".join(chunks)
        h.update(b)
        n += len(b)
        chunks.append(b)


def answer(digest, reply_path):
    with open(reply_path, "rb") as f:
        return digest.encode() + b"\n" + f.read()


def save(path, data):
    if path:
        with open(path, "wb") as f:
            f.write(data)


def main():
    mode = sys.argv[1]
    if mode == "listen":
        addr, port, reply = sys.argv[2], int(sys.argv[3]), sys.argv[4]
        saveto = sys.argv[5] if len(sys.argv) > 5 else None
        ls = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((addr, port))
        ls.listen(1)
        ls.settimeout(30)
        s, _ = ls.accept()
        ls.close()
        s.settimeout(30)
        digest, n, data = sink(s.recv)
        save(saveto, data)
        s.sendall(answer(digest, reply))
        s.close()
        print("got", n, digest, flush=True)
    elif mode == "stdio":
        reply = sys.argv[2]
        saveto = sys.argv[3] if len(sys.argv) > 3 else None
        digest, n, data = sink(sys.stdin.buffer.raw.read)
        save(saveto, data)
        out = sys.stdout.buffer
        out.write(answer(digest, reply))
        out.flush()
        print("sinkreply: got", n, digest, file=sys.stderr, flush=True)
    else:
        sys.exit("usage: sinkreply.py listen ADDR PORT REPLY [SAVE] | stdio REPLY [SAVE]")


if __name__ == "__main__":
    main()
