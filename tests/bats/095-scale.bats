#!/usr/bin/env bats
# Many connections in one process (issue 13): no fixed cap below the fd
# limit, every table grows (or is sized from the fd limit), and running out
# is the kernel's error, counted, never a crash.
#
# Bodies run on the kernel's TCP ([kernel], which proves the test) and under
# ustcp, as in 060-shim.bats.

bats_require_minimum_version 1.5.0

load helpers
load shim

# More than the engine's old ceiling (4096 control blocks) and than the old
# fd table of the shim reached with the default limits; a few seconds, also
# under ASan.
N=5000

# idle_run N: the kernel peer holds a server on 9000; the program opens N
# idle connections with keepalive, closes them, and its fd count comes back
# to where it started. The server must see every one end with a FIN.
idle_run() {
	local n=$1 out
	peer_bg /usr/bin/python3 "$SHIM_DIR/idle_server.py" "$PEER_ADDR" 9000 "$n" "$TMP/server.out" 100 </dev/null
	wait_listen "$PEER_NETNS" 9000
	# TIME-WAIT holds a port's reservation: a short one lets the count
	# come back within the test.
	USTCP_MSL=0.5 PROG_TIMEOUT=100 prog bash -c "ulimit -n 20000 && exec /usr/bin/python3 '$SHIM_DIR/idle_conns.py' '$PEER_ADDR' 9000 $n" >"$TMP/conns.out"
	cat "$TMP/conns.out"
	wait_for 30 test -s "$TMP/server.out"
	cat "$TMP/server.out"
	grep -qx "opened $n" "$TMP/conns.out"
	! grep -q '^error' "$TMP/conns.out"
	grep -qx "accepted $n eof $n rst 0" "$TMP/server.out"
	[ "$(awk '$1 == "fds_before" { print $2 }' "$TMP/conns.out")" = "$(awk '$1 == "fds_after" { print $2 }' "$TMP/conns.out")" ]
	# At most two fds a connection (the app end and the stack end: a
	# client port is held in the address share, no kernel socket).
	awk -v n="$n" '$1 == "fds_before" { b = $2 } $1 == "fds_open" { o = $2 }
		END { exit !(o - b <= 2 * n) }' "$TMP/conns.out"
}

body_idle_many() {
	shim_topo_up
	idle_run "$N"
}

@test "scale: $N idle connections open, stay up, close with FINs, fds come back [kernel]" { MODE=kernel body_idle_many; }
@test "scale: $N idle connections open, stay up, close with FINs, fds come back [ustcp]" { MODE=ustcp body_idle_many; }

# A connection's port, held in the address share under ustcp, is Linux's
# EADDRINUSE to another process's bind(), and shared only when both
# sockets have SO_REUSEADDR.
body_port_share() {
	shim_topo_up
	peer_bg /usr/bin/python3 "$SHIM_DIR/idle_server.py" "$PEER_ADDR" 9000 2 "$TMP/server.out" 10 </dev/null
	wait_listen "$PEER_NETNS" 9000
	run -0 prog /usr/bin/python3 "$SHIM_DIR/port_share.py" "$PEER_ADDR" 9000
	assert_output "conn=plain bind=plain EADDRINUSE
conn=plain bind=reuse EADDRINUSE
conn=reuse bind=plain EADDRINUSE
conn=reuse bind=reuse ok"
}

@test "scale: a connection's port is EADDRINUSE to another process's bind() [kernel]" { MODE=kernel body_port_share; }
@test "scale: a connection's port is EADDRINUSE to another process's bind() [ustcp]" { MODE=ustcp body_port_share; }

# connect() takes its port from net.ipv4.ip_local_port_range and never one
# of net.ipv4.ip_local_reserved_ports, as Linux's allocator (ports.c reads
# both files, the list's ranges included): of ten ports with five of them
# reserved, five connections to one server get the other five, and a
# sixth fails with EADDRNOTAVAIL.
body_port_range() {
	shim_topo_up
	in_stack sysctl -q -w net.ipv4.ip_local_port_range="40000 40009" \
		net.ipv4.ip_local_reserved_ports="40000-40002,40003,40005"
	peer_bg /usr/bin/python3 "$SHIM_DIR/idle_server.py" "$PEER_ADDR" 9000 5 "$TMP/server.out" 10 </dev/null
	wait_listen "$PEER_NETNS" 9000
	run -0 prog /usr/bin/python3 -c "
import errno, socket
held = []
for i in range(6):
    s = socket.socket()
    try:
        s.connect(('$PEER_ADDR', 9000))
        held.append(s)
    except OSError as e:
        print('connect', errno.errorcode[e.errno])
print(*sorted(s.getsockname()[1] for s in held))"
	assert_output "connect EADDRNOTAVAIL
40004 40006 40007 40008 40009"
}

@test "scale: connect() ports come from ip_local_port_range, never ip_local_reserved_ports [kernel]" { MODE=kernel body_port_range; }
@test "scale: connect() ports come from ip_local_port_range, never ip_local_reserved_ports [ustcp]" { MODE=ustcp body_port_range; }

# exhaust [ENV...]: the program opens connections to the peer's server until
# one is refused, with its fd limit at 100, then shows its counters
# (ustcp-stat -s) and opens one more once it has closed the rest.
exhaust() {
	peer_bg /usr/bin/python3 "$SHIM_DIR/idle_server.py" "$PEER_ADDR" 9000 1000000 "$TMP/server.out" 50 </dev/null
	wait_listen "$PEER_NETNS" 9000
	export USTCP_RUN_DIR=$TMP/run USTCP_MSL=0.5
	PROG_TIMEOUT=40 prog env "$@" bash -c "ulimit -n 100 && exec /usr/bin/python3 '$SHIM_DIR/exhaust.py' '$PEER_ADDR' 9000 env -u LD_PRELOAD USTCP_RUN_DIR=$USTCP_RUN_DIR '$BUILD/ustcp-stat' -s" >"$TMP/exhaust.out" 2>&1
	cat "$TMP/exhaust.out"
	grep -qx "again ok" "$TMP/exhaust.out"
}

# stat_counter NAME: the value ustcp-stat -s printed for NAME.
stat_counter() {
	awk -v n="$1" '$1 == n { print $2 }' "$TMP/exhaust.out"
}

# Out of fds: socket() fails with EMFILE (the socketpair's), as the kernel's
# socket() does, and ustcp counts it. ustcp holds fewer connections within
# the same limit (2 fds each: the app end and the stack end).
body_exhaust_fds() {
	shim_topo_up
	exhaust
	grep -qx "error socket EMFILE" "$TMP/exhaust.out"
	if [ "$MODE" = ustcp ]; then
		[ "$(stat_counter sock-no-fd)" -ge 1 ]
	fi
}

@test "scale: out of fds, socket() fails with EMFILE and the process recovers [kernel]" { MODE=kernel body_exhaust_fds; }
@test "scale: out of fds, socket() fails with EMFILE and the process recovers [ustcp]" { MODE=ustcp body_exhaust_fds; }

# peer_open PORT: connections to the peer's PORT that have not ended there
# (established, or the FIN not yet read).
peer_open() {
	in_peer ss -tnH state established state close-wait "sport = :$1" | grep -q .
}

# Out of fds with the program's half of the fd table full (fdbase.c: the
# stack's own fds go above half the limit): 40 fds held low, then
# connections until socket() fails with EMFILE, then all closed. Every
# peer must see its FIN and the fds come back. The last connections'
# stack ends are then accepted above the half, as at the scale bench's
# 10,000 (a hard limit of 20000), where a spare held past the pairing (a
# dup of the app end, relay.c stack_end_number) kept the app end open
# after the program's close: no hang-up, no FIN, two fds left.
body_exhaust_eof() {
	local server opened
	shim_topo_up
	peer_bg /usr/bin/python3 "$SHIM_DIR/idle_server.py" "$PEER_ADDR" 9000 1000000 "$TMP/server.out" 90 </dev/null
	server=$BG_PID
	wait_listen "$PEER_NETNS" 9000
	USTCP_MSL=0.5 PROG_TIMEOUT=60 prog bash -c "ulimit -n 200 && for i in \$(seq 40); do exec {fd}</dev/null; done &&
		exec /usr/bin/python3 '$SHIM_DIR/idle_conns.py' '$PEER_ADDR' 9000 1000" >"$TMP/conns.out"
	cat "$TMP/conns.out"
	grep -qx "error socket:EMFILE" "$TMP/conns.out"
	opened=$(awk '$1 == "opened" { print $2 }' "$TMP/conns.out")
	[ "$opened" -gt 40 ]
	# The server learns the count now: it writes what it saw once every
	# connection ended there (or in 10 s, when one never does).
	wait_for 10 eval '! peer_open 9000' || true
	kill -TERM "$server"
	wait_for 10 test -s "$TMP/server.out"
	cat "$TMP/server.out"
	grep -qx "accepted $opened eof $opened rst 0" "$TMP/server.out"
	[ "$(awk '$1 == "fds_before" { print $2 }' "$TMP/conns.out")" = "$(awk '$1 == "fds_after" { print $2 }' "$TMP/conns.out")" ]
}

@test "scale: out of fds with the low half full, every connection closes with a FIN, no fd left [kernel]" { MODE=kernel body_exhaust_eof; }
@test "scale: out of fds with the low half full, every connection closes with a FIN, no fd left [ustcp]" { MODE=ustcp body_exhaust_eof; }

# At the ceiling on connections (USTCP_MAX_CONNS): socket() fails with
# ENFILE, as the kernel's socket() when no socket can be had, counted as
# tcp-conn-ceiling; the fds were not the limit.
@test "scale: at USTCP_MAX_CONNS, socket() fails with ENFILE, counted, and the process recovers [ustcp]" {
	MODE=ustcp
	shim_topo_up
	exhaust USTCP_MAX_CONNS=20
	grep -qx "opened 20" "$TMP/exhaust.out"
	grep -qx "error socket ENFILE" "$TMP/exhaust.out"
	[ "$(stat_counter tcp-conn-ceiling)" -ge 1 ]
}

# A server out of fds: accept() fails with EMFILE while the connections wait
# in the queue, as on Linux, and once it has closed some, accept() gives the
# next one. The peer opens 60 connections; the server's fd limit holds
# about a dozen (kernel: about 30).
body_accept_exhaust() {
	shim_topo_up
	prog_bg bash -c "ulimit -n 40 && exec /usr/bin/python3 '$SHIM_DIR/accept_exhaust.py' 9000 '$TMP/server.out'" </dev/null
	prog_wait_listen 9000
	# Connections after the server has exited are refused: not counted.
	peer_bg /usr/bin/python3 -c "
import socket, time
held = []
for _ in range(60):
    try:
        held.append(socket.create_connection(('$SADDR', 9000), timeout=10))
    except OSError:
        pass
time.sleep(30)" </dev/null
	wait_for 40 test -s "$TMP/server.out"
	cat "$TMP/server.out"
	grep -qx "error EMFILE" "$TMP/server.out"
	grep -qx "again ok" "$TMP/server.out"
}

@test "scale: a server out of fds gets EMFILE from accept(), then the next connection [kernel]" { MODE=kernel body_accept_exhaust; }
@test "scale: a server out of fds gets EMFILE from accept(), then the next connection [ustcp]" { MODE=ustcp body_accept_exhaust; }

# A server that closes first holds a TIME-WAIT for each connection. They
# do not take room from sockets (USTCP_MAX_CONNS=20 below; before, the 20th
# filled the ceiling and every later SYN was dropped, so a busy server
# stopped accepting after twice its fd limit of connections in a minute),
# and they have Linux's bound of their own: the namespace's
# net.ipv4.tcp_max_tw_buckets (50 here), beyond which a connection ends
# where its TIME-WAIT would begin, counted (Linux's TCPTimeWaitOverflow,
# ustcp's tcp-tw-overflow). 200 connections, one after the other: each
# served at once (a dropped SYN costs its client a second), 50 TIME-WAITs
# held, 150 not.
body_tw_bound() {
	local report
	shim_topo_up
	in_stack sysctl -q -w net.ipv4.tcp_max_tw_buckets=50
	if [ "$MODE" = ustcp ]; then
		export USTCP_RUN_DIR=$TMP/run
		report="s=\$(env -u LD_PRELOAD USTCP_RUN_DIR=$USTCP_RUN_DIR '$BUILD/ustcp-stat');
			echo tw \$(grep -c '^TIME-WAIT' <<<\"\$s\");
			env -u LD_PRELOAD USTCP_RUN_DIR=$USTCP_RUN_DIR '$BUILD/ustcp-stat' -s |
				awk '\$1 == \"tcp-tw-overflow\" { print \"overflow\", \$2 }'"
	else
		report="echo tw \$(ss -tanH state time-wait | wc -l);
			nstat -az TcpExtTCPTimeWaitOverflow | awk '\$1 == \"TcpExtTCPTimeWaitOverflow\" { print \"overflow\", \$2 }'"
	fi
	USTCP_MAX_CONNS=20 PROG_TIMEOUT=80 prog_bg /usr/bin/python3 "$SHIM_DIR/tw_server.py" 9000 200 \
		"$TMP/client.done" "$TMP/server.out" "$report" </dev/null
	prog_wait_listen 9000
	PROG_TIMEOUT=60 peer /usr/bin/python3 -c "
import socket, time
slowest, ok = 0.0, 0
for _ in range(200):
    t = time.monotonic()
    s = socket.create_connection(('$SADDR', 9000), timeout=10)
    slowest = max(slowest, time.monotonic() - t)
    while s.recv(100):
        pass
    s.close()
    ok += 1
print('clients', ok, 'slowest %.3f' % slowest)" >"$TMP/client.out"
	touch "$TMP/client.done"
	wait_for 40 test -s "$TMP/server.out"
	cat "$TMP/client.out" "$TMP/server.out"
	grep -q '^clients 200 ' "$TMP/client.out"
	awk '$1 == "clients" { exit !($4 < 0.9) }' "$TMP/client.out"
	grep -qx 'served 200' "$TMP/server.out"
	grep -qx 'tw 50' "$TMP/server.out"
	grep -qx 'overflow 150' "$TMP/server.out"
}

@test "scale: a server's TIME-WAITs take no room from sockets, and beyond tcp_max_tw_buckets none is held [kernel]" { MODE=kernel body_tw_bound; }
@test "scale: a server's TIME-WAITs take no room from sockets, and beyond tcp_max_tw_buckets none is held [ustcp]" { MODE=ustcp body_tw_bound; }
