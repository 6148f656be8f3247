/* Steering frames by port (docs/architecture.md §6): the processes a
 * launcher's broker serves on one address share one PACKET_FANOUT group,
 * whose classic BPF program sends each frame to the member that holds its
 * TCP port. What the broker and the library share: the group's program
 * (ust_steer_program) and the messages on a member's channel.
 *
 * The channel is the SOCK_SEQPACKET pair a process sent with its request
 * for a packet socket: the broker keeps its end while any process holds the
 * other (the stack, its keeper, its closer), and the hang-up tells it the
 * member is gone. On it the stack claims ports, each with its proof:
 *
 *   UST_STEER_CLAIM_SHARED  client ports held in RUN_DIR/ports-A.B.C.D: the
 *                           ports file's open file description, whose OFD
 *                           lock on the owner slot makes the stack that
 *                           owner, comes with SCM_RIGHTS; every port's word
 *                           must name the owner.
 *   UST_STEER_CLAIM_BOUND   a port held in the kernel's table (a bind(), a
 *                           listener): the reservation socket comes with
 *                           SCM_RIGHTS, bound to our address and that port.
 *   UST_STEER_CLAIM_GROUP   a port of a SO_REUSEPORT group that may span
 *                           processes: the reservation socket, bound to our
 *                           address and that port with SO_REUSEPORT, comes
 *                           with SCM_RIGHTS. The group's program can give a
 *                           frame to one member only, and every member of a
 *                           SO_REUSEPORT group must see every SYN for the
 *                           port (each decides alone whether it is its own:
 *                           stackthread/ports.c). So the port goes to no
 *                           member, and the answer carries a packet socket
 *                           of the claimer's own that reads that port's
 *                           frames (ust_link_group_socket, its filter
 *                           locked, in no fanout group), as a stack without
 *                           steering reads them all.
 *   UST_STEER_RELEASE       ports no longer ours (no proof, no answer).
 *
 * A claim is answered with struct ust_steer_answer, after the group's
 * program has been rewritten: from then on the ports' frames reach the
 * claimer, and no other member (a group's port: every member, each on the
 * socket its answer carried). */
#ifndef USTCP_STEER_H
#define USTCP_STEER_H

#include <linux/filter.h>
#include <stdint.h>

#include "base.h"

enum ust_steer_op {
	UST_STEER_CLAIM_SHARED = 1,
	UST_STEER_CLAIM_BOUND = 2,
	UST_STEER_RELEASE = 3,
	UST_STEER_CLAIM_GROUP = 4,
	/* 5 was the member's receive ring, set by the broker once frames
	 * streamed in; the ring is set before the socket joins the group
	 * now (stack/link.c, link_socket_ring), and 5 is refused. */
};

#define UST_STEER_PORTS_MAX 64
/* Ports (of either family) one member may read as a SO_REUSEPORT
 * group's, each on a socket of its own (UST_STEER_CLAIM_GROUP). */
#define UST_STEER_GROUP_PORTS 64u

struct ust_steer_msg {
	uint32_t op;    /* enum ust_steer_op */
	uint32_t seq;   /* echoed by the answer */
	uint32_t owner; /* CLAIM_SHARED: the owner word the ports' words name */
	uint32_t n;     /* ports in port[] */
	uint16_t port[UST_STEER_PORTS_MAX];
};

struct ust_steer_answer {
	uint32_t seq;
	int32_t status; /* 0, or the errno of the refusal */
	/* A granted CLAIM_GROUP whose answer carries the port's socket
	 * (SCM_RIGHTS): the port, and 1 for IPv6's (0 IPv4's). None (port
	 * 0) when the claimer reads the port already. */
	uint16_t group_port;
	uint16_t group_v6;
};

/* The member every frame no stack may have goes to: the broker's own, whose
 * filter drops everything (ARP and neighbour discovery, which each stack
 * reads on a socket of its own; frames of a port whose member is
 * leaving). */
#define UST_STEER_BROKER 0u

/* One run of ports steered to one member (its index in the kernel's
 * array of the group's members). */
struct ust_steer_range {
	uint16_t lo, hi;
	uint16_t member;
};

/* Room for the program: BPF_MAXINSNS (4096) less the header, at six
 * instructions a range (a leaf of four, a node of two). */
#define UST_STEER_RANGES_MAX 640
#define UST_STEER_PROG_MAX 4096

/* The group's program for each family's ranges (sorted, disjoint; a
 * port's IPv4 and IPv6 frames may go to different members, as the
 * families' port spaces are apart): the member that holds a frame's port,
 * seen from the IP header as the fanout hook sees frames: TCP by its
 * destination port, an ICMP or ICMPv6 error about TCP by the quoted
 * segment's source port; ARP and IPv6 neighbour discovery (ICMPv6 types
 * 133 to 137) to UST_STEER_BROKER; everything else (IPv4 fragments after
 * the first, more IPv6 extension headers or others, other protocols, ports
 * nobody holds) to dflt, the stack that answers for the address (RST,
 * echo). Up to four IPv6 hop-by-hop, routing or destination options
 * headers are stepped over (a peer's sticky headers, or ours quoted).
 * Returns its length, or 0 if n4 + n6 exceeds
 * UST_STEER_RANGES_MAX. */
unsigned ust_steer_program(const struct ust_steer_range *r4, unsigned n4, const struct ust_steer_range *r6,
			   unsigned n6, unsigned dflt, struct sock_filter prog[UST_STEER_PROG_MAX]);

/* What a port in a range gets, in ust_steer_search: the range's member. */
#define UST_STEER_TO_MEMBER UINT32_MAX

/* A binary search of the port in A over r[0..n) (sorted, disjoint) at p,
 * which any filter may end with: a port in a range returns hit (or, for
 * UST_STEER_TO_MEMBER, the range's member), any other miss. Returns its
 * length: 6n - 2 instructions, 1 (return miss) for none. */
unsigned ust_steer_search(struct sock_filter *p, const struct ust_steer_range *r, unsigned n, uint32_t hit,
			  uint32_t miss);

/* The ports set in bits (bit p of word p / 64: port p) as at most max
 * ranges (max >= 1), sorted and disjoint, members 0: runs of ports, with
 * the shortest gaps between them filled (gaps of 0, 1, 3, 7 … ports, the
 * least that fits) when there are more runs than that. Every port set is
 * in a range; a filled gap lets a few others in too. Returns how many. */
unsigned ust_steer_ranges(const uint64_t bits[1024], struct ust_steer_range *r, unsigned max);

#endif
