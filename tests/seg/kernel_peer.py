#!/usr/bin/python3
"""Measure what Linux does for a segment script: a kernel TCP sender in one
network namespace, a scripted raw peer (scapy) in another, joined by a veth
pair with no route out. The peer plays the script's part (handshake, ACKs,
SACK blocks, losses by not acknowledging) and prints every segment the
kernel sends, with its time and relative sequence numbers, and the sender's
TCP_INFO where the scenario asks for it.

    /usr/bin/python3 tests/seg/kernel_peer.py SCENARIO
    KERNEL_PEER_FAMILY=6 /usr/bin/python3 tests/seg/kernel_peer.py SCENARIO

(the second over IPv6: 2001:db8::1 and ::2, an MSS of 1440, the ECN field
in the traffic class; the same scenarios, as seg-run --family=6 runs the
scripts)

needs root, iproute2, ethtool and scapy (the system python3 has it). The
namespaces (ksp-k, ksp-p) are removed afterwards, also on failure; every
wait is bounded. Not part of make check: the segment scripts quote what it
printed in their heads.

Scenarios are the functions named scenario_* below; each says which script
it measures."""
import ctypes
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

from scapy.all import Ether, IP, IPv6, Raw, TCP, conf

NS_K, NS_P = "ksp-k", "ksp-p"
IF_K, IF_P = "kspk0", "kspp0"
SIX = os.environ.get("KERNEL_PEER_FAMILY", "4") == "6"
ADDR_K, ADDR_P = ("2001:db8::1", "2001:db8::2") if SIX else ("10.199.0.1", "10.199.0.2")
L3 = IPv6 if SIX else IP


def l3(tos=0):
    """The peer's IP header to the kernel, with this ECN field (and DSCP)."""
    return IPv6(src=ADDR_P, dst=ADDR_K, tc=tos) if SIX else IP(src=ADDR_P, dst=ADDR_K, tos=tos)


def tos_of(p):
    """The TOS byte or traffic class of a packet from the kernel."""
    return p[IPv6].tc if SIX else p[IP].tos
PORT_K, PORT_P = 8080, 40000
PEER_ISN = 1000000

# The kernel's side: one listening socket; commands on stdin.
APP = r"""
import json, socket, struct, sys
cc = sys.argv[1]
six = sys.argv[2] == "6"
l = socket.socket(socket.AF_INET6 if six else socket.AF_INET)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc.encode())
if len(sys.argv) > 4:  # TCP_MD5SIG: the key for the peer's address (IPv4)
    key, peer = sys.argv[3].encode(), sys.argv[4]
    addr = struct.pack("=H", socket.AF_INET) + b"\0\0" + socket.inet_aton(peer)
    l.setsockopt(socket.IPPROTO_TCP, 14, addr.ljust(128, b"\0") + struct.pack("=BBHI", 0, 0, len(key), 0)
                 + key.ljust(80, b"\0"))
l.bind(("::" if six else "0.0.0.0", 8080)); l.listen(1)
print("listening", flush=True)
s, _ = l.accept()
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
names = ("state ca_state retransmits probes backoff options wscale flags "
         "rto ato snd_mss rcv_mss unacked sacked lost retrans fackets last_data_sent "
         "last_ack_sent last_data_recv last_ack_recv pmtu rcv_ssthresh rtt rttvar "
         "snd_ssthresh snd_cwnd advmss reordering rcv_rtt rcv_space total_retrans "
         "pacing_rate max_pacing_rate bytes_acked bytes_received "
         "segs_out segs_in notsent_bytes min_rtt data_segs_in data_segs_out "
         "delivery_rate busy_time rwnd_limited sndbuf_limited delivered delivered_ce "
         "bytes_sent bytes_retrans dsack_dups reord_seen rcv_ooopack snd_wnd "
         "rcv_wnd rehash total_rto total_rto_recoveries total_rto_time received_ce").split()
fmt = "8B24I4Q6I4Q2I2Q4I2I2H2I"
print("accepted", flush=True)
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "w":
        n = int(cmd[1]); s.sendall(bytes((i * 11 + 5) & 0xff for i in range(n)))
        print("wrote", n, flush=True)
    elif cmd[0] == "i":
        b = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 512)
        v = struct.unpack(fmt, b[:struct.calcsize(fmt)])
        print(json.dumps(dict(zip(names, v))), flush=True)
    elif cmd[0] == "s":
        s.shutdown(socket.SHUT_WR)
        print("shut", flush=True)
    elif cmd[0] == "o":
        s.setsockopt(int(cmd[1]), int(cmd[2]), int(cmd[3]))
        print("set", flush=True)
    elif cmd[0] == "r":
        import threading
        def drain():
            while s.recv(1 << 20):
                pass
        threading.Thread(target=drain, daemon=True).start()
        print("reading", flush=True)
    elif cmd[0] == "c":
        s.close()
        print("closed", flush=True)
    elif cmd[0] == "q":
        break
"""


def enter_netns(ns):
    """This process moves into ns (the peer's raw socket lives there)."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/var/run/netns/" + ns) as f:
        if libc.setns(f.fileno(), 0x40000000) != 0:  # CLONE_NEWNET
            raise OSError(ctypes.get_errno(), "setns " + ns)


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True, timeout=10)


class Lab:
    """The two namespaces and the kernel application."""

    def __init__(self, cc="reno", sysctls=(), md5=None):
        self.cc = cc
        self.sysctls = sysctls
        self.md5 = md5  # the listener's TCP_MD5SIG key for the peer (IPv4)

    def __enter__(self):
        self.cleanup()
        sh("ip", "netns", "add", NS_K)
        sh("ip", "netns", "add", NS_P)
        sh("ip", "-n", NS_K, "link", "add", IF_K, "type", "veth", "peer", "name", IF_P, "netns", NS_P)
        for ns, i in ((NS_K, IF_K), (NS_P, IF_P)):
            # No DAD: the address is there at once, and no frame but the
            # scenario's (as kernel_peer6.py).
            sh("ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"net.ipv6.conf.{i}.accept_dad=0")
        sh("ip", "-n", NS_K, "addr", "add", ADDR_K + ("/64" if SIX else "/24"), "dev", IF_K,
           *(("nodad",) if SIX else ()))
        for ns, i in ((NS_K, IF_K), (NS_P, IF_P)):
            sh("ip", "-n", ns, "link", "set", i, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "netns", "exec", ns, "ethtool", "-K", i, "tso", "off", "gso", "off", "gro", "off",
               check=False)
        # The peer has no address: its kernel ignores the segments scapy
        # answers, and sends no RST.
        self.mac_k = self.mac(NS_K, IF_K)
        self.mac_p = self.mac(NS_P, IF_P)
        sh("ip", "-n", NS_K, "neigh", "add", ADDR_P, "lladdr", self.mac_p, "dev", IF_K, "nud", "permanent")
        for kv in self.sysctls:
            sh("ip", "netns", "exec", NS_K, "sysctl", "-q", "-w", kv)
        self.app = subprocess.Popen(["ip", "netns", "exec", NS_K, "/usr/bin/python3", "-c", APP, self.cc,
                                     "6" if SIX else "4", *((self.md5, ADDR_P) if self.md5 else ())],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.line() == "listening"
        return self

    def __exit__(self, *exc):
        if getattr(self, "app", None):
            try:
                self.app.stdin.write("q\n")
                self.app.stdin.flush()
            except OSError:
                pass
            try:
                self.app.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.app.kill()
        self.cleanup()

    @staticmethod
    def cleanup():
        for ns in (NS_K, NS_P):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)

    @staticmethod
    def mac(ns, i):
        return json.loads(sh("ip", "-j", "-n", ns, "link", "show", i).stdout)[0]["address"]

    def line(self, timeout=5.0):
        r, _, _ = select.select([self.app.stdout], [], [], timeout)
        assert r, "the kernel application did not answer"
        return self.app.stdout.readline().strip()

    def cmd(self, c):
        self.app.stdin.write(c + "\n")
        self.app.stdin.flush()
        return self.line()

    def info(self):
        return json.loads(self.cmd("i"))


class Peer:
    """The raw peer on the other end of the veth."""

    def __init__(self, lab, opts, win=1000):
        self.lab = lab
        self.opts = opts
        self.win = win
        self.t0 = time.monotonic()
        self.iss = None
        self.ts = 1000
        self.ecr = 0
        self.ecr_fixed = None  # echo this TSval, not the latest (a stale echo)
        self.tsval_of = {}     # relative seq -> TSval of its first transmission
        self.sock = None
        # Full segments carry 12 bytes of timestamps less.
        self.mss = MSS - 12 if any(k == "Timestamp" for k, _ in opts) else MSS

    def seg(self, i):
        """Relative sequence range of full segment i (from 1)."""
        return 1 + (i - 1) * self.mss, 1 + i * self.mss

    def now(self):
        return time.monotonic() - self.t0

    def send(self, flags, seq, ack, opts=None, payload=b"", tos=0):
        pkt = (Ether(src=self.lab.mac_p, dst=self.lab.mac_k) / l3(tos) /
               TCP(sport=PORT_P, dport=PORT_K, flags=flags, seq=seq, ack=ack, window=self.win,
                   options=opts if opts is not None else self.opts_now()) / payload)
        self.sock.send(pkt)

    def opts_now(self, sack=()):
        o = []
        if any(k == "Timestamp" for k, _ in self.opts):
            self.ts += 1
            o.append(("NOP", None))
            o.append(("NOP", None))
            o.append(("Timestamp", (self.ts, self.ecr if self.ecr_fixed is None else self.ecr_fixed)))
        if sack:
            o.append(("NOP", None))
            o.append(("NOP", None))
            o.append(("SAck", tuple(x for b in sack for x in (self.iss + b[0], self.iss + b[1]))))
        return o

    def recv(self, timeout):
        """The next segment from the kernel, or None."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return None
            p = self.sock.recv()
            if p is None or not p.haslayer(TCP) or p[L3].src != ADDR_K:
                continue
            for k, v in p[TCP].options:
                if k == "Timestamp":
                    self.ecr = v[0]
                    if self.iss is not None and len(p[TCP].payload):
                        self.tsval_of.setdefault((p[TCP].seq - self.iss) & 0xffffffff, v[0])
            return p

    def connect(self, syn="S", tos=0):
        enter_netns(NS_P)
        self.sock = conf.L2socket(iface=IF_P)
        self.send(syn, PEER_ISN, 0, opts=self.opts, tos=tos)
        p = self.recv(3)
        assert p and p[TCP].flags.S and p[TCP].flags.A, "no SYN-ACK"
        self.iss = p[TCP].seq
        if syn != "S" or tos:
            print(f"   0.000  < {syn.replace('A', '.')} 0:0(0){ECN[tos & 3]}")
            print(f"   0.000  > {str(p[TCP].flags).replace('A', '.')} 0:0(0){ECN[tos_of(p) & 3]}")
        time.sleep(RTT)  # the handshake's RTT: the kernel's RTO is 300 ms, as in the scripts
        self.send("A", PEER_ISN + 1, self.iss + 1)
        assert self.lab.line() == "accepted"
        self.t0 = time.monotonic()

    def show(self, p):
        t = p[TCP]
        rel = (t.seq - self.iss) & 0xffffffff
        n = len(t.payload)
        fl = str(t.flags).replace("A", ".")
        print(f"{self.now():8.3f}  > {fl} {rel}:{rel + n}({n}) ack {(t.ack - PEER_ISN) & 0xffffffff}"
              f"{ECN[tos_of(p) & 3]}")
        return rel, n

    def collect(self, count, timeout=3.0):
        """count data segments (or fewer, after timeout): [(rel_seq, len)]."""
        got = []
        end = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < end:
            p = self.recv(end - time.monotonic())
            if p is None:
                break
            if len(p[TCP].payload) or p[TCP].flags.F:
                got.append(self.show(p))
        return got

    def quiet(self, secs):
        """Everything the kernel sends for secs."""
        got = []
        end = time.monotonic() + secs
        while True:
            p = self.recv(end - time.monotonic())
            if p is None:
                return got
            if len(p[TCP].payload) or p[TCP].flags.F:
                got.append(self.show(p))

    def answers(self, secs):
        """Every segment the kernel sends for secs, pure ACKs included."""
        end = time.monotonic() + secs
        while True:
            p = self.recv(end - time.monotonic())
            if p is None:
                return
            self.show(p)

    def data(self, n, flags="PA", tos=0, ack=1, note=""):
        """n bytes of the peer's data, next in its sequence space."""
        seq = getattr(self, "sent", 1)
        print(f"{self.now():8.3f}  < {flags.replace('A', '.')} {seq}:{seq + n}({n}) ack {ack}{ECN[tos & 3]}"
              + (f"   # {note}" if note else ""))
        self.send(flags, PEER_ISN + seq, self.iss + ack, payload=bytes(n), tos=tos)
        self.sent = seq + n

    def ack(self, ack, sack=(), note="", flags="A"):
        print(f"{self.now():8.3f}  < {flags.replace('A', '.')} ack {ack}" + (" sack " + " ".join(f"{a}:{b}" for a, b in sack) if sack else "") +
              (f"   # {note}" if note else ""))
        self.send(flags, PEER_ISN + getattr(self, "sent", 1), self.iss + ack, opts=self.opts_now(sack))

    def info(self, *keys):
        i = self.lab.info()
        print(f"{self.now():8.3f}  tcp_info " + " ".join(f"{k}={i[k]}" for k in keys))
        return i

    def step(self, ack, sack=(), note="", wait=0.02, keys=None):
        """An ACK, what the kernel sends in answer within wait, and its
        TCP_INFO."""
        self.ack(ack, sack=sack, note=note)
        self.quiet(wait)
        self.info(*(keys or INFO))

    def burst(self, queued, sent):
        """The application writes queued segments, sent of them go; one
        RTT later the peer answers."""
        self.lab.cmd("w %d" % (queued * self.mss))
        self.collect(sent)
        time.sleep(RTT)


MSS = 1440 if SIX else 1460  # the kernel's own over a 1500-byte MTU
RTT = 0.1
ECN = ("", " ect1", " ect0", " ce")  # the IP header's ECN field, as the scripts write it
OPTS_SACK = [("MSS", MSS), ("SAckOK", b""), ("NOP", None), ("WScale", 7)]
OPTS_SACK_TS = [("MSS", MSS), ("SAckOK", b""), ("Timestamp", (1000, 0)), ("NOP", None), ("WScale", 7)]
OPTS_NOSACK = [("MSS", MSS), ("NOP", None), ("WScale", 7)]
INFO = ("ca_state", "snd_cwnd", "snd_ssthresh", "unacked", "sacked", "lost", "retrans", "reordering",
        "total_retrans")
NO_TLP = ("net.ipv4.tcp_early_retrans=0",)


def seg(i):
    """Relative sequence range of full segment i (from 1)."""
    return 1 + (i - 1) * MSS, 1 + i * MSS


def scenario_prr_sack(lab):
    """prr-sack.seg: PRR's amount per ACK with SACK, both phases. cwnd 20
    after one round of slow start; forty segments queued, twenty go;
    the first two (11 and 12) are lost. SACKs for 13..30 one by one, then
    the partial ACK when the retransmission of 11 arrives, then the ACK
    of 12's."""
    p = Peer(lab, OPTS_SACK)
    p.connect()
    p.burst(10, 10)
    p.step(seg(10)[1])
    p.burst(40, 20)
    for k in range(13, 31):
        p.step(seg(11)[0], sack=[(seg(13)[0], seg(k)[1])], note=f"SACK 13..{k}", wait=0.01)
    time.sleep(0.02)
    p.step(seg(12)[0], sack=[(seg(13)[0], seg(30)[1])], note="partial: 11 arrived")
    p.step(seg(30)[1], note="12 arrived")
    time.sleep(0.05)
    p.step(seg(40)[1], note="the rest of the window", wait=0.05)
    p.step(seg(50)[1], note="everything", wait=0.05)


def dupack_recovery(lab, dups, partial):
    """No SACK, fourteen segments queued, ten in flight; the duplicate
    ACKs for the segments in dups (1 is lost), the partial ACK if any,
    then the ACK of the recovery point and of everything."""
    p = Peer(lab, OPTS_NOSACK)
    p.connect()
    p.burst(14, 10)
    for k in dups:
        p.step(1, note=f"dup for {k}")
    time.sleep(0.05)
    if partial:
        p.step(seg(partial)[1], note="partial: 1 arrived", wait=0.05)
    p.step(seg(12)[1], note="the recovery point", wait=0.05)
    p.step(seg(14)[1], note="everything", wait=0.05)


def scenario_newreno(lab):
    """newreno-partial-ack.seg: segments 1 and 5 lost: duplicate ACKs for
    2..4, 6..10 and the two sent by limited transmit; the partial ACK for
    the retransmission of 1."""
    dupack_recovery(lab, list(range(2, 5)) + list(range(6, 13)), 4)


def scenario_fast_retransmit(lab):
    """fast-retransmit.seg: segment 1 lost: duplicate ACKs for 2..10 and
    the two sent meanwhile."""
    dupack_recovery(lab, range(2, 13), None)


def scenario_cwnd_growth(lab):
    """cwnd-growth.seg: slow start acknowledged segment by segment; twenty
    segments with the first lost (three duplicate ACKs, then the ACK of
    all); congestion avoidance, ten segments acknowledged one by one."""
    p = Peer(lab, OPTS_NOSACK)
    p.connect()
    p.burst(10, 10)
    for k in range(1, 11):
        p.ack(seg(k)[1])
    p.step(seg(10)[1], note="again: the window, for the info")
    p.burst(20, 20)
    for k in range(3):
        p.step(seg(10)[1], note="dup")
    time.sleep(0.05)
    p.step(seg(30)[1], note="all: the recovery point")
    time.sleep(0.05)
    p.burst(10, 10)
    for k in range(31, 41):
        p.step(seg(k)[1], wait=0.01)


def reordering_seen(p, late_ack):
    """Round 1 of the RACK scenarios: 2 is SACKed before 1, which arrives
    10 ms later (late_ack: what that ACK covers)."""
    p.burst(10, 10)
    p.ack(seg(1)[0], sack=[seg(2)], note="2 before 1")
    p.quiet(0.01)
    p.step(late_ack, note="1, 10 ms late", wait=0.05, keys=INFO + ("reord_seen", "min_rtt"))


def scenario_rack_reo_wnd(lab):
    """rack-reo-wnd.seg: RACK's reordering window. Round 1: reordering seen.
    Round 2: segment 11 is missing after 12 is SACKed, and stays missing."""
    p = Peer(lab, OPTS_SACK)
    p.connect()
    reordering_seen(p, seg(2)[1])
    p.step(seg(10)[1], wait=0.05)
    p.burst(10, 10)
    p.step(seg(11)[0], sack=[seg(12)], note="12 before 11", wait=0.1, keys=INFO + ("reord_seen",))
    p.step(seg(20)[1], note="all", wait=0.05)


def scenario_rack_dsack(lab):
    """rack-dsack.seg: D-SACK widens RACK's window. Round 1: reordering
    seen. Round 2: 11 comes 40 ms late, after RACK's 25 ms: resent, then
    D-SACKed. Round 3: 21 comes 40 ms late again."""
    keys = INFO + ("reord_seen", "dsack_dups")
    p = Peer(lab, OPTS_SACK)
    p.connect()
    reordering_seen(p, seg(10)[1])
    p.burst(10, 10)
    p.ack(seg(11)[0], sack=[(seg(12)[0], seg(20)[1])], note="12..20 before 11")
    p.quiet(0.04)
    p.step(seg(20)[1], note="11, 40 ms late", wait=0.05, keys=keys)
    time.sleep(0.03)
    p.step(seg(20)[1], sack=[seg(11)], note="D-SACK: the retransmission of 11 came too", wait=0.05,
           keys=keys)
    p.burst(5, 5)
    p.ack(seg(21)[0], sack=[(seg(22)[0], seg(25)[1])], note="22..25 before 21")
    p.quiet(0.04)
    p.step(seg(25)[1], note="21, 40 ms late", wait=0.06, keys=keys)


def scenario_rack_lost_retransmit(lab):
    """rack-lost-retransmit.seg: segment 1 is lost, and so is its
    retransmission; the SACKs for segments sent after the retransmission
    show it, without an RTO."""
    p = Peer(lab, OPTS_SACK)
    p.connect()
    p.burst(16, 10)
    for k in range(2, 11):
        p.ack(seg(1)[0], sack=[(seg(2)[0], seg(k)[1])], note=f"SACK 2..{k}")
        p.quiet(0.01)
    p.info(*INFO)
    time.sleep(RTT - 0.09)
    for k in range(11, 17):
        p.step(seg(1)[0], sack=[(seg(2)[0], seg(k)[1])], note=f"SACK 2..{k}", wait=0.01)
    p.quiet(0.05)
    p.step(seg(16)[1], note="the second retransmission arrives", wait=0.05)


def scenario_tlp(lab):
    """tlp.seg (tcp_early_retrans=3, Linux's default): the tail loss probe.
    Round 1: ten segments, the last one lost: the ACK of 1..9, then the
    probe (10 again), then its ACK. Round 2: ten more, the ACK of the last
    one is lost: the probe arrives as a duplicate, D-SACKed."""
    keys = INFO + ("dsack_dups", "rto")
    p = Peer(lab, OPTS_SACK)
    p.connect()
    p.burst(10, 10)
    p.step(seg(9)[1], note="1..9: 10 lost", wait=0.6, keys=keys)
    p.step(seg(10)[1], note="the probe arrived", wait=0.05, keys=keys)
    p.step(seg(10)[1], note="a duplicate", wait=0.05, keys=keys)
    p.burst(10, 10)
    p.step(seg(19)[1], note="11..19; the ACK of 20 is lost", wait=0.6, keys=keys)
    p.step(seg(20)[1], sack=[seg(20)], note="D-SACK: 20 arrived twice", wait=0.05, keys=keys)
    p.burst(10, 10)
    p.step(seg(30)[1], note="all", wait=0.05, keys=keys)


def scenario_tlp_cwnd(lab):
    """tlp-cwnd.seg (tcp_early_retrans=3): a probe while the flight fills
    cwnd and more data waits. Twenty segments written, ten go (the initial
    window); every ACK of them is lost. The probe is new data, segment 11,
    sent beyond cwnd (tcp_write_xmit's push_one == 2); its ACK covers all
    eleven."""
    keys = INFO + ("rto",)
    p = Peer(lab, OPTS_SACK)
    p.connect()
    p.lab.cmd("w %d" % (20 * p.mss))
    p.collect(10)
    p.quiet(0.25)
    p.info(*keys)
    p.step(seg(11)[1], note="1..11: only the ACKs were lost", wait=0.05, keys=keys)


def scenario_tlp_cwnd_fin(lab):
    """tlp-cwnd-fin.seg: ten segments fill cwnd, then shutdown(SHUT_WR):
    the FIN waits for cwnd. Every ACK is lost. What is the probe?"""
    keys = INFO + ("rto",)
    p = Peer(lab, OPTS_SACK)
    p.connect()
    p.lab.cmd("w %d" % (10 * p.mss))
    p.collect(10)
    p.lab.cmd("s")
    p.info(*keys)
    p.quiet(0.25)
    p.info(*keys)
    p.step(seg(10)[1] + 1, note="all and the FIN", wait=0.05, keys=keys)


def scenario_tlp_cwr(lab):
    """tlp-cwr.seg (tcp_early_retrans=3): a probe during CWR, and what PRR
    lets go after it. No window scaling, so that the peer's window can end
    exactly at a segment. cwnd 20, the window ends at 30: twenty go, ten
    more wait. ECE with the ACK of 12 (the window still ends at 30): CWR,
    nothing can go. The probe is the last segment again (the window holds
    the new data back). Then the ACK of 14 opens the window: how many new
    segments PRR lets go shows whether the probe counted as sent in the
    reduction (prr_out)."""
    keys = INFO + ("rto",)
    p = Peer(lab, [("MSS", MSS), ("SAckOK", b"")], win=65535)
    p.connect(syn="SEC")
    p.burst(10, 10)
    p.win = 20 * MSS
    p.step(seg(10)[1], note="the first flight; the window ends at 30", keys=keys)
    p.lab.cmd("w %d" % (40 * MSS))
    p.collect(20)
    time.sleep(RTT)
    p.win = 18 * MSS
    p.ack(seg(12)[1], flags="AE", note="ECE for 11..12; the window still ends at 30")
    p.answers(0.02)
    p.info(*keys)
    p.collect(1, timeout=0.5)
    p.info(*keys)
    p.win = 65535
    p.step(seg(14)[1], note="13..14; the window opens", keys=keys)


def scenario_shrunk_window(lab):
    """shrunk-window.seg: the peer's window shrinks below what is in
    flight (ten segments out; the ACK of two says the window ends 512
    bytes further). Where the kernel's ACK of the peer's data starts
    (tcp_acceptable_seq), and how much of the first unacknowledged
    segment its RTO sends again (__tcp_retransmit_skb's avail_wnd)."""
    p = Peer(lab, OPTS_SACK_TS, win=65535)
    p.connect()
    p.burst(10, 10)
    p.win = 4  # 4 << 7 = 512 bytes beyond the ACK
    p.ack(p.seg(2)[1], note="window 512: it ends 512 bytes past 2")
    p.answers(0.05)
    p.data(100, ack=p.seg(2)[1], note="the peer's data")
    p.answers(0.05)
    p.collect(1, timeout=1.0)
    p.info("rto", "unacked", "retrans", "total_retrans")


def scenario_thin_lto(lab):
    """thin-linear-timeouts.seg: TCP_THIN_LINEAR_TIMEOUTS on an
    established connection, no SACK (no probe), two segments written and
    never acknowledged: when the kernel sends them again (the first of
    them), and its backoff and RTO as TCP_INFO reads them."""
    keys = ("ca_state", "snd_cwnd", "snd_ssthresh", "retransmits", "backoff", "rto", "total_retrans")
    p = Peer(lab, OPTS_NOSACK)
    p.connect()
    p.burst(10, 10)
    p.step(seg(10)[1], note="the first flight", keys=keys)
    print("app:", p.lab.cmd("o 6 16 1"))  # IPPROTO_TCP, TCP_THIN_LINEAR_TIMEOUTS
    p.lab.cmd("w %d" % (2 * MSS))
    p.collect(2)
    end = time.monotonic() + 7
    while time.monotonic() < end:
        if p.collect(1, timeout=end - time.monotonic()):
            p.info(*keys)


def scenario_fin_window(lab):
    """fin-window.seg: does the FIN need room in the peer's window? 1536
    bytes (two half-window segments of 768) fill a 1536-byte window, the
    program shuts its side (the FIN would be one beyond the window), the
    peer ACKs all of it with window 0; later the window opens again."""
    keys = ("state", "unacked", "probes", "backoff", "snd_wnd")
    p = Peer(lab, OPTS_SACK, win=12)  # 12 << 7 = 1536: segments of half of it, 768
    p.connect()
    p.lab.cmd("w %d" % (p.mss + 76))  # 1536 bytes: exactly the window
    p.collect(2, timeout=0.3)
    p.lab.cmd("s")
    p.quiet(0.2)
    p.info(*keys)
    p.win = 0
    p.ack(seg(1)[0] + 1536, note="all the data, window 0")
    p.answers(1.0)
    p.info(*keys)
    p.win = 12
    p.ack(seg(1)[0] + 1536, note="the window opens")
    p.quiet(0.2)
    p.info(*keys)


def print_acks(p, secs):
    """Every ACK the kernel sends within secs, with its window and SACK
    blocks (relative)."""
    end = time.monotonic() + secs
    while True:
        q = p.recv(end - time.monotonic())
        if q is None:
            break
        sack = [o for o in q[TCP].options if o[0] == "SAck"]
        sk = ""
        if sack:
            v = sack[0][1]
            sk = " sack " + " ".join(f"{(v[j] - PEER_ISN) & 0xffffffff}:{(v[j + 1] - PEER_ISN) & 0xffffffff}"
                                     for j in range(0, len(v), 2))
        print(f"{p.now():8.3f}  > . ack {(q[TCP].ack - PEER_ISN) & 0xffffffff} win {q[TCP].window}{sk}")


def data_and_acks(p, a, b, note):
    """Sends the peer's bytes a:b (relative sequence numbers) and prints
    every ACK the kernel sends within 50 ms."""
    print(f"{p.now():8.3f}  < . {a}:{b}({b - a}) ack 1   # {note}")
    p.send("A", PEER_ISN + a, p.iss + 1, payload=bytes(b - a))
    print_acks(p, 0.05)


def scenario_ofo_window(lab):
    """ofo-window.seg: the receiver's window for out-of-order data. The
    peer's first segment arrives, the second is lost, the next twelve come
    beyond the hole; every ACK the kernel sends is printed with its window
    (scaled by our wscale 7 as sent, in the segment's units). Then the
    hole is filled."""
    p = Peer(lab, OPTS_SACK)
    p.connect()

    def send_seg(i, note):
        data_and_acks(p, *seg(i), note)

    send_seg(1, "in order")
    for i in range(3, 15):
        send_seg(i, "beyond the hole")
    send_seg(4, "held already")
    send_seg(2, "the hole")
    p.info("rcv_ssthresh", "rcv_space", "rcv_wnd")


def scenario_ack_after_loss(lab):
    """The receiver's ACKs around a loss (for the ACK rate under loss,
    issue 12): twenty in-order segments (past quick-ACK at the start),
    then a hole with eight segments beyond it, the hole filled, and
    twenty in-order segments again. Every ACK the kernel sends is printed:
    which segments get one of their own."""
    p = Peer(lab, OPTS_SACK)
    p.connect()
    for i in range(1, 21):
        data_and_acks(p, *seg(i), "in order")
    for i in range(22, 30):
        data_and_acks(p, *seg(i), "beyond the hole")
    data_and_acks(p, *seg(21), "the hole")
    for i in range(30, 50):
        data_and_acks(p, *seg(i), "in order again")


def scenario_ack_after_loss_reading(lab):
    """A bulk receiver's ACK rate (issue 12): as ack-after-loss, but the
    application reads all the time and the peer sends as fast as scapy
    does (a segment every 2 to 20 ms): 60 in order, a hole with ten beyond
    it, the hole filled, 60 in order again. Every ACK the kernel sends is
    printed, with its window. On 6.18.44: each of the first 22 segments
    ACKed (quick-ACK mode, then the window growing), every second one
    while the window stays (its receive buffer's room, 80), then each
    again from the 46th on, once autotuning grew the buffer and with it
    the window (tcp_grow_window's quick |= 1: 83 to 325 by the end,
    rcv_ssthresh 332606); beyond the hole and at its filling each at once.
    ustcp's receiver, through ustcp-impair at 5% loss and no delay, sent
    the kernel's sender 1157-2553 ACKs for 3460 segments of 5 MB where the
    kernel's sent 1348-1567 (seeds 1-3, 2026-12-08)."""
    p = Peer(lab, OPTS_SACK)
    p.connect()
    assert lab.cmd("r") == "reading"

    def send_seg(i, note):
        a, b = seg(i)
        print(f"{p.now():8.3f}  < . {a}:{b}({b - a}) ack 1   # {note}")
        p.send("A", PEER_ISN + a, p.iss + 1, payload=bytes(b - a))
        print_acks(p, 0.002)

    for i in range(1, 61):
        send_seg(i, "in order")
    for i in range(62, 72):
        send_seg(i, "beyond the hole")
    send_seg(61, "the hole")
    for i in range(72, 132):
        send_seg(i, "in order again")
    print_acks(p, 0.3)
    p.info("rcv_ssthresh", "rcv_space", "rcv_wnd", "ato")


def scenario_sack_compress(lab):
    """sack-compress.seg: SACK compression. With timestamps, twenty full
    segments about 70 ms apart (past quick-ACK mode) give the receiver its
    round trip; then trains of
    segments beyond holes, sent back to back (built first, then written
    out within about a millisecond): which draw an ACK at once, which are
    held back and for how long, and which blocks the held ACK carries,
    also when a segment extends the third block while ACKs are held."""
    opts = OPTS_SACK + [("NOP", None), ("NOP", None), ("Timestamp", (1000, 0))]
    p = Peer(lab, opts)
    p.connect()
    m = p.mss

    def rel(i):
        return 1 + i * m

    def train(ranges, note):
        pkts = []
        for a, b in ranges:
            print(f"{p.now():8.3f}  < . {a}:{b}({b - a}) ack 1   # {note}")
            pkts.append(bytes(Ether(src=lab.mac_p, dst=lab.mac_k) / l3() /
                              TCP(sport=PORT_P, dport=PORT_K, flags="A", seq=PEER_ISN + a,
                                  ack=p.iss + 1, window=p.win, options=p.opts_now()) /
                              bytes(b - a)))
        for x in pkts:
            p.sock.send(x)
        print_acks(p, 0.05)
        p.info("rcv_ssthresh", "rcv_space", "rcv_wnd", "rcv_rtt")

    # Past quick-ACK mode (16 ACKs at the start), the receiver's round
    # trip measured from the echoes.
    for i in range(20):
        train([(rel(i), rel(i + 1))], "in order")
        time.sleep(RTT / 5)
    # A hole at 20; six segments beyond it.
    train([(rel(i), rel(i + 1)) for i in range(21, 27)], "beyond the hole")
    train([(rel(20), rel(21))], "the hole")
    time.sleep(RTT)
    # Holes at 27, 29, 31: three blocks, a segment extending the first
    # (held), then one extending the third while it is held.
    train([(rel(28), rel(29)), (rel(30), rel(31)), (rel(32), rel(33)), (rel(33), rel(34)),
           (rel(29), rel(29) + 100)], "three blocks, then the third again")
    train([(rel(27), rel(28)), (rel(29) + 100, rel(30)), (rel(31), rel(32))], "the holes")
    time.sleep(RTT)
    # Holes at 34, 36, 38: three blocks, a segment extending the first
    # (held), then one starting a fourth block while it is held, then one
    # more beyond.
    train([(rel(35), rel(36)), (rel(37), rel(38)), (rel(39), rel(40)), (rel(40), rel(41)),
           (rel(42), rel(43)), (rel(43), rel(44))], "three blocks, then a fourth")
    train([(rel(34), rel(35)), (rel(36), rel(37)), (rel(38), rel(39)), (rel(41), rel(42))],
          "the holes")


def scenario_ofo_overlap(lab):
    """ofo-overlap.seg: D-SACK for a segment that partly overlaps data held
    beyond a hole: one that runs past the end of a held range, one that
    starts before one, one that covers parts of two ranges with a gap
    between them. Every ACK is printed with its SACK blocks."""
    p = Peer(lab, OPTS_SACK)
    p.connect()
    for a, b, note in ((1, 1461, "in order"), (2921, 4381, "beyond the hole"),
                       (3651, 5111, "past the held range's end"), (2191, 3651, "before its start"),
                       (6001, 6301, "a second range"), (6601, 6901, "a third"),
                       (6201, 6701, "over parts of the second and the third"), (1461, 2191, "the hole")):
        data_and_acks(p, a, b, note)


ECN_INFO = ("ca_state", "snd_cwnd", "snd_ssthresh", "unacked", "total_retrans", "delivered",
            "delivered_ce", "received_ce")


def scenario_ecn_passive(lab):
    """ecn-*.seg (tcp_ecn=2, Linux's default): the peer asks for ECN (SYN
    with ECE and CWR). What the kernel's SYN-ACK, data, ACKs and
    retransmissions carry; its answer to ECE (CWR: the window, and CWR on
    the next new data) and to CE marks (ECE until CWR)."""
    p = Peer(lab, OPTS_SACK)
    p.connect(syn="SEC")
    p.burst(10, 10)
    p.step(seg(10)[1], note="the first flight", keys=ECN_INFO)
    # The sender's side: cwnd 20 after the first flight; thirty queued.
    p.lab.cmd("w %d" % (30 * MSS))
    p.collect(20)
    time.sleep(RTT)
    p.ack(seg(15)[1], flags="AE", note="ECE for 11..15")
    p.answers(0.02)
    p.info(*ECN_INFO)
    p.ack(seg(20)[1], flags="AE", note="ECE again, the same window")
    p.answers(0.02)
    p.info(*ECN_INFO)
    p.ack(seg(25)[1], note="no ECE")
    p.answers(0.02)
    p.info(*ECN_INFO)
    p.ack(seg(30)[1], note="past the window of the reduction")
    p.answers(0.02)
    p.info(*ECN_INFO)
    p.ack(seg(33)[1], note="all")
    p.answers(0.02)
    p.info(*ECN_INFO)
    # The receiver's side.
    p.data(100, tos=2, ack=seg(33)[1], note="ECT(0)")
    p.answers(0.05)
    p.data(100, tos=3, ack=seg(33)[1], note="CE")
    p.answers(0.05)
    p.data(100, tos=2, ack=seg(33)[1], note="ECT(0) after CE")
    p.answers(0.25)
    p.ack(seg(33)[1], flags="AC", note="a pure ACK with CWR")
    p.answers(0.05)
    p.data(100, tos=2, ack=seg(33)[1], note="ECT(0) after the CWR")
    p.answers(0.25)
    p.data(100, tos=3, ack=seg(33)[1], note="CE again")
    p.data(100, tos=3, ack=seg(33)[1], note="CE again")
    p.answers(0.05)
    p.data(100, flags="PAC", tos=2, ack=seg(33)[1], note="data with CWR")
    p.answers(0.25)
    p.info(*ECN_INFO)
    # A retransmission: two more, the last lost until the RTO.
    p.lab.cmd("w %d" % (2 * MSS))
    p.collect(2)
    time.sleep(RTT)
    p.ack(seg(34)[1], note="35 lost")
    p.answers(1.0)
    p.step(seg(35)[1], note="all", wait=0.05, keys=ECN_INFO)


def scenario_ecn_ce_quickack(lab):
    """ecn-ce-quickack.seg: the peer's small segments every 50 ms until
    the receiver delays its ACKs; then CE, then ECT(0) again."""
    p = Peer(lab, OPTS_SACK)
    p.connect(syn="SEC")
    for k in range(20):
        p.data(100, tos=2)
        p.answers(0.05)
    for k in range(3):
        p.data(100, tos=3 if k == 0 else 2, note="CE" if k == 0 else "")
        p.answers(0.05)
    p.info(*ECN_INFO)


def scenario_ecn_syn(lab):
    """ecn-handshake.seg: an ECN-setup SYN and the SYN-ACK's answer (run
    it with net.ipv4.tcp_ecn=0 too); then one segment of data."""
    p = Peer(lab, OPTS_SACK)
    p.connect(syn="SEC")
    p.burst(1, 1)


def scenario_ecn_ect_syn(lab):
    """ecn-handshake.seg: a SYN that asks for ECN but is itself ECT(0)
    (RFC 3168 §6.1.1 says a SYN is never ECT)."""
    p = Peer(lab, OPTS_SACK)
    p.connect(syn="SEC", tos=2)
    p.burst(1, 1)


def scenario_ecn_ece_syn(lab):
    """ecn-handshake.seg: a SYN with ECE but not CWR."""
    p = Peer(lab, OPTS_SACK)
    p.connect(syn="SE")
    p.burst(1, 1)


def scenario_rtt_stale_echo(lab):
    """rtt-stale-echo.seg: a peer that echoes one old TSval for ever (Linux:
    "broken middle-boxes or peers may corrupt TS-ECR fields"). Round 1
    echoes honestly; rounds 2..4, each 1 s after the last, echo round 1's
    TSval; round 5 loses segment 1, repaired after SACKs; round 6 is clean
    again."""
    keys = ("rto", "rtt", "rttvar", "backoff", "ca_state", "snd_cwnd", "total_retrans")
    p = Peer(lab, OPTS_SACK_TS)
    p.connect()
    p.burst(10, 10)
    p.step(p.seg(10)[1], note="honest echo", keys=keys)
    p.ecr_fixed = p.ecr
    base = 10
    for r in range(2, 5):
        time.sleep(1.0)
        p.burst(10, 10)
        p.step(p.seg(base + 10)[1], note=f"round {r}: stale echo", keys=keys)
        base += 10
    time.sleep(1.0)
    p.burst(10, 10)
    p.step(p.seg(base + 1)[0], sack=[(p.seg(base + 2)[0], p.seg(base + 10)[1])], note="round 5: 1 lost",
           wait=0.1, keys=keys)
    p.step(p.seg(base + 10)[1], note="the retransmission arrived", keys=keys)
    base += 10
    time.sleep(1.0)
    p.burst(10, 10)
    p.step(p.seg(base + 10)[1], note="round 6: stale echo", keys=keys)


FRTO_KEYS = ("ca_state", "snd_cwnd", "snd_ssthresh", "unacked", "lost", "retrans", "total_retrans", "rto",
             "backoff")


def frto_start(lab, opts=OPTS_SACK):
    """cwnd 20 after a round of slow start; forty segments queued, twenty
    go (11..30) and nothing comes back: the RTO resends 11."""
    p = Peer(lab, opts)
    p.connect()
    p.burst(10, 10)
    p.step(seg(10)[1], keys=FRTO_KEYS)
    p.lab.cmd("w %d" % (40 * MSS))
    p.collect(20)
    p.collect(1, timeout=1.0)
    p.info(*FRTO_KEYS)
    return p


def scenario_frto_spurious(lab):
    """frto-spurious.seg: the RTO was spurious (the ACKs were only late).
    The ACK of 11 (its original) lets new data go (F-RTO step 2b); the ACK
    of 12..30, never resent, shows the timeout spurious (step 3b): undo."""
    p = frto_start(lab)
    p.step(seg(11)[1], note="11", wait=0.05, keys=FRTO_KEYS)
    p.step(seg(30)[1], note="12..30: never resent", wait=0.05, keys=FRTO_KEYS)
    p.step(seg(50)[1], note="all", wait=0.05, keys=FRTO_KEYS)


def scenario_frto_spurious_first(lab):
    """frto-spurious.seg, round 2: the first ACK after the RTO already
    covers segments never resent."""
    p = frto_start(lab)
    p.step(seg(20)[1], note="11..20", wait=0.05, keys=FRTO_KEYS)
    p.step(seg(50)[1], note="all", wait=0.05, keys=FRTO_KEYS)


def scenario_frto_nosack(lab):
    """frto-nosack.seg: F-RTO without SACK: the ACK of 11 lets 31 and 32
    go; a duplicate ACK then says the loss was real (step 3a)."""
    p = frto_start(lab, OPTS_NOSACK)
    p.step(seg(11)[1], note="11", wait=0.05, keys=FRTO_KEYS)
    p.step(seg(11)[1], note="dup (31 arrived)", wait=0.05, keys=FRTO_KEYS)
    p.step(seg(11)[1], note="dup (32 arrived)", wait=0.05, keys=FRTO_KEYS)
    p.step(seg(12)[1], note="12", wait=0.05, keys=FRTO_KEYS)


def scenario_frto_real(lab):
    """frto-real.seg: the RTO was real. The ACK of 11 (the retransmission)
    lets new data go (31, 32); the SACK of 31 with 12 still missing says
    the loss was real (step 3a): retransmissions in slow start."""
    p = frto_start(lab)
    p.step(seg(11)[1], note="11 (the retransmission)", wait=0.05, keys=FRTO_KEYS)
    p.step(seg(11)[1], sack=[seg(31)], note="31 SACKed, 12 missing", wait=0.05, keys=FRTO_KEYS)
    p.step(seg(11)[1], sack=[(seg(31)[0], seg(32)[1])], note="32 SACKed", wait=0.05, keys=FRTO_KEYS)


def original_delayed(p, sacked_to, keys):
    """Round 1 (cwnd 20), then twenty segments (11..30): 12..sacked_to are
    SACKed before 11, which is resent; 11's original then arrives, the
    ACK echoing its TSval, older than the retransmission's."""
    p.connect()
    p.burst(10, 10)
    p.step(p.seg(10)[1], keys=keys)
    p.burst(20, 20)
    p.ack(p.seg(11)[0], sack=[(p.seg(12)[0], p.seg(sacked_to)[1])], note=f"12..{sacked_to} before 11")
    p.collect(1, timeout=0.5)
    p.info(*keys)
    time.sleep(0.01)
    p.ecr_fixed = p.tsval_of[p.seg(11)[0]]
    p.step(p.seg(sacked_to)[1], note="11's original: echo of its TSval", wait=0.05, keys=keys)
    p.ecr_fixed = None


def scenario_undo_eifel(lab):
    """undo-eifel.seg: a spurious fast retransmission found by the
    timestamps (RFC 3522): the ACK for 11's original covers everything;
    then the D-SACK of the retransmission."""
    keys = INFO + ("total_retrans", "dsack_dups")
    p = Peer(lab, OPTS_SACK_TS)
    original_delayed(p, 30, keys)
    p.step(p.seg(30)[1], sack=[p.seg(11)], note="D-SACK of the retransmission", wait=0.05, keys=keys)


def scenario_undo_partial(lab):
    """undo-partial.seg: a partial ACK for an original (timestamps) during
    recovery, nothing resent still in flight: Linux's tcp_try_undo_partial.
    12..19 SACKed; the ACK for 11's original stops at 19, 20..30 still
    out."""
    keys = INFO + ("total_retrans",)
    p = Peer(lab, OPTS_SACK_TS)
    original_delayed(p, 19, keys)
    p.step(p.seg(30)[1], note="all", wait=0.05, keys=keys)


def cookie_exchange(p, sport, syn_opts, note):
    """One SYN from sport and the SYN-ACK it gets: (seq, TSval or None)."""
    p.sock.send(Ether(src=p.lab.mac_p, dst=p.lab.mac_k) / l3() /
                TCP(sport=sport, dport=PORT_K, flags="S", seq=PEER_ISN, window=p.win, options=syn_opts))
    while True:
        a = p.recv(2)
        assert a, "no SYN-ACK"
        if a[TCP].dport == sport:
            break
    print(f"# {note}: sport {sport} > {a[TCP].flags} seq {a[TCP].seq:#010x} ack {a[TCP].ack - PEER_ISN} "
          f"win {a[TCP].window} ecn{ECN[tos_of(a) & 3]} opts {a[TCP].options}")
    tsval = next((v[0] for k, v in a[TCP].options if k == "Timestamp"), None)
    if tsval is not None:
        print(f"#   TSval low 6 bits (before the per-pair offset) unknown; TSval {tsval:#010x}")
    return a[TCP].seq, tsval


def cookie_answers(p, sport, secs=0.5):
    got = []
    end = time.monotonic() + secs
    while True:
        a = p.recv(end - time.monotonic())
        if a is None:
            return got
        if a[TCP].dport == sport:
            print(f"#   answer: {a[TCP].flags} seq {a[TCP].seq:#010x} ack {a[TCP].ack:#010x} opts {a[TCP].options}")
            got.append(a)


def scenario_syncookie(lab):
    """syncookie-*.seg: run with net.ipv4.tcp_syncookies=2 (a cookie for
    every SYN). The SYN-ACKs for SYNs with and without timestamps, with
    ECN; a forged ACK, a valid one with a wrong TS echo, and the valid
    ACK that makes the connection the program accepts."""
    p = Peer(lab, OPTS_SACK_TS)
    enter_netns(NS_P)
    p.sock = conf.L2socket(iface=IF_P)
    def ack(sport, seq, ackno, opts, flags="A", payload=b""):
        p.sock.send(Ether(src=lab.mac_p, dst=lab.mac_k) / l3() /
                    TCP(sport=sport, dport=PORT_K, flags=flags, seq=seq, ack=ackno, window=p.win,
                        options=opts) / payload)
    c1, ts1 = cookie_exchange(p, 41001, OPTS_SACK_TS, "mss 1460 sackOK TS wscale 7")
    c2, _ = cookie_exchange(p, 41002, OPTS_SACK, "mss 1460 sackOK wscale 7, no TS")
    cookie_exchange(p, 41003, [("MSS", 1300)], "mss 1300 only")
    cookie_exchange(p, 41004, [("MSS", 1000)], "mss 1000 only")
    cookie_exchange(p, 41005, [("MSS", 1440), ("NOP", None), ("WScale", 2)], "mss 1440 wscale 2")
    cookie_exchange(p, 41006, [("MSS", 9000), ("SAckOK", b""), ("Timestamp", (5000, 0)), ("NOP", None), ("WScale", 14)], "mss 9000 sack TS wscale 14")
    p.sock.send(Ether(src=lab.mac_p, dst=lab.mac_k) / l3() /
                TCP(sport=41007, dport=PORT_K, flags="SEC", seq=PEER_ISN, window=p.win, options=OPTS_SACK_TS))
    a = p.recv(2)
    print(f"# ECN-setup SYN with TS: > {a[TCP].flags} opts {a[TCP].options}")
    print("# forged ACK (no SYN sent from 41010, ack 0x12345678)")
    ack(41010, PEER_ISN + 1, 0x12345678, [])
    cookie_answers(p, 41010)
    print("# ACK of 41002's cookie + 1 with a wrong sequence number (seq PEER_ISN + 5)")
    ack(41002, PEER_ISN + 5, c2 + 1, [])
    cookie_answers(p, 41002)
    print("# ACK of 41002's cookie with ack off by one (cookie + 2)")
    ack(41002, PEER_ISN + 1, c2 + 2, [])
    cookie_answers(p, 41002)
    print("# ACK with data of 41002's cookie (valid, no TS)")
    ack(41002, PEER_ISN + 1, c2 + 1, [], flags="PA", payload=b"hello")
    cookie_answers(p, 41002)
    print("app:", lab.line())


def scenario_syncookie_mss(lab):
    """syncookie-mss*.seg (v6-syncookie-mss.seg over IPv6): run with
    net.ipv4.tcp_syncookies=2. A SYN offering only mss COOKIE_MSS (from
    the environment, 1300 by default; 0: no option at all; the window
    from COOKIE_WIN, 65535 by default); its cookie's
    ACK makes the connection; the MSS the kernel then sends with (TCP_INFO
    snd_mss): what the cookie kept, Linux's table rounding. Without the
    sysctl, the same through a kept child: the MSS taken as it is."""
    mss = int(os.environ.get("COOKIE_MSS", "1300"))
    opts = [("MSS", mss)] if mss else []
    p = Peer(lab, opts, win=int(os.environ.get("COOKIE_WIN", "65535")))
    enter_netns(NS_P)
    p.sock = conf.L2socket(iface=IF_P)
    c, _ = cookie_exchange(p, 41101, opts, f"mss {mss} only" if mss else "no options")
    p.sock.send(Ether(src=lab.mac_p, dst=lab.mac_k) / l3() /
                TCP(sport=41101, dport=PORT_K, flags="A", seq=PEER_ISN + 1, ack=c + 1, window=p.win))
    print("app:", lab.line())
    info = lab.info()
    print(f"# after the cookie's ACK: snd_mss {info['snd_mss']} advmss {info['advmss']}")


def scenario_syncookie_overflow(lab):
    """syncookie-*.seg: with net.ipv4.tcp_syncookies=1 (Linux's default)
    and the application's listen(1), SYNs that are never completed: which
    SYN-ACKs are cookies (without timestamps a cookie SYN-ACK carries only
    the MSS option)."""
    p = Peer(lab, OPTS_SACK)
    enter_netns(NS_P)
    p.sock = conf.L2socket(iface=IF_P)
    for i in range(1, 6):
        cookie_exchange(p, 42000 + i, OPTS_SACK, f"SYN {i}, listen(1), none completed")


def scenario_synack_retransmit(lab):
    """syncookie-queue-full.seg: a half-open connection of a listener: when
    its SYN-ACKs are resent, and when it is given up (a RST-less end: the
    peer's late ACK then gets a RST from the listener)."""
    p = Peer(lab, OPTS_SACK)
    enter_netns(NS_P)
    p.sock = conf.L2socket(iface=IF_P)
    t0 = time.monotonic()
    cookie_exchange(p, 43001, OPTS_SACK, "SYN at 0")
    end = t0 + 70
    while time.monotonic() < end:
        a = p.recv(end - time.monotonic())
        if a is not None and a[TCP].dport == 43001:
            print(f"{time.monotonic() - t0:8.3f}  > {a[TCP].flags}")


def scenario_md5_options(lab):
    """md5-active.seg (tcp_opt.c, auth_opts): where Linux looks for an MD5
    signature option (tcp_do_parse_auth_options) before anything else,
    with a listener that has no keys: a SYN with each layout of raw option
    bytes below, whether a SYN-ACK comes, and the TcpExt MD5 counters
    that moved (TCPMD5Unexpected: a signature found; nothing: dropped
    uncounted, or answered). On 6.18.44, both families: answered with 12
    bytes and after 4 NOPs (16 left), dropped uncounted for the zero-length,
    overlong and wrong-length options and two signatures with 18 or more
    left, TCPMD5Unexpected for the one signature."""
    def counters():
        out = subprocess.run(["ip", "netns", "exec", NS_K, "nstat", "-az"], capture_output=True, text=True).stdout
        return {f[0]: int(f[1]) for f in (line.split() for line in out.splitlines()) if "MD5" in f[0]}
    md5 = lambda size: "13%02x" % size + "00" * (size - 2)
    cases = [
        ("zero-length option first, 12 bytes", "0500" + "01" * 10),
        ("zero-length option first, 20 bytes", "0500" + "01" * 18),
        ("overlong option first, 20 bytes", "0530" + "01" * 18),
        ("kind 19 of 10 bytes first, 12 bytes", md5(10) + "0101"),
        ("kind 19 of 10 bytes after 4 NOPs, 20 bytes", "01" * 4 + md5(10) + "01" * 6),
        ("kind 19 of 10 bytes first, 20 bytes", md5(10) + "01" * 10),
        ("kind 19 of 20 bytes first, 20 bytes", md5(20)),
        ("one signature, 20 bytes", "0101" + md5(18)),
        ("two signatures, 40 bytes", "0101" + md5(18) + "0101" + md5(18)),
    ]
    p = Peer(lab, OPTS_SACK)
    enter_netns(NS_P)
    p.sock = conf.L2socket(iface=IF_P)
    for sport, (note, raw) in enumerate(cases, 44001):
        opts = bytes.fromhex(raw)
        opts += b"\0" * (-len(opts) % 4)
        before = counters()
        p.sock.send(Ether(src=lab.mac_p, dst=lab.mac_k) / l3() /
                    TCP(sport=sport, dport=PORT_K, flags="S", seq=PEER_ISN, window=p.win,
                        dataofs=5 + len(opts) // 4) / Raw(opts))
        a, end = None, time.monotonic() + 1
        while a is None and time.monotonic() < end:
            a = p.recv(end - time.monotonic())
            if a is not None and a[TCP].dport != sport:
                a = None
        after = counters()
        moved = " ".join(f"{k} +{after[k] - before[k]}" for k in after if after[k] != before.get(k))
        print(f"# {note}: {'> ' + str(a[TCP].flags) if a is not None else 'no answer'} {moved}")


def md5_opts_text(p):
    """A segment's options by name, in order (TS without its values)."""
    names = {"NOP": "nop", "MD5": "md5", "Timestamp": "TS", "MSS": "mss", "WScale": "wscale", "SAckOK": "sackOK",
             "SAck": "sack"}
    return ",".join(names.get(k, str(k)) for k, _ in p[TCP].options)


class SignedPeer:
    """A raw IPv4 peer that signs every segment with RFC 2385's option
    (kind 19: MD5 over the pseudo-header, the TCP header without options
    and its checksum zeroed, the data and the key), with timestamps."""

    def __init__(self, lab, key, sport):
        import hashlib
        self.md5 = hashlib.md5
        self.lab, self.key, self.sport = lab, key.encode(), sport
        self.ts = 100
        self.ecr = 0
        self.t0 = time.monotonic()
        enter_netns(NS_P)
        self.sock = conf.L2socket(iface=IF_P)

    def send(self, flags, seq, ack, opts_before=(), note="", payload=b"", signed=True, dport=PORT_K):
        self.ts += 10
        opts = [*((("NOP", None), ("NOP", None), ("MD5", bytes(16))) if signed else ()), *opts_before,
                ("NOP", None), ("NOP", None), ("Timestamp", (self.ts, self.ecr))]
        pkt = (Ether(src=self.lab.mac_p, dst=self.lab.mac_k) / IP(src=ADDR_P, dst=ADDR_K) /
               TCP(sport=self.sport, dport=dport, flags=flags, seq=seq, ack=ack, window=1000, options=opts) /
               payload)
        raw = bytes(pkt[TCP])
        hdr = bytearray(raw[:20])
        hdr[16:18] = b"\0\0"
        pseudo = socket.inet_aton(ADDR_P) + socket.inet_aton(ADDR_K) + bytes([0, 6]) + struct.pack("!H", len(raw))
        digest = self.md5(pseudo + bytes(hdr) + raw[(raw[12] >> 4) * 4:] + self.key).digest()
        pkt[TCP].options = [(k, digest if k == "MD5" else v) for k, v in opts]
        del pkt[TCP].chksum
        print(f"{time.monotonic() - self.t0:8.3f}  < {flags.replace('A', '.')} {note}")
        self.sock.send(pkt)

    def recv(self, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r, _, _ = select.select([self.sock], [], [], end - time.monotonic())
            if not r:
                return None
            p = self.sock.recv()
            if p is None or not p.haslayer(TCP) or p[IP].src != ADDR_K or p[TCP].dport != self.sport:
                continue
            for k, v in p[TCP].options:
                if k == "Timestamp":
                    self.ecr = v[0]
            print(f"{time.monotonic() - self.t0:8.3f}  > {str(p[TCP].flags).replace('A', '.')} "
                  f"<{md5_opts_text(p)}>")
            return p
        return None

    def connect(self, opts_before=(("MSS", 1460),), note="SYN, signed, with timestamps"):
        self.send("S", PEER_ISN, 0, opts_before=opts_before, note=note)
        p = self.recv(3)
        assert p is not None and p[TCP].flags.S, "no SYN-ACK"
        self.iss = p[TCP].seq
        self.send("A", PEER_ISN + 1, self.iss + 1, note="ACK")
        assert self.lab.line() == "accepted"


def md5_timewait_fins(lab, closing):
    """The kernel closes (closing: "s", shutdown; "c", close, an orphan),
    the peer ACKs its FIN, sends its own, and sends it again."""
    p = SignedPeer(lab, "ts", PORT_P)
    p.connect()
    lab.app.stdin.write(closing + "\n")
    lab.app.stdin.flush()
    f = p.recv(2)
    assert f is not None and f[TCP].flags.F, "no FIN"
    p.send("A", PEER_ISN + 1, f[TCP].seq + 1, note="ACK of its FIN")
    time.sleep(0.1)
    p.send("FA", PEER_ISN + 1, f[TCP].seq + 1, note="FIN")
    p.recv(1)
    time.sleep(0.1)
    p.send("FA", PEER_ISN + 1, f[TCP].seq + 1, note="FIN again")
    p.recv(1)


def scenario_md5_timewait(lab):
    """md5-timestamps.seg: where the signature goes beside timestamps in
    what Linux sends as its connection closes, IPv4. The program shuts
    its side down (shutdown, the socket still held): the ACK of the
    peer's FIN, and of that FIN again."""
    if SIX:
        sys.exit("md5-timewait: IPv4 only")
    md5_timewait_fins(lab, "s")


scenario_md5_timewait.md5 = "ts"


def scenario_md5_orphan(lab):
    """md5-timestamps.seg: the same when the program closes (an orphan in
    FIN-WAIT-2 when the peer's FIN comes)."""
    if SIX:
        sys.exit("md5-orphan: IPv4 only")
    md5_timewait_fins(lab, "c")


scenario_md5_orphan.md5 = "ts"


def md5_orphan_data(lab, signed):
    """md5-passive.seg: data after the program closed, to its orphan in
    FIN-WAIT-2, signed or not; no listener on the peer's port."""
    if SIX:
        sys.exit("IPv4 only")
    p = SignedPeer(lab, "ts", PORT_P)
    p.connect()
    lab.app.stdin.write("c\n")
    lab.app.stdin.flush()
    f = p.recv(2)
    assert f is not None and f[TCP].flags.F, "no FIN"
    p.send("A", PEER_ISN + 1, f[TCP].seq + 1, note="ACK of its FIN")
    time.sleep(0.1)
    p.send("PA", PEER_ISN + 1, f[TCP].seq + 1, payload=bytes(10), signed=signed,
           note="10 bytes " + ("signed" if signed else "unsigned"))
    if p.recv(1) is None:
        print("   (no answer)")


def scenario_md5_orphan_data(lab):
    """Signed data to the orphan."""
    md5_orphan_data(lab, True)


def scenario_md5_orphan_data_unsigned(lab):
    """Unsigned data to the orphan."""
    md5_orphan_data(lab, False)


scenario_md5_orphan_data.md5 = scenario_md5_orphan_data_unsigned.md5 = "ts"


def scenario_md5_synack_sack(lab):
    """md5-timestamps.seg, md5-passive.seg: a signed SYN offering SACK and
    timestamps; which options the SYN-ACK keeps."""
    if SIX:
        sys.exit("IPv4 only")
    p = SignedPeer(lab, "ts", PORT_P)
    p.connect(opts_before=(("MSS", 1460), ("SAckOK", b"")), note="SYN, signed, SACK and timestamps")


scenario_md5_synack_sack.md5 = "ts"


def scenario_md5_rst(lab):
    """md5-active.seg: a signed segment for no connection is answered only
    by a listener on the port the segment comes from, with a key for the
    peer and the signature right: an ACK to port 9999 (nothing there) from
    port 40000 (no listener) and from port 8080 (the kernel's listener,
    key "ts"), and the same unsigned from 40000."""
    if SIX:
        sys.exit("IPv4 only")
    for sport, signed in ((40000, True), (8080, True), (40000, False)):
        p = SignedPeer(lab, "ts", sport)
        p.send("A", PEER_ISN, 12345, dport=9999, signed=signed,
               note=f"from {sport} to 9999, {'signed' if signed else 'unsigned'}")
        if p.recv(0.5) is None:
            print("   (no answer)")


scenario_md5_rst.md5 = "ts"


def main():
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    fn = globals().get("scenario_" + name.replace("-", "_"))
    if not fn:
        sys.exit("scenarios: " + " ".join(k[9:] for k in globals() if k.startswith("scenario_")))
    signal.alarm(120)
    # The scripts about the probe run with Linux's default (3).
    sysctls = (() if name.startswith("tlp") else NO_TLP) + tuple(sys.argv[2:])
    with Lab(sysctls=sysctls, md5=getattr(fn, "md5", None)) as lab:
        print(f"# {name}: Linux {os.uname().release}, reno, IPv{6 if SIX else 4}, sysctls {' '.join(sysctls)}")
        fn(lab)


if __name__ == "__main__":
    main()
