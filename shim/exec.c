/* The exec family. exec ends the stack thread with the old image, while
 * the sockets the program does not mark close-on-exec live on in the new
 * one: a keeper takes the connections over first and serves them from then
 * on (stackthread/keeper.c). glibc's exec functions call their execve
 * internally (not through us), so each is wrapped; posix_spawn is left
 * alone (a spawned child starts from nothing). The new image gets the
 * socket region (USTCP_REGION_FD, fdtab.c), so that the sockets it
 * inherits are still TCP sockets to it. After an exec that failed
 * the process goes on without its old stack: a socket it opens starts a
 * new one. */
#include <errno.h>
#include <stdarg.h>
#include <unistd.h>

#include "shim.h"

/* The environment the new image gets: the program's, plus the variable
 * that hands it the socket region (fdtab.c), built on the caller's stack
 * (exec may be called in a vfork child: no malloc). An environment of more
 * than ENV_ROOM variables goes as it is, and the new image does not know
 * the sockets it inherits. */
#define ENV_ROOM 4096
#define EXEC_WITH_REGION(call, envp)                                        \
	do {                                                                \
		char *room_[ENV_ROOM], var_[64], **env;                     \
		int e_;                                                     \
		us_stack_hand_over();                                       \
		env = us_exec_env((envp), room_, ENV_ROOM, var_);           \
		call;                                                       \
		e_ = errno;                                                 \
		us_exec_env_failed(env, (envp));                            \
		us_stack_exec_failed();                                     \
		errno = e_;                                                 \
		return -1;                                                  \
	} while (0)

US_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	EXEC_WITH_REGION(REAL(execve)(path, argv, env), envp);
}

US_EXPORT int execv(const char *path, char *const argv[])
{
	EXEC_WITH_REGION(REAL(execve)(path, argv, env), environ);
}

US_EXPORT int execvp(const char *file, char *const argv[])
{
	EXEC_WITH_REGION(REAL(execvpe)(file, argv, env), environ);
}

US_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	EXEC_WITH_REGION(REAL(execvpe)(file, argv, env), envp);
}

US_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	EXEC_WITH_REGION(REAL(fexecve)(fd, argv, env), envp);
}

/* execl, execlp, execle: the list becomes an array on the caller's stack,
 * as glibc builds it: counted first, then copied into an array just that
 * long. The bound keeps that array at 32 KiB; a longer list fails with
 * E2BIG, which the kernel's own argument limit makes any such list do. */
#define EXEC_ARGS_MAX 4096

/* How many arguments follow arg0, up to its NULL; -1 beyond the bound. */
static int count_args(const char *arg0, va_list ap)
{
	va_list aq;
	int n = 1;

	va_copy(aq, ap);
	for (const char *a = arg0; a; a = va_arg(aq, const char *)) {
		if (n++ >= EXEC_ARGS_MAX) {
			n = -1;
			break;
		}
	}
	va_end(aq);
	return n;
}

enum exec_kind { EXEC_PATH, EXEC_SEARCH, EXEC_ENV };

/* execl, execlp, execle: the list arg0, ... up to its NULL becomes argv (on
 * the stack: exec does not come back when it works); for EXEC_ENV the
 * pointer after the NULL is the environment. ap goes by pointer so that
 * what is read here is gone from the caller's list on every ABI. */
static int exec_list(enum exec_kind kind, const char *file, const char *arg0, va_list *ap)
{
	int n = count_args(arg0, *ap);

	if (n < 0) {
		errno = E2BIG;
		return -1;
	}
	char *argv[n];
	argv[0] = (char *)arg0;
	for (int i = 1; i < n; i++)
		argv[i] = va_arg(*ap, char *);
	switch (kind) {
	case EXEC_PATH:
		return execv(file, argv);
	case EXEC_SEARCH:
		return execvp(file, argv);
	default:
		return execve(file, argv, va_arg(*ap, char *const *));
	}
}

US_EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	int r;

	va_start(ap, arg);
	r = exec_list(EXEC_PATH, path, arg, &ap);
	va_end(ap);
	return r;
}

US_EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	int r;

	va_start(ap, arg);
	r = exec_list(EXEC_SEARCH, file, arg, &ap);
	va_end(ap);
	return r;
}

US_EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	int r;

	va_start(ap, arg);
	r = exec_list(EXEC_ENV, path, arg, &ap);
	va_end(ap);
	return r;
}
