/* A listener on the wildcard address also takes connections from the
 * machine itself over loopback (issue 14, item 11), as Linux's does.
 *
 * The stack answers only what the link brings: a client on the same host
 * that connects to 127.0.0.1 would be refused (no kernel listener there).
 * So next to the stack's listener the stack thread holds a kernel listener
 * on 127.0.0.1 and the same port, accepts what comes to it, and passes
 * each kernel connection to the program through the listener's own pair,
 * as a token like the stack's connections (US_TOKEN_KERNEL, the accepted
 * kernel socket attached): one accept queue, one readiness, and the
 * program's accept() returns a plain kernel socket, on which every call is
 * the kernel's (it has no slot), exactly as Linux's loopback connection. */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stack_impl.h"

static void on_lo_accept(struct ev_loop *ev, ev_io *w, int revents);

/* After listen() on INADDR_ANY: a kernel listener on 127.0.0.1:port with
 * the program's backlog. None if the kernel will not have it (the port is
 * another loopback server's: Linux's listen would have failed there too,
 * which the stack cannot know; the stack's listener stays). */
void us_lo_listen(struct us_conn *l, uint16_t port, unsigned backlog)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1, fd;

	if (l->lo_fd >= 0 || !port)
		return;
	fd = REAL(socket)(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0)
		return;
	fd = us_fd_high(fd);
	if (fd < 0)
		return;
	REAL(setsockopt)(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* A SO_REUSEPORT group's members each get one, and the kernel
	 * spreads loopback connections over them as Linux would. */
	if (atomic_load(&l->sock->reuseport))
		REAL(setsockopt)(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (REAL(bind)(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || REAL(listen)(fd, (int)backlog) < 0) {
		REAL(close)(fd);
		return;
	}
	l->lo_fd = fd;
	ev_io_init(&l->lo_io, on_lo_accept, fd, EV_READ);
	ev_io_start(l->st->ev, &l->lo_io);
}

void us_lo_close(struct us_conn *l)
{
	if (l->lo_held >= 0)
		REAL(close)(l->lo_held); /* accepted, never handed over: reset */
	l->lo_held = -1;
	if (l->lo_fd < 0)
		return;
	ev_io_stop(l->st->ev, &l->lo_io);
	REAL(close)(l->lo_fd);
	l->lo_fd = -1;
}

/* Hands the held kernel connection over; false while the pair is full. */
static bool hand_over(struct us_conn *l)
{
	struct sockaddr_in peer, local;
	socklen_t plen = sizeof(peer), llen = sizeof(local);
	struct us_token tok = { .magic = US_TOKEN_MAGIC, .idx = US_TOKEN_KERNEL };

	if (getpeername(l->lo_held, (struct sockaddr *)&peer, &plen) == 0 &&
	    getsockname(l->lo_held, (struct sockaddr *)&local, &llen) == 0) {
		tok.raddr = ust_ip6_from_v4(ntohl(peer.sin_addr.s_addr));
		tok.rport = ntohs(peer.sin_port);
		tok.laddr = ust_ip6_from_v4(ntohl(local.sin_addr.s_addr));
		tok.lport = ntohs(local.sin_port);
	}
	if (!us_send_token(l->sfd, l->lo_held, &tok) && (errno == EAGAIN || errno == EWOULDBLOCK))
		return false;
	/* The token holds it now; or the program's end is gone and nobody
	 * will accept it (closed: the client sees a reset, as from a
	 * listener that closed with connections queued). */
	REAL(close)(l->lo_held);
	l->lo_held = -1;
	return true;
}

/* Moves the kernel listener's connections to the program's queue: one
 * held at a time, so that a full pair (a program that does not accept)
 * leaves the rest in the kernel's backlog, which bounds them as Linux's. */
void us_lo_deliver(struct us_conn *l)
{
	if (l->lo_fd < 0)
		return;
	for (;;) {
		if (l->lo_held < 0) {
			int fd = REAL(accept4)(l->lo_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (fd < 0)
				break; /* EAGAIN: none waits */
			l->lo_held = fd;
		}
		if (!hand_over(l)) {
			/* Again once the pair has room (l->wr, then deliver). */
			ev_io_stop(l->st->ev, &l->lo_io);
			ev_io_start(l->st->ev, &l->wr);
			return;
		}
	}
	ev_io_start(l->st->ev, &l->lo_io);
}

static void on_lo_accept(struct ev_loop *ev, ev_io *w, int revents)
{
	us_lo_deliver(ust_container_of(w, struct us_conn, lo_io));
}
