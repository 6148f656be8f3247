/* The steering group's program (steer.h). */
#include <linux/if_ether.h>

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

unsigned ust_steer_program(const struct ust_steer_range *r, unsigned n, unsigned dflt,
			   struct sock_filter prog[UST_STEER_PROG_MAX])
{
	/* The frame from its IP header: the fanout hook runs before
	 * packet_rcv pushes the link header back. The EtherType is the
	 * skb's protocol, an ancillary load. Labels: DFLT 24, BROKER 25,
	 * SEARCH 26. */
	const struct sock_filter head[] = {
		INS(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_PROTOCOL)), /* 0 */
		JMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_ARP, 23, 0),  /* 1: ARP: the broker */
		JMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 0, 21),   /* 2: not IPv4: dflt */
		INS(BPF_LD | BPF_H | BPF_ABS, 6),                  /* 3: flags, fragment offset */
		JMP(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, 19, 0),    /* 4: a later fragment: dflt */
		INS(BPF_LDX | BPF_B | BPF_MSH, 0),                 /* 5: X = IP header length */
		INS(BPF_LD | BPF_B | BPF_ABS, 9),                  /* 6: protocol */
		JMP(BPF_JMP | BPF_JEQ | BPF_K, 6, 14, 0),          /* 7: TCP: 22 */
		JMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 15),          /* 8: ICMP, else dflt */
		INS(BPF_LD | BPF_B | BPF_IND, 0),                  /* 9: ICMP type */
		JMP(BPF_JMP | BPF_JEQ | BPF_K, 3, 2, 0),           /* 10: unreachable */
		JMP(BPF_JMP | BPF_JEQ | BPF_K, 11, 1, 0),          /* 11: time exceeded */
		JMP(BPF_JMP | BPF_JEQ | BPF_K, 12, 0, 11),         /* 12: parameter problem, else dflt */
		INS(BPF_LD | BPF_B | BPF_IND, 8 + 9),              /* 13: the quoted protocol */
		JMP(BPF_JMP | BPF_JEQ | BPF_K, 6, 0, 9),           /* 14: TCP, else dflt */
		INS(BPF_LD | BPF_B | BPF_IND, 8),                  /* 15: the quoted header's length */
		INS(BPF_ALU | BPF_AND | BPF_K, 0xf),               /* 16 */
		INS(BPF_ALU | BPF_LSH | BPF_K, 2),                 /* 17 */
		INS(BPF_ALU | BPF_ADD | BPF_X, 0),                 /* 18 */
		INS(BPF_MISC | BPF_TAX, 0),                        /* 19 */
		INS(BPF_LD | BPF_H | BPF_IND, 8),                  /* 20: the quoted source port: ours */
		INS(BPF_JMP | BPF_JA, 4),                          /* 21: to SEARCH */
		INS(BPF_LD | BPF_H | BPF_IND, 2),                  /* 22: TCP destination port */
		INS(BPF_JMP | BPF_JA, 2),                          /* 23: to SEARCH */
		INS(BPF_RET | BPF_K, dflt),                        /* 24: DFLT */
		INS(BPF_RET | BPF_K, UST_STEER_BROKER),            /* 25: BROKER */
	};
	unsigned len = UST_ARRAY_SIZE(head);

	if (n > UST_STEER_RANGES_MAX)
		return 0;
	for (unsigned i = 0; i < len; i++)
		prog[i] = head[i];
	return len + ust_steer_search(prog + len, r, n, UST_STEER_TO_MEMBER, dflt);
}
