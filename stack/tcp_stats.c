/* TCP_INFO's counters that take more than an increment where the event
 * happens: Linux's chronograph of busy and limited time (tcp_chrono_start,
 * tcp_chrono_stop), the runs of retransmission timeouts
 * (tcp_update_rto_stats, tcp_update_rto_time), and the pacing rate Linux
 * reports for a flow no algorithm paces (tcp_update_pacing_rate). */
#include "tcp_impl.h"

/* The kind that runs now takes over (the time so far goes to the old). */
static void chrono_set(struct ust_tcb *t, enum tcp_chrono type, ust_time now)
{
	struct tcp_stats *s = &t->stats;

	if (s->chrono_type != TCP_CHRONO_UNSPEC)
		s->chrono_stat[s->chrono_type - 1] += now - s->chrono_start;
	s->chrono_start = now;
	s->chrono_type = (uint8_t)type;
}

void tcp_chrono_start(struct ust_tcb *t, enum tcp_chrono type, ust_time now)
{
	/* "If there are multiple conditions worthy of tracking in a
	 * chronograph then the highest priority enum takes precedence over
	 * the other conditions." (Linux) */
	if (type > t->stats.chrono_type)
		chrono_set(t, type, now);
}

void tcp_chrono_stop(struct ust_tcb *t, enum tcp_chrono type, ust_time now)
{
	/* Nothing left to send or acknowledge: not busy at all. Else only
	 * the condition being timed stops, and it is busy again. */
	if (!t->sndbuf.len && t->snd_una == t->snd_max)
		chrono_set(t, TCP_CHRONO_UNSPEC, now);
	else if (type == t->stats.chrono_type)
		chrono_set(t, TCP_CHRONO_BUSY, now);
}

void tcp_rto_stats(struct ust_tcb *t, ust_time now)
{
	struct tcp_stats *s = &t->stats;

	if (!s->in_rto_run) {
		s->total_rto_recoveries++;
		s->rto_stamp = now;
		s->in_rto_run = true;
	}
	s->total_rto++;
}

void tcp_rto_run_over(struct ust_tcb *t, ust_time now)
{
	struct tcp_stats *s = &t->stats;

	if (s->in_rto_run) {
		s->total_rto_time += (uint32_t)((now - s->rto_stamp) / 1000);
		s->in_rto_run = false;
	}
}

/* Linux sets sk_pacing_rate on every ACK, paced or not: 200% of cwnd per
 * SRTT in slow start (below half ssthresh), 120% after
 * (tcp_pacing_ss_ratio, tcp_pacing_ca_ratio), capped by
 * SO_MAX_PACING_RATE (tcp_update_pacing_rate). */
uint64_t tcp_cwnd_pacing_rate(const struct ust_tcb *t)
{
	uint64_t segs = t->snd_cwnd > t->packets_out ? t->snd_cwnd : t->packets_out;
	uint64_t ratio = t->snd_cwnd < t->snd_ssthresh / 2 ? 200 : 120;
	uint64_t rate = UINT64_MAX; /* Linux's ~0: not set yet */

	if (t->srtt)
		rate = (uint64_t)t->mss * segs * ratio * 10000u / (uint64_t)t->srtt;
	return rate < t->max_pacing_rate ? rate : t->max_pacing_rate;
}

static uint64_t reported_pacing_rate(const struct ust_tcb *t)
{
	return t->pacing_rate ? t->pacing_rate : tcp_cwnd_pacing_rate(t);
}

static ust_time ago(ust_time now, ust_time then)
{
	return now > then ? now - then : 0;
}

void tcp_stats_report(const struct ust_tcb *t, struct ust_tcp_status *s, ust_time now)
{
	const struct tcp_stats *st = &t->stats;
	ust_time chrono[3];

	s->ts_ok = t->ts_ok;
	s->sack_ok = t->sack_ok;
	s->ws_ok = t->ws_ok;
	s->ecn_ok = t->ecn_flags & UST_TCP_ECN_OK;
	s->ecn_seen = t->ecn_flags & UST_TCP_ECN_SEEN;
	s->snd_wscale = t->snd_wscale;
	s->rcv_wscale = t->rcv_wscale;
	/* Linux: min(ato, tcp_delack_max) */
	s->ato = t->ack_ato < TCP_DELACK_MAX ? t->ack_ato : TCP_DELACK_MAX;
	s->since_data_sent = ago(now, t->lsndtime);
	s->since_data_recv = ago(now, t->ack_lrcvtime);
	s->since_ack_recv = ago(now, t->last_rcv);
	s->rcv_seg_mss = t->rcv_seg_mss;
	/* Linux's advmss: what we announced, less the timestamps' room */
	s->advmss = t->rcv_mss - (t->ts_ok ? 12u : 0u);
	/* Linux's icsk_pmtu_cookie: the link's, or what packet too big or
	 * fragmentation needed left (path_mtu_lower). */
	s->pmtu = t->pmtu ? t->pmtu : tcb_stack(t)->nif.mtu;
	s->rcv_ssthresh = t->rcv_ssthresh;
	s->rcv_space = t->rcvq_space;
	s->rcv_rtt = t->rcv_rtt;
	s->snd_wnd = t->snd_wnd;
	s->rcv_wnd = t->rcv_adv - t->last_ack_sent;
	/* Linux: write_seq - snd_nxt, never below 0 */
	s->notsent = ust_tcp_snd_notsent(t);
	s->info_pacing_rate = reported_pacing_rate(t);
	s->max_pacing_rate = t->max_pacing_rate;
	/* Linux's tcp_compute_delivery_rate: the best recent sample's
	 * segments in bytes per second. */
	s->delivery_rate = t->rate_interval
				   ? t->rate_delivered * t->mss * 1000000u / (uint64_t)t->rate_interval : 0;
	s->delivery_rate_app_limited = t->rate_app_limited;
	if (t->state == UST_TCP_LISTEN) {
		s->acceptq = t->acceptq_len;
		s->backlog_max = t->synq_max;
	}
	if (t->state == UST_TCP_LISTEN || (t->state == UST_TCP_CLOSED && !t->rec.nstates)) {
		/* Before connect(), as Linux's tcp_get_info reads a socket no
		 * route was looked up for: mss_cache 536 (TCP_MAXSEG does not
		 * change it: measured on 6.18, 536 after TCP_MAXSEG 1000), no
		 * path MTU, no MSS announced yet. A connection TCP closed
		 * keeps its own (the final status, relay.c conn_died). */
		s->mss = TCP_MSS_DEFAULT;
		s->pmtu = 0;
		s->advmss = 0;
	}
	for (unsigned i = 0; i < 3; i++)
		chrono[i] = st->chrono_stat[i];
	if (st->chrono_type != TCP_CHRONO_UNSPEC)
		chrono[st->chrono_type - 1] += ago(now, st->chrono_start);
	s->busy_time = chrono[0] + chrono[1] + chrono[2];
	s->rwnd_limited = chrono[1];
	s->sndbuf_limited = chrono[2];
	s->stats = *st;
	if (st->in_rto_run)
		s->stats.total_rto_time += (uint32_t)(ago(now, st->rto_stamp) / 1000);
}
