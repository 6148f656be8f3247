#!/usr/bin/env bats
# What steering frames by port (issue 13, docs/architecture.md §6) relies on
# in the kernel, checked on this one before anything is built on it
# (tests/shim/fanout_facts.py): a PACKET_FANOUT_CBPF group's program, which
# sees frames from the IP header, picks the member by TCP port; a member
# whose filter is locked cannot replace it, an unlocked one can; a member
# stays in the group while any dup of its socket is open; and its last
# close moves the last member into its place.

bats_require_minimum_version 1.5.0

load helpers
load launcher

teardown() {
	[ -z "${SYN_PID:-}" ] || { kill "$SYN_PID" 2>/dev/null; wait "$SYN_PID" 2>/dev/null; }
	bg_end_all
	topo_down
}

@test "steering: the kernel's fanout groups behave as the design needs (a fact of Linux, no twin)" {
	[ "$(id -u)" = 0 ] || skip "needs root"
	topo_up
	static_neigh
	# Its sockets are bound to IPv4 alone (ETH_P_IP), which the kernel
	# serves after the ingress hook: the topology's rule would take the
	# SYNs before them (the stack's are bound to ETH_P_ALL, served before).
	kernel_unspared
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

# ---- steering as built: programs under one launcher share one group ----------

STEER_PY=$BATS_TEST_DIRNAME/../shim/steer_progs.py


# peer_sends ADDR MB: the peer listens at ADDR:9300, sends 1 MiB to the
# first connection and MB MiB to the second, closing each.
peer_sends() {
	peer_bg /usr/bin/python3 -c '
import socket, sys
l = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], 9300)); l.listen(4)
for n in (1, int(sys.argv[2])):
    c, _ = l.accept()
    for _ in range(n):
        c.sendall(bytes(1 << 20))
    c.close()' "$addr" "$mb" </dev/null
	wait_listen "$PEER_NETNS" 9300
}

# bulk_beside_holder ADDR [LAUNCHER OPTIONS...]: a process of the launcher
# holds a connection to the peer at ADDR (1 MiB received) while another
# receives 40 MiB from it; the holder must get its own frames alone (its
# handshake, its 1 MiB in GSO frames, its end: not the bulk flow's 640 or
# more frames).
bulk_beside_holder() {
	local addr=$1 mb=40
	shift
	peer_sends "$addr" "$mb"
	cat >"$TMP/run.sh" <<-EOF
		python3 $STEER_PY hold $addr 9300 $TMP/holder $TMP/stop &
		while [ ! -s $TMP/holder ]; do sleep 0.05; done
		python3 $STEER_PY bulk $addr 9300 >$TMP/bulk
		touch $TMP/bulk.done
		wait
	EOF
	launch_bg "$@" sh "$TMP/run.sh"
	local bg=$BG_PID
	wait_file "$TMP/bulk.done" 40
	run -0 cat "$TMP/bulk"
	assert_output "bulk $((mb << 20))"
	local pid frames foreign
	pid=$(cat "$TMP/holder")
	frames=$(stat_counter "$pid" rx-frames)
	foreign=$(stat_counter "$pid" tcp-foreign)
	touch "$TMP/stop"
	bg_wait "$bg" 20
	echo "holder: rx-frames $frames, tcp-foreign $foreign"
	[ "$frames" -lt 100 ]
	[ "$foreign" -eq 0 ]
}

@test "steering: a bulk flow's frames reach its process alone, not one holding another connection [ustcp]" {
	[ "$(id -u)" = 0 ] || skip "needs root"
	TMP=$BATS_TEST_TMPDIR
	launcher_topo_up
	bulk_beside_holder "$PEER_ADDR"
}

# The receive ring of a launched program is set by the broker before the
# socket is bound and joins the group (stack/link.c, link_socket_ring):
# every frame of the bulk flow comes through it, the first as the last, and
# setting it moves no member in the group (it once did, set once frames
# streamed in: the kernel unlinks a socket to set its ring and links it
# again last). (ARP comes on a socket of its own, without a ring.) Here the
# bulk receiver joined first and the holder last: each must get its own
# frames alone.
@test "steering: a launched program receives every frame through its ring, and each process its own frames [ustcp]" {
	[ "$(id -u)" = 0 ] || skip "needs root"
	TMP=$BATS_TEST_TMPDIR
	launcher_topo_up --no-offload
	local mb=40
	peer_sends "$PEER_ADDR" "$mb"
	cat >"$TMP/run.sh" <<-EOF
		python3 $STEER_PY bulk-after $PEER_ADDR 9300 $TMP/bulk.pid $TMP/go $TMP/stop >$TMP/bulk &
		while [ ! -s $TMP/bulk.pid ]; do sleep 0.05; done
		python3 $STEER_PY hold $PEER_ADDR 9300 $TMP/holder $TMP/stop &
		while [ ! -s $TMP/holder ]; do sleep 0.05; done
		touch $TMP/go
		wait
	EOF
	launch_bg sh "$TMP/run.sh"
	local bg=$BG_PID
	wait_for 40 grep -q bulk "$TMP/bulk"
	run -0 cat "$TMP/bulk"
	assert_output "bulk $((mb << 20))"
	local bulk holder frames ring arp hframes hforeign foreign
	bulk=$(cat "$TMP/bulk.pid") holder=$(cat "$TMP/holder")
	# One reading of the bulk's counters, so that they add up.
	USTCP_RUN_DIR=$USTCP_RUN_DIR timeout 10 "$BUILD/ustcp-stat" -s -p "$bulk" >"$TMP/bulk.stat"
	read -r frames ring arp foreign < <(awk '{ v[$1] = $2 } END {
		print v["rx-frames"] + 0, v["rx-ring"] + 0, v["arp-requests-in"] + v["arp-replies-in"], v["tcp-foreign"] + 0
	}' "$TMP/bulk.stat")
	hframes=$(stat_counter "$holder" rx-frames) hforeign=$(stat_counter "$holder" tcp-foreign)
	touch "$TMP/stop"
	bg_wait "$bg" 20
	echo "bulk: rx-frames $frames, rx-ring $ring, ARP $arp, tcp-foreign $foreign; holder: rx-frames $hframes, tcp-foreign $hforeign"
	((ring + arp == frames))
	[ "$foreign" -eq 0 ]
	[ "$hframes" -lt 2000 ]
	[ "$hforeign" -eq 0 ]
}

@test "steering: a forking server's children, a client churning through its pool of ports, a closed port refused [ustcp]" {
	[ "$(id -u)" = 0 ] || skip "needs root"
	TMP=$BATS_TEST_TMPDIR
	launcher_topo_up
	peer_bg /usr/bin/python3 "$BATS_TEST_DIRNAME/../shim/echo_server.py" "$PEER_ADDR" 9400 200 \
		</dev/null >"$TMP/echo.out"
	wait_listen "$PEER_NETNS" 9400
	cat >"$TMP/run.sh" <<-EOF
		python3 $STEER_PY fork-server $SADDR 7000 20 $TMP/ready >$TMP/server &
		python3 $STEER_PY churn $PEER_ADDR 9400 200 >$TMP/churn
		wait
	EOF
	launch_bg sh "$TMP/run.sh"
	local bg=$BG_PID
	wait_file "$TMP/ready" 20
	# 20 connections to the server, each served by a child (whose socket
	# the parent's stack serves, as after any fork: the listener's port
	# is steered there); then a port nobody holds: the stack that
	# answers for the address resets the SYN.
	run -0 in_peer timeout 60 /usr/bin/python3 -c '
import socket, sys
for i in range(20):
    s = socket.create_connection((sys.argv[1], 7000), timeout=10)
    s.sendall(b"x" * 5000)
    s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
    assert got == b"x" * 5000, (i, len(got))
    s.close()
try:
    socket.create_connection((sys.argv[1], 7999), timeout=5)
    print("7999 connected")
except ConnectionRefusedError:
    print("7999 refused")
print("peer OK")' "$SADDR"
	assert_line "7999 refused"
	assert_line "peer OK"
	bg_wait "$bg" 60
	run -0 cat "$TMP/server" "$TMP/churn"
	assert_line "fork-server served 20 failed 0"
	assert_line "churn OK"
}

# Under the launcher an exit keeper keeps its member's place in the group
# and its ports' claims (its socket's filter stays the broker's, locked:
# docs/architecture.md §5): the peer's FIN, retransmitted because the
# keeper's first ACK of it was dropped, still reaches the keeper, which
# ACKs it again in TIME-WAIT.
@test "steering: an exit keeper still gets its ports' frames: a retransmitted FIN ACKed in TIME-WAIT [ustcp]" {
	[ "$(id -u)" = 0 ] || skip "needs root"
	TMP=$BATS_TEST_TMPDIR
	export USTCP_MSL=10
	launcher_topo_up
	peer_drop_one_ack_setup
	capture_start "$PEER_NETNS" "$PEER_IFACE" "$TMP/peer.pcap" 120 tcp
	head -c 1000000 /dev/urandom >"$TMP/mid"
	local lt=$BATS_TEST_DIRNAME/../lifetime
	peer_bg python3 "$lt/sink.py" "$PEER_ADDR" 7000 1 60 \
		"nft add element ip ut_tw armed { $SADDR }" </dev/null >"$TMP/sink.out"
	local sink=$BG_PID
	wait_listen "$PEER_NETNS" 7000
	launch python3 "$lt/send_exit.py" close "$PEER_ADDR" 7000 "$TMP/mid" "$TMP/pid"
	bg_wait "$sink" 30
	cat "$TMP/sink.out"
	grep -q ' 1000000 .* eof$' "$TMP/sink.out"
	local pid kpid
	read -r pid <"$TMP/pid"
	peer_fin_acked "$TMP/peer.pcap" 2
	timeout 10 ip netns exec "$PEER_NETNS" nft list chain ip ut_tw input | grep -q "counter packets 1 "
	[ "$FIN" -eq 2 ]
	[ "$ACKS" -eq 2 ]
	run ! grep -E '^. R' "$TMP/segs"
	# Held by the keeper, whose filter was not touched.
	stat_until 10 "^TIME-WAIT .*:7000 +users:"
	[[ $STAT_OUT =~ pid=([0-9]+) ]]
	kpid=${BASH_REMATCH[1]}
	[ "$kpid" != "$pid" ]
	[ "$(stat_counter "$kpid" link-filters)" -eq 0 ]
}

# SO_REUSEPORT across two processes of one launcher (062's test, with
# frames steered by port): the group's port goes to no member of the
# fanout group, and each member reads it on a socket of its own from the
# broker (steer.h, UST_STEER_CLAIM_GROUP), so its SYNs reach every member
# and the flow's hash picks one listener, the same for all; a bare ACK
# that no member's connection holds is reset once; after one member
# closes its listener the other takes every connection while the first's
# held connection lives on. (Before the group claim, the broker steered
# the port to the last member to claim it, and the other's connections
# timed out.)
# reuseport_two_procs ADDR [LAUNCHER_ARGS...]: that test on ADDR. Each
# server's stack read the port on a socket from the broker
# (steer-group-socks), counted while both live.
reuseport_two_procs() {
	local addr=$1 rp=$BATS_TEST_DIRNAME/../shim/reuseport_procs.py
	shift
	mkdir "$TMP/ctl"
	cat >"$TMP/run.sh" <<-EOF
		python3 $rp server A $addr 7500 $TMP/ctl </dev/null &
		echo \$! >$TMP/pids
		while [ ! -e $TMP/ctl/A.ready ]; do sleep 0.05; done
		python3 $rp server B $addr 7500 $TMP/ctl </dev/null &
		echo \$! >>$TMP/pids
		while [ ! -e $TMP/ctl/B.ready ]; do sleep 0.05; done
		python3 $rp bind $addr 7500 >$TMP/bind
		touch $TMP/all.ready
		wait
	EOF
	launch_bg "$@" sh "$TMP/run.sh"
	local bg=$BG_PID pid
	wait_file "$TMP/all.ready" 30
	run -0 cat "$TMP/bind"
	assert_output EADDRINUSE
	for pid in $(cat "$TMP/pids"); do
		[ "$(stat_counter "$pid" steer-group-socks)" -eq 1 ]
	done
	in_peer timeout 120 python3 "$rp" client "$addr" 7500 "$TMP/ctl" >"$TMP/out" 2>"$TMP/err" ||
		{ cat "$TMP/out" "$TMP/err"; return 1; }
	cat "$TMP/out" "$TMP/err" # the spread, on stderr
	diff -u "$BATS_TEST_DIRNAME/062-reuseport-procs.out" "$TMP/out"
	bg_wait "$bg" 60
}

@test "steering: SO_REUSEPORT servers in two processes share a port; one leaves, the other takes all; strays reset once [ustcp]" {
	[ "$(id -u)" = 0 ] || skip "needs root"
	TMP=$BATS_TEST_TMPDIR
	launcher_topo_up
	reuseport_two_procs "$SADDR"
}

# Exit keepers of separate launchers (three brokers, three fanout groups)
# hand their TIME-WAITs to one collector (stackthread/twcollect.c), whose
# broker steers the ports to it: three client runs, each closing first
# and leaving a TIME-WAIT, then one holder on ustcp-stat and one launcher
# left; a FIN from the peer's port to each of the three TIME-WAITs (a
# segment out of sequence) is answered with an ACK.
@test "steering: the TIME-WAITs of three launchers' programs go to one collector, which gets their frames [ustcp]" {
	[ "$(id -u)" = 0 ] || skip "needs root"
	TMP=$BATS_TEST_TMPDIR
	export USTCP_MSL=10
	launcher_topo_up
	peer_bg /usr/bin/python3 -c '
import socket, sys
l = socket.create_server((sys.argv[1], 9400))
for _ in range(3):
    c, _ = l.accept()
    while c.recv(65536):
        pass
    c.close()' "$PEER_ADDR" </dev/null
	local peer=$BG_PID i lport ports
	wait_listen "$PEER_NETNS" 9400
	for ((i = 0; i < 3; i++)); do
		launch python3 -c '
import socket, sys
s = socket.create_connection((sys.argv[1], 9400))
s.sendall(b"x" * 1000)
s.shutdown(socket.SHUT_WR)
s.recv(1)
s.close()' "$PEER_ADDR" </dev/null
	done
	bg_wait "$peer" 20
	for ((i = 0; i < 50; i++)); do
		STAT_OUT=$(timeout 10 "$STAT")
		[ "$(grep -c '^TIME-WAIT' <<<"$STAT_OUT")" -eq 3 ] &&
			[ "$(grep '^TIME-WAIT' <<<"$STAT_OUT" | grep -oE 'pid=[0-9]+' | sort -u | wc -l)" -eq 1 ] && break
		sleep 0.1
	done
	echo "$STAT_OUT"
	[ "$(grep '^TIME-WAIT' <<<"$STAT_OUT" | grep -oE 'pid=[0-9]+' | sort -u | wc -l)" -eq 1 ]
	[ "$(grep -c '^TIME-WAIT' <<<"$STAT_OUT")" -eq 3 ]
	pgrep -fa "$LAUNCHER " || true
	ports=$(awk '$1 == "TIME-WAIT" { n = split($4, a, ":"); print a[n] }' <<<"$STAT_OUT")
	run peer_fin_answers "$SADDR" 9400 $ports
	echo "$output"
	[ "$(grep -cE '^[0-9]+ A$' <<<"$output")" -eq 3 ]
}

# ---- over IPv6 (issue 16): the launcher with an IPv6 address (-A) -----------

# The bulk test over IPv6: the holder's and the bulk flow's connections
# go to [PEER_ADDR6] (client ports, claimed for both families), each stack
# finds the peer by neighbour discovery on its own neighbour socket (the
# group gives NDP to no member), and the bulk flow's frames reach its
# process alone.
@test "steering over IPv6: a bulk flow's frames reach its process alone, not one holding another connection [ustcp]" {
	[ "$(id -u)" = 0 ] || skip "needs root"
	TMP=$BATS_TEST_TMPDIR
	launcher_topo_up --ipv6
	bulk_beside_holder "$PEER_ADDR6" -A "$USTCP_ADDR6"
}

# One port, two processes, one family each (Linux's port spaces are apart:
# an AF_INET and an IPV6_V6ONLY listener share it): the peer's IPv4
# connections reach the AF_INET listener's process, its IPv6 ones the
# other's, each steered by its family's table on its reservation's proof.
# Then a port nobody holds over IPv6: refused.
@test "steering over IPv6: AF_INET and IPV6_V6ONLY listeners of one port in two processes each get their family [ustcp]" {
	[ "$(id -u)" = 0 ] || skip "needs root"
	TMP=$BATS_TEST_TMPDIR
	launcher_topo_up --ipv6
	local saddr6=${USTCP_ADDR6%/*}
	cat >"$TMP/run.sh" <<-EOF
		python3 $STEER_PY serve 4 $SADDR 7000 5 $TMP/ready4 $TMP/stop >$TMP/s4 &
		python3 $STEER_PY serve 6 :: 7000 5 $TMP/ready6 $TMP/stop >$TMP/s6 &
		wait
	EOF
	launch_bg -A "$USTCP_ADDR6" sh "$TMP/run.sh"
	local bg=$BG_PID
	wait_file "$TMP/ready4" 20
	wait_file "$TMP/ready6" 20
	run -0 in_peer timeout 60 /usr/bin/python3 -c '
import socket, sys
got = {}
for i in range(10):
    addr = sys.argv[1] if i % 2 else sys.argv[2]
    for t in range(50):
        try:
            s = socket.create_connection((addr, 7000), timeout=10)
            break
        except ConnectionRefusedError:
            import time; time.sleep(0.1)
    line = b""
    while not line.endswith(b"\n"):
        b = s.recv(100)
        if not b:
            break
        line += b
    s.close()
    fam, pid = line.split()
    got.setdefault(addr, set()).add((fam.decode(), pid.decode()))
for addr in (sys.argv[1], sys.argv[2]):
    print(addr, " ".join("%s/%s" % x for x in sorted(got[addr])))
try:
    socket.create_connection((sys.argv[2], 7999), timeout=5)
    print("7999 connected")
except ConnectionRefusedError:
    print("7999 refused")' "$SADDR" "$saddr6"
	echo "$output"
	# Each address saw one process, of its family, and they differ.
	local l4 l6
	l4=$(grep "^$SADDR " <<<"$output")
	l6=$(grep "^$saddr6 " <<<"$output")
	[[ $l4 =~ ^$SADDR\ 4/[0-9]+$ ]]
	[[ $l6 =~ ^$saddr6\ 6/[0-9]+$ ]]
	[ "${l4##*/}" != "${l6##*/}" ]
	assert_line "7999 refused"
	# Each received its own connections' frames only: the peer sends 4 or
	# 5 a connection, 5 connections each, 46 frames for each when every
	# process sees all of them (measured unsteered on main); none of the
	# other's segments dropped as another's either.
	local f4 f6 r4 r6
	f4=$(stat_counter "${l4##*/}" tcp-foreign)
	f6=$(stat_counter "${l6##*/}" tcp-foreign)
	r4=$(stat_counter "${l4##*/}" rx-frames)
	r6=$(stat_counter "${l6##*/}" rx-frames)
	touch "$TMP/stop"
	echo "tcp-foreign: IPv4 server $f4, IPv6 server $f6; rx-frames $r4, $r6"
	[ "$r4" -lt 36 ]
	[ "$r6" -lt 36 ]
	[ "$f4" -eq 0 ]
	[ "$f6" -eq 0 ]
	bg_wait "$bg" 30
	run -0 cat "$TMP/s4" "$TMP/s6"
	assert_line "served 4 5"
	assert_line "served 6 5"
}

# The SO_REUSEPORT group test over IPv6: the port's sockets from the
# broker read IPv6's frames of the port (group6_prefix in stack/link.c).
@test "steering over IPv6: SO_REUSEPORT servers in two processes share a port; one leaves, the other takes all [ustcp]" {
	[ "$(id -u)" = 0 ] || skip "needs root"
	TMP=$BATS_TEST_TMPDIR
	launcher_topo_up --ipv6
	reuseport_two_procs "${USTCP_ADDR6%/*}" -A "$USTCP_ADDR6"
}
