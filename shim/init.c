/* The library's constructor and its fork handlers. */
#include <pthread.h>

#include "shim.h"

/* fork() while another thread starts the stack must not leave the child
 * with the start-up lock taken. The child's fd table will name our sockets
 * too: counted before the fork, so that the parent closing its copy right
 * after cannot look like the last close. (A keeper closes the program's
 * fds without the table: not counted.) The lock on other processes'
 * regions (SCM_RIGHTS) is held across the fork, taken last. */
static void atfork_prepare(void)
{
	us_news_flush();
	if (us_stack_fork_prepare())
		us_fd_inherited();
	us_fd_fork_lock();
}

static void atfork_parent(void)
{
	us_fd_fork_unlock();
	us_stack_fork_parent();
}

static void atfork_child(void)
{
	us_fd_fork_unlock();
	us_fd_forked();
	us_news_forget();
	us_stack_fork_child();
}

/* Binds libc's functions now, so that no later call (one from a signal
 * handler, say) does it for the first time. Calls made before this ran
 * bind them themselves. An exec'd image maps the sockets it inherited
 * before the program's first call on them. */
__attribute__((constructor)) static void shim_init(void)
{
	us_real();
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	us_fd_map_inherited();
}
