#!/usr/bin/env bats
# ustcp-impair: the seeded netem stand-in, checked with two kernels talking
# through it (the stack's namespace lends its kernel the stack's address).

bats_require_minimum_version 1.5.0
load helpers

IMPAIR=$BUILD/ustcp-impair

teardown() {
	topo_down
}

# ping_stats: "TRANSMITTED RECEIVED" from ping's summary in $output.
ping_stats() {
	sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) received.*/\1 \2/p' <<<"$output"
}

# ping_avg: the average RTT in whole milliseconds from ping's summary.
ping_avg() {
	sed -n 's|^rtt min/avg/max/mdev = [0-9.]*/\([0-9]*\)\.[0-9]*/.*|\1|p' <<<"$output"
}

# received_seqs SEED: the icmp_seq numbers that came back from 100 pings
# through "a2b loss 20%" with that seed, sorted, on one line.
received_seqs() {
	topo_up --seed "$1" --impair "a2b loss 20%"
	stack_kernel_addr
	static_neigh
	run in_stack timeout 30 ping -n -c 100 -i 0.01 -W 1 "$PEER_ADDR"
	topo_down
	sed -n 's/.* icmp_seq=\([0-9]*\) .*/\1/p' <<<"$output" | sort -n | tr '\n' ' '
}

# no_sanitizer_report FILE: the relay's log shows no ASan/UBSan finding.
no_sanitizer_report() {
	run -0 cat "$1"
	refute_output --partial "Sanitizer"
	refute_output --partial "runtime error"
}

@test "bad rules and arguments fail with status 2 and one line" {
	local args
	local -a cases=(
		""
		"a"
		"-d"
		"-d 0 a b"
		"-s x a b"
		"-z a b"
		"a b wobble"
		"a b loss"
		"a b loss 101%"
		"a b loss -1%"
		"a b loss ten"
		"a b delay 5"
		"a b delay 5parsecs"
		"a b jitter -1ms"
		"a b reorder 5% 0"
		"a b rate fast"
		"a b ce"
		"a b ce 101%"
		"a b rate 10mbps"
		"a b limit 0"
		"a tun:b"
		"--netns-a ../x a b"
	)
	for args in "${cases[@]}"; do
		# shellcheck disable=SC2086
		run timeout 10 "$IMPAIR" $args
		[ "$status" -eq 2 ] || fail "'$args': status $status, not 2: $output"
		assert_equal "${#lines[@]}" 1
		assert_output --regexp "^ustcp-impair: "
	done
	run -2 timeout 10 "$IMPAIR" a b delay 5
	assert_output --partial "delay: bad time '5'"
}

@test "a dry run prints the rules of each direction" {
	run -0 --separate-stderr timeout 10 "$IMPAIR" -n a b loss 1.5% a2b delay 50ms jitter 100us \
		"reorder 5% 3 b2a rate 10mbit limit 50" duplicate 1% corrupt 0.1%
	assert_line -n 0 "a2b loss 1.5% delay 50ms jitter 100us reorder 5% 3 limit 1000"
	assert_line -n 1 "b2a loss 1.5% duplicate 1% corrupt 0.1% rate 10mbit limit 50"
	assert_equal "${#lines[@]}" 2
}

# pings_lost 4|6 ADDR: 200 pings through "a2b loss 10%" lose 3% to 20%;
# RX is how many came back, LOST how many did not.
pings_lost() {
	run in_stack timeout 30 ping "-$1" -n -q -c 200 -i 0.01 -W 1 "$2"
	local tx
	read -r tx RX < <(ping_stats)
	assert_equal "$tx" 200
	LOST=$((tx - RX))
	((LOST >= 6 && LOST <= 40)) || fail "lost $LOST of 200 pings, expected 3% to 20%"
}

@test "loss 10% on a2b loses about 10% of 200 pings, and the counters agree" {
	topo_up --impair "a2b loss 10%"
	stack_kernel_addr
	static_neigh
	pings_lost 4 "$PEER_ADDR"
	local rx=$RX lost=$LOST

	local f=$BATS_TEST_TMPDIR/down
	topo_down_counters "$f"
	assert_equal "$(counter "$f" a2b received)" 200
	assert_equal "$(counter "$f" a2b lost)" "$lost"
	assert_equal "$(counter "$f" a2b forwarded)" "$rx"
	assert_equal "$(counter "$f" b2a lost)" 0
	assert_equal "$(counter "$f" b2a forwarded)" "$rx"
	no_sanitizer_report "$f"
}

@test "delay 50ms both ways gives a 100 ms round trip" {
	topo_up --impair "delay 50ms"
	stack_kernel_addr
	static_neigh
	run -0 in_stack timeout 30 ping -n -q -c 10 -i 0.05 -W 2 "$PEER_ADDR"
	local avg
	avg=$(ping_avg)
	((avg >= 95 && avg <= 130)) || fail "average RTT $avg ms, expected 95 to 130: $output"
	local f=$BATS_TEST_TMPDIR/down
	topo_down_counters "$f"
	assert_equal "$(counter "$f" a2b delayed)" 10
	assert_equal "$(counter "$f" b2a delayed)" 10
}

@test "the same seed loses the same pings" {
	local first second other
	first=$(received_seqs 7)
	second=$(received_seqs 7)
	other=$(received_seqs 8)
	[ -n "$first" ] || fail "no ping came back"
	assert_equal "$second" "$first"
	[ "$other" != "$first" ] || fail "seeds 7 and 8 lost the same pings: $first"
}

# tcp_through_relay FAMILY: 10 MB from the stack's side's kernel to the
# peer's through loss, duplication, reordering and delay, over IPv4 or IPv6;
# every impairment happened both ways, and the data arrived whole.
tcp_through_relay() {
	local rules="loss 2% duplicate 1% reorder 5% delay 2ms" listen to
	if [ "$1" = 6 ]; then
		topo6_up "$rules"
		listen=TCP6-LISTEN:5001 to="TCP6:[$PEER_ADDR6]:5001"
	else
		topo_up --impair "$rules"
		stack_kernel_addr
		listen=TCP-LISTEN:5001 to="TCP:$PEER_ADDR:5001"
	fi
	local in=$BATS_TEST_TMPDIR/in out=$BATS_TEST_TMPDIR/out
	timeout 10 head -c 10M /dev/urandom >"$in"
	in_peer timeout 60 socat -u "$listen,reuseaddr" "CREATE:$out" 3>&- &
	local receiver=$!
	wait_listen "$PEER_NETNS" 5001
	run -0 in_stack timeout 60 socat -u "OPEN:$in" "$to"
	wait "$receiver"
	assert_equal "$(sha256sum <"$out")" "$(sha256sum <"$in")"

	local f=$BATS_TEST_TMPDIR/down d c
	topo_down_counters "$f"
	for d in a2b b2a; do
		for c in lost duplicated reordered delayed forwarded; do
			(($(counter "$f" $d $c) > 0)) || fail "$d $c is 0: $(cat "$f")"
		done
		assert_equal "$(counter "$f" $d send-errors)" 0
		assert_equal "$(counter "$f" $d oversize)" 0
	done
	no_sanitizer_report "$f"
}

@test "TCP carries 10 MB intact through loss, duplication, reordering and delay" {
	tcp_through_relay 4
}

@test "corrupted frames are caught by the checksums" {
	topo_up --impair "a2b corrupt 100%"
	stack_kernel_addr
	static_neigh
	run in_stack timeout 30 ping -n -q -c 10 -i 0.02 -W 1 "$PEER_ADDR"
	assert_equal "$(ping_stats)" "10 0"
	local f=$BATS_TEST_TMPDIR/down
	topo_down_counters "$f"
	assert_equal "$(counter "$f" a2b corrupted)" 10
	assert_equal "$(counter "$f" a2b forwarded)" 10
}

# ce_pings 4|6: through "a2b ce 100%", 10 pings with the ECN field ECT(0)
# (ping -Q 2: the TOS byte or the traffic class 2), then 10 Not-ECT ones,
# all answered; $output is then what tcpdump -v says of the echo requests
# that reached the peer.
ce_pings() {
	local proto=icmp filter="icmp[icmptype] == icmp-echo" to=$PEER_ADDR
	[ "$1" = 4 ] || proto=icmp6 filter="icmp6[icmp6type] == icmp6-echo" to=$PEER_ADDR6
	capture_start "$PEER_NETNS" "$PEER_IFACE" "$BATS_TEST_TMPDIR/c.pcap" 30 "$proto"
	local cap=$CAPTURE_PID
	run in_stack timeout 30 ping "-$1" -n -q -c 10 -i 0.02 -W 1 -Q 2 "$to"
	assert_equal "$(ping_stats)" "10 10"
	run in_stack timeout 30 ping "-$1" -n -q -c 10 -i 0.02 -W 1 "$to"
	assert_equal "$(ping_stats)" "10 10"
	kill -INT "$cap"
	bg_wait "$cap" 10 || true
	run -0 timeout 10 tcpdump -v -nr "$BATS_TEST_TMPDIR/c.pcap" "$filter"
}

@test "ce marks ECT packets CE, with a good IP checksum, and leaves the others alone" {
	topo_up --impair "a2b ce 100%"
	stack_kernel_addr
	static_neigh
	ce_pings 4
	assert_equal "$(grep -c 'tos 0x3,CE' <<<"$output")" 10
	assert_equal "$(grep -c 'tos 0x0,' <<<"$output")" 10
	local f=$BATS_TEST_TMPDIR/down
	topo_down_counters "$f"
	assert_equal "$(counter "$f" a2b ce-marked)" 10
	assert_equal "$(counter "$f" a2b forwarded)" 20
	assert_equal "$(counter "$f" b2a ce-marked)" 0
}

@test "GSO super-frames are counted as oversize drops" {
	topo_up --impair ""
	stack_kernel_addr
	# Let the kernel of the stack's side hand the relay 64 KiB frames.
	timeout 10 ip netns exec "$USTCP_NETNS" ethtool -K ust0 tso on gso on >/dev/null
	in_peer timeout 10 socat -u TCP-LISTEN:5001,reuseaddr OPEN:/dev/null 3>&- &
	wait_listen "$PEER_NETNS" 5001
	run in_stack timeout 3 socat -u OPEN:/dev/zero,readbytes=1000000 "TCP:$PEER_ADDR:5001"
	local f=$BATS_TEST_TMPDIR/down
	topo_down_counters "$f"
	(($(counter "$f" a2b oversize) > 0)) || fail "no oversize frame: $(cat "$f")"
}

@test "a --tun topology carries pings both ways through the relay" {
	topo_up --tun --impair "delay 5ms"
	stack_kernel_addr
	run -0 in_stack timeout 30 ping -n -q -c 5 -i 0.05 -W 2 "$PEER_ADDR"
	assert_equal "$(ping_stats)" "5 5"
	local avg
	avg=$(ping_avg)
	((avg >= 10 && avg <= 40)) || fail "average RTT $avg ms, expected 10 to 40: $output"
	run -0 in_peer timeout 30 ping -n -q -c 5 -i 0.05 -W 2 "${USTCP_ADDR%/*}"
	assert_equal "$(ping_stats)" "5 5"
	local f=$BATS_TEST_TMPDIR/down
	topo_down_counters "$f"
	assert_equal "$(counter "$f" a2b forwarded)" 10
	assert_equal "$(counter "$f" b2a forwarded)" 10
}

@test "rate 10mbit paces a 2 MB transfer to about 1.7 s" {
	topo_up --impair "rate 10mbit"
	stack_kernel_addr
	local in=$BATS_TEST_TMPDIR/in out=$BATS_TEST_TMPDIR/out
	timeout 10 head -c 2M /dev/urandom >"$in"
	in_peer timeout 30 socat -u TCP-LISTEN:5001,reuseaddr "CREATE:$out" 3>&- &
	local receiver=$!
	wait_listen "$PEER_NETNS" 5001
	local t0 t1 ms
	t0=$(date +%s%N)
	run -0 in_stack timeout 30 socat -u "OPEN:$in" "TCP:$PEER_ADDR:5001"
	wait "$receiver"
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	assert_equal "$(sha256sum <"$out")" "$(sha256sum <"$in")"
	((ms >= 1200 && ms <= 4000)) || fail "2 MB at 10 Mbit/s took $ms ms, expected 1200 to 4000"
}

# ---- over IPv6 ---------------------------------------------------------------
# The same relay with IPv6 frames (ustcp-netns --ipv6; the kernel of the
# stack's namespace lends its kernel the stack's IPv6 address). Its kernel
# leaves TCP's checksum partial over IPv6 as over IPv4 (ust0 keeps tx
# checksum offload): the relay must complete it, or no segment gets through.
# A few frames besides the pings cross a2b (the kernel's MLD reports for
# its new address), so the counters are compared with "at least".

# topo6_up RULES: a --ipv6 topology through the relay with RULES, two
# kernels talking IPv6 through it.
topo6_up() {
	topo_up --ipv6 --impair "$1" "${@:2}"
	stack_kernel_addr6
	static_neigh
}

@test "IPv6: loss 10% on a2b loses about 10% of 200 pings" {
	topo6_up "a2b loss 10%"
	pings_lost 6 "$PEER_ADDR6"
	local rx=$RX lost=$LOST
	local f=$BATS_TEST_TMPDIR/down
	topo_down_counters "$f"
	(($(counter "$f" a2b received) >= 200)) || fail "a2b received fewer than 200: $(cat "$f")"
	(($(counter "$f" a2b lost) >= lost)) || fail "a2b lost fewer than the $lost pings: $(cat "$f")"
	assert_equal "$(counter "$f" b2a lost)" 0
	(($(counter "$f" b2a forwarded) >= rx)) || fail "b2a forwarded fewer than $rx: $(cat "$f")"
	no_sanitizer_report "$f"
}

@test "IPv6: delay 50ms both ways gives a 100 ms round trip" {
	topo6_up "delay 50ms"
	run -0 in_stack timeout 30 ping -6 -n -q -c 10 -i 0.05 -W 2 "$PEER_ADDR6"
	local avg
	avg=$(ping_avg)
	((avg >= 95 && avg <= 130)) || fail "average RTT $avg ms, expected 95 to 130: $output"
	local f=$BATS_TEST_TMPDIR/down
	topo_down_counters "$f"
	(($(counter "$f" a2b delayed) >= 10)) || fail "a2b delayed fewer than 10: $(cat "$f")"
	(($(counter "$f" b2a delayed) >= 10)) || fail "b2a delayed fewer than 10: $(cat "$f")"
}

@test "IPv6: TCP carries 10 MB intact through loss, duplication, reordering and delay" {
	tcp_through_relay 6
}

# nstat_peer NAME: a counter of the peer's kernel (nstat -az: since boot of
# the namespace, which is new).
nstat_peer() {
	in_peer timeout 10 nstat -az "$1" | awk -v k="$1" '$1 == k { print $2 }'
}

@test "IPv6: corrupted frames are caught by the checksums (ICMPv6's, TCP's)" {
	topo6_up "a2b corrupt 100%"
	run in_stack timeout 30 ping -6 -n -q -c 10 -i 0.02 -W 1 "$PEER_ADDR6"
	assert_equal "$(ping_stats)" "10 0"
	assert_equal "$(nstat_peer Icmp6InCsumErrors)" 10
	topo_down
	# TCP through 5% corruption: every flipped bit lands where TCP's
	# checksum looks (past the IPv6 header, which no checksum covers), so
	# the peer's kernel drops those segments, counts them, and the data
	# arrive whole after retransmissions.
	topo6_up "a2b corrupt 5%" --seed 3
	local in=$BATS_TEST_TMPDIR/in out=$BATS_TEST_TMPDIR/out
	timeout 10 head -c 2M /dev/urandom >"$in"
	in_peer timeout 60 socat -u TCP6-LISTEN:5001,reuseaddr "CREATE:$out" 3>&- &
	local receiver=$!
	wait_listen "$PEER_NETNS" 5001
	run -0 in_stack timeout 60 socat -u "OPEN:$in" "TCP6:[$PEER_ADDR6]:5001"
	wait "$receiver"
	assert_equal "$(sha256sum <"$out")" "$(sha256sum <"$in")"
	local bad
	bad=$(nstat_peer TcpInCsumErrors)
	local f=$BATS_TEST_TMPDIR/down
	topo_down_counters "$f"
	((bad > 0 && bad <= $(counter "$f" a2b corrupted))) ||
		fail "TcpInCsumErrors $bad, a2b corrupted $(counter "$f" a2b corrupted)"
}

@test "IPv6: ce marks ECT packets CE in the traffic class, and leaves the others alone" {
	topo6_up "a2b ce 100%"
	ce_pings 6
	assert_equal "$(grep -c '(class 0x03, ' <<<"$output")" 10
	assert_equal "$(grep -c '(flowlabel ' <<<"$output")" 10
	local f=$BATS_TEST_TMPDIR/down
	topo_down_counters "$f"
	assert_equal "$(counter "$f" a2b ce-marked)" 10
	assert_equal "$(counter "$f" b2a ce-marked)" 0
}
