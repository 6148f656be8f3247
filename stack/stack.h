/* The network layer of one ustcp stack: an interface with our own IPv4
 * address, ARP, IPv4 and ICMP; and when it is given an IPv6 address, IPv6
 * (stack6.c), ICMPv6 and Neighbor Discovery (nd.c) beside them. Transport
 * protocols plug in through the handlers below.
 *
 * Nothing here does I/O or reads a clock. Frames come in through
 * ust_stack_input() with the time they arrived; frames to send are handed to
 * the output function in batches; timers run when ust_stack_timers() is
 * called. The link layer (link.c) and tests are the two drivers. */
#ifndef USTCP_STACK_H
#define USTCP_STACK_H

#include "arp.h"
#include "base.h"
#include "counters.h"
#include "pkt.h"
#include "wire6.h"

/* Flags describing a received frame. */
#define UST_RX_CSUM_OK 0x1 /* the kernel vouches for the transport checksum
			    * (PACKET_AUXDATA: not filled in yet, or verified) */
#define UST_RX_LOOPED 0x2  /* we sent it to our own address (ust_stack_loop) */
#define UST_RX_ETH 0x4     /* an Ethernet header (UST_ETH_HLEN) precedes the datagram */

struct ust_stack;

struct ust_netif {
	bool l3;                       /* no Ethernet header, no ARP (tun) */
	uint8_t mac[UST_ETH_ALEN];
	uint32_t addr, mask;           /* ours; host order */
	uint32_t gw;                   /* default gateway, 0 for on-link only */
	/* IPv6, when has_addr6: our global (or unique local) address and its
	 * on-link prefix, and the default router (link-local or in the
	 * prefix; all zero for none). On Ethernet the stack also holds the
	 * link-local address derived from mac (ust_ip6_link_local). */
	bool has_addr6;
	struct ust_ip6 addr6;
	unsigned prefix6;
	struct ust_ip6 gw6;
	unsigned mtu;
	/* The output completes TCP checksums (ust_pkt.csum_l4): the link
	 * does, offloading it to the kernel where it can. */
	bool tx_csum_partial;
};

/* Where the layers above hear about things. Every member may be NULL. */
struct ust_upper {
	void *ctx;
	/* A datagram for an IP protocol other than ICMP. */
	void (*ip_input)(void *ctx, const struct ust_ipv4 *ip, unsigned rxflags, ust_time now);
	/* An ICMP error quoting one of our datagrams. */
	void (*icmp_error)(void *ctx, const struct ust_icmp_error *err, ust_time now);
	/* An ICMP echo reply (for the ping client of the test host). */
	void (*echo_reply)(void *ctx, uint32_t from, uint32_t rest, const uint8_t *data,
			   size_t len, ust_time now);
	/* Datagrams to dst were dropped because it cannot be reached: err is
	 * EHOSTUNREACH (no ARP answer). */
	void (*unreachable)(void *ctx, uint32_t dst, int err, ust_time now);
	/* The same four for IPv6 (no neighbour advertisement, for the last). */
	void (*ip6_input)(void *ctx, const struct ust_ipv6 *ip, unsigned rxflags, ust_time now);
	void (*icmp6_error)(void *ctx, const struct ust_icmp6_error *err, ust_time now);
	void (*echo_reply6)(void *ctx, const struct ust_ip6 *from, uint32_t rest, const uint8_t *data,
			    size_t len, ust_time now);
	void (*unreachable6)(void *ctx, const struct ust_ip6 *dst, int err, ust_time now);
};

/* An IPv6 address of ours through duplicate address detection (RFC 4862
 * §5.4): tentative until a solicitation for it went unanswered for a
 * second, then ours; duplicate (and never used) if another node claimed
 * it meanwhile. */
enum ust_addr6_state {
	UST_ADDR6_NONE = 0,
	UST_ADDR6_TENTATIVE,
	UST_ADDR6_PREFERRED,
	UST_ADDR6_DUPLICATE,
};

#define UST_ADDR6_LINK_LOCAL 0
#define UST_ADDR6_GLOBAL 1
#define UST_DAD_TRANSMITS 1 /* Linux's dad_transmits */

struct ust_addr6 {
	struct ust_ip6 a;
	uint8_t state;           /* enum ust_addr6_state */
	uint8_t dad_sent;        /* solicitations sent for it */
	ust_time dad_deadline;   /* next solicitation, or the end of DAD */
};

/* Sends a batch of finished frames; returns how many were taken. The frames
 * stay owned by the stack, which frees them afterwards. */
typedef unsigned (*ust_output_fn)(void *ctx, struct ust_pkt *const *pkts, unsigned n);

#define UST_TXQ_MAX 64

struct ust_stack {
	struct ust_netif nif;
	struct ust_counters ctr;
	struct ust_pool pool;
	struct ust_arp_table arp;
	struct ust_upper upper;

	ust_output_fn output;
	void *output_ctx;
	struct ust_pkt *txq[UST_TXQ_MAX]; /* frames ready for the link */
	unsigned txq_len;
	/* Datagrams to our own address (no link header), oldest first, for
	 * ust_stack_loop to take in. One that is another stack's (another
	 * process's on our address: TCP found its port theirs and set
	 * loop_foreign) goes to them through loop_away; NULL: dropped. */
	struct ust_pkt *loop_head, **loop_tail;
	bool loop_foreign;
	void (*loop_away)(void *ctx, const uint8_t *dgram, size_t len);
	void *loop_away_ctx;

	uint16_t ip_id;
	struct ust_addr6 addr6[2]; /* [UST_ADDR6_LINK_LOCAL], [UST_ADDR6_GLOBAL] */

	/* Whether this stack answers an echo request: asked per request
	 * (answers_ctx), always when NULL. Several processes' stacks on one
	 * address answer as one host (stackthread's us_answers_for_address). */
	bool (*answers)(void *ctx);
	void *answers_ctx;

	/* The neighbour cache of the other stacks on our address (several
	 * processes' stacks are one host's): recall gives addr's link address
	 * and how long ago it was confirmed, if another stack knows it; note
	 * tells them one this stack confirmed (mac NULL: one that changed,
	 * to be checked again, which they must forget). NULL: this stack's
	 * own cache only. */
	bool (*neigh_recall)(void *ctx, const struct ust_ip6 *addr, uint8_t mac[UST_ETH_ALEN], ust_time *age);
	void (*neigh_note)(void *ctx, const struct ust_ip6 *addr, const uint8_t mac[UST_ETH_ALEN]);
	void *neigh_ctx;
};

int ust_stack_init(struct ust_stack *st, const struct ust_netif *nif, unsigned pool_size,
		   ust_output_fn output, void *output_ctx);
void ust_stack_destroy(struct ust_stack *st);

/* One received frame (Ethernet, or IPv4 on an L3 interface). */
void ust_stack_input(struct ust_stack *st, const uint8_t *frame, size_t len,
		     unsigned rxflags, ust_time now);

/* A datagram to one of our own addresses (a program connecting to its own
 * address) never reaches the link: it is queued, IP header and all, and
 * taken in by this call as if it had arrived (UST_RX_LOOPED, its checksum
 * trusted), as Linux takes such a datagram through its loopback device.
 * Only what was queued before the call is taken in: what the answers
 * queue waits for the next call, so that a driver bounds each turn's work
 * and input never nests in output. Returns whether more is queued. */
bool ust_stack_loop(struct ust_stack *st, ust_time now);
/* A datagram another stack on our address looped to us (loop_away): taken
 * in as one of ours, never passed on. */
void ust_stack_input_looped(struct ust_stack *st, const uint8_t *dgram, size_t len, ust_time now);
static inline bool ust_stack_loop_pending(const struct ust_stack *st)
{
	return st->loop_head != NULL;
}

/* Runs due timers; returns the time the next one is due, or UST_TIME_NEVER. */
ust_time ust_stack_timers(struct ust_stack *st, ust_time now);

/* Hands queued frames to the output function. Call after a batch of input
 * or timers; the stack also flushes by itself when the queue fills. */
void ust_stack_flush(struct ust_stack *st);

/* IPv4 output. p holds the transport header and payload from p->data; this
 * prepends the IP header, routes and resolves the next hop, and queues the
 * frame (or parks it until ARP answers). Takes ownership of p in every case.
 * Returns 0, or -ENETUNREACH when no route leads to dst. */
int ust_ip_output(struct ust_stack *st, struct ust_pkt *p, uint32_t dst, uint8_t proto, uint8_t tos,
		  ust_time now);

/* The header fields a socket chooses (IP_TOS, IP_TTL, IP_MTU_DISCOVER):
 * the TOS byte, ECN field included; the TTL; DF or not. ust_ip_output
 * sends with {tos, UST_IP_TTL_DEFAULT, DF}. */
#define UST_IP_TTL_DEFAULT 64 /* Linux's net.ipv4.ip_default_ttl */
struct ust_ip_hdr {
	uint8_t tos, ttl;
	bool df;
	const struct ust_ip4_opts *opts; /* IP_OPTIONS, NULL: none; a source
					  * route's first hop is where it goes */
};
int ust_ip_send(struct ust_stack *st, struct ust_pkt *p, uint32_t dst, uint8_t proto,
		const struct ust_ip_hdr *h, ust_time now);

/* Is a one of the host's addresses, or of a kind Linux's inet_addr_type
 * does not call unicast (zero network, loopback, broadcast, multicast)?
 * For IP_OPTIONS' prespecified timestamps. */
bool ust_ip_addr_local(const void *st, uint32_t a);

/* Milliseconds since midnight UTC, as an IPv4 timestamp option counts
 * them (RFC 791; Linux's inet_current_timestamp). */
uint32_t ust_ip_ms_of_day(void);

/* Is there a route to dst (connect's ENETUNREACH)? */
bool ust_ip_routable(const struct ust_stack *st, uint32_t dst);

/* The largest transport payload (header included) one datagram can carry. */
static inline unsigned ust_ip_max_payload(const struct ust_stack *st)
{
	return st->nif.mtu - UST_IPV4_HLEN;
}

/* Sends an ICMP echo request (the test host's ping). Returns 0 or -errno. */
int ust_icmp_echo_request(struct ust_stack *st, uint32_t dst, uint16_t id, uint16_t seq,
			  const uint8_t *data, size_t len, ust_time now);

/* Called by arp.c and ipv4 output: put a finished frame on the transmit queue. */
void ust_stack_queue_frame(struct ust_stack *st, struct ust_pkt *p);
/* Queues a datagram to our own address (no link header) for ust_stack_loop. */
void ust_stack_loop_queue(struct ust_stack *st, struct ust_pkt *p);
/* Called by arp.c: the neighbour at dst (mapped for IPv4) did not answer. */
void ust_stack_unreachable(struct ust_stack *st, const struct ust_ip6 *dst, ust_time now);

/* ---- IPv6 (stack6.c, nd.c) ---- */

/* One received IPv6 datagram (after the Ethernet header, or on an L3
 * link). */
void ust_ip6_input(struct ust_stack *st, const uint8_t *buf, size_t len, unsigned rxflags, ust_time now);

/* IPv6 output: p holds the upper-layer header and payload; this picks our
 * source address for dst (src NULL) or uses src, prepends the header,
 * routes, resolves and queues. Takes ownership of p. Returns 0;
 * -ENETUNREACH with no route; -EADDRNOTAVAIL while no address of ours fit
 * for dst is through DAD. */
int ust_ip6_send(struct ust_stack *st, struct ust_pkt *p, const struct ust_ip6 *src, const struct ust_ip6 *dst,
		 uint8_t proto, uint8_t tclass, uint8_t hop_limit, uint32_t flow, ust_time now);
/* The same with a socket's extension headers (NULL: none), which go
 * between the IPv6 header and p's, routed to their routing header's first
 * hop. p must have room for them in front of its data. */
int ust_ip6_send_ext(struct ust_stack *st, struct ust_pkt *p, const struct ust_ip6 *src,
		     const struct ust_ip6 *dst, uint8_t proto, uint8_t tclass, uint8_t hop_limit, uint32_t flow,
		     const struct ust_ip6_ext *ext, ust_time now);

/* Our usable (preferred) source address for dst, or NULL. */
const struct ust_ip6 *ust_ip6_source(const struct ust_stack *st, const struct ust_ip6 *dst);

/* Which of st->addr6 a is (tentative, preferred or duplicate), or -1. */
int ust_ip6_addr_index(const struct ust_stack *st, const struct ust_ip6 *a);
/* Is a one of our preferred addresses? */
bool ust_ip6_is_ours(const struct ust_stack *st, const struct ust_ip6 *a);

/* The largest upper-layer payload (header included) one IPv6 datagram can
 * carry. */
static inline unsigned ust_ip6_max_payload(const struct ust_stack *st)
{
	return st->nif.mtu - UST_IPV6_HLEN;
}

/* Sends an ICMPv6 echo request (the test host's ping6). Returns 0 or
 * -errno (as ust_ip6_send; -EMSGSIZE when it would not fit). */
int ust_icmp6_echo_request(struct ust_stack *st, const struct ust_ip6 *dst, uint16_t id, uint16_t seq,
			   const uint8_t *data, size_t len, ust_time now);

/* Neighbor Discovery: a solicitation or advertisement that arrived. */
void ust_nd_input(struct ust_stack *st, const struct ust_ipv6 *ip, const struct ust_icmp6 *icmp, ust_time now);
/* Asks for target's link-layer address: to its solicited-node group, or
 * to mac directly (a probe of a known neighbour). */
void ust_nd_solicit(struct ust_stack *st, const struct ust_ip6 *target, const uint8_t *mac);
/* DAD's timers: solicitations for tentative addresses, and their end.
 * Returns when it is next due. */
ust_time ust_nd_timers(struct ust_stack *st, ust_time now);
/* Another stack of this node (one on the same address, which the link
 * sees as one host) checked a and holds it: a tentative a is taken as
 * preferred now, without DAD of its own (counted nd-dad-shared). Returns
 * whether it was. */
bool ust_nd_addr_checked(struct ust_stack *st, const struct ust_ip6 *a);

#endif
