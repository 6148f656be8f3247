/* What one idle connection holds in ustcp's own memory, by structure, for
 * tests/bench/scale's breakdown: the sizes of the per-connection structures
 * and of the buffers a connection gets when it connects (an engine on a
 * dummy link, one connect). Prints "name bytes" lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../stackthread/stack_impl.h"
#include "tcp.h"
#include "tcp_impl.h"

static unsigned drop_output(void *ctx, struct ust_pkt *const *pkts, unsigned n)
{
	return n;
}

int main(void)
{
	struct ust_netif nif = { .addr = 0x0a090002, .mask = 0xffffff00, .mtu = 1500 };
	struct ust_stack st;
	struct ust_tcp tcp;
	struct ust_tcp_config cfg;
	struct ust_tcb *t;
	int err;

	if (ust_stack_init(&st, &nif, 64, drop_output, NULL) < 0)
		return 1;
	ust_tcp_default_config(&cfg);
	if (ust_tcp_init(&tcp, &st, &cfg) < 0)
		return 1;
	t = ust_tcp_create(&tcp, NULL, &err);
	if (!t || ust_tcp_connect(t, 0x0a090001, 9000, UST_SEC(1)) < 0)
		return 1;
	printf("struct_ust_tcb %zu\n", sizeof(struct ust_tcb));
	printf("struct_us_conn %zu\n", sizeof(struct us_conn));
	printf("struct_us_sock %zu\n", sizeof(struct us_sock));
	/* Beside the slot, touched only once TCP closed a connection the
	 * program still holds (or another process asked for its status). */
	printf("struct_us_last %zu\n", sizeof(struct us_last));
	/* One pointer each in the 4-tuple table (at one block per bucket),
	 * the timer heap, the stack's conns[] and the shim's fd table (two
	 * fds: app end and stack end). */
	printf("table_entries %zu\n", 4 * sizeof(void *) + 2 * sizeof(uint64_t));
	/* A TIME-WAIT the program let go of, kept as a record
	 * (stack/tcp_twrec.c), and its entries: the 4-tuple table and the
	 * heap of deadlines. */
	printf("struct_tcp_twrec %zu\n", sizeof(struct tcp_twrec));
	printf("twrec_entries %zu\n", 2 * sizeof(void *));
	printf("sndbuf_ring %u\n", t->sndbuf.cap);
	printf("rcvbuf_ring %u\n", t->rcvbuf.cap);
	ust_tcp_abort(t, UST_SEC(1));
	ust_tcp_destroy(&tcp);
	ust_stack_destroy(&st);
	return 0;
}
