/* The steering group's program (steer.h). */
#include <linux/if_ether.h>

#include "bpf_asm.h"
#include "steer.h"

#define INS(c, k) ((struct sock_filter)BPF_STMT((c), (k)))
#define JMP(c, k, t, f) ((struct sock_filter)BPF_JUMP((c), (k), (t), (f)))

/* A leaf: the port (in A) in r's range gets hit (UST_STEER_TO_MEMBER:
 * r's member), any other miss (the ranges around r were ruled out by the
 * nodes above). */
static unsigned leaf(struct sock_filter *p, const struct ust_steer_range *r, uint32_t hit, uint32_t miss)
{
	p[0] = JMP(BPF_JMP | BPF_JGT | BPF_K, r->hi, 2, 0);
	p[1] = JMP(BPF_JMP | BPF_JGE | BPF_K, r->lo, 0, 1);
	p[2] = INS(BPF_RET | BPF_K, hit == UST_STEER_TO_MEMBER ? r->member : hit);
	p[3] = INS(BPF_RET | BPF_K, miss);
	return 4;
}

/* A binary search over r[0..n): a node sends ports above its left half's
 * last range to the right half, which a BPF_JA reaches (a conditional
 * jump's 8 bits would not span a large left half). */
static unsigned search(struct sock_filter *p, const struct ust_steer_range *r, unsigned n, uint32_t hit,
		       uint32_t miss)
{
	unsigned half = n / 2, left;

	if (n == 1)
		return leaf(p, r, hit, miss);
	p[0] = JMP(BPF_JMP | BPF_JGT | BPF_K, r[half - 1].hi, 0, 1);
	left = search(p + 2, r, half, hit, miss);
	p[1] = INS(BPF_JMP | BPF_JA, left);
	return 2 + left + search(p + 2 + left, r + half, n - half, hit, miss);
}

unsigned ust_steer_search(struct sock_filter *p, const struct ust_steer_range *r, unsigned n, uint32_t hit,
			  uint32_t miss)
{
	if (!n) {
		p[0] = INS(BPF_RET | BPF_K, miss);
		return 1;
	}
	return search(p, r, n, hit, miss);
}

/* The runs of ports set in bits, each run stretched over gaps of at most
 * gap ports not set to the next: how many, written to r unless NULL. */
static unsigned port_runs(const uint64_t bits[1024], unsigned gap, struct ust_steer_range *r)
{
	unsigned n = 0, lo = 0, hi = 0;

	for (unsigned w = 0; w < 1024; w++) {
		for (uint64_t v = bits[w]; v; v &= v - 1) {
			unsigned p = w * 64 + (unsigned)__builtin_ctzll(v);

			if (n && p - hi - 1 <= gap) {
				hi = p;
				continue;
			}
			if (n && r)
				r[n - 1] = (struct ust_steer_range){ (uint16_t)lo, (uint16_t)hi, 0 };
			lo = hi = p;
			n++;
		}
	}
	if (n && r)
		r[n - 1] = (struct ust_steer_range){ (uint16_t)lo, (uint16_t)hi, 0 };
	return n;
}

unsigned ust_steer_ranges(const uint64_t bits[1024], struct ust_steer_range *r, unsigned max)
{
	unsigned gap = 0;

	/* Gaps of 0, 1, 3, 7 … 65535 ports: at the last, one range. */
	while (port_runs(bits, gap, NULL) > max && gap < 65535)
		gap = gap * 2 + 1;
	return port_runs(bits, gap, r);
}

/* The head's labels (bpf_asm.h). */
enum label {
	L_NONE, L_V4, L_V4Q, L_V4TCP, L_V6, L_V6TCP, L_X1, L_X2, L_X3, L_X4, L_ICMP6, L_Q6TCP, L_QX1, L_QX2, L_QX3,
	L_QX4, L_DFLT, L_BROKER, L_S4, L_S6, L_N
};

unsigned ust_steer_program(const struct ust_steer_range *r4, unsigned n4, const struct ust_steer_range *r6,
			   unsigned n6, unsigned dflt, struct sock_filter prog[UST_STEER_PROG_MAX])
{
	/* The frame from its IP header: the fanout hook runs before
	 * packet_rcv pushes the link header back. The EtherType is the
	 * skb's protocol, an ancillary load. */
#define I UST_BPF_I
#define J UST_BPF_J
#define AT UST_BPF_AT
#define NEXT UST_BPF_NEXT
	static const struct ust_bpf_ins head[] = {
		I(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_PROTOCOL)),
		J(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_ARP, L_BROKER, NEXT),   /* every stack reads ARP apart */
		J(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, L_V6, NEXT),
		J(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, NEXT, L_DFLT),
		/* IPv4 */
		AT(L_V4, BPF_LD | BPF_H | BPF_ABS, 6),                      /* flags, fragment offset */
		J(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, L_DFLT, NEXT),        /* a later fragment */
		I(BPF_LDX | BPF_B | BPF_MSH, 0),                            /* X = IP header length */
		I(BPF_LD | BPF_B | BPF_ABS, 9),                             /* protocol */
		J(BPF_JMP | BPF_JEQ | BPF_K, 6, L_V4TCP, NEXT),
		J(BPF_JMP | BPF_JEQ | BPF_K, 1, NEXT, L_DFLT),              /* ICMP */
		I(BPF_LD | BPF_B | BPF_IND, 0),                             /* its type */
		J(BPF_JMP | BPF_JEQ | BPF_K, 3, L_V4Q, NEXT),               /* unreachable */
		J(BPF_JMP | BPF_JEQ | BPF_K, 11, L_V4Q, NEXT),              /* time exceeded */
		J(BPF_JMP | BPF_JEQ | BPF_K, 12, NEXT, L_DFLT),             /* parameter problem */
		AT(L_V4Q, BPF_LD | BPF_B | BPF_IND, 8 + 9),                 /* the quoted protocol */
		J(BPF_JMP | BPF_JEQ | BPF_K, 6, NEXT, L_DFLT),
		I(BPF_LD | BPF_B | BPF_IND, 8),                             /* the quoted header's length */
		I(BPF_ALU | BPF_AND | BPF_K, 0xf),
		I(BPF_ALU | BPF_LSH | BPF_K, 2),
		I(BPF_ALU | BPF_ADD | BPF_X, 0),
		I(BPF_MISC | BPF_TAX, 0),
		I(BPF_LD | BPF_H | BPF_IND, 8),                             /* the quoted source port: ours */
		UST_BPF_GOTO(L_S4),
		AT(L_V4TCP, BPF_LD | BPF_H | BPF_IND, 2),                   /* TCP destination port */
		UST_BPF_GOTO(L_S4),
		/* IPv6: the upper-layer header after up to four hop-by-hop,
		 * routing and destination options headers (a peer's sticky
		 * headers; more, or others: the default member). */
		AT(L_V6, BPF_LD | BPF_B | BPF_ABS, 6),                      /* next header */
		J(BPF_JMP | BPF_JEQ | BPF_K, 58, L_ICMP6, NEXT),
		I(BPF_LDX | BPF_W | BPF_IMM, 0),
		UST_BPF_EXT_STEP(L_X1, 40, L_V6TCP, L_DFLT), UST_BPF_EXT_STEP(L_X2, 40, L_V6TCP, L_DFLT),
		UST_BPF_EXT_STEP(L_X3, 40, L_V6TCP, L_DFLT), UST_BPF_EXT_STEP(L_X4, 40, L_V6TCP, L_DFLT),
		J(BPF_JMP | BPF_JEQ | BPF_K, 6, L_V6TCP, L_DFLT),
		AT(L_V6TCP, BPF_LD | BPF_H | BPF_IND, 40 + 2),              /* TCP destination port */
		UST_BPF_GOTO(L_S6),
		AT(L_ICMP6, BPF_LD | BPF_B | BPF_ABS, 40),                  /* ICMPv6: its type */
		J(BPF_JMP | BPF_JGT | BPF_K, 137, L_DFLT, NEXT),
		J(BPF_JMP | BPF_JGE | BPF_K, 133, L_BROKER, NEXT),          /* neighbour discovery: read apart */
		J(BPF_JMP | BPF_JGT | BPF_K, 4, L_DFLT, NEXT),              /* errors are 1..4 */
		J(BPF_JMP | BPF_JEQ | BPF_K, 0, L_DFLT, NEXT),
		I(BPF_LD | BPF_B | BPF_ABS, 48 + 6),                        /* the quoted next header */
		I(BPF_LDX | BPF_W | BPF_IMM, 0),                            /* past our sticky headers */
		UST_BPF_EXT_STEP(L_QX1, 88, L_Q6TCP, L_DFLT), UST_BPF_EXT_STEP(L_QX2, 88, L_Q6TCP, L_DFLT),
		UST_BPF_EXT_STEP(L_QX3, 88, L_Q6TCP, L_DFLT), UST_BPF_EXT_STEP(L_QX4, 88, L_Q6TCP, L_DFLT),
		J(BPF_JMP | BPF_JEQ | BPF_K, 6, L_Q6TCP, L_DFLT),
		AT(L_Q6TCP, BPF_LD | BPF_H | BPF_IND, 48 + 40),             /* the quoted source port: ours */
		UST_BPF_GOTO(L_S6),
		AT(L_DFLT, BPF_RET | BPF_K, 0),                             /* k: dflt */
		AT(L_BROKER, BPF_RET | BPF_K, UST_STEER_BROKER),
	};
#undef I
#undef J
#undef AT
#undef NEXT
	const unsigned len = UST_ARRAY_SIZE(head);
	unsigned at[L_N] = { 0 }, s4;

	if (n4 + n6 > UST_STEER_RANGES_MAX)
		return 0;
	/* Each family's search after the head: its ranges, or dflt alone. */
	at[L_S4] = len;
	s4 = ust_steer_search(prog + len, r4, n4, UST_STEER_TO_MEMBER, dflt);
	at[L_S6] = len + s4;
	if (!ust_bpf_assemble(head, len, at, prog))
		return 0;
	prog[at[L_DFLT]].k = dflt;
	return len + s4 + ust_steer_search(prog + len + s4, r6, n6, UST_STEER_TO_MEMBER, dflt);
}
