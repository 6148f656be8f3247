/* Sequence-number arithmetic (RFC 9293 §3.4): 32-bit numbers compared modulo
 * 2^32. Never compare sequence numbers with < or >: use these. */
#ifndef USTCP_TCP_SEQ_H
#define USTCP_TCP_SEQ_H

#include <stdint.h>
#include <stdbool.h>

static inline int32_t seq_diff(uint32_t a, uint32_t b) { return (int32_t)(a - b); }
static inline bool seq_lt(uint32_t a, uint32_t b) { return seq_diff(a, b) < 0; }
static inline bool seq_leq(uint32_t a, uint32_t b) { return seq_diff(a, b) <= 0; }
static inline bool seq_gt(uint32_t a, uint32_t b) { return seq_diff(a, b) > 0; }
static inline bool seq_geq(uint32_t a, uint32_t b) { return seq_diff(a, b) >= 0; }
/* lo <= x < hi */
static inline bool seq_in(uint32_t x, uint32_t lo, uint32_t hi)
{
	return x - lo < hi - lo;
}
/* lo <= x <= hi */
static inline bool seq_between(uint32_t x, uint32_t lo, uint32_t hi)
{
	return x - lo <= hi - lo;
}
static inline uint32_t seq_max(uint32_t a, uint32_t b) { return seq_gt(a, b) ? a : b; }
static inline uint32_t seq_min(uint32_t a, uint32_t b) { return seq_lt(a, b) ? a : b; }

#endif
