/* The packet socket's filter (ust_link_filter, stack/link.c), run here by a
 * small interpreter of the classic BPF instructions it uses, as the kernel
 * runs it: what passes is ARP for our address, IPv4 to it, and with an IPv6
 * address IPv6 to it, to the link-local address of our MAC, to all nodes
 * and to the solicited-node groups of both, each of a protocol the stack
 * walks (TCP, ICMP, ICMPv6, IPv6's extension headers); nothing else. And an exit
 * keeper's (ust_link_port_filter): of those, TCP to its ports, ICMP and
 * ICMPv6 errors about them, ARP and neighbour discovery; the ranges of
 * ports it is given (ust_steer_ranges, stack/steer.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bpf_run.h"

#include "link.h"

#define OUR_IP 0x0a090002u
static const uint8_t our_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x02 };
static const struct ust_ip6 our6 = { .b = { 0x20, 0x01, 0x0d, 0xb8, [15] = 2 } };

static unsigned bpf_run(const struct sock_filter *prog, unsigned n, const uint8_t *pkt, size_t len)
{
	return bpf_run_proto(prog, n, pkt, len, 0);
}

/* An Ethernet frame of type with, for IPv4, dst at 30 and the protocol
 * at 23, and, for IPv6, dst at 38 and the next header at 20; for ARP the
 * target address at 38; for other types nothing. */
static size_t eth_frame_proto(uint8_t *f, uint16_t type, uint32_t dst4, const struct ust_ip6 *dst6, uint8_t proto)
{
	memset(f, 0, 80);
	ust_eth_build(f, our_mac, our_mac, type);
	if (type == UST_ETHERTYPE_IPV4) {
		f[14] = 0x45;
		f[23] = proto;
		ust_put32(f + 30, dst4);
	} else if (type == UST_ETHERTYPE_ARP) {
		ust_put32(f + 38, dst4);
	} else if (type == UST_ETHERTYPE_IPV6) {
		f[14] = 0x60;
		f[20] = proto;
		memcpy(f + 38, dst6->b, 16);
	}
	return 80;
}

/* The same, carrying TCP. */
static size_t eth_frame(uint8_t *f, uint16_t type, uint32_t dst4, const struct ust_ip6 *dst6)
{
	return eth_frame_proto(f, type, dst4, dst6, UST_IPPROTO_TCP);
}

static struct sock_filter kprog[UST_LINK_GROUP_FILTER_MAX];
static unsigned kn;

static bool passes(const struct sock_filter *prog, unsigned n, uint16_t type, uint32_t dst4,
		   const struct ust_ip6 *dst6)
{
	uint8_t f[80];

	return bpf_run(prog, n, f, eth_frame(f, type, dst4, dst6)) != 0;
}

static void test_filter_ipv4_only(void **state)
{
	struct sock_filter prog[UST_LINK_FILTER_MAX];
	unsigned n = ust_link_filter(OUR_IP, NULL, our_mac, false, prog);

	assert_true(n <= UST_LINK_FILTER_MAX);
	assert_true(passes(prog, n, UST_ETHERTYPE_IPV4, OUR_IP, NULL));
	assert_true(passes(prog, n, UST_ETHERTYPE_ARP, OUR_IP, NULL));
	assert_false(passes(prog, n, UST_ETHERTYPE_IPV4, OUR_IP + 1, NULL));
	assert_false(passes(prog, n, UST_ETHERTYPE_ARP, OUR_IP + 1, NULL));
	assert_false(passes(prog, n, UST_ETHERTYPE_IPV6, 0, &our6));
	assert_false(passes(prog, n, UST_ETHERTYPE_VLAN, OUR_IP, NULL));
}

static void test_filter_ipv6(void **state)
{
	static const struct ust_ip6 all_nodes = { .b = { 0xff, 0x02, [15] = 1 } };
	static const struct ust_ip6 all_routers = { .b = { 0xff, 0x02, [15] = 2 } };
	static const struct ust_ip6 other = { .b = { 0x20, 0x01, 0x0d, 0xb8, [15] = 3 } };
	struct sock_filter prog[UST_LINK_FILTER_MAX];
	unsigned n = ust_link_filter(OUR_IP, &our6, our_mac, false, prog);
	struct ust_ip6 ll = ust_ip6_link_local(our_mac);
	struct ust_ip6 sn = ust_ip6_solicited_node(&our6), sn_ll = ust_ip6_solicited_node(&ll);
	struct ust_ip6 sn_other = ust_ip6_solicited_node(&other);

	assert_true(n <= UST_LINK_FILTER_MAX);
	assert_true(passes(prog, n, UST_ETHERTYPE_IPV4, OUR_IP, NULL));
	assert_true(passes(prog, n, UST_ETHERTYPE_ARP, OUR_IP, NULL));
	assert_false(passes(prog, n, UST_ETHERTYPE_IPV4, OUR_IP + 1, NULL));
	assert_true(passes(prog, n, UST_ETHERTYPE_IPV6, 0, &our6));
	assert_true(passes(prog, n, UST_ETHERTYPE_IPV6, 0, &ll));
	assert_true(passes(prog, n, UST_ETHERTYPE_IPV6, 0, &all_nodes));
	assert_true(passes(prog, n, UST_ETHERTYPE_IPV6, 0, &sn));
	assert_true(passes(prog, n, UST_ETHERTYPE_IPV6, 0, &sn_ll));
	assert_false(passes(prog, n, UST_ETHERTYPE_IPV6, 0, &other));
	assert_false(passes(prog, n, UST_ETHERTYPE_IPV6, 0, &all_routers));
	assert_false(passes(prog, n, UST_ETHERTYPE_IPV6, 0, &sn_other));
	/* The IPv4 address in an IPv6 frame, and the reverse. */
	assert_false(passes(prog, n, UST_ETHERTYPE_IPV6, 0, &(struct ust_ip6){ .b = { 0x0a, 0x09, 0, 2 } }));
	assert_false(passes(prog, n, UST_ETHERTYPE_ARP, ust_get32(our6.b), NULL));
}

/* What the stack takes passes; other protocols do not, whose GSO frames
 * the kernel may not describe (SCTP's, a tunnel's around SCTP), and
 * would leave the receive ring stuck. Also on a tun link. */
static void test_filter_protocols(void **state)
{
	static const uint8_t pass4[] = { 6, 1 }, drop4[] = { 17, 132, 47, 4, 41, 50, 0, 58 };
	static const uint8_t pass6[] = { 6, 58, 0, 43, 60, 44 }, drop6[] = { 17, 132, 47, 4, 41, 50, 1, 59 };
	struct sock_filter prog[UST_LINK_FILTER_MAX];
	unsigned n = ust_link_filter(OUR_IP, &our6, our_mac, false, prog), n4;
	uint8_t f[80], d[60];

	for (unsigned i = 0; i < sizeof(pass4); i++)
		assert_true(bpf_run(prog, n, f, eth_frame_proto(f, UST_ETHERTYPE_IPV4, OUR_IP, NULL, pass4[i])));
	for (unsigned i = 0; i < sizeof(drop4); i++)
		assert_false(bpf_run(prog, n, f, eth_frame_proto(f, UST_ETHERTYPE_IPV4, OUR_IP, NULL, drop4[i])));
	for (unsigned i = 0; i < sizeof(pass6); i++)
		assert_true(bpf_run(prog, n, f, eth_frame_proto(f, UST_ETHERTYPE_IPV6, 0, &our6, pass6[i])));
	for (unsigned i = 0; i < sizeof(drop6); i++)
		assert_false(bpf_run(prog, n, f, eth_frame_proto(f, UST_ETHERTYPE_IPV6, 0, &our6, drop6[i])));
	/* IPv4 only: the same for IPv4. */
	n4 = ust_link_filter(OUR_IP, NULL, our_mac, false, prog);
	assert_true(bpf_run(prog, n4, f, eth_frame_proto(f, UST_ETHERTYPE_IPV4, OUR_IP, NULL, 1)));
	assert_false(bpf_run(prog, n4, f, eth_frame_proto(f, UST_ETHERTYPE_IPV4, OUR_IP, NULL, 17)));
	assert_false(bpf_run(prog, n4, f, eth_frame_proto(f, UST_ETHERTYPE_IPV4, OUR_IP, NULL, 132)));
	/* tun: the protocol at 9, the next header at 6. */
	n = ust_link_filter(OUR_IP, &our6, our_mac, true, prog);
	memset(d, 0, sizeof(d));
	d[0] = 0x45;
	ust_put32(d + 16, OUR_IP);
	d[9] = UST_IPPROTO_ICMP;
	assert_true(bpf_run(prog, n, d, sizeof(d)));
	d[9] = 132;
	assert_false(bpf_run(prog, n, d, sizeof(d)));
	memset(d, 0, sizeof(d));
	d[0] = 0x60;
	memcpy(d + 24, our6.b, 16);
	d[6] = UST_IPPROTO_HOPOPTS;
	assert_true(bpf_run(prog, n, d, sizeof(d)));
	d[6] = 132;
	assert_false(bpf_run(prog, n, d, sizeof(d)));
}

static void test_filter_l3(void **state)
{
	static const struct ust_ip6 other = { .b = { 0x20, 0x01, 0x0d, 0xb8, [15] = 3 } };
	struct sock_filter prog[UST_LINK_FILTER_MAX];
	uint8_t d[60] = { 0x45 };
	unsigned n4 = ust_link_filter(OUR_IP, NULL, our_mac, true, prog);

	d[9] = UST_IPPROTO_TCP;
	ust_put32(d + 16, OUR_IP);
	assert_true(bpf_run(prog, n4, d, sizeof(d)) != 0);
	d[0] = 0x60;
	d[6] = UST_IPPROTO_TCP;
	memcpy(d + 24, our6.b, 16);
	assert_int_equal(bpf_run(prog, n4, d, sizeof(d)), 0);
	{
		unsigned n6 = ust_link_filter(OUR_IP, &our6, our_mac, true, prog);

		assert_true(bpf_run(prog, n6, d, sizeof(d)) != 0);
		memcpy(d + 24, other.b, 16);
		assert_int_equal(bpf_run(prog, n6, d, sizeof(d)), 0);
		d[0] = 0x45;
		assert_true(bpf_run(prog, n6, d, sizeof(d)) != 0);
	}
}

/* ---- the exit keeper's: ports ---- */

#define ACCEPT 0x40000u /* whole frames, 64 KiB GSO ones too */

static uint64_t bits[1024];

static void set_port(unsigned p)
{
	bits[p / 64] |= 1ull << (p % 64);
}

static bool port_set(unsigned p)
{
	return bits[p / 64] >> (p % 64) & 1;
}

/* r[0..n) is sorted, disjoint, holds every port set and, when exact, no
 * other. */
static void check_ranges(const struct ust_steer_range *r, unsigned n, bool exact)
{
	unsigned i = 0;

	for (unsigned k = 0; k < n; k++) {
		assert_true(r[k].lo <= r[k].hi);
		if (k)
			assert_true(r[k].lo > r[k - 1].hi + 1u);
		assert_true(port_set(r[k].lo));
		assert_true(port_set(r[k].hi));
	}
	for (unsigned p = 0; p < 65536; p++) {
		while (i < n && r[i].hi < p)
			i++;
		bool in = i < n && r[i].lo <= p;
		if (port_set(p))
			assert_true(in);
		else if (exact)
			assert_false(in);
	}
}

static void test_ranges(void **state)
{
	struct ust_steer_range r[UST_LINK_PORT_RANGES_MAX];
	uint64_t seed = 42;
	unsigned n;

	memset(bits, 0, sizeof(bits));
	assert_int_equal(ust_steer_ranges(bits, r, 8), 0);
	set_port(0);
	set_port(80);
	set_port(81);
	set_port(82);
	set_port(1000);
	for (unsigned p = 40000; p <= 40010; p++)
		set_port(p);
	set_port(65535);
	n = ust_steer_ranges(bits, r, 8);
	assert_int_equal(n, 5);
	check_ranges(r, n, true);
	assert_int_equal(r[1].lo, 80);
	assert_int_equal(r[1].hi, 82);
	assert_int_equal(r[4].lo, 65535);
	/* Too many: the shortest gaps are filled first. */
	n = ust_steer_ranges(bits, r, 4);
	assert_int_equal(n, 4);
	check_ranges(r, n, false);
	assert_int_equal(r[0].lo, 0);
	assert_int_equal(r[0].hi, 82);
	n = ust_steer_ranges(bits, r, 1);
	assert_int_equal(n, 1);
	assert_int_equal(r[0].lo, 0);
	assert_int_equal(r[0].hi, 65535);
	/* Every other port: one range. */
	memset(bits, 0, sizeof(bits));
	for (unsigned p = 2; p < 65536; p += 2)
		set_port(p);
	n = ust_steer_ranges(bits, r, UST_LINK_PORT_RANGES_MAX);
	assert_int_equal(n, 1);
	check_ranges(r, n, false);
	/* Random sets, sparse and dense. */
	for (unsigned round = 0; round < 40; round++) {
		unsigned count = round < 20 ? 100 + round * 10 : 5000 * (round - 19);

		memset(bits, 0, sizeof(bits));
		for (unsigned k = 0; k < count; k++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			set_port((unsigned)(seed >> 48));
		}
		n = ust_steer_ranges(bits, r, UST_LINK_PORT_RANGES_MAX);
		assert_true(n >= 1 && n <= UST_LINK_PORT_RANGES_MAX);
		check_ranges(r, n, false);
	}
}

/* The IP header's offset in frames built below: 14 on Ethernet, 0 on L3. */
static unsigned ip_at;

/* An IPv4 datagram to dst of protocol proto (header of ihl words), the
 * frame's length: 120 bytes in all. */
static uint8_t *ip4(uint8_t *f, uint32_t dst, uint8_t proto, unsigned ihl)
{
	uint8_t *ip = f + ip_at;

	memset(f, 0, 160);
	if (ip_at)
		ust_eth_build(f, our_mac, our_mac, UST_ETHERTYPE_IPV4);
	ip[0] = (uint8_t)(0x40 | ihl);
	ip[9] = proto;
	ust_put32(ip + 16, dst);
	return ip + 4 * ihl;
}

static unsigned tcp4(uint32_t dst, uint16_t dport, unsigned ihl, uint16_t frag)
{
	uint8_t f[160], *th = ip4(f, dst, 6, ihl);

	ust_put16(f + ip_at + 6, frag);
	ust_put16(th, 5000);
	ust_put16(th + 2, dport);
	return bpf_run(kprog, kn, f, 120);
}

/* An ICMP error (type) about a segment of proto from sport, whose quoted
 * header has qihl words. */
static unsigned icmp4(uint8_t type, uint8_t proto, uint16_t sport, unsigned qihl)
{
	uint8_t f[160], *icmp = ip4(f, OUR_IP, 1, 5), *q = icmp + 8;

	icmp[0] = type;
	q[0] = (uint8_t)(0x40 | qihl);
	q[9] = proto;
	ust_put16(q + 4 * qihl, sport);
	ust_put16(q + 4 * qihl + 2, 443);
	return bpf_run(kprog, kn, f, ip_at + 28 + 4 * qihl + 8);
}

static uint8_t *ip6(uint8_t *f, const struct ust_ip6 *dst, uint8_t next)
{
	uint8_t *ip = f + ip_at;

	memset(f, 0, 160);
	if (ip_at)
		ust_eth_build(f, our_mac, our_mac, UST_ETHERTYPE_IPV6);
	ip[0] = 0x60;
	ip[6] = next;
	memcpy(ip + 24, dst->b, 16);
	return ip + 40;
}

static unsigned tcp6(const struct ust_ip6 *dst, uint16_t dport)
{
	uint8_t f[160], *th = ip6(f, dst, 6);

	ust_put16(th, 5000);
	ust_put16(th + 2, dport);
	return bpf_run(kprog, kn, f, ip_at + 60);
}

/* ICMPv6 of type; for an error, about a segment of next from sport. */
static unsigned icmp6(const struct ust_ip6 *dst, uint8_t type, uint8_t next, uint16_t sport)
{
	uint8_t f[160], *icmp = ip6(f, dst, 58), *q = icmp + 8;

	icmp[0] = type;
	q[0] = 0x60;
	q[6] = next;
	ust_put16(q + 40, sport);
	return bpf_run(kprog, kn, f, ip_at + 40 + 8 + 40 + 8);
}

/* ext6_frame (bpf_run.h) to dst, in a frame at f: a segment to port past
 * the extension headers nh[0..n), or an ICMPv6 error quoting ours from
 * port with them (quote). */
static unsigned ext6(const struct ust_ip6 *dst, uint16_t port, const uint8_t *nh, unsigned n, bool quote)
{
	uint8_t f[UST_ETH_HLEN + 200];
	size_t len = ext6_frame(f + ip_at, port, nh, n, quote);

	if (ip_at)
		ust_eth_build(f, our_mac, our_mac, UST_ETHERTYPE_IPV6);
	memcpy(f + ip_at + 24, dst->b, 16);
	return bpf_run(kprog, kn, f, ip_at + len);
}

static const struct ust_steer_range kranges[] = { { 80, 82, 0 }, { 40000, 40010, 0 } };

static void keeper_prog(const struct ust_ip6 *a6, bool l3, const struct ust_steer_range *r, unsigned nr)
{
	ip_at = l3 ? 0 : UST_ETH_HLEN;
	kn = ust_link_port_filter(OUR_IP, a6, our_mac, l3, r, nr, kprog);
	assert_true(kn > 0 && kn <= UST_LINK_PORT_FILTER_MAX);
}

static void test_port_filter_ipv4(void **state)
{
	uint8_t f[80];

	keeper_prog(NULL, false, kranges, 2);
	assert_int_equal(tcp4(OUR_IP, 80, 5, 0), ACCEPT);
	assert_int_equal(tcp4(OUR_IP, 82, 5, 0), ACCEPT);
	assert_int_equal(tcp4(OUR_IP, 40000, 5, 0x4000), ACCEPT); /* DF */
	assert_int_equal(tcp4(OUR_IP, 40010, 5, 0x2000), ACCEPT); /* a first fragment */
	assert_int_equal(tcp4(OUR_IP, 40007, 7, 0), ACCEPT);      /* IP options */
	assert_int_equal(tcp4(OUR_IP, 79, 5, 0), 0);
	assert_int_equal(tcp4(OUR_IP, 83, 5, 0), 0);
	assert_int_equal(tcp4(OUR_IP, 39999, 5, 0), 0);
	assert_int_equal(tcp4(OUR_IP, 40011, 5, 0), 0);
	assert_int_equal(tcp4(OUR_IP, 80, 5, 0x2001), 0);         /* a later fragment */
	assert_int_equal(tcp4(OUR_IP + 1, 80, 5, 0), 0);          /* not our address */
	/* Other protocols to a port of ours. */
	{
		uint8_t g[160], *uh = ip4(g, OUR_IP, 17, 5);

		ust_put16(uh + 2, 80);
		assert_int_equal(bpf_run(kprog, kn, g, 120), 0);
	}
	/* ICMP errors about our segments, from their source port. */
	assert_int_equal(icmp4(3, 6, 81, 5), ACCEPT);
	assert_int_equal(icmp4(11, 6, 40003, 5), ACCEPT);
	assert_int_equal(icmp4(12, 6, 80, 6), ACCEPT);
	assert_int_equal(icmp4(3, 6, 83, 5), 0);
	assert_int_equal(icmp4(3, 17, 81, 5), 0);
	assert_int_equal(icmp4(8, 6, 81, 5), 0); /* an echo request */
	/* ARP for our address, still. */
	assert_true(passes(kprog, kn, UST_ETHERTYPE_ARP, OUR_IP, NULL));
	assert_false(passes(kprog, kn, UST_ETHERTYPE_ARP, OUR_IP + 1, NULL));
	assert_false(passes(kprog, kn, UST_ETHERTYPE_IPV6, 0, &our6));
	(void)f;
}

static void test_port_filter_ipv6(void **state)
{
	static const struct ust_ip6 other = { .b = { 0x20, 0x01, 0x0d, 0xb8, [15] = 3 } };
	struct ust_ip6 sn = ust_ip6_solicited_node(&our6);

	keeper_prog(&our6, false, kranges, 2);
	assert_int_equal(tcp6(&our6, 81), ACCEPT);
	assert_int_equal(tcp6(&our6, 40010), ACCEPT);
	assert_int_equal(tcp6(&our6, 83), 0);
	assert_int_equal(tcp6(&other, 81), 0);
	assert_int_equal(icmp6(&our6, 1, 6, 40001), ACCEPT); /* unreachable */
	assert_int_equal(icmp6(&our6, 2, 6, 80), ACCEPT);    /* packet too big */
	assert_int_equal(icmp6(&our6, 3, 6, 82), ACCEPT);    /* time exceeded */
	assert_int_equal(icmp6(&our6, 4, 6, 82), ACCEPT);    /* parameter problem */
	assert_int_equal(icmp6(&our6, 1, 6, 9), 0);
	assert_int_equal(icmp6(&our6, 1, 17, 80), 0);
	assert_int_equal(icmp6(&our6, 128, 6, 80), 0);       /* an echo request */
	assert_int_equal(icmp6(&our6, 130, 6, 80), 0);       /* MLD */
	for (uint8_t t = 133; t <= 137; t++)                 /* neighbour discovery */
		assert_int_equal(icmp6(&sn, t, 0, 0), ACCEPT);
	assert_int_equal(icmp6(&other, 135, 0, 0), 0);
	assert_int_equal(icmp6(&sn, 138, 0, 0), 0);
	/* Past a peer's sticky extension headers (hop-by-hop, destination
	 * options, routing): up to four, as the steering program walks
	 * them; errors quoting ours with them. */
	{
		static const uint8_t four[] = { 0, 60, 43, 60 }, five[] = { 0, 60, 43, 60, 60 }, frag[] = { 44 };

		assert_int_equal(ext6(&our6, 81, four, 1, false), ACCEPT);
		assert_int_equal(ext6(&our6, 40004, four, 4, false), ACCEPT);
		assert_int_equal(ext6(&our6, 83, four, 4, false), 0);
		assert_int_equal(ext6(&other, 81, four, 2, false), 0);
		assert_int_equal(ext6(&our6, 81, five, 5, false), 0);
		assert_int_equal(ext6(&our6, 81, frag, 1, false), 0);
		assert_int_equal(ext6(&our6, 82, four, 4, true), ACCEPT);
		assert_int_equal(ext6(&our6, 84, four, 3, true), 0);
		assert_int_equal(ext6(&our6, 82, five, 5, true), 0);
	}
	/* IPv4 alongside. */
	assert_int_equal(tcp4(OUR_IP, 80, 5, 0), ACCEPT);
	assert_int_equal(tcp4(OUR_IP, 83, 5, 0), 0);
	assert_true(passes(kprog, kn, UST_ETHERTYPE_ARP, OUR_IP, NULL));
}

/* A SO_REUSEPORT group member's own socket (ust_link_group_filter): its
 * port in its family, errors about it, nothing else; no ARP, no neighbour
 * discovery (the neighbour socket's). */
static void test_group_filter(void **state)
{
	struct ust_ip6 sn = ust_ip6_solicited_node(&our6);

	ip_at = UST_ETH_HLEN;
	kn = ust_link_group_filter(OUR_IP, &our6, our_mac, 7500, false, kprog);
	assert_true(kn > 0 && kn <= UST_LINK_GROUP_FILTER_MAX);
	assert_int_equal(tcp4(OUR_IP, 7500, 5, 0), ACCEPT);
	assert_int_equal(tcp4(OUR_IP, 7500, 7, 0), ACCEPT);
	assert_int_equal(icmp4(3, 6, 7500, 5), ACCEPT);
	assert_int_equal(tcp4(OUR_IP, 7499, 5, 0), 0);
	assert_int_equal(tcp4(OUR_IP, 7501, 5, 0), 0);
	assert_int_equal(tcp4(OUR_IP + 1, 7500, 5, 0), 0);
	assert_int_equal(icmp4(3, 6, 80, 5), 0);
	assert_false(passes(kprog, kn, UST_ETHERTYPE_ARP, OUR_IP, NULL));
	assert_int_equal(tcp6(&our6, 7500), 0); /* the other family */
	assert_int_equal(icmp6(&sn, 135, 0, 0), 0);

	kn = ust_link_group_filter(OUR_IP, &our6, our_mac, 7500, true, kprog);
	assert_true(kn > 0 && kn <= UST_LINK_GROUP_FILTER_MAX);
	assert_int_equal(tcp6(&our6, 7500), ACCEPT);
	assert_int_equal(icmp6(&our6, 2, 6, 7500), ACCEPT); /* packet too big */
	assert_int_equal(tcp6(&our6, 7501), 0);
	for (uint8_t t = 133; t <= 137; t++)
		assert_int_equal(icmp6(&sn, t, 0, 0), 0);
	assert_int_equal(icmp6(&our6, 128, 6, 7500), 0);
	assert_int_equal(tcp4(OUR_IP, 7500, 5, 0), 0); /* the other family */
	assert_false(passes(kprog, kn, UST_ETHERTYPE_ARP, OUR_IP, NULL));
}

static void test_port_filter_l3(void **state)
{
	keeper_prog(&our6, true, kranges, 2);
	assert_int_equal(tcp4(OUR_IP, 80, 5, 0), ACCEPT);
	assert_int_equal(tcp4(OUR_IP, 84, 5, 0), 0);
	assert_int_equal(tcp4(OUR_IP + 1, 80, 5, 0), 0);
	assert_int_equal(icmp4(3, 6, 40002, 5), ACCEPT);
	assert_int_equal(tcp6(&our6, 40004), ACCEPT);
	assert_int_equal(tcp6(&our6, 40011), 0);
	assert_int_equal(icmp6(&our6, 2, 6, 82), ACCEPT);
	{
		static const uint8_t two[] = { 0, 60 };

		assert_int_equal(ext6(&our6, 40004, two, 2, false), ACCEPT);
		assert_int_equal(ext6(&our6, 40011, two, 2, false), 0);
		assert_int_equal(ext6(&our6, 80, two, 2, true), ACCEPT);
	}
}

/* No port left: only ARP (and neighbour discovery) pass. Every port of
 * UST_LINK_PORT_RANGES_MAX ranges; one range more has no program. */
static void test_port_filter_bounds(void **state)
{
	static struct ust_steer_range many[UST_LINK_PORT_RANGES_MAX + 1];
	unsigned i = 0;

	keeper_prog(&our6, false, NULL, 0);
	assert_int_equal(tcp4(OUR_IP, 80, 5, 0), 0);
	assert_int_equal(tcp6(&our6, 80), 0);
	assert_int_equal(icmp4(3, 6, 80, 5), 0);
	assert_true(passes(kprog, kn, UST_ETHERTYPE_ARP, OUR_IP, NULL));

	for (unsigned k = 0; k <= UST_LINK_PORT_RANGES_MAX; k++)
		many[k] = (struct ust_steer_range){ (uint16_t)(1000 + 300 * k), (uint16_t)(1000 + 300 * k + k % 7), 0 };
	keeper_prog(&our6, false, many, UST_LINK_PORT_RANGES_MAX);
	assert_int_equal(kn, ust_link_filter(OUR_IP, &our6, our_mac, false, kprog) - 1 + UST_LINK_PORT_FILTER_HEAD +
				     6 * UST_LINK_PORT_RANGES_MAX - 2);
	keeper_prog(&our6, false, many, UST_LINK_PORT_RANGES_MAX);
	for (unsigned p = 0; p < 65536; p++) {
		while (i < UST_LINK_PORT_RANGES_MAX && many[i].hi < p)
			i++;
		bool in = i < UST_LINK_PORT_RANGES_MAX && many[i].lo <= p;
		assert_int_equal(tcp4(OUR_IP, (uint16_t)p, 5, 0), in ? ACCEPT : 0);
	}
	assert_int_equal(ust_link_port_filter(OUR_IP, &our6, our_mac, false, many, UST_LINK_PORT_RANGES_MAX + 1,
					      kprog), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filter_ipv4_only),
		cmocka_unit_test(test_filter_ipv6),
		cmocka_unit_test(test_filter_protocols),
		cmocka_unit_test(test_filter_l3),
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_port_filter_ipv4),
		cmocka_unit_test(test_port_filter_ipv6),
		cmocka_unit_test(test_port_filter_l3),
		cmocka_unit_test(test_group_filter),
		cmocka_unit_test(test_port_filter_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
