/* RACK (RFC 8985), as Linux's tcp_recovery.c: loss is detected in time,
 * not by counting. When a segment is delivered, every segment sent before
 * it that is still missing RACK.rtt + RACK.reo_wnd after its own
 * transmission is lost; one that is not that old yet gets a timer for
 * the rest of its wait (UST_TT_REO, Linux's ICSK_TIME_REO_TIMEOUT). The
 * reordering window is min_rtt/4, widened by D-SACK (RFC 8985 §6.2: a
 * spurious retransmission means the window was too small), for 16
 * recoveries; without reordering ever seen it is 0 once DupThresh
 * segments are SACKed, or in recovery (Linux's tcp_rack_reo_wnd, which
 * keeps the classic dupthresh rule that way). Retransmissions are timed
 * like any other segment, so a retransmission lost again is found the
 * same way, without waiting for the RTO. */
#include "tcp_impl.h"

/* Recoveries a widened window lasts (Linux's TCP_RACK_RECOVERY_THRESH). */
#define RACK_RECOVERY_THRESH 16
/* The reordering timer waits this much longer than the remaining time
 * (Linux's TCP_TIMEOUT_MIN_US). */
#define RACK_TIMER_SLACK UST_MS(2)

/* Was segment 1 (t1, seq1) sent after segment 2 (Linux's
 * tcp_skb_sent_after)? The end sequence breaks the tie. */
static bool sent_after(ust_time t1, ust_time t2, uint32_t seq1, uint32_t seq2)
{
	return t1 > t2 || (t1 == t2 && seq_gt(seq1, seq2));
}

void tcp_rack_advance(struct ust_tcb *t, uint8_t flags, uint32_t end_seq, ust_time xmit_time,
		      ust_time now)
{
	ust_time rtt = now - xmit_time;

	/* A retransmission delivered sooner than the least RTT: it was the
	 * original that got there (RFC 8985 §6.2 step 2). */
	if ((flags & (TCP_SENT_RETRANS | TCP_SENT_EVER_RETRANS)) && rtt < tcp_min_rtt(t))
		return;
	t->rack.advanced = true;
	t->rack.rtt = rtt;
	if (!t->rack.valid || sent_after(xmit_time, t->rack.xmit_time, end_seq, t->rack.end_seq)) {
		t->rack.valid = true;
		t->rack.xmit_time = xmit_time;
		t->rack.end_seq = end_seq;
	}
}

/* RACK.reo_wnd (RFC 8985 §6.2 step 4, Linux's tcp_rack_reo_wnd). */
static ust_time reo_wnd(const struct ust_tcb *t)
{
	ust_time w;

	if (!t->reord_seen) {
		/* No reordering seen: be as quick as DupThresh would. */
		if (t->ca_state >= TCP_CA_RECOVERY)
			return 0;
		if (t->sacked_out >= t->reordering)
			return 0;
	}
	w = tcp_min_rtt(t) / 4 * t->rack.reo_wnd_steps;
	return w < t->srtt ? w : t->srtt;
}

/* RFC 8985 §6.2 step 5: marks what is lost; *wait: the longest any other
 * candidate still has to wait (0: none). */
static void detect_loss(struct ust_tcb *t, ust_time now, ust_time *wait)
{
	ust_time w = reo_wnd(t);

	*wait = 0;
	for (uint32_t i = 0; i < t->packets_out; i++) {
		struct tcp_sent *r = tcp_sb_at(t, i);
		ust_time deadline;
		if (r->flags & TCP_SENT_SACKED)
			continue;
		/* Marked lost and not resent yet: nothing to decide. */
		if ((r->flags & TCP_SENT_LOST) && !(r->flags & TCP_SENT_RETRANS))
			continue;
		if (!sent_after(t->rack.xmit_time, r->xmit_time, t->rack.end_seq, r->end))
			continue;
		deadline = r->xmit_time + t->rack.rtt + w;
		if (deadline <= now)
			tcp_sb_mark_lost(t, r);
		else if (deadline - now > *wait)
			*wait = deadline - now;
	}
}

bool tcp_rack_mark_lost(struct ust_tcb *t, ust_time now)
{
	ust_time wait;

	if (!t->rack.advanced)
		return false;
	t->rack.advanced = false;
	detect_loss(t, now, &wait);
	if (wait)
		tcp_timer_set(t, UST_TT_REO, now + wait + RACK_TIMER_SLACK);
	return wait != 0;
}

ust_time tcp_rack_timeout(const struct ust_tcb *t, const struct tcp_sent *r, ust_time now)
{
	ust_time deadline = r->xmit_time + t->rack.rtt;

	return t->rack.valid && deadline > now ? deadline - now : 0;
}

void tcp_rack_reo_timeout(struct ust_tcb *t, ust_time now)
{
	uint32_t prior_in_flight = tcp_packets_in_flight(t);
	uint64_t prior_lost = t->lost;
	ust_time wait;

	/* What is not old enough yet waits for the next ACK, as in Linux. */
	detect_loss(t, now, &wait);
	if (prior_in_flight == tcp_packets_in_flight(t))
		return;
	if (t->ca_state != TCP_CA_RECOVERY) {
		tcp_enter_recovery(t);
		if (!t->cc->cong_control)
			tcp_cwnd_reduction(t, 1, (uint32_t)(t->lost - prior_lost), false);
	}
	tcp_output(t, now);
}

void tcp_rack_dsack(struct ust_tcb *t)
{
	if (t->reord_seen)
		t->rack.dsack_seen = true;
}

/* Linux's tcp_rack_update_reo_wnd: a D-SACK widens the window by one step
 * of min_rtt/4, at most once a round trip (the D-SACK must be for data
 * sent after the last widening), and the widening lasts 16 recoveries;
 * then it is one step again. */
void tcp_rack_update_reo_wnd(struct ust_tcb *t, const struct tcp_rate_sample *rs)
{
	if (!rs->prior_delivered)
		return;
	if (rs->prior_delivered < t->rack.last_delivered)
		t->rack.dsack_seen = false;
	if (t->rack.dsack_seen) {
		if (t->rack.reo_wnd_steps < UINT8_MAX)
			t->rack.reo_wnd_steps++;
		t->rack.dsack_seen = false;
		t->rack.last_delivered = t->delivered;
		t->rack.reo_wnd_persist = RACK_RECOVERY_THRESH;
	} else if (!t->rack.reo_wnd_persist) {
		t->rack.reo_wnd_steps = 1;
	}
}

void tcp_rack_recovered(struct ust_tcb *t)
{
	if (t->rack.reo_wnd_persist)
		t->rack.reo_wnd_persist--;
}

/* ---- the tail loss probe (RFC 8985 §7) ----
 * A loss at the tail of a flight leaves no later segment to be SACKed, so
 * RACK never sees it and only the RTO would repair it. Instead, about two
 * round trips after the last send with nothing heard, one segment is sent
 * to draw a SACK or ACK that lets RACK (or recovery) do the rest.
 *
 * The probe has its own timer slot, UST_TT_TLP, where Linux 6.x shares
 * one slot among RTO, RACK and TLP (ICSK_TIME_LOSS_PROBE) and has to
 * recompute the RTO's remaining time whenever it swaps them
 * (tcp_rto_delta_us). With a slot each, the RTO keeps running untouched
 * while a probe is armed (the probe is never later than it), and each
 * handler does one thing, as UST_TT_REO already does for RACK. */

/* Linux's TCP_TIMEOUT_MIN_US: the extra wait with more than one segment
 * out. */
#define TLP_MIN_EXTRA UST_MS(2)

bool tcp_tlp_schedule(struct ust_tcb *t, bool advancing_rto, ust_time now)
{
	unsigned er = t->tcp->cfg.early_retrans;
	ust_time timeout, rto_left;

	/* Only with SACK, and only while not already repairing a loss. */
	if ((er != 3 && er != 4) || !t->packets_out || !t->sack_ok ||
	    (t->ca_state != TCP_CA_OPEN && t->ca_state != TCP_CA_CWR)) {
		tcp_timer_stop(t, UST_TT_TLP);
		return false;
	}
	/* PTO = 2 SRTT (RFC 8985 §7.2); with one segment out, the peer may
	 * delay its ACK: wait the least RTO more (Linux's tcp_rto_min), else
	 * 2 ms. No RTT yet: the initial RTO. */
	if (t->srtt)
		timeout = 2 * t->srtt + (t->packets_out == 1 ? TCP_RTO_MIN : TLP_MIN_EXTRA);
	else
		timeout = TCP_RTO_INIT;
	/* "If the RTO formula yields an earlier time, then use that time." */
	if (advancing_rto || t->timer[UST_TT_RTX] == UST_TIME_NEVER)
		rto_left = tcp_rto_backed_off(t);
	else
		rto_left = t->timer[UST_TT_RTX] > now ? t->timer[UST_TT_RTX] - now : 0;
	if (rto_left && rto_left < timeout)
		timeout = rto_left;
	tcp_timer_set(t, UST_TT_TLP, now + timeout);
	return true;
}
