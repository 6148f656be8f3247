/* One exit keeper per address waits out the TIME-WAITs of programs that
 * exited (issue 13; docs/architecture.md §5, "The address's collector").
 *
 * A keeper lives as long as its program's last connection, a minute for
 * a TIME-WAIT by default, and holds the program's memory that long (1.6
 * to 2 MB of anonymous memory for a curl): a shell loop of one-shot
 * clients left a process per run. Linux keeps a TIME-WAIT in a few
 * hundred bytes. So a keeper whose connections are all TIME-WAITs (and no
 * other process holds a socket it serves) hands them to the address's
 * collector and exits, and the first such keeper to find no collector
 * becomes it:
 *
 *   RUN_DIR/tw-A.B.C.D-MAC-MSL.lock   flock'd by the collector for its
 *                                     life (the kernel lets go at death)
 *   RUN_DIR/tw-A.B.C.D-MAC-MSL.sock   where it takes batches
 *                                     (SOCK_SEQPACKET, mode 0600)
 *
 * named by the address (and a hash of the IPv6 one, "-6HASH", with
 * USTCP_ADDR6) and the interface's link address (the run directory is
 * the user's, not the network namespace's: the same address on another
 * link is another host), and by what TIME-WAIT reads from the
 * configuration (USTCP_MSL in ms, "-rfc1337" with USTCP_RFC1337=1): a
 * program's TIME-WAIT keeps its own settings. Steered or not, launched by one
 * launcher or another: a port's frames reach the collector by its own
 * claim at its broker or through its own filter, and a stack elsewhere
 * that still reads them finds the port held by a live process
 * (us_port_foreign) and leaves them alone.
 *
 * A batch is up to TWC_BATCH TIME-WAITs (ust_tcp_tw: what TIME-WAIT
 * answers from, and the close record), how the giver holds each port
 * (us_port_describe) with its kernel reservations and the giver's close
 * log as SCM_RIGHTS, and who the program was (its pid, how it died). The
 * collector takes each port over (us_port_adopt: the share's word moves
 * to it, the reservations are duplicated, a steered port is claimed at
 * the broker), adopts the TIME-WAIT (ust_tcp_tw_adopt) tagged with its
 * origin, so that the close log line at its end is the program's, in the
 * program's log, and answers which it took. The giver forgets those
 * (ust_tcp_tw_forget: no segment, no record, and no tombstone, which the
 * collector's TIME-WAIT would read as its 4-tuple taken over), and exits
 * once nothing is left; the last release of a port closes its copies of
 * the reservations, and leaves the share's word and the broker's steering
 * to their new owner. Nothing blocks: the giver's batch and the answer are
 * one datagram each, read from the loop.
 *
 * For a moment both hold a TIME-WAIT (from the collector's adoption to
 * the giver's reading of the answer): a segment read by both in that
 * moment is answered twice, which a TIME-WAIT's answers bear (an ACK
 * again). Not handed over: a TIME-WAIT that ends within TWC_WAIT and a
 * second (both would write its close log line), a port of a SO_REUSEPORT
 * group (its group decides who answers there), and anything while the
 * keeper holds more than TIME-WAITs, and a port some of whose TIME-WAITs
 * end within that time (all of a port's go, or none: gather_ports). */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "stack_impl.h"

#define TWC_MAGIC 0x75737477u /* "ustw" */
#define TWC_VERSION 1u
#define TWC_BATCH 64u          /* TIME-WAITs per batch */
#define TWC_FDS 32u            /* fds per batch: the close log, then reservations */
#define TWC_PENDING 8u         /* givers whose batch is awaited at once */
#define TWC_ORIGINS_MAX 65536u /* programs whose TIME-WAITs a collector holds */
#define TWC_WAIT UST_SEC(2)    /* for a batch, or its answer */

struct twc_head {
	uint32_t magic, version, entry_size, n, nfds;
	int32_t pid;              /* the giver's program */
	uint32_t owner;           /* the giver's word in the ports file */
	uint32_t addr;
	struct ust_ip6 addr6;
	uint8_t has6;
	uint8_t log;              /* fds[0] is the program's close log */
	uint8_t mac[UST_ETH_ALEN];
	uint8_t rfc1337;          /* the TIME-WAITs' settings: the collector's must be the same */
	uint32_t msl_ms;
	char iface[IFNAMSIZ];
	char death[32];
};

struct twc_entry {
	struct ust_tcp_tw tw;
	uint8_t shared, reuse, reuseport;
	uint8_t more;             /* the giver has more of this port's TIME-WAITs, for later batches */
	int8_t fd[2];             /* the port's reservations among the fds; -1: none */
};

struct twc_batch {
	struct twc_head h;
	struct twc_entry e[TWC_BATCH];
};

struct twc_answer {
	uint32_t magic, n;
	uint8_t taken[TWC_BATCH];
};

/* A program whose TIME-WAITs the collector holds: the close log's pid,
 * reason and file for them. */
struct twc_origin {
	pid_t pid;
	int log;                  /* its close log in logs[]; -1: none */
	unsigned refs;            /* its TIME-WAITs here; 0: a free slot */
	char death[32];
};

/* The close logs those programs had, each open once (a loop of programs
 * shares one file). */
struct twc_log {
	dev_t dev;
	ino_t ino;
	int fd;
	unsigned refs;            /* origins naming it; 0: a free slot */
};
#define TWC_LOGS 64u

static struct {
	bool named;
	bool cannot_collect;      /* our socket would not bind: we only give */
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char lock[PATH_MAX + 80];
	/* The collector's. */
	int lock_fd, listen_fd;
	ev_io listen_w;
	struct { int fd; ev_io w; ust_time since; } pending[TWC_PENDING];
	struct twc_origin *origins;
	unsigned norigins;
	struct twc_log logs[TWC_LOGS];
	/* The giver's: the batch awaiting its answer. */
	int send_fd;
	ev_io send_w;
	ust_time sent_at;
	struct twc_batch out;
} twc = { .lock_fd = -1, .listen_fd = -1, .send_fd = -1 };

static void close_fd(int *fd)
{
	if (*fd >= 0)
		REAL(close)(*fd);
	*fd = -1;
}

/* RUN_DIR/tw-NAME.sock and .lock; false if they do not fit. */
static bool make_names(void)
{
	const struct ust_config *cfg = us_st.cfg;
	const uint8_t *m = us_st.link.mac;
	char name[PATH_MAX + 64], six[16] = "";
	uint32_t h = 2166136261u; /* FNV-1a of the IPv6 address: short enough for sun_path */
	int n;

	if (cfg->has_addr6) {
		for (unsigned i = 0; i < sizeof(cfg->addr6.b); i++)
			h = (h ^ cfg->addr6.b[i]) * 16777619u;
		snprintf(six, sizeof(six), "-6%08x", h);
	}
	snprintf(name, sizeof(name), "%s/tw-%u.%u.%u.%u%s-%02x%02x%02x%02x%02x%02x-%u%s", cfg->run_dir, cfg->addr >> 24,
		 cfg->addr >> 16 & 255, cfg->addr >> 8 & 255, cfg->addr & 255, six, m[0], m[1], m[2], m[3], m[4], m[5],
		 cfg->msl_ms, cfg->rfc1337 ? "-rfc1337" : "");
	n = snprintf(twc.sock, sizeof(twc.sock), "%s.sock", name);
	if (n < 0 || (size_t)n >= sizeof(twc.sock))
		return false;
	n = snprintf(twc.lock, sizeof(twc.lock), "%s.lock", name);
	return n > 0 && (size_t)n < sizeof(twc.lock);
}

/* ---- the collector ---- */

int us_twc_origin(uint32_t tag, pid_t *pid, const char **death)
{
	const struct twc_origin *o = &twc.origins[tag - 1];

	*pid = o->pid;
	*death = o->death;
	return o->log >= 0 ? twc.logs[o->log].fd : -1;
}

static void log_put(int i)
{
	if (i >= 0 && twc.logs[i].refs && --twc.logs[i].refs == 0)
		close_fd(&twc.logs[i].fd);
}

void us_twc_origin_put(uint32_t tag)
{
	struct twc_origin *o = &twc.origins[tag - 1];

	if (o->refs && --o->refs == 0)
		log_put(o->log);
}

/* The slot of the close log fd (a giver's, received: duplicated here if
 * the file is not open here yet); -1 when it cannot be kept. */
static int log_get(int fd)
{
	struct stat st;
	int free_slot = -1;

	/* A regular file only: the stack thread writes its lines with a
	 * plain write, which a FIFO or a terminal nobody reads would block,
	 * and with it every TIME-WAIT on the address. */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return -1;
	for (unsigned i = 0; i < TWC_LOGS; i++) {
		if (twc.logs[i].refs && twc.logs[i].dev == st.st_dev && twc.logs[i].ino == st.st_ino) {
			twc.logs[i].refs++;
			return (int)i;
		}
		if (!twc.logs[i].refs && free_slot < 0)
			free_slot = (int)i;
	}
	if (free_slot < 0 || (fd = us_fd_dup_high(fd)) < 0)
		return -1;
	twc.logs[free_slot] = (struct twc_log){ .dev = st.st_dev, .ino = st.st_ino, .fd = fd, .refs = 1 };
	return free_slot;
}

/* A free origin slot for h (its close log: logs[log], whose reference it
 * takes); 0 when the table is full. */
static uint32_t origin_new(const struct twc_head *h, int log)
{
	unsigned i;

	for (i = 0; i < twc.norigins && twc.origins[i].refs; i++)
		;
	if (i == twc.norigins) {
		unsigned cap = twc.norigins ? twc.norigins * 2 : 16;
		struct twc_origin *o;

		if (cap > TWC_ORIGINS_MAX || !(o = realloc(twc.origins, cap * sizeof(*o))))
			return 0;
		for (unsigned j = twc.norigins; j < cap; j++)
			o[j] = (struct twc_origin){ .log = -1 };
		twc.origins = o;
		twc.norigins = cap;
	}
	twc.origins[i] = (struct twc_origin){ .pid = h->pid, .log = log };
	memcpy(twc.origins[i].death, h->death, sizeof(h->death));
	twc.origins[i].death[sizeof(h->death) - 1] = 0;
	return i + 1;
}

static bool addr_ours(const struct ust_ip6 *a)
{
	if (ust_ip6_is_v4mapped(a))
		return ust_ip6_to_v4(a) == us_st.cfg->addr;
	return us_st.cfg->has_addr6 && ust_ip6_eq(a, &us_st.cfg->addr6);
}

/* Is the batch from a stack on our address and link? */
static bool batch_ours(const struct twc_batch *b, size_t len, unsigned nfds)
{
	const struct twc_head *h = &b->h;

	return len >= sizeof(*h) && h->magic == TWC_MAGIC && h->version == TWC_VERSION &&
	       h->entry_size == sizeof(b->e[0]) && h->n <= TWC_BATCH && h->msl_ms == us_st.cfg->msl_ms &&
	       h->rfc1337 == us_st.cfg->rfc1337 &&
	       len == sizeof(*h) + h->n * sizeof(b->e[0]) && h->nfds == nfds && (!h->log || nfds) &&
	       h->addr == us_st.cfg->addr && !memcmp(h->mac, us_st.link.mac, sizeof(h->mac)) &&
	       !strncmp(h->iface, us_st.link.ifname, sizeof(h->iface)) &&
	       h->has6 == us_st.cfg->has_addr6 && (!h->has6 || ust_ip6_eq(&h->addr6, &us_st.cfg->addr6));
}

/* Takes what it can of a batch; the answer says which. */
static void take_batch(struct twc_batch *b, const int *fds, struct twc_answer *a)
{
	const struct twc_head *h = &b->h;
	uint32_t tag;
	unsigned taken = 0;
	ust_time now = ust_now();
	int log = h->log ? log_get(fds[0]) : -1;

	if (h->log && log < 0)
		return;
	if (!(tag = origin_new(h, log))) {
		log_put(log);
		return;
	}
	for (unsigned i = 0; i < h->n; i++) {
		struct twc_entry *e = &b->e[i];
		struct us_port_desc d = { .shared = e->shared, .reuse = e->reuse, .reuseport = e->reuseport };
		struct ust_tcb *t;
		int err;

		/* Not one that ended at the giver while the batch came (its
		 * tombstone says so). */
		if (!addr_ours(&e->tw.laddr) || !e->tw.lport ||
		    us_tuple_taken(&us_st, e->tw.lport, &e->tw.raddr, e->tw.rport))
			continue;
		for (int f = 0; f < 2; f++)
			d.fd[f] = e->fd[f] >= (h->log ? 1 : 0) && (unsigned)e->fd[f] < h->nfds ? fds[e->fd[f]] : -1;
		/* A second batch with a TIME-WAIT we took already (its answer
		 * was lost): ours, and taken. */
		t = ust_tcp_find(&us_st.tcp, &e->tw.laddr, e->tw.lport, &e->tw.raddr, e->tw.rport);
		if (t) {
			a->taken[i] = ust_tcp_get_state(t) == UST_TCP_TIME_WAIT && ust_tcp_tag(t);
			continue;
		}
		/* The block first, then the port: a block that cannot be
		 * had leaves the giver's port as it was, and a port that
		 * cannot be taken (someone else's by now) leaves a block
		 * that goes without a word. */
		e->tw.port_claimed = 0;
		t = ust_tcp_tw_adopt(&us_st.tcp, &e->tw, now, &err);
		if (!t)
			continue;
		if (us_port_adopt(&us_st, e->tw.lport, &d, h->owner) < 0) {
			ust_tcp_tw_forget(t);
			continue;
		}
		ust_tcp_tw_claimed(t);
		us_port_quiet(e->tw.lport, e->more);
		ust_tcp_set_tag(t, tag);
		twc.origins[tag - 1].refs++;
		a->taken[i] = 1;
		taken++;
	}
	us_st.st.ctr.event[UST_EV_TW_TAKEN] += taken;
	if (!taken)
		log_put(twc.origins[tag - 1].log);
	else
		ust_log(UST_LOG_INFO, "keeper %d took %u TIME-WAITs of program %d", (int)getpid(), taken,
			(int)h->pid);
	us_keeper_filter(); /* their ports' frames, on a narrowed filter */
}

static void pending_end(unsigned i)
{
	ev_io_stop(us_st.ev, &twc.pending[i].w);
	close_fd(&twc.pending[i].fd);
}

static void on_batch(struct ev_loop *ev, ev_io *w, int revents)
{
	static struct twc_batch b;
	unsigned i;
	char cbuf[CMSG_SPACE(TWC_FDS * sizeof(int))];
	struct iovec iov = { &b, sizeof(b) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct twc_answer a = { .magic = TWC_MAGIC };
	int fds[TWC_FDS];
	unsigned nfds = 0;
	ssize_t len;

	for (i = 0; i < TWC_PENDING && &twc.pending[i].w != w; i++)
		;
	len = REAL(recvmsg)(w->fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (len < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); len >= 0 && c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
			if (nfds < TWC_FDS)
				fds[nfds++] = fd;
			else
				REAL(close)(fd);
		}
	}
	if (len > 0 && !(m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) && batch_ours(&b, (size_t)len, nfds)) {
		a.n = b.h.n;
		take_batch(&b, fds, &a);
		REAL(send)(w->fd, &a, sizeof(a), MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	for (unsigned k = 0; k < nfds; k++)
		REAL(close)(fds[k]);
	if (i < TWC_PENDING)
		pending_end(i);
}

static void on_giver(struct ev_loop *ev, ev_io *w, int revents)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	int fd = REAL(accept4)(twc.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	unsigned i;

	if (fd < 0)
		return;
	for (i = 0; i < TWC_PENDING && twc.pending[i].fd >= 0; i++)
		;
	/* Its user's and root's only, as the control socket (the mode says
	 * it too); beyond TWC_PENDING the giver tries again next tick. */
	if (i == TWC_PENDING || REAL(getsockopt)(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 ||
	    !us_uid_trusted(cr.uid, geteuid())) {
		REAL(close)(fd);
		return;
	}
	twc.pending[i].fd = fd = us_fd_fixed(fd);
	twc.pending[i].since = ust_now();
	ev_io_init(&twc.pending[i].w, on_batch, fd, EV_READ);
	ev_io_start(us_st.ev, &twc.pending[i].w);
}

/* We hold the lock: open the socket. False (the lock let go) if it
 * cannot be had. */
static bool collect(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = REAL(socket)(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	strcpy(sun.sun_path, twc.sock);
	unlink(twc.sock); /* a collector's that died */
	if (fd < 0 || REAL(bind)(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || chmod(twc.sock, 0600) < 0 ||
	    REAL(listen)(fd, (int)TWC_PENDING) < 0) {
		ust_log(UST_LOG_INFO, "%s: %s (this keeper collects no TIME-WAITs)", twc.sock, strerror(errno));
		if (fd >= 0)
			REAL(close)(fd);
		close_fd(&twc.lock_fd);
		twc.cannot_collect = true;
		return false;
	}
	for (unsigned i = 0; i < TWC_PENDING; i++)
		twc.pending[i].fd = -1;
	twc.listen_fd = us_fd_fixed(fd); /* libev's table grows to the highest fd it watches */
	us_ports_pool_drain(); /* ports we may hold for long: none idle */
	ev_io_init(&twc.listen_w, on_giver, twc.listen_fd, EV_READ);
	ev_io_start(us_st.ev, &twc.listen_w);
	ust_log(UST_LOG_INFO, "keeper %d collects the address's TIME-WAITs", (int)getpid());
	return true;
}

/* The collector's lock, if nobody holds it. */
static bool lock_taken(void)
{
	int fd = open(twc.lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0)
		return false;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		REAL(close)(fd);
		return false;
	}
	twc.lock_fd = us_fd_high(fd);
	return true;
}

/* ---- the giver ---- */

static void give_up(void)
{
	if (twc.send_fd < 0)
		return;
	ev_io_stop(us_st.ev, &twc.send_w);
	close_fd(&twc.send_fd);
}

static void give(void);

static void on_answer(struct ev_loop *ev, ev_io *w, int revents)
{
	struct twc_answer a;
	ssize_t len = REAL(recv)(twc.send_fd, &a, sizeof(a), MSG_DONTWAIT);
	unsigned handed = 0;

	if (len < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	give_up();
	if (len != sizeof(a) || a.magic != TWC_MAGIC || a.n != twc.out.h.n)
		return;
	for (unsigned i = 0; i < a.n; i++) {
		const struct ust_tcp_tw *tw = &twc.out.e[i].tw;
		struct ust_tcb *t;

		if (!a.taken[i])
			continue;
		t = ust_tcp_find(&us_st.tcp, &tw->laddr, tw->lport, &tw->raddr, tw->rport);
		if (!t || ust_tcp_get_state(t) != UST_TCP_TIME_WAIT)
			continue;
		us_port_handing(true);
		ust_tcp_tw_forget(t);
		us_port_handing(false);
		handed++;
	}
	us_st.st.ctr.event[UST_EV_TW_HANDED] += handed;
	ust_log(UST_LOG_INFO, "keeper %d handed %u TIME-WAITs to the address's collector", (int)getpid(), handed);
	us_keeper_check();
	/* The rest of a port too large for one batch, say: at once. */
	if (handed)
		give();
}

/* What a batch is made from: every TIME-WAIT that may go, with how its
 * port is held, up to TWC_CANDIDATES. */
#define TWC_CANDIDATES (4 * TWC_BATCH)
struct gather {
	struct twc_batch *b;
	ust_time now;
	struct { struct ust_tcp_tw tw; struct us_port_desc d; } c[TWC_CANDIDATES];
	unsigned nc;
	bool capped;              /* there were more than TWC_CANDIDATES */
	int fds[TWC_FDS];
	unsigned nfds;
};

/* The fd's index among the batch's, added if new; -1 when full. */
static int fd_index(struct gather *g, int fd)
{
	for (unsigned i = 0; i < g->nfds; i++)
		if (g->fds[i] == fd)
			return (int)i;
	if (g->nfds == TWC_FDS)
		return -1;
	g->fds[g->nfds] = fd;
	return (int)g->nfds++;
}

static void gather_one(struct ust_tcb *t, void *arg)
{
	struct gather *g = arg;

	/* One that ends before its answer could come stays: both would
	 * write its close log line. */
	if (g->nc == TWC_CANDIDATES) {
		g->capped = true;
		return;
	}
	if (ust_tcp_tw_export(t, &g->c[g->nc].tw) < 0 || !g->c[g->nc].tw.port_claimed ||
	    g->c[g->nc].tw.deadline < g->now + TWC_WAIT + UST_SEC(1) ||
	    !us_port_describe(g->c[g->nc].tw.lport, &g->c[g->nc].d))
		return;
	g->nc++;
}

/* The batch: whole ports. Once the collector holds a port, a segment for
 * a 4-tuple of it that it has no TIME-WAIT for is its to reset (the port
 * is no other process's), so every TIME-WAIT of a port goes in one batch,
 * or none does; a port with more than a batch holds goes alone, a batch
 * at a time, its entries marked "more" until the last (the collector
 * stays quiet on it meanwhile, us_port_quiet). */
static void gather_ports(struct gather *g)
{
	struct twc_batch *b = g->b;

	for (unsigned i = 0; i < g->nc; i++) {
		uint16_t port = g->c[i].tw.lport;
		unsigned n = 0, had = g->nfds;
		int k[2];
		bool seen = false;

		for (unsigned j = 0; j < g->nc; j++) {
			seen |= j < i && g->c[j].tw.lport == port;
			n += g->c[j].tw.lport == port;
		}
		/* Not all of its TIME-WAITs may go (one ends soon): none; all
		 * we saw, when there were too many to see them all: alone,
		 * and more to come. */
		bool whole = n == g->c[i].d.refs;

		if (seen || (!whole && !(g->capped && !b->h.n)) || (b->h.n + n > TWC_BATCH && b->h.n))
			continue;
		k[0] = g->c[i].d.fd[0] >= 0 ? fd_index(g, g->c[i].d.fd[0]) : -1;
		k[1] = g->c[i].d.fd[1] >= 0 ? fd_index(g, g->c[i].d.fd[1]) : -1;
		if ((g->c[i].d.fd[0] >= 0 && k[0] < 0) || (g->c[i].d.fd[1] >= 0 && k[1] < 0)) {
			g->nfds = had; /* no room for its fds: it waits for another batch */
			continue;
		}
		for (unsigned j = i; j < g->nc && b->h.n < TWC_BATCH; j++) {
			struct twc_entry *e = &b->e[b->h.n];

			if (g->c[j].tw.lport != port)
				continue;
			e->more = !whole || n > TWC_BATCH;
			e->tw = g->c[j].tw;
			e->shared = g->c[j].d.shared;
			e->reuse = g->c[j].d.reuse;
			e->reuseport = g->c[j].d.reuseport;
			e->fd[0] = (int8_t)k[0];
			e->fd[1] = (int8_t)k[1];
			b->h.n++;
		}
	}
}

/* Our connections and the program's close log go to a process of our
 * user (or root) only, whatever the directory let bind there. */
static bool collector_trusted(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	return REAL(getsockopt)(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 && us_uid_trusted(cr.uid, geteuid());
}

/* Sends our TIME-WAITs (up to a batch) to the collector; the answer
 * comes to on_answer. */
static void give(void)
{
	struct twc_batch *b = &twc.out;
	static struct gather gs;
	struct gather *g = &gs;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char cbuf[CMSG_SPACE(TWC_FDS * sizeof(int))];
	struct iovec iov;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	int log_fd = us_close_log_fd(), fd;
	struct stat st;

	g->b = b;
	g->now = ust_now();
	g->nc = g->nfds = 0;
	g->capped = false;
	b->h = (struct twc_head){ .magic = TWC_MAGIC, .version = TWC_VERSION, .entry_size = sizeof(b->e[0]),
				  .pid = us_st.program, .owner = us_share_owner_word(), .addr = us_st.cfg->addr,
				  .addr6 = us_st.cfg->addr6, .has6 = us_st.cfg->has_addr6,
				  .rfc1337 = us_st.cfg->rfc1337, .msl_ms = us_st.cfg->msl_ms };
	memcpy(b->h.mac, us_st.link.mac, sizeof(b->h.mac));
	memcpy(b->h.iface, us_st.link.ifname, sizeof(b->h.iface));
	memcpy(b->h.death, us_st.death, sizeof(b->h.death));
	if (log_fd >= 0) {
		/* A close log the collector would not take (log_get): our
		 * TIME-WAITs stay ours. */
		if (fstat(log_fd, &st) < 0 || !S_ISREG(st.st_mode))
			return;
		b->h.log = 1;
		fd_index(g, log_fd);
	}
	ust_tcp_each(&us_st.tcp, gather_one, g);
	gather_ports(g);
	if (!b->h.n)
		return;
	b->h.nfds = g->nfds;
	iov = (struct iovec){ b, sizeof(b->h) + b->h.n * sizeof(b->e[0]) };
	if (g->nfds) {
		struct cmsghdr *c;

		m.msg_control = cbuf;
		m.msg_controllen = CMSG_SPACE(g->nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(g->nfds * sizeof(int));
		memcpy(CMSG_DATA(c), g->fds, g->nfds * sizeof(int));
	}
	strcpy(sun.sun_path, twc.sock);
	fd = REAL(socket)(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	/* A full backlog (EAGAIN), or a collector that just left: the
	 * next tick tries again. */
	if (REAL(connect)(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || !collector_trusted(fd) ||
	    REAL(sendmsg)(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		REAL(close)(fd);
		return;
	}
	twc.send_fd = us_fd_fixed(fd);
	twc.sent_at = ust_now();
	ev_io_init(&twc.send_w, on_answer, twc.send_fd, EV_READ);
	ev_io_start(us_st.ev, &twc.send_w);
}

/* ---- the keeper's side ---- */

void us_twc_check(void)
{
	ust_time now = ust_now();

	if (twc.listen_fd >= 0) {
		/* Givers that connected and sent nothing. */
		for (unsigned i = 0; i < TWC_PENDING; i++)
			if (twc.pending[i].fd >= 0 && now - twc.pending[i].since > TWC_WAIT)
				pending_end(i);
		return;
	}
	if (twc.send_fd >= 0) {
		if (now - twc.sent_at <= TWC_WAIT)
			return;
		give_up();
	}
	if (!us_st.cfg->tw_collect || !us_keeper_tw_only() || !us_run_dir_usable(us_st.cfg->run_dir))
		return;
	if (!twc.named && !(twc.named = make_names()))
		return;
	if (twc.cannot_collect || !lock_taken() || !collect())
		give();
}

void us_twc_leave(void)
{
	/* The socket goes while we still hold the lock: a new collector
	 * binds its own after taking it. */
	if (twc.listen_fd >= 0)
		unlink(twc.sock);
}
