/* The stack's own fds go above the program's range, out of its way: a
 * program that counts on socket() or open() giving the lowest free number,
 * or that closes every fd from 3 up, never meets them. */
#include <fcntl.h>

#include "fdbase.h"
#include "stack_impl.h"

int us_fd_base(void)
{
	static int base;

	if (!base)
		base = ust_fd_high_base();
	return base;
}

int us_fd_high(int fd)
{
	int h;

	if (fd < 0 || fd >= us_fd_base())
		return fd;
	h = REAL(fcntl)(fd, F_DUPFD_CLOEXEC, us_fd_base());
	if (h < 0)
		return fd; /* the upper half is full: keep the low number */
	REAL(close)(fd);
	return h;
}
