/* Neighbor Discovery (RFC 4861) for a host: answering solicitations for
 * our addresses, soliciting neighbours for the cache in arp.c, and
 * duplicate address detection (RFC 4862 §5.4) before an address is used.
 *
 * What a host may skip and ustcp does: router solicitation and
 * advertisements (USTCP_GW names the router), redirects, MLD reports, the
 * random delay before the first DAD solicitation, and NUD's DELAY state
 * (no upper-layer hint confirms reachability: a neighbour is asked again
 * UST_ARP_REACHABLE after its last answer, as ARP's are). */
#include <string.h>

#include "log.h"
#include "stack.h"

#define ND_OPT_LEN 8 /* a link-layer address option on Ethernet */

/* An NS or NA for target from src to dst, with our link-layer address as
 * an option when lladdr_opt: the ICMPv6 message in a fresh buffer, or NULL
 * (counted) when the pool is empty. */
static struct ust_pkt *nd_message(struct ust_stack *st, uint8_t type, const struct ust_ip6 *src,
				  const struct ust_ip6 *dst, const struct ust_ip6 *target, uint32_t flags,
				  bool lladdr_opt)
{
	struct ust_pkt *p = ust_pkt_alloc(&st->pool);
	size_t len = 16 + (lladdr_opt ? ND_OPT_LEN : 0);
	uint8_t *b;

	if (!p) {
		st->ctr.drop[UST_DROP_TX_NO_BUFFER]++;
		return NULL;
	}
	b = p->data + UST_ICMP6_HLEN;
	memcpy(b, target->b, 16);
	if (lladdr_opt) {
		b[16] = type == UST_ND_NEIGHBOR_SOLICIT ? UST_ND_OPT_SOURCE_LLADDR : UST_ND_OPT_TARGET_LLADDR;
		b[17] = 1;
		memcpy(b + 18, st->nif.mac, UST_ETH_ALEN);
	}
	p->len = (uint32_t)(UST_ICMP6_HLEN + len);
	ust_icmp6_build(p->data, type, 0, flags, len, src, dst);
	st->ctr.event[type == UST_ND_NEIGHBOR_SOLICIT ? UST_EV_ND_NS_OUT : UST_EV_ND_NA_OUT]++;
	return p;
}

/* The message through ust_ip6_send: to a group directly, to a neighbour
 * through the cache. */
static void nd_send(struct ust_stack *st, uint8_t type, const struct ust_ip6 *src, const struct ust_ip6 *dst,
		    const struct ust_ip6 *target, uint32_t flags, bool lladdr_opt, ust_time now)
{
	struct ust_pkt *p = nd_message(st, type, src, dst, target, flags, lladdr_opt);

	if (p)
		ust_ip6_send(st, p, src, dst, UST_IPPROTO_ICMPV6, 0, UST_ND_HOP_LIMIT, 0, now);
}

/* A solicitation to a neighbour's MAC directly: the frame is built here,
 * not through the cache that is asking. */
static void nd_solicit_unicast(struct ust_stack *st, const struct ust_ip6 *src, const struct ust_ip6 *target,
			       const uint8_t *mac)
{
	struct ust_pkt *p = nd_message(st, UST_ND_NEIGHBOR_SOLICIT, src, target, target, 0, true);
	uint16_t len;

	if (!p)
		return;
	len = (uint16_t)p->len;
	ust_ipv6_build(ust_pkt_push(p, UST_IPV6_HLEN), src, target, UST_IPPROTO_ICMPV6, 0, len, UST_ND_HOP_LIMIT);
	ust_eth_build(ust_pkt_push(p, UST_ETH_HLEN), mac, st->nif.mac, UST_ETHERTYPE_IPV6);
	ust_stack_queue_frame(st, p);
}

void ust_nd_solicit(struct ust_stack *st, const struct ust_ip6 *target, const uint8_t *mac)
{
	const struct ust_ip6 *src = ust_ip6_source(st, target);
	struct ust_ip6 group;

	/* No address to ask from: the entry fails as if unanswered. */
	if (!src)
		return;
	if (mac) {
		nd_solicit_unicast(st, src, target, mac);
		return;
	}
	group = ust_ip6_solicited_node(target);
	nd_send(st, UST_ND_NEIGHBOR_SOLICIT, src, &group, target, 0, true, 0);
}

static void dad_failed(struct ust_stack *st, struct ust_addr6 *a)
{
	char buf[46];

	a->state = UST_ADDR6_DUPLICATE;
	st->ctr.event[UST_EV_ND_DAD_FAILED]++;
	ust_log(UST_LOG_WARN, "IPv6 address %s is in use by another node on the link (DAD): not used",
		ust_ip6_str(&a->a, buf));
}

ust_time ust_nd_timers(struct ust_stack *st, ust_time now)
{
	ust_time next = UST_TIME_NEVER;

	for (unsigned i = 0; i < 2; i++) {
		struct ust_addr6 *a = &st->addr6[i];

		if (a->state != UST_ADDR6_TENTATIVE)
			continue;
		if (a->dad_sent && now >= a->dad_deadline && a->dad_sent >= UST_DAD_TRANSMITS) {
			char buf[46];

			/* RFC 4862 §5.4.4: nobody answered; it is ours. */
			a->state = UST_ADDR6_PREFERRED;
			ust_log(UST_LOG_INFO, "IPv6 address %s passed DAD", ust_ip6_str(&a->a, buf));
			continue;
		}
		if (!a->dad_sent || now >= a->dad_deadline) {
			static const struct ust_ip6 unspecified;
			struct ust_ip6 group = ust_ip6_solicited_node(&a->a);

			/* RFC 4862 §5.4.2: from the unspecified address, to
			 * the address's solicited-node group, no option. */
			nd_send(st, UST_ND_NEIGHBOR_SOLICIT, &unspecified, &group, &a->a, 0, false, now);
			a->dad_sent++;
			a->dad_deadline = now + UST_ARP_RETRANS;
		}
		next = ust_time_min(next, a->dad_deadline);
	}
	return next;
}

bool ust_nd_addr_checked(struct ust_stack *st, const struct ust_ip6 *a)
{
	int i = ust_ip6_addr_index(st, a);

	/* Before our first solicitation only: once DAD began, it ends. */
	if (i < 0 || st->addr6[i].state != UST_ADDR6_TENTATIVE || st->addr6[i].dad_sent)
		return false;
	st->addr6[i].state = UST_ADDR6_PREFERRED;
	st->ctr.event[UST_EV_ND_DAD_SHARED]++;
	return true;
}

/* RFC 4861 §7.2.3-7.2.4, for a solicitation of one of our addresses. */
static void ns_input(struct ust_stack *st, const struct ust_ipv6 *ip, const struct ust_nd *nd,
		     struct ust_addr6 *a, ust_time now)
{
	static const struct ust_ip6 all_nodes = { .b = { 0xff, 0x02, [15] = 0x01 } };

	if (a->state == UST_ADDR6_TENTATIVE) {
		/* RFC 4862 §5.4.3: another node checks the same address;
		 * a solicitation from an address is someone resolving it
		 * while it is not ours yet, and goes unanswered. */
		if (ust_ip6_is_unspecified(&ip->src))
			dad_failed(st, a);
		else
			st->ctr.drop[UST_DROP_ND_NOT_FOR_US]++;
		return;
	}
	st->ctr.event[UST_EV_ND_NS_IN]++;
	if (ust_ip6_is_unspecified(&ip->src)) {
		/* Someone's DAD for our address: tell every node. */
		nd_send(st, UST_ND_NEIGHBOR_ADVERT, &a->a, &all_nodes, &a->a, UST_ND_NA_OVERRIDE, true, now);
		return;
	}
	/* We will talk to the asker: remember it, as an ARP request makes
	 * us remember its sender. Without its address in the message the
	 * answer resolves it first. */
	if (nd->has_lladdr) {
		struct ust_neigh *n = ust_neigh_find(st, &ip->src);
		if (!n)
			n = ust_neigh_create(st, &ip->src, now);
		if (n)
			ust_neigh_confirm(st, n, nd->lladdr, now);
	}
	nd_send(st, UST_ND_NEIGHBOR_ADVERT, &a->a, &ip->src, &a->a, UST_ND_NA_SOLICITED | UST_ND_NA_OVERRIDE,
		true, now);
}

/* RFC 4861 §7.2.5: an advertisement updates an entry that exists. */
static void na_input(struct ust_stack *st, const struct ust_nd *nd, ust_time now)
{
	struct ust_neigh *n = ust_neigh_find(st, &nd->target);

	if (!n || (n->state == UST_NEIGH_INCOMPLETE && !nd->has_lladdr)) {
		st->ctr.drop[UST_DROP_ND_NOT_FOR_US]++;
		return;
	}
	if (nd->flags & UST_ND_NA_SOLICITED) {
		if (nd->has_lladdr && (nd->flags & UST_ND_NA_OVERRIDE || n->state == UST_NEIGH_INCOMPLETE))
			ust_neigh_confirm(st, n, nd->lladdr, now);
		else if (!nd->has_lladdr || !memcmp(nd->lladdr, n->mac, UST_ETH_ALEN))
			ust_neigh_confirm(st, n, n->mac, now);
		return;
	}
	/* Unsolicited: a new address overrides ours, to be checked again;
	 * what the other stacks on our address were told of it no longer
	 * holds (RFC 4861 §7.2.5: STALE, not REACHABLE). */
	if (n->state == UST_NEIGH_INCOMPLETE) {
		ust_neigh_learn(st, n, nd->lladdr, now);
		n->state = UST_NEIGH_STALE;
		n->deadline = now;
	} else if (nd->has_lladdr && (nd->flags & UST_ND_NA_OVERRIDE) &&
		   memcmp(nd->lladdr, n->mac, UST_ETH_ALEN) != 0) {
		memcpy(n->mac, nd->lladdr, UST_ETH_ALEN);
		n->state = UST_NEIGH_STALE;
		n->probes = 0;
		n->deadline = now;
	} else {
		return;
	}
	if (st->neigh_note)
		st->neigh_note(st->neigh_ctx, &n->addr, NULL);
}

void ust_nd_input(struct ust_stack *st, const struct ust_ipv6 *ip, const struct ust_icmp6 *icmp, ust_time now)
{
	struct ust_nd nd;
	enum ust_drop why = ust_nd_parse(ip, icmp, &nd);
	int i;

	if (why) {
		st->ctr.drop[why]++;
		return;
	}
	i = ust_ip6_addr_index(st, &nd.target);
	if (nd.type == UST_ND_NEIGHBOR_SOLICIT) {
		if (i < 0 || st->addr6[i].state == UST_ADDR6_DUPLICATE) {
			st->ctr.drop[UST_DROP_ND_NOT_FOR_US]++;
			return;
		}
		ns_input(st, ip, &nd, &st->addr6[i], now);
		return;
	}
	st->ctr.event[UST_EV_ND_NA_IN]++;
	if (i >= 0) {
		/* Someone answers for an address of ours: while it is
		 * tentative, it is theirs (§5.4.4); afterwards, a conflict
		 * to report, not to fight (as ARP's). */
		if (st->addr6[i].state == UST_ADDR6_TENTATIVE)
			dad_failed(st, &st->addr6[i]);
		else
			st->ctr.drop[UST_DROP_ND_NOT_FOR_US]++;
		return;
	}
	na_input(st, &nd, now);
}
