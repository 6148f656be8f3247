/* BBR (draft-ietf-ccwg-bbr, BBRv3): congestion control from a model of
 * the path, its bottleneck bandwidth (the windowed maximum of the
 * delivery-rate samples, tcp_rate.c) and its round-trip propagation time
 * (the windowed minimum RTT), rather than from loss alone. The model sets
 * how fast to send (t->pacing_rate, which the engine enforces, tcp_output.c)
 * and how much may be in flight (snd_cwnd, about twice the bandwidth-delay
 * product). A state machine probes the model: Startup doubles the rate
 * every round until the bandwidth stops growing by 25% over three rounds
 * (or loss is high), Drain empties the queue Startup built, ProbeBW cycles
 * DOWN (0.9), CRUISE (1.0), REFILL (1.0) and UP (1.25) around the
 * estimate, and ProbeRTT holds the flight to half the BDP for 200 ms and a
 * round when the minimum RTT has not been seen again for 5 s.
 *
 * Loss shapes the model as in BBRv3: above a loss rate of 2% in a round
 * (BBRLossThresh) a probe stops and inflight_longterm (Linux's inflight_hi)
 * caps the flight; outside probes, every round with loss lowers the
 * short-term bounds bw_shortterm and inflight_shortterm (Linux's bw_lo,
 * inflight_lo) towards what the last round delivered, by 0.7 at most. The
 * window is the model's: cwnd = gain * BDP + extra_acked (the aggregation
 * estimate), at least 4 segments, and three paced bursts (the offload
 * budget). In fast recovery the window follows packet conservation (what
 * is in flight plus what the ACK delivered) for a round, and is restored
 * when recovery ends.
 *
 * Counted in segments as Linux counts them (the draft allows "packets"):
 * the bandwidth is segments per microsecond scaled by 2^24, gains are
 * fixed point with 256 = 1.0. The engine calls cong_control on every ACK
 * (and does neither cong_avoid nor PRR for us), marked_lost for every
 * segment it marks lost, ssthresh when a loss episode begins, undo_cwnd
 * when one was spurious.
 *
 * Where BBRv3 (the draft) and the kernel's BBRv1 (mainline tcp_bbr.c, what
 * Linux runs here) differ on the wire, this follows the draft:
 *  - Startup paces at 2.77 and sizes cwnd at 2.0 times (v1: 2.89 both),
 *    Drain paces at 0.5 (v1: 0.35) until the flight is at most one BDP or
 *    three rounds passed;
 *  - ProbeBW is the four-phase cycle with randomized waits of 2 to 3 s or
 *    at most 63 rounds between probes (v1: eight phases of one min RTT
 *    each, 1.25, 0.75, then six of 1.0);
 *  - loss matters: Startup ends on loss above 2% with six lossy ACKs in a
 *    round of recovery, probes stop on it, and inflight_longterm,
 *    bw_shortterm and inflight_shortterm bound the window and the rate
 *    (v1 ignores loss but for its long-term policer detection, which the
 *    draft does not have and this does not do);
 *  - ProbeRTT holds half the BDP (v1: 4 segments), and follows the
 *    draft's separate 5 s probe_rtt_min_delay (v1: the 10 s min_rtt);
 *  - the pacing rate is 1% below the model's rate (the draft's
 *    PacingMarginPercent; v1 too).
 * ECN is ignored, as Linux's BBR (v1) ignores it: the engine negotiates
 * classic ECN (RFC 3168, tcp_ecn.c) and on an echoed CE mark enters CWR
 * and sends CWR, but the window here is BBR's own (cong_control), so no
 * reduction follows. The draft's ECN response (a CE ratio per round)
 * needs a mark count per segment, which classic ECN's one echo per
 * window does not give (Accurate ECN would).
 * The undo of a spurious recovery (HandleSpuriousLossDetection) is in
 * undo_cwnd, for the engine to call. */
#include "tcp_bbr.h"

#define BBR_INF UINT32_MAX                  /* the draft's Infinity */

/* Gains per state (§5.6.1's table). */
#define STARTUP_PACING_GAIN 709             /* 4 ln 2 = 2.77 */
#define DEFAULT_CWND_GAIN 512               /* 2 */
#define DRAIN_PACING_GAIN 128               /* 0.5 */
#define PROBE_DOWN_PACING_GAIN 230          /* 0.90 */
#define PROBE_UP_PACING_GAIN 320            /* 1.25 */
#define PROBE_UP_CWND_GAIN 576              /* 2.25 */
#define PROBE_RTT_CWND_GAIN 128             /* 0.5 */
/* §2.8 and §2.13-2.16 */
#define LOSS_THRESH 5                       /* BBR.LossThresh, 2% (of 256) */
#define BETA 179                            /* BBR.Beta, 0.7 */
#define HEADROOM 38                         /* BBR.Headroom, 0.15 */
#define MIN_PIPE_CWND 4                     /* BBR.MinPipeCwnd, segments */
#define FULL_BW_THRESH 320                  /* 25% growth */
#define FULL_BW_COUNT 3                     /* rounds without it */
#define STARTUP_FULL_LOSS_COUNT 6           /* BBRStartupFullLossCnt */
#define EXTRA_ACKED_FILTER_LEN 10           /* rounds */
#define MIN_RTT_FILTER_MS 10000             /* BBR.MinRTTFilterLen */
#define PROBE_RTT_INTERVAL_MS 5000          /* BBR.ProbeRTTInterval */
#define PROBE_RTT_DURATION_MS 200           /* BBR.ProbeRTTDuration */
#define RENO_ROUNDS_MAX 63                  /* T_reno's bound */
#define SEND_QUANTUM_MAX 65536              /* §5.6.3: 64 KB */

enum bbr_state {
	BBR_STARTUP,
	BBR_DRAIN,
	BBR_PROBE_BW_DOWN,
	BBR_PROBE_BW_CRUISE,
	BBR_PROBE_BW_REFILL,
	BBR_PROBE_BW_UP,
	BBR_PROBE_RTT,
	BBR_NO_STATE,       /* undo_state: none saved */
};

/* What the ACKs being received say about bandwidth probing (§2.14). */
enum bbr_ack_phase {
	ACKS_INIT,           /* not probing, no probe feedback */
	ACKS_REFILLING,      /* sending at the estimate to fill the pipe */
	ACKS_PROBE_STARTING, /* inflight rising to probe */
	ACKS_PROBE_FEEDBACK, /* feedback from the probe */
	ACKS_PROBE_STOPPING, /* probe over, its feedback still coming */
};

/* The draft's BBR.* variables; times in ms (stamps, low 32 bits of the
 * clock) unless said; volumes in segments. */
struct bbr {
	uint32_t min_rtt_us;           /* BBR.min_rtt; BBR_INF: none yet */
	uint32_t min_rtt_stamp;
	uint32_t probe_rtt_min_us;     /* BBR.probe_rtt_min_delay, the last 5 s */
	uint32_t probe_rtt_min_stamp;
	/* ProbeBW: the cycle's start (BBR.cycle_stamp); ProbeRTT: when it
	 * may end (BBR.probe_rtt_done_stamp, 0: not yet known). */
	uint32_t stamp;
	uint32_t next_round_delivered; /* t->delivered that ends the round */
	uint32_t loss_round_delivered; /* the same for the loss round */
	uint32_t prior_cwnd;           /* the last good cwnd (SaveCwnd) */
	uint32_t full_bw;              /* Startup's baseline bandwidth */
	uint32_t max_bw[2];            /* BBR.max_bw_filter: last cycle, this cycle */
	uint32_t bw_shortterm;         /* BBR_INF: no bound */
	uint32_t bw_latest;            /* the round's largest rate sample */
	uint32_t inflight_latest;      /* the round's largest delivered count */
	uint32_t inflight_shortterm;   /* BBR_INF: no bound */
	uint32_t inflight_longterm;    /* BBR_INF: no bound */
	uint32_t undo_bw_shortterm, undo_inflight_shortterm, undo_inflight_longterm;
	uint32_t ack_epoch_stamp;      /* µs: the aggregation interval's start */
	uint32_t probe_up_acked_per_inc; /* acked segments per +1 of inflight_longterm */
	uint32_t bw_probe_up_acked;
	uint16_t extra_acked[2];       /* BBR.extra_acked_filter, two windows */
	uint16_t probe_wait_ms;        /* BBR.bw_probe_wait */
	uint8_t rounds_since_probe_up;
	uint8_t full_bw_count;
	unsigned extra_acked_delivered : 20, extra_acked_win_rounds : 5, extra_acked_win_idx : 1,
		drain_rounds : 2, undo_state : 3, probe_rtt_round_done : 1;
	unsigned state : 3, ack_phase : 3, prev_ca_state : 3, full_bw_reached : 1, full_bw_now : 1,
		round_start : 1, idle_restart : 1, packet_conservation : 1, loss_in_round : 1,
		loss_round_start : 1, is_bw_probe_sample : 1, prev_probe_too_high : 1,
		prev_probe_precautionary : 1, loss_events_in_round : 4, has_seen_rtt : 1,
		probe_rtt_expired : 1, bw_probe_up_rounds : 5;
};
_Static_assert(sizeof(struct bbr) <= sizeof(((struct ust_tcb *)0)->ca_priv),
	       "BBR's state must fit the control block's ca_priv");

static struct bbr *bbr(const struct ust_tcb *t) { return (struct bbr *)t->ca_priv; }

static uint32_t max_u32(uint32_t a, uint32_t b) { return a > b ? a : b; }
static uint32_t min_u32(uint32_t a, uint32_t b) { return a < b ? a : b; }
static uint32_t now_ms(ust_time now) { return (uint32_t)(now / 1000); }
/* a is at or after b, in a counter that wraps */
static bool after_eq(uint32_t a, uint32_t b) { return (int32_t)(a - b) >= 0; }
static uint32_t inflight(const struct ust_tcb *t) { return tcp_packets_in_flight(t); }

static bool in_probe_bw(const struct bbr *b)
{
	return b->state >= BBR_PROBE_BW_DOWN && b->state <= BBR_PROBE_BW_UP;
}

/* IsProbingBW(): accelerating states, which loss does not slow (§5.5.10). */
static bool is_probing_bw(const struct bbr *b)
{
	return b->state == BBR_STARTUP || b->state == BBR_PROBE_BW_REFILL ||
	       b->state == BBR_PROBE_BW_UP;
}

static uint32_t pacing_gain(const struct bbr *b)
{
	switch (b->state) {
	case BBR_STARTUP: return STARTUP_PACING_GAIN;
	case BBR_DRAIN: return DRAIN_PACING_GAIN;
	case BBR_PROBE_BW_DOWN: return PROBE_DOWN_PACING_GAIN;
	case BBR_PROBE_BW_UP: return PROBE_UP_PACING_GAIN;
	default: return BBR_UNIT;
	}
}

static uint32_t cwnd_gain(const struct bbr *b)
{
	if (b->state == BBR_PROBE_BW_UP)
		return PROBE_UP_CWND_GAIN;
	if (b->state == BBR_PROBE_RTT)
		return PROBE_RTT_CWND_GAIN;
	return DEFAULT_CWND_GAIN;
}

/* A number for the randomized probe waits (the draft's random_int): the
 * connection's own, so that segment scripts stay repeatable. */
static uint64_t bbr_random(const struct ust_tcb *t, ust_time now)
{
	uint64_t z = ((uint64_t)t->iss << 32) ^ t->delivered ^ now;

	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* ---- the model ---- */

/* BBR.max_bw, and BBR.bw = min(max_bw, bw_shortterm) (BoundBWForModel). */
static uint32_t max_bw(const struct bbr *b) { return max_u32(b->max_bw[0], b->max_bw[1]); }
static uint32_t bw(const struct bbr *b) { return min_u32(max_bw(b), b->bw_shortterm); }

/* BDPMultiple(gain): gain * bw * min_rtt, rounded up; the initial window
 * before any RTT is known. */
static uint32_t bdp(const struct bbr *b, uint32_t bw, uint32_t gain)
{
	return bbr_bdp(b->min_rtt_us, bw, gain);
}

/* QuantizationBudget (§5.6.4.2): room for three send quanta (the offload
 * budget: the draft's 1 ms of data, at most 64 KB, at least 2 segments),
 * at least MinPipeCwnd, and 2 more in ProbeBW_UP. */
static uint32_t quantization_budget(const struct ust_tcb *t, uint32_t cwnd)
{
	uint32_t quantum = min_u32(tcp_pacing_burst(t), max_u32(SEND_QUANTUM_MAX / max_u32(t->mss, 1), 2));

	cwnd = max_u32(cwnd, 3 * quantum);
	cwnd = max_u32(cwnd, MIN_PIPE_CWND);
	if (bbr(t)->state == BBR_PROBE_BW_UP)
		cwnd += 2;
	return cwnd;
}

/* Inflight(bw, gain): the BDP at that gain with the quantization budget. */
static uint32_t bbr_inflight(const struct ust_tcb *t, uint32_t bw, uint32_t gain)
{
	return quantization_budget(t, bdp(bbr(t), bw, gain));
}

/* TargetInflight(): the BDP, unless congestion cut cwnd. */
static uint32_t target_inflight(const struct ust_tcb *t)
{
	const struct bbr *b = bbr(t);

	return min_u32(bdp(b, bw(b), BBR_UNIT), t->snd_cwnd);
}

/* InflightWithHeadroom(): inflight_longterm less 15% for other flows. */
static uint32_t inflight_with_headroom(const struct bbr *b)
{
	uint32_t headroom;

	if (b->inflight_longterm == BBR_INF)
		return BBR_INF;
	headroom = max_u32(1, (uint32_t)(((uint64_t)HEADROOM * b->inflight_longterm) >> BBR_SCALE));
	return max_u32(b->inflight_longterm > headroom ? b->inflight_longterm - headroom : 0,
		       MIN_PIPE_CWND);
}

/* InitPacingRate(): the initial window over the smoothed RTT (1 ms
 * without one), at Startup's gain. */
static void init_pacing_rate(struct ust_tcb *t)
{
	struct bbr *b = bbr(t);
	uint64_t rtt = t->srtt ? t->srtt : 1000, nominal;

	b->has_seen_rtt = t->srtt != 0;
	nominal = (uint64_t)TCP_INIT_CWND * BW_UNIT / rtt;
	t->pacing_rate = bbr_pacing_rate(t, nominal < BBR_INF ? (uint32_t)nominal : BBR_INF,
					STARTUP_PACING_GAIN);
}

/* SetPacingRateWithGain(): only upwards until the pipe is full, so that
 * application-limited samples do not slow Startup down. */
static void set_pacing_rate(struct ust_tcb *t, uint32_t gain)
{
	struct bbr *b = bbr(t);
	uint64_t rate;

	if (!b->has_seen_rtt && t->srtt)
		init_pacing_rate(t);
	rate = bbr_pacing_rate(t, bw(b), gain);
	if (rate && (b->full_bw_reached || rate > t->pacing_rate))
		t->pacing_rate = rate;
}

/* ---- rounds (§5.5.1) ---- */

static void start_round(struct ust_tcb *t)
{
	bbr(t)->next_round_delivered = (uint32_t)t->delivered;
}

/* UpdateRound(): a round trip ends when a segment sent after its start
 * is delivered. */
static void update_round(struct ust_tcb *t, const struct tcp_rate_sample *rs)
{
	struct bbr *b = bbr(t);

	b->round_start = false;
	if (rs->delivered < 0 || !after_eq((uint32_t)rs->prior_delivered, b->next_round_delivered))
		return;
	start_round(t);
	b->round_start = true;
	if (b->rounds_since_probe_up < UINT8_MAX)
		b->rounds_since_probe_up++;
	b->packet_conservation = false; /* one round of it after recovery began */
}

/* ---- the short-term model and loss (§5.5.10) ---- */

static void reset_congestion_signals(struct bbr *b)
{
	b->loss_in_round = false;
	b->bw_latest = 0;
	b->inflight_latest = 0;
}

static void reset_short_term_model(struct bbr *b)
{
	b->bw_shortterm = BBR_INF;
	b->inflight_shortterm = BBR_INF;
}

/* UpdateLatestDeliverySignals(): the round's largest rate and delivered
 * count, and whether a loss round ends here. */
static void update_latest_delivery_signals(struct ust_tcb *t, const struct tcp_rate_sample *rs,
					   uint32_t bw_sample)
{
	struct bbr *b = bbr(t);

	b->loss_round_start = false;
	if (rs->delivered < 0 || !rs->interval || !rs->acked_sacked)
		return;
	b->bw_latest = max_u32(b->bw_latest, bw_sample);
	b->inflight_latest = max_u32(b->inflight_latest, (uint32_t)rs->delivered);
	if (after_eq((uint32_t)rs->prior_delivered, b->loss_round_delivered)) {
		b->loss_round_delivered = (uint32_t)t->delivered;
		b->loss_round_start = true;
	}
}

/* AdvanceLatestDeliverySignals(): a new loss round starts from this ACK. */
static void advance_latest_delivery_signals(struct bbr *b, const struct tcp_rate_sample *rs,
					    uint32_t bw_sample)
{
	if (!b->loss_round_start)
		return;
	b->bw_latest = bw_sample;
	b->inflight_latest = rs->delivered > 0 ? (uint32_t)rs->delivered : 0;
}

/* UpdateMaxBw(): the sample into this cycle's slot, unless it is
 * application-limited and no higher than the estimate. */
static void update_max_bw(struct bbr *b, const struct tcp_rate_sample *rs, uint32_t bw_sample)
{
	if (bw_sample && (bw_sample >= max_bw(b) || !rs->is_app_limited))
		b->max_bw[1] = max_u32(b->max_bw[1], bw_sample);
}

/* AdvanceMaxBwFilter(): a new ProbeBW cycle; the filter keeps two. */
static void advance_max_bw_filter(struct bbr *b)
{
	b->max_bw[0] = b->max_bw[1];
	b->max_bw[1] = 0;
}

/* Once per round with loss, outside probes (AdaptLowerBoundsFromCongestion,
 * InitLowerBounds, LossLowerBounds): the short-term bounds move towards
 * what the last round delivered, by no more than Beta. */
static void adapt_lower_bounds(struct ust_tcb *t)
{
	struct bbr *b = bbr(t);

	if (is_probing_bw(b) || !b->loss_in_round)
		return;
	if (b->bw_shortterm == BBR_INF)
		b->bw_shortterm = max_bw(b);
	if (b->inflight_shortterm == BBR_INF)
		b->inflight_shortterm = t->snd_cwnd;
	b->bw_shortterm = max_u32(b->bw_latest, (uint32_t)(((uint64_t)b->bw_shortterm * BETA) >> BBR_SCALE));
	b->inflight_shortterm = max_u32(b->inflight_latest,
					(uint32_t)(((uint64_t)b->inflight_shortterm * BETA) >> BBR_SCALE));
}

/* UpdateCongestionSignals(). */
static void update_congestion_signals(struct ust_tcb *t, const struct tcp_rate_sample *rs,
				      uint32_t bw_sample)
{
	struct bbr *b = bbr(t);

	update_max_bw(b, rs, bw_sample);
	if (rs->losses)
		b->loss_in_round = true;
	if (!b->loss_round_start)
		return;
	adapt_lower_bounds(t);
	b->loss_in_round = false;
}

/* IsInflightTooHigh(): more than 2% of the flight was lost (any loss
 * without SACK, which finds one loss per round). */
static bool is_inflight_too_high(const struct ust_tcb *t, uint32_t lost, uint32_t tx_in_flight)
{
	if (lost && !t->sack_ok)
		return true;
	return (uint64_t)lost * BBR_UNIT > (uint64_t)tx_in_flight * LOSS_THRESH;
}

static void start_probe_bw_down(struct ust_tcb *t, ust_time now);

/* HandleInflightTooHigh(): the probe went too far; remember how far, at
 * most Beta below the target, and stop probing. */
static void handle_inflight_too_high(struct ust_tcb *t, bool app_limited, uint32_t tx_in_flight,
				     ust_time now)
{
	struct bbr *b = bbr(t);

	b->prev_probe_too_high = true;
	b->is_bw_probe_sample = false; /* once per probe */
	if (!app_limited)
		b->inflight_longterm = max_u32(tx_in_flight,
					       (uint32_t)(((uint64_t)target_inflight(t) * BETA) >> BBR_SCALE));
	if (b->state == BBR_PROBE_BW_UP) {
		b->undo_state = BBR_PROBE_BW_UP;
		start_probe_bw_down(t, now);
	}
}

/* InflightAtLoss(): where in the flight up to this lost segment the loss
 * rate crossed the threshold. */
static uint32_t inflight_at_loss(uint32_t tx_in_flight, uint32_t lost)
{
	uint32_t inflight_prev = tx_in_flight ? tx_in_flight - 1 : 0;
	uint32_t lost_prev = lost ? lost - 1 : 0;
	uint64_t budget = ((uint64_t)inflight_prev * LOSS_THRESH + BBR_UNIT - 1) >> BBR_SCALE;
	uint64_t prefix = 0;

	if (lost_prev < budget) {
		prefix = (budget - lost_prev) << BBR_SCALE;
		prefix = (prefix + (BBR_UNIT - LOSS_THRESH) - 1) / (BBR_UNIT - LOSS_THRESH);
	}
	return inflight_prev + (uint32_t)min_u32((uint32_t)prefix, BBR_INF - inflight_prev);
}

/* HandleLostPacket() (§5.5.10.2): a loss marks the round; in a probe, a
 * loss rate above the threshold since the lost segment was sent ends it. */
static void bbr_marked_lost(struct ust_tcb *t, const struct tcp_sent *r, ust_time now)
{
	struct bbr *b = bbr(t);
	uint32_t lost = (uint32_t)t->lost - r->lost;

	if (!b->loss_in_round)
		b->loss_round_delivered = (uint32_t)t->delivered;
	b->loss_in_round = true;
	if (!b->is_bw_probe_sample)
		return;
	if (is_inflight_too_high(t, lost, r->tx_in_flight))
		handle_inflight_too_high(t, r->app_limited, inflight_at_loss(r->tx_in_flight, lost), now);
}

/* ---- aggregation (§5.5.9) ---- */

/* UpdateACKAggregation(): how much more the ACKs delivered than bw over
 * the interval would; the largest over 10 rounds (1 in Startup). */
static void update_ack_aggregation(struct ust_tcb *t, const struct tcp_rate_sample *rs,
				   ust_time now)
{
	struct bbr *b = bbr(t);
	uint32_t expected, extra, epoch_us;

	if (!rs->acked_sacked || rs->delivered < 0 || !rs->interval)
		return;
	if (b->round_start) {
		if (b->extra_acked_win_rounds < 31)
			b->extra_acked_win_rounds++;
		if (b->extra_acked_win_rounds >= (b->full_bw_reached ? EXTRA_ACKED_FILTER_LEN : 1)) {
			b->extra_acked_win_rounds = 0;
			b->extra_acked_win_idx ^= 1;
			b->extra_acked[b->extra_acked_win_idx] = 0;
		}
	}
	epoch_us = (uint32_t)now - b->ack_epoch_stamp;
	expected = (uint32_t)(((uint64_t)bw(b) * epoch_us) >> BW_SCALE);
	/* The ACK rate fell below bw: a new interval starts here. */
	if (b->extra_acked_delivered <= expected ||
	    b->extra_acked_delivered + rs->acked_sacked >= (1u << 20)) {
		b->extra_acked_delivered = 0;
		b->ack_epoch_stamp = (uint32_t)now;
		expected = 0;
	}
	b->extra_acked_delivered += rs->acked_sacked;
	extra = min_u32(b->extra_acked_delivered - expected, t->snd_cwnd);
	extra = min_u32(extra, UINT16_MAX);
	if (extra > b->extra_acked[b->extra_acked_win_idx])
		b->extra_acked[b->extra_acked_win_idx] = (uint16_t)extra;
}

static uint32_t extra_acked(const struct bbr *b)
{
	return max_u32(b->extra_acked[0], b->extra_acked[1]);
}

/* ---- Startup and Drain (§5.3.1, §5.3.2) ---- */

static void reset_full_bw(struct bbr *b)
{
	b->full_bw = 0;
	b->full_bw_count = 0;
	b->full_bw_now = false;
}

static void enter_startup(struct bbr *b)
{
	b->state = BBR_STARTUP;
}

/* CheckFullBWReached(): three rounds, not limited by the application,
 * without 25% more bandwidth: the pipe is full. */
static void check_full_bw_reached(struct bbr *b, const struct tcp_rate_sample *rs,
				  uint32_t bw_sample)
{
	if (b->full_bw_now || !b->round_start || rs->is_app_limited)
		return;
	if ((uint64_t)bw_sample * BBR_UNIT >= (uint64_t)b->full_bw * FULL_BW_THRESH) {
		reset_full_bw(b);
		b->full_bw = bw_sample;
		return;
	}
	if (b->full_bw_count < UINT8_MAX)
		b->full_bw_count++;
	b->full_bw_now = b->full_bw_count >= FULL_BW_COUNT;
	if (b->full_bw_now)
		b->full_bw_reached = true;
}

/* CheckStartupHighLoss() (§5.3.1.3), as Linux's BBRv3 counts it: at the
 * end of a round of fast recovery, with six ACKs that found losses in
 * it and a loss rate above 2%, Startup is over; inflight_longterm keeps
 * what was delivered. */
static void check_startup_high_loss(struct ust_tcb *t, const struct tcp_rate_sample *rs)
{
	struct bbr *b = bbr(t);

	if (b->full_bw_reached)
		return;
	if (rs->losses && b->loss_events_in_round < 15)
		b->loss_events_in_round++;
	if (b->loss_round_start && t->ca_state == TCP_CA_RECOVERY &&
	    (b->loss_events_in_round >= STARTUP_FULL_LOSS_COUNT || !t->sack_ok) &&
	    is_inflight_too_high(t, rs->lost, rs->tx_in_flight)) {
		b->undo_state = BBR_STARTUP;
		b->full_bw_reached = true;
		b->inflight_longterm = max_u32(bdp(b, bw(b), BBR_UNIT), b->inflight_latest);
	}
	if (b->loss_round_start)
		b->loss_events_in_round = 0;
}

static void enter_probe_bw(struct ust_tcb *t, ust_time now)
{
	start_probe_bw_down(t, now);
}

/* CheckStartupDone() and CheckDrainDone(): Drain until the flight is
 * one BDP, or more than three rounds. ssthresh shows the BDP from then on, as
 * Linux sets it for TCP_INFO. */
static void check_startup_and_drain(struct ust_tcb *t, ust_time now)
{
	struct bbr *b = bbr(t);

	if (b->state == BBR_STARTUP && b->full_bw_reached) {
		b->state = BBR_DRAIN;
		b->drain_rounds = 0;
		t->snd_ssthresh = bbr_inflight(t, max_bw(b), BBR_UNIT);
	}
	if (b->state != BBR_DRAIN)
		return;
	if (b->round_start && b->drain_rounds == 3) {
		enter_probe_bw(t, now); /* BBR.round_count > drain_start_round + 3 */
		return;
	}
	if (b->round_start)
		b->drain_rounds++;
	if (inflight(t) <= bbr_inflight(t, bw(b), BBR_UNIT))
		enter_probe_bw(t, now);
}

/* ---- ProbeBW (§5.3.3) ---- */

/* PickProbeWait(): 0 or 1 round, and 2 to 3 s. */
static void pick_probe_wait(struct ust_tcb *t, ust_time now)
{
	struct bbr *b = bbr(t);
	uint64_t r = bbr_random(t, now);

	b->rounds_since_probe_up = (uint8_t)(r & 1);
	b->probe_wait_ms = (uint16_t)(2000 + (r >> 8) % 1001);
}

static void start_probe_bw_down(struct ust_tcb *t, ust_time now)
{
	struct bbr *b = bbr(t);

	reset_congestion_signals(b);
	b->probe_up_acked_per_inc = BBR_INF; /* inflight_longterm does not grow */
	pick_probe_wait(t, now);
	b->stamp = now_ms(now);
	b->ack_phase = ACKS_PROBE_STOPPING;
	start_round(t);
	b->state = BBR_PROBE_BW_DOWN;
}

static void start_probe_bw_cruise(struct bbr *b)
{
	b->state = BBR_PROBE_BW_CRUISE;
}

/* REFILL forgets the short-term model: the probe is for the long term. */
static void start_probe_bw_refill(struct ust_tcb *t)
{
	struct bbr *b = bbr(t);

	reset_short_term_model(b);
	b->bw_probe_up_rounds = 0;
	b->bw_probe_up_acked = 0;
	b->prev_probe_precautionary = false;
	b->ack_phase = ACKS_REFILLING;
	start_round(t);
	b->state = BBR_PROBE_BW_REFILL;
}

/* RaiseInflightLongtermSlope(): inflight_longterm grows by 1, 2, 4 ...
 * segments in successive rounds of UP, spread over each round's ACKs. */
static void raise_inflight_longterm_slope(struct ust_tcb *t)
{
	struct bbr *b = bbr(t);
	uint32_t growth = 1u << b->bw_probe_up_rounds;

	b->bw_probe_up_rounds = min_u32(b->bw_probe_up_rounds + 1u, 30);
	b->probe_up_acked_per_inc = max_u32(t->snd_cwnd / growth, 1);
}

static void start_probe_bw_up(struct ust_tcb *t, uint32_t bw_sample)
{
	struct bbr *b = bbr(t);

	b->ack_phase = ACKS_PROBE_STARTING;
	start_round(t);
	reset_full_bw(b);
	b->full_bw = bw_sample;
	b->state = BBR_PROBE_BW_UP;
	raise_inflight_longterm_slope(t);
}

/* ProbeInflightLongtermUpward(): while cwnd is pressed against
 * inflight_longterm and the flight fills it, raise it. */
static void probe_inflight_longterm_upward(struct ust_tcb *t, const struct tcp_rate_sample *rs)
{
	struct bbr *b = bbr(t);

	if (!tcp_is_cwnd_limited(t) || t->snd_cwnd < b->inflight_longterm)
		return;
	b->bw_probe_up_acked += rs->acked_sacked;
	if (b->bw_probe_up_acked >= b->probe_up_acked_per_inc) {
		uint32_t delta = b->bw_probe_up_acked / b->probe_up_acked_per_inc;
		b->bw_probe_up_acked -= delta * b->probe_up_acked_per_inc;
		b->inflight_longterm = b->inflight_longterm < BBR_INF - delta ? b->inflight_longterm + delta
									      : BBR_INF - 1;
	}
	if (b->round_start)
		raise_inflight_longterm_slope(t);
}

/* AdaptLongTermModel(): follow the probe's feedback; the max filter moves
 * to a new cycle a round after UP ended; without too much loss the upper
 * bound rises to what was in flight. Returns whether it changed state. */
static bool adapt_long_term_model(struct ust_tcb *t, const struct tcp_rate_sample *rs)
{
	struct bbr *b = bbr(t);

	if (b->ack_phase == ACKS_PROBE_STARTING && b->round_start)
		b->ack_phase = ACKS_PROBE_FEEDBACK;
	if (b->ack_phase == ACKS_PROBE_STOPPING && b->round_start) {
		b->is_bw_probe_sample = false;
		b->ack_phase = ACKS_INIT;
		if (in_probe_bw(b) && !rs->is_app_limited)
			advance_max_bw_filter(b);
		/* Precautionary probing: the careful probe caused no excess
		 * loss, so probe again at once, fully. */
		if (in_probe_bw(b) && b->prev_probe_precautionary && !b->prev_probe_too_high) {
			start_probe_bw_refill(t);
			return true;
		}
	}
	if (rs->delivered < 0 || is_inflight_too_high(t, rs->lost, rs->tx_in_flight))
		return false;
	if (b->inflight_longterm == BBR_INF)
		return false;
	if (rs->tx_in_flight > b->inflight_longterm)
		b->inflight_longterm = rs->tx_in_flight;
	if (b->state == BBR_PROBE_BW_UP)
		probe_inflight_longterm_upward(t, rs);
	return false;
}

/* IsTimeToProbeBW(): after BBR.bw_probe_wait, or as many rounds as Reno
 * would need to regrow the BDP (at most 63), probe again. */
static bool is_time_to_probe_bw(struct ust_tcb *t, ust_time now)
{
	struct bbr *b = bbr(t);

	if ((int32_t)(now_ms(now) - b->stamp) > (int32_t)b->probe_wait_ms ||
	    b->rounds_since_probe_up >= min_u32(target_inflight(t), RENO_ROUNDS_MAX)) {
		start_probe_bw_refill(t);
		return true;
	}
	return false;
}

/* IsTimeToCruise(): the queue is drained and headroom left. */
static bool is_time_to_cruise(const struct ust_tcb *t)
{
	const struct bbr *b = bbr(t);

	return inflight(t) <= inflight_with_headroom(b) &&
	       inflight(t) <= bbr_inflight(t, max_bw(b), BBR_UNIT);
}

/* IsTimeToGoDown(): UP ends when the bandwidth stops growing, or (after
 * a probe that went too high) once the flight reaches that height. */
static bool is_time_to_go_down(struct ust_tcb *t, uint32_t bw_sample)
{
	struct bbr *b = bbr(t);

	if (b->prev_probe_too_high && inflight(t) >= b->inflight_longterm) {
		b->prev_probe_precautionary = true;
		return true;
	}
	if (tcp_is_cwnd_limited(t) && t->snd_cwnd >= b->inflight_longterm) {
		reset_full_bw(b); /* inflight_longterm limits the growth */
		b->full_bw = bw_sample;
	} else if (b->full_bw_now) {
		return true;
	}
	return false;
}

/* UpdateProbeBWCyclePhase(). */
static void update_probe_bw_cycle_phase(struct ust_tcb *t, const struct tcp_rate_sample *rs,
					uint32_t bw_sample, ust_time now)
{
	struct bbr *b = bbr(t);

	if (!b->full_bw_reached || adapt_long_term_model(t, rs))
		return;
	switch (b->state) {
	case BBR_PROBE_BW_DOWN:
		if (!is_time_to_probe_bw(t, now) && is_time_to_cruise(t))
			start_probe_bw_cruise(b);
		break;
	case BBR_PROBE_BW_CRUISE:
		is_time_to_probe_bw(t, now);
		break;
	case BBR_PROBE_BW_REFILL:
		/* After one round of REFILL, UP. */
		if (b->round_start) {
			b->is_bw_probe_sample = true;
			start_probe_bw_up(t, bw_sample);
		}
		break;
	case BBR_PROBE_BW_UP:
		if (is_time_to_go_down(t, bw_sample)) {
			b->prev_probe_too_high = false;
			start_probe_bw_down(t, now);
		}
		break;
	default:
		break;
	}
}

/* ---- min RTT and ProbeRTT (§5.3.4) ---- */

/* UpdateMinRTT(): probe_rtt_min_delay is the least RTT of the last 5 s,
 * min_rtt of the last 10 s. */
static void update_min_rtt(struct bbr *b, const struct tcp_rate_sample *rs, ust_time now)
{
	uint32_t ms = now_ms(now);

	b->probe_rtt_expired = (int32_t)(ms - b->probe_rtt_min_stamp) > PROBE_RTT_INTERVAL_MS;
	if (rs->rtt && (rs->rtt < b->probe_rtt_min_us || b->probe_rtt_expired)) {
		b->probe_rtt_min_us = rs->rtt < BBR_INF ? (uint32_t)rs->rtt : BBR_INF - 1;
		b->probe_rtt_min_stamp = ms;
	}
	if (b->probe_rtt_min_us < b->min_rtt_us ||
	    (int32_t)(ms - b->min_rtt_stamp) > MIN_RTT_FILTER_MS) {
		b->min_rtt_us = b->probe_rtt_min_us;
		b->min_rtt_stamp = b->probe_rtt_min_stamp;
	}
}

/* ProbeRTTCwnd(): half the BDP, at least MinPipeCwnd. */
static uint32_t probe_rtt_cwnd(const struct bbr *b)
{
	return max_u32(bdp(b, bw(b), PROBE_RTT_CWND_GAIN), MIN_PIPE_CWND);
}

/* SaveCwnd(): the last cwnd not cut by recovery or ProbeRTT. */
static void save_cwnd(struct ust_tcb *t)
{
	struct bbr *b = bbr(t);

	if (b->prev_ca_state < TCP_CA_RECOVERY && b->state != BBR_PROBE_RTT)
		b->prior_cwnd = t->snd_cwnd;
	else
		b->prior_cwnd = max_u32(b->prior_cwnd, t->snd_cwnd);
}

static void restore_cwnd(struct ust_tcb *t)
{
	t->snd_cwnd = max_u32(t->snd_cwnd, bbr(t)->prior_cwnd);
}

/* ExitProbeRTT(): back to the cycle (from CRUISE: the flight is already
 * below the BDP), or to Startup if the pipe was never full. */
static void exit_probe_rtt(struct ust_tcb *t, ust_time now)
{
	struct bbr *b = bbr(t);

	reset_short_term_model(b);
	if (b->full_bw_reached) {
		start_probe_bw_down(t, now);
		start_probe_bw_cruise(b);
	} else {
		enter_startup(b);
	}
}

/* CheckProbeRTTDone(): 200 ms and a round at the low flight are over. */
static void check_probe_rtt_done(struct ust_tcb *t, ust_time now)
{
	struct bbr *b = bbr(t);

	if (!b->stamp || (int32_t)(now_ms(now) - b->stamp) <= 0)
		return;
	b->probe_rtt_min_stamp = now_ms(now); /* the next ProbeRTT in 5 s */
	restore_cwnd(t);
	exit_probe_rtt(t, now);
}

/* MarkConnectionAppLimited(): ProbeRTT's low rate is not the path's. */
static void mark_app_limited(struct ust_tcb *t)
{
	t->app_limited = t->delivered + inflight(t);
	if (!t->app_limited)
		t->app_limited = 1;
}

/* HandleProbeRTT(): once the flight is down to ProbeRTTCwnd, hold it for
 * 200 ms and a round. */
static void handle_probe_rtt(struct ust_tcb *t, ust_time now)
{
	struct bbr *b = bbr(t);

	mark_app_limited(t);
	if (!b->stamp && inflight(t) <= probe_rtt_cwnd(b)) {
		b->stamp = (now_ms(now) + PROBE_RTT_DURATION_MS) | 1; /* 0 means unset */
		b->probe_rtt_round_done = false;
		start_round(t);
	} else if (b->stamp) {
		if (b->round_start)
			b->probe_rtt_round_done = true;
		if (b->probe_rtt_round_done)
			check_probe_rtt_done(t, now);
	}
}

/* CheckProbeRTT(): 5 s without a lower RTT (and not just back from
 * idle, which drained the queue anyway): ProbeRTT. */
static void check_probe_rtt(struct ust_tcb *t, const struct tcp_rate_sample *rs, ust_time now)
{
	struct bbr *b = bbr(t);

	if (b->state != BBR_PROBE_RTT && b->probe_rtt_expired && !b->idle_restart) {
		save_cwnd(t);
		b->state = BBR_PROBE_RTT;
		b->stamp = 0;
		b->ack_phase = ACKS_PROBE_STOPPING;
		start_round(t);
	}
	if (b->state == BBR_PROBE_RTT)
		handle_probe_rtt(t, now);
	if (rs->delivered > 0)
		b->idle_restart = false;
}

/* ---- the window (§5.6.4) ---- */

/* Fast recovery (§5.6.4.4, as Linux's bbr_set_cwnd_to_recover_or_restore):
 * its first round keeps packet conservation, what is in flight plus what
 * this ACK delivered; leaving it restores the window from before. Returns
 * whether conservation sets the window now. */
static bool recover_or_restore(struct ust_tcb *t, const struct tcp_rate_sample *rs, uint32_t *cwnd)
{
	struct bbr *b = bbr(t);
	uint32_t w = t->snd_cwnd;

	if (rs->losses)
		w = w > rs->losses + 1 ? w - rs->losses : 1;
	if (t->ca_state == TCP_CA_RECOVERY && b->prev_ca_state != TCP_CA_RECOVERY) {
		b->packet_conservation = true;
		start_round(t);
		w = inflight(t) + rs->acked_sacked;
	} else if (b->prev_ca_state >= TCP_CA_RECOVERY && t->ca_state < TCP_CA_RECOVERY) {
		w = max_u32(w, b->prior_cwnd);
		b->packet_conservation = false;
	}
	b->prev_ca_state = t->ca_state;
	if (b->packet_conservation) {
		*cwnd = max_u32(w, inflight(t) + rs->acked_sacked);
		return true;
	}
	*cwnd = w;
	return false;
}

/* BoundCwndForModel() and BoundCwndForProbeRTT(). */
static uint32_t bound_cwnd(const struct ust_tcb *t, uint32_t cwnd)
{
	const struct bbr *b = bbr(t);
	uint32_t cap = BBR_INF;

	if (in_probe_bw(b) && b->state != BBR_PROBE_BW_CRUISE)
		cap = b->inflight_longterm;
	else if (b->state == BBR_PROBE_RTT || b->state == BBR_PROBE_BW_CRUISE)
		cap = inflight_with_headroom(b);
	cap = min_u32(cap, b->inflight_shortterm);
	cap = max_u32(cap, MIN_PIPE_CWND);
	cwnd = min_u32(cwnd, cap);
	if (b->state == BBR_PROBE_RTT)
		cwnd = min_u32(cwnd, probe_rtt_cwnd(b));
	return cwnd;
}

/* SetCwnd(): towards BBR.max_inflight = gain * BDP + extra_acked, with
 * the quantization budget, by no more than what each ACK delivered; down
 * to it at once once the pipe is full. */
static void set_cwnd(struct ust_tcb *t, const struct tcp_rate_sample *rs)
{
	struct bbr *b = bbr(t);
	uint32_t acked = rs->acked_sacked, cwnd = t->snd_cwnd, max_inflight;

	if (acked && !recover_or_restore(t, rs, &cwnd)) {
		max_inflight = bdp(b, bw(b), cwnd_gain(b));
		max_inflight = quantization_budget(t, max_inflight + extra_acked(b));
		if (b->full_bw_reached)
			cwnd = min_u32(cwnd + acked, max_inflight);
		else if (cwnd < max_inflight || t->delivered < TCP_INIT_CWND)
			cwnd += acked;
		cwnd = max_u32(cwnd, MIN_PIPE_CWND);
	}
	t->snd_cwnd = min_u32(bound_cwnd(t, cwnd), t->snd_cwnd_clamp);
}

/* ---- the tcp_cc operations ---- */

/* delivered / interval, segments per µs << 24 (0: no sample). */
static uint32_t bw_sample_of(const struct tcp_rate_sample *rs)
{
	uint64_t bw;

	if (rs->delivered <= 0 || !rs->interval)
		return 0;
	bw = ((uint64_t)rs->delivered * BW_UNIT + rs->interval - 1) / rs->interval;
	return bw < BBR_INF ? (uint32_t)bw : BBR_INF - 1;
}

/* UpdateOnACK() (§5.2.3): the model, the state machine, then the pacing
 * rate and the window. */
static void bbr_cong_control(struct ust_tcb *t, const struct tcp_rate_sample *rs, ust_time now)
{
	struct bbr *b = bbr(t);
	uint32_t bw_sample = bw_sample_of(rs);

	update_round(t, rs);
	update_latest_delivery_signals(t, rs, bw_sample);
	update_congestion_signals(t, rs, bw_sample);
	update_ack_aggregation(t, rs, now);
	check_startup_high_loss(t, rs);
	check_full_bw_reached(b, rs, bw_sample);
	check_startup_and_drain(t, now);
	update_probe_bw_cycle_phase(t, rs, bw_sample, now);
	update_min_rtt(b, rs, now);
	check_probe_rtt(t, rs, now);
	advance_latest_delivery_signals(b, rs, bw_sample);
	set_pacing_rate(t, pacing_gain(b));
	set_cwnd(t, rs);
}

/* OnInit() (§5.2.1). */
static void bbr_init(struct ust_tcb *t)
{
	struct bbr *b = bbr(t);
	ust_time now = t->tcp ? t->tcp->now : 0;
	ust_time rtt = tcp_min_rtt(t) ? tcp_min_rtt(t) : t->srtt;

	*b = (struct bbr){ .state = BBR_STARTUP };
	t->snd_ssthresh = TCP_INFINITE_SSTHRESH;
	b->min_rtt_us = !rtt ? BBR_INF : rtt < BBR_INF ? (uint32_t)rtt : BBR_INF - 1;
	b->probe_rtt_min_us = b->min_rtt_us;
	b->min_rtt_stamp = b->probe_rtt_min_stamp = now_ms(now);
	b->undo_state = BBR_NO_STATE;
	b->ack_epoch_stamp = (uint32_t)now;
	b->inflight_longterm = BBR_INF;
	b->probe_up_acked_per_inc = BBR_INF;
	b->ack_phase = ACKS_INIT;
	b->prev_ca_state = t->ca_state;
	b->next_round_delivered = (uint32_t)t->delivered;
	b->loss_round_delivered = (uint32_t)t->delivered + 1;
	reset_congestion_signals(b);
	reset_short_term_model(b);
	reset_full_bw(b);
	init_pacing_rate(t);
	enter_startup(b);
}

/* A loss episode begins (fast recovery or RTO): save what an undo would
 * restore (SaveStateUponLoss). ssthresh means nothing to BBR. */
static uint32_t bbr_ssthresh(struct ust_tcb *t)
{
	struct bbr *b = bbr(t);

	save_cwnd(t);
	b->undo_state = BBR_NO_STATE;
	b->undo_bw_shortterm = b->bw_shortterm;
	b->undo_inflight_shortterm = b->inflight_shortterm;
	b->undo_inflight_longterm = b->inflight_longterm;
	return t->snd_ssthresh;
}

/* HandleSpuriousLossDetection() (§5.5.11.2): the model from before the
 * episode, and the probe it interrupted. */
static uint32_t bbr_undo_cwnd(struct ust_tcb *t)
{
	struct bbr *b = bbr(t);

	b->loss_in_round = false;
	reset_full_bw(b);
	b->bw_shortterm = max_u32(b->bw_shortterm, b->undo_bw_shortterm);
	b->inflight_shortterm = max_u32(b->inflight_shortterm, b->undo_inflight_shortterm);
	b->inflight_longterm = max_u32(b->inflight_longterm, b->undo_inflight_longterm);
	if (b->undo_state == BBR_STARTUP && b->state != BBR_STARTUP) {
		b->full_bw_reached = false;
		if (b->state != BBR_PROBE_RTT)
			enter_startup(b);
	} else if (b->undo_state == BBR_PROBE_BW_UP && b->state != BBR_PROBE_BW_UP) {
		if (b->state != BBR_PROBE_RTT)
			start_probe_bw_refill(t);
	}
	b->undo_state = BBR_NO_STATE;
	return max_u32(t->snd_cwnd, b->prior_cwnd);
}

/* An RTO (the engine already cut cwnd to the flight plus one): start
 * looking for a full pipe again; keep the window from before the loss as
 * inflight_shortterm's start if none was set. Leaving the loss state
 * restores the window (§5.6.4.4). */
static void bbr_set_state(struct ust_tcb *t, enum tcp_ca_state state)
{
	struct bbr *b = bbr(t);

	if (state == TCP_CA_LOSS) {
		b->prev_ca_state = TCP_CA_LOSS;
		reset_full_bw(b);
		if (!is_probing_bw(b) && b->inflight_shortterm == BBR_INF)
			b->inflight_shortterm = max_u32(t->snd_cwnd, b->prior_cwnd);
	} else if (b->prev_ca_state == TCP_CA_LOSS) {
		restore_cwnd(t);
	}
}

/* HandleRestartFromIdle() (§5.4): after an idle period the flow paces at
 * exactly bw in ProbeBW, and ProbeRTT may be over already. */
static void bbr_cwnd_event(struct ust_tcb *t, enum tcp_ca_event ev, ust_time now)
{
	struct bbr *b = bbr(t);

	if (ev != TCP_CA_EV_TX_START || !t->app_limited)
		return;
	b->idle_restart = true;
	b->ack_epoch_stamp = (uint32_t)now;
	b->extra_acked_delivered = 0;
	if (in_probe_bw(b))
		set_pacing_rate(t, BBR_UNIT);
	else if (b->state == BBR_PROBE_RTT)
		check_probe_rtt_done(t, now);
}

static const char *const state_names[] = {
	[BBR_STARTUP] = "startup", [BBR_DRAIN] = "drain", [BBR_PROBE_BW_DOWN] = "probe_bw_down",
	[BBR_PROBE_BW_CRUISE] = "probe_bw_cruise", [BBR_PROBE_BW_REFILL] = "probe_bw_refill",
	[BBR_PROBE_BW_UP] = "probe_bw_up", [BBR_PROBE_RTT] = "probe_rtt",
};

static bool bbr_get_info(const struct ust_tcb *t, struct tcp_bbr_info *info)
{
	const struct bbr *b = bbr(t);

	*info = (struct tcp_bbr_info){
		.state = b->state < UST_ARRAY_SIZE(state_names) ? state_names[b->state] : "?",
		.bw = bbr_bytes_per_sec(t, bw(b)),
		.max_bw = bbr_bytes_per_sec(t, max_bw(b)),
		.min_rtt = b->min_rtt_us,
		.pacing_gain = pacing_gain(b),
		.cwnd_gain = cwnd_gain(b),
		.bdp = bdp(b, bw(b), BBR_UNIT),
		.inflight_longterm = b->inflight_longterm,
		.inflight_shortterm = b->inflight_shortterm,
		.full_bw_reached = b->full_bw_reached,
	};
	return true;
}

/* Three windows of send buffer, as BBRv3's Linux module (and v1). */
static uint32_t bbr_sndbuf_expand(struct ust_tcb *t)
{
	(void)t;
	return 3;
}

const struct tcp_cc tcp_cc_bbr3 = {
	.name = "bbr3",
	.init = bbr_init,
	.ssthresh = bbr_ssthresh,
	.undo_cwnd = bbr_undo_cwnd,
	.set_state = bbr_set_state,
	.cwnd_event = bbr_cwnd_event,
	.cong_control = bbr_cong_control,
	.marked_lost = bbr_marked_lost,
	.sndbuf_expand = bbr_sndbuf_expand,
	.get_info = bbr_get_info,
};
