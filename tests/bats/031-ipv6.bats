#!/usr/bin/env bats
# IPv6 on the link against a kernel peer: DAD, neighbour discovery both
# ways, ping6 both ways (global and link-local addresses), an unanswered
# neighbour reported unreachable, malformed and fragmented datagrams dropped
# and counted. The stack runs in the test host; the kernel peer has IPv6
# (ustcp-netns --ipv6), the kernel of the stack's namespace has none.

bats_require_minimum_version 1.5.0

load helpers
load host

teardown() {
	host_stop
	topo_down
}

# our_link_local: the stack's fe80:: address, as Linux derives it from the
# interface's MAC (modified EUI-64).
our_link_local() {
	local mac
	mac=$(in_stack cat "/sys/class/net/$USTCP_IFACE/address")
	IFS=: read -r a b c d e f <<<"$mac"
	printf 'fe80::%x:%x:%x:%x\n' $((0x$a$b ^ 0x0200)) $((0x${c}ff)) $((0xfe$d)) $((0x$e$f))
}

# kernel_ipv6 on|off: give the kernel of the stack's namespace IPv6 and the
# stack's address on the link (to run a test against the kernel first), or
# take them away again (turning IPv6 off removes every address).
kernel_ipv6() {
	if [ "$1" = on ]; then
		kernel_unspared
		in_stack sysctl -q -w "net.ipv6.conf.$USTCP_IFACE.disable_ipv6=0"
		in_stack ip addr add "$USTCP_ADDR6" dev "$USTCP_IFACE" nodad
		# The link-local address: DAD over, as the stack's.
		wait_for 5 sh -c "ip netns exec $USTCP_NETNS ip -6 addr show dev $USTCP_IFACE scope link |
			grep -v tentative | grep -q inet6"
	else
		in_stack sysctl -q -w "net.ipv6.conf.$USTCP_IFACE.disable_ipv6=1"
		in_peer ip -6 neigh flush dev "$PEER_IFACE"
	fi
}

# peer_pings6 ADDR COUNT: the kernel peer pings ADDR, every one answered.
peer_pings6() {
	run timeout 20 ip netns exec "$PEER_NETNS" ping -6 -c "$2" -i 0.2 -W 2 "$1"
	assert_success
	assert_output --partial "$2 received"
}

# host_ready6: the host has been through DAD (one solicitation per address,
# a second without an answer).
host_ready6() {
	wait_for 5 host_counter_reached nd-ns-out 2
	sleep 1.2
}

@test "ping6 from the kernel peer: DAD first, then the global and the link-local address answer" {
	topo_up --ipv6
	ll=$(our_link_local)
	# The kernel first: the same addresses, the same pings.
	kernel_ipv6 on
	peer_pings6 "${USTCP_ADDR6%/*}" 3
	peer_pings6 "$ll%$PEER_IFACE" 2
	kernel_ipv6 off
	export USTCP_PCAP=$BATS_TEST_TMPDIR/cap.pcap
	host_start
	host_ready6
	peer_pings6 "${USTCP_ADDR6%/*}" 3
	peer_pings6 "$ll%$PEER_IFACE" 2
	mac=$(in_stack cat "/sys/class/net/$USTCP_IFACE/address")
	run in_peer ip -6 neigh show "${USTCP_ADDR6%/*}"
	assert_output --partial "lladdr $mac"
	host_stop
	run --separate-stderr timeout 10 tcpdump -nr "$USTCP_PCAP" ip6
	# DAD: from ::, for each address, before anything else.
	assert_line --index 0 --partial ":: > ff02::1:ff"
	assert_line --index 0 --partial "neighbor solicitation, who has"
	assert_output --partial "neighbor advertisement, tgt is ${USTCP_ADDR6%/*}"
	[ "$(grep -c "${USTCP_ADDR6%/*} > $PEER_ADDR6: ICMP6, echo reply" <<<"$output")" -eq 3 ]
	[ "$(grep -c "$ll > fe80::.*: ICMP6, echo reply" <<<"$output")" -eq 2 ]
	[ "$(host_counter icmp6-echo-in)" -eq 5 ]
}

@test "the stack pings the peer over IPv6: neighbour solicitation, queued request, replies" {
	topo_up --ipv6
	kernel_ipv6 on
	run in_stack timeout 20 ping -6 -c 3 -i 0.1 -W 2 "$PEER_ADDR6"
	assert_output --partial "3 received"
	kernel_ipv6 off
	export USTCP_PCAP=$BATS_TEST_TMPDIR/cap.pcap
	run in_stack timeout 20 "$HOST" -p "$PEER_ADDR6" -c 3 -i 0.1
	assert_success
	assert_output --partial "3 packets transmitted, 3 received"
	run --separate-stderr timeout 10 tcpdump -nr "$USTCP_PCAP" ip6
	assert_output --partial "${USTCP_ADDR6%/*} > ff02::1:ff00:1: ICMP6, neighbor solicitation, who has $PEER_ADDR6"
	assert_output --partial "$PEER_ADDR6 > ${USTCP_ADDR6%/*}: ICMP6, neighbor advertisement, tgt is $PEER_ADDR6"
	[ "$(grep -c "$PEER_ADDR6 > ${USTCP_ADDR6%/*}: ICMP6, echo reply" <<<"$output")" -eq 3 ]
}

# A tun link (ustcp-netns --tun --ipv6) carries bare IPv6 datagrams: no
# Ethernet header, no neighbour discovery, no DAD, no link-local address of
# the stack's. Pings both ways, the kernel of the stack's namespace first.
@test "ping6 over a tun interface both ways: no NDP, no DAD, raw-IP pcap" {
	topo_up --tun --ipv6
	kernel_ipv6 on
	peer_pings6 "${USTCP_ADDR6%/*}" 3
	run in_stack timeout 20 ping -6 -c 3 -i 0.1 -W 2 "$PEER_ADDR6"
	assert_output --partial "3 received"
	kernel_ipv6 off
	export USTCP_PCAP=$BATS_TEST_TMPDIR/in.pcap
	host_start
	# At once: no DAD to wait for.
	peer_pings6 "${USTCP_ADDR6%/*}" 3
	host_stop
	[ "$(host_counter icmp6-echo-in)" -eq 3 ]
	[ "$(host_counter nd-ns-out)" -eq 0 ]
	[ "$(host_counter nd-na-out)" -eq 0 ]
	export USTCP_PCAP=$BATS_TEST_TMPDIR/out.pcap
	run in_stack timeout 20 "$HOST" -p "$PEER_ADDR6" -c 3 -i 0.1
	assert_success
	assert_output --partial "3 packets transmitted, 3 received"
	local f
	for f in in out; do
		run --separate-stderr timeout 10 tcpdump -nr "$BATS_TEST_TMPDIR/$f.pcap"
		[[ $stderr == *"link-type RAW"* ]] || fail "$f.pcap: $stderr"
		refute_output --partial "neighbor"
		refute_output --partial "fe80::"
		[ "$(grep -c "ICMP6, echo reply" <<<"$output")" -eq 3 ]
		[ "$(grep -c "ICMP6, echo request" <<<"$output")" -eq 3 ]
	done
	[ "$(grep -c "^.* IP6 $PEER_ADDR6 > ${USTCP_ADDR6%/*}: ICMP6, echo reply" <<<"$output")" -eq 3 ]
}

@test "an unanswered IPv6 neighbour is reported unreachable after three solicitations" {
	topo_up --ipv6
	export USTCP_PCAP=$BATS_TEST_TMPDIR/cap.pcap
	absent=${PEER_ADDR6%1}77
	run in_stack timeout 20 "$HOST" -p "$absent" -c 2 -i 0.1 -s "$BATS_TEST_TMPDIR/counters"
	assert_failure 1
	assert_output --partial "$absent: No route to host"
	[ "$(timeout 10 tcpdump -nr "$USTCP_PCAP" 2>/dev/null | grep -c "who has $absent")" -eq 3 ]
	[ "$(host_counter 'drop tx-arp-failed')" -eq 2 ]
}

@test "off-link IPv6 destinations go through USTCP_GW's IPv6 router; without it: network unreachable" {
	topo_up --ipv6
	export USTCP_PCAP=$BATS_TEST_TMPDIR/cap.pcap
	run in_stack timeout 20 "$HOST" -p 2001:db8::1 -c 1 -W 0.5
	assert_output --partial "Network is unreachable"
	USTCP_GW=$PEER_ADDR,$PEER_ADDR6 run in_stack timeout 20 "$HOST" -p 2001:db8::1 -c 1 -W 0.5
	peer_mac=$(in_peer cat "/sys/class/net/$PEER_IFACE/address")
	run timeout 10 tcpdump -enr "$USTCP_PCAP" ip6
	assert_output --partial "who has $PEER_ADDR6"
	assert_output --regexp "> $peer_mac, .* ${USTCP_ADDR6%/*} > 2001:db8::1: ICMP6, echo request"
}

@test "IPv6 fragments, bad checksums and bad extension headers are dropped and counted; the stack keeps answering" {
	topo_up --ipv6
	host_start
	host_ready6
	mac=$(in_stack cat "/sys/class/net/$USTCP_IFACE/address")
	run timeout 20 ip netns exec "$PEER_NETNS" /usr/bin/python3 - "$PEER_IFACE" "$mac" "$PEER_ADDR6" "${USTCP_ADDR6%/*}" <<'PY'
import sys, time
from scapy.all import Ether, IPv6, ICMPv6EchoRequest, IPv6ExtHdrFragment, IPv6ExtHdrDestOpt, HBHOptUnknown, sendp, raw
ifname, mac, src, dst = sys.argv[1:]
base = Ether(dst=mac) / IPv6(src=src, dst=dst)
frames = [
    base / IPv6ExtHdrFragment(offset=0, m=1, id=7) / ICMPv6EchoRequest(data=b"x" * 64),
    base / IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=0x7e, optdata=b"ab")]) / ICMPv6EchoRequest(),
]
bad = bytearray(raw(base / ICMPv6EchoRequest(data=b"abcd")))
bad[-1] ^= 1
for f in frames:
    sendp(f, iface=ifname, verbose=False)
sendp(Ether(bytes(bad)), iface=ifname, verbose=False)
PY
	assert_success
	wait_for 5 host_counter_reached 'drop icmp6-csum' 1
	run timeout 20 ip netns exec "$PEER_NETNS" ping -6 -c 1 -W 2 "${USTCP_ADDR6%/*}"
	assert_success
	host_stop
	[ "$(host_counter 'drop ip6-fragment')" -eq 1 ]
	[ "$(host_counter 'drop ip6-ext-hdr')" -eq 1 ]
	[ "$(host_counter 'drop icmp6-csum')" -eq 1 ]
}
