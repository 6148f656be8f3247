/* Congestion control: how much may be in flight (cwnd) and where slow start
 * ends (ssthresh). The engine decides what is lost and what to send again
 * (tcp_input.c, tcp_timer.c); an algorithm behind struct tcp_cc only sizes
 * the window at the moments the engine tells it about. Today there is one,
 * Reno with NewReno's recovery (RFC 5681, RFC 6582), as Linux's "reno". */
#include "tcp_impl.h"

static uint32_t max_u32(uint32_t a, uint32_t b) { return a > b ? a : b; }

/* Half the window in use before the loss, at least two segments (RFC 5681
 * §3.1 equation 4). What limited transmit let out does not count (§3.2
 * step 2), and Linux takes cwnd / 2 alike: flight capped at cwnd. */
static uint32_t reno_half(const struct ust_tcb *t)
{
	uint32_t flight = tcb_flight(t) < t->cwnd ? tcb_flight(t) : t->cwnd;

	return max_u32(flight / 2, 2u * t->mss);
}

/* At the handshake: IW10 (RFC 6928), as Linux; no threshold yet. */
static void reno_init(struct ust_tcb *t)
{
	t->cwnd = 10u * t->mss;
	t->ssthresh = UINT32_MAX / 2;
	t->bytes_acked = 0;
}

/* Does cwnd limit the flow, so that growing it means something? Linux's
 * tcp_is_cwnd_limited: yes if a send was held back by cwnd in the last
 * window; in slow start also while cwnd is below twice the largest flight
 * (so a flow that paused still doubles from where it was). */
static bool cwnd_limited(const struct ust_tcb *t)
{
	if (t->cwnd_limited)
		return true;
	return t->cwnd < t->ssthresh && t->cwnd < 2 * t->max_flight;
}

/* New data acknowledged outside recovery, as Linux's Reno: nothing while
 * the application, not cwnd, limits the flow; slow start adds every
 * segment the ACK covers, up to ssthresh (RFC 3465 without its limit L,
 * as Linux); the rest goes to congestion avoidance, one MSS per window of
 * acknowledged segments (RFC 5681 §3.1). Segments are counted as
 * MSS-sized pieces of the acknowledged bytes, rounded up: a small segment
 * counts as one, as in Linux's packet counts. */
static void reno_acked(struct ust_tcb *t, uint32_t acked, ust_time now)
{
	uint32_t add = (acked + t->mss - 1) / t->mss * t->mss;

	if (!cwnd_limited(t))
		return;
	if (t->cwnd < t->ssthresh) {
		uint32_t ss = t->ssthresh - t->cwnd < add ? t->ssthresh - t->cwnd : add;
		t->cwnd += ss;
		add -= ss;
		if (!add)
			return;
	}
	t->bytes_acked += add;
	if (t->bytes_acked >= t->cwnd) {
		uint32_t windows = t->bytes_acked / t->cwnd;
		t->bytes_acked -= windows * t->cwnd;
		t->cwnd += windows * t->mss;
	}
}

/* Fast retransmit: ssthresh to half, cwnd to ssthresh plus the three
 * segments the duplicate ACKs say have left (RFC 5681 §3.2 steps 2-3). */
static void reno_enter_recovery(struct ust_tcb *t)
{
	t->ssthresh = reno_half(t);
	t->cwnd = t->ssthresh + 3u * t->mss;
}

/* Each further duplicate ACK in recovery: another segment left. */
static void reno_dupack(struct ust_tcb *t)
{
	t->cwnd += t->mss;
}

/* A partial ACK (RFC 6582 §3.2 step 5): deflate by what was acknowledged,
 * then add back one segment for the retransmission just sent. */
static void reno_partial_ack(struct ust_tcb *t, uint32_t acked)
{
	t->cwnd = t->cwnd > acked ? t->cwnd - acked : t->mss;
	t->cwnd += t->mss;
}

/* Recovery is over (RFC 6582 §3.2 step 3, first option; the flight-size
 * option collapses to one segment when the ACK covers everything, as it
 * usually does). */
static void reno_recovered(struct ust_tcb *t)
{
	t->cwnd = t->ssthresh;
}

/* A retransmission timeout: one segment at a time again (RFC 5681 §3.1).
 * Halve once per run of timeouts: a segment timed out again keeps
 * ssthresh. */
static void reno_timeout(struct ust_tcb *t)
{
	if (t->backoff == 0)
		t->ssthresh = reno_half(t);
	t->cwnd = t->mss;
}

const struct tcp_cc tcp_cc_reno = {
	.name = "reno",
	.init = reno_init,
	.acked = reno_acked,
	.enter_recovery = reno_enter_recovery,
	.dupack = reno_dupack,
	.partial_ack = reno_partial_ack,
	.recovered = reno_recovered,
	.timeout = reno_timeout,
};
