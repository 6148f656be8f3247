/* Wire formats of IPv6 (RFC 8200), ICMPv6 (RFC 4443) and Neighbor
 * Discovery (RFC 4861), and the address type the network layer keys its
 * neighbour cache by.
 *
 * As in wire.h: each parser checks lengths once and extracts host-order
 * fields into a plain struct, or returns the counter of the reason it
 * refused the bytes. */
#ifndef USTCP_WIRE6_H
#define USTCP_WIRE6_H

#include <string.h>

#include "wire.h"

#define UST_ETHERTYPE_IPV6 0x86dd
#define UST_IPV6_HLEN 40
#define UST_IPV6_MIN_MTU 1280           /* RFC 8200 §5 */
#define UST_IPPROTO_HOPOPTS 0
#define UST_IPPROTO_ROUTING 43
#define UST_IPPROTO_FRAGMENT 44
#define UST_IPPROTO_AH 51
#define UST_IPPROTO_ICMPV6 58
#define UST_IPPROTO_NONE 59
#define UST_IPPROTO_DSTOPTS 60
#define UST_IPV6_HOP_LIMIT_DEFAULT 64   /* Linux's net.ipv6.conf.*.hop_limit */
#define UST_IPV6_FLOW_MASK 0xfffffu     /* the flow label's 20 bits */
#define UST_ND_HOP_LIMIT 255            /* RFC 4861 §6.1: NDP is never forwarded */

#define UST_ICMP6_HLEN 8
#define UST_ICMP6_DEST_UNREACH 1
#define UST_ICMP6_PACKET_TOO_BIG 2
#define UST_ICMP6_TIME_EXCEEDED 3
#define UST_ICMP6_PARAM_PROBLEM 4
#define UST_ICMP6_ECHO_REQUEST 128
#define UST_ICMP6_ECHO_REPLY 129
#define UST_ND_ROUTER_SOLICIT 133
#define UST_ND_ROUTER_ADVERT 134
#define UST_ND_NEIGHBOR_SOLICIT 135
#define UST_ND_NEIGHBOR_ADVERT 136
#define UST_ND_REDIRECT 137
#define UST_ND_LEN 24                   /* NS and NA without options */
#define UST_ND_OPT_SOURCE_LLADDR 1
#define UST_ND_OPT_TARGET_LLADDR 2
#define UST_ND_NA_ROUTER 0x80000000u    /* NA flags, in the word after the checksum */
#define UST_ND_NA_SOLICITED 0x40000000u
#define UST_ND_NA_OVERRIDE 0x20000000u

/* An IPv6 address in network order; an IPv4 address is held mapped
 * (::ffff:a.b.c.d, RFC 4291 §2.5.5.2), so one key serves both families. */
struct ust_ip6 {
	uint8_t b[16];
};

struct ust_ipv6 {
	uint8_t tclass;
	uint32_t flow;
	uint8_t hop_limit;
	uint8_t proto;             /* the upper-layer header, after the extension headers */
	struct ust_ip6 src, dst;
	const uint8_t *hdr;        /* the fixed header, where the datagram starts */
	const uint8_t *payload;    /* the upper-layer header and what follows */
	uint16_t payload_len;
};

struct ust_icmp6 {
	uint8_t type, code;
	uint32_t rest;             /* echo: id and sequence; packet too big: the MTU; NA: flags */
	const uint8_t *data;       /* after the 8-byte header */
	uint16_t data_len;
};

/* What a destination-unreachable, packet-too-big, time-exceeded or
 * parameter-problem message says about one of our datagrams. */
struct ust_icmp6_error {
	uint8_t type, code;
	struct ust_ip6 src, dst;   /* of the datagram we had sent */
	uint8_t proto;             /* its upper layer, past hop-by-hop, routing and destination options */
	uint8_t l4[8];             /* the upper layer's first 8 bytes */
	uint8_t hop_limit;         /* the ICMPv6 message's own (its IPv6 header's; set by the caller) */
	uint32_t mtu;              /* packet too big: the next hop's MTU */
};

/* A Neighbor Solicitation or Advertisement that passed RFC 4861's checks
 * (§7.1.1, §7.1.2). */
struct ust_nd {
	uint8_t type;
	uint32_t flags;            /* NA: router, solicited, override */
	struct ust_ip6 target;
	bool has_lladdr;           /* source (NS) or target (NA) link-layer address option */
	uint8_t lladdr[UST_ETH_ALEN];
};

/* Validates the fixed header and the payload length against the buffer,
 * then walks the extension headers as Linux's receive path does: hop-by-hop
 * options only first, options whose type says "skip if unknown" skipped and
 * the others refused, a routing header with no segments left skipped (one
 * with segments left would ask us to forward), a fragment refused unless it
 * is an atomic one (offset 0, no more fragments: RFC 6946), "no next header"
 * refused. Fragments are counted apart: ustcp does not reassemble. */
enum ust_drop ust_ipv6_parse(const uint8_t *buf, size_t len, struct ust_ipv6 *ip);
/* Writes a 40-byte header; payload_len counts what follows it. */
void ust_ipv6_build(uint8_t *buf, const struct ust_ip6 *src, const struct ust_ip6 *dst, uint8_t proto,
		    uint8_t tclass, uint16_t payload_len, uint8_t hop_limit);

/* Sum of the IPv6 pseudo-header (RFC 8200 §8.1) for a transport checksum. */
/* The length of an extension header of type type at h (at least 8 bytes
 * there): a fragment header's 8, an authentication header's in 4-byte
 * units less 2, the others' in 8-byte units less 1 (RFC 8200 §4, RFC
 * 4302 §2.2). */
static inline unsigned ust_ip6_ext_len(uint8_t type, const uint8_t *h)
{
	if (type == UST_IPPROTO_FRAGMENT)
		return 8;
	if (type == UST_IPPROTO_AH)
		return (h[1] + 2u) * 4;
	return (h[1] + 1u) * 8;
}

/* One step of a walk over the extension headers of the IPv6 datagram net
 * (n bytes): with *w zeroed the first, then the next. True with the
 * header's offset, type and length in *w; false at the upper layer's
 * header, with its offset and protocol in w->off and w->type, or when a
 * header is not whole within n (w->off 0). */
struct ust_ip6_walk {
	unsigned off, len;
	uint8_t type;
};

static inline bool ust_ip6_ext_step(const uint8_t *net, size_t n, struct ust_ip6_walk *w)
{
	if (!w->off) {
		if (n < UST_IPV6_HLEN)
			return false;
		w->off = UST_IPV6_HLEN;
		w->type = net[6];
	} else {
		w->type = net[w->off];
		w->off += w->len;
	}
	if (w->type != UST_IPPROTO_HOPOPTS && w->type != UST_IPPROTO_ROUTING && w->type != UST_IPPROTO_DSTOPTS &&
	    w->type != UST_IPPROTO_FRAGMENT && w->type != UST_IPPROTO_AH)
		return false;
	if (w->off + 8 > n || w->off + (w->len = ust_ip6_ext_len(w->type, net + w->off)) > n) {
		w->off = 0;
		return false;
	}
	return true;
}

/* The offset of the upper layer's header in the IPv6 datagram net (n
 * bytes), past every hop-by-hop, routing, destination options, fragment
 * and authentication header (as Linux's ipv6_skip_exthdr, which also
 * stops at a fragment that is not the first), its protocol in *proto; 0
 * when the headers do not fit in n. */
static inline unsigned ust_ip6_upper(const uint8_t *net, size_t n, uint8_t *proto)
{
	struct ust_ip6_walk w = { 0 };

	while (ust_ip6_ext_step(net, n, &w))
		;
	*proto = w.type;
	return w.off;
}

/* A socket's sticky extension headers (IPV6_HOPOPTS, IPV6_RTHDRDSTOPTS,
 * IPV6_RTHDR, IPV6_DSTOPTS) as every datagram of it carries them, in RFC
 * 8200 §4.1's order, as Linux's ipv6_push_nfrag_opts and
 * ipv6_push_frag_opts put them: hop-by-hop, then with a routing header the
 * destination options for its hops and the routing header, then the
 * destination options for the destination. The routing header's first
 * address is the IPv6 header's destination and the destination goes into
 * its last slot (types 0 and 2, Linux's ipv6_push_rthdr0), or its segment
 * list's first (type 4, segment routing, ipv6_push_rthdr4, whose first
 * hop is the segment Segments Left names). Offsets count from the first
 * extension header. */
#define UST_IP6_EXT_HDRS 4
/* The most a header's length field says, (255 + 1) x 8 bytes: Linux's
 * setsockopt takes 2040 at most (ipv6_set_opt_hdr), IPV6_2292PKTOPTIONS's
 * control messages the whole 2048 (ip6_datagram_send_ctl). Four of them
 * are more than an MTU, which emit checks. */
#define UST_IP6_EXT_HDR_MAX 2048
#define UST_IP6_EXT_MAX (UST_IP6_EXT_HDRS * UST_IP6_EXT_HDR_MAX)
enum { UST_IP6_EXT_HOP, UST_IP6_EXT_DST0, UST_IP6_EXT_RT, UST_IP6_EXT_DST1 };
struct ust_ip6_ext {
	uint16_t len;              /* bytes sent, 0: none */
	uint16_t mss_len;          /* what the MSS leaves them: Linux counts
				    * the routing header's destination options
				    * even without a routing header, when it
				    * sends none of them */
	uint16_t last;             /* the last header, whose next header is the upper layer's */
	uint16_t final;            /* the routing header's slot for the destination, 0: none */
	uint8_t first;             /* the IPv6 header's next header */
	struct ust_ip6 hop;        /* with a routing header: the IPv6 header's destination */
	uint8_t data[UST_IP6_EXT_MAX];
};

/* Prepares the four headers (NULL or len 0: not set), each whole as RFC
 * 8200 §4.2 shapes it (the kernel's setsockopt checked them). -EINVAL for
 * a routing header of another type than 0, 2 or 4, or one with no
 * address. */
int ust_ip6_ext_compile(struct ust_ip6_ext *e, const uint8_t *const hdr[UST_IP6_EXT_HDRS],
			const unsigned len[UST_IP6_EXT_HDRS]);
/* Writes e's headers at at, the last one's next header proto, the
 * destination dst where the routing header takes it. Returns the IPv6
 * header's next header; *ip_dst is the IPv6 header's destination. */
uint8_t ust_ip6_ext_build(uint8_t *at, const struct ust_ip6_ext *e, const struct ust_ip6 *dst, uint8_t proto,
			  struct ust_ip6 *ip_dst);

uint32_t ust_csum_pseudo6(const struct ust_ip6 *src, const struct ust_ip6 *dst, uint8_t proto, uint32_t len);

/* Verifies the ICMPv6 checksum (pseudo-header included) of ip's payload. */
enum ust_drop ust_icmp6_parse(const struct ust_ipv6 *ip, struct ust_icmp6 *icmp);
/* The quoted datagram of an ICMPv6 error. */
enum ust_drop ust_icmp6_error_parse(const struct ust_icmp6 *icmp, struct ust_icmp6_error *err);
/* Writes an 8-byte ICMPv6 header; the caller has put data_len bytes after it.
 * The checksum covers the pseudo-header for src and dst. */
void ust_icmp6_build(uint8_t *buf, uint8_t type, uint8_t code, uint32_t rest, size_t data_len,
		     const struct ust_ip6 *src, const struct ust_ip6 *dst);
/* Checks a solicitation or advertisement whose ICMPv6 checksum was right:
 * hop limit 255, code 0, length, a unicast target, options of non-zero
 * length within the message; from the unspecified address, a solicitation
 * must go to a solicited-node address and carry no source link-layer
 * address; an advertisement to a multicast address must not say
 * "solicited". */
enum ust_drop ust_nd_parse(const struct ust_ipv6 *ip, const struct ust_icmp6 *icmp, struct ust_nd *nd);

/* Address helpers (RFC 4291). */
/* The neighbour cache runs it for every IPv4 datagram sent too, whose
 * mapped addresses differ in their last four bytes only: those first.
 * Compilers turn each fixed-size memcmp into a compare or two. */
static inline bool ust_ip6_eq(const struct ust_ip6 *a, const struct ust_ip6 *b)
{
	return memcmp(a->b + 12, b->b + 12, 4) == 0 && memcmp(a->b, b->b, 12) == 0;
}
/* The TCP engine asks these of every segment and control block (IPv4
 * ones mapped): word loads, not byte loops. */
static inline bool ust_ip6_is_unspecified(const struct ust_ip6 *a)
{
	uint64_t w[2];

	memcpy(w, a->b, 16);
	return (w[0] | w[1]) == 0;
}
static inline bool ust_ip6_is_loopback(const struct ust_ip6 *a)
{
	for (unsigned i = 0; i < 15; i++)
		if (a->b[i])
			return false;
	return a->b[15] == 1;
}
static inline bool ust_ip6_is_multicast(const struct ust_ip6 *a) { return a->b[0] == 0xff; }
static inline bool ust_ip6_is_link_local(const struct ust_ip6 *a)
{
	return a->b[0] == 0xfe && (a->b[1] & 0xc0) == 0x80;
}
static inline bool ust_ip6_is_v4mapped(const struct ust_ip6 *a)
{
	uint64_t w0;
	uint32_t w1;

	memcpy(&w0, a->b, 8);
	memcpy(&w1, a->b + 8, 4);
	return w0 == 0 && ust_get32((const uint8_t *)&w1) == 0xffffu;
}
static inline struct ust_ip6 ust_ip6_from_v4(uint32_t a)
{
	struct ust_ip6 m = { .b = { [10] = 0xff, [11] = 0xff } };

	ust_put32(m.b + 12, a);
	return m;
}
static inline uint32_t ust_ip6_to_v4(const struct ust_ip6 *a) { return ust_get32(a->b + 12); }
/* ff02::1:ffXX:XXXX, where a solicitation for a is sent (RFC 4291 §2.7.1). */
struct ust_ip6 ust_ip6_solicited_node(const struct ust_ip6 *a);
static inline bool ust_ip6_is_solicited_node(const struct ust_ip6 *a)
{
	static const uint8_t head[13] = { 0xff, 0x02, [11] = 0x01, [12] = 0xff };

	for (unsigned i = 0; i < 13; i++)
		if (a->b[i] != head[i])
			return false;
	return true;
}
/* ff02::1, every node on the link. */
bool ust_ip6_is_all_nodes(const struct ust_ip6 *a);
/* fe80::/64 with the modified EUI-64 interface identifier of mac (RFC 4291
 * appendix A: ff:fe in the middle, the universal/local bit inverted), as
 * Linux derives it with addr_gen_mode 0. */
struct ust_ip6 ust_ip6_link_local(const uint8_t mac[UST_ETH_ALEN]);
/* 33:33 and the address's last 32 bits (RFC 2464 §7). */
void ust_ip6_multicast_mac(const struct ust_ip6 *a, uint8_t mac[UST_ETH_ALEN]);
/* Do a and b share their first prefix bits? */
bool ust_ip6_prefix_eq(const struct ust_ip6 *a, const struct ust_ip6 *b, unsigned prefix);
/* inet_ntop's form into buf (at least 46 bytes); returns buf. */
const char *ust_ip6_str(const struct ust_ip6 *a, char *buf);

#endif
