/* The steering group's program (ust_steer_program, stack/steer.c), run here
 * by an interpreter of the classic BPF instructions it uses, as the
 * kernel's fanout hook runs it: over the frame from its IP header, with the
 * EtherType as the ancillary protocol. A frame goes to the member that
 * holds its TCP port (an ICMP error's quoted source port), ARP to the
 * broker, anything else to the default member. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bpf_asm.h"
#include "bpf_run.h"

#include "steer.h"

#define DFLT 1u

static unsigned bpf_run(const struct sock_filter *prog, unsigned n, const uint8_t *pkt, size_t len, uint16_t proto)
{
	return bpf_run_proto(prog, n, pkt, len, proto);
}

/* An IPv4 TCP segment to dport (IP header of ihl words). */
static size_t tcp_frame(uint8_t *f, uint16_t dport, unsigned ihl)
{
	memset(f, 0, 120);
	f[0] = (uint8_t)(0x40 | ihl);
	f[9] = 6;
	ust_put16(f + 4 * ihl, 40000);
	ust_put16(f + 4 * ihl + 2, dport);
	return 4 * ihl + 20;
}

/* An ICMP error of type about a TCP segment we sent from sport (the
 * quoted header of qihl words). */
static size_t icmp_frame(uint8_t *f, uint8_t type, uint16_t sport, unsigned qihl)
{
	uint8_t *q = f + 28;

	memset(f, 0, 120);
	f[0] = 0x45;
	f[9] = 1;
	f[20] = type;
	q[0] = (uint8_t)(0x40 | qihl);
	q[9] = 6;
	ust_put16(q + 4 * qihl, sport);
	ust_put16(q + 4 * qihl + 2, 80);
	return 28 + 4 * qihl + 8;
}

static unsigned steer_tcp(const struct sock_filter *prog, unsigned n, uint16_t port)
{
	uint8_t f[120];

	return bpf_run(prog, n, f, tcp_frame(f, port, 5), 0x0800);
}

/* An IPv6 TCP segment to dport (next header nh: 6, or an extension
 * header's). */
static size_t tcp6_frame(uint8_t *f, uint16_t dport, uint8_t nh)
{
	memset(f, 0, 120);
	f[0] = 0x60;
	f[6] = nh;
	ust_put16(f + 40, 40000);
	ust_put16(f + 42, dport);
	return 60;
}

/* An ICMPv6 message of type; for an error (1..4), about a TCP segment we
 * sent from sport. */
static size_t icmp6_frame(uint8_t *f, uint8_t type, uint16_t sport)
{
	memset(f, 0, 120);
	f[0] = 0x60;
	f[6] = 58;
	f[40] = type;
	f[48] = 0x60;
	f[48 + 6] = 6;
	ust_put16(f + 88, sport);
	ust_put16(f + 90, 80);
	return 96;
}

static unsigned steer_tcp6(const struct sock_filter *prog, unsigned n, uint16_t port)
{
	uint8_t f[120];

	return bpf_run(prog, n, f, tcp6_frame(f, port, 6), 0x86dd);
}

static void test_steer_ports_to_members(void **state)
{
	static const struct ust_steer_range r[] = {
		{ 80, 80, 2 }, { 1000, 1063, 3 }, { 1064, 1064, 4 }, { 40000, 40031, 5 }, { 65535, 65535, 6 },
	};
	struct sock_filter prog[UST_STEER_PROG_MAX];
	unsigned n = ust_steer_program(r, UST_ARRAY_SIZE(r), NULL, 0, DFLT, prog);
	uint8_t f[120];

	assert_true(n > 0 && n <= UST_STEER_PROG_MAX);
	assert_int_equal(steer_tcp(prog, n, 80), 2);
	assert_int_equal(steer_tcp(prog, n, 79), DFLT);
	assert_int_equal(steer_tcp(prog, n, 81), DFLT);
	assert_int_equal(steer_tcp(prog, n, 1000), 3);
	assert_int_equal(steer_tcp(prog, n, 1031), 3);
	assert_int_equal(steer_tcp(prog, n, 1063), 3);
	assert_int_equal(steer_tcp(prog, n, 1064), 4);
	assert_int_equal(steer_tcp(prog, n, 1065), DFLT);
	assert_int_equal(steer_tcp(prog, n, 40031), 5);
	assert_int_equal(steer_tcp(prog, n, 65535), 6);
	assert_int_equal(steer_tcp(prog, n, 1), DFLT);
	/* IP options move the TCP header. */
	assert_int_equal(bpf_run(prog, n, f, tcp_frame(f, 1064, 8), 0x0800), 4);
	/* An ICMP error about our segment from port 40001: that port's. */
	assert_int_equal(bpf_run(prog, n, f, icmp_frame(f, 3, 40001, 5), 0x0800), 5);
	assert_int_equal(bpf_run(prog, n, f, icmp_frame(f, 11, 80, 6), 0x0800), 2);
	assert_int_equal(bpf_run(prog, n, f, icmp_frame(f, 12, 1000, 5), 0x0800), 3);
	/* An echo request (type 8): the default member answers. */
	assert_int_equal(bpf_run(prog, n, f, icmp_frame(f, 8, 40001, 5), 0x0800), DFLT);
}

static void test_steer_others_to_default_arp_to_broker(void **state)
{
	static const struct ust_steer_range r[] = { { 80, 80, 2 } };
	struct sock_filter prog[UST_STEER_PROG_MAX];
	unsigned n = ust_steer_program(r, 1, NULL, 0, DFLT, prog);
	uint8_t f[120];
	size_t len = tcp_frame(f, 80, 5);

	assert_int_equal(bpf_run(prog, n, f, len, 0x0806), UST_STEER_BROKER);
	/* A fragment after the first carries no TCP header. */
	ust_put16(f + 6, 0x0010);
	assert_int_equal(bpf_run(prog, n, f, len, 0x0800), DFLT);
	ust_put16(f + 6, 0x4000); /* DF alone: a whole datagram */
	assert_int_equal(bpf_run(prog, n, f, len, 0x0800), 2);
	f[9] = 17; /* UDP */
	assert_int_equal(bpf_run(prog, n, f, len, 0x0800), DFLT);
	/* No ranges: everything IPv4 to the default. */
	n = ust_steer_program(r, 0, NULL, 0, DFLT, prog);
	f[9] = 6;
	assert_int_equal(bpf_run(prog, n, f, len, 0x0800), DFLT);
	assert_int_equal(bpf_run(prog, n, f, len, 0x0806), UST_STEER_BROKER);
}

/* As many ranges as fit: every port of each reaches its member, every
 * port between two reaches the default, and the program stays within
 * BPF_MAXINSNS. One more does not fit. */
static void test_steer_many_ranges(void **state)
{
	static struct ust_steer_range r[UST_STEER_RANGES_MAX + 1];
	static struct sock_filter prog[UST_STEER_PROG_MAX];
	unsigned n;

	for (unsigned i = 0; i <= UST_STEER_RANGES_MAX; i++)
		r[i] = (struct ust_steer_range){ (uint16_t)(1024 + 64 * i), (uint16_t)(1024 + 64 * i + 31),
						 (uint16_t)(2 + i % 1000) };
	n = ust_steer_program(r, UST_STEER_RANGES_MAX / 2, r + UST_STEER_RANGES_MAX / 2,
			      UST_STEER_RANGES_MAX - UST_STEER_RANGES_MAX / 2, DFLT, prog);
	assert_true(n > 0 && n <= UST_STEER_PROG_MAX);
	for (unsigned i = 0; i < UST_STEER_RANGES_MAX; i++) {
		unsigned (*steer)(const struct sock_filter *, unsigned, uint16_t) =
			i < UST_STEER_RANGES_MAX / 2 ? steer_tcp : steer_tcp6;
		assert_int_equal(steer(prog, n, r[i].lo), r[i].member);
		assert_int_equal(steer(prog, n, (uint16_t)(r[i].lo + 17)), r[i].member);
		assert_int_equal(steer(prog, n, r[i].hi), r[i].member);
		assert_int_equal(steer(prog, n, (uint16_t)(r[i].hi + 1)), DFLT);
		assert_int_equal(steer(prog, n, (uint16_t)(r[i].lo - 1)), DFLT);
	}
	assert_int_equal(ust_steer_program(r, UST_STEER_RANGES_MAX, r, 1, DFLT, prog), 0);
}

/* Each family has its table: a port's IPv6 frames may go elsewhere than
 * its IPv4 ones (per-family port spaces), past extension headers; an
 * ICMPv6 error by the quoted source port; neighbour discovery (133..137)
 * to the broker, as ARP; echo, other ICMPv6 to the default. */
static void test_steer_ipv6(void **state)
{
	static const struct ust_steer_range r4[] = { { 80, 80, 2 }, { 8080, 8080, 3 } };
	static const struct ust_steer_range r6[] = { { 80, 80, 4 }, { 443, 443, 5 } };
	struct sock_filter prog[UST_STEER_PROG_MAX];
	unsigned n = ust_steer_program(r4, 2, r6, 2, DFLT, prog);
	uint8_t f[120];

	assert_true(n > 0);
	assert_int_equal(steer_tcp(prog, n, 80), 2);
	assert_int_equal(steer_tcp(prog, n, 8080), 3);
	assert_int_equal(steer_tcp(prog, n, 443), DFLT);
	assert_int_equal(steer_tcp6(prog, n, 80), 4);
	assert_int_equal(steer_tcp6(prog, n, 443), 5);
	assert_int_equal(steer_tcp6(prog, n, 8080), DFLT);
	/* Past up to four hop-by-hop, routing or destination options
	 * headers, ours in a quote too; more, or a fragment header, to the
	 * default. */
	{
		static const uint8_t four[] = { 0, 60, 43, 60 }, five[] = { 0, 60, 43, 60, 60 }, frag[] = { 44 };
		uint8_t g[200];

		assert_int_equal(bpf_run(prog, n, g, ext6_frame(g, 443, four, 1, false), 0x86dd), 5);
		assert_int_equal(bpf_run(prog, n, g, ext6_frame(g, 443, four, 4, false), 0x86dd), 5);
		assert_int_equal(bpf_run(prog, n, g, ext6_frame(g, 443, five, 5, false), 0x86dd), DFLT);
		assert_int_equal(bpf_run(prog, n, g, ext6_frame(g, 443, frag, 1, false), 0x86dd), DFLT);
		assert_int_equal(bpf_run(prog, n, g, ext6_frame(g, 443, four, 4, true), 0x86dd), 5);
		assert_int_equal(bpf_run(prog, n, g, ext6_frame(g, 80, four, 2, true), 0x86dd), 4);
		assert_int_equal(bpf_run(prog, n, g, ext6_frame(g, 443, five, 5, true), 0x86dd), DFLT);
	}
	for (uint8_t t = 1; t <= 4; t++)
		assert_int_equal(bpf_run(prog, n, f, icmp6_frame(f, t, 443), 0x86dd), 5);
	for (uint8_t t = 133; t <= 137; t++)
		assert_int_equal(bpf_run(prog, n, f, icmp6_frame(f, t, 443), 0x86dd), UST_STEER_BROKER);
	assert_int_equal(bpf_run(prog, n, f, icmp6_frame(f, 128, 443), 0x86dd), DFLT); /* echo */
	assert_int_equal(bpf_run(prog, n, f, icmp6_frame(f, 0, 443), 0x86dd), DFLT);
	assert_int_equal(bpf_run(prog, n, f, icmp6_frame(f, 138, 443), 0x86dd), DFLT);
	/* An error about UDP: the default. */
	icmp6_frame(f, 1, 443);
	f[48 + 6] = 17;
	assert_int_equal(bpf_run(prog, n, f, 96, 0x86dd), DFLT);
	/* No IPv6 ranges: every IPv6 segment to the default, IPv4 still
	 * steered. */
	n = ust_steer_program(r4, 2, NULL, 0, DFLT, prog);
	assert_int_equal(steer_tcp6(prog, n, 80), DFLT);
	assert_int_equal(steer_tcp(prog, n, 80), 2);
	assert_int_equal(bpf_run(prog, n, f, icmp6_frame(f, 135, 443), 0x86dd), UST_STEER_BROKER);
}

/* The assembler (bpf_asm.h) resolves labels ahead, and refuses what
 * classic BPF cannot say: a label no instruction carries, one behind the
 * jump, a conditional jump further than 255. */
static void test_bpf_assemble(void **state)
{
	enum { L_NONE, L_YES, L_BACK, L_LOST, L_FAR, L_N };
	static struct ust_bpf_ins far[300];
	const struct ust_bpf_ins ok[] = {
		UST_BPF_J(BPF_JMP | BPF_JEQ | BPF_K, 1, L_YES, UST_BPF_NEXT),
		UST_BPF_I(BPF_RET | BPF_K, 0),
		UST_BPF_AT(L_YES, BPF_RET | BPF_K, 1),
	};
	const struct ust_bpf_ins back[] = {
		UST_BPF_AT(L_BACK, BPF_LD | BPF_W | BPF_LEN, 0),
		UST_BPF_J(BPF_JMP | BPF_JEQ | BPF_K, 1, L_BACK, UST_BPF_NEXT),
		UST_BPF_I(BPF_RET | BPF_K, 0),
	};
	const struct ust_bpf_ins lost[] = {
		UST_BPF_GOTO(L_LOST),
		UST_BPF_I(BPF_RET | BPF_K, 0),
	};
	static struct sock_filter prog[300];
	unsigned at[L_N] = { 0 };

	(void)state;
	assert_true(ust_bpf_assemble(ok, UST_ARRAY_SIZE(ok), at, prog));
	assert_int_equal(prog[0].jt, 1);
	assert_int_equal(prog[0].jf, 0);
	assert_false(ust_bpf_assemble(back, UST_ARRAY_SIZE(back), at, prog));
	assert_false(ust_bpf_assemble(lost, UST_ARRAY_SIZE(lost), at, prog));
	/* A test at 0 whose true branch lands 256 and then 255 ahead. */
	for (unsigned i = 0; i < UST_ARRAY_SIZE(far); i++)
		far[i] = (struct ust_bpf_ins)UST_BPF_I(BPF_RET | BPF_K, 0);
	far[0] = (struct ust_bpf_ins)UST_BPF_J(BPF_JMP | BPF_JEQ | BPF_K, 1, L_FAR, UST_BPF_NEXT);
	far[257].at = L_FAR;
	assert_false(ust_bpf_assemble(far, UST_ARRAY_SIZE(far), at, prog));
	far[257].at = UST_BPF_NEXT;
	far[256].at = L_FAR;
	assert_true(ust_bpf_assemble(far, UST_ARRAY_SIZE(far), at, prog));
	assert_int_equal(prog[0].jt, 255);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_steer_ports_to_members),
		cmocka_unit_test(test_steer_others_to_default_arp_to_broker),
		cmocka_unit_test(test_steer_many_ranges),
		cmocka_unit_test(test_steer_ipv6),
		cmocka_unit_test(test_bpf_assemble),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
