/* A TIME-WAIT handed from one stack to another on the same address
 * (tcp.h, "a TIME-WAIT handed to another stack"): the giver exports it and
 * forgets it, the taker adopts it. Only what TIME-WAIT reads goes over:
 * tcp_time_wait_input (RCV.NXT, the timestamps for PAWS and RFC 6191, the
 * sequence numbers a reopening SYN's ISN grows from), the ACK it sends
 * (tcp_output.c: the window from the receive side's state, the options,
 * the IP header of a timewait socket) and the close record. The rest of a
 * control block (buffers, the scoreboard, congestion control) is empty or
 * unused there. */
#include <errno.h>
#include <string.h>

#include "tcp_impl.h"

int ust_tcp_tw_export(const struct ust_tcb *t, struct ust_tcp_tw *tw)
{
	if (t->state != UST_TCP_TIME_WAIT || !t->released)
		return -EINVAL;
	*tw = (struct ust_tcp_tw){
		.laddr = t->laddr, .raddr = t->raddr, .lport = t->lport, .rport = t->rport,
		.ipv6 = t->ipv6, .v6only = t->v6only, .reuseaddr = t->reuseaddr,
		.reuseport = t->reuseport, .port_claimed = t->port_claimed,
		.iss = t->iss, .snd_una = t->snd_una, .snd_nxt = t->snd_nxt, .snd_max = t->snd_max,
		.snd_buf_seq = t->snd_buf_seq, .mss = t->mss, .irs = t->irs, .rcv_nxt = t->rcv_nxt, .rcv_adv = t->rcv_adv, .last_ack_sent = t->last_ack_sent,
		.rcv_wnd_clamp = t->rcv_wnd_clamp, .rcv_ssthresh = t->rcv_ssthresh,
		.rcv_mss = t->rcv_mss, .rcv_seg_mss = t->rcv_seg_mss, .rcv_wscale = t->rcv_wscale,
		.ws_ok = t->ws_ok, .ts_ok = t->ts_ok, .sack_ok = t->sack_ok, .ecn_flags = t->ecn_flags,
		.tw_ack_as_socket = t->tw_ack_as_socket,
		.ts_recent = t->ts_recent, .ts_offset = t->ts_offset, .ts_recent_stamp = t->ts_recent_stamp,
		.ip_tos = t->ip_tos, .ip_ttl = t->ip_ttl, .ip_pmtudisc = t->ip_pmtudisc,
		.ip6_tclass = t->ip6_tclass, .ip6_pmtudisc = t->ip6_pmtudisc, .min_hops = t->min_hops,
		.ip6_hops = t->ip6_hops, .flow_label = t->flow_label,
		.deadline = t->timer[UST_TT_TIMEWAIT],
		.initiator = (uint8_t)t->rec.initiator, .nstates = t->rec.nstates,
		.bytes_sent = t->rec.bytes_sent, .bytes_received = t->rec.bytes_received,
		.start = t->rec.start,
	};
	memcpy(tw->states, t->rec.states, sizeof(tw->states));
	return 0;
}

uint32_t ust_tcp_tag(const struct ust_tcb *t)
{
	return t->tag;
}

void ust_tcp_set_tag(struct ust_tcb *t, uint32_t tag)
{
	t->tag = tag;
}

struct ust_tcb *ust_tcp_find(struct ust_tcp *tcp, const struct ust_ip6 *laddr, uint16_t lport,
			     const struct ust_ip6 *raddr, uint16_t rport)
{
	return tcp_lookup(tcp, laddr, lport, raddr, rport);
}

void ust_tcp_tw_forget(struct ust_tcb *t)
{
	/* Straight to CLOSED, past tcp_set_state's record and tcp_finish's
	 * close callback and event: the connection lives on elsewhere. */
	t->state = UST_TCP_CLOSED;
	tcp_maybe_free(t);
}

void ust_tcp_tw_claimed(struct ust_tcb *t)
{
	t->port_claimed = true;
}

struct ust_tcb *ust_tcp_tw_adopt(struct ust_tcp *tcp, const struct ust_tcp_tw *tw, ust_time now, int *err)
{
	struct ust_tcb *t;

	*err = 0;
	if (!tw->lport || !tw->rport || tw->nstates > UST_TCP_HISTORY_MAX ||
	    tw->rcv_wscale > TCP_MAX_WSCALE || tw->initiator > UST_INIT_SIMULTANEOUS) {
		*err = -EINVAL;
		return NULL;
	}
	if (tcp_lookup(tcp, &tw->laddr, tw->lport, &tw->raddr, tw->rport)) {
		*err = -EADDRINUSE;
		return NULL;
	}
	t = tcp_tcb_new(tcp, NULL);
	if (!t) {
		*err = tcp_at_ceiling(tcp) ? -ENFILE : -ENOBUFS;
		return NULL;
	}
	t->released = true;
	t->fin_queued = t->fin_rcvd = true; /* both FINs are behind it */
	t->ipv6 = tw->ipv6;
	t->v6only = tw->v6only;
	t->laddr = tw->laddr;
	t->reuseaddr = tw->reuseaddr;
	t->reuseport = tw->reuseport;
	t->port_claimed = tw->port_claimed;
	t->iss = tw->iss;
	t->snd_una = tw->snd_una;
	t->snd_nxt = tw->snd_nxt;
	t->snd_max = tw->snd_max;
	t->snd_buf_seq = tw->snd_buf_seq;
	t->mss = tw->mss;
	t->irs = tw->irs;
	t->rcv_nxt = tw->rcv_nxt;
	t->copied_seq = tw->rcv_nxt;
	t->rcv_adv = tw->rcv_adv;
	t->last_ack_sent = tw->last_ack_sent;
	t->rcv_wnd_clamp = tw->rcv_wnd_clamp;
	t->rcv_ssthresh = tw->rcv_ssthresh;
	t->rcv_mss = tw->rcv_mss;
	t->rcv_seg_mss = tw->rcv_seg_mss;
	t->rcv_wscale = tw->rcv_wscale;
	t->ws_ok = tw->ws_ok;
	t->ts_ok = tw->ts_ok;
	t->sack_ok = tw->sack_ok;
	t->ecn_flags = tw->ecn_flags;
	t->tw_ack_as_socket = tw->tw_ack_as_socket;
	t->ts_recent = tw->ts_recent;
	t->ts_offset = tw->ts_offset;
	t->ts_recent_stamp = tw->ts_recent_stamp;
	t->ip_tos = tw->ip_tos;
	t->ip_ttl = tw->ip_ttl;
	t->ip_pmtudisc = tw->ip_pmtudisc;
	t->ip6_tclass = tw->ip6_tclass;
	t->ip6_pmtudisc = tw->ip6_pmtudisc;
	t->min_hops = tw->min_hops;
	t->ip6_hops = tw->ip6_hops;
	t->flow_label = tw->flow_label;
	t->rec.initiator = (enum ust_tcp_initiator)tw->initiator;
	t->rec.nstates = tw->nstates;
	memcpy(t->rec.states, tw->states, sizeof(t->rec.states));
	t->rec.bytes_sent = tw->bytes_sent;
	t->rec.bytes_received = tw->bytes_received;
	t->rec.start = tw->start;
	/* TIME-WAIT as it was: the record's history has it already. */
	t->state = UST_TCP_TIME_WAIT;
	tcp_rehash(t, tw->lport, &tw->raddr, tw->rport);
	tcp_timer_set(t, UST_TT_TIMEWAIT, tw->deadline > now ? tw->deadline : now);
	return t;
}
