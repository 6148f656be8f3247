/* CUBIC (RFC 9438) and HyStart++ (RFC 9406), driven through struct tcp_cc
 * as the engine drives them, on a model flow: every round trip the whole
 * window is sent and each segment is acknowledged on its own, evenly
 * spread over the RTT. The window is compared with the RFCs' formulas:
 * W_cubic(t) = C (t - K)^3 + W_max, K = cbrt(W_max (1 - beta) / C); Reno's
 * estimate growing by 3 (1 - beta) / (1 + beta) per RTT; HyStart++'s
 * switch to Conservative Slow Start when the round's minimum RTT rises by
 * the threshold, and to congestion avoidance after five CSS rounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "tcp_impl.h"

#define C 0.4
#define BETA 0.7

struct flow {
	struct ust_tcb t;
	ust_time now;
};

static void flow_init(struct flow *f)
{
	memset(f, 0, sizeof(*f));
	f->t.cc = &tcp_cc_cubic;
	f->t.state = UST_TCP_ESTABLISHED;
	f->t.snd_cwnd = TCP_INIT_CWND;
	f->t.snd_ssthresh = TCP_INFINITE_SSTHRESH;
	f->t.snd_cwnd_clamp = 1u << 20;
	f->t.is_cwnd_limited = true;
	f->t.rto = UST_MS(300);
	f->now = UST_SEC(1);
	f->t.cc->init(&f->t);
}

/* One round trip: each segment of the window is acknowledged with this
 * RTT (sequence numbers count segments), and each ACK lets the sender fill
 * the window again, as ACK clocking does. */
static void flow_round(struct flow *f, ust_time rtt)
{
	struct ust_tcb *t = &f->t;
	uint32_t n = t->snd_cwnd;
	ust_time start = f->now;

	t->snd_max = t->snd_una + n;
	for (uint32_t i = 1; i <= n; i++) {
		struct tcp_rate_sample rs = { .rtt = rtt, .acked_sacked = 1, .delivered = 1 };
		f->now = start + rtt * i / n;
		t->snd_una++;
		t->cc->pkts_acked(t, &rs, f->now);
		t->cc->cong_avoid(t, 1, f->now);
		t->snd_max = t->snd_una + t->snd_cwnd;
	}
}

/* A loss found at the end of a round: ssthresh from the algorithm, and
 * (recovery over) the window at ssthresh, as the engine leaves it. */
static void flow_loss(struct flow *f)
{
	struct ust_tcb *t = &f->t;

	t->snd_ssthresh = t->cc->ssthresh(t);
	t->snd_cwnd = t->snd_ssthresh;
	t->snd_cwnd_cnt = 0;
}

static double w_cubic(double t, double w_max, double k)
{
	return C * (t - k) * (t - k) * (t - k) + w_max;
}

/* Slow start to 100 segments without loss, then a loss: ssthresh is
 * beta times the window, and the window then follows W_cubic(t) from
 * 0.7 W_max back up to W_max at t = K, flat around it, and beyond. */
static void test_cubic_follows_its_curve(void **state)
{
	const ust_time rtt = UST_MS(100);
	struct flow f;
	double k = 0, w_max = 100;
	ust_time epoch;

	(void)state;
	flow_init(&f);
	f.t.snd_ssthresh = 100; /* slow start ends at 100 */
	while (f.t.snd_cwnd < 100)
		flow_round(&f, rtt);
	assert_int_equal(f.t.snd_cwnd, 100);
	flow_loss(&f);
	assert_int_equal(f.t.snd_ssthresh, 70);
	k = 4.2171633265; /* cbrt(100 * 0.3 / 0.4) */
	epoch = f.now;
	for (int r = 1; r <= 90; r++) {
		double t, want;
		flow_round(&f, rtt);
		t = (double)(f.now - epoch) / 1e6;
		want = w_cubic(t, w_max, k);
		/* The window aims one RTT ahead and is spread over a window's
		 * ACKs: within two segments, or 2%, of the curve. */
		if (want < 70)
			want = 70;
		assert_true(f.t.snd_cwnd + 2 + want * 0.02 >= want);
		assert_true(f.t.snd_cwnd <= want + 2 + want * 0.02 + w_cubic(t + 0.1, w_max, k) - want);
	}
	/* 9 s after the loss: C (9 - K)^3 + 100 = 143.7 */
	assert_in_range(f.t.snd_cwnd, 140, 148);
}

/* Fast convergence (RFC 9438 §4.7): a loss before the window is back at
 * W_max lowers W_max to (1 + beta) / 2 of the window, so a newer flow
 * gets its share sooner; and ssthresh is always beta times the window.
 * Windows of a thousand segments at 100 ms, where the cubic curve, not
 * Reno's estimate, sets the pace. */
static void test_cubic_fast_convergence(void **state)
{
	const ust_time rtt = UST_MS(100);
	struct flow f;
	uint32_t before;
	double w_max, k, lo = 0, hi = 20;
	ust_time epoch;

	(void)state;
	flow_init(&f);
	f.t.snd_ssthresh = 1000;
	while (f.t.snd_cwnd < 1000)
		flow_round(&f, rtt);
	flow_loss(&f); /* W_max 1000, cwnd 700 */
	for (int r = 0; r < 20; r++)
		flow_round(&f, rtt);
	before = f.t.snd_cwnd;
	assert_in_range(before, 800, 900); /* W_cubic(2.1 s) = 857 */
	flow_loss(&f);
	assert_int_equal(f.t.snd_ssthresh, (uint32_t)(before * BETA));
	/* The new W_max, (1 + 0.7) / 2 of before, is the new plateau: the
	 * window is there at the new K (a cube root found by bisection,
	 * independent of the module's), not at the old 1000. */
	w_max = before * (1 + BETA) / 2;
	for (int i = 0; i < 100; i++) {
		double mid = (lo + hi) / 2;
		if (mid * mid * mid < (w_max - f.t.snd_cwnd) / C)
			lo = mid;
		else
			hi = mid;
	}
	k = lo;
	epoch = f.now;
	while ((double)(f.now - epoch) / 1e6 < k)
		flow_round(&f, rtt);
	assert_in_range(f.t.snd_cwnd, (uint32_t)(w_max * 0.98), (uint32_t)(w_max * 1.02) + 1);
}

/* Where Reno would grow faster (short RTT, small window), the window
 * follows Reno's estimate (RFC 9438 §4.3): alpha = 3 (1 - beta) / (1 +
 * beta) = 0.53 segments per RTT until it passes W_max, one after. Over
 * 300 round trips of 1 ms the cubic curve alone would add almost
 * nothing. */
static void test_cubic_reno_friendly(void **state)
{
	const ust_time rtt = UST_MS(1);
	struct flow f;
	double alpha = 3 * (1 - BETA) / (1 + BETA), w_est;

	(void)state;
	flow_init(&f);
	f.t.snd_ssthresh = 20;
	while (f.t.snd_cwnd < 20)
		flow_round(&f, rtt);
	flow_loss(&f); /* W_max 20, cwnd 14 */
	assert_int_equal(f.t.snd_cwnd, 14);
	w_est = 14;
	for (int r = 0; r < 300; r++) {
		flow_round(&f, rtt);
		w_est += w_est >= 20 ? 1 : alpha;
	}
	/* W_cubic(0.3 s) is 14.9; Reno's estimate about 300 */
	assert_true(w_cubic(0.3, 20, 2.466212) < 16);
	assert_in_range(f.t.snd_cwnd, (uint32_t)(w_est * 0.9), (uint32_t)(w_est * 1.1) + 1);
}

/* After idle the curve does not count the silence (TX_START moves the
 * epoch on): a flow idle for 5 s grows as if those 5 s had not been. */
static void test_cubic_idle_moves_the_epoch(void **state)
{
	const ust_time rtt = UST_MS(100);
	struct flow busy, idle;

	(void)state;
	flow_init(&busy);
	busy.t.snd_ssthresh = 100;
	while (busy.t.snd_cwnd < 100)
		flow_round(&busy, rtt);
	flow_loss(&busy);
	flow_round(&busy, rtt);
	idle = busy;
	idle.t.lsndtime = idle.now;
	idle.now += UST_SEC(5);
	idle.t.cc->cwnd_event(&idle.t, TCP_CA_EV_TX_START, idle.now);
	for (int r = 0; r < 20; r++) {
		flow_round(&busy, rtt);
		flow_round(&idle, rtt);
	}
	assert_int_equal(idle.t.snd_cwnd, busy.t.snd_cwnd);
}

/* HyStart++ (RFC 9406 §4.2): slow start doubles while the RTT holds; a
 * round whose minimum RTT rose by max(4 ms, min(lastRoundMinRTT / 8,
 * 16 ms)) starts Conservative Slow Start, growing a quarter as fast
 * (x1.25 a round); five rounds of it end slow start with ssthresh at the
 * window, and congestion avoidance grows slowly from there. (HyStart++'s
 * rounds start at an ACK, the model's at a window: the rise is seen in
 * the round after the model's first slow one, hence "within two".) */
static void test_hystart_css_then_avoidance(void **state)
{
	struct flow f;
	double g[12];
	uint32_t ssthresh[12];
	int css = 0, first_css = -1;

	(void)state;
	flow_init(&f);
	for (int r = 0; r < 3; r++)
		flow_round(&f, UST_MS(100));
	assert_int_equal(f.t.snd_cwnd, 80);
	/* 112 ms: below 100 + 12.5, not a rise */
	flow_round(&f, UST_MS(112));
	assert_int_equal(f.t.snd_cwnd, 160);
	for (int r = 0; r < 12; r++) {
		uint32_t before = f.t.snd_cwnd;
		flow_round(&f, UST_MS(140)); /* 112 + 14 passed */
		g[r] = (double)f.t.snd_cwnd / before;
		ssthresh[r] = f.t.snd_ssthresh;
		if (g[r] > 1.2 && g[r] < 1.3) {
			css++;
			if (first_css < 0)
				first_css = r;
		}
	}
	assert_true(first_css >= 0 && first_css <= 1);
	assert_in_range(css, 4, 5);
	for (int r = first_css; r < first_css + 3; r++)
		assert_int_equal(ssthresh[r], TCP_INFINITE_SSTHRESH);
	assert_true(f.t.snd_ssthresh != TCP_INFINITE_SSTHRESH);
	for (int r = first_css + 6; r < 12; r++)
		assert_true(g[r] < 1.1);
}

/* A rise that was jitter: in CSS, a round whose minimum RTT falls below
 * the baseline that started CSS goes back to slow start. */
static void test_hystart_css_spurious(void **state)
{
	struct flow f;
	uint32_t before;

	(void)state;
	flow_init(&f);
	flow_round(&f, UST_MS(100));
	flow_round(&f, UST_MS(100));
	flow_round(&f, UST_MS(130)); /* CSS from the eighth sample on */
	before = f.t.snd_cwnd;
	flow_round(&f, UST_MS(100)); /* below the 130 ms baseline: slow start */
	flow_round(&f, UST_MS(100));
	assert_true(f.t.snd_cwnd >= 3 * before);
	assert_int_equal(f.t.snd_ssthresh, TCP_INFINITE_SSTHRESH);
}

/* Reno through the same interface halves: the table knows both. */
static void test_cc_table(void **state)
{
	(void)state;
	assert_ptr_equal(tcp_cc_find("cubic"), &tcp_cc_cubic);
	assert_ptr_equal(tcp_cc_find("reno"), &tcp_cc_reno);
	assert_null(tcp_cc_find("cubicx"));
	assert_null(tcp_cc_find(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cubic_follows_its_curve),
		cmocka_unit_test(test_cubic_fast_convergence),
		cmocka_unit_test(test_cubic_reno_friendly),
		cmocka_unit_test(test_cubic_idle_moves_the_epoch),
		cmocka_unit_test(test_hystart_css_then_avoidance),
		cmocka_unit_test(test_hystart_css_spurious),
		cmocka_unit_test(test_cc_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
