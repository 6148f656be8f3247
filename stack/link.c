#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if_arp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "csum.h"
#include "hotmem.h"
#include "link.h"
#include "log.h"
#include "steer.h"

#ifndef ARPHRD_RAWIP
#define ARPHRD_RAWIP 519
#endif

#define BPF_ACCEPT_LEN 0x40000u /* snap length: whole frames, GSO included */

static int link_fail(char *err, size_t errlen, int e, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int link_fail(char *err, size_t errlen, int e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -e;
}

/* Jump targets patched at the end of ust_link_filter: the protocol
 * checks of IPv4 and IPv6, and the last two instructions. */
#define J_ACCEPT 0xff
#define J_DROP 0xfe
#define J_PROTO4 0xfd
#define J_PROTO6 0xfc

/* IPv6 whose destination (at offset dst in the frame) is a: four words,
 * each one that differs skipping to the instruction after the block. */
static unsigned filter_ip6_dst(struct sock_filter *prog, unsigned dst, const struct ust_ip6 *a)
{
	for (unsigned w = 0; w < 4; w++) {
		uint8_t skip = (uint8_t)(6 - 2 * w);

		prog[2 * w] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, dst + 4 * w);
		prog[2 * w + 1] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ust_get32(a->b + 4 * w),
							       w == 3 ? J_PROTO6 : 0, skip);
	}
	return 8;
}

/* The protocols a frame to our address may carry: the stack's (TCP, ICMP,
 * ICMPv6 and IPv6's extension headers, which it walks). The kernel can
 * describe every GSO frame of TCP in a virtio_net_hdr; one it cannot
 * (SCTP's, or a UDP or GRE tunnel's around SCTP) leaves the receive ring
 * stuck (link.c, "the receive ring"): none is let in. */
static unsigned filter_protocols(struct sock_filter *prog, unsigned off, const uint8_t *protos, unsigned n)
{
	prog[0] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_B | BPF_ABS, off);
	for (unsigned i = 0; i < n; i++)
		prog[1 + i] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, protos[i], J_ACCEPT,
							   i + 1 < n ? 0 : J_DROP);
	return 1 + n;
}

/* A jump's offset from instruction i to the place a label stands for, in
 * a program of n instructions; an offset already is one. */
static uint8_t filter_target(uint8_t j, unsigned i, unsigned n, unsigned proto4, unsigned proto6)
{
	unsigned to;

	switch (j) {
	case J_ACCEPT: to = n - 1; break;
	case J_DROP: to = n - 2; break;
	case J_PROTO4: to = proto4; break;
	case J_PROTO6: to = proto6; break;
	default: return j;
	}
	return (uint8_t)(to - (i + 1));
}

unsigned ust_link_filter(uint32_t addr, const struct ust_ip6 *addr6, const uint8_t mac[UST_ETH_ALEN], bool l3,
			 struct sock_filter prog[UST_LINK_FILTER_MAX])
{
	/* Ethernet: IPv4 to addr, or ARP whose target address is addr;
	 * then, with addr6, IPv6 (its destination is at 14 + 24). */
	static const struct sock_filter eth[] = {
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),                      /* 0: EtherType */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, UST_ETHERTYPE_IPV4, 0, 2), /* 1: IPv4? else 4 */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, UST_ETH_HLEN + 16),        /* 2: IPv4 destination */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0 /* addr */, J_PROTO4, J_DROP), /* 3: ours? */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, UST_ETHERTYPE_ARP, 0, 2),  /* 4: ARP? else 7 */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, UST_ETH_HLEN + 24),        /* 5: ARP target address */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0 /* addr */, J_ACCEPT, J_DROP), /* 6: ours? */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, UST_ETHERTYPE_IPV6, 0, J_DROP), /* 7: IPv6? */
	};
	/* L3 (tun): the frame is the datagram; IPv6's destination at 24. */
	static const struct sock_filter ip[] = {
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),                       /* 0: version/IHL */
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xf0),                   /* 1 */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x40, 0, 2),             /* 2: IPv4? else 5 */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 16),                      /* 3: destination */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0 /* addr */, J_PROTO4, J_DROP), /* 4: ours? */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x60, 0, J_DROP),        /* 5: IPv6? */
	};
	static const uint8_t protos4[] = { UST_IPPROTO_TCP, UST_IPPROTO_ICMP };
	static const uint8_t protos6[] = { UST_IPPROTO_TCP, UST_IPPROTO_ICMPV6, UST_IPPROTO_HOPOPTS,
					   UST_IPPROTO_ROUTING, UST_IPPROTO_DSTOPTS, UST_IPPROTO_FRAGMENT };
	const struct sock_filter *src = l3 ? ip : eth;
	unsigned n = l3 ? UST_ARRAY_SIZE(ip) : UST_ARRAY_SIZE(eth);
	unsigned e = l3 ? 0 : UST_ETH_HLEN, dst6 = e + 24, proto4, proto6 = 0;

	memcpy(prog, src, n * sizeof(*prog));
	prog[l3 ? 4 : 3].k = addr;
	if (!l3)
		prog[6].k = addr;
	if (!addr6) {
		n--; /* no IPv6: what is not IPv4 or ARP is dropped */
		prog[l3 ? 2 : 4].jf = J_DROP;
	} else {
		n += filter_ip6_dst(prog + n, dst6, addr6);
		if (!l3) {
			static const struct ust_ip6 all_nodes = { .b = { 0xff, 0x02, [15] = 0x01 } };
			struct ust_ip6 ll = ust_ip6_link_local(mac);
			struct ust_ip6 sn = ust_ip6_solicited_node(addr6), sn_ll = ust_ip6_solicited_node(&ll);

			n += filter_ip6_dst(prog + n, dst6, &ll);
			n += filter_ip6_dst(prog + n, dst6, &all_nodes);
			n += filter_ip6_dst(prog + n, dst6, &sn);
			if (!ust_ip6_eq(&sn, &sn_ll))
				n += filter_ip6_dst(prog + n, dst6, &sn_ll);
		}
		prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0); /* no destination of ours */
		proto6 = n;
		n += filter_protocols(prog + n, e + 6, protos6, UST_ARRAY_SIZE(protos6));
	}
	proto4 = n;
	n += filter_protocols(prog + n, e + 9, protos4, UST_ARRAY_SIZE(protos4));
	prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0);              /* drop */
	prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, BPF_ACCEPT_LEN); /* accept */
	for (unsigned i = 0; i < n; i++) {
		if (BPF_CLASS(prog[i].code) != BPF_JMP || BPF_OP(prog[i].code) == BPF_JA)
			continue;
		prog[i].jt = filter_target(prog[i].jt, i, n, proto4, proto6);
		prog[i].jf = filter_target(prog[i].jf, i, n, proto4, proto6);
	}
	return n;
}

/* The keeper filter's labels (bpf_asm.h). */
enum kf_label {
	K_NONE, K_V4Q, K_TCP4, K_V6, K_X1, K_X2, K_X3, K_X4, K_TCP6, K_ICMP6, K_QX1, K_QX2, K_QX3, K_QX4, K_Q6TCP,
	K_ACCEPT, K_DROP, K_SEARCH, K_N
};

unsigned ust_link_port_filter(uint32_t addr, const struct ust_ip6 *addr6, const uint8_t mac[UST_ETH_ALEN], bool l3,
			      const struct ust_steer_range *r, unsigned nr,
			      struct sock_filter prog[UST_LINK_PORT_FILTER_MAX])
{
	/* ust_link_filter's last instruction accepts: what it accepts goes
	 * on from there instead, to the frame's ports. e: the IP header's
	 * offset. */
#define I UST_BPF_I
#define J UST_BPF_J
#define AT UST_BPF_AT
#define NEXT UST_BPF_NEXT
	const uint32_t e = l3 ? 0 : UST_ETH_HLEN;
	const struct ust_bpf_ins head[] = {
		l3 ? (struct ust_bpf_ins)I(BPF_LD | BPF_B | BPF_ABS, 0)                   /* version */
		   : (struct ust_bpf_ins)I(BPF_LD | BPF_H | BPF_ABS, 12),                 /* EtherType */
		l3 ? (struct ust_bpf_ins)I(BPF_ALU | BPF_AND | BPF_K, 0xf0)
		   : (struct ust_bpf_ins)J(BPF_JMP | BPF_JEQ | BPF_K, UST_ETHERTYPE_ARP, K_ACCEPT, NEXT),
		J(BPF_JMP | BPF_JEQ | BPF_K, l3 ? 0x40 : UST_ETHERTYPE_IPV4, NEXT, K_V6),
		I(BPF_LD | BPF_H | BPF_ABS, e + 6),                          /* flags, fragment offset */
		J(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, K_DROP, NEXT),         /* a later fragment */
		I(BPF_LDX | BPF_B | BPF_MSH, e),                             /* X = IP header length */
		I(BPF_LD | BPF_B | BPF_ABS, e + 9),                          /* protocol */
		J(BPF_JMP | BPF_JEQ | BPF_K, 6, K_TCP4, NEXT),
		J(BPF_JMP | BPF_JEQ | BPF_K, 1, NEXT, K_DROP),               /* ICMP */
		I(BPF_LD | BPF_B | BPF_IND, e),                              /* its type */
		J(BPF_JMP | BPF_JEQ | BPF_K, 3, K_V4Q, NEXT),                /* unreachable */
		J(BPF_JMP | BPF_JEQ | BPF_K, 11, K_V4Q, NEXT),               /* time exceeded */
		J(BPF_JMP | BPF_JEQ | BPF_K, 12, NEXT, K_DROP),              /* parameter problem */
		AT(K_V4Q, BPF_LD | BPF_B | BPF_IND, e + 8 + 9),              /* the quoted protocol */
		J(BPF_JMP | BPF_JEQ | BPF_K, 6, NEXT, K_DROP),
		I(BPF_LD | BPF_B | BPF_IND, e + 8),                          /* the quoted header's length */
		I(BPF_ALU | BPF_AND | BPF_K, 0xf),
		I(BPF_ALU | BPF_LSH | BPF_K, 2),
		I(BPF_ALU | BPF_ADD | BPF_X, 0),
		I(BPF_MISC | BPF_TAX, 0),
		I(BPF_LD | BPF_H | BPF_IND, e + 8),                          /* the quoted source port */
		UST_BPF_GOTO(K_SEARCH),
		AT(K_TCP4, BPF_LD | BPF_H | BPF_IND, e + 2),                 /* TCP: destination port */
		UST_BPF_GOTO(K_SEARCH),
		/* IPv6: TCP past up to four hop-by-hop, routing and
		 * destination options headers (a peer's sticky headers). */
		AT(K_V6, BPF_LD | BPF_B | BPF_ABS, e + 6),                   /* next header */
		J(BPF_JMP | BPF_JEQ | BPF_K, 58, K_ICMP6, NEXT),
		I(BPF_LDX | BPF_W | BPF_IMM, 0),
		UST_BPF_EXT_STEP(K_X1, e + 40, K_TCP6, K_DROP), UST_BPF_EXT_STEP(K_X2, e + 40, K_TCP6, K_DROP),
		UST_BPF_EXT_STEP(K_X3, e + 40, K_TCP6, K_DROP), UST_BPF_EXT_STEP(K_X4, e + 40, K_TCP6, K_DROP),
		J(BPF_JMP | BPF_JEQ | BPF_K, 6, K_TCP6, K_DROP),
		AT(K_TCP6, BPF_LD | BPF_H | BPF_IND, e + 40 + 2),            /* TCP: destination port */
		UST_BPF_GOTO(K_SEARCH),
		AT(K_ICMP6, BPF_LD | BPF_B | BPF_ABS, e + 40),               /* ICMPv6: its type */
		J(BPF_JMP | BPF_JGT | BPF_K, 137, K_DROP, NEXT),
		J(BPF_JMP | BPF_JGE | BPF_K, 133, K_ACCEPT, NEXT),           /* neighbour discovery */
		J(BPF_JMP | BPF_JGT | BPF_K, 4, K_DROP, NEXT),               /* errors are 1..4 */
		J(BPF_JMP | BPF_JEQ | BPF_K, 0, K_DROP, NEXT),
		I(BPF_LD | BPF_B | BPF_ABS, e + 48 + 6),                     /* the quoted next header */
		I(BPF_LDX | BPF_W | BPF_IMM, 0),                             /* past our sticky headers */
		UST_BPF_EXT_STEP(K_QX1, e + 88, K_Q6TCP, K_DROP), UST_BPF_EXT_STEP(K_QX2, e + 88, K_Q6TCP, K_DROP),
		UST_BPF_EXT_STEP(K_QX3, e + 88, K_Q6TCP, K_DROP), UST_BPF_EXT_STEP(K_QX4, e + 88, K_Q6TCP, K_DROP),
		J(BPF_JMP | BPF_JEQ | BPF_K, 6, K_Q6TCP, K_DROP),
		AT(K_Q6TCP, BPF_LD | BPF_H | BPF_IND, e + 88),               /* the quoted source port */
		UST_BPF_GOTO(K_SEARCH),
		AT(K_ACCEPT, BPF_RET | BPF_K, BPF_ACCEPT_LEN),
		AT(K_DROP, BPF_RET | BPF_K, 0),
	};
#undef I
#undef J
#undef AT
#undef NEXT
	unsigned n = ust_link_filter(addr, addr6, mac, l3, prog) - 1, at[K_N] = { 0 };

	_Static_assert(UST_ARRAY_SIZE(head) == UST_LINK_PORT_FILTER_HEAD, "the head's length, as link.h counts it");
	if (nr > UST_LINK_PORT_RANGES_MAX)
		return 0;
	at[K_SEARCH] = UST_ARRAY_SIZE(head);
	if (!ust_bpf_assemble(head, UST_ARRAY_SIZE(head), at, prog + n))
		return 0;
	n += UST_ARRAY_SIZE(head);
	return n + ust_steer_search(prog + n, r, nr, BPF_ACCEPT_LEN, 0);
}

/* Reads what the stack needs to know about the interface. */
static int link_describe(struct ust_link *l, const char *ifname, char *err, size_t errlen)
{
	struct ifreq ifr;

	if (strlen(ifname) >= IFNAMSIZ)
		return link_fail(err, errlen, EINVAL, "USTCP_IFACE=\"%s\": name too long", ifname);
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, ifname);
	if (ioctl(l->fd, SIOCGIFINDEX, &ifr) < 0)
		return link_fail(err, errlen, ENODEV, "USTCP_IFACE=\"%s\": no such interface", ifname);
	l->ifindex = ifr.ifr_ifindex;
	strcpy(l->ifname, ifname);

	if (ioctl(l->fd, SIOCGIFHWADDR, &ifr) < 0)
		return link_fail(err, errlen, errno, "USTCP_IFACE=\"%s\": cannot read its address: %s",
				 ifname, strerror(errno));
	switch (ifr.ifr_hwaddr.sa_family) {
	case ARPHRD_ETHER:
		l->l3 = false;
		memcpy(l->mac, ifr.ifr_hwaddr.sa_data, UST_ETH_ALEN);
		break;
	case ARPHRD_NONE:   /* tun, wireguard */
	case ARPHRD_RAWIP:
		l->l3 = true;
		memset(l->mac, 0, UST_ETH_ALEN);
		break;
	default:
		return link_fail(err, errlen, EPROTONOSUPPORT,
				 "USTCP_IFACE=\"%s\": link type %u is neither Ethernet nor an L3 (tun) link",
				 ifname, ifr.ifr_hwaddr.sa_family);
	}

	if (ioctl(l->fd, SIOCGIFMTU, &ifr) < 0)
		return link_fail(err, errlen, errno, "USTCP_IFACE=\"%s\": cannot read its MTU: %s",
				 ifname, strerror(errno));
	l->mtu = (unsigned)ifr.ifr_mtu;

	if (ioctl(l->fd, SIOCGIFFLAGS, &ifr) < 0 || !(ifr.ifr_flags & IFF_UP))
		return link_fail(err, errlen, ENETDOWN, "USTCP_IFACE=\"%s\": interface is down", ifname);
	return 0;
}

static void set_opt(int fd, int level, int name, int val, const char *what)
{
	if (setsockopt(fd, level, name, &val, sizeof(val)) < 0)
		ust_log(UST_LOG_INFO, "link: %s not available: %s", what, strerror(errno));
}

static int ethtool(const struct ust_link *l, void *cmd)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", l->ifname);
	ifr.ifr_data = cmd;
	return ioctl(l->fd, SIOCETHTOOL, &ifr);
}

/* Sends through the queueing path from now on, where the kernel's
 * software GSO cuts what the device cannot (device_tso); false if the
 * bypass stays. */
static bool leave_bypass(struct ust_link *l)
{
	if (l->bypass && setsockopt(l->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &(int){ 0 }, sizeof(int)) == 0)
		l->bypass = false;
	return !l->bypass;
}

/* Does the device take TCP segments of each family bigger than its MTU
 * (TSO and TSO6, which the kernel keeps on only with the scatter-gather
 * and checksumming they need)? ETHTOOL_GTSO answers for both at once
 * (NETIF_F_ALL_TSO), so the features go by their names, as "ethtool -k"
 * reads them: the active bits of "tx-tcp-segmentation" and
 * "tx-tcp6-segmentation". No privilege needed.
 *
 * Where it does not, runs go all the same, segmented by the kernel's
 * software GSO, as Linux's TCP builds GSO buffers whatever the device
 * (sk_setup_caps always sets NETIF_F_GSO for TCP) and has them cut at the
 * device (validate_xmit_skb): one system call and one sk_buff for up to
 * 64 kB, the checksums computed as it cuts. That cutting is on the queueing
 * path only: PACKET_QDISC_BYPASS sends without it (__dev_direct_xmit drops
 * what validation had to change), so the socket leaves the bypass then.
 * Measured, iperf3 at MTU 1500 with tso/gso/gro/tx off on the veth
 * (tests/bench/README.md, "Software GSO"): 1.44 and 1.52 Gbit/s one frame a
 * segment, 2.92 and 2.66 with runs. */
static void device_tso(struct ust_link *l)
{
	struct {
		struct ethtool_sset_info hdr;
		uint32_t len;
	} info = { .hdr = { .cmd = ETHTOOL_GSSET_INFO, .sset_mask = 1ull << ETH_SS_FEATURES } };
	struct ethtool_gstrings *names = NULL;
	struct ethtool_gfeatures *feat = NULL;
	uint32_t n, blocks;

	l->gso4 = l->gso6 = false;
	l->tso_asked = true;
	if (ethtool(l, &info) < 0 || !(info.hdr.sset_mask & (1ull << ETH_SS_FEATURES)))
		goto out;
	n = info.len;
	blocks = (n + 31) / 32;
	names = calloc(1, sizeof(*names) + (size_t)n * ETH_GSTRING_LEN);
	feat = calloc(1, sizeof(*feat) + blocks * sizeof(feat->features[0]));
	if (!names || !feat)
		goto out;
	*names = (struct ethtool_gstrings){ .cmd = ETHTOOL_GSTRINGS, .string_set = ETH_SS_FEATURES, .len = n };
	*feat = (struct ethtool_gfeatures){ .cmd = ETHTOOL_GFEATURES, .size = blocks };
	if (ethtool(l, names) < 0 || ethtool(l, feat) < 0)
		goto out;
	for (uint32_t i = 0; i < n && i < feat->size * 32; i++) {
		const char *name = (const char *)names->data + (size_t)i * ETH_GSTRING_LEN;
		bool on = feat->features[i / 32].active & (1u << (i % 32));
		if (!strncmp(name, "tx-tcp-segmentation", ETH_GSTRING_LEN))
			l->gso4 = on;
		else if (!strncmp(name, "tx-tcp6-segmentation", ETH_GSTRING_LEN))
			l->gso6 = on;
	}
out:
	free(names);
	free(feat);
	if ((!l->gso4 || !l->gso6) && leave_bypass(l)) {
		ust_log(UST_LOG_INFO, "link %s: TSO%s off: the kernel's GSO segments our runs (no queueing bypass)",
			l->ifname, l->gso4 ? "6" : l->gso6 ? "" : " and TSO6");
		l->gso4 = l->gso6 = true;
	}
}

/* Options that are ours to set whoever opened the socket. */
#define RX_MEM ((size_t)UST_LINK_BATCH * UST_LINK_FRAME_MAX)

static void rx_buffers_at(struct ust_link *l, uint8_t *mem)
{
	for (unsigned i = 0; i < UST_LINK_BATCH; i++) {
		l->rx_iov[2 * i + 1].iov_base = mem + (size_t)i * UST_LINK_FRAME_MAX;
		l->rx_iov[2 * i + 1].iov_len = UST_LINK_FRAME_MAX;
	}
}

/* The receive buffers, 2 MiB for 32 frames of up to 64 KiB, start in
 * ordinary pages, of which small frames touch one per buffer. Once a frame
 * longer than the link's MTU arrives (the kernel coalesced segments: GRO),
 * a flow is streaming in, and every batch writes tens of pages: the
 * buffers move to huge pages (hotmem.h; two, 4 MiB), between two batches,
 * when no frame is in them. A curl's transfer of 1 MB took 25% less with
 * only this (tests/bench/README.md, "huge pages"). */
static void rx_buffers_hot(struct ust_link *l)
{
	uint8_t *mem = ust_hot_map(RX_MEM);

	l->rx_heat_asked = true; /* once: a refusal is not asked again */
	if (!mem)
		return;
	free(l->rx_mem);
	l->rx_mem = mem;
	l->rx_hot = true;
	rx_buffers_at(l, mem);
}

static unsigned ring_ready(const struct ust_link *l);
static void ring_stop(struct ust_link *l, bool own);
static void link_ring_map(struct ust_link *l, unsigned kib);
static int ring_set(int fd, unsigned mtu, unsigned kib);

/* An exit keeper's receive buffers: a curl's keeper held 2 MiB of huge
 * page here through its 60 s of TIME-WAIT, half of all the anonymous
 * memory it kept of the program (the rest is the program's own). A frame
 * now touches a page of ordinary memory per buffer it lands in; a
 * coalesced one heats them again, as at start-up (a keeper may still
 * serve a forked child's connection, whose data streams in). Its ring
 * goes too, now if empty, else once it is (ring_rx). */
void ust_link_cool(struct ust_link *l)
{
	uint8_t *mem;

	/* (A steering group member's stays: taking it off would move the
	 * socket in the group, which only the broker may do.) */
	l->ring_cool = !l->ring_fixed;
	l->ring_later = 0;
	if (l->ring_cool && l->ring && !ring_ready(l))
		ring_stop(l, true);
	if (!l->rx_hot || !(mem = malloc(RX_MEM)))
		return;
	ust_hot_unmap(l->rx_mem, RX_MEM);
	l->rx_mem = mem;
	l->rx_hot = l->rx_heat_asked = false;
	rx_buffers_at(l, mem);
}

/* Big socket buffers absorb bursts while the stack thread is busy.
 * The forcing variants need CAP_NET_ADMIN; the plain ones are capped
 * by net.core.[rw]mem_max. */
static void set_buffers(int fd)
{
	int bufsize = 8 << 20;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsize, sizeof(bufsize)) < 0)
		set_opt(fd, SOL_SOCKET, SO_RCVBUF, bufsize, "SO_RCVBUF");
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsize, sizeof(bufsize)) < 0)
		set_opt(fd, SOL_SOCKET, SO_SNDBUF, bufsize, "SO_SNDBUF");
}

static int link_setup(struct ust_link *l, char *err, size_t errlen)
{
	int one = 1, vnet = 0;
	socklen_t vlen = sizeof(vnet);

	if (setsockopt(l->fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) < 0)
		return link_fail(err, errlen, errno, "link: PACKET_AUXDATA: %s", strerror(errno));
	/* Without it (kernels before 4.20) outgoing frames are recognised by
	 * their packet type in ust_link_rx. */
	set_opt(l->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING");
	l->bypass = setsockopt(l->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) == 0;
	if (!l->bypass)
		ust_log(UST_LOG_INFO, "link: PACKET_QDISC_BYPASS not available: %s", strerror(errno));
	/* A virtio_net_hdr in front of every frame: what lets a run of TCP
	 * segments leave in one system call and one sk_buff, segmented by
	 * the device (TSO) or by the kernel's GSO, as the kernel's own TCP
	 * sends. Not on a tun link, whose frames are datagrams.
	 * (A socket with a ring has it already: link_socket_ring.) */
	if (!l->l3 && (getsockopt(l->fd, SOL_PACKET, PACKET_VNET_HDR, &vnet, &vlen) < 0 || !vnet))
		vnet = setsockopt(l->fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) == 0;
	if (!l->l3 && vnet) {
		l->vnet = true;
		l->gso4 = l->gso6 = l->tso_asked = false; /* device_tso, at the first possible run */
	} else if (!l->l3) {
		ust_log(UST_LOG_INFO, "link: PACKET_VNET_HDR not available (%s): one frame per segment",
			strerror(errno));
	}
	set_buffers(l->fd);

	l->rx_mem = malloc(RX_MEM);
	l->rx_hot = l->rx_heat_asked = false;
	l->rx_addr = calloc(UST_LINK_BATCH, sizeof(*l->rx_addr));
	l->rx_cmsg = calloc(UST_LINK_BATCH, sizeof(*l->rx_cmsg));
	if (!l->rx_mem || !l->rx_addr || !l->rx_cmsg)
		return link_fail(err, errlen, ENOMEM, "link: out of memory for receive buffers");
	for (unsigned i = 0; i < UST_LINK_BATCH; i++) {
		l->rx_iov[2 * i].iov_base = &l->rx_vnet[i];
		l->rx_iov[2 * i].iov_len = sizeof(l->rx_vnet[i]);
	}
	rx_buffers_at(l, l->rx_mem);

	memset(&l->tx_addr, 0, sizeof(l->tx_addr));
	l->tx_addr.sll_family = AF_PACKET;
	l->tx_addr.sll_ifindex = l->ifindex;
	l->tx_addr.sll_protocol = htons(l->l3 ? ETH_P_IP : ETH_P_ALL);
	return 0;
}

/* A steered stack's neighbour socket with an IPv6 address sees ARP and
 * neighbour discovery (ICMPv6 types 133 to 137 right after the fixed
 * header, as RFC 4861 sends them), nothing else, before the address
 * filter: the steering group gives those frames to no member (every stack
 * needs them, as each learns its neighbours and answers for the address). */
static const struct sock_filter neigh_prefix[] = {
	BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),                        /* 0: EtherType */
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, UST_ETHERTYPE_ARP, 7, 0),    /* 1: ARP: to 9 */
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, UST_ETHERTYPE_IPV6, 0, 5),   /* 2: else drop */
	BPF_STMT(BPF_LD | BPF_B | BPF_ABS, UST_ETH_HLEN + 6),           /* 3: next header */
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 58, 0, 3),                  /* 4: ICMPv6, else drop */
	BPF_STMT(BPF_LD | BPF_B | BPF_ABS, UST_ETH_HLEN + 40),          /* 5: its type */
	BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 133, 0, 1),                 /* 6: below 133: drop */
	BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 137, 0, 1),                 /* 7: 133..137: to 9 */
	BPF_STMT(BPF_RET | BPF_K, 0),                                   /* 8: drop */
};

/* A SO_REUSEPORT group member's socket (ust_link_group_socket) sees one
 * family's frames, and no neighbour's (which its ARP socket reads), before
 * the port's filter: IPv4 ... */
static const struct sock_filter group4_prefix[] = {
	BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),                        /* 0: EtherType */
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, UST_ETHERTYPE_IPV4, 1, 0),   /* 1: IPv4: to 3 */
	BPF_STMT(BPF_RET | BPF_K, 0),                                   /* 2: drop */
};

/* ... or IPv6 but neighbour discovery (ICMPv6 types 133 to 137). */
static const struct sock_filter group6_prefix[] = {
	BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),                        /* 0: EtherType */
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, UST_ETHERTYPE_IPV6, 0, 5),   /* 1: else drop */
	BPF_STMT(BPF_LD | BPF_B | BPF_ABS, UST_ETH_HLEN + 6),           /* 2: next header */
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 58, 0, 4),                  /* 3: not ICMPv6: to 8 */
	BPF_STMT(BPF_LD | BPF_B | BPF_ABS, UST_ETH_HLEN + 40),          /* 4: its type */
	BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 133, 0, 2),                 /* 5: below 133: to 8 */
	BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 137, 1, 0),                 /* 6: above 137: to 8 */
	BPF_STMT(BPF_RET | BPF_K, 0),                                   /* 7: drop */
};

unsigned ust_link_group_filter(uint32_t addr, const struct ust_ip6 *addr6, const uint8_t mac[UST_ETH_ALEN],
			       uint16_t port, bool v6, struct sock_filter prog[UST_LINK_GROUP_FILTER_MAX])
{
	const struct ust_steer_range one_port = { port, port, 0 };
	const struct sock_filter *prefix = v6 ? group6_prefix : group4_prefix;
	unsigned pre = v6 ? UST_ARRAY_SIZE(group6_prefix) : UST_ARRAY_SIZE(group4_prefix);

	_Static_assert(UST_ARRAY_SIZE(group6_prefix) <= UST_LINK_GROUP_FILTER_MAX - UST_LINK_PORT_FILTER_MAX,
		       "room for the prefix");
	memcpy(prog, prefix, pre * sizeof(prog[0]));
	return pre + ust_link_port_filter(addr, addr6, mac, false, &one_port, 1, prog + pre);
}

/* What a packet socket of link_socket's reads: frames of type proto
 * (ETH_P_ALL, or ETH_P_ARP for a steered stack's ARP socket) that pass
 * the address's filter, behind neigh_prefix (neigh) or, with a port, the
 * port's filter behind group4_prefix or group6_prefix (v6); the filter
 * locked (lock). */
struct link_want {
	uint16_t proto;
	bool neigh, lock;
	uint16_t port;
	bool v6;
	unsigned ring_kib; /* a receive ring of so many KiB, set before bind */
};

/* Sets the receive ring on fd, not yet bound, and the vnet header its
 * slots' layout depends on (which the kernel lets no one change once a
 * ring is set). Before bind, because setting a ring on a bound socket
 * takes it off the device and puts it back after an RCU grace period
 * (packet_set_ring): frames delivered meanwhile are lost, and with them,
 * mid-transfer, the sender's window (tests/bench/README.md, "The receive
 * ring in the loss matrix's recv cells"). Sets ring_bytes; a refusal
 * leaves the socket to receive by calls. */
static void link_socket_ring(struct ust_link *l, unsigned kib)
{
	int e;

	if (!l->l3)
		set_opt(l->fd, SOL_PACKET, PACKET_VNET_HDR, 1, "PACKET_VNET_HDR");
	e = ring_set(l->fd, l->mtu, kib);
	if (e)
		ust_log(UST_LOG_INFO, "link %s: no receive ring (%s): a call per batch", l->ifname, strerror(e));
	else
		l->ring_bytes = (size_t)kib << 10;
}

/* Opens the packet socket on ifname, attaches the filter want says, sets
 * the ring it asks for and binds it: fills l->fd and what link_describe
 * finds. */
static int link_socket(struct ust_link *l, const struct ust_config *cfg, const struct link_want *want, char *err,
		       size_t errlen)
{
	struct sock_filter prog[UST_LINK_GROUP_FILTER_MAX];
	const struct ust_ip6 *a6 = cfg->has_addr6 ? &cfg->addr6 : NULL;
	unsigned pre = want->neigh ? UST_ARRAY_SIZE(neigh_prefix) : 0;
	struct sock_fprog fprog;
	struct sockaddr_ll sll;
	int one = 1, r;

	memset(l, 0, sizeof(*l));
	l->arp_fd = -1;
	/* Protocol 0: the socket receives nothing until bind(), so no frame
	 * slips in before the filter is attached. */
	l->fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		int e = errno;
		return link_fail(err, errlen, e, "cannot open a packet socket: %s%s", strerror(e),
				 e == EPERM ? " (needs CAP_NET_RAW)" : "");
	}
	r = link_describe(l, cfg->iface, err, errlen);
	if (r)
		return r;
	if (want->port) {
		/* Steering is for Ethernet alone (broker.h). */
		if (l->l3)
			return link_fail(err, errlen, EOPNOTSUPP, "link: a port's own socket needs Ethernet");
		fprog.len = (unsigned short)ust_link_group_filter(cfg->addr, a6, l->mac, want->port, want->v6, prog);
	} else {
		memcpy(prog, neigh_prefix, pre * sizeof(prog[0]));
		fprog.len = (unsigned short)(pre + ust_link_filter(cfg->addr, a6, l->mac, l->l3, prog + pre));
	}
	fprog.filter = prog;
	/* A socket bound to every frame sees those the kernel sends too. */
	if (want->neigh || want->port)
		set_opt(l->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING");
	if (setsockopt(l->fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof(fprog)) < 0)
		return link_fail(err, errlen, errno, "link: SO_ATTACH_FILTER: %s", strerror(errno));
	/* Whoever holds the socket later (an unprivileged program, given it
	 * by the launcher's broker) cannot widen what it sees. */
	if (want->lock && setsockopt(l->fd, SOL_SOCKET, SO_LOCK_FILTER, &one, sizeof(one)) < 0)
		return link_fail(err, errlen, errno, "link: SO_LOCK_FILTER: %s", strerror(errno));
	if (want->ring_kib)
		link_socket_ring(l, want->ring_kib);
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(want->proto);
	sll.sll_ifindex = l->ifindex;
	if (bind(l->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		return link_fail(err, errlen, errno, "USTCP_IFACE=\"%s\": bind: %s", cfg->iface, strerror(errno));
	return 0;
}

/* link_socket's fd alone, and in *ring_kib (if not NULL) the KiB of the
 * ring it set (0: none). */
static int link_socket_fd(const struct ust_config *cfg, const struct link_want *want, unsigned *ring_kib, char *err,
			  size_t errlen)
{
	struct ust_link l;
	int r = link_socket(&l, cfg, want, err, errlen);

	if (r) {
		ust_link_close(&l);
		return r;
	}
	if (ring_kib)
		*ring_kib = (unsigned)(l.ring_bytes >> 10);
	return l.fd;
}

int ust_link_socket(const struct ust_config *cfg, unsigned *ring_kib, char *err, size_t errlen)
{
	return link_socket_fd(cfg,
			      &(struct link_want){ .proto = ETH_P_ALL, .lock = true, .ring_kib = ring_kib ? *ring_kib : 0 },
			      ring_kib, err, errlen);
}

int ust_link_arp_socket(const struct ust_config *cfg, char *err, size_t errlen)
{
	if (cfg->has_addr6)
		return link_socket_fd(cfg, &(struct link_want){ .proto = ETH_P_ALL, .neigh = true, .lock = true }, NULL,
				      err, errlen);
	return link_socket_fd(cfg, &(struct link_want){ .proto = ETH_P_ARP, .lock = true }, NULL, err, errlen);
}

int ust_link_group_socket(const struct ust_config *cfg, uint16_t port, bool v6, char *err, size_t errlen)
{
	if (!port || (v6 && !cfg->has_addr6))
		return link_fail(err, errlen, EINVAL, "link: no such port to read");
	return link_socket_fd(cfg, &(struct link_want){ .proto = ETH_P_ALL, .lock = true, .port = port, .v6 = v6 },
			      NULL, err, errlen);
}

int ust_link_open(struct ust_link *l, const struct ust_config *cfg, char *err, size_t errlen)
{
	/* Not locked: the process that opens its own packet socket has the
	 * privilege to open another without a filter, so the lock would keep
	 * nothing from it; unlocked, the stack may narrow the filter to its
	 * ports (ust_link_set_filter: an exit keeper's, docs/architecture.md
	 * §5). */
	int r = link_socket(l, cfg, &(struct link_want){ .proto = ETH_P_ALL }, err, errlen);

	if (!r) {
		l->filter_own = true;
		r = link_setup(l, err, errlen);
	}
	if (r)
		ust_link_close(l);
	else
		l->ring_later = cfg->rx_ring_kib; /* once frames stream in: ring_switch */
	return r;
}

int ust_link_adopt(struct ust_link *l, int fd, const char *ifname, unsigned ring_kib, bool grouped, char *err,
		   size_t errlen)
{
	int r;

	memset(l, 0, sizeof(*l));
	l->fd = fd;
	l->arp_fd = -1;
	l->ring_fixed = grouped;
	r = link_describe(l, ifname, err, errlen);
	if (!r)
		r = link_setup(l, err, errlen);
	if (!r)
		link_ring_map(l, ring_kib);
	if (r)
		ust_link_close(l);
	return r;
}

int ust_link_adopt_extra(const struct ust_link *l, int fd)
{
	int one = 1;

	/* Read by the same code as the link's frames: the same header in
	 * front (PACKET_VNET_HDR), the same word on checksums. */
	if (setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) < 0 ||
	    (l->vnet && setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0)) {
		int e = errno;
		close(fd);
		return -e;
	}
	set_opt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING");
	return 0;
}

int ust_link_adopt_arp(struct ust_link *l, int fd)
{
	int r = ust_link_adopt_extra(l, fd);

	if (!r)
		l->arp_fd = fd;
	return r;
}

int ust_link_set_filter(struct ust_link *l, const struct sock_filter *prog, unsigned len)
{
	struct sock_fprog fprog = { .len = (unsigned short)len, .filter = (struct sock_filter *)prog };

	if (!l->filter_own)
		return -EPERM;
	/* The kernel swaps the program in at once (the old one is freed
	 * after an RCU grace period, without waiting for it). */
	if (setsockopt(l->fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof(fprog)) < 0)
		return -errno;
	return 0;
}

void ust_link_close(struct ust_link *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	if (l->arp_fd >= 0)
		close(l->arp_fd);
	l->arp_fd = -1;
	ust_pcap_close(&l->pcap);
	ust_link_free_buffers(l);
}

void ust_link_free_buffers(struct ust_link *l)
{
	ring_stop(l, false);
	l->ring_later = 0;
	if (l->rx_hot)
		ust_hot_unmap(l->rx_mem, RX_MEM);
	else
		free(l->rx_mem);
	free(l->rx_addr);
	free(l->rx_cmsg);
	l->rx_mem = NULL;
	l->rx_addr = NULL;
	l->rx_cmsg = NULL;
	l->rx_hot = l->rx_heat_asked = false;
}

void ust_link_netif(const struct ust_link *l, const struct ust_config *cfg, struct ust_netif *nif)
{
	memset(nif, 0, sizeof(*nif));
	nif->l3 = l->l3;
	memcpy(nif->mac, l->mac, UST_ETH_ALEN);
	nif->addr = cfg->addr;
	nif->mask = ust_prefix_mask(cfg->prefix);
	nif->gw = cfg->gw;
	nif->has_addr6 = cfg->has_addr6;
	nif->addr6 = cfg->addr6;
	nif->prefix6 = cfg->prefix6;
	nif->gw6 = cfg->gw6;
	nif->mtu = cfg->mtu ? cfg->mtu : l->mtu;
	nif->tx_csum_partial = true; /* tx_plan completes what it cannot offload */
}

/* The kernel's word on a frame's checksum and VLAN tag. */
static unsigned rx_flags(struct msghdr *mh, bool *vlan)
{
	unsigned flags = 0;

	*vlan = false;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		struct tpacket_auxdata aux;

		if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA ||
		    c->cmsg_len < CMSG_LEN(sizeof(aux)))
			continue;
		memcpy(&aux, CMSG_DATA(c), sizeof(aux));
		if (aux.tp_status & (TP_STATUS_CSUMNOTREADY | TP_STATUS_CSUM_VALID))
			flags |= UST_RX_CSUM_OK;
		if (aux.tp_status & TP_STATUS_VLAN_VALID)
			*vlan = true;
	}
	return flags;
}

static bool taken_twice(struct ust_link *l, const uint8_t *frame, size_t len);

/* One frame as the kernel gave it, from a receive call or the ring: to
 * the capture and the stack, unless it is ours going out or tagged, or
 * ring_switch's new socket gives it again. */
static void rx_frame(struct ust_link *l, struct ust_stack *st, const uint8_t *frame, size_t len, unsigned flags,
		     bool vlan, unsigned char pkttype, ust_time now)
{
	if ((l->twice_noting || l->twice_n) && taken_twice(l, frame, len)) {
		st->ctr.drop[UST_DROP_RX_TWICE]++;
		return;
	}
	if (pkttype == PACKET_OUTGOING) {
		st->ctr.drop[UST_DROP_RX_OUTGOING]++;
		return;
	}
	ust_pcap_write(&l->pcap, frame, len);
	if (vlan) {
		st->ctr.drop[UST_DROP_ETH_VLAN]++;
		return;
	}
	if (len > UST_ETH_HLEN + l->mtu && !l->rx_heat_asked)
		l->rx_coalesced = true;
	ust_stack_input(st, frame, len, flags, now);
}

/* One receive call from fd (the link's socket or its ARP socket) into the
 * link's buffers, of at most vlen frames, each fed to the stack. Returns
 * the frames received, or -errno (-EAGAIN: none waiting). */
static int rx_batch(struct ust_link *l, int fd, struct ust_stack *st, ust_time now, unsigned vlen)
{
	int n;

	for (unsigned i = 0; i < vlen; i++) {
		struct msghdr *mh = &l->rx_msg[i].msg_hdr;
		mh->msg_name = &l->rx_addr[i];
		mh->msg_namelen = sizeof(l->rx_addr[i]);
		mh->msg_iov = &l->rx_iov[l->vnet ? 2 * i : 2 * i + 1];
		mh->msg_iovlen = l->vnet ? 2 : 1;
		mh->msg_control = l->rx_cmsg[i];
		mh->msg_controllen = sizeof(l->rx_cmsg[i]);
		mh->msg_flags = 0;
	}
	n = recvmmsg(fd, l->rx_msg, vlen, MSG_DONTWAIT, NULL);
	if (n < 0)
		return -errno;
	st->ctr.event[UST_EV_RX_BATCHES]++;
	for (int i = 0; i < n; i++) {
		struct msghdr *mh = &l->rx_msg[i].msg_hdr;
		size_t len = l->rx_msg[i].msg_len;
		bool vlan;
		unsigned flags = rx_flags(mh, &vlan);

		if (l->vnet) {
			if (len < sizeof(struct virtio_net_hdr)) {
				st->ctr.drop[UST_DROP_RX_TRUNCATED]++;
				continue;
			}
			len -= sizeof(struct virtio_net_hdr);
		}
		if (mh->msg_flags & MSG_TRUNC) {
			st->ctr.drop[UST_DROP_RX_TRUNCATED]++;
			continue;
		}
		rx_frame(l, st, l->rx_iov[2 * i + 1].iov_base, len, flags, vlan, l->rx_addr[i].sll_pkttype, now);
	}
	return n;
}

/* Between two batches, when no frame is in the buffers: a coalesced
 * frame came, so the buffers move to huge pages. */
static void rx_batch_done(struct ust_link *l)
{
	if (l->rx_coalesced && !l->rx_heat_asked)
		rx_buffers_hot(l);
	l->rx_coalesced = false;
}

/* ---- the receive ring (PACKET_RX_RING, TPACKET_V2) ----
 *
 * The kernel writes each frame into a slot of a ring it shares with us,
 * in the softirq that delivers it (with a veth peer, on the sender's
 * CPU), and the stack thread takes them without a system call: recvmmsg was 43% of its CPU receiving at MTU 1500
 * (tests/bench/README.md, "The receive ring"). A slot holds a frame of
 * the link's MTU; a longer one (the kernel coalesced segments: GRO) is
 * queued to the socket whole as without a ring (PACKET_COPY_THRESH), its
 * slot marked TP_STATUS_COPY, and received by a call in its turn. Slots
 * are taken in order and given back after their batch, so that a frame
 * lives as long as one in the receive buffers. Version 2, not 3: a
 * version 3 block is handed over when full or when its timer (a
 * millisecond at least) fires, and an ACK that waits for it is a
 * millisecond late. No frame may be lost to its setting: the launcher's
 * broker sets it on the socket it opens before binding it
 * (link_socket_ring), a stack that opened its own socket sets it on a
 * second one that takes the first's place once frames stream in
 * (ring_switch, below); mapped by link_ring_map. None with
 * USTCP_RX_RING=0.
 *
 * Linux 6.18's tpacket_rcv, when it cannot describe a frame in a
 * virtio_net_hdr (a GSO type the header has no word for), keeps the
 * slot's owner bit set and does not advance its head: every later frame
 * is dropped, and the stack is deaf. The socket's filter lets in only
 * protocols whose GSO frames it can describe (ust_link_filter). */

/* The first frame's place in a slot (the kernel's netoff, at most): the
 * slot's header and its sockaddr_ll, aligned, then the virtio_net_hdr. */
#define RING_NETOFF(vnet) (TPACKET_ALIGN(TPACKET2_HDRLEN + 16) + ((vnet) ? sizeof(struct virtio_net_hdr) : 0))
#define RING_BLOCK (128u << 10)

static struct tpacket2_hdr *ring_slot(const struct ust_link *l, unsigned i)
{
	unsigned per_block = RING_BLOCK / l->ring_frame;

	return (struct tpacket2_hdr *)(l->ring + (size_t)(i / per_block) * RING_BLOCK +
				       (size_t)(i % per_block) * l->ring_frame);
}

/* The ring gone from our memory and, own (not a parent's socket after a
 * fork), from the socket: frames the kernel delivers meanwhile are lost,
 * as on any reconfiguration (a segment TCP sends again). The kernel keeps
 * a ring another process still maps (a keeper forked before an exec, its
 * guardian not yet gone) and goes on filling it: then it is mapped again
 * and kept. */
static void ring_stop(struct ust_link *l, bool own)
{
	struct tpacket_req req = { 0 };

	if (!l->ring)
		return;
	munmap(l->ring, l->ring_len);
	l->ring = NULL;
	if (!own || setsockopt(l->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) == 0)
		return;
	l->ring_cool = false;
	l->ring = mmap(NULL, l->ring_len, PROT_READ | PROT_WRITE, MAP_SHARED, l->fd, 0);
	if (l->ring == MAP_FAILED) {
		l->ring = NULL;
		ust_log(UST_LOG_ERROR, "link %s: the receive ring, which another process holds, cannot be mapped "
			"again (%s): its frames are lost", l->ifname, strerror(errno));
	}
}

static int link_rx(struct ust_link *l, int fd, struct ust_stack *st, ust_time now, unsigned max_batches);

/* Every frame queued to the socket, by link_rx's calls until one finds
 * the queue short of a batch (a frame the kernel could not describe, or a
 * receive error an earlier call left pending, is counted and passed):
 * frames a run of marked slots did not take. Bounded: the socket's buffer holds a few thousand at most. */
#define RING_DRAIN_BATCHES 128

static int ring_drain(struct ust_link *l, struct ust_stack *st, ust_time now)
{
	int n = link_rx(l, l->fd, st, now, RING_DRAIN_BATCHES);

	return n > 0 ? n : 0;
}

/* The ring's shape for a link of mtu, kib KiB, whose frames follow a
 * virtio_net_hdr with vnet: whole blocks, each of slots that hold a frame
 * of the MTU with a VLAN tag. False when no slot fits a block, or not
 * one block fits. */
static bool ring_geometry(unsigned mtu, bool vnet, unsigned kib, struct tpacket_req *req)
{
	unsigned frame = TPACKET_ALIGN(RING_NETOFF(vnet) + mtu + 4);
	size_t bytes = (size_t)kib << 10;

	if (frame > RING_BLOCK || bytes < RING_BLOCK)
		return false;
	req->tp_block_size = RING_BLOCK;
	req->tp_block_nr = (unsigned)(bytes / RING_BLOCK);
	req->tp_frame_size = frame;
	req->tp_frame_nr = req->tp_block_nr * (RING_BLOCK / frame);
	return true;
}

/* Sets a receive ring of kib KiB on fd, a packet socket of a link of mtu
 * (its PACKET_VNET_HDR as it is), not yet bound (link_socket_ring says
 * why). 0, or the errno of the refusal. */
static int ring_set(int fd, unsigned mtu, unsigned kib)
{
	int v = TPACKET_V2, one = 1, vnet = 0;
	socklen_t vlen = sizeof(vnet);
	struct tpacket_req req;

	if (getsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &vnet, &vlen) < 0)
		return errno;
	if (!ring_geometry(mtu, vnet, kib, &req))
		return EINVAL;
	if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0 ||
	    setsockopt(fd, SOL_PACKET, PACKET_COPY_THRESH, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0)
		return errno;
	return 0;
}

/* The ring the socket has, in our memory: false if it cannot be mapped
 * (then ring_unmapped, and ust_link_rx tries again: the kernel fills
 * the ring meanwhile, and only taking it off would let frames come by
 * calls, which a steering group's member may not do itself). */
static bool ring_map(struct ust_link *l)
{
	struct tpacket_req req;
	void *ring;

	if (!ring_geometry(l->mtu, l->vnet, (unsigned)(l->ring_bytes >> 10), &req))
		return false;
	ring = mmap(NULL, (size_t)req.tp_block_size * req.tp_block_nr, PROT_READ | PROT_WRITE, MAP_SHARED, l->fd, 0);
	if (ring == MAP_FAILED && errno == EINVAL) {
		l->ring_unmapped = false; /* none on the socket (its setting was refused) */
		return false;
	}
	if (ring == MAP_FAILED) {
		if (!l->ring_unmapped)
			ust_log(UST_LOG_ERROR, "link %s: the receive ring cannot be mapped (%s): its frames are lost "
				"until it is", l->ifname, strerror(errno));
		l->ring_unmapped = true;
		return false;
	}
	l->ring_unmapped = false;
	l->ring = ring;
	l->ring_len = (size_t)req.tp_block_size * req.tp_block_nr;
	l->ring_frame = req.tp_frame_size;
	l->ring_frames = req.tp_frame_nr;
	l->ring_head = 0;
	return true;
}

/* The ring of kib KiB that link_socket_ring or ring_socket set on the
 * socket, mapped (none there, or kib 0: frames come by calls). A socket
 * whose ring cannot be mapped would take every frame into it unread: the
 * ring is taken off, and frames come by calls; but a steering group
 * member's stays (taking it off would move the socket in the group, which
 * only the broker may do), and ust_link_rx tries to map it again. */
static void link_ring_map(struct ust_link *l, unsigned kib)
{
	struct tpacket_req req = { 0 };

	l->ring_bytes = (size_t)kib << 10;
	if (!kib || ring_map(l) || !l->ring_unmapped || l->ring_fixed)
		return;
	if (setsockopt(l->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) == 0)
		l->ring_unmapped = false;
}

/* The slots from head on that the kernel filled: up to a batch's worth. */
static unsigned ring_ready(const struct ust_link *l)
{
	unsigned n = 0;

	while (n < UST_LINK_BATCH && n < l->ring_frames &&
	       (__atomic_load_n(&ring_slot(l, (l->ring_head + n) % l->ring_frames)->tp_status, __ATOMIC_ACQUIRE) &
		TP_STATUS_USER))
		n++;
	return n;
}

/* Slot i's frame to the stack, or, marked TP_STATUS_COPY, the frames
 * queued for it and the marked slots after it, by one call. Returns the
 * slots it took. */
static unsigned ring_take(struct ust_link *l, struct ust_stack *st, unsigned i, unsigned n, ust_time now)
{
	struct tpacket2_hdr *h = ring_slot(l, (l->ring_head + i) % l->ring_frames);
	const struct sockaddr_ll *sll = (const void *)((uint8_t *)h + TPACKET_ALIGN(sizeof(*h)));
	unsigned status = h->tp_status;

	if (status & TP_STATUS_COPY) {
		unsigned k = 1;

		while (i + k < n && (ring_slot(l, (l->ring_head + i + k) % l->ring_frames)->tp_status & TP_STATUS_COPY))
			k++;
		/* Fewer when a drain took some already, or one could not
		 * be received: then the queue may hold frames no slot
		 * stands for, which ring_rx drains. */
		if (rx_batch(l, l->fd, st, now, k) != (int)k)
			l->ring_drain = true;
		return k;
	}
	st->ctr.event[UST_EV_RX_RING]++;
	if (h->tp_snaplen < h->tp_len) {
		/* Longer than a slot, and the socket's buffer full. */
		st->ctr.drop[UST_DROP_RX_TRUNCATED]++;
		return 1;
	}
	rx_frame(l, st, (uint8_t *)h + h->tp_mac, h->tp_snaplen,
		 status & (TP_STATUS_CSUMNOTREADY | TP_STATUS_CSUM_VALID) ? UST_RX_CSUM_OK : 0,
		 (status & TP_STATUS_VLAN_VALID) != 0, sll->sll_pkttype, now);
	return 1;
}

/* Takes the ring's frames by batches of UST_LINK_BATCH, each batch's
 * slots given back together once the stack is done with them. */
static int ring_rx(struct ust_link *l, struct ust_stack *st, ust_time now, unsigned max_batches)
{
	int total = 0;

	for (unsigned b = 0; b < max_batches; b++) {
		unsigned n = ring_ready(l);

		if (!n)
			break;
		for (unsigned i = 0; i < n;)
			i += ring_take(l, st, i, n, now);
		rx_batch_done(l);
		for (unsigned i = 0; i < n; i++)
			__atomic_store_n(&ring_slot(l, (l->ring_head + i) % l->ring_frames)->tp_status, TP_STATUS_KERNEL,
					 __ATOMIC_RELEASE);
		l->ring_head = (l->ring_head + n) % l->ring_frames;
		total += (int)n;
		if (n < UST_LINK_BATCH)
			break;
	}
	/* Woken with nothing in the ring, the socket's queue holds frames
	 * (or an error): left there they would keep it readable, and this
	 * thread spinning. */
	if (!total || l->ring_drain) {
		l->ring_drain = false;
		total += ring_drain(l, st, now);
	}
	if (l->ring_cool && !ring_ready(l))
		ring_stop(l, true);
	return total;
}

/* Receives from fd by calls of UST_LINK_BATCH frames, until it is empty
 * or max_batches were taken. */
static int link_rx(struct ust_link *l, int fd, struct ust_stack *st, ust_time now, unsigned max_batches)
{
	int total = 0;

	for (unsigned b = 0; b < max_batches; b++) {
		int n = rx_batch(l, fd, st, now, UST_LINK_BATCH);

		if (n == -EAGAIN || n == -EINTR)
			break;
		if (n == -EINVAL && l->vnet) {
			/* A frame the kernel could not describe in a
			 * virtio_net_hdr (a GSO type it has no word for):
			 * it is gone; the next ones are not. */
			st->ctr.drop[UST_DROP_RX_VNET]++;
			continue;
		}
		if (n < 0)
			return total ? total : n;
		rx_batch_done(l);
		total += n;
		if (n < UST_LINK_BATCH)
			break;
		l->rx_full |= fd == l->fd;
	}
	return total;
}

/* The kernel's count of frames fd had no room for, since it was last
 * read (ust_link_count_overruns). */
static void count_overruns(struct ust_link *l, int fd)
{
	struct tpacket_stats s; /* TPACKET_V2's, as without a ring */
	socklen_t n = sizeof(s);

	if (fd >= 0 && getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &s, &n) == 0)
		l->ctr->drop[UST_DROP_RX_OVERRUN] += s.tp_drops;
}

/* ---- the ring set once frames stream in ----
 *
 * A socket the stack opened itself (ust_link_open) starts without a ring:
 * allocating and zeroing its 4 MiB in the kernel and mapping them cost a
 * one-shot program about half a millisecond at start-up, and a little
 * more to free at exit, for a ring it never uses (a curl's first
 * connect, tests/bench/README.md). The first receive call that finds a
 * whole batch waiting (a flow streams in) sets it, on a second socket,
 * so that no frame is lost: the kernel sets a ring on a bound socket by
 * taking its hook off the device for an RCU grace period (packet_set_ring),
 * and the frames it delivers meanwhile go to nobody, which cost a flow
 * early in slow start its window (docs/architecture.md §9e).
 *
 * The new socket is made like the first (its filter read back from it,
 * the same options) and gets its ring; what waits in the first is read;
 * the new one is bound: from then on the kernel gives every frame to
 * both (its ring need hold only what comes until the first is gone, not
 * the first's backlog). The first is then bound to an EtherType no
 * one sends (802.1's local experimental one), which takes its hook off
 * the device and waits out the deliveries under way (packet_do_bind,
 * synchronize_net; a bind to protocol 0 would keep the old one), so that
 * what it holds is final; that is read and handed to the stack as usual,
 * and the new socket takes its number (dup3), so that the loop, an exit
 * keeper and a forked child find the link where it was. The frames that
 * arrived between the two binds (those of the grace period) are at the
 * end of what the first socket held and at the start of the new one's.
 * Measured under a flood of echo requests (tests/bats/030-link.bats, the
 * debug log's "receive ring set" line): the first socket's rebind took
 * 34-140 us, 4.4 ms at most with every CPU taken by other work, and 0-14
 * frames came to it after its backlog was read. The first one's last
 * UST_LINK_TWICE are noted by a fingerprint, and of what the new one
 * holds when the first is gone, the first frames that match a run of them
 * are dropped (rx-twice). A socket the launcher's broker gave
 * (ust_link_adopt) has its ring from the start, set before it was bound;
 * the program cannot open another. */

/* A frame's fingerprint: its length and first bytes, where an IPv4
 * identification, sequence numbers and timestamps tell one from the next
 * (FNV-1a). */
static uint64_t frame_print(const uint8_t *frame, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull ^ len;

	for (size_t i = 0; i < len && i < 128; i++)
		h = (h ^ frame[i]) * 0x100000001b3ull;
	return h;
}

/* While the first socket is read, notes the frame; then, for the new
 * socket's frames, true for those that repeat a run of the noted ones
 * up to the last (the first found from the newest back, then each the
 * next). The first that does not, or the run's end, ends the watch. */
static bool taken_twice(struct ust_link *l, const uint8_t *frame, size_t len)
{
	unsigned kept = l->twice_n < UST_LINK_TWICE ? l->twice_n : UST_LINK_TWICE;
	uint64_t print = frame_print(frame, len);

	if (l->twice_noting) {
		l->twice[l->twice_n++ % UST_LINK_TWICE] = print;
		return false;
	}
	for (unsigned i = l->twice_n; l->twice_at == ~0u && i > l->twice_n - kept; i--)
		if (l->twice[(i - 1) % UST_LINK_TWICE] == print)
			l->twice_at = i - 1;
	if (l->twice_at == ~0u || l->twice[l->twice_at % UST_LINK_TWICE] != print) {
		l->twice_n = 0;
		return false;
	}
	if (++l->twice_at == l->twice_n)
		l->twice_n = 0;
	return true;
}

/* A packet socket made as the link's, with a receive ring of kib KiB,
 * not yet bound: its fd, or -errno. */
static int ring_socket(const struct ust_link *l, unsigned kib)
{
	struct sock_filter prog[UST_LINK_GROUP_FILTER_MAX];
	socklen_t n = UST_ARRAY_SIZE(prog); /* SO_GET_FILTER counts instructions */
	struct sock_fprog fprog = { .filter = prog };
	int fd, one = 1, e;

	if (getsockopt(l->fd, SOL_SOCKET, SO_GET_FILTER, prog, &n) < 0)
		return -errno;
	fprog.len = (unsigned short)n;
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof(fprog)) < 0 ||
	    setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) < 0 ||
	    (l->vnet && setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0) ||
	    (l->bypass && setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0)) {
		e = errno;
		goto fail;
	}
	set_opt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING");
	set_buffers(fd);
	e = ring_set(fd, l->mtu, kib);
	if (!e)
		return fd;
fail:
	close(fd);
	return -e;
}

/* The switch's own clock, for its log line (the link is below the loop,
 * whose ust_now the tools that link it without libev lack). */
static ust_time link_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ust_time)ts.tv_sec * 1000000u + (ust_time)ts.tv_nsec / 1000u;
}

/* What the first socket may hold when it is unbound: its buffer's 8 MiB in
 * frames of a few hundred bytes. */
#define RING_SWITCH_BATCHES 1024

/* The ring set on a socket that takes the link's place (above). Returns
 * the frames handed to the stack meanwhile. */
static int ring_switch(struct ust_link *l, struct ust_stack *st, ust_time now)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_ifindex = l->ifindex };
	unsigned kib = l->ring_later;
	uint64_t twice = st->ctr.drop[UST_DROP_RX_TWICE];
	ust_time unbound;
	int fd, n, r, after;

	l->ring_later = 0; /* once, refused or not */
	fd = ring_socket(l, kib);
	/* What waits in the first socket is read before the new one takes
	 * frames too, so that while the first is taken off the device, the
	 * new one's ring need hold only what comes meanwhile. */
	n = link_rx(l, l->fd, st, now, RING_SWITCH_BATCHES);
	n = n > 0 ? n : 0;
	sll.sll_protocol = htons(ETH_P_ALL);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		int e = errno;
		close(fd);
		fd = -e;
	}
	sll.sll_protocol = htons(ETH_P_802_EX1);
	unbound = link_clock();
	if (fd >= 0 && bind(l->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		/* Still on the device, the first socket took every frame. */
		int e = errno;
		close(fd);
		fd = -e;
	}
	if (fd < 0) {
		ust_log(UST_LOG_INFO, "link %s: no receive ring (%s): a call per batch", l->ifname, strerror(-fd));
		return n;
	}
	unbound = link_clock() - unbound;
	l->twice_n = 0;
	l->twice_noting = true;
	after = link_rx(l, l->fd, st, now, RING_SWITCH_BATCHES);
	after = after > 0 ? after : 0;
	n += after;
	l->twice_noting = false;
	count_overruns(l, l->fd); /* the first socket's, before it goes */
	if (dup3(fd, l->fd, O_CLOEXEC) < 0) {
		/* Its number out of reach (the program lowered RLIMIT_NOFILE
		 * below it): the first socket back on the device, the frames
		 * only the new one took since are lost (TCP sends them
		 * again). */
		ust_log(UST_LOG_ERROR, "link %s: the ring's socket cannot take the link's place (%s): no ring",
			l->ifname, strerror(errno));
		close(fd);
		sll.sll_protocol = htons(ETH_P_ALL);
		if (bind(l->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
			ust_log(UST_LOG_ERROR, "link %s: bind: %s: no frame comes in", l->ifname, strerror(errno));
		l->twice_n = 0;
		return n;
	}
	close(fd);
	l->fd_gen++;
	st->ctr.event[UST_EV_RX_RING_SET]++;
	link_ring_map(l, kib);
	/* Every frame of the overlap is in the new socket by now (the bind
	 * above waited for the deliveries under way): what it holds is
	 * matched, and no frame after it. */
	l->twice_at = ~0u;
	r = l->ring ? ring_rx(l, st, now, RING_SWITCH_BATCHES) : link_rx(l, l->fd, st, now, RING_SWITCH_BATCHES);
	l->twice_n = 0;
	ust_log(UST_LOG_DEBUG, "link %s: receive ring set: the first socket off the device in %llu us, %d frames read from it after, %llu taken twice",
		l->ifname, (unsigned long long)unbound, after,
		(unsigned long long)(st->ctr.drop[UST_DROP_RX_TWICE] - twice));
	return n + (r > 0 ? r : 0);
}

int ust_link_rx(struct ust_link *l, struct ust_stack *st, ust_time now, unsigned max_batches)
{
	int r;

	if (l->ring_unmapped)
		ring_map(l);
	if (l->ring)
		return ring_rx(l, st, now, max_batches);
	r = link_rx(l, l->fd, st, now, max_batches);
	if (l->ring_later && l->rx_full && r > 0)
		r += ring_switch(l, st, now);
	return r;
}

void ust_link_count_overruns(struct ust_link *l)
{
	count_overruns(l, l->fd);
	count_overruns(l, l->arp_fd);
}

void ust_link_count_overruns_of(struct ust_link *l, int fd)
{
	count_overruns(l, fd);
}

int ust_link_rx_arp(struct ust_link *l, struct ust_stack *st, ust_time now)
{
	return l->arp_fd < 0 ? 0 : link_rx(l, l->arp_fd, st, now, 1);
}

int ust_link_rx_fd(struct ust_link *l, int fd, struct ust_stack *st, ust_time now, unsigned max_batches)
{
	return link_rx(l, fd, st, now, max_batches);
}

/* ---- GSO: a run of TCP segments as one frame ---- */

#define TCP_F_PSH 0x08
#define TCP_F_ACK 0x10

/* A TCP segment with data, as the stack builds most, in an Ethernet frame:
 * over IPv4 without options, or over IPv6 with no extension header (a
 * socket's IP_OPTIONS or sticky IPv6 headers make a segment go alone). */
struct gso_seg {
	const uint8_t *ip, *th;
	bool v6;
	unsigned iphl;     /* 20 or 40 */
	unsigned thl;      /* TCP header with options */
	unsigned payload;
	uint32_t seq;
	uint8_t flags;
};

/* IPv4 without options, TCP, not a fragment; the length says the frame's
 * last byte is the segment's (a padded frame has no data to speak of). */
static bool gso_ip4_parse(const uint8_t *ip, size_t len, struct gso_seg *g)
{
	if (ip[0] != 0x45 || ip[9] != 6 || (ust_get16(ip + 6) & 0x3fff) || ust_get16(ip + 2) != len)
		return false;
	g->v6 = false;
	g->iphl = 20;
	return true;
}

/* IPv6 whose next header is TCP (what emit sends), its payload the rest
 * of the frame. */
static bool gso_ip6_parse(const uint8_t *ip, size_t len, struct gso_seg *g)
{
	if ((ip[0] >> 4) != 6 || ip[6] != 6 || UST_IPV6_HLEN + (size_t)ust_get16(ip + 4) != len)
		return false;
	g->v6 = true;
	g->iphl = UST_IPV6_HLEN;
	return true;
}

static bool gso_seg_parse(const struct ust_pkt *p, struct gso_seg *g)
{
	const uint8_t *ip = p->data + UST_ETH_HLEN;
	size_t len = p->len - UST_ETH_HLEN;
	uint16_t type;

	if (p->len < UST_ETH_HLEN + 40)
		return false;
	type = ust_get16(p->data + 12);
	if (type == UST_ETHERTYPE_IPV4 ? !gso_ip4_parse(ip, len, g)
	    : type != UST_ETHERTYPE_IPV6 || len < UST_IPV6_HLEN + 20 || !gso_ip6_parse(ip, len, g))
		return false;
	g->ip = ip;
	g->th = ip + g->iphl;
	g->thl = (g->th[12] >> 4) * 4u;
	if (g->thl < 20 || g->iphl + g->thl >= len)
		return false;
	g->payload = (unsigned)len - g->iphl - g->thl;
	g->seq = ust_get32(g->th + 4);
	g->flags = g->th[13];
	return true;
}

/* Do two datagrams of a run have the same IP header but for what GSO
 * rewrites in each segment? IPv4: all but the length, identification and
 * checksum. IPv6: all but the payload length (the traffic class's ECN
 * field and the flow label included). */
static bool gso_ip_same(const struct gso_seg *a, const struct gso_seg *b)
{
	if (a->v6)
		return memcmp(a->ip, b->ip, 4) == 0 &&       /* version, traffic class, flow label */
		       memcmp(a->ip + 6, b->ip + 6, 34) == 0; /* next header, hop limit, addresses */
	return memcmp(a->ip, b->ip, 2) == 0 &&                /* version, header length, TOS */
	       memcmp(a->ip + 6, b->ip + 6, 4) == 0 &&        /* DF, TTL, protocol */
	       memcmp(a->ip + 12, b->ip + 12, 8) == 0;        /* addresses */
}

/* Does b follow a in the same run: the same Ethernet, IP and TCP headers
 * (options included: one run is built in one flush, with one timestamp)
 * but for what GSO rewrites in each segment, and the next sequence
 * number? */
static bool gso_seg_follows(const struct ust_pkt *pa, const struct gso_seg *a, const struct ust_pkt *pb,
			    const struct gso_seg *b)
{
	return b->v6 == a->v6 && b->thl == a->thl && b->seq == a->seq + a->payload &&
	       memcmp(pa->data, pb->data, UST_ETH_HLEN) == 0 && gso_ip_same(a, b) &&
	       memcmp(a->th, b->th, 4) == 0 &&            /* ports */
	       memcmp(a->th + 8, b->th + 8, 5) == 0 &&    /* ACK number, data offset */
	       memcmp(a->th + 14, b->th + 14, 2) == 0 &&  /* window */
	       memcmp(a->th + 18, b->th + 18, a->thl - 18) == 0; /* urgent pointer, options */
}

/* The head speaks for the run of data bytes after its TCP header: its IP
 * length (and IPv4's header checksum), and in its TCP checksum field the
 * pseudo-header's sum, which the kernel moves to each segment's length
 * and completes (CHECKSUM_PARTIAL). */
static void gso_head_rewrite(const struct gso_seg *head, unsigned data)
{
	uint8_t *ip = (uint8_t *)head->ip, *th = (uint8_t *)head->th;
	uint16_t tcp_len = (uint16_t)(head->thl + data);
	uint32_t sum;

	if (head->v6) {
		struct ust_ip6 src, dst;

		memcpy(src.b, ip + 8, 16);
		memcpy(dst.b, ip + 24, 16);
		ust_put16(ip + 4, tcp_len);
		sum = ust_csum_pseudo6(&src, &dst, 6, tcp_len);
	} else {
		ust_put16(ip + 2, (uint16_t)(20 + tcp_len));
		ust_put16(ip + 10, 0);
		ust_put16(ip + 10, ust_csum_fold(ust_csum_add(0, ip, 20)));
		sum = ust_csum_pseudo(ust_get32(ip + 12), ust_get32(ip + 16), 6, tcp_len);
	}
	ust_put16(th + 16, (uint16_t)~ust_csum_fold(sum));
}

unsigned ust_link_gso_run(struct ust_pkt *const *pkts, unsigned n, unsigned max_len, struct virtio_net_hdr *h)
{
	struct gso_seg head, prev, cur;
	unsigned run = 1, data;

	if (n < 2 || !gso_seg_parse(pkts[0], &head) || head.flags != TCP_F_ACK)
		return 1;
	prev = head;
	data = head.payload;
	/* All but the last carry gso_size bytes (the head's); only the last
	 * may push: GSO gives every segment the head's flags but PSH (and
	 * FIN), which it keeps for the last. */
	while (run < n && prev.flags == TCP_F_ACK && prev.payload == head.payload &&
	       gso_seg_parse(pkts[run], &cur) && (cur.flags & ~TCP_F_PSH) == TCP_F_ACK &&
	       cur.payload <= head.payload && head.iphl + head.thl + data + cur.payload <= max_len &&
	       gso_seg_follows(pkts[run - 1], &prev, pkts[run], &cur)) {
		data += cur.payload;
		prev = cur;
		run++;
	}
	if (run == 1)
		return 1;
	/* GSO gives the last segment the head's PSH and clears it in the
	 * others: the head carries the last one's. */
	((uint8_t *)head.th)[13] |= prev.flags & TCP_F_PSH;
	gso_head_rewrite(&head, data);
	memset(h, 0, sizeof(*h));
	h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	/* tcp6_gso_segment cuts IPv6 as tcp4_gso_segment does IPv4: the
	 * payload length of each, the flow label and traffic class copied. */
	h->gso_type = head.v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
	h->hdr_len = (uint16_t)(UST_ETH_HLEN + head.iphl + head.thl);
	h->gso_size = (uint16_t)head.payload;
	h->csum_start = (uint16_t)(UST_ETH_HLEN + head.iphl);
	h->csum_offset = 16;
	return run;
}

/* What a run's head has of its own (ust_link_gso_run rewrites it), kept
 * should the kernel refuse the run (gso_refused): its IP length, IPv4
 * header checksum, TCP checksum and flags. */
static void gso_head_save(const struct ust_pkt *p, uint16_t saved[4])
{
	const uint8_t *ip = p->data + UST_ETH_HLEN;
	bool v6 = ust_get16(p->data + 12) == UST_ETHERTYPE_IPV6;
	const uint8_t *th = ip + (v6 ? UST_IPV6_HLEN : 20);

	if (p->len < (size_t)(th - p->data) + 20)
		return; /* too short to start a run: nothing rewritten */
	saved[0] = ust_get16(ip + (v6 ? 4 : 2));
	saved[1] = v6 ? 0 : ust_get16(ip + 10);
	saved[2] = ust_get16(th + 16);
	saved[3] = th[13];
}

static void gso_head_restore(struct ust_pkt *p, const uint16_t saved[4])
{
	uint8_t *ip = p->data + UST_ETH_HLEN;
	bool v6 = ust_get16(p->data + 12) == UST_ETHERTYPE_IPV6;
	uint8_t *th = ip + (v6 ? UST_IPV6_HLEN : 20);

	ust_put16(ip + (v6 ? 4 : 2), saved[0]);
	if (!v6)
		ust_put16(ip + 10, saved[1]);
	ust_put16(th + 16, saved[2]);
	th[13] = (uint8_t)saved[3];
}

/* A frame that leaves alone with a partial TCP checksum: the kernel
 * completes it (NEEDS_CSUM, as for its own TCP's segments), unless a
 * capture is to show the frame as sent. */
static void csum_alone(const struct ust_link *l, struct ust_pkt *p, struct virtio_net_hdr *h)
{
	if (!p->csum_l4)
		return;
	if (l->pcap.f) {
		ust_pkt_csum_finish(p);
		return;
	}
	h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h->csum_start = (uint16_t)(p->csum_l4 - p->data);
	h->csum_offset = 16;
}

/* May this frame head a GSO run: is GSO on for its family? */
static bool link_gso(const struct ust_link *l, const struct ust_pkt *p)
{
	uint16_t type;

	if (p->len < UST_ETH_HLEN)
		return false;
	type = (uint16_t)(p->data[12] << 8 | p->data[13]);
	return type == UST_ETHERTYPE_IPV6 ? l->gso6 : type == UST_ETHERTYPE_IPV4 && l->gso4;
}

/* Does p carry TCP data, as a GSO run's segments do? (Not a pure ACK.) */
static bool tcp_data(const struct ust_pkt *p)
{
	struct gso_seg g;

	return gso_seg_parse(p, &g);
}

/* The messages for pkts: one per frame, or per GSO run; returns how many. */
static unsigned tx_plan(struct ust_link *l, struct ust_pkt *const *pkts, unsigned n)
{
	unsigned nmsg = 0, nio = 0;

	for (unsigned i = 0; i < n; nmsg++) {
		struct msghdr *mh = &l->tx_msg[nmsg].msg_hdr;
		struct iovec *first = &l->tx_iov[nio];
		unsigned run = 1;

		memset(mh, 0, sizeof(*mh));
		mh->msg_name = &l->tx_addr;
		mh->msg_namelen = sizeof(l->tx_addr);
		if (l->vnet) {
			struct virtio_net_hdr *h = &l->tx_vnet[nmsg];

			memset(h, 0, sizeof(*h));
			if (!l->tso_asked && n - i > 1 && tcp_data(pkts[i]) && tcp_data(pkts[i + 1]))
				device_tso(l);
			if (link_gso(l, pkts[i]) && pkts[i]->len >= UST_ETH_HLEN + 40) {
				gso_head_save(pkts[i], l->tx_head[nmsg]);
				run = ust_link_gso_run(pkts + i, n - i, UST_LINK_GSO_MAX, h);
			}
			if (run == 1)
				csum_alone(l, pkts[i], h);
			l->tx_iov[nio++] = (struct iovec){ h, sizeof(*h) };
		} else {
			ust_pkt_csum_finish(pkts[i]);
		}
		l->tx_iov[nio++] = (struct iovec){ pkts[i]->data, pkts[i]->len };
		for (unsigned j = 1; j < run; j++) {
			unsigned hl = l->tx_vnet[nmsg].hdr_len;
			l->tx_iov[nio++] = (struct iovec){ pkts[i + j]->data + hl, pkts[i + j]->len - hl };
		}
		mh->msg_iov = first;
		mh->msg_iovlen = (size_t)(&l->tx_iov[nio] - first);
		l->tx_frames[nmsg] = run;
		i += run;
	}
	return nmsg;
}

/* The heads of the runs not sent (from from_msg on) get their own headers
 * back, to go again. */
static void gso_heads_restore(struct ust_link *l, struct ust_pkt *const *pkts, unsigned from_msg, unsigned nmsg)
{
	unsigned p = 0;

	for (unsigned m = 0; m < nmsg; p += l->tx_frames[m], m++)
		if (m >= from_msg && l->tx_frames[m] > 1)
			gso_head_restore(pkts[p], l->tx_head[m]);
}

/* The kernel refused a GSO frame: EINVAL from virtio_net_hdr_to_skb (a
 * header it will not take), or ENOBUFS on the bypass that the queueing
 * path could not be taken instead of (below). From now on every frame of
 * the refused run's family goes alone, as before GSO; the other family's
 * runs go on. */
static void gso_refused(struct ust_link *l, struct ust_pkt *const *pkts, unsigned from_msg, unsigned nmsg)
{
	unsigned p = 0;
	bool v6 = false;

	for (unsigned m = 0; m < from_msg; m++)
		p += l->tx_frames[m];
	v6 = pkts[p]->data[12] == (UST_ETHERTYPE_IPV6 >> 8) && pkts[p]->data[13] == (UST_ETHERTYPE_IPV6 & 0xff);
	gso_heads_restore(l, pkts, from_msg, nmsg);
	*(v6 ? &l->gso6 : &l->gso4) = false;
	ust_log(UST_LOG_INFO,
		"link %s: the kernel refused an IPv%c GSO frame (%s): one IPv%c frame per segment from now on",
		l->ifname, v6 ? '6' : '4', strerror(errno), v6 ? '6' : '4');
}

unsigned ust_link_output(void *ctx, struct ust_pkt *const *pkts, unsigned n)
{
	struct ust_link *l = ctx;
	unsigned nmsg, m = 0, done = 0;

	/* A capture shows the frames as TCP built them: no runs then. */
	if (l->pcap.f) {
		l->gso4 = l->gso6 = false;
		l->tso_asked = true;
	}
	nmsg = tx_plan(l, pkts, n);
	while (m < nmsg) {
		int r = sendmmsg(l->fd, l->tx_msg + m, nmsg - m, MSG_DONTWAIT);
		if (r < 0) {
			int e = errno;

			if (e == EINTR)
				continue;
			/* A run the device would not take on the bypass (its
			 * TSO switched off since device_tso asked, a smaller
			 * gso_max_size: __dev_direct_xmit drops it, ENOBUFS):
			 * the queueing path's software GSO cuts it. Off the
			 * bypass, ENOBUFS is a full queue, a loss (the run's
			 * first segments may have gone), as for any frame. */
			if (l->tx_frames[m] > 1 && e == ENOBUFS && l->bypass && leave_bypass(l)) {
				ust_log(UST_LOG_INFO, "link %s: a GSO frame refused on the bypass: the kernel's GSO "
					"segments our runs from now on", l->ifname);
				gso_heads_restore(l, pkts, m, nmsg);
				return done + ust_link_output(l, pkts + done, n - done);
			}
			if (l->tx_frames[m] > 1 && (e == EINVAL || (e == ENOBUFS && l->bypass))) {
				errno = e;
				gso_refused(l, pkts, m, nmsg);
				return done + ust_link_output(l, pkts + done, n - done);
			}
			/* EAGAIN/ENOBUFS: the device is full; what is left is
			 * lost like a frame dropped on the wire. */
			if (ust_log_enabled(UST_LOG_DEBUG))
				ust_log(UST_LOG_DEBUG, "link: sendmmsg: %s", strerror(e));
			break;
		}
		l->ctr->event[UST_EV_TX_BATCHES]++;
		for (int k = 0; k < r; k++, m++) {
			if (l->tx_frames[m] > 1)
				l->ctr->event[UST_EV_TX_GSO]++;
			for (unsigned j = 0; j < l->tx_frames[m]; j++, done++) {
				l->ctr->event[UST_EV_TX_BYTES] += pkts[done]->len;
				ust_pcap_write(&l->pcap, pkts[done]->data, pkts[done]->len);
			}
		}
	}
	l->ctr->event[UST_EV_TX_FRAMES] += done;
	ust_pcap_flush(&l->pcap);
	return done;
}
