/* Building and sending segments: data as the windows allow, ACKs, SYNs,
 * RSTs, probes. */
#include <errno.h>
#include <string.h>

#include "csum.h"
#include "tcp_impl.h"

static bool output_one(struct ust_tcb *t, bool force, ust_time now);

/* One segment to put on the wire. */
struct seg_out {
	uint32_t src, dst;
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t wnd;
	const uint8_t *opts;
	unsigned optlen;
	const struct ust_ring *data; /* payload from this ring… */
	uint32_t data_off, len;      /* …at this offset */
};

static int emit(struct ust_stack *st, const struct seg_out *o, ust_time now)
{
	struct ust_pkt *p = ust_pkt_alloc(&st->pool);
	unsigned hlen = UST_TCP_HLEN + o->optlen;
	uint8_t *h;
	uint32_t sum;

	if (!p) {
		st->ctr.drop[UST_DROP_TX_NO_BUFFER]++;
		return -ENOBUFS;
	}
	h = p->data;
	ust_put16(h, o->sport);
	ust_put16(h + 2, o->dport);
	ust_put32(h + 4, o->seq);
	ust_put32(h + 8, o->ack);
	h[12] = (uint8_t)(hlen / 4) << 4;
	h[13] = o->flags;
	ust_put16(h + 14, o->wnd);
	ust_put16(h + 16, 0);
	ust_put16(h + 18, 0);
	if (o->optlen)
		memcpy(h + UST_TCP_HLEN, o->opts, o->optlen);
	if (o->len)
		ust_ring_peek(o->data, o->data_off, h + hlen, o->len);
	p->len = hlen + o->len;
	sum = ust_csum_pseudo(o->src, o->dst, UST_IPPROTO_TCP, (uint16_t)p->len);
	ust_put16(h + 16, ust_csum_fold(ust_csum_add(sum, h, p->len)));
	st->ctr.event[UST_EV_TCP_SEGS_OUT]++;
	if (o->flags & UST_TH_RST)
		st->ctr.event[UST_EV_TCP_RST_OUT]++;
	return ust_ip_output(st, p, o->dst, UST_IPPROTO_TCP, now);
}

/* The segment from a control block, with the window and options filled in.
 * Sending an ACK settles what was owed (tcp_ack_sent); sending data may
 * show the connection is interactive (tcp_data_sent). */
static int tcb_emit(struct ust_tcb *t, uint32_t seq, uint8_t flags, uint32_t off, uint32_t len,
		    ust_time now)
{
	uint8_t opts[UST_TCP_OPT_MAX];
	struct seg_out o = {
		.src = t->laddr, .dst = t->raddr, .sport = t->lport, .dport = t->rport,
		.seq = seq, .flags = flags, .opts = opts, .data = &t->sndbuf,
		.data_off = off, .len = len,
	};
	uint32_t wnd;

	o.optlen = tcp_build_opts(t, flags, now, opts);
	if (flags & UST_TH_SYN) {
		/* The window of a SYN is never scaled: the first window
		 * (tcp_select_initial_window), at most 64 KiB. */
		o.wnd = (uint16_t)(t->rcv_ssthresh > 65535 ? 65535 : t->rcv_ssthresh);
		wnd = o.wnd;
	} else {
		/* Scaled windows are rounded up so the edge never moves left. */
		uint32_t unit = (uint32_t)1 << t->rcv_wscale;
		wnd = tcp_rcv_window(t);
		wnd = (wnd + unit - 1) & ~(unit - 1);
		o.wnd = (uint16_t)((wnd >> t->rcv_wscale) > 65535 ? 65535 : wnd >> t->rcv_wscale);
		wnd = (uint32_t)o.wnd << t->rcv_wscale;
	}
	if (flags & UST_TH_ACK) {
		o.ack = t->rcv_nxt;
		/* The right edge we advertised. (A bare SYN sets none: RCV.NXT
		 * is not known yet.) */
		if ((flags & UST_TH_SYN) || seq_gt(t->rcv_nxt + wnd, t->rcv_adv))
			t->rcv_adv = t->rcv_nxt + wnd;
		t->last_ack_sent = t->rcv_nxt;
		t->dsack = false;
		tcp_ack_sent(t);
	}
	if (len)
		tcp_data_sent(t, now);
	return emit(tcb_stack(t), &o, now);
}

void tcp_send_ack(struct ust_tcb *t, ust_time now)
{
	tcb_emit(t, t->snd_nxt, UST_TH_ACK, 0, 0, now);
}

void tcp_send_syn(struct ust_tcb *t, ust_time now)
{
	uint8_t flags = t->state == UST_TCP_SYN_RECEIVED ? UST_TH_SYN | UST_TH_ACK : UST_TH_SYN;

	tcb_emit(t, t->iss, flags, 0, 0, now);
	if (seq_lt(t->snd_max, t->iss + 1))
		t->snd_max = t->iss + 1;
	t->snd_nxt = t->iss + 1;
	if (t->timer[UST_TT_RTX] == UST_TIME_NEVER)
		tcp_timer_set(t, UST_TT_RTX, now + tcp_rto_backed_off(t));
}

void tcp_send_rst(struct ust_tcb *t, ust_time now)
{
	tcb_emit(t, t->snd_max, UST_TH_RST | UST_TH_ACK, 0, 0, now);
}

void tcp_send_rst_reply(struct ust_tcp *tcp, const struct ust_tcp_seg *seg, ust_time now)
{
	struct seg_out o = {
		.src = seg->dst, .dst = seg->src, .sport = seg->dport, .dport = seg->sport,
	};

	if (seg->flags & UST_TH_RST)
		return; /* never answer a RST */
	if (seg->flags & UST_TH_ACK) {
		o.seq = seg->ack;
		o.flags = UST_TH_RST;
	} else {
		o.seq = 0;
		o.ack = seg->seq + ust_seg_len(seg);
		o.flags = UST_TH_RST | UST_TH_ACK;
	}
	emit(tcp->st, &o, now);
}

bool tcp_push_window(struct ust_tcb *t, ust_time now)
{
	return t->snd_wnd && output_one(t, true, now);
}

void tcp_send_probe(struct ust_tcb *t, ust_time now)
{
	/* As Linux: an old sequence number, so the peer answers with an ACK
	 * carrying its current window. */
	tcb_emit(t, t->snd_una - 1, UST_TH_ACK, 0, 0, now);
}

/* Starts the retransmission timer if data or a FIN is outstanding. */
static void rtx_arm(struct ust_tcb *t, ust_time now)
{
	if (t->timer[UST_TT_RTX] == UST_TIME_NEVER || t->persist) {
		t->persist = false;
		tcp_timer_set(t, UST_TT_RTX, tcp_rtx_due(t, now));
	}
}

/* Skips over SACKed data when (re)sending below snd_max. */
static uint32_t skip_sacked(const struct ust_tcb *t, uint32_t seq)
{
	for (unsigned i = 0; i < t->sacked.n; i++)
		if (seq_leq(t->sacked.r[i].start, seq) && seq_lt(seq, t->sacked.r[i].end))
			seq = t->sacked.r[i].end;
	return seq;
}

/* Sends one segment at snd_nxt if the rules allow; returns whether it did. */
static bool output_one(struct ust_tcb *t, bool force, ust_time now)
{
	uint32_t off, avail, wnd, usable, len, cwnd, seg_max;
	bool fin, rtx = seq_lt(t->snd_nxt, t->snd_max);
	uint8_t flags = UST_TH_ACK;

	if (rtx && t->sacked.n)
		t->snd_nxt = seq_min(skip_sacked(t, t->snd_nxt), t->snd_max);
	off = t->snd_nxt - t->snd_buf_seq;
	if (seq_lt(t->snd_nxt, t->snd_buf_seq) || off > t->sndbuf.len) {
		/* Only the FIN is at snd_nxt (or beyond: nothing). */
		off = t->sndbuf.len;
	}
	avail = t->sndbuf.len - off;
	/* Limited transmit (RFC 3042): the first two duplicate ACKs each let
	 * one new segment out, so that a small window still produces the
	 * ACKs that reveal a loss. */
	cwnd = t->snd_cwnd * t->mss;
	if (t->ca_state != TCP_CA_RECOVERY && t->dupacks && t->dupacks < 3)
		cwnd += t->dupacks * t->mss;
	wnd = t->snd_wnd < cwnd ? t->snd_wnd : cwnd;
	usable = seq_lt(t->snd_nxt, t->snd_una + wnd) ? t->snd_una + wnd - t->snd_nxt : 0;
	/* t->mss already leaves room for timestamps; SACK blocks in this
	 * segment take theirs from the payload, as Linux's tcp_current_mss. */
	seg_max = t->mss - tcp_sack_opt_len(t);
	len = avail < seg_max ? avail : seg_max;
	if (len > usable)
		len = usable;
	fin = t->fin_queued && off + len == t->sndbuf.len && seq_leq(t->snd_nxt, tcb_fin_seq(t)) &&
	      UST_TCP_SENT_FIN(t->state);
	/* The FIN needs no window, but waits its turn behind the data. */
	if (fin && avail > len)
		fin = false;
	if (len == 0 && !fin)
		return false;
	if (!rtx && !force && len < seg_max && len > 0 && !fin) {
		/* Nagle (RFC 9293 §3.7.4) in Minshall's form, as Linux: a
		 * small segment waits while another small one is
		 * unacknowledged, unless TCP_NODELAY. Sender silly-window
		 * avoidance: a partial segment goes only when it is all there
		 * is, or half the largest window seen. */
		bool all = len == avail;
		bool small_out = seq_gt(t->snd_sml, t->snd_una);
		if (!(all && (!small_out || t->nodelay)) && len < t->max_snd_wnd / 2)
			return false;
	}
	if (fin)
		flags |= UST_TH_FIN;
	if (len && (off + len == t->sndbuf.len || force))
		flags |= UST_TH_PSH;
	/* Linux's tcp_event_data_sent: data leaves with nothing in flight. */
	if (len && tcp_packets_in_flight(t) == 0)
		tcp_ca_event(t, TCP_CA_EV_TX_START, now);
	if (tcb_emit(t, t->snd_nxt, flags, off, len, now) < 0 && !rtx)
		return false;
	if (len)
		t->lsndtime = now;
	if (rtx) {
		tcp_count(t->tcp, UST_EV_TCP_RETRANS);
		t->total_retrans++;
	}
	if (!t->rtt_active && !rtx && len) {
		t->rtt_active = true;
		t->rtt_seq = t->snd_nxt;
		t->rtt_start = now;
	}
	if (len < seg_max && !rtx)
		t->snd_sml = t->snd_nxt + len; /* end of the latest small segment */
	t->snd_nxt += len + (fin ? 1 : 0);
	if (seq_gt(t->snd_nxt, t->snd_max))
		t->snd_max = t->snd_nxt;
	rtx_arm(t, now);
	return true;
}

/* After sending: is the flow limited by cwnd, or by the application (or
 * the peer's window)? Linux's tcp_cwnd_validate: the largest flight and
 * the strongest "limited" signal over the last window, so that cwnd grows
 * only while the flow uses it (RFC 7661). Limited: the flight fills cwnd. */
static void cwnd_validate(struct ust_tcb *t, bool sent, ust_time now)
{
	uint32_t packets_out = (tcb_flight(t) + t->mss - 1) / t->mss;
	bool limited = tcp_packets_in_flight(t) >= t->snd_cwnd;

	if (!sent && !limited)
		return;
	if (!seq_lt(t->snd_una, t->cwnd_usage_seq) || limited ||
	    (!t->is_cwnd_limited && packets_out > t->max_packets_out)) {
		t->is_cwnd_limited = limited;
		t->max_packets_out = packets_out;
		t->cwnd_usage_seq = t->snd_max;
	}
	if (tcp_is_cwnd_limited(t))
		t->snd_cwnd_stamp = now;
}

void tcp_output(struct ust_tcb *t, ust_time now)
{
	bool sent = false;

	if (!UST_TCP_SYNCHRONIZED(t->state))
		return;
	/* In TIME-WAIT nothing is left to send but the ACK owed for the FIN
	 * that brought us here. */
	if (t->state != UST_TCP_TIME_WAIT) {
		while (output_one(t, false, now))
			sent = true;
		cwnd_validate(t, sent, now);
		/* Data waits, nothing is in flight, and the peer's window is
		 * shut or too small to send into: the persist timer will
		 * probe it, or push what fits (Linux's tcp_write_wakeup). */
		if (t->snd_max == t->snd_una && t->sndbuf.len > t->snd_nxt - t->snd_buf_seq &&
		    t->timer[UST_TT_RTX] == UST_TIME_NEVER) {
			t->persist = true;
			tcp_timer_set(t, UST_TT_RTX, now + tcp_rto_backed_off(t));
		}
	}
	if (t->ack_now)
		tcp_send_ack(t, now);
}

bool tcp_retransmit_hole(struct ust_tcb *t, ust_time now)
{
	uint32_t seq, end, high, nxt = t->snd_nxt;
	uint32_t data_end = t->snd_buf_seq + t->sndbuf.len;

	if (!t->sack_ok || !t->sacked.n)
		return false;
	high = t->sacked.r[t->sacked.n - 1].end;
	seq = skip_sacked(t, seq_gt(t->rtx_hint, t->snd_una) ? t->rtx_hint : t->snd_una);
	if (!seq_lt(seq, high) || !seq_lt(seq, data_end)) {
		/* Every hole was resent. One that is still a hole a round
		 * trip later was lost again (the idea of RACK, RFC 8985, kept
		 * per round rather than per segment): start over at SND.UNA
		 * instead of waiting for the retransmission timeout. */
		ust_time rtt = t->srtt ? t->srtt + t->srtt / 4 : TCP_RTO_INIT;
		if (now - t->rtx_round < rtt + UST_MS(1))
			return false;
		t->rtx_round = now;
		t->rtx_hint = t->snd_una;
		seq = skip_sacked(t, t->snd_una);
		if (!seq_lt(seq, high) || !seq_lt(seq, data_end))
			return false;
	}
	/* The hole ends at the next SACKed range. */
	end = high;
	for (unsigned i = 0; i < t->sacked.n; i++)
		if (seq_gt(t->sacked.r[i].start, seq)) {
			end = t->sacked.r[i].start;
			break;
		}
	if (seq_gt(end, seq + t->mss - tcp_sack_opt_len(t)))
		end = seq + t->mss - tcp_sack_opt_len(t);
	if (seq_gt(end, data_end))
		end = data_end;
	if (tcb_emit(t, seq, UST_TH_ACK, seq - t->snd_buf_seq, end - seq, now) < 0)
		return false;
	tcp_count(t->tcp, UST_EV_TCP_RETRANS);
	t->total_retrans++;
	t->rtx_hint = end;
	t->snd_nxt = nxt;
	rtx_arm(t, now);
	return true;
}

void tcp_retransmit_first(struct ust_tcb *t, ust_time now)
{
	uint32_t nxt = t->snd_nxt;

	if (t->state == UST_TCP_SYN_SENT || t->state == UST_TCP_SYN_RECEIVED) {
		tcp_send_syn(t, now);
		return;
	}
	t->snd_nxt = t->snd_una;
	output_one(t, false, now);
	if (seq_gt(nxt, t->snd_nxt))
		t->snd_nxt = nxt;
}
