/* What a socket puts between the IP header and TCP's: IP_OPTIONS over
 * IPv4, the sticky extension headers over IPv6 (tcp.h, ip4_opts and
 * ip6_ext). Both are prepared once (wire.c, wire6.c), filled in per
 * datagram by the network layer, and take their length off the MSS as
 * Linux's icsk_ext_hdr_len does: the MSS announced stays the link's, the
 * one sent with shrinks. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tcp_impl.h"

unsigned tcp_ext_hlen(const struct ust_tcb *t)
{
	if (tcp_net_hlen(t) == UST_IPV4_HLEN)
		return t->ip4_opts ? t->ip4_opts->len : 0;
	return t->ip6_ext ? t->ip6_ext->mss_len : 0;
}

uint16_t tcp_mss_from(const struct ust_tcb *t, unsigned mss, bool ts)
{
	int m = (int)mss - (int)tcp_ext_hlen(t) - (ts ? 12 : 0);

	return (uint16_t)(m > TCP_MIN_SND_MSS ? m : TCP_MIN_SND_MSS);
}

/* A connection whose headers grew or shrank sends segments that much
 * smaller or larger from now on, worked out again from the peer's MSS and
 * the path's MTU (Linux's tcp_sync_mss after the option changed); what is
 * in flight is cut again if it goes again. */
static void ext_changed(struct ust_tcb *t, unsigned before)
{
	unsigned mss;

	if (!t->mss_path || before == tcp_ext_hlen(t))
		return;
	mss = t->mss_clamp ? t->mss_clamp : t->rcv_mss;
	if (t->pmtu && t->pmtu - tcp_net_hlen(t) - UST_TCP_HLEN < mss)
		mss = t->pmtu - tcp_net_hlen(t) - UST_TCP_HLEN;
	t->mss_path = tcp_mss_from(t, mss, t->mss_clamp ? t->ts_ok : true);
	tcp_sync_mss(t);
}

int ust_tcp_set_ip_opts(struct ust_tcb *t, const uint8_t *opt, unsigned len)
{
	unsigned before = tcp_ext_hlen(t);
	struct ust_ip4_opts o;

	if (!len) {
		free(t->ip4_opts);
		t->ip4_opts = NULL;
	} else {
		if (ust_ip4_opts_compile(&o, opt, len, ust_ip_addr_local, tcb_stack(t)) < 0)
			return -EINVAL;
		if (!t->ip4_opts && !(t->ip4_opts = malloc(sizeof(*t->ip4_opts))))
			return -ENOMEM;
		*t->ip4_opts = o;
	}
	ext_changed(t, before);
	return 0;
}

unsigned ust_tcp_kept_net(const struct ust_tcb *t, const uint8_t **net)
{
	*net = t->kept_net;
	return t->kept ? t->kept_net_len : 0;
}

unsigned ust_tcp_ip_opts(const struct ust_tcb *t, uint8_t out[UST_IPV4_OPT_MAX])
{
	if (!t->ip4_opts)
		return 0;
	ust_ip4_opts_undo(t->ip4_opts, out);
	return t->ip4_opts->len;
}

int ust_tcp_set_ip6_ext(struct ust_tcb *t, const uint8_t *const hdr[UST_IP6_EXT_HDRS],
			const unsigned len[UST_IP6_EXT_HDRS])
{
	unsigned before = tcp_ext_hlen(t);
	struct ust_ip6_ext e;

	if (ust_ip6_ext_compile(&e, hdr, len) < 0)
		return -EINVAL;
	if (!e.mss_len) {
		free(t->ip6_ext);
		t->ip6_ext = NULL;
	} else {
		if (!t->ip6_ext && !(t->ip6_ext = malloc(sizeof(*t->ip6_ext))))
			return -ENOMEM;
		*t->ip6_ext = e;
	}
	ext_changed(t, before);
	return 0;
}

int tcp_ip4_echo(struct ust_tcp *tcp, const struct ust_tcp_seg *seg, struct ust_ip4_opts *o)
{
	if (!seg->net || seg->net_len <= UST_IPV4_HLEN || seg->net_len > UST_IPV4_HLEN + UST_IPV4_OPT_MAX ||
	    seg->net[0] >> 4 != 4)
		return 0;
	if (ust_ip4_opts_echo(o, seg->net, seg->net_len, ust_ip6_to_v4(&seg->dst), ust_ip_ms_of_day(),
			      ust_ip_addr_local, tcp->st) < 0)
		return -1;
	return o->len > 0;
}

int tcp_ipext_inherit(struct ust_tcb *c, const struct ust_tcb *l, const struct ust_tcp_seg *syn)
{
	struct ust_ip4_opts echo;

	if (ust_ip6_is_v4mapped(&c->raddr)) {
		/* Linux's tcp_v4_save_options: the child answers with the
		 * echo of its SYN's options, not with its listener's. */
		if (tcp_ip4_echo(c->tcp, syn, &echo) <= 0)
			return 0; /* Linux's tcp_v4_save_options: none, if none fit */
		if (!(c->ip4_opts = malloc(sizeof(*c->ip4_opts))))
			return -ENOMEM;
		*c->ip4_opts = echo;
		return 0;
	}
	if (!l->ip6_ext)
		return 0;
	if (!(c->ip6_ext = malloc(sizeof(*c->ip6_ext))))
		return -ENOMEM;
	*c->ip6_ext = *l->ip6_ext;
	return 0;
}

void tcp_ipext_free(struct ust_tcb *t)
{
	free(t->ip4_opts);
	free(t->ip6_ext);
	t->ip4_opts = NULL;
	t->ip6_ext = NULL;
}
