#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if_arp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "link.h"
#include "log.h"

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

unsigned ust_link_filter(uint32_t addr, bool l3, struct sock_filter prog[UST_LINK_FILTER_MAX])
{
	/* Ethernet: IPv4 to addr, or ARP whose target address is addr. */
	static const struct sock_filter eth[] = {
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),                      /* 0: EtherType */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, UST_ETHERTYPE_IPV4, 0, 2), /* 1: IPv4? else 4 */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, UST_ETH_HLEN + 16),        /* 2: IPv4 destination */
		BPF_STMT(BPF_JMP | BPF_JA, 2),                               /* 3: to 6 */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, UST_ETHERTYPE_ARP, 0, 3),  /* 4: ARP? else drop */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, UST_ETH_HLEN + 24),        /* 5: ARP target address */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0 /* addr */, 0, 1),      /* 6: ours? */
		BPF_STMT(BPF_RET | BPF_K, BPF_ACCEPT_LEN),                   /* 7: accept */
		BPF_STMT(BPF_RET | BPF_K, 0),                                /* 8: drop */
	};
	/* L3 (tun): the frame is the IPv4 datagram. */
	static const struct sock_filter ip[] = {
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),                       /* 0: version/IHL */
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xf0),                   /* 1 */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x40, 0, 3),             /* 2: IPv4? else drop */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 16),                      /* 3: destination */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0 /* addr */, 0, 1),      /* 4: ours? */
		BPF_STMT(BPF_RET | BPF_K, BPF_ACCEPT_LEN),                   /* 5: accept */
		BPF_STMT(BPF_RET | BPF_K, 0),                                /* 6: drop */
	};
	const struct sock_filter *src = l3 ? ip : eth;
	unsigned n = l3 ? UST_ARRAY_SIZE(ip) : UST_ARRAY_SIZE(eth);

	memcpy(prog, src, n * sizeof(*prog));
	prog[l3 ? 4 : 6].k = addr;
	return n;
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

/* Options that are ours to set whoever opened the socket. */
static int link_setup(struct ust_link *l, char *err, size_t errlen)
{
	int one = 1, bufsize = 8 << 20;

	if (setsockopt(l->fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) < 0)
		return link_fail(err, errlen, errno, "link: PACKET_AUXDATA: %s", strerror(errno));
	/* Without it (kernels before 4.20) outgoing frames are recognised by
	 * their packet type in ust_link_rx. */
	set_opt(l->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING");
	set_opt(l->fd, SOL_PACKET, PACKET_QDISC_BYPASS, 1, "PACKET_QDISC_BYPASS");
	/* Big socket buffers absorb bursts while the stack thread is busy.
	 * The forcing variants need CAP_NET_ADMIN; the plain ones are capped
	 * by net.core.[rw]mem_max. */
	if (setsockopt(l->fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsize, sizeof(bufsize)) < 0)
		set_opt(l->fd, SOL_SOCKET, SO_RCVBUF, bufsize, "SO_RCVBUF");
	if (setsockopt(l->fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsize, sizeof(bufsize)) < 0)
		set_opt(l->fd, SOL_SOCKET, SO_SNDBUF, bufsize, "SO_SNDBUF");

	l->rx_mem = malloc((size_t)UST_LINK_BATCH * UST_LINK_FRAME_MAX);
	l->rx_addr = calloc(UST_LINK_BATCH, sizeof(*l->rx_addr));
	l->rx_cmsg = calloc(UST_LINK_BATCH, sizeof(*l->rx_cmsg));
	if (!l->rx_mem || !l->rx_addr || !l->rx_cmsg)
		return link_fail(err, errlen, ENOMEM, "link: out of memory for receive buffers");
	for (unsigned i = 0; i < UST_LINK_BATCH; i++) {
		l->rx_iov[i].iov_base = l->rx_mem + (size_t)i * UST_LINK_FRAME_MAX;
		l->rx_iov[i].iov_len = UST_LINK_FRAME_MAX;
	}

	memset(&l->tx_addr, 0, sizeof(l->tx_addr));
	l->tx_addr.sll_family = AF_PACKET;
	l->tx_addr.sll_ifindex = l->ifindex;
	l->tx_addr.sll_protocol = htons(l->l3 ? ETH_P_IP : ETH_P_ALL);
	return 0;
}

/* Opens the packet socket on ifname, attaches and locks the filter for
 * addr, and binds it: fills l->fd and what link_describe finds. */
static int link_socket(struct ust_link *l, const char *ifname, uint32_t addr, char *err, size_t errlen)
{
	struct sock_filter prog[UST_LINK_FILTER_MAX];
	struct sock_fprog fprog;
	struct sockaddr_ll sll;
	int one = 1, r;

	memset(l, 0, sizeof(*l));
	/* Protocol 0: the socket receives nothing until bind(), so no frame
	 * slips in before the filter is attached. */
	l->fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		int e = errno;
		return link_fail(err, errlen, e, "cannot open a packet socket: %s%s", strerror(e),
				 e == EPERM ? " (needs CAP_NET_RAW)" : "");
	}
	r = link_describe(l, ifname, err, errlen);
	if (r)
		return r;
	fprog.len = (unsigned short)ust_link_filter(addr, l->l3, prog);
	fprog.filter = prog;
	if (setsockopt(l->fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof(fprog)) < 0)
		return link_fail(err, errlen, errno, "link: SO_ATTACH_FILTER: %s", strerror(errno));
	/* Whoever holds the socket later (an unprivileged program, given it
	 * by the launcher's broker) cannot widen what it sees. */
	if (setsockopt(l->fd, SOL_SOCKET, SO_LOCK_FILTER, &one, sizeof(one)) < 0)
		return link_fail(err, errlen, errno, "link: SO_LOCK_FILTER: %s", strerror(errno));
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = l->ifindex;
	if (bind(l->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		return link_fail(err, errlen, errno, "USTCP_IFACE=\"%s\": bind: %s", ifname, strerror(errno));
	return 0;
}

int ust_link_socket(const char *ifname, uint32_t addr, char *err, size_t errlen)
{
	struct ust_link l;
	int r = link_socket(&l, ifname, addr, err, errlen);

	if (r) {
		ust_link_close(&l);
		return r;
	}
	return l.fd;
}

int ust_link_open(struct ust_link *l, const char *ifname, uint32_t addr, char *err, size_t errlen)
{
	int r = link_socket(l, ifname, addr, err, errlen);

	if (!r)
		r = link_setup(l, err, errlen);
	if (r)
		ust_link_close(l);
	return r;
}

int ust_link_adopt(struct ust_link *l, int fd, const char *ifname, char *err, size_t errlen)
{
	int r;

	memset(l, 0, sizeof(*l));
	l->fd = fd;
	r = link_describe(l, ifname, err, errlen);
	if (!r)
		r = link_setup(l, err, errlen);
	if (r)
		ust_link_close(l);
	return r;
}

void ust_link_close(struct ust_link *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	ust_pcap_close(&l->pcap);
	free(l->rx_mem);
	free(l->rx_addr);
	free(l->rx_cmsg);
	l->rx_mem = NULL;
	l->rx_addr = NULL;
	l->rx_cmsg = NULL;
}

void ust_link_netif(const struct ust_link *l, uint32_t addr, unsigned prefix, uint32_t gw,
		    unsigned mtu, struct ust_netif *nif)
{
	memset(nif, 0, sizeof(*nif));
	nif->l3 = l->l3;
	memcpy(nif->mac, l->mac, UST_ETH_ALEN);
	nif->addr = addr;
	nif->mask = prefix ? ~(uint32_t)0 << (32 - prefix) : 0;
	nif->gw = gw;
	nif->mtu = mtu ? mtu : l->mtu;
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

int ust_link_rx(struct ust_link *l, struct ust_stack *st, ust_time now, unsigned max_batches)
{
	int total = 0;

	for (unsigned b = 0; b < max_batches; b++) {
		int n;

		for (unsigned i = 0; i < UST_LINK_BATCH; i++) {
			struct msghdr *mh = &l->rx_msg[i].msg_hdr;
			mh->msg_name = &l->rx_addr[i];
			mh->msg_namelen = sizeof(l->rx_addr[i]);
			mh->msg_iov = &l->rx_iov[i];
			mh->msg_iovlen = 1;
			mh->msg_control = l->rx_cmsg[i];
			mh->msg_controllen = sizeof(l->rx_cmsg[i]);
			mh->msg_flags = 0;
		}
		n = recvmmsg(l->fd, l->rx_msg, UST_LINK_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			return total ? total : -errno;
		}
		st->ctr.event[UST_EV_RX_BATCHES]++;
		for (int i = 0; i < n; i++) {
			struct msghdr *mh = &l->rx_msg[i].msg_hdr;
			const uint8_t *frame = l->rx_iov[i].iov_base;
			size_t len = l->rx_msg[i].msg_len;
			bool vlan;
			unsigned flags = rx_flags(mh, &vlan);

			if (mh->msg_flags & MSG_TRUNC) {
				st->ctr.drop[UST_DROP_RX_TRUNCATED]++;
				continue;
			}
			if (l->rx_addr[i].sll_pkttype == PACKET_OUTGOING) {
				st->ctr.drop[UST_DROP_RX_OUTGOING]++;
				continue;
			}
			ust_pcap_write(&l->pcap, frame, len);
			if (vlan) {
				st->ctr.drop[UST_DROP_ETH_VLAN]++;
				continue;
			}
			ust_stack_input(st, frame, len, flags, now);
		}
		total += n;
		if (n < UST_LINK_BATCH)
			break;
	}
	return total;
}

unsigned ust_link_output(void *ctx, struct ust_pkt *const *pkts, unsigned n)
{
	struct ust_link *l = ctx;
	unsigned done = 0;

	for (unsigned i = 0; i < n; i++) {
		struct msghdr *mh = &l->tx_msg[i].msg_hdr;
		memset(mh, 0, sizeof(*mh));
		l->tx_iov[i].iov_base = pkts[i]->data;
		l->tx_iov[i].iov_len = pkts[i]->len;
		mh->msg_name = &l->tx_addr;
		mh->msg_namelen = sizeof(l->tx_addr);
		mh->msg_iov = &l->tx_iov[i];
		mh->msg_iovlen = 1;
	}
	while (done < n) {
		int r = sendmmsg(l->fd, l->tx_msg + done, n - done, MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* EAGAIN/ENOBUFS: the device is full; what is left is
			 * lost like a frame dropped on the wire. */
			if (ust_log_enabled(UST_LOG_DEBUG))
				ust_log(UST_LOG_DEBUG, "link: sendmmsg: %s", strerror(errno));
			break;
		}
		l->ctr->event[UST_EV_TX_BATCHES]++;
		for (int i = 0; i < r; i++) {
			l->ctr->event[UST_EV_TX_BYTES] += pkts[done + (unsigned)i]->len;
			ust_pcap_write(&l->pcap, pkts[done + (unsigned)i]->data, pkts[done + (unsigned)i]->len);
		}
		l->ctr->event[UST_EV_TX_FRAMES] += (unsigned)r;
		done += (unsigned)r;
	}
	ust_pcap_flush(&l->pcap);
	return done;
}
