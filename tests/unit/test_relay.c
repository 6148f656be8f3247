/* The socketpair relay (stackthread/relay.c, ops.c) in one process, one row
 * of its contract per test (docs/architecture.md, "The socketpair contract").
 *
 * No LD_PRELOAD, no namespaces, no root: a struct us_stack of the test's
 * own runs the relay and a real engine on an L3 stack whose frames go, in
 * memory, to a second engine (the peer) and back. The program's side is
 * the app end of each pair, used with the kernel's own read, write, poll
 * and close, as a program would; the calls a program thread makes to the
 * stack thread (socket, connect, bind, listen) are the us_op_* functions,
 * run here directly. Time is the real monotonic clock: the relay reads it. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../stackthread/stack_impl.h"

#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))
#define OUR_IP IP4(10, 9, 0, 2)
#define PEER_IP IP4(10, 9, 0, 1)
#define MASK24 0xffffff00u
#define PEER_PORT 8080
#define OUR_PORT 80

#define QUEUE_MAX 512
#define FRAME_MAX 2048

/* Frames on their way from one stack to the other. */
struct queue {
	unsigned n;
	struct { uint32_t len; uint8_t data[FRAME_MAX]; } f[QUEUE_MAX];
};

struct rig {
	struct us_stack *st;       /* the relay under test and its engine */
	struct ust_config cfg;     /* st's configuration: our address */
	int link[2];               /* its link's fd: never readable */
	struct ust_stack pst;      /* the peer: an engine on a stack of its own */
	struct ust_tcp ptcp;
	struct queue to_peer, to_us;
	unsigned rst_from_us;      /* RST segments our engine sent */
};

/* ---- the wire between the two stacks ---- */

static void enqueue(struct queue *q, struct ust_pkt *const *pkts, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		assert_true(q->n < QUEUE_MAX);
		assert_true(pkts[i]->len <= FRAME_MAX);
		q->f[q->n].len = pkts[i]->len;
		memcpy(q->f[q->n].data, pkts[i]->data, pkts[i]->len);
		q->n++;
	}
}

static unsigned our_output(void *ctx, struct ust_pkt *const *pkts, unsigned n)
{
	struct rig *r = ctx;

	for (unsigned i = 0; i < n; i++) {
		const uint8_t *ip = pkts[i]->data;
		unsigned ihl = (ip[0] & 15u) * 4;
		if (pkts[i]->len > ihl + 13 && (ip[ihl + 13] & UST_TH_RST))
			r->rst_from_us++;
	}
	enqueue(&r->to_peer, pkts, n);
	return n;
}

static unsigned peer_output(void *ctx, struct ust_pkt *const *pkts, unsigned n)
{
	enqueue(&((struct rig *)ctx)->to_us, pkts, n);
	return n;
}

/* Hands every queued frame to its stack; true if there were any. */
static bool deliver(struct queue *q, struct ust_stack *to, ust_time now)
{
	unsigned n = q->n;

	for (unsigned i = 0; i < n; i++)
		ust_stack_input(to, q->f[i].data, q->f[i].len, 0, now);
	q->n = 0;
	return n > 0;
}

/* One round: the relay's watchers, both engines' timers, the frames both
 * ways. True if anything was on the wire. */
static bool round_trip(struct rig *r)
{
	ust_time now = ust_now();
	bool moved;

	ev_run(r->st->ev, EVRUN_NOWAIT);
	ust_loop_kick(&r->st->loop, now);
	ust_tcp_timers(&r->ptcp, now);
	ust_stack_flush(&r->pst);
	moved = deliver(&r->to_peer, &r->pst, now);
	ust_stack_flush(&r->pst);
	moved |= deliver(&r->to_us, &r->st->st, now);
	ust_loop_kick(&r->st->loop, now);
	ev_run(r->st->ev, EVRUN_NOWAIT);
	return moved;
}

/* Runs rounds until the wire has been quiet for a few of them. */
static void pump(struct rig *r)
{
	for (int quiet = 0, i = 0; quiet < 3 && i < 1000; i++)
		quiet = round_trip(r) ? 0 : quiet + 1;
}

/* Runs rounds (1 ms apart) until fd polls with all of want, at most 2 s. */
static short pump_until_poll(struct rig *r, int fd, short want)
{
	struct pollfd p = { .fd = fd, .events = want };
	struct timespec ms = { 0, 1000 * 1000 };

	for (int i = 0; i < 2000; i++) {
		round_trip(r);
		p.revents = 0;
		if (poll(&p, 1, 0) == 1 && (p.revents & want) == want)
			return p.revents;
		nanosleep(&ms, NULL);
	}
	return p.revents;
}

static short poll_now(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };

	return poll(&p, 1, 0) == 1 ? p.revents : 0;
}

/* ---- the two stacks ---- */

static void start_stack(struct rig *r, struct ust_stack *s, uint32_t addr, ust_output_fn out)
{
	struct ust_netif nif = { .l3 = true, .addr = addr, .mask = MASK24, .mtu = 1500 };

	assert_int_equal(ust_stack_init(s, &nif, 1024, out, r), 0);
}

/* Ours as stackthread/start.c builds it, less the link, the call queue and
 * the control socket. */
static void start_ours(struct rig *r)
{
	struct us_stack *st = r->st;
	struct ust_tcp_config tc;
	socklen_t len = sizeof(st->app_sndbuf);
	int probe[2];

	st->pid = st->program = getpid();
	r->cfg = (struct ust_config){ .addr = OUR_IP };
	st->cfg = &r->cfg;
	st->wake_fd = st->parent_wake_fd = st->close_log_fd = st->ctl_fd = -1;
	start_stack(r, &st->st, OUR_IP, our_output);
	ust_tcp_default_config(&tc);
	tc.event = us_on_tcp_event;
	tc.backlog_full = us_on_backlog_full;
	tc.ctx = st;
	assert_int_equal(ust_tcp_init(&st->tcp, &st->st, &tc), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, probe), 0);
	getsockopt(probe[0], SOL_SOCKET, SO_SNDBUF, &st->app_sndbuf, &len);
	st->app_sndbuf /= 2;
	close(probe[0]);
	close(probe[1]);
	st->ev = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
	st->hup_fd = epoll_create1(EPOLL_CLOEXEC);
	st->io_fd = epoll_create1(EPOLL_CLOEXEC);
	assert_non_null(st->ev);
	assert_true(st->hup_fd >= 0 && st->io_fd >= 0);
	ev_io_init(&st->hup, us_on_hup, st->hup_fd, EV_READ);
	ev_io_start(st->ev, &st->hup);
	ev_io_init(&st->io, us_on_io, st->io_fd, EV_READ);
	ev_io_start(st->ev, &st->io);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, r->link), 0);
	st->link.fd = r->link[0];
	ust_loop_start(&st->loop, st->ev, &st->st, &st->link, &st->tcp);
	st->loop.after = us_relay_after;
}

static int setup(void **state)
{
	struct rig *r = calloc(1, sizeof(*r));
	struct ust_tcp_config tc;

	assert_non_null(r);
	r->st = calloc(1, sizeof(*r->st));
	assert_non_null(r->st);
	start_ours(r);
	start_stack(r, &r->pst, PEER_IP, peer_output);
	ust_tcp_default_config(&tc);
	tc.isn_key[0] ^= 0x5555; /* the peer's own secret */
	assert_int_equal(ust_tcp_init(&r->ptcp, &r->pst, &tc), 0);
	*state = r;
	return 0;
}

static int teardown(void **state)
{
	struct rig *r = *state;
	struct us_stack *st = r->st;

	while (st->all)
		us_conn_free(st->all, true);
	free(st->conns);
	st->conns = NULL;
	ust_loop_stop(&st->loop);
	ev_io_stop(st->ev, &st->hup);
	ev_io_stop(st->ev, &st->io);
	ust_tcp_destroy(&st->tcp);
	ust_stack_destroy(&st->st);
	ust_tcp_destroy(&r->ptcp);
	ust_stack_destroy(&r->pst);
	ev_loop_destroy(st->ev);
	close(st->hup_fd);
	close(st->io_fd);
	if (st->pair_ready)
		close(st->pair_lfd);
	close(r->link[0]);
	close(r->link[1]);
	free(st);
	free(r);
	return 0;
}

/* ---- the program's calls, as the shim makes them ---- */

static long op(struct rig *r, us_call_fn fn, struct us_sock *s, struct us_call *c)
{
	c->st = r->st;
	c->sock = s;
	c->ret = 0;
	fn(c);
	return c->ret;
}

/* socket(): a slot and an unconnected app end; returns it. */
static int new_socket(struct rig *r, struct us_sock **sp)
{
	struct us_sock *s = us_sock_alloc();
	struct us_call c;
	long fd;

	assert_non_null(s);
	memset(&c, 0, sizeof(c));
	c.u.create.app_fd = -1;
	c.u.create.family = AF_INET;
	fd = op(r, us_op_create, s, &c);
	assert_true(fd >= 0);
	s->app_fd = (int)fd;
	*sp = s;
	return (int)fd;
}

static long do_connect(struct rig *r, struct us_sock *s, uint32_t addr, uint16_t port)
{
	struct us_call c;

	memset(&c, 0, sizeof(c));
	c.u.in.addr = ust_ip6_from_v4(addr);
	c.u.in.port = port;
	return op(r, us_op_connect, s, &c);
}

/* The peer listens on PEER_PORT. */
static struct ust_tcb *peer_listen(struct rig *r)
{
	int err;
	struct ust_tcb *l = ust_tcp_create(&r->ptcp, NULL, &err);

	assert_non_null(l);
	assert_int_equal(ust_tcp_bind(l, PEER_PORT, false), 0);
	assert_int_equal(ust_tcp_listen(l, 8), 0);
	return l;
}

/* Fixture: our socket connected to the peer, which accepted it. */
static int established(struct rig *r, struct us_sock **sp, struct ust_tcb **pc)
{
	struct ust_tcb *pl = peer_listen(r);
	int app = new_socket(r, sp), err;

	assert_int_equal(do_connect(r, *sp, PEER_IP, PEER_PORT), 0);
	pump_until_poll(r, app, POLLOUT);
	assert_int_equal(atomic_load(&(*sp)->state), UST_TCP_ESTABLISHED);
	pump(r); /* our ACK, to the peer */
	*pc = ust_tcp_accept(pl, NULL, &err);
	assert_non_null(*pc);
	return app;
}

static void peer_send(struct rig *r, struct ust_tcb *pc, const char *text)
{
	assert_int_equal(ust_tcp_send(pc, text, strlen(text), ust_now()), (long)strlen(text));
	ust_stack_flush(&r->pst);
}

/* ---- readiness ---- */

/* Bytes the peer sent become readable on the app end, in order. */
static void test_readiness_peer_data_readable(void **state)
{
	struct rig *r = *state;
	struct us_sock *s;
	struct ust_tcb *pc;
	int app = established(r, &s, &pc);
	char buf[16];

	assert_false(poll_now(app, POLLIN) & POLLIN);
	peer_send(r, pc, "hello");
	assert_true(pump_until_poll(r, app, POLLIN) & POLLIN);
	assert_int_equal(read(app, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
}

/* Connected, the app end is writable (there is room); what the program
 * writes reaches the peer. */
static void test_readiness_writable_when_room(void **state)
{
	struct rig *r = *state;
	struct us_sock *s;
	struct ust_tcb *pc;
	int app = established(r, &s, &pc);
	char buf[16];

	assert_true(poll_now(app, POLLOUT) & POLLOUT);
	assert_int_equal(write(app, "ping", 4), 4);
	pump(r);
	assert_int_equal(ust_tcp_receive(pc, buf, sizeof(buf), ust_now()), 4);
	assert_memory_equal(buf, "ping", 4);
}

/* ---- EOF vs HUP ---- */

/* The peer's FIN: POLLIN|POLLRDHUP, no error, read returns 0 after the
 * data. */
static void test_eof_peer_fin_reads_zero(void **state)
{
	struct rig *r = *state;
	struct us_sock *s;
	struct ust_tcb *pc;
	int app = established(r, &s, &pc);
	char buf[16];
	short ev;

	peer_send(r, pc, "bye");
	assert_int_equal(ust_tcp_shutdown(pc, SHUT_WR, ust_now()), 0);
	ust_stack_flush(&r->pst);
	ev = pump_until_poll(r, app, POLLIN | POLLRDHUP);
	assert_true(ev & POLLRDHUP);
	assert_false(ev & (POLLERR | POLLHUP));
	assert_int_equal(read(app, buf, sizeof(buf)), 3);
	assert_int_equal(read(app, buf, sizeof(buf)), 0);
	assert_int_equal(atomic_load(&s->pending_err), 0);
	assert_int_equal(atomic_load(&s->state), UST_TCP_CLOSE_WAIT);
}

/* The peer's RST: POLLERR|POLLHUP on the app end, the error recorded for
 * the overridden calls, and read says ECONNRESET. */
static void test_hup_peer_rst_errors(void **state)
{
	struct rig *r = *state;
	struct us_sock *s;
	struct ust_tcb *pc;
	int app = established(r, &s, &pc);
	char buf[16];
	short ev;

	ust_tcp_abort(pc, ust_now());
	ust_stack_flush(&r->pst);
	ev = pump_until_poll(r, app, POLLERR | POLLHUP);
	assert_true(ev & POLLERR);
	assert_true(ev & POLLHUP);
	assert_int_equal(atomic_load(&s->state), UST_TCP_CLOSED);
	assert_int_equal(atomic_load(&s->pending_err), ECONNRESET);
	assert_int_equal(atomic_load(&s->hard_err), ECONNRESET);
	assert_true(atomic_load(&s->life) & US_L_DETACHED);
	assert_int_equal(read(app, buf, sizeof(buf)), -1);
	assert_int_equal(errno, ECONNRESET);
}

/* ---- release ---- */

/* The program closes with received data unread: a RST, not a FIN
 * (RFC 1122 §4.2.2.13). */
static void test_close_unread_data_sends_rst(void **state)
{
	struct rig *r = *state;
	struct us_sock *s;
	struct ust_tcb *pc;
	int app = established(r, &s, &pc);

	peer_send(r, pc, "unread");
	pump_until_poll(r, app, POLLIN);
	close(app);
	pump(r);
	assert_int_equal(r->rst_from_us, 1);
	assert_int_equal(ust_tcp_get_state(pc), UST_TCP_CLOSED);
	assert_int_equal(ust_tcp_record(pc)->outcome, UST_OUTCOME_RESET_RECEIVED);
	ust_tcp_close(pc, ust_now());
}

/* The same, found by the reader (the stack end's readable watcher, which
 * frees the relay while it runs) rather than by the hang-up watch. */
static void test_close_unread_data_seen_by_reader(void **state)
{
	struct rig *r = *state;
	struct us_sock *s;
	struct ust_tcb *pc;
	int app = established(r, &s, &pc);
	struct us_conn *c = us_conn_of(r->st, s);

	peer_send(r, pc, "unread");
	pump_until_poll(r, app, POLLIN);
	close(app);
	assert_true(us_io_active(&c->io, US_IO_IN));
	c->io.on_in(&c->io);
	assert_null(us_conn_of(r->st, s));
	pump(r);
	assert_int_equal(r->rst_from_us, 1);
	assert_int_equal(ust_tcp_record(pc)->outcome, UST_OUTCOME_RESET_RECEIVED);
	ust_tcp_close(pc, ust_now());
}

/* The program closes with everything read: a FIN after the data. */
static void test_close_all_read_sends_fin(void **state)
{
	struct rig *r = *state;
	struct us_sock *s;
	struct ust_tcb *pc;
	int app = established(r, &s, &pc);
	char buf[16];

	assert_int_equal(write(app, "last", 4), 4);
	close(app);
	pump(r);
	assert_int_equal(r->rst_from_us, 0);
	assert_int_equal(ust_tcp_receive(pc, buf, sizeof(buf), ust_now()), 4);
	assert_int_equal(ust_tcp_receive(pc, buf, sizeof(buf), ust_now()), 0);
	assert_int_equal(ust_tcp_get_state(pc), UST_TCP_CLOSE_WAIT);
}

/* The shim's shutdown(SHUT_WR) (shim/shutdown.c): the relay empties the
 * pair and holds, the sentinel byte, the app end shuts, the relay takes
 * what is left but the sentinel. */
static void shim_shut_wr(struct rig *r, struct us_sock *s, int app)
{
	struct us_call c;

	memset(&c, 0, sizeof(c));
	atomic_fetch_or(&s->flags, US_F_APP_SHUT);
	assert_int_equal(op(r, us_op_hold_last, s, &c), 0);
	assert_int_equal(send(app, "", 1, MSG_DONTWAIT), 1);
	assert_int_equal(shutdown(app, SHUT_WR), 0);
	c.u.shut.sentinel = true;
	op(r, us_op_take_tail, s, &c);
}

/* An established connection on which the program wrote 4 bytes and shut
 * its sending side as the shim does: the peer got them, then the FIN
 * (never the sentinel). Returns the app end. */
static int data_then_shut_wr(struct rig *r, struct us_sock **sp, struct ust_tcb **pc)
{
	int app = established(r, sp, pc);
	char buf[16];

	assert_int_equal(write(app, "data", 4), 4);
	shim_shut_wr(r, *sp, app);
	pump(r);
	assert_int_equal(ust_tcp_receive(*pc, buf, sizeof(buf), ust_now()), 4);
	assert_int_equal(ust_tcp_receive(*pc, buf, sizeof(buf), ust_now()), 0);
	return app;
}

/* shutdown(SHUT_WR): a FIN after the data, and the connection still
 * receives. */
static void test_app_shutdown_sends_fin(void **state)
{
	struct rig *r = *state;
	struct us_sock *s;
	struct ust_tcb *pc;
	int app = data_then_shut_wr(r, &s, &pc);
	char buf[16];

	assert_int_equal(atomic_load(&s->state), UST_TCP_FIN_WAIT_2);
	peer_send(r, pc, "more");
	assert_true(pump_until_poll(r, app, POLLIN) & POLLIN);
	assert_int_equal(read(app, buf, sizeof(buf)), 4);
}

/* The shim's SHUT_WR, then the peer's RST (FIN-WAIT-2): the app end polls
 * ERR as Linux's socket does, and reads the reset. */
static void test_shut_wr_then_rst_errors(void **state)
{
	struct rig *r = *state;
	struct us_sock *s;
	struct ust_tcb *pc;
	int app = data_then_shut_wr(r, &s, &pc);
	char buf[16];

	assert_false(poll_now(app, POLLIN) & POLLERR);
	ust_tcp_abort(pc, ust_now());
	ust_stack_flush(&r->pst);
	assert_true(pump_until_poll(r, app, POLLERR) & POLLERR);
	assert_int_equal(atomic_load(&s->pending_err), ECONNRESET);
	assert_int_equal(read(app, buf, sizeof(buf)), -1);
	assert_int_equal(errno, ECONNRESET);
}

/* The program shuts down (as the shim's shutdown does: US_F_APP_SHUT, then
 * the app end) and the peer's FIN is passed on: the stack end polls HUP as
 * after a close, but the program still holds the socket. The relay stays
 * until TCP closes on its own (TIME-WAIT, 2 x 50 ms here), then keeps the
 * slot for the program with TCP's last status, which us_op_status returns
 * (Linux's TCP_INFO after TIME-WAIT). Either order of the two FINs. */
static void both_fins_keep_socket(struct rig *r, bool ours_first)
{
	struct us_sock *s;
	struct ust_tcb *pc;
	int app = established(r, &s, &pc);
	struct ust_tcp_status st;
	struct us_call c;
	char buf[16];

	r->st->tcp.cfg.msl_ms = 50;
	assert_int_equal(write(app, "data", 4), 4);
	if (ours_first) {
		shim_shut_wr(r, s, app);
		pump(r);
	}
	assert_int_equal(ust_tcp_shutdown(pc, SHUT_WR, ust_now()), 0);
	ust_stack_flush(&r->pst);
	assert_true(pump_until_poll(r, app, POLLIN | POLLRDHUP) & POLLRDHUP);
	if (!ours_first) {
		shim_shut_wr(r, s, app);
		pump(r);
	}
	assert_true(poll_now(app, POLLIN) & POLLHUP); /* both directions shut */
	assert_int_equal(read(app, buf, sizeof(buf)), 0);
	if (ours_first) {
		/* Not taken for a close: the relay waits out TIME-WAIT. */
		assert_int_equal(atomic_load(&s->state), UST_TCP_TIME_WAIT);
		assert_non_null(us_conn_of(r->st, s));
	}
	for (int i = 0; i < 500 && atomic_load(&s->state) != UST_TCP_CLOSED; i++) {
		struct timespec ms = { 0, 1000 * 1000 };
		nanosleep(&ms, NULL);
		round_trip(r);
	}
	assert_int_equal(atomic_load(&s->state), UST_TCP_CLOSED);
	assert_null(us_conn_of(r->st, s));
	assert_int_equal(atomic_load(&s->kind), US_CONN); /* the program's still */
	assert_true(atomic_load(&s->flags) & US_F_LAST_STATUS);
	memset(&c, 0, sizeof(c));
	c.u.out = &st;
	assert_int_equal(op(r, us_op_status, s, &c), 0);
	assert_int_equal(st.state, UST_TCP_CLOSED);
	assert_int_equal(st.stats.bytes_acked, 6);    /* SYN, 4 bytes, FIN */
	assert_int_equal(st.stats.bytes_received, 1); /* the FIN */
	assert_true(st.mss > 0 && st.ts_ok && st.sack_ok);
	/* An orderly end: the sentinel was taken away, no reset shows. */
	assert_false(poll_now(app, POLLIN) & POLLERR);
	assert_int_equal(read(app, buf, sizeof(buf)), 0);
	ust_tcp_close(pc, ust_now());
}

static void test_both_fins_ours_first_keep_socket(void **state)
{
	both_fins_keep_socket(*state, true);
}

static void test_both_fins_peers_first_keep_socket(void **state)
{
	both_fins_keep_socket(*state, false);
}

/* The process whose stack serves a socket ends while another holds it (a
 * forked child, a receiver of SCM_RIGHTS) that shut its sending side, and
 * the peer's FIN came: the stack end polls HUP. The hand-over's pull
 * (us_relay_sync) takes that for a shutdown, not a close, as us_on_hup
 * does: the relay stays, and the stack end is not closed under the holder
 * with the shutdown's sentinel unread (its next read would fail with
 * ECONNRESET). (The socket is in no fd table of this test: nobody let
 * go of it. A program that held it alone has its entries let go first,
 * keeper.c; 090 "shutdown both ways, exit without close…".) */
static void test_hand_over_keeps_a_shut_socket(void **state)
{
	struct rig *r = *state;
	struct us_sock *s;
	struct ust_tcb *pc;
	int app = established(r, &s, &pc);
	char buf[16];

	shim_shut_wr(r, s, app);
	pump(r);
	assert_int_equal(ust_tcp_shutdown(pc, SHUT_WR, ust_now()), 0);
	ust_stack_flush(&r->pst);
	assert_true(pump_until_poll(r, app, POLLIN | POLLRDHUP) & POLLRDHUP);
	assert_true(poll_now(app, POLLIN) & POLLHUP);
	us_relay_sync(r->st, false);
	assert_non_null(us_conn_of(r->st, s));
	assert_false(poll_now(app, POLLIN) & POLLERR);
	assert_int_equal(read(app, buf, sizeof(buf)), 0);
	ust_tcp_close(pc, ust_now());
}

/* ---- pending error ---- */

/* A refused connect: the error is published once (SO_ERROR takes it and
 * nothing publishes it again); why it died stays. */
static void test_pending_error_delivered_once(void **state)
{
	struct rig *r = *state;
	struct us_sock *s;
	int app = new_socket(r, &s);

	assert_int_equal(do_connect(r, s, PEER_IP, 9), 0); /* nobody listens */
	assert_true(pump_until_poll(r, app, POLLERR) & POLLERR);
	assert_int_equal(atomic_load(&s->state), UST_TCP_CLOSED);
	assert_int_equal(atomic_exchange(&s->pending_err, 0), ECONNREFUSED); /* SO_ERROR */
	pump(r);
	assert_int_equal(atomic_load(&s->pending_err), 0);
	assert_int_equal(atomic_load(&s->hard_err), ECONNREFUSED);
}

/* ---- listener tokens ---- */

static void listen_on(struct rig *r, struct us_sock *s, int backlog)
{
	struct us_call c;

	memset(&c, 0, sizeof(c));
	c.u.in.port = OUR_PORT;
	assert_int_equal(op(r, us_op_bind, s, &c), 0);
	memset(&c, 0, sizeof(c));
	c.u.opt.val = backlog;
	assert_int_equal(op(r, us_op_listen, s, &c), 0);
}

/* accept(): the token and the app end it carries; -1 if none. */
static int take_token(int lfd, struct us_token *tok)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { tok, sizeof(*tok) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	int fd = -1;

	if (recvmsg(lfd, &m, MSG_DONTWAIT) != (ssize_t)sizeof(*tok))
		return -1;
	for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

static struct ust_tcb *peer_connect(struct rig *r)
{
	int err;
	struct ust_tcb *pc = ust_tcp_create(&r->ptcp, NULL, &err);

	assert_non_null(pc);
	assert_int_equal(ust_tcp_connect(pc, OUR_IP, OUR_PORT, ust_now()), 0);
	ust_stack_flush(&r->pst);
	return pc;
}

/* A listener's app end is readable while a connection waits; accept
 * takes a token naming the connection's slot, with its app end attached,
 * which carries the connection's data. */
static void test_listener_token_readable_and_accepted(void **state)
{
	struct rig *r = *state;
	struct us_sock *ls, *cs;
	struct us_token tok;
	struct ust_tcb *pc;
	int lfd = new_socket(r, &ls), fd;
	char buf[16];

	listen_on(r, ls, 4);
	pump(r);
	assert_false(poll_now(lfd, POLLIN) & POLLIN);
	pc = peer_connect(r);
	assert_true(pump_until_poll(r, lfd, POLLIN) & POLLIN);
	fd = take_token(lfd, &tok);
	assert_true(fd >= 0);
	assert_int_equal(tok.magic, US_TOKEN_MAGIC);
	assert_int_equal(ust_ip6_to_v4(&tok.laddr), OUR_IP);
	assert_int_equal(tok.lport, OUR_PORT);
	assert_int_equal(ust_ip6_to_v4(&tok.raddr), PEER_IP);
	cs = us_sock_at(tok.idx);
	assert_int_equal(atomic_load(&cs->gen), tok.gen);
	assert_int_equal(atomic_load(&cs->state), UST_TCP_ESTABLISHED);
	atomic_fetch_or(&cs->flags, US_F_ACCEPTED);
	assert_false(poll_now(lfd, POLLIN) & POLLIN);
	peer_send(r, pc, "hi");
	assert_true(pump_until_poll(r, fd, POLLIN) & POLLIN);
	assert_int_equal(read(fd, buf, sizeof(buf)), 2);
	close(fd);
}

/* listen(0) lets one connection wait: the second is delivered only once
 * the first was accepted (accept wakes the relay). */
static void test_listener_tokens_bounded_by_backlog(void **state)
{
	struct rig *r = *state;
	struct us_sock *ls;
	struct us_token tok;
	int lfd = new_socket(r, &ls), fd;

	listen_on(r, ls, 0);
	peer_connect(r);
	pump(r);
	peer_connect(r);
	pump(r);
	fd = take_token(lfd, &tok);
	assert_true(fd >= 0);
	assert_int_equal(take_token(lfd, &tok), -1);
	atomic_fetch_or(&us_sock_at(tok.idx)->flags, US_F_ACCEPTED);
	atomic_fetch_and(&ls->flags, ~US_F_BACKLOGGED);
	us_relay_wake(r->st, false);
	assert_true(pump_until_poll(r, lfd, POLLIN) & POLLIN);
	close(fd);
	fd = take_token(lfd, &tok);
	assert_true(fd >= 0);
	close(fd);
}

/* Below the backlog an accept() wakes no one (no US_F_BACKLOGGED): with
 * listen(1), three connections in turn, each accepted without a wake-up,
 * are all delivered. */
static void test_listener_accept_below_backlog_no_wake(void **state)
{
	struct rig *r = *state;
	struct us_sock *ls;
	struct us_token tok;
	int lfd = new_socket(r, &ls);

	listen_on(r, ls, 1);
	for (int i = 0; i < 3; i++) {
		int fd;

		peer_connect(r);
		assert_true(pump_until_poll(r, lfd, POLLIN) & POLLIN);
		fd = take_token(lfd, &tok);
		assert_true(fd >= 0);
		assert_false(atomic_load(&ls->flags) & US_F_BACKLOGGED);
		atomic_fetch_or(&us_sock_at(tok.idx)->flags, US_F_ACCEPTED);
		close(fd);
	}
}

/* ---- filler bytes ---- */

/* A fresh socket polls OUT|HUP, as Linux's (an unconnected app end); a
 * connecting one is not writable until the handshake ends; then it is. */
static void test_filler_connecting_unwritable(void **state)
{
	struct rig *r = *state;
	struct us_sock *s;
	int app;

	peer_listen(r);
	app = new_socket(r, &s);
	assert_int_equal(poll_now(app, POLLIN | POLLOUT | POLLRDHUP), POLLOUT | POLLHUP);
	assert_int_equal(do_connect(r, s, PEER_IP, PEER_PORT), 0);
	ust_loop_kick(&r->st->loop, ust_now());
	ev_run(r->st->ev, EVRUN_NOWAIT);
	assert_int_equal(atomic_load(&s->state), UST_TCP_SYN_SENT);
	assert_false(poll_now(app, POLLOUT) & POLLOUT);
	assert_true(pump_until_poll(r, app, POLLOUT) & POLLOUT);
	assert_int_equal(atomic_load(&s->state), UST_TCP_ESTABLISHED);
}

/* A listener is never writable, also after delivering a connection. */
static void test_filler_listener_unwritable(void **state)
{
	struct rig *r = *state;
	struct us_sock *ls;
	int lfd = new_socket(r, &ls);

	listen_on(r, ls, 4);
	pump(r);
	assert_false(poll_now(lfd, POLLOUT) & POLLOUT);
	peer_connect(r);
	assert_true(pump_until_poll(r, lfd, POLLIN) & POLLIN);
	assert_false(poll_now(lfd, POLLOUT) & POLLOUT);
}

/* ---- SO_REUSEPORT groups across processes (addrshare.c) ---- */

static unsigned group_of(uint16_t port, struct us_group_member *m)
{
	return us_share_group_members(port, m, US_GROUP_MAX);
}

/* Two stacks on one address, in a run directory of their own: this
 * process's and a child's. The child opens its share, joins the groups
 * file, does its part (child_part: true when done) and waits to be killed;
 * two_stacks_open returns once it has. */
struct two_stacks {
	char dir[32];
	struct ust_config cfg;
	int sync[2];
	pid_t child;
};

static void two_stacks_open(struct two_stacks *t, bool (*child_part)(void))
{
	char b = 0;

	snprintf(t->dir, sizeof(t->dir), "/tmp/ustcp-group-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	t->cfg = (struct ust_config){ .addr = OUR_IP };
	snprintf(t->cfg.run_dir, sizeof(t->cfg.run_dir), "%s", t->dir);
	assert_int_equal(us_share_open(&t->cfg), 0);
	assert_true(us_share_groups());
	assert_int_equal(pipe(t->sync), 0);
	t->child = fork();
	assert_true(t->child >= 0);
	if (t->child == 0) {
		if (us_share_open(&t->cfg) == 0 && us_share_groups() && child_part())
			b = 1;
		(void)!write(t->sync[1], &b, 1);
		pause();
		_exit(0);
	}
	assert_int_equal(read(t->sync[0], &b, 1), 1);
	assert_int_equal(b, 1);
}

/* The child is killed (SIGKILL, as a test does to see its entries go) and
 * everything two_stacks_open made is removed. */
static void two_stacks_close(struct two_stacks *t)
{
	char path[PATH_MAX + 40];

	if (kill(t->child, SIGKILL) == 0)
		waitpid(t->child, NULL, 0);
	us_share_disown();
	close(t->sync[0]);
	close(t->sync[1]);
	for (const char *const *f = (const char *const[]){ "addr", "ports", "groups", NULL }; *f; f++) {
		snprintf(path, sizeof(path), "%s/%s-%u.%u.%u.%u", t->dir, *f, OUR_IP >> 24, (OUR_IP >> 16) & 255,
			 (OUR_IP >> 8) & 255, OUR_IP & 255);
		unlink(path);
	}
	rmdir(t->dir);
}

static bool child_listens_twice_on_7500(void)
{
	return us_share_group_set(7500, 2);
}

/* Two stacks on one address list themselves in a port's group: each sees
 * both, in one order (by owner), itself flagged, with its listeners; a
 * stack killed by SIGKILL is out of every group at once (its owner lock
 * went with it), and one that leaves is out. */
/* libc's accept4 as a process out of fds sees it (the shim's table of
 * libc's functions is where the stack calls it). */
static int accept4_emfile(int fd, struct sockaddr *a, socklen_t *alen, int flags)
{
	errno = EMFILE;
	return -1;
}

/* A pairing whose accept finds no fd, also after the spare went (another
 * thread of the program took the number in between), leaves its app end's
 * connection in the pairing listener's queue; the next socket's pairing
 * must get its own stack end, not that one. Before pair_stale it got the
 * old one: B's bytes went into a pair nobody read. */
static void test_pair_failed_leaves_nothing_for_the_next(void **state)
{
	struct rig *r = *state;
	struct us_real *real = (struct us_real *)us_real();
	int (*accept4_was)(int, struct sockaddr *, socklen_t *, int) = real->accept4;
	struct ust_tcb *pl = peer_listen(r), *pc;
	struct us_sock *a, *b;
	char buf[16];
	long rc;
	int app, err;

	new_socket(r, &a);
	real->accept4 = accept4_emfile;
	rc = do_connect(r, a, PEER_IP, PEER_PORT);
	real->accept4 = accept4_was;
	assert_int_equal(rc, -EMFILE);
	pump(r);

	app = new_socket(r, &b);
	assert_int_equal(do_connect(r, b, PEER_IP, PEER_PORT), 0);
	pump_until_poll(r, app, POLLOUT);
	pump(r);
	pc = ust_tcp_accept(pl, NULL, &err);
	assert_non_null(pc);
	assert_int_equal(write(app, "mine", 4), 4);
	pump(r);
	assert_int_equal(ust_tcp_receive(pc, buf, sizeof(buf), ust_now()), 4);
	assert_memory_equal(buf, "mine", 4);
}

/* The status a process reads from a slot another process's stack writes
 * (TCP_INFO across fork): a whole copy; and when the writer was killed in
 * the middle of a write (the count left odd for good), the copy as it is,
 * after a bounded wait instead of none. */
static void test_last_read_writer_killed(void **state)
{
	struct us_last l;
	struct ust_tcp_status out;
	ust_time t0, waited;

	memset(&l, 0, sizeof(l));
	l.st.cwnd = 42;
	atomic_store(&l.seq, 2); /* a write done */
	us_last_read(&l, &out);
	assert_int_equal(out.cwnd, 42);

	l.st.cwnd = 43;
	atomic_store(&l.seq, 3); /* a write begun, its writer gone */
	t0 = ust_now();
	us_last_read(&l, &out);
	waited = ust_now() - t0;
	assert_int_equal(out.cwnd, 43);
	/* 100 ms of waiting, then the copy; the upper bound only catches a
	 * wait that no longer ends (the test runner's timeout would too). */
	assert_true(waited >= 100000);
	assert_true(waited < 30000000);
}

static void test_reuseport_group_members_across_stacks(void **state)
{
	struct us_group_member m[US_GROUP_MAX];
	struct two_stacks t;

	(void)state;
	two_stacks_open(&t, child_listens_twice_on_7500);
	assert_true(us_share_group_set(7500, 1));
	assert_true(us_share_group_set(7501, 0)); /* a port of ours alone */
	assert_int_equal(group_of(7500, m), 2);
	assert_true(m[0].owner < m[1].owner);
	assert_true(m[0].self != m[1].self);
	assert_int_equal(m[m[0].self ? 0 : 1].listeners, 1);
	assert_int_equal(m[m[0].self ? 1 : 0].listeners, 2);
	assert_int_equal(group_of(7501, m), 1);
	/* Fewer listeners: the same entry. */
	assert_true(us_share_group_set(7500, 0));
	assert_int_equal(group_of(7500, m), 2);
	kill(t.child, SIGKILL);
	assert_int_equal(waitpid(t.child, NULL, 0), t.child);
	assert_int_equal(group_of(7500, m), 1);
	assert_true(m[0].self);
	us_share_group_leave(7500);
	assert_int_equal(group_of(7500, m), 0);
	us_share_group_leave(7501);
	two_stacks_close(&t);
}

static bool child_holds_a_tuple(void)
{
	us_share_tuple_hold(7500, PEER_IP, 40000);
	return true;
}

/* The group's connections in the groups file (issue 14): a 4-tuple
 * another live stack holds is not free; ours is not either, until we let
 * it go; a SIGKILLed holder's is free at once; other tuples are free. */
/* The neighbours the stacks on an address resolved (addrshare.c's
 * records): what another process noted is ours to recall, only on the
 * same link (our own link address is part of the key), the newest of
 * two, and gone once its changer says so. */
static const uint8_t link_a[6] = { 2, 0, 0, 0, 0, 0xa }, link_b[6] = { 2, 0, 0, 0, 0, 0xb };
static const uint8_t peer_mac1[6] = { 2, 0, 0, 0, 1, 1 }, peer_mac2[6] = { 2, 0, 0, 0, 1, 2 };

static bool child_notes_the_peer(void)
{
	struct ust_ip6 peer = ust_ip6_from_v4(PEER_IP);

	us_share_neigh_note((void *)link_a, &peer, peer_mac1);
	return true;
}

static void test_neighbours_across_stacks(void **state)
{
	struct ust_ip6 peer = ust_ip6_from_v4(PEER_IP), other = ust_ip6_from_v4(PEER_IP + 1);
	struct two_stacks t;
	uint8_t mac[6];
	ust_time age;

	(void)state;
	two_stacks_open(&t, child_notes_the_peer);
	assert_true(us_share_neigh_recall((void *)link_a, &peer, mac, &age));
	assert_memory_equal(mac, peer_mac1, 6);
	assert_true(age < UST_SEC(5));
	assert_false(us_share_neigh_recall((void *)link_b, &peer, mac, &age)); /* another link */
	assert_false(us_share_neigh_recall((void *)link_a, &other, mac, &age));
	/* Ours, newer, replaces it; a change forgets it. */
	us_share_neigh_note((void *)link_a, &peer, peer_mac2);
	assert_true(us_share_neigh_recall((void *)link_a, &peer, mac, &age));
	assert_memory_equal(mac, peer_mac2, 6);
	us_share_neigh_note((void *)link_a, &peer, NULL);
	assert_false(us_share_neigh_recall((void *)link_a, &peer, mac, &age));
	/* Forgetting what nobody noted writes nothing. */
	us_share_neigh_note((void *)link_a, &other, NULL);
	assert_false(us_share_neigh_recall((void *)link_a, &other, mac, &age));
	/* More addresses than a window holds: each is still recalled or
	 * asked again, never another's link address. */
	for (uint32_t k = 0; k < 200; k++) {
		struct ust_ip6 a = ust_ip6_from_v4(PEER_IP + 10 + k);
		uint8_t m[6] = { 2, 0, 0, 1, (uint8_t)(k >> 8), (uint8_t)k };
		us_share_neigh_note((void *)link_a, &a, m);
	}
	for (uint32_t k = 0; k < 200; k++) {
		struct ust_ip6 a = ust_ip6_from_v4(PEER_IP + 10 + k);
		uint8_t m[6] = { 2, 0, 0, 1, (uint8_t)(k >> 8), (uint8_t)k };
		if (us_share_neigh_recall((void *)link_a, &a, mac, &age))
			assert_memory_equal(mac, m, 6);
	}
	two_stacks_close(&t);
}

static void test_reuseport_group_tuples(void **state)
{
	struct two_stacks t;

	(void)state;
	two_stacks_open(&t, child_holds_a_tuple);
	assert_false(us_share_tuple_free(7500, PEER_IP, 40000)); /* the other stack's */
	assert_true(us_share_tuple_free(7500, PEER_IP, 40001));
	assert_true(us_share_tuple_free(7501, PEER_IP, 40000));
	us_share_tuple_hold(7500, PEER_IP, 40002);
	assert_false(us_share_tuple_free(7500, PEER_IP, 40002)); /* ours */
	us_share_tuple_let_go(7500, PEER_IP, 40002);
	assert_true(us_share_tuple_free(7500, PEER_IP, 40002));
	/* Another's entry is not ours to let go. */
	us_share_tuple_let_go(7500, PEER_IP, 40000);
	assert_false(us_share_tuple_free(7500, PEER_IP, 40000));
	kill(t.child, SIGKILL);
	assert_int_equal(waitpid(t.child, NULL, 0), t.child);
	assert_true(us_share_tuple_free(7500, PEER_IP, 40000));
	two_stacks_close(&t);
}

/* The relay ends inside its own input callback while the same report of
 * the io set also asks for output: the program closed its socket with
 * unread data (ECONNRESET on the pull frees the relay) while received
 * bytes waited for room in the pair. Nothing may run on the freed relay
 * (io.c: us_io_forget clears the entry being dispatched; the sanitizer
 * build reports the use after free without it). */
static void test_relay_freed_in_its_input_callback(void **state)
{
	struct rig *r = *state;
	struct us_sock *s;
	struct ust_tcb *pc;
	int app = established(r, &s, &pc);
	struct us_conn *c = us_conn_of(r->st, s);
	static char big[65536];

	for (int i = 0; i < 400 && !us_io_active(&c->io, US_IO_OUT); i++) {
		ust_tcp_send(pc, big, sizeof(big), ust_now());
		ust_stack_flush(&r->pst);
		round_trip(r);
	}
	assert_true(us_io_active(&c->io, US_IO_OUT)); /* the pair is full */
	assert_int_equal(write(app, "x", 1), 1);
	round_trip(r);
	c = us_conn_of(r->st, s);
	assert_non_null(c);
	assert_true(us_io_active(&c->io, US_IO_IN) && us_io_active(&c->io, US_IO_OUT));
	close(app);
	us_on_io(r->st->ev, &r->st->io, 0);
	assert_null(us_conn_of(r->st, s));
	ust_tcp_close(pc, ust_now());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_readiness_peer_data_readable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readiness_writable_when_room, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eof_peer_fin_reads_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hup_peer_rst_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_unread_data_sends_rst, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_unread_data_seen_by_reader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_all_read_sends_fin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_app_shutdown_sends_fin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shut_wr_then_rst_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_both_fins_ours_first_keep_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_both_fins_peers_first_keep_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hand_over_keeps_a_shut_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending_error_delivered_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listener_token_readable_and_accepted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listener_tokens_bounded_by_backlog, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listener_accept_below_backlog_no_wake, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filler_connecting_unwritable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filler_listener_unwritable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pair_failed_leaves_nothing_for_the_next, setup, teardown),
		cmocka_unit_test(test_last_read_writer_killed),
		cmocka_unit_test(test_reuseport_group_members_across_stacks),
		cmocka_unit_test(test_reuseport_group_tuples),
		cmocka_unit_test(test_neighbours_across_stacks),
		cmocka_unit_test_setup_teardown(test_relay_freed_in_its_input_callback, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
