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

/* Is dst left to the kernel? */
static bool passthrough(uint32_t dst)
{
	const struct ust_config *cfg = us_config();

	return cfg ? ust_config_passthrough(cfg, dst) : (dst >> 24) == 127;
}

static bool nonblocking(int fd)
{
	int fl = REAL(fcntl)(fd, F_GETFL);

	return fl >= 0 && (fl & O_NONBLOCK);
}

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
	if (us_sockaddr_in_of(sa, len, &addr, &port) == 0 && passthrough(addr) &&
	    atomic_load(&s->state) == UST_TCP_CLOSED && !(atomic_load(&s->flags) & US_F_CONNECTING) &&
	    atomic_load(&s->kind) == US_CONN) {
		r = us_to_kernel(fd, s);
		if (r < 0)
			return (int)us_ret(r);
		return REAL(connect)(fd, sa, len);
	}
	r = us_sockaddr_in_of(sa, len, &addr, &port);
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

