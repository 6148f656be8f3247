#!/usr/bin/env bats
# A SYN flood changes nothing (issue 13): spoofed SYNs from the peer's side
# (build/tests/synflood, sources in 198.18.0.0/16 routed back through the
# peer, which drops the SYN-ACKs) at a listener with a small backlog, while a
# real client there connects, fetches a reply and closes, again and again.
# The SYN queue stays at its bound, the listener answers with SYN cookies
# (Linux's tcp_syncookies=1), every real connection is served, the server's
# memory stays where it was, and it serves after the flood as before.
#
# Bodies run on the kernel's TCP ([kernel], which proves the test) and under
# ustcp, as in 060-shim.bats. The flood is bounded: RATE SYNs/s for SECS s.
#
# The IPv6 twins (issue 16) flood the stack's IPv6 address from SPOOF6, a
# /64 of the test's own ULA /48 (ustcp-netns's fd00:A:B::/48) that no link
# holds, routed back through the peer, which forwards nothing.

bats_require_minimum_version 1.5.0

load helpers
load shim

RATE=20000
SECS=3
BACKLOG=16
REPLY=10000
SPOOF=198.18.0.0/16

# A client's "key value" output.
val() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }

# flood_setup [6]: the topology (IPv6 too with 6), the route back for the
# spoofed sources through the peer, and the server on ADDR, the address the
# flood and the client aim at.
flood_setup() {
	local spoof gw
	if [ "${1:-}" = 6 ]; then
		shim6_topo_up
		ADDR=$SADDR6
		# fd00:A:B:0:1::/64 is the link; fd00:A:B:ff::/64 nobody's.
		SPOOF6=$(awk -F: '{ printf "%s:%s:%s:ff::/64", $1, $2, $3 }' <<<"$SADDR6")
		spoof=$SPOOF6 gw=$PEER_ADDR6
		timeout 10 ip netns exec "$PEER_NETNS" sysctl -q -w net.ipv6.conf.all.forwarding=0
		export USTCP_GW=$PEER_ADDR,$PEER_ADDR6
	else
		shim_topo_up
		ADDR=$SADDR
		spoof=$SPOOF gw=$PEER_ADDR
		timeout 10 ip netns exec "$PEER_NETNS" sysctl -q -w net.ipv4.ip_forward=0
		export USTCP_GW=$PEER_ADDR
	fi
	FLOOD_SRC=$spoof
	if [ "$MODE" = kernel ]; then
		timeout 10 ip -n "$USTCP_NETNS" route add "$spoof" via "$gw"
		# (One switch for both families, as Linux's.)
		timeout 10 ip netns exec "$USTCP_NETNS" sysctl -q -w net.ipv4.tcp_syncookies=1
	fi
	export USTCP_RUN_DIR=$TMP/run
	prog_bg /usr/bin/python3 "$SHIM_DIR/flood_server.py" "$ADDR" 9000 "$BACKLOG" "$REPLY" 50 \
		</dev/null >"$TMP/server.out"
	prog_wait_listen 9000 "$ADDR"
	wait_for 10 pgrep -f "^/usr/bin/python3 $SHIM_DIR/flood_server.py $ADDR " >/dev/null
	SPID=$(pgrep -f "^/usr/bin/python3 $SHIM_DIR/flood_server.py $ADDR " | head -n 1)
}

# rss_kb: the server's resident memory (KiB) but its receive ring, a fixed
# size mapped from the start (USTCP_RX_RING; the mapping of the packet
# socket, "socket:[...]" in smaps): what the flood costs beyond it is what
# the SYN queue holds.
rss_kb() {
	awk '/^[0-9a-f]+-[0-9a-f]+ / { ring = $6 ~ /^socket:\[/ } $1 == "Rss:" && !ring { kb += $2 }
		END { print kb + 0 }' "/proc/$SPID/smaps"
}

# half_open: the server's connections in SYN-RECEIVED.
half_open() {
	if [ "$MODE" = kernel ]; then
		ip netns exec "$USTCP_NETNS" ss -tanH state syn-recv | wc -l
	else
		USTCP_RUN_DIR=$USTCP_RUN_DIR timeout 10 "$BUILD/ustcp-stat" | grep -c '^SYN-RECV' || true
	fi
}

# counter NAME: ustcp-stat -s's NAME, or the kernel's nstat TcpExtNAME.
counter() {
	if [ "$MODE" = kernel ]; then
		ip netns exec "$USTCP_NETNS" nstat -az "TcpExt$1" | awk -v k="TcpExt$1" '$1 == k { print $2 }'
	else
		USTCP_RUN_DIR=$USTCP_RUN_DIR timeout 10 "$BUILD/ustcp-stat" -s | awk -v k="$2" '$1 == k { print $2 }'
	fi
}

# body_flood [6]: over IPv4, or IPv6 with 6.
body_flood() {
	flood_setup "${1:-}"
	peer /usr/bin/python3 "$SHIM_DIR/flood_client.py" "$ADDR" 9000 20 "$REPLY" 10 >"$TMP/before.out"
	cat "$TMP/before.out"
	[ "$(val "$TMP/before.out" ok)" = 20 ]
	local rss0
	rss0=$(rss_kb)
	peer_bg "$BUILD/tests/synflood" "$ADDR" 9000 "$FLOOD_SRC" "$RATE" $((RATE * SECS)) "$SECS" >"$TMP/flood.out"
	local fpid=$BG_PID
	sleep 0.3
	peer /usr/bin/python3 "$SHIM_DIR/flood_client.py" "$ADDR" 9000 100000 "$REPLY" $((SECS - 1)) \
		>"$TMP/during.out"
	local syn_recv rss1
	syn_recv=$(half_open)
	rss1=$(rss_kb)
	wait "$fpid"
	cat "$TMP/flood.out" "$TMP/during.out"
	echo "half-open during the flood: $syn_recv; server VmRSS $rss0 -> $rss1 KiB"
	# The flood happened, and the client was served all along.
	[ "$(awk '{ print $2 }' "$TMP/flood.out")" -ge $((RATE * SECS / 2)) ]
	[ "$(val "$TMP/during.out" ok)" -ge 10 ]
	[ "$(val "$TMP/during.out" failed)" = 0 ]
	# The SYN queue at its bound (more than the backlog: Linux keeps
	# backlog + 1), the rest cookies.
	[ "$syn_recv" -le $((BACKLOG + 1)) ]
	[ "$syn_recv" -ge "$BACKLOG" ]
	echo "cookies sent $(counter SyncookiesSent tcp-syncookies-sent), received $(counter SyncookiesRecv tcp-syncookies-recv)"
	[ "$(counter SyncookiesSent tcp-syncookies-sent)" -ge $((RATE * SECS / 2)) ]
	[ "$(counter SyncookiesFailed tcp-syncookies-failed)" = 0 ]
	# The flood cost the server's process (ustcp's stack is in it) no
	# more than 4 MiB besides the ring.
	[ "$rss1" -le $((rss0 + 4096)) ]
	# After: served as before.
	peer /usr/bin/python3 "$SHIM_DIR/flood_client.py" "$ADDR" 9000 20 "$REPLY" 10 >"$TMP/after.out"
	cat "$TMP/after.out"
	[ "$(val "$TMP/after.out" ok)" = 20 ]
}

@test "flood: spoofed SYNs, the SYN queue stays bounded, cookies serve a real client [kernel]" { MODE=kernel body_flood; }
@test "flood: spoofed SYNs, the SYN queue stays bounded, cookies serve a real client [ustcp]" { MODE=ustcp body_flood; }
@test "flood over IPv6: spoofed SYNs, the SYN queue stays bounded, cookies serve a real client [kernel]" { MODE=kernel body_flood 6; }
@test "flood over IPv6: spoofed SYNs, the SYN queue stays bounded, cookies serve a real client [ustcp]" { MODE=ustcp body_flood 6; }
