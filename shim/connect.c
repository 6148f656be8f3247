/* connect: a SYN through the stack thread, or the kernel's socket for a
 * USTCP_PASSTHROUGH destination. A blocking connect waits on the state the
 * stack thread publishes in the shared slot. */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "shim.h"
#include "tcp.h"

/* Is dst (IPv4 mapped) left to the kernel? */
static bool passthrough(const struct ust_ip6 *dst)
{
	const struct ust_config *cfg = us_config();

	if (cfg)
		return ust_config_passthrough6(cfg, dst);
	return ust_ip6_is_v4mapped(dst) ? dst->b[12] == 127 : ust_ip6_is_loopback(dst);
}

/* The stack starts with the program's first socket, and its IPv6
 * addresses with it: for a second they are tentative (DAD, RFC 4862
 * §5.4) and the engine has no source for an IPv6 peer (EADDRNOTAVAIL). On
 * a kernel the address would have been there long before the program, so
 * a connect that comes that early waits for DAD to end (bounded: 2 s,
 * DAD's second and a margin), and only then fails. */
static int connect_after_dad(struct us_call *c, struct us_sock *s)
{
	const struct ust_config *cfg = us_config();
	int r;

	/* Steering by port: our client ports' frames reach us once the
	 * broker answered their claim (a bind()'s too). */
	if (us_steer_needs_lease()) {
		struct us_call lease;
		us_call(&lease, us_op_steer_lease, NULL);
	}
	us_steer_settle();
	r = (int)us_call(c, us_op_connect, s);

	for (int i = 0; i < 40 && r == -EADDRNOTAVAIL && cfg && cfg->has_addr6 && !ust_ip6_is_v4mapped(&c->u.in.addr);
	     i++) {
		usleep(50000);
		r = (int)us_call(c, us_op_connect, s);
	}
	return r;
}

static bool nonblocking(int fd)
{
	int fl = REAL(fcntl)(fd, F_GETFL);

	return fl >= 0 && (fl & O_NONBLOCK);
}

/* A blocking connect failed: connect() reports the error, so it is no
 * longer pending, and Linux's poll then lacks POLLERR. The stack closes its
 * end just after it published CLOSED; once the app end shows the hang-up
 * (bounded: 1 s), the kernel's error that came with it is taken too. The
 * file stays the same, so an epoll set that registered it keeps it. */
static int connect_failed(int fd, struct us_sock *s)
{
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };
	int err;

	while (poll(&p, 1, 1000) < 0 && errno == EINTR)
		;
	err = us_take_error(fd, s);
	atomic_fetch_or(&s->flags, US_F_CONNECT_DONE);
	return -(err ? err : ECONNREFUSED);
}

/* A blocking connect pairs its app end only once connected (relay.c); one
 * that returns before that leaves the handshake going on, and the program
 * polls for its end: the app end must poll 0 until then. */
static int returns_early(struct us_sock *s, int err)
{
	struct us_call c;

	us_call(&c, us_op_pair, s);
	return err;
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

	if (REAL(getsockopt)(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len) == 0 && (tv.tv_sec || tv.tv_usec)) {
		ts.tv_sec = tv.tv_sec;
		ts.tv_nsec = tv.tv_usec * 1000;
		timeout = &ts;
	}
	for (;;) {
		int st, r;

		/* Counted before the state is read: the stack thread wakes
		 * only counted waiters (relay.c, publish_state). */
		atomic_fetch_add(&s->state_waiters, 1);
		st = atomic_load(&s->state);
		if (UST_TCP_SYNCHRONIZED(st)) {
			/* The stack thread is taking the filler out right now:
			 * return once the socket takes data. */
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			atomic_fetch_sub(&s->state_waiters, 1);
			while (poll(&p, 1, 1000) < 0 && errno == EINTR)
				;
			return 0;
		}
		if (st == UST_TCP_CLOSED) {
			atomic_fetch_sub(&s->state_waiters, 1);
			return connect_failed(fd, s);
		}
		r = (int)syscall(SYS_futex, &s->state, FUTEX_WAIT, st, timeout, NULL, 0);
		atomic_fetch_sub(&s->state_waiters, 1);
		if (r < 0) {
			if (errno == EINTR)
				return returns_early(s, -EINTR);
			if (errno == ETIMEDOUT)
				return returns_early(s, -EINPROGRESS);
			/* EAGAIN: it changed meanwhile */
		}
	}
}

US_EXPORT int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct us_sock *s = us_fd_lookup(fd);
	struct us_call c;
	struct ust_ip6 addr;
	uint16_t port;
	int r, st, fl;

	if (!s)
		return REAL(connect)(fd, sa, len);
	if (us_sockaddr_of(s, sa, len, &addr, &port) == 0 && passthrough(&addr) &&
	    atomic_load(&s->state) == UST_TCP_CLOSED && !(atomic_load(&s->flags) & US_F_CONNECTING) &&
	    atomic_load(&s->kind) == US_CONN) {
		r = us_to_kernel(fd, s);
		if (r < 0)
			return (int)us_ret(r);
		return REAL(connect)(fd, sa, len);
	}
	r = us_sockaddr_of(s, sa, len, &addr, &port);
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
	c.u.in.blocking = !nonblocking(fd);
	s->app_fd = fd; /* the number the stack pairs (relay.c, us_relay_pair) */
	r = connect_after_dad(&c, s);
	if (r < 0)
		return (int)us_ret(r);
	if (!c.u.in.blocking) /* as it was asked: one fcntl less */
		return (int)us_ret(-EINPROGRESS);
	return (int)us_ret(wait_connected(fd, s));
}

