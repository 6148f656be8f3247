#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "csum.h"
#include "wire.h"

const uint8_t ust_eth_broadcast[UST_ETH_ALEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

enum ust_drop ust_eth_parse(const uint8_t *buf, size_t len, struct ust_eth *eth)
{
	if (len < UST_ETH_HLEN)
		return UST_DROP_ETH_SHORT;
	memcpy(eth->dst, buf, UST_ETH_ALEN);
	memcpy(eth->src, buf + 6, UST_ETH_ALEN);
	eth->type = ust_get16(buf + 12);
	return UST_OK;
}

void ust_eth_build(uint8_t *buf, const uint8_t dst[UST_ETH_ALEN],
		   const uint8_t src[UST_ETH_ALEN], uint16_t type)
{
	memcpy(buf, dst, UST_ETH_ALEN);
	memcpy(buf + 6, src, UST_ETH_ALEN);
	ust_put16(buf + 12, type);
}

enum ust_drop ust_arp_parse(const uint8_t *buf, size_t len, struct ust_arp *arp)
{
	if (len < UST_ARP_LEN)
		return UST_DROP_ARP_SHORT;
	/* Ethernet hardware (1), IPv4 protocol, 6- and 4-byte addresses. */
	if (ust_get16(buf) != 1 || ust_get16(buf + 2) != UST_ETHERTYPE_IPV4 ||
	    buf[4] != UST_ETH_ALEN || buf[5] != 4)
		return UST_DROP_ARP_FORMAT;
	arp->op = ust_get16(buf + 6);
	if (arp->op != UST_ARP_REQUEST && arp->op != UST_ARP_REPLY)
		return UST_DROP_ARP_FORMAT;
	memcpy(arp->sha, buf + 8, UST_ETH_ALEN);
	arp->spa = ust_get32(buf + 14);
	memcpy(arp->tha, buf + 18, UST_ETH_ALEN);
	arp->tpa = ust_get32(buf + 24);
	return UST_OK;
}

void ust_arp_build(uint8_t *buf, const struct ust_arp *arp)
{
	ust_put16(buf, 1);
	ust_put16(buf + 2, UST_ETHERTYPE_IPV4);
	buf[4] = UST_ETH_ALEN;
	buf[5] = 4;
	ust_put16(buf + 6, arp->op);
	memcpy(buf + 8, arp->sha, UST_ETH_ALEN);
	ust_put32(buf + 14, arp->spa);
	memcpy(buf + 18, arp->tha, UST_ETH_ALEN);
	ust_put32(buf + 24, arp->tpa);
}

/* RFC 791's option types, and the timestamp option's flags. */
#define IPOPT_END 0
#define IPOPT_NOOP 1
#define IPOPT_RR 7
#define IPOPT_TS 68
#define IPOPT_LSRR 131
#define IPOPT_SSRR 137
#define IPOPT_RA 148
#define IPOPT_TS_TSONLY 0
#define IPOPT_TS_TSANDADDR 1
#define IPOPT_TS_PRESPEC 3

/* The option at d, l bytes left: its length into *olen, 1 for a NOP, 0
 * for the EOL that ends the list. False when it does not fit. */
static bool opt_len(const uint8_t *d, unsigned l, unsigned *olen)
{
	if (*d == IPOPT_END || *d == IPOPT_NOOP) {
		*olen = *d == IPOPT_NOOP;
		return true;
	}
	if (l < 2 || d[1] < 2 || d[1] > l)
		return false;
	*olen = d[1];
	return true;
}

/* RFC 791 options: EOL (0) ends the list, NOP (1) is one byte, every other
 * option is type, length (>= 2, within the header), value. *srr: one is
 * a source route, which Linux drops a datagram for unless the interface
 * accepts source routes (net.ipv4.conf.*.accept_source_route, 0 by
 * default). */
static bool ipv4_options_valid(const uint8_t *opt, unsigned len, bool *srr)
{
	unsigned olen;

	*srr = false;
	for (unsigned i = 0; i < len && opt[i] != IPOPT_END; i += olen) {
		if (!opt_len(opt + i, len - i, &olen))
			return false;
		*srr |= opt[i] == IPOPT_LSRR || opt[i] == IPOPT_SSRR;
	}
	return true;
}

enum ust_drop ust_ipv4_parse(const uint8_t *buf, size_t len, struct ust_ipv4 *ip)
{
	if (len < UST_IPV4_HLEN)
		return UST_DROP_IP_SHORT;
	if (buf[0] >> 4 != 4)
		return UST_DROP_IP_VERSION;
	ip->hlen = (uint8_t)((buf[0] & 0x0f) * 4);
	if (ip->hlen < UST_IPV4_HLEN || ip->hlen > len)
		return UST_DROP_IP_HDR_LEN;
	ip->total_len = ust_get16(buf + 2);
	/* The frame may be longer (Ethernet pads to 60 bytes), never shorter. */
	if (ip->total_len < ip->hlen || ip->total_len > len)
		return UST_DROP_IP_TOTAL_LEN;
	if (ust_csum_fold(ust_csum_add(0, buf, ip->hlen)) != 0)
		return UST_DROP_IP_CSUM;
	if (ip->hlen > UST_IPV4_HLEN) {
		bool srr;
		if (!ipv4_options_valid(buf + UST_IPV4_HLEN, ip->hlen - UST_IPV4_HLEN, &srr))
			return UST_DROP_IP_OPTIONS;
		if (srr)
			return UST_DROP_IP_SOURCE_ROUTE;
	}
	ip->tos = buf[1];
	ip->id = ust_get16(buf + 4);
	ip->frag = ust_get16(buf + 6);
	ip->ttl = buf[8];
	ip->proto = buf[9];
	ip->src = ust_get32(buf + 12);
	ip->dst = ust_get32(buf + 16);
	ip->payload = buf + ip->hlen;
	ip->payload_len = (uint16_t)(ip->total_len - ip->hlen);
	if (ip->frag & (UST_IP_MF | UST_IP_OFFMASK))
		return UST_DROP_IP_FRAGMENT;
	return UST_OK;
}

void ust_ipv4_build_tos(uint8_t *buf, uint32_t src, uint32_t dst, uint8_t proto, uint8_t tos,
			uint16_t total_len, uint16_t id, uint8_t ttl, uint16_t frag)
{
	buf[0] = 0x45;
	buf[1] = tos;
	ust_put16(buf + 2, total_len);
	ust_put16(buf + 4, id);
	ust_put16(buf + 6, frag);
	buf[8] = ttl;
	buf[9] = proto;
	ust_put16(buf + 10, 0);
	ust_put32(buf + 12, src);
	ust_put32(buf + 16, dst);
	ust_put16(buf + 10, ust_csum_fold(ust_csum_add(0, buf, UST_IPV4_HLEN)));
}

void ust_ipv4_set_hlen(uint8_t *buf, unsigned hlen)
{
	buf[0] = (uint8_t)(0x40 | hlen / 4);
	ust_put16(buf + 10, 0);
	ust_put16(buf + 10, ust_csum_fold(ust_csum_add(0, buf, hlen)));
}

/* ---- IP_OPTIONS ---- */

/* A source route: the first address is the first hop, the others move up
 * a slot, the last slot is the destination's (filled in at build). */
static int compile_srr(struct ust_ip4_opts *o, uint8_t *d, unsigned olen, unsigned at)
{
	if (olen < 3 || d[2] < 4 || o->srr || d[2] != 4 || olen < 7 || ((olen - 3) & 3))
		return -EINVAL;
	o->faddr = ust_get32(d + 3);
	if (olen > 7)
		memmove(d + 3, d + 7, olen - 7);
	o->srr = (uint8_t)at;
	o->strict = d[0] == IPOPT_SSRR;
	return 0;
}

/* Record route: while there is room, the next slot is ours. */
static int compile_rr(struct ust_ip4_opts *o, uint8_t *d, unsigned olen, unsigned at)
{
	if (o->rr || olen < 3 || d[2] < 4)
		return -EINVAL;
	if (d[2] <= olen) {
		if (d[2] + 3u > olen)
			return -EINVAL;
		d[2] += 4;
		o->rr_needaddr = true;
	}
	o->rr = (uint8_t)at;
	return 0;
}

/* Timestamps (RFC 791, "Internet Timestamp"): a time, an address and a
 * time, or a time where the prespecified address is ours; a full option
 * only counts its overflow on the way, where a router adds to it. */
static int compile_ts(struct ust_ip4_opts *o, uint8_t *d, unsigned olen, unsigned at,
		      bool (*local)(const void *, uint32_t), const void *ctx)
{
	if (o->ts || olen < 4 || d[2] < 5)
		return -EINVAL;
	if (d[2] <= olen) {
		if (d[2] + 3u > olen)
			return -EINVAL;
		switch (d[3] & 0xf) {
		case IPOPT_TS_TSONLY:
			o->ts_needtime = true;
			d[2] += 4;
			break;
		case IPOPT_TS_TSANDADDR:
			if (d[2] + 7u > olen)
				return -EINVAL;
			o->ts_needaddr = o->ts_needtime = true;
			d[2] += 8;
			break;
		case IPOPT_TS_PRESPEC:
			if (d[2] + 7u > olen)
				return -EINVAL;
			if (!local(ctx, ust_get32(d + d[2] - 1)))
				break;
			o->ts_needtime = true;
			d[2] += 8;
			break;
		default:
			break; /* other flags: a socket with CAP_NET_RAW's, as they are */
		}
	} else if ((d[3] & 0xf) != IPOPT_TS_PRESPEC && (d[3] >> 4) == 15) {
		return -EINVAL; /* the overflow count is full */
	}
	o->ts = (uint8_t)at;
	return 0;
}

/* Linux's ip_options_compile for a socket's options (no datagram yet):
 * after EOL every byte becomes EOL; router alert is taken as it is, and
 * so is what the kernel takes only from a socket with CAP_NET_RAW
 * (security, stream id, CIPSO, unknown types), which its setsockopt
 * checked. */
int ust_ip4_opts_compile(struct ust_ip4_opts *o, const uint8_t *opt, unsigned len,
			 bool (*local)(const void *ctx, uint32_t a), const void *ctx)
{
	uint8_t *d;
	unsigned l, olen;

	if (len > UST_IPV4_OPT_MAX)
		return -EINVAL;
	memset(o, 0, sizeof(*o));
	memcpy(o->data, opt, len);
	while (len & 3)
		o->data[len++] = IPOPT_END;
	o->len = (uint8_t)len;
	for (d = o->data, l = len; l > 0; l -= olen, d += olen) {
		unsigned at = UST_IPV4_HLEN + (unsigned)(d - o->data);
		int r = 0;

		if (!opt_len(d, l, &olen))
			return -EINVAL;
		if (!olen) {
			memset(d, IPOPT_END, l);
			break;
		}
		switch (*d) {
		case IPOPT_NOOP: break;
		case IPOPT_SSRR:
		case IPOPT_LSRR: r = compile_srr(o, d, olen, at); break;
		case IPOPT_RR: r = compile_rr(o, d, olen, at); break;
		case IPOPT_TS: r = compile_ts(o, d, olen, at, local, ctx); break;
		case IPOPT_RA: r = olen < 4 ? -EINVAL : 0; break;
		default: break;
		}
		if (r)
			return r;
	}
	return 0;
}

/* A received record route as Linux's receive path leaves it: our address
 * in the next slot if there is one. Returns whether it had room, or -1
 * for a pointer past a partial slot. */
static int rcv_rr(uint8_t *d, unsigned olen, uint32_t self)
{
	if (olen < 3 || d[2] < 4)
		return -1;
	if (d[2] > olen)
		return 0;
	if (d[2] + 3u > olen)
		return -1;
	ust_put32(d + d[2] - 1, self);
	d[2] += 4;
	return 1;
}

/* A received timestamp option as Linux's receive path leaves it; *addr
 * and *time say what it took. -1: Linux drops the datagram. */
static int rcv_ts(uint8_t *d, unsigned olen, uint32_t self, uint32_t ms,
		  bool (*local)(const void *, uint32_t), const void *ctx, bool *addr, bool *time)
{
	*addr = *time = false;
	if (olen < 4 || d[2] < 5)
		return -1;
	if (d[2] > olen) {
		if ((d[3] & 0xf) != IPOPT_TS_PRESPEC) {
			if ((d[3] >> 4) == 15)
				return -1;
			d[3] = (uint8_t)((d[3] & 0xf) | (((d[3] >> 4) + 1) << 4));
		}
		return 0;
	}
	if (d[2] + 3u > olen)
		return -1;
	switch (d[3] & 0xf) {
	case IPOPT_TS_TSONLY:
		ust_put32(d + d[2] - 1, ms);
		*time = true;
		d[2] += 4;
		break;
	case IPOPT_TS_TSANDADDR:
		if (d[2] + 7u > olen)
			return -1;
		ust_put32(d + d[2] - 1, self);
		ust_put32(d + d[2] + 3, ms);
		*addr = *time = true;
		d[2] += 8;
		break;
	case IPOPT_TS_PRESPEC:
		if (d[2] + 7u > olen)
			return -1;
		if (!local(ctx, ust_get32(d + d[2] - 1)))
			break;
		ust_put32(d + d[2] + 3, ms);
		*time = true;
		d[2] += 8;
		break;
	}
	return 0;
}

int ust_ip4_opts_echo(struct ust_ip4_opts *o, const uint8_t *hdr, unsigned hlen, uint32_t self,
		      uint32_t ms_of_day, bool (*local)(const void *ctx, uint32_t a), const void *ctx)
{
	uint8_t rr[UST_IPV4_OPT_MAX], ts[UST_IPV4_OPT_MAX];
	unsigned rr_len = 0, ts_len = 0, l = hlen > UST_IPV4_HLEN ? hlen - UST_IPV4_HLEN : 0;
	bool rr_addr = false, ts_addr = false, ts_time = false;
	const uint8_t *d = hdr + UST_IPV4_HLEN;

	memset(o, 0, sizeof(*o));
	if (hlen > UST_IPV4_HLEN + UST_IPV4_OPT_MAX)
		return -EINVAL;
	for (unsigned olen; l > 0; l -= olen, d += olen) {
		if (!opt_len(d, l, &olen))
			return -EINVAL;
		if (!olen)
			break;
		if (*d == IPOPT_RR && !rr_len) {
			int r;
			memcpy(rr, d, olen);
			if ((r = rcv_rr(rr, olen, self)) < 0)
				return -EINVAL;
			rr_addr = r > 0;
			rr_len = olen;
		} else if (*d == IPOPT_TS && !ts_len) {
			memcpy(ts, d, olen);
			if (rcv_ts(ts, olen, self, ms_of_day, local, ctx, &ts_addr, &ts_time) < 0)
				return -EINVAL;
			ts_len = olen;
		}
	}
	/* Linux's __ip_options_echo: record route, then timestamps, each
	 * with room for our next entry. */
	if (rr_len) {
		uint8_t *e = o->data;
		memcpy(e, rr, rr_len);
		o->rr = UST_IPV4_HLEN;
		if (rr_addr && rr[2] <= rr_len) {
			if (rr[2] + 3u > rr_len)
				return -EINVAL;
			e[2] = (uint8_t)(rr[2] + 4);
			o->rr_needaddr = true;
		}
		o->len = (uint8_t)rr_len;
	}
	if (ts_len) {
		uint8_t *e = o->data + o->len;
		unsigned off = ts[2];
		memcpy(e, ts, ts_len);
		o->ts = (uint8_t)(UST_IPV4_HLEN + o->len);
		if (off <= ts_len) {
			if (ts_addr) {
				if (off + 3 > ts_len)
					return -EINVAL;
				o->ts_needaddr = true;
				off += 4;
			}
			if (ts_time) {
				if (off + 3 > ts_len)
					return -EINVAL;
				if ((e[3] & 0xf) != IPOPT_TS_PRESPEC) {
					o->ts_needtime = true;
					off += 4;
				} else if (off + 7 <= ts_len && local(ctx, ust_get32(e + off - 1))) {
					o->ts_needtime = true;
					off += 8;
				}
			}
			e[2] = (uint8_t)off;
		}
		o->len = (uint8_t)(o->len + ts_len);
	}
	while (o->len & 3)
		o->data[o->len++] = IPOPT_END;
	return 0;
}

void ust_ip4_opts_undo(const struct ust_ip4_opts *o, uint8_t out[UST_IPV4_OPT_MAX])
{
	memcpy(out, o->data, o->len);
	if (o->srr) {
		uint8_t *d = out + o->srr - UST_IPV4_HLEN;
		memmove(d + 7, d + 3, d[1] - 7u);
		ust_put32(d + 3, o->faddr);
	}
	if (o->rr_needaddr) {
		uint8_t *d = out + o->rr - UST_IPV4_HLEN;
		d[2] -= 4;
		memset(d + d[2] - 1, 0, 4);
	}
	if (o->ts) {
		uint8_t *d = out + o->ts - UST_IPV4_HLEN;
		if (o->ts_needtime) {
			d[2] -= 4;
			memset(d + d[2] - 1, 0, 4);
			if ((d[3] & 0xf) == IPOPT_TS_PRESPEC)
				d[2] -= 4;
		}
		if (o->ts_needaddr) {
			d[2] -= 4;
			memset(d + d[2] - 1, 0, 4);
		}
	}
}

/* Linux's ip_options_build. */
void ust_ip4_opts_build(uint8_t *iph, const struct ust_ip4_opts *o, uint32_t src, uint32_t dst,
			uint32_t ms_of_day)
{
	memcpy(iph + UST_IPV4_HLEN, o->data, o->len);
	if (o->srr)
		ust_put32(iph + o->srr + iph[o->srr + 1] - 4, dst);
	if (o->rr_needaddr)
		ust_put32(iph + o->rr + iph[o->rr + 2] - 5, src);
	if (o->ts_needaddr)
		ust_put32(iph + o->ts + iph[o->ts + 2] - 9, src);
	if (o->ts_needtime)
		ust_put32(iph + o->ts + iph[o->ts + 2] - 5, ms_of_day);
}

enum ust_drop ust_icmp_parse(const uint8_t *buf, size_t len, struct ust_icmp *icmp)
{
	if (len < UST_ICMP_HLEN)
		return UST_DROP_ICMP_SHORT;
	if (ust_csum_fold(ust_csum_add(0, buf, len)) != 0)
		return UST_DROP_ICMP_CSUM;
	icmp->type = buf[0];
	icmp->code = buf[1];
	icmp->rest = ust_get32(buf + 4);
	icmp->data = buf + UST_ICMP_HLEN;
	icmp->data_len = (uint16_t)(len - UST_ICMP_HLEN);
	return UST_OK;
}

enum ust_drop ust_icmp_error_parse(const struct ust_icmp *icmp, struct ust_icmp_error *err)
{
	const uint8_t *q = icmp->data;
	size_t hlen;

	if (icmp->type != UST_ICMP_DEST_UNREACH && icmp->type != UST_ICMP_TIME_EXCEEDED &&
	    icmp->type != UST_ICMP_PARAM_PROBLEM)
		return UST_DROP_ICMP_TYPE;
	/* The quoted datagram: its IP header, then at least 8 bytes. Its
	 * checksum and total length describe the original and are not checked
	 * (routers may have altered or truncated it). */
	if (icmp->data_len < UST_IPV4_HLEN || q[0] >> 4 != 4)
		return UST_DROP_ICMP_SHORT;
	hlen = (size_t)(q[0] & 0x0f) * 4;
	if (hlen < UST_IPV4_HLEN || icmp->data_len < hlen + 8)
		return UST_DROP_ICMP_SHORT;
	err->type = icmp->type;
	err->code = icmp->code;
	err->proto = q[9];
	err->ttl = q[8];
	err->src = ust_get32(q + 12);
	err->dst = ust_get32(q + 16);
	memcpy(err->l4, q + hlen, 8);
	err->mtu = (uint16_t)(icmp->rest & 0xffff);
	return UST_OK;
}

void ust_icmp_build(uint8_t *buf, uint8_t type, uint8_t code, uint32_t rest, size_t data_len)
{
	buf[0] = type;
	buf[1] = code;
	ust_put16(buf + 2, 0);
	ust_put32(buf + 4, rest);
	ust_put16(buf + 2, ust_csum_fold(ust_csum_add(0, buf, UST_ICMP_HLEN + data_len)));
}

const char *ust_ip_str(uint32_t a, char *buf)
{
	snprintf(buf, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
	return buf;
}
