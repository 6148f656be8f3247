/* Errors from below: ICMP and ICMPv6 about a segment we sent (RFC 9293
 * §3.9.2.2, RFC 1122 §4.2.3.9, RFC 5927's checks), and a neighbour that
 * never answered ARP or neighbour solicitations. As in Linux, hard errors
 * end a connection that is still being set up; an established one only
 * notes them, and "fragmentation needed" or "packet too big" lowers the
 * MSS (RFC 1191, RFC 8201). */
#include <errno.h>

#include "tcp_impl.h"

/* The connection an ICMP or ICMPv6 error quotes, if what it quotes is in
 * flight (RFC 5927 §4.1); NULL (counted) otherwise. */
static struct ust_tcb *quoted_tcb(struct ust_tcp *tcp, const struct ust_ip6 *src, const struct ust_ip6 *dst,
				  const uint8_t *l4)
{
	struct ust_tcb *t = tcp_lookup(tcp, src, ust_get16(l4), dst, ust_get16(l4 + 2));
	uint32_t seq = ust_get32(l4 + 4);

	if (!t || !seq_between(seq, t->snd_una, t->snd_max)) {
		tcp_drop(tcp, UST_DROP_ICMP_TCP_STALE);
		return NULL;
	}
	return t;
}

/* A smaller path MTU: the MSS follows it, less the headers and the
 * timestamps, never below Linux's 48 (tcp_mtu_to_mss: IP options or
 * extension headers may take all the rest), and what is in flight and no
 * longer fits goes again. */
static void path_mtu_lower(struct ust_tcb *t, unsigned mtu, ust_time now)
{
	unsigned fixed = tcp_net_hlen(t) + UST_TCP_HLEN;
	unsigned mss = tcp_mss_from(t, mtu > fixed ? mtu - fixed : 0, t->ts_ok);

	if (!UST_TCP_SYNCHRONIZED(t->state) || t->state == UST_TCP_TIME_WAIT)
		return;
	if (mss < t->mss_path) {
		t->mss_path = (uint16_t)mss;
		tcp_sync_mss(t);
		t->pmtu = (uint16_t)mtu;
		tcp_simple_retransmit(t, now);
	}
}

/* IP_MINTTL and IPV6_MINHOPCOUNT (RFC 5082) hold for errors about a
 * connection too, as Linux's tcp_v4_err and tcp_v6_err check them: over
 * IPv4 the TTL quoted, over IPv6 the hop limit of the ICMPv6 message
 * itself; not for a listener's child still in SYN-RECEIVED (Linux's
 * request socket, tcp_req_err) nor in TIME-WAIT. */
static bool under_min(const struct ust_tcb *t, uint8_t seen, uint8_t min, enum ust_drop why)
{
	if (!min || seen >= min || t->state == UST_TCP_TIME_WAIT ||
	    (t->state == UST_TCP_SYN_RECEIVED && t->listener))
		return false;
	tcp_drop(t->tcp, why);
	return true;
}

void ust_tcp_icmp_error(void *ctx, const struct ust_icmp_error *e, ust_time now)
{
	struct ust_tcp *tcp = ctx;
	struct ust_ip6 src, dst;
	struct ust_tcb *t;

	if (e->proto != UST_IPPROTO_TCP)
		return;
	tcp->now = now;
	src = ust_ip6_from_v4(e->src);
	dst = ust_ip6_from_v4(e->dst);
	t = quoted_tcb(tcp, &src, &dst, e->l4);
	if (!t || under_min(t, e->ttl, t->min_ttl, UST_DROP_TCP_MINTTL))
		return;
	if (e->type == UST_ICMP_DEST_UNREACH && e->code == 4 && UST_TCP_SYNCHRONIZED(t->state) &&
	    t->state != UST_TCP_TIME_WAIT) {
		/* Fragmentation needed: a smaller path MTU (RFC 1191). */
		path_mtu_lower(t, e->mtu >= 576 ? e->mtu : 576, now);
		return;
	}
	/* Hard errors end a connection that is still being set up, as in
	 * Linux; an established one only notes them. Time exceeded counts
	 * as host unreachable there. */
	if (t->state != UST_TCP_SYN_SENT && t->state != UST_TCP_SYN_RECEIVED)
		return;
	if (e->type == UST_ICMP_TIME_EXCEEDED) {
		tcp_die(t, EHOSTUNREACH, UST_OUTCOME_UNREACHABLE, "time exceeded (ICMP)");
		return;
	}
	if (e->type != UST_ICMP_DEST_UNREACH)
		return;
	/* Codes to errno as Linux's icmp_err_convert. */
	switch (e->code) {
	case 0: case 6: case 9: case 11:
		tcp_die(t, ENETUNREACH, UST_OUTCOME_UNREACHABLE, "network unreachable (ICMP)");
		break;
	case 2:
		tcp_die(t, ENOPROTOOPT, UST_OUTCOME_UNREACHABLE, "protocol unreachable (ICMP)");
		break;
	case 3:
		tcp_die(t, ECONNREFUSED, UST_OUTCOME_REFUSED, "port unreachable (ICMP)");
		break;
	case 5:
		tcp_die(t, EOPNOTSUPP, UST_OUTCOME_UNREACHABLE, "source route failed (ICMP)");
		break;
	case 7:
		tcp_die(t, EHOSTDOWN, UST_OUTCOME_UNREACHABLE, "host unknown (ICMP)");
		break;
	case 8:
		tcp_die(t, ENONET, UST_OUTCOME_UNREACHABLE, "host isolated (ICMP)");
		break;
	default:
		tcp_die(t, EHOSTUNREACH, UST_OUTCOME_UNREACHABLE, "host unreachable (ICMP)");
		break;
	}
}

void ust_tcp_icmp6_error(void *ctx, const struct ust_icmp6_error *e, ust_time now)
{
	struct ust_tcp *tcp = ctx;
	struct ust_tcb *t;

	if (e->proto != UST_IPPROTO_TCP)
		return;
	tcp->now = now;
	t = quoted_tcb(tcp, &e->src, &e->dst, e->l4);
	if (!t || under_min(t, e->hop_limit, t->min_hops, UST_DROP_TCP_MINHOPCOUNT))
		return;
	if (e->type == UST_ICMP6_PACKET_TOO_BIG) {
		/* RFC 8201 §4 says to take an MTU below the minimum link
		 * MTU as 1280; Linux's tcp_v6_err drops such a message
		 * instead (since 5.14: nothing on a link of ours is below
		 * 1280, so the message is forged or wrong), and so does a
		 * socket whose IPV6_MTU_DISCOVER is INTERFACE or OMIT
		 * (ip6_sk_accept_pmtu). Measured on 6.18 (032-shim6.bats):
		 * MTU 1000 and 1279 leave TCP_MAXSEG at 1428. */
		if (e->mtu < UST_IPV6_MIN_MTU || t->ip6_pmtudisc == UST_PMTUDISC_INTERFACE ||
		    t->ip6_pmtudisc == UST_PMTUDISC_OMIT) {
			tcp_drop(tcp, UST_DROP_ICMP6_PTB_IGNORED);
			return;
		}
		path_mtu_lower(t, e->mtu, now);
		return;
	}
	/* As Linux's tcp_v6_err: a connection being set up ends on any
	 * other error, with icmpv6_err_convert's errno; an established one
	 * only notes it. */
	if (t->state != UST_TCP_SYN_SENT && t->state != UST_TCP_SYN_RECEIVED)
		return;
	switch (e->type) {
	case UST_ICMP6_DEST_UNREACH:
		switch (e->code) {
		case 0: /* no route */
			tcp_die(t, ENETUNREACH, UST_OUTCOME_UNREACHABLE, "no route (ICMPv6)");
			break;
		case 1: case 5: case 6: /* prohibited, failed policy, reject route */
			tcp_die(t, EACCES, UST_OUTCOME_UNREACHABLE, "prohibited (ICMPv6)");
			break;
		case 4:
			tcp_die(t, ECONNREFUSED, UST_OUTCOME_REFUSED, "port unreachable (ICMPv6)");
			break;
		default: /* beyond scope, address unreachable */
			tcp_die(t, EHOSTUNREACH, UST_OUTCOME_UNREACHABLE, "address unreachable (ICMPv6)");
			break;
		}
		break;
	case UST_ICMP6_TIME_EXCEEDED:
		tcp_die(t, EHOSTUNREACH, UST_OUTCOME_UNREACHABLE, "time exceeded (ICMPv6)");
		break;
	case UST_ICMP6_PARAM_PROBLEM:
		tcp_die(t, EPROTO, UST_OUTCOME_UNREACHABLE, "parameter problem (ICMPv6)");
		break;
	default:
		break;
	}
}

/* Every SYN-SENT to dst ends: its neighbour never answered. */
static void neighbour_failed(struct ust_tcp *tcp, const struct ust_ip6 *dst, int err, const char *why)
{
	for (unsigned i = 0; i < tcp->hash_size; i++) {
		struct ust_tcb *t = tcp->hash[i], *next;
		for (; t; t = next) {
			next = t->hnext;
			if (ust_ip6_eq(&t->raddr, dst) && t->state == UST_TCP_SYN_SENT)
				tcp_die(t, err, UST_OUTCOME_UNREACHABLE, why);
		}
	}
}

void ust_tcp_unreachable(void *ctx, uint32_t dst, int err, ust_time now)
{
	struct ust_tcp *tcp = ctx;
	const struct ust_ip6 a = ust_ip6_from_v4(dst);

	tcp->now = now;
	neighbour_failed(tcp, &a, err, "no ARP answer");
}

void ust_tcp_unreachable6(void *ctx, const struct ust_ip6 *dst, int err, ust_time now)
{
	struct ust_tcp *tcp = ctx;

	tcp->now = now;
	neighbour_failed(tcp, dst, err, "no neighbour advertisement");
}
