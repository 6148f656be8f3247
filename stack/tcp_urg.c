/* Urgent data (RFC 9293 §3.8.5, RFC 6093) as Linux's: the urgent pointer
 * points just after the urgent byte (BSD's reading, Linux's default
 * tcp_stdurg = 0), and one urgent byte is remembered at a time.
 *
 * Sending (MSG_OOB): Linux's tcp_mark_urg sets SND.UP after the call's
 * last byte; every segment that starts before it carries URG and the
 * pointer (tcp_transmit_skb), and urgent mode bypasses Nagle and the cork
 * (tcp_nagle_test) until SND.UNA reaches SND.UP. Receiving: Linux's
 * tcp_check_urg keeps the newest pointer not yet read; the relay hands
 * that byte to the program out of band (AF_UNIX's MSG_OOB), so that
 * recv(MSG_OOB), SIOCATMARK, SO_OOBINLINE, POLLPRI and SIGURG behave as
 * on a kernel socket. Measured on Linux 6.18: send("xyz", MSG_OOB) goes as
 * one segment with URG and pointer 3; the peer reads "z" out of band and
 * "xy" in band; "abc", "XY" (MSG_OOB), "tail" read "abcX", then at the
 * mark "Y" out of band, then "tail". */
#include "tcp_impl.h"

void ust_tcp_send_urgent(struct ust_tcb *t, uint32_t beyond, ust_time now)
{
	t->tcp->now = now;
	if (!UST_TCP_SYNCHRONIZED(t->state) || t->fin_queued)
		return;
	t->snd_up = t->snd_buf_seq + t->sndbuf.len + beyond;
	t->urg_mode = seq_gt(t->snd_up, t->snd_una);
	tcp_output(t, now);
}

uint16_t tcp_urg_output(const struct ust_tcb *t, uint32_t seq, uint8_t *flags)
{
	if (!t->urg_mode || !seq_lt(seq, t->snd_up))
		return 0;
	if (seq_lt(t->snd_up, seq + 0x10000)) {
		*flags |= UST_TH_URG;
		return (uint16_t)(t->snd_up - seq);
	}
	/* Further than a pointer reaches: the most it says (Linux). */
	if (seq_gt(seq + 0xffff, t->snd_nxt)) {
		*flags |= UST_TH_URG;
		return 0xffff;
	}
	return 0;
}

void tcp_urg_acked(struct ust_tcb *t)
{
	if (t->urg_mode && !seq_lt(t->snd_una, t->snd_up))
		t->urg_mode = false;
}

void tcp_urg_input(struct ust_tcb *t, const struct ust_tcp_seg *seg)
{
	uint32_t ptr;

	if (!(seg->flags & UST_TH_URG))
		return;
	ptr = seg->seq + (seg->up ? seg->up - 1u : 0u);
	/* Read already, replayed, or not newer than the one we have. */
	if (seq_lt(ptr, t->copied_seq) || seq_lt(ptr, t->rcv_nxt))
		return;
	if (t->rcv_urg && !seq_gt(ptr, t->rcv_urg_seq))
		return;
	t->rcv_urg = true;
	t->rcv_urg_seq = ptr;
}

bool ust_tcp_rcv_urgent(const struct ust_tcb *t, uint32_t *offset)
{
	if (!t->rcv_urg || seq_lt(t->rcv_urg_seq, t->copied_seq) ||
	    !seq_lt(t->rcv_urg_seq, t->copied_seq + t->rcvbuf.len))
		return false;
	*offset = t->rcv_urg_seq - t->copied_seq;
	return true;
}
