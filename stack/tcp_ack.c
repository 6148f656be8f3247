/* What an acceptable ACK teaches the sender (RFC 9293 §3.10.7.4, fifth
 * step, ESTABLISHED), in the order of Linux's tcp_ack: the window; SND.UNA;
 * the SACK blocks (RFC 2018) and D-SACK (RFC 2883) onto the scoreboard
 * (tcp_sb.c); the records cumulatively acknowledged, with the RTT and the
 * delivery-rate sample they give (tcp_rate.c); then whether something is
 * lost and how the sender stands towards loss (ca_state, Linux's
 * tcp_fastretrans_alert), and the window: PRR during recovery (RFC 9937),
 * the algorithm's growth otherwise (tcp_cc.c). The retransmissions
 * themselves go out with the next tcp_output, lost segments first. */
#include "tcp_impl.h"

/* What one ACK did, as Linux's FLAG_* bits. */
#define ACK_DATA               0x0001 /* the segment occupies sequence space */
#define ACK_WIN_UPDATE         0x0002 /* it moved the window */
#define ACK_DATA_ACKED         0x0004 /* new data cumulatively acknowledged */
#define ACK_RETRANS_DATA_ACKED 0x0008 /* ... some of it retransmitted */
#define ACK_DATA_SACKED        0x0010 /* new data SACKed */
#define ACK_DSACKING           0x0020 /* a D-SACK block */
#define ACK_SND_UNA_ADVANCED   0x0040
#define ACK_SACK_RENEGING      0x0080 /* the peer dropped data it had SACKed */
#define ACK_LOST_RETRANS       0x0100 /* a retransmission was lost again */
#define ACK_DSACK_TLP          0x0200 /* a D-SACK of the tail loss probe */
#define ACK_ECE                0x0400 /* it echoes a CE mark (RFC 3168, tcp_ecn.c) */
#define ACK_ORIG_SACK_ACKED    0x0800 /* a segment never resent, sent before the episode, (S)ACKed */
#define ACK_NOT_DUP (ACK_DATA | ACK_WIN_UPDATE | ACK_DATA_ACKED)
#define ACK_CA_ALERT (ACK_DATA_SACKED | ACK_DSACKING | ACK_ECE)

/* One ACK's processing state (Linux's tcp_sacktag_state and locals). */
struct ack_state {
	int flag;
	uint32_t prior_snd_una;
	uint32_t prior_fack;        /* highest SACKed sequence before */
	uint32_t reord;             /* lowest never-resent segment delivered below fack */
	uint32_t sack_delivered;    /* segments this ACK SACKed (and D-SACKed) */
	bool reo_armed;             /* RACK armed its timer */
	bool have_sackt;            /* a never-resent segment was SACKed: */
	ust_time first_sackt, last_sackt; /* the oldest and newest such send times */
	bool have_ackt;             /* a never-resent, unSACKed segment was acknowledged: */
	ust_time first_ackt, last_ackt;   /* the same for those */
	struct tcp_rate_acc rate;
	ust_time now;
	uint32_t ts_ecr;            /* the echoed timestamp, 0: none */
};

static uint32_t max_u32(uint32_t a, uint32_t b) { return a > b ? a : b; }
static uint32_t min_u32(uint32_t a, uint32_t b) { return a < b ? a : b; }

/* Linux's tcp_highest_sack_seq: the end of the highest SACKed segment,
 * SND.UNA when none is. */
static uint32_t fack(const struct ust_tcb *t)
{
	return t->sack_ok && t->sacked_out ? t->highest_sack : t->snd_una;
}

/* Does the scoreboard hold a retransmission (Linux's
 * tcp_any_retrans_done)? */
static bool any_retrans_done(const struct ust_tcb *t)
{
	return t->retrans_out ||
	       (t->packets_out && (tcp_sb_at(t, 0)->flags & TCP_SENT_EVER_RETRANS));
}

/* ---- reordering ---- */

/* A segment below the highest SACKed one was delivered without being
 * resent: the network reordered, by this many segments at least (Linux's
 * tcp_check_sack_reordering; tcp_max_reordering 300). */
#define TCP_MAX_REORDERING 300u

static void check_sack_reordering(struct ust_tcb *t, uint32_t low_seq)
{
	uint32_t high = fack(t);

	if (!seq_lt(low_seq, high))
		return;
	if (high - low_seq > t->reordering * t->mss)
		t->reordering = min_u32((high - low_seq + t->mss - 1) / t->mss, TCP_MAX_REORDERING);
	t->reord_seen++;
}

/* ---- without SACK: duplicate ACKs stand for SACKed segments ---- */

/* Linux's tcp_limit_reno_sacked: more duplicate ACKs than segments out
 * (less the holes) mean the network reordered or duplicated. */
static bool limit_reno_sacked(struct ust_tcb *t)
{
	uint32_t holes = min_u32(max_u32(t->lost_out, 1), t->packets_out);

	if (t->sacked_out + holes > t->packets_out) {
		t->sacked_out = t->packets_out - holes;
		return true;
	}
	return false;
}

static void check_reno_reordering(struct ust_tcb *t, uint32_t addend)
{
	if (!limit_reno_sacked(t))
		return;
	t->reordering = min_u32(t->packets_out + addend, TCP_MAX_REORDERING);
	t->reord_seen++;
}

/* Each duplicate ACK: one more segment has left the network (Linux's
 * tcp_add_reno_sack). */
static void add_reno_sack(struct ust_tcb *t, uint32_t num_dupack)
{
	uint32_t prior = t->sacked_out;

	if (!num_dupack)
		return;
	t->sacked_out += num_dupack;
	check_reno_reordering(t, 0);
	if (t->sacked_out > prior)
		t->delivered += t->sacked_out - prior;
}

/* A cumulative ACK of acked segments: the duplicate ACKs it covers are
 * spent (Linux's tcp_remove_reno_sacks). */
static void remove_reno_sacks(struct ust_tcb *t, uint32_t acked)
{
	if (acked) {
		t->delivered += acked > t->sacked_out ? acked - t->sacked_out : 1;
		if (acked - 1 >= t->sacked_out)
			t->sacked_out = 0;
		else
			t->sacked_out -= acked - 1;
	}
	check_reno_reordering(t, acked);
}

/* ---- SACK (RFC 2018) and D-SACK (RFC 2883) ---- */

/* "A D-SACK block is used only to report a duplicate contiguous sequence
 * of data received by the receiver in the most recent packet" (RFC 2883
 * §4): the first block lies below the cumulative ACK, or inside the
 * second block. The peer reports D-SACK from now on, and the segments
 * count (Linux's tcp_check_dsack and tcp_dsack_seen), as delivered too;
 * a retransmission reported twice was not needed (undo). Returns whether
 * the first block is a D-SACK. */
static bool check_dsack(struct ust_tcb *t, const struct ust_tcp_seg *seg, struct ack_state *a)
{
	uint32_t start = seg->opt.sack[0].start, end = seg->opt.sack[0].end, len, dups = 1;

	if (seq_lt(start, seg->ack)) {
		/* below the ACK */
	} else if (seg->opt.nsack > 1 && seq_geq(start, seg->opt.sack[1].start) &&
		   seq_leq(end, seg->opt.sack[1].end)) {
		/* inside the second block */
	} else {
		return false;
	}
	if (!seq_lt(start, end))
		return false;
	len = end - start;
	if (len > t->max_snd_wnd)
		return false;
	if (len > t->mss)
		dups = (len + t->mss - 1) / t->mss;
	t->dsacks += dups;
	/* More duplicates than retransmissions: the peer is confused (or
	 * lying); believe none of it, as Linux. */
	if (t->dsacks > t->total_retrans)
		return false;
	t->dsack_seen = true;
	/* The probe and the original both arrived: no loss, and nothing
	 * about reordering either. */
	if (dups == 1 && t->tlp_active && t->tlp_high_seq == end)
		a->flag |= ACK_DSACK_TLP;
	else
		tcp_rack_dsack(t);
	a->flag |= ACK_DSACKING;
	a->sack_delivered += dups;
	if (t->undo_armed && t->undo_retrans > 0 && !seq_gt(end, a->prior_snd_una) &&
	    seq_gt(end, t->undo_marker))
		t->undo_retrans = (int32_t)(dups > (uint32_t)t->undo_retrans ? 0 : t->undo_retrans - dups);
	return true;
}

/* Is a block believable (Linux's tcp_is_sackblock_valid)? Inside what was
 * sent and above SND.UNA; a D-SACK below it only inside this episode. */
static bool sack_block_valid(const struct ust_tcb *t, bool dsack, uint32_t start, uint32_t end)
{
	if (seq_gt(end, t->snd_max) || !seq_lt(start, end) || !seq_lt(start, t->snd_max))
		return false;
	if (seq_gt(start, t->snd_una))
		return true;
	if (!dsack || !t->undo_armed || seq_gt(end, t->snd_una))
		return false;
	if (seq_geq(start, t->undo_marker))
		return true;
	if (!seq_gt(end, t->undo_marker))
		return false;
	return seq_geq(start, end - t->max_snd_wnd);
}

/* One record inside a SACK block (Linux's tcp_sacktag_one). */
static void sacktag_one(struct ust_tcb *t, struct tcp_sent *r, bool dup, struct ack_state *a)
{
	uint8_t f = r->flags;

	if (dup && (f & (TCP_SENT_RETRANS | TCP_SENT_EVER_RETRANS))) {
		if (t->undo_armed && t->undo_retrans > 0 && seq_gt(r->end, t->undo_marker))
			t->undo_retrans--;
		if ((f & TCP_SENT_SACKED) && seq_lt(r->start, a->reord))
			a->reord = r->start;
	}
	if (!(f & TCP_SENT_SACKED)) {
		tcp_rack_advance(t, f, r->end, r->xmit_time, a->now);
		if (f & TCP_SENT_RETRANS) {
			/* The retransmission got there. */
			if (f & TCP_SENT_LOST)
				tcp_sb_clear_flags(t, r, TCP_SENT_LOST | TCP_SENT_RETRANS);
		} else {
			if (!(f & TCP_SENT_EVER_RETRANS)) {
				/* Delivered out of order, never resent:
				 * reordering if below the highest SACK. */
				if (seq_lt(r->start, fack(t)) && seq_lt(r->start, a->reord))
					a->reord = r->start;
				if (seq_leq(r->end, t->recover))
					a->flag |= ACK_ORIG_SACK_ACKED;
				if (!a->have_sackt)
					a->first_sackt = r->xmit_time;
				a->have_sackt = true;
				a->last_sackt = r->xmit_time;
			}
			tcp_sb_clear_flags(t, r, TCP_SENT_LOST);
		}
		tcp_sb_set(t, r, TCP_SENT_SACKED);
		a->flag |= ACK_DATA_SACKED;
		a->sack_delivered++;
		tcp_rate_delivered(t, r, &a->rate);
		if (t->sacked_out == 1 || seq_gt(r->end, t->highest_sack))
			t->highest_sack = r->end;
	}
	/* A D-SACK says the segment came twice: the retransmission is no
	 * longer in flight. */
	if (dup && (r->flags & TCP_SENT_RETRANS))
		tcp_sb_clear_flags(t, r, TCP_SENT_RETRANS);
}

/* The records inside [start, end), split where the block cuts one. */
static void sacktag_block(struct ust_tcb *t, uint32_t start, uint32_t end, bool dup,
			  struct ack_state *a)
{
	uint32_t i;

	if (seq_lt(start, t->snd_una))
		start = t->snd_una;
	i = tcp_sb_find(t, start);
	if (i < t->packets_out && seq_gt(start, tcp_sb_at(t, i)->start)) {
		if (!tcp_sb_split(t, i, start))
			return;
		i++;
	}
	for (; i < t->packets_out; i++) {
		struct tcp_sent *r = tcp_sb_at(t, i);
		if (!seq_lt(r->start, end))
			break;
		if (seq_gt(r->end, end) && !tcp_sb_split(t, i, end))
			break;
		sacktag_one(t, tcp_sb_at(t, i), dup, a);
	}
}

/* The SACK option onto the scoreboard (Linux's tcp_sacktag_write_queue).
 * Blocks are taken in any order; a D-SACK block marks duplicates. */
static void sacktag(struct ust_tcb *t, const struct ust_tcp_seg *seg, struct ack_state *a)
{
	bool dsack = check_dsack(t, seg, a);

	a->reord = t->snd_max;
	if (!t->packets_out)
		return;
	for (unsigned i = 0; i < seg->opt.nsack; i++) {
		uint32_t start = seg->opt.sack[i].start, end = seg->opt.sack[i].end;
		bool dup = i == 0 && dsack;
		if (!sack_block_valid(t, dup, start, end) || !seq_gt(end, t->snd_una))
			continue;
		sacktag_block(t, start, end, dup, a);
	}
	if (t->ca_state != TCP_CA_LOSS || t->undo_armed)
		check_sack_reordering(t, a->reord);
}

/* ---- the cumulative ACK ---- */

/* The ACK's timestamp echo is older than the record's last transmission:
 * an earlier one was delivered, and the record's time says nothing about
 * this delivery (Linux's tcp_skb_spurious_retrans). */
static bool spurious_retrans(const struct ust_tcb *t, const struct tcp_sent *r,
			     const struct ack_state *a)
{
	return (r->flags & (TCP_SENT_RETRANS | TCP_SENT_EVER_RETRANS)) && a->ts_ecr &&
	       seq_lt(a->ts_ecr, tcp_ts_now(t, r->xmit_time));
}

/* "If SND.UNA < SEG.ACK =< SND.NXT, then set SND.UNA <- SEG.ACK. ...
 * Users should receive positive acknowledgments for buffers that have
 * been SENT and fully acknowledged." */
static void snd_una_advance(struct ust_tcb *t, uint32_t ack)
{
	uint32_t data_end = t->snd_buf_seq + t->sndbuf.len;
	uint32_t upto = seq_lt(ack, data_end) ? ack : data_end;

	if (seq_gt(upto, t->snd_buf_seq)) {
		uint32_t n = upto - t->snd_buf_seq;
		ust_ring_consume(&t->sndbuf, n);
		tcp_ring_shed(t, &t->sndbuf); /* all acknowledged: memory back until the next write */
		t->snd_buf_seq += n;
		t->rec.bytes_sent += n;
		tcp_event(t, UST_TCP_EV_WRITABLE);
		t->stats.snd_nospace = false;
		tcp_chrono_stop(t, TCP_CHRONO_SNDBUF_LIMITED, t->tcp->now);
	}
	t->stats.bytes_acked += ack - t->snd_una;
	t->snd_una = ack;
	if (seq_lt(t->snd_nxt, t->snd_una))
		t->snd_nxt = t->snd_una;
	tcp_urg_acked(t);
	tcp_chrono_stop(t, TCP_CHRONO_BUSY, t->tcp->now);
}

/* "Any segments on the retransmission queue that are thereby entirely
 * acknowledged are removed" (Linux's tcp_clean_rtx_queue): the counters,
 * the delivery count, the reordering they reveal, and the send times of
 * the oldest and newest never resent (the RTT, rtt_update). A record the
 * ACK cuts keeps its rest. */
static void clean_acked(struct ust_tcb *t, struct ack_state *a, ust_time now)
{
	uint32_t reord = t->snd_max, acked = 0;

	while (t->packets_out && seq_leq(tcp_sb_at(t, 0)->end, t->snd_una)) {
		struct tcp_sent *r = tcp_sb_at(t, 0);
		if (r->flags & (TCP_SENT_RETRANS | TCP_SENT_EVER_RETRANS)) {
			a->flag |= ACK_RETRANS_DATA_ACKED;
		} else if (!(r->flags & TCP_SENT_SACKED)) {
			if (!a->have_ackt)
				a->first_ackt = r->xmit_time;
			a->have_ackt = true;
			a->last_ackt = r->xmit_time;
			if (seq_lt(r->start, reord))
				reord = r->start;
			if (seq_leq(r->end, t->recover))
				a->flag |= ACK_ORIG_SACK_ACKED;
		}
		if (!(r->flags & TCP_SENT_SACKED) && t->sack_ok) {
			t->delivered++;
			if (!spurious_retrans(t, r, a))
				tcp_rack_advance(t, r->flags, r->end, r->xmit_time, now);
		}
		acked++;
		tcp_rate_delivered(t, r, &a->rate);
		a->flag |= ACK_DATA_ACKED;
		tcp_sb_pop(t);
	}
	if (t->packets_out && seq_lt(tcp_sb_at(t, 0)->start, t->snd_una)) {
		tcp_sb_at(t, 0)->start = t->snd_una;
		if (tcp_sb_at(t, 0)->flags & TCP_SENT_SACKED)
			a->flag |= ACK_SACK_RENEGING;
	}
	if (!(a->flag & ACK_DATA_ACKED))
		return;
	if (!t->sack_ok)
		remove_reno_sacks(t, acked);
	else if (seq_lt(reord, a->prior_fack))
		check_sack_reordering(t, reord);
}

/* ---- what the ACK says about loss (Linux's tcp_fastretrans_alert) ---- */

/* A window reduction begins (Linux's tcp_init_cwnd_reduction): the
 * algorithm's ssthresh, once per episode, and PRR's counts. */
static void init_cwnd_reduction(struct ust_tcb *t)
{
	t->recover = t->snd_max;
	t->tlp_active = false;
	t->snd_cwnd_cnt = 0;
	t->prior_cwnd = t->snd_cwnd;
	t->prr_delivered = 0;
	t->prr_out = 0;
	t->snd_ssthresh = t->cc->ssthresh(t);
	tcp_ecn_queue_cwr(t);
}

/* Proportional Rate Reduction (RFC 9937, Linux's tcp_cwnd_reduction):
 * during recovery the window follows what the ACKs say was delivered.
 * While more than ssthresh is in flight, send ssthresh/prior_cwnd of what
 * was delivered (the proportional part); below it, catch up to ssthresh
 * but no faster than slow start would (the reduction bound: what was
 * delivered, plus one when the cumulative ACK moved and nothing was
 * newly lost). The first ACK of recovery always lets the fast
 * retransmission out. */
void tcp_cwnd_reduction(struct ust_tcb *t, uint32_t newly_acked_sacked, uint32_t newly_lost,
			bool una_advanced)
{
	int64_t delta = (int64_t)t->snd_ssthresh - tcp_packets_in_flight(t);
	int64_t sndcnt;

	if (!newly_acked_sacked || !t->prior_cwnd)
		return;
	t->prr_delivered += newly_acked_sacked;
	if (delta < 0) {
		uint64_t dividend = (uint64_t)t->snd_ssthresh * t->prr_delivered + t->prior_cwnd - 1;
		sndcnt = (int64_t)(dividend / t->prior_cwnd) - t->prr_out;
	} else {
		sndcnt = (int64_t)t->prr_delivered - t->prr_out;
		if (sndcnt < newly_acked_sacked)
			sndcnt = newly_acked_sacked;
		if (una_advanced && !newly_lost)
			sndcnt++;
		if (sndcnt > delta)
			sndcnt = delta;
	}
	if (sndcnt < (t->prr_out ? 0 : 1))
		sndcnt = t->prr_out ? 0 : 1;
	t->snd_cwnd = tcp_packets_in_flight(t) + (uint32_t)sndcnt;
}

/* Recovery or CWR is over (Linux's tcp_end_cwnd_reduction): cwnd =
 * ssthresh, where PRR has brought the flight (RFC 9937: "at the end of
 * recovery it will be as close as possible to the slow start threshold"). */
static void end_cwnd_reduction(struct ust_tcb *t, ust_time now)
{
	if (t->cc->cong_control)
		return;
	if (t->snd_ssthresh < TCP_INFINITE_SSTHRESH && (t->ca_state == TCP_CA_CWR || t->undo_armed)) {
		t->snd_cwnd = t->snd_ssthresh;
		t->snd_cwnd_stamp = now;
	}
	tcp_ca_event(t, TCP_CA_EV_COMPLETE_CWR, now);
}

/* Fast retransmit (RFC 5681 §3.2, RFC 6675 §5): recovery until everything
 * outstanding now is acknowledged (Linux's tcp_enter_recovery). */
void tcp_enter_recovery(struct ust_tcb *t)
{
	tcp_count(t->tcp, UST_EV_TCP_FAST_RETRANS);
	t->prior_ssthresh = 0;
	tcp_init_undo(t);
	if (!tcp_in_cwnd_reduction(t)) {
		t->prior_ssthresh = tcp_current_ssthresh(t);
		init_cwnd_reduction(t);
	}
	tcp_set_ca_state(t, TCP_CA_RECOVERY);
}

/* "The sender's congestion window is reduced ... at most once per window
 * of data" (RFC 3168 §6.1.2): ssthresh from the algorithm, PRR bringing
 * the window down to it as ACKs come, until everything outstanding now
 * is acknowledged; nothing is resent, and nothing is to undo (Linux's
 * tcp_enter_cwr). In Recovery or Loss the window is being reduced
 * already. */
void tcp_enter_cwr(struct ust_tcb *t)
{
	t->prior_ssthresh = 0;
	if (t->ca_state >= TCP_CA_CWR)
		return;
	tcp_count(t->tcp, UST_EV_TCP_ECN_CWR);
	t->undo_armed = false;
	init_cwnd_reduction(t);
	tcp_set_ca_state(t, TCP_CA_CWR);
}

/* Without SACK, "recovery" ends only when the ACK passes the recovery
 * point: an ACK of exactly it may be a duplicate of the one before
 * (RFC 6582 §3.2 step 3, Linux's tcp_is_non_sack_preventing_reopen). */
static bool non_sack_holds_recovery(const struct ust_tcb *t)
{
	return !t->sack_ok && t->snd_una == t->recover;
}

/* ---- undo (RFC 3522 Eifel detection, RFC 2883/3708 D-SACK; Linux's
 * tcp_try_undo_*) ---- */

/* "The ACK ... acknowledges the original transmission" (RFC 3522 §3.2):
 * the echoed timestamp is older than the first retransmission (Linux's
 * tcp_packet_delayed). */
static bool packet_delayed(const struct ust_tcb *t, const struct ack_state *a)
{
	return t->retrans_stamp && a->ts_ecr && seq_lt(a->ts_ecr, tcp_ts_now(t, t->retrans_stamp));
}

/* The episode may be undone: nothing was retransmitted needlessly
 * unaccounted for (every retransmission D-SACKed), or the timestamps say
 * the originals got there (Linux's tcp_may_undo). */
static bool may_undo(const struct ust_tcb *t, const struct ack_state *a)
{
	return t->undo_armed && (!t->undo_retrans || packet_delayed(t, a));
}

/* The reduction was not needed: cwnd as the algorithm had it, ssthresh
 * back (Linux's tcp_undo_cwnd_reduction). With unmark_loss the segments
 * marked lost are not any more (those whose retransmission is in flight
 * stay marked: here a retransmission in flight is always of a lost
 * segment). RACK looks again. */
static void undo_cwnd_reduction(struct ust_tcb *t, bool unmark_loss, ust_time now)
{
	if (unmark_loss) {
		for (uint32_t i = 0; i < t->packets_out && t->lost_out > t->retrans_out; i++) {
			struct tcp_sent *r = tcp_sb_at(t, i);
			if (!(r->flags & TCP_SENT_RETRANS))
				tcp_sb_clear_flags(t, r, TCP_SENT_LOST);
		}
	}
	if (t->prior_ssthresh) {
		t->snd_cwnd = t->cc->undo_cwnd(t);
		if (t->prior_ssthresh > t->snd_ssthresh) {
			t->snd_ssthresh = t->prior_ssthresh;
			t->ecn_flags &= (uint8_t)~UST_TCP_ECN_QUEUE_CWR; /* no reduction to report */
		}
	}
	t->snd_cwnd_stamp = now;
	t->undo_armed = false;
	t->rack.advanced = true;
}

/* Recovery (or a loss episode) is over (Linux's tcp_try_undo_recovery):
 * undone if it proved spurious. True if it holds on. */
static bool recovery_over(struct ust_tcb *t, const struct ack_state *a)
{
	if (may_undo(t, a)) {
		tcp_count(t->tcp, t->ca_state == TCP_CA_LOSS ? UST_EV_TCP_LOSS_UNDO : UST_EV_TCP_UNDO);
		undo_cwnd_reduction(t, false, a->now);
	} else {
		tcp_rack_recovered(t);
	}
	if (non_sack_holds_recovery(t))
		return true;
	tcp_set_ca_state(t, TCP_CA_OPEN);
	return false;
}

/* Every retransmission of the episode was reported as a duplicate
 * (D-SACK): undo (Linux's tcp_try_undo_dsack); the widened reordering
 * window lasts one more recovery. */
static bool try_undo_dsack(struct ust_tcb *t, ust_time now)
{
	if (!t->undo_armed || t->undo_retrans)
		return false;
	if (t->rack.reo_wnd_persist < 16)
		t->rack.reo_wnd_persist++;
	tcp_count(t->tcp, UST_EV_TCP_UNDO);
	undo_cwnd_reduction(t, false, now);
	return true;
}

/* Open, or Disorder while something is SACKed, marked lost or resent
 * (Linux's tcp_try_keep_open; tcp_try_to_open leaves CWR alone). */
static void keep_open(struct ust_tcb *t)
{
	enum tcp_ca_state s = TCP_CA_OPEN;

	if (t->sacked_out + t->lost_out || any_retrans_done(t))
		s = TCP_CA_DISORDER;
	if (t->ca_state != s) {
		tcp_set_ca_state(t, s);
		t->recover = t->snd_max;
	}
}

static void try_to_open(struct ust_tcb *t, int flag)
{
	if (!any_retrans_done(t))
		t->retrans_stamp = 0;
	if (flag & ACK_ECE)
		tcp_enter_cwr(t);
	if (t->ca_state != TCP_CA_CWR)
		keep_open(t);
}

/* Without SACK: the head is lost after DupThresh duplicate ACKs, and in
 * recovery each partial ACK says the next one is (NewReno, RFC 6582 §3.2
 * step 5; Linux's tcp_newreno_mark_lost). */
static void newreno_mark_lost(struct ust_tcb *t, bool una_advanced)
{
	struct tcp_sent *r;

	if (!((t->ca_state < TCP_CA_RECOVERY && t->sacked_out >= t->reordering) ||
	      (t->ca_state == TCP_CA_RECOVERY && una_advanced)))
		return;
	r = tcp_sb_at(t, 0);
	if (r->flags & TCP_SENT_LOST)
		return;
	tcp_sb_mark_lost(t, r);
}

/* What is lost: RACK with SACK (tcp_rack.c), which also finds a
 * retransmission lost again; the NewReno rule without (Linux's
 * tcp_identify_packet_loss). */
static void identify_packet_loss(struct ust_tcb *t, struct ack_state *a, ust_time now)
{
	uint32_t prior_retrans = t->retrans_out;

	if (!t->packets_out)
		return;
	if (!t->sack_ok) {
		newreno_mark_lost(t, a->flag & ACK_SND_UNA_ADVANCED);
		return;
	}
	if (tcp_rack_mark_lost(t, now))
		a->reo_armed = true;
	if (t->retrans_out < prior_retrans)
		a->flag |= ACK_LOST_RETRANS;
}

/* Time to recover: a loss is proven (Linux's tcp_time_to_recover with
 * RACK: DupThresh lives on in RACK's window and in NewReno's rule). */
static bool time_to_recover(const struct ust_tcb *t)
{
	return t->lost_out != 0;
}

/* A timeout found spurious, by the timestamps or every retransmission
 * D-SACKed, or by F-RTO (frto_undo; Linux's tcp_try_undo_loss): undone,
 * the segments it marked lost are not, and the sender is Open again. */
static bool try_undo_loss(struct ust_tcb *t, const struct ack_state *a, bool frto_undo)
{
	if (!frto_undo && !may_undo(t, a))
		return false;
	undo_cwnd_reduction(t, true, a->now);
	tcp_count(t->tcp, UST_EV_TCP_LOSS_UNDO);
	if (frto_undo)
		tcp_count(t->tcp, UST_EV_TCP_SPURIOUS_RTO);
	t->rto_count = 0;
	if (non_sack_holds_recovery(t))
		return true;
	if (frto_undo || t->sack_ok)
		tcp_set_ca_state(t, TCP_CA_OPEN);
	return true;
}

/* A partial ACK in recovery for an original, not the retransmission
 * (timestamps): the hole was reordering, not loss (Linux's
 * tcp_try_undo_partial). With retransmissions still in flight, nothing
 * more is marked or resent this ACK (true); without, undo. */
static bool try_undo_partial(struct ust_tcb *t, struct ack_state *a)
{
	if (!t->undo_armed || !packet_delayed(t, a))
		return false;
	check_sack_reordering(t, a->prior_snd_una);
	if (t->retrans_out)
		return true;
	if (!any_retrans_done(t))
		t->retrans_stamp = 0;
	tcp_count(t->tcp, UST_EV_TCP_UNDO);
	undo_cwnd_reduction(t, true, a->now);
	keep_open(t);
	return false;
}

/* F-RTO after an RTO (RFC 5682 §3.1, the SACK-enhanced version, as
 * Linux's tcp_process_loss). Returns true when the ACK is handled. The
 * timeout resent SND.UNA (step 1). Step 3b, in Linux's words: "A timeout
 * is spurious if not all data are lost, i.e., never-retransmitted data
 * are (s)acked": undo. Once new data went (SND.NXT beyond the point), an
 * ACK that only SACKs or duplicates says the loss was real (step 3a).
 * Step 2b: the first ACK that advances the window without ending the
 * episode lets new data go instead of retransmissions, the point moving
 * to SND.NXT, if there is data and the peer's window takes it; else the
 * conventional recovery. */
static bool frto_process(struct ust_tcb *t, struct ack_state *a, uint32_t num_dupack,
			 bool recovered)
{
	uint32_t data_end = t->snd_buf_seq + t->sndbuf.len;

	if ((a->flag & ACK_ORIG_SACK_ACKED) && try_undo_loss(t, a, true))
		return true;
	if (seq_gt(t->snd_nxt, t->recover)) {
		if ((a->flag & ACK_DATA_SACKED) || num_dupack)
			t->frto = false;
	} else if ((a->flag & ACK_SND_UNA_ADVANCED) && !recovered) {
		t->recover = t->snd_nxt;
		if (seq_lt(t->snd_nxt, data_end) && seq_gt(t->snd_una + t->snd_wnd, t->snd_nxt)) {
			t->frto_new_data = true;
			return true;
		}
		t->frto = false;
	}
	return false;
}

/* After an RTO (Linux's tcp_process_loss): the episode ends once
 * everything sent before the timeout is acknowledged, or when F-RTO
 * finds it spurious. */
static void process_loss(struct ust_tcb *t, struct ack_state *a, uint32_t num_dupack)
{
	bool recovered = !seq_lt(t->snd_una, t->recover);

	if ((a->flag & ACK_SND_UNA_ADVANCED) && try_undo_loss(t, a, false))
		return;
	if (t->frto && frto_process(t, a, num_dupack, recovered))
		return;
	if (recovered) {
		recovery_over(t, a);
		return;
	}
	if (!t->sack_ok) {
		if (seq_gt(t->snd_max, t->recover) && num_dupack)
			add_reno_sack(t, num_dupack);
		else if (a->flag & ACK_SND_UNA_ADVANCED)
			t->sacked_out = 0;
	}
}

/* Open, Disorder or CWR (or a loss episode just over): the duplicate
 * ACKs count, and recovery begins once a loss is proven. Returns whether
 * it began (a fast retransmission). */
static bool maybe_enter_recovery(struct ust_tcb *t, struct ack_state *a, uint32_t num_dupack,
				 ust_time now)
{
	if (!t->sack_ok) {
		if (a->flag & ACK_SND_UNA_ADVANCED)
			t->sacked_out = 0;
		add_reno_sack(t, num_dupack);
	}
	identify_packet_loss(t, a, now);
	if (!time_to_recover(t)) {
		try_to_open(t, a->flag);
		return false;
	}
	tcp_enter_recovery(t);
	/* Congestion, not only loss: no undo (Linux's ece_ack). */
	if (a->flag & ACK_ECE)
		t->prior_ssthresh = 0;
	return true;
}

/* The ACK that covers SND.NXT at the probe ends the episode (RFC 8985
 * §7.4, Linux's tcp_process_tlp_ack). A probe of new data proves nothing.
 * A probe of the last segment: if the peer reports it twice (D-SACK) or
 * the ACK of it is a pure duplicate, the original arrived too and
 * nothing was lost; if the ACK goes beyond it, the probe repaired a loss
 * that still calls for a window reduction, done at once (CWR). */
static void process_tlp_ack(struct ust_tcb *t, uint32_t ack, int flag, ust_time now)
{
	if (!t->tlp_active || seq_lt(ack, t->tlp_high_seq))
		return;
	if (!t->tlp_retrans || (flag & ACK_DSACK_TLP)) {
		t->tlp_active = false;
	} else if (seq_gt(ack, t->tlp_high_seq)) {
		init_cwnd_reduction(t);
		tcp_set_ca_state(t, TCP_CA_CWR);
		end_cwnd_reduction(t, now);
		keep_open(t);
		tcp_count(t->tcp, UST_EV_TCP_LOSS_PROBE_RECOVERY);
	} else if (!(flag & (ACK_SND_UNA_ADVANCED | ACK_NOT_DUP | ACK_DATA_SACKED))) {
		t->tlp_active = false;
	}
}

/* Linux's tcp_fastretrans_alert: an ACK that is a duplicate, brings SACK
 * news, or comes while not Open moves the loss state machine. */
static void fastretrans_alert(struct ust_tcb *t, struct ack_state *a, uint32_t num_dupack,
			      ust_time now)
{
	if (!t->packets_out && t->sacked_out)
		t->sacked_out = 0;
	if (t->ca_state == TCP_CA_OPEN)
		t->retrans_stamp = 0;
	/* The end of a reduction: everything outstanding at its start is
	 * acknowledged. */
	if (t->ca_state != TCP_CA_OPEN && !seq_lt(t->snd_una, t->recover)) {
		if (t->ca_state == TCP_CA_CWR && t->snd_una != t->recover) {
			end_cwnd_reduction(t, now);
			tcp_set_ca_state(t, TCP_CA_OPEN);
		} else if (t->ca_state == TCP_CA_RECOVERY) {
			if (!t->sack_ok)
				t->sacked_out = 0;
			if (recovery_over(t, a))
				return;
			end_cwnd_reduction(t, now);
		}
	}
	switch (t->ca_state) {
	case TCP_CA_RECOVERY:
		if (!(a->flag & ACK_SND_UNA_ADVANCED)) {
			if (!t->sack_ok)
				add_reno_sack(t, num_dupack);
		} else if (try_undo_partial(t, a)) {
			return;
		}
		if (try_undo_dsack(t, now))
			keep_open(t);
		identify_packet_loss(t, a, now);
		/* Undone: a loss still evident starts a new recovery. */
		if (t->ca_state != TCP_CA_RECOVERY && time_to_recover(t))
			tcp_enter_recovery(t);
		break;
	case TCP_CA_LOSS:
		process_loss(t, a, num_dupack);
		identify_packet_loss(t, a, now);
		/* Still in the episode, unless it ended or a retransmission
		 * was lost again. */
		if (t->ca_state == TCP_CA_OPEN || (a->flag & ACK_LOST_RETRANS))
			maybe_enter_recovery(t, a, num_dupack, now);
		break;
	default:
		if (t->ca_state <= TCP_CA_DISORDER)
			try_undo_dsack(t, now);
		maybe_enter_recovery(t, a, num_dupack, now);
		break;
	}
}

/* ---- the window ---- */

/* "If SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK),
 * set SND.WND <- SEG.WND": only a newer segment moves the window. A window
 * that opens ends the persist state. An answer to a zero-window probe
 * says the peer is alive: ask again a backed-off RTO from now (Linux's
 * tcp_ack_probe). Returns whether the window changed. */
static bool window_update(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	uint32_t old = t->snd_wnd;

	if (seq_lt(t->snd_wl1, seg->seq) || (t->snd_wl1 == seg->seq && seq_leq(t->snd_wl2, seg->ack))) {
		t->snd_wnd = (uint32_t)seg->wnd << t->snd_wscale;
		t->snd_wl1 = seg->seq;
		t->snd_wl2 = seg->ack;
		if (t->snd_wnd > t->max_snd_wnd) {
			t->max_snd_wnd = t->snd_wnd;
			tcp_sync_mss(t);
		}
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
	return t->snd_wnd != old;
}

/* The round trip a timestamp echo measures (Linux's tcp_rtt_tsopt_us):
 * whole milliseconds, at least one; 0: no echo, or one too far back to
 * believe. */
ust_time tcp_ts_rtt(const struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	uint32_t delta;

	if (!t->ts_ok || !seg->opt.ts || !seg->opt.ts_ecr)
		return 0;
	delta = tcp_ts_now(t, now) - seg->opt.ts_ecr;
	if (delta >= INT32_MAX / 1000)
		return 0;
	return UST_MS(delta ? delta : 1);
}

/* Round-trip time for the RTO, as Linux's tcp_ack_update_rtt: "Prefer
 * RTT measured from ACK's timing to TS-ECR. This is because broken
 * middle-boxes or peers may corrupt TS-ECR fields. But Karn's algorithm
 * forbids taking RTT if some retransmitted data is acked (RFC6298)."
 * First the oldest segment this ACK acknowledged that was never resent,
 * unless a resent one was acknowledged too; else the oldest never-resent
 * segment it SACKed; only then the echo, and only from an ACK of new
 * data (RFC 7323's RTTM rule). A peer echoing old timestamps (an echo
 * held back over a run of losses) thus cannot push the RTO up while
 * segment times are at hand. The rate sample and the min RTT take the
 * newest such segment (Linux's ca_rtt). A sample ends the backoff (RFC
 * 6298 §5.7; Linux: "only reset backoff on valid RTT measurement"). */
static void rtt_update(struct ust_tcb *t, const struct ust_tcp_seg *seg, struct ack_state *a,
		       ust_time now)
{
	struct tcp_rate_sample *rs = a->rate.rs;
	int64_t seq_rtt = -1, ca_rtt = -1;

	if (a->have_ackt && !(a->flag & ACK_RETRANS_DATA_ACKED)) {
		seq_rtt = (int64_t)(now - a->first_ackt);
		ca_rtt = (int64_t)(now - a->last_ackt);
	}
	if (a->have_sackt) {
		if (seq_rtt < 0)
			seq_rtt = (int64_t)(now - a->first_sackt);
		ca_rtt = (int64_t)(now - a->last_sackt);
	}
	if (seq_rtt < 0 && (a->flag & ACK_DATA_ACKED)) {
		ust_time ts_rtt = tcp_ts_rtt(t, seg, now);
		if (ts_rtt)
			seq_rtt = ca_rtt = (int64_t)ts_rtt;
	}
	if (seq_rtt < 0)
		return;
	rs->rtt = ca_rtt ? (ust_time)ca_rtt : 1;
	tcp_rtt_min_update(t, rs->rtt, now);
	tcp_rtt_estimate(t, (ust_time)seq_rtt);
	t->backoff = 0;
}

/* The algorithm hears of every ACK that delivered something
 * (pkts_acked), then sets the window itself (cong_control) or the engine
 * does: PRR during a reduction, the algorithm's growth otherwise, when new
 * data was cumulatively acknowledged (Linux's tcp_cong_control and
 * tcp_may_raise_cwnd). */
static void cong_control(struct ust_tcb *t, const struct tcp_rate_sample *rs, int flag,
			 ust_time now)
{
	if (rs->acked_sacked && t->cc->pkts_acked)
		t->cc->pkts_acked(t, rs, now);
	if (t->cc->cong_control) {
		t->cc->cong_control(t, rs, now);
		return;
	}
	if (tcp_in_cwnd_reduction(t)) {
		tcp_cwnd_reduction(t, rs->acked_sacked, rs->losses, flag & ACK_SND_UNA_ADVANCED);
	} else if ((flag & ACK_DATA_ACKED) ||
		   (t->reordering > TCP_REORDERING && (flag & ACK_DATA_SACKED))) {
		/* With much reordering seen, SACKs count as progress too. */
		t->cc->cong_avoid(t, rs->acked_sacked, now);
		t->snd_cwnd_stamp = now;
	}
	tcp_update_pacing_rate(t);
}

/* TCP_INFO's delivered_ce: the segments an ACK with ECE delivered
 * (Linux's tcp_count_delivered). */
static void count_delivered_ce(struct ust_tcb *t, int flag, uint64_t prior_delivered)
{
	uint32_t n = (uint32_t)(t->delivered - prior_delivered);

	if (!(flag & ACK_ECE))
		return;
	t->stats.delivered_ce += n;
	t->tcp->st->ctr.event[UST_EV_TCP_DELIVERED_CE] += n;
}

void tcp_ack_update(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	struct tcp_rate_sample rs = { .prior_in_flight = tcp_packets_in_flight(t) };
	struct ack_state a = {
		.prior_snd_una = t->snd_una, .prior_fack = fack(t), .reord = t->snd_max,
		.rate = { .rs = &rs }, .now = now,
		.ts_ecr = t->ts_ok && seg->opt.ts ? seg->opt.ts_ecr : 0,
	};
	uint64_t prior_delivered = t->delivered, prior_lost = t->lost;
	uint32_t prior_packets = t->packets_out, num_dupack = 0;

	/* Linux pushes after an ACK with the socket's own Nagle state
	 * (tcp_data_snd_check): MSG_MORE held its call's bytes only until
	 * now. */
	t->more = false;

	if (ust_seg_len(seg))
		a.flag |= ACK_DATA;
	if (window_update(t, seg, now))
		a.flag |= ACK_WIN_UPDATE;
	if (seq_gt(seg->ack, t->snd_una)) {
		a.flag |= ACK_SND_UNA_ADVANCED;
		snd_una_advance(t, seg->ack);
	}
	if (t->sack_ok && seg->opt.nsack) {
		sacktag(t, seg, &a);
		t->delivered += a.sack_delivered;
	}
	if (tcp_ecn_rcv_ece(t, seg))
		a.flag |= ACK_ECE;
	clean_acked(t, &a, now);
	if (prior_packets)
		rtt_update(t, seg, &a, now);
	if (a.flag & ACK_SND_UNA_ADVANCED) {
		t->first_rtx = 0;
		t->rto_count = 0;
		tcp_rto_restart(t, now);
	}
	if (!prior_packets) {
		/* Nothing was in flight: the handshake, a window update, or
		 * the duplicate that ends a probe's episode (Linux's
		 * no_queue). */
		/* A D-SACK may still undo a reduction (Linux's no_queue). */
		if (a.flag & ACK_DSACKING)
			fastretrans_alert(t, &a, 0, now);
		process_tlp_ack(t, seg->ack, a.flag, now);
		count_delivered_ce(t, a.flag, prior_delivered);
		return;
	}
	tcp_rack_update_reo_wnd(t, &rs);
	process_tlp_ack(t, seg->ack, a.flag, now);
	/* Dubious: a duplicate ACK, SACK news, or not Open. */
	if (!(a.flag & ACK_NOT_DUP) || (a.flag & ACK_CA_ALERT) || t->ca_state != TCP_CA_OPEN) {
		if (!(a.flag & (ACK_SND_UNA_ADVANCED | ACK_NOT_DUP | ACK_DSACKING)))
			num_dupack = 1;
		fastretrans_alert(t, &a, num_dupack, now);
	}
	/* RACK's timer stands in for the RTO and the probe while it runs,
	 * as in Linux, where all three share one slot: an ACK of new data
	 * that armed none ends it, and arms the probe if one may go (Linux's
	 * tcp_set_xmit_timer). */
	if (a.reo_armed) {
		tcp_timer_stop(t, UST_TT_TLP);
	} else if (a.flag & ACK_DATA_ACKED) {
		tcp_timer_stop(t, UST_TT_REO);
		tcp_tlp_schedule(t, true, now);
	}
	count_delivered_ce(t, a.flag, prior_delivered);
	tcp_rate_gen(t, (uint32_t)(t->delivered - prior_delivered), (uint32_t)(t->lost - prior_lost),
		     &a.rate, now);
	cong_control(t, &rs, a.flag, now);
}

void tcp_simple_retransmit(struct ust_tcb *t, ust_time now)
{
	for (uint32_t i = 0; i < t->packets_out; i++) {
		struct tcp_sent *r = tcp_sb_at(t, i);
		if (tcp_sent_len(r) > t->mss - tcp_opt_extra_len(t))
			tcp_sb_mark_lost(t, r);
	}
	if (!t->lost_out)
		return;
	if (!t->sack_ok)
		limit_reno_sacked(t);
	/* Not a congestion signal: the window stays, but an undo would be
	 * wrong. */
	if (t->ca_state != TCP_CA_LOSS) {
		t->recover = t->snd_max;
		t->snd_ssthresh = tcp_current_ssthresh(t);
		t->prior_ssthresh = 0;
		t->undo_armed = false;
		tcp_set_ca_state(t, TCP_CA_LOSS);
	}
	tcp_output(t, now);
}
