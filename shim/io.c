/* The read and write families: the kernel moves the bytes (the app end is a
 * real socket); these wrappers only make the errors TCP's. They look the fd
 * up in the table (an array read) and otherwise go straight to libc.
 *
 * Reading: an AF_UNIX socket knows one error, the ECONNRESET the stack
 * provokes when TCP dies; it stands for the socket's pending error
 * (ECONNRESET, ETIMEDOUT, ECONNREFUSED, EHOSTUNREACH…), reported once, then
 * 0. Writing: TCP reports a pending error before EPIPE, without SIGPIPE;
 * AF_UNIX would say EPIPE with SIGPIPE, so the error is taken first. A
 * socket that was never connected gives ENOTCONN to a reader and EPIPE (and
 * SIGPIPE) to a writer, instead of blocking on the filler. */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "shim.h"
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
	return read_post(s, REAL(read)(fd, buf, n));
}

US_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	return read(fd, buf, n < buflen ? n : buflen);
}

US_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	struct us_sock *s;

	if (read_pre(fd, &s))
		return -1;
	return read_post(s, REAL(readv)(fd, iov, cnt));
}

US_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	struct us_sock *s;

	if (read_pre(fd, &s))
		return -1;
	return read_post(s, REAL(recv)(fd, buf, n, flags));
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
	return read_post(s, REAL(recv)(fd, buf, n, flags));
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
	name = m->msg_name;
	m->msg_name = NULL;
	r = REAL(recvmsg)(fd, m, flags);
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
