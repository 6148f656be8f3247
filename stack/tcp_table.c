/* Control blocks: allocation, the 4-tuple table, local ports, and the heap
 * that orders their timers. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "tcp_impl.h"

#define EPHEMERAL_LO 32768 /* Linux ip_local_port_range */
#define EPHEMERAL_HI 60999
#define NOT_IN_HEAP UINT32_MAX

/* The remote address folded to 32 bits: an IPv4 one (mapped) gives its
 * own value, as the table hashed it before IPv6, an IPv6 one the xor of
 * its words. */
static inline uint32_t addr_fold(const struct ust_ip6 *a)
{
	return ust_get32(a->b + 12) ^ ust_get32(a->b) ^ ust_get32(a->b + 4) ^ (ust_get32(a->b + 8) ^ 0xffffu);
}

uint32_t tcp_tuple_hash(const struct ust_ip6 *raddr, uint16_t lport, uint16_t rport)
{
	uint32_t h = addr_fold(raddr) * 0x9e3779b1u ^ ((uint32_t)lport << 16 | rport) * 0x85ebca6bu;
	return h ^ (h >> 15);
}

static inline unsigned hash4(const struct ust_tcp *tcp, const struct ust_ip6 *raddr, uint16_t lport, uint16_t rport)
{
	return tcp_tuple_hash(raddr, lport, rport) & (tcp->hash_size - 1);
}

/* Listeners hang in the bucket of raddr ::ffff:0.0.0.0 whatever their
 * family, so that one chain holds every listener on a port. */
static const struct ust_ip6 listen_key = { .b = { [10] = 0xff, [11] = 0xff } };

static struct ust_tcb **bucket(struct ust_tcp *tcp, const struct ust_tcb *t)
{
	const struct ust_ip6 *key = ust_ip6_is_unspecified(&t->raddr) ? &listen_key : &t->raddr;

	return &tcp->hash[hash4(tcp, key, t->lport, t->rport)];
}

void ust_tcp_default_config(struct ust_tcp_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->msl_ms = 30000;
	cfg->fin_timeout_ms = 60000;
	/* Linux 6.18's tcp_rmem and tcp_wmem. */
	cfg->rmem[0] = 4096;
	cfg->rmem[1] = 131072;
	cfg->rmem[2] = 33554432;
	cfg->wmem[0] = 4096;
	cfg->wmem[1] = 16384;
	cfg->wmem[2] = 4194304;
	cfg->max_conns = 0; /* none: the shim and the tests set one */
	cfg->max_tw = UINT_MAX; /* none: the shim sets Linux's */
	cfg->syn_retries = 6;
	cfg->synack_retries = 5;
	cfg->retries2 = 15;
	cfg->txrehash = true;
	cfg->orphan_retries = 8;
	cfg->early_retrans = 3;
	cfg->ecn = 2;
	cfg->syncookies = 1;
	cfg->frto = 2;
	cfg->isn_key[0] = 0x0123456789abcdefull;
	cfg->isn_key[1] = 0xfedcba9876543210ull;
	cfg->cc = &tcp_cc_cubic; /* as Linux's default */
}

int ust_tcp_init(struct ust_tcp *tcp, struct ust_stack *st, const struct ust_tcp_config *cfg)
{
	memset(tcp, 0, sizeof(*tcp));
	tcp->st = st;
	tcp->cfg = *cfg;
	if (!tcp->cfg.cc)
		tcp->cfg.cc = &tcp_cc_cubic;
	/* The port chains cost 512 KiB of address space, touched only
	 * where ports are used; the 4-tuple table and the heap start small
	 * and grow with the connections. */
	tcp->hash_size = UST_TCP_HASH_MIN;
	tcp->hash = calloc(tcp->hash_size, sizeof(*tcp->hash));
	tcp->ports = calloc(UST_TCP_PORTS, sizeof(*tcp->ports));
	tcp->heap_cap = UST_TCP_HASH_MIN;
	tcp->heap = calloc(tcp->heap_cap, sizeof(*tcp->heap));
	if (!tcp->hash || !tcp->ports || !tcp->heap) {
		ust_tcp_destroy(tcp);
		return -ENOMEM;
	}
	tcp->next_ephemeral = (uint16_t)(EPHEMERAL_LO + cfg->isn_key[0] % (EPHEMERAL_HI - EPHEMERAL_LO));
	st->upper.ctx = tcp;
	st->upper.ip_input = ust_tcp_input;
	st->upper.icmp_error = ust_tcp_icmp_error;
	st->upper.unreachable = ust_tcp_unreachable;
	st->upper.ip6_input = ust_tcp_input6;
	st->upper.icmp6_error = ust_tcp_icmp6_error;
	st->upper.unreachable6 = ust_tcp_unreachable6;
	return 0;
}

void tcp_tcb_discard(struct ust_tcb *t)
{
	tcp_hash_remove(t);
	for (unsigned i = 0; i < UST_TT_N; i++)
		tcp_timer_stop(t, (enum ust_tcp_timer)i);
	tcp_twrec_unpend(t);
	ust_ring_free(&t->sndbuf);
	ust_ring_free(&t->rcvbuf);
	ust_seqset_clear(&t->ofo);
	tcp_sb_clear(t);
	free(t->saved_syn);
	tcp_ipext_free(t);
	free(t->kept_net);
	tcp_md5_free(t);
	t->tcp->nconns--;
	free(t);
}

static void tcb_free(struct ust_tcb *t)
{
	struct ust_tcp *tcp = t->tcp;

	if (t->port_claimed && tcp->cfg.port_release)
		tcp->cfg.port_release(tcp->cfg.ctx, t->lport, &t->raddr, t->rport);
	tcb_store_state(t, UST_TCP_CLOSED); /* ust_tcp_destroy frees TIME-WAITs too */
	tcp_tcb_discard(t);
}

void ust_tcp_destroy(struct ust_tcp *tcp)
{
	tcp_twrec_destroy(tcp);
	for (unsigned i = 0; tcp->hash && i < tcp->hash_size; i++) {
		while (tcp->hash[i]) {
			struct ust_tcb *t = tcp->hash[i];
			tcp_hash_remove(t);
			tcb_free(t);
		}
	}
	free(tcp->hash);
	free(tcp->ports);
	free(tcp->heap);
	free(tcp->twpending);
	tcp->hash = tcp->ports = tcp->heap = tcp->twpending = NULL;
	tcp->hash_size = tcp->heap_len = tcp->heap_cap = tcp->npending = tcp->pending_cap = 0;
}

/* ---- the table ---- */

static void chain_insert(struct ust_tcb **head, struct ust_tcb *t)
{
	t->hnext = *head;
	if (*head)
		(*head)->hprev = &t->hnext;
	t->hprev = head;
	*head = t;
}

/* The 4-tuple table doubles once it holds more blocks than buckets, so a
 * lookup reads about one block whatever the count (Linux sizes its
 * established hash once, from memory; we grow instead, so that a process
 * with ten connections does not pay for a hundred thousand). If the
 * bigger table cannot be had, the chains just get longer. */
static void hash_grow(struct ust_tcp *tcp)
{
	unsigned size = tcp->hash_size * 2, old_size = tcp->hash_size;
	struct ust_tcb **old = tcp->hash, **hash;

	if (tcp->nconns <= old_size || size == 0)
		return;
	hash = calloc(size, sizeof(*hash));
	if (!hash)
		return;
	tcp->hash = hash;
	tcp->hash_size = size;
	for (unsigned i = 0; i < old_size; i++) {
		while (old[i]) {
			struct ust_tcb *t = old[i];
			old[i] = t->hnext;
			chain_insert(bucket(tcp, t), t);
		}
	}
	free(old);
}

void tcp_hash_insert(struct ust_tcb *t)
{
	chain_insert(bucket(t->tcp, t), t);
	t->hashed = true;
	/* Linux's bind buckets, one per port: who uses a port is one read. */
	if (t->lport) {
		struct ust_tcb **p = &t->tcp->ports[t->lport];
		t->pnext = *p;
		if (*p)
			(*p)->pprev = &t->pnext;
		t->pprev = p;
		*p = t;
	}
}

void tcp_rehash(struct ust_tcb *t, uint16_t lport, const struct ust_ip6 *raddr, uint16_t rport)
{
	tcp_hash_remove(t);
	t->lport = lport;
	t->raddr = *raddr;
	t->rport = rport;
	tcp_hash_insert(t);
}

void tcp_hash_remove(struct ust_tcb *t)
{
	if (!t->hashed)
		return;
	*t->hprev = t->hnext;
	if (t->hnext)
		t->hnext->hprev = t->hprev;
	t->hnext = NULL;
	t->hprev = NULL;
	if (t->pprev) {
		*t->pprev = t->pnext;
		if (t->pnext)
			t->pnext->pprev = t->pprev;
		t->pnext = NULL;
		t->pprev = NULL;
	}
	t->hashed = false;
}

struct ust_tcb *tcp_lookup(struct ust_tcp *tcp, const struct ust_ip6 *laddr, uint16_t lport,
			   const struct ust_ip6 *raddr, uint16_t rport)
{
	for (struct ust_tcb *t = tcp->hash[hash4(tcp, raddr, lport, rport)]; t; t = t->hnext)
		if (t->lport == lport && t->rport == rport && ust_ip6_eq(&t->raddr, raddr) &&
		    ust_ip6_eq(&t->laddr, laddr) && t->state != UST_TCP_LISTEN && t->state != UST_TCP_CLOSED)
			return t;
	return tcp->ntwrec ? tcp_twrec_find(tcp, laddr, lport, raddr, rport) : NULL;
}

struct ust_tcb *tcp_lookup_listener(struct ust_tcp *tcp, uint16_t lport)
{
	for (struct ust_tcb *t = tcp->hash[hash4(tcp, &listen_key, lport, 0)]; t; t = t->hnext)
		if (t->lport == lport && t->state == UST_TCP_LISTEN)
			return t;
	return NULL;
}

/* Does listener l take a connection to dst? As Linux's compute_score:
 * an AF_INET socket IPv4 only, an AF_INET6 one IPv6 and, unless
 * IPV6_V6ONLY, IPv4 mapped; then any address of the family (::, or
 * 0.0.0.0 mapped) or the one it was bound to. */
static bool listener_takes(const struct ust_tcb *l, const struct ust_ip6 *dst)
{
	bool v4 = ust_ip6_is_v4mapped(dst);

	if (l->state != UST_TCP_LISTEN || (v4 ? l->ipv6 && l->v6only : !l->ipv6))
		return false;
	if (ust_ip6_is_unspecified(&l->laddr))
		return true;
	if (ust_ip6_is_v4mapped(&l->laddr) && ust_ip6_to_v4(&l->laddr) == 0)
		return v4;
	return ust_ip6_eq(&l->laddr, dst);
}

/* The nth (from 0) of our listeners on lport that take dst. */
static struct ust_tcb *nth_listener(struct ust_tcb *head, uint16_t lport, const struct ust_ip6 *dst, unsigned n)
{
	for (struct ust_tcb *t = head; t; t = t->hnext)
		if (t->lport == lport && listener_takes(t, dst) && n-- == 0)
			return t;
	return NULL;
}

struct ust_tcb *tcp_select_listener(struct ust_tcp *tcp, uint16_t lport, const struct ust_ip6 *dst,
				    const struct ust_ip6 *raddr, uint16_t rport, bool syn, int *group)
{
	struct ust_tcb *head = tcp->hash[hash4(tcp, &listen_key, lport, 0)], *t, *first = NULL;
	unsigned n = 0;
	bool shared = false, exact = syn;
	int pick;

	*group = 0;
	for (t = head; t; t = t->hnext) {
		if (t->lport != lport || !listener_takes(t, dst))
			continue;
		if (n++ == 0)
			first = t;
		exact |= t->cookie_sent_at && tcp->now - t->cookie_sent_at <= TCP_SYNCOOKIE_VALID;
	}
	/* Listeners of other processes may be in the group too: the group
	 * as a whole chooses, each stack the same way (issue 14). Which
	 * listener matters only for a SYN, or an ACK that may answer one of
	 * our SYN cookies; any other segment here is left to the group when
	 * it is shared, whoever the hash picks (segment_arrives). */
	if (first && first->reuseport && tcp->cfg.reuseport_pick) {
		pick = tcp->cfg.reuseport_pick(tcp->cfg.ctx, lport, raddr, rport, n, exact, &shared);
		if (shared) {
			*group = pick < 0 ? -1 : 1;
			return pick < 0 ? NULL : nth_listener(head, lport, dst, (unsigned)pick % n);
		}
	}
	if (n <= 1)
		return first;
	/* As Linux's reuseport_select_sock: the flow's hash picks. */
	return nth_listener(head, lport, dst, hash4(tcp, raddr, lport, rport) % n);
}

unsigned tcp_port_group_size(struct ust_tcp *tcp, uint16_t lport)
{
	unsigned n = 0;

	for (const struct ust_tcb *t = tcp->hash[hash4(tcp, &listen_key, lport, 0)]; t; t = t->hnext)
		n += t->lport == lport && t->state == UST_TCP_LISTEN && t->reuseport;
	return n;
}

unsigned ust_tcp_port_families(const struct ust_tcb *t)
{
	if (!t->ipv6 || ust_ip6_is_v4mapped(&t->laddr))
		return UST_TCP_PORT_V4;
	if (t->v6only || !ust_ip6_is_unspecified(&t->laddr))
		return UST_TCP_PORT_V6;
	return UST_TCP_PORT_V4 | UST_TCP_PORT_V6;
}

bool tcp_ports_overlap(const struct ust_tcb *a, const struct ust_tcb *b)
{
	unsigned both = ust_tcp_port_families(a) & ust_tcp_port_families(b);

	if (both & UST_TCP_PORT_V4)
		return true; /* a stack has one IPv4 address */
	/* IPv6: one of them on ::, or both on one address (Linux's
	 * ipv6_rcv_saddr_equal). */
	return both && (ust_ip6_is_unspecified(&a->laddr) || ust_ip6_is_unspecified(&b->laddr) ||
			ust_ip6_eq(&a->laddr, &b->laddr));
}

const struct ust_tcb *tcp_port_conflict(struct ust_tcp *tcp, uint16_t lport, const struct ust_tcb *t,
					bool listeners)
{
	/* The port's first two users answer most binds (tcp_port_in_use);
	 * a walk over the port's blocks only where it is in use, at bind
	 * and listen. */
	if (!tcp_port_in_use(tcp, lport, t))
		return NULL;
	for (const struct ust_tcb *u = tcp_port_users(tcp, lport); u; u = u->pnext)
		if (u != t && (!listeners || u->state == UST_TCP_LISTEN) && tcp_ports_overlap(u, t))
			return u;
	/* A TIME-WAIT kept as a record is no listener. */
	return listeners ? NULL : tcp_twrec_port_conflict(tcp, lport, t, false);
}

bool tcp_port_shareable(struct ust_tcp *tcp, uint16_t lport, const struct ust_tcb *t)
{
	if (!t->reuseport)
		return false;
	/* A walk over the port's blocks, at bind and listen only. */
	for (const struct ust_tcb *u = tcp_port_users(tcp, lport); u; u = u->pnext)
		if (u != t && !u->reuseport && tcp_ports_overlap(u, t))
			return false;
	return !tcp_twrec_port_conflict(tcp, lport, t, true);
}

struct ust_tcb *tcp_port_users(struct ust_tcp *tcp, uint16_t lport)
{
	return lport ? tcp->ports[lport] : NULL;
}

bool tcp_port_in_use(struct ust_tcp *tcp, uint16_t lport, const struct ust_tcb *except)
{
	const struct ust_tcb *t = tcp_port_users(tcp, lport);

	/* At most two reads: the port's first user, or the one after it,
	 * and the port's first record. */
	if (t == except && t)
		t = t->pnext;
	return t != NULL || tcp_twrec_port_used(tcp, lport);
}

int tcp_claim_port(struct ust_tcb *t, uint16_t *port, bool reuse)
{
	struct ust_tcp *tcp = t->tcp;
	int r;

	if (!tcp->cfg.port_claim || t->port_claimed)
		return 0;
	r = tcp->cfg.port_claim(tcp->cfg.ctx, port,
				(reuse ? UST_PORT_REUSEADDR : 0) | (t->reuseport ? UST_PORT_REUSEPORT : 0),
				ust_tcp_port_families(t));
	if (r == 0)
		t->port_claimed = true;
	return r;
}

int tcp_pick_ephemeral(struct ust_tcp *tcp, struct ust_tcb *t)
{
	unsigned range = EPHEMERAL_HI - EPHEMERAL_LO + 1;

	if (tcp->cfg.port_claim) {
		/* The port table is shared: its owner picks. */
		uint16_t p = 0;
		int r = tcp_claim_port(t, &p, t->reuseaddr);
		if (r < 0)
			return r;
		tcp_rehash(t, p, &t->raddr, t->rport);
		return 0;
	}

	for (unsigned i = 0; i < range; i++) {
		uint16_t p = tcp->next_ephemeral;
		tcp->next_ephemeral = p == EPHEMERAL_HI ? EPHEMERAL_LO : (uint16_t)(p + 1);
		if (!tcp_port_in_use(tcp, p, t)) {
			tcp_rehash(t, p, &t->raddr, t->rport);
			return 0;
		}
	}
	return -EADDRNOTAVAIL;
}

/* ---- allocation ---- */

bool tcp_at_ceiling(const struct ust_tcp *tcp)
{
	return tcp->cfg.max_conns && ust_tcp_socket_count(tcp) >= tcp->cfg.max_conns;
}

/* Room in the timer heap for one more block, taken before the block
 * exists: a timer set later never has to allocate (and cannot fail). */
static bool heap_reserve(struct ust_tcp *tcp)
{
	unsigned cap = tcp->heap_cap * 2;
	struct ust_tcb **heap;

	if (tcp->nconns < tcp->heap_cap)
		return true;
	if (cap <= tcp->heap_cap)
		return false;
	heap = realloc(tcp->heap, cap * sizeof(*heap));
	if (!heap)
		return false;
	tcp->heap = heap;
	tcp->heap_cap = cap;
	return true;
}

struct ust_tcb *tcp_tcb_new(struct ust_tcp *tcp, void *user)
{
	if (tcp_at_ceiling(tcp)) {
		tcp_count(tcp, UST_EV_TCP_CONN_CEILING);
		return NULL;
	}
	return tcp_tcb_new_unbounded(tcp, user);
}

struct ust_tcb *tcp_tcb_new_unbounded(struct ust_tcp *tcp, void *user)
{
	struct ust_tcb *t = heap_reserve(tcp) ? calloc(1, sizeof(*t)) : NULL;

	if (!t) {
		tcp_count(tcp, UST_EV_TCP_NO_MEMORY);
		return NULL;
	}
	tcp->nconns++;
	hash_grow(tcp);
	tcp_tcb_init(tcp, t, user);
	/* Every block is in the table from birth (unbound ones under port
	 * 0, which no lookup matches), so the table owns them all. */
	tcp_hash_insert(t);
	return t;
}

void tcp_tcb_init(struct ust_tcp *tcp, struct ust_tcb *t, void *user)
{
	t->tcp = tcp;
	t->user = user;
	t->state = UST_TCP_CLOSED;
	t->laddr = ust_ip6_from_v4(tcp->st->nif.addr);
	t->rcvbuf_cap = tcp->cfg.rmem[1];
	t->sndbuf_cap = tcp->cfg.wmem[1];
	t->rto = TCP_RTO_INIT;
	t->max_pacing_rate = UINT64_MAX;
	t->cc = tcp->cfg.cc;
	t->snd_cwnd = TCP_INIT_CWND;
	t->snd_ssthresh = TCP_INFINITE_SSTHRESH;
	t->snd_cwnd_clamp = UINT32_MAX;
	t->reordering = TCP_REORDERING;
	t->rate_app_limited = true; /* no sample yet: as Linux's tcp_init_sock */
	t->rack.reo_wnd_steps = 1;
	t->keep_idle = TCP_KEEPIDLE;
	t->keep_intvl = TCP_KEEPINTVL;
	t->keep_cnt = TCP_KEEPCNT;
	t->syn_retries = tcp->cfg.syn_retries;
	t->txrehash = tcp->cfg.txrehash;
	t->ip_pmtudisc = UST_PMTUDISC_WANT;
	t->ip6_pmtudisc = UST_PMTUDISC_WANT;
	t->ip6_hops = UST_TCP_HOPS_DEFAULT;
	t->heap_idx = NOT_IN_HEAP;
	t->due = UST_TIME_NEVER;
	for (unsigned i = 0; i < UST_TT_N; i++)
		t->timer[i] = UST_TIME_NEVER;
	t->rec.start = tcp->now;
}

void tcp_maybe_free(struct ust_tcb *t)
{
	if (t->state != UST_TCP_CLOSED || !t->released)
		return;
	if (t->listener)
		tcp_listener_forget(t->listener, t);
	tcb_free(t);
}

/* ---- the timer heap ---- */

static void heap_swap(struct ust_tcp *tcp, unsigned a, unsigned b)
{
	struct ust_tcb *x = tcp->heap[a];

	tcp->heap[a] = tcp->heap[b];
	tcp->heap[b] = x;
	tcp->heap[a]->heap_idx = a;
	tcp->heap[b]->heap_idx = b;
}

static void heap_up(struct ust_tcp *tcp, unsigned i)
{
	while (i > 0 && tcp->heap[(i - 1) / 2]->due > tcp->heap[i]->due) {
		heap_swap(tcp, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(struct ust_tcp *tcp, unsigned i)
{
	for (;;) {
		unsigned l = 2 * i + 1, r = l + 1, m = i;
		if (l < tcp->heap_len && tcp->heap[l]->due < tcp->heap[m]->due)
			m = l;
		if (r < tcp->heap_len && tcp->heap[r]->due < tcp->heap[m]->due)
			m = r;
		if (m == i)
			return;
		heap_swap(tcp, i, m);
		i = m;
	}
}

static void heap_remove(struct ust_tcp *tcp, struct ust_tcb *t)
{
	unsigned i = t->heap_idx;

	t->heap_idx = NOT_IN_HEAP;
	if (i == NOT_IN_HEAP)
		return;
	tcp->heap_len--;
	if (i == tcp->heap_len)
		return;
	tcp->heap[i] = tcp->heap[tcp->heap_len];
	tcp->heap[i]->heap_idx = i;
	heap_up(tcp, i);
	heap_down(tcp, tcp->heap[i]->heap_idx);
}

void tcp_timer_set(struct ust_tcb *t, enum ust_tcp_timer which, ust_time due)
{
	struct ust_tcp *tcp = t->tcp;
	ust_time old = t->due;

	t->timer[which] = due;
	t->due = UST_TIME_NEVER;
	for (unsigned i = 0; i < UST_TT_N; i++)
		t->due = ust_time_min(t->due, t->timer[i]);
	if (t->due == old && (t->heap_idx != NOT_IN_HEAP) == (old != UST_TIME_NEVER))
		return;
	if (t->due == UST_TIME_NEVER) {
		heap_remove(tcp, t);
		return;
	}
	if (t->heap_idx == NOT_IN_HEAP) {
		t->heap_idx = tcp->heap_len;
		tcp->heap[tcp->heap_len++] = t;
		heap_up(tcp, t->heap_idx);
		return;
	}
	heap_up(tcp, t->heap_idx);
	heap_down(tcp, t->heap_idx);
}

ust_time ust_tcp_timers(struct ust_tcp *tcp, ust_time now)
{
	tcp->now = now;
	/* Records whose 2 MSL are over become blocks, which end below. */
	if (tcp->ntwrec)
		tcp_twrec_due(tcp, now);
	while (tcp->heap_len && tcp->heap[0]->due <= now)
		tcp_timer_fire(tcp->heap[0], now);
	if (tcp->npending)
		tcp_twrec_sweep(tcp);
	return ust_time_min(tcp->heap_len ? tcp->heap[0]->due : UST_TIME_NEVER, tcp_twrec_next(tcp));
}
