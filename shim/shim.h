/* libustcp.so internals: the socketpair relay between a program and the
 * stack thread (see DESIGN.md, "The socketpair contract").
 *
 * Each TCP socket the program holds is the app end of an AF_UNIX stream
 * pair; the stack thread holds the other end (the stack end, above the
 * program's fd range). Three kinds of state:
 *   - struct us_sock, in a region shared by every process forked from this
 *     one: what program threads may read without asking (state, addresses,
 *     the error to report next). Written by the stack thread, or atomically.
 *   - struct us_conn (shim/stack.c), private to the stack thread: the
 *     control block, the watchers on the stack end.
 *   - the fd table: program fd -> socket, a cache kept right by the
 *     overridden close/dup calls and checked against the socket's inode.
 * Program threads never touch protocol state: they ask the stack thread
 * through us_call(), which runs a function there and waits for it. */
#ifndef USTCP_SHIM_H
#define USTCP_SHIM_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "config.h"

#define US_EXPORT __attribute__((visibility("default")))

/* ---- libc's functions (shim/real.c) ---- */

struct us_real {
	int (*socket)(int, int, int);
	int (*connect)(int, const struct sockaddr *, socklen_t);
	int (*bind)(int, const struct sockaddr *, socklen_t);
	int (*listen)(int, int);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	int (*shutdown)(int, int);
	int (*close)(int);
	int (*close_range)(unsigned, unsigned, int);
	int (*dup)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*fcntl)(int, int, ...);
	int (*getsockname)(int, struct sockaddr *, socklen_t *);
	int (*getpeername)(int, struct sockaddr *, socklen_t *);
	int (*getsockopt)(int, int, int, void *, socklen_t *);
	int (*setsockopt)(int, int, int, const void *, socklen_t);
	int (*ioctl)(int, unsigned long, ...);
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*readv)(int, const struct iovec *, int);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*writev)(int, const struct iovec *, int);
	ssize_t (*send)(int, const void *, size_t, int);
	ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	int (*epoll_create1)(int);
	int (*eventfd)(unsigned, int);
	int (*pipe2)(int[2], int);
	int (*timerfd_create)(int, int);
	int (*signalfd)(int, const sigset_t *, int);
};

/* Binds every entry once (dlsym RTLD_NEXT under pthread_once); safe to call
 * at any time, also before the library's constructor ran. */
const struct us_real *us_real(void);
#define REAL(fn) (us_real()->fn)

/* ---- sockets shared with the program threads (shim/fdtab.c) ---- */

enum us_kind {
	US_FREE = 0,
	US_CONN,        /* an ustcp connection (or a socket that will be one) */
	US_LISTENER,
};

/* Flags in us_sock.flags. */
#define US_F_ACCEPTED     0x01 /* a program took it from a listener */
#define US_F_CONNECTING   0x02 /* connect() was called */
#define US_F_CONNECT_DONE 0x04 /* a blocking connect reported its failure */
#define US_F_EVER_SYNCED  0x08 /* reached ESTABLISHED once */
#define US_F_DETACHED     0x10 /* the stack let go (TCP closed); the slot is the program's */
#define US_F_APP_CLOSED   0x20 /* the program closed an fd of it */
#define US_F_BACKLOGGED   0x40 /* a listener full to its backlog: accept() wakes the stack */

#define US_OPT_RECORD 8

struct us_sock {
	_Atomic uint32_t gen;        /* bumped when the slot is reused */
	_Atomic int kind;            /* enum us_kind */
	_Atomic int state;           /* enum ust_tcp_state, mirrored */
	_Atomic int pending_err;     /* the error to report once (SO_ERROR) */
	_Atomic int hard_err;        /* why it died (0 while alive or orderly) */
	_Atomic int flags;
	_Atomic uint64_t local;      /* address << 16 | port, host order */
	_Atomic uint64_t remote;
	pid_t owner;                 /* process whose stack serves it */
	int app_fd;                  /* the app end's number when created */
	dev_t app_dev;               /* and its identity */
	ino_t app_ino;
	/* Options that only the program side keeps (Linux would echo them). */
	_Atomic int reuseaddr, reuseport, ip_tos, ip_ttl;
	_Atomic int linger_on, linger_s;
	/* Options set before connect, for a socket handed to the kernel
	 * (a USTCP_PASSTHROUGH destination). */
	_Atomic int fdrefs;          /* fd-table entries naming it, all processes */
	_Atomic int nopts;
	struct { int level, name; socklen_t len; char val[16]; } opts[US_OPT_RECORD];
};

#define US_MAX_SOCKS 65536

/* The shared region, mapped at the first TCP socket. */
struct us_sock *us_sock_at(unsigned idx);
unsigned us_sock_idx(const struct us_sock *s);
/* A free slot (any thread), or NULL when all are in use. */
struct us_sock *us_sock_alloc(void);
void us_sock_free(struct us_sock *s);

/* The fd table. Entries name a socket by slot and generation. */
void us_fd_set(int fd, struct us_sock *s);
/* Returns how many entries (all processes) still name the socket fd
 * named, or -1 if it named none. */
int us_fd_clear(int fd);
/* A forked child's table will name the same sockets once more (called
 * before the fork). */
void us_fd_inherited(void);
/* The socket behind fd, or NULL for anything that is not ours. Cheap:
 * meant for every read and write. */
struct us_sock *us_fd_get(int fd);
/* Like us_fd_get, but also recognises an app end that reached fd by a way
 * the table did not see (fcntl F_DUPFD, SCM_RIGHTS, inheritance): checks
 * the inode. For the control calls (connect, getsockopt, …). */
struct us_sock *us_fd_lookup(int fd);

/* ---- the stack thread (shim/stack.c) ---- */

/* The configuration, loaded once; NULL with errno set (and one line
 * logged) when it is unusable. */
const struct ust_config *us_config(void);

/* Starts the stack thread if it is not running. 0, or -errno (EPERM
 * without CAP_NET_RAW, EINVAL for bad configuration…). */
int us_stack_start(void);

/* A call run on the stack thread; the caller waits for it. */
struct us_call;
typedef void (*us_call_fn)(struct us_call *c);
struct us_call {
	us_call_fn fn;
	struct us_sock *sock;
	long ret;                    /* result: >= 0, or -errno */
	union {
		struct { uint32_t addr; uint16_t port; } in;
		struct { int level, name; int val; } opt;
		struct { int how; } shut;
		void *out;
	} u;
	/* private */
	struct us_call *next;
	_Atomic int done;
};
/* Runs fn(c) on the stack thread and returns c->ret. Never blocks on a
 * lock: the queue is lock-free, the wait is a futex. */
long us_call(struct us_call *c, us_call_fn fn, struct us_sock *s);

/* Wakes the stack thread (after an accept() freed backlog room). */
void us_stack_poke(void);

/* Stack-thread operations the calls use (run inside us_call). */
void us_op_create(struct us_call *c);     /* new socket: c->ret = app fd */
void us_op_bind(struct us_call *c);
void us_op_connect(struct us_call *c);
void us_op_listen(struct us_call *c);
void us_op_unlisten(struct us_call *c);
void us_op_setopt(struct us_call *c);
void us_op_getopt(struct us_call *c);
void us_op_status(struct us_call *c);     /* u.out = struct ust_tcp_status */

/* The record an accepted connection's token carries on the listener's
 * pair, with the connection's app end attached (SCM_RIGHTS). */
struct us_token {
	uint32_t magic;
	uint32_t idx, gen;
	uint32_t laddr, raddr;
	uint16_t lport, rport;
};
#define US_TOKEN_MAGIC 0x75737463u /* "ustc" */

/* Where the stack's own fds go: above the program's range. */
int us_fd_high(int fd);

/* ---- helpers ---- */

static inline uint64_t us_pack(uint32_t addr, uint16_t port)
{
	return (uint64_t)addr << 16 | port;
}
static inline uint32_t us_addr(uint64_t v) { return (uint32_t)(v >> 16); }
static inline uint16_t us_port(uint64_t v) { return (uint16_t)v; }

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

/* Takes the pending error of s (SO_ERROR), clearing the kernel's on the app
 * end fd with it (shim/socket.c). */
int us_take_error(int fd, struct us_sock *s);

/* Map an AF_UNIX error on one of our sockets to what TCP would report
 * (shim/io.c). Returns the errno to report, 0 for "end of file". */
int us_map_read_error(struct us_sock *s, int err);

#endif
