/* TIME-WAITs kept compact (issue 13). A connection in TIME-WAIT that the
 * program let go of needs only what TIME-WAIT reads, which is what a
 * hand-over to another stack carries (struct ust_tcp_tw, tcp_tw.c), not a
 * whole control block: at each run of the timers such blocks become
 * records, in tables of their own (by 4-tuple, by local port, and a heap
 * of their deadlines), as Linux keeps an inet_timewait_sock in place of
 * the socket. A record becomes a block again whenever one is needed: a
 * lookup of its 4-tuple (a segment, an ICMP error, a connect() or an
 * adoption of that 4-tuple: tcp_lookup) and its deadline
 * (ust_tcp_timers). So the engine's TIME-WAIT code keeps one shape, the
 * block's, and the block goes back to a record at the next sweep if it is
 * still in TIME-WAIT. The bind rules read a port's records where they are
 * (tcp_twrec_port_conflict): a server's TIME-WAITs are all on its port. */
#include <stdlib.h>
#include <string.h>

#include "tcp_impl.h"

#define TWREC_HASH_MIN 256u

/* The tables, made at the first record: 65536 port heads are 512 KiB of
 * address space, touched where ports are used, as tcp->ports. */
static bool tables(struct ust_tcp *tcp)
{
	if (tcp->twhash)
		return true;
	tcp->twhash = calloc(TWREC_HASH_MIN, sizeof(*tcp->twhash));
	tcp->twports = calloc(UST_TCP_PORTS, sizeof(*tcp->twports));
	tcp->twheap = calloc(TWREC_HASH_MIN, sizeof(*tcp->twheap));
	if (!tcp->twhash || !tcp->twports || !tcp->twheap) {
		free(tcp->twhash);
		free(tcp->twports);
		free(tcp->twheap);
		tcp->twhash = tcp->twports = tcp->twheap = NULL;
		return false;
	}
	tcp->twhash_size = tcp->twheap_cap = TWREC_HASH_MIN;
	return true;
}

static struct tcp_twrec **bucket_of(struct ust_tcp *tcp, const struct ust_ip6 *raddr, uint16_t lport, uint16_t rport)
{
	return &tcp->twhash[tcp_tuple_hash(raddr, lport, rport) & (tcp->twhash_size - 1)];
}

static void link_in(struct tcp_twrec *r, struct tcp_twrec **head, bool port)
{
	struct tcp_twrec **next = port ? &r->pnext : &r->hnext;

	*next = *head;
	if (*head)
		*(port ? &(*head)->pprev : &(*head)->hprev) = next;
	*(port ? &r->pprev : &r->hprev) = head;
	*head = r;
}

static void link_out(struct tcp_twrec *r, bool port)
{
	struct tcp_twrec *next = port ? r->pnext : r->hnext, **prev = port ? r->pprev : r->hprev;

	*prev = next;
	if (next)
		*(port ? &next->pprev : &next->hprev) = prev;
}

/* The table doubles once it holds more records than buckets, as the
 * blocks' does; if the bigger one cannot be had, chains get longer. */
static void grow(struct ust_tcp *tcp)
{
	unsigned old_size = tcp->twhash_size, size = old_size * 2;
	struct tcp_twrec **old = tcp->twhash, **hash;

	if (tcp->ntwrec <= old_size || size == 0 || !(hash = calloc(size, sizeof(*hash))))
		return;
	tcp->twhash = hash;
	tcp->twhash_size = size;
	for (unsigned i = 0; i < old_size; i++) {
		while (old[i]) {
			struct tcp_twrec *r = old[i];
			old[i] = r->hnext;
			link_in(r, bucket_of(tcp, &r->tw.raddr, r->tw.lport, r->tw.rport), false);
		}
	}
	free(old);
}

/* ---- the heap of deadlines (a hole moved up or down, then filled) ---- */

static void heap_put(struct ust_tcp *tcp, unsigned i, struct tcp_twrec *r)
{
	tcp->twheap[i] = r;
	r->heap_idx = i;
}

static void sift(struct ust_tcp *tcp, unsigned i)
{
	struct tcp_twrec *r = tcp->twheap[i];
	ust_time due = r->tw.deadline;

	while (i > 0 && tcp->twheap[(i - 1) / 2]->tw.deadline > due) {
		heap_put(tcp, i, tcp->twheap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	for (;;) {
		unsigned c = 2 * i + 1;
		if (c >= tcp->ntwrec)
			break;
		if (c + 1 < tcp->ntwrec && tcp->twheap[c + 1]->tw.deadline < tcp->twheap[c]->tw.deadline)
			c++;
		if (tcp->twheap[c]->tw.deadline >= due)
			break;
		heap_put(tcp, i, tcp->twheap[c]);
		i = c;
	}
	heap_put(tcp, i, r);
}

static bool heap_room(struct ust_tcp *tcp)
{
	unsigned cap = tcp->twheap_cap * 2;
	struct tcp_twrec **heap;

	if (tcp->ntwrec < tcp->twheap_cap)
		return true;
	if (cap <= tcp->twheap_cap || !(heap = realloc(tcp->twheap, cap * sizeof(*heap))))
		return false;
	tcp->twheap = heap;
	tcp->twheap_cap = cap;
	return true;
}

/* ---- records in and out ---- */

static void insert(struct ust_tcp *tcp, struct tcp_twrec *r)
{
	tcp->ntwrec++;
	grow(tcp);
	link_in(r, bucket_of(tcp, &r->tw.raddr, r->tw.lport, r->tw.rport), false);
	link_in(r, &tcp->twports[r->tw.lport], true);
	heap_put(tcp, tcp->ntwrec - 1, r);
	sift(tcp, tcp->ntwrec - 1);
}

/* Takes r out of the tables; the caller frees it. */
static void remove_rec(struct ust_tcp *tcp, struct tcp_twrec *r)
{
	unsigned i = r->heap_idx;

	link_out(r, false);
	link_out(r, true);
	tcp->ntwrec--;
	tcp->ntw--;
	if (i != tcp->ntwrec) {
		heap_put(tcp, i, tcp->twheap[tcp->ntwrec]);
		sift(tcp, i);
	}
}

/* A block that may become a record: TIME-WAIT, let go of, on no
 * listener's queues, nothing in flight and no ACK owed, its 2 MSL still to
 * run (one that ends now ends as a block). */
static bool compactable(const struct ust_tcb *t, ust_time now)
{
	return t->state == UST_TCP_TIME_WAIT && t->released && !t->listener && !t->packets_out && !t->ack_now &&
	       !t->ack_sched && t->timer[UST_TT_TIMEWAIT] != UST_TIME_NEVER && t->timer[UST_TT_TIMEWAIT] > now;
}

static void compact(struct ust_tcb *t)
{
	struct ust_tcp *tcp = t->tcp;
	struct tcp_twrec *r;

	/* Without memory for the record the block stays: only larger. */
	if (!tables(tcp) || !heap_room(tcp) || !(r = malloc(sizeof(*r))))
		return;
	if (ust_tcp_tw_export(t, &r->tw) < 0) {
		free(r);
		return;
	}
	r->tag = t->tag;
	r->last_challenge = t->last_challenge;
	insert(tcp, r);
	/* The record holds its port's claim and counts in ntw now. */
	tcp_tcb_discard(t);
}

/* The block of record r, which goes; NULL without memory for one (the
 * record stays). */
static struct ust_tcb *hydrate(struct ust_tcp *tcp, struct tcp_twrec *r)
{
	struct ust_tcb *t = tcp_tw_block(tcp, &r->tw, tcp->now);

	if (!t)
		return NULL;
	t->tag = r->tag;
	t->last_challenge = r->last_challenge;
	remove_rec(tcp, r);
	free(r);
	return t;
}

/* ---- the engine's side ---- */

void tcp_twrec_pending(struct ust_tcb *t)
{
	struct ust_tcp *tcp = t->tcp;

	if (t->tw_pidx)
		return;
	if (tcp->npending == tcp->pending_cap) {
		unsigned cap = tcp->pending_cap ? tcp->pending_cap * 2 : 64;
		struct ust_tcb **p = realloc(tcp->twpending, cap * sizeof(*p));
		if (!p)
			return; /* it stays a block */
		tcp->twpending = p;
		tcp->pending_cap = cap;
	}
	tcp->twpending[tcp->npending++] = t;
	t->tw_pidx = tcp->npending;
}

void tcp_twrec_unpend(struct ust_tcb *t)
{
	if (!t->tw_pidx)
		return;
	t->tcp->twpending[t->tw_pidx - 1] = NULL;
	t->tw_pidx = 0;
}

void tcp_twrec_sweep(struct ust_tcp *tcp)
{
	unsigned n = tcp->npending;

	/* Kept, in place: a released TIME-WAIT not compactable yet (an ACK
	 * still owed, a timer due now), for the next sweep. */
	tcp->npending = 0;
	for (unsigned i = 0; i < n; i++) {
		struct ust_tcb *t = tcp->twpending[i];
		if (!t)
			continue;
		t->tw_pidx = 0;
		if (compactable(t, tcp->now)) {
			compact(t);
		} else if (t->state == UST_TCP_TIME_WAIT && t->released && !t->tw_overflow) {
			tcp->twpending[tcp->npending++] = t;
			t->tw_pidx = tcp->npending;
		}
	}
}

struct ust_tcb *tcp_twrec_find(struct ust_tcp *tcp, const struct ust_ip6 *laddr, uint16_t lport,
			       const struct ust_ip6 *raddr, uint16_t rport)
{
	for (struct tcp_twrec *r = *bucket_of(tcp, raddr, lport, rport); r; r = r->hnext)
		if (r->tw.lport == lport && r->tw.rport == rport && ust_ip6_eq(&r->tw.raddr, raddr) &&
		    ust_ip6_eq(&r->tw.laddr, laddr))
			return hydrate(tcp, r);
	return NULL;
}

bool tcp_twrec_port_used(const struct ust_tcp *tcp, uint16_t lport)
{
	return tcp->ntwrec && lport && tcp->twports[lport];
}

/* A copy of r made into the block *t on the caller's stack: for reading,
 * never for the tables (its state is not counted). */
static void copy_out(struct ust_tcp *tcp, const struct tcp_twrec *r, struct ust_tcb *t)
{
	memset(t, 0, sizeof(*t));
	tcp_tcb_init(tcp, t, NULL);
	tcp_tw_fill(t, &r->tw);
	t->state = UST_TCP_TIME_WAIT;
	t->tag = r->tag;
	t->last_challenge = r->last_challenge;
	t->timer[UST_TT_TIMEWAIT] = t->due = r->tw.deadline;
}

const struct ust_tcb *tcp_twrec_port_conflict(struct ust_tcp *tcp, uint16_t lport, const struct ust_tcb *t,
					      bool unshared)
{
	static struct ust_tcb u; /* the stack thread's alone, as the engine */

	for (const struct tcp_twrec *r = tcp_twrec_port_used(tcp, lport) ? tcp->twports[lport] : NULL; r;
	     r = r->pnext) {
		if (unshared && r->tw.reuseport)
			continue;
		copy_out(tcp, r, &u);
		if (tcp_ports_overlap(&u, t))
			return &u;
	}
	return NULL;
}

void tcp_twrec_due(struct ust_tcp *tcp, ust_time now)
{
	while (tcp->ntwrec && tcp->twheap[0]->tw.deadline <= now) {
		struct tcp_twrec *r = tcp->twheap[0];
		struct ust_tcb t;

		if (hydrate(tcp, r))
			continue;
		/* No memory for the block its end needs: it ends as a copy
		 * on the stack, its close record written as tcp_finish
		 * writes one, rather than be tried again at once for as
		 * long as memory lacks. */
		remove_rec(tcp, r);
		copy_out(tcp, r, &t);
		t.rec.outcome = UST_OUTCOME_ORDERLY;
		t.rec.reason = "";
		t.rec.end = now;
		t.rec.states[t.rec.nstates < UST_TCP_HISTORY_MAX ? t.rec.nstates++ : UST_TCP_HISTORY_MAX - 1] =
			UST_TCP_CLOSED;
		t.state = UST_TCP_CLOSED;
		if (tcp->cfg.closed)
			tcp->cfg.closed(tcp->cfg.ctx, &t);
		if (r->tw.port_claimed && tcp->cfg.port_release)
			tcp->cfg.port_release(tcp->cfg.ctx, r->tw.lport, &r->tw.raddr, r->tw.rport);
		free(r);
	}
}

ust_time tcp_twrec_next(const struct ust_tcp *tcp)
{
	return tcp->ntwrec ? tcp->twheap[0]->tw.deadline : UST_TIME_NEVER;
}

void tcp_twrec_each(struct ust_tcp *tcp, void (*fn)(struct ust_tcb *t, void *arg), void *arg)
{
	struct ust_tcb t;

	for (unsigned i = 0; tcp->ntwrec && i < tcp->twhash_size; i++) {
		for (struct tcp_twrec *r = tcp->twhash[i]; r; r = r->hnext) {
			copy_out(tcp, r, &t);
			fn(&t, arg);
		}
	}
}

void tcp_twrec_destroy(struct ust_tcp *tcp)
{
	while (tcp->ntwrec) {
		struct tcp_twrec *r = tcp->twheap[tcp->ntwrec - 1];
		remove_rec(tcp, r);
		if (r->tw.port_claimed && tcp->cfg.port_release)
			tcp->cfg.port_release(tcp->cfg.ctx, r->tw.lport, &r->tw.raddr, r->tw.rport);
		free(r);
	}
	free(tcp->twhash);
	free(tcp->twports);
	free(tcp->twheap);
	tcp->twhash = tcp->twports = tcp->twheap = NULL;
	tcp->twhash_size = tcp->twheap_cap = 0;
}
