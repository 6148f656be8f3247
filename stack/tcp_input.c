/* SEGMENT ARRIVES (RFC 9293 §3.10.7), step by step: CLOSED, LISTEN,
 * SYN-SENT, then for the synchronized states the eight checks in order.
 * Where Linux departs from the RFC in a way a program or peer can see,
 * Linux is followed and the comment says so. */
#include <errno.h>
#include <string.h>

#include "tcp_impl.h"

/* ---- helpers ---- */

static bool challenge_ack_allowed(struct ust_tcb *t, ust_time now)
{
	/* RFC 5961 §7 as Linux does it: one per tcp_invalid_ratelimit per
	 * connection (its global limit is off by default). */
	if (t->last_challenge && now - t->last_challenge < TCP_CHALLENGE_GAP)
		return false;
	t->last_challenge = now ? now : 1;
	return true;
}

static void send_challenge_ack(struct ust_tcb *t, ust_time now)
{
	if (!challenge_ack_allowed(t, now))
		return;
	tcp_count(t->tcp, UST_EV_TCP_CHALLENGE_ACK);
	tcp_send_ack(t, now);
}

static void tcp_apply_syn_options(struct ust_tcb *t, const struct ust_tcp_seg *seg)
{
	const struct ust_tcp_opts *o = &seg->opt;
	unsigned mss = o->mss ? o->mss : TCP_MSS_DEFAULT;

	/* Window scaling needs both sides (RFC 7323 §2.2); so do SACK and
	 * timestamps. On an active open we offered them all. */
	t->ws_ok = o->wscale >= 0;
	t->snd_wscale = t->ws_ok ? (uint8_t)o->wscale : 0;
	if (!t->ws_ok)
		t->rcv_wscale = 0;
	t->sack_ok = o->sack_ok;
	t->ts_ok = o->ts;
	if (t->ts_ok)
		t->ts_recent = o->ts_val;
	if (mss > t->rcv_mss)
		mss = t->rcv_mss;
	if (t->ts_ok)
		mss = mss > 12 ? mss - 12 : 0;
	/* A tiny or zero MSS from the peer is raised to Linux's floor
	 * (TCP_MIN_SND_MSS, 48): never a segment of nothing. */
	t->mss = (uint16_t)(mss > TCP_MIN_SND_MSS ? mss : TCP_MIN_SND_MSS);
	/* IW10 (RFC 6928), as Linux. */
	t->cwnd = 10u * t->mss;
	t->ssthresh = UINT32_MAX / 2;
	/* Until the peer shows its segment size, assume ours. */
	t->rcv_seg_mss = t->mss;
}

/* Buffers are allocated when the connection becomes synchronized. */
static int tcb_alloc_buffers(struct ust_tcb *t)
{
	if (!t->rcvbuf.mem && ust_ring_init(&t->rcvbuf, tcp_rcvbuf_ring_size(t)))
		return -ENOMEM;
	if (!t->sndbuf.mem && ust_ring_init(&t->sndbuf, t->sndbuf_cap))
		return -ENOMEM;
	return 0;
}

static void enter_time_wait(struct ust_tcb *t, ust_time now)
{
	tcp_set_state(t, UST_TCP_TIME_WAIT);
	tcp_timer_stop(t, UST_TT_RTX);
	tcp_timer_stop(t, UST_TT_KEEPALIVE);
	tcp_timer_stop(t, UST_TT_DELACK);
	tcp_timer_set(t, UST_TT_TIMEWAIT, now + 2 * UST_MS(t->tcp->cfg.msl_ms));
}

/* The peer reset the connection: tell the user, as Linux's tcp_reset. */
static void reset_received(struct ust_tcb *t)
{
	int err;

	tcp_count(t->tcp, UST_EV_TCP_RST_IN);
	switch (t->state) {
	case UST_TCP_SYN_SENT:
		err = ECONNREFUSED;
		break;
	case UST_TCP_CLOSE_WAIT:
		/* The EOF was already delivered: writing is what fails. */
		err = EPIPE;
		break;
	default:
		err = ECONNRESET;
		break;
	}
	/* The unread receive queue is kept (C33); the send queue goes. */
	tcp_set_error(t, err);
	tcp_event(t, UST_TCP_EV_ERROR);
	tcp_finish(t, t->state == UST_TCP_SYN_SENT ? UST_OUTCOME_REFUSED : UST_OUTCOME_RESET_RECEIVED,
		   t->state == UST_TCP_SYN_SENT ? "connection refused" : "reset by peer");
}

/* ---- CLOSED: no connection takes the segment (§3.10.7.1) ---- */

static void closed_input(struct ust_tcp *tcp, const struct ust_tcp_seg *seg, ust_time now)
{
	/* Another stack on our address (another process) holds the port, or
	 * held this connection until a moment ago: the segment is its to
	 * answer. */
	if (tcp->cfg.port_foreign &&
	    tcp->cfg.port_foreign(tcp->cfg.ctx, seg->dport, seg->src, seg->sport)) {
		tcp_drop(tcp, UST_DROP_TCP_FOREIGN);
		return;
	}
	tcp_drop(tcp, UST_DROP_TCP_NO_SOCKET);
	tcp_send_rst_reply(tcp, seg, now);
}

/* ---- LISTEN (§3.10.7.2) ---- */

static void listen_input(struct ust_tcb *l, const struct ust_tcp_seg *seg, ust_time now,
			 uint32_t iss)
{
	struct ust_tcp *tcp = l->tcp;
	struct ust_tcb *c;

	/* First, an incoming RST is ignored. */
	if (seg->flags & UST_TH_RST)
		return;
	/* Second, an ACK here is bad: <SEQ=SEG.ACK><CTL=RST>. */
	if (seg->flags & UST_TH_ACK) {
		tcp_drop(tcp, UST_DROP_TCP_LISTEN_DROP);
		tcp_send_rst_reply(tcp, seg, now);
		return;
	}
	/* Third, a SYN opens a child connection; anything else (and a SYN
	 * with FIN, as Linux) is dropped. */
	if (!(seg->flags & UST_TH_SYN) || (seg->flags & UST_TH_FIN)) {
		tcp_drop(tcp, UST_DROP_TCP_LISTEN_DROP);
		return;
	}
	/* Linux drops the SYN while the accept queue is full (the peer
	 * retries); the half-open queue is bounded by the backlog too. */
	if (l->acceptq_len > l->backlog || l->synq_len > l->backlog + 16) {
		tcp_drop(tcp, UST_DROP_TCP_LISTEN_DROP);
		return;
	}
	c = tcp_tcb_new(tcp, NULL);
	if (!c) {
		tcp_drop(tcp, UST_DROP_TCP_NO_TCB);
		return;
	}
	tcp_rehash(c, l->lport, seg->src, seg->sport);
	{
		/* The child's own reference on the port: it may outlive
		 * the listener (TIME-WAIT). */
		uint16_t port = l->lport;
		tcp_claim_port(c, &port, false);
	}
	c->listener = l;
	c->released = true; /* nobody holds it until accept() */
	l->synq_len++;
	c->rcvbuf_cap = l->rcvbuf_cap;
	c->sndbuf_cap = l->sndbuf_cap;
	c->nodelay = l->nodelay;
	c->keepalive = l->keepalive;
	c->keep_idle = l->keep_idle;
	c->keep_intvl = l->keep_intvl;
	c->keep_cnt = l->keep_cnt;
	c->user_timeout = l->user_timeout;
	c->fin_timeout_ms = l->fin_timeout_ms;
	c->linger2_neg = l->linger2_neg;
	c->rcv_mss = l->rcv_mss ? l->rcv_mss : (uint16_t)(tcp->st->nif.mtu - 40);
	c->irs = seg->seq;
	c->rcv_nxt = seg->seq + 1;
	c->iss = iss ? iss : tcp_isn(tcp, c->laddr, c->lport, c->raddr, c->rport, now);
	c->snd_una = c->iss;
	c->snd_nxt = c->iss;
	c->snd_max = c->iss;
	c->snd_buf_seq = c->iss + 1;
	c->recover = c->iss;
	c->snd_sml = c->iss;
	c->ts_offset = tcp_ts_offset(tcp, c->laddr, c->raddr);
	tcp_apply_syn_options(c, seg);
	/* The window of a SYN is never scaled. */
	c->snd_wnd = seg->wnd;
	c->max_snd_wnd = seg->wnd;
	c->snd_wl1 = seg->seq;
	c->snd_wl2 = c->iss;
	c->last_rcv = now;
	c->rec.start = now;
	if (tcb_alloc_buffers(c)) {
		tcp_finish(c, UST_OUTCOME_RESET_SENT, "out of memory");
		return;
	}
	tcp_set_state(c, UST_TCP_SYN_RECEIVED);
	c->rtt_start = now;
	tcp_send_syn(c, now);
}

/* ---- SYN-SENT (§3.10.7.3) ---- */

static void syn_sent_input(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	bool ack_ok = false;

	/* First, check the ACK: it must cover our SYN and nothing more. If
	 * not, <SEQ=SEG.ACK><CTL=RST>. Most often the peer still holds an
	 * earlier connection on this 4-tuple in TIME-WAIT and took our SYN
	 * for an old duplicate: the RST ends that, and the SYN goes again at
	 * once instead of after the RTO. Linux does that, once, for any
	 * unacceptable ACK, with RST or without (measured on 6.18: the SYN
	 * 8-12 ms after an ACK or a RST-ACK of ISS+123456). */
	if (seg->flags & UST_TH_ACK) {
		if (seq_leq(seg->ack, t->iss) || seq_gt(seg->ack, t->snd_max)) {
			tcp_drop(t->tcp, UST_DROP_TCP_SYN_SENT_BAD);
			if (!(seg->flags & UST_TH_RST))
				tcp_send_rst_reply(t->tcp, seg, now);
			if (t->backoff == 0)
				tcp_timer_set(t, UST_TT_RTX, now + TCP_SYN_QUICK_RTX);
			return;
		}
		ack_ok = true;
	}
	/* Second, a RST counts only with an acceptable ACK (C37). */
	if (seg->flags & UST_TH_RST) {
		if (ack_ok)
			reset_received(t);
		else
			tcp_drop(t->tcp, UST_DROP_TCP_SYN_SENT_BAD);
		return;
	}
	/* Fourth, the SYN. */
	if (!(seg->flags & UST_TH_SYN)) {
		tcp_drop(t->tcp, UST_DROP_TCP_SYN_SENT_BAD);
		return;
	}
	t->irs = seg->seq;
	t->rcv_nxt = seg->seq + 1;
	/* Our SYN offered an unscaled window of at most 64 KiB before
	 * RCV.NXT was known: that is the edge now. */
	t->rcv_adv = t->rcv_nxt + (t->rcvbuf.cap < 65535 ? t->rcvbuf.cap : 65535);
	tcp_apply_syn_options(t, seg);
	t->snd_wnd = seg->wnd;
	t->max_snd_wnd = seg->wnd;
	t->snd_wl1 = seg->seq;
	t->snd_wl2 = seg->ack;
	t->last_rcv = now;
	if (ack_ok) {
		t->snd_una = seg->ack;
		if (seq_lt(t->snd_nxt, t->snd_una))
			t->snd_nxt = t->snd_una;
		/* Karn: a retransmitted SYN gives no sample; then the RTO
		 * starts at 3 s (RFC 6298 §5.7, Linux's tcp_init_metrics). */
		if (t->backoff == 0)
			tcp_rtt_sample(t, now - t->rtt_start);
		else if (!t->srtt)
			t->rto = UST_SEC(3);
		t->rtt_active = false;
		t->backoff = 0;
		tcp_timer_stop(t, UST_TT_RTX);
		tcp_set_state(t, UST_TCP_ESTABLISHED);
		if (t->keepalive)
			tcp_timer_set(t, UST_TT_KEEPALIVE, now + t->keep_idle);
		tcp_send_ack(t, now);
		tcp_event(t, UST_TCP_EV_CONNECTED | UST_TCP_EV_WRITABLE);
		/* A FIN shut already (SHUT_WR while connecting) goes now. */
		tcp_output(t, now);
		return;
	}
	/* Simultaneous open: SYN-RECEIVED, and our SYN again with an ACK. */
	tcp_set_state(t, UST_TCP_SYN_RECEIVED);
	tcp_send_syn(t, now);
}

/* ---- synchronized states ---- */

static void set_dsack(struct ust_tcb *t, uint32_t start, uint32_t end)
{
	if (!t->sack_ok || !seq_lt(start, end))
		return;
	t->dsack = true;
	t->dsack_start = start;
	t->dsack_end = end;
}

/* Linux accepts a RST at the FIN's sequence number once the peer's FIN
 * is in (peers that send FIN, then RST with the same number; C40). */
static bool rst_at_fin(const struct ust_tcb *t, const struct ust_tcp_seg *seg)
{
	return (seg->flags & UST_TH_RST) && seg->seq == t->rcv_nxt - 1 &&
	       (t->state == UST_TCP_CLOSE_WAIT || t->state == UST_TCP_CLOSING ||
		t->state == UST_TCP_LAST_ACK);
}

/* First: is the segment acceptable (RFC 9293's four cases)? PAWS (RFC
 * 7323 §5) comes before it. On success, trims seg to the window. */
static bool check_sequence(struct ust_tcb *t, struct ust_tcp_seg *seg, ust_time now)
{
	uint32_t wnd = seq_gt(t->rcv_adv, t->rcv_nxt) ? t->rcv_adv - t->rcv_nxt : 0;
	uint32_t len = ust_seg_len(seg);
	bool ok;

	/* Linux tolerates one tick (TCP_PAWS_WINDOW): reordered segments
	 * sent within the same millisecond or the next are not old. */
	if (t->ts_ok && seg->opt.ts && !(seg->flags & UST_TH_RST) &&
	    seq_lt(seg->opt.ts_val + 1, t->ts_recent) && now - t->ts_recent_stamp < TCP_PAWS_IDLE) {
		tcp_drop(t->tcp, UST_DROP_TCP_PAWS);
		if (seg->len || (seg->flags & UST_TH_FIN))
			tcp_send_ack(t, now);
		else
			send_challenge_ack(t, now);
		return false;
	}
	if (len == 0)
		ok = wnd == 0 ? seg->seq == t->rcv_nxt : seq_in(seg->seq, t->rcv_nxt, t->rcv_nxt + wnd);
	else
		ok = wnd > 0 && (seq_in(seg->seq, t->rcv_nxt, t->rcv_nxt + wnd) ||
				 seq_in(seg->seq + len - 1, t->rcv_nxt, t->rcv_nxt + wnd));
	/* Linux also takes a segment that ends exactly at RCV.NXT (an old
	 * pure ACK, a window probe): its ACK field still counts. */
	if (!ok && len == 0 && seg->seq == t->rcv_nxt)
		ok = true;
	if (!ok && rst_at_fin(t, seg))
		ok = true;
	if (!ok) {
		tcp_drop(t->tcp, UST_DROP_TCP_OUT_OF_WINDOW);
		/* A duplicate ACK; rate-limited only for segments without data
		 * or FIN, as Linux (those cannot be part of an ACK loop). */
		if (seg->flags & UST_TH_RST)
			return false;
		if (seg->len || (seg->flags & UST_TH_FIN)) {
			/* Data we already had: say so with a D-SACK, so the
			 * sender can tell a spurious retransmission. */
			if (seg->len && seq_lt(seg->seq, t->rcv_nxt))
				set_dsack(t, seg->seq, seq_min(seg->seq + seg->len, t->rcv_nxt));
			tcp_send_ack(t, now);
		} else {
			send_challenge_ack(t, now);
		}
		return false;
	}
	/* Trim what lies before RCV.NXT (a retransmission overlapping what
	 * we have) and beyond the window. */
	if (seq_lt(seg->seq, t->rcv_nxt)) {
		uint32_t skip = t->rcv_nxt - seg->seq;
		if (seg->len && !(seg->flags & UST_TH_SYN)) {
			/* Partly old: D-SACK the part we had, ACK at once. */
			set_dsack(t, seg->seq, t->rcv_nxt);
			t->ack_now = true;
		}
		if (seg->flags & UST_TH_SYN) {
			seg->flags &= (uint8_t)~UST_TH_SYN;
			skip--;
			seg->seq++;
		}
		if (skip > seg->len)
			skip = seg->len;
		seg->data += skip;
		seg->len -= skip;
		seg->seq += skip;
	}
	if (seq_gt(seg->seq + seg->len, t->rcv_nxt + wnd)) {
		uint32_t keep = seq_gt(t->rcv_nxt + wnd, seg->seq) ? t->rcv_nxt + wnd - seg->seq : 0;
		if (keep < seg->len) {
			seg->len = keep;
			seg->flags &= (uint8_t)~UST_TH_FIN;
		}
	}
	/* RFC 7323: remember the newest timestamp of a segment that starts
	 * at or before what we acknowledged last. */
	if (t->ts_ok && seg->opt.ts && seq_leq(seg->seq, t->last_ack_sent) &&
	    seq_geq(seg->opt.ts_val, t->ts_recent)) {
		t->ts_recent = seg->opt.ts_val;
		t->ts_recent_stamp = now;
	}
	return true;
}

/* Second: the RST bit (RFC 5961 §3 as RFC 9293 took it in). */
static bool check_rst(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	bool exact = seg->seq == t->rcv_nxt || rst_at_fin(t, seg);

	if (!(seg->flags & UST_TH_RST))
		return true;
	/* Linux also takes a RST at the right edge of the highest SACK block
	 * we report (tcp_validate_incoming). */
	if (!exact && t->sack_ok && t->ofo.n && seg->seq == t->ofo.r[t->ofo.n - 1].end)
		exact = true;
	if (!exact) {
		tcp_drop(t->tcp, UST_DROP_TCP_RST_INVALID);
		send_challenge_ack(t, now);
		return false;
	}
	switch (t->state) {
	case UST_TCP_SYN_RECEIVED:
		if (t->listener) {
			/* A passive open goes back to nothing, quietly. */
			tcp_count(t->tcp, UST_EV_TCP_RST_IN);
			tcp_finish(t, UST_OUTCOME_RESET_RECEIVED, "reset by peer during handshake");
			return false;
		}
		tcp_set_error(t, ECONNREFUSED);
		tcp_event(t, UST_TCP_EV_ERROR);
		tcp_finish(t, UST_OUTCOME_REFUSED, "connection refused");
		return false;
	case UST_TCP_CLOSING:
	case UST_TCP_LAST_ACK:
		tcp_count(t->tcp, UST_EV_TCP_RST_IN);
		tcp_finish(t, UST_OUTCOME_RESET_RECEIVED, "reset by peer while closing");
		return false;
	default:
		reset_received(t);
		return false;
	}
}

/* Congestion control on new data acknowledged (RFC 5681, NewReno RFC
 * 6582). */
static void cc_ack(struct ust_tcb *t, uint32_t acked, ust_time now)
{
	if (t->in_recovery) {
		if (seq_geq(t->snd_una, t->recover)) {
			/* Full acknowledgment: deflate to ssthresh and leave
			 * recovery (RFC 6582 §3.2 step 3, first option; the
			 * flight-size option collapses to one segment when
			 * the ACK covers everything, as it usually does). */
			t->cwnd = t->ssthresh;
			t->in_recovery = false;
		} else {
			/* Partial: the next hole is lost too; resend it and
			 * deflate by what was acknowledged. */
			if (seq_lt(t->rtx_hint, t->snd_una))
				t->rtx_hint = t->snd_una;
			if (!tcp_retransmit_hole(t, now) && !t->sacked.n)
				tcp_retransmit_first(t, now);
			t->cwnd = t->cwnd > acked ? t->cwnd - acked : t->mss;
			t->cwnd += t->mss;
		}
		return;
	}
	if (t->cwnd < t->ssthresh) {
		t->cwnd += acked < t->mss ? acked : t->mss; /* slow start */
	} else {
		t->bytes_acked += acked; /* congestion avoidance: one MSS per window */
		if (t->bytes_acked >= t->cwnd) {
			t->bytes_acked -= t->cwnd;
			t->cwnd += t->mss;
		}
	}
}

static uint32_t sacked_bytes(const struct ust_tcb *t)
{
	uint32_t n = 0;

	for (unsigned i = 0; i < t->sacked.n; i++)
		n += t->sacked.r[i].end - t->sacked.r[i].start;
	return n;
}

static void fast_retransmit(struct ust_tcb *t, ust_time now)
{
	uint32_t flight = tcb_flight(t);

	tcp_count(t->tcp, UST_EV_TCP_FAST_RETRANS);
	/* Half the window in use before the loss; the segments limited
	 * transmit let out do not count (RFC 5681 §3.2 step 2), and Linux
	 * takes cwnd / 2 alike. */
	if (flight > t->cwnd)
		flight = t->cwnd;
	t->ssthresh = flight / 2 > 2u * t->mss ? flight / 2 : 2u * t->mss;
	t->cwnd = t->ssthresh + 3u * t->mss;
	t->recover = t->snd_max;
	t->in_recovery = true;
	t->rtt_active = false;
	t->rtx_hint = t->snd_una;
	t->rtx_round = now;
	if (!tcp_retransmit_hole(t, now))
		tcp_retransmit_first(t, now);
}

/* Everything an acceptable ACK teaches: what was received, the window, the
 * round-trip time, SACKed data. */
static void tcp_ack_update(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	uint32_t ack = seg->ack;
	uint32_t old_wnd = t->snd_wnd;
	bool sack_news = false;

	if (t->sack_ok) {
		for (unsigned i = 0; i < seg->opt.nsack; i++) {
			uint32_t a = seg->opt.sack[i].start, b = seg->opt.sack[i].end;
			if (seq_lt(a, b) && seq_gt(a, ack) && seq_leq(b, t->snd_max) &&
			    !ust_ranges_covers(&t->sacked, a, b)) {
				ust_ranges_add(&t->sacked, a, b);
				sack_news = true;
			}
		}
	}
	/* Window update (RFC 9293: only from a newer segment). */
	if (seq_lt(t->snd_wl1, seg->seq) ||
	    (t->snd_wl1 == seg->seq && seq_leq(t->snd_wl2, ack))) {
		t->snd_wnd = (uint32_t)seg->wnd << t->snd_wscale;
		t->snd_wl1 = seg->seq;
		t->snd_wl2 = ack;
		if (t->snd_wnd > t->max_snd_wnd)
			t->max_snd_wnd = t->snd_wnd;
		if (t->snd_wnd && t->persist) {
			t->persist = false;
			t->backoff = 0;
			tcp_timer_stop(t, UST_TT_RTX);
		}
	}
	/* An answer to a zero-window probe: the peer is alive; ask again a
	 * backed-off RTO from now (Linux's tcp_ack_probe). */
	if (t->persist) {
		t->persist_probes = 0;
		if (t->snd_wnd == 0)
			tcp_timer_set(t, UST_TT_RTX, now + tcp_rto_backed_off(t));
	}
	if (seq_gt(ack, t->snd_una)) {
		uint32_t data_end = t->snd_buf_seq + t->sndbuf.len;
		uint32_t upto = seq_lt(ack, data_end) ? ack : data_end;

		uint32_t n = 0;

		if (seq_gt(upto, t->snd_buf_seq)) {
			n = upto - t->snd_buf_seq;
			ust_ring_consume(&t->sndbuf, n);
			t->snd_buf_seq += n;
			t->rec.bytes_sent += n;
			tcp_event(t, UST_TCP_EV_WRITABLE);
		}
		t->snd_una = ack;
		if (seq_lt(t->snd_nxt, t->snd_una))
			t->snd_nxt = t->snd_una;
		ust_ranges_trim(&t->sacked, t->snd_una);
		/* Round-trip time: from the echoed timestamp, else from the
		 * timed segment (never a retransmitted one: Karn). */
		/* A timestamp says which transmission is answered, so it is a
		 * valid sample even after a retransmission (RFC 6298 §3);
		 * only a sample ends the backoff (RFC 6298 §5.7, Linux's
		 * tcp_ack_update_rtt). */
		if (t->ts_ok && seg->opt.ts && seg->opt.ts_ecr) {
			tcp_rtt_sample(t, UST_MS(tcp_ts_now(t, now) - seg->opt.ts_ecr));
			t->backoff = 0;
		} else if (t->rtt_active && seq_gt(ack, t->rtt_seq)) {
			tcp_rtt_sample(t, now - t->rtt_start);
			t->backoff = 0;
		}
		if (t->rtt_active && seq_gt(ack, t->rtt_seq))
			t->rtt_active = false;
		t->first_rtx = 0;
		t->dupacks = 0;
		if (n)
			cc_ack(t, n, now);
		tcp_rto_restart(t, now);
		return;
	}
	/* A duplicate ACK: nothing new acknowledged, no data, same window,
	 * something outstanding (RFC 5681 §2); SACK news counts too. */
	if (ack == t->snd_una && t->snd_una != t->snd_max &&
	    ((seg->len == 0 && !(seg->flags & UST_TH_FIN) && t->snd_wnd == old_wnd) || sack_news)) {
		t->dupacks++;
		/* Loss is declared after three duplicate ACKs, or when SACK
		 * shows three segments' worth of data above SND.UNA (RFC 6675
		 * IsLost: with a small window three dupacks may never come). */
		if (!t->in_recovery && seq_geq(t->snd_una, t->recover) &&
		    (t->dupacks >= 3 || sacked_bytes(t) >= 3u * t->mss))
			fast_retransmit(t, now);
		else if (t->in_recovery) {
			/* Each dupack: a segment left the network. With SACK,
			 * it also points at the next hole to fill (RFC 6675's
			 * spirit: one retransmission per ACK, not per RTT). */
			t->cwnd += t->mss;
			tcp_retransmit_hole(t, now);
		}
	}
}

/* Fifth: the ACK field. Returns false when the segment is to be dropped. */
static bool check_ack(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	uint32_t ack = seg->ack;
	bool fin_was_acked = tcb_fin_acked(t);

	if (!(seg->flags & UST_TH_ACK)) {
		tcp_drop(t->tcp, UST_DROP_TCP_NO_ACK);
		return false;
	}
	if (t->state == UST_TCP_SYN_RECEIVED) {
		if (!seq_gt(ack, t->snd_una) || seq_gt(ack, t->snd_max)) {
			tcp_drop(t->tcp, UST_DROP_TCP_BAD_ACK);
			tcp_send_rst_reply(t->tcp, seg, now);
			return false;
		}
		t->snd_wnd = (uint32_t)seg->wnd << t->snd_wscale;
		t->max_snd_wnd = t->snd_wnd;
		t->snd_wl1 = seg->seq;
		t->snd_wl2 = ack;
		/* The handshake's round trip, unless the SYN-ACK was resent
		 * (Karn), as Linux's tcp_synack_rtt_meas. */
		/* With a timestamp echo the ACK processing below takes the
		 * sample (one per ACK); without, time the handshake. */
		if (!(t->ts_ok && seg->opt.ts && seg->opt.ts_ecr)) {
			if (t->backoff == 0)
				tcp_rtt_sample(t, now - t->rtt_start);
			else if (!t->srtt)
				t->rto = UST_SEC(3);
		}
		t->backoff = 0;
		tcp_set_state(t, t->fin_queued ? UST_TCP_FIN_WAIT_1 : UST_TCP_ESTABLISHED);
		if (t->listener) {
			struct ust_tcb *l = t->listener;
			/* From the SYN queue to the accept queue. */
			l->synq_len--;
			t->released = false;
			t->qnext = NULL;
			if (l->acceptq_tail)
				l->acceptq_tail->qnext = t;
			else
				l->acceptq_head = t;
			l->acceptq_tail = t;
			l->acceptq_len++;
			tcp_count(t->tcp, UST_EV_TCP_PASSIVE_OPENS);
			tcp_event(l, UST_TCP_EV_ACCEPT);
		} else {
			tcp_event(t, UST_TCP_EV_CONNECTED | UST_TCP_EV_WRITABLE);
		}
		if (t->keepalive)
			tcp_timer_set(t, UST_TT_KEEPALIVE, now + t->keep_idle);
	}
	/* An ACK for something never sent: answer with an ACK and drop the
	 * segment, its FIN included (C42). */
	if (seq_gt(ack, t->snd_max)) {
		tcp_drop(t->tcp, UST_DROP_TCP_BAD_ACK);
		send_challenge_ack(t, now);
		return false;
	}
	/* RFC 5961 §5: too old to be believable. */
	if (seq_lt(ack, t->snd_una - t->max_snd_wnd)) {
		tcp_drop(t->tcp, UST_DROP_TCP_BAD_ACK);
		send_challenge_ack(t, now);
		return false;
	}
	tcp_ack_update(t, seg, now);
	/* The closing states move on when our FIN is acknowledged. */
	if (!fin_was_acked && tcb_fin_acked(t)) {
		tcp_event(t, UST_TCP_EV_DONE);
		switch (t->state) {
		case UST_TCP_FIN_WAIT_1:
			tcp_set_state(t, UST_TCP_FIN_WAIT_2);
			if (t->released) {
				if (t->linger2_neg) {
					/* TCP_LINGER2 < 0: no FIN-WAIT-2 for
					 * orphans, a RST instead (C26). */
					tcp_send_rst_reply(t->tcp, seg, now);
					tcp_finish(t, UST_OUTCOME_RESET_SENT, "TCP_LINGER2 < 0");
					return false;
				}
				tcp_timer_set(t, UST_TT_KEEPALIVE, now + tcp_fin_wait2_timeout(t));
			}
			break;
		case UST_TCP_CLOSING:
			enter_time_wait(t, now);
			break;
		case UST_TCP_LAST_ACK:
			tcp_finish(t, UST_OUTCOME_ORDERLY, "");
			return false;
		default:
			break;
		}
	}
	return true;
}

/* Seventh: the segment text. */
static void queue_data(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	uint32_t off = seg->seq - t->rcv_nxt;
	uint32_t room = t->rcvbuf.cap - t->rcvbuf.len;
	uint32_t len = seg->len;

	/* Nothing counts beyond a FIN already seen out of order. */
	if (t->ofo_fin && seq_gt(seg->seq + len, t->ofo_fin_seq)) {
		if (!seq_gt(t->ofo_fin_seq, seg->seq))
			return;
		len = t->ofo_fin_seq - seg->seq;
	}
	/* The peer's segment size, learned from what it sends (Linux's
	 * tcp_measure_rcv_mss): a "full" segment for the ACK policy. */
	if (len > t->rcv_seg_mss)
		t->rcv_seg_mss = (uint16_t)(len < t->rcv_mss ? len : t->rcv_mss);

	if (off >= room)
		return;
	if (len > room - off)
		len = room - off;
	ust_ring_write_at(&t->rcvbuf, t->rcvbuf.len + off, seg->data, len);
	if (off == 0) {
		uint32_t end = t->rcv_nxt + len, was = t->rcv_nxt;
		bool filled = false;
		/* In order: the data, and whatever out-of-order data it now
		 * reaches. */
		while (t->ofo.n && seq_leq(t->ofo.r[0].start, end)) {
			end = ust_ranges_pull(&t->ofo, end);
			filled = true;
		}
		ust_ring_commit(&t->rcvbuf, end - was);
		t->rcv_nxt = end;
		t->rec.bytes_received += end - was;
		ust_ranges_trim(&t->ofo, t->rcv_nxt);
		if (filled || t->ofo.n)
			t->ack_now = true;
		else if (len >= t->rcv_seg_mss && ++t->unacked_segs >= 2)
			t->ack_now = true;
		else if (!t->ack_now)
			tcp_ack_soon(t, now);
		tcp_event(t, UST_TCP_EV_READABLE);
		return;
	}
	/* Out of order: keep it where it belongs, ACK at once with SACK. */
	if (!ust_ranges_add(&t->ofo, seg->seq, seg->seq + len)) {
		tcp_drop(t->tcp, UST_DROP_TCP_OFO_FULL);
	} else {
		tcp_count(t->tcp, UST_EV_TCP_OFO_SEGS);
	}
	t->ack_now = true;
}

/* Eighth: the FIN bit, once everything before it has arrived. */
static void process_fin(struct ust_tcb *t, ust_time now)
{
	/* Nothing follows a FIN: out-of-order data, or another FIN, held
	 * beyond it is void. */
	ust_ranges_clear(&t->ofo);
	t->ofo_fin = false;
	t->rcv_nxt++;
	t->fin_rcvd = true;
	t->ack_now = true;
	tcp_event(t, UST_TCP_EV_EOF | UST_TCP_EV_READABLE);
	switch (t->state) {
	case UST_TCP_SYN_RECEIVED:
	case UST_TCP_ESTABLISHED:
		tcp_set_state(t, UST_TCP_CLOSE_WAIT);
		break;
	case UST_TCP_FIN_WAIT_1:
		if (tcb_fin_acked(t))
			enter_time_wait(t, now);
		else
			tcp_set_state(t, UST_TCP_CLOSING);
		break;
	case UST_TCP_FIN_WAIT_2:
		enter_time_wait(t, now);
		break;
	default:
		break;
	}
}

static void synchronized_input(struct ust_tcb *t, struct ust_tcp_seg *seg, ust_time now)
{
	bool had_data;

	if (t->state == UST_TCP_SYN_RECEIVED && (seg->flags & UST_TH_SYN) && seg->seq == t->irs &&
	    !(seg->flags & UST_TH_RST)) {
		if (!(seg->flags & UST_TH_ACK)) {
			/* The peer's SYN again: our SYN-ACK was lost. Send
			 * it again, at most once per 500 ms as Linux. */
			if (challenge_ack_allowed(t, now))
				tcp_send_syn(t, now);
			return;
		}
		if (!t->listener && seg->len == 0 && seg->ack == t->snd_nxt) {
			/* Simultaneous open: the peer's SYN-ACK. Its SYN is
			 * old news: ACK at once with a D-SACK for it (Linux),
			 * and take the ACK. */
			seg->flags &= (uint8_t)~UST_TH_SYN;
			seg->seq++;
			set_dsack(t, t->irs, t->irs + 1);
			t->ack_now = true;
		}
	}
	/* First, check the sequence number. */
	if (!check_sequence(t, seg, now))
		return;
	/* Second, the RST bit. */
	if (!check_rst(t, seg, now))
		return;
	/* Fourth, a SYN in a synchronized state: challenge ACK, drop (RFC
	 * 5961 §4). A retransmitted SYN in SYN-RECEIVED gets the SYN-ACK
	 * again. */
	if (seg->flags & UST_TH_SYN) {
		if (t->state == UST_TCP_SYN_RECEIVED && seg->seq == t->irs) {
			tcp_send_syn(t, now);
			return;
		}
		tcp_drop(t->tcp, UST_DROP_TCP_SYN_INVALID);
		send_challenge_ack(t, now);
		return;
	}
	/* Fifth, the ACK field. */
	if (!check_ack(t, seg, now))
		return;
	t->last_rcv = now;
	t->keep_probes = 0;
	/* Sixth, URG: ustcp has no urgent mode; the data is delivered
	 * inline as Linux does with SO_OOBINLINE. */
	/* Seventh, the text. After a full close (or SHUT_RDWR), data or a
	 * FIN beyond RCV.NXT would be lost: say so with a RST built from the
	 * segment, as Linux (RFC 9293 SHLD-3; C8, C9). */
	if ((t->state == UST_TCP_FIN_WAIT_1 || t->state == UST_TCP_FIN_WAIT_2) && t->rd_shut &&
	    (seg->len || (seg->flags & UST_TH_FIN)) && seq_gt(seg->seq + seg->len, t->rcv_nxt)) {
		tcp_drop(t->tcp, UST_DROP_TCP_AFTER_CLOSE);
		tcp_send_rst_reply(t->tcp, seg, now);
		tcp_set_error(t, ECONNRESET);
		tcp_event(t, UST_TCP_EV_ERROR);
		tcp_finish(t, UST_OUTCOME_RESET_SENT, "data received after close");
		return;
	}
	had_data = seg->len > 0;
	if (had_data) {
		switch (t->state) {
		case UST_TCP_ESTABLISHED:
		case UST_TCP_FIN_WAIT_1:
		case UST_TCP_FIN_WAIT_2:
			queue_data(t, seg, now);
			break;
		default:
			/* CLOSE-WAIT, CLOSING, LAST-ACK: the peer already sent
			 * its FIN; ignore the text (C14). */
			tcp_drop(t->tcp, UST_DROP_TCP_AFTER_FIN);
			break;
		}
	}
	/* Eighth, the FIN bit. */
	if (seg->flags & UST_TH_FIN) {
		uint32_t fin_seq = seg->seq + seg->len;
		if (UST_TCP_RCVD_FIN(t->state)) {
			t->ack_now = true; /* a repeated FIN: ACK again */
		} else if (fin_seq == t->rcv_nxt) {
			process_fin(t, now);
		} else if (seq_gt(fin_seq, t->rcv_nxt)) {
			/* Held until the gap before it fills (C43); what
			 * was held beyond it is void. */
			t->ofo_fin = true;
			t->ofo_fin_seq = fin_seq;
			ust_ranges_cut(&t->ofo, fin_seq);
			t->ack_now = true;
		}
	}
	if (t->ofo_fin && t->ofo_fin_seq == t->rcv_nxt && !UST_TCP_RCVD_FIN(t->state)) {
		t->ofo_fin = false;
		process_fin(t, now);
	}
	if (t->state == UST_TCP_CLOSED)
		return;
	tcp_output(t, now);
}

/* TIME-WAIT, as Linux's tcp_timewait_state_process (RFC 9293 says only
 * "the only thing that can arrive is a retransmission of the remote FIN";
 * Linux answers more cases, and those are what a peer sees):
 * - exactly at RCV.NXT: a RST ends TIME-WAIT (tcp_rfc1337=0; RFC 1337's
 *   choice of ignoring it is config.rfc1337), a bare ACK restarts 2 MSL;
 * - a SYN that is newer (sequence above RCV.NXT, or a newer timestamp)
 *   while a listener holds the port reopens the connection with an ISN
 *   above everything used before (RFC 9293 MAY-2, RFC 6191; C23);
 * - anything else but a RST restarts 2 MSL if it carries an ACK and is
 *   answered with an ACK: a retransmitted FIN (C19), data (C21), an old
 *   SYN (C24); only empty segments are rate-limited.
 * Returns the ISN for a new connection, or 0 when the segment is done. */
static uint32_t time_wait_input(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	ust_time tw = 2 * UST_MS(t->tcp->cfg.msl_ms);
	bool paws = t->ts_ok && seg->opt.ts && seq_lt(seg->opt.ts_val + 1, t->ts_recent);

	if (!paws && seg->seq == t->rcv_nxt && (ust_seg_len(seg) == 0 || (seg->flags & UST_TH_RST))) {
		if (!(seg->flags & UST_TH_RST))
			tcp_timer_set(t, UST_TT_TIMEWAIT, now + tw);
		else if (!t->tcp->cfg.rfc1337)
			tcp_finish(t, UST_OUTCOME_ORDERLY, "");
		return 0;
	}
	if ((seg->flags & (UST_TH_SYN | UST_TH_RST | UST_TH_ACK)) == UST_TH_SYN && !paws &&
	    (seq_gt(seg->seq, t->rcv_nxt) || (t->ts_ok && seg->opt.ts && seq_lt(t->ts_recent, seg->opt.ts_val))) &&
	    tcp_lookup_listener(t->tcp, t->lport)) {
		uint32_t isn = t->snd_max + TCP_TW_ISN_GAP;
		tcp_finish(t, UST_OUTCOME_ORDERLY, "");
		return isn ? isn : 1;
	}
	if (seg->flags & UST_TH_RST)
		return 0;
	if (paws || (seg->flags & UST_TH_ACK))
		tcp_timer_set(t, UST_TT_TIMEWAIT, now + tw);
	if (seg->len || (seg->flags & UST_TH_FIN))
		tcp_send_ack(t, now);
	else
		send_challenge_ack(t, now);
	return 0;
}

void ust_tcp_input(void *ctx, const struct ust_ipv4 *ip, unsigned rxflags, ust_time now)
{
	struct ust_tcp *tcp = ctx;
	struct ust_tcp_seg seg;
	struct ust_tcb *t, *l;
	uint32_t iss = 0;
	enum ust_drop why;

	if (ip->proto != UST_IPPROTO_TCP) {
		tcp_drop(tcp, UST_DROP_IP_PROTO);
		return;
	}
	why = ust_tcp_parse(ip, rxflags & UST_RX_CSUM_OK, &seg);
	if (why) {
		tcp_drop(tcp, why);
		return;
	}
	tcp->now = now;
	tcp_count(tcp, UST_EV_TCP_SEGS_IN);
	t = tcp_lookup(tcp, seg.dst, seg.dport, seg.src, seg.sport);
	if (t && t->state == UST_TCP_TIME_WAIT) {
		iss = time_wait_input(t, &seg, now);
		if (!iss)
			return;
		t = NULL;
	}
	if (!t) {
		l = tcp_lookup_listener(tcp, seg.dport);
		if (l)
			listen_input(l, &seg, now, iss);
		else
			closed_input(tcp, &seg, now);
		return;
	}
	if (t->state == UST_TCP_SYN_SENT)
		syn_sent_input(t, &seg, now);
	else
		synchronized_input(t, &seg, now);
}

/* ---- errors from below ---- */

static void hard_error(struct ust_tcb *t, int err, enum ust_tcp_outcome outcome, const char *why)
{
	tcp_set_error(t, err);
	tcp_event(t, UST_TCP_EV_ERROR);
	tcp_finish(t, outcome, why);
}

void ust_tcp_icmp_error(void *ctx, const struct ust_icmp_error *e, ust_time now)
{
	struct ust_tcp *tcp = ctx;
	struct ust_tcb *t;
	uint32_t seq;

	if (e->proto != UST_IPPROTO_TCP)
		return;
	tcp->now = now;
	t = tcp_lookup(tcp, e->src, ust_get16(e->l4), e->dst, ust_get16(e->l4 + 2));
	seq = ust_get32(e->l4 + 4);
	if (!t || !seq_between(seq, t->snd_una, t->snd_max))
		return;
	if (e->type == UST_ICMP_DEST_UNREACH && e->code == 4 && UST_TCP_SYNCHRONIZED(t->state) &&
	    t->state != UST_TCP_TIME_WAIT) {
		/* Fragmentation needed: a smaller path MTU (RFC 1191). */
		unsigned mtu = e->mtu >= 576 ? e->mtu : 576;
		unsigned mss = mtu - 40 - (t->ts_ok ? 12 : 0);
		if (mss < t->mss) {
			t->mss = (uint16_t)mss;
			t->snd_nxt = t->snd_una;
			tcp_output(t, now);
		}
		return;
	}
	/* Hard errors end a connection that is still being set up, as in
	 * Linux; an established one only notes them. Time exceeded counts
	 * as host unreachable there. */
	if (t->state != UST_TCP_SYN_SENT && t->state != UST_TCP_SYN_RECEIVED)
		return;
	if (e->type == UST_ICMP_TIME_EXCEEDED) {
		hard_error(t, EHOSTUNREACH, UST_OUTCOME_UNREACHABLE, "time exceeded (ICMP)");
		return;
	}
	if (e->type != UST_ICMP_DEST_UNREACH)
		return;
	/* Codes to errno as Linux's icmp_err_convert. */
	switch (e->code) {
	case 0: case 6: case 9: case 11:
		hard_error(t, ENETUNREACH, UST_OUTCOME_UNREACHABLE, "network unreachable (ICMP)");
		break;
	case 2:
		hard_error(t, ENOPROTOOPT, UST_OUTCOME_UNREACHABLE, "protocol unreachable (ICMP)");
		break;
	case 3:
		hard_error(t, ECONNREFUSED, UST_OUTCOME_REFUSED, "port unreachable (ICMP)");
		break;
	case 5:
		hard_error(t, EOPNOTSUPP, UST_OUTCOME_UNREACHABLE, "source route failed (ICMP)");
		break;
	case 7:
		hard_error(t, EHOSTDOWN, UST_OUTCOME_UNREACHABLE, "host unknown (ICMP)");
		break;
	case 8:
		hard_error(t, ENONET, UST_OUTCOME_UNREACHABLE, "host isolated (ICMP)");
		break;
	default:
		hard_error(t, EHOSTUNREACH, UST_OUTCOME_UNREACHABLE, "host unreachable (ICMP)");
		break;
	}
}

void ust_tcp_unreachable(void *ctx, uint32_t dst, int err, ust_time now)
{
	struct ust_tcp *tcp = ctx;

	tcp->now = now;
	for (unsigned i = 0; i < UST_TCP_HASH; i++) {
		struct ust_tcb *t = tcp->hash[i], *next;
		for (; t; t = next) {
			next = t->hnext;
			if (t->raddr == dst && t->state == UST_TCP_SYN_SENT)
				hard_error(t, err, UST_OUTCOME_UNREACHABLE, "no ARP answer");
		}
	}
}
