/* The launcher's broker (ustcp(1)): the one process that keeps CAP_NET_RAW
 * and hands packet sockets to the programs it launched.
 *
 * The protocol, on a SOCK_SEQPACKET socket every process of the program's
 * tree inherits (USTCP_BROKER_FD): a request is the text UST_BROKER_REQUEST
 * with SCM_CREDENTIALS (checked by the kernel: the broker's end has
 * SO_PASSCRED) and SCM_RIGHTS carrying one end of a fresh SOCK_SEQPACKET
 * pair. The answer goes on that pair: struct ust_broker_answer, status
 * 0 with SCM_RIGHTS carrying a packet socket opened, filtered for the
 * configured address, locked, given a receive ring (USTCP_RX_RING, whose
 * KiB the answer says) and bound to the configured interface
 * (ust_link_socket), or an errno and no fd. The library's side is broker_link in stackthread/start.c.
 *
 * Steering (steer.h, docs/architecture.md §6): a broker whose interface
 * takes a PACKET_FANOUT_CBPF group (Ethernet, IPv4 alone) keeps one for
 * the processes it serves. Its answer then carries two sockets, the link's,
 * already a member of the group, and an ARP socket, and the pair the
 * request came with stays open as the member's channel: ports are claimed
 * on it, and its hang-up (no process holds it any more) ends the member.
 * The broker keeps a dup of every member's socket, so that no member leaves
 * the group's array (which the kernel compacts) before its ports and the
 * last member's are steered away. */
#ifndef USTCP_BROKER_H
#define USTCP_BROKER_H

#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "steer.h"

/* 2 since the answer says the ring's KiB (2026-12-07): a library of
 * version 1 would take the 8-byte answer cut to its int and adopt a socket
 * with a ring it never maps. */
#define UST_BROKER_REQUEST "ustcp-link 2\n"

struct ust_broker_answer {
	int32_t status;    /* 0, or the errno of the refusal */
	uint32_t ring_kib; /* the socket's receive ring (0: none), to map */
};

/* What the broker did with what it read. */
enum ust_broker_outcome {
	UST_BROKER_GRANTED,   /* a packet socket sent */
	UST_BROKER_FAILED,    /* a good request, but the socket could not be opened (its errno sent) */
	UST_BROKER_MALFORMED, /* not the request text, or cut short (EPROTO sent) */
	UST_BROKER_FOREIGN,   /* credentials missing or not the program's user (EPERM sent) */
	UST_BROKER_NO_REPLY,  /* no socket to answer on: nothing sent */
	UST_BROKER_IDLE,      /* nothing read (EINTR, an empty message) */
	UST_BROKER_HANGUP,    /* every client end closed: the broker is done */
	UST_BROKER_ERROR,     /* its own socket failed: the broker is done */
};

/* Reads one request from bfd, the broker's end (SO_PASSCRED set), blocking,
 * and answers it without ever waiting for the client: a packet socket for
 * cfg's interface and address if the request is well formed and comes from
 * uid. Returns what it did. No steering. */
enum ust_broker_outcome ust_broker_serve(int bfd, const struct ust_config *cfg, uid_t uid);

/* Members of one steering group, the broker's own included. */
#define UST_BROKER_MEMBERS 1024u
/* owner[]'s word for a SO_REUSEPORT group's port: the program gives its
 * frames to no member (UST_STEER_BROKER); each member of the group reads
 * them on its own socket. */
#define UST_BROKER_GROUPED 0xffffu

struct ust_broker_member {
	int sock;      /* a dup of the member's packet socket; -1: slot free */
	int chan;      /* the broker's end of its channel */
	unsigned idx;  /* its place in the kernel's array of the group */
	bool leaving;  /* its ports steered to the broker for now */
	ino_t zombie;  /* gone, but its socket still open somewhere: its inode */
	/* The group ports it reads (owner[] indexes), each on the socket
	 * its claim's answer carried. */
	uint32_t group[UST_STEER_GROUP_PORTS];
	unsigned ngroup;
};

/* Where IPv6's ports start in ust_broker's owner[]. */
#define UST_BROKER_V6 65536u

/* A broker's state: its configuration and, when it steers, the group. */
struct ust_broker {
	const struct ust_config *cfg;
	uid_t uid;
	bool hung_up;          /* every process closed the request socket */
	int own;               /* the broker's member (drops all); -1: no steering */
	int group;             /* PACKET_FANOUT's value for a member to join */
	unsigned n;            /* members in the kernel's array, own included */
	/* Slots 1..UST_BROKER_MEMBERS-1 (0: nobody); by_idx: a place's slot. */
	struct ust_broker_member m[UST_BROKER_MEMBERS];
	uint16_t by_idx[UST_BROKER_MEMBERS];
	uint16_t *owner;       /* 2 x 65536: the slot each port is steered to, 0 none,
				  UST_BROKER_GROUPED a group's: IPv4's ports, then
				  IPv6's (UST_BROKER_V6) */
	unsigned zombies;      /* members with zombie set */
	unsigned refused;      /* claims refused: no proof, or no room */
};

/* What a member's message of len bytes, with the fd it carried (-1:
 * none), deserves: 0, or the errno its claim is refused with (EPROTO
 * malformed, EINVAL port 0, EPERM no proof). Reads the fd's socket or file
 * and may take the ports file's owner lock on it (broker.c,
 * proof_shared); keeps nothing. A granted claim's families (bit 0 IPv4,
 * bit 1 IPv6) go to *families: a bound port's or a group's are its
 * reservation's, a client port's both. */
int ust_broker_check(const struct ust_broker *b, const struct ust_steer_msg *m, size_t len, int fd,
		     unsigned *families);

/* Sets b up for cfg's programs of uid, with a steering group where the
 * interface takes one (b->own >= 0 then). */
void ust_broker_init(struct ust_broker *b, const struct ust_config *cfg, uid_t uid);
/* Waits for a request on bfd or a member's message, and serves it.
 * Returns the request's outcome (UST_BROKER_IDLE after members' messages
 * alone); UST_BROKER_HANGUP once every process closed bfd and no member
 * is left. */
enum ust_broker_outcome ust_broker_step(struct ust_broker *b, int bfd);

#endif
