/* Scripted segment tests: a packetdrill-like driver on a virtual clock.
 *
 *   seg-run [-v] [--tolerance_usecs=N] [--family=4|6] FILE.seg...
 *
 * Each script runs against a fresh stack in L3 mode (bare IPv4 frames, no
 * ARP) whose output is captured. The driver reads the whole script first
 * (tokenizer, then a parser that turns each line into a struct line), then
 * executes the lines in time order: inbound segments are built and handed to
 * ust_stack_input(), user calls go to the ust_tcp_* API, and every segment
 * the stack sends must be matched, in order and within the time tolerance,
 * by an outbound line. An "include FILE" line reads a fixture's lines in
 * place (tests/seg/fixtures/). The language is described in
 * tests/seg/README.md.
 *
 * Output is TAP: "1..N", then "ok K - NAME" or "not ok K - NAME" followed by
 * "# " lines naming the script line that failed, what it expected and what
 * the stack did. -v adds a trace of every segment and call, with virtual
 * timestamps. The exit status is 1 if any script failed. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "csum.h"
#include "md5.h"
#include "stack.h"
#include "tcp.h"
#include "tcp_impl.h"
#include "tcp_invariants.h"

#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))
#define OUR_IP IP4(10, 9, 0, 2)
#define PEER_IP IP4(10, 9, 0, 1)
#define OUR_MASK 0xffffff00u
/* With "config ipv6 1": 2001:db8::2/64, the peer 2001:db8::1 (RFC 3849's
 * documentation prefix). */
#define OUR_IP6 { .b = { 0x20, 0x01, 0x0d, 0xb8, [15] = 2 } }
#define PEER_IP6 { .b = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 } }
#define DEFAULT_MTU 1500
#define DEFAULT_PEER_PORT 40000
#define DEFAULT_PEER_ISN 1000000u
#define DEFAULT_TOLERANCE 4000          /* microseconds */
#define POOL_SIZE 1024
#define FIRST_HANDLE 3                  /* like the first fd socket() returns */
#define MAX_HANDLES 64
#define MAX_FLOWS 64
#define MAX_TOKENS 128
#define TOKEN_LEN 64
#define ANY_TIME_LIMIT UST_SEC(1000)    /* how long "*" waits when nothing bounds it */
#define MAX_SAME_INSTANT 1000           /* timer calls allowed at one instant */
#define MAX_INCLUDE_DEPTH 8             /* fixtures including fixtures; deeper is a loop */

static bool verbose;
static long cli_tolerance = -1;
/* --family=6: an IPv4 script runs over IPv6 (see map6_script). */
static bool map6;

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p) {
		fprintf(stderr, "seg-run: out of memory\n");
		exit(2);
	}
	return p;
}

/* A growing string. */
struct sbuf {
	char *s;
	size_t len, cap;
};

static void sb_vprintf(struct sbuf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	if (b->len + (size_t)n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		char *s = realloc(b->s, cap);
		if (!s) {
			fprintf(stderr, "seg-run: out of memory\n");
			exit(2);
		}
		b->s = s;
		b->cap = cap;
	}
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

__attribute__((format(printf, 2, 3)))
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sb_vprintf(b, fmt, ap);
	va_end(ap);
}

static const char *sb_str(const struct sbuf *b) { return b->s ? b->s : ""; }
static void sb_free(struct sbuf *b) { free(b->s); *b = (struct sbuf){ 0 }; }

/* Seconds with six decimals, as packetdrill prints them. */
static const char *fmt_time(ust_time t, char buf[32])
{
	snprintf(buf, 32, "%" PRIu64 ".%06" PRIu64, t / 1000000u, t % 1000000u);
	return buf;
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)s[0]))
		return false;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_u32(const char *s, uint32_t *out)
{
	uint64_t v;

	if (!parse_u64(s, UINT32_MAX, &v))
		return false;
	*out = (uint32_t)v;
	return true;
}

static bool parse_int(const char *s, long long *out)
{
	uint64_t v;

	if (s[0] == '-') {
		if (!parse_u64(s + 1, (uint64_t)LLONG_MAX, &v))
			return false;
		*out = -(long long)v;
		return true;
	}
	if (!parse_u64(s, (uint64_t)LLONG_MAX, &v))
		return false;
	*out = (long long)v;
	return true;
}

/* "1.25" seconds into microseconds, without floating point. */
static bool parse_secs(const char *s, ust_time *out)
{
	ust_time whole = 0, frac = 0;
	int digits = 0;
	bool any = false;

	for (; isdigit((unsigned char)*s); s++, any = true) {
		whole = whole * 10 + (ust_time)(*s - '0');
		if (whole > 100000000u)
			return false;
	}
	if (*s == '.') {
		for (s++; isdigit((unsigned char)*s); s++, any = true) {
			if (++digits > 6)
				return false;
			frac = frac * 10 + (ust_time)(*s - '0');
		}
	}
	if (*s || !any)
		return false;
	while (digits++ < 6)
		frac *= 10;
	*out = whole * 1000000u + frac;
	return true;
}

/* A duration: "40ms", "1.5s", "200us", or bare microseconds. */
static bool parse_duration(const char *s, ust_time *out)
{
	char num[TOKEN_LEN];
	size_t n = strlen(s);
	uint64_t v;

	if (n >= sizeof(num))
		return false;
	if (n > 2 && !strcmp(s + n - 2, "ms")) {
		memcpy(num, s, n - 2);
		num[n - 2] = 0;
		if (!parse_secs(num, out))
			return false;
		*out /= 1000;
		return true;
	}
	if (n > 2 && !strcmp(s + n - 2, "us")) {
		memcpy(num, s, n - 2);
		num[n - 2] = 0;
		if (!parse_u64(num, UINT64_MAX / 2, &v))
			return false;
		*out = v;
		return true;
	}
	if (n > 1 && s[n - 1] == 's') {
		memcpy(num, s, n - 1);
		num[n - 1] = 0;
		return parse_secs(num, out);
	}
	if (!parse_u64(s, UINT64_MAX / 2, &v))
		return false;
	*out = v;
	return true;
}

static bool parse_ip(const char *s, uint32_t *out);

/* An address of either family, IPv4 held mapped (as the engine holds it):
 * a.b.c.d, or IPv6 text, bare or in brackets. */
static bool parse_ip_any(const char *s, struct ust_ip6 *out)
{
	char buf[64];
	size_t n = strlen(s);
	uint32_t v4;

	if (parse_ip(s, &v4)) {
		*out = ust_ip6_from_v4(v4);
		/* --family=6: the script's subnet, 10.9.0.X, is 2001:db8::X. */
		if (map6 && (v4 & OUR_MASK) == (OUR_IP & OUR_MASK)) {
			*out = (struct ust_ip6)PEER_IP6;
			out->b[15] = (uint8_t)v4;
		}
		return true;
	}
	if (s[0] == '[' && n > 2 && s[n - 1] == ']' && n - 2 < sizeof(buf)) {
		memcpy(buf, s + 1, n - 2);
		buf[n - 2] = 0;
		s = buf;
	}
	return inet_pton(AF_INET6, s, out->b) == 1;
}

/* "10.9.0.1" or "2001:db8::1", as the trace writes an address. */
static const char *fmt_ip_any(const struct ust_ip6 *a, char buf[48])
{
	if (ust_ip6_is_v4mapped(a))
		return ust_ip_str(ust_ip6_to_v4(a), buf);
	return ust_ip6_str(a, buf);
}

/* "ADDR:PORT" or "[V6]:PORT" into its halves. */
static bool parse_endpoint(const char *s, struct ust_ip6 *a, uint32_t *port)
{
	char buf[TOKEN_LEN];
	char *colon;

	snprintf(buf, sizeof(buf), "%s", s);
	colon = strrchr(buf, ':');
	if (!colon)
		return false;
	*colon = 0;
	if (buf[0] != '[' && strchr(buf, ':'))
		return false; /* a bare IPv6 address and a port cannot be told apart */
	return parse_ip_any(buf, a) && parse_u32(colon + 1, port) && *port <= 65535;
}

static bool parse_ip(const char *s, uint32_t *out)
{
	unsigned a, b, c, d;
	char tail;

	if (sscanf(s, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) != 4 || a > 255 || b > 255 ||
	    c > 255 || d > 255)
		return false;
	*out = IP4(a, b, c, d);
	return true;
}

/* ---- errno names ---- */

static const struct { const char *name; int value; } errnos[] = {
	{ "EPERM", EPERM },           { "ENOENT", ENOENT },         { "EBADF", EBADF },
	{ "EAGAIN", EAGAIN },         { "ENOMEM", ENOMEM },         { "EACCES", EACCES },
	{ "EBUSY", EBUSY },           { "EINVAL", EINVAL },         { "EMFILE", EMFILE },
	{ "ENFILE", ENFILE },         { "ENOSPC", ENOSPC },         { "EPIPE", EPIPE },
	{ "ENOTSOCK", ENOTSOCK },     { "EDESTADDRREQ", EDESTADDRREQ },
	{ "EMSGSIZE", EMSGSIZE },     { "ENOPROTOOPT", ENOPROTOOPT },
	{ "EOPNOTSUPP", EOPNOTSUPP }, { "EADDRINUSE", EADDRINUSE },
	{ "EADDRNOTAVAIL", EADDRNOTAVAIL },                        { "ENETDOWN", ENETDOWN },
	{ "ENETUNREACH", ENETUNREACH },                            { "ECONNABORTED", ECONNABORTED },
	{ "ECONNRESET", ECONNRESET }, { "ENOBUFS", ENOBUFS },       { "EISCONN", EISCONN },
	{ "ENOTCONN", ENOTCONN },     { "ESHUTDOWN", ESHUTDOWN },   { "ETIMEDOUT", ETIMEDOUT },
	{ "ECONNREFUSED", ECONNREFUSED },                          { "EHOSTDOWN", EHOSTDOWN },
	{ "EHOSTUNREACH", EHOSTUNREACH },                          { "EALREADY", EALREADY },
	{ "EINPROGRESS", EINPROGRESS },                            { "EWOULDBLOCK", EWOULDBLOCK },
	{ "EPROTO", EPROTO },
};

static bool errno_by_name(const char *s, int *out)
{
	for (size_t i = 0; i < UST_ARRAY_SIZE(errnos); i++)
		if (!strcmp(errnos[i].name, s)) {
			*out = errnos[i].value;
			return true;
		}
	return false;
}

static const char *errno_name(int e)
{
	for (size_t i = 0; i < UST_ARRAY_SIZE(errnos); i++)
		if (errnos[i].value == e)
			return errnos[i].name;
	return NULL;
}

/* A result as the script would write it: 1000, -EAGAIN, or (for calls
 * that return an error code, positive_errno) ECONNRESET. */
static const char *fmt_result_as(long long v, bool positive_errno, char buf[48])
{
	const char *n = errno_name((int)(v < 0 ? -v : v));

	if (v < 0 && n)
		snprintf(buf, 48, "-%s", n);
	else if (v > 0 && n && positive_errno)
		snprintf(buf, 48, "%s", n);
	else
		snprintf(buf, 48, "%lld", v);
	return buf;
}

/* An integer result: a number, -ENAME, or ENAME (a positive errno). */
static bool parse_result(const char *s, long long *out)
{
	int e;

	if (s[0] == '-' && isupper((unsigned char)s[1])) {
		if (!errno_by_name(s + 1, &e))
			return false;
		*out = -e;
		return true;
	}
	if (isupper((unsigned char)s[0])) {
		if (!errno_by_name(s, &e))
			return false;
		*out = e;
		return true;
	}
	return parse_int(s, out);
}

/* ------------------------------------------------------------------ */
/* Tokenizer                                                           */
/* ------------------------------------------------------------------ */

/* A line becomes words separated by blanks; '<', '>', ',' and '=' are
 * always tokens of their own. A '#' starts a comment. */
struct tokens {
	char t[MAX_TOKENS][TOKEN_LEN];
	unsigned n;
};

static bool tokenize(const char *line, struct tokens *tk, const char **err)
{
	const char *p = line;

	tk->n = 0;
	for (;;) {
		size_t len = 0;

		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (!*p || *p == '#')
			return true;
		if (tk->n == MAX_TOKENS) {
			*err = "too many tokens on one line";
			return false;
		}
		if (strchr("<>,=", *p)) {
			tk->t[tk->n][0] = *p++;
			tk->t[tk->n++][1] = 0;
			continue;
		}
		while (*p && !strchr(" \t\r\n#<>,=", *p)) {
			if (len + 1 >= TOKEN_LEN) {
				*err = "token too long";
				return false;
			}
			tk->t[tk->n][len++] = *p++;
		}
		tk->t[tk->n++][len] = 0;
	}
}

/* ------------------------------------------------------------------ */
/* The script model                                                    */
/* ------------------------------------------------------------------ */

enum time_kind { TIME_NONE, TIME_ABS, TIME_REL, TIME_ANY };

struct time_spec {
	enum time_kind kind;
	ust_time a;            /* absolute, or offset from the previous line */
	bool range;            /* "A~B": any time from a to b */
	enum time_kind kind_b;
	ust_time b;
};

enum opt_kind { OPT_EOL, OPT_NOP, OPT_MSS, OPT_WSCALE, OPT_SACKOK, OPT_SACK, OPT_TS, OPT_MD5, OPT_RAW };

#define OPT_LIST_MAX 40

struct opt {
	enum opt_kind kind;
	uint32_t v;                    /* mss, wscale */
	uint32_t val, ecr;             /* timestamps */
	bool val_any, ecr_any;         /* "*" (outbound lines only) */
	uint8_t nblocks;
	uint32_t blk[4][2];            /* SACK blocks, relative */
	uint8_t raw[OPT_LIST_MAX];     /* OPT_RAW: the bytes themselves; OPT_MD5 (sent): the digest */
	uint8_t rawlen;
	char key[UST_TCP_MD5_KEYLEN_MAX + 1]; /* OPT_MD5 (written): the key that signs */
};

struct opt_list {
	bool present;                  /* "<...>" written (outbound: check them) */
	unsigned n;
	struct opt o[OPT_LIST_MAX];
};

struct seg_spec {
	bool outbound;
	uint8_t flags;
	uint32_t start, end, len;      /* relative sequence numbers, payload length */
	bool has_ack, has_win;
	uint32_t ack, win;
	struct opt_list opts;
	int sport, dport;              /* -1: the flow's */
	bool has_src, has_dst;
	struct ust_ip6 src, dst;       /* IPv4 mapped */
	bool badcsum;                  /* inbound: corrupt the checksum */
	uint8_t ecn;                   /* the IP header's ECN field: set (inbound), expected (outbound) */
	/* Outbound, the rest of the IP header as IP_TOS, IP_TTL and
	 * IP_MTU_DISCOVER make it: the TOS byte less its ECN field (0 unless
	 * "tos 0xNN"), the TTL (64 unless "ttl N"), DF (unless "nodf"). */
	uint8_t tos;
	uint8_t ttl;                   /* 0: the default, 64; inbound, the TTL or hop limit it comes with */
	/* IPv6's flow label. Inbound: "label N" (0 unless written).
	 * Outbound: "label same" or "label new" against the connection's
	 * last; unless written, the same, or a new one on a segment that
	 * sends again what was sent before (a retransmission, a SYN again);
	 * "label none": 0 (IPV6_AUTOFLOWLABEL 0). */
	enum { LABEL_ANY, LABEL_SAME, LABEL_NEW, LABEL_NONE } label;
	uint32_t flow;
	bool nodf;
	uint16_t up;                   /* "urg N": the urgent pointer, set (inbound), expected (outbound) */
};

struct icmp_spec {
	uint8_t type, code;            /* ICMP's; ICMPv6's when it quotes an IPv6 segment (icmp6_of) */
	uint16_t mtu;
	bool has_src;
	struct ust_ip6 src;
	uint8_t ttl;                   /* 0: as it was (IPv4: the quoted TTL; IPv6: the message's hop limit, 64) */
};

enum cmd {
	CMD_SOCKET, CMD_BIND, CMD_LISTEN, CMD_CONNECT, CMD_ACCEPT, CMD_SEND, CMD_RECV,
	CMD_SHUTDOWN, CMD_CLOSE, CMD_ABORT, CMD_SETSOCKOPT, CMD_GETSOCKOPT, CMD_LINGER,
	CMD_SO_ERROR, CMD_STATE, CMD_EVENTS, CMD_STATUS, CMD_RECORD, CMD_CONNS, CMD_COUNTER,
	CMD_QUIET, CMD_URGENT, CMD_RCV_URGENT, CMD_TAKEN, CMD_HANDOFF,
};

/* What follows "=" in a call line. */
enum result_kind {
	RES_NONE,      /* the call returns nothing */
	RES_INT,       /* a number or an errno name */
	RES_HANDLE,    /* a handle number, or -ERRNO */
	RES_WORDS,     /* compared as text by the command itself */
	RES_EVENTS,    /* an event mask */
};

struct cmd_def {
	const char *name;
	enum cmd cmd;
	bool handle;            /* the first argument is a handle */
	unsigned min_args, max_args; /* besides the handle */
	enum result_kind result;
	const char *usage;
};

static const struct cmd_def cmds[] = {
	{ "socket", CMD_SOCKET, false, 0, 1, RES_HANDLE, "socket [AF_INET|AF_INET6|AF_INET6_V6ONLY] = H" },
	{ "bind", CMD_BIND, true, 1, 1, RES_INT, "bind H PORT = R" },
	{ "listen", CMD_LISTEN, true, 1, 1, RES_INT, "listen H BACKLOG = R" },
	{ "connect", CMD_CONNECT, true, 1, 1, RES_INT, "connect H ADDR:PORT = R" },
	{ "accept", CMD_ACCEPT, true, 0, 0, RES_HANDLE, "accept H = H2 | -ERRNO" },
	{ "send", CMD_SEND, true, 1, 1, RES_INT, "send H LEN = R" },
	{ "recv", CMD_RECV, true, 1, 1, RES_INT, "recv H LEN = R" },
	{ "shutdown", CMD_SHUTDOWN, true, 1, 1, RES_INT, "shutdown H SHUT_RD|SHUT_WR|SHUT_RDWR = R" },
	{ "close", CMD_CLOSE, true, 0, 0, RES_INT, "close H = R" },
	{ "abort", CMD_ABORT, true, 0, 0, RES_NONE, "abort H" },
	{ "setsockopt", CMD_SETSOCKOPT, true, 2, 2, RES_INT, "setsockopt H NAME VALUE = R" },
	{ "getsockopt", CMD_GETSOCKOPT, true, 1, 1, RES_INT, "getsockopt H NAME = VALUE" },
	{ "linger", CMD_LINGER, true, 2, 2, RES_NONE, "linger H ON SECONDS" },
	{ "so_error", CMD_SO_ERROR, true, 0, 0, RES_INT, "so_error H = ERRNO|0" },
	{ "state", CMD_STATE, true, 0, 0, RES_WORDS, "state H = NAME" },
	{ "events", CMD_EVENTS, true, 0, 0, RES_EVENTS, "events H = A|B (or: events H has A|B)" },
	{ "status", CMD_STATUS, true, 1, 1, RES_WORDS, "status H FIELD = VALUE" },
	{ "record", CMD_RECORD, true, 1, 1, RES_WORDS, "record H FIELD = VALUE" },
	{ "conns", CMD_CONNS, false, 0, 0, RES_INT, "conns = N" },
	{ "counter", CMD_COUNTER, false, 1, 1, RES_INT, "counter NAME = N" },
	{ "quiet", CMD_QUIET, false, 0, 0, RES_NONE, "quiet" },
	{ "taken_elsewhere", CMD_TAKEN, false, 0, 0, RES_NONE,
	  "taken_elsewhere (another stack took every 4-tuple over: tuple_taken)" },
	{ "urgent", CMD_URGENT, true, 1, 1, RES_NONE, "urgent H BEYOND (MSG_OOB: the mark BEYOND bytes past the queue)" },
	{ "rcv_urgent", CMD_RCV_URGENT, true, 0, 0, RES_INT, "rcv_urgent H = OFFSET | -1" },
	{ "handoff", CMD_HANDOFF, false, 0, 0, RES_NONE,
	  "handoff (each closed socket's TIME-WAIT exported, forgotten and adopted, as by another stack)" },
};

struct call {
	const struct cmd_def *def;
	int h;                         /* handle, -1 if none */
	unsigned nargs;
	char arg[2][TOKEN_LEN];
	bool has_result;
	bool subset;                   /* events H has ... */
	long long rv;                  /* RES_INT, RES_HANDLE, RES_EVENTS */
	char words[256];               /* RES_WORDS */
};

enum line_kind { L_CONFIG, L_TOLERANCE, L_TIMER_LAG, L_PEER_ISN, L_PEER_PORT, L_SEG, L_ICMP, L_CALL };

struct line {
	unsigned src;                  /* the file it was read from (script->srcs) */
	int lineno;
	enum line_kind kind;
	struct time_spec time;
	char text[256];                /* the line as written, for messages */
	unsigned body;                 /* where the text after the time starts */
	union {
		struct seg_spec seg;
		struct icmp_spec icmp;
		struct call call;
		ust_time tolerance;
		uint32_t u32;
	};
};

/* Configuration gathered from the "config" lines. */
struct script_config {
	struct ust_tcp_config tcp;
	unsigned mtu;
	bool ipv6;                     /* sockets AF_INET6, the stack and the peer at OUR_IP6, PEER_IP6 */
	bool v6only;                   /* IPV6_V6ONLY on every socket */
	unsigned reuseport_others;     /* listeners other processes have in our SO_REUSEPORT groups */
};

/* A file lines were read from: the script itself (srcs[0]) or a fixture an
 * "include" line brought in, with the line that included it. */
struct src {
	char *name;                    /* as messages name it: "c01-active-close.seg",
					  "fixtures/listen.seg" (relative to the script) */
	char *path;                    /* where it was opened */
	unsigned parent;               /* the including file, for srcs[1..] */
	int parent_line;
};

struct script {
	const char *path;
	const char *name;
	struct line *lines;
	unsigned nlines, cap;
	struct src *srcs;
	unsigned nsrcs;
	struct script_config cfg;
	bool native6;                  /* --family=6 and the script says "config ipv6" itself */
	char only4[160];               /* "family 4 WHY": why it runs over IPv4 only */
};

/* ------------------------------------------------------------------ */
/* Parser                                                              */
/* ------------------------------------------------------------------ */

struct parser {
	struct script *sc;
	struct tokens tk;
	unsigned pos;
	const char *path;              /* the file being read */
	int lineno;
	struct sbuf *err;
	bool timed_seen;
};

__attribute__((format(printf, 2, 3)))
static bool perr(struct parser *p, const char *fmt, ...)
{
	va_list ap;

	sb_printf(p->err, "%s:%d: syntax error: ", p->path, p->lineno);
	va_start(ap, fmt);
	sb_vprintf(p->err, fmt, ap);
	va_end(ap);
	sb_printf(p->err, "\n");
	return false;
}

static const char *peek(struct parser *p)
{
	return p->pos < p->tk.n ? p->tk.t[p->pos] : NULL;
}

static const char *next(struct parser *p)
{
	return p->pos < p->tk.n ? p->tk.t[p->pos++] : NULL;
}

static bool accept_tok(struct parser *p, const char *s)
{
	if (peek(p) && !strcmp(peek(p), s)) {
		p->pos++;
		return true;
	}
	return false;
}

static bool next_u32(struct parser *p, const char *what, uint32_t *out)
{
	const char *t = next(p);

	if (!t || !parse_u32(t, out))
		return perr(p, "%s: expected a number, got '%s'", what, t ? t : "end of line");
	return true;
}

/* One time bound: "0.1" (absolute) or "+0.1" (relative). */
static bool parse_time_one(const char *s, enum time_kind *kind, ust_time *v)
{
	*kind = TIME_ABS;
	if (*s == '+') {
		*kind = TIME_REL;
		s++;
	}
	return parse_secs(s, v);
}

static bool parse_time(struct parser *p, const char *s, struct time_spec *t)
{
	char a[TOKEN_LEN];
	const char *tilde = strchr(s, '~');

	*t = (struct time_spec){ 0 };
	if (!strcmp(s, "*")) {
		t->kind = TIME_ANY;
		return true;
	}
	if (!tilde)
		return parse_time_one(s, &t->kind, &t->a) ||
		       perr(p, "bad time '%s' (want 1.5, +0.2, * or A~B)", s);
	memcpy(a, s, (size_t)(tilde - s));
	a[tilde - s] = 0;
	t->range = true;
	if (!parse_time_one(a, &t->kind, &t->a) || !parse_time_one(tilde + 1, &t->kind_b, &t->b))
		return perr(p, "bad time range '%s'", s);
	return true;
}

static bool parse_flags(struct parser *p, const char *s, uint8_t *flags)
{
	*flags = 0;
	if (!strcmp(s, "-"))
		return true;
	for (; *s; s++) {
		switch (*s) {
		case 'S': *flags |= UST_TH_SYN; break;
		case 'F': *flags |= UST_TH_FIN; break;
		case 'R': *flags |= UST_TH_RST; break;
		case 'P': *flags |= UST_TH_PSH; break;
		case 'U': *flags |= UST_TH_URG; break;
		case 'E': *flags |= UST_TH_ECE; break;
		case 'W': *flags |= UST_TH_CWR; break;
		case '.': *flags |= UST_TH_ACK; break;
		default:
			return perr(p, "bad flags '%s' (letters S F R P U E W, '.' for ACK, '-' for none)", s);
		}
	}
	return true;
}

/* "START:END(LEN)" */
static bool parse_seq(struct parser *p, const char *s, struct seg_spec *g)
{
	unsigned long long a, b, c;
	int used = -1;

	if (sscanf(s, "%llu:%llu(%llu)%n", &a, &b, &c, &used) != 3 || used < 0 || s[used] ||
	    a > UINT32_MAX || b > UINT32_MAX || c > 65000)
		return perr(p, "bad sequence '%s' (want START:END(LEN))", s);
	if ((uint32_t)(b - a) != c)
		return perr(p, "'%s': END - START is not LEN", s);
	g->start = (uint32_t)a;
	g->end = (uint32_t)b;
	g->len = (uint32_t)c;
	return true;
}

static bool hex_nibble(char c, uint8_t *v)
{
	if (c >= '0' && c <= '9') *v = (uint8_t)(c - '0');
	else if (c >= 'a' && c <= 'f') *v = (uint8_t)(c - 'a' + 10);
	else if (c >= 'A' && c <= 'F') *v = (uint8_t)(c - 'A' + 10);
	else return false;
	return true;
}

static unsigned opt_wire_len(const struct opt *o)
{
	switch (o->kind) {
	case OPT_EOL: case OPT_NOP: return 1;
	case OPT_MSS: return 4;
	case OPT_WSCALE: return 3;
	case OPT_SACKOK: return 2;
	case OPT_SACK: return 2 + 8u * o->nblocks;
	case OPT_TS: return 10;
	case OPT_MD5: return 2 + UST_MD5_LEN;
	case OPT_RAW: return o->rawlen;
	}
	return 0;
}

/* One element of "<...>". */
static bool parse_opt(struct parser *p, struct opt *o, bool outbound)
{
	const char *t = next(p);
	const char *v;

	*o = (struct opt){ 0 };
	if (!t)
		return perr(p, "unfinished option list");
	if (!strcmp(t, "nop")) {
		o->kind = OPT_NOP;
	} else if (!strcmp(t, "eol")) {
		o->kind = OPT_EOL;
	} else if (!strcmp(t, "sackOK")) {
		o->kind = OPT_SACKOK;
	} else if (!strcmp(t, "mss")) {
		o->kind = OPT_MSS;
		if (!next_u32(p, "mss", &o->v))
			return false;
		if (o->v > 65535)
			return perr(p, "mss %u does not fit 16 bits", o->v);
	} else if (!strcmp(t, "wscale")) {
		o->kind = OPT_WSCALE;
		if (!next_u32(p, "wscale", &o->v))
			return false;
		if (o->v > 255)
			return perr(p, "wscale %u does not fit a byte", o->v);
	} else if (!strcmp(t, "TS")) {
		o->kind = OPT_TS;
		if (!accept_tok(p, "val"))
			return perr(p, "TS: expected 'val'");
		v = next(p);
		if (v && !strcmp(v, "*"))
			o->val_any = true;
		else if (!v || !parse_u32(v, &o->val))
			return perr(p, "TS val: expected a number or '*'");
		if (!accept_tok(p, "ecr"))
			return perr(p, "TS: expected 'ecr'");
		v = next(p);
		if (v && !strcmp(v, "*"))
			o->ecr_any = true;
		else if (!v || !parse_u32(v, &o->ecr))
			return perr(p, "TS ecr: expected a number or '*'");
		if ((o->val_any || o->ecr_any) && !outbound)
			return perr(p, "'*' in an inbound TS option");
	} else if (!strcmp(t, "sack")) {
		o->kind = OPT_SACK;
		while (peek(p) && strcmp(peek(p), ",") && strcmp(peek(p), ">")) {
			unsigned long long a, b;
			char tail;
			const char *blk = next(p);
			if (o->nblocks == 4)
				return perr(p, "more than 4 SACK blocks");
			if (sscanf(blk, "%llu:%llu%c", &a, &b, &tail) != 2 || a > UINT32_MAX ||
			    b > UINT32_MAX)
				return perr(p, "bad SACK block '%s' (want A:B)", blk);
			o->blk[o->nblocks][0] = (uint32_t)a;
			o->blk[o->nblocks++][1] = (uint32_t)b;
		}
		if (!o->nblocks)
			return perr(p, "sack without blocks");
	} else if (!strcmp(t, "md5")) {
		/* RFC 2385's signature with this key: made (inbound) or
		 * checked (outbound) over the whole segment. */
		o->kind = OPT_MD5;
		v = next(p);
		if (!v || !strcmp(v, ",") || !strcmp(v, ">") || strlen(v) > UST_TCP_MD5_KEYLEN_MAX)
			return perr(p, "md5: expected a key of 1 to %d characters", UST_TCP_MD5_KEYLEN_MAX);
		snprintf(o->key, sizeof(o->key), "%s", v);
	} else if (!strcmp(t, "opt")) {
		o->kind = OPT_RAW;
		while (peek(p) && strcmp(peek(p), ",") && strcmp(peek(p), ">")) {
			const char *h = next(p);
			size_t n = strlen(h);
			if (n % 2)
				return perr(p, "opt: odd number of hex digits in '%s'", h);
			for (size_t i = 0; i < n; i += 2) {
				uint8_t hi, lo;
				if (!hex_nibble(h[i], &hi) || !hex_nibble(h[i + 1], &lo))
					return perr(p, "opt: '%s' is not hex", h);
				if (o->rawlen == OPT_LIST_MAX)
					return perr(p, "opt: more than %d bytes", OPT_LIST_MAX);
				o->raw[o->rawlen++] = (uint8_t)(hi << 4 | lo);
			}
		}
		if (!o->rawlen)
			return perr(p, "opt without bytes");
	} else {
		return perr(p, "unknown option '%s'", t);
	}
	return true;
}

static bool parse_opt_list(struct parser *p, struct opt_list *l, bool outbound)
{
	unsigned bytes = 0;

	l->present = true;
	l->n = 0;
	if (accept_tok(p, ">"))
		return true;
	for (;;) {
		if (l->n == OPT_LIST_MAX)
			return perr(p, "too many options");
		if (!parse_opt(p, &l->o[l->n], outbound))
			return false;
		bytes += opt_wire_len(&l->o[l->n++]);
		if (accept_tok(p, ">"))
			break;
		if (!accept_tok(p, ","))
			return perr(p, "expected ',' or '>' in the option list, got '%s'",
				    peek(p) ? peek(p) : "end of line");
	}
	if (bytes > UST_TCP_OPT_MAX)
		return perr(p, "options take %u bytes, more than %d", bytes, UST_TCP_OPT_MAX);
	return true;
}

static bool parse_port(struct parser *p, const char *what, int *port)
{
	uint32_t v;

	if (!next_u32(p, what, &v))
		return false;
	if (v > 65535)
		return perr(p, "%s %u is not a port", what, v);
	*port = (int)v;
	return true;
}

static bool parse_addr_tok(struct parser *p, const char *what, struct ust_ip6 *a)
{
	const char *t = next(p);

	if (!t || !parse_ip_any(t, a))
		return perr(p, "%s: expected an IPv4 or IPv6 address", what);
	return true;
}

/* The IP header's ECN field as scripts write it (RFC 3168 §5). */
static const char *const ecn_names[4] = { "noecn", "ect1", "ect0", "ce" };

static int ecn_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, ecn_names[i]))
			return i;
	return -1;
}

/* DIR FLAGS START:END(LEN) [ack N] [win N] [<opts>] [sport N] [dport N]
 * [src IP] [dst IP] [badcsum] [noecn|ect0|ect1|ce] [tos 0xNN] [ttl N] [nodf]
 * [urg N] */
static bool parse_segment(struct parser *p, struct line *l, bool outbound)
{
	struct seg_spec *g = &l->seg;
	const char *t;

	*g = (struct seg_spec){ .outbound = outbound, .sport = -1, .dport = -1 };
	l->kind = L_SEG;
	t = next(p);
	if (!t || !parse_flags(p, t, &g->flags))
		return t ? false : perr(p, "expected flags");
	t = next(p);
	if (!t || !parse_seq(p, t, g))
		return t ? false : perr(p, "expected START:END(LEN)");
	while ((t = next(p))) {
		if (!strcmp(t, "ack")) {
			g->has_ack = true;
			if (!next_u32(p, "ack", &g->ack))
				return false;
		} else if (!strcmp(t, "win")) {
			g->has_win = true;
			if (!next_u32(p, "win", &g->win))
				return false;
			if (g->win > 65535)
				return perr(p, "win %u does not fit 16 bits", g->win);
		} else if (!strcmp(t, "<")) {
			if (g->opts.present)
				return perr(p, "two option lists");
			if (!parse_opt_list(p, &g->opts, outbound))
				return false;
		} else if (!strcmp(t, "sport")) {
			if (!parse_port(p, "sport", &g->sport))
				return false;
		} else if (!strcmp(t, "dport")) {
			if (!parse_port(p, "dport", &g->dport))
				return false;
		} else if (!strcmp(t, "src")) {
			g->has_src = true;
			if (!parse_addr_tok(p, "src", &g->src))
				return false;
		} else if (!strcmp(t, "dst")) {
			g->has_dst = true;
			if (!parse_addr_tok(p, "dst", &g->dst))
				return false;
		} else if (!strcmp(t, "badcsum") && !outbound) {
			g->badcsum = true;
		} else if (ecn_parse(t) >= 0) {
			g->ecn = (uint8_t)ecn_parse(t);
		} else if (!strcmp(t, "tos") && outbound) {
			uint32_t v;
			if (!next_u32(p, "tos", &v))
				return false;
			if (v > 255 || (v & UST_ECN_MASK))
				return perr(p, "tos %#x: a byte without the ECN field (write that apart)", v);
			g->tos = (uint8_t)v;
		} else if (!strcmp(t, "ttl")) {
			uint32_t v;
			if (!next_u32(p, "ttl", &v))
				return false;
			if (v < 1 || v > 255)
				return perr(p, "ttl %u is not 1..255", v);
			g->ttl = (uint8_t)v;
		} else if (!strcmp(t, "nodf") && outbound) {
			g->nodf = true;
		} else if (!strcmp(t, "label")) {
			const char *v = next(p);
			if (outbound && v && !strcmp(v, "none")) {
				g->label = LABEL_NONE;
			} else if (outbound && v && (!strcmp(v, "same") || !strcmp(v, "new"))) {
				g->label = !strcmp(v, "same") ? LABEL_SAME : LABEL_NEW;
			} else {
				uint64_t fl;
				if (outbound || !v || !parse_u64(v, UST_IPV6_FLOW_MASK, &fl))
					return perr(p, outbound ? "label: want same, new or none"
								: "label: want a 20-bit flow label");
				g->flow = (uint32_t)fl;
			}
		} else if (!strcmp(t, "urg")) {
			uint32_t v;
			if (!next_u32(p, "urg", &v))
				return false;
			if (v > 65535)
				return perr(p, "urg %u does not fit 16 bits", v);
			g->up = (uint16_t)v;
		} else {
			return perr(p, "unexpected '%s' in a segment", t);
		}
	}
	if (!outbound && (g->flags & UST_TH_ACK) && !g->has_ack)
		return perr(p, "an inbound segment with ACK needs 'ack N'");
	return true;
}

/* icmp unreach {net|host|proto|port|admin} | icmp frag-needed mtu N  [src IP] [ttl N] */
static bool parse_icmp(struct parser *p, struct line *l)
{
	struct icmp_spec *c = &l->icmp;
	const char *t = next(p);
	uint32_t mtu;

	*c = (struct icmp_spec){ .type = UST_ICMP_DEST_UNREACH };
	l->kind = L_ICMP;
	if (t && !strcmp(t, "unreach")) {
		static const struct { const char *n; uint8_t code; } codes[] = {
			{ "net", 0 }, { "host", 1 }, { "proto", 2 }, { "port", 3 }, { "admin", 13 },
		};
		size_t i;
		t = next(p);
		for (i = 0; t && i < UST_ARRAY_SIZE(codes); i++)
			if (!strcmp(t, codes[i].n))
				break;
		if (!t || i == UST_ARRAY_SIZE(codes))
			return perr(p, "icmp unreach: want net, host, proto, port or admin");
		c->code = codes[i].code;
	} else if (t && (!strcmp(t, "frag-needed") || !strcmp(t, "packet-too-big"))) {
		c->code = 4;
		if (!accept_tok(p, "mtu") || !next_u32(p, "mtu", &mtu) || mtu > 65535)
			return perr(p, "icmp %s: want 'mtu N'", t);
		/* --family=6: the same MSS, so a path MTU 20 bytes more. */
		if (map6)
			mtu += UST_IPV6_HLEN - UST_IPV4_HLEN;
		c->mtu = (uint16_t)mtu;
	} else if (t && !strcmp(t, "time-exceeded")) {
		c->type = UST_ICMP_TIME_EXCEEDED;
	} else {
		return perr(p, "icmp: want unreach, frag-needed or time-exceeded");
	}
	if (accept_tok(p, "src")) {
		c->has_src = true;
		if (!parse_addr_tok(p, "src", &c->src))
			return false;
	}
	if (accept_tok(p, "ttl")) {
		uint32_t v;
		if (!next_u32(p, "ttl", &v) || v < 1 || v > 255)
			return perr(p, "icmp ttl: want 1 to 255");
		c->ttl = (uint8_t)v;
	}
	if (peek(p))
		return perr(p, "unexpected '%s' after the icmp message", peek(p));
	return true;
}

static const struct { const char *name; enum ust_tcp_opt opt; } sockopts[] = {
	{ "TCP_NODELAY", UST_TCP_OPT_NODELAY },     { "SO_KEEPALIVE", UST_TCP_OPT_KEEPALIVE },
	{ "TCP_KEEPIDLE", UST_TCP_OPT_KEEPIDLE },   { "TCP_KEEPINTVL", UST_TCP_OPT_KEEPINTVL },
	{ "TCP_KEEPCNT", UST_TCP_OPT_KEEPCNT },     { "TCP_USER_TIMEOUT", UST_TCP_OPT_USER_TIMEOUT },
	{ "TCP_LINGER2", UST_TCP_OPT_LINGER2 },     { "SO_SNDBUF", UST_TCP_OPT_SNDBUF },
	{ "SO_RCVBUF", UST_TCP_OPT_RCVBUF },        { "TCP_MAXSEG", UST_TCP_OPT_MAXSEG },
	{ "TCP_SYNCNT", UST_TCP_OPT_SYNCNT },       { "TCP_QUICKACK", UST_TCP_OPT_QUICKACK },
	{ "IP_TOS", UST_TCP_OPT_IP_TOS },           { "IP_TTL", UST_TCP_OPT_IP_TTL },
	{ "IP_MTU_DISCOVER", UST_TCP_OPT_IP_MTU_DISCOVER }, { "IP_MTU", UST_TCP_OPT_IP_MTU },
	{ "TCP_CORK", UST_TCP_OPT_CORK },         { "MSG_MORE", UST_TCP_OPT_MORE },
	{ "TCP_WINDOW_CLAMP", UST_TCP_OPT_WINDOW_CLAMP }, { "TCP_DEFER_ACCEPT", UST_TCP_OPT_DEFER_ACCEPT },
	{ "IPV6_TCLASS", UST_TCP_OPT_IPV6_TCLASS }, { "IPV6_UNICAST_HOPS", UST_TCP_OPT_IPV6_UNICAST_HOPS },
	{ "IPV6_MTU_DISCOVER", UST_TCP_OPT_IPV6_MTU_DISCOVER }, { "IPV6_MTU", UST_TCP_OPT_IP_MTU },
	{ "IPV6_AUTOFLOWLABEL", UST_TCP_OPT_IPV6_FLOWLABEL }, { "IPV6_MINHOPCOUNT", UST_TCP_OPT_IPV6_MINHOPCOUNT },
	{ "IP_MINTTL", UST_TCP_OPT_IP_MINTTL },
	/* The engine's own, which the shim computes from the receive options
	 * and reads for IPV6_2292PKTOPTIONS. */
	{ "USTCP_IPV6_RXOPT", UST_TCP_OPT_IPV6_RXOPT }, { "USTCP_IPV6_RCV_HOPS", UST_TCP_OPT_IPV6_RCV_HOPS },
	{ "USTCP_IPV6_RCV_KEPT", UST_TCP_OPT_IPV6_RCV_KEPT },
	{ "TCP_THIN_LINEAR_TIMEOUTS", UST_TCP_OPT_THIN_LINEAR_TIMEOUTS }, { "SO_TXREHASH", UST_TCP_OPT_TXREHASH },
};

static bool sockopt_by_name(const char *s, enum ust_tcp_opt *out)
{
	/* --family=6: the IPv4 options' IPv6 twins (an AF_INET6 socket's
	 * IP_TOS and IP_TTL act on IPv4-mapped traffic only, as Linux's). */
	static const char *const twins[][2] = {
		{ "IP_TOS", "IPV6_TCLASS" }, { "IP_TTL", "IPV6_UNICAST_HOPS" },
		{ "IP_MTU_DISCOVER", "IPV6_MTU_DISCOVER" }, { "IP_MTU", "IPV6_MTU" },
	};

	for (size_t i = 0; map6 && i < UST_ARRAY_SIZE(twins); i++)
		if (!strcmp(twins[i][0], s))
			s = twins[i][1];
	for (size_t i = 0; i < UST_ARRAY_SIZE(sockopts); i++)
		if (!strcmp(sockopts[i].name, s)) {
			*out = sockopts[i].opt;
			return true;
		}
	return false;
}

static const char *const event_names[] = {
	"CONNECTED", "READABLE", "WRITABLE", "EOF", "ERROR", "ACCEPT", "DONE", "CLOSED",
};

static bool parse_events(const char *s, long long *mask)
{
	char buf[256];
	char *save = NULL;

	*mask = 0;
	if (!strcmp(s, "0"))
		return true;
	if (strlen(s) >= sizeof(buf))
		return false;
	strcpy(buf, s);
	for (char *w = strtok_r(buf, "|", &save); w; w = strtok_r(NULL, "|", &save)) {
		size_t i;
		for (i = 0; i < UST_ARRAY_SIZE(event_names); i++)
			if (!strcmp(w, event_names[i]))
				break;
		if (i == UST_ARRAY_SIZE(event_names))
			return false;
		*mask |= 1ll << i;
	}
	return true;
}

static const char *fmt_events(unsigned mask, char buf[128])
{
	size_t n = 0;

	buf[0] = 0;
	if (!mask)
		return "0";
	for (size_t i = 0; i < UST_ARRAY_SIZE(event_names); i++)
		if (mask & (1u << i))
			n += (size_t)snprintf(buf + n, 128 - n, "%s%s", n ? "|" : "", event_names[i]);
	if (mask >> UST_ARRAY_SIZE(event_names))
		snprintf(buf + n, 128 - n, "%s0x%x", n ? "|" : "",
			 mask >> UST_ARRAY_SIZE(event_names) << UST_ARRAY_SIZE(event_names));
	return buf;
}

static bool parse_how(const char *s, int *how)
{
	if (!strcmp(s, "SHUT_RD")) *how = SHUT_RD;
	else if (!strcmp(s, "SHUT_WR")) *how = SHUT_WR;
	else if (!strcmp(s, "SHUT_RDWR")) *how = SHUT_RDWR;
	else return false;
	return true;
}

/* setsockopt H IPV6_HOPOPTS LEN (or IPV6_RTHDRDSTOPTS, IPV6_DSTOPTS): an
 * options header of LEN bytes (0: none) on every segment, the others
 * none, as the shim gives the engine what the options set: options of a
 * type a receiver skips (0x1e, RFC 4727's experiment) of up to 253 bytes
 * each, and a Pad1 where one byte is left, so that the driver's own parse
 * of the frame (Linux's rules: little padding, at most eight options)
 * takes it. */
static const char *const sticky_names[UST_IP6_EXT_HDRS] = { "IPV6_HOPOPTS", "IPV6_RTHDRDSTOPTS", NULL,
							     "IPV6_DSTOPTS" };

static int sticky_index(const char *name)
{
	for (int i = 0; i < UST_IP6_EXT_HDRS; i++)
		if (sticky_names[i] && !strcmp(name, sticky_names[i]))
			return i;
	return -1;
}

static int set_sticky(struct ust_tcb *t, int which, unsigned len)
{
	static uint8_t h[UST_IP6_EXT_HDR_MAX];
	const uint8_t *hdr[UST_IP6_EXT_HDRS] = { NULL };
	unsigned lens[UST_IP6_EXT_HDRS] = { 0 };

	memset(h, 0, sizeof(h));
	if (len) {
		h[1] = (uint8_t)(len / 8 - 1);
		for (unsigned at = 2, n; at < len; at += n + 2) {
			if (at + 1 == len) {
				h[at] = 0; /* Pad1 */
				break;
			}
			n = len - at - 2 > 253 ? 253 : len - at - 2;
			h[at] = 0x1e;
			h[at + 1] = (uint8_t)n;
		}
	}
	hdr[which] = h;
	lens[which] = len;
	return ust_tcp_set_ip6_ext(t, hdr, lens);
}

/* TCP_MD5SIG's argument: KEY (for peer, the whole address), or
 * KEY@ADDR[/PREFIX]; a KEY of "-" deletes (keylen 0). */
static bool md5_key_spec(const char *spec, const struct ust_ip6 *peer, struct ust_tcp_md5_key *k)
{
	char buf[TOKEN_LEN];
	char *at, *slash;
	uint32_t prefix;

	snprintf(buf, sizeof(buf), "%s", spec);
	memset(k, 0, sizeof(*k));
	k->addr = *peer;
	if ((at = strchr(buf, '@')) != NULL) {
		*at++ = 0;
		if ((slash = strchr(at, '/')) != NULL)
			*slash++ = 0;
		if (!parse_ip_any(at, &k->addr))
			return false;
		k->v4 = ust_ip6_is_v4mapped(&k->addr);
		k->prefixlen = k->v4 ? 32 : 128;
		if (slash) {
			if (!parse_u32(slash, &prefix) || prefix > k->prefixlen)
				return false;
			k->prefixlen = (uint8_t)prefix;
		}
	} else {
		k->v4 = ust_ip6_is_v4mapped(&k->addr);
		k->prefixlen = k->v4 ? 32 : 128;
	}
	if (!strcmp(buf, "-"))
		return true;
	if (!buf[0] || strlen(buf) > UST_TCP_MD5_KEYLEN_MAX)
		return false;
	k->keylen = (uint8_t)strlen(buf);
	memcpy(k->key, buf, k->keylen);
	return true;
}

/* Checks the arguments of a call now, so that a typo fails before the
 * script runs rather than halfway. */
static bool check_call_args(struct parser *p, struct call *c)
{
	uint32_t u;
	enum ust_tcp_opt o;
	int how;
	long long v;

	switch (c->def->cmd) {
	case CMD_BIND:
	case CMD_LISTEN:
	case CMD_SEND:
	case CMD_RECV:
		if (!parse_u32(c->arg[0], &u))
			return perr(p, "%s: '%s' is not a number", c->def->name, c->arg[0]);
		if (c->def->cmd == CMD_BIND && u > 65535)
			return perr(p, "bind: %u is not a port", u);
		if ((c->def->cmd == CMD_SEND || c->def->cmd == CMD_RECV) && u > (1u << 24))
			return perr(p, "%s: %u bytes is too many for a script", c->def->name, u);
		return true;
	case CMD_CONNECT: {
		struct ust_ip6 a;
		if (!parse_endpoint(c->arg[0], &a, &u))
			return perr(p, "connect: want ADDR:PORT or [V6]:PORT, got '%s'", c->arg[0]);
		return true;
	}
	case CMD_SHUTDOWN:
		return parse_how(c->arg[0], &how) ||
		       perr(p, "shutdown: want SHUT_RD, SHUT_WR or SHUT_RDWR");
	case CMD_SETSOCKOPT:
	case CMD_GETSOCKOPT:
		/* TCP_CONGESTION takes a name (ust_tcp_set_cc); SO_REUSEPORT,
		 * before bind, is ust_tcp_set_reuseport; SO_MAX_PACING_RATE
		 * (bytes per second, 64 bits) ust_tcp_set_max_pacing_rate. */
		if (c->def->cmd == CMD_SETSOCKOPT && !strcmp(c->arg[0], "TCP_CONGESTION"))
			return true;
		if (c->def->cmd == CMD_SETSOCKOPT && !strcmp(c->arg[0], "TCP_MD5SIG")) {
			struct ust_tcp_md5_key k;
			return md5_key_spec(c->arg[1], &(struct ust_ip6){ 0 }, &k) ||
			       perr(p, "TCP_MD5SIG: want KEY, KEY@ADDR[/PREFIX] or -@ADDR[/PREFIX], got '%s'",
				    c->arg[1]);
		}
		if (c->def->cmd == CMD_SETSOCKOPT && sticky_index(c->arg[0]) >= 0)
			return (parse_int(c->arg[1], &v) && v >= 0 && v % 8 == 0 && v <= 2040) ||
			       perr(p, "%s: want the header's length, a multiple of 8 up to 2040, got '%s'",
				    c->arg[0], c->arg[1]);
		if (c->def->cmd == CMD_SETSOCKOPT && !strcmp(c->arg[0], "SO_REUSEPORT"))
			return parse_int(c->arg[1], &v) || perr(p, "setsockopt: '%s' is not a number", c->arg[1]);
		if (c->def->cmd == CMD_SETSOCKOPT && !strcmp(c->arg[0], "SO_MAX_PACING_RATE")) {
			uint64_t rate;
			return parse_u64(c->arg[1], UINT64_MAX, &rate) ||
			       perr(p, "setsockopt: '%s' is not a rate", c->arg[1]);
		}
		if (c->def->cmd == CMD_SETSOCKOPT && !parse_int(c->arg[1], &v))
			return perr(p, "setsockopt: '%s' is not a number", c->arg[1]);
		return sockopt_by_name(c->arg[0], &o) ||
		       perr(p, "%s: unknown option '%s'", c->def->name, c->arg[0]);
	case CMD_LINGER:
		if (!parse_u32(c->arg[0], &u) || u > 1 || !parse_u32(c->arg[1], &u))
			return perr(p, "linger: want ON(0|1) SECONDS");
		return true;
	case CMD_COUNTER:
		for (int d = 1; d < UST_DROP_MAX; d++)
			if (!strcmp(ust_drop_name((enum ust_drop)d), c->arg[0]))
				return true;
		for (int e = 0; e < UST_EVENT_MAX; e++)
			if (!strcmp(ust_event_name((enum ust_event)e), c->arg[0]))
				return true;
		return perr(p, "counter: no counter named '%s'", c->arg[0]);
	default:
		return true;
	}
}

static bool parse_call(struct parser *p, struct line *l)
{
	struct call *c = &l->call;
	const char *name = next(p);
	const char *t;
	size_t n = 0;

	*c = (struct call){ .h = -1 };
	l->kind = L_CALL;
	for (size_t i = 0; i < UST_ARRAY_SIZE(cmds); i++)
		if (!strcmp(cmds[i].name, name))
			c->def = &cmds[i];
	if (!c->def)
		return perr(p, "unknown command '%s'", name);
	if (c->def->handle) {
		uint32_t h;
		t = next(p);
		if (!t || !parse_u32(t, &h) || h > INT_MAX)
			return perr(p, "%s: expected a handle number (usage: %s)", name, c->def->usage);
		c->h = (int)h;
	}
	while ((t = peek(p)) && strcmp(t, "=") && !(c->def->cmd == CMD_EVENTS && !strcmp(t, "has"))) {
		if (c->nargs == c->def->max_args)
			return perr(p, "%s: too many arguments (usage: %s)", name, c->def->usage);
		snprintf(c->arg[c->nargs++], TOKEN_LEN, "%s", next(p));
	}
	if (c->nargs < c->def->min_args)
		return perr(p, "%s: too few arguments (usage: %s)", name, c->def->usage);
	if (accept_tok(p, "has"))
		c->subset = true;
	else if (!accept_tok(p, "=")) {
		if (c->def->result != RES_NONE)
			return perr(p, "%s: expected '= RESULT' (usage: %s)", name, c->def->usage);
		return check_call_args(p, c);
	}
	if (c->def->result == RES_NONE)
		return perr(p, "%s returns nothing to compare", name);
	c->has_result = true;
	/* The rest of the line is the result; commas join without blanks. */
	while ((t = next(p))) {
		bool glue = !strcmp(t, ",") || (n && c->words[n - 1] == ',');
		n += (size_t)snprintf(c->words + n, sizeof(c->words) - n, "%s%s",
				      n && !glue ? " " : "", t);
		if (n >= sizeof(c->words))
			return perr(p, "result too long");
	}
	if (!n)
		return perr(p, "%s: nothing after '='", name);
	switch (c->def->result) {
	case RES_INT:
	case RES_HANDLE:
		if (!parse_result(c->words, &c->rv))
			return perr(p, "%s: '%s' is not a number or errno name", name, c->words);
		break;
	case RES_EVENTS:
		if (!parse_events(c->words, &c->rv))
			return perr(p, "events: '%s' is not a list of CONNECTED|READABLE|WRITABLE|"
				    "EOF|ERROR|ACCEPT|DONE|CLOSED (or 0)", c->words);
		break;
	default:
		break;
	}
	return check_call_args(p, c);
}

/* config NAME VALUE... (before the first timed line) */
static bool parse_config(struct parser *p, struct script_config *cfg)
{
	const char *name = next(p);
	const char *v = next(p);
	uint32_t u;
	ust_time t;

	if (!name || !v)
		return perr(p, "config: want 'config NAME VALUE'");
	if (p->timed_seen)
		return perr(p, "config lines must come before the first timed line");
	if (!strcmp(name, "msl") || !strcmp(name, "fin_timeout")) {
		if (!parse_secs(v, &t))
			return perr(p, "config %s: want seconds, got '%s'", name, v);
		if (!strcmp(name, "msl"))
			cfg->tcp.msl_ms = (unsigned)(t / 1000);
		else
			cfg->tcp.fin_timeout_ms = (unsigned)(t / 1000);
	} else if (!strcmp(name, "cc")) {
		cfg->tcp.cc = tcp_cc_find(v);
		if (!cfg->tcp.cc)
			return perr(p, "config cc: no algorithm is called '%s'", v);
	} else if (!strcmp(name, "isn_key")) {
		uint64_t a, b;
		const char *v2 = next(p);
		if (!parse_u64(v, UINT64_MAX, &a) || !v2 || !parse_u64(v2, UINT64_MAX, &b))
			return perr(p, "config isn_key: want two numbers");
		cfg->tcp.isn_key[0] = a;
		cfg->tcp.isn_key[1] = b;
	} else if (!strcmp(name, "rmem") || !strcmp(name, "wmem")) {
		uint32_t *m = !strcmp(name, "rmem") ? cfg->tcp.rmem : cfg->tcp.wmem;
		const char *v2 = next(p), *v3 = v2 ? next(p) : NULL;
		uint32_t a, b, c;
		if (!parse_u32(v, &a) || !v2 || !parse_u32(v2, &b) || !v3 || !parse_u32(v3, &c) ||
		    a > b || b > c)
			return perr(p, "config %s: want three sizes MIN DEFAULT MAX, in order", name);
		m[0] = a;
		m[1] = b;
		m[2] = c;
	} else {
		/* Plain numbers: field offset and width in struct ust_tcp_config. */
		static const struct { const char *n; size_t off, size; } nums[] = {
#define F(x) { #x, offsetof(struct ust_tcp_config, x), sizeof(((struct ust_tcp_config *)0)->x) }
			F(max_conns), F(max_tw), F(syn_retries), F(synack_retries),
			F(retries2), F(orphan_retries), F(early_retrans), F(ecn), F(frto),
			F(syncookies),
#undef F
		};
		if (!parse_u32(v, &u))
			return perr(p, "config %s: '%s' is not a number", name, v);
		if (!strcmp(name, "ipv6") || !strcmp(name, "v6only")) {
			*(!strcmp(name, "ipv6") ? &cfg->ipv6 : &cfg->v6only) = u != 0;
			goto done;
		}
		if (!strcmp(name, "reuseport_others")) {
			cfg->reuseport_others = u;
			goto done;
		}
		if (!strcmp(name, "rfc1337")) {
			cfg->tcp.rfc1337 = u != 0;
			goto done;
		}
		if (!strcmp(name, "mtu")) {
			if (u < 576 || u > 9000)
				return perr(p, "config mtu: %u is out of range", u);
			cfg->mtu = u;
			goto done;
		}
		for (size_t i = 0; i < UST_ARRAY_SIZE(nums); i++) {
			if (strcmp(name, nums[i].n))
				continue;
			if (nums[i].size == sizeof(uint32_t)) {
				uint32_t x = u;
				memcpy((char *)&cfg->tcp + nums[i].off, &x, sizeof(x));
			} else {
				unsigned long long x = u;
				memcpy((char *)&cfg->tcp + nums[i].off, &x, nums[i].size);
			}
			goto done;
		}
		return perr(p, "config: unknown setting '%s'", name);
	}
done:
	if (peek(p))
		return perr(p, "config %s: unexpected '%s'", name, peek(p));
	return true;
}

static bool parse_line(struct parser *p, struct line *l)
{
	const char *t = next(p);

	if (!strcmp(t, "config")) {
		l->kind = L_CONFIG;
		return parse_config(p, &p->sc->cfg);
	}
	/* the two settings that take a duration (stored in l->tolerance) */
	if (!strcmp(t, "tolerance") || !strcmp(t, "timer_lag")) {
		const char *v = next(p);
		l->kind = !strcmp(t, "tolerance") ? L_TOLERANCE : L_TIMER_LAG;
		if (!v || !parse_duration(v, &l->tolerance) || peek(p))
			return perr(p, "%s: want a duration such as 10ms", t);
		return true;
	}
	if (!strcmp(t, "peer_isn") || !strcmp(t, "peer_port")) {
		bool isn = !strcmp(t, "peer_isn");
		l->kind = isn ? L_PEER_ISN : L_PEER_PORT;
		if (!next_u32(p, t, &l->u32))
			return false;
		if (!isn && l->u32 > 65535)
			return perr(p, "peer_port %u is not a port", l->u32);
		return !peek(p) || perr(p, "unexpected '%s'", peek(p));
	}
	/* Everything else starts with a time. */
	if (!parse_time(p, t, &l->time))
		return false;
	p->timed_seen = true;
	t = next(p);
	if (!t)
		return perr(p, "nothing after the time");
	if ((l->time.kind == TIME_ANY || l->time.range) && strcmp(t, ">"))
		return perr(p, "'*' and ranges are for outbound '>' lines only");
	if (!strcmp(t, "<")) {
		if (accept_tok(p, "icmp"))
			return parse_icmp(p, l);
		return parse_segment(p, l, false);
	}
	if (!strcmp(t, ">"))
		return parse_segment(p, l, true);
	p->pos--;
	return parse_call(p, l);
}

static void script_free(struct script *sc)
{
	free(sc->lines);
	sc->lines = NULL;
	for (unsigned i = 0; i < sc->nsrcs; i++) {
		free(sc->srcs[i].name);
		free(sc->srcs[i].path);
	}
	free(sc->srcs);
	sc->srcs = NULL;
	sc->nsrcs = 0;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	if (!d) {
		fprintf(stderr, "seg-run: out of memory\n");
		exit(2);
	}
	return d;
}

/* "dir/of/base" + "/" + rel, or rel alone when base has no directory or rel
 * is absolute. */
static char *path_beside(const char *base, const char *rel)
{
	const char *slash = strrchr(base, '/');
	struct sbuf b = { 0 };

	if (rel[0] == '/' || !slash)
		return xstrdup(rel);
	sb_printf(&b, "%.*s/%s", (int)(slash - base), base, rel);
	return b.s;
}

static unsigned src_add(struct script *sc, char *name, char *path, unsigned parent, int parent_line)
{
	struct src *s = realloc(sc->srcs, (sc->nsrcs + 1) * sizeof(*s));

	if (!s) {
		fprintf(stderr, "seg-run: out of memory\n");
		exit(2);
	}
	sc->srcs = s;
	s[sc->nsrcs] = (struct src){ name, path, parent, parent_line };
	return sc->nsrcs++;
}

/* "FILE:LINE", and for a fixture's line the lines that included it:
 * "fixtures/listen.seg:2 (included from fixtures/established-passive.seg:1,
 * from c10-fin-received-close-wait.seg:14)". */
static void sb_where(struct sbuf *b, const struct script *sc, const struct line *l)
{
	unsigned src = l->src;

	sb_printf(b, "%s:%d", sc->srcs[src].name, l->lineno);
	for (bool first = true; src; src = sc->srcs[src].parent, first = false)
		sb_printf(b, "%s%s:%d%s", first ? " (included from " : ", from ",
			  sc->srcs[sc->srcs[src].parent].name, sc->srcs[src].parent_line,
			  sc->srcs[src].parent ? "" : ")");
}

static bool load_file(struct parser *p, unsigned src, int depth);

/* "include FILE": reads FILE's lines in place, as if written here. FILE is
 * relative to the directory of the file that includes it. */
static bool load_include(struct parser *p, unsigned src, int depth)
{
	struct script *sc = p->sc;
	const char *path = p->path;
	int lineno = p->lineno;
	unsigned inc;
	bool ok;

	if (p->tk.n != 2)
		return perr(p, "include: want 'include FILE'");
	if (depth + 1 > MAX_INCLUDE_DEPTH)
		return perr(p, "include: more than %d levels deep (does a file include itself?)",
			    MAX_INCLUDE_DEPTH);
	inc = src_add(sc, path_beside(sc->srcs[src].name, p->tk.t[1]),
		      path_beside(sc->srcs[src].path, p->tk.t[1]), src, lineno);
	ok = load_file(p, inc, depth + 1);
	p->path = path;
	p->lineno = lineno;
	return ok;
}

/* Reads the lines of srcs[src] into the script, fixtures in place. */
static bool load_file(struct parser *p, unsigned src, int depth)
{
	struct script *sc = p->sc;
	FILE *f = fopen(sc->srcs[src].path, "r");
	char buf[1024];
	bool ok = true;
	unsigned first;

	p->path = sc->srcs[src].path;
	p->lineno = 0;
	if (!f && src) {
		/* Named at the include line. */
		p->path = sc->srcs[sc->srcs[src].parent].path;
		p->lineno = sc->srcs[src].parent_line;
		return perr(p, "include: cannot open %s: %s", sc->srcs[src].path, strerror(errno));
	}
	if (!f) {
		sb_printf(p->err, "%s: cannot open: %s\n", sc->srcs[src].path, strerror(errno));
		return false;
	}
	while (fgets(buf, sizeof(buf), f)) {
		const char *terr = NULL;
		struct line *l;

		p->lineno++;
		if (!strchr(buf, '\n') && !feof(f)) {
			ok = perr(p, "line longer than %zu characters", sizeof(buf) - 2);
			break;
		}
		if (!tokenize(buf, &p->tk, &terr)) {
			ok = perr(p, "%s", terr);
			break;
		}
		if (!p->tk.n)
			continue;
		if (!strcmp(p->tk.t[0], "include")) {
			if (!(ok = load_include(p, src, depth)))
				break;
			continue;
		}
		/* "family 4 WHY": an IPv4-only script, which --family=6 skips
		 * saying why. */
		if (!strcmp(p->tk.t[0], "family")) {
			if (p->tk.n < 3 || strcmp(p->tk.t[1], "4")) {
				ok = perr(p, "family: want 'family 4 REASON'");
				break;
			}
			snprintf(sc->only4, sizeof(sc->only4), "%s", buf + strspn(buf, " \t") + 9);
			sc->only4[strcspn(sc->only4, "\r\n")] = 0;
			continue;
		}
		/* "v4: LINE" and "v6: LINE": a line for one family only, where
		 * the families differ (an ICMP code's errno); v6 is --family=6. */
		first = 0;
		if (!strcmp(p->tk.t[0], "v4:") || !strcmp(p->tk.t[0], "v6:")) {
			if ((p->tk.t[0][1] == '6') != map6)
				continue;
			if (p->tk.n < 2) {
				ok = perr(p, "nothing after %s", p->tk.t[0]);
				break;
			}
			first = 1;
		}
		if (sc->nlines == sc->cap) {
			sc->cap = sc->cap ? sc->cap * 2 : 64;
			sc->lines = realloc(sc->lines, sc->cap * sizeof(*sc->lines));
			if (!sc->lines) {
				fprintf(stderr, "seg-run: out of memory\n");
				exit(2);
			}
		}
		l = &sc->lines[sc->nlines];
		memset(l, 0, sizeof(*l));
		l->src = src;
		l->lineno = p->lineno;
		buf[strcspn(buf, "#\r\n")] = 0;
		{
			char *s = buf;
			while (*s == ' ' || *s == '\t')
				s++;
			if (first) {
				s += 3;
				while (*s == ' ' || *s == '\t')
					s++;
			}
			size_t n = strlen(s);
			while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
				s[--n] = 0;
			snprintf(l->text, sizeof(l->text), "%.255s", s);
		}
		p->pos = first;
		l->body = 0;
		if (!parse_line(p, l)) {
			ok = false;
			break;
		}
		if (l->kind == L_SEG || l->kind == L_CALL || l->kind == L_ICMP) {
			if (p->pos != p->tk.n) {
				ok = perr(p, "unexpected '%s'", p->tk.t[p->pos]);
				break;
			}
		}
		if (l->kind == L_SEG || l->kind == L_CALL || l->kind == L_ICMP) {
			size_t skip = strcspn(l->text, " \t");
			skip += strspn(l->text + skip, " \t");
			l->body = (unsigned)skip;
		}
		if (l->kind != L_CONFIG)
			sc->nlines++;
	}
	fclose(f);
	return ok;
}

/* --family=6 runs an IPv4 script over IPv6: every socket AF_INET6
 * (dual-stack, or v6only with "config v6only 1"), 10.9.0.X read as
 * 2001:db8::X wherever the script names an address, the IP options by their
 * IPv6 twins, and the link MTU, and every MTU an ICMP message gives, 20 bytes
 * larger, so that the MSS (MTU less 60 bytes of headers over IPv6, 40 over
 * IPv4) and with it every segment's size stay as the script wrote them. A
 * script that says "config ipv6" already is IPv6 and is not run again. */
static void map6_script(struct script *sc)
{
	if (sc->cfg.ipv6) {
		sc->native6 = true;
		return;
	}
	sc->cfg.ipv6 = true;
	sc->cfg.mtu += UST_IPV6_HLEN - UST_IPV4_HLEN;
}

static bool script_load(struct script *sc, const char *path, struct sbuf *err)
{
	struct parser p = { .sc = sc, .err = err };
	const char *slash = strrchr(path, '/');

	sc->path = path;
	sc->name = slash ? slash + 1 : path;
	ust_tcp_default_config(&sc->cfg.tcp);
	/* Deterministic initial sequence numbers unless a script picks a key. */
	sc->cfg.tcp.isn_key[0] = 0x0123456789abcdefull;
	sc->cfg.tcp.isn_key[1] = 0xfedcba9876543210ull;
	sc->cfg.mtu = DEFAULT_MTU;
	src_add(sc, xstrdup(sc->name), xstrdup(path), 0, 0);
	if (!load_file(&p, 0, 0))
		return false;
	if (map6)
		map6_script(sc);
	return true;
}

/* ------------------------------------------------------------------ */
/* Runtime state                                                       */
/* ------------------------------------------------------------------ */

/* One connection as the script sees it: the numbers that make its sequence
 * numbers relative, keyed by the stack's port and the peer's. */
struct flow {
	uint16_t lport, rport;
	bool has_peer;
	struct ust_ip6 peer;           /* the address an inbound "src" gave it */
	bool iss_known;
	uint32_t iss;                  /* the stack's, learned from its SYN or SYN-ACK */
	uint32_t peer_isn;
	/* The stack's TSval clock, mapped into script space: actual0 <-> script0. */
	bool ts_anchored;
	uint32_t ts_script0, ts_actual0;
	/* IPv6: the flow label of the stack's first segment, which every
	 * later one must carry (Linux's auto flow labels, one a connection). */
	bool label_known;
	uint32_t label;
	/* and the end of what it sent (absolute), to tell a retransmission */
	bool sent_known;
	uint32_t sent_end;
};

/* What "socket = 3" hands out. Handles are never freed during a script, so
 * that callbacks about orphaned connections still find their record. */
struct handle {
	int num;
	struct ust_tcb *tcb;           /* NULL once the stack has freed it */
	bool released;                 /* close or abort was called */
	bool have_record;
	struct ust_tcp_record rec;
	unsigned events;               /* since the last "events" line */
	uint64_t sent, received;       /* stream offsets of the byte patterns */
};

/* A frame the stack sent, with the time it was sent. */
struct frame {
	struct frame *next;
	ust_time t;
	const struct line *cause;      /* the line being executed, NULL for a timer */
	uint32_t len;
	uint8_t data[];
};

/* A TCP segment as decoded from a frame (host order). */
struct wire_seg {
	bool tcp;                      /* false: some other IP protocol */
	uint8_t proto, icmp_type, icmp_code;
	struct ust_ip6 src, dst;       /* IPv4 mapped */
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint8_t ecn;                   /* the IP header's ECN field */
	uint8_t tos;                   /* the rest of the TOS byte */
	uint8_t ttl;
	bool df;
	bool v6;
	uint32_t flow;                 /* IPv6's flow label */
	uint16_t win;
	uint16_t up;
	uint8_t opt[UST_TCP_OPT_MAX];
	unsigned optlen;
	const uint8_t *data;
	uint32_t len;
	bool csum_ok;
};

struct run {
	struct script *sc;
	const struct line *cur;        /* the line being executed */
	const struct line *acting;     /* the line whose input or call runs now */
	ust_time now;
	ust_time tolerance;
	ust_time timer_lag;            /* timers run this long after their deadline */
	uint32_t peer_isn;             /* for flows created from now on */
	struct ust_stack st;
	struct ust_tcp tcp;
	bool tcp_up, destroying;
	bool taken_elsewhere;          /* tuple_taken says yes from now on */

	struct flow flows[MAX_FLOWS];
	unsigned nflows;
	uint16_t cur_lport, cur_rport; /* the flow lines without ports talk about */

	struct handle handles[MAX_HANDLES];
	unsigned nhandles;

	struct frame *q_head, **q_tail; /* sent, not yet matched */
	uint8_t last_sent[65536];      /* the last TCP frame sent, for ICMP quotes */
	uint32_t last_sent_len;
	uint16_t ip_id;

	bool failed;
	struct sbuf diag;
};

/* ---- failure reporting ---- */

__attribute__((format(printf, 2, 3)))
static void fail(struct run *r, const char *fmt, ...)
{
	va_list ap;

	if (r->failed)
		return;
	r->failed = true;
	if (r->cur) {
		sb_where(&r->diag, r->sc, r->cur);
		sb_printf(&r->diag, ": ");
	} else
		sb_printf(&r->diag, "%s: ", r->sc->name);
	va_start(ap, fmt);
	sb_vprintf(&r->diag, fmt, ap);
	va_end(ap);
	sb_printf(&r->diag, "\n");
}

/* More detail under the failure line. */
__attribute__((format(printf, 2, 3)))
static void note(struct run *r, const char *fmt, ...)
{
	va_list ap;

	sb_printf(&r->diag, "  ");
	va_start(ap, fmt);
	sb_vprintf(&r->diag, fmt, ap);
	va_end(ap);
	sb_printf(&r->diag, "\n");
}

static void vtrace_at(ust_time t, const char *fmt, va_list ap)
{
	char tb[32];

	printf("# %11s ", fmt_time(t, tb));
	vprintf(fmt, ap);
	printf("\n");
}

/* -v: one line of the trace, at the current time or at time t. */
__attribute__((format(printf, 2, 3)))
static void trace(struct run *r, const char *fmt, ...)
{
	va_list ap;

	if (!verbose)
		return;
	va_start(ap, fmt);
	vtrace_at(r->now, fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 2, 3)))
static void trace_at(ust_time t, const char *fmt, ...)
{
	va_list ap;

	if (!verbose)
		return;
	va_start(ap, fmt);
	vtrace_at(t, fmt, ap);
	va_end(ap);
}

/* ---- flows ---- */

static struct flow *flow_find(struct run *r, uint16_t lport, uint16_t rport)
{
	for (unsigned i = 0; i < r->nflows; i++)
		if (r->flows[i].lport == lport && r->flows[i].rport == rport)
			return &r->flows[i];
	return NULL;
}

static struct flow *flow_get(struct run *r, uint16_t lport, uint16_t rport)
{
	struct flow *f = flow_find(r, lport, rport);

	if (f)
		return f;
	if (r->nflows == MAX_FLOWS) {
		/* Reuse the oldest: scripts never juggle this many connections. */
		memmove(&r->flows[0], &r->flows[1], (MAX_FLOWS - 1) * sizeof(r->flows[0]));
		r->nflows--;
	}
	f = &r->flows[r->nflows++];
	*f = (struct flow){ .lport = lport, .rport = rport, .peer_isn = r->peer_isn };
	return f;
}

static uint32_t flow_iss(const struct flow *f) { return f->iss_known ? f->iss : 0; }

/* The peer's address on a flow: the one a line or connect gave it, else
 * the script's peer (10.9.0.1, or 2001:db8::1 with "config ipv6 1"). */
static struct ust_ip6 flow_peer(const struct run *r, const struct flow *f)
{
	static const struct ust_ip6 peer6 = PEER_IP6;

	if (f && f->has_peer)
		return f->peer;
	return r->sc->cfg.ipv6 ? peer6 : ust_ip6_from_v4(PEER_IP);
}

/* Our address for a peer of that family. */
static struct ust_ip6 our_addr_for(const struct ust_ip6 *peer)
{
	static const struct ust_ip6 our6 = OUR_IP6;

	return ust_ip6_is_v4mapped(peer) ? ust_ip6_from_v4(OUR_IP) : our6;
}

/* TSval in script space, or as sent when nothing anchors the mapping. */
static uint32_t ts_to_script(const struct flow *f, uint32_t actual)
{
	return f && f->ts_anchored ? f->ts_script0 + (actual - f->ts_actual0) : actual;
}

static uint32_t ts_to_actual(const struct flow *f, uint32_t script)
{
	return f && f->ts_anchored ? f->ts_actual0 + (script - f->ts_script0) : script;
}

/* ---- byte patterns ---- */

/* The peer's byte at relative sequence number s. */
static uint8_t in_pattern(uint32_t s) { return (uint8_t)(s * 7 + 3); }
/* The stack's (what "send" queues) at relative sequence number s. */
static uint8_t out_pattern(uint32_t s) { return (uint8_t)(s * 11 + 5); }

/* ---- handles ---- */

static struct handle *handle_by_num(struct run *r, int num)
{
	for (unsigned i = r->nhandles; i-- > 0;)
		if (r->handles[i].num == num && !r->handles[i].released)
			return &r->handles[i];
	return NULL;
}

/* The lowest number not in use, as socket() picks fds. */
static struct handle *handle_new(struct run *r)
{
	int num = FIRST_HANDLE;
	struct handle *h;

	while (handle_by_num(r, num))
		num++;
	if (r->nhandles == MAX_HANDLES) {
		fail(r, "more than %d sockets in one script", MAX_HANDLES);
		return NULL;
	}
	h = &r->handles[r->nhandles++];
	*h = (struct handle){ .num = num };
	return h;
}

/* The live handle whose connection is tcb (newest first). */
static struct handle *handle_by_tcb(struct run *r, const struct ust_tcb *tcb, bool released_too)
{
	uint32_t tag = ust_tcp_tag(tcb);

	/* A connection let go of may have been kept as a record and made a
	 * block again (stack/tcp_twrec.c): another address, the same tag. */
	if (released_too && tag && tag <= r->nhandles)
		return &r->handles[tag - 1];
	for (unsigned i = r->nhandles; i-- > 0;) {
		struct handle *h = &r->handles[i];
		if (h->tcb == tcb && (released_too || !h->released))
			return h;
	}
	return NULL;
}

/* Marks tcb as h's: its tag is h's place + 1 (handle_by_tcb). */
static void handle_set_tcb(struct run *r, struct handle *h, struct ust_tcb *tcb)
{
	h->tcb = tcb;
	if (tcb)
		ust_tcp_set_tag(tcb, (uint32_t)(h - r->handles) + 1);
}

/* ------------------------------------------------------------------ */
/* Segments on the wire                                                */
/* ------------------------------------------------------------------ */

/* The TCP part of a decoded datagram (either family); sum is its
 * pseudo-header's. */
static bool decode_tcp(const uint8_t *th, unsigned len, uint32_t sum, struct wire_seg *w, char *why,
		       size_t whylen)
{
	unsigned doff;

	if (len < UST_TCP_HLEN) {
		snprintf(why, whylen, "TCP header truncated (%u bytes)", len);
		return false;
	}
	doff = (unsigned)(th[12] >> 4) * 4;
	if (doff < UST_TCP_HLEN || doff > len) {
		snprintf(why, whylen, "TCP data offset %u is wrong", doff);
		return false;
	}
	w->tcp = true;
	w->sport = ust_get16(th);
	w->dport = ust_get16(th + 2);
	w->seq = ust_get32(th + 4);
	w->ack = ust_get32(th + 8);
	w->flags = th[13];
	w->win = ust_get16(th + 14);
	w->up = ust_get16(th + 18);
	w->optlen = doff - UST_TCP_HLEN;
	memcpy(w->opt, th + UST_TCP_HLEN, w->optlen);
	w->data = th + doff;
	w->len = len - doff;
	w->csum_ok = ust_csum_fold(ust_csum_add(sum, th, len)) == 0;
	return true;
}

/* An IPv6 datagram: the traffic class stands for the TOS byte, the hop
 * limit for the TTL, and DF always holds (nobody fragments IPv6 on the
 * way, RFC 8200 §5), so that lines read the same over both families. */
static bool decode_frame6(const uint8_t *buf, uint32_t len, struct wire_seg *w, char *why, size_t whylen)
{
	struct ust_ipv6 ip;
	enum ust_drop d = ust_ipv6_parse(buf, len, &ip);

	if (d != UST_OK) {
		snprintf(why, whylen, "not a valid IPv6 datagram (%s)", ust_drop_name(d));
		return false;
	}
	w->proto = ip.proto;
	w->src = ip.src;
	w->dst = ip.dst;
	if (ip.proto == UST_IPPROTO_ICMPV6) {
		w->icmp_type = ip.payload_len ? ip.payload[0] : 0;
		w->icmp_code = ip.payload_len > 1 ? ip.payload[1] : 0;
		return true;
	}
	if (ip.proto != UST_IPPROTO_TCP)
		return true;
	w->ecn = ip.tclass & UST_ECN_MASK;
	w->tos = ip.tclass & (uint8_t)~UST_ECN_MASK;
	w->ttl = ip.hop_limit;
	w->df = true;
	w->v6 = true;
	w->flow = ip.flow;
	return decode_tcp(ip.payload, ip.payload_len,
			  ust_csum_pseudo6(&ip.src, &ip.dst, UST_IPPROTO_TCP, ip.payload_len), w, why, whylen);
}

static bool decode_frame(const uint8_t *buf, uint32_t len, struct wire_seg *w, char *why, size_t whylen)
{
	struct ust_ipv4 ip;
	enum ust_drop d;

	memset(w, 0, sizeof(*w));
	if (len && buf[0] >> 4 == 6)
		return decode_frame6(buf, len, w, why, whylen);
	d = ust_ipv4_parse(buf, len, &ip);
	if (d != UST_OK) {
		snprintf(why, whylen, "not a valid IPv4 datagram (%s)", ust_drop_name(d));
		return false;
	}
	w->proto = ip.proto;
	w->src = ust_ip6_from_v4(ip.src);
	w->dst = ust_ip6_from_v4(ip.dst);
	if (ip.proto == UST_IPPROTO_ICMP) {
		w->icmp_type = ip.payload_len ? ip.payload[0] : 0;
		w->icmp_code = ip.payload_len > 1 ? ip.payload[1] : 0;
		return true;
	}
	if (ip.proto != UST_IPPROTO_TCP)
		return true;
	w->ecn = ip.tos & UST_ECN_MASK;
	w->tos = ip.tos & (uint8_t)~UST_ECN_MASK;
	w->ttl = ip.ttl;
	w->df = (ip.frag & UST_IP_DF) != 0;
	return decode_tcp(ip.payload, ip.payload_len,
			  ust_csum_pseudo(ip.src, ip.dst, UST_IPPROTO_TCP, ip.payload_len), w, why, whylen);
}

/* Splits option bytes into elements; anything it cannot make sense of
 * becomes one OPT_RAW element with the rest of the bytes. */
static void decode_opts(const uint8_t *p, unsigned len, struct opt_list *l)
{
	unsigned i = 0;

	l->present = true;
	l->n = 0;
	while (i < len && l->n < OPT_LIST_MAX) {
		struct opt *o = &l->o[l->n++];
		uint8_t kind = p[i], olen = i + 1 < len ? p[i + 1] : 0;

		memset(o, 0, sizeof(*o));
		if (kind == 0 || kind == 1) {
			o->kind = kind ? OPT_NOP : OPT_EOL;
			i++;
			continue;
		}
		if (olen < 2 || i + olen > len)
			goto raw;
		if (kind == 2 && olen == 4) {
			o->kind = OPT_MSS;
			o->v = ust_get16(p + i + 2);
		} else if (kind == 3 && olen == 3) {
			o->kind = OPT_WSCALE;
			o->v = p[i + 2];
		} else if (kind == 4 && olen == 2) {
			o->kind = OPT_SACKOK;
		} else if (kind == 19 && olen == 2 + UST_MD5_LEN) {
			o->kind = OPT_MD5;
			memcpy(o->raw, p + i + 2, UST_MD5_LEN);
			o->rawlen = UST_MD5_LEN;
		} else if (kind == 8 && olen == 10) {
			o->kind = OPT_TS;
			o->val = ust_get32(p + i + 2);
			o->ecr = ust_get32(p + i + 6);
		} else if (kind == 5 && olen >= 10 && (olen - 2) % 8 == 0 && olen <= 34) {
			o->kind = OPT_SACK;
			o->nblocks = (uint8_t)((olen - 2) / 8);
			for (unsigned b = 0; b < o->nblocks; b++) {
				o->blk[b][0] = ust_get32(p + i + 2 + 8 * b);
				o->blk[b][1] = ust_get32(p + i + 6 + 8 * b);
			}
		} else {
			o->kind = OPT_RAW;
			memcpy(o->raw, p + i, olen);
			o->rawlen = olen;
		}
		i += olen;
		continue;
raw:
		o->kind = OPT_RAW;
		o->rawlen = (uint8_t)(len - i);
		memcpy(o->raw, p + i, len - i);
		break;
	}
}

static const struct opt *find_ts(const struct opt_list *l)
{
	for (unsigned i = 0; i < l->n; i++)
		if (l->o[i].kind == OPT_TS)
			return &l->o[i];
	return NULL;
}

/* How the numbers of a segment read in the script: relative to whom. */
struct view {
	const struct flow *f;
	bool outbound;
	bool ports;            /* always show the ports (several connections) */
};

static void fmt_flags(uint8_t f, char out[10])
{
	size_t n = 0;

	if (f & UST_TH_SYN) out[n++] = 'S';
	if (f & UST_TH_FIN) out[n++] = 'F';
	if (f & UST_TH_RST) out[n++] = 'R';
	if (f & UST_TH_PSH) out[n++] = 'P';
	if (f & UST_TH_URG) out[n++] = 'U';
	if (f & UST_TH_ECE) out[n++] = 'E';
	if (f & UST_TH_CWR) out[n++] = 'W';
	if (f & UST_TH_ACK) out[n++] = '.';
	if (!n) out[n++] = '-';
	out[n] = 0;
}

/* One option in script notation. val and ecr are the numbers to show for a
 * timestamp (already in script space); SACK blocks are shown relative to
 * sack_base. */
static void fmt_opt(struct sbuf *b, const struct opt *o, uint32_t sack_base, uint32_t val, uint32_t ecr)
{
	switch (o->kind) {
	case OPT_EOL: sb_printf(b, "eol"); break;
	case OPT_NOP: sb_printf(b, "nop"); break;
	case OPT_MSS: sb_printf(b, "mss %u", o->v); break;
	case OPT_WSCALE: sb_printf(b, "wscale %u", o->v); break;
	case OPT_SACKOK: sb_printf(b, "sackOK"); break;
	case OPT_TS:
		sb_printf(b, "TS val ");
		if (o->val_any)
			sb_printf(b, "*");
		else
			sb_printf(b, "%u", val);
		sb_printf(b, " ecr ");
		if (o->ecr_any)
			sb_printf(b, "*");
		else
			sb_printf(b, "%u", ecr);
		break;
	case OPT_SACK:
		sb_printf(b, "sack");
		for (unsigned k = 0; k < o->nblocks; k++)
			sb_printf(b, " %u:%u", o->blk[k][0] - sack_base, o->blk[k][1] - sack_base);
		break;
	case OPT_MD5:
		if (o->key[0]) {
			sb_printf(b, "md5 %s", o->key);
			break;
		}
		sb_printf(b, "md5 ");
		for (unsigned k = 0; k < o->rawlen; k++)
			sb_printf(b, "%02x", o->raw[k]);
		break;
	case OPT_RAW:
		sb_printf(b, "opt ");
		for (unsigned k = 0; k < o->rawlen; k++)
			sb_printf(b, "%02x", o->raw[k]);
		break;
	}
}

/* An option as sent, in script notation. SACK blocks count in the sequence
 * space of whoever sent the data they acknowledge. */
static void fmt_wire_opt(struct sbuf *b, const struct opt *o, const struct view *v, bool ack_set)
{
	uint32_t sack_base = !v->f ? 0 : v->outbound ? v->f->peer_isn : flow_iss(v->f);
	uint32_t val = o->val, ecr = o->ecr;

	if (v->outbound)
		val = ts_to_script(v->f, o->val);
	else if (ack_set)
		ecr = ts_to_script(v->f, o->ecr);
	fmt_opt(b, o, sack_base, val, ecr);
}

static void fmt_opts(struct sbuf *b, const struct opt_list *l, const struct view *v, bool ack_set)
{
	sb_printf(b, " <");
	for (unsigned i = 0; i < l->n; i++) {
		if (i)
			sb_printf(b, ",");
		fmt_wire_opt(b, &l->o[i], v, ack_set);
	}
	sb_printf(b, ">");
}

/* A decoded segment in script notation: "> P. 1:1001(1000) ack 1 win 502 <...>". */
static void fmt_wire(struct sbuf *b, const struct wire_seg *w, const struct view *v)
{
	char fl[10];
	uint32_t seq_base, ack_base;
	struct opt_list ol;

	if (!w->tcp) {
		if (w->proto == UST_IPPROTO_ICMP)
			sb_printf(b, "%c icmp type %u code %u", v->outbound ? '>' : '<', w->icmp_type,
				  w->icmp_code);
		else
			sb_printf(b, "%c IP protocol %u", v->outbound ? '>' : '<', w->proto);
		return;
	}
	seq_base = !v->f ? 0 : v->outbound ? flow_iss(v->f) : v->f->peer_isn;
	ack_base = !v->f ? 0 : v->outbound ? v->f->peer_isn : flow_iss(v->f);
	fmt_flags(w->flags, fl);
	sb_printf(b, "%c %s %u:%u(%u)", v->outbound ? '>' : '<', fl, w->seq - seq_base,
		  w->seq - seq_base + w->len, w->len);
	if (w->flags & UST_TH_ACK)
		sb_printf(b, " ack %u", w->ack - ack_base);
	else if (w->ack)
		sb_printf(b, " ack-field %u", w->ack - ack_base);
	sb_printf(b, " win %u", w->win);
	if (w->optlen) {
		decode_opts(w->opt, w->optlen, &ol);
		fmt_opts(b, &ol, v, w->flags & UST_TH_ACK);
	}
	if (v->ports || !v->f ||
	    (v->outbound ? (w->sport != v->f->lport || w->dport != v->f->rport)
			 : (w->dport != v->f->lport || w->sport != v->f->rport)))
		sb_printf(b, " sport %u dport %u", w->sport, w->dport);
	if (w->ecn)
		sb_printf(b, " %s", ecn_names[w->ecn]);
	if (w->up)
		sb_printf(b, " urg %u", w->up);
	if (w->tos)
		sb_printf(b, " tos %#x", w->tos);
	if (w->ttl != UST_IP_TTL_DEFAULT)
		sb_printf(b, " ttl %u", w->ttl);
	if (!w->df)
		sb_printf(b, " nodf");
	if (!w->csum_ok)
		sb_printf(b, " (bad checksum)");
}

/* ------------------------------------------------------------------ */
/* Stack glue: capture, callbacks, clock                               */
/* ------------------------------------------------------------------ */

/* The view for printing a segment of this run. */
static struct view view_of(struct run *r, const struct wire_seg *w, bool outbound)
{
	struct view v = { .outbound = outbound, .ports = r->nflows > 1 };

	if (w->tcp)
		v.f = outbound ? flow_find(r, w->sport, w->dport) : flow_find(r, w->dport, w->sport);
	return v;
}

static void trace_frame(struct run *r, ust_time t, const uint8_t *data, uint32_t len, bool outbound,
			const char *suffix)
{
	struct wire_seg w;
	char why[96];
	struct sbuf b = { 0 };
	struct view v;

	if (!verbose)
		return;
	if (!decode_frame(data, len, &w, why, sizeof(why))) {
		trace_at(t, "%c (%s)%s", outbound ? '>' : '<', why, suffix);
		return;
	}
	v = view_of(r, &w, outbound);
	fmt_wire(&b, &w, &v);
	trace_at(t, "%s%s", sb_str(&b), suffix);
	sb_free(&b);
}

/* Learns the stack's ISS from the first SYN or SYN-ACK of a flow. */
static void observe_outbound(struct run *r, const uint8_t *data, uint32_t len)
{
	struct wire_seg w;
	char why[96];

	if (!decode_frame(data, len, &w, why, sizeof(why)) || !w.tcp)
		return;
	if (len <= sizeof(r->last_sent)) {
		memcpy(r->last_sent, data, len);
		r->last_sent_len = len;
	}
	if (w.flags & UST_TH_SYN) {
		struct flow *f = flow_get(r, w.sport, w.dport);
		if (!f->iss_known) {
			f->iss_known = true;
			f->iss = w.seq;
		}
	}
}

static unsigned capture_output(void *ctx, struct ust_pkt *const *pkts, unsigned n)
{
	struct run *r = ctx;

	for (unsigned i = 0; i < n; i++) {
		struct frame *fr = xcalloc(1, sizeof(*fr) + pkts[i]->len);
		fr->t = r->now;
		fr->cause = r->acting;
		fr->len = pkts[i]->len;
		memcpy(fr->data, pkts[i]->data, pkts[i]->len);
		*r->q_tail = fr;
		r->q_tail = &fr->next;
		observe_outbound(r, fr->data, fr->len);
	}
	return n;
}

static void on_event(void *ctx, struct ust_tcb *tcb, unsigned events)
{
	struct run *r = ctx;
	struct handle *h;
	char eb[128];

	if (r->destroying)
		return;
	h = handle_by_tcb(r, tcb, false);
	if (!h) {
		if (verbose)
			trace(r, "  (a connection without a socket gets %s)", fmt_events(events, eb));
		return;
	}
	h->events |= events;
	if (verbose)
		trace(r, "  (%d gets %s)", h->num, fmt_events(events, eb));
}

static void on_closed(void *ctx, const struct ust_tcb *tcb)
{
	struct run *r = ctx;
	struct handle *h;
	struct flow *f;

	if (r->destroying)
		return;
	/* Its flow label ends with it: a RST for its 4-tuple from no
	 * connection carries the 4-tuple's own, as Linux's control socket. */
	f = flow_find(r, tcb->lport, tcb->rport);
	if (f)
		f->label_known = f->sent_known = false;
	h = handle_by_tcb(r, tcb, true);
	if (!h)
		return;
	h->rec = tcb->rec;
	h->have_record = true;
	if (verbose)
		trace(r, "  (%d is CLOSED: outcome %s)", h->num, ust_tcp_outcome_name(tcb->rec.outcome));
	/* A connection the user let go of is freed right after this. */
	if (h->released)
		h->tcb = NULL;
}

static void flush(struct run *r)
{
	ust_stack_flush(&r->st);
}

/* Moves the clock to t, running every timer that falls due on the way at
 * its own deadline, or timer_lag after it (a loop that wakes late, as
 * epoll's millisecond timeouts make the real one). With stop_on_output it
 * stops early, at the instant the stack sends something. */
static void advance(struct run *r, ust_time t, bool stop_on_output)
{
	unsigned same = 0;

	for (;;) {
		ust_time due = ust_tcp_timers(&r->tcp, r->now);
		due = ust_time_min(due, ust_stack_timers(&r->st, r->now));
		flush(r);
		if (stop_on_output && r->q_head)
			return;
		if (due != UST_TIME_NEVER && due > r->now)
			due = due + r->timer_lag > r->now ? due + r->timer_lag : r->now;
		if (due > t)
			break;
		if (due <= r->now) {
			if (++same > MAX_SAME_INSTANT) {
				fail(r, "the stack's timers keep asking to run at %" PRIu64 " us "
				     "without the clock moving", r->now);
				return;
			}
			continue;
		}
		same = 0;
		r->now = due;
	}
	if (t > r->now)
		r->now = t;
}

static struct frame *queue_pop(struct run *r)
{
	struct frame *fr = r->q_head;

	if (fr) {
		r->q_head = fr->next;
		if (!r->q_head)
			r->q_tail = &r->q_head;
	}
	return fr;
}

static void queue_free(struct run *r)
{
	struct frame *fr;

	while ((fr = queue_pop(r)))
		free(fr);
}

/* Reports the first segment nobody expected. */
static void fail_unexpected(struct run *r, const char *where)
{
	struct frame *fr = r->q_head;
	struct wire_seg w;
	char why[96], tb[32];
	struct sbuf b = { 0 };
	struct view v;

	if (!decode_frame(fr->data, fr->len, &w, why, sizeof(why))) {
		fail(r, "unexpected frame at %s %s: %s", fmt_time(fr->t, tb), where, why);
		return;
	}
	v = view_of(r, &w, true);
	fmt_wire(&b, &w, &v);
	fail(r, "unexpected segment %s", where);
	note(r, "sent at %s: %s", fmt_time(fr->t, tb), sb_str(&b));
	if (fr->cause && fr->cause->src == 0) {
		note(r, "sent in answer to line %d: %s", fr->cause->lineno, fr->cause->text);
	} else if (fr->cause) {
		struct sbuf wb = { 0 };
		sb_where(&wb, r->sc, fr->cause);
		note(r, "sent in answer to %s: %s", sb_str(&wb), fr->cause->text);
		sb_free(&wb);
	} else
		note(r, "sent by a timer");
	sb_free(&b);
}

/* ------------------------------------------------------------------ */
/* Executing lines                                                     */
/* ------------------------------------------------------------------ */

/* The ports a line talks about: its own, or the current flow's. */
static void line_ports(const struct run *r, const struct seg_spec *g, uint16_t *lport, uint16_t *rport)
{
	*lport = g->outbound ? (g->sport >= 0 ? (uint16_t)g->sport : r->cur_lport)
			     : (g->dport >= 0 ? (uint16_t)g->dport : r->cur_lport);
	*rport = g->outbound ? (g->dport >= 0 ? (uint16_t)g->dport : r->cur_rport)
			     : (g->sport >= 0 ? (uint16_t)g->sport : r->cur_rport);
}

/* RFC 2385's digest, made here on its own rather than with the stack's
 * tcp_md5.c: the pseudo-header (IPv6's as RFC 2460 §8.1 writes it), the
 * first 20 bytes of the TCP header (th, hlen bytes with its options) with
 * the checksum zeroed, the data, the key. */
static void md5_digest(const char *key, const struct ust_ip6 *src, const struct ust_ip6 *dst, const uint8_t *th,
		       unsigned hlen, const uint8_t *data, unsigned len, uint8_t out[UST_MD5_LEN])
{
	uint8_t ph[40] = { 0 }, head[UST_TCP_HLEN];
	struct ust_md5 m;
	unsigned n;

	if (ust_ip6_is_v4mapped(src)) {
		memcpy(ph, src->b + 12, 4);
		memcpy(ph + 4, dst->b + 12, 4);
		ph[9] = 6;
		ust_put16(ph + 10, (uint16_t)(hlen + len));
		n = 12;
	} else {
		memcpy(ph, src->b, 16);
		memcpy(ph + 16, dst->b, 16);
		ust_put32(ph + 32, hlen + len);
		ph[39] = 6;
		n = 40;
	}
	memcpy(head, th, UST_TCP_HLEN);
	head[16] = head[17] = 0;
	ust_md5_init(&m);
	ust_md5_add(&m, ph, n);
	ust_md5_add(&m, head, UST_TCP_HLEN);
	ust_md5_add(&m, data, len);
	ust_md5_add(&m, key, strlen(key));
	ust_md5_end(&m, out);
}

/* Writes the options of an inbound line, padded with EOL to a multiple of
 * four; returns their length. An md5 option is left for the caller to
 * sign: *md5 and where its digest goes (*md5_at). */
static unsigned encode_opts(const struct opt_list *l, const struct flow *f, bool ack_set, uint8_t *p,
			    const struct opt **md5, unsigned *md5_at)
{
	unsigned n = 0;

	for (unsigned i = 0; i < l->n; i++) {
		const struct opt *o = &l->o[i];
		switch (o->kind) {
		case OPT_EOL: p[n++] = 0; break;
		case OPT_NOP: p[n++] = 1; break;
		case OPT_MSS:
			p[n] = 2; p[n + 1] = 4; ust_put16(p + n + 2, (uint16_t)o->v); n += 4;
			break;
		case OPT_WSCALE:
			p[n] = 3; p[n + 1] = 3; p[n + 2] = (uint8_t)o->v; n += 3;
			break;
		case OPT_SACKOK:
			p[n] = 4; p[n + 1] = 2; n += 2;
			break;
		case OPT_TS:
			/* TSecr echoes one of the stack's TSvals: translate it
			 * back from script space (only with ACK, as packetdrill). */
			p[n] = 8; p[n + 1] = 10;
			ust_put32(p + n + 2, o->val);
			ust_put32(p + n + 6, ack_set ? ts_to_actual(f, o->ecr) : o->ecr);
			n += 10;
			break;
		case OPT_SACK:
			p[n] = 5; p[n + 1] = (uint8_t)(2 + 8 * o->nblocks);
			for (unsigned b = 0; b < o->nblocks; b++) {
				ust_put32(p + n + 2 + 8 * b, o->blk[b][0] + flow_iss(f));
				ust_put32(p + n + 6 + 8 * b, o->blk[b][1] + flow_iss(f));
			}
			n += 2 + 8u * o->nblocks;
			break;
		case OPT_MD5:
			/* Signed once the segment is whole (exec_inbound). */
			p[n] = 19;
			p[n + 1] = 2 + UST_MD5_LEN;
			memset(p + n + 2, 0, UST_MD5_LEN);
			*md5 = o;
			*md5_at = n + 2;
			n += 2 + UST_MD5_LEN;
			break;
		case OPT_RAW:
			memcpy(p + n, o->raw, o->rawlen);
			n += o->rawlen;
			break;
		}
	}
	while (n % 4)
		p[n++] = 0;
	return n;
}

static void exec_inbound(struct run *r, const struct line *l)
{
	const struct seg_spec *g = &l->seg;
	static uint8_t buf[UST_IPV6_HLEN + UST_TCP_HLEN + 64 + 65536];
	uint8_t *th;
	uint16_t lport, rport;
	struct ust_ip6 src, dst;
	struct flow *f;
	unsigned optlen, tcplen, hlen, md5_at = 0;
	const struct opt *md5 = NULL;
	uint32_t first, sum;
	uint16_t csum;
	bool v4;

	line_ports(r, g, &lport, &rport);
	if (!lport) {
		fail(r, "no local port known yet: bind, connect, or write 'dport N'");
		return;
	}
	/* A SYN from another port starts a new flow, which becomes the one
	 * that lines without ports talk about. */
	if ((g->flags & UST_TH_SYN) && !(g->flags & UST_TH_ACK)) {
		r->cur_lport = lport;
		r->cur_rport = rport;
	}
	f = flow_get(r, lport, rport);
	/* The flow remembers the peer address a line gave it. */
	if (g->has_src) {
		f->has_peer = true;
		f->peer = g->src;
	}
	src = flow_peer(r, f);
	dst = g->has_dst ? g->dst : our_addr_for(&src);
	v4 = ust_ip6_is_v4mapped(&src);
	hlen = v4 ? UST_IPV4_HLEN : UST_IPV6_HLEN;
	th = buf + hlen;
	optlen = encode_opts(&g->opts, f, g->flags & UST_TH_ACK, th + UST_TCP_HLEN, &md5, &md5_at);
	tcplen = UST_TCP_HLEN + optlen + g->len;
	ust_put16(th, rport);
	ust_put16(th + 2, lport);
	ust_put32(th + 4, f->peer_isn + g->start);
	ust_put32(th + 8, g->has_ack ? flow_iss(f) + g->ack : 0);
	th[12] = (uint8_t)((UST_TCP_HLEN + optlen) / 4 << 4);
	th[13] = g->flags;
	ust_put16(th + 14, (uint16_t)(g->has_win ? g->win : 65535));
	ust_put16(th + 16, 0);
	ust_put16(th + 18, g->up);
	/* Payload: the peer's pattern, by relative sequence number (the SYN
	 * takes the first one). */
	first = g->start + !!(g->flags & UST_TH_SYN);
	for (uint32_t i = 0; i < g->len; i++)
		th[UST_TCP_HLEN + optlen + i] = in_pattern(first + i);
	if (md5)
		md5_digest(md5->key, &src, &dst, th, UST_TCP_HLEN + optlen, th + UST_TCP_HLEN + optlen, g->len,
			   th + UST_TCP_HLEN + md5_at);
	sum = v4 ? ust_csum_pseudo(ust_ip6_to_v4(&src), ust_ip6_to_v4(&dst), UST_IPPROTO_TCP, (uint16_t)tcplen)
		 : ust_csum_pseudo6(&src, &dst, UST_IPPROTO_TCP, tcplen);
	csum = ust_csum_fold(ust_csum_add(sum, th, tcplen));
	if (g->badcsum)
		csum ^= 0x5a5a;
	ust_put16(th + 16, csum);
	if (v4)
		ust_ipv4_build_tos(buf, ust_ip6_to_v4(&src), ust_ip6_to_v4(&dst), UST_IPPROTO_TCP, g->ecn,
				   (uint16_t)(UST_IPV4_HLEN + tcplen), r->ip_id++, g->ttl ? g->ttl : 64, UST_IP_DF);
	else
	{
		ust_ipv6_build(buf, &src, &dst, UST_IPPROTO_TCP, g->ecn, (uint16_t)tcplen, g->ttl ? g->ttl : 64);
		ust_put32(buf, ust_get32(buf) | g->flow);
	}
	trace_frame(r, r->now, buf, hlen + tcplen, false, "");
	ust_stack_input(&r->st, buf, hlen + tcplen, 0, r->now);
	flush(r);
}

/* An ICMP message as ICMPv6 says it (RFC 4443 §3), for a quoted IPv6
 * segment: unreachable net, admin, host and port are codes 0, 1, 3 and 4;
 * an unknown protocol is a parameter problem (code 1); "fragmentation
 * needed" is "packet too big". */
static void icmp6_of(const struct icmp_spec *c, uint8_t *type, uint8_t *code)
{
	*code = 0;
	if (c->type == UST_ICMP_TIME_EXCEEDED) {
		*type = UST_ICMP6_TIME_EXCEEDED;
		return;
	}
	switch (c->code) {
	case 0: *type = UST_ICMP6_DEST_UNREACH; *code = 0; break;
	case 13: *type = UST_ICMP6_DEST_UNREACH; *code = 1; break;
	case 1: *type = UST_ICMP6_DEST_UNREACH; *code = 3; break;
	case 3: *type = UST_ICMP6_DEST_UNREACH; *code = 4; break;
	case 2: *type = UST_ICMP6_PARAM_PROBLEM; *code = 1; break;
	default: *type = UST_ICMP6_PACKET_TOO_BIG; break;
	}
}

static void exec_icmp6(struct run *r, const struct icmp_spec *c)
{
	static const struct ust_ip6 peer6 = PEER_IP6, our6 = OUR_IP6;
	uint8_t buf[UST_IPV6_HLEN + UST_ICMP6_HLEN + UST_IPV6_MIN_MTU];
	uint8_t *icmp = buf + UST_IPV6_HLEN;
	const struct ust_ip6 *src = c->has_src ? &c->src : &peer6;
	unsigned qlen = r->last_sent_len;
	uint8_t type, code;

	/* As much of the datagram as fits in the minimum MTU (RFC 4443
	 * §2.4 (c)). */
	if (qlen > UST_IPV6_MIN_MTU - UST_IPV6_HLEN - UST_ICMP6_HLEN)
		qlen = UST_IPV6_MIN_MTU - UST_IPV6_HLEN - UST_ICMP6_HLEN;
	memcpy(icmp + UST_ICMP6_HLEN, r->last_sent, qlen);
	icmp6_of(c, &type, &code);
	ust_icmp6_build(icmp, type, code, type == UST_ICMP6_PACKET_TOO_BIG ? c->mtu : 0, qlen, src, &our6);
	ust_ipv6_build(buf, src, &our6, UST_IPPROTO_ICMPV6, 0, (uint16_t)(UST_ICMP6_HLEN + qlen), c->ttl ? c->ttl : 64);
	trace(r, "< icmp6 type %u code %u%s", type, code, c->mtu ? " (mtu given)" : "");
	ust_stack_input(&r->st, buf, UST_IPV6_HLEN + UST_ICMP6_HLEN + qlen, 0, r->now);
	flush(r);
}

static void exec_icmp(struct run *r, const struct line *l)
{
	const struct icmp_spec *c = &l->icmp;
	uint8_t buf[UST_IPV4_HLEN + UST_ICMP_HLEN + 60 + 8];
	uint8_t *icmp = buf + UST_IPV4_HLEN;
	unsigned qlen, len;

	if (!r->last_sent_len) {
		fail(r, "icmp: the stack has sent no segment to quote");
		return;
	}
	if (r->last_sent[0] >> 4 == 6) {
		exec_icmp6(r, c);
		return;
	}
	/* Quote the IP header and the first 8 bytes after it (RFC 792). */
	qlen = (unsigned)(r->last_sent[0] & 0x0f) * 4 + 8;
	if (qlen > r->last_sent_len)
		qlen = r->last_sent_len;
	memcpy(icmp + UST_ICMP_HLEN, r->last_sent, qlen);
	if (c->ttl)
		icmp[UST_ICMP_HLEN + 8] = c->ttl; /* as the reporting router saw it */
	ust_icmp_build(icmp, c->type, c->code, c->mtu, qlen);
	len = UST_IPV4_HLEN + UST_ICMP_HLEN + qlen;
	ust_ipv4_build(buf, c->has_src ? ust_ip6_to_v4(&c->src) : PEER_IP, OUR_IP, UST_IPPROTO_ICMP,
		       (uint16_t)len, r->ip_id++, 64, 0);
	trace(r, "< icmp type %u code %u%s", c->type, c->code, c->mtu ? " (mtu given)" : "");
	ust_stack_input(&r->st, buf, len, 0, r->now);
	flush(r);
}

/* ---- matching an outbound line ---- */

static bool opts_match(struct run *r, const struct opt_list *exp, const struct opt_list *act,
		       struct flow *f, struct sbuf *why)
{
	uint32_t ts_tol = (uint32_t)(r->tolerance / 1000) + 1;

	for (unsigned i = 0; i < exp->n || i < act->n; i++) {
		if (i == exp->n || i == act->n) {
			sb_printf(why, "options: expected %u, got %u", exp->n, act->n);
			return false;
		}
		const struct opt *e = &exp->o[i], *a = &act->o[i];
		bool ok = e->kind == a->kind;
		if (ok) {
			switch (e->kind) {
			case OPT_MSS:
			case OPT_WSCALE:
				ok = e->v == a->v;
				break;
			case OPT_TS:
				if (!e->ecr_any && e->ecr != a->ecr)
					ok = false;
				if (!e->val_any && f->ts_anchored) {
					int32_t d = (int32_t)(ts_to_script(f, a->val) - e->val);
					if (d < -(int32_t)ts_tol || d > (int32_t)ts_tol)
						ok = false;
				}
				break;
			case OPT_SACK:
				ok = e->nblocks == a->nblocks;
				for (unsigned b = 0; ok && b < e->nblocks; b++)
					ok = e->blk[b][0] + f->peer_isn == a->blk[b][0] &&
					     e->blk[b][1] + f->peer_isn == a->blk[b][1];
				break;
			case OPT_RAW:
				ok = e->rawlen == a->rawlen && !memcmp(e->raw, a->raw, e->rawlen);
				break;
			default:
				break;
			}
		}
		if (!ok) {
			struct view v = { .f = f, .outbound = true };
			sb_printf(why, "option %u: expected ", i + 1);
			fmt_opt(why, e, 0, e->val, e->ecr);
			sb_printf(why, ", got ");
			fmt_wire_opt(why, a, &v, true);
			return false;
		}
	}
	return true;
}

/* Does every md5 option the line expects (matched in place by
 * opts_match) carry the digest of the segment under the line's key? */
static bool md5_signed(const struct opt_list *exp, const struct opt_list *act, const struct wire_seg *w)
{
	uint8_t th[UST_TCP_HLEN], d[UST_MD5_LEN];

	ust_put16(th, w->sport);
	ust_put16(th + 2, w->dport);
	ust_put32(th + 4, w->seq);
	ust_put32(th + 8, w->ack);
	th[12] = (uint8_t)((UST_TCP_HLEN + w->optlen) / 4 << 4);
	th[13] = w->flags;
	ust_put16(th + 14, w->win);
	ust_put16(th + 16, 0);
	ust_put16(th + 18, w->up);
	for (unsigned i = 0; i < exp->n; i++) {
		if (exp->o[i].kind != OPT_MD5)
			continue;
		md5_digest(exp->o[i].key, &w->src, &w->dst, th, UST_TCP_HLEN + w->optlen, w->data, w->len, d);
		if (memcmp(d, act->o[i].raw, UST_MD5_LEN) != 0)
			return false;
	}
	return true;
}

/* Anchors the flow's TS mapping at the first TSval a line matched. */
static void ts_anchor(struct flow *f, const struct opt_list *exp, const struct opt_list *act)
{
	const struct opt *a = find_ts(act), *e = exp->present ? find_ts(exp) : NULL;

	if (f->ts_anchored || !a)
		return;
	f->ts_anchored = true;
	f->ts_actual0 = a->val;
	f->ts_script0 = e && !e->val_any ? e->val : 0;
}

/* Compares what the stack sent with an outbound line; says why not. */
static bool seg_match(struct run *r, const struct seg_spec *g, const struct wire_seg *w, struct sbuf *why)
{
	uint16_t lport, rport;
	struct flow *f;
	struct opt_list act;
	char ef[10], af[10];
	uint32_t seq, first;
	size_t start = why->len;

	if (!w->tcp) {
		sb_printf(why, "not a TCP segment");
		return false;
	}
	line_ports(r, g, &lport, &rport);
	f = flow_get(r, w->sport, w->dport);
	if (!w->csum_ok)
		sb_printf(why, "bad TCP checksum; ");
	{
		struct ust_ip6 peer = g->has_dst ? g->dst : flow_peer(r, f), ours = our_addr_for(&peer);
		char eb[48], ab[48];

		if (!ust_ip6_eq(&w->src, &ours))
			sb_printf(why, "source address %s is not ours (%s); ", fmt_ip_any(&w->src, ab),
				  fmt_ip_any(&ours, eb));
		if (!ust_ip6_eq(&w->dst, &peer))
			sb_printf(why, "destination address: expected %s, got %s; ", fmt_ip_any(&peer, eb),
				  fmt_ip_any(&w->dst, ab));
	}
	if ((lport && w->sport != lport) || w->dport != rport)
		sb_printf(why, "ports: expected sport %u dport %u, got sport %u dport %u; ", lport,
			  rport, w->sport, w->dport);
	if (w->flags != g->flags) {
		fmt_flags(g->flags, ef);
		fmt_flags(w->flags, af);
		sb_printf(why, "flags: expected %s, got %s; ", ef, af);
	}
	seq = w->seq - flow_iss(f);
	if (seq != g->start)
		sb_printf(why, "seq: expected %u, got %u; ", g->start, seq);
	if (w->len != g->len)
		sb_printf(why, "length: expected %u, got %u; ", g->len, w->len);
	if (g->has_ack && !(w->flags & UST_TH_ACK) && !(g->flags & UST_TH_ACK))
		; /* "ack N" on a line without '.': the flags already differ or N is moot */
	else if (g->has_ack && !(w->flags & UST_TH_ACK))
		sb_printf(why, "ack: expected %u, but the ACK flag is off; ", g->ack);
	else if (g->has_ack && w->ack - f->peer_isn != g->ack)
		sb_printf(why, "ack: expected %u, got %u; ", g->ack, w->ack - f->peer_isn);
	if (g->has_win && w->win != g->win)
		sb_printf(why, "win: expected %u, got %u; ", g->win, w->win);
	if (w->ecn != g->ecn)
		sb_printf(why, "ECN field: expected %s, got %s; ", ecn_names[g->ecn], ecn_names[w->ecn]);
	if (w->up != g->up)
		sb_printf(why, "urgent pointer: expected %u, got %u; ", g->up, w->up);
	if (w->tos != g->tos)
		sb_printf(why, "TOS: expected %#x, got %#x; ", g->tos, w->tos);
	if (w->ttl != (g->ttl ? g->ttl : UST_IP_TTL_DEFAULT))
		sb_printf(why, "TTL: expected %u, got %u; ", g->ttl ? g->ttl : UST_IP_TTL_DEFAULT, w->ttl);
	if (w->df == g->nodf)
		sb_printf(why, "DF: expected %s; ", g->nodf ? "none" : "set");
	if (w->v6 && g->label == LABEL_NONE) {
		if (w->flow)
			sb_printf(why, "flow label %#x, where none was expected; ", w->flow);
	} else if (w->v6 && f->label_known) {
		/* Sends again what it sent before: a new label may come
		 * (after a timeout; Linux's sk_rethink_txhash). */
		bool again = ((w->flags & UST_TH_SYN) || w->len || (w->flags & UST_TH_FIN)) && f->sent_known &&
			     seq_lt(w->seq, f->sent_end);
		if (g->label == LABEL_NEW && w->flow == f->label)
			sb_printf(why, "flow label %#x, where a new one was expected; ", w->flow);
		else if (w->flow != f->label && (g->label == LABEL_SAME || (g->label == LABEL_ANY && !again)))
			sb_printf(why, "flow label %#x, where this connection's is %#x; ", w->flow, f->label);
	}
	decode_opts(w->opt, w->optlen, &act);
	if (g->opts.present && !opts_match(r, &g->opts, &act, f, why))
		sb_printf(why, "; ");
	else if (g->opts.present && !md5_signed(&g->opts, &act, w))
		sb_printf(why, "MD5 signature: not the digest of this segment under its key; ");
	/* The payload must be the bytes "send" queued at those positions. */
	first = seq + !!(w->flags & UST_TH_SYN);
	for (uint32_t i = 0; i < w->len && f->iss_known; i++)
		if (w->data[i] != out_pattern(first + i)) {
			sb_printf(why, "payload byte at relative seq %u is 0x%02x, expected 0x%02x; ",
				  first + i, w->data[i], out_pattern(first + i));
			break;
		}
	if (why->len != start) {
		why->len -= 2; /* the last "; " */
		why->s[why->len] = 0;
		return false;
	}
	ts_anchor(f, &g->opts, &act);
	if (w->v6) {
		uint32_t end = w->seq + w->len + !!(w->flags & UST_TH_SYN) + !!(w->flags & UST_TH_FIN);
		f->label_known = true;
		f->label = w->flow;
		if (!f->sent_known || seq_gt(end, f->sent_end))
			f->sent_end = end;
		f->sent_known = true;
	}
	return true;
}

/* The window [lo, hi] in which an outbound line accepts its segment. */
static void outbound_window(struct run *r, const struct line *l, ust_time t, ust_time t_b,
			    ust_time *lo, ust_time *hi)
{
	ust_time tol = r->tolerance;

	*lo = t > tol ? t - tol : 0;
	*hi = (l->time.range ? t_b : t) + tol;
}

/* Expects the stack's next segment within [lo, hi]; returns when it came. */
static bool exec_outbound(struct run *r, const struct line *l, ust_time lo, ust_time hi, ust_time *seen)
{
	struct frame *fr;
	struct wire_seg w;
	char why[96], tb[32], tb2[32], tb3[32];
	struct sbuf reason = { 0 }, act = { 0 };
	struct view v;
	bool ok;

	if (!r->q_head && r->now < hi)
		advance(r, hi, true);
	if (r->failed)
		return false;
	if (!r->q_head) {
		fail(r, "expected segment was not sent by %s (nothing was sent)", fmt_time(hi, tb));
		note(r, "expected: %s", l->text);
		return false;
	}
	fr = r->q_head;
	if (!decode_frame(fr->data, fr->len, &w, why, sizeof(why))) {
		fail(r, "the stack sent a bad frame at %s: %s", fmt_time(fr->t, tb), why);
		return false;
	}
	ok = seg_match(r, &l->seg, &w, &reason);
	v = view_of(r, &w, true);
	fmt_wire(&act, &w, &v);
	trace_at(fr->t, "%s", sb_str(&act));
	if (!ok) {
		fail(r, "segment differs: %s", sb_str(&reason));
		note(r, "expected: %s", l->text);
		note(r, "actual:   %s %s", fmt_time(fr->t, tb), sb_str(&act));
	} else if (fr->t < lo) {
		ok = false;
		fail(r, "segment sent too early: at %s, expected from %s to %s", fmt_time(fr->t, tb),
		     fmt_time(lo, tb2), fmt_time(hi, tb3));
		note(r, "actual:   %s %s", fmt_time(fr->t, tb), sb_str(&act));
	} else if (fr->t > hi) {
		ok = false;
		fail(r, "segment sent too late: at %s, expected by %s", fmt_time(fr->t, tb),
		     fmt_time(hi, tb2));
		note(r, "actual:   %s %s", fmt_time(fr->t, tb), sb_str(&act));
	}
	*seen = fr->t;
	free(queue_pop(r));
	sb_free(&reason);
	sb_free(&act);
	return ok;
}

/* ---- user calls ---- */

static struct handle *need_handle(struct run *r, const struct call *c)
{
	struct handle *h = handle_by_num(r, c->h);

	if (!h)
		fail(r, "%s: no open socket %d", c->def->name, c->h);
	else if (!h->tcb)
		fail(r, "%s: socket %d has no connection any more", c->def->name, c->h);
	else
		return h;
	return NULL;
}

static void check_int(struct run *r, const struct call *c, long long got)
{
	char e[48], g[48];

	bool pos = c->def->cmd == CMD_SO_ERROR;

	if (c->has_result && got != c->rv)
		fail(r, "%s returned %s, expected %s", c->def->name, fmt_result_as(got, pos, g),
		     fmt_result_as(c->rv, pos, e));
}

static void check_words(struct run *r, const struct call *c, const char *what, const char *got)
{
	if (strcmp(got, c->words))
		fail(r, "%s is %s, expected %s", what, got, c->words);
}

/* Makes the flow of a connection the one later lines talk about. */
static void follow(struct run *r, struct ust_tcb *tcb)
{
	struct ust_tcp_status s;

	ust_tcp_status(tcb, &s);
	if (s.lport)
		r->cur_lport = s.lport;
	if (s.rport)
		r->cur_rport = s.rport;
	if (s.lport && s.rport)
		flow_get(r, s.lport, s.rport);
}

/* struct ust_tcp_status fields by name. */
enum ftype { FT_STATE, FT_IP, FT_U16, FT_U32, FT_UNS, FT_U64, FT_BOOL, FT_DUR, FT_TIMER, FT_DUE,
	     FT_CA, FT_STR };

static const struct field {
	const char *name;
	size_t off;
	enum ftype type;
} status_fields[] = {
#define SF(x, t) { #x, offsetof(struct ust_tcp_status, x), t }
	SF(state, FT_STATE),   SF(laddr, FT_IP),      SF(raddr, FT_IP),
	SF(lport, FT_U16),     SF(rport, FT_U16),     SF(rcv_queued, FT_U32),
	SF(snd_queued, FT_U32), SF(snd_space, FT_U32), SF(srtt, FT_DUR),
	SF(rttvar, FT_DUR),    SF(rto, FT_DUR),       SF(cwnd, FT_U32),
	SF(ssthresh, FT_U32),  SF(mss, FT_U32),       SF(rcv_mss, FT_U32),
	SF(retransmits, FT_UNS), SF(backoff, FT_UNS), SF(total_retrans, FT_U64),
	SF(eof, FT_BOOL),      SF(timer, FT_TIMER),   SF(timer_due, FT_DUE),
	SF(ca_state, FT_CA),   SF(cc, FT_STR),        SF(packets_out, FT_U32),
	SF(sacked_out, FT_U32), SF(lost_out, FT_U32), SF(retrans_out, FT_U32),
	SF(reordering, FT_U32), SF(reord_seen, FT_U32), SF(dsacks, FT_U32),
	SF(delivered, FT_U64), SF(ecn_ok, FT_BOOL), SF(ecn_seen, FT_BOOL),
	SF(min_rtt, FT_DUR),   SF(pacing_rate, FT_U64), SF(info_pacing_rate, FT_U64),
	SF(max_pacing_rate, FT_U64),
	SF(notsent, FT_U32),   SF(snd_wnd, FT_U32),   SF(rcv_wnd, FT_U32),
	SF(since_data_sent, FT_DUR), SF(since_data_recv, FT_DUR), SF(since_ack_recv, FT_DUR),
	SF(busy_time, FT_DUR), SF(rwnd_limited, FT_DUR), SF(sndbuf_limited, FT_DUR),
	SF(delivery_rate, FT_U64), SF(ring_mem, FT_U32),
#define SS(x, t) { #x, offsetof(struct ust_tcp_status, stats.x), t }
	SS(bytes_acked, FT_U64), SS(bytes_received, FT_U64), SS(bytes_sent, FT_U64),
	SS(bytes_retrans, FT_U64), SS(segs_in, FT_U32), SS(segs_out, FT_U32),
	SS(data_segs_in, FT_U32), SS(data_segs_out, FT_U32), SS(rcv_ooopack, FT_U32),
	SS(total_rto, FT_U16), SS(total_rto_recoveries, FT_U16), SS(total_rto_time, FT_U32),
	SS(received_ce, FT_U32), SS(delivered_ce, FT_U32),
#undef SS
#undef SF
};

static const char *const timer_names[UST_TT_N] = { "RTX", "DELACK", "KEEPALIVE", "TIMEWAIT",
								  "REO", "PACE", "TLP", "SHED", "SACK" };

/* Reads a status field as the script writes it. Durations compare as
 * numbers of microseconds, so "200ms" and "200000" are the same. */
static void field_text(const struct field *fd, const void *base, char *out, size_t n, uint64_t *num,
		       bool *is_num)
{
	const char *p = (const char *)base + fd->off;
	char ipb[48];

	*is_num = true;
	switch (fd->type) {
	case FT_STATE: {
		enum ust_tcp_state s;
		memcpy(&s, p, sizeof(s));
		snprintf(out, n, "%s", ust_tcp_state_name(s));
		*is_num = false;
		return;
	}
	case FT_IP: {
		struct ust_ip6 a;
		memcpy(&a, p, sizeof(a));
		snprintf(out, n, "%s", fmt_ip_any(&a, ipb));
		*is_num = false;
		return;
	}
	case FT_U16: { uint16_t v; memcpy(&v, p, sizeof(v)); *num = v; break; }
	case FT_U32: { uint32_t v; memcpy(&v, p, sizeof(v)); *num = v; break; }
	case FT_UNS: { unsigned v; memcpy(&v, p, sizeof(v)); *num = v; break; }
	case FT_U64: { uint64_t v; memcpy(&v, p, sizeof(v)); *num = v; break; }
	case FT_DUR: { ust_time v; memcpy(&v, p, sizeof(v)); *num = v; break; }
	case FT_BOOL: {
		bool v;
		memcpy(&v, p, sizeof(v));
		snprintf(out, n, "%d", v);
		*num = v;
		return;
	}
	case FT_CA: {
		static const char *const ca_names[] = { "Open", "Disorder", "CWR", "Recovery", "Loss" };
		unsigned v;
		memcpy(&v, p, sizeof(v));
		snprintf(out, n, "%s", v < UST_ARRAY_SIZE(ca_names) ? ca_names[v] : "?");
		*is_num = false;
		return;
	}
	case FT_STR: {
		const char *v;
		memcpy(&v, p, sizeof(v));
		snprintf(out, n, "%s", v ? v : "");
		*is_num = false;
		return;
	}
	case FT_TIMER: {
		int v;
		memcpy(&v, p, sizeof(v));
		snprintf(out, n, "%s", v >= 0 && v < UST_TT_N ? timer_names[v] : "none");
		*is_num = false;
		return;
	}
	case FT_DUE: {
		ust_time v;
		char tb[32];
		memcpy(&v, p, sizeof(v));
		snprintf(out, n, "%s", v == UST_TIME_NEVER ? "never" : fmt_time(v, tb));
		*is_num = false;
		return;
	}
	}
	snprintf(out, n, "%" PRIu64, *num);
}

static void exec_status(struct run *r, const struct call *c, struct handle *h)
{
	struct ust_tcp_status s;
	const struct field *fd = NULL;
	char got[64];
	uint64_t num = 0;
	ust_time want;
	bool is_num;

	for (size_t i = 0; i < UST_ARRAY_SIZE(status_fields); i++)
		if (!strcmp(status_fields[i].name, c->arg[0]))
			fd = &status_fields[i];
	if (!fd) {
		fail(r, "status: no field '%s'", c->arg[0]);
		return;
	}
	ust_tcp_status(h->tcb, &s);
	field_text(fd, &s, got, sizeof(got), &num, &is_num);
	if (is_num) {
		bool parsed = fd->type == FT_DUR ? parse_duration(c->words, &want)
						 : parse_u64(c->words, UINT64_MAX, &want);
		if (!parsed) {
			fail(r, "status %s: '%s' is not a number", fd->name, c->words);
			return;
		}
		if (num != want)
			fail(r, "status %s is %s, expected %s", fd->name, got, c->words);
		return;
	}
	if (fd->type == FT_IP) {
		/* As an address, so that --family=6 reads 10.9.0.X mapped. */
		struct ust_ip6 a;
		char ipb[48];
		if (parse_ip_any(c->words, &a) && strcmp(got, fmt_ip_any(&a, ipb)))
			fail(r, "status %s is %s, expected %s", fd->name, got, ipb);
		if (parse_ip_any(c->words, &a))
			return;
	}
	if (strcmp(got, c->words))
		fail(r, "status %s is %s, expected %s", fd->name, got, c->words);
}

static void exec_record(struct run *r, const struct call *c, struct handle *h)
{
	const struct ust_tcp_record *rec = &h->rec;
	char got[256];
	size_t n = 0;

	if (!h->have_record) {
		fail(r, "record: connection %d has not reached CLOSED yet", h->num);
		return;
	}
	if (!strcmp(c->arg[0], "outcome")) {
		snprintf(got, sizeof(got), "%s", ust_tcp_outcome_name(rec->outcome));
	} else if (!strcmp(c->arg[0], "initiator")) {
		const char *i = ust_tcp_initiator_name(rec->initiator);
		snprintf(got, sizeof(got), "%s", i ? i : "none");
	} else if (!strcmp(c->arg[0], "reason")) {
		snprintf(got, sizeof(got), "\"%s\"", rec->reason ? rec->reason : "");
	} else if (!strcmp(c->arg[0], "states")) {
		got[0] = 0;
		for (unsigned i = 0; i < rec->nstates && n < sizeof(got); i++)
			n += (size_t)snprintf(got + n, sizeof(got) - n, "%s%s", i ? "," : "",
					      ust_tcp_state_name((enum ust_tcp_state)rec->states[i]));
	} else if (!strcmp(c->arg[0], "bytes_sent")) {
		snprintf(got, sizeof(got), "%" PRIu64, rec->bytes_sent);
	} else if (!strcmp(c->arg[0], "bytes_received")) {
		snprintf(got, sizeof(got), "%" PRIu64, rec->bytes_received);
	} else {
		fail(r, "record: no field '%s' (outcome, initiator, reason, states, bytes_sent, "
		     "bytes_received)", c->arg[0]);
		return;
	}
	if (strcmp(got, c->words))
		fail(r, "record %s is %s, expected %s", c->arg[0], got, c->words);
}

/* ---- calls that return a value ---- */

/* socket [FAMILY]: AF_INET, AF_INET6 (dual-stack), AF_INET6_V6ONLY; by
 * default as the config says (ipv6, v6only). */
static long long call_socket(struct run *r, const struct call *c)
{
	struct handle *h;
	struct ust_tcb *tcb;
	bool ipv6 = r->sc->cfg.ipv6, v6only = r->sc->cfg.v6only;
	int err = 0;

	if (c->nargs) {
		ipv6 = strncmp(c->arg[0], "AF_INET6", 8) == 0;
		v6only = !strcmp(c->arg[0], "AF_INET6_V6ONLY");
		if (strcmp(c->arg[0], "AF_INET") && strcmp(c->arg[0], "AF_INET6") && !v6only)
			fail(r, "socket: unknown family %s", c->arg[0]);
	}
	h = handle_new(r);
	if (!h)
		return -EMFILE;
	tcb = ust_tcp_create(&r->tcp, h, &err);
	if (!tcb) {
		r->nhandles--;
		return err > 0 ? -err : err ? err : -ENOMEM;
	}
	handle_set_tcb(r, h, tcb);
	if (ipv6)
		ust_tcp_set_family(tcb, true, v6only);
	return h->num;
}

static long long call_accept(struct run *r, struct handle *listener)
{
	struct handle *h = handle_new(r);
	struct ust_tcb *tcb;
	int err = 0;

	if (!h)
		return -EMFILE;
	tcb = ust_tcp_accept(listener->tcb, h, &err);
	if (!tcb) {
		r->nhandles--;
		return err > 0 ? -err : err ? err : -EAGAIN;
	}
	handle_set_tcb(r, h, tcb);
	follow(r, tcb);
	return h->num;
}

static long long call_connect(struct run *r, struct handle *h, const char *where)
{
	struct ust_ip6 a = { { 0 } };
	uint32_t port = 0;
	long long got;

	parse_endpoint(where, &a, &port);
	got = ust_tcp_connect_to(h->tcb, &a, (uint16_t)port, r->now);
	if (ust_tcp_local_port(h->tcb)) {
		struct flow *f = flow_get(r, ust_tcp_local_port(h->tcb), (uint16_t)port);
		f->has_peer = true;
		f->peer = a;
		f->label_known = f->sent_known = false; /* a new connection, perhaps to another host */
	}
	follow(r, h->tcb);
	return got;
}

/* Queues the next n bytes of the stack's pattern. */
static long long call_send(struct run *r, struct handle *h, uint32_t n)
{
	uint8_t *buf = xcalloc(1, n ? n : 1);
	long long got;

	for (uint32_t i = 0; i < n; i++)
		buf[i] = out_pattern((uint32_t)(h->sent + 1 + i));
	got = ust_tcp_send(h->tcb, buf, n, r->now);
	if (got > 0)
		h->sent += (uint64_t)got;
	free(buf);
	return got;
}

/* Reads up to n bytes and checks them against the peer's pattern. */
static long long call_recv(struct run *r, struct handle *h, uint32_t n)
{
	uint8_t *buf = xcalloc(1, n ? n : 1);
	long long got = ust_tcp_receive(h->tcb, buf, n, r->now);

	if (got > (long long)n)
		fail(r, "recv returned %lld for a %u-byte buffer", got, n);
	for (long long i = 0; i < got && !r->failed; i++) {
		uint32_t s = (uint32_t)(h->received + 1 + (uint64_t)i);
		if (buf[i] != in_pattern(s))
			fail(r, "recv: byte %lld (relative seq %u) is 0x%02x, expected 0x%02x", i, s,
			     buf[i], in_pattern(s));
	}
	if (got > 0)
		h->received += (uint64_t)got;
	free(buf);
	return got;
}

static long long call_counter(struct run *r, const char *name)
{
	for (int d = 1; d < UST_DROP_MAX; d++)
		if (!strcmp(ust_drop_name((enum ust_drop)d), name))
			return (long long)r->st.ctr.drop[d];
	for (int e = 0; e < UST_EVENT_MAX; e++)
		if (!strcmp(ust_event_name((enum ust_event)e), name))
			return (long long)r->st.ctr.event[e];
	return -1;
}

/* ---- checks ---- */

static void check_state(struct run *r, const struct call *c, struct handle *h)
{
	struct ust_tcp_status s;

	ust_tcp_status(h->tcb, &s);
	check_words(r, c, "state", ust_tcp_state_name(s.state));
}

static void check_events(struct run *r, const struct call *c, struct handle *h)
{
	unsigned have = h->events, want = (unsigned)c->rv;
	char eb[128], eb2[128];

	h->events = 0;
	if (c->subset ? (have & want) != want : have != want)
		fail(r, "events of %d are %s, expected %s%s", c->h, fmt_events(have, eb),
		     c->subset ? "at least " : "", fmt_events(want, eb2));
}

static void trace_call(struct run *r, const struct call *c, long long got)
{
	struct sbuf b = { 0 };
	char rb[48];

	if (!verbose)
		return;
	sb_printf(&b, "%s", c->def->name);
	if (c->h >= 0)
		sb_printf(&b, " %d", c->h);
	for (unsigned i = 0; i < c->nargs; i++)
		sb_printf(&b, " %s", c->arg[i]);
	trace(r, "%s = %s", sb_str(&b), fmt_result_as(got, c->def->cmd == CMD_SO_ERROR, rb));
	sb_free(&b);
}

/* "handoff": every closed socket's TIME-WAIT goes the way an exit keeper
 * hands it to another stack on the address (ust_tcp_tw_export, _forget,
 * _adopt); the script goes on with the adopted block under the same
 * handle. Nothing may be sent meanwhile. */
struct tag_ends {
	uint32_t tag;
	bool found;
	struct ust_tcp_ends e;
};

static void ends_of_tag(struct ust_tcb *t, void *arg)
{
	struct tag_ends *te = arg;

	if (ust_tcp_tag(t) == te->tag) {
		ust_tcp_ends(t, &te->e);
		te->found = true;
	}
}

static void handoff(struct run *r)
{
	for (unsigned i = 0; i < r->nhandles; i++) {
		struct handle *h = &r->handles[i];
		struct tag_ends te = { .tag = i + 1 };
		struct ust_tcp_tw tw;
		struct ust_tcb *t;
		int err;

		/* A closed socket's block may be a record by now: found by
		 * its tag, then by its 4-tuple, which makes it a block. */
		if (!h->released || h->have_record)
			continue;
		ust_tcp_each(&r->tcp, ends_of_tag, &te);
		t = te.found ? ust_tcp_find(&r->tcp, &te.e.laddr, te.e.lport, &te.e.raddr, te.e.rport) : NULL;
		if (!t || ust_tcp_tw_export(t, &tw) < 0)
			continue;
		ust_tcp_tw_forget(t);
		handle_set_tcb(r, h, ust_tcp_tw_adopt(&r->tcp, &tw, r->now, &err));
		if (!h->tcb)
			fail(r, "handoff: %d was not adopted: %s", h->num, strerror(-err));
		h->tcb = NULL;
	}
}

/* One call line: run it, then compare its result. */
static void exec_call(struct run *r, const struct line *l)
{
	const struct call *c = &l->call;
	struct handle *h = NULL;
	enum ust_tcp_opt opt = UST_TCP_OPT_NODELAY;
	long long got = 0;
	int how = 0, v = 0;

	if (c->def->handle) {
		h = need_handle(r, c);
		if (!h)
			return;
	}
	if (c->def->cmd == CMD_SETSOCKOPT || c->def->cmd == CMD_GETSOCKOPT)
		sockopt_by_name(c->arg[0], &opt);

	switch (c->def->cmd) {
	/* Lines that compare something other than a return value. */
	case CMD_STATE:
	case CMD_EVENTS:
	case CMD_STATUS:
	case CMD_RECORD:
	case CMD_TAKEN:
	case CMD_QUIET:
	case CMD_HANDOFF:
		if (c->def->cmd == CMD_TAKEN)
			r->taken_elsewhere = true;
		trace(r, "%s", l->text + l->body);
		if (c->def->cmd == CMD_HANDOFF)
			handoff(r);
		if (c->def->cmd == CMD_STATE)
			check_state(r, c, h);
		else if (c->def->cmd == CMD_EVENTS)
			check_events(r, c, h);
		else if (c->def->cmd == CMD_STATUS)
			exec_status(r, c, h);
		else if (c->def->cmd == CMD_RECORD)
			exec_record(r, c, h);
		return;
	/* Calls without a result. */
	case CMD_ABORT:
		h->released = true;
		trace(r, "%s", l->text + l->body);
		ust_tcp_abort(h->tcb, r->now);
		h->tcb = NULL; /* the engine's from now on: found by its tag */
		flush(r);
		return;
	case CMD_LINGER:
		trace(r, "%s", l->text + l->body);
		ust_tcp_set_linger(h->tcb, strtoul(c->arg[0], NULL, 0) != 0,
				   (unsigned)strtoul(c->arg[1], NULL, 0));
		flush(r);
		return;
	case CMD_URGENT:
		trace(r, "%s", l->text + l->body);
		ust_tcp_send_urgent(h->tcb, (uint32_t)strtoul(c->arg[0], NULL, 0), r->now);
		flush(r);
		return;
	/* Calls with a result. */
	case CMD_SOCKET: got = call_socket(r, c); break;
	case CMD_ACCEPT: got = call_accept(r, h); break;
	case CMD_CONNECT: got = call_connect(r, h, c->arg[0]); break;
	case CMD_SEND: got = call_send(r, h, (uint32_t)strtoul(c->arg[0], NULL, 0)); break;
	case CMD_RECV: got = call_recv(r, h, (uint32_t)strtoul(c->arg[0], NULL, 0)); break;
	case CMD_BIND:
		got = ust_tcp_bind(h->tcb, (uint16_t)strtoul(c->arg[0], NULL, 0), false);
		if (got == 0)
			r->cur_lport = (uint16_t)strtoul(c->arg[0], NULL, 0);
		break;
	case CMD_LISTEN:
		got = ust_tcp_listen(h->tcb, (unsigned)strtoul(c->arg[0], NULL, 0));
		if (got == 0)
			follow(r, h->tcb);
		break;
	case CMD_SHUTDOWN:
		parse_how(c->arg[0], &how);
		got = ust_tcp_shutdown(h->tcb, how, r->now);
		break;
	case CMD_CLOSE:
		h->released = true;   /* before: the stack may free it inside */
		got = ust_tcp_close(h->tcb, r->now);
		h->tcb = NULL;        /* the engine's from now on: found by its tag */
		break;
	case CMD_SETSOCKOPT:
		if (!strcmp(c->arg[0], "TCP_CONGESTION")) {
			r->tcp.now = r->now; /* a user call's time, as the shim's */
			got = ust_tcp_set_cc(h->tcb, c->arg[1]);
			flush(r);
			break;
		}
		if (!strcmp(c->arg[0], "TCP_MD5SIG")) {
			struct ust_tcp_md5_key k;
			struct ust_ip6 peer = flow_peer(r, NULL);

			md5_key_spec(c->arg[1], &peer, &k);
			got = ust_tcp_md5_set(h->tcb, &k);
			break;
		}
		if (sticky_index(c->arg[0]) >= 0) {
			got = set_sticky(h->tcb, sticky_index(c->arg[0]), (unsigned)strtol(c->arg[1], NULL, 0));
			break;
		}
		if (!strcmp(c->arg[0], "SO_REUSEPORT")) {
			ust_tcp_set_reuseport(h->tcb, strtol(c->arg[1], NULL, 0) != 0);
			got = 0;
			break;
		}
		if (!strcmp(c->arg[0], "SO_MAX_PACING_RATE")) {
			r->tcp.now = r->now;
			ust_tcp_set_max_pacing_rate(h->tcb, strtoull(c->arg[1], NULL, 0));
			flush(r);
			got = 0;
			break;
		}
		got = ust_tcp_setopt(h->tcb, opt, (int)strtol(c->arg[1], NULL, 0));
		break;
	case CMD_GETSOCKOPT:
		got = ust_tcp_getopt(h->tcb, opt, &v);
		if (got == 0)
			got = v;
		break;
	case CMD_SO_ERROR: got = ust_tcp_take_error(h->tcb); break;
	case CMD_RCV_URGENT: {
		uint32_t off;
		got = ust_tcp_rcv_urgent(h->tcb, &off) ? (long)off : -1;
		break;
	}
	case CMD_CONNS: got = ust_tcp_count(&r->tcp); break;
	case CMD_COUNTER: got = call_counter(r, c->arg[0]); break;
	}
	trace_call(r, c, got);
	flush(r);
	check_int(r, c, got);
}

/* "record H ..." may name a socket that was closed: find it among the
 * released ones too. */
static bool exec_record_closed(struct run *r, const struct line *l)
{
	const struct call *c = &l->call;

	if (c->def->cmd != CMD_RECORD || handle_by_num(r, c->h))
		return false;
	for (unsigned i = r->nhandles; i-- > 0;)
		if (r->handles[i].num == c->h) {
			trace(r, "%s", l->text + l->body);
			exec_record(r, c, &r->handles[i]);
			return true;
		}
	return false;
}

/* ------------------------------------------------------------------ */
/* A whole script                                                      */
/* ------------------------------------------------------------------ */

/* The engine's reuseport_pick under "config reuseport_others N": other
 * processes hold N listeners in each of our SO_REUSEPORT groups. The
 * group is our nlocal listeners, then theirs, and the peer's port stands
 * for the flow's hash, so that a script chooses who takes a flow: from
 * port P, listener P mod (nlocal + N). */
static int script_reuseport_pick(void *ctx, uint16_t lport, const struct ust_ip6 *raddr, uint16_t rport,
				 unsigned nlocal, bool exact, bool *shared)
{
	const struct run *r = ctx;
	unsigned others = r->sc->cfg.reuseport_others, pick = rport % (nlocal + others);

	(void)lport;
	(void)raddr;
	*shared = others != 0;
	return exact && pick < nlocal ? (int)pick : -1;
}

/* The engine's tuple_taken: after a "taken_elsewhere" line, another
 * stack took every 4-tuple over. */
static bool script_tuple_taken(void *ctx, uint16_t lport, const struct ust_ip6 *raddr, uint16_t rport)
{
	const struct run *r = ctx;

	(void)lport;
	(void)raddr;
	(void)rport;
	return r->taken_elsewhere;
}

static bool run_setup(struct run *r)
{
	struct ust_netif nif = { .l3 = true, .addr = OUR_IP, .mask = OUR_MASK, .mtu = r->sc->cfg.mtu,
				 .has_addr6 = true, .addr6 = OUR_IP6, .prefix6 = 64 };
	struct ust_tcp_config cfg = r->sc->cfg.tcp;
	int err;

	r->q_tail = &r->q_head;
	r->tolerance = cli_tolerance >= 0 ? (ust_time)cli_tolerance : DEFAULT_TOLERANCE;
	r->peer_isn = DEFAULT_PEER_ISN;
	r->cur_rport = DEFAULT_PEER_PORT;
	err = ust_stack_init(&r->st, &nif, POOL_SIZE, capture_output, r);
	if (err) {
		fail(r, "ust_stack_init failed: %d", err);
		return false;
	}
	cfg.event = on_event;
	cfg.closed = on_closed;
	cfg.reuseport_pick = script_reuseport_pick;
	cfg.tuple_taken = script_tuple_taken;
	cfg.ctx = r;
	err = ust_tcp_init(&r->tcp, &r->st, &cfg);
	if (err) {
		fail(r, "ust_tcp_init failed: %d", err);
		ust_stack_destroy(&r->st);
		return false;
	}
	r->tcp_up = true;
	return true;
}

/* Destroys everything and checks that every packet buffer came back. */
static void run_teardown(struct run *r)
{
	if (!r->tcp_up)
		return;
	r->cur = NULL;
	for (struct frame *fr = r->q_head; fr && verbose; fr = fr->next)
		trace_frame(r, fr->t, fr->data, fr->len, true, "   (not matched)");
	r->destroying = true;
	ust_tcp_destroy(&r->tcp);
	if (r->st.txq_len && !r->failed)
		fail(r, "leak: %u frames still queued after ust_tcp_destroy", r->st.txq_len);
	flush(r);
	queue_free(r);
	if (r->st.pool.avail != r->st.pool.size && !r->failed)
		fail(r, "leak: %u of %u packet buffers not returned to the pool",
		     r->st.pool.size - r->st.pool.avail, r->st.pool.size);
	ust_stack_destroy(&r->st);
	r->tcp_up = false;
}

/* After every line: the invariants between every control block's fields,
 * the timer heap, the listeners' queues and the packet pool hold. */
static void check_invariants(struct run *r)
{
	char msg[512];

	if (!r->failed && !tcp_invariants_check(&r->tcp, msg, sizeof(msg)))
		fail(r, "invariant broken: %s", msg);
}

static void run_lines(struct run *r)
{
	struct script *sc = r->sc;
	ust_time base = 0;      /* the time relative lines count from */
	ust_time last_abs = 0;

	for (unsigned i = 0; i < sc->nlines && !r->failed; i++) {
		const struct line *l = &sc->lines[i];
		ust_time t = 0, t_b = 0, seen = 0, lo, hi;

		r->cur = l;
		switch (l->kind) {
		case L_TOLERANCE: r->tolerance = l->tolerance; continue;
		case L_TIMER_LAG: r->timer_lag = l->tolerance; continue;
		case L_PEER_ISN: r->peer_isn = l->u32; continue;
		case L_PEER_PORT: r->cur_rport = (uint16_t)l->u32; continue;
		case L_CONFIG: continue;
		default: break;
		}
		/* When does this line happen? */
		switch (l->time.kind) {
		case TIME_ABS:
			t = l->time.a;
			if (t < last_abs) {
				fail(r, "absolute time %s goes backwards", l->text);
				return;
			}
			last_abs = t;
			break;
		case TIME_REL: t = base + l->time.a; break;
		case TIME_ANY: t = r->now; break;
		default: break;
		}
		if (l->time.range)
			t_b = l->time.kind_b == TIME_REL ? base + l->time.b : l->time.b;

		if (l->kind == L_SEG && l->seg.outbound) {
			if (l->time.kind == TIME_ANY) {
				/* Any time up to the next line's, when that is absolute. */
				const struct line *nx = i + 1 < sc->nlines ? &sc->lines[i + 1] : NULL;
				lo = 0;
				hi = nx && nx->time.kind == TIME_ABS ? nx->time.a + r->tolerance
								     : r->now + ANY_TIME_LIMIT;
			} else {
				outbound_window(r, l, t, t_b, &lo, &hi);
			}
			if (!exec_outbound(r, l, lo, hi, &seen))
				return;
			check_invariants(r);
			/* "*" and ranges: later relative lines count from when
			 * the segment really came. */
			base = l->time.kind == TIME_ANY || l->time.range ? seen : t;
			continue;
		}
		/* Any other line: nothing may have been sent before it. */
		if (r->q_head) {
			fail_unexpected(r, "before this line");
			return;
		}
		advance(r, t, true);
		if (r->failed)
			return;
		if (r->q_head) {
			fail_unexpected(r, "before this line");
			return;
		}
		base = t;
		r->acting = l;
		switch (l->kind) {
		case L_SEG: exec_inbound(r, l); break;
		case L_ICMP: exec_icmp(r, l); break;
		case L_CALL:
			if (!exec_record_closed(r, l))
				exec_call(r, l);
			break;
		default: break;
		}
		r->acting = NULL;
		check_invariants(r);
	}
	if (r->failed)
		return;
	/* Everything sent must have been expected, also just after the end. */
	r->cur = NULL;
	if (!r->q_head)
		advance(r, r->now + UST_MS(1), true);
	if (!r->failed && r->q_head)
		fail_unexpected(r, "after the last line");
}

static bool run_script(const char *path, struct sbuf *out, bool *skipped)
{
	struct script sc = { 0 };
	struct run *r;
	bool ok;

	if (!script_load(&sc, path, out)) {
		script_free(&sc);
		return false;
	}
	*skipped = sc.native6 || (map6 && sc.only4[0]);
	if (*skipped) {
		sb_printf(out, "%s", sc.native6 ? "an IPv6 script already" : sc.only4);
		script_free(&sc);
		return true;
	}
	r = xcalloc(1, sizeof(*r));
	r->sc = &sc;
	if (run_setup(r)) {
		run_lines(r);
		run_teardown(r);
	}
	ok = !r->failed;
	sb_printf(out, "%s", sb_str(&r->diag));
	sb_free(&r->diag);
	free(r);
	script_free(&sc);
	return ok;
}

static void usage(void)
{
	fprintf(stderr, "usage: seg-run [-v] [--tolerance_usecs=N] [--family=4|6] FILE.seg...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int first = 1, nfiles, failed = 0;

	for (; first < argc && argv[first][0] == '-'; first++) {
		const char *a = argv[first];
		uint64_t v;
		if (!strcmp(a, "-v"))
			verbose = true;
		else if (!strncmp(a, "--tolerance_usecs=", 18) && parse_u64(a + 18, LONG_MAX, &v))
			cli_tolerance = (long)v;
		else if (!strcmp(a, "--family=6"))
			map6 = true;
		else if (!strcmp(a, "--family=4"))
			map6 = false;
		else if (!strcmp(a, "--"))
		{
			first++;
			break;
		}
		else
			usage();
	}
	nfiles = argc - first;
	if (nfiles <= 0)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("1..%d\n", nfiles);
	for (int i = 0; i < nfiles; i++) {
		const char *path = argv[first + i];
		const char *base = strrchr(path, '/');
		char name[256];
		struct sbuf diag = { 0 };
		bool ok, skipped = false;
		size_t n;

		snprintf(name, sizeof(name), "%s", base ? base + 1 : path);
		n = strlen(name);
		if (n > 4 && !strcmp(name + n - 4, ".seg"))
			name[n - 4] = 0;
		if (verbose)
			printf("# %s\n", path);
		ok = run_script(path, &diag, &skipped);
		if (skipped) {
			/* The reason on the TAP line itself. */
			printf("ok %d - %s%s # SKIP %s\n", i + 1, map6 ? "v6 " : "", name, sb_str(&diag));
			sb_free(&diag);
			continue;
		}
		printf("%s %d - %s%s\n", ok ? "ok" : "not ok", i + 1, map6 ? "v6 " : "", name);
		/* Diagnostics, one "# " line each. */
		for (char *s = diag.s, *e; s && *s; s = e) {
			e = strchr(s, '\n');
			if (e)
				*e++ = 0;
			else
				e = s + strlen(s);
			printf("# %s\n", s);
		}
		sb_free(&diag);
		failed += !ok;
	}
	return failed ? 1 : 0;
}
