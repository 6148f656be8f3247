#include <errno.h>
#include <sched.h>
#include <time.h>

#include "log.h"
#include "config.h"
#include "loop.h"

/* Batches per readiness callback: enough to drain a burst, few enough that
 * timers and other watchers are not starved under load. */
#define RX_BATCHES_PER_WAKEUP 8
/* Turns of datagrams to our own address per kick (ust_loop_kick). */
#define LOOP_TURNS_PER_KICK 16

ust_time ust_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ust_time)ts.tv_sec * 1000000u + (ust_time)ts.tv_nsec / 1000u;
}

static void arm_timer(struct ust_loop *l, ust_time due, ust_time now)
{
	if (due == l->timer_due)
		return;
	l->timer_due = due;
	ev_timer_stop(l->ev, &l->timer);
	if (due == UST_TIME_NEVER)
		return;
	ev_timer_set(&l->timer, due > now ? (double)(due - now) / 1e6 : 0., 0.);
	ev_timer_start(l->ev, &l->timer);
}

void ust_loop_kick(struct ust_loop *l, ust_time now)
{
	ust_time due;

	l->kicks++;
	if (l->rx_gen != l->link->fd_gen) {
		/* Another socket took the link's number (ring_switch): the
		 * number watched again, which libev takes for a new file
		 * (ev_io_set marks it so). */
		l->rx_gen = l->link->fd_gen;
		ev_io_stop(l->ev, &l->rx);
		ev_io_set(&l->rx, l->link->fd, EV_READ);
		ev_io_start(l->ev, &l->rx);
	}
	for (unsigned turn = 0;; turn++) {
		due = ust_stack_timers(l->st, now);
		if (l->tcp)
			due = ust_time_min(due, ust_tcp_timers(l->tcp, now));
		if (l->after)
			l->after(l, now);
		ust_stack_flush(l->st);
		/* What the user side did may have set timers. */
		if (l->tcp)
			due = ust_time_min(due, ust_tcp_timers(l->tcp, now));
		ust_stack_flush(l->st);
		/* Datagrams to our own address, and the answers they draw, a
		 * turn each (a connection to ourselves: its SYN, SYN-ACK and
		 * ACK are three turns), a bounded number of turns per kick;
		 * the timer brings the next kick at once for the rest. */
		if (!ust_stack_loop_pending(l->st))
			break;
		if (turn == LOOP_TURNS_PER_KICK) {
			due = now;
			break;
		}
		ust_stack_loop(l->st, now);
	}
	arm_timer(l, due, now);
}

static void on_rx(struct ev_loop *ev, ev_io *w, int revents)
{
	struct ust_loop *l = ust_container_of(w, struct ust_loop, rx);
	ust_time now = ust_now();
	int r = ust_link_rx(l->link, l->st, now, RX_BATCHES_PER_WAKEUP);

	if (r < 0) {
		ust_log(UST_LOG_ERROR, "link %s: receive failed: %s", l->link->ifname,
			r == -ENETDOWN ? "interface is down" : "error");
	}
	ust_loop_kick(l, now);
}

static void on_arp(struct ev_loop *ev, ev_io *w, int revents)
{
	struct ust_loop *l = ust_container_of(w, struct ust_loop, arp);

	ust_link_rx_arp(l->link, l->st, ust_now());
	ust_loop_kick(l, ust_now());
}

static void on_timer(struct ev_loop *ev, ev_timer *w, int revents)
{
	struct ust_loop *l = ust_container_of(w, struct ust_loop, timer);

	l->timer_due = UST_TIME_NEVER;
	ust_loop_kick(l, ust_now());
}

bool ust_may_spin(void)
{
	cpu_set_t set;

	return sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 1;
}

/* Busy polling, as Linux's net.core.busy_poll does for a poller: after a
 * wake-up, instead of going back to sleep in epoll_wait at once, look again
 * without sleeping (epoll_wait with a zero timeout, through libev, which
 * also runs what falls due) until busy_poll_us passed without anything to
 * do. A frame the peer sends meanwhile is taken without the wake-up of a
 * sleeping thread (an interrupt and a switch, or a cross-CPU IPI). Every
 * turn yields the CPU: the program thread the last turn woke may share it
 * (a program pinned to one CPU pins this thread too) and must not wait for
 * the spin to end; and a thread allowed on one CPU only does not spin at
 * all (measured with the fastpath bench, program and stack pinned to CPU 0:
 * p50 8.3 us without spinning, 11.0 us with; the yield does not hand the
 * CPU over soon enough). An idle stack sleeps: each wake-up buys one spin. */
static void busy_spin(struct ust_loop *l, unsigned us, bool calls_only)
{
	unsigned seen = l->kicks;
	ust_time end = ust_now() + us;

	if (!ust_may_spin())
		return;
	l->st->ctr.event[UST_EV_LOOP_SPINS]++;

	while (l->running) {
		ust_time now;
		l->linger = false;
		ev_run(l->ev, EVRUN_NOWAIT);
		now = ust_now();
		if (calls_only ? l->linger : l->kicks != seen) {
			seen = l->kicks;
			end = now + us;
		} else if (now >= end) {
			return;
		}
		sched_yield();
	}
}

/* Lingering: a program that makes one call often makes another right
 * after it (socket, its options, connect: six in a curl), and each found
 * the thread asleep again, a wake-up apart (10 to 40 us here). Without
 * busy polling, the spin after a wake-up that served calls takes the next
 * one without it; only another call extends it (frames, timers and pokes
 * do not: a flow is not busy-polled for a call made before it). */
void ust_loop_run(struct ust_loop *l)
{
	l->running = true;
	while (l->running && ev_run(l->ev, EVRUN_ONCE)) {
		bool linger = l->linger;
		l->linger = false;
		if (l->busy_poll_us)
			busy_spin(l, l->busy_poll_us, false);
		else if (linger && l->linger_us)
			busy_spin(l, l->linger_us, true);
	}
}

void ust_loop_break(struct ust_loop *l)
{
	l->running = false;
	ev_break(l->ev, EVBREAK_ALL);
}

void ust_loop_start(struct ust_loop *l, struct ev_loop *ev, struct ust_stack *st, struct ust_link *link,
		    struct ust_tcp *tcp)
{
	l->ev = ev;
	l->st = st;
	l->link = link;
	l->tcp = tcp;
	l->timer_due = UST_TIME_NEVER;
	l->linger_us = UST_CALL_SPIN_DEFAULT;
	ev_io_init(&l->rx, on_rx, link->fd, EV_READ);
	l->rx_gen = link->fd_gen;
	/* Frames that arrived before a timer fell due are handled before
	 * it: libev runs the pending watchers of one priority in reverse
	 * order of queueing, timers (queued after the poll) first. A loaded
	 * stack thread would otherwise send a loss probe or a retransmission
	 * for data whose ACK is already waiting in the socket, and answer the
	 * peer's next segment for a connection that ended with that ACK with
	 * a RST. */
	ev_set_priority(&l->rx, UST_LOOP_PRI_FRAMES);
	ev_timer_init(&l->timer, on_timer, 0., 0.);
	ev_io_start(ev, &l->rx);
	ev_io_init(&l->arp, on_arp, link->arp_fd, EV_READ);
	ev_set_priority(&l->arp, UST_LOOP_PRI_FRAMES);
	if (link->arp_fd >= 0)
		ev_io_start(ev, &l->arp);
	ust_loop_kick(l, ust_now());
}

void ust_loop_stop(struct ust_loop *l)
{
	ev_io_stop(l->ev, &l->rx);
	ev_io_stop(l->ev, &l->arp);
	ev_timer_stop(l->ev, &l->timer);
	ust_stack_flush(l->st);
}
