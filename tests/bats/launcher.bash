# Helpers for the launcher and ustcp-stat suites (070-launcher.bats,
# 080-stat.bats). Load after helpers.bash.
#
# Programs on the stack's side run through build/ustcp (`launch`), in the
# stack's namespace, with the topology's USTCP_IFACE and USTCP_ADDR and a
# run directory of the test's own (USTCP_RUN_DIR), so that ustcp-stat sees
# only this test's processes. Peers are the kernel of the peer's namespace.
# Background processes (launch_bg, peer_bg) are ended in teardown, which then
# removes the topology.

LAUNCHER=$BUILD/ustcp
STAT=$BUILD/ustcp-stat
LIBUSTCP=$(cd "$BUILD" 2>/dev/null && pwd || echo "$BUILD")/libustcp.so

# launcher_topo_up [ustcp-netns options...]: the topology, a run directory,
# and SADDR (the stack's address without its prefix).
launcher_topo_up() {
	[ -x "$LAUNCHER" ] || skip "$LAUNCHER not built"
	[ -e "$LIBUSTCP" ] || skip "$LIBUSTCP not built"
	topo_up "$@" || return 1
	SADDR=${USTCP_ADDR%/*}
	export USTCP_RUN_DIR=$BATS_TEST_TMPDIR/run
	mkdir -p "$USTCP_RUN_DIR"
}

# launch_cmd ARGS...: set LAUNCH_CMD to the command line that runs
# `ustcp ARGS...` in the stack's namespace under timeout (60 s). A sanitizer
# build of the library needs the ASan runtime loaded first.
launch_cmd() {
	local asan
	LAUNCH_CMD=(ip netns exec "$USTCP_NETNS" timeout -k 5 "${PROG_TIMEOUT:-60}" env
		"USTCP_IFACE=$USTCP_IFACE" "USTCP_ADDR=$USTCP_ADDR" "USTCP_RUN_DIR=$USTCP_RUN_DIR")
	asan=$(ldd "$LIBUSTCP" 2>/dev/null | awk '/libasan/ { print $3; exit }')
	if [ -n "$asan" ]; then
		LAUNCH_CMD+=("LD_PRELOAD=$asan"
			"ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}:verify_asan_link_order=0")
	fi
	LAUNCH_CMD+=("$LAUNCHER" "$@")
}

# launch ARGS...: run `ustcp ARGS...` in the foreground; fd 3 (Bats') closed.
launch() {
	launch_cmd "$@"
	"${LAUNCH_CMD[@]}" 3>&-
}

# launch_bg ARGS...: the same in the background; its pid in $BG_PID.
launch_bg() {
	launch_cmd "$@"
	run_bg "${LAUNCH_CMD[@]}"
}

# peer_bg CMD...: a command on the kernel peer's side, in the background.
peer_bg() {
	run_bg ip netns exec "$PEER_NETNS" timeout -k 5 "${PROG_TIMEOUT:-60}" "$@"
}


# peer_http PORT [SIZE]: the kernel peer serves $TMP/www on PORT, with
# $TMP/www/file of SIZE random bytes (200000 by default).
peer_http() {
	mkdir -p "$TMP/www"
	head -c "${2:-200000}" /dev/urandom >"$TMP/www/file"
	peer_bg python3 -m http.server --bind "$PEER_ADDR" --directory "$TMP/www" "$1" \
		</dev/null >/dev/null 2>"$TMP/httpd.err"
	wait_listen "$PEER_NETNS" "$1"
}

# stat_until SECONDS PATTERN [ustcp-stat options...]: run ustcp-stat until
# its output has a line matching the extended regular expression PATTERN;
# the last output is in $STAT_OUT and shown on failure.
stat_until() {
	local end=$((SECONDS + $1)) pat=$2
	shift 2
	while :; do
		STAT_OUT=$(USTCP_RUN_DIR=$USTCP_RUN_DIR timeout 10 "$STAT" "$@" 2>&1)
		grep -qE -- "$pat" <<<"$STAT_OUT" && return 0
		if [ "$SECONDS" -ge "$end" ]; then
			echo "no line matching '$pat' in ustcp-stat $*:" >&2
			echo "$STAT_OUT" >&2
			return 1
		fi
		sleep 0.1
	done
}

# ns_pids: the processes left in the stack's namespace.
ns_pids() {
	ip netns pids "$USTCP_NETNS" 2>/dev/null
}

# broker_pid: the launcher's broker in the stack's namespace (one).
broker_pid() {
	local p
	for p in $(ns_pids); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = ustcp-broker ] && echo "$p"
	done
}

# no_ns_pids [SECONDS]: wait (default 5 s) until nothing runs in the stack's
# namespace any more (the broker went with the program's tree).
no_ns_pids() {
	local i p
	for ((i = 0; i < ${1:-5} * 20; i++)); do
		[ -z "$(ns_pids)" ] && return 0
		sleep 0.05
	done
	echo "still running in $USTCP_NETNS:" >&2
	for p in $(ns_pids); do echo "$p $(tr '\0' ' ' <"/proc/$p/cmdline")" >&2; done
	return 1
}

launcher_teardown() {
	bg_end_all
	topo_down
}

teardown() {
	launcher_teardown
}
