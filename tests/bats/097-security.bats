#!/usr/bin/env bats
# Local security (issue 19): what ustcp leaves on the machine holds against
# other local users. The run directory is used only when its user controls
# it alone; the control socket answers only its user and root, at a bounded
# pace; stale control sockets go at the next start; a listener's port
# reservation never completes a connection, even where the kernel owns the
# stack's address.

bats_require_minimum_version 1.5.0

load helpers
load launcher

setup() {
	TMP=$BATS_TEST_TMPDIR
	CLEANUP=()
}

teardown() {
	launcher_teardown
	local d
	for d in "${CLEANUP[@]}"; do rm -rf "$d"; done
}

# A program on ustcp that listens on port 7000 (so its stack runs), says
# "ready" in the file argv[1], and stays until argv[2] exists (at most 30 s).
IDLE_PY='
import os, socket, sys, time
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", 7000))
l.listen(5)
open(sys.argv[1], "w").close()
for _ in range(600):
    if os.path.exists(sys.argv[2]):
        break
    time.sleep(0.05)
'

# sock_of DIR: the one control socket's pid in DIR, once there is one.
sock_pid() {
	local f
	for f in "$1"/*.sock; do
		[ -S "$f" ] && basename "$f" .sock && return 0
	done
	return 1
}

# world_dir: a directory other users may reach (the tests' own are 0700),
# removed in teardown.
world_dir() {
	local d
	d=$(mktemp -d /tmp/ustcp-sec.XXXXXX)
	chmod 0755 "$d"
	CLEANUP+=("$d")
	echo "$d"
}

# refused_run DIR WHY: curl through ustcp with DIR as the run directory gets
# the whole file; stderr is the one line refusing DIR for WHY; nothing of
# ustcp's is left in DIR.
refused_run() {
	USTCP_RUN_DIR=$1 run -0 --separate-stderr launch curl -sS --max-time 20 -o "$TMP/got" \
		"http://$PEER_ADDR:8000/file"
	cmp "$TMP/www/file" "$TMP/got"
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" '^ustcp\[[0-9]+\]: warn: '
	assert_equal "${stderr#*: warn: }" "run directory \"$1\" refused: $2 (ustcp-stat will not see this process, and it shares no state with other processes on its address)"
	[ -z "$(ls -A "$1")" ]
}

@test "a run directory another user could change is refused in one line, and the program still runs" {
	launcher_topo_up
	peer_http 8000
	# Another user's, open to all (the squatter's way).
	mkdir "$TMP/theirs"
	chown daemon "$TMP/theirs"
	chmod 0777 "$TMP/theirs"
	refused_run "$TMP/theirs" "owned by uid $(id -u daemon), not 0"
	# Ours, but writable by others or by the group.
	mkdir "$TMP/open" "$TMP/group"
	chmod 0777 "$TMP/open"
	chmod 0775 "$TMP/group"
	refused_run "$TMP/open" "writable by others (mode 0777)"
	refused_run "$TMP/group" "writable by its group (mode 0775)"
	# A symbolic link, even to a directory of ours.
	mkdir -m 0700 "$TMP/real"
	ln -s "$TMP/real" "$TMP/link"
	refused_run "$TMP/link" "a symbolic link"
	[ -z "$(ls -A "$TMP/real")" ]
}

@test "ustcp -u nobody: a squatted /tmp/ustcp-UID is refused, not used" {
	local squat=/tmp/ustcp-$(id -u nobody)
	[ ! -e "$squat" ] || skip "$squat exists already"
	launcher_topo_up
	peer_http 8000
	mkdir "$squat"
	CLEANUP+=("$squat")
	chown daemon "$squat"
	chmod 0777 "$squat"
	run -0 --separate-stderr launch -u nobody env -u USTCP_RUN_DIR -u XDG_RUNTIME_DIR \
		curl -sS --max-time 20 "http://$PEER_ADDR:8000/file" -o /dev/null -w '%{size_download}\n'
	assert_equal "$output" 200000
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" '^ustcp\[[0-9]+\]: warn: '
	assert_equal "${stderr#*: warn: }" "run directory \"$squat\" refused: owned by uid $(id -u daemon), not $(id -u nobody) (ustcp-stat will not see this process, and it shares no state with other processes on its address)"
	[ -z "$(ls -A "$squat")" ]
	# ustcp-stat, run by root, does not believe what is there either.
	run -0 --separate-stderr env -u USTCP_RUN_DIR "$STAT"
	assert_line --index 0 --regexp '^State '
	assert_regex "$stderr" "(^|
)ustcp-stat: $squat: refused: owned by uid $(id -u daemon), not $(id -u nobody)(\$|
)"
}

@test "the run directory is made 0700 and the control socket 0600; only its user and root get a dump" {
	launcher_topo_up
	local parent
	parent=$(world_dir)
	export USTCP_RUN_DIR=$parent/run
	launch_bg python3 -c "$IDLE_PY" "$TMP/ready" "$TMP/exit"
	wait_file "$TMP/ready"
	local pid
	pid=$(sock_pid "$USTCP_RUN_DIR")
	assert_equal "$(stat -c %a "$USTCP_RUN_DIR")" 700
	assert_equal "$(stat -c %a "$USTCP_RUN_DIR/$pid.sock")" 600
	run -0 "$STAT" -p "$pid"
	assert_line --regexp '^LISTEN '

	# Another user: refused by the directory, without a word of the dump.
	run -0 --separate-stderr setpriv --reuid=nobody --regid=nogroup --clear-groups "$STAT"
	refute_line --regexp '^LISTEN '
	assert_equal "$stderr" "ustcp-stat: $USTCP_RUN_DIR: refused: owned by uid 0, not $(id -u nobody)"

	# Modes opened up behind the stack's back: its own check of each
	# caller's credentials still refuses, and counts.
	chmod 0711 "$USTCP_RUN_DIR"
	chmod 0777 "$USTCP_RUN_DIR/$pid.sock"
	run -0 setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(10)
print("got %d bytes" % len(s.recv(65536)))' "$USTCP_RUN_DIR/$pid.sock"
	assert_output "got 0 bytes"
	run -0 "$STAT" -s -p "$pid"
	assert_line --regexp '^ +ctl-refused +1$'
	touch "$TMP/exit"
}

# The stack's wake-up name (an abstract datagram socket through which an
# unrelated process holding one of its sockets by SCM_RIGHTS calls it) is
# reachable by anyone in the namespace: another user's datagrams are read,
# dropped and counted, and make the stack serve nothing.
@test "another user's pokes at a stack's wake-up name are refused and counted" {
	launcher_topo_up
	launch_bg python3 -c "$IDLE_PY" "$TMP/ready" "$TMP/exit"
	wait_file "$TMP/ready"
	local pid name
	pid=$(sock_pid "$USTCP_RUN_DIR")
	name=$(in_stack grep -o '@ustcp-wake-[0-9a-f-]*' /proc/net/unix | head -n 1)
	[ -n "$name" ]
	run -0 in_stack setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sent = 0
for _ in range(500):
    try:
        s.sendto(b"x", "\0" + sys.argv[1][1:])
        sent += 1
    except BlockingIOError:
        pass
print("sent %d" % sent)' "$name"
	assert_output "sent 500"
	wait_for 10 stat_counter_is "$pid" ctl-refused 500
	touch "$TMP/exit"
}

# stat_counter_is PID NAME N: ustcp-stat -s says NAME is N for PID.
stat_counter_is() {
	"$STAT" -s -p "$1" | grep -qE "^ +$2 +$3\$"
}

@test "a flood of control requests is answered at a bounded pace while the program transfers" {
	launcher_topo_up
	peer_http 8000 60000000
	launch_bg curl -sS --max-time 40 --limit-rate 20M -o "$TMP/got" "http://$PEER_ADDR:8000/file"
	local curl=$BG_PID pid
	wait_for 10 sock_pid "$USTCP_RUN_DIR"
	pid=$(sock_pid "$USTCP_RUN_DIR")
	# Four callers as fast as they can for 2 s; each dump answered counts.
	run -0 python3 -c '
import socket, sys, threading, time
path, end = sys.argv[1], time.monotonic() + 2
count = [0]
def caller():
    while time.monotonic() < end:
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(path)
            s.settimeout(5)
            if s.recv(65536).startswith(b"ustcp 1"):
                count[0] += 1
        except OSError:
            time.sleep(0.001)
        s.close()
ts = [threading.Thread(target=caller) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
print(count[0])' "$USTCP_RUN_DIR/$pid.sock"
	local answered=$output
	bg_wait "$curl" 40
	cmp "$TMP/www/file" "$TMP/got"
	# A dump of one connection takes tens of microseconds: unpaced, 2 s
	# of four callers get thousands. Paced (at least 10 ms of rest after
	# each caller), at most 200, and some.
	echo "answered $answered dumps in 2 s" >&3
	[ "$answered" -ge 5 ]
	[ "$answered" -le 220 ]
}

@test "a control socket left by a killed program is removed at the next start on its run directory" {
	launcher_topo_up
	launch_bg python3 -c "$IDLE_PY" "$TMP/ready" "$TMP/exit"
	wait_file "$TMP/ready"
	local pid
	pid=$(sock_pid "$USTCP_RUN_DIR")
	# The program's guardian (a child of its stack thread) would take
	# over and remove the socket: both die at once, as under the OOM
	# killer, so that the socket is left.
	local guardian
	guardian=$(cat /proc/"$pid"/task/*/children)
	[ -n "$guardian" ]
	kill -KILL $guardian "$pid" # the guardian first: it must not see the program go
	wait_for 10 eval '! kill -0 '"$pid"' 2>/dev/null'
	[ -S "$USTCP_RUN_DIR/$pid.sock" ]
	run -0 launch python3 -c 'import socket; socket.socket().close()'
	[ ! -e "$USTCP_RUN_DIR/$pid.sock" ]
}

# kernel_owns_addr FAMILY: the kernel of the stack's namespace owns the
# stack's address too; a launched listener (AF_INET, or with FAMILY 6 an
# AF_INET6 dual-stack one, the launcher given -A) serves six clients of the
# peer over that family. The listener stays until the test is done: once it
# has gone, its port is only bound, and a kernel owning the address answers
# the last ACKs of its connections with RST.
kernel_owns_addr() {
	local fam=$1 opts=() af=AF_INET any=0.0.0.0 addr=$SADDR hops=IP_TTL level=IPPROTO_IP
	if [ "$fam" = 6 ]; then
		launcher_topo_up --ipv6
		stack_kernel_addr
		stack_kernel_addr6
		opts=(-A "$USTCP_ADDR6") af=AF_INET6 any=:: addr=${USTCP_ADDR6%/*}
		hops=IPV6_UNICAST_HOPS level=IPPROTO_IPV6
	else
		launcher_topo_up
		stack_kernel_addr
		addr=$SADDR
	fi
	launch_bg "${opts[@]}" python3 -c '
import os, socket, sys, time
l = socket.socket(getattr(socket, sys.argv[3]))
l.bind((sys.argv[4], 7000))
l.listen(5)
open(sys.argv[1], "w").close()
for _ in range(6):
    c, _ = l.accept()
    c.sendall(b"from the program\n")
    c.close()
for _ in range(600):
    if os.path.exists(sys.argv[2]):
        break
    time.sleep(0.05)' "$TMP/ready" "$TMP/exit" "$af" "$any"
	wait_file "$TMP/ready"
	[ "$fam" = 4 ] || sleep 1.2 # DAD: the stack answers for its IPv6 address after it
	# The reservation listens in the kernel, locked with an MD5 key nobody
	# knows: the kernel drops every SYN, so only the stack answers. Half
	# the clients send TTL (hop limit) 255, as a neighbour would to pass
	# IP_MINTTL (IPV6_MINHOPCOUNT).
	run -0 in_stack ss -ltnH "sport = :7000"
	assert_output --partial ":7000"
	[ "$fam" = 6 ] || assert_output --partial "$SADDR:7000"
	local ttl
	for ttl in 64 64 64 255 255 255; do
		run -0 in_peer python3 -c '
import socket, sys
s = socket.socket(getattr(socket, sys.argv[3]))
s.setsockopt(getattr(socket, sys.argv[5]), getattr(socket, sys.argv[4]), int(sys.argv[2]))
s.settimeout(10)
s.connect((sys.argv[1], 7000))
print(s.makefile().readline().strip())' "$addr" "$ttl" "$af" "$hops" "$level"
		assert_output "from the program"
	done
	run -0 in_stack nstat -asz TcpPassiveOpens
	assert_line --regexp '^TcpPassiveOpens +0 '
	# Each TTL 255 SYN reached the reservation and was dropped there.
	run -0 in_stack nstat -asz TcpExtTCPMD5NotFound
	assert_line --regexp '^TcpExtTCPMD5NotFound +([3-9]|[1-9][0-9]+) '
	touch "$TMP/exit"
}

@test "where the kernel owns the stack's address too, a listener's connection reaches the program, not the kernel" {
	kernel_owns_addr 4
}

@test "over IPv6, where the kernel owns the stack's address too, a listener's connection reaches the program, not the kernel" {
	kernel_owns_addr 6
}

@test "ustcp-stat shows another's dump without its escape sequences, and only under the pid it was asked" {
	mkdir -m 0700 "$TMP/run"
	export USTCP_RUN_DIR=$TMP/run
	# A control socket answering what any local user could: a process
	# named with an escape sequence, then a dump naming another pid.
	/usr/bin/python3 -c '
import os, socket, sys
path = "%s/%d.sock" % (sys.argv[1], os.getpid())
l = socket.socket(socket.AF_UNIX)
l.bind(path)
l.listen(3)
open(sys.argv[2], "w").close()
l.settimeout(20)
for pid in (os.getpid(), os.getpid(), 1):
    c, _ = l.accept()
    c.sendall(b"ustcp 1\nprocess %d \x1b]2;owned\x07 lo\x1b[2J 10.0.0.1/8 program\n"
              b"tcp ESTAB 0 0 10.0.0.1:\x1b[1m 10.0.0.2:80 on 5\ntcp ESTAB 0 0 10.0.0.1:99 10.0.0.2:80\x9b2J off 0\n"
              b"counter \x1b[31mred 1\nend\n" % pid)
    c.close()
os.unlink(path)' "$TMP/run" "$TMP/ready" &
	local server=$!
	wait_file "$TMP/ready"
	run -0 --separate-stderr timeout 10 "$STAT" -s
	assert_line --regexp '^process [0-9]+ \(\?\]2;owned\?\) program lo\?\[2J 10\.0\.0\.1/8, 2 connections$'
	assert_line '  ?[31mred 1'
	[[ "$output" != *$'\e'* ]]
	run -0 --separate-stderr timeout 10 "$STAT"
	assert_line --index 1 --regexp '^ESTAB +0 +0 +10\.0\.0\.1:\?\[1m +10\.0\.0\.2:80 +users:\(\("\?\]2;owned\?",pid=[0-9]+\)\) timer:\(on,005ms,0\)$'
	assert_line --index 2 --regexp '^ESTAB .* 10\.0\.0\.2:80\?2J +users:'
	[[ "$output" != *$'\e'* && "$output" != *$'\x9b'* ]]
	run -0 --separate-stderr timeout 10 "$STAT"
	assert_equal "${#lines[@]}" 1 # the header alone
	assert_regex "$stderr" "^ustcp-stat: $TMP/run/[0-9]+\.sock: not a complete ustcp dump; skipped\$"
	wait "$server"
}
