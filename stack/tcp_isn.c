/* Initial sequence numbers (RFC 6528): ISN = M + F(localip, localport,
 * remoteip, remoteport, secretkey), with M a clock ticking every 4
 * microseconds and F a keyed hash, here SipHash-2-4 (Aumasson and
 * Bernstein), written from its specification. The same hash, keyed on the
 * address pair, offsets each connection's timestamp clock, as Linux does. */
#include <string.h>

#include "tcp_impl.h"

static inline uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

#define SIPROUND(v0, v1, v2, v3)                                                    \
	do {                                                                        \
		v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);           \
		v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;                              \
		v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;                              \
		v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);           \
	} while (0)

/* SipHash-2-4 of two 64-bit words (16 bytes of message). */
uint64_t tcp_siphash_2w(const uint64_t key[2], uint64_t m0, uint64_t m1)
{
	uint64_t v0 = key[0] ^ 0x736f6d6570736575ull;
	uint64_t v1 = key[1] ^ 0x646f72616e646f6dull;
	uint64_t v2 = key[0] ^ 0x6c7967656e657261ull;
	uint64_t v3 = key[1] ^ 0x7465646279746573ull;
	uint64_t last = (uint64_t)16 << 56;

	v3 ^= m0; SIPROUND(v0, v1, v2, v3); SIPROUND(v0, v1, v2, v3); v0 ^= m0;
	v3 ^= m1; SIPROUND(v0, v1, v2, v3); SIPROUND(v0, v1, v2, v3); v0 ^= m1;
	v3 ^= last; SIPROUND(v0, v1, v2, v3); SIPROUND(v0, v1, v2, v3); v0 ^= last;
	v2 ^= 0xff;
	SIPROUND(v0, v1, v2, v3); SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3); SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t tcp_addr_word(const struct ust_tcp *tcp, const struct ust_ip6 *hi, const struct ust_ip6 *lo)
{
	uint64_t h0, h1, l0, l1;

	if (ust_ip6_is_v4mapped(hi) && ust_ip6_is_v4mapped(lo))
		return (uint64_t)ust_ip6_to_v4(hi) << 32 | ust_ip6_to_v4(lo);
	memcpy(&h0, hi->b, 8);
	memcpy(&h1, hi->b + 8, 8);
	memcpy(&l0, lo->b, 8);
	memcpy(&l1, lo->b + 8, 8);
	return tcp_siphash_2w(tcp->cfg.isn_key, h0 ^ tcp_siphash_2w(tcp->cfg.isn_key, l0, l1), h1);
}

uint32_t tcp_isn(const struct ust_tcp *tcp, const struct ust_ip6 *laddr, uint16_t lport,
		 const struct ust_ip6 *raddr, uint16_t rport, ust_time now)
{
	uint64_t h = tcp_siphash_2w(tcp->cfg.isn_key, tcp_addr_word(tcp, laddr, raddr),
				    (uint64_t)lport << 16 | rport);

	return (uint32_t)h + (uint32_t)(now / 4);
}

uint32_t tcp_flow_label(const struct ust_tcp *tcp, const struct ust_ip6 *laddr, uint16_t lport,
			const struct ust_ip6 *raddr, uint16_t rport)
{
	uint64_t h = tcp_siphash_2w(tcp->cfg.isn_key, tcp_addr_word(tcp, laddr, raddr),
				    (uint64_t)2 << 32 | (uint64_t)lport << 16 | rport);

	return (uint32_t)(h >> 40) & UST_IPV6_FLOW_MASK;
}

bool tcp_flow_relabel(struct ust_tcb *t, enum ust_event ev)
{
	uint32_t old = t->flow_label & UST_IPV6_FLOW_MASK, label;

	if (!t->txrehash || !(t->flow_label & UST_TCP_FLOW_SET) || (t->flow_label & UST_TCP_FLOW_OFF) ||
	    ust_ip6_is_v4mapped(&t->raddr))
		return false;
	label = (uint32_t)(tcp_siphash_2w(t->tcp->cfg.isn_key, old, 3ull << 32) >> 40) & UST_IPV6_FLOW_MASK;
	if (label == old)
		label ^= 1;
	t->flow_label = (t->flow_label & ~UST_IPV6_FLOW_MASK) | label;
	tcp_count(t->tcp, ev);
	return true;
}

uint32_t tcp_ts_offset(const struct ust_tcp *tcp, const struct ust_ip6 *laddr, const struct ust_ip6 *raddr)
{
	return (uint32_t)(tcp_siphash_2w(tcp->cfg.isn_key, tcp_addr_word(tcp, laddr, raddr), 1) >> 32);
}

/* A flow's hash for choosing among an SO_REUSEPORT group's listeners, as
 * Linux's inet_ehashfn (a keyed hash of the 4-tuple) feeds
 * reuseport_select_sock. Keyed by the secret every stack on the address
 * shares, so that each computes the same one; the constant 2 keeps it
 * apart from the ISN's and the timestamp offset's hashes. */
uint32_t ust_tcp_flow_hash(const struct ust_tcp *tcp, const struct ust_ip6 *raddr, uint16_t lport,
			   uint16_t rport)
{
	uint64_t h = tcp_siphash_2w(tcp->cfg.isn_key, tcp_addr_word(tcp, raddr, raddr),
				    2ull << 32 | (uint64_t)lport << 16 | rport);

	return (uint32_t)(h >> 32);
}
