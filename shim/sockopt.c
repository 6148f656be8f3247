/* getsockopt, setsockopt and ioctl on ustcp sockets: TCP's options go to
 * the control block (through the stack thread), the socket's identity is
 * TCP's (SO_TYPE, SO_DOMAIN…), timeouts and low-water marks stay with the
 * app end where the kernel enforces them. */
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>

#include "shim.h"
#include "tcp.h"
#include "tcp_info.h"

/* TCP_CONGESTION, as Linux reads it: the name is the first 15 bytes at
 * most, up to a NUL; one that no algorithm has is ENOENT. The stack thread
 * looks it up (stack/tcp_cc.c) and switches the connection. */
static int set_congestion(struct us_sock *s, const void *val, socklen_t len)
{
	struct us_call c;

	if (!val)
		return -EFAULT;
	memset(c.u.cc, 0, sizeof(c.u.cc));
	memcpy(c.u.cc, val, len < sizeof(c.u.cc) - 1 ? len : sizeof(c.u.cc) - 1);
	return (int)us_call(&c, us_op_set_cc, s);
}

/* Its name back, as many bytes as asked for (Linux's TCP_CA_NAME_MAX, 16,
 * at most). */
static int get_congestion(struct us_sock *s, void *val, socklen_t *len)
{
	struct us_call c;
	long r;

	if (!val || !len)
		return -EFAULT;
	if ((r = us_call(&c, us_op_get_cc, s)) < 0)
		return (int)r; /* its owner is gone */
	if (*len > sizeof(c.u.cc))
		*len = sizeof(c.u.cc);
	memcpy(val, c.u.cc, *len);
	return 0;
}

/* SO_MAX_PACING_RATE, once the app end took it (and kept it for
 * getsockopt): the engine caps and paces by it. As Linux's
 * sock_setsockopt reads it: 32 bits, ~0U for no cap, or 64 when given. */
static long set_max_pacing_rate(struct us_sock *s, const void *val, socklen_t len)
{
	struct us_call c = { 0 };
	uint32_t v32;
	uint64_t rate;

	memcpy(&v32, val, sizeof(v32)); /* the kernel checked len >= 4 */
	rate = v32 == UINT32_MAX ? UINT64_MAX : v32;
	if (len >= sizeof(rate))
		memcpy(&rate, val, sizeof(rate));
	c.u.opt.level = SOL_SOCKET;
	c.u.opt.name = SO_MAX_PACING_RATE;
	c.u.opt.wide = rate;
	return us_call(&c, us_op_setopt, s);
}

/* Linux's TCP option -> the engine's. -1: not an engine option. */
static int engine_opt(int level, int name)
{
	if (level == SOL_SOCKET) {
		switch (name) {
		case SO_KEEPALIVE: return UST_TCP_OPT_KEEPALIVE;
		case SO_SNDBUF: case SO_SNDBUFFORCE: return UST_TCP_OPT_SNDBUF;
		case SO_RCVBUF: case SO_RCVBUFFORCE: return UST_TCP_OPT_RCVBUF;
		}
		return -1;
	}
	if (level != IPPROTO_TCP)
		return -1;
	switch (name) {
	case TCP_NODELAY: return UST_TCP_OPT_NODELAY;
	case TCP_KEEPIDLE: return UST_TCP_OPT_KEEPIDLE;
	case TCP_KEEPINTVL: return UST_TCP_OPT_KEEPINTVL;
	case TCP_KEEPCNT: return UST_TCP_OPT_KEEPCNT;
	case TCP_USER_TIMEOUT: return UST_TCP_OPT_USER_TIMEOUT;
	case TCP_LINGER2: return UST_TCP_OPT_LINGER2;
	case TCP_MAXSEG: return UST_TCP_OPT_MAXSEG;
	case TCP_SYNCNT: return UST_TCP_OPT_SYNCNT;
	case TCP_QUICKACK: return UST_TCP_OPT_QUICKACK;
	case TCP_CORK: return UST_TCP_OPT_CORK;
	case TCP_WINDOW_CLAMP: return UST_TCP_OPT_WINDOW_CLAMP;
	case TCP_DEFER_ACCEPT: return UST_TCP_OPT_DEFER_ACCEPT;
	}
	return -1;
}

/* Options Linux accepts that change nothing this stack does: kept so that
 * getsockopt returns what was set. */
static _Atomic int *kept(struct us_sock *s, int level, int name)
{
	if (level == SOL_SOCKET && name == SO_REUSEADDR)
		return &s->reuseaddr;
	if (level == SOL_SOCKET && name == SO_REUSEPORT)
		return &s->reuseport;
	if (level == IPPROTO_TCP && name == TCP_NOTSENT_LOWAT)
		return &s->notsent_lowat;
	return NULL;
}

static int int_arg(const void *val, socklen_t len, int *v)
{
	if (!val || len < (socklen_t)sizeof(int))
		return -EINVAL;
	memcpy(v, val, sizeof(int));
	return 0;
}

static int put_int(void *val, socklen_t *len, int v)
{
	if (!val || !len)
		return -EFAULT;
	if (*len > (socklen_t)sizeof(int))
		*len = sizeof(int);
	memcpy(val, &v, *len);
	return 0;
}

/* An IP option the engine keeps (ust_tcp_ip_opt_value checks it as
 * Linux does): the slot's copy k for getsockopt, then the engine's. */
static int engine_ip_set(struct us_sock *s, _Atomic int *k, int opt, int v)
{
	struct us_call c;
	int kept = ust_tcp_ip_opt_value((enum ust_tcp_opt)opt, v);

	if (kept < 0)
		return kept;
	atomic_store(k, kept);
	c.u.opt.level = IPPROTO_TCP;
	c.u.opt.name = opt;
	c.u.opt.val = v;
	return (int)us_call(&c, us_op_setopt, s);
}

/* ---- IPPROTO_IPV6 ----
 * As Linux's do_ipv6_setsockopt, each an int (EINVAL when shorter), only
 * on an AF_INET6 socket (ENOPROTOOPT on an AF_INET one, as
 * ip_setsockopt's): IPV6_V6ONLY, only before the socket has a port
 * (EINVAL after); IPV6_TCLASS, IPV6_UNICAST_HOPS and IPV6_MTU_DISCOVER,
 * which the engine puts in what it sends over IPv6 (tcp_output.c);
 * IPV6_MTU, 0 or 1280 at least, which TCP has no use for (its segments
 * follow the path MTU), read back as the path MTU. The other IPv6
 * options are not served (ENOPROTOOPT). */

/* Linux's IPv6 option -> the engine's. -1: not an engine option. */
static int ip6_engine_opt(int name)
{
	switch (name) {
	case IPV6_TCLASS: return UST_TCP_OPT_IPV6_TCLASS;
	case IPV6_UNICAST_HOPS: return UST_TCP_OPT_IPV6_UNICAST_HOPS;
	case IPV6_MTU_DISCOVER: return UST_TCP_OPT_IPV6_MTU_DISCOVER;
	}
	return -1;
}

static _Atomic int *ip6_kept(struct us_sock *s, int name)
{
	switch (name) {
	case IPV6_TCLASS: return &s->ip6_tclass;
	case IPV6_UNICAST_HOPS: return &s->ip6_hops;
	case IPV6_MTU_DISCOVER: return &s->ip6_pmtudisc;
	}
	return NULL;
}

static int ip6_setsockopt(struct us_sock *s, int name, const void *val, socklen_t len)
{
	_Atomic int *k = ip6_kept(s, name);
	struct us_call c;
	int v, r;

	if (atomic_load(&s->family) != AF_INET6 || (!k && name != IPV6_V6ONLY && name != IPV6_MTU))
		return -ENOPROTOOPT;
	if ((r = int_arg(val, len, &v)) < 0)
		return r;
	if (name == IPV6_MTU)
		return v && v < UST_IPV6_MIN_MTU ? -EINVAL : 0;
	if (k)
		return engine_ip_set(s, k, ip6_engine_opt(name), v);
	if (us_port(atomic_load(&s->local)) || atomic_load(&s->state) != UST_TCP_CLOSED)
		return -EINVAL;
	atomic_store(&s->v6only, v != 0);
	c.u.opt.level = IPPROTO_IPV6;
	c.u.opt.name = IPV6_V6ONLY;
	c.u.opt.val = v != 0;
	return (int)us_call(&c, us_op_setopt, s);
}

static int ip6_getsockopt(struct us_sock *s, int name, void *val, socklen_t *len)
{
	_Atomic int *k = ip6_kept(s, name);
	struct us_call c;
	int v;

	if (atomic_load(&s->family) != AF_INET6)
		return -ENOPROTOOPT;
	switch (name) {
	case IPV6_V6ONLY:
		return put_int(val, len, atomic_load(&s->v6only));
	case IPV6_MTU:
		/* The path MTU of a connection; none without one (Linux: no
		 * route cached). */
		c.u.opt.level = IPPROTO_TCP;
		c.u.opt.name = UST_TCP_OPT_IP_MTU;
		if (us_call(&c, us_op_getopt, s) < 0)
			return -ENOTCONN;
		return put_int(val, len, c.u.opt.val);
	case IPV6_TCLASS:
		/* With the ECN field of the last segment sent, as Linux's
		 * np->tclass has it, while TCP has the connection. */
		c.u.opt.level = IPPROTO_TCP;
		c.u.opt.name = UST_TCP_OPT_IPV6_TCLASS;
		if (us_call(&c, us_op_getopt, s) == 0)
			return put_int(val, len, c.u.opt.val);
		break;
	}
	if (!k)
		return -ENOPROTOOPT;
	v = atomic_load(k);
	return put_int(val, len, name == IPV6_UNICAST_HOPS && v == UST_TCP_HOPS_DEFAULT ? UST_IPV6_HOP_LIMIT_DEFAULT
											    : v);
}

/* ---- IPPROTO_IP ---- */

/* Linux's IPv4 option -> the engine's. -1: not an engine option. */
static int ip_engine_opt(int name)
{
	switch (name) {
	case IP_TOS: return UST_TCP_OPT_IP_TOS;
	case IP_TTL: return UST_TCP_OPT_IP_TTL;
	case IP_MTU_DISCOVER: return UST_TCP_OPT_IP_MTU_DISCOVER;
	case IP_MTU: return UST_TCP_OPT_IP_MTU;
	}
	return -1;
}

/* The slot's copy of what the engine keeps, which getsockopt reads. */
static _Atomic int *ip_kept(struct us_sock *s, int name)
{
	switch (name) {
	case IP_TOS: return &s->ip_tos;
	case IP_TTL: return &s->ip_ttl;
	case IP_MTU_DISCOVER: return &s->ip_pmtudisc;
	}
	return NULL;
}

/* Linux's do_ip_setsockopt reads an int, or a single unsigned char when
 * optlen is shorter (issue 14, 13e), or nothing (0) when optlen is 0. */
static int ip_int_arg(const void *val, socklen_t len, int *v)
{
	unsigned char b;

	*v = 0;
	if (len && !val)
		return -EFAULT;
	if (len >= (socklen_t)sizeof(int)) {
		memcpy(v, val, sizeof(int));
	} else if (len) {
		memcpy(&b, val, 1);
		*v = b;
	}
	return 0;
}

/* And do_ip_getsockopt writes a single byte to a buffer shorter than an
 * int when the value fits in one. */
static int ip_put_int(void *val, socklen_t *len, int v)
{
	unsigned char b = (unsigned char)v;

	if (!val || !len)
		return -EFAULT;
	if ((int)*len < 0)
		return -EINVAL;
	if (*len > 0 && *len < (socklen_t)sizeof(int) && v >= 0 && v <= 255) {
		*len = 1;
		memcpy(val, &b, 1);
		return 0;
	}
	return put_int(val, len, v);
}

/* IP_TOS, IP_TTL, IP_MTU_DISCOVER: the engine puts them in the header of
 * every segment (tcp_output.c); hints Linux accepts and this stack has no
 * use for are taken as they are. */
static int ip_setsockopt(struct us_sock *s, int name, const void *val, socklen_t len)
{
	_Atomic int *k = ip_kept(s, name);
	int v, r;

	if ((r = ip_int_arg(val, len, &v)) < 0)
		return r;
	if (!k)
		return name == IP_BIND_ADDRESS_NO_PORT || name == IP_RECVERR || name == IP_FREEBIND
			       ? 0 : -ENOPROTOOPT;
	return engine_ip_set(s, k, ip_engine_opt(name), v);
}

static int ip_getsockopt(struct us_sock *s, int name, void *val, socklen_t *len)
{
	_Atomic int *k = ip_kept(s, name);
	struct us_call c;
	int v;

	/* IP_TOS: with the ECN field of the last segment sent, as Linux's
	 * inet->tos has it, while TCP has the connection. */
	c.u.opt.level = IPPROTO_TCP;
	c.u.opt.name = UST_TCP_OPT_IP_TOS;
	if (name == IP_TOS && us_call(&c, us_op_getopt, s) == 0)
		return ip_put_int(val, len, c.u.opt.val);
	if (k) {
		v = atomic_load(k);
		return ip_put_int(val, len, name == IP_TTL && !v ? UST_IP_TTL_DEFAULT : v);
	}
	if (name != IP_MTU)
		return -ENOPROTOOPT;
	/* The path MTU of a connection; none without one (Linux: no route
	 * cached). */
	c.u.opt.level = IPPROTO_TCP;
	c.u.opt.name = UST_TCP_OPT_IP_MTU;
	if (us_call(&c, us_op_getopt, s) < 0)
		return -ENOTCONN;
	return ip_put_int(val, len, c.u.opt.val);
}

/* Keeps what a not yet connected socket was told, for the kernel socket
 * that replaces it if it turns out to go to a USTCP_PASSTHROUGH address. */
static void record(struct us_sock *s, int level, int name, const void *val, socklen_t len)
{
	int n = atomic_load(&s->nopts);

	if (atomic_load(&s->state) != UST_TCP_CLOSED || !val || len > sizeof(s->opts[0].val))
		return;
	for (int i = 0; i < n; i++) {
		if (s->opts[i].level == level && s->opts[i].name == name) {
			memcpy(s->opts[i].val, val, len);
			s->opts[i].len = len;
			return;
		}
	}
	if (n >= US_OPT_RECORD)
		return;
	s->opts[n].level = level;
	s->opts[n].name = name;
	s->opts[n].len = len;
	memcpy(s->opts[n].val, val, len);
	atomic_store(&s->nopts, n + 1);
}

US_EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	struct us_sock *s = us_fd_lookup(fd);
	struct us_call c;
	_Atomic int *k;
	int opt, v, r;

	if (!s)
		return REAL(setsockopt)(fd, level, name, val, len);
	record(s, level, name, val, len);
	if (level == SOL_SOCKET && name == SO_LINGER) {
		struct linger lg;
		if (!val || len < (socklen_t)sizeof(lg))
			return (int)us_ret(-EINVAL);
		memcpy(&lg, val, sizeof(lg));
		atomic_store(&s->linger_on, lg.l_onoff != 0);
		atomic_store(&s->linger_s, lg.l_linger < 0 ? 0 : lg.l_linger);
		c.u.opt.level = SOL_SOCKET;
		c.u.opt.name = SO_LINGER;
		return (int)us_ret(us_call(&c, us_op_setopt, s));
	}
	if (level == IPPROTO_IP)
		return (int)us_ret(ip_setsockopt(s, name, val, len));
	if (level == IPPROTO_IPV6)
		return (int)us_ret(ip6_setsockopt(s, name, val, len));
	if ((k = kept(s, level, name))) {
		if ((r = int_arg(val, len, &v)) < 0)
			return (int)us_ret(r);
		atomic_store(k, v);
		if (level == IPPROTO_TCP && name == TCP_NOTSENT_LOWAT) {
			/* The relay keeps the pair's fill by it (relay.c). */
			c.u.opt.level = US_OPT_RELAY;
			c.u.opt.name = TCP_NOTSENT_LOWAT;
			us_call(&c, us_op_setopt, s);
		}
		return 0;
	}
	opt = engine_opt(level, name);
	if (opt >= 0) {
		if ((r = int_arg(val, len, &v)) < 0)
			return (int)us_ret(r);
		c.u.opt.level = IPPROTO_TCP;
		c.u.opt.name = opt;
		c.u.opt.val = v;
		return (int)us_ret(us_call(&c, us_op_setopt, s));
	}
	if (level == SOL_SOCKET) {
		/* Blocking reads look at these only once they were set
		 * (io.c). */
		if (name == SO_RCVLOWAT || name == SO_RCVTIMEO_OLD || name == SO_RCVTIMEO_NEW)
			atomic_fetch_or(&s->flags, US_F_RCVOPTS);
		if (name == SO_BUSY_POLL)
			atomic_fetch_or(&s->flags, US_F_BUSY_POLL);
		r = REAL(setsockopt)(fd, level, name, val, len); /* timeouts, low-water marks… */
		if (r == 0 && name == SO_MAX_PACING_RATE)
			return (int)us_ret(set_max_pacing_rate(s, val, len));
		if (r == 0 && name == SO_RCVLOWAT && int_arg(val, len, &v) == 0) {
			/* poll and epoll as well: the stack holds bytes back. */
			c.u.opt.level = SOL_SOCKET;
			c.u.opt.name = SO_RCVLOWAT;
			c.u.opt.val = v;
			us_call(&c, us_op_setopt, s);
		}
		return r;
	}
	if (level == IPPROTO_TCP && name == TCP_CONGESTION)
		return (int)us_ret(set_congestion(s, val, len));
	return (int)us_ret(-ENOPROTOOPT);
}

/* Linux's TCP_INFO state numbers. */
static uint8_t linux_state(int st)
{
	static const uint8_t map[UST_TCP_NSTATES] = {
		[UST_TCP_CLOSED] = TCP_CLOSE, [UST_TCP_LISTEN] = TCP_LISTEN,
		[UST_TCP_SYN_SENT] = TCP_SYN_SENT, [UST_TCP_SYN_RECEIVED] = TCP_SYN_RECV,
		[UST_TCP_ESTABLISHED] = TCP_ESTABLISHED, [UST_TCP_CLOSE_WAIT] = TCP_CLOSE_WAIT,
		[UST_TCP_FIN_WAIT_1] = TCP_FIN_WAIT1, [UST_TCP_CLOSING] = TCP_CLOSING,
		[UST_TCP_LAST_ACK] = TCP_LAST_ACK, [UST_TCP_FIN_WAIT_2] = TCP_FIN_WAIT2,
		[UST_TCP_TIME_WAIT] = TCP_TIME_WAIT,
	};
	return st >= 0 && st < UST_TCP_NSTATES ? map[st] : TCP_CLOSE;
}

static uint32_t us_to_ms(ust_time us)
{
	return (uint32_t)(us / 1000);
}

/* TCP_INFO as Linux 6.18's tcp_get_info fills it: each field from the
 * engine's status, in Linux's units (µs for rto, ato and the RTTs, ms ago
 * for the last_* times, segments for the window and the scoreboard). */
static void fill_tcp_info(struct ust_linux_tcp_info *ti, const struct ust_tcp_status *st)
{
	const struct tcp_stats *c = &st->stats;

	ti->tcpi_state = linux_state((int)st->state);
	ti->tcpi_ca_state = (uint8_t)st->ca_state;
	ti->tcpi_retransmits = (uint8_t)st->retransmits;
	ti->tcpi_backoff = (uint8_t)st->backoff;
	ti->tcpi_options = (uint8_t)((st->ts_ok ? UST_TCPI_OPT_TIMESTAMPS : 0) |
				     (st->sack_ok ? UST_TCPI_OPT_SACK : 0) |
				     (st->ws_ok ? UST_TCPI_OPT_WSCALE : 0) |
				     (st->ecn_ok ? UST_TCPI_OPT_ECN : 0) |
				     (st->ecn_seen ? UST_TCPI_OPT_ECN_SEEN : 0));
	if (st->ws_ok)
		ti->tcpi_wscales = (uint8_t)((st->snd_wscale & 15) | (st->rcv_wscale & 15) << 4);
	ti->tcpi_rate_flags = st->delivery_rate_app_limited ? 1 : 0;
	ti->tcpi_rto = (uint32_t)st->rto;
	ti->tcpi_ato = (uint32_t)st->ato;
	ti->tcpi_snd_mss = st->mss;
	ti->tcpi_rcv_mss = st->rcv_seg_mss;
	ti->tcpi_unacked = st->packets_out;
	ti->tcpi_sacked = st->sacked_out;
	ti->tcpi_lost = st->lost_out;
	ti->tcpi_retrans = st->retrans_out;
	ti->tcpi_last_data_sent = us_to_ms(st->since_data_sent);
	ti->tcpi_last_data_recv = us_to_ms(st->since_data_recv);
	ti->tcpi_last_ack_recv = us_to_ms(st->since_ack_recv);
	ti->tcpi_pmtu = st->pmtu;
	ti->tcpi_rcv_ssthresh = st->rcv_ssthresh;
	ti->tcpi_rtt = (uint32_t)st->srtt;
	ti->tcpi_rttvar = (uint32_t)st->rttvar;
	ti->tcpi_snd_ssthresh = st->ssthresh;
	ti->tcpi_snd_cwnd = st->cwnd;
	ti->tcpi_advmss = st->advmss;
	ti->tcpi_reordering = st->reordering;
	ti->tcpi_rcv_rtt = (uint32_t)st->rcv_rtt;
	ti->tcpi_rcv_space = st->rcv_space;
	ti->tcpi_total_retrans = (uint32_t)st->total_retrans;
	ti->tcpi_pacing_rate = st->info_pacing_rate;
	ti->tcpi_max_pacing_rate = st->max_pacing_rate;
	ti->tcpi_bytes_acked = c->bytes_acked;
	ti->tcpi_bytes_received = c->bytes_received;
	ti->tcpi_segs_out = c->segs_out;
	ti->tcpi_segs_in = c->segs_in;
	ti->tcpi_notsent_bytes = st->notsent;
	ti->tcpi_min_rtt = (uint32_t)st->min_rtt;
	ti->tcpi_data_segs_in = c->data_segs_in;
	ti->tcpi_data_segs_out = c->data_segs_out;
	ti->tcpi_delivery_rate = st->delivery_rate;
	ti->tcpi_busy_time = (uint64_t)st->busy_time;
	ti->tcpi_rwnd_limited = (uint64_t)st->rwnd_limited;
	ti->tcpi_sndbuf_limited = (uint64_t)st->sndbuf_limited;
	ti->tcpi_delivered = (uint32_t)st->delivered;
	ti->tcpi_delivered_ce = c->delivered_ce;
	ti->tcpi_bytes_sent = c->bytes_sent;
	ti->tcpi_bytes_retrans = c->bytes_retrans;
	ti->tcpi_dsack_dups = st->dsacks;
	ti->tcpi_reord_seen = st->reord_seen;
	ti->tcpi_rcv_ooopack = c->rcv_ooopack;
	ti->tcpi_snd_wnd = st->snd_wnd;
	ti->tcpi_rcv_wnd = st->rcv_wnd;
	ti->tcpi_total_rto = c->total_rto;
	ti->tcpi_total_rto_recoveries = c->total_rto_recoveries;
	ti->tcpi_total_rto_time = c->total_rto_time;
	ti->tcpi_received_ce = c->received_ce;
}

static int tcp_info(struct us_sock *s, void *val, socklen_t *len)
{
	struct ust_linux_tcp_info ti;
	struct ust_tcp_status st;

	memset(&ti, 0, sizeof(ti));
	if (us_status(s, &st) < 0) {
		/* Never connected, or a listener TCP let go of: only the
		 * state is known (a connection that ended keeps its last
		 * status, us_op_status). */
		ti.tcpi_state = linux_state(atomic_load(&s->state));
	} else {
		fill_tcp_info(&ti, &st);
	}
	if (!val || !len)
		return -EFAULT;
	/* A shorter buffer gets the prefix, as Linux's do_tcp_getsockopt. */
	if (*len > (socklen_t)sizeof(ti))
		*len = sizeof(ti);
	memcpy(val, &ti, *len);
	return 0;
}

US_EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct us_sock *s = us_fd_lookup(fd);
	struct us_call c;
	_Atomic int *k;
	int opt, r;

	if (!s)
		return REAL(getsockopt)(fd, level, name, val, len);
	if (level == SOL_SOCKET) {
		switch (name) {
		case SO_TYPE: return (int)us_ret(put_int(val, len, SOCK_STREAM));
		case SO_DOMAIN: return (int)us_ret(put_int(val, len, atomic_load(&s->family)));
		case SO_PROTOCOL: return (int)us_ret(put_int(val, len, IPPROTO_TCP));
		case SO_ACCEPTCONN:
			return (int)us_ret(put_int(val, len, atomic_load(&s->kind) == US_LISTENER));
		case SO_ERROR: return (int)us_ret(put_int(val, len, us_take_error(fd, s)));
		case SO_LINGER: {
			struct linger lg = { atomic_load(&s->linger_on), atomic_load(&s->linger_s) };
			if (!val || !len)
				return (int)us_ret(-EFAULT);
			if (*len > (socklen_t)sizeof(lg))
				*len = sizeof(lg);
			memcpy(val, &lg, *len);
			return 0;
		}
		}
	}
	if ((k = kept(s, level, name)))
		return (int)us_ret(put_int(val, len, atomic_load(k)));
	if (level == IPPROTO_IP)
		return (int)us_ret(ip_getsockopt(s, name, val, len));
	if (level == IPPROTO_IPV6)
		return (int)us_ret(ip6_getsockopt(s, name, val, len));
	if (level == IPPROTO_TCP && name == TCP_INFO)
		return (int)us_ret(tcp_info(s, val, len));
	if (level == IPPROTO_TCP && name == TCP_CONGESTION)
		return (int)us_ret(get_congestion(s, val, len));
	opt = engine_opt(level, name);
	if (opt >= 0) {
		c.u.opt.level = IPPROTO_TCP;
		c.u.opt.name = opt;
		r = (int)us_call(&c, us_op_getopt, s);
		if (r < 0)
			return (int)us_ret(r);
		return (int)us_ret(put_int(val, len, c.u.opt.val));
	}
	if (level == SOL_SOCKET)
		return REAL(getsockopt)(fd, level, name, val, len);
	return (int)us_ret(-ENOPROTOOPT);
}

US_EXPORT int ioctl(int fd, unsigned long req, ...)
{
	struct us_sock *s;
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	s = (req == SIOCOUTQ || req == SIOCOUTQNSD) ? us_fd_get(fd) : NULL;
	if (s) {
		/* Bytes not yet acknowledged: TCP's send ring (the bytes still
		 * in the pair are a few at most: the stack takes them as room
		 * opens). */
		struct ust_tcp_status st;
		if (us_status(s, &st) < 0)
			st.snd_queued = 0;
		if (!arg)
			return (int)us_ret(-EFAULT);
		*(int *)arg = (int)st.snd_queued;
		return 0;
	}
	/* FIONREAD/SIOCINQ: what the app end holds, pushed there as soon as
	 * it arrives in order. FIONBIO and the rest: the app end's. */
	return REAL(ioctl)(fd, req, arg);
}
