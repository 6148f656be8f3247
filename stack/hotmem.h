/* Memory the stack writes at line rate, in huge pages where the kernel
 * gives them: the link's receive buffers once coalesced frames arrive, and
 * the rings of flows that outgrow their first 64 KiB (tcp_buf.c).
 *
 * Every page a process writes for the first time costs a page fault; in a
 * virtual machine also the host's work. Measured on the VM this was built
 * on (a PVM guest), 1 MiB written into fresh memory took 2.8 to 5.2 ms in
 * 4 KiB pages and, in most runs, 130 to 280 us in one transparent huge
 * page, which the kernel maps in one fault where the range is aligned to
 * 2 MiB and advised (MADV_HUGEPAGE: the default "madvise" mode gives them
 * only there); 5 to 6 ms when the huge page was memory the host had never
 * backed, as much as ordinary pages. The kernel's own TCP never pays
 * this: its buffers are in its direct map, itself in huge pages. The
 * price is memory: a huge page is all resident once any byte of it is
 * written, so only memory that is about to be written through at speed
 * comes from here, and under a bound (its callers'). Where the kernel has
 * no huge page to give, or transparent huge pages are off, the memory is
 * ordinary pages, as any mapping's. */
#ifndef USTCP_HOTMEM_H
#define USTCP_HOTMEM_H

#include <stddef.h>

#define UST_HOT_PAGE (2u * 1024 * 1024)

/* The bytes a mapping of len takes: whole huge pages. */
static inline size_t ust_hot_len(size_t len)
{
	return (len + UST_HOT_PAGE - 1) & ~(size_t)(UST_HOT_PAGE - 1);
}

/* A mapping of ust_hot_len(len) bytes at a huge page's boundary, advised
 * for huge pages, zero and untouched; NULL if the address space is short. */
void *ust_hot_map(size_t len);
/* The pages of the mapping [p, p + mapped) (any mapping, or ust_hot_len of
 * a hot one's length) moved, not copied, to the start of a new one as
 * ust_hot_map(len) makes (len > mapped); the old range is gone. NULL on
 * failure, the old mapping kept. */
void *ust_hot_remap(void *p, size_t mapped, size_t len);
/* Unmaps what ust_hot_map(len) or ust_hot_remap(…, len) gave. */
void ust_hot_unmap(void *p, size_t len);

#endif
