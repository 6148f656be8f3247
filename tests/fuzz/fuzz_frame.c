/* libFuzzer harness for the link and network layers: Ethernet, ARP, IPv4,
 * ICMP, IPv6, ICMPv6 and NDP input, the neighbour cache and its timers, and
 * IPv4 and IPv6 output. Every stack also holds 2001:db8::2/64 (and its
 * link-local address), through DAD before the frames arrive.
 *
 * Input: the first byte chooses the set-up, the rest is what arrives.
 *
 *   bit 0  L3 interface (bare IPv4, no ARP)       bit 4  an upper-layer ip_input hook
 *   bit 1  frames carry UST_RX_CSUM_OK            bit 5  datagrams already wait for ARP
 *   bit 2  a default gateway                      bit 6  a pool of 8 buffers, not 64
 *   bit 3  a /31 instead of a /24                 bit 7  several frames (see below)
 *
 * Without bit 7 the rest is one frame, so a captured frame behind a mode byte
 * is a seed. With bit 7 the rest is records: a time step in 100 ms units,
 * a 16-bit big-endian length, that many bytes (cut short at the end).
 *
 * Every input gets a fresh stack on a virtual clock. After the frames, the
 * clock runs on for five seconds so that ARP retries and failures happen.
 * Every frame the stack emits must parse back: an ARP packet from us, an
 * IPv4 datagram from us with a right header checksum, DF, TTL 64, a length
 * that matches the frame and fits the MTU, and (for ICMP) a right checksum;
 * or an IPv6 datagram from one of our addresses (from :: only for DAD),
 * echo or NDP with a right checksum, hop limit 64 or (NDP) 255, to a
 * multicast MAC only when to a group.
 * At the end every buffer must be back in the pool. Anything else aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csum.h"
#include "stack.h"

#define OUR_IP 0x0a090002u  /* 10.9.0.2 */
#define PEER_IP 0x0a090001u /* 10.9.0.1 */
#define GW_IP 0x0a0900feu   /* 10.9.0.254 */
#define FAR_IP 0xc0000201u  /* 192.0.2.1 */
#define MTU 1500

static const uint8_t our_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x02 };

struct fuzz {
	struct ust_stack st;
	ust_time now;
	unsigned resends; /* the unreachable hook sends again, a few times */
	volatile uint32_t sink;
};

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "fuzz_frame: %s:%d: %s\n", __FILE__,     \
				__LINE__, #cond);                                \
			abort();                                                 \
		}                                                                \
	} while (0)

static void check_ipv4(const struct ust_stack *st, const uint8_t *p, size_t len)
{
	struct ust_ipv4 ip;
	struct ust_icmp icmp;

	CHECK(len >= UST_IPV4_HLEN);
	CHECK(p[0] == 0x45);
	CHECK(ust_ipv4_parse(p, len, &ip) == UST_OK);
	CHECK(ip.total_len == len);
	CHECK(ip.total_len <= st->nif.mtu);
	CHECK(ip.src == st->nif.addr);
	CHECK(ip.dst != 0 && ip.dst != st->nif.addr);
	CHECK(!ust_ip_is_multicast(ip.dst) && !ust_ip_is_limited_bcast(ip.dst));
	CHECK(ip.ttl == 64);
	CHECK(ip.frag == UST_IP_DF);
	if (ip.proto == UST_IPPROTO_ICMP) {
		CHECK(ust_icmp_parse(ip.payload, ip.payload_len, &icmp) == UST_OK);
		CHECK(icmp.type == UST_ICMP_ECHO_REPLY || icmp.type == UST_ICMP_ECHO_REQUEST);
		CHECK(icmp.code == 0);
	}
}

static void check_ipv6(const struct ust_stack *st, const uint8_t *p, size_t len, const uint8_t *eth_dst)
{
	struct ust_ipv6 ip;
	struct ust_icmp6 icmp;
	bool nd;

	CHECK(len <= st->nif.mtu);
	CHECK(ust_ipv6_parse(p, len, &ip) == UST_OK);
	CHECK(UST_IPV6_HLEN + ip.payload_len == len);
	CHECK(ip.proto == UST_IPPROTO_ICMPV6 || ip.proto == UST_IPPROTO_TCP);
	if (ip.proto == UST_IPPROTO_ICMPV6) {
		CHECK(ust_icmp6_parse(&ip, &icmp) == UST_OK);
		nd = icmp.type == UST_ND_NEIGHBOR_SOLICIT || icmp.type == UST_ND_NEIGHBOR_ADVERT;
		CHECK(nd || icmp.type == UST_ICMP6_ECHO_REPLY || icmp.type == UST_ICMP6_ECHO_REQUEST);
		CHECK(ip.hop_limit == (nd ? 255 : 64));
	} else {
		nd = false;
		CHECK(ip.hop_limit == 64);
	}
	if (ust_ip6_is_unspecified(&ip.src))
		CHECK(nd && icmp.type == UST_ND_NEIGHBOR_SOLICIT && ust_ip6_is_solicited_node(&ip.dst));
	else
		CHECK(ust_ip6_addr_index(st, &ip.src) >= 0 && ust_ip6_is_ours(st, &ip.src));
	CHECK(ust_ip6_addr_index(st, &ip.dst) < 0 && !ust_ip6_is_unspecified(&ip.dst));
	if (eth_dst) {
		uint8_t mac[6];
		if (ust_ip6_is_multicast(&ip.dst)) {
			ust_ip6_multicast_mac(&ip.dst, mac);
			CHECK(memcmp(eth_dst, mac, 6) == 0);
		} else {
			CHECK(!ust_mac_is_multicast(eth_dst));
		}
	}
}

static void check_frame(const struct ust_stack *st, const uint8_t *f, size_t len)
{
	struct ust_eth eth;
	struct ust_arp arp;

	if (st->nif.l3) {
		if (len && f[0] >> 4 == 6)
			check_ipv6(st, f, len, NULL);
		else
			check_ipv4(st, f, len);
		return;
	}
	CHECK(ust_eth_parse(f, len, &eth) == UST_OK);
	CHECK(memcmp(eth.src, st->nif.mac, 6) == 0);
	CHECK(!ust_mac_is_zero(eth.dst));
	if (eth.type == UST_ETHERTYPE_ARP) {
		CHECK(len == 60);
		CHECK(ust_arp_parse(f + UST_ETH_HLEN, len - UST_ETH_HLEN, &arp) == UST_OK);
		CHECK(memcmp(arp.sha, st->nif.mac, 6) == 0);
		CHECK(arp.spa == st->nif.addr);
		CHECK(arp.tpa != st->nif.addr);
		if (arp.op == UST_ARP_REQUEST)
			CHECK(ust_mac_is_zero(arp.tha));
		else
			CHECK(!ust_mac_is_multicast(eth.dst));
		for (size_t i = UST_ETH_HLEN + UST_ARP_LEN; i < len; i++)
			CHECK(f[i] == 0);
		return;
	}
	if (eth.type == UST_ETHERTYPE_IPV6) {
		check_ipv6(st, f + UST_ETH_HLEN, len - UST_ETH_HLEN, eth.dst);
		return;
	}
	CHECK(eth.type == UST_ETHERTYPE_IPV4);
	CHECK(!ust_mac_is_multicast(eth.dst));
	check_ipv4(st, f + UST_ETH_HLEN, len - UST_ETH_HLEN);
}

static unsigned output(void *ctx, struct ust_pkt *const *pkts, unsigned n)
{
	struct fuzz *z = ctx;

	CHECK(n > 0 && n <= UST_TXQ_MAX);
	for (unsigned i = 0; i < n; i++)
		check_frame(&z->st, pkts[i]->data, pkts[i]->len);
	/* Now and then the link takes only part of a batch. */
	return (z->now / UST_MS(100)) % 7 == 3 ? n / 2 : n;
}

/* A small datagram to dst, as a transport would send. */
static void send_to(struct fuzz *z, uint32_t dst)
{
	struct ust_pkt *p = ust_pkt_alloc(&z->st.pool);

	if (!p)
		return;
	memset(p->data, 0x5a, 20);
	p->len = 20;
	ust_ip_output(&z->st, p, dst, UST_IPPROTO_TCP, 0, z->now);
}

static void on_ip_input(void *ctx, const struct ust_ipv4 *ip, unsigned rxflags, ust_time now)
{
	struct fuzz *z = ctx;

	/* Touch every payload byte: ASan checks the bounds. */
	z->sink += ust_csum_add(0, ip->payload, ip->payload_len);
	/* A transport answers some segments. */
	if (ip->payload_len && ip->payload[0] & 1)
		send_to(z, ip->src);
}

/* The same for IPv6: a small segment to dst. */
static void send6_to(struct fuzz *z, const struct ust_ip6 *dst)
{
	struct ust_pkt *p = ust_pkt_alloc(&z->st.pool);

	if (!p)
		return;
	memset(p->data, 0x5a, 20);
	p->len = 20;
	ust_ip6_send(&z->st, p, NULL, dst, UST_IPPROTO_TCP, 0, 64, 0, z->now);
}

static void on_ip6_input(void *ctx, const struct ust_ipv6 *ip, unsigned rxflags, ust_time now)
{
	struct fuzz *z = ctx;

	z->sink += ust_csum_add(0, ip->payload, ip->payload_len);
	if (ip->payload_len && ip->payload[0] & 1)
		send6_to(z, &ip->src);
}

static void on_icmp6_error(void *ctx, const struct ust_icmp6_error *err, ust_time now)
{
	struct fuzz *z = ctx;

	CHECK(ust_ip6_addr_index(&z->st, &err->src) >= 0);
	z->sink += err->dst.b[15] + err->l4[0] + err->l4[7];
}

static void on_echo_reply6(void *ctx, const struct ust_ip6 *from, uint32_t rest, const uint8_t *data,
			   size_t len, ust_time now)
{
	struct fuzz *z = ctx;

	z->sink += ust_csum_add(0, data, len);
}

static void on_unreachable6(void *ctx, const struct ust_ip6 *dst, int err, ust_time now)
{
	struct fuzz *z = ctx;

	if (z->resends) {
		z->resends--;
		send6_to(z, dst);
	}
}

static void on_icmp_error(void *ctx, const struct ust_icmp_error *err, ust_time now)
{
	struct fuzz *z = ctx;

	CHECK(err->src == z->st.nif.addr);
	z->sink += err->dst + err->l4[0] + err->l4[7];
}

static void on_echo_reply(void *ctx, uint32_t from, uint32_t rest, const uint8_t *data,
			  size_t len, ust_time now)
{
	struct fuzz *z = ctx;

	z->sink += ust_csum_add(0, data, len);
}

static void on_unreachable(void *ctx, uint32_t dst, int err, ust_time now)
{
	struct fuzz *z = ctx;

	/* A transport retransmits from inside the callback. */
	if (z->resends) {
		z->resends--;
		send_to(z, dst);
	}
}

static void input(struct fuzz *z, const uint8_t *f, size_t len, unsigned rxflags)
{
	ust_stack_input(&z->st, f, len, rxflags, z->now);
	ust_stack_flush(&z->st);
}

static void run_timers(struct fuzz *z)
{
	ust_time next = ust_stack_timers(&z->st, z->now);

	CHECK(next == UST_TIME_NEVER || next > z->now);
	ust_stack_flush(&z->st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz z;
	struct ust_netif nif = { .addr = OUR_IP, .mtu = MTU, .has_addr6 = true, .prefix6 = 64,
				 .addr6 = { .b = { 0x20, 0x01, 0x0d, 0xb8, [15] = 2 } } };
	static const struct ust_ip6 peer6 = { .b = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 } };
	uint8_t mode;
	unsigned rxflags;

	if (size < 1)
		return 0;
	mode = data[0];
	data++;
	size--;

	memset(&z, 0, sizeof(z));
	nif.l3 = mode & 0x01;
	rxflags = mode & 0x02 ? UST_RX_CSUM_OK : 0;
	nif.mask = mode & 0x08 ? 0xfffffffeu : 0xffffff00u;
	if (mode & 0x04)
		nif.gw = mode & 0x08 ? 0x0a090003u : GW_IP;
	memcpy(nif.mac, our_mac, 6);
	CHECK(ust_stack_init(&z.st, &nif, mode & 0x40 ? 8 : 64, output, &z) == 0);
	z.now = UST_SEC(1000);
	z.resends = 2;
	z.st.upper.ctx = &z;
	z.st.upper.icmp_error = on_icmp_error;
	z.st.upper.echo_reply = on_echo_reply;
	z.st.upper.unreachable = on_unreachable;
	z.st.upper.icmp6_error = on_icmp6_error;
	z.st.upper.echo_reply6 = on_echo_reply6;
	z.st.upper.unreachable6 = on_unreachable6;
	if (mode & 0x10) {
		z.st.upper.ip_input = on_ip_input;
		z.st.upper.ip6_input = on_ip6_input;
	}
	/* DAD: a second with nobody claiming our IPv6 addresses. */
	run_timers(&z);
	z.now += UST_SEC(1);
	run_timers(&z);

	if (mode & 0x20) {
		send_to(&z, PEER_IP);
		send_to(&z, FAR_IP);
		send_to(&z, PEER_IP);
		send6_to(&z, &peer6);
		ust_stack_flush(&z.st);
	}

	if (!(mode & 0x80)) {
		input(&z, data, size, rxflags);
	} else {
		while (size >= 3) {
			size_t len = (size_t)data[1] << 8 | data[2];
			z.now += UST_MS(100) * data[0];
			data += 3;
			size -= 3;
			if (len > size)
				len = size;
			run_timers(&z);
			input(&z, data, len, rxflags);
			data += len;
			size -= len;
		}
	}

	/* Let the clock run: retries, failures, a datagram to a stale entry. */
	for (int i = 0; i < 5; i++) {
		z.now += UST_SEC(1);
		run_timers(&z);
	}
	z.now += UST_ARP_REACHABLE;
	send_to(&z, PEER_IP);
	ust_stack_flush(&z.st);
	run_timers(&z);

	ust_stack_flush(&z.st);
	ust_arp_flush(&z.st);
	CHECK(z.st.txq_len == 0);
	CHECK(z.st.pool.avail == z.st.pool.size);
	ust_stack_destroy(&z.st);
	return 0;
}
