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
}

body_idle_many() {
	shim_topo_up
	idle_run "$N"
}

@test "scale: $N idle connections open, stay up, close with FINs, fds come back [kernel]" { MODE=kernel body_idle_many; }
@test "scale: $N idle connections open, stay up, close with FINs, fds come back [ustcp]" { MODE=ustcp body_idle_many; }
