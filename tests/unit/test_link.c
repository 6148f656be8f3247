/* The link's GSO runs (ust_link_gso_run, stack/link.c): which consecutive
 * frames may leave as one TCP/IPv4 or TCP/IPv6 GSO frame, and that the
 * kernel's segmentation of the frame it gets gives back the very segments
 * the stack built. The kernel's side is modelled here as Linux does it
 * (tcp_gso_segment, inet_gso_segment or ipv6_gso_segment, and the checksum
 * completion of CHECKSUM_PARTIAL): each segment gets the head's headers
 * with its own sequence number, IP length (and IPv4 checksum), PSH only on
 * the last, and a TCP checksum that starts from the head's field adjusted
 * by the segment's length. The stack builds its segments with the TCP
 * checksum partial (the pseudo-header's sum only, csum_l4); the segments
 * they are compared with carry the full checksum, computed here. Every
 * test runs twice: over IPv4, then over IPv6 (the group's setup). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "csum.h"
#include "link.h"

#define MSS 1448
#define THL 32 /* TCP header with the timestamps option */
#define HDRS_MAX (UST_ETH_HLEN + UST_IPV6_HLEN + THL)

/* The family of every frame the tests build (the group's setup). */
static bool v6;
static unsigned iphl; /* 20 or 40 */
#define HDRS (UST_ETH_HLEN + iphl + THL)

static const struct ust_ip6 src6 = { { 0x20, 0x01, 0x0d, 0xb8, [15] = 2 } };
static const struct ust_ip6 dst6 = { { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 } };

static const uint8_t dst_mac[6] = { 0x02, 0, 0, 0, 0, 1 }, src_mac[6] = { 0x02, 0, 0, 0, 0, 2 };

struct seg {
	uint32_t seq;
	unsigned payload;
	uint8_t flags;
	uint16_t sport;
};

static uint8_t pat(uint32_t seq) { return (uint8_t)(seq * 13 + 5); }

/* The IPv4 header of a segment with this TOS byte. */
static uint32_t ip4_header(uint8_t *ip, const struct seg *s, uint8_t tos)
{
	ip[0] = 0x45;
	ip[1] = tos;
	ust_put16(ip + 2, (uint16_t)(20 + THL + s->payload));
	ust_put16(ip + 4, (uint16_t)(s->seq & 0xffff)); /* an identification of its own */
	ust_put16(ip + 6, 0x4000);                      /* DF */
	ip[8] = 64;
	ip[9] = 6;
	ust_put32(ip + 12, 0x0a090002);
	ust_put32(ip + 16, 0x0a090001);
	ust_put16(ip + 10, ust_csum_fold(ust_csum_add(0, ip, 20)));
	return ust_csum_pseudo(0x0a090002, 0x0a090001, 6, (uint16_t)(THL + s->payload));
}

/* The IPv6 header of a segment with this traffic class and a flow label
 * (which GSO copies to every segment as it does the rest). */
static uint32_t ip6_header(uint8_t *ip, const struct seg *s, uint8_t tclass)
{
	ust_put32(ip, 6u << 28 | (uint32_t)tclass << 20 | 0x5a5a5);
	ust_put16(ip + 4, (uint16_t)(THL + s->payload));
	ip[6] = 6;
	ip[7] = 64;
	memcpy(ip + 8, src6.b, 16);
	memcpy(ip + 24, dst6.b, 16);
	return ust_csum_pseudo6(&src6, &dst6, 6, THL + s->payload);
}

/* One frame as the stack builds it for the link, with this IPv4 TOS byte
 * or IPv6 traffic class (its low bits are the ECN field), its TCP checksum
 * partial (tcp_output with tx_csum_partial), or (partial false) as it
 * leaves the kernel, every checksum complete. */
static struct ust_pkt *frame(const struct seg *s, uint8_t tos, bool partial)
{
	struct ust_pkt *p = calloc(1, sizeof(*p) + HDRS_MAX + MSS);
	uint8_t *f, *ip, *th;
	uint32_t sum;

	assert_non_null(p);
	f = p->data = p->buf;
	p->len = HDRS + s->payload;
	memcpy(f, dst_mac, 6);
	memcpy(f + 6, src_mac, 6);
	ust_put16(f + 12, v6 ? UST_ETHERTYPE_IPV6 : UST_ETHERTYPE_IPV4);
	ip = f + UST_ETH_HLEN;
	sum = v6 ? ip6_header(ip, s, tos) : ip4_header(ip, s, tos);
	th = ip + iphl;
	ust_put16(th, s->sport);
	ust_put16(th + 2, 5201);
	ust_put32(th + 4, s->seq);
	ust_put32(th + 8, 777);
	th[12] = (THL / 4) << 4;
	th[13] = s->flags;
	ust_put16(th + 14, 502);
	th[20] = 1;
	th[21] = 1;
	th[22] = 8; /* timestamps */
	th[23] = 10;
	ust_put32(th + 24, 123456);
	ust_put32(th + 28, 654321);
	for (unsigned i = 0; i < s->payload; i++)
		th[THL + i] = pat(s->seq + i);
	if (partial) {
		ust_put16(th + 16, (uint16_t)~ust_csum_fold(sum));
		p->csum_l4 = th;
	} else {
		ust_put16(th + 16, ust_csum_fold(ust_csum_add(sum, th, THL + s->payload)));
	}
	return p;
}

static void frames(const struct seg *s, const uint8_t *tos, unsigned n, struct ust_pkt **pkts,
		   struct ust_pkt **orig)
{
	for (unsigned i = 0; i < n; i++) {
		pkts[i] = frame(&s[i], tos ? tos[i] : 0, true);
		orig[i] = frame(&s[i], tos ? tos[i] : 0, false);
	}
}

static void free_frames(struct ust_pkt **a, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(a[i]);
}

/* One's complement: a + b. */
static uint16_t oc_add(uint16_t a, uint16_t b)
{
	uint32_t s = (uint32_t)a + b;
	return (uint16_t)((s & 0xffff) + (s >> 16));
}

/* Segment k of the GSO frame made of the run's head and the payloads
 * after it, as the kernel cuts it: compared with the frame the stack
 * built, byte for byte but for the IPv4 identification (GSO numbers the
 * segments from the head's). */
static void assert_segment(struct ust_pkt *const *run, unsigned n, const struct virtio_net_hdr *h, unsigned k,
			   const struct ust_pkt *want)
{
	uint8_t seg[HDRS_MAX + MSS], *ip = seg + UST_ETH_HLEN, *th = ip + iphl;
	const uint8_t *head = run[0]->data;
	uint32_t seq = ust_get32(head + UST_ETH_HLEN + iphl + 4), sum;
	unsigned len = want->len - h->hdr_len, total = 0;
	uint16_t field;

	assert_int_equal(h->gso_type, v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4);
	assert_int_equal(h->flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
	assert_int_equal(h->csum_start, UST_ETH_HLEN + iphl);
	assert_int_equal(h->csum_offset, 16);
	assert_int_equal(h->hdr_len, HDRS);
	for (unsigned i = 0; i < n; i++)
		total += run[i]->len - h->hdr_len;
	memcpy(seg, head, h->hdr_len);
	for (unsigned i = 0; i < k; i++)
		seq += run[i]->len - h->hdr_len;
	memcpy(seg + h->hdr_len, run[k]->data + h->hdr_len, len);
	if (v6) {
		/* ipv6_gso_segment: the payload length of each datagram. */
		ust_put16(ip + 4, (uint16_t)(THL + len));
	} else {
		/* inet_gso_segment: the length and checksum of each datagram. */
		ust_put16(ip + 2, (uint16_t)(20 + THL + len));
		memcpy(ip + 4, want->data + UST_ETH_HLEN + 4, 2);
		ust_put16(ip + 10, 0);
		ust_put16(ip + 10, ust_csum_fold(ust_csum_add(0, ip, 20)));
	}
	/* tcp_gso_segment: the sequence number, PSH (and FIN) only on the
	 * last, and the pseudo-header's sum moved from the whole length to
	 * the segment's. */
	ust_put32(th + 4, seq);
	if (k + 1 < n)
		th[13] &= (uint8_t)~0x09;
	field = oc_add(oc_add(ust_get16(th + 16), (uint16_t)~(uint16_t)(THL + total)), (uint16_t)(THL + len));
	ust_put16(th + 16, field);
	/* CHECKSUM_PARTIAL completed: the sum from csum_start, the field
	 * included, folded and complemented. */
	sum = ust_csum_add(0, th, THL + len);
	ust_put16(th + 16, ust_csum_fold(sum));
	assert_int_equal(want->len, h->hdr_len + len);
	assert_memory_equal(seg, want->data, want->len);
}

/* Frames for s[0..n) with TOS bytes tos[0..n) (NULL: all 0), a run from
 * the first of them at most max_len long: it has want frames, and then
 * cuts back into those segments (want > 1) or leaves the first frame as
 * it was (want == 1). ARP makes the first frame an ARP one. */
static void assert_run_tos(const struct seg *s, const uint8_t *tos, unsigned n, unsigned max_len,
			   unsigned want, bool arp)
{
	struct ust_pkt *p[8], *o[8];
	struct virtio_net_hdr h;

	assert_true(n <= 8);
	frames(s, tos, n, p, o);
	if (arp) {
		ust_put16(p[0]->data + 12, 0x0806);
		ust_put16(o[0]->data + 12, 0x0806);
	}
	assert_int_equal(ust_link_gso_run(p, n, max_len, &h), want);
	if (want > 1) {
		assert_int_equal(h.gso_size, s[0].payload);
		if (!v6)
			assert_int_equal(ust_csum_fold(ust_csum_add(0, p[0]->data + UST_ETH_HLEN, 20)), 0);
		for (unsigned k = 0; k < want; k++)
			assert_segment(p, want, &h, k, o[k]);
	} else {
		/* Left alone, and completed in software (ust_pkt_csum_finish)
		 * it is the frame with every checksum complete. */
		ust_pkt_csum_finish(p[0]);
		assert_null(p[0]->csum_l4);
		assert_memory_equal(p[0]->data, o[0]->data, o[0]->len);
	}
	free_frames(p, n);
	free_frames(o, n);
}

static void assert_run(const struct seg *s, unsigned n, unsigned max_len, unsigned want, bool arp)
{
	assert_run_tos(s, NULL, n, max_len, want, arp);
}

/* A flight of full segments and a short pushed one: one run, cut back
 * into exactly those segments. */
static void test_gso_run_cuts_back_into_the_segments(void **state)
{
	struct seg s[5] = {
		{ 1000, MSS, 0x10, 40000 }, { 1000 + MSS, MSS, 0x10, 40000 }, { 1000 + 2 * MSS, MSS, 0x10, 40000 },
		{ 1000 + 3 * MSS, MSS, 0x10, 40000 }, { 1000 + 4 * MSS, 500, 0x18, 40000 },
	};

	assert_run(s, 5, UST_IPV4_MAXLEN, 5, false);
}

/* Sequence numbers that wrap past 2^32 inside the run. */
static void test_gso_run_across_sequence_wrap(void **state)
{
	uint32_t base = 0xffffffffu - MSS;
	struct seg s[3] = { { base, MSS, 0x10, 40000 }, { base + MSS, MSS, 0x10, 40000 },
			    { base + 2 * MSS, MSS, 0x10, 40000 } };

	assert_run(s, 3, UST_IPV4_MAXLEN, 3, false);
}

/* Where a run ends: PSH on a segment (it is the run's last), a segment
 * shorter than the first (the last), a gap in sequence, another
 * connection, and the size limit. */
static void test_gso_run_ends(void **state)
{
	struct seg pushed[3] = { { 1, MSS, 0x10, 1 }, { 1 + MSS, MSS, 0x18, 1 }, { 1 + 2 * MSS, MSS, 0x10, 1 } };
	struct seg shorter[3] = { { 1, MSS, 0x10, 1 }, { 1 + MSS, 100, 0x10, 1 }, { 1 + MSS + 100, MSS, 0x10, 1 } };
	struct seg gap[3] = { { 1, MSS, 0x10, 1 }, { 1 + MSS, MSS, 0x10, 1 }, { 1 + 3 * MSS, MSS, 0x10, 1 } };
	struct seg other[3] = { { 1, MSS, 0x10, 1 }, { 1 + MSS, MSS, 0x10, 1 }, { 1 + 2 * MSS, MSS, 0x10, 2 } };
	struct seg many[4] = { { 1, MSS, 0x10, 1 }, { 1 + MSS, MSS, 0x10, 1 }, { 1 + 2 * MSS, MSS, 0x10, 1 },
			       { 1 + 3 * MSS, MSS, 0x10, 1 } };

	assert_run(pushed, 3, UST_IPV4_MAXLEN, 2, false);
	assert_run(pushed + 2, 1, UST_IPV4_MAXLEN, 1, false); /* the frame after a run starts its own */
	assert_run(shorter, 3, UST_IPV4_MAXLEN, 2, false);
	assert_run(gap, 3, UST_IPV4_MAXLEN, 2, false);
	assert_run(other, 3, UST_IPV4_MAXLEN, 2, false);
	assert_run(many, 4, iphl + THL + 3 * MSS, 3, false); /* room for three segments, not four */
}

/* What never starts a run, and is left as it was: a pushed head, a head
 * with no data (a pure ACK), a SYN, an ARP frame, a lone frame. */
static void test_gso_run_leaves_others_alone(void **state)
{
	struct seg pushed_head[2] = { { 1, MSS, 0x18, 1 }, { 1 + MSS, MSS, 0x10, 1 } };
	struct seg ack[2] = { { 1, 0, 0x10, 1 }, { 1, 0, 0x10, 1 } };
	struct seg syn[2] = { { 1, MSS, 0x12, 1 }, { 1 + MSS, MSS, 0x10, 1 } };
	struct seg full[2] = { { 1, MSS, 0x10, 1 }, { 1 + MSS, MSS, 0x10, 1 } };

	assert_run(pushed_head, 2, UST_IPV4_MAXLEN, 1, false);
	assert_run(ack, 2, UST_IPV4_MAXLEN, 1, false);
	assert_run(syn, 2, UST_IPV4_MAXLEN, 1, false);
	assert_run(full, 1, UST_IPV4_MAXLEN, 1, false);
	assert_run(full, 2, UST_IPV4_MAXLEN, 1, true);
}

/* ECN (RFC 3168): data marked ECT(0) runs like any other, and every
 * segment keeps the mark (GSO copies the head's TOS); a segment with
 * another ECN field ends the run; CWR or ECE neither starts nor joins
 * one, since GSO would copy CWR onto every segment where only the first
 * may carry it. */
static void test_gso_run_keeps_ecn(void **state)
{
	const uint8_t ect0[3] = { 2, 2, 2 }, mixed[3] = { 2, 2, 0 };
	struct seg data[3] = { { 1, MSS, 0x10, 1 }, { 1 + MSS, MSS, 0x10, 1 }, { 1 + 2 * MSS, MSS, 0x10, 1 } };
	struct seg cwr[2] = { { 1, MSS, 0x90, 1 }, { 1 + MSS, MSS, 0x10, 1 } };
	struct seg ece[2] = { { 1, MSS, 0x10, 1 }, { 1 + MSS, MSS, 0x50, 1 } };

	assert_run_tos(data, ect0, 3, UST_IPV4_MAXLEN, 3, false);
	assert_run_tos(data, mixed, 3, UST_IPV4_MAXLEN, 2, false);
	assert_run_tos(cwr, ect0, 2, UST_IPV4_MAXLEN, 1, false);
	assert_run_tos(ece, ect0, 2, UST_IPV4_MAXLEN, 1, false);
}

/* A frame of the other family ends a run, even with the next sequence
 * number (a dual-stack socket's connections are of one family each, but
 * two of them may be flushed together). */
static void test_gso_run_one_family(void **state)
{
	struct seg s[3] = { { 1, MSS, 0x10, 1 }, { 1 + MSS, MSS, 0x10, 1 }, { 1 + 2 * MSS, MSS, 0x10, 1 } };
	struct ust_pkt *p[3];
	struct virtio_net_hdr h;

	p[0] = frame(&s[0], 0, true);
	p[1] = frame(&s[1], 0, true);
	v6 = !v6;
	iphl = v6 ? UST_IPV6_HLEN : 20;
	p[2] = frame(&s[2], 0, true);
	v6 = !v6;
	iphl = v6 ? UST_IPV6_HLEN : 20;
	assert_int_equal(ust_link_gso_run(p, 3, UST_IPV4_MAXLEN, &h), 2);
	free_frames(p, 3);
}

/* IPv4 with options, or IPv6 with an extension header before TCP (emit
 * sends neither), is left alone. */
static void test_gso_run_no_options(void **state)
{
	struct seg s[2] = { { 1, MSS, 0x10, 1 }, { 1 + MSS, MSS, 0x10, 1 } };
	struct ust_pkt *p[2], *o[2];
	struct virtio_net_hdr h;

	frames(s, NULL, 2, p, o);
	if (v6)
		p[0]->data[UST_ETH_HLEN + 6] = 0; /* next header: hop-by-hop options */
	else
		p[0]->data[UST_ETH_HLEN] = 0x46;  /* a header of 24 bytes */
	assert_int_equal(ust_link_gso_run(p, 2, UST_IPV4_MAXLEN, &h), 1);
	free_frames(p, 2);
	free_frames(o, 2);
}

static int over_ipv4(void **state)
{
	v6 = false;
	iphl = 20;
	return 0;
}

static int over_ipv6(void **state)
{
	v6 = true;
	iphl = UST_IPV6_HLEN;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gso_run_cuts_back_into_the_segments),
		cmocka_unit_test(test_gso_run_across_sequence_wrap),
		cmocka_unit_test(test_gso_run_ends),
		cmocka_unit_test(test_gso_run_leaves_others_alone),
		cmocka_unit_test(test_gso_run_keeps_ecn),
		cmocka_unit_test(test_gso_run_one_family),
		cmocka_unit_test(test_gso_run_no_options),
	};

	return cmocka_run_group_tests_name("gso over IPv4", tests, over_ipv4, NULL) |
	       cmocka_run_group_tests_name("gso over IPv6", tests, over_ipv6, NULL);
}
