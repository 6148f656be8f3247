/* Runs a stack on its link inside a libev loop: the packet socket's
 * readiness drives input, one timer drives the stack's timers, and every
 * callback ends by flushing what the stack queued for sending. The watchers
 * live in this struct (libev's advice), so nothing here allocates. */
#ifndef USTCP_LOOP_H
#define USTCP_LOOP_H

#include <ev.h>

#include "link.h"
#include "stack.h"
#include "tcp.h"

/* libev priorities: the frames' watchers (the link's, and those of frames
 * from other stacks on the address) above everything but the program's
 * hang-ups (stackthread/start.c), which must be seen before a frame read
 * in the same turn. */
#define UST_LOOP_PRI_HANGUP EV_MAXPRI
#define UST_LOOP_PRI_FRAMES (EV_MAXPRI - 1)

struct ust_loop {
	struct ev_loop *ev;
	ev_io rx;
	unsigned rx_gen;            /* the link's fd_gen rx watches */
	ev_io arp;                  /* the link's ARP socket, when it has one */
	ev_timer timer;
	ust_time timer_due;
	struct ust_stack *st;
	struct ust_link *link;
	struct ust_tcp *tcp;        /* NULL: no TCP on this stack */
	/* Called after input or timers ran, before frames are flushed: where
	 * the user side acts on the events TCP reported meanwhile (calling
	 * back into TCP from inside its event callback would re-enter it). */
	void (*after)(struct ust_loop *l, ust_time now);
	void *ctx;
	/* Busy polling (USTCP_BUSY_POLL): how long after the last work to
	 * keep looking for more without sleeping; 0 when off. */
	unsigned busy_poll_us;
	/* Set by a callback that served the program's calls: without busy
	 * polling, look again for linger_us before sleeping, as long as
	 * calls keep coming (ust_loop_run); linger_us 0: never
	 * (USTCP_CALL_SPIN; ust_loop_start sets config.h's
	 * UST_CALL_SPIN_DEFAULT). */
	bool linger;
	unsigned linger_us;
	unsigned kicks;             /* ust_loop_kick calls: work was done */
	bool running;               /* ust_loop_run until ust_loop_break */
};


/* The monotonic clock the stack runs on, in microseconds. */
ust_time ust_now(void);

/* tcp may be NULL; set l->after and l->ctx before or after starting. */
void ust_loop_start(struct ust_loop *l, struct ev_loop *ev, struct ust_stack *st, struct ust_link *link,
		    struct ust_tcp *tcp);
void ust_loop_stop(struct ust_loop *l);
/* After anything touched the stack outside the loop's own callbacks (a user
 * call): send what it queued and re-arm the timer. */
void ust_loop_kick(struct ust_loop *l, ust_time now);
/* Runs the loop until ust_loop_break. With l->busy_poll_us set, every
 * wake-up is followed by polling without sleeping until that long passed
 * with nothing to do. */
void ust_loop_run(struct ust_loop *l);
void ust_loop_break(struct ust_loop *l);
/* Whether busy polling can pay on the calling thread: not when it may run
 * on one CPU only, which its spin would take from whatever it waits for. */
bool ust_may_spin(void);

#endif
