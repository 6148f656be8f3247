/* The exit keeper: connections outlive the process that made them, as in
 * the kernel. At exit, before exec or _exit, or when only the stack thread
 * is left, the stack thread forks an exit keeper that finishes them. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "stack_impl.h"

/* Field 3 (state) and field 20 (threads) of a /proc stat file. */
static int stat_fields(const char *path, char *state, int *threads)
{
	char buf[512], *p;
	int fd = open(path, O_RDONLY | O_CLOEXEC), field = 2;
	ssize_t len;

	if (fd < 0)
		return -1;
	len = REAL(read)(fd, buf, sizeof(buf) - 1);
	REAL(close)(fd);
	if (len <= 0)
		return -1;
	buf[len] = 0;
	p = strrchr(buf, ')'); /* after the command name, which may hold spaces */
	if (!p || p[1] != ' ')
		return -1;
	*state = p[2];
	for (; *p && field < 20; p++)
		if (*p == ' ')
			field++;
	*threads = atoi(p);
	return 0;
}

/* Is this thread all that is left of the program? After pthread_exit in
 * main the leader stays a zombie (and counted) until the last thread ends. */
static bool only_us_left(void)
{
	char path[64], state;
	int threads, leader_threads;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)getpid());
	if (stat_fields(path, &state, &leader_threads) < 0 || state != 'Z')
		return false;
	return stat_fields("/proc/self/stat", &state, &threads) == 0 && threads == 2;
}


/* Anything left that TCP must finish: a connection not yet CLOSED, or a
 * socket some other process (a forked child) still holds. */
static bool work_left(void)
{
	return ust_tcp_count(&us_st.tcp) || us_st.nrelays;
}

void us_keeper_check(void)
{
	if (!work_left())
		us_keeper_exit();
}

/* Calls fn for every fd the stack holds: its relays' stack ends and the
 * fds they hold in reserve, its port reservations, the pairing listener,
 * the packet socket, its eventfds and epoll sets, the log, capture, close
 * log and control socket, the socket region's memfd, the fds libev made;
 * and, for the program's own calls, the broker's socket (a child forked
 * later needs it for a packet socket). -1 for those not open. */
static void each_stack_fd(void (*fn)(void *ctx, int fd), void *ctx, bool with_broker)
{
	const char *broker = getenv("USTCP_BROKER_FD");

	for (struct us_conn *c = us_st.all; c; c = c->all_next) {
		fn(ctx, c->sfd);
		fn(ctx, c->spare_end);
		fn(ctx, c->spare_port);
		fn(ctx, c->lo_fd);
		fn(ctx, c->lo6_fd);
		fn(ctx, c->lo_held);
	}
	us_ports_each_fd(fn, ctx);
	fn(ctx, us_st.pair_ready ? us_st.pair_lfd : -1);
	fn(ctx, us_st.link.fd);
	fn(ctx, us_st.link.arp_fd);
	fn(ctx, us_steer_fd());
	fn(ctx, us_st.wake_fd);
	fn(ctx, us_st.parent_wake_fd);
	fn(ctx, us_st.hup_fd);
	fn(ctx, us_st.close_log_fd);
	fn(ctx, us_st.ctl_fd);
	fn(ctx, us_st.link.pcap.f ? fileno(us_st.link.pcap.f) : -1);
	fn(ctx, ust_log_fd());
	fn(ctx, us_region_fd());
	for (unsigned i = 0; i < us_st.n_own_fds; i++)
		fn(ctx, us_st.own_fds[i]);
	if (with_broker && broker && *broker)
		fn(ctx, atoi(broker));
}

/* The stack's fds as one bit each, up to the highest. */
struct fd_bits {
	uint64_t *bits;
	int max;
};

static void note_max(void *ctx, int fd)
{
	struct fd_bits *b = ctx;

	if (fd > b->max)
		b->max = fd;
}

static void mark(void *ctx, int fd)
{
	struct fd_bits *b = ctx;

	if (fd >= 0 && fd <= b->max)
		b->bits[fd / 64] |= 1ull << (fd % 64);
}

int us_close_all_but_stack(unsigned first, unsigned last, bool keep_broker)
{
	struct fd_bits b = { NULL, -1 };
	unsigned run = first; /* the first fd of the run not yet closed */

	each_stack_fd(note_max, &b, keep_broker);
	if (b.max >= 0 && !(b.bits = calloc((size_t)b.max / 64 + 1, sizeof(uint64_t))))
		return -ENOMEM;
	each_stack_fd(mark, &b, keep_broker);
	/* One close_range per gap between the stack's fds: as many calls as
	 * the stack has fds in the range, whatever the fd limit. */
	for (unsigned fd = first; fd <= last && b.max >= 0 && fd <= (unsigned)b.max; fd++) {
		if (!(b.bits[fd / 64] >> (fd % 64) & 1))
			continue;
		if (run < fd)
			syscall(SYS_close_range, run, fd - 1, 0);
		run = fd + 1;
	}
	if (run <= last) /* nothing of the stack's is left in it */
		syscall(SYS_close_range, run, last, 0);
	free(b.bits);
	return 0;
}

static void op_close_range(struct us_call *c)
{
	c->ret = us_close_all_but_stack(c->u.range.first, c->u.range.last, true);
}

int us_stack_close_range(unsigned first, unsigned last)
{
	struct us_call c;

	c.u.range.first = first;
	c.u.range.last = last;
	return (int)us_call(&c, op_close_range, NULL);
}

/* In the keeper: everything the program had open goes, except what the
 * stack needs (a test runner's pipes must see their end). Standard fds stay
 * valid for anything that writes to them. */
static void keeper_close_fds(void)
{
	int null;

	us_close_all_but_stack(0, ~0u, false);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd < 3 && null >= 0; fd++)
		REAL(dup2)(null, fd);
	if (null > 2)
		REAL(close)(null);
}

/* The child side of the hand-over: this thread, alone in a new process,
 * goes on running the loop until every connection is CLOSED. */
static void become_keeper(void)
{
	sigset_t term;

	us_st.keeper = true;
	us_st.pid = getpid();
	setsid(); /* out of the program's session: its terminal's signals are not ours */
	/* SIGTERM ends a keeper: its default action, not the program's
	 * handler, which the fork copied (nginx's only sets a flag, and the
	 * keeper would outlive every SIGTERM). */
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	REAL(sigaction)(SIGTERM, &dfl, NULL);
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_UNBLOCK, &term, NULL);
	us_ctl_close(true); /* the program's: it removes it */
	keeper_close_fds();
	for (struct us_conn *c = us_st.all; c; c = c->all_next)
		c->sock->owner = us_st.pid; /* forked children see who serves them */
	ev_loop_fork(us_st.ev);
	us_ctl_open();
	us_keeper_filter();
	ust_log(UST_LOG_INFO, "exit keeper %d finishes the connections of the program", (int)getpid());
}

void us_keeper_exit(void)
{
	if (us_st.ctl_path[0])
		unlink(us_st.ctl_path);
	ust_pcap_flush(&us_st.link.pcap);
	_exit(0);
}

/* Hands every connection to a keeper: fork from this thread (the child is
 * a copy of the stack at this instant, with this thread as its only one)
 * and stop serving here. Returns 0 if nothing needs a keeper. */
static int hand_over(void)
{
	pid_t pid;

	us_relay_sync(&us_st);
	if (!work_left())
		return 0;
	ust_stack_flush(&us_st.st);
	ust_pcap_flush(&us_st.link.pcap);
	us_st.forking_keeper = true;
	pid = fork();
	us_st.forking_keeper = false;
	if (pid < 0) {
		ust_log(UST_LOG_ERROR, "no exit keeper (fork: %s): connections die with the process",
			strerror(errno));
		return -errno;
	}
	if (pid == 0) {
		become_keeper();
		return 1;
	}
	us_st.handed_over = true;
	ust_loop_break(&us_st.loop);
	return 1;
}

static void op_hand_over(struct us_call *c)
{
	c->ret = hand_over();
}

/* ---- the packet socket's last close, after the program ---- */

/* Dropping the last reference to a packet socket waits for an RCU grace
 * period (packet_release() calls synchronize_net()): 10 to 30 ms on this
 * kind of machine, which the kernel would spend inside the program's exit,
 * before its parent sees it end (a one-shot curl took twice the kernel's
 * wall time, most of it there). When no keeper holds the socket, a closer
 * holds it instead: a clone that shares our memory (nothing is copied but
 * the fd table), keeps only the packet socket and a pidfd of the program,
 * waits until every thread of the program has exited, and then drops the
 * last reference itself. Nobody waits for it; its parent is gone by then. */
static struct {
	/* The packet socket, and a steered stack's ARP socket and channel
	 * to the broker (the broker lets the member go when no process
	 * holds the channel: the closer holds it with the socket), sorted
	 * with the pidfd; -1 for none. */
	int keep[4];
	int pidfd, chan;
	char stack[16384] __attribute__((aligned(16)));
} closer;

/* The closer's whole life. Only system calls: it shares the program's
 * memory, and the program's threads run on until they exit. Every signal
 * is blocked (inherited from the stack thread), so ppoll ends only when
 * the program is gone. */
static int closer_main(void *arg)
{
	struct pollfd p = { .fd = closer.pidfd, .events = POLLIN };
	int from = 0;

	syscall(SYS_prctl, PR_SET_NAME, "ustcp-closer", 0, 0, 0);
	/* The program's other files are not ours to hold: a reader of its
	 * output waits for the last writer to close. */
	for (unsigned i = 0; i < 4; i++) {
		if (closer.keep[i] < 0)
			continue;
		if (closer.keep[i] > from)
			syscall(SYS_close_range, from, closer.keep[i] - 1, 0);
		from = closer.keep[i] + 1;
	}
	syscall(SYS_close_range, from, ~0u, 0);
	syscall(SYS_ppoll, &p, 1, NULL, NULL, 0);
	/* The channel last: its hang-up tells the broker that no process
	 * holds the packet socket any more. */
	for (unsigned i = 0; i < 4; i++)
		if (closer.keep[i] >= 0 && closer.keep[i] != closer.pidfd && closer.keep[i] != closer.chan)
			syscall(SYS_close, closer.keep[i]);
	if (closer.chan >= 0)
		syscall(SYS_close, closer.chan);
	syscall(SYS_exit, 0);
	return 0;
}

/* Starts the closer, if the link is ours alone (no keeper) and this is
 * the program's exit. Without pidfds (Linux < 5.3) the exit waits, as
 * before. */
static void close_link_after_exit(void)
{
	static bool started; /* an atexit handler after ours may call _exit */
	int pidfd;

	if (started)
		return;
	pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (pidfd < 0)
		return;
	started = true;
	closer.pidfd = pidfd;
	closer.keep[0] = us_st.link.fd;
	closer.keep[1] = us_st.link.arp_fd;
	closer.keep[2] = closer.chan = us_steer_fd();
	closer.keep[3] = pidfd;
	for (unsigned i = 1; i < 4; i++) /* sorted, -1s first */
		for (unsigned j = i; j > 0 && closer.keep[j - 1] > closer.keep[j]; j--) {
			int t = closer.keep[j];
			closer.keep[j] = closer.keep[j - 1];
			closer.keep[j - 1] = t;
		}
	/* No exit signal: the program is not told, and wait() does not see
	 * it. */
	if (clone(closer_main, closer.stack + sizeof(closer.stack), CLONE_VM | CLONE_UNTRACED, NULL) < 0)
		ust_log(UST_LOG_DEBUG, "no closer (clone: %s): the exit waits for the packet socket", strerror(errno));
	REAL(close)(pidfd);
}

/* The program exits: the connections go to a keeper, or, with none left,
 * the packet socket to a closer. */
static void op_exit(struct us_call *c)
{
	c->ret = hand_over();
	if (c->ret <= 0)
		close_link_after_exit();
}

/* Once a second. A keeper exits when its work is done or its interface
 * is gone, and narrows its filter to the ports left (kfilter.c). A
 * program whose threads all ended (pthread_exit in main) would be kept
 * alive by this thread alone: hand over and exit as glibc would. */
void us_on_tick(struct ev_loop *ev, ev_timer *w, int revents)
{
	if (us_st.keeper) {
		if (!work_left() || !if_nametoindex(us_st.link.ifname))
			us_keeper_exit();
		us_keeper_filter();
		return;
	}
	if (only_us_left()) {
		hand_over();
		if (!us_st.keeper)
			exit(0);
	}
}

/* At exit (return from main, exit()): the connections go to a keeper and
 * the process exits at once, as it would on the kernel's TCP. */
void us_at_exit(void)
{
	struct us_call c;

	if (us_st.pid != getpid() || !us_st.ev || us_st.keeper || us_st.handed_over)
		return;
	us_call(&c, op_exit, NULL);
	if (us_st.ctl_path[0])
		unlink(us_st.ctl_path);
}

/* ---- exec, _exit (shim/exec.c, shim/exit.c) ---- */

/* exec ends the stack thread with the old image, and _exit skips atexit:
 * either way the connections go to a keeper first. (exec keeps its wait
 * for the packet socket: the closer knows when a process is gone, not when
 * its exec has closed the socket.) */
void us_stack_hand_over(void)
{
	struct us_call c;

	if (us_st.pid == getpid() && us_st.ev && !us_st.keeper && !us_st.handed_over)
		us_call(&c, op_hand_over, NULL);
}

void us_stack_exit(void)
{
	struct us_call c;

	if (us_st.pid == getpid() && us_st.ev && !us_st.keeper && !us_st.handed_over)
		us_call(&c, op_exit, NULL);
}

/* After a failed exec the process goes on without its old stack (a keeper
 * has the connections): a socket it opens starts a new one. */
void us_stack_exec_failed(void)
{
	if (us_st.handed_over)
		us_stack_forget();
}
