/* What the two BBR modules share (tcp_bbr.c, Linux's BBRv1 as "bbr";
 * tcp_bbr3.c, the draft's BBRv3 as "bbr3"): Linux's fixed-point units and
 * the conversions between the model's bandwidth and what the engine uses.
 * Their state machines and their state differ; these do not. */
#ifndef USTCP_TCP_BBR_H
#define USTCP_TCP_BBR_H

#include "tcp_impl.h"

#define BBR_SCALE 8
#define BBR_UNIT (1u << BBR_SCALE)            /* gains: 256 = 1.0 */
#define BW_SCALE 24
#define BW_UNIT (1ull << BW_SCALE)            /* bandwidth: segments per µs << 24 */
#define BBR_PACING_MARGIN_PERCENT 1           /* pace 1% below the model's rate (both) */

/* gain * bw * min_rtt in segments, rounded up (the draft's BDPMultiple);
 * the initial window while no RTT is known (min_rtt_us UINT32_MAX). */
static inline uint32_t bbr_bdp(uint32_t min_rtt_us, uint64_t bw, uint32_t gain)
{
	uint64_t w;

	if (min_rtt_us == UINT32_MAX)
		return TCP_INIT_CWND;
	w = bw * min_rtt_us;
	w = (((w * gain) >> BBR_SCALE) + BW_UNIT - 1) / BW_UNIT;
	return w < UINT32_MAX ? (uint32_t)w : UINT32_MAX - 1;
}

/* The pacing rate of bw at a gain, bytes per second, less the margin. */
static inline uint64_t bbr_pacing_rate(const struct ust_tcb *t, uint64_t bw, uint32_t gain)
{
	uint64_t rate = bw * t->mss;

	rate = (rate * gain) >> BBR_SCALE;
	rate *= 1000000u / 100 * (100 - BBR_PACING_MARGIN_PERCENT);
	rate >>= BW_SCALE;
	/* SO_MAX_PACING_RATE, as Linux's bbr_bw_to_pacing_rate. */
	return rate < t->max_pacing_rate ? rate : t->max_pacing_rate;
}

/* bw in bytes per second, as Linux's get_info reports it (no margin). */
static inline uint64_t bbr_bytes_per_sec(const struct ust_tcb *t, uint64_t bw)
{
	return (bw * t->mss * 1000000u) >> BW_SCALE;
}

#endif
