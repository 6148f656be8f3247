#!/usr/bin/env bats
# Unmodified programs on ustcp through LD_PRELOAD (issue 5), against kernel
# peers: curl, wget, nc, socat, python3 (a client, a server, a poll/epoll
# matrix, a threaded client), iperf3, nginx, and a USTCP_PCAP capture of a
# curl transfer's close.
#
# Every test body is written once and registered twice: [kernel] runs it on
# the kernel's TCP (the kernel of the stack's namespace owns the stack's
# address), which proves the test; [ustcp] runs the same programs with
# LD_PRELOAD=build/libustcp.so, with the same assertions. The [ustcp] tests
# skip while build/libustcp.so does not exist (see shim_topo_up in shim.bash);
# CI builds it. The programs on the stack's side run through `prog` (see
# shim.bash); the peer's through `peer`, in the peer's namespace. Scripts are
# in tests/shim/.

bats_require_minimum_version 1.5.0

load helpers
load shim

setup_file() {
	export WWW=$BATS_FILE_TMPDIR/www
	mkdir -p "$WWW"
	head -c 10000000 /dev/urandom >"$WWW/big"
	head -c 1000000 /dev/urandom >"$WWW/mid"
	head -c 100000 /dev/urandom >"$WWW/reply"
}

setup() {
	TMP=$BATS_TEST_TMPDIR
}

# ---- curl and wget -------------------------------------------------------------

body_curl_get() {
	shim_topo_up
	peer_http 8000
	prog curl -sS --fail --max-time 50 -o "$TMP/got" "http://$PEER_ADDR:8000/big"
	same_file "$WWW/big" "$TMP/got"
}

# Two URLs in one curl: the second request goes over the first connection.
body_curl_keepalive() {
	shim_topo_up
	peer_http 8000
	prog curl -sS --fail --max-time 50 -v -w '%{num_connects}\n' \
		-o "$TMP/a" "http://$PEER_ADDR:8000/big" -o "$TMP/b" "http://$PEER_ADDR:8000/mid" \
		>"$TMP/connects" 2>"$TMP/verbose"
	same_file "$WWW/big" "$TMP/a"
	same_file "$WWW/mid" "$TMP/b"
	# One new connection for the first transfer, none for the second.
	run -0 cat "$TMP/connects"
	assert_output $'1\n0'
	run -0 grep -c "Re-using existing connection" "$TMP/verbose"
	assert_output 1
	# The server saw both requests come from one client port.
	run -0 sed -n 's/^httpd: \([0-9.:]*\) "GET \/\([a-z]*\) .*/\1 \2/p' "$TMP/httpd.err"
	assert_equal "${#lines[@]}" 2
	assert_equal "${lines[0]% *} ${lines[0]#* } ${lines[1]#* }" "${lines[1]% *} big mid"
}

body_wget() {
	shim_topo_up
	peer_http 8000
	prog wget -q --tries=1 --timeout=30 -O "$TMP/got" "http://$PEER_ADDR:8000/big"
	same_file "$WWW/big" "$TMP/got"
}

# Under ulimit -v the socket region takes at most an eighth of the address
# space (shim/fdtab.c, region_slots): at 146 MiB the region of this
# machine's 20000 fds (200 MiB since the sticky IPv6 headers' room grew)
# left wget no socket (ENFILE) until it did.
body_wget_ulimit_v() {
	shim_topo_up
	peer_http 8000
	prog bash -c 'ulimit -v 150000 && exec wget -q --tries=1 --timeout=30 -O "$1" "$2"' _ \
		"$TMP/got" "http://$PEER_ADDR:8000/big"
	same_file "$WWW/big" "$TMP/got"
}

# ---- nc --------------------------------------------------------------------------

# nc -N sends 1 MB and shuts its side down (FIN); the kernel peer reads to EOF,
# then answers with the SHA-256 of what it read and 100 kB, and closes. The
# answer must arrive whole after nc's own FIN.
body_nc_halfclose() {
	shim_topo_up
	nc_halfclose_exchange "$PEER_ADDR"
}

# nc -l serves a kernel client: each side sends a file and shuts its side
# down at its end (-N), both directions at once; each saves what it gets.
body_nc_listen() {
	shim_topo_up
	nc_listen_exchange
}

# ---- socat -----------------------------------------------------------------------

# socat as the client: at the end of its input it shuts the connection down
# (shut-down: SHUT_WR, a FIN), then reads the peer's answer until EOF.
body_socat_client() {
	shim_topo_up
	socat_client_exchange
}

# socat as the server: it hands the connection to sinkreply.py (stdio), which
# answers after the client's FIN; socat's FIN follows the answer.
body_socat_server() {
	shim_topo_up
	socat_server_exchange TCP4 "$SADDR"
}

# ---- python3 -------------------------------------------------------------------

body_py_client() {
	shim_topo_up
	py_echo_exchange "$PEER_ADDR" 7003 1
}

body_py_server() {
	shim_topo_up
	prog_bg python3 "$SHIM_DIR/echo_server.py" 0.0.0.0 7004 1 </dev/null >"$TMP/srv.out"
	local srv=$BG_PID
	prog_wait_listen 7004
	local crc=0 src=0
	peer python3 "$SHIM_DIR/echo_client.py" "$SADDR" 7004 1000000 1 >"$TMP/cli.out" || crc=$?
	bg_wait "$srv" || src=$?
	cat "$TMP/cli.out" "$TMP/srv.out"
	[ "$crc" -eq 0 ]
	[ "$src" -eq 0 ]
	grep -q "^conn 1: ok 1000000 " "$TMP/cli.out"
	grep -q "^conn 1: echoed 1000000 " "$TMP/srv.out"
}

# Eight threads, a connection each, 1 MB each way, at the same time.
body_py_threads() {
	shim_topo_up
	py_echo_exchange "$PEER_ADDR" 7005 8
}

# poll and epoll revents, recv, send and SO_ERROR in every state of C48 (and
# a listener, a connecting socket): see tests/shim/pollmatrix.py.
body_pollmatrix() {
	shim_topo_up
	peer_bg python3 "$SHIM_DIR/pollpeer.py" "$PEER_ADDR" 7100 </dev/null 2>"$TMP/peer.err"
	wait_listen "$PEER_NETNS" 7100
	wait_listen "$PEER_NETNS" 7101
	local rc=0
	USTCP_MODE=$MODE prog python3 "$SHIM_DIR/pollmatrix.py" "$PEER_ADDR" 7100 >"$TMP/matrix" 2>&1 || rc=$?
	cat "$TMP/matrix"
	if [ "$rc" -ne 0 ]; then
		echo "pollmatrix.py exited with status $rc; the peer's log:"
		cat "$TMP/peer.err"
		return 1
	fi
	grep -q '^all checks passed$' "$TMP/matrix"
}

# ---- iperf3 ---------------------------------------------------------------------

body_iperf3_client() {
	shim_topo_up
	iperf3_exchange client "$PEER_ADDR"
}

body_iperf3_server() {
	shim_topo_up
	iperf3_exchange server "$SADDR"
}

# ---- nginx ------------------------------------------------------------------------

# nginx: one process (no master), epoll, sendfile, serving $WWW on port 8080.
body_nginx() {
	shim_topo_up
	nginx_conf "$TMP/nginx.conf" "master_process off; worker_processes 1;" "access_log off;" 8080
	prog_bg nginx -p "$TMP/nginx/" -e "$TMP/nginx/error.log" -c "$TMP/nginx.conf" </dev/null
	local srv=$BG_PID
	prog_wait_listen 8080 || { cat "$TMP/nginx/error.log"; return 1; }
	peer curl -sS --fail --max-time 50 -o "$TMP/got" "http://$SADDR:8080/big" ||
		{ cat "$TMP/nginx/error.log"; return 1; }
	same_file "$WWW/big" "$TMP/got"
	# It still serves: a second connection.
	peer curl -sS --fail --max-time 50 -o "$TMP/got2" "http://$SADDR:8080/mid"
	same_file "$WWW/mid" "$TMP/got2"
	kill -0 "$srv"
}

# ---- the close on the wire ------------------------------------------------------

# A curl transfer's capture shows the close: a FIN each way, each ACKed, and
# the final ACK last. Under ustcp the library writes the capture (USTCP_PCAP);
# on the kernel, tcpdump on the stack's interface does. USTCP_MSL=0.5: the
# exit keeper holds TIME-WAIT for 1 s only.
body_pcap() {
	export USTCP_MSL=0.5
	shim_topo_up
	peer_http 8000
	if [ "$MODE" = kernel ]; then
		stack_cap_start "$TMP/c.pcap"
		prog curl -sS --fail --max-time 50 -o "$TMP/got" "http://$PEER_ADDR:8000/mid"
	else
		USTCP_PCAP=$TMP/c.pcap prog curl -sS --fail --max-time 50 -o "$TMP/got" \
			"http://$PEER_ADDR:8000/mid"
	fi
	same_file "$WWW/mid" "$TMP/got"
	# The peer's FIN and the final ACK may come after curl has exited.
	retry 10 fin_exchange "$TMP/c.pcap"
	stack_cap_stop
}

# ---- the tests: each body on the kernel, then on ustcp ------------------------

# ---- signals ------------------------------------------------------------------------

# A blocking connect() to an address nobody answers (ARP fails after about
# 3 s), interrupted by SIGALRM after 1 s: EINTR without SA_RESTART; with it,
# the wait goes on to the real outcome, as the kernel's connect does. The
# second attempt may meet the first one's unresolved neighbour entry with
# a probe or two already sent: the kernel's then fails after 1.9 s (seen
# under load), so its bound starts at 1 s.
body_connect_eintr() {
	shim_topo_up
	local nobody=${PEER_ADDR%.*}.77
	run -0 prog "$BUILD/tests/connect_eintr" "$nobody" 9
	assert_output --regexp '^connect=-1 EINTR after 1\.[0-2] s$'
	run -0 prog "$BUILD/tests/connect_eintr" "$nobody" 9 restart
	assert_output --regexp '^connect=-1 EHOSTUNREACH after [1-4]\.[0-9] s$'
}

# ---- a listener's shutdown, a reset seen through another fd number -------------------

# shutdown(SHUT_RDWR) on a listener returns 0 and wakes a thread blocked in
# accept() with EINVAL, as Linux's (servers stop their acceptors so).
body_listener_shutdown() {
	shim_topo_up
	run -0 prog python3 -c '
import socket, threading, time
l = socket.socket(); l.bind(("0.0.0.0", 7300)); l.listen(5)
got = []
def acceptor():
    try:
        l.accept()
        got.append("accepted")
    except OSError as e:
        got.append("accept: %s" % __import__("errno").errorcode[e.errno])
# Kept as a sleep: lets the thread block in accept() first; a thread
# blocked in a call is not visible portably.
t = threading.Thread(target=acceptor); t.start(); time.sleep(0.5)
print("shutdown:", l.shutdown(socket.SHUT_RDWR))
t.join(5); print(got[0] if got else "accept still blocked")
'
	assert_output $'shutdown: None\naccept: EINVAL'
}

# TCP_CONGESTION: "reno", "cubic" and "bbr" are there (setsockopt 0, getsockopt
# gives it back, also when the name comes with its NUL); a name no
# algorithm has, or one that only starts like one, is ENOENT.
body_congestion_opt() {
	shim_topo_up
	run -0 prog python3 -c '
import errno, socket
s = socket.socket()
def try_set(name):
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, name)
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
for name in (b"reno", b"reno\0", b"renoX", b"cubic", b"cubic\0", b"bbr", b"bbr\0", b"nosuch"):
    print(name, try_set(name))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"reno")
print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\0"))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"cubic")
print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\0"))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"bbr")
print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\0"))
'
	assert_output $'b\'reno\' ok\nb\'reno\\x00\' ok\nb\'renoX\' ENOENT\nb\'cubic\' ok\nb\'cubic\\x00\' ok\nb\'bbr\' ok\nb\'bbr\\x00\' ok\nb\'nosuch\' ENOENT\nb\'reno\'\nb\'cubic\'\nb\'bbr\''
}

# The default algorithm: the namespace's, as the kernel's socket there reads
# it (net.ipv4.tcp_congestion_control: bbr on the development machine),
# CUBIC where the stack lacks it; set to reno in the namespace, reno;
# USTCP_CC chooses another.
body_congestion_default() {
	shim_topo_up
	local get='import socket; s = socket.socket(); print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\0"))'
	local kernel
	kernel=$(ip netns exec "$USTCP_NETNS" python3 -c "$get")
	case $kernel in
	"b'reno'" | "b'cubic'" | "b'bbr'") ;;
	*) kernel="b'cubic'" ;;
	esac
	run -0 prog python3 -c "$get"
	assert_output "$kernel"
	ip netns exec "$USTCP_NETNS" sysctl -q -w net.ipv4.tcp_congestion_control=reno
	run -0 prog python3 -c "$get"
	assert_output "b'reno'"
	USTCP_CC=cubic run -0 prog python3 -c "$get"
	assert_output "b'cubic'"
	USTCP_CC=bbr run -0 prog python3 -c "$get"
	assert_output "b'bbr'"
	# the draft's BBRv3, a name this kernel does not have
	USTCP_CC=bbr3 run -0 prog python3 -c "$get"
	assert_output "b'bbr3'"
}

# TCP_QUICKACK reads back "not interactive" (1 at first, 0 after setting 0,
# 1 after 1 or 2); SO_RCVBUF and SO_SNDBUF read the buffer sizes: Linux
# 6.18's defaults (tcp_rmem[1] 131072, tcp_wmem[1] 16384), the send buffer
# grown after the handshake to two windows of ten 2304-byte segments
# (46080, with reno: bbr, the namespace's default here, provisions three),
# and twice what a program sets, at least 2304 and 4608.
body_buffers_quickack() {
	shim_topo_up
	peer_bg python3 -c '
import socket, sys
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], 7302)); l.listen()
c, _ = l.accept(); c.recv(1)
' "$PEER_ADDR" </dev/null
	wait_listen "$PEER_NETNS" 7302
	run -0 prog python3 -c '
import socket, sys
T = socket.IPPROTO_TCP
s = socket.socket()
s.setsockopt(T, socket.TCP_CONGESTION, b"reno")
def bufs(): return s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF), s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
print("before", *bufs(), s.getsockopt(T, socket.TCP_QUICKACK))
s.connect((sys.argv[1], 7302))
print("after", *bufs(), s.getsockopt(T, socket.TCP_QUICKACK))
for v in (0, 1, 0, 2):
    s.setsockopt(T, socket.TCP_QUICKACK, v)
    print("quickack", v, s.getsockopt(T, socket.TCP_QUICKACK))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 20000)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1000)
print("set", *bufs())
s.send(b"x")
' "$PEER_ADDR"
	assert_output $'before 131072 16384 1\nafter 131072 46080 1\nquickack 0 0\nquickack 1 1\nquickack 0 0\nquickack 2 1\nset 40000 4608'
}

# A peer's RST on a socket that moved to another number (dup2, then close
# the first): read() reports ECONNRESET, then 0.
body_dup2_reset() {
	shim_topo_up
	peer_bg python3 -c '
import os, socket, struct, sys, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], 7301)); l.listen()
c, _ = l.accept()
for _ in range(200):  # the program has moved its socket to fd 20
    if os.path.exists(sys.argv[2]): break
    time.sleep(0.05)
c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); c.close()
' "$PEER_ADDR" "$BATS_TEST_TMPDIR/moved" </dev/null
	wait_listen "$PEER_NETNS" 7301
	run -0 prog python3 -c '
import errno, os, socket, sys
s = socket.create_connection((sys.argv[1], 7301))
os.dup2(s.fileno(), 20); s.close()
open(sys.argv[2], "w").close()
for _ in range(2):
    try:
        print("read", len(os.read(20, 100)))
    except OSError as e:
        print("read", errno.errorcode[e.errno])
' "$PEER_ADDR" "$BATS_TEST_TMPDIR/moved"
	assert_output $'read ECONNRESET\nread 0'
}

# TCP_INFO after the same transfer on either TCP (tcpinfo.py: 200 kB echoed,
# the connection still open): the length of Linux 6.18's struct (280
# bytes), its state, options and window scales, and the counters of what
# moved. The kernel's figures say what each field counts: bytes_acked
# counts our SYN besides the data (and a FIN, measured after a close).
body_tcp_info() {
	shim_topo_up
	peer_bg python3 "$SHIM_DIR/echo_server.py" "$PEER_ADDR" 7010 1 </dev/null >"$TMP/srv.out"
	local srv=$BG_PID
	wait_listen "$PEER_NETNS" 7010
	prog python3 "$SHIM_DIR/tcpinfo.py" "$PEER_ADDR" 7010 200000 >"$TMP/info"
	bg_wait "$srv"
	cat "$TMP/info" | tee "${TCPINFO_KEEP:-/dev/null}"
	f() { sed -n "s/^$1 //p" "$TMP/info"; }
	[ "$(f len)" = 280 ]
	[ "$(f short)" = "8 True" ]
	[ "$(f state)" = 1 ]               # TCP_ESTABLISHED
	[ "$(f options)" = 7 ]             # TIMESTAMPS | SACK | WSCALE
	[ "$(f snd_mss)" = 1448 ] && [ "$(f rcv_mss)" = 1448 ] && [ "$(f advmss)" = 1448 ]
	[ "$(f pmtu)" = 1500 ]
	[ "$(f ca_state)" = 0 ] && [ "$(f retransmits)" = 0 ] && [ "$(f total_retrans)" = 0 ]
	# snd_wscale in the low four bits, rcv_wscale in the high: both from
	# the buffers' defaults, the same on either side here
	[ $(( $(f wscale) & 15 )) -ge 7 ] && [ $(( $(f wscale) >> 4 )) -ge 7 ]
	[ "$(f bytes_received)" = 200000 ]
	[ "$(f bytes_acked)" = 200001 ]
	[ "$(f max_pacing_rate)" = 18446744073709551615 ]
	[ "$(f pacing_rate)" -gt 0 ]
	[ "$(f rto)" -ge 200000 ] && [ "$(f ato)" -ge 40000 ]
	[ "$(f rcv_space)" -gt 0 ] && [ "$(f snd_wnd)" -gt 0 ] && [ "$(f rcv_wnd)" -gt 0 ]
	# (busy_time is in jiffies on Linux: 0 for a transfer under 4 ms here;
	# the segment script tcp-info-counters.seg checks ours)
	[ "$(f delivered)" -gt 0 ]
	[ "$(f last_data_sent)" -ge 250 ] && [ "$(f last_data_recv)" -ge 250 ]
	[ "$(f bytes_sent)" -ge 200000 ]
	[ "$(f segs_out)" -gt 0 ] && [ "$(f segs_in)" -gt 0 ]
	[ "$(f data_segs_out)" -gt 0 ] && [ "$(f data_segs_in)" -gt 0 ]
	[ "$(f min_rtt)" -gt 0 ] && [ "$(f rtt)" -gt 0 ]
	[ "$(f delivery_rate)" -gt 0 ]
	[ "$(f unacked)" = 0 ]
	[ "$(f notsent_bytes)" = 0 ]
}


# TCP_INFO on a socket whose connection is gone, the program still holding
# it (tcpinfo.py ... ended): HOW is "fin" (we shut down, the peer closes,
# TIME-WAIT passes: 1 s here, 1.5 s waited) or "rst" (the peer answers our
# shutdown with a RST). Measured on Linux 6.18: 280 bytes, state CLOSE, and
# the counters as they were (the FINs counted in bytes_acked and
# bytes_received), the last_* times still growing.
body_tcp_info_ended() {
	local how=$1
	export USTCP_MSL=0.5 # TIME-WAIT 1 s
	shim_topo_up
	peer_bg python3 "$SHIM_DIR/echo_server.py" "$PEER_ADDR" 7011 1 "$how" </dev/null >"$TMP/srv.out"
	local srv=$BG_PID
	wait_listen "$PEER_NETNS" 7011
	prog python3 "$SHIM_DIR/tcpinfo.py" "$PEER_ADDR" 7011 200000 ended 1.5 >"$TMP/info"
	bg_wait "$srv"
	cat "$TMP/info" | tee "${TCPINFO_KEEP:-/dev/null}"
	f() { sed -n "s/^$1 //p" "$TMP/info"; }
	if [ "$how" = fin ]; then
		[ "$(f end)" = eof ]
		[ "$(f bytes_acked)" = 200002 ] && [ "$(f bytes_received)" = 200001 ]
	else
		[ "$(f end)" = ECONNRESET ]
		[ "$(f bytes_acked)" = 200001 ] && [ "$(f bytes_received)" = 200000 ]
	fi
	[ "$(f len)" = 280 ]
	[ "$(f state)" = 7 ]               # TCP_CLOSE
	[ "$(f options)" = 7 ] && [ "$(f wscale)" = "$(f 'open wscale')" ]
	[ "$(f snd_mss)" = 1448 ] && [ "$(f advmss)" = 1448 ] && [ "$(f pmtu)" = 1500 ]
	[ "$(f rto)" -ge 200000 ] && [ "$(f rtt)" -gt 0 ] && [ "$(f snd_cwnd)" -gt 0 ]
	[ "$(f bytes_sent)" = 200000 ] && [ "$(f data_segs_out)" = "$(f 'open data_segs_out')" ]
	[ "$(f segs_out)" -gt "$(f 'open segs_out')" ] && [ "$(f segs_in)" -gt "$(f 'open segs_in')" ]
	[ "$(f delivered)" -ge "$(f 'open delivered')" ]
	[ "$(f last_data_sent)" -ge $(( $(f 'open last_data_sent') + 1400 )) ]
	[ "$(f last_data_recv)" -ge $(( $(f 'open last_data_recv') + 1400 )) ]
	[ "$(f unacked)" = 0 ]
}


@test "curl: 10 MB GET, sha256 [kernel]" { MODE=kernel body_curl_get; }
@test "curl: 10 MB GET, sha256 [ustcp]" { MODE=ustcp body_curl_get; }

@test "curl: keep-alive, two GETs on one connection [kernel]" { MODE=kernel body_curl_keepalive; }
@test "curl: keep-alive, two GETs on one connection [ustcp]" { MODE=ustcp body_curl_keepalive; }

@test "wget: 10 MB GET, sha256 [kernel]" { MODE=kernel body_wget; }
@test "wget: 10 MB GET, sha256 [ustcp]" { MODE=ustcp body_wget; }

@test "wget under ulimit -v 150000: 10 MB GET, sha256 [kernel]" { MODE=kernel body_wget_ulimit_v; }
@test "wget under ulimit -v 150000: 10 MB GET, sha256 [ustcp]" { MODE=ustcp body_wget_ulimit_v; }

@test "nc -N: 1 MB, FIN, then the peer's answer arrives whole (half-close) [kernel]" { MODE=kernel body_nc_halfclose; }
@test "nc -N: 1 MB, FIN, then the peer's answer arrives whole (half-close) [ustcp]" { MODE=ustcp body_nc_halfclose; }

@test "nc -l: serves a kernel client, files both ways [kernel]" { MODE=kernel body_nc_listen; }
@test "nc -l: serves a kernel client, files both ways [ustcp]" { MODE=ustcp body_nc_listen; }

@test "socat client: shut-down half-close, answer whole [kernel]" { MODE=kernel body_socat_client; }
@test "socat client: shut-down half-close, answer whole [ustcp]" { MODE=ustcp body_socat_client; }

@test "socat server: TCP-LISTEN to EXEC, half-close both ways [kernel]" { MODE=kernel body_socat_server; }
@test "socat server: TCP-LISTEN to EXEC, half-close both ways [ustcp]" { MODE=ustcp body_socat_server; }

@test "python3: echo client, 1 MB checksummed [kernel]" { MODE=kernel body_py_client; }
@test "python3: echo client, 1 MB checksummed [ustcp]" { MODE=ustcp body_py_client; }

@test "python3: echo server, 1 MB checksummed [kernel]" { MODE=kernel body_py_server; }
@test "python3: echo server, 1 MB checksummed [ustcp]" { MODE=ustcp body_py_server; }

@test "python3: 8 threads, a connection each, 1 MB echoed each [kernel]" { MODE=kernel body_py_threads; }
@test "python3: 8 threads, a connection each, 1 MB echoed each [ustcp]" { MODE=ustcp body_py_threads; }

@test "python3: poll/epoll/recv/send/SO_ERROR matrix, state by state (C48) [kernel]" { MODE=kernel body_pollmatrix; }
@test "python3: poll/epoll/recv/send/SO_ERROR matrix, state by state (C48) [ustcp]" { MODE=ustcp body_pollmatrix; }

# close_range, closefrom, and close() on each number up to the limit over
# "every other fd", as daemons do: the connection kept at fd 100 and a new
# one both work (under ustcp the stack's own fds share the table and must
# survive; one by one, they look absent: EBADF, as on Linux, so the program
# closes only the one number it opened; tests/progs/close_others.c).
body_close_others() {
	shim_topo_up
	peer_echo 7012 2
	local srv=$ECHO_PID
	run -0 prog "$BUILD/tests/close_others" "$PEER_ADDR" 7012 "$1"
	if [ "$1" = each ]; then
		assert_output "closed 1 number not open at the start
echo 1: ping
echo 2: ping"
	else
		assert_output "echo 1: ping
echo 2: ping"
	fi
	bg_wait "$srv"
}

# exec keeps a socket's identity: the new image sees the connection it
# inherited as a TCP socket (family, peer, SO_DOMAIN) and talks on it.
EXEC_PY='
import os, socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
fd = s.detach()
os.set_inheritable(fd, True)
os.execv(sys.executable, [sys.executable, "-c", """
import socket, sys
s = socket.socket(fileno=int(sys.argv[1]))
print(s.family.name, s.type.name, s.getpeername()[1], s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN))
s.sendall(b"ping\\n")
s.shutdown(socket.SHUT_WR)
print("echo", s.makefile().read().strip())
""", str(fd)])
'
body_exec_identity() {
	shim_topo_up
	peer_echo 7013
	local srv=$ECHO_PID
	run -0 prog python3 -c "$EXEC_PY" "$PEER_ADDR" 7013
	assert_output "AF_INET SOCK_STREAM 7013 2
echo ping"
	bg_wait "$srv"
}

# exec keeps a socket that is neither connected nor listening too (issue
# 14): its family, options and bound port in the new image, which then
# connects from that port, or listens on it and accepts
# (tests/shim/exec_unconnected.py).
body_exec_unconnected() {
	shim_topo_up
	peer_echo 7014 2
	local srv=$ECHO_PID
	local how
	for how in bind nobind; do
		run -0 prog python3 "$SHIM_DIR/exec_unconnected.py" client "$PEER_ADDR" 7014 $how
		assert_output "new image: AF_INET 2 1 6
options: nodelay 1 keepalive True reuseaddr True
bound port kept: True
connected from the bound port: True peer 7014
echo ping"
	done
	bg_wait "$srv"
	prog_bg python3 "$SHIM_DIR/exec_unconnected.py" server "$SADDR" 7015 >"$TMP/srv2.out"
	srv=$BG_PID
	prog_wait_listen 7015
	run -0 peer python3 -c 'import socket, sys
s = socket.create_connection((sys.argv[1], 7015), timeout=10)
s.sendall(b"hello\n")
print(s.makefile().readline().strip())' "$SADDR"
	assert_output hello
	bg_wait "$srv"
	run -0 cat "$TMP/srv2.out"
	assert_output "new image: AF_INET 2 1 6
options: nodelay 1 keepalive True reuseaddr True
bound port kept: True
listening True
accepted: local port True"
	# The inherited bind holds its port in the new image, the
	# close-on-exec one's is free; once the image ended, so is the first.
	run -0 prog python3 "$SHIM_DIR/exec_unconnected.py" ports "$SADDR" 7016
	assert_output "new image: AF_INET 2 1 6
options: nodelay 1 keepalive True reuseaddr False
bound port kept: True
inherited port EADDRINUSE close-on-exec port free"
	run -0 prog python3 -c 'import socket, sys
socket.socket().bind((sys.argv[1], 7016))
print("free after the image")' "$SADDR"
	assert_output "free after the image"
}

@test "iperf3: client against a kernel server, 5 s [kernel]" { MODE=kernel body_iperf3_client; }
@test "iperf3: client against a kernel server, 5 s [ustcp]" { MODE=ustcp body_iperf3_client; }

@test "iperf3: server for a kernel client, 5 s [kernel]" { MODE=kernel body_iperf3_server; }
@test "iperf3: server for a kernel client, 5 s [ustcp]" { MODE=ustcp body_iperf3_server; }

@test "nginx: epoll + sendfile, 10 MB to a kernel curl, sha256 [kernel]" { MODE=kernel body_nginx; }
@test "nginx: epoll + sendfile, 10 MB to a kernel curl, sha256 [ustcp]" { MODE=ustcp body_nginx; }

@test "capture of a curl transfer: FIN each way, final ACK (USTCP_PCAP / tcpdump) [kernel]" { MODE=kernel body_pcap; }
@test "capture of a curl transfer: FIN each way, final ACK (USTCP_PCAP / tcpdump) [ustcp]" { MODE=ustcp body_pcap; }

@test "blocking connect and signals: EINTR, or SA_RESTART goes on waiting [kernel]" { MODE=kernel body_connect_eintr; }
@test "blocking connect and signals: EINTR, or SA_RESTART goes on waiting [ustcp]" { MODE=ustcp body_connect_eintr; }

@test "shutdown on a listener: 0, and a blocked accept() fails with EINVAL [kernel]" { MODE=kernel body_listener_shutdown; }
@test "shutdown on a listener: 0, and a blocked accept() fails with EINVAL [ustcp]" { MODE=ustcp body_listener_shutdown; }
@test "TCP_CONGESTION: reno, cubic and bbr are set and read back, unknown names are ENOENT [kernel]" { MODE=kernel body_congestion_opt; }
@test "TCP_CONGESTION: reno, cubic and bbr are set and read back, unknown names are ENOENT [ustcp]" { MODE=ustcp body_congestion_opt; }
@test "TCP_CONGESTION: the namespace's by default, USTCP_CC chooses another [ustcp]" { MODE=ustcp body_congestion_default; }
@test "TCP_QUICKACK and the buffer sizes read back as Linux [kernel]" { MODE=kernel body_buffers_quickack; }
@test "TCP_QUICKACK and the buffer sizes read back as Linux [ustcp]" { MODE=ustcp body_buffers_quickack; }
@test "a peer's RST seen through a dup2'd fd: ECONNRESET, then 0 [kernel]" { MODE=kernel body_dup2_reset; }
@test "a peer's RST seen through a dup2'd fd: ECONNRESET, then 0 [ustcp]" { MODE=ustcp body_dup2_reset; }
@test "TCP_INFO: 280 bytes, the state, options and counters of a transfer [kernel]" { MODE=kernel body_tcp_info; }
@test "TCP_INFO: 280 bytes, the state, options and counters of a transfer [ustcp]" { MODE=ustcp body_tcp_info; }
@test "TCP_INFO after TIME-WAIT: 280 bytes, TCP_CLOSE, the counters kept [kernel]" { MODE=kernel body_tcp_info_ended fin; }
@test "TCP_INFO after TIME-WAIT: 280 bytes, TCP_CLOSE, the counters kept [ustcp]" { MODE=ustcp body_tcp_info_ended fin; }
@test "TCP_INFO after the peer's RST: 280 bytes, TCP_CLOSE, the counters kept [kernel]" { MODE=kernel body_tcp_info_ended rst; }
@test "TCP_INFO after the peer's RST: 280 bytes, TCP_CLOSE, the counters kept [ustcp]" { MODE=ustcp body_tcp_info_ended rst; }
@test "close_range over every other fd: a kept connection and a new one work [kernel]" { MODE=kernel body_close_others range; }
@test "close_range over every other fd: a kept connection and a new one work [ustcp]" { MODE=ustcp body_close_others range; }
@test "closefrom over every other fd: a kept connection and a new one work [kernel]" { MODE=kernel body_close_others from; }
@test "closefrom over every other fd: a kept connection and a new one work [ustcp]" { MODE=ustcp body_close_others from; }
@test "close() on each number up to the limit: the stack's fds look absent (EBADF), a kept connection and a new one work [kernel]" { MODE=kernel body_close_others each; }
@test "close() on each number up to the limit: the stack's fds look absent (EBADF), a kept connection and a new one work [ustcp]" { MODE=ustcp body_close_others each; }
@test "exec: the new image sees its inherited connection as TCP and talks on it [kernel]" { MODE=kernel body_exec_identity; }
@test "exec: the new image sees its inherited connection as TCP and talks on it [ustcp]" { MODE=ustcp body_exec_identity; }
@test "exec: a bound, unconnected socket keeps its identity, then connects or listens [kernel]" { MODE=kernel body_exec_unconnected; }
@test "exec: a bound, unconnected socket keeps its identity, then connects or listens [ustcp]" { MODE=ustcp body_exec_unconnected; }

# An epoll set that registered a socket before connect() to 127.0.0.1 (a
# USTCP_PASSTHROUGH address) or bind() to it goes on watching it: under
# ustcp the kernel socket that takes the number is registered again in
# the program's epoll sets (shim/fdplace.c, us_epoll_regs): those it made,
# one another image made and passed with SCM_RIGHTS, one inherited across
# exec. Issue 14.
body_epoll_handover() {
	shim_topo_up
	prog python3 "$SHIM_DIR/epoll_handover.py" >"$TMP/out"
	cat "$TMP/out"
	diff -u - "$TMP/out" <<-EOF
		a set received with SCM_RIGHTS: writable True, readable True
		connect to 127.0.0.1: writable True, readable True
		bind 127.0.0.1, then connect: writable True, readable True
		a set inherited across exec: writable True, readable True
	EOF
}

@test "epoll: a set made before connect or bind to 127.0.0.1 still watches the socket [kernel]" { MODE=kernel body_epoll_handover; }
@test "epoll: a set made before connect or bind to 127.0.0.1 still watches the socket [ustcp]" { MODE=ustcp body_epoll_handover; }

# After serving the program's calls the stack thread looks for the next
# one without sleeping (USTCP_CALL_SPIN, 50 us by default; counted as
# loop-spins), where it may run on another CPU; USTCP_CALL_SPIN=0 turns
# that off, for a program whose CPU time a quota counts. Twenty
# setsockopt calls, each a call to the stack thread, then the program's
# own counters.
call_spin_run() {
	prog env "$@" python3 -c "
import os, socket, subprocess
s = socket.socket()
for i in range(20):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536 + i)
env = {k: v for k, v in os.environ.items() if k != 'LD_PRELOAD'}
out = subprocess.run(['$BUILD/ustcp-stat', '-s', '-p', str(os.getpid())], env=env,
                     capture_output=True, text=True).stdout
print(' '.join(l.split()[1] for l in out.splitlines() if l.split()[:1] == ['loop-spins']))" >"$TMP/out"
	cat "$TMP/out"
	read -r SPINS <"$TMP/out"
}

@test "after the program's calls the stack thread spins (loop-spins); USTCP_CALL_SPIN=0 turns it off [ustcp]" {
	[ "$(nproc)" -ge 2 ] || skip "the stack thread spins only where it may run on another CPU"
	MODE=ustcp
	shim_topo_up
	export USTCP_RUN_DIR=$TMP/run
	call_spin_run
	[ "$SPINS" -ge 1 ]
	call_spin_run USTCP_CALL_SPIN=0
	[ "$SPINS" -eq 0 ]
}
