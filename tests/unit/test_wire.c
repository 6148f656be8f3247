/* Wire formats: every parser fed malformed input, builders round-tripped,
 * and the Internet checksum against RFC 1071 and a naive reference. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "csum.h"
#include "stack.h"
#include "wire.h"

#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))
#define OUR_IP IP4(10, 9, 0, 2)
#define PEER_IP IP4(10, 9, 0, 1)

static const uint8_t our_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x02 };
static const uint8_t peer_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };

/* ---- helpers ---- */

static void ip_fix_csum(uint8_t *b)
{
	size_t hlen = (size_t)(b[0] & 0x0f) * 4;

	ust_put16(b + 10, 0);
	ust_put16(b + 10, ust_csum_fold(ust_csum_add(0, b, hlen)));
}

/* An IPv4 header with opt_len bytes of options (a multiple of 4) and
 * payload_len bytes of payload (0xa5...) and a right checksum. Returns the
 * total length. */
static size_t ip_make(uint8_t *b, const uint8_t *opt, size_t opt_len, size_t payload_len,
		      uint16_t frag)
{
	size_t hlen = UST_IPV4_HLEN + opt_len;

	memset(b, 0, hlen);
	b[0] = (uint8_t)(0x40 | hlen / 4);
	b[1] = 0x10;
	ust_put16(b + 2, (uint16_t)(hlen + payload_len));
	ust_put16(b + 4, 0x1234);
	ust_put16(b + 6, frag);
	b[8] = 7;
	b[9] = UST_IPPROTO_UDP;
	ust_put32(b + 12, PEER_IP);
	ust_put32(b + 16, OUR_IP);
	if (opt_len)
		memcpy(b + UST_IPV4_HLEN, opt, opt_len);
	memset(b + hlen, 0xa5, payload_len);
	ip_fix_csum(b);
	return hlen + payload_len;
}

static enum ust_drop ip_parse_opts(const uint8_t *opt, size_t opt_len)
{
	uint8_t b[128];
	struct ust_ipv4 ip;
	size_t n = ip_make(b, opt, opt_len, 4, 0);

	return ust_ipv4_parse(b, n, &ip);
}

/* An ARP packet of 28 bytes. */
static void arp_make(uint8_t *b, uint16_t op, uint32_t spa, uint32_t tpa)
{
	struct ust_arp a = { .op = op, .spa = spa, .tpa = tpa };

	memcpy(a.sha, peer_mac, 6);
	ust_arp_build(b, &a);
}

/* An ICMP message with len bytes of data (counting up) and its checksum. */
static size_t icmp_make(uint8_t *b, uint8_t type, uint8_t code, uint32_t rest, size_t len)
{
	for (size_t i = 0; i < len; i++)
		b[UST_ICMP_HLEN + i] = (uint8_t)(i + 1);
	ust_icmp_build(b, type, code, rest, len);
	return UST_ICMP_HLEN + len;
}

/* RFC 1071, the obvious way: 16-bit words, a trailing odd byte padded with
 * zero, end-around carry. Returns the folded sum (not complemented). */
static uint16_t ref_sum(const uint8_t *p, size_t len)
{
	uint64_t s = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		s += (uint32_t)p[len - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* ---- Ethernet ---- */

static void test_eth_parse_truncated_every_length(void **state)
{
	uint8_t b[UST_ETH_HLEN];
	struct ust_eth eth;

	ust_eth_build(b, our_mac, peer_mac, UST_ETHERTYPE_IPV4);
	for (size_t len = 0; len < UST_ETH_HLEN; len++)
		assert_int_equal(ust_eth_parse(b, len, &eth), UST_DROP_ETH_SHORT);
	assert_int_equal(ust_eth_parse(b, UST_ETH_HLEN, &eth), UST_OK);
}

static void test_eth_build_roundtrip(void **state)
{
	uint8_t b[UST_ETH_HLEN];
	struct ust_eth eth;

	ust_eth_build(b, ust_eth_broadcast, peer_mac, 0x88cc);
	assert_int_equal(ust_eth_parse(b, sizeof(b), &eth), UST_OK);
	assert_memory_equal(eth.dst, ust_eth_broadcast, 6);
	assert_memory_equal(eth.src, peer_mac, 6);
	assert_int_equal(eth.type, 0x88cc);
	/* On the wire: dst, src, type big-endian. */
	assert_int_equal(b[12], 0x88);
	assert_int_equal(b[13], 0xcc);
}

static void test_eth_mac_helpers(void **state)
{
	static const uint8_t zero[6], mcast[6] = { 0x01, 0x00, 0x5e, 0, 0, 1 };

	assert_true(ust_mac_is_broadcast(ust_eth_broadcast));
	assert_false(ust_mac_is_broadcast(peer_mac));
	assert_true(ust_mac_is_multicast(mcast));
	assert_true(ust_mac_is_multicast(ust_eth_broadcast));
	assert_false(ust_mac_is_multicast(peer_mac));
	assert_true(ust_mac_is_zero(zero));
	assert_false(ust_mac_is_zero(peer_mac));
}

/* ---- ARP ---- */

static void test_arp_parse_truncated_every_length(void **state)
{
	uint8_t b[UST_ARP_LEN];
	struct ust_arp a;

	arp_make(b, UST_ARP_REQUEST, PEER_IP, OUR_IP);
	for (size_t len = 0; len < UST_ARP_LEN; len++)
		assert_int_equal(ust_arp_parse(b, len, &a), UST_DROP_ARP_SHORT);
	assert_int_equal(ust_arp_parse(b, UST_ARP_LEN, &a), UST_OK);
}

static void test_arp_parse_padding_accepted(void **state)
{
	uint8_t b[46] = { 0 };
	struct ust_arp a;

	arp_make(b, UST_ARP_REPLY, PEER_IP, OUR_IP);
	memset(b + UST_ARP_LEN, 0xee, sizeof(b) - UST_ARP_LEN);
	assert_int_equal(ust_arp_parse(b, sizeof(b), &a), UST_OK);
	assert_int_equal(a.op, UST_ARP_REPLY);
}

static void test_arp_parse_wrong_format(void **state)
{
	/* byte offset, value: hardware type, protocol type, lengths. */
	static const struct { unsigned off; uint8_t v; } bad[] = {
		{ 0, 0x01 },  /* htype 0x0101 */
		{ 1, 0x06 },  /* htype 6 (IEEE 802) */
		{ 1, 0x00 },  /* htype 0 */
		{ 2, 0x86 },  /* ptype 0x86dd */
		{ 3, 0x06 },  /* ptype 0x0806 */
		{ 4, 8 },     /* hlen 8 */
		{ 4, 0 },     /* hlen 0 */
		{ 5, 16 },    /* plen 16 */
		{ 5, 0 },     /* plen 0 */
	};
	uint8_t b[UST_ARP_LEN];
	struct ust_arp a;

	for (size_t i = 0; i < UST_ARRAY_SIZE(bad); i++) {
		arp_make(b, UST_ARP_REQUEST, PEER_IP, OUR_IP);
		b[bad[i].off] = bad[i].v;
		assert_int_equal(ust_arp_parse(b, sizeof(b), &a), UST_DROP_ARP_FORMAT);
	}
}

static void test_arp_parse_wrong_opcode(void **state)
{
	static const uint16_t ops[] = { 0, 3, 4, 8, 9, 0x0100, 0xffff };
	uint8_t b[UST_ARP_LEN];
	struct ust_arp a;

	for (size_t i = 0; i < UST_ARRAY_SIZE(ops); i++) {
		arp_make(b, UST_ARP_REQUEST, PEER_IP, OUR_IP);
		ust_put16(b + 6, ops[i]);
		assert_int_equal(ust_arp_parse(b, sizeof(b), &a), UST_DROP_ARP_FORMAT);
	}
}

static void test_arp_build_roundtrip(void **state)
{
	struct ust_arp in = { .op = UST_ARP_REQUEST, .spa = PEER_IP, .tpa = OUR_IP }, out;
	uint8_t b[UST_ARP_LEN];

	memcpy(in.sha, peer_mac, 6);
	memcpy(in.tha, our_mac, 6);
	ust_arp_build(b, &in);
	assert_int_equal(ust_arp_parse(b, sizeof(b), &out), UST_OK);
	assert_int_equal(out.op, UST_ARP_REQUEST);
	assert_memory_equal(out.sha, peer_mac, 6);
	assert_memory_equal(out.tha, our_mac, 6);
	assert_int_equal(out.spa, PEER_IP);
	assert_int_equal(out.tpa, OUR_IP);
	/* The fixed part: Ethernet (1), IPv4, 6, 4. */
	assert_int_equal(ust_get16(b), 1);
	assert_int_equal(ust_get16(b + 2), 0x0800);
	assert_int_equal(b[4], 6);
	assert_int_equal(b[5], 4);
	assert_int_equal(ust_get32(b + 14), PEER_IP);
	assert_int_equal(ust_get32(b + 24), OUR_IP);
}

/* ---- IPv4 ---- */

static void test_ipv4_parse_valid(void **state)
{
	uint8_t b[64];
	struct ust_ipv4 ip;
	size_t n = ip_make(b, NULL, 0, 8, UST_IP_DF);

	assert_int_equal(ust_ipv4_parse(b, n, &ip), UST_OK);
	assert_int_equal(ip.hlen, 20);
	assert_int_equal(ip.tos, 0x10);
	assert_int_equal(ip.total_len, 28);
	assert_int_equal(ip.id, 0x1234);
	assert_int_equal(ip.frag, UST_IP_DF);
	assert_int_equal(ip.ttl, 7);
	assert_int_equal(ip.proto, UST_IPPROTO_UDP);
	assert_int_equal(ip.src, PEER_IP);
	assert_int_equal(ip.dst, OUR_IP);
	assert_ptr_equal(ip.payload, b + 20);
	assert_int_equal(ip.payload_len, 8);
}

static void test_ipv4_parse_truncated_every_length(void **state)
{
	uint8_t b[64];
	struct ust_ipv4 ip;
	size_t n = ip_make(b, NULL, 0, 8, 0);

	for (size_t len = 0; len < n; len++) {
		enum ust_drop want = len < 20 ? UST_DROP_IP_SHORT : UST_DROP_IP_TOTAL_LEN;
		assert_int_equal(ust_ipv4_parse(b, len, &ip), want);
	}
	assert_int_equal(ust_ipv4_parse(b, n, &ip), UST_OK);
}

static void test_ipv4_parse_truncated_with_options(void **state)
{
	static const uint8_t nops[4] = { 1, 1, 1, 0 };
	uint8_t b[64];
	struct ust_ipv4 ip;
	size_t n = ip_make(b, nops, 4, 8, 0);

	for (size_t len = 0; len < n; len++) {
		enum ust_drop want = len < 20   ? UST_DROP_IP_SHORT
				     : len < 24 ? UST_DROP_IP_HDR_LEN
						: UST_DROP_IP_TOTAL_LEN;
		assert_int_equal(ust_ipv4_parse(b, len, &ip), want);
	}
	assert_int_equal(ust_ipv4_parse(b, n, &ip), UST_OK);
	assert_int_equal(ip.hlen, 24);
	assert_int_equal(ip.payload_len, 8);
}

static void test_ipv4_parse_ihl_below_5(void **state)
{
	uint8_t b[64];
	struct ust_ipv4 ip;

	for (uint8_t ihl = 0; ihl < 5; ihl++) {
		size_t n = ip_make(b, NULL, 0, 20, 0);
		b[0] = (uint8_t)(0x40 | ihl);
		ip_fix_csum(b);
		assert_int_equal(ust_ipv4_parse(b, n, &ip), UST_DROP_IP_HDR_LEN);
	}
}

static void test_ipv4_parse_ihl_beyond_buffer(void **state)
{
	uint8_t b[64];
	struct ust_ipv4 ip;
	size_t n = ip_make(b, NULL, 0, 20, 0); /* 40 bytes */

	b[0] = 0x4f; /* a 60-byte header */
	assert_int_equal(ust_ipv4_parse(b, n, &ip), UST_DROP_IP_HDR_LEN);
	b[0] = 0x4b; /* 44 bytes: one word too many */
	assert_int_equal(ust_ipv4_parse(b, n, &ip), UST_DROP_IP_HDR_LEN);
}

static void test_ipv4_parse_total_len_below_header(void **state)
{
	static const uint8_t nops[4] = { 1, 1, 1, 1 };
	uint8_t b[64];
	struct ust_ipv4 ip;
	size_t n;

	n = ip_make(b, NULL, 0, 8, 0);
	for (uint16_t tl = 0; tl < 20; tl++) {
		ust_put16(b + 2, tl);
		ip_fix_csum(b);
		assert_int_equal(ust_ipv4_parse(b, n, &ip), UST_DROP_IP_TOTAL_LEN);
	}
	/* With options the bound is the real header length, not 20. */
	n = ip_make(b, nops, 4, 8, 0);
	ust_put16(b + 2, 20);
	ip_fix_csum(b);
	assert_int_equal(ust_ipv4_parse(b, n, &ip), UST_DROP_IP_TOTAL_LEN);
	ust_put16(b + 2, 24); /* header only: empty payload is fine */
	ip_fix_csum(b);
	assert_int_equal(ust_ipv4_parse(b, n, &ip), UST_OK);
	assert_int_equal(ip.payload_len, 0);
}

static void test_ipv4_parse_total_len_beyond_buffer(void **state)
{
	uint8_t b[64];
	struct ust_ipv4 ip;
	size_t n = ip_make(b, NULL, 0, 8, 0);

	ust_put16(b + 2, (uint16_t)(n + 1));
	ip_fix_csum(b);
	assert_int_equal(ust_ipv4_parse(b, n, &ip), UST_DROP_IP_TOTAL_LEN);
	ust_put16(b + 2, 0xffff);
	ip_fix_csum(b);
	assert_int_equal(ust_ipv4_parse(b, n, &ip), UST_DROP_IP_TOTAL_LEN);
}

static void test_ipv4_parse_ethernet_padding_accepted(void **state)
{
	uint8_t b[46];
	struct ust_ipv4 ip;
	size_t n = ip_make(b, NULL, 0, 4, 0); /* 24 bytes, padded to 46 */

	memset(b + n, 0x5a, sizeof(b) - n);
	assert_int_equal(ust_ipv4_parse(b, sizeof(b), &ip), UST_OK);
	assert_int_equal(ip.total_len, 24);
	assert_int_equal(ip.payload_len, 4); /* the padding is not payload */
}

static void test_ipv4_parse_bad_checksum(void **state)
{
	uint8_t b[64];
	struct ust_ipv4 ip;
	size_t n = ip_make(b, NULL, 0, 8, 0);

	/* Any single bit flipped in the header (but the version and lengths,
	 * checked first) is caught. */
	for (unsigned byte = 1; byte < 20; byte++) {
		if (byte == 2 || byte == 3)
			continue;
		for (unsigned bit = 0; bit < 8; bit++) {
			b[byte] ^= (uint8_t)(1u << bit);
			assert_int_equal(ust_ipv4_parse(b, n, &ip), UST_DROP_IP_CSUM);
			b[byte] ^= (uint8_t)(1u << bit);
		}
	}
	ust_put16(b + 10, 0);
	assert_int_equal(ust_ipv4_parse(b, n, &ip), UST_DROP_IP_CSUM);
	/* A payload is not covered by the header checksum. */
	ip_fix_csum(b);
	b[25] ^= 0xff;
	assert_int_equal(ust_ipv4_parse(b, n, &ip), UST_OK);
}

static void test_ipv4_parse_bad_checksum_in_options(void **state)
{
	static const uint8_t nops[8] = { 1, 1, 1, 1, 1, 1, 1, 0 };
	uint8_t b[64];
	struct ust_ipv4 ip;
	size_t n = ip_make(b, nops, 8, 0, 0);

	b[22] = 0; /* NOP -> EOL: still well-formed, but the checksum is off */
	assert_int_equal(ust_ipv4_parse(b, n, &ip), UST_DROP_IP_CSUM);
}

static void test_ipv4_parse_all_zero_header(void **state)
{
	uint8_t b[20] = { 0x45, 0, 0, 20 };
	struct ust_ipv4 ip;

	/* A header with a zero checksum field that does not sum to ffff. */
	assert_int_equal(ust_ipv4_parse(b, sizeof(b), &ip), UST_DROP_IP_CSUM);
}

static void test_ipv4_parse_version_not_4(void **state)
{
	static const uint8_t versions[] = { 0, 1, 5, 6, 7, 15 };
	uint8_t b[64];
	struct ust_ipv4 ip;

	for (size_t i = 0; i < UST_ARRAY_SIZE(versions); i++) {
		size_t n = ip_make(b, NULL, 0, 20, 0);
		b[0] = (uint8_t)(versions[i] << 4 | 5);
		ip_fix_csum(b);
		assert_int_equal(ust_ipv4_parse(b, n, &ip), UST_DROP_IP_VERSION);
	}
}

static void test_ipv4_parse_options_nop_eol(void **state)
{
	static const uint8_t nop_eol[4] = { 1, 1, 0, 0 };
	static const uint8_t all_nop[40] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
					     1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
	/* After EOL anything goes: it is padding. */
	static const uint8_t eol_garbage[4] = { 0, 0x44, 0xff, 0x01 };
	uint8_t b[128];
	struct ust_ipv4 ip;
	size_t n;

	assert_int_equal(ip_parse_opts(nop_eol, 4), UST_OK);
	assert_int_equal(ip_parse_opts(eol_garbage, 4), UST_OK);
	n = ip_make(b, all_nop, 40, 4, 0);
	assert_int_equal(ust_ipv4_parse(b, n, &ip), UST_OK);
	assert_int_equal(ip.hlen, 60);
	assert_ptr_equal(ip.payload, b + 60);
	assert_int_equal(ip.payload_len, 4);
}

static void test_ipv4_parse_options_record_route(void **state)
{
	/* RR: type 7, length 11, pointer 4, two empty slots; then EOL. */
	static const uint8_t rr[12] = { 7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	/* RR filling the option space exactly: length 39 + NOP. */
	uint8_t rr_full[40] = { 1, 7, 39, 4 };
	/* Timestamp (68), router alert (148, length 4), a NOP, EOL. */
	static const uint8_t mixed[12] = { 148, 4, 0, 0, 1, 68, 4, 5, 1, 0, 0, 0 };

	assert_int_equal(ip_parse_opts(rr, 12), UST_OK);
	assert_int_equal(ip_parse_opts(rr_full, 40), UST_OK);
	assert_int_equal(ip_parse_opts(mixed, 12), UST_OK);
}

static void test_ipv4_parse_options_bad_length(void **state)
{
	static const uint8_t len0[4] = { 7, 0, 4, 0 };
	static const uint8_t len1[4] = { 7, 1, 4, 0 };
	static const uint8_t len_beyond[4] = { 7, 5, 4, 0 };     /* 5 > 4 bytes */
	static const uint8_t len_beyond2[8] = { 1, 1, 1, 7, 6, 4, 0, 0 }; /* 3 + 6 > 8 */
	static const uint8_t type_last[4] = { 1, 1, 1, 7 };     /* no length byte */
	static const uint8_t len0_later[8] = { 148, 4, 0, 0, 68, 0, 0, 0 };
	uint8_t max_len[4] = { 7, 255, 4, 0 };

	assert_int_equal(ip_parse_opts(len0, 4), UST_DROP_IP_OPTIONS);
	assert_int_equal(ip_parse_opts(len1, 4), UST_DROP_IP_OPTIONS);
	assert_int_equal(ip_parse_opts(len_beyond, 4), UST_DROP_IP_OPTIONS);
	assert_int_equal(ip_parse_opts(len_beyond2, 8), UST_DROP_IP_OPTIONS);
	assert_int_equal(ip_parse_opts(type_last, 4), UST_DROP_IP_OPTIONS);
	assert_int_equal(ip_parse_opts(len0_later, 8), UST_DROP_IP_OPTIONS);
	assert_int_equal(ip_parse_opts(max_len, 4), UST_DROP_IP_OPTIONS);
}

static void test_ipv4_parse_options_exact_fit(void **state)
{
	static const uint8_t fit[4] = { 148, 4, 0, 0 };
	static const uint8_t fit2[8] = { 1, 1, 7, 6, 4, 0, 0, 0 }; /* 2 + 6 == 8 */

	assert_int_equal(ip_parse_opts(fit, 4), UST_OK);
	assert_int_equal(ip_parse_opts(fit2, 8), UST_OK);
}

static void test_ipv4_parse_fragments(void **state)
{
	uint8_t b[64];
	struct ust_ipv4 ip;
	size_t n;

	n = ip_make(b, NULL, 0, 8, UST_IP_MF); /* first fragment */
	assert_int_equal(ust_ipv4_parse(b, n, &ip), UST_DROP_IP_FRAGMENT);
	n = ip_make(b, NULL, 0, 8, UST_IP_MF | 185); /* middle */
	assert_int_equal(ust_ipv4_parse(b, n, &ip), UST_DROP_IP_FRAGMENT);
	n = ip_make(b, NULL, 0, 8, 185); /* last: offset, no MF */
	assert_int_equal(ust_ipv4_parse(b, n, &ip), UST_DROP_IP_FRAGMENT);
	n = ip_make(b, NULL, 0, 8, 1); /* smallest offset */
	assert_int_equal(ust_ipv4_parse(b, n, &ip), UST_DROP_IP_FRAGMENT);
	n = ip_make(b, NULL, 0, 8, UST_IP_DF | UST_IP_OFFMASK);
	assert_int_equal(ust_ipv4_parse(b, n, &ip), UST_DROP_IP_FRAGMENT);
	n = ip_make(b, NULL, 0, 8, UST_IP_DF); /* DF alone is a whole datagram */
	assert_int_equal(ust_ipv4_parse(b, n, &ip), UST_OK);
	assert_int_equal(ip.frag, UST_IP_DF);
	n = ip_make(b, NULL, 0, 8, 0);
	assert_int_equal(ust_ipv4_parse(b, n, &ip), UST_OK);
}

static void test_ipv4_build_roundtrip(void **state)
{
	uint8_t b[40];
	struct ust_ipv4 ip;

	memset(b, 0x77, sizeof(b));
	ust_ipv4_build(b, OUR_IP, PEER_IP, UST_IPPROTO_TCP, 40, 0xbeef, 64, UST_IP_DF);
	assert_int_equal(ust_csum_fold(ust_csum_add(0, b, 20)), 0);
	assert_int_equal(ust_ipv4_parse(b, sizeof(b), &ip), UST_OK);
	assert_int_equal(ip.hlen, 20);
	assert_int_equal(ip.tos, 0);
	assert_int_equal(ip.total_len, 40);
	assert_int_equal(ip.id, 0xbeef);
	assert_int_equal(ip.frag, UST_IP_DF);
	assert_int_equal(ip.ttl, 64);
	assert_int_equal(ip.proto, UST_IPPROTO_TCP);
	assert_int_equal(ip.src, OUR_IP);
	assert_int_equal(ip.dst, PEER_IP);
	assert_int_equal(ip.payload_len, 20);
	/* The payload is left alone. */
	for (size_t i = 20; i < sizeof(b); i++)
		assert_int_equal(b[i], 0x77);
}

/* The TOS byte as given (DSCP and the ECN field, RFC 3168 §5), under a
 * checksum that holds. */
static void test_ipv4_build_tos(void **state)
{
	uint8_t b[20];
	struct ust_ipv4 ip;

	for (unsigned tos = 0; tos < 256; tos++) {
		ust_ipv4_build_tos(b, OUR_IP, PEER_IP, UST_IPPROTO_TCP, (uint8_t)tos, 20, 1, 64, UST_IP_DF);
		assert_int_equal(ust_ipv4_parse(b, sizeof(b), &ip), UST_OK);
		assert_int_equal(ip.tos, tos);
	}
}

static void test_ipv4_build_checksum_many(void **state)
{
	uint8_t b[20];
	struct ust_ipv4 ip;

	/* Checksums that land on 0x0000 and 0xffff both verify. */
	for (uint32_t id = 0; id < 0x10000; id += 7) {
		ust_ipv4_build(b, OUR_IP, PEER_IP ^ id, UST_IPPROTO_TCP, 20, (uint16_t)id,
			       (uint8_t)id, UST_IP_DF);
		assert_int_equal(ust_ipv4_parse(b, sizeof(b), &ip), UST_OK);
	}
}

static void test_ip_str(void **state)
{
	char buf[16];

	assert_string_equal(ust_ip_str(OUR_IP, buf), "10.9.0.2");
	assert_string_equal(ust_ip_str(0xffffffffu, buf), "255.255.255.255");
	assert_string_equal(ust_ip_str(0, buf), "0.0.0.0");
	assert_true(ust_ip_is_multicast(IP4(224, 0, 0, 1)));
	assert_true(ust_ip_is_multicast(IP4(239, 255, 255, 255)));
	assert_false(ust_ip_is_multicast(IP4(240, 0, 0, 1)));
	assert_true(ust_ip_is_limited_bcast(0xffffffffu));
}

/* ---- ICMP ---- */

static void test_icmp_parse_truncated_every_length(void **state)
{
	uint8_t b[64];
	struct ust_icmp icmp;
	size_t n = icmp_make(b, UST_ICMP_ECHO_REQUEST, 0, 0x00010002, 16);

	for (size_t len = 0; len < UST_ICMP_HLEN; len++)
		assert_int_equal(ust_icmp_parse(b, len, &icmp), UST_DROP_ICMP_SHORT);
	/* Cut anywhere in the data, the checksum no longer matches. */
	for (size_t len = UST_ICMP_HLEN; len < n; len++)
		assert_int_equal(ust_icmp_parse(b, len, &icmp), UST_DROP_ICMP_CSUM);
	assert_int_equal(ust_icmp_parse(b, n, &icmp), UST_OK);
}

static void test_icmp_parse_bad_checksum(void **state)
{
	uint8_t b[64];
	struct ust_icmp icmp;
	size_t n = icmp_make(b, UST_ICMP_ECHO_REQUEST, 0, 0x00010002, 16);

	for (size_t i = 0; i < n; i++) {
		b[i] ^= 0x01;
		assert_int_equal(ust_icmp_parse(b, n, &icmp), UST_DROP_ICMP_CSUM);
		b[i] ^= 0x01;
	}
	ust_put16(b + 2, 0);
	assert_int_equal(ust_icmp_parse(b, n, &icmp), UST_DROP_ICMP_CSUM);
}

static void test_icmp_build_roundtrip(void **state)
{
	uint8_t b[64];
	struct ust_icmp icmp;

	/* Every data length 0..40, odd ones included. */
	for (size_t len = 0; len <= 40; len++) {
		size_t n = icmp_make(b, UST_ICMP_ECHO_REPLY, 0, 0xabcd0102, len);
		assert_int_equal(ust_icmp_parse(b, n, &icmp), UST_OK);
		assert_int_equal(icmp.type, UST_ICMP_ECHO_REPLY);
		assert_int_equal(icmp.code, 0);
		assert_int_equal(icmp.rest, 0xabcd0102);
		assert_ptr_equal(icmp.data, b + 8);
		assert_int_equal(icmp.data_len, len);
	}
}

/* An ICMP error of type/code quoting an IPv4 header of hlen bytes from src
 * to dst, followed by l4_len transport bytes (1, 2, 3...). */
static size_t icmp_error_make(uint8_t *b, uint8_t type, uint8_t code, uint32_t rest,
			      size_t hlen, size_t l4_len, uint32_t src, uint32_t dst)
{
	uint8_t *q = b + UST_ICMP_HLEN;

	memset(q, 0, hlen);
	q[0] = (uint8_t)(0x40 | hlen / 4);
	ust_put16(q + 2, 1500); /* the original's length, not this quote's */
	q[8] = 1;
	q[9] = UST_IPPROTO_TCP;
	ust_put32(q + 12, src);
	ust_put32(q + 16, dst);
	for (size_t i = 20; i < hlen; i++)
		q[i] = 1; /* NOP options */
	for (size_t i = 0; i < l4_len; i++)
		q[hlen + i] = (uint8_t)(i + 1);
	ust_icmp_build(b, type, code, rest, hlen + l4_len);
	return UST_ICMP_HLEN + hlen + l4_len;
}

static void test_icmp_error_parse_dest_unreach(void **state)
{
	static const uint8_t l4[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	uint8_t b[128];
	struct ust_icmp icmp;
	struct ust_icmp_error err;
	size_t n = icmp_error_make(b, UST_ICMP_DEST_UNREACH, 4, 1400, 20, 8, OUR_IP, PEER_IP);

	assert_int_equal(ust_icmp_parse(b, n, &icmp), UST_OK);
	assert_int_equal(ust_icmp_error_parse(&icmp, &err), UST_OK);
	assert_int_equal(err.type, UST_ICMP_DEST_UNREACH);
	assert_int_equal(err.code, 4);
	assert_int_equal(err.src, OUR_IP);
	assert_int_equal(err.dst, PEER_IP);
	assert_int_equal(err.proto, UST_IPPROTO_TCP);
	assert_memory_equal(err.l4, l4, 8);
	assert_int_equal(err.mtu, 1400);
}

static void test_icmp_error_parse_time_exceeded_and_param_problem(void **state)
{
	uint8_t b[128];
	struct ust_icmp icmp;
	struct ust_icmp_error err;
	size_t n;

	n = icmp_error_make(b, UST_ICMP_TIME_EXCEEDED, 0, 0, 20, 8, OUR_IP, PEER_IP);
	assert_int_equal(ust_icmp_parse(b, n, &icmp), UST_OK);
	assert_int_equal(ust_icmp_error_parse(&icmp, &err), UST_OK);
	assert_int_equal(err.type, UST_ICMP_TIME_EXCEEDED);

	n = icmp_error_make(b, UST_ICMP_PARAM_PROBLEM, 0, 0x14000000, 20, 8, OUR_IP, PEER_IP);
	assert_int_equal(ust_icmp_parse(b, n, &icmp), UST_OK);
	assert_int_equal(ust_icmp_error_parse(&icmp, &err), UST_OK);
	assert_int_equal(err.type, UST_ICMP_PARAM_PROBLEM);
}

static void test_icmp_error_parse_not_an_error(void **state)
{
	static const uint8_t types[] = { UST_ICMP_ECHO_REPLY, UST_ICMP_ECHO_REQUEST, 5, 13, 255 };
	uint8_t b[128];
	struct ust_icmp icmp;
	struct ust_icmp_error err;

	for (size_t i = 0; i < UST_ARRAY_SIZE(types); i++) {
		size_t n = icmp_error_make(b, types[i], 0, 0, 20, 8, OUR_IP, PEER_IP);
		assert_int_equal(ust_icmp_parse(b, n, &icmp), UST_OK);
		assert_int_equal(ust_icmp_error_parse(&icmp, &err), UST_DROP_ICMP_TYPE);
	}
}

static void test_icmp_error_parse_quote_truncated(void **state)
{
	uint8_t b[128];
	struct ust_icmp icmp;
	struct ust_icmp_error err;

	/* Every quote shorter than a header plus 8 bytes. */
	for (size_t l4 = 0; l4 < 8; l4++) {
		size_t n = icmp_error_make(b, UST_ICMP_DEST_UNREACH, 1, 0, 20, l4, OUR_IP, PEER_IP);
		assert_int_equal(ust_icmp_parse(b, n, &icmp), UST_OK);
		assert_int_equal(ust_icmp_error_parse(&icmp, &err), UST_DROP_ICMP_SHORT);
	}
	/* Quotes shorter than an IPv4 header. */
	icmp_error_make(b, UST_ICMP_DEST_UNREACH, 1, 0, 20, 8, OUR_IP, PEER_IP);
	for (size_t q = 0; q < 20; q++) {
		ust_icmp_build(b, UST_ICMP_DEST_UNREACH, 1, 0, q);
		assert_int_equal(ust_icmp_parse(b, UST_ICMP_HLEN + q, &icmp), UST_OK);
		assert_int_equal(ust_icmp_error_parse(&icmp, &err), UST_DROP_ICMP_SHORT);
	}
}

static void test_icmp_error_parse_quote_with_options(void **state)
{
	static const uint8_t l4[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	uint8_t b[128];
	struct ust_icmp icmp;
	struct ust_icmp_error err;
	size_t n;

	/* 24-byte quoted header: the transport bytes come after the options. */
	n = icmp_error_make(b, UST_ICMP_DEST_UNREACH, 3, 0, 24, 8, OUR_IP, PEER_IP);
	assert_int_equal(ust_icmp_parse(b, n, &icmp), UST_OK);
	assert_int_equal(ust_icmp_error_parse(&icmp, &err), UST_OK);
	assert_memory_equal(err.l4, l4, 8);
	/* One byte short of that. */
	n = icmp_error_make(b, UST_ICMP_DEST_UNREACH, 3, 0, 24, 7, OUR_IP, PEER_IP);
	assert_int_equal(ust_icmp_parse(b, n, &icmp), UST_OK);
	assert_int_equal(ust_icmp_error_parse(&icmp, &err), UST_DROP_ICMP_SHORT);
	/* A 60-byte quoted header with only 40 bytes of quote. */
	n = icmp_error_make(b, UST_ICMP_DEST_UNREACH, 3, 0, 60, 8, OUR_IP, PEER_IP);
	assert_int_equal(ust_icmp_parse(b, n, &icmp), UST_OK);
	assert_int_equal(ust_icmp_error_parse(&icmp, &err), UST_OK);
	icmp.data_len = 40 + 8;
	assert_int_equal(ust_icmp_error_parse(&icmp, &err), UST_DROP_ICMP_SHORT);
}

static void test_icmp_error_parse_quote_bad_header(void **state)
{
	uint8_t b[128];
	struct ust_icmp icmp;
	struct ust_icmp_error err;
	size_t n;

	/* Quoted version 6. */
	n = icmp_error_make(b, UST_ICMP_DEST_UNREACH, 1, 0, 20, 8, OUR_IP, PEER_IP);
	b[8] = 0x65;
	ust_icmp_build(b, UST_ICMP_DEST_UNREACH, 1, 0, n - 8);
	assert_int_equal(ust_icmp_parse(b, n, &icmp), UST_OK);
	assert_int_equal(ust_icmp_error_parse(&icmp, &err), UST_DROP_ICMP_SHORT);
	/* Quoted IHL below 5. */
	for (uint8_t ihl = 0; ihl < 5; ihl++) {
		n = icmp_error_make(b, UST_ICMP_DEST_UNREACH, 1, 0, 20, 8, OUR_IP, PEER_IP);
		b[8] = (uint8_t)(0x40 | ihl);
		ust_icmp_build(b, UST_ICMP_DEST_UNREACH, 1, 0, n - 8);
		assert_int_equal(ust_icmp_parse(b, n, &icmp), UST_OK);
		assert_int_equal(ust_icmp_error_parse(&icmp, &err), UST_DROP_ICMP_SHORT);
	}
	/* The quote's checksum and total length are the original's: ignored. */
	n = icmp_error_make(b, UST_ICMP_DEST_UNREACH, 1, 0, 20, 8, OUR_IP, PEER_IP);
	ust_put16(b + 8 + 10, 0xdead);
	ust_put16(b + 8 + 2, 3);
	ust_icmp_build(b, UST_ICMP_DEST_UNREACH, 1, 0, n - 8);
	assert_int_equal(ust_icmp_parse(b, n, &icmp), UST_OK);
	assert_int_equal(ust_icmp_error_parse(&icmp, &err), UST_OK);
}

/* ---- checksum ---- */

static void test_csum_rfc1071_example(void **state)
{
	/* RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to 2ddf0, which
	 * folds to ddf2; the checksum is its complement. (The running sum
	 * is only defined up to folding: ddf2 and 2ddf0 are the same.) */
	static const uint8_t b[8] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
	uint32_t sum = ust_csum_add(0, b, sizeof(b));

	assert_true(sum == 0x2ddf0 || sum == 0xddf2);
	assert_int_equal(ust_csum_fold(sum), (uint16_t)~0xddf2);
	assert_int_equal(ust_csum_fold(sum), 0x220d);
}

static void test_csum_empty_and_zero(void **state)
{
	static const uint8_t z[10];

	assert_int_equal(ust_csum_add(0, z, 0), 0);
	assert_int_equal(ust_csum_add(0x1234, z, 0), 0x1234);
	assert_int_equal(ust_csum_fold(ust_csum_add(0, z, sizeof(z))), 0xffff);
	assert_int_equal(ust_csum_fold(0xffff), 0);
	assert_int_equal(ust_csum_fold(0xffffffffu), 0); /* ffff + ffff = 1fffe -> ffff */
}

static void test_csum_odd_lengths(void **state)
{
	uint8_t b[256];

	srand(1071);
	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = (uint8_t)rand();
	for (size_t len = 0; len <= sizeof(b); len++)
		assert_int_equal(ust_csum_fold(ust_csum_add(0, b, len)), (uint16_t)~ref_sum(b, len));
	/* An odd byte is the high half of a word padded with zero. */
	b[0] = 0xab;
	assert_int_equal(ust_csum_add(0, b, 1), 0xab00);
}

static void test_csum_odd_start_address(void **state)
{
	uint8_t b[100];

	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = (uint8_t)(i * 37 + 11);
	for (size_t off = 0; off < 9; off++)
		for (size_t len = 0; len + off <= sizeof(b); len += 3)
			assert_int_equal(ust_csum_fold(ust_csum_add(0, b + off, len)),
					 (uint16_t)~ref_sum(b + off, len));
}

static void test_csum_chaining(void **state)
{
	uint8_t b[200];
	uint16_t whole;

	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = (uint8_t)(0xff - i);
	whole = ust_csum_fold(ust_csum_add(0, b, sizeof(b)));
	/* Any split at an even offset, the last part possibly odd. */
	for (size_t cut = 0; cut <= sizeof(b); cut += 2) {
		uint32_t s = ust_csum_add(0, b, cut);
		assert_int_equal(ust_csum_fold(ust_csum_add(s, b + cut, sizeof(b) - cut)), whole);
	}
	for (size_t cut = 0; cut <= 196; cut += 2) {
		uint32_t s = ust_csum_add(0, b, cut);
		s = ust_csum_add(s, b + cut, 2);
		assert_int_equal(ust_csum_fold(ust_csum_add(s, b + cut + 2, 197 - cut)),
				 (uint16_t)~ref_sum(b, 199));
	}
	/* A large running sum carries correctly into the next call: ffffffff
	 * is negative zero and changes nothing. */
	assert_int_equal(ust_csum_fold(ust_csum_add(0xffffffffu, b, sizeof(b))), whole);
}

static void test_csum_64k_of_ff(void **state)
{
	size_t n = 65536;
	uint8_t *b = malloc(n + 1);
	uint32_t sum;

	assert_non_null(b);
	memset(b, 0xff, n + 1);
	/* 32768 words of ffff: negative zero, so the checksum is 0. */
	sum = ust_csum_add(0, b, n);
	assert_int_equal(ust_csum_fold(sum), 0);
	assert_int_equal(ust_csum_fold(sum), (uint16_t)~ref_sum(b, n));
	/* Odd and near-maximum lengths. */
	assert_int_equal(ust_csum_fold(ust_csum_add(0, b, 65535)), (uint16_t)~ref_sum(b, 65535));
	assert_int_equal(ust_csum_fold(ust_csum_add(0, b, n + 1)), (uint16_t)~ref_sum(b, n + 1));
	/* Chained from a running sum that is already large: fffffff0 is
	 * ffff * 10000 + fff0, so only fff0 remains. */
	sum = ust_csum_add(0xfffffff0u, b, n);
	assert_int_equal(ust_csum_fold(ust_csum_add(sum, b, n)), 0x000f);
	free(b);
}

static void test_csum_pseudo_header(void **state)
{
	uint8_t ph[12];
	uint32_t src = IP4(192, 168, 255, 254), dst = IP4(10, 255, 0, 1);

	ust_put32(ph, src);
	ust_put32(ph + 4, dst);
	ph[8] = 0;
	ph[9] = UST_IPPROTO_TCP;
	ust_put16(ph + 10, 0xfff0);
	assert_int_equal(ust_csum_fold(ust_csum_pseudo(src, dst, UST_IPPROTO_TCP, 0xfff0)),
			 ust_csum_fold(ust_csum_add(0, ph, sizeof(ph))));
	assert_int_equal(ust_csum_fold(ust_csum_pseudo(0xffffffffu, 0xffffffffu, 255, 0xffff)),
			 (uint16_t)~ref_sum((const uint8_t[]){ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
								0xff, 0xff, 0, 255, 0xff, 0xff }, 12));
}

/* ---- through the stack: the counters ---- */

static unsigned discard_output(void *ctx, struct ust_pkt *const *pkts, unsigned n)
{
	return n;
}

static void stack_up(struct ust_stack *st)
{
	struct ust_netif nif = { .addr = OUR_IP, .mask = 0xffffff00u, .mtu = 1500 };

	memcpy(nif.mac, our_mac, 6);
	assert_int_equal(ust_stack_init(st, &nif, 16, discard_output, NULL), 0);
}

static void stack_down(struct ust_stack *st)
{
	ust_stack_flush(st);
	ust_arp_flush(st);
	assert_int_equal(st->pool.avail, st->pool.size);
	ust_stack_destroy(st);
}

/* Which single drop counter went up since *before, or UST_OK if none. */
static enum ust_drop counted_drop(const struct ust_stack *st, const struct ust_counters *before)
{
	enum ust_drop which = UST_OK;

	for (unsigned i = 1; i < UST_DROP_MAX; i++) {
		if (st->ctr.drop[i] == before->drop[i])
			continue;
		assert_int_equal(st->ctr.drop[i], before->drop[i] + 1);
		assert_int_equal(which, UST_OK); /* only one */
		which = (enum ust_drop)i;
	}
	return which;
}

static enum ust_drop feed(struct ust_stack *st, const uint8_t *f, size_t len)
{
	struct ust_counters before = st->ctr;

	ust_stack_input(st, f, len, 0, 0);
	return counted_drop(st, &before);
}

static void test_wire_stack_unknown_ethertypes(void **state)
{
	static const uint16_t types[] = { 0x86dd, 0x88cc, 0x88a8, 0x8035, 0x0000, 0x05dc, 0xffff };
	struct ust_stack st;
	uint8_t f[60] = { 0 };

	stack_up(&st);
	for (size_t i = 0; i < UST_ARRAY_SIZE(types); i++) {
		ust_eth_build(f, our_mac, peer_mac, types[i]);
		assert_int_equal(feed(&st, f, sizeof(f)), UST_DROP_ETH_TYPE);
	}
	assert_int_equal(st.ctr.drop[UST_DROP_ETH_TYPE], UST_ARRAY_SIZE(types));
	ust_eth_build(f, our_mac, peer_mac, UST_ETHERTYPE_VLAN);
	assert_int_equal(feed(&st, f, sizeof(f)), UST_DROP_ETH_VLAN);
	assert_int_equal(st.ctr.event[UST_EV_RX_FRAMES], UST_ARRAY_SIZE(types) + 1);
	assert_int_equal(st.ctr.event[UST_EV_RX_BYTES], 60 * (UST_ARRAY_SIZE(types) + 1));
	stack_down(&st);
}

static void test_wire_stack_truncated_frames_every_length(void **state)
{
	struct ust_stack st;
	uint8_t f[UST_ETH_HLEN + 28];
	uint8_t *ip = f + UST_ETH_HLEN;

	stack_up(&st);
	ust_eth_build(f, our_mac, peer_mac, UST_ETHERTYPE_IPV4);
	ip_make(ip, NULL, 0, 8, 0);
	/* proto 200 has no handler, so a whole datagram ends as ip-proto. */
	ip[9] = 200;
	ip_fix_csum(ip);
	for (size_t len = 0; len <= sizeof(f); len++) {
		enum ust_drop want = len < 14 ? UST_DROP_ETH_SHORT
				     : len < 34 ? UST_DROP_IP_SHORT
				     : len < 42 ? UST_DROP_IP_TOTAL_LEN
						: UST_DROP_IP_PROTO;
		assert_int_equal(feed(&st, f, len), want);
	}
	ust_eth_build(f, our_mac, peer_mac, UST_ETHERTYPE_ARP);
	arp_make(f + UST_ETH_HLEN, UST_ARP_REQUEST, PEER_IP, OUR_IP);
	for (size_t len = 14; len < 14 + UST_ARP_LEN; len++)
		assert_int_equal(feed(&st, f, len), UST_DROP_ARP_SHORT);
	stack_down(&st);
}

static void test_wire_stack_ipv4_drops_counted(void **state)
{
	static const uint8_t bad_opt[4] = { 7, 0, 0, 0 };
	struct ust_stack st;
	uint8_t f[80] = { 0 };
	uint8_t *ip = f + UST_ETH_HLEN;
	size_t n;

	stack_up(&st);
	ust_eth_build(f, our_mac, peer_mac, UST_ETHERTYPE_IPV4);

	n = ip_make(ip, NULL, 0, 8, 0);
	ip[0] = 0x65;
	assert_int_equal(feed(&st, f, 14 + n), UST_DROP_IP_VERSION);
	n = ip_make(ip, NULL, 0, 8, 0);
	ip[0] = 0x44;
	ip_fix_csum(ip);
	assert_int_equal(feed(&st, f, 14 + n), UST_DROP_IP_HDR_LEN);
	n = ip_make(ip, NULL, 0, 8, 0);
	ip[11] ^= 1;
	assert_int_equal(feed(&st, f, 14 + n), UST_DROP_IP_CSUM);
	n = ip_make(ip, bad_opt, 4, 8, 0);
	assert_int_equal(feed(&st, f, 14 + n), UST_DROP_IP_OPTIONS);
	n = ip_make(ip, NULL, 0, 8, UST_IP_MF);
	assert_int_equal(feed(&st, f, 14 + n), UST_DROP_IP_FRAGMENT);
	n = ip_make(ip, NULL, 0, 8, 0);
	ip[9] = UST_IPPROTO_ICMP;
	ip_fix_csum(ip);
	assert_int_equal(feed(&st, f, 14 + n), UST_DROP_ICMP_CSUM);
	n = ip_make(ip, NULL, 0, 4, 0);
	ip[9] = UST_IPPROTO_ICMP;
	ip_fix_csum(ip);
	assert_int_equal(feed(&st, f, 14 + n), UST_DROP_ICMP_SHORT);
	/* DF alone and padding are fine: the datagram reaches the protocol. */
	n = ip_make(ip, NULL, 0, 8, UST_IP_DF);
	assert_int_equal(feed(&st, f, 60), UST_DROP_IP_PROTO);
	stack_down(&st);
}

static void test_wire_stack_arp_format_counted(void **state)
{
	struct ust_stack st;
	uint8_t f[60] = { 0 };
	uint8_t *a = f + UST_ETH_HLEN;

	stack_up(&st);
	ust_eth_build(f, ust_eth_broadcast, peer_mac, UST_ETHERTYPE_ARP);
	for (unsigned off = 0; off < 8; off++) {
		arp_make(a, UST_ARP_REQUEST, PEER_IP, OUR_IP);
		a[off] ^= 0x40;
		assert_int_equal(feed(&st, f, sizeof(f)), UST_DROP_ARP_FORMAT);
	}
	assert_int_equal(st.ctr.drop[UST_DROP_ARP_FORMAT], 8);
	assert_int_equal(st.ctr.event[UST_EV_ARP_REQUESTS_IN], 0);
	stack_down(&st);
}

static void test_counters_names(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	struct ust_counters c = { 0 };

	assert_string_equal(ust_drop_name(UST_OK), "ok");
	assert_string_equal(ust_drop_name(UST_DROP_IP_CSUM), "ip-csum");
	assert_string_equal(ust_drop_name(UST_DROP_MAX), "?");
	assert_string_equal(ust_event_name(UST_EV_RX_FRAMES), "rx-frames");
	assert_string_equal(ust_event_name(UST_EVENT_MAX), "?");
	for (unsigned i = 1; i < UST_DROP_MAX; i++)
		assert_true(strlen(ust_drop_name((enum ust_drop)i)) > 0);
	c.drop[UST_DROP_ETH_TYPE] = 3;
	c.event[UST_EV_TX_FRAMES] = 7;
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	ust_counters_print(&c, f);
	fclose(f);
	assert_non_null(strstr(buf, "tx-frames 7\n"));
	assert_non_null(strstr(buf, "drop eth-type 3\n"));
	assert_null(strstr(buf, "drop ip-csum"));
	free(buf);
}

/* ---- IP_OPTIONS and sticky IPv6 headers, as a socket sends them ---- */

static bool local_is_10_9_0_2(const void *ctx, uint32_t a)
{
	(void)ctx;
	return a == 0x0a090002u;
}

/* Record route: the pointer moves past the slot each datagram fills with
 * our address; a NOP after it is padded with EOL to four bytes, and after
 * an EOL everything is EOL, as Linux's compile leaves it. */
static void test_ip4_opts_record_route(void **state)
{
	const uint8_t rr[] = { 7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9 };
	uint8_t iph[60] = { 0 };
	struct ust_ip4_opts o;

	(void)state;
	assert_int_equal(ust_ip4_opts_compile(&o, rr, sizeof(rr), local_is_10_9_0_2, NULL), 0);
	assert_int_equal(o.len, 16);
	assert_int_equal(o.rr, 20);
	assert_true(o.rr_needaddr);
	assert_int_equal(o.data[2], 8);
	assert_int_equal(o.data[12], 0); /* after the option, an EOL, all EOL */
	ust_ip4_opts_build(iph, &o, 0x0a090002u, 0x0a090001u, 0);
	assert_int_equal(ust_get32(iph + 23), 0x0a090002u);
	assert_int_equal(ust_get32(iph + 27), 0);
	assert_int_equal(iph[22], 8);
}

/* A full record route is sent as it is, with nothing filled in. */
static void test_ip4_opts_record_route_full(void **state)
{
	const uint8_t rr[] = { 7, 7, 8, 1, 2, 3, 4, 0 };
	struct ust_ip4_opts o;

	(void)state;
	assert_int_equal(ust_ip4_opts_compile(&o, rr, sizeof(rr), local_is_10_9_0_2, NULL), 0);
	assert_false(o.rr_needaddr);
	assert_int_equal(o.data[2], 8);
}

/* Timestamps: only times; address and time; prespecified, where only our
 * own address gets a time. */
static void test_ip4_opts_timestamps(void **state)
{
	const uint8_t only[] = { 68, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	const uint8_t pairs[] = { 68, 12, 5, 1, 0, 0, 0, 0, 0, 0, 0, 0 };
	const uint8_t pre_ours[] = { 68, 12, 5, 3, 10, 9, 0, 2, 0, 0, 0, 0 };
	const uint8_t pre_other[] = { 68, 12, 5, 3, 10, 9, 0, 7, 0, 0, 0, 0 };
	const uint8_t other_flag[] = { 68, 12, 5, 2, 0, 0, 0, 0, 0, 0, 0, 0 };
	uint8_t iph[60] = { 0 };
	struct ust_ip4_opts o;

	(void)state;
	assert_int_equal(ust_ip4_opts_compile(&o, only, sizeof(only), local_is_10_9_0_2, NULL), 0);
	assert_true(o.ts_needtime && !o.ts_needaddr);
	ust_ip4_opts_build(iph, &o, 0x0a090002u, 0x0a090001u, 12345678);
	assert_int_equal(iph[22], 9);
	assert_int_equal(ust_get32(iph + 24), 12345678);
	assert_int_equal(ust_get32(iph + 28), 0);

	memset(iph, 0, sizeof(iph));
	assert_int_equal(ust_ip4_opts_compile(&o, pairs, sizeof(pairs), local_is_10_9_0_2, NULL), 0);
	assert_true(o.ts_needtime && o.ts_needaddr);
	ust_ip4_opts_build(iph, &o, 0x0a090002u, 0x0a090001u, 42);
	assert_int_equal(iph[22], 13);
	assert_int_equal(ust_get32(iph + 24), 0x0a090002u);
	assert_int_equal(ust_get32(iph + 28), 42);

	assert_int_equal(ust_ip4_opts_compile(&o, pre_ours, sizeof(pre_ours), local_is_10_9_0_2, NULL), 0);
	assert_true(o.ts_needtime);
	assert_int_equal(o.data[2], 13);
	assert_int_equal(ust_ip4_opts_compile(&o, pre_other, sizeof(pre_other), local_is_10_9_0_2, NULL), 0);
	assert_false(o.ts_needtime);
	assert_int_equal(o.data[2], 5);
	/* Another flag: only a socket with CAP_NET_RAW gets it past the
	 * kernel, and it goes as it is. */
	assert_int_equal(ust_ip4_opts_compile(&o, other_flag, sizeof(other_flag), local_is_10_9_0_2, NULL), 0);
	assert_false(o.ts_needtime || o.ts_needaddr);
}

/* A source route: the first address is the first hop, the rest move up,
 * and the destination goes last. */
static void test_ip4_opts_source_route(void **state)
{
	const uint8_t lsrr[] = { 131, 11, 4, 10, 9, 0, 5, 10, 9, 0, 6, 0 };
	const uint8_t twice[] = { 131, 7, 4, 10, 9, 0, 5, 137, 7, 4, 10, 9, 0, 6, 0, 0 };
	uint8_t iph[60] = { 0 };
	struct ust_ip4_opts o;

	(void)state;
	assert_int_equal(ust_ip4_opts_compile(&o, lsrr, sizeof(lsrr), local_is_10_9_0_2, NULL), 0);
	assert_int_equal(o.faddr, 0x0a090005u);
	assert_int_equal(o.srr, 20);
	ust_ip4_opts_build(iph, &o, 0x0a090002u, 0x0a090001u, 0);
	assert_int_equal(ust_get32(iph + 23), 0x0a090006u);
	assert_int_equal(ust_get32(iph + 27), 0x0a090001u);
	assert_int_equal(ust_ip4_opts_compile(&o, twice, sizeof(twice), local_is_10_9_0_2, NULL), -EINVAL);
}

/* Malformed lengths; what only CAP_NET_RAW sets (security) goes as it
 * is. */
static void test_ip4_opts_refused(void **state)
{
	const uint8_t sec[] = { 130, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	const uint8_t short_len[] = { 7, 1, 0, 0 };
	const uint8_t beyond[] = { 7, 9, 4, 0 };
	uint8_t big[41] = { 1 };
	struct ust_ip4_opts o;

	(void)state;
	assert_int_equal(ust_ip4_opts_compile(&o, sec, sizeof(sec), local_is_10_9_0_2, NULL), 0);
	assert_memory_equal(o.data, sec, sizeof(sec));
	assert_int_equal(ust_ip4_opts_compile(&o, short_len, sizeof(short_len), local_is_10_9_0_2, NULL), -EINVAL);
	assert_int_equal(ust_ip4_opts_compile(&o, beyond, sizeof(beyond), local_is_10_9_0_2, NULL), -EINVAL);
	assert_int_equal(ust_ip4_opts_compile(&o, big, sizeof(big), local_is_10_9_0_2, NULL), -EINVAL);
}

static const uint8_t padn8[8] = { 0, 0, 1, 4, 0, 0, 0, 0 };

static struct ust_ip6 ip6_of(uint8_t last)
{
	struct ust_ip6 a = { { 0xfd, 0, 0, 0x10, 0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, last } };
	return a;
}

/* All four headers: hop-by-hop, destination options for the routing
 * header's hops, a segment routing header, destination options; the
 * chain's next headers; the destination in segment 0 and the IPv6
 * destination the segment Segments Left names. */
static void test_ip6_ext_all_four(void **state)
{
	uint8_t srh[8 + 32] = { 0, 4, 4, 1, 1, 0, 0, 0 };
	const uint8_t *hdr[4] = { padn8, padn8, srh, padn8 };
	unsigned len[4] = { 8, 8, sizeof(srh), 8 };
	struct ust_ip6 hop = ip6_of(7), dst = ip6_of(1), ip_dst;
	struct ust_ip6_ext e;
	uint8_t out[UST_IP6_EXT_MAX];

	(void)state;
	memcpy(srh + 24, hop.b, 16);
	assert_int_equal(ust_ip6_ext_compile(&e, hdr, len), 0);
	assert_int_equal(e.len, 64);
	assert_int_equal(e.mss_len, 64);
	assert_int_equal(ust_ip6_ext_build(out, &e, &dst, UST_IPPROTO_TCP, &ip_dst), UST_IPPROTO_HOPOPTS);
	assert_int_equal(out[0], UST_IPPROTO_DSTOPTS);
	assert_int_equal(out[8], UST_IPPROTO_ROUTING);
	assert_int_equal(out[16], UST_IPPROTO_DSTOPTS);
	assert_int_equal(out[56], UST_IPPROTO_TCP);
	assert_memory_equal(out + 24, dst.b, 16);
	assert_memory_equal(out + 40, hop.b, 16);
	assert_memory_equal(ip_dst.b, hop.b, 16);
}

/* The routing header's destination options alone are not sent (Linux
 * pushes them only before a routing header) but still count against the
 * MSS, as Linux's opt_nflen. */
static void test_ip6_ext_dst0_alone(void **state)
{
	const uint8_t *hdr[4] = { NULL, padn8, NULL, NULL };
	unsigned len[4] = { 0, 8, 0, 0 };
	struct ust_ip6 dst = ip6_of(1), ip_dst;
	struct ust_ip6_ext e;
	uint8_t out[8];

	(void)state;
	assert_int_equal(ust_ip6_ext_compile(&e, hdr, len), 0);
	assert_int_equal(e.len, 0);
	assert_int_equal(e.mss_len, 8);
	assert_int_equal(ust_ip6_ext_build(out, &e, &dst, UST_IPPROTO_TCP, &ip_dst), UST_IPPROTO_TCP);
	assert_memory_equal(ip_dst.b, dst.b, 16);
}

/* An options header of UST_IP6_EXT_HDR_MAX bytes: options of a type to
 * skip (0x1e, RFC 4727's experiment), 253 bytes of fill each, then one of
 * the rest. */
static void skip_opts(uint8_t *h, uint8_t fill)
{
	unsigned at = 2, left = UST_IP6_EXT_HDR_MAX - 2;

	h[1] = UST_IP6_EXT_HDR_MAX / 8 - 1;
	while (left) {
		unsigned n = left > 255 + 1 ? 253 : left - 2;

		h[at] = 0x1e;
		h[at + 1] = (uint8_t)n;
		memset(h + at + 2, fill, n);
		at += n + 2;
		left -= n + 2;
	}
}

/* Headers as long as Linux takes them (2048 bytes each, a hop-by-hop and
 * destination options here): laid out whole, the destination options'
 * next header the upper layer's. */
static void test_ip6_ext_longest(void **state)
{
	static uint8_t hop[UST_IP6_EXT_HDR_MAX], dsto[UST_IP6_EXT_HDR_MAX], out[UST_IP6_EXT_MAX];
	const uint8_t *hdr[4] = { hop, NULL, NULL, dsto };
	unsigned len[4] = { sizeof(hop), 0, 0, sizeof(dsto) };
	struct ust_ip6 dst = ip6_of(1), ip_dst;
	struct ust_ip6_ext e;

	(void)state;
	skip_opts(hop, 0xab);
	skip_opts(dsto, 0xcd);
	assert_int_equal(ust_ip6_ext_compile(&e, hdr, len), 0);
	assert_int_equal(e.len, 2 * UST_IP6_EXT_HDR_MAX);
	assert_int_equal(e.mss_len, 2 * UST_IP6_EXT_HDR_MAX);
	assert_int_equal(ust_ip6_ext_build(out, &e, &dst, UST_IPPROTO_TCP, &ip_dst), UST_IPPROTO_HOPOPTS);
	assert_int_equal(out[0], UST_IPPROTO_DSTOPTS);
	assert_int_equal(out[UST_IP6_EXT_HDR_MAX], UST_IPPROTO_TCP);
	assert_memory_equal(out + 1, hop + 1, sizeof(hop) - 1);
	assert_memory_equal(out + UST_IP6_EXT_HDR_MAX + 1, dsto + 1, sizeof(dsto) - 1);
	assert_memory_equal(ip_dst.b, dst.b, 16);
}

/* Type 2 (one address): it is the IPv6 destination and the destination
 * takes its slot; a header whose length disagrees, or of another type,
 * is refused. */
static void test_ip6_ext_rthdr_type2_and_refused(void **state)
{
	uint8_t rt2[24] = { 0, 2, 2, 1, 0, 0, 0, 0 };
	uint8_t rt5[24] = { 0, 2, 5, 1, 0, 0, 0, 0 };
	const uint8_t *hdr[4] = { NULL, NULL, rt2, NULL };
	unsigned len[4] = { 0, 0, sizeof(rt2), 0 };
	struct ust_ip6 hop = ip6_of(7), dst = ip6_of(1), ip_dst;
	struct ust_ip6_ext e;
	uint8_t out[24];

	(void)state;
	memcpy(rt2 + 8, hop.b, 16);
	assert_int_equal(ust_ip6_ext_compile(&e, hdr, len), 0);
	assert_int_equal(ust_ip6_ext_build(out, &e, &dst, UST_IPPROTO_TCP, &ip_dst), UST_IPPROTO_ROUTING);
	assert_memory_equal(out + 8, dst.b, 16);
	assert_memory_equal(ip_dst.b, hop.b, 16);
	hdr[2] = rt5;
	assert_int_equal(ust_ip6_ext_compile(&e, hdr, len), -EINVAL);
	hdr[2] = rt2;
	len[2] = 16;
	assert_int_equal(ust_ip6_ext_compile(&e, hdr, len), -EINVAL);
}

/* The echo of a received record route and timestamp option (Linux's
 * ip_options_echo): our address in the next slot as received, room for
 * one more, timestamps after record route whatever their order; read back
 * (ip_options_undo) without the slot of ours still to fill. */
static void test_ip4_opts_echo(void **state)
{
	uint8_t hdr[20 + 28] = { 0x4c };
	const uint8_t ts[] = { 68, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	const uint8_t rr[] = { 7, 15, 8, 10, 9, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	uint8_t back[UST_IPV4_OPT_MAX];
	struct ust_ip4_opts o;

	(void)state;
	memcpy(hdr + 20, ts, sizeof(ts));
	memcpy(hdr + 32, rr, sizeof(rr));
	assert_int_equal(ust_ip4_opts_echo(&o, hdr, sizeof(hdr), 0x0a090002u, 777, local_is_10_9_0_2, NULL), 0);
	assert_int_equal(o.len, 28); /* 15 + 12, padded */
	assert_int_equal(o.rr, 20);
	assert_true(o.rr_needaddr);
	assert_int_equal(o.data[2], 16);                 /* past ours as received, and ours to send */
	assert_int_equal(ust_get32(o.data + 7), 0x0a090002u);
	assert_int_equal(o.ts, 35);
	assert_true(o.ts_needtime && !o.ts_needaddr);
	assert_int_equal(o.data[15 + 2], 13);
	assert_int_equal(ust_get32(o.data + 15 + 4), 777); /* the time we received it */
	ust_ip4_opts_undo(&o, back);
	assert_int_equal(back[2], 12);
	assert_int_equal(back[15 + 2], 9);
	/* The last slot taken as received: nothing left of ours to send. */
	hdr[32 + 1] = 11;
	hdr[32 + 11] = 0;
	assert_int_equal(ust_ip4_opts_echo(&o, hdr, sizeof(hdr), 0x0a090002u, 777, local_is_10_9_0_2, NULL), 0);
	assert_false(o.rr_needaddr);
	assert_int_equal(o.data[2], 12);
	/* Nothing to echo: no options. */
	hdr[0] = 0x45;
	assert_int_equal(ust_ip4_opts_echo(&o, hdr, 20, 0x0a090002u, 0, local_is_10_9_0_2, NULL), 0);
	assert_int_equal(o.len, 0);
}

/* An ICMPv6 error quoting a segment sent with extension headers names
 * its TCP ports past them. */
static void test_icmp6_error_past_ext_headers(void **state)
{
	uint8_t q[40 + 8 + 24 + 8] = { 0x60 };
	struct ust_icmp6 icmp = { .type = UST_ICMP6_DEST_UNREACH, .data = q, .data_len = sizeof(q) };
	struct ust_icmp6_error err;

	(void)state;
	q[6] = UST_IPPROTO_HOPOPTS;
	q[40] = UST_IPPROTO_ROUTING; /* hop-by-hop, 8 bytes */
	q[48] = UST_IPPROTO_TCP;     /* a routing header, 24 bytes */
	q[49] = 2;
	ust_put16(q + 72, 40000);
	ust_put16(q + 74, 80);
	assert_int_equal(ust_icmp6_error_parse(&icmp, &err), UST_OK);
	assert_int_equal(err.proto, UST_IPPROTO_TCP);
	assert_int_equal(ust_get16(err.l4), 40000);
	assert_int_equal(ust_get16(err.l4 + 2), 80);
	icmp.data_len = 40 + 8 + 24 + 4; /* the ports, but not 8 bytes */
	assert_int_equal(ust_icmp6_error_parse(&icmp, &err), UST_DROP_ICMP6_SHORT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eth_parse_truncated_every_length),
		cmocka_unit_test(test_eth_build_roundtrip),
		cmocka_unit_test(test_eth_mac_helpers),
		cmocka_unit_test(test_arp_parse_truncated_every_length),
		cmocka_unit_test(test_arp_parse_padding_accepted),
		cmocka_unit_test(test_arp_parse_wrong_format),
		cmocka_unit_test(test_arp_parse_wrong_opcode),
		cmocka_unit_test(test_arp_build_roundtrip),
		cmocka_unit_test(test_ipv4_parse_valid),
		cmocka_unit_test(test_ipv4_parse_truncated_every_length),
		cmocka_unit_test(test_ipv4_parse_truncated_with_options),
		cmocka_unit_test(test_ipv4_parse_ihl_below_5),
		cmocka_unit_test(test_ipv4_parse_ihl_beyond_buffer),
		cmocka_unit_test(test_ipv4_parse_total_len_below_header),
		cmocka_unit_test(test_ipv4_parse_total_len_beyond_buffer),
		cmocka_unit_test(test_ipv4_parse_ethernet_padding_accepted),
		cmocka_unit_test(test_ipv4_parse_bad_checksum),
		cmocka_unit_test(test_ipv4_parse_bad_checksum_in_options),
		cmocka_unit_test(test_ipv4_parse_all_zero_header),
		cmocka_unit_test(test_ipv4_parse_version_not_4),
		cmocka_unit_test(test_ipv4_parse_options_nop_eol),
		cmocka_unit_test(test_ipv4_parse_options_record_route),
		cmocka_unit_test(test_ipv4_parse_options_bad_length),
		cmocka_unit_test(test_ipv4_parse_options_exact_fit),
		cmocka_unit_test(test_ipv4_parse_fragments),
		cmocka_unit_test(test_ipv4_build_roundtrip),
		cmocka_unit_test(test_ipv4_build_checksum_many),
		cmocka_unit_test(test_ipv4_build_tos),
		cmocka_unit_test(test_ip_str),
		cmocka_unit_test(test_icmp_parse_truncated_every_length),
		cmocka_unit_test(test_icmp_parse_bad_checksum),
		cmocka_unit_test(test_icmp_build_roundtrip),
		cmocka_unit_test(test_icmp_error_parse_dest_unreach),
		cmocka_unit_test(test_icmp_error_parse_time_exceeded_and_param_problem),
		cmocka_unit_test(test_icmp_error_parse_not_an_error),
		cmocka_unit_test(test_icmp_error_parse_quote_truncated),
		cmocka_unit_test(test_icmp_error_parse_quote_with_options),
		cmocka_unit_test(test_icmp_error_parse_quote_bad_header),
		cmocka_unit_test(test_csum_rfc1071_example),
		cmocka_unit_test(test_csum_empty_and_zero),
		cmocka_unit_test(test_csum_odd_lengths),
		cmocka_unit_test(test_csum_odd_start_address),
		cmocka_unit_test(test_csum_chaining),
		cmocka_unit_test(test_csum_64k_of_ff),
		cmocka_unit_test(test_csum_pseudo_header),
		cmocka_unit_test(test_wire_stack_unknown_ethertypes),
		cmocka_unit_test(test_wire_stack_truncated_frames_every_length),
		cmocka_unit_test(test_wire_stack_ipv4_drops_counted),
		cmocka_unit_test(test_wire_stack_arp_format_counted),
		cmocka_unit_test(test_counters_names),
		cmocka_unit_test(test_ip4_opts_record_route),
		cmocka_unit_test(test_ip4_opts_record_route_full),
		cmocka_unit_test(test_ip4_opts_timestamps),
		cmocka_unit_test(test_ip4_opts_source_route),
		cmocka_unit_test(test_ip4_opts_refused),
		cmocka_unit_test(test_ip6_ext_all_four),
		cmocka_unit_test(test_ip6_ext_dst0_alone),
		cmocka_unit_test(test_ip6_ext_longest),
		cmocka_unit_test(test_ip6_ext_rthdr_type2_and_refused),
		cmocka_unit_test(test_icmp6_error_past_ext_headers),
		cmocka_unit_test(test_ip4_opts_echo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
