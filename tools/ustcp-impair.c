/*
 * ustcp-impair: forward frames between two interfaces and impair them on the
 * way -- a user-space stand-in for netem, which this kernel lacks.
 *
 * Each side is an AF_PACKET socket on an Ethernet interface or a persistent
 * tun device. Frames read on side a go out on side b ("a2b") and the other way
 * round ("b2a"). Every direction has its own rules, its own counters and its
 * own PRNG stream derived from one seed. Every random decision about a frame
 * is drawn when the frame arrives, in arrival order, so the same seed and the
 * same input frames give the same decisions whatever the timing.
 *
 * The path of one frame:
 *
 *   receive -> complete a partial checksum -> too big for the far side?
 *   -> loss -> CE mark -> duplicate -> corrupt -> queue limit -> delay +- jitter
 *   -> rate
 *   -> (reorder: held back until DEPTH later frames went out) -> send
 *
 * One thread, one ppoll() loop. Frames wait in a binary heap ordered by the
 * time they are due; the loop sleeps until the earliest of them.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>

#include "csum.h"

#define PROG		"ustcp-impair"
#define NS_PER_US	((uint64_t)1000)
#define NS_PER_MS	((uint64_t)1000000)
#define NS_PER_S	((uint64_t)1000000000)

#define MAX_FRAME	(65536 + 64)	/* a 64 KiB GSO super-frame and headers */
#define HEADROOM	4		/* room to put back a stripped VLAN tag */
#define BATCH		32		/* frames per recvmmsg() */
#define BATCHES		4		/* recvmmsg() calls per port per wakeup */
#define REORDER_WAIT_NS	(10 * NS_PER_MS)
#define DEFAULT_LIMIT	1000
#define SOCKBUF		(4 << 20)

#define VLAN_HLEN	4

enum { A2B, B2A, NDIR };

/* The counters, in the order they are printed. */
enum counter {
	C_RECEIVED,
	C_FORWARDED,
	C_LOST,
	C_DUPLICATED,
	C_REORDERED,
	C_CORRUPTED,
	C_CE_MARKED,
	C_DELAYED,
	C_QUEUE_DROPPED,
	C_OVERSIZE,
	C_SEND_ERRORS,
	C_KERNEL_DROPS,
	C_COUNT
};

static const char *const counter_name[C_COUNT] = {
	[C_RECEIVED] = "received",
	[C_FORWARDED] = "forwarded",
	[C_LOST] = "lost",
	[C_DUPLICATED] = "duplicated",
	[C_REORDERED] = "reordered",
	[C_CORRUPTED] = "corrupted",
	[C_CE_MARKED] = "ce-marked",
	[C_DELAYED] = "delayed",
	[C_QUEUE_DROPPED] = "queue-dropped",
	[C_OVERSIZE] = "oversize",
	[C_SEND_ERRORS] = "send-errors",
	[C_KERNEL_DROPS] = "kernel-drops",
};

/* The impairments of one direction. Percentages are 0..100. */
struct rules {
	double loss;
	double duplicate;
	double corrupt;
	double ce;		/* ECT packets marked CE (RFC 3168 §5) */
	double reorder;
	unsigned reorder_depth;	/* later frames that overtake a held one */
	uint64_t delay_ns;
	uint64_t jitter_ns;	/* uniform +-jitter_ns around delay_ns */
	uint64_t rate_bps;	/* 0: unlimited */
	unsigned limit;		/* frames queued (delayed or held) at most */
};

/* xoshiro256** seeded through splitmix64 (Blackman and Vigna). */
struct rng {
	uint64_t s[4];
};

/* One side of the relay. */
struct port {
	const char *spec;	/* as given: "NAME" or "tun:NAME" */
	const char *ifname;
	const char *netns;	/* --netns-a / --netns-b, or NULL */
	bool tun;
	int fd;
	unsigned mtu;
	size_t max_out;		/* the largest untagged frame it can send */
};

/* A frame in flight. */
struct frame {
	uint64_t due;		/* when it may go out (CLOCK_MONOTONIC ns) */
	uint64_t seq;		/* arrival order: equal due times stay FIFO */
	uint64_t hold_until;	/* reorder: sent by then at the latest */
	struct frame *next;	/* the direction's held list */
	unsigned hold_left;	/* reorder: frames still to overtake it */
	bool reorder;		/* chosen to be held back once due */
	uint8_t dir;
	uint32_t len;
	unsigned char data[];
};

struct dir {
	const char *name;
	struct rules r;
	struct rng rng;
	struct port *in, *out;
	uint64_t n[C_COUNT];
	unsigned queued;	/* frames in the heap or held, against r.limit */
	uint64_t link_free;	/* rate: when the link has sent all it took */
	struct frame *held;	/* held back by reorder, oldest first */
	unsigned send_errors_logged;
};

/* The delay queue of both directions: a binary min-heap on (due, seq). */
struct heap {
	struct frame **v;
	size_t len, cap;
};

static struct port ports[2];
static struct dir dirs[NDIR];
static struct heap queue;
static uint64_t next_seq;
static const char *stats_path;


static void usage(FILE *f)
{
	fprintf(f,
	    "usage: " PROG " [-hn] [-d seconds] [-s seed] [--netns-a ns] [--netns-b ns]\n"
	    "                    [--stats file] if_a if_b [rules ...]\n"
	    "  if:    an Ethernet interface name, or tun:NAME for a persistent tun device\n"
	    "  rules: [both|a2b|b2a] loss P%% | delay T | jitter T | reorder P%% [DEPTH]\n"
	    "         | duplicate P%% | corrupt P%% | ce P%% | rate R | limit N\n");
}

/* One line on stderr, then exit with status. */
static void __attribute__((noreturn)) vdie(int status, const char *fmt, va_list ap)
{
	fputs(PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	exit(status);
}

/* A bad command line: exit status 2. */
static void __attribute__((noreturn, format(printf, 1, 2))) usage_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdie(2, fmt, ap);
}

/* A failure at run time: exit status 1. */
static void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdie(1, fmt, ap);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* ---- randomness ------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct rng *g)
{
	uint64_t *s = g->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* Direction d's stream: splitmix64 started at a point of its own. */
static void rng_seed(struct rng *g, uint64_t seed, unsigned d)
{
	uint64_t x = seed ^ (0xa0761d6478bd642fULL * (d + 1));

	for (int i = 0; i < 4; i++)
		g->s[i] = splitmix64(&x);
}

/* Uniform in [0, 1). */
static double rng_unit(struct rng *g)
{
	return (double)(rng_next(g) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n), n > 0. */
static uint64_t rng_below(struct rng *g, uint64_t n)
{
	return (uint64_t)(rng_unit(g) * (double)n) % n;
}

/* True with the given percentage. Draws only when the rule is on. */
static bool rng_chance(struct rng *g, double percent)
{
	if (percent <= 0)
		return false;
	return rng_unit(g) * 100.0 < percent;
}

/* ---- rules -------------------------------------------------------------- */

static double parse_percent(const char *kw, const char *s)
{
	char *end;
	double v;

	if (!s)
		usage_fail("%s: missing percentage", kw);
	errno = 0;
	v = strtod(s, &end);
	if (end != s && *end == '%')
		end++;
	if (end == s || *end || errno || !isfinite(v) || v < 0 || v > 100)
		usage_fail("%s: bad percentage '%s' (expected 0%% to 100%%, e.g. 10%%)", kw, s);
	return v;
}

static uint64_t parse_time(const char *kw, const char *s)
{
	static const struct {
		const char *unit;
		double ns;
	} units[] = {
		{ "ns", 1 }, { "us", 1e3 }, { "ms", 1e6 }, { "s", 1e9 },
	};
	char *end;
	double v;

	if (!s)
		usage_fail("%s: missing time", kw);
	errno = 0;
	v = strtod(s, &end);
	if (end != s && !errno && isfinite(v) && v >= 0) {
		for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
			double ns = v * units[i].ns;

			if (strcmp(end, units[i].unit) == 0 && ns <= 3600e9)
				return (uint64_t)llround(ns);
		}
	}
	usage_fail("%s: bad time '%s' (expected a number and ns, us, ms or s, up to 1 hour, e.g. 50ms)",
	    kw, s);
}

static uint64_t parse_rate(const char *kw, const char *s)
{
	char *end;
	double v, mult = 1;

	if (!s)
		usage_fail("%s: missing rate", kw);
	errno = 0;
	v = strtod(s, &end);
	if (end != s && !errno && isfinite(v) && v > 0) {
		switch (tolower((unsigned char)*end)) {
		case 'k': mult = 1e3; end++; break;
		case 'm': mult = 1e6; end++; break;
		case 'g': mult = 1e9; end++; break;
		default: break;
		}
		if (strcmp(end, "bit") == 0)
			end += 3;
		v *= mult;
		if (*end == '\0' && v >= 1e3 && v <= 1e12)
			return (uint64_t)llround(v);
	}
	usage_fail("%s: bad rate '%s' (expected bits/s from 1kbit to 1000gbit, e.g. 100mbit)",
	    kw, s);
}

static unsigned parse_uint(const char *kw, const char *s, unsigned min, unsigned max)
{
	char *end;
	unsigned long v;

	if (!s)
		usage_fail("%s: missing number", kw);
	errno = 0;
	v = strtoul(s, &end, 10);
	if (!isdigit((unsigned char)*s) || *end || errno || v < min || v > max)
		usage_fail("%s: bad number '%s' (expected %u to %u)", kw, s, min, max);
	return (unsigned)v;
}

static bool is_number(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* Apply the rule words w[0..n) to the directions, "both" at first. */
static void parse_rules(char **w, size_t n)
{
	bool sel[NDIR] = { true, true };

	for (size_t i = 0; i < n; i++) {
		const char *kw = w[i];
		const char *arg = i + 1 < n ? w[i + 1] : NULL;
		struct rules v = { 0 };
		enum { F_LOSS, F_DUP, F_CORRUPT, F_CE, F_REORDER, F_DELAY, F_JITTER, F_RATE, F_LIMIT } f;

		if (strcmp(kw, "both") == 0 || strcmp(kw, "a2b") == 0 || strcmp(kw, "b2a") == 0) {
			sel[A2B] = strcmp(kw, "b2a") != 0;
			sel[B2A] = strcmp(kw, "a2b") != 0;
			continue;
		}
		if (strcmp(kw, "loss") == 0) {
			f = F_LOSS;
			v.loss = parse_percent(kw, arg);
		} else if (strcmp(kw, "duplicate") == 0) {
			f = F_DUP;
			v.duplicate = parse_percent(kw, arg);
		} else if (strcmp(kw, "corrupt") == 0) {
			f = F_CORRUPT;
			v.corrupt = parse_percent(kw, arg);
		} else if (strcmp(kw, "ce") == 0) {
			f = F_CE;
			v.ce = parse_percent(kw, arg);
		} else if (strcmp(kw, "reorder") == 0) {
			f = F_REORDER;
			v.reorder = parse_percent(kw, arg);
			v.reorder_depth = 1;
			if (i + 2 < n && is_number(w[i + 2])) {
				v.reorder_depth = parse_uint(kw, w[i + 2], 1, 1000);
				i++;
			}
		} else if (strcmp(kw, "delay") == 0) {
			f = F_DELAY;
			v.delay_ns = parse_time(kw, arg);
		} else if (strcmp(kw, "jitter") == 0) {
			f = F_JITTER;
			v.jitter_ns = parse_time(kw, arg);
		} else if (strcmp(kw, "rate") == 0) {
			f = F_RATE;
			v.rate_bps = parse_rate(kw, arg);
		} else if (strcmp(kw, "limit") == 0) {
			f = F_LIMIT;
			v.limit = parse_uint(kw, arg, 1, 1000000);
		} else {
			usage_fail("unknown rule '%s' (expected both, a2b, b2a, loss, delay, jitter, "
			    "reorder, duplicate, corrupt, ce, rate or limit)", kw);
		}
		i++;
		for (int d = 0; d < NDIR; d++) {
			struct rules *r = &dirs[d].r;

			if (!sel[d])
				continue;
			switch (f) {
			case F_LOSS: r->loss = v.loss; break;
			case F_DUP: r->duplicate = v.duplicate; break;
			case F_CORRUPT: r->corrupt = v.corrupt; break;
			case F_CE: r->ce = v.ce; break;
			case F_REORDER:
				r->reorder = v.reorder;
				r->reorder_depth = v.reorder_depth;
				break;
			case F_DELAY: r->delay_ns = v.delay_ns; break;
			case F_JITTER: r->jitter_ns = v.jitter_ns; break;
			case F_RATE: r->rate_bps = v.rate_bps; break;
			case F_LIMIT: r->limit = v.limit; break;
			}
		}
	}
}

static void format_time(char *buf, size_t size, uint64_t ns)
{
	if (ns % NS_PER_S == 0)
		snprintf(buf, size, "%" PRIu64 "s", ns / NS_PER_S);
	else if (ns % NS_PER_MS == 0)
		snprintf(buf, size, "%" PRIu64 "ms", ns / NS_PER_MS);
	else if (ns % NS_PER_US == 0)
		snprintf(buf, size, "%" PRIu64 "us", ns / NS_PER_US);
	else
		snprintf(buf, size, "%" PRIu64 "ns", ns);
}

/* One line per direction, in the rule syntax, e.g. "a2b loss 10% limit 1000". */
static void print_rules(FILE *f, const char *prefix)
{
	for (int d = 0; d < NDIR; d++) {
		const struct rules *r = &dirs[d].r;
		char t[32];

		fprintf(f, "%s%s", prefix, dirs[d].name);
		if (r->loss > 0)
			fprintf(f, " loss %g%%", r->loss);
		if (r->delay_ns) {
			format_time(t, sizeof t, r->delay_ns);
			fprintf(f, " delay %s", t);
		}
		if (r->jitter_ns) {
			format_time(t, sizeof t, r->jitter_ns);
			fprintf(f, " jitter %s", t);
		}
		if (r->reorder > 0)
			fprintf(f, " reorder %g%% %u", r->reorder, r->reorder_depth);
		if (r->duplicate > 0)
			fprintf(f, " duplicate %g%%", r->duplicate);
		if (r->corrupt > 0)
			fprintf(f, " corrupt %g%%", r->corrupt);
		if (r->ce > 0)
			fprintf(f, " ce %g%%", r->ce);
		if (r->rate_bps) {
			static const char *const prefix_of[] = { "", "k", "m", "g" };
			uint64_t v = r->rate_bps;
			int k = 0;

			while (k < 3 && v % 1000 == 0) {
				v /= 1000;
				k++;
			}
			fprintf(f, " rate %" PRIu64 "%sbit", v, prefix_of[k]);
		}
		fprintf(f, " limit %u\n", r->limit);
	}
}

/* ---- counters ----------------------------------------------------------- */

/* Frames the kernel dropped because the relay did not read them in time
 * (PACKET_STATISTICS, which resets on reading). Tun devices do not say. */
static void collect_kernel_drops(void)
{
	for (int d = 0; d < NDIR; d++) {
		struct tpacket_stats st;
		socklen_t len = sizeof st;

		if (dirs[d].in && !dirs[d].in->tun && dirs[d].in->fd >= 0 &&
		    getsockopt(dirs[d].in->fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0)
			dirs[d].n[C_KERNEL_DROPS] += st.tp_drops;
	}
}

static void report(FILE *f)
{
	collect_kernel_drops();
	for (int d = 0; d < NDIR; d++)
		for (int c = 0; c < C_COUNT; c++)
			fprintf(f, "%s %s %" PRIu64 "\n", dirs[d].name, counter_name[c], dirs[d].n[c]);
}

/* Write the counters to --stats FILE, replacing it in one step. */
static void write_stats(void)
{
	char tmp[4096];
	FILE *f;

	if (!stats_path)
		return;
	snprintf(tmp, sizeof tmp, "%s.tmp", stats_path);
	f = fopen(tmp, "w");
	if (!f) {
		fprintf(stderr, PROG ": %s: %s\n", tmp, strerror(errno));
		return;
	}
	report(f);
	if (fclose(f) != 0 || rename(tmp, stats_path) != 0)
		fprintf(stderr, PROG ": %s: %s\n", stats_path, strerror(errno));
}

/* ---- ports -------------------------------------------------------------- */

static unsigned if_mtu(const char *ifname)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		fail("socket: %s", strerror(errno));
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
	if (ioctl(s, SIOCGIFMTU, &ifr) < 0)
		fail("%s: cannot read the MTU: %s", ifname, strerror(errno));
	close(s);
	return (unsigned)ifr.ifr_mtu;
}

static void set_bufsize(int fd, int force_opt, int opt)
{
	int v = SOCKBUF;

	if (setsockopt(fd, SOL_SOCKET, force_opt, &v, sizeof v) < 0)
		setsockopt(fd, SOL_SOCKET, opt, &v, sizeof v);
}

static void open_packet(struct port *p)
{
	struct sockaddr_ll sll = { 0 };
	struct packet_mreq mr = { 0 };
	struct ifreq ifr = { 0 };
	unsigned ifindex = if_nametoindex(p->ifname);
	int one = 1;

	if (!ifindex)
		fail("%s: no such interface%s%s", p->ifname, p->netns ? " in netns " : "",
		    p->netns ? p->netns : "");
	/* Protocol 0 at first: nothing is queued before bind() picks the device. */
	p->fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0)
		fail("AF_PACKET socket: %s", strerror(errno));
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", p->ifname);
	if (ioctl(p->fd, SIOCGIFHWADDR, &ifr) < 0)
		fail("%s: %s", p->ifname, strerror(errno));
	if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER)
		fail("%s: not an Ethernet interface (write tun:%s for a tun device)", p->ifname,
		    p->ifname);
	p->mtu = if_mtu(p->ifname);
	p->max_out = p->mtu + ETH_HLEN;

	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = (int)ifindex;
	if (bind(p->fd, (struct sockaddr *)&sll, sizeof sll) < 0)
		fail("%s: bind: %s", p->ifname, strerror(errno));
	if (setsockopt(p->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0)
		fail("%s: PACKET_IGNORE_OUTGOING: %s", p->ifname, strerror(errno));
	mr.mr_ifindex = (int)ifindex;
	mr.mr_type = PACKET_MR_PROMISC;
	if (setsockopt(p->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0)
		fail("%s: PACKET_MR_PROMISC: %s", p->ifname, strerror(errno));
	if (setsockopt(p->fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one) < 0)
		fail("%s: PACKET_AUXDATA: %s", p->ifname, strerror(errno));
	set_bufsize(p->fd, SO_RCVBUFFORCE, SO_RCVBUF);
	set_bufsize(p->fd, SO_SNDBUFFORCE, SO_SNDBUF);
}

static void open_tun(struct port *p)
{
	struct ifreq ifr = { 0 };

	/* TUNSETIFF would create a missing device: insist that it exists. */
	if (!if_nametoindex(p->ifname))
		fail("%s: no such tun device%s%s (create it with: ip tuntap add dev %s mode tun)",
		    p->ifname, p->netns ? " in netns " : "", p->netns ? p->netns : "", p->ifname);
	p->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (p->fd < 0)
		fail("/dev/net/tun: %s", strerror(errno));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", p->ifname);
	if (ioctl(p->fd, TUNSETIFF, &ifr) < 0)
		fail("%s: cannot attach (TUNSETIFF): %s (is it a tun, not a tap, device?)",
		    p->ifname, strerror(errno));
	p->mtu = if_mtu(p->ifname);
	p->max_out = p->mtu;
}

/* Open a port, inside its namespace when --netns-a/-b names one. */
static void open_port(struct port *p)
{
	int home = -1, there = -1;

	if (p->netns) {
		char path[4096];

		snprintf(path, sizeof path, "/run/netns/%s", p->netns);
		home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		there = open(path, O_RDONLY | O_CLOEXEC);
		if (home < 0 || there < 0)
			fail("%s: %s", home < 0 ? "/proc/self/ns/net" : path, strerror(errno));
		if (setns(there, CLONE_NEWNET) < 0)
			fail("setns %s: %s", path, strerror(errno));
	}
	if (p->tun)
		open_tun(p);
	else
		open_packet(p);
	if (p->netns) {
		if (setns(home, CLONE_NEWNET) < 0)
			fail("setns back: %s", strerror(errno));
		close(home);
		close(there);
	}
}

/* ---- frame surgery ------------------------------------------------------ */

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

/* Where the L3 header of an Ethernet frame starts, and its EtherType. */
static size_t l3_offset(const unsigned char *f, size_t len, uint16_t *type)
{
	size_t off = ETH_HLEN;

	if (len < ETH_HLEN)
		return len;
	*type = get16(f + 12);
	if ((*type == ETH_P_8021Q || *type == ETH_P_8021AD) && len >= ETH_HLEN + VLAN_HLEN) {
		*type = get16(f + 16);
		off += VLAN_HLEN;
	}
	return off;
}

/* Where the checksum field of a transport header sits, or 0 for a protocol
 * whose checksum it does not complete. */
static size_t csum_field(uint8_t proto)
{
	return proto == IPPROTO_TCP ? 16 : proto == IPPROTO_UDP ? 6 : proto == IPPROTO_ICMPV6 ? 2 : 0;
}

/* Store the checksum over the pseudo-header's sum and the transport bytes. */
static void csum_store(unsigned char *l4, size_t l4len, size_t off, uint8_t proto, uint32_t pseudo)
{
	uint16_t c;

	put16(l4 + off, 0);
	c = ust_csum_fold(ust_csum_add(pseudo, l4, l4len));
	if (proto == IPPROTO_UDP && c == 0)
		c = 0xffff;
	put16(l4 + off, c);
}

/*
 * Fill in the TCP or UDP checksum of an IPv4 packet that the sender left to
 * the hardware (CHECKSUM_PARTIAL: the field holds only the pseudo-header sum).
 * Returns false when the packet is not one it knows how to complete.
 */
static bool complete_csum4(unsigned char *ip, size_t len)
{
	size_t ihl, tot, l4len, off;
	uint8_t proto;

	if (len < 20 || ip[0] >> 4 != 4)
		return false;
	ihl = (size_t)(ip[0] & 15) * 4;
	tot = get16(ip + 2);
	if (ihl < 20 || tot < ihl || tot > len || (get16(ip + 6) & 0x3fff))
		return false;
	proto = ip[9];
	off = csum_field(proto);
	l4len = tot - ihl;
	if (proto == IPPROTO_ICMPV6 || !off || l4len < off + 2)
		return false;
	csum_store(ip + ihl, l4len, off, proto,
	    ust_csum_pseudo(get32(ip + 12), get32(ip + 16), proto, (uint16_t)l4len));
	return true;
}

/*
 * The same for IPv6 (the kernel of a namespace leaves TCP's and UDP's
 * checksums partial over IPv6 as over IPv4, and so does the stack through its
 * virtio-net header). The hop-by-hop, routing and destination options headers
 * are stepped over as the kernel's csum_start would; a fragment is not
 * completed (the sender never leaves one partial).
 */
static bool complete_csum6(unsigned char *ip, size_t len)
{
	size_t at = 40, end, off;
	uint8_t proto, tail[8];
	uint32_t l4len, pseudo;

	if (len < 40 || ip[0] >> 4 != 6)
		return false;
	end = 40 + (size_t)get16(ip + 4);
	if (end > len)
		return false;
	proto = ip[6];
	while (proto == 0 || proto == 43 || proto == 60) {
		if (at + 8 > end)
			return false;
		proto = ip[at];
		at += ((size_t)ip[at + 1] + 1) * 8;
	}
	off = csum_field(proto);
	if (!off || at > end || end - at < off + 2)
		return false;
	l4len = (uint32_t)(end - at);
	tail[0] = (uint8_t)(l4len >> 24);
	tail[1] = (uint8_t)(l4len >> 16);
	tail[2] = (uint8_t)(l4len >> 8);
	tail[3] = (uint8_t)l4len;
	tail[4] = tail[5] = tail[6] = 0;
	tail[7] = proto;
	pseudo = ust_csum_add(ust_csum_add(0, ip + 8, 32), tail, 8);
	csum_store(ip + at, l4len, off, proto, pseudo);
	return true;
}

/*
 * Where the IP packet of a frame starts and its version (4, 6, or 0 for
 * neither): after the Ethernet header (and a VLAN tag), or at once on a tun
 * device.
 */
static size_t ip_offset(bool tun, const unsigned char *f, size_t len, int *version)
{
	uint16_t type = 0;
	size_t off = tun ? 0 : l3_offset(f, len, &type);

	*version = 0;
	if (off >= len)
		return len;
	if (tun ? f[0] >> 4 == 4 : type == ETH_P_IP && f[off] >> 4 == 4)
		*version = 4;
	else if (tun ? f[0] >> 4 == 6 : type == ETH_P_IPV6 && f[off] >> 4 == 6)
		*version = 6;
	return off;
}

/*
 * Flip one random bit past the headers nobody checks, so that a checksum
 * catches it: past the Ethernet header, where IPv4's header checksum covers
 * the header and TCP's (or UDP's, ICMP's) the rest; past the IPv6 header,
 * which has no checksum of its own (a flipped bit in its traffic class, flow
 * label or hop limit would go through unseen), so that the transport checksum
 * catches it. On a tun device an IPv4 packet is hit past its header too.
 * Returns false if there is nothing to flip.
 */
static bool corrupt_frame(struct dir *d, unsigned char *f, size_t len)
{
	int version;
	size_t start = ip_offset(d->out->tun, f, len, &version);
	uint64_t bit;

	if (version == 6)
		start += 40;
	else if (version == 4 && d->out->tun && len >= 20)
		start = (size_t)(f[0] & 15) * 4;
	else if (d->out->tun)
		start = 0;
	if (start >= len)
		return false;
	bit = rng_below(&d->rng, (uint64_t)(len - start) * 8);
	f[start + bit / 8] ^= (unsigned char)(1u << (bit % 8));
	return true;
}

/*
 * Congestion Experienced instead of a drop, as an AQM router with ECN does
 * (RFC 3168 §5): a packet whose ECN field is ECT(0) or ECT(1) gets CE -- in
 * IPv4's TOS byte, whose header checksum follows, or in the low two bits of
 * IPv6's traffic class (RFC 3168 §9.3; no checksum covers it). A Not-ECT
 * packet (or one already CE, or neither IPv4 nor IPv6) is left as it is. A GSO
 * frame is marked as a whole. Returns whether it marked.
 */
static bool mark_ce(struct dir *d, unsigned char *f, size_t len)
{
	int version;
	size_t off = ip_offset(d->in->tun, f, len, &version), ihl;
	unsigned char *ip = f + off;

	len -= off;
	if (version == 6) {
		/* Traffic class: the low nibble of byte 0, the high of byte 1. */
		if (len < 40 || (ip[1] & 0x30) == 0 || (ip[1] & 0x30) == 0x30)
			return false;
		ip[1] |= 0x30;
		return true;
	}
	if (version != 4 || len < 20)
		return false;
	ihl = (size_t)(ip[0] & 15) * 4;
	if (ihl < 20 || ihl > len)
		return false;
	if ((ip[1] & 3) != 1 && (ip[1] & 3) != 2)
		return false;
	ip[1] |= 3;
	put16(ip + 10, 0);
	put16(ip + 10, ust_csum_fold(ust_csum_add(0, ip, ihl)));
	return true;
}

/* ---- the delay queue ---------------------------------------------------- */

static bool frame_before(const struct frame *x, const struct frame *y)
{
	return x->due < y->due || (x->due == y->due && x->seq < y->seq);
}

static bool heap_push(struct frame *f)
{
	size_t i;

	if (queue.len == queue.cap) {
		size_t cap = queue.cap ? queue.cap * 2 : 256;
		struct frame **v = realloc(queue.v, cap * sizeof *v);

		if (!v)
			return false;
		queue.v = v;
		queue.cap = cap;
	}
	i = queue.len++;
	while (i > 0 && frame_before(f, queue.v[(i - 1) / 2])) {
		queue.v[i] = queue.v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	queue.v[i] = f;
	return true;
}

static struct frame *heap_pop(void)
{
	struct frame *top = queue.v[0], *last = queue.v[--queue.len];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= queue.len)
			break;
		if (c + 1 < queue.len && frame_before(queue.v[c + 1], queue.v[c]))
			c++;
		if (!frame_before(queue.v[c], last))
			break;
		queue.v[i] = queue.v[c];
		i = c;
	}
	if (queue.len)
		queue.v[i] = last;
	return top;
}

/* ---- forwarding --------------------------------------------------------- */

/* Put a copy of a frame in the queue with its delay, jitter and rate. */
static void enqueue(struct dir *d, const unsigned char *data, size_t len, bool corrupt,
    uint64_t now)
{
	const struct rules *r = &d->r;
	struct frame *f;
	uint64_t due = now + r->delay_ns;

	if (d->queued >= r->limit) {
		d->n[C_QUEUE_DROPPED]++;
		return;
	}
	f = malloc(sizeof *f + len);
	if (!f) {
		d->n[C_QUEUE_DROPPED]++;
		return;
	}
	memcpy(f->data, data, len);
	f->len = (uint32_t)len;
	f->dir = (uint8_t)(d - dirs);
	f->seq = next_seq++;
	f->next = NULL;
	f->hold_left = 0;
	f->hold_until = 0;
	if (corrupt && corrupt_frame(d, f->data, len))
		d->n[C_CORRUPTED]++;
	f->reorder = rng_chance(&d->rng, r->reorder);
	if (r->jitter_ns) {
		uint64_t j = rng_below(&d->rng, 2 * r->jitter_ns + 1);

		/* due + j - jitter, but never before now */
		due = due + j > now + r->jitter_ns ? due + j - r->jitter_ns : now;
	}
	if (r->rate_bps) {
		/* A token bucket one frame deep: the link sends one frame at a
		 * time at rate_bps, and frames wait their turn in the queue. */
		if (due < d->link_free)
			due = d->link_free;
		due += (uint64_t)len * 8 * NS_PER_S / r->rate_bps;
		d->link_free = due;
	}
	if (due > now)
		d->n[C_DELAYED]++;
	f->due = due;
	if (!heap_push(f)) {
		free(f);
		d->n[C_QUEUE_DROPPED]++;
		return;
	}
	d->queued++;
}

static void xmit(struct dir *d, struct frame *f)
{
	struct port *p = d->out;
	ssize_t r;

	if (p->tun)
		r = write(p->fd, f->data, f->len);
	else
		r = send(p->fd, f->data, f->len, MSG_DONTWAIT);
	if (r == (ssize_t)f->len) {
		d->n[C_FORWARDED]++;
	} else {
		d->n[C_SEND_ERRORS]++;
		if (d->send_errors_logged < 5) {
			d->send_errors_logged++;
			fprintf(stderr, PROG ": %s: send on %s: %s\n", d->name, p->spec,
			    r < 0 ? strerror(errno) : "short write");
		}
	}
	free(f);
	d->queued--;
}

/* A frame went out: count it against every held frame, and send those whose
 * turn has come (each of which counts against the others in turn). */
static void overtaken(struct dir *d)
{
	unsigned pending = 1;

	while (pending) {
		struct frame **pp = &d->held;

		pending--;
		while (*pp) {
			struct frame *h = *pp;

			if (--h->hold_left == 0) {
				*pp = h->next;
				xmit(d, h);
				pending++;
			} else {
				pp = &h->next;
			}
		}
	}
}

/* Send what is due at time now, hold back what reorder chose. */
static void run_due(uint64_t now)
{
	while (queue.len && queue.v[0]->due <= now) {
		struct frame *f = heap_pop();
		struct dir *d = &dirs[f->dir];

		if (f->reorder) {
			struct frame **pp = &d->held;

			while (*pp)
				pp = &(*pp)->next;
			f->reorder = false;
			f->hold_left = d->r.reorder_depth;
			f->hold_until = now + REORDER_WAIT_NS;
			*pp = f;
			d->n[C_REORDERED]++;
			continue;
		}
		xmit(d, f);
		overtaken(d);
	}
	for (int i = 0; i < NDIR; i++) {
		struct dir *d = &dirs[i];

		while (d->held && d->held->hold_until <= now) {
			struct frame *h = d->held;

			d->held = h->next;
			xmit(d, h);
			overtaken(d);
		}
	}
}

/* The earliest time something has to happen, or UINT64_MAX. */
static uint64_t next_event(void)
{
	uint64_t t = queue.len ? queue.v[0]->due : UINT64_MAX;

	for (int i = 0; i < NDIR; i++)
		for (struct frame *h = dirs[i].held; h; h = h->next)
			if (h->hold_until < t)
				t = h->hold_until;
	return t;
}

/* One frame arrived from d->in; data has HEADROOM bytes in front of it. */
static void handle_frame(struct dir *d, unsigned char *data, size_t len,
    const struct tpacket_auxdata *aux)
{
	size_t max = d->out->max_out;
	bool lost, dup, corrupt;
	uint64_t now;

	d->n[C_RECEIVED]++;
	if (aux && (aux->tp_status & TP_STATUS_CSUMNOTREADY)) {
		uint16_t type = 0;
		size_t off = l3_offset(data, len, &type);

		if (type == ETH_P_IP)
			complete_csum4(data + off, len - off);
		else if (type == ETH_P_IPV6)
			complete_csum6(data + off, len - off);
	}
	if (aux && (aux->tp_status & TP_STATUS_VLAN_VALID) && len >= 12) {
		/* The kernel took the 802.1Q tag out: put it back. */
		uint16_t tpid = aux->tp_status & TP_STATUS_VLAN_TPID_VALID ? aux->tp_vlan_tpid
									 : ETH_P_8021Q;

		memmove(data - VLAN_HLEN, data, 12);
		data -= VLAN_HLEN;
		put16(data + 12, tpid);
		put16(data + 14, aux->tp_vlan_tci);
		len += VLAN_HLEN;
	}
	if (!d->out->tun && len >= ETH_HLEN + VLAN_HLEN &&
	    (get16(data + 12) == ETH_P_8021Q || get16(data + 12) == ETH_P_8021AD))
		max += VLAN_HLEN;
	if (len > max) {
		d->n[C_OVERSIZE]++;
		return;
	}
	lost = rng_chance(&d->rng, d->r.loss);
	if (lost) {
		d->n[C_LOST]++;
		return;
	}
	if (rng_chance(&d->rng, d->r.ce) && mark_ce(d, data, len))
		d->n[C_CE_MARKED]++;
	dup = rng_chance(&d->rng, d->r.duplicate);
	corrupt = rng_chance(&d->rng, d->r.corrupt);
	now = now_ns();
	enqueue(d, data, len, corrupt, now);
	if (dup) {
		d->n[C_DUPLICATED]++;
		enqueue(d, data, len, false, now);
	}
}

static unsigned char rxbuf[BATCH][HEADROOM + MAX_FRAME];

static void receive_packet(struct dir *d)
{
	static struct mmsghdr msgs[BATCH];
	static struct iovec iov[BATCH];
	static union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
	} ctl[BATCH];

	for (int round = 0; round < BATCHES; round++) {
		int n;

		for (int i = 0; i < BATCH; i++) {
			iov[i].iov_base = rxbuf[i] + HEADROOM;
			iov[i].iov_len = MAX_FRAME;
			memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_control = ctl[i].buf;
			msgs[i].msg_hdr.msg_controllen = sizeof ctl[i].buf;
		}
		n = recvmmsg(d->in->fd, msgs, BATCH, MSG_DONTWAIT | MSG_TRUNC, NULL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			if (errno == ENETDOWN)
				continue;
			fail("%s: receive: %s", d->in->spec, strerror(errno));
		}
		for (int i = 0; i < n; i++) {
			struct msghdr *m = &msgs[i].msg_hdr;
			const struct tpacket_auxdata *aux = NULL;

			for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c))
				if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA)
					aux = (const struct tpacket_auxdata *)CMSG_DATA(c);
			if (msgs[i].msg_len > MAX_FRAME) {
				d->n[C_RECEIVED]++;
				d->n[C_OVERSIZE]++;
				continue;
			}
			handle_frame(d, rxbuf[i] + HEADROOM, msgs[i].msg_len, aux);
		}
		if (n < BATCH)
			return;
	}
}

static void receive_tun(struct dir *d)
{
	for (int i = 0; i < BATCH * BATCHES; i++) {
		ssize_t n = read(d->in->fd, rxbuf[0] + HEADROOM, MAX_FRAME);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			fail("%s: read: %s", d->in->spec, strerror(errno));
		}
		handle_frame(d, rxbuf[0] + HEADROOM, (size_t)n, NULL);
	}
}

/* ---- main --------------------------------------------------------------- */

static void parse_port(struct port *p, const char *spec, const char *netns)
{
	p->spec = spec;
	p->netns = netns;
	p->fd = -1;
	p->tun = strncmp(spec, "tun:", 4) == 0;
	p->ifname = p->tun ? spec + 4 : spec;
	if (!*p->ifname || strlen(p->ifname) >= IFNAMSIZ || strchr(p->ifname, '/') ||
	    strchr(p->ifname, ' '))
		usage_fail("bad interface name '%s'", spec);
	if (netns && (!*netns || strchr(netns, '/') || strcmp(netns, ".") == 0 ||
	    strcmp(netns, "..") == 0))
		usage_fail("bad namespace name '%s'", netns);
}

static uint64_t parse_seed(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (!isdigit((unsigned char)*s) || *end || errno)
		usage_fail("-s: bad seed '%s' (expected an unsigned 64-bit number)", s);
	return v;
}

static uint64_t time_seed(void)
{
	struct timespec ts;
	uint64_t x;

	clock_gettime(CLOCK_REALTIME, &ts);
	x = (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
	x ^= (uint64_t)getpid() << 32;
	return splitmix64(&x);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "duration", required_argument, NULL, 'd' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ "netns-a", required_argument, NULL, 'A' },
		{ "netns-b", required_argument, NULL, 'B' },
		{ "seed", required_argument, NULL, 's' },
		{ "stats", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	const char *netns[2] = { NULL, NULL };
	double duration = 0;
	bool dry_run = false, seeded = false;
	uint64_t seed = 0, end = UINT64_MAX;
	char **words = NULL;
	size_t nwords = 0;
	bool stop = false;
	sigset_t sigs;
	int opt, sfd;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":d:hns:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd': {
			char *e;

			errno = 0;
			duration = strtod(optarg, &e);
			if (e == optarg || *e || errno || !isfinite(duration) || duration <= 0 ||
			    duration > 1e6)
				usage_fail("-d: bad duration '%s' (expected seconds > 0)", optarg);
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		case 'n':
			dry_run = true;
			break;
		case 's':
			seed = parse_seed(optarg);
			seeded = true;
			break;
		case 'A':
			netns[0] = optarg;
			break;
		case 'B':
			netns[1] = optarg;
			break;
		case 'S':
			stats_path = optarg;
			break;
		case ':':
			if (optopt)
				usage_fail("option '-%c' needs a value", optopt);
			usage_fail("option '%s' needs a value", argv[optind - 1]);
		default:
			if (optopt)
				usage_fail("unknown option '-%c' (see " PROG " -h)", optopt);
			usage_fail("unknown option '%s' (see " PROG " -h)", argv[optind - 1]);
		}
	}
	if (argc - optind < 2)
		usage_fail("need two interfaces: " PROG " [options] if_a if_b [rules ...]");
	parse_port(&ports[0], argv[optind], netns[0]);
	parse_port(&ports[1], argv[optind + 1], netns[1]);
	if (ports[0].tun != ports[1].tun)
		usage_fail("cannot relay between an Ethernet interface and a tun device");

	/* Rules may come as separate words or as one quoted string. */
	for (int i = optind + 2; i < argc; i++) {
		char *save = NULL, *copy = strdup(argv[i]);

		if (!copy)
			fail("out of memory");
		for (char *w = strtok_r(copy, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
			char **nw = realloc(words, (nwords + 1) * sizeof *words);

			if (!nw || !(nw[nwords] = strdup(w)))
				fail("out of memory");
			words = nw;
			nwords++;
		}
		free(copy);
	}
	for (int d = 0; d < NDIR; d++) {
		dirs[d].name = d == A2B ? "a2b" : "b2a";
		dirs[d].r.limit = DEFAULT_LIMIT;
		dirs[d].r.reorder_depth = 1;
	}
	parse_rules(words, nwords);
	for (size_t i = 0; i < nwords; i++)
		free(words[i]);
	free(words);
	if (dry_run) {
		print_rules(stdout, "");
		return 0;
	}

	if (!seeded)
		seed = time_seed();
	fprintf(stderr, PROG ": seed %" PRIu64 " (replay with -s %" PRIu64 ")\n", seed, seed);
	print_rules(stderr, PROG ": rules: ");
	for (int d = 0; d < NDIR; d++)
		rng_seed(&dirs[d].rng, seed, (unsigned)d);

	/* Signals arrive through a signalfd polled with the ports. (A signal
	 * unblocked only inside ppoll() is not delivered while ppoll() keeps
	 * finding frames ready, so a busy relay would never hear SIGTERM.) */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGUSR1);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		fail("signalfd: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);

	open_port(&ports[0]);
	open_port(&ports[1]);
	dirs[A2B].in = &ports[0];
	dirs[A2B].out = &ports[1];
	dirs[B2A].in = &ports[1];
	dirs[B2A].out = &ports[0];
	if (duration > 0)
		end = now_ns() + (uint64_t)(duration * 1e9);
	fprintf(stderr, PROG ": ready: %s (a, mtu %u) <-> %s (b, mtu %u)\n", ports[0].spec,
	    ports[0].mtu, ports[1].spec, ports[1].mtu);

	while (!stop) {
		struct pollfd pfd[3] = {
			{ .fd = ports[0].fd, .events = POLLIN },
			{ .fd = ports[1].fd, .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
		};
		struct timespec ts, *tsp = NULL;
		uint64_t now = now_ns(), t;

		if (now >= end)
			break;
		run_due(now);
		t = next_event();
		if (end < t)
			t = end;
		if (t != UINT64_MAX) {
			now = now_ns();
			t = t > now ? t - now : 0;
			ts.tv_sec = (time_t)(t / NS_PER_S);
			ts.tv_nsec = (long)(t % NS_PER_S);
			tsp = &ts;
		}
		if (ppoll(pfd, 3, tsp, NULL) < 0) {
			if (errno == EINTR)
				continue;
			fail("ppoll: %s", strerror(errno));
		}
		if (pfd[2].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
				if (si.ssi_signo == SIGUSR1) {
					report(stderr);
					write_stats();
				} else {
					stop = true;
				}
			}
			if (stop)
				break;
		}
		for (int i = 0; i < 2; i++) {
			if (!(pfd[i].revents & (POLLIN | POLLERR)))
				continue;
			if (ports[i].tun)
				receive_tun(&dirs[i]);
			else
				receive_packet(&dirs[i]);
		}
	}

	report(stderr);
	write_stats();
	while (queue.len)
		free(heap_pop());
	free(queue.v);
	for (int d = 0; d < NDIR; d++) {
		while (dirs[d].held) {
			struct frame *h = dirs[d].held;

			dirs[d].held = h->next;
			free(h);
		}
	}
	close(ports[0].fd);
	close(ports[1].fd);
	close(sfd);
	return 0;
}
