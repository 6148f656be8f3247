# Running the stack in the test host (build/tests/ustcp-host) inside the
# stack's namespace. Load after helpers.bash.

HOST=$BUILD/tests/ustcp-host

# host_start [ustcp-host options...]: start it in the background with the
# topology's USTCP_* variables (and any the test exported) and wait until its
# loop runs. Its counters go to $BATS_TEST_TMPDIR/counters when it stops.
host_start() {
	local ready=$BATS_TEST_TMPDIR/host.ready
	rm -f "$ready" "$BATS_TEST_TMPDIR/counters"
	# Not through in_stack: $! must be the process that gets the signal
	# (ip netns exec execs timeout, which passes SIGTERM on). fd 3 closed:
	# Bats waits for every holder of it.
	ip netns exec "$USTCP_NETNS" timeout 120 "$HOST" -r "$ready" -s "$BATS_TEST_TMPDIR/counters" "$@" \
		>"$BATS_TEST_TMPDIR/host.out" 2>"$BATS_TEST_TMPDIR/host.err" 3>&- &
	HOST_PID=$!
	local i
	for i in $(seq 100); do
		[ -e "$ready" ] && return 0
		kill -0 "$HOST_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "ustcp-host did not start:" >&2
	cat "$BATS_TEST_TMPDIR/host.err" >&2
	return 1
}

host_stop() {
	[ -n "${HOST_PID:-}" ] || return 0
	kill -TERM "$HOST_PID" 2>/dev/null || true
	wait "$HOST_PID" 2>/dev/null || true
	HOST_PID=
}

# host_counter_reached NAME MIN: the running host's counter NAME is at least
# MIN (it writes its counters on SIGUSR2). With wait_for, to wait until the
# host has seen what the peer sent.
host_counter_reached() {
	local c=$BATS_TEST_TMPDIR/counters
	rm -f "$c"
	kill -USR2 "$(cat "$BATS_TEST_TMPDIR/host.ready")" 2>/dev/null || return 1
	wait_for 2 test -e "$c" || return 1
	[ "$(host_counter "$1")" -ge "$2" ]
}

# host_counter NAME: a counter's value from the stopped host ("drop NAME" for drops).
host_counter() {
	awk -v k="$1" '{ v = $NF; $NF = ""; sub(/ $/, ""); if ($0 == k) { print v; f = 1 } }
		END { if (!f) print 0 }' "$BATS_TEST_TMPDIR/counters"
}

# transfer DIRECTION SIZE [topo_up options...]: brings the topology up with
# the options, then DIRECTION "send" has the stack send SIZE random bytes to
# a kernel nc, "recv" the kernel send them to the stack. USTCP_CC in the
# environment picks the stack's congestion control (USTCP_CC=bbr transfer
# ...). TRANSFER_FAMILY=6 in the environment: over IPv6 (the topology with
# --ipv6, the host given USTCP_ADDR6, nc -6). Checks both sides' sha256 and
# an orderly close; every side runs under a timeout, so a stall fails
# instead of hanging.
transfer() {
	local dir=$1 size=$2 fam=-4 to
	shift 2
	if [ "${TRANSFER_FAMILY:-4}" = 6 ]; then
		topo_up --ipv6 "$@"
		fam=-6 to="[$PEER_ADDR6]:5001"
	else
		topo_up "$@"
		to="$PEER_ADDR:5001"
	fi
	local src=$BATS_TEST_TMPDIR/src got=$BATS_TEST_TMPDIR/got
	head -c "$size" /dev/urandom >"$src"
	if [ "$dir" = send ]; then
		ip netns exec "$PEER_NETNS" timeout 150 nc $fam -l -p 5001 >"$got" 3>&- &
		wait_listen "$PEER_NETNS" 5001
		run ip netns exec "$USTCP_NETNS" timeout 150 "$HOST" -C "$to" -I "$src" \
			-s "$BATS_TEST_TMPDIR/counters"
	else
		ip netns exec "$PEER_NETNS" timeout 150 nc $fam -N -l -p 5001 <"$src" 3>&- &
		wait_listen "$PEER_NETNS" 5001
		run ip netns exec "$USTCP_NETNS" timeout 150 "$HOST" -C "$to" -O "$got" \
			-s "$BATS_TEST_TMPDIR/counters"
	fi
	wait
	echo "$output" | grep -E 'closed|tcp-|drop' >&3 || true
	assert_success
	assert_output --partial "outcome=orderly"
	[ "$(sha256sum <"$src")" = "$(sha256sum <"$got")" ]
}

# assert_repaired DIRECTION: after a transfer through loss, the loss was
# real: the stack resent data (send) or held segments out of order (recv).
assert_repaired() {
	if [ "$1" = send ]; then
		[ "$(host_counter tcp-retrans)" -gt 0 ]
	else
		[ "$(host_counter tcp-ofo-segs)" -gt 0 ]
	fi
}
