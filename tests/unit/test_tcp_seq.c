/* Sequence-number arithmetic (tcp_seq.h): comparisons modulo 2^32, in
 * particular across the wrap from 0xffffffff to 0, and the interval tests
 * the receive-window and ACK checks are built from. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tcp_seq.h"

/* A small deterministic generator for the property tests. */
static uint32_t rng_state = 0x2545f491u;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static void test_seq_compare_plain(void **state)
{
	(void)state;
	assert_true(seq_lt(1, 2));
	assert_false(seq_lt(2, 1));
	assert_false(seq_lt(5, 5));
	assert_true(seq_leq(5, 5));
	assert_true(seq_leq(4, 5));
	assert_false(seq_leq(6, 5));
	assert_true(seq_gt(2, 1));
	assert_false(seq_gt(1, 1));
	assert_true(seq_geq(1, 1));
	assert_false(seq_geq(0, 1));
	assert_int_equal(seq_diff(10, 3), 7);
	assert_int_equal(seq_diff(3, 10), -7);
}

/* 0xfffffff0 comes before 0x10: sixteen bytes before the wrap, sixteen after. */
static void test_seq_compare_across_wrap(void **state)
{
	const uint32_t before = 0xfffffff0u, after = 0x10u;

	(void)state;
	assert_true(seq_lt(before, after));
	assert_true(seq_leq(before, after));
	assert_false(seq_gt(before, after));
	assert_false(seq_geq(before, after));
	assert_true(seq_gt(after, before));
	assert_true(seq_geq(after, before));
	assert_false(seq_lt(after, before));
	assert_int_equal(seq_diff(after, before), 0x20);
	assert_int_equal(seq_diff(before, after), -0x20);
	/* The wrap itself. */
	assert_true(seq_lt(0xffffffffu, 0));
	assert_true(seq_gt(0, 0xffffffffu));
	assert_int_equal(seq_diff(0, 0xffffffffu), 1);
	/* Plain unsigned comparison gets every one of these wrong. */
	assert_true(before > after);
}

/* The largest distances that still compare: 2^31 - 1 either way. Exactly
 * 2^31 apart is ambiguous by construction (RFC 1982 §3.2) and not tested. */
static void test_seq_compare_half_space(void **state)
{
	const uint32_t bases[] = { 0, 1, 0x7fffffffu, 0x80000000u, 0xfffffffeu, 0xffffffffu };

	(void)state;
	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		uint32_t a = bases[i], far = a + 0x7fffffffu;
		assert_true(seq_lt(a, far));
		assert_true(seq_gt(far, a));
		assert_int_equal(seq_diff(far, a), INT32_MAX);
		assert_int_equal(seq_diff(a, far), -INT32_MAX);
		/* One more and the order flips: far + 1 is now "behind" a. */
		assert_true(seq_gt(a, a + 0x80000001u));
	}
}

/* Property: for |d| < 2^31, a + d compares with a as d compares with 0. */
static void test_seq_compare_property(void **state)
{
	(void)state;
	for (int i = 0; i < 200000; i++) {
		uint32_t a = rnd();
		int32_t d = (int32_t)rnd();
		uint32_t b;
		if (d == INT32_MIN)
			continue;
		b = a + (uint32_t)d;
		assert_int_equal(seq_lt(a, b), d > 0);
		assert_int_equal(seq_leq(a, b), d >= 0);
		assert_int_equal(seq_gt(a, b), d < 0);
		assert_int_equal(seq_geq(a, b), d <= 0);
		assert_int_equal(seq_diff(b, a), d);
		assert_int_equal(seq_max(a, b), d > 0 ? b : a);
		assert_int_equal(seq_min(a, b), d > 0 ? a : b);
	}
}

/* seq_in: lo <= x < hi; seq_between: lo <= x <= hi. */
static void test_seq_in_between(void **state)
{
	(void)state;
	assert_true(seq_in(10, 10, 20));
	assert_true(seq_in(19, 10, 20));
	assert_false(seq_in(20, 10, 20));
	assert_false(seq_in(9, 10, 20));
	assert_true(seq_between(20, 10, 20));
	assert_true(seq_between(10, 10, 20));
	assert_false(seq_between(21, 10, 20));
	assert_false(seq_between(9, 10, 20));
	/* An empty window holds nothing; a point holds itself. */
	assert_false(seq_in(10, 10, 10));
	assert_true(seq_between(10, 10, 10));
	assert_false(seq_between(11, 10, 10));
}

static void test_seq_in_between_across_wrap(void **state)
{
	const uint32_t lo = 0xfffffff0u, hi = 0x10u;

	(void)state;
	assert_true(seq_in(lo, lo, hi));
	assert_true(seq_in(0xffffffffu, lo, hi));
	assert_true(seq_in(0, lo, hi));
	assert_true(seq_in(0xf, lo, hi));
	assert_false(seq_in(hi, lo, hi));
	assert_false(seq_in(lo - 1, lo, hi));
	assert_false(seq_in(0x80000000u, lo, hi));
	assert_true(seq_between(hi, lo, hi));
	assert_false(seq_between(hi + 1, lo, hi));
	assert_false(seq_between(lo - 1, lo, hi));
}

/* Property: x is in [lo, lo + len) exactly when 0 <= x - lo < len. */
static void test_seq_in_property(void **state)
{
	(void)state;
	for (int i = 0; i < 200000; i++) {
		uint32_t lo = rnd(), len = rnd() >> 1, off = rnd() >> (rnd() & 31);
		uint32_t x = lo + off;
		assert_int_equal(seq_in(x, lo, lo + len), off < len);
		assert_int_equal(seq_between(x, lo, lo + len), off <= len);
	}
}

static void test_seq_max_min_across_wrap(void **state)
{
	(void)state;
	assert_int_equal(seq_max(0xfffffff0u, 0x10u), 0x10u);
	assert_int_equal(seq_min(0xfffffff0u, 0x10u), 0xfffffff0u);
	assert_int_equal(seq_max(0x10u, 0xfffffff0u), 0x10u);
	assert_int_equal(seq_min(0x10u, 0xfffffff0u), 0xfffffff0u);
	assert_int_equal(seq_max(7, 7), 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seq_compare_plain),
		cmocka_unit_test(test_seq_compare_across_wrap),
		cmocka_unit_test(test_seq_compare_half_space),
		cmocka_unit_test(test_seq_compare_property),
		cmocka_unit_test(test_seq_in_between),
		cmocka_unit_test(test_seq_in_between_across_wrap),
		cmocka_unit_test(test_seq_in_property),
		cmocka_unit_test(test_seq_max_min_across_wrap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
