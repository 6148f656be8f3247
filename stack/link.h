/* The link: an AF_PACKET socket on USTCP_IFACE that carries the stack's
 * frames, received and sent in batches.
 *
 * The socket sees only what the stack must see: a BPF filter passes ARP and
 * IPv4 for our address and, with USTCP_ADDR6, IPv6 for our two addresses
 * and the groups we listen to, nothing else. The kernel's PACKET_AUXDATA tells which
 * frames carry a transport checksum not yet filled in (a veth peer with
 * offloads on hands us its frames before the checksum is computed): those
 * are valid. Receive buffers hold 64 KiB GSO super-frames. Our own outgoing
 * frames are not looped back (PACKET_IGNORE_OUTGOING). */
#ifndef USTCP_LINK_H
#define USTCP_LINK_H

#include <linux/filter.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <sys/socket.h>

#include "bpf_asm.h"
#include "config.h"
#include "pcap.h"
#include "stack.h"
#include "steer.h"

#define UST_LINK_BATCH 32
/* An Ethernet header, a 64 KiB IPv4 datagram, and some slack to detect
 * anything bigger as truncated. */
#define UST_LINK_FRAME_MAX (UST_ETH_HLEN + UST_IPV4_MAXLEN + 128)
#define UST_LINK_FILTER_MAX 80
/* Frames the link remembers while its receive ring's socket replaces the
 * first (link.c, ring_switch): those both sockets took, measured at 14 at
 * most under a flood. Were there more, the new socket's first frame would
 * match none, and every frame of the overlap would reach the stack twice
 * (TCP drops a duplicate segment; an echo request is answered twice):
 * never one lost. */
#define UST_LINK_TWICE 1024
/* The largest IP datagram a GSO run makes: its frame stays below the
 * 65536 bytes of a device's usual gso_max_size (beyond it the kernel would
 * segment in software, which PACKET_QDISC_BYPASS does not do). */
#define UST_LINK_GSO_MAX 64000

struct ust_link {
	int fd;
	/* In a steering group (steer.h), ARP comes on a socket of its own
	 * (bound to ETH_P_ARP, filtered and locked as fd): the group gives
	 * each frame to one member, and every stack's neighbour cache needs
	 * the replies. -1: none, fd takes ARP. */
	int arp_fd;
	int ifindex;
	/* The stack opened the socket itself (ust_link_open), and its filter
	 * is not locked: ust_link_set_filter may replace it. */
	bool filter_own;
	char ifname[IFNAMSIZ];
	bool l3;
	unsigned mtu;
	uint8_t mac[UST_ETH_ALEN];
	struct ust_counters *ctr; /* the stack's */
	struct ust_pcap pcap;

	/* PACKET_VNET_HDR is on: every frame, each way, follows a struct
	 * virtio_net_hdr, and runs of TCP segments leave as one GSO frame
	 * (ust_link_gso_run) that the kernel, or the device, cuts up. */
	bool vnet;
	/* Runs of each family go as GSO frames: as the device's TSO and
	 * TSO6 say (device_tso); off after a refusal, or with a capture.
	 * The device is asked at the first batch that could hold a run
	 * (tso_asked: two segments with data in a row), not at start-up:
	 * its three ethtool calls allocate and free kernel memory, 50 to
	 * 200 us that a one-shot program which never sends two segments at
	 * once does not need to pay. The price: they take the kernel's
	 * rtnl lock, which device changes elsewhere may hold for
	 * milliseconds, now in a bulk sender's first burst, where it was
	 * in every program's first socket(). */
	bool gso4, gso6;
	bool tso_asked;
	/* PACKET_QDISC_BYPASS is on: frames skip the queueing path, and its
	 * software GSO (device_tso leaves it where a family lacks TSO). */
	bool bypass;

	uint8_t *rx_mem;          /* UST_LINK_BATCH buffers of UST_LINK_FRAME_MAX */
	bool rx_hot;              /* rx_mem in huge pages (link.c, rx_buffers_hot) */
	bool rx_heat_asked;       /* rx_buffers_hot tried: not again, until ust_link_cool */
	bool rx_coalesced;        /* this batch had a frame longer than the MTU */

	/* The receive ring (link.c, link_socket_ring, ring_switch), set on
	 * the socket before it was bound, and mapped: ring_bytes of
	 * it (USTCP_RX_RING; 0: none), slots of ring_frame bytes,
	 * ring_frames of them, the next to take at ring_head. NULL without
	 * one. An exit keeper lets it go once it is empty (ring_cool),
	 * unless ring_fixed: the socket is a steering group's member, which
	 * taking the ring off would move in the group (only the broker may). */
	uint8_t *ring;
	size_t ring_len, ring_bytes;
	unsigned ring_frame, ring_frames, ring_head;
	bool ring_cool, ring_fixed;
	bool ring_drain;          /* the socket's queue may hold frames no slot stands for */
	bool ring_unmapped;       /* set on the socket, not yet mapped (ring_map failed) */
	/* A socket the stack opened itself gets its ring once frames stream
	 * in (link.c, ring_switch): ring_later KiB of it, 0 once set or
	 * not to be. rx_full: a receive call found a whole batch waiting.
	 * fd_gen counts the sockets that took fd's number since (the loop
	 * watches the number again). twice: the frames both sockets took,
	 * which the new one gives again (the first one's fingerprints, the
	 * last UST_LINK_TWICE of them, twice_n in all; twice_at the next one
	 * expected, ~0u until the first is found; no watch: twice_n 0). */
	unsigned ring_later;
	bool rx_full;
	unsigned fd_gen;
	uint64_t twice[UST_LINK_TWICE];
	unsigned twice_n, twice_at;
	bool twice_noting;
	struct mmsghdr rx_msg[UST_LINK_BATCH];
	struct iovec rx_iov[2 * UST_LINK_BATCH];   /* [vnet header,] frame */
	struct virtio_net_hdr rx_vnet[UST_LINK_BATCH];
	struct sockaddr_ll *rx_addr;
	uint8_t (*rx_cmsg)[64];

	struct mmsghdr tx_msg[UST_TXQ_MAX];
	struct iovec tx_iov[2 * UST_TXQ_MAX];      /* a vnet header per message, a span per frame */
	struct virtio_net_hdr tx_vnet[UST_TXQ_MAX];
	unsigned tx_frames[UST_TXQ_MAX];           /* the stack's frames in each message */
	uint16_t tx_head[UST_TXQ_MAX][4];          /* a GSO head's own IP length, checksums, TCP flags */
	struct sockaddr_ll tx_addr;
};

/* How many of the n Ethernet frames from pkts[0] can leave as one GSO frame
 * (TCP over IPv4 or IPv6, at most max_len bytes of IP datagram):
 * consecutive segments of one connection, in sequence, with the same
 * headers but for the sequence number (and the IPv4 length,
 * identification and checksum, or the IPv6 payload length), each carrying
 * gso_size bytes but the last, none with a flag but ACK except PSH on the
 * last. 1 when pkts[0] goes alone. When more, fills h (GSO_TCPV4 or
 * GSO_TCPV6), and rewrites pkts[0]'s IP length (and IPv4 checksum), its
 * TCP checksum field (the pseudo-header sum) and PSH (the last one's) for
 * the whole run. */
unsigned ust_link_gso_run(struct ust_pkt *const *pkts, unsigned n, unsigned max_len, struct virtio_net_hdr *h);

/* The classic BPF program for our addresses: ARP whose target is addr, IPv4
 * whose destination is addr (for l3, IPv4 only); when addr6 is not NULL,
 * IPv6 to addr6 and, on Ethernet, to the link-local address of mac, to
 * all nodes (ff02::1) and to the solicited-node groups of both. Returns
 * its length. */
unsigned ust_link_filter(uint32_t addr, const struct ust_ip6 *addr6, const uint8_t mac[UST_ETH_ALEN], bool l3,
			 struct sock_filter prog[UST_LINK_FILTER_MAX]);

/* At most this many ranges of ports in ust_link_port_filter, whose
 * program stays well within the kernel's BPF_MAXINSNS and the socket
 * memory (net.core.optmem_max) a filter is charged to. */
#define UST_LINK_PORT_RANGES_MAX 128
/* The instructions ust_link_port_filter adds before its search of the
 * ports (link.c, its head; UST_BPF_EXT_STEPS for each of the walks past a
 * segment's IPv6 extension headers and past a quoted one's). */
#define UST_LINK_PORT_FILTER_HEAD (42 + 2 * UST_BPF_EXT_STEPS)
#define UST_LINK_PORT_FILTER_MAX (UST_LINK_FILTER_MAX + UST_LINK_PORT_FILTER_HEAD + 6 * UST_LINK_PORT_RANGES_MAX)

/* ust_link_filter's program narrowed to the TCP ports in r[0..nr) (sorted,
 * disjoint; ust_steer_ranges makes them): of what it passes, ARP (which
 * that filter passes only for addr), TCP over IPv4 or IPv6 (past up to
 * four hop-by-hop, routing and destination options headers) whose
 * destination port is in a range, an ICMP or ICMPv6 error quoting a TCP
 * segment (past as many) whose source port is in a range, and neighbour
 * discovery (ICMPv6 types 133 to 137); nothing else (no later IPv4
 * fragment, no other IPv6 extension header, no echo). An exit keeper's filter: only the
 * connections it finishes, and the neighbours it may be the last process
 * to answer. Returns its length, or 0 if nr exceeds
 * UST_LINK_PORT_RANGES_MAX. */
unsigned ust_link_port_filter(uint32_t addr, const struct ust_ip6 *addr6, const uint8_t mac[UST_ETH_ALEN], bool l3,
			      const struct ust_steer_range *r, unsigned nr,
			      struct sock_filter prog[UST_LINK_PORT_FILTER_MAX]);

/* A SO_REUSEPORT group member's own socket's program (Ethernet): of
 * ust_link_port_filter's for port alone, one family's frames (IPv6 with
 * v6, else IPv4), without ARP and neighbour discovery. Returns its
 * length. */
#define UST_LINK_GROUP_FILTER_MAX (UST_LINK_PORT_FILTER_MAX + 8)
unsigned ust_link_group_filter(uint32_t addr, const struct ust_ip6 *addr6, const uint8_t mac[UST_ETH_ALEN],
			       uint16_t port, bool v6, struct sock_filter prog[UST_LINK_GROUP_FILTER_MAX]);

/* Opens and configures the socket on cfg's interface for its addresses
 * (what ust_link_socket does, but the filter is not locked: see
 * filter_own; then the options any holder may set). On error returns
 * -errno with one line in err. Needs CAP_NET_RAW. */
int ust_link_open(struct ust_link *l, const struct ust_config *cfg, char *err, size_t errlen);
/* Only the privileged part of ust_link_open, for the launcher's broker:
 * opens the packet socket on cfg's interface, attaches the filter for its
 * addresses, locks it
 * (SO_LOCK_FILTER: its holder cannot detach or replace it), sets a
 * receive ring of *ring_kib KiB (NULL or 0: none; the holder maps it,
 * ust_link_adopt; *ring_kib becomes 0 if the kernel refused it) and binds
 * it to the interface. Returns the fd (close-on-exec, non-blocking), or -errno
 * with one line in err. Needs CAP_NET_RAW. */
int ust_link_socket(const struct ust_config *cfg, unsigned *ring_kib, char *err, size_t errlen);
/* ust_link_socket's socket bound for ARP alone (ETH_P_ARP), and with an
 * IPv6 address for ARP and neighbour discovery alone (a filter in front of
 * the address's): a steered stack's second socket (struct ust_link,
 * arp_fd), for the frames the steering group gives no member. */
int ust_link_arp_socket(const struct ust_config *cfg, char *err, size_t errlen);
/* ust_link_socket's socket narrowed to one TCP port of one family (IPv6
 * with v6, else IPv4), without ARP and neighbour discovery: a stack's
 * socket for a port its process shares with others in a SO_REUSEPORT
 * group, which the steering group's program cannot give to more than one
 * member (broker.h). Its filter is ust_link_group_filter's. Ethernet
 * only. Returns the fd, or -errno with one line in err. Needs
 * CAP_NET_RAW. */
int ust_link_group_socket(const struct ust_config *cfg, uint16_t port, bool v6, char *err, size_t errlen);
/* The same on a packet socket opened (and filtered) by someone with the
 * privilege, e.g. the launcher: takes ownership of fd, and maps the
 * receive ring of ring_kib KiB it was given (0: none). grouped: fd is a
 * steering group's member (ring_fixed). */
int ust_link_adopt(struct ust_link *l, int fd, const char *ifname, unsigned ring_kib, bool grouped, char *err,
		   size_t errlen);
/* Takes fd, from ust_link_arp_socket, as l's ARP socket (after
 * ust_link_adopt), with the options ours to set. 0 or -errno (fd closed). */
int ust_link_adopt_arp(struct ust_link *l, int fd);
/* Sets those options on fd, another packet socket read with l's
 * (ust_link_group_socket's): 0 or -errno (fd closed). */
int ust_link_adopt_extra(const struct ust_link *l, int fd);
/* Replaces the socket's filter with prog (ust_link_port_filter's, say):
 * 0, -EPERM when the filter is not the stack's own (filter_own: the
 * broker's is locked), or the kernel's -errno. */
int ust_link_set_filter(struct ust_link *l, const struct sock_filter *prog, unsigned len);
/* The receive buffers back in ordinary pages, until coalesced frames
 * come again, and the receive ring taken off once empty (but a steering
 * group member's, ring_fixed): for a stack that
 * expects mostly ACKs and FINs from now on (an exit keeper), which would
 * otherwise hold their memory for as long as it lives. */
void ust_link_cool(struct ust_link *l);
void ust_link_close(struct ust_link *l);
/* The receive buffers freed and the ring unmapped (ust_link_close does
 * it too): by a forked child forgetting its parent's stack, whose copy it
 * would otherwise keep, a huge page copied at the parent's first write
 * after the fork (the ring stays the parent's: only our mapping goes). */
void ust_link_free_buffers(struct ust_link *l);

/* The interface's description for ust_stack_init, with cfg's addresses,
 * routers and MTU (when not 0, it overrides the interface's). */
void ust_link_netif(const struct ust_link *l, const struct ust_config *cfg, struct ust_netif *nif);

/* Adds to the counters' rx-overrun the frames the kernel dropped since the
 * last call because the link's sockets had no room (their buffers or the
 * ring full: the stack did not keep up). The kernel counts them per socket
 * and resets its count when read, so whoever shows the counters calls this
 * first; nothing on the path of a frame does. */
void ust_link_count_overruns(struct ust_link *l);
/* The same for another socket that reads frames for the link (a steering
 * group's port, stackthread/steer.c). */
void ust_link_count_overruns_of(struct ust_link *l, int fd);

/* Receives up to max_batches batches (until the socket is empty) and feeds
 * each frame to st. Returns frames received, or -errno. */
int ust_link_rx(struct ust_link *l, struct ust_stack *st, ust_time now, unsigned max_batches);
/* The same for the ARP socket (one batch); 0 without one. */
int ust_link_rx_arp(struct ust_link *l, struct ust_stack *st, ust_time now);
/* The same for fd, a socket adopted with ust_link_adopt_extra. */
int ust_link_rx_fd(struct ust_link *l, int fd, struct ust_stack *st, ust_time now, unsigned max_batches);

/* The stack's output function: ctx is the link. */
unsigned ust_link_output(void *ctx, struct ust_pkt *const *pkts, unsigned n);

#endif
