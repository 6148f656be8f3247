#include <string.h>

#include "csum.h"

/* The one's-complement sum does not care about byte order (RFC 1071
 * §2(B)): sum the buffer in native 32-bit words, which the compiler loads
 * whole, fold to 16 bits, and swap once at the end if the host is
 * little-endian. A 64-bit accumulator takes the carries of any buffer up to
 * 2^32 words. */
uint32_t ust_csum_add(uint32_t sum, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t acc = 0, total;
	uint32_t w[4];
	uint16_t h;

	while (len >= 16) {
		memcpy(w, p, 16);
		acc += (uint64_t)w[0] + w[1] + w[2] + w[3];
		p += 16;
		len -= 16;
	}
	while (len >= 4) {
		memcpy(w, p, 4);
		acc += w[0];
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		memcpy(&h, p, 2);
		acc += h;
		p += 2;
		len -= 2;
	}
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	h = (uint16_t)acc;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	h = (uint16_t)(h << 8 | h >> 8);
#endif
	total = (uint64_t)sum + h;
	/* An odd last byte is the high half of a big-endian word. */
	if (len)
		total += (uint32_t)p[0] << 8;
	while (total >> 32)
		total = (total & 0xffffffffu) + (total >> 32);
	return (uint32_t)total;
}

uint16_t ust_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

uint32_t ust_csum_pseudo(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len)
{
	uint64_t acc = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) +
		       proto + len;
	while (acc >> 32)
		acc = (acc & 0xffffffffu) + (acc >> 32);
	return (uint32_t)acc;
}
