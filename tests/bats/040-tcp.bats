#!/usr/bin/env bats
# The TCP engine against the kernel's TCP: bulk transfers both ways, plain
# and through ustcp-impair, checked by sha256. The stack runs in the test
# host (build/tests/ustcp-host -C/-L) until the shim exists.

load helpers
load host

setup() {
	export USTCP_MSL=0.5 # a short TIME-WAIT: the host exits once CLOSED
}

teardown() {
	host_stop
	topo_down
}

@test "100 MB from the stack to a kernel receiver arrive intact" {
	transfer send 100000000
}

@test "100 MB from a kernel sender to the stack arrive intact (GSO frames, partial checksums)" {
	transfer recv 100000000
}

# The link's socket gets its receive ring once frames stream in (on a
# second socket that takes its place: stack/link.c, ring_switch), so all
# but the first few hundred frames at MTU 1500 come through it without a
# call.
@test "100 MB each way with offloads off; all but the first frames received through the ring" {
	transfer send 100000000 --no-offload
	topo_down
	transfer recv 100000000 --no-offload
	local frames ring
	frames=$(host_counter rx-frames) ring=$(host_counter rx-ring)
	echo "rx-frames $frames, rx-ring $ring, rx-ring-set $(host_counter rx-ring-set)"
	[ "$(host_counter rx-ring-set)" -eq 1 ]
	((frames - ring < 1000))
}

@test "USTCP_RX_RING=0: 20 MB received without the ring" {
	USTCP_RX_RING=0 transfer recv 20000000 --no-offload
	[ "$(host_counter rx-ring)" -eq 0 ]
	[ "$(host_counter rx-ring-set)" -eq 0 ]
	[ "$(host_counter rx-batches)" -gt 0 ]
}

# impaired_send / impaired_recv FAMILY: 20 MB from or to the stack through
# loss, reordering, duplication and delay, over IPv4 or IPv6.
impaired_send() {
	export USTCP_PCAP=$BATS_TEST_TMPDIR/cap.pcap
	TRANSFER_FAMILY=$1 transfer send 20000000 --impair "loss 2% reorder 5% duplicate 1% delay 5ms"
	local peer=$PEER_ADDR
	[ "$1" = 4 ] || peer=$PEER_ADDR6
	assert_repaired send
	[ "$(host_counter tcp-fast-retrans)" -gt 0 ]
	# The capture shows the peer's SACK blocks and our retransmissions:
	# some data segment went out more than once.
	timeout 60 tcpdump -nr "$USTCP_PCAP" 2>/dev/null >"$BATS_TEST_TMPDIR/cap.txt"
	grep -q "${peer}.5001 > .*sack [0-9]" "$BATS_TEST_TMPDIR/cap.txt"
	[ "$(grep -oE "> ${peer}.5001: Flags \[[^]]*\], seq [0-9]+:[0-9]+" "$BATS_TEST_TMPDIR/cap.txt" |
		awk '{print $NF}' | sort | uniq -d | wc -l)" -gt 0 ]
}

impaired_recv() {
	export USTCP_PCAP=$BATS_TEST_TMPDIR/cap.pcap
	TRANSFER_FAMILY=$1 transfer recv 20000000 --impair "loss 2% reorder 5% duplicate 1% delay 5ms"
	local peer=$PEER_ADDR
	[ "$1" = 4 ] || peer=$PEER_ADDR6
	# Out-of-order segments were held and reassembled, and our ACKs told
	# the sender with SACK blocks what we held.
	assert_repaired recv
	timeout 60 tcpdump -nr "$USTCP_PCAP" 2>/dev/null | grep -q "> ${peer}.5001: .*sack [0-9]"
}

@test "20 MB from the stack through loss, reordering, duplication and delay" { impaired_send 4; }
@test "20 MB to the stack through loss, reordering, duplication and delay" { impaired_recv 4; }
@test "over IPv6: 20 MB from the stack through loss, reordering, duplication and delay" { impaired_send 6; }
@test "over IPv6: 20 MB to the stack through loss, reordering, duplication and delay" { impaired_recv 6; }

@test "the stack accepts a kernel client (passive open) and both close in order" {
	topo_up
	local src=$BATS_TEST_TMPDIR/src got=$BATS_TEST_TMPDIR/got
	head -c 3000000 /dev/urandom >"$src"
	host_start -L 5002 -O "$got"
	run ip netns exec "$PEER_NETNS" timeout 30 nc -N "${USTCP_ADDR%/*}" 5002 <"$src"
	assert_success
	wait "$HOST_PID"
	HOST_PID=
	[ "$(sha256sum <"$src")" = "$(sha256sum <"$got")" ]
	grep -q "outcome=orderly initiator=remote" "$BATS_TEST_TMPDIR/host.err"
}

@test "a segment for a port nobody listens on is answered with RST (connection refused)" {
	topo_up
	host_start
	run ip netns exec "$PEER_NETNS" timeout 10 nc -z -w 2 "${USTCP_ADDR%/*}" 9
	assert_failure
	host_stop
	[ "$(host_counter 'drop tcp-no-socket')" -ge 1 ]
	[ "$(host_counter tcp-rst-out)" -ge 1 ]
}

@test "connect to a kernel port nobody listens on: refused" {
	topo_up
	run ip netns exec "$USTCP_NETNS" timeout 10 "$HOST" -C "$PEER_ADDR:9"
	assert_failure
	assert_output --partial "outcome=refused"
}
