/* Runs a stack on its link inside a libev loop: the packet socket's
 * readiness drives input, one timer drives the stack's timers, and every
 * callback ends by flushing what the stack queued for sending. The watchers
 * live in this struct (libev's advice), so nothing here allocates. */
#ifndef USTCP_LOOP_H
#define USTCP_LOOP_H

#include <ev.h>

#include "link.h"
#include "stack.h"

struct ust_loop {
	struct ev_loop *ev;
	ev_io rx;
	ev_timer timer;
	ust_time timer_due;
	struct ust_stack *st;
	struct ust_link *link;
};

/* The monotonic clock the stack runs on, in microseconds. */
ust_time ust_now(void);

void ust_loop_start(struct ust_loop *l, struct ev_loop *ev, struct ust_stack *st, struct ust_link *link);
void ust_loop_stop(struct ust_loop *l);
/* After anything touched the stack outside the loop's own callbacks (a user
 * call): send what it queued and re-arm the timer. */
void ust_loop_kick(struct ust_loop *l, ust_time now);

#endif
