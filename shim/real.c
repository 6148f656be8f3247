/* libc's own functions, found once with dlsym(RTLD_NEXT): the one table
 * both halves of the library call libc through (stackthread.h). pthread_once
 * makes the first caller bind them all; a call arriving before the
 * library's constructor (another library's constructor opening a socket)
 * lands here first and works the same. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>

#include "shim.h"

static struct us_real real;
static pthread_once_t real_once = PTHREAD_ONCE_INIT;

static void *must(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);

	/* Without libc's socket calls nothing can work; there is no errno to
	 * return from a constructor-time failure, so stop here. */
	if (!p && name[0] != 'c') /* close_range is missing from old libcs */
		abort();
	return p;
}

/* Old names a libc may lack (wrapped only where the libc has them). */
static void *maybe(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

static void bind_all(void)
{
#define B(fn) real.fn = must(#fn)
	B(socket); B(connect); B(bind); B(listen); B(accept4); B(shutdown);
	B(close); B(close_range); B(dup); B(dup2); B(dup3); B(fcntl);
	B(getsockname); B(getpeername); B(getsockopt); B(setsockopt); B(ioctl);
	B(read); B(readv); B(recv); B(recvfrom); B(recvmsg);
	B(write); B(writev); B(send); B(sendto); B(sendmsg);
	B(epoll_create1); B(eventfd); B(pipe2); B(timerfd_create); B(signalfd);
	B(execve); B(execv); B(execvp); B(execvpe); B(fexecve);
	B(sigaction); B(signal);
#undef B
	real.sysv_signal = maybe("sysv_signal");
	real.bsd_signal = maybe("bsd_signal");
	real.sigset = maybe("sigset");
	real.siginterrupt = maybe("siginterrupt");
}

const struct us_real *us_real(void)
{
	pthread_once(&real_once, bind_all);
	return &real;
}
