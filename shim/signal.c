/* sigaction, signal, sysv_signal, bsd_signal, sigset, siginterrupt: passed
 * to libc unchanged; they only note that a handler may have changed, for
 * the one question a busy-polling read (io.c) must answer before it spins:
 * would the kernel's recv(2) be restarted after any handler that can run?
 *
 * A handler that runs while the read spins in user space returns into the
 * spin, which is a restart. The kernel restarts recv(2) after a handler
 * installed with SA_RESTART and fails it with EINTR after any other
 * (signal(7), "Interruption of system calls and library functions by signal
 * handlers"). Which signal will come is not known, so the answer is taken
 * from every handler installed: when all have SA_RESTART (or there are
 * none), the spin is exact; otherwise the read does not spin. The kernel's
 * table is read (64 rt_sigaction queries) only after a handler changed
 * through these calls. */
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

/* Bumped after every call that can change a handler or its flags. */
static _Atomic unsigned handlers_gen = 1;
/* The answer for a generation: gen << 8 | enum us_restart. */
static _Atomic uint64_t verdict_cache;

/* The kernel's struct sigaction (rt_sigaction(2)), not libc's. */
struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static void handlers_changed(void)
{
	atomic_fetch_add(&handlers_gen, 1);
}

/* Reads every action from the kernel, but for the two signals below
 * SIGRTMIN that glibc keeps for itself (its sigaction refuses them to
 * programs): SIGCANCEL acts only at cancellation points (the spin's
 * recv is one) and SIGSETXID has SA_RESTART, so neither changes the
 * answer. */
static enum us_restart scan_handlers(void)
{
	bool restart = false, norestart = false;

	for (int sig = 1; sig <= 64; sig++) {
		struct ksigaction ka;
		if (sig >= 32 && sig < SIGRTMIN)
			continue;
		if (syscall(SYS_rt_sigaction, sig, NULL, &ka, sizeof(ka.mask)) != 0)
			continue;
		if (ka.handler == (void *)SIG_DFL || ka.handler == (void *)SIG_IGN)
			continue;
		if (ka.flags & SA_RESTART)
			restart = true;
		else
			norestart = true;
	}
	if (restart && norestart)
		return US_RESTART_UNKNOWN;
	return norestart ? US_RESTART_NEVER : US_RESTART_ALWAYS;
}

enum us_restart us_restart_verdict(void)
{
	unsigned gen = atomic_load(&handlers_gen);
	uint64_t c = atomic_load(&verdict_cache);
	enum us_restart v;

	if (c >> 8 == gen)
		return (enum us_restart)(c & 0xff);
	v = scan_handlers();
	/* A handler that changed during the scan leaves the cache stale:
	 * store under the generation read before it, so the next call
	 * scans again. */
	atomic_store(&verdict_cache, (uint64_t)gen << 8 | v);
	return v;
}

US_EXPORT int sigaction(int sig, const struct sigaction *sa, struct sigaction *old)
{
	int r = REAL(sigaction)(sig, sa, old);

	if (sa)
		handlers_changed();
	return r;
}

sighandler_t bsd_signal(int sig, sighandler_t h); /* not in glibc's headers */

/* signal and the old names: each calls libc's internal sigaction, which no
 * preload sees. Where the libc lacks one of the old names, the program
 * cannot call it either. */
#define HANDLER_CALL(name)                                      \
	US_EXPORT sighandler_t name(int sig, sighandler_t h)    \
	{                                                       \
		sighandler_t r = REAL(name)(sig, h);            \
		handlers_changed();                             \
		return r;                                       \
	}

HANDLER_CALL(signal)
HANDLER_CALL(sysv_signal)
HANDLER_CALL(bsd_signal)
HANDLER_CALL(sigset)

US_EXPORT int siginterrupt(int sig, int flag)
{
	int r = REAL(siginterrupt)(sig, flag);

	handlers_changed();
	return r;
}
