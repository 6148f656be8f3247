/* TCP option and header parsing: what Linux's tcp_parse_options accepts,
 * stops at, and clamps, and the header checks of ust_tcp_parse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "csum.h"
#include "tcp.h"

static struct ust_tcp_opts parse(const uint8_t *p, unsigned len, bool syn)
{
	struct ust_tcp_opts o;

	assert_int_equal(ust_tcp_parse_opts(p, len, syn, &o), UST_OK);
	return o;
}

static void test_opts_linux_syn(void **state)
{
	/* mss 1460, sackOK, TS val 1 ecr 0, nop, wscale 7: Linux's SYN. */
	static const uint8_t p[] = { 2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7 };
	struct ust_tcp_opts o = parse(p, sizeof(p), true);

	assert_int_equal(o.mss, 1460);
	assert_true(o.sack_ok);
	assert_true(o.ts);
	assert_int_equal(o.ts_val, 1);
	assert_int_equal(o.ts_ecr, 0);
	assert_int_equal(o.wscale, 7);
}

static void test_opts_syn_only_options_ignored_without_syn(void **state)
{
	static const uint8_t p[] = { 2, 4, 0x05, 0xb4, 4, 2, 1, 3, 3, 7 };
	struct ust_tcp_opts o = parse(p, sizeof(p), false);

	assert_int_equal(o.mss, 0);
	assert_false(o.sack_ok);
	assert_int_equal(o.wscale, -1);
}

static void test_opts_wscale_clamped_to_14(void **state)
{
	static const uint8_t p15[] = { 3, 3, 15, 0 };
	static const uint8_t p255[] = { 3, 3, 255, 0 };

	assert_int_equal(parse(p15, sizeof(p15), true).wscale, 14);
	assert_int_equal(parse(p255, sizeof(p255), true).wscale, 14);
}

static void test_opts_length_zero_or_one_stops_parsing(void **state)
{
	/* An option whose length is below 2 ends the parsing; what came
	 * before stands, what follows is not read. */
	static const uint8_t zero[] = { 2, 4, 0x02, 0x00, 99, 0, 3, 3, 7, 0 };
	static const uint8_t one[] = { 99, 1, 2, 4, 0x05, 0xb4 };
	struct ust_tcp_opts o = parse(zero, sizeof(zero), true);

	assert_int_equal(o.mss, 512);
	assert_int_equal(o.wscale, -1);
	assert_int_equal(parse(one, sizeof(one), true).mss, 0);
}

static void test_opts_running_past_the_header(void **state)
{
	static const uint8_t p[] = { 1, 1, 8, 10, 0, 0, 0, 5 }; /* TS needs 10 */
	static const uint8_t lonely[] = { 1, 1, 1, 2 };        /* kind, no length */

	assert_false(parse(p, sizeof(p), false).ts);
	assert_int_equal(parse(lonely, sizeof(lonely), true).mss, 0);
}

static void test_opts_wrong_sizes_ignored(void **state)
{
	static const uint8_t mss3[] = { 2, 3, 5, 1, 3, 3, 2, 0 };
	static const uint8_t ts8[] = { 8, 8, 0, 0, 0, 1, 0, 0 };
	struct ust_tcp_opts o = parse(mss3, sizeof(mss3), true);

	assert_int_equal(o.mss, 0);
	assert_int_equal(o.wscale, 2); /* parsing went on after the bad size */
	assert_false(parse(ts8, sizeof(ts8), false).ts);
}

static void test_opts_eol_ends(void **state)
{
	static const uint8_t p[] = { 0, 2, 4, 0x05, 0xb4 };

	assert_int_equal(parse(p, sizeof(p), true).mss, 0);
}

static void test_opts_unknown_skipped(void **state)
{
	static const uint8_t p[] = { 30, 6, 1, 2, 3, 4, 2, 4, 0x04, 0x00 };

	assert_int_equal(parse(p, sizeof(p), true).mss, 1024);
}

static void test_opts_sack_blocks(void **state)
{
	uint8_t p[2 + 4 * 8 + 2] = { 1, 1, 5, 2 + 4 * 8 };
	struct ust_tcp_opts o;

	for (int i = 0; i < 4; i++) {
		p[4 + 8 * i + 3] = (uint8_t)(10 * i + 1);
		p[4 + 8 * i + 7] = (uint8_t)(10 * i + 5);
	}
	o = parse(p, 2 + 2 + 4 * 8, false);
	assert_int_equal(o.nsack, 4);
	assert_int_equal(o.sack[3].start, 31);
	assert_int_equal(o.sack[3].end, 35);
	/* A length that is not 2 + 8n is not SACK. */
	p[3] = 2 + 8 + 3;
	assert_int_equal(parse(p, 4 + 8 + 3, false).nsack, 0);
}

/* ---- the header ---- */

static size_t build_seg(uint8_t *buf, unsigned doff, size_t payload, struct ust_ipv4 *ip)
{
	size_t len = (size_t)doff * 4 + payload;
	uint32_t sum;

	memset(buf, 0, len);
	ust_put16(buf, 40000);
	ust_put16(buf + 2, 80);
	ust_put32(buf + 4, 1000);
	ust_put32(buf + 8, 2000);
	buf[12] = (uint8_t)(doff << 4);
	buf[13] = UST_TH_ACK | UST_TH_PSH;
	ust_put16(buf + 14, 512);
	memset(buf + doff * 4, 0x5a, payload);
	ip->src = 0x0a090001;
	ip->dst = 0x0a090002;
	ip->proto = UST_IPPROTO_TCP;
	ip->payload = buf;
	ip->payload_len = (uint16_t)len;
	sum = ust_csum_pseudo(ip->src, ip->dst, UST_IPPROTO_TCP, (uint16_t)len);
	ust_put16(buf + 16, ust_csum_fold(ust_csum_add(sum, buf, len)));
	return len;
}

static void test_parse_header_fields(void **state)
{
	uint8_t buf[100];
	struct ust_ipv4 ip;
	struct ust_tcp_seg seg;

	build_seg(buf, 5, 30, &ip);
	assert_int_equal(ust_tcp_parse(&ip, false, &seg), UST_OK);
	assert_int_equal(seg.sport, 40000);
	assert_int_equal(seg.dport, 80);
	assert_int_equal(seg.seq, 1000);
	assert_int_equal(seg.ack, 2000);
	assert_int_equal(seg.flags, UST_TH_ACK | UST_TH_PSH);
	assert_int_equal(seg.wnd, 512);
	assert_int_equal(seg.len, 30);
	assert_int_equal(ust_seg_len(&seg), 30);
}

/* ECN (RFC 3168): the IP header's ECN field comes with the segment, the
 * TOS byte's other bits do not, and ECE and CWR stay among the flags. */
static void test_parse_ecn(void **state)
{
	uint8_t buf[100];
	struct ust_ipv4 ip;
	struct ust_tcp_seg seg;

	build_seg(buf, 5, 30, &ip);
	for (unsigned tos = 0; tos < 256; tos += 5) {
		ip.tos = (uint8_t)tos;
		assert_int_equal(ust_tcp_parse(&ip, true, &seg), UST_OK);
		assert_int_equal(seg.ecn, tos & UST_ECN_MASK);
	}
	buf[13] |= UST_TH_ECE | UST_TH_CWR;
	assert_int_equal(ust_tcp_parse(&ip, true, &seg), UST_OK);
	assert_int_equal(seg.flags, UST_TH_ACK | UST_TH_PSH | UST_TH_ECE | UST_TH_CWR);
}

static void test_parse_bad_checksum(void **state)
{
	uint8_t buf[100];
	struct ust_ipv4 ip;
	struct ust_tcp_seg seg;

	build_seg(buf, 5, 30, &ip);
	buf[40] ^= 1;
	assert_int_equal(ust_tcp_parse(&ip, false, &seg), UST_DROP_TCP_CSUM);
	/* The kernel vouched for it (offload): not checked. */
	assert_int_equal(ust_tcp_parse(&ip, true, &seg), UST_OK);
}

static void test_parse_data_offset(void **state)
{
	uint8_t buf[100];
	struct ust_ipv4 ip;
	struct ust_tcp_seg seg;

	build_seg(buf, 4, 0, &ip);   /* below 5 */
	assert_int_equal(ust_tcp_parse(&ip, true, &seg), UST_DROP_TCP_SHORT);
	build_seg(buf, 15, 0, &ip);  /* 60 bytes of header, segment only 60 */
	ip.payload_len = 40;         /* … but only 40 arrived */
	assert_int_equal(ust_tcp_parse(&ip, true, &seg), UST_DROP_TCP_SHORT);
	ip.payload_len = 19;
	assert_int_equal(ust_tcp_parse(&ip, true, &seg), UST_DROP_TCP_SHORT);
}

static void test_seg_len_counts_syn_and_fin(void **state)
{
	struct ust_tcp_seg s = { .len = 10, .flags = UST_TH_SYN | UST_TH_FIN };

	assert_int_equal(ust_seg_len(&s), 12);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_opts_linux_syn),
		cmocka_unit_test(test_opts_syn_only_options_ignored_without_syn),
		cmocka_unit_test(test_opts_wscale_clamped_to_14),
		cmocka_unit_test(test_opts_length_zero_or_one_stops_parsing),
		cmocka_unit_test(test_opts_running_past_the_header),
		cmocka_unit_test(test_opts_wrong_sizes_ignored),
		cmocka_unit_test(test_opts_eol_ends),
		cmocka_unit_test(test_opts_unknown_skipped),
		cmocka_unit_test(test_opts_sack_blocks),
		cmocka_unit_test(test_parse_header_fields),
		cmocka_unit_test(test_parse_ecn),
		cmocka_unit_test(test_parse_bad_checksum),
		cmocka_unit_test(test_parse_data_offset),
		cmocka_unit_test(test_seg_len_counts_syn_and_fin),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
