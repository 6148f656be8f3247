/* The socketpair relay between each TCP socket's control block and the
 * stack end of its pair, on the stack thread (struct us_conn):
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
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "stack_impl.h"

/* ---- small helpers on the stack thread ---- */

static struct us_conn *conn_of(const struct us_sock *s)
{
	return us_st.conns[us_sock_idx(s)];
}

static void publish(struct us_conn *c)
{
	struct ust_tcb *t = c->tcb;

	if (!t)
		return;
	/* A listener bound to INADDR_ANY (or to no address) is 0.0.0.0 to
	 * getsockname, as Linux; its connections have ours. */
	atomic_store(&c->sock->local, us_pack(c->listener && !c->bound_addr ? 0 : t->laddr, t->lport));
	atomic_store(&c->sock->remote, us_pack(t->raddr, t->rport));
	if (UST_TCP_SYNCHRONIZED(t->state))
		atomic_fetch_or(&c->sock->flags, US_F_EVER_SYNCED);
	/* A blocking connect() waits on this word (shim/socket.c). The
	 * region is shared between processes: no FUTEX_PRIVATE_FLAG. */
	if (atomic_exchange(&c->sock->state, (int)t->state) != (int)t->state)
		syscall(SYS_futex, &c->sock->state, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void us_mark_dirty(struct us_conn *c)
{
	if (c->dirty)
		return;
	c->dirty = true;
	c->dirty_next = us_st.dirty;
	us_st.dirty = c;
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
	/* Look before taking a reference: closing a dup of some other file
	 * would drop the program's record locks on it. */
	if (fstat(fd, &st) < 0 || st.st_ino != c->sock->app_ino || st.st_dev != c->sock->app_dev)
		return -1;
	fd = REAL(fcntl)(fd, F_DUPFD_CLOEXEC, us_fd_base());
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

	if (epoll_ctl(us_st.hup_fd, EPOLL_CTL_MOD, c->sfd, &e) < 0)
		epoll_ctl(us_st.hup_fd, EPOLL_CTL_ADD, c->sfd, &e);
}

bool us_app_gone(int sfd)
{
	struct pollfd p = { .fd = sfd, .events = POLLRDHUP };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLHUP);
}

static void conn_free(struct us_conn *c, bool free_sock)
{
	ev_io_stop(us_st.ev, &c->rd);
	ev_io_stop(us_st.ev, &c->wr);
	if (c->sfd >= 0) {
		epoll_ctl(us_st.hup_fd, EPOLL_CTL_DEL, c->sfd, NULL);
		REAL(close)(c->sfd);
	}
	us_st.conns[us_sock_idx(c->sock)] = NULL;
	us_st.nrelays--;
	if (c->blocked)
		us_st.nblocked--;
	free(c->out);
	if (free_sock)
		us_sock_free(c->sock);
	/* The dirty list may still name it: unlink. */
	for (struct us_conn **p = &us_st.dirty; *p; p = &(*p)->dirty_next) {
		if (*p == c) {
			*p = c->dirty_next;
			break;
		}
	}
	free(c);
}

/* The program let go of the socket: CLOSE (or ABORT) and forget the relay.
 * TCP keeps the control block until CLOSED (an orphan). */
void us_conn_release(struct us_conn *c, bool abort)
{
	struct ust_tcb *t = c->tcb;
	ust_time now = ust_now();

	if (t) {
		/* A connection that was queued for accept but never taken
		 * (its app end died in flight) is reset, like a child still
		 * in Linux's accept queue when the listener closes (C30). */
		bool unaccepted = t->listener == NULL && !c->listener && c->sock->owner == us_st.pid &&
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
		if (c->listener)
			us_port_unlisten(lport);
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
		ev_io_start(us_st.ev, &c->rd);
	else if (!want && ev_is_active(&c->rd))
		ev_io_stop(us_st.ev, &c->rd);
}

/* The program shut its sending side or closed: a FIN after the data. If
 * the app end is gone too, that was the last close. */
static void on_app_eof(struct us_conn *c)
{
	c->app_eof = true;
	/* A close hangs the stack end up in the same step as it ends the
	 * data, so this tells close (CLOSE: FIN or RST, SO_LINGER) from
	 * shutdown (a FIN). */
	if (us_app_gone(c->sfd)) {
		us_conn_release(c, false);
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
			us_conn_release(c, true);
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
	ust_loop_kick(&us_st.loop, ust_now());
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
			ev_io_start(us_st.ev, &c->wr);
			return false;
		}
		/* EPIPE: the program shut its receiving side; what arrives
		 * is read and dropped, as nobody can see it. */
		ust_tcp_rcv_consumed(t, t->rcvbuf.len, ust_now());
		break;
	}
	ev_io_stop(us_st.ev, &c->wr);
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
	us_st.conns[us_sock_idx(s)] = c;
	us_st.nrelays++;
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
		us_st.nblocked--;
	}
	outstanding(l); /* once: drops the accepted; each delivery below adds one */
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

		if (l->nout >= limit) {
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
		s->owner = us_st.pid;
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
				ev_io_start(us_st.ev, &l->wr);
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
		us_mark_dirty(c);
	}
	ev_io_stop(us_st.ev, &l->wr);
	/* TCP's accept queue holds what the program's cannot: together no
	 * more than the backlog allows. While some are delivered and not yet
	 * accepted, accept() wakes us to move the limit. */
	out = l->nout;
	if (l->tcb)
		l->tcb->backlog = out + 1 < limit ? limit - out - 1 : 0;
	if (out) {
		l->blocked = true;
		us_st.nblocked++;
		atomic_fetch_or(&l->sock->flags, US_F_BACKLOGGED);
	}
}

/* ---- the connection's state after TCP ran ---- */

/* The connect finished: the app end becomes writable at its normal size. */
static void connected(struct us_conn *c)
{
	int fd = app_end(c);

	if (fd >= 0) {
		REAL(setsockopt)(fd, SOL_SOCKET, SO_SNDBUF, &us_st.app_sndbuf, sizeof(us_st.app_sndbuf));
		REAL(close)(fd);
	}
	while (c->filler) {
		ssize_t r = REAL(recv)(c->sfd, us_st.scratch,
				       c->filler < sizeof(us_st.scratch) ? c->filler : sizeof(us_st.scratch),
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
		ev_io_stop(us_st.ev, &c->rd);
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
	 * last frees it. Not "the app end is gone": after a failed blocking
	 * connect the fd is a fresh socket (socket.c, unconnect) and still
	 * needs the slot. */
	conn_free(c, atomic_fetch_or(&c->sock->flags, US_F_DETACHED) & US_F_APP_CLOSED);
}

static void conn_pump(struct us_conn *c)
{
	struct ust_tcb *t = c->tcb;

	if (!t)
		return;
	/* CLOSED is published by conn_died, after the error it carries: a
	 * blocking connect wakes on the state and takes the error at once. */
	if (t->state == UST_TCP_CLOSED && t->rec.nstates && !c->listener) {
		conn_died(c);
		return;
	}
	/* ESTABLISHED (and the peer's address) first: a program that sees
	 * the socket writable asks getpeername() at once. */
	publish(c);
	if (c->listener) {
		if (t->state == UST_TCP_LISTEN)
			deliver(c);
		return;
	}
	if (c->filler && UST_TCP_SYNCHRONIZED(t->state))
		connected(c);
	conn_push(c);
	conn_pull(c);
}

static void on_wr(struct ev_loop *ev, ev_io *w, int revents)
{
	struct us_conn *c = ust_container_of(w, struct us_conn, wr);

	ev_io_stop(us_st.ev, &c->wr);
	us_mark_dirty(c);
	ust_loop_kick(&us_st.loop, ust_now());
}

/* Stack ends whose app end hung up or errored. */
void us_on_hup(struct ev_loop *ev, ev_io *w, int revents)
{
	struct epoll_event e[64];
	int n = epoll_wait(us_st.hup_fd, e, 64, 0);

	for (int i = 0; i < n; i++) {
		struct us_conn *c = e[i].data.ptr;
		if (c->dead) {
			us_mark_dirty(c); /* pushing fails now: finish dying */
		} else if (c->listener || c->filler || !c->tcb || !UST_TCP_SYNCHRONIZED(c->tcb->state)) {
			/* Nothing to read before letting go (only filler). */
			us_conn_release(c, false);
		} else if (!c->app_eof) {
			/* Take in what was written before the close; the EOF
			 * that follows releases it (now, or once TCP's send
			 * ring has room for the rest). */
			conn_pull(c);
		} else if (us_app_gone(c->sfd)) {
			us_conn_release(c, false);
		} else {
			hup_arm(c);
		}
	}
	ust_loop_kick(&us_st.loop, ust_now());
}

/* ---- TCP's callbacks: note only; act in us_relay_after() ---- */

void us_on_tcp_event(void *ctx, struct ust_tcb *t, unsigned events)
{
	struct us_conn *c = t->user;

	if (c)
		us_mark_dirty(c);
	else if (t->listener && t->listener->user && (events & UST_TCP_EV_ACCEPT))
		us_mark_dirty(t->listener->user);
}

void us_relay_after(struct ust_loop *l, ust_time now)
{
	while (us_st.dirty) {
		struct us_conn *c = us_st.dirty;
		us_st.dirty = c->dirty_next;
		c->dirty = false;
		conn_pump(c);
	}
	if (us_st.keeper)
		us_keeper_check();
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
	k->tcb = ust_tcp_create(&us_st.tcp, k, &r);
	if (!k->tcb) {
		conn_free(k, false);
		REAL(close)(app);
		c->ret = r;
		return;
	}
	s->owner = us_st.pid;
	s->app_dev = st.st_dev;
	s->app_ino = st.st_ino;
	s->app_fd = c->u.opt.val; /* the number it will have */
	/* Filler: not writable until connected (a listener: never). */
	REAL(setsockopt)(app, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	for (;;) {
		ssize_t w = REAL(send)(app, us_st.scratch, 2048, MSG_DONTWAIT | MSG_NOSIGNAL);
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
	if (c->u.in.addr && c->u.in.addr != us_st.cfg.addr) {
		c->ret = -EADDRNOTAVAIL;
		return;
	}
	c->ret = ust_tcp_bind(k->tcb, c->u.in.port, atomic_load(&c->sock->reuseaddr) != 0);
	if (c->ret == 0) {
		k->bound_addr = c->u.in.addr != 0;
		atomic_store(&c->sock->local, us_pack(c->u.in.addr, k->tcb->lport));
	}
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
	us_mark_dirty(k);
}

void us_op_listen(struct us_call *c)
{
	struct us_conn *k = call_conn(c);

	if (!k)
		return;
	if (k->tcb->lport && k->tcb->state == UST_TCP_CLOSED && !us_port_listen(k->tcb->lport)) {
		c->ret = -EADDRINUSE; /* another process listens there */
		return;
	}
	c->ret = ust_tcp_listen(k->tcb, (unsigned)(c->u.opt.val < 0 ? 0 : c->u.opt.val));
	if (c->ret == 0)
		us_port_listen(k->tcb->lport); /* an ephemeral one: fresh, free */
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
		us_mark_dirty(k);
	}
}

void us_op_setopt(struct us_call *c)
{
	struct us_conn *k = call_conn(c);

	if (!k) {
		/* TCP is done with it (reset, refused): Linux still takes
		 * options on a closed socket. */
		c->ret = 0;
		return;
	}
	if (c->u.opt.level == SOL_SOCKET && c->u.opt.name == SO_LINGER) {
		ust_tcp_set_linger(k->tcb, atomic_load(&c->sock->linger_on) != 0,
				   (unsigned)atomic_load(&c->sock->linger_s));
		c->ret = 0;
		return;
	}
	c->ret = ust_tcp_setopt(k->tcb, (enum ust_tcp_opt)c->u.opt.name, c->u.opt.val);
	us_mark_dirty(k);
}

/* shutdown(SHUT_RD) on a listener: Linux stops listening (queued
 * connections are reset, new SYNs refused) and wakes accept() with EINVAL;
 * the program's side shuts its end of the listener's pair for the wake-up. */
void us_op_unlisten(struct us_call *c)
{
	struct us_conn *k = call_conn(c);

	if (!k)
		return;
	if (k->listener && k->tcb->state == UST_TCP_LISTEN) {
		uint16_t lport = k->tcb->lport;
		k->tcb->user = NULL;
		ust_tcp_close(k->tcb, ust_now());
		k->tcb = NULL;
		us_port_unlisten(lport);
	}
	c->ret = 0;
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
void us_relay_sync(struct us_call *c)
{
	for (unsigned i = 0; i < US_MAX_SOCKS; i++) {
		struct us_conn *k = us_st.conns[i];
		if (k && k->tcb && !k->listener && !k->filler && !k->dead) {
			if (!k->app_eof)
				conn_pull(k);
			else if (us_st.conns[i] == k && us_app_gone(k->sfd))
				us_conn_release(k, false);
		}
	}
	if (c)
		c->ret = 0;
}

void us_relay_wake(void)
{
	for (unsigned i = 0; i < US_MAX_SOCKS && us_st.nblocked; i++) {
		struct us_conn *c = us_st.conns[i];
		if (c && c->blocked && !(atomic_load(&c->sock->flags) & US_F_BACKLOGGED))
			us_mark_dirty(c);
	}
}
