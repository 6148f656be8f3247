/* ARP: answering for our address, the neighbour cache, parking datagrams
 * while resolving, retries, failure, refresh and eviction. The stack runs on
 * a virtual clock; its output is captured frame by frame. */
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

#include "stack_harness.h"

/* ---- answering ---- */

static void test_arp_request_for_us_answered(void **state)
{
	struct harness *h = *state;
	uint8_t f[60];
	struct ust_arp a;

	rx(h, f, arp_frame(f, UST_ARP_REQUEST, ust_eth_broadcast, peer_mac, PEER_IP, zero_mac, OUR_IP));
	a = expect_arp(h, UST_ARP_REPLY, peer_mac, PEER_IP);
	assert_memory_equal(a.tha, peer_mac, 6);
	expect_nothing(h);
	/* The raw bytes of the fixed part: Ethernet/IPv4, 6/4, reply. */
	assert_memory_equal(h->out[0].data + 14, ((const uint8_t[]){ 0, 1, 8, 0, 6, 4, 0, 2 }), 8);
	assert_int_equal(h->st.ctr.event[UST_EV_ARP_REQUESTS_IN], 1);
	assert_int_equal(h->st.ctr.event[UST_EV_ARP_REPLIES_OUT], 1);
}

static void test_arp_request_unicast_answered(void **state)
{
	struct harness *h = *state;

	/* A refresh sent straight to our MAC, as Linux does for a stale entry. */
	rx_arp(h, UST_ARP_REQUEST, our_mac, peer_mac, PEER_IP, our_mac, OUR_IP);
	expect_arp(h, UST_ARP_REPLY, peer_mac, PEER_IP);
	expect_nothing(h);
}

static void test_arp_request_unpadded_answered(void **state)
{
	struct harness *h = *state;
	uint8_t f[60];

	/* 42 bytes: no padding (a sender on a software link). */
	arp_frame(f, UST_ARP_REQUEST, ust_eth_broadcast, peer_mac, PEER_IP, zero_mac, OUR_IP);
	rx(h, f, UST_ETH_HLEN + UST_ARP_LEN);
	expect_arp(h, UST_ARP_REPLY, peer_mac, PEER_IP);
}

static void test_arp_request_learns_requester(void **state)
{
	struct harness *h = *state;
	const struct ust_neigh *n;

	rx_arp_request(h, peer_mac, PEER_IP);
	expect_arp(h, UST_ARP_REPLY, peer_mac, PEER_IP);
	n = ust_arp_lookup(&h->st, PEER_IP);
	assert_non_null(n);
	assert_int_equal(n->state, UST_NEIGH_REACHABLE);
	assert_memory_equal(n->mac, peer_mac, 6);
	/* So a datagram to it goes at once, without asking. */
	assert_int_equal(send_marker_flush(h, PEER_IP, 1), 0);
	expect_marker(h, peer_mac, PEER_IP, 1);
	expect_nothing(h);
	assert_int_equal(h->st.ctr.event[UST_EV_ARP_REQUESTS_OUT], 0);
}

/* RFC 826 and Linux send the reply to the sender hardware address, which is
 * the Ethernet source but for bridges and proxies that rewrite one of them. */
static void test_arp_reply_goes_to_sender_hardware_address(void **state)
{
	static const uint8_t mcast[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };
	/* Ethernet sources that differ from sha, some not even unicast: the
	 * reply must never go to a multicast or zero address. */
	const uint8_t *srcs[] = { peer2_mac, mcast, zero_mac, ust_eth_broadcast };
	struct harness *h = *state;
	uint8_t f[60];
	struct ust_arp a;

	for (size_t i = 0; i < UST_ARRAY_SIZE(srcs); i++) {
		arp_frame(f, UST_ARP_REQUEST, ust_eth_broadcast, peer_mac, PEER_IP, zero_mac, OUR_IP);
		memcpy(f + 6, srcs[i], 6);
		rx(h, f, 60);
		a = expect_arp(h, UST_ARP_REPLY, peer_mac, PEER_IP);
		assert_memory_equal(a.tha, peer_mac, 6);
	}
}

static void test_arp_request_for_other_host_ignored(void **state)
{
	struct harness *h = *state;

	rx_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, peer_mac, PEER_IP, zero_mac, PEER2_IP);
	expect_nothing(h);
	assert_int_equal(h->st.ctr.drop[UST_DROP_ARP_NOT_FOR_US], 1);
	assert_int_equal(h->st.ctr.event[UST_EV_ARP_REQUESTS_IN], 0);
	/* Not learned: it was not talking to us. */
	assert_null(ust_arp_lookup(&h->st, PEER_IP));
}

static void test_arp_request_for_other_host_updates_known_neighbour(void **state)
{
	struct harness *h = *state;
	const struct ust_neigh *n;

	rx_arp_request(h, peer_mac, PEER_IP);
	expect_arp(h, UST_ARP_REPLY, peer_mac, PEER_IP);
	/* RFC 826: the sender's new MAC is merged whoever the target is. */
	rx_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, peer2_mac, PEER_IP, zero_mac, PEER2_IP);
	expect_nothing(h);
	n = ust_arp_lookup(&h->st, PEER_IP);
	assert_non_null(n);
	assert_memory_equal(n->mac, peer2_mac, 6);
	assert_int_equal(h->st.ctr.drop[UST_DROP_ARP_NOT_FOR_US], 1);
}

static void test_arp_reply_for_us_counted(void **state)
{
	struct harness *h = *state;

	rx_arp_reply(h, peer_mac, PEER_IP);
	expect_nothing(h); /* never answer a reply */
	assert_int_equal(h->st.ctr.event[UST_EV_ARP_REPLIES_IN], 1);
	assert_int_equal(h->st.ctr.event[UST_EV_ARP_REPLIES_OUT], 0);
}

/* RFC 5227 §2.1.1: a host probing for an address (sender IP 0.0.0.0) learns
 * it is taken from the owner's reply; Linux answers probes for its own
 * addresses (arp_process: sip == 0, request for a local address). */
static void test_arp_probe_for_our_address_answered(void **state)
{
	struct harness *h = *state;
	struct ust_arp a;

	rx_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, peer_mac, 0, zero_mac, OUR_IP);
	a = expect_arp(h, UST_ARP_REPLY, peer_mac, 0);
	assert_memory_equal(a.tha, peer_mac, 6);
	/* Nothing is learned about 0.0.0.0. */
	assert_null(ust_arp_lookup(&h->st, 0));
}

static void test_arp_probe_for_other_address_ignored(void **state)
{
	struct harness *h = *state;

	rx_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, peer_mac, 0, zero_mac, PEER2_IP);
	expect_nothing(h);
	assert_null(ust_arp_lookup(&h->st, 0));
}

static void test_arp_conflict_counted(void **state)
{
	struct harness *h = *state;

	/* Someone else says it has our address: a gratuitous ARP, then a
	 * request from "us". */
	rx_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, peer_mac, OUR_IP, zero_mac, OUR_IP);
	rx_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, peer_mac, OUR_IP, zero_mac, PEER_IP);
	expect_nothing(h);
	assert_int_equal(h->st.ctr.event[UST_EV_ARP_CONFLICT], 2);
	assert_int_equal(h->st.ctr.drop[UST_DROP_ARP_BAD_SENDER], 2);
	assert_null(ust_arp_lookup(&h->st, OUR_IP));
}

static void test_arp_bad_sender_mac_dropped(void **state)
{
	static const uint8_t mcast[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };
	struct harness *h = *state;
	uint8_t f[60];

	rx_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, mcast, PEER_IP, zero_mac, OUR_IP);
	rx_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, ust_eth_broadcast, PEER_IP, zero_mac, OUR_IP);
	/* A zero sha (the Ethernet source is fine). */
	arp_frame(f, UST_ARP_REQUEST, ust_eth_broadcast, peer_mac, PEER_IP, zero_mac, OUR_IP);
	memset(f + 14 + 8, 0, 6);
	rx(h, f, 60);
	expect_nothing(h);
	assert_int_equal(h->st.ctr.drop[UST_DROP_ARP_BAD_SENDER], 3);
	assert_null(ust_arp_lookup(&h->st, PEER_IP));
}

static void test_arp_wrong_format_dropped(void **state)
{
	static const struct { unsigned off; uint8_t v; } bad[] = {
		{ 1, 6 },     /* htype 6 */
		{ 2, 0x86 },  /* ptype 0x86dd */
		{ 4, 8 },     /* hlen 8 */
		{ 5, 16 },    /* plen 16 */
		{ 7, 3 },     /* op 3 (RARP request) */
		{ 7, 0 },     /* op 0 */
	};
	struct harness *h = *state;
	uint8_t f[60];

	for (size_t i = 0; i < UST_ARRAY_SIZE(bad); i++) {
		arp_frame(f, UST_ARP_REQUEST, ust_eth_broadcast, peer_mac, PEER_IP, zero_mac, OUR_IP);
		f[14 + bad[i].off] = bad[i].v;
		rx(h, f, 60);
	}
	expect_nothing(h);
	assert_int_equal(h->st.ctr.drop[UST_DROP_ARP_FORMAT], UST_ARRAY_SIZE(bad));
	assert_null(ust_arp_lookup(&h->st, PEER_IP));
}

static void test_arp_truncated_dropped(void **state)
{
	struct harness *h = *state;
	uint8_t f[60];

	arp_frame(f, UST_ARP_REQUEST, ust_eth_broadcast, peer_mac, PEER_IP, zero_mac, OUR_IP);
	for (size_t len = UST_ETH_HLEN; len < UST_ETH_HLEN + UST_ARP_LEN; len++)
		rx(h, f, len);
	expect_nothing(h);
	assert_int_equal(h->st.ctr.drop[UST_DROP_ARP_SHORT], UST_ARP_LEN);
}

static void test_arp_not_for_our_mac_dropped(void **state)
{
	static const uint8_t mcast[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };
	struct harness *h = *state;

	rx_arp(h, UST_ARP_REQUEST, peer2_mac, peer_mac, PEER_IP, zero_mac, OUR_IP);
	rx_arp(h, UST_ARP_REQUEST, mcast, peer_mac, PEER_IP, zero_mac, OUR_IP);
	expect_nothing(h);
	assert_int_equal(h->st.ctr.drop[UST_DROP_ETH_NOT_FOR_US], 2);
}

static void test_arp_pool_exhausted_no_reply(void **state)
{
	struct harness *h = *state;
	struct ust_pkt *held[256];
	unsigned n = hold_all(h, held);

	rx_arp_request(h, peer_mac, PEER_IP);
	expect_nothing(h);
	assert_int_equal(h->st.ctr.drop[UST_DROP_TX_NO_BUFFER], 1);
	release_all(h, held, n);
	/* It still learned the requester. */
	assert_non_null(ust_arp_lookup(&h->st, PEER_IP));
}

/* ---- resolving ---- */

static void test_arp_resolve_broadcasts_request_and_parks(void **state)
{
	struct harness *h = *state;
	const struct ust_neigh *n;
	struct ust_arp a;

	assert_int_equal(send_marker_flush(h, PEER_IP, 1), 0);
	a = expect_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, PEER_IP);
	assert_memory_equal(a.tha, zero_mac, 6);
	expect_nothing(h); /* the datagram waits */
	n = ust_arp_lookup(&h->st, PEER_IP);
	assert_non_null(n);
	assert_int_equal(n->state, UST_NEIGH_INCOMPLETE);
	assert_int_equal(n->qlen, 1);
	assert_int_equal(h->st.ctr.event[UST_EV_ARP_REQUESTS_OUT], 1);
}

/* The other stacks on our address, as the address share stands in for
 * them (stack.h, neigh_recall and neigh_note): one record. */
static struct {
	bool known;
	struct ust_ip6 addr;
	uint8_t mac[6];
	ust_time age;
	unsigned notes;
} others;

static bool others_recall(void *ctx, const struct ust_ip6 *addr, uint8_t mac[6], ust_time *age)
{
	(void)ctx;
	if (!others.known || !ust_ip6_eq(addr, &others.addr))
		return false;
	memcpy(mac, others.mac, 6);
	*age = others.age;
	return true;
}

static void others_note(void *ctx, const struct ust_ip6 *addr, const uint8_t mac[6])
{
	(void)ctx;
	others.known = true;
	others.addr = *addr;
	memcpy(others.mac, mac, 6);
	others.age = 0;
	others.notes++;
}

static void others_join(struct harness *h, const uint8_t *mac, ust_time age)
{
	memset(&others, 0, sizeof(others));
	others.known = true;
	others.addr = ust_ip6_from_v4(PEER_IP);
	memcpy(others.mac, mac, 6);
	others.age = age;
	h->st.neigh_recall = others_recall;
	h->st.neigh_note = others_note;
}

/* A neighbour another stack on the address confirmed 10 s ago: the first
 * datagram goes to it at once, no request, and the entry is trusted for
 * the 20 s left of its reachable time, then asked again directly. */
static void test_arp_shared_neighbour_used_without_asking(void **state)
{
	struct harness *h = *state;
	const struct ust_neigh *n;

	others_join(h, peer_mac, UST_SEC(10));
	assert_int_equal(send_marker_flush(h, PEER_IP, 1), 0);
	expect_marker(h, peer_mac, PEER_IP, 1);
	expect_nothing(h);
	n = ust_arp_lookup(&h->st, PEER_IP);
	assert_int_equal(n->state, UST_NEIGH_REACHABLE);
	assert_int_equal(n->deadline, h->now + UST_SEC(20));
	assert_int_equal(h->st.ctr.event[UST_EV_NEIGH_SHARED], 1);
	assert_int_equal(h->st.ctr.event[UST_EV_ARP_REQUESTS_OUT], 0);
	h->now += UST_SEC(20);
	assert_int_equal(send_marker_flush(h, PEER_IP, 2), 0);
	expect_arp(h, UST_ARP_REQUEST, peer_mac, PEER_IP); /* STALE: unicast */
	expect_marker(h, peer_mac, PEER_IP, 2);
	expect_nothing(h);
}

/* One confirmed 30 s ago or more is not trusted: asked as if unknown;
 * the answer is told to the others. */
static void test_arp_shared_neighbour_too_old_asked(void **state)
{
	struct harness *h = *state;

	others_join(h, zero_mac, UST_ARP_REACHABLE);
	assert_int_equal(send_marker_flush(h, PEER_IP, 1), 0);
	expect_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, PEER_IP);
	expect_nothing(h);
	rx_arp_reply(h, peer_mac, PEER_IP);
	expect_marker(h, peer_mac, PEER_IP, 1);
	expect_nothing(h);
	assert_int_equal(others.notes, 1);
	assert_memory_equal(others.mac, peer_mac, 6);
	assert_int_equal(others.age, 0);
	assert_int_equal(h->st.ctr.event[UST_EV_NEIGH_SHARED], 0);
}

static void test_arp_resolve_reply_sends_parked_in_order(void **state)
{
	struct harness *h = *state;

	for (uint32_t i = 1; i <= 3; i++)
		assert_int_equal(send_marker_flush(h, PEER_IP, i), 0);
	expect_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, PEER_IP);
	expect_nothing(h); /* one request, however many wait */
	h->now += UST_MS(3);
	rx_arp_reply(h, peer_mac, PEER_IP);
	for (uint32_t i = 1; i <= 3; i++)
		expect_marker(h, peer_mac, PEER_IP, i);
	expect_nothing(h);
	assert_int_equal(ust_arp_lookup(&h->st, PEER_IP)->state, UST_NEIGH_REACHABLE);
	assert_int_equal(ust_arp_lookup(&h->st, PEER_IP)->qlen, 0);
	/* From now on, straight out. */
	assert_int_equal(send_marker_flush(h, PEER_IP, 4), 0);
	expect_marker(h, peer_mac, PEER_IP, 4);
	expect_nothing(h);
	assert_int_equal(advance(h, UST_SEC(1)), UST_TIME_NEVER);
	expect_nothing(h);
}

static void test_arp_resolve_request_from_target_sends_parked(void **state)
{
	struct harness *h = *state;

	assert_int_equal(send_marker_flush(h, PEER_IP, 7), 0);
	expect_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, PEER_IP);
	/* Instead of answering, the neighbour asks for us: that tells us its
	 * MAC too. */
	rx_arp_request(h, peer_mac, PEER_IP);
	expect_marker(h, peer_mac, PEER_IP, 7);
	expect_arp(h, UST_ARP_REPLY, peer_mac, PEER_IP);
	expect_nothing(h);
}

static void test_arp_resolve_gratuitous_from_target_sends_parked(void **state)
{
	struct harness *h = *state;

	assert_int_equal(send_marker_flush(h, PEER_IP, 7), 0);
	expect_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, PEER_IP);
	rx_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, peer_mac, PEER_IP, zero_mac, PEER_IP);
	expect_marker(h, peer_mac, PEER_IP, 7);
	expect_nothing(h);
}

static void test_arp_resolve_retries_then_unreachable(void **state)
{
	struct harness *h = *state;

	assert_int_equal(send_marker_flush(h, PEER_IP, 1), 0);
	assert_int_equal(send_marker_flush(h, PEER_IP, 2), 0);
	expect_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, PEER_IP);
	assert_int_equal(advance_rel(h, 0), UST_SEC(1));
	assert_int_equal(advance_rel(h, UST_MS(999)), UST_MS(1));
	expect_nothing(h);
	/* Second and third requests, 1 s apart. */
	assert_int_equal(advance_rel(h, UST_MS(1)), UST_SEC(1));
	expect_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, PEER_IP);
	expect_nothing(h);
	assert_int_equal(advance_rel(h, UST_SEC(1)), UST_SEC(1));
	expect_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, PEER_IP);
	expect_nothing(h);
	assert_int_equal(h->unreach_calls, 0);
	/* 1 s after the third: give up. */
	assert_int_equal(advance(h, UST_SEC(1)), UST_TIME_NEVER);
	expect_nothing(h);
	assert_int_equal(h->unreach_calls, 1);
	assert_int_equal(h->unreach_dst, PEER_IP);
	assert_int_equal(h->unreach_err, EHOSTUNREACH);
	assert_int_equal(h->st.ctr.drop[UST_DROP_TX_ARP_FAILED], 2);
	assert_int_equal(h->st.ctr.event[UST_EV_ARP_REQUESTS_OUT], UST_ARP_PROBES);
	assert_null(ust_arp_lookup(&h->st, PEER_IP));
	/* And it stays quiet. */
	assert_int_equal(advance(h, UST_SEC(10)), UST_TIME_NEVER);
	expect_nothing(h);
	assert_int_equal(h->unreach_calls, 1);
}

static void test_arp_resolve_late_timer_call(void **state)
{
	struct harness *h = *state;

	assert_int_equal(send_marker_flush(h, PEER_IP, 1), 0);
	expect_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, PEER_IP);
	/* The loop oversleeps by 10 s: one more request, not all at once. */
	assert_int_equal(advance_rel(h, UST_SEC(10)), UST_SEC(1));
	expect_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, PEER_IP);
	expect_nothing(h);
	assert_int_equal(h->unreach_calls, 0);
}

static void test_arp_resolve_after_failure_starts_over(void **state)
{
	struct harness *h = *state;

	assert_int_equal(send_marker_flush(h, PEER_IP, 1), 0);
	for (int i = 0; i < 3; i++)
		advance(h, UST_SEC(1));
	assert_int_equal(h->unreach_calls, 1);
	h->seen = h->n_out;
	assert_int_equal(send_marker_flush(h, PEER_IP, 2), 0);
	expect_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, PEER_IP);
	rx_arp_reply(h, peer_mac, PEER_IP);
	expect_marker(h, peer_mac, PEER_IP, 2);
	expect_nothing(h);
}

static void test_arp_unreachable_hook_may_send_again(void **state)
{
	struct harness *h = *state;

	h->resend_on_unreach = true;
	assert_int_equal(send_marker_flush(h, PEER_IP, 1), 0);
	for (int i = 0; i < 3; i++)
		advance(h, UST_SEC(1));
	assert_int_equal(h->unreach_calls, 1);
	/* The hook sent again: a fresh round of asking began. */
	h->seen = h->n_out - 1;
	expect_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, PEER_IP);
	assert_non_null(ust_arp_lookup(&h->st, PEER_IP));
	assert_int_equal(ust_arp_lookup(&h->st, PEER_IP)->qlen, 1);
	rx_arp_reply(h, peer_mac, PEER_IP);
	expect_marker(h, peer_mac, PEER_IP, 999);
	expect_nothing(h);
}

static void test_arp_resolve_two_neighbours_independently(void **state)
{
	struct harness *h = *state;

	assert_int_equal(send_marker_flush(h, PEER_IP, 1), 0);
	expect_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, PEER_IP);
	h->now += UST_MS(500);
	assert_int_equal(send_marker_flush(h, PEER2_IP, 2), 0);
	expect_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, PEER2_IP);
	/* The next timer is the first neighbour's. */
	assert_int_equal(advance_rel(h, 0), UST_MS(500));
	rx_arp_reply(h, peer2_mac, PEER2_IP);
	expect_marker(h, peer2_mac, PEER2_IP, 2);
	assert_int_equal(advance_rel(h, UST_MS(500)), UST_SEC(1));
	expect_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, PEER_IP);
	expect_nothing(h);
	advance(h, UST_SEC(1));
	advance(h, UST_SEC(1));
	assert_int_equal(h->unreach_calls, 1);
	assert_int_equal(h->unreach_dst, PEER_IP);
	assert_non_null(ust_arp_lookup(&h->st, PEER2_IP));
}

static void test_arp_queue_overflow_drops_oldest(void **state)
{
	struct harness *h = *state;

	for (uint32_t i = 0; i <= UST_NEIGH_QUEUE_MAX; i++)
		assert_int_equal(send_marker_flush(h, PEER_IP, i), 0);
	expect_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, PEER_IP);
	expect_nothing(h);
	assert_int_equal(h->st.ctr.drop[UST_DROP_TX_ARP_QUEUE], 1);
	assert_int_equal(ust_arp_lookup(&h->st, PEER_IP)->qlen, UST_NEIGH_QUEUE_MAX);
	rx_arp_reply(h, peer_mac, PEER_IP);
	/* Marker 0, the oldest, went. */
	for (uint32_t i = 1; i <= UST_NEIGH_QUEUE_MAX; i++)
		expect_marker(h, peer_mac, PEER_IP, i);
	expect_nothing(h);
}

static void test_arp_queue_overflow_then_failure_counts_all(void **state)
{
	struct harness *h = *state;

	for (uint32_t i = 0; i < UST_NEIGH_QUEUE_MAX + 10; i++)
		assert_int_equal(send_marker_flush(h, PEER_IP, i), 0);
	for (int i = 0; i < 3; i++)
		advance(h, UST_SEC(1));
	assert_int_equal(h->st.ctr.drop[UST_DROP_TX_ARP_QUEUE], 10);
	assert_int_equal(h->st.ctr.drop[UST_DROP_TX_ARP_FAILED], UST_NEIGH_QUEUE_MAX);
	assert_int_equal(h->unreach_calls, 1);
}

/* ---- routing ---- */

static void test_arp_offlink_via_gateway(void **state)
{
	struct harness *h = *state;

	assert_int_equal(send_marker_flush(h, FAR_IP, 5), 0);
	expect_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, GW_IP);
	expect_nothing(h);
	rx_arp_reply(h, gw_mac, GW_IP);
	expect_marker(h, gw_mac, FAR_IP, 5);
	/* Another far host shares the gateway's entry: no new request. */
	assert_int_equal(send_marker_flush(h, IP4(198, 51, 100, 7), 6), 0);
	expect_marker(h, gw_mac, IP4(198, 51, 100, 7), 6);
	expect_nothing(h);
	/* On-link hosts are still asked for directly. */
	assert_int_equal(send_marker_flush(h, PEER_IP, 7), 0);
	expect_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, PEER_IP);
	expect_nothing(h);
}

static void test_arp_offlink_gateway_unreachable(void **state)
{
	struct harness *h = *state;

	assert_int_equal(send_marker_flush(h, FAR_IP, 5), 0);
	for (int i = 0; i < 3; i++)
		advance(h, UST_SEC(1));
	/* The hook names the next hop that did not answer. */
	assert_int_equal(h->unreach_calls, 1);
	assert_int_equal(h->unreach_dst, GW_IP);
	assert_int_equal(h->unreach_err, EHOSTUNREACH);
}

static void test_arp_offlink_without_gateway_unreachable(void **state)
{
	struct harness *h = *state;

	assert_int_equal(send_marker_flush(h, FAR_IP, 5), -ENETUNREACH);
	expect_nothing(h);
	assert_int_equal(h->st.ctr.drop[UST_DROP_TX_NO_ROUTE], 1);
	assert_null(ust_arp_lookup(&h->st, FAR_IP));
}

static void test_arp_l3_needs_no_arp(void **state)
{
	struct harness *h = *state;

	assert_int_equal(send_marker_flush(h, PEER_IP, 3), 0);
	expect_marker(h, NULL, PEER_IP, 3);
	expect_nothing(h);
	assert_int_equal(h->out[0].len, UST_IPV4_HLEN + 8);
	assert_null(ust_arp_lookup(&h->st, PEER_IP));
	assert_int_equal(advance(h, UST_SEC(5)), UST_TIME_NEVER);
	expect_nothing(h);
	assert_int_equal(h->st.ctr.event[UST_EV_ARP_REQUESTS_OUT], 0);
}

/* ---- refresh ---- */

static void resolve_peer(struct harness *h)
{
	rx_arp_request(h, peer_mac, PEER_IP);
	expect_arp(h, UST_ARP_REPLY, peer_mac, PEER_IP);
}

static void test_arp_stale_entry_refreshed_unicast(void **state)
{
	struct harness *h = *state;

	resolve_peer(h);
	h->now += UST_ARP_REACHABLE - 1;
	assert_int_equal(send_marker_flush(h, PEER_IP, 1), 0);
	expect_marker(h, peer_mac, PEER_IP, 1);
	expect_nothing(h);
	h->now += 1;
	/* Past the reachable time: ask the neighbour directly, and keep
	 * sending to it meanwhile. */
	assert_int_equal(send_marker_flush(h, PEER_IP, 2), 0);
	expect_arp(h, UST_ARP_REQUEST, peer_mac, PEER_IP);
	expect_marker(h, peer_mac, PEER_IP, 2);
	expect_nothing(h);
	assert_int_equal(ust_arp_lookup(&h->st, PEER_IP)->state, UST_NEIGH_STALE);
	assert_int_equal(send_marker_flush(h, PEER_IP, 3), 0);
	expect_marker(h, peer_mac, PEER_IP, 3);
	expect_nothing(h);
	rx_arp_reply(h, peer_mac, PEER_IP);
	expect_nothing(h);
	assert_int_equal(ust_arp_lookup(&h->st, PEER_IP)->state, UST_NEIGH_REACHABLE);
	assert_int_equal(advance(h, UST_SEC(5)), UST_TIME_NEVER);
	expect_nothing(h);
}

static void test_arp_stale_entry_forgotten_quietly(void **state)
{
	struct harness *h = *state;

	resolve_peer(h);
	h->now += UST_ARP_REACHABLE;
	assert_int_equal(send_marker_flush(h, PEER_IP, 1), 0);
	expect_arp(h, UST_ARP_REQUEST, peer_mac, PEER_IP);
	expect_marker(h, peer_mac, PEER_IP, 1);
	advance(h, UST_SEC(1));
	expect_arp(h, UST_ARP_REQUEST, peer_mac, PEER_IP);
	advance(h, UST_SEC(1));
	expect_arp(h, UST_ARP_REQUEST, peer_mac, PEER_IP);
	assert_int_equal(advance(h, UST_SEC(1)), UST_TIME_NEVER);
	expect_nothing(h);
	assert_null(ust_arp_lookup(&h->st, PEER_IP));
	/* Nothing was waiting, so nobody is told. */
	assert_int_equal(h->unreach_calls, 0);
	assert_int_equal(h->st.ctr.drop[UST_DROP_TX_ARP_FAILED], 0);
	/* The next datagram asks from scratch, by broadcast. */
	assert_int_equal(send_marker_flush(h, PEER_IP, 2), 0);
	expect_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, PEER_IP);
	expect_nothing(h);
}

/* ---- the table ---- */

static void test_arp_table_full_of_unresolved_drops(void **state)
{
	struct harness *h = *state;

	for (uint32_t i = 0; i < UST_NEIGH_MAX; i++)
		assert_int_equal(send_marker_flush(h, IP4(10, 9, 0, 10 + i), i), 0);
	assert_int_equal(h->n_out, UST_NEIGH_MAX);
	h->seen = h->n_out;
	/* No entry can be taken from a neighbour being resolved. */
	assert_int_equal(send_marker_flush(h, IP4(10, 9, 0, 100), 100), 0);
	expect_nothing(h);
	assert_int_equal(h->st.ctr.drop[UST_DROP_TX_ARP_QUEUE], 1);
	assert_null(ust_arp_lookup(&h->st, IP4(10, 9, 0, 100)));
	/* An ARP request for us is still answered without an entry. */
	rx_arp_request(h, peer_mac, PEER_IP);
	expect_arp(h, UST_ARP_REPLY, peer_mac, PEER_IP);
	assert_null(ust_arp_lookup(&h->st, PEER_IP));
	for (int i = 0; i < 3; i++)
		advance(h, UST_SEC(1));
	assert_int_equal(h->unreach_calls, UST_NEIGH_MAX);
	assert_int_equal(h->st.ctr.drop[UST_DROP_TX_ARP_FAILED], UST_NEIGH_MAX);
}

static void test_arp_table_evicts_least_recently_used(void **state)
{
	struct harness *h = *state;
	uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 0 };

	for (uint32_t i = 0; i < UST_NEIGH_MAX; i++) {
		mac[5] = (uint8_t)(10 + i);
		h->now += UST_MS(1);
		rx_arp_request(h, mac, IP4(10, 9, 0, 10 + i));
	}
	h->seen = h->n_out;
	/* Use the oldest: the second oldest becomes the victim. */
	h->now += UST_MS(1);
	assert_int_equal(send_marker_flush(h, IP4(10, 9, 0, 10), 1), 0);
	h->seen = h->n_out;
	h->now += UST_MS(1);
	rx_arp_request(h, peer_mac, PEER_IP);
	expect_arp(h, UST_ARP_REPLY, peer_mac, PEER_IP);
	assert_non_null(ust_arp_lookup(&h->st, PEER_IP));
	assert_non_null(ust_arp_lookup(&h->st, IP4(10, 9, 0, 10)));
	assert_null(ust_arp_lookup(&h->st, IP4(10, 9, 0, 11)));
	assert_non_null(ust_arp_lookup(&h->st, IP4(10, 9, 0, 12)));
}

int main(void)
{
#define E(f) cmocka_unit_test_setup_teardown(f, setup_eth, teardown_check_pool)
#define G(f) cmocka_unit_test_setup_teardown(f, setup_eth_gw, teardown_check_pool)
#define L(f) cmocka_unit_test_setup_teardown(f, setup_l3, teardown_check_pool)
	const struct CMUnitTest tests[] = {
		E(test_arp_request_for_us_answered),
		E(test_arp_request_unicast_answered),
		E(test_arp_request_unpadded_answered),
		E(test_arp_request_learns_requester),
		E(test_arp_reply_goes_to_sender_hardware_address),
		E(test_arp_request_for_other_host_ignored),
		E(test_arp_request_for_other_host_updates_known_neighbour),
		E(test_arp_reply_for_us_counted),
		E(test_arp_probe_for_our_address_answered),
		E(test_arp_probe_for_other_address_ignored),
		E(test_arp_conflict_counted),
		E(test_arp_bad_sender_mac_dropped),
		E(test_arp_wrong_format_dropped),
		E(test_arp_truncated_dropped),
		E(test_arp_not_for_our_mac_dropped),
		E(test_arp_pool_exhausted_no_reply),
		E(test_arp_resolve_broadcasts_request_and_parks),
		E(test_arp_shared_neighbour_used_without_asking),
		E(test_arp_shared_neighbour_too_old_asked),
		E(test_arp_resolve_reply_sends_parked_in_order),
		E(test_arp_resolve_request_from_target_sends_parked),
		E(test_arp_resolve_gratuitous_from_target_sends_parked),
		E(test_arp_resolve_retries_then_unreachable),
		E(test_arp_resolve_late_timer_call),
		E(test_arp_resolve_after_failure_starts_over),
		E(test_arp_unreachable_hook_may_send_again),
		E(test_arp_resolve_two_neighbours_independently),
		E(test_arp_queue_overflow_drops_oldest),
		E(test_arp_queue_overflow_then_failure_counts_all),
		G(test_arp_offlink_via_gateway),
		G(test_arp_offlink_gateway_unreachable),
		E(test_arp_offlink_without_gateway_unreachable),
		L(test_arp_l3_needs_no_arp),
		E(test_arp_stale_entry_refreshed_unicast),
		E(test_arp_stale_entry_forgotten_quietly),
		E(test_arp_table_full_of_unresolved_drops),
		E(test_arp_table_evicts_least_recently_used),
	};
#undef E
#undef G
#undef L

	return cmocka_run_group_tests(tests, NULL, NULL);
}
