# Shared setup for the Bats suites. Every test creates its own namespaces with
# ustcp-netns (a unique name per test) and removes them in teardown, also when
# the test fails.

load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

BUILD=${USTCP_BUILD:-$BATS_TEST_DIRNAME/../../build}
NETNS=$BUILD/ustcp-netns
BG_PIDS=() # background processes, see run_bg

# topo_up [ustcp-netns options...]: create a topology named after this test and
# export what ustcp-netns printed (USTCP_IFACE, USTCP_ADDR, USTCP_NETNS,
# PEER_NETNS, PEER_ADDR, ...).
#
# Unless the test chose one, USTCP_RUN_DIR becomes the test's own: the run
# directory holds what the stacks on one address share (keyed by the address
# alone: ports, ISN secret, tombstones, groups), and test files run in
# parallel (tests/run) with the same addresses in other namespaces.
topo_up() {
	TOPO=ut$$${BATS_TEST_NUMBER}
	if [ -z "${USTCP_RUN_DIR:-}" ]; then
		export USTCP_RUN_DIR=$BATS_TEST_TMPDIR/run
	fi
	mkdir -p "$USTCP_RUN_DIR"
	local line
	line=$(timeout 30 "$NETNS" up "$TOPO" "$@") || return 1
	# shellcheck disable=SC2163
	for kv in $line; do export "$kv"; done
}

topo_down() {
	[ -n "${TOPO:-}" ] || return 0
	timeout 30 "$NETNS" down "$TOPO" || true
	TOPO=
}

# in_stack / in_peer CMD...: run a command in the stack's or the peer's
# namespace.
in_stack() { ip netns exec "$USTCP_NETNS" "$@"; }
in_peer() { ip netns exec "$PEER_NETNS" "$@"; }

# ---- topologies with a relay (ustcp-netns --impair / --tun) ----------------

# kernel_unspared: the kernel of the stack's namespace sees frames to the
# stack's addresses again (ustcp-netns's ingress rule, spare_kernel, drops
# them before it): for a test that gives it one of them.
kernel_unspared() {
	timeout 10 ip netns exec "$USTCP_NETNS" nft delete table netdev ustcp_netns 2>/dev/null || true
}

# stack_kernel_addr: give the kernel of the stack's namespace the stack's
# address and let it answer ARP, so that two kernels talk through the
# topology. Only for tests of the topology itself: under ustcp the stack owns
# that address and no kernel does.
stack_kernel_addr() {
	kernel_unspared &&
		timeout 10 ip -n "$USTCP_NETNS" addr add "$USTCP_ADDR" dev "$USTCP_IFACE" &&
		timeout 10 ip netns exec "$USTCP_NETNS" sysctl -q -w \
			net.ipv4.conf.all.arp_ignore=0 "net.ipv4.conf.$USTCP_IFACE.arp_ignore=0" >/dev/null
}

# stack_kernel_addr6: the same for IPv6 (a topology up with --ipv6): the
# kernel of the stack's namespace gets IPv6 on the stack's interface, the
# stack's IPv6 address (no DAD: usable at once) and no link-local address
# (addr_gen_mode 1: no DAD, router solicitation or MLD from one).
stack_kernel_addr6() {
	kernel_unspared &&
		timeout 10 ip netns exec "$USTCP_NETNS" sysctl -q -w \
		"net.ipv6.conf.$USTCP_IFACE.addr_gen_mode=1" "net.ipv6.conf.$USTCP_IFACE.disable_ipv6=0" >/dev/null &&
		timeout 10 ip -n "$USTCP_NETNS" addr add "$USTCP_ADDR6" dev "$USTCP_IFACE" nodad
}

# static_neigh: permanent neighbour entries on both sides of an Ethernet
# topology, so that no ARP frame adds to (or is lost from) the frames a relay
# sees.
static_neigh() {
	local smac pmac
	smac=$(timeout 10 ip -n "$USTCP_NETNS" -br link show dev "$USTCP_IFACE" | awk '{ print $3 }')
	pmac=$(timeout 10 ip -n "$PEER_NETNS" -br link show dev "$PEER_IFACE" | awk '{ print $3 }')
	timeout 10 ip -n "$USTCP_NETNS" neigh replace "$PEER_ADDR" lladdr "$pmac" \
		dev "$USTCP_IFACE" nud permanent &&
		timeout 10 ip -n "$PEER_NETNS" neigh replace "${USTCP_ADDR%/*}" lladdr "$smac" \
			dev "$PEER_IFACE" nud permanent || return 1
	# With --ipv6, the IPv6 addresses too (no neighbour solicitation).
	[ -n "${USTCP_ADDR6:-}" ] || return 0
	timeout 10 ip -n "$USTCP_NETNS" neigh replace "$PEER_ADDR6" lladdr "$pmac" \
		dev "$USTCP_IFACE" nud permanent &&
		timeout 10 ip -n "$PEER_NETNS" neigh replace "${USTCP_ADDR6%/*}" lladdr "$smac" \
			dev "$PEER_IFACE" nud permanent
}

# wait_for SECONDS CMD...: run CMD every 0.05 s until it succeeds, for at
# most SECONDS (a whole number); fails, naming CMD, if it never does. For
# waiting on the thing itself (a counter, a file, a state) instead of sleeping
# for long enough.
wait_for() {
	local i n=$(($1 * 20))
	shift
	for ((i = 0; i < n; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	"$@" && return 0
	echo "wait_for: '$*' still fails after $((n / 20)) s" >&2
	return 1
}

# wait_listen NS PORT: wait (up to 5 s) until a TCP socket listens on PORT.
wait_listen() {
	local i
	for ((i = 0; i < 100; i++)); do
		timeout 5 ip netns exec "$1" ss -ltnH "sport = :$2" | grep -q . && return 0
		sleep 0.05
	done
	echo "nothing listens on port $2 in $1" >&2
	return 1
}

# topo_down_counters FILE: topo_down, keeping what ustcp-netns down printed on
# stderr (the relay's log, ending with its counters) in FILE.
topo_down_counters() {
	[ -n "${TOPO:-}" ] || return 1
	timeout 30 "$NETNS" down "$TOPO" 2>"$1"
	TOPO=
}

# counter FILE DIRECTION NAME: one relay counter from such a FILE, e.g.
# `counter "$f" a2b lost`.
counter() {
	awk -v d="$2" -v c="$3" '$1 == d && $2 == c { v = $3 } END { print v + 0 }' "$1"
}

# pcap_segs PCAP ADDR [FILTER]: the TCP segments of a capture, one per line:
#   WHO FLAGS seq=SEQ ack=ACK len=LEN [fin=FINSEQ]
# WHO is I (ADDR's side) or P (the peer); FLAGS as tcpdump prints them; SEQ
# and ACK relative to the ISNs ("-" when tcpdump omits them); FINSEQ the
# sequence number of the FIN. One connection per capture.
pcap_segs() {
	timeout 10 tcpdump -S -nr "$1" ${3:+"$3"} 2>/dev/null | awk -v me="$2." '
		function field(re, skip) {
			return match($0, re) ? substr($0, RSTART + skip, RLENGTH - skip) : "-"
		}
		function rel(v, isn) {
			if (v == "-" || isn == "")
				return v
			v -= isn
			return v < 0 ? v + 4294967296 : v
		}
		/ IP6? / {
			who = index($3, me) == 1 ? "I" : "P"
			other = who == "I" ? "P" : "I"
			flags = field("Flags \\[[^]]*\\]", 7); sub(/\]$/, "", flags)
			seq = field(", seq [0-9]+", 6)
			ack = field(", ack [0-9]+", 6)
			len = field(", length [0-9]+", 9)
			if (flags ~ /S/)
				isn[who] = seq
			seq = rel(seq, isn[who])
			ack = rel(ack, isn[other])
			line = who " " flags " seq=" seq " ack=" ack " len=" len
			if (flags ~ /F/)
				line = line " fin=" (seq + len)
			print line
		}'
}

# run_bg CMD...: run CMD in the background with Bats' fd 3 closed (a process that
# inherited it, an exit keeper say, would hold Bats up) and the caller's
# stdin (bash gives a background job /dev/null otherwise); its pid goes to
# $BG_PID and $BG_PIDS, for the suite's teardown to end.
run_bg() {
	"$@" 3>&- <&0 &
	BG_PID=$!
	BG_PIDS+=("$BG_PID")
}

# bg_wait PID [SECONDS]: wait (default 30 s at most) for a background process
# to end; its exit status. It is no longer ended in teardown.
bg_wait() {
	local pid=$1 i rc=0
	for ((i = 0; i < ${2:-30} * 20; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "process $pid still runs after ${2:-30} s" >&2
		return 124
	fi
	wait "$pid" || rc=$?
	local p rest=()
	for p in "${BG_PIDS[@]}"; do [ "$p" = "$pid" ] || rest+=("$p"); done
	BG_PIDS=("${rest[@]}")
	return "$rc"
}

# bg_end_all: end every process run_bg started (SIGTERM; those under
# timeout -k get SIGKILL later) and wait for them.
bg_end_all() {
	local pid
	for pid in "${BG_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${BG_PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	BG_PIDS=()
}

# stat_counter PID NAME: one counter of a stack's process (ustcp-stat -s),
# 0 if it has none.
stat_counter() {
	USTCP_RUN_DIR=$USTCP_RUN_DIR timeout 10 "${STAT:-$BUILD/ustcp-stat}" -s -p "$1" |
		awk -v n="$2" '$1 == n { v = $2 } END { print v + 0 }'
}

# peer_drop_one_ack_setup: in the peer's namespace, an nftables rule that
# drops one pure ACK from an address once that address is added to the set
# "armed" (`nft add element ip ut_tw armed { ADDR }`), and nothing after:
# the way to lose our final ACK exactly once (C19). Removed with the
# namespace.
peer_drop_one_ack_setup() {
	# With 6: the same for IPv6 (table ip6 ut_tw, IPv6 addresses).
	local t=ip a=ipv4_addr
	[ "${1:-4}" = 4 ] || t=ip6 a=ipv6_addr
	timeout 10 ip netns exec "$PEER_NETNS" nft -f - <<-EOF
		table $t ut_tw {
			set armed { type $a; }
			set dropped { type $a; flags dynamic; }
			chain input {
				type filter hook input priority 0; policy accept;
				$t saddr @armed tcp flags == ack $t saddr != @dropped add @dropped { $t saddr } counter drop
			}
		}
	EOF
}

# peer_fin_acked PCAP N: wait (10 s at most) until the peer's capture PCAP
# shows its FIN N times and the stack's ACK of it (ack=2, no data) N times,
# then print those (and any RST). FIN and ACKS are the counts, $TMP/segs
# the capture's segments (pcap_segs, SADDR's side "I").
peer_fin_acked() {
	local i
	FIN=0 ACKS=0
	for ((i = 0; i < 100; i++)); do
		pcap_segs "$1" "$SADDR" >"$TMP/segs"
		FIN=$(grep -c '^P F' "$TMP/segs" || true)
		ACKS=$(grep -cE '^I \. seq=- ack=2 len=0$' "$TMP/segs" || true)
		[ "$FIN" -ge "$2" ] && [ "$ACKS" -ge "$2" ] && break
		sleep 0.1
	done
	grep -E '^(P F|I F|I \. seq=- ack=2 )|^. R' "$TMP/segs" || true
}

# peer_fin_answers SADDR PORT LPORT...: from the peer's namespace, a FIN
# from PORT (out of sequence, scapy) to each LPORT of SADDR; prints "LPORT
# FLAGS" for the first segment that comes back from that 4-tuple within
# 3 s, or "LPORT none". A TIME-WAIT answers with an ACK ("A"). PORT 0:
# each LPORT is PEERPORT:LPORT instead (one 4-tuple each, the line
# "PEERPORT:LPORT FLAGS").
peer_fin_answers() {
	timeout 120 ip netns exec "$PEER_NETNS" /usr/bin/python3 - "$PEER_ADDR" "$PEER_IFACE" "$@" <<-'PY'
		import sys, time
		from scapy.all import IP, TCP, AsyncSniffer, send
		src, ifname, dst, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
		for a in sys.argv[5:]:
		    pport, lport = (int(x) for x in a.split(":")) if port == 0 else (port, int(a))
		    sn = AsyncSniffer(iface=ifname, count=1, timeout=3,
		                      filter="tcp and src host %s and src port %d and dst port %d" % (dst, lport, pport))
		    sn.start()
		    time.sleep(0.3)
		    send(IP(src=src, dst=dst) / TCP(sport=pport, dport=lport, flags="FA", seq=12345, ack=1), verbose=False)
		    sn.join()
		    print(a, sn.results[0][TCP].flags if sn.results else "none")
	PY
}

# capture_start NETNS IFACE PCAP SECONDS FILTER: tcpdump (headers, 128
# bytes, written as they come) on IFACE in NETNS for at most SECONDS, in the
# background; returns once it listens. Its pid is CAPTURE_PID (also in
# BG_PIDS, so teardown ends it); stop it with SIGINT for it to write all.
capture_start() {
	local err=$3.err i
	ip netns exec "$1" timeout -k 5 "$4" tcpdump -i "$2" -n -s 128 -B 16384 -U --immediate-mode \
		-Z root -w "$3" "$5" 2>"$err" 3>&- &
	CAPTURE_PID=$!
	BG_PIDS+=("$CAPTURE_PID")
	for ((i = 0; i < 100; i++)); do
		grep -qs "listening on" "$err" && return 0
		kill -0 "$CAPTURE_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "tcpdump did not start:" >&2
	cat "$err" >&2
	return 1
}

# wait_file FILE [SECONDS]: wait (default 15 s) until FILE exists.
wait_file() {
	local i
	for ((i = 0; i < ${2:-15} * 20; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.05
	done
	echo "$1 did not appear in ${2:-15} s" >&2
	return 1
}
