/* BBR as Linux's "bbr" (BBRv1, stack/tcp_bbr.c) driven through struct
 * tcp_cc on the model flow of bbr_model.h. The tests follow its state
 * machine as Linux's tcp_bbr.c runs it: Startup paces and sizes cwnd at
 * 2/ln 2 = 2.89 until the bandwidth stops growing by 25% for three
 * rounds; Drain paces at 1/2.89 until the flight is down to the BDP;
 * ProbeBW cycles eight phases of one min RTT (1.25, 0.75, six of 1.0)
 * with cwnd at twice the BDP; ProbeRTT comes 10 s after the last lower
 * RTT and holds cwnd at 4 for 200 ms and a round. And what sets it apart
 * from BBRv3 (test_tcp_bbr3.c): random loss of 5% leaves the model and
 * the window where they were; only loss of 20% and more at a steady rate
 * (a policer) makes it stop probing. */
#include "bbr_model.h"

/* 40 ms of propagation, a bottleneck of one segment per 200 µs (5000
 * segments/s, 7.24 MB/s): a BDP of 200 segments. */
#define RTT UST_MS(40)
#define TX_US 200
#define LINK_BPS (1000000.0 / TX_US * MSS)
#define BDP 200

#define HIGH_GAIN 739  /* 2.89 */
#define DRAIN_GAIN 88  /* 1 / 2.89 */

/* Startup at 2.89 for pacing and cwnd, ended by the plateau; Drain at
 * 1/2.89, over within a few rounds, with ssthresh set to the BDP; then
 * ProbeBW, at twice the BDP. */
static void test_bbr_startup_drain_probe_bw(void **state)
{
	static struct flow f;
	struct trace tr = { 0 };
	struct tcp_bbr_info i;
	unsigned drain;

	(void)state;
	flow_init(&f, &tcp_cc_bbr, RTT, TX_US);
	i = info(&f);
	assert_string_equal(i.state, "startup");
	assert_int_equal(i.pacing_gain, HIGH_GAIN);
	assert_int_equal(i.cwnd_gain, HIGH_GAIN);
	/* Before any sample: the initial window over the handshake's RTT. */
	assert_in_range(f.t.pacing_rate, 10.0 * MSS / 0.04 * 2.89 * 0.98, 10.0 * MSS / 0.04 * 2.89 * 1.0);
	flow_run(&f, UST_SEC(1) + UST_MS(2000), watch, &tr);

	drain = find(&tr, "drain", 0);
	assert_int_equal(drain, 1);
	assert_string_equal(tr.states[2], "probe_bw");
	assert_int_equal(tr.n, 3); /* nothing else within 2 s */
	/* About log2(200 / 10) = 4.3 rounds to fill the pipe and three more
	 * to see it full, rounds that grow to three times the RTT as
	 * Startup's queue builds (cwnd 2.89 x BDP): 8 to 20 RTTs of the path. */
	assert_true(tr.at[drain] - UST_SEC(1) >= 7 * RTT);
	assert_true(tr.at[drain] - UST_SEC(1) <= 20 * RTT);
	assert_true(tr.inflight_at_drain_exit <= tr.bdp_at_drain_exit + 3 * 2 + 4);
	assert_true(tr.at[2] - tr.at[drain] <= 3 * (RTT + UST_MS(10)));
	i = info(&f);
	assert_true(i.full_bw_reached);
	assert_true(i.max_bw >= LINK_BPS * 0.95 && i.max_bw <= LINK_BPS * 1.05);
	assert_in_range(i.min_rtt, RTT, RTT + TX_US + 100);
	assert_int_equal(i.cwnd_gain, 512);
	/* Drain set ssthresh to the BDP with its budget, three bursts at
	 * Startup's rate (Linux's bbr_check_drain), for TCP_INFO. */
	assert_in_range(f.t.snd_ssthresh, BDP, BDP + 3 * 16 + 2);
	/* cwnd: twice the BDP, the budget and the aggregation estimate. */
	assert_in_range(f.t.snd_cwnd, 2 * BDP, 2 * BDP + 3 * 8 + 2 + 2 + 40);
	assert_true(tr.pacing_checked);
}

struct gains {
	unsigned seen[3];      /* phases at 1.25, 0.75, 1.0 */
	uint32_t last_gain;
	ust_time phase_start;
	unsigned short_phases;   /* 1.0 or 1.25 phases shorter than a min RTT */
	unsigned changes;
};

/* In ProbeBW, note each change of pacing gain and how long the phase
 * before it lasted. */
static void watch_gains(struct flow *f, void *arg)
{
	struct gains *g = arg;
	struct tcp_bbr_info i = info(f);

	if (strcmp(i.state, "probe_bw") != 0)
		return;
	if (i.pacing_gain != g->last_gain) {
		if (g->last_gain && g->last_gain >= 256 && f->now - g->phase_start < RTT)
			g->short_phases++;
		g->last_gain = i.pacing_gain;
		g->phase_start = f->now;
		g->changes++;
		if (i.pacing_gain == 320)
			g->seen[0]++;
		else if (i.pacing_gain == 192)
			g->seen[1]++;
		else if (i.pacing_gain == 256)
			g->seen[2]++;
		else
			fail_msg("ProbeBW gain %u", i.pacing_gain);
	}
	assert_pacing_follows_bw(f);
}

/* ProbeBW's cycle: 1.25 (probe) then 0.75 (drain it), then 1.0 until the
 * cycle comes round; a phase lasts at least one min RTT (the draining
 * one may end early). Eight phases of about 40 ms: a probe every ~320
 * ms. */
static void test_bbr_probe_bw_cycle(void **state)
{
	static struct flow f;
	struct gains g = { 0 };

	(void)state;
	flow_init(&f, &tcp_cc_bbr, RTT, TX_US);
	flow_run(&f, UST_SEC(1) + UST_MS(1000), NULL, NULL);
	assert_string_equal(info(&f).state, "probe_bw");
	flow_run(&f, UST_SEC(1) + UST_MS(9000), watch_gains, &g); /* before ProbeRTT's 10 s */
	/* 8 s of cycles of ~8 x 41 ms */
	assert_in_range(g.seen[0], 8000 / (8 * 50), 8000 / (8 * 41) + 1);
	assert_true(g.seen[1] + 1 >= g.seen[0] && g.seen[1] <= g.seen[0] + 1);
	assert_int_equal(g.short_phases, 0);
	assert_in_range(f.t.snd_cwnd, 2 * BDP, 2 * BDP + 3 * 8 + 2 + 2 + 40);
}

/* ProbeRTT: 10 s after the least RTT was last seen, cwnd 4 for 200 ms
 * and a round, then ProbeBW again with the window it had. */
static void test_bbr_probe_rtt(void **state)
{
	static struct flow f;
	struct trace tr = { 0 };
	unsigned p;
	uint32_t cwnd_before;

	(void)state;
	flow_init(&f, &tcp_cc_bbr, RTT, TX_US);
	flow_run(&f, UST_SEC(1) + UST_MS(9500), watch, &tr);
	assert_int_equal(find(&tr, "probe_rtt", 0), UINT32_MAX);
	cwnd_before = f.t.snd_cwnd;
	flow_run(&f, UST_SEC(1) + UST_MS(12000), watch, &tr);
	p = find(&tr, "probe_rtt", 0);
	assert_int_not_equal(p, UINT32_MAX);
	assert_true(tr.probe_rtt_start >= UST_SEC(1) + UST_MS(10000));
	assert_true(tr.probe_rtt_start <= UST_SEC(1) + UST_MS(10000) + 12 * RTT);
	assert_int_equal(tr.max_cwnd_in_probe_rtt, 4);
	assert_true(tr.probe_rtt_end - tr.probe_rtt_start >= UST_MS(200));
	assert_true(tr.probe_rtt_end - tr.probe_rtt_start <= UST_MS(200) + 3 * (RTT + UST_MS(20)));
	assert_string_equal(tr.states[p + 1], "probe_bw");
	/* the window from before ProbeRTT, at once */
	flow_run(&f, tr.probe_rtt_end + 1, NULL, NULL);
	assert_true(f.t.snd_cwnd >= cwnd_before - 10);
}

/* Random loss of 5% from the third round on: BBRv1 goes on probing
 * (1.25 phases keep coming), suspects no policer (its rate is the
 * filter's), and over 6 s delivers more than twice what BBRv3 delivers
 * on the same flow, whose loss response caps the flight (the reason
 * "bbr" is this module, see tcp_bbr.c's head). The model re-enters
 * recovery every round, whose first round of packet conservation keeps
 * either from the link's full rate. */
static void test_bbr_random_loss_keeps_probing(void **state)
{
	static struct flow f, g;
	struct gains seen = { 0 };

	(void)state;
	flow_init(&f, &tcp_cc_bbr, RTT, TX_US);
	f.drop_every = 20;
	f.drop_from = 60;
	flow_run(&f, UST_SEC(1) + UST_MS(3000), NULL, NULL);
	assert_string_equal(info(&f).state, "probe_bw");
	flow_run(&f, UST_SEC(1) + UST_MS(6000), watch_gains, &seen);
	assert_true(seen.seen[0] >= 3);
	assert_true(info(&f).bw == info(&f).max_bw);

	flow_init(&g, &tcp_cc_bbr3, RTT, TX_US);
	g.drop_every = 20;
	g.drop_from = 60;
	flow_run(&g, UST_SEC(1) + UST_MS(6000), NULL, NULL);
	assert_true(f.t.delivered > 2 * g.t.delivered);
}

/* While the long-term model is in use, ProbeBW paces at 1.0. */
static void watch_policed(struct flow *f, void *arg)
{
	unsigned *policed_acks = arg;
	struct tcp_bbr_info i = info(f);

	if (strcmp(i.state, "probe_bw") != 0 || i.bw == i.max_bw)
		return;
	assert_int_equal(i.pacing_gain, 256);
	(*policed_acks)++;
}

/* A policer: 25% of the segments dropped at a steady delivery rate. Two
 * intervals of 4 to 16 rounds with 20% loss and the same rate make the
 * model use their rate (lt_bw) instead of the filter's, with a pacing
 * gain of 1.0: no probing into the policer's drops. */
static void test_bbr_policer_detected(void **state)
{
	static struct flow f;
	unsigned policed_acks = 0;

	(void)state;
	flow_init(&f, &tcp_cc_bbr, RTT, TX_US);
	f.drop_every = 4;
	f.drop_from = 40;
	flow_run(&f, UST_SEC(1) + UST_MS(5000), watch_policed, &policed_acks);
	assert_true(policed_acks > 100);
}

/* TCP_CONGESTION's names: "bbr" is this one, "bbr3" the draft's, and a
 * BBR provisions three windows of send buffer. */
static void test_bbr_in_table(void **state)
{
	(void)state;
	assert_ptr_equal(tcp_cc_find("bbr"), &tcp_cc_bbr);
	assert_ptr_equal(tcp_cc_find("bbr3"), &tcp_cc_bbr3);
	assert_int_equal(tcp_cc_bbr.sndbuf_expand(NULL), 3);
	assert_int_equal(tcp_cc_bbr3.sndbuf_expand(NULL), 3);
	assert_null(tcp_cc_cubic.sndbuf_expand);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bbr_startup_drain_probe_bw),
		cmocka_unit_test(test_bbr_probe_bw_cycle),
		cmocka_unit_test(test_bbr_probe_rtt),
		cmocka_unit_test(test_bbr_random_loss_keeps_probing),
		cmocka_unit_test(test_bbr_policer_detected),
		cmocka_unit_test(test_bbr_in_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
