/* A listener on the wildcard address also takes connections from the
 * machine itself over loopback (issue 14, item 11), as Linux's does.
 *
 * The stack answers only what the link brings: a client on the same host
 * that connects to 127.0.0.1 or ::1 would be refused (no kernel listener
 * there). So next to the stack's listener the stack thread holds kernel
 * listeners on loopback and the same port, as the listener's family takes
 * them on Linux (an AF_INET one 127.0.0.1, an AF_INET6 one ::1 and, unless
 * IPV6_V6ONLY, 127.0.0.1 too), accepts what comes to them, and passes
 * each kernel connection to the program through the listener's own pair,
 * as a token like the stack's connections (US_TOKEN_KERNEL, the accepted
 * kernel socket attached): one accept queue, one readiness, and the
 * program's accept() returns a plain kernel socket, on which every call is
 * the kernel's (it has no slot), exactly as Linux's loopback connection. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stack_impl.h"
#include "../shim/tcp_info.h"

static void on_lo_accept(struct us_io *w);
static void on_lo6_accept(struct us_io *w);

/* Linux's child has its listener's options (sk_clone), over loopback as
 * over the link: what the engine keeps of the listener, given to a kernel
 * socket of loopback. Those of the connection go to each one as it is
 * handed over (so what was set after listen() counts too, as for the
 * stack's own children), each only when it is not the engine's default,
 * which a kernel socket has of its own (its namespace's sysctls); those of
 * the handshake (TCP_SAVE_SYN, TCP_DEFER_ACCEPT) to the kernel listener
 * when it opens and whenever the program sets an option on the listener
 * (us_lo_options). */
static const struct lo_opt {
	enum ust_tcp_opt opt;
	int level, name, dflt;
	bool handshake;
} lo_opts[] = {
	{ UST_TCP_OPT_NODELAY, IPPROTO_TCP, TCP_NODELAY, 0, false },
	{ UST_TCP_OPT_KEEPALIVE, SOL_SOCKET, SO_KEEPALIVE, 0, false },
	{ UST_TCP_OPT_KEEPIDLE, IPPROTO_TCP, TCP_KEEPIDLE, 7200, false },
	{ UST_TCP_OPT_KEEPINTVL, IPPROTO_TCP, TCP_KEEPINTVL, 75, false },
	{ UST_TCP_OPT_KEEPCNT, IPPROTO_TCP, TCP_KEEPCNT, 9, false },
	{ UST_TCP_OPT_USER_TIMEOUT, IPPROTO_TCP, TCP_USER_TIMEOUT, 0, false },
	{ UST_TCP_OPT_THIN_LINEAR_TIMEOUTS, IPPROTO_TCP, TCP_THIN_LINEAR_TIMEOUTS, 0, false },
	{ UST_TCP_OPT_TXREHASH, SOL_SOCKET, SO_TXREHASH, 1, false },
	{ UST_TCP_OPT_IP_TOS, IPPROTO_IP, IP_TOS, 0, false },
	{ UST_TCP_OPT_IP_TTL, IPPROTO_IP, IP_TTL, UST_IP_TTL_DEFAULT, false },
	{ UST_TCP_OPT_SAVE_SYN, IPPROTO_TCP, TCP_SAVE_SYN, 0, true },
	{ UST_TCP_OPT_DEFER_ACCEPT, IPPROTO_TCP, TCP_DEFER_ACCEPT, 0, true },
};

/* A TCP_MD5SIG key (keylen 0: its deletion) on a kernel socket: an
 * AF_INET one takes IPv4 keys, an AF_INET6 one both, an IPv4 key mapped
 * (its prefix still IPv4's, as Linux reads a mapped key). */
void us_md5_kernel(int fd, const struct ust_tcp_md5_key *k)
{
	struct ust_linux_md5sig m; /* the shim's reading of it, set_md5 */
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (REAL(getsockname)(fd, (struct sockaddr *)&ss, &len) < 0 || (ss.ss_family == AF_INET && !k->v4))
		return;
	memset(&m, 0, sizeof(m));
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&m.addr;
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(ust_ip6_to_v4(&k->addr));
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&m.addr;
		a->sin6_family = AF_INET6;
		memcpy(&a->sin6_addr, k->addr.b, sizeof(k->addr.b));
	}
	m.flags = UST_LINUX_MD5SIG_FLAG_PREFIX | (k->ifindex_flag ? UST_LINUX_MD5SIG_FLAG_IFINDEX : 0);
	m.prefixlen = k->prefixlen;
	m.keylen = k->keylen;
	memcpy(m.key, k->key, k->keylen);
	REAL(setsockopt)(fd, IPPROTO_TCP, TCP_MD5SIG_EXT, &m, sizeof(m));
}

void us_lo_md5(struct us_conn *l, const struct ust_tcp_md5_key *k)
{
	if (l->lo_fd >= 0)
		us_md5_kernel(l->lo_fd, k);
	if (l->lo6_fd >= 0)
		us_md5_kernel(l->lo6_fd, k);
}

static void lo_inherit(const struct us_conn *l, int fd, bool handshake)
{
	const struct ust_tcp_md5_key *keys;
	unsigned nkeys;
	int v, one = 1;

	if (!l->tcb)
		return;
	/* The listener's TCP_MD5SIG keys check its handshakes (a deleted one
	 * goes by us_lo_md5). */
	if (handshake)
		for (keys = ust_tcp_md5_keys(l->tcb, &nkeys); nkeys; keys++, nkeys--)
			us_md5_kernel(fd, keys);
	for (size_t i = 0; i < sizeof(lo_opts) / sizeof(lo_opts[0]); i++) {
		const struct lo_opt *o = &lo_opts[i];
		if (o->handshake == handshake && ust_tcp_getopt(l->tcb, o->opt, &v) == 0 &&
		    (handshake || v != o->dflt)) /* the kernel listener is ours: its values all */
			REAL(setsockopt)(fd, o->level, o->name, &v, sizeof(v));
	}
	if (handshake)
		return;
	/* The algorithm the program chose: the stack's default stands for
	 * the namespace's (or for CUBIC where the engine lacks that one),
	 * which the kernel socket has of its own. A name the kernel lacks
	 * (bbr3) leaves it so. */
	if (strcmp(ust_tcp_cc_name(l->tcb), ust_tcp_cc_default_name(&l->st->tcp)) != 0)
		REAL(setsockopt)(fd, IPPROTO_TCP, TCP_CONGESTION, ust_tcp_cc_name(l->tcb),
				 (socklen_t)strlen(ust_tcp_cc_name(l->tcb)));
	if (atomic_load(&l->sock->flags) & US_F_INQ)
		REAL(setsockopt)(fd, IPPROTO_TCP, TCP_INQ, &one, sizeof(one));
	if (atomic_load(&l->sock->linger_on)) {
		struct linger lg = { 1, atomic_load(&l->sock->linger_s) };
		REAL(setsockopt)(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
}

/* A kernel listener on a ("a loopback address and the port") with the
 * program's backlog, its watcher started; -1 if the kernel will not have
 * it (the port is another loopback server's: Linux's listen would have
 * failed there too, which the stack cannot know; no ::1 where IPv6 is off:
 * Linux's listener would not see it either). */
static int lo_open(struct us_conn *l, struct us_io *w, const struct sockaddr *a, socklen_t alen, unsigned backlog)
{
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)a;
	int one = 1, v6only, fd = REAL(socket)(a->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);

	if (fd < 0 || (fd = us_fd_high(fd)) < 0)
		return -1;
	REAL(setsockopt)(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* A SO_REUSEPORT group's members each get one, and the kernel
	 * spreads loopback connections over them as Linux would. */
	if (atomic_load(&l->sock->reuseport))
		REAL(setsockopt)(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (a->sa_family == AF_INET6) {
		v6only = !IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr);
		REAL(setsockopt)(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
	}
	lo_inherit(l, fd, true);
	if (REAL(bind)(fd, a, alen) < 0 || REAL(listen)(fd, (int)backlog) < 0) {
		REAL(close)(fd);
		return -1;
	}
	us_io_init(w, l->st->io_fd, fd, w == &l->lo_io ? on_lo_accept : on_lo6_accept, NULL);
	us_io_start(w, US_IO_IN);
	return fd;
}

/* After listen() on the wildcard address: the kernel listeners on
 * loopback that Linux's listener of this family would stand for. An
 * AF_INET6 listener's IPv4 connections are AF_INET6 sockets with mapped
 * addresses on Linux: its 127.0.0.1 listener is one too, on
 * ::ffff:127.0.0.1, so that what accept() returns is the same. */
void us_lo_listen(struct us_conn *l, uint16_t port, unsigned backlog)
{
	bool inet6 = atomic_load(&l->sock->family) == AF_INET6;
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr_in6 m6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };

	if (!port)
		return;
	m6.sin6_addr.s6_addr[10] = m6.sin6_addr.s6_addr[11] = 0xff; /* ::ffff:127.0.0.1 */
	memcpy(&m6.sin6_addr.s6_addr[12], &a4.sin_addr, 4);
	if (l->lo_fd < 0 && !(inet6 && atomic_load(&l->sock->v6only)))
		l->lo_fd = inet6 ? lo_open(l, &l->lo_io, (struct sockaddr *)&m6, sizeof(m6), backlog)
				 : lo_open(l, &l->lo_io, (struct sockaddr *)&a4, sizeof(a4), backlog);
	if (l->lo6_fd < 0 && inet6)
		l->lo6_fd = lo_open(l, &l->lo6_io, (struct sockaddr *)&a6, sizeof(a6), backlog);
}

void us_lo_options(struct us_conn *l)
{
	if (l->lo_fd >= 0)
		lo_inherit(l, l->lo_fd, true);
	if (l->lo6_fd >= 0)
		lo_inherit(l, l->lo6_fd, true);
}

static void lo_close_one(int *fd, struct us_io *w)
{
	if (*fd < 0)
		return;
	us_io_forget(w);
	REAL(close)(*fd);
	*fd = -1;
}

void us_lo_close(struct us_conn *l)
{
	if (l->lo_held >= 0)
		REAL(close)(l->lo_held); /* accepted, never handed over: reset */
	l->lo_held = -1;
	lo_close_one(&l->lo_fd, &l->lo_io);
	lo_close_one(&l->lo6_fd, &l->lo6_io);
}

/* An end of a kernel connection as the token carries it (IPv4 mapped). */
static void lo_end(const struct sockaddr_storage *ss, struct ust_ip6 *addr, uint16_t *port)
{
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET6) {
		memcpy(addr->b, &a6->sin6_addr, 16);
		*port = ntohs(a6->sin6_port);
	} else {
		*addr = ust_ip6_from_v4(ntohl(a4->sin_addr.s_addr));
		*port = ntohs(a4->sin_port);
	}
}

/* Hands the held kernel connection over; false while the pair is full. */
static bool hand_over(struct us_conn *l)
{
	struct sockaddr_storage peer, local;
	socklen_t plen = sizeof(peer), llen = sizeof(local);
	struct us_token tok = { .magic = US_TOKEN_MAGIC, .idx = US_TOKEN_KERNEL };

	lo_inherit(l, l->lo_held, false);
	if (getpeername(l->lo_held, (struct sockaddr *)&peer, &plen) == 0 &&
	    getsockname(l->lo_held, (struct sockaddr *)&local, &llen) == 0) {
		lo_end(&peer, &tok.raddr, &tok.rport);
		lo_end(&local, &tok.laddr, &tok.lport);
	}
	if (!us_send_token(l->sfd, l->lo_held, &tok) && (errno == EAGAIN || errno == EWOULDBLOCK))
		return false;
	/* The token holds it now; or the program's end is gone and nobody
	 * will accept it (closed: the client sees a reset, as from a
	 * listener that closed with connections queued). */
	REAL(close)(l->lo_held);
	l->lo_held = -1;
	return true;
}

/* Moves the kernel listener's connections to the program's queue: one
 * held at a time, so that a full pair (a program that does not accept)
 * leaves the rest in the kernel's backlog, which bounds them as Linux's. */
void us_lo_deliver(struct us_conn *l)
{
	if (l->lo_fd < 0 && l->lo6_fd < 0)
		return;
	for (;;) {
		if (l->lo_held < 0) {
			int fd = l->lo_fd < 0 ? -1 : REAL(accept4)(l->lo_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (fd < 0 && l->lo6_fd >= 0)
				fd = REAL(accept4)(l->lo6_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (fd < 0)
				break; /* EAGAIN: none waits */
			l->lo_held = fd;
		}
		if (!hand_over(l)) {
			/* Again once the pair has room (l->io's out, then
			 * deliver). */
			if (l->lo_fd >= 0)
				us_io_stop(&l->lo_io, US_IO_IN);
			if (l->lo6_fd >= 0)
				us_io_stop(&l->lo6_io, US_IO_IN);
			us_io_start(&l->io, US_IO_OUT);
			return;
		}
	}
	if (l->lo_fd >= 0)
		us_io_start(&l->lo_io, US_IO_IN);
	if (l->lo6_fd >= 0)
		us_io_start(&l->lo6_io, US_IO_IN);
}

static void on_lo_accept(struct us_io *w)
{
	us_lo_deliver(ust_container_of(w, struct us_conn, lo_io));
}

static void on_lo6_accept(struct us_io *w)
{
	us_lo_deliver(ust_container_of(w, struct us_conn, lo6_io));
}
