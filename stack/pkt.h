/* Packet buffers: a fixed pool allocated once, so that sending a segment
 * never allocates. A buffer holds one outgoing frame with headroom in front
 * so each layer prepends its header without copying the payload. */
#ifndef USTCP_PKT_H
#define USTCP_PKT_H

#include "base.h"

/* Room for an Ethernet and an IPv6 header in front of the transport
 * header; IP options and extension headers are made room for by starting
 * the transport header further in (tcp_output.c, emit). */
#define UST_PKT_HEADROOM 64

struct ust_pkt {
	struct ust_pkt *next;  /* free list, or a neighbour's waiting queue */
	uint8_t *data;         /* first byte of the frame built so far */
	uint32_t len;          /* bytes from data */
	uint32_t nexthop;      /* set by IPv4 output for the link layer */
	/* Not NULL: a TCP header whose checksum field holds only the
	 * pseudo-header's sum, to be completed over the bytes from here to
	 * the end (Linux's CHECKSUM_PARTIAL): by the kernel (a virtio_net_hdr
	 * with NEEDS_CSUM), or by ust_pkt_csum_finish. */
	uint8_t *csum_l4;
	uint8_t buf[];         /* UST_PKT_HEADROOM + the pool's MTU */
};

struct ust_pool {
	struct ust_pkt *free;  /* buffers given back, most recent first */
	unsigned size, avail;
	unsigned mtu;
	/* Buffers are carved from mem in order, the first time they are
	 * needed: a page is touched only once a buffer on it is (threading
	 * all of them at start-up faulted in the whole pool, 1.6 MB, in
	 * every program's first socket()). */
	unsigned carved;
	size_t stride;
	uint8_t *mem;
};

int ust_pool_init(struct ust_pool *pool, unsigned count, unsigned mtu);
void ust_pool_destroy(struct ust_pool *pool);

/* A buffer whose data points after the headroom with len 0, or NULL when the
 * pool is empty. */
struct ust_pkt *ust_pkt_alloc(struct ust_pool *pool);
void ust_pkt_free(struct ust_pool *pool, struct ust_pkt *p);

/* Completes a TCP checksum left partial (csum_l4): the one's-complement
 * sum from the TCP header to the end, the pseudo-header's sum in the field
 * included, as the kernel completes CHECKSUM_PARTIAL. */
void ust_pkt_csum_finish(struct ust_pkt *p);

/* Prepend n bytes of header and return where they start. */
static inline uint8_t *ust_pkt_push(struct ust_pkt *p, unsigned n)
{
	p->data -= n;
	p->len += n;
	return p->data;
}

/* Room left after the data for payload: never more than the MTU. */
static inline unsigned ust_pkt_tailroom(const struct ust_pool *pool, const struct ust_pkt *p)
{
	return (unsigned)(p->buf + UST_PKT_HEADROOM + pool->mtu - (p->data + p->len));
}

#endif
