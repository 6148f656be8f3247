/* Congestion control: how many segments may be in flight (snd_cwnd) and
 * where slow start ends (snd_ssthresh), behind struct tcp_cc, shaped as
 * Linux's tcp_congestion_ops. The engine decides what is lost and what to
 * send (tcp_ack.c, tcp_output.c, tcp_timer.c), reduces the window during
 * recovery and tells the algorithm about the moments that matter; the
 * algorithm grows the window, chooses ssthresh after a loss and the window
 * to restore after a spurious one. Here: the table of algorithms, Linux's
 * helpers they share (tcp_cong.c), and Reno, as Linux's "reno". */
#include <errno.h>
#include <string.h>

#include "tcp_impl.h"

static uint32_t max_u32(uint32_t a, uint32_t b) { return a > b ? a : b; }
static uint32_t min_u32(uint32_t a, uint32_t b) { return a < b ? a : b; }

/* ---- the helpers every algorithm uses (Linux's tcp_cong.c) ---- */

/* Linux's tcp_is_cwnd_limited: yes if a send was held back by cwnd in the
 * last window (tcp_cwnd_validate in tcp_output.c keeps that); in slow
 * start also while cwnd is below twice the largest flight, so that a flow
 * that paused still doubles from where it was (RFC 7661's idea). */
bool tcp_is_cwnd_limited(const struct ust_tcb *t)
{
	if (t->is_cwnd_limited)
		return true;
	if (tcp_in_slow_start(t))
		return t->snd_cwnd < 2 * t->max_packets_out;
	return false;
}

/* Slow start as Linux's tcp_slow_start: every segment acknowledged adds
 * one (RFC 3465 without its limit L), up to ssthresh; the rest is
 * returned for congestion avoidance. */
uint32_t tcp_slow_start(struct ust_tcb *t, uint32_t acked)
{
	uint32_t cwnd = min_u32(t->snd_cwnd + acked, t->snd_ssthresh);

	if (cwnd < t->snd_cwnd)
		cwnd = t->snd_cwnd; /* already above ssthresh: nothing to add here */
	acked -= cwnd - t->snd_cwnd;
	t->snd_cwnd = min_u32(cwnd, t->snd_cwnd_clamp);
	return acked;
}

/* Congestion avoidance (RFC 5681 §3.1) as Linux's tcp_cong_avoid_ai: one
 * segment more for every w segments acknowledged; credit gathered while w
 * was larger is spent gently, one segment at once. */
void tcp_cong_avoid_ai(struct ust_tcb *t, uint32_t w, uint32_t acked)
{
	if (t->snd_cwnd_cnt >= w) {
		t->snd_cwnd_cnt = 0;
		t->snd_cwnd++;
	}
	t->snd_cwnd_cnt += acked;
	if (t->snd_cwnd_cnt >= w) {
		uint32_t delta = t->snd_cwnd_cnt / w;
		t->snd_cwnd_cnt -= delta * w;
		t->snd_cwnd += delta;
	}
	t->snd_cwnd = min_u32(t->snd_cwnd, t->snd_cwnd_clamp);
}

/* Segments in the network (RFC 6675's pipe, Linux's
 * tcp_packets_in_flight): those sent, less the SACKed and the lost ones,
 * plus the retransmissions of lost ones. */
uint32_t tcp_packets_in_flight(const struct ust_tcb *t)
{
	uint32_t left_out = t->sacked_out + t->lost_out;

	return (left_out < t->packets_out ? t->packets_out - left_out : 0) + t->retrans_out;
}

/* ---- the engine's side ---- */

void tcp_set_ca_state(struct ust_tcb *t, enum tcp_ca_state s)
{
	if (t->ca_state == s)
		return;
	if (t->cc->set_state)
		t->cc->set_state(t, s);
	if (t->ca_state == TCP_CA_LOSS) {
		tcp_rto_run_over(t, t->tcp->now);
		/* F-RTO watches one loss episode (tcp_ack.c). */
		t->frto = false;
		t->frto_new_data = false;
	}
	t->ca_state = s;
}

uint32_t tcp_current_ssthresh(const struct ust_tcb *t)
{
	if (tcp_in_cwnd_reduction(t))
		return t->snd_ssthresh;
	return max_u32(t->snd_ssthresh, (t->snd_cwnd >> 1) + (t->snd_cwnd >> 2));
}

void tcp_init_undo(struct ust_tcb *t)
{
	t->undo_armed = true;
	t->undo_marker = t->snd_una;
	t->undo_retrans = t->retrans_out ? (int32_t)t->retrans_out : -1;
}

void tcp_ca_event(struct ust_tcb *t, enum tcp_ca_event ev, ust_time now)
{
	if (t->cc->cwnd_event)
		t->cc->cwnd_event(t, ev, now);
}

void tcp_init_transfer(struct ust_tcb *t, ust_time now)
{
	t->snd_cwnd = TCP_INIT_CWND;
	t->snd_cwnd_cnt = 0;
	t->snd_cwnd_stamp = now;
	t->lsndtime = now;
	t->cc->init(t);
	tcp_rto_run_over(t, now); /* SYN timeouts end with the handshake */
	/* The handshake's ACK, as any, sets the rate (tcp_ack's
	 * tcp_cong_control). */
	tcp_update_pacing_rate(t);
}

/* Linux's tcp_current_ssthresh: outside a reduction, remember three
 * quarters of the window as well. */
static uint32_t current_ssthresh(const struct ust_tcb *t)
{
	if (t->ca_state == TCP_CA_CWR || t->ca_state == TCP_CA_RECOVERY)
		return t->snd_ssthresh;
	return max_u32(t->snd_ssthresh, (t->snd_cwnd >> 1) + (t->snd_cwnd >> 2));
}

/* Slow start after idle (RFC 5681 §4.1, RFC 7661's concern; Linux's
 * tcp_slow_start_after_idle, on by default): new data after more than an
 * RTO with nothing in flight no longer trusts the old window: it is
 * halved for every RTO of silence, down to the initial window (Linux's
 * tcp_cwnd_restart). An algorithm that paces itself (cong_control)
 * knows better. */
void tcp_idle_restart_check(struct ust_tcb *t, ust_time now)
{
	ust_time idle = now - t->lsndtime;
	uint32_t cwnd = t->snd_cwnd, restart = min_u32(TCP_INIT_CWND, cwnd);

	if (t->snd_una != t->snd_max || t->cc->cong_control || !UST_TCP_SYNCHRONIZED(t->state) ||
	    idle <= t->rto)
		return;
	tcp_ca_event(t, TCP_CA_EV_CWND_RESTART, now);
	t->snd_ssthresh = current_ssthresh(t);
	while (idle > t->rto && cwnd > restart) {
		idle -= t->rto;
		cwnd >>= 1;
	}
	t->snd_cwnd = max_u32(cwnd, restart);
	t->snd_cwnd_stamp = now;
}

/* As Linux's tcp_reinit_congestion_control: the new algorithm's state
 * starts empty, unpaced until it says otherwise, and it starts once there
 * is a connection to control. */
void tcp_cc_start(struct ust_tcb *t, const struct tcp_cc *cc)
{
	t->cc = cc;
	memset(t->ca_priv, 0, sizeof(t->ca_priv));
	t->pacing_rate = 0;
	tcp_timer_stop(t, UST_TT_PACE);
	if (UST_TCP_SYNCHRONIZED(t->state))
		cc->init(t);
}

/* ---- Reno (RFC 5681), as Linux's tcp_reno_* ---- */

/* Nothing to set up: the engine gives every connection its initial window
 * (IW10) and an infinite ssthresh, as Linux's tcp_init_transfer. */
static void reno_init(struct ust_tcb *t)
{
	t->snd_cwnd_cnt = 0;
}

/* Half the window, at least two segments (RFC 5681 §3.1 equation 4, with
 * cwnd for FlightSize as Linux's tcp_reno_ssthresh: what limited transmit
 * let out does not count, §3.2 step 2). */
static uint32_t reno_ssthresh(struct ust_tcb *t)
{
	return max_u32(t->snd_cwnd >> 1, 2);
}

/* New data acknowledged outside recovery, as Linux's tcp_reno_cong_avoid:
 * nothing while the application, not cwnd, limits the flow; slow start
 * adds every segment acknowledged, up to ssthresh; the rest goes to
 * congestion avoidance, one segment per window acknowledged. */
static void reno_cong_avoid(struct ust_tcb *t, uint32_t acked, ust_time now)
{
	if (!tcp_is_cwnd_limited(t))
		return;
	if (tcp_in_slow_start(t)) {
		acked = tcp_slow_start(t, acked);
		if (!acked)
			return;
	}
	tcp_cong_avoid_ai(t, t->snd_cwnd, acked);
}

/* A loss that was not one: back to the window before it. */
static uint32_t reno_undo_cwnd(struct ust_tcb *t)
{
	return max_u32(t->snd_cwnd, t->prior_cwnd);
}

const struct tcp_cc tcp_cc_reno = {
	.name = "reno",
	.init = reno_init,
	.ssthresh = reno_ssthresh,
	.cong_avoid = reno_cong_avoid,
	.undo_cwnd = reno_undo_cwnd,
};

/* ---- the table ---- */

static const struct tcp_cc *const algorithms[] = {
	&tcp_cc_cubic,
	&tcp_cc_reno,
	&tcp_cc_bbr,
	&tcp_cc_bbr3,
};

const struct tcp_cc *tcp_cc_find(const char *name)
{
	for (size_t i = 0; i < UST_ARRAY_SIZE(algorithms); i++)
		if (strcmp(algorithms[i]->name, name) == 0)
			return algorithms[i];
	return NULL;
}

int ust_tcp_set_cc(struct ust_tcb *t, const char *name)
{
	const struct tcp_cc *cc = tcp_cc_find(name);

	if (!cc)
		return -ENOENT;
	if (cc != t->cc)
		tcp_cc_start(t, cc);
	return 0;
}

bool tcp_bbr_get_info(const struct ust_tcb *t, struct tcp_bbr_info *info)
{
	return t->cc->get_info && t->cc->get_info(t, info);
}

const char *ust_tcp_cc_name(const struct ust_tcb *t)
{
	return t->cc->name;
}

bool ust_tcp_cc_exists(const char *name)
{
	return tcp_cc_find(name) != NULL;
}

int ust_tcp_config_cc(struct ust_tcp_config *cfg, const char *name)
{
	const struct tcp_cc *cc = tcp_cc_find(name);

	if (!cc)
		return -ENOENT;
	cfg->cc = cc;
	return 0;
}

const char *ust_tcp_cc_default_name(const struct ust_tcp *tcp)
{
	return tcp->cfg.cc->name;
}

size_t ust_tcp_cc_info(const struct ust_tcb *t, uint32_t out[UST_TCP_CC_INFO_WORDS])
{
	struct tcp_bbr_info i;

	if (!t->cc->get_info)
		return 0;
	memset(out, 0, UST_TCP_CC_INFO_WORDS * sizeof(out[0]));
	if (t->cc->get_info(t, &i)) {
		out[0] = (uint32_t)i.bw;
		out[1] = (uint32_t)(i.bw >> 32);
		out[2] = i.min_rtt;
		out[3] = i.pacing_gain;
		out[4] = i.cwnd_gain;
	}
	return UST_TCP_CC_INFO_WORDS * sizeof(out[0]);
}

size_t ust_tcp_cc_info_unstarted(const char *name, uint32_t out[UST_TCP_CC_INFO_WORDS])
{
	const struct tcp_cc *cc = tcp_cc_find(name);

	if (!cc || !cc->get_info)
		return 0;
	memset(out, 0, UST_TCP_CC_INFO_WORDS * sizeof(out[0]));
	return UST_TCP_CC_INFO_WORDS * sizeof(out[0]);
}
