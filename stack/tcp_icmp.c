/* Errors from below: ICMP about a segment we sent (RFC 9293 §3.9.2.2, RFC
 * 1122 §4.2.3.9, RFC 5927's checks), and a neighbour that never answered
 * ARP. As in Linux, hard errors end a connection that is still being set
 * up; an established one only notes them, and "fragmentation needed"
 * lowers the MSS (RFC 1191). */
#include <errno.h>

#include "tcp_impl.h"

void ust_tcp_icmp_error(void *ctx, const struct ust_icmp_error *e, ust_time now)
{
	struct ust_tcp *tcp = ctx;
	struct ust_tcb *t;
	uint32_t seq;

	if (e->proto != UST_IPPROTO_TCP)
		return;
	tcp->now = now;
	t = tcp_lookup(tcp, e->src, ust_get16(e->l4), e->dst, ust_get16(e->l4 + 2));
	seq = ust_get32(e->l4 + 4);
	/* RFC 5927 §4.1: only for something in flight. */
	if (!t || !seq_between(seq, t->snd_una, t->snd_max)) {
		tcp_drop(tcp, UST_DROP_ICMP_TCP_STALE);
		return;
	}
	if (e->type == UST_ICMP_DEST_UNREACH && e->code == 4 && UST_TCP_SYNCHRONIZED(t->state) &&
	    t->state != UST_TCP_TIME_WAIT) {
		/* Fragmentation needed: a smaller path MTU (RFC 1191). */
		unsigned mtu = e->mtu >= 576 ? e->mtu : 576;
		unsigned mss = mtu - 40 - (t->ts_ok ? 12 : 0);
		if (mss < t->mss) {
			t->mss = (uint16_t)mss;
			tcp_simple_retransmit(t, now);
		}
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

void ust_tcp_unreachable(void *ctx, uint32_t dst, int err, ust_time now)
{
	struct ust_tcp *tcp = ctx;

	tcp->now = now;
	for (unsigned i = 0; i < tcp->hash_size; i++) {
		struct ust_tcb *t = tcp->hash[i], *next;
		for (; t; t = next) {
			next = t->hnext;
			if (t->raddr == dst && t->state == UST_TCP_SYN_SENT)
				tcp_die(t, err, UST_OUTCOME_UNREACHABLE, "no ARP answer");
		}
	}
}
