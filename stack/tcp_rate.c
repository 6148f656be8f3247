/* Delivery-rate sampling, as Linux's tcp_rate.c
 * (draft-cheng-iccrg-delivery-rate-estimation): every segment sent keeps a
 * snapshot of the connection's delivery state (how much was delivered,
 * and when); when an ACK delivers it, the difference is one sample of how
 * fast the network delivers: segments over an interval. BBR lives on
 * these samples; CUBIC and RACK use the RTT and the counts. Also the
 * windowed minimum RTT they share. */
#include "tcp_impl.h"

/* "In general we need to start delivery rate samples from the time we
 * received the most recent ACK, to ensure we include the full time the
 * network needs to deliver all in-flight packets. If there are no packets
 * in flight yet, then we know that any ACKs after now indicate that the
 * network was able to deliver those packets completely in the sampling
 * interval between now and the next ACK." (Linux, tcp_rate_skb_sent).
 * idle: nothing was in flight before this record. */
void tcp_rate_sent(struct ust_tcb *t, struct tcp_sent *r, bool idle, ust_time now)
{
	if (idle) {
		t->first_tx_time = now;
		t->delivered_time = now;
	}
	r->first_tx_time = t->first_tx_time;
	r->delivered_time = t->delivered_time;
	r->delivered = t->delivered;
	r->app_limited = t->app_limited != 0;
	/* BBRv3's (tcp_bbr3.c) loss rate of a flight: what was in flight with it, and
	 * how much was lost before it (draft-ietf-ccwg-bbr §4.1.2.2). */
	r->tx_in_flight = tcp_packets_in_flight(t);
	r->lost = (uint32_t)t->lost;
	r->flags &= (uint8_t)~TCP_SENT_RATE_USED;
}

/* Of the records one ACK delivers, the most recently sent one gives the
 * sample: its snapshot is the interval's start (Linux's
 * tcp_rate_skb_delivered). A SACKed record has given its sample and is
 * not used again when the cumulative ACK passes it. */
void tcp_rate_delivered(struct ust_tcb *t, struct tcp_sent *r, struct tcp_rate_acc *acc)
{
	struct tcp_rate_sample *rs = acc->rs;

	if (r->flags & TCP_SENT_RATE_USED)
		return;
	if (!acc->have || r->xmit_time > t->first_tx_time ||
	    (r->xmit_time == t->first_tx_time && seq_gt(r->end, acc->last_end_seq))) {
		acc->have = true;
		rs->prior_delivered = r->delivered;
		rs->prior_time = r->delivered_time;
		rs->is_app_limited = r->app_limited;
		rs->is_retrans = (r->flags & (TCP_SENT_RETRANS | TCP_SENT_EVER_RETRANS)) != 0;
		rs->tx_in_flight = r->tx_in_flight;
		rs->prior_lost = r->lost;
		acc->last_end_seq = r->end;
		t->first_tx_time = r->xmit_time;
		/* The send phase of this window. */
		acc->snd_interval = r->xmit_time - r->first_tx_time;
	}
	if (r->flags & TCP_SENT_SACKED)
		r->flags |= TCP_SENT_RATE_USED;
}

/* After the ACK (Linux's tcp_rate_gen): the connection's delivery state
 * moves on, and the sample is the segments delivered since the snapshot
 * over the longer of the send and the ACK phases. None when no record
 * with a snapshot was delivered, or when the interval is shorter than the
 * least RTT (an ACK compressed or a retransmission acknowledged at once:
 * the rate would be overestimated). */
void tcp_rate_gen(struct ust_tcb *t, uint32_t delivered, uint32_t lost, struct tcp_rate_acc *acc,
		  ust_time now)
{
	struct tcp_rate_sample *rs = acc->rs;
	ust_time ack_interval;

	/* The application-limited phase ends once its data is delivered. */
	if (t->app_limited && t->delivered > t->app_limited)
		t->app_limited = 0;
	if (delivered)
		t->delivered_time = now;
	rs->acked_sacked = delivered;
	rs->losses = lost;
	if (!acc->have) {
		rs->delivered = -1;
		rs->interval = 0;
		return;
	}
	rs->delivered = (int64_t)(t->delivered - rs->prior_delivered);
	rs->lost = (uint32_t)t->lost - rs->prior_lost;
	ack_interval = now - rs->prior_time;
	rs->interval = acc->snd_interval > ack_interval ? acc->snd_interval : ack_interval;
	if (rs->interval < tcp_min_rtt(t)) {
		rs->interval = 0;
		return;
	}
	if (!rs->interval)
		return;
	/* The latest sample not limited by the application, or the
	 * fastest one that is (TCP_INFO's delivery rate). */
	if (!rs->is_app_limited ||
	    (uint64_t)rs->delivered * t->rate_interval >= t->rate_delivered * rs->interval) {
		t->rate_delivered = (uint64_t)rs->delivered;
		t->rate_interval = rs->interval;
		t->rate_app_limited = rs->is_app_limited;
	}
}

/* The application queued more data (Linux calls this from sendmsg): if
 * less than a segment was waiting, cwnd was not the limit and every lost
 * segment was resent, the flow was limited by the application, and the
 * samples taken until what is in flight now is delivered say so. */
void tcp_rate_check_app_limited(struct ust_tcb *t)
{
	uint32_t unsent = t->snd_buf_seq + t->sndbuf.len - t->snd_max;

	if (seq_lt(t->snd_buf_seq + t->sndbuf.len, t->snd_max))
		unsent = 0;
	if (unsent < t->mss && tcp_packets_in_flight(t) < t->snd_cwnd &&
	    t->lost_out <= t->retrans_out) {
		t->app_limited = t->delivered + tcp_packets_in_flight(t);
		if (!t->app_limited)
			t->app_limited = 1;
	}
}

/* Kathleen Nichols' windowed min filter, as Linux's lib/minmax.c: the
 * best, second best and third best samples of the window, so that the
 * minimum survives the window moving on. The window is Linux's
 * tcp_min_rtt_wlen, 300 s. */
#define RTT_MIN_WINDOW UST_SEC(300)

void tcp_rtt_min_update(struct ust_tcb *t, ust_time rtt, ust_time now)
{
	struct tcp_min_sample s = { .at = now, .rtt = rtt ? rtt : 1 }, *m = t->rtt_min;
	ust_time dt;

	if (!m[0].rtt || s.rtt <= m[0].rtt || now - m[2].at > RTT_MIN_WINDOW) {
		m[0] = m[1] = m[2] = s; /* a new minimum, or nothing left in the window */
		return;
	}
	if (s.rtt <= m[1].rtt)
		m[1] = m[2] = s;
	else if (s.rtt <= m[2].rtt)
		m[2] = s;
	/* Age the window: a best sample older than the window gives way. */
	dt = now - m[0].at;
	if (dt > RTT_MIN_WINDOW) {
		m[0] = m[1];
		m[1] = m[2];
		m[2] = s;
		if (now - m[0].at > RTT_MIN_WINDOW) {
			m[0] = m[1];
			m[1] = m[2];
			m[2] = s;
		}
	} else if (m[1].at == m[0].at && dt > RTT_MIN_WINDOW / 4) {
		m[2] = m[1] = s;
	} else if (m[2].at == m[1].at && dt > RTT_MIN_WINDOW / 2) {
		m[2] = s;
	}
}
