/* The calls program threads make to the stack thread: a lock-free queue
 * (a stack of struct us_call, reversed when served), an eventfd that wakes
 * the thread, and a futex each caller waits on. */
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "stack_impl.h"

/* What a poke adds to the wake-up eventfd, where each call adds 1: the sum
 * read tells whether a poke (an accept, a close) came. */
#define US_POKE (1ull << 32)

static void run_calls(void)
{
	struct us_call *list = atomic_exchange(&us_st.calls, NULL), *rev = NULL;

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
		atomic_store(&c->done, 1);
		syscall(SYS_futex, &c->done, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
		/* A keeper serves our connections now: not one more event may
		 * be taken here (a hang-up read by us would be lost to it)
		 * while the process finishes exiting or exec'ing. */
		while (us_st.handed_over)
			pause();
	}
}

void us_on_wake(struct ev_loop *ev, ev_io *w, int revents)
{
	uint64_t v = 0;

	if (REAL(read)(us_st.wake_fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: another wake-up took it */
	}
	run_calls();
	/* Listeners an accept() may have unblocked; with a poke, relays whose
	 * program closed them. */
	us_relay_wake(&us_st, v >= US_POKE);
	ust_loop_kick(&us_st.loop, ust_now());
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

long us_call(struct us_call *c, us_call_fn fn, struct us_sock *s)
{
	uint64_t one = 1;

	c->fn = fn;
	c->st = &us_st;
	c->sock = s;
	c->ret = 0;
	atomic_store(&c->done, 0);
	if (us_on_stack_thread()) {
		fn(c);
		return c->ret;
	}
	if (us_st.pid != getpid() || us_st.handed_over || (s && s->owner && s->owner != us_st.pid))
		return -EOPNOTSUPP; /* served by another process's stack */
	c->next = atomic_load(&us_st.calls);
	while (!atomic_compare_exchange_weak(&us_st.calls, &c->next, c))
		;
	if (REAL(write)(us_st.wake_fd, &one, sizeof(one)) < 0) {
		/* the counter is saturated: the thread is awake anyway */
	}
	while (!atomic_load(&c->done))
		syscall(SYS_futex, &c->done, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	return c->ret;
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
