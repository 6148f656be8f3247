#!/usr/bin/env bats
# AF_INET6 sockets through the shim (issue 16, third increment), against
# kernel peers over IPv6 and IPv4: curl -6, wget -6, nc -6 -N half-close,
# socat as client and TCP6-LISTEN server, python3 with 8 threads, iperf3 -6
# both ways, a python3 dual-stack server with an IPv4 and an IPv6 client (the
# addresses it is given, as Linux gives them), IPV6_V6ONLY, nginx on
# [::]:8080; a neighbour
# that never answers (EHOSTUNREACH), packet too big (the MSS and the
# segments on the wire).
#
# As 060-shim.bats, every body runs twice: [kernel] on the kernel's TCP (the
# kernel of the stack's namespace gets the stack's IPv4 and IPv6 addresses),
# which proves the test; [ustcp] with LD_PRELOAD=build/libustcp.so, where no
# kernel owns either address and only the library's stack can answer.

bats_require_minimum_version 1.5.0

load helpers
load shim

setup_file() {
	shim_www
}

setup() {
	TMP=$BATS_TEST_TMPDIR
}

# curl -6 fetches a file from a kernel httpd over IPv6. Under ustcp its
# connect comes in the stack's first second, while the address is in DAD:
# it waits for DAD rather than failing.
body_curl6() {
	shim6_topo_up
	peer_bg python3 "$SHIM_DIR/httpd.py" "$PEER_ADDR6" 8000 "$WWW" </dev/null 2>"$TMP/httpd.err"
	wait_listen "$PEER_NETNS" 8000
	prog curl -6 -sS --fail --max-time 50 -o "$TMP/got" "http://[$PEER_ADDR6]:8000/mid"
	same_file "$WWW/mid" "$TMP/got"
	# The server saw the stack's IPv6 address.
	run -0 grep -c "^httpd: $SADDR6:" "$TMP/httpd.err"
	assert_output 1
}

# A second program on the address takes its IPv6 address at once: a
# server already holds it (its bind waited out DAD), so a bind() to the
# address right at the start succeeds, as on a kernel where the address
# was configured before either program, and curl -6 runs without waiting
# for DAD. Under ustcp the second stack took the address from the share
# (addrshare.c, nd-dad-shared); without it the bind fails (EADDRNOTAVAIL)
# for the stack's first second.
body_second_program_dad() {
	shim6_topo_up
	peer_bg python3 "$SHIM_DIR/httpd.py" "$PEER_ADDR6" 8000 "$WWW" </dev/null 2>"$TMP/httpd.err"
	wait_listen "$PEER_NETNS" 8000
	prog_bg python3 -c '
import errno, os, socket, sys, time
s = socket.socket(socket.AF_INET6)
for _ in range(60):
    try:
        s.bind((sys.argv[1], 7650))
        break
    except OSError as e:
        if e.errno != errno.EADDRNOTAVAIL:
            raise
        time.sleep(0.05)
s.listen(1)
open(sys.argv[2] + "/ready", "w").close()
while not os.path.exists(sys.argv[2] + "/stop"):
    time.sleep(0.05)' "$SADDR6" "$TMP" </dev/null
	local srv=$BG_PID
	wait_file "$TMP/ready" 10
	run -0 prog sh -c 'python3 -c "
import errno, socket, sys
s = socket.socket(socket.AF_INET6)
try:
    s.bind((sys.argv[1], 0))
    print(\"bound at once\")
except OSError as e:
    print(errno.errorcode[e.errno])" "$1" && curl -6 -sS --fail --max-time 50 -o "$2/got" "http://[$3]:8000/mid"' \
		sh "$SADDR6" "$TMP" "$PEER_ADDR6"
	assert_output "bound at once"
	same_file "$WWW/mid" "$TMP/got"
	touch "$TMP/stop"
	bg_wait "$srv" 10
}

# nc -6 -N: 1 MB to a kernel peer over IPv6, FIN, then the peer's answer
# arrives whole (the half-close of 060's nc test, over IPv6).
body_nc6_halfclose() {
	shim6_topo_up
	nc_halfclose_exchange "$PEER_ADDR6" -6
}

# One AF_INET6 listener on [::] with IPV6_V6ONLY as the kernel's bindv6only
# leaves it (0): an IPv4 client arrives as ::ffff:10.9.0.1, to
# ::ffff:10.9.0.2; an IPv6 client as itself. Both echo 1 MB.
body_py_dualstack() {
	shim6_topo_up
	prog_bg python3 "$SHIM_DIR/dualstack.py" 7200 2 default >"$TMP/srv.out"
	local srv=$BG_PID
	prog_wait_listen 7200
	peer python3 "$SHIM_DIR/echo_client.py" "$SADDR" 7200 1000000 >"$TMP/c4" 2>&1
	peer python3 "$SHIM_DIR/echo_client.py" "$SADDR6" 7200 1000000 >"$TMP/c6" 2>&1
	bg_wait "$srv"
	run -0 cat "$TMP/srv.out"
	assert_line --index 0 "v6only 0"
	assert_line --index 1 "listening ::"
	assert_line --index 2 "peer ::ffff:$PEER_ADDR local ::ffff:$SADDR family 10 flow 0 scope 0"
	assert_line --index 3 "peer $PEER_ADDR6 local $SADDR6 family 10 flow 0 scope 0"
}

# IPV6_V6ONLY 1: the IPv4 client is refused (no listener takes IPv4 on
# that port), the IPv6 one served.
body_py_v6only() {
	shim6_topo_up
	prog_bg python3 "$SHIM_DIR/dualstack.py" 7300 1 1 >"$TMP/srv.out"
	local srv=$BG_PID
	wait_for 10 grep -q "^listening" "$TMP/srv.out"
	sleep 1.2 # under ustcp, DAD: the peer's first SYN waits for our advertisement otherwise
	run peer python3 -c "import socket; socket.create_connection(('$SADDR', 7300), 5)"
	assert_failure
	assert_output --partial "Connection refused"
	peer python3 "$SHIM_DIR/echo_client.py" "$SADDR6" 7300 1000000 >"$TMP/c6" 2>&1
	bg_wait "$srv"
	run -0 cat "$TMP/srv.out"
	assert_line --index 0 "v6only 1"
	assert_line --index 2 "peer $PEER_ADDR6 local $SADDR6 family 10 flow 0 scope 0"
}

# nginx with listen [::]:8080 (ipv6only=off) serves a kernel curl over IPv4
# and one over IPv6.
body_nginx_dualstack() {
	shim6_topo_up
	nginx_conf "$TMP/nginx.conf" "master_process off; worker_processes 1;" "access_log off;" \
		"[::]:8080 ipv6only=off"
	prog_bg nginx -p "$TMP/nginx/" -e "$TMP/nginx/error.log" -c "$TMP/nginx.conf" </dev/null
	prog_wait_listen 8080 || { cat "$TMP/nginx/error.log"; return 1; }
	peer curl -4 -sS --fail --max-time 50 -o "$TMP/got4" "http://$SADDR:8080/mid" ||
		{ cat "$TMP/nginx/error.log"; return 1; }
	same_file "$WWW/mid" "$TMP/got4"
	peer curl -6 -sS --fail --max-time 50 -o "$TMP/got6" "http://[$SADDR6]:8080/mid" ||
		{ cat "$TMP/nginx/error.log"; return 1; }
	same_file "$WWW/mid" "$TMP/got6"
}

# connect() to an address of the link that no neighbour answers for:
# neighbour discovery gives up after three solicitations a second apart
# (mcast_solicit 3, retrans_time 1 s) and the connect fails with
# EHOSTUNREACH, as Linux's ip6_link_failure makes it. Under ustcp DAD's
# second comes first.
body_ndp_fails() {
	shim6_topo_up
	local nobody=${SADDR6%:*}:99
	run -0 prog python3 -c "
import errno, socket, time
s = socket.socket(socket.AF_INET6)
s.settimeout(30)
t = time.monotonic()
try:
    s.connect(('$nobody', 7500))
    print('connected')
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno), round(time.monotonic() - t))
"
	read -r err secs <<<"$output"
	[ "$err" = EHOSTUNREACH ] || { echo "connect: $output (want EHOSTUNREACH)" >&2; return 1; }
	((secs >= 2 && secs <= 6)) || { echo "EHOSTUNREACH after $secs s (want 3, 4 under ustcp)" >&2; return 1; }
}

# Packet too big (RFC 8201): the peer takes 100 kB at MTU 1500, then
# sends an ICMPv6 packet too big for MTU (1280) quoting the connection,
# then "P"; the 100 kB after it leave in datagrams of 1280 bytes at most,
# and TCP_MAXSEG goes from 1428 to 1208 (1280 less 40, 20 and the 12 of
# the timestamps). One below IPv6's minimum (1000) is dropped, as Linux's
# tcp_v6_err has done since 5.14: the MSS and the datagrams stay; and so
# is any to a sender whose IPV6_MTU_DISCOVER is INTERFACE (4) or OMIT (5)
# (ip6_sk_accept_pmtu; DONT, 0, still takes it: measured). No offloads, so
# that frames on the veth are the segments.
# body_packet_too_big MTU MSS_AFTER WIRE_AFTER [IPV6_MTU_DISCOVER]
body_packet_too_big() {
	shim6_topo_up --no-offload
	peer_bg python3 "$SHIM_DIR/pmtu6.py" peer "$PEER_ADDR6" 7600 "$PEER_IFACE" "$1" >"$TMP/peer.out" 2>&1
	local srv=$BG_PID
	wait_listen "$PEER_NETNS" 7600
	run -0 prog python3 "$SHIM_DIR/pmtu6.py" send "$PEER_ADDR6" 7600 ${4:+"$4"}
	assert_line --index 0 "mss 1428"
	assert_line --index 1 "mss $2"
	bg_wait "$srv" || { cat "$TMP/peer.out" >&2; return 1; }
	run -0 cat "$TMP/peer.out"
	assert_output "wire before=1500 after=$3"
}

# A device with TSO for IPv4 but not for IPv6 (tx-tcp6-segmentation off on
# the stack's veth): both families' transfers arrive whole, and both go as
# runs (GSO frames), from one process over one link, IPv6 first: the IPv4
# ones segmented by the device, the IPv6 ones by the kernel's software GSO
# on the queueing path, which the link takes instead of the bypass then, as
# Linux's TCP sends GSO buffers to any device. (Before, the IPv6 segments
# went one frame each; and before that, a link that tried a GSO frame the
# device could not take, or went by ETHTOOL_GTSO, which answers for both
# families, turned GSO off for both.) Only under ustcp: the counter is the
# stack's.
body_gso_per_family() {
	shim6_topo_up
	in_stack ethtool -K "$USTCP_IFACE" tx-tcp6-segmentation off >/dev/null
	run -0 in_stack ethtool -k "$USTCP_IFACE"
	assert_line --regexp "^\s*tx-tcp6-segmentation: off$"
	assert_line --regexp "^\s*tx-tcp-segmentation: on$"
	export USTCP_RUN_DIR=$TMP/run
	mkdir -p "$USTCP_RUN_DIR"
	local py=$SHIM_DIR/gso_families.py bytes=4000000
	peer_bg python3 "$py" peer "$PEER_ADDR" "$PEER_ADDR6" 7700 >"$TMP/peer.out" 2>&1
	local srv=$BG_PID
	wait_listen "$PEER_NETNS" 7700
	prog_bg python3 "$py" send "$PEER_ADDR6" "$PEER_ADDR" 7700 "$bytes" "$TMP"
	local prg=$BG_PID gso6 gso4
	wait_file "$TMP/v6.done" 30
	gso6=$(stat_gso "$(cat "$TMP/v6.done")")
	touch "$TMP/go4"
	wait_file "$TMP/v4.done" 30
	gso4=$(stat_gso "$(cat "$TMP/v4.done")")
	touch "$TMP/stop"
	bg_wait "$prg" 20
	bg_wait "$srv" 20 || { cat "$TMP/peer.out" >&2; return 1; }
	run -0 cat "$TMP/peer.out"
	assert_line --index 0 "got v6 $bytes"
	assert_line --index 1 "got v4 $bytes"
	echo "tx-gso after IPv6: $gso6, after IPv4: $gso4"
	[ "$gso6" -gt 0 ]
	[ "$gso4" -gt "$gso6" ]
}

# stat_gso PID: the stack's tx-gso counter (ustcp-stat -s).
stat_gso() {
	USTCP_RUN_DIR=$USTCP_RUN_DIR timeout 10 "$BUILD/ustcp-stat" -s -p "$1" |
		awk '$1 == "tx-gso" { v = $2 } END { print v + 0 }'
}

# The programs of 060-shim.bats's rows over IPv6: wget -6, socat as client
# and server, python3's 8 threads, iperf3 both ways.
body_wget6() {
	shim6_topo_up
	peer_bg python3 "$SHIM_DIR/httpd.py" "$PEER_ADDR6" 8000 "$WWW" </dev/null 2>"$TMP/httpd.err"
	wait_listen "$PEER_NETNS" 8000
	prog wget -6 -q --tries=1 --timeout=50 -O "$TMP/got" "http://[$PEER_ADDR6]:8000/mid"
	same_file "$WWW/mid" "$TMP/got"
	run -0 grep -c "^httpd: $SADDR6:" "$TMP/httpd.err"
	assert_output 1
}

body_socat6_client() {
	shim6_topo_up
	socat_client_exchange "$PEER_ADDR6"
}

# TCP6-LISTEN on [::]: the kernel client comes over IPv6, and the server's
# end is the stack's IPv6 address.
body_socat6_server() {
	shim6_topo_up
	socat_server_exchange TCP6 "[$SADDR6]"
}

body_py6_threads() {
	shim6_topo_up
	py_echo_exchange "$PEER_ADDR6" 7005 8
}

body_iperf3_6_client() {
	shim6_topo_up
	iperf3_exchange client "$PEER_ADDR6"
}

body_iperf3_6_server() {
	shim6_topo_up
	iperf3_exchange server "$SADDR6"
}

# TCP over IPv6 on a tun link (ustcp-netns --tun --ipv6: no Ethernet, no
# NDP): the stack's side as python3's echo client (two connections, 1 MB
# echoed each) and as socat's TCP6-LISTEN server for a kernel client. Under
# ustcp the capture shows raw IPv6 TCP and not one neighbour message.
body_tun6() {
	shim6_topo_up --tun
	[ "$MODE" = kernel ] || export USTCP_PCAP=$TMP/cap.pcap
	py_echo_exchange "$PEER_ADDR6" 7610 2
	socat_server_exchange TCP6 "[$SADDR6]"
	[ "$MODE" = ustcp ] || return 0
	run --separate-stderr timeout 10 tcpdump -nr "$USTCP_PCAP"
	[[ $stderr == *"link-type RAW"* ]] || fail "$stderr"
	refute_output --partial "neighbor"
	# Two echo connections and socat's, each seen both ways.
	[ "$(grep -c "IP6 $SADDR6\.[0-9]* > $PEER_ADDR6\.7610: Flags \[S\]" <<<"$output")" -eq 2 ]
	[ "$(grep -c "IP6 $PEER_ADDR6\.[0-9]* > $SADDR6\.7002: Flags \[S\]" <<<"$output")" -eq 1 ]
}

@test "a device with TSO but not TSO6: runs of both families, IPv6's cut by the kernel's software GSO [ustcp]" { MODE=ustcp body_gso_per_family; }

@test "tun link: TCP over IPv6 both ways, 1 MB each, no NDP [kernel]" { MODE=kernel body_tun6; }
@test "tun link: TCP over IPv6 both ways, 1 MB each, no NDP [ustcp]" { MODE=ustcp body_tun6; }

@test "curl -6: GET over IPv6, the server sees our IPv6 address [kernel]" { MODE=kernel body_curl6; }
@test "curl -6: GET over IPv6, the server sees our IPv6 address [ustcp]" { MODE=ustcp body_curl6; }

@test "a second program on the address binds its IPv6 address at once and connects without DAD [kernel]" { MODE=kernel body_second_program_dad; }
@test "a second program on the address binds its IPv6 address at once and connects without DAD [ustcp]" { MODE=ustcp body_second_program_dad; }

@test "nc -6 -N: 1 MB, FIN, then the peer's answer arrives whole [kernel]" { MODE=kernel body_nc6_halfclose; }
@test "nc -6 -N: 1 MB, FIN, then the peer's answer arrives whole [ustcp]" { MODE=ustcp body_nc6_halfclose; }

@test "python3 [::] dual-stack server: an IPv4 client as ::ffff:a.b.c.d, an IPv6 one [kernel]" { MODE=kernel body_py_dualstack; }
@test "python3 [::] dual-stack server: an IPv4 client as ::ffff:a.b.c.d, an IPv6 one [ustcp]" { MODE=ustcp body_py_dualstack; }

@test "python3 IPV6_V6ONLY server: the IPv4 client refused, the IPv6 one served [kernel]" { MODE=kernel body_py_v6only; }
@test "python3 IPV6_V6ONLY server: the IPv4 client refused, the IPv6 one served [ustcp]" { MODE=ustcp body_py_v6only; }

@test "nginx listen [::]:8080 ipv6only=off: an IPv4 and an IPv6 kernel curl [kernel]" { MODE=kernel body_nginx_dualstack; }
@test "nginx listen [::]:8080 ipv6only=off: an IPv4 and an IPv6 kernel curl [ustcp]" { MODE=ustcp body_nginx_dualstack; }

@test "connect() to a neighbour that never answers: EHOSTUNREACH after NDP's 3 s [kernel]" { MODE=kernel body_ndp_fails; }
@test "connect() to a neighbour that never answers: EHOSTUNREACH after NDP's 3 s [ustcp]" { MODE=ustcp body_ndp_fails; }

@test "packet too big: TCP_MAXSEG 1428 -> 1208, datagrams of 1280 bytes at most after it [kernel]" { MODE=kernel body_packet_too_big 1280 1208 1280; }
@test "packet too big: TCP_MAXSEG 1428 -> 1208, datagrams of 1280 bytes at most after it [ustcp]" { MODE=ustcp body_packet_too_big 1280 1208 1280; }

@test "packet too big below 1280 is dropped: TCP_MAXSEG and the segments stay [kernel]" { MODE=kernel body_packet_too_big 1000 1428 1500; }
@test "packet too big below 1280 is dropped: TCP_MAXSEG and the segments stay [ustcp]" { MODE=ustcp body_packet_too_big 1000 1428 1500; }

@test "IPV6_MTU_DISCOVER INTERFACE: packet too big is ignored [kernel]" { MODE=kernel body_packet_too_big 1280 1428 1500 4; }
@test "IPV6_MTU_DISCOVER INTERFACE: packet too big is ignored [ustcp]" { MODE=ustcp body_packet_too_big 1280 1428 1500 4; }

# One port space per family (port_family.py): an AF_INET and an
# IPV6_V6ONLY listener share port 7700, each taking its own family's
# client; a dual-stack bind conflicts with either, and a dual-stack
# listener on 7701 keeps both out.
body_port_per_family() {
	shim6_topo_up
	prog_bg python3 "$SHIM_DIR/port_family.py" 7700 >"$TMP/srv.out"
	local srv=$BG_PID
	wait_for 10 grep -q "^listening" "$TMP/srv.out"
	prog_wait_listen 7700
	[ "$MODE" = kernel ] || sleep 1.2 # DAD: the peer's first SYN waits for our advertisement otherwise
	run -0 peer python3 -c "import socket; print(socket.create_connection(('$SADDR', 7700), 10).recv(100).decode(), end='')"
	assert_output "served by inet"
	run -0 peer python3 -c "import socket; print(socket.create_connection(('$SADDR6', 7700), 10).recv(100).decode(), end='')"
	assert_output "served by inet6"
	bg_wait "$srv"
	run -0 cat "$TMP/srv.out"
	assert_line --index 0 "bind inet 7700 0"
	assert_line --index 1 "bind inet6-v6only 7700 0"
	assert_line --index 2 "bind inet6-dual 7700 EADDRINUSE"
	assert_line --index 3 "bind inet6-dual 7701 0"
	assert_line --index 4 "bind inet 7701 EADDRINUSE"
	assert_line --index 5 "bind inet6-v6only 7701 EADDRINUSE"
	assert_line --index 7 "inet-listener peer $PEER_ADDR"
	assert_line --index 8 "inet6-listener peer $PEER_ADDR6"
}

@test "one port space per family: AF_INET and IPV6_V6ONLY listeners share a port, a dual-stack one conflicts [kernel]" { MODE=kernel body_port_per_family; }
@test "one port space per family: AF_INET and IPV6_V6ONLY listeners share a port, a dual-stack one conflicts [ustcp]" { MODE=ustcp body_port_per_family; }

# The same across processes (bind_listen.py, one listener each): under
# ustcp each family's port is held by a kernel reservation of its own
# (ports.c), and a stack whose listener does not take a segment's family
# leaves it to the process that holds that family's port. Each listener
# waits up to 60 s for its client and leaves once served: under load, the
# four programs before the first client took more than 20 s.
body_port_per_family_processes() {
	shim6_topo_up
	local pids=() out
	prog_bg python3 "$SHIM_DIR/bind_listen.py" inet 7710 60 >"$TMP/a"
	pids+=("$BG_PID")
	wait_for 10 grep -q . "$TMP/a"
	prog_bg python3 "$SHIM_DIR/bind_listen.py" v6only 7710 60 >"$TMP/b"
	pids+=("$BG_PID")
	wait_for 10 grep -q . "$TMP/b"
	prog_bg python3 "$SHIM_DIR/bind_listen.py" dual 7711 60 >"$TMP/c"
	pids+=("$BG_PID")
	wait_for 10 grep -q . "$TMP/c"
	run -0 prog python3 "$SHIM_DIR/bind_listen.py" dual 7710 0
	assert_output "dual 7710 EADDRINUSE"
	run -0 prog python3 "$SHIM_DIR/bind_listen.py" inet 7711 0
	assert_output "inet 7711 EADDRINUSE"
	run -0 prog python3 "$SHIM_DIR/bind_listen.py" v6only 7711 0
	assert_output "v6only 7711 EADDRINUSE"
	[ "$MODE" = kernel ] || sleep 1.2 # DAD: the peer's first SYN waits for our advertisement otherwise
	run -0 peer python3 -c "import socket; print(socket.create_connection(('$SADDR', 7710), 10).recv(100).decode(), end='')"
	assert_output "served by inet"
	run -0 peer python3 -c "import socket; print(socket.create_connection(('$SADDR6', 7710), 10).recv(100).decode(), end='')"
	assert_output "served by v6only"
	run -0 peer python3 -c "import socket; print(socket.create_connection(('$SADDR', 7711), 10).recv(100).decode(), end='')"
	assert_output "served by dual"
	for out in "${pids[@]}"; do bg_wait "$out"; done
	run -0 cat "$TMP/a" "$TMP/b" "$TMP/c"
	assert_output "inet 7710 0
v6only 7710 0
dual 7711 0"
}

@test "one port space per family across processes: AF_INET and IPV6_V6ONLY listeners in two, a dual-stack one in a third [kernel]" { MODE=kernel body_port_per_family_processes; }
@test "one port space per family across processes: AF_INET and IPV6_V6ONLY listeners in two, a dual-stack one in a third [ustcp]" { MODE=ustcp body_port_per_family_processes; }

# A listener's connection holds the port in its listener's families once
# the listener is gone, as a Linux socket stays in its port's bind bucket:
# an IPV6_V6ONLY server's connection keeps IPv6 listeners off the port
# and leaves IPv4 to others, beside another process's AF_INET listener on
# the port (7712) and alone (7713). Under ustcp the connection's claim is
# what holds it (ports.c); one made in the wrong family held IPv4 and,
# where another process had IPv4, nothing, and the other stacks on the
# address then reset the connection's segments (a flake of the test
# above: its v6only server exits as it serves).
body_child_holds_family() {
	shim6_topo_up
	local a h p port
	prog_bg python3 "$SHIM_DIR/bind_listen.py" inet 7712 60 >"$TMP/a"
	a=$BG_PID
	wait_for 10 grep -q . "$TMP/a"
	[ "$MODE" = kernel ] || sleep 1.2 # DAD: the peer's first SYN waits for our advertisement otherwise
	for port in 7712 7713; do
		prog_bg python3 "$SHIM_DIR/child_outlives_listener.py" v6only $port "$TMP/go$port" >"$TMP/h$port"
		h=$BG_PID
		wait_for 10 grep -q listening "$TMP/h$port"
		peer_bg python3 -c "import socket; print(socket.create_connection(('$SADDR6', $port), 10).recv(100).decode(), end='')" >"$TMP/p$port"
		p=$BG_PID
		wait_for 10 grep -q holding "$TMP/h$port"
		run -0 prog python3 "$SHIM_DIR/bind_listen.py" v6only $port 0
		assert_output "v6only $port EADDRINUSE"
		run -0 prog python3 "$SHIM_DIR/bind_listen.py" dual $port 0
		assert_output "dual $port EADDRINUSE"
		if [ $port = 7713 ]; then
			run -0 prog python3 "$SHIM_DIR/bind_listen.py" inet $port 0
			assert_output "inet $port 0"
		fi
		touch "$TMP/go$port"
		bg_wait "$p"
		bg_wait "$h"
		run -0 cat "$TMP/p$port"
		assert_output "bye"
	done
	run -0 peer python3 -c "import socket; print(socket.create_connection(('$SADDR', 7712), 10).recv(100).decode(), end='')"
	assert_output "served by inet"
	bg_wait "$a"
}

@test "a v6only listener's connection holds the IPv6 port past its listener, and only that [kernel]" { MODE=kernel body_child_holds_family; }
@test "a v6only listener's connection holds the IPv6 port past its listener, and only that [ustcp]" { MODE=ustcp body_child_holds_family; }

# The sticky extension headers on the wire (tests/shim/ipext.py, a packet
# socket on the kernel peer), as Linux 6.18 sends them (the same script
# against a kernel socket printed the same lines): a hop-by-hop or a
# destination options header on every segment; all four at once in RFC
# 8200's order, the segment routing header's first hop the IPv6
# destination and the destination in its segment 0 (the peer takes it:
# seg6_enabled); the MSS smaller by their length (1420 and 1364 for 1440
# less the timestamps). A listener's headers are its children's and its
# SYN-ACK's.

body_ip6_ext_wire() {
	shim6_topo_up
	peer sysctl -qw net.ipv6.conf.all.seg6_enabled=1 "net.ipv6.conf.$PEER_IFACE.seg6_enabled=1"
	[ "$MODE" = kernel ] || sleep 1.2 # DAD: our first SYN waits for it otherwise
	ipext_client "$PEER_ADDR6" hop 7860
	ipext_client "$PEER_ADDR6" dst 7861
	ipext_client "$PEER_ADDR6" all 7862
	local peer6 zeros16=00000000000000000000000000000000
	peer6=$(python3 -c 'import socket, sys; print(socket.inet_pton(socket.AF_INET6, sys.argv[1]).hex())' "$PEER_ADDR6")
	run -0 cat "$TMP/prog.hop" "$TMP/wire.hop" "$TMP/prog.dst" "$TMP/wire.dst" "$TMP/prog.all" "$TMP/wire.all"
	assert_output - <<OUT
readback 54 0000010400000000
maxseg 1420
back 0
listening
syn 0600010400000000
rest 0600010400000000
got 3000
readback 59 0000010400000000
maxseg 1420
back 0
listening
syn 0600010400000000
rest 0600010400000000
got 3000
readback 54 0000010400000000
readback 55 0000010400000000
readback 57 0004040101000000${zeros16}$peer6
readback 59 0000010400000000
maxseg 1364
back 0
listening
syn 3c00010400000000 | 2b00010400000000 | 3c04040101000000 [peer] [peer] | 0600010400000000
rest 3c00010400000000 | 2b00010400000000 | 3c04040101000000 [peer] [peer] | 0600010400000000
got 3000
OUT
	prog_bg python3 "$SHIM_DIR/ipext.py" server "$SADDR6" 7863 hop "$TMP/ready" >"$TMP/srv"
	local srv=$BG_PID
	wait_for 10 test -e "$TMP/ready"
	run -0 peer python3 "$SHIM_DIR/ipext.py" sniff "$SADDR6" 7863 "$PEER_IFACE" client
	assert_output "syn 0600010400000000
rest 0600010400000000
got 3000"
	bg_wait "$srv"
	run -0 cat "$TMP/srv"
	assert_output "readback 54 0000010400000000
accepted readback 0000010400000000
maxseg 1420
echoed 3000"
}

@test "IPv6 sticky extension headers on the wire: hop-by-hop, destination options, a segment routing header; the MSS less their length; a listener's children's too [kernel]" { MODE=kernel body_ip6_ext_wire; }
@test "IPv6 sticky extension headers on the wire: hop-by-hop, destination options, a segment routing header; the MSS less their length; a listener's children's too [ustcp]" { MODE=ustcp body_ip6_ext_wire; }

# Sticky headers as long as Linux takes them (8 x 255 bytes each; until
# 2026-12-08 the library refused one over 64 bytes with ENOBUFS): a
# 1024-byte hop-by-hop header on every segment and 1024 bytes off the MSS;
# a hop-by-hop and a destination options header of 2040 bytes each make
# every datagram longer than the MTU, which Linux does not send (ip6_xmit:
# EMSGSIZE): no SYN on the wire, the connect still pending after a second
# (the stack counts tx-too-big). Python reads back 1024 bytes at most, of
# which Linux gives the first 1024 of a longer header.
body_ip6_ext_long() {
	shim6_topo_up
	[ "$MODE" = kernel ] || sleep 1.2 # DAD: our first SYN waits for it otherwise
	ipext_client "$PEER_ADDR6" big 7864
	ipext_client "$PEER_ADDR6" huge 7865
	run -0 cat "$TMP/prog.big" "$TMP/wire.big" "$TMP/prog.huge" "$TMP/wire.huge"
	assert_output - <<OUT
readback 54 007f1efdabababab... 1024 #4ed76624835749dc
maxseg 404
back 0
listening
syn 067f1efdabababab... 1024 #256c93e5274e8c1b
rest 067f1efdabababab... 1024 #256c93e5274e8c1b
got 3000
readback 54 00fe1efdabababab... 1024 #fcd870651b140ee9
readback 59 00fe1efdabababab... 1024 #fcd870651b140ee9
connect pending
listening
syn None
got 0
OUT
}

@test "IPv6 sticky extension headers as long as Linux takes them: 1024 bytes on every segment, the MSS less; longer than the MTU, none sent [kernel]" { MODE=kernel body_ip6_ext_long; }
@test "IPv6 sticky extension headers as long as Linux takes them: 1024 bytes on every segment, the MSS less; longer than the MTU, none sent [ustcp]" { MODE=ustcp body_ip6_ext_long; }

# IPv6's socket options (ip6opts.py) as Linux takes them, and what they
# put on the wire (ip6wire.py, a packet socket on the peer): every
# segment of the server's three connections carries IPV6_TCLASS 0x28 and
# IPV6_UNICAST_HOPS 17, not IP_TOS (IPv4-mapped traffic's), and one flow
# label of its own, not 0 (auto flow labels).
body_ip6_options() {
	shim6_topo_up
	prog_bg python3 "$SHIM_DIR/ip6opts.py" 7800 3 >"$TMP/srv.out"
	local srv=$BG_PID
	wait_for 10 grep -q "^listening" "$TMP/srv.out"
	[ "$MODE" = kernel ] || sleep 1.2 # DAD: the peer's first SYN waits for our advertisement otherwise
	run -0 peer python3 "$SHIM_DIR/ip6wire.py" "$SADDR6" 7800 "$PEER_IFACE" 3
	assert_line "conn 0 class 0x28 hlim 17 labels 1"
	assert_line "conn 1 class 0x28 hlim 17 labels 1"
	assert_line "conn 2 class 0x28 hlim 17 labels 1"
	assert_line "zero labels 0"
	assert_line "distinct labels 3"
	bg_wait "$srv"
	run -0 cat "$TMP/srv.out"
	assert_output - <<'OUT'
default tclass 0 hops 64 pmtud 1 mtu ENOTCONN
set TCLASS 256 EINVAL
set TCLASS -2 EINVAL
set HOPS 256 EINVAL
set HOPS -2 EINVAL
set PMTUD 6 EINVAL
set MTU 1279 EINVAL
set MTU 1280 0
set TCLASS 43 0
tclass 0x28
set HOPS 0 0
hops 0
set HOPS -1 0
hops 64
listening
child tclass 0x28 hops 17 pmtud 1 mtu 1500
OUT
}

@test "IPV6_TCLASS, IPV6_UNICAST_HOPS, IPV6_MTU_DISCOVER, IPV6_MTU; one flow label per connection on the wire [kernel]" { MODE=kernel body_ip6_options; }
@test "IPV6_TCLASS, IPV6_UNICAST_HOPS, IPV6_MTU_DISCOVER, IPV6_MTU; one flow label per connection on the wire [ustcp]" { MODE=ustcp body_ip6_options; }

# A dual-stack server on [::] serves clients on the same host over ::1 and
# 127.0.0.1 as well as the peer over IPv6 and IPv4 (062's loopback test
# for AF_INET6): under ustcp the loopback connections come from the kernel
# listeners the stack thread holds on ::1 and 127.0.0.1 (loopback.c).
# The stack's namespace gets IPv6 on lo (ustcp-netns leaves it off).
body_loopback6() {
	shim6_topo_up
	in_stack sysctl -q -w net.ipv6.conf.lo.disable_ipv6=0
	in_stack ip link set lo up
	prog_bg python3 "$SHIM_DIR/lo_server.py" 7370 4 :: >"$TMP/srv"
	local srv=$BG_PID
	prog_wait_listen 7370
	[ "$MODE" = kernel ] || sleep 1.2 # DAD: the peer's first SYN waits for our advertisement otherwise
	lo_ask stack ::1 7370 local6 >"$TMP/cli"
	lo_ask stack 127.0.0.1 7370 local4 >>"$TMP/cli"
	lo_ask peer "$SADDR6" 7370 peer6 >>"$TMP/cli"
	lo_ask peer "$SADDR" 7370 peer4 >>"$TMP/cli"
	bg_wait "$srv"
	cat "$TMP/cli"
	diff -u - "$TMP/cli" <<-EOF2
		local6 from ::1 to ::1
		local4 from ::ffff:127.0.0.1 to ::ffff:127.0.0.1
		peer6 from $PEER_ADDR6 to $SADDR6
		peer4 from ::ffff:$PEER_ADDR to ::ffff:$SADDR
	EOF2
	diff -u "$TMP/cli" "$TMP/srv"
}

@test "loopback: a [::] listener serves ::1 and 127.0.0.1 clients on the same host and the peer over both families [kernel]" { MODE=kernel body_loopback6; }
@test "loopback: a [::] listener serves ::1 and 127.0.0.1 clients on the same host and the peer over both families [ustcp]" { MODE=ustcp body_loopback6; }

@test "wget -6: 1 MB GET over IPv6, sha256 [kernel]" { MODE=kernel body_wget6; }
@test "wget -6: 1 MB GET over IPv6, sha256 [ustcp]" { MODE=ustcp body_wget6; }

@test "socat client over IPv6: shut-down half-close, answer whole [kernel]" { MODE=kernel body_socat6_client; }
@test "socat client over IPv6: shut-down half-close, answer whole [ustcp]" { MODE=ustcp body_socat6_client; }

@test "socat server TCP6-LISTEN: an IPv6 client, half-close both ways [kernel]" { MODE=kernel body_socat6_server; }
@test "socat server TCP6-LISTEN: an IPv6 client, half-close both ways [ustcp]" { MODE=ustcp body_socat6_server; }

@test "python3 over IPv6: 8 threads, a connection each, 1 MB echoed each [kernel]" { MODE=kernel body_py6_threads; }
@test "python3 over IPv6: 8 threads, a connection each, 1 MB echoed each [ustcp]" { MODE=ustcp body_py6_threads; }

@test "iperf3 -6: client against a kernel server, 5 s [kernel]" { MODE=kernel body_iperf3_6_client; }
@test "iperf3 -6: client against a kernel server, 5 s [ustcp]" { MODE=ustcp body_iperf3_6_client; }

@test "iperf3 -6: server for a kernel client, 5 s [kernel]" { MODE=kernel body_iperf3_6_server; }
@test "iperf3 -6: server for a kernel client, 5 s [ustcp]" { MODE=ustcp body_iperf3_6_server; }
