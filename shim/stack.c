/* The stack thread: one libev loop that runs the protocol stack on the link
 * and relays every connection between its control block and the stack end
 * of the connection's socketpair.
 *
 * Per connection (struct us_conn, private to this thread):
 *   app -> TCP   the stack end is readable: readv() straight into the free
 *                spans of TCP's send ring; EOF means the program shut its
 *                sending side (shutdown or close): the FIN goes after the data.
 *   TCP -> app   in-order bytes go from the receive ring to the stack end
 *                with sendmsg(); the peer's FIN becomes shutdown(SHUT_WR)
 *                once everything before it is in the pair.
 *   release      the app end is gone (POLLHUP on the stack end, watched by
 *                a one-shot epoll set of our own): CLOSE, or ABORT when the
 *                program left data unread (the kernel tells us with
 *                ECONNRESET on the stack end, RFC 1122 §4.2.2.13).
 *   death        TCP reached CLOSED with an error while the program holds
 *                the socket: the error is published for the overridden
 *                calls, the data received before it is pushed, then the
 *                stack end is closed with a byte unread, which makes the
 *                kernel report POLLERR and ECONNRESET on the app end.
 * A connecting, listening or fresh socket has its app end's send buffer
 * full of filler bytes, so that it is not writable, as in TCP. */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <dirent.h>
#include <dlfcn.h>
#include <net/if.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "link.h"
#include "log.h"
#include "loop.h"
#include "shim.h"
#include "stack.h"
#include "tcp.h"

struct us_conn {
	struct us_sock *sock;
	struct ust_tcb *tcb;         /* NULL once TCP let go of it */
	int sfd;                     /* the stack end */
	ev_io rd;                    /* the program wrote (or shut, or closed) */
	ev_io wr;                    /* room in the pair for received bytes / tokens */
	uint32_t filler;             /* filler bytes still queued from the app end */
	bool listener;
	bool app_eof;                /* the program will send nothing more */
	bool shut_sent;              /* the peer's FIN passed on */
	bool dead;                   /* TCP closed while the program held it */
	bool dirty;
	struct us_conn *dirty_next;
	/* A listener's delivered connections not yet accepted (the backlog
	 * counts them, as Linux counts its accept queue). */
	struct { uint32_t idx, gen; } *out;
	unsigned nout, backlog;
	bool blocked;                /* stopped at the backlog: accept() wakes us */
};

static struct {
	pthread_mutex_t lock;        /* start-up only */
	pid_t pid;                   /* the process whose thread runs */
	int start_err;               /* memoised failure, -errno */
	struct ust_config cfg;
	struct ust_stack st;
	struct ust_link link;
	struct ust_tcp tcp;
	struct ust_loop loop;
	struct ev_loop *ev;
	int wake_fd;                 /* eventfd: a call is queued */
	ev_io wake;
	int hup_fd;                  /* epoll set: stack ends whose app end may be gone */
	ev_io hup;
	struct us_call *_Atomic calls;
	struct us_conn *dirty;
	struct us_conn *conns[US_MAX_SOCKS];
	int app_sndbuf;              /* an AF_UNIX socket's default send buffer */
	unsigned nblocked;           /* listeners stopped at their backlog */
	bool keeper;                 /* this process is an exit keeper */
	bool forking_keeper;         /* the fork under way makes a keeper */
	bool handed_over;            /* a keeper took our connections: serve nothing */
	ev_timer tick;               /* once a second: keeper's end, last thread */
	int own_fds[8];              /* fds libev made on the stack thread */
	unsigned n_own_fds;
	int close_log_fd;
	int ctl_fd;                  /* ustcp-stat's way in: RUN_DIR/PID.sock */
	ev_io ctl;
	char ctl_path[PATH_MAX];
	uint8_t scratch[65536];
} S = { .lock = PTHREAD_MUTEX_INITIALIZER, .close_log_fd = -1, .ctl_fd = -1 };

/* Our ports in the kernel's port table (see "ports shared with the other
 * processes on our address" below): the reservation socket and the number
 * of control blocks using it. */
static struct { int fd; unsigned refs; bool reuse; } ports[65536];

/* Set on the stack thread (and while it starts): its fds go high. */
static __thread bool in_stack;

/* ---- fds above the program's range ---- */

static int high_base(void)
{
	static int base;
	struct rlimit rl;

	if (!base) {
		rlim_t cur = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
		if (cur == RLIM_INFINITY || cur > 65536)
			cur = 65536;
		base = (int)(cur / 2 > 64 ? cur / 2 : 64);
	}
	return base;
}

int us_fd_high(int fd)
{
	int h;

	if (fd < 0 || fd >= high_base())
		return fd;
	h = REAL(fcntl)(fd, F_DUPFD_CLOEXEC, high_base());
	if (h < 0)
		return fd; /* the upper half is full: keep the low number */
	REAL(close)(fd);
	return h;
}

/* An fd libev made for itself on the stack thread: moved high and
 * remembered, so that a keeper knows to keep it. */
static int own_fd(int fd)
{
	fd = us_fd_high(fd);
	if (fd >= 0 && S.n_own_fds < sizeof(S.own_fds) / sizeof(S.own_fds[0]))
		S.own_fds[S.n_own_fds++] = fd;
	return fd;
}

/* libev makes its own fds (epoll, eventfd, timerfd) inside the loop: on the
 * stack thread these wrappers move them high like ours. Elsewhere they are
 * libc's. */
US_EXPORT int epoll_create1(int flags)
{
	int fd = REAL(epoll_create1)(flags);
	return in_stack ? own_fd(fd) : fd;
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
	return in_stack ? own_fd(fd) : fd;
}

US_EXPORT int pipe2(int fds[2], int flags)
{
	int r = REAL(pipe2)(fds, flags);
	if (r == 0 && in_stack) {
		fds[0] = own_fd(fds[0]);
		fds[1] = own_fd(fds[1]);
	}
	return r;
}

US_EXPORT int timerfd_create(int clock, int flags)
{
	int fd = REAL(timerfd_create)(clock, flags);
	return in_stack ? own_fd(fd) : fd;
}

US_EXPORT int signalfd(int fd, const sigset_t *mask, int flags)
{
	int r = REAL(signalfd)(fd, mask, flags);
	return in_stack && fd == -1 ? own_fd(r) : r;
}

/* ---- configuration ---- */

static struct ust_config config;
static int config_err;
static pthread_once_t config_once = PTHREAD_ONCE_INIT;

static const char *env(const char *name)
{
	return getenv(name);
}

static void load_config(void)
{
	char err[UST_CONFIG_ERR_MAX];

	config_err = ust_config_load(&config, env, err, sizeof(err));
	if (config_err < 0) {
		ust_log(UST_LOG_ERROR, "%s", err);
		return;
	}
	if (config.log_file[0]) {
		int fd = open(config.log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0)
			ust_log(UST_LOG_ERROR, "USTCP_LOG_FILE=\"%s\": %s", config.log_file, strerror(errno));
		ust_log_setup(config.log_level, us_fd_high(fd));
	} else {
		ust_log_setup(config.log_level, -1);
	}
}

const struct ust_config *us_config(void)
{
	pthread_once(&config_once, load_config);
	if (config_err < 0) {
		errno = -config_err;
		return NULL;
	}
	return &config;
}

/* ---- small helpers on the stack thread ---- */

static struct us_conn *conn_of(const struct us_sock *s)
{
	return S.conns[us_sock_idx(s)];
}

static void publish(struct us_conn *c)
{
	struct ust_tcb *t = c->tcb;

	if (!t)
		return;
	atomic_store(&c->sock->state, (int)t->state);
	atomic_store(&c->sock->local, us_pack(t->laddr, t->lport));
	atomic_store(&c->sock->remote, us_pack(t->raddr, t->rport));
	if (UST_TCP_SYNCHRONIZED(t->state))
		atomic_fetch_or(&c->sock->flags, US_F_EVER_SYNCED);
}

static void mark_dirty(struct us_conn *c)
{
	if (c->dirty)
		return;
	c->dirty = true;
	c->dirty_next = S.dirty;
	S.dirty = c;
}

/* A reference to the program's app end, found by the number it had when
 * created and checked by inode (the program may have closed or reused that
 * number). -1 when it cannot be found. The caller closes it. */
static int app_end(struct us_conn *c)
{
	struct stat st;
	int fd = c->sock->app_fd;

	if (fd < 0)
		return -1;
	fd = REAL(fcntl)(fd, F_DUPFD_CLOEXEC, high_base());
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || st.st_ino != c->sock->app_ino || st.st_dev != c->sock->app_dev) {
		REAL(close)(fd);
		return -1;
	}
	return fd;
}

/* One-shot HUP watch: epoll reports only POLLHUP/POLLERR for events 0. */
static void hup_arm(struct us_conn *c)
{
	struct epoll_event e = { .events = EPOLLONESHOT, .data.ptr = c };

	if (epoll_ctl(S.hup_fd, EPOLL_CTL_MOD, c->sfd, &e) < 0)
		epoll_ctl(S.hup_fd, EPOLL_CTL_ADD, c->sfd, &e);
}

static bool app_gone(int sfd)
{
	struct pollfd p = { .fd = sfd, .events = POLLRDHUP };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLHUP);
}

static void conn_free(struct us_conn *c, bool free_sock)
{
	ev_io_stop(S.ev, &c->rd);
	ev_io_stop(S.ev, &c->wr);
	if (c->sfd >= 0) {
		epoll_ctl(S.hup_fd, EPOLL_CTL_DEL, c->sfd, NULL);
		REAL(close)(c->sfd);
	}
	S.conns[us_sock_idx(c->sock)] = NULL;
	if (c->blocked)
		S.nblocked--;
	free(c->out);
	if (free_sock)
		us_sock_free(c->sock);
	/* The dirty list may still name it: unlink. */
	for (struct us_conn **p = &S.dirty; *p; p = &(*p)->dirty_next) {
		if (*p == c) {
			*p = c->dirty_next;
			break;
		}
	}
	free(c);
}

/* The program let go of the socket: CLOSE (or ABORT) and forget the relay.
 * TCP keeps the control block until CLOSED (an orphan). */
static void conn_release(struct us_conn *c, bool abort)
{
	struct ust_tcb *t = c->tcb;
	ust_time now = ust_now();

	if (t) {
		/* A connection that was queued for accept but never taken
		 * (its app end died in flight) is reset, like a child still
		 * in Linux's accept queue when the listener closes (C30). */
		bool unaccepted = t->listener == NULL && !c->listener && c->sock->owner == S.pid &&
				  (atomic_load(&c->sock->flags) & (US_F_ACCEPTED | US_F_CONNECTING)) == 0 &&
				  UST_TCP_SYNCHRONIZED(t->state);
		uint16_t lport = t->lport;
		t->user = NULL;
		if (abort || unaccepted)
			ust_tcp_abort(t, now);
		else
			ust_tcp_close(t, now);
		c->tcb = NULL;
		/* Its children may hold the port on (TIME-WAIT): the
		 * reservation stops listening, so that a new listener with
		 * SO_REUSEADDR may share it, as on Linux. */
		if (c->listener && ports[lport].refs)
			REAL(shutdown)(ports[lport].fd, SHUT_RDWR);
	}
	conn_free(c, true);
}

/* ---- app -> TCP ---- */

static void conn_pull(struct us_conn *c);

static void rd_update(struct us_conn *c)
{
	struct iovec iov[2];
	bool want = c->tcb && !c->app_eof && !c->dead && !c->listener && !c->filler &&
		    UST_TCP_SYNCHRONIZED(c->tcb->state) && ust_tcp_snd_spans(c->tcb, iov) > 0;

	if (want && !ev_is_active(&c->rd))
		ev_io_start(S.ev, &c->rd);
	else if (!want && ev_is_active(&c->rd))
		ev_io_stop(S.ev, &c->rd);
}

/* The program shut its sending side or closed: a FIN after the data. If
 * the app end is gone too, that was the last close. */
static void on_app_eof(struct us_conn *c)
{
	c->app_eof = true;
	/* A close hangs the stack end up in the same step as it ends the
	 * data, so this tells close (CLOSE: FIN or RST, SO_LINGER) from
	 * shutdown (a FIN). */
	if (app_gone(c->sfd)) {
		conn_release(c, false);
		return;
	}
	if (c->tcb && UST_TCP_SYNCHRONIZED(c->tcb->state))
		ust_tcp_shutdown(c->tcb, SHUT_WR, ust_now());
	hup_arm(c);
	rd_update(c);
}

static void conn_pull(struct us_conn *c)
{
	struct iovec iov[2];
	unsigned n;

	while (c->tcb && !c->app_eof && !c->dead && (n = ust_tcp_snd_spans(c->tcb, iov)) > 0) {
		ssize_t r = REAL(readv)(c->sfd, iov, (int)n);
		if (r > 0) {
			ust_tcp_snd_commit(c->tcb, (uint32_t)r, ust_now());
			continue;
		}
		if (r == 0) {
			on_app_eof(c);
			return;
		}
		if (errno == ECONNRESET) {
			/* The app end was closed with received data unread. */
			conn_release(c, true);
			return;
		}
		break; /* EAGAIN */
	}
	rd_update(c);
}

static void on_rd(struct ev_loop *ev, ev_io *w, int revents)
{
	struct us_conn *c = ust_container_of(w, struct us_conn, rd);

	conn_pull(c);
	ust_loop_kick(&S.loop, ust_now());
}

/* ---- TCP -> app ---- */

/* Passes received bytes on; returns false while bytes remain that the pair
 * cannot take yet. */
static bool conn_push(struct us_conn *c)
{
	struct ust_tcb *t = c->tcb;
	struct iovec iov[2];
	unsigned n;

	if (!t || c->shut_sent)
		return true;
	while ((n = ust_tcp_rcv_spans(t, iov)) > 0) {
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = n };
		ssize_t r = REAL(sendmsg)(c->sfd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r > 0) {
			ust_tcp_rcv_consumed(t, (uint32_t)r, ust_now());
			continue;
		}
		if (r < 0 && errno == EAGAIN) {
			ev_io_start(S.ev, &c->wr);
			return false;
		}
		/* EPIPE: the program shut its receiving side; what arrives
		 * is read and dropped, as nobody can see it. */
		ust_tcp_rcv_consumed(t, t->rcvbuf.len, ust_now());
		break;
	}
	ev_io_stop(S.ev, &c->wr);
	if (t->fin_rcvd && !c->shut_sent) {
		REAL(shutdown)(c->sfd, SHUT_WR);
		c->shut_sent = true;
	}
	return true;
}

/* ---- listeners ---- */

static struct us_conn *conn_new(struct us_sock *s, int sfd)
{
	struct us_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->sock = s;
	c->sfd = sfd;
	ev_io_init(&c->rd, on_rd, sfd, EV_READ);
	S.conns[us_sock_idx(s)] = c;
	return c;
}

static void on_wr(struct ev_loop *ev, ev_io *w, int revents);

/* A new socketpair: the app end stays low (the program's number), the
 * stack end goes high. */
static int new_pair(int *app, int *sfd, struct stat *st)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	if (fstat(sv[0], st) < 0) {
		int e = errno;
		REAL(close)(sv[0]);
		REAL(close)(sv[1]);
		return -e;
	}
	*app = sv[0];
	*sfd = us_fd_high(sv[1]);
	REAL(fcntl)(*sfd, F_SETFL, O_NONBLOCK); /* the stack thread never blocks */
	return 0;
}

/* Hands established connections to the program: one token per connection
 * on the listener's pair, the connection's app end attached. Stops when the
 * pair is full (the program is not accepting); the rest wait in TCP's
 * accept queue, which the backlog bounds. */
/* How many delivered connections still wait for accept(). */
static unsigned outstanding(struct us_conn *l)
{
	unsigned n = 0;

	for (unsigned i = 0; i < l->nout; i++) {
		struct us_sock *s = us_sock_at(l->out[i].idx);
		if (atomic_load(&s->gen) == l->out[i].gen && atomic_load(&s->kind) != US_FREE &&
		    !(atomic_load(&s->flags) & US_F_ACCEPTED))
			l->out[n++] = l->out[i];
	}
	l->nout = n;
	return n;
}

static void deliver(struct us_conn *l)
{
	/* listen(n) lets n + 1 connections wait, as Linux's queue does. */
	unsigned limit = l->backlog + 1, out;

	if (l->blocked) {
		l->blocked = false;
		S.nblocked--;
	}
	while (l->tcb && l->tcb->acceptq_head) {
		struct ust_tcb *ct = l->tcb->acceptq_head;
		struct us_sock *s = us_sock_alloc();
		struct us_conn *c;
		struct stat st;
		int app, sfd, err;
		char cbuf[CMSG_SPACE(sizeof(int))];
		struct us_token tok;
		struct iovec iov = { &tok, sizeof(tok) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				    .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *cm;

		if (outstanding(l) >= limit) {
			if (s)
				us_sock_free(s);
			break;
		}
		if (!s)
			return;
		if (new_pair(&app, &sfd, &st) < 0) {
			us_sock_free(s);
			return;
		}
		s->owner = S.pid;
		s->app_dev = st.st_dev;
		s->app_ino = st.st_ino;
		s->app_fd = -1; /* its number is the accepting program's */
		/* What the accepting program may read at once, before the
		 * token leaves. */
		atomic_store(&s->state, (int)ct->state);
		atomic_store(&s->local, us_pack(ct->laddr, ct->lport));
		atomic_store(&s->remote, us_pack(ct->raddr, ct->rport));
		atomic_store(&s->flags, US_F_EVER_SYNCED);
		memset(&tok, 0, sizeof(tok));
		tok.magic = US_TOKEN_MAGIC;
		tok.idx = us_sock_idx(s);
		tok.gen = atomic_load(&s->gen);
		tok.laddr = ct->laddr;
		tok.lport = ct->lport;
		tok.raddr = ct->raddr;
		tok.rport = ct->rport;
		memset(cbuf, 0, sizeof(cbuf));
		cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &app, sizeof(int));
		if (REAL(sendmsg)(l->sfd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(tok)) {
			/* A token is tiny: a short send means none went. */
			REAL(close)(app);
			REAL(close)(sfd);
			us_sock_free(s);
			if (errno == EAGAIN)
				ev_io_start(S.ev, &l->wr);
			return;
		}
		REAL(close)(app); /* the token holds it now */
		c = conn_new(s, sfd);
		if (!c) {
			REAL(close)(sfd);
			us_sock_free(s);
			return;
		}
		ev_io_init(&c->wr, on_wr, sfd, EV_WRITE);
		ust_tcp_accept(l->tcb, c, &err);
		c->tcb = ct;
		l->out[l->nout].idx = tok.idx;
		l->out[l->nout].gen = tok.gen;
		l->nout++;
		publish(c);
		hup_arm(c);
		mark_dirty(c);
	}
	ev_io_stop(S.ev, &l->wr);
	/* TCP's accept queue holds what the program's cannot: together no
	 * more than the backlog allows. While some are delivered and not yet
	 * accepted, accept() wakes us to move the limit. */
	out = outstanding(l);
	if (l->tcb)
		l->tcb->backlog = out + 1 < limit ? limit - out - 1 : 0;
	if (out) {
		l->blocked = true;
		S.nblocked++;
		atomic_fetch_or(&l->sock->flags, US_F_BACKLOGGED);
	}
}

/* ---- the connection's state after TCP ran ---- */

/* The connect finished: the app end becomes writable at its normal size. */
static void connected(struct us_conn *c)
{
	int fd = app_end(c);

	if (fd >= 0) {
		REAL(setsockopt)(fd, SOL_SOCKET, SO_SNDBUF, &S.app_sndbuf, sizeof(S.app_sndbuf));
		REAL(close)(fd);
	}
	while (c->filler) {
		ssize_t r = REAL(recv)(c->sfd, S.scratch,
				       c->filler < sizeof(S.scratch) ? c->filler : sizeof(S.scratch),
				       MSG_DONTWAIT);
		if (r <= 0)
			break;
		c->filler -= (uint32_t)r;
	}
	c->filler = 0;
}

/* TCP closed while the program holds the socket: publish why, pass on what
 * arrived before, then close the stack end so the program sees it. */
static void conn_died(struct us_conn *c)
{
	struct ust_tcb *t = c->tcb;
	int err, fd;

	if (!c->dead) {
		c->dead = true;
		err = ust_tcp_take_error(t);
		atomic_store(&c->sock->hard_err, t->hard_error);
		atomic_store(&c->sock->pending_err, err);
		publish(c);
		ev_io_stop(S.ev, &c->rd);
	}
	if (!conn_push(c))
		return; /* the rest when the program reads */
	if (t->hard_error || c->filler) {
		/* A byte the stack end never reads: closing it then makes the
		 * kernel flag the app end with POLLERR and ECONNRESET, which
		 * the overridden calls turn into TCP's error. */
		fd = app_end(c);
		if (fd >= 0) {
			char b = 0;
			REAL(send)(fd, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
			REAL(close)(fd);
		}
	}
	t->user = NULL;
	ust_tcp_close(t, ust_now()); /* CLOSED: frees it */
	c->tcb = NULL;
	/* The socket's slot outlives the relay while the program holds the
	 * socket (it reads the state and the error); whichever of us lets go
	 * last frees it. */
	conn_free(c, app_gone(c->sfd) ||
			     (atomic_fetch_or(&c->sock->flags, US_F_DETACHED) & US_F_APP_CLOSED));
}

static void conn_pump(struct us_conn *c)
{
	struct ust_tcb *t = c->tcb;

	if (!t)
		return;
	publish(c);
	if (c->listener) {
		if (t->state == UST_TCP_LISTEN)
			deliver(c);
		return;
	}
	if (c->filler && UST_TCP_SYNCHRONIZED(t->state))
		connected(c);
	if (t->state == UST_TCP_CLOSED && t->rec.nstates) {
		conn_died(c);
		return;
	}
	conn_push(c);
	conn_pull(c);
}

static void on_wr(struct ev_loop *ev, ev_io *w, int revents)
{
	struct us_conn *c = ust_container_of(w, struct us_conn, wr);

	ev_io_stop(S.ev, &c->wr);
	mark_dirty(c);
	ust_loop_kick(&S.loop, ust_now());
}

/* Stack ends whose app end hung up or errored. */
static void on_hup(struct ev_loop *ev, ev_io *w, int revents)
{
	struct epoll_event e[64];
	int n = epoll_wait(S.hup_fd, e, 64, 0);

	for (int i = 0; i < n; i++) {
		struct us_conn *c = e[i].data.ptr;
		if (c->dead) {
			mark_dirty(c); /* pushing fails now: finish dying */
		} else if (c->listener || c->filler || !c->tcb || !UST_TCP_SYNCHRONIZED(c->tcb->state)) {
			/* Nothing to read before letting go (only filler). */
			conn_release(c, false);
		} else if (!c->app_eof) {
			/* Take in what was written before the close; the EOF
			 * that follows releases it (now, or once TCP's send
			 * ring has room for the rest). */
			conn_pull(c);
		} else if (app_gone(c->sfd)) {
			conn_release(c, false);
		} else {
			hup_arm(c);
		}
	}
	ust_loop_kick(&S.loop, ust_now());
}

/* ---- ports shared with the other processes on our address ----
 *
 * Every stack on the address (a shell pipeline's programs, a forking
 * server's children, keepers) receives every segment for it. Who owns a
 * port is settled in the kernel's own port table: each port we use is held
 * by a kernel TCP socket bound (IP_FREEBIND, never listening) to our
 * address and that port, so two processes never pick the same port, the
 * kernel's allocator chooses ephemeral ones, and a segment matching nothing
 * here is answered with RST only if no process holds its port. */

/* A kernel socket bound to our address and *port (0: the kernel picks).
 * With reuse (the program's SO_REUSEADDR) it may share the port with
 * reservations that do not listen: other processes' TIME-WAIT remnants. A
 * listener's reservation listens in the kernel (nothing ever reaches it:
 * the kernel does not own our address), so that no other process binds
 * there, as Linux refuses a second listener. */
static int reserve(uint16_t *port, bool reuse)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(*port),
				  .sin_addr.s_addr = htonl(S.cfg.addr) };
	socklen_t len = sizeof(in);
	int fd = REAL(socket)(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, e;

	if (fd < 0)
		return -errno;
	REAL(setsockopt)(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	if (reuse)
		REAL(setsockopt)(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (REAL(bind)(fd, (struct sockaddr *)&in, sizeof(in)) < 0 ||
	    REAL(getsockname)(fd, (struct sockaddr *)&in, &len) < 0) {
		e = errno;
		REAL(close)(fd);
		return e == EADDRINUSE ? -EADDRINUSE : -EADDRNOTAVAIL;
	}
	*port = ntohs(in.sin_port);
	return us_fd_high(fd);
}

static int port_claim(void *ctx, uint16_t *port, bool reuse)
{
	int fd;

	if (*port && ports[*port].refs) {
		ports[*port].refs++;
		return 0;
	}
	fd = reserve(port, reuse);
	if (fd < 0)
		return fd;
	ports[*port].fd = fd;
	ports[*port].refs = 1;
	ports[*port].reuse = reuse;
	return 0;
}

static void port_release(void *ctx, uint16_t port)
{
	if (ports[port].refs && --ports[port].refs == 0) {
		REAL(close)(ports[port].fd);
		ports[port].fd = -1;
	}
}

/* Asked for segments that match nothing here, so answers are remembered a
 * little while: another process's busy connection would otherwise cost a
 * probe per segment. */
#define FOREIGN_CACHE 256
#define FOREIGN_TTL UST_MS(500)

static bool port_foreign(void *ctx, uint16_t port)
{
	static struct { uint16_t port; bool held; ust_time until; } cache[FOREIGN_CACHE];
	unsigned i = port % FOREIGN_CACHE;
	ust_time now = ust_now();
	uint16_t p = port;
	int fd;

	/* Held by us alone (no SO_REUSEADDR): nothing else can be there. */
	if (ports[port].refs && !ports[port].reuse)
		return false;
	if (cache[i].port == port && cache[i].until > now)
		return cache[i].held;
	/* Held by us with SO_REUSEADDR (a listener's old children), another
	 * process may listen there too: a probe that shares finds out. */
	fd = reserve(&p, ports[port].refs != 0);
	if (fd >= 0)
		REAL(close)(fd);
	cache[i].port = port;
	cache[i].held = fd == -EADDRINUSE;
	cache[i].until = now + FOREIGN_TTL;
	return cache[i].held;
}

/* ---- TCP's callbacks: note only; act in after() ---- */

static void on_tcp_event(void *ctx, struct ust_tcb *t, unsigned events)
{
	struct us_conn *c = t->user;

	if (c)
		mark_dirty(c);
	else if (t->listener && t->listener->user && (events & UST_TCP_EV_ACCEPT))
		mark_dirty(t->listener->user);
}

static void json_str(char *out, size_t size, const char *s)
{
	size_t o = 0;

	for (; *s && o + 7 < size; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			o += (size_t)snprintf(out + o, size - o, "\\%c", ch);
		else if (ch < 0x20)
			o += (size_t)snprintf(out + o, size - o, "\\u%04x", ch);
		else
			out[o++] = (char)ch;
	}
	out[o] = 0;
}

/* USTCP_CLOSE_LOG: one JSON line per finished connection (DESIGN.md). */
static void on_tcp_closed(void *ctx, const struct ust_tcb *t)
{
	const struct ust_tcp_record *r = &t->rec;
	const char *who = ust_tcp_initiator_name(r->initiator);
	char line[1024], reason[128], states[UST_TCP_HISTORY_MAX * 16], ts[64];
	struct timespec wall;
	struct tm tm;
	ust_time ago = ust_now() - r->end;
	int n;
	size_t o = 0;

	if (!S.cfg.close_log[0])
		return;
	if (S.close_log_fd < 0) {
		int fd = open(S.cfg.close_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0) {
			ust_log(UST_LOG_ERROR, "USTCP_CLOSE_LOG=\"%s\": %s", S.cfg.close_log, strerror(errno));
			S.cfg.close_log[0] = 0;
			return;
		}
		S.close_log_fd = us_fd_high(fd);
	}
	clock_gettime(CLOCK_REALTIME, &wall);
	wall.tv_sec -= (time_t)(ago / 1000000u);
	wall.tv_nsec -= (long)(ago % 1000000u) * 1000;
	if (wall.tv_nsec < 0) {
		wall.tv_nsec += 1000000000;
		wall.tv_sec--;
	}
	gmtime_r(&wall.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, wall.tv_nsec / 1000000);
	for (unsigned i = 0; i < r->nstates; i++)
		o += (size_t)snprintf(states + o, sizeof(states) - o, "%s\"%s\"", i ? "," : "",
				      ust_tcp_state_name((enum ust_tcp_state)r->states[i]));
	states[o] = 0;
	json_str(reason, sizeof(reason), r->reason ? r->reason : "");
	n = snprintf(line, sizeof(line),
		     "{\"ts\":\"%s\",\"pid\":%d,\"local\":\"%u.%u.%u.%u:%u\",\"remote\":\"%u.%u.%u.%u:%u\","
		     "\"outcome\":\"%s\",\"initiator\":%s%s%s,\"reason\":\"%s\",\"states\":[%s],"
		     "\"bytes_sent\":%llu,\"bytes_received\":%llu,\"duration_ms\":%llu}\n",
		     ts, (int)getpid(), t->laddr >> 24, t->laddr >> 16 & 255, t->laddr >> 8 & 255,
		     t->laddr & 255, t->lport, t->raddr >> 24, t->raddr >> 16 & 255, t->raddr >> 8 & 255,
		     t->raddr & 255, t->rport, ust_tcp_outcome_name(r->outcome), who ? "\"" : "",
		     who ? who : "null", who ? "\"" : "", reason, states,
		     (unsigned long long)r->bytes_sent, (unsigned long long)r->bytes_received,
		     (unsigned long long)((r->end - r->start) / 1000u));
	if (n > 0 && REAL(write)(S.close_log_fd, line, (size_t)n) < 0)
		ust_log(UST_LOG_WARN, "close log: %s", strerror(errno));
}

static void after(struct ust_loop *l, ust_time now)
{
	while (S.dirty) {
		struct us_conn *c = S.dirty;
		S.dirty = c->dirty_next;
		c->dirty = false;
		conn_pump(c);
	}
}

/* ---- the control socket (ustcp-stat) ---- */

/* What ustcp-stat reads, one record per line (ustcp-stat(1) parses it):
 *   ustcp 1
 *   process PID COMM IFACE ADDR/PREFIX program
 *   tcp STATE RECV-Q SEND-Q LOCAL PEER TIMER MS     (STATE and TIMER as ss)
 *   counter NAME VALUE
 *   end */
static void dump(FILE *f)
{
	static const char *const timers[UST_TT_N] = { "on", "off", "keepalive", "timewait" };
	char comm[32] = "?";
	ust_time now = ust_now();
	FILE *cf = fopen("/proc/self/comm", "re");

	if (cf) {
		if (fgets(comm, sizeof(comm), cf))
			comm[strcspn(comm, "\n ")] = 0;
		fclose(cf);
	}
	fprintf(f, "ustcp 1\nprocess %d %s %s %u.%u.%u.%u/%u %s\n", (int)getpid(), comm, S.cfg.iface,
		S.cfg.addr >> 24, S.cfg.addr >> 16 & 255, S.cfg.addr >> 8 & 255, S.cfg.addr & 255, S.cfg.prefix,
		S.keeper ? "keeper" : "program");
	for (unsigned i = 0; i < UST_TCP_HASH; i++) {
		for (struct ust_tcb *t = S.tcp.hash[i]; t; t = t->hnext) {
			struct ust_tcp_status st;
			const char *timer = "off";
			long long ms = 0;
			if (!t->lport || (t->state == UST_TCP_CLOSED && !t->rec.nstates))
				continue;
			ust_tcp_status(t, &st);
			if (st.timer >= 0) {
				timer = t->persist && st.timer == UST_TT_RTX ? "persist" : timers[st.timer];
				ms = st.timer_due > now ? (long long)((st.timer_due - now) / 1000u) : 0;
			}
			fprintf(f, "tcp %s %u %u %u.%u.%u.%u:%u %u.%u.%u.%u:%u %s %lld\n",
				ust_tcp_state_name(t->state),
				t->state == UST_TCP_LISTEN ? t->acceptq_len : st.rcv_queued,
				t->state == UST_TCP_LISTEN ? t->backlog : st.snd_queued,
				t->laddr >> 24, t->laddr >> 16 & 255, t->laddr >> 8 & 255, t->laddr & 255, t->lport,
				t->raddr >> 24, t->raddr >> 16 & 255, t->raddr >> 8 & 255, t->raddr & 255, t->rport,
				timer, ms);
		}
	}
	for (unsigned i = 0; i < UST_EVENT_MAX; i++)
		fprintf(f, "counter %s %llu\n", ust_event_name((enum ust_event)i),
			(unsigned long long)S.st.ctr.event[i]);
	for (unsigned i = 1; i < UST_DROP_MAX; i++)
		fprintf(f, "counter drop.%s %llu\n", ust_drop_name((enum ust_drop)i),
			(unsigned long long)S.st.ctr.drop[i]);
	fprintf(f, "end\n");
}

static void on_ctl(struct ev_loop *ev, ev_io *w, int revents)
{
	int fd = REAL(accept4)(S.ctl_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	char *buf = NULL;
	size_t len = 0, off = 0;
	int big = 8 << 20;
	FILE *f;

	if (fd < 0)
		return;
	f = open_memstream(&buf, &len);
	if (f) {
		dump(f);
		fclose(f);
		/* The whole answer goes in one go or not at all: the stack
		 * thread never waits for a reader. */
		REAL(setsockopt)(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
		while (off < len) {
			ssize_t r = REAL(send)(fd, buf + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (r <= 0)
				break;
			off += (size_t)r;
		}
		free(buf);
	}
	REAL(close)(fd);
}

/* Publishes RUN_DIR/PID.sock; without it ustcp-stat does not see this
 * process, which is worth a warning but not a failure. */
static void ctl_open(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (mkdir(S.cfg.run_dir, 0755) < 0 && errno != EEXIST) {
		ust_log(UST_LOG_WARN, "USTCP_RUN_DIR=\"%s\": %s (ustcp-stat will not see this process)",
			S.cfg.run_dir, strerror(errno));
		return;
	}
	if ((size_t)snprintf(S.ctl_path, sizeof(S.ctl_path), "%s/%d.sock", S.cfg.run_dir, (int)getpid()) >=
	    sizeof(sun.sun_path))
		return;
	strcpy(sun.sun_path, S.ctl_path);
	unlink(S.ctl_path); /* a previous process with our pid */
	fd = REAL(socket)(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	fd = us_fd_high(fd);
	if (REAL(bind)(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || REAL(listen)(fd, 16) < 0) {
		ust_log(UST_LOG_WARN, "%s: %s (ustcp-stat will not see this process)", S.ctl_path,
			strerror(errno));
		REAL(close)(fd);
		S.ctl_path[0] = 0;
		return;
	}
	S.ctl_fd = fd;
	ev_io_init(&S.ctl, on_ctl, fd, EV_READ);
	ev_io_start(S.ev, &S.ctl);
}

/* ---- calls from program threads ---- */

static void run_calls(void)
{
	struct us_call *list = atomic_exchange(&S.calls, NULL), *rev = NULL;

	/* The queue is a stack: reverse it to serve in arrival order. */
	while (list) {
		struct us_call *next = list->next;
		list->next = rev;
		rev = list;
		list = next;
	}
	while (rev) {
		struct us_call *c = rev;
		rev = rev->next;
		c->fn(c);
		atomic_store(&c->done, 1);
		syscall(SYS_futex, &c->done, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
		/* A keeper serves our connections now: not one more event may
		 * be taken here (a hang-up read by us would be lost to it)
		 * while the process finishes exiting or exec'ing. */
		while (S.handed_over)
			pause();
	}
}

static void on_wake(struct ev_loop *ev, ev_io *w, int revents)
{
	uint64_t v;

	if (REAL(read)(S.wake_fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: another wake-up took it */
	}
	run_calls();
	/* An accept() in some process of ours took a connection from a
	 * listener stopped at its backlog. */
	for (unsigned i = 0; i < US_MAX_SOCKS && S.nblocked; i++) {
		struct us_conn *c = S.conns[i];
		if (c && c->blocked && !(atomic_load(&c->sock->flags) & US_F_BACKLOGGED))
			mark_dirty(c);
	}
	ust_loop_kick(&S.loop, ust_now());
}

void us_stack_poke(void)
{
	uint64_t one = 1;

	if (S.ev && REAL(write)(S.wake_fd, &one, sizeof(one)) < 0) {
		/* saturated: awake anyway */
	}
}

long us_call(struct us_call *c, us_call_fn fn, struct us_sock *s)
{
	uint64_t one = 1;

	c->fn = fn;
	c->sock = s;
	c->ret = 0;
	atomic_store(&c->done, 0);
	if (in_stack) {
		fn(c);
		return c->ret;
	}
	if (S.pid != getpid() || S.handed_over || (s && s->owner && s->owner != S.pid))
		return -EOPNOTSUPP; /* served by another process's stack */
	c->next = atomic_load(&S.calls);
	while (!atomic_compare_exchange_weak(&S.calls, &c->next, c))
		;
	if (REAL(write)(S.wake_fd, &one, sizeof(one)) < 0) {
		/* the counter is saturated: the thread is awake anyway */
	}
	while (!atomic_load(&c->done))
		syscall(SYS_futex, &c->done, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	return c->ret;
}

/* ---- the operations ---- */

static struct us_conn *call_conn(struct us_call *c)
{
	struct us_conn *k = conn_of(c->sock);

	if (!k || !k->tcb) {
		c->ret = -EINVAL;
		return NULL;
	}
	return k;
}

void us_op_create(struct us_call *c)
{
	struct us_sock *s = c->sock;
	struct us_conn *k;
	struct stat st;
	int app, sfd, small = 1, r;

	r = new_pair(&app, &sfd, &st);
	if (r < 0) {
		c->ret = r;
		return;
	}
	k = conn_new(s, sfd);
	if (!k) {
		REAL(close)(app);
		REAL(close)(sfd);
		c->ret = -ENOMEM;
		return;
	}
	ev_io_init(&k->wr, on_wr, sfd, EV_WRITE);
	k->tcb = ust_tcp_create(&S.tcp, k, &r);
	if (!k->tcb) {
		conn_free(k, false);
		REAL(close)(app);
		c->ret = r;
		return;
	}
	s->owner = S.pid;
	s->app_dev = st.st_dev;
	s->app_ino = st.st_ino;
	s->app_fd = c->u.opt.val; /* the number it will have */
	/* Filler: not writable until connected (a listener: never). */
	REAL(setsockopt)(app, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	for (;;) {
		ssize_t w = REAL(send)(app, S.scratch, 2048, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w <= 0)
			break;
		k->filler += (uint32_t)w;
	}
	publish(k);
	hup_arm(k);
	c->ret = app;
}

void us_op_bind(struct us_call *c)
{
	struct us_conn *k = call_conn(c);

	if (!k)
		return;
	if (c->u.in.addr && c->u.in.addr != S.cfg.addr) {
		c->ret = -EADDRNOTAVAIL;
		return;
	}
	c->ret = ust_tcp_bind(k->tcb, c->u.in.port, atomic_load(&c->sock->reuseaddr) != 0);
	if (c->ret == 0)
		atomic_store(&c->sock->local, us_pack(c->u.in.addr, c->u.in.port));
}

void us_op_connect(struct us_call *c)
{
	struct us_conn *k = call_conn(c);

	if (!k)
		return;
	c->ret = ust_tcp_connect(k->tcb, c->u.in.addr, c->u.in.port, ust_now());
	if (c->ret == 0)
		atomic_fetch_or(&c->sock->flags, US_F_CONNECTING);
	publish(k);
	mark_dirty(k);
}

void us_op_listen(struct us_call *c)
{
	struct us_conn *k = call_conn(c);

	if (!k)
		return;
	if (k->tcb->lport && ports[k->tcb->lport].refs && k->tcb->state == UST_TCP_CLOSED &&
	    REAL(listen)(ports[k->tcb->lport].fd, 1) < 0) {
		c->ret = -EADDRINUSE; /* another process listens there */
		return;
	}
	c->ret = ust_tcp_listen(k->tcb, (unsigned)(c->u.opt.val < 0 ? 0 : c->u.opt.val));
	if (c->ret == 0 && ports[k->tcb->lport].refs)
		REAL(listen)(ports[k->tcb->lport].fd, 1); /* an ephemeral port: fresh */
	if (c->ret == 0) {
		unsigned backlog = k->tcb->backlog; /* clamped like somaxconn */
		void *out = realloc(k->out, sizeof(*k->out) * (backlog + 1));
		if (!out) {
			c->ret = -ENOMEM;
			return;
		}
		k->out = out;
		k->backlog = backlog;
		k->listener = true;
		atomic_store(&c->sock->kind, US_LISTENER);
		publish(k);
		/* Linux reports a listener bound to INADDR_ANY as 0.0.0.0. */
		if (!us_addr(atomic_load(&c->sock->local)) || !(k->tcb->laddr))
			atomic_store(&c->sock->local, us_pack(0, k->tcb->lport));
		mark_dirty(k);
	}
}

void us_op_setopt(struct us_call *c)
{
	struct us_conn *k = call_conn(c);

	if (!k)
		return;
	if (c->u.opt.level == SOL_SOCKET && c->u.opt.name == SO_LINGER) {
		ust_tcp_set_linger(k->tcb, atomic_load(&c->sock->linger_on) != 0,
				   (unsigned)atomic_load(&c->sock->linger_s));
		c->ret = 0;
		return;
	}
	c->ret = ust_tcp_setopt(k->tcb, (enum ust_tcp_opt)c->u.opt.name, c->u.opt.val);
	mark_dirty(k);
}

void us_op_getopt(struct us_call *c)
{
	struct us_conn *k = call_conn(c);
	int v = 0;

	if (!k)
		return;
	c->ret = ust_tcp_getopt(k->tcb, (enum ust_tcp_opt)c->u.opt.name, &v);
	c->u.opt.val = v;
}

void us_op_status(struct us_call *c)
{
	struct us_conn *k = call_conn(c);

	if (!k)
		return;
	ust_tcp_status(k->tcb, c->u.out);
	c->ret = 0;
}

/* Takes in what the program wrote and closed just before this (at exit),
 * so that its FINs are queued before the keeper takes over. */
static void op_sync(struct us_call *c)
{
	for (unsigned i = 0; i < US_MAX_SOCKS; i++) {
		struct us_conn *k = S.conns[i];
		if (k && k->tcb && !k->listener && !k->filler && !k->dead) {
			if (!k->app_eof)
				conn_pull(k);
			else if (S.conns[i] == k && app_gone(k->sfd))
				conn_release(k, false);
		}
	}
	if (c)
		c->ret = 0;
}

/* ---- lifetime: the exit keeper ---- */

/* Anything left that TCP must finish: a connection not yet CLOSED, or a
 * socket some other process (a forked child) still holds. */
static bool work_left(void)
{
	if (S.tcp.nconns)
		return true;
	for (unsigned i = 0; i < US_MAX_SOCKS; i++)
		if (S.conns[i])
			return true;
	return false;
}

/* In the keeper: everything the program had open goes, except what the
 * stack needs (a test runner's pipes must see their end). */
static void keeper_close_fds(void)
{
	int keep[16 + 8], nkeep = 0, null;
	DIR *d;
	struct dirent *e;

	keep[nkeep++] = S.link.fd;
	keep[nkeep++] = S.wake_fd;
	keep[nkeep++] = S.hup_fd;
	keep[nkeep++] = S.close_log_fd;
	keep[nkeep++] = S.link.pcap.f ? fileno(S.link.pcap.f) : -1;
	keep[nkeep++] = ust_log_fd();
	for (unsigned i = 0; i < S.n_own_fds; i++)
		keep[nkeep++] = S.own_fds[i];
	d = opendir("/proc/self/fd");
	if (!d)
		return;
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name), k;
		bool ours = fd == dirfd(d) || e->d_name[0] == '.';
		for (k = 0; k < nkeep && !ours; k++)
			ours = keep[k] == fd;
		for (unsigned p = 1; p < 65536 && !ours; p++)
			ours = ports[p].refs && ports[p].fd == fd;
		if (!ours && fd >= high_base() && fd < high_base() + (int)US_MAX_SOCKS) {
			/* a stack end? */
			for (unsigned i = 0; i < US_MAX_SOCKS && !ours; i++)
				ours = S.conns[i] && S.conns[i]->sfd == fd;
		}
		if (!ours)
			REAL(close)(fd);
	}
	closedir(d);
	/* Standard fds stay valid for anything that writes to them. */
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd < 3 && null >= 0; fd++)
		REAL(dup2)(null, fd);
	if (null > 2)
		REAL(close)(null);
}

static void on_tick(struct ev_loop *ev, ev_timer *w, int revents);
static int live_threads(void);

/* The child side of the hand-over: this thread, alone in a new process,
 * goes on running the loop until every connection is CLOSED. */
static void become_keeper(void)
{
	sigset_t term;

	S.keeper = true;
	S.pid = getpid();
	setsid(); /* out of the program's session: its terminal's signals are not ours */
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_UNBLOCK, &term, NULL);
	if (S.ctl_fd >= 0) {
		ev_io_stop(S.ev, &S.ctl);
		REAL(close)(S.ctl_fd);
		S.ctl_fd = -1;
		S.ctl_path[0] = 0; /* the program's: it removes it */
	}
	keeper_close_fds();
	for (unsigned i = 0; i < US_MAX_SOCKS; i++)
		if (S.conns[i])
			S.conns[i]->sock->owner = S.pid; /* forked children see who serves them */
	ev_loop_fork(S.ev);
	ctl_open();
	ev_timer_init(&S.tick, on_tick, 1., 1.);
	ev_timer_start(S.ev, &S.tick);
	ust_log(UST_LOG_INFO, "exit keeper %d finishes the connections of the program", (int)getpid());
}

static void keeper_exit(void)
{
	if (S.ctl_path[0])
		unlink(S.ctl_path);
	ust_pcap_flush(&S.link.pcap);
	_exit(0);
}

/* Hands every connection to a keeper: fork from this thread (the child is
 * a copy of the stack at this instant, with this thread as its only one)
 * and stop serving here. Returns 0 if nothing needs a keeper. */
static int hand_over(void)
{
	pid_t pid;

	op_sync(NULL);
	if (!work_left())
		return 0;
	ust_stack_flush(&S.st);
	ust_pcap_flush(&S.link.pcap);
	S.forking_keeper = true;
	pid = fork();
	S.forking_keeper = false;
	if (pid < 0) {
		ust_log(UST_LOG_ERROR, "no exit keeper (fork: %s): connections die with the process",
			strerror(errno));
		return -errno;
	}
	if (pid == 0) {
		become_keeper();
		return 1;
	}
	S.handed_over = true;
	ev_break(S.ev, EVBREAK_ALL);
	return 1;
}

static void op_hand_over(struct us_call *c)
{
	c->ret = hand_over();
}

/* Once a second. A keeper exits when its work is done or its interface
 * is gone. A program whose threads all ended (pthread_exit in main) would
 * be kept alive by this thread alone: hand over and exit as glibc would. */
static void on_tick(struct ev_loop *ev, ev_timer *w, int revents)
{
	if (S.keeper) {
		if (!work_left() || !if_nametoindex(S.link.ifname))
			keeper_exit();
		return;
	}
	if (live_threads() == 1) {
		hand_over();
		if (!S.keeper)
			exit(0);
	}
}

/* At exit (return from main, exit()): the connections go to a keeper and
 * the process exits at once, as it would on the kernel's TCP. */
static void at_exit(void)
{
	struct us_call c;

	if (S.pid != getpid() || !S.ev || S.keeper || S.handed_over)
		return;
	us_call(&c, op_hand_over, NULL);
	if (S.ctl_path[0])
		unlink(S.ctl_path);
}

/* ---- start-up ---- */

static int getrandom_key(uint64_t key[2])
{
	return getrandom(key, 2 * sizeof(uint64_t), GRND_NONBLOCK) == 2 * sizeof(uint64_t) ? 0 : -1;
}

/* The number of threads of this process. */
static int live_threads(void)
{
	char buf[512], *p;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC), field = 2;
	ssize_t len;

	if (fd < 0)
		return -1;
	len = REAL(read)(fd, buf, sizeof(buf) - 1);
	REAL(close)(fd);
	if (len <= 0)
		return -1;
	buf[len] = 0;
	p = strrchr(buf, ')'); /* after the command name, which may hold spaces */
	if (!p)
		return -1;
	/* field 20 is num_threads; p points at the end of field 2 */
	for (; *p && field < 20; p++)
		if (*p == ' ')
			field++;
	return atoi(p);
}

static void *thread_main(void *arg)
{
	in_stack = true;
	ev_run(S.ev, 0);
	if (S.keeper)
		keeper_exit();
	return NULL;
}

/* Asks the launcher's broker (ustcp(1)) for a packet socket: a request on
 * the inherited SOCK_SEQPACKET socket USTCP_BROKER_FD carrying our
 * credentials and one end of a fresh pair, on which the broker answers
 * with an int (0, or an errno) and, on success, the socket it opened,
 * filtered for our address and locked. */
static int broker_link(int broker, char *err, size_t errlen)
{
	static const char req[] = "ustcp-link 1\n";
	struct ucred cred = { getpid(), getuid(), getgid() };
	char cbuf[CMSG_SPACE(sizeof(cred)) + CMSG_SPACE(sizeof(int))];
	struct iovec iov = { (void *)req, sizeof(req) - 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	struct pollfd p;
	int sv[2], status = EIO, fd = -1;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	memset(cbuf, 0, sizeof(cbuf));
	cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_CREDENTIALS;
	cm->cmsg_len = CMSG_LEN(sizeof(cred));
	memcpy(CMSG_DATA(cm), &cred, sizeof(cred));
	cm = CMSG_NXTHDR(&m, cm);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &sv[1], sizeof(int));
	if (REAL(sendmsg)(broker, &m, MSG_NOSIGNAL) < 0) {
		snprintf(err, errlen, "USTCP_BROKER_FD=%d: %s (is the ustcp launcher still running?)", broker,
			 strerror(errno));
		REAL(close)(sv[0]);
		REAL(close)(sv[1]);
		return -EPERM;
	}
	REAL(close)(sv[1]);
	/* The broker answers at once; a bound keeps a wedged one from
	 * hanging the program's socket() forever. */
	p.fd = sv[0];
	p.events = POLLIN;
	if (poll(&p, 1, 5000) == 1) {
		char rbuf[CMSG_SPACE(sizeof(int))];
		struct iovec riov = { &status, sizeof(status) };
		struct msghdr rm = { .msg_iov = &riov, .msg_iovlen = 1, .msg_control = rbuf,
				     .msg_controllen = sizeof(rbuf) };
		if (REAL(recvmsg)(sv[0], &rm, MSG_CMSG_CLOEXEC) == (ssize_t)sizeof(status)) {
			for (cm = CMSG_FIRSTHDR(&rm); cm; cm = CMSG_NXTHDR(&rm, cm))
				if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
					memcpy(&fd, CMSG_DATA(cm), sizeof(int));
		}
	}
	REAL(close)(sv[0]);
	if (status == 0 && fd >= 0)
		return fd;
	if (fd >= 0)
		REAL(close)(fd);
	snprintf(err, errlen, "the ustcp broker refused a packet socket: %s", strerror(status ? status : EIO));
	return -(status ? status : EIO);
}

static int open_link(void)
{
	char err[256];
	const char *bvar = getenv("USTCP_BROKER_FD");
	int r;

	if (bvar && *bvar) {
		/* Launched by ustcp(1): its broker holds the privilege. */
		r = broker_link(atoi(bvar), err, sizeof(err));
		if (r >= 0)
			r = ust_link_adopt(&S.link, r, S.cfg.iface, err, sizeof(err));
	} else {
		r = ust_link_open(&S.link, S.cfg.iface, S.cfg.addr, err, sizeof(err));
	}
	if (r < 0) {
		if (r == -EPERM && !(bvar && *bvar))
			ust_log(UST_LOG_ERROR, "%s: run the program through the ustcp launcher "
				"(ustcp -- program), or as root", err);
		else
			ust_log(UST_LOG_ERROR, "%s", err);
		return r;
	}
	S.link.fd = us_fd_high(S.link.fd);
	return 0;
}

static int start(void)
{
	struct ust_netif nif;
	struct ust_tcp_config tc;
	const struct ust_config *cfg = us_config();
	socklen_t len = sizeof(S.app_sndbuf);
	int r, probe[2];
	pthread_t th;
	pthread_attr_t attr;
	sigset_t all, old;

	if (!cfg)
		return -errno;
	S.cfg = *cfg;
	r = open_link();
	if (r < 0)
		return r;
	if (S.cfg.pcap[0]) {
		int fd = open(S.cfg.pcap, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0 || (r = ust_pcap_adopt(&S.link.pcap, us_fd_high(fd), S.link.l3)) < 0) {
			ust_log(UST_LOG_ERROR, "USTCP_PCAP=\"%s\": %s", S.cfg.pcap, strerror(errno));
			ust_link_close(&S.link);
			return -EINVAL;
		}
	}
	ust_link_netif(&S.link, S.cfg.addr, S.cfg.prefix, S.cfg.gw, S.cfg.mtu, &nif);
	if (ust_stack_init(&S.st, &nif, 1024, ust_link_output, &S.link) < 0)
		goto nomem;
	S.link.ctr = &S.st.ctr;
	ust_tcp_default_config(&tc);
	tc.msl_ms = S.cfg.msl_ms;
	tc.fin_timeout_ms = S.cfg.fin_timeout_ms;
	if (getrandom_key(tc.isn_key) < 0) {
		tc.isn_key[0] = ((uint64_t)getpid() << 32) ^ (uint64_t)ust_now();
		tc.isn_key[1] = (uint64_t)ust_now() * 0x9e3779b97f4a7c15ull;
	}
	tc.event = on_tcp_event;
	tc.closed = on_tcp_closed;
	tc.port_claim = port_claim;
	tc.port_release = port_release;
	tc.port_foreign = port_foreign;
	if (ust_tcp_init(&S.tcp, &S.st, &tc) < 0)
		goto nomem;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, probe) == 0) {
		REAL(getsockopt)(probe[0], SOL_SOCKET, SO_SNDBUF, &S.app_sndbuf, &len);
		S.app_sndbuf /= 2; /* setsockopt doubles it back */
		REAL(close)(probe[0]);
		REAL(close)(probe[1]);
	}
	in_stack = true; /* libev's fds go high too */
	S.ev = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV | EVFLAG_NOSIGMASK);
	S.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	S.hup_fd = epoll_create1(EPOLL_CLOEXEC);
	in_stack = false;
	if (!S.ev || S.wake_fd < 0 || S.hup_fd < 0)
		goto nomem;
	ev_io_init(&S.wake, on_wake, S.wake_fd, EV_READ);
	ev_io_start(S.ev, &S.wake);
	ev_io_init(&S.hup, on_hup, S.hup_fd, EV_READ);
	ev_io_start(S.ev, &S.hup);
	ust_loop_start(&S.loop, S.ev, &S.st, &S.link, &S.tcp);
	S.loop.after = after;
	ctl_open();

	/* The stack thread takes no signals: they are the program's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = pthread_create(&th, &attr, thread_main, NULL);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		ust_log(UST_LOG_ERROR, "cannot start the stack thread: %s", strerror(r));
		return -r;
	}
	atexit(at_exit);
	ust_log(UST_LOG_INFO, "stack on %s, %u.%u.%u.%u/%u", S.cfg.iface, S.cfg.addr >> 24,
		S.cfg.addr >> 16 & 255, S.cfg.addr >> 8 & 255, S.cfg.addr & 255, S.cfg.prefix);
	return 0;
nomem:
	ust_log(UST_LOG_ERROR, "out of memory starting the stack");
	return -ENOMEM;
}

/* fork() while another thread starts the stack must not leave the child
 * with the start-up lock taken. */
static void atfork_prepare(void)
{
	pthread_mutex_lock(&S.lock);
}

static void atfork_after(void)
{
	pthread_mutex_unlock(&S.lock);
}

/* A forked child shares the sockets it inherited, which the parent's
 * stack (later its keeper) goes on serving. Its copy of that stack is not
 * its own: the fds go (the parent keeps its references), the memory is
 * left, and a socket the child opens starts a stack of its own. */
static void atfork_child(void)
{
	pthread_mutex_unlock(&S.lock);
	if (S.forking_keeper || !S.pid)
		return;
	REAL(close)(S.link.fd);
	REAL(close)(S.wake_fd);
	REAL(close)(S.hup_fd);
	if (S.ctl_fd >= 0)
		REAL(close)(S.ctl_fd);
	for (unsigned i = 0; i < S.n_own_fds; i++)
		REAL(close)(S.own_fds[i]);
	for (unsigned i = 0; i < US_MAX_SOCKS; i++) {
		if (S.conns[i]) {
			REAL(close)(S.conns[i]->sfd);
			S.conns[i] = NULL;
		}
	}
	for (unsigned p = 1; p < 65536; p++) {
		if (ports[p].refs)
			REAL(close)(ports[p].fd);
		ports[p].refs = 0;
	}
	S.link.pcap.f = NULL; /* the parent's buffer: never flushed here */
	S.pid = 0;
	S.start_err = 0;
	S.ev = NULL;
	S.ctl_fd = -1;
	S.ctl_path[0] = 0;
	S.n_own_fds = 0;
	S.dirty = NULL;
	S.nblocked = 0;
	atomic_store(&S.calls, NULL);
	S.handed_over = false;
}

/* Binds libc's functions now, so that no later call (one from a signal
 * handler, say) does it for the first time. Calls made before this ran
 * bind them themselves. */
__attribute__((constructor)) static void shim_init(void)
{
	us_real();
	pthread_atfork(atfork_prepare, atfork_after, atfork_child);
}

int us_stack_start(void)
{
	int r;

	if (S.pid == getpid())
		return 0;
	pthread_mutex_lock(&S.lock);
	if (S.pid == getpid()) {
		r = 0;
	} else if (S.start_err) {
		r = S.start_err;
	} else {
		r = start();
		if (r < 0)
			S.start_err = r;
		else
			S.pid = getpid();
	}
	pthread_mutex_unlock(&S.lock);
	return r;
}

/* ---- exec ---- */

/* exec ends the stack thread with the old image, while the sockets the
 * program does not mark close-on-exec live on in the new one: a keeper
 * takes the connections over first and serves them from then on. glibc's
 * exec family funnels into execve; posix_spawn and fexecve do not carry
 * sockets across in practice (or close them), and are left alone. */
static void before_exec(void)
{
	struct us_call c;

	if (S.pid == getpid() && S.ev && !S.keeper && !S.handed_over)
		us_call(&c, op_hand_over, NULL);
}

US_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	static int (*real_execve)(const char *, char *const[], char *const[]);

	if (!real_execve)
		real_execve = (int (*)(const char *, char *const[], char *const[]))dlsym(RTLD_NEXT, "execve");
	before_exec();
	return real_execve(path, argv, envp);
}
