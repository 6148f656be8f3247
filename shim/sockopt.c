/* getsockopt, setsockopt and ioctl on ustcp sockets: TCP's options go to
 * the control block (through the stack thread), the socket's identity is
 * TCP's (SO_TYPE, SO_DOMAIN…), timeouts and low-water marks stay with the
 * app end where the kernel enforces them. */
#include <errno.h>
#include <linux/net_tstamp.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "shim.h"
#include "sysctl.h"
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

/* TCP_MD5SIG and TCP_MD5SIG_EXT, as Linux's tcp_v4_parse_md5_keys and
 * tcp_v6_parse_md5_keys read struct tcp_md5sig: the address of the
 * socket's family (an IPv4 one mapped on an AF_INET6 socket, kept as an
 * IPv4 key), its prefix only with TCP_MD5SIG_EXT and its flag, a key of
 * at most 80 bytes, none to delete. An interface index is an L3 master
 * device's (a VRF's) on Linux; the stack has none: EINVAL, as Linux
 * answers any other device. */
static long set_md5(struct us_sock *s, int name, const void *val, socklen_t len)
{
	struct ust_linux_md5sig cmd;
	struct us_call c;
	struct ust_tcp_md5_key *k = &c.u.md5.key;
	bool ext = name == TCP_MD5SIG_EXT;
	unsigned max;

	if (len < sizeof(cmd))
		return -EINVAL;
	if (!val)
		return -EFAULT;
	memcpy(&cmd, val, sizeof(cmd));
	memset(k, 0, sizeof(*k));
	if (atomic_load(&s->family) == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&cmd.addr;

		if (sin->sin_family != AF_INET)
			return -EINVAL;
		k->v4 = true;
		k->addr = ust_ip6_from_v4(ntohl(sin->sin_addr.s_addr));
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&cmd.addr;

		if (sin6->sin6_family != AF_INET6)
			return -EINVAL;
		k->v4 = IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr);
		memcpy(k->addr.b, &sin6->sin6_addr, sizeof(k->addr.b));
	}
	max = k->v4 ? 32 : 128;
	k->prefixlen = (uint8_t)max;
	if (ext && (cmd.flags & UST_LINUX_MD5SIG_FLAG_PREFIX)) {
		if (cmd.prefixlen > max)
			return -EINVAL;
		k->prefixlen = cmd.prefixlen;
	}
	if (ext && cmd.ifindex && (cmd.flags & UST_LINUX_MD5SIG_FLAG_IFINDEX))
		return -EINVAL;
	k->ifindex_flag = cmd.flags & UST_LINUX_MD5SIG_FLAG_IFINDEX;
	if (cmd.keylen > UST_TCP_MD5_KEYLEN_MAX) /* none (0) deletes */
		return -EINVAL;
	k->keylen = (uint8_t)cmd.keylen;
	memcpy(k->key, cmd.key, k->keylen);
	if (k->keylen)
		atomic_fetch_or(&s->flags, US_F_MD5);
	return us_call(&c, us_op_md5, s);
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

/* TCP_SAVED_SYN: the headers the stack kept in the slot at accept, once,
 * as Linux's (EINVAL, and the length they need, for a shorter buffer;
 * length 0 when there are none). */
static int get_saved_syn(struct us_sock *s, void *val, socklen_t *len)
{
	struct us_ip_opts *o = us_sock_ipopts(s);
	unsigned n = atomic_load(&o->saved_syn_len);

	if (!len)
		return -EFAULT;
	if (!n) {
		*len = 0;
		return 0;
	}
	if (*len < n) {
		*len = n;
		return -EINVAL;
	}
	if (!val)
		return -EFAULT;
	memcpy(val, o->saved_syn, n);
	/* Once: of two readers at a time, one gets them (Linux's socket
	 * lock), the other none. */
	if (!atomic_compare_exchange_strong(&o->saved_syn_len, &(uint16_t){ (uint16_t)n }, 0))
		n = 0;
	*len = n;
	return 0;
}

/* TCP_CC_INFO: the algorithm's model as Linux's get_info gives it (BBR's
 * 20 bytes, nothing for Reno and CUBIC), cut to the length asked for. */
static int get_cc_info(struct us_sock *s, void *val, socklen_t *len)
{
	struct us_call c;
	long r;

	if (!len)
		return -EFAULT;
	if ((r = us_call(&c, us_op_cc_info, s)) < 0)
		return (int)r;
	if (*len > c.u.ccinfo.len)
		*len = c.u.ccinfo.len;
	if (*len && !val)
		return -EFAULT;
	if (*len)
		memcpy(val, c.u.ccinfo.v, *len);
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
		case SO_TXREHASH: return UST_TCP_OPT_TXREHASH;
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
	case TCP_THIN_LINEAR_TIMEOUTS: return UST_TCP_OPT_THIN_LINEAR_TIMEOUTS;
	case TCP_SAVE_SYN: return UST_TCP_OPT_SAVE_SYN;
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
 * Every option Linux's do_ipv6_setsockopt and do_ipv6_getsockopt know on
 * an AF_INET6 TCP socket (ENOPROTOOPT on an AF_INET one, as
 * ip_setsockopt's), in four kinds:
 *  - the engine's: IPV6_TCLASS, IPV6_UNICAST_HOPS and IPV6_MTU_DISCOVER
 *    go in what it sends (tcp_output.c); IPV6_MTU takes 0 or 1280 and
 *    more, which TCP has no use for (its segments follow the path MTU),
 *    and reads the path MTU back, as IPV6_PATHMTU; IPV6_V6ONLY only
 *    before the socket has a port;
 *  - the kept ones (ip6_kept_names): a kernel socket made for the call
 *    (probe_open) checks the value as Linux does, capabilities and
 *    devices included, and reads back what Linux would keep, which the
 *    slot remembers (struct us_ip_opts); before any set the kernel's
 *    default is read the same way (net.ipv6.auto_flowlabels' for
 *    IPV6_AUTOFLOWLABEL). Of those IPV6_AUTOFLOWLABEL and
 *    IPV6_MINHOPCOUNT go to the engine as well (the flow label sent, the
 *    hop limit under which a segment is dropped), and IPV6_RECVHOPLIMIT,
 *    IPV6_2292HOPLIMIT, IPV6_RECVTCLASS and IPV6_FLOWINFO say what it
 *    notes of the segments received (IPV6_2292PKTOPTIONS reads it);
 *    IPV6_FREEBIND and
 *    IPV6_TRANSPARENT have theirs on a socket bound to an address not the
 *    stack's, which the kernel takes (us_to_kernel replays them); the
 *    others ask for ancillary data TCP gives only through
 *    IPV6_2292PKTOPTIONS (below), or are for datagrams and multicast;
 *  - the sticky extension headers (IPV6_HOPOPTS, IPV6_RTHDRDSTOPTS,
 *    IPV6_RTHDR, IPV6_DSTOPTS, all four at once by IPV6_2292PKTOPTIONS),
 *    checked by the kernel socket, read back, and sent by the engine
 *    (ip_ext_to_engine);
 *  - the rest, whose answer is the kernel's for any TCP socket: options
 *    of raw or datagram sockets (EPROTO, ENOPROTOOPT), netfilter's
 *    (IP6T_SO_*), and the kernel's checks of multicast and anycast
 *    groups, flow label leases (IPV6_FLOWLABEL_MGR) and IPsec policies.
 *    What the kernel accepts among those (a group joined, a label
 *    leased, a policy) would need the stack to receive for the group or
 *    send under the label or policy: it fails with EOPNOTSUPP (CAVEATS). */

#ifndef IPV6_FLOWINFO
#define IPV6_FLOWINFO 11
#endif
#ifndef IPV6_FLOWINFO_SEND
#define IPV6_FLOWINFO_SEND 33
#endif
#ifndef IPV6_FLOWLABEL_MGR
#define IPV6_FLOWLABEL_MGR 32
#endif
#ifndef IPV6_AUTOFLOWLABEL
#define IPV6_AUTOFLOWLABEL 70
#endif
#ifndef IPV6_MINHOPCOUNT
#define IPV6_MINHOPCOUNT 73
#endif

/* Kept as Linux reads them back (us_ip_opts.kept[i]). */
static const uint8_t ip6_kept_names[US_IP6_KEPT] = {
	IPV6_2292PKTINFO, IPV6_2292HOPOPTS, IPV6_2292DSTOPTS, IPV6_2292RTHDR, IPV6_2292HOPLIMIT,
	IPV6_FLOWINFO, IPV6_MULTICAST_LOOP, IPV6_RECVERR, IPV6_MULTICAST_ALL, IPV6_ROUTER_ALERT_ISOLATE,
	IPV6_RECVERR_RFC4884, IPV6_FLOWINFO_SEND, IPV6_RECVPKTINFO, IPV6_RECVHOPLIMIT, IPV6_RECVHOPOPTS,
	IPV6_RECVRTHDR, IPV6_RECVDSTOPTS, IPV6_RECVPATHMTU, IPV6_DONTFRAG, IPV6_RECVTCLASS,
	IPV6_AUTOFLOWLABEL, IPV6_ADDR_PREFERENCES, IPV6_MINHOPCOUNT, IPV6_RECVORIGDSTADDR,
	IPV6_TRANSPARENT, IPV6_UNICAST_IF, IPV6_RECVFRAGSIZE, IPV6_FREEBIND,
};

static int ip6_kept_index(int name)
{
	for (int i = 0; i < US_IP6_KEPT; i++)
		if (ip6_kept_names[i] == name)
			return i;
	return -1;
}

/* The sticky headers' slots (us_ip_opts.hdr). */
static const int ip6_hdr_names[4] = { IPV6_HOPOPTS, IPV6_RTHDRDSTOPTS, IPV6_RTHDR, IPV6_DSTOPTS };

static int ip6_hdr_index(int name)
{
	for (int i = 0; i < 4; i++)
		if (ip6_hdr_names[i] == name)
			return i;
	return -1;
}

/* A fresh kernel TCP socket of the family, for one call. It needs a free
 * descriptor for that time: a program at RLIMIT_NOFILE gets EMFILE where
 * Linux would have answered. */
static int probe_open(int family)
{
	int k = REAL(socket)(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	return k < 0 ? -errno : k;
}

static int probe_close(int k, int r)
{
	REAL(close)(k);
	return r;
}

static int probe_set(int k, int level, int name, const void *val, socklen_t len)
{
	return REAL(setsockopt)(k, level, name, val, len) < 0 ? -errno : 0;
}

static int probe_get(int k, int level, int name, void *val, socklen_t *len)
{
	return REAL(getsockopt)(k, level, name, val, len) < 0 ? -errno : 0;
}

/* Linux's do_ipv6_setsockopt reads an int when optlen has room for one,
 * and takes 0 otherwise, or for a NULL pointer. */
static int ip6_int_arg(const void *val, socklen_t len)
{
	int v = 0;

	if (val && len >= (socklen_t)sizeof(int))
		memcpy(&v, val, sizeof(v));
	return v;
}

/* net.ipv6.auto_flowlabels, read once: 1 (Linux's default) labels every
 * flow unless IPV6_AUTOFLOWLABEL says 0; 2 only when it says 1; 3 always;
 * 0 never. */
static int auto_flowlabels = 1;

static void read_auto_flowlabels(void)
{
	auto_flowlabels = ust_sysctl_int("/proc/sys/net/ipv6/auto_flowlabels", 1);
}

static int flowlabels_sysctl(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, read_auto_flowlabels);
	return auto_flowlabels;
}

/* Whether an AF_INET6 socket's segments carry a flow label, from its
 * IPV6_AUTOFLOWLABEL (on, off, or -1: never set), as Linux's
 * ip6_make_flowlabel. */
static int flowlabel_on(int autolabel)
{
	int a = flowlabels_sysctl();

	if (a == 3)
		return 1;
	if (autolabel < 0)
		return a == 1;
	return a != 0 && autolabel;
}

/* A new AF_INET6 socket whose segments go without a label by default
 * (net.ipv6.auto_flowlabels 0 or 2): the engine labels unless told. */
void us_ip6_socket_init(struct us_sock *s)
{
	struct us_call c;

	if (flowlabel_on(-1))
		return;
	c.u.opt.level = IPPROTO_TCP;
	c.u.opt.name = UST_TCP_OPT_IPV6_FLOWLABEL;
	c.u.opt.val = 0;
	us_call(&c, us_op_setopt, s);
}

/* A kept option set, and not to 0. */
static bool ip6_kept_on(struct us_sock *s, int name)
{
	int i = ip6_kept_index(name);
	const struct us_ip_opts *o = us_sock_ipopts(s);

	return (atomic_load(&o->set) & (1u << i)) && atomic_load(&o->kept[i]);
}

/* The receive options (Linux's np->rxopt bits), each with what it asks
 * the engine to note or keep (UST_TCP_RX6_*). */
static const struct {
	int name;
	int bits;
} rx6_opts[] = {
	{ IPV6_RECVPKTINFO, UST_TCP_RX6_INFO },     { IPV6_2292PKTINFO, UST_TCP_RX6_INFO },
	{ IPV6_RECVHOPLIMIT, UST_TCP_RX6_HOPS },    { IPV6_2292HOPLIMIT, UST_TCP_RX6_HOPS },
	{ IPV6_RECVTCLASS, UST_TCP_RX6_FLOW },      { IPV6_FLOWINFO, UST_TCP_RX6_FLOW | UST_TCP_RX6_KEEP_FLOW },
	{ IPV6_RECVHOPOPTS, UST_TCP_RX6_KEEP_HBH }, { IPV6_2292HOPOPTS, UST_TCP_RX6_KEEP_HBH },
	{ IPV6_RECVRTHDR, UST_TCP_RX6_KEEP_RT },    { IPV6_2292RTHDR, UST_TCP_RX6_KEEP_RT },
	{ IPV6_RECVDSTOPTS, UST_TCP_RX6_KEEP_DST }, { IPV6_2292DSTOPTS, UST_TCP_RX6_KEEP_DST },
	{ IPV6_RECVPATHMTU, 0 },                    { IPV6_RECVORIGDSTADDR, 0 },
	{ IPV6_RECVFRAGSIZE, 0 },
};

/* Whether name is a receive option; into *bits (if not NULL) what all
 * those set ask of the engine. */
static bool rx6_bits(struct us_sock *s, int name, int *bits)
{
	bool found = false;
	int b = 0;

	for (size_t i = 0; i < sizeof(rx6_opts) / sizeof(rx6_opts[0]); i++) {
		found |= rx6_opts[i].name == name;
		if (bits && ip6_kept_on(s, rx6_opts[i].name))
			b |= rx6_opts[i].bits | UST_TCP_RX6_ANY;
	}
	if (bits)
		*bits = b;
	return found;
}

/* What a kept option's new value does besides being read back. */
static int ip6_kept_effect(struct us_sock *s, int name, int v)
{
	struct us_call c;

	c.u.opt.level = IPPROTO_TCP;
	if (name == IPV6_AUTOFLOWLABEL) {
		c.u.opt.name = UST_TCP_OPT_IPV6_FLOWLABEL;
		c.u.opt.val = flowlabel_on(v);
	} else if (name == IPV6_MINHOPCOUNT) {
		c.u.opt.name = UST_TCP_OPT_IPV6_MINHOPCOUNT;
		c.u.opt.val = v;
	} else if (rx6_bits(s, name, NULL)) {
		/* What the engine notes of each segment received in order:
		 * only what reads back, so the option is set whatever the
		 * call (a socket whose serving process is gone). */
		c.u.opt.name = UST_TCP_OPT_IPV6_RXOPT;
		rx6_bits(s, name, &c.u.opt.val);
		(void)us_call(&c, us_op_setopt, s);
		return 0;
	} else {
		return 0;
	}
	return (int)us_call(&c, us_op_setopt, s);
}

/* A kept option (IPv6's if level is IPPROTO_IPV6, else IPv4's, slot i of
 * its table): a kernel socket of the socket's family, given the value
 * kept so far (some merge, as IPV6_ADDR_PREFERENCES), takes the new one
 * or says why not, and reads back what to keep, into *kept. 0 or
 * -errno. */
static int kept_set(struct us_sock *s, int level, int name, int i, const void *val, socklen_t len, int *kept)
{
	bool six = level == IPPROTO_IPV6;
	int k = probe_open(atomic_load(&s->family)), v, r;
	socklen_t vlen = sizeof(v);
	struct us_ip_opts *o = us_sock_ipopts(s);

	if (k < 0)
		return k;
	if (atomic_load(six ? &o->set : &o->set4) & (1u << i)) {
		v = atomic_load(six ? &o->kept[i] : &o->kept4[i]);
		probe_set(k, level, name, &v, sizeof(v));
	}
	if ((r = probe_set(k, level, name, val, len)) < 0 || (r = probe_get(k, level, name, &v, &vlen)) < 0)
		return probe_close(k, r);
	probe_close(k, 0);
	o = us_sock_ipopts_w(s);
	atomic_store(six ? &o->kept[i] : &o->kept4[i], v);
	atomic_fetch_or(six ? &o->set : &o->set4, 1u << i);
	*kept = v;
	return 0;
}

static int ip6_kept_set(struct us_sock *s, int i, const void *val, socklen_t len)
{
	int v, r = kept_set(s, IPPROTO_IPV6, ip6_kept_names[i], i, val, len, &v);

	return r < 0 ? r : ip6_kept_effect(s, ip6_kept_names[i], v);
}

/* The engine sends what the slot now holds: IP_OPTIONS, or (IPV6_HOPOPTS)
 * all four sticky IPv6 headers (us_op_setopt). */
static int ip_ext_to_engine(struct us_sock *s, int which)
{
	struct us_call c;

	c.u.opt.level = US_OPT_RELAY;
	c.u.opt.name = which;
	c.u.opt.val = 0;
	return (int)us_call(&c, us_op_setopt, s);
}

/* The sticky headers a kernel socket k holds, as this socket's (all four:
 * IPV6_2292PKTOPTIONS replaces them all, as Linux's np->opt). */
static int ip6_hdrs_take(struct us_sock *s, int k, int first, int last)
{
	/* Each header read once, one byte more than the slot holds (the
	 * kernel socket takes none longer than a header's length can say,
	 * the slot's bound); none kept unless all fit. On the heap: 8 KB is
	 * more than a program's thread may have to spare on its stack. */
	uint8_t (*buf)[US_IP6_HDR_MAX + 1] = malloc(4 * sizeof(*buf));
	socklen_t n[4];
	struct us_ip_opts *o;

	if (!buf)
		return -ENOMEM;
	for (int i = first; i <= last; i++) {
		n[i] = sizeof(buf[i]);
		if (probe_get(k, IPPROTO_IPV6, ip6_hdr_names[i], buf[i], &n[i]) < 0)
			n[i] = 0;
		if (n[i] > US_IP6_HDR_MAX) {
			free(buf);
			return -ENOBUFS;
		}
	}
	o = us_sock_ipopts_w(s);
	for (int i = first; i <= last; i++) {
		memcpy(o->hdr[i], buf[i], n[i]);
		atomic_store(&o->hdr_len[i], (uint16_t)n[i]);
	}
	free(buf);
	return ip_ext_to_engine(s, IPV6_HOPOPTS);
}

/* The group options both families share (MCAST_*, RFC 3678). */
static bool mcast_group_opt(int name)
{
	switch (name) {
	case MCAST_JOIN_GROUP:
	case MCAST_BLOCK_SOURCE:
	case MCAST_UNBLOCK_SOURCE:
	case MCAST_LEAVE_GROUP:
	case MCAST_JOIN_SOURCE_GROUP:
	case MCAST_LEAVE_SOURCE_GROUP:
	case MCAST_MSFILTER:
		return true;
	}
	return false;
}

/* Options whose acceptance would need the stack to do what it does not:
 * receive for a multicast or anycast group, send under a leased flow
 * label or an IPsec policy. */
static bool ip6_unserved(int name, socklen_t len)
{
	switch (name) {
	case IPV6_IPSEC_POLICY:
	case IPV6_XFRM_POLICY:
		return len > 0; /* none (0 bytes) is what the socket has */
	case IPV6_JOIN_ANYCAST:
	case IPV6_LEAVE_ANYCAST:
	case IPV6_FLOWLABEL_MGR:
		return true;
	}
	return mcast_group_opt(name);
}

/* The rest of setsockopt: the kernel socket's answer. */
static int ip6_probe_set(struct us_sock *s, int name, const void *val, socklen_t len)
{
	int k = probe_open(AF_INET6), h = ip6_hdr_index(name), r;

	if (k < 0)
		return k;
	r = probe_set(k, IPPROTO_IPV6, name, val, len);
	if (r == 0 && h >= 0)
		r = ip6_hdrs_take(s, k, h, h);
	else if (r == 0 && name == IPV6_2292PKTOPTIONS)
		r = ip6_hdrs_take(s, k, 0, 3);
	else if (r == 0 && name == IPV6_PKTINFO)
		memcpy(us_sock_ipopts_w(s)->pktinfo, val, sizeof(((struct us_ip_opts *)0)->pktinfo)); /* 20 bytes at least: checked */
	else if (r == 0 && ip6_unserved(name, len))
		r = -EOPNOTSUPP;
	return probe_close(k, r);
}

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

static _Atomic int *ip6_engine_kept(struct us_sock *s, int name)
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
	_Atomic int *k = ip6_engine_kept(s, name);
	int v = ip6_int_arg(val, len), i;
	struct us_call c;

	if (atomic_load(&s->family) != AF_INET6)
		return -ENOPROTOOPT;
	if ((i = ip6_kept_index(name)) >= 0)
		return ip6_kept_set(s, i, val, len);
	if (!k && name != IPV6_V6ONLY && name != IPV6_MTU)
		return ip6_probe_set(s, name, val, len);
	if (len < (socklen_t)sizeof(int))
		return -EINVAL;
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

/* Control messages into a buffer as Linux's put_cmsg: a header that does
 * not fit ends them, a message that does not is cut short. */
struct cmsg_out {
	uint8_t *p;
	socklen_t left;
};

static void put_cmsg(struct cmsg_out *m, int level, int type, const void *data, size_t dlen)
{
	struct cmsghdr h = { .cmsg_len = CMSG_LEN(dlen), .cmsg_level = level, .cmsg_type = type };
	size_t space = CMSG_SPACE(dlen);

	if (m->left < sizeof(h))
		return;
	if (m->left < h.cmsg_len)
		h.cmsg_len = m->left;
	memcpy(m->p, &h, sizeof(h));
	memcpy(m->p + sizeof(h), data, h.cmsg_len - sizeof(h));
	if (space > m->left)
		space = m->left;
	m->p += space;
	m->left -= (socklen_t)space;
}

/* What the engine noted of the segments received (UST_TCP_OPT_IPV6_RCV_*),
 * or dflt without a connection. */
static int ip6_rcv_noted(struct us_sock *s, int opt, int dflt)
{
	struct us_call c;

	c.u.opt.level = IPPROTO_TCP;
	c.u.opt.name = opt;
	return us_call(&c, us_op_getopt, s) == 0 ? c.u.opt.val : dflt;
}

/* Linux's np->mcast_hops, which a TCP socket cannot set: the hop limit
 * the engine noted (an accepted socket's handshake's, then as the receive
 * options ask), else 1. */
static int ip6_mcast_hops(struct us_sock *s)
{
	int hops = ip6_rcv_noted(s, UST_TCP_OPT_IPV6_RCV_HOPS, 0);

	return hops ? hops : 1;
}

/* The interface's number, for an IPV6_PKTINFO (0 if it is gone). */
static int link_index(void)
{
	const struct ust_config *cfg = us_config();

	return cfg ? (int)if_nametoindex(cfg->iface) : 0;
}

/* The extension headers of a kept segment (net: its IPv6 header and
 * them, n bytes), where Linux's receive path notes them (inet6_skb_parm):
 * hop-by-hop, the routing header, and the destination options before it
 * (dst0) and after it or without one (dst1); 0: none. */
struct kept_ext {
	unsigned hop, rt, dst0, dst1;
};

static struct kept_ext kept_ext_of(const uint8_t *net, unsigned n)
{
	struct kept_ext e = { 0 };
	struct ust_ip6_walk w = { 0 };

	while (ust_ip6_ext_step(net, n, &w)) {
		if (w.type == IPPROTO_HOPOPTS) {
			e.hop = w.off;
		} else if (w.type == IPPROTO_ROUTING) {
			e.rt = w.off;
			e.dst0 = e.dst1;
			e.dst1 = 0;
		} else if (w.type == IPPROTO_DSTOPTS) {
			e.dst1 = w.off;
		}
	}
	return e;
}

/* The header at off of the copy net, which kept_ext_of found whole. */
static void put_ext(struct cmsg_out *m, int type, const uint8_t *net, unsigned off)
{
	if (off)
		put_cmsg(m, IPPROTO_IPV6, type, net + off, (net[off + 1] + 1u) * 8);
}

/* The messages of the segment the engine kept (0x100 in kept), as Linux's
 * ip6_datagram_recv_ctl writes them: its destination and interface, hop
 * limit, traffic class, flow information if not 0, hop-by-hop options,
 * destination options and routing header in their order (the RFC 3542
 * ones), then the RFC 2292 ones and the original destination. */
static void ip6_kept_msgs(struct us_sock *s, struct cmsg_out *m, int kept)
{
	const struct us_ip_opts *o = us_sock_ipopts(s);
	uint8_t net[sizeof(o->rx_kept)], pktinfo[20];
	unsigned n = atomic_load(&o->rx_kept_len);
	uint32_t info = (uint32_t)ip6_rcv_noted(s, UST_TCP_OPT_IPV6_KEPT_FLOWINFO, 0), flowinfo = htonl(info);
	int hops = kept & 0xff, tclass = (int)(info >> 20) & 0xff, ifindex = link_index();
	struct kept_ext e;

	/* A copy, walked alone: the slot is shared, and the stack thread
	 * may write it again meanwhile. */
	if (n > sizeof(net))
		n = 0;
	memcpy(net, o->rx_kept, n);
	e = kept_ext_of(net, n);
	memcpy(pktinfo, &s->local6, 16);
	memcpy(pktinfo + 16, &ifindex, 4);
	if (ip6_kept_on(s, IPV6_RECVPKTINFO))
		put_cmsg(m, IPPROTO_IPV6, IPV6_PKTINFO, pktinfo, sizeof(pktinfo));
	if (ip6_kept_on(s, IPV6_RECVHOPLIMIT))
		put_cmsg(m, IPPROTO_IPV6, IPV6_HOPLIMIT, &hops, sizeof(hops));
	if (ip6_kept_on(s, IPV6_RECVTCLASS))
		put_cmsg(m, IPPROTO_IPV6, IPV6_TCLASS, &tclass, sizeof(tclass));
	if (ip6_kept_on(s, IPV6_FLOWINFO) && info)
		put_cmsg(m, IPPROTO_IPV6, IPV6_FLOWINFO, &flowinfo, sizeof(flowinfo));
	if (ip6_kept_on(s, IPV6_RECVHOPOPTS))
		put_ext(m, IPV6_HOPOPTS, net, e.hop);
	if (ip6_kept_on(s, IPV6_RECVDSTOPTS) || ip6_kept_on(s, IPV6_RECVRTHDR)) {
		/* In their order, as Linux walks them again. */
		struct ust_ip6_walk w = { 0 };

		while (ust_ip6_ext_step(net, n, &w)) {
			if (w.type == IPPROTO_DSTOPTS && ip6_kept_on(s, IPV6_RECVDSTOPTS))
				put_ext(m, IPV6_DSTOPTS, net, w.off);
			else if (w.type == IPPROTO_ROUTING && ip6_kept_on(s, IPV6_RECVRTHDR))
				put_ext(m, IPV6_RTHDR, net, w.off);
		}
	}
	if (ip6_kept_on(s, IPV6_2292PKTINFO))
		put_cmsg(m, IPPROTO_IPV6, IPV6_2292PKTINFO, pktinfo, sizeof(pktinfo));
	if (ip6_kept_on(s, IPV6_2292HOPLIMIT))
		put_cmsg(m, IPPROTO_IPV6, IPV6_2292HOPLIMIT, &hops, sizeof(hops));
	if (ip6_kept_on(s, IPV6_2292HOPOPTS))
		put_ext(m, IPV6_2292HOPOPTS, net, e.hop);
	if (ip6_kept_on(s, IPV6_2292DSTOPTS))
		put_ext(m, IPV6_2292DSTOPTS, net, e.dst0);
	if (ip6_kept_on(s, IPV6_2292RTHDR))
		put_ext(m, IPV6_2292RTHDR, net, e.rt);
	if (ip6_kept_on(s, IPV6_2292DSTOPTS))
		put_ext(m, IPV6_2292DSTOPTS, net, e.dst1);
	if (ip6_kept_on(s, IPV6_RECVORIGDSTADDR)) {
		struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6,
					     .sin6_port = htons(us_port(atomic_load(&s->local))) };
		memcpy(&sin6.sin6_addr, &s->local6, 16);
		if (ust_ip6_is_link_local(&s->local6))
			sin6.sin6_scope_id = (uint32_t)ifindex;
		put_cmsg(m, IPPROTO_IPV6, IPV6_ORIGDSTADDR, &sin6, sizeof(sin6));
	}
}

/* IPV6_2292PKTOPTIONS on a TCP socket, as Linux's do_ipv6_getsockopt:
 * the messages of the segment it keeps (np->pktoptions: ip6_kept_msgs),
 * or without one the IPV6_PKTINFO set (the peer's address and the
 * interface once a segment noted it: np->mcast_oif), the multicast hop
 * limit (ip6_mcast_hops), the traffic class and the flow information the
 * engine noted (np->rcv_flowinfo). */
static int ip6_pktoptions(struct us_sock *s, void *val, socklen_t *len)
{
	struct cmsg_out m = { val, 0 };
	int kept = ip6_rcv_noted(s, UST_TCP_OPT_IPV6_RCV_KEPT, 0);
	uint32_t info, flowinfo;
	int hops, tclass;
	uint8_t pktinfo[20];

	if (!val || !len)
		return -EFAULT;
	m.left = *len;
	if (kept & 0x100) {
		ip6_kept_msgs(s, &m, kept);
		*len -= m.left;
		return 0;
	}
	info = (uint32_t)ip6_rcv_noted(s, UST_TCP_OPT_IPV6_RCV_FLOWINFO, 0);
	flowinfo = htonl(info);
	hops = ip6_mcast_hops(s);
	tclass = (int)(info >> 20) & 0xff;
	memcpy(pktinfo, us_sock_ipopts(s)->pktinfo, sizeof(pktinfo));
	if (kept & 0x200) {
		int ifindex = link_index();
		memcpy(pktinfo, &s->remote6, 16);
		memcpy(pktinfo + 16, &ifindex, 4);
	}
	if (ip6_kept_on(s, IPV6_RECVPKTINFO))
		put_cmsg(&m, IPPROTO_IPV6, IPV6_PKTINFO, pktinfo, sizeof(pktinfo));
	if (ip6_kept_on(s, IPV6_RECVHOPLIMIT))
		put_cmsg(&m, IPPROTO_IPV6, IPV6_HOPLIMIT, &hops, sizeof(hops));
	if (ip6_kept_on(s, IPV6_RECVTCLASS))
		put_cmsg(&m, IPPROTO_IPV6, IPV6_TCLASS, &tclass, sizeof(tclass));
	if (ip6_kept_on(s, IPV6_2292PKTINFO))
		put_cmsg(&m, IPPROTO_IPV6, IPV6_2292PKTINFO, pktinfo, sizeof(pktinfo));
	if (ip6_kept_on(s, IPV6_2292HOPLIMIT))
		put_cmsg(&m, IPPROTO_IPV6, IPV6_2292HOPLIMIT, &hops, sizeof(hops));
	if (ip6_kept_on(s, IPV6_FLOWINFO))
		put_cmsg(&m, IPPROTO_IPV6, IPV6_FLOWINFO, &flowinfo, sizeof(flowinfo));
	*len -= m.left;
	return 0;
}

/* The path MTU of a connection (IPV6_MTU, IPV6_PATHMTU); -ENOTCONN
 * without one (Linux: no route cached). */
static int ip6_path_mtu(struct us_sock *s)
{
	struct us_call c;

	c.u.opt.level = IPPROTO_TCP;
	c.u.opt.name = UST_TCP_OPT_IP_MTU;
	if (us_call(&c, us_op_getopt, s) < 0)
		return -ENOTCONN;
	return c.u.opt.val;
}

/* struct in6_flowlabel_req (linux/in6.h, which clashes with netinet/in.h) */
struct us_flowlabel_req {
	struct in6_addr dst;
	uint32_t label; /* network order */
	uint8_t action, share;
	uint16_t flags, expires, linger;
	uint32_t pad;
};
#define US_FL_A_GET 0
#define US_FL_F_REMOTE 8

/* IPV6_FLOWLABEL_MGR's get of IPV6_FL_F_REMOTE: the flow label the engine
 * noted, as Linux's ipv6_flowlabel_opt_get reads np->rcv_flowinfo. 1:
 * another request, whose answer is the kernel's. */
static int ip6_remote_label(struct us_sock *s, void *val, socklen_t *len)
{
	struct us_flowlabel_req q;

	if (!val || !len || *len < (socklen_t)sizeof(q))
		return 1;
	memcpy(&q, val, sizeof(q));
	if (q.action != US_FL_A_GET || !(q.flags & US_FL_F_REMOTE))
		return 1;
	memset(&q, 0, sizeof(q));
	q.label = htonl((uint32_t)ip6_rcv_noted(s, UST_TCP_OPT_IPV6_RCV_FLOWINFO, 0) & 0xfffff);
	memcpy(val, &q, sizeof(q));
	*len = sizeof(q);
	return 0;
}

static int ip6_getsockopt(struct us_sock *s, int name, void *val, socklen_t *len)
{
	_Atomic int *k = ip6_engine_kept(s, name);
	const struct us_ip_opts *o = us_sock_ipopts(s);
	struct ip6_mtuinfo mi;
	struct us_call c;
	int v, i, r;

	if (atomic_load(&s->family) != AF_INET6)
		return -ENOPROTOOPT;
	if (!val || !len)
		return -EFAULT;
	i = ip6_kept_index(name);
	if (i >= 0 && (atomic_load(&o->set) & (1u << i)))
		return put_int(val, len, atomic_load(&o->kept[i]));
	if ((i = ip6_hdr_index(name)) >= 0) {
		if (*len > atomic_load(&o->hdr_len[i]))
			*len = atomic_load(&o->hdr_len[i]);
		memcpy(val, o->hdr[i], *len);
		return 0;
	}
	switch (name) {
	case IPV6_V6ONLY:
		return put_int(val, len, atomic_load(&s->v6only));
	case IPV6_ADDRFORM:
		/* Linux reads the family of an established socket. */
		if (atomic_load(&s->state) != UST_TCP_ESTABLISHED)
			return -ENOTCONN;
		return put_int(val, len, AF_INET6);
	case IPV6_MTU:
		if ((v = ip6_path_mtu(s)) < 0)
			return v;
		return put_int(val, len, v);
	case IPV6_PATHMTU:
		if (*len < (socklen_t)sizeof(mi))
			return -EINVAL;
		if ((v = ip6_path_mtu(s)) < 0)
			return v;
		memset(&mi, 0, sizeof(mi));
		mi.ip6m_mtu = (uint32_t)v;
		*len = sizeof(mi);
		memcpy(val, &mi, sizeof(mi));
		return 0;
	case IPV6_2292PKTOPTIONS:
		return ip6_pktoptions(s, val, len);
	case IPV6_MULTICAST_HOPS:
		return put_int(val, len, ip6_mcast_hops(s));
	case IPV6_FLOWLABEL_MGR:
		if ((r = ip6_remote_label(s, val, len)) != 1)
			return r;
		break;
	case IPV6_TCLASS:
		/* With the ECN field of the last segment sent, as Linux's
		 * np->tclass has it, while TCP has the connection. */
		c.u.opt.level = IPPROTO_TCP;
		c.u.opt.name = UST_TCP_OPT_IPV6_TCLASS;
		if (us_call(&c, us_op_getopt, s) == 0)
			return put_int(val, len, c.u.opt.val);
		break;
	}
	if (k) {
		v = atomic_load(k);
		return put_int(val, len, name == IPV6_UNICAST_HOPS && v == UST_TCP_HOPS_DEFAULT
							 ? UST_IPV6_HOP_LIMIT_DEFAULT : v);
	}
	/* A kept option never set, and the rest: the kernel's default. */
	if ((r = probe_open(AF_INET6)) < 0)
		return r;
	return probe_close(r, probe_get(r, IPPROTO_IPV6, name, val, len));
}

#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif

/* A sysctl read once (these do not change under a running program in
 * any way it could tell from Linux's). No lock: two threads may both read
 * the file the first time, and store the same value; a lock held across
 * the read would be held for good in a child forked meanwhile. val is 0
 * until read, never after (dflt and what is taken are positive). */
struct sysctl_once {
	const char *path;
	int dflt;
	_Atomic int val;
};

static struct sysctl_once wmem_max = { "/proc/sys/net/core/wmem_max", 212992, 0 };
static struct sysctl_once rmem_max = { "/proc/sys/net/core/rmem_max", 212992, 0 };
static struct sysctl_once somaxconn = { "/proc/sys/net/core/somaxconn", 4096, 0 };

static int sysctl_value(struct sysctl_once *o)
{
	int v = atomic_load(&o->val);

	if (!v) {
		v = ust_sysctl_int(o->path, o->dflt);
		if (v <= 0)
			v = o->dflt;
		atomic_store(&o->val, v);
	}
	return v;
}

/* SOL_SOCKET options whose value the app end (an AF_UNIX socket) would
 * take, keep or refuse otherwise than Linux's sock_setsockopt does for
 * TCP. Returns 1 for any other option, 0 or -errno for these, with the
 * value to go on with in *v (SO_SNDBUF, SO_RCVBUF, SO_RCVLOWAT). */
static int sol_set_check(int fd, struct us_sock *s, int name, const void *val, socklen_t len, int *v)
{
	int r, k, flags;

	switch (name) {
	case SO_PASSCRED:
	case SO_PASSSEC:
	case SO_PASSPIDFD:
		/* Credentials and security labels ride on AF_UNIX and
		 * netlink messages only (Linux 6.18: EOPNOTSUPP, once the
		 * value is an int). */
		return (r = int_arg(val, len, v)) < 0 ? r : -EOPNOTSUPP;
	case SO_SNDBUF:
	case SO_RCVBUF:
		/* Read unsigned, and capped by net.core.wmem_max and
		 * rmem_max: -1 is the largest allowed. */
		if ((r = int_arg(val, len, v)) < 0)
			return r;
		k = sysctl_value(name == SO_SNDBUF ? &wmem_max : &rmem_max);
		if ((unsigned)*v > (unsigned)k)
			*v = k;
		return 0;
	case SO_SNDBUFFORCE:
	case SO_RCVBUFFORCE:
		/* Beyond those caps, with CAP_NET_ADMIN: a kernel socket asks
		 * for it. No negative value. */
		if ((r = int_arg(val, len, v)) < 0)
			return r;
		if ((k = probe_open(atomic_load(&s->family))) < 0)
			return k;
		if ((r = probe_close(k, probe_set(k, SOL_SOCKET, name, val, len))) < 0)
			return r;
		if (*v < 0)
			*v = 0;
		return 0;
	case SO_RCVLOWAT: {
		/* The engine caps it as tcp_set_rcvlowat does (and may grow
		 * the buffer); the app end takes the mark it kept. */
		struct us_call c;
		if ((r = int_arg(val, len, v)) < 0)
			return r;
		c.u.opt.level = SOL_SOCKET;
		c.u.opt.name = SO_RCVLOWAT;
		c.u.opt.val = *v;
		if ((r = (int)us_call(&c, us_op_setopt, s)) < 0)
			return r;
		*v = c.u.opt.val;
		return 0;
	}
	case SO_TIMESTAMPING_OLD:
	case SO_TIMESTAMPING_NEW:
		/* SOF_TIMESTAMPING_OPT_ID counts bytes from the next one
		 * sent: a TCP socket that sends nothing yet (closed,
		 * listening) cannot take it (sock_set_timestamping). */
		if ((r = int_arg(val, len, v)) < 0)
			return 1; /* the app end says what is wrong */
		flags = 0;
		if (*v & SOF_TIMESTAMPING_OPT_ID) {
			int st = atomic_load(&s->state);
			socklen_t fl = sizeof(flags);
			if (REAL(getsockopt)(fd, SOL_SOCKET, name, &flags, &fl) < 0)
				flags = 0;
			if (!(flags & SOF_TIMESTAMPING_OPT_ID) &&
			    (st == UST_TCP_CLOSED || st == UST_TCP_LISTEN || atomic_load(&s->kind) == US_LISTENER))
				return -EINVAL;
		}
		return 1;
	}
	return 1;
}

/* ---- IPPROTO_IP ----
 * Every option Linux's do_ip_setsockopt and do_ip_getsockopt know on a TCP
 * socket (of either family, as Linux's), in the same kinds as IPv6's:
 *  - the engine's: IP_TOS, IP_TTL and IP_MTU_DISCOVER go in what it sends
 *    (tcp_output.c); IP_MTU reads the path MTU; IP_PROTOCOL reads what
 *    Linux's inet_num holds for TCP, the local port;
 *  - the kept ones (ip4_kept_names): checked and read back through a
 *    kernel socket as IPv6's, kept in the slot (us_ip_opts.kept4). Of
 *    those IP_MINTTL goes to the engine as well (the TTL under which a
 *    segment is dropped, RFC 5082); IP_FREEBIND and IP_TRANSPARENT have
 *    theirs on a socket bound to an address not the stack's, which the
 *    kernel takes (us_to_kernel replays them); IP_BIND_ADDRESS_NO_PORT
 *    makes a bind to port 0 take the address alone (us_bind_no_port,
 *    us_op_bind); IP_LOCAL_PORT_RANGE narrows the ports a bind to port 0,
 *    a connect or a listen may be given (us_sock_port_range, ports.c's
 *    claim_bounds); IP_RECVERR does not make ICMP errors hard ones
 *    (CAVEATS); the others ask for ancillary data that TCP gives only
 *    through IP_PKTOPTIONS (below), or are for datagrams and multicast;
 *  - IP_OPTIONS: checked by a kernel socket, read back as it keeps them,
 *    and sent by the engine (ip_ext_to_engine), as IPv6's sticky headers;
 *  - the group and policy options the kernel accepts fail with
 *    EOPNOTSUPP (receiving for a group, sending under a policy:
 *    ip4_unserved);
 *  - the rest, whose answer is the kernel's for any TCP socket. */
#ifndef IP_CHECKSUM
#define IP_CHECKSUM 23
#endif
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif
#ifndef IP_RECVFRAGSIZE
#define IP_RECVFRAGSIZE 25
#endif
#ifndef IP_RECVERR_RFC4884
#define IP_RECVERR_RFC4884 26
#endif
#ifndef IP_MULTICAST_ALL
#define IP_MULTICAST_ALL 49
#endif
#ifndef IP_UNICAST_IF
#define IP_UNICAST_IF 50
#endif
#ifndef IP_PROTOCOL
#define IP_PROTOCOL 52
#endif

/* Kept as Linux reads them back (us_ip_opts.kept4[i]). */
static const uint8_t ip4_kept_names[US_IP4_KEPT] = {
	IP_RECVOPTS, IP_RETOPTS, IP_PKTINFO, IP_RECVERR, IP_RECVTTL, IP_RECVTOS, IP_FREEBIND,
	IP_PASSSEC, IP_TRANSPARENT, IP_RECVORIGDSTADDR, IP_MINTTL, IP_CHECKSUM,
	IP_BIND_ADDRESS_NO_PORT, IP_RECVFRAGSIZE, IP_RECVERR_RFC4884, IP_MULTICAST_IF,
	IP_MULTICAST_TTL, IP_MULTICAST_LOOP, IP_MULTICAST_ALL, IP_UNICAST_IF,
	[US_IP4_KEPT_PORT_RANGE] = IP_LOCAL_PORT_RANGE, /* read by the stack thread (fdtab.c) */
};

/* The stack thread reads IP_LOCAL_PORT_RANGE by its index (fdtab.c). */
_Static_assert(US_IP4_KEPT_PORT_RANGE == US_IP4_KEPT - 1, "IP_LOCAL_PORT_RANGE is the last kept option");

static int ip4_kept_index(int name)
{
	for (int i = 0; i < US_IP4_KEPT; i++)
		if (ip4_kept_names[i] == name)
			return i;
	return -1;
}

/* A kept IPv4 option's value, or dflt while the socket never set it. */
static int ip4_kept_value(const struct us_sock *s, int name, int dflt)
{
	const struct us_ip_opts *o = us_sock_ipopts(s);
	int i = ip4_kept_index(name);

	return atomic_load(&o->set4) & (1u << i) ? atomic_load(&o->kept4[i]) : dflt;
}

bool us_bind_no_port(const struct us_sock *s)
{
	return ip4_kept_value(s, IP_BIND_ADDRESS_NO_PORT, 0) != 0;
}

/* What the kernel accepts and the stack could not honour: groups to
 * receive for, IPsec policies. */
static bool ip4_unserved(int name, socklen_t len)
{
	switch (name) {
	case IP_IPSEC_POLICY:
	case IP_XFRM_POLICY:
		return len > 0;
	case IP_ADD_MEMBERSHIP:
	case IP_DROP_MEMBERSHIP:
	case IP_ADD_SOURCE_MEMBERSHIP:
	case IP_DROP_SOURCE_MEMBERSHIP:
	case IP_BLOCK_SOURCE:
	case IP_UNBLOCK_SOURCE:
	case IP_MSFILTER:
		return true;
	}
	return mcast_group_opt(name);
}

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

/* The IP options a kernel socket k took, as this socket's. */
static int ip4_options_take(struct us_sock *s, int k)
{
	uint8_t buf[40];
	socklen_t n = sizeof(buf);
	struct us_ip_opts *o;
	int r;

	if ((r = probe_get(k, IPPROTO_IP, IP_OPTIONS, buf, &n)) < 0)
		return r;
	o = us_sock_ipopts_w(s);
	memcpy(o->ip_opts, buf, n);
	atomic_store(&o->ip_opts_len, (uint8_t)n);
	return ip_ext_to_engine(s, IP_OPTIONS);
}

/* The kept options (IP_MINTTL to the engine as well), the rest through a
 * kernel socket (IP_OPTIONS kept, what cannot be served refused), then
 * IP_TOS, IP_TTL, IP_MTU_DISCOVER, which the engine puts in the header of
 * every segment (tcp_output.c). */
static int ip_setsockopt(struct us_sock *s, int name, const void *val, socklen_t len)
{
	_Atomic int *k = ip_kept(s, name);
	struct us_call c;
	int v, r, i, p;

	if ((i = ip4_kept_index(name)) >= 0) {
		if ((r = kept_set(s, IPPROTO_IP, name, i, val, len, &v)) < 0 || name != IP_MINTTL)
			return r;
		c.u.opt.level = IPPROTO_TCP;
		c.u.opt.name = UST_TCP_OPT_IP_MINTTL;
		c.u.opt.val = v;
		return (int)us_call(&c, us_op_setopt, s);
	}
	if (!k && name != IP_MTU) {
		/* The kernel's answer (IP_HDRINCL, IP_NODEFRAG, a malformed
		 * IP_OPTIONS...), then what the stack cannot serve. */
		if ((p = probe_open(atomic_load(&s->family))) < 0)
			return p;
		r = probe_set(p, IPPROTO_IP, name, val, len);
		if (r == 0 && name == IP_OPTIONS)
			r = ip4_options_take(s, p);
		else if (r == 0 && ip4_unserved(name, len))
			r = -EOPNOTSUPP;
		return probe_close(p, r);
	}
	if (!k)
		return -ENOPROTOOPT; /* IP_MTU: read only, as Linux's */
	if ((r = ip_int_arg(val, len, &v)) < 0)
		return r;
	return engine_ip_set(s, k, ip_engine_opt(name), v);
}

/* IP_PKTOPTIONS on a TCP socket, as Linux's do_ip_getsockopt writes it:
 * IP_PKTINFO with the local address (and the IP_MULTICAST_IF index, 0),
 * IP_TTL with the multicast TTL, IP_TOS with the TOS byte of the segment
 * that completed an accepted socket's handshake (rcv_tos: relay.c puts the
 * engine's in the slot; 0 for any other socket, as Linux's), each if its
 * receive option is on. */
static int ip_pktoptions(struct us_sock *s, void *val, socklen_t *len)
{
	struct cmsg_out m = { val, *len };
	uint64_t local = atomic_load(&s->local);
	struct in_pktinfo pi;
	int ttl = ip4_kept_value(s, IP_MULTICAST_TTL, 1), tos = atomic_load(&us_sock_ipopts(s)->rcv_tos);

	/* Linux's inet_rcv_saddr: the address bound (with
	 * IP_BIND_ADDRESS_NO_PORT too, port 0) or connected from; the slot
	 * has none before (us_publish). */
	memset(&pi, 0, sizeof(pi));
	pi.ipi_addr.s_addr = pi.ipi_spec_dst.s_addr = htonl(us_addr(local));
	if (ip4_kept_value(s, IP_PKTINFO, 0))
		put_cmsg(&m, IPPROTO_IP, IP_PKTINFO, &pi, sizeof(pi));
	if (ip4_kept_value(s, IP_RECVTTL, 0))
		put_cmsg(&m, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl));
	if (ip4_kept_value(s, IP_RECVTOS, 0))
		put_cmsg(&m, IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
	*len -= m.left;
	return 0;
}

static int ip_getsockopt(struct us_sock *s, int name, void *val, socklen_t *len)
{
	_Atomic int *k = ip_kept(s, name);
	struct us_call c;
	int v, i;

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
	if (!val || !len)
		return -EFAULT;
	if ((i = ip4_kept_index(name)) >= 0 && (atomic_load(&us_sock_ipopts(s)->set4) & (1u << i))) {
		v = atomic_load(&us_sock_ipopts(s)->kept4[i]);
		if (name != IP_MULTICAST_IF)
			return ip_put_int(val, len, v);
		/* A struct in_addr. */
		if (*len > (socklen_t)sizeof(v))
			*len = sizeof(v);
		memcpy(val, &v, *len);
		return 0;
	}
	switch (name) {
	case IP_PROTOCOL:
		/* Linux's inet_num: for TCP, the local port. */
		return ip_put_int(val, len, us_port(atomic_load(&s->local)));
	case IP_OPTIONS:
		if (*len > atomic_load(&us_sock_ipopts(s)->ip_opts_len))
			*len = atomic_load(&us_sock_ipopts(s)->ip_opts_len);
		memcpy(val, us_sock_ipopts(s)->ip_opts, *len);
		return 0;
	case IP_PKTOPTIONS:
		return ip_pktoptions(s, val, len);
	case IP_MTU:
		break;
	default:
		/* A kept option never set, and the rest: the kernel's
		 * default. */
		if ((i = probe_open(atomic_load(&s->family))) < 0)
			return i;
		return probe_close(i, probe_get(i, IPPROTO_IP, name, val, len));
	}
	/* The path MTU of a connection; none without one (Linux: no route
	 * cached). */
	c.u.opt.level = IPPROTO_TCP;
	c.u.opt.name = UST_TCP_OPT_IP_MTU;
	if (us_call(&c, us_op_getopt, s) < 0)
		return -ENOTCONN;
	return ip_put_int(val, len, c.u.opt.val);
}

static uint8_t linux_state(int st);

/* The repair options (TCP_REPAIR and those that need its mode, for
 * checkpoint and restore), as Linux answers a process without
 * CAP_NET_ADMIN, which a program under ustcp(1) is: the stack has no
 * repair mode, so TCP_REPAIR is refused and the rest answer as outside
 * the mode (tcp_can_repair_sock, do_tcp_setsockopt; measured on Linux
 * 6.18 as an unprivileged user). 1: not one of them. */
static int repair_set(const struct us_sock *s, int name)
{
	switch (name) {
	case TCP_REPAIR:
	case TCP_REPAIR_QUEUE:
	case TCP_REPAIR_WINDOW:
	case TCP_TIMESTAMP: /* its offset, set in the mode */
		return -EPERM;
	case TCP_REPAIR_OPTIONS:
		return -EINVAL;
	case TCP_QUEUE_SEQ:
		/* No queue chosen: EINVAL, once the socket is closed. */
		return linux_state(atomic_load(&s->state)) == TCP_CLOSE ? -EINVAL : -EPERM;
	}
	return 1;
}

/* Their reading: TCP_REPAIR is 0, the others need the mode (the window's
 * length is checked first). 1: not one of them. */
static int repair_get(int name, void *val, socklen_t *len)
{
	switch (name) {
	case TCP_REPAIR:
		return put_int(val, len, 0);
	case TCP_REPAIR_QUEUE:
	case TCP_QUEUE_SEQ:
		return -EINVAL;
	case TCP_REPAIR_WINDOW:
		if (!len)
			return -EFAULT;
		return *len == sizeof(struct tcp_repair_window) ? -EPERM : -EINVAL;
	}
	return 1;
}

/* TCP_TIMESTAMP: the connection's TSval clock (ms), as the stack sends
 * it. */
static int get_ts_clock(struct us_sock *s, void *val, socklen_t *len)
{
	struct us_call c;
	long r;

	if ((r = us_call(&c, us_op_ts_clock, s)) < 0)
		return (int)r;
	return put_int(val, len, c.u.opt.val);
}

/* TCP options Linux keeps with no effect on this stack's segments:
 * TCP_THIN_DUPACK (obsolete: taken, read as 0), and TCP_FASTOPEN, the
 * queue length of a listener's Fast Open requests, which read back as
 * Linux caps them (net.core.somaxconn); like Linux with its default
 * net.ipv4.tcp_fastopen (1: clients only), the stack never takes data
 * from a SYN (CAVEATS). */
static int tcp_kept_set(struct us_sock *s, int name, const void *val, socklen_t len)
{
	int v, r, st = atomic_load(&s->state);

	if ((r = int_arg(val, len, &v)) < 0)
		return r;
	if (name == TCP_THIN_DUPACK)
		return v < 0 || v > 1 ? -EINVAL : 0;
	if (v < 0 || (st != UST_TCP_CLOSED && st != UST_TCP_LISTEN))
		return -EINVAL;
	atomic_store(&s->fastopen_qlen, v < sysctl_value(&somaxconn) ? v : sysctl_value(&somaxconn));
	return 0;
}

/* TCP options whose only effect a program can see on this stack is what
 * getsockopt reads back, measured on Linux 6.18 (tests/shim/tcpmisc.py):
 *  - TCP_ULP: no upper layer is ever attached, as on a kernel without the
 *    tls module (ENOENT; OpenSSL and the others then stay in user space);
 *  - TCP_FASTOPEN_KEY: 16 bytes, or 32 (with a backup key); used by a
 *    Fast Open server, which net.ipv4.tcp_fastopen's default of 1 is not;
 *  - TCP_FASTOPEN_NO_COOKIE: 0 or 1, before the connection only; used by a
 *    Fast Open client, which the stack is not (TCP_FASTOPEN_CONNECT);
 *  - TCP_TX_DELAY: microseconds added to each segment's departure time,
 *    which only the fq qdisc honours; a packet socket's frames bypass it. */
static int tcp_misc_set(struct us_sock *s, int name, const void *val, socklen_t len)
{
	int v, r, st = atomic_load(&s->state);

	switch (name) {
	case TCP_ULP:
		if (len < 1)
			return -EINVAL;
		return val ? -ENOENT : -EFAULT;
	case TCP_FASTOPEN_KEY:
		if (len != 16 && len != 32)
			return -EINVAL;
		if (!val)
			return -EFAULT;
		atomic_store(&s->fastopen_key_len, 0);
		memcpy(s->fastopen_key, val, len);
		atomic_store(&s->fastopen_key_len, (int)len);
		return 0;
	case TCP_FASTOPEN_NO_COOKIE:
		if ((r = int_arg(val, len, &v)) < 0)
			return r;
		if (v < 0 || v > 1 || (st != UST_TCP_CLOSED && st != UST_TCP_LISTEN))
			return -EINVAL;
		atomic_store(&s->fastopen_no_cookie, v);
		return 0;
	default: /* TCP_TX_DELAY: under 2^28 us, as Linux */
		if ((r = int_arg(val, len, &v)) < 0)
			return r;
		if (v < 0 || v >= 1 << 28)
			return -EINVAL;
		atomic_store(&s->tx_delay, v);
		return 0;
	}
}

static int tcp_misc_get(struct us_sock *s, int name, void *val, socklen_t *len)
{
	int n;

	switch (name) {
	case TCP_ULP:
		if (!len)
			return -EFAULT;
		*len = 0; /* none attached */
		return 0;
	case TCP_FASTOPEN_KEY:
		if (!len)
			return -EFAULT;
		n = atomic_load(&s->fastopen_key_len);
		if (*len > (socklen_t)n)
			*len = (socklen_t)n;
		if (*len && !val)
			return -EFAULT;
		if (*len)
			memcpy(val, s->fastopen_key, *len);
		return 0;
	case TCP_FASTOPEN_NO_COOKIE:
		return put_int(val, len, atomic_load(&s->fastopen_no_cookie));
	default: /* TCP_TX_DELAY */
		return put_int(val, len, atomic_load(&s->tx_delay));
	}
}

/* TCP_ZEROCOPY_RECEIVE as Linux's tcp_zerocopy_receive answers where no
 * received byte can be mapped: ours cannot (the socket is an AF_UNIX
 * pair's end, and mmap() of it fails with ENODEV), so it takes the paths
 * that map nothing. What the app end holds (Linux's tcp_inq) is read
 * into the copy buffer when it fits there (receive_fallback_to_copy),
 * else the reader is told to read it (recv_skip_hint) while it is less
 * than a page; a page or more would need the mapping (EINVAL, as Linux
 * for an address that is not one). */
static int zc_receive(int fd, struct us_sock *s, struct ust_linux_zc *zc)
{
	int32_t copybuf_len = zc->copybuf_len;
	int inq = 0, st = atomic_load(&s->state);
	long page = sysconf(_SC_PAGESIZE);
	ssize_t n;

	zc->copybuf_len = 0;
	zc->msg_flags = 0;
	if (zc->address & (uint64_t)(page - 1))
		return -EINVAL;
	if (st == UST_TCP_LISTEN)
		return -ENOTCONN;
	if (st != UST_TCP_SYN_SENT && st != UST_TCP_SYN_RECEIVED && (REAL(ioctl)(fd, FIONREAD, &inq) < 0 || inq < 0))
		inq = 0;
	if (inq && inq <= copybuf_len) {
		zc->length = 0;
		zc->recv_skip_hint = 0;
		n = REAL(recv)(fd, (void *)(uintptr_t)zc->copybuf_address, (size_t)inq, MSG_DONTWAIT);
		if (n < 0)
			return -errno;
		zc->copybuf_len = (int32_t)n;
		return 0;
	}
	if (inq < page) {
		zc->length = 0;
		zc->recv_skip_hint = (uint32_t)inq;
		/* Nothing, and the peer's FIN came (SOCK_DONE). */
		return !inq && us_inq_hint(fd, s) > 0 ? -EIO : 0;
	}
	return -EINVAL;
}

/* The option's getsockopt around it, as Linux's do_tcp_getsockopt: the
 * request (at least to its length field; beyond the struct, zeros), and
 * back the fields the caller's length reaches: the socket's error and
 * the bytes to read (tcp_inq_hint) at their exact ends only. */
static int zc_get(int fd, struct us_sock *s, void *val, socklen_t *len)
{
#define ZC_END(f) (offsetof(struct ust_linux_zc, f) + sizeof(((struct ust_linux_zc *)0)->f))
	struct ust_linux_zc zc;
	size_t n;
	bool sk_err;
	int err;

	if (!len)
		return -EFAULT;
	if ((int)*len < (int)ZC_END(length))
		return -EINVAL;
	if (!val)
		return -EFAULT;
	n = *len;
	if (n > sizeof(zc)) {
		for (size_t i = sizeof(zc); i < n; i++)
			if (((const uint8_t *)val)[i])
				return -EINVAL;
		n = sizeof(zc);
		*len = (socklen_t)n;
	}
	memset(&zc, 0, sizeof(zc));
	memcpy(&zc, val, n);
	if (zc.reserved || (zc.msg_flags & ~(uint32_t)UST_TCP_CMSG_TS))
		return -EINVAL;
	err = zc_receive(fd, s, &zc);
	/* Linux's labels: at msg_flags' end or beyond, the timestamps'
	 * messages (none here: TCP_CMSG_TS adds nothing), then the error,
	 * then inq; at the exact end of a field from err to msg_controllen,
	 * the error and inq; at inq's, inq; else neither. */
	sk_err = n >= ZC_END(msg_flags) || n == ZC_END(err) || n == ZC_END(copybuf_address) ||
		 n == ZC_END(copybuf_len) || n == ZC_END(flags) || n == ZC_END(msg_control) ||
		 n == ZC_END(msg_controllen);
	if (err)
		return err;
	if (sk_err)
		zc.err = -us_take_error(fd, s);
	if (sk_err || n == ZC_END(inq))
		zc.inq = (uint32_t)us_inq_hint(fd, s);
	memcpy(val, &zc, n);
	return 0;
#undef ZC_END
}

static bool tcp_misc(int level, int name)
{
	return level == IPPROTO_TCP && (name == TCP_ULP || name == TCP_FASTOPEN_KEY ||
					name == TCP_FASTOPEN_NO_COOKIE || name == TCP_TX_DELAY);
}

/* SO_MEMINFO as Linux's sk_get_meminfo fills it for TCP: the bytes
 * waiting to be read, the receive buffer, the bytes queued to send, the
 * send buffer, and nothing in the other counters (reservations, option
 * memory, backlog, drops), which are the kernel's own. */
static int sol_meminfo(struct us_sock *s, void *val, socklen_t *len)
{
	uint32_t mem[SK_MEMINFO_VARS] = { 0 };
	struct ust_tcp_status st;
	struct us_call c;

	if (!val || !len)
		return -EFAULT;
	if (us_status(s, &st) == 0) {
		mem[SK_MEMINFO_RMEM_ALLOC] = (uint32_t)st.rcv_queued;
		mem[SK_MEMINFO_WMEM_QUEUED] = (uint32_t)st.snd_queued;
	}
	c.u.opt.level = IPPROTO_TCP;
	c.u.opt.name = UST_TCP_OPT_RCVBUF;
	if (us_call(&c, us_op_getopt, s) == 0)
		mem[SK_MEMINFO_RCVBUF] = (uint32_t)c.u.opt.val;
	c.u.opt.level = IPPROTO_TCP;
	c.u.opt.name = UST_TCP_OPT_SNDBUF;
	if (us_call(&c, us_op_getopt, s) == 0)
		mem[SK_MEMINFO_SNDBUF] = (uint32_t)c.u.opt.val;
	if (*len > (socklen_t)sizeof(mem))
		*len = sizeof(mem);
	memcpy(val, mem, *len);
	return 0;
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
	if (level == SOL_SOCKET && (r = sol_set_check(fd, s, name, val, len, &v)) <= 0) {
		if (r < 0)
			return (int)us_ret(r);
		val = &v; /* what Linux would take of it */
		len = sizeof(v);
	}
	if (level == IPPROTO_TCP && (name == TCP_THIN_DUPACK || name == TCP_FASTOPEN))
		return (int)us_ret(tcp_kept_set(s, name, val, len));
	if (tcp_misc(level, name))
		return (int)us_ret(tcp_misc_set(s, name, val, len));
	if (level == IPPROTO_TCP && name == TCP_FASTOPEN_CONNECT) {
		/* As Linux with net.ipv4.tcp_fastopen's client bit off (the
		 * stack keeps no Fast Open cookies; MSG_FASTOPEN in io.c):
		 * the value checked, then refused. */
		if ((r = int_arg(val, len, &v)) < 0)
			return (int)us_ret(r);
		return (int)us_ret(v < 0 || v > 1 ? -EINVAL : -EOPNOTSUPP);
	}
	if (level == IPPROTO_TCP && name == TCP_INQ) {
		/* The slot's flag, which recvmsg reads (io.c) and an accepted
		 * socket takes from its listener (sk_clone). */
		if ((r = int_arg(val, len, &v)) < 0)
			return (int)us_ret(r);
		if (v < 0 || v > 1)
			return (int)us_ret(-EINVAL);
		if (v)
			atomic_fetch_or(&s->flags, US_F_INQ);
		else
			atomic_fetch_and(&s->flags, ~US_F_INQ);
		return 0;
	}
	if ((k = kept(s, level, name))) {
		if ((r = int_arg(val, len, &v)) < 0)
			return (int)us_ret(r);
		/* SO_REUSEADDR and SO_REUSEPORT read back 0 or 1. */
		atomic_store(k, level == SOL_SOCKET ? v != 0 : v);
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
		return r;
	}
	if (level == IPPROTO_TCP && name == TCP_CONGESTION)
		return (int)us_ret(set_congestion(s, val, len));
	/* Linux's do_tcp_setsockopt checks the length before it looks at
	 * the option (only TCP_CONGESTION, TCP_ULP and the Fast Open key come
	 * first). */
	if (level == IPPROTO_TCP && len < (socklen_t)sizeof(int) && name != TCP_ULP && name != TCP_FASTOPEN_KEY)
		return (int)us_ret(-EINVAL);
	if (level == IPPROTO_TCP && (name == TCP_MD5SIG || name == TCP_MD5SIG_EXT))
		return (int)us_ret(set_md5(s, name, val, len));
	if (level == IPPROTO_TCP && (r = repair_set(s, name)) <= 0)
		return (int)us_ret(r);
	return (int)us_ret(-ENOPROTOOPT);
}

/* Linux's TCP_INFO state numbers. TIME-WAIT is CLOSE: Linux hands it to a
 * mini-socket (tcp_time_wait) and closes the program's (tcp_done), which
 * keeps its counters; ss shows the mini-socket, as ustcp-stat ours. */
static uint8_t linux_state(int st)
{
	static const uint8_t map[UST_TCP_NSTATES] = {
		[UST_TCP_CLOSED] = TCP_CLOSE, [UST_TCP_LISTEN] = TCP_LISTEN,
		[UST_TCP_SYN_SENT] = TCP_SYN_SENT, [UST_TCP_SYN_RECEIVED] = TCP_SYN_RECV,
		[UST_TCP_ESTABLISHED] = TCP_ESTABLISHED, [UST_TCP_CLOSE_WAIT] = TCP_CLOSE_WAIT,
		[UST_TCP_FIN_WAIT_1] = TCP_FIN_WAIT1, [UST_TCP_CLOSING] = TCP_CLOSING,
		[UST_TCP_LAST_ACK] = TCP_LAST_ACK, [UST_TCP_FIN_WAIT_2] = TCP_FIN_WAIT2,
		[UST_TCP_TIME_WAIT] = TCP_CLOSE,
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
	if (st->state == UST_TCP_LISTEN) {
		/* A listener's, as Linux's: the pacing rates, reordering and
		 * cwnd, then the connections ready for accept() in unacked
		 * and the backlog in sacked, and nothing else. */
		ti->tcpi_pacing_rate = st->info_pacing_rate;
		ti->tcpi_max_pacing_rate = st->max_pacing_rate;
		ti->tcpi_reordering = st->reordering;
		ti->tcpi_snd_cwnd = st->cwnd;
		ti->tcpi_unacked = st->acceptq;
		ti->tcpi_sacked = st->backlog_max;
		return;
	}
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
	/* Without a sample, Linux's initial mdev_us (1 s) >> 2. */
	ti->tcpi_rttvar = st->srtt ? (uint32_t)st->rttvar : 250000u;
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
	ti->tcpi_min_rtt = st->min_rtt ? (uint32_t)st->min_rtt : UINT32_MAX; /* none: ~0U */
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
		case SO_PASSCRED:
		case SO_PASSSEC:
		case SO_PASSPIDFD:
			return (int)us_ret(-EOPNOTSUPP); /* as their setsockopt */
		case SO_SNDBUFFORCE:
		case SO_RCVBUFFORCE:
			return (int)us_ret(-ENOPROTOOPT); /* set only */
		case SO_MEMINFO:
			return (int)us_ret(sol_meminfo(s, val, len));
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
	if (level == IPPROTO_TCP && name == TCP_CC_INFO)
		return (int)us_ret(get_cc_info(s, val, len));
	if (level == IPPROTO_TCP && name == TCP_SAVED_SYN)
		return (int)us_ret(get_saved_syn(s, val, len));
	if (level == IPPROTO_TCP && name == TCP_THIN_DUPACK)
		return (int)us_ret(put_int(val, len, 0));
	if (level == IPPROTO_TCP && name == TCP_FASTOPEN)
		return (int)us_ret(put_int(val, len, atomic_load(&s->fastopen_qlen)));
	if (level == IPPROTO_TCP && name == TCP_INQ)
		return (int)us_ret(put_int(val, len, !!(atomic_load(&s->flags) & US_F_INQ)));
	if (level == IPPROTO_TCP && name == TCP_FASTOPEN_CONNECT)
		return (int)us_ret(put_int(val, len, 0));
	if (tcp_misc(level, name))
		return (int)us_ret(tcp_misc_get(s, name, val, len));
	if (level == IPPROTO_TCP && name == TCP_ZEROCOPY_RECEIVE)
		return (int)us_ret(zc_get(fd, s, val, len));
	if (level == IPPROTO_TCP && name == TCP_TIMESTAMP)
		return (int)us_ret(get_ts_clock(s, val, len));
	if (level == IPPROTO_TCP && (r = repair_get(name, val, len)) <= 0)
		return (int)us_ret(r);
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
