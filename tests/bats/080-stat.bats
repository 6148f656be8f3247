#!/usr/bin/env bats
# ustcp-stat (issue 7): the connections of the processes running on ustcp,
# like `ss -tanpo`, their counters (-s), one process (-p). A launched python3
# client and a kernel python3 peer go through a scripted close, step by step,
# coordinated by files in the test's directory; ustcp-stat must show each
# state at its moment. Every test has a run directory of its own
# (USTCP_RUN_DIR, launcher.bash).

bats_require_minimum_version 1.5.0

load helpers
load launcher

setup() {
	TMP=$BATS_TEST_TMPDIR
}

# Waits for a file named argv[1] in the directory; marks with a file.
COMMON_PY='
import os, socket, sys, time
d = os.environ["STEP_DIR"]
def wait(name):
    for _ in range(1200):
        if os.path.exists(os.path.join(d, name)):
            return
        time.sleep(0.05)
    sys.exit("no " + name)
def mark(name, text=""):
    with open(os.path.join(d, name + ".tmp"), "w") as f:
        f.write(text)
    os.rename(os.path.join(d, name + ".tmp"), os.path.join(d, name))
'

# The client, on ustcp: connect; on "shut", shutdown(SHUT_WR); then stay
# (today connections die with their process) until "exit".
CLIENT_PY=$COMMON_PY'
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
mark("connected", "%d %d\n" % (os.getpid(), s.getsockname()[1]))
wait("shut")
s.shutdown(socket.SHUT_WR)
mark("shut-done")
wait("exit")
'

# The peer, on the kernel: accept; read to the client's FIN; on
# "peer-close", close.
PEER_PY=$COMMON_PY'
l = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], int(sys.argv[2])))
l.listen(1)
c, _ = l.accept()
while c.recv(4096):
    pass
wait("peer-close")
c.close()
mark("peer-closed")
wait("exit")
'

# A listener on ustcp, until "exit".
LISTEN_PY=$COMMON_PY'
l = socket.socket()
l.bind(("0.0.0.0", int(sys.argv[1])))
l.listen(5)
mark("listening", "%d\n" % os.getpid())
wait("exit")
'

stat_run() {
	USTCP_RUN_DIR=$USTCP_RUN_DIR timeout 10 "$STAT" "$@"
}

# start_pair PEER [LAUNCH_OPTIONS...]: the kernel peer listening at PEER
# (either family) and the launched client connected to it; PID and LPORT are
# the client's.
start_pair() {
	local peer=$1
	shift
	peer_bg python3 -c "$PEER_PY" "$peer" 7100 </dev/null
	wait_listen "$PEER_NETNS" 7100
	launch_bg "$@" python3 -c "$CLIENT_PY" "$peer" 7100 </dev/null
	wait_file "$TMP/connected"
	read -r PID LPORT <"$TMP/connected"
}

# to_time_wait ME PEER PROC: our FIN, ACKed, the peer has not closed
# (FIN-WAIT-2); then the peer's FIN: TIME-WAIT, 2 MSL (60 s) on its timer,
# while the program still holds the socket. ME, PEER and PROC are the
# patterns of ustcp-stat's columns.
to_time_wait() {
	touch "$TMP/shut"
	wait_file "$TMP/shut-done"
	stat_until 10 "^FIN-WAIT-2 +0 +0 +$1 +$2 +$3"
	touch "$TMP/peer-close"
	wait_file "$TMP/peer-closed"
	stat_until 10 "^TIME-WAIT +0 +0 +$1 +$2 +$3 timer:\(timewait,[1-6][0-9]sec,0\)$"
}

@test "ustcp-stat shows ESTAB, FIN-WAIT-2 and TIME-WAIT at the right moments" {
	launcher_topo_up
	export STEP_DIR=$TMP
	start_pair "$PEER_ADDR"
	local pid=$PID lport=$LPORT me peer proc
	me="${SADDR//./\\.}:$lport"
	peer="${PEER_ADDR//./\\.}:7100"
	proc="users:\(\(\"python3[.0-9]*\",pid=$pid\)\)"

	stat_until 10 "^ESTAB +0 +0 +$me +$peer +$proc"
	# Nothing else is there: one process, one connection.
	[ "$(wc -l <<<"$STAT_OUT")" -eq 2 ]
	assert_equal "$(head -n 1 <<<"$STAT_OUT" | tr -s ' ')" \
		"State Recv-Q Send-Q Local Address:Port Peer Address:Port Process"

	to_time_wait "$me" "$peer" "$proc"

	# The counters of that process.
	run -0 stat_run -s
	assert_line --regexp "^process $pid \(python3[.0-9]*\) program $USTCP_IFACE $USTCP_ADDR, 1 connection$"
	assert_line --regexp '^  tcp-active-opens +1$'
	assert_line --regexp '^  tcp-segs-out +[1-9][0-9]*$'
	assert_line --regexp '^  drop\.tcp-csum +0$'

	# A second process (a listener; started now: two stacks on one
	# address may not overlap in traffic yet). -p shows one of them.
	launch_bg python3 -c "$LISTEN_PY" 7200 </dev/null
	wait_file "$TMP/listening"
	local pid2
	read -r pid2 <"$TMP/listening"
	stat_until 10 "^LISTEN +0 +5 +(0\.0\.0\.0|${SADDR//./\\.}):7200 +0\.0\.0\.0:\* +users:\(\(\"python3[.0-9]*\",pid=$pid2\)\)$"
	grep -qE "^TIME-WAIT .*pid=$pid\)" <<<"$STAT_OUT"
	run -0 stat_run -p "$pid"
	assert_line --index 1 --regexp "^TIME-WAIT +0 +0 +$me +$peer +$proc"
	assert_equal "${#lines[@]}" 2
	run -0 stat_run -p "$pid2"
	assert_line --index 1 --regexp "^LISTEN .*pid=$pid2\)\)$"
	assert_equal "${#lines[@]}" 2
	run -0 stat_run -s -p "$pid2"
	assert_line --regexp "^process $pid2 "
	refute_line --regexp "^process $pid "

	# The processes exit; the client's TIME-WAIT stays, held by an exit
	# keeper (another pid, the same name) until 2 MSL are over. Only the
	# keeper's control socket is left, and as it holds TIME-WAITs alone,
	# the address's collector's socket and lock (stackthread/twcollect.c;
	# beside the address's shared files, addr-ADDRESS and ports-ADDRESS,
	# which stay, as the lock does).
	touch "$TMP/exit"
	local p i
	for p in "${BG_PIDS[@]}"; do bg_wait "$p" 20; done
	# The listener's process hands its listener to a keeper too (a forked
	# child could still hold it); that keeper leaves as soon as it sees the
	# listener's last holder gone.
	for ((i = 0; i < 100; i++)); do
		[ "$(ls -A "$USTCP_RUN_DIR" | grep -cE '^[0-9]+\.sock$')" -le 1 ] && break
		sleep 0.05
	done
	run -0 stat_run
	assert_equal "${#lines[@]}" 2
	assert_line --index 1 --regexp "^TIME-WAIT +0 +0 +$me +$peer +users:\(\(\"python3[.0-9]*\",pid=[0-9]+\)\) timer:\(timewait,[1-6][0-9]sec,0\)$"
	refute_line --partial "pid=$pid)"
	refute_line --partial "pid=$pid2)"
	run -0 ls -A "$USTCP_RUN_DIR"
	assert_equal "${#lines[@]}" 5
	assert_line --regexp '^[0-9]+\.sock$'
	assert_line "addr-$SADDR"
	assert_line "ports-$SADDR"
	assert_line --regexp "^tw-${SADDR//./\\.}-[0-9a-f]{12}-[0-9]+\.lock$"
	assert_line --regexp "^tw-${SADDR//./\\.}-[0-9a-f]{12}-[0-9]+\.sock$"
}

# Over IPv6 (the launcher's -A): the ends as ss prints them, [address]:port;
# after the program's exit its keeper holds the IPv6 TIME-WAIT.
@test "ustcp-stat over IPv6: ESTAB, FIN-WAIT-2, TIME-WAIT as [address]:port, the TIME-WAIT kept after exit" {
	launcher_topo_up --ipv6
	export STEP_DIR=$TMP
	start_pair "$PEER_ADDR6" -A "$USTCP_ADDR6"
	local pid=$PID lport=$LPORT me peer proc
	me="\\[${USTCP_ADDR6%/*}\\]:$lport"
	peer="\\[$PEER_ADDR6\\]:7100"
	proc="users:\\(\\(\"python3[.0-9]*\",pid=$pid\\)\\)"
	stat_until 10 "^ESTAB +0 +0 +$me +$peer +$proc"
	to_time_wait "$me" "$peer" "$proc"
	run -0 stat_run -s
	# The process line names the IPv6 address beside the IPv4 one.
	assert_line --regexp "^process $pid \\(python3[.0-9]*\\) program $USTCP_IFACE $USTCP_ADDR $USTCP_ADDR6, 1 connection$"
	assert_line --regexp '^  tcp-active-opens +1$'
	touch "$TMP/exit"
	local p
	for p in "${BG_PIDS[@]}"; do bg_wait "$p" 20; done
	stat_until 10 "^TIME-WAIT +0 +0 +$me +$peer +users:\\(\\(\"python3[.0-9]*\",pid=[0-9]+\\)\\) timer:\\(timewait,"
	# The keeper's, not the program's.
	! grep -q "pid=$pid)" <<<"$STAT_OUT"
}

@test "ustcp-stat: no stacks, just the header; stale sockets are skipped and removed; -p of nobody fails" {
	launcher_topo_up
	run -0 stat_run
	assert_output --regexp '^State +Recv-Q +Send-Q +Local Address:Port +Peer Address:Port +Process$'
	run -0 stat_run -s
	assert_output ""
	# A control socket nobody listens on any more: connect is refused.
	python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close()' \
		"$USTCP_RUN_DIR/4000000.sock"
	[ -S "$USTCP_RUN_DIR/4000000.sock" ]
	run -0 stat_run
	assert_equal "${#lines[@]}" 1
	[ ! -e "$USTCP_RUN_DIR/4000000.sock" ]
	run -1 --separate-stderr stat_run -p 4000001
	assert_equal "${#stderr_lines[@]}" 1
	assert_equal "$output" ""
	run -2 --separate-stderr stat_run -p bogus
	assert_equal "${#stderr_lines[@]}" 1
}
