/* The keeper: connections outlive the program that made them, as in the
 * kernel. The guardian (start.c) runs the stack apart from the program's
 * thread group; when the program is gone, however it ended (exit, _exit,
 * a signal, a crash), the guardian becomes the keeper that finishes its
 * connections. Before an exec, the guardian forks a keeper instead (the
 * new image keeps the pid). */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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

/* Is the parked stack thread all that is left of the program? After
 * pthread_exit in main the leader stays a zombie (and counted) until the
 * last thread ends. */
static bool only_parked_left(void)
{
	char path[64], state;
	int threads, leader_threads;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)us_st.program, (int)us_st.program);
	if (stat_fields(path, &state, &leader_threads) < 0 || state != 'Z')
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)us_st.program);
	return stat_fields(path, &state, &threads) == 0 && threads == 2;
}


/* A listener let half-open children go a moment ago: their late
 * segments are to be answered a while (us_stack.answer_until). */
static bool answering(void)
{
	return ust_now() < us_st.answer_until;
}

/* Anything left that TCP must finish: a connection not yet CLOSED, or a
 * socket some other process (a forked child) still holds. */
static bool tcp_work_left(void)
{
	return ust_tcp_count(&us_st.tcp) || us_st.nrelays;
}

/* What keeps a keeper (or the guardian of a program that is gone): the
 * above, or late segments to answer. */
static bool work_left(void)
{
	return tcp_work_left() || answering();
}

static void tw_only(struct ust_tcb *t, void *arg)
{
	bool *only = arg;

	*only &= ust_tcp_get_state(t) == UST_TCP_TIME_WAIT;
}

static bool holds_exec_kept(void);

bool us_keeper_tw_only(void)
{
	bool only = ust_tcp_count(&us_st.tcp) != 0;

	if (!us_st.keeper || us_st.nrelays || us_st.program_fd >= 0 || holds_exec_kept() || answering())
		return false;
	ust_tcp_each(&us_st.tcp, tw_only, &only);
	return only;
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
	us_steer_each_fd(fn, ctx);
	us_looped_each_fd(fn, ctx);
	fn(ctx, us_st.wake_fd);
	fn(ctx, us_st.parent_wake_fd);
	fn(ctx, us_st.wake_name_fd);
	fn(ctx, us_st.hup_fd);
	fn(ctx, us_st.io_fd);
	fn(ctx, us_st.program_fd);
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

struct holds {
	int fd;
	bool found;
};

static void holds_one(void *ctx, int fd)
{
	struct holds *h = ctx;

	h->found |= fd == h->fd;
}

static long close_unmarked(int fd)
{
	us_fd_unmark(fd);
	return REAL(close)(fd) == 0 ? 0 : -errno;
}

static void op_close_marked(struct us_call *c)
{
	struct holds h = { .fd = (int)c->u.range.first };

	each_stack_fd(holds_one, &h, true);
	/* Not held: the stack closed it since (the mark is only a hint). */
	c->ret = h.found ? -EBADF : close_unmarked(h.fd);
}

long us_stack_close_marked(int fd)
{
	struct us_call c;
	long r;

	if (us_on_stack_thread())
		return close_unmarked(fd);
	c.u.range.first = (unsigned)fd;
	r = us_call(&c, op_close_marked, NULL);
	if (r != -EOPNOTSUPP)
		return r;
	if (fd == us_stack_kept_fd())
		return -EBADF;
	return REAL(close)(fd) == 0 ? 0 : -errno;
}

/* In the keeper: everything the program had open goes, except what the
 * stack needs (a test runner's pipes must see their end). Standard fds stay
 * valid for anything that writes to them; stderr is the log file when
 * there is one (USTCP_LOG_FILE), so that what a keeper says as it dies (a
 * sanitizer's report, an abort's message) is not lost. */
static void keeper_close_fds(void)
{
	int null;

	us_close_all_but_stack(0, ~0u, false);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd < 3 && null >= 0; fd++)
		REAL(dup2)(fd == 2 && ust_log_fd() >= 0 ? ust_log_fd() : null, fd);
	if (null > 2)
		REAL(close)(null);
}

/* PIDFD_GET_INFO (Linux 6.13; the exit code since 6.15), for headers
 * older than that: the first version of its structure, 64 bytes. */
struct pidfd_info0 {
	uint64_t mask, cgroupid;
	uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	int32_t exit_code;
};
#define PIDFD_INFO_EXIT_ (1ull << 3)
#define PIDFD_GET_INFO_ _IOWR(0xFF, 11, struct pidfd_info0)

/* The program's wait status: from its zombie's stat (field 52) while its
 * parent has not reaped it, else from its pidfd, which keeps it once it
 * is reaped. -1 if neither says. */
static int program_status(void)
{
	struct pidfd_info0 info = { .mask = PIDFD_INFO_EXIT_ };
	char path[64], buf[1024], *p;
	int fd, field = 2;
	ssize_t len = -1;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)us_st.program);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		len = REAL(read)(fd, buf, sizeof(buf) - 1);
		REAL(close)(fd);
	}
	if (len > 0) {
		buf[len] = 0;
		for (p = strrchr(buf, ')'); p && *p && field < 52; p++)
			if (*p == ' ')
				field++;
		if (p && field == 52 && *p)
			return atoi(p);
	}
	if (us_st.program_fd >= 0 && ioctl(us_st.program_fd, PIDFD_GET_INFO_, &info) == 0 &&
	    (info.mask & PIDFD_INFO_EXIT_))
		return info.exit_code;
	return -1;
}

/* How the program ended, for the close log and the keeper's log line: a
 * signal's name; "" for an exit. */
static void note_death(void)
{
	int status = program_status();

	if (status >= 0 && WIFSIGNALED(status) && sigabbrev_np(WTERMSIG(status)))
		snprintf(us_st.death, sizeof(us_st.death), "killed by SIG%s", sigabbrev_np(WTERMSIG(status)));
}

/* Does the keeper hold a never-paired socket for the image an exec made
 * (us_relay_sync)? */
static bool holds_exec_kept(void)
{
	for (struct us_conn *c = us_st.all; c; c = c->all_next)
		if (c->exec_kept)
			return true;
	return false;
}

/* The image an exec made is gone (its pid's pidfd, or the pid itself
 * without pidfds): the never-paired sockets it did not take over or close
 * go with it, as its exit would have closed them. A process it forked
 * that still holds one finds it AF_UNIX from then on (the slot is freed);
 * its own connections are its own stack's. */
static void let_exec_kept_go(void)
{
	for (struct us_conn *c = us_st.all, *next; c; c = next) {
		next = c->all_next;
		if (c->exec_kept && c->sfd < 0)
			us_conn_release(c, false);
	}
	if (us_st.program_fd >= 0) {
		ev_io_stop(us_st.ev, &us_st.program_gone);
		REAL(close)(us_st.program_fd);
		us_st.program_fd = -1;
	}
}

/* This task, alone with the stack (the guardian once the program is gone,
 * or a keeper forked before an exec), goes on running the loop until
 * every connection is CLOSED. */
static void become_keeper(bool forked)
{
	sigset_t term;

	us_st.keeper = true;
	us_st.pid = getpid();
	if (forked)
		setsid(); /* out of the program's session: its terminal's signals are not ours */
	/* SIGTERM ends a keeper: its default action, not the program's
	 * handler, which the fork copied (nginx's only sets a flag, and the
	 * keeper would outlive every SIGTERM). */
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	REAL(sigaction)(SIGTERM, &dfl, NULL);
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_UNBLOCK, &term, NULL);
	/* After an exec the pid's pidfd tells when the new image is gone,
	 * which the sockets kept for it wait for. */
	if (us_st.program_fd >= 0 && !(forked && holds_exec_kept())) {
		ev_io_stop(us_st.ev, &us_st.program_gone);
		REAL(close)(us_st.program_fd);
		us_st.program_fd = -1;
	}
	if (!forked && us_st.ctl_path[0])
		unlink(us_st.ctl_path); /* the program's, which is gone */
	us_ctl_close(true); /* after a fork, the program's: it removes it */
	keeper_close_fds();
	for (struct us_conn *c = us_st.all; c; c = c->all_next)
		c->sock->owner = us_st.pid; /* forked children see who serves them */
	if (forked)
		ev_loop_fork(us_st.ev);
	us_ctl_open();
	us_keeper_filter();
	/* What a keeper holds it may hold for a minute (TIME-WAIT): the
	 * memory the program's flows streamed through goes back now. */
	ust_link_cool(&us_st.link);
	ust_ring_cache_off();
	ust_log(UST_LOG_INFO, "keeper %d finishes the connections of program %d%s%s", (int)getpid(),
		(int)us_st.program, us_st.death[0] ? ", " : "", us_st.death);
	us_twc_check();
}

/* The guardian's end, and a keeper's: the control socket goes, the
 * frames queued and the capture are flushed; the program's files close
 * before the packet socket (its last close waits for an RCU grace period,
 * packet_release: a reader of the program's output must not wait for
 * it), and a steered stack's channel to the broker last (its hang-up
 * tells the broker that no process holds the socket any more). */
void us_keeper_exit(void)
{
	int chan = us_steer_fd();

	if (us_st.ctl_path[0])
		unlink(us_st.ctl_path);
	us_twc_leave();
	/* The loop's after hook (us_keeper_check) runs before its flush:
	 * the last segments (a RST for unread data) go first. */
	ust_stack_flush(&us_st.st);
	ust_pcap_flush(&us_st.link.pcap);
	if (!us_st.keeper)
		us_close_all_but_stack(0, ~0u, false);
	REAL(close)(us_st.link.fd);
	if (us_st.link.arp_fd >= 0)
		REAL(close)(us_st.link.arp_fd);
	if (chan >= 0)
		REAL(close)(chan);
	_exit(0);
}

/* The program is gone: exit, _exit, a last pthread_exit, a signal, a
 * crash. Everything it wrote is in the stack ends, and the stack is
 * consistent (no turn of the loop ran in the program). The guardian
 * takes in its last writes and closes, then becomes its keeper, in this
 * one call; with nothing to finish, it leaves at once.
 *
 * This is no callback of the loop's own, which flush the frames TCP
 * queued and arm the timer it set: the kick at the end does both. Without
 * it, what the sync took in (a forked child's first bytes, written as its
 * parent died) was sent by TCP into the frame batch and stayed there, its
 * loss probe never armed: no ACK, no timer, the child blocked on a full
 * pair for good (090 "fork after connect…", about 1 run in 25 under load). */
void us_on_program_gone(struct ev_loop *ev, ev_io *w, int revents)
{
	if (us_st.keeper) {
		let_exec_kept_go();
		us_keeper_check();
		return;
	}
	if (!us_st.guardian)
		return;
	note_death();
	us_adopt_news(&us_st);
	us_fd_close_all(us_st.program);
	us_relay_sync(&us_st, false);
	if (!work_left())
		us_keeper_exit();
	become_keeper(false);
	ust_loop_kick(&us_st.loop, ust_now());
}

/* Hands every connection to a keeper before an exec: fork from the
 * guardian (the child is a copy of the stack at this instant, with the
 * loop its only task), and stop serving here: the guardian then leaves,
 * with a keeper or without (the new image has the same pid, so nothing
 * else would tell it the old one is gone). Returns 1 with a keeper, 0
 * with nothing to keep. */
static int hand_over(void)
{
	pid_t pid;

	us_relay_sync(&us_st, true);
	/* Not answering(): a keeper forked for it alone, another pid, would
	 * find the tombstones not its own and answer nothing (ports.c
	 * us_port_foreign). */
	if (!tcp_work_left()) {
		us_st.handed_over = true;
		ust_loop_break(&us_st.loop);
		return 0;
	}
	ust_stack_flush(&us_st.st);
	ust_pcap_flush(&us_st.link.pcap);
	us_st.forking_keeper = true;
	pid = fork();
	us_st.forking_keeper = false;
	if (pid < 0) {
		ust_log(UST_LOG_ERROR, "no exit keeper (fork: %s): connections die with the image",
			strerror(errno));
		return -errno;
	}
	if (pid == 0) {
		become_keeper(true);
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

/* pthread_exit in main left only the parked thread: it ends the program
 * with exit(0), as glibc's last thread does, and runs the atexit
 * handlers on the TLS the guardian borrows. Until the program is gone,
 * the guardian serves nothing (calls get EOPNOTSUPP, as after a
 * hand-over) and makes system calls only; then it adopts. */
static void leave_with_the_program(void)
{
	struct pollfd p = { .fd = us_st.program_fd, .events = POLLIN };
	struct timespec ms10 = { 0, 10 * 1000 * 1000 };

	us_st.handed_over = true;
	us_parked_exit();
	if (us_st.program_fd >= 0)
		while (syscall(SYS_ppoll, &p, 1, NULL, NULL, 0) != 1)
			;
	else
		while (syscall(SYS_getppid) == us_st.program)
			syscall(SYS_nanosleep, &ms10, NULL);
	us_st.handed_over = false;
	us_on_program_gone(us_st.ev, &us_st.program_gone, 0);
}

/* Once a second. A keeper exits when its work is done or its interface
 * is gone, and narrows its filter to the ports left (kfilter.c). The
 * guardian without a pidfd looks whether the program is gone (it has
 * another parent then); a program whose threads all ended (pthread_exit
 * in main) is kept alive by the parked thread alone. */
void us_on_tick(struct ev_loop *ev, ev_timer *w, int revents)
{
	us_dad_note(true);
	us_md5_kept_sweep(&us_st);
	if (us_st.keeper) {
		if (us_st.program_fd < 0 && holds_exec_kept() && kill(us_st.program, 0) < 0 && errno == ESRCH)
			let_exec_kept_go();
		if (!work_left() || !if_nametoindex(us_st.link.ifname))
			us_keeper_exit();
		us_keeper_filter();
		us_twc_check();
		return;
	}
	if (!us_st.guardian || us_st.handed_over)
		return;
	if (us_st.program_fd < 0 && getppid() != us_st.program)
		us_on_program_gone(ev, &us_st.program_gone, 0);
	else if (only_parked_left())
		leave_with_the_program();
}

/* ---- exec (shim/exec.c) ---- */

/* exec ends the stack thread with the old image, and the new one keeps
 * the pid: the connections go to a keeper first. (exec keeps its wait for
 * the packet socket, which is close-on-exec.) */
void us_stack_hand_over(void)
{
	struct us_call c;

	if (us_st.pid == getpid() && us_st.ev && !us_st.keeper && !us_st.handed_over)
		us_call(&c, op_hand_over, NULL);
}

/* After a failed exec the process goes on without its old stack (a keeper
 * has the connections): a socket it opens starts a new one. */
void us_stack_exec_failed(void)
{
	if (us_st.handed_over)
		us_stack_forget();
}
