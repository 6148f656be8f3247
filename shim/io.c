/* The read and write families: the kernel moves the bytes (the app end is a
 * real socket); these wrappers make the errors TCP's, and with busy polling
 * on let a blocking read spin before it sleeps (below). They look the fd up
 * in the table (an array read) and otherwise go straight to libc.
 *
 * Reading: an AF_UNIX socket knows one error, the ECONNRESET the stack
 * provokes when TCP dies; it stands for the socket's pending error
 * (ECONNRESET, ETIMEDOUT, ECONNREFUSED, EHOSTUNREACH…), reported once, then
 * 0. Writing: TCP reports a pending error before EPIPE, without SIGPIPE;
 * AF_UNIX would say EPIPE with SIGPIPE, so the error is taken first. A
 * socket that was never connected gives ENOTCONN to a reader and EPIPE (and
 * SIGPIPE) to a writer, as Linux's (AF_UNIX would say EINVAL and ENOTCONN
 * on the unconnected app end, or block on a listener's filler). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
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
	/* Fast Open on the client's side: the stack keeps no cookies, so it
	 * answers as Linux does with net.ipv4.tcp_fastopen's client bit off,
	 * before anything else (tcp_sendmsg_fastopen), in any state. */
	if (flags & MSG_FASTOPEN) {
		errno = EOPNOTSUPP;
		return -1;
	}
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

/* ---- blocking reads: busy polling ----
 *
 * With USTCP_BUSY_POLL (or the socket's SO_BUSY_POLL) set, a blocking read
 * that finds nothing tries again with MSG_DONTWAIT, yielding the CPU
 * between tries, for that many microseconds before it sleeps in recv(2) as
 * always: a reply that comes within the spin is taken without the wake-up
 * of a sleeping thread, as Linux's sk_busy_loop does for a reader. Without
 * busy polling the read is the kernel's, untouched.
 *
 * A signal handler that runs during the spin returns into it, which is the
 * kernel's restart; so a read spins only where that is what the kernel
 * would do: every handler installed has SA_RESTART (us_restart_verdict,
 * asked again on every turn, so a handler installed meanwhile stops the
 * spin) and no SO_RCVTIMEO is set (a timed wait ends with EINTR after any
 * handler). MSG_WAITALL, SO_RCVLOWAT above 1 and any flag but MSG_PEEK and
 * MSG_CMSG_CLOEXEC wait for more than "some bytes": no spin either; nor on
 * a thread allowed on one CPU only (ust_may_spin).
 *
 * (Waiting in poll(POLLIN) instead of recv(2) would sleep through the
 * needless wake-up AF_UNIX's write space gives a reader when the stack
 * thread takes the program's bytes, and halves the reader's switches per
 * request; measured, it made request and response no faster here:
 * docs/architecture.md §3.) */

/* One try at the read; flags are the program's, plus MSG_DONTWAIT or not.
 * The system call is the one the program made (read, readv, recvfrom or
 * recvmsg) whenever no flag is added: a seccomp filter sees what it would
 * see on Linux (sshd's privilege-separated child is killed for a recvmsg
 * its read() did not ask for). */
enum rd_kind { RD_READ, RD_READV, RD_RECV, RD_RECVMSG };

struct rd_call {
	int fd;
	struct msghdr *m;
	int flags;
	enum rd_kind kind;
};

static ssize_t rd_try(const struct rd_call *rc, int extra)
{
	const struct iovec *iov = rc->m->msg_iov;

	switch (extra || rc->m->msg_control ? RD_RECVMSG : rc->kind) {
	case RD_READ:
		if (!rc->flags)
			return REAL(read)(rc->fd, iov[0].iov_base, iov[0].iov_len);
		break;
	case RD_READV:
		if (!rc->flags)
			return REAL(readv)(rc->fd, iov, (int)rc->m->msg_iovlen);
		break;
	case RD_RECV:
		return REAL(recv)(rc->fd, iov[0].iov_base, iov[0].iov_len, rc->flags);
	case RD_RECVMSG:
		break;
	}
	return REAL(recvmsg)(rc->fd, rc->m, rc->flags | extra);
}

/* Whether SO_RCVTIMEO or SO_RCVLOWAT (once a program set one of them) keeps
 * the read from spinning. */
static bool rcv_limited(int fd, struct us_sock *s)
{
	struct timeval tv;
	socklen_t len = sizeof(tv);
	int lowat = 1;
	socklen_t ilen = sizeof(lowat);

	if (!(atomic_load(&s->flags) & US_F_RCVOPTS))
		return false;
	if (REAL(getsockopt)(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, &ilen) < 0 || lowat > 1)
		return true;
	return REAL(getsockopt)(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) < 0 || tv.tv_sec || tv.tv_usec;
}

static long long mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* How long a blocking read spins, in microseconds: the socket's
 * SO_BUSY_POLL once set (the kernel keeps it on the app end), else
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

/* Tries for up to us microseconds; the last try's result (EAGAIN: nothing
 * came, or a handler changed and the spin stopped). */
static ssize_t spin_read(const struct rd_call *rc, unsigned us)
{
	long long end = mono_us() + us;
	ssize_t r;

	for (;;) {
		r = rd_try(rc, MSG_DONTWAIT);
		if (r >= 0 || errno != EAGAIN || mono_us() >= end || us_restart_verdict() != US_RESTART_ALWAYS)
			return r;
		sched_yield();
	}
}

static bool may_spin(struct us_sock *s, const struct rd_call *rc, unsigned *us)
{
	int fl;

	if (rc->flags & ~(MSG_PEEK | MSG_CMSG_CLOEXEC))
		return false;
	*us = busy_poll_of(rc->fd, s);
	if (!*us || us_restart_verdict() != US_RESTART_ALWAYS || rcv_limited(rc->fd, s) || !ust_may_spin())
		return false;
	fl = REAL(fcntl)(rc->fd, F_GETFL);
	return fl >= 0 && !(fl & O_NONBLOCK);
}

/* The app end reads 0 once the program shut its receiving side; what TCP
 * queued since is taken from the stack (us_op_read_held), as Linux's read
 * after SHUT_RD returns what arrived, then 0. */
static ssize_t rd_held(struct us_sock *s, const struct rd_call *rc, ssize_t r)
{
	struct us_held_read h = { .m = rc->m, .flags = rc->flags };
	struct us_call c;
	long n;

	if (r != 0 || !(atomic_load(&s->flags) & US_F_APP_SHUT_RD))
		return r;
	c.u.out = &h;
	n = us_call(&c, us_op_read_held, s);
	return n > 0 ? n : 0;
}

static ssize_t rd_blocking(struct us_sock *s, const struct rd_call *rc)
{
	unsigned us;
	ssize_t r;

	if (!s)
		return rd_try(rc, 0);
	if (!may_spin(s, rc, &us))
		return rd_held(s, rc, rd_try(rc, 0));
	r = spin_read(rc, us);
	if (r >= 0 || errno != EAGAIN)
		return rd_held(s, rc, r);
	return rd_held(s, rc, rd_try(rc, 0));
}

static ssize_t rd_buf(struct us_sock *s, int fd, void *buf, size_t n, int flags, enum rd_kind kind)
{
	struct iovec iov = { .iov_base = buf, .iov_len = n };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct rd_call rc = { .fd = fd, .m = &m, .flags = flags, .kind = kind };

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
	return read_post(s, rd_buf(s, fd, buf, n, 0, RD_READ));
}

US_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	return read(fd, buf, n < buflen ? n : buflen);
}

US_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	struct us_sock *s;

	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)cnt };
	struct rd_call rc = { .fd = fd, .m = &m, .kind = RD_READV };

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
	return read_post(s, rd_buf(s, fd, buf, n, flags, RD_RECV));
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
	return read_post(s, rd_buf(s, fd, buf, n, flags, RD_RECV));
}

US_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
				 struct sockaddr *sa, socklen_t *len)
{
	return recvfrom(fd, buf, n < buflen ? n : buflen, flags, sa, len);
}

/* TCP_INQ: the bytes left to read after a read, as Linux's tcp_inq_hint
 * counts them (rcv_nxt - copied_seq): the peer's FIN among them once it
 * came, so one more than the data then, and 1 when no data is left. Here:
 * what the app end holds, and the FIN once TCP has it (the mirrored state),
 * or, once TCP is closed in order (not reset or timed out: Linux's SOCK_DONE
 * is tcp_fin's alone), once the stack shut its end of the pair after the
 * last byte (a program's own SHUT_RD shuts the app end's reading, which
 * says nothing of a FIN). Not counted: bytes TCP holds outside the pair,
 * because the pair is full (its own are many then, and "more to read" is
 * what a reader asks), below SO_RCVLOWAT's mark, or after the program's
 * SHUT_RD (ustcp(7), "Socket options"). */
int us_inq_hint(int fd, struct us_sock *s)
{
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };
	int inq = 0, st = atomic_load(&s->state);
	bool fin = UST_TCP_RCVD_FIN(st);

	if (REAL(ioctl)(fd, FIONREAD, &inq) < 0 || inq < 0)
		inq = 0;
	if (!fin && st == UST_TCP_CLOSED && !atomic_load(&s->hard_err) &&
	    !(atomic_load(&s->flags) & US_F_APP_SHUT_RD))
		fin = poll(&p, 1, 0) == 1 && (p.revents & POLLRDHUP);
	return inq + fin;
}

/* Linux's put_cmsg of TCP_CM_INQ after what the app end's recvmsg put in
 * the control buffer (cap bytes in all): cut to the room left, with
 * MSG_CTRUNC, and none without room for a header. */
static void put_inq(struct msghdr *m, size_t cap, int inq)
{
	size_t used = m->msg_control ? m->msg_controllen : 0, left = cap > used ? cap - used : 0;
	size_t n = CMSG_LEN(sizeof(inq));
	struct cmsghdr h = { .cmsg_level = SOL_TCP, .cmsg_type = TCP_CM_INQ };
	char *at = (char *)m->msg_control + used;

	if (!m->msg_control || left < sizeof(h)) {
		m->msg_flags |= MSG_CTRUNC;
		return;
	}
	if (left < n) {
		m->msg_flags |= MSG_CTRUNC;
		n = left;
	}
	h.cmsg_len = n;
	memcpy(at, &h, sizeof(h));
	memcpy(at + CMSG_LEN(0), &inq, n - CMSG_LEN(0));
	m->msg_controllen = used + (CMSG_SPACE(sizeof(inq)) < left ? CMSG_SPACE(sizeof(inq)) : left);
}

US_EXPORT ssize_t recvmsg(int fd, struct msghdr *m, int flags)
{
	struct us_sock *s;
	size_t cap;
	void *name;
	ssize_t r;

	if (read_pre(fd, &s))
		return -1;
	if (!s) {
		r = REAL(recvmsg)(fd, m, flags);
		if (r >= 0 && m->msg_controllen)
			us_epoll_note_rights(m); /* an epoll set passed in */
		return r;
	}
	struct rd_call rc = { .fd = fd, .m = m, .flags = flags, .kind = RD_RECVMSG };

	cap = m->msg_controllen;
	name = m->msg_name;
	m->msg_name = NULL;
	r = read_post(s, rd_blocking(s, &rc));
	m->msg_name = name;
	m->msg_namelen = 0;
	if (r >= 0 && (atomic_load(&s->flags) & US_F_INQ) && !(flags & MSG_ERRQUEUE))
		put_inq(m, cap, us_inq_hint(fd, s));
	return r;
}

/* ---- writing ---- */

/* MSG_MORE: Linux pushes the call's bytes as under TCP_CORK (tcp_push
 * with TCP_NAGLE_CORK), so a partial segment waits for the next send, an
 * ACK, or the probe timer. The stack holds them (UST_TCP_OPT_MORE) from
 * before they enter the pair; the next write without the flag pushes
 * them once it is in the pair. AF_UNIX takes no MSG_MORE of its own.
 * MSG_OOB: the call's last byte is urgent (stack/tcp_urg.c); on AF_UNIX
 * the flag would take that byte out of the stream, so the bytes go in
 * band, held as by MSG_MORE, and the stack is told where the mark is once
 * they are in the pair: the segment with the byte carries the pointer.
 * Returns the flags for the app end. */
static int send_pre(struct us_sock *s, int flags)
{
	struct us_call c;

	if (!s || !(flags & (MSG_MORE | MSG_OOB)))
		return flags;
	atomic_fetch_or(&s->flags, US_F_MORE);
	c.u.opt.level = IPPROTO_TCP;
	c.u.opt.name = UST_TCP_OPT_MORE;
	c.u.opt.val = 1;
	us_call(&c, us_op_setopt, s);
	return flags & ~(MSG_MORE | MSG_OOB);
}

static ssize_t send_post(struct us_sock *s, int flags, ssize_t r)
{
	struct us_call c;
	int e = errno;

	if (!s)
		return r;
	if ((flags & MSG_OOB) && r > 0)
		us_call(&c, us_op_urgent, s);
	if (!(flags & MSG_MORE) && (atomic_load(&s->flags) & US_F_MORE)) {
		atomic_fetch_and(&s->flags, ~US_F_MORE);
		c.u.opt.level = IPPROTO_TCP;
		c.u.opt.name = UST_TCP_OPT_MORE;
		c.u.opt.val = 0;
		us_call(&c, us_op_setopt, s);
	}
	errno = e;
	return r;
}

US_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	struct us_sock *s;

	if (write_pre(fd, 0, &s))
		return -1;
	return send_post(s, 0, REAL(write)(fd, buf, n));
}

US_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	struct us_sock *s;

	if (write_pre(fd, 0, &s))
		return -1;
	return send_post(s, 0, REAL(writev)(fd, iov, cnt));
}

US_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	struct us_sock *s;

	if (write_pre(fd, flags, &s))
		return -1;
	return send_post(s, flags, REAL(send)(fd, buf, n, send_pre(s, flags)));
}

US_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *sa, socklen_t len)
{
	struct us_sock *s;

	if (write_pre(fd, flags, &s))
		return -1;
	if (s) /* TCP ignores a destination */
		return send_post(s, flags, REAL(send)(fd, buf, n, send_pre(s, flags)));
	return REAL(sendto)(fd, buf, n, flags, sa, len);
}

US_EXPORT ssize_t sendmsg(int fd, const struct msghdr *m, int flags)
{
	struct us_sock *s;
	struct msghdr copy;

	if (write_pre(fd, flags, &s))
		return -1;
	if (!s)
		return REAL(sendmsg)(fd, m, flags);
	copy = *m;
	copy.msg_name = NULL;
	copy.msg_namelen = 0;
	return send_post(s, flags, REAL(sendmsg)(fd, &copy, send_pre(s, flags)));
}
