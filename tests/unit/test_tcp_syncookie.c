/* SYN cookies (stack/tcp_syncookie.c): what the ISN keeps (the MSS, rounded
 * down to Linux's table, IPv4's or IPv6's), for how long (the minute it was made and the
 * next), that it belongs to one four-tuple and one peer ISN, and the
 * options the TSval's low bits carry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "tcp_impl.h"

static struct ust_tcp tcp = { .cfg.isn_key = { 0x0123456789abcdefull, 0xfedcba9876543210ull } };

static struct ust_tcp_seg syn_from(uint16_t sport, uint32_t seq, uint16_t mss)
{
	struct ust_tcp_seg s;

	memset(&s, 0, sizeof(s));
	s.src = ust_ip6_from_v4(0x0a090001);
	s.dst = ust_ip6_from_v4(0x0a090002);
	s.sport = sport;
	s.dport = 8080;
	s.seq = seq;
	s.flags = UST_TH_SYN;
	s.opt.mss = mss;
	s.opt.wscale = -1;
	return s;
}

/* The same from fd00:10:9:ff::1 to fd00:10:9:0:1::2. */
static struct ust_tcp_seg syn6_from(uint16_t sport, uint32_t seq, uint16_t mss)
{
	static const struct ust_ip6 src = { { 0xfd, 0, 0, 0x10, 0, 0x09, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 1 } };
	static const struct ust_ip6 dst = { { 0xfd, 0, 0, 0x10, 0, 0x09, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2 } };
	struct ust_tcp_seg s = syn_from(sport, seq, mss);

	s.src = src;
	s.dst = dst;
	return s;
}

/* The peer's ACK of the cookie SYN-ACK answering syn. */
static struct ust_tcp_seg ack_of(const struct ust_tcp_seg *syn, uint32_t cookie)
{
	struct ust_tcp_seg a = *syn;

	a.flags = UST_TH_ACK;
	a.seq = syn->seq + 1;
	a.ack = cookie + 1;
	return a;
}

struct mss_case {
	uint16_t offered, kept;
};

/* Each case's SYN (IPv6 with six) gets a cookie that keeps case.kept, and
 * the cookie's ACK a second later gives it back. */
static void check_kept_mss(const struct mss_case *cases, unsigned n, bool six)
{
	for (unsigned i = 0; i < n; i++) {
		struct ust_tcp_seg syn = six ? syn6_from((uint16_t)(40000 + i), 1000000u * i, cases[i].offered)
					     : syn_from((uint16_t)(40000 + i), 1000000u * i, cases[i].offered);
		uint16_t mss;
		uint32_t cookie = tcp_cookie_isn(&tcp, &syn, UST_SEC(5), &mss);
		struct ust_tcp_seg ack = ack_of(&syn, cookie);

		assert_int_equal(mss, cases[i].kept);
		assert_int_equal(tcp_cookie_check(&tcp, &ack, UST_SEC(6)), cases[i].kept);
	}
}

static void test_cookie_keeps_mss_from_linux_table(void **state)
{
	static const struct mss_case cases[] = {
		{ 0, 536 }, { 536, 536 }, { 1000, 536 }, { 1300, 1300 }, { 1400, 1300 },
		{ 1440, 1440 }, { 1459, 1440 }, { 1460, 1460 }, { 9000, 1460 },
	};

	check_kept_mss(cases, UST_ARRAY_SIZE(cases), false);
}

/* Over IPv6, net/ipv6/syncookies.c's table: the MTUs 1280, 1480, 1500
 * and 9000 less 60. A SYN without MSS (536 assumed) keeps the least. */
static void test_cookie6_keeps_mss_from_linux_ipv6_table(void **state)
{
	static const struct mss_case cases[] = {
		{ 0, 1220 }, { 536, 1220 }, { 1220, 1220 }, { 1419, 1220 }, { 1420, 1420 },
		{ 1440, 1440 }, { 1460, 1440 }, { 8939, 1440 }, { 8940, 8940 }, { 65535, 8940 },
	};

	check_kept_mss(cases, UST_ARRAY_SIZE(cases), true);
}

/* The hash covers all 128 bits of both IPv6 addresses: a cookie made for
 * one source is no good from any other, whichever byte differs (the high
 * half too, which an IPv4-sized hash would miss), nor to another of our
 * addresses. */
static void test_cookie6_bound_to_whole_addresses(void **state)
{
	struct ust_tcp_seg syn = syn6_from(40000, 4242, 1440);
	uint16_t mss;
	uint32_t cookie = tcp_cookie_isn(&tcp, &syn, UST_SEC(1), &mss);
	struct ust_tcp_seg ack = ack_of(&syn, cookie);

	assert_int_equal(tcp_cookie_check(&tcp, &ack, UST_SEC(1)), 1440);
	for (unsigned b = 0; b < 16; b++) {
		ack = ack_of(&syn, cookie);
		ack.src.b[b] ^= 0x40;
		assert_int_equal(tcp_cookie_check(&tcp, &ack, UST_SEC(1)), 0);
		ack = ack_of(&syn, cookie);
		ack.dst.b[b] ^= 0x40;
		assert_int_equal(tcp_cookie_check(&tcp, &ack, UST_SEC(1)), 0);
	}
	/* Nor from the IPv4 peer whose mapped address has the same low bits. */
	ack = ack_of(&syn, cookie);
	ack.src = ust_ip6_from_v4(0x00000001);
	assert_int_equal(tcp_cookie_check(&tcp, &ack, UST_SEC(1)), 0);
}

static void test_cookie_bound_to_tuple_and_sequence(void **state)
{
	struct ust_tcp_seg syn = syn_from(40000, 12345, 1460);
	uint16_t mss;
	uint32_t cookie = tcp_cookie_isn(&tcp, &syn, UST_SEC(1), &mss);
	struct ust_tcp_seg ack = ack_of(&syn, cookie);

	ack.sport = 40001;
	assert_int_equal(tcp_cookie_check(&tcp, &ack, UST_SEC(1)), 0);
	ack = ack_of(&syn, cookie);
	ack.seq += 5; /* another peer ISN */
	assert_int_equal(tcp_cookie_check(&tcp, &ack, UST_SEC(1)), 0);
	ack = ack_of(&syn, cookie);
	ack.ack += 1;
	assert_int_equal(tcp_cookie_check(&tcp, &ack, UST_SEC(1)), 0);
	ack = ack_of(&syn, cookie);
	ack.src.b[15] ^= 1;
	assert_int_equal(tcp_cookie_check(&tcp, &ack, UST_SEC(1)), 0);
	/* Another secret: another cookie. */
	struct ust_tcp other = tcp;
	other.cfg.isn_key[0]++;
	ack = ack_of(&syn, cookie);
	assert_int_equal(tcp_cookie_check(&other, &ack, UST_SEC(1)), 0);
	/* It is never the RFC 6528 ISN of the same four-tuple. */
	assert_int_not_equal(cookie, tcp_isn(&tcp, &syn.dst, syn.dport, &syn.src, syn.sport, UST_SEC(1)));
}

/* Linux's MAX_SYNCOOKIE_AGE 2: the minute it was made and the next. */
static void test_cookie_ages_out_after_next_minute(void **state)
{
	struct ust_tcp_seg syn = syn_from(40000, 777, 1460);
	uint16_t mss;
	uint32_t cookie = tcp_cookie_isn(&tcp, &syn, UST_SEC(30), &mss);
	struct ust_tcp_seg ack = ack_of(&syn, cookie);

	assert_int_equal(tcp_cookie_check(&tcp, &ack, UST_SEC(59)), 1460);
	assert_int_equal(tcp_cookie_check(&tcp, &ack, UST_SEC(119)), 1460);
	assert_int_equal(tcp_cookie_check(&tcp, &ack, UST_SEC(120)), 0);
	assert_int_equal(tcp_cookie_check(&tcp, &ack, UST_SEC(3600)), 0);
}

/* The TSval keeps wscale, SACK and ECN in its low six bits, is never ahead
 * of the clock and at most 63 ms behind; the echo gives them back. */
static void test_cookie_tsval_carries_options(void **state)
{
	static const struct { bool ws; uint8_t wscale; bool sack, ecn; } cases[] = {
		{ true, 7, true, false }, { true, 0, false, false }, { true, 14, true, true },
		{ false, 0, true, true }, { false, 0, false, false },
	};
	static const ust_time nows[] = { UST_MS(100), UST_MS(64), UST_MS(5), UST_SEC(1234) + 17 };

	for (unsigned i = 0; i < UST_ARRAY_SIZE(cases); i++) {
		for (unsigned k = 0; k < UST_ARRAY_SIZE(nows); k++) {
			struct ust_tcb c;
			struct ust_tcp_opts o;
			uint32_t ts, ms = (uint32_t)(nows[k] / 1000);
			bool ecn;

			memset(&c, 0, sizeof(c));
			c.ws_ok = cases[i].ws;
			c.snd_wscale = cases[i].wscale;
			c.sack_ok = cases[i].sack;
			c.ecn_flags = cases[i].ecn ? UST_TCP_ECN_OK : 0;
			ts = tcp_cookie_tsval(&c, nows[k]);
			assert_true((int32_t)(ms - ts) >= 0 && ms - ts < 64);
			tcp_cookie_ts_decode(ts, &o, &ecn);
			assert_int_equal(o.wscale, cases[i].ws ? cases[i].wscale : -1);
			assert_int_equal(o.sack_ok, cases[i].sack);
			assert_int_equal(ecn, cases[i].ecn);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cookie_keeps_mss_from_linux_table),
		cmocka_unit_test(test_cookie_bound_to_tuple_and_sequence),
		cmocka_unit_test(test_cookie6_keeps_mss_from_linux_ipv6_table),
		cmocka_unit_test(test_cookie6_bound_to_whole_addresses),
		cmocka_unit_test(test_cookie_ages_out_after_next_minute),
		cmocka_unit_test(test_cookie_tsval_carries_options),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
