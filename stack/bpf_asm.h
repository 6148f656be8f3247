/* Classic BPF written with labels, for the programs ustcp builds at run
 * time (steer.c's steering program, link.c's exit keeper filter): an
 * instruction's jumps name labels, resolved once every instruction's
 * place is known, so that inserting one moves no hand-counted offset. */
#ifndef USTCP_BPF_ASM_H
#define USTCP_BPF_ASM_H

#include <linux/filter.h>
#include <stdbool.h>
#include <stdint.h>

/* Label 0: the next instruction (as a jump target), no label (as an
 * instruction's own). A program's labels are 1 up to its own count. */
#define UST_BPF_NEXT 0

struct ust_bpf_ins {
	uint16_t code;
	uint32_t k;     /* a BPF_JA's: the label it goes to */
	uint8_t jt, jf; /* labels */
	uint8_t at;     /* the label this instruction carries */
};

#define UST_BPF_I(c, k) { (c), (k), UST_BPF_NEXT, UST_BPF_NEXT, UST_BPF_NEXT }
#define UST_BPF_J(c, k, t, f) { (c), (k), (t), (f), UST_BPF_NEXT }
#define UST_BPF_AT(l, c, k) { (c), (k), UST_BPF_NEXT, UST_BPF_NEXT, (l) }
#define UST_BPF_GOTO(l) { BPF_JMP | BPF_JA, (l), UST_BPF_NEXT, UST_BPF_NEXT, UST_BPF_NEXT }

/* One step over an IPv6 extension header, A its type and X its offset
 * from base (the frame's offset of the header after the fixed one): to
 * label tcp if A is TCP's; on past a hop-by-hop, routing or destination
 * options header (A: the next one's type, X: its offset), as label l;
 * anything else to label other. M[0] holds the type while X moves. Four
 * in a row step over the sticky headers a socket sends (IPV6_HOPOPTS,
 * IPV6_RTHDRDSTOPTS, IPV6_RTHDR, IPV6_DSTOPTS). */
#define UST_BPF_EXT_STEP(l, base, tcp, other)                                                                 \
	UST_BPF_J(BPF_JMP | BPF_JEQ | BPF_K, 6, tcp, UST_BPF_NEXT),                                            \
		UST_BPF_J(BPF_JMP | BPF_JEQ | BPF_K, 0, l, UST_BPF_NEXT),                                      \
		UST_BPF_J(BPF_JMP | BPF_JEQ | BPF_K, 60, l, UST_BPF_NEXT),                                     \
		UST_BPF_J(BPF_JMP | BPF_JEQ | BPF_K, 43, l, other), UST_BPF_AT(l, BPF_LD | BPF_B | BPF_IND, (base)), \
		UST_BPF_I(BPF_ST, 0), UST_BPF_I(BPF_LD | BPF_B | BPF_IND, (base) + 1),                          \
		UST_BPF_I(BPF_ALU | BPF_ADD | BPF_K, 1), UST_BPF_I(BPF_ALU | BPF_LSH | BPF_K, 3),               \
		UST_BPF_I(BPF_ALU | BPF_ADD | BPF_X, 0), UST_BPF_I(BPF_MISC | BPF_TAX, 0),                      \
		UST_BPF_I(BPF_LD | BPF_W | BPF_MEM, 0)
/* The instructions of four such steps. */
#define UST_BPF_EXT_STEPS 48

/* Writes ins[0..n) into prog, its jumps resolved: at[label] is where each
 * label is, filled here for those the instructions carry; the caller
 * fills the others (a search appended after them, say) before, and
 * zeroes those it does not use. False, the program not to be used, when
 * a jump goes nowhere ahead (a label left 0, or one behind: classic BPF
 * jumps forward only) or a conditional one lies further than its 8-bit
 * offset reaches: a program grown past what its shape allows, which the
 * unit tests would show first. */
static inline bool ust_bpf_assemble(const struct ust_bpf_ins *ins, unsigned n, unsigned *at, struct sock_filter *prog)
{
	for (unsigned i = 0; i < n; i++)
		if (ins[i].at != UST_BPF_NEXT)
			at[ins[i].at] = i;
	for (unsigned i = 0; i < n; i++) {
		const struct ust_bpf_ins *h = &ins[i];
		unsigned t = h->jt == UST_BPF_NEXT ? i + 1 : at[h->jt], f = h->jf == UST_BPF_NEXT ? i + 1 : at[h->jf];

		if (h->code == (BPF_JMP | BPF_JA)) {
			if (at[h->k] < i + 1)
				return false;
			prog[i] = (struct sock_filter)BPF_STMT(h->code, at[h->k] - (i + 1));
		} else if (BPF_CLASS(h->code) == BPF_JMP) {
			if (t < i + 1 || f < i + 1 || t - (i + 1) > 255 || f - (i + 1) > 255)
				return false;
			prog[i] = (struct sock_filter)BPF_JUMP(h->code, h->k, (uint8_t)(t - (i + 1)), (uint8_t)(f - (i + 1)));
		} else {
			prog[i] = (struct sock_filter)BPF_STMT(h->code, h->k);
		}
	}
	return true;
}

#endif
