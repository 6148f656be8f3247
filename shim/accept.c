/* accept, accept4: a connection arrives as a token on the listener's pair
 * with its app end attached (stackthread/relay.c, deliver). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "counters.h"
#include "shim.h"

/* The listener's stack hands over what its queue holds, now; how many (0
 * when another process's stack serves it). If it cannot for want of fds,
 * it leaves an error token: the listener stays readable, as Linux's while
 * connections wait, and the next accept() fails the same way. */
static long retry_delivery(struct us_sock *s)
{
	struct us_call c;
	long n = us_call(&c, us_op_accept_retry, s);

	return n > 0 ? n : 0;
}

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
again:
	nfd = -1;
	m.msg_controllen = sizeof(cbuf);
	r = REAL(recvmsg)(fd, &m, (flags & SOCK_CLOEXEC) ? MSG_CMSG_CLOEXEC : 0);
	if (r < 0)
		return -1;
	for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&nfd, CMSG_DATA(cm), sizeof(int));
	if (r == 0)
		return (int)us_ret(-EINVAL); /* shut down: no longer listening */
	if (r == (ssize_t)sizeof(tok) && tok.magic == US_TOKEN_MAGIC && tok.idx == US_TOKEN_ERROR && nfd < 0) {
		/* The stack had no fds for the connection's pair. It tries
		 * again now: the program may have closed some since. */
		atomic_fetch_and(&s->flags, ~US_F_ERR_TOKEN);
		if (retry_delivery(s) > 0)
			goto again;
		return (int)us_ret(-(int)tok.gen);
	}
	if (nfd < 0 && (m.msg_flags & MSG_CTRUNC)) {
		/* No fd left for the app end: the kernel dropped it, and the
		 * connection is reset when the stack sees it go. Linux gives
		 * the same EMFILE but keeps the connection queued. The stack
		 * hands over what its queue still holds (or an error token):
		 * the listener stays readable while connections wait. */
		us_count(UST_EV_SOCK_NO_FD);
		retry_delivery(s);
		return (int)us_ret(-EMFILE);
	}
	if (r != (ssize_t)sizeof(tok) || tok.magic != US_TOKEN_MAGIC || nfd < 0) {
		if (nfd >= 0)
			REAL(close)(nfd);
		return (int)us_ret(-ECONNABORTED);
	}
	/* The stack made it non-blocking (relay.c, us_new_pair); the
	 * kernel's accept4 gives a blocking file unless asked. */
	if (!(flags & SOCK_NONBLOCK))
		REAL(fcntl)(nfd, F_SETFL, 0);
	/* A token from loopback (stackthread/loopback.c) carries the kernel's
	 * own socket: no slot. */
	cs = tok.idx == US_TOKEN_KERNEL ? NULL : us_sock_at_of(s, tok.idx);
	if (cs && atomic_load(&cs->gen) == tok.gen) {
		cs->app_fd = nfd;
		atomic_fetch_or(&cs->flags, US_F_ACCEPTED);
		us_fd_set(nfd, cs);
	}
	if (atomic_fetch_and(&s->flags, ~US_F_BACKLOGGED) & US_F_BACKLOGGED)
		us_sock_poke_owner(s);
	if (atomic_load(&s->family) == AF_INET6)
		us_put_sockaddr6(sa, len, &tok.raddr, tok.rport);
	else
		us_put_sockaddr(sa, len, us_pack(ust_ip6_to_v4(&tok.raddr), tok.rport));
	return nfd;
}

US_EXPORT int accept(int fd, struct sockaddr *sa, socklen_t *len)
{
	return accept4(fd, sa, len, 0);
}
