/* Closing a connection (RFC 9293 §3.6, RFC 1122 §4.2.2.13), all of it in
 * one place: every arrow of the state diagram that leads towards CLOSED,
 * each function headed by its arrow and by the conformance cases (Cnn,
 * docs/close-cases.md) that prove it. Linux is the reference wherever a
 * program or a peer can see the difference.
 *
 *   the user closes      ust_tcp_shutdown, ust_tcp_close, ust_tcp_abort
 *   our FIN is queued     queue_fin: ESTABLISHED -> FIN-WAIT-1,
 *                         CLOSE-WAIT -> LAST-ACK
 *   our FIN is ACKed      tcp_fin_acked: FIN-WAIT-1 -> FIN-WAIT-2,
 *                         CLOSING -> TIME-WAIT, LAST-ACK -> CLOSED
 *   the peer's FIN        tcp_fin_received: ESTABLISHED -> CLOSE-WAIT,
 *                         FIN-WAIT-1 -> CLOSING or TIME-WAIT,
 *                         FIN-WAIT-2 -> TIME-WAIT
 *   TIME-WAIT             tcp_time_wait_input, tcp_time_wait_over
 *   orphans time out      tcp_fin_wait2_timeout, tcp_orphan_timeout
 *   the connection dies   tcp_reset_received, tcp_data_after_close,
 *                         tcp_die, tcp_finish
 */
#include <errno.h>
#include <sys/socket.h>

#include "tcp_impl.h"

/* ---- the connection ends ---- */

/* Any state -> CLOSED. The outcome the close log reports (the first one
 * set wins), the end time, no more timers; the control block leaves the
 * tables once the user has let go too. */
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
	t->ack_compressed = 0; /* no ACK will go for them */
	tcp_sb_clear(t); /* nothing will be sent again */
	tcp_set_state(t, UST_TCP_CLOSED);
	/* Grown rings waiting out UST_TT_SHED: an empty one goes now. */
	ust_ring_shed(&t->sndbuf);
	tcp_rcvbuf_shed(t);
	if (tcp->cfg.closed)
		tcp->cfg.closed(tcp->cfg.ctx, t);
	tcp_event(t, UST_TCP_EV_CLOSED);
	tcp_maybe_free(t);
}

/* Any state -> CLOSED with an error the program must see (the next call,
 * or SO_ERROR, reports err once): a refusal, a timeout, a reset. */
void tcp_die(struct ust_tcb *t, int err, enum ust_tcp_outcome outcome, const char *reason)
{
	tcp_set_error(t, err);
	tcp_event(t, UST_TCP_EV_ERROR);
	tcp_finish(t, outcome, reason);
}

/* "If the RST bit is set ... enter CLOSED, signal the user" (RFC 9293
 * §3.10.7.3 and .4 second step), with Linux's errors (tcp_reset):
 *   SYN-SENT                  ECONNREFUSED (C37)
 *   SYN-RECEIVED, passive     back to LISTEN, quietly (the child goes)
 *   SYN-RECEIVED, active      ECONNREFUSED (simultaneous open)
 *   CLOSE-WAIT                EPIPE: the EOF was delivered already, writing
 *                             is what fails (C34)
 *   CLOSING, LAST-ACK         nothing to report: we closed already (C13)
 *   the others                ECONNRESET (C32, C35, C36)
 * The unread receive queue is kept (C33); the send queue goes. */
void tcp_reset_received(struct ust_tcb *t)
{
	tcp_count(t->tcp, UST_EV_TCP_RST_IN);
	switch (t->state) {
	case UST_TCP_SYN_SENT:
		tcp_die(t, ECONNREFUSED, UST_OUTCOME_REFUSED, "connection refused");
		break;
	case UST_TCP_SYN_RECEIVED:
		if (t->listener)
			tcp_finish(t, UST_OUTCOME_RESET_RECEIVED, "reset by peer during handshake");
		else
			tcp_die(t, ECONNREFUSED, UST_OUTCOME_REFUSED, "connection refused");
		break;
	case UST_TCP_CLOSING:
	case UST_TCP_LAST_ACK:
		tcp_finish(t, UST_OUTCOME_RESET_RECEIVED, "reset by peer while closing");
		break;
	case UST_TCP_CLOSE_WAIT:
		tcp_die(t, EPIPE, UST_OUTCOME_RESET_RECEIVED, "reset by peer");
		break;
	default:
		tcp_die(t, ECONNRESET, UST_OUTCOME_RESET_RECEIVED, "reset by peer");
		break;
	}
}

/* FIN-WAIT-1/2 after a full close (or SHUT_RDWR) -> CLOSED: data or a FIN
 * beyond RCV.NXT could never be read, so the peer hears so with a RST built
 * from its segment (RFC 9293 SHLD-3, Linux's tcp_rcv_state_process; C8,
 * C9). Returns true when that happened. */
bool tcp_data_after_close(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	if ((t->state != UST_TCP_FIN_WAIT_1 && t->state != UST_TCP_FIN_WAIT_2) || !t->rd_shut ||
	    !(seg->len || (seg->flags & UST_TH_FIN)) || !seq_gt(seg->seq + seg->len, t->rcv_nxt))
		return false;
	tcp_drop(t->tcp, UST_DROP_TCP_AFTER_CLOSE);
	if (tcb_fin_wait_2_orphan(t))
		tcp_send_rst_reply_tw(t, seg, now);
	else
		tcp_send_rst_reply_tcb(t, seg, now);
	tcp_die(t, ECONNRESET, UST_OUTCOME_RESET_SENT, "data received after close");
	return true;
}

/* ---- our FIN ---- */

/* CLOSE (RFC 9293 §3.10.4): the FIN goes after the data.
 *   ESTABLISHED -> FIN-WAIT-1  (C1, C2, C4)
 *   CLOSE-WAIT  -> LAST-ACK    (C12)
 *   SYN-RECEIVED: the FIN waits until the handshake completes, then
 *   FIN-WAIT-1 directly (tcp_input.c's ACK step). A second CLOSE adds
 *   nothing: one FIN (C6). */
static void queue_fin(struct ust_tcb *t, ust_time now)
{
	if (t->fin_queued)
		return;
	t->fin_queued = true;
	switch (t->state) {
	case UST_TCP_ESTABLISHED:
		tcp_set_state(t, UST_TCP_FIN_WAIT_1);
		break;
	case UST_TCP_CLOSE_WAIT:
		tcp_set_state(t, UST_TCP_LAST_ACK);
		break;
	default:
		return;
	}
	tcp_output(t, now);
}

/* Our FIN is acknowledged (RFC 9293 §3.10.7.4, fifth step):
 *   FIN-WAIT-1 -> FIN-WAIT-2  (C1, C3). A connection the program still
 *                             holds waits there for the peer's FIN as long
 *                             as it takes (C5); an orphan for the FIN
 *                             timeout (C25), or with TCP_LINGER2 < 0 is
 *                             reset at once (C26).
 *   CLOSING    -> TIME-WAIT   (C17)
 *   LAST-ACK   -> CLOSED      (C12)
 * Returns false when the connection ended here (the segment is done). */
bool tcp_fin_acked(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	tcp_event(t, UST_TCP_EV_DONE);
	switch (t->state) {
	case UST_TCP_FIN_WAIT_1:
		tcp_set_state(t, UST_TCP_FIN_WAIT_2);
		if (!t->released)
			return true;
		if (t->linger2_neg) {
			tcp_send_rst_reply_tcb(t, seg, now);
			tcp_finish(t, UST_OUTCOME_RESET_SENT, "TCP_LINGER2 < 0");
			return false;
		}
		tcp_timer_set(t, UST_TT_KEEPALIVE, now + tcp_fin_wait2_timeout(t));
		return true;
	case UST_TCP_CLOSING:
		tcp_enter_time_wait(t, now);
		return true;
	case UST_TCP_LAST_ACK:
		tcp_finish(t, UST_OUTCOME_ORDERLY, "");
		return false;
	default:
		return true;
	}
}

/* ---- the peer's FIN ---- */

/* The peer's FIN, once everything before it has arrived (RFC 9293
 * §3.10.7.4, eighth step; an out-of-order FIN is held until then, C43):
 * ACK it at once, report EOF (C10, C11), and
 *   SYN-RECEIVED, ESTABLISHED -> CLOSE-WAIT  (C10)
 *   FIN-WAIT-1 -> TIME-WAIT if it also ACKs our FIN (C18), else CLOSING
 *                 (C17)
 *   FIN-WAIT-2 -> TIME-WAIT  (C1)
 * Nothing follows a FIN: out-of-order data, or another FIN, held beyond
 * it is void. */
void tcp_fin_received(struct ust_tcb *t, ust_time now)
{
	ust_seqset_clear(&t->ofo);
	tcp_rcvbuf_shed(t);
	t->ofo_fin = false;
	t->rcv_nxt++;
	/* TCP_INFO's bytes_received counts RCV.NXT's advance, the FIN too
	 * (Linux's tcp_rcv_nxt_update; measured: 200001 after 200000 bytes
	 * and the FIN). The close log counts data only (t->rec). */
	t->stats.bytes_received++;
	t->fin_rcvd = true;
	t->ack_now = true;
	tcp_event(t, UST_TCP_EV_EOF | UST_TCP_EV_READABLE);
	switch (t->state) {
	case UST_TCP_SYN_RECEIVED:
	case UST_TCP_ESTABLISHED:
		tcp_set_state(t, UST_TCP_CLOSE_WAIT);
		break;
	case UST_TCP_FIN_WAIT_1:
		if (tcb_fin_acked(t)) {
			tcp_enter_time_wait(t, now);
			t->tw_ack_as_socket = true;
		} else {
			tcp_set_state(t, UST_TCP_CLOSING);
		}
		break;
	case UST_TCP_FIN_WAIT_2:
		tcp_enter_time_wait(t, now);
		/* An orphan was Linux's timewait socket already. */
		t->tw_ack_as_socket = !t->released;
		break;
	default:
		break;
	}
}

/* ---- TIME-WAIT ---- */

/* -> TIME-WAIT: only the 2 MSL timer runs (C20: 60 s by default, as
 * Linux's fixed TCP_TIMEWAIT_LEN; USTCP_MSL sets it). With cfg.max_tw
 * TIME-WAITs held already, Linux's tcp_time_wait finds no timewait socket
 * to be had (inet_twsk_alloc: tcp_max_tw_buckets) and closes the
 * connection there, its ACK of the peer's FIN sent first: here the 2 MSL
 * are none, so the block goes at the next run of the timers, after the
 * segment that brought it here is answered. Without that bound a server
 * that closes first stopped accepting once its TIME-WAITs filled the
 * ceiling on blocks (two kernel clients' ab at an nginx under the library:
 * 39,999 TIME-WAITs and every later SYN dropped, tcp-no-tcb). */
void tcp_enter_time_wait(struct ust_tcb *t, ust_time now)
{
	bool overflow = t->tcp->ntw >= t->tcp->cfg.max_tw;

	tcp_set_state(t, UST_TCP_TIME_WAIT);
	/* Rings grown for a flow kept their memory until now (tcp_ring_shed). */
	ust_ring_shed(&t->sndbuf);
	tcp_rcvbuf_shed(t);
	tcp_timer_stop(t, UST_TT_SHED);
	tcp_timer_stop(t, UST_TT_RTX);
	tcp_timer_stop(t, UST_TT_KEEPALIVE);
	tcp_timer_stop(t, UST_TT_DELACK);
	tcp_timer_stop(t, UST_TT_SACK);
	t->ack_compressed = 0; /* TIME-WAIT ACKs what comes on its own terms */
	tcp_timer_stop(t, UST_TT_PACE);
	t->tw_overflow = overflow;
	if (overflow)
		tcp_count(t->tcp, UST_EV_TCP_TW_OVERFLOW);
	tcp_timer_set(t, UST_TT_TIMEWAIT, overflow ? now : now + 2 * UST_MS(t->tcp->cfg.msl_ms));
}

/* A segment restarts the 2 MSL, unless the connection is beyond the
 * bound on TIME-WAITs and ends at the next run of the timers: two
 * segments in one receive batch would have kept it for good. */
static void tw_restart(struct ust_tcb *t, ust_time due)
{
	if (!t->tw_overflow)
		tcp_timer_set(t, UST_TT_TIMEWAIT, due);
}

/* TIME-WAIT -> CLOSED when 2 MSL have passed (C20). */
void tcp_time_wait_over(struct ust_tcb *t)
{
	tcp_finish(t, UST_OUTCOME_ORDERLY, "");
}

/* A segment in TIME-WAIT, as Linux's tcp_timewait_state_process (RFC 9293
 * says only "the only thing that can arrive is a retransmission of the
 * remote FIN"; Linux answers more cases, and those are what a peer sees):
 * - exactly at RCV.NXT: a RST ends TIME-WAIT (C22; tcp_rfc1337=0, RFC
 *   1337's choice of ignoring it is config.rfc1337), a bare ACK restarts
 *   2 MSL;
 * - a SYN that is newer (sequence above RCV.NXT, or a newer timestamp)
 *   while a listener holds the port: TIME-WAIT -> CLOSED, and the SYN
 *   opens a new connection with an ISN above everything used before (RFC
 *   9293 MAY-2, RFC 6191; C23);
 * - anything else but a RST restarts 2 MSL if it carries an ACK and is
 *   answered with an ACK: a retransmitted FIN (C19), data (C21), an old
 *   SYN (C24); only empty segments are rate-limited (C39).
 * Returns the ISN for a new connection, or 0 when the segment is done. */
uint32_t tcp_time_wait_input(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now)
{
	const struct ust_tcp_config *cfg = &t->tcp->cfg;
	ust_time tw = 2 * UST_MS(t->tcp->cfg.msl_ms);
	bool paws = t->ts_ok && seg->opt.ts && seq_lt(seg->opt.ts_val + 1, t->ts_recent);

	/* Another process took the 4-tuple over (its connect from our port,
	 * RFC 6191 by tcp_twsk_unique's rule): the segment is its new
	 * connection's, and on Linux this TIME-WAIT would be gone. It ends
	 * quietly rather than answer for the old connection. */
	if (cfg->tuple_taken && cfg->tuple_taken(cfg->ctx, t->lport, &t->raddr, t->rport)) {
		tcp_drop_foreign(t->tcp);
		tcp_finish(t, UST_OUTCOME_ORDERLY, "");
		return 0;
	}

	if (!paws && seg->seq == t->rcv_nxt && (ust_seg_len(seg) == 0 || (seg->flags & UST_TH_RST))) {
		if (!(seg->flags & UST_TH_RST))
			tw_restart(t, now + tw);
		else if (!t->tcp->cfg.rfc1337)
			/* Orderly, both FINs behind it, but said: a peer that
			 * answers a late duplicate ACK with a RST ends it
			 * early (RFC 1337's assassination), which a count of
			 * TIME-WAITs otherwise shows only as one fewer. */
			tcp_finish(t, UST_OUTCOME_ORDERLY, "TIME-WAIT ended by the peer's RST");
		else
			tcp_drop(t->tcp, UST_DROP_TCP_TIME_WAIT);
		return 0;
	}
	if ((seg->flags & (UST_TH_SYN | UST_TH_RST | UST_TH_ACK)) == UST_TH_SYN && !paws &&
	    (seq_gt(seg->seq, t->rcv_nxt) || (t->ts_ok && seg->opt.ts && seq_lt(t->ts_recent, seg->opt.ts_val))) &&
	    tcp_lookup_listener(t->tcp, t->lport)) {
		uint32_t isn = t->snd_max + TCP_TW_ISN_GAP;
		tcp_finish(t, UST_OUTCOME_ORDERLY, "");
		return isn ? isn : 1;
	}
	tcp_drop(t->tcp, UST_DROP_TCP_TIME_WAIT);
	if (seg->flags & UST_TH_RST)
		return 0;
	if (paws || (seg->flags & UST_TH_ACK))
		tw_restart(t, now + tw);
	if (seg->len || (seg->flags & UST_TH_FIN))
		tcp_send_ack(t, now);
	else
		tcp_send_challenge_ack(t, now);
	return 0;
}

/* ---- orphans ---- */

/* How long an orphan waits in FIN-WAIT-2 for the peer's FIN: T, its
 * TCP_LINGER2 (else USTCP_FIN_TIMEOUT), never less than 3.5 RTO (Linux's
 * tcp_fin_time). Above 60 s (TCP_TIMEWAIT_LEN) Linux waits T - 60 s on
 * the keepalive timer, then hands the orphan to a FIN-WAIT-2 timewait
 * socket for T - 60 s more (tcp_rcv_state_process, tcp_keepalive_timer):
 * 2T - 120 s in all, 80 s for a TCP_LINGER2 of 100. */
ust_time tcp_fin_wait2_timeout(const struct ust_tcb *t)
{
	ust_time tmo = UST_MS(t->fin_timeout_ms ? t->fin_timeout_ms : t->tcp->cfg.fin_timeout_ms);

	if (tmo < t->rto * 7 / 2)
		tmo = t->rto * 7 / 2;
	return tmo > UST_MS(60000) ? 2 * (tmo - UST_MS(60000)) : tmo;
}

/* FIN-WAIT-2 -> CLOSED for an orphan whose peer never sent its FIN:
 * silently (C25). Runs on the keepalive timer, which an orphan in
 * FIN-WAIT-2 uses for this. Returns true if it applied. */
bool tcp_orphan_timeout(struct ust_tcb *t)
{
	if (t->state != UST_TCP_FIN_WAIT_2 || !t->released)
		return false;
	tcp_finish(t, UST_OUTCOME_TIMEOUT, "peer never closed (orphaned FIN-WAIT-2)");
	return true;
}

/* ---- the user's calls ---- */

int ust_tcp_shutdown(struct ust_tcb *t, int how, ust_time now)
{
	t->tcp->now = now;
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return -EINVAL;
	/* A connecting socket is disconnected, whatever how says: Linux's
	 * inet_shutdown calls tcp_disconnect in SYN-SENT, which sends
	 * nothing, leaves ECONNRESET for the program and returns 0 (C49). */
	if (t->state == UST_TCP_SYN_SENT) {
		tcp_die(t, ECONNRESET, UST_OUTCOME_RESET_SENT, "shut down while connecting");
		return 0;
	}
	if (t->state == UST_TCP_CLOSED || t->state == UST_TCP_LISTEN)
		return -ENOTCONN;
	/* SHUT_RD is local only: nothing on the wire (C7). */
	if (how != SHUT_WR)
		t->rd_shut = true;
	/* SHUT_WR: the FIN, and the program keeps receiving (C4). */
	if (how != SHUT_RD)
		queue_fin(t, now);
	return 0;
}

/* The program lets go of t (close or abort): from now on it is an orphan,
 * finished by TCP alone. */
static void let_go(struct ust_tcb *t, ust_time now)
{
	t->tcp->now = now;
	t->released = true;
	t->user = NULL;
	if (t->state == UST_TCP_TIME_WAIT)
		tcp_twrec_pending(t); /* to be kept compact */
}

/* ABORT (RFC 9293 §3.10.5): any state -> CLOSED with a RST, as Linux's
 * tcp_disconnect. */
void ust_tcp_abort(struct ust_tcb *t, ust_time now)
{
	bool unsent = t->sndbuf.len > t->snd_max - t->snd_buf_seq;

	let_go(t, now);
	switch (t->state) {
	case UST_TCP_CLOSED:
		tcp_maybe_free(t);
		return;
	case UST_TCP_LISTEN:
		ust_tcp_close(t, now);
		return;
	case UST_TCP_SYN_SENT:
	case UST_TCP_TIME_WAIT:
		break;
	case UST_TCP_CLOSING:
	case UST_TCP_LAST_ACK:
		/* Linux resets these only if data was never sent. */
		if (unsent)
			tcp_send_rst(t, now);
		break;
	default:
		tcp_send_rst(t, now);
		break;
	}
	tcp_finish(t, UST_OUTCOME_RESET_SENT, "aborted by the user");
}

/* LISTEN -> CLOSED: established children nobody accepted are reset;
 * half-open ones go quietly (C30). */
static void close_listener(struct ust_tcb *t, ust_time now)
{
	while (t->acceptq_head) {
		struct ust_tcb *c = t->acceptq_head;
		tcp_listener_forget(t, c);
		ust_tcp_abort(c, now);
	}
	/* Its half-open children share its port: only that port's chain
	 * is read, not the whole table (nor its TIME-WAITs kept as records,
	 * which are no one's children). */
	for (struct ust_tcb *c = tcp_port_users(t->tcp, t->lport), *next; c; c = next) {
		next = c->pnext;
		if (c->listener == t) {
			tcp_listener_forget(t, c);
			tcp_finish(c, UST_OUTCOME_RESET_SENT, "listener closed");
		}
	}
	tcp_set_state(t, UST_TCP_CLOSED);
	tcp_maybe_free(t);
}

/* CLOSE (RFC 9293 §3.10.4) as close(2) on Linux: the program lets go.
 *   SYN-SENT -> CLOSED, nothing sent (C29)
 *   LISTEN -> CLOSED (C30)
 *   unread data, or SO_LINGER {1, 0}: abort with a RST (C15, C27); only
 *   the FIN unread is a normal close (C16)
 *   FIN-WAIT-2 after SHUT_WR: now an orphan, waiting at most the FIN
 *   timeout (C25), or reset with TCP_LINGER2 < 0 (C26); a second FIN is
 *   never sent (C6)
 *   otherwise the FIN (queue_fin). */
int ust_tcp_close(struct ust_tcb *t, ust_time now)
{
	let_go(t, now);
	switch (t->state) {
	case UST_TCP_CLOSED:
		tcp_maybe_free(t);
		return 0;
	case UST_TCP_LISTEN:
		close_listener(t, now);
		return 0;
	case UST_TCP_SYN_SENT:
		tcp_finish(t, UST_OUTCOME_RESET_SENT, "closed while connecting");
		return 0;
	default:
		break;
	}
	if (t->rcvbuf.len || (t->linger_on && t->linger_s == 0)) {
		ust_tcp_abort(t, now);
		return 0;
	}
	t->rd_shut = true;
	if (t->state == UST_TCP_FIN_WAIT_2) {
		if (t->linger2_neg) {
			tcp_send_rst(t, now);
			tcp_finish(t, UST_OUTCOME_RESET_SENT, "TCP_LINGER2 < 0");
			return 0;
		}
		tcp_timer_set(t, UST_TT_KEEPALIVE, now + tcp_fin_wait2_timeout(t));
	}
	queue_fin(t, now);
	return 0;
}
