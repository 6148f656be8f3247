#!/usr/bin/env bats
# Connection churn across processes (issue 17): program after program opens
# connections from one address to a server that closes first, so the server
# holds thousands of TIME-WAITs and the kernel's port allocator hands our
# processes 4-tuples that are still in them. Each new SYN must be taken as a
# new incarnation (ISNs and timestamps grow across processes: one secret per
# address, RUN_DIR/addr-A.B.C.D), and no process may answer a segment that
# belonged to another's connection with a RST.
#
# Each body runs on the kernel's TCP ([kernel], which proves the test) and
# under ustcp, as in 060-shim.bats.

bats_require_minimum_version 1.5.0

load helpers
load shim

setup_file() {
	export WWW=$BATS_FILE_TMPDIR/www
	mkdir -p "$WWW"
	echo "a small page" >"$WWW/index.html"
}

setup() {
	TMP=$BATS_TEST_TMPDIR
}

# peer_nginx: nginx on the kernel peer, port 8080, closing every connection
# after its response (keepalive_timeout 0), so the TIME-WAITs are its own.
peer_nginx() {
	mkdir -p "$TMP/nginx"
	cat >"$TMP/nginx.conf" <<-EOF
		daemon off;
		master_process off;
		worker_processes 1;
		pid $TMP/nginx/nginx.pid;
		error_log $TMP/nginx/error.log warn;
		events { worker_connections 1024; }
		http {
			access_log off;
			keepalive_timeout 0;
			client_body_temp_path $TMP/nginx/body;
			proxy_temp_path $TMP/nginx/proxy;
			fastcgi_temp_path $TMP/nginx/fastcgi;
			uwsgi_temp_path $TMP/nginx/uwsgi;
			scgi_temp_path $TMP/nginx/scgi;
			server { listen $PEER_ADDR:8080; root $WWW; }
		}
	EOF
	peer_bg nginx -p "$TMP/nginx/" -e "$TMP/nginx/error.log" -c "$TMP/nginx.conf" </dev/null
	wait_listen "$PEER_NETNS" 8080 || { cat "$TMP/nginx/error.log"; return 1; }
}

# peer_timewaits: how many connections the peer holds in TIME-WAIT.
peer_timewaits() {
	timeout 10 ip netns exec "$PEER_NETNS" ss -tanH state time-wait | wc -l
}

# wire_ok PCAP: the stack side's new incarnations are newer than the old ones,
# and its only RSTs answer a TIME-WAIT's ACK in SYN-SENT (wirecheck.py).
wire_ok() {
	timeout 60 tcpdump -S -n -r "$1" 2>/dev/null | /usr/bin/python3 "$SHIM_DIR/wirecheck.py" "$SADDR"
}

# ab three times in a row, 5000 requests each, 8 at a time: every run
# complete, no failed request, and on the wire only what Linux would do.
body_ab_three_runs() {
	shim_topo_up
	peer_nginx
	capture_start "$PEER_NETNS" "$PEER_IFACE" "$TMP/ab.pcap" 120 "tcp port 8080"
	local run rps=()
	for run in 1 2 3; do
		PROG_TIMEOUT=60 prog ab -q -r -n 5000 -c 8 "http://$PEER_ADDR:8080/" >"$TMP/ab$run.out" 2>&1 || {
			echo "run $run: ab failed ($(peer_timewaits) TIME-WAITs at the peer):"
			cat "$TMP/ab$run.out"
			return 1
		}
		grep -qE '^Complete requests: +5000$' "$TMP/ab$run.out" &&
			grep -qE '^Failed requests: +0$' "$TMP/ab$run.out" || {
			echo "run $run did not complete:"
			cat "$TMP/ab$run.out"
			return 1
		}
		rps+=("$(awk '/^Requests per second/ { print $4 }' "$TMP/ab$run.out")")
	done
	echo "requests/s: ${rps[*]}; the peer holds $(peer_timewaits) TIME-WAITs"
	kill -INT "$CAPTURE_PID"
	bg_wait "$CAPTURE_PID" 30
	wire_ok "$TMP/ab.pcap"
}

@test "churn: ab -n 5000 -c 8 three times against nginx that closes first [kernel]" { MODE=kernel body_ab_three_runs; }
@test "churn: ab -n 5000 -c 8 three times against nginx that closes first [ustcp]" { MODE=ustcp body_ab_three_runs; }

# 500 curl processes one after the other: each gets a port from the kernel,
# some of them still in the peer's TIME-WAIT; all complete, and every
# reopened 4-tuple starts newer than its last incarnation.
body_curl_500() {
	shim_topo_up
	peer_nginx
	capture_start "$PEER_NETNS" "$PEER_IFACE" "$TMP/curl.pcap" 120 "tcp port 8080"
	local i bad=0
	prog_cmd curl -sS --fail --max-time 10 -o /dev/null "http://$PEER_ADDR:8080/"
	for ((i = 1; i <= 500; i++)); do
		"${PROG_CMD[@]}" 3>&- 2>>"$TMP/curl.err" || bad=$((bad + 1))
	done
	echo "500 curls: $bad failed; the peer holds $(peer_timewaits) TIME-WAITs"
	[ "$bad" -eq 0 ] || { sort "$TMP/curl.err" | uniq -c; return 1; }
	kill -INT "$CAPTURE_PID"
	bg_wait "$CAPTURE_PID" 30
	wire_ok "$TMP/curl.pcap"
}

@test "churn: 500 sequential curl processes against a server that closes first [kernel]" { MODE=kernel body_curl_500; }
@test "churn: 500 sequential curl processes against a server that closes first [ustcp]" { MODE=ustcp body_curl_500; }

# The address's secret is one file for every process, its owner's alone,
# and a file that anyone else could read is not trusted. Its size is the
# layout's (stackthread/addrshare.c, struct share, version 4): a 32-byte
# header, 65536 tombstones of 16 bytes, 8 DAD records of 24, the
# answerer's word and one reserved, 64 neighbour records of 40: 1051368
# bytes.
@test "churn: the address's secret file is the owner's only, and shared [ustcp]" {
	MODE=ustcp
	shim_topo_up
	peer_nginx
	export USTCP_RUN_DIR=$TMP/run
	prog curl -sS --fail -o /dev/null "http://$PEER_ADDR:8080/"
	local f=$USTCP_RUN_DIR/addr-$SADDR
	run -0 stat -c '%a %U %s' "$f"
	assert_output "600 root 1051368"
	# The header and secret (the first 32 bytes) stay for the next process.
	local secret
	secret=$(head -c 32 "$f" | sha256sum)
	prog curl -sS --fail -o /dev/null "http://$PEER_ADDR:8080/"
	[ "$(head -c 32 "$f" | sha256sum)" = "$secret" ]
	chmod 644 "$f"
	USTCP_LOG=warn prog curl -sS --fail -o /dev/null "http://$PEER_ADDR:8080/" 2>"$TMP/err"
	run -0 cat "$TMP/err"
	assert_output --partial "addr-*: Operation not permitted (initial sequence numbers are this process's own"
}

# Programs on the address resolve a neighbour once between them, as
# programs on a kernel share its neighbour table (addrshare.c's neighbour
# records): three curls one after the other put one ARP request on the
# wire (the kernel's may put none: its table may know the peer already).
# Without the records each process asked for itself, and every other stack
# and keeper on the address read the answer.
body_neigh_shared() {
	shim_topo_up
	peer_nginx
	capture_start "$PEER_NETNS" "$PEER_IFACE" "$TMP/arp.pcap" 30 arp
	local i n
	for i in 1 2 3; do
		prog curl -sS --fail -o /dev/null "http://$PEER_ADDR:8080/"
	done
	sleep 0.3
	kill "$CAPTURE_PID"
	wait "$CAPTURE_PID" || true
	n=$(tcpdump -nn -r "$TMP/arp.pcap" 2>/dev/null | grep -c "Request who-has $PEER_ADDR tell $SADDR" || true)
	echo "ARP requests for the peer: $n"
	[ "$n" -le 1 ]
	[ "$MODE" = kernel ] || [ "$n" = 1 ]
}

@test "churn: three programs one after the other ask for the peer's link address once between them [kernel]" { MODE=kernel body_neigh_shared; }
@test "churn: three programs one after the other ask for the peer's link address once between them [ustcp]" { MODE=ustcp body_neigh_shared; }
