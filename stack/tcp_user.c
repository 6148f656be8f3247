/* The user calls (RFC 9293 §3.9.1), shaped as the BSD socket calls a
 * program makes, with Linux's results. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tcp_impl.h"

struct ust_tcb *ust_tcp_create(struct ust_tcp *tcp, void *user, int *err)
{
	struct ust_tcb *t = tcp_tcb_new(tcp, user);

	/* Linux's socket() gives ENFILE when no socket can be had and
	 * ENOBUFS when the memory for one cannot. */
	*err = t ? 0 : tcp_at_ceiling(tcp) ? -ENFILE : -ENOBUFS;
	if (t)
		t->rcv_mss = tcp_link_mss(t);
	return t;
}

void ust_tcp_set_family(struct ust_tcb *t, bool ipv6, bool v6only)
{
	t->ipv6 = ipv6;
	t->v6only = ipv6 && v6only;
	ust_tcp_set_local(t, NULL);
	t->rcv_mss = tcp_link_mss(t);
}

void ust_tcp_set_local(struct ust_tcb *t, const struct ust_ip6 *laddr)
{
	/* An AF_INET6 socket's any address is ::, an AF_INET one's our
	 * IPv4 address, the only one it can have. */
	if (laddr && !ust_ip6_is_unspecified(laddr))
		t->laddr = *laddr;
	else
		t->laddr = t->ipv6 ? (struct ust_ip6){ { 0 } } : ust_ip6_from_v4(t->tcp->st->nif.addr);
}

void ust_tcp_set_reuseaddr(struct ust_tcb *t, bool on)
{
	t->reuseaddr = on;
}

int ust_tcp_bind(struct ust_tcb *t, uint16_t lport, bool reuseaddr)
{
	struct ust_tcp *tcp = t->tcp;

	if (t->lport || t->state != UST_TCP_CLOSED)
		return -EINVAL;
	t->reuseaddr = reuseaddr;
	/* Port 0: Linux assigns an ephemeral port at bind (inet_csk_get_port),
	 * so getsockname reports it at once; EADDRINUSE when none is free. */
	if (lport == 0)
		return tcp_pick_ephemeral(tcp, t) < 0 ? -EADDRINUSE : 0;
	/* One port space per family: an AF_INET socket and an IPV6_V6ONLY
	 * one share a port, a dual-stack one on :: conflicts with both. */
	if (tcp_port_conflict(tcp, lport, t, false) && !tcp_port_shareable(tcp, lport, t)) {
		/* SO_REUSEADDR lets a socket bind over connections that are
		 * not listening (TIME-WAIT remnants), as in Linux. */
		if (!reuseaddr || tcp_port_conflict(tcp, lport, t, true))
			return -EADDRINUSE;
	}
	if (tcp_claim_port(t, &lport, reuseaddr) < 0)
		return -EADDRINUSE; /* another stack on our address holds it */
	tcp_rehash(t, lport, &(const struct ust_ip6){ { 0 } }, 0);
	return 0;
}

void ust_tcp_set_reuseport(struct ust_tcb *t, bool on)
{
	t->reuseport = on;
}

bool ust_tcp_port_listening(struct ust_tcp *tcp, uint16_t lport)
{
	return tcp_lookup_listener(tcp, lport) != NULL;
}

unsigned ust_tcp_port_group_size(struct ust_tcp *tcp, uint16_t lport)
{
	return tcp_port_group_size(tcp, lport);
}

/* Sequence variables and buffers for a new connection. */
static int tcb_start(struct ust_tcb *t, ust_time now)
{
	struct ust_tcp *tcp = t->tcp;

	/* The family is known now: a TCP_MAXSEG set before stays, within
	 * what the link carries under this family's headers. */
	t->rcv_mss = tcp_announced_mss(t);
	tcp_select_initial_window(t, true);
	/* The rings get their sizes now and their memory with their first
	 * byte (tcp_buf.h). */
	if (!t->sndbuf.cap)
		ust_ring_init(&t->sndbuf, t->sndbuf_cap);
	if (!t->rcvbuf.cap)
		ust_ring_init(&t->rcvbuf, tcp_rcvbuf_ring_size(t));
	t->iss = tcp_isn(tcp, &t->laddr, t->lport, &t->raddr, t->rport, now);
	t->snd_una = t->snd_nxt = t->snd_max = t->iss;
	t->snd_buf_seq = t->iss + 1;
	t->recover = t->iss;
	t->snd_sml = t->iss;
	t->ts_offset = tcp_ts_offset(tcp, &t->laddr, &t->raddr);
	t->mss = t->mss_path = tcp_mss_from(t, t->rcv_mss, true);
	t->rec.start = now;
	return 0;
}

/* A connect from a bound port to a 4-tuple in TIME-WAIT: Linux's
 * tcp_twsk_unique (a bound port: __inet_hash_connect passes no twp, so
 * tcp_tw_reuse does not matter) lets the new connection take over if the
 * old one used timestamps, as RFC 6191 allows: PAWS then tells the two
 * incarnations apart. The new ISN starts beyond the old one's last
 * sequence (snd_nxt + 65535 + 2), the peer's last TSval is carried over,
 * and the TIME-WAIT ends. 0 (and *iss) or -EADDRNOTAVAIL. */
static int take_over_time_wait(struct ust_tcb *tw, uint32_t *iss, uint32_t *ts_recent, ust_time *stamp)
{
	if (tw->state != UST_TCP_TIME_WAIT || !tw->ts_ok || !tw->ts_recent_stamp)
		return -EADDRNOTAVAIL;
	*iss = tw->snd_max + TCP_TW_ISN_GAP;
	if (!*iss)
		*iss = 1;
	*ts_recent = tw->ts_recent;
	*stamp = tw->ts_recent_stamp;
	tcp_finish(tw, UST_OUTCOME_ORDERLY, "");
	return 0;
}

int ust_tcp_connect(struct ust_tcb *t, uint32_t raddr, uint16_t rport, ust_time now)
{
	const struct ust_ip6 a = ust_ip6_from_v4(raddr);

	return ust_tcp_connect_to(t, &a, rport, now);
}

/* The local address a connection to raddr goes from (RFC 6724's source
 * selection for IPv6, our one address for IPv4): 0, or as connect fails
 * on Linux. */
/* Where the connection's datagrams go first, which Linux's connect routes
 * and picks the source for: a source route's first hop (IP_OPTIONS,
 * tcp_v4_connect's nexthop) or a routing header's (fl6_update_dst); else
 * the peer. */
static const struct ust_ip6 *first_hop(const struct ust_tcb *t, const struct ust_ip6 *raddr, struct ust_ip6 *buf)
{
	if (ust_ip6_is_v4mapped(raddr) && t->ip4_opts && t->ip4_opts->srr) {
		*buf = ust_ip6_from_v4(t->ip4_opts->faddr);
		return buf;
	}
	if (!ust_ip6_is_v4mapped(raddr) && t->ip6_ext && t->ip6_ext->final)
		return &t->ip6_ext->hop;
	return raddr;
}

static int pick_local(struct ust_tcb *t, const struct ust_ip6 *raddr, struct ust_ip6 *laddr)
{
	const struct ust_stack *st = t->tcp->st;
	const struct ust_ip6 *src;
	struct ust_ip6 buf;
	const struct ust_ip6 *hop = first_hop(t, raddr, &buf);

	if (ust_ip6_is_v4mapped(raddr)) {
		/* An AF_INET6 v6only socket takes no IPv4 peer (Linux's
		 * tcp_v6_connect: ENETUNREACH for a mapped address then). */
		if (t->v6only)
			return -ENETUNREACH;
		if (!ust_ip_routable(st, ust_ip6_to_v4(hop)))
			return -ENETUNREACH;
		*laddr = ust_ip6_from_v4(st->nif.addr);
		return 0;
	}
	if (!t->ipv6)
		return -EAFNOSUPPORT;
	if (ust_ip6_is_unspecified(raddr) || ust_ip6_is_multicast(raddr))
		return -ENETUNREACH;
	if (!ust_ip6_is_unspecified(&t->laddr)) {
		*laddr = t->laddr; /* bound to one of ours */
		return 0;
	}
	src = ust_ip6_source(st, hop);
	if (!src)
		return -EADDRNOTAVAIL;
	*laddr = *src;
	return 0;
}

int ust_tcp_connect_to(struct ust_tcb *t, const struct ust_ip6 *raddr, uint16_t rport, ust_time now)
{
	struct ust_tcp *tcp = t->tcp;
	uint16_t lport = t->lport;
	struct ust_tcb *tw;
	struct ust_ip6 laddr;
	uint32_t iss = 0, ts_recent = 0;
	ust_time stamp = 0;
	int r;

	switch (t->state) {
	case UST_TCP_CLOSED:
		break;
	case UST_TCP_SYN_SENT:
	case UST_TCP_SYN_RECEIVED:
		return -EALREADY;
	case UST_TCP_LISTEN:
		return -EINVAL;
	default:
		return -EISCONN;
	}
	if (t->rec.nstates)
		return -EISCONN; /* a finished connection is not reused */
	r = pick_local(t, raddr, &laddr);
	if (r)
		return r;
	tcp->now = now;
	if (!lport) {
		r = tcp_pick_ephemeral(tcp, t);
		if (r)
			return r;
		lport = t->lport;
	} else if ((tw = tcp_lookup(tcp, &laddr, lport, raddr, rport)) != NULL) {
		r = take_over_time_wait(tw, &iss, &ts_recent, &stamp);
		if (r)
			return r;
	}
	t->laddr = laddr;
	tcp_rehash(t, lport, raddr, rport);
	r = tcb_start(t, now);
	if (r)
		return r;
	if (iss) {
		t->iss = iss;
		t->snd_una = t->snd_nxt = t->snd_max = t->iss;
		t->snd_buf_seq = t->iss + 1;
		t->recover = t->iss;
		t->snd_sml = t->iss;
		t->ts_recent = ts_recent;
		t->ts_recent_stamp = stamp;
	}
	tcp_count(tcp, UST_EV_TCP_ACTIVE_OPENS);
	tcp_set_state(t, UST_TCP_SYN_SENT);
	t->rtt_start = now;
	tcp_ecn_connect(t);
	tcp_send_syn(t, now);
	return 0;
}

int ust_tcp_listen(struct ust_tcb *t, unsigned backlog)
{
	struct ust_tcp *tcp = t->tcp;

	if (backlog > 4096)
		backlog = 4096; /* Linux's somaxconn */
	if (t->state == UST_TCP_LISTEN) {
		t->backlog = backlog;
		t->synq_max = backlog;
		return 0;
	}
	if (t->state != UST_TCP_CLOSED || t->rec.nstates)
		return -EINVAL;
	if (!t->lport && tcp_pick_ephemeral(tcp, t))
		return -EADDRINUSE;
	if (tcp_port_conflict(tcp, t->lport, t, true) && !tcp_port_shareable(tcp, t->lport, t))
		return -EADDRINUSE;
	t->backlog = backlog;
	t->synq_max = backlog;
	tcp_set_state(t, UST_TCP_LISTEN);
	return 0;
}

void tcp_listener_forget(struct ust_tcb *l, struct ust_tcb *c)
{
	c->listener = NULL;
	/* In the accept queue, or else counted in the SYN queue. */
	for (struct ust_tcb **p = &l->acceptq_head, *prev = NULL; *p; prev = *p, p = &(*p)->qnext) {
		if (*p == c) {
			*p = c->qnext;
			if (l->acceptq_tail == c)
				l->acceptq_tail = prev;
			l->acceptq_len--;
			c->qnext = NULL;
			return;
		}
	}
	if (l->synq_len)
		l->synq_len--;
}

void tcp_listener_accept_ready(struct ust_tcb *l, struct ust_tcb *c)
{
	l->synq_len--;
	c->released = false;
	c->qnext = NULL;
	if (l->acceptq_tail)
		l->acceptq_tail->qnext = c;
	else
		l->acceptq_head = c;
	l->acceptq_tail = c;
	l->acceptq_len++;
	tcp_count(c->tcp, UST_EV_TCP_PASSIVE_OPENS);
	tcp_event(l, UST_TCP_EV_ACCEPT);
}

struct ust_tcb *ust_tcp_accept(struct ust_tcb *l, void *user, int *err)
{
	struct ust_tcb *c;

	if (l->state != UST_TCP_LISTEN) {
		*err = -EINVAL;
		return NULL;
	}
	c = l->acceptq_head;
	if (!c) {
		*err = -EAGAIN;
		return NULL;
	}
	tcp_listener_forget(l, c);
	c->user = user;
	c->released = false;
	*err = 0;
	return c;
}

long ust_tcp_send(struct ust_tcb *t, const void *buf, size_t len, ust_time now)
{
	uint32_t n;

	t->tcp->now = now;
	if (t->so_error)
		return -ust_tcp_take_error(t);
	if (t->fin_queued || t->hard_error)
		return -EPIPE;
	switch (t->state) {
	case UST_TCP_CLOSED:
	case UST_TCP_LISTEN:
		return t->rec.nstates ? -EPIPE : -ENOTCONN;
	case UST_TCP_SYN_SENT:
	case UST_TCP_SYN_RECEIVED:
		return -EAGAIN;
	default:
		break;
	}
	if (len > UINT32_MAX)
		len = UINT32_MAX;
	tcp_rate_check_app_limited(t);
	n = ust_ring_append(&t->sndbuf, buf, (uint32_t)len);
	if (n < len)
		t->stats.snd_nospace = true;
	if (n) {
		tcp_chrono_start(t, TCP_CHRONO_BUSY, now);
		tcp_idle_restart_check(t, now);
		tcp_output(t, now);
	}
	return n;
}

long ust_tcp_receive(struct ust_tcb *t, void *buf, size_t len, ust_time now)
{
	uint32_t n = t->rcvbuf.len;

	t->tcp->now = now;
	if (n) {
		if (n > len)
			n = (uint32_t)len;
		ust_ring_peek(&t->rcvbuf, 0, buf, n);
		ust_ring_consume(&t->rcvbuf, n);
		tcp_rcv_consumed(t, n, now);
		return n;
	}
	/* The order of Linux's tcp_recvmsg: the peer's FIN, then a pending
	 * error, then a local shutdown, then "not connected". */
	if (t->fin_rcvd)
		return 0;
	if (t->so_error)
		return -ust_tcp_take_error(t);
	if (t->rd_shut || t->hard_error)
		return 0;
	if (t->state == UST_TCP_CLOSED || t->state == UST_TCP_LISTEN)
		return -ENOTCONN;
	return -EAGAIN;
}

/* The in-order bytes as up to two spans of the ring, for a zero-copy
 * RECEIVE straight into a socket (the shim's relay). */
unsigned ust_tcp_rcv_spans(const struct ust_tcb *t, struct iovec iov[2])
{
	unsigned n = 0;

	for (uint32_t off = 0; off < t->rcvbuf.len && n < 2; n++) {
		uint32_t len;
		iov[n].iov_base = (void *)ust_ring_span(&t->rcvbuf, off, &len);
		iov[n].iov_len = len;
		off += len;
	}
	return n;
}

void ust_tcp_rcv_consumed(struct ust_tcb *t, uint32_t n, ust_time now)
{
	t->tcp->now = now;
	if (n > t->rcvbuf.len)
		n = t->rcvbuf.len;
	ust_ring_consume(&t->rcvbuf, n);
	tcp_rcv_consumed(t, n, now);
}

uint32_t ust_tcp_snd_room(const struct ust_tcb *t)
{
	if (!UST_TCP_SYNCHRONIZED(t->state) || t->fin_queued || t->hard_error || t->so_error ||
	    UST_TCP_SENT_FIN(t->state))
		return 0;
	return ust_ring_space(&t->sndbuf);
}

/* The send ring's free space as up to two spans, when SEND may queue now
 * (0 spans otherwise: not synchronized, FIN queued, an error, or no memory
 * for the ring, which gets its memory here). */
unsigned ust_tcp_snd_spans(struct ust_tcb *t, struct iovec iov[2])
{
	struct ust_ring *r = &t->sndbuf;
	uint32_t free = ust_tcp_snd_room(t), tail;

	if (!free || ust_ring_back(r))
		return 0;
	/* The memory grows with what the program writes, doubling at most
	 * per call (tcp_buf.h), while bytes pile up in it (more than half
	 * of it held): a pull reads into what there is, and the next call
	 * has more while the program writes faster than the flow drains.
	 * A ring that holds little stays as it is: grown on every call, a
	 * server's ring answering small requests on a flow whose buffer
	 * BBR's cwnd had grown went to 128 KiB (a huge page, 2 MiB zeroed)
	 * at each answer and was shed at the next empty pull: 1021 huge
	 * pages mapped for 2400 answers to eight clients, each answer 1 to
	 * 2 ms instead of 0.3. */
	if (r->len + free > r->size && r->size < r->cap && r->len > r->size / 2) {
		uint64_t want = (uint64_t)r->len + free; /* at most the capacity */
		ust_ring_reserve(r, (uint32_t)(want < 2ull * r->size ? want : 2ull * r->size));
	}
	if (free > r->size - r->len)
		free = r->size - r->len;
	if (!free)
		return 0;
	tail = (r->head + r->len) % r->size;
	iov[0].iov_base = r->mem + tail;
	iov[0].iov_len = r->size - tail < free ? r->size - tail : free;
	if (iov[0].iov_len == free)
		return 1;
	iov[1].iov_base = r->mem;
	iov[1].iov_len = free - iov[0].iov_len;
	return 2;
}

void ust_tcp_snd_commit(struct ust_tcb *t, uint32_t n, ust_time now)
{
	t->tcp->now = now;
	if (n > ust_ring_space(&t->sndbuf))
		n = ust_ring_space(&t->sndbuf);
	if (!n) {
		/* The spans went unused: an empty ring gives its memory back. */
		tcp_ring_shed(t, &t->sndbuf);
		return;
	}
	tcp_rate_check_app_limited(t);
	ust_ring_commit(&t->sndbuf, n);
	if (!ust_ring_space(&t->sndbuf))
		t->stats.snd_nospace = true;
	tcp_chrono_start(t, TCP_CHRONO_BUSY, now);
	tcp_idle_restart_check(t, now);
	tcp_output(t, now);
}

int ust_tcp_take_error(struct ust_tcb *t)
{
	int e = t->so_error;

	t->so_error = 0;
	return e;
}

void ust_tcp_set_linger(struct ust_tcb *t, bool on, unsigned seconds)
{
	t->linger_on = on;
	t->linger_s = seconds;
}

/* SO_SNDBUF: Linux doubles the value (its bookkeeping overhead), keeps at
 * least SOCK_MIN_SNDBUF, and stops growing the buffer by itself. The ring
 * follows where it can (it cannot drop queued bytes). */
static void set_sndbuf(struct ust_tcb *t, int v)
{
	/* Linux: "ensure val * 2 fits into an int" (INT_MAX / 2). */
	if (v > INT_MAX / 2)
		v = INT_MAX / 2;
	t->sndbuf_cap = v < 2304 ? 4608u : (uint32_t)v * 2u;
	t->sndbuf_locked = true;
	if (t->sndbuf.cap && t->sndbuf_cap >= t->sndbuf.len)
		ust_ring_resize(&t->sndbuf, t->sndbuf_cap);
}

/* TCP_DEFER_ACCEPT counts SYN-ACK timeouts, 1 s doubling up to 120 s
 * (Linux's secs_to_retrans and retrans_to_secs): 5 s is 3 (1 + 2 + 4),
 * which reads back as 7. */
static uint8_t secs_to_retrans(int seconds)
{
	int timeout = 1, period = 1, n = 1;

	if (seconds <= 0)
		return 0;
	while (seconds > period && n < 255) {
		n++;
		timeout = timeout * 2 > 120 ? 120 : timeout * 2;
		period += timeout;
	}
	return (uint8_t)n;
}

static int retrans_to_secs(uint8_t n)
{
	int timeout = 1, period = 1;

	if (!n)
		return 0;
	while (--n) {
		timeout = timeout * 2 > 120 ? 120 : timeout * 2;
		period += timeout;
	}
	return period;
}

int ust_tcp_ip_opt_value(enum ust_tcp_opt opt, int v)
{
	switch (opt) {
	case UST_TCP_OPT_IP_TOS:
		/* Linux's __ip_sock_set_tos: a byte, and on a stream socket
		 * the ECN field stays TCP's. */
		return v & 0xff & ~UST_ECN_MASK;
	case UST_TCP_OPT_IP_TTL:
		if (v == -1)
			return 0; /* the default */
		return v >= 1 && v <= 255 ? v : -EINVAL;
	case UST_TCP_OPT_IP_MTU_DISCOVER:
	case UST_TCP_OPT_IPV6_MTU_DISCOVER:
		return v >= UST_PMTUDISC_DONT && v <= UST_PMTUDISC_OMIT ? v : -EINVAL;
	case UST_TCP_OPT_IPV6_TCLASS:
		/* Linux's do_ipv6_setsockopt: -1 is RFC 3542's default, 0;
		 * on a stream socket the ECN field stays TCP's. */
		if (v < -1 || v > 255)
			return -EINVAL;
		return v == -1 ? 0 : v & ~UST_ECN_MASK;
	case UST_TCP_OPT_IPV6_UNICAST_HOPS:
		/* 0 is a hop limit like any other there; -1 the route's. */
		if (v < -1 || v > 255)
			return -EINVAL;
		return v == -1 ? UST_TCP_HOPS_DEFAULT : v;
	default:
		return -ENOPROTOOPT;
	}
}

static int set_ip_opt(struct ust_tcb *t, enum ust_tcp_opt opt, int v)
{
	int kept = ust_tcp_ip_opt_value(opt, v);

	if (kept < 0)
		return kept;
	if ((opt == UST_TCP_OPT_IP_TOS && kept != t->ip_tos) || (opt == UST_TCP_OPT_IPV6_TCLASS && kept != t->ip6_tclass))
		t->route_reset = true;
	switch (opt) {
	case UST_TCP_OPT_IP_TOS: t->ip_tos = (uint8_t)kept; break;
	case UST_TCP_OPT_IP_TTL: t->ip_ttl = (uint8_t)kept; break;
	case UST_TCP_OPT_IPV6_TCLASS: t->ip6_tclass = (uint8_t)kept; break;
	case UST_TCP_OPT_IPV6_UNICAST_HOPS: t->ip6_hops = (uint16_t)kept; break;
	case UST_TCP_OPT_IPV6_MTU_DISCOVER: t->ip6_pmtudisc = (uint8_t)kept; break;
	default: t->ip_pmtudisc = (uint8_t)kept; break;
	}
	return 0;
}

int ust_tcp_setopt(struct ust_tcb *t, enum ust_tcp_opt opt, int v)
{
	switch (opt) {
	case UST_TCP_OPT_NODELAY:
		t->nodelay = v != 0;
		if (t->nodelay)
			tcp_output(t, t->tcp->now);
		return 0;
	case UST_TCP_OPT_KEEPALIVE:
		t->keepalive = v != 0;
		if (t->keepalive && UST_TCP_SYNCHRONIZED(t->state))
			tcp_timer_set(t, UST_TT_KEEPALIVE, t->tcp->now + t->keep_idle);
		return 0;
	case UST_TCP_OPT_KEEPIDLE:
		if (v < 1 || v > 32767)
			return -EINVAL;
		t->keep_idle = UST_SEC(v);
		if (t->keepalive && UST_TCP_SYNCHRONIZED(t->state) && t->state != UST_TCP_TIME_WAIT)
			tcp_timer_set(t, UST_TT_KEEPALIVE, t->last_rcv + t->keep_idle > t->tcp->now
								    ? t->last_rcv + t->keep_idle : t->tcp->now);
		return 0;
	case UST_TCP_OPT_KEEPINTVL:
		if (v < 1 || v > 32767)
			return -EINVAL;
		t->keep_intvl = UST_SEC(v);
		return 0;
	case UST_TCP_OPT_KEEPCNT:
		if (v < 1 || v > 127)
			return -EINVAL;
		t->keep_cnt = (unsigned)v;
		return 0;
	case UST_TCP_OPT_USER_TIMEOUT:
		if (v < 0)
			return -EINVAL;
		t->user_timeout = UST_MS(v);
		return 0;
	case UST_TCP_OPT_LINGER2:
		/* Linux: < 0 resets orphans reaching FIN-WAIT-2; 0 means the
		 * default (tcp_fin_timeout); at most TCP_FIN_TIMEOUT_MAX,
		 * 120 s (measured on 6.18: 121 and 255 read back 120). */
		t->linger2_neg = v < 0;
		t->fin_timeout_ms = v > 0 ? (unsigned)(v < 120 ? v : 120) * 1000u : 0;
		return 0;
	case UST_TCP_OPT_SNDBUF:
		set_sndbuf(t, v);
		return 0;
	case UST_TCP_OPT_RCVBUF:
		/* Doubled, at least SOCK_MIN_RCVBUF. Before the handshake
		 * it decides the window scale and the first window; after,
		 * the largest window follows it: the ring grows for a larger
		 * one, and a smaller one closes in as the reader frees space
		 * (the right edge we advertised stays, so the ring does). */
		if (v > INT_MAX / 2)
			v = INT_MAX / 2; /* as SO_SNDBUF's */
		tcp_rcvbuf_set(t, v < 1152 ? 2304u : (uint32_t)v * 2u);
		return 0;
	case UST_TCP_OPT_MAXSEG:
		/* 0 takes a value set before back (Linux's user_mss 0). */
		/* Linux: TCP_MIN_MSS to MAX_TCP_WINDOW (32767). */
		if (v && (v < 88 || v > 32767))
			return -EINVAL;
		/* The MSS we announce never exceeds what the link carries
		 * (Linux's advmss clamp). */
		if (t->state == UST_TCP_CLOSED || t->state == UST_TCP_LISTEN) {
			unsigned link = tcp_link_mss(t);
			t->user_mss = (uint16_t)v;
			t->rcv_mss = (uint16_t)(v && (unsigned)v < link ? (unsigned)v : link);
		}
		return 0;
	case UST_TCP_OPT_SYNCNT:
		if (v < 1 || v > 127)
			return -EINVAL;
		t->syn_retries = (unsigned)v;
		return 0;
	case UST_TCP_OPT_QUICKACK:
		tcp_set_quickack(t, v, t->tcp->now);
		return 0;
	case UST_TCP_OPT_IP_TOS:
	case UST_TCP_OPT_IP_TTL:
	case UST_TCP_OPT_IP_MTU_DISCOVER:
	case UST_TCP_OPT_IPV6_TCLASS:
	case UST_TCP_OPT_IPV6_UNICAST_HOPS:
	case UST_TCP_OPT_IPV6_MTU_DISCOVER:
		return set_ip_opt(t, opt, v);
	case UST_TCP_OPT_IP_MTU:
		break;
	case UST_TCP_OPT_CORK:
		/* Linux's __tcp_sock_set_cork: uncorking pushes what waits. */
		t->cork = v != 0;
		if (!t->cork)
			tcp_output(t, t->tcp->now);
		return 0;
	case UST_TCP_OPT_MORE:
		t->more = v != 0;
		if (!t->more)
			tcp_output(t, t->tcp->now);
		return 0;
	case UST_TCP_OPT_WINDOW_CLAMP:
		return tcp_set_window_clamp(t, v);
	case UST_TCP_OPT_DEFER_ACCEPT:
		t->defer_accept = secs_to_retrans(v);
		return 0;
	case UST_TCP_OPT_IPV6_FLOWLABEL:
		/* From the next segment on, as Linux's np->autoflowlabel. */
		if (v)
			t->flow_label &= ~UST_TCP_FLOW_OFF;
		else
			t->flow_label |= UST_TCP_FLOW_OFF;
		return 0;
	case UST_TCP_OPT_IPV6_MINHOPCOUNT:
	case UST_TCP_OPT_IP_MINTTL:
		if (v < 0 || v > 255)
			return -EINVAL;
		if (opt == UST_TCP_OPT_IP_MINTTL)
			t->min_ttl = (uint8_t)v;
		else
			t->min_hops = (uint8_t)v;
		return 0;
	case UST_TCP_OPT_IPV6_RXOPT:
		t->rx6opt = (uint8_t)v;
		return 0;
	case UST_TCP_OPT_IPV6_RCV_HOPS:
	case UST_TCP_OPT_IPV6_RCV_FLOWINFO:
	case UST_TCP_OPT_IPV6_RCV_KEPT:
	case UST_TCP_OPT_IPV6_KEPT_FLOWINFO:
		return -ENOPROTOOPT;
	case UST_TCP_OPT_THIN_LINEAR_TIMEOUTS:
		if (v < 0 || v > 1)
			return -EINVAL;
		t->thin_lto = v;
		return 0;
	case UST_TCP_OPT_TXREHASH:
		if (v < -1 || v > 1)
			return -EINVAL;
		t->txrehash = v < 0 ? t->tcp->cfg.txrehash : v;
		return 0;
	case UST_TCP_OPT_SAVE_SYN:
		if (v < 0 || v > 2)
			return -EINVAL;
		t->save_syn = (uint8_t)v;
		return 0;
	}
	return -ENOPROTOOPT;
}

uint8_t ust_tcp_rcv_tos(const struct ust_tcb *t)
{
	return t->rcv_tos;
}

const uint8_t *ust_tcp_saved_syn(const struct ust_tcb *t, unsigned *len)
{
	*len = t->saved_syn_len;
	return t->saved_syn;
}

void ust_tcp_saved_syn_drop(struct ust_tcb *t)
{
	free(t->saved_syn);
	t->saved_syn = NULL;
	t->saved_syn_len = 0;
}

int ust_tcp_getopt(const struct ust_tcb *t, enum ust_tcp_opt opt, int *v)
{
	switch (opt) {
	case UST_TCP_OPT_NODELAY: *v = t->nodelay; return 0;
	case UST_TCP_OPT_KEEPALIVE: *v = t->keepalive; return 0;
	case UST_TCP_OPT_KEEPIDLE: *v = (int)(t->keep_idle / 1000000u); return 0;
	case UST_TCP_OPT_KEEPINTVL: *v = (int)(t->keep_intvl / 1000000u); return 0;
	case UST_TCP_OPT_KEEPCNT: *v = (int)t->keep_cnt; return 0;
	case UST_TCP_OPT_USER_TIMEOUT: *v = (int)(t->user_timeout / 1000u); return 0;
	case UST_TCP_OPT_LINGER2:
		*v = t->linger2_neg ? -1 : (int)((t->fin_timeout_ms ? t->fin_timeout_ms
							      : t->tcp->cfg.fin_timeout_ms) / 1000u);
		return 0;
	case UST_TCP_OPT_SNDBUF: *v = (int)t->sndbuf_cap; return 0;
	case UST_TCP_OPT_RCVBUF: *v = (int)t->rcvbuf_cap; return 0;
	case UST_TCP_OPT_MAXSEG:
		/* Linux's mss_cache, 536 (TCP_MSS_DEFAULT) until connect()
		 * sizes it, or the value set (user_mss) before then. */
		if (t->user_mss && (t->state == UST_TCP_CLOSED || t->state == UST_TCP_LISTEN))
			*v = t->user_mss;
		else if (t->state == UST_TCP_LISTEN || (t->state == UST_TCP_CLOSED && !t->rec.nstates))
			*v = TCP_MSS_DEFAULT;
		else
			*v = UST_TCP_SYNCHRONIZED(t->state) || t->state == UST_TCP_CLOSED ? t->mss : t->rcv_mss;
		return 0;
	case UST_TCP_OPT_SYNCNT: *v = (int)t->syn_retries; return 0;
	/* Linux's do_tcp_getsockopt: "not interactive". */
	case UST_TCP_OPT_QUICKACK: *v = !tcp_in_pingpong_mode(t); return 0;
	case UST_TCP_OPT_IP_TOS: *v = t->ip_tos | t->ip_ecn_sent; return 0;
	case UST_TCP_OPT_IP_TTL: *v = t->ip_ttl ? t->ip_ttl : UST_IP_TTL_DEFAULT; return 0;
	case UST_TCP_OPT_IP_MTU_DISCOVER: *v = t->ip_pmtudisc; return 0;
	/* Linux's np->tclass takes the ECN field as inet->tos does. */
	case UST_TCP_OPT_IPV6_TCLASS: *v = t->ip6_tclass | t->ip_ecn_sent; return 0;
	case UST_TCP_OPT_IPV6_UNICAST_HOPS:
		*v = t->ip6_hops == UST_TCP_HOPS_DEFAULT ? UST_IPV6_HOP_LIMIT_DEFAULT : t->ip6_hops;
		return 0;
	case UST_TCP_OPT_IPV6_MTU_DISCOVER: *v = t->ip6_pmtudisc; return 0;
	case UST_TCP_OPT_CORK: *v = t->cork; return 0;
	case UST_TCP_OPT_MORE: *v = t->more; return 0;
	/* Linux's tp->window_clamp: the user's until the first window. */
	case UST_TCP_OPT_WINDOW_CLAMP:
		*v = (int)(t->rcv_wnd_clamp ? t->rcv_wnd_clamp : t->user_wnd_clamp);
		return 0;
	case UST_TCP_OPT_DEFER_ACCEPT: *v = retrans_to_secs(t->defer_accept); return 0;
	case UST_TCP_OPT_IPV6_FLOWLABEL: *v = !(t->flow_label & UST_TCP_FLOW_OFF); return 0;
	case UST_TCP_OPT_IPV6_MINHOPCOUNT: *v = t->min_hops; return 0;
	case UST_TCP_OPT_IPV6_RXOPT: *v = t->rx6opt; return 0;
	case UST_TCP_OPT_IPV6_RCV_HOPS: *v = t->rcv_hops; return 0;
	case UST_TCP_OPT_IPV6_RCV_FLOWINFO: *v = (int)t->rcv_flowinfo; return 0;
	case UST_TCP_OPT_IPV6_RCV_KEPT: *v = (t->kept ? 0x100 | t->kept_hops : 0) | (t->rcv_oif ? 0x200 : 0); return 0;
	case UST_TCP_OPT_IPV6_KEPT_FLOWINFO: *v = (int)t->kept_flowinfo; return 0;
	case UST_TCP_OPT_IP_MINTTL: *v = t->min_ttl; return 0;
	case UST_TCP_OPT_THIN_LINEAR_TIMEOUTS: *v = t->thin_lto; return 0;
	case UST_TCP_OPT_TXREHASH: *v = t->txrehash; return 0;
	case UST_TCP_OPT_SAVE_SYN: *v = t->save_syn; return 0;
	case UST_TCP_OPT_IP_MTU:
		/* Linux: the route's MTU once connect() chose one, lowered
		 * by packet too big or fragmentation needed (path_mtu_lower). */
		if (t->state == UST_TCP_CLOSED || t->state == UST_TCP_LISTEN || t->route_reset)
			return -ENOTCONN;
		*v = t->pmtu ? t->pmtu : (int)t->tcp->st->nif.mtu;
		return 0;
	}
	return -ENOPROTOOPT;
}

void ust_tcp_status(const struct ust_tcb *t, struct ust_tcp_status *s)
{
	ust_tcp_status_at(t, s, t->tcp->now);
}

void ust_tcp_status_at(const struct ust_tcb *t, struct ust_tcp_status *s, ust_time now)
{
	memset(s, 0, sizeof(*s));
	s->state = t->state;
	s->laddr = t->laddr;
	s->raddr = t->raddr;
	s->lport = t->lport;
	s->rport = t->rport;
	s->rcv_queued = t->rcvbuf.len;
	s->snd_queued = t->sndbuf.len;
	s->snd_space = t->sndbuf.cap - t->sndbuf.len;
	s->srtt = t->srtt;
	s->rttvar = t->rttvar;
	s->rto = t->rto;
	s->cwnd = t->snd_cwnd;
	s->ssthresh = t->snd_ssthresh;
	s->ca_state = t->ca_state;
	s->packets_out = t->packets_out;
	s->sacked_out = t->sacked_out;
	s->lost_out = t->lost_out;
	s->retrans_out = t->retrans_out;
	s->reordering = t->reordering;
	s->reord_seen = t->reord_seen;
	s->dsacks = t->dsacks;
	s->delivered = t->delivered;
	s->min_rtt = tcp_min_rtt(t);
	s->pacing_rate = t->pacing_rate;
	s->cc = t->cc->name;
	s->mss = t->mss;
	s->rcv_mss = t->rcv_mss;
	s->retransmits = t->backoff;
	s->backoff = t->backoff;
	s->total_retrans = t->total_retrans;
	tcp_stats_report(t, s, now);
	s->eof = t->fin_rcvd;
	s->ring_mem = t->rcvbuf.size + t->sndbuf.size;
	/* The earliest of the timers a program could see on Linux: the
	 * rings' shedding is ours alone; compressed SACKs are an hrtimer of
	 * their own there, never shown. */
	s->timer = -1;
	s->timer_due = UST_TIME_NEVER;
	for (unsigned i = 0; i < UST_TT_N; i++)
		if (i != UST_TT_SHED && i != UST_TT_SACK && t->timer[i] != UST_TIME_NEVER && t->timer[i] <= s->timer_due) {
			s->timer_due = t->timer[i];
			s->timer = (int)i;
		}
}
