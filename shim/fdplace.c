/* epoll_create, epoll_create1, eventfd, pipe2, timerfd_create, signalfd:
 * libev makes its own fds (epoll, eventfd, timerfd) inside the stack
 * thread's loop; there these wrappers move them above the program's range
 * and tell the stack they are its own (a keeper keeps them). On any other
 * thread they are libc's, and the program's epoll instances are noted, so
 * that a socket given to the kernel keeps its registrations
 * (us_epoll_regs). Those libc did not make are noted where they come
 * in: inherited across exec (fdtab.c, adopt_inherited) or received with
 * SCM_RIGHTS (io.c); one made by a direct system call is not seen
 * (README: finding it would take a look at every open number at each
 * hand-over). */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "shim.h"

/* The numbers the program's epoll instances were made at: a hint, each
 * checked when read (the number may have been closed or reused since). */
#define EPOLL_HINTS 65536
static _Atomic uint64_t epoll_hint[EPOLL_HINTS / 64];

static void hint(int fd)
{
	if (fd >= 0 && fd < EPOLL_HINTS)
		atomic_fetch_or(&epoll_hint[fd / 64], 1ull << (fd % 64));
}

US_EXPORT int epoll_create1(int flags)
{
	int fd = REAL(epoll_create1)(flags);

	if (us_on_stack_thread())
		return us_stack_own_fd(fd);
	hint(fd);
	return fd;
}

/* Is epfd an epoll instance now? */
static bool is_epoll(int epfd)
{
	char path[40], target[32];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", epfd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = 0;
	return !strcmp(target, "anon_inode:[eventpoll]");
}

void us_epoll_note(int fd)
{
	struct stat st;

	/* An anonymous inode has no file type; only those are looked at. */
	if (fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == 0 && is_epoll(fd))
		hint(fd);
}

void us_epoll_note_rights(const struct msghdr *m)
{
	for (struct cmsghdr *c = m->msg_controllen ? CMSG_FIRSTHDR(m) : NULL; c; c = CMSG_NXTHDR((struct msghdr *)m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			us_epoll_note(fd);
		}
	}
}

/* epfd's registrations of fd's file (ino), from its fdinfo: "tfd: %8d
 * events: %8x data: %16llx pos:%lli ino:%lx sdev:%x" (fs/eventpoll.c,
 * ep_show_fdinfo). */
static unsigned regs_in(int epfd, int fd, ino_t ino, struct us_epoll_reg *out, unsigned max)
{
	char path[40], line[256];
	unsigned n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", epfd);
	if (!(f = fopen(path, "re")))
		return 0;
	while (n < max && fgets(line, sizeof(line), f)) {
		int tfd;
		unsigned events;
		unsigned long long data;
		long long pos;
		unsigned long tino;

		if (sscanf(line, "tfd: %d events: %x data: %llx pos:%lld ino:%lx", &tfd, &events, &data, &pos,
			   &tino) == 5 && tfd == fd && tino == (unsigned long)ino)
			out[n++] = (struct us_epoll_reg){ .epfd = epfd, .ev = { .events = events, .data.u64 = data } };
	}
	fclose(f);
	return n;
}

unsigned us_epoll_regs(int fd, struct us_epoll_reg *out, unsigned max)
{
	struct stat st;
	unsigned n = 0;

	if (fstat(fd, &st) < 0)
		return 0;
	for (unsigned w = 0; w < EPOLL_HINTS / 64 && n < max; w++) {
		uint64_t bits = atomic_load(&epoll_hint[w]);

		for (; bits && n < max; bits &= bits - 1) {
			int epfd = (int)(w * 64 + (unsigned)__builtin_ctzll(bits));

			if (is_epoll(epfd))
				n += regs_in(epfd, fd, st.st_ino, out + n, max - n);
		}
	}
	/* Out of the sets now: the old file may live on elsewhere (the
	 * stack's side holds it a while), and would go on reporting its
	 * own events under fd's number beside the new file's. */
	for (unsigned i = 0; i < n; i++)
		epoll_ctl(out[i].epfd, EPOLL_CTL_DEL, fd, NULL);
	return n;
}

void us_epoll_readd(int fd, struct us_epoll_reg *regs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		epoll_ctl(regs[i].epfd, EPOLL_CTL_ADD, fd, &regs[i].ev);
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
