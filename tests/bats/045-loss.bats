#!/usr/bin/env bats
# Loss recovery and congestion control against the kernel's TCP, with every
# algorithm the stack has: transfers through ustcp-impair (loss, reordering,
# duplication, corruption, delay; seeded) arrive whole (sha256), close in
# order and never hang (every transfer under a timeout). How fast is the
# loss matrix's business (tests/bench/loss_matrix), not this file's.

load helpers
load host

setup() {
	export USTCP_MSL=0.5 # a short TIME-WAIT: the host exits once CLOSED
}

teardown() {
	host_stop
	topo_down
}

# through CC DIRECTION SIZE IMPAIRMENT: SIZE random bytes from the stack
# (send) or to it (recv) with USTCP_CC=CC, through the impairment both
# ways, seeded; both sides' sha256 and an orderly close.
through() {
	local cc=$1 dir=$2 size=$3 impair=$4
	local src=$BATS_TEST_TMPDIR/src got=$BATS_TEST_TMPDIR/got
	topo_up --seed 12 --impair "$impair"
	head -c "$size" /dev/urandom >"$src"
	if [ "$dir" = send ]; then
		ip netns exec "$PEER_NETNS" timeout 150 nc -l -p 5001 >"$got" 3>&- &
		wait_listen "$PEER_NETNS" 5001
		USTCP_CC=$cc run ip netns exec "$USTCP_NETNS" timeout 150 "$HOST" -C "$PEER_ADDR:5001" \
			-I "$src" -s "$BATS_TEST_TMPDIR/counters"
	else
		ip netns exec "$PEER_NETNS" timeout 150 nc -N -l -p 5001 <"$src" 3>&- &
		wait_listen "$PEER_NETNS" 5001
		USTCP_CC=$cc run ip netns exec "$USTCP_NETNS" timeout 150 "$HOST" -C "$PEER_ADDR:5001" \
			-O "$got" -s "$BATS_TEST_TMPDIR/counters"
	fi
	wait
	echo "$output" | grep -E 'closed|tcp-|drop' >&3 || true
	assert_success
	assert_output --partial "outcome=orderly"
	[ "$(sha256sum <"$src")" = "$(sha256sum <"$got")" ]
	# The loss was real: the sender repaired it.
	if [ "$dir" = send ]; then
		[ "$(host_counter tcp-retrans)" -gt 0 ]
	else
		[ "$(host_counter tcp-ofo-segs)" -gt 0 ]
	fi
}

MIXED="loss 3% reorder 5% duplicate 1% corrupt 1% delay 5ms"

@test "reno: 2 MB from the stack through loss, reordering, duplication and corruption" {
	through reno send 2000000 "$MIXED"
}
@test "cubic: 2 MB from the stack through loss, reordering, duplication and corruption" {
	through cubic send 2000000 "$MIXED"
}
@test "reno: 1 MB from the stack through 10% loss both ways" {
	through reno send 1000000 "loss 10%"
}
@test "cubic: 1 MB from the stack through 10% loss both ways" {
	through cubic send 1000000 "loss 10%"
}
@test "cubic: 2 MB to the stack through loss, reordering, duplication and corruption" {
	through cubic recv 2000000 "$MIXED"
}
@test "bbr: 2 MB from the stack through loss, reordering, duplication and corruption" {
	through bbr send 2000000 "$MIXED"
}
@test "bbr: 1 MB from the stack through 10% loss both ways" {
	through bbr send 1000000 "loss 10%"
}
@test "bbr: 2 MB from the stack through 1% loss and 20 ms of delay" {
	through bbr send 2000000 "loss 1% delay 20ms"
}
@test "bbr3: 2 MB from the stack through loss, reordering, duplication and corruption" {
	through bbr3 send 2000000 "$MIXED"
}
