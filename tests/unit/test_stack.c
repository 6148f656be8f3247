/* The network layer: ICMP echo, IPv4 input checks and their counters, IPv4
 * output and routing, the upper-layer hooks, the transmit queue and the
 * buffer pool. The stack runs on a virtual clock; its output is captured
 * frame by frame. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "csum.h"
#include "stack.h"

#include "stack_harness.h"

static const uint8_t ping_data[37] = "abcdefghijklmnopqrstuvwxyz0123456789";

static void learn_peer(struct harness *h)
{
	rx_arp_request(h, peer_mac, PEER_IP);
	expect_arp(h, UST_ARP_REPLY, peer_mac, PEER_IP);
}

/* Sends a frame whose drop reason should be why, and nothing else. */
static void expect_dropped(struct harness *h, const uint8_t *f, size_t len, enum ust_drop why)
{
	uint64_t before = h->st.ctr.drop[why];

	rx(h, f, len);
	expect_nothing(h);
	assert_int_equal(h->st.ctr.drop[why], before + 1);
}

/* ---- ICMP echo ---- */

static void test_stack_ping_answered(void **state)
{
	struct harness *h = *state;
	struct ust_icmp icmp;

	learn_peer(h);
	rx_echo_request(h, PEER_IP, 0x1234, 7, ping_data, sizeof(ping_data));
	icmp = expect_icmp(h, peer_mac, PEER_IP, UST_ICMP_ECHO_REPLY);
	expect_nothing(h);
	assert_int_equal(icmp.rest, 0x12340007);
	assert_int_equal(icmp.data_len, sizeof(ping_data));
	assert_memory_equal(icmp.data, ping_data, sizeof(ping_data));
	assert_int_equal(h->st.ctr.event[UST_EV_ICMP_ECHO_IN], 1);
	assert_int_equal(h->echo_calls, 0);
}

static void test_stack_ping_every_data_length(void **state)
{
	struct harness *h = *state;
	uint8_t data[64];

	learn_peer(h);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(0xff - i);
	for (size_t len = 0; len <= sizeof(data); len++) {
		struct ust_icmp icmp;
		rx_echo_request(h, PEER_IP, 1, (uint16_t)len, data, len);
		icmp = expect_icmp(h, peer_mac, PEER_IP, UST_ICMP_ECHO_REPLY);
		assert_int_equal(icmp.rest, 0x00010000u | len);
		assert_int_equal(icmp.data_len, len);
		assert_memory_equal(icmp.data, data, len);
	}
	expect_nothing(h);
}

static void test_stack_ping_largest(void **state)
{
	struct harness *h = *state;
	uint8_t data[1472];
	struct ust_icmp icmp;

	learn_peer(h);
	memset(data, 0xa5, sizeof(data));
	rx_echo_request(h, PEER_IP, 9, 9, data, sizeof(data)); /* 1500 bytes of IPv4 */
	icmp = expect_icmp(h, peer_mac, PEER_IP, UST_ICMP_ECHO_REPLY);
	assert_int_equal(icmp.data_len, sizeof(data));
	assert_int_equal(h->out[h->seen - 1].len, 14 + 1500);
}

static void test_stack_ping_beyond_mtu_stays_within_mtu(void **state)
{
	struct harness *h = *state;
	uint8_t data[1800];

	/* A GSO-sized request: the reply may be cut, but never exceeds the
	 * MTU and always checks out. */
	learn_peer(h);
	memset(data, 0x3c, sizeof(data));
	rx_echo_request(h, PEER_IP, 9, 9, data, sizeof(data));
	if (h->n_out > h->seen)
		expect_icmp(h, peer_mac, PEER_IP, UST_ICMP_ECHO_REPLY);
	expect_nothing(h);
}

static void test_stack_ping_padded_frame(void **state)
{
	struct harness *h = *state;
	uint8_t f[60], m[16];
	size_t n;
	struct ust_icmp icmp;

	learn_peer(h);
	/* 28 bytes of IPv4 in a 60-byte frame: the padding is not echoed. */
	memset(f, 0xee, sizeof(f));
	n = ip_frame(h, f, peer_mac, our_mac, PEER_IP, OUR_IP, UST_IPPROTO_ICMP, m,
		     icmp_msg(m, UST_ICMP_ECHO_REQUEST, 0x00050006, NULL, 0));
	assert_int_equal(n, 42);
	rx(h, f, sizeof(f));
	icmp = expect_icmp(h, peer_mac, PEER_IP, UST_ICMP_ECHO_REPLY);
	assert_int_equal(icmp.data_len, 0);
	assert_int_equal(icmp.rest, 0x00050006);
}

static void test_stack_ping_from_unresolved_peer_asks_first(void **state)
{
	struct harness *h = *state;

	rx_echo_request(h, PEER_IP, 1, 1, ping_data, 8);
	expect_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, PEER_IP);
	expect_nothing(h);
	rx_arp_reply(h, peer_mac, PEER_IP);
	expect_icmp(h, peer_mac, PEER_IP, UST_ICMP_ECHO_REPLY);
	expect_nothing(h);
}

static void test_stack_ping_broadcast_mac_answered(void **state)
{
	struct harness *h = *state;
	uint8_t f[128], m[64];

	learn_peer(h);
	rx(h, f, ip_frame(h, f, peer_mac, ust_eth_broadcast, PEER_IP, OUR_IP, UST_IPPROTO_ICMP, m,
			  icmp_msg(m, UST_ICMP_ECHO_REQUEST, 1, ping_data, 8)));
	expect_icmp(h, peer_mac, PEER_IP, UST_ICMP_ECHO_REPLY);
	expect_nothing(h);
}

static void test_stack_ping_with_ip_options_answered(void **state)
{
	struct harness *h = *state;
	uint8_t f[128], *ip = f + UST_ETH_HLEN;
	size_t n;

	learn_peer(h);
	/* 24-byte header with record route... of 3 bytes, pointer past its
	 * end (full), then an ICMP echo. */
	ust_eth_build(f, our_mac, peer_mac, UST_ETHERTYPE_IPV4);
	ust_ipv4_build(ip, PEER_IP, OUR_IP, UST_IPPROTO_ICMP, 24 + 16, 1, 64, 0);
	ip[0] = 0x46;
	ip[20] = 7;
	ip[21] = 3;
	ip[22] = 4;
	ip[23] = 0;
	ust_put16(ip + 10, 0);
	ust_put16(ip + 10, ust_csum_fold(ust_csum_add(0, ip, 24)));
	n = icmp_msg(ip + 24, UST_ICMP_ECHO_REQUEST, 0x00020003, ping_data, 8);
	rx(h, f, UST_ETH_HLEN + 24 + n);
	expect_icmp(h, peer_mac, PEER_IP, UST_ICMP_ECHO_REPLY);
	expect_nothing(h);
}

static void test_stack_ping_bad_checksum_dropped(void **state)
{
	struct harness *h = *state;
	uint8_t f[128], m[64];
	size_t n;

	learn_peer(h);
	n = icmp_msg(m, UST_ICMP_ECHO_REQUEST, 1, ping_data, 8);
	m[10] ^= 1;
	expect_dropped(h, f, ip_frame(h, f, peer_mac, our_mac, PEER_IP, OUR_IP, UST_IPPROTO_ICMP, m, n),
		       UST_DROP_ICMP_CSUM);
	assert_int_equal(h->st.ctr.event[UST_EV_ICMP_ECHO_IN], 0);
}

static void test_stack_ping_fragment_dropped(void **state)
{
	struct harness *h = *state;
	uint8_t f[128], m[64];
	size_t n;

	learn_peer(h);
	n = ip_frame(h, f, peer_mac, our_mac, PEER_IP, OUR_IP, UST_IPPROTO_ICMP, m,
		     icmp_msg(m, UST_ICMP_ECHO_REQUEST, 1, ping_data, 8));
	ust_ipv4_build(f + 14, PEER_IP, OUR_IP, UST_IPPROTO_ICMP, (uint16_t)(n - 14), 1, 64, UST_IP_MF);
	expect_dropped(h, f, n, UST_DROP_IP_FRAGMENT);
}

static void test_stack_ping_low_ttl_answered(void **state)
{
	struct harness *h = *state;
	uint8_t f[128], m[64];
	size_t n;

	/* RFC 1122 §3.2.1.7: a host does not drop a datagram for its TTL. */
	learn_peer(h);
	for (uint8_t ttl = 0; ttl <= 1; ttl++) {
		n = ip_frame(h, f, peer_mac, our_mac, PEER_IP, OUR_IP, UST_IPPROTO_ICMP, m,
			     icmp_msg(m, UST_ICMP_ECHO_REQUEST, 1, ping_data, 8));
		ust_ipv4_build(f + 14, PEER_IP, OUR_IP, UST_IPPROTO_ICMP, (uint16_t)(n - 14), 1, ttl, 0);
		rx(h, f, n);
		expect_icmp(h, peer_mac, PEER_IP, UST_ICMP_ECHO_REPLY);
	}
}

static void test_stack_ping_l3(void **state)
{
	struct harness *h = *state;
	struct ust_icmp icmp;

	rx_echo_request(h, PEER_IP, 0xfffe, 0xffff, ping_data, sizeof(ping_data));
	icmp = expect_icmp(h, NULL, PEER_IP, UST_ICMP_ECHO_REPLY);
	expect_nothing(h);
	assert_int_equal(icmp.rest, 0xfffeffffu);
	assert_memory_equal(icmp.data, ping_data, sizeof(ping_data));
	assert_int_equal(h->out[0].len, 20 + 8 + sizeof(ping_data));
}

static void test_stack_ping_offlink_via_gateway(void **state)
{
	struct harness *h = *state;

	/* The request came through the router: the reply goes back to it. */
	rx_arp_request(h, gw_mac, GW_IP);
	expect_arp(h, UST_ARP_REPLY, gw_mac, GW_IP);
	rx_echo_request(h, FAR_IP, 1, 2, ping_data, 8);
	expect_icmp(h, gw_mac, FAR_IP, UST_ICMP_ECHO_REPLY);
	expect_nothing(h);
}

static void test_stack_ping_offlink_without_gateway_dropped(void **state)
{
	struct harness *h = *state;

	rx_echo_request(h, FAR_IP, 1, 2, ping_data, 8);
	expect_nothing(h);
	assert_int_equal(h->st.ctr.drop[UST_DROP_TX_NO_ROUTE], 1);
}

static void test_stack_ping_pool_exhausted(void **state)
{
	struct harness *h = *state;
	struct ust_pkt *held[256];
	unsigned n;

	learn_peer(h);
	n = hold_all(h, held);
	rx_echo_request(h, PEER_IP, 1, 2, ping_data, 8);
	expect_nothing(h);
	assert_int_equal(h->st.ctr.drop[UST_DROP_TX_NO_BUFFER], 1);
	release_all(h, held, n);
}

/* ---- other ICMP ---- */

static void test_stack_echo_reply_to_upper(void **state)
{
	struct harness *h = *state;
	uint8_t m[64];

	rx_ip(h, PEER_IP, OUR_IP, UST_IPPROTO_ICMP, m,
	      icmp_msg(m, UST_ICMP_ECHO_REPLY, 0x00070008, ping_data, 9));
	expect_nothing(h);
	assert_int_equal(h->echo_calls, 1);
	assert_int_equal(h->echo_from, PEER_IP);
	assert_int_equal(h->echo_rest, 0x00070008);
	assert_int_equal(h->echo_len, 9);
	assert_memory_equal(h->echo_data, ping_data, 9);
}

static void test_stack_echo_reply_without_upper_ignored(void **state)
{
	struct harness *h = *state;
	uint8_t m[64];

	h->st.upper.echo_reply = NULL;
	rx_ip(h, PEER_IP, OUR_IP, UST_IPPROTO_ICMP, m,
	      icmp_msg(m, UST_ICMP_ECHO_REPLY, 1, ping_data, 9));
	expect_nothing(h);
}

/* An ICMP error from router about a datagram src -> dst (TCP, ports 40001
 * -> 80). */
static void rx_icmp_error(struct harness *h, uint8_t type, uint8_t code, uint32_t rest,
			  uint32_t src, uint32_t dst)
{
	uint8_t m[64], q[28];

	ust_ipv4_build(q, src, dst, UST_IPPROTO_TCP, 40, 99, 1, UST_IP_DF);
	ust_put16(q + 20, 40001);
	ust_put16(q + 22, 80);
	ust_put32(q + 24, 0xdeadbeef);
	memcpy(m + UST_ICMP_HLEN, q, sizeof(q));
	ust_icmp_build(m, type, code, rest, sizeof(q));
	rx_ip(h, GW_IP, OUR_IP, UST_IPPROTO_ICMP, m, UST_ICMP_HLEN + sizeof(q));
}

static void test_stack_icmp_error_to_upper(void **state)
{
	struct harness *h = *state;

	rx_icmp_error(h, UST_ICMP_DEST_UNREACH, 4, 1400, OUR_IP, FAR_IP);
	expect_nothing(h);
	assert_int_equal(h->icmp_err_calls, 1);
	assert_int_equal(h->icmp_err.type, UST_ICMP_DEST_UNREACH);
	assert_int_equal(h->icmp_err.code, 4);
	assert_int_equal(h->icmp_err.src, OUR_IP);
	assert_int_equal(h->icmp_err.dst, FAR_IP);
	assert_int_equal(h->icmp_err.proto, UST_IPPROTO_TCP);
	assert_int_equal(h->icmp_err.mtu, 1400);
	assert_int_equal(ust_get16(h->icmp_err.l4), 40001);
	assert_int_equal(ust_get16(h->icmp_err.l4 + 2), 80);
	assert_int_equal(ust_get32(h->icmp_err.l4 + 4), 0xdeadbeef);
	assert_int_equal(h->st.ctr.event[UST_EV_ICMP_ERRORS_IN], 1);
	rx_icmp_error(h, UST_ICMP_TIME_EXCEEDED, 0, 0, OUR_IP, FAR_IP);
	rx_icmp_error(h, UST_ICMP_PARAM_PROBLEM, 0, 0, OUR_IP, FAR_IP);
	assert_int_equal(h->icmp_err_calls, 3);
	expect_nothing(h);
}

static void test_stack_icmp_error_about_others_dropped(void **state)
{
	struct harness *h = *state;

	rx_icmp_error(h, UST_ICMP_DEST_UNREACH, 1, 0, PEER_IP, FAR_IP);
	expect_nothing(h);
	assert_int_equal(h->icmp_err_calls, 0);
	assert_int_equal(h->st.ctr.drop[UST_DROP_ICMP_TYPE], 1);
	assert_int_equal(h->st.ctr.event[UST_EV_ICMP_ERRORS_IN], 0);
}

static void test_stack_icmp_error_short_quote_dropped(void **state)
{
	struct harness *h = *state;
	uint8_t m[64];

	memset(m, 0, sizeof(m));
	m[8] = 0x45;
	rx_ip(h, GW_IP, OUR_IP, UST_IPPROTO_ICMP, m, icmp_msg(m, UST_ICMP_DEST_UNREACH, 0, m + 8, 20));
	expect_nothing(h);
	assert_int_equal(h->icmp_err_calls, 0);
	assert_int_equal(h->st.ctr.drop[UST_DROP_ICMP_SHORT], 1);
}

static void test_stack_icmp_unknown_type_dropped(void **state)
{
	static const uint8_t types[] = { 5, 13, 14, 17, 42, 255 };
	struct harness *h = *state;
	uint8_t m[64];

	for (size_t i = 0; i < UST_ARRAY_SIZE(types); i++)
		rx_ip(h, PEER_IP, OUR_IP, UST_IPPROTO_ICMP, m, icmp_msg(m, types[i], 0, ping_data, 12));
	expect_nothing(h);
	assert_int_equal(h->st.ctr.drop[UST_DROP_ICMP_TYPE], UST_ARRAY_SIZE(types));
}

/* ---- IPv4 input checks ---- */

static void test_stack_not_our_mac_dropped(void **state)
{
	static const uint8_t mcast[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };
	static const uint8_t ours_but_one[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x22 };
	struct harness *h = *state;
	uint8_t f[128], m[64];
	size_t n = icmp_msg(m, UST_ICMP_ECHO_REQUEST, 1, ping_data, 8);

	learn_peer(h);
	expect_dropped(h, f, ip_frame(h, f, peer_mac, peer2_mac, PEER_IP, OUR_IP, 1, m, n),
		       UST_DROP_ETH_NOT_FOR_US);
	expect_dropped(h, f, ip_frame(h, f, peer_mac, mcast, PEER_IP, OUR_IP, 1, m, n),
		       UST_DROP_ETH_NOT_FOR_US);
	expect_dropped(h, f, ip_frame(h, f, peer_mac, ours_but_one, PEER_IP, OUR_IP, 1, m, n),
		       UST_DROP_ETH_NOT_FOR_US);
}

static void test_stack_other_ip_dropped(void **state)
{
	static const uint32_t dsts[] = { PEER2_IP, BCAST_IP, 0xffffffffu, IP4(224, 0, 0, 1),
					 IP4(10, 9, 0, 0), 0, FAR_IP };
	struct harness *h = *state;
	uint8_t f[128], m[64];
	size_t n = icmp_msg(m, UST_ICMP_ECHO_REQUEST, 1, ping_data, 8);

	learn_peer(h);
	for (size_t i = 0; i < UST_ARRAY_SIZE(dsts); i++)
		expect_dropped(h, f, ip_frame(h, f, peer_mac, our_mac, PEER_IP, dsts[i], 1, m, n),
			       UST_DROP_IP_NOT_FOR_US);
	assert_int_equal(h->st.ctr.event[UST_EV_ICMP_ECHO_IN], 0);
}

static void test_stack_bad_source_dropped(void **state)
{
	static const uint32_t srcs[] = { 0, OUR_IP, 0xffffffffu, IP4(224, 0, 0, 1),
					 IP4(239, 1, 2, 3), BCAST_IP };
	struct harness *h = *state;
	uint8_t f[128], m[64];
	size_t n = icmp_msg(m, UST_ICMP_ECHO_REQUEST, 1, ping_data, 8);

	learn_peer(h);
	for (size_t i = 0; i < UST_ARRAY_SIZE(srcs); i++)
		expect_dropped(h, f, ip_frame(h, f, peer_mac, our_mac, srcs[i], OUR_IP, 1, m, n),
			       UST_DROP_IP_BAD_SRC);
	assert_int_equal(h->st.ctr.event[UST_EV_ICMP_ECHO_IN], 0);
	assert_int_equal(h->st.ctr.drop[UST_DROP_IP_BAD_SRC], UST_ARRAY_SIZE(srcs));
}

/* Linux drops martian sources on a non-loopback interface: 0/8 and 127/8
 * (ip_route_input_slow); answering would put 127.0.0.1 on the wire. */
static void test_stack_martian_source_dropped(void **state)
{
	static const uint32_t srcs[] = { IP4(127, 0, 0, 1), IP4(0, 1, 2, 3) };
	struct harness *h = *state;
	uint8_t f[128], m[64];
	size_t n = icmp_msg(m, UST_ICMP_ECHO_REQUEST, 1, ping_data, 8);

	for (size_t i = 0; i < UST_ARRAY_SIZE(srcs); i++)
		expect_dropped(h, f, ip_frame(h, f, gw_mac, our_mac, srcs[i], OUR_IP, 1, m, n),
			       UST_DROP_IP_BAD_SRC);
}

static void test_stack_bad_source_l3_dropped(void **state)
{
	struct harness *h = *state;
	uint8_t f[128], m[64];
	size_t n = icmp_msg(m, UST_ICMP_ECHO_REQUEST, 1, ping_data, 8);

	expect_dropped(h, f, ip_frame(h, f, NULL, NULL, 0, OUR_IP, 1, m, n), UST_DROP_IP_BAD_SRC);
	expect_dropped(h, f, ip_frame(h, f, NULL, NULL, OUR_IP, OUR_IP, 1, m, n), UST_DROP_IP_BAD_SRC);
	expect_dropped(h, f, ip_frame(h, f, NULL, NULL, PEER_IP, PEER2_IP, 1, m, n),
		       UST_DROP_IP_NOT_FOR_US);
}

static void test_stack_slash31_peer_answered(void **state)
{
	struct harness *h = harness_new(false, 0xfffffffeu, 0, 16);

	/* On a /31 (RFC 3021) the other address is a host, not a broadcast. */
	*state = h;
	rx_arp_request(h, peer2_mac, PEER2_IP);
	expect_arp(h, UST_ARP_REPLY, peer2_mac, PEER2_IP);
	rx_echo_request(h, PEER2_IP, 1, 1, ping_data, 8);
	expect_icmp(h, peer2_mac, PEER2_IP, UST_ICMP_ECHO_REPLY);
	expect_nothing(h);
}

static void test_stack_l3_garbage_dropped(void **state)
{
	struct harness *h = *state;
	uint8_t f[64];

	memset(f, 0, sizeof(f));
	expect_dropped(h, f, 0, UST_DROP_IP_SHORT);
	expect_dropped(h, f, 19, UST_DROP_IP_SHORT);
	expect_dropped(h, f, 20, UST_DROP_IP_VERSION);
	/* An Ethernet frame on an L3 link is not IPv4. */
	ust_eth_build(f, our_mac, peer_mac, UST_ETHERTYPE_IPV4);
	expect_dropped(h, f, 60, UST_DROP_IP_VERSION);
}

/* ---- the upper layer ---- */

static void test_stack_unknown_proto_without_upper_dropped(void **state)
{
	struct harness *h = *state;

	rx_ip(h, PEER_IP, OUR_IP, UST_IPPROTO_TCP, ping_data, 20);
	rx_ip(h, PEER_IP, OUR_IP, UST_IPPROTO_UDP, ping_data, 8);
	rx_ip(h, PEER_IP, OUR_IP, 253, ping_data, 0);
	expect_nothing(h);
	assert_int_equal(h->st.ctr.drop[UST_DROP_IP_PROTO], 3);
}

static void test_stack_ip_input_to_upper(void **state)
{
	struct harness *h = *state;
	uint8_t f[128];
	size_t n;

	h->st.upper.ip_input = on_ip_input;
	n = ip_frame(h, f, peer_mac, our_mac, PEER_IP, OUR_IP, UST_IPPROTO_TCP, ping_data, 20);
	ust_stack_input(&h->st, f, n, UST_RX_CSUM_OK, h->now);
	ust_stack_flush(&h->st);
	expect_nothing(h);
	assert_int_equal(h->ip_calls, 1);
	assert_int_equal(h->ip_rxflags, UST_RX_CSUM_OK | UST_RX_ETH); /* a link header before it */
	assert_int_equal(h->ip_last.src, PEER_IP);
	assert_int_equal(h->ip_last.dst, OUR_IP);
	assert_int_equal(h->ip_last.proto, UST_IPPROTO_TCP);
	assert_int_equal(h->ip_last.payload_len, 20);
	assert_memory_equal(h->ip_payload, ping_data, 20);
	assert_int_equal(h->st.ctr.event[UST_EV_RX_CSUM_OFFLOADED], 1);
	/* ICMP stays with the stack. */
	rx_echo_request(h, PEER_IP, 1, 1, ping_data, 8);
	assert_int_equal(h->ip_calls, 1);
}

static void test_stack_ip_input_to_upper_l3(void **state)
{
	struct harness *h = *state;
	uint8_t f[128];
	size_t n;

	h->st.upper.ip_input = on_ip_input;
	/* Padding after the datagram is not payload. */
	memset(f, 0x99, sizeof(f));
	n = ip_frame(h, f, NULL, NULL, PEER_IP, OUR_IP, UST_IPPROTO_UDP, ping_data, 8);
	rx(h, f, n + 10);
	assert_int_equal(h->ip_calls, 1);
	assert_int_equal(h->ip_last.payload_len, 8);
	assert_int_equal(h->ip_rxflags, 0);
}

static void test_stack_rx_counters(void **state)
{
	struct harness *h = *state;
	uint8_t f[100] = { 0 };

	ust_stack_input(&h->st, f, 100, 0, h->now);
	ust_stack_input(&h->st, f, 7, UST_RX_CSUM_OK, h->now);
	ust_stack_flush(&h->st);
	assert_int_equal(h->st.ctr.event[UST_EV_RX_FRAMES], 2);
	assert_int_equal(h->st.ctr.event[UST_EV_RX_BYTES], 107);
	assert_int_equal(h->st.ctr.event[UST_EV_RX_CSUM_OFFLOADED], 1);
	assert_int_equal(h->st.ctr.drop[UST_DROP_ETH_NOT_FOR_US], 1);
	assert_int_equal(h->st.ctr.drop[UST_DROP_ETH_SHORT], 1);
}

/* ---- IPv4 output ---- */

static void test_stack_ip_output_header(void **state)
{
	struct harness *h = *state;
	struct ust_ipv4 a, b;

	learn_peer(h);
	assert_int_equal(send_marker_flush(h, PEER_IP, 1), 0);
	assert_int_equal(send_marker_flush(h, PEER_IP, 2), 0);
	a = expect_ip(h, peer_mac, PEER_IP, UST_IPPROTO_UDP);
	b = expect_ip(h, peer_mac, PEER_IP, UST_IPPROTO_UDP);
	assert_int_equal(a.hlen, 20);
	assert_int_equal(a.tos, 0);
	assert_int_equal(a.total_len, 28);
	/* Each datagram its own identification. */
	assert_int_equal((uint16_t)(a.id + 1), b.id);
	assert_int_equal(h->out[h->seen - 1].len, 14 + 28);
}

static void test_stack_ip_output_largest(void **state)
{
	struct harness *h = *state;
	struct ust_pkt *p = ust_pkt_alloc(&h->st.pool);
	struct ust_ipv4 ip;

	learn_peer(h);
	assert_int_equal(ust_ip_max_payload(&h->st), 1480);
	assert_int_equal(ust_pkt_tailroom(&h->st.pool, p), 1500);
	memset(p->data, 0x42, 1480);
	p->len = 1480;
	assert_int_equal(ust_ip_output(&h->st, p, PEER_IP, UST_IPPROTO_TCP, 0, h->now), 0);
	ust_stack_flush(&h->st);
	ip = expect_ip(h, peer_mac, PEER_IP, UST_IPPROTO_TCP);
	assert_int_equal(ip.total_len, 1500);
	assert_int_equal(ip.payload[1479], 0x42);
}

static void test_stack_ip_output_unroutable(void **state)
{
	static const uint32_t dsts[] = { 0xffffffffu, IP4(224, 0, 0, 251), IP4(239, 0, 0, 1), FAR_IP };
	struct harness *h = *state;

	for (size_t i = 0; i < UST_ARRAY_SIZE(dsts); i++)
		assert_int_equal(send_marker_flush(h, dsts[i], 1), -ENETUNREACH);
	expect_nothing(h);
	assert_int_equal(h->st.ctr.drop[UST_DROP_TX_NO_ROUTE], UST_ARRAY_SIZE(dsts));
}

static void test_stack_ip_output_multicast_with_gateway_unroutable(void **state)
{
	struct harness *h = *state;

	assert_int_equal(send_marker_flush(h, IP4(224, 0, 0, 1), 1), -ENETUNREACH);
	assert_int_equal(send_marker_flush(h, 0xffffffffu, 1), -ENETUNREACH);
	expect_nothing(h);
}

/* Linux's tcp_v4_connect() refuses broadcast routes with ENETUNREACH; the
 * subnet's broadcast address must not be ARPed for as if it were a host. */
static void test_stack_ip_output_subnet_broadcast_unroutable(void **state)
{
	struct harness *h = *state;

	assert_int_equal(send_marker_flush(h, BCAST_IP, 1), -ENETUNREACH);
	expect_nothing(h);
	assert_null(ust_arp_lookup(&h->st, BCAST_IP));
}

/* 0.0.0.0 and 127/8 never go on the wire (Linux: martian destinations),
 * not even through a gateway. */
static void test_stack_ip_output_martian_unroutable(void **state)
{
	static const uint32_t dsts[] = { 0, IP4(0, 1, 2, 3), IP4(127, 0, 0, 1) };
	struct harness *h = *state;

	for (size_t i = 0; i < UST_ARRAY_SIZE(dsts); i++)
		assert_int_equal(send_marker_flush(h, dsts[i], 1), -ENETUNREACH);
	expect_nothing(h);
}

/* A datagram sent with IP options (a socket's IP_OPTIONS): a loose source
 * route goes to its first hop, the destination in its last slot, the
 * header 28 bytes with its checksum; a strict one whose first hop is off
 * the link (through the gateway) has no route, as Linux's ip_queue_xmit. */
static int send_with_opts(struct harness *h, uint32_t dst, const uint8_t *opt, unsigned len)
{
	struct ust_ip4_opts o;
	struct ust_ip_hdr hdr = { .ttl = 64, .df = true, .opts = &o };
	struct ust_pkt *p = ust_pkt_alloc(&h->st.pool);
	int r;

	assert_int_equal(ust_ip4_opts_compile(&o, opt, len, ust_ip_addr_local, &h->st), 0);
	assert_non_null(p);
	p->data += o.len; /* room in front, as tcp_output.c's emit makes */
	memset(p->data, 0xab, 8);
	p->len = 8;
	r = ust_ip_send(&h->st, p, dst, UST_IPPROTO_UDP, &hdr, h->now);
	ust_stack_flush(&h->st);
	return r;
}

static void test_stack_ip_options_source_route(void **state)
{
	const uint8_t lsrr[] = { 131, 7, 4, 10, 9, 0, 5 };
	struct harness *h = *state;
	const struct captured *c;

	assert_int_equal(send_with_opts(h, PEER_IP, lsrr, sizeof(lsrr)), 0);
	c = next_frame(h);
	assert_int_equal(c->len, 28 + 8);
	assert_int_equal(c->data[0], 0x47);
	assert_int_equal(ust_csum_fold(ust_csum_add(0, c->data, 28)), 0);
	assert_int_equal(ust_get32(c->data + 16), IP4(10, 9, 0, 5));
	assert_int_equal(c->data[20], 131);
	assert_int_equal(c->data[22], 4);
	assert_int_equal(ust_get32(c->data + 23), PEER_IP);
	assert_int_equal(c->data[27], 0);
	expect_nothing(h);
}

static void test_stack_ip_options_strict_route_off_link(void **state)
{
	const uint8_t ssrr[] = { 137, 7, 4, 192, 0, 2, 1 }, lsrr[] = { 131, 7, 4, 192, 0, 2, 1 };
	struct harness *h = *state;

	assert_int_equal(send_with_opts(h, PEER_IP, ssrr, sizeof(ssrr)), -EHOSTUNREACH);
	expect_nothing(h);
	assert_int_equal(send_with_opts(h, PEER_IP, lsrr, sizeof(lsrr)), 0);
	expect_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, GW_IP);
	expect_nothing(h);
}

static void test_stack_ip_output_l3(void **state)
{
	struct harness *h = *state;
	struct ust_ipv4 ip;

	assert_int_equal(send_marker_flush(h, PEER_IP, 1), 0);
	ip = expect_ip(h, NULL, PEER_IP, UST_IPPROTO_UDP);
	expect_nothing(h);
	assert_int_equal(ip.total_len, 28);
	assert_int_equal(h->out[0].len, 28);
	assert_int_equal(h->out[0].data[0], 0x45);
}

static void test_stack_output_short_write_counted(void **state)
{
	struct harness *h = *state;

	learn_peer(h);
	h->take = 1;
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(send_marker(h, PEER_IP, i), 0);
	ust_stack_flush(&h->st);
	expect_marker(h, peer_mac, PEER_IP, 0);
	expect_nothing(h);
	assert_int_equal(h->st.ctr.drop[UST_DROP_TX_ERROR], 2);
	h->take = 0;
	assert_int_equal(send_marker_flush(h, PEER_IP, 9), 0);
	assert_int_equal(h->st.ctr.drop[UST_DROP_TX_ERROR], 3);
	assert_int_equal(h->st.pool.avail, h->st.pool.size);
}

static void test_stack_flush_empty_does_not_call_output(void **state)
{
	struct harness *h = *state;

	ust_stack_flush(&h->st);
	ust_stack_flush(&h->st);
	assert_int_equal(h->output_calls, 0);
}

static void test_stack_no_output_function(void **state)
{
	struct harness *h = *state;

	h->st.output = NULL;
	rx_arp_request(h, peer_mac, PEER_IP);
	assert_int_equal(h->st.ctr.drop[UST_DROP_TX_ERROR], 1);
	assert_int_equal(h->n_out, 0);
}

static void test_stack_txq_overflow_flushes_in_order(void **state)
{
	struct harness *h = *state;
	unsigned n = UST_TXQ_MAX * 2 + 5;

	learn_peer(h);
	h->output_calls = 0;
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(send_marker(h, PEER_IP, i), 0);
	/* Two full batches went by themselves; the rest waits for flush. */
	assert_int_equal(h->output_calls, 2);
	assert_int_equal(h->st.txq_len, 5);
	ust_stack_flush(&h->st);
	assert_int_equal(h->output_calls, 3);
	for (uint32_t i = 0; i < n; i++)
		expect_marker(h, peer_mac, PEER_IP, i);
	expect_nothing(h);
	assert_int_equal(h->st.ctr.drop[UST_DROP_TX_ERROR], 0);
}

static void test_stack_destroy_frees_everything(void **state)
{
	struct harness *h = *state;

	/* Parked datagrams and an unflushed queue at destroy. */
	learn_peer(h);
	for (uint32_t i = 0; i < 5; i++)
		assert_int_equal(send_marker(h, PEER2_IP, i), 0);
	assert_int_equal(send_marker(h, PEER_IP, 1), 0);
	assert_int_equal(h->st.txq_len, 2);
	assert_int_equal(h->st.pool.avail, h->st.pool.size - 7);
	ust_arp_flush(&h->st);
	assert_int_equal(h->st.ctr.drop[UST_DROP_TX_ARP_FAILED], 5);
	assert_int_equal(h->st.pool.avail, h->st.pool.size - 2);
}

/* ---- echo requests (the test host's ping) ---- */

static void test_stack_echo_request_sent(void **state)
{
	struct harness *h = *state;
	struct ust_icmp icmp;

	learn_peer(h);
	assert_int_equal(ust_icmp_echo_request(&h->st, PEER_IP, 0x4321, 3, ping_data, 11, h->now), 0);
	ust_stack_flush(&h->st);
	icmp = expect_icmp(h, peer_mac, PEER_IP, UST_ICMP_ECHO_REQUEST);
	assert_int_equal(icmp.rest, 0x43210003);
	assert_int_equal(icmp.data_len, 11);
	assert_memory_equal(icmp.data, ping_data, 11);
	expect_nothing(h);
}

static void test_stack_echo_request_sizes(void **state)
{
	struct harness *h = *state;
	static uint8_t big[1500];

	learn_peer(h);
	assert_int_equal(ust_icmp_echo_request(&h->st, PEER_IP, 1, 1, big, 1472, h->now), 0);
	assert_int_equal(ust_icmp_echo_request(&h->st, PEER_IP, 1, 2, big, 1473, h->now), -EMSGSIZE);
	assert_int_equal(ust_icmp_echo_request(&h->st, PEER_IP, 1, 3, big, 0, h->now), 0);
	ust_stack_flush(&h->st);
	assert_int_equal(expect_icmp(h, peer_mac, PEER_IP, UST_ICMP_ECHO_REQUEST).data_len, 1472);
	assert_int_equal(expect_icmp(h, peer_mac, PEER_IP, UST_ICMP_ECHO_REQUEST).data_len, 0);
	expect_nothing(h);
}

/* "Returns 0 or -errno": with no route the caller (ping) must hear
 * ENETUNREACH, as ping(8) prints "Network is unreachable". */
static void test_stack_echo_request_no_route_reported(void **state)
{
	struct harness *h = *state;

	assert_int_equal(ust_icmp_echo_request(&h->st, FAR_IP, 1, 1, ping_data, 8, h->now),
			 -ENETUNREACH);
	ust_stack_flush(&h->st);
	expect_nothing(h);
}

static void test_stack_echo_request_no_buffer_reported(void **state)
{
	struct harness *h = *state;
	struct ust_pkt *held[256];
	unsigned n = 0;
	int rc;

	learn_peer(h);
	n = hold_all(h, held);
	rc = ust_icmp_echo_request(&h->st, PEER_IP, 1, 1, ping_data, 8, h->now);
	release_all(h, held, n);
	assert_int_equal(rc, -ENOBUFS);
}

/* No data, no pointer: memcpy(dst, NULL, 0) is undefined behaviour, which
 * UBSan reports (and aborts on, built with SAN=1). Last in the list, so an
 * abort hides no other result. */
static void test_stack_echo_request_null_empty_data(void **state)
{
	struct harness *h = *state;

	learn_peer(h);
	assert_int_equal(ust_icmp_echo_request(&h->st, PEER_IP, 1, 1, NULL, 0, h->now), 0);
	ust_stack_flush(&h->st);
	assert_int_equal(expect_icmp(h, peer_mac, PEER_IP, UST_ICMP_ECHO_REQUEST).data_len, 0);
}

int main(void)
{
#define E(f) cmocka_unit_test_setup_teardown(f, setup_eth, teardown_check_pool)
#define G(f) cmocka_unit_test_setup_teardown(f, setup_eth_gw, teardown_check_pool)
#define L(f) cmocka_unit_test_setup_teardown(f, setup_l3, teardown_check_pool)
	const struct CMUnitTest tests[] = {
		E(test_stack_ping_answered),
		E(test_stack_ping_every_data_length),
		E(test_stack_ping_largest),
		E(test_stack_ping_beyond_mtu_stays_within_mtu),
		E(test_stack_ping_padded_frame),
		E(test_stack_ping_from_unresolved_peer_asks_first),
		E(test_stack_ping_broadcast_mac_answered),
		E(test_stack_ping_with_ip_options_answered),
		E(test_stack_ping_bad_checksum_dropped),
		E(test_stack_ping_fragment_dropped),
		E(test_stack_ping_low_ttl_answered),
		L(test_stack_ping_l3),
		G(test_stack_ping_offlink_via_gateway),
		E(test_stack_ping_offlink_without_gateway_dropped),
		E(test_stack_ping_pool_exhausted),
		E(test_stack_echo_reply_to_upper),
		E(test_stack_echo_reply_without_upper_ignored),
		E(test_stack_icmp_error_to_upper),
		E(test_stack_icmp_error_about_others_dropped),
		E(test_stack_icmp_error_short_quote_dropped),
		E(test_stack_icmp_unknown_type_dropped),
		E(test_stack_not_our_mac_dropped),
		E(test_stack_other_ip_dropped),
		E(test_stack_bad_source_dropped),
		G(test_stack_martian_source_dropped),
		L(test_stack_bad_source_l3_dropped),
		cmocka_unit_test_teardown(test_stack_slash31_peer_answered, teardown_check_pool),
		L(test_stack_l3_garbage_dropped),
		E(test_stack_unknown_proto_without_upper_dropped),
		E(test_stack_ip_input_to_upper),
		L(test_stack_ip_input_to_upper_l3),
		E(test_stack_rx_counters),
		E(test_stack_ip_output_header),
		E(test_stack_ip_output_largest),
		E(test_stack_ip_output_unroutable),
		G(test_stack_ip_output_multicast_with_gateway_unroutable),
		E(test_stack_ip_output_subnet_broadcast_unroutable),
		G(test_stack_ip_output_martian_unroutable),
		L(test_stack_ip_output_l3),
		L(test_stack_ip_options_source_route),
		G(test_stack_ip_options_strict_route_off_link),
		E(test_stack_output_short_write_counted),
		E(test_stack_flush_empty_does_not_call_output),
		E(test_stack_no_output_function),
		E(test_stack_txq_overflow_flushes_in_order),
		E(test_stack_destroy_frees_everything),
		E(test_stack_echo_request_sent),
		E(test_stack_echo_request_sizes),
		E(test_stack_echo_request_no_route_reported),
		E(test_stack_echo_request_no_buffer_reported),
		E(test_stack_echo_request_null_empty_data),
	};
#undef E
#undef G
#undef L

	return cmocka_run_group_tests(tests, NULL, NULL);
}
