#!/usr/bin/env bats
# The close log (USTCP_CLOSE_LOG, the launcher's --close-log): one JSON line
# per finished connection, with the fields ustcp(7) documents, and the outcome
# that tells an orderly close from a reset, a refusal and our own abort.
# Programs run through the launcher against kernel peers; TIME-WAIT is made
# short (USTCP_MSL) so that lines of connections we closed first come soon.

bats_require_minimum_version 1.5.0

load helpers
load launcher

TMP=$BATS_TEST_TMPDIR

setup() {
	launcher_topo_up
	export USTCP_MSL=0.2
	LOG=$TMP/close.log
}

# check_lines N: the log holds N lines (waiting up to 10 s for keepers),
# each a JSON object with every field of the interface, of the right type.
check_lines() {
	local i
	for ((i = 0; i < 200; i++)); do
		[ -f "$LOG" ] && [ "$(wc -l <"$LOG")" -ge "$1" ] && break
		sleep 0.05
	done
	run -0 python3 - "$LOG" "$1" <<-'EOF'
		import json, os, sys
		lines = open(sys.argv[1]).read().splitlines()
		assert len(lines) == int(sys.argv[2]), "%d lines, want %s" % (len(lines), sys.argv[2])
		states = {"SYN-SENT", "SYN-RECV", "ESTAB", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSING",
		          "TIME-WAIT", "CLOSE-WAIT", "LAST-ACK", "CLOSED"}
		for line in lines:
		    r = json.loads(line)
		    want = ["ts", "pid", "local", "remote", "outcome", "initiator", "reason", "states",
		            "bytes_sent", "bytes_received", "duration_ms"]
		    assert list(r) == want, "fields %r" % list(r)
		    assert r["ts"].endswith("Z") and "T" in r["ts"], r["ts"]
		    assert isinstance(r["pid"], int) and r["pid"] > 0
		    for k in ("local", "remote"):
		        a, p = r[k].rsplit(":", 1)
		        # a.b.c.d:port, or [IPv6]:port
		        v6 = a.startswith("[") and a.endswith("]") and a.count(":") >= 2
		        assert (v6 or a.count(".") == 3) and 0 < int(p) < 65536, r[k]
		    assert r["outcome"] in ("orderly", "reset-received", "reset-sent", "timeout",
		                            "refused", "unreachable"), r["outcome"]
		    assert r["initiator"] in ("local", "remote", "simultaneous", None), r["initiator"]
		    assert isinstance(r["reason"], str)
		    assert r["states"] and set(r["states"]) <= states and r["states"][-1] == "CLOSED", r["states"]
		    for k in ("bytes_sent", "bytes_received", "duration_ms"):
		        assert isinstance(r[k], int) and r[k] >= 0, (k, r[k])
		    print(r["outcome"], r["initiator"], r["remote"], ",".join(r["states"]))
		    if os.environ.get("LOCAL_WANT"):
		        a = r["local"].rsplit(":", 1)[0]
		        assert a == os.environ["LOCAL_WANT"], "local %s, want %s" % (a, os.environ["LOCAL_WANT"])
	EOF
}

@test "close log: curl's orderly close, we closed first" {
	mkdir -p "$TMP/www"
	head -c 100000 /dev/urandom >"$TMP/www/f"
	peer_bg python3 "$BATS_TEST_DIRNAME/../shim/httpd.py" "$PEER_ADDR" 8000 "$TMP/www" 2>/dev/null </dev/null
	wait_listen "$PEER_NETNS" 8000
	run -0 launch --close-log "$LOG" -- curl -sS -o /dev/null "http://$PEER_ADDR:8000/f"
	check_lines 1
	assert_output "orderly local $PEER_ADDR:8000 SYN-SENT,ESTAB,FIN-WAIT-1,FIN-WAIT-2,TIME-WAIT,CLOSED"
	run -0 python3 -c 'import json, sys; r = json.loads(open(sys.argv[1]).readline()); print(r["bytes_sent"] > 0, r["bytes_received"] > 100000, r["reason"] == "")' "$LOG"
	assert_output "True True True"
}

@test "close log: the peer aborts (SO_LINGER {1, 0}): reset-received" {
	peer_bg python3 -c '
import socket, struct, sys
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], 8001)); l.listen()
c, _ = l.accept(); c.recv(4096)
c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); c.close()
' "$PEER_ADDR" </dev/null
	wait_listen "$PEER_NETNS" 8001
	run -56 launch --close-log "$LOG" -- curl -sS -o /dev/null "http://$PEER_ADDR:8001/"
	check_lines 1
	assert_output "reset-received remote $PEER_ADDR:8001 SYN-SENT,ESTAB,CLOSED"
}

@test "close log: we close with data unread: reset-sent" {
	peer_bg python3 -c '
import socket, sys
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], 8002)); l.listen()
c, _ = l.accept(); c.sendall(b"unread" * 100); c.settimeout(10)
try:
    c.recv(1)  # open until the program resets it
except OSError:
    pass
' "$PEER_ADDR" </dev/null
	wait_listen "$PEER_NETNS" 8002
	# The program closes once the data has arrived (readable), unread.
	run -0 launch --close-log "$LOG" -- python3 -c '
import select, socket, sys
s = socket.create_connection((sys.argv[1], 8002))
assert select.select([s], [], [], 10)[0], "no data in 10 s"
s.close()
' "$PEER_ADDR"
	check_lines 1
	assert_output "reset-sent local $PEER_ADDR:8002 SYN-SENT,ESTAB,CLOSED"
}

@test "close log: a refused connect: refused, nobody closed" {
	run -7 launch --close-log "$LOG" -- curl -sS -o /dev/null "http://$PEER_ADDR:8009/"
	check_lines 1
	assert_output "refused None $PEER_ADDR:8009 SYN-SENT,CLOSED"
}

@test "close log: four programs append to one file, one whole line each" {
	mkdir -p "$TMP/www"
	head -c 1000 /dev/urandom >"$TMP/www/f"
	peer_bg python3 "$BATS_TEST_DIRNAME/../shim/httpd.py" "$PEER_ADDR" 8000 "$TMP/www" 2>/dev/null </dev/null
	wait_listen "$PEER_NETNS" 8000
	run -0 launch --close-log "$LOG" -- sh -c "
		for i in 1 2 3 4; do curl -sS -o /dev/null http://$PEER_ADDR:8000/f & done; wait"
	check_lines 4
	assert_equal "$(grep -c '^orderly local ' <<<"$output")" 4
}

# Over IPv6 (the launcher's -A): the ends as [address]:port, ours the stack's
# IPv6 address; an orderly close, then a refused connect.
@test "close log over IPv6: curl -6's orderly close and a refused connect, the ends as [address]:port" {
	topo_down
	launcher_topo_up --ipv6
	mkdir -p "$TMP/www"
	head -c 100000 /dev/urandom >"$TMP/www/f"
	peer_bg python3 "$BATS_TEST_DIRNAME/../shim/httpd.py" "$PEER_ADDR6" 8000 "$TMP/www" 2>/dev/null </dev/null
	wait_listen "$PEER_NETNS" 8000
	run -0 launch -A "$USTCP_ADDR6" --close-log "$LOG" -- \
		curl -6 -sS --max-time 20 -o /dev/null "http://[$PEER_ADDR6]:8000/f"
	LOCAL_WANT="[${USTCP_ADDR6%/*}]" check_lines 1
	assert_output "orderly local [$PEER_ADDR6]:8000 SYN-SENT,ESTAB,FIN-WAIT-1,FIN-WAIT-2,TIME-WAIT,CLOSED"
	run -7 launch -A "$USTCP_ADDR6" --close-log "$LOG" -- \
		curl -6 -sS --max-time 20 -o /dev/null "http://[$PEER_ADDR6]:8009/"
	LOCAL_WANT="[${USTCP_ADDR6%/*}]" check_lines 2
	assert_line --index 1 "refused None [$PEER_ADDR6]:8009 SYN-SENT,CLOSED"
}
