/* ARP (RFC 826): answering for our address, and a neighbour cache that
 * resolves next hops, parks datagrams while it asks, retries, and reports
 * failure as host-unreachable. */
#ifndef USTCP_ARP_H
#define USTCP_ARP_H

#include "base.h"
#include "pkt.h"
#include "wire.h"

#define UST_NEIGH_MAX 64            /* entries in the cache */
#define UST_NEIGH_QUEUE_MAX 64      /* datagrams parked per unresolved entry */
#define UST_ARP_PROBES 3            /* requests before giving up (Linux: 3) */
#define UST_ARP_RETRANS UST_SEC(1)  /* between requests (Linux retrans_time) */
#define UST_ARP_REACHABLE UST_SEC(30) /* trust an answer this long, then refresh */

enum ust_neigh_state {
	UST_NEIGH_FREE = 0,
	UST_NEIGH_INCOMPLETE, /* asked, no answer yet; datagrams wait */
	UST_NEIGH_REACHABLE,  /* answered recently */
	UST_NEIGH_STALE,      /* still used, and being re-asked */
};

struct ust_neigh {
	uint32_t ip;
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
ust_time ust_arp_timers(struct ust_stack *st, ust_time now);
void ust_arp_flush(struct ust_stack *st);
/* The cache entry for ip, or NULL (for tests and ustcp-stat). */
const struct ust_neigh *ust_arp_lookup(const struct ust_stack *st, uint32_t ip);

#endif
