#!/usr/bin/env bats
# TCP's close on the wire, against the kernel's TCP: active, passive, half,
# simultaneous and aborted closes, the RSTs of RFC 1122 §4.2.2.13, FIN delivery
# under loss, and TIME-WAIT answering a retransmitted FIN. Each test captures
# the segments with tcpdump in the peer's namespace and checks the close's
# segments in order, what the kernel's socket saw, and how the stack says the
# connection ended (ustcp-host's "connection closed: outcome=… initiator=…
# states=…"). The cases are those of the close conformance reference (C1, C4,
# C8, C10, C12, C15, C17, C19, C27, C32, C33, C34). The stack runs in the test
# host, which connects to the kernel peer (-C); its options say how and when
# it closes (see tests/host/ustcp-host.c). 051-close6.bats is a link to this
# file: the same tests over IPv6 (CLOSE_FAMILY, from the file's name).

bats_require_minimum_version 1.5.0

load helpers
load host

# The kernel side: a Python socket that accepts one connection on the port
# given first, then runs STEPs in order, printing a line for most of them:
#   send FILE         sendall() the file: "sent BYTES"
#   recv-eof          read until read() = 0: "eof BYTES SHA256"
#   recv-reset        read until an error: "reset after BYTES" on ECONNRESET
#                     ("eof after BYTES" if read() = 0 came instead)
#   error             wait (5 s at most) for POLLERR or POLLHUP: "error NAME"
#                     of SO_ERROR (EPIPE, ECONNRESET…; 0 if none)
#   shut-wr           shutdown(SHUT_WR)
#   close             close()
#   abort             SO_LINGER {1, 0}, close(): a RST
#   sleep SECONDS     let time pass: the scenarios use it to space segments
#                     (the peer's ACK of our FIN apart from its own FIN, the
#                     ACK of its data apart from its RST), which is the
#                     sequence under test, not a wait for something
#   signal FILE       write its pid to FILE and wait for SIGUSR1
#   sh COMMAND        run a shell command
PEER_PY='
import errno, hashlib, os, select, signal, socket, struct, subprocess, sys, time
port = int(sys.argv[1])
six = os.environ.get("CLOSE_FAMILY") == "6"
ls = socket.socket(socket.AF_INET6 if six else socket.AF_INET)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("::" if six else "0.0.0.0", port))
ls.listen(1)
ls.settimeout(20)
s, _ = ls.accept()
ls.close()
s.settimeout(20)
out = lambda *a: print(*a, flush=True)
args = sys.argv[2:]
while args:
    step, args = args[0], args[1:]
    if step == "send":
        data = open(args.pop(0), "rb").read()
        s.sendall(data)
        out("sent", len(data))
    elif step == "recv-eof":
        h, n = hashlib.sha256(), 0
        while True:
            b = s.recv(65536)
            if not b:
                break
            h.update(b)
            n += len(b)
        out("eof", n, h.hexdigest())
    elif step == "recv-reset":
        n = 0
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    out("eof after", n)
                    break
                n += len(b)
        except ConnectionResetError:
            out("reset after", n)
    elif step == "error":
        p = select.poll()
        p.register(s, 0)
        p.poll(5000)
        e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        out("error", errno.errorcode.get(e, e))
    elif step == "shut-wr":
        s.shutdown(socket.SHUT_WR)
        out("shut-wr")
    elif step == "close":
        s.close()
        out("closed")
    elif step == "abort":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        out("aborted")
    elif step == "sleep":
        time.sleep(float(args.pop(0)))
    elif step == "signal":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        path = args.pop(0)
        with open(path + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(path + ".tmp", path)
        signal.sigwait({signal.SIGUSR1})
        out("signalled")
    elif step == "sh":
        subprocess.run(args.pop(0), shell=True, check=True)
        out("sh done")
    else:
        sys.exit("peer: unknown step " + step)
'

setup() {
	export USTCP_MSL=0.5 # TIME-WAIT 1 s: the host exits once CLOSED
	# 051-close6.bats is this file (a link): the same cases over IPv6.
	export CLOSE_FAMILY=4
	[[ ${BATS_TEST_FILENAME##*/} != *close6* ]] || CLOSE_FAMILY=6
	PORT=5001
	TMP=$BATS_TEST_TMPDIR
}

teardown() {
	host_stop
	[ -z "${PEER_PID:-}" ] || {
		pkill -TERM -P "$PEER_PID"
		kill "$PEER_PID" 2>/dev/null
		wait "$PEER_PID" 2>/dev/null
	} || true
	cap_stop
	topo_down
}

# close_topo_up [topo_up options...]: the topology, with IPv6 for
# 051-close6.bats; PEER is the kernel peer's address and OURS the stack's,
# in the file's family.
close_topo_up() {
	if [ "$CLOSE_FAMILY" = 6 ]; then
		topo_up --ipv6 "$@" || return 1
		PEER=$PEER_ADDR6 OURS=${USTCP_ADDR6%/*}
	else
		topo_up "$@" || return 1
		PEER=$PEER_ADDR OURS=${USTCP_ADDR%/*}
	fi
}

# peer_start STEP...: the kernel peer listens on $PORT in its namespace, in
# the background; its lines go to $TMP/peer.out and, once it has ended, its
# exit status to $TMP/peer.rc (renamed into place, so it is whole once seen).
peer_start() {
	rm -f "$TMP/peer.rc"
	{
		ip netns exec "$PEER_NETNS" timeout 30 python3 -c "$PEER_PY" "$PORT" "$@" \
			>"$TMP/peer.out" 2>"$TMP/peer.err" 3>&-
		echo $? >"$TMP/peer.rc.tmp" && mv "$TMP/peer.rc.tmp" "$TMP/peer.rc"
	} &
	PEER_PID=$!
	wait_listen "$PEER_NETNS" "$PORT"
}

# peer_wait: wait for the peer to finish (bounded by its timeout) and show
# what it printed. The tests call it under bats' `run`, a subshell, where
# bash's `wait` cannot wait for the test shell's children (it returns 255 at
# once while the peer still runs): so the peer's status comes from the file
# peer_start writes when the peer has ended.
peer_wait() {
	local rc=124
	wait_file "$TMP/peer.rc" 35 && rc=$(cat "$TMP/peer.rc")
	cat "$TMP/peer.out" "$TMP/peer.err"
	return "$rc"
}

# host_connect OPTIONS...: ustcp-host connects to the peer with these options.
host_connect() {
	if [ "$CLOSE_FAMILY" = 6 ]; then
		host_start -C "[$PEER]:$PORT" "$@"
	else
		host_start -C "$PEER:$PORT" "$@"
	fi
}

# host_wait [SECONDS]: wait (up to 15 s) for the host to end by itself, then
# show its line about the connection.
host_wait() {
	local i
	for ((i = 0; i < ${1:-15} * 20; i++)); do
		if ! kill -0 "$HOST_PID" 2>/dev/null; then
			wait "$HOST_PID" || true
			HOST_PID=
			grep -v '^[a-z-]* [0-9]*$' "$TMP/host.err" || true
			return 0
		fi
		sleep 0.05
	done
	echo "ustcp-host still runs after ${1:-15} s" >&2
	return 1
}

# host_closed OUTCOME INITIATOR [STATES]: how the host says the connection
# ended, and the states it went through (comma-separated, as ss names them).
host_closed() {
	grep -qE "connection closed: outcome=$1 initiator=$2 .*states=${3:-[^ ]*}( |$)" "$TMP/host.err" || {
		echo "expected outcome=$1 initiator=$2 states=${3:-any}, host said:" >&2
		cat "$TMP/host.err" >&2
		return 1
	}
}

# ---- the capture, in the peer's namespace -----------------------------------

cap_start() {
	CAP=$TMP/peer.pcap
	capture_start "$PEER_NETNS" "$PEER_IFACE" "$CAP" 60 tcp && CAP_PID=$CAPTURE_PID
}

# cap_stop: stop tcpdump (SIGINT: it writes what it holds) and write the
# segments it saw to $TMP/segs, one per line:
#   WHO FLAGS seq=SEQ ack=ACK len=LEN [fin=FINSEQ]
# WHO is I (the stack) or P (the kernel peer); FLAGS as tcpdump prints them
# (S, S., ., P., F., FP., R, R.); SEQ and ACK relative to the ISNs (so a
# side's first byte or FIN is 1), "-" when tcpdump omits them (a pure ACK has
# no seq); FINSEQ is the sequence number of the FIN, in segments with one.
cap_stop() {
	[ -n "${CAP_PID:-}" ] || return 0
	# Kept as a sleep: immediate mode, so tcpdump has seen the last segment
	# by now, and it has no way to say it has caught up (the counts of its
	# SIGUSR1 statistics differ from the packets it wrote on some links).
	sleep 0.2
	kill -INT "$CAP_PID" 2>/dev/null || true
	wait "$CAP_PID" 2>/dev/null || true
	CAP_PID=
	pcap_segs "$CAP" "$OURS" >"$TMP/segs"
}

# in_order REGEX...: segments matching these extended regular expressions
# (on the lines of $TMP/segs) came in this order; others may come between.
in_order() {
	local re at=0 n
	for re in "$@"; do
		n=$(RE=$re awk -v at="$at" 'NR > at && $0 ~ ENVIRON["RE"] { print NR; exit }' "$TMP/segs")
		if [ -z "$n" ]; then
			echo "no segment /$re/ after segment $at of:" >&2
			cat -n "$TMP/segs" >&2
			return 1
		fi
		at=$n
	done
}

# segs REGEX: how many segments match.
segs() {
	grep -cE "$1" "$TMP/segs" || true
}

# no_seg REGEX: no segment matches.
no_seg() {
	if grep -qE "$1" "$TMP/segs"; then
		echo "unexpected segment /$1/ in:" >&2
		cat -n "$TMP/segs" >&2
		return 1
	fi
}

# no_abort: no segment of the close is a RST. One RST is allowed, and only
# from the peer after both FINs: its answer to our ACK of something it sent
# again (its FIN, by a tail loss probe or a retransmission, or data, by an
# RTO), our first ACK having come later than its timer on a loaded machine.
# Our first ACK ended its LAST-ACK, our TIME-WAIT ACKs the late copy as RFC
# 9293 and Linux's TIME-WAIT do, and the peer, with no connection left,
# answers that with a RST; Linux in our place is answered the same. Nothing
# is aborted by it: both FINs and every byte have been delivered. A copy is
# a peer segment that starts below the end of what the peer sent before it.
no_abort() {
	if awk '
		function num(f) { sub(/^[a-z]+=/, "", f); return f + 0 }
		$1 == "I" && index($2, "F") { ifin = 1 }
		$1 == "P" && $3 != "seq=-" {
			seq = num($3); end = seq + num($5) + (index($2, "F") ? 1 : 0)
			if (seen && seq < pend) again = 1
			if (!seen || end > pend) pend = end
			seen = 1
		}
		$1 == "P" && index($2, "F") { pfin++ }
		index($2, "R") { if ($1 == "P" && ifin && pfin && (pfin >= 2 || again) && !late) late = 1; else bad = 1 }
		END { exit bad }' "$TMP/segs"; then
		return 0
	fi
	echo "a RST that ends a connection in:" >&2
	cat -n "$TMP/segs" >&2
	return 1
}

# ---- the tests ---------------------------------------------------------------

@test "active close: our FIN, the peer's ACK, the peer's FIN, our final ACK (C1)" {
	close_topo_up
	cap_start
	head -c 1000 /dev/urandom >"$TMP/src"
	peer_start recv-eof sleep 0.3 close
	host_connect -I "$TMP/src" -F
	host_wait
	run peer_wait
	assert_success
	assert_line "eof 1000 $(sha256sum <"$TMP/src" | cut -d' ' -f1)"
	cap_stop
	in_order '^I F[^ ]* .* fin=1001$' '^P \. seq=- ack=1002 len=0$' '^P F\. seq=1 ack=1002 .* fin=1$' \
		'^I \. seq=- ack=2 len=0$'
	[ "$(segs '^I F')" -eq 1 ] # nothing lost here: the FIN went once
	no_abort
	host_closed orderly local SYN-SENT,ESTAB,FIN-WAIT-1,FIN-WAIT-2,TIME-WAIT,CLOSED
}

@test "passive close: the peer's FIN, our ACK, our FIN, the peer's ACK (C10, C12)" {
	close_topo_up
	cap_start
	head -c 1000 /dev/urandom >"$TMP/src"
	peer_start send "$TMP/src" close
	# -K: CLOSE-WAIT for 0.3 s before closing, so that the ACK of the
	# peer's FIN shows on its own.
	host_connect -K -w 0.3 -O "$TMP/got"
	host_wait
	run peer_wait
	assert_success
	cap_stop
	cmp "$TMP/src" "$TMP/got"
	in_order '^P F[^ ]* .* fin=1001$' '^I \. seq=- ack=1002 len=0$' '^I F\. seq=1 ack=1002 .* fin=1$' \
		'^P \. seq=- ack=2 len=0$'
	[ "$(segs '^I F')" -eq 1 ]
	no_abort
	host_closed orderly remote SYN-SENT,ESTAB,CLOSE-WAIT,LAST-ACK,CLOSED
}

@test "half-close by the stack: after our FIN the peer sends 1 MB, all read (C4)" {
	close_topo_up
	cap_start
	head -c 1000 /dev/urandom >"$TMP/src"
	head -c 1000000 /dev/urandom >"$TMP/big"
	peer_start recv-eof send "$TMP/big" close
	# The default close is shutdown(SHUT_WR) after -I, reading on.
	host_connect -I "$TMP/src" -O "$TMP/got"
	host_wait
	run peer_wait
	assert_success
	assert_line "eof 1000 $(sha256sum <"$TMP/src" | cut -d' ' -f1)"
	cap_stop
	cmp "$TMP/big" "$TMP/got"
	# Our FIN is ACKed before the peer's first byte; then the peer's data,
	# all of it ACKed, its FIN, our ACK of it.
	in_order '^I F[^ ]* .* fin=1001$' '^P [^ ]* seq=(-|1) ack=1002 ' \
		'^P F[^ ]* .* fin=1000001$' '^I \. seq=- ack=1000002 len=0$'
	[ "$(awk '$1 == "P" && $5 != "len=0"' "$TMP/segs" | head -n 1 | grep -c 'ack=1002')" -eq 1 ]
	no_abort
	host_closed orderly local SYN-SENT,ESTAB,FIN-WAIT-1,FIN-WAIT-2,TIME-WAIT,CLOSED
}

@test "half-close by the peer: after its FIN the stack sends 1 MB, all read (C10)" {
	close_topo_up
	cap_start
	head -c 1000 /dev/urandom >"$TMP/src"
	head -c 1000000 /dev/urandom >"$TMP/big"
	peer_start send "$TMP/src" shut-wr recv-eof close
	# -K: nothing is sent before the peer's FIN; then 1 MB and our FIN.
	host_connect -K -I "$TMP/big" -O "$TMP/got"
	host_wait
	run peer_wait
	assert_success
	assert_line "eof 1000000 $(sha256sum <"$TMP/big" | cut -d' ' -f1)"
	cap_stop
	cmp "$TMP/src" "$TMP/got"
	in_order '^P F[^ ]* .* fin=1001$' '^I [^ ]* seq=1 ack=1002 len=[1-9]' \
		'^I F[^ ]* .* fin=1000001$' '^P \. seq=- ack=1000002 len=0$'
	# No byte of ours went before the peer's FIN.
	[ "$(awk '$1 == "I" && $5 != "len=0"' "$TMP/segs" | grep -vc 'ack=1002')" -eq 0 ]
	no_abort
	host_closed orderly remote SYN-SENT,ESTAB,CLOSE-WAIT,LAST-ACK,CLOSED
}

@test "simultaneous close: the FINs cross (50 ms each way), CLOSING, both ACKed (C17)" {
	close_topo_up --impair "delay 50ms"
	cap_start
	peer_start signal "$TMP/peer.pid" close
	host_connect -S -F
	# Both sides idle in ESTABLISHED; one kill reaches both at once.
	for ((i = 0; i < 100; i++)); do [ -e "$TMP/peer.pid" ] && break; sleep 0.05; done
	kill -USR1 "$(cat "$TMP/host.ready")" "$(cat "$TMP/peer.pid")"
	host_wait
	run peer_wait
	assert_success
	cap_stop
	# Each FIN ACKs only the other's SYN: it left before its sender saw
	# the other FIN. Then each side ACKs the other's FIN.
	in_order '^P F\. seq=1 ack=1 len=0 fin=1$' '^I \. seq=- ack=2 len=0$'
	in_order '^I F\. seq=1 ack=1 len=0 fin=1$' '^P \. seq=- ack=2 len=0$'
	no_abort
	host_closed orderly simultaneous SYN-SENT,ESTAB,FIN-WAIT-1,CLOSING,TIME-WAIT,CLOSED
}

@test "abort by the stack: SO_LINGER {1, 0} close sends RST, no FIN; the peer reads ECONNRESET (C27)" {
	close_topo_up
	cap_start
	head -c 1000 /dev/urandom >"$TMP/src"
	peer_start send "$TMP/src" recv-reset
	host_connect -A -w 0.3 -O "$TMP/got"
	host_wait
	run peer_wait
	assert_success
	assert_line "reset after 0"
	cap_stop
	cmp "$TMP/src" "$TMP/got"
	# RST|ACK at SND.NXT, ACKing all the peer sent (it was read).
	in_order '^P P\. seq=1 ack=1 len=1000$' '^I R\. seq=1 ack=1001 len=0$'
	[ "$(segs '^. R')" -eq 1 ]
	no_seg '^. F'
	host_closed reset-sent local SYN-SENT,ESTAB,CLOSED
}

@test "abort by the peer: its RST ends the connection, data before it was read (C32, C33)" {
	close_topo_up
	cap_start
	head -c 1000 /dev/urandom >"$TMP/src"
	peer_start send "$TMP/src" sleep 0.3 abort
	host_connect -O "$TMP/got"
	host_wait
	run peer_wait
	assert_success
	cap_stop
	cmp "$TMP/src" "$TMP/got"
	in_order '^P P\. seq=1 ack=1 len=1000$' '^I \. seq=- ack=1001 len=0$' '^P R\. seq=1001 ack=1 len=0$'
	[ "$(segs '^. R')" -eq 1 ]
	no_seg '^. F'
	host_closed reset-received remote SYN-SENT,ESTAB,CLOSED
	grep -q "receive: Connection reset by peer" "$TMP/host.err"
}

@test "close with unread data: RST with the ACK of what arrived, no FIN (C15)" {
	close_topo_up
	cap_start
	head -c 1000 /dev/urandom >"$TMP/src"
	peer_start send "$TMP/src" recv-reset
	# -U: the 1000 bytes arrive, are ACKed, and are never read.
	host_connect -U -w 0.3
	host_wait
	run peer_wait
	assert_success
	assert_line "reset after 0"
	cap_stop
	in_order '^P P\. seq=1 ack=1 len=1000$' '^I \. seq=- ack=1001 len=0$' '^I R\. seq=1 ack=1001 len=0$'
	[ "$(segs '^. R')" -eq 1 ]
	no_seg '^. F'
	host_closed reset-sent local SYN-SENT,ESTAB,CLOSED
}

@test "data after close: the stack answers it with RST (SEQ = SEG.ACK, no ACK bit) (C8)" {
	close_topo_up
	cap_start
	printf 'late data\n' >"$TMP/late"
	peer_start recv-eof sleep 0.3 send "$TMP/late" error
	# -F without -I: close() at once, a FIN; the stack reads no more.
	host_connect -F
	host_wait
	run peer_wait
	assert_success
	assert_line "eof 0 $(sha256sum </dev/null | cut -d' ' -f1)"
	# The RST came in CLOSE-WAIT: EPIPE, not ECONNRESET, as in C34.
	assert_line "error EPIPE"
	cap_stop
	in_order '^I F\. seq=1 ack=1 .* fin=1$' '^P \. seq=- ack=2 len=0$' '^P P\. seq=1 ack=2 len=10$' \
		'^I R seq=2 ack=- len=0$'
	[ "$(segs '^. R')" -eq 1 ]
	no_seg '^P F'
	host_closed reset-sent local SYN-SENT,ESTAB,FIN-WAIT-1,FIN-WAIT-2,CLOSED
}

@test "FIN delivery under 30% loss: 100 kB and the FIN reach the peer, orderly close" {
	# Loss on the way to the peer (a2b): data and FIN; the ACKs come back
	# intact, which keeps the run short (a few seconds).
	close_topo_up --impair "a2b loss 30%" --seed 7
	# The stack learns the peer's MAC from its ARP request (b2a, no loss):
	# no ARP request of ours can be lost three times in a row.
	timeout 5 ip netns exec "$PEER_NETNS" ping -c 1 -W 1 "$OURS" >/dev/null || true
	cap_start
	head -c 100000 /dev/urandom >"$TMP/src"
	peer_start recv-eof close
	host_connect -F -I "$TMP/src"
	host_wait 40
	run peer_wait
	assert_success
	# Every byte, in order, then read() = 0: the FIN came after them.
	assert_line "eof 100000 $(sha256sum <"$TMP/src" | cut -d' ' -f1)"
	cap_stop
	in_order '^I F[^ ]* .* fin=100001$' '^P [^ ]* seq=[^ ]* ack=100002 '
	no_seg '^I R'
	host_closed orderly local
	# The loss cost the stack retransmissions.
	[ "$(host_counter tcp-retrans)" -gt 0 ]
}

@test "TIME-WAIT answers a retransmitted FIN: our final ACK dropped once, the FIN again, ACKed again (C19)" {
	export USTCP_MSL=2 # TIME-WAIT 4 s: much longer than the peer's RTO
	close_topo_up
	# In the peer's namespace, a rule that drops the first pure ACK from
	# the stack once armed; the peer arms it after our FIN, just before its
	# own FIN, so the ACK it drops is our final one.
	local t=ip
	[ "$CLOSE_FAMILY" = 4 ] || t=ip6
	peer_drop_one_ack_setup "$CLOSE_FAMILY"
	cap_start
	peer_start recv-eof sh "nft add element $t ut_tw armed { $OURS }" close
	host_connect -F
	host_wait
	run peer_wait
	assert_success
	cap_stop
	run timeout 10 ip netns exec "$PEER_NETNS" nft list chain $t ut_tw input
	assert_output --partial "counter packets 1 "
	# tcpdump sees the dropped ACK (it captures before the input hook).
	in_order '^I F\. seq=1 ack=1 .* fin=1$' '^P F\. seq=1 ack=2 .* fin=1$' '^I \. seq=- ack=2 len=0$' \
		'^P F\. seq=1 ack=2 .* fin=1$' '^I \. seq=- ack=2 len=0$'
	[ "$(segs '^P F')" -eq 2 ]
	no_abort
	host_closed orderly local SYN-SENT,ESTAB,FIN-WAIT-1,FIN-WAIT-2,TIME-WAIT,CLOSED
}
