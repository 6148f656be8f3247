/* socket, connect, bind, listen, accept, shutdown, getsockname, getpeername.
 *
 * Every AF_INET stream socket is an ustcp socket from socket() on: the app
 * end of a new socketpair, at the number the kernel would have given, so
 * that an epoll or poll set holding it sees every readiness change. A
 * connect() to a USTCP_PASSTHROUGH destination (127.0.0.0/8 by default), or
 * a bind() to an address that is not ours, hands the socket back to the
 * kernel: a kernel socket takes the fd number (dup3), with the file flags
 * and the options the program had set, and the stack forgets its pair. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/futex.h>
#include <poll.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "shim.h"
#include "tcp.h"

static bool is_tcp4(int domain, int type, int protocol)
{
	return domain == AF_INET && (type & 0xf) == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP);
}

US_EXPORT int socket(int domain, int type, int protocol)
{
	struct us_sock *s;
	struct us_call c;
	int r, fd;

	if (!is_tcp4(domain, type, protocol) || (type & ~(0xf | SOCK_NONBLOCK | SOCK_CLOEXEC))) {
		fd = REAL(socket)(domain, type, protocol);
		us_fd_clear(fd);
		return fd;
	}
	r = us_stack_start();
	if (r < 0)
		return (int)us_ret(r);
	s = us_sock_alloc();
	if (!s)
		return (int)us_ret(-ENFILE);
	c.u.opt.val = -1;
	r = (int)us_call(&c, us_op_create, s);
	if (r < 0) {
		us_sock_free(s);
		return (int)us_ret(r);
	}
	fd = r; /* the lowest free number, as the kernel's socket() */
	s->app_fd = fd;
	if (type & SOCK_NONBLOCK)
		REAL(fcntl)(fd, F_SETFL, O_NONBLOCK);
	if (!(type & SOCK_CLOEXEC))
		REAL(fcntl)(fd, F_SETFD, 0);
	us_fd_set(fd, s);
	return fd;
}

/* Is dst left to the kernel? */
static bool passthrough(uint32_t dst)
{
	const struct ust_config *cfg = us_config();

	return cfg ? ust_config_passthrough(cfg, dst) : (dst >> 24) == 127;
}

/* Gives fd back to the kernel: a kernel TCP socket takes its number, with
 * its file flags and the options set so far. 0 or -errno. */
static int to_kernel(int fd, struct us_sock *s)
{
	int fl = REAL(fcntl)(fd, F_GETFL), fdfl = REAL(fcntl)(fd, F_GETFD), k, n;
	struct timeval tv;
	socklen_t len;

	k = REAL(socket)(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (k < 0)
		return -errno;
	if (fl >= 0 && (fl & O_NONBLOCK))
		REAL(fcntl)(k, F_SETFL, O_NONBLOCK);
	n = atomic_load(&s->nopts);
	for (int i = 0; i < n && i < US_OPT_RECORD; i++)
		REAL(setsockopt)(k, s->opts[i].level, s->opts[i].name, s->opts[i].val, s->opts[i].len);
	/* Timeouts were applied to the app end. */
	len = sizeof(tv);
	if (REAL(getsockopt)(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) == 0)
		REAL(setsockopt)(k, SOL_SOCKET, SO_RCVTIMEO, &tv, len);
	len = sizeof(tv);
	if (REAL(getsockopt)(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len) == 0)
		REAL(setsockopt)(k, SOL_SOCKET, SO_SNDTIMEO, &tv, len);
	us_fd_clear(fd);
	/* The app end goes: the stack sees it hang up and frees its side. */
	if (REAL(dup3)(k, fd, fdfl >= 0 && (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
		int e = errno;
		REAL(close)(k);
		us_fd_set(fd, s);
		return -e;
	}
	REAL(close)(k);
	return 0;
}

/* ---- helpers ---- */

static int sockaddr_in_of(const struct sockaddr *sa, socklen_t len, uint32_t *addr, uint16_t *port)
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

/* Writes an AF_INET address the way the kernel does: truncated to *len,
 * with *len set to the full size. */
static void put_sockaddr(struct sockaddr *sa, socklen_t *len, uint64_t packed)
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

static bool nonblocking(int fd)
{
	int fl = REAL(fcntl)(fd, F_GETFL);

	return fl >= 0 && (fl & O_NONBLOCK);
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

/* ---- connect ---- */

/* After a blocking connect failed, Linux's socket is back in CLOSE with
 * nothing shut: poll says OUT|HUP. An unconnected AF_UNIX stream socket
 * says exactly that, so it takes the fd number (the pair, shut both ways,
 * would add IN|RDHUP). A set that registered the old file before connect
 * loses it: a documented difference. */
static void unconnect(int fd)
{
	int fdfl = REAL(fcntl)(fd, F_GETFD);
	int u = REAL(socket)(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (u < 0)
		return;
	REAL(dup3)(u, fd, fdfl >= 0 && (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0);
	REAL(close)(u);
}

/* A blocking connect waits for the socket's state to leave SYN-SENT: a
 * futex on the shared word the stack thread publishes it in. Like the
 * kernel's connect, the wait restarts after a signal whose handler has
 * SA_RESTART and fails with EINTR otherwise (the handshake goes on), and
 * SO_SNDTIMEO bounds it (then EINPROGRESS; EINTR on any signal). */
static int wait_connected(int fd, struct us_sock *s)
{
	struct timeval tv = { 0, 0 };
	struct timespec ts, *timeout = NULL;
	socklen_t len = sizeof(tv);
	int err;

	if (REAL(getsockopt)(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len) == 0 && (tv.tv_sec || tv.tv_usec)) {
		ts.tv_sec = tv.tv_sec;
		ts.tv_nsec = tv.tv_usec * 1000;
		timeout = &ts;
	}
	for (;;) {
		int st = atomic_load(&s->state);
		if (UST_TCP_SYNCHRONIZED(st)) {
			/* The stack thread is taking the filler out right now:
			 * return once the socket takes data. */
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			while (poll(&p, 1, 1000) < 0 && errno == EINTR)
				;
			return 0;
		}
		if (st == UST_TCP_CLOSED) {
			err = us_take_error(fd, s);
			atomic_fetch_or(&s->flags, US_F_CONNECT_DONE);
			unconnect(fd);
			return -(err ? err : ECONNREFUSED);
		}
		if (syscall(SYS_futex, &s->state, FUTEX_WAIT, st, timeout, NULL, 0) < 0) {
			if (errno == EINTR)
				return -EINTR;
			if (errno == ETIMEDOUT)
				return -EINPROGRESS;
			/* EAGAIN: it changed meanwhile */
		}
	}
}

US_EXPORT int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct us_sock *s = us_fd_lookup(fd);
	struct us_call c;
	uint32_t addr;
	uint16_t port;
	int r, st, fl;

	if (!s)
		return REAL(connect)(fd, sa, len);
	if (sockaddr_in_of(sa, len, &addr, &port) == 0 && passthrough(addr) &&
	    atomic_load(&s->state) == UST_TCP_CLOSED && !(atomic_load(&s->flags) & US_F_CONNECTING) &&
	    atomic_load(&s->kind) == US_CONN) {
		r = to_kernel(fd, s);
		if (r < 0)
			return (int)us_ret(r);
		return REAL(connect)(fd, sa, len);
	}
	r = sockaddr_in_of(sa, len, &addr, &port);
	if (r < 0)
		return (int)us_ret(r);
	st = atomic_load(&s->state);
	fl = atomic_load(&s->flags);
	if (atomic_load(&s->kind) == US_LISTENER)
		return (int)us_ret(-EISCONN);
	if (st == UST_TCP_SYN_SENT)
		return (int)us_ret(nonblocking(fd) ? -EALREADY : wait_connected(fd, s));
	if (UST_TCP_SYNCHRONIZED(st))
		return (int)us_ret(-EISCONN);
	if (fl & US_F_CONNECTING) {
		/* It failed: report the error once; a new attempt needs a new
		 * socket (Linux would allow reconnecting). */
		r = us_take_error(fd, s);
		return (int)us_ret(r ? -r : -ECONNABORTED);
	}
	if (port == 0)
		return (int)us_ret(-ECONNREFUSED);
	c.u.in.addr = addr;
	c.u.in.port = port;
	r = (int)us_call(&c, us_op_connect, s);
	if (r < 0)
		return (int)us_ret(r);
	if (nonblocking(fd))
		return (int)us_ret(-EINPROGRESS);
	return (int)us_ret(wait_connected(fd, s));
}

/* ---- bind, listen ---- */

US_EXPORT int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct us_sock *s = us_fd_lookup(fd);
	const struct ust_config *cfg;
	struct us_call c;
	uint32_t addr;
	uint16_t port;
	int r;

	if (!s)
		return REAL(bind)(fd, sa, len);
	cfg = us_config();
	if (sockaddr_in_of(sa, len, &addr, &port) == 0 && addr != INADDR_ANY && (!cfg || addr != cfg->addr) &&
	    atomic_load(&s->state) == UST_TCP_CLOSED && atomic_load(&s->kind) == US_CONN &&
	    !us_port(atomic_load(&s->local))) {
		/* Not our address (loopback, say): the kernel's socket. */
		r = to_kernel(fd, s);
		if (r < 0)
			return (int)us_ret(r);
		return REAL(bind)(fd, sa, len);
	}
	r = sockaddr_in_of(sa, len, &addr, &port);
	if (r < 0)
		return (int)us_ret(r);
	c.u.in.addr = addr;
	c.u.in.port = port;
	return (int)us_ret(us_call(&c, us_op_bind, s));
}

US_EXPORT int listen(int fd, int backlog)
{
	struct us_sock *s = us_fd_lookup(fd);
	struct us_call c;

	if (!s)
		return REAL(listen)(fd, backlog);
	c.u.opt.val = backlog;
	return (int)us_ret(us_call(&c, us_op_listen, s));
}

/* ---- accept ---- */

/* A connection arrives as a token on the listener's pair with its app end
 * attached; the blocking, EAGAIN and EINTR behaviour is the kernel's. */
US_EXPORT int accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
	struct us_sock *s = us_fd_lookup(fd), *cs;
	struct us_token tok;
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &tok, sizeof(tok) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	ssize_t r;
	int nfd = -1;

	if (!s || atomic_load(&s->kind) != US_LISTENER) {
		if (s)
			return (int)us_ret(-EINVAL);
		return REAL(accept4)(fd, sa, len, flags);
	}
	if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
		return (int)us_ret(-EINVAL);
	r = REAL(recvmsg)(fd, &m, (flags & SOCK_CLOEXEC) ? MSG_CMSG_CLOEXEC : 0);
	if (r < 0)
		return -1;
	for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&nfd, CMSG_DATA(cm), sizeof(int));
	if (r == 0)
		return (int)us_ret(-EINVAL); /* shut down: no longer listening */
	if (r != (ssize_t)sizeof(tok) || tok.magic != US_TOKEN_MAGIC || nfd < 0) {
		if (nfd >= 0)
			REAL(close)(nfd);
		return (int)us_ret(-ECONNABORTED);
	}
	if (flags & SOCK_NONBLOCK)
		REAL(fcntl)(nfd, F_SETFL, O_NONBLOCK);
	cs = us_sock_at(tok.idx);
	if (cs && atomic_load(&cs->gen) == tok.gen) {
		cs->app_fd = nfd;
		atomic_fetch_or(&cs->flags, US_F_ACCEPTED);
		us_fd_set(nfd, cs);
	}
	if (atomic_fetch_and(&s->flags, ~US_F_BACKLOGGED) & US_F_BACKLOGGED)
		us_stack_poke();
	put_sockaddr(sa, len, us_pack(tok.raddr, tok.rport));
	return nfd;
}

US_EXPORT int accept(int fd, struct sockaddr *sa, socklen_t *len)
{
	return accept4(fd, sa, len, 0);
}

/* ---- names ---- */

US_EXPORT int getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
	struct us_sock *s = us_fd_lookup(fd);

	if (!s)
		return REAL(getsockname)(fd, sa, len);
	if (!sa || !len)
		return (int)us_ret(-EFAULT);
	put_sockaddr(sa, len, atomic_load(&s->local));
	return 0;
}

US_EXPORT int getpeername(int fd, struct sockaddr *sa, socklen_t *len)
{
	struct us_sock *s = us_fd_lookup(fd);
	int st;

	if (!s)
		return REAL(getpeername)(fd, sa, len);
	st = atomic_load(&s->state);
	if (atomic_load(&s->kind) == US_LISTENER || st == UST_TCP_CLOSED || st == UST_TCP_SYN_SENT)
		return (int)us_ret(-ENOTCONN);
	if (!sa || !len)
		return (int)us_ret(-EFAULT);
	put_sockaddr(sa, len, atomic_load(&s->remote));
	return 0;
}

/* ---- shutdown ---- */

/* Done on the app end: the stack reads EOF after the data (SHUT_WR) and
 * sends the FIN; SHUT_RD ends reading locally, as Linux's does. */
US_EXPORT int shutdown(int fd, int how)
{
	struct us_sock *s = us_fd_lookup(fd);
	int st;

	if (!s)
		return REAL(shutdown)(fd, how);
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return (int)us_ret(-EINVAL);
	if (atomic_load(&s->kind) == US_LISTENER) {
		struct us_call c;
		if (how == SHUT_WR)
			return 0; /* as Linux: nothing to send on a listener */
		us_call(&c, us_op_unlisten, s);
		REAL(shutdown)(fd, SHUT_RD); /* a blocked accept() returns */
		return 0;
	}
	st = atomic_load(&s->state);
	if (st == UST_TCP_CLOSED || st == UST_TCP_SYN_SENT)
		return (int)us_ret(-ENOTCONN);
	return REAL(shutdown)(fd, how);
}
