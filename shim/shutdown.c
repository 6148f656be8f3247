/* shutdown. */
#include <errno.h>

#include "shim.h"
#include "tcp.h"

/* The sending side: the app end shuts, so the stack reads EOF after the
 * data and sends the FIN. First one byte more, the sentinel, which the
 * stack never reads unless the connection ends in order: a reset then
 * closes the stack end with it unread, and the kernel flags the app end
 * with POLLERR, as Linux's socket after a RST in FIN-WAIT (relay.c,
 * conn_died); a shut app end could not send that byte any more. */
static int shut_wr(int fd, struct us_sock *s, int how)
{
	struct us_call c;
	char b = 0;
	bool sentinel = false;

	if (us_call(&c, us_op_hold_last, s) == 0)
		sentinel = REAL(send)(fd, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1;
	int r = REAL(shutdown)(fd, how);
	/* Linux's socket polls writable once its sending side is shut,
	 * whatever is still queued: the stack takes everything out of the
	 * pair now. Served by another process, the pair drains as TCP sends. */
	c.u.shut.sentinel = sentinel && r == 0;
	us_call(&c, us_op_take_tail, s);
	return r;
}

/* Done on the app end: the stack reads EOF after the data (SHUT_WR) and
 * sends the FIN; SHUT_RD ends reading locally, as Linux's does, and the
 * stack keeps what arrives later for the program's reads (io.c). A
 * connecting socket is disconnected (C49). */
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
	if (st == UST_TCP_CLOSED)
		return (int)us_ret(-ENOTCONN);
	if (st == UST_TCP_SYN_SENT) {
		struct us_call c;
		c.u.shut.how = how;
		return (int)us_ret(us_call(&c, us_op_shutdown, s));
	}
	/* Before the app end shuts: the stack must not take the hang-up that
	 * follows the peer's FIN (or our own SHUT_RDWR) for a close (relay.c,
	 * app_closed), and must stop passing data into a pair that can no
	 * longer carry it. A socket another process's stack serves cannot
	 * keep it (EOPNOTSUPP): what arrives is dropped there. */
	if (how != SHUT_WR) {
		struct us_call c;
		c.u.shut.how = SHUT_RD;
		if (us_call(&c, us_op_shutdown, s) == 0)
			atomic_fetch_or(&s->flags, US_F_APP_SHUT_RD);
	}
	if (how == SHUT_RD)
		return REAL(shutdown)(fd, how);
	atomic_fetch_or(&s->flags, US_F_APP_SHUT);
	return shut_wr(fd, s, how);
}
