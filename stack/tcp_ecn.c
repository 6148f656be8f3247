/* Explicit Congestion Notification (RFC 3168) as Linux's classic ECN
 * (tcp_ecn 1 and 2: net/ipv4/tcp_input.c, tcp_output.c and
 * include/net/tcp_ecn.h): the negotiation in the handshake, the ECN field
 * of the segments we send, the receiver's echo of CE marks, and what the
 * sender hears of them. The window's reduction itself is the loss state
 * machine's (tcp_enter_cwr, tcp_ack.c).
 *
 * "ECN-setup SYN packet: a SYN packet with the ECE and CWR flags set.
 * ECN-setup SYN-ACK packet: a SYN-ACK packet with ECE but not CWR set"
 * (RFC 3168 §6.1.1). Linux's default (tcp_ecn 2, ours too: USTCP_ECN)
 * answers an ECN-setup SYN but never sends one; 1 also asks on connect;
 * 0 neither. Measured on Linux 6.18 (tests/seg/kernel_peer.py
 * ecn-passive, ecn-ect-syn): the SYN-ACK carries ECE and is not ECT; new
 * data goes ECT(0); pure ACKs, retransmissions and the SYN-ACK go
 * Not-ECT; a SYN that is itself ECT is not answered with ECN. */
#include "tcp_impl.h"

#define ECN_SETUP (UST_TH_ECE | UST_TH_CWR)

static bool ecn_ok(const struct ust_tcb *t)
{
	return t->ecn_flags & UST_TCP_ECN_OK;
}

/* ---- the handshake ---- */

/* connect: with tcp_ecn 1 the SYN asks for ECN (Linux's
 * tcp_ecn_send_syn); the SYN-ACK decides. */
void tcp_ecn_connect(struct ust_tcb *t)
{
	t->ecn_flags = t->tcp->cfg.ecn == 1 ? UST_TCP_ECN_OK : 0;
}

/* A passive child from the peer's SYN (Linux's tcp_ecn_create_request):
 * ECN if the SYN is ECN-setup and the configuration allows it. "A host
 * MUST NOT set ECT on SYN or SYN-ACK packets" (RFC 3168 §6.1.1): an ECT
 * SYN says something on the path rewrites the field, and Linux then
 * declines. */
void tcp_ecn_create_request(struct ust_tcb *c, const struct ust_tcp_seg *syn)
{
	c->ecn_flags = 0;
	if ((syn->flags & ECN_SETUP) == ECN_SETUP && syn->ecn == UST_ECN_NOT_ECT && c->tcp->cfg.ecn)
		c->ecn_flags = UST_TCP_ECN_OK;
}

/* Our SYN asked: the peer agrees with an ECN-setup SYN-ACK, ECE without
 * CWR (Linux's tcp_ecn_rcv_synack); in a simultaneous open its SYN must
 * be ECN-setup too (tcp_ecn_rcv_syn). */
void tcp_ecn_rcv_syn(struct ust_tcb *t, const struct ust_tcp_seg *seg)
{
	uint8_t f = seg->flags & ECN_SETUP;
	bool agrees = (seg->flags & UST_TH_ACK) ? f == UST_TH_ECE : f == ECN_SETUP;

	if (!agrees)
		t->ecn_flags = 0;
}

/* ---- what we send ---- */

/* The ECN field of a segment, and its ECE and CWR flags (Linux's
 * tcp_ecn_send, tcp_ecn_send_syn, tcp_ecn_make_synack). A SYN asks once:
 * a retransmitted SYN goes without ECE and CWR, in case a middlebox drops
 * ECN-setup SYNs (Linux's tcp_ecn_clear_syn, tcp_ecn_fallback 1). On an
 * ECN connection new data is ECT(0) (RFC 3168 §6.1.5: "the TCP sender
 * MUST NOT set an ECT codepoint on retransmitted data packets"; nor,
 * §6.1.4 and 6.1.6, on pure ACKs and window probes), and the first new
 * data after a reduction carries CWR; everything carries ECE while CE is
 * to be echoed. */
uint8_t tcp_ecn_output(struct ust_tcb *t, uint32_t seq, uint32_t len, uint8_t *flags)
{
	uint8_t ecn = UST_ECN_NOT_ECT;

	if (!ecn_ok(t))
		return ecn;
	if (*flags & UST_TH_SYN) {
		if (*flags & UST_TH_ACK)
			*flags |= UST_TH_ECE;
		else if (!t->backoff)
			*flags |= ECN_SETUP;
		return ecn;
	}
	if (len && !seq_lt(seq, t->snd_max)) {
		ecn = UST_ECN_ECT0;
		if (t->ecn_flags & UST_TCP_ECN_QUEUE_CWR) {
			t->ecn_flags &= (uint8_t)~UST_TCP_ECN_QUEUE_CWR;
			*flags |= UST_TH_CWR;
		}
	}
	if (t->ecn_flags & UST_TCP_ECN_DEMAND_CWR)
		*flags |= UST_TH_ECE;
	return ecn;
}

/* The window was reduced (recovery, a timeout, CWR): the peer hears of
 * it by the CWR flag on our next new data (Linux's tcp_ecn_queue_cwr). */
void tcp_ecn_queue_cwr(struct ust_tcb *t)
{
	if (ecn_ok(t))
		t->ecn_flags |= UST_TCP_ECN_QUEUE_CWR;
}

/* ---- the receiver ---- */

/* Every acceptable segment: TCP_INFO's received_ce counts the CE marks,
 * a GRO frame as its segments (Linux 6.18's tcp_ecn_received_counters;
 * measured: three CE data segments, received_ce 3). */
void tcp_ecn_count_ce(struct ust_tcb *t, const struct ust_tcp_seg *seg, uint32_t segs)
{
	if (seg->ecn != UST_ECN_CE)
		return;
	t->stats.received_ce += segs;
	t->tcp->st->ctr.event[UST_EV_TCP_CE_IN] += segs;
}

/* Data arrived (Linux's tcp_data_ecn_check, from tcp_event_data_recv and
 * tcp_data_queue_ofo). CE: echo it (RFC 3168 §6.1.3: "the TCP receiver
 * sets the ECN-Echo flag in the TCP header of the subsequent ACK packet")
 * until the peer's CWR, and ACK quickly: "the sender can have a very low
 * cwnd". Not-ECT after ECT: something on the path may be clearing the
 * field; ACK quickly as well. */
void tcp_ecn_check_ce(struct ust_tcb *t, const struct ust_tcp_seg *seg)
{
	if (!ecn_ok(t))
		return;
	switch (seg->ecn) {
	case UST_ECN_NOT_ECT:
		if (t->ecn_flags & UST_TCP_ECN_SEEN)
			tcp_enter_quickack_mode(t, TCP_ECN_QUICKACKS);
		break;
	case UST_ECN_CE:
		if (!(t->ecn_flags & UST_TCP_ECN_DEMAND_CWR)) {
			tcp_enter_quickack_mode(t, TCP_ECN_QUICKACKS);
			t->ecn_flags |= UST_TCP_ECN_DEMAND_CWR;
		}
		t->ecn_flags |= UST_TCP_ECN_SEEN;
		break;
	default:
		t->ecn_flags |= UST_TCP_ECN_SEEN;
		break;
	}
}

/* The peer reduced its window: stop echoing (RFC 3168 §6.1.3). Linux
 * takes CWR on any acceptable ACK, pure ones too ("to be more robust
 * with widely-deployed TCP implementations that do this"; measured: the
 * ACK after a pure ACK with CWR has no ECE), and ACKs data carrying it at
 * once (tcp_ecn_accept_cwr). */
void tcp_ecn_accept_cwr(struct ust_tcb *t, const struct ust_tcp_seg *seg)
{
	if (!ecn_ok(t) || !(seg->flags & UST_TH_CWR))
		return;
	t->ecn_flags &= (uint8_t)~UST_TCP_ECN_DEMAND_CWR;
	if (seg->len)
		t->ack_now = true;
}

/* ---- the sender ---- */

/* The ACK echoes a CE mark (Linux's tcp_ecn_rcv_ecn_echo): ECE counts
 * only on an ECN connection, and never on a SYN. */
bool tcp_ecn_rcv_ece(const struct ust_tcb *t, const struct ust_tcp_seg *seg)
{
	return ecn_ok(t) && (seg->flags & UST_TH_ECE) && !(seg->flags & UST_TH_SYN);
}
