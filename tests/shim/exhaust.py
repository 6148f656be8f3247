"""Opens connections until the system refuses one, and says how it refused.

    exhaust.py ADDR PORT [STAT_CMD...]

Opens TCP connections to ADDR:PORT (socket, then a blocking connect) until
one call fails, without raising the fd limit. Prints
    opened K
    error CALL ERRNO_NAME
then closes a few of them and, if STAT_CMD is given, runs it with "-p PID"
appended (ustcp-stat -s: this process's counters), closes the rest, and
opens one more connection (trying for up to 5 s) to show that the
process recovered:
    again ok | again ERRNO_NAME
"""
import errno
import os
import socket
import subprocess
import sys
import time


def main():
    addr, port, stat = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    socks, call, err = [], "", 0
    for _ in range(100000):
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError as e:
            call, err = "socket", e.errno
            break
        try:
            s.connect((addr, port))
        except OSError as e:
            call, err = "connect", e.errno
            s.close()
            break
        socks.append(s)
    print("opened", len(socks))
    print("error", call, errno.errorcode.get(err, str(err)))
    sys.stdout.flush()
    for s in socks[:10]:
        s.close()
    del socks[:10]
    time.sleep(0.2)
    if stat:
        subprocess.run(stat + ["-p", str(os.getpid())], check=False)
        sys.stdout.flush()
    for s in socks:
        s.close()
    socks = []
    # Closed connections finish (TIME-WAIT) before all their resources
    # are back: try for a few seconds.
    result = "?"
    for _ in range(50):
        time.sleep(0.1)
        try:
            socket.create_connection((addr, port), timeout=10).close()
            result = "ok"
            break
        except OSError as e:
            result = errno.errorcode.get(e.errno, str(e.errno))
    print("again", result)


main()
