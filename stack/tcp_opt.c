/* TCP segments on the wire: parsing (header, checksum, options) and the
 * options of the segments we send. */
#include <string.h>

#include "csum.h"
#include "md5.h"
#include "tcp_impl.h"

#define OPT_EOL 0
#define OPT_NOP 1
#define OPT_MSS 2
#define OPT_WSCALE 3
#define OPT_SACK_PERM 4
#define OPT_SACK 5
#define OPT_TS 8
#define OPT_MD5 19

/* Where an MD5 signature is, as Linux 6.18 (built without TCP-AO, as the
 * one measured) finds it in tcp_inbound_hash (tcp_do_parse_auth_options),
 * for a socket with keys or without: options are walked only while 18
 * bytes or more are left (no signature fits in fewer), and there an
 * option whose length is below 2 or runs past the header, a kind 19
 * option of a length other than 18, or a second signature make the
 * segment one to drop (md5_bad; Linux's TCP_AUTH_HDR, counted by no MIB).
 * Malformed options with fewer bytes left are ust_tcp_parse_opts' alone,
 * which refuses no segment for them. Measured: kernel_peer.py
 * md5-options. */
static void auth_opts(const uint8_t *p, unsigned len, struct ust_tcp_opts *o)
{
	unsigned i = 0;

	while (len - i >= 2 + UST_MD5_LEN) {
		uint8_t kind = p[i], size;

		if (kind == OPT_EOL)
			return;
		if (kind == OPT_NOP) {
			i++;
			continue;
		}
		size = p[i + 1];
		if (size < 2 || size > len - i || (kind == OPT_MD5 && (size != 2 + UST_MD5_LEN || o->md5))) {
			o->md5_bad = true;
			return;
		}
		if (kind == OPT_MD5)
			o->md5 = (uint8_t)(UST_TCP_HLEN + i + 2); /* the digest, where tcp_md5.c reads it */
		i += size;
	}
}

/* As Linux's tcp_parse_options: an option whose length is below 2 or runs
 * past the header ends the parsing, and what was read stands; the segment
 * itself is not refused. Options that only mean something on a SYN are
 * ignored elsewhere; a window scale above 14 is taken as 14 (RFC 7323 §2.3). */
enum ust_drop ust_tcp_parse_opts(const uint8_t *p, unsigned len, bool syn, struct ust_tcp_opts *o)
{
	unsigned i = 0;

	memset(o, 0, sizeof(*o));
	o->wscale = -1;
	while (i < len) {
		uint8_t kind = p[i], size;

		if (kind == OPT_EOL)
			break;
		if (kind == OPT_NOP) {
			i++;
			continue;
		}
		if (i + 1 >= len)
			break;
		size = p[i + 1];
		if (size < 2 || size > len - i)
			break;
		switch (kind) {
		case OPT_MSS:
			if (size == 4 && syn)
				o->mss = ust_get16(p + i + 2);
			break;
		case OPT_WSCALE:
			if (size == 3 && syn)
				o->wscale = (int8_t)(p[i + 2] > 14 ? 14 : p[i + 2]);
			break;
		case OPT_SACK_PERM:
			if (size == 2 && syn)
				o->sack_ok = true;
			break;
		case OPT_TS:
			if (size == 10) {
				o->ts = true;
				o->ts_val = ust_get32(p + i + 2);
				o->ts_ecr = ust_get32(p + i + 6);
			}
			break;
		case OPT_SACK:
			if (size >= 10 && (size - 2) % 8 == 0) {
				unsigned n = (size - 2u) / 8;
				o->nsack = (uint8_t)(n > 4 ? 4 : n);
				for (unsigned k = 0; k < o->nsack; k++) {
					o->sack[k].start = ust_get32(p + i + 2 + 8 * k);
					o->sack[k].end = ust_get32(p + i + 6 + 8 * k);
				}
			}
			break;
		default:
			break;
		}
		i += size;
	}
	auth_opts(p, len, o);
	return UST_OK;
}

/* The fields of a segment whose pseudo-header sums to sum (checked unless
 * csum_ok): both families' parsers end here. */
static enum ust_drop parse_segment(const uint8_t *p, unsigned len, uint32_t sum, bool csum_ok, uint8_t ecn,
				   struct ust_tcp_seg *seg)
{
	unsigned hlen;

	if (len < UST_TCP_HLEN)
		return UST_DROP_TCP_SHORT;
	hlen = (unsigned)(p[12] >> 4) * 4;
	if (hlen < UST_TCP_HLEN || hlen > len)
		return UST_DROP_TCP_SHORT;
	if (!csum_ok && ust_csum_fold(ust_csum_add(sum, p, len)) != 0)
		return UST_DROP_TCP_CSUM;
	seg->sport = ust_get16(p);
	seg->dport = ust_get16(p + 2);
	seg->seq = ust_get32(p + 4);
	seg->ack = ust_get32(p + 8);
	seg->flags = p[13];
	seg->ecn = ecn & UST_ECN_MASK;
	seg->wnd = ust_get16(p + 14);
	seg->up = ust_get16(p + 18);
	seg->data = p + hlen;
	seg->len = len - hlen;
	seg->hlen = (uint8_t)hlen;
	return ust_tcp_parse_opts(p + UST_TCP_HLEN, hlen - UST_TCP_HLEN,
				  seg->flags & UST_TH_SYN, &seg->opt);
}

enum ust_drop ust_tcp_parse(const struct ust_ipv4 *ip, bool csum_ok, struct ust_tcp_seg *seg)
{
	uint32_t sum = csum_ok ? 0 : ust_csum_pseudo(ip->src, ip->dst, UST_IPPROTO_TCP, ip->payload_len);

	seg->src = ust_ip6_from_v4(ip->src);
	seg->dst = ust_ip6_from_v4(ip->dst);
	seg->flow = 0;
	seg->hops = ip->ttl;
	seg->net = ip->payload - ip->hlen;
	seg->net_len = ip->hlen;
	seg->mac_len = 0;
	return parse_segment(ip->payload, ip->payload_len, sum, csum_ok, ip->tos, seg);
}

enum ust_drop ust_tcp_parse6(const struct ust_ipv6 *ip, bool csum_ok, struct ust_tcp_seg *seg)
{
	uint32_t sum = csum_ok ? 0 : ust_csum_pseudo6(&ip->src, &ip->dst, UST_IPPROTO_TCP, ip->payload_len);

	seg->src = ip->src;
	seg->dst = ip->dst;
	seg->flow = ip->flow & UST_IPV6_FLOW_MASK;
	seg->hops = ip->hop_limit;
	seg->net = ip->hdr;
	seg->net_len = ip->hdr ? (uint16_t)(ip->payload - ip->hdr) : 0;
	seg->mac_len = 0;
	return parse_segment(ip->payload, ip->payload_len, sum, csum_ok, ip->tclass, seg);
}

static uint8_t *put_ts(uint8_t *p, uint32_t val, uint32_t ecr)
{
	p[0] = OPT_NOP;
	p[1] = OPT_NOP;
	p[2] = OPT_TS;
	p[3] = 10;
	ust_put32(p + 4, val);
	ust_put32(p + 8, ecr);
	return p + 12;
}

/* SACK blocks that fit beside the other options: 40 bytes less 20 for a
 * signature and 12 for timestamps, 4 for the option's head, 8 a block
 * (Linux's tcp_established_options: 4, 3 with timestamps, 2 with a
 * signature, none with both). */
static unsigned sack_room(const struct ust_tcb *t, bool md5)
{
	return (UST_TCP_OPT_MAX - 4 - (md5 ? TCP_MD5_OPT_LEN : 0) - (t->ts_ok ? 12u : 0u)) / 8;
}

unsigned tcp_opt_extra_len(const struct ust_tcb *t)
{
	bool md5 = tcp_md5_peer(t) != NULL;
	unsigned n, room;

	if (!t->sack_ok || !(t->ofo.n || t->ofo_fin || t->dsack))
		return md5 ? TCP_MD5_OPT_LEN : 0;
	room = sack_room(t, md5);
	n = (t->ofo.n < 4 ? t->ofo.n : 4) + t->ofo_fin + t->dsack;
	if (n > room)
		n = room;
	return (md5 ? TCP_MD5_OPT_LEN : 0) + (n ? 4 + 8 * n : 0);
}

/* A SYN's or SYN-ACK's options, in the order Linux uses: mss, sackOK, TS,
 * nop, wscale. A SYN-ACK echoes only what the SYN offered. A SYN with a
 * signature offers no timestamps (tcp_syn_options); a SYN-ACK's were
 * settled by apply_syn_options. */
static uint8_t *put_syn_opts(const struct ust_tcb *t, bool synack, bool md5, ust_time now, uint8_t *p)
{
	bool sack = synack ? t->sack_ok : true;
	bool ts = synack ? t->ts_ok : !md5;
	bool ws = synack ? t->ws_ok : true;

	p[0] = OPT_MSS;
	p[1] = 4;
	ust_put16(p + 2, t->rcv_mss);
	p += 4;
	if (sack && ts) {
		p[0] = OPT_SACK_PERM;
		p[1] = 2;
		p[2] = OPT_TS;
		p[3] = 10;
		ust_put32(p + 4, tcp_ts_now(t, now));
		/* A SYN echoes 0, or the TSval a TIME-WAIT it took over
		 * had (Linux's tcp_syn_options sends rx_opt.ts_recent). */
		ust_put32(p + 8, t->ts_recent);
		p += 12;
	} else if (ts) {
		p = put_ts(p, tcp_ts_now(t, now), t->ts_recent);
	} else if (sack) {
		p[0] = OPT_NOP;
		p[1] = OPT_NOP;
		p[2] = OPT_SACK_PERM;
		p[3] = 2;
		p += 4;
	}
	if (ws) {
		p[0] = OPT_NOP;
		p[1] = OPT_WSCALE;
		p[2] = 3;
		p[3] = t->rcv_wscale;
		p += 4;
	}
	return p;
}

/* The out-of-order ranges to report, up to max: those that hold the
 * segments reported lately, newest first (tcp_sack_note), then any others,
 * lowest first, while room is left. */
static unsigned ofo_blocks(const struct ust_tcb *t, struct ust_range *r, unsigned max)
{
	int used[4];
	unsigned n = tcp_sack_recent(t, used), out = 0;

	for (unsigned i = 0; i < n && out < max; i++)
		r[out++] = t->ofo.r[used[i]];
	for (unsigned j = 0; j < t->ofo.n && out < max; j++) {
		bool dup = false;
		for (unsigned k = 0; k < n && !dup; k++)
			dup = used[k] == (int)j;
		if (!dup)
			r[out++] = t->ofo.r[j];
	}
	return out;
}

/* The blocks to report: a D-SACK block first (RFC 2883 §4), then what we
 * hold out of order, the block of the newest segment first (RFC 2018 §4),
 * and a FIN held beyond a gap (Linux SACKs it as one sequence number): it
 * extends the block it ends, or is a block of its own. Returns how many,
 * at most max. */
static unsigned sack_blocks(const struct ust_tcb *t, struct ust_range *r, unsigned max)
{
	unsigned n = 0, i;

	if (t->dsack) {
		r[0].start = t->dsack_start;
		r[0].end = t->dsack_end;
		n = 1;
	}
	n += ofo_blocks(t, r + n, max - n);
	if (!t->ofo_fin)
		return n;
	for (i = t->dsack; i < n && r[i].end != t->ofo_fin_seq; i++)
		;
	if (i < n) {
		r[i].end++;
	} else {
		unsigned at = t->dsack; /* after a D-SACK block */
		if (n == max)
			n--;
		memmove(&r[at + 1], &r[at], (n - at) * sizeof(r[0]));
		r[at].start = t->ofo_fin_seq;
		r[at].end = t->ofo_fin_seq + 1;
		n++;
	}
	return n;
}

unsigned tcp_build_opts(const struct ust_tcb *t, const struct ust_tcp_md5_key *md5, bool ts_first, uint8_t flags,
			ust_time now, uint8_t *p)
{
	uint8_t *start = p;
	struct ust_range r[4];
	unsigned n;

	/* The signature first (tcp_options_write), but after the
	 * timestamps in what a timewait or request socket sends
	 * (tcp_v4_send_ack). */
	if (md5 && !ts_first)
		p = tcp_md5_put_opt(p);
	if (flags & UST_TH_SYN)
		return (unsigned)(put_syn_opts(t, flags & UST_TH_ACK, md5, now, p) - start);
	if (t->ts_ok)
		p = put_ts(p, tcp_ts_now(t, now), t->ts_recent);
	if (md5 && ts_first)
		p = tcp_md5_put_opt(p);
	/* A RST carries no SACK blocks. */
	if (!t->sack_ok || !(t->ofo.n || t->ofo_fin || t->dsack) || (flags & UST_TH_RST) ||
	    !(n = sack_room(t, md5)))
		return (unsigned)(p - start);
	n = sack_blocks(t, r, n);
	p[0] = OPT_NOP;
	p[1] = OPT_NOP;
	p[2] = OPT_SACK;
	p[3] = (uint8_t)(2 + 8 * n);
	p += 4;
	for (unsigned i = 0; i < n; i++, p += 8) {
		ust_put32(p, r[i].start);
		ust_put32(p + 4, r[i].end);
	}
	return (unsigned)(p - start);
}
