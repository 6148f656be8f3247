/* libFuzzer harness for TCP: segment arrival in every state, the user calls,
 * the timers, and the invariants that hold between them.
 *
 * Each input is a small program run against a fresh stack in L3 mode
 * (10.9.0.2/24, bare IPv4, no ARP) on a virtual clock, with ust_tcp on top.
 * The peer is 10.9.0.1 (and 10.9.0.3 now and then).
 *
 * Header (3 bytes):
 *   u16   MTU = 576 + v % 8425 (576..9000)
 *   u8    set-up: bit 0 small buffers (4 KiB, so windows fill and close)
 *                 bit 1 rfc1337 (RST ignored in TIME-WAIT)
 *                 bit 2 a pool of 8 packet buffers, not 256
 *                 bit 3 MSL 0.5 s (TIME-WAIT 1 s), FIN timeout 2 s
 *                 bit 4 max_conns 6, max_tw 2
 *                 bit 5 orphan_retries 0, retries2 3
 *
 * Then operations until the input ends, each an opcode byte (mod 16) and
 * its arguments; a missing byte reads as 0. Multi-byte values are
 * big-endian; "s16" is a signed delta.
 *
 *   0-4  SEGMENT from the peer
 *        u8 sel    bits 0-2 idx, 3-4 port mode, 5 bad checksum, 6-7 j
 *        u8 flags  the TCP flags byte as sent (CWR/ECE included)
 *        u8 mode   bits 0-1 seq mode, 2-3 ack mode, 4 from 10.9.0.3,
 *                  5 rx flag UST_RX_CSUM_OK, 6 urgent pointer set,
 *                  7 data offset from the input (u8 at the end)
 *        port mode 0: the ports of live connection idx (else mode 1)
 *                  1: 40000+idx -> 8000+j (the listening ports)
 *                  2: 40000+idx -> the local port of slot j
 *                  3: u16 sport, u16 dport
 *        seq  mode 0: u32 raw; 1: RCV.NXT + s16; 2: PEER_ISN + s16;
 *                  3: RCV.ADV (the right edge) + s16
 *        ack  mode 0: u32 raw; 1: SND.UNA + s16; 2: SND.NXT + s16;
 *                  3: SND.MAX + s16
 *             (RCV.*, SND.* of the connection those ports reach; with none,
 *             PEER_ISN for seq and 0 for ack)
 *        u16 window
 *        u8 options: bit 0 MSS (u16), 1 window scale (u8), 2 SACK-permitted,
 *             3 timestamps (s8 val delta, u8 ecr lag behind our clock),
 *             4 SACK blocks (u8 n; per block u16 start past SND.UNA, u16 len),
 *             5 raw bytes (u8 n, n bytes), 6 pad with EOL not NOP,
 *             7 an NOP first. Cut at 40 bytes.
 *        u8 payload: b < 128: b bytes, else (b & 127) * 64 bytes; the
 *             bytes are a function of their sequence number, so that the
 *             data the user reads can be checked.
 *   5    ICMP error quoting a segment of live connection idx
 *        u8 sel: bits 0-2 idx, 3-4 type (unreach, time exceeded, param
 *        problem, unreach), 5 from a router; u8 code; s16 seq past SND.UNA;
 *        u16 next-hop MTU
 *   6-7  CLOCK: u8 b, b >> 6 = 0: (b & 63) + 1 ms; 1: (b & 63) * 50 ms;
 *        2: (b & 63) * 2 s; 3: to the next timer deadline, (b & 63) + 1 times.
 *        Every timer runs at its own deadline on the way.
 *   8    SOCKET: u8: bits 0-2 slot, 3-5 bind (0 none, 1-4 8000+n-1, 5 40000,
 *        6 40001, 7 port 0), 6 SO_REUSEADDR. On a used slot: bind again.
 *   9    LISTEN: u8: bits 0-2 slot, 3-4 port 8000+n (bound first if the slot
 *        is empty), 5-7 backlog
 *   10   CONNECT: u8: bits 0-2 slot, 3-5 port 40000+n, 6 to 10.9.0.3,
 *        7 bind to 8000+(n & 3) first
 *   11   ACCEPT: u8 slot of the listener; into the first free slot
 *   12   SEND: u8 slot, u16 length (the bytes are a function of their
 *        sequence number: every segment sent is checked against it)
 *   13   RECEIVE: u8 slot, u16 length; the bytes read are checked
 *   14   u8: bits 0-2 slot, (b >> 3) % 6: close, abort, shutdown RD, WR,
 *        RDWR, shutdown with a bad "how"
 *   15   u8: bits 0-2 slot, b >> 3: 0-10 setsockopt (that option, value
 *        s16 << (u8 & 7)), 11 an unknown option, 12 SO_LINGER (u8 on, u8
 *        seconds), 14 TCP_QUICKACK (a value as for 0-10), 13 and 15-31
 *        getsockopt of all, status, SO_ERROR
 *
 * Up to 8 sockets (slots) are held by the program. At the end every slot is
 * closed and the clock runs on (up to 60 virtual days, 200000 timer runs)
 * until every connection is freed; then ust_tcp_destroy, and every packet
 * buffer must be back in the pool.
 *
 * Checked, aborting with a message:
 * - every frame the stack sends: IPv4 from us, DF, TTL 64, length <= MTU,
 *   TCP with a right checksum, header length 20..60 and within the frame,
 *   well-formed options (MSS, window scale, SACK-permitted only on SYN),
 *   no SYN with RST or FIN, no URG, payload <= the connection's MSS, data
 *   bytes equal to what the user sent at those sequence numbers, and the
 *   right edge of the window never moving left;
 * - after every operation and every timer run (tests/common/tcp_invariants.c,
 *   which the segment-script driver runs too): for every control block in
 *   the table, the state is valid, SND.UNA <= SND.NXT <= SND.MAX <= end of
 *   data (+FIN), the buffers hold no more than their capacity, the
 *   out-of-order ranges are sorted, disjoint, above RCV.NXT and within the
 *   receive ring, SACKed ranges likewise within SND.UNA..SND.MAX, the timer
 *   heap is a heap of live blocks with the right deadlines, listeners'
 *   queues add up, an orphan that is not CLOSED has a timer (or it would
 *   never go away), a CLOSED orphan has been freed, the blocks the table
 *   holds are nconns, and every packet buffer is back after each flush;
 * - no stall: data or a FIN in flight or not sent yet has the
 *   retransmission (or persist) timer running, an ACK owed has the
 *   delayed-ACK timer; the MSS fits the MTU, and so does the MSS a SYN
 *   announces;
 * - the bytes the user receives are the peer's bytes, in order;
 * - events and the closed hook name live blocks.
 *
 * Environment: FUZZ_TCP_TRACE=1 prints every operation and every segment
 * (to read a reproducer); FUZZ_TCP_KNOWN=name,... (or "all") lets the
 * engine bugs already reported but not fixed through as counters (see
 * kb_names), so that a long run can find the next one.
 *
 * Seeds: tests/fuzz/seeds-tcp, written by tests/fuzz/mkseeds-tcp.py, which
 * also writes reproducers of the bugs found (--repro). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "csum.h"
#include "stack.h"
#include "tcp.h"
#include "tcp_impl.h"
#include "tcp_invariants.h"

#define OUR_IP 0x0a090002u   /* 10.9.0.2 */
#define PEER_IP 0x0a090001u  /* 10.9.0.1 */
#define OTHER_IP 0x0a090003u /* 10.9.0.3 */
#define ROUTER_IP 0x0a0900feu
#define PEER_ISN 1000000u
#define LISTEN_PORT 8000
#define PEER_PORT 40000
#define NSLOTS 8
#define NFLOWS 64
#define START_TIME UST_SEC(1000)

/* What the harness remembers of one connection (by control block, from
 * its first window to CLOSED). */
/* A connection by its ports and ISN, not its block's address: a
 * TIME-WAIT kept as a record is another block each time it is made one
 * (stack/tcp_twrec.c), and a new connection may get a freed block's. */
struct flow {
	bool live;                   /* false: free */
	uint16_t lport, rport;
	uint32_t iss;
	bool used;
	uint32_t edge;               /* right edge of the latest window sent */
};

struct fuzz {
	struct ust_stack st;
	struct ust_tcp tcp;
	ust_time now;
	struct ust_tcb *slot[NSLOTS];
	struct flow flows[NFLOWS];
	const uint8_t *in;
	size_t left;
	unsigned op;                 /* operations run, for messages */
	volatile uint32_t sink;
};

static struct fuzz z;
static int trace = -1; /* FUZZ_TCP_TRACE=1: print every operation and segment */

#define TRACE(...)                                                               \
	do {                                                                     \
		if (trace > 0)                                                   \
			fprintf(stderr, __VA_ARGS__);                            \
	} while (0)

/* The harness's own checks are not what coverage should reward. */
#define NOCOV __attribute__((no_sanitize("coverage")))

/* Engine bugs already reported can be let through, so that a long run finds
 * the next one: FUZZ_TCP_KNOWN=name,name (or "all") turns these checks into
 * counters printed at exit. */
enum known { KB_NONE, KB_N };
static const char *const kb_names[KB_N] = {
	/* No engine bug is open: every one found so far is fixed (f03a87c,
	 * 826a1df). Name the next one here and use KNOWN() at its check if
	 * it cannot be fixed at once. */
	[KB_NONE] = "none",
};
static unsigned kb_skip;
static unsigned long kb_hits[KB_N];

#define KNOWN(bug, cond, ...)                                                    \
	do {                                                                     \
		if (!(cond)) {                                                   \
			if (kb_skip & (1u << (bug)))                             \
				kb_hits[bug]++;                                  \
			else                                                     \
				FAIL(__VA_ARGS__);                               \
		}                                                                \
	} while (0)

static void kb_report(void)
{
	for (unsigned i = 0; i < KB_N; i++)
		if (kb_hits[i])
			fprintf(stderr, "fuzz_tcp: known bug %s let through %lu times\n", kb_names[i],
				kb_hits[i]);
}

static void kb_init(void)
{
	const char *e = getenv("FUZZ_TCP_KNOWN");

	trace = getenv("FUZZ_TCP_TRACE") != NULL;
	if (!e)
		return;
	for (unsigned i = 0; i < KB_N; i++)
		if (!strcmp(e, "all") || strstr(e, kb_names[i]))
			kb_skip |= 1u << i;
	atexit(kb_report);
}

NOCOV static const char *fmt_flags(uint8_t f, char *b)
{
	char *p = b;

	if (f & UST_TH_SYN) *p++ = 'S';
	if (f & UST_TH_FIN) *p++ = 'F';
	if (f & UST_TH_RST) *p++ = 'R';
	if (f & UST_TH_PSH) *p++ = 'P';
	if (f & UST_TH_URG) *p++ = 'U';
	if (f & UST_TH_ACK) *p++ = '.';
	if (f & 0xc0) *p++ = 'E';
	*p = 0;
	return b;
}

#define FAIL(...)                                                                \
	do {                                                                     \
		fprintf(stderr, "fuzz_tcp: %s:%d: op %u, t=%llu us: ", __FILE__, \
			__LINE__, z.op, (unsigned long long)(z.now - START_TIME)); \
		fprintf(stderr, __VA_ARGS__);                                    \
		fprintf(stderr, "\n");                                           \
		abort();                                                         \
	} while (0)

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond))                                                     \
			FAIL("%s", #cond);                                       \
	} while (0)

/* A check about one control block: says which, and in which state. */
#define CHECKT(t, cond)                                                          \
	do {                                                                     \
		if (!(cond))                                                     \
			FAIL("tcb %u->%u %s%s: %s (una %u nxt %u max %u buf_seq %u " \
			     "sndbuf %u/%u rcv_nxt %u rcvbuf %u/%u ofo %u)",      \
			     (t)->lport, (t)->rport,                              \
			     ust_tcp_state_name((t)->state),                      \
			     (t)->released ? " orphan" : "", #cond, (t)->snd_una, \
			     (t)->snd_nxt, (t)->snd_max, (t)->snd_buf_seq,        \
			     (t)->sndbuf.len, (t)->sndbuf.cap, (t)->rcv_nxt,      \
			     (t)->rcvbuf.len, (t)->rcvbuf.cap, (t)->ofo.n);      \
	} while (0)

/* ---- reading the program ---- */

NOCOV static uint8_t rd8(void)
{
	uint8_t v;

	if (!z.left)
		return 0;
	v = *z.in++;
	z.left--;
	return v;
}

NOCOV static uint16_t rd16(void)
{
	uint16_t hi = rd8();
	return (uint16_t)(hi << 8 | rd8());
}

NOCOV static uint32_t rd32(void)
{
	uint32_t hi = rd16();
	return hi << 16 | rd16();
}

NOCOV static int32_t rds16(void) { return (int16_t)rd16(); }

/* The byte at a sequence number: ours (what the user sends) and the
 * peer's differ, so that an echo of the wrong stream shows. */
NOCOV static uint8_t our_byte(uint32_t seq) { return (uint8_t)((seq * 2654435761u) >> 24); }
NOCOV static uint8_t peer_byte(uint32_t seq) { return (uint8_t)(((seq * 2246822519u) >> 24) ^ 0x5a); }

NOCOV static void fill_peer(uint8_t *p, uint32_t seq, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		p[i] = peer_byte(seq + i);
}

NOCOV static void fill_ours(uint8_t *p, uint32_t seq, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		p[i] = our_byte(seq + i);
}

NOCOV static void check_received(const uint8_t *data, uint32_t first, long r)
{
	for (long i = 0; i < r; i++)
		if (data[i] != peer_byte(first + (uint32_t)i))
			FAIL("receive: byte %ld of %ld (seq %u) is %#x, the peer sent %#x", i, r,
			     first + (uint32_t)i, data[i], peer_byte(first + (uint32_t)i));
}

/* ---- the table ---- */

/* Live connections with a peer, in table order: what "idx" picks from. */
NOCOV static unsigned live_conns(struct ust_tcb **out, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < z.tcp.hash_size; i++)
		for (struct ust_tcb *t = z.tcp.hash[i]; t; t = t->hnext)
			if (t->rport && n < max)
				out[n++] = t;
	return n;
}

static struct ust_tcb *pick_conn(unsigned idx)
{
	struct ust_tcb *c[64];
	unsigned n = live_conns(c, 64);

	return n ? c[idx % n] : NULL;
}

/* ---- hooks ---- */

NOCOV static void flow_forget(const struct ust_tcb *t);

NOCOV static void on_event(void *ctx, struct ust_tcb *t, unsigned events)
{
	/* A freed block would be a use after free, which ASan reports. */
	CHECKT(t, t->tcp == &z.tcp && t->hashed);
	CHECKT(t, t->state < UST_TCP_NSTATES);
	z.sink += events;
}

NOCOV static void on_closed(void *ctx, const struct ust_tcb *t)
{
	CHECKT(t, t->tcp == &z.tcp && t->hashed);
	CHECKT(t, t->state == UST_TCP_CLOSED);
	CHECKT(t, t->rec.outcome != UST_OUTCOME_NONE);
	CHECKT(t, t->rec.nstates > 0 && t->rec.states[t->rec.nstates - 1] == UST_TCP_CLOSED);
	CHECKT(t, t->due == UST_TIME_NEVER);
	flow_forget(t);
}

/* ---- output ---- */

NOCOV static bool flow_is(const struct flow *f, const struct ust_tcb *t)
{
	return f->live && f->lport == t->lport && f->rport == t->rport && f->iss == t->iss;
}

NOCOV static struct flow *flow_of(const struct ust_tcb *t)
{
	struct flow *f, *free = NULL;

	for (unsigned i = 0; i < NFLOWS; i++) {
		f = &z.flows[i];
		if (flow_is(f, t))
			return f;
		if (!f->live && !free)
			free = f;
	}
	f = free ? free : &z.flows[t->iss % NFLOWS];
	*f = (struct flow){ .live = true, .lport = t->lport, .rport = t->rport, .iss = t->iss };
	return f;
}

/* The block of a 4-tuple as tcp_lookup finds it, but never a TIME-WAIT
 * record made a block for the asking: that would change the tables
 * under whatever is sending the frame. */
NOCOV static struct ust_tcb *block_of(const struct ust_ip6 *laddr, uint16_t lport, const struct ust_ip6 *raddr,
				      uint16_t rport)
{
	for (struct ust_tcb *t = z.tcp.hash[tcp_tuple_hash(raddr, lport, rport) & (z.tcp.hash_size - 1)]; t;
	     t = t->hnext)
		if (t->lport == lport && t->rport == rport && ust_ip6_eq(&t->raddr, raddr) &&
		    ust_ip6_eq(&t->laddr, laddr) && t->state != UST_TCP_LISTEN && t->state != UST_TCP_CLOSED)
			return t;
	return NULL;
}

/* A connection ends: a new one may get the same block and 4-tuple (and,
 * at the same instant, the same ISN). */
NOCOV static void flow_forget(const struct ust_tcb *t)
{
	for (unsigned i = 0; i < NFLOWS; i++)
		if (flow_is(&z.flows[i], t))
			z.flows[i].live = false;
}

/* Our options: each one whole, and only where it belongs. */
NOCOV static void check_opts(const uint8_t *p, unsigned len, bool syn)
{
	unsigned i = 0;

	while (i < len) {
		uint8_t kind = p[i], size;
		if (kind == 0) {
			for (; i < len; i++)
				CHECK(p[i] == 0);
			return;
		}
		if (kind == 1) {
			i++;
			continue;
		}
		CHECK(i + 1 < len);
		size = p[i + 1];
		CHECK(size >= 2 && size <= len - i);
		switch (kind) {
		case 2: CHECK(syn && size == 4); break;
		case 3: CHECK(syn && size == 3 && p[i + 2] <= 14); break;
		case 4: CHECK(syn && size == 2); break;
		case 5: CHECK(!syn && size >= 10 && (size - 2) % 8 == 0); break;
		case 8: CHECK(size == 10); break;
		default: FAIL("we sent option kind %u", kind);
		}
		i += size;
	}
}

/* ECN (RFC 3168) as we send it: no DSCP; only ECT(0), and only on data,
 * never on a SYN; CWR only on ECT data; an ECN-setup SYN has ECE and CWR
 * both, an ECN-setup SYN-ACK ECE alone. */
NOCOV static void check_ecn(const struct ust_ipv4 *ip, const struct ust_tcp_seg *seg)
{
	uint8_t ecn_flags = seg->flags & (UST_TH_ECE | UST_TH_CWR);

	CHECK((ip->tos & ~UST_ECN_MASK) == 0);
	CHECK(seg->ecn == UST_ECN_NOT_ECT || seg->ecn == UST_ECN_ECT0);
	if (seg->ecn == UST_ECN_ECT0)
		CHECK(seg->len > 0 && !(seg->flags & UST_TH_SYN));
	if ((seg->flags & UST_TH_SYN) && !(seg->flags & UST_TH_ACK))
		CHECK(ecn_flags == 0 || ecn_flags == (UST_TH_ECE | UST_TH_CWR));
	else if (seg->flags & UST_TH_CWR)
		CHECK(!(seg->flags & UST_TH_SYN) && seg->ecn == UST_ECN_ECT0);
}

NOCOV static void check_frame(const uint8_t *f, size_t len)
{
	struct ust_ipv4 ip;
	struct ust_tcp_seg seg;
	unsigned hlen;
	struct ust_tcb *t;

	CHECK(len >= UST_IPV4_HLEN + UST_TCP_HLEN);
	CHECK(f[0] == 0x45);
	CHECK(ust_ipv4_parse(f, len, &ip) == UST_OK);
	CHECK(ip.total_len == len);
	if (ip.total_len > z.st.nif.mtu) {
		/* Past the MTU the TCP segment also overran its packet buffer
		 * (headroom + MTU bytes) into the next one: memory corruption
		 * that ASan cannot see inside the pool. */
		unsigned th = (unsigned)(ip.payload[12] >> 4) * 4;
		const struct ust_ip6 ours = ust_ip6_from_v4(OUR_IP), peer = ust_ip6_from_v4(ip.dst);
		const struct ust_tcb *o = tcp_lookup(&z.tcp, &ours, ust_get16(ip.payload),
						     &peer, ust_get16(ip.payload + 2));
		FAIL("a %u-byte datagram on a %u-byte MTU (TCP header %u bytes, payload %u, "
		     "MSS %u)%s", ip.total_len, z.st.nif.mtu, th, ip.payload_len - th,
		     o ? o->mss : 0,
		     ip.payload_len > z.st.nif.mtu ? ": the segment overran its packet buffer" : "");
	}
	CHECK(ip.src == OUR_IP);
	CHECK(ip.dst == PEER_IP || ip.dst == OTHER_IP);
	CHECK(ip.ttl == 64 && ip.frag == UST_IP_DF);
	CHECK(ip.proto == UST_IPPROTO_TCP);
	CHECK(ust_tcp_parse(&ip, false, &seg) == UST_OK);
	hlen = (unsigned)(ip.payload[12] >> 4) * 4;
	CHECK(hlen >= UST_TCP_HLEN && hlen <= UST_TCP_HLEN + UST_TCP_OPT_MAX);
	CHECK((ip.payload[12] & 0x0f) == 0);       /* reserved bits */
	check_ecn(&ip, &seg);
	check_opts(ip.payload + UST_TCP_HLEN, hlen - UST_TCP_HLEN, seg.flags & UST_TH_SYN);
	CHECK(!(seg.flags & UST_TH_URG) && seg.up == 0);
	CHECK(!((seg.flags & UST_TH_SYN) && (seg.flags & (UST_TH_RST | UST_TH_FIN))));
	CHECK(seg.flags & (UST_TH_ACK | UST_TH_RST | UST_TH_SYN));
	if (seg.flags & UST_TH_SYN) {
		CHECK(seg.len == 0);
		if (seg.opt.mss > z.st.nif.mtu - 40)
			FAIL("SYN announces MSS %u on a %u-byte MTU", seg.opt.mss, z.st.nif.mtu);
	}
	if (seg.flags & UST_TH_RST)
		CHECK(seg.len == 0 && !(seg.flags & UST_TH_FIN));
	/* The data is what the user sent at those sequence numbers. */
	for (uint32_t i = 0; i < seg.len; i++)
		if (seg.data[i] != our_byte(seg.seq + i))
			FAIL("byte %u of a %u-byte segment at seq %u is %#x, the user sent %#x",
			     i, seg.len, seg.seq, seg.data[i], our_byte(seg.seq + i));

	{
		char fb[8];
		TRACE("  %8.3f > %u->%u %s seq %u ack %u win %u len %u\n",
		      (double)(z.now - START_TIME) / 1e6, seg.sport, seg.dport,
		      fmt_flags(seg.flags, fb), seg.seq, seg.ack, seg.wnd, seg.len);
	}
	t = block_of(&seg.src, seg.sport, &seg.dst, seg.dport);
	if (!t || (seg.flags & UST_TH_RST))
		return;
	if (seg.len && UST_TCP_SYNCHRONIZED(t->state) &&
	    seq_between(seg.seq, t->snd_una - 1, t->snd_max))
		if (seg.len > t->mss)
			FAIL("a %u-byte segment with an MSS of %u", seg.len, t->mss);
	/* The right edge of the window never moves left (RFC 9293
	 * §3.8.6.2.2; the stack promises it in tcp_rcv_window). */
	if ((seg.flags & UST_TH_ACK) && !(seg.flags & UST_TH_SYN) && UST_TCP_SYNCHRONIZED(t->state) &&
	    seq_between(seg.seq, t->iss, t->snd_max)) {
		struct flow *fl = flow_of(t);
		uint32_t edge = seg.ack + ((uint32_t)seg.wnd << t->rcv_wscale);
		if (fl->used && seq_lt(edge, fl->edge))
			FAIL("%u->%u: window edge moved left from %u to %u (ack %u wnd %u << %u)",
			     t->lport, t->rport, fl->edge, edge, seg.ack, seg.wnd, t->rcv_wscale);
		if (!fl->used || seq_gt(edge, fl->edge))
			fl->edge = edge;
		fl->used = true;
	}
}

NOCOV static unsigned output(void *ctx, struct ust_pkt *const *pkts, unsigned n)
{
	CHECK(n > 0 && n <= UST_TXQ_MAX);
	for (unsigned i = 0; i < n; i++)
		check_frame(pkts[i]->data, pkts[i]->len);
	return n;
}

/* ---- invariants ---- */

/* After every operation: the control blocks (tests/common/tcp_invariants.c),
 * then what the program holds. */
NOCOV static void check_all(void)
{
	char msg[512];

	if (!tcp_invariants_check(&z.tcp, msg, sizeof(msg)))
		FAIL("%s", msg);
	/* What the program holds is alive and not released. */
	for (unsigned s = 0; s < NSLOTS; s++) {
		struct ust_tcb *t = z.slot[s];
		if (!t)
			continue;
		if (!tcp_invariants_holds(&z.tcp, t))
			FAIL("slot %u: the stack freed a block the user holds", s);
		CHECKT(t, !t->released && t->listener == NULL);
	}
}

/* ---- the clock ---- */

static void run_timers(void)
{
	ust_time due = ust_tcp_timers(&z.tcp, z.now);

	CHECK(due > z.now);
	due = ust_stack_timers(&z.st, z.now);
	CHECK(due > z.now);
	ust_stack_flush(&z.st);
}

static ust_time next_due(void)
{
	return z.tcp.heap_len ? z.tcp.heap[0]->due : UST_TIME_NEVER;
}

/* Moves the clock to t, every timer running at its own deadline. */
static void advance_to(ust_time t)
{
	for (;;) {
		ust_time due = next_due();
		if (due > t)
			break;
		if (due > z.now)
			z.now = due;
		run_timers();
		check_all();
	}
	z.now = t;
	run_timers();
}

static void op_clock(void)
{
	uint8_t b = rd8();
	unsigned n = b & 63;

	switch (b >> 6) {
	case 0: advance_to(z.now + UST_MS(n + 1)); break;
	case 1: advance_to(z.now + UST_MS(50) * n); break;
	case 2: advance_to(z.now + UST_SEC(2) * n); break;
	default:
		for (unsigned i = 0; i <= n && next_due() != UST_TIME_NEVER; i++)
			advance_to(next_due() > z.now ? next_due() : z.now);
		break;
	}
}

/* ---- the peer ---- */

static void inject(const uint8_t *buf, size_t len, unsigned rxflags)
{
	ust_stack_input(&z.st, buf, len, rxflags, z.now);
	ust_stack_flush(&z.st);
}

static void op_segment(void)
{
	static uint8_t buf[65536];
	uint8_t sel = rd8(), flags = rd8(), mode = rd8();
	unsigned idx = sel & 7, pmode = (sel >> 3) & 3, j = sel >> 6;
	bool badcsum = sel & 0x20;
	uint32_t src = mode & 0x10 ? OTHER_IP : PEER_IP;
	uint8_t *th = buf + UST_IPV4_HLEN;
	uint8_t opts[64];
	unsigned optlen = 0, hlen, plen, tcplen;
	uint16_t sport, dport;
	uint32_t seq, ack;
	struct ust_tcb *t = NULL;
	uint8_t om, pb;
	uint16_t csum;

	switch (pmode) {
	case 0:
		t = pick_conn(idx);
		if (t) {
			sport = t->rport;
			dport = t->lport;
			src = ust_ip6_to_v4(&t->raddr);
			break;
		}
		/* fall through */
	case 1:
		sport = (uint16_t)(PEER_PORT + idx);
		dport = (uint16_t)(LISTEN_PORT + j);
		break;
	case 2:
		sport = (uint16_t)(PEER_PORT + idx);
		dport = z.slot[j] && z.slot[j]->lport ? z.slot[j]->lport : (uint16_t)(LISTEN_PORT + j);
		break;
	default:
		sport = rd16();
		dport = rd16();
		break;
	}
	{
		const struct ust_ip6 ours = ust_ip6_from_v4(OUR_IP), peer = ust_ip6_from_v4(src);
		t = tcp_lookup(&z.tcp, &ours, dport, &peer, sport);
	}

	switch (mode & 3) {
	case 0: seq = rd32(); break;
	case 1: seq = (t ? t->rcv_nxt : PEER_ISN) + (uint32_t)rds16(); break;
	case 2: seq = PEER_ISN + (uint32_t)rds16(); break;
	default: seq = (t ? t->rcv_adv : PEER_ISN) + (uint32_t)rds16(); break;
	}
	switch ((mode >> 2) & 3) {
	case 0: ack = rd32(); break;
	case 1: ack = (t ? t->snd_una : 0) + (uint32_t)rds16(); break;
	case 2: ack = (t ? t->snd_nxt : 0) + (uint32_t)rds16(); break;
	default: ack = (t ? t->snd_max : 0) + (uint32_t)rds16(); break;
	}
	ust_put16(th + 14, rd16());

	/* Options. */
	om = rd8();
	if (om & 0x80)
		opts[optlen++] = 1;
	if (om & 0x01) {
		uint16_t mss = rd16();
		opts[optlen] = 2;
		opts[optlen + 1] = 4;
		ust_put16(opts + optlen + 2, mss);
		optlen += 4;
	}
	if (om & 0x02) {
		opts[optlen] = 3;
		opts[optlen + 1] = 3;
		opts[optlen + 2] = rd8();
		optlen += 3;
	}
	if (om & 0x04) {
		opts[optlen] = 4;
		opts[optlen + 1] = 2;
		optlen += 2;
	}
	if (om & 0x08) {
		uint32_t val = (uint32_t)(z.now / 1000) + 5000 + (uint32_t)(int8_t)rd8();
		uint8_t lag = rd8();
		uint32_t ecr = t ? tcp_ts_now(t, z.now) - lag : lag;
		opts[optlen] = 8;
		opts[optlen + 1] = 10;
		ust_put32(opts + optlen + 2, val);
		ust_put32(opts + optlen + 6, ecr);
		optlen += 10;
	}
	if (om & 0x10) {
		unsigned n = rd8() % 4 + 1;
		uint32_t base = t ? t->snd_una : 0;
		if (optlen + 2 + 8 * n > UST_TCP_OPT_MAX)
			n = optlen + 2 + 8 <= UST_TCP_OPT_MAX ? (UST_TCP_OPT_MAX - optlen - 2) / 8 : 0;
		if (n) {
			opts[optlen] = 5;
			opts[optlen + 1] = (uint8_t)(2 + 8 * n);
			for (unsigned k = 0; k < n; k++) {
				uint32_t start = base + rd16();
				ust_put32(opts + optlen + 2 + 8 * k, start);
				ust_put32(opts + optlen + 6 + 8 * k, start + rd16());
			}
			optlen += 2 + 8 * n;
		}
	}
	if (om & 0x20) {
		unsigned n = rd8() % 41;
		for (unsigned k = 0; k < n; k++) {
			uint8_t b = rd8();
			if (optlen < sizeof(opts))
				opts[optlen++] = b;
		}
	}
	if (optlen > UST_TCP_OPT_MAX)
		optlen = UST_TCP_OPT_MAX;
	while (optlen % 4)
		opts[optlen++] = om & 0x40 ? 0 : 1;
	hlen = UST_TCP_HLEN + optlen;

	pb = rd8();
	plen = pb < 128 ? pb : (pb & 127) * 64u;

	ust_put16(th, sport);
	ust_put16(th + 2, dport);
	ust_put32(th + 4, seq);
	ust_put32(th + 8, ack);
	th[12] = (uint8_t)(hlen / 4 << 4);
	if (mode & 0x80)
		th[12] = (uint8_t)(rd8() << 4);
	th[13] = flags;
	ust_put16(th + 16, 0);
	ust_put16(th + 18, mode & 0x40 ? 1 : 0);
	memcpy(th + UST_TCP_HLEN, opts, optlen);
	/* The payload: the peer's byte for each sequence number (a SYN takes
	 * the first). */
	tcplen = hlen + plen;
	fill_peer(th + hlen, seq + !!(flags & UST_TH_SYN), plen);
	/* With a data offset of its own, the payload is what follows it:
	 * make those the peer's bytes too. */
	if ((th[12] >> 4) * 4u != hlen && (th[12] >> 4) * 4u >= UST_TCP_HLEN &&
	    (th[12] >> 4) * 4u <= tcplen)
		fill_peer(th + (th[12] >> 4) * 4u, seq + !!(flags & UST_TH_SYN),
			  tcplen - (th[12] >> 4) * 4u);
	csum = ust_csum_fold(ust_csum_add(ust_csum_pseudo(src, OUR_IP, UST_IPPROTO_TCP,
							  (uint16_t)tcplen), th, tcplen));
	if (badcsum)
		csum ^= 0x5a5a;
	ust_put16(th + 16, csum);
	/* The ECN field (RFC 3168) from bits already drawn: ECE and CWR
	 * come with every mark, and without. */
	ust_ipv4_build_tos(buf, src, OUR_IP, UST_IPPROTO_TCP, (uint8_t)(((flags ^ mode) >> 6) & 3),
			   (uint16_t)(UST_IPV4_HLEN + tcplen), (uint16_t)z.op, 64, UST_IP_DF);
	{
		char fb[8];
		TRACE("%3u %8.3f < %u->%u %s seq %u ack %u win %u len %u optlen %u%s%s (%s)\n",
		      z.op, (double)(z.now - START_TIME) / 1e6, sport, dport, fmt_flags(flags, fb),
		      seq, ack, ust_get16(th + 14), plen, optlen, badcsum ? " badcsum" : "",
		      mode & 0x80 ? " doff" : "", t ? ust_tcp_state_name(t->state) : "no tcb");
	}
	inject(buf, UST_IPV4_HLEN + tcplen, mode & 0x20 ? UST_RX_CSUM_OK : 0);
}

static void op_icmp(void)
{
	static const uint8_t types[4] = { UST_ICMP_DEST_UNREACH, UST_ICMP_TIME_EXCEEDED,
					  UST_ICMP_PARAM_PROBLEM, UST_ICMP_DEST_UNREACH };
	uint8_t buf[UST_IPV4_HLEN + UST_ICMP_HLEN + UST_IPV4_HLEN + 8];
	uint8_t *icmp = buf + UST_IPV4_HLEN, *q = icmp + UST_ICMP_HLEN;
	uint8_t sel = rd8(), code = rd8() & 15;
	int32_t delta = rds16();
	uint16_t mtu = rd16();
	struct ust_tcb *t = pick_conn(sel & 7);
	uint32_t dst = t ? ust_ip6_to_v4(&t->raddr) : PEER_IP;

	ust_ipv4_build(q, OUR_IP, dst, UST_IPPROTO_TCP, 1500, 1, 64, UST_IP_DF);
	ust_put16(q + UST_IPV4_HLEN, t ? t->lport : LISTEN_PORT);
	ust_put16(q + UST_IPV4_HLEN + 2, t ? t->rport : PEER_PORT);
	ust_put32(q + UST_IPV4_HLEN + 4, (t ? t->snd_una : 0) + (uint32_t)delta);
	ust_icmp_build(icmp, types[(sel >> 3) & 3], code, mtu, UST_IPV4_HLEN + 8);
	ust_ipv4_build(buf, sel & 0x20 ? ROUTER_IP : dst, OUR_IP, UST_IPPROTO_ICMP, sizeof(buf),
		       (uint16_t)z.op, 64, 0);
	inject(buf, sizeof(buf), 0);
}

/* ---- the user ---- */

static int free_slot(void)
{
	for (int s = 0; s < NSLOTS; s++)
		if (!z.slot[s])
			return s;
	return -1;
}

static struct ust_tcb *slot_create(unsigned s)
{
	int err;

	if (!z.slot[s]) {
		z.slot[s] = ust_tcp_create(&z.tcp, &z.slot[s], &err);
		CHECK((z.slot[s] != NULL) == (err == 0));
	}
	return z.slot[s];
}

static void op_socket(void)
{
	static const uint16_t ports[8] = { 0, LISTEN_PORT, LISTEN_PORT + 1, LISTEN_PORT + 2,
					   LISTEN_PORT + 3, PEER_PORT, PEER_PORT + 1, 0 };
	uint8_t b = rd8();
	unsigned s = b & 7, bs = (b >> 3) & 7;
	bool fresh = !z.slot[s];
	struct ust_tcb *t = slot_create(s);

	if (!t || (fresh && bs == 0))
		return;
	int r = ust_tcp_bind(t, ports[bs], b & 0x40);
	CHECK(r == 0 || r == -EINVAL || r == -EADDRINUSE);
}

static void op_listen(void)
{
	uint8_t b = rd8();
	unsigned s = b & 7;
	bool fresh = !z.slot[s];
	struct ust_tcb *t = slot_create(s);
	int r;

	if (!t)
		return;
	if (fresh)
		ust_tcp_bind(t, (uint16_t)(LISTEN_PORT + ((b >> 3) & 3)), false);
	r = ust_tcp_listen(t, b >> 5);
	CHECK(r == 0 || r == -EINVAL || r == -EADDRINUSE);
	if (r == 0)
		CHECKT(t, t->state == UST_TCP_LISTEN);
}

static void op_connect(void)
{
	uint8_t b = rd8();
	unsigned s = b & 7, k = (b >> 3) & 7;
	bool fresh = !z.slot[s];
	struct ust_tcb *t = slot_create(s);
	int r;

	if (!t)
		return;
	if (fresh && (b & 0x80))
		ust_tcp_bind(t, (uint16_t)(LISTEN_PORT + (k & 3)), true);
	r = ust_tcp_connect(t, b & 0x40 ? OTHER_IP : PEER_IP, (uint16_t)(PEER_PORT + k), z.now);
	ust_stack_flush(&z.st);
	CHECK(r <= 0);
}

static void op_accept(void)
{
	unsigned s = rd8() & 7;
	int f = free_slot(), err;
	struct ust_tcb *c;

	if (!z.slot[s] || f < 0)
		return;
	c = ust_tcp_accept(z.slot[s], &z.slot[f], &err);
	CHECK((c != NULL) == (err == 0));
	if (c) {
		CHECKT(c, c->listener == NULL && !c->released && c->user == &z.slot[f]);
		z.slot[f] = c;
	}
}

static void op_send(void)
{
	static uint8_t data[65536];
	unsigned s = rd8() & 7;
	uint32_t len = rd16();
	struct ust_tcb *t = z.slot[s];
	uint32_t first;
	long r;

	if (!t)
		return;
	first = t->snd_buf_seq + t->sndbuf.len;
	fill_ours(data, first, len);
	r = ust_tcp_send(t, data, len, z.now);
	ust_stack_flush(&z.st);
	CHECK(r <= (long)len);
}

static void op_receive(void)
{
	static uint8_t data[65536];
	unsigned s = rd8() & 7;
	uint32_t len = rd16();
	struct ust_tcb *t = z.slot[s];
	uint32_t first;
	long r;

	if (!t)
		return;
	/* The first unread byte: what is buffered ends at RCV.NXT (less the
	 * FIN, which takes a sequence number). */
	first = t->rcv_nxt - t->rcvbuf.len - (t->fin_rcvd ? 1u : 0u);
	r = ust_tcp_receive(t, data, len, z.now);
	ust_stack_flush(&z.st);
	CHECK(r <= (long)len);
	check_received(data, first, r);
}

static void op_close(void)
{
	uint8_t b = rd8();
	unsigned s = b & 7;
	struct ust_tcb *t = z.slot[s];
	int r;

	if (!t)
		return;
	switch ((b >> 3) % 6) {
	case 0:
		r = ust_tcp_close(t, z.now);
		CHECK(r == 0);
		z.slot[s] = NULL;
		break;
	case 1:
		ust_tcp_abort(t, z.now);
		z.slot[s] = NULL;
		break;
	case 2: ust_tcp_shutdown(t, SHUT_RD, z.now); break;
	case 3: ust_tcp_shutdown(t, SHUT_WR, z.now); break;
	case 4: ust_tcp_shutdown(t, SHUT_RDWR, z.now); break;
	default: CHECK(ust_tcp_shutdown(t, 7, z.now) == -EINVAL); break;
	}
	ust_stack_flush(&z.st);
}

static void op_option(void)
{
	uint8_t b = rd8();
	unsigned s = b & 7, k = b >> 3;
	struct ust_tcb *t = z.slot[s];
	struct ust_tcp_status st;
	int v;

	if (!t)
		return;
	if (k <= UST_TCP_OPT_SYNCNT || k == 14) {
		int32_t val = rds16();
		val = (int32_t)((uint32_t)val << (rd8() & 7));
		if (k == 14)
			k = UST_TCP_OPT_QUICKACK;
		v = ust_tcp_setopt(t, (enum ust_tcp_opt)k, val);
		CHECK(v == 0 || v == -EINVAL);
	} else if (k == 11) {
		CHECK(ust_tcp_setopt(t, (enum ust_tcp_opt)99, 1) == -ENOPROTOOPT);
	} else if (k == 12) {
		bool on = rd8() & 1;
		ust_tcp_set_linger(t, on, rd8());
	} else {
		for (unsigned o = 0; o <= UST_TCP_OPT_QUICKACK; o++)
			CHECK(ust_tcp_getopt(t, (enum ust_tcp_opt)o, &v) == 0);
		ust_tcp_status(t, &st);
		CHECKT(t, st.state == t->state);
		z.sink += (uint32_t)ust_tcp_take_error(t);
	}
	ust_stack_flush(&z.st);
}

/* ---- one program ---- */

static void finish(void)
{
	unsigned runs = 0;

	for (unsigned s = 0; s < NSLOTS; s++) {
		if (z.slot[s]) {
			CHECK(ust_tcp_close(z.slot[s], z.now) == 0);
			z.slot[s] = NULL;
			ust_stack_flush(&z.st);
			check_all();
		}
	}
	/* Nobody answers any more: every connection must time out. */
	while (z.tcp.nconns && next_due() != UST_TIME_NEVER) {
		if (++runs > 200000 || next_due() - START_TIME > UST_SEC(60ull * 86400))
			break;
		advance_to(next_due() > z.now ? next_due() : z.now);
	}
	if (z.tcp.nconns) {
		for (unsigned i = 0; i < z.tcp.hash_size; i++)
			for (struct ust_tcb *t = z.tcp.hash[i]; t; t = t->hnext)
				fprintf(stderr, "fuzz_tcp: left: %u->%u %s%s due %lld\n", t->lport,
					t->rport, ust_tcp_state_name(t->state),
					t->released ? " orphan" : "",
					t->due == UST_TIME_NEVER ? -1LL : (long long)(t->due - z.now));
		FAIL("%u connections never went away (%u timer runs)", z.tcp.nconns, runs);
	}
	CHECK(z.tcp.heap_len == 0);
	ust_stack_flush(&z.st);
	CHECK(z.st.pool.avail == z.st.pool.size);
	ust_tcp_destroy(&z.tcp);
	ust_stack_flush(&z.st);
	CHECK(z.st.txq_len == 0);
	CHECK(z.st.pool.avail == z.st.pool.size);
	ust_stack_destroy(&z.st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ust_netif nif = { .l3 = true, .addr = OUR_IP, .mask = 0xffffff00u };
	struct ust_tcp_config cfg;
	uint8_t setup;

	if (trace < 0)
		kb_init();
	if (size < 3)
		return 0;
	memset(&z, 0, sizeof(z));
	z.in = data;
	z.left = size;
	nif.mtu = 576 + rd16() % (9000 - 576 + 1);
	setup = rd8();

	ust_tcp_default_config(&cfg);
	if (setup & 0x01) {
		/* Small buffers that may still grow a little. */
		cfg.wmem[1] = cfg.rmem[1] = 4096;
		cfg.wmem[2] = cfg.rmem[2] = 16384;
	}
	cfg.rfc1337 = setup & 0x02;
	if (setup & 0x08) {
		cfg.msl_ms = 500;
		cfg.fin_timeout_ms = 2000;
	}
	/* A ceiling and a bound on TIME-WAITs always: the invariant checker
	 * holds 4096 blocks; small ones make sockets and SYNs meet the
	 * ceiling and closes the bound. */
	cfg.max_conns = setup & 0x10 ? 6 : 2048;
	cfg.max_tw = setup & 0x10 ? 2 : 2000;
	if (setup & 0x20) {
		cfg.orphan_retries = 0;
		cfg.retries2 = 3;
	}
	if (setup & 0x40)
		cfg.ecn = 1; /* connect asks for ECN too */
	if (setup & 0x80)
		cfg.syncookies = 2; /* every SYN gets a cookie, every ACK is one */
	cfg.event = on_event;
	cfg.closed = on_closed;
	cfg.ctx = &z;
	CHECK(ust_stack_init(&z.st, &nif, setup & 0x04 ? 8 : 256, output, &z) == 0);
	CHECK(ust_tcp_init(&z.tcp, &z.st, &cfg) == 0);
	z.now = START_TIME;
	run_timers();

	while (z.left) {
		uint8_t op = rd8() % 16;
		z.op++;
		if (op >= 5)
			TRACE("%3u %8.3f op %u (%s) arg %#x\n", z.op, (double)(z.now - START_TIME) / 1e6,
			      op, (const char *[]){ "", "", "", "", "", "icmp", "clock", "clock",
			      "socket", "listen", "connect", "accept", "send", "receive",
			      "close/shutdown", "option" }[op], z.left ? *z.in : 0);
		switch (op) {
		case 0: case 1: case 2: case 3: case 4: op_segment(); break;
		case 5: op_icmp(); break;
		case 6: case 7: op_clock(); break;
		case 8: op_socket(); break;
		case 9: op_listen(); break;
		case 10: op_connect(); break;
		case 11: op_accept(); break;
		case 12: op_send(); break;
		case 13: op_receive(); break;
		case 14: op_close(); break;
		default: op_option(); break;
		}
		check_all();
	}
	finish();
	return 0;
}
