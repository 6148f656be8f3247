/* MD5 as RFC 1321 §3 defines it: 512-bit blocks, four rounds of sixteen
 * steps on four 32-bit words, little-endian throughout. */
#include <string.h>

#include "md5.h"

/* The steps' constants: the integer part of 2^32 × |sin(i + 1)|. */
static const uint32_t K[64] = {
	0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee,
	0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
	0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be,
	0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
	0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa,
	0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
	0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
	0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
	0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c,
	0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
	0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05,
	0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
	0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039,
	0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
	0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1,
	0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

/* Each round's four rotations, repeated over its sixteen steps. */
static const uint8_t R[4][4] = { { 7, 12, 17, 22 }, { 5, 9, 14, 20 }, { 4, 11, 16, 23 }, { 6, 10, 15, 21 } };

static uint32_t rotl(uint32_t x, unsigned n)
{
	return x << n | x >> (32 - n);
}

static void block(uint32_t h[4], const uint8_t *p)
{
	uint32_t x[16], a = h[0], b = h[1], c = h[2], d = h[3];

	for (unsigned i = 0; i < 16; i++)
		x[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
		       (uint32_t)p[4 * i + 3] << 24;
	for (unsigned i = 0; i < 64; i++) {
		unsigned round = i / 16, word;
		uint32_t f, next;

		switch (round) {
		case 0: /* F */
			f = (b & c) | (~b & d);
			word = i;
			break;
		case 1: /* G */
			f = (b & d) | (c & ~d);
			word = (5 * i + 1) % 16;
			break;
		case 2: /* H */
			f = b ^ c ^ d;
			word = (3 * i + 5) % 16;
			break;
		default: /* I */
			f = c ^ (b | ~d);
			word = (7 * i) % 16;
			break;
		}
		next = b + rotl(a + f + K[i] + x[word], R[round][i % 4]);
		a = d;
		d = c;
		c = b;
		b = next;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
}

void ust_md5_init(struct ust_md5 *m)
{
	m->h[0] = 0x67452301;
	m->h[1] = 0xefcdab89;
	m->h[2] = 0x98badcfe;
	m->h[3] = 0x10325476;
	m->len = 0;
}

void ust_md5_add(struct ust_md5 *m, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t have = (size_t)(m->len % 64);

	m->len += len;
	if (have) {
		size_t take = 64 - have < len ? 64 - have : len;

		memcpy(m->buf + have, p, take);
		p += take;
		len -= take;
		if (have + take < 64)
			return;
		block(m->h, m->buf);
	}
	for (; len >= 64; p += 64, len -= 64)
		block(m->h, p);
	if (len)
		memcpy(m->buf, p, len);
}

/* Padding: a 1 bit, zeros up to 56 bytes into a block, and the length in
 * bits as 64 bits (§3.1, §3.2). */
void ust_md5_end(struct ust_md5 *m, uint8_t digest[UST_MD5_LEN])
{
	uint64_t bits = m->len * 8;
	uint8_t pad[72] = { 0x80 };
	size_t have = (size_t)(m->len % 64);
	size_t n = (have < 56 ? 56 : 120) - have;

	for (unsigned i = 0; i < 8; i++)
		pad[n + i] = (uint8_t)(bits >> (8 * i));
	ust_md5_add(m, pad, n + 8);
	for (unsigned i = 0; i < 4; i++)
		for (unsigned j = 0; j < 4; j++)
			digest[4 * i + j] = (uint8_t)(m->h[i] >> (8 * j));
}
