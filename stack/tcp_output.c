/* Building and sending segments: data as the windows allow, ACKs, SYNs,
 * RSTs, probes. */
#include <errno.h>
#include <string.h>

#include "csum.h"
#include "tcp_impl.h"

/* How output_one may send a segment (see there). */
enum out_mode { OUT_RULES, OUT_WINDOW_PROBE, OUT_LOSS_PROBE };

static bool output_one(struct ust_tcb *t, enum out_mode mode, ust_time now);
static void cwnd_validate(struct ust_tcb *t, bool sent, ust_time now);

/* One segment to put on the wire. */
struct seg_out {
	struct ust_ip6 src, dst;     /* IPv4 mapped */
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	struct ust_ip_hdr ip;        /* TOS (with the ECN field), TTL, DF, IP_OPTIONS */
	uint8_t tclass, hops;        /* over IPv6: the traffic class (with the ECN field), hop limit */
	uint32_t flow;               /* and the flow label */
	const struct ust_ip6_ext *ext6; /* and the extension headers */
	struct ust_ip4_opts echo;    /* ip.opts of a timewait socket's answer */
	bool mute;                   /* an answer Linux would not send */
	uint16_t wnd;
	const uint8_t *opts;
	unsigned optlen;
	uint16_t up;                 /* the urgent pointer (with UST_TH_URG) */
	const struct ust_ring *data; /* payload from this ring… */
	uint32_t data_off, len;      /* …at this offset */
	const struct ust_tcp_md5_key *md5; /* signed with it (the options hold its place) */
	uint16_t pmtu;               /* the path's MTU where lower than the link's; 0: the link's */
};

static int emit(struct ust_stack *st, const struct seg_out *o, ust_time now)
{
	unsigned hlen = UST_TCP_HLEN + o->optlen;
	bool v4 = ust_ip6_is_v4mapped(&o->dst);
	unsigned ext = v4 ? (o->ip.opts ? o->ip.opts->len : 0) : (o->ext6 ? o->ext6->len : 0);
	struct ust_pkt *p;
	uint8_t *h;
	uint32_t sum;

	if (o->mute)
		return 0;
	/* Sticky IPv6 headers may fill the MTU (four of 2048 bytes each, or
	 * a few of them and the least MSS, which a packet too big may have
	 * made 48): Linux's ip6_xmit sends no datagram longer than the path's
	 * MTU (EMSGSIZE), so a SYN waits out its retries and data the persist
	 * timer's probes, as after any failed send. The buffer has the link
	 * MTU's room and no more. IPv4's options, 40 bytes at most, always
	 * leave room for the MSS. */
	if ((v4 ? UST_IPV4_HLEN : UST_IPV6_HLEN) + ext + hlen + o->len >
	    (o->pmtu && o->pmtu < st->pool.mtu ? o->pmtu : st->pool.mtu)) {
		st->ctr.drop[UST_DROP_TX_TOO_BIG]++;
		return -EMSGSIZE;
	}
	p = ust_pkt_alloc(&st->pool);
	if (!p) {
		st->ctr.drop[UST_DROP_TX_NO_BUFFER]++;
		return -ENOBUFS;
	}
	/* IP options or extension headers go in front: the headroom has
	 * room for the link's and the network's fixed headers only, and the
	 * MSS left their length free at the end (tcp_ext_hlen). */
	p->data += ext;
	h = p->data;
	ust_put16(h, o->sport);
	ust_put16(h + 2, o->dport);
	ust_put32(h + 4, o->seq);
	ust_put32(h + 8, o->ack);
	h[12] = (uint8_t)(hlen / 4) << 4;
	h[13] = o->flags;
	ust_put16(h + 14, o->wnd);
	ust_put16(h + 16, 0);
	ust_put16(h + 18, o->up);
	if (o->optlen)
		memcpy(h + UST_TCP_HLEN, o->opts, o->optlen);
	if (o->len)
		ust_ring_peek(o->data, o->data_off, h + hlen, o->len);
	p->len = hlen + o->len;
	if (o->md5)
		tcp_md5_sign(o->md5, &o->src, &o->dst, h, p->len);
	sum = v4 ? ust_csum_pseudo(ust_ip6_to_v4(&o->src), ust_ip6_to_v4(&o->dst), UST_IPPROTO_TCP, (uint16_t)p->len)
		 : ust_csum_pseudo6(&o->src, &o->dst, UST_IPPROTO_TCP, p->len);
	if (st->nif.tx_csum_partial) {
		/* The link completes it, or has the kernel do it: a segment
		 * of a GSO run needs none of its own (the kernel sums each
		 * segment it cuts), one alone goes with NEEDS_CSUM. Summing
		 * every payload here was 13% of a bulk sender's CPU. */
		ust_put16(h + 16, (uint16_t)~ust_csum_fold(sum));
		p->csum_l4 = h;
	} else {
		ust_put16(h + 16, ust_csum_fold(ust_csum_add(sum, h, p->len)));
	}
	st->ctr.event[UST_EV_TCP_SEGS_OUT]++;
	if (o->flags & UST_TH_RST)
		st->ctr.event[UST_EV_TCP_RST_OUT]++;
	if (v4)
		return ust_ip_send(st, p, ust_ip6_to_v4(&o->dst), UST_IPPROTO_TCP, &o->ip, now);
	/* IPv6 has no DF (nobody fragments on the way, RFC 8200 §5). */
	return ust_ip6_send_ext(st, p, &o->src, &o->dst, UST_IPPROTO_TCP, o->tclass, o->hops, o->flow, o->ext6,
				now);
}

/* The connection's flow label, made once (tcp_flow_label). */
static uint32_t tcb_flow_label(struct ust_tcb *t)
{
	if (t->flow_label & UST_TCP_FLOW_OFF)
		return 0;
	if (!(t->flow_label & UST_TCP_FLOW_SET))
		t->flow_label |= UST_TCP_FLOW_SET | tcp_flow_label(t->tcp, &t->laddr, t->lport, &t->raddr, t->rport);
	return t->flow_label & UST_IPV6_FLOW_MASK;
}

/* The IP header the socket asked for (IP_TOS, IP_TTL, IP_MTU_DISCOVER;
 * over IPv6 IPV6_TCLASS, IPV6_UNICAST_HOPS and the flow label), ECN field
 * still clear. Linux's timewait socket (TIME-WAIT after the ACK of the
 * peer's FIN, and an orphan's FIN-WAIT-2) keeps the TOS (tw_tos,
 * tw_tclass) and the flow label (tw_txhash) but not the TTL, hop limit or
 * PMTU mode (measured on Linux 6.18, TTL 17 and IP_PMTUDISC_DONT: the ACK
 * of the peer's FIN goes with TTL 17 without DF from a socket the program
 * holds, with TTL 64 and DF from one it closed). The socket's IP options
 * and IPv6 extension headers go too, but not from a timewait socket,
 * which answers a segment with the echo of its IPv4 options (tcp_ipext.c). */
static void tcb_ip_hdr(struct ust_tcb *t, struct seg_out *o)
{
	o->ip = (struct ust_ip_hdr){ .tos = t->ip_tos, .ttl = UST_IP_TTL_DEFAULT, .df = true };
	t->route_reset = false; /* routed again */
	o->tclass = t->ip6_tclass;
	o->hops = UST_IPV6_HOP_LIMIT_DEFAULT;
	if (!ust_ip6_is_v4mapped(&t->raddr))
		o->flow = tcb_flow_label(t);
	if (t->state == UST_TCP_TIME_WAIT && t->tw_ack_as_socket) {
		t->tw_ack_as_socket = false;
	} else if (t->state == UST_TCP_TIME_WAIT ||
		   (t->state == UST_TCP_FIN_WAIT_2 && t->released)) {
		/* Its answer to a segment echoes the segment's IP
		 * options, as Linux's ip_send_unicast_reply. */
		const struct ust_tcp_seg *seg = t->tcp->seg_in;

		if (seg && ust_ip6_is_v4mapped(&t->raddr) && seg->sport == t->rport && seg->dport == t->lport &&
		    ust_ip6_eq(&seg->src, &t->raddr)) {
			int echo = tcp_ip4_echo(t->tcp, seg, &o->echo);
			o->ip.opts = echo > 0 ? &o->echo : NULL;
			o->mute = echo < 0;
		}
		return;
	}
	o->ip.opts = t->ip4_opts;
	o->ext6 = t->ip6_ext;
	if (t->ip_ttl)
		o->ip.ttl = t->ip_ttl;
	if (t->ip6_hops != UST_TCP_HOPS_DEFAULT)
		o->hops = (uint8_t)t->ip6_hops;
	/* Linux's ip_dont_fragment (no route here locks its MTU); its
	 * SYN-ACK goes with DF whatever the listener's mode (measured). */
	o->ip.df = t->ip_pmtudisc == UST_PMTUDISC_WANT || t->ip_pmtudisc == UST_PMTUDISC_DO ||
		   t->state == UST_TCP_SYN_RECEIVED;
}

/* The segment from a control block, with the window, options and ECN
 * (tcp_ecn_output) filled in. Sending an ACK settles what was owed
 * (tcp_ack_sent); sending data may show the connection is interactive
 * (tcp_data_sent). */
static int tcb_emit(struct ust_tcb *t, uint32_t seq, uint8_t flags, uint32_t off, uint32_t len,
		    ust_time now)
{
	uint8_t opts[UST_TCP_OPT_MAX], ecn;
	struct seg_out o = {
		.src = t->laddr, .dst = t->raddr, .sport = t->lport, .dport = t->rport,
		.seq = seq, .flags = flags, .opts = opts, .data = &t->sndbuf,
		.data_off = off, .len = len, .md5 = tcp_md5_peer(t),
	};
	/* What Linux sends from a timewait socket or a request socket
	 * (tcp_v4_send_ack: ACKs) has its signature after the timestamps. */
	bool ts_first = !(flags & (UST_TH_SYN | UST_TH_RST)) &&
			((t->state == UST_TCP_TIME_WAIT && !t->tw_ack_as_socket) ||
			 tcb_fin_wait_2_orphan(t) || (t->state == UST_TCP_SYN_RECEIVED && t->listener));
	uint32_t wnd;

	tcb_ip_hdr(t, &o);
	o.pmtu = t->pmtu;
	ecn = tcp_ecn_output(t, seq, len, &o.flags);
	o.ip.tos |= ecn;
	o.tclass |= ecn;
	if (!(flags & UST_TH_SYN))
		t->ip_ecn_sent = ecn;
	o.up = tcp_urg_output(t, seq, &o.flags);
	o.optlen = tcp_build_opts(t, o.md5, ts_first, flags, now, opts);
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
	if (len) {
		t->lsndtime = now;
		tcp_data_sent(t, now);
		t->stats.data_segs_out++;
		t->stats.bytes_sent += len;
	}
	t->stats.segs_out++;
	return emit(tcb_stack(t), &o, now);
}

/* The sequence number of a segment without data (an ACK, a RST) that
 * would start at seq (Linux's tcp_acceptable_seq): seq while it lies
 * within the peer's window, or beyond it by less than a unit of our own
 * window scale (Linux's test); else the window's right edge. A peer
 * whose window shrank below what is in flight drops a segment that
 * starts beyond it, its ACK with it (tcp_sequence), and a connection
 * whose ACKs all go unheard stalls: both sides wait. */
static uint32_t acceptable_seq(const struct ust_tcb *t, uint32_t seq)
{
	uint32_t end = t->snd_una + t->snd_wnd;

	if (!seq_gt(seq, end) || (t->ws_ok && seq - end < (1u << t->rcv_wscale)))
		return seq;
	return end;
}

void tcp_send_ack(struct ust_tcb *t, ust_time now)
{
	tcb_emit(t, acceptable_seq(t, t->snd_nxt), UST_TH_ACK, 0, 0, now);
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

void tcp_send_synack_stateless(struct ust_tcb *t, ust_time now)
{
	tcb_emit(t, t->iss, UST_TH_SYN | UST_TH_ACK, 0, 0, now);
}

void tcp_send_rst(struct ust_tcb *t, ust_time now)
{
	tcb_emit(t, acceptable_seq(t, t->snd_max), UST_TH_RST | UST_TH_ACK, 0, 0, now);
}

/* A RST signed with md5 carries that option alone (tcp_v4_send_reset). */
static void rst_reply(struct ust_tcp *tcp, const struct ust_tcp_seg *seg, uint32_t flow,
		      const struct ust_tcp_md5_key *md5, ust_time now)
{
	uint8_t opts[TCP_MD5_OPT_LEN];
	struct ust_ip4_opts echo;
	struct seg_out o = {
		.src = seg->dst, .dst = seg->src, .sport = seg->dport, .dport = seg->sport,
		.ip = { .ttl = UST_IP_TTL_DEFAULT, .df = true }, /* Linux's control socket's */
		.hops = UST_IPV6_HOP_LIMIT_DEFAULT,
		.flow = flow,
		.md5 = md5,
	};

	if (seg->flags & UST_TH_RST)
		return; /* never answer a RST */
	/* Linux's ip_send_unicast_reply answers with the echo of the
	 * segment's IP options, or not at all. */
	switch (tcp_ip4_echo(tcp, seg, &echo)) {
	case -1: return;
	case 1: o.ip.opts = &echo; break;
	}
	if (md5) {
		tcp_md5_put_opt(opts);
		o.opts = opts;
		o.optlen = sizeof(opts);
	}
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

/* Linux's control socket labels its answer with the flow's hash
 * (ip6_make_flowlabel). */
static uint32_t seg_flow_label(struct ust_tcp *tcp, const struct ust_tcp_seg *seg)
{
	return ust_ip6_is_v4mapped(&seg->src) ? 0 : tcp_flow_label(tcp, &seg->dst, seg->dport, &seg->src, seg->sport);
}

void tcp_send_rst_reply(struct ust_tcp *tcp, const struct ust_tcp_seg *seg, ust_time now)
{
	bool answer;
	const struct ust_tcp_md5_key *md5 = tcp_md5_rst_key(tcp, seg, &answer);

	if (answer)
		rst_reply(tcp, seg, seg_flow_label(tcp, seg), md5, now);
}

/* A listener's answer, or its half-open child's (Linux's request sock
 * answers through its listener): signed with the key for the peer. */
void tcp_send_rst_reply_listener(struct ust_tcb *l, const struct ust_tcp_seg *seg, ust_time now)
{
	rst_reply(l->tcp, seg, seg_flow_label(l->tcp, seg), tcp_md5_lookup(l, &seg->src), now);
}

/* The answer to a connection's segment, with the connection's label
 * (tcp_v6_send_reset: sk_txhash). */
static void rst_reply_tcb(struct ust_tcb *t, const struct ust_tcp_seg *seg, const struct ust_tcp_md5_key *md5,
			  ust_time now)
{
	if (ust_ip6_is_v4mapped(&seg->src))
		rst_reply(t->tcp, seg, 0, md5, now);
	else
		rst_reply(t->tcp, seg, tcb_flow_label(t), md5, now);
}

/* Signed with the connection's key for the peer, as Linux's reset from a
 * full socket. */
void tcp_send_rst_reply_tcb(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	rst_reply_tcb(t, seg, tcp_md5_lookup(t, &seg->src), now);
}

/* A timewait socket's (an orphan's FIN-WAIT-2) is signed as one for no
 * connection: tcp_v4_send_reset does not read tw_md5_key. */
void tcp_send_rst_reply_tw(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	bool answer;
	const struct ust_tcp_md5_key *md5 = tcp_md5_rst_key(t->tcp, seg, &answer);

	if (answer)
		rst_reply_tcb(t, seg, md5, now);
}

bool tcp_push_window(struct ust_tcb *t, ust_time now)
{
	return t->snd_wnd && output_one(t, OUT_WINDOW_PROBE, now);
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

/* ---- pacing (Linux's internal pacing, without the fq qdisc) ---- */

void tcp_update_pacing_rate(struct ust_tcb *t)
{
	uint64_t rate;

	if (!t->pacing_needed || t->cc->cong_control)
		return;
	rate = tcp_cwnd_pacing_rate(t);
	/* ~0 paces nothing (Linux's tcp_update_skb_after_send). */
	t->pacing_rate = rate == UINT64_MAX ? 0 : rate;
}

/* "if (ulval != ~0UL) cmpxchg(&sk->sk_pacing_status, SK_PACING_NONE,
 * SK_PACING_NEEDED); ... if (ulval < pacing_rate) sk_pacing_rate = ulval"
 * (sock_setsockopt, SO_MAX_PACING_RATE). Linux paces such a flow in TCP
 * itself (tcp_needs_internal_pacing) where no fq qdisc does. */
void ust_tcp_set_max_pacing_rate(struct ust_tcb *t, uint64_t rate)
{
	t->max_pacing_rate = rate;
	if (rate != UINT64_MAX)
		t->pacing_needed = true;
	if (t->cc->cong_control) {
		if (t->pacing_rate > rate)
			t->pacing_rate = rate;
		return;
	}
	tcp_update_pacing_rate(t);
}

uint64_t ust_tcp_max_pacing_rate(const struct ust_tcb *t)
{
	return t->max_pacing_rate;
}

/* Linux's tcp_tso_autosize: a burst carries about 1 ms of data at the
 * pacing rate (sk_pacing_shift 10), at least 2 segments (tcp_min_tso_segs),
 * because the stack's loop wakes at millisecond granularity (epoll), as
 * Linux's sender would build one TSO frame. Linux caps a burst at the
 * largest GSO frame (64 KB); ours are MTU-sized frames, and that cap with
 * a timer of 1 ms would hold the rate to 64 KB per ms: no cap here. */
uint32_t tcp_pacing_burst(const struct ust_tcb *t)
{
	uint64_t segs = (t->pacing_rate >> 10) / (t->mss ? t->mss : TCP_MSS_DEFAULT);

	if (segs < 2)
		return 2;
	return segs < UINT16_MAX ? (uint32_t)segs : UINT16_MAX;
}

/* May a burst leave now (Linux's tcp_pacing_check)? If its departure time
 * is still ahead, the pacing timer is set for it. A burst that leaves
 * late may make up some of the delay (below); the departure time never
 * lags the clock (EDT: max(next, now)). */
static bool pacing_ready(struct ust_tcb *t, ust_time now)
{
	uint64_t now_ns = (uint64_t)now * 1000;

	if (!t->pacing_rate)
		return true;
	if (t->pacing_next_ns > now_ns) {
		tcp_timer_set(t, UST_TT_PACE, (ust_time)((t->pacing_next_ns + 999) / 1000));
		return false;
	}
	t->pacing_credit_ns = now_ns - t->pacing_next_ns;
	t->pacing_next_ns = now_ns;
	return true;
}

/* How late a burst may leave and still make up all the lost time at
 * once: two of the loop's millisecond ticks. */
#define PACING_CATCH_UP_MAX UST_MS(2)

/* Segments the burst that leaves now may carry: tcp_pacing_burst, and
 * as many more (up to another burst) as the time it left late covers at
 * the rate, rounded up. Why: Linux's pacing timer is an hrtimer, its
 * bursts leave on time, and its credit rule (pacing_sent: at most half a
 * burst's length made up) only absorbs jitter; the stack's loop wakes
 * with epoll's millisecond granularity, so a burst due in 0.7 ms leaves
 * after 1 ms or more, and at one burst per wake-up the flow got a
 * fraction of its pacing rate (measured: 2-segment bursts due every
 * 0.72 ms at 4 MB/s left every 1.1 to 1.6 ms, half the rate; BBR's
 * Startup saw its delivery rate stop growing and ended at 1.4 MB/s in
 * issue 12's 15%:20ms cells). The clock still moves on by every byte
 * (pacing_sent), so the flow never gets ahead of its rate. A longer delay
 * (idle, or the process descheduled) is not made up: the credit rule
 * alone, as in Linux. */
static uint32_t pacing_quota(const struct ust_tcb *t)
{
	uint32_t burst = tcp_pacing_burst(t), mss = t->mss ? t->mss : TCP_MSS_DEFAULT;
	uint64_t late_segs;

	if (t->pacing_credit_ns > (uint64_t)PACING_CATCH_UP_MAX * 1000)
		return burst;
	late_segs = (t->pacing_credit_ns * t->pacing_rate / 1000000000u + mss - 1) / mss;
	return burst + (uint32_t)(late_segs < burst ? late_segs : burst);
}

/* len bytes left: the next departure is later by their time at the
 * pacing rate, less up to half of it while the burst is making up for
 * leaving late (Linux's tcp_update_skb_after_send: "len_ns -=
 * min_t(u64, len_ns / 2, credit)"). */
static void pacing_sent(struct ust_tcb *t, uint32_t len)
{
	uint64_t len_ns, make_up;

	if (!t->pacing_rate)
		return;
	len_ns = (uint64_t)len * 1000000000u / t->pacing_rate;
	make_up = len_ns / 2 < t->pacing_credit_ns ? len_ns / 2 : t->pacing_credit_ns;
	t->pacing_credit_ns -= make_up;
	t->pacing_next_ns += len_ns - make_up;
}

/* Data left (tcb_emit noted when, for idle restarts): during a
 * reduction PRR counts it, unless it is a tail loss probe's resending
 * (Linux adds to prr_out in tcp_write_xmit and tcp_xmit_retransmit_queue,
 * not in tcp_send_loss_probe's __tcp_retransmit_skb: tests/seg/tlp-cwr.seg);
 * the pacing clock moves on by its length. */
static void data_sent(struct ust_tcb *t, uint32_t len, bool prr)
{
	if (prr && tcp_in_cwnd_reduction(t))
		t->prr_out++;
	pacing_sent(t, len);
}

/* Sends one new segment at SND.NXT if the rules allow; returns whether it
 * did. cwnd counts segments in flight (Linux's tcp_cwnd_test), the peer's
 * window bytes. A window probe (the persist timer pushing into a window
 * too small for the rules) ignores Nagle and silly-window avoidance and
 * sets PSH (Linux's tcp_write_wakeup); a loss probe ignores Nagle and
 * cwnd: the flight of a cwnd-limited sender fills cwnd, and the probe
 * must go all the same (Linux's tcp_write_xmit with push_one == 2, "force
 * out a loss probe pkt"). */
static bool output_one(struct ust_tcb *t, enum out_mode mode, ust_time now)
{
	uint32_t off, avail, usable, len, seg_max;
	bool fin, idle = !t->packets_out, quiet = !tcp_packets_in_flight(t);
	uint8_t flags = UST_TH_ACK;
	struct tcp_sent *r;

	off = t->snd_nxt - t->snd_buf_seq;
	if (seq_lt(t->snd_nxt, t->snd_buf_seq) || off > t->sndbuf.len) {
		/* Only the FIN is at snd_nxt (or beyond: nothing). */
		off = t->sndbuf.len;
	}
	avail = t->sndbuf.len - off;
	if (mode != OUT_LOSS_PROBE && tcp_packets_in_flight(t) >= t->snd_cwnd)
		return false;
	usable = seq_lt(t->snd_nxt, t->snd_una + t->snd_wnd) ? t->snd_una + t->snd_wnd - t->snd_nxt : 0;
	/* t->mss already leaves room for timestamps; SACK blocks and a
	 * signature in this segment take theirs from the payload, as
	 * Linux's tcp_current_mss. */
	seg_max = t->mss - tcp_opt_extra_len(t);
	len = avail < seg_max ? avail : seg_max;
	if (len > usable)
		len = usable;
	fin = t->fin_queued && off + len == t->sndbuf.len && seq_leq(t->snd_nxt, tcb_fin_seq(t)) &&
	      UST_TCP_SENT_FIN(t->state);
	/* The FIN waits its turn behind the data, and for room in the
	 * peer's window for its sequence number, as data does (RFC 9293
	 * §3.8.6.2.1; Linux's tcp_snd_wnd_test counts it): data that fills
	 * the window exactly goes without it. (Linux holds that data back
	 * too where the FIN came while it was unsent, in the same skb; a
	 * FIN that came later waits alone, as here. Measured,
	 * tests/seg/fin-window.seg.) */
	if (fin && (avail > len || !seq_lt(t->snd_nxt + len, t->snd_una + t->snd_wnd)))
		fin = false;
	if (len == 0 && !fin)
		return false;
	/* Urgent data is never held (Linux's tcp_nagle_test). */
	if (mode == OUT_RULES && len < seg_max && len > 0 && !fin && !t->urg_mode) {
		/* TCP_CORK and MSG_MORE: the rest of the segment is coming
		 * (Linux's tcp_nagle_check with TCP_NAGLE_CORK). */
		if (t->cork || t->more)
			return false;
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
	if (len && (off + len == t->sndbuf.len || mode == OUT_WINDOW_PROBE))
		flags |= UST_TH_PSH;
	r = tcp_sb_append(t, t->snd_nxt, t->snd_nxt + len + (fin ? 1 : 0));
	if (!r)
		return false; /* the scoreboard is full: it waits for ACKs */
	if (fin)
		r->flags |= TCP_SENT_FIN;
	/* Linux's tcp_event_data_sent: data leaves with nothing in flight. */
	if (len && quiet)
		tcp_ca_event(t, TCP_CA_EV_TX_START, now);
	if (tcb_emit(t, t->snd_nxt, flags, off, len, now) < 0) {
		tcp_sb_drop_last(t);
		return false;
	}
	r = tcp_sb_at(t, t->packets_out - 1);
	r->xmit_time = now;
	tcp_rate_sent(t, r, idle, now);
	data_sent(t, len, true);
	if (len < seg_max)
		t->snd_sml = t->snd_nxt + len; /* end of the latest small segment */
	t->snd_nxt += len + (fin ? 1 : 0);
	if (seq_gt(t->snd_nxt, t->snd_max))
		t->snd_max = t->snd_nxt;
	rtx_arm(t, now);
	return true;
}

/* Sends record i again (Linux's __tcp_retransmit_skb): not beyond the
 * peer's window unless it is the first, cut to the segment size of now
 * and to what the window has room for (the first whole, as a probe of a
 * closed window): a peer whose window shrank drops a segment that ends
 * beyond it while it holds unread data (Linux 6.x's tcp_sequence).
 * mark: the flags it gets, TCP_SENT_RETRANS (a retransmission in flight
 * for a lost segment) and TCP_SENT_EVER_RETRANS (Karn, undo), or only the
 * latter for a tail loss probe, which resends a segment not known lost. */
static bool retransmit(struct ust_tcb *t, uint32_t i, uint8_t mark, ust_time now)
{
	uint32_t seg_max = t->mss - tcp_opt_extra_len(t), data_end = t->snd_buf_seq + t->sndbuf.len;
	uint8_t flags = UST_TH_ACK;
	struct tcp_sent *r = tcp_sb_at(t, i);
	int32_t room = (int32_t)(t->snd_una + t->snd_wnd - r->start);
	uint32_t len;

	if (room <= 0 && r->start != t->snd_una)
		return false;
	if (room > 0 && (uint32_t)room < seg_max)
		seg_max = (uint32_t)room;
	if (tcp_sent_len(r) > seg_max) {
		if (!tcp_sb_split(t, i, r->start + seg_max))
			return false;
		r = tcp_sb_at(t, i);
	}
	len = tcp_sent_len(r);
	if (r->flags & TCP_SENT_FIN)
		flags |= UST_TH_FIN;
	if (len && r->start + len == data_end)
		flags |= UST_TH_PSH;
	if (!tcp_packets_in_flight(t))
		tcp_ca_event(t, TCP_CA_EV_TX_START, now);
	if (tcb_emit(t, r->start, flags, r->start - t->snd_buf_seq, len, now) < 0)
		return false;
	tcp_count(t->tcp, UST_EV_TCP_RETRANS);
	t->total_retrans++;
	t->stats.bytes_retrans += len;
	/* The user timeout counts from the first retransmission (Linux's
	 * retrans_stamp). */
	if (!t->first_rtx)
		t->first_rtx = now;
	if (!t->retrans_stamp)
		t->retrans_stamp = now;
	/* For the undo: retransmissions not yet shown needless by D-SACK. */
	if (t->undo_retrans < 0)
		t->undo_retrans = 0;
	t->undo_retrans++;
	tcp_sb_set(t, r, mark);
	r->xmit_time = now;
	tcp_rate_sent(t, r, false, now);
	data_sent(t, len, mark & TCP_SENT_RETRANS);
	return true;
}

/* Lost segments go first, in sequence order, as cwnd and the burst's
 * quota allow (Linux's tcp_xmit_retransmit_queue): each once, until it is
 * SACKed, acknowledged or found lost again. Resending the first restarts
 * the retransmission timer. */
static void retransmit_lost(struct ust_tcb *t, uint32_t *quota, ust_time now)
{
	bool rearm = false;

	for (uint32_t i = 0; i < t->packets_out && *quota; i++) {
		struct tcp_sent *r = tcp_sb_at(t, i);
		if (tcp_packets_in_flight(t) >= t->snd_cwnd || t->retrans_out >= t->lost_out)
			break;
		if (!(r->flags & TCP_SENT_LOST) || (r->flags & (TCP_SENT_SACKED | TCP_SENT_RETRANS)))
			continue;
		if (!retransmit(t, i, TCP_SENT_RETRANS | TCP_SENT_EVER_RETRANS, now))
			break;
		/* Which repair sent it (tcp-retrans counts every kind, the
		 * probes too): Linux's TCPSlowStartRetrans and TCPFastRetrans. */
		tcp_count(t->tcp, t->ca_state == TCP_CA_LOSS ? UST_EV_TCP_SLOW_START_RETRANS
							     : UST_EV_TCP_RECOVERY_RETRANS);
		--*quota;
		if (i == 0)
			rearm = true;
	}
	if (rearm) {
		/* The RTO, restarted, replaces a probe still armed: in
		 * Linux's one timer slot tcp_xmit_retransmit_queue's
		 * tcp_reset_xmit_timer does, and a probe is for a tail lost
		 * in Open, not for losses being repaired. Left armed, it
		 * would outlive the (now earlier) RTO. */
		t->persist = false;
		tcp_timer_stop(t, UST_TT_TLP);
		tcp_timer_set(t, UST_TT_RTX, tcp_rtx_due(t, now));
	}
}

/* The probe timeout (RFC 8985 §7.3, Linux's tcp_send_loss_probe): new
 * data (or the FIN alone) if there is some and the peer's window takes a
 * segment of it (beyond cwnd if need be: a sender that fills cwnd has its
 * tail lost as often as any), else the last segment again. One probe
 * per episode: while one is out, the RTO stays the only timer. The RTO
 * counts afresh from the probe. A probe of the last segment does not mark
 * it lost: in flight it counts once, and not toward PRR (as Linux's
 * __tcp_retransmit_skb, which leaves retrans_out and prr_out alone:
 * measured, tests/seg/tlp-cwr.seg), and RACK finds it lost like any
 * segment. */
void tcp_send_loss_probe(struct ust_tcb *t, ust_time now)
{
	uint32_t prior = t->packets_out, seg_max = t->mss - tcp_opt_extra_len(t), last, len;
	uint32_t data_end = t->snd_buf_seq + t->sndbuf.len;
	/* Only the FIN unsent (Linux's FIN-only skb is tcp_send_head, and
	 * waits for cwnd as data does since 6.10): it is the probe, and
	 * needs its sequence number in the window (tcp_snd_wnd_test on
	 * end_seq). Measured, tests/seg/tlp-cwnd-fin.seg. */
	bool fin_only = t->fin_queued && t->snd_nxt == data_end && UST_TCP_SENT_FIN(t->state);
	struct tcp_sent *r;

	if (t->tlp_active)
		return;
	t->tlp_retrans = false;
	if (seq_lt(t->snd_nxt, data_end) || fin_only) {
		uint32_t seg_end = t->snd_nxt + (data_end - t->snd_nxt < seg_max ? data_end - t->snd_nxt : seg_max);
		if (seq_leq(seg_end + (fin_only ? 1 : 0), t->snd_una + t->snd_wnd)) {
			/* Pacing still holds it: no probe this episode, the
			 * RTO stays armed (Linux's tcp_write_xmit checks
			 * pacing first, and its probe re-arms the RTO). */
			if (pacing_ready(t, now))
				output_one(t, OUT_LOSS_PROBE, now);
			if (t->packets_out > prior) {
				cwnd_validate(t, true, now);
				goto sent;
			}
			return;
		}
	}
	last = t->packets_out - 1;
	r = tcp_sb_at(t, last);
	len = tcp_sent_len(r);
	/* Only the last segment's worth of a longer record. */
	if (len > seg_max) {
		if (!tcp_sb_split(t, last, r->start + (len - 1) / seg_max * seg_max))
			return;
		last++;
	}
	if (!retransmit(t, last, TCP_SENT_EVER_RETRANS, now))
		return;
	t->tlp_retrans = true;
sent:
	t->tlp_active = true;
	t->tlp_high_seq = t->snd_nxt;
	tcp_count(t->tcp, UST_EV_TCP_LOSS_PROBES);
	t->persist = false;
	tcp_timer_set(t, UST_TT_RTX, tcp_rtx_due(t, now));
}

/* After sending new data, or failing to: is the flow limited by cwnd, or
 * by the application (or the peer's window)? Linux's tcp_cwnd_validate:
 * the largest flight and the strongest "limited" signal over the last
 * window, so that cwnd grows only while the flow uses it (RFC 7661).
 * Limited: the flight fills cwnd. */
static void cwnd_validate(struct ust_tcb *t, bool sent, ust_time now)
{
	bool limited = tcp_packets_in_flight(t) >= t->snd_cwnd;

	if (!sent && !limited)
		return;
	if (!seq_lt(t->snd_una, t->cwnd_usage_seq) || limited ||
	    (!t->is_cwnd_limited && t->packets_out > t->max_packets_out)) {
		t->is_cwnd_limited = limited;
		t->max_packets_out = t->packets_out;
		t->cwnd_usage_seq = t->snd_max;
	}
	if (tcp_is_cwnd_limited(t))
		t->snd_cwnd_stamp = now;
}

/* Is there anything to send: a lost segment not yet resent, data or the
 * FIN not sent yet? */
static bool anything_to_send(const struct ust_tcb *t)
{
	return t->lost_out > t->retrans_out || seq_lt(t->snd_nxt, t->snd_buf_seq + t->sndbuf.len) ||
	       (t->fin_queued && seq_leq(t->snd_nxt, tcb_fin_seq(t)));
}

/* F-RTO's step 2b (RFC 5682 §3.1: new, never sent segments instead of
 * retransmissions; Linux's REXMIT_NEW in tcp_xmit_recovery, as many as
 * cwnd allows, two in slow start): after the first ACK that advanced the window
 * following an RTO, new data as cwnd allows, and no retransmission. If
 * none could go, F-RTO gives way to the conventional recovery. Returns
 * whether new data went. */
static bool frto_new_data(struct ust_tcb *t, ust_time now)
{
	bool sent = false;

	t->frto_new_data = false;
	if (pacing_ready(t, now)) {
		uint32_t quota = t->pacing_rate ? pacing_quota(t) : UINT32_MAX;
		while (quota && output_one(t, OUT_RULES, now)) {
			quota--;
			sent = true;
		}
	}
	if (!seq_gt(t->snd_nxt, t->recover))
		t->frto = false;
	return sent;
}

/* Lost segments first, then new data (Linux's tcp_write_xmit), in bursts
 * that the pacing rate spaces out; unpaced, one burst without limit.
 * Returns whether new data went. */
static bool transmit(struct ust_tcb *t, ust_time now)
{
	bool sent = false;

	if (t->frto_new_data && frto_new_data(t, now))
		return true;
	while (anything_to_send(t) && pacing_ready(t, now)) {
		uint32_t quota = t->pacing_rate ? pacing_quota(t) : UINT32_MAX;
		retransmit_lost(t, &quota, now);
		while (quota && output_one(t, OUT_RULES, now)) {
			quota--;
			sent = true;
		}
		if (quota)
			break; /* cwnd, the peer's window or the data ran out first */
	}
	return sent;
}

/* What held the sender back, for TCP_INFO's chronograph (Linux's
 * tcp_write_xmit and tcp_cwnd_validate): the peer's window, when the next
 * segment does not fit in it though cwnd has room; the send buffer, when
 * everything went, cwnd has room, and the writer found the buffer full. */
static void chrono_limits(struct ust_tcb *t, bool sent, ust_time now)
{
	uint32_t data_end = t->snd_buf_seq + t->sndbuf.len;
	uint32_t next = seq_lt(t->snd_nxt, data_end) ? data_end - t->snd_nxt : 0;
	bool cwnd_room = tcp_packets_in_flight(t) < t->snd_cwnd;
	uint32_t seg_max = t->mss - tcp_opt_extra_len(t); /* Linux's mss_now */

	if (next > seg_max)
		next = seg_max;
	if (next && cwnd_room && seq_gt(t->snd_nxt + next, t->snd_una + t->snd_wnd))
		tcp_chrono_start(t, TCP_CHRONO_RWND_LIMITED, now);
	else
		tcp_chrono_stop(t, TCP_CHRONO_RWND_LIMITED, now);
	if (sent && cwnd_room && !next && t->stats.snd_nospace &&
	    (t->state == UST_TCP_ESTABLISHED || t->state == UST_TCP_CLOSE_WAIT))
		tcp_chrono_start(t, TCP_CHRONO_SNDBUF_LIMITED, now);
}

void tcp_output(struct ust_tcb *t, ust_time now)
{
	bool sent = false;

	if (!UST_TCP_SYNCHRONIZED(t->state))
		return;
	/* In TIME-WAIT nothing is left to send but the ACK owed for the FIN
	 * that brought us here. */
	if (t->state != UST_TCP_TIME_WAIT) {
		/* Data or a FIN not sent yet (Linux's tcp_send_head): only
		 * then is the window's use worth judging. */
		bool unsent = seq_lt(t->snd_nxt, t->snd_buf_seq + t->sndbuf.len) ||
			      (t->fin_queued && seq_leq(t->snd_nxt, tcb_fin_seq(t)));
		sent = transmit(t, now);
		if (unsent)
			cwnd_validate(t, sent, now);
		chrono_limits(t, sent, now);
		/* New data left: the tail may be lost (Linux's
		 * tcp_write_xmit, "one loss probe per tail loss episode"). */
		if (sent)
			tcp_tlp_schedule(t, false, now);
		/* Data or the FIN waits, nothing is in flight, and the
		 * peer's window is shut or too small to send into: the
		 * persist timer will probe it, or push what fits (Linux's
		 * tcp_write_wakeup). */
		if (t->snd_max == t->snd_una && t->timer[UST_TT_RTX] == UST_TIME_NEVER &&
		    (t->sndbuf.len > t->snd_nxt - t->snd_buf_seq ||
		     (t->fin_queued && seq_leq(t->snd_nxt, tcb_fin_seq(t))))) {
			t->persist = true;
			tcp_timer_set(t, UST_TT_RTX, now + tcp_rto_backed_off(t));
		}
	}
	if (t->ack_now)
		tcp_send_ack(t, now);
}
