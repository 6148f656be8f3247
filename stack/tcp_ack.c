/* What an acceptable ACK teaches the sender (RFC 9293 §3.10.7.4, fifth
 * step, ESTABLISHED): which data arrived (SND.UNA, SACK blocks), the
 * window, the round-trip time, and whether something was lost (duplicate
 * ACKs and SACK: NewReno recovery with SACK-chosen holes, RFC 6582 and RFC
 * 6675's spirit). How much may be sent meanwhile is congestion control's
 * to say (tcp_cc.c). */
#include "tcp_impl.h"

static uint32_t sacked_bytes(const struct ust_tcb *t)
{
	uint32_t n = 0;

	for (unsigned i = 0; i < t->sacked.n; i++)
		n += t->sacked.r[i].end - t->sacked.r[i].start;
	return n;
}

/* New SACK blocks (RFC 2018) into the scoreboard; true if any was news. */
static bool sack_update(struct ust_tcb *t, const struct ust_tcp_seg *seg)
{
	bool news = false;

	if (!t->sack_ok)
		return false;
	for (unsigned i = 0; i < seg->opt.nsack; i++) {
		uint32_t a = seg->opt.sack[i].start, b = seg->opt.sack[i].end;
		if (seq_lt(a, b) && seq_gt(a, seg->ack) && seq_leq(b, t->snd_max) &&
		    !ust_ranges_covers(&t->sacked, a, b)) {
			ust_ranges_add(&t->sacked, a, b);
			news = true;
		}
	}
	return news;
}

/* "If SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK),
 * set SND.WND <- SEG.WND": only a newer segment moves the window. A window
 * that opens ends the persist state. An answer to a zero-window probe
 * says the peer is alive: ask again a backed-off RTO from now (Linux's
 * tcp_ack_probe). */
static void window_update(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	if (seq_lt(t->snd_wl1, seg->seq) || (t->snd_wl1 == seg->seq && seq_leq(t->snd_wl2, seg->ack))) {
		t->snd_wnd = (uint32_t)seg->wnd << t->snd_wscale;
		t->snd_wl1 = seg->seq;
		t->snd_wl2 = seg->ack;
		if (t->snd_wnd > t->max_snd_wnd)
			t->max_snd_wnd = t->snd_wnd;
		if (t->snd_wnd && t->persist) {
			t->persist = false;
			t->backoff = 0;
			tcp_timer_stop(t, UST_TT_RTX);
		}
	}
	if (t->persist) {
		t->persist_probes = 0;
		if (t->snd_wnd == 0)
			tcp_timer_set(t, UST_TT_RTX, now + tcp_rto_backed_off(t));
	}
}

/* Segments in bytes acknowledged: MSS-sized pieces, rounded up, so a
 * short segment counts as one, as in Linux's packet counts. */
static uint32_t bytes_to_segs(const struct ust_tcb *t, uint32_t bytes)
{
	return (bytes + t->mss - 1) / t->mss;
}

/* A loss episode begins (recovery or RTO): remember the window for undo,
 * and ask the algorithm for the new ssthresh, once per episode. */
static void loss_episode_begins(struct ust_tcb *t)
{
	t->prior_cwnd = t->snd_cwnd;
	t->prior_ssthresh = t->snd_ssthresh;
	t->snd_ssthresh = t->cc->ssthresh(t);
}

/* Fast retransmit (RFC 5681 §3.2): recovery until everything outstanding
 * now is acknowledged; the first hole goes at once. The window: ssthresh
 * plus the three segments the duplicate ACKs say have left (steps 2-3),
 * unless the algorithm sets it itself. */
static void fast_retransmit(struct ust_tcb *t, ust_time now)
{
	tcp_count(t->tcp, UST_EV_TCP_FAST_RETRANS);
	loss_episode_begins(t);
	if (!t->cc->cong_control)
		t->snd_cwnd = t->snd_ssthresh + 3;
	t->snd_cwnd_cnt = 0;
	tcp_set_ca_state(t, TCP_CA_RECOVERY);
	t->recover = t->snd_max;
	t->rtt_active = false;
	t->rtx_hint = t->snd_una;
	t->rtx_round = now;
	if (!tcp_retransmit_hole(t, now))
		tcp_retransmit_first(t, now);
}

/* New data acknowledged during recovery: a full ACK ends it with cwnd =
 * ssthresh (RFC 6582 §3.2 step 3); a partial one means the next hole is
 * lost too, and it goes at once; the window deflates by what was
 * acknowledged and gets one segment back for the retransmission (step 5). */
static void recovery_ack(struct ust_tcb *t, uint32_t acked, ust_time now)
{
	if (seq_geq(t->snd_una, t->recover)) {
		if (!t->cc->cong_control)
			t->snd_cwnd = t->snd_ssthresh;
		tcp_set_ca_state(t, TCP_CA_OPEN);
		tcp_ca_event(t, TCP_CA_EV_COMPLETE_CWR, now);
		return;
	}
	if (seq_lt(t->rtx_hint, t->snd_una))
		t->rtx_hint = t->snd_una;
	if (!tcp_retransmit_hole(t, now) && !t->sacked.n)
		tcp_retransmit_first(t, now);
	if (!t->cc->cong_control)
		t->snd_cwnd = (t->snd_cwnd > acked ? t->snd_cwnd - acked : 1) + 1;
}

/* Round-trip time: from the echoed timestamp, else from the timed segment
 * (never a retransmitted one: Karn). A timestamp says which transmission is
 * answered, so it is a valid sample even after a retransmission (RFC 6298
 * §3); only a sample ends the backoff (RFC 6298 §5.7, Linux's
 * tcp_ack_update_rtt). Returns the timed segment's RTT for the rate
 * sample, 0 when none. */
static ust_time rtt_update(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	ust_time timed = 0;

	if (t->rtt_active && seq_gt(seg->ack, t->rtt_seq)) {
		timed = now - t->rtt_start;
		if (!timed)
			timed = 1;
	}
	if (t->ts_ok && seg->opt.ts && seg->opt.ts_ecr) {
		tcp_rtt_sample(t, UST_MS(tcp_ts_now(t, now) - seg->opt.ts_ecr));
		t->backoff = 0;
	} else if (timed) {
		tcp_rtt_sample(t, timed);
		t->backoff = 0;
	}
	if (timed)
		t->rtt_active = false;
	return timed;
}

/* "If SND.UNA < SEG.ACK =< SND.NXT, then set SND.UNA <- SEG.ACK. Any
 * segments on the retransmission queue that are thereby entirely
 * acknowledged are removed. Users should receive positive acknowledgments
 * for buffers that have been SENT and fully acknowledged." Returns the
 * segments acknowledged. */
static uint32_t new_data_acked(struct ust_tcb *t, const struct ust_tcp_seg *seg,
			       struct tcp_rate_sample *rs, ust_time now)
{
	uint32_t data_end = t->snd_buf_seq + t->sndbuf.len;
	uint32_t upto = seq_lt(seg->ack, data_end) ? seg->ack : data_end;
	uint32_t n = 0, segs;

	if (seq_gt(upto, t->snd_buf_seq)) {
		n = upto - t->snd_buf_seq;
		ust_ring_consume(&t->sndbuf, n);
		t->snd_buf_seq += n;
		t->rec.bytes_sent += n;
		tcp_event(t, UST_TCP_EV_WRITABLE);
	}
	t->snd_una = seg->ack;
	if (seq_lt(t->snd_nxt, t->snd_una))
		t->snd_nxt = t->snd_una;
	ust_ranges_trim(&t->sacked, t->snd_una);
	rs->rtt = rtt_update(t, seg, now);
	t->first_rtx = 0;
	t->dupacks = 0;
	segs = bytes_to_segs(t, n);
	if (n && t->ca_state == TCP_CA_RECOVERY)
		recovery_ack(t, segs, now);
	else if (t->ca_state == TCP_CA_LOSS && seq_geq(t->snd_una, t->recover))
		tcp_set_ca_state(t, TCP_CA_OPEN); /* everything the timeout resent is in */
	else if (t->ca_state == TCP_CA_DISORDER && !t->sacked.n)
		tcp_set_ca_state(t, TCP_CA_OPEN);
	tcp_rto_restart(t, now);
	return segs;
}

/* A duplicate ACK: nothing new acknowledged, no data, same window,
 * something outstanding (RFC 5681 §2); SACK news counts too. Loss is
 * declared after three, or when SACK shows three segments' worth of data
 * above SND.UNA (RFC 6675 IsLost: with a small window three dupacks may
 * never come). In recovery each one says a segment left the network and,
 * with SACK, points at the next hole: one retransmission per ACK, not per
 * round trip. */
static void duplicate_ack(struct ust_tcb *t, ust_time now)
{
	t->dupacks++;
	if (t->ca_state != TCP_CA_RECOVERY && seq_geq(t->snd_una, t->recover) &&
	    (t->dupacks >= 3 || sacked_bytes(t) >= 3u * t->mss)) {
		fast_retransmit(t, now);
	} else if (t->ca_state == TCP_CA_RECOVERY) {
		if (!t->cc->cong_control)
			t->snd_cwnd++;
		tcp_retransmit_hole(t, now);
	} else if (t->ca_state == TCP_CA_OPEN) {
		tcp_set_ca_state(t, TCP_CA_DISORDER);
	}
}

/* What the ACK means for the window: the algorithm hears of every ACK
 * that delivered something (pkts_acked) and then either sets the window
 * itself (cong_control) or, outside a window reduction, grows it
 * (cong_avoid) by the segments acknowledged; not on the ACK that ends a
 * reduction (reducing: the state before the ACK), which set the window. */
static void cong_control(struct ust_tcb *t, const struct tcp_rate_sample *rs, uint32_t acked,
			 bool reducing, ust_time now)
{
	if (rs->acked_sacked && t->cc->pkts_acked)
		t->cc->pkts_acked(t, rs, now);
	if (t->cc->cong_control) {
		t->cc->cong_control(t, rs, now);
		return;
	}
	if (acked && !reducing && t->ca_state != TCP_CA_RECOVERY && t->ca_state != TCP_CA_CWR)
		t->cc->cong_avoid(t, acked, now);
}

void tcp_ack_update(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	uint32_t old_wnd = t->snd_wnd, prior_sacked = sacked_bytes(t), acked = 0;
	struct tcp_rate_sample rs = {
		.delivered = -1, /* no delivery-rate sampling yet */
		.prior_in_flight = tcp_packets_in_flight(t),
	};
	bool reducing = t->ca_state == TCP_CA_RECOVERY || t->ca_state == TCP_CA_CWR;
	bool sack_news = sack_update(t, seg);
	uint32_t now_sacked;

	window_update(t, seg, now);
	if (seq_gt(seg->ack, t->snd_una)) {
		acked = new_data_acked(t, seg, &rs, now);
	} else if (seg->ack == t->snd_una && t->snd_una != t->snd_max &&
		   ((seg->len == 0 && !(seg->flags & UST_TH_FIN) && t->snd_wnd == old_wnd) ||
		    sack_news)) {
		duplicate_ack(t, now);
	}
	now_sacked = sacked_bytes(t);
	rs.acked_sacked = acked + (now_sacked > prior_sacked ? bytes_to_segs(t, now_sacked - prior_sacked) : 0);
	cong_control(t, &rs, acked, reducing, now);
}
