/* CUBIC (RFC 9438) with HyStart++ (RFC 9406): the default algorithm, as
 * Linux's default is cubic.
 *
 * After a loss the window follows a cubic function of the time since the
 * loss, centred on the window where it happened (W_max): it climbs quickly
 * back towards W_max, stays flat near it, then probes beyond. Where Reno
 * would be faster (short RTTs, small windows) it follows an estimate of
 * Reno's window instead (§4.3). Windows are in segments, times in seconds
 * here; the arithmetic is the RFC's, in double precision.
 *
 * Where RFC 9438 leaves a choice, this follows Linux's tcp_cubic.c: fast
 * convergence on, C = 0.4, beta = 0.7, the cubic function evaluated one
 * minimum RTT ahead (Linux's delay_min, not the smoothed RTT), an idle
 * period moves the epoch on rather than counting as growth time
 * (CA_EVENT_TX_START), the window undone to the larger of now and before.
 * Where Linux differs from the RFCs on purpose, the RFCs win and this says
 * so: slow start ends by HyStart++ (RFC 9406), not Linux's older HyStart
 * (ACK trains and a delay threshold of an eighth of the minimum RTT, which
 * leaves slow start at once instead of through Conservative Slow Start);
 * and there is no cap of 5% growth per RTT when no W_max is known (Linux's
 * "cnt = 20"): RFC 9438 §4.10 starts the first epoch at K = 0. */
#include "tcp_impl.h"

#define CUBIC_C 0.4          /* RFC 9438 §5: segments / s^3 */
#define CUBIC_BETA 0.7       /* RFC 9438 §4.6: the multiplicative decrease */
/* §4.3: Reno's increase per RTT that gives the same average window as
 * CUBIC's decrease of beta. */
#define CUBIC_ALPHA (3.0 * (1.0 - CUBIC_BETA) / (1.0 + CUBIC_BETA))

/* RFC 9406 §4.3 */
#define HS_MIN_RTT_THRESH UST_MS(4)
#define HS_MAX_RTT_THRESH UST_MS(16)
#define HS_MIN_RTT_DIVISOR 8
#define HS_N_RTT_SAMPLE 8
#define HS_CSS_GROWTH_DIVISOR 4
#define HS_CSS_ROUNDS 5
/* "L", the segments one ACK may add in slow start, is unlimited here,
 * as in Linux's slow start: RFC 9406 asks 8 of a sender that does not
 * pace, but a receiver that coalesces (GRO, LRO, Linux's own receive
 * path) acknowledges many segments at once, and a limit of 8 would slow
 * slow start exactly where the path is fastest. */

enum hystart_phase {
	HS_SLOW_START,      /* looking for the RTT to rise */
	HS_CSS,             /* Conservative Slow Start: a quarter of the growth */
	HS_DONE,            /* left: congestion avoidance, or after a loss */
};

struct cubic {
	/* RFC 9438 §4.1's variables */
	double w_max;        /* window just before the last reduction; 0: none yet */
	double w_est;        /* Reno's window had it been Reno (§4.3) */
	double k;            /* seconds from the epoch's start to reach w_max */
	ust_time epoch_start;/* the current epoch of congestion avoidance began */
	bool in_epoch;       /* false: the next ACK in congestion avoidance starts one */
	uint32_t cwnd_epoch; /* cwnd at the epoch's start */
	ust_time delay_min;  /* the smallest RTT seen; 0: none yet */
	/* HyStart++ (RFC 9406 §4.2) */
	ust_time last_round_min_rtt, cur_round_min_rtt; /* UST_TIME_NEVER: none */
	ust_time css_baseline_min_rtt;
	uint32_t window_end; /* the round ends when this is acknowledged */
	uint32_t rtt_samples;/* in this round */
	uint32_t css_acked;  /* segments acknowledged in CSS, not yet added */
	uint8_t css_rounds;
	uint8_t phase;       /* enum hystart_phase */
};
_Static_assert(sizeof(struct cubic) <= sizeof(((struct ust_tcb *)0)->ca_priv),
	       "CUBIC's state must fit the control block's ca_priv");

static struct cubic *cubic(struct ust_tcb *t) { return (struct cubic *)t->ca_priv; }

static double seconds(ust_time us) { return (double)us / 1e6; }

/* The cube root of x > 0 by Newton's method, from a start above it (so the
 * iteration falls monotonically), to double precision: K is computed once
 * per epoch, and the stack does not link libm for it. */
static double cube_root(double x)
{
	double r = x > 1 ? x : 1, next;

	for (int i = 0; i < 200; i++) {
		next = (2 * r + x / (r * r)) / 3;
		if (next >= r)
			break;
		r = next;
	}
	return r;
}

/* ---- HyStart++ ---- */

/* A new round of slow start begins: it ends when what is sent up to now
 * is acknowledged (§4.2, "windowEnd = SND.NXT"). */
static void hystart_round_start(struct ust_tcb *t)
{
	struct cubic *c = cubic(t);

	c->last_round_min_rtt = c->cur_round_min_rtt;
	c->cur_round_min_rtt = UST_TIME_NEVER;
	c->rtt_samples = 0;
	c->window_end = t->snd_max;
}

static void hystart_reset(struct ust_tcb *t)
{
	struct cubic *c = cubic(t);

	c->phase = HS_SLOW_START;
	c->cur_round_min_rtt = UST_TIME_NEVER;
	c->css_baseline_min_rtt = UST_TIME_NEVER;
	c->css_rounds = 0;
	c->css_acked = 0;
	hystart_round_start(t);
}

/* An RTT sample in slow start or CSS (§4.2): the round's minimum, and
 * once there are enough samples, has the delay risen (enter CSS) or, in
 * CSS, fallen back (the rise was jitter: slow start again)? */
static void hystart_rtt_sample(struct ust_tcb *t, ust_time rtt)
{
	struct cubic *c = cubic(t);

	if (rtt < c->cur_round_min_rtt)
		c->cur_round_min_rtt = rtt;
	c->rtt_samples++;
	if (c->phase == HS_SLOW_START) {
		ust_time thresh;
		if (c->rtt_samples < HS_N_RTT_SAMPLE || c->cur_round_min_rtt == UST_TIME_NEVER ||
		    c->last_round_min_rtt == UST_TIME_NEVER)
			return;
		thresh = c->last_round_min_rtt / HS_MIN_RTT_DIVISOR;
		if (thresh > HS_MAX_RTT_THRESH)
			thresh = HS_MAX_RTT_THRESH;
		if (thresh < HS_MIN_RTT_THRESH)
			thresh = HS_MIN_RTT_THRESH;
		if (c->cur_round_min_rtt >= c->last_round_min_rtt + thresh) {
			c->css_baseline_min_rtt = c->cur_round_min_rtt;
			c->phase = HS_CSS;
			c->css_rounds = 0;
		}
	} else if (c->phase == HS_CSS && c->rtt_samples >= HS_N_RTT_SAMPLE &&
		   c->cur_round_min_rtt < c->css_baseline_min_rtt) {
		c->css_baseline_min_rtt = UST_TIME_NEVER;
		c->phase = HS_SLOW_START;
	}
}

/* A round ends when the data outstanding at its start is acknowledged
 * (checked before the ACK's RTT sample counts, which belongs to the new
 * round). Five rounds of CSS end slow start: congestion avoidance from
 * this window, ssthresh = cwnd (§4.2). */
static void hystart_round_check(struct ust_tcb *t)
{
	struct cubic *c = cubic(t);

	if (!seq_geq(t->snd_una, c->window_end))
		return;
	if (c->phase == HS_CSS && ++c->css_rounds >= HS_CSS_ROUNDS) {
		c->phase = HS_DONE;
		t->snd_ssthresh = t->snd_cwnd;
		return;
	}
	hystart_round_start(t);
}

/* Slow start under HyStart++: as Reno's, or in CSS a quarter of the
 * growth. Returns the segments left for congestion avoidance. */
static uint32_t hystart_slow_start(struct ust_tcb *t, uint32_t acked)
{
	struct cubic *c = cubic(t);

	if (c->phase != HS_CSS)
		return tcp_slow_start(t, acked);
	c->css_acked += acked;
	t->snd_cwnd += c->css_acked / HS_CSS_GROWTH_DIVISOR;
	c->css_acked %= HS_CSS_GROWTH_DIVISOR;
	if (t->snd_cwnd > t->snd_cwnd_clamp)
		t->snd_cwnd = t->snd_cwnd_clamp;
	return 0;
}

/* ---- CUBIC ---- */

static void cubic_reset_epoch(struct cubic *c)
{
	c->in_epoch = false;
}

static void cubic_init(struct ust_tcb *t)
{
	struct cubic *c = cubic(t);

	*c = (struct cubic){ .w_max = 0 };
	t->snd_cwnd_cnt = 0;
	hystart_reset(t);
}

/* W_cubic(t) = C (t - K)^3 + W_max (RFC 9438 §4.2, equation 1). */
static double w_cubic(const struct cubic *c, double t)
{
	double d = t - c->k;

	return CUBIC_C * d * d * d + c->w_max;
}

/* The first ACK of a congestion avoidance epoch: where the curve starts
 * (§4.2 equation 2: K = cbrt((W_max - cwnd_epoch) / C); an epoch without
 * a known W_max, or above it, starts at its plateau, K = 0, §4.10). */
static void cubic_epoch_start(struct ust_tcb *t, ust_time now)
{
	struct cubic *c = cubic(t);

	c->in_epoch = true;
	c->epoch_start = now;
	c->cwnd_epoch = t->snd_cwnd;
	c->w_est = t->snd_cwnd;
	if (c->w_max <= t->snd_cwnd) {
		c->w_max = t->snd_cwnd;
		c->k = 0;
	} else {
		c->k = cube_root((c->w_max - t->snd_cwnd) / CUBIC_C);
	}
}

/* Congestion avoidance (§4.2-4.5): the window aims at W_cubic one RTT
 * ahead, no more than 1.5 times the current window; Reno's estimate,
 * growing by alpha per window (1 once it passed W_max, §4.3), takes over
 * where it is larger. The growth is spread over the ACKs of a window:
 * one segment for every `cnt` acknowledged (tcp_cong_avoid_ai). */
static void cubic_update(struct ust_tcb *t, uint32_t acked, ust_time now)
{
	struct cubic *c = cubic(t);
	double cwnd = t->snd_cwnd, target, alpha;
	uint32_t cnt;

	if (!c->in_epoch)
		cubic_epoch_start(t, now);
	target = w_cubic(c, seconds(now - c->epoch_start + c->delay_min));
	if (target > 1.5 * cwnd)
		target = 1.5 * cwnd;
	alpha = c->w_est >= c->w_max ? 1.0 : CUBIC_ALPHA;
	c->w_est += alpha * acked / cwnd;
	if (c->w_est > target)
		target = c->w_est;
	/* Below target: +1 every cwnd / (target - cwnd) segments; at or
	 * above: hardly at all (Linux's 100 * cwnd). */
	if (target > cwnd + 1e-9)
		cnt = (uint32_t)(cwnd / (target - cwnd));
	else
		cnt = 100u * t->snd_cwnd;
	tcp_cong_avoid_ai(t, cnt ? cnt : 1, acked);
}

static void cubic_cong_avoid(struct ust_tcb *t, uint32_t acked, ust_time now)
{
	if (!tcp_is_cwnd_limited(t))
		return;
	if (tcp_in_slow_start(t)) {
		acked = hystart_slow_start(t, acked);
		if (!acked)
			return;
	}
	cubic_update(t, acked, now);
}

/* A loss (§4.6-4.7): remember where it happened, lower W_max further if
 * the window had not recovered to the previous one (fast convergence: a
 * new flow is taking its share), and reduce by beta. The epoch ends. */
static uint32_t cubic_ssthresh(struct ust_tcb *t)
{
	struct cubic *c = cubic(t);
	double cwnd = t->snd_cwnd;
	uint32_t ss;

	cubic_reset_epoch(c);
	c->phase = HS_DONE;
	if (cwnd < c->w_max)
		c->w_max = cwnd * (1.0 + CUBIC_BETA) / 2.0;
	else
		c->w_max = cwnd;
	ss = (uint32_t)(cwnd * CUBIC_BETA);
	return ss > 2 ? ss : 2;
}

static void cubic_set_state(struct ust_tcb *t, enum tcp_ca_state state)
{
	/* A timeout starts over: no epoch, and slow start up to ssthresh
	 * (§4.8). HyStart++ stays off: it is for the initial slow start. */
	if (state == TCP_CA_LOSS)
		cubic_reset_epoch(cubic(t));
}

/* After idle the curve does not count the silence as growth time: the
 * epoch moves on by the idle period (Linux's CA_EVENT_TX_START). */
static void cubic_cwnd_event(struct ust_tcb *t, enum tcp_ca_event ev, ust_time now)
{
	struct cubic *c = cubic(t);

	if (ev != TCP_CA_EV_TX_START || !c->in_epoch)
		return;
	if (now > t->lsndtime)
		c->epoch_start += now - t->lsndtime;
	if (c->epoch_start > now)
		c->epoch_start = now;
}

/* Every RTT sample: the minimum RTT (but not in the first second of an
 * epoch, whose samples include the queue of the recovery just ended, as
 * Linux), and HyStart++'s rounds in slow start. */
static void cubic_pkts_acked(struct ust_tcb *t, const struct tcp_rate_sample *rs, ust_time now)
{
	struct cubic *c = cubic(t);

	if (!rs->rtt)
		return;
	if (c->in_epoch && now - c->epoch_start < UST_SEC(1))
		return;
	if (!c->delay_min || rs->rtt < c->delay_min)
		c->delay_min = rs->rtt;
	if (c->phase == HS_DONE || !tcp_in_slow_start(t))
		return;
	hystart_round_check(t);
	if (c->phase != HS_DONE)
		hystart_rtt_sample(t, rs->rtt);
}

static uint32_t cubic_undo_cwnd(struct ust_tcb *t)
{
	return tcp_cc_reno.undo_cwnd(t);
}

const struct tcp_cc tcp_cc_cubic = {
	.name = "cubic",
	.init = cubic_init,
	.ssthresh = cubic_ssthresh,
	.cong_avoid = cubic_cong_avoid,
	.undo_cwnd = cubic_undo_cwnd,
	.set_state = cubic_set_state,
	.cwnd_event = cubic_cwnd_event,
	.pkts_acked = cubic_pkts_acked,
};
