/* The scoreboard: a record per segment sent and not yet cumulatively
 * acknowledged, as Linux's retransmission queue keeps an skb per segment
 * with its flags (tcp_skb_cb.sacked) and send time. RFC 6675 calls it the
 * scoreboard; RACK (RFC 8985) needs the send time of every segment;
 * delivery-rate sampling needs the connection's delivery state at each
 * send.
 *
 * The records tile SND.UNA..SND.MAX in sequence order, in one array used
 * from sb_head on: records are appended as segments go out, dropped from
 * the front as the ACK moves, split when a SACK block or an ACK covers
 * part of one. The array is allocated with the first segment and freed
 * when the last record goes, so an idle connection holds none. Its size
 * is bounded by the send buffer (TCP_SB_BYTES_PER_RECORD).
 *
 * The counters Linux keeps from the flags live here, kept in step with
 * every flag change: packets_out (the records), sacked_out, lost_out,
 * retrans_out. */
#include <stdlib.h>
#include <string.h>

#include "tcp_impl.h"

#define SB_MIN 16u

static uint32_t sb_limit(const struct ust_tcb *t)
{
	uint32_t n = t->sndbuf_cap / TCP_SB_BYTES_PER_RECORD + 2;

	return n > SB_MIN ? n : SB_MIN;
}

/* Room for one more record at the end: slide the records to the front
 * when the slack is there, else grow by doubling up to the limit. */
static bool sb_reserve(struct ust_tcb *t)
{
	uint32_t cap;
	struct tcp_sent *sb;

	if (t->sb_head + t->packets_out < t->sb_cap)
		return true;
	if (t->sb_head) {
		memmove(t->sb, t->sb + t->sb_head, t->packets_out * sizeof(*t->sb));
		t->sb_head = 0;
		if (t->packets_out < t->sb_cap)
			return true;
	}
	if (t->sb_cap >= sb_limit(t))
		return false;
	cap = t->sb_cap ? 2 * t->sb_cap : SB_MIN;
	if (cap > sb_limit(t))
		cap = sb_limit(t);
	sb = realloc(t->sb, cap * sizeof(*sb));
	if (!sb)
		return false;
	t->sb = sb;
	t->sb_cap = cap;
	return true;
}

/* The counters one record's flags add to. */
static void count(struct ust_tcb *t, uint8_t flags, int sign)
{
	if ((flags & TCP_SENT_SACKED) && t->sack_ok)
		t->sacked_out += (uint32_t)sign;
	if (flags & TCP_SENT_LOST)
		t->lost_out += (uint32_t)sign;
	if (flags & TCP_SENT_RETRANS)
		t->retrans_out += (uint32_t)sign;
}

struct tcp_sent *tcp_sb_append(struct ust_tcb *t, uint32_t start, uint32_t end)
{
	struct tcp_sent *r;

	if (!sb_reserve(t))
		return NULL;
	r = tcp_sb_at(t, t->packets_out++);
	memset(r, 0, sizeof(*r));
	r->start = start;
	r->end = end;
	return r;
}

void tcp_sb_drop_last(struct ust_tcb *t)
{
	count(t, tcp_sb_at(t, t->packets_out - 1)->flags, -1);
	if (!--t->packets_out)
		tcp_sb_clear(t);
}

uint32_t tcp_sb_find(const struct ust_tcb *t, uint32_t seq)
{
	uint32_t lo = 0, hi = t->packets_out;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct tcp_sent *r = tcp_sb_at(t, mid);
		if (seq_lt(seq, r->start))
			hi = mid;
		else if (seq_geq(seq, r->end))
			lo = mid + 1;
		else
			return mid;
	}
	return t->packets_out;
}

bool tcp_sb_split(struct ust_tcb *t, uint32_t i, uint32_t seq)
{
	struct tcp_sent *r;

	if (!sb_reserve(t))
		return false;
	r = tcp_sb_at(t, i);
	memmove(r + 1, r, (t->packets_out - i) * sizeof(*r));
	t->packets_out++;
	r[0].end = seq;
	r[0].flags &= (uint8_t)~TCP_SENT_FIN;
	r[1].start = seq;
	/* Both halves were sent together: each is a segment now. */
	count(t, r[1].flags, 1);
	return true;
}

void tcp_sb_pop(struct ust_tcb *t)
{
	count(t, tcp_sb_at(t, 0)->flags, -1);
	t->sb_head++;
	t->packets_out--;
	if (!t->packets_out)
		tcp_sb_clear(t);
}

void tcp_sb_clear(struct ust_tcb *t)
{
	free(t->sb);
	t->sb = NULL;
	t->sb_cap = t->sb_head = t->packets_out = 0;
	t->sacked_out = t->lost_out = t->retrans_out = 0;
}

void tcp_sb_set(struct ust_tcb *t, struct tcp_sent *r, uint8_t flags)
{
	uint8_t add = flags & (uint8_t)~r->flags;

	r->flags |= add;
	count(t, add, 1);
}

void tcp_sb_clear_flags(struct ust_tcb *t, struct tcp_sent *r, uint8_t flags)
{
	uint8_t drop = flags & r->flags;

	r->flags &= (uint8_t)~drop;
	count(t, drop, -1);
}

/* A SACKed segment was delivered, not lost. A lost one whose
 * retransmission is in flight is lost again: the retransmission is no
 * longer in flight, and it must go once more. */
void tcp_sb_mark_lost(struct ust_tcb *t, struct tcp_sent *r)
{
	if (r->flags & TCP_SENT_SACKED)
		return;
	if (r->flags & TCP_SENT_LOST) {
		if (!(r->flags & TCP_SENT_RETRANS))
			return;
		tcp_sb_clear_flags(t, r, TCP_SENT_RETRANS);
	} else {
		tcp_sb_set(t, r, TCP_SENT_LOST);
	}
	t->lost++;
	if (t->cc->marked_lost)
		t->cc->marked_lost(t, r, t->tcp->now);
}
