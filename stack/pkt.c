#include <errno.h>
#include <stdlib.h>

#include "csum.h"
#include "pkt.h"

static size_t pkt_stride(unsigned mtu)
{
	size_t s = sizeof(struct ust_pkt) + UST_PKT_HEADROOM + mtu;
	return (s + 63) & ~(size_t)63;
}

int ust_pool_init(struct ust_pool *pool, unsigned count, unsigned mtu)
{
	size_t stride = pkt_stride(mtu);

	pool->mem = aligned_alloc(64, stride * count);
	if (!pool->mem)
		return -ENOMEM;
	pool->free = NULL;
	pool->size = pool->avail = count;
	pool->mtu = mtu;
	pool->carved = 0;
	pool->stride = stride;
	return 0;
}

void ust_pool_destroy(struct ust_pool *pool)
{
	free(pool->mem);
	pool->mem = NULL;
	pool->free = NULL;
	pool->avail = pool->size = pool->carved = 0;
}

struct ust_pkt *ust_pkt_alloc(struct ust_pool *pool)
{
	struct ust_pkt *p = pool->free;

	if (p) {
		pool->free = p->next;
	} else if (pool->carved < pool->size) {
		p = (struct ust_pkt *)(pool->mem + pool->carved++ * pool->stride);
	} else {
		return NULL;
	}
	pool->avail--;
	p->next = NULL;
	p->data = p->buf + UST_PKT_HEADROOM;
	p->len = 0;
	p->nexthop = 0;
	p->csum_l4 = NULL;
	return p;
}

void ust_pkt_free(struct ust_pool *pool, struct ust_pkt *p)
{
	p->next = pool->free;
	pool->free = p;
	pool->avail++;
}

void ust_pkt_csum_finish(struct ust_pkt *p)
{
	uint8_t *l4 = p->csum_l4;

	if (!l4)
		return;
	ust_put16(l4 + 16, ust_csum_fold(ust_csum_add(0, l4, (size_t)(p->data + p->len - l4))));
	p->csum_l4 = NULL;
}
