/* SYN cookies (RFC 4987 §3.6), as Linux's (net/ipv4/syncookies.c), so a
 * listener whose SYN queue is full keeps answering without keeping
 * anything: the SYN-ACK's ISN carries what the connection needs later,
 * and the ACK that echoes it makes the connection.
 *
 * The ISN, as Linux's secure_tcp_syn_cookie:
 *
 *     H(addrs, ports, 0) + SEQ + (count << 24) + ((H(addrs, ports, count) + data) & 0xffffff)
 *
 * with SEQ the peer's ISN, count the minutes of the clock, data the index
 * of the peer's MSS in Linux's table (536, 1300, 1440, 1460; over IPv6
 * net/ipv6/syncookies.c's 1220, 1420, 1440, 8940) and H the
 * keyed hash of tcp_isn.c (SipHash-2-4) under the RFC 6528 secret, tweaked
 * so cookies and ISNs never share a value. A cookie is good for the minute
 * it was made and the next (Linux's MAX_SYNCOOKIE_AGE 2).
 *
 * What the ISN has no room for, the SYN's window scale, SACK and ECN,
 * rides in the low six bits of the SYN-ACK's TSval (Linux's
 * cookie_init_timestamp): four bits of window scale (15: none), SACK,
 * ECN. The peer echoes it in its ACK. Without timestamps a cookie
 * connection has none of the three: Linux's SYN-ACK then offers only the
 * MSS (measured on 6.18.44, kernel_peer.py syncookie). */
#include "tcp_impl.h"

#define COOKIEBITS 24
#define COOKIEMASK (((uint32_t)1 << COOKIEBITS) - 1)
#define MAX_SYNCOOKIE_AGE 2
#define TS_OPT_WSCALE_MASK 0xfu
#define TS_OPT_SACK (1u << 4)
#define TS_OPT_ECN (1u << 5)
#define TSBITS 6

/* Linux's msstab: "the most common MSS values seen", highest last; and
 * IPv6's, the MTUs 1280 (IPv6's least), 1480, 1500 and 9000 less 60. */
static const uint16_t msstab[] = { 536, 1300, 1440, 1460 };
static const uint16_t msstab6[] = { 1280 - 60, 1480 - 60, 1500 - 60, 9000 - 60 };
#define MSSTAB_SIZE UST_ARRAY_SIZE(msstab)
_Static_assert(UST_ARRAY_SIZE(msstab6) == MSSTAB_SIZE, "one index, either table");

/* The table of the segment's family. */
static const uint16_t *mss_table(const struct ust_tcp_seg *seg)
{
	return ust_ip6_is_v4mapped(&seg->src) ? msstab : msstab6;
}

/* The cookie clock: minutes (Linux's tcp_cookie_time, jiffies / 60 s). */
static uint32_t cookie_time(ust_time now)
{
	return (uint32_t)(now / UST_SEC(60));
}

/* Linux's cookie_hash: one of two keyed hashes (c) of the segment's
 * addresses and ports, and count. The key is the ISN secret with a tweak,
 * so a cookie says nothing about the ISN of the same four-tuple. */
static uint32_t cookie_hash(const struct ust_tcp *tcp, const struct ust_tcp_seg *seg, uint32_t count,
			    unsigned c)
{
	const uint64_t key[2] = { tcp->cfg.isn_key[0] ^ (0x636f6f6b69650000ull + c), tcp->cfg.isn_key[1] };

	return (uint32_t)tcp_siphash_2w(key, tcp_addr_word(tcp, &seg->src, &seg->dst),
					(uint64_t)seg->sport << 48 | (uint64_t)seg->dport << 32 | count);
}

uint32_t tcp_cookie_isn(const struct ust_tcp *tcp, const struct ust_tcp_seg *syn, ust_time now,
			uint16_t *mss)
{
	const uint16_t *tab = mss_table(syn);
	unsigned peer_mss = syn->opt.mss ? syn->opt.mss : TCP_MSS_DEFAULT;
	uint32_t count = cookie_time(now), idx;

	/* Below the table's least: its least, as Linux's (an IPv6 peer's
	 * MSS is at least 1220 anyway). */
	for (idx = MSSTAB_SIZE - 1; idx; idx--)
		if (peer_mss >= tab[idx])
			break;
	*mss = tab[idx];
	return cookie_hash(tcp, syn, 0, 0) + syn->seq + (count << COOKIEBITS) +
	       ((cookie_hash(tcp, syn, count, 1) + idx) & COOKIEMASK);
}

unsigned tcp_cookie_check(const struct ust_tcp *tcp, const struct ust_tcp_seg *ack, ust_time now)
{
	uint32_t count = cookie_time(now), cookie = ack->ack - 1, diff, idx;

	cookie -= cookie_hash(tcp, ack, 0, 0) + (ack->seq - 1);
	diff = (count - (cookie >> COOKIEBITS)) & ((uint32_t)-1 >> COOKIEBITS);
	if (diff >= MAX_SYNCOOKIE_AGE)
		return 0;
	idx = (cookie - cookie_hash(tcp, ack, count - diff, 1)) & COOKIEMASK;
	return idx < MSSTAB_SIZE ? mss_table(ack)[idx] : 0;
}

/* Linux's cookie_init_timestamp: the clock with its low bits replaced,
 * never ahead of the clock (the peer's PAWS and our RTT sample see at
 * most 63 ms of the past). */
uint32_t tcp_cookie_tsval(const struct ust_tcb *c, ust_time now)
{
	uint32_t ts_now = (uint32_t)(now / 1000), ts;
	uint32_t options = c->ws_ok ? c->snd_wscale : TS_OPT_WSCALE_MASK;

	if (c->sack_ok)
		options |= TS_OPT_SACK;
	if (c->ecn_flags & UST_TCP_ECN_OK)
		options |= TS_OPT_ECN;
	ts = (ts_now >> TSBITS) << TSBITS | options;
	if (ts > ts_now)
		ts -= 1u << TSBITS;
	return ts;
}

/* Linux's cookie_timestamp_decode. */
void tcp_cookie_ts_decode(uint32_t ecr, struct ust_tcp_opts *o, bool *ecn)
{
	uint32_t ws = ecr & TS_OPT_WSCALE_MASK;

	o->sack_ok = (ecr & TS_OPT_SACK) != 0;
	*ecn = (ecr & TS_OPT_ECN) != 0;
	o->wscale = ws == TS_OPT_WSCALE_MASK ? -1 : (int8_t)ws;
}
