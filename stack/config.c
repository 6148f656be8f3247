#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "tcp.h"

/* Addresses no host may own: 0/8, loopback, multicast and class E. */
static bool ip_unusable(uint32_t a)
{
	return (a >> 24) == 0 || (a >> 24) == 127 || (a >> 28) >= 0xe;
}

static int fail(char *err, size_t errlen, const char *name, const char *value, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* The value as the error line shows it: control characters, quotes and
 * backslashes escaped, so the message stays one line. */
static void quote(char *dst, size_t size, const char *v)
{
	size_t n = 0;

	for (; *v && n + 5 < size; v++) {
		unsigned char c = (unsigned char)*v;
		if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
			n += (size_t)snprintf(dst + n, size - n, c == '"' || c == '\\' ? "\\%c" : "\\x%02x", c);
		else
			dst[n++] = (char)c;
	}
	dst[n] = 0;
}

static int fail(char *err, size_t errlen, const char *name, const char *value, const char *fmt, ...)
{
	char q[UST_CONFIG_ERR_MAX - 64];
	va_list ap;
	int n;

	if (value) {
		quote(q, sizeof(q), value);
		n = snprintf(err, errlen, "%s=\"%s\": ", name, q);
	} else {
		n = snprintf(err, errlen, "%s: ", name);
	}
	if (n >= 0 && (size_t)n < errlen) {
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* The kernel's rule for interface names (dev_valid_name). */
static bool iface_name_valid(const char *v)
{
	if (!*v || strlen(v) >= IFNAMSIZ || !strcmp(v, ".") || !strcmp(v, ".."))
		return false;
	for (; *v; v++)
		if (*v == '/' || *v == ':' || isspace((unsigned char)*v))
			return false;
	return true;
}

int ust_parse_ipv4(const char *s, uint32_t *addr)
{
	uint32_t a = 0;

	for (int i = 0; i < 4; i++) {
		unsigned v = 0, digits = 0;
		while (*s >= '0' && *s <= '9' && digits < 4) {
			v = v * 10 + (unsigned)(*s++ - '0');
			digits++;
		}
		if (!digits || digits > 3 || v > 255)
			return -EINVAL;
		a = a << 8 | v;
		if (i < 3 && *s++ != '.')
			return -EINVAL;
	}
	if (*s)
		return -EINVAL;
	*addr = a;
	return 0;
}

/* "address/len" into the address's text (in buf) and len, up to max;
 * without "/len", max, as ip(8) takes it. */
static int split_prefix(const char *s, char *buf, size_t size, unsigned max, unsigned *prefix)
{
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	char *end;
	long p = max;

	if (alen >= size)
		return -EINVAL;
	memcpy(buf, s, alen);
	buf[alen] = 0;
	if (slash) {
		if (slash[1] < '0' || slash[1] > '9')
			return -EINVAL;
		errno = 0;
		p = strtol(slash + 1, &end, 10);
		if (errno || *end || p < 0 || p > (long)max)
			return -EINVAL;
	}
	*prefix = (unsigned)p;
	return 0;
}

/* "a.b.c.d/len"; without "/len" the prefix is 32. */
int ust_parse_cidr(const char *s, uint32_t *addr, unsigned *prefix)
{
	char buf[32];

	if (split_prefix(s, buf, sizeof(buf), 32, prefix) || ust_parse_ipv4(buf, addr))
		return -EINVAL;
	return 0;
}

int ust_parse_cidr6(const char *s, struct ust_ip6 *addr, unsigned *prefix)
{
	char buf[64];

	if (split_prefix(s, buf, sizeof(buf), 128, prefix) || inet_pton(AF_INET6, buf, addr->b) != 1)
		return -EINVAL;
	return 0;
}

/* Addresses USTCP_ADDR6 cannot be: not a unicast one a node is given (the
 * link-local one is derived from the MAC, as Linux derives it). */
static bool ip6_unusable(const struct ust_ip6 *a)
{
	return ust_ip6_is_unspecified(a) || ust_ip6_is_loopback(a) || ust_ip6_is_multicast(a) ||
	       ust_ip6_is_v4mapped(a) || ust_ip6_is_link_local(a);
}

int ust_parse_seconds_ms(const char *s, unsigned max_s, unsigned *ms)
{
	unsigned long whole = 0, frac = 0, scale = 1000;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	while (*p >= '0' && *p <= '9') {
		whole = whole * 10 + (unsigned long)(*p++ - '0');
		if (whole > max_s)
			return -EINVAL;
	}
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		while (*p >= '0' && *p <= '9') {
			if (scale > 1) {
				scale /= 10;
				frac += (unsigned long)(*p - '0') * scale;
			}
			p++;
		}
	}
	if (*p || whole * 1000 + frac > (unsigned long)max_s * 1000)
		return -EINVAL;
	*ms = (unsigned)(whole * 1000 + frac);
	return 0;
}

static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static int copy_path(char *dst, size_t size, const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n >= size)
		return -EINVAL;
	memcpy(dst, v, n + 1);
	return 0;
}

/* One prefix of USTCP_PASSTHROUGH, IPv4 or (with a colon) IPv6, into its
 * list; 0, -EINVAL or -ENOSPC. */
static int add_passthrough(struct ust_config *c, const char *item)
{
	struct ust_ip6 a6;
	uint32_t a;
	unsigned prefix;

	if (strchr(item, ':')) {
		if (ust_parse_cidr6(item, &a6, &prefix))
			return -EINVAL;
		if (c->n_passthrough6 == UST_PASSTHROUGH_MAX)
			return -ENOSPC;
		for (unsigned i = prefix; i < 128; i++)
			a6.b[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
		c->passthrough6[c->n_passthrough6].net = a6;
		c->passthrough6[c->n_passthrough6].prefix = prefix;
		c->n_passthrough6++;
		return 0;
	}
	if (ust_parse_cidr(item, &a, &prefix))
		return -EINVAL;
	if (c->n_passthrough == UST_PASSTHROUGH_MAX)
		return -ENOSPC;
	c->passthrough[c->n_passthrough].mask = ust_prefix_mask(prefix);
	c->passthrough[c->n_passthrough].net = a & ust_prefix_mask(prefix);
	c->n_passthrough++;
	return 0;
}

static int load_passthrough(struct ust_config *c, const char *v, char *err, size_t errlen)
{
	const char *p = v;

	c->n_passthrough = 0;
	c->n_passthrough6 = 0;
	while (*p) {
		char item[64];
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		int r = -EINVAL;

		/* Room for any IPv6 prefix; an IPv4 one is at most 18 bytes
		 * (a longer one is refused as before IPv6). */
		if (len > 0 && len < sizeof(item)) {
			memcpy(item, p, len);
			item[len] = 0;
			if (strchr(item, ':') || len < 32)
				r = add_passthrough(c, item);
		}
		if (r == -ENOSPC)
			return fail(err, errlen, "USTCP_PASSTHROUGH", v, "more than %d prefixes of a family",
				    UST_PASSTHROUGH_MAX);
		if (r)
			return fail(err, errlen, "USTCP_PASSTHROUGH", v,
				    "not a comma-separated list of IPv4 or IPv6 prefixes "
				    "(e.g. 127.0.0.0/8,::1/128,10.1.0.0/16)");
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* USTCP_IFACE and USTCP_ADDR: required. */
static int load_link(struct ust_config *c, ust_getenv_fn get, char *err, size_t errlen)
{
	const char *v = get("USTCP_IFACE");

	if (!v || !*v)
		return fail(err, errlen, "USTCP_IFACE", NULL,
			    "not set; name the interface the stack should use (e.g. USTCP_IFACE=veth0)");
	if (!iface_name_valid(v))
		return fail(err, errlen, "USTCP_IFACE", v, "not a valid interface name");
	strcpy(c->iface, v);

	v = get("USTCP_ADDR");
	if (!v || !*v)
		return fail(err, errlen, "USTCP_ADDR", NULL,
			    "not set; give the stack's own IPv4 address and prefix (e.g. USTCP_ADDR=10.9.0.2/24)");
	if (ust_parse_cidr(v, &c->addr, &c->prefix))
		return fail(err, errlen, "USTCP_ADDR", v, "not an IPv4 address/prefix (e.g. 10.9.0.2/24)");
	if (ip_unusable(c->addr))
		return fail(err, errlen, "USTCP_ADDR", v, "not a unicast host address");
	if (c->prefix < 31) {
		uint32_t host = c->addr & ~ust_prefix_mask(c->prefix);
		if (host == 0 || host == ~ust_prefix_mask(c->prefix))
			return fail(err, errlen, "USTCP_ADDR", v,
				    "is the network or broadcast address of its prefix");
	}

	v = get("USTCP_ADDR6");
	if (v && *v) {
		if (ust_parse_cidr6(v, &c->addr6, &c->prefix6))
			return fail(err, errlen, "USTCP_ADDR6", v, "not an IPv6 address/prefix (e.g. 2001:db8::2/64)");
		if (ip6_unusable(&c->addr6))
			return fail(err, errlen, "USTCP_ADDR6", v,
				    "not a global or unique local unicast address (the link-local one is derived)");
		c->has_addr6 = true;
	}
	return 0;
}

/* An IPv6 router for USTCP_GW: link-local (as routers announce
 * themselves) or in USTCP_ADDR6's prefix. */
static int load_gw6(struct ust_config *c, const char *all, const char *v, char *err, size_t errlen)
{
	struct ust_ip6 a;
	unsigned prefix;
	char q[128];

	if (!c->has_addr6)
		return fail(err, errlen, "USTCP_GW", all, "an IPv6 router needs USTCP_ADDR6");
	if (strchr(v, '/') || ust_parse_cidr6(v, &a, &prefix) || ust_ip6_is_unspecified(&a) ||
	    ust_ip6_is_loopback(&a) || ust_ip6_is_multicast(&a) || ust_ip6_is_v4mapped(&a)) {
		/* The part as it came, escaped like the whole value before it
		 * (found by fuzz_config: a vertical tab went into the line). */
		quote(q, sizeof(q), v);
		return fail(err, errlen, "USTCP_GW", all, "\"%s\" is not a unicast IPv6 address", q);
	}
	if (!ust_ip6_is_link_local(&a) && !ust_ip6_prefix_eq(&a, &c->addr6, c->prefix6))
		return fail(err, errlen, "USTCP_GW", all, "%s is not on the link of USTCP_ADDR6", v);
	if (ust_ip6_eq(&a, &c->addr6))
		return fail(err, errlen, "USTCP_GW", all, "%s is the stack's own address", v);
	if (!ust_ip6_is_unspecified(&c->gw6))
		return fail(err, errlen, "USTCP_GW", all, "more than one IPv6 router");
	c->gw6 = a;
	return 0;
}

/* USTCP_GW and USTCP_MTU: optional. */
static int load_route(struct ust_config *c, ust_getenv_fn get, char *err, size_t errlen)
{
	const char *all = get("USTCP_GW");
	char buf[128];
	uint32_t a;
	unsigned u;

	/* One router per family, separated by a comma. */
	for (const char *p = all; p && *p;) {
		size_t len = strcspn(p, ",");
		const char *v = buf;
		int r;

		if (len == 0 || len >= sizeof(buf) || (p[len] == ',' && !p[len + 1]))
			return fail(err, errlen, "USTCP_GW", all,
				    "not a router's IPv4 address, IPv6 address, or both separated by a comma");
		memcpy(buf, p, len);
		buf[len] = 0;
		p += len + (p[len] == ',');
		if (strchr(v, ':')) {
			r = load_gw6(c, all, v, err, errlen);
			if (r)
				return r;
			continue;
		}
		if (c->gw)
			return fail(err, errlen, "USTCP_GW", all, "more than one IPv4 router");
		v = all; /* the messages below name the whole value */
		if (ust_parse_ipv4(buf, &a) || ip_unusable(a))
			return fail(err, errlen, "USTCP_GW", v, "not a unicast IPv4 address");
		if ((a ^ c->addr) & ust_prefix_mask(c->prefix))
			return fail(err, errlen, "USTCP_GW", v, "not on the link of USTCP_ADDR");
		if (a == c->addr)
			return fail(err, errlen, "USTCP_GW", v, "is the stack's own address");
		if (c->prefix < 31 && ((a & ~ust_prefix_mask(c->prefix)) == 0 ||
				       (a | ust_prefix_mask(c->prefix)) == ~(uint32_t)0))
			return fail(err, errlen, "USTCP_GW", v,
				    "is the network or broadcast address of USTCP_ADDR's prefix");
		c->gw = a;
	}

	const char *v = get("USTCP_MTU");
	if (v && *v) {
		if (parse_uint(v, 576, 65535, &u))
			return fail(err, errlen, "USTCP_MTU", v, "not a number from 576 to 65535");
		c->mtu = u;
	}
	return 0;
}

/* USTCP_MSL, USTCP_FIN_TIMEOUT, USTCP_MAX_CONNS, USTCP_MAX_TW, USTCP_CC, USTCP_ECN,
 * USTCP_RFC1337, USTCP_TW_COLLECT, USTCP_SYNCOOKIES, USTCP_BUSY_POLL,
 * USTCP_CALL_SPIN, USTCP_RX_RING, USTCP_PASSTHROUGH: TCP's settings (and
 * the link's receive ring). */
static int load_tcp(struct ust_config *c, ust_getenv_fn get, char *err, size_t errlen)
{
	const char *v = get("USTCP_MSL");
	unsigned u;

	if (v && *v) {
		if (ust_parse_seconds_ms(v, 3600, &u) || u == 0)
			return fail(err, errlen, "USTCP_MSL", v,
				    "not a number of seconds above 0 and up to 3600 (e.g. 30 or 0.5)");
		c->msl_ms = u;
	}

	v = get("USTCP_FIN_TIMEOUT");
	if (v && *v) {
		if (ust_parse_seconds_ms(v, 3600, &u) || u == 0)
			return fail(err, errlen, "USTCP_FIN_TIMEOUT", v,
				    "not a number of seconds above 0 and up to 3600 (e.g. 60)");
		c->fin_timeout_ms = u;
	}

	v = get("USTCP_MAX_CONNS");
	if (v && *v) {
		if (parse_uint(v, 1, 1u << 24, &u))
			return fail(err, errlen, "USTCP_MAX_CONNS", v, "not a number from 1 to 16777216");
		c->max_conns = u;
	}

	v = get("USTCP_MAX_TW");
	if (v && *v) {
		if (parse_uint(v, 0, 1u << 24, &u))
			return fail(err, errlen, "USTCP_MAX_TW", v, "not a number from 0 to 16777216");
		c->max_tw = u;
	}

	v = get("USTCP_CC");
	if (v && *v) {
		if (strlen(v) >= sizeof(c->cc) || !ust_tcp_cc_exists(v))
			return fail(err, errlen, "USTCP_CC", v, "not one of cubic, reno, bbr, bbr3");
		strcpy(c->cc, v);
	}

	v = get("USTCP_ECN");
	if (v && *v) {
		if (parse_uint(v, 0, 2, &u))
			return fail(err, errlen, "USTCP_ECN", v,
				    "not 0 (never), 1 (ask and accept) or 2 (accept when asked)");
		c->ecn = u;
	}
	/* Linux's net.ipv4.tcp_rfc1337: 0 (its default) lets a RST end
	 * TIME-WAIT; 1 ignores it (RFC 1337's fix F1). */
	v = get("USTCP_RFC1337");
	if (v && *v) {
		if (parse_uint(v, 0, 1, &u))
			return fail(err, errlen, "USTCP_RFC1337", v,
				    "not 0 (a RST ends TIME-WAIT) or 1 (TIME-WAIT ignores it)");
		c->rfc1337 = u != 0;
	}
	/* 1 (the default): an exit keeper left with TIME-WAITs only hands
	 * them to the address's collector (stackthread/twcollect.c); 0:
	 * each keeper waits its own out. */
	v = get("USTCP_TW_COLLECT");
	if (v && *v) {
		if (parse_uint(v, 0, 1, &u))
			return fail(err, errlen, "USTCP_TW_COLLECT", v,
				    "not 0 (each exit keeper waits out its TIME-WAITs) or 1 (one keeper per address does)");
		c->tw_collect = u != 0;
	}
	v = get("USTCP_SYNCOOKIES");
	if (v && *v) {
		if (parse_uint(v, 0, 2, &u))
			return fail(err, errlen, "USTCP_SYNCOOKIES", v,
				    "not 0 (never), 1 (when the SYN queue is full) or 2 (always)");
		c->syncookies = u;
	}
	/* As Linux's net.core.busy_read, in microseconds; a second at most
	 * (a longer spin is a core given away, not a wait shortened). */
	v = get("USTCP_BUSY_POLL");
	if (v && *v) {
		if (parse_uint(v, 0, 1000000, &u))
			return fail(err, errlen, "USTCP_BUSY_POLL", v,
				    "not a number of microseconds from 0 to 1000000 (e.g. 50)");
		c->busy_poll_us = u;
	}

	v = get("USTCP_CALL_SPIN");
	if (v && *v) {
		if (parse_uint(v, 0, 1000000, &u))
			return fail(err, errlen, "USTCP_CALL_SPIN", v,
				    "not a number of microseconds from 0 to 1000000 (e.g. 50, or 0 for none)");
		c->call_spin_us = u;
	}

	/* Whole blocks of the ring (link.c, RING_BLOCK), 1 GiB at most. */
	v = get("USTCP_RX_RING");
	if (v && *v) {
		if (parse_uint(v, 0, 1u << 20, &u) || u % 128)
			return fail(err, errlen, "USTCP_RX_RING", v,
				    "not a number of KiB from 0 to 1048576 in steps of 128 (e.g. 4096, or 0 for none)");
		c->rx_ring_kib = u;
	}

	v = get("USTCP_PASSTHROUGH");
	return v ? load_passthrough(c, v, err, errlen) : 0;
}

/* "MIN DEFAULT MAX", as Linux's tcp_rmem and tcp_wmem are written: three
 * byte counts, in that order, each at least 1 and at most INT_MAX. */
static int parse_mem(const char *s, uint32_t m[3])
{
	unsigned v[3];
	char *end;

	for (int i = 0; i < 3; i++) {
		unsigned long x;
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s < '0' || *s > '9')
			return -EINVAL;
		errno = 0;
		x = strtoul(s, &end, 10);
		if (errno || x < 1 || x > INT_MAX)
			return -EINVAL;
		v[i] = (unsigned)x;
		s = end;
	}
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s || v[0] > v[1] || v[1] > v[2])
		return -EINVAL;
	for (int i = 0; i < 3; i++)
		m[i] = v[i];
	return 0;
}

/* USTCP_RMEM, USTCP_WMEM: the buffer sizes of every connection. */
static int load_buffers(struct ust_config *c, ust_getenv_fn get, char *err, size_t errlen)
{
	const char *v = get("USTCP_RMEM");

	if (v && *v && parse_mem(v, c->rmem))
		return fail(err, errlen, "USTCP_RMEM", v,
			    "not three sizes MIN DEFAULT MAX in bytes, in that order (e.g. 4096 131072 33554432)");
	v = get("USTCP_WMEM");
	if (v && *v && parse_mem(v, c->wmem))
		return fail(err, errlen, "USTCP_WMEM", v,
			    "not three sizes MIN DEFAULT MAX in bytes, in that order (e.g. 4096 16384 4194304)");
	return 0;
}

/* USTCP_LOG, USTCP_LOG_FILE, USTCP_PCAP, USTCP_CLOSE_LOG: diagnostics. */
static int load_diagnostics(struct ust_config *c, ust_getenv_fn get, char *err, size_t errlen)
{
	static const char *const levels[] = { "error", "warn", "info", "debug" };
	const char *v = get("USTCP_LOG");

	if (v && *v) {
		unsigned i;
		for (i = 0; i < UST_ARRAY_SIZE(levels); i++)
			if (strcmp(v, levels[i]) == 0)
				break;
		if (i == UST_ARRAY_SIZE(levels))
			return fail(err, errlen, "USTCP_LOG", v, "not one of error, warn, info, debug");
		c->log_level = (enum ust_log_level)i;
	}

	v = get("USTCP_LOG_FILE");
	if (v && *v && copy_path(c->log_file, sizeof(c->log_file), v))
		return fail(err, errlen, "USTCP_LOG_FILE", v, "path too long");
	v = get("USTCP_PCAP");
	if (v && *v && copy_path(c->pcap, sizeof(c->pcap), v))
		return fail(err, errlen, "USTCP_PCAP", v, "path too long");
	v = get("USTCP_CLOSE_LOG");
	if (v && *v && copy_path(c->close_log, sizeof(c->close_log), v))
		return fail(err, errlen, "USTCP_CLOSE_LOG", v, "path too long");
	return 0;
}

/* USTCP_RUN_DIR, else root's /run/ustcp, else the user's runtime
 * directory, else /tmp/ustcp-UID. */
static int load_run_dir(struct ust_config *c, ust_getenv_fn get, char *err, size_t errlen)
{
	const char *v = get("USTCP_RUN_DIR");

	if (v && *v) {
		if (v[0] != '/' || copy_path(c->run_dir, sizeof(c->run_dir), v))
			return fail(err, errlen, "USTCP_RUN_DIR", v, "not an absolute path");
	} else if (geteuid() == 0) {
		strcpy(c->run_dir, "/run/ustcp");
	} else if ((v = get("XDG_RUNTIME_DIR")) && v[0] == '/' &&
		   strlen(v) + sizeof("/ustcp") <= sizeof(c->run_dir)) {
		snprintf(c->run_dir, sizeof(c->run_dir), "%s/ustcp", v);
	} else {
		snprintf(c->run_dir, sizeof(c->run_dir), "/tmp/ustcp-%u", (unsigned)getuid());
	}
	return 0;
}

int ust_config_load(struct ust_config *c, ust_getenv_fn get, char *err, size_t errlen)
{
	int r;

	memset(c, 0, sizeof(*c));
	c->msl_ms = 30000;
	c->fin_timeout_ms = 60000;
	c->max_tw = UINT_MAX;
	c->call_spin_us = UST_CALL_SPIN_DEFAULT;
	c->rx_ring_kib = UST_RX_RING_DEFAULT;
	c->ecn = 2;
	c->syncookies = 1;
	c->tw_collect = true;
	c->log_level = UST_LOG_WARN;
	c->passthrough[0].net = 0x7f000000;
	c->passthrough[0].mask = 0xff000000;
	c->n_passthrough = 1;
	c->passthrough6[0].net.b[15] = 1; /* ::1/128 */
	c->passthrough6[0].prefix = 128;
	c->n_passthrough6 = 1;

	if ((r = load_link(c, get, err, errlen)) || (r = load_route(c, get, err, errlen)) ||
	    (r = load_tcp(c, get, err, errlen)) || (r = load_buffers(c, get, err, errlen)) ||
	    (r = load_diagnostics(c, get, err, errlen)))
		return r;
	return load_run_dir(c, get, err, errlen);
}

bool ust_config_passthrough(const struct ust_config *c, uint32_t dst)
{
	for (unsigned i = 0; i < c->n_passthrough; i++)
		if ((dst & c->passthrough[i].mask) == c->passthrough[i].net)
			return true;
	return false;
}

bool ust_config_passthrough6(const struct ust_config *c, const struct ust_ip6 *dst)
{
	if (ust_ip6_is_v4mapped(dst))
		return ust_config_passthrough(c, ust_ip6_to_v4(dst));
	for (unsigned i = 0; i < c->n_passthrough6; i++)
		if (ust_ip6_prefix_eq(dst, &c->passthrough6[i].net, c->passthrough6[i].prefix))
			return true;
	return false;
}
