#!/usr/bin/python3
"""The kernel's behaviour that steering by port relies on (docs/architecture.md
§6, "Steering frames by port"), checked on this kernel. Run as root in the
stack's namespace of a topology whose peer sends TCP SYNs to ADDR on ports
7001, 7002 and 7003 (the peer's own retransmissions, through a static
neighbour entry):

  fanout_facts.py IFACE ADDR

Three packet sockets join one PACKET_FANOUT_CBPF group: "broker" (no lock)
and two members whose filters (IPv4 to ADDR) are locked, as the broker
hands them out. Prints one "ok ..." line per fact; exits 1 at the first one
that does not hold.
"""
import ctypes
import errno
import os
import select
import socket
import struct
import sys
import time

SOL_PACKET = 263
PACKET_FANOUT = 18
PACKET_FANOUT_DATA = 22
PACKET_IGNORE_OUTGOING = 23
PACKET_FANOUT_CBPF = 6
SO_ATTACH_FILTER = 26
SO_LOCK_FILTER = 44
ETH_P_IP = 0x0800
GROUP = 4243

_keep = []


def fprog(ins):
    code = b"".join(struct.pack("HBBI", *i) for i in ins)
    buf = ctypes.create_string_buffer(code)
    _keep.append(buf)
    return struct.pack("HL", len(ins), ctypes.addressof(buf))


def member(iface, addr, lock):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    # A socket filter sees the frame from its Ethernet header.
    a = struct.unpack("!I", socket.inet_aton(addr))[0]
    s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog([
        (0x28, 0, 0, 12),        # ldh [12]: EtherType
        (0x15, 0, 3, ETH_P_IP),  # IPv4?
        (0x20, 0, 0, 30),        # ld [30]: destination
        (0x15, 0, 1, a),
        (0x06, 0, 0, 0x40000),   # accept
        (0x06, 0, 0, 0),         # drop
    ]))
    if lock:
        s.setsockopt(socket.SOL_SOCKET, SO_LOCK_FILTER, 1)
    s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    s.bind((iface, ETH_P_IP))
    s.setsockopt(SOL_PACKET, PACKET_FANOUT, GROUP | (PACKET_FANOUT_CBPF << 16))
    s.setblocking(False)
    return s


def steering(ports):
    """The group's program: the TCP destination port's member index. It
    sees the frame from its IP header (no Ethernet header: the fanout hook
    runs before packet_rcv pushes it back)."""
    ins = [(0xb1, 0, 0, 0),      # ldxb 4*([0]&0xf): IP header length
           (0x48, 0, 0, 2)]      # ldh [x+2]: destination port
    for i, (port, idx) in enumerate(ports):
        ins += [(0x15, 0, 1, port), (0x06, 0, 0, idx)]
    ins.append((0x06, 0, 0, 0))  # nobody's: the broker's
    return fprog(ins)


def ports_seen(s, wait=2.5):
    """The TCP destination ports of the frames s received within wait."""
    seen = set()
    end = time.monotonic() + wait
    while time.monotonic() < end:
        if not select.select([s], [], [], max(0, end - time.monotonic()))[0]:
            continue
        while True:
            try:
                f = s.recv(65536)
            except BlockingIOError:
                break
            if len(f) >= 38 and f[23] == 6:
                ihl = (f[14] & 0xf) * 4
                seen.add(struct.unpack("!H", f[14 + ihl + 2:14 + ihl + 4])[0])
    return seen


def drain(*socks):
    for s in socks:
        while True:
            try:
                s.recv(65536)
            except BlockingIOError:
                break


def check(what, cond, detail=""):
    if not cond:
        print(f"not ok {what} {detail}")
        sys.exit(1)
    print(f"ok {what}")


def main(iface, addr):
    broker = member(iface, addr, False)
    b = member(iface, addr, True)
    c = member(iface, addr, True)
    prog = steering([(7001, 1), (7002, 2)])
    try:
        b.setsockopt(SOL_PACKET, PACKET_FANOUT_DATA, prog)
        check("a member with a locked filter cannot set the group's program", False, "(it could)")
    except OSError as e:
        check("a member with a locked filter cannot set the group's program (EPERM)", e.errno == errno.EPERM,
              os.strerror(e.errno))
    broker.setsockopt(SOL_PACKET, PACKET_FANOUT_DATA, prog)
    check("the broker's unlocked member sets it", True)
    drain(broker, b, c)
    sb, sc, sbr = ports_seen(b), ports_seen(c, 0.5), ports_seen(broker, 0.5)
    check("each member gets only its port, the broker the rest", sb == {7001} and sc == {7002} and 7003 in sbr and
          not ({7001, 7002} & sbr), f"b {sb} c {sc} broker {sbr}")
    # A dup of b's socket held elsewhere (the broker's) keeps b in the group.
    held = os.dup(b.fileno())
    b.close()
    drain(broker, c)
    hs = socket.socket(fileno=held)
    sb, sc = ports_seen(hs), ports_seen(c, 0.5)
    check("a member whose process closed it stays while a dup is held", sb == {7001} and sc == {7002},
          f"held {sb} c {sc}")
    # Its last close compacts the array: c takes index 1, b's port goes to c.
    hs.close()
    drain(broker, c)
    sc, sbr = ports_seen(c), ports_seen(broker, 0.5)
    check("the last close moves the last member into the hole (b's port now reaches c)",
          7001 in sc and 7002 not in sc, f"c {sc} broker {sbr}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
