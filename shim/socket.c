/* socket, bind, listen, and the helpers the other socket calls share.
 *
 * Every AF_INET and AF_INET6 stream socket is an ustcp socket from
 * socket() on (an AF_INET6 one carries IPv4 too, mapped, unless
 * IPV6_V6ONLY, whose default is the kernel's bindv6only): an
 * AF_UNIX socket at the number the kernel would have given, unconnected
 * until listen() or connect() pairs it with the stack's end (relay.c), so
 * that an epoll or poll set holding it sees every readiness change. A
 * connect() to a USTCP_PASSTHROUGH destination (127.0.0.0/8 by default), or
 * a bind() to an address that is not ours, hands the socket back to the
 * kernel (us_to_kernel): a kernel socket takes the fd number (dup3), with
 * the file flags and the options the program had set, and the stack
 * forgets its pair. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "counters.h"
#include "shim.h"
#include "sysctl.h"
#include "tcp.h"

static bool is_tcp(int domain, int type, int protocol)
{
	return (domain == AF_INET || domain == AF_INET6) && (type & 0xf) == SOCK_STREAM &&
	       (protocol == 0 || protocol == IPPROTO_TCP);
}

/* IPV6_V6ONLY's default: /proc/sys/net/ipv6/bindv6only, read once (0 when
 * it cannot be read, as the kernel's default). */
static int bindv6only;

static void read_bindv6only(void)
{
	bindv6only = ust_sysctl_int("/proc/sys/net/ipv6/bindv6only", 0);
}

static int default_v6only(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, read_bindv6only);
	return bindv6only != 0;
}

/* A new ustcp socket (shim.h). */
int us_socket_new(int domain, int v6only, struct us_sock **sp)
{
	struct us_sock *s = us_sock_alloc();
	int r;

	if (!s) {
		/* As the kernel's socket() when no socket inode can be had. */
		us_count(UST_EV_SOCK_NO_SLOT);
		return -ENFILE;
	}
	r = (int)us_sock_create(s, domain, v6only);
	if (r < 0) {
		us_sock_free(s);
		return r;
	}
	*sp = s;
	return r;
}

US_EXPORT int socket(int domain, int type, int protocol)
{
	struct us_sock *s;
	int r, fd;

	if (!is_tcp(domain, type, protocol) || (type & ~(0xf | SOCK_NONBLOCK | SOCK_CLOEXEC))) {
		fd = REAL(socket)(domain, type, protocol);
		us_fd_clear(fd);
		return fd;
	}
	r = us_stack_start();
	if (r < 0)
		return (int)us_ret(r);
	r = us_socket_new(domain, domain == AF_INET6 ? default_v6only() : 0, &s);
	if (r < 0)
		return (int)us_ret(r);
	fd = r; /* the lowest free number, as the kernel's socket() */
	s->app_fd = fd;
	if (domain == AF_INET6)
		us_ip6_socket_init(s);
	if (type & SOCK_NONBLOCK)
		REAL(fcntl)(fd, F_SETFL, O_NONBLOCK);
	if (!(type & SOCK_CLOEXEC))
		REAL(fcntl)(fd, F_SETFD, 0);
	us_fd_set(fd, s);
	return fd;
}

/* Puts k at fd's number in place of s's app end (shim.h). */
int us_fd_replace(int fd, struct us_sock *s, int k)
{
	int fdfl = REAL(fcntl)(fd, F_GETFD), refs;
	struct us_epoll_reg regs[16];
	struct timeval tv;
	socklen_t len;
	unsigned nregs;

	/* Timeouts were applied to the app end. */
	len = sizeof(tv);
	if (REAL(getsockopt)(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) == 0)
		REAL(setsockopt)(k, SOL_SOCKET, SO_RCVTIMEO, &tv, len);
	len = sizeof(tv);
	if (REAL(getsockopt)(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len) == 0)
		REAL(setsockopt)(k, SOL_SOCKET, SO_SNDTIMEO, &tv, len);
	/* Epoll sets that watch the app end: k takes its place in them, as
	 * the same file would have stayed there on Linux. */
	nregs = us_epoll_regs(fd, regs, UST_ARRAY_SIZE(regs));
	refs = us_fd_clear(fd);
	/* The app end goes; the stack frees its side (close.c). */
	if (REAL(dup3)(k, fd, fdfl >= 0 && (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
		int e = errno;
		REAL(close)(k);
		us_fd_set(fd, s);
		us_epoll_readd(fd, regs, nregs);
		return -e;
	}
	REAL(close)(k);
	us_epoll_readd(fd, regs, nregs);
	return refs;
}

/* Gives fd back to the kernel (shim.h). */
int us_to_kernel(int fd, struct us_sock *s)
{
	int fl = REAL(fcntl)(fd, F_GETFL), k, n, refs;

	k = REAL(socket)(atomic_load(&s->family), SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (k < 0)
		return -errno;
	if (atomic_load(&s->family) == AF_INET6) {
		int on = atomic_load(&s->v6only);
		REAL(setsockopt)(k, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	}
	if (fl >= 0 && (fl & O_NONBLOCK))
		REAL(fcntl)(k, F_SETFL, O_NONBLOCK);
	n = atomic_load(&s->nopts);
	for (int i = 0; i < n && i < US_OPT_RECORD; i++)
		REAL(setsockopt)(k, s->opts[i].level, s->opts[i].name, s->opts[i].val, s->opts[i].len);
	us_md5_keys_to_kernel(s, k);
	refs = us_fd_replace(fd, s, k);
	if (refs < 0)
		return refs;
	if (refs == 0)
		us_sock_let_go(s);
	return 0;
}

/* ---- helpers ---- */

int us_sockaddr_in_of(const struct sockaddr *sa, socklen_t len, uint32_t *addr, uint16_t *port)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

	if (!sa || len < (socklen_t)sizeof(struct sockaddr_in))
		return -EINVAL;
	if (sa->sa_family != AF_INET)
		return -EAFNOSUPPORT;
	*addr = ntohl(in->sin_addr.s_addr);
	*port = ntohs(in->sin_port);
	return 0;
}

int us_sockaddr_of(const struct us_sock *s, const struct sockaddr *sa, socklen_t len, struct ust_ip6 *addr,
		   uint16_t *port)
{
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
	uint32_t a;
	int r;

	if (atomic_load(&s->family) != AF_INET6) {
		r = us_sockaddr_in_of(sa, len, &a, port);
		if (r == 0)
			*addr = ust_ip6_from_v4(a);
		return r;
	}
	/* Linux's inet6_bind and tcp_v6_connect: RFC 2133's 24 bytes at
	 * least (no scope id), then the family. */
	if (!sa || len < 24)
		return -EINVAL;
	if (sa->sa_family != AF_INET6)
		return -EAFNOSUPPORT;
	memcpy(addr->b, &in6->sin6_addr, 16);
	*port = ntohs(in6->sin6_port);
	return 0;
}

void us_put_sockaddr6(struct sockaddr *sa, socklen_t *len, const struct ust_ip6 *a, uint16_t port)
{
	const struct ust_config *cfg = us_config();
	struct sockaddr_in6 in6;

	if (!sa || !len)
		return;
	memset(&in6, 0, sizeof(in6));
	in6.sin6_family = AF_INET6;
	in6.sin6_port = htons(port);
	memcpy(&in6.sin6_addr, a->b, 16);
	/* A link-local address names its link, as Linux's. */
	if (ust_ip6_is_link_local(a) && cfg)
		in6.sin6_scope_id = if_nametoindex(cfg->iface);
	memcpy(sa, &in6, *len < sizeof(in6) ? *len : sizeof(in6));
	*len = sizeof(in6);
}

void us_put_end(const struct us_sock *s, bool remote, struct sockaddr *sa, socklen_t *len)
{
	uint64_t packed = atomic_load(remote ? &s->remote : &s->local);

	if (atomic_load(&s->family) == AF_INET6)
		us_put_sockaddr6(sa, len, remote ? &s->remote6 : &s->local6, us_port(packed));
	else
		us_put_sockaddr(sa, len, packed);
}

/* Writes an AF_INET address the way the kernel does: truncated to *len,
 * with *len set to the full size. */
void us_put_sockaddr(struct sockaddr *sa, socklen_t *len, uint64_t packed)
{
	struct sockaddr_in in;

	if (!sa || !len)
		return;
	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_addr.s_addr = htonl(us_addr(packed));
	in.sin_port = htons(us_port(packed));
	memcpy(sa, &in, *len < sizeof(in) ? *len : sizeof(in));
	*len = sizeof(in);
}

/* Takes the socket's pending error, and the kernel's on the app end with
 * it (they report the same event). */
int us_take_error(int fd, struct us_sock *s)
{
	int kerr = 0;
	socklen_t len = sizeof(kerr);

	REAL(getsockopt)(fd, SOL_SOCKET, SO_ERROR, &kerr, &len);
	return atomic_exchange(&s->pending_err, 0);
}

/* ---- bind, listen ---- */

/* Is a one of ours, or any? (An address that is not goes to the kernel.) */
static bool ours_or_any(const struct ust_config *cfg, const struct ust_ip6 *a)
{
	if (ust_ip6_is_unspecified(a))
		return true;
	if (ust_ip6_is_v4mapped(a))
		return ust_ip6_to_v4(a) == INADDR_ANY || (cfg && ust_ip6_to_v4(a) == cfg->addr);
	return cfg && ((cfg->has_addr6 && ust_ip6_eq(a, &cfg->addr6)) || ust_ip6_is_link_local(a));
}

US_EXPORT int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct us_sock *s = us_fd_lookup(fd);
	struct us_call c;
	struct ust_ip6 addr;
	uint16_t port;
	int r;

	if (!s)
		return REAL(bind)(fd, sa, len);
	r = us_take_over(fd, &s);
	if (r < 0)
		return (int)us_ret(r);
	r = us_sockaddr_of(s, sa, len, &addr, &port);
	if (r == 0 && !ours_or_any(us_config(), &addr) && atomic_load(&s->state) == UST_TCP_CLOSED &&
	    atomic_load(&s->kind) == US_CONN && !us_port(atomic_load(&s->local))) {
		/* Not our address (loopback, say): the kernel's socket. */
		r = us_to_kernel(fd, s);
		if (r < 0)
			return (int)us_ret(r);
		return REAL(bind)(fd, sa, len);
	}
	if (r < 0)
		return (int)us_ret(r);
	/* Linux's inet6_bind: an IPv4 address on a v6only socket is none it
	 * can have. */
	if (ust_ip6_is_v4mapped(&addr) && atomic_load(&s->family) == AF_INET6 && atomic_load(&s->v6only))
		return (int)us_ret(-EINVAL);
	c.u.in.addr = addr;
	c.u.in.port = port;
	c.u.in.noport = us_bind_no_port(s);
	r = (int)us_call(&c, us_op_bind, s);
	if (r == 0) {
		/* Kept for a connect after a failed one (connect.c, renew). */
		s->bound6 = addr;
		atomic_store(&s->bound_port, port);
		atomic_fetch_or(&s->flags, US_F_BOUND);
	}
	return (int)us_ret(r);
}

US_EXPORT int listen(int fd, int backlog)
{
	struct us_sock *s = us_fd_lookup(fd);
	struct us_call c;
	long r;

	if (!s)
		return REAL(listen)(fd, backlog);
	r = us_take_over(fd, &s);
	if (r < 0)
		return (int)us_ret(r);
	c.u.opt.val = backlog;
	s->app_fd = fd; /* the number the stack pairs (relay.c, us_relay_pair) */
	r = us_call(&c, us_op_listen, s);
	/* A peer's SYN may come as soon as listen() returns: the port's
	 * claim (a bind()'s or the autobind's) is answered by then. */
	us_steer_settle();
	return (int)us_ret(r);
}
