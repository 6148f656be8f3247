/* IPv6 on the network layer: the link-local address, DAD, answering
 * neighbour solicitations, resolving neighbours and giving up on them,
 * ICMPv6 echo, and every malformed datagram dropped and counted. The stack
 * runs on a virtual clock; its output is captured frame by frame. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "stack.h"
#include "tcp.h"

#include "stack_harness.h"

/* 2001:db8::2/64 is ours, 2001:db8::1 the peer's. */
static const struct ust_ip6 our6 = { .b = { 0x20, 0x01, 0x0d, 0xb8, [15] = 2 } };
static const struct ust_ip6 peer6 = { .b = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 } };
static const struct ust_ip6 unspecified6;

struct harness6 {
	struct harness h;
	unsigned echo6_calls, unreach6_calls;
	struct ust_ip6 unreach6_dst;
};

static void on_echo_reply6(void *ctx, const struct ust_ip6 *from, uint32_t rest, const uint8_t *data,
			   size_t len, ust_time now)
{
	((struct harness6 *)ctx)->echo6_calls++;
}

static void on_unreachable6(void *ctx, const struct ust_ip6 *dst, int err, ust_time now)
{
	struct harness6 *h6 = ctx;

	assert_int_equal(err, EHOSTUNREACH);
	h6->unreach6_calls++;
	h6->unreach6_dst = *dst;
}

static struct harness6 *new6(void)
{
	struct harness6 *h6 = calloc(1, sizeof(*h6));
	struct harness *h = &h6->h;
	struct ust_netif nif = { .addr = OUR_IP, .mask = MASK24, .mtu = 1500, .has_addr6 = true,
				 .addr6 = our6, .prefix6 = 64 };

	assert_non_null(h6);
	memcpy(nif.mac, our_mac, 6);
	assert_int_equal(ust_stack_init(&h->st, &nif, 64, capture_output, h), 0);
	h->take = UINT_MAX;
	h->now = UST_SEC(1000);
	h->st.upper.ctx = h6;
	h->st.upper.echo_reply6 = on_echo_reply6;
	h->st.upper.unreachable6 = on_unreachable6;
	return h6;
}

static void run_timers(struct harness *h)
{
	ust_stack_timers(&h->st, h->now);
	ust_stack_flush(&h->st);
}

/* The next frame is IPv6 to eth_dst; returns the datagram and its ICMPv6
 * message (checksum verified). */
static struct ust_icmp6 expect_icmp6(struct harness *h, const uint8_t *eth_dst, struct ust_ipv6 *ip)
{
	const struct captured *c = next_frame(h);
	struct ust_icmp6 icmp;

	assert_memory_equal(c->data, eth_dst, 6);
	assert_int_equal(ust_get16(c->data + 12), UST_ETHERTYPE_IPV6);
	assert_int_equal(ust_ipv6_parse(c->data + UST_ETH_HLEN, c->len - UST_ETH_HLEN, ip), UST_OK);
	assert_int_equal(ip->proto, UST_IPPROTO_ICMPV6);
	assert_int_equal(ust_icmp6_parse(ip, &icmp), UST_OK);
	return icmp;
}

static void sn_mac(const struct ust_ip6 *a, uint8_t mac[6])
{
	struct ust_ip6 g = ust_ip6_solicited_node(a);

	ust_ip6_multicast_mac(&g, mac);
}

/* DAD for both addresses, a second without an answer: both ours. */
static struct harness6 *new6_ready(void)
{
	struct harness6 *h6 = new6();
	struct harness *h = &h6->h;

	run_timers(h);
	h->seen = h->n_out;
	h->now += UST_SEC(1);
	run_timers(h);
	expect_nothing(h);
	assert_true(ust_ip6_is_ours(&h->st, &our6));
	return h6;
}

static int setup6(void **state)
{
	*state = new6_ready();
	return 0;
}

static int setup6_tentative(void **state)
{
	*state = new6();
	return 0;
}

static int teardown6(void **state)
{
	return teardown_check_pool(state);
}

/* An IPv6 datagram from the peer: ext (extension headers, next header
 * first) then an upper-layer payload of proto; returns the frame length. */
static size_t frame6(uint8_t *f, const uint8_t *eth_dst, const struct ust_ip6 *src, const struct ust_ip6 *dst,
		     uint8_t hop, const uint8_t *ext, size_t ext_len, uint8_t proto, const uint8_t *l4, size_t len)
{
	ust_eth_build(f, eth_dst, peer_mac, UST_ETHERTYPE_IPV6);
	ust_ipv6_build(f + UST_ETH_HLEN, src, dst, ext_len ? ext[0] : proto, 0, (uint16_t)(ext_len + len), hop);
	if (ext_len)
		memcpy(f + UST_ETH_HLEN + UST_IPV6_HLEN, ext + 1, ext_len);
	memcpy(f + UST_ETH_HLEN + UST_IPV6_HLEN + ext_len, l4, len);
	return UST_ETH_HLEN + UST_IPV6_HLEN + ext_len + len;
}

/* An ICMPv6 message into m (checksum for src and dst); returns its length. */
static size_t icmp6_msg(uint8_t *m, uint8_t type, uint32_t rest, const uint8_t *data, size_t len,
			const struct ust_ip6 *src, const struct ust_ip6 *dst)
{
	if (len)
		memcpy(m + UST_ICMP6_HLEN, data, len);
	ust_icmp6_build(m, type, 0, rest, len, src, dst);
	return UST_ICMP6_HLEN + len;
}

/* A neighbour solicitation or advertisement body: target, then a
 * link-layer address option of kind opt (0: none). */
static size_t nd_body(uint8_t *b, const struct ust_ip6 *target, uint8_t opt, const uint8_t *mac)
{
	memcpy(b, target->b, 16);
	if (!opt)
		return 16;
	b[16] = opt;
	b[17] = 1;
	memcpy(b + 18, mac, 6);
	return 24;
}

static void rx_echo6(struct harness *h, const struct ust_ip6 *dst, const uint8_t *ext, size_t ext_len)
{
	uint8_t f[256], m[64], data[8] = "abcdefg";
	size_t n = icmp6_msg(m, UST_ICMP6_ECHO_REQUEST, 0x12340001, data, sizeof(data), &peer6, dst);

	rx(h, f, frame6(f, our_mac, &peer6, dst, 64, ext, ext_len, UST_IPPROTO_ICMPV6, m, n));
}

/* ---- addresses and DAD ---- */

static void test_ip6_link_local_is_modified_eui64(void **state)
{
	static const uint8_t mac[6] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55 };
	struct ust_ip6 ll = ust_ip6_link_local(mac);
	char buf[46];

	/* What Linux gives such a device (addr_gen_mode 0). */
	assert_string_equal(ust_ip6_str(&ll, buf), "fe80::211:22ff:fe33:4455");
}

static void test_ip6_dad_before_use(void **state)
{
	struct harness6 *h6 = *state;
	struct harness *h = &h6->h;
	struct ust_ip6 ll = ust_ip6_link_local(our_mac);
	uint8_t mac[6];
	struct ust_ipv6 ip;
	struct ust_icmp6 icmp;

	/* Tentative: not ours yet, not usable as a source. */
	assert_false(ust_ip6_is_ours(&h->st, &our6));
	assert_int_equal(ust_icmp6_echo_request(&h->st, &peer6, 1, 1, NULL, 0, h->now), -EADDRNOTAVAIL);
	run_timers(h);
	/* RFC 4862 §5.4.2: from ::, to the solicited-node group, hop
	 * limit 255, no link-layer address option. */
	for (int i = 0; i < 2; i++) {
		const struct ust_ip6 *target = i == 0 ? &ll : &our6;
		sn_mac(target, mac);
		icmp = expect_icmp6(h, mac, &ip);
		assert_int_equal(icmp.type, UST_ND_NEIGHBOR_SOLICIT);
		assert_true(ust_ip6_is_unspecified(&ip.src));
		assert_int_equal(ip.hop_limit, 255);
		assert_int_equal(icmp.data_len, 16);
		assert_memory_equal(icmp.data, target->b, 16);
	}
	expect_nothing(h);
	/* An echo to the tentative address is not for us. */
	rx_echo6(h, &our6, NULL, 0);
	expect_nothing(h);
	assert_int_equal(h->st.ctr.drop[UST_DROP_IP6_NOT_FOR_US], 1);
	h->now += UST_SEC(1) - 1;
	run_timers(h);
	assert_false(ust_ip6_is_ours(&h->st, &our6));
	h->now += 1;
	run_timers(h);
	expect_nothing(h);
	assert_true(ust_ip6_is_ours(&h->st, &our6));
	assert_true(ust_ip6_is_ours(&h->st, &ll));
}

static void test_ip6_dad_conflict_by_advert(void **state)
{
	struct harness6 *h6 = *state;
	struct harness *h = &h6->h;
	static const struct ust_ip6 all_nodes = { .b = { 0xff, 0x02, [15] = 1 } };
	uint8_t f[256], m[64], b[32], mac[6];

	run_timers(h);
	h->seen = h->n_out;
	ust_ip6_multicast_mac(&all_nodes, mac);
	rx(h, f, frame6(f, mac, &peer6, &all_nodes, 255, NULL, 0, UST_IPPROTO_ICMPV6, m,
			icmp6_msg(m, UST_ND_NEIGHBOR_ADVERT, UST_ND_NA_OVERRIDE, b,
				  nd_body(b, &our6, UST_ND_OPT_TARGET_LLADDR, peer_mac), &peer6, &all_nodes)));
	assert_int_equal(h->st.ctr.event[UST_EV_ND_DAD_FAILED], 1);
	h->now += UST_SEC(2);
	run_timers(h);
	assert_false(ust_ip6_is_ours(&h->st, &our6));
	/* A solicitation for it is not answered. */
	assert_int_equal(h->st.addr6[UST_ADDR6_GLOBAL].state, UST_ADDR6_DUPLICATE);
	expect_nothing(h);
}

static void test_ip6_dad_conflict_by_solicit(void **state)
{
	struct harness6 *h6 = *state;
	struct harness *h = &h6->h;
	struct ust_ip6 group = ust_ip6_solicited_node(&our6);
	uint8_t f[256], m[64], b[32], mac[6];

	/* Another node checks the same address at the same time. */
	sn_mac(&our6, mac);
	rx(h, f, frame6(f, mac, &unspecified6, &group, 255, NULL, 0, UST_IPPROTO_ICMPV6, m,
			icmp6_msg(m, UST_ND_NEIGHBOR_SOLICIT, 0, b, nd_body(b, &our6, 0, NULL), &unspecified6,
				  &group)));
	assert_int_equal(h->st.addr6[UST_ADDR6_GLOBAL].state, UST_ADDR6_DUPLICATE);
	assert_int_equal(h->st.addr6[UST_ADDR6_LINK_LOCAL].state, UST_ADDR6_TENTATIVE);
	expect_nothing(h);
}

/* ---- answering ---- */

static void test_ip6_solicitation_answered_and_asker_learned(void **state)
{
	struct harness6 *h6 = *state;
	struct harness *h = &h6->h;
	struct ust_ip6 group = ust_ip6_solicited_node(&our6);
	uint8_t f[256], m[64], b[32], mac[6];
	struct ust_ipv6 ip;
	struct ust_icmp6 icmp;
	const struct ust_neigh *n;

	sn_mac(&our6, mac);
	rx(h, f, frame6(f, mac, &peer6, &group, 255, NULL, 0, UST_IPPROTO_ICMPV6, m,
			icmp6_msg(m, UST_ND_NEIGHBOR_SOLICIT, 0, b,
				  nd_body(b, &our6, UST_ND_OPT_SOURCE_LLADDR, peer_mac), &peer6, &group)));
	icmp = expect_icmp6(h, peer_mac, &ip);
	assert_int_equal(icmp.type, UST_ND_NEIGHBOR_ADVERT);
	assert_int_equal(icmp.rest, UST_ND_NA_SOLICITED | UST_ND_NA_OVERRIDE);
	assert_true(ust_ip6_eq(&ip.src, &our6));
	assert_true(ust_ip6_eq(&ip.dst, &peer6));
	assert_int_equal(ip.hop_limit, 255);
	/* Target, then our link-layer address. */
	assert_memory_equal(icmp.data, our6.b, 16);
	assert_int_equal(icmp.data[16], UST_ND_OPT_TARGET_LLADDR);
	assert_memory_equal(icmp.data + 18, our_mac, 6);
	expect_nothing(h);
	n = ust_neigh_find(&h->st, &peer6);
	assert_non_null(n);
	assert_int_equal(n->state, UST_NEIGH_REACHABLE);
	assert_memory_equal(n->mac, peer_mac, 6);
	assert_int_equal(h->st.ctr.event[UST_EV_ND_NS_IN], 1);
}

static void test_ip6_echo_answered(void **state)
{
	struct harness6 *h6 = *state;
	struct harness *h = &h6->h;
	struct ust_ipv6 ip;
	struct ust_icmp6 icmp;
	uint8_t mac[6];

	rx_echo6(h, &our6, NULL, 0);
	/* The peer is unknown: asked first, the reply waits. */
	sn_mac(&peer6, mac);
	icmp = expect_icmp6(h, mac, &ip);
	assert_int_equal(icmp.type, UST_ND_NEIGHBOR_SOLICIT);
	assert_true(ust_ip6_eq(&ip.src, &our6));
	assert_int_equal(icmp.data[16], UST_ND_OPT_SOURCE_LLADDR);
	expect_nothing(h);
	{
		uint8_t f[256], m[64], b[32];
		rx(h, f, frame6(f, our_mac, &peer6, &our6, 255, NULL, 0, UST_IPPROTO_ICMPV6, m,
				icmp6_msg(m, UST_ND_NEIGHBOR_ADVERT, UST_ND_NA_SOLICITED | UST_ND_NA_OVERRIDE, b,
					  nd_body(b, &peer6, UST_ND_OPT_TARGET_LLADDR, peer_mac), &peer6, &our6)));
	}
	icmp = expect_icmp6(h, peer_mac, &ip);
	assert_int_equal(icmp.type, UST_ICMP6_ECHO_REPLY);
	assert_int_equal(icmp.rest, 0x12340001);
	assert_int_equal(icmp.data_len, 8);
	assert_memory_equal(icmp.data, "abcdefg", 8);
	assert_true(ust_ip6_eq(&ip.src, &our6));
	assert_int_equal(ip.hop_limit, UST_IPV6_HOP_LIMIT_DEFAULT);
	expect_nothing(h);
	assert_int_equal(h->st.ctr.event[UST_EV_ICMP6_ECHO_IN], 1);
}

/* What the other stacks on our address are told (stack.h's neigh_note):
 * a neighbour a solicited advertisement confirmed, and, when an
 * unsolicited one overrides its link address (to be checked again, STALE),
 * that the old one no longer holds. */
static struct {
	unsigned notes, forgets;
	uint8_t mac[6];
} told;

static void told_note(void *ctx, const struct ust_ip6 *addr, const uint8_t mac[6])
{
	(void)ctx;
	(void)addr;
	if (mac) {
		told.notes++;
		memcpy(told.mac, mac, 6);
	} else {
		told.forgets++;
	}
}

static void test_ip6_override_forgets_shared_neighbour(void **state)
{
	static const uint8_t new_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x09 };
	struct harness6 *h6 = *state;
	struct harness *h = &h6->h;
	uint8_t f[256], m[64], b[32], mac[6];
	struct ust_ipv6 ip;

	memset(&told, 0, sizeof(told));
	h->st.neigh_note = told_note;
	rx_echo6(h, &our6, NULL, 0);
	sn_mac(&peer6, mac);
	assert_int_equal(expect_icmp6(h, mac, &ip).type, UST_ND_NEIGHBOR_SOLICIT);
	rx(h, f, frame6(f, our_mac, &peer6, &our6, 255, NULL, 0, UST_IPPROTO_ICMPV6, m,
			icmp6_msg(m, UST_ND_NEIGHBOR_ADVERT, UST_ND_NA_SOLICITED | UST_ND_NA_OVERRIDE, b,
				  nd_body(b, &peer6, UST_ND_OPT_TARGET_LLADDR, peer_mac), &peer6, &our6)));
	assert_int_equal(expect_icmp6(h, peer_mac, &ip).type, UST_ICMP6_ECHO_REPLY);
	assert_int_equal(told.notes, 1);
	assert_memory_equal(told.mac, peer_mac, 6);
	assert_int_equal(told.forgets, 0);
	rx(h, f, frame6(f, our_mac, &peer6, &our6, 255, NULL, 0, UST_IPPROTO_ICMPV6, m,
			icmp6_msg(m, UST_ND_NEIGHBOR_ADVERT, UST_ND_NA_OVERRIDE, b,
				  nd_body(b, &peer6, UST_ND_OPT_TARGET_LLADDR, new_mac), &peer6, &our6)));
	assert_int_equal(told.notes, 1);
	assert_int_equal(told.forgets, 1);
	expect_nothing(h);
}

/* ---- resolving ---- */

static void test_ip6_unanswered_neighbour_unreachable(void **state)
{
	struct harness6 *h6 = *state;
	struct harness *h = &h6->h;
	uint8_t mac[6];
	struct ust_ipv6 ip;

	assert_int_equal(ust_icmp6_echo_request(&h->st, &peer6, 1, 1, NULL, 0, h->now), 0);
	ust_stack_flush(&h->st);
	sn_mac(&peer6, mac);
	for (int i = 0; i < UST_ARP_PROBES; i++) {
		assert_int_equal(expect_icmp6(h, mac, &ip).type, UST_ND_NEIGHBOR_SOLICIT);
		expect_nothing(h);
		h->now += UST_ARP_RETRANS;
		run_timers(h);
	}
	expect_nothing(h);
	assert_int_equal(h6->unreach6_calls, 1);
	assert_true(ust_ip6_eq(&h6->unreach6_dst, &peer6));
	assert_int_equal(h->st.ctr.drop[UST_DROP_TX_ARP_FAILED], 1);
	assert_null(ust_neigh_find(&h->st, &peer6));
}

/* TCP over IPv6 to a neighbour that never answers: the SYN waits for
 * neighbour discovery, and when it gives up the connect fails with
 * EHOSTUNREACH, as Linux's (its SYN-SENT dies on the neighbour's failure
 * through the ICMPv6 address unreachable it sends itself). */
static void test_ip6_tcp_connect_neighbour_unreachable(void **state)
{
	struct harness6 *h6 = *state;
	struct harness *h = &h6->h;
	struct ust_tcp_config cfg;
	struct ust_tcp tcp;
	struct ust_tcb *t;
	struct ust_ipv6 ip;
	uint8_t mac[6];
	int err;

	ust_tcp_default_config(&cfg);
	assert_int_equal(ust_tcp_init(&tcp, &h->st, &cfg), 0);
	t = ust_tcp_create(&tcp, NULL, &err);
	assert_non_null(t);
	ust_tcp_set_family(t, true, false);
	assert_int_equal(ust_tcp_connect_to(t, &peer6, 80, h->now), 0);
	ust_stack_flush(&h->st);
	sn_mac(&peer6, mac);
	for (int i = 0; i < UST_ARP_PROBES; i++) {
		assert_int_equal(expect_icmp6(h, mac, &ip).type, UST_ND_NEIGHBOR_SOLICIT);
		h->now += UST_ARP_RETRANS;
		ust_stack_timers(&h->st, h->now);
		ust_tcp_timers(&tcp, h->now);
		ust_stack_flush(&h->st);
	}
	expect_nothing(h); /* the SYN's retransmission parked with it */
	assert_int_equal(ust_tcp_get_state(t), UST_TCP_CLOSED);
	assert_int_equal(ust_tcp_take_error(t), EHOSTUNREACH);
	ust_tcp_destroy(&tcp);
}

/* NUD: an answer is trusted UST_ARP_REACHABLE; the next datagram after
 * that still goes, and the neighbour is asked directly (to its MAC and its
 * own address); unanswered, it is forgotten, and the next datagram asks
 * the group again. */
static void test_ip6_nud_probes_then_forgets(void **state)
{
	struct harness6 *h6 = *state;
	struct harness *h = &h6->h;
	struct ust_ipv6 ip;
	struct ust_icmp6 icmp;
	uint8_t mac[6];

	ust_neigh_confirm(&h->st, ust_neigh_create(&h->st, &peer6, h->now), peer_mac, h->now);
	h->now += UST_ARP_REACHABLE;
	assert_int_equal(ust_icmp6_echo_request(&h->st, &peer6, 1, 1, NULL, 0, h->now), 0);
	ust_stack_flush(&h->st);
	icmp = expect_icmp6(h, peer_mac, &ip);
	assert_int_equal(icmp.type, UST_ND_NEIGHBOR_SOLICIT);
	assert_true(ust_ip6_eq(&ip.dst, &peer6));
	assert_true(ust_ip6_eq(&ip.src, &our6));
	assert_int_equal(ip.hop_limit, 255);
	assert_memory_equal(icmp.data, peer6.b, 16);
	assert_int_equal(icmp.data[16], UST_ND_OPT_SOURCE_LLADDR);
	assert_memory_equal(icmp.data + 18, our_mac, 6);
	assert_int_equal(expect_icmp6(h, peer_mac, &ip).type, UST_ICMP6_ECHO_REQUEST);
	expect_nothing(h);
	for (int i = 1; i < UST_ARP_PROBES; i++) {
		h->now += UST_ARP_RETRANS;
		run_timers(h);
		assert_int_equal(expect_icmp6(h, peer_mac, &ip).type, UST_ND_NEIGHBOR_SOLICIT);
	}
	h->now += UST_ARP_RETRANS;
	run_timers(h);
	expect_nothing(h);
	assert_null(ust_neigh_find(&h->st, &peer6));
	/* Nothing waited: nobody is told. */
	assert_int_equal(h6->unreach6_calls, 0);
	assert_int_equal(ust_icmp6_echo_request(&h->st, &peer6, 1, 2, NULL, 0, h->now), 0);
	ust_stack_flush(&h->st);
	sn_mac(&peer6, mac);
	assert_int_equal(expect_icmp6(h, mac, &ip).type, UST_ND_NEIGHBOR_SOLICIT);
	expect_nothing(h);
}

/* A tun link: no link-local address, no DAD, no NDP; the datagram is the
 * frame. */
static void test_ip6_l3_link(void **state)
{
	struct harness6 *h6 = calloc(1, sizeof(*h6));
	struct harness *h = &h6->h;
	struct ust_netif nif = { .l3 = true, .addr = OUR_IP, .mask = MASK24, .mtu = 1500, .has_addr6 = true,
				 .addr6 = our6, .prefix6 = 64 };
	static const struct ust_ip6 far = { .b = { 0x20, 0x01, 0x0d, 0xb9, [15] = 1 } };
	uint8_t f[256], m[64];
	struct ust_ipv6 ip;
	struct ust_icmp6 icmp;
	size_t n;

	assert_non_null(h6);
	*state = h6;
	assert_int_equal(ust_stack_init(&h->st, &nif, 64, capture_output, h), 0);
	h->take = UINT_MAX;
	h->now = UST_SEC(1000);
	assert_true(ust_ip6_is_ours(&h->st, &our6));
	assert_int_equal(h->st.addr6[UST_ADDR6_LINK_LOCAL].state, UST_ADDR6_NONE);
	assert_int_equal(ust_stack_timers(&h->st, h->now), UST_TIME_NEVER);
	n = frame6(f, our_mac, &far, &our6, 64, NULL, 0, UST_IPPROTO_ICMPV6, m,
		   icmp6_msg(m, UST_ICMP6_ECHO_REQUEST, 7, NULL, 0, &far, &our6));
	rx(h, f + UST_ETH_HLEN, n - UST_ETH_HLEN);
	{
		const struct captured *c = next_frame(h);
		assert_int_equal(ust_ipv6_parse(c->data, c->len, &ip), UST_OK);
		assert_int_equal(ust_icmp6_parse(&ip, &icmp), UST_OK);
	}
	assert_int_equal(icmp.type, UST_ICMP6_ECHO_REPLY);
	assert_true(ust_ip6_eq(&ip.dst, &far));
	expect_nothing(h);
}

static void test_ip6_no_route_off_link(void **state)
{
	struct harness6 *h6 = *state;
	struct harness *h = &h6->h;
	static const struct ust_ip6 far = { .b = { 0x20, 0x01, 0x0d, 0xb9, [15] = 1 } };

	assert_int_equal(ust_icmp6_echo_request(&h->st, &far, 1, 1, NULL, 0, h->now), -ENETUNREACH);
	expect_nothing(h);
}

/* ---- bad input ---- */

static void test_ip6_extension_headers(void **state)
{
	struct harness6 *h6 = *state;
	struct harness *h = &h6->h;
	/* Each: next header first, then the header's bytes. */
	static const uint8_t hbh_padn[] = { 0, 58, 0, 1, 4, 0, 0, 0, 0 };
	static const uint8_t hbh_skip_unknown[] = { 0, 58, 0, 0x3e, 2, 0, 0, 1, 0 };
	static const uint8_t dst_discard_unknown[] = { 60, 58, 0, 0x7e, 2, 0, 0, 1, 0 };
	static const uint8_t routing_segleft0[] = { 43, 58, 0, 4, 0, 0, 0, 0, 0 };
	static const uint8_t routing_segleft1[] = { 43, 58, 0, 4, 1, 0, 0, 0, 0 };
	static const uint8_t atomic_fragment[] = { 44, 58, 0, 0, 0, 0, 0, 0, 7 };
	static const uint8_t fragment[] = { 44, 58, 0, 0, 1, 0, 0, 0, 7 };
	static const uint8_t padn_not_zero[] = { 0, 58, 0, 1, 4, 0, 1, 0, 0 };
	/* A hop-by-hop header after a destination options header. */
	static const uint8_t hbh_second[] = { 60, 0, 0, 1, 4, 0, 0, 0, 0, 58, 0, 1, 4, 0, 0, 0, 0 };
	static const uint8_t no_next[] = { 60, 59, 0, 1, 4, 0, 0, 0, 0 };
	static const struct {
		const uint8_t *ext;
		size_t len;
		enum ust_drop why; /* UST_OK: answered */
	} cases[] = {
		{ hbh_padn, sizeof(hbh_padn), UST_OK },
		{ hbh_skip_unknown, sizeof(hbh_skip_unknown), UST_OK },
		{ routing_segleft0, sizeof(routing_segleft0), UST_OK },
		{ atomic_fragment, sizeof(atomic_fragment), UST_OK },
		{ dst_discard_unknown, sizeof(dst_discard_unknown), UST_DROP_IP6_EXT_HDR },
		{ routing_segleft1, sizeof(routing_segleft1), UST_DROP_IP6_EXT_HDR },
		{ fragment, sizeof(fragment), UST_DROP_IP6_FRAGMENT },
		{ padn_not_zero, sizeof(padn_not_zero), UST_DROP_IP6_EXT_HDR },
		{ hbh_second, sizeof(hbh_second), UST_DROP_IP6_EXT_HDR },
		{ no_next, sizeof(no_next), UST_DROP_IP6_NO_NEXT },
	};

	/* Learn the peer first, so that an answer leaves at once. */
	ust_neigh_confirm(&h->st, ust_neigh_create(&h->st, &peer6, h->now), peer_mac, h->now);
	for (size_t i = 0; i < UST_ARRAY_SIZE(cases); i++) {
		uint64_t before = cases[i].why ? h->st.ctr.drop[cases[i].why] : 0;

		rx_echo6(h, &our6, cases[i].ext, cases[i].len - 1);
		if (cases[i].why == UST_OK) {
			struct ust_ipv6 ip;
			assert_int_equal(expect_icmp6(h, peer_mac, &ip).type, UST_ICMP6_ECHO_REPLY);
		} else {
			assert_int_equal(h->st.ctr.drop[cases[i].why], before + 1);
		}
		expect_nothing(h);
	}
}

static void test_ip6_malformed_dropped_and_counted(void **state)
{
	struct harness6 *h6 = *state;
	struct harness *h = &h6->h;
	struct ust_ip6 group = ust_ip6_solicited_node(&our6);
	static const struct ust_ip6 mapped = { .b = { [10] = 0xff, [11] = 0xff, 10, 9, 0, 1 } };
	static const struct ust_ip6 other = { .b = { 0x20, 0x01, 0x0d, 0xb8, [15] = 9 } };
	uint8_t f[256], m[64], b[32], mac[6];
	size_t n;

	/* Truncated header; payload length beyond the frame. */
	n = frame6(f, our_mac, &peer6, &our6, 64, NULL, 0, UST_IPPROTO_ICMPV6, m,
		   icmp6_msg(m, UST_ICMP6_ECHO_REQUEST, 0, NULL, 0, &peer6, &our6));
	rx(h, f, UST_ETH_HLEN + 39);
	assert_int_equal(h->st.ctr.drop[UST_DROP_IP6_SHORT], 1);
	rx(h, f, n - 1);
	assert_int_equal(h->st.ctr.drop[UST_DROP_IP6_PAYLOAD_LEN], 1);
	/* Wrong version under the IPv6 EtherType. */
	f[UST_ETH_HLEN] = 0x45;
	rx(h, f, n);
	assert_int_equal(h->st.ctr.drop[UST_DROP_IP6_VERSION], 1);
	/* A bad ICMPv6 checksum. */
	n = frame6(f, our_mac, &peer6, &our6, 64, NULL, 0, UST_IPPROTO_ICMPV6, m,
		   icmp6_msg(m, UST_ICMP6_ECHO_REQUEST, 0, NULL, 0, &peer6, &our6));
	f[n - 1] ^= 1;
	rx(h, f, n);
	assert_int_equal(h->st.ctr.drop[UST_DROP_ICMP6_CSUM], 1);
	/* Not for us; from an IPv4-mapped source. */
	rx_echo6(h, &other, NULL, 0);
	assert_int_equal(h->st.ctr.drop[UST_DROP_IP6_NOT_FOR_US], 1);
	rx(h, f, frame6(f, our_mac, &mapped, &our6, 64, NULL, 0, UST_IPPROTO_ICMPV6, m,
			icmp6_msg(m, UST_ICMP6_ECHO_REQUEST, 0, NULL, 0, &mapped, &our6)));
	assert_int_equal(h->st.ctr.drop[UST_DROP_IP6_BAD_SRC], 1);
	/* A solicitation that went through a router (hop limit 254), and one
	 * for another node's address. */
	sn_mac(&our6, mac);
	rx(h, f, frame6(f, mac, &peer6, &group, 254, NULL, 0, UST_IPPROTO_ICMPV6, m,
			icmp6_msg(m, UST_ND_NEIGHBOR_SOLICIT, 0, b,
				  nd_body(b, &our6, UST_ND_OPT_SOURCE_LLADDR, peer_mac), &peer6, &group)));
	assert_int_equal(h->st.ctr.drop[UST_DROP_ND_INVALID], 1);
	rx(h, f, frame6(f, mac, &peer6, &group, 255, NULL, 0, UST_IPPROTO_ICMPV6, m,
			icmp6_msg(m, UST_ND_NEIGHBOR_SOLICIT, 0, b,
				  nd_body(b, &other, UST_ND_OPT_SOURCE_LLADDR, peer_mac), &peer6, &group)));
	assert_int_equal(h->st.ctr.drop[UST_DROP_ND_NOT_FOR_US], 1);
	/* An option of length 0. */
	n = nd_body(b, &our6, UST_ND_OPT_SOURCE_LLADDR, peer_mac);
	b[17] = 0;
	rx(h, f, frame6(f, mac, &peer6, &group, 255, NULL, 0, UST_IPPROTO_ICMPV6, m,
			icmp6_msg(m, UST_ND_NEIGHBOR_SOLICIT, 0, b, n, &peer6, &group)));
	assert_int_equal(h->st.ctr.drop[UST_DROP_ND_INVALID], 2);
	/* TCP with nobody to take it. */
	rx(h, f, frame6(f, our_mac, &peer6, &our6, 64, NULL, 0, UST_IPPROTO_TCP, b, 20));
	assert_int_equal(h->st.ctr.drop[UST_DROP_IP_PROTO], 1);
	expect_nothing(h);
}

/* A stack without USTCP_ADDR6 drops IPv6 as an EtherType it does not
 * speak. */
static void test_ip6_off_without_address(void **state)
{
	struct harness *h = *state;
	uint8_t f[256], m[64];

	rx(h, f, frame6(f, our_mac, &peer6, &our6, 64, NULL, 0, UST_IPPROTO_ICMPV6, m,
			icmp6_msg(m, UST_ICMP6_ECHO_REQUEST, 0, NULL, 0, &peer6, &our6)));
	assert_int_equal(h->st.ctr.drop[UST_DROP_ETH_TYPE], 1);
	expect_nothing(h);
}

int main(void)
{
#define R(f) cmocka_unit_test_setup_teardown(f, setup6, teardown6)
#define T(f) cmocka_unit_test_setup_teardown(f, setup6_tentative, teardown6)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ip6_link_local_is_modified_eui64),
		T(test_ip6_dad_before_use),
		T(test_ip6_dad_conflict_by_advert),
		T(test_ip6_dad_conflict_by_solicit),
		R(test_ip6_solicitation_answered_and_asker_learned),
		R(test_ip6_echo_answered),
		R(test_ip6_override_forgets_shared_neighbour),
		R(test_ip6_unanswered_neighbour_unreachable),
		R(test_ip6_tcp_connect_neighbour_unreachable),
		R(test_ip6_nud_probes_then_forgets),
		cmocka_unit_test_teardown(test_ip6_l3_link, teardown6),
		R(test_ip6_no_route_off_link),
		R(test_ip6_extension_headers),
		R(test_ip6_malformed_dropped_and_counted),
		cmocka_unit_test_setup_teardown(test_ip6_off_without_address, setup_eth, teardown_check_pool),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
