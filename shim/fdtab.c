/* The sockets shared with program threads, and the fd table.
 *
 * Sockets live in one region mapped MAP_SHARED at the first TCP socket, so
 * that a child forked later sees the same states, addresses and pending
 * errors as the process whose stack serves them. Slots are claimed with a
 * compare-and-swap (no lock: socket() may run in a signal handler or in two
 * processes at once) and carry a generation, so a stale fd-table entry never
 * names a reused slot.
 *
 * The region is a memfd, so that it outlives exec too: the exec wrappers
 * pass it to the new image (USTCP_REGION_FD), which maps it in its
 * constructor and finds the sockets it inherited there, so that they keep
 * their identity (getpeername, getsockopt…) and the keeper that serves them
 * keeps counting their holders. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "fdbase.h"
#include "shim.h"

/* The region's first page: how far slots were ever used, and the free
 * slots as a lock-free stack (Treiber's) whose head carries a tag that
 * every push and pop changes, so a head read before another thread popped
 * and pushed the same slot back cannot be swapped in stale (ABA). */
struct region_head {
	_Atomic unsigned hwm;        /* slots at or above this were never used */
	_Atomic uint64_t free_top;   /* tag << 32 | (index + 1); 0: empty */
	unsigned no_slots;           /* 0: see below */
	_Atomic unsigned rpc_asked;  /* calls waiting in slots' mailboxes (calls.c) */
	/* The layout the maker used. An exec'd image or an SCM_RIGHTS
	 * receiver may run another build of the library (replaced on disk,
	 * nginx's binary upgrade): it maps the region only if it lays it out
	 * alike, else it reads slots at the wrong stride and writes over
	 * sockets the maker's keeper still serves. Builds before the stamp
	 * read their slot count where no_slots is, and refuse a count of 0. */
	uint32_t magic;              /* REGION_MAGIC */
	uint32_t slot_size, last_size;
	unsigned nslots;             /* fixed when made: an exec'd image maps as many */
	uint32_t ipopts_size;        /* sizeof(struct us_ip_opts) (version 2) */
};

/* "ustR", and its layout's version: raise it when a field of us_sock or
 * us_last changes meaning without changing either size. */
#define REGION_MAGIC 0x75737452u
#define REGION_VERSION 3u

static struct region_head *head;
static int region_fd = -1;       /* the memfd behind it */
/* The process whose table counts in us_sock.life: the one that mapped
 * the region, or a child forked through fork() (atfork counts its copy).
 * A vfork child's copy of the table is not counted. */
static pid_t table_pid;
static struct us_sock *region;
static struct us_last *lasts;    /* after the slots, one per slot */
static struct us_ip_opts *ipopts; /* after those, one per slot (us_sock_ipopts) */
static _Atomic uint64_t *fdtab;
static unsigned nfds;
static unsigned nslots;
static pthread_once_t region_once = PTHREAD_ONCE_INIT;

/* The regions of stacks this process is not related to, mapped when one of
 * their sockets arrived with SCM_RIGHTS (us_fd_lookup, foreign_lookup):
 * fd-table entries name their slots by the region's number (1 up, bits
 * REGION_SHIFT on; 0 is ours), and calls on them go to that stack through
 * its wake-up name (us_wake_addr). Never unmapped: a socket's slot stays
 * named while any fd of ours may name it. */
#define FOREIGN_MAX 8
#define REGION_SHIFT 24 /* slot indexes are below US_MAX_SOCKS, 2^20 */
struct foreign_region {
	struct region_head *head;
	struct us_sock *slots;
	unsigned nslots;
	dev_t dev; /* the memfd's, which names the stack's wake-up socket */
	ino_t ino;
};
static struct foreign_region foreign[FOREIGN_MAX];
static _Atomic unsigned nforeign;
static pthread_mutex_t foreign_lock = PTHREAD_MUTEX_INITIALIZER;

/* How many fds the program may ever have: the hard limit on them (the
 * soft one may be raised up to it later), at least 4096, at most
 * US_MAX_SOCKS (the kernel's own default fs.nr_open). */
static unsigned fd_ceiling(void)
{
	struct rlimit rl;
	rlim_t n = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_max : 4096;

	if (n == RLIM_INFINITY || n > US_MAX_SOCKS)
		n = US_MAX_SOCKS;
	return n < 4096 ? 4096 : (unsigned)n;
}

/* The private fd table, one entry per fd below the fd ceiling. */
static bool map_fdtab(void)
{
	unsigned n = fd_ceiling();
	void *p = mmap(NULL, sizeof(*fdtab) * n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return false;
	fdtab = p;
	nfds = n;
	table_pid = getpid();
	return true;
}

/* The head's page, the slots, their final statuses (us_sock_last), then
 * their IP options (us_sock_ipopts). */
#define SLOT_BYTES (sizeof(struct us_sock) + sizeof(struct us_last) + sizeof(struct us_ip_opts))
static size_t region_size(unsigned n)
{
	return SLOT_BYTES * n + 4096;
}

/* The memfd, above the program's range (fcntl's own F_DUPFD_CLOEXEC: the
 * stack's us_fd_high is the stack thread's). */
static int high_fd(int fd)
{
	int h = REAL(fcntl)(fd, F_DUPFD_CLOEXEC, ust_fd_high_base());

	if (h < 0)
		return fd;
	REAL(close)(fd);
	return h;
}

static void set_entry(int fd, struct us_sock *s);

/* The sockets an exec'd image inherited: the open fds that are app ends
 * of the region's live slots (found by inode through one pass over the
 * slots, kept in a sorted array), entered in the new table and counted
 * (the old image's entries were uncounted before the exec). The same
 * pass notes the epoll sets it inherited (fdplace.c). */
struct ino_slot {
	dev_t dev;
	ino_t ino;
	unsigned idx;
};

static int by_ino(const void *a, const void *b)
{
	const struct ino_slot *x = a, *y = b;

	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return (x->dev > y->dev) - (x->dev < y->dev);
}

static void adopt_inherited(void)
{
	unsigned top = atomic_load(&head->hwm), n = 0;
	struct ino_slot *v = calloc(top ? top : 1, sizeof(*v));
	DIR *d;
	struct dirent *e;

	if (!v)
		return;
	for (unsigned i = 0; i < top && i < nslots; i++)
		if (atomic_load(&region[i].kind) != US_FREE && region[i].app_ino)
			v[n++] = (struct ino_slot){ region[i].app_dev, region[i].app_ino, i };
	qsort(v, n, sizeof(*v), by_ino);
	/* Also without sockets: the epoll sets it inherited. */
	d = opendir("/proc/self/fd");
	while (d && (e = readdir(d))) {
		struct stat st;
		struct ino_slot key, *hit;
		int fd = atoi(e->d_name);

		if (e->d_name[0] == '.' || fd == dirfd(d) || fstat(fd, &st) < 0)
			continue;
		if ((st.st_mode & S_IFMT) == 0) {
			us_epoll_note(fd); /* an inherited epoll set (fdplace.c) */
			continue;
		}
		if (!S_ISSOCK(st.st_mode))
			continue;
		key.dev = st.st_dev;
		key.ino = st.st_ino;
		hit = n ? bsearch(&key, v, n, sizeof(*v), by_ino) : NULL;
		if (hit && fd >= 0 && (unsigned)fd < nfds)
			set_entry(fd, &region[hit->idx]); /* inside map_region: not us_fd_set */
	}
	if (d)
		closedir(d);
	free(v);
}

/* fdplace.c's, in the library. */
__attribute__((weak)) void us_epoll_note(int fd)
{
}

/* start.c's, in the library; these do nothing where fdtab.c is linked
 * without the stack (the relay's unit test). */
__attribute__((weak)) int us_stack_wake_fd_for_exec(void)
{
	return -1;
}

__attribute__((weak)) void us_stack_adopt_wake_fd(int fd)
{
}

/* Whether the memfd fd holds a region this build lays out as its maker
 * did, whole; its head in *h, the file's status in *st. */
static bool region_usable(int fd, struct region_head *h, struct stat *st)
{
	return fstat(fd, st) == 0 && pread(fd, h, sizeof(*h), 0) == (ssize_t)sizeof(*h) &&
	       h->magic == REGION_MAGIC + REGION_VERSION && h->slot_size == sizeof(struct us_sock) &&
	       h->last_size == sizeof(struct us_last) && h->ipopts_size == sizeof(struct us_ip_opts) &&
	       h->no_slots == 0 && h->nslots != 0 &&
	       h->nslots <= US_MAX_SOCKS && (off_t)region_size(h->nslots) <= st->st_size;
}

/* The region an exec'd image inherits, named by USTCP_REGION_FD: mapped
 * as its maker made it. The variable goes (only our exec wrappers pass it
 * on) and the fd is close-on-exec again. A region this build cannot use
 * is closed: the sockets it named stay the AF_UNIX ends they are. */
static bool map_inherited(const char *var)
{
	int fd = atoi(var);
	struct region_head h;
	struct stat st;
	void *p;

	unsetenv("USTCP_REGION_FD");
	if (getenv("USTCP_WAKE_FD")) {
		us_stack_adopt_wake_fd(atoi(getenv("USTCP_WAKE_FD")));
		unsetenv("USTCP_WAKE_FD");
	}
	if (fd < 0)
		return false;
	if (!region_usable(fd, &h, &st)) {
		REAL(close)(fd);
		return false;
	}
	p = mmap(NULL, region_size(h.nslots), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED || !map_fdtab()) {
		if (p != MAP_FAILED)
			munmap(p, region_size(h.nslots));
		REAL(close)(fd);
		return false;
	}
	REAL(fcntl)(fd, F_SETFD, FD_CLOEXEC);
	region_fd = fd;
	head = p;
	nslots = h.nslots;
	region = (struct us_sock *)((char *)p + 4096);
	lasts = (struct us_last *)(region + nslots);
	ipopts = (struct us_ip_opts *)(lasts + nslots);
	adopt_inherited();
	return true;
}

/* One slot per fd the program may have: a socket needs an fd, so the
 * kernel runs out of those first, with EMFILE. The region is address
 * space only (MAP_NORESERVE, a sparse memfd): pages are touched as slots
 * are first used. Forked children and exec'd images share it, and so share
 * its bound. */
/* A slot for every fd, but under RLIMIT_AS (ulimit -v) no more than an
 * eighth of the address space the program may have, and at least 4096:
 * each slot is some 10 KiB of it (the sticky IPv6 headers' room), 10 GiB
 * at a million fds. A socket beyond the slots gets ENFILE, as when the
 * region is full. */
static unsigned region_slots(void)
{
	unsigned n = fd_ceiling();
	struct rlimit rl;

	if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		rlim_t fit = rl.rlim_cur / 8 / SLOT_BYTES;

		if (fit < 4096)
			fit = 4096;
		if (fit < n)
			n = (unsigned)fit;
	}
	return n;
}

static void map_region(void)
{
	const char *inherited = getenv("USTCP_REGION_FD");
	unsigned n = region_slots();
	size_t size = region_size(n);
	int fd;
	void *p;

	if (inherited && map_inherited(inherited))
		return;
	fd = memfd_create("ustcp-sockets", MFD_CLOEXEC);
	if (fd < 0)
		return;
	if (ftruncate(fd, (off_t)size) < 0 ||
	    (p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0)) == MAP_FAILED) {
		REAL(close)(fd);
		return;
	}
	if (!map_fdtab()) {
		munmap(p, size);
		REAL(close)(fd);
		return;
	}
	region_fd = high_fd(fd);
	head = p;
	head->magic = REGION_MAGIC + REGION_VERSION;
	head->slot_size = sizeof(struct us_sock);
	head->last_size = sizeof(struct us_last);
	head->ipopts_size = sizeof(struct us_ip_opts);
	head->nslots = n;
	nslots = n;
	region = (struct us_sock *)((char *)p + 4096);
	lasts = (struct us_last *)(region + nslots);
	ipopts = (struct us_ip_opts *)(lasts + nslots);
}

static bool have_region(void)
{
	pthread_once(&region_once, map_region);
	return region != NULL;
}

unsigned us_sock_slots(void)
{
	return have_region() ? nslots : 0;
}

struct us_sock *us_sock_at(unsigned idx)
{
	return region && idx < nslots ? &region[idx] : NULL;
}

unsigned us_sock_idx(const struct us_sock *s)
{
	return (unsigned)(s - region);
}

static int foreign_of(const struct us_sock *s);

/* A foreign region's statuses follow its slots as ours do. */
struct us_last *us_sock_last(const struct us_sock *s)
{
	int r = foreign_of(s);

	if (r > 0) {
		const struct foreign_region *f = &foreign[r - 1];
		return (struct us_last *)(f->slots + f->nslots) + (s - f->slots);
	}
	return &lasts[s - region];
}

struct us_ip_opts *us_sock_ipopts_w(struct us_sock *s)
{
	int r = foreign_of(s);

	atomic_store(&s->ipopts_dirty, 1);
	if (r > 0) {
		const struct foreign_region *f = &foreign[r - 1];
		return (struct us_ip_opts *)((struct us_last *)(f->slots + f->nslots) + f->nslots) + (s - f->slots);
	}
	return &ipopts[s - region];
}

struct us_ip_opts *us_sock_ipopts(const struct us_sock *s)
{
	static struct us_ip_opts none; /* never written */

	if (!atomic_load(&s->ipopts_dirty))
		return &none;
	return us_sock_ipopts_w((struct us_sock *)s);
}

uint32_t us_sock_port_range(const struct us_sock *s)
{
	const struct us_ip_opts *o = us_sock_ipopts(s);

	if (!(atomic_load(&o->set4) & (1u << US_IP4_KEPT_PORT_RANGE)))
		return 0;
	return (uint32_t)atomic_load(&o->kept4[US_IP4_KEPT_PORT_RANGE]);
}

unsigned us_sock_hwm(void)
{
	unsigned n = region ? atomic_load(&head->hwm) : 0;

	return n < nslots ? n : nslots;
}

_Atomic unsigned *us_rpc_asked(void)
{
	return region ? &head->rpc_asked : NULL;
}

/* A freed slot off the stack, or NULL. */
static struct us_sock *pop_free(void)
{
	uint64_t top = atomic_load(&head->free_top), next;

	while ((uint32_t)top) { /* the tag alone is an empty stack */
		struct us_sock *s = &region[(uint32_t)top - 1];
		next = ((top >> 32) + 1) << 32 | atomic_load(&s->free_next);
		if (atomic_compare_exchange_weak(&head->free_top, &top, next))
			return s;
	}
	return NULL;
}

static void push_free_to(struct region_head *h, struct us_sock *base, struct us_sock *s)
{
	uint64_t top = atomic_load(&h->free_top);

	do {
		atomic_store(&s->free_next, (uint32_t)top);
	} while (!atomic_compare_exchange_weak(&h->free_top, &top,
					       ((top >> 32) + 1) << 32 | ((unsigned)(s - base) + 1)));
}

static void push_free(struct us_sock *s)
{
	push_free_to(head, region, s);
}

/* O(1): a freed slot, else the next never used one. */
struct us_sock *us_sock_alloc(void)
{
	struct us_sock *s;
	int free_kind = US_FREE;

	if (!have_region())
		return NULL;
	s = pop_free();
	if (!s) {
		unsigned i = atomic_load(&head->hwm);
		do {
			if (i >= nslots)
				return NULL;
		} while (!atomic_compare_exchange_weak(&head->hwm, &i, i + 1));
		s = &region[i];
	}
	if (!atomic_compare_exchange_strong(&s->kind, &free_kind, US_CONN))
		return NULL; /* cannot be: a slot on the stack or above hwm is free */
	atomic_fetch_add(&s->gen, 1);
	atomic_store(&s->state, 0);
	atomic_store(&s->pending_err, 0);
	atomic_store(&s->hard_err, 0);
	atomic_store(&s->flags, 0);
	/* No address, no port, for either family, until the stack thread
	 * publishes the socket's (getsockname reads the slot, and a socket
	 * made on the program's thread is adopted later). */
	atomic_store(&s->local, 0);
	atomic_store(&s->remote, 0);
	memset(&s->local6, 0, sizeof(s->local6));
	memset(&s->remote6, 0, sizeof(s->remote6));
	atomic_store(&s->reuseaddr, 0);
	atomic_store(&s->reuseport, 0);
	atomic_store(&s->rpc, US_RPC_IDLE);
	atomic_store(&s->notsent_lowat, 0);
	atomic_store(&s->fastopen_qlen, 0);
	atomic_store(&s->tx_delay, 0);
	atomic_store(&s->fastopen_no_cookie, 0);
	atomic_store(&s->fastopen_key_len, 0);
	atomic_store(&s->ip_tos, 0);
	atomic_store(&s->ip_ttl, 0);
	atomic_store(&s->ip_pmtudisc, UST_PMTUDISC_WANT);
	atomic_store(&s->ip6_tclass, 0);
	atomic_store(&s->ip6_hops, UST_TCP_HOPS_DEFAULT);
	atomic_store(&s->ip6_pmtudisc, UST_PMTUDISC_WANT);
	if (atomic_load(&s->ipopts_dirty)) {
		struct us_ip_opts *o = us_sock_ipopts_w(s);

		atomic_store(&o->set, 0);
		atomic_store(&o->set4, 0);
		atomic_store(&o->ip_opts_len, 0);
		for (int i = 0; i < 4; i++)
			atomic_store(&o->hdr_len[i], 0);
		memset(o->pktinfo, 0, sizeof(o->pktinfo));
		atomic_store(&o->rcv_tos, 0);
		atomic_store(&o->saved_syn_len, 0);
		atomic_store(&o->rx_kept_len, 0);
		atomic_store(&s->ipopts_dirty, 0);
	}
	atomic_store(&s->linger_on, 0);
	atomic_store(&s->linger_s, 0);
	atomic_store(&s->bound_port, 0);
	atomic_store(&s->nopts, 0);
	atomic_store(&s->life, 0);
	s->owner = 0;
	s->app_fd = -1;
	s->app_dev = 0;
	s->app_ino = 0;
	return s;
}

void us_sock_free(struct us_sock *s)
{
	int r = foreign_of(s);

	atomic_fetch_add(&s->gen, 1);
	atomic_store(&s->kind, US_FREE);
	if (r > 0)
		push_free_to(foreign[r - 1].head, foreign[r - 1].slots, s);
	else
		push_free(s);
}

/* ---- the fd table ---- */

/* Program fds below nfds (the fd ceiling, as the region) name their socket
 * in one read. The table (mapped with the region) is private: a forked
 * child gets a copy, as it gets a copy of the fds. */
/* Above every fd ever set: fork and close_range read no further. */
static _Atomic unsigned fd_top;

static bool have_fdtab(void)
{
	if (!have_region())
		return false;
	return fdtab != NULL;
}

/* The region s is in: 0 ours, r > 0 foreign[r - 1], -1 none. */
static int foreign_of(const struct us_sock *s)
{
	unsigned n = atomic_load(&nforeign);

	if (region && s >= region && s < region + nslots)
		return 0;
	for (unsigned r = 0; r < n; r++)
		if (s >= foreign[r].slots && s < foreign[r].slots + foreign[r].nslots)
			return (int)r + 1;
	return -1;
}

static uint64_t entry(const struct us_sock *s)
{
	int r = foreign_of(s);
	unsigned idx = r > 0 ? (unsigned)(s - foreign[r - 1].slots) : us_sock_idx(s);

	return (uint64_t)atomic_load(&s->gen) << 32 | (uint64_t)(r > 0 ? r : 0) << REGION_SHIFT | (idx + 1);
}

/* An entry that says "not an app end": the fd's inode (its low 32 bits),
 * seen by us_fd_lookup. An inode that is not an app end never becomes
 * one, so the mark stays true for as long as the fd names that inode, and
 * spares every later call on it a walk over the slots. */
#define NOT_OURS (1ull << 63)

/* The socket an entry names, or NULL (stale, empty or NOT_OURS). */
static struct us_sock *named(uint64_t e)
{
	struct us_sock *s;

	unsigned r, idx;

	if (!e || (e & NOT_OURS))
		return NULL;
	r = (unsigned)(e >> REGION_SHIFT) & 0xff;
	idx = (unsigned)(e & ((1u << REGION_SHIFT) - 1)) - 1;
	if (r == 0)
		s = us_sock_at(idx);
	else if (r <= atomic_load(&nforeign) && idx < foreign[r - 1].nslots)
		s = &foreign[r - 1].slots[idx];
	else
		s = NULL;
	if (!s || atomic_load(&s->gen) != (uint32_t)(e >> 32) || atomic_load(&s->kind) == US_FREE)
		return NULL;
	return s;
}

/* fd_top goes above fd, which is about to get an entry. */
static void raise_top(int fd)
{
	unsigned top = atomic_load(&fd_top);

	while (top <= (unsigned)fd && !atomic_compare_exchange_weak(&fd_top, &top, (unsigned)fd + 1))
		;
}

/* One entry fewer names s: how many are left. Never below 0: an entry
 * uncounted twice would otherwise borrow from the bits above the count. */
static int life_drop(struct us_sock *s)
{
	unsigned life = atomic_load(&s->life);

	do {
		if (!(life & US_LIFE_REFS))
			return 0;
	} while (!atomic_compare_exchange_weak(&s->life, &life, life - 1));
	return (int)((life - 1) & US_LIFE_REFS);
}

/* One entry more names s; at 0 it takes a close mark back in the same
 * step (as in set_entry), also when a failed exec counts its table again. */
static void life_add(struct us_sock *s)
{
	unsigned life = atomic_load(&s->life);

	while (!atomic_compare_exchange_weak(&s->life, &life,
					     (life & US_LIFE_REFS) ? life + 1 : (life + 1) & ~US_L_APP_CLOSED))
		;
}

/* Entries count as references on their socket (US_LIFE_REFS), in every
 * process: the slot of a socket TCP is done with is freed when the last of
 * them goes. An entry made after the last close (a process that received
 * the socket over SCM_RIGHTS as its sender closed its copy) takes the
 * close back in the same step: the socket is held again, and only a close
 * of the new holder (with the app end's hang-up) ends it. If the stack
 * acted on that close already, it is too late: the slot may be gone. */
static void set_entry(int fd, struct us_sock *s)
{
	struct us_sock *old;

	raise_top(fd);
	life_add(s);
	old = named(atomic_exchange(&fdtab[fd], entry(s)));
	if (old)
		life_drop(old);
}

void us_fd_set(int fd, struct us_sock *s)
{
	if (fd >= 0 && have_fdtab() && (unsigned)fd < nfds)
		set_entry(fd, s);
}

int us_fd_clear(int fd)
{
	struct us_sock *old;

	if (fd < 0 || !fdtab || (unsigned)fd >= atomic_load(&fd_top))
		return -1;
	old = named(atomic_exchange(&fdtab[fd], 0));
	return old ? life_drop(old) : -1;
}

void us_fd_inherited(void)
{
	unsigned top = atomic_load(&fd_top);

	for (unsigned fd = 0; fdtab && fd < top; fd++) {
		struct us_sock *s = named(atomic_load(&fdtab[fd]));
		if (s)
			life_add(s);
	}
}

bool us_fd_table_of(pid_t pid)
{
	return fdtab && table_pid == pid;
}

unsigned us_fd_top(void)
{
	return atomic_load(&fd_top);
}

struct us_sock *us_fd_get(int fd)
{
	if (fd < 0 || !fdtab || (unsigned)fd >= nfds)
		return NULL;
	return named(atomic_load_explicit(&fdtab[fd], memory_order_acquire));
}

/* Only an AF_UNIX stream socket can be an app end: any other fd (a kernel
 * TCP or UDP socket, a file) is answered without reading the slots. */
static bool maybe_app_end(int fd, struct stat *st)
{
	int domain = 0;
	socklen_t len = sizeof(domain);

	return fstat(fd, st) == 0 && S_ISSOCK(st->st_mode) &&
	       REAL(getsockopt)(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_UNIX;
}

/* ---- another stack's sockets (SCM_RIGHTS) ---- */

socklen_t us_wake_addr(struct sockaddr_un *sun, dev_t dev, ino_t ino)
{
	int n;

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	n = snprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1, "ustcp-wake-%llx-%llx", (unsigned long long)dev,
		     (unsigned long long)ino);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

bool us_region_id(dev_t *dev, ino_t *ino)
{
	struct stat st;

	if (!have_region() || region_fd < 0 || fstat(region_fd, &st) < 0)
		return false;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return true;
}

/* A slot of region (h, slots, n) whose app end is (dev, ino), or NULL. */
static struct us_sock *slot_by_inode(struct region_head *h, struct us_sock *slots, unsigned n, dev_t dev, ino_t ino)
{
	unsigned top = atomic_load(&h->hwm);

	for (unsigned i = 0; i < top && i < n; i++) {
		struct us_sock *s = &slots[i];
		if (atomic_load(&s->kind) != US_FREE && s->app_ino == ino && s->app_dev == dev)
			return s;
	}
	return NULL;
}

/* The socket region of process pid, opened through /proc (the kernel
 * lets the same user, where the process is dumpable) and mapped, or -1. */
static int foreign_map(pid_t pid)
{
	char dir[64], path[64 + 256 + 2], link[64];
	struct region_head h;
	struct foreign_region *f;
	struct stat st, own;
	struct dirent *e;
	DIR *d;
	int fd = -1;
	unsigned n = atomic_load(&nforeign);
	void *p;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	if (!(d = opendir(dir)))
		return -1;
	while (fd < 0 && (e = readdir(d))) {
		ssize_t l;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		l = readlink(path, link, sizeof(link) - 1);
		if (l <= 0)
			continue;
		link[l] = 0;
		if (strncmp(link, "/memfd:ustcp-sockets", 20) == 0)
			fd = open(path, O_RDWR | O_CLOEXEC);
	}
	closedir(d);
	if (fd < 0)
		return -1;
	if (!region_usable(fd, &h, &st)) {
		REAL(close)(fd);
		return -1;
	}
	for (unsigned r = 0; r < n; r++)
		if (foreign[r].dev == st.st_dev && foreign[r].ino == st.st_ino) {
			REAL(close)(fd);
			return (int)r;
		}
	/* Ours (a process that shares it) was searched already. */
	if (n >= FOREIGN_MAX || (region_fd >= 0 && fstat(region_fd, &own) == 0 && own.st_ino == st.st_ino &&
				 own.st_dev == st.st_dev)) {
		REAL(close)(fd);
		return -1;
	}
	p = mmap(NULL, region_size(h.nslots), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	REAL(close)(fd);
	if (p == MAP_FAILED)
		return -1;
	f = &foreign[n];
	f->head = p;
	f->slots = (struct us_sock *)((char *)p + 4096);
	f->nslots = h.nslots;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	atomic_store(&nforeign, n + 1);
	return (int)n;
}

/* An app end of another process's stack, which this process is not
 * related to (SCM_RIGHTS): its pair was made by that stack, so the
 * kernel's peer credentials name the process (the guardian's pid, or the
 * program's: they share one fd table), whose region holds the slot. */
static struct us_sock *foreign_lookup(int fd, const struct stat *st)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	struct us_sock *s = NULL;
	int r;

	static pid_t none[16]; /* peers found without a region lately (most AF_UNIX peers) */
	static unsigned nnone;
	bool seen = false;

	if (REAL(getsockopt)(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || cr.pid <= 0 || cr.pid == getpid())
		return NULL;
	pthread_mutex_lock(&foreign_lock);
	for (unsigned i = 0; !s && i < atomic_load(&nforeign); i++)
		s = slot_by_inode(foreign[i].head, foreign[i].slots, foreign[i].nslots, st->st_dev, st->st_ino);
	for (unsigned i = 0; !s && i < 16; i++)
		seen = seen || none[i] == cr.pid;
	if (!s && !seen) {
		r = foreign_map(cr.pid);
		if (r >= 0)
			s = slot_by_inode(foreign[r].head, foreign[r].slots, foreign[r].nslots, st->st_dev, st->st_ino);
		else
			none[nnone++ % 16] = cr.pid;
	}
	pthread_mutex_unlock(&foreign_lock);
	return s;
}

bool us_sock_foreign(const struct us_sock *s)
{
	return foreign_of(s) > 0;
}

_Atomic unsigned *us_rpc_asked_of(const struct us_sock *s)
{
	int r = foreign_of(s);

	return r > 0 ? &foreign[r - 1].head->rpc_asked : us_rpc_asked();
}

/* The socket us_foreign_poke sends its pokes from, made at the first. */
static int poke_fd = -1;

bool us_foreign_poke(const struct us_sock *s)
{
	struct sockaddr_un sun;
	socklen_t len;
	int r = foreign_of(s), fd;

	if (r <= 0)
		return false;
	fd = atomic_load((_Atomic int *)&poke_fd);
	if (fd < 0) {
		int mine = REAL(socket)(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), none = -1;
		if (mine < 0)
			return true;
		mine = high_fd(mine);
		if (!atomic_compare_exchange_strong((_Atomic int *)&poke_fd, &none, mine))
			REAL(close)(mine);
		fd = atomic_load((_Atomic int *)&poke_fd);
	}
	len = us_wake_addr(&sun, foreign[r - 1].dev, foreign[r - 1].ino);
	if (REAL(sendto)(fd, "", 0, MSG_DONTWAIT, (struct sockaddr *)&sun, len) < 0) {
		/* the stack is gone, or its socket full: it is awake */
	}
	return true;
}

struct us_sock *us_sock_at_of(const struct us_sock *ref, unsigned idx)
{
	int r = foreign_of(ref);

	if (r > 0)
		return idx < foreign[r - 1].nslots ? &foreign[r - 1].slots[idx] : NULL;
	return us_sock_at(idx);
}

struct us_sock *us_fd_lookup(int fd)
{
	struct us_sock *s = us_fd_get(fd);
	uint64_t e, mark;
	struct stat st;
	unsigned top;

	if (s || !maybe_app_end(fd, &st))
		return s;
	mark = NOT_OURS | (uint32_t)st.st_ino;
	e = region && fd >= 0 && (unsigned)fd < nfds ? atomic_load(&fdtab[fd]) : 0;
	if (e == mark)
		return NULL; /* this inode was looked for before */
	/* An app end that came by a way the table did not see (F_DUPFD,
	 * SCM_RIGHTS, inheritance, or an fd above the table): found by its
	 * inode, once; the table knows it from then on, and knows as well
	 * an AF_UNIX socket of the program's own that is none of ours. */
	top = region ? atomic_load(&head->hwm) : 0;
	for (unsigned i = 0; i < top && i < nslots; i++) {
		s = &region[i];
		if (atomic_load(&s->kind) != US_FREE && s->app_ino == st.st_ino && s->app_dev == st.st_dev) {
			us_fd_set(fd, s);
			return s;
		}
	}
	/* Another stack's: the table is made for it in a process that has
	 * none yet (it never made a TCP socket). */
	s = foreign_lookup(fd, &st);
	if (s && have_fdtab()) {
		/* The sender closes its copy as soon as it sent it: its
		 * close and our entry are ordered in set_entry. */
		us_fd_set(fd, s);
		return s;
	}
	if (!region)
		return NULL;
	if (fd >= 0 && (unsigned)fd < nfds) {
		raise_top(fd); /* so that close() clears the mark */
		atomic_compare_exchange_strong(&fdtab[fd], &e, mark);
	}
	return NULL;
}

/* ---- exec ---- */

int us_region_fd(void)
{
	return region_fd;
}

/* The launcher's broker socket (USTCP_BROKER_FD), read once: the program
 * never opened it, and a child forked later needs it. */
static int broker_fd(void)
{
	static _Atomic int fd = -2;
	int v = atomic_load(&fd);

	if (v == -2) {
		const char *b = getenv("USTCP_BROKER_FD");
		v = b && *b ? atoi(b) : -1;
		atomic_store(&fd, v);
	}
	return v;
}

bool us_shim_owns_fd(int fd)
{
	return fd >= 0 && (fd == region_fd || fd == atomic_load((_Atomic int *)&poke_fd) || fd == broker_fd());
}

void us_fd_map_inherited(void)
{
	if (getenv("USTCP_REGION_FD"))
		have_region();
}

/* Another thread may be in foreign_lookup when one forks: the lock is
 * taken across fork(), so that the child's copy is never held by a
 * thread it does not have. */
void us_fd_fork_lock(void)
{
	pthread_mutex_lock(&foreign_lock);
}

void us_fd_fork_unlock(void)
{
	pthread_mutex_unlock(&foreign_lock);
}

void us_fd_forked(void)
{
	table_pid = getpid();
}

/* The table dies with the image: its entries stop counting (a surviving
 * fd is counted again by the new image, which adopts it). Not in a vfork
 * child, whose copy was never counted. */
static void uncount_table(int delta)
{
	unsigned top = atomic_load(&fd_top);

	if (table_pid != getpid())
		return;
	for (unsigned fd = 0; fdtab && fd < top; fd++) {
		struct us_sock *s = named(atomic_load(&fdtab[fd]));
		if (s && delta < 0)
			life_drop(s);
		else if (s)
			life_add(s);
	}
}

char **us_exec_env(char *const envp[], char **room, size_t nroom, char var[64])
{
	size_t n = 0, k = 0;
	int wake;

	if (region_fd < 0)
		return (char **)envp;
	while (envp && envp[n])
		n++;
	if (n + 3 > nroom)
		return (char **)envp; /* an environment that large goes as it is */
	for (size_t i = 0; i < n; i++)
		if (strncmp(envp[i], "USTCP_REGION_FD=", 16) != 0 && strncmp(envp[i], "USTCP_WAKE_FD=", 14) != 0)
			room[k++] = envp[i];
	snprintf(var, 32, "USTCP_REGION_FD=%d", region_fd);
	room[k++] = var;
	/* The stack that serves the inherited sockets, for the calls the new
	 * image makes on them (calls.c, rpc_call). */
	wake = us_stack_wake_fd_for_exec();
	if (wake >= 0) {
		snprintf(var + 32, 32, "USTCP_WAKE_FD=%d", wake);
		room[k++] = var + 32;
	}
	room[k] = NULL;
	REAL(fcntl)(region_fd, F_SETFD, 0);
	uncount_table(-1);
	return room;
}

void us_exec_env_failed(char **env, char *const envp[])
{
	int wake;

	if (env == (char **)envp)
		return;
	REAL(fcntl)(region_fd, F_SETFD, FD_CLOEXEC);
	if ((wake = us_stack_wake_fd_for_exec()) >= 0)
		REAL(fcntl)(wake, F_SETFD, FD_CLOEXEC);
	uncount_table(+1);
}
