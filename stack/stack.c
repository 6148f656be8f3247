/* Ethernet demultiplexing, IPv4 input and output, ICMP. IPv6 is in
 * stack6.c and nd.c. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "stack.h"


static inline void count_drop(struct ust_stack *st, enum ust_drop why)
{
	st->ctr.drop[why]++;
}

int ust_stack_init(struct ust_stack *st, const struct ust_netif *nif, unsigned pool_size,
		   ust_output_fn output, void *output_ctx)
{
	memset(st, 0, sizeof(*st));
	st->nif = *nif;
	st->output = output;
	st->output_ctx = output_ctx;
	st->ip_id = (uint16_t)(nif->addr ^ (nif->addr >> 16));
	st->loop_tail = &st->loop_head;
	if (nif->has_addr6) {
		/* Both addresses go through DAD before use, from the first
		 * call of the timers; an L3 link has no neighbours to ask
		 * (Linux does no DAD on IFF_NOARP devices) and no link-local
		 * address derived from a MAC. */
		uint8_t state = nif->l3 ? UST_ADDR6_PREFERRED : UST_ADDR6_TENTATIVE;

		st->addr6[UST_ADDR6_GLOBAL].a = nif->addr6;
		st->addr6[UST_ADDR6_GLOBAL].state = state;
		if (!nif->l3) {
			st->addr6[UST_ADDR6_LINK_LOCAL].a = ust_ip6_link_local(nif->mac);
			st->addr6[UST_ADDR6_LINK_LOCAL].state = state;
		}
	}
	return ust_pool_init(&st->pool, pool_size, nif->mtu);
}

void ust_stack_destroy(struct ust_stack *st)
{
	ust_arp_flush(st);
	for (unsigned i = 0; i < st->txq_len; i++)
		ust_pkt_free(&st->pool, st->txq[i]);
	st->txq_len = 0;
	while (st->loop_head) {
		struct ust_pkt *p = st->loop_head;
		st->loop_head = p->next;
		ust_pkt_free(&st->pool, p);
	}
	st->loop_tail = &st->loop_head;
	ust_pool_destroy(&st->pool);
}

void ust_stack_flush(struct ust_stack *st)
{
	unsigned sent = 0;

	if (st->txq_len && st->output)
		sent = st->output(st->output_ctx, st->txq, st->txq_len);
	/* What the link did not take is lost, as a full device queue loses it;
	 * TCP retransmits. */
	if (sent < st->txq_len)
		st->ctr.drop[UST_DROP_TX_ERROR] += st->txq_len - sent;
	for (unsigned i = 0; i < st->txq_len; i++)
		ust_pkt_free(&st->pool, st->txq[i]);
	st->txq_len = 0;
}

void ust_stack_queue_frame(struct ust_stack *st, struct ust_pkt *p)
{
	if (st->txq_len == UST_TXQ_MAX)
		ust_stack_flush(st);
	st->txq[st->txq_len++] = p;
}

void ust_stack_loop_queue(struct ust_stack *st, struct ust_pkt *p)
{
	st->ctr.event[UST_EV_LOOPED]++;
	p->next = NULL;
	*st->loop_tail = p;
	st->loop_tail = &p->next;
}

static void ipv4_input(struct ust_stack *st, const uint8_t *buf, size_t len, unsigned rxflags,
		       ust_time now);

bool ust_stack_loop(struct ust_stack *st, ust_time now)
{
	struct ust_pkt *p = st->loop_head;

	st->loop_head = NULL;
	st->loop_tail = &st->loop_head;
	while (p) {
		struct ust_pkt *next = p->next;

		st->loop_foreign = false;
		ust_stack_input_looped(st, p->data, p->len, now);
		/* (Its TCP checksum may be left partial: the other stack
		 * trusts it as we do.) */
		if (st->loop_foreign && st->loop_away)
			st->loop_away(st->loop_away_ctx, p->data, p->len);
		ust_pkt_free(&st->pool, p);
		p = next;
	}
	return st->loop_head != NULL;
}

void ust_stack_input_looped(struct ust_stack *st, const uint8_t *dgram, size_t len, ust_time now)
{
	unsigned flags = UST_RX_CSUM_OK | UST_RX_LOOPED;

	if (len && dgram[0] >> 4 == 6)
		ust_ip6_input(st, dgram, len, flags, now);
	else
		ipv4_input(st, dgram, len, flags, now);
}

ust_time ust_stack_timers(struct ust_stack *st, ust_time now)
{
	if (st->nif.l3)
		return UST_TIME_NEVER;
	return ust_time_min(ust_arp_timers(st, now), ust_nd_timers(st, now));
}

void ust_stack_unreachable(struct ust_stack *st, const struct ust_ip6 *dst, ust_time now)
{
	if (ust_ip6_is_v4mapped(dst)) {
		if (st->upper.unreachable)
			st->upper.unreachable(st->upper.ctx, ust_ip6_to_v4(dst), EHOSTUNREACH, now);
	} else if (st->upper.unreachable6) {
		st->upper.unreachable6(st->upper.ctx, dst, EHOSTUNREACH, now);
	}
}

/* ---- IPv4 output ---- */

/* Addresses that are never a host's on the wire: 0/8, loopback, multicast,
 * class E and the limited broadcast. */
static bool ip_martian(uint32_t a)
{
	return (a >> 24) == 0 || (a >> 24) == 127 || (a >> 28) >= 0xe;
}

/* The subnet's broadcast address (on /31 and /32 every address is a host). */
static bool ip_subnet_bcast(const struct ust_netif *nif, uint32_t a)
{
	return nif->mask < 0xfffffffeu && a == (nif->addr | ~nif->mask);
}

/* The next hop for dst, or 0 when there is no route. On an L3 link every
 * destination is reached through the link itself (a tun or WireGuard
 * interface routes everything it is given). */
static uint32_t route(const struct ust_netif *nif, uint32_t dst)
{
	if (dst == nif->addr)
		return dst; /* looped (ust_stack_loop) */
	if (ip_martian(dst) || ip_subnet_bcast(nif, dst))
		return 0;
	if (((dst ^ nif->addr) & nif->mask) == 0 || (nif->l3 && !nif->gw))
		return dst;
	return nif->gw;
}

bool ust_ip_addr_local(const void *ctx, uint32_t a)
{
	const struct ust_stack *st = ctx;

	return a == st->nif.addr || ip_martian(a) || ust_ip_is_limited_bcast(a) || ip_subnet_bcast(&st->nif, a);
}

uint32_t ust_ip_ms_of_day(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint32_t)(ts.tv_sec % 86400) * 1000u + (uint32_t)(ts.tv_nsec / 1000000);
}

bool ust_ip_routable(const struct ust_stack *st, uint32_t dst)
{
	return route(&st->nif, dst) != 0;
}

int ust_ip_output(struct ust_stack *st, struct ust_pkt *p, uint32_t dst, uint8_t proto, uint8_t tos,
		  ust_time now)
{
	const struct ust_ip_hdr h = { .tos = tos, .ttl = UST_IP_TTL_DEFAULT, .df = true };

	return ust_ip_send(st, p, dst, proto, &h, now);
}

int ust_ip_send(struct ust_stack *st, struct ust_pkt *p, uint32_t dst, uint8_t proto,
		const struct ust_ip_hdr *h, ust_time now)
{
	const struct ust_ip4_opts *o = h->opts;
	uint32_t final = dst, nexthop;
	uint8_t *hdr;

	if (o && o->srr)
		dst = o->faddr; /* Linux's ip_queue_xmit: routed to the first hop */
	nexthop = route(&st->nif, dst);
	/* A strict source route's first hop must be a neighbour (Linux's
	 * ip_queue_xmit: no route when it takes a gateway). */
	if (!nexthop || (o && o->srr && o->strict && nexthop != dst)) {
		count_drop(st, UST_DROP_TX_NO_ROUTE);
		ust_pkt_free(&st->pool, p);
		return nexthop ? -EHOSTUNREACH : -ENETUNREACH;
	}
	hdr = ust_pkt_push(p, UST_IPV4_HLEN + (o ? o->len : 0));
	/* We never fragment; DF unless the socket asked for none
	 * (IP_MTU_DISCOVER), as Linux's ip_dont_fragment. */
	ust_ipv4_build_tos(hdr, st->nif.addr, dst, proto, h->tos, (uint16_t)p->len, st->ip_id++, h->ttl,
			   h->df ? UST_IP_DF : 0);
	if (o && o->len) {
		ust_ip4_opts_build(hdr, o, st->nif.addr, final, o->ts_needtime ? ust_ip_ms_of_day() : 0);
		ust_ipv4_set_hlen(hdr, UST_IPV4_HLEN + o->len);
	}
	if (dst == st->nif.addr) {
		ust_stack_loop_queue(st, p);
		return 0;
	}
	if (st->nif.l3) {
		ust_stack_queue_frame(st, p);
		return 0;
	}
	ust_arp_output(st, p, nexthop, now);
	return 0;
}

/* ---- ICMP ---- */

static int icmp_send(struct ust_stack *st, uint32_t dst, uint8_t type, uint32_t rest,
		     const uint8_t *data, size_t len, ust_time now)
{
	struct ust_pkt *p = ust_pkt_alloc(&st->pool);

	if (!p) {
		count_drop(st, UST_DROP_TX_NO_BUFFER);
		return -ENOBUFS;
	}
	if (UST_ICMP_HLEN + len > ust_ip_max_payload(st))
		len = ust_ip_max_payload(st) - UST_ICMP_HLEN;
	if (len)
		memcpy(p->data + UST_ICMP_HLEN, data, len);
	p->len = (uint32_t)(UST_ICMP_HLEN + len);
	ust_icmp_build(p->data, type, 0, rest, len);
	return ust_ip_output(st, p, dst, UST_IPPROTO_ICMP, 0, now);
}

int ust_icmp_echo_request(struct ust_stack *st, uint32_t dst, uint16_t id, uint16_t seq,
			  const uint8_t *data, size_t len, ust_time now)
{
	if (UST_ICMP_HLEN + len > ust_ip_max_payload(st))
		return -EMSGSIZE;
	return icmp_send(st, dst, UST_ICMP_ECHO_REQUEST, (uint32_t)id << 16 | seq, data, len, now);
}

static void icmp_input(struct ust_stack *st, const struct ust_ipv4 *ip, ust_time now)
{
	struct ust_icmp icmp;
	struct ust_icmp_error err;
	enum ust_drop why = ust_icmp_parse(ip->payload, ip->payload_len, &icmp);

	if (why) {
		count_drop(st, why);
		return;
	}
	switch (icmp.type) {
	case UST_ICMP_ECHO_REQUEST:
		if (st->answers && !st->answers(st->answers_ctx)) {
			count_drop(st, UST_DROP_ECHO_OTHERS);
			break;
		}
		st->ctr.event[UST_EV_ICMP_ECHO_IN]++;
		icmp_send(st, ip->src, UST_ICMP_ECHO_REPLY, icmp.rest, icmp.data, icmp.data_len, now);
		return;
	case UST_ICMP_ECHO_REPLY:
		if (st->upper.echo_reply)
			st->upper.echo_reply(st->upper.ctx, ip->src, icmp.rest, icmp.data,
					     icmp.data_len, now);
		return;
	case UST_ICMP_DEST_UNREACH:
	case UST_ICMP_TIME_EXCEEDED:
	case UST_ICMP_PARAM_PROBLEM:
		why = ust_icmp_error_parse(&icmp, &err);
		if (why) {
			count_drop(st, why);
			return;
		}
		/* Only errors about datagrams we sent concern us. */
		if (err.src != st->nif.addr) {
			count_drop(st, UST_DROP_ICMP_TYPE);
			return;
		}
		st->ctr.event[UST_EV_ICMP_ERRORS_IN]++;
		if (st->upper.icmp_error)
			st->upper.icmp_error(st->upper.ctx, &err, now);
		return;
	default:
		count_drop(st, UST_DROP_ICMP_TYPE);
		return;
	}
}

/* ---- IPv4 input ---- */

static bool src_acceptable(const struct ust_netif *nif, uint32_t src)
{
	return !ip_martian(src) && !ip_subnet_bcast(nif, src) && src != nif->addr;
}

static void ipv4_input(struct ust_stack *st, const uint8_t *buf, size_t len, unsigned rxflags,
		       ust_time now)
{
	struct ust_ipv4 ip;
	enum ust_drop why = ust_ipv4_parse(buf, len, &ip);

	if (why) {
		count_drop(st, why);
		return;
	}
	if (ip.dst != st->nif.addr) {
		count_drop(st, UST_DROP_IP_NOT_FOR_US);
		return;
	}
	/* (Our own address is a source only of what we looped.) */
	if (!src_acceptable(&st->nif, ip.src) && !(rxflags & UST_RX_LOOPED && ip.src == st->nif.addr)) {
		count_drop(st, UST_DROP_IP_BAD_SRC);
		return;
	}
	if (ip.proto == UST_IPPROTO_ICMP) {
		icmp_input(st, &ip, now);
		return;
	}
	if (!st->upper.ip_input) {
		count_drop(st, UST_DROP_IP_PROTO);
		return;
	}
	st->upper.ip_input(st->upper.ctx, &ip, rxflags, now);
}

/* ---- Ethernet ---- */

void ust_stack_input(struct ust_stack *st, const uint8_t *frame, size_t len,
		     unsigned rxflags, ust_time now)
{
	struct ust_eth eth;
	enum ust_drop why;

	st->ctr.event[UST_EV_RX_FRAMES]++;
	st->ctr.event[UST_EV_RX_BYTES] += len;
	if (rxflags & UST_RX_CSUM_OK)
		st->ctr.event[UST_EV_RX_CSUM_OFFLOADED]++;
	if (st->nif.l3) {
		/* A tun link's datagram says its family in its first nibble. */
		if (len && frame[0] >> 4 == 6)
			ust_ip6_input(st, frame, len, rxflags, now);
		else
			ipv4_input(st, frame, len, rxflags, now);
		return;
	}
	why = ust_eth_parse(frame, len, &eth);
	if (why) {
		count_drop(st, why);
		return;
	}
	/* Ours, broadcast, or an IPv6 multicast group (33:33:…): which
	 * groups we listen to, IPv6 input decides. */
	if (memcmp(eth.dst, st->nif.mac, UST_ETH_ALEN) != 0 && !ust_mac_is_broadcast(eth.dst) &&
	    !(eth.type == UST_ETHERTYPE_IPV6 && eth.dst[0] == 0x33 && eth.dst[1] == 0x33)) {
		count_drop(st, UST_DROP_ETH_NOT_FOR_US);
		return;
	}
	switch (eth.type) {
	case UST_ETHERTYPE_IPV4:
		ipv4_input(st, frame + UST_ETH_HLEN, len - UST_ETH_HLEN, rxflags | UST_RX_ETH, now);
		return;
	case UST_ETHERTYPE_ARP:
		ust_arp_input(st, frame + UST_ETH_HLEN, len - UST_ETH_HLEN, now);
		return;
	case UST_ETHERTYPE_IPV6:
		if (!st->nif.has_addr6)
			break;
		ust_ip6_input(st, frame + UST_ETH_HLEN, len - UST_ETH_HLEN, rxflags | UST_RX_ETH, now);
		return;
	case UST_ETHERTYPE_VLAN:
		count_drop(st, UST_DROP_ETH_VLAN);
		return;
	default:
		break;
	}
	count_drop(st, UST_DROP_ETH_TYPE);
}
