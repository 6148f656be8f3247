/* TCP's byte rings and range sets (tcp_buf.h): the ring's wrap-around in
 * every operation, out-of-order bytes written past the in-order ones (and
 * kept when the ring grows), the fixed range set (add, merge, trim, pull,
 * covers, the newest-first order of SACK blocks, and a full set) and the
 * growable one that remembers out-of-order data (growth, its bound, binary
 * search, its memory freed when empty), also with sequence numbers that
 * wrap past 2^32. Every ring operation is checked against a
 * plain model: a flat array of the bytes the ring should hold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <cmocka.h>

#include "tcp_buf.h"

/* Byte i of a test stream. */
static uint8_t pat(uint32_t i) { return (uint8_t)(i * 7 + 3); }

static void fill(uint8_t *b, uint32_t from, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		b[i] = pat(from + i);
}

/* The ring holds exactly stream bytes [from, from + len). */
static void assert_holds(const struct ust_ring *r, uint32_t from, uint32_t len)
{
	uint8_t got[4096];

	assert_int_equal(r->len, len);
	assert_true(len <= sizeof(got));
	ust_ring_peek(r, 0, got, len);
	for (uint32_t i = 0; i < len; i++)
		assert_int_equal(got[i], pat(from + i));
}

/* Fills an empty ring with stream bytes [from, from + len) starting at
 * memory position head, so that they wrap when head + len > cap. (The ring
 * restarts at 0 whenever it empties, so the head is moved with filler that
 * is consumed while stream bytes are already behind it.) */
static void ring_load_at(struct ust_ring *r, uint32_t head, uint32_t from, uint32_t len)
{
	uint8_t b[4096];
	uint32_t first = len < r->cap - head ? len : r->cap - head;

	assert_int_equal(r->len, 0);
	assert_true(head < r->cap && len <= r->cap);
	memset(b, 0xee, head);
	assert_int_equal(ust_ring_append(r, b, head), head);
	fill(b, from, len);
	assert_int_equal(ust_ring_append(r, b, first), first);
	ust_ring_consume(r, head);
	assert_int_equal(ust_ring_append(r, b + first, len - first), len - first);
	if (len)
		assert_int_equal(r->head, head);
}

/* ---- ring ---- */

static void test_ring_init_empty(void **state)
{
	struct ust_ring r;

	(void)state;
	ust_ring_init(&r, 0);
	assert_int_equal(r.cap, 0);
	assert_int_equal(ust_ring_space(&r), 0);
	assert_int_equal(ust_ring_append(&r, "x", 1), 0);
	ust_ring_free(&r);
	ust_ring_init(&r, 16);
	assert_int_equal(r.cap, 16);
	assert_int_equal(r.len, 0);
	assert_int_equal(ust_ring_space(&r), 16);
	ust_ring_free(&r);
	assert_null(r.mem);
	assert_int_equal(r.cap, 0);
}

/* Memory only while the ring holds bytes (issue 13): none at init, some
 * with the first byte, given back when the last is consumed and shed, and
 * kept while a byte remains. Capacity changes without memory stay free. */
static void test_ring_memory_only_while_holding(void **state)
{
	struct ust_ring r;
	uint8_t b[8];

	(void)state;
	fill(b, 0, sizeof(b));
	ust_ring_init(&r, 16);
	assert_null(r.mem);
	assert_int_equal(ust_ring_space(&r), 16);
	assert_int_equal(ust_ring_resize(&r, 32), 0);
	assert_null(r.mem);
	assert_int_equal(r.cap, 32);
	assert_int_equal(ust_ring_append(&r, b, 8), 8);
	assert_non_null(r.mem);
	ust_ring_consume(&r, 7);
	ust_ring_shed(&r);
	assert_non_null(r.mem);          /* a byte is still held */
	assert_holds(&r, 7, 1);
	ust_ring_consume(&r, 1);
	ust_ring_shed(&r);
	assert_null(r.mem);
	assert_int_equal(r.head, 0);
	assert_int_equal(r.cap, 32);
	/* Memory again for the next bytes, from the start of the ring. */
	assert_int_equal(ust_ring_back(&r), 0);
	assert_non_null(r.mem);
	assert_int_equal(ust_ring_append(&r, b, 3), 3);
	assert_holds(&r, 0, 3);
	ust_ring_free(&r);
}

static void test_ring_append_until_full(void **state)
{
	struct ust_ring r;
	uint8_t b[20];

	(void)state;
	fill(b, 0, sizeof(b));
	ust_ring_init(&r, 16);
	assert_int_equal(ust_ring_append(&r, b, 10), 10);
	assert_int_equal(ust_ring_space(&r), 6);
	/* Only what fits is taken. */
	assert_int_equal(ust_ring_append(&r, b + 10, 10), 6);
	assert_int_equal(ust_ring_space(&r), 0);
	assert_int_equal(ust_ring_append(&r, b, 1), 0);
	assert_holds(&r, 0, 16);
	ust_ring_free(&r);
}

/* Every operation at every head position of a small ring, against the
 * flat model. */
static void test_ring_wrap_every_position(void **state)
{
	const uint32_t cap = 8;

	(void)state;
	for (uint32_t head = 0; head < cap; head++) {
		for (uint32_t len = 0; len <= cap; len++) {
			struct ust_ring r;
			uint8_t b[16], got[16];
			uint32_t n, off;
			const uint8_t *sp;

			ust_ring_init(&r, cap);
			/* Stream bytes 100.. from memory position head on. */
			ring_load_at(&r, head, 100, len);
			assert_holds(&r, 100, len);
			/* Appending after a wrapped start. */
			if (len < cap) {
				fill(b, 100 + len, 1);
				assert_int_equal(ust_ring_append(&r, b, 1), 1);
				assert_holds(&r, 100, len + 1);
				ust_ring_free(&r);
				ust_ring_init(&r, cap);
				ring_load_at(&r, head, 100, len);
			}
			/* Peek every sub-range. */
			for (off = 0; off <= len; off++)
				for (n = 0; off + n <= len; n++) {
					memset(got, 0, sizeof(got));
					ust_ring_peek(&r, off, got, n);
					for (uint32_t i = 0; i < n; i++)
						assert_int_equal(got[i], pat(100 + off + i));
				}
			/* Spans: contiguous pieces that together give the bytes. */
			for (off = 0; off < len; off += n) {
				sp = ust_ring_span(&r, off, &n);
				assert_true(n > 0);
				assert_true(off + n <= len);
				for (uint32_t i = 0; i < n; i++)
					assert_int_equal(sp[i], pat(100 + off + i));
			}
			/* Consume one at a time. */
			for (uint32_t c = 0; c < len; c++) {
				ust_ring_consume(&r, 1);
				assert_holds(&r, 100 + c + 1, len - c - 1);
			}
			ust_ring_free(&r);
		}
	}
}

/* A span never crosses the end of the memory: at most two pieces. */
static void test_ring_span_two_pieces(void **state)
{
	struct ust_ring r;
	uint8_t b[16];
	uint32_t n;
	const uint8_t *sp;

	(void)state;
	(void)b;
	ust_ring_init(&r, 10);
	ring_load_at(&r, 7, 50, 8);      /* 3 bytes at 7..9, 5 at 0..4 */
	sp = ust_ring_span(&r, 0, &n);
	assert_int_equal(n, 3);
	assert_int_equal(sp[0], pat(50));
	sp = ust_ring_span(&r, 3, &n);
	assert_int_equal(n, 5);
	assert_int_equal(sp[0], pat(53));
	sp = ust_ring_span(&r, 6, &n);
	assert_int_equal(n, 2);
	assert_int_equal(sp[1], pat(57));
	ust_ring_free(&r);
}

/* Out-of-order bytes are written past the in-order ones and become part
 * of the contents once the hole is filled. */
static void test_ring_write_at_then_commit(void **state)
{
	struct ust_ring r;
	uint8_t b[16];

	(void)state;
	ust_ring_init(&r, 16);
	/* Head at 12, so the writes below wrap. */
	ring_load_at(&r, 12, 0, 3);      /* stream 0..2 in order */
	fill(b, 6, 4);
	ust_ring_write_at(&r, 6, b, 4);  /* stream 6..9: a hole at 3..5 */
	assert_int_equal(r.len, 3);
	fill(b, 3, 3);
	ust_ring_write_at(&r, 3, b, 3);  /* the hole */
	ust_ring_commit(&r, 7);
	assert_holds(&r, 0, 10);
	ust_ring_free(&r);
}

/* The receive side reads every in-order byte while out-of-order bytes are
 * still held past them: the held bytes must stay where their offset says.
 * (ust_ring_consume resets head to 0 when len reaches 0, which moves them.) */
static int ring_setup(void **state)
{
	static struct ust_ring r;

	*state = &r;
	ust_ring_init(&r, 64);
	return 0;
}

static int ring_teardown(void **state)
{
	ust_ring_free(*state);
	return 0;
}

static void test_ring_consume_all_keeps_out_of_order(void **state)
{
	struct ust_ring *r = *state;
	uint8_t b[64];

	ring_load_at(r, 5, 0, 10);       /* stream 0..9 in order, at 5..14 */
	fill(b, 20, 10);
	ust_ring_write_at(r, 20, b, 10); /* stream 20..29 held; hole 10..19 */
	ust_ring_consume(r, 10);         /* the reader takes 0..9 */
	assert_int_equal(r->len, 0);
	fill(b, 10, 10);
	ust_ring_write_at(r, 0, b, 10);  /* the hole, now at offset 0 */
	ust_ring_commit(r, 20);
	assert_holds(r, 10, 20);
}

static void test_ring_resize_keeps_contents(void **state)
{
	struct ust_ring r;
	uint8_t b[16];

	(void)state;
	ust_ring_init(&r, 8);
	ring_load_at(&r, 6, 30, 7);      /* wrapped: 2 bytes at 6..7, 5 at 0..4 */
	assert_int_equal(ust_ring_resize(&r, 32), 0);
	assert_int_equal(r.cap, 32);
	assert_holds(&r, 30, 7);
	fill(b, 37, 10);
	assert_int_equal(ust_ring_append(&r, b, 10), 10);
	assert_holds(&r, 30, 17);
	/* Shrinking below the contents fails and changes nothing. */
	assert_int_equal(ust_ring_resize(&r, 16), -ENOSPC);
	assert_int_equal(r.cap, 32);
	assert_holds(&r, 30, 17);
	/* Shrinking to exactly the contents works. */
	assert_int_equal(ust_ring_resize(&r, 17), 0);
	assert_holds(&r, 30, 17);
	assert_int_equal(ust_ring_space(&r), 0);
	/* The same size is a no-op. */
	assert_int_equal(ust_ring_resize(&r, 17), 0);
	assert_holds(&r, 30, 17);
	ust_ring_free(&r);
}

/* The ring holds stream bytes [from, from + len), however many. */
static void assert_holds_big(const struct ust_ring *r, uint32_t from, uint32_t len)
{
	uint8_t *got = malloc(len);

	assert_non_null(got);
	assert_int_equal(r->len, len);
	ust_ring_peek(r, 0, got, len);
	for (uint32_t i = 0; i < len; i++)
		if (got[i] != pat(from + i))
			fail_msg("byte %u of %u: %u, not %u", i, len, got[i], pat(from + i));
	free(got);
}

/* A ring's memory is not its capacity: it starts at UST_RING_FIRST and
 * doubles, up to the capacity, as the bytes held need it; a capacity
 * change moves no memory unless the capacity falls below it. Memory of
 * 128 KiB and more is mapped (tcp_buf.c, RING_MAP), less is malloc'd: a
 * wrapped ring keeps its bytes in order through every kind of growth,
 * from malloc to a mapping, mapping to mapping (mremap), and back. */
static void test_ring_large_resize_keeps_contents(void **state)
{
	struct ust_ring r;
	uint32_t head = 60 << 10, len = 80 << 10, from = 5;
	uint8_t *b = malloc(1 << 20);

	(void)state;
	assert_non_null(b);
	ust_ring_init(&r, 96 << 10);
	assert_int_equal(r.size, 0);
	memset(b, 0xee, head);
	assert_int_equal(ust_ring_append(&r, b, head), head);
	assert_int_equal(r.size, UST_RING_FIRST);
	fill(b, from, len);
	assert_int_equal(ust_ring_append(&r, b, 36 << 10), 36 << 10);
	assert_int_equal(r.size, 96 << 10);                    /* doubled, up to the capacity */
	ust_ring_consume(&r, head);
	assert_int_equal(ust_ring_append(&r, b + (36 << 10), len - (36 << 10)), len - (36 << 10));
	assert_int_equal(r.head, head); /* wrapped: 36 KiB at the end, 44 at the start */
	assert_int_equal(ust_ring_resize(&r, 200 << 10), 0);   /* the capacity alone */
	assert_int_equal(r.size, 96 << 10);
	assert_holds_big(&r, from, len);
	fill(b, from + len, 100 << 10);
	assert_int_equal(ust_ring_append(&r, b, 100 << 10), 100 << 10);
	assert_int_equal(r.size, 192 << 10);                   /* malloc to mapped, wrapped */
	len += 100 << 10;
	assert_holds_big(&r, from, len);
	assert_int_equal(ust_ring_resize(&r, 1 << 20), 0);
	fill(b, from + len, 200 << 10);
	assert_int_equal(ust_ring_append(&r, b, 200 << 10), 200 << 10);
	assert_int_equal(r.size, 384 << 10);                   /* mapped to mapped */
	len += 200 << 10;
	assert_holds_big(&r, from, len);
	ust_ring_consume(&r, 200 << 10);
	from += 200 << 10;
	len -= 200 << 10;
	assert_int_equal(ust_ring_resize(&r, 190 << 10), 0);   /* below the memory: new memory */
	assert_int_equal(r.size, 190 << 10);
	assert_holds_big(&r, from, len);
	ust_ring_consume(&r, 100 << 10);
	from += 100 << 10;
	len -= 100 << 10;
	assert_int_equal(ust_ring_resize(&r, 100 << 10), 0);   /* mapped to malloc */
	assert_int_equal(r.size, 100 << 10);
	assert_holds_big(&r, from, len);
	ust_ring_free(&r);
	free(b);
}

/* Whether the mapping that holds p is advised for huge pages
 * (MADV_HUGEPAGE: "hg" among its VmFlags in /proc/self/smaps). */
static bool huge_advised(const void *p)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false, hg = false;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) { /* a mapping's first line */
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
			continue;
		}
		if (in && strncmp(line, "VmFlags:", 8) == 0) {
			hg = strstr(line, " hg") != NULL;
			break;
		}
	}
	fclose(f);
	return hg;
}

#define HUGE_PAGE (2u << 20)

/* A ring that grows past its first 64 KiB is written through at line
 * rate: its memory is in huge pages (hotmem.h), aligned and advised, and
 * grows in them without moving until it needs more, then moves whole
 * (pages, not bytes) to more, keeping its bytes. At most 8 MiB of such
 * memory per thread: a ring beyond that is in ordinary pages; memory given
 * back is kept for the next large ring, which gets the same huge pages. */
static void test_ring_large_in_huge_pages(void **state)
{
	struct ust_ring a, b, c, d, e;
	uint32_t len = 3 << 20, from = 11;
	uint8_t *big = malloc(len), *at;

	(void)state;
	assert_non_null(big);
	ust_ring_cache_flush();
	ust_ring_init(&a, 4 << 20);
	fill(big, from, len);
	assert_int_equal(ust_ring_append(&a, big, 200 << 10), 200 << 10);
	assert_int_equal(a.size, 256 << 10);
	assert_int_equal((uintptr_t)a.mem % HUGE_PAGE, 0);
	assert_true(huge_advised(a.mem));
	at = a.mem;
	assert_int_equal(ust_ring_append(&a, big + (200 << 10), (1536 - 200) << 10), (1536 - 200) << 10);
	assert_int_equal(a.size, 2 << 20);
	assert_ptr_equal(a.mem, at);                            /* grew where it was */
	assert_int_equal(ust_ring_append(&a, big + (1536 << 10), len - (1536 << 10)), len - (1536 << 10));
	assert_int_equal(a.size, 4 << 20);                      /* moved to two huge pages */
	assert_int_equal((uintptr_t)a.mem % HUGE_PAGE, 0);
	assert_true(huge_advised(a.mem) && huge_advised(a.mem + HUGE_PAGE));
	assert_holds_big(&a, from, len);

	/* 4 MiB in a; b and c take 2 MiB each; d is past the 8. */
	ust_ring_init(&b, 1 << 20);
	ust_ring_init(&c, 1 << 20);
	ust_ring_init(&d, 1 << 20);
	assert_int_equal(ust_ring_append(&b, big, 200 << 10), 200 << 10);
	assert_int_equal(ust_ring_append(&c, big, 200 << 10), 200 << 10);
	assert_int_equal(ust_ring_append(&d, big, 200 << 10), 200 << 10);
	assert_true(huge_advised(b.mem) && huge_advised(c.mem));
	assert_false(huge_advised(d.mem));
	assert_holds_big(&d, from, 200 << 10);

	/* b's huge page, given back, serves the next large ring. */
	at = b.mem;
	ust_ring_free(&b);
	ust_ring_init(&e, 1 << 20);
	assert_int_equal(ust_ring_append(&e, big, 150 << 10), 150 << 10);
	assert_ptr_equal(e.mem, at);
	assert_int_equal(e.size, 256 << 10);
	assert_holds_big(&e, from, 150 << 10);
	ust_ring_free(&a);
	ust_ring_free(&c);
	ust_ring_free(&d);
	ust_ring_free(&e);
	ust_ring_cache_flush();
	free(big);
}

/* A ring that empties without being shed writes its next bytes from its
 * start again (ust_ring_rewind), where its memory was written before; a
 * ring with out-of-order bytes past its contents is not rewound (the
 * caller knows, and does not ask). */
static void test_ring_rewind(void **state)
{
	struct ust_ring r;
	uint8_t b[64];

	(void)state;
	ust_ring_init(&r, 64);
	fill(b, 0, 40);
	assert_int_equal(ust_ring_append(&r, b, 40), 40);
	ust_ring_consume(&r, 30);
	ust_ring_rewind(&r);                 /* not empty: nothing moves */
	assert_int_equal(r.head, 30);
	assert_holds(&r, 30, 10);
	ust_ring_consume(&r, 10);
	ust_ring_rewind(&r);
	assert_int_equal(r.head, 0);
	fill(b, 40, 50);
	assert_int_equal(ust_ring_append(&r, b, 50), 50);
	assert_holds(&r, 40, 50);
	ust_ring_free(&r);
}

/* Freeing a large ring leaves malloc's thresholds as they were. glibc
 * raises its mmap threshold (and its trim threshold, to twice that) to the
 * size of any mapped block freed: once a ring that grew to 2 MiB had gone
 * through free(), no arena of the program was trimmed any more (issue 13).
 * Afterwards a 512 KiB malloc is still a mapping of its own. (A ring's
 * memory of more than 1 MiB is not kept for the next ring: it goes at
 * once, which is what this test needs.) */
#ifndef __SANITIZE_ADDRESS__
static void test_ring_large_free_leaves_malloc_alone(void **state)
{
	struct ust_ring r;
	struct mallinfo2 before, after;
	/* Not malloc'd: freeing it would raise the thresholds itself. */
	uint8_t *b = mmap(NULL, 1536 << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *p;

	(void)state;
	assert_true(b != MAP_FAILED);
	ust_ring_init(&r, 2 << 20);
	fill(b, 0, 1536 << 10);
	assert_int_equal(ust_ring_append(&r, b, 1536 << 10), 1536 << 10);
	assert_int_equal(r.size, 2 << 20);
	ust_ring_free(&r);
	munmap(b, 1536 << 10);
	before = mallinfo2();
	p = malloc(512 << 10);
	after = mallinfo2();
	assert_non_null(p);
	assert_int_equal(after.hblks, before.hblks + 1);
	free(p);
}
#endif

/* Growing the receive ring keeps out-of-order bytes written past the
 * contents, at the same offsets from the head. */
static void test_ring_resize_keep_out_of_order(void **state)
{
	struct ust_ring r;
	uint8_t b[16], got[16];

	(void)state;
	ust_ring_init(&r, 16);
	ring_load_at(&r, 12, 50, 6);     /* wrapped: 4 bytes at 12..15, 2 at 0..1 */
	fill(b, 60, 5);
	ust_ring_write_at(&r, 10, b, 5); /* offsets 10..14: beyond len 6 */
	/* keep must cover the contents, and the old ring must hold it. */
	assert_int_equal(ust_ring_resize_keep(&r, 64, 17), -ENOSPC);
	assert_int_equal(ust_ring_resize_keep(&r, 12, 15), -ENOSPC);
	/* Grown by less than what wrapped: part of it wraps again. */
	assert_int_equal(ust_ring_resize_keep(&r, 20, 15), 0);
	assert_int_equal(r.cap, 20);
	assert_holds(&r, 50, 6);
	ust_ring_peek(&r, 10, got, 5);   /* peek past len: the kept bytes */
	for (uint32_t i = 0; i < 5; i++)
		assert_int_equal(got[i], pat(60 + i));
	assert_int_equal(ust_ring_resize_keep(&r, 64, 15), 0);
	assert_int_equal(r.cap, 64);
	assert_holds(&r, 50, 6);
	ust_ring_peek(&r, 10, got, 5);
	for (uint32_t i = 0; i < 5; i++)
		assert_int_equal(got[i], pat(60 + i));
	ust_ring_free(&r);
}

/* A long run of random appends and consumes against the flat model. */
static void test_ring_random_against_model(void **state)
{
	struct ust_ring r;
	uint8_t b[64], got[64];
	uint32_t rng = 12345, written = 0, read = 0;

	(void)state;
	ust_ring_init(&r, 37);
	for (int i = 0; i < 20000; i++) {
		rng = rng * 1103515245u + 12345u;
		uint32_t n = (rng >> 16) % 40;
		if (rng & 1) {
			fill(b, written, n);
			written += ust_ring_append(&r, b, n);
		} else {
			if (n > r.len)
				n = r.len;
			ust_ring_peek(&r, 0, got, n);
			for (uint32_t k = 0; k < n; k++)
				assert_int_equal(got[k], pat(read + k));
			ust_ring_consume(&r, n);
			read += n;
		}
		assert_int_equal(r.len, written - read);
		assert_true(r.len <= r.cap);
	}
	ust_ring_free(&r);
}

/* ---- ranges ---- */

/* The set holds exactly the ranges want[0..n). */
static void assert_spans(const struct ust_range *r, unsigned have, unsigned n,
			 const uint32_t (*want)[2])
{
	assert_int_equal(have, n);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(r[i].start, want[i][0]);
		assert_int_equal(r[i].end, want[i][1]);
	}
}

/* Touching ranges merge (the set keeps them non-touching), a range
 * bridging several swallows them, one inside changes nothing. */
static void test_seqset_add_merge(void **state)
{
	struct ust_seqset s = { 0 };
	static const uint32_t sorted[][2] = { { 10, 20 }, { 30, 40 }, { 50, 60 } };
	static const uint32_t touched[][2] = { { 10, 25 }, { 26, 40 }, { 50, 60 } };
	static const uint32_t bridged[][2] = { { 10, 60 } };
	static const uint32_t widened[][2] = { { 5, 60 } };

	(void)state;
	assert_int_equal(ust_seqset_add(&s, 50, 60, 100), 0);
	assert_int_equal(ust_seqset_add(&s, 10, 20, 100), 0);
	assert_int_equal(ust_seqset_add(&s, 30, 40, 100), 1);
	assert_spans(s.r, s.n, 3, sorted);
	assert_int_equal(ust_seqset_add(&s, 80, 75, 100), -EINVAL); /* backwards */
	assert_spans(s.r, s.n, 3, sorted);
	/* Touching on the left and right edges. */
	assert_int_equal(ust_seqset_add(&s, 20, 25, 100), 0);
	assert_int_equal(ust_seqset_add(&s, 26, 30, 100), 1);
	assert_spans(s.r, s.n, 3, touched);
	/* One range bridging everything. */
	assert_int_equal(ust_seqset_add(&s, 15, 55, 100), 0);
	assert_spans(s.r, s.n, 1, bridged);
	/* Inside an existing range: no change. */
	assert_int_equal(ust_seqset_add(&s, 20, 30, 100), 0);
	assert_spans(s.r, s.n, 1, bridged);
	/* Overlapping the start. */
	assert_int_equal(ust_seqset_add(&s, 5, 12, 100), 0);
	assert_spans(s.r, s.n, 1, widened);
	ust_seqset_clear(&s);
}

/* trim's edges: below everything, a range ending exactly at seq, seq inside
 * a range; pull's: no range at seq, seq inside one, a range wholly below. */
static void test_seqset_trim_pull_edges(void **state)
{
	struct ust_seqset s = { 0 };
	static const uint32_t after_end[][2] = { { 30, 40 }, { 50, 60 } };
	static const uint32_t after_cut[][2] = { { 35, 40 }, { 50, 60 } };

	(void)state;
	for (uint32_t i = 0; i < 3; i++)
		ust_seqset_add(&s, 10 + 20 * i, 20 + 20 * i, 100);
	ust_seqset_trim(&s, 5);
	assert_int_equal(s.n, 3);
	ust_seqset_trim(&s, 20);
	assert_spans(s.r, s.n, 2, after_end);
	ust_seqset_trim(&s, 35);
	assert_spans(s.r, s.n, 2, after_cut);
	/* In-order data reaching 34 pulls nothing; reaching 36 (inside the
	 * first range) pulls it: in-order now reaches 40. */
	assert_int_equal(ust_seqset_pull(&s, 34), 34);
	assert_int_equal(ust_seqset_pull(&s, 36), 40);
	assert_int_equal(s.n, 1);
	/* A range wholly below seq is pulled and seq stands. */
	assert_int_equal(ust_seqset_pull(&s, 70), 70);
	assert_null(s.r);
	ust_seqset_add(&s, 10, 20, 100);
	ust_seqset_trim(&s, 1000);
	assert_null(s.r);
}

/* ---- the growable set ---- */

/* Many ranges: the array grows; the index returned is the range that holds
 * what was added. */
static void test_seqset_grows(void **state)
{
	struct ust_seqset s = { 0 };

	(void)state;
	assert_null(s.r);
	for (uint32_t i = 0; i < 200; i++) /* right to left: each goes first */
		assert_int_equal(ust_seqset_add(&s, 4000 - 20 * i, 4010 - 20 * i, 1000), 0);
	assert_int_equal(s.n, 200);
	assert_true(s.cap >= 200);
	for (uint32_t i = 0; i + 1 < s.n; i++)
		assert_true(s.r[i].end < s.r[i + 1].start);
	/* Filling one hole merges two ranges in the middle. */
	assert_int_equal(ust_seqset_add(&s, 2010, 2020, 1000), 99);
	assert_int_equal(s.n, 199);
	assert_int_equal(s.r[99].start, 2000);
	assert_int_equal(s.r[99].end, 2030);
	assert_int_equal(ust_seqset_add(&s, 5, 5, 1000), -EINVAL);
	ust_seqset_clear(&s);
	assert_null(s.r);
	assert_int_equal(s.cap, 0);
}

/* At max ranges a new disjoint one is refused; extending is not. */
static void test_seqset_bounded(void **state)
{
	struct ust_seqset s = { 0 };
	static const uint32_t want[][2] = { { 0, 10 }, { 20, 35 }, { 40, 50 } };

	(void)state;
	assert_int_equal(ust_seqset_add(&s, 0, 10, 3), 0);
	assert_int_equal(ust_seqset_add(&s, 20, 30, 3), 1);
	assert_int_equal(ust_seqset_add(&s, 40, 50, 3), 2);
	assert_int_equal(ust_seqset_add(&s, 60, 70, 3), -ENOSPC);
	assert_int_equal(ust_seqset_add(&s, 25, 35, 3), 1);
	assert_spans(s.r, s.n, 3, want);
	ust_seqset_clear(&s);
}

/* find is a binary search over the ranges; trim, cut and pull, and the
 * memory goes when the set empties. */
static void test_seqset_find_trim_pull(void **state)
{
	struct ust_seqset s = { 0 };
	static const uint32_t after_trim[][2] = { { 35, 40 }, { 50, 60 }, { 70, 80 } };

	(void)state;
	for (uint32_t i = 0; i < 5; i++)
		ust_seqset_add(&s, 10 + 20 * i, 20 + 20 * i, 100);
	assert_int_equal(ust_seqset_find(&s, 9), -1);
	assert_int_equal(ust_seqset_find(&s, 10), 0);
	assert_int_equal(ust_seqset_find(&s, 19), 0);
	assert_int_equal(ust_seqset_find(&s, 20), -1);
	assert_int_equal(ust_seqset_find(&s, 55), 2);
	assert_int_equal(ust_seqset_find(&s, 99), 4);
	assert_int_equal(ust_seqset_find(&s, 100), -1);
	ust_seqset_trim(&s, 35);
	ust_seqset_cut(&s, 80);
	assert_spans(s.r, s.n, 3, after_trim);
	assert_int_equal(ust_seqset_last_end(&s), 80);
	assert_int_equal(ust_seqset_pull(&s, 30), 30);
	assert_int_equal(ust_seqset_pull(&s, 35), 40);
	ust_seqset_cut(&s, 50);
	assert_int_equal(s.n, 0);
	assert_null(s.r);
	/* Across the wrap of the sequence space. */
	ust_seqset_add(&s, 0x10, 0x20, 100);
	ust_seqset_add(&s, 0xfffffff0u, 0xfffffff8u, 100);
	assert_int_equal(s.r[0].start, 0xfffffff0u);
	assert_int_equal(ust_seqset_find(&s, 0xfffffff4u), 0);
	assert_int_equal(ust_seqset_find(&s, 0x18), 1);
	assert_int_equal(ust_seqset_add(&s, 0xfffffff8u, 0x10, 100), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(ust_seqset_pull(&s, 0xfffffff0u), 0x20);
	assert_null(s.r);
}

/* overlap: the lowest part of a range the set holds, for D-SACK. Ranges
 * [10,20) [30,40) [50,60). */
static void test_seqset_overlap(void **state)
{
	struct ust_seqset s = { 0 };
	struct ust_range p;

	(void)state;
	for (uint32_t i = 0; i < 3; i++)
		ust_seqset_add(&s, 10 + 20 * i, 20 + 20 * i, 100);
	assert_false(ust_seqset_overlap(&s, 0, 10, &p));   /* touches, no overlap */
	assert_false(ust_seqset_overlap(&s, 20, 30, &p));  /* the gap whole */
	assert_false(ust_seqset_overlap(&s, 60, 70, &p));  /* past the last */
	assert_true(ust_seqset_overlap(&s, 12, 18, &p));   /* inside one */
	assert_int_equal(p.start, 12);
	assert_int_equal(p.end, 18);
	assert_true(ust_seqset_overlap(&s, 15, 35, &p));   /* over two: the lower */
	assert_int_equal(p.start, 15);
	assert_int_equal(p.end, 20);
	assert_true(ust_seqset_overlap(&s, 25, 55, &p));   /* from a gap */
	assert_int_equal(p.start, 30);
	assert_int_equal(p.end, 40);
	ust_seqset_clear(&s);
	/* Across the wrap of the sequence space. */
	ust_seqset_add(&s, 0xfffffff0u, 0x10, 100);
	assert_true(ust_seqset_overlap(&s, 0xffffffe0u, 0xfffffff8u, &p));
	assert_int_equal(p.start, 0xfffffff0u);
	assert_int_equal(p.end, 0xfffffff8u);
	ust_seqset_clear(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_init_empty),
		cmocka_unit_test(test_ring_append_until_full),
		cmocka_unit_test(test_ring_wrap_every_position),
		cmocka_unit_test(test_ring_span_two_pieces),
		cmocka_unit_test(test_ring_memory_only_while_holding),
		cmocka_unit_test(test_ring_write_at_then_commit),
		cmocka_unit_test_setup_teardown(test_ring_consume_all_keeps_out_of_order, ring_setup,
						ring_teardown),
#ifndef __SANITIZE_ADDRESS__ /* the sanitizer's allocator is not glibc's */
		cmocka_unit_test(test_ring_large_free_leaves_malloc_alone),
#endif
		cmocka_unit_test(test_ring_resize_keeps_contents),
		cmocka_unit_test(test_ring_large_resize_keeps_contents),
		cmocka_unit_test(test_ring_rewind),
		cmocka_unit_test(test_ring_large_in_huge_pages),
		cmocka_unit_test(test_ring_resize_keep_out_of_order),
		cmocka_unit_test(test_ring_random_against_model),
		cmocka_unit_test(test_seqset_add_merge),
		cmocka_unit_test(test_seqset_trim_pull_edges),
		cmocka_unit_test(test_seqset_grows),
		cmocka_unit_test(test_seqset_bounded),
		cmocka_unit_test(test_seqset_find_trim_pull),
		cmocka_unit_test(test_seqset_overlap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
