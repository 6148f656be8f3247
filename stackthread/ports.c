/* Ports shared with the other processes on our address. */
#include <errno.h>
#include <stdatomic.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stack_impl.h"
#include "sysctl.h"

/* Our ports: the kernel reservation sockets, one per family (F4, F6; -1:
 * none), how many control blocks use the port, whether it was bound with
 * SO_REUSEADDR, and with SO_REUSEPORT (so that other processes'
 * SO_REUSEPORT sockets may bind and listen there as well, by the kernel's
 * own rules), whether the address share holds it (a port chosen at
 * connect, claim_client), and whether we have an entry in its SO_REUSEPORT
 * group (us_port_group_update). Each family has a port space of its own,
 * as on Linux: an AF_INET socket's port is held by an AF_INET reservation
 * on our IPv4 address, an IPV6_V6ONLY one's by an AF_INET6 one (v6only) on
 * our IPv6 address, a dual-stack one's by both. A reservation is made for
 * the first user of the port that needs its family and closed with the
 * port's last user. */
enum { F4, F6 };
static struct { int fd[2]; unsigned refs; bool reuse, reuseport, shared, grouped, quiet; } ports[65536];
/* A TIME-WAIT's release while it goes to the collector (us_port_handing). */
static bool handing;
/* The ports with users (refs > 0), a bit each: walks over what a stack
 * holds (its fds at a keeper's birth, a fork child's forgetting) read
 * 8 KiB, not the 1 MiB table, whose pages a fresh process or a fork
 * child would each fault in (about 11 us a page on the development VM;
 * the table's walks were 2 % of the CPU of a run of one-shot curls). */
static uint64_t held[65536 / 64];

static void hold(uint16_t p)
{
	ports[p].refs = 1;
	held[p / 64] |= 1ull << (p % 64);
}

/* Calls fn for each port with users, in order. */
static void each_held(void (*fn)(uint16_t p, void *ctx), void *ctx)
{
	for (unsigned w = 0; w < UST_ARRAY_SIZE(held); w++)
		for (uint64_t x = held[w]; x; x &= x - 1)
			fn((uint16_t)(w * 64 + (unsigned)__builtin_ctzll(x)), ctx);
}
/* The addresses they are on (the last claim's stack's). */
static uint32_t ports_addr;
static struct ust_ip6 ports_addr6;
static bool ports_has6;

/*
 * Every stack on the address (a shell pipeline's programs, a forking
 * server's children, keepers) receives every segment for it. Who owns a
 * port is settled in the kernel's own port table: each port we use is held
 * by a kernel TCP socket bound (IP_FREEBIND, never listening) to our
 * address and that port, so two processes never pick the same port, the
 * kernel's allocator chooses ephemeral ones, and a segment matching nothing
 * here is answered with RST only if no process holds its port. */

/* The socket's IP_LOCAL_PORT_RANGE for the claim under way (us_ports_range):
 * its low port in the low 16 bits, its high one in the high 16, 0 for
 * either bound unset. */
static uint32_t claim_range;

/* A kernel socket bound to our address and *port (0: the kernel picks, in
 * claim_range if set).
 * With reuse (the program's SO_REUSEADDR) it may share the port with
 * reservations that do not listen: other processes' TIME-WAIT remnants. A
 * listener's reservation listens in the kernel (us_port_listen), so that
 * no other process binds there, as Linux refuses a second listener. */
static int reserve_low(int f, uint16_t *port, bool reuse, bool reuseport)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(*port),
				  .sin_addr.s_addr = htonl(ports_addr) };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(*port) };
	struct sockaddr *a = f == F6 ? (struct sockaddr *)&in6 : (struct sockaddr *)&in;
	socklen_t len = f == F6 ? sizeof(in6) : sizeof(in);
	int fd = REAL(socket)(a->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, e;

	if (fd < 0)
		return -errno;
	memcpy(&in6.sin6_addr, ports_addr6.b, 16);
	REAL(setsockopt)(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one)); /* IPv6's bind honours it too */
	if (f == F6)
		REAL(setsockopt)(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)); /* IPv4 is F4's */
	if (reuse)
		REAL(setsockopt)(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		REAL(setsockopt)(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (!*port && claim_range) /* the kernel picks: in the socket's range */
		REAL(setsockopt)(fd, IPPROTO_IP, IP_LOCAL_PORT_RANGE, &claim_range, sizeof(claim_range));
	if (REAL(bind)(fd, a, len) < 0 || (!*port && REAL(getsockname)(fd, a, &len) < 0)) {
		e = errno;
		REAL(close)(fd);
		return e == EADDRINUSE ? -EADDRINUSE : -EADDRNOTAVAIL;
	}
	*port = ntohs(f == F6 ? in6.sin6_port : in.sin_port);
	return fd;
}

static int reserve(int f, uint16_t *port, bool reuse, bool reuseport)
{
	int fd = reserve_low(f, port, reuse, reuseport);

	return fd < 0 ? fd : us_fd_high(fd);
}

/* Our families among UST_TCP_PORT_* (no IPv6 reservation without an IPv6
 * address: no IPv6 datagram can reach us). */
static bool wants(unsigned families, int f)
{
	return f == F4 ? (families & UST_TCP_PORT_V4) : (families & UST_TCP_PORT_V6) && ports_has6;
}

static void note_addrs(const struct us_stack *st)
{
	ports_addr = st->cfg->addr;
	ports_addr6 = st->cfg->addr6;
	ports_has6 = st->cfg->has_addr6;
}

/* The kernel's ephemeral range (ip_local_port_range) and the ports it
 * keeps out of it (ip_local_reserved_ports), read once: the ports a
 * connect() may get. */
static uint16_t eph_lo = 32768, eph_hi = 60999;
static uint8_t eph_reserved[65536 / 8];

static void read_ephemeral_range(void)
{
	static bool done;
	static char buf[65536]; /* the list of ranges; pages touched as read */
	char *p, *end;
	unsigned long lo, hi;
	int n;

	if (done)
		return;
	done = true;
	if (ust_sysctl_read("/proc/sys/net/ipv4/ip_local_port_range", buf, sizeof(buf)) > 0) {
		lo = strtoul(buf, &end, 10);
		hi = strtoul(end, &p, 10);
		if (p != end && lo && lo <= hi && hi < 65536) {
			eph_lo = (uint16_t)lo;
			eph_hi = (uint16_t)hi;
		}
	}
	/* "1000,2000-2010"; of a list longer than buf (some 190 kB at
	 * worst, every other port), the entries that fit. */
	n = ust_sysctl_read("/proc/sys/net/ipv4/ip_local_reserved_ports", buf, sizeof(buf));
	if (n == -EFBIG && (p = strrchr(buf, ',')) != NULL)
		*p = 0;
	else if (n <= 0)
		return;
	for (p = buf;; p = end + 1) {
		lo = hi = strtoul(p, &end, 10);
		if (end == p)
			break;
		if (*end == '-') {
			p = end + 1;
			hi = strtoul(p, &end, 10);
			if (end == p)
				break;
		}
		for (unsigned long q = lo; q <= hi && q < 65536; q++)
			eph_reserved[q / 8] |= (uint8_t)(1u << (q % 8));
		if (*end != ',')
			break;
	}
}

/* Is port free in the kernel's table? (A listener's or a bind()'s
 * reservation, in any process, holds it there.) 0, -EADDRINUSE, or why
 * we could not ask. */
static int kernel_port_free(uint16_t port)
{
	/* Closed at once: it may stay low (no dup above the program's
	 * range), a connection's probe being four system calls, not seven.
	 * Both families: a client port must be free in both spaces, as it
	 * serves an AF_INET6 socket's connection of either. */
	for (int f = F4; f <= F6; f++) {
		int fd;

		if (!wants(UST_TCP_PORT_V4 | UST_TCP_PORT_V6, f))
			continue;
		fd = reserve_low(f, &port, false, false);
		if (fd < 0)
			return fd;
		REAL(close)(fd);
	}
	return 0;
}

void us_ports_range(uint32_t range)
{
	claim_range = range;
}

/* The ports the claim may take: the namespace's ephemeral range, each
 * bound narrowed by the socket's where that falls inside (Linux's
 * inet_sk_get_local_port_range, in its order: the high bound is tested
 * against the low one as narrowed). */
static void claim_bounds(unsigned *lo, unsigned *hi)
{
	unsigned sk_lo = claim_range & 0xffff, sk_hi = claim_range >> 16;

	read_ephemeral_range();
	*lo = eph_lo;
	*hi = eph_hi;
	if (*lo <= sk_lo && sk_lo <= *hi)
		*lo = sk_lo;
	if (*lo <= sk_hi && sk_hi <= *hi)
		*hi = sk_hi;
}

/* The next port free both in the address share and in the kernel's
 * table, taken in the share for us (with reuse: SO_REUSEADDR's mark), from
 * a rotor over the ephemeral range (narrowed by IP_LOCAL_PORT_RANGE), as
 * Linux's allocator walks it. 0 or -errno: -EADDRNOTAVAIL when none is
 * left. */
static int take_free_port(uint16_t *port, bool reuse)
{
	static unsigned next;
	unsigned lo, hi, range;
	int r;

	claim_bounds(&lo, &hi);
	range = hi - lo + 1;
	if (!next)
		next = (unsigned)getpid() * 2654435761u;
	for (unsigned i = 0; i < range; i++) {
		uint16_t p = (uint16_t)(lo + (next + i) % range);

		if (ports[p].refs || (eph_reserved[p / 8] & (1u << (p % 8))))
			continue;
		if (!us_share_port_take(p, reuse))
			continue;
		r = kernel_port_free(p);
		if (r < 0) {
			us_share_port_give(p);
			if (r == -EADDRINUSE)
				continue;
			return r;
		}
		next += i + 1;
		*port = p;
		return 0;
	}
	return -EADDRNOTAVAIL;
}

/*
 * Steering by port (steer.c): a client port's frames reach this process
 * only once the launcher's broker steers the port here, which costs a
 * round trip to the broker. So ports are taken ahead as a lease: the free
 * ports of one aligned block of LEASE (64), claimed in one message and
 * handed to connections once the claim is answered. Every steered process
 * taking whole blocks keeps the group's program to one range a block: the
 * whole ephemeral range is some 440 blocks, within its room (steer.h). A
 * port a connection lets go stays in the pool while it has room: it is
 * still ours and still steered here. The first lease is taken at the
 * first connect() (us_op_steer_lease), not at start: a server that never
 * connects holds none.
 */
#define LEASE 64u
#define LEASE_MIN 32u      /* a block with fewer free ports is passed over */
#define POOL_MAX (2 * LEASE)
#define POOL_LOW 8u        /* a new lease is claimed below this */

static struct { uint16_t port; uint32_t seq; } pool[POOL_MAX];
static unsigned npool;
/* A stack that makes no more connections (the address's collector):
 * its pool went back, and ports it lets go are not kept. */
static bool pool_drained;

void us_ports_pool_drain(void)
{
	pool_drained = true;
	while (npool) {
		uint16_t port = pool[--npool].port;
		us_share_port_give(port);
		us_steer_release(port);
	}
}
static uint32_t pool_filling;   /* the lease's claim under way (0: none) */
static _Atomic bool pool_primed; /* a lease was claimed (program threads read it) */

/* The free ports of the next aligned block of LEASE with at least
 * LEASE_MIN of them, taken in the share: how many, in got. Blocks from a
 * rotor, as take_free_port walks ports. 0: none left. */
static unsigned take_lease(uint16_t got[LEASE])
{
	static unsigned next;
	unsigned first, nblocks;

	read_ephemeral_range();
	first = (eph_lo + LEASE - 1) / LEASE;
	nblocks = (eph_hi + 1u) / LEASE > first ? (eph_hi + 1u) / LEASE - first : 0;
	if (!next)
		next = (unsigned)getpid() * 2654435761u;
	for (unsigned i = 0; i < nblocks; i++) {
		unsigned blk = first + (next + i) % nblocks, n = 0;

		for (unsigned p = blk * LEASE; p < (blk + 1) * LEASE; p++) {
			if (ports[p].refs || (eph_reserved[p / 8] & (1u << (p % 8))) ||
			    !us_share_port_take((uint16_t)p, false))
				continue;
			if (kernel_port_free((uint16_t)p) < 0) {
				us_share_port_give((uint16_t)p);
				continue;
			}
			got[n++] = (uint16_t)p;
		}
		if (n >= LEASE_MIN) {
			next += i + 1;
			return n;
		}
		while (n)
			us_share_port_give(got[--n]);
	}
	return 0;
}

void us_ports_steer_fill(const struct us_stack *st)
{
	uint16_t got[LEASE];
	unsigned n;
	uint32_t seq;

	if (!us_steer_on() || !us_share_owner() || (pool_filling && !us_steer_done(pool_filling)) ||
	    npool >= POOL_LOW)
		return;
	note_addrs(st); /* kernel_port_free's */
	n = take_lease(got);
	if (!n)
		return;
	seq = us_steer_claim_shared(got, n);
	if (!seq) {
		while (n)
			us_share_port_give(got[--n]);
		return;
	}
	pool_filling = seq;
	atomic_store(&pool_primed, true);
	for (unsigned i = 0; i < n; i++)
		pool[npool++] = (typeof(pool[0])){ got[i], seq };
}

bool us_ports_steer_primed(void)
{
	return atomic_load(&pool_primed);
}

void us_ports_refused(uint32_t seq)
{
	unsigned k = 0;

	for (unsigned i = 0; i < npool; i++) {
		if (pool[i].seq == seq)
			us_share_port_give(pool[i].port);
		else
			pool[k++] = pool[i];
	}
	npool = k;
}

/* A pool port whose claim was answered (seq 0: a port let go, steered
 * here long since), for a connection; the pool refilled when it runs
 * low. */
static bool pool_take(const struct us_stack *st, uint16_t *port, bool reuse)
{
	unsigned lo, hi;

	claim_bounds(&lo, &hi); /* a socket's IP_LOCAL_PORT_RANGE */
	for (unsigned i = 0; i < npool; i++) {
		if ((pool[i].seq && !us_steer_done(pool[i].seq)) || pool[i].port < lo || pool[i].port > hi)
			continue;
		*port = pool[i].port;
		pool[i] = pool[--npool];
		us_share_port_mark(*port, reuse);
		if (npool < POOL_LOW)
			us_ports_steer_fill(st);
		return true;
	}
	us_ports_steer_fill(st);
	return false;
}

/* A client port let go: back into the pool if it has room. */
static bool pool_put(uint16_t port)
{
	if (!us_steer_on() || npool == POOL_MAX || pool_drained)
		return false;
	pool[npool++] = (typeof(pool[0])){ port, 0 };
	return true;
}

/* A bind() to a port of the pool: the bind holds it now, in the kernel's
 * table; the share's word goes. */
static void pool_remove(uint16_t port)
{
	for (unsigned i = 0; i < npool; i++) {
		if (pool[i].port == port) {
			pool[i] = pool[--npool];
			us_share_port_give(port);
			return;
		}
	}
}

/* A port for a connection (connect() without bind, or listen()'s
 * autobind), held in the address share rather than by a kernel socket of
 * its own (issue 13): one fd and a kernel socket less per connection.
 * Free means free both there and in the kernel's table, where listeners
 * and bind()s hold theirs; a bind() checks the share after the kernel
 * (us_port_claim), so of two racing for a port one sees the other. None
 * left is connect()'s EADDRNOTAVAIL. -EOPNOTSUPP: no share or no owner
 * slot, the kernel picks. Steered, from the pool; a port taken here when
 * the pool has none ready is claimed alone, its frames held until the
 * broker answers (us_steer_hold). */
static int claim_client(struct us_stack *st, uint16_t *port, bool reuse)
{
	int r;

	if (!us_share_owner())
		return -EOPNOTSUPP;
	if (!(us_steer_on() && pool_take(st, port, reuse))) {
		r = take_free_port(port, reuse);
		if (r < 0)
			return r;
		if (us_steer_on())
			us_steer_hold(*port, us_steer_claim_shared(port, 1));
	}
	ports[*port].fd[F4] = ports[*port].fd[F6] = -1;
	hold(*port);
	ports[*port].reuse = reuse;
	ports[*port].reuseport = false;
	ports[*port].shared = true;
	return 0;
}


/* The reservations port lacks for families (none for a port the share
 * holds: it was free in both spaces when taken); all or none are made. */
static int reserve_families(uint16_t port, bool reuse, bool reuseport, unsigned families)
{
	int made[2] = { -1, -1 };

	for (int f = F4; f <= F6; f++) {
		uint16_t p = port;

		if (!wants(families, f) || ports[port].fd[f] >= 0 || (ports[port].refs && ports[port].shared))
			continue;
		made[f] = reserve(f, &p, reuse, reuseport);
		if (made[f] < 0) {
			int e = made[f];
			if (f == F6 && made[F4] >= 0)
				REAL(close)(made[F4]);
			return e;
		}
	}
	for (int f = F4; f <= F6; f++)
		if (made[f] >= 0)
			ports[port].fd[f] = made[f];
	return 0;
}

/* The port's frames are steered here on each reservation's proof that
 * was not there before (had: the reservations then), in that
 * reservation's family (a dual-stack socket's both); the broker answers
 * in order, so the last claim's answer says all are in place. A port of a
 * SO_REUSEPORT group is claimed as the group's: every member reads it. */
static void steer_bound(uint16_t port, const int had[2])
{
	uint32_t seq = 0;

	if (!us_steer_on())
		return;
	for (int f = F4; f <= F6; f++) {
		int fd = ports[port].fd[f];

		if (fd >= 0 && had[f] < 0)
			seq = ports[port].reuseport ? us_steer_claim_group(port, fd) : us_steer_claim_bound(port, fd);
	}
	us_steer_hold(port, seq);
}

int us_port_claim(void *ctx, uint16_t *port, unsigned how, unsigned families)
{
	static const int none[2] = { -1, -1 };
	struct us_stack *st = ctx;
	bool reuse = how & UST_PORT_REUSEADDR;
	/* Only where the groups file lets the stacks agree on who answers
	 * a SYN: otherwise a group spans this stack, and another process's
	 * listener finds the port held, as before. */
	bool reuseport = (how & UST_PORT_REUSEPORT) && us_share_groups();
	int fd;

	note_addrs(st);
	if (*port && ports[*port].refs) {
		/* Another family's user may need its reservation yet (an
		 * AF_INET socket on the port, now an IPV6_V6ONLY one). */
		const int had[2] = { ports[*port].fd[F4], ports[*port].fd[F6] };
		fd = reserve_families(*port, ports[*port].reuse, ports[*port].reuseport, families);
		if (fd == 0) {
			ports[*port].refs++;
			steer_bound(*port, had);
		}
		goto out;
	}
	if (!*port) {
		fd = claim_client(st, port, reuse);
		if (fd != -EOPNOTSUPP)
			goto out;
		/* No share: the kernel picks, in the first family's space. */
		fd = reserve(wants(families, F4) ? F4 : F6, port, reuse, reuseport);
		if (fd < 0)
			goto out;
		ports[*port].fd[wants(families, F4) ? F4 : F6] = fd;
		ports[*port].fd[wants(families, F4) ? F6 : F4] = -1;
	} else {
		ports[*port].fd[F4] = ports[*port].fd[F6] = -1;
	}
	ports[*port].shared = false;
	fd = reserve_families(*port, reuse, reuseport, families);
	if (fd == 0)
		pool_remove(*port);
	/* A bind() to a port a connection in another process holds: Linux's
	 * EADDRINUSE, unless both have SO_REUSEADDR. */
	if (fd == 0 && us_share_port_busy(*port, reuse))
		fd = -EADDRINUSE;
	if (fd < 0) {
		/* Nobody else uses the port here: what this call made goes. */
		for (int f = F4; f <= F6; f++)
			if (ports[*port].fd[f] >= 0)
				REAL(close)(ports[*port].fd[f]);
		ports[*port].fd[F4] = ports[*port].fd[F6] = -1;
		goto out;
	}
	/* A port other processes may bind too is listed in its group from
	 * the start, listeners or not: a listener there must know that a
	 * segment no connection of its matches may be another's. */
	if (reuseport && !us_share_group_set(*port, 0)) {
		for (int f = F4; f <= F6; f++)
			if (ports[*port].fd[f] >= 0)
				REAL(close)(ports[*port].fd[f]);
		ports[*port].fd[F4] = ports[*port].fd[F6] = -1;
		fd = -EADDRINUSE;
		goto out;
	}
	hold(*port);
	ports[*port].reuse = reuse;
	ports[*port].reuseport = reuseport;
	ports[*port].grouped = reuseport;
	steer_bound(*port, none);
out:
	if (fd == -EMFILE || fd == -ENFILE)
		st->st.ctr.event[UST_EV_SOCK_NO_FD]++;
	return fd < 0 ? fd : 0;
}

/* The 32 bits a tombstone keeps of a peer's address: an IPv4 one whole,
 * an IPv6 one folded (a collision costs at worst one segment left
 * unanswered, as a stale "held" does). 0 for none (a listener). */
static uint32_t tomb_addr(const struct ust_ip6 *a)
{
	if (ust_ip6_is_v4mapped(a))
		return ust_ip6_to_v4(a);
	return ust_get32(a->b) ^ ust_get32(a->b + 4) ^ ust_get32(a->b + 8) ^ ust_get32(a->b + 12);
}

void us_port_tuple_hold(void *ctx, uint16_t port, const struct ust_ip6 *raddr, uint16_t rport)
{
	if (ports[port].grouped)
		us_share_tuple_hold(port, tomb_addr(raddr), rport);
}

void us_port_release(void *ctx, uint16_t port, const struct ust_ip6 *raddr, uint16_t rport)
{
	if (ports[port].grouped && tomb_addr(raddr))
		us_share_tuple_let_go(port, tomb_addr(raddr), rport);
	/* The tombstone goes up before the port is free: a stack that finds
	 * it free finds the tombstone too (us_port_foreign). None for a
	 * TIME-WAIT handed to the collector, whose TIME-WAIT would read it
	 * as its 4-tuple taken over by another process (us_tuple_taken);
	 * none over another stack's live one either: that stack took the
	 * 4-tuple over (a connect from a port bound with SO_REUSEADDR, whose
	 * claim ended our TIME-WAIT), and ours would make its connection's
	 * segments, which still reach us, late ones of ours to reset. */
	if (tomb_addr(raddr) && !handing && !us_share_buried(port, tomb_addr(raddr), rport))
		us_share_bury(port, tomb_addr(raddr), rport);
	if (ports[port].refs && --ports[port].refs == 0) {
		/* A word a collector took over (twcollect.c) is not ours to
		 * keep in the pool; giving it and the broker's release touch
		 * only what is still ours. */
		bool kept = ports[port].shared && ports[port].fd[F4] < 0 && ports[port].fd[F6] < 0 &&
			    us_share_port_ours(port) && pool_put(port);

		/* Out of the group before the port is free. */
		if (ports[port].grouped)
			us_share_group_leave(port);
		for (int f = F4; f <= F6; f++)
			if (ports[port].fd[f] >= 0)
				REAL(close)(ports[port].fd[f]);
		if (ports[port].shared && !kept)
			us_share_port_give(port);
		if (!kept && us_steer_on())
			us_steer_release(port);
		ports[port].fd[F4] = ports[port].fd[F6] = -1;
		ports[port].shared = false;
		ports[port].grouped = false;
		ports[port].quiet = false;
		held[port / 64] &= ~(1ull << (port % 64));
	}
}

/* ---- TIME-WAITs handed to the address's collector (twcollect.c) ---- */

bool us_port_describe(uint16_t port, struct us_port_desc *d)
{
	if (!ports[port].refs || ports[port].grouped)
		return false;
	*d = (struct us_port_desc){ .shared = ports[port].shared, .reuse = ports[port].reuse,
				    .reuseport = ports[port].reuseport,
				    .fd = { ports[port].fd[F4], ports[port].fd[F6] }, .refs = ports[port].refs };
	return true;
}

void us_port_handing(bool on)
{
	handing = on;
}

void us_port_quiet(uint16_t port, bool on)
{
	if (ports[port].refs)
		ports[port].quiet = on;
}

int us_port_adopt(struct us_stack *st, uint16_t port, const struct us_port_desc *d, uint32_t from)
{
	int had[2] = { ports[port].fd[F4], ports[port].fd[F6] };

	note_addrs(st);
	if (ports[port].refs) {
		/* Ours already (another TIME-WAIT came on it): one user more,
		 * with a reservation of a family it lacked. */
		if (ports[port].shared != d->shared)
			return -EADDRINUSE;
		for (int f = F4; f <= F6; f++)
			if (ports[port].fd[f] < 0 && d->fd[f] >= 0)
				ports[port].fd[f] = us_fd_dup_high(d->fd[f]);
		ports[port].refs++;
		steer_bound(port, had);
		return 0;
	}
	if (d->shared) {
		/* Its word goes from the giver's owner to us, unless it is
		 * someone else's by now. */
		if (!us_share_port_adopt(port, from, d->reuse))
			return -EADDRINUSE;
		ports[port].fd[F4] = ports[port].fd[F6] = -1;
		if (us_steer_on())
			us_steer_claim_shared(&port, 1);
	} else {
		for (int f = F4; f <= F6; f++)
			ports[port].fd[f] = d->fd[f] >= 0 ? us_fd_dup_high(d->fd[f]) : -1;
		if (ports[port].fd[F4] < 0 && ports[port].fd[F6] < 0)
			return -EBADF;
	}
	hold(port);
	ports[port].reuse = d->reuse;
	ports[port].reuseport = d->reuseport;
	ports[port].shared = d->shared;
	ports[port].grouped = false;
	if (!d->shared)
		steer_bound(port, (const int[2]){ -1, -1 });
	return 0;
}

/* Asked for segments that match nothing here. "Held" answers are
 * remembered a little while: another process's busy connection would
 * otherwise cost a probe per segment, and a stale "held" costs at worst a
 * segment left unanswered. "Free" is never remembered: the port may be
 * given to a new connection at any moment, and a stale "free" would reset
 * it. */
#define FOREIGN_CACHE 256
#define FOREIGN_TTL UST_MS(500)

/* A keeper whose filter no longer takes what nobody holds (kfilter.c). */
static bool answers_never;

void us_ports_answer_never(void)
{
	answers_never = true;
	us_share_answerer(false);
}

bool us_answers_for_address(void *ctx)
{
	(void)ctx;
	if (us_steer_on())
		return true;
	return us_share_answerer(!answers_never);
}

bool us_port_foreign(void *ctx, uint16_t port, const struct ust_ip6 *raddr, uint16_t rport)
{
	static struct { uint16_t port; ust_time until; } cache[FOREIGN_CACHE];
	const struct us_stack *st = ctx;
	unsigned i = port % FOREIGN_CACHE;
	ust_time now = ust_now();
	uint16_t p = port;
	int fd, f;

	note_addrs(st);
	f = ust_ip6_is_v4mapped(raddr) || !ports_has6 ? F4 : F6;
	/* A port whose TIME-WAITs come to us in more than one batch: until
	 * the last, the giver holds some of its 4-tuples (us_port_quiet). */
	if (ports[port].quiet)
		return true;
	/* Held by us alone in the segment's family's space (no
	 * SO_REUSEADDR, no SO_REUSEPORT; a client port the share gave us was
	 * free in both):
	 * nothing else can be there. */
	if (ports[port].refs && !ports[port].reuse && !ports[port].reuseport && (ports[port].fd[f] >= 0 || ports[port].shared))
		return false;
	/* Not ours at all: Linux resets a segment for a port nobody holds,
	 * once. Every unsteered stack on the address reads it, and the one
	 * that answers for the address alone looks further (the others count
	 * it as another's, and make no probe: theirs would hold the port in
	 * the kernel for a moment, and the answerer's probe would take it for
	 * another's and let the segment go unanswered), unless the 4-tuple
	 * was ours a moment ago (our tombstone, which the answerer takes for
	 * another's) and nobody took the port since: a late segment of it,
	 * such as the ACK of a half-open child its listener let go
	 * (us_stack.answer_until), is ours to reset. Another stack that
	 * took the port in the tombstone's seconds may have connected to
	 * the same peer's port (every client of one server does): that
	 * 4-tuple's segments are its connection's, and a RST from us reset
	 * it (the soak's clients, a burst of ECONNRESET whenever one's walk
	 * through the port range followed another's releases). */
	if (!ports[port].refs && !us_answers_for_address(ctx))
		return !us_share_buried_ours(port, tomb_addr(raddr), rport) || us_share_port_busy(port, false);
	if (cache[i].port == port && cache[i].until > now)
		return true;
	/* Another process's connection holds it in the share. */
	if (us_share_port_busy(port, false)) {
		cache[i].port = port;
		cache[i].until = now + FOREIGN_TTL;
		return true;
	}
	/* Held by us with SO_REUSEADDR (a listener's old children), another
	 * process may listen there too: a probe that shares finds out, in
	 * the segment's family's space. */
	fd = reserve(f, &p, ports[port].refs != 0, false);
	if (fd >= 0)
		REAL(close)(fd);
	if (fd == -EADDRINUSE) {
		cache[i].port = port;
		cache[i].until = now + FOREIGN_TTL;
		return true;
	}
	/* Free now, but perhaps only since the owner read this very
	 * segment: its tombstone says so. */
	return us_share_buried(port, tomb_addr(raddr), rport);
}

/* A connect from a port the program bound with SO_REUSEADDR may take over
 * a 4-tuple another stack holds in TIME-WAIT (a keeper's): the claim, a
 * tombstone of ours, tells that stack so (us_tuple_taken) when the new
 * connection's first segment reaches it too. */
void us_port_tuple_claim(uint16_t port, const struct ust_ip6 *raddr, uint16_t rport)
{
	if (tomb_addr(raddr))
		us_share_bury(port, tomb_addr(raddr), rport);
}

bool us_tuple_taken(void *ctx, uint16_t port, const struct ust_ip6 *raddr, uint16_t rport)
{
	(void)ctx;
	return us_share_buried(port, tomb_addr(raddr), rport);
}

/*
 * Nothing may ever reach a listening reservation. Normally the kernel does
 * not own our address and nothing does; where it does (a tun device or a
 * veth configured with it as well), the reservation would complete
 * handshakes the program never sees. Linux checks these locks in
 * tcp_v4_rcv before a listener sees any segment, and any user may set them:
 *  - a TCP MD5 key (RFC 2385) for every peer: TCP_MD5SIG_EXT with prefix
 *    length 0 and a random key nobody knows. "A segment without a
 *    signature, or with a wrong one, MUST be dropped silently" (RFC 2385
 *    section 2.0; Linux counts TCPMD5NotFound and TCPMD5Failure): no SYN, no
 *    ACK a SYN cookie would need, no data is ever taken;
 *  - IP_MINTTL 255 (RFC 5082's check), for a kernel built without
 *    CONFIG_TCP_MD5SIG: all but a neighbour crafting TTL 255 on purpose;
 *  - there, a socket filter that drops everything (tcp_filter), where the
 *    kernel lets an unprivileged process attach one.
 * 097-security.bats measures the first with scapy SYNs of TTL 255. A
 * reservation that only binds never receives anything: no segment
 * matches a socket that neither listens nor is connected.
 */
static bool lock_md5(int fd, int f)
{
	struct tcp_md5sig md5 = { .tcpm_flags = TCP_MD5SIG_FLAG_PREFIX, .tcpm_prefixlen = 0,
				  .tcpm_keylen = TCP_MD5SIG_MAXKEYLEN };

	/* 0.0.0.0/0 or ::/0: every peer */
	md5.tcpm_addr.ss_family = f == F6 ? AF_INET6 : AF_INET;
	if (getrandom(md5.tcpm_key, sizeof(md5.tcpm_key), GRND_NONBLOCK) != sizeof(md5.tcpm_key))
		return false;
	return REAL(setsockopt)(fd, IPPROTO_TCP, TCP_MD5SIG_EXT, &md5, sizeof(md5)) == 0;
}

static void lock_listener(int fd, int f)
{
	static struct sock_filter drop_all[] = { BPF_STMT(BPF_RET | BPF_K, 0) };
	static const struct sock_fprog drop = { UST_ARRAY_SIZE(drop_all), drop_all };
	int ttl = 255;

	/* IPV6_MINHOPCOUNT is IP_MINTTL's twin (tcp_v6_rcv checks it). */
	if (f == F6)
		REAL(setsockopt)(fd, IPPROTO_IPV6, IPV6_MINHOPCOUNT, &ttl, sizeof(ttl));
	else
		REAL(setsockopt)(fd, IPPROTO_IP, IP_MINTTL, &ttl, sizeof(ttl));
	if (!lock_md5(fd, f))
		REAL(setsockopt)(fd, SOL_SOCKET, SO_ATTACH_FILTER, &drop, sizeof(drop));
}

bool us_port_listen(uint16_t port, unsigned families)
{
	if (!ports[port].refs)
		return true;
	for (int f = F4; f <= F6; f++) {
		int fd = ports[port].fd[f];
		uint16_t p = port;

		if (!wants(families, f))
			continue;
		/* listen()'s autobind took the port in the share; a listener
		 * holds it in the kernel too, so that another listener's
		 * bind fails there as on Linux. */
		if (fd < 0) {
			fd = reserve(f, &p, ports[port].reuse, ports[port].reuseport);
			if (fd < 0)
				return false;
			ports[port].fd[f] = fd;
		}
		lock_listener(fd, f);
		if (REAL(listen)(fd, 1) < 0)
			return false;
	}
	return true;
}

void us_port_unlisten(uint16_t port)
{
	/* shutdown() takes a listening socket back to CLOSE, still bound */
	for (int f = F4; f <= F6; f++)
		if (ports[port].refs && ports[port].fd[f] >= 0)
			REAL(shutdown)(ports[port].fd[f], SHUT_RDWR);
}

/*
 * SO_REUSEPORT groups across processes (issue 14). Each member of a group
 * holds its own listening reservation with SO_REUSEPORT, so the kernel
 * applies Linux's rules to who may join (every socket with the option,
 * one user); the groups file lists the members and their listeners. Every
 * stack reads every SYN for the address, and each decides alone, and
 * alike, whether it is its own: as Linux's reuseport_select_sock, the
 * flow's hash scaled to the group's listeners (reciprocal_scale), counted
 * over the members in one order. A stack is listed from its bind with
 * SO_REUSEPORT (us_port_claim) until the port's last user here lets go
 * (us_port_release), with as many listeners as it has: one whose
 * listeners closed, or that never listened (a client bound with the
 * option), stays listed with none while its connections last (in its
 * keeper, after an exit), so the others know the port is still shared
 * and reset none of its segments; one that dies (SIGKILL) leaves with its
 * owner lock.
 */
static bool group_set(uint16_t port, unsigned listeners)
{
	if (!port || !ports[port].refs || !ports[port].reuseport)
		return true;
	if (!us_share_group_set(port, listeners))
		return false;
	ports[port].grouped = true;
	return true;
}

bool us_port_group_join(struct us_stack *st, uint16_t port)
{
	return group_set(port, ust_tcp_port_group_size(&st->tcp, port) + 1);
}

void us_port_group_update(struct us_stack *st, uint16_t port)
{
	/* Fewer listeners, or as many as joined: the entry is there. */
	group_set(port, ust_tcp_port_group_size(&st->tcp, port));
}

int us_port_group_pick(void *ctx, uint16_t port, const struct ust_ip6 *raddr, uint16_t rport, unsigned nlocal,
		       bool exact, bool *shared)
{
	struct us_stack *st = ctx;
	struct us_group_member m[US_GROUP_MAX];
	unsigned n, total = 0, pick;

	*shared = false;
	if (!ports[port].grouped)
		return 0;
	/* Another member's data, ACKs, FINs: no F_OFD_GETLK per member for
	 * each of them. */
	if (!exact) {
		*shared = us_share_group_others(port);
		return -1;
	}
	n = us_share_group_members(port, m, US_GROUP_MAX);
	for (unsigned i = 0; i < n; i++) {
		*shared |= !m[i].self;
		total += m[i].listeners;
	}
	if (!*shared || !total)
		return 0;
	pick = (unsigned)(((uint64_t)ust_tcp_flow_hash(&st->tcp, raddr, port, rport) * total) >> 32);
	for (unsigned i = 0; i < n; i++) {
		if (pick < m[i].listeners)
			return m[i].self ? (int)(pick % (nlocal ? nlocal : 1)) : -1;
		pick -= m[i].listeners;
	}
	return -1;
}

bool us_port_group_stray(void *ctx, uint16_t port, const struct ust_ip6 *raddr, uint16_t rport)
{
	struct us_stack *st = ctx;
	struct us_group_member m[US_GROUP_MAX];
	unsigned n, total = 0, pick;

	if (!ports[port].grouped || !us_share_tuple_free(port, tomb_addr(raddr), rport) ||
	    us_share_buried(port, tomb_addr(raddr), rport))
		return false;
	/* One stack answers: the one the flow's hash picks among the
	 * group's listeners, as for a SYN; with none left, the first
	 * member in owner order. */
	n = us_share_group_members(port, m, US_GROUP_MAX);
	for (unsigned i = 0; i < n; i++)
		total += m[i].listeners;
	if (!n)
		return false;
	if (!total)
		return m[0].self;
	pick = (unsigned)(((uint64_t)ust_tcp_flow_hash(&st->tcp, raddr, port, rport) * total) >> 32);
	for (unsigned i = 0; i < n; i++) {
		if (pick < m[i].listeners)
			return m[i].self;
		pick -= m[i].listeners;
	}
	return false;
}

struct each_fd {
	void (*fn)(void *ctx, int fd);
	void *ctx;
};

static void port_fds(uint16_t p, void *ctx)
{
	const struct each_fd *e = ctx;

	for (int f = F4; f <= F6; f++)
		if (ports[p].fd[f] >= 0)
			e->fn(e->ctx, ports[p].fd[f]);
}

void us_ports_each_fd(void (*fn)(void *ctx, int fd), void *ctx)
{
	struct each_fd e = { fn, ctx };

	each_held(port_fds, &e);
	/* The share's open file: our owner lock, so our client ports. */
	fn(ctx, us_share_fd());
}

static void port_forget(uint16_t p, void *ctx)
{
	(void)ctx;
	for (int f = F4; f <= F6; f++)
		if (ports[p].fd[f] >= 0)
			REAL(close)(ports[p].fd[f]);
	ports[p].refs = 0;
	ports[p].shared = false;
	ports[p].grouped = false; /* the parent's entries, not ours */
}

void us_ports_forget(void)
{
	each_held(port_forget, NULL);
	memset(held, 0, sizeof(held));
	npool = 0;
	pool_filling = 0;
	answers_never = false;
	atomic_store(&pool_primed, false);
	us_share_disown();
}
