/* ARP, and the neighbour cache of both families: answering, resolving,
 * retrying.
 *
 * The cache is small and scanned linearly: a host talks to a handful of
 * on-link neighbours (usually just its gateway). An entry asks up to
 * UST_ARP_PROBES times, UST_ARP_RETRANS apart, and while it asks, datagrams
 * for it wait in a bounded queue; when nobody answers they are dropped and
 * the upper layer is told the host is unreachable, as Linux reports
 * EHOSTUNREACH. An answer is trusted for UST_ARP_REACHABLE; after that the
 * entry is still used but asked again, and forgotten if the asking fails:
 * NUD (RFC 4861 §7.3) reduced to what detects a dead neighbour. IPv6
 * entries ask with neighbour solicitations (nd.c) by the same rules. */
#include <errno.h>
#include <string.h>

#include "stack.h"

/* Inlined where every datagram sent looks its next hop up. */
static inline __attribute__((always_inline)) struct ust_neigh *neigh_find(struct ust_stack *st,
									 const struct ust_ip6 *addr)
{
	for (unsigned i = 0; i < UST_NEIGH_MAX; i++)
		if (st->arp.n[i].state != UST_NEIGH_FREE && ust_ip6_eq(&st->arp.n[i].addr, addr))
			return &st->arp.n[i];
	return NULL;
}

struct ust_neigh *ust_neigh_find(struct ust_stack *st, const struct ust_ip6 *addr)
{
	return neigh_find(st, addr);
}

const struct ust_neigh *ust_arp_lookup(const struct ust_stack *st, uint32_t ip)
{
	struct ust_ip6 key = ust_ip6_from_v4(ip);

	return ust_neigh_find((struct ust_stack *)st, &key);
}

static void neigh_drop_queue(struct ust_stack *st, struct ust_neigh *n, enum ust_drop why)
{
	while (n->q_head) {
		struct ust_pkt *p = n->q_head;
		n->q_head = p->next;
		st->ctr.drop[why]++;
		ust_pkt_free(&st->pool, p);
	}
	n->q_tail = NULL;
	n->qlen = 0;
}

static void neigh_free(struct ust_stack *st, struct ust_neigh *n)
{
	neigh_drop_queue(st, n, UST_DROP_TX_ARP_FAILED);
	memset(n, 0, sizeof(*n));
}

/* A free entry, else the least recently used resolved one. Entries being
 * resolved are never evicted: datagrams wait in them. */
static struct ust_neigh *neigh_alloc(struct ust_stack *st, const struct ust_ip6 *addr)
{
	struct ust_neigh *victim = NULL;

	for (unsigned i = 0; i < UST_NEIGH_MAX; i++) {
		struct ust_neigh *n = &st->arp.n[i];
		if (n->state == UST_NEIGH_FREE) {
			victim = n;
			break;
		}
		if (n->state != UST_NEIGH_INCOMPLETE && (!victim || n->used < victim->used))
			victim = n;
	}
	if (!victim)
		return NULL;
	neigh_free(st, victim);
	victim->addr = *addr;
	victim->ethertype = ust_ip6_is_v4mapped(addr) ? UST_ETHERTYPE_IPV4 : UST_ETHERTYPE_IPV6;
	return victim;
}

struct ust_neigh *ust_neigh_create(struct ust_stack *st, const struct ust_ip6 *addr, ust_time now)
{
	struct ust_neigh *n = neigh_alloc(st, addr);

	if (n)
		n->used = now;
	return n;
}

static void arp_send(struct ust_stack *st, uint16_t op, const uint8_t *eth_dst,
		     const uint8_t *tha, uint32_t tpa)
{
	struct ust_pkt *p = ust_pkt_alloc(&st->pool);
	struct ust_arp arp = { .op = op, .spa = st->nif.addr, .tpa = tpa };

	if (!p) {
		st->ctr.drop[UST_DROP_TX_NO_BUFFER]++;
		return;
	}
	memcpy(arp.sha, st->nif.mac, UST_ETH_ALEN);
	memcpy(arp.tha, tha, UST_ETH_ALEN);
	ust_arp_build(p->data, &arp);
	p->len = UST_ARP_LEN;
	ust_eth_build(ust_pkt_push(p, UST_ETH_HLEN), eth_dst, st->nif.mac, UST_ETHERTYPE_ARP);
	/* Ethernet's minimum frame: pad with zeros to 60 bytes. */
	memset(p->data + p->len, 0, 60 - p->len);
	p->len = 60;
	st->ctr.event[op == UST_ARP_REQUEST ? UST_EV_ARP_REQUESTS_OUT : UST_EV_ARP_REPLIES_OUT]++;
	ust_stack_queue_frame(st, p);
}

static void neigh_request(struct ust_stack *st, struct ust_neigh *n, ust_time now)
{
	static const uint8_t zero[UST_ETH_ALEN];

	/* A STALE entry asks its neighbour directly first, as Linux's unicast
	 * probes do; an unresolved one broadcasts (multicasts, for IPv6). */
	if (n->ethertype == UST_ETHERTYPE_IPV6)
		ust_nd_solicit(st, &n->addr, n->state == UST_NEIGH_STALE ? n->mac : NULL);
	else
		arp_send(st, UST_ARP_REQUEST, n->state == UST_NEIGH_STALE ? n->mac : ust_eth_broadcast,
			 zero, ust_ip6_to_v4(&n->addr));
	n->probes++;
	n->deadline = now + UST_ARP_RETRANS;
}

static void frame_to(struct ust_stack *st, const struct ust_neigh *n, struct ust_pkt *p)
{
	ust_eth_build(ust_pkt_push(p, UST_ETH_HLEN), n->mac, st->nif.mac, n->ethertype);
	ust_stack_queue_frame(st, p);
}

/* The neighbour answered or spoke to us: it is reachable at mac, and what
 * waited for it can go. */
void ust_neigh_confirm(struct ust_stack *st, struct ust_neigh *n, const uint8_t *mac, ust_time now)
{
	if (st->neigh_note)
		st->neigh_note(st->neigh_ctx, &n->addr, mac);
	ust_neigh_learn(st, n, mac, now);
}

void ust_neigh_learn(struct ust_stack *st, struct ust_neigh *n, const uint8_t *mac, ust_time now)
{
	memcpy(n->mac, mac, UST_ETH_ALEN);
	n->state = UST_NEIGH_REACHABLE;
	n->probes = 0;
	n->deadline = now + UST_ARP_REACHABLE;
	while (n->q_head) {
		struct ust_pkt *p = n->q_head;
		n->q_head = p->next;
		p->next = NULL;
		frame_to(st, n, p);
	}
	n->q_tail = NULL;
	n->qlen = 0;
}

void ust_arp_output(struct ust_stack *st, struct ust_pkt *p, uint32_t nexthop, ust_time now)
{
	struct ust_ip6 key = ust_ip6_from_v4(nexthop);

	ust_neigh_output(st, p, &key, now);
}

void ust_neigh_output(struct ust_stack *st, struct ust_pkt *p, const struct ust_ip6 *nexthop, ust_time now)
{
	struct ust_neigh *n = neigh_find(st, nexthop);

	if (!n) {
		uint8_t mac[UST_ETH_ALEN];
		ust_time age;

		n = neigh_alloc(st, nexthop);
		if (!n) {
			st->ctr.drop[UST_DROP_TX_ARP_QUEUE]++;
			ust_pkt_free(&st->pool, p);
			return;
		}
		/* Another stack on our address confirmed it lately: trusted
		 * for what is left of its reachable time, as one host's
		 * neighbour table would be. */
		if (st->neigh_recall && st->neigh_recall(st->neigh_ctx, nexthop, mac, &age) &&
		    age < UST_ARP_REACHABLE) {
			ust_neigh_learn(st, n, mac, now);
			n->deadline -= age;
			st->ctr.event[UST_EV_NEIGH_SHARED]++;
		} else {
			n->state = UST_NEIGH_INCOMPLETE;
			neigh_request(st, n, now);
		}
	}
	n->used = now;
	if (n->state == UST_NEIGH_REACHABLE || n->state == UST_NEIGH_STALE) {
		if (n->state == UST_NEIGH_REACHABLE && now >= n->deadline) {
			n->state = UST_NEIGH_STALE;
			n->probes = 0;
			neigh_request(st, n, now);
		}
		frame_to(st, n, p);
		return;
	}
	/* Unresolved: park the datagram; when the queue is full the oldest
	 * goes, as in Linux. */
	if (n->qlen == UST_NEIGH_QUEUE_MAX) {
		struct ust_pkt *old = n->q_head;
		n->q_head = old->next;
		n->qlen--;
		st->ctr.drop[UST_DROP_TX_ARP_QUEUE]++;
		ust_pkt_free(&st->pool, old);
		if (!n->q_head)
			n->q_tail = NULL;
	}
	p->next = NULL;
	if (n->q_tail)
		n->q_tail->next = p;
	else
		n->q_head = p;
	n->q_tail = p;
	n->qlen++;
}

ust_time ust_arp_timers(struct ust_stack *st, ust_time now)
{
	ust_time next = UST_TIME_NEVER;

	for (unsigned i = 0; i < UST_NEIGH_MAX; i++) {
		struct ust_neigh *n = &st->arp.n[i];

		if (n->state == UST_NEIGH_INCOMPLETE || n->state == UST_NEIGH_STALE) {
			if (now >= n->deadline) {
				if (n->probes < UST_ARP_PROBES) {
					neigh_request(st, n, now);
				} else {
					struct ust_ip6 addr = n->addr;
					bool waited = n->state == UST_NEIGH_INCOMPLETE;
					neigh_free(st, n);
					if (waited)
						ust_stack_unreachable(st, &addr, now);
					continue;
				}
			}
			next = ust_time_min(next, n->deadline);
		}
		/* A REACHABLE entry turns STALE lazily, on its next use. */
	}
	return next;
}

void ust_arp_flush(struct ust_stack *st)
{
	for (unsigned i = 0; i < UST_NEIGH_MAX; i++)
		if (st->arp.n[i].state != UST_NEIGH_FREE)
			neigh_free(st, &st->arp.n[i]);
}

void ust_arp_input(struct ust_stack *st, const uint8_t *buf, size_t len, ust_time now)
{
	struct ust_arp arp;
	struct ust_neigh *n;
	struct ust_ip6 key;
	enum ust_drop why = ust_arp_parse(buf, len, &arp);

	if (why) {
		st->ctr.drop[why]++;
		return;
	}
	if (arp.spa == st->nif.addr) {
		/* Someone else claims our address. Say so; do not fight. */
		st->ctr.event[UST_EV_ARP_CONFLICT]++;
		st->ctr.drop[UST_DROP_ARP_BAD_SENDER]++;
		return;
	}
	if (ust_mac_is_multicast(arp.sha) || ust_mac_is_zero(arp.sha)) {
		st->ctr.drop[UST_DROP_ARP_BAD_SENDER]++;
		return;
	}
	if (arp.spa == 0) {
		/* An address probe (RFC 5227): someone checks whether an
		 * address is free. Linux answers for its own addresses, to the
		 * prober's hardware address with target 0.0.0.0; nothing is
		 * learned. */
		if (arp.op == UST_ARP_REQUEST && arp.tpa == st->nif.addr) {
			st->ctr.event[UST_EV_ARP_REQUESTS_IN]++;
			arp_send(st, UST_ARP_REPLY, arp.sha, arp.sha, 0);
		} else {
			st->ctr.drop[UST_DROP_ARP_NOT_FOR_US]++;
		}
		return;
	}
	/* RFC 826: merge the sender into an existing entry, whoever the
	 * target. */
	key = ust_ip6_from_v4(arp.spa);
	n = ust_neigh_find(st, &key);
	if (arp.tpa != st->nif.addr) {
		if (n)
			ust_neigh_confirm(st, n, arp.sha, now);
		st->ctr.drop[UST_DROP_ARP_NOT_FOR_US]++;
		return;
	}
	if (arp.op == UST_ARP_REPLY) {
		/* An answer; an unsolicited one creates no entry (Linux's
		 * arp_accept=0). */
		st->ctr.event[UST_EV_ARP_REPLIES_IN]++;
		if (n)
			ust_neigh_confirm(st, n, arp.sha, now);
		return;
	}
	/* A request for us: we will talk to the asker, so remember it, and
	 * answer to its hardware address (not the frame's source). */
	st->ctr.event[UST_EV_ARP_REQUESTS_IN]++;
	if (!n)
		n = ust_neigh_create(st, &key, now);
	if (n)
		ust_neigh_confirm(st, n, arp.sha, now);
	arp_send(st, UST_ARP_REPLY, arp.sha, arp.sha, arp.spa);
}
