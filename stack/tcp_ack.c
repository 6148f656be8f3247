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

/* Fast retransmit (RFC 5681 §3.2): recovery until everything outstanding
 * now is acknowledged; the first hole goes at once. */
static void fast_retransmit(struct ust_tcb *t, ust_time now)
{
	tcp_count(t->tcp, UST_EV_TCP_FAST_RETRANS);
	t->cc->enter_recovery(t);
	t->recover = t->snd_max;
	t->in_recovery = true;
	t->rtt_active = false;
	t->rtx_hint = t->snd_una;
	t->rtx_round = now;
	if (!tcp_retransmit_hole(t, now))
		tcp_retransmit_first(t, now);
}

/* New data acknowledged during recovery: a full ACK ends it; a partial one
 * means the next hole is lost too, and it goes at once (RFC 6582 §3.2). */
static void recovery_ack(struct ust_tcb *t, uint32_t acked, ust_time now)
{
	if (seq_geq(t->snd_una, t->recover)) {
		t->in_recovery = false;
		t->cc->recovered(t);
		return;
	}
	if (seq_lt(t->rtx_hint, t->snd_una))
		t->rtx_hint = t->snd_una;
	if (!tcp_retransmit_hole(t, now) && !t->sacked.n)
		tcp_retransmit_first(t, now);
	t->cc->partial_ack(t, acked);
}

/* Round-trip time: from the echoed timestamp, else from the timed segment
 * (never a retransmitted one: Karn). A timestamp says which transmission is
 * answered, so it is a valid sample even after a retransmission (RFC 6298
 * §3); only a sample ends the backoff (RFC 6298 §5.7, Linux's
 * tcp_ack_update_rtt). */
static void rtt_update(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	if (t->ts_ok && seg->opt.ts && seg->opt.ts_ecr) {
		tcp_rtt_sample(t, UST_MS(tcp_ts_now(t, now) - seg->opt.ts_ecr));
		t->backoff = 0;
	} else if (t->rtt_active && seq_gt(seg->ack, t->rtt_seq)) {
		tcp_rtt_sample(t, now - t->rtt_start);
		t->backoff = 0;
	}
	if (t->rtt_active && seq_gt(seg->ack, t->rtt_seq))
		t->rtt_active = false;
}

/* "If SND.UNA < SEG.ACK =< SND.NXT, then set SND.UNA <- SEG.ACK. Any
 * segments on the retransmission queue that are thereby entirely
 * acknowledged are removed. Users should receive positive acknowledgments
 * for buffers that have been SENT and fully acknowledged." */
static void new_data_acked(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	uint32_t data_end = t->snd_buf_seq + t->sndbuf.len;
	uint32_t upto = seq_lt(seg->ack, data_end) ? seg->ack : data_end;
	uint32_t n = 0;

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
	rtt_update(t, seg, now);
	t->first_rtx = 0;
	t->dupacks = 0;
	if (n) {
		if (t->in_recovery)
			recovery_ack(t, n, now);
		else
			t->cc->acked(t, n, now);
	}
	tcp_rto_restart(t, now);
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
	if (!t->in_recovery && seq_geq(t->snd_una, t->recover) &&
	    (t->dupacks >= 3 || sacked_bytes(t) >= 3u * t->mss)) {
		fast_retransmit(t, now);
	} else if (t->in_recovery) {
		t->cc->dupack(t);
		tcp_retransmit_hole(t, now);
	}
}

void tcp_ack_update(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	uint32_t old_wnd = t->snd_wnd;
	bool sack_news = sack_update(t, seg);

	window_update(t, seg, now);
	if (seq_gt(seg->ack, t->snd_una)) {
		new_data_acked(t, seg, now);
		return;
	}
	if (seg->ack == t->snd_una && t->snd_una != t->snd_max &&
	    ((seg->len == 0 && !(seg->flags & UST_TH_FIN) && t->snd_wnd == old_wnd) || sack_news))
		duplicate_ack(t, now);
}
