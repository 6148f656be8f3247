/* State changes, and the record every connection leaves behind. Every
 * change of t->state goes through tcp_set_state; in builds with
 * UST_CHECK_STATES (make SAN=1, the fuzzers) it refuses, loudly, any
 * change the table below does not allow. */
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "tcp_impl.h"

const char *ust_tcp_state_name(enum ust_tcp_state s)
{
	static const char *const names[UST_TCP_NSTATES] = {
		[UST_TCP_CLOSED] = "CLOSED",         [UST_TCP_LISTEN] = "LISTEN",
		[UST_TCP_SYN_SENT] = "SYN-SENT",     [UST_TCP_SYN_RECEIVED] = "SYN-RECV",
		[UST_TCP_ESTABLISHED] = "ESTAB",     [UST_TCP_CLOSE_WAIT] = "CLOSE-WAIT",
		[UST_TCP_FIN_WAIT_1] = "FIN-WAIT-1", [UST_TCP_CLOSING] = "CLOSING",
		[UST_TCP_LAST_ACK] = "LAST-ACK",     [UST_TCP_FIN_WAIT_2] = "FIN-WAIT-2",
		[UST_TCP_TIME_WAIT] = "TIME-WAIT",
	};
	return (unsigned)s < UST_TCP_NSTATES ? names[s] : "?";
}

const char *ust_tcp_outcome_name(enum ust_tcp_outcome o)
{
	static const char *const names[] = {
		[UST_OUTCOME_NONE] = "", [UST_OUTCOME_ORDERLY] = "orderly",
		[UST_OUTCOME_RESET_RECEIVED] = "reset-received", [UST_OUTCOME_RESET_SENT] = "reset-sent",
		[UST_OUTCOME_TIMEOUT] = "timeout", [UST_OUTCOME_REFUSED] = "refused",
		[UST_OUTCOME_UNREACHABLE] = "unreachable",
	};
	return (unsigned)o < UST_ARRAY_SIZE(names) ? names[o] : "?";
}

const char *ust_tcp_initiator_name(enum ust_tcp_initiator i)
{
	switch (i) {
	case UST_INIT_LOCAL: return "local";
	case UST_INIT_REMOTE: return "remote";
	case UST_INIT_SIMULTANEOUS: return "simultaneous";
	default: return NULL;
	}
}

void tcp_event(struct ust_tcb *t, unsigned events)
{
	struct ust_tcp *tcp = t->tcp;

	if (events && tcp->cfg.event)
		tcp->cfg.event(tcp->cfg.ctx, t, events);
}

#define B(s) (1u << UST_TCP_##s)

/* The arrows of RFC 9293's Figure 5, and the ones Linux adds: a
 * simultaneous open (SYN-SENT -> SYN-RECEIVED), a FIN queued during the
 * handshake (SYN-RECEIVED -> FIN-WAIT-1), a FIN in SYN-RECEIVED
 * (-> CLOSE-WAIT), a FIN that also ACKs ours (FIN-WAIT-1 -> TIME-WAIT).
 * Every state may go to CLOSED (a reset, an abort, a timeout). */
static const unsigned allowed[UST_TCP_NSTATES] = {
	[UST_TCP_CLOSED] = B(LISTEN) | B(SYN_SENT) | B(SYN_RECEIVED),
	[UST_TCP_LISTEN] = B(CLOSED),
	[UST_TCP_SYN_SENT] = B(CLOSED) | B(SYN_RECEIVED) | B(ESTABLISHED),
	[UST_TCP_SYN_RECEIVED] = B(CLOSED) | B(ESTABLISHED) | B(FIN_WAIT_1) | B(CLOSE_WAIT),
	[UST_TCP_ESTABLISHED] = B(CLOSED) | B(FIN_WAIT_1) | B(CLOSE_WAIT),
	[UST_TCP_FIN_WAIT_1] = B(CLOSED) | B(FIN_WAIT_2) | B(CLOSING) | B(TIME_WAIT),
	[UST_TCP_FIN_WAIT_2] = B(CLOSED) | B(TIME_WAIT),
	[UST_TCP_CLOSE_WAIT] = B(CLOSED) | B(LAST_ACK),
	[UST_TCP_CLOSING] = B(CLOSED) | B(TIME_WAIT),
	[UST_TCP_LAST_ACK] = B(CLOSED),
	[UST_TCP_TIME_WAIT] = B(CLOSED),
};

bool ust_tcp_transition_allowed(enum ust_tcp_state from, enum ust_tcp_state to)
{
	return (unsigned)from < UST_TCP_NSTATES && (unsigned)to < UST_TCP_NSTATES &&
	       (allowed[from] & (1u << to));
}

void tcp_set_state(struct ust_tcb *t, enum ust_tcp_state s)
{
	struct ust_tcp_record *r = &t->rec;
	enum ust_tcp_state old = t->state;

	if (s == old)
		return;
#ifdef UST_CHECK_STATES
	if (!ust_tcp_transition_allowed(old, s)) {
		fprintf(stderr, "ustcp: tcp %u->%u: no transition %s => %s\n", t->lport, t->rport,
			ust_tcp_state_name(old), ust_tcp_state_name(s));
		abort();
	}
#endif
	if (ust_log_enabled(UST_LOG_DEBUG))
		ust_log(UST_LOG_DEBUG, "tcp %u->%u state=%s=>%s", t->lport, t->rport,
			ust_tcp_state_name(old), ust_tcp_state_name(s));
	tcb_store_state(t, s);
	/* A listener is not a connection: it leaves no record. */
	if (s == UST_TCP_LISTEN || old == UST_TCP_LISTEN)
		return;
	/* Who closed first: the first FIN decides. */
	if (r->initiator == UST_INIT_NONE) {
		if (s == UST_TCP_FIN_WAIT_1)
			r->initiator = UST_INIT_LOCAL;
		else if (s == UST_TCP_CLOSE_WAIT)
			r->initiator = UST_INIT_REMOTE;
	}
	if (s == UST_TCP_CLOSING)
		r->initiator = UST_INIT_SIMULTANEOUS;
	if (r->nstates < UST_TCP_HISTORY_MAX)
		r->states[r->nstates++] = (uint8_t)s;
	else
		r->states[UST_TCP_HISTORY_MAX - 1] = (uint8_t)s;
}

void tcp_set_error(struct ust_tcb *t, int err)
{
	t->so_error = err;
	t->hard_error = err;
}
