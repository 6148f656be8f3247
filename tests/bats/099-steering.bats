#!/usr/bin/env bats
# What steering frames by port (issue 13, docs/architecture.md §6) relies on
# in the kernel, checked on this one before anything is built on it
# (tests/shim/fanout_facts.py): a PACKET_FANOUT_CBPF group's program, which
# sees frames from the IP header, picks the member by TCP port; a member
# whose filter is locked cannot replace it, an unlocked one can; a member
# stays in the group while any dup of its socket is open; and its last
# close moves the last member into its place.

load helpers

teardown() {
	[ -z "${SYN_PID:-}" ] || { kill "$SYN_PID" 2>/dev/null; wait "$SYN_PID" 2>/dev/null; }
	topo_down
}

@test "steering: the kernel's fanout groups behave as the design needs [kernel]" {
	[ "$(id -u)" = 0 ] || skip "needs root"
	topo_up
	static_neigh
	local addr=${USTCP_ADDR%/*}
	# The peer sends a SYN to each of the three ports every 0.2 s.
	in_peer timeout 60 /usr/bin/python3 -c '
import socket, sys, time
end = time.monotonic() + 50
while time.monotonic() < end:
    socks = []
    for p in (7001, 7002, 7003):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex((sys.argv[1], p))
        socks.append(s)
    time.sleep(0.2)
    for s in socks:
        s.close()' "$addr" </dev/null &
	SYN_PID=$!
	run timeout 60 ip netns exec "$USTCP_NETNS" /usr/bin/python3 "$BATS_TEST_DIRNAME/../shim/fanout_facts.py" \
		"$USTCP_IFACE" "$addr"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(grep -c '^ok' <<<"$output")" -eq 5 ]
}
