/* epoll_create, epoll_create1, eventfd, pipe2, timerfd_create, signalfd:
 * libev makes its own fds (epoll, eventfd, timerfd) inside the stack
 * thread's loop; there these wrappers move them above the program's range
 * and tell the stack they are its own (a keeper keeps them). On any other
 * thread they are libc's. */
#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "shim.h"

US_EXPORT int epoll_create1(int flags)
{
	int fd = REAL(epoll_create1)(flags);
	return us_on_stack_thread() ? us_stack_own_fd(fd) : fd;
}

US_EXPORT int epoll_create(int size)
{
	if (size <= 0) {
		errno = EINVAL;
		return -1;
	}
	return epoll_create1(0);
}

US_EXPORT int eventfd(unsigned count, int flags)
{
	int fd = REAL(eventfd)(count, flags);
	return us_on_stack_thread() ? us_stack_own_fd(fd) : fd;
}

US_EXPORT int pipe2(int fds[2], int flags)
{
	int r = REAL(pipe2)(fds, flags);
	if (r == 0 && us_on_stack_thread()) {
		fds[0] = us_stack_own_fd(fds[0]);
		fds[1] = us_stack_own_fd(fds[1]);
	}
	return r;
}

US_EXPORT int timerfd_create(int clock, int flags)
{
	int fd = REAL(timerfd_create)(clock, flags);
	return us_on_stack_thread() ? us_stack_own_fd(fd) : fd;
}

US_EXPORT int signalfd(int fd, const sigset_t *mask, int flags)
{
	int r = REAL(signalfd)(fd, mask, flags);
	return us_on_stack_thread() && fd == -1 ? us_stack_own_fd(r) : r;
}
