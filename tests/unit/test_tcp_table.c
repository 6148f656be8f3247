/* The engine's tables at counts the segment scripts never reach: the
 * 4-tuple table and the timer heap grow with the connections (no fixed
 * cap), a port's users are one read away, and the ceiling
 * (cfg.max_conns) refuses with ENFILE and counts. The invariant checker
 * (tests/common/tcp_invariants.c) runs after each step. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "stack.h"
#include "tcp.h"
#include "tcp_invariants.h"

/* Only some of the harness's helpers are used here. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "stack_harness.h"
#pragma GCC diagnostic pop

/* The invariant checker holds this many blocks at most. */
#define MANY 4000u

struct table_test {
	struct harness *h;
	struct ust_tcp tcp;
	struct ust_tcb *t[MANY];
};

static void check(struct table_test *x)
{
	char msg[512];

	ust_stack_flush(&x->h->st);
	x->h->n_out = x->h->seen = 0; /* frames are not what this tests */
	if (!tcp_invariants_check(&x->tcp, msg, sizeof(msg)))
		fail_msg("%s", msg);
}

static struct table_test *table_new(unsigned max_conns)
{
	struct table_test *x = calloc(1, sizeof(*x));
	struct ust_tcp_config cfg;

	assert_non_null(x);
	x->h = harness_new(false, MASK24, 0, 256);
	ust_tcp_default_config(&cfg);
	cfg.max_conns = max_conns;
	assert_int_equal(ust_tcp_init(&x->tcp, &x->h->st, &cfg), 0);
	x->tcp.now = x->h->now;
	/* The peer is in the ARP cache: SYNs leave at once. */
	rx_arp_request(x->h, peer_mac, PEER_IP);
	check(x);
	return x;
}

static void table_free(struct table_test *x)
{
	ust_tcp_destroy(&x->tcp);
	ust_stack_flush(&x->h->st);
	ust_arp_flush(&x->h->st);
	assert_int_equal(x->h->st.pool.avail, x->h->st.pool.size);
	ust_stack_destroy(&x->h->st);
	free(x->h);
	free(x);
}

/* A new block in CLOSED; it must be had. */
static struct ust_tcb *new_block(struct table_test *x)
{
	int err;
	struct ust_tcb *t = ust_tcp_create(&x->tcp, NULL, &err);

	assert_non_null(t);
	assert_int_equal(err, 0);
	return t;
}

/* MANY listeners, each on its own port: the table doubles as it fills
 * (never more than one block per bucket on average), each listener is
 * found by its port, a second bind to a used port is refused, and all go. */
static void test_table_grows_listeners(void **state)
{
	struct table_test *x = table_new(0);

	(void)state;
	for (unsigned i = 0; i < MANY; i++) {
		x->t[i] = new_block(x);
		assert_int_equal(ust_tcp_bind(x->t[i], (uint16_t)(1000 + i), false), 0);
		assert_int_equal(ust_tcp_listen(x->t[i], 16), 0);
	}
	check(x);
	assert_int_equal(ust_tcp_count(&x->tcp), MANY);
	assert_true(x->tcp.hash_size >= MANY);
	for (unsigned i = 0; i < MANY; i++) {
		struct ust_tcb *t = new_block(x);
		assert_int_equal(ust_tcp_bind(t, (uint16_t)(1000 + i), false), -EADDRINUSE);
		ust_tcp_close(t, x->h->now);
	}
	check(x);
	for (unsigned i = 0; i < MANY; i++)
		ust_tcp_close(x->t[i], x->h->now);
	check(x);
	assert_int_equal(ust_tcp_count(&x->tcp), 0);
	table_free(x);
}

/* MANY connections, each with a SYN's retransmission timer: the heap
 * grows past its first size, the first deadline is the earliest, and an
 * abort takes each block out of the heap and the table. */
static void test_table_grows_timers(void **state)
{
	struct table_test *x = table_new(0);

	(void)state;
	for (unsigned i = 0; i < MANY; i++) {
		x->t[i] = new_block(x);
		assert_int_equal(ust_tcp_connect(x->t[i], PEER_IP, 80, x->h->now), 0);
		if (i % 500 == 0)
			check(x);
	}
	check(x);
	assert_int_equal(x->tcp.heap_len, MANY);
	assert_true(x->tcp.heap_cap >= MANY);
	/* Every connection has its own local port, and each is in use. */
	for (unsigned i = 0; i < MANY; i++)
		assert_true(ust_tcp_local_port(x->t[i]) != 0);
	for (unsigned i = 0; i < MANY; i += 2)
		ust_tcp_abort(x->t[i], x->h->now);
	check(x);
	assert_int_equal(x->tcp.heap_len, MANY / 2);
	for (unsigned i = 1; i < MANY; i += 2)
		ust_tcp_abort(x->t[i], x->h->now);
	check(x);
	assert_int_equal(x->tcp.heap_len, 0);
	assert_int_equal(ust_tcp_count(&x->tcp), 0);
	table_free(x);
}

/* At the ceiling a socket gets ENFILE, counted; a block that goes makes
 * room for exactly one more. */
static void test_table_ceiling_enfile(void **state)
{
	struct table_test *x = table_new(10);
	uint64_t before = x->h->st.ctr.event[UST_EV_TCP_CONN_CEILING];
	int err;

	(void)state;
	for (unsigned i = 0; i < 10; i++)
		x->t[i] = new_block(x);
	assert_null(ust_tcp_create(&x->tcp, NULL, &err));
	assert_int_equal(err, -ENFILE);
	assert_int_equal(x->h->st.ctr.event[UST_EV_TCP_CONN_CEILING], before + 1);
	check(x);
	ust_tcp_close(x->t[0], x->h->now);
	x->t[0] = new_block(x);
	assert_null(ust_tcp_create(&x->tcp, NULL, &err));
	assert_int_equal(err, -ENFILE);
	check(x);
	for (unsigned i = 0; i < 10; i++)
		ust_tcp_close(x->t[i], x->h->now);
	check(x);
	table_free(x);
}

/* A TIME-WAIT as another stack on the address exported it. */
static struct ust_tcp_tw tw_made(uint16_t lport, ust_time deadline)
{
	struct ust_tcp_tw tw = {
		.laddr = ust_ip6_from_v4(OUR_IP), .raddr = ust_ip6_from_v4(PEER_IP),
		.lport = lport, .rport = 80, .port_claimed = 0,
		.iss = 1000, .snd_una = 1002, .snd_nxt = 1002, .snd_max = 1002, .snd_buf_seq = 1001,
		.irs = 5000, .rcv_nxt = 5002, .rcv_adv = 5002 + 65536, .last_ack_sent = 5002,
		.rcv_wnd_clamp = 65536, .rcv_ssthresh = 65536, .rcv_mss = 1460, .rcv_seg_mss = 1460,
		.mss = 1460, .rcv_wscale = 7, .ws_ok = 1, .sack_ok = 1,
		.deadline = deadline, .initiator = UST_INIT_LOCAL, .nstates = 5,
		.states = { UST_TCP_SYN_SENT, UST_TCP_ESTABLISHED, UST_TCP_FIN_WAIT_1, UST_TCP_FIN_WAIT_2,
			    UST_TCP_TIME_WAIT },
		.bytes_sent = 1000,
	};
	return tw;
}

/* MANY - 1 TIME-WAITs handed over from another stack (stack/tcp_tw.c):
 * each adopted as a released TIME-WAIT under its 4-tuple, a second of the
 * same 4-tuple refused (EADDRINUSE), nonsense refused (EINVAL), one beyond
 * the bound on TIME-WAITs refused with ENFILE, while the ceiling on blocks
 * (one) still has room for a socket: TIME-WAITs are not counted there; a
 * block that is no TIME-WAIT is not exported; each ends at its own
 * deadline, and an exported one forgotten leaves no block behind. */
static void test_table_tw_adopt(void **state)
{
	struct table_test *x = table_new(1);
	ust_time now = x->h->now;
	struct ust_tcp_tw tw;
	int err;

	(void)state;
	x->tcp.cfg.max_tw = MANY - 1;
	for (unsigned i = 0; i < MANY - 1; i++) {
		tw = tw_made((uint16_t)(20000 + i), now + UST_SEC(1) + i * UST_MS(1));
		x->t[i] = ust_tcp_tw_adopt(&x->tcp, &tw, now, &err);
		assert_non_null(x->t[i]);
		assert_int_equal(err, 0);
		assert_int_equal(ust_tcp_get_state(x->t[i]), UST_TCP_TIME_WAIT);
		if (i % 500 == 0)
			check(x);
	}
	check(x);
	tw = tw_made(20000, now + UST_SEC(1));
	assert_null(ust_tcp_tw_adopt(&x->tcp, &tw, now, &err));
	assert_int_equal(err, -EADDRINUSE);
	tw = tw_made(1, now + UST_SEC(1));
	tw.rcv_wscale = 15;
	assert_null(ust_tcp_tw_adopt(&x->tcp, &tw, now, &err));
	assert_int_equal(err, -EINVAL);
	tw = tw_made(1, now + UST_SEC(1));
	assert_null(ust_tcp_tw_adopt(&x->tcp, &tw, now, &err));
	assert_int_equal(err, -ENFILE);
	x->t[MANY - 1] = new_block(x);
	check(x);
	ust_tcp_close(x->t[MANY - 1], now);
	/* Out again: an export equals what came in. */
	assert_int_equal(ust_tcp_tw_export(x->t[7], &tw), 0);
	assert_int_equal(tw.lport, 20007);
	assert_int_equal(tw.rcv_nxt, 5002);
	assert_int_equal(tw.deadline, now + UST_SEC(1) + 7 * UST_MS(1));
	assert_int_equal(tw.nstates, 5);
	ust_tcp_tw_forget(x->t[7]);
	assert_int_equal(ust_tcp_count(&x->tcp), MANY - 2);
	check(x);
	/* Halfway through the deadlines, half are gone. */
	ust_tcp_timers(&x->tcp, now + UST_SEC(1) + (MANY / 2) * UST_MS(1));
	check(x);
	assert_in_range(ust_tcp_count(&x->tcp), MANY / 2 - 2, MANY / 2);
	ust_tcp_timers(&x->tcp, now + UST_SEC(1) + MANY * UST_MS(1));
	check(x);
	assert_int_equal(ust_tcp_count(&x->tcp), 0);
	/* A block that is no released TIME-WAIT stays where it is. */
	x->t[0] = new_block(x);
	assert_int_equal(ust_tcp_tw_export(x->t[0], &tw), -EINVAL);
	ust_tcp_close(x->t[0], now);
	table_free(x);
}

/* A port whose only user is a TIME-WAIT kept as a record: a bind without
 * SO_REUSEADDR finds it in use and one with it does not, as Linux's bind
 * beside a timewait socket; the bind rules read the records where they
 * are (none is made a block again), and a lookup of its 4-tuple does. */
static void test_table_tw_record_bind(void **state)
{
	struct table_test *x = table_new(16);
	ust_time now = x->h->now;
	struct ust_tcp_tw tw = tw_made(20000, now + UST_SEC(60));
	struct ust_ip6 ours = ust_ip6_from_v4(OUR_IP), peer = ust_ip6_from_v4(PEER_IP);
	int err;

	(void)state;
	assert_non_null(ust_tcp_tw_adopt(&x->tcp, &tw, now, &err));
	ust_tcp_timers(&x->tcp, now); /* the sweep: a record */
	assert_int_equal(x->tcp.ntwrec, 1);
	check(x);
	x->t[0] = new_block(x);
	assert_int_equal(ust_tcp_bind(x->t[0], 20000, false), -EADDRINUSE);
	assert_int_equal(x->tcp.ntwrec, 1);
	assert_int_equal(ust_tcp_bind(x->t[0], 20000, true), 0);
	assert_int_equal(x->tcp.ntwrec, 1);
	check(x);
	assert_non_null(ust_tcp_find(&x->tcp, &ours, 20000, &peer, 80));
	assert_int_equal(x->tcp.ntwrec, 0);
	assert_int_equal(ust_tcp_count(&x->tcp), 2);
	check(x);
	ust_tcp_close(x->t[0], now);
	table_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_grows_listeners),
		cmocka_unit_test(test_table_grows_timers),
		cmocka_unit_test(test_table_ceiling_enfile),
		cmocka_unit_test(test_table_tw_adopt),
		cmocka_unit_test(test_table_tw_record_bind),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
