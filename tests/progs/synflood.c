/* A SYN flood for tests and benchmarks, bounded in count, rate and time:
 * SYNs to DST:PORT from random (spoofed) sources in SRC/PREFIX, random
 * ports and ISNs, with the options a Linux client sends (mss 1460, or
 * 1440 over IPv6, sackOK, TS, nop, wscale 7), through a raw IP socket in
 * batches (sendmmsg). DST and SRC are both IPv4 or both IPv6. Run it only
 * inside a test's own network namespace; the answers go to addresses
 * nobody holds.
 *
 *     synflood DST PORT SRC/PREFIX RATE COUNT SECONDS
 *
 * sends at most COUNT SYNs at RATE per second (0: as fast as it can), and
 * stops after SECONDS in any case. Prints "sent N seconds S rate R". The
 * prefix is 8..30 bits for IPv4, 32..120 for IPv6. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define TCP_LEN (20 + 20)          /* TCP, options */
#define SYN_LEN (20 + TCP_LEN)     /* IPv4 */
#define SYN6_LEN (40 + TCP_LEN)    /* IPv6 */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* xorshift64*: fast, and enough to scatter sources, ports and ISNs. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

static uint32_t sum16(const uint8_t *p, unsigned len, uint32_t sum)
{
	for (unsigned i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p + 2, (uint16_t)v); }

/* The TCP SYN at th from src to dst:port; ph: the pseudo-header's sum. */
static void build_tcp(uint8_t *th, uint16_t port, uint16_t mss, uint32_t ph)
{
	/* mss, sackOK, TS val ecr 0, nop, wscale 7 */
	static const uint8_t opts[20] = { 2, 4, 0, 0, 4, 2, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 3, 7 };

	put16(th, (uint16_t)(1024 + rnd() % 64000));
	put16(th + 2, port);
	put32(th + 4, rnd());
	th[12] = (40 / 4) << 4;
	th[13] = 0x02; /* SYN */
	put16(th + 14, 64240);
	memcpy(th + 20, opts, sizeof(opts));
	put16(th + 22, mss);
	put32(th + 28, rnd());
	put16(th + 16, fold(sum16(th, TCP_LEN, ph + 6 + TCP_LEN)));
}

/* One SYN from a random source in net/mask to dst:port. */
static void build_syn(uint8_t *b, uint32_t net, uint32_t mask, uint32_t dst, uint16_t port)
{
	uint32_t host = rnd() & ~mask, src;

	if (host == 0 || host == ~mask)
		host = 1;
	src = net | host;
	memset(b, 0, SYN_LEN);
	b[0] = 0x45;
	put16(b + 2, SYN_LEN);
	put16(b + 4, (uint16_t)rnd());
	b[6] = 0x40; /* DF */
	b[8] = 64;
	b[9] = 6;
	put32(b + 12, src);
	put32(b + 16, dst);
	put16(b + 10, fold(sum16(b, 20, 0)));
	build_tcp(b + 20, port, 1460, sum16(b + 12, 8, 0));
}

/* The IPv6 twin: the source's bits past prefix random (never all zero,
 * the subnet-router anycast address). */
static void build_syn6(uint8_t *b, const uint8_t net[16], unsigned prefix, const uint8_t dst[16],
		       uint16_t port)
{
	uint8_t *src = b + 8;
	bool zero = true;

	memset(b, 0, SYN6_LEN);
	b[0] = 0x60;
	put16(b + 4, TCP_LEN);
	b[6] = 6;
	b[7] = 64;
	memcpy(src, net, 16);
	for (unsigned i = prefix / 8; i < 16; i++) {
		uint8_t keep = i == prefix / 8 ? (uint8_t)(0xff00 >> (prefix % 8)) : 0;

		src[i] = (uint8_t)((src[i] & keep) | (rnd() & ~keep));
		zero = zero && !(src[i] & ~keep);
	}
	if (zero)
		src[15] |= 1;
	memcpy(b + 24, dst, 16);
	build_tcp(b + 40, port, 1440, sum16(b + 8, 32, 0));
}

int main(int argc, char **argv)
{
	union {
		struct sockaddr_in v4;
		struct sockaddr_in6 v6;
	} to;
	static uint8_t bufs[BATCH][SYN6_LEN];
	struct iovec iov[BATCH];
	struct mmsghdr msgs[BATCH];
	char net_s[64], *slash;
	unsigned prefix;
	uint32_t net = 0, mask = 0, dst = 0;
	uint8_t net6[16], dst6[16];
	double rate, secs, start, elapsed;
	unsigned long count, sent = 0;
	uint16_t port;
	bool v6;
	int fd;

	if (argc != 7) {
		fprintf(stderr, "usage: synflood DST PORT SRC/PREFIX RATE COUNT SECONDS\n");
		return 2;
	}
	v6 = strchr(argv[1], ':') != NULL;
	snprintf(net_s, sizeof(net_s), "%s", argv[3]);
	slash = strchr(net_s, '/');
	prefix = slash ? (unsigned)atoi(slash + 1) : v6 ? 128 : 32;
	if (slash)
		*slash = 0;
	memset(&to, 0, sizeof(to));
	if (v6) {
		if (inet_pton(AF_INET6, argv[1], dst6) != 1 || inet_pton(AF_INET6, net_s, net6) != 1 ||
		    prefix < 32 || prefix > 120) {
			fprintf(stderr, "synflood: bad IPv6 address or prefix (32..120)\n");
			return 2;
		}
		to.v6.sin6_family = AF_INET6;
		memcpy(&to.v6.sin6_addr, dst6, 16);
	} else {
		if (inet_pton(AF_INET, argv[1], &to.v4.sin_addr) != 1 || inet_pton(AF_INET, net_s, &net) != 1 ||
		    prefix < 8 || prefix > 30) {
			fprintf(stderr, "synflood: bad address or prefix (8..30)\n");
			return 2;
		}
		to.v4.sin_family = AF_INET;
		dst = ntohl(to.v4.sin_addr.s_addr);
		mask = ~0u << (32 - prefix);
		net = ntohl(net) & mask;
	}
	port = (uint16_t)atoi(argv[2]);
	rate = atof(argv[4]);
	count = strtoul(argv[5], NULL, 10);
	secs = atof(argv[6]);
	rng_state ^= (uint64_t)getpid() << 20 ^ (uint64_t)(now_s() * 1e6);
	/* IPPROTO_RAW: the header is ours (IP_HDRINCL, and its IPv6 twin). */
	fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (fd < 0) {
		perror("synflood: socket");
		return 1;
	}
	for (unsigned i = 0; i < BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = v6 ? SYN6_LEN : SYN_LEN;
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_name = &to;
		msgs[i].msg_hdr.msg_namelen = v6 ? sizeof(to.v6) : sizeof(to.v4);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	start = now_s();
	while (sent < count) {
		unsigned n = count - sent < BATCH ? (unsigned)(count - sent) : BATCH;
		double t = now_s() - start, due;
		int r;

		if (t >= secs)
			break;
		/* Paced: the batch waits for its time at RATE. */
		due = rate > 0 ? (double)sent / rate : 0;
		if (due > t) {
			struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)((due - t) * 1e9) };
			nanosleep(&ts, NULL);
		}
		for (unsigned i = 0; i < n; i++) {
			if (v6)
				build_syn6(bufs[i], net6, prefix, dst6, port);
			else
				build_syn(bufs[i], net, mask, dst, port);
		}
		r = sendmmsg(fd, msgs, n, 0);
		if (r < 0) {
			/* A full device queue: wait a little, never spin. */
			if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) {
				usleep(100);
				continue;
			}
			perror("synflood: sendmmsg");
			break;
		}
		sent += (unsigned long)r;
	}
	elapsed = now_s() - start;
	printf("sent %lu seconds %.3f rate %.0f\n", sent, elapsed, elapsed > 0 ? sent / elapsed : 0.0);
	close(fd);
	return 0;
}
