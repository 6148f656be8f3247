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

/* What goes over: the block's fields of the same name in struct
 * ust_tcp_tw, and the record's. One list, so that export and adoption
 * cannot disagree. */
#define TW_FIELDS(X)                                                                      \
	X(laddr) X(ipv6) X(v6only) X(reuseaddr) X(reuseport) X(port_claimed)             \
	X(iss) X(snd_una) X(snd_nxt) X(snd_max) X(snd_buf_seq) X(mss)                    \
	X(irs) X(rcv_nxt) X(rcv_adv) X(last_ack_sent) X(rcv_wnd_clamp) X(rcv_ssthresh)   \
	X(rcv_mss) X(rcv_seg_mss) X(rcv_wscale) X(ws_ok) X(ts_ok) X(sack_ok)             \
	X(ecn_flags) X(tw_ack_as_socket) X(ts_recent) X(ts_offset) X(ts_recent_stamp)    \
	X(ip_tos) X(ip_ttl) X(ip_pmtudisc) X(ip6_tclass) X(ip6_pmtudisc) X(min_hops)     \
	X(ip6_hops) X(flow_label)
#define TW_RECORD(X) X(initiator) X(nstates) X(bytes_sent) X(bytes_received) X(start)

int ust_tcp_tw_export(const struct ust_tcb *t, struct ust_tcp_tw *tw)
{
	/* A signed one keeps its key, which the record has no room for:
	 * it stays a block, with this stack. */
	if (t->state != UST_TCP_TIME_WAIT || !t->released || tcp_md5_peer(t))
		return -EINVAL;
	*tw = (struct ust_tcp_tw){ .raddr = t->raddr, .lport = t->lport, .rport = t->rport,
				   .deadline = t->timer[UST_TT_TIMEWAIT] };
#define OUT(f) tw->f = t->f;
#define OUT_REC(f) tw->f = t->rec.f;
	TW_FIELDS(OUT)
	TW_RECORD(OUT_REC)
#undef OUT
#undef OUT_REC
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
	tcb_store_state(t, UST_TCP_CLOSED);
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
	/* Held within the bound on TIME-WAITs, not the ceiling on blocks
	 * (the giver keeps what is refused). */
	if (tcp->ntw >= tcp->cfg.max_tw) {
		*err = -ENFILE;
		return NULL;
	}
	t = tcp_tw_block(tcp, tw, now);
	if (!t)
		*err = -ENOBUFS;
	return t;
}

struct ust_tcb *tcp_tw_block(struct ust_tcp *tcp, const struct ust_tcp_tw *tw, ust_time now)
{
	struct ust_tcb *t = tcp_tcb_new_unbounded(tcp, NULL);

	if (!t)
		return NULL;
	tcp_tw_fill(t, tw);
	/* TIME-WAIT as it was: the record's history has it already. */
	tcb_store_state(t, UST_TCP_TIME_WAIT);
	tcp_rehash(t, tw->lport, &tw->raddr, tw->rport);
	tcp_timer_set(t, UST_TT_TIMEWAIT, tw->deadline > now ? tw->deadline : now);
	return t;
}

void tcp_tw_fill(struct ust_tcb *t, const struct ust_tcp_tw *tw)
{
	t->released = true;
	t->fin_queued = t->fin_rcvd = true; /* both FINs are behind it */
#define IN(f) t->f = tw->f;
#define IN_REC(f) t->rec.f = tw->f;
	TW_FIELDS(IN)
	TW_RECORD(IN_REC)
#undef IN
#undef IN_REC
	memcpy(t->rec.states, tw->states, sizeof(t->rec.states));
	t->copied_seq = tw->rcv_nxt;
	t->lport = tw->lport;
	t->raddr = tw->raddr;
	t->rport = tw->rport;
}
