/* SEGMENT ARRIVES (RFC 9293 §3.10.7), in the RFC's order:
 *
 *   §3.10.7.1 CLOSED        closed_input
 *   §3.10.7.2 LISTEN        listen_input
 *   §3.10.7.3 SYN-SENT      syn_sent_input
 *   §3.10.7.4 the others    synchronized_input: its eight steps, one
 *             function each: step1_sequence, step2_rst, (third, security:
 *             nothing), step4_syn, step5_ack, (sixth, URG: tcp_urg_input),
 *             step7_text, step8_fin
 *   TIME-WAIT               tcp_time_wait_input (tcp_close.c), as Linux
 *
 * What an acceptable ACK teaches (SACK, window, RTT, loss recovery) is in
 * tcp_ack.c; every close transition (FIN acknowledged, FIN received, RST)
 * is in tcp_close.c; ICMP in tcp_icmp.c. Where Linux departs from the RFC
 * in a way a program or peer can see, Linux is followed and the comment
 * says so. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tcp_impl.h"

/* ---- helpers ---- */

/* RFC 5961 §7 as Linux does it: one out-of-window answer per
 * tcp_invalid_ratelimit per connection (its global limit is off by
 * default). */
static bool oow_answer_allowed(struct ust_tcb *t, ust_time now)
{
	if (t->last_challenge && now - t->last_challenge < TCP_CHALLENGE_GAP)
		return false;
	t->last_challenge = now ? now : 1;
	return true;
}

void tcp_send_challenge_ack(struct ust_tcb *t, ust_time now)
{
	if (!oow_answer_allowed(t, now))
		return;
	tcp_count(t->tcp, UST_EV_TCP_CHALLENGE_ACK);
	tcp_send_ack(t, now);
}

/* What the SYN or SYN-ACK says about the peer: window scaling, SACK and
 * timestamps need both sides (RFC 7323 §2.2); the MSS it takes. Without
 * an MSS option, 536 (RFC 9293 §3.7.1) over IPv4 and over IPv6 1220, what
 * IPv6's 1280-byte MTU carries (Linux's mss_clamp for both ends of an IPv6
 * connection, tcp_request_sock_ipv6_ops and tcp_v6_connect). */
static void apply_syn_options(struct ust_tcb *t, const struct ust_tcp_seg *seg)
{
	const struct ust_tcp_opts *o = &seg->opt;
	unsigned mss = o->mss                            ? o->mss
		       : ust_ip6_is_v4mapped(&seg->src) ? TCP_MSS_DEFAULT
							: TCP_MIN_ADVMSS6;

	t->ws_ok = o->wscale >= 0;
	t->snd_wscale = t->ws_ok ? (uint8_t)o->wscale : 0;
	if (!t->ws_ok) {
		/* Our windows go unscaled: at most 64 KiB. */
		t->rcv_wscale = 0;
		if (t->rcv_wnd_clamp > 65535)
			t->rcv_wnd_clamp = 65535;
		if (t->rcv_ssthresh > t->rcv_wnd_clamp)
			t->rcv_ssthresh = t->rcv_wnd_clamp;
	}
	t->sack_ok = o->sack_ok;
	t->ts_ok = o->ts;
	/* A signed SYN-ACK has no room for timestamps beside SACK blocks:
	 * it offers SACK alone (tcp_synack_options; not a cookie's, whose
	 * timestamps keep the options). */
	if (t->ts_ok && t->sack_ok && t->listener && !t->from_cookie && tcp_md5_peer(t))
		t->ts_ok = false;
	if (t->ts_ok)
		t->ts_recent = o->ts_val;
	if (mss > t->rcv_mss)
		mss = t->rcv_mss;
	t->mss_clamp = (uint16_t)mss;
	/* A tiny or zero MSS from the peer is raised to Linux's floor
	 * (TCP_MIN_SND_MSS, 48): never a segment of nothing. */
	t->mss_path = tcp_mss_from(t, mss, t->ts_ok);
	tcp_sync_mss(t);
}

/* A peer with a tiny window gets segments of half the largest window it
 * offered, so that two are in flight where one full segment would leave
 * it a lone one to delay its ACK for (Linux's tcp_sync_mss with
 * tcp_bound_to_half_wnd; the whole window up to 536 bytes, never below
 * 68 bytes with the header and its options). Measured on Linux,
 * tests/seg/fin-window.seg. */
void tcp_sync_mss(struct ust_tcb *t)
{
	uint32_t cutoff = t->max_snd_wnd > TCP_MSS_DEFAULT ? t->max_snd_wnd / 2 : t->max_snd_wnd;
	uint32_t floor = 68 - UST_TCP_HLEN - (t->ts_ok ? 12 : 0);

	t->mss = t->mss_path;
	if (cutoff && t->mss > cutoff)
		t->mss = (uint16_t)(cutoff > floor ? cutoff : floor);
}

/* Buffers are sized when the connection becomes synchronized; their
 * memory comes with their first byte (tcp_buf.h). */
static void tcb_size_buffers(struct ust_tcb *t)
{
	if (!t->rcvbuf.cap)
		ust_ring_init(&t->rcvbuf, tcp_rcvbuf_ring_size(t));
	if (!t->sndbuf.cap)
		ust_ring_init(&t->sndbuf, t->sndbuf_cap);
}

/* Tell the peer with a D-SACK that [start, end) came twice (RFC 2883). */
static void set_dsack(struct ust_tcb *t, uint32_t start, uint32_t end)
{
	if (!t->sack_ok || !seq_lt(start, end))
		return;
	t->dsack = true;
	t->dsack_start = start;
	t->dsack_end = end;
}

/* ---- CLOSED (§3.10.7.1) ---- */

/* "If the state is CLOSED (i.e., TCB does not exist) then all data in the
 * incoming segment is discarded. An incoming segment containing a RST is
 * discarded. An incoming segment not containing a RST causes a RST to be
 * sent in response" (C31). */
static void closed_input(struct ust_tcp *tcp, const struct ust_tcp_seg *seg, ust_time now)
{
	/* Another stack on our address (another process) holds the port, or
	 * held this connection until a moment ago: the segment is its to
	 * answer. Ports are one space per family: a listener of ours that
	 * did not take the segment's family (an IPV6_V6ONLY one, an IPv4
	 * SYN) leaves that family's space to others, and port_foreign asks
	 * in the segment's; where nobody holds it, Linux resets. */
	if (tcp->cfg.port_foreign && tcp->cfg.port_foreign(tcp->cfg.ctx, seg->dport, &seg->src, seg->sport)) {
		tcp_drop_foreign(tcp);
		return;
	}
	tcp_drop(tcp, UST_DROP_TCP_NO_SOCKET);
	tcp_send_rst_reply(tcp, seg, now);
}

/* ---- LISTEN (§3.10.7.2) ---- */

/* What a listener's child takes from its listener, and its sequence
 * spaces: the peer's from irs (the SYN's number), ours from iss. */
static void child_init(struct ust_tcb *c, struct ust_tcb *l, uint32_t irs, uint32_t iss)
{
	c->listener = l;
	c->reuseport = l->reuseport; /* as Linux's sk_clone: binds stay shareable */
	c->cc = l->cc;
	c->max_pacing_rate = l->max_pacing_rate; /* sk_clone copies the sock */
	c->pacing_needed = l->pacing_needed;
	c->released = true; /* nobody holds it until accept() */
	c->rcvbuf_cap = l->rcvbuf_cap;
	c->sndbuf_cap = l->sndbuf_cap;
	c->rcvbuf_locked = l->rcvbuf_locked;
	c->sndbuf_locked = l->sndbuf_locked;
	c->nodelay = l->nodelay;
	c->keepalive = l->keepalive;
	c->keep_idle = l->keep_idle;
	c->keep_intvl = l->keep_intvl;
	c->keep_cnt = l->keep_cnt;
	c->user_timeout = l->user_timeout;
	c->fin_timeout_ms = l->fin_timeout_ms;
	c->linger2_neg = l->linger2_neg;
	c->ip_tos = l->ip_tos;
	c->ip_ttl = l->ip_ttl;
	c->ip_pmtudisc = l->ip_pmtudisc;
	c->ip6_tclass = l->ip6_tclass;
	c->ip6_hops = l->ip6_hops;
	c->ip6_pmtudisc = l->ip6_pmtudisc;
	c->flow_label = l->flow_label & UST_TCP_FLOW_OFF;
	c->min_hops = l->min_hops;
	c->rx6opt = l->rx6opt;
	c->min_ttl = l->min_ttl;
	c->thin_lto = l->thin_lto;
	c->txrehash = l->txrehash;
	c->save_syn = l->save_syn;
	c->user_wnd_clamp = l->user_wnd_clamp;
	c->defer_accept = l->defer_accept;
	c->ipv6 = l->ipv6;
	c->v6only = l->v6only;
	c->user_mss = l->user_mss;
	c->rcv_mss = tcp_announced_mss(c);
	c->irs = irs;
	c->rcv_nxt = irs + 1;
	c->iss = iss;
	c->snd_una = iss;
	c->snd_nxt = iss;
	c->snd_max = iss;
	c->snd_buf_seq = iss + 1;
	c->recover = iss;
	c->snd_sml = iss;
	c->ts_offset = tcp_ts_offset(c->tcp, &c->laddr, &c->raddr);
}

static void keep_syn_ip6(struct ust_tcb *c, const struct ust_tcb *l, const struct ust_tcp_seg *syn);

/* A child for the listener l, from the peer's SYN: it starts its sequence
 * space at iss (a TIME-WAIT reopened, C23, or a SYN cookie) or at the RFC
 * 6528 ISN. NULL when none is left. */
static struct ust_tcb *child_new(struct ust_tcb *l, const struct ust_tcp_seg *syn, ust_time now,
				 uint32_t iss)
{
	struct ust_tcp *tcp = l->tcp;
	struct ust_tcb *c = tcp_tcb_new(tcp, NULL);
	uint16_t port = l->lport;

	if (!c)
		return NULL;
	c->laddr = syn->dst;
	tcp_rehash(c, l->lport, &syn->src, syn->sport);
	child_init(c, l, syn->seq,
		   iss ? iss : tcp_isn(tcp, &c->laddr, c->lport, &c->raddr, c->rport, now));
	if (!tcp_md5_inherit(c, l) || tcp_ipext_inherit(c, l, syn) < 0) {
		tcp_tcb_discard(c);
		return NULL;
	}
	/* The child's own reference on the port: it may outlive the
	 * listener (TIME-WAIT). After child_init, which gives it the
	 * listener's family: the claim holds the port in the families the
	 * child takes (ust_tcp_port_families), and an IPv6 child claimed
	 * as an AF_INET one held the IPv4 port, or failed to where another
	 * process held that, leaving its own IPv6 port unheld once its
	 * listener closed (other stacks on the address then reset it). */
	tcp_claim_port(c, &port, false);
	if (l->reuseport && tcp->cfg.tuple_hold)
		tcp->cfg.tuple_hold(tcp->cfg.ctx, c->lport, &c->raddr, c->rport);
	return c;
}

/* TCP_SAVE_SYN (Linux's tcp_reqsk_record_syn): the SYN's IP and TCP
 * headers, after the link's header for 2 (none on a link without one; a
 * SYN from our own address has the zeroed one of Linux's lo), for
 * TCP_SAVED_SYN. */
static void save_syn(struct ust_tcb *c, const struct ust_tcp_seg *syn)
{
	bool lo = c->save_syn == 2 && syn->looped;
	unsigned mac = c->save_syn != 2 ? 0 : lo ? UST_ETH_HLEN : syn->mac_len;
	size_t len = mac + syn->net_len + syn->hlen;

	if (!c->save_syn || !syn->net || len > UINT16_MAX || !(c->saved_syn = malloc(len)))
		return;
	if (lo) {
		memset(c->saved_syn, 0, UST_ETH_HLEN - 2);
		ust_put16(c->saved_syn + UST_ETH_HLEN - 2, syn->net[0] >> 4 == 6 ? UST_ETHERTYPE_IPV6
										 : UST_ETHERTYPE_IPV4);
		memcpy(c->saved_syn + UST_ETH_HLEN, syn->net, len - UST_ETH_HLEN);
	} else {
		memcpy(c->saved_syn, syn->net - mac, len);
	}
	c->saved_syn_len = (uint16_t)len;
}

/* What the child learns from the SYN: its options, our first window, the
 * peer's (a SYN's window is never scaled). No buffers yet: a half-open
 * connection costs its control block only, and gets them when it is
 * established (syn_received_ack). */
static void child_take_syn(struct ust_tcb *c, const struct ust_tcp_seg *syn, ust_time now)
{
	apply_syn_options(c, syn);
	tcp_ecn_create_request(c, syn);
	tcp_select_initial_window(c, c->ws_ok);
	c->snd_wnd = syn->wnd;
	c->max_snd_wnd = syn->wnd;
	tcp_sync_mss(c);
	c->snd_wl1 = syn->seq;
	c->snd_wl2 = c->iss;
	c->last_rcv = now;
	c->rec.start = now;
}

/* A SYN the listener cannot take (Linux's tcp_listendrop). */
static void listen_drop(struct ust_tcb *l, enum ust_drop why)
{
	tcp_drop(l->tcp, why);
	tcp_count(l->tcp, UST_EV_TCP_LISTEN_DROPS);
}

/* The SYN queue is full (or tcp_syncookies is 2): a SYN-ACK whose ISN is
 * a cookie, from a block that lives on this stack frame only, as Linux's
 * request sock that tcp_conn_request frees at once. Without timestamps
 * the cookie keeps nothing but the MSS, so the SYN-ACK offers no SACK,
 * window scale or ECN (Linux's tcp_clear_options; measured on 6.18.44:
 * "S. <mss 1460>"); with them, they ride in the TSval's low bits. */
static void send_cookie_synack(struct ust_tcb *l, const struct ust_tcp_seg *seg, ust_time now)
{
	struct ust_tcp *tcp = l->tcp;
	struct ust_tcp_seg syn = *seg;
	struct ust_tcb r;
	struct ust_ip4_opts echo;
	uint16_t mss;

	if (!seg->opt.ts) {
		syn.opt.wscale = -1;
		syn.opt.sack_ok = false;
		syn.flags &= (uint8_t)~(UST_TH_ECE | UST_TH_CWR);
	}
	memset(&r, 0, sizeof(r));
	tcp_tcb_init(tcp, &r, NULL);
	r.lport = l->lport;
	r.laddr = seg->dst;
	r.raddr = seg->src;
	r.rport = seg->sport;
	child_init(&r, l, seg->seq, tcp_cookie_isn(tcp, seg, now, &mss));
	r.from_cookie = true;
	if (!tcp_md5_inherit(&r, l))
		return; /* no memory: as a SYN dropped, the peer sends again */
	/* The listener's extension headers, lent for the SYN-ACK (Linux's
	 * tcp_v6_send_synack sends np->opt), or the echo of the SYN's IP
	 * options (tcp_v4_send_synack sends ireq_opt). */
	if (!ust_ip6_is_v4mapped(&r.raddr))
		r.ip6_ext = l->ip6_ext;
	else if (tcp_ip4_echo(tcp, seg, &echo) > 0)
		r.ip4_opts = &echo;
	child_take_syn(&r, &syn, now);
	if (r.ts_ok)
		r.ts_offset += tcp_cookie_tsval(&r, now) - (uint32_t)(now / 1000);
	tcp_send_synack_stateless(&r, now);
	tcp_md5_free(&r);
	l->cookie_sent_at = now ? now : 1;
	tcp_count(tcp, UST_EV_TCP_SYNCOOKIES_SENT);
}

/* Linux's tcp_conn_request: with the SYN queue full (more half-open
 * children than the backlog) a SYN gets a cookie if tcp_syncookies
 * allows, else it is dropped; tcp_syncookies 2 gives every SYN one. A
 * full accept queue drops the SYN either way (ListenOverflows; the peer
 * retries). Otherwise a child in SYN-RECEIVED answers <SEQ=ISS>
 * <ACK=RCV.NXT><CTL=SYN,ACK> and resends it as Linux (tcp_synack_retries,
 * tcp_timer.c). Measured on 6.18.44 with listen(1) and no SYN completed:
 * two children, then cookies (kernel_peer.py syncookie-overflow). */
static void listen_syn(struct ust_tcb *l, const struct ust_tcp_seg *seg, ust_time now, uint32_t iss, bool shared)
{
	struct ust_tcp *tcp = l->tcp;
	bool want_cookie = false;
	struct ust_tcb *c;

	if ((tcp->cfg.syncookies == 2 || l->synq_len > l->synq_max) && !iss) {
		if (!tcp->cfg.syncookies) {
			listen_drop(l, UST_DROP_TCP_LISTEN_DROP);
			return;
		}
		want_cookie = true;
	}
	if (l->acceptq_len > l->backlog && tcp->cfg.backlog_full)
		tcp->cfg.backlog_full(tcp->cfg.ctx, l);
	if (l->acceptq_len > l->backlog) {
		tcp_count(tcp, UST_EV_TCP_LISTEN_OVERFLOWS);
		listen_drop(l, UST_DROP_TCP_LISTEN_DROP);
		return;
	}
	if (want_cookie) {
		send_cookie_synack(l, seg, now);
		return;
	}
	c = child_new(l, seg, now, iss);
	if (!c) {
		listen_drop(l, UST_DROP_TCP_NO_TCB);
		return;
	}
	if (!iss)
		keep_syn_ip6(c, l, seg);
	l->synq_len++;
	child_take_syn(c, seg, now);
	save_syn(c, seg); /* not a cookie's: its SYN is gone (Linux records none either) */
	c->group_shared = shared;
	tcp_set_state(c, UST_TCP_SYN_RECEIVED);
	c->rtt_start = now;
	tcp_send_syn(c, now);
}

static void synchronized_input(struct ust_tcb *t, struct ust_tcp_seg *seg, ust_time now);
static void tcp_count_segs_in(struct ust_tcb *t, const struct ust_tcp_seg *seg);

/* An ACK at the listener answers a SYN cookie if one went out in the
 * last two minutes and it checks (Linux's cookie_v4_check): the child is
 * made from what the cookie kept, in SYN-RECEIVED, and takes the ACK (and
 * any data with it) as a child that kept state would. False when it is no
 * cookie: the caller resets it, as Linux's listener does (measured on
 * 6.18.44: a forged ACK, or a cookie's with another sequence number, gets
 * <SEQ=SEG.ACK><CTL=RST>). */
static bool cookie_ack_input(struct ust_tcb *l, struct ust_tcp_seg *seg, ust_time now)
{
	struct ust_tcp *tcp = l->tcp;
	struct ust_tcp_seg syn = *seg;
	bool ecn = false;
	struct ust_tcb *c;
	unsigned mss;

	if (!tcp->cfg.syncookies || !l->cookie_sent_at || now - l->cookie_sent_at > TCP_SYNCOOKIE_VALID ||
	    (seg->flags & (UST_TH_SYN | UST_TH_RST)))
		return false;
	mss = tcp_cookie_check(tcp, seg, now);
	if (!mss) {
		tcp_count(tcp, UST_EV_TCP_SYNCOOKIES_FAILED);
		return false;
	}
	tcp_count(tcp, UST_EV_TCP_SYNCOOKIES_RECV);
	/* The SYN as the cookie remembers it. */
	syn.seq = seg->seq - 1;
	syn.flags = UST_TH_SYN;
	syn.len = 0;
	syn.opt.mss = (uint16_t)mss;
	syn.opt.wscale = -1;
	syn.opt.sack_ok = false;
	if (seg->opt.ts)
		tcp_cookie_ts_decode(seg->opt.ts_ecr - tcp_ts_offset(tcp, &seg->dst, &seg->src), &syn.opt,
				     &ecn);
	if (l->acceptq_len > l->backlog && tcp->cfg.backlog_full)
		tcp->cfg.backlog_full(tcp->cfg.ctx, l);
	if (l->acceptq_len > l->backlog) {
		tcp_count(tcp, UST_EV_TCP_LISTEN_OVERFLOWS);
		listen_drop(l, UST_DROP_TCP_LISTEN_DROP);
		return true;
	}
	c = child_new(l, &syn, now, seg->ack - 1);
	if (!c) {
		listen_drop(l, UST_DROP_TCP_NO_TCB);
		return true;
	}
	keep_syn_ip6(c, l, &syn);
	l->synq_len++;
	c->from_cookie = true;
	child_take_syn(c, &syn, now);
	if (ecn && tcp->cfg.ecn)
		c->ecn_flags = UST_TCP_ECN_OK;
	tcp_set_state(c, UST_TCP_SYN_RECEIVED);
	c->snd_nxt = c->iss + 1;
	c->snd_max = c->iss + 1;
	/* What the cookie SYN-ACK offered, as tcb_emit would have noted it:
	 * the unscaled first window. */
	c->rcv_adv = c->rcv_nxt + (c->rcv_ssthresh < 65535 ? c->rcv_ssthresh : 65535);
	c->last_ack_sent = c->rcv_nxt;
	tcp_count_segs_in(c, seg);
	synchronized_input(c, seg, now);
	/* Not established after all (no memory for its buffers): it times
	 * out as any half-open child. */
	if (c->state == UST_TCP_SYN_RECEIVED)
		tcp_timer_set(c, UST_TT_RTX, now + tcp_rto_backed_off(c));
	return true;
}

/* "First, check for a RST: an incoming RST should be ignored. Second,
 * check for an ACK: any acknowledgment is bad ... <SEQ=SEG.ACK><CTL=RST>"
 * (unless it answers a SYN cookie). "Third, check for a SYN": listen_syn.
 * "Fourth, other control or text-bearing segments": dropped.
 * In a group shared with other processes (shared), an ACK that is no
 * cookie of ours may belong to a connection another stack accepted,
 * perhaps when the group's members were others and the hash chose
 * differently: it is reset only when no stack of the group holds its
 * 4-tuple (group_stray), else left alone. */
/* A segment no stack of the group holds, which the group picked us to
 * answer (tcp.h, group_stray). */
static bool group_stray(struct ust_tcp *tcp, const struct ust_tcp_seg *seg)
{
	return tcp->cfg.group_stray && tcp->cfg.group_stray(tcp->cfg.ctx, seg->dport, &seg->src, seg->sport);
}

/* An IPv6 segment's flow information: its header's first word less the
 * version (Linux's ip6_flowinfo), in host order. */
static uint32_t seg_flowinfo(const struct ust_tcp_seg *seg)
{
	return (uint32_t)(seg->net[0] & 0x0f) << 24 | (uint32_t)seg->net[1] << 16 | (uint32_t)seg->net[2] << 8 |
	       seg->net[3];
}

/* What the receive options ask to note of a segment over IPv6 once it is
 * taken, if it ended at RCV.NXT (Linux's tcp_v6_do_rcv, ipv6_pktoptions:
 * in order, not left out of order or out of the window). */
/* Linux's ipv6_opt_accepted: do the receive options rx6opt ask to keep
 * the segment, for a flow label or traffic class, or an extension header? */
static bool rx6_accepted(uint8_t rx6opt, const struct ust_tcp_seg *seg)
{
	struct ust_ip6_walk w = { 0 };
	bool hbh = false, rt = false, dst = false;

	while (ust_ip6_ext_step(seg->net, seg->net_len, &w)) {
		hbh |= w.type == UST_IPPROTO_HOPOPTS;
		rt |= w.type == UST_IPPROTO_ROUTING;
		dst |= w.type == UST_IPPROTO_DSTOPTS;
	}
	return (hbh && (rx6opt & UST_TCP_RX6_KEEP_HBH)) || (seg_flowinfo(seg) && (rx6opt & UST_TCP_RX6_KEEP_FLOW)) ||
	       (rt && (rx6opt & UST_TCP_RX6_KEEP_RT)) || (dst && (rx6opt & UST_TCP_RX6_KEEP_DST));
}

static void keep_seg(struct ust_tcb *t, const struct ust_tcp_seg *seg)
{
	t->kept = true;
	t->kept_hops = seg->hops;
	t->kept_flowinfo = seg_flowinfo(seg);
	t->kept_net_len = 0;
	if (seg->net_len <= UST_IPV6_HLEN || seg->net_len > UST_TCP_KEPT_NET_MAX)
		return;
	if (!t->kept_net && !(t->kept_net = malloc(UST_TCP_KEPT_NET_MAX)))
		return; /* its messages then go without the headers' */
	memcpy(t->kept_net, seg->net, seg->net_len);
	t->kept_net_len = seg->net_len;
}

static void note_rcv_ip6(struct ust_tcb *t, const struct ust_tcp_seg *seg)
{
	/* Not in TIME-WAIT: Linux's socket is CLOSE once the FIN that ends
	 * there is taken (tcp_time_wait, tcp_done). */
	if (!t->rx6opt || !seg->net || ust_ip6_is_v4mapped(&seg->src) || seg->seq + ust_seg_len(seg) != t->rcv_nxt ||
	    t->state == UST_TCP_CLOSED || t->state == UST_TCP_TIME_WAIT)
		return;
	if (t->rx6opt & UST_TCP_RX6_INFO)
		t->rcv_oif = true;
	if (t->rx6opt & UST_TCP_RX6_HOPS)
		t->rcv_hops = seg->hops;
	if (t->rx6opt & UST_TCP_RX6_FLOW)
		t->rcv_flowinfo = seg_flowinfo(seg);
	t->kept = false;
	t->kept_net_len = 0;
	if (rx6_accepted(t->rx6opt, seg))
		keep_seg(t, seg);
}

/* A listener's child over IPv6 keeps its SYN (Linux's tcp_v6_init_req
 * into ireq->pktopts, a cookie's ACK in cookie_v6_check) if its listener
 * asks for the interface or hop limit, or would keep it as a segment;
 * not a SYN that reopened a TIME-WAIT. */
static void keep_syn_ip6(struct ust_tcb *c, const struct ust_tcb *l, const struct ust_tcp_seg *syn)
{
	if (syn->net && !ust_ip6_is_v4mapped(&syn->src) &&
	    ((l->rx6opt & (UST_TCP_RX6_INFO | UST_TCP_RX6_HOPS)) || rx6_accepted(l->rx6opt, syn)))
		keep_seg(c, syn);
}

/* RFC 5082's check, as Linux's tcp_v4_rcv and tcp_v6_rcv make it: a
 * segment whose TTL is under the socket's IP_MINTTL (IPv4), or whose hop
 * limit is under its IPV6_MINHOPCOUNT (IPv6), is dropped and counted. */
static bool under_min_hops(const struct ust_tcb *t, const struct ust_tcp_seg *seg)
{
	bool v4 = ust_ip6_is_v4mapped(&seg->src);

	if (seg->hops >= (v4 ? t->min_ttl : t->min_hops))
		return false;
	tcp_drop(t->tcp, v4 ? UST_DROP_TCP_MINTTL : UST_DROP_TCP_MINHOPCOUNT);
	return true;
}

static void listen_input(struct ust_tcb *l, struct ust_tcp_seg *seg, ust_time now, uint32_t iss, bool shared)
{
	struct ust_tcp *tcp = l->tcp;

	if (under_min_hops(l, seg) || !tcp_md5_inbound(l, seg))
		return; /* as a connection's */
	if (seg->flags & UST_TH_RST) {
		tcp_drop(tcp, UST_DROP_TCP_LISTEN_DROP);
		return;
	}
	if (seg->flags & UST_TH_ACK) {
		if (cookie_ack_input(l, seg, now))
			return;
		if (shared && !group_stray(tcp, seg)) {
			tcp_drop_foreign(tcp);
			return;
		}
		tcp_drop(tcp, UST_DROP_TCP_LISTEN_DROP);
		tcp_send_rst_reply_listener(l, seg, now);
		return;
	}
	/* A SYN with FIN is dropped too, as Linux. */
	if (!(seg->flags & UST_TH_SYN) || (seg->flags & UST_TH_FIN)) {
		tcp_drop(tcp, UST_DROP_TCP_LISTEN_DROP);
		return;
	}
	listen_syn(l, seg, now, iss, shared);
}

/* ---- SYN-SENT (§3.10.7.3) ---- */

/* "If the ACK bit is set: If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a
 * reset (unless the RST bit is set, if so drop the segment and return)."
 * Most often the peer still holds an earlier connection on this 4-tuple in
 * TIME-WAIT and took our SYN for an old duplicate: the RST ends that, and
 * the SYN goes again at once instead of after the RTO. Linux does that,
 * once, for any unacceptable ACK, with RST or without (measured on 6.18:
 * the SYN 8-12 ms after an ACK or a RST-ACK of ISS+123456). */
static void syn_sent_bad_ack(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	tcp_drop(t->tcp, UST_DROP_TCP_SYN_SENT_BAD);
	if (!(seg->flags & UST_TH_RST))
		tcp_send_rst_reply_tcb(t, seg, now);
	if (t->backoff == 0)
		tcp_timer_set(t, UST_TT_RTX, now + TCP_SYN_QUICK_RTX);
}

/* The handshake's round trip, when our SYN or SYN-ACK is acknowledged:
 * its own time unless it was resent (Karn), else the timestamp echo
 * (Linux's tcp_synack_rtt_meas, and tcp_ack_update_rtt for the SYN);
 * without either the RTO starts at 3 s after a retransmission (RFC 6298
 * §5.7, Linux's tcp_init_metrics). A SYN cookie's SYN-ACK left no time
 * (Linux's cookie request has no snt_synack): the echo, if any, or
 * nothing, with the RTO at its initial second. The backoff of the
 * handshake ends. */
static void handshake_rtt(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	ust_time ts_rtt = tcp_ts_rtt(t, seg, now);

	if (t->backoff == 0 && !t->from_cookie)
		tcp_rtt_sample(t, now - t->rtt_start);
	else if (ts_rtt)
		tcp_rtt_sample(t, ts_rtt);
	else if (!t->srtt && t->backoff)
		t->rto = UST_SEC(3);
	t->backoff = 0;
}

/* Our SYN is acknowledged and the peer's SYN is here: ESTABLISHED, and
 * "form an ACK segment <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and send it". */
static void syn_sent_established(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	t->stats.bytes_acked += seg->ack - t->snd_una;
	t->snd_una = seg->ack;
	if (seq_lt(t->snd_nxt, t->snd_una))
		t->snd_nxt = t->snd_una;
	handshake_rtt(t, seg, now);
	tcp_timer_stop(t, UST_TT_RTX);
	tcp_init_transfer(t, now);
	tcp_set_state(t, UST_TCP_ESTABLISHED);
	tcp_init_buffer_space(t, now);
	if (t->keepalive)
		tcp_timer_set(t, UST_TT_KEEPALIVE, now + t->keep_idle);
	tcp_send_ack(t, now);
	tcp_event(t, UST_TCP_EV_CONNECTED | UST_TCP_EV_WRITABLE);
	/* A FIN shut already (SHUT_WR while connecting) goes now. */
	tcp_output(t, now);
}

/* First the ACK, second the RST (it counts only with an acceptable ACK,
 * C37), third security (nothing), fourth the SYN: with an acceptable ACK
 * the connection is established, without one it is a simultaneous open
 * ("enter SYN-RECEIVED, form a SYN,ACK segment"). Fifth: neither SYN nor
 * RST, drop. */
static void syn_sent_input(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	bool ack_ok = false;

	if (seg->flags & UST_TH_ACK) {
		if (seq_leq(seg->ack, t->iss) || seq_gt(seg->ack, t->snd_max)) {
			syn_sent_bad_ack(t, seg, now);
			return;
		}
		ack_ok = true;
	}
	if (seg->flags & UST_TH_RST) {
		if (ack_ok)
			tcp_reset_received(t);
		else
			tcp_drop(t->tcp, UST_DROP_TCP_SYN_SENT_BAD);
		return;
	}
	if (!(seg->flags & UST_TH_SYN)) {
		tcp_drop(t->tcp, UST_DROP_TCP_SYN_SENT_BAD);
		return;
	}
	t->irs = seg->seq;
	t->rcv_nxt = seg->seq + 1;
	/* Our SYN offered an unscaled window of at most 64 KiB before
	 * RCV.NXT was known: that is the edge now. */
	t->rcv_adv = t->rcv_nxt + (t->rcv_ssthresh < 65535 ? t->rcv_ssthresh : 65535);
	apply_syn_options(t, seg);
	tcp_ecn_rcv_syn(t, seg);
	t->snd_wnd = seg->wnd;
	t->max_snd_wnd = seg->wnd;
	tcp_sync_mss(t);
	t->snd_wl1 = seg->seq;
	t->snd_wl2 = seg->ack;
	t->last_rcv = now;
	if (ack_ok) {
		note_rcv_ip6(t, seg);
		syn_sent_established(t, seg, now);
		return;
	}
	tcp_set_state(t, UST_TCP_SYN_RECEIVED);
	tcp_send_syn(t, now);
}

/* ---- the synchronized states (§3.10.7.4) ---- */

/* Linux accepts a RST at the FIN's sequence number once the peer's FIN
 * is in (peers that send FIN, then RST with the same number; C40). */
static bool rst_at_fin(const struct ust_tcb *t, const struct ust_tcp_seg *seg)
{
	return (seg->flags & UST_TH_RST) && seg->seq == t->rcv_nxt - 1 &&
	       (t->state == UST_TCP_CLOSE_WAIT || t->state == UST_TCP_CLOSING ||
		t->state == UST_TCP_LAST_ACK);
}

/* RFC 9293's four cases of acceptance, and Linux's two extras: a segment
 * that ends exactly at RCV.NXT (an old pure ACK, a window probe: its ACK
 * field still counts), and a RST at the FIN. */
static bool seq_acceptable(const struct ust_tcb *t, const struct ust_tcp_seg *seg)
{
	uint32_t wnd = seq_gt(t->rcv_adv, t->rcv_nxt) ? t->rcv_adv - t->rcv_nxt : 0;
	uint32_t len = ust_seg_len(seg);

	if (len == 0 && (wnd == 0 ? seg->seq == t->rcv_nxt : seq_in(seg->seq, t->rcv_nxt, t->rcv_nxt + wnd)))
		return true;
	if (len > 0 && wnd > 0 &&
	    (seq_in(seg->seq, t->rcv_nxt, t->rcv_nxt + wnd) ||
	     seq_in(seg->seq + len - 1, t->rcv_nxt, t->rcv_nxt + wnd)))
		return true;
	return (len == 0 && seg->seq == t->rcv_nxt) || rst_at_fin(t, seg);
}

/* An unacceptable segment: "send an acknowledgment ... (unless the RST
 * bit is set, if so drop the segment and return)". Only segments without
 * data or FIN are rate-limited, as Linux (those cannot be part of an ACK
 * loop); data we already had is D-SACKed, so the sender can tell a
 * spurious retransmission, and as the sender seems not to have heard our
 * ACKs, the next ones go at once (Linux's tcp_send_dupack). */
static void seq_unacceptable(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	tcp_drop(t->tcp, UST_DROP_TCP_OUT_OF_WINDOW);
	if (seg->flags & UST_TH_RST)
		return;
	if (!seg->len && !(seg->flags & UST_TH_FIN)) {
		tcp_send_challenge_ack(t, now);
		return;
	}
	if (seg->len && seq_lt(seg->seq, t->rcv_nxt)) {
		set_dsack(t, seg->seq, seq_min(seg->seq + seg->len, t->rcv_nxt));
		tcp_enter_quickack_mode(t, TCP_MAX_QUICKACKS);
		/* Data we had, under another label than the peer's last: it
		 * timed out, so perhaps our ACKs are lost on the way: they
		 * try another path, unless we time out ourselves (Linux's
		 * tcp_rcv_spurious_retrans; kernel_peer6.py dup-data). */
		if (seq_leq(seg->seq + seg->len, t->rcv_nxt) && !ust_ip6_is_v4mapped(&seg->src)) {
			if (t->ca_state != TCP_CA_LOSS && seg->flow != t->lrcv_flow)
				tcp_flow_relabel(t, UST_EV_TCP_DUP_DATA_REHASH);
			t->lrcv_flow = seg->flow;
		}
	}
	tcp_send_ack(t, now);
}

/* "Segments with higher beginning sequence numbers may be held for later
 * processing": what lies before RCV.NXT (a retransmission overlapping what
 * we have) and beyond the window is trimmed away. */
static void seq_trim(struct ust_tcb *t, struct ust_tcp_seg *seg)
{
	uint32_t wnd = seq_gt(t->rcv_adv, t->rcv_nxt) ? t->rcv_adv - t->rcv_nxt : 0;

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
}

/* First, check the sequence number: is the segment acceptable? PAWS (RFC
 * 7323 §5) comes before it. On success the segment is trimmed to the
 * window, and its timestamp remembered if it starts at or before what we
 * acknowledged last (RFC 7323 §4.3). */
static bool step1_sequence(struct ust_tcb *t, struct ust_tcp_seg *seg, ust_time now)
{
	/* Linux tolerates one tick (TCP_PAWS_WINDOW): reordered segments
	 * sent within the same millisecond or the next are not old. */
	if (t->ts_ok && seg->opt.ts && !(seg->flags & UST_TH_RST) &&
	    seq_lt(seg->opt.ts_val + 1, t->ts_recent) && now - t->ts_recent_stamp < TCP_PAWS_IDLE) {
		tcp_drop(t->tcp, UST_DROP_TCP_PAWS);
		if (seg->len || (seg->flags & UST_TH_FIN))
			tcp_send_ack(t, now);
		else
			tcp_send_challenge_ack(t, now);
		return false;
	}
	if (!seq_acceptable(t, seg)) {
		seq_unacceptable(t, seg, now);
		return false;
	}
	seq_trim(t, seg);
	if (t->ts_ok && seg->opt.ts && seq_leq(seg->seq, t->last_ack_sent) &&
	    seq_geq(seg->opt.ts_val, t->ts_recent)) {
		t->ts_recent = seg->opt.ts_val;
		t->ts_recent_stamp = now;
	}
	return true;
}

/* Second, check the RST bit (RFC 5961 §3 as RFC 9293 took it in): exactly
 * at RCV.NXT it resets the connection (tcp_reset_received, tcp_close.c:
 * the result per state, C32-C36); elsewhere in the window it gets a
 * challenge ACK (C38, C39). Linux also takes a RST at the right edge of
 * the highest SACK block we report (tcp_validate_incoming). */
static bool step2_rst(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	bool exact = seg->seq == t->rcv_nxt || rst_at_fin(t, seg);

	if (!(seg->flags & UST_TH_RST))
		return true;
	if (!exact && t->sack_ok && t->ofo.n && seg->seq == ust_seqset_last_end(&t->ofo))
		exact = true;
	if (!exact) {
		tcp_drop(t->tcp, UST_DROP_TCP_RST_INVALID);
		tcp_send_challenge_ack(t, now);
		return false;
	}
	tcp_reset_received(t);
	return false;
}

/* Fourth, check the SYN bit: in a synchronized state a SYN gets a
 * challenge ACK and is dropped (RFC 5961 §4; C41). In SYN-RECEIVED the
 * peer's SYN again means our SYN-ACK was lost: it goes again. */
static bool step4_syn(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	if (!(seg->flags & UST_TH_SYN))
		return true;
	if (t->state == UST_TCP_SYN_RECEIVED && seg->seq == t->irs) {
		tcp_send_syn(t, now);
		return false;
	}
	tcp_drop(t->tcp, UST_DROP_TCP_SYN_INVALID);
	tcp_send_challenge_ack(t, now);
	return false;
}

/* SYN-RECEIVED: "If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED
 * state and continue processing" (FIN-WAIT-1 if the program closed
 * meanwhile); a passive child moves from the SYN queue to the accept
 * queue. "If the segment acknowledgment is not acceptable, form a reset
 * segment <SEQ=SEG.ACK><CTL=RST>". */
static bool syn_received_ack(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	if (!seq_gt(seg->ack, t->snd_una) || seq_gt(seg->ack, t->snd_max)) {
		/* In a group other stacks share, two may have answered one SYN
		 * (a member joined or left as it came): the peer took the other
		 * SYN-ACK, and a reset from here would end that connection. */
		if (t->group_shared) {
			tcp_drop_foreign(t->tcp);
			tcp_finish(t, UST_OUTCOME_RESET_RECEIVED, "the peer took another stack's SYN-ACK");
			return false;
		}
		tcp_drop(t->tcp, UST_DROP_TCP_BAD_ACK);
		tcp_send_rst_reply_listener(t, seg, now);
		return false;
	}
	/* TCP_DEFER_ACCEPT: while the period lasts, an ACK without data
	 * leaves the child waiting for data, or for the period's last
	 * SYN-ACK (Linux's tcp_check_req, TCPDeferAcceptDrop). */
	if (t->defer_accept && t->backoff < t->defer_accept && !seg->len && !(seg->flags & UST_TH_FIN)) {
		t->defer_acked = true;
		tcp_drop(t->tcp, UST_DROP_TCP_DEFER_ACCEPT);
		return false;
	}
	/* A passive child gets its buffers now (child_take_syn). */
	tcb_size_buffers(t);
	t->snd_wnd = (uint32_t)seg->wnd << t->snd_wscale;
	t->max_snd_wnd = t->snd_wnd;
	tcp_sync_mss(t);
	t->snd_wl1 = seg->seq;
	t->snd_wl2 = seg->ack;
	handshake_rtt(t, seg, now);
	tcp_init_transfer(t, now);
	/* IP_PKTOPTIONS' TOS: the byte of the segment that completes the
	 * handshake (Linux's tcp_v4_syn_recv_sock, rcv_tos from the ACK's
	 * header), for a listener's child over IPv4; its hop limit (an
	 * IPv4-mapped one's: the TTL) and over IPv6 its flow information
	 * (tcp_v6_syn_recv_sock), which an AF_INET6 socket reads. */
	if (t->listener && seg->net) {
		/* The listener's as it is now, as the options the shim
		 * copies to the accepted socket (Linux copies them here). */
		t->rx6opt = t->listener->rx6opt;
		t->rcv_hops = seg->hops;
		t->rcv_oif = true; /* Linux's mcast_oif, whatever the options */
		if (ust_ip6_is_v4mapped(&seg->src))
			t->rcv_tos = seg->net[1];
		else
			t->rcv_flowinfo = seg_flowinfo(seg);
	}
	tcp_set_state(t, t->fin_queued ? UST_TCP_FIN_WAIT_1 : UST_TCP_ESTABLISHED);
	tcp_init_buffer_space(t, now);
	if (t->listener)
		tcp_listener_accept_ready(t->listener, t);
	else
		tcp_event(t, UST_TCP_EV_CONNECTED | UST_TCP_EV_WRITABLE);
	if (t->keepalive)
		tcp_timer_set(t, UST_TT_KEEPALIVE, now + t->keep_idle);
	return true;
}

/* Fifth, check the ACK field. "If the ACK bit is off, drop the segment";
 * SYN-RECEIVED becomes ESTABLISHED; an ACK of something never sent gets
 * an ACK and the segment (its FIN included) is dropped (C42); one older
 * than the window the peer may have seen is not believable (RFC 5961
 * §5). Then what the ACK teaches (tcp_ack.c), and if it covers our FIN,
 * the closing states move on (tcp_fin_acked: FIN-WAIT-1 -> FIN-WAIT-2,
 * CLOSING -> TIME-WAIT, LAST-ACK -> CLOSED). */
static bool step5_ack(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	bool fin_was_acked = tcb_fin_acked(t);

	if (!(seg->flags & UST_TH_ACK)) {
		tcp_drop(t->tcp, UST_DROP_TCP_NO_ACK);
		return false;
	}
	if (t->state == UST_TCP_SYN_RECEIVED && !syn_received_ack(t, seg, now))
		return false;
	if (seq_gt(seg->ack, t->snd_max) || seq_lt(seg->ack, t->snd_una - t->max_snd_wnd)) {
		tcp_drop(t->tcp, UST_DROP_TCP_BAD_ACK);
		tcp_send_challenge_ack(t, now);
		return false;
	}
	tcp_ack_update(t, seg, now);
	tcp_ecn_accept_cwr(t, seg);
	if (!fin_was_acked && tcb_fin_acked(t))
		return tcp_fin_acked(t, seg, now);
	return true;
}

/* In-order text: readable at once, with whatever out-of-order data it now
 * reaches. When to ACK is tcp_rcv.c's (Linux's delayed-ACK engine); data
 * that fills a hole, or arrives while data is still held out of order, is
 * ACKed at once (RFC 5681 §4.2: "an immediate ACK SHOULD be generated
 * when ... an incoming segment fills in all or part of a gap"). */
static void receive_in_order(struct ust_tcb *t, const struct ust_tcp_seg *seg, uint32_t len,
			     ust_time now)
{
	uint32_t end = t->rcv_nxt + len, was = t->rcv_nxt;
	bool held = t->ofo.n != 0;

	while (t->ofo.n && seq_leq(t->ofo.r[0].start, end))
		end = ust_seqset_pull(&t->ofo, end);
	ust_ring_commit(&t->rcvbuf, end - was);
	t->rcv_nxt = end;
	t->lrcv_flow = seg->flow;
	t->rec.bytes_received += end - was;
	t->stats.bytes_received += end - was;
	ust_seqset_trim(&t->ofo, t->rcv_nxt);
	tcp_rcv_data(t, seg, len, now);
	tcp_ecn_check_ce(t, seg);
	/* Every gap filled: an ACK at once (Linux's ICSK_ACK_NOW). Part of
	 * them: the first of three at once for the new RCV.NXT, through SACK
	 * compression (tcp_ack_snd_check), as Linux's. */
	if (held && !t->ofo.n)
		t->ack_now = true;
	tcp_event(t, UST_TCP_EV_READABLE);
}

/* Text beyond a gap: "segments with higher beginning sequence numbers may
 * be held for later processing" (RFC 9293). It is kept where it belongs
 * in the ring, its range remembered (as many ranges as tcp_ofo_max), the
 * buffer given room for it, and ACKed with SACK blocks, the block holding
 * it first (RFC 2018 §4): at once, or with others beyond the same hole
 * once the sender has had three (tcp_rcv.c's SACK compression). */
static void receive_out_of_order(struct ust_tcb *t, const struct ust_tcp_seg *seg, uint32_t len,
				 ust_time now)
{
	/* What of it came twice: the lowest part held already, as Linux's
	 * tcp_data_queue_ofo reports it (tcp_dsack_set for the first
	 * overlap; an overlap with a later range, beyond a gap, does not
	 * extend that block). Measured on 6.18 (kernel_peer.py ofo-overlap):
	 * 3651:5111 over a held 2921:4381 is D-SACKed 3651:4381. */
	struct ust_range twice;
	bool overlap = ust_seqset_overlap(&t->ofo, seg->seq, seg->seq + len, &twice);
	/* All of it held already: nothing new for the window to grow by
	 * (Linux's "All the bits are present. Drop."). */
	bool dup = overlap && twice.start == seg->seq && twice.end == seg->seq + len;

	/* The block it will be reported in, and whether that one exists. */
	bool extends;
	unsigned slot = tcp_sack_slot(t, seg->seq, seg->seq + len, &extends);

	t->lrcv_flow = seg->flow;
	tcp_ecn_check_ce(t, seg);
	/* An ACK is owed, sent at once unless SACK compression holds it
	 * back (tcp_ack_snd_check). ACKs held back go now if this data
	 * starts a block past the first two; the one sent settles what is
	 * owed, so the new block waits for the next ACK (as in Linux:
	 * kernel_peer.py sack-compress). */
	t->ack_sched = true;
	if (!extends)
		tcp_sack_compress_flush(t, slot, now);
	if (ust_seqset_add(&t->ofo, seg->seq, seg->seq + len, tcp_ofo_max(t)) < 0) {
		/* Linux schedules no ACK for a segment it has no memory for;
		 * ours stays owed (it was sent at once before SACK
		 * compression): the sender hears that nothing moved. */
		tcp_drop(t->tcp, UST_DROP_TCP_OFO_FULL);
		tcp_rcvbuf_shed(t);
		return;
	}
	tcp_count(t->tcp, UST_EV_TCP_OFO_SEGS);
	t->stats.rcv_ooopack++;
	tcp_rcvbuf_grow(t, t->rcvq_space);
	if (overlap)
		set_dsack(t, twice.start, twice.end);
	/* Data extending a block past the first two: the ACKs held back go
	 * now, with the block grown where it was. */
	if (extends)
		tcp_sack_compress_flush(t, slot, now);
	tcp_sack_note(t, seg->seq);
	if (!dup)
		tcp_rcv_ofo_data(t, len);
}

/* The text of an acceptable segment into the receive buffer, at its place
 * past the in-order bytes, as much as the ring holds. */
static void receive_text(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
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
	if (off >= room) {
		tcp_drop(t->tcp, UST_DROP_TCP_RCV_FULL);
		return;
	}
	if (len > room - off)
		len = room - off;
	if (ust_ring_reserve(&t->rcvbuf, t->rcvbuf.len + off + len)) {
		/* Taken as lost: the peer sends it again. */
		tcp_drop(t->tcp, UST_DROP_TCP_RCV_NO_MEMORY);
		return;
	}
	ust_ring_write_at(&t->rcvbuf, t->rcvbuf.len + off, seg->data, len);
	if (off == 0)
		receive_in_order(t, seg, len, now);
	else
		receive_out_of_order(t, seg, len, now);
}

/* Seventh, process the segment text: in ESTABLISHED and FIN-WAIT-1/2
 * "deliver segment text to user RECEIVE buffers"; in CLOSE-WAIT, CLOSING,
 * LAST-ACK and TIME-WAIT "this should not occur since a FIN has been
 * received": ignored (C14). After a full close, data is answered with a
 * RST instead (tcp_data_after_close, C8, C9). */
static bool step7_text(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	if (tcp_data_after_close(t, seg, now))
		return false;
	if (!seg->len)
		return true;
	switch (t->state) {
	case UST_TCP_ESTABLISHED:
	case UST_TCP_FIN_WAIT_1:
	case UST_TCP_FIN_WAIT_2:
		receive_text(t, seg, now);
		break;
	default:
		tcp_drop(t->tcp, UST_DROP_TCP_AFTER_FIN);
		break;
	}
	return true;
}

/* Eighth, check the FIN bit: at RCV.NXT it is processed now
 * (tcp_fin_received, tcp_close.c: CLOSE-WAIT, CLOSING or TIME-WAIT); a
 * repeated FIN is ACKed again; one beyond a gap is held until the gap
 * fills (C43), and what was held beyond it is void. */
static void step8_fin(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	if (seg->flags & UST_TH_FIN) {
		uint32_t fin_seq = seg->seq + seg->len;
		if (UST_TCP_RCVD_FIN(t->state)) {
			t->ack_now = true;
		} else if (fin_seq == t->rcv_nxt) {
			tcp_fin_received(t, now);
		} else if (seq_gt(fin_seq, t->rcv_nxt)) {
			t->ofo_fin = true;
			t->ofo_fin_seq = fin_seq;
			ust_seqset_cut(&t->ofo, fin_seq);
			tcp_rcvbuf_shed(t);
			t->ack_now = true;
		}
	}
	if (t->ofo_fin && t->ofo_fin_seq == t->rcv_nxt && !UST_TCP_RCVD_FIN(t->state)) {
		t->ofo_fin = false;
		tcp_fin_received(t, now);
	}
}

/* Before the steps, SYN-RECEIVED's two special segments: the peer's SYN
 * again (our SYN-ACK was lost: send it again, at most once per 500 ms as
 * Linux), and in a simultaneous open the peer's SYN-ACK (its SYN is old
 * news: ACK at once with a D-SACK for it, as Linux, and take the ACK).
 * Returns false when the segment is done. */
static bool syn_received_syn(struct ust_tcb *t, struct ust_tcp_seg *seg, ust_time now)
{
	if (t->state != UST_TCP_SYN_RECEIVED || !(seg->flags & UST_TH_SYN) || seg->seq != t->irs ||
	    (seg->flags & UST_TH_RST))
		return true;
	if (!(seg->flags & UST_TH_ACK)) {
		if (oow_answer_allowed(t, now)) {
			/* A listener's child answers under a new label
			 * (Linux's tcp_rtx_synack). */
			if (t->listener)
				tcp_flow_relabel(t, UST_EV_TCP_TIMEOUT_REHASH);
			tcp_send_syn(t, now);
		}
		return false;
	}
	if (!t->listener && seg->len == 0 && seg->ack == t->snd_nxt) {
		seg->flags &= (uint8_t)~UST_TH_SYN;
		seg->seq++;
		set_dsack(t, t->irs, t->irs + 1);
		t->ack_now = true;
	}
	return true;
}

static void synchronized_input(struct ust_tcb *t, struct ust_tcp_seg *seg, ust_time now)
{
	/* A listener's child's handshake ends in Linux's tcp_child_process,
	 * which notes nothing of the segment for the receive options (its
	 * SYN stays kept). */
	bool child_opening = t->state == UST_TCP_SYN_RECEIVED && t->listener;

	if (!syn_received_syn(t, seg, now))
		return;
	if (!step1_sequence(t, seg, now) || !step2_rst(t, seg, now))
		return;
	/* Third, security: no IP security option is checked (RFC 9293
	 * leaves it to IP; Linux does not implement it). */
	if (!step4_syn(t, seg, now) || !step5_ack(t, seg, now))
		return;
	/* The ACK may have grown cwnd: the send buffer follows. */
	tcp_sndbuf_expand(t);
	t->last_rcv = now;
	t->keep_probes = 0;
	/* Sixth, the URG bit (tcp_urg.c): the urgent byte is noted, and
	 * the relay hands it to the program out of band. */
	tcp_urg_input(t, seg);
	if (!step7_text(t, seg, now))
		return;
	step8_fin(t, seg, now);
	if (t->state == UST_TCP_CLOSED)
		return;
	tcp_output(t, now);
	tcp_ack_snd_check(t, now);
	if (!child_opening)
		note_rcv_ip6(t, seg);
}

/* TCP_INFO's segs_in and data_segs_in, as Linux's tcp_segs_in: a frame
 * the device coalesced (GRO) counts as the segments it was made of, of the
 * peer's segment size; so do its CE marks (received_ce). */
static void tcp_count_segs_in(struct ust_tcb *t, const struct ust_tcp_seg *seg)
{
	uint32_t mss = t->rcv_seg_mss ? t->rcv_seg_mss : t->mss;
	uint32_t n = mss && seg->len > mss ? (seg->len + mss - 1) / mss : 1;

	t->stats.segs_in += n;
	if (seg->len)
		t->stats.data_segs_in += n;
	tcp_ecn_count_ce(t, seg, n);
}

/* One segment of either family, parsed (why: UST_OK) or refused: its
 * connection, a listener, or nobody (§3.10.7). */
static void segment_dispatch(struct ust_tcp *tcp, struct ust_tcp_seg *seg, ust_time now);

static void segment_arrives(struct ust_tcp *tcp, enum ust_drop why, struct ust_tcp_seg *seg, ust_time now)
{
	if (why) {
		tcp_drop(tcp, why);
		return;
	}
	tcp->seg_in = seg;
	segment_dispatch(tcp, seg, now);
	tcp->seg_in = NULL;
}

static void segment_dispatch(struct ust_tcp *tcp, struct ust_tcp_seg *seg, ust_time now)
{
	struct ust_tcb *t, *l;
	uint32_t iss = 0;
	int group;

	tcp->now = now;
	tcp_count(tcp, UST_EV_TCP_SEGS_IN);
	t = tcp_lookup(tcp, &seg->dst, seg->dport, &seg->src, seg->sport);
	if (t && t->state == UST_TCP_TIME_WAIT) {
		iss = tcp_time_wait_input(t, seg, now);
		if (!iss)
			return;
		t = NULL;
	}
	if (!t) {
		l = tcp_select_listener(tcp, seg->dport, &seg->dst, &seg->src, seg->sport,
					(seg->flags & (UST_TH_SYN | UST_TH_ACK)) == UST_TH_SYN, &group);
		if (l)
			listen_input(l, seg, now, iss, group > 0);
		else if (group < 0 && (seg->flags & (UST_TH_SYN | UST_TH_ACK)) != UST_TH_SYN &&
			 !(seg->flags & UST_TH_RST) && group_stray(tcp, seg)) {
			/* Nobody's: the group answers it once, as Linux. */
			tcp_drop(tcp, UST_DROP_TCP_NO_SOCKET);
			tcp_send_rst_reply(tcp, seg, now);
		} else if (group < 0)
			/* Another process's listener in the group takes it. */
			tcp_drop_foreign(tcp);
		else
			closed_input(tcp, seg, now);
		return;
	}
	if (under_min_hops(t, seg) || (!tcb_fin_wait_2_orphan(t) && !tcp_md5_inbound(t, seg)))
		return;
	tcp_count_segs_in(t, seg);
	if (t->state == UST_TCP_SYN_SENT)
		syn_sent_input(t, seg, now);
	else
		synchronized_input(t, seg, now);
}

void ust_tcp_input(void *ctx, const struct ust_ipv4 *ip, unsigned rxflags, ust_time now)
{
	struct ust_tcp_seg seg;
	enum ust_drop why = ip->proto != UST_IPPROTO_TCP ? UST_DROP_IP_PROTO
							 : ust_tcp_parse(ip, rxflags & UST_RX_CSUM_OK, &seg);

	seg.mac_len = rxflags & UST_RX_ETH ? UST_ETH_HLEN : 0;
	seg.looped = rxflags & UST_RX_LOOPED;
	segment_arrives(ctx, why, &seg, now);
}

void ust_tcp_input6(void *ctx, const struct ust_ipv6 *ip, unsigned rxflags, ust_time now)
{
	struct ust_tcp_seg seg;
	enum ust_drop why = ip->proto != UST_IPPROTO_TCP ? UST_DROP_IP_PROTO
							 : ust_tcp_parse6(ip, rxflags & UST_RX_CSUM_OK, &seg);

	seg.mac_len = rxflags & UST_RX_ETH ? UST_ETH_HLEN : 0;
	seg.looped = rxflags & UST_RX_LOOPED;
	segment_arrives(ctx, why, &seg, now);
}
