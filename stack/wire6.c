#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "csum.h"
#include "wire6.h"

/* Linux's net.ipv6.max_hbh_opts_number and max_dst_opts_number. */
#define EXT_OPTS_MAX 8
/* RFC 8200 §4.2: padding longer than 7 bytes serves no alignment. */
#define EXT_PAD_MAX 7
#define OPT_PAD1 0
#define OPT_PADN 1
#define OPT_ROUTER_ALERT 5

/* The options of a hop-by-hop or destination options header (RFC 8200
 * §4.2): type, length, value, but Pad1. An unknown option's two high bits
 * say what to do: 00 skip it, anything else discard the datagram (Linux
 * also sends a parameter problem for 10 and 11; ustcp only counts). */
static bool ext_options_valid(const uint8_t *opt, size_t len)
{
	unsigned n_opts = 0, pad = 0;
	size_t i = 0;

	while (i < len) {
		uint8_t type = opt[i];
		size_t olen;

		if (type == OPT_PAD1) {
			if (++pad > EXT_PAD_MAX)
				return false;
			i++;
			continue;
		}
		if (i + 2 > len || i + 2 + opt[i + 1] > len)
			return false;
		olen = opt[i + 1];
		if (type == OPT_PADN) {
			pad += (unsigned)olen + 2;
			if (pad > EXT_PAD_MAX)
				return false;
			for (size_t k = 0; k < olen; k++)
				if (opt[i + 2 + k])
					return false;
		} else {
			pad = 0;
			if (++n_opts > EXT_OPTS_MAX)
				return false;
			/* We are a host: a router alert asks nothing of us. */
			if (type != OPT_ROUTER_ALERT && (type >> 6) != 0)
				return false;
		}
		i += 2 + olen;
	}
	return true;
}

enum ust_drop ust_ipv6_parse(const uint8_t *buf, size_t len, struct ust_ipv6 *ip)
{
	size_t plen, off = UST_IPV6_HLEN;
	uint8_t next;

	if (len < UST_IPV6_HLEN)
		return UST_DROP_IP6_SHORT;
	if (buf[0] >> 4 != 6)
		return UST_DROP_IP6_VERSION;
	plen = ust_get16(buf + 4);
	/* 0 is a jumbogram's (RFC 2675), which needs a 64 KiB link. */
	if (plen == 0 || UST_IPV6_HLEN + plen > len)
		return UST_DROP_IP6_PAYLOAD_LEN;
	ip->tclass = (uint8_t)(ust_get16(buf) >> 4);
	ip->flow = ust_get32(buf) & 0xfffff;
	ip->hop_limit = buf[7];
	memcpy(ip->src.b, buf + 8, 16);
	memcpy(ip->dst.b, buf + 24, 16);
	len = UST_IPV6_HLEN + plen; /* link padding excluded */
	next = buf[6];

	for (bool first = true;; first = false) {
		const uint8_t *h = buf + off;
		size_t hlen;

		if (next != UST_IPPROTO_HOPOPTS && next != UST_IPPROTO_ROUTING &&
		    next != UST_IPPROTO_FRAGMENT && next != UST_IPPROTO_DSTOPTS)
			break;
		if (off + 8 > len)
			return UST_DROP_IP6_EXT_HDR;
		hlen = next == UST_IPPROTO_FRAGMENT ? 8 : ((size_t)h[1] + 1) * 8;
		if (off + hlen > len)
			return UST_DROP_IP6_EXT_HDR;
		switch (next) {
		case UST_IPPROTO_HOPOPTS:
			/* RFC 8200 §4.1: only right after the IPv6 header. */
			if (!first || !ext_options_valid(h + 2, hlen - 2))
				return UST_DROP_IP6_EXT_HDR;
			break;
		case UST_IPPROTO_DSTOPTS:
			if (!ext_options_valid(h + 2, hlen - 2))
				return UST_DROP_IP6_EXT_HDR;
			break;
		case UST_IPPROTO_ROUTING:
			/* Segments left: we would be a waypoint to forward from. */
			if (h[3] != 0)
				return UST_DROP_IP6_EXT_HDR;
			break;
		case UST_IPPROTO_FRAGMENT:
			/* An atomic fragment (offset 0, no more) is a whole
			 * datagram (RFC 6946 §4); any other is a piece. */
			if (ust_get16(h + 2) & 0xfff9)
				return UST_DROP_IP6_FRAGMENT;
			break;
		}
		next = h[0];
		off += hlen;
	}
	if (next == UST_IPPROTO_NONE)
		return UST_DROP_IP6_NO_NEXT;
	ip->proto = next;
	ip->hdr = buf;
	ip->payload = buf + off;
	ip->payload_len = (uint16_t)(len - off);
	return UST_OK;
}

void ust_ipv6_build(uint8_t *buf, const struct ust_ip6 *src, const struct ust_ip6 *dst, uint8_t proto,
		    uint8_t tclass, uint16_t payload_len, uint8_t hop_limit)
{
	ust_put32(buf, 6u << 28 | (uint32_t)tclass << 20);
	ust_put16(buf + 4, payload_len);
	buf[6] = proto;
	buf[7] = hop_limit;
	memcpy(buf + 8, src->b, 16);
	memcpy(buf + 24, dst->b, 16);
}

/* ---- sticky extension headers ---- */

#define RT_TYPE_0 0
#define RT_TYPE_2 2
#define RT_TYPE_SRH 4

/* The routing header at r (rlen bytes): where the destination goes, and
 * the first hop. */
static int compile_rthdr(struct ust_ip6_ext *e, uint8_t *r, unsigned rlen)
{
	unsigned hops;

	switch (r[2]) {
	case RT_TYPE_0:
	case RT_TYPE_2:
		hops = r[1] >> 1;
		if (hops < 1 || 8 + 16 * hops > rlen)
			return -EINVAL;
		memcpy(e->hop.b, r + 8, 16);
		memmove(r + 8, r + 24, 16 * (hops - 1));
		e->final = (uint16_t)(r - e->data + 8 + 16 * (hops - 1));
		return 0;
	case RT_TYPE_SRH:
		hops = r[4] + 1u; /* Last Entry */
		if (8 + 16 * hops > rlen || r[3] >= hops)
			return -EINVAL;
		memcpy(e->hop.b, r + 8 + 16 * r[3], 16); /* Segments Left */
		e->final = (uint16_t)(r - e->data + 8);
		return 0;
	default:
		return -EINVAL;
	}
}

int ust_ip6_ext_compile(struct ust_ip6_ext *e, const uint8_t *const hdr[UST_IP6_EXT_HDRS],
			const unsigned len[UST_IP6_EXT_HDRS])
{
	static const uint8_t type[UST_IP6_EXT_HDRS] = {
		UST_IPPROTO_HOPOPTS, UST_IPPROTO_DSTOPTS, UST_IPPROTO_ROUTING, UST_IPPROTO_DSTOPTS
	};
	bool rt = hdr[UST_IP6_EXT_RT] && len[UST_IP6_EXT_RT];
	uint8_t *prev = NULL;

	memset(e, 0, sizeof(*e));
	for (unsigned i = 0; i < UST_IP6_EXT_HDRS; i++) {
		uint8_t *h = e->data + e->len;

		if (!hdr[i] || !len[i])
			continue;
		if (len[i] < 8 || len[i] != (hdr[i][1] + 1u) * 8 || e->len + len[i] > UST_IP6_EXT_MAX)
			return -EINVAL;
		e->mss_len = (uint16_t)(e->mss_len + len[i]);
		if (i == UST_IP6_EXT_DST0 && !rt)
			continue; /* only for a routing header's hops */
		memcpy(h, hdr[i], len[i]);
		if (i == UST_IP6_EXT_RT && compile_rthdr(e, h, len[i]) < 0)
			return -EINVAL;
		if (prev)
			prev[0] = type[i];
		else
			e->first = type[i];
		prev = h;
		e->last = e->len;
		e->len = (uint16_t)(e->len + len[i]);
	}
	return 0;
}

uint8_t ust_ip6_ext_build(uint8_t *at, const struct ust_ip6_ext *e, const struct ust_ip6 *dst, uint8_t proto,
			  struct ust_ip6 *ip_dst)
{
	*ip_dst = *dst;
	if (!e->len)
		return proto;
	memcpy(at, e->data, e->len);
	at[e->last] = proto;
	if (e->final) {
		memcpy(at + e->final, dst->b, 16);
		*ip_dst = e->hop;
	}
	return e->first;
}

uint32_t ust_csum_pseudo6(const struct ust_ip6 *src, const struct ust_ip6 *dst, uint8_t proto, uint32_t len)
{
	uint8_t tail[8];
	uint32_t sum = ust_csum_add(0, src->b, 16);

	sum = ust_csum_add(sum, dst->b, 16);
	ust_put32(tail, len);
	ust_put32(tail + 4, proto);
	return ust_csum_add(sum, tail, 8);
}

enum ust_drop ust_icmp6_parse(const struct ust_ipv6 *ip, struct ust_icmp6 *icmp)
{
	const uint8_t *b = ip->payload;
	uint32_t sum;

	if (ip->payload_len < UST_ICMP6_HLEN)
		return UST_DROP_ICMP6_SHORT;
	/* RFC 4443 §2.3: unlike ICMP's, the checksum covers a pseudo-header. */
	sum = ust_csum_pseudo6(&ip->src, &ip->dst, UST_IPPROTO_ICMPV6, ip->payload_len);
	if (ust_csum_fold(ust_csum_add(sum, b, ip->payload_len)) != 0)
		return UST_DROP_ICMP6_CSUM;
	icmp->type = b[0];
	icmp->code = b[1];
	icmp->rest = ust_get32(b + 4);
	icmp->data = b + UST_ICMP6_HLEN;
	icmp->data_len = (uint16_t)(ip->payload_len - UST_ICMP6_HLEN);
	return UST_OK;
}

enum ust_drop ust_icmp6_error_parse(const struct ust_icmp6 *icmp, struct ust_icmp6_error *err)
{
	const uint8_t *q = icmp->data;

	if (icmp->type < UST_ICMP6_DEST_UNREACH || icmp->type > UST_ICMP6_PARAM_PROBLEM)
		return UST_DROP_ICMP6_TYPE;
	/* "As much of invoking packet as possible": at least its header and
	 * the 8 bytes that name a TCP connection. */
	size_t off;
	uint8_t next;

	if (icmp->data_len < UST_IPV6_HLEN + 8 || q[0] >> 4 != 6)
		return UST_DROP_ICMP6_SHORT;
	/* Past the extension headers (a socket's sticky ones: Linux's
	 * icmpv6_notify skips them too). */
	off = ust_ip6_upper(q, icmp->data_len, &next);
	if (!off || off + 8 > icmp->data_len)
		return UST_DROP_ICMP6_SHORT;
	err->type = icmp->type;
	err->code = icmp->code;
	err->proto = next;
	memcpy(err->src.b, q + 8, 16);
	memcpy(err->dst.b, q + 24, 16);
	memcpy(err->l4, q + off, 8);
	err->mtu = icmp->type == UST_ICMP6_PACKET_TOO_BIG ? icmp->rest : 0;
	return UST_OK;
}

void ust_icmp6_build(uint8_t *buf, uint8_t type, uint8_t code, uint32_t rest, size_t data_len,
		     const struct ust_ip6 *src, const struct ust_ip6 *dst)
{
	uint32_t len = (uint32_t)(UST_ICMP6_HLEN + data_len);

	buf[0] = type;
	buf[1] = code;
	ust_put16(buf + 2, 0);
	ust_put32(buf + 4, rest);
	ust_put16(buf + 2, ust_csum_fold(ust_csum_add(ust_csum_pseudo6(src, dst, UST_IPPROTO_ICMPV6, len),
						      buf, len)));
}

/* Options (RFC 4861 §4.6): type, length in units of 8 bytes (never 0),
 * value. Returns false if one is malformed; fills the link-layer address
 * of the kind wanted (the last one given, as Linux keeps). */
static bool nd_options(const uint8_t *o, size_t len, uint8_t want, struct ust_nd *nd)
{
	size_t i = 0;

	while (i < len) {
		size_t olen;

		if (i + 2 > len || o[i + 1] == 0)
			return false;
		olen = (size_t)o[i + 1] * 8;
		if (i + olen > len)
			return false;
		if (o[i] == want && olen == 8) {
			nd->has_lladdr = true;
			memcpy(nd->lladdr, o + i + 2, UST_ETH_ALEN);
		}
		i += olen;
	}
	return true;
}

enum ust_drop ust_nd_parse(const struct ust_ipv6 *ip, const struct ust_icmp6 *icmp, struct ust_nd *nd)
{
	bool ns = icmp->type == UST_ND_NEIGHBOR_SOLICIT;

	memset(nd, 0, sizeof(*nd));
	nd->type = icmp->type;
	if (ip->hop_limit != UST_ND_HOP_LIMIT || icmp->code != 0 ||
	    (size_t)icmp->data_len + UST_ICMP6_HLEN < UST_ND_LEN)
		return UST_DROP_ND_INVALID;
	memcpy(nd->target.b, icmp->data, 16);
	if (ust_ip6_is_multicast(&nd->target))
		return UST_DROP_ND_INVALID;
	if (!nd_options(icmp->data + 16, icmp->data_len - 16u,
			ns ? UST_ND_OPT_SOURCE_LLADDR : UST_ND_OPT_TARGET_LLADDR, nd))
		return UST_DROP_ND_INVALID;
	nd->flags = ns ? 0 : icmp->rest & (UST_ND_NA_ROUTER | UST_ND_NA_SOLICITED | UST_ND_NA_OVERRIDE);
	if (ns && ust_ip6_is_unspecified(&ip->src) &&
	    (!ust_ip6_is_solicited_node(&ip->dst) || nd->has_lladdr))
		return UST_DROP_ND_INVALID;
	if (!ns && ust_ip6_is_multicast(&ip->dst) && (nd->flags & UST_ND_NA_SOLICITED))
		return UST_DROP_ND_INVALID;
	return UST_OK;
}

struct ust_ip6 ust_ip6_solicited_node(const struct ust_ip6 *a)
{
	struct ust_ip6 m = { .b = { 0xff, 0x02, [11] = 0x01, [12] = 0xff } };

	memcpy(m.b + 13, a->b + 13, 3);
	return m;
}

bool ust_ip6_is_all_nodes(const struct ust_ip6 *a)
{
	static const struct ust_ip6 all = { .b = { 0xff, 0x02, [15] = 0x01 } };

	return ust_ip6_eq(a, &all);
}

struct ust_ip6 ust_ip6_link_local(const uint8_t mac[UST_ETH_ALEN])
{
	struct ust_ip6 a = { .b = { 0xfe, 0x80 } };

	a.b[8] = mac[0] ^ 0x02;
	a.b[9] = mac[1];
	a.b[10] = mac[2];
	a.b[11] = 0xff;
	a.b[12] = 0xfe;
	a.b[13] = mac[3];
	a.b[14] = mac[4];
	a.b[15] = mac[5];
	return a;
}

void ust_ip6_multicast_mac(const struct ust_ip6 *a, uint8_t mac[UST_ETH_ALEN])
{
	mac[0] = 0x33;
	mac[1] = 0x33;
	memcpy(mac + 2, a->b + 12, 4);
}

bool ust_ip6_prefix_eq(const struct ust_ip6 *a, const struct ust_ip6 *b, unsigned prefix)
{
	unsigned bytes = prefix / 8, bits = prefix % 8;

	if (memcmp(a->b, b->b, bytes) != 0)
		return false;
	return bits == 0 || ((a->b[bytes] ^ b->b[bytes]) & (0xff00u >> bits) & 0xff) == 0;
}

const char *ust_ip6_str(const struct ust_ip6 *a, char *buf)
{
	if (!inet_ntop(AF_INET6, a->b, buf, 46))
		strcpy(buf, "?");
	return buf;
}
