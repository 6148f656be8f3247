/* Connections to our own address (ust_stack_loop): the engine takes its
 * own datagrams back in, turn by turn, and none reaches the link; one for
 * a port another stack holds goes to loop_away instead; one another stack
 * passed (ust_stack_input_looped) is taken in like our own. The invariant
 * checker (tests/common/tcp_invariants.c) runs after each step. */
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

#define AWAY_MAX 16

struct loop_test {
	struct harness *h;
	struct ust_tcp tcp;
	bool foreign;                  /* port_foreign's answer */
	unsigned n_away;               /* datagrams given to loop_away */
	size_t away_len[AWAY_MAX];
	uint8_t away[AWAY_MAX][CAP_LEN];
};

static bool port_foreign(void *ctx, uint16_t port, const struct ust_ip6 *raddr, uint16_t rport)
{
	return ((struct loop_test *)ctx)->foreign;
}

static void loop_away(void *ctx, const uint8_t *dgram, size_t len)
{
	struct loop_test *x = ctx;

	assert_true(x->n_away < AWAY_MAX);
	assert_true(len <= CAP_LEN);
	memcpy(x->away[x->n_away], dgram, len);
	x->away_len[x->n_away++] = len;
}

static void check(struct loop_test *x)
{
	char msg[512];

	ust_stack_flush(&x->h->st);
	if (!tcp_invariants_check(&x->tcp, msg, sizeof(msg)))
		fail_msg("%s", msg);
}

/* Takes looped datagrams in until none is left; how many turns it took. */
static unsigned run_loop(struct loop_test *x)
{
	unsigned turns = 0;

	while (ust_stack_loop_pending(&x->h->st)) {
		assert_true(turns < 100);
		ust_stack_loop(&x->h->st, x->h->now);
		turns++;
		check(x);
	}
	return turns;
}

static struct loop_test *loop_new(void)
{
	struct loop_test *x = calloc(1, sizeof(*x));
	struct ust_tcp_config cfg;

	assert_non_null(x);
	x->h = harness_new(false, MASK24, 0, 256);
	ust_tcp_default_config(&cfg);
	cfg.port_foreign = port_foreign;
	cfg.ctx = x;
	assert_int_equal(ust_tcp_init(&x->tcp, &x->h->st, &cfg), 0);
	x->tcp.now = x->h->now;
	x->h->st.loop_away = loop_away;
	x->h->st.loop_away_ctx = x;
	return x;
}

static void loop_free(struct loop_test *x)
{
	ust_tcp_destroy(&x->tcp);
	ust_stack_flush(&x->h->st);
	assert_false(ust_stack_loop_pending(&x->h->st));
	assert_int_equal(x->h->st.pool.avail, x->h->st.pool.size);
	ust_stack_destroy(&x->h->st);
	free(x->h);
	free(x);
}

static struct ust_tcb *new_block(struct loop_test *x)
{
	int err;
	struct ust_tcb *t = ust_tcp_create(&x->tcp, NULL, &err);

	assert_non_null(t);
	return t;
}

/* A listener and a client of it on our address: the handshake is three
 * turns (SYN, SYN-ACK, ACK), data and FINs cross, nothing reaches the
 * link, and every datagram is counted as looped. */
static void test_loop_connection(void **state)
{
	struct loop_test *x = loop_new();
	struct ust_tcb *l = new_block(x), *c = new_block(x), *s;
	char buf[16];
	int err;

	(void)state;
	assert_int_equal(ust_tcp_bind(l, 80, false), 0);
	assert_int_equal(ust_tcp_listen(l, 4), 0);
	assert_int_equal(ust_tcp_connect(c, OUR_IP, 80, x->h->now), 0);
	check(x);
	assert_int_equal(run_loop(x), 3);
	assert_int_equal(ust_tcp_get_state(c), UST_TCP_ESTABLISHED);
	s = ust_tcp_accept(l, NULL, &err);
	assert_non_null(s);
	assert_int_equal(ust_tcp_get_state(s), UST_TCP_ESTABLISHED);

	assert_int_equal(ust_tcp_send(c, "ping", 4, x->h->now), 4);
	ust_tcp_timers(&x->tcp, x->h->now); /* sends what SEND queued */
	run_loop(x);
	assert_int_equal(ust_tcp_receive(s, buf, sizeof(buf), x->h->now), 4);
	assert_memory_equal(buf, "ping", 4);

	/* The client closes first: TIME-WAIT is its, CLOSED the server's. */
	assert_int_equal(ust_tcp_close(c, x->h->now), 0);
	run_loop(x);
	assert_int_equal(ust_tcp_receive(s, buf, sizeof(buf), x->h->now), 0);
	assert_int_equal(ust_tcp_close(s, x->h->now), 0);
	run_loop(x);
	assert_int_equal(ust_tcp_get_state(c), UST_TCP_TIME_WAIT);

	assert_int_equal(x->h->n_out, 0); /* nothing on the link */
	assert_int_equal(x->n_away, 0);
	assert_true(x->h->st.ctr.event[UST_EV_LOOPED] >= 7);
	ust_tcp_close(l, x->h->now);
	loop_free(x);
}

/* A port nobody holds: the SYN draws a RST, which comes back to us too,
 * and connect ends with ECONNREFUSED. */
static void test_loop_refused(void **state)
{
	struct loop_test *x = loop_new();
	struct ust_tcb *c = new_block(x);
	char buf[4];

	(void)state;
	assert_int_equal(ust_tcp_connect(c, OUR_IP, 81, x->h->now), 0);
	assert_int_equal(run_loop(x), 2);
	assert_int_equal(ust_tcp_get_state(c), UST_TCP_CLOSED);
	assert_int_equal(ust_tcp_receive(c, buf, sizeof(buf), x->h->now), -ECONNREFUSED);
	assert_int_equal(x->h->n_out, 0);
	ust_tcp_close(c, x->h->now);
	loop_free(x);
}

/* A port another stack on the address holds: the SYN goes to loop_away
 * whole (IPv4 header, our address both ways, the SYN flag), and that
 * stack's answer, passed back to us, establishes the connection. */
static void test_loop_away(void **state)
{
	struct loop_test *x = loop_new();
	struct ust_tcb *c = new_block(x);
	uint8_t synack[64];
	const uint8_t *syn;
	struct ust_ipv4 ip;
	uint32_t seq;
	uint16_t sport;

	(void)state;
	x->foreign = true;
	assert_int_equal(ust_tcp_connect(c, OUR_IP, 82, x->h->now), 0);
	assert_int_equal(run_loop(x), 1);
	assert_int_equal(x->n_away, 1);
	assert_int_equal(ust_ipv4_parse(x->away[0], x->away_len[0], &ip), UST_OK);
	assert_int_equal(ip.src, OUR_IP);
	assert_int_equal(ip.dst, OUR_IP);
	syn = ip.payload;
	assert_int_equal(syn[13], UST_TH_SYN);
	assert_int_equal(ust_get16(syn + 2), 82);
	assert_int_equal(x->h->st.ctr.drop[UST_DROP_TCP_FOREIGN], 1);

	/* The other stack's SYN-ACK (no options: MSS 536, as RFC 9293 says
	 * for none), from port 82 to the client's. */
	sport = ust_get16(syn);
	seq = ust_get32(syn + 4);
	memset(synack, 0, sizeof(synack));
	ust_put16(synack + 20, 82);
	ust_put16(synack + 22, sport);
	ust_put32(synack + 24, 5000);
	ust_put32(synack + 28, seq + 1);
	synack[32] = 5 << 4;
	synack[33] = UST_TH_SYN | UST_TH_ACK;
	ust_put16(synack + 34, 65535);
	ust_ipv4_build_tos(synack, OUR_IP, OUR_IP, UST_IPPROTO_TCP, 0, 40, 1, 64, UST_IP_DF);
	ust_stack_input_looped(&x->h->st, synack, 40, x->h->now);
	check(x);
	assert_int_equal(ust_tcp_get_state(c), UST_TCP_ESTABLISHED);
	/* Its ACK is another stack's port too: away, as the SYN went. */
	run_loop(x);
	assert_int_equal(x->n_away, 2);
	assert_int_equal(x->h->n_out, 0);
	ust_tcp_abort(c, x->h->now);
	run_loop(x);
	loop_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loop_connection),
		cmocka_unit_test(test_loop_refused),
		cmocka_unit_test(test_loop_away),
	};

	return cmocka_run_group_tests_name("tcp_loop", tests, NULL, NULL);
}
