/* BBRv3 (draft-ietf-ccwg-bbr, "bbr3") driven through struct tcp_cc as the engine
 * drives it, on a model flow (bbr_model.h): a bulk sender paced at t->pacing_rate and
 * held to snd_cwnd, a bottleneck of fixed rate with a FIFO queue, a fixed
 * propagation delay, one ACK per segment with its delivery-rate sample
 * built as tcp_rate.c builds it. The tests follow the state machine
 * through its states and check each against the draft: Startup paces at
 * 2.77 x bw and ends when the bandwidth stops growing by 25% for three
 * rounds (or on loss above 2%); Drain paces at 0.5 until the flight is
 * down to the BDP; ProbeBW cycles DOWN (0.9), CRUISE (1.0), REFILL (1.0)
 * and UP (1.25); ProbeRTT comes 5 s after the last lower RTT, holds the
 * flight to half the BDP for at least 200 ms and a round, and returns to
 * CRUISE. */
#include "bbr_model.h"

/* 40 ms of propagation, a bottleneck of one segment per 200 µs (5000
 * segments/s, 7.24 MB/s): a BDP of 200 segments. */
#define RTT UST_MS(40)
#define TX_US 200
#define LINK_BPS (1000000.0 / TX_US * MSS)

/* Startup: the pacing rate is 2.77 x bw (doubling every round), until
 * three rounds bring less than 25% more bandwidth; then the estimate is
 * the bottleneck's rate. Drain paces at 0.5 until the flight is down to
 * the BDP, within a few rounds. */
static void test_bbr_startup_then_drain(void **state)
{
	static struct flow f;
	struct trace tr = { 0 };
	struct tcp_bbr_info i;
	unsigned drain, down;

	(void)state;
	flow_init(&f, &tcp_cc_bbr3, RTT, TX_US);
	i = info(&f);
	assert_string_equal(i.state, "startup");
	assert_int_equal(i.pacing_gain, 709); /* 2.77 */
	assert_int_equal(i.cwnd_gain, 512);   /* 2 */
	/* Before any sample: the initial window over the handshake's RTT. */
	assert_in_range(f.t.pacing_rate, 10.0 * MSS / 0.04 * 2.77 * 0.98, 10.0 * MSS / 0.04 * 2.77 * 1.0);
	flow_run(&f, UST_SEC(1) + UST_MS(2000), watch, &tr);

	drain = find(&tr, "drain", 0);
	assert_int_equal(drain, 1); /* startup, then drain */
	/* then ProbeBW: DOWN, or CRUISE at once when the flight is already
	 * down to the BDP on the ACK that ends Drain (the same ACK runs
	 * DOWN's check, §5.2.3) */
	down = 2;
	assert_true(strcmp(tr.states[down], "probe_bw_down") == 0 ||
		    strcmp(tr.states[down], "probe_bw_cruise") == 0);
	/* About log2(200 / 10) = 4.3 rounds to fill the pipe and three more
	 * to see it full, rounds that grow to twice the RTT as Startup's
	 * queue builds: Startup is over after 8 to 16 RTTs of the path. */
	assert_true(tr.at[drain] - UST_SEC(1) >= 7 * RTT);
	assert_true(tr.at[drain] - UST_SEC(1) <= 16 * RTT);
	i = info(&f);
	assert_true(i.full_bw_reached);
	assert_true(i.max_bw >= LINK_BPS * 0.95 && i.max_bw <= LINK_BPS * 1.05);
	assert_in_range(i.min_rtt, RTT, RTT + TX_US + 100);
	/* Drain: inflight down to the BDP (and its budget), in fewer than
	 * three rounds. */
	assert_true(tr.inflight_at_drain_exit <= tr.bdp_at_drain_exit + 3 * 2 + 4);
	assert_true(tr.at[down] - tr.at[drain] <= 3 * (RTT + UST_MS(10)));
	assert_true(tr.pacing_checked);
}

/* ProbeBW: DOWN, CRUISE, REFILL, UP, DOWN ... with their gains, the next
 * probe within 2 to 3 s (or 63 rounds, 2.5 s here); the window is twice
 * the BDP (2.25 in UP) plus the aggregation estimate. */
static void test_bbr_probe_bw_cycle(void **state)
{
	static struct flow f;
	struct trace tr = { 0 };
	unsigned at = 0, ups = 0;
	ust_time last_up = 0;
	static const char *const cycle[] = { "probe_bw_down", "probe_bw_cruise", "probe_bw_refill",
					     "probe_bw_up" };
	static const uint32_t gains[] = { 230, 256, 256, 320 };

	(void)state;
	flow_init(&f, &tcp_cc_bbr3, RTT, TX_US);
	flow_run(&f, UST_SEC(1) + UST_MS(4900), watch, &tr); /* before ProbeRTT's 5 s */
	/* after Drain: DOWN (seen or not: it may end on Drain's last ACK) */
	at = find(&tr, "drain", 0) + 1;
	if (strcmp(tr.states[at], "probe_bw_cruise") == 0)
		at--;
	for (unsigned k = at + 1; k < tr.n; k++) {
		unsigned phase = (k - at) % 4;
		assert_string_equal(tr.states[k], cycle[phase]);
		if (phase == 3) {
			if (last_up)
				assert_true(tr.at[k] - last_up <= UST_MS(3000) + 4 * RTT);
			last_up = tr.at[k];
			ups++;
		}
	}
	assert_true(ups >= 1);
	/* The gains, state by state. */
	for (unsigned p = 0; p < 4; p++) {
		static struct flow g;
		struct trace tg = { 0 };
		flow_init(&g, &tcp_cc_bbr3, RTT, TX_US);
		while (strcmp(info(&g).state, cycle[p]) != 0)
			flow_run(&g, g.now + 1, watch, &tg);
		assert_int_equal(info(&g).pacing_gain, gains[p]);
		assert_int_equal(info(&g).cwnd_gain, p == 3 ? 576 : 512);
		assert_pacing_follows_bw(&g);
	}
	/* In steady state the flow fills the link without more than a BDP
	 * of queue: cwnd about 2 BDP. */
	assert_in_range(f.t.snd_cwnd, 200, 2 * 225 + 3 * 8 + 2 + 200);
}

/* ProbeRTT: the RTT never gets lower than the first samples (the model's
 * path is fixed), so 5 s after them the flow enters ProbeRTT, holds cwnd
 * at half the BDP (at least 4) for 200 ms and a round, and goes back to
 * CRUISE with the window it had. */
static void test_bbr_probe_rtt(void **state)
{
	static struct flow f;
	struct trace tr = { 0 };
	unsigned p;
	uint32_t bdp;

	(void)state;
	flow_init(&f, &tcp_cc_bbr3, RTT, TX_US);
	flow_run(&f, UST_SEC(1) + UST_MS(7000), watch, &tr);
	p = find(&tr, "probe_rtt", 0);
	assert_int_not_equal(p, UINT32_MAX);
	/* 5 s after the least RTT was last seen: early in the flow, when
	 * the queue was empty. */
	assert_true(tr.probe_rtt_start >= UST_SEC(1) + UST_MS(5000));
	assert_true(tr.probe_rtt_start <= UST_SEC(1) + UST_MS(5000) + 12 * RTT);
	bdp = info(&f).bdp;
	assert_in_range(tr.max_cwnd_in_probe_rtt, 4, bdp / 2 + 1);
	assert_true(tr.probe_rtt_end - tr.probe_rtt_start >= UST_MS(200));
	assert_true(tr.probe_rtt_end - tr.probe_rtt_start <= UST_MS(200) + 3 * (RTT + UST_MS(20)));
	assert_string_equal(tr.states[p + 1], "probe_bw_cruise");
	/* Back to the model's window. */
	flow_run(&f, f.now + 4 * RTT, NULL, NULL);
	assert_true(f.t.snd_cwnd >= bdp);
}

/* Startup ends on loss (§5.3.1.3): 5% of the segments dropped from the
 * third round on, long before the bandwidth stops growing; after a round
 * of recovery with six lossy ACKs and more than 2% loss the pipe is
 * taken as full, inflight_longterm keeps what was delivered, and Drain
 * follows. Outside probes, rounds with loss lower the short-term bounds
 * by no more than 0.7 per round. */
static void test_bbr_startup_exits_on_loss(void **state)
{
	static struct flow f;
	struct trace tr = { 0 };
	struct tcp_bbr_info i;

	(void)state;
	/* A fast bottleneck (one segment per 20 µs) so that the bandwidth
	 * would grow for many rounds. */
	flow_init(&f, &tcp_cc_bbr3, RTT, 20);
	f.drop_every = 20;
	f.drop_from = 60;
	flow_run(&f, UST_SEC(1) + UST_MS(600), watch, &tr);
	assert_int_not_equal(find(&tr, "drain", 0), UINT32_MAX);
	i = info(&f);
	assert_true(i.full_bw_reached);
	assert_true(i.inflight_longterm != UINT32_MAX);
	/* Well below what the link could carry: loss, not the plateau. */
	assert_true(i.max_bw < 1000000.0 / 20 * MSS * 0.5);
	assert_true(tr.at[find(&tr, "drain", 0)] - UST_SEC(1) <= 12 * RTT);
	/* Loss in DOWN or CRUISE: bw_shortterm and inflight_shortterm set. */
	flow_run(&f, f.now + UST_MS(1500), watch, &tr);
	i = info(&f);
	assert_true(strcmp(i.state, "startup") != 0);
	assert_true(i.inflight_longterm >= 4);
}

/* TCP_CONGESTION's table has bbr. */
static void test_bbr_in_table(void **state)
{
	(void)state;
	assert_ptr_equal(tcp_cc_find("bbr3"), &tcp_cc_bbr3);
	assert_null(tcp_cc_find("bbr2"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bbr_startup_then_drain),
		cmocka_unit_test(test_bbr_probe_bw_cycle),
		cmocka_unit_test(test_bbr_probe_rtt),
		cmocka_unit_test(test_bbr_startup_exits_on_loss),
		cmocka_unit_test(test_bbr_in_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
