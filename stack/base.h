/* Small things every file of the stack uses. */
#ifndef USTCP_BASE_H
#define USTCP_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* Time in microseconds on a monotonic clock. The protocol code never reads a
 * clock: every entry point takes "now", so tests drive it with a virtual one. */
typedef uint64_t ust_time;
#define UST_TIME_NEVER UINT64_MAX
#define UST_MS(x) ((ust_time)(x) * 1000u)
#define UST_SEC(x) ((ust_time)(x) * 1000000u)

#define UST_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ust_container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))
#define ust_likely(x) __builtin_expect(!!(x), 1)
#define ust_unlikely(x) __builtin_expect(!!(x), 0)

static inline ust_time ust_time_min(ust_time a, ust_time b) { return a < b ? a : b; }

/* Big-endian loads and stores for wire formats: no casts over frames. */
static inline uint16_t ust_get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t ust_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void ust_put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void ust_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

#endif
