# Running unmodified programs in the shim suite (060-shim.bats). Load after
# helpers.bash.
#
# Every test body runs twice, once per MODE:
#   MODE=kernel  the program uses the kernel's TCP: the kernel of the stack's
#                namespace owns the stack's address (this proves the test);
#   MODE=ustcp   the program runs with LD_PRELOAD=libustcp.so: no kernel owns
#                the stack's address, only the library's stack does.
# The peer is always the kernel of the peer's namespace, at $PEER_ADDR; the
# stack's side is at $SADDR (USTCP_ADDR without its prefix).
#
# Background processes started with prog_bg or peer_bg are ended in teardown,
# which then removes the topology (also when the test failed).

SHIM_DIR=$(cd "$BATS_TEST_DIRNAME/../shim" && pwd)
LIBUSTCP=$(cd "$BUILD" 2>/dev/null && pwd || echo "$BUILD")/libustcp.so
TMP=$BATS_TEST_TMPDIR

# Library settings passed on to the program when the test sets them, besides
# USTCP_IFACE and USTCP_ADDR (from the topology; USTCP_ADDR6 too with
# ustcp-netns --ipv6).
SHIM_VARS=(USTCP_ADDR6 USTCP_PCAP USTCP_CLOSE_LOG USTCP_MSL USTCP_FIN_TIMEOUT USTCP_CC USTCP_LOG USTCP_LOG_FILE
	USTCP_GW USTCP_MTU USTCP_PASSTHROUGH USTCP_RUN_DIR USTCP_RMEM USTCP_WMEM USTCP_ECN USTCP_RFC1337
	USTCP_TW_COLLECT USTCP_MAX_CONNS USTCP_MAX_TW USTCP_RX_RING)

# shim_www: the files peers serve and programs send, in $WWW: mid (1 MB)
# and reply (100 kB) of random bytes. For setup_file.
shim_www() {
	export WWW=$BATS_FILE_TMPDIR/www
	mkdir -p "$WWW"
	head -c 1000000 /dev/urandom >"$WWW/mid"
	head -c 100000 /dev/urandom >"$WWW/reply"
}

# shim_topo_up [ustcp-netns options...]: the topology for this test's MODE.
# The ustcp variant is skipped while build/libustcp.so does not exist (the
# shim, issue 5, is being written); CI builds it before the Bats suites run,
# so there these tests run and must pass.
shim_topo_up() {
	case ${MODE:-} in
	kernel)
		topo_up "$@" || return 1
		stack_kernel_addr || return 1
		;;
	ustcp)
		[ -e "$LIBUSTCP" ] || skip "$LIBUSTCP not built yet (the shim, issue 5)"
		topo_up "$@" || return 1
		;;
	*)
		echo "MODE must be kernel or ustcp, not '${MODE:-}'" >&2
		return 1
		;;
	esac
	SADDR=${USTCP_ADDR%/*}
}

# shim6_topo_up [ustcp-netns options]: shim_topo_up --ipv6; on the kernel,
# the stack's namespace gets IPv6 and the stack's IPv6 address (no DAD) as
# well. SADDR6 is that address.
shim6_topo_up() {
	shim_topo_up --ipv6 "$@" || return 1
	SADDR6=${USTCP_ADDR6%/*}
	if [ "$MODE" = kernel ]; then
		in_stack sysctl -q -w net.ipv6.conf.all.disable_ipv6=0 "net.ipv6.conf.$USTCP_IFACE.disable_ipv6=0" &&
			in_stack ip addr add "$USTCP_ADDR6" dev "$USTCP_IFACE" nodad
	fi
}

# prog_cmd CMD...: set PROG_CMD to the command line that runs CMD in the
# stack's namespace for this MODE, under timeout (PROG_TIMEOUT, 60 s).
prog_cmd() {
	PROG_CMD=(ip netns exec "$USTCP_NETNS" timeout -k 5 "${PROG_TIMEOUT:-60}")
	if [ "$MODE" = ustcp ]; then
		local v
		# A sanitizer build (make SAN=1) of the library pulls in the ASan
		# runtime, which insists on coming first. Preloading libasan.so
		# itself makes curl and wget hang at start (seen with Debian 12's
		# libasan.so.8, with or without ustcp), so the runtime comes in
		# behind the library and is told not to mind. The programs' own
		# leaks are not ours.
		if ldd "$LIBUSTCP" 2>/dev/null | grep -q libasan; then
			PROG_CMD+=(env "ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:verify_asan_link_order=0}")
		fi
		PROG_CMD+=(env "LD_PRELOAD=$LIBUSTCP" "USTCP_IFACE=$USTCP_IFACE" "USTCP_ADDR=$USTCP_ADDR")
		for v in "${SHIM_VARS[@]}"; do
			[ -z "${!v:-}" ] || PROG_CMD+=("$v=${!v}")
		done
	fi
	PROG_CMD+=("$@")
}

# prog CMD...: run a program on this MODE's TCP, in the foreground. fd 3 (Bats'
# own) is closed: an exit keeper that inherited it would hold up Bats.
prog() {
	prog_cmd "$@"
	"${PROG_CMD[@]}" 3>&-
}

# prog_bg CMD...: the same in the background (a server); its pid (that of
# timeout, which passes signals on) is in $BG_PID and ended in teardown. Its
# stdin is the caller's (<&0: bash gives a background job /dev/null otherwise).
prog_bg() {
	prog_cmd "$@"
	run_bg "${PROG_CMD[@]}"
}

# peer CMD... / peer_bg CMD...: run a command on the kernel peer's side
# (foreground, or background with its pid in $BG_PID), under timeout.
peer() {
	ip netns exec "$PEER_NETNS" timeout -k 5 "${PROG_TIMEOUT:-60}" "$@" 3>&-
}

peer_bg() {
	run_bg ip netns exec "$PEER_NETNS" timeout -k 5 "${PROG_TIMEOUT:-60}" "$@"
}


# prog_wait_listen PORT [ADDR]: wait (bounded) until a server on the stack's
# side listens on PORT (at ADDR, IPv4 or IPv6; SADDR by default). A server
# under ustcp has no kernel socket for `ss` to see, so a bare SYN from the
# peer's side asks (synprobe.py: the half-open connection is reset, nothing
# reaches accept()). In kernel mode wait_listen comes first, which also
# proves the probe.
prog_wait_listen() {
	if [ "$MODE" = kernel ]; then
		wait_listen "$USTCP_NETNS" "$1" || return 1
	fi
	timeout 15 ip netns exec "$PEER_NETNS" python3 "$SHIM_DIR/synprobe.py" "${2:-$SADDR}" "$1" 10 3>&-
}

# lo_ask stack|peer ADDR PORT NAME: a kernel client in the stack's
# namespace (beside the program, so over loopback for a loopback ADDR) or
# in the peer's sends NAME to tests/shim/lo_server.py and prints its
# one-line answer.
lo_ask() {
	local ns=$USTCP_NETNS ask='import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.sendall(sys.argv[3].encode() + b"\n")
print(s.makefile("rb").readline().decode().strip())'
	[ "$1" = peer ] && ns=$PEER_NETNS
	ip netns exec "$ns" timeout 10 python3 -c "$ask" "$2" "$3" "$4" 3>&-
}

# peer_http PORT: the kernel peer serves $WWW over HTTP/1.1 (keep-alive) on
# $PEER_ADDR:PORT.
peer_http() {
	peer_bg python3 "$SHIM_DIR/httpd.py" "$PEER_ADDR" "$1" "$WWW" </dev/null 2>"$TMP/httpd.err"
	wait_listen "$PEER_NETNS" "$1"
}

# peer_echo PORT [COUNT]: tests/shim/echo_server.py on the peer for COUNT
# connections (1 by default), its lines in $TMP/srv.out, its pid in
# $ECHO_PID; returns once it listens.
peer_echo() {
	peer_bg python3 "$SHIM_DIR/echo_server.py" "$PEER_ADDR" "$1" "${2:-1}" </dev/null >"$TMP/srv.out"
	ECHO_PID=$BG_PID
	wait_listen "$PEER_NETNS" "$1"
}

# nc_listen_exchange: nc -l on the stack's side (port 7000) serves a kernel
# nc client: $WWW/mid one way, $WWW/reply the other, both arrive whole.
nc_listen_exchange() {
	prog_bg nc -4 -N -l 7000 <"$WWW/reply" >"$TMP/got"
	local srv=$BG_PID
	prog_wait_listen 7000
	peer nc -N -w 30 "$SADDR" 7000 <"$WWW/mid" >"$TMP/cgot"
	bg_wait "$srv"
	same_file "$WWW/mid" "$TMP/got"
	same_file "$WWW/reply" "$TMP/cgot"
}

# nc_halfclose_exchange ADDR [NC_OPTIONS...]: nc on the stack's side sends
# $WWW/mid to a kernel peer at ADDR (sinkreply.py on port 7000), shuts its
# side down (-N: a FIN) and reads the peer's answer until EOF: both whole.
nc_halfclose_exchange() {
	local addr=$1
	shift
	peer_bg python3 "$SHIM_DIR/sinkreply.py" listen "$addr" 7000 "$WWW/reply" \
		</dev/null >"$TMP/peer.out"
	local peer_pid=$BG_PID
	wait_listen "$PEER_NETNS" 7000
	prog nc "$@" -N -w 30 "$addr" 7000 <"$WWW/mid" >"$TMP/got"
	check_reply "$TMP/got" "$WWW/mid" "$WWW/reply"
	bg_wait "$peer_pid"
	grep -q "^got 1000000 " "$TMP/peer.out"
}

# socat_client_exchange: socat on the stack's side sends $WWW/mid to a kernel
# peer (sinkreply.py on port 7001), shuts the connection down (SHUT_WR, a
# FIN) at its end, and reads the peer's answer until EOF: both whole.
socat_client_exchange() {
	local addr=${1:-$PEER_ADDR} to
	to="TCP4:$addr:7001"
	[[ $addr != *:* ]] || to="TCP6:[$addr]:7001"
	peer_bg python3 "$SHIM_DIR/sinkreply.py" listen "$addr" 7001 "$WWW/reply" \
		</dev/null >"$TMP/peer.out"
	local peer_pid=$BG_PID
	wait_listen "$PEER_NETNS" 7001
	prog socat -t 5 STDIO "$to,shut-down" <"$WWW/mid" >"$TMP/got"
	check_reply "$TMP/got" "$WWW/mid" "$WWW/reply"
	bg_wait "$peer_pid"
	grep -q "^got 1000000 " "$TMP/peer.out"
}

# nginx_conf FILE MAIN HTTP LISTEN: an nginx.conf that serves $WWW with epoll
# and sendfile, its files in $TMP/nginx; MAIN and HTTP are directives for
# the main and http contexts, LISTEN the listen directive's arguments.
nginx_conf() {
	mkdir -p "$TMP/nginx"
	cat >"$1" <<-EOF
		daemon off;
		$2
		pid $TMP/nginx/nginx.pid;
		error_log $TMP/nginx/error.log info;
		events {
			use epoll;
			worker_connections 64;
		}
		http {
			$3
			sendfile on;
			default_type application/octet-stream;
			client_body_temp_path $TMP/nginx/body;
			proxy_temp_path $TMP/nginx/proxy;
			fastcgi_temp_path $TMP/nginx/fastcgi;
			uwsgi_temp_path $TMP/nginx/uwsgi;
			scgi_temp_path $TMP/nginx/scgi;
			server {
				listen $4;
				root $WWW;
			}
		}
	EOF
}

# same_file EXPECTED GOT: the two files are byte for byte the same (their
# SHA-256 and sizes are shown if not).
same_file() {
	if ! cmp -s "$1" "$2"; then
		echo "files differ:" >&2
		sha256sum "$1" "$2" >&2
		wc -c "$1" "$2" >&2
		return 1
	fi
}

# check_reply GOT SENT REPLY: GOT is what sinkreply.py answers after reading
# SENT to its end: the SHA-256 of SENT, a newline, then REPLY.
check_reply() {
	local want line
	want=$(sha256sum <"$2" | cut -c1-64)
	line=$(head -c 64 "$1")
	if [ "$line" != "$want" ]; then
		echo "the peer got data with SHA-256 '$line', sent '$want' ($(wc -c <"$1") bytes came back)" >&2
		return 1
	fi
	tail -c +66 "$1" >"$1.reply"
	same_file "$3" "$1.reply"
}

# retry SECONDS CMD...: run CMD every 0.2 s until it succeeds, at most
# SECONDS; the last attempt's output is shown.
retry() {
	local end=$((SECONDS + $1))
	shift
	while ! "$@" >"$TMP/retry.out" 2>&1; do
		if [ "$SECONDS" -ge "$end" ]; then
			cat "$TMP/retry.out"
			return 1
		fi
		sleep 0.2
	done
	cat "$TMP/retry.out"
}

# ---- captures ------------------------------------------------------------------

# stack_cap_start PCAP: tcpdump on the stack's interface (kernel mode: the
# kernel of the stack's namespace is the TCP there).
stack_cap_start() {
	capture_start "$USTCP_NETNS" "$USTCP_IFACE" "$1" 60 tcp && CAP_PID=$CAPTURE_PID
}

stack_cap_stop() {
	[ -n "${CAP_PID:-}" ] || return 0
	kill -INT "$CAP_PID" 2>/dev/null || true
	bg_wait "$CAP_PID" 10 || true
	CAP_PID=
}

# fin_exchange PCAP: the capture holds one connection closed in order: one
# SYN each way, a FIN each way, each FIN ACKed by the other side, no RST, and
# last the pure ACK of the FIN that came second, by the other side.
fin_exchange() {
	local segs ifin pfin second fin want last why=
	segs=$(pcap_segs "$1" "$SADDR" tcp)
	ifin=$(awk '$1 == "I" && $2 ~ /F/ { sub(/fin=/, "", $NF); print $NF; exit }' <<<"$segs")
	pfin=$(awk '$1 == "P" && $2 ~ /F/ { sub(/fin=/, "", $NF); print $NF; exit }' <<<"$segs")
	second=$(awk '$2 ~ /F/ { w = $1 } END { print w }' <<<"$segs")
	last=$(tail -n 1 <<<"$segs")
	if [ "$(grep -c '^I S ' <<<"$segs")" -ne 1 ] || [ "$(grep -c '^P S\. ' <<<"$segs")" -ne 1 ]; then
		why="not one SYN and one SYN-ACK"
	elif [ -z "$ifin" ] || [ -z "$pfin" ]; then
		why="no FIN from the stack's side or from the peer"
	elif ! grep -qE "^P [^ ]* seq=[^ ]* ack=$((ifin + 1)) " <<<"$segs"; then
		why="the peer did not ACK the stack side's FIN"
	elif ! grep -qE "^I [^ ]* seq=[^ ]* ack=$((pfin + 1)) " <<<"$segs"; then
		why="the stack's side did not ACK the peer's FIN"
	elif grep -qE '^. R' <<<"$segs"; then
		why="a RST"
	else
		[ "$second" = I ] && fin=$ifin || fin=$pfin
		[ "$second" = I ] && want="P" || want="I"
		[ "$last" = "$want . seq=- ack=$((fin + 1)) len=0" ] ||
			why="the last segment is not the final ACK '$want . seq=- ack=$((fin + 1)) len=0'"
	fi
	if [ -n "$why" ]; then
		echo "no orderly FIN/ACK exchange in $1: $why (I = $SADDR, P = $PEER_ADDR):"
		cat -n <<<"$segs"
		return 1
	fi
	echo "FIN/ACK exchange: I fin=$ifin, P fin=$pfin, last: $last"
}

# ---- teardown ------------------------------------------------------------------

# shim_teardown: end the background processes (SIGTERM; timeout -k sends
# SIGKILL 5 s later), then remove the topology, which also ends anything left
# in its namespaces (an exit keeper, say).
shim_teardown() {
	bg_end_all
	topo_down
}

teardown() {
	shim_teardown
}

# iperf_ok JSON LABEL: a clean iperf3 run that moved data; its throughput goes
# to the TAP stream as a comment.
iperf_ok() {
	jq -e '.error == null and .end.sum_sent.bytes > 0 and .end.sum_received.bytes > 0' "$1" >/dev/null || {
		echo "iperf3 failed or moved nothing:"
		cat "$1"
		return 1
	}
	local bps
	bps=$(jq '.end.sum_received.bits_per_second' "$1")
	printf '# %s: %.0f Mbit/s, %s bytes received, %s retransmits\n' "$2" "$(jq -n "$bps / 1e6")" \
		"$(jq '.end.sum_received.bytes' "$1")" "$(jq '.end.sum_sent.retransmits // "?"' "$1")" >&3
}

# socat_server_exchange TCP4|TCP6 ADDR: socat as the server (TCP4-LISTEN, or
# TCP6-LISTEN on [::], which takes IPv4 too) hands the connection to
# sinkreply.py (stdio), which answers after the kernel client's FIN; socat's
# FIN follows the answer. ADDR is the stack's address the client connects
# to (IPv6 in brackets).
socat_server_exchange() {
	prog_bg socat -t 5 "$1-LISTEN:7002,reuseaddr,shut-down" \
		"EXEC:python3 $SHIM_DIR/sinkreply.py stdio $WWW/reply $TMP/srv.got" </dev/null 2>"$TMP/socat.err"
	local srv=$BG_PID
	prog_wait_listen 7002
	peer socat -t 5 STDIO "$1:$2:7002,shut-down" <"$WWW/mid" >"$TMP/got"
	check_reply "$TMP/got" "$WWW/mid" "$WWW/reply"
	bg_wait "$srv" || { cat "$TMP/socat.err"; return 1; }
	same_file "$WWW/mid" "$TMP/srv.got"
}

# py_echo_exchange PEER PORT COUNT: python3's echo client, COUNT threads
# with a connection each, 1 MB echoed each by the kernel peer at PEER (either
# family) on PORT.
py_echo_exchange() {
	peer_bg python3 "$SHIM_DIR/echo_server.py" "$1" "$2" "$3" </dev/null >"$TMP/srv.out"
	local srv=$BG_PID
	wait_listen "$PEER_NETNS" "$2"
	local crc=0 src=0
	prog python3 "$SHIM_DIR/echo_client.py" "$1" "$2" 1000000 "$3" >"$TMP/cli.out" || crc=$?
	bg_wait "$srv" || src=$?
	cat "$TMP/cli.out" "$TMP/srv.out"
	[ "$crc" -eq 0 ]
	[ "$src" -eq 0 ]
	[ "$(grep -c "^conn [0-9]*: ok 1000000 " "$TMP/cli.out")" -eq "$3" ]
	[ "$(grep -c "^conn [0-9]*: echoed 1000000 " "$TMP/srv.out")" -eq "$3" ]
}

# iperf3_exchange client|server ADDR: iperf3 on the stack's side as the
# client of a kernel iperf3 -s bound to the peer's ADDR, or as the server
# for a kernel iperf3 -c to the stack's ADDR; 5 s. The server is bound to an
# IPv4 ADDR; for an IPv6 one it listens on [::] (dual-stack), where
# prog_wait_listen's IPv4 probe finds it.
iperf3_exchange() {
	local bind=(-B "$2") srv crc=0 src=0 label
	if [ "$1" = client ]; then
		peer_bg iperf3 -s -1 "${bind[@]}" -p 5201 </dev/null >"$TMP/srv.out" 2>&1
		srv=$BG_PID
		wait_listen "$PEER_NETNS" 5201
		prog iperf3 -c "$2" -p 5201 -t 5 -J >"$TMP/cli.json" || crc=$?
		label="iperf3 client [$MODE] -> kernel server $2, 5 s"
	else
		[[ $2 != *:* ]] || bind=()
		prog_bg iperf3 -s -1 "${bind[@]}" -p 5202 </dev/null >"$TMP/srv.out" 2>&1
		srv=$BG_PID
		prog_wait_listen 5202
		peer iperf3 -c "$2" -p 5202 -t 5 -J >"$TMP/cli.json" || crc=$?
		label="kernel client -> iperf3 server [$MODE] $2, 5 s"
	fi
	bg_wait "$srv" 20 || src=$?
	if [ "$crc" -ne 0 ] || [ "$src" -ne 0 ] || ! iperf_ok "$TMP/cli.json" "$label"; then
		echo "iperf3 client exit status $crc, server $src; the server said:"
		cat "$TMP/srv.out"
		return 1
	fi
}

# ipext_client PEER KIND PORT: tests/shim/ipext.py's client of KIND on the
# program's side, to the kernel peer's sniffing server at PEER:PORT; what
# each printed goes to $TMP/prog.KIND and $TMP/wire.KIND.
ipext_client() {
	peer_bg python3 "$SHIM_DIR/ipext.py" sniff "$1" "$3" "$PEER_IFACE" server >"$TMP/wire.$2"
	local snf=$BG_PID
	wait_listen "$PEER_NETNS" "$3"
	prog python3 "$SHIM_DIR/ipext.py" client "$1" "$3" "$2" >"$TMP/prog.$2"
	bg_wait "$snf"
}
