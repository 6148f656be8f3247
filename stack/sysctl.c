/* ust_sysctl_read, ust_sysctl_int (sysctl.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sysctl.h"

int ust_sysctl_read(const char *path, char *buf, size_t len)
{
	int fd, e;
	ssize_t n;

	if (len == 0)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* The system calls themselves: the library's read and close would
	 * first look the number up among the program's sockets, and a stale
	 * entry there would send a read on the stack thread to the stack
	 * thread. */
	n = syscall(SYS_read, fd, buf, len - 1);
	e = errno;
	syscall(SYS_close, fd);
	if (n < 0)
		return -e;
	buf[n] = 0;
	return (size_t)n == len - 1 ? -EFBIG : (int)n;
}

int ust_sysctl_int(const char *path, int dflt)
{
	char buf[32], *end;
	long v;

	if (ust_sysctl_read(path, buf, sizeof(buf)) <= 0)
		return dflt;
	errno = 0;
	v = strtol(buf, &end, 10);
	if (end == buf || errno || v < -2147483647L - 1 || v > 2147483647L)
		return dflt;
	return (int)v;
}
