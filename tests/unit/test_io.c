/* The watchers of the stack's per-connection fds (stackthread/io.c): in an
 * epoll set of their own that a libev watcher dispatches, with libev's
 * semantics. Each test drives a real set over socketpairs: a watcher runs
 * while its fd is ready in a direction it waits for; a stopped direction
 * runs nothing and the set forgets it when it next reports it; a
 * callback that stops the other direction, or forgets another watcher
 * whose report is pending in the same turn, keeps those from running. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../stackthread/stack_impl.h"

struct rig {
	struct ev_loop *ev;
	ev_io setw;
	int set;
	int a[2], b[2]; /* two socketpairs: watchers on a[0] and b[0] */
};

static int ins, outs;
static struct us_io wa, wb;
static void (*then)(struct us_io *w);

static void count_in(struct us_io *w)
{
	ins++;
	if (then)
		then(w);
}

static void count_out(struct us_io *w)
{
	(void)w;
	outs++;
}

static int setup(void **state)
{
	static struct rig r;

	r.ev = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
	r.set = epoll_create1(EPOLL_CLOEXEC);
	if (!r.ev || r.set < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, r.a) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, r.b) < 0)
		return -1;
	ev_io_init(&r.setw, us_on_io, r.set, EV_READ);
	ev_io_start(r.ev, &r.setw);
	us_io_init(&wa, r.set, r.a[0], count_in, count_out);
	us_io_init(&wb, r.set, r.b[0], count_in, count_out);
	ins = outs = 0;
	then = NULL;
	*state = &r;
	return 0;
}

static int teardown(void **state)
{
	struct rig *r = *state;

	us_io_forget(&wa);
	us_io_forget(&wb);
	ev_io_stop(r->ev, &r->setw);
	ev_loop_destroy(r->ev);
	close(r->set);
	close(r->a[0]);
	close(r->a[1]);
	close(r->b[0]);
	close(r->b[1]);
	return 0;
}

static void turn(struct rig *r)
{
	ev_run(r->ev, EVRUN_NOWAIT);
}

/* How many fds the set reports ready now. */
static int set_ready(struct rig *r)
{
	struct epoll_event e[4];

	return epoll_wait(r->set, e, 4, 0);
}

/* In runs while bytes wait, every turn (level-triggered); out runs while
 * there is room. */
static void test_runs_while_ready(void **state)
{
	struct rig *r = *state;

	us_io_start(&wa, US_IO_IN);
	turn(r);
	assert_int_equal(ins, 0);
	assert_int_equal(write(r->a[1], "x", 1), 1);
	turn(r);
	turn(r);
	assert_int_equal(ins, 2);
	assert_true(us_io_active(&wa, US_IO_IN));
	us_io_start(&wa, US_IO_OUT);
	turn(r);
	assert_int_equal(ins, 3);
	assert_int_equal(outs, 1);
}

/* A stopped direction runs nothing; the set keeps the fd until it reports
 * it once more (no system call at the stop), then drops it; started again,
 * it runs again. */
static void test_stop_is_lazy(void **state)
{
	struct rig *r = *state;

	us_io_start(&wa, US_IO_IN);
	assert_int_equal(write(r->a[1], "x", 1), 1);
	turn(r);
	assert_int_equal(ins, 1);
	us_io_stop(&wa, US_IO_IN);
	assert_false(us_io_active(&wa, US_IO_IN));
	assert_int_equal(set_ready(r), 1); /* still in the set */
	turn(r);
	assert_int_equal(ins, 1);
	assert_int_equal(set_ready(r), 0); /* gone from it */
	us_io_start(&wa, US_IO_IN);
	turn(r);
	assert_int_equal(ins, 2);
}

/* A hang-up counts as both directions, for those waited for. */
static void test_hangup_is_both(void **state)
{
	struct rig *r = *state;

	us_io_start(&wa, US_IO_IN);
	close(r->a[1]);
	r->a[1] = socket(AF_UNIX, SOCK_STREAM, 0); /* for teardown */
	turn(r);
	assert_int_equal(ins, 1);
	assert_int_equal(outs, 0);
}

static void stop_out(struct us_io *w)
{
	us_io_stop(w, US_IO_OUT);
}

/* A callback that stops the other direction keeps it from running for the
 * report that ran the first. */
static void test_stopped_by_the_first_callback(void **state)
{
	struct rig *r = *state;

	assert_int_equal(write(r->a[1], "x", 1), 1);
	us_io_start(&wa, US_IO_IN | US_IO_OUT);
	then = stop_out;
	turn(r);
	assert_int_equal(ins, 1);
	assert_int_equal(outs, 0);
}

/* The other watcher forgotten, and its memory taken at once by a new
 * watcher on the same fd that waits for input, as when a connection ends
 * and the next one's relay lands where it was. */
static void forget_the_other(struct us_io *w)
{
	struct us_io *o = w == &wa ? &wb : &wa;
	int fd = o->fd;

	us_io_forget(o);
	us_io_init(o, o->set, fd, count_in, count_out);
	us_io_start(o, US_IO_IN);
}

/* A watcher forgotten while the set's report is being dispatched (its
 * memory may go, or serve another, next) is not run for what was reported
 * for it, whichever comes first in the report; the new one runs from the
 * next turn on. */
static void test_forgotten_in_the_same_turn(void **state)
{
	struct rig *r = *state;

	assert_int_equal(write(r->a[1], "x", 1), 1);
	assert_int_equal(write(r->b[1], "x", 1), 1);
	us_io_start(&wa, US_IO_IN);
	us_io_start(&wb, US_IO_IN);
	then = forget_the_other;
	turn(r);
	assert_int_equal(ins, 1);
	then = NULL;
	turn(r);
	assert_int_equal(ins, 3);
}

/* The watcher's memory taken, in its own callback, by a new watcher that
 * waits for output on another fd, as when a relay ends in on_rd and the
 * next connection's lands where it was. */
static void forget_self(struct us_io *w)
{
	int other = w->fd == wa.fd ? wb.fd : wa.fd;

	us_io_forget(w);
	us_io_init(w, w->set, other, count_in, count_out);
	w->want = US_IO_OUT; /* as started, but not in the set yet */
}

/* A callback that forgets its own watcher (and frees it) ends the report:
 * the other direction reported with it does not run on that memory. */
static void test_forgotten_by_its_own_callback(void **state)
{
	struct rig *r = *state;

	assert_int_equal(write(r->a[1], "x", 1), 1);
	us_io_start(&wa, US_IO_IN | US_IO_OUT);
	then = forget_self;
	turn(r);
	assert_int_equal(ins, 1);
	assert_int_equal(outs, 0);
}

/* A watcher whose fd is not known yet (-1) waits for nothing until it gets
 * one; the new fd starts out of the set. */
static void test_fd_set_later(void **state)
{
	struct rig *r = *state;

	us_io_init(&wa, r->set, -1, count_in, count_out);
	us_io_start(&wa, US_IO_IN);
	turn(r);
	us_io_set_fd(&wa, r->a[0]);
	assert_false(us_io_active(&wa, US_IO_IN));
	assert_int_equal(write(r->a[1], "x", 1), 1);
	turn(r);
	assert_int_equal(ins, 0);
	us_io_start(&wa, US_IO_IN);
	turn(r);
	assert_int_equal(ins, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_runs_while_ready, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_is_lazy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hangup_is_both, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stopped_by_the_first_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forgotten_in_the_same_turn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forgotten_by_its_own_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fd_set_later, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
