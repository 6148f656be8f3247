/* BBR as the Linux kernel runs it under the name "bbr" (mainline
 * net/ipv4/tcp_bbr.c, BBRv1): congestion control from a model of the
 * path, its bottleneck bandwidth (the windowed maximum of the
 * delivery-rate samples, tcp_rate.c, over ten rounds) and its round-trip
 * propagation time (the minimum RTT of the last ten seconds). The model
 * sets how fast to send (t->pacing_rate, which the engine enforces,
 * tcp_output.c) and how much may be in flight (snd_cwnd: twice the
 * bandwidth-delay product, plus what ACK aggregation needs).
 *
 * Why this and not only the draft: a program that asks for TCP_CONGESTION
 * "bbr" on Linux gets this algorithm, and Linux is the reference for what
 * a program can observe. Its defining trait, next to the draft's BBRv3
 * (tcp_bbr3.c, "bbr3"), is that random loss does not slow it: only
 * recovery's packet conservation for a round and a policer detector that
 * needs 20% loss react to loss at all. BBRv3 instead caps the flight when
 * a round loses more than 2%, which on a link with random loss of 5% and
 * more costs it several times the kernel's time (issue 12's loss matrix).
 *
 * The state machine: Startup doubles the rate every round (gain 2/ln 2 =
 * 2.89) until the bandwidth has not grown by 25% in three rounds, Drain
 * paces at the inverse gain until the flight is down to one BDP, ProbeBW
 * cycles eight phases of one min RTT each (1.25 to probe, 0.75 to drain
 * what the probe queued, then six at 1.0; the cycle starts at a random
 * phase, never the draining one), and ProbeRTT holds the flight to four
 * segments for 200 ms and a round when the minimum RTT has not been seen
 * again for ten seconds.
 *
 * Units as Linux: bandwidth in segments per µs scaled by 2^24, gains in
 * fixed point with 256 = 1.0, stamps in ms (Linux's jiffies). The engine
 * calls cong_control on every ACK (and does neither cong_avoid nor PRR for
 * us), ssthresh when a loss episode begins, set_state on every change of
 * ca_state, undo_cwnd when an episode was spurious.
 *
 * ECN: ignored, as by Linux's: the engine enters CWR on an echoed CE
 * mark and sends CWR (tcp_ecn.c), but the window is this module's own
 * (cong_control), so no reduction follows.
 *
 * Where it cannot be Linux's: Linux skips min-RTT samples from delayed
 * ACKs when the filter expires (rs->is_ack_delayed); the engine's rate
 * samples do not say, so every sample counts. The TSO segment goal is
 * computed from the pacing rate as Linux's bbr_tso_segs_goal, without the
 * header room a kernel skb reserves. */
#include "tcp_bbr.h"

#define HIGH_GAIN (BBR_UNIT * 2885 / 1000 + 1) /* 2/ln(2): doubles the rate per round */
#define DRAIN_GAIN (BBR_UNIT * 1000 / 2885)   /* its inverse: drains in one round */
#define CWND_GAIN (BBR_UNIT * 2)              /* ProbeBW's: room for delayed, stretched ACKs */
#define CYCLE_LEN 8                           /* ProbeBW's phases */
#define CYCLE_RAND 7                          /* the random start skips the draining phase */
#define BW_FILTER_ROUNDS (CYCLE_LEN + 2)      /* the max filter's window */
#define MIN_RTT_WIN_MS 10000
#define PROBE_RTT_MODE_MS 200
#define CWND_MIN_TARGET 4
#define FULL_BW_THRESH (BBR_UNIT * 5 / 4)     /* 25% growth... */
#define FULL_BW_COUNT 3                       /* ...missing for three rounds */
#define MIN_TSO_RATE 150000                   /* bytes/s (1.2 Mbit/s): below it, 1-segment bursts */
#define TSO_BYTES_MAX 65536
/* The long-term ("policer") model: over intervals of 4 to 16 rounds with at
 * least 20% loss, two consecutive ones delivering within 1/8 (or 4 kB/s)
 * of each other set the rate to their average for 48 rounds. */
#define LT_INTVL_MIN_RTTS 4
#define LT_LOSS_THRESH 50                     /* of 256: 19.5% */
#define LT_BW_RATIO (BBR_UNIT / 8)
#define LT_BW_DIFF 4000                       /* bytes/s */
#define LT_BW_MAX_RTTS 48
/* ACK aggregation: the largest excess of ACKed over expected in 5 rounds,
 * at most 100 ms of data, added to the window once the pipe is full. */
#define EXTRA_ACKED_GAIN BBR_UNIT
#define EXTRA_ACKED_WIN_RTTS 5
#define ACK_EPOCH_ACKED_RESET (1u << 20)
#define EXTRA_ACKED_MAX_US 100000

enum bbr_mode { BBR_STARTUP, BBR_DRAIN, BBR_PROBE_BW, BBR_PROBE_RTT };

/* ProbeBW's pacing gains, phase by phase. */
static const uint32_t cycle_gain[CYCLE_LEN] = {
	BBR_UNIT * 5 / 4, BBR_UNIT * 3 / 4, BBR_UNIT, BBR_UNIT, BBR_UNIT, BBR_UNIT, BBR_UNIT, BBR_UNIT,
};

/* Linux's struct bbr, field for field where the engine has the same
 * quantity; the bandwidth filter keeps the best sample of each of the
 * last rounds in three slots as Linux's minmax does. */
struct bbr {
	uint32_t min_rtt_us;            /* UINT32_MAX: none yet */
	uint32_t min_rtt_stamp;         /* ms */
	uint32_t probe_rtt_done_stamp;  /* ms; 0: not yet known */
	struct bw_sample { uint32_t rtt_cnt, bw; } bw_filter[3]; /* windowed max of bw */
	uint32_t rtt_cnt;               /* rounds so far */
	uint32_t next_rtt_delivered;    /* t->delivered that ends the round */
	uint64_t cycle_stamp;           /* µs: the ProbeBW phase's start */
	uint32_t lt_bw;                 /* the long-term rate */
	uint32_t lt_last_delivered, lt_last_lost;
	uint32_t lt_last_stamp;         /* ms */
	uint32_t prior_cwnd;            /* the last good cwnd, restored after recovery and ProbeRTT */
	uint32_t full_bw;               /* Startup's baseline bandwidth */
	uint32_t ack_epoch_stamp;       /* µs (low 32 bits): the aggregation interval's start */
	uint16_t extra_acked[2];        /* the aggregation filter, two windows */
	uint16_t pacing_gain, cwnd_gain;
	unsigned ack_epoch_acked : 20, extra_acked_win_rtts : 5, extra_acked_win_idx : 1;
	unsigned mode : 2, prev_ca_state : 3, packet_conservation : 1, round_start : 1, idle_restart : 1,
		probe_rtt_round_done : 1, lt_is_sampling : 1, lt_rtt_cnt : 7, lt_use_bw : 1,
		full_bw_reached : 1, full_bw_cnt : 2, cycle_idx : 3, has_seen_rtt : 1;
};
_Static_assert(sizeof(struct bbr) <= sizeof(((struct ust_tcb *)0)->ca_priv),
	       "BBR's state must fit the control block's ca_priv");

static struct bbr *bbr(const struct ust_tcb *t) { return (struct bbr *)t->ca_priv; }

static uint32_t max_u32(uint32_t a, uint32_t b) { return a > b ? a : b; }
static uint32_t min_u32(uint32_t a, uint32_t b) { return a < b ? a : b; }
static uint32_t clamp_u32(uint64_t v) { return v < UINT32_MAX ? (uint32_t)v : UINT32_MAX - 1; }
static uint32_t now_ms(ust_time now) { return (uint32_t)(now / 1000); }
static bool ms_after(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }

/* ---- the bandwidth filter (Linux's minmax_running_max) ---- */

static uint32_t max_bw(const struct bbr *b) { return b->bw_filter[0].bw; }

static void bw_filter_reset(struct bbr *b, uint32_t rtt_cnt, uint32_t bw)
{
	for (int i = 0; i < 3; i++)
		b->bw_filter[i].rtt_cnt = rtt_cnt, b->bw_filter[i].bw = bw;
}

/* Kathleen Nichols' algorithm: the best, second best and third best
 * samples of the window, each newer than the one before, so that the
 * best is replaced by a still valid one when it ages out. */
static void bw_filter_update(struct bbr *b, uint32_t bw)
{
	uint32_t now = b->rtt_cnt;
	struct bw_sample *s = b->bw_filter, val = { now, bw };
	uint32_t dt;

	if (bw >= s[0].bw || now - s[2].rtt_cnt > BW_FILTER_ROUNDS) {
		bw_filter_reset(b, now, bw);
		return;
	}
	if (bw >= s[1].bw)
		s[2] = s[1] = val;
	else if (bw >= s[2].bw)
		s[2] = val;
	/* the window has passed the best: promote the others */
	dt = now - s[0].rtt_cnt;
	if (dt > BW_FILTER_ROUNDS) {
		s[0] = s[1];
		s[1] = s[2];
		s[2] = val;
		if (now - s[0].rtt_cnt > BW_FILTER_ROUNDS) {
			s[0] = s[1];
			s[1] = s[2];
			s[2] = val;
		}
	} else if (s[1].rtt_cnt == s[0].rtt_cnt && dt > BW_FILTER_ROUNDS / 4) {
		s[2] = s[1] = val;
	} else if (s[2].rtt_cnt == s[1].rtt_cnt && dt > BW_FILTER_ROUNDS / 2) {
		s[2] = val;
	}
}

/* The rate the model uses: the long-term one while a policer is
 * suspected, else the windowed maximum. */
static uint32_t bbr_bw(const struct bbr *b) { return b->lt_use_bw ? b->lt_bw : max_bw(b); }

/* ---- pacing ---- */

/* The initial window over the smoothed RTT (1 ms without one) at
 * Startup's gain. */
static void init_pacing_rate_from_rtt(struct ust_tcb *t)
{
	struct bbr *b = bbr(t);
	uint64_t rtt_us = 1000;

	if (t->srtt) {
		rtt_us = t->srtt;
		b->has_seen_rtt = true;
	}
	t->pacing_rate = bbr_pacing_rate(t, (uint64_t)t->snd_cwnd * BW_UNIT / rtt_us, HIGH_GAIN);
}

/* Only upwards until the pipe is full, so that application-limited
 * samples do not slow Startup down. */
static void set_pacing_rate(struct ust_tcb *t, uint32_t bw, uint32_t gain)
{
	struct bbr *b = bbr(t);
	uint64_t rate = bbr_pacing_rate(t, bw, gain);

	if (!b->has_seen_rtt && t->srtt)
		init_pacing_rate_from_rtt(t);
	if (rate && (b->full_bw_reached || rate > t->pacing_rate))
		t->pacing_rate = rate;
}

/* Segments per burst the pacing rate allows (about 1 ms of data, 2 at
 * least above 1.2 Mbit/s, 127 at most): what the window needs room for. */
static uint32_t tso_segs_goal(const struct ust_tcb *t)
{
	uint64_t bytes = t->pacing_rate >> 10;
	uint32_t segs = (uint32_t)(min_u32(clamp_u32(bytes), TSO_BYTES_MAX) / max_u32(t->mss, 1));
	uint32_t floor = t->pacing_rate < MIN_TSO_RATE ? 1 : 2;

	return min_u32(max_u32(segs, floor), 127);
}

/* ---- the window's target ---- */

static uint32_t bdp(const struct bbr *b, uint32_t bw, uint32_t gain)
{
	return bbr_bdp(b->min_rtt_us, bw, gain);
}

/* Room for three bursts in flight at the sender, the receiver and the
 * path; an even number (delayed ACKs); and 2 more in the probing phase so
 * that it really probes. */
static uint32_t quantization_budget(const struct ust_tcb *t, uint32_t cwnd)
{
	const struct bbr *b = bbr(t);

	cwnd += 3 * tso_segs_goal(t);
	cwnd = (cwnd + 1) & ~1u;
	if (b->mode == BBR_PROBE_BW && b->cycle_idx == 0)
		cwnd += 2;
	return cwnd;
}

static uint32_t bbr_inflight(const struct ust_tcb *t, uint32_t bw, uint32_t gain)
{
	return quantization_budget(t, bdp(bbr(t), bw, gain));
}

/* What will still be in the network when the next burst leaves (its
 * earliest departure time): what is in flight now less what the model's
 * rate delivers until then, plus one burst when probing. */
static uint32_t packets_in_net_at_edt(const struct ust_tcb *t, uint32_t inflight_now, ust_time now)
{
	const struct bbr *b = bbr(t);
	uint64_t now_ns = (uint64_t)now * 1000, edt_ns = t->pacing_next_ns > now_ns ? t->pacing_next_ns : now_ns;
	uint64_t delivered = ((uint64_t)bbr_bw(b) * ((edt_ns - now_ns) / 1000)) >> BW_SCALE;
	uint64_t at_edt = inflight_now;

	if (b->pacing_gain > BBR_UNIT)
		at_edt += tso_segs_goal(t);
	return delivered >= at_edt ? 0 : (uint32_t)(at_edt - delivered);
}

/* ---- ACK aggregation ---- */

static uint32_t extra_acked(const struct bbr *b) { return max_u32(b->extra_acked[0], b->extra_acked[1]); }

/* How much more the ACKs delivered than bw over the interval would: what
 * the window must hold beyond the BDP so that the sender does not stall
 * while ACKs come in bursts (Wi-Fi, GRO, stretched ACKs). */
static void update_ack_aggregation(struct ust_tcb *t, const struct tcp_rate_sample *rs)
{
	struct bbr *b = bbr(t);
	uint32_t epoch_us, expected, extra;

	if (!rs->acked_sacked || rs->delivered < 0 || !rs->interval)
		return;
	if (b->round_start) {
		b->extra_acked_win_rtts = min_u32(31, b->extra_acked_win_rtts + 1);
		if (b->extra_acked_win_rtts >= EXTRA_ACKED_WIN_RTTS) {
			b->extra_acked_win_rtts = 0;
			b->extra_acked_win_idx ^= 1;
			b->extra_acked[b->extra_acked_win_idx] = 0;
		}
	}
	epoch_us = (uint32_t)t->delivered_time - b->ack_epoch_stamp;
	expected = clamp_u32(((uint64_t)bbr_bw(b) * epoch_us) >> BW_SCALE);
	/* The ACK rate fell to bw (or the count would overflow): a new
	 * interval starts here. */
	if (b->ack_epoch_acked <= expected || b->ack_epoch_acked + rs->acked_sacked >= ACK_EPOCH_ACKED_RESET) {
		b->ack_epoch_acked = 0;
		b->ack_epoch_stamp = (uint32_t)t->delivered_time;
		expected = 0;
	}
	b->ack_epoch_acked = min_u32(0xFFFFF, b->ack_epoch_acked + rs->acked_sacked);
	extra = min_u32(b->ack_epoch_acked - expected, t->snd_cwnd);
	if (extra > b->extra_acked[b->extra_acked_win_idx])
		b->extra_acked[b->extra_acked_win_idx] = (uint16_t)min_u32(extra, UINT16_MAX);
}

static uint32_t ack_aggregation_cwnd(const struct bbr *b)
{
	uint32_t cap;

	if (!b->full_bw_reached)
		return 0;
	cap = clamp_u32(((uint64_t)bbr_bw(b) * EXTRA_ACKED_MAX_US) >> BW_SCALE);
	return min_u32((EXTRA_ACKED_GAIN * extra_acked(b)) >> BBR_SCALE, cap);
}

/* ---- the long-term model: a token-bucket policer in the path ---- */

static void reset_lt_interval(struct ust_tcb *t)
{
	struct bbr *b = bbr(t);

	b->lt_last_stamp = now_ms(t->delivered_time);
	b->lt_last_delivered = (uint32_t)t->delivered;
	b->lt_last_lost = (uint32_t)t->lost;
	b->lt_rtt_cnt = 0;
}

static void reset_lt_sampling(struct ust_tcb *t)
{
	struct bbr *b = bbr(t);

	b->lt_bw = 0;
	b->lt_use_bw = false;
	b->lt_is_sampling = false;
	reset_lt_interval(t);
}

static void reset_probe_bw_mode(struct ust_tcb *t);

/* An interval ended with heavy loss at rate bw: if the one before was
 * the same rate, a policer it is. */
static void lt_interval_done(struct ust_tcb *t, uint32_t bw)
{
	struct bbr *b = bbr(t);

	if (b->lt_bw) {
		uint32_t diff = bw > b->lt_bw ? bw - b->lt_bw : b->lt_bw - bw;

		if ((uint64_t)diff * BBR_UNIT <= (uint64_t)LT_BW_RATIO * b->lt_bw ||
		    bbr_pacing_rate(t, diff, BBR_UNIT) <= LT_BW_DIFF) {
			b->lt_bw = (uint32_t)(((uint64_t)bw + b->lt_bw) >> 1);
			b->lt_use_bw = true;
			b->pacing_gain = BBR_UNIT; /* no probing while policed */
			b->lt_rtt_cnt = 0;
			return;
		}
	}
	b->lt_bw = bw;
	reset_lt_interval(t);
}

static void lt_bw_sampling(struct ust_tcb *t, const struct tcp_rate_sample *rs)
{
	struct bbr *b = bbr(t);
	uint32_t lost, delivered, ms;

	if (b->lt_use_bw) { /* policed: try the real model again after 48 rounds */
		if (b->mode == BBR_PROBE_BW && b->round_start && ++b->lt_rtt_cnt >= LT_BW_MAX_RTTS) {
			reset_lt_sampling(t);
			reset_probe_bw_mode(t);
		}
		return;
	}
	if (!b->lt_is_sampling) { /* an interval starts at the first loss */
		if (!rs->losses)
			return;
		reset_lt_interval(t);
		b->lt_is_sampling = true;
	}
	if (rs->is_app_limited) { /* the application, not the path, set the rate */
		reset_lt_sampling(t);
		return;
	}
	if (b->round_start)
		b->lt_rtt_cnt++;
	if (b->lt_rtt_cnt < LT_INTVL_MIN_RTTS)
		return;
	if (b->lt_rtt_cnt > 4 * LT_INTVL_MIN_RTTS) {
		reset_lt_sampling(t);
		return;
	}
	/* the interval ends at a loss, where a policer's bucket runs dry */
	if (!rs->losses)
		return;
	lost = (uint32_t)t->lost - b->lt_last_lost;
	delivered = (uint32_t)t->delivered - b->lt_last_delivered;
	if (!delivered || (uint64_t)lost << BBR_SCALE < (uint64_t)LT_LOSS_THRESH * delivered)
		return;
	ms = now_ms(t->delivered_time) - b->lt_last_stamp;
	if ((int32_t)ms < 1)
		return;
	if (ms >= UINT32_MAX / 1000) {
		reset_lt_sampling(t);
		return;
	}
	lt_interval_done(t, clamp_u32((uint64_t)delivered * BW_UNIT / ((uint64_t)ms * 1000)));
}

/* ---- the model, on every ACK ---- */

static void update_bw(struct ust_tcb *t, const struct tcp_rate_sample *rs)
{
	struct bbr *b = bbr(t);
	uint32_t bw;

	b->round_start = false;
	if (rs->delivered < 0 || !rs->interval)
		return;
	/* a round ends when a segment sent after its start is delivered */
	if ((int32_t)((uint32_t)rs->prior_delivered - b->next_rtt_delivered) >= 0) {
		b->next_rtt_delivered = (uint32_t)t->delivered;
		b->rtt_cnt++;
		b->round_start = true;
		b->packet_conservation = false;
	}
	lt_bw_sampling(t, rs);
	bw = clamp_u32((uint64_t)rs->delivered * BW_UNIT / rs->interval);
	/* An application-limited sample says only that the path can do at
	 * least this much: it counts if it raises the estimate. */
	if (!rs->is_app_limited || bw >= max_bw(b))
		bw_filter_update(b, bw);
}

static void advance_cycle_phase(struct ust_tcb *t)
{
	struct bbr *b = bbr(t);

	b->cycle_idx = (b->cycle_idx + 1) & (CYCLE_LEN - 1);
	b->cycle_stamp = t->delivered_time;
}

/* A phase lasts one min RTT; the probing phase longer, until it lost or
 * filled the pipe at its gain; the draining phase shorter, as soon as
 * the queue is gone. */
static bool is_next_cycle_phase(struct ust_tcb *t, const struct tcp_rate_sample *rs, ust_time now)
{
	struct bbr *b = bbr(t);
	bool full_length = t->delivered_time - b->cycle_stamp > b->min_rtt_us;
	uint32_t inflight;

	if (b->pacing_gain == BBR_UNIT)
		return full_length;
	inflight = packets_in_net_at_edt(t, rs->prior_in_flight, now);
	if (b->pacing_gain > BBR_UNIT)
		return full_length && (rs->losses || inflight >= bbr_inflight(t, max_bw(b), b->pacing_gain));
	return full_length || inflight <= bbr_inflight(t, max_bw(b), BBR_UNIT);
}

static void update_cycle_phase(struct ust_tcb *t, const struct tcp_rate_sample *rs, ust_time now)
{
	if (bbr(t)->mode == BBR_PROBE_BW && is_next_cycle_phase(t, rs, now))
		advance_cycle_phase(t);
}

static void reset_startup_mode(struct bbr *b) { b->mode = BBR_STARTUP; }

/* ProbeBW from a random phase (not the draining one), so that flows
 * sharing a bottleneck do not probe in step. */
static void reset_probe_bw_mode(struct ust_tcb *t)
{
	struct bbr *b = bbr(t);
	uint64_t z = ((uint64_t)t->iss << 32) ^ t->delivered ^ t->delivered_time;

	/* the connection's own randomness, so that segment scripts repeat */
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	b->mode = BBR_PROBE_BW;
	b->cycle_idx = CYCLE_LEN - 1 - (uint32_t)((z ^ (z >> 31)) % CYCLE_RAND);
	advance_cycle_phase(t);
}

static void reset_mode(struct ust_tcb *t)
{
	if (!bbr(t)->full_bw_reached)
		reset_startup_mode(bbr(t));
	else
		reset_probe_bw_mode(t);
}

/* Three rounds, not limited by the application, without 25% more
 * bandwidth: the pipe is full. */
static void check_full_bw_reached(struct bbr *b, const struct tcp_rate_sample *rs)
{
	if (b->full_bw_reached || !b->round_start || rs->is_app_limited)
		return;
	if ((uint64_t)max_bw(b) * BBR_UNIT >= (uint64_t)b->full_bw * FULL_BW_THRESH) {
		b->full_bw = max_bw(b);
		b->full_bw_cnt = 0;
		return;
	}
	b->full_bw_cnt++;
	b->full_bw_reached = b->full_bw_cnt >= FULL_BW_COUNT;
}

/* Drain what Startup queued: until the flight is one BDP. */
static void check_drain(struct ust_tcb *t, ust_time now)
{
	struct bbr *b = bbr(t);

	if (b->mode == BBR_STARTUP && b->full_bw_reached) {
		b->mode = BBR_DRAIN;
		t->snd_ssthresh = bbr_inflight(t, max_bw(b), BBR_UNIT);
	}
	if (b->mode == BBR_DRAIN &&
	    packets_in_net_at_edt(t, tcp_packets_in_flight(t), now) <= bbr_inflight(t, max_bw(b), BBR_UNIT))
		reset_probe_bw_mode(t);
}

/* The last cwnd not cut by recovery or ProbeRTT. */
static void save_cwnd(struct ust_tcb *t)
{
	struct bbr *b = bbr(t);

	if (b->prev_ca_state < TCP_CA_RECOVERY && b->mode != BBR_PROBE_RTT)
		b->prior_cwnd = t->snd_cwnd;
	else
		b->prior_cwnd = max_u32(b->prior_cwnd, t->snd_cwnd);
}

static void check_probe_rtt_done(struct ust_tcb *t, ust_time now)
{
	struct bbr *b = bbr(t);

	if (!b->probe_rtt_done_stamp || !ms_after(now_ms(now), b->probe_rtt_done_stamp))
		return;
	b->min_rtt_stamp = now_ms(now); /* the next ProbeRTT in 10 s */
	t->snd_cwnd = max_u32(t->snd_cwnd, b->prior_cwnd);
	reset_mode(t);
}

/* The minimum RTT of the last 10 s; when it expires, ProbeRTT drains the
 * queue (four segments for 200 ms and a round) so that it can be seen. */
static void update_min_rtt(struct ust_tcb *t, const struct tcp_rate_sample *rs, ust_time now)
{
	struct bbr *b = bbr(t);
	bool expired = ms_after(now_ms(now), b->min_rtt_stamp + MIN_RTT_WIN_MS);

	if (rs->rtt && (rs->rtt < b->min_rtt_us || expired)) {
		b->min_rtt_us = clamp_u32(rs->rtt);
		b->min_rtt_stamp = now_ms(now);
	}
	if (expired && !b->idle_restart && b->mode != BBR_PROBE_RTT) {
		b->mode = BBR_PROBE_RTT;
		save_cwnd(t);
		b->probe_rtt_done_stamp = 0;
	}
	if (b->mode == BBR_PROBE_RTT) {
		/* ProbeRTT's low rate is not the path's */
		t->app_limited = t->delivered + tcp_packets_in_flight(t);
		if (!t->app_limited)
			t->app_limited = 1;
		if (!b->probe_rtt_done_stamp && tcp_packets_in_flight(t) <= CWND_MIN_TARGET) {
			b->probe_rtt_done_stamp = (now_ms(now) + PROBE_RTT_MODE_MS) | 1; /* 0 means unset */
			b->probe_rtt_round_done = false;
			b->next_rtt_delivered = (uint32_t)t->delivered;
		} else if (b->probe_rtt_done_stamp) {
			if (b->round_start)
				b->probe_rtt_round_done = true;
			if (b->probe_rtt_round_done)
				check_probe_rtt_done(t, now);
		}
	}
	if (rs->delivered > 0)
		b->idle_restart = false;
}

static void update_gains(struct bbr *b)
{
	switch (b->mode) {
	case BBR_STARTUP:
		b->pacing_gain = HIGH_GAIN;
		b->cwnd_gain = HIGH_GAIN;
		break;
	case BBR_DRAIN:
		b->pacing_gain = DRAIN_GAIN;
		b->cwnd_gain = HIGH_GAIN; /* keep the window while the queue drains */
		break;
	case BBR_PROBE_BW:
		b->pacing_gain = b->lt_use_bw ? BBR_UNIT : cycle_gain[b->cycle_idx];
		b->cwnd_gain = CWND_GAIN;
		break;
	case BBR_PROBE_RTT:
		b->pacing_gain = BBR_UNIT;
		b->cwnd_gain = BBR_UNIT;
		break;
	}
}

/* ---- the window ---- */

/* Recovery's first round keeps packet conservation (what is in flight
 * plus what this ACK delivered, never less); leaving recovery restores
 * the window from before. Returns whether conservation sets it now. */
static bool set_cwnd_to_recover_or_restore(struct ust_tcb *t, const struct tcp_rate_sample *rs,
					   uint32_t *new_cwnd)
{
	struct bbr *b = bbr(t);
	uint32_t cwnd = t->snd_cwnd, acked = rs->acked_sacked;

	if (rs->losses)
		cwnd = cwnd > rs->losses + 1 ? cwnd - rs->losses : 1;
	if (t->ca_state == TCP_CA_RECOVERY && b->prev_ca_state != TCP_CA_RECOVERY) {
		b->packet_conservation = true;
		b->next_rtt_delivered = (uint32_t)t->delivered; /* for one round from now */
		cwnd = tcp_packets_in_flight(t) + acked;
	} else if (b->prev_ca_state >= TCP_CA_RECOVERY && t->ca_state < TCP_CA_RECOVERY) {
		cwnd = max_u32(cwnd, b->prior_cwnd);
		b->packet_conservation = false;
	}
	b->prev_ca_state = t->ca_state;
	if (b->packet_conservation) {
		*new_cwnd = max_u32(cwnd, tcp_packets_in_flight(t) + acked);
		return true;
	}
	*new_cwnd = cwnd;
	return false;
}

/* Towards gain * BDP + the aggregation allowance, by what each ACK
 * delivered: down at once once the pipe is full, up only while below
 * the target (or in the first window) before. */
static void set_cwnd(struct ust_tcb *t, const struct tcp_rate_sample *rs, uint32_t bw, uint32_t gain)
{
	struct bbr *b = bbr(t);
	uint32_t cwnd = t->snd_cwnd, acked = rs->acked_sacked, target;

	if (acked && !set_cwnd_to_recover_or_restore(t, rs, &cwnd)) {
		target = bdp(b, bw, gain) + ack_aggregation_cwnd(b);
		target = quantization_budget(t, target);
		if (b->full_bw_reached)
			cwnd = min_u32(cwnd + acked, target);
		else if (cwnd < target || t->delivered < TCP_INIT_CWND)
			cwnd += acked;
		cwnd = max_u32(cwnd, CWND_MIN_TARGET);
	}
	t->snd_cwnd = min_u32(cwnd, t->snd_cwnd_clamp);
	if (b->mode == BBR_PROBE_RTT)
		t->snd_cwnd = min_u32(t->snd_cwnd, CWND_MIN_TARGET);
}

/* ---- the tcp_cc operations ---- */

static void bbr_cong_control(struct ust_tcb *t, const struct tcp_rate_sample *rs, ust_time now)
{
	struct bbr *b = bbr(t);

	update_bw(t, rs);
	update_ack_aggregation(t, rs);
	update_cycle_phase(t, rs, now);
	check_full_bw_reached(b, rs);
	check_drain(t, now);
	update_min_rtt(t, rs, now);
	update_gains(b);
	set_pacing_rate(t, bbr_bw(b), b->pacing_gain);
	set_cwnd(t, rs, bbr_bw(b), b->cwnd_gain);
}

static void bbr_init(struct ust_tcb *t)
{
	struct bbr *b = bbr(t);
	ust_time min_rtt = tcp_min_rtt(t);

	*b = (struct bbr){ 0 };
	t->snd_ssthresh = TCP_INFINITE_SSTHRESH;
	b->next_rtt_delivered = (uint32_t)t->delivered;
	b->prev_ca_state = TCP_CA_OPEN;
	b->min_rtt_us = min_rtt ? clamp_u32(min_rtt) : UINT32_MAX;
	b->min_rtt_stamp = now_ms(t->tcp ? t->tcp->now : 0);
	bw_filter_reset(b, 0, 0);
	init_pacing_rate_from_rtt(t);
	reset_lt_sampling(t);
	reset_startup_mode(b);
	update_gains(b);
	b->ack_epoch_stamp = (uint32_t)(t->tcp ? t->tcp->now : 0);
}

/* A loss episode begins: remember the window to restore. BBR keeps no
 * ssthresh of its own. */
static uint32_t bbr_ssthresh(struct ust_tcb *t)
{
	save_cwnd(t);
	return t->snd_ssthresh;
}

/* The episode was spurious: look for a full pipe again, and forget the
 * policer suspicion it raised. */
static uint32_t bbr_undo_cwnd(struct ust_tcb *t)
{
	struct bbr *b = bbr(t);

	b->full_bw = 0;
	b->full_bw_cnt = 0;
	reset_lt_sampling(t);
	return t->snd_cwnd;
}

/* An RTO: its loss counts for the policer detector, and the full-pipe
 * estimate starts over. */
static void bbr_set_state(struct ust_tcb *t, enum tcp_ca_state state)
{
	struct bbr *b = bbr(t);

	if (state == TCP_CA_LOSS) {
		struct tcp_rate_sample rs = { .losses = 1 };

		b->prev_ca_state = TCP_CA_LOSS;
		b->full_bw = 0;
		b->round_start = true;
		lt_bw_sampling(t, &rs);
	}
}

/* Sending again after idle: pace at the estimate, not at a probing or
 * draining gain, and ProbeRTT may be over already. */
static void bbr_cwnd_event(struct ust_tcb *t, enum tcp_ca_event ev, ust_time now)
{
	struct bbr *b = bbr(t);

	if (ev != TCP_CA_EV_TX_START || !t->app_limited)
		return;
	b->idle_restart = true;
	b->ack_epoch_stamp = (uint32_t)now;
	b->ack_epoch_acked = 0;
	if (b->mode == BBR_PROBE_BW)
		set_pacing_rate(t, bbr_bw(b), BBR_UNIT);
	else if (b->mode == BBR_PROBE_RTT)
		check_probe_rtt_done(t, now);
}

/* Three windows of send buffer: room for the probing gain on top of
 * recovery's. */
static uint32_t bbr_sndbuf_expand(struct ust_tcb *t)
{
	(void)t;
	return 3;
}

static const char *const mode_names[] = {
	[BBR_STARTUP] = "startup", [BBR_DRAIN] = "drain", [BBR_PROBE_BW] = "probe_bw",
	[BBR_PROBE_RTT] = "probe_rtt",
};

static bool bbr_get_info(const struct ust_tcb *t, struct tcp_bbr_info *info)
{
	const struct bbr *b = bbr(t);

	*info = (struct tcp_bbr_info){
		.state = mode_names[b->mode],
		.bw = bbr_bytes_per_sec(t, bbr_bw(b)),
		.max_bw = bbr_bytes_per_sec(t, max_bw(b)),
		.min_rtt = b->min_rtt_us,
		.pacing_gain = b->pacing_gain,
		.cwnd_gain = b->cwnd_gain,
		.bdp = bdp(b, bbr_bw(b), BBR_UNIT),
		.inflight_longterm = UINT32_MAX,
		.inflight_shortterm = UINT32_MAX,
		.full_bw_reached = b->full_bw_reached,
	};
	return true;
}

const struct tcp_cc tcp_cc_bbr = {
	.name = "bbr",
	.init = bbr_init,
	.ssthresh = bbr_ssthresh,
	.undo_cwnd = bbr_undo_cwnd,
	.set_state = bbr_set_state,
	.cwnd_event = bbr_cwnd_event,
	.cong_control = bbr_cong_control,
	.sndbuf_expand = bbr_sndbuf_expand,
	.get_info = bbr_get_info,
};
