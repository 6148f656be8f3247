/* Test harness for the network layer (included by test_arp.c and
 * test_stack.c). */
#ifndef USTCP_TEST_STACK_HARNESS_H
#define USTCP_TEST_STACK_HARNESS_H

#include "csum.h"
#include "stack.h"

/* A stack on a virtual clock whose output is captured frame by frame,
 * shared by the network-layer suites. Functions a suite does not use are
 * marked unused. */

#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))
#define OUR_IP IP4(10, 9, 0, 2)
#define PEER_IP IP4(10, 9, 0, 1)
#define PEER2_IP IP4(10, 9, 0, 3)
#define GW_IP IP4(10, 9, 0, 254)
#define FAR_IP IP4(192, 0, 2, 1)
#define BCAST_IP IP4(10, 9, 0, 255)
#define MASK24 0xffffff00u

static const uint8_t our_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x02 };
static const uint8_t peer_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
static const uint8_t peer2_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x03 };
static const uint8_t gw_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0xfe };
static const uint8_t zero_mac[6];

#define CAP_MAX 512
#define CAP_LEN 2048

struct captured {
	size_t len;
	uint8_t data[CAP_LEN];
};

struct harness {
	struct ust_stack st;
	ust_time now;
	struct captured out[CAP_MAX];
	unsigned n_out;        /* frames the output function was given */
	unsigned seen;         /* frames the test has looked at */
	unsigned output_calls;
	unsigned take;         /* how many of a batch the "link" takes */
	/* what the upper layer heard */
	unsigned unreach_calls;
	uint32_t unreach_dst;
	int unreach_err;
	bool resend_on_unreach;
	unsigned echo_calls;
	uint32_t echo_from, echo_rest;
	uint8_t echo_data[64];
	size_t echo_len;
	unsigned icmp_err_calls;
	struct ust_icmp_error icmp_err;
	unsigned ip_calls;
	struct ust_ipv4 ip_last;
	uint8_t ip_payload[64];
	unsigned ip_rxflags;
};

static unsigned capture_output(void *ctx, struct ust_pkt *const *pkts, unsigned n)
{
	struct harness *h = ctx;
	unsigned take = n < h->take ? n : h->take;

	h->output_calls++;
	for (unsigned i = 0; i < take; i++) {
		assert_true(h->n_out < CAP_MAX);
		assert_true(pkts[i]->len <= CAP_LEN);
		h->out[h->n_out].len = pkts[i]->len;
		memcpy(h->out[h->n_out].data, pkts[i]->data, pkts[i]->len);
		h->n_out++;
	}
	return take;
}

static int send_marker(struct harness *h, uint32_t dst, uint32_t marker);

static void on_unreachable(void *ctx, uint32_t dst, int err, ust_time now)
{
	struct harness *h = ctx;

	h->unreach_calls++;
	h->unreach_dst = dst;
	h->unreach_err = err;
	if (h->resend_on_unreach) {
		h->resend_on_unreach = false;
		assert_int_equal(send_marker(h, dst, 999), 0);
	}
}

static void on_echo_reply(void *ctx, uint32_t from, uint32_t rest, const uint8_t *data, size_t len,
			  ust_time now)
{
	struct harness *h = ctx;

	h->echo_calls++;
	h->echo_from = from;
	h->echo_rest = rest;
	h->echo_len = len;
	memcpy(h->echo_data, data, len < sizeof(h->echo_data) ? len : sizeof(h->echo_data));
}

static void on_icmp_error(void *ctx, const struct ust_icmp_error *err, ust_time now)
{
	struct harness *h = ctx;

	h->icmp_err_calls++;
	h->icmp_err = *err;
}

__attribute__((unused)) static void on_ip_input(void *ctx, const struct ust_ipv4 *ip, unsigned rxflags, ust_time now)
{
	struct harness *h = ctx;

	h->ip_calls++;
	h->ip_last = *ip;
	h->ip_rxflags = rxflags;
	memcpy(h->ip_payload, ip->payload,
	       ip->payload_len < sizeof(h->ip_payload) ? ip->payload_len : sizeof(h->ip_payload));
}

static struct harness *harness_new(bool l3, uint32_t mask, uint32_t gw, unsigned pool)
{
	struct harness *h = calloc(1, sizeof(*h));
	struct ust_netif nif = { .l3 = l3, .addr = OUR_IP, .mask = mask, .gw = gw, .mtu = 1500 };

	assert_non_null(h);
	memcpy(nif.mac, our_mac, 6);
	assert_int_equal(ust_stack_init(&h->st, &nif, pool, capture_output, h), 0);
	h->take = UINT_MAX;
	h->now = UST_SEC(1000);
	h->st.upper.ctx = h;
	h->st.upper.unreachable = on_unreachable;
	h->st.upper.echo_reply = on_echo_reply;
	h->st.upper.icmp_error = on_icmp_error;
	return h;
}

static int setup_eth(void **state)
{
	*state = harness_new(false, MASK24, 0, 256);
	return 0;
}

__attribute__((unused)) static int setup_eth_gw(void **state)
{
	*state = harness_new(false, MASK24, GW_IP, 256);
	return 0;
}

__attribute__((unused)) static int setup_l3(void **state)
{
	*state = harness_new(true, MASK24, 0, 256);
	return 0;
}

/* Every buffer must be back in the pool once the transmit queue is flushed
 * and the neighbour queues dropped: nothing leaked, nothing freed twice. */
static int teardown_check_pool(void **state)
{
	struct harness *h = *state;

	ust_stack_flush(&h->st);
	ust_arp_flush(&h->st);
	assert_int_equal(h->st.txq_len, 0);
	assert_int_equal(h->st.pool.avail, h->st.pool.size);
	ust_stack_destroy(&h->st);
	free(h);
	return 0;
}

/* -- input -- */

static void rx(struct harness *h, const uint8_t *f, size_t len)
{
	ust_stack_input(&h->st, f, len, 0, h->now);
	ust_stack_flush(&h->st);
}

static size_t arp_frame(uint8_t *f, uint16_t op, const uint8_t *eth_dst, const uint8_t *sha,
			uint32_t spa, const uint8_t *tha, uint32_t tpa)
{
	struct ust_arp a = { .op = op, .spa = spa, .tpa = tpa };

	memset(f, 0, 60);
	memcpy(a.sha, sha, 6);
	memcpy(a.tha, tha, 6);
	ust_eth_build(f, eth_dst, sha, UST_ETHERTYPE_ARP);
	ust_arp_build(f + UST_ETH_HLEN, &a);
	return 60;
}

static void rx_arp(struct harness *h, uint16_t op, const uint8_t *eth_dst, const uint8_t *sha,
		   uint32_t spa, const uint8_t *tha, uint32_t tpa)
{
	uint8_t f[60];

	rx(h, f, arp_frame(f, op, eth_dst, sha, spa, tha, tpa));
}

/* The neighbour at ip answers our request. */
__attribute__((unused)) static void rx_arp_reply(struct harness *h, const uint8_t *mac, uint32_t ip)
{
	rx_arp(h, UST_ARP_REPLY, our_mac, mac, ip, our_mac, OUR_IP);
}

/* The neighbour at ip asks for our address (and so becomes known). */
__attribute__((unused)) static void rx_arp_request(struct harness *h, const uint8_t *mac, uint32_t ip)
{
	rx_arp(h, UST_ARP_REQUEST, ust_eth_broadcast, mac, ip, zero_mac, OUR_IP);
}

/* An IPv4 datagram (with an Ethernet header unless the stack is L3) into f;
 * returns the frame length. */
static size_t ip_frame(struct harness *h, uint8_t *f, const uint8_t *eth_src, const uint8_t *eth_dst,
		       uint32_t src, uint32_t dst, uint8_t proto, const uint8_t *payload, size_t len)
{
	size_t l2 = h->st.nif.l3 ? 0 : UST_ETH_HLEN;

	if (l2)
		ust_eth_build(f, eth_dst, eth_src, UST_ETHERTYPE_IPV4);
	ust_ipv4_build(f + l2, src, dst, proto, (uint16_t)(UST_IPV4_HLEN + len), 0x4242, 64, 0);
	memcpy(f + l2 + UST_IPV4_HLEN, payload, len);
	return l2 + UST_IPV4_HLEN + len;
}

static void rx_ip(struct harness *h, uint32_t src, uint32_t dst, uint8_t proto,
		  const uint8_t *payload, size_t len)
{
	uint8_t f[2048];

	assert_true(len + 34 <= sizeof(f));
	rx(h, f, ip_frame(h, f, peer_mac, our_mac, src, dst, proto, payload, len));
}

/* An ICMP message of type with data into m; returns its length. */
static size_t icmp_msg(uint8_t *m, uint8_t type, uint32_t rest, const uint8_t *data, size_t len)
{
	if (len)
		memcpy(m + UST_ICMP_HLEN, data, len);
	ust_icmp_build(m, type, 0, rest, len);
	return UST_ICMP_HLEN + len;
}

__attribute__((unused)) static void rx_echo_request(struct harness *h, uint32_t src, uint16_t id, uint16_t seq,
			    const uint8_t *data, size_t len)
{
	uint8_t m[2048];

	rx_ip(h, src, OUR_IP, UST_IPPROTO_ICMP, m,
	      icmp_msg(m, UST_ICMP_ECHO_REQUEST, (uint32_t)id << 16 | seq, data, len));
}

/* Takes every free buffer out of the pool into held (room for the pool's
 * size); returns how many. */
__attribute__((unused)) static unsigned hold_all(struct harness *h, struct ust_pkt **held)
{
	unsigned n = 0;

	while (n < h->st.pool.size && (held[n] = ust_pkt_alloc(&h->st.pool)) != NULL)
		n++;
	assert_int_equal(h->st.pool.avail, 0);
	return n;
}

__attribute__((unused)) static void release_all(struct harness *h, struct ust_pkt **held, unsigned n)
{
	while (n)
		ust_pkt_free(&h->st.pool, held[--n]);
}

/* -- output -- */

/* An 8-byte UDP-ish datagram whose first word is marker. */
static int send_marker(struct harness *h, uint32_t dst, uint32_t marker)
{
	struct ust_pkt *p = ust_pkt_alloc(&h->st.pool);

	assert_non_null(p);
	ust_put32(p->data, marker);
	ust_put32(p->data + 4, ~marker);
	p->len = 8;
	return ust_ip_output(&h->st, p, dst, UST_IPPROTO_UDP, 0, h->now);
}

__attribute__((unused)) static int send_marker_flush(struct harness *h, uint32_t dst, uint32_t marker)
{
	int rc = send_marker(h, dst, marker);

	ust_stack_flush(&h->st);
	return rc;
}

/* Moves the clock by dt, runs the timers and flushes; returns when the next
 * timer is due. */
static ust_time advance(struct harness *h, ust_time dt)
{
	ust_time next;

	h->now += dt;
	next = ust_stack_timers(&h->st, h->now);
	ust_stack_flush(&h->st);
	return next;
}

/* The same, returning how long until the next timer (UST_TIME_NEVER if
 * none). */
__attribute__((unused)) static ust_time advance_rel(struct harness *h, ust_time dt)
{
	ust_time next = advance(h, dt);

	return next == UST_TIME_NEVER ? next : next - h->now;
}

static void expect_nothing(struct harness *h)
{
	if (h->seen != h->n_out)
		fail_msg("%u unexpected frame(s) sent", h->n_out - h->seen);
}

static const struct captured *next_frame(struct harness *h)
{
	if (h->seen == h->n_out)
		fail_msg("expected a frame, none was sent");
	return &h->out[h->seen++];
}

/* The next frame is an ARP packet of op, to eth_dst, for tpa; returns it. */
__attribute__((unused)) static struct ust_arp expect_arp(struct harness *h, uint16_t op, const uint8_t *eth_dst, uint32_t tpa)
{
	const struct captured *c = next_frame(h);
	struct ust_eth eth;
	struct ust_arp a;

	assert_int_equal(c->len, 60); /* the Ethernet minimum, padded */
	for (size_t i = UST_ETH_HLEN + UST_ARP_LEN; i < 60; i++)
		assert_int_equal(c->data[i], 0);
	assert_int_equal(ust_eth_parse(c->data, c->len, &eth), UST_OK);
	assert_int_equal(eth.type, UST_ETHERTYPE_ARP);
	assert_memory_equal(eth.dst, eth_dst, 6);
	assert_memory_equal(eth.src, our_mac, 6);
	assert_int_equal(ust_arp_parse(c->data + UST_ETH_HLEN, c->len - UST_ETH_HLEN, &a), UST_OK);
	assert_int_equal(a.op, op);
	assert_memory_equal(a.sha, our_mac, 6);
	assert_int_equal(a.spa, OUR_IP);
	assert_int_equal(a.tpa, tpa);
	return a;
}

/* The next frame is an IPv4 datagram from us to dst of proto (to eth_dst
 * unless the stack is L3), exactly as long as its total length, with a right
 * header checksum, DF and TTL 64. Returns it; payload points into h->out. */
static struct ust_ipv4 expect_ip(struct harness *h, const uint8_t *eth_dst, uint32_t dst, uint8_t proto)
{
	const struct captured *c = next_frame(h);
	const uint8_t *p = c->data;
	size_t len = c->len;
	struct ust_ipv4 ip;

	if (!h->st.nif.l3) {
		struct ust_eth eth;
		assert_int_equal(ust_eth_parse(p, len, &eth), UST_OK);
		assert_int_equal(eth.type, UST_ETHERTYPE_IPV4);
		assert_memory_equal(eth.dst, eth_dst, 6);
		assert_memory_equal(eth.src, our_mac, 6);
		p += UST_ETH_HLEN;
		len -= UST_ETH_HLEN;
	}
	assert_int_equal(p[0], 0x45);
	assert_int_equal(ust_ipv4_parse(p, len, &ip), UST_OK);
	assert_int_equal(ip.total_len, len);
	assert_true(ip.total_len <= h->st.nif.mtu);
	assert_int_equal(ip.src, OUR_IP);
	assert_int_equal(ip.dst, dst);
	assert_int_equal(ip.proto, proto);
	assert_int_equal(ip.ttl, 64);
	assert_int_equal(ip.frag, UST_IP_DF);
	return ip;
}

/* The next frame carries send_marker(marker) to dst. */
__attribute__((unused)) static void expect_marker(struct harness *h, const uint8_t *eth_dst, uint32_t dst, uint32_t marker)
{
	struct ust_ipv4 ip = expect_ip(h, eth_dst, dst, UST_IPPROTO_UDP);

	assert_int_equal(ip.payload_len, 8);
	assert_int_equal(ust_get32(ip.payload), marker);
	assert_int_equal(ust_get32(ip.payload + 4), ~marker);
}

/* The next frame is an ICMP message of type to dst; returns it parsed
 * (checksum verified). */
__attribute__((unused)) static struct ust_icmp expect_icmp(struct harness *h, const uint8_t *eth_dst, uint32_t dst, uint8_t type)
{
	struct ust_ipv4 ip = expect_ip(h, eth_dst, dst, UST_IPPROTO_ICMP);
	struct ust_icmp icmp;

	assert_int_equal(ust_icmp_parse(ip.payload, ip.payload_len, &icmp), UST_OK);
	assert_int_equal(icmp.type, type);
	assert_int_equal(icmp.code, 0);
	return icmp;
}

#endif
