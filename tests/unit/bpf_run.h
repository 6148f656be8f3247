/* A small interpreter of the classic BPF instructions ustcp's programs use
 * (test_link_filter.c, test_steer.c), run as the kernel runs them: the
 * value of the RET reached (0: dropped). A load beyond the packet ends it
 * with 0, as the kernel's does. A word load at SKF_AD_OFF + SKF_AD_PROTOCOL
 * is the skb's protocol, proto (the fanout hook's EtherType). Include after
 * cmocka.h. */
#ifndef USTCP_TEST_BPF_RUN_H
#define USTCP_TEST_BPF_RUN_H

#include <linux/filter.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base.h"

static unsigned bpf_run_proto(const struct sock_filter *prog, unsigned n, const uint8_t *pkt, size_t len,
			      uint16_t proto)
{
	uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = { 0 };

	for (unsigned pc = 0; pc < n; pc++) {
		const struct sock_filter *i = &prog[pc];
		uint32_t k = i->k;

		switch (i->code) {
		case BPF_LD | BPF_W | BPF_ABS:
			if (k == (uint32_t)(SKF_AD_OFF + SKF_AD_PROTOCOL)) {
				a = proto;
				break;
			}
			if (k + 4 > len)
				return 0;
			a = ust_get32(pkt + k);
			break;
		case BPF_LD | BPF_H | BPF_IND:
			k += x;
			/* fall through */
		case BPF_LD | BPF_H | BPF_ABS:
			if (k + 2 > len)
				return 0;
			a = ust_get16(pkt + k);
			break;
		case BPF_LD | BPF_B | BPF_IND:
			k += x;
			/* fall through */
		case BPF_LD | BPF_B | BPF_ABS:
			if (k + 1 > len)
				return 0;
			a = pkt[k];
			break;
		case BPF_LDX | BPF_B | BPF_MSH:
			if (k + 1 > len)
				return 0;
			x = 4u * (pkt[k] & 0xf);
			break;
		case BPF_ALU | BPF_AND | BPF_K:
			a &= k;
			break;
		case BPF_ALU | BPF_LSH | BPF_K:
			a <<= k;
			break;
		case BPF_ALU | BPF_ADD | BPF_X:
			a += x;
			break;
		case BPF_ALU | BPF_ADD | BPF_K:
			a += k;
			break;
		case BPF_LDX | BPF_W | BPF_IMM:
			x = k;
			break;
		case BPF_ST:
			assert_true(k < BPF_MEMWORDS);
			mem[k] = a;
			break;
		case BPF_LD | BPF_W | BPF_MEM:
			assert_true(k < BPF_MEMWORDS);
			a = mem[k];
			break;
		case BPF_MISC | BPF_TAX:
			x = a;
			break;
		case BPF_JMP | BPF_JA:
			pc += k;
			break;
		case BPF_JMP | BPF_JEQ | BPF_K:
			pc += a == k ? i->jt : i->jf;
			break;
		case BPF_JMP | BPF_JGT | BPF_K:
			pc += a > k ? i->jt : i->jf;
			break;
		case BPF_JMP | BPF_JGE | BPF_K:
			pc += a >= k ? i->jt : i->jf;
			break;
		case BPF_JMP | BPF_JSET | BPF_K:
			pc += (a & k) ? i->jt : i->jf;
			break;
		case BPF_RET | BPF_K:
			return k;
		default:
			fail_msg("instruction %#x not expected", i->code);
		}
		assert_true(pc + 1 < n || (pc + 1 == n && i->code == (BPF_RET | BPF_K)));
	}
	fail_msg("ran off the end of the program");
	return 0;
}

/* An IPv6 TCP segment (from port 40000 to port) after extension headers
 * of the types in nh (n of them, 8 or 16 bytes each), as a peer's sticky headers put them; an ICMPv6 error's
 * quote of ours with them (at 48, from port to 80) when quote, the IPv6
 * header at f. Returns the length. */
static size_t ext6_frame(uint8_t *f, uint16_t port, const uint8_t *nh, unsigned n, bool quote)
{
	unsigned base = quote ? 48 : 0, off = base + 40;

	memset(f, 0, 200);
	f[0] = 0x60;
	if (quote) {
		f[6] = 58;
		f[40] = 2; /* packet too big */
		f[48] = 0x60;
	}
	f[base + 6] = n ? nh[0] : 6;
	for (unsigned i = 0; i < n; i++) {
		unsigned len = i % 2 ? 16 : 8;
		f[off] = i + 1 < n ? nh[i + 1] : 6;
		f[off + 1] = (uint8_t)(len / 8 - 1);
		off += len;
	}
	ust_put16(f + off, quote ? port : 40000);
	ust_put16(f + off + 2, quote ? 80 : port);
	return off + 20;
}

#endif
