#!/usr/bin/env bats
# The launcher, build/ustcp (issue 7): programs run with no capability, the
# broker hands each stack a packet socket whose filter the program cannot
# remove, and errors are one clear line. Programs run in the stack's
# namespace through `launch` (launcher.bash), against kernel peers.

bats_require_minimum_version 1.5.0

load helpers
load launcher

setup() {
	TMP=$BATS_TEST_TMPDIR
}

# The capability lines of /proc/self/status, as "Name value".
CAPS_CMD='grep -E "^Cap(Inh|Prm|Eff|Bnd|Amb):" /proc/self/status | tr -d "\t" | tr ":" " "'

# A python3 program (stdlib only) that starts the stack with one TCP socket,
# then finds the packet sockets the broker gave it among its fds (the link's
# and, steering by port, the ARP socket) and tries to detach the filter and
# to attach a pass-all one in its place; to replace a fanout group's
# program, join another group, or bind the socket elsewhere (each socket is
# in a group, the broker's or one of its own: stack/broker.c, fanout_alone).
FILTER_PY='
import ctypes, errno, os, socket
s = socket.socket()  # starts the stack: the broker hands over a packet socket
libc = ctypes.CDLL(None, use_errno=True)
class Insn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]
class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Insn))]
accept_all = (Insn * 1)(Insn(0x06, 0, 0, 0x40000))  # BPF_RET|BPF_K
prog = Prog(1, accept_all)
found = 0
for name in sorted(os.listdir("/proc/self/fd"), key=int):
    fd = int(name)
    try:
        dom = socket.socket(fileno=os.dup(fd))
    except OSError:
        continue
    family = dom.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN)
    dom.close()
    if family != socket.AF_PACKET:
        continue
    found += 1
    zero = ctypes.c_int(0)
    r = libc.setsockopt(fd, socket.SOL_SOCKET, 27, ctypes.byref(zero), 4)  # SO_DETACH_FILTER
    print("detach", "ok" if r == 0 else errno.errorcode[ctypes.get_errno()])
    r = libc.setsockopt(fd, socket.SOL_SOCKET, 26, ctypes.byref(prog), ctypes.sizeof(prog))  # SO_ATTACH_FILTER
    print("attach", "ok" if r == 0 else errno.errorcode[ctypes.get_errno()])
    r = libc.setsockopt(fd, 263, 22, ctypes.byref(prog), ctypes.sizeof(prog))  # PACKET_FANOUT_DATA
    print("fanout data", "ok" if r == 0 else "refused")
    grp = ctypes.c_int(4321)  # PACKET_FANOUT: group 4321, hash
    r = libc.setsockopt(fd, 263, 18, ctypes.byref(grp), 4)
    print("fanout join", "ok" if r == 0 else "refused")
    try:
        s2 = socket.socket(fileno=os.dup(fd))
        s2.bind((os.environ["USTCP_IFACE"], 3))  # ETH_P_ALL
        print("rebind ok")
    except OSError:
        print("rebind refused")
print("packet sockets", found)
'

# The broker's protocol spoken by hand (stack/broker.h): a good request gets
# 0, the KiB of the receive ring set on the socket (which maps at that size;
# the ARP socket has none) and the AF_PACKET sockets; a malformed one, or one
# of version 1 (a library that could not map the ring), EPROTO and no fd;
# and whatever came before, the broker keeps serving
# (tests/fuzz/fuzz_broker.c tries the rest).
BROKER_PY='
import errno, mmap, os, socket, struct
broker = int(os.environ["USTCP_BROKER_FD"])
def ring(fd, kib):
    try:
        mmap.mmap(fd, (kib or 128) << 10).close()
        return "ring"
    except OSError:
        return "none"
def ask(text):
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    cred = struct.pack("iII", os.getpid(), os.getuid(), os.getgid())
    b = socket.socket(fileno=os.dup(broker))
    b.sendmsg([text], [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, cred),
                       (socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", theirs.fileno()))])
    b.close(); theirs.close()
    mine.settimeout(5)
    msg, fds, flags, addr = socket.recv_fds(mine, 16, 4)
    status, ring_kib = struct.unpack("iI", msg)
    kinds = []
    for fd in fds:
        s = socket.socket(fileno=fd)
        packet = s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN) == socket.AF_PACKET
        kinds.append(("AF_PACKET " + ring(fd, ring_kib)) if packet else "other")
        s.close()
    return (errno.errorcode.get(status, str(status)) if status else "0"), "ring", ring_kib, kinds
print("good", *ask(b"ustcp-link 2\n"))
print("old", *ask(b"ustcp-link 1\n"))
print("long", *ask(b"ustcp-link 2\n" * 8))
# Nowhere to answer, then garbage without credentials: nothing comes back,
# and the broker still serves the next request.
b = socket.socket(fileno=os.dup(broker))
b.sendmsg([b"ustcp-link 2\n"])
b.sendmsg([bytes(range(256)) * 4])
b.close()
print("again", *ask(b"ustcp-link 2\n"))
'

# ---- privileges ------------------------------------------------------------------

@test "a launched program holds no capability, and gets the library and the broker" {
	launcher_topo_up
	run -0 launch sh -c "$CAPS_CMD; echo \"preload \$LD_PRELOAD\"; echo \"broker \$USTCP_BROKER_FD\""
	assert_line "CapPrm 0000000000000000"
	assert_line "CapEff 0000000000000000"
	assert_line "CapAmb 0000000000000000"
	assert_line "CapInh 0000000000000000"
	# Launched as root: the bounding set is empty too, so that exec as
	# uid 0 grants nothing back.
	assert_line "CapBnd 0000000000000000"
	assert_line "preload $LIBUSTCP"
	assert_line --regexp '^broker [0-9]+$'
}

@test "the launcher exits with the program's status" {
	launcher_topo_up
	run -7 launch sh -c 'exit 7'
	run -0 launch true
	run -1 launch false
}

@test "the broker keeps CAP_NET_RAW only and leaves with the program's last process" {
	launcher_topo_up
	launch_bg sh -c "touch $TMP/up; exec sleep 30"
	local prog=$BG_PID b
	wait_file "$TMP/up"
	b=$(broker_pid)
	[ -n "$b" ] || { echo "no ustcp-broker in $USTCP_NETNS" >&2; false; }
	[ "$(wc -w <<<"$b")" -eq 1 ]
	# CAP_NET_RAW is bit 13.
	run -0 grep -E '^Cap(Prm|Eff|Bnd|Amb):' "/proc/$b/status"
	assert_line --regexp '^CapPrm:[[:space:]]+0000000000002000$'
	assert_line --regexp '^CapEff:[[:space:]]+0000000000002000$'
	assert_line --regexp '^CapBnd:[[:space:]]+0000000000002000$'
	assert_line --regexp '^CapAmb:[[:space:]]+0000000000000000$'
	kill -TERM "$prog"
	bg_wait "$prog" 10 || true
	no_ns_pids 5

	# The launched program exits at once, but a background child of
	# its still holds the broker's socket: the broker stays for it, then
	# goes with it. The child lives until the test lets it go (30 s at most),
	# not for a fixed time a loaded machine could use up before the check.
	run -0 launch sh -c "(i=0; while [ ! -e $TMP/go ] && [ \$i -lt 600 ]; do sleep 0.05; i=\$((i + 1)); done) >/dev/null 2>&1 & exit 0"
	[ -n "$(broker_pid)" ] || { echo "the broker left before the program's child" >&2; false; }
	touch "$TMP/go"
	no_ns_pids 10
}

@test "the program cannot remove or replace the locked filter" {
	launcher_topo_up
	run -0 launch python3 -c "$FILTER_PY"
	assert_line "packet sockets 2"
	assert_line "detach EPERM"
	assert_line "attach EPERM"
	assert_line "fanout data refused"
	assert_line "fanout join refused"
	assert_line "rebind refused"
	refute_line --partial " ok"
}

@test "the broker answers its protocol: a packet socket, or an errno for a bad request" {
	launcher_topo_up
	run -0 launch python3 -c "$BROKER_PY"
	# Steering by port: the link's socket and the ARP socket.
	assert_line "good 0 ring 4096 ['AF_PACKET ring', 'AF_PACKET none']"
	assert_line "old EPROTO ring 0 []"
	assert_line "long EPROTO ring 0 []"
	assert_line "again 0 ring 4096 ['AF_PACKET ring', 'AF_PACKET none']"
	# Without a ring (USTCP_RX_RING=0), none is set.
	USTCP_RX_RING=0 run -0 launch python3 -c "$BROKER_PY"
	assert_line "good 0 ring 0 ['AF_PACKET none', 'AF_PACKET none']"
}

@test "what the broker refused is one line on the launcher's stderr when the tree has gone" {
	launcher_topo_up
	# A file: nobody waits for its end, so the broker keeps it.
	launch python3 -c "$BROKER_PY" >"$TMP/out" 2>"$TMP/err"
	grep -qx "again 0 ring 4096 \['AF_PACKET ring', 'AF_PACKET none'\]" "$TMP/out"
	no_ns_pids 10
	run -0 cat "$TMP/err"
	assert_output "ustcp: the broker refused 4 requests from the program's processes (2 malformed, 0 not from uid 0, 2 with nowhere to answer)"
	# Nothing refused, nothing said.
	launch python3 -c 'import socket; socket.socket().close()' 2>"$TMP/err"
	no_ns_pids 10
	[ ! -s "$TMP/err" ]
	# A pipe: the broker holds none (the caller reads it to its end while
	# a daemon of the tree may live on), so the pipe has only the program's.
	launch python3 -c "$BROKER_PY" 2>&1 >/dev/null | cat >"$TMP/err"
	no_ns_pids 10
	[ ! -s "$TMP/err" ]
}

# ---- programs ----------------------------------------------------------------------

@test "a launched shell runs two programs in sequence" {
	# Each leaves a keeper in TIME-WAIT (1 s here) that must not disturb
	# the next, and then goes.
	export USTCP_MSL=0.5
	launcher_topo_up
	peer_http 8000
	local url=http://$PEER_ADDR:8000/file
	run -0 launch sh -c "curl -sS --max-time 20 -o $TMP/a $url && curl -sS --max-time 20 -o $TMP/b $url &&
		nc -N -w 10 $PEER_ADDR 8000 <<EOF >$TMP/c
GET /file HTTP/1.0

EOF"
	cmp "$TMP/www/file" "$TMP/a"
	cmp "$TMP/www/file" "$TMP/b"
	tail -c 200000 "$TMP/c" | cmp "$TMP/www/file" -
	no_ns_pids 5
}

@test "a launched shell runs two programs in parallel, each with its own packet socket" {
	launcher_topo_up
	# Both start their stacks at once, hold them until the other has
	# one too, and report the packet socket the broker gave each.
	local py="
import os, socket, sys, time
me, other = sys.argv[1], sys.argv[2]
s = socket.socket()
open(me, 'w').close()
for _ in range(200):
    if os.path.exists(other): break
    time.sleep(0.05)
else:
    sys.exit('the other program did not start')
n = 0
for name in os.listdir('/proc/self/fd'):
    try:
        k = socket.socket(fileno=os.dup(int(name)))
    except OSError:
        continue
    n += k.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN) == socket.AF_PACKET
    k.close()
# one write: the two programs share the output (PYTHONUNBUFFERED would split a print)
os.write(1, ('%s packet sockets %d\\n' % (me.rsplit('/', 1)[1], n)).encode())
"
	run -0 launch sh -c "python3 -c \"\$0\" $TMP/one $TMP/two & python3 -c \"\$0\" $TMP/two $TMP/one & wait %1 && wait %2" "$py"
	assert_line "one packet sockets 2"
	assert_line "two packet sockets 2"
}

@test "a launched shell runs two TCP programs in parallel" {
	export USTCP_MSL=0.5
	launcher_topo_up
	peer_http 8000
	local url=http://$PEER_ADDR:8000/file
	run -0 launch sh -c "curl -sS --max-time 20 -o $TMP/a $url & curl -sS --max-time 20 -o $TMP/b $url &
		wait %1 && wait %2"
	cmp "$TMP/www/file" "$TMP/a"
	cmp "$TMP/www/file" "$TMP/b"
}

@test "-u nobody runs the program as nobody, with TCP" {
	launcher_topo_up
	peer_http 8000
	run -0 launch -u nobody sh -c "id -u; id -G; $CAPS_CMD; curl -sS --max-time 20 http://$PEER_ADDR:8000/file | wc -c"
	assert_line --index 0 "$(id -u nobody)"
	assert_line --index 1 "$(id -g nobody)"
	assert_line "CapEff 0000000000000000"
	assert_line "CapPrm 0000000000000000"
	assert_line "CapBnd 0000000000000000"
	assert_line 200000
}

# -A sets USTCP_ADDR6 (here in no environment before it), and the broker's
# socket passes IPv6 for it: neighbour discovery, DAD and a curl -6 through
# the stack, which the server sees coming from that address.
@test "-A gives the stack an IPv6 address the broker's filter passes: curl -6" {
	launcher_topo_up --ipv6
	local addr6=$USTCP_ADDR6
	unset USTCP_ADDR6
	mkdir -p "$TMP/www"
	head -c 200000 /dev/urandom >"$TMP/www/file"
	peer_bg python3 -m http.server --bind "$PEER_ADDR6" --directory "$TMP/www" 8000 \
		</dev/null >/dev/null 2>"$TMP/httpd.err"
	wait_listen "$PEER_NETNS" 8000
	run -0 launch -A "$addr6" sh -c "echo \"addr6 \$USTCP_ADDR6\";
		curl -6 -sS --max-time 20 -o $TMP/got http://[$PEER_ADDR6]:8000/file"
	assert_line "addr6 $addr6"
	cmp "$TMP/www/file" "$TMP/got"
	run -0 grep -c "^${addr6%/*} - - .*\"GET /file" "$TMP/httpd.err"
	assert_output 1
}

# ---- errors ------------------------------------------------------------------------

# one_line STATUS PATTERN CMD...: CMD exits with STATUS and writes exactly
# one line on stderr, matching the extended regular expression PATTERN.
one_line() {
	local want=$1 pat=$2
	shift 2
	run "-$want" --separate-stderr "$@"
	if [ "${#stderr_lines[@]}" -ne 1 ] || ! grep -qE -- "$pat" <<<"$stderr"; then
		echo "$* exited with $status (want $want), stderr (want one line matching '$pat'):" >&2
		printf '%s\n' "$stderr" >&2
		return 1
	fi
}

@test "bad options give one clear line and exit 2" {
	launcher_topo_up
	one_line 2 '^ustcp: option -a: USTCP_ADDR="10\.9\.0\.300/24": ' launch -a 10.9.0.300/24 true
	one_line 2 '^ustcp: option -g: USTCP_GW="10\.1\.1\.1": not on the link' launch -g 10.1.1.1 true
	one_line 2 '^ustcp: option -A: USTCP_ADDR6="fe80::2/64": not a global' launch -A fe80::2/64 true
	one_line 2 '^ustcp: option -i: USTCP_IFACE="a b": ' launch -i "a b" true
	one_line 2 '^ustcp: unknown option -x' launch -x true
	one_line 2 '^ustcp: unknown option --bogus' launch --bogus true
	one_line 2 '^ustcp: option --pcap needs an argument' launch --pcap
	one_line 2 '^ustcp: no command given' launch
	one_line 2 '^ustcp: option -u: "no-such-user": no such user' launch -u no-such-user true
	# A well-formed name, but no such interface here.
	one_line 1 '^ustcp: option -i: USTCP_IFACE="nosuch0": no such interface' launch -i nosuch0 true
	one_line 127 '^ustcp: no-such-command: No such file or directory' launch no-such-command
	no_ns_pids 5
}

@test "bad variables give one clear line and exit 1" {
	launcher_topo_up
	local ns=(ip netns exec "$USTCP_NETNS" timeout 10 env)
	one_line 1 '^ustcp: USTCP_ADDR="bogus": not an IPv4' \
		"${ns[@]}" USTCP_RUN_DIR="$USTCP_RUN_DIR" USTCP_IFACE="$USTCP_IFACE" USTCP_ADDR=bogus "$LAUNCHER" true
	one_line 1 '^ustcp: USTCP_IFACE: not set' \
		"${ns[@]}" -u USTCP_IFACE USTCP_RUN_DIR="$USTCP_RUN_DIR" USTCP_ADDR="$USTCP_ADDR" "$LAUNCHER" true
	one_line 1 '^ustcp: USTCP_MSL="0": ' \
		"${ns[@]}" USTCP_RUN_DIR="$USTCP_RUN_DIR" USTCP_IFACE="$USTCP_IFACE" USTCP_ADDR="$USTCP_ADDR" USTCP_MSL=0 "$LAUNCHER" true
	one_line 1 '^ustcp: USTCP_LIBRARY="/nonexistent/libustcp\.so": ' \
		"${ns[@]}" USTCP_RUN_DIR="$USTCP_RUN_DIR" USTCP_IFACE="$USTCP_IFACE" USTCP_ADDR="$USTCP_ADDR" \
		USTCP_LIBRARY=/nonexistent/libustcp.so "$LAUNCHER" true
	# Options override the variables.
	run -0 "${ns[@]}" USTCP_RUN_DIR="$USTCP_RUN_DIR" USTCP_IFACE=bogus0 USTCP_ADDR=bogus "$LAUNCHER" -i "$USTCP_IFACE" -a "$USTCP_ADDR" \
		sh -c 'echo "$USTCP_IFACE $USTCP_ADDR"'
	assert_output "$USTCP_IFACE $USTCP_ADDR"
}

@test "the launcher needs root or cap_net_raw" {
	launcher_topo_up
	one_line 1 '^ustcp: needs CAP_NET_RAW' ip netns exec "$USTCP_NETNS" timeout 10 \
		setpriv --reuid=nobody --regid=nogroup --clear-groups \
		env USTCP_IFACE="$USTCP_IFACE" USTCP_ADDR="$USTCP_ADDR" "$LAUNCHER" true
}

# ---- without the launcher ----------------------------------------------------------

@test "without the launcher: root works, an unprivileged process gets EPERM and one line" {
	launcher_topo_up
	peer_http 8000
	local env=(env USTCP_IFACE="$USTCP_IFACE" USTCP_ADDR="$USTCP_ADDR" USTCP_RUN_DIR="$USTCP_RUN_DIR"
		LD_PRELOAD="$LIBUSTCP")
	run -0 ip netns exec "$USTCP_NETNS" timeout 30 "${env[@]}" \
		curl -sS --max-time 20 -o "$TMP/got" "http://$PEER_ADDR:8000/file"
	cmp "$TMP/www/file" "$TMP/got"

	run --separate-stderr -0 ip netns exec "$USTCP_NETNS" timeout 30 \
		setpriv --reuid=nobody --regid=nogroup --clear-groups "${env[@]}" \
		/usr/bin/python3 -c '
import socket
try:
    socket.socket()
    print("socket() succeeded")
except OSError as e:
    print("errno", e.errno)'
	assert_output "errno 1"
	[ "${#stderr_lines[@]}" -eq 1 ] || { printf '%s\n' "$stderr" >&2; false; }
	grep -qE 'Operation not permitted.*ustcp launcher' <<<"$stderr" || { echo "$stderr" >&2; false; }
}
