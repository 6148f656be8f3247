/* Timers: retransmission (RFC 6298) and zero-window probing, delayed ACK,
 * keepalive and the orphaned FIN-WAIT-2 timeout, TIME-WAIT, pacing, the
 * tail loss probe. One handler per
 * timer, in a table. */
#include <errno.h>

#include "tcp_impl.h"

/* One RTT sample into SRTT and the RTO, as Linux's tcp_rtt_estimator
 * and tcp_set_rto (which samples count is the ACK's business, tcp_ack.c).
 * SRTT as RFC 6298 §2.3 (gain 1/8). The variance differs from RFC 6298
 * where Linux does: "Eifel blocks mdev updates when rtt decreases. This
 * solution is a bit different: we use finer gain for mdev in this case
 * (alpha*beta)" (1/32 instead of 1/4); the RTO's variance term is the
 * largest deviation of the last round trip, at least TCP_RTO_MIN (200
 * ms, Linux's floor rather than RFC 6298's 1 s minimum RTO), and decays
 * by a quarter per round trip, not per sample. RTO = SRTT + that term,
 * at most TCP_RTO_MAX. */
void tcp_rtt_estimate(struct ust_tcb *t, ust_time rtt)
{
	int64_t m = rtt ? (int64_t)rtt : 1;

	if (t->srtt == 0) {
		/* "make sure rto = 3*rtt" */
		t->srtt = (ust_time)m;
		t->mdev = 2 * (ust_time)m;
		t->rto_var = t->mdev > TCP_RTO_MIN ? t->mdev : TCP_RTO_MIN;
		t->mdev_max = t->rto_var;
		t->rtt_seq = t->snd_nxt;
	} else {
		int64_t err = m - (int64_t)t->srtt;
		t->srtt = (ust_time)((int64_t)t->srtt + err / 8);
		if (err < 0) {
			err = -err - (int64_t)(t->mdev / 4);
			if (err > 0)
				err /= 8;
		} else {
			err -= (int64_t)(t->mdev / 4);
		}
		t->mdev = (ust_time)((int64_t)t->mdev + err);
		if (t->mdev > t->mdev_max) {
			t->mdev_max = t->mdev;
			if (t->mdev_max > t->rto_var)
				t->rto_var = t->mdev_max;
		}
		if (seq_gt(t->snd_una, t->rtt_seq)) {
			if (t->mdev_max < t->rto_var)
				t->rto_var -= (t->rto_var - t->mdev_max) / 4;
			t->rtt_seq = t->snd_nxt;
			t->mdev_max = TCP_RTO_MIN;
		}
	}
	if (t->srtt == 0)
		t->srtt = 1;
	t->rttvar = t->mdev / 4;
	t->rto = t->srtt + t->rto_var;
	if (t->rto > TCP_RTO_MAX)
		t->rto = TCP_RTO_MAX;
}

/* The handshake's round trip: the min RTT and the estimator. */
void tcp_rtt_sample(struct ust_tcb *t, ust_time rtt)
{
	tcp_rtt_min_update(t, rtt ? rtt : 1, t->tcp->now);
	tcp_rtt_estimate(t, rtt);
}

ust_time tcp_rto_backed_off(const struct ust_tcb *t)
{
	ust_time rto = t->rto;
	unsigned doublings = t->backoff;

	/* Linux 6.x (tcp_syn_linear_timeouts = 4): the first four SYN
	 * retransmissions of a connect keep the initial timeout, then it
	 * doubles. A listener's half-open child (Linux's request sock,
	 * reqsk_timer_handler) doubles from the first: SYN-ACKs at 1, 3, 7,
	 * 15 and 31 s (measured on 6.18.44, kernel_peer.py synack-retransmit). */
	if (t->state == UST_TCP_SYN_SENT || (t->state == UST_TCP_SYN_RECEIVED && !t->listener))
		doublings = doublings > TCP_SYN_LINEAR ? doublings - TCP_SYN_LINEAR : 0;
	for (unsigned i = 0; i < doublings && rto < TCP_RTO_MAX; i++)
		rto *= 2;
	return rto < TCP_RTO_MAX ? rto : TCP_RTO_MAX;
}

ust_time tcp_rtx_due(const struct ust_tcb *t, ust_time now)
{
	ust_time due = now + tcp_rto_backed_off(t);

	/* With TCP_USER_TIMEOUT the last wait is cut short so the connection
	 * dies when the time is up (Linux's tcp_clamp_rto_to_user_timeout). */
	if (t->user_timeout && t->first_rtx && t->first_rtx + t->user_timeout < due)
		due = t->first_rtx + t->user_timeout;
	return due;
}

void tcp_rto_restart(struct ust_tcb *t, ust_time now)
{
	if (t->snd_una == t->snd_max) {
		/* Nothing in flight. retrans_stamp stays: the ACK that
		 * covers everything may still show the episode spurious
		 * (Eifel); the loss state machine clears it (Linux). */
		tcp_timer_stop(t, UST_TT_RTX);
		tcp_timer_stop(t, UST_TT_REO);
		tcp_timer_stop(t, UST_TT_TLP);
	} else
		tcp_timer_set(t, UST_TT_RTX, now + tcp_rto_backed_off(t));
}

/* The time n retransmissions would take with a doubling RTO from 200 ms,
 * capped at 120 s: how Linux turns tcp_retries2 into a time limit
 * (tcp_model_timeout; 15 gives the documented 924.6 s). */
static ust_time model_timeout(unsigned n)
{
	const unsigned thresh = 9; /* ilog2(TCP_RTO_MAX / TCP_RTO_MIN) */

	if (n <= thresh)
		return ((2ull << n) - 1) * TCP_RTO_MIN;
	return ((2ull << thresh) - 1) * TCP_RTO_MIN + (ust_time)(n - thresh) * TCP_RTO_MAX;
}

/* A thin stream (fewer than four segments out, past the initial slow
 * start: it cannot count on duplicate ACKs) with linear timeouts asked for
 * (TCP_THIN_LINEAR_TIMEOUTS, or net.ipv4.tcp_thin_linear_timeouts): its
 * first six timeouts keep the RTO as the estimator has it, the backoff
 * starts from the seventh (Linux's tcp_retransmit_timer; its time to give
 * up stays tcp_retries2's model, so it retransmits more often within it). */
static bool thin_linear(const struct ust_tcb *t)
{
	return t->state == UST_TCP_ESTABLISHED && (t->thin_lto || t->tcp->cfg.thin_linear_timeouts) &&
	       t->packets_out < 4 && t->snd_ssthresh < TCP_INFINITE_SSTHRESH &&
	       t->rto_count <= TCP_THIN_LINEAR_RETRIES;
}

/* Has the connection retransmitted long enough to give up? Time since the
 * first unanswered retransmission decides: TCP_USER_TIMEOUT if set, else
 * the model time of tcp_retries2 (tcp_orphan_retries for orphans). */
static bool give_up(struct ust_tcb *t, ust_time now)
{
	unsigned limit = t->released ? t->tcp->cfg.orphan_retries : t->tcp->cfg.retries2;
	ust_time timeout = t->user_timeout ? t->user_timeout : model_timeout(limit);

	return t->first_rtx && now - t->first_rtx >= timeout;
}

/* The segments in flight are lost now (Linux's tcp_timeout_mark_lost):
 * the first, and every other one sent longer than RACK.rtt ago (one sent
 * since may still be on its way). If the first one was SACKed the peer
 * reneged (RFC 2018 §8: SACKs are advisory): forget every SACK. */
static void timeout_mark_lost(struct ust_tcb *t, ust_time now)
{
	bool reneged = t->packets_out && (tcp_sb_at(t, 0)->flags & TCP_SENT_SACKED);

	if (reneged || !t->sack_ok)
		t->sacked_out = 0;
	for (uint32_t i = 0; i < t->packets_out; i++) {
		struct tcp_sent *r = tcp_sb_at(t, i);
		if (reneged)
			r->flags &= (uint8_t)~TCP_SENT_SACKED;
		else if (i && tcp_rack_timeout(t, r, now))
			continue;
		tcp_sb_mark_lost(t, r);
	}
}

/* A retransmission timeout (RFC 5681 §3.1, Linux's tcp_enter_loss): one
 * segment at a time again. ssthresh is chosen once per loss episode: not
 * again for a recovery under way, nor for a segment timed out again.
 * F-RTO watches the ACKs to come (RFC 5682 §3.1 step 1 and §3.2, in
 * Linux's words: "retransmit SND.UNA if no previous loss recovery is
 * underway except recurring timeout(s) on the same SND.UNA"). */
static void enter_loss(struct ust_tcb *t, ust_time now)
{
	bool new_recovery = t->ca_state < TCP_CA_RECOVERY;

	timeout_mark_lost(t, now);
	if (t->ca_state <= TCP_CA_DISORDER || !seq_gt(t->recover, t->snd_una) ||
	    (t->ca_state == TCP_CA_LOSS && t->rto_count == 0)) {
		t->prior_ssthresh = tcp_current_ssthresh(t);
		t->prior_cwnd = t->snd_cwnd;
		t->snd_ssthresh = t->cc->ssthresh(t);
		tcp_ca_event(t, TCP_CA_EV_LOSS, now);
		tcp_init_undo(t);
	}
	t->snd_cwnd = tcp_packets_in_flight(t) + 1;
	t->snd_cwnd_cnt = 0;
	t->snd_cwnd_stamp = now;
	/* A timeout after much reordering: DupThresh again (Linux). */
	if (t->ca_state <= TCP_CA_DISORDER && t->sacked_out >= TCP_REORDERING && t->reordering > TCP_REORDERING)
		t->reordering = TCP_REORDERING;
	tcp_set_ca_state(t, TCP_CA_LOSS);
	t->recover = t->snd_max;
	tcp_ecn_queue_cwr(t);
	t->frto = t->tcp->cfg.frto && (new_recovery || t->rto_count);
	t->frto_new_data = false;
}

static void on_rtx(struct ust_tcb *t, ust_time now)
{
	struct ust_tcp *tcp = t->tcp;

	if (t->persist) {
		/* A window too small for the rules: push what fits. */
		t->persist = false;
		if (tcp_push_window(t, now))
			return;
		/* Shut: probe it, with backoff, and give up after as many
		 * unanswered probes as retransmissions (Linux's
		 * tcp_probe_timer). */
		t->persist = true;
		if (t->persist_probes >= (t->released ? tcp->cfg.orphan_retries : tcp->cfg.retries2)) {
			tcp_die(t, ETIMEDOUT, UST_OUTCOME_TIMEOUT, "zero window never opened");
			return;
		}
		/* A window open but nothing going (the segment does not fit
		 * the path with the socket's extension headers): counted,
		 * nothing sent, as Linux's tcp_write_wakeup sends its probe
		 * only into a shut window. */
		if (!t->snd_wnd)
			tcp_send_probe(t, now);
		t->persist_probes++;
		if (t->backoff < 16)
			t->backoff++;
		tcp_timer_set(t, UST_TT_RTX, now + tcp_rto_backed_off(t));
		return;
	}
	if (t->state == UST_TCP_SYN_SENT || t->state == UST_TCP_SYN_RECEIVED) {
		/* Linux gives up after the time the retries would take with
		 * pure doubling (tcp_model_timeout: 1 + 2 + 4 … s), whatever
		 * the linear timeouts squeezed into it. */
		unsigned limit = t->state == UST_TCP_SYN_SENT ? t->syn_retries : tcp->cfg.synack_retries;
		ust_time give_up;
		bool resend = true;

		/* TCP_DEFER_ACCEPT (Linux's syn_ack_recalc): a child whose
		 * handshake was ACKed without data lives for the deferring
		 * period at least, and its SYN-ACK goes again only at the
		 * period's last timeout, for a last ACK to establish it. */
		if (t->state == UST_TCP_SYN_RECEIVED && t->defer_acked) {
			if (limit < t->defer_accept)
				limit = t->defer_accept;
			resend = t->backoff + 1u >= t->defer_accept;
		}
		give_up = t->rec.start + TCP_RTO_INIT * ((2ull << (limit < 20 ? limit : 20)) - 1);
		if (now >= give_up) {
			tcp_die(t, ETIMEDOUT, UST_OUTCOME_TIMEOUT, "SYN not answered");
			return;
		}
		tcp_rto_stats(t, now);
		t->backoff++;
		tcp_count(tcp, UST_EV_TCP_RTO);
		/* Each SYN or SYN-ACK again under a new IPv6 flow label
		 * (Linux: tcp_write_timeout's sk_rethink_txhash for the SYN,
		 * tcp_rtx_synack's new txhash for the SYN-ACK; measured,
		 * kernel_peer6.py syn-rto and synack-rto). */
		if (resend) {
			tcp_flow_relabel(t, UST_EV_TCP_TIMEOUT_REHASH);
			tcp_send_syn(t, now);
		}
		tcp_timer_set(t, UST_TT_RTX, ust_time_min(now + tcp_rto_backed_off(t), give_up));
		return;
	}
	if (t->snd_una == t->snd_max)
		return;
	if (!t->first_rtx)
		t->first_rtx = now;
	if (give_up(t, now)) {
		/* Nothing is sent: the peer is not answering (C44, C45). */
		tcp_die(t, ETIMEDOUT, UST_OUTCOME_TIMEOUT, "retransmissions not acknowledged");
		return;
	}
	tcp_count(tcp, UST_EV_TCP_RTO);
	tcp_rto_stats(t, now);
	/* Another path, perhaps: a new IPv6 flow label from this
	 * retransmission on (Linux's tcp_write_timeout, sk_rethink_txhash;
	 * not for a tail loss probe or a fast retransmission: measured,
	 * kernel_peer6.py rto and fast-rtx). */
	tcp_flow_relabel(t, UST_EV_TCP_TIMEOUT_REHASH);
	/* A probe the timeout overtook is forgotten (Linux's
	 * tcp_retransmit_timer). */
	t->tlp_active = false;
	tcp_timer_stop(t, UST_TT_TLP);
	enter_loss(t, now);
	t->rto_count++;
	if (thin_linear(t))
		t->backoff = 0;
	else
		t->backoff++;
	tcp_output(t, now);
	tcp_timer_set(t, UST_TT_RTX, tcp_rtx_due(t, now));
}

static void on_delack(struct ust_tcb *t, ust_time now)
{
	if (UST_TCP_SYNCHRONIZED(t->state))
		tcp_delack_timeout(t, now);
}

static void on_keepalive(struct ust_tcb *t, ust_time now)
{
	/* An orphan in FIN-WAIT-2 uses this timer for its FIN timeout. */
	if (tcp_orphan_timeout(t))
		return;
	if (!t->keepalive || !UST_TCP_SYNCHRONIZED(t->state) || t->state == UST_TCP_TIME_WAIT)
		return;
	/* A connection with data in flight or waiting is alive without
	 * keepalive (Linux): look again an idle period later. */
	if (t->snd_max != t->snd_una || t->sndbuf.len > t->snd_nxt - t->snd_buf_seq) {
		tcp_timer_set(t, UST_TT_KEEPALIVE, now + t->keep_idle);
		return;
	}
	if (now - t->last_rcv < t->keep_idle) {
		tcp_timer_set(t, UST_TT_KEEPALIVE, t->last_rcv + t->keep_idle);
		return;
	}
	if (t->keep_probes >= t->keep_cnt) {
		tcp_send_rst(t, now);
		tcp_die(t, ETIMEDOUT, UST_OUTCOME_TIMEOUT, "keepalive not answered");
		return;
	}
	tcp_send_probe(t, now);
	t->keep_probes++;
	tcp_timer_set(t, UST_TT_KEEPALIVE, now + t->keep_intvl);
}

static void on_timewait(struct ust_tcb *t, ust_time now)
{
	tcp_time_wait_over(t);
}

static void on_reo(struct ust_tcb *t, ust_time now)
{
	if (t->packets_out && UST_TCP_SYNCHRONIZED(t->state) && t->state != UST_TCP_TIME_WAIT)
		tcp_rack_reo_timeout(t, now);
}

static void on_tlp(struct ust_tcb *t, ust_time now)
{
	if (t->packets_out && UST_TCP_SYNCHRONIZED(t->state) && t->state != UST_TCP_TIME_WAIT &&
	    (t->ca_state == TCP_CA_OPEN || t->ca_state == TCP_CA_CWR))
		tcp_send_loss_probe(t, now);
}

static void on_sack(struct ust_tcb *t, ust_time now)
{
	if (UST_TCP_SYNCHRONIZED(t->state))
		tcp_sack_compress_timeout(t, now);
}

static void on_shed(struct ust_tcb *t, ust_time now)
{
	tcp_rings_idle(t, now);
}

/* A paced burst's departure time has come. */
static void on_pace(struct ust_tcb *t, ust_time now)
{
	tcp_output(t, now);
}

static void (*const handlers[UST_TT_N])(struct ust_tcb *, ust_time) = {
	[UST_TT_RTX] = on_rtx,
	[UST_TT_DELACK] = on_delack,
	[UST_TT_KEEPALIVE] = on_keepalive,
	[UST_TT_TIMEWAIT] = on_timewait,
	[UST_TT_REO] = on_reo,
	[UST_TT_PACE] = on_pace,
	[UST_TT_TLP] = on_tlp,
	[UST_TT_SHED] = on_shed,
	[UST_TT_SACK] = on_sack,
};

/* The order due timers are handled in: a probe due with the RTO goes
 * first, as in Linux, where the probe holds the RTO's slot until it
 * fires and the RTO counts afresh from it. */
static const enum ust_tcp_timer order[UST_TT_N] = {
	UST_TT_TLP, UST_TT_RTX, UST_TT_DELACK, UST_TT_SACK, UST_TT_KEEPALIVE, UST_TT_TIMEWAIT, UST_TT_REO,
	UST_TT_PACE, UST_TT_SHED,
};

void tcp_timer_fire(struct ust_tcb *t, ust_time now)
{
	for (unsigned k = 0; k < UST_TT_N; k++) {
		enum ust_tcp_timer i = order[k];
		if (t->timer[i] <= now) {
			tcp_timer_stop(t, i);
			handlers[i](t, now);
			/* The handler may have freed t. */
			return;
		}
	}
}
