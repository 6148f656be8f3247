/* The stack's own fds go above the program's range, out of its way: a
 * program that counts on socket() or open() giving the lowest free number,
 * or that closes every fd from 3 up, never meets them. */
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

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


/* The process's id without a system call: the checks "is this the process
 * the stack serves?" run several times per connection, and getpid() costs
 * one (2.7 µs each on the PVM guest issue 18 was measured on). It is kept
 * in a page with MADV_WIPEONFORK, which reads 0 in a child however it was
 * made (fork, _Fork, clone without CLONE_VM: no atfork handler needed), so
 * a child fills it with its own. A vfork child shares the page and reads
 * the parent's id; it may only exec or _exit, which ask getpid() itself.
 * Without the page (a kernel before 4.14) every call asks. Safe in a
 * signal handler: the page is mapped with a CAS, never under a lock. */
pid_t us_pid(void)
{
	static _Atomic(_Atomic pid_t *) page;
	_Atomic pid_t *p = atomic_load_explicit(&page, memory_order_acquire), *none = NULL;
	pid_t pid;

	if (!p) {
		void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (m == MAP_FAILED)
			return getpid();
		if (madvise(m, 4096, MADV_WIPEONFORK) < 0) {
			munmap(m, 4096);
			return getpid();
		}
		if (!atomic_compare_exchange_strong(&page, &none, (_Atomic pid_t *)m))
			munmap(m, 4096); /* another thread's is in place */
		p = atomic_load_explicit(&page, memory_order_acquire);
	}
	pid = atomic_load_explicit(p, memory_order_relaxed);
	if (!pid) {
		pid = getpid();
		atomic_store_explicit(p, pid, memory_order_relaxed);
	}
	return pid;
}
