#include <stdint.h>
#include <sys/mman.h>

#include "hotmem.h"

/* A mapping of ust_hot_len(len) bytes at a huge page's boundary: one huge
 * page more is mapped, and what lies before the boundary and after the end
 * is given back. */
static uint8_t *map_aligned(size_t len)
{
	size_t want = ust_hot_len(len), span = want + UST_HOT_PAGE;
	uint8_t *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *a;

	if (p == MAP_FAILED)
		return NULL;
	a = (uint8_t *)(((uintptr_t)p + UST_HOT_PAGE - 1) & ~(uintptr_t)(UST_HOT_PAGE - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	if (a + want < p + span)
		munmap(a + want, (size_t)(p + span - (a + want)));
	return a;
}

void *ust_hot_map(size_t len)
{
	uint8_t *a = map_aligned(len);

	/* Advice refused (a kernel without transparent huge pages) leaves
	 * ordinary pages, which work the same. */
	if (a)
		madvise(a, ust_hot_len(len), MADV_HUGEPAGE);
	return a;
}

void *ust_hot_remap(void *p, size_t mapped, size_t len)
{
	uint8_t *a = map_aligned(len);
	void *moved;

	if (!a)
		return NULL;
	/* The pages move with their page tables (huge ones whole, as both
	 * ends are aligned); the advice goes with the old range's mapping,
	 * and is given again for the part beyond it. */
	moved = mremap(p, mapped, mapped, MREMAP_MAYMOVE | MREMAP_FIXED, a);
	if (moved == MAP_FAILED) {
		munmap(a, ust_hot_len(len));
		return NULL;
	}
	madvise(a, ust_hot_len(len), MADV_HUGEPAGE);
	return a;
}

void ust_hot_unmap(void *p, size_t len)
{
	if (p)
		munmap(p, ust_hot_len(len));
}
