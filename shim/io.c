/* The read and write families: the kernel moves the bytes (the app end is a
 * real socket); these wrappers make the errors TCP's, and make a blocking
 * read wait in poll rather than in recv (below, "blocking reads"). They look
 * the fd up in the table (an array read) and otherwise go straight to libc.
 *
 * Reading: an AF_UNIX socket knows one error, the ECONNRESET the stack
 * provokes when TCP dies; it stands for the socket's pending error
 * (ECONNRESET, ETIMEDOUT, ECONNREFUSED, EHOSTUNREACH…), reported once, then
 * 0. Writing: TCP reports a pending error before EPIPE, without SIGPIPE;
 * AF_UNIX would say EPIPE with SIGPIPE, so the error is taken first. A
 * socket that was never connected gives ENOTCONN to a reader and EPIPE (and
 * SIGPIPE) to a writer, instead of blocking on the filler. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "shim.h"
#include "loop.h"
#include "tcp.h"

/* Never connected (fresh, listening, or a blocking connect that failed). */
static bool unconnected(struct us_sock *s)
{
	int st = atomic_load(&s->state), fl = atomic_load(&s->flags);

	if (atomic_load(&s->kind) == US_LISTENER)
		return true;
	if (fl & US_F_CONNECT_DONE)
		return true;
	return st == UST_TCP_CLOSED && !(fl & (US_F_CONNECTING | US_F_EVER_SYNCED));
}

int us_map_read_error(struct us_sock *s, int err)
{
	int p;

	if (err != ECONNRESET)
		return err;
	p = atomic_exchange(&s->pending_err, 0);
	if (p == EPIPE) {
		/* A RST after the peer's FIN: reads see the end of file, the
		 * error stays for writes and SO_ERROR (Linux). */
		atomic_store(&s->pending_err, p);
		return 0;
	}
	if (p)
		return p;
	/* Already reported (SO_ERROR took it): end of file. */
	return atomic_load(&s->hard_err) ? 0 : ECONNRESET;
}

/* Before reading: -1 with errno set if the read must not reach the kernel,
 * else 0. */
static int read_pre(int fd, struct us_sock **sp)
{
	struct us_sock *s = us_fd_get(fd);

	*sp = s;
	if (s && unconnected(s)) {
		errno = ENOTCONN;
		return -1;
	}
	return 0;
}

/* After the kernel's read returned r. */
static ssize_t read_post(struct us_sock *s, ssize_t r)
{
	int e;

	if (r == 0 && s && atomic_load(&s->pending_err)) {
		/* TCP died with an error, but the kernel saw only the end
		 * of the pair (the stack could not reach this app end to
		 * leave a byte unread: it had moved to another number or
		 * process): the error comes first, once. */
		r = -1;
		errno = ECONNRESET;
	}
	if (r >= 0 || !s)
		return r;
	e = us_map_read_error(s, errno);
	if (!e)
		return 0;
	errno = e;
	return -1;
}

static int write_pre(int fd, int flags, struct us_sock **sp)
{
	struct us_sock *s = us_fd_get(fd);
	int e = 0;

	*sp = s;
	if (!s)
		return 0;
	if (atomic_load(&s->pending_err))
		e = us_take_error(fd, s);
	if (!e && unconnected(s))
		e = EPIPE;
	if (!e)
		return 0;
	if (e == EPIPE && !(flags & MSG_NOSIGNAL))
		raise(SIGPIPE);
	errno = e;
	return -1;
}

/* ---- blocking reads: waiting in poll ----
 *
 * The stack thread takes the program's bytes off the pair as soon as they
 * are written. Freeing them runs the app end's write-space callback
 * (sock_wfree -> unix_write_space, net/unix/af_unix.c), which wakes every
 * sleeper on the socket's queue with EPOLLOUT; a reader asleep in recv(2)
 * waits with a plain prepare_to_wait (unix_stream_data_wait), so it wakes,
 * finds nothing and sleeps again: two context switches per request, for
 * nothing. poll(2) registers a wake function that drops a wake-up whose key
 * holds none of the events asked for (pollwake, fs/select.c), so a reader
 * waiting for POLLIN sleeps through it. A blocking read therefore tries once
 * with MSG_DONTWAIT, and if nothing is there waits in poll(POLLIN) and tries
 * again, as the kernel's recv(2) would have woken and read.
 *
 * What the kernel's wait decides, this one decides the same:
 *   - O_NONBLOCK, MSG_DONTWAIT: no wait (the first try's EAGAIN);
 *   - end of file, a reset, shutdown(SHUT_RD) from another thread: POLLIN
 *     (or HUP, ERR), and the second try reports them as recv(2) would;
 *   - SO_RCVTIMEO: EAGAIN once it ran out (the kernel's value, rounded to
 *     its tick, read back with getsockopt), EINTR after any handler
 *     (sock_intr_errno: a timed wait is never restarted);
 *   - a handler without a timeout: restarted or EINTR by SA_RESTART
 *     (us_restart_verdict); where the handlers disagree, the wait is
 *     recv(2)'s own;
 *   - MSG_WAITALL, SO_RCVLOWAT above 1, any flag but MSG_PEEK and
 *     MSG_CMSG_CLOEXEC: recv(2)'s own wait (they wait for more than "some
 *     bytes", which poll cannot express).
 * Where it cannot (ustcp(7), CAVEATS): glibc's SIGSETXID during the wait
 * (signal.c); a close of the fd by another thread during the wait, after
 * which poll finds the number gone (EBADF) where recv(2) held the file. */

/* One try at the read; flags are the program's, plus MSG_DONTWAIT or not. */
struct rd_call {
	int fd;
	struct msghdr *m;
	int flags;
};

static ssize_t rd_try(const struct rd_call *rc, int extra)
{
	return REAL(recvmsg)(rc->fd, rc->m, rc->flags | extra);
}

/* The receive timeout in effect, in microseconds (0: none), or -1 when
 * recv(2) must do the waiting itself (a low-water mark above 1). */
static long long rcv_limits(int fd, struct us_sock *s)
{
	struct timeval tv;
	socklen_t len = sizeof(tv);
	int lowat = 1;
	socklen_t ilen = sizeof(lowat);

	if (!(atomic_load(&s->flags) & US_F_RCVOPTS))
		return 0;
	if (REAL(getsockopt)(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, &ilen) < 0 || lowat > 1)
		return -1;
	if (REAL(getsockopt)(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) < 0)
		return -1;
	return (long long)tv.tv_sec * 1000000 + tv.tv_usec;
}

static long long mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Waits for POLLIN (or hang-up, error) until the deadline (0: none): 0
 * when there is something to try, else -1 with errno EAGAIN (timed out) or
 * EINTR. */
static int wait_readable(int fd, long long deadline, enum us_restart *verdict)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		struct timespec ts, *tsp = NULL;
		int n;

		if (deadline) {
			long long left = deadline - mono_us();
			if (left < 0)
				left = 0;
			ts.tv_sec = left / 1000000;
			ts.tv_nsec = left % 1000000 * 1000;
			tsp = &ts;
		}
		n = ppoll(&p, 1, tsp, NULL);
		if (n > 0)
			return 0;
		if (n == 0) {
			errno = EAGAIN;
			return -1;
		}
		if (errno != EINTR)
			return -1;
		/* A handler ran. A handler installed during the wait counts:
		 * ask again. */
		*verdict = us_restart_verdict();
		if (deadline || *verdict != US_RESTART_ALWAYS) {
			errno = EINTR;
			return -1;
		}
	}
}

/* How long a blocking read spins before it sleeps, in microseconds: the
 * socket's SO_BUSY_POLL once set (the kernel keeps it on the app end), else
 * USTCP_BUSY_POLL. */
static unsigned busy_poll_of(int fd, struct us_sock *s)
{
	const struct ust_config *cfg;
	int us = 0;
	socklen_t len = sizeof(us);

	if (atomic_load(&s->flags) & US_F_BUSY_POLL)
		return REAL(getsockopt)(fd, SOL_SOCKET, SO_BUSY_POLL, &us, &len) == 0 && us > 0 ? (unsigned)us : 0;
	cfg = us_config();
	return cfg ? cfg->busy_poll_us : 0;
}

/* Busy polling, as Linux's sk_busy_loop does for a reader: try again
 * without sleeping for up to us microseconds. A handler that runs meanwhile
 * returns into the spin, which is the kernel's restart: so the caller spins
 * only when every handler has SA_RESTART and no SO_RCVTIMEO is set. Each
 * turn yields the CPU, which the stack thread may share with the program.
 * The result of the last try (EAGAIN: nothing came). */
static ssize_t spin_read(const struct rd_call *rc, unsigned us)
{
	long long end = mono_us() + us;
	ssize_t r;

	do {
		sched_yield();
		r = rd_try(rc, MSG_DONTWAIT);
	} while (r < 0 && errno == EAGAIN && mono_us() < end);
	return r;
}

static ssize_t rd_blocking(struct us_sock *s, const struct rd_call *rc)
{
	enum us_restart verdict;
	long long timeo, deadline = 0;
	unsigned spin;
	ssize_t r;
	int fl;

	if (!s || (rc->flags & ~(MSG_PEEK | MSG_CMSG_CLOEXEC)))
		return rd_try(rc, 0);
	timeo = rcv_limits(rc->fd, s);
	if (timeo < 0)
		return rd_try(rc, 0);
	r = rd_try(rc, MSG_DONTWAIT);
	if (r >= 0 || errno != EAGAIN)
		return r;
	fl = REAL(fcntl)(rc->fd, F_GETFL);
	if (fl < 0 || (fl & O_NONBLOCK)) {
		errno = EAGAIN;
		return -1;
	}
	verdict = us_restart_verdict();
	if (verdict == US_RESTART_UNKNOWN)
		return rd_try(rc, 0);
	if (timeo)
		deadline = mono_us() + timeo;
	else if (verdict == US_RESTART_ALWAYS && (spin = busy_poll_of(rc->fd, s)) && ust_may_spin()) {
		r = spin_read(rc, spin);
		if (r >= 0 || errno != EAGAIN)
			return r;
	}
	for (;;) {
		if (wait_readable(rc->fd, deadline, &verdict) < 0)
			return -1;
		r = rd_try(rc, MSG_DONTWAIT);
		/* EAGAIN: another reader was first; wait again. */
		if (r >= 0 || errno != EAGAIN)
			return r;
	}
}

static ssize_t rd_buf(struct us_sock *s, int fd, void *buf, size_t n, int flags)
{
	struct iovec iov = { .iov_base = buf, .iov_len = n };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct rd_call rc = { .fd = fd, .m = &m, .flags = flags };

	return rd_blocking(s, &rc);
}

/* ---- reading ---- */

/* glibc's fortified entry points (-D_FORTIFY_SOURCE programs call these). */
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags, struct sockaddr *sa,
		       socklen_t *len);

US_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	struct us_sock *s;

	if (read_pre(fd, &s))
		return -1;
	if (!s)
		return REAL(read)(fd, buf, n);
	return read_post(s, rd_buf(s, fd, buf, n, 0));
}

US_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	return read(fd, buf, n < buflen ? n : buflen);
}

US_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	struct us_sock *s;

	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)cnt };
	struct rd_call rc = { .fd = fd, .m = &m };

	if (read_pre(fd, &s))
		return -1;
	/* recvmsg would say EMSGSIZE where readv says EINVAL. */
	if (!s || cnt < 0 || cnt > IOV_MAX)
		return read_post(s, REAL(readv)(fd, iov, cnt));
	return read_post(s, rd_blocking(s, &rc));
}

US_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	struct us_sock *s;

	if (read_pre(fd, &s))
		return -1;
	if (!s)
		return REAL(recv)(fd, buf, n, flags);
	return read_post(s, rd_buf(s, fd, buf, n, flags));
}

US_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	return recv(fd, buf, n < buflen ? n : buflen, flags);
}

US_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *sa, socklen_t *len)
{
	struct us_sock *s;

	if (read_pre(fd, &s))
		return -1;
	if (!s)
		return REAL(recvfrom)(fd, buf, n, flags, sa, len);
	/* TCP fills in no source address. */
	if (len)
		*len = 0;
	return read_post(s, rd_buf(s, fd, buf, n, flags));
}

US_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
				 struct sockaddr *sa, socklen_t *len)
{
	return recvfrom(fd, buf, n < buflen ? n : buflen, flags, sa, len);
}

US_EXPORT ssize_t recvmsg(int fd, struct msghdr *m, int flags)
{
	struct us_sock *s;
	void *name;
	ssize_t r;

	if (read_pre(fd, &s))
		return -1;
	if (!s)
		return REAL(recvmsg)(fd, m, flags);
	struct rd_call rc = { .fd = fd, .m = m, .flags = flags };

	name = m->msg_name;
	m->msg_name = NULL;
	r = rd_blocking(s, &rc);
	m->msg_name = name;
	m->msg_namelen = 0;
	return read_post(s, r);
}

/* ---- writing ---- */

US_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	struct us_sock *s;

	if (write_pre(fd, 0, &s))
		return -1;
	return REAL(write)(fd, buf, n);
}

US_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	struct us_sock *s;

	if (write_pre(fd, 0, &s))
		return -1;
	return REAL(writev)(fd, iov, cnt);
}

US_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	struct us_sock *s;

	if (write_pre(fd, flags, &s))
		return -1;
	return REAL(send)(fd, buf, n, flags);
}

US_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *sa, socklen_t len)
{
	struct us_sock *s;

	if (write_pre(fd, flags, &s))
		return -1;
	if (s) /* TCP ignores a destination */
		return REAL(send)(fd, buf, n, flags);
	return REAL(sendto)(fd, buf, n, flags, sa, len);
}

US_EXPORT ssize_t sendmsg(int fd, const struct msghdr *m, int flags)
{
	struct us_sock *s;
	struct msghdr copy;

	if (write_pre(fd, flags, &s))
		return -1;
	if (!s || !m->msg_name)
		return REAL(sendmsg)(fd, m, flags);
	copy = *m;
	copy.msg_name = NULL;
	copy.msg_namelen = 0;
	return REAL(sendmsg)(fd, &copy, flags);
}
