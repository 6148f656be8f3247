/* IPv6 input and output, and ICMPv6 (RFC 8200, RFC 4443). Neighbor
 * Discovery is in nd.c, the neighbour cache shared with ARP in arp.c.
 *
 * A stack holds at most two IPv6 addresses: the link-local one derived from
 * its MAC and the one USTCP_ADDR6 gives, each usable only once DAD passed.
 * It listens to the all-nodes group and to the solicited-node groups of
 * its addresses, and to nothing else: no MLD (the groups a host needs on a
 * switch that snoops would be announced by it; a veth or a plain switch
 * floods them). */
#include <errno.h>
#include <string.h>

#include "log.h"
#include "stack.h"

static inline void count_drop(struct ust_stack *st, enum ust_drop why)
{
	st->ctr.drop[why]++;
}

int ust_ip6_addr_index(const struct ust_stack *st, const struct ust_ip6 *a)
{
	for (int i = 0; i < 2; i++)
		if (st->addr6[i].state != UST_ADDR6_NONE && ust_ip6_eq(&st->addr6[i].a, a))
			return i;
	return -1;
}

bool ust_ip6_is_ours(const struct ust_stack *st, const struct ust_ip6 *a)
{
	int i = ust_ip6_addr_index(st, a);

	return i >= 0 && st->addr6[i].state == UST_ADDR6_PREFERRED;
}

/* A multicast group we listen to: all nodes, or the solicited-node group
 * of an address we hold or are checking. */
static bool group_joined(const struct ust_stack *st, const struct ust_ip6 *a)
{
	if (ust_ip6_is_all_nodes(a))
		return true;
	if (!ust_ip6_is_solicited_node(a))
		return false;
	for (int i = 0; i < 2; i++) {
		struct ust_ip6 g = ust_ip6_solicited_node(&st->addr6[i].a);
		if ((st->addr6[i].state == UST_ADDR6_TENTATIVE || st->addr6[i].state == UST_ADDR6_PREFERRED) &&
		    ust_ip6_eq(&g, a))
			return true;
	}
	return false;
}

const struct ust_ip6 *ust_ip6_source(const struct ust_stack *st, const struct ust_ip6 *dst)
{
	const struct ust_addr6 *ll = &st->addr6[UST_ADDR6_LINK_LOCAL], *gl = &st->addr6[UST_ADDR6_GLOBAL];

	/* RFC 6724 rule 2, the only one with a choice to make here: the
	 * address of the destination's scope (link-local for fe80::/10 and
	 * the link-scope groups), the global one for the rest. */
	if ((ust_ip6_is_link_local(dst) || (ust_ip6_is_multicast(dst) && (dst->b[1] & 0x0f) == 2)) &&
	    ll->state == UST_ADDR6_PREFERRED)
		return &ll->a;
	return gl->state == UST_ADDR6_PREFERRED ? &gl->a : NULL;
}

/* The next hop for a unicast dst: itself when on the link (link-local,
 * in our prefix, or anything on an L3 link without a router), else the
 * default router. False when there is no route. */
static bool route6(const struct ust_stack *st, const struct ust_ip6 *dst, struct ust_ip6 *nexthop)
{
	const struct ust_netif *nif = &st->nif;

	if (ust_ip6_is_unspecified(dst) || ust_ip6_is_loopback(dst) || ust_ip6_is_v4mapped(dst) ||
	    ust_ip6_addr_index(st, dst) >= 0)
		return false;
	if (ust_ip6_is_link_local(dst) || ust_ip6_prefix_eq(dst, &nif->addr6, nif->prefix6) ||
	    (nif->l3 && ust_ip6_is_unspecified(&nif->gw6))) {
		*nexthop = *dst;
		return true;
	}
	if (ust_ip6_is_unspecified(&nif->gw6))
		return false;
	*nexthop = nif->gw6;
	return true;
}

int ust_ip6_send(struct ust_stack *st, struct ust_pkt *p, const struct ust_ip6 *src, const struct ust_ip6 *dst,
		 uint8_t proto, uint8_t tclass, uint8_t hop_limit, uint32_t flow, ust_time now)
{
	return ust_ip6_send_ext(st, p, src, dst, proto, tclass, hop_limit, flow, NULL, now);
}

int ust_ip6_send_ext(struct ust_stack *st, struct ust_pkt *p, const struct ust_ip6 *src,
		     const struct ust_ip6 *final, uint8_t proto, uint8_t tclass, uint8_t hop_limit, uint32_t flow,
		     const struct ust_ip6_ext *ext, ust_time now)
{
	uint8_t *h;
	struct ust_ip6 nexthop, first_hop;
	const struct ust_ip6 *dst = final;
	bool mcast;
	uint16_t payload_len;

	if (ext && ext->len) {
		/* Before the source is chosen: for the first hop, as Linux's
		 * fl6_update_dst routes. */
		proto = ust_ip6_ext_build(ust_pkt_push(p, ext->len), ext, final, proto, &first_hop);
		dst = &first_hop;
	}
	mcast = ust_ip6_is_multicast(dst);

	if (!src)
		src = ust_ip6_source(st, dst);
	/* Our own address: looped (ust_stack_loop), no route needed. */
	bool looped = src && !mcast && ust_ip6_is_ours(st, dst);

	if (!src || (!mcast && !looped && !route6(st, dst, &nexthop))) {
		count_drop(st, UST_DROP_TX_NO_ROUTE);
		ust_pkt_free(&st->pool, p);
		return src ? -ENETUNREACH : -EADDRNOTAVAIL;
	}
	payload_len = (uint16_t)p->len;
	h = ust_pkt_push(p, UST_IPV6_HLEN);
	ust_ipv6_build(h, src, dst, proto, tclass, payload_len, hop_limit);
	ust_put32(h, ust_get32(h) | (flow & UST_IPV6_FLOW_MASK));
	if (looped) {
		ust_stack_loop_queue(st, p);
		return 0;
	}
	if (st->nif.l3) {
		ust_stack_queue_frame(st, p);
		return 0;
	}
	if (mcast) {
		uint8_t mac[UST_ETH_ALEN];

		ust_ip6_multicast_mac(dst, mac);
		ust_eth_build(ust_pkt_push(p, UST_ETH_HLEN), mac, st->nif.mac, UST_ETHERTYPE_IPV6);
		ust_stack_queue_frame(st, p);
		return 0;
	}
	ust_neigh_output(st, p, &nexthop, now);
	return 0;
}

/* ---- ICMPv6 ---- */

static int icmp6_send(struct ust_stack *st, const struct ust_ip6 *src, const struct ust_ip6 *dst, uint8_t type,
		      uint32_t rest, const uint8_t *data, size_t len, ust_time now)
{
	struct ust_pkt *p;

	if (!src)
		src = ust_ip6_source(st, dst);
	if (!src) {
		count_drop(st, UST_DROP_TX_NO_ROUTE);
		return -EADDRNOTAVAIL;
	}
	p = ust_pkt_alloc(&st->pool);
	if (!p) {
		count_drop(st, UST_DROP_TX_NO_BUFFER);
		return -ENOBUFS;
	}
	if (UST_ICMP6_HLEN + len > ust_ip6_max_payload(st))
		len = ust_ip6_max_payload(st) - UST_ICMP6_HLEN;
	if (len)
		memcpy(p->data + UST_ICMP6_HLEN, data, len);
	p->len = (uint32_t)(UST_ICMP6_HLEN + len);
	ust_icmp6_build(p->data, type, 0, rest, len, src, dst);
	return ust_ip6_send(st, p, src, dst, UST_IPPROTO_ICMPV6, 0, UST_IPV6_HOP_LIMIT_DEFAULT, 0, now);
}

int ust_icmp6_echo_request(struct ust_stack *st, const struct ust_ip6 *dst, uint16_t id, uint16_t seq,
			   const uint8_t *data, size_t len, ust_time now)
{
	if (UST_ICMP6_HLEN + len > ust_ip6_max_payload(st))
		return -EMSGSIZE;
	return icmp6_send(st, NULL, dst, UST_ICMP6_ECHO_REQUEST, (uint32_t)id << 16 | seq, data, len, now);
}

static void icmp6_error_input(struct ust_stack *st, const struct ust_ipv6 *ip, const struct ust_icmp6 *icmp,
			      ust_time now)
{
	struct ust_icmp6_error err;
	enum ust_drop why = ust_icmp6_error_parse(icmp, &err);

	if (why) {
		count_drop(st, why);
		return;
	}
	err.hop_limit = ip->hop_limit;
	/* Only errors about datagrams we sent concern us. */
	if (ust_ip6_addr_index(st, &err.src) < 0) {
		count_drop(st, UST_DROP_ICMP6_TYPE);
		return;
	}
	st->ctr.event[UST_EV_ICMP6_ERRORS_IN]++;
	if (st->upper.icmp6_error)
		st->upper.icmp6_error(st->upper.ctx, &err, now);
}

static void icmp6_input(struct ust_stack *st, const struct ust_ipv6 *ip, bool mcast, ust_time now)
{
	struct ust_icmp6 icmp;
	enum ust_drop why = ust_icmp6_parse(ip, &icmp);

	if (why) {
		count_drop(st, why);
		return;
	}
	/* From the unspecified address only DAD's solicitations come. */
	if (ust_ip6_is_unspecified(&ip->src) && icmp.type != UST_ND_NEIGHBOR_SOLICIT) {
		count_drop(st, UST_DROP_IP6_BAD_SRC);
		return;
	}
	switch (icmp.type) {
	case UST_ICMP6_ECHO_REQUEST:
		/* Linux answers echo to a group too (icmpv6 echo_ignore_multicast
		 * is 0), from the address it would use towards the asker. */
		if (st->answers && !st->answers(st->answers_ctx)) {
			count_drop(st, UST_DROP_ECHO_OTHERS);
			return;
		}
		st->ctr.event[UST_EV_ICMP6_ECHO_IN]++;
		icmp6_send(st, mcast ? NULL : &ip->dst, &ip->src, UST_ICMP6_ECHO_REPLY, icmp.rest, icmp.data,
			   icmp.data_len, now);
		return;
	case UST_ICMP6_ECHO_REPLY:
		if (!mcast && st->upper.echo_reply6)
			st->upper.echo_reply6(st->upper.ctx, &ip->src, icmp.rest, icmp.data, icmp.data_len, now);
		return;
	case UST_ICMP6_DEST_UNREACH:
	case UST_ICMP6_PACKET_TOO_BIG:
	case UST_ICMP6_TIME_EXCEEDED:
	case UST_ICMP6_PARAM_PROBLEM:
		icmp6_error_input(st, ip, &icmp, now);
		return;
	case UST_ND_NEIGHBOR_SOLICIT:
	case UST_ND_NEIGHBOR_ADVERT:
		if (!st->nif.l3) {
			ust_nd_input(st, ip, &icmp, now);
			return;
		}
		break;
	default:
		break;
	}
	/* Router advertisements (USTCP_GW names the router), redirects, MLD
	 * queries, and NDP on a link without link-layer addresses. */
	count_drop(st, UST_DROP_ICMP6_TYPE);
}

/* ---- IPv6 input ---- */

void ust_ip6_input(struct ust_stack *st, const uint8_t *buf, size_t len, unsigned rxflags, ust_time now)
{
	struct ust_ipv6 ip;
	enum ust_drop why;
	bool mcast;

	if (!st->nif.has_addr6) {
		count_drop(st, UST_DROP_IP_VERSION);
		return;
	}
	why = ust_ipv6_parse(buf, len, &ip);
	if (why) {
		count_drop(st, why);
		return;
	}
	mcast = ust_ip6_is_multicast(&ip.dst);
	/* RFC 4862 §5.4: a tentative address is not ours yet. */
	if (mcast ? !group_joined(st, &ip.dst) : !ust_ip6_is_ours(st, &ip.dst)) {
		count_drop(st, UST_DROP_IP6_NOT_FOR_US);
		return;
	}
	/* Linux's ip6_rcv_core refuses a multicast or loopback source and an
	 * IPv4-mapped one (RFC 4291 §2.5.5.2); ours would be a loop. */
	if (ust_ip6_is_multicast(&ip.src) || ust_ip6_is_loopback(&ip.src) || ust_ip6_is_v4mapped(&ip.src) ||
	    (ust_ip6_addr_index(st, &ip.src) >= 0 && !(rxflags & UST_RX_LOOPED)) ||
	    (ust_ip6_is_unspecified(&ip.src) && ip.proto != UST_IPPROTO_ICMPV6)) {
		count_drop(st, UST_DROP_IP6_BAD_SRC);
		return;
	}
	if (ip.proto == UST_IPPROTO_ICMPV6) {
		icmp6_input(st, &ip, mcast, now);
		return;
	}
	if (mcast) {
		count_drop(st, UST_DROP_IP6_NOT_FOR_US);
		return;
	}
	if (!st->upper.ip6_input) {
		count_drop(st, UST_DROP_IP_PROTO);
		return;
	}
	st->upper.ip6_input(st->upper.ctx, &ip, rxflags, now);
}
