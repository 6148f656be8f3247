#!/usr/bin/env bats
# The link layer against a kernel peer: ARP, ping, pcap, offloads, tun,
# gateway routing, counted drops. The stack runs in the test host.

bats_require_minimum_version 1.5.0

load helpers
load host

teardown() {
	host_stop
	topo_down
}

# ping_from_peer: three pings from the kernel peer to the stack, answered.
ping_from_peer() {
	run timeout 20 ip netns exec "$PEER_NETNS" ping -c 3 -i 0.2 -W 2 "${USTCP_ADDR%/*}"
	assert_success
	assert_output --partial "3 received"
}

@test "ping from the kernel peer, offloads on: answered, neighbour has our MAC, pcap shows it" {
	topo_up
	export USTCP_PCAP=$BATS_TEST_TMPDIR/cap.pcap
	host_start
	ping_from_peer
	mac=$(in_stack cat "/sys/class/net/$USTCP_IFACE/address")
	run in_peer ip neigh show "${USTCP_ADDR%/*}"
	assert_output --partial "lladdr $mac"
	host_stop
	run timeout 10 tcpdump -nr "$USTCP_PCAP"
	assert_output --partial "ARP, Request who-has ${USTCP_ADDR%/*} tell $PEER_ADDR"
	assert_output --partial "ARP, Reply ${USTCP_ADDR%/*} is-at $mac"
	[ "$(grep -c "$PEER_ADDR > ${USTCP_ADDR%/*}: ICMP echo request" <<<"$output")" -eq 3 ]
	[ "$(grep -c "${USTCP_ADDR%/*} > $PEER_ADDR: ICMP echo reply" <<<"$output")" -eq 3 ]
	[ "$(host_counter icmp-echo-in)" -eq 3 ]
}

@test "ping from the kernel peer with offloads off" {
	topo_up --no-offload
	host_start
	ping_from_peer
	run in_peer arp -n "${USTCP_ADDR%/*}"
	assert_output --partial "$(in_stack cat "/sys/class/net/$USTCP_IFACE/address")"
}

@test "ping over a tun interface: no Ethernet, no ARP, raw-IP pcap" {
	topo_up --tun
	export USTCP_PCAP=$BATS_TEST_TMPDIR/cap.pcap
	host_start
	ping_from_peer
	host_stop
	run timeout 10 tcpdump -nr "$USTCP_PCAP"
	assert_output --partial "RAW"
	refute_output --partial "ARP"
	[ "$(grep -c 'ICMP echo reply' <<<"$output")" -eq 3 ]
}

@test "the stack pings the peer: ARP resolution, queued request, replies" {
	topo_up
	export USTCP_PCAP=$BATS_TEST_TMPDIR/cap.pcap
	run in_stack timeout 20 "$HOST" -p "$PEER_ADDR" -c 3 -i 0.1
	assert_success
	assert_output --partial "3 packets transmitted, 3 received"
	run --separate-stderr timeout 10 tcpdump -nr "$USTCP_PCAP"
	assert_line --index 0 --partial "ARP, Request who-has $PEER_ADDR tell ${USTCP_ADDR%/*}"
	assert_line --index 1 --partial "ARP, Reply $PEER_ADDR is-at"
	assert_line --index 2 --partial "ICMP echo request"
}

@test "an unanswered neighbour is reported unreachable after three ARP requests" {
	topo_up
	export USTCP_PCAP=$BATS_TEST_TMPDIR/cap.pcap
	absent=${PEER_ADDR%.*}.77
	run in_stack timeout 20 "$HOST" -p "$absent" -c 2 -i 0.1 -s "$BATS_TEST_TMPDIR/counters"
	assert_failure 1
	assert_output --partial "$absent: No route to host"
	[ "$(timeout 10 tcpdump -nr "$USTCP_PCAP" 2>/dev/null | grep -c "who-has $absent")" -eq 3 ]
	[ "$(host_counter 'drop tx-arp-failed')" -eq 2 ]
}

@test "off-link destinations go through USTCP_GW; without it: network unreachable" {
	topo_up
	export USTCP_PCAP=$BATS_TEST_TMPDIR/cap.pcap
	run in_stack timeout 20 "$HOST" -p 192.0.2.1 -c 1 -W 0.5
	assert_output --partial "Network is unreachable"
	USTCP_GW=$PEER_ADDR run in_stack timeout 20 "$HOST" -p 192.0.2.1 -c 1 -W 0.5
	peer_mac=$(in_peer cat "/sys/class/net/$PEER_IFACE/address")
	run timeout 10 tcpdump -enr "$USTCP_PCAP"
	assert_output --partial "Request who-has $PEER_ADDR tell ${USTCP_ADDR%/*}"
	assert_output --regexp "> $peer_mac, .* ${USTCP_ADDR%/*} > 192.0.2.1: ICMP echo request"
}

@test "checksum offload: frames with a checksum not yet filled in are accepted" {
	topo_up
	host_start
	# SYNs from the kernel with tx checksum offload on veth: the packet
	# socket sees CHECKSUM_PARTIAL frames (TP_STATUS_CSUMNOTREADY), which
	# TCP takes (no socket at the port: each is answered with a RST).
	run timeout 10 ip netns exec "$PEER_NETNS" python3 -c '
import socket, sys
for i in range(5):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.connect_ex((sys.argv[1], 9))' "${USTCP_ADDR%/*}"
	assert_success
	wait_for 5 host_counter_reached 'drop tcp-no-socket' 5
	host_stop
	[ "$(host_counter rx-csum-offloaded)" -ge 5 ]
	[ "$(host_counter 'drop tcp-no-socket')" -ge 5 ]
	[ "$(host_counter 'drop tcp-csum')" -eq 0 ]
}

# gso_frame_from_peer: one TCP segment of 60000 bytes from the peer to
# the stack, sent as a GSO frame (a virtio_net_hdr of type TCPV4) through
# a packet socket: veth hands it over unsegmented, as one frame of about
# 60 KB, as a kernel sender's TSO would. (Only protocols the stack walks
# pass its filter: not a UDP GSO send.)
gso_frame_from_peer() {
	local mac
	mac=$(in_stack cat "/sys/class/net/$USTCP_IFACE/address") || return 1
	timeout 10 ip netns exec "$PEER_NETNS" python3 - "$PEER_IFACE" "$mac" "$PEER_ADDR" "${USTCP_ADDR%/*}" <<'PY'
import socket, struct, sys
ifname, mac, src, dst = sys.argv[1:]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.setsockopt(263, 15, 1)  # SOL_PACKET, PACKET_VNET_HDR
s.bind((ifname, 0))
me = open(f"/sys/class/net/{ifname}/address").read().strip()
eth = bytes.fromhex(mac.replace(":", "")) + bytes.fromhex(me.replace(":", "")) + b"\x08\x00"
data = b"y" * 60000
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 20 + len(data), 1, 0x4000, 64, 6, 0,
                 socket.inet_aton(src), socket.inet_aton(dst))
t = sum(struct.unpack("!10H", ip))
while t >> 16: t = (t & 0xffff) + (t >> 16)
ip = ip[:10] + struct.pack("!H", ~t & 0xffff) + ip[12:]
tcp = struct.pack("!HHIIBBHHH", 40000, 9, 1, 1, 5 << 4, 0x18, 65535, 0, 0)
# NEEDS_CSUM, TCPV4, header length, segment size, checksum start, offset
vnet = struct.pack("=BBHHHH", 1, 1, 54, 1448, 34, 16)
s.send(vnet + eth + ip + tcp + data)
PY
}

@test "a 64 KiB GSO super-frame from the veth peer is received whole" {
	topo_up
	host_start
	run gso_frame_from_peer
	assert_success
	wait_for 5 host_counter_reached rx-bytes 60000
	host_stop
	[ "$(host_counter 'drop rx-truncated')" -eq 0 ]
	[ "$(host_counter rx-bytes)" -ge 60000 ]
	[ "$(host_counter rx-frames)" -le 3 ]
}

# huge_maps PID: the sizes (KiB) of PID's mappings advised for huge pages
# (MADV_HUGEPAGE: "hg" among their VmFlags), one a line.
huge_maps() {
	awk '/^[0-9a-f]+-[0-9a-f]+ / { size = 0 } /^Size:/ { size = $2 } /^VmFlags:/ && / hg/ { print size }' \
		"/proc/$1/smaps"
}

@test "the receive buffers move to huge pages with the first coalesced frame, not before" {
	[ -d /sys/kernel/mm/transparent_hugepage ] || skip "this kernel has no transparent huge pages"
	topo_up
	host_start
	local pid
	pid=$(cat "$BATS_TEST_TMPDIR/host.ready")
	ping_from_peer
	run huge_maps "$pid"
	assert_success
	assert_output ""
	# A frame larger than the MTU (as GRO makes them): the 32 buffers of
	# 64 KiB go to two huge pages.
	run gso_frame_from_peer
	assert_success
	wait_for 5 host_counter_reached rx-bytes 60000
	run huge_maps "$pid"
	assert_success
	assert_output "4096"
	ping_from_peer
}

# The stack's own socket gets its receive ring once frames stream in, on a
# second socket that takes the first's place (stack/link.c, ring_switch):
# echo requests sent without waiting for any answer, faster than the stack
# takes them, are each answered once, none lost while the kernel moved to
# the new socket and none taken from both (rx-twice counts those dropped).
# Setting the ring on the bound socket instead lost 60 of 50000 here; a
# switch whose new ring alone took frames while the first socket's backlog
# was read lost thousands. On a loaded machine the stack may fall behind
# and the kernel drop requests for want of room in the socket or the ring:
# those it counts (rx-overrun), and with them every request is accounted
# for; one lost in the switch is counted by no one. (A request the first
# socket had no room for while the new one took it too is counted there
# and answered: hence at least, not exactly, the requests sent.)
echo_requests_accounted() {
	host_counter_reached icmp-echo-in 0 || return 1
	[ $(($(host_counter icmp-echo-in) + $(host_counter "drop rx-overrun"))) -ge "$1" ]
}

@test "the receive ring set while frames stream in: none lost, none taken twice" {
	topo_up --no-offload
	host_start
	ping_from_peer
	host_counter_reached icmp-echo-in 3
	[ "$(host_counter rx-ring-set)" -eq 0 ] # not for a few frames
	local mac
	mac=$(in_stack cat "/sys/class/net/$USTCP_IFACE/address")
	run timeout 60 ip netns exec "$PEER_NETNS" /usr/bin/python3 "$BATS_TEST_DIRNAME/../shim/echo_burst.py" \
		"$PEER_IFACE" "$PEER_ADDR" "${USTCP_ADDR%/*}" "$mac" 50000
	assert_success
	assert_output --partial "sent 50000 "
	wait_for 10 echo_requests_accounted 50003
	host_stop
	echo "rx-frames $(host_counter rx-frames), rx-ring $(host_counter rx-ring), rx-twice $(host_counter "drop rx-twice"), rx-overrun $(host_counter "drop rx-overrun")"
	[ $(($(host_counter icmp-echo-in) + $(host_counter "drop rx-overrun"))) -ge 50003 ]
	[ "$(host_counter icmp-echo-in)" -le 50003 ] # none answered twice
	[ "$(host_counter rx-ring-set)" -eq 1 ]
	# Most through the ring (before it, a batch or a few).
	[ "$(host_counter rx-ring)" -gt $(($(host_counter icmp-echo-in) - 10000)) ]
}

# (Frames too short to hold our address never pass the socket's filter;
# the unit tests cover truncation.)
@test "malformed frames are dropped and counted, and the stack keeps answering" {
	topo_up
	host_start
	mac=$(in_stack cat "/sys/class/net/$USTCP_IFACE/address")
	run timeout 20 ip netns exec "$PEER_NETNS" python3 - "$PEER_IFACE" "$mac" "$PEER_ADDR" "${USTCP_ADDR%/*}" <<'PY'
import socket, struct, sys
ifname, mac, src, dst = sys.argv[1:]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
me = open(f"/sys/class/net/{ifname}/address").read().strip()
eth = bytes.fromhex(mac.replace(":", "")) + bytes.fromhex(me.replace(":", "")) + b"\x08\x00"
def csum(b):
    if len(b) % 2: b += b"\0"
    t = sum(struct.unpack(f"!{len(b)//2}H", b))
    while t >> 16: t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff
def ip(total=28, ihl=5, ver=4, frag=0, fix=True, proto=1, opts=b""):
    h = struct.pack("!BBHHHBBH4s4s", ver << 4 | ihl, 0, total, 1, frag, 64, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst)) + opts
    if fix: h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h
icmp = b"\x08\0" + b"\0\0" + b"\0\1\0\1"
icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
frames = [
    eth + ip(fix=False) + icmp,                 # bad header checksum
    eth + ip(ver=6) + icmp,                     # version 6
    eth + ip(ihl=4) + icmp,                     # IHL too small
    eth + ip(total=200) + icmp,                 # total length beyond the frame
    eth + ip(frag=0x2000) + icmp,               # fragment (MF)
    eth + ip(ihl=6, total=32, opts=b"\x07\x00\x00\x00") + icmp,  # option length 0
    eth + ip() + icmp[:2] + b"\xff\xff" + icmp[4:],  # bad ICMP checksum
]
for f in frames: s.send(f)
PY
	assert_success
	ping_from_peer
	host_stop
	[ "$(host_counter 'drop ip-csum')" -eq 1 ]
	[ "$(host_counter 'drop ip-version')" -eq 1 ]
	[ "$(host_counter 'drop ip-hdr-len')" -eq 1 ]
	[ "$(host_counter 'drop ip-total-len')" -eq 1 ]
	[ "$(host_counter 'drop ip-fragment')" -eq 1 ]
	[ "$(host_counter 'drop ip-options')" -eq 1 ]
	[ "$(host_counter 'drop icmp-csum')" -eq 1 ]
}

@test "bad configuration: one line naming the variable and the value" {
	topo_up
	USTCP_ADDR=10.9.0.300/24 run in_stack timeout 5 "$HOST" -d 1
	assert_failure 2
	assert_output 'ustcp-host: USTCP_ADDR="10.9.0.300/24": not an IPv4 address/prefix (e.g. 10.9.0.2/24)'
	USTCP_MTU=12 run in_stack timeout 5 "$HOST" -d 1
	assert_failure 2
	assert_output --partial 'USTCP_MTU="12"'
	[ "${#lines[@]}" -eq 1 ]
	USTCP_IFACE=nosuch0 run in_stack timeout 5 "$HOST" -d 1
	assert_failure
	assert_output 'ustcp-host: USTCP_IFACE="nosuch0": no such interface'
}
