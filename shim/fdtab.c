/* The sockets shared with program threads, and the fd table.
 *
 * Sockets live in one region mapped MAP_SHARED at the first TCP socket, so
 * that a child forked later sees the same states, addresses and pending
 * errors as the process whose stack serves them. Slots are claimed with a
 * compare-and-swap (no lock: socket() may run in a signal handler or in two
 * processes at once) and carry a generation, so a stale fd-table entry never
 * names a reused slot. */
#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "shim.h"

static struct us_sock *region;
static pthread_once_t region_once = PTHREAD_ONCE_INIT;
/* Slots at or above this were never used: scans stop there. Shared too. */
static _Atomic unsigned *hwm;

static void map_region(void)
{
	size_t size = sizeof(struct us_sock) * US_MAX_SOCKS + 4096;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);

	if (p == MAP_FAILED)
		return;
	hwm = p;
	region = (struct us_sock *)((char *)p + 4096);
}

static bool have_region(void)
{
	pthread_once(&region_once, map_region);
	return region != NULL;
}

struct us_sock *us_sock_at(unsigned idx)
{
	return region && idx < US_MAX_SOCKS ? &region[idx] : NULL;
}

unsigned us_sock_idx(const struct us_sock *s)
{
	return (unsigned)(s - region);
}

struct us_sock *us_sock_alloc(void)
{
	if (!have_region())
		return NULL;
	/* Reuse a freed slot below the high-water mark, else take the one at
	 * it; the mark is read afresh at each step, as other threads (and
	 * processes) move it. */
	for (unsigned i = 0; i < US_MAX_SOCKS && i <= atomic_load(hwm); i++) {
		struct us_sock *s = &region[i];
		int free_kind = US_FREE;
		unsigned top;
		if (atomic_load_explicit(&s->kind, memory_order_relaxed) != US_FREE)
			continue;
		if (!atomic_compare_exchange_strong(&s->kind, &free_kind, US_CONN))
			continue;
		top = atomic_load(hwm);
		while (top <= i && !atomic_compare_exchange_weak(hwm, &top, i + 1))
			;
		atomic_fetch_add(&s->gen, 1);
		atomic_store(&s->state, 0);
		atomic_store(&s->pending_err, 0);
		atomic_store(&s->hard_err, 0);
		atomic_store(&s->flags, 0);
		atomic_store(&s->local, 0);
		atomic_store(&s->remote, 0);
		atomic_store(&s->reuseaddr, 0);
		atomic_store(&s->reuseport, 0);
		atomic_store(&s->ip_tos, 0);
		atomic_store(&s->ip_ttl, 64);
		atomic_store(&s->linger_on, 0);
		atomic_store(&s->linger_s, 0);
		atomic_store(&s->nopts, 0);
		atomic_store(&s->fdrefs, 0);
		s->owner = 0;
		s->app_fd = -1;
		s->app_dev = 0;
		s->app_ino = 0;
		return s;
	}
	return NULL;
}

void us_sock_free(struct us_sock *s)
{
	atomic_fetch_add(&s->gen, 1);
	atomic_store(&s->kind, US_FREE);
}

/* ---- the fd table ---- */

/* Program fds below this are cached; higher ones are found by inode. */
#define FDTAB_SIZE 65536

static _Atomic uint64_t fdtab[FDTAB_SIZE];

static uint64_t entry(const struct us_sock *s)
{
	return (uint64_t)atomic_load(&s->gen) << 32 | (us_sock_idx(s) + 1);
}

/* The socket an entry names, or NULL (stale or empty). */
static struct us_sock *named(uint64_t e)
{
	struct us_sock *s;

	if (!e)
		return NULL;
	s = us_sock_at((unsigned)(e & 0xffffffffu) - 1);
	if (!s || atomic_load(&s->gen) != (uint32_t)(e >> 32) || atomic_load(&s->kind) == US_FREE)
		return NULL;
	return s;
}

/* Entries count as references on their socket (us_sock.fdrefs), in every
 * process: the slot of a socket TCP is done with is freed when the last of
 * them goes. */
void us_fd_set(int fd, struct us_sock *s)
{
	struct us_sock *old;

	if (fd < 0 || fd >= FDTAB_SIZE)
		return;
	atomic_fetch_add(&s->fdrefs, 1);
	old = named(atomic_exchange(&fdtab[fd], entry(s)));
	if (old)
		atomic_fetch_sub(&old->fdrefs, 1);
}

int us_fd_clear(int fd)
{
	struct us_sock *old;

	if (fd < 0 || fd >= FDTAB_SIZE)
		return -1;
	old = named(atomic_exchange(&fdtab[fd], 0));
	return old ? atomic_fetch_sub(&old->fdrefs, 1) - 1 : -1;
}

void us_fd_inherited(void)
{
	for (int fd = 0; fd < FDTAB_SIZE; fd++) {
		struct us_sock *s = named(atomic_load(&fdtab[fd]));
		if (s)
			atomic_fetch_add(&s->fdrefs, 1);
	}
}

struct us_sock *us_fd_get(int fd)
{
	if (fd < 0 || fd >= FDTAB_SIZE)
		return NULL;
	return named(atomic_load_explicit(&fdtab[fd], memory_order_acquire));
}

struct us_sock *us_fd_lookup(int fd)
{
	struct us_sock *s = us_fd_get(fd);
	struct stat st;
	unsigned top;

	if (s || !region)
		return s;
	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
		return NULL;
	top = atomic_load(hwm);
	for (unsigned i = 0; i < top && i < US_MAX_SOCKS; i++) {
		s = &region[i];
		if (atomic_load(&s->kind) != US_FREE && s->app_ino == st.st_ino && s->app_dev == st.st_dev) {
			us_fd_set(fd, s);
			return s;
		}
	}
	return NULL;
}
