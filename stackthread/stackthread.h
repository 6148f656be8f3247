/* The contract between libustcp.so's two halves (see docs/architecture.md, "The
 * socketpair contract"):
 *
 *   shim/         the interposed calls, run on the program's threads;
 *   stackthread/  the stack thread: start-up, the call queue, the relay,
 *                 ports, the control socket, the exit keeper.
 *
 * This header is all each side knows of the other. Program threads never
 * touch protocol state: they read struct us_sock (written by the stack
 * thread, or atomically) and ask the stack thread for the rest through
 * us_call(), which runs a function there and waits for it. The stack
 * thread's own structures (stackthread/stack_impl.h) stay private.
 *
 * Provided by shim/ to both sides:      libc's functions (real.c), the
 *                                        shared socket slots (fdtab.c).
 * Provided by stackthread/ to the shim: everything under "the stack
 *                                        thread" below. */
#ifndef USTCP_STACKTHREAD_H
#define USTCP_STACKTHREAD_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "config.h"
#include "tcp.h"

/* ---- libc's functions (shim/real.c) ----
 * Both sides call libc through this table: a plain close() or read() on the
 * stack thread would land in the shim's own wrapper. */

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
	/* Handler changes (shim/signal.c); the last four may be missing. */
	int (*sigaction)(int, const struct sigaction *, struct sigaction *);
	sighandler_t (*signal)(int, sighandler_t);
	sighandler_t (*sysv_signal)(int, sighandler_t);
	sighandler_t (*bsd_signal)(int, sighandler_t);
	sighandler_t (*sigset)(int, sighandler_t);
	int (*siginterrupt)(int, int);
	int (*execve)(const char *, char *const[], char *const[]);
	int (*execv)(const char *, char *const[]);
	int (*execvp)(const char *, char *const[]);
	int (*execvpe)(const char *, char *const[], char *const[]);
	int (*fexecve)(int, char *const[], char *const[]);
};

/* Binds every entry once (dlsym RTLD_NEXT under pthread_once); safe to call
 * at any time, also before the library's constructor ran. */
const struct us_real *us_real(void);
#define REAL(fn) (us_real()->fn)

/* ---- sockets shared with the program threads (shim/fdtab.c) ----
 * Each TCP socket the program holds is the app end of an AF_UNIX stream
 * pair; the stack thread holds the other end (the stack end, above the
 * program's fd range). struct us_sock lives in a region shared by every
 * process forked from this one: what program threads may read without
 * asking (state, addresses, the error to report next). */

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
#define US_F_BACKLOGGED   0x40 /* a listener full to its backlog: accept() wakes the stack */
#define US_F_LAST_STATUS  0x80 /* TCP closed: us_sock_last() holds its final status */
#define US_F_APP_SHUT    0x100 /* the program shut its sending side down (shutdown) */
#define US_F_ERR_TOKEN   0x200 /* a listener's error token waits for accept() */
#define US_F_RCVOPTS     0x400 /* SO_RCVTIMEO or SO_RCVLOWAT was set on the app end */
#define US_F_BUSY_POLL   0x800 /* SO_BUSY_POLL was set on the app end */
#define US_F_APP_SHUT_RD 0x8000 /* the program shut its receiving side down (shutdown) */
#define US_F_PAIRED     0x10000 /* the app end is connected to a stack end (connect, listen, accept) */
#define US_F_INQ        0x20000 /* TCP_INQ: reads by recvmsg get TCP_CM_INQ (inherited by accepted sockets) */
#define US_F_MORE       0x1000 /* a send with MSG_MORE: the next without it pushes */
#define US_F_BOUND      0x2000 /* bind() succeeded: bound6, bound_port (connect.c, renew) */
#define US_F_MD5        0x40000 /* a TCP_MD5SIG key was set: renew and us_to_kernel carry the keys */

/* us_sock.life */
#define US_LIFE_REFS    0x0fffffffu /* fd-table entries naming the socket, all processes */
#define US_L_DETACHED   0x10000000u /* the stack let go (TCP closed); the slot is the program's */
#define US_L_APP_CLOSED 0x20000000u /* the program's close took the last entry */

#define US_OPT_RECORD 8

/* The IPPROTO_IPV6 and IPPROTO_IP options that only the program side
 * keeps (shim/sockopt.c), Linux's ipv6_pinfo and inet_sock less what the
 * engine has: the value each of US_IP6_KEPT IPv6 options reads back (bit
 * i of set: kept[i] was set; the kernel's default otherwise), the sticky
 * extension headers (IPV6_HOPOPTS, IPV6_RTHDRDSTOPTS, IPV6_RTHDR,
 * IPV6_DSTOPTS; hdr_len 0: none), which the engine sends as well
 * (us_op_setopt gives them to it), up to US_IP6_HDR_MAX bytes each (as
 * long as a header's length can say, 2048: the kernel socket takes no
 * longer one), last in the struct, so that a slot's pages past the first
 * are touched only by a socket that has them, IPV6_PKTINFO's address and
 * interface, and the same for US_IP4_KEPT IPv4 options (set4, kept4) and
 * IP_OPTIONS (ip_opts, the engine's too). Written by program threads,
 * but for an accepted socket, which the stack thread gives its listener's
 * before the program can see it (relay.c), as Linux's syn_recv_sock
 * copies ipv6_pinfo and inet_sock. Kept apart from struct
 * us_sock (us_sock_ipopts: about 9 KB of address space that most sockets
 * never touch, nor any socket past its first page unless it has sticky
 * headers: in the slot it would cost every connection memory). */
#define US_IP6_KEPT 28
#define US_IP6_HDR_MAX UST_IP6_EXT_HDR_MAX /* wire6.h */
#define US_SAVED_SYN_MAX 256 /* TCP_SAVED_SYN: link, IP and TCP headers (IPv4's at most 134) */
#define US_IP4_KEPT 21
#define US_IP4_KEPT_PORT_RANGE 20 /* IP_LOCAL_PORT_RANGE's index in kept4 */
#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51     /* Linux 6.3; older C libraries lack it */
#endif
struct us_ip_opts {
	_Atomic uint32_t set;
	_Atomic int kept[US_IP6_KEPT];
	_Atomic uint32_t set4;
	_Atomic int kept4[US_IP4_KEPT];
	_Atomic uint8_t ip_opts_len;
	uint8_t ip_opts[40];         /* as Linux's getsockopt reads them back */
	_Atomic uint16_t hdr_len[4];
	uint8_t pktinfo[20];         /* struct in6_pktinfo */
	/* IP_PKTOPTIONS' TOS for an accepted socket (ust_tcp_rcv_tos),
	 * written only when not 0, so that most slots never touch this. */
	_Atomic uint8_t rcv_tos;
	/* TCP_SAVED_SYN: an accepted socket's SYN headers, until read once
	 * (relay.c keeps them here, so that any process holding it reads
	 * them); never copied from a listener. */
	_Atomic uint16_t saved_syn_len;
	uint8_t saved_syn[US_SAVED_SYN_MAX];
	/* IPV6_2292PKTOPTIONS: the IPv6 and extension headers of the segment
	 * the connection keeps (ust_tcp_kept_net), copied here by the
	 * stack thread when asked (us_op_getopt, UST_TCP_OPT_IPV6_RCV_KEPT)
	 * and when TCP closes the connection. */
	_Atomic uint16_t rx_kept_len;
	uint8_t rx_kept[UST_TCP_KEPT_NET_MAX];
	uint8_t hdr[4][US_IP6_HDR_MAX];
};

/* What an accepted socket takes of its listener's, as Linux's
 * syn_recv_sock: not IP_OPTIONS (a child's inet_opt is the echo of its
 * SYN's options, none here), and the sticky IPv6 headers only over IPv6
 * (an IPv4-mapped child's np->opt is NULL), as the engine's child sends
 * them (tcp_input.c, child_new). */
static inline void us_ip_opts_copy(struct us_ip_opts *to, struct us_ip_opts *from, bool mapped)
{
	atomic_store(&to->set, atomic_load(&from->set));
	for (int i = 0; i < US_IP6_KEPT; i++)
		atomic_store(&to->kept[i], atomic_load(&from->kept[i]));
	atomic_store(&to->set4, atomic_load(&from->set4));
	atomic_store(&to->ip_opts_len, 0);
	for (int i = 0; i < US_IP4_KEPT; i++)
		atomic_store(&to->kept4[i], atomic_load(&from->kept4[i]));
	/* Each header's own bytes only: the room after them is pages a
	 * child need not touch. */
	for (int i = 0; i < 4; i++) {
		uint16_t n = mapped ? 0 : atomic_load(&from->hdr_len[i]);

		atomic_store(&to->hdr_len[i], n);
		memcpy(to->hdr[i], from->hdr[i], n);
	}
	memcpy(to->pktinfo, from->pktinfo, sizeof(to->pktinfo));
}

/* A call's arguments and, for some, its results (struct us_call). */
union us_call_args {
	/* bind, connect: the address (IPv4 mapped); blocking: connect; noport:
	 * a bind to port 0 under IP_BIND_ADDRESS_NO_PORT */
	struct { struct ust_ip6 addr; uint16_t port; bool blocking, noport; } in;
	/* create: the family and IPV6_V6ONLY; app_fd the number the socket
	 * will have, or -1 */
	struct { int family, v6only, app_fd; } create;
	/* wide: SO_MAX_PACING_RATE's 64 bits */
	struct { int level, name; int val; uint64_t wide; } opt;
	struct { int how; bool sentinel; } shut; /* sentinel: us_op_take_tail */
	struct { unsigned first, last; } range;
	char cc[16]; /* TCP_CONGESTION's name, NUL-terminated: by value, so it
		      * crosses to another process's stack (calls.c) */
	struct { uint32_t len, v[UST_TCP_CC_INFO_WORDS]; } ccinfo; /* TCP_CC_INFO (ust_tcp_cc_info), by value too */
	/* TCP_MD5SIG's key, by value too; at: which of the socket's keys
	 * us_op_md5_key reads */
	struct { struct ust_tcp_md5_key key; uint32_t at; } md5;
	void *out;
};

/* us_sock.rpc: a call from a process whose stack does not serve the socket,
 * to the one that does (calls.c, us_call): claimed by the asker, asked,
 * taken by the owner's stack thread, done. */
enum us_rpc_state { US_RPC_IDLE, US_RPC_CLAIMED, US_RPC_ASKED, US_RPC_SERVING, US_RPC_DONE };

struct us_sock {
	_Atomic uint32_t gen;        /* bumped when the slot is reused */
	_Atomic int kind;            /* enum us_kind */
	_Atomic int state;           /* enum ust_tcp_state, mirrored */
	_Atomic int state_waiters;   /* threads in a futex wait on state: woken only then */
	_Atomic int pending_err;     /* the error to report once (SO_ERROR) */
	_Atomic int hard_err;        /* why it died (0 while alive or orderly) */
	_Atomic int flags;
	_Atomic uint64_t local;      /* address << 16 | port, host order (an IPv4 address; 0 for IPv6) */
	_Atomic uint64_t remote;
	/* The addresses of either family (IPv4 mapped), written before the
	 * word above that carries the port (us_sock_set_ends): a reader that
	 * loaded that word reads them as they were then. */
	struct ust_ip6 local6, remote6;
	_Atomic int family;          /* AF_INET or AF_INET6, as socket() was asked */
	_Atomic int v6only;          /* IPV6_V6ONLY (AF_INET6) */
	pid_t owner;                 /* process whose stack serves it */
	int app_fd;                  /* the app end's number when created */
	dev_t app_dev;               /* and its identity */
	ino_t app_ino;
	/* Options that only the program side keeps (Linux would echo them;
	 * TCP_NOTSENT_LOWAT has no effect here yet: README). */
	_Atomic int reuseaddr, reuseport, notsent_lowat;
	_Atomic int fastopen_qlen;   /* TCP_FASTOPEN's queue length, read back (shim/sockopt.c) */
	/* TCP_TX_DELAY and TCP_FASTOPEN_NO_COOKIE, read back (a listener's
	 * accepted connections start with its values), and the socket's
	 * TCP_FASTOPEN_KEY: fastopen_key_len bytes (0, 16 or 32), published
	 * by that length (shim/sockopt.c, tcp_misc_set). */
	_Atomic int tx_delay, fastopen_no_cookie, fastopen_key_len;
	uint8_t fastopen_key[32];
	/* IP_TOS, IP_TTL (0: the default) and IP_MTU_DISCOVER as the engine
	 * keeps them (ust_tcp_ip_opt_value), for getsockopt after TCP let go;
	 * a listener's accepted connections start with its values. */
	_Atomic int ip_tos, ip_ttl, ip_pmtudisc;
	/* IPV6_TCLASS, IPV6_UNICAST_HOPS (UST_TCP_HOPS_DEFAULT: the
	 * default) and IPV6_MTU_DISCOVER, the same way. */
	_Atomic int ip6_tclass, ip6_hops, ip6_pmtudisc;
	/* The slot's us_sock_ipopts() entry was written (us_sock_ipopts_w):
	 * the next alloc clears it. A socket that never sets one of those
	 * options leaves its entry untouched: no page for it. */
	_Atomic int ipopts_dirty;
	_Atomic int linger_on, linger_s;
	/* What bind() was given (US_F_BOUND): an address not the wildcard,
	 * and a port not 0, stay the socket's after a failed connect, as
	 * Linux's SOCK_BINDADDR_LOCK and SOCK_BINDPORT_LOCK (connect.c). */
	struct ust_ip6 bound6;
	_Atomic int bound_port;
	/* The socket's life: how many fd-table entries name it, in every
	 * process (US_LIFE_REFS), and which side let go of it (US_L_*). One
	 * word, so that the close that counts the last entry and a process
	 * entering the socket again (SCM_RIGHTS) are ordered: see
	 * us_sock_let_go (shim/close.c) and docs/architecture.md §4. */
	_Atomic unsigned life;
	/* Options set before connect, for a socket handed to the kernel
	 * (a USTCP_PASSTHROUGH destination). */
	_Atomic int nopts;
	struct { int level, name; socklen_t len; char val[16]; } opts[US_OPT_RECORD];
	_Atomic uint32_t free_next;  /* while free: the next free slot + 1 (fdtab.c) */
	/* A socket socket() made on the program's thread, queued for the
	 * stack thread to adopt (us_sock_create): the numbers its spares
	 * hold, the next socket in the queue. Written before the push, read
	 * by the stack thread after it; the owner process's pointers only. */
	int new_spare_end, new_spare_port;
	struct us_sock *new_next;
	/* The mailbox of a call another process makes on this socket (a
	 * forked worker's setsockopt, shutdown…): one at a time, by value,
	 * served by the owner's stack when poked (calls.c, us_rpc_serve). */
	_Atomic uint32_t rpc;        /* enum us_rpc_state; a shared futex word */
	int rpc_op;                  /* index in calls.c's rpc_ops */
	long rpc_ret;
	union us_call_args rpc_args;
};

/* The stack lets go of s (TCP closed): true when the program's last close
 * came first, and the caller frees the slot; otherwise that close will
 * (us_sock_let_go). */
static inline bool us_sock_detach(struct us_sock *s)
{
	return atomic_fetch_or(&s->life, US_L_DETACHED) & US_L_APP_CLOSED;
}

/* Has the program's last close taken s (and no process entered it since)? */
static inline bool us_sock_app_closed(const struct us_sock *s)
{
	return atomic_load(&s->life) & US_L_APP_CLOSED;
}

/* A slot's final status (us_sock_last), beside the slots in the region
 * rather than in them: more than half a slot's size, written only when
 * TCP closes a connection the program still holds or another process
 * asks for a live status, so an idle connection never touches its page
 * (issue 13: the region's pages are memory each socket costs). */
struct us_last {
	/* Odd while the owner's stack thread writes `st`: it also holds a
	 * live status asked for by another process (TCP_INFO across fork,
	 * us_op_status_to_slot), which that process copies as a seqlock's
	 * reader (us_status). */
	_Atomic uint32_t seq;
	/* The connection's status when TCP closed it (US_F_LAST_STATUS), and
	 * when: Linux's TCP_INFO on a socket whose connection is gone still
	 * reports its counters, with the state CLOSE. `at` and `st` are
	 * written once by the stack thread before the flag; read-only
	 * after. */
	ust_time at;
	struct ust_tcp_status st;
	/* TCP_CONGESTION and TCP_CC_INFO from then on: the algorithm's name
	 * (the connection's, or the one set since: Linux's closed socket
	 * keeps its ca_ops) and its model when TCP let go (zeros once
	 * switched to another, ust_tcp_cc_info_unstarted). Only the owner's
	 * stack thread reads and writes them (ops.c), outside the seqlock. */
	char cc[16];
	uint32_t ccinfo_len, ccinfo[UST_TCP_CC_INFO_WORDS];
	uint32_t ts_offset; /* TCP_TIMESTAMP's clock's, as Linux's closed socket keeps tsoffset */
	/* The hop limit and flow information noted last, and the segment
	 * kept (IPV6_2292PKTOPTIONS, IPV6_MULTICAST_HOPS: the engine's
	 * UST_TCP_OPT_IPV6_RCV_*), which Linux's ipv6_pinfo keeps: written
	 * before the flag, as `st`. */
	int rcv_hops, rcv_flowinfo, rcv_kept, kept_flowinfo;
};

/* The most slots a region has (the kernel's default fs.nr_open). Its
 * size is the hard limit on fds when it is mapped, between 4096 and this:
 * each socket needs an fd, so the kernel's EMFILE comes first. */
#define US_MAX_SOCKS (1u << 20)

/* The shared region, mapped at the first TCP socket. */
/* Its number of slots (0 when it could not be mapped). */
unsigned us_sock_slots(void);
struct us_sock *us_sock_at(unsigned idx);
unsigned us_sock_idx(const struct us_sock *s);
/* The slot's final status, in the same region. */
struct us_last *us_sock_last(const struct us_sock *s);
/* A slot's IP options (struct us_ip_opts), beside the slots and their
 * final statuses: to read (all zero, the defaults, while the slot never
 * wrote one), and to write (marks the slot's entry dirty first). */
struct us_ip_opts *us_sock_ipopts(const struct us_sock *s);
struct us_ip_opts *us_sock_ipopts_w(struct us_sock *s);
/* The socket's IP_LOCAL_PORT_RANGE as set (low port | high port << 16),
 * 0 while never set. */
uint32_t us_sock_port_range(const struct us_sock *s);
/* Slots at or above this were never used. */
unsigned us_sock_hwm(void);
/* How many calls wait in slots' mailboxes, all processes (us_sock.rpc). */
_Atomic unsigned *us_rpc_asked(void);
/* A free slot (any thread, O(1)), or NULL when all are in use. */
struct us_sock *us_sock_alloc(void);
void us_sock_free(struct us_sock *s);
/* The memfd behind the region (exec passes it on), -1 before it is mapped. */
int us_region_fd(void);
/* Is fd one the library itself holds without a stack's say: the region's
 * memfd, the socket foreign pokes go from, the launcher's broker socket?
 * close() leaves them (EBADF), stack or none, marked or not. */
bool us_shim_owns_fd(int fd);
/* Sockets of another stack's region, mapped when they arrived with
 * SCM_RIGHTS from a process this one is not related to (fdtab.c,
 * us_fd_lookup): is s one; the mailbox count of s's region; a poke of
 * the stack that serves s through its wake-up name (false: s is of our
 * region, poke parent_wake_fd); slot idx of ref's region. */
bool us_sock_foreign(const struct us_sock *s);
_Atomic unsigned *us_rpc_asked_of(const struct us_sock *s);
bool us_foreign_poke(const struct us_sock *s);
struct us_sock *us_sock_at_of(const struct us_sock *ref, unsigned idx);
/* The wake-up name of the stack whose region is the memfd (dev, ino):
 * an abstract datagram socket a poke (any datagram) reaches; and our
 * region's identity. */
struct sockaddr_un;
socklen_t us_wake_addr(struct sockaddr_un *sun, dev_t dev, ino_t ino);
bool us_region_id(dev_t *dev, ino_t *ino);

/* Who may ask this stack for work or for its dump (the control socket,
 * the wake-up name): its own user and root, as for any per-user daemon. */
static inline bool us_uid_trusted(uid_t uid, uid_t self)
{
	return uid == 0 || uid == self;
}

/* us_sock.local and .remote: an address and port in one word. */
static inline uint64_t us_pack(uint32_t addr, uint16_t port)
{
	return (uint64_t)addr << 16 | port;
}
static inline uint32_t us_addr(uint64_t v) { return (uint32_t)(v >> 16); }
static inline uint16_t us_port(uint64_t v) { return (uint16_t)v; }

/* Publishes a socket's local or remote end: the address of either family,
 * then the packed word (its IPv4 address, 0 for an IPv6 one, and the
 * port), whose store orders the address before it. */
static inline void us_sock_set_end(struct us_sock *s, bool remote, const struct ust_ip6 *a, uint16_t port)
{
	uint32_t v4 = ust_ip6_is_v4mapped(a) ? ust_ip6_to_v4(a) : 0;

	if (remote) {
		s->remote6 = *a;
		atomic_store(&s->remote, us_pack(v4, port));
	} else {
		s->local6 = *a;
		atomic_store(&s->local, us_pack(v4, port));
	}
}

/* The record an accepted connection's token carries on the listener's
 * pair, with the connection's app end attached (SCM_RIGHTS). */
struct us_token {
	uint32_t magic;
	uint32_t idx, gen;
	struct ust_ip6 laddr, raddr; /* IPv4 mapped */
	uint16_t lport, rport;
};
#define US_TOKEN_MAGIC 0x75737463u /* "ustc" */
/* A token with this idx carries no connection and no fd: accept() fails
 * with the errno in gen (EMFILE, ENFILE: no fds or slot for the pair). */
#define US_TOKEN_ERROR UINT32_MAX
/* A token with this idx carries a kernel socket accepted on loopback
 * (stackthread/loopback.c): accept() returns it as it is. */
#define US_TOKEN_KERNEL (UINT32_MAX - 1)

/* ---- the stack thread (stackthread/) ---- */

/* The configuration, loaded once; NULL with errno set (and one line
 * logged) when it is unusable (start.c). */
const struct ust_config *us_config(void);

/* Starts the stack thread if it is not running. 0, or -errno (EPERM
 * without CAP_NET_RAW, EINVAL for bad configuration…) (start.c). */
int us_stack_start(void);

/* A call run on the stack thread; the caller waits for it (calls.c). */
struct us_call;
struct us_stack;
typedef void (*us_call_fn)(struct us_call *c);
/* A read of what TCP kept after the program's SHUT_RD (us_op_read_held):
 * copied into m's buffers, left queued with MSG_PEEK. */
struct us_held_read {
	struct msghdr *m;
	int flags;
};

/* us_call_args.opt.level for what the slot holds (us_op_setopt): name
 * TCP_NOTSENT_LOWAT (the value is in us_sock.notsent_lowat), IP_OPTIONS
 * or IPV6_HOPOPTS (the engine takes the slot's IP options, or its four
 * sticky IPv6 headers: us_ip_opts). */
#define US_OPT_RELAY (-2)

struct us_call {
	us_call_fn fn;
	struct us_sock *sock;
	long ret;                    /* result: >= 0, or -errno */
	union us_call_args u;
	/* private */
	struct us_stack *st;         /* the stack that runs it (set by us_call) */
	struct us_call *next;
	_Atomic int done;
};
/* Runs fn(c) on the stack thread and returns c->ret. Never blocks on a
 * lock: the queue is lock-free, the wait is a futex. -EOPNOTSUPP for a
 * socket another process's stack serves. */
long us_call(struct us_call *c, us_call_fn fn, struct us_sock *s);
/* Is the socket served by another process's stack (inherited across fork,
 * or held by a keeper)? Then us_call goes through its slot's mailbox. */
bool us_sock_remote(const struct us_sock *s);

/* close_range(first, last, 0) that spares the stack's own fds, done on
 * the stack thread (keeper.c): 0, -ENOMEM, or -EOPNOTSUPP when no stack
 * runs in this process (its fds are then nobody's: close them all). */
int us_stack_close_range(unsigned first, unsigned last);

/* close() of a number the library marked (fds.c) and the program does not
 * hold as a socket: on the stack thread, which knows its own fds, -EBADF if
 * fd is one of the stack's (its packet socket, a relay's stack end, an
 * eventfd…), as if the number were not open, as on Linux; otherwise the
 * mark goes and fd is closed there (0 or -errno), so that the stack cannot
 * take the number between the look and the close. In a process no stack
 * serves, the fd that reaches the stack serving its inherited sockets
 * stays (-EBADF, as close_range spares it), and any other is closed here,
 * its mark kept (a vfork child shares the parent's marks). Called on the
 * stack thread itself (libev closing its own), it closes. */
long us_stack_close_marked(int fd);
/* The marks: which numbers may be the stack's (a hint, fds.c). */
void us_fd_mark(int fd);
bool us_fd_marked(int fd);
/* The program ended: its fd table's entries go, as its fds did (shim/close.c). */
void us_fd_close_all(pid_t program);
void us_fd_unmark(int fd);

/* Wakes the stack thread (after an accept() freed backlog room). */
void us_stack_poke(void);
/* The same for the stack that serves s, which may be an unrelated
 * process's (us_sock_foreign). */
void us_sock_poke_owner(const struct us_sock *s);

/* socket()'s work (ops.c): s's app end, its number, or -errno. Far from
 * the ceiling on connections (USTCP_MAX_CONNS) the app end is made on the
 * calling thread and the stack thread adopts the socket later, before it
 * serves any call made after this returns: no round trip. Otherwise, or
 * when that fails, us_op_create through us_call, which refuses and counts
 * exactly as before. */
long us_sock_create(struct us_sock *s, int family, int v6only);
/* Before a fork: the sockets not yet adopted are, so that the child's copy
 * of the stack holds none (calls.c). */
void us_news_flush(void);
/* In a forked child: the copies of their spares are closed; the parent's
 * stack adopts them. */
void us_news_forget(void);

/* The stack-thread side of each call (ops.c), run inside us_call. */
void us_op_create(struct us_call *c);     /* new socket: c->ret = app fd; u.create: family, v6only, the fd number it
                                            * will have, or -1 (socket() sets app_fd itself) */
void us_op_bind(struct us_call *c);
void us_op_accept_retry(struct us_call *c); /* a listener delivers again (an error token was
                                              * taken): c->ret = how many */
/* Counts an event (enum ust_event) on this process's stack: a refusal
 * the shim saw (sock-no-slot, sock-no-fd), for ustcp-stat -s (calls.c). */
void us_count(int event);
void us_op_connect(struct us_call *c);
void us_op_listen(struct us_call *c);
/* Steering by port (steer.c): on a program thread, waits (1 s at most)
 * until the launcher's broker answered every claim of ports this stack
 * sent, so that the frames of its ports reach it: before a connect's SYN
 * leaves, after a listen. At once when nothing is outstanding. */
void us_steer_settle(void);
/* Whether this stack is steered and has no lease of client ports yet
 * (ports.c): then a connect() asks for one first (us_op_steer_lease). */
bool us_steer_needs_lease(void);
void us_op_steer_lease(struct us_call *c);
void us_op_unlisten(struct us_call *c);
void us_op_shutdown(struct us_call *c);   /* u.shut.how: SHUT_RD's part, or any in SYN-SENT */
void us_op_hold_last(struct us_call *c);  /* before SHUT_WR: empty the pair, read nothing more
                                           * (0: the shim may send the sentinel byte) */
void us_op_take_tail(struct us_call *c);  /* after SHUT_WR: empty the pair now; u.shut.sentinel:
                                           * the last byte is the shim's, never data */
void us_op_read_held(struct us_call *c);  /* u.out = struct us_held_read: after SHUT_RD */
void us_op_setopt(struct us_call *c);
/* The kept segment's headers into the slot (us_ip_opts.rx_kept). */
void us_kept_net_to_slot(struct us_sock *s, const struct ust_tcb *t);
void us_op_urgent(struct us_call *c);     /* MSG_OOB: the urgent mark after what was written */
void us_op_getopt(struct us_call *c);
void us_op_status(struct us_call *c);     /* u.out = struct ust_tcp_status */
void us_op_status_to_slot(struct us_call *c); /* the same into us_sock_last(), for another process */
void us_op_set_cc(struct us_call *c);     /* u.cc = the name (TCP_CONGESTION) */
void us_op_get_cc(struct us_call *c);     /* u.cc = the name back */
void us_op_cc_info(struct us_call *c);    /* u.ccinfo = TCP_CC_INFO */
void us_op_md5(struct us_call *c);        /* u.md5.key = the key to set, or to delete (keylen 0) */
void us_op_md5_key(struct us_call *c);    /* u.md5.key = the key at u.md5.at, oldest first; -ENOENT past them */
/* The socket's TCP_MD5SIG keys onto fd, a kernel socket of its own that
 * takes its place (shim: USTCP_PASSTHROUGH), or another socket of the
 * library (to): those a connect that failed must keep. */
void us_md5_keys_to_kernel(struct us_sock *s, int fd);
void us_md5_keys_to_sock(struct us_sock *s, struct us_sock *to);
/* One key onto a kernel socket, in its family (an IPv4 key mapped on an
 * AF_INET6 one; none on an AF_INET one for an IPv6 key). */
void us_md5_kernel(int fd, const struct ust_tcp_md5_key *k);
void us_op_ts_clock(struct us_call *c);   /* u.opt.val = TCP_TIMESTAMP's clock */
void us_op_hand_on(struct us_call *c);    /* a never-paired socket's control block and relay go, its
                                           * bind with them; the slot stays, the caller's to free
                                           * (-EBUSY: paired since) */
/* The connection's status (TCP_INFO, SIOCOUTQ) wherever its stack runs:
 * this process's, or the owner's through the slot (calls.c). -EINVAL:
 * TCP never had it, or let go without a status. */
long us_status(struct us_sock *s, struct ust_tcp_status *out);
/* Writes `last` as the seqlock's writer (stack thread of the owner). */
void us_slot_status_write(struct us_sock *s, const struct ust_tcp_status *st);
void us_last_read(struct us_last *l, struct ust_tcp_status *out); /* the seqlock's reader, bounded */
/* `last` once TCP closed it, its "ago" times grown to now (ops.c). */
void us_status_from_last(const struct us_sock *s, struct ust_tcp_status *out, ust_time now);

/* fd placement (start.c): is the calling thread the stack thread (or the
 * one starting it)? Its fds go above the program's range, and an fd libev
 * makes there is the stack's own (a keeper keeps it): us_stack_own_fd
 * moves it high and remembers it, returning the new number. */
bool us_on_stack_thread(void);
int us_stack_own_fd(int fd);

/* Lifetime (keeper.c). Before exec: a keeper takes every connection
 * over, now (any other end of the program is the guardian's to see).
 * After an exec that failed: the process goes on without its old stack,
 * and a new socket starts a new one. */
void us_stack_hand_over(void);
void us_stack_exec_failed(void);

/* fork (start.c), for the shim's pthread_atfork handlers. prepare takes
 * the start-up lock and says whether the child is a program (true) rather
 * than an exit keeper: a program's fd table names our sockets once more. */
bool us_stack_fork_prepare(void);
void us_stack_fork_parent(void);
void us_stack_fork_child(void);
/* exec: the wake-up eventfd of the stack that serves the sockets the new
 * image inherits (ours, which a keeper takes over, or the one we were
 * forked from), made inheritable; -1 if none. The new image adopts it
 * (USTCP_WAKE_FD) to reach that stack: us_stack_adopt_wake_fd. */
int us_stack_wake_fd_for_exec(void);
void us_stack_adopt_wake_fd(int fd);
/* In a process without a stack of its own: the fd that reaches the stack
 * serving its inherited sockets, which closing "all other fds" must spare;
 * -1 if none. */
int us_stack_kept_fd(void);

#endif
