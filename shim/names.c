/* getsockname, getpeername: what the stack thread published in the shared
 * slot; no word with it. */
#include <errno.h>

#include "shim.h"
#include "tcp.h"

US_EXPORT int getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
	struct us_sock *s = us_fd_lookup(fd);

	if (!s)
		return REAL(getsockname)(fd, sa, len);
	if (!sa || !len)
		return (int)us_ret(-EFAULT);
	us_put_end(s, false, sa, len);
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
	us_put_end(s, true, sa, len);
	return 0;
}
