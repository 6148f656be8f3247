/* MD5 (stack/md5.c): RFC 1321's test suite (appendix A.5), and the same
 * digest however the input is cut into pieces, as a segment's signature
 * is taken over a pseudo-header, a header, the data and a key in turn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "md5.h"

static void hex(const uint8_t d[UST_MD5_LEN], char out[2 * UST_MD5_LEN + 1])
{
	for (unsigned i = 0; i < UST_MD5_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void digest_of(const void *p, size_t len, char out[2 * UST_MD5_LEN + 1])
{
	struct ust_md5 m;
	uint8_t d[UST_MD5_LEN];

	ust_md5_init(&m);
	ust_md5_add(&m, p, len);
	ust_md5_end(&m, d);
	hex(d, out);
}

static void test_md5_rfc1321_suite(void **state)
{
	static const struct { const char *in, *out; } suite[] = {
		{ "", "d41d8cd98f00b204e9800998ecf8427e" },
		{ "a", "0cc175b9c0f1b6a831c399e269772661" },
		{ "abc", "900150983cd24fb0d6963f7d28e17f72" },
		{ "message digest", "f96b697d7cb7938d525a2f31aaf161d0" },
		{ "abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b" },
		{ "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
		  "d174ab98d277d9f5a5611c2c9f419d9f" },
		{ "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
		  "57edf4a22be3c955ac49da2e2107b67a" },
	};
	char out[2 * UST_MD5_LEN + 1];

	(void)state;
	for (unsigned i = 0; i < sizeof(suite) / sizeof(suite[0]); i++) {
		digest_of(suite[i].in, strlen(suite[i].in), out);
		assert_string_equal(out, suite[i].out);
	}
}

/* Lengths around the padding's edges (55, 56, 63, 64 bytes and their
 * neighbours in later blocks), each cut at every point into two pieces
 * and into pieces of every size up to 70: always the digest of the whole. The
 * whole's digests were taken with Python's hashlib of the same bytes. */
static void test_md5_pieces(void **state)
{
	static const struct { size_t len; const char *out; } whole[] = {
		{ 55, "52c0e574e1198de5fe3f8f11440dcb1b" },
		{ 56, "46c9907fc908ee68b1e7b8e71286a518" },
		{ 57, "1c805dd236c35cab25fcb1bc73802c51" },
		{ 63, "a62f6d59e837867693f042f5b8f5a236" },
		{ 64, "7160b8fb5e9e4023d549c3971fbaeead" },
		{ 65, "70bd662e7aefbda85a0f7244167b7897" },
		{ 119, "e84905d4214f4d1ca56c2cdcc152b143" },
		{ 120, "e3eb5a6c8669ea01a8c185b8abc8a5dc" },
		{ 1000, "10046f077f2082ac19676b8079f1cb1a" },
	};
	uint8_t buf[1000], d[UST_MD5_LEN];
	char out[2 * UST_MD5_LEN + 1];

	(void)state;
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	for (unsigned w = 0; w < sizeof(whole) / sizeof(whole[0]); w++) {
		size_t len = whole[w].len;

		digest_of(buf, len, out);
		assert_string_equal(out, whole[w].out);
		for (size_t cut = 0; cut <= len; cut++) {
			struct ust_md5 m;

			ust_md5_init(&m);
			ust_md5_add(&m, buf, cut);
			ust_md5_add(&m, buf + cut, len - cut);
			ust_md5_end(&m, d);
			hex(d, out);
			assert_string_equal(out, whole[w].out);
		}
		for (size_t piece = 1; piece <= 70; piece++) {
			struct ust_md5 m;

			ust_md5_init(&m);
			for (size_t at = 0; at < len; at += piece)
				ust_md5_add(&m, buf + at, len - at < piece ? len - at : piece);
			ust_md5_end(&m, d);
			hex(d, out);
			assert_string_equal(out, whole[w].out);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_md5_rfc1321_suite),
		cmocka_unit_test(test_md5_pieces),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
