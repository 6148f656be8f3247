/* State changes, and the record every connection leaves behind. */
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

void tcp_set_state(struct ust_tcb *t, enum ust_tcp_state s)
{
	struct ust_tcp_record *r = &t->rec;
	enum ust_tcp_state old = t->state;

	if (s == old)
		return;
	if (ust_log_enabled(UST_LOG_DEBUG))
		ust_log(UST_LOG_DEBUG, "tcp %u->%u state=%s=>%s", t->lport, t->rport,
			ust_tcp_state_name(old), ust_tcp_state_name(s));
	t->state = s;
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

void tcp_finish(struct ust_tcb *t, enum ust_tcp_outcome outcome, const char *reason)
{
	struct ust_tcp *tcp = t->tcp;

	if (t->rec.outcome == UST_OUTCOME_NONE) {
		t->rec.outcome = outcome;
		t->rec.reason = reason;
	}
	/* An abort before any FIN: whoever reset it ended it. */
	if (t->rec.initiator == UST_INIT_NONE) {
		if (outcome == UST_OUTCOME_RESET_SENT)
			t->rec.initiator = UST_INIT_LOCAL;
		else if (outcome == UST_OUTCOME_RESET_RECEIVED)
			t->rec.initiator = UST_INIT_REMOTE;
	}
	t->rec.end = tcp->now;
	for (unsigned i = 0; i < UST_TT_N; i++)
		tcp_timer_stop(t, (enum ust_tcp_timer)i);
	tcp_set_state(t, UST_TCP_CLOSED);
	if (tcp->cfg.closed)
		tcp->cfg.closed(tcp->cfg.ctx, t);
	tcp_event(t, UST_TCP_EV_CLOSED);
	tcp_maybe_free(t);
}
