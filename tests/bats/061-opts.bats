#!/usr/bin/env bats
# Socket options and flags with Linux's observable effect (issue 14, items
# 10, 13e, 13f), as 060-shim.bats: every body runs on the kernel's TCP
# ([kernel], which proves the test) and under the library ([ustcp]), with
# the same assertions. Scripts are in tests/shim/.

bats_require_minimum_version 1.5.0

load helpers
load shim

setup() {
	TMP=$BATS_TEST_TMPDIR
}

teardown() {
	shim_teardown
}

# What ipopts.py's matrix prints on Linux 6.18: the defaults (TOS 0, TTL
# 64, IP_PMTUDISC_WANT, IP_MTU ENOTCONN unconnected), 1-byte reads, the
# ECN bits masked off a TOS, a TOS truncated to a byte, 1-byte and empty
# values (13e: an empty IP_TOS is 0, an empty IP_TTL is EINVAL), the TTL
# range with -1 the default, the modes 0..5.
IPOPTS_MATRIX="fresh tos 00000000 ttl 40000000 pmtudisc 01000000 mtu ENOTCONN
1-byte reads: tos 00 ttl 40 ttl in 2 40
tos 183 ok b4000000
tos 511 ok fc000000
tos -1 ok fc000000
tos b')' ok 28000000
tos b')\\x00' ok 28000000
tos b'' ok 00000000
ttl 0 EINVAL 40000000
ttl 1 ok 01000000
ttl 255 ok ff000000
ttl 256 EINVAL ff000000
ttl -1 ok 40000000
ttl -2 EINVAL 40000000
ttl 33 ok 21000000
ttl b'\\x07' ok 07000000
ttl b'' EINVAL 07000000
pmtudisc 0 ok 00000000
pmtudisc 1 ok 01000000
pmtudisc 2 ok 02000000
pmtudisc 3 ok 03000000
pmtudisc 4 ok 04000000
pmtudisc 5 ok 05000000
pmtudisc 6 EINVAL 05000000
pmtudisc -1 EINVAL 05000000
pmtudisc b'\\x02' ok 02000000"

# A client with TOS 0x28, TTL 33 and PMTU mode $1: what it reads back, and
# on the wire (ipsniff.py on the peer) its header, changed to TOS 0x10 and
# the default TTL for the second write and what follows.
body_ip_client() {
	local df=$2
	shim_topo_up
	peer_bg python3 "$SHIM_DIR/ipsniff.py" sink "$PEER_ADDR" 7401 >"$TMP/wire"
	local sink=$BG_PID
	wait_listen "$PEER_NETNS" 7401
	run -0 prog python3 "$SHIM_DIR/ipopts.py" client "$PEER_ADDR" 7401 "$1"
	assert_output "$IPOPTS_MATRIX
connected tos 28000000 ttl 21000000 pmtudisc 0${1}000000 mtu dc050000 in 1 dc in 2 dc05
changed tos 10000000 ttl 40000000
listener mtu ENOTCONN"
	bg_wait "$sink"
	run -0 cat "$TMP/wire"
	assert_output "SYN tos=0x28 ttl=33 df=$df
ACK tos=0x28 ttl=33 df=$df
DATA tos=0x28 ttl=33 df=$df
DATA tos=0x10 ttl=64 df=$df
FIN tos=0x10 ttl=64 df=$df
ACK tos=0x10 ttl=64 df=$df"
}

# A listener with TOS 0x48, TTL 17 and IP_PMTUDISC_DONT: the accepted
# socket has them; the SYN-ACK goes with DF all the same; the socket still
# held answers the peer's FIN itself (TTL 17, no DF), and reads them back
# after TIME-WAIT began.
body_ip_server() {
	shim_topo_up
	prog_bg python3 "$SHIM_DIR/ipopts.py" server "$SADDR" 7402 >"$TMP/srv"
	local srv=$BG_PID
	prog_wait_listen 7402
	run -0 peer python3 "$SHIM_DIR/ipsniff.py" fetch "$SADDR" 7402
	assert_output "SYN-ACK tos=0x48 ttl=17 df=1
DATA tos=0x48 ttl=17 df=0
FIN tos=0x48 ttl=17 df=0
ACK tos=0x48 ttl=17 df=0"
	bg_wait "$srv"
	run -0 cat "$TMP/srv"
	assert_output "listening
accepted tos 48000000 ttl 11000000 pmtudisc 00000000
closed tos 48000000 ttl 11000000 mtu dc050000"
}

@test "IP_TOS, IP_TTL, IP_MTU_DISCOVER (DONT), 1-byte values, IP_MTU: read back and on the wire [kernel]" { MODE=kernel body_ip_client 0 0; }
@test "IP_TOS, IP_TTL, IP_MTU_DISCOVER (DONT), 1-byte values, IP_MTU: read back and on the wire [ustcp]" { MODE=ustcp body_ip_client 0 0; }
@test "IP_MTU_DISCOVER WANT (the default's): DF [kernel]" { MODE=kernel body_ip_client 1 1; }
@test "IP_MTU_DISCOVER WANT (the default's): DF [ustcp]" { MODE=ustcp body_ip_client 1 1; }
@test "IP_MTU_DISCOVER PROBE: no DF [kernel]" { MODE=kernel body_ip_client 3 0; }
@test "IP_MTU_DISCOVER PROBE: no DF [ustcp]" { MODE=ustcp body_ip_client 3 0; }
@test "IP_TOS, IP_TTL, IP_MTU_DISCOVER of a listener: the SYN-ACK's, inherited by the accepted socket [kernel]" { MODE=kernel body_ip_server; }
@test "IP_TOS, IP_TTL, IP_MTU_DISCOVER of a listener: the SYN-ACK's, inherited by the accepted socket [ustcp]" { MODE=ustcp body_ip_server; }

# TCP_CORK and MSG_MORE (cork.py against an echo server): a partial
# segment waits for the probe timer (200 ms or the RTO), uncorking or a
# send without MSG_MORE pushes it, TCP_NODELAY does not undo the cork.
body_cork() {
	shim_topo_up
	peer_echo 7403
	local srv=$ECHO_PID
	run -0 prog python3 "$SHIM_DIR/cork.py" "$PEER_ADDR" 7403
	assert_output "TCP_CORK 1
corked 10 held
corked 3000 held
uncork prompt
TCP_CORK 0
more 10 held
more 10 + 20 prompt
nodelay+cork held"
	bg_wait "$srv"
}

@test "TCP_CORK and MSG_MORE: partial segments held until uncork, the next send or 200 ms [kernel]" { MODE=kernel body_cork; }
@test "TCP_CORK and MSG_MORE: partial segments held until uncork, the next send or 200 ms [ustcp]" { MODE=ustcp body_cork; }

# TCP_WINDOW_CLAMP (wclamp.py): at least 1152, 0 only before connect; set
# before connect, the SYN offers whole segments under it and no scale.
body_window_clamp() {
	shim_topo_up
	peer_bg python3 "$SHIM_DIR/ipsniff.py" sink "$PEER_ADDR" 7404 win >"$TMP/wire"
	local sink=$BG_PID
	wait_listen "$PEER_NETNS" 7404
	run -0 prog python3 "$SHIM_DIR/wclamp.py" "$PEER_ADDR" 7404
	assert_output "notsent_lowat 0 16384 -1
fresh 0
set 100 ok 1152
set 0 ok 0
set -1 ok 1152
set 5000 ok 5000
connected 5000
set 0 EINVAL 5000
set 20000 ok 20000"
	bg_wait "$sink"
	run -0 head -1 "$TMP/wire"
	assert_output "SYN tos=0x00 ttl=64 df=1 win=4380 ws=0"
}

@test "TCP_WINDOW_CLAMP: read back, 0 only before connect, the SYN's window and scale; TCP_NOTSENT_LOWAT read back [kernel]" { MODE=kernel body_window_clamp; }
@test "TCP_WINDOW_CLAMP: read back, 0 only before connect, the SYN's window and scale; TCP_NOTSENT_LOWAT read back [ustcp]" { MODE=ustcp body_window_clamp; }

# recv's flags and urgent data both ways (msgflags.py): MSG_PEEK, MSG_TRUNC
# (discards), MSG_WAITALL, MSG_DONTWAIT, MSG_OOB with nothing urgent, then
# send(MSG_OOB) (the peer reads the byte out of band) and the peer's
# urgent byte: a read stops at the mark, SIOCATMARK, recv(MSG_OOB),
# select's exceptional set, SO_OOBINLINE.
body_msgflags() {
	shim_topo_up
	peer_bg python3 "$SHIM_DIR/msgflags.py" peer "$PEER_ADDR" 7405 </dev/null
	local srv=$BG_PID
	wait_listen "$PEER_NETNS" 7405
	run -0 prog python3 "$SHIM_DIR/msgflags.py" client "$PEER_ADDR" 7405
	assert_output "peek 5 b'hello'
peek all b'hello world'
trunc 3 3
after trunc b'lo world'
oob none EINVAL
atmark 0 oobinline 0
waitall 20
dontwait EAGAIN
send oob 3
peer: oob=b'z' inband=b'xy'
select r True x True
atmark 0 recv b'abcX' atmark 1
oob b'Y' then b'tail'
inline b'12' b'345' EAGAIN
end b''"
	bg_wait "$srv"
}

@test "MSG_PEEK, MSG_TRUNC, MSG_WAITALL, MSG_OOB, urgent data both ways, SIOCATMARK, SO_OOBINLINE [kernel]" { MODE=kernel body_msgflags; }
@test "MSG_PEEK, MSG_TRUNC, MSG_WAITALL, MSG_OOB, urgent data both ways, SIOCATMARK, SO_OOBINLINE [ustcp]" { MODE=ustcp body_msgflags; }

# run_server_with_peer SCRIPT PORT: SCRIPT's "server" as the program on
# our address and PORT, its "client" in the peer; $output is what the
# server printed.
run_server_with_peer() {
	prog_bg python3 "$SHIM_DIR/$1" server "$SADDR" "$2" >"$TMP/srv"
	local srv=$BG_PID
	prog_wait_listen "$2"
	run -0 peer python3 "$SHIM_DIR/$1" client "$SADDR" "$2"
	bg_wait "$srv"
	run -0 cat "$TMP/srv"
}

# TCP_INQ (inq.py): set on the listener, the accepted socket has it; each
# recvmsg's TCP_CM_INQ is what is left to read, one more once the FIN came
# (Linux's tcp_inq_hint counts it), 1 at the end; a short control buffer
# gets the message cut and MSG_CTRUNC, none MSG_CTRUNC alone.
body_inq() {
	shim_topo_up
	run_server_with_peer inq.py 7407
	assert_output "fresh 0
set 2 EINVAL
set -1 EINVAL
listener 1
accepted 1
peek 100 [tcp/36=3000] ctrunc=0
read 1000 [tcp/36=2000] ctrunc=0
no buffer 500 [] ctrunc=1
short buffer 500 [tcp/36=e803] ctrunc=1
header only 10 [tcp/36=] ctrunc=1
after FIN 490 [tcp/36=501] ctrunc=0
the rest 500 [tcp/36=1] ctrunc=0
end 0 [tcp/36=1] ctrunc=0
off 0 [] ctrunc=0"
}

@test "TCP_INQ: inherited from the listener; TCP_CM_INQ counts what is left and the FIN; cut to a short buffer [kernel]" { MODE=kernel body_inq; }
@test "TCP_INQ: inherited from the listener; TCP_CM_INQ counts what is left and the FIN; cut to a short buffer [ustcp]" { MODE=ustcp body_inq; }

# TCP_CC_INFO (ccinfo.py): nothing for Reno and CUBIC; BBR's 20 bytes,
# zeros before the handshake (a fresh socket, a listener), its model once
# connected (a bandwidth, a minimum RTT, gains of Linux's BBR); not settable.
# Once the connection is gone (TCP_INFO's state CLOSE in TIME-WAIT, as
# Linux's; 1 s here) and after, the socket keeps its algorithm and model
# until switched (measured on Linux 6.18: zeros for BBR set again).
body_cc_info() {
	export USTCP_MSL=0.5
	shim_topo_up
	peer_bg python3 "$SHIM_DIR/ccinfo.py" sink "$PEER_ADDR" 7408 </dev/null
	local srv=$BG_PID
	wait_listen "$PEER_NETNS" 7408
	run -0 prog python3 "$SHIM_DIR/ccinfo.py" client "$PEER_ADDR" 7408 1.5
	assert_output "reno fresh -
cubic fresh -
bbr fresh 0000000000000000000000000000000000000000
bbr listener 0000000000000000000000000000000000000000
set ENOPROTOOPT
bbr connected 20 bytes; bandwidth > 0 ; min RTT 1 us .. 1 s ; gains Linux's
cut to 8 True
state 7
after 1.5 s: kept True b'bbr'
cubic - b'cubic'
bbr again 0000000000000000000000000000000000000000"
	bg_wait "$srv"
}

@test "TCP_CC_INFO: nothing for Reno and CUBIC, BBR's model (zeros before the handshake) [kernel]" { MODE=kernel body_cc_info; }
@test "TCP_CC_INFO: nothing for Reno and CUBIC, BBR's model (zeros before the handshake) [ustcp]" { MODE=ustcp body_cc_info; }

# The repair options and TCP_TIMESTAMP (repairopts.py), the program
# without CAP_NET_ADMIN (the bounding set, inherited across exec; the
# stack's CAP_NET_RAW stays): Linux refuses TCP_REPAIR to it and answers
# the options that need the mode as outside it; TCP_TIMESTAMP reads the
# TSval clock (CLOCK_MONOTONIC's ms before a connect).
body_repair_opts() {
	shim_topo_up
	peer_bg python3 "$SHIM_DIR/echo_server.py" "$PEER_ADDR" 7410 7 </dev/null
	local srv=$BG_PID
	wait_listen "$PEER_NETNS" 7410
	run -0 prog setpriv --bounding-set=-net_admin /usr/bin/python3 "$SHIM_DIR/repairopts.py" "$PEER_ADDR" 7410
	assert_output "fresh REPAIR get 0 set EPERM set EPERM set EPERM
fresh REPAIR_QUEUE get EINVAL set EPERM set EPERM set EPERM
fresh QUEUE_SEQ get EINVAL set EINVAL set EINVAL set EINVAL
fresh REPAIR_OPTIONS get ENOPROTOOPT set EINVAL set EINVAL set EINVAL
fresh TIMESTAMP set EPERM set EPERM set EPERM
fresh REPAIR_WINDOW get EINVAL get20 EPERM set EPERM set EPERM set EPERM
fresh TIMESTAMP CLOCK_MONOTONIC True ticks 200 ms True
listener REPAIR get 0 set EPERM set EPERM set EPERM
listener REPAIR_QUEUE get EINVAL set EPERM set EPERM set EPERM
listener QUEUE_SEQ get EINVAL set EPERM set EPERM set EPERM
listener REPAIR_OPTIONS get ENOPROTOOPT set EINVAL set EINVAL set EINVAL
listener TIMESTAMP set EPERM set EPERM set EPERM
listener REPAIR_WINDOW get EINVAL get20 EPERM set EPERM set EPERM set EPERM
listener TIMESTAMP CLOCK_MONOTONIC True ticks 200 ms True
connected REPAIR get 0 set EPERM set EPERM set EPERM
connected REPAIR_QUEUE get EINVAL set EPERM set EPERM set EPERM
connected QUEUE_SEQ get EINVAL set EPERM set EPERM set EPERM
connected REPAIR_OPTIONS get ENOPROTOOPT set EINVAL set EINVAL set EINVAL
connected TIMESTAMP set EPERM set EPERM set EPERM
connected REPAIR_WINDOW get EINVAL get20 EPERM set EPERM set EPERM set EPERM
connected TIMESTAMP ticks 200 ms True"
	bg_wait "$srv"
}

@test "TCP_REPAIR and the options of its mode refused as to a program without CAP_NET_ADMIN; TCP_TIMESTAMP's clock [kernel]" { MODE=kernel body_repair_opts; }
@test "TCP_REPAIR and the options of its mode refused as to a program without CAP_NET_ADMIN; TCP_TIMESTAMP's clock [ustcp]" { MODE=ustcp body_repair_opts; }

# TCP_ULP, the Fast Open key and no-cookie options and TCP_TX_DELAY
# (tcpmisc.py): what each set and get answers in each
# state, and what an accepted connection starts with, as Linux 6.18 (no
# tls module: ENOENT for any upper layer).
body_tcp_misc() {
	shim_topo_up
	peer_bg python3 "$SHIM_DIR/echo_server.py" "$PEER_ADDR" 7420 2 </dev/null
	local srv=$BG_PID
	wait_listen "$PEER_NETNS" 7420
	run -0 prog /usr/bin/python3 "$SHIM_DIR/tcpmisc.py" "$PEER_ADDR" 7420 "$SADDR"
	local each="ULP get b''; ULP set tls ENOENT; ULP set empty EINVAL; FOKEY get b''; FOKEY set 15 EINVAL; \
FOKEY set 16 ok; FOKEY get b'0123456789abcdef'; FOKEY get 8 b'01234567'; FOKEY set 32 ok; \
FOKEY get 40 b'0123456789abcdefGHIJKLMNOPQRSTUV'"
	local rest="TXD get 0; TXD set -1 EINVAL; TXD set 2^28 EINVAL; TXD set 1000 ok; TXD get 1000"
	assert_output "fresh $each; NOCOOKIE get 0; NOCOOKIE set 2 EINVAL; NOCOOKIE set 1 ok; NOCOOKIE get 1; $rest
listener $each; NOCOOKIE get 0; NOCOOKIE set 2 EINVAL; NOCOOKIE set 1 ok; NOCOOKIE get 1; $rest
connected $each; NOCOOKIE get 0; NOCOOKIE set 2 EINVAL; NOCOOKIE set 1 EINVAL; NOCOOKIE get 0; $rest
accepted TXD get 777; NOCOOKIE get 1; FOKEY get b''
zerocopy none: len 64 length 0 skip 0 inq 0 err 0 copied 0; \
5: len 64 length 0 skip 5 inq 5 err 0 copied 0; 5 len 20: len 20 length 0 skip 5 inq 5 err 0 copied 0; \
5 len 16: len 16 length 0 skip 5 inq 0 err 0 copied 0; 5 len 11: EINVAL; 5 address 1: EINVAL; \
5 copybuf 4: len 64 length 0 skip 5 inq 5 err 0 copied 0; \
5 copybuf 100: len 64 length 0 skip 0 inq 0 err 0 copied 5 hello; \
after: len 64 length 0 skip 0 inq 0 err 0 copied 0; 5000: EINVAL; eof: EIO"
	bg_wait "$srv"
}

@test "TCP_ULP, TCP_FASTOPEN_KEY, TCP_FASTOPEN_NO_COOKIE, TCP_TX_DELAY, TCP_ZEROCOPY_RECEIVE as Linux answers them [kernel]" { MODE=kernel body_tcp_misc; }
@test "TCP_ULP, TCP_FASTOPEN_KEY, TCP_FASTOPEN_NO_COOKIE, TCP_TX_DELAY, TCP_ZEROCOPY_RECEIVE as Linux answers them [ustcp]" { MODE=ustcp body_tcp_misc; }

# TCP_SAVE_SYN (savesyn.py): the accepted socket gives its SYN's headers
# once (EINVAL to a short buffer), the link's first with 2; not settable.
body_save_syn() {
	shim_topo_up
	run_server_with_peer savesyn.py 7409
	assert_output "fresh 0
set 3 EINVAL
set saved ENOPROTOOPT
listening
listener 1 saved 0
accepted 1
short EINVAL
ip v4 hl 20 len 60 ttl 64 proto 6 src $PEER_ADDR dst $SADDR; tcp dport 7409 hl 40 flags 0x2 win 64240 options 2,4,8,1,3 total 60
again 0
accepted 2
short EINVAL
link 14 type 0800; ip v4 hl 20 len 60 ttl 64 proto 6 src $PEER_ADDR dst $SADDR; tcp dport 7409 hl 40 flags 0x2 win 64240 options 2,4,8,1,3 total 74
again 0"
}

@test "TCP_SAVE_SYN: the accepted socket's TCP_SAVED_SYN, once, with the link's header for 2 [kernel]" { MODE=kernel body_save_syn; }
@test "TCP_SAVE_SYN: the accepted socket's TCP_SAVED_SYN, once, with the link's header for 2 [ustcp]" { MODE=ustcp body_save_syn; }

# A SYN from the program's own address, as Linux's through lo: a zeroed
# link header for 2.
body_save_syn_self() {
	shim_topo_up
	run -0 prog python3 "$SHIM_DIR/savesyn.py" self "$SADDR" 7411
	assert_output --regexp "^link 000000000000000000000000 link 14 type 0800; ip v4 hl 20 len 60 ttl 64 proto 6 src $SADDR dst $SADDR; tcp dport 7411 hl 40 flags 0x2 win [0-9]+ options 2,4,8,1,3 total 74\$"
}

@test "TCP_SAVE_SYN 2 of a SYN from the program's own address: a zeroed link header, as lo's [kernel]" { MODE=kernel body_save_syn_self; }
@test "TCP_SAVE_SYN 2 of a SYN from the program's own address: a zeroed link header, as lo's [ustcp]" { MODE=ustcp body_save_syn_self; }

# The same over IPv6: the fixed header (no extension headers here).
body_save_syn6() {
	shim6_topo_up
	prog_bg python3 "$SHIM_DIR/savesyn.py" server :: 7410 >"$TMP/srv"
	local srv=$BG_PID
	retry 20 grep -q listening "$TMP/srv"
	[ "$MODE" = kernel ] || sleep 1.2 # DAD: the peer's first SYN waits for our advertisement otherwise
	run -0 peer python3 "$SHIM_DIR/savesyn.py" client "$SADDR6" 7410
	bg_wait "$srv"
	run -0 grep -c "ip v6 plen 40 next 6 hops 64 src $PEER_ADDR6 dst $SADDR6; tcp dport 7410 hl 40 flags 0x2" "$TMP/srv"
	assert_output 2
	run -0 grep -c "^link 14 type 86dd; ip v6 .* total 94$" "$TMP/srv"
	assert_output 1
}

@test "TCP_SAVE_SYN over IPv6: the fixed header and the TCP header, with the link's for 2 [kernel]" { MODE=kernel body_save_syn6; }
@test "TCP_SAVE_SYN over IPv6: the fixed header and the TCP header, with the link's for 2 [ustcp]" { MODE=ustcp body_save_syn6; }

# Fast Open on the client's side (fastopen.py): the stack keeps no
# cookies and answers as Linux with net.ipv4.tcp_fastopen's client bit
# off, which the kernel's run gets from the namespace's sysctl; the peer
# is ccinfo.py's sink.
body_fastopen_client() {
	shim_topo_up
	in_stack sysctl -qw net.ipv4.tcp_fastopen=0
	peer_bg python3 "$SHIM_DIR/ccinfo.py" sink "$PEER_ADDR" 7412 </dev/null
	local srv=$BG_PID
	wait_listen "$PEER_NETNS" 7412
	run -0 prog python3 "$SHIM_DIR/fastopen.py" "$PEER_ADDR" 7412
	assert_output "sendto ENOTSUP
sendto nonblocking ENOTSUP
send unconnected ENOTSUP
connect option 0 EINVAL ENOTSUP EINVAL
connected sendto ENOTSUP
connected sendmsg ENOTSUP
send 3
answer b'ok'"
	bg_wait "$srv"
}

@test "MSG_FASTOPEN and TCP_FASTOPEN_CONNECT as Linux with the client's Fast Open off: EOPNOTSUPP, no SIGPIPE [kernel]" { MODE=kernel body_fastopen_client; }
@test "MSG_FASTOPEN and TCP_FASTOPEN_CONNECT as Linux with the client's Fast Open off: EOPNOTSUPP, no SIGPIPE [ustcp]" { MODE=ustcp body_fastopen_client; }

# TCP_DEFER_ACCEPT (defer.py), 5 s: accept() returns when data comes (2 s
# here), or, without data, once the SYN-ACK sent again at the last of the
# period's timeouts (1 + 2 + 4 s) is ACKed. The client sees the server's
# close, which follows accept() at once.
body_defer_accept() {
	shim_topo_up
	prog_bg python3 "$SHIM_DIR/defer.py" server "$SADDR" 7406 5 >"$TMP/srv"
	local srv=$BG_PID
	prog_wait_listen 7406
	run -0 peer python3 "$SHIM_DIR/defer.py" client "$SADDR" 7406 "$1"
	assert_output "server closed after $2 s"
	bg_wait "$srv"
	run -0 cat "$TMP/srv"
	assert_output "set 0 reads 0
set 1 reads 1
set 2 reads 3
set 3 reads 3
set 5 reads 7
set 8 reads 15
set 30 reads 31
set -1 reads 0
listening
readable at accept $3"
}

@test "TCP_DEFER_ACCEPT: read back as Linux rounds it; accept when data comes [kernel]" { MODE=kernel body_defer_accept 2 2 "b'data'"; }
@test "TCP_DEFER_ACCEPT: read back as Linux rounds it; accept when data comes [ustcp]" { MODE=ustcp body_defer_accept 2 2 "b'data'"; }
@test "TCP_DEFER_ACCEPT: no data, accept after the SYN-ACK of the period's last timeout [kernel]" { MODE=kernel body_defer_accept -1 7 "b''"; }
@test "TCP_DEFER_ACCEPT: no data, accept after the SYN-ACK of the period's last timeout [ustcp]" { MODE=ustcp body_defer_accept -1 7 "b''"; }

# ---- SO_MAX_PACING_RATE -----------------------------------------------------------

# A sender capped at 500 kB/s sends 1 MB to a kernel sink, with CUBIC and
# with BBR (tests/shim/maxpacing.py): Linux caps the pacing rate of every
# algorithm and, without an fq qdisc, paces in TCP itself (issue 14); the
# cap reads back and TCP_INFO reports it. The same on both TCPs.
body_max_pacing() {
	shim_topo_up
	peer_bg python3 "$SHIM_DIR/maxpacing.py" peer "$PEER_ADDR" 7340 </dev/null
	wait_listen "$PEER_NETNS" 7340
	local cc
	for cc in cubic bbr; do
		prog python3 "$SHIM_DIR/maxpacing.py" prog "$PEER_ADDR" 7340 "$cc" 500000 >"$TMP/out"
		cat "$TMP/out"
		diff -u - "$TMP/out" <<-EOF
			getsockopt: 500000
			TCP_INFO max_pacing_rate: 500000, pacing_rate within it: True
			1000000 bytes took 1.6 to 10 s: True
		EOF
	done
}

@test "SO_MAX_PACING_RATE: read back, in TCP_INFO, and the rate on the wire, CUBIC and BBR [kernel]" { MODE=kernel body_max_pacing; }
@test "SO_MAX_PACING_RATE: read back, in TCP_INFO, and the rate on the wire, CUBIC and BBR [ustcp]" { MODE=ustcp body_max_pacing; }

# ---- IPPROTO_IP beyond TOS, TTL and PMTU (issue 14) ------------------------------

# Every IPPROTO_IP option number, 1 to 80, on a fresh TCP socket of each
# family (tests/shim/ip4matrix.py: the default, read whole and in 1 and 4
# bytes, then ints in and out of range, 1 byte, none, a NULL pointer, 8,
# 12 and 40 bytes, IP options, a group request, each read back; the
# ancillary data IP_PKTOPTIONS gives with the receive options on;
# IP_PROTOCOL once bound; getsockname before a connect). Under the library the output is the kernel's of
# the same namespace line for line; both are checked for facts of Linux
# 6.18 too, so that a matrix printing nothing cannot pass.
body_ip4_matrix() {
	shim_topo_up
	in_stack timeout 60 python3 "$SHIM_DIR/ip4matrix.py" fresh >"$TMP/kernel"
	prog python3 "$SHIM_DIR/ip4matrix.py" fresh >"$TMP/out"
	diff -u "$TMP/kernel" "$TMP/out"
	assert_equal "$(wc -l <"$TMP/out")" 2729
	# Facts of Linux 6.18, each a line of the matrix: IP options kept as
	# given (a NOP padded to 4 bytes), IP_RECVERR, IP_FREEBIND and
	# IP_BIND_ADDRESS_NO_PORT flags, IP_MINTTL's range, IP_MULTICAST_TTL
	# refused on TCP with 1 its default, IP_PROTOCOL read only, IP_TOS
	# without its ECN bits on an AF_INET6 socket; the control messages of
	# IP_PKTOPTIONS (IP_PKTINFO, IP_TTL 1, IP_TOS 0), cut at 20 bytes; no
	# address to getsockname before a connect (ustcp gave its own).
	cat >"$TMP/facts" <<'OUT'
2 4 1 ok 01000000
2 4 b01010100 ok 01010100
2 11 256 ok 01000000
2 15 255 ok 01000000
2 21 255 ok ff000000
2 21 256 EINVAL ff000000
2 24 1 ok 01000000
2 33 default 01000000 len1 01 len4 01000000
2 33 1 EINVAL 01000000
2 52 1 ENOPROTOOPT 00000000
10 1 1 ok 00000000
pktoptions all 28/0/8:000000000000000000000000 20/0/2:01000000 20/0/1:00000000
pktoptions 20 20/0/8:00000000
protocol bound True
name 2 fresh ('0.0.0.0', 0)
name 2 bound 0.0.0.0 True
name 10 fresh ('::', 0)
name 10 bound :: True
OUT
	run -0 grep -Fxc -f "$TMP/facts" "$TMP/out"
	assert_output "$(wc -l <"$TMP/facts")"
}

@test "IPPROTO_IP options 1..80 on a fresh socket of each family: the kernel's answers, defaults and values read back [kernel]" { MODE=kernel body_ip4_matrix; }
@test "IPPROTO_IP options 1..80 on a fresh socket of each family: the kernel's answers, defaults and values read back [ustcp]" { MODE=ustcp body_ip4_matrix; }

# IP_OPTIONS on the wire (tests/shim/ipext.py: the program's socket sets
# them, a packet socket on the kernel peer records what it sends), as Linux
# 6.18 sends them (the same script against a kernel socket printed the same
# lines): record route with our address in its first slot and the pointer
# past it, timestamps with the time (and our address) in the first slot,
# every segment the same; the MSS smaller by the options' length (1448 for
# 1460 less the timestamps, less 16 or 20); a loose source route routed to
# its first hop, the destination in its last slot (the peer drops it, as
# net.ipv4.conf's accept_source_route 0 says), and ENETUNREACH at connect
# when there is no route to that hop. A listener's IP_OPTIONS are
# not its children's: an accepted socket reads none back and sends none;
# it answers with the echo of its peer's options instead.

body_ip_options_wire() {
	shim_topo_up
	ipext_client "$PEER_ADDR" rr 7850
	ipext_client "$PEER_ADDR" ts 7851
	ipext_client "$PEER_ADDR" tsaddr 7852
	ipext_client "$PEER_ADDR" lsrr 7853
	run -0 cat "$TMP/prog.rr" "$TMP/wire.rr" "$TMP/prog.ts" "$TMP/wire.ts" \
		"$TMP/prog.tsaddr" "$TMP/wire.tsaddr" "$TMP/prog.lsrr" "$TMP/wire.lsrr"
	assert_output - <<OUT
readback 070f0400000000000000000000000001
maxseg 1432
back 0
listening
syn 070f08 [me] 00000000 00000000 01
rest 070f08 [me] 00000000 00000000 01
got 3000
readback 44100500000000000000000000000000
maxseg 1432
back 0
listening
syn 44100900 [t] 00000000 00000000
rest 44100900 [t] 00000000 00000000
got 3000
readback 4414050100000000000000000000000000000000
maxseg 1428
back 0
listening
syn 44140d01 [me] [t] 00000000 00000000
rest 44140d01 [me] [t] 00000000 00000000
got 3000
readback 830704$(printf '%02x' ${PEER_ADDR//./ })00
connect pending
listening
syn 830704 [peer] 00
got 0
OUT
	# Routed to its first hop: with no route there, connect fails at
	# once, whatever the route to the destination (tcp_v4_connect).
	run -0 prog python3 "$SHIM_DIR/ipext.py" client "$PEER_ADDR" 7857 lsrr-far
	assert_output "readback 830704c633640100
connect ENETUNREACH"
	prog_bg python3 "$SHIM_DIR/ipext.py" server "$SADDR" 7854 rr "$TMP/ready" >"$TMP/srv"
	local srv=$BG_PID
	wait_for 10 test -e "$TMP/ready"
	run -0 peer python3 "$SHIM_DIR/ipext.py" sniff "$SADDR" 7854 "$PEER_IFACE" client
	assert_output "syn -
rest -
got 3000"
	bg_wait "$srv"
	run -0 cat "$TMP/srv"
	assert_output "readback 070f0400000000000000000000000001
accepted readback -
maxseg 1448
echoed 3000"
	# A listener answers a peer's options with their echo (Linux's
	# ip_options_echo): its SYN-ACK and every segment of the connection,
	# which reads it back as IP_OPTIONS.
	ip_options_echo rr 7855
	ip_options_echo tsaddr 7856
	local peer me
	peer=$(printf '%02x' ${PEER_ADDR//./ })
	me=$(printf '%02x' ${SADDR//./ })
	run -0 cat "$TMP/echo.rr" "$TMP/echo.tsaddr"
	assert_output - <<OUT
syn 070f10 [peer] [me] [me] 00
rest 070f10 [peer] [me] [me] 00
got 3000
accepted readback 070f0c$peer${me}0000000000
maxseg 1432
echoed 3000
syn 44141501 [peer] [t] [me] [t]
rest 44141501 [peer] [t] [me] [t]
got 3000
maxseg 1428
echoed 3000
OUT
}

ip_options_echo() {
	prog_bg python3 "$SHIM_DIR/ipext.py" server "$SADDR" "$2" none "$TMP/ready.$1" >"$TMP/srv.$1"
	local srv=$BG_PID
	wait_for 10 test -e "$TMP/ready.$1"
	peer python3 "$SHIM_DIR/ipext.py" sniff "$SADDR" "$2" "$PEER_IFACE" client "$1" >"$TMP/echo.$1"
	bg_wait "$srv"
	# The times in a timestamp option's readback vary: not compared.
	grep -v "^accepted readback 4414" "$TMP/srv.$1" >>"$TMP/echo.$1"
}

@test "IP_OPTIONS on the wire: record route, timestamps, a source route; the MSS less their length; a listener's children echo their peer's [kernel]" { MODE=kernel body_ip_options_wire; }
@test "IP_OPTIONS on the wire: record route, timestamps, a source route; the MSS less their length; a listener's children echo their peer's [ustcp]" { MODE=ustcp body_ip_options_wire; }

# IP_MINTTL on the wire (RFC 5082; ip4matrix.py wire against an echo
# server on the peer, whose TTL is 64): 255 before connect drops the
# SYN-ACK (the connect times out), 64 connects, 255 in the middle drops
# the echo's reply until 0 lets its retransmission in. Then
# IP_BIND_ADDRESS_NO_PORT: bound to our address, port 0 until connect.
body_ip4_minttl_wire() {
	shim_topo_up
	peer_bg python3 "$SHIM_DIR/echo_server.py" "$PEER_ADDR" 7832 3
	local srv=$BG_PID
	wait_listen "$PEER_NETNS" 7832
	run -0 prog python3 "$SHIM_DIR/ip4matrix.py" wire "$PEER_ADDR" 7832 "$SADDR"
	assert_output - <<'OUT'
minttl 255: timeout
minttl 64: b'hi' 40000000
mid 255: nothing
mid 0: b'hi'
noport bound: True
noport connected: True True b'np'
OUT
	bg_wait "$srv"
}

@test "IP_MINTTL: what comes under it is dropped, before connect and in the middle; IP_BIND_ADDRESS_NO_PORT [kernel]" { MODE=kernel body_ip4_minttl_wire; }
@test "IP_MINTTL: what comes under it is dropped, before connect and in the middle; IP_BIND_ADDRESS_NO_PORT [ustcp]" { MODE=ustcp body_ip4_minttl_wire; }

# IP_LOCAL_PORT_RANGE (Linux 6.3): the ports a connect, a bind to port 0 and
# a listen's own choice take are the namespace's ephemeral range narrowed
# by the socket's; ten ports for ten connections to one peer leave none for
# an eleventh (EADDRNOTAVAIL); a bound outside the namespace's range counts
# for nothing; an AF_INET6 socket's too; a low bound above the high one is
# EINVAL. Before, ustcp read the option back but chose from the whole
# range. The peer's server takes the connections and holds them.
body_ip4_port_range() {
	shim_topo_up
	peer_bg python3 -c '
import socket, sys, time
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], 7833))
l.listen(64)
l.settimeout(20)
held = [l.accept() for _ in range(13)]
time.sleep(1)
' "$PEER_ADDR"
	local srv=$BG_PID
	wait_listen "$PEER_NETNS" 7833
	run -0 prog python3 "$SHIM_DIR/ip4matrix.py" portrange "$PEER_ADDR" 7833 "$SADDR"
	assert_output - <<'OUT'
range connect 10 EADDRNOTAVAIL
range ports True
range bind True
range listen 42000
range low outside True
range high alone True
range v6 True
range lo > hi EINVAL
OUT
	bg_wait "$srv"
}

@test "IP_LOCAL_PORT_RANGE: connect, bind to port 0 and listen take ports in the socket's range [kernel]" { MODE=kernel body_ip4_port_range; }
@test "IP_LOCAL_PORT_RANGE: connect, bind to port 0 and listen take ports in the socket's range [ustcp]" { MODE=ustcp body_ip4_port_range; }

# ---- SOL_SOCKET and IPPROTO_TCP values as Linux takes them (issue 14) ----------

# SOL_SOCKET options 1..79 and the IPPROTO_TCP options ustcp takes, on a
# fresh socket of each family (tests/shim/optmatrix.py: the default, then
# ints in and out of range, -1, 1 and 8 bytes, each read back), the same
# under the library as on the kernel of the same namespace, line for line.
# Before: the app end (an AF_UNIX socket) took SO_PASSCRED and the like,
# SO_REUSEADDR read back 255, SO_SNDBUF -1 was the smallest buffer, not
# the largest, and TCP_MAXSEG read 1460 before connect, not 536; TCP_INFO
# of a fresh or listening socket had the link's MTU and MSS, no initial
# RTT variance (250 ms) and a minimum RTT of 0, not ~0. Facts of
# Linux 6.18 too, so that a matrix printing nothing cannot pass.
body_opt_matrix() {
	shim_topo_up
	in_stack timeout 60 python3 "$SHIM_DIR/optmatrix.py" >"$TMP/kernel"
	prog python3 "$SHIM_DIR/optmatrix.py" "$SADDR" >"$TMP/out"
	# The kernel's run had no address of its own here in ustcp's mode:
	# the listener's lines are checked as facts below.
	grep -v '^listener ' "$TMP/out" | diff -u "$TMP/kernel" -
	assert_equal "$(wc -l <"$TMP/out")" 1830
	# SO_REUSEADDR a boolean; SO_PASSCRED refused on TCP; SO_RCVLOWAT -1
	# at half of tcp_rmem's largest; SO_SNDBUFFORCE write only; TCP_MAXSEG
	# 536 before connect, 0 taken; TCP_LINGER2 at most 120; TCP_THIN_DUPACK
	# 0 or 1, read as 0; TCP_FASTOPEN's queue length read back; TCP_INQ
	# 0 or 1; SO_TXREHASH -1 the namespace's 1. (TCP_CC_INFO's lines depend on the namespace's algorithm:
	# the kernel's alone say what they must be.)
	cat >"$TMP/facts" <<'OUT'
2 1 2 2 ok 01000000
2 1 16 1 ENOTSUP ENOTSUP
2 1 18 -1 ok 00000001
2 1 32 1 ok ENOPROTOOPT
2 1 74 -1 ok 01000000
2 6 2 default 18020000
2 6 2 0 ok 18020000
2 6 8 255 ok 78000000
2 6 17 2 EINVAL 00000000
2 6 23 255 ok ff000000
2 6 36 1 ok 01000000
2 6 36 2 EINVAL 00000000
listener waiting 2 7
listener after accept 1 7
rcvlowat 4096 100000 4096 8192
2 tcp_info fresh 7 0 0 0 0 0 0 1 1000000 0 536 0 0 0 0 0 0 t 0 t t 0 0 0 250000 2147483647 10 0 3 0 0 0 18446744073709551615 18446744073709551615 0 0 0 0 0 4294967295 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
OUT
	run -0 grep -Fxc -f "$TMP/facts" "$TMP/out"
	assert_output "$(wc -l <"$TMP/facts")"
}

@test "SOL_SOCKET and IPPROTO_TCP options on a fresh socket of each family: the kernel's answers and values read back [kernel]" { MODE=kernel body_opt_matrix; }
@test "SOL_SOCKET and IPPROTO_TCP options on a fresh socket of each family: the kernel's answers and values read back [ustcp]" { MODE=ustcp body_opt_matrix; }

# ---- IPPROTO_IPV6 (issue 14) -------------------------------------------------------

# Every IPPROTO_IPV6 option number, 1 to 80, on a fresh AF_INET6 socket
# (tests/shim/ip6matrix.py: the default, read whole and in 1 and 4 bytes,
# then ints in and out of range, 1 byte, none, a NULL pointer, 8, 20 and
# 32 bytes, flow label requests and group requests, each read back; the
# ancillary data IPV6_2292PKTOPTIONS gives with every receive option on).
# Under the library the output is the kernel's of the same namespace line
# for line; both are checked for facts of Linux 6.18 as well, so that a
# matrix printing nothing cannot pass.
body_ip6_matrix() {
	shim6_topo_up
	in_stack timeout 60 python3 "$SHIM_DIR/ip6matrix.py" fresh >"$TMP/kernel"
	prog python3 "$SHIM_DIR/ip6matrix.py" fresh >"$TMP/out"
	diff -u "$TMP/kernel" "$TMP/out"
	assert_equal "$(wc -l <"$TMP/out")" 2008
	# Facts of Linux 6.18, each a line of the matrix: the hop limit's
	# default 64 and -1, a flag that takes 0 and 1 only, ADDRFORM gone
	# from setsockopt, a hop-by-hop header taken and read back where a
	# routing header of type 0 is refused, auto flow labels on by default,
	# address preferences merged, IPV6_UNICAST_IF in network order,
	# RFC 2292 ancillary data from the socket's own state.
	cat >"$TMP/facts" <<'OUT'
16 default 40000000 len1 40 len4 40000000
16 -1 ok 40000000
1 2 ENOPROTOOPT ENOTCONN
31 2 EINVAL 00000000
54 b0000010400000000 ok 0000010400000000
57 b0000010400000000 EINVAL -
70 default 01000000 len1 01 len4 01000000
70 0 ok 00000000
72 default 00050000 len1 00 len4 00050000
72 2 ok 02040000
73 -1 EINVAL 02000000
76 16777216 ok 00000001
pktoptions all 36/41/50:0000000000000000000000000000000000000000 20/41/52:01000000 20/41/67:00000000 36/41/2:0000000000000000000000000000000000000000 20/41/8:01000000 20/41/11:00000000
OUT
	run -0 grep -Fxc -f "$TMP/facts" "$TMP/out"
	assert_output "$(wc -l <"$TMP/facts")"
}

@test "IPPROTO_IPV6 options 1..80 on a fresh socket: the kernel's answers, defaults and values read back [kernel]" { MODE=kernel body_ip6_matrix; }
@test "IPPROTO_IPV6 options 1..80 on a fresh socket: the kernel's answers, defaults and values read back [ustcp]" { MODE=ustcp body_ip6_matrix; }

# The same on a socket connected over IPv6 (the defaults, IPV6_V6ONLY
# refused once bound, IPV6_MTU and IPV6_PATHMTU the path's), and
# IPV6_ADDRFORM on one connected to an IPv4-mapped address.
body_ip6_matrix_connected() {
	shim6_topo_up
	peer_bg python3 "$SHIM_DIR/echo_server.py" :: 7820 2
	local srv=$BG_PID
	wait_listen "$PEER_NETNS" 7820
	[ "$MODE" = kernel ] || sleep 1.2 # DAD, as body_ip6_options
	run -0 prog python3 "$SHIM_DIR/ip6matrix.py" connected "$PEER_ADDR6" 7820 "$PEER_ADDR"
	printf '%s\n' "$output" >"$TMP/out"
	diff -u - "$TMP/out" <"$BATS_TEST_DIRNAME/061-ip6-connected.out"
	bg_wait "$srv"
}

@test "IPPROTO_IPV6 options on a connected socket, IPV6_ADDRFORM on an IPv4-mapped one [kernel]" { MODE=kernel body_ip6_matrix_connected; }
@test "IPPROTO_IPV6 options on a connected socket, IPV6_ADDRFORM on an IPv4-mapped one [ustcp]" { MODE=ustcp body_ip6_matrix_connected; }

# What a socket keeps of those options (tests/shim/ip6inherit.py): nothing
# after it closed (under ustcp the next socket may take the same slot), and
# an accepted socket starts with its listener's (Linux's
# tcp_v6_syn_recv_sock copies them, the sticky headers too).
body_ip6_inherit() {
	shim6_topo_up
	prog_bg python3 "$SHIM_DIR/ip6inherit.py" :: 7830 "$TMP/ready" >"$TMP/out"
	local srv=$BG_PID
	wait_file "$TMP/ready" 20
	[ "$MODE" = kernel ] || sleep 1.2 # DAD: the peer's first SYN waits for our advertisement otherwise
	run -0 in_peer timeout 20 python3 -c '
import socket, sys
socket.create_connection((sys.argv[1], 7830), timeout=10).close()' "$SADDR6"
	bg_wait "$srv" 20
	diff -u - "$TMP/out" <<-EOF
		fresh 0: recvpktinfo 00000000 recvtclass 00000000 hopopts -
		set 0: recvpktinfo 01000000 recvtclass 01000000 hopopts 0000010400000000
		fresh 1: recvpktinfo 00000000 recvtclass 00000000 hopopts -
		set 1: recvpktinfo 01000000 recvtclass 01000000 hopopts 0000010400000000
		fresh 2: recvpktinfo 00000000 recvtclass 00000000 hopopts -
		set 2: recvpktinfo 01000000 recvtclass 01000000 hopopts 0000010400000000
		accepted: recvpktinfo 01000000 recvtclass 01000000 hopopts 0000010400000000
		after: recvpktinfo 00000000 recvtclass 00000000 hopopts -
	EOF
}

@test "IPPROTO_IPV6 options: none left for the next socket, an accepted socket has its listener's [kernel]" { MODE=kernel body_ip6_inherit; }
@test "IPPROTO_IPV6 options: none left for the next socket, an accepted socket has its listener's [ustcp]" { MODE=ustcp body_ip6_inherit; }

# IPV6_AUTOFLOWLABEL and IPV6_MINHOPCOUNT on the wire (ip6label.py
# against an echo server on the peer, tcpdump there): a flow label per
# connection by default (net.ipv6.auto_flowlabels 1), none with
# IPV6_AUTOFLOWLABEL 0, set before connect or in the middle; a
# connection whose IPV6_MINHOPCOUNT is over the peer's hop limit (64)
# never sees the SYN-ACK.
body_ip6_label_wire() {
	shim6_topo_up
	capture_start "$PEER_NETNS" "$PEER_IFACE" "$TMP/c.pcap" 60 "ip6 and tcp port 7821"
	local cap=$CAPTURE_PID
	peer_bg python3 "$SHIM_DIR/echo_server.py" :: 7821 4
	local srv=$BG_PID
	wait_listen "$PEER_NETNS" 7821
	[ "$MODE" = kernel ] || sleep 1.2 # DAD, as body_ip6_options
	run -0 prog python3 "$SHIM_DIR/ip6label.py" "$PEER_ADDR6" 7821
	printf '%s\n' "$output" >"$TMP/out"
	bg_wait "$srv"
	kill -INT "$cap"
	bg_wait "$cap" 10 || true
	# Per connection (our port): its flow labels, 0 for none.
	timeout 10 tcpdump -v -nr "$TMP/c.pcap" "src host $SADDR6" 2>/dev/null |
		awk -v a="$SADDR6" '/ IP6 / && index($0, ") " a ".") {
			l = 0; if (match($0, /flowlabel 0x[0-9a-f]+/)) l = 1
			s = substr($0, index($0, ") " a ".") + length(a) + 3); split(s, f, " ")
			print f[1], (l ? "L" : 0) }' | sort -u >"$TMP/labels"
	cat "$TMP/out" "$TMP/labels"
	local name port rest want
	while read -r name port rest; do
		case $name in
		auto | minok) want="$port L" ;;
		nolabel) want="$port 0" ;;
		relabel) want=$(printf '%s 0\n%s L' "$port" "$port") ;;
		*) continue ;;
		esac
		assert_equal "$(grep "^$port " "$TMP/labels")" "$want"
	done <"$TMP/out"
	run -0 sed -E 's/ [0-9]+ ok/ ok/' "$TMP/out"
	assert_output - <<'OUT'
auto ok autoflowlabel 1
nolabel ok autoflowlabel 0
relabel ok autoflowlabel 0
minhops timeout
minok ok autoflowlabel 1
OUT
}

@test "IPV6_AUTOFLOWLABEL: a label per connection by default, none when 0; IPV6_MINHOPCOUNT drops what comes under it [kernel]" { MODE=kernel body_ip6_label_wire; }
@test "IPV6_AUTOFLOWLABEL: a label per connection by default, none when 0; IPV6_MINHOPCOUNT drops what comes under it [ustcp]" { MODE=ustcp body_ip6_label_wire; }

# TCP_MD5SIG and TCP_MD5SIG_EXT (md5sig.py): every answer of setsockopt as
# Linux 6.18 gives it (the address of the socket's family, an IPv4 one
# mapped on an AF_INET6 socket; a prefix only with the _EXT option and its
# flag; an interface index only of a VRF; keys of up to 80 bytes, none to
# delete; no getsockopt), and as many keys on one socket as Linux's
# default option memory holds.
MD5_MATRIX="v4 int EINVAL
v4 short EINVAL
v4 family6 EINVAL
v4 keylen81 EINVAL
v4 keylen80 ok
v4 del ok
v4 del-again ENOENT
v4 set ok
v4 replace ok
v4 del-prefix24 ok
v4 del-ext32 ENOENT
v4 ext-prefix33 EINVAL
v4 ext-prefix24 ok
v4 del-prefix24-plain ENOENT
v4 ext-ifindex1 EINVAL
v4 ext-ifindex0 ok
v4 del-noflag ENOENT
v4 del-flag ok
v4 get ENOPROTOOPT
v4 listening ok
v6 family4 EINVAL
v6 mapped ok
v6 mapped-prefix33 EINVAL
v6 mapped-prefix16 ok
v6 prefix129 EINVAL
v6 any ok
v6 del-any ok
v6 del-any-again ENOENT
keys 963 then ENOMEM"

body_md5_options() {
	shim_topo_up
	run -0 prog /usr/bin/python3 "$SHIM_DIR/md5sig.py" matrix "$SADDR"
	assert_output "$MD5_MATRIX"
}

@test "TCP_MD5SIG and TCP_MD5SIG_EXT take and refuse what Linux does [kernel]" { MODE=kernel body_md5_options; }
@test "TCP_MD5SIG and TCP_MD5SIG_EXT take and refuse what Linux does [ustcp]" { MODE=ustcp body_md5_options; }

# wait_file FILE: until it exists (a server made it once listening), at
# most 10 s.
wait_file() {
	local i
	for i in $(seq 100); do
		[ -e "$1" ] && return 0
		sleep 0.1
	done
	echo "$1 never came" >&2
	return 1
}

# md5_serve WHERE NAME ADDR PORT PEERS [FORKPEER]: an md5sig.py echo
# server with the key "sekrit" for PEERS, in the peer's namespace (WHERE
# peer), as the program (prog) or on the kernel beside it (stack); back
# once it listens (at most 10 s), its pid in $BG_PID, its output in
# $TMP/NAME.
md5_serve() {
	local where=$1 name=$2
	shift 2
	rm -f "$TMP/$name.ready"
	case $where in
	peer) peer_bg python3 "$SHIM_DIR/md5sig.py" server "$1" "$2" "$3" sekrit "$TMP/$name.ready" ${4:+"$4"} >"$TMP/$name" ;;
	prog) prog_bg /usr/bin/python3 "$SHIM_DIR/md5sig.py" server "$1" "$2" "$3" sekrit "$TMP/$name.ready" ${4:+"$4"} \
		>"$TMP/$name" ;;
	stack) run_bg ip netns exec "$USTCP_NETNS" timeout 30 python3 "$SHIM_DIR/md5sig.py" server "$1" "$2" "$3" \
		sekrit "$TMP/$name.ready" >"$TMP/$name" 3>&- ;;
	esac
	wait_file "$TMP/$name.ready"
}

# md5_served PID NAME N: the server ended, having echoed N bytes.
md5_served() {
	bg_wait "$1"
	run -0 cat "$TMP/$2"
	assert_output "served $3"
}

# Signed connections with the kernel's TCP, which checks every signature
# and drops a segment without it or with a wrong one (TcpExtTCPMD5NotFound,
# TCPMD5Failure): the program as the client, and as the server with a key
# for the peer's /24. 300 kB each way arrive whole; a connect without the
# key, or with another, gets no answer. A listener on the wildcard address
# checks connections from the host itself too (over loopback: under ustcp
# the kernel listener beside the stack's has the listener's keys).
body_md5_connections() {
	shim_topo_up
	md5_serve peer s1 "$PEER_ADDR" 7430 "$SADDR"
	local srv=$BG_PID
	run -0 prog /usr/bin/python3 "$SHIM_DIR/md5sig.py" client "$PEER_ADDR" 7430 wrong 1000
	assert_output timeout
	run -0 prog /usr/bin/python3 "$SHIM_DIR/md5sig.py" client "$PEER_ADDR" 7430 sekrit 300000
	assert_output "echoed 300000 same"
	md5_served "$srv" s1 300000
	run -0 in_peer nstat -asz TcpExtTCPMD5Failure
	assert_line --regexp '^TcpExtTCPMD5Failure +[1-9]'

	md5_serve prog s2 0.0.0.0 7431 "${PEER_ADDR%.*}.0/24,127.0.0.1"
	srv=$BG_PID
	run -0 peer python3 "$SHIM_DIR/md5sig.py" client "$SADDR" 7431 - 1000
	assert_output timeout
	run -0 peer python3 "$SHIM_DIR/md5sig.py" client "$SADDR" 7431 wrong 1000
	assert_output timeout
	run -0 in_stack timeout 10 python3 "$SHIM_DIR/md5sig.py" client 127.0.0.1 7431 wrong 1000
	assert_output timeout
	run -0 peer python3 "$SHIM_DIR/md5sig.py" client "$SADDR" 7431 sekrit 300000
	assert_output "echoed 300000 same"
	md5_served "$srv" s2 300000

	md5_serve prog s3 0.0.0.0 7432 127.0.0.1
	srv=$BG_PID
	run -0 in_stack timeout 10 python3 "$SHIM_DIR/md5sig.py" client 127.0.0.1 7432 - 1000
	assert_output timeout
	run -0 in_stack timeout 10 python3 "$SHIM_DIR/md5sig.py" client 127.0.0.1 7432 sekrit 100000
	assert_output "echoed 100000 same"
	md5_served "$srv" s3 100000
}

@test "TCP_MD5SIG signs and checks every segment with the kernel's TCP, as client and as server [kernel]" { MODE=kernel body_md5_connections; }
@test "TCP_MD5SIG signs and checks every segment with the kernel's TCP, as client and as server [ustcp]" { MODE=ustcp body_md5_connections; }

# The same over IPv6 (RFC 2385's digest over IPv6's pseudo-header, as
# Linux's tcp_v6_md5_hash_headers): the program as the client, then as a
# server on :: with a key for the peer's /64.
body_md5_ipv6() {
	shim6_topo_up
	md5_serve peer s1 "$PEER_ADDR6" 7433 "$SADDR6"
	local srv=$BG_PID
	run -0 prog /usr/bin/python3 "$SHIM_DIR/md5sig.py" client "$PEER_ADDR6" 7433 sekrit 200000
	assert_output "echoed 200000 same"
	md5_served "$srv" s1 200000

	md5_serve prog s2 :: 7434 "$PEER_ADDR6/64"
	srv=$BG_PID
	run -0 peer python3 "$SHIM_DIR/md5sig.py" client "$SADDR6" 7434 wrong 1000
	assert_output timeout
	run -0 peer python3 "$SHIM_DIR/md5sig.py" client "$SADDR6" 7434 sekrit 200000
	assert_output "echoed 200000 same"
	md5_served "$srv" s2 200000
}

@test "TCP_MD5SIG over IPv6 with the kernel's TCP, as client and as server [kernel]" { MODE=kernel body_md5_ipv6; }
@test "TCP_MD5SIG over IPv6 with the kernel's TCP, as client and as server [ustcp]" { MODE=ustcp body_md5_ipv6; }

# Keys stay where Linux keeps them: on a socket whose first connect was
# refused (by another address of the peer's, for which it has no key;
# under ustcp a new control block takes the socket's place), on a connect
# to a loopback address (USTCP_PASSTHROUGH: a kernel socket takes its
# place), and a key set by a forked child on a listener it inherited
# (under ustcp the parent's stack serves it).
body_md5_kept() {
	shim_topo_up
	md5_serve peer s1 "$PEER_ADDR" 7435 "$SADDR"
	local srv=$BG_PID
	in_peer ip addr add "${PEER_ADDR%.*}.5/24" dev "$PEER_IFACE"
	run -0 prog /usr/bin/python3 "$SHIM_DIR/md5sig.py" client "$PEER_ADDR" 7435 sekrit 100000 \
		"${PEER_ADDR%.*}.5:7499"
	assert_output "first connect: ECONNREFUSED
echoed 100000 same"
	md5_served "$srv" s1 100000

	md5_serve stack s2 127.0.0.1 7436 127.0.0.1
	srv=$BG_PID
	run -0 prog /usr/bin/python3 "$SHIM_DIR/md5sig.py" client 127.0.0.1 7436 sekrit 100000
	assert_output "echoed 100000 same"
	md5_served "$srv" s2 100000

	md5_serve prog s3 "$SADDR" 7437 192.0.2.1 "$PEER_ADDR"
	srv=$BG_PID
	run -0 peer python3 "$SHIM_DIR/md5sig.py" client "$SADDR" 7437 sekrit 100000
	assert_output "echoed 100000 same"
	md5_served "$srv" s3 100000
}

@test "TCP_MD5SIG keys stay after a refused connect, on a loopback connect, and from a forked child [kernel]" { MODE=kernel body_md5_kept; }
@test "TCP_MD5SIG keys stay after a refused connect, on a loopback connect, and from a forked child [ustcp]" { MODE=ustcp body_md5_kept; }

# IP_PKTOPTIONS' IP_TOS (rcvtos.py): on an accepted socket the TOS byte of
# the segment that completed its handshake (the peer's IP_TOS 0x28 here),
# as Linux's rcv_tos; on a socket that connected, 0.
body_rcv_tos() {
	shim_topo_up
	prog_bg /usr/bin/python3 "$SHIM_DIR/rcvtos.py" server "$SADDR" 7440 "$TMP/ready" >"$TMP/srv"
	local srv=$BG_PID
	wait_file "$TMP/ready"
	run -0 peer python3 "$SHIM_DIR/rcvtos.py" client "$SADDR" 7440 0x28
	bg_wait "$srv"
	run -0 cat "$TMP/srv"
	assert_output "accepted 20/0/1:28000000"
	peer_bg python3 "$SHIM_DIR/rcvtos.py" server "$PEER_ADDR" 7441 "$TMP/ready2" >/dev/null
	wait_file "$TMP/ready2"
	run -0 prog /usr/bin/python3 "$SHIM_DIR/rcvtos.py" client "$PEER_ADDR" 7441 0x28
	assert_output "connected 20/0/1:00000000"
}

@test "IP_PKTOPTIONS: an accepted socket's IP_TOS is its handshake's, a connected one's 0 [kernel]" { MODE=kernel body_rcv_tos; }
@test "IP_PKTOPTIONS: an accepted socket's IP_TOS is its handshake's, a connected one's 0 [ustcp]" { MODE=ustcp body_rcv_tos; }

# Over IPv6 (rcvtos.py server6, client6): an accepted socket's
# IPV6_MULTICAST_HOPS and IPV6_2292PKTOPTIONS' hop limit, traffic class and
# flow information are those of the segment that completed its handshake
# (the peer's hop limit 33, traffic class 0x28, no flow label), as Linux's
# tcp_v6_syn_recv_sock sets them, then, with the receive options on, those
# of the last segment received in order (a byte with hop limit 44); a
# connected socket's, those of the SYN-ACK (hop limit 64, traffic class
# 0x48); an IPv4-mapped one's, its handshake's TTL alone. Once TCP closed
# the connection the socket keeps them, as Linux's ipv6_pinfo. With
# IPV6_RECVPKTINFO too: the messages are those of the segment Linux keeps
# (the SYN, then each segment with a traffic class under IPV6_FLOWINFO),
# whose IPV6_PKTINFO is our address and the link; the IPv4-mapped one
# keeps none, and its IPV6_PKTINFO is the peer's address and the link
# (np->mcast_oif).
# rcv_ip6_server PORT [ext] -- CLIENT ARGS...: rcvtos.py server6 on PORT
# under the program, the peer's rcvtos.py CLIENT ARGS to it; $output is
# what the server printed.
rcv_ip6_server() {
	local port=$1 extra=() srv
	shift
	while [ "$1" != -- ]; do
		extra+=("$1")
		shift
	done
	shift
	prog_bg /usr/bin/python3 "$SHIM_DIR/rcvtos.py" server6 :: "$port" "$TMP/ready.$port" "${extra[@]}" \
		>"$TMP/srv.$port"
	srv=$BG_PID
	wait_file "$TMP/ready.$port" 20
	run -0 peer python3 "$SHIM_DIR/rcvtos.py" "$@"
	bg_wait "$srv"
	run -0 cat "$TMP/srv.$port"
}

body_rcv_ip6() {
	shim6_topo_up
	local me peer4 peer6
	me=$(python3 -c 'import socket, sys; print(socket.inet_pton(socket.AF_INET6, sys.argv[1]).hex())' "$SADDR6")
	peer6=$(python3 -c 'import socket, sys; print(socket.inet_pton(socket.AF_INET6, sys.argv[1]).hex())' "$PEER_ADDR6")
	peer4=00000000000000000000ffff$(printf '%02x' ${PEER_ADDR//./ })
	prog_bg /usr/bin/python3 "$SHIM_DIR/rcvtos.py" server6 :: 7442 "$TMP/ready" >"$TMP/srv"
	local srv=$BG_PID
	wait_file "$TMP/ready" 20
	[ "$MODE" = kernel ] || sleep 1.2 # DAD, as body_ip6_inherit
	run -0 peer python3 "$SHIM_DIR/rcvtos.py" client6 "$SADDR6" 7442 0x28
	bg_wait "$srv"
	run -0 cat "$TMP/srv"
	assert_output - <<-EOF
		accepted 33 36/41/50:${me}02000000 20/41/52:21000000 20/41/67:28000000 20/41/11:02800000
		data 44 36/41/50:${me}02000000 20/41/52:2c000000 20/41/67:28000000 20/41/11:02800000
		closed 44 36/41/50:${me}02000000 20/41/52:2c000000 20/41/67:28000000 20/41/11:02800000
	EOF
	peer_bg python3 "$SHIM_DIR/rcvtos.py" server6 :: 7443 "$TMP/ready2" >/dev/null
	wait_file "$TMP/ready2"
	run -0 prog /usr/bin/python3 "$SHIM_DIR/rcvtos.py" client6 "$PEER_ADDR6" 7443 0x28
	assert_output "connected 64 36/41/50:${me}02000000 20/41/52:40000000 20/41/67:48000000 20/41/11:04800000"
	# An IPv4 client of the same dual-stack listener: its TTL (64), no
	# flow information, and no update from later segments.
	rcv_ip6_server 7444 -- client "$SADDR" 7444 0x28
	assert_output - <<-EOF
		accepted 64 36/41/50:${peer4}02000000 20/41/52:40000000 20/41/67:00000000 20/41/11:00000000
		data 64 36/41/50:${peer4}02000000 20/41/52:40000000 20/41/67:00000000 20/41/11:00000000
		closed 64 36/41/50:${peer4}02000000 20/41/52:40000000 20/41/67:00000000 20/41/11:00000000
	EOF
	# A peer with no traffic class or label: the child keeps its SYN (its
	# listener asked for the interface and hop limit) past the handshake's
	# last ACK; the next segment, not kept, clears it.
	rcv_ip6_server 7446 -- client6 "$SADDR6" 7446 0
	assert_output - <<-EOF
		accepted 33 36/41/50:${me}02000000 20/41/52:21000000 20/41/67:00000000
		data 44 36/41/50:${peer6}02000000 20/41/52:2c000000 20/41/67:00000000 20/41/11:00000000
		closed 44 36/41/50:${peer6}02000000 20/41/52:2c000000 20/41/67:00000000 20/41/11:00000000
	EOF
	# A peer that sends a hop-by-hop and a destination options header, to a
	# listener that asks for them: their messages too, in Linux's order.
	rcv_ip6_server 7445 ext -- client6 "$SADDR6" 7445 0x28 ext
	assert_output - <<-EOF
		accepted 33 36/41/50:${me}02000000 20/41/52:21000000 20/41/67:28000000 20/41/11:02800000 24/41/54:3c00010400000000 32/41/59:06011e0c0102030405060708090a0b0c 24/41/3:3c00010400000000 32/41/4:06011e0c0102030405060708090a0b0c
		data 44 36/41/50:${me}02000000 20/41/52:2c000000 20/41/67:28000000 20/41/11:02800000 24/41/54:3c00010400000000 32/41/59:06011e0c0102030405060708090a0b0c 24/41/3:3c00010400000000 32/41/4:06011e0c0102030405060708090a0b0c
		closed 44 36/41/50:${me}02000000 20/41/52:2c000000 20/41/67:28000000 20/41/11:02800000 24/41/54:3c00010400000000 32/41/59:06011e0c0102030405060708090a0b0c 24/41/3:3c00010400000000 32/41/4:06011e0c0102030405060708090a0b0c
	EOF
}

@test "IPV6_2292PKTOPTIONS: the hop limit and traffic class of the handshake, then of the last segment in order [kernel]" { MODE=kernel body_rcv_ip6; }
@test "IPV6_2292PKTOPTIONS: the hop limit and traffic class of the handshake, then of the last segment in order [ustcp]" { MODE=ustcp body_rcv_ip6; }
