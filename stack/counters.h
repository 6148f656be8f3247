/* Counters: one for every reason a frame is dropped, and a few events.
 * The lists are X-macros so that the enum, the names ustcp-stat prints and
 * the descriptions cannot drift apart. */
#ifndef USTCP_COUNTERS_H
#define USTCP_COUNTERS_H

#include <stdint.h>
#include <stdio.h>

/* X(ENUM, "name", "what it means") */
#define UST_DROP_LIST(X) \
	X(RX_TRUNCATED,      "rx-truncated",      "frame larger than the receive buffer") \
	X(RX_VNET,           "rx-vnet",           "frame the kernel could not describe in a virtio_net_hdr") \
	X(RX_OUTGOING,       "rx-outgoing",       "our own outgoing frame looped back") \
	X(RX_OVERRUN,        "rx-overrun",        "frame the kernel dropped: the link's socket buffer or receive ring was full (PACKET_STATISTICS, read when counters are)") \
	X(RX_TWICE,          "rx-twice",          "frame the receive ring's new socket gave again: the first one took it too (ring_switch)") \
	X(ETH_SHORT,         "eth-short",         "frame shorter than an Ethernet header") \
	X(ETH_NOT_FOR_US,    "eth-not-for-us",    "destination MAC neither ours nor broadcast") \
	X(ETH_TYPE,          "eth-type",          "EtherType other than ARP, IPv4 and IPv6 (IPv6 too without USTCP_ADDR6)") \
	X(ETH_VLAN,          "eth-vlan",          "VLAN-tagged frame") \
	X(ARP_SHORT,         "arp-short",         "ARP packet truncated") \
	X(ARP_FORMAT,        "arp-format",        "ARP not Ethernet/IPv4, or unknown opcode") \
	X(ARP_NOT_FOR_US,    "arp-not-for-us",    "ARP for another host's address") \
	X(ARP_BAD_SENDER,    "arp-bad-sender",    "ARP sender address invalid or our own") \
	X(IP_SHORT,          "ip-short",          "IPv4 header truncated") \
	X(IP_VERSION,        "ip-version",        "IP version is not 4") \
	X(IP_HDR_LEN,        "ip-hdr-len",        "IHL below 5 or beyond the packet") \
	X(IP_TOTAL_LEN,      "ip-total-len",      "total length beyond the frame or below the header") \
	X(IP_CSUM,           "ip-csum",           "IPv4 header checksum wrong") \
	X(IP_OPTIONS,        "ip-options",        "malformed IPv4 options") \
	X(IP_SOURCE_ROUTE,   "ip-source-route",   "a source route (Linux's accept_source_route 0)") \
	X(IP_FRAGMENT,       "ip-fragment",       "IPv4 fragment (not reassembled)") \
	X(IP_NOT_FOR_US,     "ip-not-for-us",     "destination address not ours") \
	X(IP_BAD_SRC,        "ip-bad-src",        "source address broadcast, multicast, zero or ours") \
	X(IP_PROTO,          "ip-proto",          "no handler for the IP protocol") \
	X(IP6_SHORT,         "ip6-short",         "IPv6 header truncated") \
	X(IP6_VERSION,       "ip6-version",       "IPv6 EtherType, IP version not 6") \
	X(IP6_PAYLOAD_LEN,   "ip6-payload-len",   "payload length beyond the frame, or 0 (a jumbogram)") \
	X(IP6_EXT_HDR,       "ip6-ext-hdr",       "extension header truncated, misplaced, with an option that says discard, or routing us on") \
	X(IP6_FRAGMENT,      "ip6-fragment",      "IPv6 fragment (not reassembled)") \
	X(IP6_NO_NEXT,       "ip6-no-next",       "no next header (nothing to deliver)") \
	X(IP6_NOT_FOR_US,    "ip6-not-for-us",    "IPv6 destination neither ours (assigned, not tentative) nor a group we listen to") \
	X(IP6_BAD_SRC,       "ip6-bad-src",       "IPv6 source multicast, loopback, IPv4-mapped, ours, or unspecified outside DAD") \
	X(ICMP_SHORT,        "icmp-short",        "ICMP message truncated") \
	X(ICMP_CSUM,         "icmp-csum",         "ICMP checksum wrong") \
	X(ICMP_TYPE,         "icmp-type",         "ICMP type not handled") \
	X(ICMP6_SHORT,       "icmp6-short",       "ICMPv6 message truncated") \
	X(ICMP6_CSUM,        "icmp6-csum",        "ICMPv6 checksum wrong") \
	X(ICMP6_TYPE,        "icmp6-type",        "ICMPv6 type not handled (router advertisements, redirects, ...)") \
	X(ND_INVALID,        "nd-invalid",        "neighbour solicitation or advertisement failing RFC 4861's checks") \
	X(ND_NOT_FOR_US,     "nd-not-for-us",     "solicitation for another target, or an advertisement nobody asked for") \
	X(ICMP_TCP_STALE,    "icmp-tcp-stale",    "ICMP error about no connection, or a sequence number not in flight") \
	X(ECHO_OTHERS,       "echo-others",       "echo requests (ICMP, ICMPv6) left to the stack that answers for our address (several processes on it answer as one host)") \
	X(ICMP6_PTB_IGNORED, "icmp6-ptb-ignored", "ICMPv6 packet too big below 1280, or to a socket whose IPV6_MTU_DISCOVER ignores it") \
	X(TCP_SHORT,         "tcp-short",         "TCP header truncated or data offset wrong") \
	X(TCP_CSUM,          "tcp-csum",          "TCP checksum wrong") \
	X(TCP_FLAGS,         "tcp-flags",         "impossible flag combination") \
	X(TCP_NO_SOCKET,     "tcp-no-socket",     "no connection or listener (answered with RST)") \
	X(TCP_MINHOPCOUNT,   "tcp-minhopcount",   "IPv6 segment under its socket's IPV6_MINHOPCOUNT") \
	X(TCP_MINTTL,        "tcp-minttl",        "IPv4 segment under its socket's IP_MINTTL") \
	X(TCP_MD5_NOT_FOUND, "tcp-md5-not-found", "segment without the MD5 signature its peer's TCP_MD5SIG key asks for") \
	X(TCP_MD5_UNEXPECTED, "tcp-md5-unexpected", "segment with an MD5 signature from a peer its socket has no key for") \
	X(TCP_MD5_FAILURE,   "tcp-md5-failure",   "segment whose MD5 signature is wrong") \
	X(TCP_MD5_BAD_OPTION, "tcp-md5-bad-option", "options malformed where an MD5 signature may be (18 bytes or more left), or two signatures") \
	X(TCP_FOREIGN,       "tcp-foreign",       "for a port another process on our address holds") \
	X(LOOPED_UNSENT,     "looped-unsent",     "datagrams to our address not passed to another process's stack on it (its queue full, gone, no stack left on the address, or no room)") \
	X(TCP_LISTEN_DROP,   "tcp-listen-drop",   "listener's queues full or segment invalid for LISTEN") \
	X(TCP_SYN_SENT_BAD,  "tcp-syn-sent-bad",  "unacceptable segment in SYN-SENT") \
	X(TCP_OUT_OF_WINDOW, "tcp-out-of-window", "sequence number outside the receive window") \
	X(TCP_PAWS,          "tcp-paws",          "timestamp older than the last one (PAWS)") \
	X(TCP_RST_INVALID,   "tcp-rst-invalid",   "RST not exactly at RCV.NXT (challenge ACK)") \
	X(TCP_SYN_INVALID,   "tcp-syn-invalid",   "SYN in a synchronized state (challenge ACK)") \
	X(TCP_NO_ACK,        "tcp-no-ack",        "segment without ACK in a synchronized state") \
	X(TCP_BAD_ACK,       "tcp-bad-ack",       "ACK for data never sent, or too old") \
	X(TCP_OFO_FULL,      "tcp-ofo-full",      "out-of-order data beyond what we keep") \
	X(TCP_AFTER_FIN,     "tcp-after-fin",     "data after the peer's FIN") \
	X(TCP_AFTER_CLOSE,   "tcp-after-close",   "data after our full close (answered with RST)") \
	X(TCP_NO_TCB,        "tcp-no-tcb",        "no control block left for a new connection") \
	X(TCP_TIME_WAIT,     "tcp-time-wait",     "segment TIME-WAIT does not take (answered with ACK unless a RST)") \
	X(TCP_RCV_FULL,      "tcp-rcv-full",      "data beyond the room in the receive buffer") \
	X(TCP_RCV_NO_MEMORY, "tcp-rcv-no-memory", "data while no memory could be had for the receive buffer") \
	X(TCP_DEFER_ACCEPT,  "tcp-defer-accept",  "a handshake's ACK without data, under TCP_DEFER_ACCEPT") \
	X(TX_NO_ROUTE,       "tx-no-route",       "no route to the destination") \
	X(TX_ARP_FAILED,     "tx-arp-failed",     "neighbour did not answer ARP or neighbour solicitations") \
	X(TX_ARP_QUEUE,      "tx-arp-queue",      "too many frames waiting for ARP or NDP") \
	X(TX_NO_BUFFER,      "tx-no-buffer",      "packet buffer pool exhausted") \
	X(TX_TOO_BIG,        "tx-too-big",        "segment its IPv6 extension headers make longer than the path's MTU: not sent (Linux's ip6_xmit, EMSGSIZE)") \
	X(TX_ERROR,          "tx-error",          "the kernel refused to send a frame")

#define UST_EVENT_LIST(X) \
	X(RX_FRAMES,         "rx-frames",         "frames received") \
	X(RX_BYTES,          "rx-bytes",          "bytes received") \
	X(RX_BATCHES,        "rx-batches",        "receive calls that returned frames") \
	X(RX_RING,           "rx-ring",           "frames taken from the receive ring, without a call") \
	X(RX_RING_SET,       "rx-ring-set",       "receive rings set once frames streamed in (a socket with one took the first's place)") \
	X(RX_CSUM_OFFLOADED, "rx-csum-offloaded", "frames whose transport checksum the kernel vouched for") \
	X(TX_FRAMES,         "tx-frames",         "frames sent") \
	X(TX_BYTES,          "tx-bytes",          "bytes sent") \
	X(TX_BATCHES,        "tx-batches",        "send calls") \
	X(TX_GSO,            "tx-gso",            "runs of TCP segments sent as one GSO frame") \
	X(LOOPED,            "looped",            "datagrams to our own address, taken back in without the link") \
	X(LOOPED_OUT,        "looped-out",        "of those, passed to another process's stack on the address (one count per stack)") \
	X(LOOPED_IN,         "looped-in",         "datagrams to our address another process's stack passed to us") \
	X(ARP_REQUESTS_IN,   "arp-requests-in",   "ARP requests for our address") \
	X(ARP_REPLIES_IN,    "arp-replies-in",    "ARP replies received") \
	X(ARP_REQUESTS_OUT,  "arp-requests-out",  "ARP requests sent") \
	X(ARP_REPLIES_OUT,   "arp-replies-out",   "ARP replies sent") \
	X(ARP_CONFLICT,      "arp-conflict",      "another host claimed our address") \
	X(ICMP_ECHO_IN,      "icmp-echo-in",      "echo requests answered") \
	X(ICMP_ERRORS_IN,    "icmp-errors-in",    "ICMP errors received") \
	X(ICMP6_ECHO_IN,     "icmp6-echo-in",     "ICMPv6 echo requests answered") \
	X(ICMP6_ERRORS_IN,   "icmp6-errors-in",   "ICMPv6 errors about our datagrams received") \
	X(ND_NS_IN,          "nd-ns-in",          "neighbour solicitations for our addresses") \
	X(ND_NA_IN,          "nd-na-in",          "neighbour advertisements received") \
	X(ND_NS_OUT,         "nd-ns-out",         "neighbour solicitations sent (resolution, probes, DAD)") \
	X(ND_NA_OUT,         "nd-na-out",         "neighbour advertisements sent") \
	X(ND_DAD_FAILED,     "nd-dad-failed",     "addresses found in use by another node (duplicate address detection)") \
	X(ND_DAD_SHARED,     "nd-dad-shared",     "addresses taken without duplicate address detection: another live stack on the address checked them") \
	X(TCP_SEGS_IN,       "tcp-segs-in",       "TCP segments received") \
	X(TCP_SEGS_OUT,      "tcp-segs-out",      "TCP segments sent") \
	X(TCP_RETRANS,       "tcp-retrans",       "segments retransmitted") \
	X(TCP_FAST_RETRANS,  "tcp-fast-retrans",  "fast retransmits") \
	X(TCP_RECOVERY_RETRANS, "tcp-recovery-retrans", "segments found lost and sent again outside a timeout's recovery (TCPFastRetrans)") \
	X(TCP_SLOW_START_RETRANS, "tcp-slow-start-retrans", "segments found lost and sent again after a timeout (TCPSlowStartRetrans)") \
	X(TCP_RTO,           "tcp-rto",           "retransmission timeouts") \
	X(TCP_TIMEOUT_REHASH, "tcp-timeout-rehash", "IPv6 flow labels changed by a retransmission timeout (TCPTimeoutRehash)") \
	X(TCP_DUP_DATA_REHASH, "tcp-dup-data-rehash", "IPv6 flow labels changed by data received again under a new label (TCPDuplicateDataRehash)") \
	X(TCP_LOSS_PROBES,   "tcp-loss-probes",   "tail loss probes sent (TCPLossProbes)") \
	X(TCP_LOSS_PROBE_RECOVERY, "tcp-loss-probe-recovery", "tail losses a probe repaired (TCPLossProbeRecovery)") \
	X(TCP_UNDO,          "tcp-undo",          "recoveries found spurious and undone (TCPFullUndo, TCPPartialUndo, TCPDSACKUndo)") \
	X(TCP_LOSS_UNDO,     "tcp-loss-undo",     "timeouts found spurious and undone (TCPLossUndo)") \
	X(TCP_SPURIOUS_RTO,  "tcp-spurious-rto",  "timeouts F-RTO found spurious (TCPSpuriousRTOs)") \
	X(TCP_RST_OUT,       "tcp-rst-out",       "RSTs sent") \
	X(TCP_RST_IN,        "tcp-rst-in",        "acceptable RSTs received") \
	X(TCP_CHALLENGE_ACK, "tcp-challenge-ack", "challenge ACKs sent") \
	X(TCP_ACTIVE_OPENS,  "tcp-active-opens",  "connect calls") \
	X(TCP_PASSIVE_OPENS, "tcp-passive-opens", "connections accepted from listeners") \
	X(TCP_OFO_SEGS,      "tcp-ofo-segs",      "out-of-order segments held") \
	X(TCP_ACK_COMPRESSED, "tcp-ack-compressed", "ACKs for data out of order not sent: held back and sent as one (TCPAckCompressed)") \
	X(TCP_CE_IN,         "tcp-ce-in",         "segments that arrived marked CE (RFC 3168)") \
	X(TCP_ECN_CWR,       "tcp-ecn-cwr",       "window reductions for a CE mark the peer echoed (CWR entered on ECE)") \
	X(TCP_DELIVERED_CE,  "tcp-delivered-ce",  "segments delivered with ECE reported for them (TCPDeliveredCE)") \
	X(TCP_SYNCOOKIES_SENT, "tcp-syncookies-sent", "SYN-ACKs sent with a SYN cookie (SyncookiesSent)") \
	X(TCP_SYNCOOKIES_RECV, "tcp-syncookies-recv", "ACKs with a valid SYN cookie (SyncookiesRecv)") \
	X(TCP_SYNCOOKIES_FAILED, "tcp-syncookies-failed", "ACKs to a listener with an invalid SYN cookie (SyncookiesFailed)") \
	X(TCP_LISTEN_OVERFLOWS, "tcp-listen-overflows", "SYNs and cookie ACKs dropped for a full accept queue (ListenOverflows)") \
	X(TCP_LISTEN_DROPS,  "tcp-listen-drops",  "SYNs and cookie ACKs a listener dropped: full queues, no memory (ListenDrops)") \
	X(TCP_CONN_CEILING,  "tcp-conn-ceiling",  "sockets refused (ENFILE) and SYNs dropped: the ceiling on control blocks (USTCP_MAX_CONNS)") \
	X(TCP_NO_MEMORY,     "tcp-no-memory",     "sockets refused (ENOBUFS) and SYNs dropped: no memory for a control block") \
	X(LOOP_SPINS,        "loop-spins",        "times the stack thread looked for work without sleeping: after served calls (USTCP_CALL_SPIN) or any wake-up (USTCP_BUSY_POLL)") \
	X(TCP_TW_OVERFLOW,   "tcp-tw-overflow",   "connections closed without TIME-WAIT: as many held as the bound allows (Linux's TCPTimeWaitOverflow)") \
	X(SOCK_NO_FD,        "sock-no-fd",        "sockets, connects and accepted connections refused: the kernel gave no fds for the pair or the port reservation (EMFILE, ENFILE)") \
	X(SOCK_NO_SLOT,      "sock-no-slot",      "sockets and accepted connections refused (ENFILE): every shared socket slot in use") \
	X(CTL_REFUSED,       "ctl-refused",       "control socket callers refused: neither this process's user nor root") \
	X(STEER_CLAIMS,      "steer-claims",      "claims of ports sent to the launcher's broker (steering by port): client ports in batches, bound ones one by one") \
	X(STEER_REFUSED,     "steer-refused",     "claims of ports the broker refused: no proof, or no room in the group's program") \
	X(STEER_UNSENT,      "steer-unsent",      "claims and releases that could not be sent to the broker (its channel full or gone)") \
	X(STEER_GROUP_SOCKS, "steer-group-socks", "SO_REUSEPORT group ports read on a socket of their own from the broker (every member reads the port; one per port and family)") \
	X(LINK_FILTERS,      "link-filters",      "filters set on the packet socket for the ports an exit keeper still holds (without the launcher's steering)") \
	X(NEIGH_SHARED,      "neigh-shared",      "neighbours taken from another stack on the address (resolved within the reachable time), without asking") \
	X(TW_TAKEN,          "tw-taken",          "TIME-WAITs taken from exit keepers, as the address's collector") \
	X(TW_HANDED,         "tw-handed",         "TIME-WAITs handed to the address's collector by this exit keeper")

#define UST_X_DROP(e, name, desc) UST_DROP_##e,
#define UST_X_EVENT(e, name, desc) UST_EV_##e,
enum ust_drop { UST_OK = 0, UST_DROP_LIST(UST_X_DROP) UST_DROP_MAX };
enum ust_event { UST_EVENT_LIST(UST_X_EVENT) UST_EVENT_MAX };
#undef UST_X_DROP
#undef UST_X_EVENT

struct ust_counters {
	uint64_t drop[UST_DROP_MAX];
	uint64_t event[UST_EVENT_MAX];
};

const char *ust_drop_name(enum ust_drop d);
const char *ust_event_name(enum ust_event e);
/* Write "name value" lines: every event, and the drops that are non-zero. */
void ust_counters_print(const struct ust_counters *c, FILE *f);

#endif
