#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tcp_buf.h"
#include "tcp_seq.h"

int ust_ring_init(struct ust_ring *r, uint32_t cap)
{
	r->mem = cap ? malloc(cap) : NULL;
	if (cap && !r->mem)
		return -ENOMEM;
	r->cap = cap;
	r->head = r->len = 0;
	return 0;
}

void ust_ring_free(struct ust_ring *r)
{
	free(r->mem);
	r->mem = NULL;
	r->cap = r->head = r->len = 0;
}

/* Copies between the ring at position pos (mod cap) and a flat buffer, in
 * at most two pieces. */
static void ring_copy_out(const struct ust_ring *r, uint32_t pos, uint8_t *dst, uint32_t n)
{
	uint32_t first;

	pos %= r->cap;
	first = r->cap - pos < n ? r->cap - pos : n;
	memcpy(dst, r->mem + pos, first);
	memcpy(dst + first, r->mem, n - first);
}

static void ring_copy_in(struct ust_ring *r, uint32_t pos, const uint8_t *src, uint32_t n)
{
	uint32_t first;

	pos %= r->cap;
	first = r->cap - pos < n ? r->cap - pos : n;
	memcpy(r->mem + pos, src, first);
	memcpy(r->mem, src + first, n - first);
}

int ust_ring_resize(struct ust_ring *r, uint32_t cap)
{
	struct ust_ring nr;

	if (cap < r->len)
		return -ENOSPC;
	if (cap == r->cap)
		return 0;
	if (ust_ring_init(&nr, cap))
		return -ENOMEM;
	if (r->len)
		ring_copy_out(r, r->head, nr.mem, r->len);
	nr.len = r->len;
	ust_ring_free(r);
	*r = nr;
	return 0;
}

uint32_t ust_ring_append(struct ust_ring *r, const void *src, uint32_t n)
{
	if (n > r->cap - r->len)
		n = r->cap - r->len;
	if (n) {
		ring_copy_in(r, r->head + r->len, src, n);
		r->len += n;
	}
	return n;
}

void ust_ring_peek(const struct ust_ring *r, uint32_t off, void *dst, uint32_t n)
{
	if (n)
		ring_copy_out(r, r->head + off, dst, n);
}

void ust_ring_write_at(struct ust_ring *r, uint32_t off, const void *src, uint32_t n)
{
	if (n)
		ring_copy_in(r, r->head + off, src, n);
}

void ust_ring_consume(struct ust_ring *r, uint32_t n)
{
	/* The head moves on even when the ring empties: bytes written beyond
	 * len (out-of-order data) keep their places. */
	r->len -= n;
	if (r->cap)
		r->head = (r->head + n) % r->cap;
}

const uint8_t *ust_ring_span(const struct ust_ring *r, uint32_t off, uint32_t *n)
{
	uint32_t pos = (r->head + off) % (r->cap ? r->cap : 1);
	uint32_t avail = r->len - off;

	*n = r->cap - pos < avail ? r->cap - pos : avail;
	return r->mem + pos;
}

/* ---- ranges ---- */

bool ust_ranges_add(struct ust_ranges *s, uint32_t start, uint32_t end)
{
	unsigned i, j;

	if (!seq_lt(start, end))
		return true;
	s->clock++;
	/* Find the first range that ends at or after start: it is the first
	 * that may touch the new one. */
	for (i = 0; i < s->n && seq_lt(s->r[i].end, start); i++)
		;
	if (i == s->n || seq_lt(end, s->r[i].start)) {
		/* Disjoint: insert at i. */
		if (s->n == UST_RANGES_MAX)
			return false;
		memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof(s->r[0]));
		s->r[i] = (struct ust_range){ start, end, s->clock };
		s->n++;
		return true;
	}
	/* Overlaps or touches range i: grow it, then swallow the ranges it now
	 * reaches. */
	s->r[i].start = seq_min(s->r[i].start, start);
	s->r[i].end = seq_max(s->r[i].end, end);
	s->r[i].stamp = s->clock;
	for (j = i + 1; j < s->n && seq_leq(s->r[j].start, s->r[i].end); j++)
		s->r[i].end = seq_max(s->r[i].end, s->r[j].end);
	memmove(&s->r[i + 1], &s->r[j], (s->n - j) * sizeof(s->r[0]));
	s->n -= j - i - 1;
	return true;
}

void ust_ranges_trim(struct ust_ranges *s, uint32_t seq)
{
	unsigned i = 0;

	while (i < s->n && seq_leq(s->r[i].end, seq))
		i++;
	memmove(&s->r[0], &s->r[i], (s->n - i) * sizeof(s->r[0]));
	s->n -= i;
	if (s->n && seq_lt(s->r[0].start, seq))
		s->r[0].start = seq;
}

void ust_ranges_cut(struct ust_ranges *s, uint32_t seq)
{
	while (s->n && seq_geq(s->r[s->n - 1].start, seq))
		s->n--;
	if (s->n && seq_gt(s->r[s->n - 1].end, seq))
		s->r[s->n - 1].end = seq;
}

uint32_t ust_ranges_pull(struct ust_ranges *s, uint32_t seq)
{
	uint32_t end;

	if (!s->n || seq_gt(s->r[0].start, seq))
		return seq;
	end = seq_max(s->r[0].end, seq);
	memmove(&s->r[0], &s->r[1], (s->n - 1) * sizeof(s->r[0]));
	s->n--;
	return end;
}

bool ust_ranges_covers(const struct ust_ranges *s, uint32_t start, uint32_t end)
{
	for (unsigned i = 0; i < s->n; i++)
		if (seq_leq(s->r[i].start, start) && seq_leq(end, s->r[i].end))
			return true;
	return false;
}

unsigned ust_ranges_newest(const struct ust_ranges *s, struct ust_range *out, unsigned max)
{
	unsigned n = 0;
	bool used[UST_RANGES_MAX] = { false };

	/* Selection by stamp: the set is tiny. */
	while (n < max && n < s->n) {
		unsigned best = UST_RANGES_MAX;
		for (unsigned i = 0; i < s->n; i++)
			if (!used[i] && (best == UST_RANGES_MAX ||
					 seq_gt(s->r[i].stamp, s->r[best].stamp)))
				best = i;
		used[best] = true;
		out[n++] = s->r[best];
	}
	return n;
}
