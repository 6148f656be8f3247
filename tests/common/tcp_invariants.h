/* The invariants that hold between the fields of every TCP control block
 * and the tables that hold them, checked from outside the engine: by the
 * fuzzer after every operation and by the segment-script driver after every
 * script line. */
#ifndef USTCP_TESTS_TCP_INVARIANTS_H
#define USTCP_TESTS_TCP_INVARIANTS_H

#include <stdbool.h>
#include <stddef.h>

#include "tcp.h"

/* Checks every control block in tcp's table, the timer heap, the listeners'
 * queues and the stack's packet buffers (all back in the pool, nothing left
 * in the transmit queue: call it after a flush). True if all hold; otherwise
 * false, with msg naming the first invariant broken and the block. */
bool tcp_invariants_check(const struct ust_tcp *tcp, char *msg, size_t len);

/* Is t a block in tcp's table (alive)? */
bool tcp_invariants_holds(const struct ust_tcp *tcp, const struct ust_tcb *t);

#endif
