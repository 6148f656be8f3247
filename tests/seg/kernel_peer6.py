#!/usr/bin/python3
"""Measure what Linux's TCP does over IPv6 for the v6-*.seg scripts: a
kernel socket in one network namespace (2001:db8::2, as the scripts'
stack), a raw scapy peer in another (2001:db8::1, no address of its own, so
its kernel never answers), joined by a veth pair with no route out.

    /usr/bin/python3 tests/seg/kernel_peer6.py SCENARIO

(it takes enter_netns and sh from kernel_peer.py, beside it)

needs root, iproute2 and scapy (the system python3 has it). The namespaces
(ksp6-k, ksp6-p) are removed afterwards, also on failure; every wait is
bounded. Not part of make check: the scripts quote what it printed.

Scenarios are the functions named scenario_* below."""
import json
import os
import select
import signal
import subprocess
import sys
import time

from scapy.all import ICMPv6DestUnreach, ICMPv6PacketTooBig, IPv6, TCP, Ether, conf

from kernel_peer import enter_netns, sh

NS_K, NS_P = "ksp6-k", "ksp6-p"
IF_K, IF_P = "ksp6k0", "ksp6p0"
ADDR_K, ADDR_P = "2001:db8::2", "2001:db8::1"
PORT_K, PORT_P = 8080, 40000
PEER_ISN = 1000000
OPTS = [("MSS", 1440), ("SAckOK", b""), ("NOP", None), ("NOP", None), ("NOP", None), ("WScale", 7)]
OPTS_TS = [("MSS", 1440), ("SAckOK", b""), ("Timestamp", (700, 0)), ("NOP", None), ("WScale", 7)]

# The kernel's side: commands on stdin, one answer line each.
APP = r"""
import socket, sys
l = s = None
for line in sys.stdin:
    c = line.split()
    try:
        if c[0] == "listen":
            l = socket.socket(socket.AF_INET6); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            l.bind(("::", 8080)); l.listen(4); print("ok", flush=True)
        elif c[0] == "accept":
            s, a = l.accept(); print("accepted", a[0], a[1], flush=True)
        elif c[0] == "connect":
            s = socket.socket(socket.AF_INET6); s.bind(("::", 8080)); s.settimeout(float(c[2]))
            try:
                s.connect((c[1], 40000)); print("connected", flush=True)
            except OSError as e:
                print("error", e.errno, flush=True)
        elif c[0] == "write":
            s.sendall(bytes((i * 11 + 5) & 0xff for i in range(int(c[1])))); print("ok", flush=True)
        elif c[0] == "close":
            s.close(); print("ok", flush=True)
        elif c[0] == "txrehash":  # SO_TXREHASH on the connection, else the listener
            (s or l).setsockopt(socket.SOL_SOCKET, 74, int(c[1])); print("ok", flush=True)
        elif c[0] == "name":
            print("name", s.getsockname()[0], s.getpeername()[0], flush=True)
        elif c[0] == "q":
            break
    except OSError as e:
        print("error", e.errno, flush=True)
"""


class Lab:
    def __enter__(self):
        self.cleanup()
        sh("ip", "netns", "add", NS_K)
        sh("ip", "netns", "add", NS_P)
        sh("ip", "-n", NS_K, "link", "add", IF_K, "type", "veth", "peer", "name", IF_P, "netns", NS_P)
        for ns, i in ((NS_K, IF_K), (NS_P, IF_P)):
            # No router solicitations, no DAD, no link-local traffic to
            # speak of: only what the scenario sends.
            sh("ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"net.ipv6.conf.{i}.accept_dad=0")
            sh("ip", "-n", ns, "link", "set", i, "up")
            sh("ip", "netns", "exec", ns, "ethtool", "-K", i, "tso", "off", "gso", "off", "gro", "off",
               check=False)
        sh("ip", "-n", NS_K, "addr", "add", ADDR_K + "/64", "dev", IF_K, "nodad")
        self.mac_k = json.loads(sh("ip", "-j", "-n", NS_K, "link", "show", IF_K).stdout)[0]["address"]
        self.mac_p = json.loads(sh("ip", "-j", "-n", NS_P, "link", "show", IF_P).stdout)[0]["address"]
        sh("ip", "-n", NS_K, "neigh", "add", ADDR_P, "lladdr", self.mac_p, "dev", IF_K, "nud", "permanent")
        self.app = subprocess.Popen(["ip", "netns", "exec", NS_K, "/usr/bin/python3", "-c", APP],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        enter_netns(NS_P)
        self.sock = conf.L2socket(iface=IF_P)
        self.t0 = time.monotonic()
        self.iss = 0
        return self

    def __exit__(self, *exc):
        if getattr(self, "app", None):
            try:
                self.app.stdin.write("q\n")
                self.app.stdin.flush()
                self.app.wait(timeout=3)
            except (OSError, subprocess.TimeoutExpired):
                self.app.kill()
        self.cleanup()

    @staticmethod
    def cleanup():
        for ns in (NS_K, NS_P):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)

    def cmd(self, c, timeout=5.0):
        self.app.stdin.write(c + "\n")
        self.app.stdin.flush()
        r, _, _ = select.select([self.app.stdout], [], [], timeout)
        assert r, "the kernel application did not answer " + c
        out = self.app.stdout.readline().strip()
        print(f"{self.now():8.3f}  {c} -> {out}")
        return out

    def cmd_async(self, c):
        self.app.stdin.write(c + "\n")
        self.app.stdin.flush()

    def now(self):
        return time.monotonic() - self.t0

    def send(self, flags, seq, ack, opts=(), payload=b"", sport=PORT_P, dport=PORT_K, tc=0, fl=0):
        rel = (seq - PEER_ISN) & 0xffffffff
        print(f"{self.now():8.3f}  < {flags.replace('A', '.')} {rel}:{rel + len(payload)}({len(payload)})"
              f" ack {(ack - self.iss) & 0xffffffff} {list(opts) if opts else ''}")
        self.sock.send(Ether(src=self.mac_p, dst=self.mac_k) / IPv6(src=ADDR_P, dst=ADDR_K, tc=tc, fl=fl) /
                       TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, window=65535,
                           options=list(opts)) / payload)

    def icmp6(self, layer, quoted):
        print(f"{self.now():8.3f}  < icmp6 {layer.summary()}")
        self.sock.send(Ether(src=self.mac_p, dst=self.mac_k) / IPv6(src=ADDR_P, dst=ADDR_K) / layer /
                       bytes(quoted)[:1232])

    def recv(self, timeout):
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                continue
            p = self.sock.recv()
            if p is None or not p.haslayer(IPv6) or p[IPv6].src != ADDR_K or not p.haslayer(TCP):
                continue
            self.last = p[IPv6]
            return p

    def show(self, p):
        t, ip = p[TCP], p[IPv6]
        rel = (t.seq - self.iss) & 0xffffffff
        n = len(t.payload)
        print(f"{self.now():8.3f}  > {str(t.flags).replace('A', '.')} {rel}:{rel + n}({n}) "
              f"ack {(t.ack - PEER_ISN) & 0xffffffff} win {t.window} {t.options} "
              f"[hlim {ip.hlim} tc {ip.tc} fl {ip.fl:#x} sport {t.sport} dport {t.dport}]")

    def expect(self, secs=1.0):
        """Everything the kernel sends for secs."""
        got = []
        end = time.monotonic() + secs
        while True:
            p = self.recv(end - time.monotonic())
            if p is None:
                return got
            if p[TCP].flags.S:
                self.iss = p[TCP].seq
            self.show(p)
            got.append(p)


def passive_open(lab):
    """The kernel listens on [::]:8080; the peer's SYN, the kernel's
    SYN-ACK, the peer's ACK; the kernel accepts."""
    lab.cmd("listen")
    lab.send("S", PEER_ISN, 0, OPTS)
    lab.expect(0.3)
    lab.send("A", PEER_ISN + 1, lab.iss + 1)
    lab.cmd("accept")


def scenario_passive(lab):
    """v6-passive-open-active-close.seg: the SYN-ACK, then the kernel
    closes first (FIN-WAIT-1 .. TIME-WAIT)."""
    passive_open(lab)
    lab.cmd("name")
    lab.cmd("close")
    lab.expect(0.3)
    lab.send("A", PEER_ISN + 1, lab.iss + 2)
    lab.send("FA", PEER_ISN + 1, lab.iss + 2)
    lab.expect(0.3)


def scenario_passive_ts(lab):
    """The SYN-ACK to a SYN with timestamps."""
    lab.cmd("listen")
    lab.send("S", PEER_ISN, 0, OPTS_TS)
    lab.expect(0.3)


def scenario_active(lab):
    """v6-active-open-passive-close.seg: the SYN, then the peer closes
    first (CLOSE-WAIT, LAST-ACK)."""
    lab.cmd_async("connect " + ADDR_P + " 3")
    lab.expect(0.3)
    lab.send("SA", PEER_ISN, lab.iss + 1, OPTS)
    lab.expect(0.3)
    print(lab.app.stdout.readline().strip())
    lab.send("FA", PEER_ISN + 1, lab.iss + 1)
    lab.expect(0.3)
    lab.cmd("close")
    lab.expect(0.3)
    lab.send("A", PEER_ISN + 2, lab.iss + 2)
    lab.expect(0.3)


def scenario_rst(lab):
    """v6-rst-no-socket.seg: a SYN and an ACK to a port nobody has."""
    lab.send("S", PEER_ISN, 0, OPTS, dport=9)
    lab.expect(0.3)
    lab.send("A", PEER_ISN + 1, 5000, dport=9)
    lab.expect(0.3)


def unreach(lab, code):
    """Destination unreachable (code) for the SYN; connect's result."""
    lab.cmd_async("connect " + ADDR_P + " 3")
    syn = lab.expect(0.3)[0]
    lab.icmp6(ICMPv6DestUnreach(code=code), syn[IPv6])
    print(f"{lab.now():8.3f}  connect -> {lab.app.stdout.readline().strip()}")


def scenario_unreach(lab):
    """v6-icmp6-errors.seg: port unreachable (code 4) for the SYN."""
    unreach(lab, 4)


def scenario_unreach_addr(lab):
    """v6-icmp6-errors.seg: address unreachable (code 3) for the SYN."""
    unreach(lab, 3)


def scenario_ptb(lab):
    """v6-packet-too-big.seg: 2000 bytes at MSS 1440, a packet too big
    (MTU 1280) for the first segment."""
    passive_open(lab)
    lab.cmd("write 2000")
    first = lab.expect(0.1)[0]
    lab.icmp6(ICMPv6PacketTooBig(mtu=1280), first[IPv6])
    lab.expect(0.5)


def scenario_rto(lab):
    """v6-flowlabel-rto.seg: 1000 bytes never acknowledged: the original
    and its retransmissions on timeout, each with its flow label; then the
    ACK, and 1000 bytes more."""
    passive_open(lab)
    lab.cmd("write 1000")
    lab.expect(1.8)
    lab.send("A", PEER_ISN + 1, lab.iss + 1001)
    lab.cmd("write 1000")
    lab.expect(0.1)
    lab.send("A", PEER_ISN + 1, lab.iss + 2001)
    lab.expect(0.1)


def scenario_rto_norehash(lab):
    """v6-txrehash.seg: as rto, with SO_TXREHASH 0 on the accepted
    socket."""
    passive_open(lab)
    lab.cmd("txrehash 0")
    lab.cmd("write 1000")
    lab.expect(1.8)
    lab.send("A", PEER_ISN + 1, lab.iss + 1001)
    lab.expect(0.1)


def scenario_synack_norehash(lab):
    """v6-txrehash.seg: as synack-rto, with SO_TXREHASH 0 on the
    listener."""
    lab.cmd("listen")
    lab.cmd("txrehash 0")
    lab.send("S", PEER_ISN, 0, OPTS)
    lab.expect(3.5)


def scenario_fast_rtx(lab):
    """v6-flowlabel-rto.seg: three duplicate ACKs make a fast
    retransmission, not a timeout: its flow label."""
    passive_open(lab)
    lab.cmd("write 5000")
    lab.expect(0.1)
    for sack in (2440, 3880, 5000):
        lab.send("A", PEER_ISN + 1, lab.iss + 1, [("SAck", (lab.iss + 1441, lab.iss + 1 + sack))])
    lab.expect(0.1)
    lab.send("A", PEER_ISN + 1, lab.iss + 5001)
    lab.expect(0.1)


def scenario_syn_rto(lab):
    """v6-flowlabel-rto.seg: a SYN never answered, retransmitted."""
    lab.cmd_async("connect " + ADDR_P + " 4")
    lab.expect(3.5)


def scenario_synack_rto(lab):
    """v6-flowlabel-rto.seg: a SYN-ACK never acknowledged, retransmitted."""
    lab.cmd("listen")
    lab.send("S", PEER_ISN, 0, OPTS)
    lab.expect(3.5)


def scenario_dup_data(lab):
    """v6-flowlabel-rto.seg: the peer's data twice with one flow label,
    then again with another (as after its RTO): the kernel's D-SACKs."""
    passive_open(lab)
    data = bytes(100)
    lab.send("PA", PEER_ISN + 1, lab.iss + 1, payload=data, fl=0x11111)
    lab.expect(0.3)
    lab.send("PA", PEER_ISN + 1, lab.iss + 1, payload=data, fl=0x11111)
    lab.expect(0.1)
    lab.send("PA", PEER_ISN + 1, lab.iss + 1, payload=data, fl=0x22222)
    lab.expect(0.1)
    lab.send("PA", PEER_ISN + 1, lab.iss + 1, payload=data, fl=0x22222)
    lab.expect(0.1)
    lab.cmd("write 100")
    lab.expect(0.1)


def main():
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    fn = globals().get("scenario_" + name.replace("-", "_"))
    if not fn:
        sys.exit("scenarios: " + " ".join(k[9:] for k in globals() if k.startswith("scenario_")))
    signal.alarm(60)
    with Lab() as lab:
        print(f"# {name}: Linux {os.uname().release}")
        fn(lab)


if __name__ == "__main__":
    main()
