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
 * A fresh socket's app end is an unconnected AF_UNIX socket (OUT|HUP, as
 * Linux's), paired with a stack end at listen() or connect()
 * (us_relay_pair). A connecting or listening socket has its app end's
 * send buffer full of filler bytes, so that it is not writable, as in TCP. */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/sockios.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "stack_impl.h"

/* ---- small helpers on the stack thread ---- */

struct us_conn *us_conn_of(struct us_stack *st, const struct us_sock *s)
{
	return st->conns ? st->conns[us_sock_idx(s)] : NULL;
}

/* The lists a relay is on (stack_impl.h): in at the head, out in O(1). */
#define LIST_INSERT(headp, c, field)                                    \
	do {                                                            \
		(c)->field##_next = *(headp);                           \
		if (*(headp))                                           \
			(*(headp))->field##_pprev = &(c)->field##_next; \
		(c)->field##_pprev = (headp);                           \
		*(headp) = (c);                                         \
	} while (0)
#define LIST_REMOVE(c, field)                                                    \
	do {                                                                     \
		*(c)->field##_pprev = (c)->field##_next;                         \
		if ((c)->field##_next)                                           \
			(c)->field##_next->field##_pprev = (c)->field##_pprev;   \
		(c)->field##_next = NULL;                                        \
		(c)->field##_pprev = NULL;                                       \
	} while (0)

/* A listener stopped at its backlog, or going again. */
static void set_blocked(struct us_conn *l, bool blocked)
{
	if (blocked == l->blocked)
		return;
	l->blocked = blocked;
	if (blocked) {
		LIST_INSERT(&l->st->blocked, l, blocked);
		l->st->nblocked++;
	} else {
		LIST_REMOVE(l, blocked);
		l->st->nblocked--;
	}
}

/* A relay whose stack end hung up while the program, which shut both
 * directions itself, still holds the socket: it waits on this list for
 * the program's close (us_relay_wake). */
static void set_parked(struct us_conn *c, bool parked)
{
	if (parked == c->parked)
		return;
	c->parked = parked;
	if (parked)
		LIST_INSERT(&c->st->parked, c, parked);
	else
		LIST_REMOVE(c, parked);
}

/* Is the connection synchronized (its control block still held)? */
static bool synced(const struct us_conn *c)
{
	return c->tcb && UST_TCP_SYNCHRONIZED(ust_tcp_get_state(c->tcb));
}

/* A blocking connect() waits on the state word (shim/connect.c). The
 * region is shared between processes: no FUTEX_PRIVATE_FLAG. Only a
 * waiter is woken: a state changes four or five times a connection, and
 * most connections have no thread waiting. The waiter counts itself before
 * it reads the state, we read the count after the exchange (both
 * sequentially consistent), so one of us sees the other's write. */
static void publish_state(struct us_sock *s, int state)
{
	if (atomic_exchange(&s->state, state) != state && atomic_load(&s->state_waiters) > 0)
		syscall(SYS_futex, &s->state, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void us_publish(struct us_conn *c)
{
	struct ust_tcp_ends e;
	int state;

	if (!c->tcb)
		return;
	ust_tcp_ends(c->tcb, &e);
	state = (int)ust_tcp_get_state(c->tcb);
	/* A listener, or a socket never connected, bound to INADDR_ANY (or
	 * to no address) is 0.0.0.0 to getsockname, as Linux's
	 * inet_rcv_saddr until connect chooses the source, and :: for
	 * AF_INET6; a listener's connections have ours. */
	if (!c->bound_addr && (c->listener || (state == UST_TCP_CLOSED &&
					       !(atomic_load(&c->sock->flags) & US_F_EVER_SYNCED))))
		e.laddr = atomic_load(&c->sock->family) == AF_INET6 ? (struct ust_ip6){ { 0 } } : ust_ip6_from_v4(0);
	us_sock_set_end(c->sock, false, &e.laddr, e.lport);
	us_sock_set_end(c->sock, true, &e.raddr, e.rport);
	if (UST_TCP_SYNCHRONIZED(state))
		atomic_fetch_or(&c->sock->flags, US_F_EVER_SYNCED);
	publish_state(c->sock, state);
}

void us_mark_dirty(struct us_conn *c)
{
	if (c->dirty)
		return;
	c->dirty = true;
	LIST_INSERT(&c->st->dirty, c, dirty);
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
	fd = us_fd_dup_high(fd);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || st.st_ino != c->sock->app_ino || st.st_dev != c->sock->app_dev) {
		REAL(close)(fd);
		return -1;
	}
	return fd;
}

/* One-shot HUP watch: epoll reports only POLLHUP/POLLERR for events 0.
 * Re-armed (MOD) on a stack end already in the set. */
void us_hup_arm(struct us_conn *c)
{
	struct epoll_event e = { .events = EPOLLONESHOT, .data.ptr = c };

	if (epoll_ctl(c->st->hup_fd, EPOLL_CTL_MOD, c->sfd, &e) < 0)
		epoll_ctl(c->st->hup_fd, EPOLL_CTL_ADD, c->sfd, &e);
}

/* The same for a stack end just made, which no set holds yet: one
 * epoll_ctl, where us_hup_arm's MOD would fail first (a connection each). */
static void hup_watch_new(struct us_conn *c)
{
	struct epoll_event e = { .events = EPOLLONESHOT, .data.ptr = c };

	if (epoll_ctl(c->st->hup_fd, EPOLL_CTL_ADD, c->sfd, &e) < 0)
		us_hup_arm(c);
}

bool us_app_gone(int sfd)
{
	struct pollfd p = { .fd = sfd, .events = POLLRDHUP };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLHUP);
}

/* The same for a relay: without a poll once its hang-up watch reported
 * the hang-up (it lasts: both directions of the pair stay shut), as at
 * every close. */
static bool app_gone(struct us_conn *c)
{
	return c->hup_seen || (c->hup_seen = us_app_gone(c->sfd));
}

/* The hang-up set's report being dispatched (us_on_hup): a relay freed
 * meanwhile is taken out of what is left of it. */
#define HUP_BATCH 64
static struct epoll_event hup_batch[HUP_BATCH];
static int hup_n, hup_next;

void us_conn_free(struct us_conn *c, bool free_sock)
{
	for (int i = hup_next; i < hup_n; i++)
		if (hup_batch[i].data.ptr == c)
			hup_batch[i].data.ptr = NULL;
	us_io_forget(&c->io);
	us_lo_close(c);
	if (c->sfd >= 0) {
		epoll_ctl(c->st->hup_fd, EPOLL_CTL_DEL, c->sfd, NULL);
		REAL(close)(c->sfd);
	}
	us_spare_use(&c->spare_end);
	us_spare_use(&c->spare_port);
	c->st->conns[us_sock_idx(c->sock)] = NULL;
	c->st->nrelays--;
	LIST_REMOVE(c, all);
	set_blocked(c, false);
	set_parked(c, false);
	if (c->dirty)
		LIST_REMOVE(c, dirty);
	free(c->out);
	free(c->tail);
	if (free_sock)
		us_sock_free(c->sock);
	free(c);
}

/* Has the program let go of its end? POLLHUP on the stack end says both
 * directions are shut. A close does that in one step; so do the program's
 * shutdown(SHUT_WR) and our passing on of the peer's FIN together, and then
 * the program still holds the socket (it reads TCP_INFO, the addresses, the
 * error), as on Linux. Such a connection is not released: both FINs are
 * out, TCP ends it on its own in bounded time (LAST-ACK, CLOSING or
 * TIME-WAIT), and conn_died frees it. A close of the last fd the shim saw
 * (us_sock_app_closed) settles it. */
static bool app_closed(struct us_conn *c)
{
	int flags = atomic_load(&c->sock->flags);

	if (!app_gone(c))
		return false;
	if (us_sock_app_closed(c->sock))
		return true;
	/* shutdown(SHUT_RDWR), or SHUT_WR after the peer's FIN passed: the
	 * program shut both directions and holds the socket still. */
	return !((flags & US_F_APP_SHUT) && (c->shut_sent || (flags & US_F_APP_SHUT_RD)));
}

/* Watch for the app end's hang-up, unless the stack end already reports one
 * that app_closed found ambiguous: re-armed, it would fire at once, for
 * ever. The program's close then comes through us_relay_wake (parked). */
static void hup_rearm(struct us_conn *c)
{
	if (!app_gone(c))
		us_hup_arm(c);
	else
		set_parked(c, true);
}

/* The program let go of the socket: CLOSE (or ABORT) and forget the relay.
 * TCP keeps the control block until CLOSED (an orphan). */
static void release_tcb(struct us_conn *c, bool abort)
{
	struct ust_tcb *t = c->tcb;
	ust_time now = ust_now();

	if (t) {
		/* A connection that was queued for accept but never taken
		 * (its app end died in flight) is reset, like a child still
		 * in Linux's accept queue when the listener closes (C30). */
		bool unaccepted = ust_tcp_listener_of(t) == NULL && !c->listener && c->sock->owner == c->st->pid &&
				  (atomic_load(&c->sock->flags) & (US_F_ACCEPTED | US_F_CONNECTING)) == 0 &&
				  UST_TCP_SYNCHRONIZED(ust_tcp_get_state(t));
		uint16_t lport = ust_tcp_local_port(t);
		if (c->listener && ust_tcp_half_open(t))
			c->st->answer_until = now + US_HALF_OPEN_ANSWER;
		ust_tcp_set_user(t, NULL);
		if (abort || unaccepted)
			ust_tcp_abort(t, now);
		else
			ust_tcp_close(t, now);
		c->tcb = NULL;
		/* Its children may hold the port on (TIME-WAIT): the
		 * reservation stops listening, so that a new listener with
		 * SO_REUSEADDR may share it, as on Linux. */
		if (c->listener && !ust_tcp_port_listening(&c->st->tcp, lport))
			us_port_unlisten(lport);
		if (c->listener)
			us_port_group_update(c->st, lport);
	}
}

void us_conn_release(struct us_conn *c, bool abort)
{
	release_tcb(c, abort);
	us_conn_free(c, true);
}

void us_conn_hand_on(struct us_conn *c)
{
	release_tcb(c, false);
	us_conn_free(c, false);
}

/* ---- app -> TCP ---- */

static void conn_pull(struct us_conn *c);

/* The spans cut to their first len bytes; how many spans are left. */
static unsigned iov_cut(struct iovec iov[2], unsigned n, uint32_t len)
{
	if (iov[0].iov_len >= len) {
		iov[0].iov_len = len;
		return 1;
	}
	if (n == 2 && iov[0].iov_len + iov[1].iov_len > len)
		iov[1].iov_len = len - iov[0].iov_len;
	return n;
}

/* How much of want may be read from the pair: all of it, except the
 * sentinel, which is never data. 0 when only the sentinel is left (the EOF
 * follows: the app end was shut before us_relay_take_tail ran). */
static size_t pair_room(const struct us_conn *c, size_t want)
{
	int queued;

	if (!c->sentinel)
		return want;
	if (ioctl(c->sfd, SIOCINQ, &queued) < 0 || queued <= 1)
		return 0;
	return (size_t)queued - 1 < want ? (size_t)queued - 1 : want;
}

/* TCP_NOTSENT_LOWAT: Linux's socket takes no more bytes, and polls
 * unwritable, while this many are queued and not sent yet (its
 * tcp_stream_memory_free). 0 or -1: the sysctl's default, no limit. */
static uint32_t notsent_lowat(const struct us_conn *c)
{
	int v = atomic_load(&c->sock->notsent_lowat);

	return v > 0 ? (uint32_t)v : 0;
}

/* The pair is read only while TCP has fewer unsent bytes than the mark:
 * the program's writes then stay in the pair, which is kept small for
 * such a socket (app_sndbuf_of), so the app end polls writable when
 * Linux's would. */
static bool notsent_full(const struct us_conn *c)
{
	uint32_t mark = notsent_lowat(c);

	return mark && c->tcb && ust_tcp_snd_notsent(c->tcb) >= mark;
}

/* What the pair may hold beyond the ring's free space: Linux's write
 * checks the buffer before it copies a segment train (up to 64 kB), so
 * its socket holds up to that much past SO_SNDBUF (27 kB measured at
 * SO_SNDBUF 64 kB); and a pair that runs dry whenever the ring fills makes
 * the program wait for the stack thread at every ACK (0.4 of the rate). */
static uint32_t pair_slack(uint32_t ring_cap)
{
	return ring_cap / 4 < 65536 ? ring_cap / 4 : 65536;
}

/* The app end's send buffer once connected: AF_UNIX's default; the least
 * the kernel allows (two skbs of about 2 kB) under TCP_NOTSENT_LOWAT, so
 * that the bytes the program may leave in the pair are few; and after
 * SO_SNDBUF, the send ring's free space. Linux's write blocks once the
 * socket holds SO_SNDBUF (doubled) bytes, and the ring holds that many:
 * a pair of its default size besides let a program have 150 kB more
 * outstanding than Linux allows (issue 14, 13d). A pair sized to the
 * ring's free space takes at once what Linux's socket would take, and
 * nothing more once the ring is full. setsockopt doubles the value, as
 * set_sndbuf's Linux does. */
static int app_sndbuf_of(const struct us_conn *c)
{
	if (notsent_lowat(c))
		return 1;
	if (c->tcb && ust_tcp_sndbuf_locked(c->tcb)) {
		uint32_t room = ust_tcp_snd_room(c->tcb), cap = room + ust_tcp_snd_queued(c->tcb);
		int half = (int)((room + pair_slack(cap)) / 2);
		return half > 0 ? half : 1;
	}
	return c->st->app_sndbuf;
}

static void set_app_sndbuf(struct us_conn *c, int size)
{
	int fd = app_end(c);

	if (fd < 0)
		return;
	REAL(setsockopt)(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	REAL(close)(fd);
	c->pair_sndbuf = size;
}

/* After SO_SNDBUF: the pair follows the ring's free space as reads fill
 * it and ACKs empty it. A quarter's change at least, or the ring full or
 * empty, so that a flow pays the four system calls of a resize (app_end,
 * setsockopt) a few times per ring's worth, not per segment. A larger
 * buffer wakes a writer blocked on the pair (sock_setsockopt's
 * sk_write_space). */
static void pair_fit(struct us_conn *c)
{
	int want, have = c->pair_sndbuf;

	if (!c->tcb || !ust_tcp_sndbuf_locked(c->tcb) || notsent_lowat(c) || c->filler || c->app_eof)
		return;
	want = app_sndbuf_of(c);
	if (want == have)
		return;
	if (want == 1 || have == 0 || want * 4 > have * 5 || want * 4 < have * 3 ||
	    ust_tcp_snd_queued(c->tcb) == 0)
		set_app_sndbuf(c, want);
}

static void rd_update(struct us_conn *c)
{
	bool want = synced(c) && !c->app_eof && !c->dead && !c->listener && !c->filler && !c->hold_last &&
		    !notsent_full(c) && ust_tcp_snd_room(c->tcb) > 0;

	if (want)
		us_io_start(&c->io, US_IO_IN);
	else
		us_io_stop(&c->io, US_IO_IN);
}

static bool tail_pending(const struct us_conn *c)
{
	return c->tail_off < c->tail_len;
}

/* The program closed: CLOSE now, or once the tail is in TCP's ring. */
static void app_let_go(struct us_conn *c)
{
	if (tail_pending(c) && c->tcb && !c->dead)
		c->closing = true;
	else
		us_conn_release(c, false);
}

/* The program shut its sending side or closed: a FIN after the data. If
 * the app end is gone too, that was the last close. */
static void on_app_eof(struct us_conn *c)
{
	c->app_eof = true;
	/* A close hangs the stack end up in the same step as it ends the
	 * data, so this tells close (CLOSE: FIN or RST, SO_LINGER) from
	 * shutdown (a FIN). */
	if (app_closed(c)) {
		app_let_go(c);
		return;
	}
	if (synced(c) && !tail_pending(c))
		ust_tcp_shutdown(c->tcb, SHUT_WR, ust_now());
	hup_rearm(c);
	rd_update(c);
}

/* Moves what it can of the tail into TCP's send ring; once it is all
 * there, the FIN (or the release the program's close asked for). Returns
 * false if c was freed. */
static bool tail_pull(struct us_conn *c)
{
	struct iovec iov[2];
	unsigned n;

	while (tail_pending(c) && c->tcb && !c->dead && (n = ust_tcp_snd_spans(c->tcb, iov)) > 0) {
		size_t done = 0;
		for (unsigned i = 0; i < n && tail_pending(c); i++) {
			size_t take = c->tail_len - c->tail_off;
			if (take > iov[i].iov_len)
				take = iov[i].iov_len;
			memcpy(iov[i].iov_base, c->tail + c->tail_off, take);
			c->tail_off += take;
			done += take;
		}
		ust_tcp_snd_commit(c->tcb, (uint32_t)done, ust_now());
	}
	if (tail_pending(c) || !c->tail)
		return true;
	free(c->tail);
	c->tail = NULL;
	c->tail_len = c->tail_off = 0;
	if (c->closing) {
		us_conn_release(c, false);
		return false;
	}
	if (c->app_eof && synced(c))
		ust_tcp_shutdown(c->tcb, SHUT_WR, ust_now());
	return true;
}

/* Reads what the pair holds into the tail (after what TCP's send ring
 * took), until the pair is empty or, once the program shut its side, its
 * EOF. False if c was freed or the tail could not grow. */
static bool tail_fill(struct us_conn *c)
{
	size_t cap = c->tail_len;

	while (c->tcb && !c->app_eof && !c->dead && !c->filler) {
		size_t room;
		ssize_t r;
		if (cap - c->tail_len < 65536) {
			char *more = realloc(c->tail, cap + 65536);
			if (!more)
				return false; /* the pair keeps the rest */
			c->tail = more;
			cap += 65536;
		}
		room = pair_room(c, cap - c->tail_len);
		if (room == 0) {
			on_app_eof(c); /* only the sentinel is left, then the EOF */
			return true;
		}
		r = REAL(read)(c->sfd, c->tail + c->tail_len, room);
		if (r > 0) {
			c->tail_len += (size_t)r;
		} else if (r == 0) {
			on_app_eof(c); /* the FIN waits for the tail */
			return true;
		} else {
			if (errno == ECONNRESET) {
				us_conn_release(c, true);
				return false;
			}
			return true; /* EAGAIN: empty */
		}
	}
	return true;
}

/* Before the program shuts its sending side: what it wrote leaves the pair
 * now, and nothing more is read until us_relay_take_tail, so that the byte
 * the shim sends next is the last one in the pair (the sentinel). */
void us_relay_hold_last(struct us_conn *c)
{
	struct us_stack *st = c->st;
	struct us_sock *s = c->sock;

	conn_pull(c); /* may free c */
	c = us_conn_of(st, s);
	if (c && tail_fill(c) && (c = us_conn_of(st, s)) != NULL) {
		c->hold_last = true;
		rd_update(c);
	}
}

void us_relay_take_tail(struct us_conn *c, bool sentinel)
{
	struct us_stack *st = c->st;
	struct us_sock *s = c->sock;

	c->hold_last = false;
	c->sentinel = c->sentinel || sentinel;
	conn_pull(c); /* into TCP's ring first; may read the EOF, or free c */
	c = us_conn_of(st, s);
	if (c)
		tail_fill(c);
}

/* Reads what the program wrote into TCP's send ring. With short_ends
 * (on_rd, the stack end's level-triggered watch) a read that came back
 * short ends it: AF_UNIX's stream read stops short only on an empty queue
 * (or at a mark: an out-of-band byte, a writer's other credentials), and
 * anything written since, or the EOF, makes rd fire again; the read that
 * would say EAGAIN is a system call per message saved. A close right after
 * the write is still taken in the same turn: us_on_hup reads on to the
 * EOF. */
static void conn_pull_to(struct us_conn *c, bool short_ends)
{
	struct iovec iov[2];
	unsigned n;

	if (c->tail && !tail_pull(c))
		return;
	while (c->tcb && !c->app_eof && !c->dead && !c->hold_last && !tail_pending(c) && !notsent_full(c) &&
	       (n = ust_tcp_snd_spans(c->tcb, iov)) > 0) {
		size_t room = pair_room(c, iov[0].iov_len + (n > 1 ? iov[1].iov_len : 0));
		ssize_t r;

		if (room == 0) {
			/* The spans go unused: an empty ring's memory goes back. */
			ust_tcp_snd_commit(c->tcb, 0, ust_now());
			on_app_eof(c);
			return;
		}
		n = iov_cut(iov, n, (uint32_t)room);
		r = REAL(readv)(c->sfd, iov, (int)n);
		/* Also when nothing came: the ring's memory then goes back. */
		ust_tcp_snd_commit(c->tcb, r > 0 ? (uint32_t)r : 0, ust_now());
		if (r > 0 && short_ends && (size_t)r < iov[0].iov_len + (n > 1 ? iov[1].iov_len : 0))
			break;
		if (r > 0)
			continue;
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
	pair_fit(c);
	rd_update(c);
}

static void conn_pull(struct us_conn *c)
{
	conn_pull_to(c, false);
}

static void on_rd(struct us_io *w)
{
	struct us_conn *c = ust_container_of(w, struct us_conn, io);
	struct us_stack *st = c->st; /* conn_pull may free c */

	conn_pull_to(c, true);
	ust_loop_kick(&st->loop, ust_now());
}

/* ---- TCP -> app ---- */

/* Passes received bytes on; returns false while bytes remain that the pair
 * cannot take yet. */
/* SO_RCVLOWAT: hold what arrived while fewer bytes than the mark wait, as
 * Linux's tcp_poll and tcp_data_ready do (tcp_stream_is_readable), unless
 * the peer's FIN came or the connection died. Linux caps the mark at half
 * the receive buffer (tcp_set_rcvlowat); so does this, with the ring's
 * size, so that a full window never waits for a mark it cannot reach. */
static bool below_rcvlowat(const struct us_conn *c)
{
	const struct ust_tcb *t = c->tcb;
	uint32_t mark = (uint32_t)c->rcvlowat, queued;

	if (mark <= 1 || c->dead || ust_tcp_fin_rcvd(t))
		return false;
	if (mark > ust_tcp_rcv_capacity(t) / 2)
		mark = ust_tcp_rcv_capacity(t) / 2;
	queued = ust_tcp_rcv_queued(t);
	return queued > 0 && queued < mark;
}

static bool conn_push(struct us_conn *c)
{
	struct ust_tcb *t = c->tcb;
	struct iovec iov[2];
	unsigned n;

	if (!t || c->shut_sent)
		return true;
	if (below_rcvlowat(c)) {
		us_io_stop(&c->io, US_IO_OUT);
		return true;
	}
	/* After the program's SHUT_RD what arrives stays in TCP's ring, as
	 * Linux keeps queueing it (C7): read through us_op_read_held. */
	while (!c->rd_shut && (n = ust_tcp_rcv_spans(t, iov)) > 0) {
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = n };
		int flags = MSG_DONTWAIT | MSG_NOSIGNAL;
		uint32_t urg;
		ssize_t r;

		/* The peer's urgent byte goes as AF_UNIX's out-of-band byte,
		 * which the app end then reads as Linux's TCP socket would
		 * (tcp_urg.c); the bytes before it first. */
		if (ust_tcp_rcv_urgent(t, &urg)) {
			m.msg_iovlen = iov_cut(iov, n, urg ? urg : 1);
			if (!urg)
				flags |= MSG_OOB;
		}
		r = REAL(sendmsg)(c->sfd, &m, flags);
		if (r < 0 && (flags & MSG_OOB) && errno == EOPNOTSUPP) /* no CONFIG_AF_UNIX_OOB */
			r = REAL(sendmsg)(c->sfd, &m, flags & ~MSG_OOB);
		if (r > 0) {
			ust_tcp_rcv_consumed(t, (uint32_t)r, ust_now());
			continue;
		}
		if (r < 0 && errno == EAGAIN) {
			us_io_start(&c->io, US_IO_OUT);
			return false;
		}
		/* EPIPE: the program shut its receiving side without
		 * telling us (a socket another process's stack serves): what
		 * arrives is read and dropped, as nobody can see it. */
		ust_tcp_rcv_consumed(t, ust_tcp_rcv_queued(t), ust_now());
		break;
	}
	us_io_stop(&c->io, US_IO_OUT);
	if (ust_tcp_fin_rcvd(t) && !c->shut_sent && !ust_tcp_rcv_queued(t)) {
		REAL(shutdown)(c->sfd, SHUT_WR);
		c->shut_sent = true;
	}
	return true;
}

/* ---- listeners ---- */

static void on_wr(struct us_io *w);

struct us_conn *us_conn_new(struct us_stack *st, struct us_sock *s, int sfd)
{
	struct us_conn *c;

	/* One entry per slot, as many as the region has: address space
	 * until used (calloc maps it zeroed on demand). */
	if (!st->conns && !(st->conns = calloc(us_sock_slots(), sizeof(*st->conns))))
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->st = st;
	c->sock = s;
	c->sfd = sfd;
	c->spare_end = c->spare_port = -1;
	c->lo_fd = c->lo6_fd = c->lo_held = -1;
	us_io_init(&c->io, st->io_fd, sfd, on_rd, on_wr);
	st->conns[us_sock_idx(s)] = c;
	st->nrelays++;
	LIST_INSERT(&st->all, c, all);
	if (sfd < 0)
		set_parked(c, true); /* only the program's close can end it now */
	return c;
}

static int pair_listener(struct us_stack *st);

void us_spare_use(int *spare)
{
	if (*spare >= 0)
		REAL(close)(*spare);
	*spare = -1;
}

/* A number held, high if there is room: a dup of fd. */
static int spare_of(int fd)
{
	int h = us_fd_dup_high(fd);

	return h >= 0 ? h : REAL(fcntl)(fd, F_DUPFD_CLOEXEC, 0);
}

int us_app_end_fds(int *app, int *spare_end, int *spare_port, struct stat *st)
{
	int fd = REAL(socket)(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), e;

	*spare_end = *spare_port = -1;
	if (fd < 0)
		return -errno;
	*spare_end = spare_of(fd);
	*spare_port = *spare_end >= 0 ? spare_of(fd) : -1;
	if (*spare_port < 0 || fstat(fd, st) < 0) {
		e = errno;
		REAL(close)(fd);
		us_spare_use(spare_end);
		us_spare_use(spare_port);
		return -e;
	}
	*app = fd;
	return 0;
}

int us_new_app_end(struct us_conn *c, int *app, struct stat *st)
{
	/* Opened with the first socket, not its first connect: the fds a
	 * program counts after its first socket stay as counted. */
	pair_listener(c->st);
	return us_app_end_fds(app, &c->spare_end, &c->spare_port, st);
}

/* The stack's pairing listener: an abstract name the kernel picks
 * (autobind), reachable from this network namespace only. */
static int pair_listener(struct us_stack *st)
{
	int fd;

	if (st->pair_ready)
		return 0;
	fd = REAL(socket)(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	st->pair_addr.sun_family = AF_UNIX;
	st->pair_len = sizeof(st->pair_addr);
	if (REAL(bind)(fd, (struct sockaddr *)&st->pair_addr, sizeof(sa_family_t)) < 0 ||
	    REAL(listen)(fd, 64) < 0 ||
	    REAL(getsockname)(fd, (struct sockaddr *)&st->pair_addr, &st->pair_len) < 0) {
		int e = errno;
		REAL(close)(fd);
		return -e;
	}
	st->pair_lfd = us_fd_high(fd);
	st->pair_ready = true;
	return 0;
}

/* The connection the app end just made: any other process may connect to
 * the abstract name too, but only this thread of ours does, so the one
 * whose peer has our pid (the program's, or the guardian's, which makes
 * a listener's and an accepted connection's pairs) is it; the others are
 * closed, and so are ours that a failed pairing left before it
 * (pair_stale). */
static int pair_accept(struct us_stack *st)
{
	for (;;) {
		struct ucred cr;
		socklen_t len = sizeof(cr);
		/* The kernel's accept4: the shim's would first ask whether
		 * the listener is one of the program's sockets (two system
		 * calls a connection). */
		int fd = REAL(accept4)(st->pair_lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return -errno;
		if (REAL(getsockopt)(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 && (cr.pid == st->pid || cr.pid == getpid())) {
			if (!st->pair_stale)
				return fd;
			st->pair_stale--;
		}
		REAL(close)(fd);
	}
}

/* Filler: the app end is not writable until connected (a listener's:
 * never). connected() takes it out. */
static void fill(struct us_conn *c, int app)
{
	int small = 1;

	REAL(setsockopt)(app, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	/* One send larger than the least buffer holds: AF_UNIX queues skbs
	 * until the buffer is full and returns the count (a short write),
	 * where 2048-byte sends took three system calls to reach EAGAIN. */
	for (;;) {
		ssize_t w = REAL(send)(app, c->st->scratch, 16384, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w <= 0)
			break;
		c->filler += (uint32_t)w;
		if (w < 16384)
			break;
	}
}

/* The stack end goes high, to the number the spare held (one dup3 that
 * replaces it, rather than a close, a dup and a close). The spare goes in
 * every case: it is a dup of the app end, and one left open past the
 * pairing keeps the app end's file alive after the program's close, so
 * the stack end never hangs up and the connection never ends (the peer
 * never sees a FIN). An accept lands high when the program's half of the
 * fd table is full, as it is near the fd limit. */
static int stack_end_number(struct us_conn *c, int sfd)
{
	if (c->spare_end < 0 || sfd >= us_fd_base() || REAL(dup3)(sfd, c->spare_end, O_CLOEXEC) < 0) {
		us_spare_use(&c->spare_end);
		return us_fd_high(sfd);
	}
	REAL(close)(sfd);
	sfd = c->spare_end;
	c->spare_end = -1;
	return sfd;
}

int us_relay_pair(struct us_conn *c, bool filler)
{
	struct us_stack *st = c->st;
	struct stat sb;
	int app, sfd, r;

	if (c->sfd >= 0)
		return 0;
	r = pair_listener(st);
	if (r < 0)
		return r;
	/* The program's number for it, which the calling thread holds
	 * (shim/connect.c and socket.c set app_fd): no dup, no fd taken. */
	app = c->sock->app_fd;
	if (app < 0 || fstat(app, &sb) < 0 || sb.st_ino != c->sock->app_ino || sb.st_dev != c->sock->app_dev)
		return -EBADF;
	if (REAL(connect)(app, (struct sockaddr *)&st->pair_addr, st->pair_len) < 0)
		return -errno;
	sfd = pair_accept(st);
	if ((sfd == -EMFILE || sfd == -ENFILE) && c->spare_end >= 0) {
		/* The spare kept a number for it: the connection waits in
		 * the listener's queue until an accept has one. */
		us_spare_use(&c->spare_end);
		sfd = pair_accept(st);
	}
	if (sfd < 0) {
		/* The app end's connection waits in the queue: the next
		 * pairing's accept must not take it for its own. */
		st->pair_stale++;
		return sfd;
	}
	c->sfd = stack_end_number(c, sfd);
	us_io_set_fd(&c->io, c->sfd);
	if (filler)
		fill(c, app);
	set_parked(c, false);
	atomic_fetch_or(&c->sock->flags, US_F_PAIRED);
	hup_watch_new(c);
	/* Synchronized, without filler: nothing can be in the pair yet
	 * (the app end was unconnected), so rd watches it rather than a
	 * read that would say EAGAIN. */
	if (!filler && c->tcb) {
		pair_fit(c); /* SO_SNDBUF's, as conn_pull's end would */
		rd_update(c);
	}
	return 0;
}

/*
 * connect(): the SYN goes out before the caller wakes, and one look (one
 * receive batch, not waiting) takes an answer already there. A peer on the
 * same host (a veth, as the benchmarks have) answers within the send, so
 * the connection is established before connect() returns, as Linux's is
 * there: the app end is paired without filler, and the program finds it
 * writable at once instead of sleeping in poll until this thread wakes it
 * (two switches, and the filler's four system calls: setsockopt, send,
 * and at the answer the SO_SNDBUF's restoring and the filler's recv). A
 * peer farther away costs one receive that finds nothing; the connect,
 * blocking or not, is then paired with filler, so that it polls 0 in
 * SYN-SENT, to another thread too, as Linux's. While it looks, conn_pump
 * leaves this relay alone (looking): a refusal read in the look is acted
 * on once paired, so that the program sees it as before (POLLERR).
 */
int us_relay_connect_look(struct us_conn *c)
{
	struct us_stack *st = c->st;
	struct ust_loop *l = &st->loop;
	struct us_sock *s = c->sock;
	int r;

	c->looking = true;
	ust_loop_kick(l, ust_now());
	if (ust_link_rx(l->link, l->st, ust_now(), 1) > 0)
		ust_loop_kick(l, ust_now());
	if ((c = us_conn_of(st, s)) == NULL)
		return 0;
	c->looking = false;
	if (!c->tcb)
		return 0;
	/* ESTABLISHED before the app end is writable (conn_pump's order). */
	us_publish(c);
	r = us_relay_pair(c, !synced(c));
	if (r < 0) {
		/* The SYN went: abandon it (ABORT in SYN-SENT sends nothing;
		 * a SYN-ACK is answered with RST). */
		ust_tcp_set_user(c->tcb, NULL);
		ust_tcp_abort(c->tcb, ust_now());
		c->tcb = NULL;
		publish_state(s, UST_TCP_CLOSED);
		return r;
	}
	us_mark_dirty(c);
	ust_loop_kick(l, ust_now());
	return 0;
}

/* A new socketpair: the app end stays low (the program's number), the
 * stack end goes high. Both ends are made non-blocking (the stack thread
 * never blocks): the accepted app end is the program's file only once
 * accept4 received it, which sets its O_NONBLOCK as the program asked
 * (a server that asks for SOCK_NONBLOCK, as most do, pays no fcntl). */
int us_new_pair(int *app, int *sfd, struct stat *st)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		return -errno;
	if (fstat(sv[0], st) < 0) {
		int e = errno;
		REAL(close)(sv[0]);
		REAL(close)(sv[1]);
		return -e;
	}
	*app = sv[0];
	*sfd = us_fd_high(sv[1]);
	return 0;
}

/* How many delivered connections still wait for accept(). */
unsigned us_relay_outstanding(struct us_conn *l)
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

/* Sends tok on a listener's stack end with app attached; false if it did
 * not go (a token is tiny: a short send means none went). */
bool us_send_token(int lsfd, int app, const struct us_token *tok)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { (void *)tok, sizeof(*tok) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;

	memset(cbuf, 0, sizeof(cbuf));
	cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &app, sizeof(int));
	return REAL(sendmsg)(lsfd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)sizeof(*tok);
}

/* A fresh slot for the accepted connection ct, filled with what the
 * accepting program may read at once, before the token leaves; the token
 * that names it. */
static void accepted_sock(struct us_conn *l, struct us_sock *s, const struct stat *st,
			  struct ust_tcb *ct, struct us_token *tok)
{
	struct ust_tcp_ends e;
	uint8_t opts[UST_IPV4_OPT_MAX];
	unsigned n;

	ust_tcp_ends(ct, &e);
	s->owner = l->st->pid;
	s->app_dev = st->st_dev;
	s->app_ino = st->st_ino;
	s->app_fd = -1; /* its number is the accepting program's */
	atomic_store(&s->state, (int)ust_tcp_get_state(ct));
	atomic_store(&s->family, atomic_load(&l->sock->family));
	atomic_store(&s->v6only, atomic_load(&l->sock->v6only));
	us_sock_set_end(s, false, &e.laddr, e.lport);
	us_sock_set_end(s, true, &e.raddr, e.rport);
	atomic_store(&s->flags, US_F_EVER_SYNCED | US_F_PAIRED | (atomic_load(&l->sock->flags) & US_F_INQ));
	atomic_store(&s->ip_tos, atomic_load(&l->sock->ip_tos));
	atomic_store(&s->ip_ttl, atomic_load(&l->sock->ip_ttl));
	atomic_store(&s->ip_pmtudisc, atomic_load(&l->sock->ip_pmtudisc));
	atomic_store(&s->ip6_tclass, atomic_load(&l->sock->ip6_tclass));
	atomic_store(&s->ip6_hops, atomic_load(&l->sock->ip6_hops));
	atomic_store(&s->ip6_pmtudisc, atomic_load(&l->sock->ip6_pmtudisc));
	atomic_store(&s->tx_delay, atomic_load(&l->sock->tx_delay));
	atomic_store(&s->fastopen_no_cookie, atomic_load(&l->sock->fastopen_no_cookie));
	if (atomic_load(&l->sock->ipopts_dirty))
		us_ip_opts_copy(us_sock_ipopts_w(s), us_sock_ipopts(l->sock), ust_ip6_is_v4mapped(&e.raddr));
	/* An IPv4 child's IP_OPTIONS: the echo of its SYN's, as it sends
	 * them. */
	if ((n = ust_tcp_ip_opts(ct, opts)) > 0) {
		struct us_ip_opts *o = us_sock_ipopts_w(s);
		memcpy(o->ip_opts, opts, n);
		atomic_store(&o->ip_opts_len, (uint8_t)n);
	}
	if (ust_tcp_rcv_tos(ct))
		atomic_store(&us_sock_ipopts_w(s)->rcv_tos, ust_tcp_rcv_tos(ct));
	memset(tok, 0, sizeof(*tok));
	tok->magic = US_TOKEN_MAGIC;
	tok->idx = us_sock_idx(s);
	tok->gen = atomic_load(&s->gen);
	tok->laddr = e.laddr;
	tok->lport = e.lport;
	tok->raddr = e.raddr;
	tok->rport = e.rport;
}

/* TCP_SAVED_SYN: the SYN's headers go to the accepted socket's slot, where
 * any process that holds it reads them (shim/sockopt.c), before its token
 * leaves; TCP lets its copy go once the connection is the program's
 * (deliver_one: a token that could not leave takes the slot with it, and
 * the next one gets them again). Longer than the slot's room (IPv6
 * extension headers), nothing is there to read. */
static void keep_saved_syn(const struct ust_tcb *ct, struct us_sock *s)
{
	unsigned len;
	const uint8_t *h = ust_tcp_saved_syn(ct, &len);
	struct us_ip_opts *o;

	if (!h || len > US_SAVED_SYN_MAX)
		return;
	o = us_sock_ipopts_w(s);
	memcpy(o->saved_syn, h, len);
	atomic_store(&o->saved_syn_len, (uint16_t)len);
}

/* No fds (or slot) for an accepted connection's pair: the program's
 * accept() fails with the kernel's EMFILE or ENFILE while the connection
 * waits in TCP's accept queue, and the listener stays readable, as Linux's.
 * One error token at a time (US_F_ERR_TOKEN): the accept() that takes it
 * asks us to deliver again at once (us_op_accept_retry), so that it gets
 * the connection if fds came free meanwhile, or else leaves a new error
 * token for the next. */
static void send_error_token(struct us_conn *l, int err)
{
	struct us_token tok = { .magic = US_TOKEN_MAGIC, .idx = US_TOKEN_ERROR, .gen = (uint32_t)err };

	/* The flag goes up before the token leaves: the accept() that
	 * takes it may clear it before send() has even returned here. */
	if (atomic_fetch_or(&l->sock->flags, US_F_ERR_TOKEN) & US_F_ERR_TOKEN)
		return;
	if (REAL(send)(l->sfd, &tok, sizeof(tok), MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(tok))
		atomic_fetch_and(&l->sock->flags, ~US_F_ERR_TOKEN); /* the pair is full of tokens */
}

/* Hands the oldest connection of l's accept queue to the program; false
 * when it could not (no slot, no memory, the pair full: then the writable
 * watcher is on). */
/* The bytes an accepted connection already holds go into its pair before
 * the token, so that they are readable when accept() returns, as on Linux
 * (what TCP_DEFER_ACCEPT waits for). Copied, not taken: TCP lets go of
 * them once the token is out. An urgent byte is left to conn_push. */
static uint32_t prefill(const struct ust_tcb *ct, int sfd)
{
	struct iovec iov[2];
	struct msghdr m = { .msg_iov = iov };
	uint32_t urg;
	ssize_t r;

	if (ust_tcp_rcv_urgent(ct, &urg))
		return 0;
	m.msg_iovlen = ust_tcp_rcv_spans(ct, iov);
	if (!m.msg_iovlen)
		return 0;
	r = REAL(sendmsg)(sfd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
	return r > 0 ? (uint32_t)r : 0;
}

static bool deliver_one(struct us_conn *l)
{
	struct ust_tcb *ct = ust_tcp_accept_peek(l->tcb);
	struct us_sock *s = us_sock_alloc();
	struct us_conn *c;
	struct us_token tok;
	struct stat st;
	uint32_t pre;
	int app, sfd, err;

	/* Counted as socket() counts them; the connection waits in TCP's
	 * accept queue for fds or a slot to come free. */
	if (!s) {
		l->st->st.ctr.event[UST_EV_SOCK_NO_SLOT]++;
		send_error_token(l, ENFILE);
		return false;
	}
	err = us_new_pair(&app, &sfd, &st);
	if (err < 0) {
		l->st->st.ctr.event[UST_EV_SOCK_NO_FD]++;
		us_sock_free(s);
		send_error_token(l, -err);
		return false;
	}
	accepted_sock(l, s, &st, ct, &tok);
	keep_saved_syn(ct, s);
	if (l->rcvlowat > 1) {
		/* Linux's child inherits the mark (sk_clone); its bytes wait
		 * for it in TCP's ring (conn_push), not prefilled. */
		REAL(setsockopt)(app, SOL_SOCKET, SO_RCVLOWAT, &l->rcvlowat, sizeof(l->rcvlowat));
		atomic_fetch_or(&s->flags, US_F_RCVOPTS);
	}
	if (ust_tcp_max_pacing_rate(ct) != UINT64_MAX) {
		/* The child's cap (sk_clone), read back as Linux's. */
		uint64_t cap = ust_tcp_max_pacing_rate(ct);
		REAL(setsockopt)(app, SOL_SOCKET, SO_MAX_PACING_RATE, &cap, sizeof(cap));
	}
	pre = l->rcvlowat > 1 ? 0 : prefill(ct, sfd);
	if (!us_send_token(l->sfd, app, &tok)) {
		REAL(close)(app);
		REAL(close)(sfd);
		us_sock_free(s);
		if (errno == EAGAIN)
			us_io_start(&l->io, US_IO_OUT);
		return false;
	}
	REAL(close)(app); /* the token holds it now */
	c = us_conn_new(l->st, s, sfd);
	if (!c) {
		REAL(close)(sfd);
		us_sock_free(s);
		return false;
	}
	ust_tcp_accept(l->tcb, c, &err);
	ust_tcp_saved_syn_drop(ct); /* the slot has them (keep_saved_syn) */
	c->tcb = ct;
	c->rcvlowat = l->rcvlowat;
	if (pre)
		ust_tcp_rcv_consumed(ct, pre, ust_now());
	l->out[l->nout].idx = tok.idx;
	l->out[l->nout].gen = tok.gen;
	l->nout++;
	us_publish(c);
	hup_watch_new(c);
	us_mark_dirty(c);
	return true;
}

/* Hands established connections to the program: one token per connection
 * on the listener's pair, the connection's app end attached. Stops when the
 * pair is full (the program is not accepting); the rest wait in TCP's
 * accept queue, which the backlog bounds. */
static unsigned deliver(struct us_conn *l)
{
	/* listen(n) lets n + 1 connections wait, as Linux's queue does. */
	unsigned limit = l->backlog + 1, out, n = 0;

	us_lo_deliver(l); /* one held for want of room goes first */
	set_blocked(l, false);
	us_relay_outstanding(l); /* once: drops the accepted; each delivery below adds one */
	while (l->tcb && ust_tcp_accept_peek(l->tcb) && l->nout < limit) {
		if (!deliver_one(l))
			return n;
		n++;
	}
	if (l->lo_held < 0)
		us_io_stop(&l->io, US_IO_OUT); /* else: the pair's room is awaited for it */
	/* TCP's accept queue holds what the program's cannot: together no
	 * more than the backlog allows. While some are delivered and not yet
	 * accepted, accept() wakes us to move the limit. */
	out = l->nout;
	if (l->tcb)
		ust_tcp_set_backlog(l->tcb, out + 1 < limit ? limit - out - 1 : 0);
	/* Only when connections wait for one to be accepted (the limit
	 * reached, or TCP holding some): below it, TCP's share is set again
	 * when it would refuse one (us_on_backlog_full), and an accept()
	 * wakes no one (a write, the stack thread's wake-up and its read,
	 * per connection). */
	if (out >= limit || (l->tcb && ust_tcp_accept_peek(l->tcb))) {
		set_blocked(l, true);
		atomic_fetch_or(&l->sock->flags, US_F_BACKLOGGED);
	}
	return n;
}

/* TCP would refuse a connection by the backlog deliver() gave it: the
 * program may have accepted some since (without waking us), so count
 * again, as Linux's queue would when the SYN comes. */
void us_on_backlog_full(void *ctx, struct ust_tcb *t)
{
	struct us_conn *l = ust_tcp_user(t);
	unsigned limit, out;

	if (!l || !l->listener)
		return;
	limit = l->backlog + 1;
	out = us_relay_outstanding(l);
	ust_tcp_set_backlog(t, out + 1 < limit ? limit - out - 1 : 0);
}

unsigned us_listener_deliver(struct us_conn *l)
{
	if (l->listener && l->tcb && ust_tcp_get_state(l->tcb) == UST_TCP_LISTEN)
		return deliver(l);
	return 0;
}

/* ---- the connection's state after TCP ran ---- */

/* The connect finished: the app end becomes writable at its normal size. */
static void connected(struct us_conn *c)
{
	set_app_sndbuf(c, app_sndbuf_of(c));
	while (c->filler) {
		ssize_t r = REAL(recv)(c->sfd, c->st->scratch,
				       c->filler < sizeof(c->st->scratch) ? c->filler : sizeof(c->st->scratch),
				       MSG_DONTWAIT);
		if (r <= 0)
			break;
		c->filler -= (uint32_t)r;
	}
	c->filler = 0;
	/* The filler kept the program from writing: rd watches rather than
	 * a read that would say EAGAIN (conn_pump). */
	pair_fit(c);
	rd_update(c);
}

/* The program set TCP_NOTSENT_LOWAT: the app end's buffer follows (once
 * connected: until then it holds the filler), and the pair is read or
 * not by the new mark. */
void us_relay_notsent_lowat(struct us_conn *c)
{
	if (c->sfd >= 0 && !c->filler && !c->listener && synced(c))
		set_app_sndbuf(c, app_sndbuf_of(c));
	us_mark_dirty(c);
}

/* TCP closed while the program holds the socket: publish why, pass on what
 * arrived before, then close the stack end so the program sees it. */
static void conn_died(struct us_conn *c)
{
	struct ust_tcb *t = c->tcb;
	struct ust_tcp_status last;
	struct us_last *l;
	int err, fd;

	if (!c->dead) {
		c->dead = true;
		err = ust_tcp_take_error(t);
		atomic_store(&c->sock->hard_err, ust_tcp_hard_error(t));
		atomic_store(&c->sock->pending_err, err);
		us_publish(c);
		us_io_stop(&c->io, US_IO_IN);
	}
	if (!conn_push(c))
		return; /* the rest when the program reads */
	if (c->sentinel && !ust_tcp_hard_error(t)) {
		/* An orderly end: the app end must not see a reset. */
		char b;
		REAL(recv)(c->sfd, &b, 1, MSG_DONTWAIT);
	} else if (ust_tcp_hard_error(t) || c->filler) {
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
	/* What TCP_INFO reports from now on (us_op_status). */
	ust_tcp_status_at(t, &last, ust_now());
	us_slot_status_write(c->sock, &last);
	l = us_sock_last(c->sock);
	l->at = ust_now();
	snprintf(l->cc, sizeof(l->cc), "%s", ust_tcp_cc_name(t));
	l->ccinfo_len = (uint32_t)ust_tcp_cc_info(t, l->ccinfo);
	l->ts_offset = ust_tcp_ts_clock(t, 0); /* the clock at 0: its offset */
	ust_tcp_getopt(t, UST_TCP_OPT_IPV6_RCV_HOPS, &l->rcv_hops);
	ust_tcp_getopt(t, UST_TCP_OPT_IPV6_RCV_FLOWINFO, &l->rcv_flowinfo);
	ust_tcp_getopt(t, UST_TCP_OPT_IPV6_RCV_KEPT, &l->rcv_kept);
	ust_tcp_getopt(t, UST_TCP_OPT_IPV6_KEPT_FLOWINFO, &l->kept_flowinfo);
	us_kept_net_to_slot(c->sock, t);
	atomic_fetch_or(&c->sock->flags, US_F_LAST_STATUS);
	if (atomic_load(&c->sock->flags) & US_F_MD5)
		us_md5_keep(c->st, c->sock, ust_tcp_md5_take(t));
	ust_tcp_set_user(t, NULL);
	ust_tcp_close(t, ust_now()); /* CLOSED: frees it */
	c->tcb = NULL;
	/* The socket's slot outlives the relay while the program holds the
	 * socket (it reads the state and the error); whichever of us lets go
	 * last frees it. Not "the app end is gone": the program reads the
	 * state and the error from the slot until it closes the socket (or
	 * a failed connect renews it, shim/connect.c). */
	us_conn_free(c, us_sock_detach(c->sock));
}

static void conn_pump(struct us_conn *c)
{
	struct ust_tcb *t = c->tcb;

	if (!t || c->looking)
		return;
	/* CLOSED is published by conn_died, after the error it carries: a
	 * blocking connect wakes on the state and takes the error at once. */
	if (ust_tcp_finished(t) && !c->listener) {
		conn_died(c);
		return;
	}
	/* ESTABLISHED (and the peer's address) first: a program that sees
	 * the socket writable asks getpeername() at once. */
	us_publish(c);
	if (c->listener) {
		if (ust_tcp_get_state(t) == UST_TCP_LISTEN)
			deliver(c);
		return;
	}
	if (c->filler && UST_TCP_SYNCHRONIZED(ust_tcp_get_state(t)))
		connected(c);
	conn_push(c);
	/* While rd watches the pair (level-triggered), what the program
	 * wrote is read by on_rd: a read here would say EAGAIN. Only its
	 * watch may need to change (TCP's ring filled, say). */
	if (us_io_active(&c->io, US_IO_IN) && !c->tail && c->tcb)
		rd_update(c);
	else
		conn_pull(c);
}

static void on_wr(struct us_io *w)
{
	struct us_conn *c = ust_container_of(w, struct us_conn, io);

	us_io_stop(&c->io, US_IO_OUT);
	us_mark_dirty(c);
	ust_loop_kick(&c->st->loop, ust_now());
}

/* Stack ends whose app end hung up or errored. */
void us_on_hup(struct ev_loop *ev, ev_io *w, int revents)
{
	struct us_stack *st = ust_container_of(w, struct us_stack, hup);
	struct epoll_event *e = hup_batch;

	hup_n = epoll_wait(st->hup_fd, e, HUP_BATCH, 0);
	for (hup_next = 0; hup_next < hup_n;) {
		int i = hup_next++;
		struct us_conn *c = e[i].data.ptr;
		if (!c)
			continue; /* freed by an earlier entry's work (us_conn_free) */
		if (e[i].events & EPOLLHUP)
			c->hup_seen = true;
		if (c->dead) {
			us_mark_dirty(c); /* pushing fails now: finish dying */
		} else if (c->listener || c->filler || !synced(c)) {
			/* Nothing to read before letting go (only filler). */
			us_conn_release(c, false);
		} else if (!c->app_eof) {
			/* Take in what was written before the close; the EOF
			 * that follows releases it (now, or once TCP's send
			 * ring has room for the rest). */
			conn_pull(c);
		} else if (app_closed(c)) {
			app_let_go(c);
		} else {
			hup_rearm(c);
		}
	}
	hup_n = hup_next = 0;
	ust_loop_kick(&st->loop, ust_now());
}

/* ---- TCP's callbacks: note only; act in us_relay_after() ---- */

void us_on_tcp_event(void *ctx, struct ust_tcb *t, unsigned events)
{
	struct us_conn *c = ust_tcp_user(t);
	const struct ust_tcb *l = ust_tcp_listener_of(t);

	if (c)
		us_mark_dirty(c);
	else if (l && ust_tcp_user(l) && (events & UST_TCP_EV_ACCEPT))
		us_mark_dirty(ust_tcp_user(l));
}

void us_relay_after(struct ust_loop *l, ust_time now)
{
	struct us_stack *st = ust_container_of(l, struct us_stack, loop);

	while (st->dirty) {
		struct us_conn *c = st->dirty;
		LIST_REMOVE(c, dirty);
		c->dirty = false;
		conn_pump(c);
	}
}

/* ---- all connections ---- */

/* Takes in what the program wrote and closed just before this (at exit),
 * so that its FINs are queued before the keeper takes over. A stack end
 * that hung up is let go only if that was a close (app_closed), as when
 * its hang-up is seen (us_on_hup): after a shutdown both ways another
 * process may hold the socket still (a forked child, or a receiver of
 * SCM_RIGHTS that shut its sending side and now reads the peer's answer
 * and FIN). Until 2026-12-05 a hang-up was enough, and the relay of such
 * a socket was released under its holder, the stack end closed with the
 * shutdown's sentinel unread: the holder's next read failed with
 * ECONNRESET (062 "SCM_RIGHTS: a plain AF_UNIX socket first…"). At the
 * program's end its own fds were let go just before (us_fd_close_all), so
 * a socket only it held counts as closed. Before an exec the old image's
 * entries are still counted (the exec wrapper uncounts them after the
 * hand-over, and the new image counts what it inherits): a hang-up is
 * taken for a close, as before, and a socket shut both ways is released
 * even when the new image or another process still holds it (a known
 * limit, docs/architecture.md §3). */
static void relay_pull(struct us_conn *c, bool exec)
{
	if (c->sfd >= 0 && c->tcb && !c->listener && !c->filler && !c->dead) {
		if (!c->app_eof)
			conn_pull(c);
		else if (exec ? app_gone(c) : app_closed(c))
			app_let_go(c);
	}
}

void us_relay_pull(struct us_conn *c)
{
	relay_pull(c, false);
}

/* Does the image an exec makes get this never-paired socket? Not if the
 * program closed it, nor if the number it was made or last paired under
 * is still its app end and close-on-exec (a dup elsewhere is not looked
 * for: such a socket is kept, and let go with the process at the latest,
 * keeper.c, let_exec_kept_go). */
static bool kept_across_exec(const struct us_conn *c)
{
	const struct us_sock *s = c->sock;
	struct stat sb;
	int fl;

	if (us_sock_app_closed(s))
		return false;
	if (s->app_fd < 0 || fstat(s->app_fd, &sb) < 0 || sb.st_ino != s->app_ino || sb.st_dev != s->app_dev)
		return true;
	fl = REAL(fcntl)(s->app_fd, F_GETFD);
	return fl < 0 || !(fl & FD_CLOEXEC);
}

void us_relay_sync(struct us_stack *st, bool exec)
{
	/* The sockets not yet adopted are the program's too. */
	us_adopt_news(st);
	for (struct us_conn *k = st->all, *next; k; k = next) {
		/* us_relay_pull may free k, never another relay */
		next = k->all_next;
		if (k->sfd < 0 && exec && kept_across_exec(k)) {
			/* Never paired, and the new image inherits it: the
			 * keeper holds its bind and options until that image
			 * connects or listens through it (shim/connect.c,
			 * us_renew takes it over), closes it, or ends. */
			k->exec_kept = true;
		} else if (k->sfd < 0) {
			/* Never paired: nobody can use it after the program. */
			us_conn_release(k, false);
		} else {
			relay_pull(k, exec);
		}
	}
}

void us_relay_wake(struct us_stack *st, bool poked)
{
	/* The relays parked until their program's close (shim/close.c pokes
	 * us once it closed a shut or never-paired socket). */
	for (struct us_conn *c = poked ? st->parked : NULL, *next; c; c = next) {
		next = c->parked_next;
		if (us_sock_app_closed(c->sock))
			app_let_go(c);
	}
	/* Only the listeners stopped at their backlog: every accept()
	 * wakes us, so this is never a walk over every connection. */
	for (struct us_conn *c = st->blocked; c; c = c->blocked_next)
		if (!(atomic_load(&c->sock->flags) & US_F_BACKLOGGED))
			us_mark_dirty(c);
}
