/* Questions a user of the engine asks about a control block, and the few
 * settings it makes outside the user calls: the relay, ustcp-stat, the close
 * log and the exit keeper read the engine through these, never through
 * struct ust_tcb's fields. Nothing here changes TCP's state or sends. */
#include "tcp_impl.h"

enum ust_tcp_state ust_tcp_get_state(const struct ust_tcb *t)
{
	return t->state;
}

void ust_tcp_ends(const struct ust_tcb *t, struct ust_tcp_ends *e)
{
	e->laddr = t->laddr;
	e->lport = t->lport;
	/* No peer yet: the family's any address, 0.0.0.0 for AF_INET. */
	e->raddr = ust_ip6_is_unspecified(&t->raddr) && !t->ipv6 ? ust_ip6_from_v4(0) : t->raddr;
	e->rport = t->rport;
}

uint16_t ust_tcp_local_port(const struct ust_tcb *t)
{
	return t->lport;
}

void *ust_tcp_user(const struct ust_tcb *t)
{
	return t->user;
}

void ust_tcp_set_user(struct ust_tcb *t, void *user)
{
	t->user = user;
}

const struct ust_tcb *ust_tcp_listener_of(const struct ust_tcb *t)
{
	return t->listener;
}

unsigned ust_tcp_half_open(const struct ust_tcb *l)
{
	return l->synq_len;
}

bool ust_tcp_fin_rcvd(const struct ust_tcb *t)
{
	return t->fin_rcvd;
}

uint32_t ust_tcp_rcv_queued(const struct ust_tcb *t)
{
	return t->rcvbuf.len;
}

uint32_t ust_tcp_rcv_capacity(const struct ust_tcb *t)
{
	return t->rcvbuf.cap;
}

bool ust_tcp_sndbuf_locked(const struct ust_tcb *t)
{
	return t->sndbuf_locked;
}

uint32_t ust_tcp_snd_notsent(const struct ust_tcb *t)
{
	uint32_t end = t->snd_buf_seq + t->sndbuf.len;

	return seq_lt(t->snd_nxt, end) ? end - t->snd_nxt : 0;
}

uint32_t ust_tcp_snd_queued(const struct ust_tcb *t)
{
	return t->sndbuf.len;
}

int ust_tcp_hard_error(const struct ust_tcb *t)
{
	return t->hard_error;
}

bool ust_tcp_persisting(const struct ust_tcb *t)
{
	return t->persist;
}

const struct ust_tcp_record *ust_tcp_record(const struct ust_tcb *t)
{
	return &t->rec;
}

uint32_t ust_tcp_ts_clock(const struct ust_tcb *t, ust_time now)
{
	return tcp_ts_now(t, now);
}

bool ust_tcp_finished(const struct ust_tcb *t)
{
	return t->state == UST_TCP_CLOSED && t->rec.nstates;
}

/* ---- listeners ---- */

unsigned ust_tcp_backlog(const struct ust_tcb *l)
{
	return l->backlog;
}

void ust_tcp_set_backlog(struct ust_tcb *l, unsigned backlog)
{
	l->backlog = backlog;
}

unsigned ust_tcp_acceptq_len(const struct ust_tcb *l)
{
	return l->acceptq_len;
}

struct ust_tcb *ust_tcp_accept_peek(const struct ust_tcb *l)
{
	return l->acceptq_head;
}

/* ---- every control block ---- */

unsigned ust_tcp_count(const struct ust_tcp *tcp)
{
	return tcp->nconns + tcp->ntwrec;
}

unsigned ust_tcp_socket_count(const struct ust_tcp *tcp)
{
	return tcp->nconns - (tcp->ntw - tcp->ntwrec);
}

void ust_tcp_each(struct ust_tcp *tcp, void (*fn)(struct ust_tcb *t, void *arg), void *arg)
{
	for (unsigned i = 0; i < tcp->hash_size; i++) {
		for (struct ust_tcb *t = tcp->hash[i], *next; t; t = next) {
			next = t->hnext;
			fn(t, arg);
		}
	}
	tcp_twrec_each(tcp, fn, arg);
}
