/* libustcp.so's interposer: the overridden calls, run on the program's
 * threads. Each call family has its file; each asks "is this fd ours?"
 * first and otherwise goes straight to libc:
 *   real.c      libc's functions, bound once under pthread_once
 *   init.c      the constructor and the fork handlers
 *   fdtab.c     the shared socket slots and the fd table
 *   socket.c    socket, bind, listen (and the hand-back to the kernel)
 *   connect.c   connect
 *   accept.c    accept, accept4
 *   names.c     getsockname, getpeername
 *   shutdown.c  shutdown
 *   close.c     close, close_range, dup, dup2, dup3, fcntl, fcntl64
 *   io.c        the read and write families
 *   signal.c    sigaction and the other handler calls (noted for io.c's spin)
 *   sockopt.c   getsockopt, setsockopt, ioctl
 *   fdplace.c   epoll_create(1), eventfd, pipe2, timerfd_create, signalfd
 *   exec.c      the exec family
 *   exit.c      _exit, _Exit
 * What the stack thread offers and what both sides share is in
 * stackthread/stackthread.h, the one contract between them; nothing here
 * touches protocol state.
 *
 * Three kinds of state:
 *   - struct us_sock, in a region shared by every process forked from this
 *     one (stackthread.h);
 *   - the stack thread's own, private to stackthread/;
 *   - the fd table: program fd -> socket, a cache kept right by the
 *     overridden close/dup calls and checked against the socket's inode. */
#ifndef USTCP_SHIM_H
#define USTCP_SHIM_H

#include <sys/epoll.h>
#include "../stackthread/stackthread.h"

#define US_EXPORT __attribute__((visibility("default")))

/* ---- the fd table (fdtab.c). Entries name a socket by slot and
 * generation. ---- */

void us_fd_set(int fd, struct us_sock *s);
/* Returns how many entries (all processes) still name the socket fd
 * named, or -1 if it named none. */
int us_fd_clear(int fd);
/* Is the fd table this process's copy counted for pid (fdtab.c)? */
bool us_fd_table_of(pid_t pid);
/* socket.c: a new ustcp socket of this family in a slot of its own (*sp):
 * its app end's number (close-on-exec, blocking), or -errno. */
int us_socket_new(int domain, int v6only, struct us_sock **sp);
/* A new AF_INET6 socket's IPv6 state the engine needs told (sockopt.c):
 * no flow label when net.ipv6.auto_flowlabels gives none by default. */
void us_ip6_socket_init(struct us_sock *s);
/* Puts the file k at fd's number in place of s's app end: the timeouts
 * set on the app end and the epoll registrations go over, and k is
 * closed. How many fd-table entries (all processes) still name s, or
 * -errno (fd unchanged). */
int us_fd_replace(int fd, struct us_sock *s, int k);
/* No fd of s is left in any process (us_fd_clear gave 0): frees a slot
 * the stack let go of, or tells the stack (close.c). Signal-safe. */
void us_sock_let_go(struct us_sock *s);
/* A forked child's table will name the same sockets once more (called
 * before the fork). */
void us_fd_inherited(void);
/* The socket behind fd, or NULL for anything that is not ours. Cheap:
 * meant for every read and write. */
struct us_sock *us_fd_get(int fd);
/* Above every fd the table ever named: close_range reads no further. */
unsigned us_fd_top(void);
/* Like us_fd_get, but also recognises an app end that reached fd by a way
 * the table did not see (fcntl F_DUPFD, SCM_RIGHTS, inheritance): checks
 * the inode. For the control calls (connect, getsockopt, …). */
struct us_sock *us_fd_lookup(int fd);
/* A child forked through fork(): its copy of the table counts. */
void us_fd_forked(void);
void us_fd_fork_lock(void);   /* held across fork(): the foreign regions' lock */
void us_fd_fork_unlock(void);
/* In an exec'd image's constructor: map the region the old image passed
 * (USTCP_REGION_FD) and adopt the sockets it inherited. */
void us_fd_map_inherited(void);
/* exec: the environment to pass, envp plus USTCP_REGION_FD (and
 * USTCP_WAKE_FD: us_stack_wake_fd_for_exec) built in room
 * (nroom pointers) and var, and the table's counts given up; envp itself
 * when there is no region (or no room). After a failed exec,
 * us_exec_env_failed undoes that. */
char **us_exec_env(char *const envp[], char **room, size_t nroom, char var[64]);
void us_exec_env_failed(char **env, char *const envp[]);

/* ---- helpers ---- */

/* Sets errno and returns -1 when r < 0; else returns r. */
static inline long us_ret(long r)
{
	extern int *__errno_location(void);
	if (r < 0) {
		*__errno_location() = (int)-r;
		return -1;
	}
	return r;
}

/* fdplace.c: the program's epoll registrations of fd's file (in the
 * instances it made through libc, at most max), taken out of their sets,
 * to be made again for the file that takes fd's number (us_to_kernel; or
 * for the same file if that fails): a set forgets a file that closes, and
 * one that does not close would report for the number beside the new. */
struct us_epoll_reg {
	int epfd;
	struct epoll_event ev;
};
unsigned us_epoll_regs(int fd, struct us_epoll_reg *out, unsigned max);
/* Notes fd if it is an epoll instance libc's epoll_create1 did not make
 * here (inherited across exec); the same for each fd a message carried
 * (SCM_RIGHTS). */
void us_epoll_note(int fd);
void us_epoll_note_rights(const struct msghdr *m);
void us_epoll_readd(int fd, struct us_epoll_reg *regs, unsigned n);

/* connect.c */
/* A socket another process's stack holds but never paired, and that fd
 * alone names (one an exec'd image inherited: the keeper holds its bind
 * and options, stackthread/relay.c us_relay_sync) becomes a socket of
 * this process's stack under the same number, with its options and bind,
 * before bind, listen or connect act on it; *sp is then the new one.
 * Any other socket is left as it is. 0 or -errno. */
int us_take_over(int fd, struct us_sock **sp);

/* socket.c */
/* Gives fd back to the kernel: a kernel TCP socket takes its number, with
 * its file flags and the options set so far. 0 or -errno. */
int us_to_kernel(int fd, struct us_sock *s);
/* An AF_INET address, in host order; 0 or -EINVAL/-EAFNOSUPPORT. */
int us_sockaddr_in_of(const struct sockaddr *sa, socklen_t len, uint32_t *addr, uint16_t *port);
/* Writes an AF_INET address the way the kernel does: truncated to *len,
 * with *len set to the full size. */
void us_put_sockaddr(struct sockaddr *sa, socklen_t *len, uint64_t packed);
/* The address a sockaddr of s's family names, IPv4 mapped: an AF_INET
 * socket's as us_sockaddr_in_of, an AF_INET6 one's sockaddr_in6 (at least
 * 24 bytes, -EINVAL; another family, -EAFNOSUPPORT). */
int us_sockaddr_of(const struct us_sock *s, const struct sockaddr *sa, socklen_t len, struct ust_ip6 *addr,
		   uint16_t *port);
/* The same as us_put_sockaddr for an AF_INET6 socket: a sockaddr_in6, an
 * IPv4 address mapped (::ffff:a.b.c.d), a link-local one with its link's
 * index as the scope id. */
void us_put_sockaddr6(struct sockaddr *sa, socklen_t *len, const struct ust_ip6 *a, uint16_t port);
/* s's local or remote end in its family's sockaddr (getsockname,
 * getpeername). */
void us_put_end(const struct us_sock *s, bool remote, struct sockaddr *sa, socklen_t *len);
/* Whether s has IP_BIND_ADDRESS_NO_PORT on (sockopt.c): a bind to port 0
 * takes its address alone. */
bool us_bind_no_port(const struct us_sock *s);
/* Takes the pending error of s (SO_ERROR), clearing the kernel's on the app
 * end fd with it. */
int us_take_error(int fd, struct us_sock *s);
/* Linux's tcp_inq_hint: the bytes the app end holds, and 1 for the peer's
 * FIN once it came (shim/io.c, TCP_INQ's). */
int us_inq_hint(int fd, struct us_sock *s);

/* signal.c: would the kernel restart recv(2) after whichever handler
 * runs? Decided from every handler installed. */
enum us_restart {
	US_RESTART_ALWAYS,  /* every handler has SA_RESTART (or there is none) */
	US_RESTART_NEVER,   /* none has */
	US_RESTART_UNKNOWN, /* some have: the one that ran cannot be told */
};
enum us_restart us_restart_verdict(void);

/* io.c: maps an AF_UNIX error on one of our sockets to what TCP would
 * report. Returns the errno to report, 0 for "end of file". */
int us_map_read_error(struct us_sock *s, int err);

#endif
