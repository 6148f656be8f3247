/* The exit keeper: connections outlive the process that made them, as in
 * the kernel. At exit, before exec or _exit, or when only the stack thread
 * is left, the stack thread forks an exit keeper that finishes them. */
#include <dirent.h>
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

/* The fds a keeper keeps, one bit each below nfds: marked in one pass over
 * the relays and the ports, so that deciding for each open fd is one read
 * (with 100,000 connections, asking the relays for every fd was 10^10). */
struct fd_set_bits {
	uint64_t *bits;
	unsigned nfds;
};

static void keep_fd(void *ctx, int fd)
{
	struct fd_set_bits *k = ctx;

	if (fd >= 0 && (unsigned)fd < k->nfds)
		k->bits[fd / 64] |= 1ull << (fd % 64);
}

static bool kept(const struct fd_set_bits *k, int fd)
{
	return fd >= 0 && (unsigned)fd < k->nfds && (k->bits[fd / 64] >> (fd % 64) & 1);
}

/* In the keeper: everything the program had open goes, except what the
 * stack needs (a test runner's pipes must see their end). */
static void keeper_close_fds(void)
{
	int keep[16 + 8], nkeep = 0, null;
	struct fd_set_bits stack_fds = { NULL, 0 };
	struct rlimit rl;
	DIR *d;
	struct dirent *e;

	/* Every fd is below the soft limit (or was opened under a higher
	 * one: those few are asked about one by one below). */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		stack_fds.nfds = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > US_MAX_SOCKS ? US_MAX_SOCKS
											  : (unsigned)rl.rlim_cur;
	stack_fds.bits = calloc(stack_fds.nfds / 64 + 1, sizeof(uint64_t));
	if (!stack_fds.bits)
		stack_fds.nfds = 0;
	for (struct us_conn *c = us_st.all; c; c = c->all_next)
		keep_fd(&stack_fds, c->sfd);
	us_ports_each_fd(keep_fd, &stack_fds);

	keep[nkeep++] = us_st.link.fd;
	keep[nkeep++] = us_st.wake_fd;
	keep[nkeep++] = us_st.hup_fd;
	keep[nkeep++] = us_st.close_log_fd;
	keep[nkeep++] = us_st.link.pcap.f ? fileno(us_st.link.pcap.f) : -1;
	keep[nkeep++] = ust_log_fd();
	for (unsigned i = 0; i < us_st.n_own_fds; i++)
		keep[nkeep++] = us_st.own_fds[i];
	d = opendir("/proc/self/fd");
	if (!d)
		return;
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name), k;
		bool ours = fd == dirfd(d) || e->d_name[0] == '.';
		for (k = 0; k < nkeep && !ours; k++)
			ours = keep[k] == fd;
		ours = ours || kept(&stack_fds, fd);
		if (!ours && (unsigned)fd >= stack_fds.nfds) {
			for (struct us_conn *c = us_st.all; c && !ours; c = c->all_next)
				ours = c->sfd == fd;
			ours = ours || us_port_holds_fd(fd);
		}
		if (!ours)
			REAL(close)(fd);
	}
	closedir(d);
	free(stack_fds.bits);
	/* Standard fds stay valid for anything that writes to them. */
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
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_UNBLOCK, &term, NULL);
	us_ctl_close(true); /* the program's: it removes it */
	keeper_close_fds();
	for (struct us_conn *c = us_st.all; c; c = c->all_next)
		c->sock->owner = us_st.pid; /* forked children see who serves them */
	ev_loop_fork(us_st.ev);
	us_ctl_open();
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
	int link, pidfd;
	char stack[16384] __attribute__((aligned(16)));
} closer;

/* The closer's whole life. Only system calls: it shares the program's
 * memory, and the program's threads run on until they exit. Every signal
 * is blocked (inherited from the stack thread), so ppoll ends only when
 * the program is gone. */
static int closer_main(void *arg)
{
	struct pollfd p = { .fd = closer.pidfd, .events = POLLIN };
	int lo = closer.link < closer.pidfd ? closer.link : closer.pidfd;
	int hi = closer.link < closer.pidfd ? closer.pidfd : closer.link;

	syscall(SYS_prctl, PR_SET_NAME, "ustcp-closer", 0, 0, 0);
	/* The program's other files are not ours to hold: a reader of its
	 * output waits for the last writer to close. */
	if (lo > 0)
		syscall(SYS_close_range, 0, lo - 1, 0);
	if (hi > lo + 1)
		syscall(SYS_close_range, lo + 1, hi - 1, 0);
	syscall(SYS_close_range, hi + 1, ~0u, 0);
	syscall(SYS_ppoll, &p, 1, NULL, NULL, 0);
	syscall(SYS_close, closer.link);
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
	closer.link = us_st.link.fd;
	closer.pidfd = pidfd;
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
 * is gone. A program whose threads all ended (pthread_exit in main) would
 * be kept alive by this thread alone: hand over and exit as glibc would. */
void us_on_tick(struct ev_loop *ev, ev_timer *w, int revents)
{
	if (us_st.keeper) {
		if (!work_left() || !if_nametoindex(us_st.link.ifname))
			us_keeper_exit();
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
