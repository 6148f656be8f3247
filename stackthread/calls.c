/* The calls program threads make to the stack thread: a lock-free queue
 * (a stack of struct us_call, reversed when served), an eventfd that wakes
 * the thread, and a futex each caller waits on. */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <linux/futex.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "stack_impl.h"

/* What a poke adds to the wake-up eventfd, where each call adds 1: the sum
 * read tells whether a poke (an accept, a close) came. */
#define US_POKE (1ull << 32)

/* ---- calls from another process (us_sock.rpc) ----
 *
 * A socket inherited across fork (a pre-forked server's workers) is served
 * by the stack of the process that made it, or its keeper (us_sock.owner).
 * Linux lets every holder set options on it, shut it down, read its
 * options: such a call goes by value into the socket's slot, which all the
 * processes map, and the owner is poked through the wake-up eventfd the
 * fork left us (parent_wake_fd). Only calls whose arguments and results
 * are all in union us_call_args go: by index, never by pointer (an exec'd
 * image's functions are elsewhere). */
static const us_call_fn rpc_ops[] = {
	us_op_setopt, us_op_getopt, us_op_shutdown, us_op_hold_last, us_op_take_tail,
	us_op_unlisten, us_op_urgent, us_op_status_to_slot, us_op_set_cc, us_op_get_cc, us_op_hand_on,
	us_op_cc_info,
	us_op_ts_clock,
	us_op_md5, us_op_md5_key,
};

static int rpc_op_of(us_call_fn fn)
{
	for (int i = 0; i < (int)(sizeof(rpc_ops) / sizeof(rpc_ops[0])); i++)
		if (rpc_ops[i] == fn)
			return i;
	return -1;
}

/* The region is MAP_SHARED across processes: not a private futex. */
static void rpc_wait(_Atomic uint32_t *w, uint32_t val, long ns)
{
	struct timespec ts = { 0, ns };

	syscall(SYS_futex, w, FUTEX_WAIT, val, &ts, NULL, 0);
}

static void rpc_wake(_Atomic uint32_t *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* The owner serves within a wake-up; a dead owner (no keeper) or one that
 * does not answer in RPC_PATIENCE leaves the call unanswered: EOPNOTSUPP,
 * as before calls went across. */
#define RPC_PATIENCE_MS 2000

static long rpc_call(struct us_call *c, int op, struct us_sock *s)
{
	uint64_t poke = US_POKE;
	uint32_t v = US_RPC_IDLE;
	_Atomic unsigned *asked = us_rpc_asked_of(s);
	int waited = 0;

	/* One call at a time per socket: the other threads' wait. */
	while (!atomic_compare_exchange_weak(&s->rpc, &v, US_RPC_CLAIMED)) {
		if (v != US_RPC_IDLE)
			rpc_wait(&s->rpc, v, 10 * 1000 * 1000);
		v = US_RPC_IDLE;
	}
	s->rpc_op = op;
	s->rpc_args = c->u;
	atomic_fetch_add(asked, 1);
	atomic_store(&s->rpc, US_RPC_ASKED);
	if (!us_foreign_poke(s) && REAL(write)(us_st.parent_wake_fd, &poke, sizeof(poke)) < 0) {
		/* saturated: the owner is awake anyway */
	}
	while ((v = atomic_load(&s->rpc)) != US_RPC_DONE) {
		rpc_wait(&s->rpc, v, 50 * 1000 * 1000);
		waited += 50;
		if (v == US_RPC_ASKED && (waited >= RPC_PATIENCE_MS || kill(s->owner, 0) < 0)) {
			uint32_t want = US_RPC_ASKED;
			if (atomic_compare_exchange_strong(&s->rpc, &want, US_RPC_IDLE)) {
				atomic_fetch_sub(asked, 1);
				rpc_wake(&s->rpc);
				return -EOPNOTSUPP;
			}
		}
	}
	c->u = s->rpc_args;
	c->ret = s->rpc_ret;
	atomic_store(&s->rpc, US_RPC_IDLE);
	rpc_wake(&s->rpc);
	return c->ret;
}

/* On the owner's stack thread, when poked: the calls asked of sockets it
 * serves. A walk over the slots in use, only while some call waits. */
static void rpc_serve(void)
{
	_Atomic unsigned *asked = us_rpc_asked();

	if (!asked || atomic_load(asked) == 0)
		return;
	for (unsigned i = 0, n = us_sock_hwm(); i < n; i++) {
		struct us_sock *s = us_sock_at(i);
		uint32_t want = US_RPC_ASKED;
		struct us_call c = { .st = &us_st, .sock = s };

		if (s->owner != us_st.pid || atomic_load(&s->rpc) != US_RPC_ASKED ||
		    !atomic_compare_exchange_strong(&s->rpc, &want, US_RPC_SERVING))
			continue;
		atomic_fetch_sub(asked, 1);
		c.u = s->rpc_args;
		if (s->rpc_op >= 0 && s->rpc_op < (int)(sizeof(rpc_ops) / sizeof(rpc_ops[0])))
			rpc_ops[s->rpc_op](&c);
		else
			c.ret = -EOPNOTSUPP;
		s->rpc_args = c.u;
		s->rpc_ret = c.ret;
		atomic_store(&s->rpc, US_RPC_DONE);
		rpc_wake(&s->rpc);
	}
}

long us_status(struct us_sock *s, struct ust_tcp_status *out)
{
	struct us_call c;
	long r;

	if (!us_sock_remote(s)) {
		c.u.out = out;
		return us_call(&c, us_op_status, s);
	}
	r = us_call(&c, us_op_status_to_slot, s);
	if (r < 0)
		return r;
	if (c.u.opt.val == 1) {
		us_last_read(us_sock_last(s), out);
		/* TCP may have closed it since; then `last` is final. */
		if (!(atomic_load(&s->flags) & US_F_LAST_STATUS))
			return 0;
	}
	us_status_from_last(s, out, ust_now());
	return 0;
}

/* Serves the program's calls queued so far; returns how many. */
static unsigned run_calls(void)
{
	struct us_call *list = atomic_exchange(&us_st.calls, NULL), *rev = NULL;
	unsigned served = 0;

	/* The sockets made before these calls were, first: a call on one
	 * needs its relay. Taken after the calls, so that every socket a
	 * call names is in (us_sock_create pushed it before socket()
	 * returned). A keeper adopts none: they belong to threads that are
	 * not here. */
	if (!us_st.keeper)
		us_adopt_news(&us_st);
	atomic_store_explicit(&us_st.nconns_seen, ust_tcp_socket_count(&us_st.tcp), memory_order_relaxed);
	/* The queue is a stack: reverse it to serve in arrival order. */
	while (list) {
		struct us_call *next = list->next;
		list->next = rev;
		rev = list;
		list = next;
	}
	while (rev) {
		struct us_call *c = rev;
		rev = rev->next;
		/* In a keeper just forked from this batch, the calls after the
		 * hand-over belong to threads that are not here. */
		if (us_st.keeper)
			continue;
		c->fn(c);
		served++;
		/* A keeper serves our connections now (or nothing is left
		 * before an exec): not one more event may be taken here (a
		 * hang-up read by us would be lost to it). The guardian
		 * leaves; the program's image goes on to its exec. Decided
		 * before the caller wakes: after an exec that failed, it
		 * forgets this stack (us_stack_forget) while we leave. */
		bool leave = us_st.handed_over;
		atomic_store(&c->done, 1);
		syscall(SYS_futex, &c->done, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
		if (leave)
			us_guardian_leave();
	}
	return served;
}

void us_on_wake(struct ev_loop *ev, ev_io *w, int revents)
{
	uint64_t v = 0;

	if (REAL(read)(us_st.wake_fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: another wake-up took it */
	}
	/* The program's calls come in bursts: look for the next before
	 * sleeping (ust_loop_run). Not for pokes alone. */
	if (run_calls())
		us_st.loop.linger = true;
	if (v >= US_POKE && !us_st.handed_over)
		rpc_serve();
	/* Listeners an accept() may have unblocked; with a poke, relays whose
	 * program closed them. */
	us_relay_wake(&us_st, v >= US_POKE);
	ust_loop_kick(&us_st.loop, ust_now());
}

/* A datagram on the wake-up name (us_wake_addr): a process that holds one
 * of our sockets without sharing our eventfd (it came with SCM_RIGHTS)
 * asks a call of it, accepted a connection, or closed it; served as the
 * eventfd's poke. The name is abstract, so anyone in the network
 * namespace may send to it: only a poke from our user or root (the
 * kernel's SCM_CREDENTIALS, SO_PASSCRED) makes us serve; others are read,
 * dropped and counted as the control socket's strangers are
 * (ctl-refused), so a flood costs a read per datagram and nothing more. */
void us_on_wake_name(struct ev_loop *ev, ev_io *w, int revents)
{
	char b[16], cbuf[CMSG_SPACE(sizeof(struct ucred))];
	uid_t self = geteuid();
	bool ours = false;
	int n = 0;

	while (n++ < 64) {
		struct iovec iov = { b, sizeof(b) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				    .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *cm;
		bool ok = false;

		if (REAL(recvmsg)(us_st.wake_name_fd, &m, MSG_DONTWAIT) < 0)
			break;
		for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
			struct ucred cr;

			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_CREDENTIALS ||
			    cm->cmsg_len < CMSG_LEN(sizeof(cr)))
				continue;
			memcpy(&cr, CMSG_DATA(cm), sizeof(cr));
			ok = us_uid_trusted(cr.uid, self);
		}
		if (ok)
			ours = true;
		else
			us_st.st.ctr.event[UST_EV_CTL_REFUSED]++;
	}
	if (us_st.handed_over || !ours)
		return;
	rpc_serve();
	us_relay_wake(&us_st, true);
	ust_loop_kick(&us_st.loop, ust_now());
}

void us_sock_poke_owner(const struct us_sock *s)
{
	if (!us_foreign_poke(s))
		us_stack_poke();
}

void us_stack_poke(void)
{
	uint64_t poke = US_POKE;

	/* Our stack, and the one of the process we were forked from (it may
	 * serve the listener we accepted on). Saturated counters mean the
	 * thread is awake anyway. */
	if (us_st.ev && REAL(write)(us_st.wake_fd, &poke, sizeof(poke)) < 0) {
	}
	if (us_st.parent_wake_fd >= 0 && REAL(write)(us_st.parent_wake_fd, &poke, sizeof(poke)) < 0) {
	}
}

/* me: the caller's process id, asked once per call (getpid() is a system
 * call, 2.7 us each on the guest issue 18 is measured on). Not cached: a
 * vfork child shares our memory and would read the parent's id from any
 * cache, and then act on the parent's sockets when it closes an fd. */
static bool sock_remote(const struct us_sock *s, pid_t me)
{
	return s->owner && s->owner != me && s->owner != us_st.pid;
}

bool us_sock_remote(const struct us_sock *s)
{
	return sock_remote(s, getpid());
}

/* How long a caller looks for the stack thread's answer before it sleeps
 * on the futex (issue 18): the thread wakes, serves the call (a connect's
 * SYN and the peer's answer on a host's veth included) and answers within
 * tens of microseconds, and a caller that slept pays a wake-up of its own
 * on top, as long again between two CPUs. */
#define CALL_SPIN_US 60

static void call_spin(struct us_call *c)
{
	ust_time end;

	/* Not where this thread has one CPU: the stack thread needs it. */
	if (!ust_may_spin())
		return;
	end = ust_now() + CALL_SPIN_US;
	while (!atomic_load_explicit(&c->done, memory_order_acquire) && ust_now() < end)
		sched_yield(); /* as the reads' spin (shim/io.c) */
}

long us_call(struct us_call *c, us_call_fn fn, struct us_sock *s)
{
	uint64_t one = 1;
	pid_t me;

	c->fn = fn;
	c->st = &us_st;
	c->sock = s;
	c->ret = 0;
	atomic_store(&c->done, 0);
	if (us_on_stack_thread()) {
		fn(c);
		return c->ret;
	}
	me = getpid();
	if (s && sock_remote(s, me)) {
		/* Served by another process's stack: by value, if it can go. */
		int op = rpc_op_of(fn);
		if (op < 0 || (!us_sock_foreign(s) && (us_st.parent_wake_fd < 0 || !us_rpc_asked())))
			return -EOPNOTSUPP;
		return rpc_call(c, op, s);
	}
	if (us_st.pid != me || us_st.handed_over || (s && s->owner && s->owner != us_st.pid))
		return -EOPNOTSUPP; /* served by another process's stack */
	c->next = atomic_load(&us_st.calls);
	while (!atomic_compare_exchange_weak(&us_st.calls, &c->next, c))
		;
	if (REAL(write)(us_st.wake_fd, &one, sizeof(one)) < 0) {
		/* the counter is saturated: the thread is awake anyway */
	}
	call_spin(c);
	while (!atomic_load(&c->done))
		syscall(SYS_futex, &c->done, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	return c->ret;
}

/* Sockets made without a round trip that may wait unadopted before
 * socket() wakes the stack thread: each holds two spare fds until then. */
#define NEWS_WAKE 16

/* Connections the engine may make between two looks at its count (the SYNs
 * of one receive batch, accepted children): this near the ceiling,
 * socket() asks the stack thread, which knows. */
#define NEWS_MARGIN 256

/* May socket() make the app end on this thread? Not before the stack has
 * its pairing listener (the first socket makes it), not on the stack
 * thread or in a process the stack is not serving, not near the ceiling. */
static bool create_here(struct us_stack *st)
{
	unsigned max = st->tcp.cfg.max_conns;

	if (!st->pair_ready || st->pid != getpid() || st->handed_over || st->keeper || us_on_stack_thread())
		return false;
	return !max || atomic_load(&st->nconns_seen) + atomic_load(&st->news_waiting) + NEWS_MARGIN < max;
}

long us_sock_create(struct us_sock *s, int family, int v6only)
{
	struct us_stack *st = &us_st;
	struct us_call c;
	struct stat sb;
	uint64_t one = 1;
	int app;

	/* A refusal (no fds) is the stack thread's to make and count. */
	if (!create_here(st) || us_app_end_fds(&app, &s->new_spare_end, &s->new_spare_port, &sb) < 0) {
		c.u.create.app_fd = -1;
		c.u.create.family = family;
		c.u.create.v6only = v6only;
		return us_call(&c, us_op_create, s);
	}
	/* Read by adopt() for the control block, and by the shim's calls. */
	atomic_store(&s->family, family == AF_INET6 ? AF_INET6 : AF_INET);
	atomic_store(&s->v6only, family == AF_INET6 && v6only);
	s->owner = st->pid;
	s->app_dev = sb.st_dev;
	s->app_ino = sb.st_ino;
	s->app_fd = -1; /* the caller sets it */
	/* Every call made after this returns is served after the adoption:
	 * run_calls adopts first (us_adopt_news). */
	s->new_next = atomic_load(&st->news);
	while (!atomic_compare_exchange_weak(&st->news, &s->new_next, s))
		;
	if (atomic_fetch_add(&st->news_waiting, 1) + 1 >= NEWS_WAKE &&
	    REAL(write)(st->wake_fd, &one, sizeof(one)) < 0) {
		/* saturated: the thread is awake anyway */
	}
	return app;
}

static void op_nothing(struct us_call *c)
{
	c->ret = 0;
}

void us_news_flush(void)
{
	struct us_call c;

	if (atomic_load(&us_st.news) && us_st.pid == getpid() && !us_st.handed_over)
		us_call(&c, op_nothing, NULL);
}

void us_news_forget(void)
{
	struct us_sock *s = atomic_exchange(&us_st.news, NULL);

	for (; s; s = s->new_next) {
		us_spare_use(&s->new_spare_end);
		us_spare_use(&s->new_spare_port);
	}
	atomic_store(&us_st.news_waiting, 0);
}

/* A refusal the shim saw (no slot, no fd for an accepted connection) is
 * counted with the stack's own counters, on the stack thread that owns
 * them. */
static void op_count(struct us_call *c)
{
	if (c->u.opt.val >= 0 && c->u.opt.val < UST_EVENT_MAX)
		c->st->st.ctr.event[c->u.opt.val]++;
}

void us_count(int event)
{
	struct us_call c;

	c.u.opt.val = event;
	us_call(&c, op_count, NULL);
}

/* TCP_MD5SIG's keys, read one by one from the stack that serves s. */
void us_md5_keys_to_sock(struct us_sock *s, struct us_sock *to)
{
	struct us_call c;

	if (!(atomic_load(&s->flags) & US_F_MD5))
		return;
	atomic_fetch_or(&to->flags, US_F_MD5);
	for (c.u.md5.at = 0; us_call(&c, us_op_md5_key, s) == 0; c.u.md5.at++) {
		struct us_call set = { .u.md5.key = c.u.md5.key };
		us_call(&set, us_op_md5, to);
	}
}

void us_md5_keys_to_kernel(struct us_sock *s, int fd)
{
	struct us_call c;

	if (!(atomic_load(&s->flags) & US_F_MD5))
		return;
	for (c.u.md5.at = 0; us_call(&c, us_op_md5_key, s) == 0; c.u.md5.at++)
		us_md5_kernel(fd, &c.u.md5.key);
}
