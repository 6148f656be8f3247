/* rx_loop: the receive path of the network layer, without a device.
 *
 *   rx_loop [-t seconds] [-r rounds] [-n frames] [-w frames] [-b batch] [-k kind] [-l]
 *
 * A ust_stack in Ethernet mode (10.9.0.2/24) whose output function only
 * counts frames is fed pre-built frames of one kind at a time through
 * ust_stack_input, on a virtual clock, in batches of UST_LINK_BATCH (32, or
 * -b); after each batch it flushes, runs the timers and flushes again, as the
 * loop does after each receive. -b 1 is a closed-loop ping flood's case,
 * where each wake-up of the loop brings one frame. The neighbour 10.9.0.1 is put in the ARP
 * cache first by an ARP request from it, so echo replies go out at once. The
 * stack also holds 2001:db8::2/64, through DAD before the kinds run, and
 * 2001:db8::1 is put in the cache by a neighbour solicitation from it, so
 * that the IPv6 kinds compare with the IPv4 ones.
 *
 * For each kind it prints frames/s and ns/frame (CLOCK_MONOTONIC): by
 * default the best and the median of 5 rounds over about 1 s per kind (-t
 * seconds, -r rounds); with -n, exactly that many frames in one round. Each
 * kind first runs -w frames (default 16384) untimed to warm the caches; for
 * instruction counting under callgrind give -w 0 and collect run_frames:
 *
 *   valgrind --tool=callgrind --toggle-collect=run_frames rx_loop -k echo-56 -n 20000 -w 0
 *
 * then "Collected" / 20000 is instructions per frame. Where the CPU lets a process count its own instructions
 * (perf_event_open), instructions per frame are printed too.
 *
 * Each kind is checked to have done what it is meant to (a reply per frame,
 * or a drop under the expected counter); a kind that did not is an error
 * (exit 1), since its figure would measure something else. The figures
 * themselves are reported, never judged. */
#include <errno.h>
#include <getopt.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "link.h"
#include "stack.h"

#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))
#define OUR_IP IP4(10, 9, 0, 2)
#define PEER_IP IP4(10, 9, 0, 1)
#define OTHER_IP IP4(10, 9, 0, 77)
#define CHUNK 16384u /* frames between two looks at the clock */

static const uint8_t our_mac[UST_ETH_ALEN] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x02 };
static const uint8_t peer_mac[UST_ETH_ALEN] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
static const struct ust_ip6 our6 = { .b = { 0x20, 0x01, 0x0d, 0xb8, [15] = 2 } };
static const struct ust_ip6 peer6 = { .b = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 } };
static const struct ust_ip6 other6 = { .b = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x77 } };

enum expect { EXPECT_REPLY, EXPECT_DROP };

struct kind {
	const char *name;
	const char *what;
	enum expect expect;
	enum ust_drop drop;        /* for EXPECT_DROP */
	enum ust_event event;      /* for EXPECT_REPLY: counted once per frame */
	size_t len;
	uint8_t frame[UST_ETH_HLEN + 1500] __attribute__((aligned(64)));
};

struct bench {
	struct ust_stack st;
	ust_time now;
	unsigned batch;            /* frames between two flushes */
	uint64_t out_frames, out_bytes;
};

static unsigned count_output(void *ctx, struct ust_pkt *const *pkts, unsigned n)
{
	struct bench *b = ctx;

	for (unsigned i = 0; i < n; i++)
		b->out_bytes += pkts[i]->len;
	b->out_frames += n;
	return n;
}

/* ---- frames ---- */

static size_t build_arp_request(uint8_t *f)
{
	struct ust_arp arp = { .op = UST_ARP_REQUEST, .spa = PEER_IP, .tpa = OUR_IP };

	memset(f, 0, 60);
	memcpy(arp.sha, peer_mac, UST_ETH_ALEN);
	ust_eth_build(f, ust_eth_broadcast, peer_mac, UST_ETHERTYPE_ARP);
	ust_arp_build(f + UST_ETH_HLEN, &arp);
	return 60; /* padded to Ethernet's minimum, as on the wire */
}

/* An IPv4 datagram from the peer to dst carrying an ICMP echo request with
 * data_len bytes of data (ping -s data_len), or, for proto other than ICMP,
 * data_len + 8 bytes of payload. */
static size_t build_ip(uint8_t *f, uint32_t dst, uint8_t proto, size_t data_len, uint16_t seq)
{
	uint8_t *ip = f + UST_ETH_HLEN, *l4 = ip + UST_IPV4_HLEN;
	size_t l4_len = UST_ICMP_HLEN + data_len;

	ust_eth_build(f, our_mac, peer_mac, UST_ETHERTYPE_IPV4);
	for (size_t i = 0; i < data_len; i++)
		l4[8 + i] = (uint8_t)(i + 8);
	if (proto == UST_IPPROTO_ICMP) {
		ust_icmp_build(l4, UST_ICMP_ECHO_REQUEST, 0, (uint32_t)0x4242 << 16 | seq, data_len);
	} else {
		/* UDP 40000 -> 9, length, no checksum (it is never looked at) */
		ust_put16(l4, 40000);
		ust_put16(l4 + 2, 9);
		ust_put16(l4 + 4, (uint16_t)l4_len);
		ust_put16(l4 + 6, 0);
	}
	ust_ipv4_build(ip, PEER_IP, dst, proto, (uint16_t)(UST_IPV4_HLEN + l4_len), seq, 64, UST_IP_DF);
	return UST_ETH_HLEN + UST_IPV4_HLEN + l4_len;
}

/* An IPv6 datagram from the peer to dst carrying an ICMPv6 message of type
 * with data_len bytes of data after its header; hop is its hop limit. */
static size_t build_ip6(uint8_t *f, const struct ust_ip6 *dst, uint8_t type, const uint8_t *data, size_t data_len,
			uint8_t hop)
{
	uint8_t *ip = f + UST_ETH_HLEN, *l4 = ip + UST_IPV6_HLEN;
	size_t l4_len = UST_ICMP6_HLEN + data_len;

	ust_eth_build(f, our_mac, peer_mac, UST_ETHERTYPE_IPV6);
	memcpy(l4 + UST_ICMP6_HLEN, data, data_len);
	ust_icmp6_build(l4, type, 0, type == UST_ICMP6_ECHO_REQUEST ? 0x42420001u : 0, data_len, &peer6, dst);
	ust_ipv6_build(ip, &peer6, dst, UST_IPPROTO_ICMPV6, 0, (uint16_t)l4_len, hop);
	return UST_ETH_HLEN + UST_IPV6_HLEN + l4_len;
}

/* The peer's solicitation for our IPv6 address, with its MAC: puts it in
 * the neighbour cache (sent to our address, which a solicitation may be). */
static uint8_t ns_frame[128];
static size_t ns_len;

static struct kind kinds[] = {
	{ .name = "arp-request", .what = "ARP request for us (answered)",
	  .expect = EXPECT_REPLY, .event = UST_EV_ARP_REQUESTS_IN },
	{ .name = "echo-56", .what = "ICMP echo request, ping -s 56 (answered)",
	  .expect = EXPECT_REPLY, .event = UST_EV_ICMP_ECHO_IN },
	{ .name = "echo-1400", .what = "ICMP echo request, ping -s 1400 (answered)",
	  .expect = EXPECT_REPLY, .event = UST_EV_ICMP_ECHO_IN },
	{ .name = "ip-not-for-us", .what = "IPv4 for 10.9.0.77 (dropped)",
	  .expect = EXPECT_DROP, .drop = UST_DROP_IP_NOT_FOR_US },
	{ .name = "udp-no-handler", .what = "IPv4 protocol 17, no handler (dropped)",
	  .expect = EXPECT_DROP, .drop = UST_DROP_IP_PROTO },
	{ .name = "ip-bad-csum", .what = "1500-byte datagram, bad IP checksum (dropped)",
	  .expect = EXPECT_DROP, .drop = UST_DROP_IP_CSUM },
	{ .name = "echo6-56", .what = "ICMPv6 echo request, ping -6 -s 56 (answered)",
	  .expect = EXPECT_REPLY, .event = UST_EV_ICMP6_ECHO_IN },
	{ .name = "echo6-1400", .what = "ICMPv6 echo request, ping -6 -s 1400 (answered)",
	  .expect = EXPECT_REPLY, .event = UST_EV_ICMP6_ECHO_IN },
	{ .name = "ip6-not-for-us", .what = "IPv6 for 2001:db8::77 (dropped)",
	  .expect = EXPECT_DROP, .drop = UST_DROP_IP6_NOT_FOR_US },
};

static void build_kinds(void)
{
	kinds[0].len = build_arp_request(kinds[0].frame);
	kinds[1].len = build_ip(kinds[1].frame, OUR_IP, UST_IPPROTO_ICMP, 56, 1);
	kinds[2].len = build_ip(kinds[2].frame, OUR_IP, UST_IPPROTO_ICMP, 1400, 2);
	kinds[3].len = build_ip(kinds[3].frame, OTHER_IP, UST_IPPROTO_ICMP, 56, 3);
	kinds[4].len = build_ip(kinds[4].frame, OUR_IP, UST_IPPROTO_UDP, 56, 4);
	kinds[5].len = build_ip(kinds[5].frame, OUR_IP, UST_IPPROTO_ICMP,
				1500 - UST_IPV4_HLEN - UST_ICMP_HLEN, 5);
	kinds[5].frame[UST_ETH_HLEN + 10] ^= 0x5a; /* spoil the header checksum */
	{
		uint8_t data[1400], nd[24];

		for (size_t i = 0; i < sizeof(data); i++)
			data[i] = (uint8_t)(i + 8);
		kinds[6].len = build_ip6(kinds[6].frame, &our6, UST_ICMP6_ECHO_REQUEST, data, 56, 64);
		kinds[7].len = build_ip6(kinds[7].frame, &our6, UST_ICMP6_ECHO_REQUEST, data, 1400, 64);
		kinds[8].len = build_ip6(kinds[8].frame, &other6, UST_ICMP6_ECHO_REQUEST, data, 56, 64);
		memcpy(nd, our6.b, 16);
		nd[16] = UST_ND_OPT_SOURCE_LLADDR;
		nd[17] = 1;
		memcpy(nd + 18, peer_mac, UST_ETH_ALEN);
		ns_len = build_ip6(ns_frame, &our6, UST_ND_NEIGHBOR_SOLICIT, nd, sizeof(nd), 255);
	}
}

/* ---- the measured loop ---- */

/* Feeds n frames of kind k in batches, as the link and the loop do. Not
 * inlined, so that callgrind can collect exactly this (--toggle-collect). */
void run_frames(struct bench *b, const struct kind *k, uint64_t n);
__attribute__((noinline, noclone)) void run_frames(struct bench *b, const struct kind *k, uint64_t n)
{
	while (n) {
		unsigned m = n < b->batch ? (unsigned)n : b->batch;

		for (unsigned i = 0; i < m; i++)
			ust_stack_input(&b->st, k->frame, k->len, 0, b->now);
		/* ust_loop_kick: flush, timers, flush */
		ust_stack_flush(&b->st);
		ust_stack_timers(&b->st, b->now);
		ust_stack_flush(&b->st);
		b->now += 1; /* a microsecond per batch */
		n -= m;
	}
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Instructions in user space, where the CPU lets us count them. */
static int insn_fd = -1;

static void insn_open(void)
{
	struct perf_event_attr a;

	memset(&a, 0, sizeof(a));
	a.type = PERF_TYPE_HARDWARE;
	a.size = sizeof(a);
	a.config = PERF_COUNT_HW_INSTRUCTIONS;
	a.exclude_kernel = 1;
	a.exclude_hv = 1;
	insn_fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
}

static uint64_t insn_read(void)
{
	uint64_t v = 0;

	if (insn_fd >= 0 && read(insn_fd, &v, sizeof(v)) != sizeof(v))
		v = 0;
	return v;
}

/* ARP request from the peer: (re)confirms it in the cache, so that its
 * entry never goes stale however long the run. */
static void refresh_neighbour(struct bench *b)
{
	const struct ust_neigh *n;

	ust_stack_input(&b->st, kinds[0].frame, kinds[0].len, 0, b->now);
	ust_stack_flush(&b->st);
	n = ust_arp_lookup(&b->st, PEER_IP);
	if (!n || n->state != UST_NEIGH_REACHABLE) {
		fprintf(stderr, "rx_loop: the ARP request did not put 10.9.0.1 in the cache\n");
		exit(1);
	}
}

/* DAD for our IPv6 addresses, then the peer's solicitation: 2001:db8::2
 * is ours and 2001:db8::1 known before any kind runs. */
static void ipv6_ready(struct bench *b)
{
	const struct ust_neigh *n;

	ust_stack_timers(&b->st, b->now);
	b->now += UST_SEC(1);
	ust_stack_timers(&b->st, b->now);
	ust_stack_input(&b->st, ns_frame, ns_len, 0, b->now);
	ust_stack_flush(&b->st);
	n = ust_neigh_find(&b->st, &peer6);
	if (!ust_ip6_is_ours(&b->st, &our6) || !n || n->state != UST_NEIGH_REACHABLE) {
		fprintf(stderr, "rx_loop: 2001:db8::2 did not pass DAD, or 2001:db8::1 is not in the cache\n");
		exit(1);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

#define ROUNDS_MAX 64

static int run_kind(struct bench *b, const struct kind *k, double seconds, unsigned rounds,
		    uint64_t fixed, uint64_t warm)
{
	struct ust_counters before;
	uint64_t out_before, frames = 0, insn = 0;
	double nsf[ROUNDS_MAX];
	unsigned r;

	refresh_neighbour(b);
	if (warm)
		run_frames(b, k, warm); /* warm the caches and the branch predictors */
	before = b->st.ctr;
	out_before = b->out_frames;

	for (r = 0; r < rounds; r++) {
		uint64_t n = 0, i0 = insn_read();
		double t0 = mono(), t;

		if (fixed) {
			run_frames(b, k, fixed);
			n = fixed;
			t = mono();
		} else {
			do {
				run_frames(b, k, CHUNK);
				n += CHUNK;
				t = mono();
			} while (t - t0 < seconds / rounds);
		}
		insn += insn_read() - i0;
		nsf[r] = (t - t0) * 1e9 / (double)n;
		frames += n;
		refresh_neighbour(b);
		before.event[UST_EV_ARP_REQUESTS_IN]++;
		before.event[UST_EV_RX_FRAMES]++;
		out_before++;
	}

	/* Did each frame do what this kind is for? */
	{
		uint64_t out = b->out_frames - out_before;
		uint64_t rx = b->st.ctr.event[UST_EV_RX_FRAMES] - before.event[UST_EV_RX_FRAMES];
		uint64_t got = k->expect == EXPECT_REPLY ? b->st.ctr.event[k->event] - before.event[k->event]
							 : b->st.ctr.drop[k->drop] - before.drop[k->drop];
		uint64_t want_out = k->expect == EXPECT_REPLY ? frames : 0;

		if (rx != frames || got != frames || out != want_out) {
			fprintf(stderr,
				"rx_loop: %s: %llu frames fed, %llu received, %llu %s, %llu sent (expected %llu)\n",
				k->name, (unsigned long long)frames, (unsigned long long)rx,
				(unsigned long long)got,
				k->expect == EXPECT_REPLY ? ust_event_name(k->event) : ust_drop_name(k->drop),
				(unsigned long long)out, (unsigned long long)want_out);
			return -1;
		}
	}

	qsort(nsf, rounds, sizeof(nsf[0]), cmp_double);
	printf("%-15s %5zu B %12.0f frames/s %8.1f ns/frame  median %8.1f ns/frame",
	       k->name, k->len, 1e9 / nsf[0], nsf[0], nsf[rounds / 2]);
	if (insn_fd >= 0 && insn)
		printf("  %7.0f instructions/frame", (double)insn / (double)frames);
	printf("  (batch %u, %llu frames; %s)\n", b->batch, (unsigned long long)frames, k->what);
	fflush(stdout);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: rx_loop [-t seconds] [-r rounds] [-n frames] [-w frames] [-b batch]\n"
			"               [-k kind] [-l]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static struct bench b;
	struct ust_netif nif = { .l3 = false, .addr = OUR_IP, .mask = 0xffffff00u, .mtu = 1500,
				 .has_addr6 = true, .addr6 = our6, .prefix6 = 64 };
	const char *only = NULL;
	double seconds = 1.0;
	unsigned rounds = 0; /* 0: 5, or 1 with -n */
	uint64_t fixed = 0, warm = CHUNK;
	int c, status = 0, found = 0;

	b.batch = UST_LINK_BATCH;
	while ((c = getopt(argc, argv, "b:k:ln:r:t:w:")) != -1) {
		switch (c) {
		case 'b':
			b.batch = (unsigned)strtoul(optarg, NULL, 10);
			if (b.batch == 0 || b.batch > 4096)
				usage();
			break;
		case 'k': only = optarg; break;
		case 'l':
			for (size_t i = 0; i < UST_ARRAY_SIZE(kinds); i++)
				printf("%s\n", kinds[i].name);
			return 0;
		case 'n': fixed = strtoull(optarg, NULL, 10); break;
		case 'r':
			rounds = (unsigned)strtoul(optarg, NULL, 10);
			if (!rounds)
				usage();
			break;
		case 't': seconds = strtod(optarg, NULL); break;
		case 'w': warm = strtoull(optarg, NULL, 10); break;
		default: usage();
		}
	}
	if (!rounds)
		rounds = fixed ? 1 : 5;
	if (optind != argc || rounds > ROUNDS_MAX || !(seconds > 0))
		usage();

	memcpy(nif.mac, our_mac, UST_ETH_ALEN);
	if (ust_stack_init(&b.st, &nif, 512, count_output, &b) < 0) {
		fprintf(stderr, "rx_loop: out of memory\n");
		return 1;
	}
	b.now = UST_SEC(1000);
	build_kinds();
	ipv6_ready(&b);
	insn_open();

	if (!only)
		printf("rx_loop: ust_stack_input, batches of %u, one hot frame buffer; %s\n", b.batch,
		       fixed ? "fixed frame count" : "best and median of the rounds");
	for (size_t i = 0; i < UST_ARRAY_SIZE(kinds); i++) {
		if (only && strcmp(only, kinds[i].name) != 0)
			continue;
		found = 1;
		if (run_kind(&b, &kinds[i], seconds, rounds, fixed, warm) < 0)
			status = 1;
	}
	if (!found) {
		fprintf(stderr, "rx_loop: no kind \"%s\" (rx_loop -l lists them)\n", only);
		status = 2;
	}
	ust_stack_destroy(&b.st);
	return status;
}
