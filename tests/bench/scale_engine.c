/* The engine alone at a count the fd limit of a test machine never lets the
 * library reach: N passive opens (SYN, SYN-ACK, ACK, accept, keepalive on)
 * to one listener from N different peers' 4-tuples, on a virtual clock and
 * an L3 link whose output is read back, then N aborts. Prints "key value"
 * lines for tests/bench/scale: the wall time of the first and of the last
 * thousand opens (nothing per operation may grow with the count), the
 * aborts', the 4-tuple table's buckets and the timer heap's room at the
 * end, and the engine's memory per connection (VmRSS).
 *
 *   scale_engine [-n N] [-b BYTES] [-c]
 *
 * N defaults to 100000; -b sets every buffer size (tcp_rmem and tcp_wmem's
 * three) to BYTES, to tell the buffers' memory from the rest. With -c the
 * connections end in TIME-WAIT instead (our close, the peer's ACK and FIN,
 * our ACK): the heap's bytes in use per connection while open and per
 * TIME-WAIT (malloc's count: RSS keeps what the blocks freed), then the
 * wall time of their ends, 2 MSL later. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "counters.h"
#include "csum.h"
#include "stack.h"
#include "tcp.h"
#include "wire.h"

#define OUR_ADDR 0x0a090002u  /* 10.9.0.2 */
#define OUR_PORT 80
#define STEP 1000

static struct ust_stack st;
static uint32_t synack_seq;   /* the last SYN-ACK's sequence number */
static unsigned synacks;
static uint32_t fin_seq;      /* the last FIN's */
static unsigned fins;

static unsigned read_output(void *ctx, struct ust_pkt *const *pkts, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *tcp = pkts[i]->data + UST_IPV4_HLEN;
		if (pkts[i]->len >= UST_IPV4_HLEN + 20 && (tcp[13] & 0x12) == 0x12) {
			synack_seq = ust_get32(tcp + 4);
			synacks++;
		}
		if (pkts[i]->len >= UST_IPV4_HLEN + 20 && (tcp[13] & 0x01)) {
			fin_seq = ust_get32(tcp + 4);
			fins++;
		}
	}
	return n;
}

/* One segment from raddr:rport to us, in an IPv4 datagram; a SYN carries
 * MSS 1460. */
static void segment_in(uint32_t raddr, uint16_t rport, uint32_t seq, uint32_t ack, uint8_t flags,
		       ust_time now)
{
	uint8_t pkt[UST_IPV4_HLEN + 24];
	uint8_t *tcp = pkt + UST_IPV4_HLEN;
	size_t tlen = flags & 0x02 ? 24 : 20;
	uint32_t sum;

	memset(pkt, 0, sizeof(pkt));
	ust_put16(tcp, rport);
	ust_put16(tcp + 2, OUR_PORT);
	ust_put32(tcp + 4, seq);
	ust_put32(tcp + 8, ack);
	tcp[12] = (uint8_t)(tlen / 4 << 4);
	tcp[13] = flags;
	ust_put16(tcp + 14, 65535);
	if (flags & 0x02) {
		tcp[20] = 2;
		tcp[21] = 4;
		ust_put16(tcp + 22, 1460);
	}
	sum = ust_csum_pseudo(raddr, OUR_ADDR, UST_IPPROTO_TCP, (uint16_t)tlen);
	ust_put16(tcp + 16, ust_csum_fold(ust_csum_add(sum, tcp, tlen)));
	ust_ipv4_build(pkt, raddr, OUR_ADDR, UST_IPPROTO_TCP, (uint16_t)(UST_IPV4_HLEN + tlen), 1, 64, 0);
	ust_stack_input(&st, pkt, UST_IPV4_HLEN + tlen, 0, now);
	ust_stack_flush(&st);
}

static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, rss = 0;

	if (f) {
		if (fscanf(f, "%ld %ld", &size, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* -c: every connection closes first and ends in TIME-WAIT; the heap's
 * bytes per connection open and per TIME-WAIT, and their ends. */
static int time_waits(struct ust_tcp *tcp, struct ust_tcb *l, struct ust_tcb **conns, unsigned opened,
		      ust_time now, size_t heap0)
{
	double t0;
	unsigned i;

	printf("engine_heap_per_conn_b %.0f\n", opened ? (double)(mallinfo2().uordblks - heap0) / opened : 0.0);
	for (i = 0; i < opened; i++) {
		unsigned before = fins;

		now += 10;
		ust_tcp_close(conns[i], now);
		ust_stack_flush(&st);
		if (fins == before)
			break;
		segment_in(0x0a010001u + i / 60000, (uint16_t)(1024 + i % 60000), 1001, fin_seq + 1, 0x11, now);
	}
	ust_tcp_timers(tcp, now); /* the sweep: records */
	printf("engine_time_waits %u\n", tcp->ntw);
	printf("engine_tw_records %u\n", tcp->ntwrec);
	printf("engine_heap_per_time_wait_b %.0f\n",
	       opened ? (double)(mallinfo2().uordblks - heap0) / opened : 0.0);
	t0 = mono_ms();
	ust_tcp_timers(tcp, now + UST_SEC(61));
	printf("engine_time_wait_end_s %.3f\n", (mono_ms() - t0) / 1e3);
	printf("engine_left %u\n", ust_tcp_count(tcp));
	ust_tcp_close(l, now);
	ust_tcp_destroy(tcp);
	ust_stack_destroy(&st);
	free(conns);
	return i == opened ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct ust_netif nif = { .l3 = true, .addr = OUR_ADDR, .mask = 0xff000000u, .mtu = 1500 };
	struct ust_tcp tcp;
	struct ust_tcp_config cfg;
	struct ust_tcb *l, **conns;
	unsigned n = 100000, opened = 0, bufsize = 0;
	bool tw = false;
	size_t heap0;
	ust_time now = UST_SEC(1);
	double t0, t_first = 0, t_mark = 0, t_last = 0, t_open, t_abort;
	long rss0;
	int err, opt;

	while ((opt = getopt(argc, argv, "n:b:c")) != -1) {
		if (opt == 'n')
			n = (unsigned)strtoul(optarg, NULL, 0);
		else if (opt == 'b')
			bufsize = (unsigned)strtoul(optarg, NULL, 0);
		else if (opt == 'c')
			tw = true;
		else
			return 2;
	}
	conns = calloc(n, sizeof(*conns));
	if (!conns || ust_stack_init(&st, &nif, 256, read_output, NULL) < 0)
		return 1;
	ust_tcp_default_config(&cfg);
	for (unsigned i = 0; bufsize && i < 3; i++)
		cfg.rmem[i] = cfg.wmem[i] = bufsize;
	if (ust_tcp_init(&tcp, &st, &cfg) < 0)
		return 1;
	l = ust_tcp_create(&tcp, NULL, &err);
	if (!l || ust_tcp_bind(l, OUR_PORT, false) < 0 || ust_tcp_listen(l, 128) < 0)
		return 1;
	rss0 = rss_kb();
	heap0 = mallinfo2().uordblks;
	t0 = t_mark = mono_ms();
	for (unsigned i = 0; i < n; i++) {
		/* on-link peers 10.1.0.1, 10.1.0.2, ...: one per 60000 ports */
		uint32_t raddr = 0x0a010001u + i / 60000;
		uint16_t rport = (uint16_t)(1024 + i % 60000);
		unsigned before = synacks;

		now += 10;
		segment_in(raddr, rport, 1000, 0, 0x02, now);
		if (synacks == before)
			break;
		segment_in(raddr, rport, 1001, synack_seq + 1, 0x10, now);
		conns[i] = ust_tcp_accept(l, &conns[i], &err);
		if (!conns[i])
			break;
		ust_tcp_setopt(conns[i], UST_TCP_OPT_KEEPALIVE, 1);
		opened++;
		if (opened % STEP == 0) {
			double t = mono_ms();
			if (opened == STEP)
				t_first = t - t_mark;
			t_last = t - t_mark;
			t_mark = t;
		}
	}
	t_open = mono_ms() - t0;
	if (opened < n)
		ust_counters_print(&st.ctr, stderr);
	printf("engine_opened %u\n", opened);
	printf("engine_open_ms_first %.1f\n", t_first);
	printf("engine_open_ms_last %.1f\n", t_last);
	printf("engine_open_s %.3f\n", t_open / 1e3);
	printf("engine_rss_per_conn_kb %.2f\n", opened ? (double)(rss_kb() - rss0) / opened : 0.0);
	printf("engine_hash_buckets %u\n", tcp.hash_size);
	printf("engine_heap_room %u\n", tcp.heap_cap);
	if (tw)
		return time_waits(&tcp, l, conns, opened, now, heap0);
	t0 = mono_ms();
	for (unsigned i = 0; i < opened; i++) {
		now += 10;
		ust_tcp_abort(conns[i], now);
		ust_stack_flush(&st);
	}
	t_abort = mono_ms() - t0;
	printf("engine_abort_s %.3f\n", t_abort / 1e3);
	printf("engine_left %u\n", ust_tcp_count(&tcp));
	ust_tcp_close(l, now);
	ust_tcp_destroy(&tcp);
	ust_stack_destroy(&st);
	free(conns);
	return opened == n ? 0 : 1;
}
