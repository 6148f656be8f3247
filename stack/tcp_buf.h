/* Byte rings for TCP's send and receive buffers, and sets of sequence
 * ranges.
 *
 * The receive ring also holds out-of-order data: a segment beyond RCV.NXT is
 * written at its offset past the in-order bytes, and the ranges present are
 * remembered (struct ust_seqset), so reassembly copies each byte once and
 * never takes more memory than the window we advertised. */
#ifndef USTCP_TCP_BUF_H
#define USTCP_TCP_BUF_H

#include "base.h"

/* A ring has its capacity from the start and its memory only while it
 * holds bytes: ust_ring_back gives it memory before bytes go in, and
 * ust_ring_shed takes it back once they are gone, so an idle connection
 * holds no buffer (issue 13).
 *
 * Its memory is not its capacity: it starts at UST_RING_FIRST bytes (or
 * the capacity, if smaller) and doubles, up to the capacity, only when
 * the bytes held (out-of-order data included) need more. A receive
 * buffer that grows to megabytes for a fast flow whose reader keeps up
 * holds a few hundred kilobytes at most, and writes them again and again
 * while they are warm: every page written for the first time is a page
 * fault (in a VM, also the host's: 2.5 to 3.4 ms a megabyte on the
 * machine this was measured on, against 30 to 60 us to write it again). */
struct ust_ring {
	uint8_t *mem;   /* NULL while the ring holds nothing */
	uint32_t cap;   /* bytes it may hold */
	uint32_t size;  /* bytes of memory: the positions wrap at it (0 without memory) */
	uint32_t head;  /* offset of the first byte */
	uint32_t len;   /* bytes held from head */
};

#define UST_RING_FIRST (64u * 1024)

/* A ring of cap bytes, without memory yet. */
void ust_ring_init(struct ust_ring *r, uint32_t cap);
/* Memory for the ring, if it has none (-ENOMEM): UST_RING_FIRST bytes,
 * or the capacity if smaller. */
int ust_ring_back(struct ust_ring *r);
/* Memory for n bytes from the head (n <= cap), the bytes it holds (and
 * those written past them) kept in place (-ENOMEM). */
int ust_ring_reserve(struct ust_ring *r, uint32_t n);
/* Gives the memory back when the ring holds no bytes; the caller knows
 * that nothing is written past them (out-of-order data). */
void ust_ring_shed(struct ust_ring *r);
/* An empty ring's next bytes go to its start again, not on from where the
 * last ones ended; the caller knows that nothing is written past them
 * (out-of-order data). */
static inline void ust_ring_rewind(struct ust_ring *r)
{
	if (!r->len)
		r->head = 0;
}
/* Memory and capacity both go. */
void ust_ring_free(struct ust_ring *r);
/* The memory that rings of the calling thread gave back and that is kept
 * for the next ones (tcp_buf.c) goes back to the system. */
void ust_ring_cache_flush(void);
/* The same, and from now on this thread keeps none: for a stack whose
 * flows only end (an exit keeper), which would hold the cache as long as
 * it lives, a minute for a TIME-WAIT. */
void ust_ring_cache_off(void);
/* Change the capacity, keeping the contents (fails with -ENOSPC if they do
 * not fit). */
int ust_ring_resize(struct ust_ring *r, uint32_t cap);
/* The same, keeping the first keep bytes from the head (keep >= len: the
 * out-of-order bytes written past the contents move with them). */
int ust_ring_resize_keep(struct ust_ring *r, uint32_t cap, uint32_t keep);
static inline uint32_t ust_ring_space(const struct ust_ring *r) { return r->cap - r->len; }
/* Append up to n bytes; returns how many fit (none without memory). */
uint32_t ust_ring_append(struct ust_ring *r, const void *src, uint32_t n);
/* Copy n bytes starting off bytes past head (off + n <= len). */
void ust_ring_peek(const struct ust_ring *r, uint32_t off, void *dst, uint32_t n);
/* Write n bytes at off bytes past head, where off + n <= size, without
 * changing len (out-of-order data); the ring has the memory
 * (ust_ring_reserve). */
void ust_ring_write_at(struct ust_ring *r, uint32_t off, const void *src, uint32_t n);
/* Make n more bytes (already written with write_at) part of the contents. */
static inline void ust_ring_commit(struct ust_ring *r, uint32_t n) { r->len += n; }
/* Forget the first n bytes (n <= len). */
void ust_ring_consume(struct ust_ring *r, uint32_t n);
/* The contiguous bytes at off: returns a pointer and stores their count
 * (for zero-copy transfer to a socket or into a frame). */
const uint8_t *ust_ring_span(const struct ust_ring *r, uint32_t off, uint32_t *n);

/* A sequence range [start, end). */
struct ust_range {
	uint32_t start, end;
};

/* A sorted set of disjoint, non-touching sequence ranges that grows as
 * needed: the out-of-order data the receive ring holds. Its memory exists
 * only while it holds a range (the array is freed when the set empties);
 * the caller bounds how many ranges it may hold. */
struct ust_seqset {
	struct ust_range *r;     /* NULL when empty */
	unsigned n, cap;
};

/* Adds [start, end), merging with the ranges it overlaps or touches.
 * Returns the index of the range that now holds it; -ENOSPC if it needs a
 * new range and the set has max already; -ENOMEM. An empty range is not
 * added (-EINVAL). */
int ust_seqset_add(struct ust_seqset *s, uint32_t start, uint32_t end, unsigned max);
/* The lowest part of [start, end) that the set holds, in *part: false
 * when it holds none of it (a binary search). */
bool ust_seqset_overlap(const struct ust_seqset *s, uint32_t start, uint32_t end, struct ust_range *part);
/* The index of the range holding seq, or -1 (a binary search). */
int ust_seqset_find(const struct ust_seqset *s, uint32_t seq);
/* Removes everything below seq. */
void ust_seqset_trim(struct ust_seqset *s, uint32_t seq);
/* Removes everything at or above seq. */
void ust_seqset_cut(struct ust_seqset *s, uint32_t seq);
/* If the first range starts at or before seq, removes it and returns its
 * end (else seq): how far in-order data now reaches. */
uint32_t ust_seqset_pull(struct ust_seqset *s, uint32_t seq);
/* Empties the set and frees its memory. */
void ust_seqset_clear(struct ust_seqset *s);
/* The end of the highest range (the set must not be empty). */
static inline uint32_t ust_seqset_last_end(const struct ust_seqset *s) { return s->r[s->n - 1].end; }

#endif
