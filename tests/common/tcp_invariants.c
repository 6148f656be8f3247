/* The control-block invariant checker shared by tests/fuzz/fuzz_tcp.c and
 * tests/seg/driver.c; see tcp_invariants.h.
 *
 * It reads the fields every TCP implementation has (the sequence variables,
 * windows, buffers, queues, state and timers) and nothing the engine keeps
 * for one purpose only, so that it survives the engine's refactors. */
#include "tcp_invariants.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "stack.h"
#include "tcp_impl.h"

/* The checker's own branches are not what a fuzzer's coverage should
 * reward. */
#if defined(__clang__)
#define NOCOV __attribute__((no_sanitize("coverage")))
#else
#define NOCOV
#endif

#define MAX_LIVE 4096

struct inv {
	const struct ust_tcp *tcp;
	char *msg;
	size_t len;
	const struct ust_tcb *live[MAX_LIVE];  /* the blocks in the table */
	unsigned nlive;
};

__attribute__((format(printf, 2, 3)))
NOCOV static bool broken(struct inv *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->msg, c->len, fmt, ap);
	va_end(ap);
	return false;
}

/* One block, its state and its sequence variables, after the invariant. */
NOCOV static bool broken_tcb(struct inv *c, const struct ust_tcb *t, const char *what)
{
	return broken(c, "tcb %u->%u %s%s: %s (una %u nxt %u max %u buf_seq %u sndbuf %u/%u "
		      "rcv_nxt %u rcvbuf %u/%u ofo %u)", t->lport, t->rport,
		      ust_tcp_state_name(t->state), t->released ? " orphan" : "", what,
		      t->snd_una, t->snd_nxt, t->snd_max, t->snd_buf_seq, t->sndbuf.len,
		      t->sndbuf.cap, t->rcv_nxt, t->rcvbuf.len, t->rcvbuf.cap, t->ofo.n);
}

/* The invariant is its condition, as written. */
#define INVT(t, cond)                                                            \
	do {                                                                     \
		if (!(cond))                                                     \
			return broken_tcb(c, (t), #cond);                        \
	} while (0)

NOCOV static bool in_live(const struct inv *c, const struct ust_tcb *x)
{
	for (unsigned i = 0; i < c->nlive; i++)
		if (c->live[i] == x)
			return true;
	return false;
}

/* Sorted, disjoint, none empty. */
NOCOV static bool check_spans(struct inv *c, const struct ust_tcb *t, const struct ust_range *r,
			      unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		INVT(t, seq_lt(r[i].start, r[i].end));
		if (i + 1 < n)
			INVT(t, seq_lt(r[i].end, r[i + 1].start));
	}
	return true;
}

/* The receiver's state (tcp_rcv.c): the ACK engine's counters in their
 * ranges, an ACK owed has a timer or goes at once, the window inside its
 * clamp and the clamp inside the ring and the scale, the buffer no larger
 * than USTCP_RMEM's maximum unless the program set it. */
NOCOV static bool check_receiver(struct inv *c, const struct ust_tcb *t)
{
	const struct ust_tcp_config *cfg = &c->tcp->cfg;

	INVT(t, t->ack_quick <= (TCP_MAX_QUICKACKS | 1)); /* a growing window sets the low bit */
	INVT(t, t->ack_ato <= TCP_RTO_MAX);
	INVT(t, (t->ack_pushed & ~(UST_ACK_PUSHED | UST_ACK_PUSHED2)) == 0);
	INVT(t, t->nsack_recent <= 4);
	INVT(t, t->ack_compressed <= TCP_COMP_SACK_NR);
	INVT(t, t->ack_dup_count <= TCP_FASTRETRANS_THRESH);
	/* ACKs held back for data out of order have their timer, and
	 * nothing else owed can wait on it: they are ACKs owed. */
	if (t->ack_compressed)
		INVT(t, t->timer[UST_TT_SACK] != UST_TIME_NEVER && t->ack_sched);
	if (UST_TCP_SYNCHRONIZED(t->state) && t->state != UST_TCP_TIME_WAIT && t->ack_sched)
		INVT(t, t->timer[UST_TT_DELACK] != UST_TIME_NEVER || t->ack_compressed);
	if (t->state == UST_TCP_LISTEN || t->state == UST_TCP_CLOSED || !t->rcvbuf.cap)
		return true;
	INVT(t, t->rcv_wscale <= TCP_MAX_WSCALE);
	INVT(t, t->rcv_wnd_clamp <= (uint32_t)65535 << t->rcv_wscale);
	INVT(t, t->rcv_ssthresh <= t->rcv_wnd_clamp);
	INVT(t, t->rcvbuf.cap >= t->rcv_wnd_clamp);
	if (!t->rcvbuf_locked)
		INVT(t, t->rcvbuf_cap <= cfg->rmem[2] || t->rcvbuf_cap == cfg->rmem[1]);
	if (!t->sndbuf_locked)
		INVT(t, t->sndbuf_cap <= cfg->wmem[2] || t->sndbuf_cap == cfg->wmem[1]);
	if (!t->sndbuf_locked && t->sndbuf.cap)
		INVT(t, t->sndbuf.cap == t->sndbuf_cap);
	/* Out-of-order data: its array exists only while it holds ranges,
	 * no more ranges than the window allows. */
	INVT(t, (t->ofo.r != NULL) == (t->ofo.n != 0));
	INVT(t, t->ofo.n <= t->ofo.cap && (t->ofo.n <= tcp_ofo_max(t) || t->rcvbuf_locked));
	return true;
}

/* The scoreboard (stack/tcp_sb.c): the records tile SND.UNA..SND.MAX in
 * sequence order, a FIN only at the end; the array exists only while
 * they do, within its bound; each flag combination is one Linux allows;
 * the counters are what the flags add up to; the highest SACK is the end
 * of the highest SACKed record. */
NOCOV static bool check_scoreboard(struct inv *c, const struct ust_tcb *t)
{
	uint32_t sacked = 0, lost = 0, retrans = 0, high = 0, limit;

	INVT(t, (t->sb != NULL) == (t->packets_out != 0));
	INVT(t, t->sb_head + t->packets_out <= t->sb_cap);
	limit = t->sndbuf_cap / TCP_SB_BYTES_PER_RECORD + 2;
	INVT(t, t->sb_cap <= (limit > 16 ? limit : 16));
	if (!UST_TCP_SYNCHRONIZED(t->state) || t->state == UST_TCP_TIME_WAIT)
		INVT(t, t->packets_out == 0);
	else
		INVT(t, (t->packets_out == 0) == (t->snd_una == t->snd_max));
	for (uint32_t i = 0; i < t->packets_out; i++) {
		const struct tcp_sent *r = tcp_sb_at(t, i);
		uint8_t f = r->flags;
		if (i == 0)
			INVT(t, r->start == t->snd_una);
		else
			INVT(t, r->start == tcp_sb_at(t, i - 1)->end);
		INVT(t, seq_lt(r->start, r->end));
		INVT(t, r->xmit_time <= c->tcp->now);
		if (f & TCP_SENT_FIN)
			INVT(t, i + 1 == t->packets_out && t->fin_queued && r->end == tcb_fin_seq(t) + 1);
		INVT(t, !(f & TCP_SENT_RETRANS) || (f & TCP_SENT_LOST));
		INVT(t, !(f & TCP_SENT_RETRANS) || (f & TCP_SENT_EVER_RETRANS));
		INVT(t, !(f & TCP_SENT_SACKED) || !(f & (TCP_SENT_LOST | TCP_SENT_RETRANS)));
		INVT(t, !(f & TCP_SENT_SACKED) || t->sack_ok);
		if (f & TCP_SENT_SACKED) {
			sacked++;
			high = r->end;
		}
		lost += !!(f & TCP_SENT_LOST);
		retrans += !!(f & TCP_SENT_RETRANS);
	}
	if (t->packets_out)
		INVT(t, tcp_sb_at(t, t->packets_out - 1)->end == t->snd_max);
	if (t->sack_ok)
		INVT(t, t->sacked_out == sacked);
	INVT(t, t->lost_out == lost);
	INVT(t, t->retrans_out == retrans);
	INVT(t, t->retrans_out <= t->lost_out);
	INVT(t, t->sacked_out + t->lost_out <= t->packets_out);
	if (t->sack_ok && sacked)
		INVT(t, t->highest_sack == high);
	/* RACK: its timer only for segments in flight, its segment sent. */
	if (t->timer[UST_TT_REO] != UST_TIME_NEVER)
		INVT(t, t->packets_out != 0);
	if (t->rack.valid)
		INVT(t, t->rack.xmit_time <= c->tcp->now);
	/* The tail loss probe: its timer only with data in flight and
	 * SACK, never after the RTO's; a probe out lies within what was
	 * sent. */
	if (t->timer[UST_TT_TLP] != UST_TIME_NEVER) {
		INVT(t, t->packets_out != 0 && t->sack_ok);
		INVT(t, t->timer[UST_TT_RTX] == UST_TIME_NEVER || t->timer[UST_TT_TLP] <= t->timer[UST_TT_RTX]);
	}
	if (t->tlp_active)
		INVT(t, seq_leq(t->tlp_high_seq, t->snd_max));
	/* F-RTO lives within one loss episode, when configured; its call
	 * for new data with it. RTOs counted since SND.UNA moved leave
	 * something unacknowledged. With a sample, the RTO lies within
	 * Linux's bounds (200 ms .. 120 s). */
	if (t->frto)
		INVT(t, t->ca_state == TCP_CA_LOSS && c->tcp->cfg.frto);
	if (t->frto_new_data)
		INVT(t, t->frto);
	if (t->rto_count)
		INVT(t, t->snd_una != t->snd_max);
	if (t->srtt) {
		INVT(t, t->rto >= TCP_RTO_MIN && t->rto <= TCP_RTO_MAX);
		INVT(t, t->rto_var >= TCP_RTO_MIN && t->mdev_max >= TCP_RTO_MIN);
	}
	INVT(t, t->rack.reo_wnd_steps >= 1);
	return true;
}

/* ECN (tcp_ecn.c): the flags mean something only on a connection that
 * negotiated it (or asks, in SYN-SENT); a listener has none; CE is echoed
 * and CWR queued only once synchronized. The CWR state lasts while
 * SND.UNA has not passed what was outstanding when it began, and has a
 * window to reduce from. */
NOCOV static bool check_ecn(struct inv *c, const struct ust_tcb *t)
{
	const uint8_t all = UST_TCP_ECN_OK | UST_TCP_ECN_QUEUE_CWR | UST_TCP_ECN_DEMAND_CWR |
			    UST_TCP_ECN_SEEN;

	INVT(t, (t->ecn_flags & ~all) == 0);
	INVT(t, (t->ecn_flags & UST_TCP_ECN_OK) || t->ecn_flags == 0);
	INVT(t, t->state != UST_TCP_LISTEN || t->ecn_flags == 0);
	INVT(t, (t->ecn_flags & ~UST_TCP_ECN_OK) == 0 || UST_TCP_SYNCHRONIZED(t->state) ||
		 t->state == UST_TCP_CLOSED);
	if (t->ca_state == TCP_CA_CWR)
		INVT(t, t->prior_cwnd != 0 && seq_leq(t->snd_una, t->recover) &&
			 seq_leq(t->recover, t->snd_max));
	return true;
}

/* A full segment after the sticky IPv6 headers is longer than the path's
 * MTU, or the link's: emit refuses it (tx-too-big), as Linux's ip6_xmit. */
NOCOV static bool too_big_for_mtu(const struct ust_tcb *t, const struct ust_stack *st)
{
	unsigned mtu = t->pmtu && t->pmtu < st->pool.mtu ? t->pmtu : st->pool.mtu;
	unsigned ext = t->ip6_ext && !ust_ip6_is_v4mapped(&t->raddr) ? t->ip6_ext->len : 0;

	return UST_IPV6_HLEN + ext + UST_TCP_HLEN + (t->ts_ok ? 12 : 0) + t->mss > mtu;
}

NOCOV static bool check_tcb(struct inv *c, const struct ust_tcb *t)
{
	const struct ust_tcp *tcp = c->tcp;
	const struct ust_stack *st = tcp->st;

	INVT(t, t->tcp == tcp && t->hashed);
	INVT(t, (unsigned)t->state < UST_TCP_NSTATES);
	/* A CLOSED block the user let go of is freed at once. */
	INVT(t, !(t->state == UST_TCP_CLOSED && t->released));
	/* An orphan nobody will ever touch again must have a timer that
	 * moves it on, or it lives forever. */
	if (t->released && t->state != UST_TCP_CLOSED)
		INVT(t, t->due != UST_TIME_NEVER);
	if (t->state == UST_TCP_TIME_WAIT)
		INVT(t, t->timer[UST_TT_TIMEWAIT] != UST_TIME_NEVER);
	if (t->state == UST_TCP_LISTEN)
		INVT(t, t->rport == 0 && ust_ip6_is_unspecified(&t->raddr) && t->lport != 0);
	/* Families: IPV6_V6ONLY only on an AF_INET6 socket; an AF_INET one
	 * has IPv4 (mapped) ends only, a v6only one IPv6 peers only; a
	 * connection's two ends are of one family. */
	INVT(t, !t->v6only || t->ipv6);
	if (!t->ipv6)
		INVT(t, ust_ip6_is_v4mapped(&t->laddr) &&
			(ust_ip6_is_unspecified(&t->raddr) || ust_ip6_is_v4mapped(&t->raddr)));
	if (t->v6only)
		INVT(t, !ust_ip6_is_v4mapped(&t->raddr));
	if (!ust_ip6_is_unspecified(&t->raddr))
		INVT(t, ust_ip6_is_v4mapped(&t->laddr) == ust_ip6_is_v4mapped(&t->raddr));
	/* Listeners: the SYN queue's bound is somaxconn-capped; a cookie
	 * was sent in the past, by a listener. */
	INVT(t, t->synq_max <= 4096);
	INVT(t, t->cookie_sent_at <= t->tcp->now);
	if (t->state != UST_TCP_LISTEN)
		INVT(t, t->cookie_sent_at == 0 && t->synq_len == 0);
	/* A half-open child costs its control block only: buffers come when
	 * it is established (syn_received_ack). */
	if (t->listener && t->state == UST_TCP_SYN_RECEIVED)
		INVT(t, !t->rcvbuf.cap && !t->sndbuf.cap);

	/* Buffers. */
	INVT(t, t->rcvbuf.len <= t->rcvbuf.cap);
	INVT(t, t->sndbuf.len <= t->sndbuf.cap);
	/* Memory (size) is the positions' modulus, at most the capacity,
	 * and enough for what the ring holds (tcp_buf.h). */
	INVT(t, t->rcvbuf.size <= t->rcvbuf.cap && t->sndbuf.size <= t->sndbuf.cap);
	INVT(t, (t->rcvbuf.mem == NULL) == (t->rcvbuf.size == 0));
	INVT(t, (t->sndbuf.mem == NULL) == (t->sndbuf.size == 0));
	INVT(t, t->rcvbuf.size == 0 || t->rcvbuf.head < t->rcvbuf.size);
	INVT(t, t->sndbuf.size == 0 || t->sndbuf.head < t->sndbuf.size);
	INVT(t, t->rcvbuf.len <= t->rcvbuf.size && t->sndbuf.len <= t->sndbuf.size);
	if (t->ofo.n)
		INVT(t, ust_seqset_last_end(&t->ofo) - t->rcv_nxt <= t->rcvbuf.size);
	/* Memory only while a ring holds bytes (issue 13), in the receive
	 * ring bytes held out of order too; more than TCP_RING_SHED_MAX of it
	 * is kept while a flow lasts, with UST_TT_SHED set to take it once
	 * the ring stays empty, and at TIME-WAIT or the end. So an idle
	 * connection, and every TIME-WAIT, hold none. */
	if (t->rcvbuf.len || t->ofo.n)
		INVT(t, t->rcvbuf.mem != NULL);
	else if (t->rcvbuf.size <= TCP_RING_SHED_MAX || t->state == UST_TCP_TIME_WAIT ||
		 t->state == UST_TCP_CLOSED)
		INVT(t, t->rcvbuf.mem == NULL);
	else if (t->rcvbuf.mem)
		INVT(t, t->timer[UST_TT_SHED] != UST_TIME_NEVER);
	if (t->sndbuf.len)
		INVT(t, t->sndbuf.mem != NULL);
	else if (t->sndbuf.size <= TCP_RING_SHED_MAX || t->state == UST_TCP_TIME_WAIT ||
		 t->state == UST_TCP_CLOSED)
		INVT(t, t->sndbuf.mem == NULL);
	else if (t->sndbuf.mem)
		INVT(t, t->timer[UST_TT_SHED] != UST_TIME_NEVER);

	/* Send sequence space. */
	INVT(t, seq_leq(t->snd_una, t->snd_nxt));
	INVT(t, seq_leq(t->snd_nxt, t->snd_max));
	if (t->state >= UST_TCP_SYN_SENT) {
		uint32_t data_end = t->snd_buf_seq + t->sndbuf.len;
		/* Nothing beyond the data and the FIN was ever sent. */
		INVT(t, seq_leq(t->snd_max, data_end + (t->fin_queued ? 1 : 0)));
		/* The send buffer starts at SND.UNA (give or take the SYN
		 * and the FIN). */
		INVT(t, seq_leq(t->snd_buf_seq, t->snd_una + 1) &&
			seq_leq(t->snd_una, t->snd_buf_seq + 1));
		INVT(t, seq_leq(t->iss, t->snd_una));
		if (t->state != UST_TCP_SYN_SENT)
			INVT(t, seq_gt(t->snd_max, t->iss));
	}
	/* The segment size fits the interface: the peer's MSS, ours, less
	 * the timestamp option. */
	if (UST_TCP_SYNCHRONIZED(t->state) || t->state == UST_TCP_SYN_RECEIVED) {
		if (t->mss > t->rcv_mss)
			return broken(c, "tcb %u->%u: MSS %u above ours, %u", t->lport, t->rport,
				      t->mss, t->rcv_mss);
		if (t->mss > st->nif.mtu - 40)
			return broken(c, "tcb %u->%u: MSS %u (ours %u) on a %u-byte MTU", t->lport,
				      t->rport, t->mss, t->rcv_mss, st->nif.mtu);
	}
	/* No stall: data or a FIN in flight, or waiting to be sent for the
	 * first time, has the retransmission (or persist) timer running; an
	 * ACK we owe has the delayed-ACK timer running (or, for data out of
	 * order, that of compressed SACKs: check_receiver). */
	if (UST_TCP_SYNCHRONIZED(t->state) && t->state != UST_TCP_TIME_WAIT) {
		uint32_t data_end = t->snd_buf_seq + t->sndbuf.len;
		bool in_flight = t->snd_una != t->snd_max;
		bool unsent = seq_lt(t->snd_max, data_end) ||
			      (t->fin_queued && seq_leq(t->snd_max, data_end));
		if ((in_flight || unsent) && t->timer[UST_TT_RTX] == UST_TIME_NEVER)
			return broken(c, "tcb %u->%u %s%s: %s and no retransmission timer (una %u "
				      "max %u data end %u%s)", t->lport, t->rport,
				      ust_tcp_state_name(t->state), t->released ? " orphan" : "",
				      in_flight ? "data in flight" : "unsent data", t->snd_una,
				      t->snd_max, data_end, t->fin_queued ? " + FIN" : "");
		if (t->rcv_nxt != t->last_ack_sent)
			INVT(t, t->timer[UST_TT_DELACK] != UST_TIME_NEVER);
		/* Nothing in flight, a full segment of data waiting and the
		 * window and cwnd open for it: neither Nagle nor sender SWS
		 * avoidance holds a full segment, so it must have gone (unless
		 * a small pool ran dry, or the sticky IPv6 headers leave no
		 * room for it in the MTU: emit sends no such datagram). A
		 * full segment is the MSS less the SACK blocks and signature
		 * the segment carries. */
		if (t->snd_una == t->snd_max && t->state != UST_TCP_FIN_WAIT_2 &&
		    st->pool.size > 8 && !too_big_for_mtu(t, st)) {
			uint32_t full = t->mss - tcp_opt_extra_len(t);
			uint32_t cwnd = t->snd_cwnd * t->mss;
			uint32_t wnd = t->snd_wnd < cwnd ? t->snd_wnd : cwnd;
			if (data_end - t->snd_max >= full && seq_lt(t->snd_max, data_end) &&
			    wnd >= full)
				return broken(c, "tcb %u->%u %s: a full segment (%u bytes) waits with "
					      "nothing in flight and a window of %u (cwnd %u segments, snd_wnd "
					      "%u, %u bytes queued)", t->lport, t->rport,
					      ust_tcp_state_name(t->state), full, wnd, t->snd_cwnd,
					      t->snd_wnd, data_end - t->snd_max);
		}
	}
	/* A FIN held beyond a gap lies beyond RCV.NXT, and only until the
	 * peer's FIN is in. */
	if (t->ofo_fin) {
		if (t->fin_rcvd)
			return broken(c, "tcb %u->%u %s: a FIN held at %u outlived the peer's FIN "
				      "(RCV.NXT %u)", t->lport, t->rport,
				      ust_tcp_state_name(t->state), t->ofo_fin_seq, t->rcv_nxt);
		if (!seq_gt(t->ofo_fin_seq, t->rcv_nxt))
			return broken(c, "tcb %u->%u %s: a FIN held at %u, in-order data reached %u "
				      "past it", t->lport, t->rport, ust_tcp_state_name(t->state),
				      t->ofo_fin_seq, t->rcv_nxt);
	}
	if (t->fin_queued && UST_TCP_SYNCHRONIZED(t->state))
		INVT(t, UST_TCP_SENT_FIN(t->state));

	/* Out-of-order data: sorted, disjoint, above RCV.NXT, inside the
	 * ring past the in-order bytes. */
	if (!check_spans(c, t, t->ofo.r, t->ofo.n) || !check_receiver(c, t))
		return false;
	if (t->ofo.n) {
		INVT(t, UST_TCP_SYNCHRONIZED(t->state) || t->state == UST_TCP_CLOSED ||
			t->state == UST_TCP_SYN_RECEIVED);
		INVT(t, seq_gt(t->ofo.r[0].start, t->rcv_nxt));
		INVT(t, ust_seqset_last_end(&t->ofo) - t->rcv_nxt <= t->rcvbuf.cap - t->rcvbuf.len);
	}
	if (!check_scoreboard(c, t) || !check_ecn(c, t))
		return false;

	/* Timers: the deadline is the earliest timer, and the heap knows. */
	{
		ust_time due = UST_TIME_NEVER;
		for (unsigned i = 0; i < UST_TT_N; i++)
			due = ust_time_min(due, t->timer[i]);
		INVT(t, t->due == due);
		if (due == UST_TIME_NEVER)
			INVT(t, t->heap_idx == UINT32_MAX);
		else
			INVT(t, t->heap_idx < tcp->heap_len && tcp->heap[t->heap_idx] == t);
	}
	if (t->state == UST_TCP_CLOSED || t->state == UST_TCP_LISTEN)
		INVT(t, t->due == UST_TIME_NEVER);

	/* Pacing: its timer runs only for a paced connection that may send,
	 * and the next departure is not far ahead of the clock: a burst
	 * moves it on by its own length at the rate of then (one burst at
	 * the rate of now, or a second if the rate rose since). */
	if (t->timer[UST_TT_PACE] != UST_TIME_NEVER)
		INVT(t, t->pacing_rate && UST_TCP_SYNCHRONIZED(t->state) &&
			t->state != UST_TCP_TIME_WAIT);
	if (t->pacing_rate)
		INVT(t, t->pacing_next_ns <= (uint64_t)tcp->now * 1000 + 1000000000u +
			(uint64_t)tcp_pacing_burst(t) * t->mss * 1000000000u / t->pacing_rate);
	/* SO_MAX_PACING_RATE caps every algorithm's rate, and a cap once
	 * set has asked for pacing for good (SK_PACING_NEEDED). */
	INVT(t, t->pacing_rate <= t->max_pacing_rate);
	INVT(t, t->max_pacing_rate == UINT64_MAX || t->pacing_needed);
	/* A child of a group other stacks share came from an SO_REUSEPORT
	 * listener. */
	INVT(t, !t->group_shared || t->reuseport);

	/* The IPv4 header (IP_TOS, IP_TTL, IP_MTU_DISCOVER): the ECN field
	 * is never the program's, the mode is one of Linux's, and the ACK
	 * owed as the socket's goes out with the FIN that led to TIME-WAIT. */
	INVT(t, (t->ip_tos & UST_ECN_MASK) == 0 && (t->ip_ecn_sent & ~UST_ECN_MASK) == 0);
	INVT(t, t->ip_ecn_sent == 0 || (t->ecn_flags & UST_TCP_ECN_OK));
	INVT(t, t->ip_pmtudisc <= UST_PMTUDISC_OMIT);
	INVT(t, !t->tw_ack_as_socket || t->state == UST_TCP_TIME_WAIT);

	/* Its IPv6 twin (IPV6_TCLASS, IPV6_UNICAST_HOPS,
	 * IPV6_MTU_DISCOVER): the same rules, a hop limit of 0..255 or the
	 * default. The flow label, once made, is only an IPv6 connection's
	 * (tcb_flow_label; tcp_flow_relabel changes it). A path MTU that ICMP left is
	 * below the link's, at least the family's minimum, and bounds the
	 * MSS. */
	INVT(t, (t->ip6_tclass & UST_ECN_MASK) == 0);
	INVT(t, t->ip6_hops <= 255 || t->ip6_hops == UST_TCP_HOPS_DEFAULT);
	INVT(t, t->ip6_pmtudisc <= UST_PMTUDISC_OMIT);
	if (t->flow_label & UST_TCP_FLOW_SET) {
		INVT(t, !ust_ip6_is_v4mapped(&t->raddr));
		INVT(t, (t->flow_label & ~(UST_TCP_FLOW_SET | UST_TCP_FLOW_OFF | UST_IPV6_FLOW_MASK)) == 0);
	}
	INVT(t, (t->lrcv_flow & ~UST_IPV6_FLOW_MASK) == 0);
	if (t->pmtu) {
		INVT(t, t->pmtu < tcp->st->nif.mtu && t->pmtu >= (t->ipv6 && !ust_ip6_is_v4mapped(&t->raddr) ? 1280 : 576));
		INVT(t, t->mss + tcp_net_hlen(t) + UST_TCP_HLEN <= t->pmtu);
	}

	/* TCP_DEFER_ACCEPT: only a deferring child was ACKed without data. */
	INVT(t, !t->defer_acked || t->defer_accept);

	/* Urgent mode lasts until SND.UNA reaches SND.UP (tcp_urg.c). */
	INVT(t, !t->urg_mode || seq_gt(t->snd_up, t->snd_una));

	/* TCP_WINDOW_CLAMP is never below Linux's SOCK_MIN_RCVBUF / 2. */
	INVT(t, t->user_wnd_clamp == 0 || t->user_wnd_clamp >= 1152);

	/* TCP_CORK, MSG_MORE: bytes held with nothing in flight have the
	 * probe timer to push them (Linux's 200 ms ceiling), never forever. */
	if ((t->cork || t->more) && UST_TCP_SYNCHRONIZED(t->state) && t->state != UST_TCP_TIME_WAIT &&
	    t->snd_max == t->snd_una && seq_lt(t->snd_nxt, t->snd_buf_seq + t->sndbuf.len))
		INVT(t, t->timer[UST_TT_RTX] != UST_TIME_NEVER);

	/* A child: its listener is alive and listening. */
	if (t->listener) {
		INVT(t, in_live(c, t->listener));
		INVT(t, t->listener->state == UST_TCP_LISTEN);
	}
	return true;
}

/* Listeners: the accept queue holds established children of this
 * listener, and the accept queue and the SYN queue add up. */


/* The TIME-WAITs kept as records (stack/tcp_twrec.c): each in its
 * 4-tuple's bucket and its port's chain, linked both ways, in the heap at
 * its place, no deadline before its parent's, and as many as ntwrec. */
NOCOV static bool check_twrecs(struct inv *c)
{
	const struct ust_tcp *tcp = c->tcp;
	unsigned n = 0;

	for (unsigned i = 0; tcp->ntwrec && i < tcp->twhash_size; i++) {
		struct tcp_twrec *const *prev = &tcp->twhash[i];
		for (const struct tcp_twrec *r = tcp->twhash[i]; r; prev = &r->hnext, r = r->hnext) {
			const struct tcp_twrec *p;
			if (++n > tcp->ntwrec)
				return broken(c, "more TIME-WAIT records in the table than ntwrec (%u), or a loop",
					      tcp->ntwrec);
			if (r->hprev != prev)
				return broken(c, "record %u->%u: its hprev is not what points at it", r->tw.lport,
					      r->tw.rport);
			if (r->heap_idx >= tcp->ntwrec || tcp->twheap[r->heap_idx] != r)
				return broken(c, "record %u->%u: not at its place %u in the heap", r->tw.lport,
					      r->tw.rport, r->heap_idx);
			if (r->heap_idx && tcp->twheap[(r->heap_idx - 1) / 2]->tw.deadline > r->tw.deadline)
				return broken(c, "record %u->%u: due before its parent in the heap", r->tw.lport,
					      r->tw.rport);
			for (p = tcp->twports[r->tw.lport]; p && p != r; p = p->pnext)
				;
			if (!p || *r->pprev != r)
				return broken(c, "record %u->%u: not on its port's chain", r->tw.lport, r->tw.rport);
		}
	}
	if (n != tcp->ntwrec)
		return broken(c, "%u TIME-WAIT records in the table, ntwrec says %u", n, tcp->ntwrec);
	return true;
}

/* Would two listeners on one port both take some datagram? Each takes
 * IPv4 (an AF_INET one; an AF_INET6 one on :: without IPV6_V6ONLY, or on
 * a mapped address) and/or IPv6 (an AF_INET6 one not on a mapped
 * address: on ::, or on one address of ours). */
NOCOV static bool listeners_overlap(const struct ust_tcb *a, const struct ust_tcb *b)
{
	bool a_any = ust_ip6_is_unspecified(&a->laddr), b_any = ust_ip6_is_unspecified(&b->laddr);
	bool a4 = !a->ipv6 || ust_ip6_is_v4mapped(&a->laddr) || (a_any && !a->v6only);
	bool b4 = !b->ipv6 || ust_ip6_is_v4mapped(&b->laddr) || (b_any && !b->v6only);
	bool a6 = a->ipv6 && !ust_ip6_is_v4mapped(&a->laddr);
	bool b6 = b->ipv6 && !ust_ip6_is_v4mapped(&b->laddr);

	return (a4 && b4) || (a6 && b6 && (a_any || b_any || memcmp(&a->laddr, &b->laddr, sizeof(a->laddr)) == 0));
}
NOCOV static bool check_queues(struct inv *c, const struct ust_tcb *l)
{
	unsigned nacc = 0, total = 0;

	if (l->state != UST_TCP_LISTEN) {
		INVT(l, l->acceptq_head == NULL && l->acceptq_len == 0);
		return true;
	}
	for (const struct ust_tcb *q = l->acceptq_head; q; q = q->qnext) {
		if (++nacc > c->nlive)
			return broken(c, "accept queue of %u loops", l->lport);
		if (!in_live(c, q))
			return broken(c, "accept queue of %u holds a freed block", l->lport);
		INVT(q, q->listener == l);
		INVT(q, !q->released);
		INVT(q, q->state != UST_TCP_SYN_RECEIVED);
		if (!q->qnext)
			INVT(l, l->acceptq_tail == q);
	}
	if (!nacc)
		INVT(l, l->acceptq_tail == NULL);
	for (unsigned k = 0; k < c->nlive; k++) {
		const struct ust_tcb *o = c->live[k];
		if (o->listener == l)
			total++;
		/* Two listeners on one port that would take one
		 * datagram: a reuseport group, all of them with
		 * SO_REUSEPORT (tcp_port_shareable). An AF_INET listener
		 * and an IPV6_V6ONLY one share a port without it. */
		if (o != l && o->state == UST_TCP_LISTEN && o->lport == l->lport && listeners_overlap(l, o))
			INVT(l, l->reuseport && o->reuseport);
	}
	INVT(l, l->acceptq_len == nacc);
	INVT(l, l->synq_len == total - nacc);
	return true;
}

NOCOV static bool collect(struct inv *c)
{
	const struct ust_tcp *tcp = c->tcp;

	unsigned ntw = 0;

	c->nlive = 0;
	for (unsigned i = 0; i < tcp->hash_size; i++) {
		for (const struct ust_tcb *t = tcp->hash[i]; t; t = t->hnext) {
			if (c->nlive >= tcp->nconns || c->nlive == MAX_LIVE)
				return broken(c, "the table holds more blocks than nconns (%u), or a loop",
					      tcp->nconns);
			c->live[c->nlive++] = t;
			ntw += t->state == UST_TCP_TIME_WAIT;
		}
	}
	if (c->nlive != tcp->nconns)
		return broken(c, "the table holds %u blocks, nconns says %u", c->nlive, tcp->nconns);
	if (ntw + tcp->ntwrec != tcp->ntw)
		return broken(c, "the table holds %u TIME-WAITs and %u records, ntw says %u", ntw, tcp->ntwrec,
			      tcp->ntw);
	if (!check_twrecs(c))
		return false;
	/* TIME-WAITs have a bound of their own (cfg.max_tw), which a
	 * connection may pass for the moment until the timers run
	 * (tcp_enter_time_wait). */
	if (tcp->cfg.max_conns && tcp->nconns - ntw > tcp->cfg.max_conns)
		return broken(c, "%u blocks but TIME-WAITs, above the ceiling max_conns %u", tcp->nconns - ntw,
			      tcp->cfg.max_conns);
	/* Every block has its slot in the timer heap before it needs one. */
	if (tcp->heap_cap < tcp->nconns)
		return broken(c, "the timer heap has room for %u blocks, nconns is %u", tcp->heap_cap,
			      tcp->nconns);
	return true;
}

/* The links of t's two chains: the 4-tuple bucket's (every block) and its
 * local port's (every bound block, and only those), each pointing back. */
NOCOV static bool check_chains(struct inv *c, const struct ust_tcb *t)
{
	const struct ust_tcp *tcp = c->tcp;
	unsigned n = 0;

	INVT(t, t->hashed && t->hprev && *t->hprev == t);
	INVT(t, !t->hnext || t->hnext->hprev == &t->hnext);
	if (!t->lport) {
		INVT(t, !t->pprev && !t->pnext);
		return true;
	}
	INVT(t, t->pprev && *t->pprev == t);
	INVT(t, !t->pnext || (t->pnext->pprev == &t->pnext && t->pnext->lport == t->lport));
	for (const struct ust_tcb *x = tcp->ports[t->lport]; x != t; x = x->pnext) {
		if (!x || ++n > c->nlive)
			return broken_tcb(c, t, "not in the chain of its port");
	}
	return true;
}

NOCOV bool tcp_invariants_check(const struct ust_tcp *tcp, char *msg, size_t len)
{
	static struct inv c;   /* the live array is large for a stack frame */
	const struct ust_stack *st = tcp->st;

	c = (struct inv){ .tcp = tcp, .msg = msg, .len = len };
	if (!collect(&c))
		return false;
	for (unsigned i = 0; i < c.nlive; i++)
		if (!check_chains(&c, c.live[i]) || !check_tcb(&c, c.live[i]))
			return false;
	/* The timer heap: live blocks, each where it says, a min-heap. */
	if (tcp->heap_len > tcp->nconns)
		return broken(&c, "the timer heap holds %u blocks, nconns is %u", tcp->heap_len,
			      tcp->nconns);
	for (unsigned i = 0; i < tcp->heap_len; i++) {
		const struct ust_tcb *t = tcp->heap[i];
		if (!in_live(&c, t))
			return broken(&c, "timer heap entry %u is not in the table", i);
		if (t->heap_idx != i || t->due == UST_TIME_NEVER ||
		    (i && tcp->heap[(i - 1) / 2]->due > t->due))
			return broken_tcb(&c, t, "timer heap entry: heap_idx == i, a deadline, "
					  "no earlier than its parent's");
	}
	for (unsigned i = 0; i < c.nlive; i++)
		if (!check_queues(&c, c.live[i]))
			return false;
	/* Every frame went out and every buffer came back, but for the
	 * datagrams to our own address still to be taken in. */
	unsigned looped = 0;
	for (const struct ust_pkt *p = st->loop_head; p; p = p->next)
		looped++;
	if (st->txq_len)
		return broken(&c, "%u frames left in the transmit queue after a flush", st->txq_len);
	if (st->pool.avail + looped != st->pool.size)
		return broken(&c, "%u of %u packet buffers not back in the pool (%u looped)",
			      st->pool.size - st->pool.avail - looped, st->pool.size, looped);
	return true;
}

NOCOV bool tcp_invariants_holds(const struct ust_tcp *tcp, const struct ust_tcb *t)
{
	for (unsigned i = 0; i < tcp->hash_size; i++)
		for (const struct ust_tcb *x = tcp->hash[i]; x; x = x->hnext)
			if (x == t)
				return true;
	return false;
}

