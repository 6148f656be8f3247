/* Connections between two processes on one address (issue 14, item 11).
 *
 * A datagram to our own address never reaches the link: the engine takes
 * it back in (ust_stack_loop), as Linux's loopback device does, and a
 * connection between two sockets of this process works with nothing more.
 * When its port is another stack's (another process on the address: a
 * program connecting to a server beside it), TCP finds the port foreign,
 * and the datagram is passed to the other stacks here, as if it had come
 * over the link: each takes it in and answers (its answers to our address
 * come back the same way), or finds the port not its own and drops it.
 *
 * Between two stacks the channel is a SOCK_SEQPACKET connection: a datagram
 * per message, and flow control by bytes (a datagram socket would drop
 * whatever went past its peer's queue of net.unix.max_dgram_qlen, 10
 * messages). Each stack listens on an abstract name made of the ports
 * file's identity (one per address and run directory) and its owner slot
 * there; it finds the others by their owner locks (us_share_owners) and
 * connects to those it has a datagram for. Abstract names live in the
 * network namespace and have no permissions: a stack takes datagrams only
 * from its own user and root (SO_PEERCRED at accept), as its control
 * socket does.
 *
 * Every other stack gets each such datagram, as every stack on the address
 * reads each frame for it from the link; LOOP_PEERS bounds the connections
 * each way. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "portshare.h"
#include "stack_impl.h"

#define LOOP_PEERS 64
/* How long the list of other stacks is believed; a SYN always looks again
 * (a server that started a moment ago is on it then). */
#define PEERS_TTL UST_MS(1000)
/* Datagrams taken from one connection per wake-up. */
#define LOOP_BATCH 64

static struct {
	int lfd;                  /* our listener; -1: none */
	ev_io lw;
	dev_t dev;                /* the ports file's identity, in every name */
	ino_t ino;
	unsigned slot;            /* our owner slot */
	struct { int fd; ev_io w; } in[LOOP_PEERS];    /* accepted; fd -1: free */
	struct { int fd; unsigned slot; } out[LOOP_PEERS]; /* ours, to others */
	unsigned nout;
	unsigned peers[LOOP_PEERS]; /* the other stacks' owner slots */
	unsigned npeers;
	ust_time scanned;         /* when peers was filled; 0: never */
} lp = { .lfd = -1 };

static socklen_t loop_name(struct sockaddr_un *sun, unsigned slot)
{
	int n;

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	n = snprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1, "ustcp-loop-%llx-%llx-%u",
		     (unsigned long long)lp.dev, (unsigned long long)lp.ino, slot);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static void in_close(unsigned i)
{
	ev_io_stop(us_st.ev, &lp.in[i].w);
	REAL(close)(lp.in[i].fd);
	lp.in[i].fd = -1;
}

static void on_in(struct ev_loop *ev, ev_io *w, int revents)
{
	static uint8_t buf[65536];
	unsigned i = (unsigned)(uintptr_t)w->data;
	ust_time now = ust_now();

	for (unsigned n = 0; n < LOOP_BATCH; n++) {
		ssize_t len = REAL(recv)(lp.in[i].fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (len < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (len <= 0) { /* the other stack is gone */
			in_close(i);
			break;
		}
		us_st.st.ctr.event[UST_EV_LOOPED_IN]++;
		ust_stack_input_looped(&us_st.st, buf, (size_t)len, now);
	}
	ust_loop_kick(&us_st.loop, now);
}

static void on_accept(struct ev_loop *ev, ev_io *w, int revents)
{
	for (;;) {
		struct ucred cr;
		socklen_t crlen = sizeof(cr);
		unsigned i;
		int fd = REAL(accept4)(lp.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		for (i = 0; i < LOOP_PEERS && lp.in[i].fd >= 0; i++)
			;
		if (REAL(getsockopt)(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0 ||
		    !us_uid_trusted(cr.uid, geteuid())) {
			us_st.st.ctr.event[UST_EV_CTL_REFUSED]++;
			REAL(close)(fd);
			continue;
		}
		if (i == LOOP_PEERS || (fd = us_fd_fixed(fd)) < 0) {
			us_st.st.ctr.drop[UST_DROP_LOOPED_UNSENT]++;
			if (fd >= 0)
				REAL(close)(fd);
			continue;
		}
		lp.in[i].fd = fd;
		ev_io_init(&lp.in[i].w, on_in, fd, EV_READ);
		lp.in[i].w.data = (void *)(uintptr_t)i;
		ev_set_priority(&lp.in[i].w, UST_LOOP_PRI_FRAMES); /* as the link's (loop.c) */
		ev_io_start(us_st.ev, &lp.in[i].w);
	}
}

/* Our connection to the stack in owner slot `slot`, made on first use: its
 * fd, or -1 (gone, or no room). */
static int out_fd(unsigned slot)
{
	struct sockaddr_un sun;
	socklen_t len;
	int fd;

	for (unsigned i = 0; i < lp.nout; i++)
		if (lp.out[i].slot == slot)
			return lp.out[i].fd;
	if (lp.nout == LOOP_PEERS)
		return -1;
	fd = REAL(socket)(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	len = loop_name(&sun, slot);
	if (REAL(connect)(fd, (struct sockaddr *)&sun, len) < 0 || (fd = us_fd_high(fd)) < 0) {
		if (fd >= 0)
			REAL(close)(fd);
		return -1;
	}
	lp.out[lp.nout].fd = fd;
	lp.out[lp.nout].slot = slot;
	lp.nout++;
	return fd;
}

static void out_close(unsigned i)
{
	REAL(close)(lp.out[i].fd);
	lp.out[i] = lp.out[--lp.nout];
}

/* Whether a datagram carries a TCP SYN (a new connection: the list of
 * stacks is looked at again for it). */
static bool is_syn(const uint8_t *d, size_t len)
{
	size_t off;

	if (len >= UST_IPV6_HLEN && d[0] >> 4 == 6) {
		uint8_t next;

		/* Past a socket's sticky extension headers. */
		off = ust_ip6_upper(d, len, &next);
		if (next != UST_IPPROTO_TCP)
			off = 0;
	} else
		off = len >= UST_IPV4_HLEN && d[9] == UST_IPPROTO_TCP ? (size_t)(d[0] & 0x0f) * 4 : 0;
	return off && len >= off + 14 && (d[off + 13] & UST_TH_SYN);
}

/* The engine's loop_away: a datagram of ours that another stack on the
 * address must take. */
static void away(void *ctx, const uint8_t *dgram, size_t len)
{
	ust_time now = ust_now();

	if (!lp.scanned || now - lp.scanned > PEERS_TTL || is_syn(dgram, len)) {
		lp.npeers = us_share_owners(lp.peers, LOOP_PEERS);
		lp.scanned = now;
		/* Connections to stacks no longer there go. */
		for (unsigned i = 0; i < lp.nout;) {
			bool live = false;
			for (unsigned j = 0; j < lp.npeers; j++)
				live |= lp.peers[j] == lp.out[i].slot;
			if (live)
				i++;
			else
				out_close(i);
		}
	}
	if (!lp.npeers) /* the stack that held the port is gone */
		us_st.st.ctr.drop[UST_DROP_LOOPED_UNSENT]++;
	for (unsigned j = 0; j < lp.npeers; j++) {
		int fd = out_fd(lp.peers[j]);

		if (fd < 0 || REAL(send)(fd, dgram, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			/* Its queue is full (TCP sends it again), or it is
			 * gone (its connection goes at the next look). */
			us_st.st.ctr.drop[UST_DROP_LOOPED_UNSENT]++;
			continue;
		}
		us_st.st.ctr.event[UST_EV_LOOPED_OUT]++;
	}
}

void us_looped_open(void)
{
	struct sockaddr_un sun;
	struct stat sb;
	socklen_t len;
	int fd;

	for (unsigned i = 0; i < LOOP_PEERS; i++)
		lp.in[i].fd = -1;
	if (!us_share_owner() || fstat(us_share_fd(), &sb) < 0)
		return; /* no other stack can be told apart: this process's own loop alone */
	lp.dev = sb.st_dev;
	lp.ino = sb.st_ino;
	lp.slot = us_share_owner_word() >> UST_OWNER_SHIFT;
	fd = REAL(socket)(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	len = loop_name(&sun, lp.slot);
	if (REAL(bind)(fd, (struct sockaddr *)&sun, len) < 0 || REAL(listen)(fd, LOOP_PEERS) < 0 ||
	    (fd = us_fd_fixed(fd)) < 0) {
		ust_log(UST_LOG_WARN, "no connections between this process and others on its address: %s",
			strerror(errno));
		if (fd >= 0)
			REAL(close)(fd);
		return;
	}
	lp.lfd = fd;
	ev_io_init(&lp.lw, on_accept, fd, EV_READ);
	ev_io_start(us_st.ev, &lp.lw);
	us_st.st.loop_away = away;
}

void us_looped_each_fd(void (*fn)(void *ctx, int fd), void *ctx)
{
	fn(ctx, lp.lfd);
	if (lp.lfd >= 0)
		for (unsigned i = 0; i < LOOP_PEERS; i++)
			fn(ctx, lp.in[i].fd);
	for (unsigned i = 0; i < lp.nout; i++)
		fn(ctx, lp.out[i].fd);
}

void us_looped_forget(void)
{
	if (lp.lfd >= 0) {
		REAL(close)(lp.lfd);
		for (unsigned i = 0; i < LOOP_PEERS; i++)
			if (lp.in[i].fd >= 0)
				REAL(close)(lp.in[i].fd);
	}
	for (unsigned i = 0; i < lp.nout; i++)
		REAL(close)(lp.out[i].fd);
	memset(&lp, 0, sizeof(lp));
	lp.lfd = -1;
}
