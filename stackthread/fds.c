/* The stack's own fds go above the program's range, out of its way: a
 * program that counts on socket() or open() giving the lowest free number,
 * or that closes every fd from 3 up, never meets them.
 *
 * Each number placed there is also marked, for close() (shim/close.c): a
 * program that closes every number up to its limit one by one (an old-style
 * daemon) must find the stack's fds absent, as they would be on Linux, and
 * not end its stack. A mark is a hint: the stack closes its fds without
 * clearing it (REAL(close), in many places), so close() hands a marked
 * number to the stack thread, which refuses to close one of its own and
 * otherwise clears the mark and closes it (us_stack_close_marked). The
 * shim's own fds, which no stack answers for, are not marked: close()
 * knows them (us_shim_owns_fd). A mark is set by whoever makes the
 * number (the stack thread, or a program thread making a socket's spares)
 * and read by any thread: atomic bits. */
#include <fcntl.h>

#include "fdbase.h"
#include "stack_impl.h"

/* Up to the kernel's default ceiling on fd numbers (fs.nr_open): 128 kB of
 * bss, touched only where the stack's numbers are. */
#define MARKED_FDS (1u << 20)
static _Atomic uint64_t marks[MARKED_FDS / 64];

int us_fd_base(void)
{
	static int base;

	if (!base)
		base = ust_fd_high_base();
	return base;
}

/* The fds libev watches (io.c says why they must be few and low): from the
 * first number select() cannot use (FD_SETSIZE), or the high base if the
 * fd limit puts that lower. */
#define FIXED_BASE 1024

int us_fd_fixed_base(void)
{
	return us_fd_base() < FIXED_BASE ? us_fd_base() : FIXED_BASE;
}

void us_fd_mark(int fd)
{
	if (fd >= 0 && (unsigned)fd < MARKED_FDS)
		atomic_fetch_or(&marks[fd / 64], 1ull << (fd % 64));
}

bool us_fd_marked(int fd)
{
	return fd >= 0 && (unsigned)fd < MARKED_FDS &&
	       (atomic_load_explicit(&marks[fd / 64], memory_order_relaxed) & (1ull << (fd % 64)));
}

void us_fd_unmark(int fd)
{
	if (fd >= 0 && (unsigned)fd < MARKED_FDS)
		atomic_fetch_and(&marks[fd / 64], ~(1ull << (fd % 64)));
}

/* A marked copy of fd at base or above. */
static int dup_at(int fd, int base)
{
	int h = REAL(fcntl)(fd, F_DUPFD_CLOEXEC, base);

	if (h >= 0)
		us_fd_mark(h);
	return h;
}

int us_fd_dup_high(int fd)
{
	return dup_at(fd, us_fd_base());
}

/* fd moved to base or above (unless it is there already), marked. */
static int fd_move(int fd, int base)
{
	int h;

	if (fd < 0)
		return fd;
	if (fd >= base) {
		us_fd_mark(fd);
		return fd;
	}
	h = dup_at(fd, base);
	if (h < 0)
		return fd; /* no room up there: keep the low number */
	REAL(close)(fd);
	return h;
}

int us_fd_high(int fd)
{
	return fd_move(fd, us_fd_base());
}

int us_fd_fixed(int fd)
{
	return fd_move(fd, us_fd_fixed_base());
}
