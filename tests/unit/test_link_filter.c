/* The packet socket's filter (ust_link_filter, stack/link.c), run here by a
 * small interpreter of the classic BPF instructions it uses, as the kernel
 * runs it: what passes is ARP for our address, IPv4 to it, and with an IPv6
 * address IPv6 to it, to the link-local address of our MAC, to all nodes
 * and to the solicited-node groups of both; nothing else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "link.h"

#define OUR_IP 0x0a090002u
static const uint8_t our_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x02 };
static const struct ust_ip6 our6 = { .b = { 0x20, 0x01, 0x0d, 0xb8, [15] = 2 } };

/* Runs prog over pkt: the value of the RET it reaches (0: dropped). Loads
 * beyond the packet drop it, as in the kernel. */
static unsigned bpf_run(const struct sock_filter *prog, unsigned n, const uint8_t *pkt, size_t len)
{
	uint32_t a = 0;

	for (unsigned pc = 0; pc < n; pc++) {
		const struct sock_filter *i = &prog[pc];

		switch (i->code) {
		case BPF_LD | BPF_W | BPF_ABS:
			if (i->k + 4 > len)
				return 0;
			a = ust_get32(pkt + i->k);
			break;
		case BPF_LD | BPF_H | BPF_ABS:
			if (i->k + 2 > len)
				return 0;
			a = ust_get16(pkt + i->k);
			break;
		case BPF_LD | BPF_B | BPF_ABS:
			if (i->k + 1 > len)
				return 0;
			a = pkt[i->k];
			break;
		case BPF_ALU | BPF_AND | BPF_K:
			a &= i->k;
			break;
		case BPF_JMP | BPF_JA:
			pc += i->k;
			break;
		case BPF_JMP | BPF_JEQ | BPF_K:
			pc += a == i->k ? i->jt : i->jf;
			break;
		case BPF_RET | BPF_K:
			return i->k;
		default:
			fail_msg("instruction %#x not expected", i->code);
		}
		assert_true(pc + 1 < n || (pc + 1 == n && i->code == (BPF_RET | BPF_K)));
	}
	fail_msg("ran off the end of the program");
	return 0;
}

/* An Ethernet frame of type with, for IPv4, dst at 30 and, for IPv6, dst
 * at 38; for ARP the target address at 38; for other types nothing. */
static size_t eth_frame(uint8_t *f, uint16_t type, uint32_t dst4, const struct ust_ip6 *dst6)
{
	memset(f, 0, 80);
	ust_eth_build(f, our_mac, our_mac, type);
	if (type == UST_ETHERTYPE_IPV4) {
		f[14] = 0x45;
		ust_put32(f + 30, dst4);
	} else if (type == UST_ETHERTYPE_ARP) {
		ust_put32(f + 38, dst4);
	} else if (type == UST_ETHERTYPE_IPV6) {
		f[14] = 0x60;
		memcpy(f + 38, dst6->b, 16);
	}
	return 80;
}

static bool passes(const struct sock_filter *prog, unsigned n, uint16_t type, uint32_t dst4,
		   const struct ust_ip6 *dst6)
{
	uint8_t f[80];

	return bpf_run(prog, n, f, eth_frame(f, type, dst4, dst6)) != 0;
}

static void test_filter_ipv4_only(void **state)
{
	struct sock_filter prog[UST_LINK_FILTER_MAX];
	unsigned n = ust_link_filter(OUR_IP, NULL, our_mac, false, prog);

	assert_true(n <= UST_LINK_FILTER_MAX);
	assert_true(passes(prog, n, UST_ETHERTYPE_IPV4, OUR_IP, NULL));
	assert_true(passes(prog, n, UST_ETHERTYPE_ARP, OUR_IP, NULL));
	assert_false(passes(prog, n, UST_ETHERTYPE_IPV4, OUR_IP + 1, NULL));
	assert_false(passes(prog, n, UST_ETHERTYPE_ARP, OUR_IP + 1, NULL));
	assert_false(passes(prog, n, UST_ETHERTYPE_IPV6, 0, &our6));
	assert_false(passes(prog, n, UST_ETHERTYPE_VLAN, OUR_IP, NULL));
}

static void test_filter_ipv6(void **state)
{
	static const struct ust_ip6 all_nodes = { .b = { 0xff, 0x02, [15] = 1 } };
	static const struct ust_ip6 all_routers = { .b = { 0xff, 0x02, [15] = 2 } };
	static const struct ust_ip6 other = { .b = { 0x20, 0x01, 0x0d, 0xb8, [15] = 3 } };
	struct sock_filter prog[UST_LINK_FILTER_MAX];
	unsigned n = ust_link_filter(OUR_IP, &our6, our_mac, false, prog);
	struct ust_ip6 ll = ust_ip6_link_local(our_mac);
	struct ust_ip6 sn = ust_ip6_solicited_node(&our6), sn_ll = ust_ip6_solicited_node(&ll);
	struct ust_ip6 sn_other = ust_ip6_solicited_node(&other);

	assert_true(n <= UST_LINK_FILTER_MAX);
	assert_true(passes(prog, n, UST_ETHERTYPE_IPV4, OUR_IP, NULL));
	assert_true(passes(prog, n, UST_ETHERTYPE_ARP, OUR_IP, NULL));
	assert_false(passes(prog, n, UST_ETHERTYPE_IPV4, OUR_IP + 1, NULL));
	assert_true(passes(prog, n, UST_ETHERTYPE_IPV6, 0, &our6));
	assert_true(passes(prog, n, UST_ETHERTYPE_IPV6, 0, &ll));
	assert_true(passes(prog, n, UST_ETHERTYPE_IPV6, 0, &all_nodes));
	assert_true(passes(prog, n, UST_ETHERTYPE_IPV6, 0, &sn));
	assert_true(passes(prog, n, UST_ETHERTYPE_IPV6, 0, &sn_ll));
	assert_false(passes(prog, n, UST_ETHERTYPE_IPV6, 0, &other));
	assert_false(passes(prog, n, UST_ETHERTYPE_IPV6, 0, &all_routers));
	assert_false(passes(prog, n, UST_ETHERTYPE_IPV6, 0, &sn_other));
	/* The IPv4 address in an IPv6 frame, and the reverse. */
	assert_false(passes(prog, n, UST_ETHERTYPE_IPV6, 0, &(struct ust_ip6){ .b = { 0x0a, 0x09, 0, 2 } }));
	assert_false(passes(prog, n, UST_ETHERTYPE_ARP, ust_get32(our6.b), NULL));
}

static void test_filter_l3(void **state)
{
	static const struct ust_ip6 other = { .b = { 0x20, 0x01, 0x0d, 0xb8, [15] = 3 } };
	struct sock_filter prog[UST_LINK_FILTER_MAX];
	uint8_t d[60] = { 0x45 };
	unsigned n4 = ust_link_filter(OUR_IP, NULL, our_mac, true, prog);

	ust_put32(d + 16, OUR_IP);
	assert_true(bpf_run(prog, n4, d, sizeof(d)) != 0);
	d[0] = 0x60;
	memcpy(d + 24, our6.b, 16);
	assert_int_equal(bpf_run(prog, n4, d, sizeof(d)), 0);
	{
		unsigned n6 = ust_link_filter(OUR_IP, &our6, our_mac, true, prog);

		assert_true(bpf_run(prog, n6, d, sizeof(d)) != 0);
		memcpy(d + 24, other.b, 16);
		assert_int_equal(bpf_run(prog, n6, d, sizeof(d)), 0);
		d[0] = 0x45;
		assert_true(bpf_run(prog, n6, d, sizeof(d)) != 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filter_ipv4_only),
		cmocka_unit_test(test_filter_ipv6),
		cmocka_unit_test(test_filter_l3),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
