/* A model flow for the BBR modules' unit tests (test_tcp_bbr.c, v1;
 * test_tcp_bbr3.c, the draft), driven through struct tcp_cc as the engine
 * drives it: a bulk sender paced at t->pacing_rate and held to snd_cwnd, a
 * bottleneck of fixed rate with a FIFO queue, a fixed propagation delay,
 * one ACK per segment with its delivery-rate sample built as tcp_rate.c
 * builds it, and every n-th segment dropped if asked (its loss found at
 * once, as RACK would a little later). A trace records the states a run
 * went through. Included by one test file each: everything is static. */
#ifndef USTCP_TESTS_BBR_MODEL_H
#define USTCP_TESTS_BBR_MODEL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tcp_impl.h"

#define MSS 1448
#define MAX_FLIGHT 8192

/* One segment in the model's network. */
struct seg {
	ust_time sent, ack_at;
	uint64_t delivered;          /* the sender's snapshot (tcp_rate_sent) */
	ust_time delivered_time, first_tx_time;
	uint32_t tx_in_flight, lost;
	uint64_t index;
	bool app_limited, dropped;
};

struct flow {
	struct ust_tcb t;
	struct ust_tcp tcp;          /* only its clock: the algorithm's init reads it */
	ust_time now;
	ust_time rtt;                /* propagation, both ways */
	ust_time tx_us;              /* the bottleneck's time per segment */
	ust_time link_free;          /* when the bottleneck is free again */
	uint64_t next_send_ns;       /* pacing */
	struct seg q[MAX_FLIGHT];    /* in flight, in sending order */
	uint32_t head, n;
	uint64_t sent;               /* segments sent */
	uint64_t recover;            /* recovery ends when this one is delivered */
	unsigned drop_every;         /* drop every n-th segment from drop_from on (0: none) */
	uint64_t drop_from;
	uint32_t pending_losses;     /* marked lost since the last ACK */
	unsigned rounds;             /* ACKs that started a BBR round, seen from outside */
};

static void flow_init(struct flow *f, const struct tcp_cc *cc, ust_time rtt, ust_time tx_us)
{
	memset(f, 0, sizeof(*f));
	f->t.cc = cc;
	f->t.state = UST_TCP_ESTABLISHED;
	f->t.mss = MSS;
	f->t.sack_ok = true;
	f->t.snd_cwnd = TCP_INIT_CWND;
	f->t.snd_ssthresh = TCP_INFINITE_SSTHRESH;
	f->t.snd_cwnd_clamp = 1u << 20;
	f->t.max_pacing_rate = UINT64_MAX; /* no SO_MAX_PACING_RATE (tcp_tcb_init's) */
	f->t.srtt = rtt; /* the handshake's sample */
	f->t.iss = 12345;
	f->rtt = rtt;
	f->tx_us = tx_us;
	f->now = UST_SEC(1);
	f->tcp.now = f->now;
	f->t.tcp = &f->tcp;
	f->t.cc->init(&f->t);
}

static struct tcp_bbr_info info(const struct flow *f)
{
	struct tcp_bbr_info i;

	assert_true(tcp_bbr_get_info(&f->t, &i));
	return i;
}

static uint32_t in_flight(const struct flow *f) { return tcp_packets_in_flight(&f->t); }

/* Sends one segment now: the rate sample's snapshot, the pacing clock,
 * the bottleneck's queue. */
static void send_one(struct flow *f)
{
	struct ust_tcb *t = &f->t;
	struct seg *s = &f->q[(f->head + f->n) % MAX_FLIGHT];
	ust_time depart;

	if (!t->packets_out) {
		t->first_tx_time = f->now;
		t->delivered_time = f->now;
	}
	t->packets_out++;
	f->n++;
	*s = (struct seg){
		.sent = f->now, .delivered = t->delivered, .delivered_time = t->delivered_time,
		.first_tx_time = t->first_tx_time, .tx_in_flight = in_flight(f),
		.lost = (uint32_t)t->lost, .index = f->sent++, .app_limited = t->app_limited != 0,
	};
	s->dropped = f->drop_every && s->index >= f->drop_from && s->index % f->drop_every == 0;
	depart = (f->link_free > f->now ? f->link_free : f->now) + f->tx_us;
	if (!s->dropped)
		f->link_free = depart;
	s->ack_at = depart + f->rtt;
	if (t->pacing_rate) {
		uint64_t now_ns = f->now * 1000;
		if (f->next_send_ns < now_ns)
			f->next_send_ns = now_ns;
		f->next_send_ns += (uint64_t)MSS * 1000000000u / t->pacing_rate;
	}
	t->is_cwnd_limited = in_flight(f) >= t->snd_cwnd;
}

/* The head segment's ACK (or, dropped, its loss found at once, as RACK
 * would a little later): the sample, recovery, the algorithm. */
static void ack_one(struct flow *f)
{
	struct ust_tcb *t = &f->t;
	struct seg s = f->q[f->head];
	struct tcp_rate_sample rs = { .prior_in_flight = in_flight(f) };
	ust_time snd, ack;
	uint64_t prior_delivered = t->delivered;

	f->now = s.ack_at;
	f->head = (f->head + 1) % MAX_FLIGHT;
	f->n--;
	t->packets_out--;
	if (s.dropped) {
		struct tcp_sent r = { .tx_in_flight = s.tx_in_flight, .lost = s.lost,
				      .app_limited = s.app_limited };
		t->lost++;
		f->pending_losses++;
		if (t->cc->marked_lost)
			t->cc->marked_lost(t, &r, f->now);
		if (t->ca_state != TCP_CA_RECOVERY) {
			t->snd_ssthresh = t->cc->ssthresh(t);
			tcp_set_ca_state(t, TCP_CA_RECOVERY);
			f->recover = f->sent;
		}
		return;
	}
	t->delivered++;
	snd = s.sent - s.first_tx_time;
	ack = f->now - s.delivered_time;
	t->first_tx_time = s.sent;
	t->delivered_time = f->now;
	if (t->app_limited && t->delivered > t->app_limited)
		t->app_limited = 0;
	rs.prior_delivered = s.delivered;
	rs.prior_time = s.delivered_time;
	rs.delivered = (int64_t)(t->delivered - s.delivered);
	rs.interval = snd > ack ? snd : ack;
	rs.rtt = f->now - s.sent;
	rs.acked_sacked = (uint32_t)(t->delivered - prior_delivered);
	rs.losses = f->pending_losses;
	rs.tx_in_flight = s.tx_in_flight;
	rs.prior_lost = s.lost;
	rs.lost = (uint32_t)t->lost - s.lost;
	rs.is_app_limited = s.app_limited;
	f->pending_losses = 0;
	if (t->ca_state == TCP_CA_RECOVERY && s.index >= f->recover)
		tcp_set_ca_state(t, TCP_CA_OPEN);
	t->cc->cong_control(t, &rs, f->now);
}

/* Runs the flow until `until`, calling see() after every ACK. */
static void flow_run(struct flow *f, ust_time until, void (*see)(struct flow *, void *), void *arg)
{
	while (f->now < until) {
		ust_time next_ack = f->n ? f->q[f->head].ack_at : UST_TIME_NEVER;
		ust_time next_send = (ust_time)((f->next_send_ns + 999) / 1000);
		bool can_send = in_flight(f) < f->t.snd_cwnd && f->n < MAX_FLIGHT;
		if (can_send && next_send <= next_ack) {
			if (next_send > f->now)
				f->now = next_send;
			send_one(f);
			continue;
		}
		assert_true(next_ack != UST_TIME_NEVER);
		ack_one(f);
		if (see)
			see(f, arg);
	}
}

/* The pacing rate is the model's bandwidth times the gain, 1% below. */
static void assert_pacing_follows_bw(const struct flow *f)
{
	struct tcp_bbr_info i = info(f);
	double want = (double)i.bw * i.pacing_gain / 256 * 0.99;

	if (!i.bw)
		return;
	assert_true(f->t.pacing_rate >= want * 0.98 && f->t.pacing_rate <= want * 1.02 + 1);
}

/* What a run saw of the states, in order. */
struct trace {
	const char *states[64];
	ust_time at[64];
	unsigned n;
	uint64_t max_bw_at_exit;
	uint32_t inflight_at_drain_exit, bdp_at_drain_exit;
	bool pacing_checked;
	uint32_t max_cwnd_in_probe_rtt;
	ust_time probe_rtt_start, probe_rtt_end;
};

static void watch(struct flow *f, void *arg)
{
	struct trace *tr = arg;
	struct tcp_bbr_info i = info(f);

	if (!tr->n || strcmp(tr->states[tr->n - 1], i.state) != 0) {
		if (tr->n && strcmp(tr->states[tr->n - 1], "drain") == 0) {
			tr->inflight_at_drain_exit = in_flight(f);
			tr->bdp_at_drain_exit = i.bdp;
		}
		if (strcmp(i.state, "probe_rtt") == 0)
			tr->probe_rtt_start = f->now;
		else if (tr->n && strcmp(tr->states[tr->n - 1], "probe_rtt") == 0 && !tr->probe_rtt_end)
			tr->probe_rtt_end = f->now;
		if (getenv("BBR_TRACE"))
			fprintf(stderr, "%8.3f %-16s cwnd %u inflight %u bw %llu min_rtt %u bdp %u pacing %llu\n",
				(double)(f->now - UST_SEC(1)) / 1e6, i.state, f->t.snd_cwnd, in_flight(f),
				(unsigned long long)i.bw, i.min_rtt, i.bdp, (unsigned long long)f->t.pacing_rate);
		if (tr->n < 64) {
			tr->states[tr->n] = i.state;
			tr->at[tr->n] = f->now;
			tr->n++;
		}
	}
	/* Every state's pacing gain, applied to the model's bandwidth (in
	 * Startup the rate only rises, which it does while bw grows). */
	if (strcmp(i.state, "startup") != 0 || i.full_bw_reached) {
		assert_pacing_follows_bw(f);
		tr->pacing_checked = true;
	}
	if (strcmp(i.state, "probe_rtt") == 0 && !tr->probe_rtt_end) {
		if (f->t.snd_cwnd > tr->max_cwnd_in_probe_rtt)
			tr->max_cwnd_in_probe_rtt = f->t.snd_cwnd;
	}
}

static unsigned find(const struct trace *tr, const char *state, unsigned from)
{
	for (unsigned i = from; i < tr->n; i++)
		if (strcmp(tr->states[i], state) == 0)
			return i;
	return UINT32_MAX;
}

#endif
