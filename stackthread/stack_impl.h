/* Internals of the stack thread, private to stackthread/ (the shim sees
 * only stackthread.h). Its files:
 *   start.c     configuration, start-up, what a fork leaves of the stack
 *   calls.c     the calls from program threads: a lock-free queue
 *   fds.c       the stack's fds, above the program's range
 *   ops.c       the stack-thread side of each call (socket, bind, connect…)
 *   relay.c     the socketpair relay: one struct us_conn per socket
 *   ports.c     ports shared with other processes in the kernel's table
 *   addrshare.c the secret and tombstones the stacks on one address share
 *   control.c   the close log and the control socket for ustcp-stat
 *   keeper.c    the exit keeper: at exit, exec, _exit, or the last thread
 *   kfilter.c   the keeper's filter: only the frames of its ports
 * All of it belongs to the stack thread (and to a keeper, which is a copy
 * of it) unless a comment says otherwise. It reads TCP through the
 * engine's calls (stack/tcp.h), never through a control block's fields. */
#ifndef USTCP_STACKTHREAD_STACK_IMPL_H
#define USTCP_STACKTHREAD_STACK_IMPL_H

#include <limits.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <ev.h>

#include "link.h"
#include "loop.h"
#include "stackthread.h"
#include "stack.h"
#include "steer.h"
#include "tcp.h"

/* io.c: a watcher of one of the stack's per-connection fds, in the
 * stack's io set (io_fd) rather than libev's table. */
#define US_IO_IN 1u
#define US_IO_OUT 2u
struct us_io {
	int set;                     /* the epoll set (us_stack.io_fd) */
	int fd;
	uint8_t want;                /* the directions waited for */
	uint8_t reg;                 /* those the set holds fd for */
	bool in_set;
	void (*on_in)(struct us_io *w);
	void (*on_out)(struct us_io *w);
};

void us_io_init(struct us_io *w, int set, int fd, void (*on_in)(struct us_io *), void (*on_out)(struct us_io *));
/* fd changed; the watcher is out of the set (forgotten) if it was in. */
void us_io_set_fd(struct us_io *w, int fd);
void us_io_start(struct us_io *w, unsigned dirs);
void us_io_stop(struct us_io *w, unsigned dirs);
static inline bool us_io_active(const struct us_io *w, unsigned dirs)
{
	return (w->want & dirs) != 0;
}
/* Out of the set, nothing more dispatched to it: before its fd closes or
 * its memory goes. */
void us_io_forget(struct us_io *w);
/* libev's watcher of the set: dispatches what it reports. */
void us_on_io(struct ev_loop *ev, ev_io *w, int revents);

struct us_conn {
	struct us_stack *st;         /* the stack that relays it */
	struct us_sock *sock;
	struct ust_tcb *tcb;         /* NULL once TCP let go of it */
	int sfd;                     /* the stack end, or -1 until paired */
	/* Until used, fds held for the stack end and the port reservation, so
	 * that socket() fails when fds run out, never bind(), connect() or
	 * listen(), as Linux's (us_spare_use); -1 once used. */
	int spare_end, spare_port;
	/* On the stack end: in, the program wrote (or shut, or closed); out,
	 * room in the pair for received bytes / tokens. */
	struct us_io io;
	/* A wildcard listener's kernel listeners on loopback, 127.0.0.1
	 * and ::1 (as its family takes them), and the connection accepted
	 * there that the pair had no room for yet (loopback.c); -1 without. */
	int lo_fd, lo6_fd, lo_held;
	struct us_io lo_io, lo6_io;
	uint32_t filler;             /* filler bytes still queued from the app end */
	bool looking;                /* us_relay_connect_look: conn_pump waits */
	bool hup_seen;               /* the stack end reported POLLHUP (for good) */
	bool listener;
	bool bound_addr;             /* bind() named our address (not INADDR_ANY) */
	bool app_eof;                /* the program will send nothing more */
	bool shut_sent;              /* the peer's FIN passed on */
	bool dead;                   /* TCP closed while the program held it */
	bool dirty;
	bool rd_shut;                /* the program shut its receiving side: what
	                              * arrives stays in TCP's ring (us_op_read_held) */
	bool parked;                 /* on us_stack.parked (below) */
	bool closing;                /* the program closed: release once the tail is sent */
	bool exec_kept;              /* never paired, held for the image an exec made
				      * (us_relay_sync) */
	/* The program's SHUT_WR put one byte after its data (shim/shutdown.c)
	 * that the relay never passes on: while the stack end holds it, the
	 * kernel flags the app end with POLLERR and ECONNRESET when the
	 * stack end closes, as Linux's socket after a reset, which the app
	 * end could not otherwise get once it cannot send (conn_died). It is
	 * read away before an orderly close. hold_last: it is about to be
	 * sent, nothing is read from the pair meanwhile. */
	bool hold_last, sentinel;
	/* The app end's SO_SNDBUF as last set (0: AF_UNIX's default), so
	 * that pair_fit changes it only when it should (relay.c). */
	int pair_sndbuf;
	/* SO_RCVLOWAT: received bytes wait in TCP's ring until this many are
	 * there (or the FIN, or the ring half full), so that the app end
	 * polls readable when Linux's socket would (conn_push). */
	int rcvlowat;
	/* What the program wrote before its SHUT_WR and TCP's send ring could
	 * not take yet, moved out of the pair so that the app end is writable
	 * at once, as Linux's socket is after SHUT_WR (us_relay_take_tail).
	 * At most what the pair held: the app end's send buffer. */
	char *tail;
	size_t tail_len, tail_off;
	/* Lists, each with a back-pointer so that leaving is O(1): the
	 * stack's relays, the dirty ones, the listeners stopped at their
	 * backlog (us_stack.all, .dirty, .blocked). */
	struct us_conn *all_next, **all_pprev;
	struct us_conn *dirty_next, **dirty_pprev;
	struct us_conn *blocked_next, **blocked_pprev;
	/* No stack end yet (a socket never connected nor listening), or the
	 * stack end hung up while the program, which shut both directions
	 * itself, still holds the socket: its close is learnt from
	 * us_sock_app_closed when shim/close.c pokes us (us_relay_wake). */
	struct us_conn *parked_next, **parked_pprev;
	/* A listener's delivered connections not yet accepted (the backlog
	 * counts them, as Linux counts its accept queue). */
	struct { uint32_t idx, gen; } *out;
	unsigned nout, backlog;
	bool blocked;                /* stopped at the backlog: accept() wakes us */
};

/* The stack of this process: one thread's, except the start-up fields
 * (under lock) and the call queue. */
/* How long a process keeps answering for the address after a listener
 * let half-open children go (us_stack.answer_until): their ACKs are a
 * round trip away, or a SYN-ACK timeout (1 s, then 2) for a peer that
 * lost ours; Linux answers them with RST whenever they come. */
#define US_HALF_OPEN_ANSWER UST_SEC(3)

struct us_stack {
	pthread_mutex_t lock;        /* start-up only */
	pid_t pid;                   /* the process whose thread runs */
	pid_t program;               /* the program's pid (a keeper keeps it for the close log) */
	int start_err;               /* memoised failure, -errno */
	/* The process's configuration (start.c, us_config), read once: a
	 * pointer, not a copy, so that start-up touches its 17 KiB once. */
	const struct ust_config *cfg;
	struct ust_stack st;
	struct ust_link link;
	struct ust_tcp tcp;
	struct ust_loop loop;
	struct ev_loop *ev;
	int wake_fd;                 /* eventfd: a call is queued */
	int parent_wake_fd;          /* a forked child's copy of its parent's */
	ev_io wake;
	int hup_fd;                  /* epoll set: stack ends whose app end may be gone */
	ev_io hup;
	int io_fd;                   /* epoll set: the watchers of io.c */
	ev_io io;
	struct us_call *_Atomic calls;
	/* Sockets socket() made on the program's thread, waiting to be
	 * adopted before the next call is served (us_sock_create); how many;
	 * the engine's connection count when they were last adopted (the
	 * program's thread compares it with the ceiling). */
	struct us_sock *_Atomic news;
	_Atomic unsigned news_waiting;
	_Atomic unsigned nconns_seen;
	struct us_conn *dirty;
	/* The relays by slot index (us_sock_slots() entries, allocated at the
	 * first; address space until used), and all of them in a list. */
	struct us_conn **conns;
	struct us_conn *all;
	unsigned nrelays;            /* how many of conns[] are set */
	struct us_conn *blocked;     /* listeners stopped at their backlog */
	struct us_conn *parked;      /* relays waiting for the program's close (us_conn.parked) */
	/* The listening AF_UNIX socket (abstract, autobound) an app end
	 * connects to at connect() or listen(), to get its stack end
	 * (us_relay_pair); opened at the first. */
	int pair_lfd;
	bool pair_ready;
	/* Connections a pairing left in that listener's queue: its app end
	 * connected and no accept found a number for the stack end (EMFILE
	 * once more after the spare went: another thread of the program took
	 * it). The queue is first in, first out: the next accepts close
	 * them, so that none becomes another socket's stack end. */
	unsigned pair_stale;
	struct sockaddr_un pair_addr;
	socklen_t pair_len;
	int app_sndbuf;              /* an AF_UNIX socket's default send buffer */
	unsigned nblocked;           /* listeners stopped at their backlog */
	bool keeper;                 /* this process is an exit keeper */
	bool forking_keeper;         /* the fork under way makes a keeper */
	bool handed_over;            /* a keeper took our connections: serve nothing */
	/* The guardian (start.c): the task that runs the loop, apart from
	 * the program's thread group, and the pidfd that tells it the
	 * program is gone (-1 without one: the tick asks getppid). */
	bool guardian;
	int wake_name_fd; /* us_wake_addr's socket: pokes from unrelated holders */
	ev_io wake_name;
	int program_fd;
	ev_io program_gone;
	char death[32];              /* how the program ended: "killed by SIGKILL", or "" */
	/* A listener let its half-open children go (C30): until then a
	 * keeper stays, with the address's whole filter, so that their late
	 * ACKs find the "no connection" RST that Linux's kernel gives them
	 * (relay.c release_tcb). */
	ust_time answer_until;
	ev_timer tick;               /* once a second: keeper's end, last thread */
	int own_fds[8];              /* fds libev made on the stack thread */
	unsigned n_own_fds;
	int close_log_fd;
	bool close_log_off;          /* it would not open: no more tries */
	int ctl_fd;                  /* ustcp-stat's way in: RUN_DIR/PID.sock */
	ev_io ctl;
	ev_timer ctl_rest;            /* the control socket's pause between callers */
	char ctl_path[PATH_MAX];
	/* TCP_MD5SIG's keys of sockets TCP let go of that the program holds
	 * still (ops.c): Linux's closed socket keeps its keys, which a
	 * connect after a failed one signs with. Those of slots freed since
	 * (gen) go at the tick's sweep, once a second. */
	struct us_md5_kept {
		struct us_md5_kept *next;
		struct us_sock *sock;
		uint32_t gen;
		struct tcp_md5 *keys;
	} *md5_kept;
	uint8_t scratch[65536];
};

extern struct us_stack us_st;

/* start.c */
/* This process no longer runs the stack it has (a forked child's copy, or
 * one handed to a keeper before an exec that failed): its fds are closed
 * and a new socket starts a new stack. */
void us_stack_forget(void);

/* fds.c */
/* Where the stack's fds go: this and above (half the fd limit, at most
 * 32768), out of the program's way. */
int us_fd_base(void);
/* Moves fd there (closing the low one) and marks it; fd itself when there
 * is no room. */
int us_fd_high(int fd);
/* A marked copy of fd there (F_DUPFD_CLOEXEC), or -1 with errno. */
int us_fd_dup_high(int fd);
/* Where the few fds libev watches go (io.c): 1024, the first number
 * select() cannot use, or us_fd_base() if lower; and the same move there. */
int us_fd_fixed_base(void);
int us_fd_fixed(int fd);

/* calls.c: the wake-up eventfd's watcher runs the queued calls. */
void us_on_wake(struct ev_loop *ev, ev_io *w, int revents);

/* relay.c: every function takes the stack's state by pointer (a
 * connection knows its stack), so that tests/unit/test_relay.c can drive
 * a relay of its own without the library's global stack. */
struct us_conn *us_conn_of(struct us_stack *st, const struct us_sock *s);
/* A relay for s on stack end sfd, registered (its watchers idle). */
struct us_conn *us_conn_new(struct us_stack *st, struct us_sock *s, int sfd);
/* Forgets the relay (closes the stack end); frees s too if free_sock. */
void us_conn_free(struct us_conn *c, bool free_sock);
/* Sends a token on a listener's stack end with fd attached; false if it
 * did not go (relay.c). */
bool us_send_token(int lsfd, int fd, const struct us_token *tok);
/* Loopback connections to a wildcard listener (loopback.c). */
void us_lo_listen(struct us_conn *l, uint16_t port, unsigned backlog);
void us_lo_deliver(struct us_conn *l);
void us_lo_close(struct us_conn *l);
/* The listener's options that act on the handshake, again to its kernel
 * listeners on loopback (after a setsockopt). */
void us_lo_options(struct us_conn *l);
/* A TCP_MD5SIG key the listener took, or deleted (keylen 0), on its
 * kernel listeners too. */
void us_lo_md5(struct us_conn *l, const struct ust_tcp_md5_key *k);
/* A socket TCP lets go of keeps the block's keys (relay.c conn_died);
 * once a second those of freed slots go. */
void us_md5_keep(struct us_stack *st, struct us_sock *s, struct tcp_md5 *keys);
void us_md5_kept_sweep(struct us_stack *st);
/* A fresh socket's app end: an unconnected AF_UNIX stream socket, which
 * polls OUT|HUP as Linux's fresh TCP socket. st: its identity. */
int us_new_app_end(struct us_conn *c, int *app, struct stat *st);
/* The app end and its two spares, on any thread (relay.c); 0 or -errno
 * with nothing left open. */
int us_app_end_fds(int *app, int *spare_end, int *spare_port, struct stat *st);
/* The sockets us_sock_create queued (ops.c), on the stack thread: each gets
 * its relay and control block, in the order they were made. */
void us_adopt_news(struct us_stack *st);
/* Gives a held fd's number back to the kernel for what needs it now. */
void us_spare_use(int *spare);
/* Connects c's app end to a new stack end: at listen(), a non-blocking
 * connect(), or once a blocking one is synchronized. With filler, the app
 * end is not writable until connected (a listener's: never). */
int us_relay_pair(struct us_conn *c, bool filler);
/* connect()'s SYN goes out now, and one look for the answer before the
 * caller wakes; with pair, the app end is then paired (with filler if the
 * answer has not come). 0 or -errno. */
int us_relay_connect_look(struct us_conn *c);
/* A new socketpair: the app end stays low (the program's number), the
 * stack end goes high and non-blocking. st: the app end's identity. */
int us_new_pair(int *app, int *sfd, struct stat *st);
/* Mirrors the control block's state and addresses into the shared slot. */
void us_publish(struct us_conn *c);
/* Watches the stack end, once, for the app end hanging up. */
void us_hup_arm(struct us_conn *c);
void us_mark_dirty(struct us_conn *c);
/* Has the program let go of the app end (POLLHUP on the stack end)? */
bool us_app_gone(int sfd);
/* The program let go: CLOSE (or ABORT) and forget the relay. */
void us_conn_release(struct us_conn *c, bool abort);
/* As us_conn_release, but the slot stays: the process that takes the
 * socket over frees it (us_op_hand_on). */
void us_conn_hand_on(struct us_conn *c);
/* TCP's event callback: notes the connection for us_relay_after (ctx is
 * unused: the control block's user is its connection). */
void us_on_tcp_event(void *ctx, struct ust_tcb *t, unsigned events);
/* The loop's after hook (on the us_stack's loop): acts on what TCP
 * reported. */
void us_relay_after(struct ust_loop *l, ust_time now);
/* A listener's connections delivered to the program and not yet accepted
 * (the list of them shortened to those). */
unsigned us_relay_outstanding(struct us_conn *l);
/* TCP's backlog callback: a listener's share counted again. */
void us_on_backlog_full(void *ctx, struct ust_tcb *t);
/* The one-shot epoll set of stack ends that may have hung up (the watcher
 * is the us_stack's hup). */
void us_on_hup(struct ev_loop *ev, ev_io *w, int revents);
/* Takes in what programs wrote and closed just now (before a hand-over);
 * with exec, the never-paired sockets the new image inherits stay. */
void us_relay_sync(struct us_stack *st, bool exec);
/* Listeners stopped at their backlog look again (an accept() woke us);
 * with poked (us_stack_poke: an accept or a close), the parked relays
 * whose program closed are released too. */
void us_relay_wake(struct us_stack *st, bool poked);
/* After the program's SHUT_WR: everything it wrote leaves the pair now. */
void us_relay_hold_last(struct us_conn *c);
void us_relay_notsent_lowat(struct us_conn *c);
void us_relay_take_tail(struct us_conn *c, bool sentinel);
/* The same for one relay (it may be freed: look it up again). */
void us_relay_pull(struct us_conn *c);
/* A listener hands what TCP's accept queue holds to the program, now;
 * how many it handed. */
unsigned us_listener_deliver(struct us_conn *l);

/* ports.c: the engine's port_claim, port_release and port_foreign (ctx:
 * the struct us_stack). */
int us_port_claim(void *ctx, uint16_t *port, unsigned how, unsigned families);
/* The IP_LOCAL_PORT_RANGE of the socket a bind, connect or listen of the
 * stack thread serves (0: none), for the claims it makes: set before the
 * engine's call, 0 after (us_op_bind, us_op_connect, us_op_listen). */
void us_ports_range(uint32_t range);
void us_port_release(void *ctx, uint16_t port, const struct ust_ip6 *raddr, uint16_t rport);
bool us_port_foreign(void *ctx, uint16_t port, const struct ust_ip6 *raddr, uint16_t rport);
/* The port's reservations for these families (UST_TCP_PORT_*) listen (a
 * listener); false if another process listens there. True for a port we
 * do not hold. */
bool us_port_listen(uint16_t port, unsigned families);
/* They stop listening (the listener closed; its children may hold on). */
void us_port_unlisten(uint16_t port);
/* Our entry in port's SO_REUSEPORT group across processes: join it with
 * one listener more, before a listen (false: the groups file has no room
 * for us there, listen's EADDRINUSE); then it follows our listeners there
 * (after a listen, or a listener's close). */
bool us_port_group_join(struct us_stack *st, uint16_t port);
void us_port_group_update(struct us_stack *st, uint16_t port);
/* A connect from a bound port took lport <-> raddr:rport: any other
 * stack's TIME-WAIT on it is to end (the engine's tuple_taken there). */
void us_port_tuple_claim(uint16_t port, const struct ust_ip6 *raddr, uint16_t rport);
bool us_tuple_taken(void *ctx, uint16_t port, const struct ust_ip6 *raddr, uint16_t rport);
/* The engine's tuple_hold and group_stray (a group's connections in the
 * groups file, addrshare.c). */
void us_port_tuple_hold(void *ctx, uint16_t port, const struct ust_ip6 *raddr, uint16_t rport);
bool us_port_group_stray(void *ctx, uint16_t port, const struct ust_ip6 *raddr, uint16_t rport);
/* The engine's reuseport_pick. */
int us_port_group_pick(void *ctx, uint16_t port, const struct ust_ip6 *raddr, uint16_t rport, unsigned nlocal,
		       bool exact, bool *shared);
/* A port a TIME-WAIT goes to the address's collector with (twcollect.c):
 * held in the address share (a client port) or by kernel reservations
 * (fd, -1 for a family without one), and its flags. */
struct us_port_desc {
	bool shared, reuse, reuseport;
	int fd[2];
	unsigned refs;                /* our users of it (the giver's) */
};
/* The giver's: how we hold port (false: not at all, or as a SO_REUSEPORT
 * group's, which stays with its group); and, around the forgetting of a
 * TIME-WAIT the collector took, that its release buries no tombstone
 * (the collector's TIME-WAIT would take it for its 4-tuple taken over). */
bool us_port_describe(uint16_t port, struct us_port_desc *d);
void us_port_handing(bool on);
/* The collector's: one more user of port as d describes it (the fds are
 * the giver's, duplicated here), its share word taken over from owner
 * word from; 0, or -errno (the port is someone else's now). */
int us_port_adopt(struct us_stack *st, uint16_t port, const struct us_port_desc *d, uint32_t from);
/* The collector's, for a port whose TIME-WAITs come in more than one
 * batch: until the last, a segment of it that matches none of ours may be
 * the giver's, and gets no RST from us (us_port_foreign). */
void us_port_quiet(uint16_t port, bool on);
/* fn(ctx, fd) for each reservation: one pass over the ports. */
void us_ports_each_fd(void (*fn)(void *ctx, int fd), void *ctx);
/* A forked child's copy of the table is not its own: close and forget. */
void us_ports_forget(void);
/* The address's collector makes no connections: the steering pool's
 * ports go back, and none is kept from now on. */
void us_ports_pool_drain(void);
/* Steering: takes a lease of client ports ahead and claims it, when the
 * pool runs low (at the first connect, us_op_steer_lease, then as it
 * empties). */
void us_ports_steer_fill(const struct us_stack *st);
/* Was a lease claimed since the stack started? (Any thread.) */
bool us_ports_steer_primed(void);
/* The broker refused the claim seq: its ports go back. */
void us_ports_refused(uint32_t seq);

/* addrshare.c: what the stacks on one address share (RUN_DIR/addr-A.B.C.D). */
/* Maps the file, creating it the first time; 0 or -errno (then the stack
 * keeps a secret of its own and no tombstones). */
int us_share_open(const struct ust_config *cfg);
/* Whether RUN_DIR passed its checks (rundir.h); says why not, once. */
bool us_run_dir_usable(const char *dir);
/* The address's ISN and timestamp secret; false without the file. */
bool us_share_secret(uint64_t key[2]);
/* The connection lport <-> raddr:rport just ended here: for a moment,
 * other stacks leave its segments alone. */
void us_share_bury(uint16_t lport, uint32_t raddr, uint16_t rport);
/* Did another stack end that connection a moment ago? */
bool us_share_buried(uint16_t lport, uint32_t raddr, uint16_t rport);
/* A live tombstone of ours for the 4-tuple: its late segments are ours to
 * answer (with RST), answerer for the address or not. */
bool us_share_buried_ours(uint16_t lport, uint32_t raddr, uint16_t rport);
/* Client ports held in the file (ports.c): are we an owner there; take port for us unless a live
 * stack holds it (false; also without the file or an owner slot); give it
 * back; is it held by another live stack in a way a bind (with reuse:
 * SO_REUSEADDR) may not share? */
bool us_share_owner(void);
/* Our owner word (0: none), which our client ports' words hold. */
uint32_t us_share_owner_word(void);
/* The owner slots of the other live stacks on our address, up to max (64
 * at most): their owner locks. */
unsigned us_share_owners(unsigned *slots, unsigned max);
/* Sets or clears the SO_REUSEADDR mark of a port we hold in the file. */
void us_share_port_mark(uint16_t port, bool reuse);
bool us_share_port_take(uint16_t port, bool reuse);
/* Takes port over from the owner whose word is from (marked with
 * SO_REUSEADDR as reuse): false if its word is no longer that. */
bool us_share_port_adopt(uint16_t port, uint32_t from, bool reuse);
/* Is port's word ours? */
bool us_share_port_ours(uint16_t port);
void us_share_port_give(uint16_t port);
bool us_share_port_busy(uint16_t port, bool reuse);
/* The file's fd, which our owner lock lives on (-1: none): a keeper keeps
 * it. */
int us_share_fd(void);
/* A forked child, or a stack forgotten after a failed exec: the ports in
 * the file are whoever kept the open file's (the parent, the keeper). */
void us_share_disown(void);
/* SO_REUSEPORT groups that span processes (RUN_DIR/groups-A.B.C.D): can
 * we be in one (the file and an owner slot)? Our entry for port, with our
 * listeners in its group (0: none left, but connections are, so the port
 * is still shared); false when the port's window is full. Our entry
 * gone. The port's live members, ourselves included, in one order for
 * every stack; how many. */
struct us_group_member {
	uint32_t owner;
	uint16_t listeners;
	bool self;
};
#define US_GROUP_MAX 64
bool us_share_groups(void);
bool us_share_group_set(uint16_t port, unsigned listeners);
void us_share_group_leave(uint16_t port);
unsigned us_share_group_members(uint16_t port, struct us_group_member *out, unsigned max);
/* Does another stack hold port in its group? From the entries' owner
 * generations alone: a dead owner whose slot nobody took since still
 * counts (the safe mistake: a segment left unanswered). */
bool us_share_group_others(uint16_t port);
/* The members' connections on group ports (addrshare.c): noted as a
 * listener's child is made, let go as its control block goes; free: no
 * live stack holds the 4-tuple, and every one was noted. */
/* IPv6 addresses checked by a live stack on the address (DAD passed):
 * is a one? Note a as checked by us (after our DAD passed). */
bool us_share_dad_passed(const struct ust_ip6 *a);
/* Is this stack the one that answers for the address (echo requests,
 * segments for ports nobody holds)? With may false it is not, and lets
 * the role go if it had it. Without a share, may. */
bool us_share_answerer(bool may);
/* ports.c: whether this stack answers what reaches it for the address
 * as a whole (ctx unused): a steered stack always (the broker gave it
 * the frame, and no other), an unsteered one if it is the answerer; a
 * keeper whose filter no longer takes such frames never. */
bool us_answers_for_address(void *ctx);
/* ports.c: this stack (a keeper that narrowed its filter) answers for the
 * address no more. */
void us_ports_answer_never(void);
void us_share_dad_note(const struct ust_ip6 *a);
/* The neighbours the stacks on the address resolved (the share's
 * records; ctx: our interface's link address): a's link address and how
 * long ago a stack on our link confirmed it, if any did; a confirmed one,
 * for the others. */
bool us_share_neigh_recall(void *ctx, const struct ust_ip6 *a, uint8_t mac[UST_ETH_ALEN], ust_time *age);
void us_share_neigh_note(void *ctx, const struct ust_ip6 *a, const uint8_t mac[UST_ETH_ALEN]);
/* start.c: notes our preferred IPv6 addresses in the share, once each
 * (again: each time, so that a record outlives a checker that ended). */
void us_dad_note(bool again);
void us_share_tuple_hold(uint16_t lport, uint32_t raddr, uint16_t rport);
void us_share_tuple_let_go(uint16_t lport, uint32_t raddr, uint16_t rport);
bool us_share_tuple_free(uint16_t lport, uint32_t raddr, uint16_t rport);

/* steer.c: steering by port (stack/steer.h), the stack's side. */
/* Starts with the channel the broker kept (start.c, after the loop). */
void us_steer_start(int chan, struct ust_loop *loop, struct ust_counters *ctr, struct ust_link *link);
/* The stack's output function (ctx: the link): frames from a port whose
 * claim is not answered yet are held until it is (us_steer_hold). */
unsigned us_steer_output(void *ctx, struct ust_pkt *const *pkts, unsigned n);
void us_steer_hold(uint16_t port, uint32_t seq);
bool us_steer_on(void);
int us_steer_fd(void);
/* Was the claim seq answered? */
bool us_steer_done(uint32_t seq);
/* Claims ports held in the ports file, or a port held by the kernel
 * reservation fd; returns the claim's seq, 0 if it could not be sent. */
uint32_t us_steer_claim_shared(const uint16_t *ports, unsigned n);
uint32_t us_steer_claim_bound(uint16_t port, int fd);
/* Claims a port of a SO_REUSEPORT group, held by the kernel reservation
 * fd (bound with SO_REUSEPORT): its answer brings a socket for the port's
 * frames. Returns the claim's seq, 0 if it could not be sent. */
uint32_t us_steer_claim_group(uint16_t port, int fd);
/* The port is no longer ours (nor its sockets, a group port's). */
void us_steer_release(uint16_t port);
/* Adds what the kernel dropped on the group ports' sockets to rx-overrun
 * (ust_link_count_overruns). */
void us_steer_count_overruns(void);
/* Calls fn for the channel and the group ports' sockets. */
void us_steer_each_fd(void (*fn)(void *ctx, int fd), void *ctx);
/* A forked child's copy of the channel is not its own. */
void us_steer_forget(void);

/* looped.c: datagrams to our address that another process's stack on it
 * must take. After the loop and the address share are up: */
void us_looped_open(void);
void us_looped_each_fd(void (*fn)(void *ctx, int fd), void *ctx);
/* A forked child's copies are not its own. */
void us_looped_forget(void);

/* control.c */
/* TCP's closed callback: one line to USTCP_CLOSE_LOG. */
void us_close_log(void *ctx, const struct ust_tcb *t);
/* The close log's fd, opened at the first call; -1 without one. */
int us_close_log_fd(void);
/* Publishes RUN_DIR/PID.sock for ustcp-stat. */
void us_ctl_open(void);
/* Closes it without removing the file (it is another process's);
 * in_loop: its watcher runs in this process's loop. */
void us_ctl_close(bool in_loop);

/* keeper.c */
/* Closes every fd in [first, last] but the stack's own (and, with
 * keep_broker, the launcher's broker socket): for the keeper, and for the
 * program's close_range. On the stack thread, or alone in a keeper. 0 or
 * -ENOMEM. */
int us_close_all_but_stack(unsigned first, unsigned last, bool keep_broker);
void us_on_tick(struct ev_loop *ev, ev_timer *w, int revents);
/* The program is gone (its pidfd, or the tick): the guardian adopts its
 * connections and becomes its keeper, or exits with nothing left. */
void us_on_program_gone(struct ev_loop *ev, ev_io *w, int revents);
void us_on_wake_name(struct ev_loop *ev, ev_io *w, int revents);
/* The parked stack thread (start.c): let it end the program with exit(0)
 * (pthread_exit in main left only it). */
void us_parked_exit(void);
/* The guardian's end when it stops serving without becoming a keeper
 * (after an exec's hand-over): the parked thread ends too once the
 * guardian has exited (start.c). */
_Noreturn void us_guardian_leave(void);
/* A keeper's end: remove its control socket, flush the capture, _exit. */
void us_keeper_exit(void) __attribute__((noreturn));
/* In a keeper: exit at once if nothing is left to finish. */
void us_keeper_check(void);

/* Is the keeper left with TIME-WAITs alone, which it may hand to the
 * address's collector: no relay, nothing kept for an exec'd image? */
bool us_keeper_tw_only(void);

/* twcollect.c: one keeper per address waits out the TIME-WAITs of the
 * programs that exited. Once a second in a keeper: collects, or hands its
 * TIME-WAITs to the collector, or nothing. */
void us_twc_check(void);
/* A collector's end: its socket goes. */
void us_twc_leave(void);
/* A handed-over TIME-WAIT's program (tag: ust_tcp_tag): its pid, how it
 * died, and its close log's fd (-1: none), for the line at the end; put
 * once that line is written. */
int us_twc_origin(uint32_t tag, pid_t *pid, const char **death);
void us_twc_origin_put(uint32_t tag);

/* kfilter.c */
/* In a keeper on a socket of its own, with no relay left: narrows the
 * link's filter to the ports it still holds, if they changed. */
void us_keeper_filter(void);

#endif
