/* TCP MD5 signatures (RFC 2385) as Linux's tcp_md5sig: the keys a socket
 * holds, the one that speaks for a peer, the option on the segments we
 * send and the check of those we receive.
 *
 * Keys: one per (family, address, prefix, IFINDEX flag); the longest
 * prefix matching the peer wins, the newest of equal ones
 * (__tcp_md5_do_lookup, keys added at the list's head). A listener's child
 * keeps the listener's key for its peer, as one for that address alone
 * (tcp_v4_syn_recv_sock); a TIME-WAIT keeps its connection's
 * (tcp_time_wait_init). Keys are looked up at every segment, so a key set
 * or deleted on a connection acts at its next segment, as on Linux.
 *
 * The digest (§2.0): MD5 of the pseudo-header (IPv4's 12 bytes; IPv6's
 * 40, its length and next header in 32 bits each, as Linux's
 * tcp6_pseudohdr), the TCP header's 20 bytes with the checksum zeroed,
 * the data, and the key. The option goes first among the options, as
 * NOP, NOP, kind 19, length 18, digest (tcp_options_write), but after
 * the timestamps in a timewait or request socket's ACKs
 * (tcp_v4_send_ack). Segments to a TIME-WAIT or an orphan's FIN-WAIT-2
 * (Linux's timewait socket) are not checked, as on Linux. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "md5.h"
#include "tcp_impl.h"

#define OPT_NOP 1
#define OPT_MD5 19

/* Does key k speak for peer a? Its family, and its prefix of the
 * address's bits. */
static bool key_matches(const struct ust_tcp_md5_key *k, const struct ust_ip6 *a)
{
	const uint8_t *x = k->addr.b, *y = a->b;
	unsigned bits = k->prefixlen, i;

	if (k->v4 != ust_ip6_is_v4mapped(a))
		return false;
	if (k->v4) {
		x += 12;
		y += 12;
	}
	for (i = 0; bits >= 8; i++, bits -= 8)
		if (x[i] != y[i])
			return false;
	return !bits || !((x[i] ^ y[i]) & (uint8_t)(0xff00 >> bits));
}

const struct ust_tcp_md5_key *tcp_md5_lookup(const struct ust_tcb *t, const struct ust_ip6 *peer)
{
	const struct ust_tcp_md5_key *best = NULL;

	if (!t->md5)
		return NULL;
	/* Newest first: the newest of equal prefixes wins. */
	for (unsigned i = t->md5->n; i-- > 0;) {
		const struct ust_tcp_md5_key *k = &t->md5->k[i];

		if (key_matches(k, peer) && (!best || k->prefixlen > best->prefixlen))
			best = k;
	}
	return best;
}

const struct ust_tcp_md5_key *tcp_md5_peer(const struct ust_tcb *t)
{
	return t->md5 ? tcp_md5_lookup(t, &t->raddr) : NULL;
}

static bool same_key(const struct ust_tcp_md5_key *a, const struct ust_tcp_md5_key *b)
{
	return a->v4 == b->v4 && a->prefixlen == b->prefixlen && a->ifindex_flag == b->ifindex_flag &&
	       memcmp(a->addr.b, b->addr.b, sizeof(a->addr.b)) == 0;
}

int ust_tcp_md5_set(struct ust_tcb *t, const struct ust_tcp_md5_key *key)
{
	return ust_tcp_md5_list_set(&t->md5, key);
}

/* The key to replace or delete is found as Linux's
 * tcp_md5_do_lookup_exact finds it (same_key): the whole address
 * compared, the bits beyond the prefix too (they are kept, and matching
 * masks them). */
int ust_tcp_md5_list_set(struct tcp_md5 **keys, const struct ust_tcp_md5_key *key)
{
	struct tcp_md5 *m = *keys;
	unsigned i;

	for (i = 0; m && i < m->n && !same_key(&m->k[i], key); i++)
		;
	if (!key->keylen) {
		if (!m || i == m->n)
			return -ENOENT;
		memmove(&m->k[i], &m->k[i + 1], (m->n - i - 1) * sizeof(m->k[0]));
		if (--m->n == 0) {
			free(m);
			*keys = NULL;
		}
		return 0;
	}
	if (m && i < m->n) {
		/* Replaced in place, keeping its place among equals. */
		m->k[i].keylen = key->keylen;
		memcpy(m->k[i].key, key->key, key->keylen);
		return 0;
	}
	if (m && m->n == UST_TCP_MD5_KEYS_MAX)
		return -ENOMEM;
	if (!m || m->n == m->cap) {
		unsigned cap = m ? m->cap * 2 : 1;
		struct tcp_md5 *bigger = realloc(m, sizeof(*m) + cap * sizeof(m->k[0]));

		if (!bigger)
			return -ENOMEM;
		if (!m)
			bigger->n = 0;
		bigger->cap = cap;
		*keys = m = bigger;
	}
	m->k[m->n++] = *key;
	return 0;
}

const struct ust_tcp_md5_key *ust_tcp_md5_keys(const struct ust_tcb *t, unsigned *n)
{
	return ust_tcp_md5_list(t->md5, n);
}

const struct ust_tcp_md5_key *ust_tcp_md5_list(const struct tcp_md5 *m, unsigned *n)
{
	*n = m ? m->n : 0;
	return m ? m->k : NULL;
}

struct tcp_md5 *ust_tcp_md5_take(struct ust_tcb *t)
{
	struct tcp_md5 *m = t->md5;

	t->md5 = NULL;
	return m;
}

void ust_tcp_md5_list_free(struct tcp_md5 *m)
{
	free(m);
}

bool tcp_md5_inherit(struct ust_tcb *c, const struct ust_tcb *l)
{
	const struct ust_tcp_md5_key *k = tcp_md5_lookup(l, &c->raddr);
	struct ust_tcp_md5_key own;

	if (!k)
		return true;
	own = *k;
	own.addr = c->raddr;
	own.prefixlen = own.v4 ? 32 : 128;
	return ust_tcp_md5_set(c, &own) == 0;
}

void tcp_md5_free(struct ust_tcb *t)
{
	ust_tcp_md5_list_free(ust_tcp_md5_take(t));
}

uint8_t *tcp_md5_put_opt(uint8_t *p)
{
	p[0] = OPT_NOP;
	p[1] = OPT_NOP;
	p[2] = OPT_MD5;
	p[3] = 2 + UST_MD5_LEN;
	memset(p + 4, 0, UST_MD5_LEN);
	return p + TCP_MD5_OPT_LEN;
}

/* The digest of the segment from src to dst whose TCP header (options
 * included) starts at th, tcp_len bytes with its data. */
static void digest(const struct ust_tcp_md5_key *k, const struct ust_ip6 *src, const struct ust_ip6 *dst,
		   const uint8_t *th, unsigned tcp_len, uint8_t out[UST_MD5_LEN])
{
	unsigned hlen = (unsigned)(th[12] >> 4) * 4;
	uint8_t pseudo[40], head[UST_TCP_HLEN];
	struct ust_md5 m;

	ust_md5_init(&m);
	if (ust_ip6_is_v4mapped(src)) {
		memcpy(pseudo, src->b + 12, 4);
		memcpy(pseudo + 4, dst->b + 12, 4);
		pseudo[8] = 0;
		pseudo[9] = UST_IPPROTO_TCP;
		ust_put16(pseudo + 10, (uint16_t)tcp_len);
		ust_md5_add(&m, pseudo, 12);
	} else {
		memcpy(pseudo, src->b, 16);
		memcpy(pseudo + 16, dst->b, 16);
		ust_put32(pseudo + 32, tcp_len);
		ust_put32(pseudo + 36, UST_IPPROTO_TCP);
		ust_md5_add(&m, pseudo, 40);
	}
	memcpy(head, th, UST_TCP_HLEN);
	head[16] = head[17] = 0;
	ust_md5_add(&m, head, UST_TCP_HLEN);
	ust_md5_add(&m, th + hlen, tcp_len - hlen);
	ust_md5_add(&m, k->key, k->keylen);
	ust_md5_end(&m, out);
}

void tcp_md5_sign(const struct ust_tcp_md5_key *k, const struct ust_ip6 *src, const struct ust_ip6 *dst,
		  uint8_t *th, unsigned tcp_len)
{
	unsigned hlen = (unsigned)(th[12] >> 4) * 4, i = UST_TCP_HLEN;

	/* Where tcp_build_opts put it: first, or after the timestamps. */
	while (i + 2 + UST_MD5_LEN <= hlen && th[i] != OPT_MD5)
		i += th[i] == OPT_NOP ? 1 : th[i + 1];
	if (i + 2 + UST_MD5_LEN <= hlen)
		digest(k, src, dst, th, tcp_len, th + i + 2);
}

/* Does seg carry key's signature? */
static bool signed_by(const struct ust_tcp_md5_key *k, const struct ust_tcp_seg *seg)
{
	const uint8_t *th = seg->data - seg->hlen;
	uint8_t d[UST_MD5_LEN];

	digest(k, &seg->src, &seg->dst, th, seg->hlen + seg->len, d);
	return memcmp(d, th + seg->opt.md5, UST_MD5_LEN) == 0;
}

/* Linux's tcp_inbound_hash, for a segment to a connection or a listener:
 * before anything else reads it. */
bool tcp_md5_inbound(struct ust_tcb *t, const struct ust_tcp_seg *seg)
{
	const struct ust_tcp_md5_key *k;
	enum ust_drop why;

	if (seg->opt.md5_bad) {
		why = UST_DROP_TCP_MD5_BAD_OPTION;
	} else {
		k = tcp_md5_lookup(t, &seg->src);
		if (!k && !seg->opt.md5)
			return true;
		if (k && seg->opt.md5 && signed_by(k, seg))
			return true;
		why = !seg->opt.md5 ? UST_DROP_TCP_MD5_NOT_FOUND
		      : !k          ? UST_DROP_TCP_MD5_UNEXPECTED
				    : UST_DROP_TCP_MD5_FAILURE;
	}
	tcp_drop(t->tcp, why);
	return false;
}

const struct ust_tcp_md5_key *tcp_md5_rst_key(struct ust_tcp *tcp, const struct ust_tcp_seg *seg, bool *answer)
{
	const struct ust_tcp_md5_key *k;
	struct ust_tcb *l;
	int group;

	*answer = true;
	if (!seg->opt.md5)
		return NULL;
	/* "Active side is lost": the listener on our port of the segment's
	 * source port (a BGP speaker's, which listens where it connects
	 * to) that would take the segment's address and family, its key
	 * for the peer, and the segment signed with it; or no answer at all
	 * (tcp_v4_send_reset: __inet_lookup_listener on th->source). */
	*answer = false;
	l = tcp_select_listener(tcp, seg->sport, &seg->dst, &seg->src, seg->sport, false, &group);
	if (!l || !(k = tcp_md5_lookup(l, &seg->src)) || !signed_by(k, seg))
		return NULL;
	*answer = true;
	return k;
}
