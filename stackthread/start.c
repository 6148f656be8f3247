/* The stack thread: one libev loop per process that runs the protocol
 * stack on the link and relays every TCP socket of the program (relay.c).
 * This file loads the configuration, starts it (the first TCP socket
 * does: the link, directly or through the launcher's broker, the engine,
 * the loop) and settles what a fork leaves of it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"
#include "stack_impl.h"
#include "sysctl.h"

struct us_stack us_st = { .lock = PTHREAD_MUTEX_INITIALIZER, .close_log_fd = -1, .ctl_fd = -1,
			  .parent_wake_fd = -1, .program_fd = -1, .wake_name_fd = -1 };

/* Set on the stack thread (and while it starts): its fds go high. */
static __thread bool in_stack;

/* An fd libev made for itself on the stack thread (shim/fdplace.c), or the
 * stack's eventfd or epoll sets: moved to the fixed base (io.c) and
 * remembered, so that a keeper knows to keep it. */
int us_stack_own_fd(int fd)
{
	fd = us_fd_fixed(fd);
	if (fd >= 0 && us_st.n_own_fds < sizeof(us_st.own_fds) / sizeof(us_st.own_fds[0]))
		us_st.own_fds[us_st.n_own_fds++] = fd;
	return fd;
}

bool us_on_stack_thread(void)
{
	return in_stack;
}

/* ---- configuration ---- */

static struct ust_config config;
static int config_err;
static pthread_once_t config_once = PTHREAD_ONCE_INIT;

static const char *env(const char *name)
{
	return getenv(name);
}

static void load_config(void)
{
	char err[UST_CONFIG_ERR_MAX];

	config_err = ust_config_load(&config, env, err, sizeof(err));
	if (config_err < 0) {
		ust_log(UST_LOG_ERROR, "%s", err);
		return;
	}
	if (config.log_file[0]) {
		int fd = open(config.log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0)
			ust_log(UST_LOG_ERROR, "USTCP_LOG_FILE=\"%s\": %s", config.log_file, strerror(errno));
		ust_log_setup(config.log_level, us_fd_high(fd));
	} else {
		ust_log_setup(config.log_level, -1);
	}
}

const struct ust_config *us_config(void)
{
	pthread_once(&config_once, load_config);
	if (config_err < 0) {
		errno = -config_err;
		return NULL;
	}
	return &config;
}

/* ---- start-up ---- */

static int getrandom_key(uint64_t key[2])
{
	return getrandom(key, 2 * sizeof(uint64_t), GRND_NONBLOCK) == 2 * sizeof(uint64_t) ? 0 : -1;
}

/* ---- the guardian ----
 *
 * The loop does not run on a thread of the program: a signal that kills
 * the program's thread group (SIGKILL, a crash, abort) would stop it at
 * any instruction, in the middle of a turn. The stack thread clones a
 * guardian instead: a task of its own process (no CLONE_THREAD) that
 * shares the memory, the fd table and the working directory, and no
 * signal handlers; it has no exit signal, so the program's wait() never
 * sees it. The guardian runs the loop with the stack thread's TLS (no
 * CLONE_SETTLS), and the stack thread parks for good so that the two
 * never use it at once. When the program is gone, however it ended, the
 * guardian holds everything the stack needs, in a consistent state, and
 * becomes the keeper (keeper.c, us_on_program_gone). */

#define GUARD_STACK (8u << 20) /* as a thread's; touched pages only */

/* What the parked thread waits for: PARK_EXIT ends the program (the last
 * thread left after pthread_exit in main, keeper.c), PARK_LEAVE ends the
 * thread alone once the guardian has stopped serving without becoming a
 * keeper (after an exec's hand-over: if the exec fails, the process goes
 * on and a later socket starts a new stack, with no thread left behind). */
enum { PARK_PARKED, PARK_EXIT, PARK_LEAVE };

/* One per stack thread, on its own stack: it lives as long as the thread
 * parks, which is as long as the guardian may use it. */
struct guard {
	_Atomic uint32_t word; /* PARK_* */
	_Atomic pid_t tid;     /* the guardian's; 0 once it has exited */
	char *stack;           /* the guardian's stack */
};

/* This stack thread's, for us_guardian_leave and us_parked_exit: called
 * by its guardian, which borrows the thread's TLS. Not a global: after an
 * exec that failed, the program may start a new stack thread (and park a
 * new guard) before the old guardian has left; through a global the old
 * guardian woke the new thread's guard, and its own thread stayed parked
 * for good (090 "three failed execs…", one run in a few hundred). */
static __thread struct guard *parked_guard;

static void futex_wake(_Atomic uint32_t *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Without USTCP_CC, new connections run the algorithm the kernel's would
 * in this network namespace (net.ipv4.tcp_congestion_control, which a
 * namespace takes from the initial one), where the engine has it: reno,
 * cubic or bbr (BBRv1, the one Linux calls bbr). Any other leaves CUBIC,
 * Linux's own default. Read before the loop runs: every connection is
 * made by the loop, after. */
static void namespace_cc(struct ust_tcp_config *tc)
{
	char name[32];

	if (ust_sysctl_read("/proc/sys/net/ipv4/tcp_congestion_control", name, sizeof(name)) <= 0)
		return;
	name[strcspn(name, "\n")] = 0;
	if (strcmp(name, "bbr3") != 0) /* ours alone: Linux has no such name */
		(void)ust_tcp_config_cc(tc, name);
}

static int guardian_main(void *arg)
{
	/* Out of the program's process group and session: a kill of the
	 * group, or the terminal's signals, end the program and leave its
	 * connections to us, as the kernel keeps a killed process's. */
	setsid();
	/* The bound on TIME-WAITs is the namespace's, as Linux's
	 * tcp_max_tw_buckets (per namespace there, per process here), unless
	 * USTCP_MAX_TW set one: read here, not in the start-up the program
	 * waits for (a first read of /proc/sys takes 30 to 50 us). */
	if (us_st.cfg->max_tw == UINT_MAX)
		us_st.tcp.cfg.max_tw = (unsigned)ust_sysctl_int("/proc/sys/net/ipv4/tcp_max_tw_buckets", INT_MAX);
	us_st.tcp.cfg.thin_linear_timeouts = ust_sysctl_int("/proc/sys/net/ipv4/tcp_thin_linear_timeouts", 0) != 0;
	us_st.tcp.cfg.txrehash = ust_sysctl_int("/proc/sys/net/core/txrehash", 1) != 0;
	if (!us_st.cfg->cc[0])
		namespace_cc(&us_st.tcp.cfg);
	ust_loop_run(&us_st.loop);
	/* The loop ends in a keeper that is done, or after an exec's
	 * hand-over (a forked keeper serves). */
	if (us_st.keeper)
		us_keeper_exit();
	us_guardian_leave();
	return 0;
}

_Noreturn void us_guardian_leave(void)
{
	struct guard *g = parked_guard;

	/* The thread ends once we have exited (CLONE_CHILD_CLEARTID): its
	 * TLS, which we borrow, goes with it. */
	if (g) {
		atomic_store(&g->word, PARK_LEAVE);
		futex_wake(&g->word);
	}
	syscall(SYS_exit, 0);
	__builtin_unreachable();
}

/* The stack thread parks here, with every signal blocked: its TLS is the
 * guardian's. FUTEX_WAIT with all its arguments (no timeout). Returns once
 * the guardian has left for good. */
static void park(struct guard *g)
{
	pid_t t;

	for (;;) {
		uint32_t v = atomic_load(&g->word);

		if (v == PARK_EXIT)
			exit(0);
		if (v == PARK_LEAVE)
			break;
		syscall(SYS_futex, &g->word, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
	}
	/* The kernel clears tid and wakes it (a shared futex) as the guardian
	 * exits; only then are its stack and our TLS no longer in use. */
	while ((t = atomic_load(&g->tid)) != 0)
		syscall(SYS_futex, &g->tid, FUTEX_WAIT, t, NULL, NULL, 0);
	munmap(g->stack, GUARD_STACK);
	parked_guard = NULL;
}

void us_parked_exit(void)
{
	struct guard *g = parked_guard;

	if (!g)
		return;
	atomic_store(&g->word, PARK_EXIT);
	futex_wake(&g->word);
}

static void *thread_main(void *arg)
{
	_Atomic int *started = arg; /* the starter's, until we answer */
	struct guard g = { .word = PARK_PARKED };
	int r;

	g.stack = mmap(NULL, GUARD_STACK, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	in_stack = true;
	us_st.guardian = true;
	r = g.stack == MAP_FAILED ? -ENOMEM : 0;
	if (!r) {
		mprotect(g.stack, 4096, PROT_NONE); /* a guard page */
		parked_guard = &g;
		if (clone(guardian_main, g.stack + GUARD_STACK,
			  CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_UNTRACED | CLONE_PARENT_SETTID |
				  CLONE_CHILD_CLEARTID,
			  NULL, &g.tid, NULL, &g.tid) < 0)
			r = -errno;
	}
	if (r < 0) {
		us_st.guardian = false;
		parked_guard = NULL;
		if (g.stack != MAP_FAILED)
			munmap(g.stack, GUARD_STACK);
	}
	/* The starter's word: after the store it may be gone, and the wake
	 * touches no memory. */
	atomic_store(started, r < 0 ? r : 1);
	syscall(SYS_futex, started, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	if (r < 0)
		return NULL;
	park(&g);
	return NULL;
}

/* The broker's steering channel until the loop starts (steer.c). */
static int steer_chan = -1;

/* Asks the launcher's broker (ustcp(1)) for a packet socket: a request on
 * the inherited SOCK_SEQPACKET socket USTCP_BROKER_FD carrying our
 * credentials and one end of a fresh pair, on which the broker answers
 * (struct ust_broker_answer: 0, or an errno) and, on success, sends the
 * socket it opened, filtered for our address and locked, with a receive
 * ring of *ring_kib KiB. A broker that steers frames by port
 * (stack/steer.h) sends an ARP socket too (*arp), and keeps the pair's
 * other end: ours is then the member's channel (steer_chan). */
static int broker_link(int broker, int *arp, unsigned *ring_kib, char *err, size_t errlen)
{
	static const char req[] = UST_BROKER_REQUEST;
	struct ucred cred = { getpid(), getuid(), getgid() };
	char cbuf[CMSG_SPACE(sizeof(cred)) + CMSG_SPACE(sizeof(int))];
	struct iovec iov = { (void *)req, sizeof(req) - 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	struct pollfd p;
	struct ust_broker_answer a = { .status = EIO };
	int sv[2], status, fd = -1;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	memset(cbuf, 0, sizeof(cbuf));
	cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_CREDENTIALS;
	cm->cmsg_len = CMSG_LEN(sizeof(cred));
	memcpy(CMSG_DATA(cm), &cred, sizeof(cred));
	cm = CMSG_NXTHDR(&m, cm);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &sv[1], sizeof(int));
	if (REAL(sendmsg)(broker, &m, MSG_NOSIGNAL) < 0) {
		snprintf(err, errlen, "USTCP_BROKER_FD=%d: %s (is the ustcp launcher still running?)", broker,
			 strerror(errno));
		REAL(close)(sv[0]);
		REAL(close)(sv[1]);
		return -EPERM;
	}
	REAL(close)(sv[1]);
	/* The broker answers at once; a bound keeps a wedged one from
	 * hanging the program's socket() forever. */
	p.fd = sv[0];
	p.events = POLLIN;
	*arp = -1;
	if (poll(&p, 1, 5000) == 1) {
		char rbuf[CMSG_SPACE(2 * sizeof(int))];
		struct iovec riov = { &a, sizeof(a) };
		struct msghdr rm = { .msg_iov = &riov, .msg_iovlen = 1, .msg_control = rbuf,
				     .msg_controllen = sizeof(rbuf) };
		ssize_t n = REAL(recvmsg)(sv[0], &rm, MSG_CMSG_CLOEXEC);

		for (cm = n >= 0 ? CMSG_FIRSTHDR(&rm) : NULL; cm; cm = CMSG_NXTHDR(&rm, cm)) {
			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
				continue;
			memcpy(&fd, CMSG_DATA(cm), sizeof(int));
			if (cm->cmsg_len >= CMSG_LEN(2 * sizeof(int)))
				memcpy(arp, CMSG_DATA(cm) + sizeof(int), sizeof(int));
		}
		if (n != (ssize_t)sizeof(a) || (rm.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
			a.status = EIO; /* nothing, or a launcher of another build */
	}
	status = a.status;
	*ring_kib = a.ring_kib;
	if (status == 0 && fd >= 0) {
		if (*arp >= 0)
			steer_chan = us_fd_fixed(sv[0]);
		else
			REAL(close)(sv[0]);
		return fd;
	}
	REAL(close)(sv[0]);
	if (*arp >= 0)
		REAL(close)(*arp);
	if (fd >= 0)
		REAL(close)(fd);
	snprintf(err, errlen, "the ustcp broker refused a packet socket: %s", strerror(status ? status : EIO));
	return -(status ? status : EIO);
}

static int open_link(void)
{
	char err[256];
	const char *bvar = getenv("USTCP_BROKER_FD");
	int r, arp = -1;
	unsigned ring_kib = 0;

	if (bvar && *bvar) {
		/* Launched by ustcp(1): its broker holds the privilege. */
		r = broker_link(atoi(bvar), &arp, &ring_kib, err, sizeof(err));
		if (r >= 0) {
			r = ust_link_adopt(&us_st.link, r, us_st.cfg->iface, ring_kib, arp >= 0, err, sizeof(err));
			if (r < 0 && arp >= 0)
				REAL(close)(arp); /* (broker_link closed it on its own failures) */
		}
		if (r >= 0 && arp >= 0 && (r = ust_link_adopt_arp(&us_st.link, us_fd_fixed(arp))) < 0) {
			snprintf(err, sizeof(err), "link: the ARP socket: %s", strerror(-r));
			ust_link_close(&us_st.link);
		}
		if (r < 0 && steer_chan >= 0) {
			REAL(close)(steer_chan);
			steer_chan = -1;
		}
	} else {
		r = ust_link_open(&us_st.link, us_st.cfg, err, sizeof(err));
	}
	if (r < 0) {
		if (r == -EPERM && !(bvar && *bvar))
			ust_log(UST_LOG_ERROR, "%s: run the program through the ustcp launcher "
				"(ustcp -- program), or as root", err);
		else
			ust_log(UST_LOG_ERROR, "%s", err);
		return r;
	}
	us_st.link.fd = us_fd_fixed(us_st.link.fd);
	return 0;
}

/* The loop's after hook: the relay acts on what TCP reported; a keeper
 * then looks whether anything is left to finish. */
/* IPv6 addresses and DAD across the stacks on one address (addrshare.c):
 * those a live stack checked are ours at once (before the loop sends a
 * solicitation); one we hold is noted for the next stack as DAD passes,
 * and again each tick, so that a record lives while any stack holding
 * the address does (a record names one owner; the checker may end
 * first). */
static bool dad_noted[2];

static void dad_adopt(void)
{
	for (unsigned i = 0; i < 2; i++) {
		const struct ust_addr6 *a = &us_st.st.addr6[i];

		dad_noted[i] = false;
		if (a->state == UST_ADDR6_TENTATIVE && us_share_dad_passed(&a->a))
			ust_nd_addr_checked(&us_st.st, &a->a);
	}
}

void us_dad_note(bool again)
{
	for (unsigned i = 0; i < 2 && !us_st.st.nif.l3; i++) {
		const struct ust_addr6 *a = &us_st.st.addr6[i];

		if (a->state == UST_ADDR6_PREFERRED && (again || !dad_noted[i])) {
			dad_noted[i] = true;
			us_share_dad_note(&a->a);
		}
	}
}

static void after_loop(struct ust_loop *l, ust_time now)
{
	us_relay_after(l, now);
	if (us_st.keeper)
		us_keeper_check();
	us_dad_note(false);
}

/* The ceiling on control blocks when USTCP_MAX_CONNS does not set one:
 * as the kernel bounds sockets by the fd limit, twice the hard limit on
 * fds (the most the program may raise its soft limit to): every socket it
 * can hold, and as many more orphans finishing their close (FIN-WAIT,
 * TIME-WAIT), which Linux bounds apart (tcp_max_orphans,
 * tcp_max_tw_buckets). A bound on memory, never met before EMFILE. */
static unsigned default_max_conns(void)
{
	struct rlimit rl;
	rlim_t n = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_max : 4096;

	if (n == RLIM_INFINITY || n > US_MAX_SOCKS)
		n = US_MAX_SOCKS;
	return 2 * (n < 4096 ? 4096 : (unsigned)n);
}

/* The engine on the stack: its configuration, the address's shared
 * secret, the shim's callbacks. */
static int start_tcp(void)
{
	struct ust_tcp_config tc;
	int r;

	ust_tcp_default_config(&tc);
	tc.msl_ms = us_st.cfg->msl_ms;
	tc.fin_timeout_ms = us_st.cfg->fin_timeout_ms;
	tc.ecn = us_st.cfg->ecn;
	tc.rfc1337 = us_st.cfg->rfc1337;
	tc.syncookies = us_st.cfg->syncookies;
	tc.max_conns = us_st.cfg->max_conns ? us_st.cfg->max_conns : default_max_conns();
	tc.max_tw = us_st.cfg->max_tw; /* UINT_MAX, none, until guardian_main reads Linux's */
	if (us_st.cfg->cc[0])
		ust_tcp_config_cc(&tc, us_st.cfg->cc); /* checked by ust_config_load */
	if (us_st.cfg->rmem[2])
		memcpy(tc.rmem, us_st.cfg->rmem, sizeof(tc.rmem));
	if (us_st.cfg->wmem[2])
		memcpy(tc.wmem, us_st.cfg->wmem, sizeof(tc.wmem));
	r = us_run_dir_usable(us_st.cfg->run_dir) ? us_share_open(us_st.cfg) : 0; /* refusal said */
	if (r < 0)
		ust_log(UST_LOG_WARN, "%s/addr-*: %s (initial sequence numbers are this process's own: "
			"a peer's TIME-WAIT may delay new connections)", us_st.cfg->run_dir, strerror(-r));
	if (!us_share_secret(tc.isn_key) && getrandom_key(tc.isn_key) < 0) {
		tc.isn_key[0] = ((uint64_t)getpid() << 32) ^ (uint64_t)ust_now();
		tc.isn_key[1] = (uint64_t)ust_now() * 0x9e3779b97f4a7c15ull;
	}
	tc.event = us_on_tcp_event;
	tc.closed = us_close_log;
	tc.backlog_full = us_on_backlog_full;
	tc.port_claim = us_port_claim;
	tc.port_release = us_port_release;
	tc.port_foreign = us_port_foreign;
	tc.reuseport_pick = us_port_group_pick;
	tc.tuple_taken = us_tuple_taken;
	tc.tuple_hold = us_port_tuple_hold;
	tc.group_stray = us_port_group_stray;
	tc.ctx = &us_st;
	return ust_tcp_init(&us_st.tcp, &us_st.st, &tc) < 0 ? -ENOMEM : 0;
}

/* The loop and its watchers: wake-ups, hang-ups, the link, the control
 * socket, the tick. */
/* The wake-up name (calls.c, us_on_wake_name), named after the socket
 * region: a process that received one of our sockets with SCM_RIGHTS maps
 * the region and pokes us there (shim/fdtab.c). Abstract, so it lives in
 * this network namespace; a datagram carries nothing but the poke, so
 * anyone may send one. Without it such a process's calls get EOPNOTSUPP
 * after RPC_PATIENCE_MS. */
static void open_wake_name(void)
{
	struct sockaddr_un sun;
	socklen_t len;
	dev_t dev;
	ino_t ino;
	int fd;

	us_st.wake_name_fd = -1;
	if (!us_region_id(&dev, &ino))
		return;
	fd = REAL(socket)(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return;
	/* Each poke carries its sender's credentials (us_on_wake_name). */
	if (REAL(setsockopt)(fd, SOL_SOCKET, SO_PASSCRED, &(int){ 1 }, sizeof(int)) < 0) {
		REAL(close)(fd);
		return;
	}
	len = us_wake_addr(&sun, dev, ino);
	if (REAL(bind)(fd, (struct sockaddr *)&sun, len) < 0) {
		REAL(close)(fd);
		return;
	}
	us_st.wake_name_fd = us_fd_fixed(fd);
	ev_io_init(&us_st.wake_name, us_on_wake_name, us_st.wake_name_fd, EV_READ);
	ev_io_start(us_st.ev, &us_st.wake_name);
}

static int start_loop(void)
{
	socklen_t len = sizeof(us_st.app_sndbuf);
	int probe[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, probe) == 0) {
		REAL(getsockopt)(probe[0], SOL_SOCKET, SO_SNDBUF, &us_st.app_sndbuf, &len);
		us_st.app_sndbuf /= 2; /* setsockopt doubles it back */
		REAL(close)(probe[0]);
		REAL(close)(probe[1]);
	}
	in_stack = true; /* libev's fds go high too */
	us_st.ev = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV | EVFLAG_NOSIGMASK);
	us_st.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	us_st.hup_fd = epoll_create1(EPOLL_CLOEXEC);
	us_st.io_fd = epoll_create1(EPOLL_CLOEXEC);
	in_stack = false;
	if (!us_st.ev || us_st.wake_fd < 0 || us_st.hup_fd < 0 || us_st.io_fd < 0)
		return -ENOMEM;
	ev_io_init(&us_st.wake, us_on_wake, us_st.wake_fd, EV_READ);
	ev_io_start(us_st.ev, &us_st.wake);
	/* Hang-ups first, before the frames (UST_LOOP_PRI_FRAMES, loop.h):
	 * a listener the program closed before a SYN arrived must be gone
	 * when the SYN is read, as Linux's close() takes it out at once. Read after the SYN, it answered it and then
	 * reset the connection as the listener went (a SO_REUSEPORT group's
	 * other member should have had it; seen when the stack thread woke
	 * late, under load). */
	ev_io_init(&us_st.hup, us_on_hup, us_st.hup_fd, EV_READ);
	ev_set_priority(&us_st.hup, UST_LOOP_PRI_HANGUP);
	ev_io_start(us_st.ev, &us_st.hup);
	ev_io_init(&us_st.io, us_on_io, us_st.io_fd, EV_READ);
	ev_io_start(us_st.ev, &us_st.io);
	ust_loop_start(&us_st.loop, us_st.ev, &us_st.st, &us_st.link, &us_st.tcp);
	us_st.loop.after = after_loop;
	if (steer_chan >= 0) {
		us_steer_start(steer_chan, &us_st.loop, &us_st.st.ctr, &us_st.link);
		steer_chan = -1;
	}
	us_st.loop.busy_poll_us = us_st.cfg->busy_poll_us;
	us_st.loop.linger_us = us_st.cfg->call_spin_us;
	us_ctl_open();
	open_wake_name();
	us_looped_open();
	/* The program's end, which the guardian waits for (Linux 5.3; the
	 * tick asks getppid() without it). */
	us_st.program_fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (us_st.program_fd >= 0) {
		us_st.program_fd = us_fd_fixed(us_st.program_fd);
		ev_io_init(&us_st.program_gone, us_on_program_gone, us_st.program_fd, EV_READ);
		ev_io_start(us_st.ev, &us_st.program_gone);
	}
	/* Once a second: a program whose threads all ended (pthread_exit in
	 * main) hands over; a keeper looks for its interface. */
	ev_timer_init(&us_st.tick, us_on_tick, 1., 1.);
	ev_timer_start(us_st.ev, &us_st.tick);
	return 0;
}

/* The thread, which takes no signals (they are the program's), and
 * through it the guardian, which inherits its mask. */
static int spawn_thread(void)
{
	pthread_t th;
	pthread_attr_t attr;
	sigset_t all, old;
	_Atomic int started = 0; /* the thread's answer: 1, or -errno */
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = pthread_create(&th, &attr, thread_main, (void *)&started);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		ust_log(UST_LOG_ERROR, "cannot start the stack thread: %s", strerror(r));
		return -r;
	}
	while (!(r = atomic_load(&started)))
		syscall(SYS_futex, &started, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	if (r < 0) {
		ust_log(UST_LOG_ERROR, "cannot start the stack's guardian: %s", strerror(-r));
		return r;
	}
	return 0;
}

/* What the start-up's steps cost, for the log at debug level: a one-shot
 * program pays all of it before its first connect (issue 18). */
enum { T_CONFIG, T_LINK, T_ENGINE, T_LOOP, T_THREADS, T_STEPS };

static int start(void)
{
	struct ust_netif nif;
	ust_time t[T_STEPS + 1];
	const struct ust_config *cfg;
	int r;

	t[0] = ust_now();
	cfg = us_config();
	if (!cfg)
		return -errno;
	us_st.cfg = cfg;
	t[T_CONFIG + 1] = ust_now();
	r = open_link();
	if (r < 0)
		return r;
	if (us_st.cfg->pcap[0]) {
		int fd = open(us_st.cfg->pcap, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0 || (r = ust_pcap_adopt(&us_st.link.pcap, us_fd_high(fd), us_st.link.l3)) < 0) {
			ust_log(UST_LOG_ERROR, "USTCP_PCAP=\"%s\": %s", us_st.cfg->pcap, strerror(errno));
			ust_link_close(&us_st.link);
			return -EINVAL;
		}
	}
	t[T_LINK + 1] = ust_now();
	ust_link_netif(&us_st.link, us_st.cfg, &nif);
	if (ust_stack_init(&us_st.st, &nif, 1024, us_steer_output, &us_st.link) < 0)
		goto nomem;
	us_st.link.ctr = &us_st.st.ctr;
	us_st.st.answers = us_answers_for_address;
	us_st.st.neigh_recall = us_share_neigh_recall;
	us_st.st.neigh_note = us_share_neigh_note;
	us_st.st.neigh_ctx = us_st.st.nif.mac;
	if (start_tcp() < 0)
		goto nomem;
	dad_adopt();
	t[T_ENGINE + 1] = ust_now();
	if (start_loop() < 0)
		goto nomem;
	t[T_LOOP + 1] = ust_now();
	r = spawn_thread();
	if (r < 0)
		return r;
	t[T_THREADS + 1] = ust_now();
	ust_log(UST_LOG_INFO, "stack on %s, %u.%u.%u.%u/%u", us_st.cfg->iface, us_st.cfg->addr >> 24,
		us_st.cfg->addr >> 16 & 255, us_st.cfg->addr >> 8 & 255, us_st.cfg->addr & 255, us_st.cfg->prefix);
	ust_log(UST_LOG_DEBUG,
		"start-up took %llu us: configuration %llu, link %llu, engine %llu, loop %llu, threads %llu",
		(unsigned long long)(t[T_STEPS] - t[0]), (unsigned long long)(t[T_CONFIG + 1] - t[T_CONFIG]),
		(unsigned long long)(t[T_LINK + 1] - t[T_LINK]), (unsigned long long)(t[T_ENGINE + 1] - t[T_ENGINE]),
		(unsigned long long)(t[T_LOOP + 1] - t[T_LOOP]), (unsigned long long)(t[T_THREADS + 1] - t[T_THREADS]));
	return 0;
nomem:
	ust_log(UST_LOG_ERROR, "out of memory starting the stack");
	return -ENOMEM;
}

/* fork() while another thread starts the stack must not leave the child
 * with the start-up lock taken (shim/init.c calls these). A keeper closes
 * the program's fds without the fd table: its child is not a program. */
bool us_stack_fork_prepare(void)
{
	pthread_mutex_lock(&us_st.lock);
	return !us_st.forking_keeper;
}

void us_stack_fork_parent(void)
{
	pthread_mutex_unlock(&us_st.lock);
}

void us_stack_forget(void)
{
	if (!us_st.pid)
		return;
	REAL(close)(us_st.link.fd);
	if (us_st.link.arp_fd >= 0)
		REAL(close)(us_st.link.arp_fd);
	us_st.link.arp_fd = -1;
	us_steer_forget();
	us_looped_forget();
	REAL(close)(us_st.wake_fd);
	REAL(close)(us_st.hup_fd);
	REAL(close)(us_st.io_fd);
	if (us_st.wake_name_fd >= 0)
		REAL(close)(us_st.wake_name_fd);
	us_st.wake_name_fd = -1;
	if (us_st.program_fd >= 0)
		REAL(close)(us_st.program_fd);
	us_st.program_fd = -1;
	us_st.guardian = false;
	us_st.answer_until = 0; /* the half-open children were the parent's */
	us_ctl_close(false);
	/* The eventfd and the sets are among them too when the stack made
	 * them (start_loop): closed once, above (another thread may take a
	 * number freed twice). */
	for (unsigned i = 0; i < us_st.n_own_fds; i++) {
		int fd = us_st.own_fds[i];
		if (fd != us_st.wake_fd && fd != us_st.hup_fd && fd != us_st.io_fd)
			REAL(close)(fd);
	}
	/* The relays are the parent's: close our copies of their stack
	 * ends and forget them (their memory is the parent's copy too). */
	for (struct us_conn *c = us_st.all; c; c = c->all_next) {
		REAL(close)(c->sfd);
		REAL(close)(c->spare_end);
		REAL(close)(c->spare_port);
		/* A listener's kernel listeners on loopback too: a copy kept
		 * here would go on completing handshakes on 127.0.0.1 after
		 * the listener's close. */
		REAL(close)(c->lo_fd);
		REAL(close)(c->lo6_fd);
		REAL(close)(c->lo_held);
		us_st.conns[us_sock_idx(c->sock)] = NULL;
	}
	us_st.all = NULL;
	us_st.blocked = NULL;
	us_st.parked = NULL;
	if (us_st.pair_ready)
		REAL(close)(us_st.pair_lfd);
	us_st.pair_ready = false;
	us_st.nrelays = 0;
	us_ports_forget();
	us_st.link.pcap.f = NULL; /* another process's buffer: never flushed here */
	us_st.close_log_off = false; /* a new stack tries its close log again */
	us_st.pid = 0;
	us_st.start_err = 0;
	us_st.ev = NULL;
	us_st.n_own_fds = 0;
	us_st.dirty = NULL;
	us_st.nblocked = 0;
	atomic_store(&us_st.calls, NULL);
	us_st.handed_over = false;
}

/* A forked child shares the sockets it inherited, which the parent's
 * stack (later its keeper) goes on serving. Its copy of that stack is not
 * its own: the fds go (the parent keeps its references), the memory is
 * left, and a socket the child opens starts a stack of its own. The
 * parent's wake-up eventfd stays, so that an accept() here can tell the
 * parent's stack that a listener has room again. */
void us_stack_fork_child(void)
{
	pthread_mutex_unlock(&us_st.lock);
	if (us_st.forking_keeper || !us_st.pid)
		return;
	us_st.parent_wake_fd = us_fd_dup_high(us_st.wake_fd);
	us_stack_forget();
	/* The parent's receive buffers: the child's copy would stay (a huge
	 * page copied at the parent's first write) for the child's life, and
	 * its own keeper's. No thread of the child uses them: fork copied
	 * only the caller. (After a failed exec they stay: the guardian may
	 * be ending its last turn in them. And the stack thread's cache of
	 * ring memory stays in the child, in that thread's TLS, which no
	 * thread of the child can reach.) */
	ust_link_free_buffers(&us_st.link);
}

int us_stack_wake_fd_for_exec(void)
{
	int fd = us_st.pid == getpid() && us_st.ev ? us_st.wake_fd : us_st.parent_wake_fd;

	if (fd >= 0)
		REAL(fcntl)(fd, F_SETFD, 0);
	return fd;
}

void us_stack_adopt_wake_fd(int fd)
{
	if (fd < 0 || REAL(fcntl)(fd, F_SETFD, FD_CLOEXEC) < 0)
		return;
	us_st.parent_wake_fd = fd;
	us_fd_mark(fd);
}

int us_stack_kept_fd(void)
{
	return us_st.pid == getpid() ? -1 : us_st.parent_wake_fd;
}

int us_stack_start(void)
{
	int r;

	if (us_st.pid == getpid())
		return 0;
	pthread_mutex_lock(&us_st.lock);
	if (us_st.pid == getpid()) {
		r = 0;
	} else if (us_st.start_err) {
		r = us_st.start_err;
	} else {
		r = start();
		if (r < 0)
			us_st.start_err = r;
		else
			us_st.pid = us_st.program = getpid();
	}
	pthread_mutex_unlock(&us_st.lock);
	return r;
}

