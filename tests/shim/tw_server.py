"""A server that closes first, so that each connection leaves it a TIME-WAIT.

    tw_server.py PORT N DONE OUT REPORT

Listens on 0.0.0.0:PORT and accepts N connections one after the other
(10 s for each at most), sending each one line and closing it at once.
Then it waits (30 s at most) until the file DONE exists (the client has
read every EOF and closed, so every TIME-WAIT has begun), and, still
alive, runs the shell command REPORT and writes to OUT:
    served K
then REPORT's output. A stack that held its TIME-WAITs against its
ceiling on connections stopped accepting once they filled it.
"""
import os
import socket
import subprocess
import sys
import time


def main():
    port, n, done, out, report = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(128)
    ls.settimeout(10)
    served = 0
    try:
        while served < n:
            c, _ = ls.accept()
            c.sendall(b"hello\n")
            c.close()
            served += 1
    except OSError:
        pass
    end = time.monotonic() + 30
    while not os.path.exists(done) and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(0.3)  # the last FIN's ACK
    rep = subprocess.run(["bash", "-c", report], capture_output=True, text=True, timeout=20)
    with open(out, "w") as f:
        f.write(f"served {served}\n{rep.stdout}")


if __name__ == "__main__":
    main()
