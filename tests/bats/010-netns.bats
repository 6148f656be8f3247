#!/usr/bin/env bats
# ustcp-netns: the topologies every other suite runs in.

bats_require_minimum_version 1.5.0
load helpers

teardown() {
	topo_down
}

# ns_names: the names of all network namespaces, one per line.
ns_names() {
	timeout 10 ip netns list | awk '{ print $1 }'
}

# features NS DEV: "name: on|off" lines of ethtool -k.
features() {
	timeout 10 ip netns exec "$1" ethtool -k "$2"
}

@test "up creates the stack's and the peer's namespaces, down removes them" {
	topo_up
	run -0 ns_names
	assert_line "$TOPO-s"
	assert_line "$TOPO-p"
	refute_output --partial "$TOPO-i"
	assert [ -d "/run/ustcp-netns/$TOPO" ]
	run -0 timeout 10 "$NETNS" list
	assert_line "$TOPO USTCP_IFACE=ust0 USTCP_ADDR=10.9.0.2/24 USTCP_NETNS=$TOPO-s PEER_NETNS=$TOPO-p PEER_ADDR=10.9.0.1 PEER_IFACE=peer0"

	local name=$TOPO
	run -0 timeout 30 "$NETNS" down "$name"
	TOPO=
	run -0 ns_names
	refute_output --partial "$name-s"
	refute_output --partial "$name-p"
	assert [ ! -e "/run/ustcp-netns/$name" ]
	run -0 timeout 10 "$NETNS" list
	refute_output --partial "$name "
}

@test "up prints exactly one line of KEY=VALUE words on stdout" {
	TOPO=ut$$${BATS_TEST_NUMBER}
	run -0 --separate-stderr timeout 30 "$NETNS" up "$TOPO"
	assert_equal "${#lines[@]}" 1
	assert_output "USTCP_IFACE=ust0 USTCP_ADDR=10.9.0.2/24 USTCP_NETNS=$TOPO-s PEER_NETNS=$TOPO-p PEER_ADDR=10.9.0.1 PEER_IFACE=peer0"
	local kv
	for kv in $output; do
		[[ $kv =~ ^[A-Z_]+=[^=]+$ ]] || fail "not a KEY=VALUE word: $kv"
	done
}

@test "the peer has its address, the stack's side has none and stays quiet" {
	topo_up
	run -0 timeout 10 ip -n "$PEER_NETNS" -o addr show dev "$PEER_IFACE"
	assert_output --partial "inet $PEER_ADDR/24"
	assert_equal "${#lines[@]}" 1 # no IPv6 either
	run -0 timeout 10 ip -n "$USTCP_NETNS" -o addr show dev "$USTCP_IFACE"
	assert_output ""
	run -0 timeout 10 ip -n "$USTCP_NETNS" -o link show dev "$USTCP_IFACE"
	assert_output --partial "LOWER_UP"
	run -0 timeout 10 ip -n "$PEER_NETNS" -o link show dev "$PEER_IFACE"
	assert_output --partial "LOWER_UP"
	run -0 timeout 10 ip -n "$USTCP_NETNS" -o link show dev lo
	assert_output --partial "LOWER_UP"

	# No route out of either namespace.
	run -0 timeout 10 ip -n "$USTCP_NETNS" route show
	assert_output ""
	run -0 timeout 10 ip -n "$PEER_NETNS" route show
	assert_output --regexp '^10\.9\.0\.0/24 dev peer0 proto kernel scope link src 10\.9\.0\.1 *$'

	run -0 in_stack timeout 10 sysctl -n net.ipv4.ip_forward
	assert_output 0
	run -0 in_stack timeout 10 sysctl -n net.ipv4.conf.all.arp_ignore
	assert_output 8

	# Nothing answers for the stack's address until a stack does.
	run in_peer timeout 10 ping -n -c 1 -W 1 "${USTCP_ADDR%/*}"
	assert_failure
}

@test "no interface ever appears in the initial namespace" {
	local before after
	before=$(timeout 10 ip -o link show | awk -F': ' '{ print $2 }' | sort)
	topo_up --impair "loss 1%" --mtu 1400 --no-offload
	after=$(timeout 10 ip -o link show | awk -F': ' '{ print $2 }' | sort)
	assert_equal "$after" "$before"
	topo_down
	topo_up --tun
	after=$(timeout 10 ip -o link show | awk -F': ' '{ print $2 }' | sort)
	assert_equal "$after" "$before"
}

@test "--subnet picks the addresses" {
	topo_up --subnet 10.77.3
	assert_equal "$USTCP_ADDR" 10.77.3.2/24
	assert_equal "$PEER_ADDR" 10.77.3.1
	run -0 timeout 10 ip -n "$PEER_NETNS" -o -4 addr show dev "$PEER_IFACE"
	assert_output --partial "inet 10.77.3.1/24"
}

@test "--mtu sets the MTU of every link, relay included" {
	topo_up --mtu 1280 --impair ""
	local l
	for l in "$USTCP_NETNS ust0" "$IMPAIR_NETNS imp-s" "$IMPAIR_NETNS imp-p" "$PEER_NETNS peer0"; do
		set -- $l
		run -0 timeout 10 ip -n "$1" -o link show dev "$2"
		assert_output --partial "mtu 1280 "
	done
	run -0 cat "$IMPAIR_LOG"
	assert_output --partial "imp-s (a, mtu 1280) <-> imp-p (b, mtu 1280)"
}

@test "offloads stay on by default; --no-offload turns them off on every veth end" {
	topo_up
	run -0 features "$USTCP_NETNS" ust0
	assert_line "tcp-segmentation-offload: on"
	assert_line "tx-checksumming: on"
	topo_down

	topo_up --no-offload
	local l f
	for l in "$USTCP_NETNS ust0" "$PEER_NETNS peer0"; do
		run -0 features $l
		for f in rx-checksumming tx-checksumming scatter-gather tcp-segmentation-offload \
			generic-segmentation-offload generic-receive-offload; do
			assert_line "$f: off"
		done
	done
}

@test "--impair adds a relay namespace with ustcp-impair running, down stops it" {
	topo_up --impair "a2b loss 1%" --seed 99
	assert_equal "$IMPAIR_NETNS" "$TOPO-i"
	assert_equal "$IMPAIR_LOG" "/run/ustcp-netns/$TOPO/impair.log"
	run -0 ns_names
	assert_line "$TOPO-i"
	local pid
	pid=$(cat "/run/ustcp-netns/$TOPO/impair.pid")
	run -0 cat "/proc/$pid/comm"
	assert_output ustcp-impair
	run -0 cat "$IMPAIR_LOG"
	assert_line "ustcp-impair: seed 99 (replay with -s 99)"
	assert_line "ustcp-impair: rules: a2b loss 1% limit 1000"

	# The ends that feed the relay send MTU-sized frames with checksums
	# filled in; ust0 keeps its checksum offload.
	local l
	for l in "$PEER_NETNS peer0" "$IMPAIR_NETNS imp-s" "$IMPAIR_NETNS imp-p"; do
		run -0 features $l
		assert_line "tcp-segmentation-offload: off"
		assert_line "generic-segmentation-offload: off"
		assert_line "tx-checksumming: off"
	done
	run -0 features "$USTCP_NETNS" ust0
	assert_line "tcp-segmentation-offload: off"
	assert_line "tx-checksumming: on"

	local name=$TOPO
	run -0 timeout 30 "$NETNS" down "$name"
	TOPO=
	assert_line "a2b received 0"
	assert_line "b2a send-errors 0"
	# Gone, or a zombie that init has not reaped yet.
	local st
	if st=$(cat "/proc/$pid/stat" 2>/dev/null); then
		st=${st##*) }
		assert_equal "${st%% *}" Z
	fi
	run -0 ns_names
	refute_output --partial "$name-i"
	refute_output --partial "$name-s"
	refute_output --partial "$name-p"
}

@test "--tun joins two tun devices through the relay" {
	topo_up --tun
	assert_equal "$USTCP_IFACE" ut0
	assert_equal "$PEER_IFACE" ut1
	run -0 timeout 10 ip -n "$USTCP_NETNS" -d -o link show dev ut0
	assert_output --partial "tun type tun"
	assert_output --partial "LOWER_UP"
	run -0 timeout 10 ip -n "$USTCP_NETNS" -o addr show dev ut0
	assert_output ""
	run -0 timeout 10 ip -n "$PEER_NETNS" -o -4 addr show dev ut1
	assert_output --partial "inet 10.9.0.1/24"
	run -0 timeout 10 ip -n "$PEER_NETNS" route show 10.9.0.0/24
	assert_output --partial "dev ut1"
	run -0 cat "$IMPAIR_LOG"
	assert_output --partial "ready: tun:ut0 (a, mtu 1500) <-> tun:ut1 (b, mtu 1500)"
	local name=$TOPO
	topo_down
	run -0 ns_names
	refute_output --partial "$name-s"
	refute_output --partial "$name-p"
	refute_output --partial "$name-i"
}

@test "down is idempotent and quiet about what does not exist" {
	run -0 --separate-stderr timeout 30 "$NETNS" down "never$$"
	assert_output ""
	assert_equal "$stderr" ""
	topo_up
	local name=$TOPO
	run -0 timeout 30 "$NETNS" down "$name"
	run -0 --separate-stderr timeout 30 "$NETNS" down "$name"
	assert_output ""
	assert_equal "$stderr" ""
	TOPO=
}

@test "up of an existing topology fails with one line and leaves it alone" {
	topo_up
	run -1 timeout 30 "$NETNS" up "$TOPO"
	assert_equal "${#lines[@]}" 1
	assert_output --partial "already exists"
	run -0 timeout 10 ip -n "$PEER_NETNS" -o -4 addr show dev peer0
	assert_output --partial "inet 10.9.0.1/24"
}

@test "bad arguments fail with status 2 and one line, creating nothing" {
	local name=bad$$ args
	local -a cases=(
		""
		"frobnicate"
		"up"
		"up bad/name"
		"up -x"
		"up $name --mtu"
		"up $name --mtu abc"
		"up $name --mtu 20"
		"up $name --mtu 70000"
		"up $name --subnet 10.9"
		"up $name --subnet 10.300.0"
		"up $name --subnet 10.9.0.0"
		"up $name --impair"
		"up $name --impair loss=5"
		"up $name --seed 5"
		"up $name --seed x --impair both"
		"up $name --frobnicate"
		"up $name extra"
		"down"
		"down $name extra"
		"list extra"
	)
	for args in "${cases[@]}"; do
		# shellcheck disable=SC2086
		run -2 timeout 30 "$NETNS" $args
		assert_equal "${#lines[@]}" 1
		assert_output --regexp "^ustcp-netns: "
	done
	run -2 timeout 30 "$NETNS" up "$name" --impair "loss 150%"
	assert_output "ustcp-netns: --impair: loss: bad percentage '150%' (expected 0% to 100%, e.g. 10%)"
	run -0 ns_names
	refute_output --partial "$name"
	assert [ ! -e "/run/ustcp-netns/$name" ]
}

@test "a failure half way through up removes what it made" {
	local fake=$BATS_TEST_TMPDIR/fake-impair
	# Accepts the rules (-n) but cannot start.
	printf '#!/bin/sh\n[ "$1" = -n ] && exit 0\necho "fake: cannot start" >&2\nexit 1\n' >"$fake"
	chmod +x "$fake"
	TOPO=ut$$${BATS_TEST_NUMBER}
	USTCP_IMPAIR=$fake run -1 timeout 30 "$NETNS" up "$TOPO" --impair "loss 1%"
	assert_output --partial "ustcp-impair did not start: fake: cannot start"
	run -0 ns_names
	refute_output --partial "$TOPO-"
	assert [ ! -e "/run/ustcp-netns/$TOPO" ]
}
