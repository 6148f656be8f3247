/* ARP (RFC 826): answering for our address, and the neighbour cache of
 * both families that resolves next hops, parks datagrams while it asks,
 * retries, and reports failure as host-unreachable. An IPv4 neighbour is
 * asked by ARP, an IPv6 one by a neighbour solicitation (nd.c, RFC 4861):
 * the cache itself does not care which. */
#ifndef USTCP_ARP_H
#define USTCP_ARP_H

#include "base.h"
#include "pkt.h"
#include "wire6.h"

#define UST_NEIGH_MAX 64            /* entries in the cache */
#define UST_NEIGH_QUEUE_MAX 64      /* datagrams parked per unresolved entry */
#define UST_ARP_PROBES 3            /* requests before giving up (Linux: 3, ARP and NDP alike) */
#define UST_ARP_RETRANS UST_SEC(1)  /* between requests (Linux retrans_time; RFC 4861's RetransTimer) */
#define UST_ARP_REACHABLE UST_SEC(30) /* trust an answer this long, then refresh (ReachableTime) */

enum ust_neigh_state {
	UST_NEIGH_FREE = 0,
	UST_NEIGH_INCOMPLETE, /* asked, no answer yet; datagrams wait */
	UST_NEIGH_REACHABLE,  /* answered recently */
	UST_NEIGH_STALE,      /* still used, and being re-asked */
};

struct ust_neigh {
	struct ust_ip6 addr;   /* an IPv4 neighbour's address mapped (::ffff:a.b.c.d) */
	uint16_t ethertype;    /* of the datagrams to it: IPv4 or IPv6, by addr */
	uint8_t mac[UST_ETH_ALEN];
	uint8_t state;
	uint8_t probes;        /* requests sent in this round */
	ust_time deadline;     /* next request (INCOMPLETE, STALE) or staleness (REACHABLE) */
	ust_time used;         /* last time a datagram went to it: evict the oldest */
	struct ust_pkt *q_head, *q_tail;
	unsigned qlen;
};

struct ust_arp_table {
	struct ust_neigh n[UST_NEIGH_MAX];
};

struct ust_stack;

void ust_arp_input(struct ust_stack *st, const uint8_t *buf, size_t len, ust_time now);
/* Sends p (an IPv4 datagram) to nexthop's MAC, asking for it first if needed. */
void ust_arp_output(struct ust_stack *st, struct ust_pkt *p, uint32_t nexthop, ust_time now);
/* The same for an IP datagram of either family, nexthop mapped for IPv4. */
void ust_neigh_output(struct ust_stack *st, struct ust_pkt *p, const struct ust_ip6 *nexthop, ust_time now);
/* The entry for addr, or NULL. */
struct ust_neigh *ust_neigh_find(struct ust_stack *st, const struct ust_ip6 *addr);
/* A new entry for addr (evicting the least recently used resolved one),
 * or NULL when every entry is waiting for an answer. */
struct ust_neigh *ust_neigh_create(struct ust_stack *st, const struct ust_ip6 *addr, ust_time now);
/* The neighbour answered or spoke to us: reachable at mac; what waited
 * for it goes; the other stacks on our address are told (neigh_note). */
void ust_neigh_confirm(struct ust_stack *st, struct ust_neigh *n, const uint8_t *mac, ust_time now);
/* The same, this stack alone: for what is to be checked again (an
 * unsolicited advertisement), which the others must not trust. */
void ust_neigh_learn(struct ust_stack *st, struct ust_neigh *n, const uint8_t *mac, ust_time now);
ust_time ust_arp_timers(struct ust_stack *st, ust_time now);
void ust_arp_flush(struct ust_stack *st);
/* The cache entry for ip, or NULL (for tests and ustcp-stat). */
const struct ust_neigh *ust_arp_lookup(const struct ust_stack *st, uint32_t ip);

#endif
