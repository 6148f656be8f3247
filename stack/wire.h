/* Wire formats of the link and network layers: Ethernet, ARP, IPv4, ICMP.
 *
 * Parse, then trust: each parser checks lengths once and extracts the fields
 * into a plain struct with host-order values, or returns the counter of the
 * reason it refused the bytes. Nothing casts a struct over a frame. Builders
 * write a header into a buffer the caller sized. */
#ifndef USTCP_WIRE_H
#define USTCP_WIRE_H

#include "base.h"
#include "counters.h"

#define UST_ETH_ALEN 6
#define UST_ETH_HLEN 14
#define UST_ETHERTYPE_IPV4 0x0800
#define UST_ETHERTYPE_ARP 0x0806
#define UST_ETHERTYPE_VLAN 0x8100

#define UST_ARP_LEN 28
#define UST_ARP_REQUEST 1
#define UST_ARP_REPLY 2

#define UST_IPV4_HLEN 20 /* without options */
#define UST_IPV4_MAXLEN 65535
#define UST_IPPROTO_ICMP 1
#define UST_IPPROTO_TCP 6
#define UST_IPPROTO_UDP 17
#define UST_IP_DF 0x4000
#define UST_IP_MF 0x2000
#define UST_IP_OFFMASK 0x1fff

#define UST_ICMP_HLEN 8
#define UST_ICMP_ECHO_REPLY 0
#define UST_ICMP_DEST_UNREACH 3
#define UST_ICMP_ECHO_REQUEST 8
#define UST_ICMP_TIME_EXCEEDED 11
#define UST_ICMP_PARAM_PROBLEM 12

extern const uint8_t ust_eth_broadcast[UST_ETH_ALEN];

struct ust_eth {
	uint8_t dst[UST_ETH_ALEN];
	uint8_t src[UST_ETH_ALEN];
	uint16_t type;
};

struct ust_arp {
	uint16_t op;
	uint8_t sha[UST_ETH_ALEN]; /* sender hardware address */
	uint32_t spa;              /* sender protocol address */
	uint8_t tha[UST_ETH_ALEN]; /* target hardware address */
	uint32_t tpa;              /* target protocol address */
};

struct ust_ipv4 {
	uint8_t hlen;              /* header length in bytes, options included */
	uint8_t tos;
	uint16_t total_len;
	uint16_t id;
	uint16_t frag;             /* flags and fragment offset, as on the wire */
	uint8_t ttl;
	uint8_t proto;
	uint32_t src, dst;
	const uint8_t *payload;    /* total_len - hlen bytes; link padding excluded */
	uint16_t payload_len;
};

struct ust_icmp {
	uint8_t type, code;
	uint32_t rest;             /* the "rest of header" word: id and sequence for echo */
	const uint8_t *data;       /* after the 8-byte header */
	uint16_t data_len;
};

/* The part of an ICMP error that matters to the transport layer: the
 * offending datagram's addresses, protocol and first eight payload bytes. */
struct ust_icmp_error {
	uint8_t type, code;
	uint32_t src, dst;         /* of the datagram we had sent */
	uint8_t proto;
	uint8_t ttl;               /* its TTL as the reporting router saw it */
	uint8_t l4[8];             /* its first 8 transport bytes (ports, sequence) */
	uint16_t mtu;              /* next-hop MTU for "fragmentation needed" */
};

enum ust_drop ust_eth_parse(const uint8_t *buf, size_t len, struct ust_eth *eth);
void ust_eth_build(uint8_t *buf, const uint8_t dst[UST_ETH_ALEN],
		   const uint8_t src[UST_ETH_ALEN], uint16_t type);

enum ust_drop ust_arp_parse(const uint8_t *buf, size_t len, struct ust_arp *arp);
void ust_arp_build(uint8_t *buf, const struct ust_arp *arp);

/* Validates version, header length, total length against the buffer, the
 * header checksum and the options' structure. Fragments are reported as
 * UST_DROP_IP_FRAGMENT: ustcp does not reassemble (TCP with DF and a clamped
 * MSS never needs it). The TTL of a received datagram is not checked: a host
 * must not discard a datagram because its TTL is low (RFC 1122 §3.2.1.7), and
 * Linux delivers it. */
enum ust_drop ust_ipv4_parse(const uint8_t *buf, size_t len, struct ust_ipv4 *ip);
/* Writes a 20-byte header (no options) with its checksum; the TOS byte
 * holds the DSCP and the ECN field (RFC 3168 §5). With options, the
 * header length and checksum are the caller's (ust_ipv4_set_hlen). */
void ust_ipv4_build_tos(uint8_t *buf, uint32_t src, uint32_t dst, uint8_t proto, uint8_t tos,
			uint16_t total_len, uint16_t id, uint8_t ttl, uint16_t frag);
static inline void ust_ipv4_build(uint8_t *buf, uint32_t src, uint32_t dst, uint8_t proto,
				  uint16_t total_len, uint16_t id, uint8_t ttl, uint16_t frag)
{
	ust_ipv4_build_tos(buf, src, dst, proto, 0, total_len, id, ttl, frag);
}

/* IP_OPTIONS as a socket sends them on every datagram (RFC 791 §3.1),
 * prepared once as Linux's ip_options_compile prepares a socket's: a
 * source route's first address taken out as the first hop (the list
 * shifted, its last slot left for the destination), and the record-route
 * and timestamp pointers moved past the entry each datagram fills in
 * (ust_ip4_opts_build). Offsets count from the IP header's first byte,
 * 0: no such option. What the kernel takes only from a socket with
 * CAP_NET_RAW (security, CIPSO...) goes as it is. */
#define UST_IPV4_OPT_MAX 40
struct ust_ip4_opts {
	uint8_t len;               /* a multiple of 4, 4..40 */
	uint8_t srr, rr, ts;
	bool rr_needaddr, ts_needaddr, ts_needtime;
	bool strict;               /* the source route is strict (SSRR) */
	uint32_t faddr;            /* the source route's first hop */
	uint8_t data[UST_IPV4_OPT_MAX];
};

/* Prepares len bytes of options (padded with EOL to a multiple of 4).
 * local says whether an address is the host's, for a prespecified
 * timestamp. 0, or -EINVAL for options Linux's socket refuses whatever
 * its capabilities. */
int ust_ip4_opts_compile(struct ust_ip4_opts *o, const uint8_t *opt, unsigned len,
			 bool (*local)(const void *ctx, uint32_t a), const void *ctx);
/* The options to answer a received datagram with (hdr, its header of
 * hlen bytes), as Linux's ip_options_echo: its record route and timestamp
 * options as our receiving them left them (our address and the time in
 * the next slot), with room taken for one more entry of ours; a source
 * route is not echoed (Linux drops a source-routed datagram first, with
 * accept_source_route 0). o->len 0: nothing to echo; -EINVAL: options
 * Linux would drop the datagram for. */
int ust_ip4_opts_echo(struct ust_ip4_opts *o, const uint8_t *hdr, unsigned hlen, uint32_t self,
		      uint32_t ms_of_day, bool (*local)(const void *ctx, uint32_t a), const void *ctx);
/* The options as getsockopt(IP_OPTIONS) reads them back (Linux's
 * ip_options_undo): o->len bytes into out. */
void ust_ip4_opts_undo(const struct ust_ip4_opts *o, uint8_t out[UST_IPV4_OPT_MAX]);
/* Writes the options after the 20-byte header at iph: the destination in
 * a source route's last slot, the source address and the time (ms since
 * midnight UTC, as Linux's inet_current_timestamp) where the record-route
 * and timestamp options ask. */
void ust_ip4_opts_build(uint8_t *iph, const struct ust_ip4_opts *o, uint32_t src, uint32_t dst,
			uint32_t ms_of_day);

/* Gives the header at buf hlen bytes (its options written after the
 * first 20) and sums it again. */
void ust_ipv4_set_hlen(uint8_t *buf, unsigned hlen);

/* Verifies the ICMP checksum over the whole message. */
enum ust_drop ust_icmp_parse(const uint8_t *buf, size_t len, struct ust_icmp *icmp);
/* Extracts the quoted datagram of a destination-unreachable, time-exceeded or
 * parameter-problem message. */
enum ust_drop ust_icmp_error_parse(const struct ust_icmp *icmp, struct ust_icmp_error *err);
/* Writes an 8-byte ICMP header followed by nothing; the caller has put
 * data_len bytes of data after it. Computes the checksum over both. */
void ust_icmp_build(uint8_t *buf, uint8_t type, uint8_t code, uint32_t rest, size_t data_len);

/* Address helpers. */
static inline bool ust_ip_is_multicast(uint32_t a) { return (a >> 28) == 0xe; }
static inline bool ust_ip_is_limited_bcast(uint32_t a) { return a == 0xffffffffu; }
static inline bool ust_mac_is_broadcast(const uint8_t *m)
{
	return (m[0] & m[1] & m[2] & m[3] & m[4] & m[5]) == 0xff;
}
static inline bool ust_mac_is_multicast(const uint8_t *m) { return m[0] & 1; }
static inline bool ust_mac_is_zero(const uint8_t *m)
{
	return (m[0] | m[1] | m[2] | m[3] | m[4] | m[5]) == 0;
}
/* "10.9.0.2" into buf (at least 16 bytes); returns buf. */
const char *ust_ip_str(uint32_t a, char *buf);

#endif
