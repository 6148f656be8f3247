/* connect: a SYN through the stack thread, or the kernel's socket for a
 * USTCP_PASSTHROUGH destination. A blocking connect waits on the state the
 * stack thread publishes in the shared slot. */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <string.h>
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

/* :: or 0.0.0.0 (mapped) */
static bool addr_is_any(const struct ust_ip6 *a)
{
	return ust_ip6_is_unspecified(a) || (ust_ip6_is_v4mapped(a) && ust_ip6_to_v4(a) == 0);
}

static bool nonblocking(int fd)
{
	int fl = REAL(fcntl)(fd, F_GETFL);

	return fl >= 0 && (fl & O_NONBLOCK);
}


static int renew(int fd, struct us_sock *s, bool take_over);

/* A blocking connect failed: connect() reports the error, and Linux's
 * socket is disconnected then (OUT|HUP, no error; a later connect is a new
 * attempt): renewed (renew), once the stack closed its end (bounded: 1 s).
 * If it cannot be, the old one stays, failed (US_F_CONNECT_DONE: the next
 * connect tries again). */
static int connect_failed(int fd, struct us_sock *s)
{
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };
	int err;

	while (poll(&p, 1, 1000) < 0 && errno == EINTR)
		;
	err = us_take_error(fd, s);
	atomic_fetch_or(&s->flags, US_F_CONNECT_DONE);
	renew(fd, s, false);
	return -(err ? err : ECONNREFUSED);
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
				return -EINTR; /* the handshake goes on; the app end polls 0 until it ends */
			if (errno == ETIMEDOUT)
				return -EINPROGRESS;
			/* EAGAIN: it changed meanwhile */
		}
	}
}

/* Linux's socket, after a failed connect, is disconnected (tcp_disconnect,
 * from __inet_stream_connect once it reported the failure): it polls
 * OUT|HUP, and a later connect() is a new attempt, from the address and
 * port bind() gave it (SOCK_BINDADDR_LOCK, SOCK_BINDPORT_LOCK). Ours was
 * a relay and a control block that are gone, and an app end that a
 * non-blocking connect paired with a stack end now closed: nothing
 * returns an AF_UNIX socket to the unconnected state. So a fresh socket
 * takes the number, as us_to_kernel's kernel socket does: the file
 * flags, the timeouts, the options set before connect (the first
 * US_OPT_RECORD), the bind and the epoll registrations go over; a dup of
 * the old number, or an epoll set us_epoll_regs cannot see, keeps the
 * old file. 0 or -errno (the old socket stays).
 *
 * take_over (us_take_over): s is another stack's, never paired, and this
 * fd its only holder; it keeps its bind, the port it got included (a
 * bind to port 0 has one), which the other stack lets go just before
 * ours takes it (us_op_hand_on). */
static int renew(int fd, struct us_sock *s, bool take_over)
{
	int fl = REAL(fcntl)(fd, F_GETFL), k, refs, n;
	struct { int level, name; socklen_t len; char val[16]; } opts[US_OPT_RECORD];
	struct us_sock *s2;
	int fflags = atomic_load(&s->flags), bport = atomic_load(&s->bound_port);
	struct ust_ip6 baddr = s->bound6;

	if (take_over && (fflags & US_F_BOUND))
		bport = us_port(atomic_load(&s->local));

	/* Our stack (the socket may be another process's, after fork). */
	k = us_stack_start();
	if (k < 0)
		return k;
	k = us_socket_new(atomic_load(&s->family), atomic_load(&s->v6only), &s2);
	if (k < 0)
		return k;
	n = atomic_load(&s->nopts);
	if (n > US_OPT_RECORD)
		n = US_OPT_RECORD;
	memcpy(opts, s->opts, sizeof(opts[0]) * (size_t)n);
	/* TCP_MD5SIG's keys, too large to be recorded: from block to block,
	 * as Linux's socket keeps them across a failed connect. */
	us_md5_keys_to_sock(s, s2);
	refs = us_fd_replace(fd, s, k);
	if (refs < 0) {
		us_sock_let_go(s2); /* its app end closed, in no table */
		return refs;
	}
	s2->app_fd = fd;
	us_fd_set(fd, s2);
	if (fl >= 0)
		REAL(fcntl)(fd, F_SETFL, fl);
	if (refs == 0 && take_over) {
		/* Its stack lets the bind go now, and the slot is ours to
		 * free; if it cannot be asked, it learns of the close as
		 * any (us_sock_let_go) and the bind below may find the port
		 * still held. */
		struct us_call c;
		if (us_call(&c, us_op_hand_on, s) == 0)
			us_sock_free(s);
		else
			us_sock_let_go(s);
	} else if (refs == 0) {
		us_sock_let_go(s);
	}
	/* Through the overridden call: each reaches the new control block
	 * and is recorded again. */
	for (int i = 0; i < n; i++)
		setsockopt(fd, opts[i].level, opts[i].name, opts[i].val, opts[i].len);
	if ((fflags & US_F_BOUND) && (bport || !addr_is_any(&baddr))) {
		struct us_call c;
		int r;

		c.u.in.addr = baddr;
		c.u.in.port = (uint16_t)bport;
		c.u.in.noport = us_bind_no_port(s2);
		r = (int)us_call(&c, us_op_bind, s2);
		if (r < 0)
			return r;
		s2->bound6 = baddr;
		atomic_store(&s2->bound_port, bport);
		atomic_fetch_or(&s2->flags, US_F_BOUND);
	}
	return 0;
}

int us_take_over(int fd, struct us_sock **sp)
{
	struct us_sock *s = *sp;
	int r;

	if (!us_sock_remote(s) || atomic_load(&s->kind) != US_CONN || atomic_load(&s->state) != UST_TCP_CLOSED ||
	    (atomic_load(&s->flags) & (US_F_PAIRED | US_F_CONNECTING | US_F_EVER_SYNCED)) ||
	    (atomic_load(&s->life) & US_LIFE_REFS) != 1)
		return 0;
	r = renew(fd, s, true);
	if (r < 0)
		return r;
	*sp = us_fd_lookup(fd);
	return *sp ? 0 : -EBADF;
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
	r = us_take_over(fd, &s);
	if (r < 0)
		return (int)us_ret(r);
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
	if (fl & US_F_EVER_SYNCED)
		return (int)us_ret(-EISCONN); /* Linux's socket stays SS_CONNECTED after a reset */
	if ((fl & (US_F_CONNECTING | US_F_CONNECT_DONE)) == US_F_CONNECTING) {
		/* A non-blocking connect that failed: as Linux's
		 * __inet_stream_connect, the error if SO_ERROR did not take
		 * it, else ECONNABORTED, and the socket is disconnected: the
		 * next connect is a new attempt. */
		r = us_take_error(fd, s);
		renew(fd, s, false);
		return (int)us_ret(r ? -r : -ECONNABORTED);
	}
	if (fl & US_F_CONNECT_DONE) {
		/* A blocking connect that reported its failure: a new
		 * attempt, on a fresh socket under the same number. */
		r = renew(fd, s, false);
		if (r < 0)
			return (int)us_ret(r);
		return connect(fd, sa, len);
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

