#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "hotmem.h"
#include "tcp_buf.h"
#include "tcp_seq.h"

void ust_ring_init(struct ust_ring *r, uint32_t cap)
{
	r->mem = NULL;
	r->cap = cap;
	r->size = r->head = r->len = 0;
}

/* Rings of RING_MAP bytes or more are mapped here, not malloc'd. glibc maps
 * such a block itself (its mmap threshold starts at 128 KiB), but when one
 * is freed it raises that threshold to the block's size and its trim
 * threshold to twice that, for the whole process: after the first ring
 * that grew to a megabyte was freed, no arena was trimmed any more, the
 * program's included, and the next large rings came out of the stack
 * thread's arena and fragmented it (issue 13: a server under ustcp kept
 * 1.7 MiB of free memory in each of its threads' arenas, where the same
 * program on the kernel's TCP gave it back). Mapped here, the program's
 * malloc behaves as it would without us.
 *
 * A ring only grows past UST_RING_FIRST when a flow's bytes pile up
 * faster than the program or the peer takes them: it is about to be
 * written through at line rate, and its mapping is in huge pages
 * (hotmem.h), up to HOT_BYTES of them per thread at a time, those the
 * ring cache keeps included; rings beyond that are mapped in ordinary
 * pages. With the link's receive buffers (link.c), this halved a curl's
 * transfer of 1 MB (tests/bench/README.md, "huge pages"). The cost is
 * memory: a ring of 128 KiB in a huge page holds 2 MiB while it lives,
 * HOT_BYTES per thread at most. Rings are made and freed on their
 * engine's thread, whose table says which are hot. */
#define RING_MAP (128u * 1024)
#define HOT_BYTES (8u * 1024 * 1024)
#define HOT_RINGS (HOT_BYTES / UST_HOT_PAGE)

static __thread struct {
	uint8_t *mem[HOT_RINGS];
	size_t map[HOT_RINGS]; /* its mapping's bytes: whole huge pages */
	unsigned n;
	size_t bytes;          /* their maps, all told */
} hot;

/* The hot ring at mem, or -1 for one in ordinary pages. */
static int hot_find(const uint8_t *mem)
{
	for (unsigned i = 0; i < hot.n; i++)
		if (hot.mem[i] == mem)
			return (int)i;
	return -1;
}

static void hot_note(uint8_t *mem, size_t map)
{
	hot.mem[hot.n] = mem;
	hot.map[hot.n++] = map;
	hot.bytes += map;
}

static void hot_forget(int i)
{
	hot.bytes -= hot.map[i];
	hot.n--;
	hot.mem[i] = hot.mem[hot.n];
	hot.map[i] = hot.map[hot.n];
}

static bool hot_room(size_t more)
{
	return hot.n < HOT_RINGS && hot.bytes + ust_hot_len(more) <= HOT_BYTES;
}

/* The memory a block of size bytes at mem holds, at most: a hot one's
 * mapping is resident whole once written. */
static uint32_t footprint(const uint8_t *mem, uint32_t size)
{
	int i = size >= RING_MAP ? hot_find(mem) : -1;

	return i < 0 ? size : (uint32_t)hot.map[i];
}

static uint8_t *map_alloc(uint32_t size)
{
	void *p;

	if (hot_room(size) && (p = ust_hot_map(size))) {
		hot_note(p, ust_hot_len(size));
		return p;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void map_free(uint8_t *mem, uint32_t size)
{
	int i = hot_find(mem);

	if (i < 0) {
		munmap(mem, size);
		return;
	}
	ust_hot_unmap(mem, hot.map[i]);
	hot_forget(i);
}

/* Mapped memory of old bytes grown to size beyond what its mapping holds
 * (a hot ring grows inside its huge pages without coming here:
 * ring_mem_grow), pages moved rather than bytes: to more huge pages while
 * the budget lasts, else to ordinary pages. */
static uint8_t *map_grow(uint8_t *mem, uint32_t old, uint32_t size)
{
	int i = hot_find(mem);
	size_t had = i < 0 ? old : hot.map[i];
	void *p;

	if (i >= 0)
		hot_forget(i);
	if (hot_room(size) && (p = ust_hot_remap(mem, had, size))) {
		hot_note(p, ust_hot_len(size));
		return p;
	}
	p = mremap(mem, had, size, MREMAP_MAYMOVE);
	if (p != MAP_FAILED)
		return p;
	if (i >= 0)
		hot_note(mem, had); /* still there, still hot */
	return NULL;
}

static uint8_t *mem_alloc(uint32_t size)
{
	return size < RING_MAP ? malloc(size) : map_alloc(size);
}

static void mem_free(uint8_t *mem, uint32_t size)
{
	if (size < RING_MAP)
		free(mem);
	else if (mem)
		map_free(mem, size);
}

/* The bytes [0, min(old, size)) keep their offsets. */
static uint8_t *mem_resize(uint8_t *mem, uint32_t old, uint32_t size)
{
	uint8_t *n;

	if (!mem)
		return mem_alloc(size);
	if (old < RING_MAP && size < RING_MAP)
		return realloc(mem, size);
	if (old >= RING_MAP && size > old)
		return map_grow(mem, old, size);
	n = mem_alloc(size);
	if (!n)
		return NULL;
	memcpy(n, mem, old < size ? old : size);
	mem_free(mem, old);
	return n;
}

/* Ring memory given back lately, kept for the next ring that needs as
 * much: a short connection backs and sheds its rings once each, and a
 * new flow's rings double through the same sizes as the last one's did.
 * Given back to malloc or the kernel instead, every free was followed by
 * page faults when the next ring touched the memory again (glibc trims a
 * thread's arena with an madvise; a mapping goes whole): almost one each
 * per connection for small rings, and for a ring that grew, one per page
 * it grew by. At most RING_CACHE blocks holding at most RING_CACHE_MAX
 * bytes each, RING_CACHE_BYTES in all (a hot block counts its huge pages),
 * per thread (each engine runs on one; several in one thread share them);
 * the oldest go first. A hot block serves any ring of RING_MAP bytes or
 * more that its mapping holds, and such a ring grows in it without moving. */
#define RING_CACHE 8
#define RING_CACHE_MAX (2048u * 1024)
#define RING_CACHE_BYTES (4096u * 1024)

static __thread struct {
	uint8_t *mem[RING_CACHE];
	uint32_t size[RING_CACHE];
	unsigned n;
	uint32_t bytes; /* their footprints */
	bool off;       /* ust_ring_cache_off: every block goes back at once */
} ring_cache;

static void cache_drop(unsigned i)
{
	ring_cache.n--;
	ring_cache.bytes -= footprint(ring_cache.mem[i], ring_cache.size[i]);
	memmove(&ring_cache.mem[i], &ring_cache.mem[i + 1], sizeof(ring_cache.mem[0]) * (ring_cache.n - i));
	memmove(&ring_cache.size[i], &ring_cache.size[i + 1], sizeof(ring_cache.size[0]) * (ring_cache.n - i));
}

static void cache_evict_oldest(void)
{
	uint8_t *mem = ring_cache.mem[0];
	uint32_t size = ring_cache.size[0];

	cache_drop(0); /* while the block is still known as hot */
	mem_free(mem, size);
}

/* A cached block for size bytes (of exactly that size, or a hot one that
 * holds it), or NULL. */
static uint8_t *cache_take(uint32_t size)
{
	for (unsigned i = ring_cache.n; i-- > 0;) {
		uint8_t *m = ring_cache.mem[i];
		uint32_t had = ring_cache.size[i];
		int h = had >= RING_MAP && size >= RING_MAP ? hot_find(m) : -1;
		if (had != size && (h < 0 || hot.map[h] < size))
			continue;
		cache_drop(i);
		return m;
	}
	return NULL;
}

static uint8_t *ring_mem_get(uint32_t size)
{
	uint8_t *m = cache_take(size);

	return m ? m : mem_alloc(size);
}

static void ring_mem_put(uint8_t *mem, uint32_t size)
{
	uint32_t holds;

	if (!mem)
		return;
	holds = footprint(mem, size);
	if (holds > RING_CACHE_MAX || ring_cache.off) {
		mem_free(mem, size);
		return;
	}
	/* The oldest go: the newest are the likeliest asked for. */
	while (ring_cache.n && (ring_cache.n == RING_CACHE || ring_cache.bytes + holds > RING_CACHE_BYTES))
		cache_evict_oldest();
	ring_cache.mem[ring_cache.n] = mem;
	ring_cache.size[ring_cache.n] = size;
	ring_cache.n++;
	ring_cache.bytes += holds;
}

void ust_ring_cache_flush(void)
{
	while (ring_cache.n)
		cache_evict_oldest();
}

void ust_ring_cache_off(void)
{
	ust_ring_cache_flush();
	ring_cache.off = true;
}

/* Larger memory with the bytes [0, old) at their offsets: where it is, if
 * it is hot and holds size; else a cached block if one is there (its pages
 * were written before); else grown in place. */
static uint8_t *ring_mem_grow(uint8_t *mem, uint32_t old, uint32_t size)
{
	uint8_t *n;

	if (old >= RING_MAP && footprint(mem, old) >= size)
		return mem;
	n = cache_take(size);
	if (!n)
		return mem_resize(mem, old, size);
	memcpy(n, mem, old);
	ring_mem_put(mem, old);
	return n;
}

int ust_ring_back(struct ust_ring *r)
{
	if (r->mem || !r->cap)
		return 0;
	r->size = r->cap < UST_RING_FIRST ? r->cap : UST_RING_FIRST;
	r->mem = ring_mem_get(r->size);
	if (!r->mem) {
		r->size = 0;
		return -ENOMEM;
	}
	r->head = 0;
	return 0;
}

void ust_ring_shed(struct ust_ring *r)
{
	if (r->len)
		return;
	ring_mem_put(r->mem, r->size);
	r->mem = NULL;
	r->size = r->head = 0;
}

void ust_ring_free(struct ust_ring *r)
{
	ring_mem_put(r->mem, r->size);
	r->mem = NULL;
	r->cap = r->size = r->head = r->len = 0;
}

/* Copies between the ring at position pos (mod size) and a flat buffer, in
 * at most two pieces. */
static void ring_copy_out(const struct ust_ring *r, uint32_t pos, uint8_t *dst, uint32_t n)
{
	uint32_t first;

	pos %= r->size;
	first = r->size - pos < n ? r->size - pos : n;
	memcpy(dst, r->mem + pos, first);
	memcpy(dst + first, r->mem, n - first);
}

static void ring_copy_in(struct ust_ring *r, uint32_t pos, const uint8_t *src, uint32_t n)
{
	uint32_t first;

	pos %= r->size;
	first = r->size - pos < n ? r->size - pos : n;
	memcpy(r->mem + pos, src, first);
	memcpy(r->mem, src + first, n - first);
}

/* Growing the memory in place keeps every byte at its offset (realloc or
 * mremap; a large ring's pages move, not its bytes), so only the bytes
 * that wrapped past the old end move, to follow on after it: the first
 * keep bytes from the head are kept. */
static int ring_grow(struct ust_ring *r, uint32_t size, uint32_t keep)
{
	uint32_t old = r->size;
	uint32_t wrapped = r->head + keep > old ? r->head + keep - old : 0;
	uint32_t fits = size - old < wrapped ? size - old : wrapped;
	uint8_t *mem = ring_mem_grow(r->mem, old, size);

	if (!mem)
		return -ENOMEM;
	r->mem = mem;
	r->size = size;
	/* The wrapped bytes [0, wrapped) belong at old, old + 1, …: as many
	 * as fit before the new end go there, the rest to the start. */
	memcpy(mem + old, mem, fits);
	memmove(mem, mem + fits, wrapped - fits);
	return 0;
}

int ust_ring_reserve(struct ust_ring *r, uint32_t n)
{
	uint32_t size;

	if (n > r->cap)
		return -ENOSPC;
	if (ust_ring_back(r))
		return -ENOMEM;
	if (n <= r->size)
		return 0;
	/* Doubling, so that a flow's growth copies each byte a bounded
	 * number of times; the capacity is the last step. */
	for (size = r->size; size < n;)
		size = size > r->cap / 2 ? r->cap : size * 2;
	/* Everything in the memory is kept: the bytes held, and any written
	 * past them (out-of-order data), whose extent the ring does not know. */
	return ring_grow(r, size, r->size);
}

int ust_ring_resize_keep(struct ust_ring *r, uint32_t cap, uint32_t keep)
{
	struct ust_ring nr;

	if (keep < r->len)
		keep = r->len;
	if (cap < keep || keep > r->cap)
		return -ENOSPC;
	/* The memory follows what the ring holds, not its capacity: only a
	 * capacity below the memory it has takes other memory. */
	if (cap >= r->size) {
		r->cap = cap;
		return 0;
	}
	if (!keep) {
		/* Nothing to keep: memory to come, of the new capacity. */
		ust_ring_free(r);
		ust_ring_init(r, cap);
		return 0;
	}
	ust_ring_init(&nr, cap);
	if (ust_ring_reserve(&nr, keep))
		return -ENOMEM;
	ring_copy_out(r, r->head, nr.mem, keep);
	nr.len = r->len;
	ust_ring_free(r);
	*r = nr;
	return 0;
}

int ust_ring_resize(struct ust_ring *r, uint32_t cap)
{
	return ust_ring_resize_keep(r, cap, r->len);
}

uint32_t ust_ring_append(struct ust_ring *r, const void *src, uint32_t n)
{
	if (n > r->cap - r->len)
		n = r->cap - r->len;
	if (!n || ust_ring_reserve(r, r->len + n))
		return 0;
	ring_copy_in(r, r->head + r->len, src, n);
	r->len += n;
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
	if (r->size)
		r->head = (r->head + n) % r->size;
}

const uint8_t *ust_ring_span(const struct ust_ring *r, uint32_t off, uint32_t *n)
{
	uint32_t pos = (r->head + off) % (r->size ? r->size : 1);
	uint32_t avail = r->len - off;

	*n = r->size - pos < avail ? r->size - pos : avail;
	return r->mem + pos;
}

/* ---- ranges ----
 *
 * The set keeps a sorted array of disjoint ranges; these functions do the
 * work on the array (r, *n), the set decides where it lives and how far it
 * grows. */

/* Adds [start, end) to r[0..*n), which has room for at least one more
 * range unless *n == max. Returns the index of the range holding it, or -1
 * when a new range would be needed and *n == max. */
static int span_add(struct ust_range *r, unsigned *n, unsigned max, uint32_t start, uint32_t end)
{
	unsigned i, j;

	/* Find the first range that ends at or after start: it is the first
	 * that may touch the new one. */
	for (i = 0; i < *n && seq_lt(r[i].end, start); i++)
		;
	if (i == *n || seq_lt(end, r[i].start)) {
		/* Disjoint: insert at i. */
		if (*n == max)
			return -1;
		memmove(&r[i + 1], &r[i], (*n - i) * sizeof(r[0]));
		r[i] = (struct ust_range){ start, end };
		(*n)++;
		return (int)i;
	}
	/* Overlaps or touches range i: grow it, then swallow the ranges it now
	 * reaches. */
	r[i].start = seq_min(r[i].start, start);
	r[i].end = seq_max(r[i].end, end);
	for (j = i + 1; j < *n && seq_leq(r[j].start, r[i].end); j++)
		r[i].end = seq_max(r[i].end, r[j].end);
	memmove(&r[i + 1], &r[j], (*n - j) * sizeof(r[0]));
	*n -= j - i - 1;
	return (int)i;
}

static void span_trim(struct ust_range *r, unsigned *n, uint32_t seq)
{
	unsigned i = 0;

	while (i < *n && seq_leq(r[i].end, seq))
		i++;
	if (i)
		memmove(&r[0], &r[i], (*n - i) * sizeof(r[0]));
	*n -= i;
	if (*n && seq_lt(r[0].start, seq))
		r[0].start = seq;
}

static void span_cut(struct ust_range *r, unsigned *n, uint32_t seq)
{
	while (*n && seq_geq(r[*n - 1].start, seq))
		(*n)--;
	if (*n && seq_gt(r[*n - 1].end, seq))
		r[*n - 1].end = seq;
}

static uint32_t span_pull(struct ust_range *r, unsigned *n, uint32_t seq)
{
	uint32_t end;

	if (!*n || seq_gt(r[0].start, seq))
		return seq;
	end = seq_max(r[0].end, seq);
	memmove(&r[0], &r[1], (*n - 1) * sizeof(r[0]));
	(*n)--;
	return end;
}

/* ---- the growable set ---- */

/* The array goes once the set is empty: a connection without out-of-order
 * data holds no memory for it. */
static void seqset_shrink(struct ust_seqset *s)
{
	if (s->n == 0)
		ust_seqset_clear(s);
}

int ust_seqset_add(struct ust_seqset *s, uint32_t start, uint32_t end, unsigned max)
{
	int at;

	if (!seq_lt(start, end))
		return -EINVAL;
	if (s->n == s->cap && s->cap < max) {
		/* Room for one more range before the search: doubling, so
		 * that n additions cost O(n) moves of the array. */
		unsigned cap = s->cap ? s->cap * 2 : 8;
		struct ust_range *r;
		if (cap > max)
			cap = max;
		r = realloc(s->r, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		s->r = r;
		s->cap = cap;
	}
	at = span_add(s->r, &s->n, s->cap < max ? s->cap : max, start, end);
	return at < 0 ? -ENOSPC : at;
}

bool ust_seqset_overlap(const struct ust_seqset *s, uint32_t start, uint32_t end, struct ust_range *part)
{
	unsigned lo = 0, hi = s->n;

	/* The first range that ends after start. */
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (seq_leq(s->r[mid].end, start))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == s->n || !seq_lt(s->r[lo].start, end))
		return false;
	part->start = seq_gt(s->r[lo].start, start) ? s->r[lo].start : start;
	part->end = seq_lt(s->r[lo].end, end) ? s->r[lo].end : end;
	return true;
}

int ust_seqset_find(const struct ust_seqset *s, uint32_t seq)
{
	unsigned lo = 0, hi = s->n;

	/* The ranges lie within one window, less than 2^31 wide, so the
	 * modular order is a total order on them. */
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (seq_lt(seq, s->r[mid].start))
			hi = mid;
		else if (seq_geq(seq, s->r[mid].end))
			lo = mid + 1;
		else
			return (int)mid;
	}
	return -1;
}

void ust_seqset_trim(struct ust_seqset *s, uint32_t seq)
{
	span_trim(s->r, &s->n, seq);
	seqset_shrink(s);
}

void ust_seqset_cut(struct ust_seqset *s, uint32_t seq)
{
	span_cut(s->r, &s->n, seq);
	seqset_shrink(s);
}

uint32_t ust_seqset_pull(struct ust_seqset *s, uint32_t seq)
{
	uint32_t end = span_pull(s->r, &s->n, seq);

	seqset_shrink(s);
	return end;
}

void ust_seqset_clear(struct ust_seqset *s)
{
	free(s->r);
	s->r = NULL;
	s->n = s->cap = 0;
}
