/* shutdown. */
#include <errno.h>

#include "shim.h"
#include "tcp.h"

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
	/* Before the app end shuts: the stack must not take the hang-up that
	 * follows the peer's FIN for a close (relay.c, app_closed). */
	if (how != SHUT_RD)
		atomic_fetch_or(&s->flags, US_F_APP_SHUT);
	return REAL(shutdown)(fd, how);
}
