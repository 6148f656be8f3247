/* The receiver's side of a connection, as Linux does it: when to ACK, the
 * window to offer, and how large the buffers are.
 *
 * When to ACK. RFC 1122 §4.2.3.2 and RFC 5681 §4.2 allow an ACK to wait
 * (at most 500 ms, and at least every second full segment is ACKed). Linux
 * waits less than that and not always, and a peer sees it: its delayed-ACK
 * engine (net/ipv4/tcp_input.c, tcp_output.c, inet_connection_sock.h) is
 * followed here, field for field:
 *   - quick-ACK mode: at the first data, and after the sender was idle
 *     longer than an RTO, every segment is ACKed at once, for up to 16
 *     ACKs (or a window's worth of two-segment pairs), so that a sender in
 *     slow start is not held by our timer (ack_quick);
 *   - interactive ("pingpong") mode: a reply sent within ato of the data
 *     it answers carries the ACK, so ACKs are delayed while the program
 *     answers requests (ack_pingpong); a delayed-ACK timer that fires ends
 *     it;
 *   - otherwise an ACK waits for ato (40 ms to start, adapting to the gaps
 *     between segments, bounded by the RTT and 200 ms), unless more than a
 *     full segment is unacknowledged and the window moved on, or the
 *     reader drained a small or pushed segment (tcp_cleanup_rbuf);
 *   - out-of-order data, a hole filled, a FIN, and data already received
 *     are ACKed at once (tcp_input.c).
 * Linux counts ato in jiffies (4 ms at HZ=250); ustcp counts microseconds.
 *
 * The window and the buffers. A connection starts with the receive buffer
 * USTCP_RMEM's default (Linux's tcp_rmem[1]) and offers half of it as its
 * largest window, as Linux does before it has measured its packets'
 * overhead (TCP_DEFAULT_SCALING_RATIO); the window scale is the one that
 * lets the window reach USTCP_RMEM's maximum, or the buffer the program
 * set with SO_RCVBUF (tcp_select_initial_window). While the reader keeps
 * up, the buffer grows to twice what it read in a round trip of the
 * receiver's own estimate, and twice more by as much as that grew
 * (tcp_rcv_space_adjust and tcp_rcvbuf_grow, dynamic right-sizing), up to
 * the maximum; the ring's capacity follows, never smaller, as Linux's
 * sk_rcvbuf never shrinks (its memory follows what it holds, tcp_buf.h).
 * The send buffer grows with cwnd in the same way (tcp_sndbuf_expand).
 * SO_RCVBUF and SO_SNDBUF stop the growth (Linux's SOCK_RCVBUF_LOCK,
 * SOCK_SNDBUF_LOCK). */
#include <errno.h>
#include <string.h>

#include "tcp_impl.h"

#define TCP_MIN_MSS 88              /* Linux TCP_MIN_MSS */
#define TCP_TS_LEN 12               /* the timestamp option, padded */

/* ---- sizes ---- */

/* The window a buffer holds. Linux charges a receive buffer for its
 * packets' memory, not only their payload, and offers as window the part
 * it expects payload to take: scaling_ratio, of 256, half until it has
 * measured a full segment (TCP_DEFAULT_SCALING_RATIO), then the segment's
 * length over its memory (tcp_measure_rcv_mss). SO_RCVBUF 20000 gives a
 * 40000-byte buffer and a first window of 20000 (measured on 6.18: the
 * SYN's window 18980, 13 segments of 1460). ustcp's ring holds payload
 * only, so a measured segment costs what it carries: the ratio becomes
 * 255, the most Linux's can be, and the window nearly the whole buffer,
 * as Linux's becomes for large segments (a 64 KB GRO train in 66 KB). */
#define TCP_DEFAULT_SCALING_RATIO 128
#define TCP_MEASURED_SCALING_RATIO 255

/* The ratio, the default one before the handshake sets it (a buffer
 * option on a socket not yet connected: Linux's tcp_init_sock sets it at
 * once). */
static unsigned scaling(const struct ust_tcb *t)
{
	return t->rcv_scaling ? t->rcv_scaling : TCP_DEFAULT_SCALING_RATIO;
}

static uint32_t win_from_space(const struct ust_tcb *t, uint32_t space)
{
	return (uint32_t)(((uint64_t)space * scaling(t)) >> 8);
}

static uint32_t space_from_win(const struct ust_tcb *t, uint64_t win)
{
	uint64_t space = (win << 8) / scaling(t);

	return space > UINT32_MAX ? UINT32_MAX : (uint32_t)space;
}

static unsigned ilog2_u32(uint32_t v)
{
	return v ? 31u - (unsigned)__builtin_clz(v) : 0;
}

/* The largest window a scale can express. */
static uint32_t wnd_max(const struct ust_tcb *t)
{
	return (uint32_t)65535 << t->rcv_wscale;
}

/* Linux's tcp_select_initial_window, with tcp_init_buffer_space's clamp:
 * the window may grow to half the buffer (the clamp); the first window is
 * that, in whole segments of the MSS we announced (less the timestamp
 * option when the peer's SYN had one); the scale is the smallest that
 * reaches tcp_rmem[2] (so the buffer can grow without a scale that is too
 * small), or the buffer the program set: measured on 6.18, tcp_rmem[2] =
 * 33554432 gives scale 10 (ilog2 = 25, less 15), 6291456 gives 7;
 * SO_RCVBUF 4000000 gives 6, 100000 gives 1, 20000 gives 0. */
void tcp_select_initial_window(struct ust_tcb *t, bool wscale_ok)
{
	uint32_t full;
	uint32_t mss = t->rcv_mss - (t->ts_ok ? TCP_TS_LEN : 0);
	uint32_t space;
	int scale = 0;

	t->rcv_scaling = TCP_DEFAULT_SCALING_RATIO;
	full = win_from_space(t, t->rcvbuf_cap);
	/* TCP_WINDOW_CLAMP bounds the first window and the scale too. */
	if (t->user_wnd_clamp && full > t->user_wnd_clamp)
		full = t->user_wnd_clamp;
	space = full;
	if (wscale_ok) {
		if (!t->rcvbuf_locked && t->tcp->cfg.rmem[2] > space)
			space = t->tcp->cfg.rmem[2];
		if (t->user_wnd_clamp && space > t->user_wnd_clamp)
			space = t->user_wnd_clamp;
		scale = (int)ilog2_u32(space) - 15;
		scale = scale < 0 ? 0 : scale > TCP_MAX_WSCALE ? TCP_MAX_WSCALE : scale;
	}
	t->rcv_wscale = (uint8_t)scale;
	t->rcv_wnd_clamp = full < wnd_max(t) ? full : wnd_max(t);
	t->rcv_ssthresh = t->rcv_wnd_clamp > mss ? t->rcv_wnd_clamp / mss * mss : t->rcv_wnd_clamp;
	/* The peer's segment size, until the handshake gives a better guess
	 * (tcp_init_buffer_space). */
	t->rcv_seg_mss = TCP_MSS_DEFAULT;
}

/* Linux's per-segment memory when it sends without segmentation offload:
 * payload and headers in a power-of-two block, plus the sk_buff (256)
 * (tcp_sndbuf_expand). Calibrated on 6.18: with an MSS of 1460 a segment
 * costs 2048 + 256 bytes, and getsockopt(SO_SNDBUF) reads 46080 after the
 * handshake with reno or cubic (2 × 10 × 2304); bbr provisions three
 * windows instead of two (69120). */
static uint32_t sndmem_per_segment(const struct ust_tcb *t)
{
	uint32_t need = t->mss + (t->ts_ok ? TCP_TS_LEN : 0) + 576;
	uint32_t block = 1;

	while (block < need)
		block <<= 1;
	return block + 256;
}

void tcp_sndbuf_expand(struct ust_tcb *t)
{
	uint32_t segs = t->snd_cwnd;
	uint64_t mem;

	if (t->sndbuf_locked || !t->mss)
		return;
	if (segs < TCP_INIT_CWND)
		segs = TCP_INIT_CWND;
	/* Twice a window: room for fast recovery (RFC 5681 §3.2), as
	 * Linux's default; what the algorithm asks for if it says (BBR:
	 * three). */
	mem = (uint64_t)(t->cc->sndbuf_expand ? t->cc->sndbuf_expand(t) : 2) * segs * sndmem_per_segment(t);
	if (mem > t->tcp->cfg.wmem[2])
		mem = t->tcp->cfg.wmem[2];
	if (mem <= t->sndbuf_cap)
		return;
	if (t->sndbuf.cap && ust_ring_resize(&t->sndbuf, (uint32_t)mem))
		return; /* no memory: keep what there is */
	t->sndbuf_cap = (uint32_t)mem;
	tcp_event(t, UST_TCP_EV_WRITABLE);
}

/* The bytes the ring must keep from its head: the in-order ones, and the
 * out-of-order ones written past them. */
static uint32_t rcvbuf_in_use(const struct ust_tcb *t)
{
	return t->rcvbuf.len + (t->ofo.n ? ust_seqset_last_end(&t->ofo) - t->rcv_nxt : 0);
}

/* A new largest window (at most what the scale expresses); the ring grows
 * for a larger one. False when there is no memory for it: the window
 * stays. */
static bool rcv_set_clamp(struct ust_tcb *t, uint32_t clamp)
{
	uint32_t old = t->rcv_wnd_clamp;

	if (clamp > wnd_max(t))
		clamp = wnd_max(t);
	t->rcv_wnd_clamp = clamp;
	if (t->rcv_ssthresh > clamp)
		t->rcv_ssthresh = clamp;
	if (clamp <= old || !t->rcvbuf.cap || tcp_rcvbuf_ring_size(t) <= t->rcvbuf.cap)
		return true;
	if (ust_ring_resize_keep(&t->rcvbuf, tcp_rcvbuf_ring_size(t), rcvbuf_in_use(t)) == 0)
		return true;
	t->rcv_wnd_clamp = old;
	return false;
}

int ust_tcp_set_rcvlowat(struct ust_tcb *t, int v)
{
	uint32_t cap = (t->rcvbuf_locked ? t->rcvbuf_cap : t->tcp->cfg.rmem[2]) / 2, space;

	if (v < 0 || (uint32_t)v > cap)
		v = (int)cap;
	if (!t->rcvbuf_locked && (space = space_from_win(t, (uint32_t)v)) > t->rcvbuf_cap &&
	    (!t->rcvbuf.cap || rcv_set_clamp(t, win_from_space(t, space))))
		t->rcvbuf_cap = space;
	return v ? v : 1;
}

void tcp_rcvbuf_set(struct ust_tcb *t, uint32_t size)
{
	t->rcvbuf_cap = size;
	t->rcvbuf_locked = true;
	if (t->rcvbuf.cap)
		rcv_set_clamp(t, win_from_space(t, size));
}

void tcp_rcvbuf_grow(struct ust_tcb *t, uint32_t space)
{
	uint32_t before = t->rcvq_space;
	uint64_t win = 2ull * space;
	uint32_t buf;

	t->rcvq_space = space;
	if (t->rcvbuf_locked || !t->rcvbuf.cap)
		return;
	/* What the reader took in a round trip, twice: the measure is one
	 * round trip late. And while it grows, room for the sender to
	 * double its rate once more (slow start): Linux 6.18's
	 * tcp_rcvbuf_grow, whose window reaches 700 KB within the first
	 * megabyte on a veth, where twice the measure alone took four
	 * times as long. */
	if (before && space > before)
		win += 2 * (win * (space - before) / before);
	/* Out-of-order data is part of what the sender had in flight: the
	 * window must cover it as well as the next round trip. */
	if (t->ofo.n)
		win += ust_seqset_last_end(&t->ofo) - t->rcv_nxt;
	buf = space_from_win(t, win);
	if (buf > t->tcp->cfg.rmem[2])
		buf = t->tcp->cfg.rmem[2];
	if (buf <= t->rcvbuf_cap)
		return;
	if (rcv_set_clamp(t, win_from_space(t, buf)))
		t->rcvbuf_cap = buf;
}

static uint32_t select_window(const struct ust_tcb *t);
static uint32_t rcv_wnd_offered(const struct ust_tcb *t);

/* Linux's tcp_set_window_clamp: at least SOCK_MIN_RCVBUF / 2; 0 only
 * before connect or listen. Once the first window was chosen it is the
 * clamp itself, which later follows the buffer as Linux's does (the first
 * full segment, autotuning: measured on 6.18, a clamp of 5000 gives a
 * SYN with window 4380 and scale 0, then windows past it once data
 * flows). */
int tcp_set_window_clamp(struct ust_tcb *t, int val)
{
	uint32_t clamp = val < 1152 ? 1152u : (uint32_t)val, offered;

	if (!val) {
		if (t->state != UST_TCP_CLOSED)
			return -EINVAL;
		t->user_wnd_clamp = 0;
		return 0;
	}
	t->user_wnd_clamp = clamp;
	if (!t->rcv_wnd_clamp)
		return 0; /* the first window takes it */
	rcv_set_clamp(t, clamp);
	/* Growing, the window may open as far as it is offered now. */
	offered = rcv_wnd_offered(t) < t->rcv_wnd_clamp ? rcv_wnd_offered(t) : t->rcv_wnd_clamp;
	if (t->rcv_ssthresh < offered)
		t->rcv_ssthresh = offered;
	return 0;
}

/* ---- the receiver's round trip (Linux's rcv_rtt_est) ---- */

/* A smaller sample is believed at once. A larger one, from a timestamp
 * echo, is averaged in (1/8); from a window's worth of data it is not:
 * the sender may have been slow to fill it. */
static void rcv_rtt_update(struct ust_tcb *t, ust_time sample, bool from_window)
{
	if (!t->rcv_rtt || sample < t->rcv_rtt)
		t->rcv_rtt = sample;
	else if (!from_window)
		t->rcv_rtt = t->rcv_rtt - t->rcv_rtt / 8 + sample / 8;
}

/* Without timestamps: the time a window's worth of data takes to arrive
 * (tcp_rcv_rtt_measure). */
static void rcv_rtt_measure(struct ust_tcb *t, ust_time now)
{
	if (t->rcv_rtt_time) {
		if (seq_lt(t->rcv_nxt, t->rcv_rtt_seq))
			return;
		rcv_rtt_update(t, now > t->rcv_rtt_time ? now - t->rcv_rtt_time : 1, true);
	}
	t->rcv_rtt_seq = t->rcv_nxt + (t->rcv_adv - t->last_ack_sent);
	t->rcv_rtt_time = now ? now : 1;
}

/* With timestamps: a full segment's echo of our clock, once per echo
 * (tcp_rcv_rtt_measure_ts). Our clock ticks in milliseconds: a round trip
 * shorter than a tick gives no sample, as in Linux. */
static void rcv_rtt_measure_ts(struct ust_tcb *t, const struct ust_tcp_seg *seg, uint32_t len,
			       ust_time now)
{
	uint32_t delta;

	if (!t->ts_ok || !seg->opt.ts || !seg->opt.ts_ecr || seg->opt.ts_ecr == t->rcv_rtt_tsecr)
		return;
	t->rcv_rtt_tsecr = seg->opt.ts_ecr;
	if (len < t->rcv_seg_mss)
		return;
	delta = tcp_ts_now(t, now) - seg->opt.ts_ecr;
	if (delta > 0 && delta < (uint32_t)INT32_MAX / 1000)
		rcv_rtt_update(t, UST_MS(delta), false);
}

/* ---- when to ACK ---- */

static bool in_quickack_mode(const struct ust_tcb *t)
{
	return t->ack_quick && !tcp_in_pingpong_mode(t);
}

/* The window we last offered (Linux's rcv_wnd). */
static uint32_t rcv_wnd_offered(const struct ust_tcb *t)
{
	return t->rcv_adv - t->last_ack_sent;
}

/* Up to max quick ACKs, but no more than the window holds pairs of the
 * peer's segments (tcp_incr_quickack). */
static void incr_quickack(struct ust_tcb *t, unsigned max)
{
	unsigned mss = t->rcv_seg_mss ? t->rcv_seg_mss : TCP_MSS_DEFAULT;
	unsigned quick = rcv_wnd_offered(t) / (2u * mss);

	if (quick == 0)
		quick = 2;
	if (quick > max)
		quick = max;
	if (quick > t->ack_quick)
		t->ack_quick = (uint8_t)quick;
}

void tcp_enter_quickack_mode(struct ust_tcb *t, unsigned max_quickacks)
{
	incr_quickack(t, max_quickacks);
	t->ack_pingpong = 0;
	t->ack_ato = TCP_ATO_MIN;
}

/* The peer's segment size, learned from what it sends, and whether a
 * segment was small or pushed: the end of a write the sender may be
 * waiting on (tcp_measure_rcv_mss). Segments longer than the MSS we
 * announced are trains a receive offload joined: Linux then counts the
 * size they were cut to. */
static void measure_rcv_mss(struct ust_tcb *t, const struct ust_tcp_seg *seg)
{
	uint32_t hdr = UST_TCP_HLEN + (t->ts_ok ? TCP_TS_LEN : 0);
	uint32_t len = seg->len, lss = t->rcv_last_seg;

	t->rcv_last_seg = 0;
	if (len > t->rcv_mss)
		len = t->rcv_mss - (t->ts_ok ? TCP_TS_LEN : 0);
	if (len >= t->rcv_seg_mss) {
		if (len != t->rcv_seg_mss && t->rcv_scaling != TCP_MEASURED_SCALING_RATIO) {
			/* The first measure of a segment's cost: the window
			 * clamp follows the ratio (tcp_measure_rcv_mss). */
			t->rcv_scaling = TCP_MEASURED_SCALING_RATIO;
			rcv_set_clamp(t, win_from_space(t, t->rcvbuf_cap));
			if (t->rcv_wnd_clamp < t->rcvq_space)
				t->rcvq_space = t->rcv_wnd_clamp;
		}
		t->rcv_seg_mss = (uint16_t)(len < t->rcv_mss ? len : t->rcv_mss);
		if (seg->flags & UST_TH_PSH)
			t->ack_pushed |= UST_ACK_PUSHED;
		return;
	}
	/* Shorter than we thought a full segment was. It may still be the
	 * peer's full size if it is large, or unpushed and not tiny: two of
	 * the same size in a row set the size. */
	len += seg->hlen;
	if (len >= TCP_MSS_DEFAULT + UST_TCP_HLEN ||
	    (len >= TCP_MIN_MSS + UST_TCP_HLEN &&
	     !(seg->flags & (UST_TH_FIN | UST_TH_URG | UST_TH_SYN | UST_TH_PSH)))) {
		len = len > hdr ? len - hdr : 0;
		t->rcv_last_seg = (uint16_t)len;
		if (len == lss && len) {
			t->rcv_seg_mss = (uint16_t)len;
			return;
		}
	}
	if (t->ack_pushed & UST_ACK_PUSHED)
		t->ack_pushed |= UST_ACK_PUSHED2;
	t->ack_pushed |= UST_ACK_PUSHED;
}

/* The window may open further (tcp_grow_window): by two segments, or two
 * of this one, per segment, up to the clamp and the free space. While it
 * grows, every segment is ACKed at once, so the sender hears of it. */
static void grow_window(struct ust_tcb *t, uint32_t len)
{
	uint32_t free = t->rcv_wnd_clamp > t->rcvbuf.len ? t->rcv_wnd_clamp - t->rcvbuf.len : 0;
	uint32_t incr = 2 * (len > t->rcv_mss ? len : t->rcv_mss);

	if (free <= t->rcv_ssthresh)
		return;
	t->rcv_ssthresh += free - t->rcv_ssthresh < incr ? free - t->rcv_ssthresh : incr;
	t->ack_quick |= 1;
}

/* Out-of-order data was kept, some of it new: with SACK the window grows
 * for it as for in-order data (Linux's tcp_data_queue_ofo: "For non sack
 * flows, do not grow window to force DUPACK and trigger fast
 * retransmit"). Without this, a sender that does not slow down on loss
 * (BBR) found our window growing only as holes filled
 * (tests/seg/ofo-window.seg). Linux stops
 * the growth where the held segments' memory fills the buffer; ours at
 * the clamp less what is unread in order. */
void tcp_rcv_ofo_data(struct ust_tcb *t, uint32_t len)
{
	/* No least length here: Linux's 128-byte test is on the in-order
	 * path only (tcp_event_data_recv). */
	if (t->sack_ok)
		grow_window(t, len);
}

void tcp_rcv_data(struct ust_tcb *t, const struct ust_tcp_seg *seg, uint32_t len, ust_time now)
{
	t->ack_sched = true;
	measure_rcv_mss(t, seg);
	rcv_rtt_measure(t, now);
	rcv_rtt_measure_ts(t, seg, len, now);
	if (!t->ack_ato) {
		/* The first data: start in quick-ACK mode. */
		incr_quickack(t, TCP_MAX_QUICKACKS);
		t->ack_ato = TCP_ATO_MIN;
	} else {
		ust_time gap = now - t->ack_lrcvtime;
		if (gap <= TCP_ATO_MIN / 2) {
			t->ack_ato = t->ack_ato / 2 + TCP_ATO_MIN / 2;
		} else if (gap < t->ack_ato) {
			t->ack_ato = t->ack_ato / 2 + gap;
			if (t->ack_ato > t->rto)
				t->ack_ato = t->rto;
		} else if (gap > t->rto) {
			/* The sender was idle longer than a timeout: it
			 * restarts from a small window, ACK it quickly. */
			incr_quickack(t, TCP_MAX_QUICKACKS);
		}
	}
	t->ack_lrcvtime = now;
	if (len >= 128)
		grow_window(t, len);
}

/* Arms the delayed-ACK timer for ato, bounded by the round trip and
 * 200 ms; an earlier deadline stands, and one due within a quarter of ato
 * is met now (tcp_send_delayed_ack). */
static void send_delayed_ack(struct ust_tcb *t, ust_time now)
{
	ust_time ato = t->ack_ato, due;

	if (ato > TCP_DELACK_MIN) {
		ust_time max_ato = UST_MS(500);
		if (tcp_in_pingpong_mode(t) || (t->ack_pushed & UST_ACK_PUSHED))
			max_ato = TCP_DELACK_MAX;
		if (t->srtt) {
			ust_time rtt = t->srtt > TCP_DELACK_MIN ? t->srtt : TCP_DELACK_MIN;
			if (rtt < max_ato)
				max_ato = rtt;
		}
		if (ato > max_ato)
			ato = max_ato;
	}
	if (ato > TCP_DELACK_MAX)
		ato = TCP_DELACK_MAX;
	due = now + ato;
	if (t->timer[UST_TT_DELACK] != UST_TIME_NEVER) {
		if (t->timer[UST_TT_DELACK] <= now + ato / 4) {
			tcp_send_ack(t, now);
			return;
		}
		if (due > t->timer[UST_TT_DELACK])
			due = t->timer[UST_TT_DELACK];
	}
	tcp_timer_set(t, UST_TT_DELACK, due);
}

/* With data held out of order: the first three ACKs for the same RCV.NXT
 * go at once (the sender's duplicate-ACK threshold), later ones wait for
 * 5% of the round trip, so that a train beyond a hole draws one ACK with
 * the SACK blocks for all of it instead of one per segment (Linux's SACK
 * compression, __tcp_ack_snd_check; measured against Linux's receiver at
 * 5% loss: ours sent 1.7 times as many SACKs). Whether it held this one
 * back. */
static bool sack_compress(struct ust_tcb *t, ust_time now)
{
	ust_time rtt, delay;

	if (!t->sack_ok || t->ack_compressed >= TCP_COMP_SACK_NR)
		return false;
	if (t->ack_compressed_nxt != t->rcv_nxt) {
		t->ack_compressed_nxt = t->rcv_nxt;
		t->ack_dup_count = 0;
	}
	if (t->ack_dup_count < TCP_FASTRETRANS_THRESH) {
		t->ack_dup_count++;
		return false;
	}
	t->ack_compressed++;
	if (t->timer[UST_TT_SACK] != UST_TIME_NEVER)
		return true;
	/* 5% of the receiver's round trip, or the sender's where shorter,
	 * at most the cap. Linux's hrtimer fires within microseconds, the
	 * loop's timers at epoll's millisecond: a delay under the cap is this
	 * batch of frames's end (the loop's turn runs what is due), so the
	 * delay is the cap or nothing. */
	rtt = t->rcv_rtt;
	if (t->srtt && t->srtt < rtt)
		rtt = t->srtt;
	delay = rtt / 20 >= TCP_COMP_SACK_DELAY ? TCP_COMP_SACK_DELAY : 0;
	tcp_timer_set(t, UST_TT_SACK, now + delay);
	return true;
}

void tcp_ack_snd_check(struct ust_tcb *t, ust_time now)
{
	if (!t->ack_sched && !t->ack_now)
		return; /* the data we sent carried it */
	/* More than a full segment unacknowledged and the window moved on
	 * by as much (the reader keeps up), quick-ACK mode, or an ACK owed
	 * at once. */
	if (t->ack_now || in_quickack_mode(t) ||
	    (t->rcv_nxt - t->last_ack_sent > t->rcv_seg_mss &&
	     select_window(t) >= rcv_wnd_offered(t))) {
		tcp_send_ack(t, now);
		return;
	}
	if (!t->ofo.n) {
		send_delayed_ack(t, now);
		return;
	}
	if (!sack_compress(t, now))
		tcp_send_ack(t, now);
}

void tcp_sack_compress_timeout(struct ust_tcb *t, ust_time now)
{
	if (!t->ack_compressed)
		return;
	/* This one goes: it is not counted as held back. */
	t->ack_compressed--;
	tcp_send_ack(t, now);
}

void tcp_sack_compress_flush(struct ust_tcb *t, unsigned slot, ust_time now)
{
	/* Linux's TCP_SACK_BLOCKS_EXPECTED: an ACK with timestamps has room
	 * for three blocks, and ACKs get lost. */
	if (slot >= 2 && t->ack_compressed)
		tcp_sack_compress_timeout(t, now);
}

void tcp_delack_timeout(struct ust_tcb *t, ust_time now)
{
	if (!t->ack_sched)
		return;
	if (!tcp_in_pingpong_mode(t)) {
		/* The timer was too short to catch more data: wait longer
		 * next time, up to the RTO. */
		t->ack_ato = t->ack_ato * 2 < t->rto ? t->ack_ato * 2 : t->rto;
	} else {
		/* No reply came to carry the ACK: not interactive after all. */
		t->ack_pingpong = 0;
		t->ack_ato = TCP_ATO_MIN;
	}
	tcp_send_ack(t, now);
}

void tcp_ack_sent(struct ust_tcb *t)
{
	/* A buffer more than half full ends quick-ACK mode: the reader is
	 * not keeping up, ACKs would only tell of a closing window (Linux's
	 * __tcp_select_window). */
	if (t->rcvbuf.len > t->rcv_wnd_clamp / 2)
		t->ack_quick = 0;
	/* Each ACK of new data uses up one quick ACK (tcp_dec_quickack_mode);
	 * leaving quick-ACK mode restarts ato. */
	if (t->ack_quick) {
		if (t->ack_sched && t->ack_quick > 1) {
			t->ack_quick--;
		} else if (t->ack_sched) {
			t->ack_quick = 0;
			t->ack_ato = TCP_ATO_MIN;
		}
	}
	t->ack_sched = false;
	t->ack_now = false;
	t->ack_pushed = 0;
	tcp_timer_stop(t, UST_TT_DELACK);
	/* The ACKs held back for data out of order: this one said it all.
	 * (The timer too: a flush of one held ACK counted it off first.) */
	if (t->ack_compressed) {
		tcp_count_n(t->tcp, UST_EV_TCP_ACK_COMPRESSED, t->ack_compressed);
		t->ack_compressed = 0;
	}
	if (t->timer[UST_TT_SACK] != UST_TIME_NEVER)
		tcp_timer_stop(t, UST_TT_SACK);
}

void tcp_data_sent(struct ust_tcb *t, ust_time now)
{
	if (t->ack_ato && now - t->ack_lrcvtime < t->ack_ato && t->ack_pingpong < UINT8_MAX)
		t->ack_pingpong++;
}

/* ---- the reader ---- */

/* Once per receiver round trip: if the reader took more than ever before
 * in one, the buffer grows to let the sender double that (Linux's
 * tcp_rcv_space_adjust, dynamic right-sizing). What is still queued was
 * not read. */
static void rcv_space_adjust(struct ust_tcb *t, ust_time now)
{
	int64_t copied;

	if (!t->rcv_rtt || now - t->rcvq_time < t->rcv_rtt)
		return;
	copied = (int64_t)(uint32_t)(t->copied_seq - t->rcvq_seq) - t->rcvbuf.len;
	if (copied > t->rcvq_space)
		tcp_rcvbuf_grow(t, (uint32_t)copied);
	t->rcvq_seq = t->copied_seq;
	t->rcvq_time = now;
}

/* After a read (tcp_cleanup_rbuf): ACK if more than a full segment waits
 * for one, or if the reader drained the buffer and a small or pushed
 * segment is unacknowledged (not in interactive mode, unless two came);
 * or if the window, fallen to half or less, can now at least double. */
static void cleanup_rbuf(struct ust_tcb *t, uint32_t copied, ust_time now)
{
	bool ack = false;

	if (t->ack_sched) {
		bool drained = t->rcvbuf.len == 0 && t->ofo.n == 0;
		bool pushed = (t->ack_pushed & UST_ACK_PUSHED2) ||
			      ((t->ack_pushed & UST_ACK_PUSHED) && !tcp_in_pingpong_mode(t));
		ack = t->rcv_nxt - t->last_ack_sent > t->rcv_seg_mss || (copied && pushed && drained);
	}
	if (copied && !ack && !t->fin_rcvd && !t->rd_shut) {
		uint32_t left = seq_gt(t->rcv_adv, t->rcv_nxt) ? t->rcv_adv - t->rcv_nxt : 0;
		if (2 * left <= t->rcv_wnd_clamp) {
			uint32_t wnd = select_window(t);
			ack = wnd && wnd >= 2 * left;
		}
	}
	if (ack)
		tcp_send_ack(t, now);
}

void tcp_ring_shed(struct ust_tcb *t, struct ust_ring *r)
{
	if (r->len || !r->mem)
		return;
	if (r->size <= TCP_RING_SHED_MAX || t->state == UST_TCP_TIME_WAIT || t->state == UST_TCP_CLOSED) {
		ust_ring_shed(r);
		return;
	}
	/* Grown, and drained now: it goes once it stays so (tcp_rings_idle).
	 * Meanwhile what comes next is written from its start again, in
	 * pages written before, not on around the ring into pages that may
	 * never have been (tcp_buf.h: a page fault each). */
	ust_ring_rewind(r);
	t->ring_drained = t->tcp->now;
	if (t->timer[UST_TT_SHED] == UST_TIME_NEVER)
		tcp_timer_set(t, UST_TT_SHED, t->ring_drained + TCP_RING_SHED_IDLE);
}

void tcp_rings_idle(struct ust_tcb *t, ust_time now)
{
	/* Drained again since the timer was set: the flow goes on. (A
	 * drain may be stamped a little after this turn's now.) */
	if (t->ring_drained + TCP_RING_SHED_IDLE > now) {
		tcp_timer_set(t, UST_TT_SHED, t->ring_drained + TCP_RING_SHED_IDLE);
		return;
	}
	/* A ring that took bytes since it drained holds them still, or
	 * drained once more (above). */
	ust_ring_shed(&t->sndbuf);
	if (!t->ofo.n)
		ust_ring_shed(&t->rcvbuf);
}

void tcp_rcvbuf_shed(struct ust_tcb *t)
{
	if (!t->ofo.n)
		tcp_ring_shed(t, &t->rcvbuf);
}

void tcp_rcv_consumed(struct ust_tcb *t, uint32_t n, ust_time now)
{
	t->copied_seq += n;
	tcp_rcvbuf_shed(t);
	if (!UST_TCP_SYNCHRONIZED(t->state) || t->state == UST_TCP_TIME_WAIT)
		return;
	rcv_space_adjust(t, now);
	cleanup_rbuf(t, n, now);
}

void tcp_set_quickack(struct ust_tcb *t, int val, ust_time now)
{
	/* 0: interactive, delay ACKs. 1: not interactive, and an ACK owed
	 * goes now if the reader has drained what it covers; an even value
	 * above 1 does that and stays interactive (Linux's
	 * __tcp_sock_set_quickack). */
	if (!val) {
		t->ack_pingpong = TCP_PINGPONG_THRESH;
		return;
	}
	t->ack_pingpong = 0;
	if ((t->state == UST_TCP_ESTABLISHED || t->state == UST_TCP_CLOSE_WAIT) && t->ack_sched) {
		t->ack_pushed |= UST_ACK_PUSHED;
		cleanup_rbuf(t, 1, now);
		if (!(val & 1))
			t->ack_pingpong = TCP_PINGPONG_THRESH;
	}
}

/* ---- the window ---- */

/* The window the buffer allows now (Linux's __tcp_select_window): the free
 * space, no more than the data so far has shown the sender needs
 * (rcv_ssthresh). Receiver silly-window avoidance (RFC 9293 §3.8.6.2.2)
 * as Linux does it: once the buffer is half full, a free space below a
 * segment or a sixteenth of the buffer offers nothing; unscaled, the
 * window is whole segments and changes only when the free space moved by
 * a segment from it; scaled, it is rounded up to the scale's unit. */
static uint32_t select_window(const struct ust_tcb *t)
{
	uint32_t full = t->rcv_wnd_clamp;
	uint32_t free = full > t->rcvbuf.len ? full - t->rcvbuf.len : 0;
	uint32_t mss = t->rcv_seg_mss ? t->rcv_seg_mss : t->rcv_mss;
	uint32_t unit = (uint32_t)1 << t->rcv_wscale, wnd;

	if (mss > full)
		mss = full;
	if (!mss)
		return 0;
	if (free < full / 2) {
		free &= ~(unit - 1);
		if (free < full / 16 || free < mss)
			return 0;
	}
	if (free > t->rcv_ssthresh)
		free = t->rcv_ssthresh;
	if (t->rcv_wscale)
		return (free + unit - 1) & ~(unit - 1);
	wnd = rcv_wnd_offered(t);
	if (wnd + mss <= free || wnd > free)
		wnd = free / mss * mss;
	else if (mss == full && free > wnd + full / 2)
		wnd = free;
	return wnd;
}

uint32_t tcp_rcv_window(const struct ust_tcb *t)
{
	uint32_t left = seq_gt(t->rcv_adv, t->rcv_nxt) ? t->rcv_adv - t->rcv_nxt : 0;
	uint32_t unit = (uint32_t)1 << t->rcv_wscale;
	uint32_t wnd = select_window(t);

	/* The right edge never moves left (RFC 9293 §3.8.6.2.2 "shrinking
	 * the window"): what is left of the last offer stands. */
	if (wnd < left)
		wnd = (left + unit - 1) & ~(unit - 1);
	return wnd < wnd_max(t) ? wnd : wnd_max(t);
}

void tcp_init_buffer_space(struct ust_tcb *t, ust_time now)
{
	uint32_t hint = t->rcv_mss < t->mss ? t->rcv_mss : t->mss;
	/* Ten of the segments we asked for, as they come: with timestamps
	 * each carries 12 bytes of options less (Linux's advmss). */
	uint32_t ten = TCP_INIT_CWND * (t->rcv_mss - (t->ts_ok ? TCP_TS_LEN : 0));

	tcp_sndbuf_expand(t);
	t->copied_seq = t->rcv_nxt - t->rcvbuf.len;
	t->rcvq_seq = t->copied_seq;
	t->rcvq_time = now;
	if (t->rcv_ssthresh > t->rcv_wnd_clamp)
		t->rcv_ssthresh = t->rcv_wnd_clamp;
	t->rcvq_space = t->rcv_ssthresh < ten ? t->rcv_ssthresh : ten;
	/* Until the peer's segments show their size, assume the smallest
	 * every host takes (tcp_initialize_rcv_mss): 536. */
	if (hint > rcv_wnd_offered(t) / 2)
		hint = rcv_wnd_offered(t) / 2;
	if (hint > TCP_MSS_DEFAULT)
		hint = TCP_MSS_DEFAULT;
	t->rcv_seg_mss = (uint16_t)(hint > TCP_MIN_MSS ? hint : TCP_MIN_MSS);
	t->ack_lrcvtime = now;
}

/* ---- out-of-order data ---- */

unsigned tcp_ofo_max(const struct ust_tcb *t)
{
	return t->rcv_wnd_clamp / 128 + 16;
}

/* The ranges of seqs[0..n), as indices into ofo, each once, at most 4. */
static unsigned sack_ranges(const struct ust_tcb *t, const uint32_t *seqs, unsigned n, int idx[4])
{
	unsigned out = 0;

	for (unsigned i = 0; i < n && out < 4; i++) {
		int j = ust_seqset_find(&t->ofo, seqs[i]);
		bool dup = j < 0;
		for (unsigned k = 0; k < out && !dup; k++)
			dup = idx[k] == j;
		if (!dup)
			idx[out++] = j;
	}
	return out;
}

unsigned tcp_sack_recent(const struct ust_tcb *t, int idx[4])
{
	return sack_ranges(t, t->sack_recent, t->nsack_recent, idx);
}

unsigned tcp_sack_slot(const struct ust_tcb *t, uint32_t seq, uint32_t end, bool *extends)
{
	unsigned live = 0;

	/* As Linux's tcp_sack_extend: a block it overlaps or touches. The
	 * ranges gone since (now in order) are not blocks any more, as
	 * Linux's tcp_sack_remove drops them. */
	*extends = false;
	for (unsigned i = 0; i < t->nsack_recent; i++) {
		int j = ust_seqset_find(&t->ofo, t->sack_recent[i]);
		if (j < 0)
			continue;
		if (!seq_gt(seq, t->ofo.r[j].end) && !seq_gt(t->ofo.r[j].start, end)) {
			*extends = true;
			break;
		}
		live++;
	}
	return live;
}

void tcp_sack_note(struct ust_tcb *t, uint32_t seq)
{
	uint32_t seqs[5] = { seq };
	int idx[4];
	unsigned n;

	/* The block holding the newest segment comes first (RFC 2018 §4);
	 * then the blocks reported lately that are still held, each once
	 * (two may have merged since). */
	memcpy(&seqs[1], t->sack_recent, t->nsack_recent * sizeof(seqs[0]));
	n = sack_ranges(t, seqs, t->nsack_recent + 1u, idx);
	for (unsigned i = 0; i < n; i++)
		t->sack_recent[i] = t->ofo.r[idx[i]].start;
	t->nsack_recent = (uint8_t)n;
}
