/* The stack-thread side of each call a program thread makes (shim/socket.c,
 * connect.c, sockopt.c…), run inside us_call(): a new socket and its pair,
 * bind, connect, listen, options, status. */
#include <errno.h>
#include <sched.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <linux/sockios.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stack_impl.h"

static struct us_conn *call_conn(struct us_call *c)
{
	struct us_conn *k = us_conn_of(c->st, c->sock);

	if (!k || !k->tcb) {
		c->ret = -EINVAL;
		return NULL;
	}
	return k;
}

void us_op_create(struct us_call *c)
{
	struct us_stack *st = c->st;
	struct us_sock *s = c->sock;
	struct us_conn *k;
	struct stat sb;
	int app, r;

	/* Resources run out as the kernel's do, with its errors, and each
	 * refusal is counted for ustcp-stat -s: no fds (the kernel's EMFILE
	 * or ENFILE), the ceiling or no memory (the engine's ENFILE,
	 * ENOBUFS). The app end is unconnected until connect() or listen()
	 * pairs it (us_relay_pair): it polls OUT|HUP, as Linux's. */
	k = us_conn_new(st, s, -1);
	if (!k) {
		st->st.ctr.event[UST_EV_TCP_NO_MEMORY]++;
		c->ret = -ENOBUFS;
		return;
	}
	r = us_new_app_end(k, &app, &sb);
	if (r < 0) {
		us_conn_free(k, false);
		st->st.ctr.event[UST_EV_SOCK_NO_FD]++;
		c->ret = r;
		return;
	}
	k->tcb = ust_tcp_create(&st->tcp, k, &r);
	if (!k->tcb) {
		us_conn_free(k, false);
		REAL(close)(app);
		c->ret = r;
		return;
	}
	s->owner = st->pid;
	s->app_dev = sb.st_dev;
	s->app_ino = sb.st_ino;
	s->app_fd = c->u.create.app_fd; /* the number it will have, or -1: the caller sets it */
	atomic_store(&s->family, c->u.create.family == AF_INET6 ? AF_INET6 : AF_INET);
	atomic_store(&s->v6only, c->u.create.v6only);
	if (c->u.create.family == AF_INET6)
		ust_tcp_set_family(k->tcb, true, c->u.create.v6only);
	us_publish(k);
	c->ret = app;
}

/* A socket the stack could not adopt (the ceiling reached since socket()
 * looked, no memory) is dead from the start: SO_ERROR reports why, calls
 * that need TCP fail with EINVAL as on a socket whose connection is gone,
 * and the program's close frees the slot (us_sock_detach). */
static void adopt_failed(struct us_sock *s, int err)
{
	atomic_store(&s->hard_err, -err);
	atomic_store(&s->pending_err, -err);
	if (us_sock_detach(s))
		us_sock_free(s);
}

/* The stack thread takes s: a relay with no stack end yet, its spares, a
 * control block, as us_op_create makes them. 0 or -errno (counted for
 * ustcp-stat -s), its spares closed. */
static int adopt(struct us_stack *st, struct us_sock *s)
{
	struct us_conn *k = us_conn_new(st, s, -1);
	int r;

	if (!k) {
		us_spare_use(&s->new_spare_end);
		us_spare_use(&s->new_spare_port);
		st->st.ctr.event[UST_EV_TCP_NO_MEMORY]++;
		return -ENOBUFS;
	}
	k->spare_end = s->new_spare_end;
	k->spare_port = s->new_spare_port;
	k->tcb = ust_tcp_create(&st->tcp, k, &r);
	if (!k->tcb) {
		us_conn_free(k, false); /* and the spares */
		return r;
	}
	if (atomic_load(&s->family) == AF_INET6)
		ust_tcp_set_family(k->tcb, true, atomic_load(&s->v6only));
	us_publish(k);
	return 0;
}

void us_adopt_news(struct us_stack *st)
{
	struct us_sock *list = atomic_exchange(&st->news, NULL), *rev = NULL;
	unsigned n = 0;

	if (!list)
		return;
	/* A stack, like the calls: reversed to adopt in creation order. */
	while (list) {
		struct us_sock *next = list->new_next;
		list->new_next = rev;
		rev = list;
		list = next;
		n++;
	}
	while (rev) {
		struct us_sock *s = rev;
		int r;
		rev = rev->new_next;
		r = adopt(st, s);
		if (r < 0)
			adopt_failed(s, r);
	}
	atomic_fetch_sub(&st->news_waiting, n);
	atomic_store_explicit(&st->nconns_seen, ust_tcp_socket_count(&st->tcp), memory_order_relaxed);
}

void us_op_accept_retry(struct us_call *c)
{
	struct us_conn *k = us_conn_of(c->st, c->sock);

	c->ret = k ? us_listener_deliver(k) : 0;
}

/* ::, or 0.0.0.0 (mapped) */
static bool addr_is_any(const struct ust_ip6 *a)
{
	return ust_ip6_is_unspecified(a) || (ust_ip6_is_v4mapped(a) && ust_ip6_to_v4(a) == 0);
}

/* Can a socket be bound to a: any address, our IPv4 one, or one of our
 * IPv6 ones through DAD (Linux refuses a tentative one, EADDRNOTAVAIL)? */
static bool bindable(const struct us_stack *st, const struct ust_ip6 *a)
{
	if (addr_is_any(a))
		return true;
	if (ust_ip6_is_v4mapped(a))
		return ust_ip6_to_v4(a) == st->cfg->addr;
	return ust_ip6_is_ours(&st->st, a);
}

void us_op_bind(struct us_call *c)
{
	struct us_stack *st = c->st;
	struct us_conn *k = call_conn(c);

	if (!k)
		return;
	if (!bindable(st, &c->u.in.addr)) {
		c->ret = -EADDRNOTAVAIL;
		return;
	}
	ust_tcp_set_reuseport(k->tcb, atomic_load(&c->sock->reuseport) != 0);
	/* The address first: which port space the bind is in depends on it
	 * (a dual-stack socket bound to an IPv6 address takes no IPv4). A
	 * socket bound already keeps its own (the bind fails, EINVAL). */
	if (ust_tcp_local_port(k->tcb) == 0 && !addr_is_any(&c->u.in.addr))
		ust_tcp_set_local(k->tcb, &c->u.in.addr);
	if (c->u.in.noport && c->u.in.port == 0 && ust_tcp_local_port(k->tcb) == 0) {
		/* IP_BIND_ADDRESS_NO_PORT: the address now, a port when
		 * connect() knows the peer (Linux's inet_bind): none is
		 * reserved meanwhile, getsockname reads port 0. */
		k->bound_addr = !addr_is_any(&c->u.in.addr);
		us_sock_set_end(c->sock, false, &c->u.in.addr, 0);
		c->ret = 0;
		return;
	}
	us_spare_use(&k->spare_port);
	us_ports_range(us_sock_port_range(c->sock));
	c->ret = ust_tcp_bind(k->tcb, c->u.in.port, atomic_load(&c->sock->reuseaddr) != 0);
	us_ports_range(0);
	if (c->ret == 0) {
		k->bound_addr = !addr_is_any(&c->u.in.addr);
		us_sock_set_end(c->sock, false, &c->u.in.addr, ust_tcp_local_port(k->tcb));
	} else if (!k->bound_addr && ust_tcp_local_port(k->tcb) == 0) {
		ust_tcp_set_local(k->tcb, NULL);
	}
}

void us_op_connect(struct us_call *c)
{
	struct us_conn *k = call_conn(c);
	uint16_t bound;

	if (!k)
		return;
	/* No IPv6 source yet (DAD): nothing is done, the shim asks again
	 * (connect.c, connect_after_dad). */
	if (!ust_ip6_is_v4mapped(&c->u.in.addr) && !ust_ip6_source(&c->st->st, &c->u.in.addr)) {
		c->ret = -EADDRNOTAVAIL;
		return;
	}
	/* The app end is paired as the call ends (us_relay_connect_look):
	 * without filler when the look found the connection synchronized,
	 * else with filler, so that it polls 0 until synchronized, as Linux's
	 * in SYN-SENT (another thread may poll a blocking connect's socket).
	 * A failed one is then renewed (shim/connect.c). */
	us_spare_use(&k->spare_port);
	/* A port picked now is shared with another process's bind() only if
	 * both have SO_REUSEADDR, as Linux's. */
	ust_tcp_set_reuseaddr(k->tcb, atomic_load(&c->sock->reuseaddr) != 0);
	bound = ust_tcp_local_port(k->tcb);
	us_ports_range(us_sock_port_range(c->sock));
	c->ret = ust_tcp_connect_to(k->tcb, &c->u.in.addr, c->u.in.port, ust_now());
	us_ports_range(0);
	if (c->ret == 0)
		atomic_fetch_or(&c->sock->flags, US_F_CONNECTING);
	/* From a bound port: perhaps another stack's TIME-WAIT's (with
	 * SO_REUSEADDR), which must let go, or a 4-tuple another stack
	 * ended moments ago and keeps a tombstone of, which must not take
	 * our segments for its late ones (us_port_foreign): a bound port
	 * has no word in the ports file that would tell it. */
	if (c->ret == 0 && bound)
		us_port_tuple_claim(bound, &c->u.in.addr, c->u.in.port);
	us_publish(k);
	us_mark_dirty(k);
	if (c->ret == 0)
		c->ret = us_relay_connect_look(k);
}

void us_op_listen(struct us_call *c)
{
	struct us_conn *k = call_conn(c);
	uint16_t lport;

	if (!k)
		return;
	lport = ust_tcp_local_port(k->tcb);
	if (lport && ust_tcp_get_state(k->tcb) == UST_TCP_CLOSED &&
	    (!us_port_listen(lport, ust_tcp_port_families(k->tcb)) || !us_port_group_join(k->st, lport))) {
		c->ret = -EADDRINUSE; /* another process listens there */
		return;
	}
	c->ret = us_relay_pair(k, true);
	if (c->ret < 0)
		return;
	us_spare_use(&k->spare_port);
	us_ports_range(us_sock_port_range(c->sock));
	c->ret = ust_tcp_listen(k->tcb, (unsigned)(c->u.opt.val < 0 ? 0 : c->u.opt.val));
	us_ports_range(0);
	if (c->ret == 0)
		us_port_listen(ust_tcp_local_port(k->tcb), ust_tcp_port_families(k->tcb)); /* an ephemeral one: fresh, free */
	us_port_group_update(k->st, ust_tcp_local_port(k->tcb));
	if (c->ret == 0) {
		unsigned backlog = ust_tcp_backlog(k->tcb); /* clamped like somaxconn */
		void *out = realloc(k->out, sizeof(*k->out) * (backlog + 1));
		if (!out) {
			c->ret = -ENOMEM;
			return;
		}
		k->out = out;
		k->backlog = backlog;
		k->listener = true;
		if (!k->bound_addr)
			us_lo_listen(k, ust_tcp_local_port(k->tcb), backlog);
		atomic_store(&c->sock->kind, US_LISTENER);
		us_publish(k);
		us_mark_dirty(k);
	}
}

/* IP_OPTIONS, or the four sticky IPv6 headers, as the slot keeps them
 * (shim/sockopt.c), for the engine to send. */
static long ip_ext_sync(struct us_conn *k, const struct us_sock *s, bool v4)
{
	struct us_ip_opts *o = us_sock_ipopts(s);
	const uint8_t *hdr[UST_IP6_EXT_HDRS];
	unsigned len[UST_IP6_EXT_HDRS];

	if (v4)
		return ust_tcp_set_ip_opts(k->tcb, o->ip_opts, atomic_load(&o->ip_opts_len));
	for (unsigned i = 0; i < UST_IP6_EXT_HDRS; i++) {
		hdr[i] = o->hdr[i];
		len[i] = atomic_load(&o->hdr_len[i]);
		if (len[i] > US_IP6_HDR_MAX)
			return -EINVAL; /* never written so: the slot is not what the shim made */
	}
	return ust_tcp_set_ip6_ext(k->tcb, hdr, len);
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
	if (c->u.opt.level == IPPROTO_IPV6 && c->u.opt.name == IPV6_V6ONLY) {
		/* Before bind (the shim checked): the listener or connection
		 * takes IPv4 or not. */
		ust_tcp_set_family(k->tcb, true, c->u.opt.val != 0);
		c->ret = 0;
		return;
	}
	if (c->u.opt.level == US_OPT_RELAY && (c->u.opt.name == IP_OPTIONS || c->u.opt.name == IPV6_HOPOPTS)) {
		c->ret = ip_ext_sync(k, c->sock, c->u.opt.name == IP_OPTIONS);
		us_mark_dirty(k);
		return;
	}
	if (c->u.opt.level == US_OPT_RELAY && c->u.opt.name == TCP_NOTSENT_LOWAT) {
		us_relay_notsent_lowat(k);
		c->ret = 0;
		return;
	}
	if (c->u.opt.level == SOL_SOCKET && c->u.opt.name == SO_MAX_PACING_RATE) {
		ust_tcp_set_max_pacing_rate(k->tcb, c->u.opt.wide);
		us_mark_dirty(k);
		c->ret = 0;
		return;
	}
	if (c->u.opt.level == SOL_SOCKET && c->u.opt.name == SO_RCVLOWAT) {
		/* The relay holds bytes back from the pair (relay.c,
		 * below_rcvlowat); the app end's own mark, set by the shim,
		 * makes a blocking read wait the same. */
		k->rcvlowat = c->u.opt.val = ust_tcp_set_rcvlowat(k->tcb, c->u.opt.val);
		us_mark_dirty(k);
		c->ret = 0;
		return;
	}
	if (c->u.opt.name == UST_TCP_OPT_CORK || c->u.opt.name == UST_TCP_OPT_MORE) {
		/* What the program wrote before the call is TCP's before the
		 * cork changes, as in Linux's send queue: only later bytes
		 * wait for the uncork, or are pushed by it. */
		us_relay_pull(k);
		if (!(k = call_conn(c))) {
			c->ret = 0;
			return;
		}
	}
	c->ret = ust_tcp_setopt(k->tcb, (enum ust_tcp_opt)c->u.opt.name, c->u.opt.val);
	/* A listener's kernel listeners on loopback take what acts on the
	 * handshake now (nginx sets TCP_DEFER_ACCEPT after listen()); the
	 * rest its connections take as they are handed over. */
	if (c->ret == 0 && k->listener)
		us_lo_options(k);
	us_mark_dirty(k);
}

/* MSG_OOB (shim/io.c): the program's bytes, all written by now, end with
 * the urgent byte. What is still in the pair after taking in what fits
 * (SIOCINQ on the stack end) comes before the mark too. */
void us_op_urgent(struct us_call *c)
{
	struct us_conn *k = call_conn(c);
	int inq = 0;

	if (!k)
		return;
	us_relay_pull(k);
	if (!(k = call_conn(c)))
		return;
	if (ioctl(k->sfd, SIOCINQ, &inq) < 0 || inq < 0)
		inq = 0;
	ust_tcp_send_urgent(k->tcb, (uint32_t)inq, ust_now());
	us_mark_dirty(k);
	c->ret = 0;
}

/* shutdown(SHUT_RD) on a listener: Linux stops listening (queued
 * connections are reset, new SYNs refused) and wakes accept() with EINVAL;
 * the program's side shuts its end of the listener's pair for the wake-up. */
void us_op_unlisten(struct us_call *c)
{
	struct us_conn *k = call_conn(c);

	if (!k)
		return;
	if (k->listener && ust_tcp_get_state(k->tcb) == UST_TCP_LISTEN) {
		uint16_t lport = ust_tcp_local_port(k->tcb);
		ust_tcp_set_user(k->tcb, NULL);
		ust_tcp_close(k->tcb, ust_now());
		k->tcb = NULL;
		us_port_unlisten(lport);
		us_port_group_update(k->st, lport);
		us_lo_close(k);
	}
	c->ret = 0;
}

/* shutdown() on a connecting socket disconnects it, whatever how says (the
 * engine's ust_tcp_shutdown, C49); the relay runs at once, so that the
 * program's next call finds the socket CLOSED with its error, as Linux's.
 * Otherwise only SHUT_RD comes here (SHUT_WR is the app end's EOF): TCP
 * notes it (data in FIN-WAIT is then answered with RST, C9) and the relay
 * stops passing what arrives, which stays readable (us_op_read_held). */
void us_op_shutdown(struct us_call *c)
{
	struct us_conn *k = us_conn_of(c->st, c->sock);

	if (!k || !k->tcb) {
		c->ret = -ENOTCONN;
		return;
	}
	if (ust_tcp_get_state(k->tcb) == UST_TCP_SYN_SENT) {
		c->ret = ust_tcp_shutdown(k->tcb, c->u.shut.how, ust_now());
		us_mark_dirty(k);
		us_relay_after(&c->st->loop, ust_now());
		return;
	}
	k->rd_shut = true;
	c->ret = ust_tcp_shutdown(k->tcb, SHUT_RD, ust_now());
}

/* A blocking connect returns before the handshake ended (EINTR, or
 * SO_SNDTIMEO's EINPROGRESS): the program polls the socket from now on, so
 * it must poll 0 until connected. */
/* Steering by port: the first connect() takes a lease of client ports,
 * whose claim us_steer_settle then waits for (ports.c). */
void us_op_steer_lease(struct us_call *c)
{
	us_ports_steer_fill(c->st);
	c->ret = 0;
}

/* Before the program's SHUT_WR: the pair is emptied and then left alone,
 * so that the shim's sentinel byte is the last one in it (relay.c,
 * us_relay_hold_last). -EAGAIN when the relay cannot hold it (not
 * connected yet, closed, or the pair could not be emptied). */
void us_op_hold_last(struct us_call *c)
{
	struct us_conn *k = us_conn_of(c->st, c->sock);

	if (k && k->tcb && !k->listener && k->sfd >= 0 && !k->app_eof && !k->dead && !k->filler)
		us_relay_hold_last(k);
	k = us_conn_of(c->st, c->sock);
	c->ret = k && k->hold_last ? 0 : -EAGAIN;
}

/* After the program's SHUT_WR (its end of the pair is shut already): what
 * it wrote leaves the pair at once, into TCP's ring or the relay's tail,
 * so that the app end polls writable as Linux's socket does after SHUT_WR,
 * whatever is still queued (relay.c, us_relay_take_tail). */
void us_op_take_tail(struct us_call *c)
{
	struct us_conn *k = us_conn_of(c->st, c->sock);

	if (k && k->tcb && !k->listener)
		us_relay_take_tail(k, c->u.shut.sentinel);
	else if (k)
		k->hold_last = false;
	c->ret = 0;
}

/* What arrived after the program's SHUT_RD: the app end reads 0 (its
 * receiving side is shut, so the pair cannot carry it), and the shim's
 * read then takes it from TCP's ring here, as Linux's read returns what
 * was queued after SHUT_RD (C7). */
void us_op_read_held(struct us_call *c)
{
	struct us_conn *k = us_conn_of(c->st, c->sock);
	struct us_held_read *h = c->u.out;
	struct iovec span[2];
	unsigned n, i;
	size_t done = 0, off = 0;

	c->ret = 0;
	if (!k || !k->tcb || !k->rd_shut)
		return;
	n = ust_tcp_rcv_spans(k->tcb, span);
	for (i = 0; i < h->m->msg_iovlen; i++) {
		struct iovec *to = &h->m->msg_iov[i];
		size_t at = 0;
		while (at < to->iov_len && off < n) {
			size_t left = span[off].iov_len, take;
			take = to->iov_len - at < left ? to->iov_len - at : left;
			memcpy((char *)to->iov_base + at, span[off].iov_base, take);
			at += take;
			done += take;
			span[off].iov_base = (char *)span[off].iov_base + take;
			span[off].iov_len -= take;
			if (!span[off].iov_len)
				off++;
		}
	}
	if (done && !(h->flags & MSG_PEEK)) {
		ust_tcp_rcv_consumed(k->tcb, (uint32_t)done, ust_now());
		us_mark_dirty(k); /* the window opens; the FIN passes once all is read */
	}
	c->ret = (long)done;
}

void us_op_getopt(struct us_call *c)
{
	struct us_conn *k = call_conn(c);
	int v = 0;

	if (!k) {
		/* TCP closed the connection: what the socket keeps of it. */
		const struct us_last *l = us_sock_last(c->sock);
		if (!(atomic_load(&c->sock->flags) & US_F_LAST_STATUS))
			return;
		switch (c->u.opt.name) {
		case UST_TCP_OPT_IPV6_RCV_HOPS: c->u.opt.val = l->rcv_hops; break;
		case UST_TCP_OPT_IPV6_RCV_FLOWINFO: c->u.opt.val = l->rcv_flowinfo; break;
		case UST_TCP_OPT_IPV6_RCV_KEPT: c->u.opt.val = l->rcv_kept; break;
		case UST_TCP_OPT_IPV6_KEPT_FLOWINFO: c->u.opt.val = l->kept_flowinfo; break;
		default: return;
		}
		c->ret = 0;
		return;
	}
	c->ret = ust_tcp_getopt(k->tcb, (enum ust_tcp_opt)c->u.opt.name, &v);
	c->u.opt.val = v;
	if (c->u.opt.name == UST_TCP_OPT_IPV6_RCV_KEPT)
		us_kept_net_to_slot(c->sock, k->tcb);
}

void us_kept_net_to_slot(struct us_sock *s, const struct ust_tcb *t)
{
	const uint8_t *net;
	unsigned n = ust_tcp_kept_net(t, &net);
	struct us_ip_opts *o;

	if (!n && !atomic_load(&s->ipopts_dirty))
		return; /* nothing to say, to a slot that says nothing */
	o = us_sock_ipopts_w(s);
	if (n)
		memcpy(o->rx_kept, net, n);
	atomic_store(&o->rx_kept_len, (uint16_t)n);
}

/* The status TCP had when it closed the connection, its "ago" times still
 * growing (as Linux's TCP_INFO keeps a closed socket's counters). */
void us_status_from_last(const struct us_sock *s, struct ust_tcp_status *out, ust_time now)
{
	const struct us_last *l = us_sock_last(s);
	ust_time since;

	*out = l->st;
	since = now - l->at;
	out->since_data_sent += since;
	out->since_data_recv += since;
	out->since_ack_recv += since;
}

/* The connection's status; once TCP closed it, the status it had then. */
void us_op_status(struct us_call *c)
{
	struct us_conn *k = us_conn_of(c->st, c->sock);
	struct ust_tcp_status *out = c->u.out;
	ust_time now = ust_now();

	if (k && k->tcb) {
		ust_tcp_status_at(k->tcb, out, now);
		if (k->listener)
			out->acceptq += us_relay_outstanding(k);
		c->ret = 0;
		return;
	}
	if (!(atomic_load(&c->sock->flags) & US_F_LAST_STATUS)) {
		c->ret = -EINVAL;
		return;
	}
	us_status_from_last(c->sock, out, now);
	c->ret = 0;
}

void us_slot_status_write(struct us_sock *s, const struct ust_tcp_status *st)
{
	struct us_last *l = us_sock_last(s);

	atomic_fetch_add_explicit(&l->seq, 1, memory_order_relaxed);
	/* The odd count seen before any of the copy's stores. */
	atomic_thread_fence(memory_order_release);
	l->st = *st;
	atomic_fetch_add_explicit(&l->seq, 1, memory_order_release);
}

/* How long a reader waits on a write that does not end: its writer, the
 * owner's stack, was killed in the middle of it (the OOM killer takes the
 * guardian too). A live writer's copy takes well under a microsecond. */
#define STATUS_WRITER_GONE_US 100000

/* A slot's status as the seqlock's reader (us_status, in a process other
 * than the writer's): a copy no write overlapped or, when the count stays
 * odd past STATUS_WRITER_GONE_US, the copy as it is (some fields of the
 * dead writer's last status, others of the one before: numbers, no
 * pointers) rather than a getsockopt that never returns. */
void us_last_read(struct us_last *l, struct ust_tcp_status *out)
{
	uint32_t before, stuck = 0, odd = 0;
	ust_time since = 0;

	for (;;) {
		before = atomic_load(&l->seq);
		if (before & 1) {
			if (before != stuck) { /* a new write: its own wait */
				stuck = before;
				odd = 0;
				since = 0;
			}
			/* Yield now and then; look at the clock seldom. */
			if (++odd % 64 == 0) {
				ust_time now = ust_now();

				if (!since)
					since = now;
				else if (now - since > STATUS_WRITER_GONE_US) {
					*out = l->st;
					return;
				}
				sched_yield();
			}
			continue;
		}
		*out = l->st;
		/* The copy's loads before the check's (a plain copy may
		 * otherwise be done after it where loads reorder, as on arm64). */
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&l->seq, memory_order_relaxed) == before)
			return;
	}
}

/* For a process whose stack does not serve the socket: the live status
 * goes into the slot both map (u.opt.val 1), the final one is there
 * already (0); us_status reads it. */
void us_op_status_to_slot(struct us_call *c)
{
	struct us_conn *k = us_conn_of(c->st, c->sock);
	struct ust_tcp_status st;

	c->u.opt.val = 0;
	c->ret = 0;
	if (k && k->tcb) {
		ust_tcp_status_at(k->tcb, &st, ust_now());
		us_slot_status_write(c->sock, &st);
		c->u.opt.val = 1;
	} else if (!(atomic_load(&c->sock->flags) & US_F_LAST_STATUS)) {
		c->ret = -EINVAL;
	}
}

/* What a socket TCP let go of keeps for TCP_CONGESTION and TCP_CC_INFO
 * (conn_died), or NULL: none was connected (a listener, a socket never
 * used), whose answers are the default algorithm's. */
static struct us_last *let_go(const struct us_call *c)
{
	return atomic_load(&c->sock->flags) & US_F_LAST_STATUS ? us_sock_last(c->sock) : NULL;
}

/* TCP_CONGESTION. A socket TCP let go of takes any name an algorithm has
 * and keeps it, as Linux's closed socket does, its model zeroed when the
 * name changes (tcp_reinit_congestion_control). */
void us_op_set_cc(struct us_call *c)
{
	struct us_conn *k = us_conn_of(c->st, c->sock);
	struct us_last *l;

	if (k && k->tcb) {
		c->ret = ust_tcp_set_cc(k->tcb, c->u.cc);
		return;
	}
	if (!ust_tcp_cc_exists(c->u.cc)) {
		c->ret = -ENOENT;
		return;
	}
	if ((l = let_go(c)) != NULL && strcmp(l->cc, c->u.cc) != 0) {
		snprintf(l->cc, sizeof(l->cc), "%s", c->u.cc);
		l->ccinfo_len = (uint32_t)ust_tcp_cc_info_unstarted(l->cc, l->ccinfo);
	}
	c->ret = 0;
}

/* The keys a socket TCP let go of keeps (NULL: none). */
static struct us_md5_kept *md5_kept(struct us_stack *st, const struct us_sock *s)
{
	struct us_md5_kept *e;

	for (e = st->md5_kept; e && (e->sock != s || e->gen != atomic_load(&s->gen)); e = e->next)
		;
	return e;
}

void us_md5_keep(struct us_stack *st, struct us_sock *s, struct tcp_md5 *keys)
{
	struct us_md5_kept *e;

	if (!keys)
		return;
	if (!(e = malloc(sizeof(*e)))) {
		ust_tcp_md5_list_free(keys);
		return;
	}
	*e = (struct us_md5_kept){ .next = st->md5_kept, .sock = s, .gen = atomic_load(&s->gen), .keys = keys };
	st->md5_kept = e;
}

void us_md5_kept_sweep(struct us_stack *st)
{
	for (struct us_md5_kept **p = &st->md5_kept, *e; (e = *p) != NULL;) {
		if (e->gen == atomic_load(&e->sock->gen) && e->keys) {
			p = &e->next;
			continue;
		}
		*p = e->next;
		ust_tcp_md5_list_free(e->keys);
		free(e);
	}
}

/* TCP_MD5SIG: the connection or listener keeps the key, and a listener's
 * kernel listeners on loopback take it too. A socket TCP let go of keeps
 * it in md5_kept, as Linux's closed socket keeps its keys. */
void us_op_md5(struct us_call *c)
{
	struct us_conn *k = us_conn_of(c->st, c->sock);
	struct us_md5_kept *e;

	if (k && k->tcb) {
		c->ret = ust_tcp_md5_set(k->tcb, &c->u.md5.key);
		if (c->ret == 0 && k->listener)
			us_lo_md5(k, &c->u.md5.key);
		return;
	}
	/* Let go of: the socket keeps what it is told, as Linux's. */
	if (!(e = md5_kept(c->st, c->sock))) {
		struct tcp_md5 *keys = NULL;
		c->ret = ust_tcp_md5_list_set(&keys, &c->u.md5.key);
		us_md5_keep(c->st, c->sock, keys);
		return;
	}
	c->ret = ust_tcp_md5_list_set(&e->keys, &c->u.md5.key);
}

void us_op_md5_key(struct us_call *c)
{
	struct us_conn *k = us_conn_of(c->st, c->sock);
	const struct ust_tcp_md5_key *keys = NULL;
	struct us_md5_kept *e;
	unsigned n = 0;

	if (k && k->tcb)
		keys = ust_tcp_md5_keys(k->tcb, &n);
	else if ((e = md5_kept(c->st, c->sock)) != NULL)
		keys = ust_tcp_md5_list(e->keys, &n);
	if (c->u.md5.at >= n) {
		c->ret = -ENOENT;
		return;
	}
	c->u.md5.key = keys[c->u.md5.at];
	c->ret = 0;
}

void us_op_get_cc(struct us_call *c)
{
	struct us_conn *k = us_conn_of(c->st, c->sock);
	struct us_last *l = let_go(c);
	const char *name = k && k->tcb ? ust_tcp_cc_name(k->tcb) : l ? l->cc : ust_tcp_cc_default_name(&c->st->tcp);

	/* NUL-padded as Linux's tcp_congestion_ops.name, all 16 copied. */
	memset(c->u.cc, 0, sizeof(c->u.cc));
	snprintf(c->u.cc, sizeof(c->u.cc), "%s", name);
	c->ret = 0;
}

void us_op_cc_info(struct us_call *c)
{
	struct us_conn *k = us_conn_of(c->st, c->sock);
	struct us_last *l;

	if (k && k->tcb) {
		c->u.ccinfo.len = (uint32_t)ust_tcp_cc_info(k->tcb, c->u.ccinfo.v);
	} else if ((l = let_go(c)) != NULL) {
		c->u.ccinfo.len = l->ccinfo_len;
		memcpy(c->u.ccinfo.v, l->ccinfo, sizeof(l->ccinfo));
	} else {
		c->u.ccinfo.len = (uint32_t)ust_tcp_cc_info_unstarted(ust_tcp_cc_default_name(&c->st->tcp),
								      c->u.ccinfo.v);
	}
	c->ret = 0;
}

/* TCP_TIMESTAMP: the connection's clock, or once TCP let go the clock
 * with the offset the connection had; a socket never connected has none. */
void us_op_ts_clock(struct us_call *c)
{
	struct us_conn *k = us_conn_of(c->st, c->sock);
	struct us_last *l;
	ust_time now = ust_now();

	if (k && k->tcb)
		c->u.opt.val = (int)ust_tcp_ts_clock(k->tcb, now);
	else
		c->u.opt.val = (int)((uint32_t)(now / 1000) + ((l = let_go(c)) ? l->ts_offset : 0));
	c->ret = 0;
}

/* Asked by the process that takes over a socket this stack holds but never
 * paired (an exec'd image, shim/connect.c us_renew): the port it is bound
 * to must be free before that process binds it again in its own stack. */
void us_op_hand_on(struct us_call *c)
{
	struct us_conn *k = us_conn_of(c->st, c->sock);

	if (!k || k->sfd >= 0 || k->listener) {
		c->ret = -EBUSY;
		return;
	}
	us_conn_hand_on(k);
	c->ret = 0;
}
