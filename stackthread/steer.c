/* The stack's side of steering by port (stack/steer.h, docs/architecture.md
 * §6): claims on the channel to the launcher's broker, and their answers.
 *
 * A claim leaves on the stack thread without waiting (the stack thread
 * never blocks); its answer comes back on the channel, which the loop
 * watches. A program thread about to make frames arrive for a port (a
 * connect's SYN, a listen) waits first until every claim sent so far is
 * answered (us_steer_settle): the broker answers only once the group's
 * program steers the ports here. A port claimed on the stack thread itself
 * (one taken alone when the pool had none answered, a listener's or a
 * bind()'s kernel reservation made within a connect) has its frames held
 * until the answer comes (us_steer_output): a SYN that left before would
 * have its SYN-ACK go to another stack, which drops it as another's, and
 * the connect would wait for the peer's retransmission.
 *
 * A port of a SO_REUSEPORT group (one that other processes may join) is
 * claimed as the group's: its frames go to no member of the fanout group,
 * and the answer brings a packet socket that reads that port alone, one
 * per port and family, which the loop watches beside the link's. Every
 * member of the group reads every frame of the port, as stacks without
 * steering do, and each takes the SYNs the flow's hash gives it
 * (ports.c). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "stack_impl.h"

/* Frames held for a claim not yet answered: copies, bounded. */
#define HOLD_FRAMES 64
#define HOLD_PORTS 16

static struct {
	int chan;                     /* -1: not steered */
	ev_io w;
	struct ust_counters *ctr;     /* the stack's */
	struct ust_link *link;
	struct { uint16_t port; uint32_t seq; } holding[HOLD_PORTS];
	unsigned nholding;
	struct { uint8_t *frame; uint32_t len, seq; } held[HOLD_FRAMES];
	unsigned nheld;
	uint32_t sent;                /* the last claim's seq (stack thread) */
	_Atomic uint32_t want;        /* sent, for program threads */
	_Atomic uint32_t done;        /* the last seq answered; a private futex */
	struct ust_loop *loop;        /* the stack's, which reads the group sockets too */
	/* The group ports' sockets (w.fd; port 0: a free slot). */
	struct { ev_io w; uint16_t port; } group[UST_STEER_GROUP_PORTS];
} steer = { .chan = -1 };

bool us_steer_on(void)
{
	return steer.chan >= 0;
}

int us_steer_fd(void)
{
	return steer.chan;
}

bool us_steer_done(uint32_t seq)
{
	return (int32_t)(atomic_load(&steer.done) - seq) >= 0;
}

/* Sends the held frames whose claim was answered (refused too: then
 * they go to whichever stack answers for the address, as unsteered), and
 * forgets the ports whose claims were. */
static void release_held(void)
{
	unsigned k = 0;

	for (unsigned i = 0; i < steer.nheld; i++) {
		struct ust_pkt p = { .data = steer.held[i].frame, .len = steer.held[i].len };
		struct ust_pkt *pp = &p;

		if (!us_steer_done(steer.held[i].seq)) {
			steer.held[k++] = steer.held[i];
			continue;
		}
		ust_link_output(steer.link, &pp, 1);
		free(steer.held[i].frame);
	}
	steer.nheld = k;
	k = 0;
	for (unsigned i = 0; i < steer.nholding; i++)
		if (!us_steer_done(steer.holding[i].seq))
			steer.holding[k++] = steer.holding[i];
	steer.nholding = k;
}

/* The claim of port, seq, is not answered yet: its frames wait. */
void us_steer_hold(uint16_t port, uint32_t seq)
{
	if (!seq)
		return;
	for (unsigned i = 0; i < steer.nholding; i++) {
		if (steer.holding[i].port == port) {
			steer.holding[i].seq = seq;
			return;
		}
	}
	if (steer.nholding < HOLD_PORTS)
		steer.holding[steer.nholding++] = (typeof(steer.holding[0])){ port, seq };
}

/* The claim a frame waits for: a TCP segment from a port held, over IPv4
 * or IPv6 (past a socket's sticky extension headers). 0: none. */
static uint32_t frame_waits(const struct ust_pkt *p)
{
	const uint8_t *ip = p->data + UST_ETH_HLEN;
	unsigned ihl;

	if (p->len < UST_ETH_HLEN + 20)
		return 0;
	if (ust_get16(p->data + 12) == UST_ETHERTYPE_IPV6 && p->len >= UST_ETH_HLEN + 40) {
		uint8_t next;

		ihl = ust_ip6_upper(ip, p->len - UST_ETH_HLEN, &next);
		if (!ihl || next != UST_IPPROTO_TCP)
			return 0;
	} else if (ust_get16(p->data + 12) == UST_ETHERTYPE_IPV4 && ip[9] == 6) {
		ihl = (ip[0] & 0xfu) * 4u;
	} else {
		return 0;
	}
	if (p->len < UST_ETH_HLEN + ihl + 2)
		return 0;
	for (unsigned i = 0; i < steer.nholding; i++)
		if (steer.holding[i].port == ust_get16(ip + ihl) && !us_steer_done(steer.holding[i].seq))
			return steer.holding[i].seq;
	return 0;
}

unsigned us_steer_output(void *ctx, struct ust_pkt *const *pkts, unsigned n)
{
	struct ust_pkt *pass[UST_TXQ_MAX];
	unsigned np = 0, lost = 0;

	if (!steer.nholding)
		return ust_link_output(ctx, pkts, n);
	for (unsigned i = 0; i < n; i++) {
		uint32_t seq = frame_waits(pkts[i]);
		uint8_t *copy;

		if (!seq) {
			pass[np++] = pkts[i];
			continue;
		}
		ust_pkt_csum_finish(pkts[i]);
		copy = steer.nheld < HOLD_FRAMES ? malloc(pkts[i]->len) : NULL;
		if (!copy) {
			lost++; /* TCP sends it again */
			continue;
		}
		memcpy(copy, pkts[i]->data, pkts[i]->len);
		steer.held[steer.nheld++] = (typeof(steer.held[0])){ copy, pkts[i]->len, seq };
	}
	return n - np - lost + (np ? ust_link_output(ctx, pass, np) : 0);
}

/* Frames of a group port: read as the link's are. */
static void on_group(struct ev_loop *ev, ev_io *w, int revents)
{
	ust_time now = ust_now();

	ust_link_rx_fd(steer.link, w->fd, steer.loop->st, now, 8);
	ust_loop_kick(steer.loop, now);
}

/* The socket fd the broker sent for a's group port: watched from now on.
 * The broker sends one per port and family until it is released. */
static void group_adopt(const struct ust_steer_answer *a, int fd)
{
	unsigned i;

	for (i = 0; i < UST_STEER_GROUP_PORTS && steer.group[i].port; i++)
		;
	if (i == UST_STEER_GROUP_PORTS || !a->group_port) {
		REAL(close)(fd);
		fd = -1;
	}
	/* Not to happen (the broker bounds them as we do, and sends one
	 * per port and family); if it did, the port's SYNs would reach the
	 * group's other members alone. */
	if (fd < 0 || ust_link_adopt_extra(steer.link, (fd = us_fd_fixed(fd))) < 0) {
		ust_log(UST_LOG_WARN, "cannot read port %u of a SO_REUSEPORT group on the socket the broker sent",
			a->group_port);
		return;
	}
	steer.ctr->event[UST_EV_STEER_GROUP_SOCKS]++;
	steer.group[i].port = a->group_port;
	ev_io_init(&steer.group[i].w, on_group, fd, EV_READ);
	ev_set_priority(&steer.group[i].w, UST_LOOP_PRI_FRAMES); /* as the link's (loop.c) */
	ev_io_start(steer.loop->ev, &steer.group[i].w);
}

/* Reads one answer, and the socket a group claim's brings: its length
 * (0 at the end of the channel, -1 none waiting). */
static ssize_t answer_read(struct ust_steer_answer *a)
{
	union {
		char b[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { a, sizeof(*a) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b,
			     .msg_controllen = sizeof(cbuf.b) };
	ssize_t n = REAL(recvmsg)(steer.chan, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	for (struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (i == 0 && n == (ssize_t)sizeof(*a) && !a->status)
				group_adopt(a, fd);
			else
				REAL(close)(fd);
		}
	}
	return n;
}

/* The broker's answers, in the order of the claims. A refusal is said
 * once: its ports' frames go to whichever stack answers for the address,
 * which drops them as another's (tcp-foreign). */
static void on_answer(struct ev_loop *ev, ev_io *w, int revents)
{
	struct ust_steer_answer a;
	ssize_t n;

	while ((n = answer_read(&a)) == (ssize_t)sizeof(a)) {
		if (a.status) {
			steer.ctr->event[UST_EV_STEER_REFUSED]++;
			us_ports_refused(a.seq);
			ust_log(UST_LOG_WARN, "the ustcp broker refused to steer ports here (claim %u): %s",
				a.seq, strerror(a.status));
		}
		atomic_store(&steer.done, a.seq);
	}
	if (n == 0) {
		/* The broker is gone: the group keeps its last program. */
		ev_io_stop(ev, w);
		atomic_store(&steer.done, steer.sent);
	}
	release_held();
	syscall(SYS_futex, &steer.done, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static uint32_t steer_send(struct ust_steer_msg *m, int fd);

void us_steer_start(int chan, struct ust_loop *loop, struct ust_counters *ctr, struct ust_link *link)
{
	struct ev_loop *ev = loop->ev;

	steer.chan = chan;
	steer.ctr = ctr;
	steer.link = link;
	steer.loop = loop;
	fcntl(chan, F_SETFL, O_NONBLOCK);
	ev_io_init(&steer.w, on_answer, chan, EV_READ);
	ev_io_start(ev, &steer.w);
}

/* Sends m with fd (-1: none). Returns its seq, 0 if it could not go. */
static uint32_t steer_send(struct ust_steer_msg *m, int fd)
{
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { m, offsetof(struct ust_steer_msg, port) + m->n * sizeof(uint16_t) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (steer.chan < 0)
		return 0;
	m->seq = steer.sent + 1;
	if (!m->seq)
		m->seq = 1;
	if (fd >= 0) {
		struct cmsghdr *c;
		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.b;
		mh.msg_controllen = sizeof(cbuf.b);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	if (REAL(sendmsg)(steer.chan, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		steer.ctr->event[UST_EV_STEER_UNSENT]++;
		return 0;
	}
	if (m->op == UST_STEER_RELEASE)
		return m->seq; /* not answered: the seq is not used up */
	steer.ctr->event[UST_EV_STEER_CLAIMS]++;
	steer.sent = m->seq;
	atomic_store(&steer.want, m->seq);
	return m->seq;
}

uint32_t us_steer_claim_shared(const uint16_t *ports, unsigned n)
{
	struct ust_steer_msg m = { .op = UST_STEER_CLAIM_SHARED, .owner = us_share_owner_word(),
				   .n = n };

	memcpy(m.port, ports, n * sizeof(*ports));
	return steer_send(&m, us_share_fd());
}

uint32_t us_steer_claim_bound(uint16_t port, int fd)
{
	struct ust_steer_msg m = { .op = UST_STEER_CLAIM_BOUND, .n = 1, .port = { port } };

	return steer_send(&m, fd);
}

uint32_t us_steer_claim_group(uint16_t port, int fd)
{
	struct ust_steer_msg m = { .op = UST_STEER_CLAIM_GROUP, .n = 1, .port = { port } };

	return steer_send(&m, fd);
}

void us_steer_release(uint16_t port)
{
	struct ust_steer_msg m = { .op = UST_STEER_RELEASE, .n = 1, .port = { port } };

	steer_send(&m, -1);
	/* A group port's sockets, both families': the broker forgets them
	 * at the release. */
	for (unsigned i = 0; i < UST_STEER_GROUP_PORTS; i++) {
		if (steer.group[i].port != port)
			continue;
		ev_io_stop(steer.loop->ev, &steer.group[i].w);
		ust_link_count_overruns_of(steer.link, steer.group[i].w.fd);
		REAL(close)(steer.group[i].w.fd);
		steer.group[i].port = 0;
	}
}

void us_steer_count_overruns(void)
{
	for (unsigned i = 0; i < UST_STEER_GROUP_PORTS; i++)
		if (steer.group[i].port)
			ust_link_count_overruns_of(steer.link, steer.group[i].w.fd);
}

void us_steer_each_fd(void (*fn)(void *ctx, int fd), void *ctx)
{
	fn(ctx, steer.chan);
	for (unsigned i = 0; i < UST_STEER_GROUP_PORTS; i++)
		if (steer.group[i].port)
			fn(ctx, steer.group[i].w.fd);
}

bool us_steer_needs_lease(void)
{
	return steer.chan >= 0 && !us_ports_steer_primed();
}

void us_steer_settle(void)
{
	uint32_t want = atomic_load(&steer.want), done;
	struct timespec end, now, left;

	if (steer.chan < 0 || us_steer_done(want))
		return;
	/* The broker answers at once; a bound keeps a wedged one from
	 * holding a connect() for ever (its frames would reach the stack
	 * that answers for the address, which drops them as another's). */
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += 1;
	while (!us_steer_done(want)) {
		done = atomic_load(&steer.done);
		if (us_steer_done(want))
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left.tv_sec = end.tv_sec - now.tv_sec;
		left.tv_nsec = end.tv_nsec - now.tv_nsec;
		if (left.tv_nsec < 0) {
			left.tv_sec--;
			left.tv_nsec += 1000000000;
		}
		if (left.tv_sec < 0)
			return;
		syscall(SYS_futex, &steer.done, FUTEX_WAIT_PRIVATE, done, &left, NULL, 0);
	}
}

void us_steer_forget(void)
{
	/* Our copy only: the channel is the parent's (or the keeper's),
	 * whose member it is. */
	if (steer.chan >= 0)
		REAL(close)(steer.chan);
	steer.chan = -1;
	for (unsigned i = 0; i < UST_STEER_GROUP_PORTS; i++) {
		if (steer.group[i].port)
			REAL(close)(steer.group[i].w.fd);
		steer.group[i].port = 0;
	}
	steer.sent = 0;
	/* The held copies are the parent's memory too: its to send. */
	steer.nheld = steer.nholding = 0;
	atomic_store(&steer.want, 0);
	atomic_store(&steer.done, 0);
}
