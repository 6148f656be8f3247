#!/usr/bin/env python3
"""python asyncio on TCP (issue 14, item 12): one event loop (epoll) that
serves echo connections and is a client of another echo server at once.

    asyncio_echo.py LISTEN_PORT SERVE_COUNT PEER_ADDR PEER_PORT CLIENTS

Serves SERVE_COUNT connections on LISTEN_PORT (asyncio.start_server: echo
until EOF), while CLIENTS connections (asyncio.open_connection) each send
200000 random bytes to PEER_ADDR:PEER_PORT, write_eof, and check the echo.
One line per client connection, then "served N" and "all done"; exit status
1 on any mismatch.
"""
import asyncio
import hashlib
import os
import sys

lport, nserve, paddr, pport, nclients = (int(sys.argv[1]), int(sys.argv[2]), sys.argv[3],
                                         int(sys.argv[4]), int(sys.argv[5]))
SIZE = 200000


async def client(i):
    r, w = await asyncio.open_connection(paddr, pport)
    data = os.urandom(SIZE)
    w.write(data)
    await w.drain()
    w.write_eof()
    got = await r.read()  # up to EOF
    w.close()
    await w.wait_closed()
    ok = hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    print("client %d: %s %d" % (i, "ok" if ok else "MISMATCH", len(got)), flush=True)
    return ok


async def main():
    served = 0
    done = asyncio.Event()

    async def serve(r, w):
        nonlocal served
        while True:
            b = await r.read(65536)
            if not b:
                break
            w.write(b)
            await w.drain()
        w.close()
        await w.wait_closed()
        served += 1
        if served == nserve:
            done.set()

    server = await asyncio.start_server(serve, "0.0.0.0", lport)
    print("listening", flush=True)
    results = await asyncio.gather(*(client(i) for i in range(nclients)))
    await asyncio.wait_for(done.wait(), 60)
    server.close()
    await server.wait_closed()
    print("served %d" % served)
    print("all done" if all(results) else "failures")
    return 0 if all(results) else 1


sys.exit(asyncio.run(main()))
