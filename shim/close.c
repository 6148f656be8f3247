/* close, close_range, dup, dup2, dup3 and fcntl's F_DUPFD: keeping the fd
 * table right. The close itself is the kernel's: when the program's last
 * reference to an app end goes (by close, exit, close_range, dup2 over it),
 * the stack end hangs up and the stack thread closes the connection. So a
 * close needs no word with the stack thread and is safe in a signal
 * handler, but for one of the numbers the stack marked as perhaps its own
 * (stackthread/fds.c), which the stack thread closes or refuses: that
 * close waits for the stack thread, as any call does. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"
#include "tcp.h"

/* No fd of s is left in any process (shim.h). The mark goes on only while
 * no entry names s: a process that enters s meanwhile (a receiver of
 * SCM_RIGHTS, as the sender closes its copy) holds it, and its own close
 * lets go. A second let-go of the same close (two closers that both saw
 * 0) finds the mark on and does nothing, so the slot is freed once. */
void us_sock_let_go(struct us_sock *s)
{
	unsigned life = atomic_load(&s->life);
	int flags;

	do {
		if ((life & US_LIFE_REFS) || (life & US_L_APP_CLOSED))
			return;
	} while (!atomic_compare_exchange_weak(&s->life, &life, life | US_L_APP_CLOSED));
	flags = atomic_load(&s->flags);
	if (life & US_L_DETACHED)
		us_sock_free(s);
	else if ((flags & US_F_APP_SHUT) || !(flags & US_F_PAIRED))
		us_sock_poke_owner(s); /* its relay waits parked for this close (relay.c) */
}

/* The program is done with this number of s. A socket the stack already
 * let go of (TCP closed) is freed here. */
static void forget(int fd, struct us_sock *s)
{
	if (us_fd_clear(fd) != 0)
		return; /* a dup or another process's copy still names it */
	us_sock_let_go(s);
}

/* The program ended (stackthread/keeper.c): its fds close with it, as the
 * kernel's exit closes them. Each entry of its table goes, and a socket no
 * process names any more is let go as by close(), so that the relay takes
 * a shut socket's hang-up for the close it now is; one that another
 * process still names (a forked child, a receiver of SCM_RIGHTS) stays
 * held. Run by the guardian once every thread of the program is gone:
 * nothing else uses the table then. */
void us_fd_close_all(pid_t program)
{
	unsigned top = us_fd_top();

	if (!us_fd_table_of(program))
		return;
	for (unsigned fd = 0; fd < top; fd++) {
		struct us_sock *s = us_fd_get((int)fd);
		if (s)
			forget((int)fd, s);
	}
}

/* SO_LINGER {1, N}: close() waits until the FIN is acknowledged, at most N
 * seconds (C28). The FIN goes now (SHUT_WR on the app end); with unread
 * data there is no wait: the close resets the connection. */
static void linger_wait(int fd, struct us_sock *s)
{
	int unread = 0, st;
	long waited_ms = 0, limit_ms = (long)atomic_load(&s->linger_s) * 1000;
	struct timespec ts = { 0, 5 * 1000 * 1000 };

	st = atomic_load(&s->state);
	if (!UST_TCP_SYNCHRONIZED(st) || REAL(ioctl)(fd, FIONREAD, &unread) < 0 || unread > 0)
		return;
	REAL(shutdown)(fd, SHUT_WR);
	while (waited_ms < limit_ms) {
		st = atomic_load(&s->state);
		if (st == UST_TCP_FIN_WAIT_2 || st == UST_TCP_TIME_WAIT || st == UST_TCP_CLOSED)
			return;
		if (nanosleep(&ts, NULL) < 0 && errno == EINTR)
			return;
		waited_ms += 5;
	}
}

US_EXPORT int close(int fd)
{
	struct us_sock *s = us_fd_get(fd);

	if (s) {
		if (atomic_load(&s->linger_on) && atomic_load(&s->linger_s) > 0)
			linger_wait(fd, s);
		forget(fd, s);
	} else {
		long r;

		us_fd_clear(fd); /* a stale entry */
		if (us_shim_owns_fd(fd)) {
			errno = EBADF; /* the library's own: not the program's to close */
			return -1;
		}
		if (!us_fd_marked(fd))
			return REAL(close)(fd);
		r = us_stack_close_marked(fd); /* perhaps the stack's */
		if (r < 0) {
			errno = (int)-r;
			return -1;
		}
		return 0;
	}
	return REAL(close)(fd);
}

/*
 * A program that closes "every other fd" (daemons, ssh, launchers: with
 * close_range or closefrom) must not close the stack's own fds (the packet
 * socket, the relays' stack ends, the eventfds) that live in its table. The
 * stack thread knows them and does the closing, sparing them. With
 * CLOSE_RANGE_CLOEXEC nothing closes now (the stack's fds are close-on-exec
 * already); with CLOSE_RANGE_UNSHARE the closing happens in a table the
 * stack thread does not share. Both, and a process without a stack, go to
 * the kernel as they are.
 */
static int real_close_range(unsigned first, unsigned last, int flags)
{
	if (REAL(close_range))
		return REAL(close_range)(first, last, flags);
	return (int)syscall(SYS_close_range, first, last, flags);
}

US_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	int r, kept;

	if (first > last || (flags & ~(CLOSE_RANGE_CLOEXEC | CLOSE_RANGE_UNSHARE)))
		return REAL(close_range) ? REAL(close_range)(first, last, flags)
					 : (int)syscall(SYS_close_range, first, last, flags); /* EINVAL */
	if (!(flags & CLOSE_RANGE_CLOEXEC)) {
		unsigned top = us_fd_top();
		for (unsigned fd = first; fd <= last && fd < top; fd++) {
			struct us_sock *s = us_fd_get((int)fd);
			if (s)
				forget((int)fd, s);
			else
				us_fd_clear((int)fd);
		}
	}
	if (!flags && (r = us_stack_close_range(first, last)) != -EOPNOTSUPP) {
		if (r < 0) {
			errno = -r;
			return -1;
		}
		return 0;
	}
	/* No stack here: the fd that reaches the stack serving the
	 * inherited sockets stays (a re-executed sshd closes all others). */
	kept = us_stack_kept_fd();
	if (kept >= 0 && (unsigned)kept >= first && (unsigned)kept <= last) {
		r = (unsigned)kept > first ? real_close_range(first, (unsigned)kept - 1, flags) : 0;
		if (r == 0 && (unsigned)kept < last)
			r = real_close_range((unsigned)kept + 1, last, flags);
		return r;
	}
	return real_close_range(first, last, flags);
}

/* glibc's closefrom calls the close_range system call itself, past our
 * close_range. */
US_EXPORT void closefrom(int lowfd)
{
	if (lowfd < 0)
		lowfd = 0;
	close_range((unsigned)lowfd, ~0u, 0);
}

/* newfd now names what oldfd names (and no longer what it named). */
static void copied(int oldfd, int newfd)
{
	struct us_sock *s = us_fd_get(oldfd);

	if (s)
		us_fd_set(newfd, s);
	else
		us_fd_clear(newfd);
}

US_EXPORT int dup(int oldfd)
{
	int r = REAL(dup)(oldfd);

	if (r >= 0)
		copied(oldfd, r);
	return r;
}

US_EXPORT int dup2(int oldfd, int newfd)
{
	struct us_sock *victim = oldfd != newfd ? us_fd_get(newfd) : NULL;
	int r = REAL(dup2)(oldfd, newfd);

	if (r >= 0 && oldfd != newfd) {
		if (victim)
			forget(newfd, victim);
		copied(oldfd, newfd);
	}
	return r;
}

US_EXPORT int dup3(int oldfd, int newfd, int flags)
{
	struct us_sock *victim = oldfd != newfd ? us_fd_get(newfd) : NULL;
	int r = REAL(dup3)(oldfd, newfd, flags);

	if (r >= 0) {
		if (victim)
			forget(newfd, victim);
		copied(oldfd, newfd);
	}
	return r;
}

/* fcntl's argument is an int or a pointer; both travel as a word. */
static int do_fcntl(int fd, int cmd, void *arg)
{
	int r = REAL(fcntl)(fd, cmd, arg);

	if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
		copied(fd, r);
	return r;
}

US_EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return do_fcntl(fd, cmd, arg);
}

US_EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return do_fcntl(fd, cmd, arg);
}
