/* TCP (RFC 9293) for ustcp: control blocks, the user calls, and the entry
 * points the network layer and the timer drive.
 *
 * One owner: everything here runs on the stack thread. Time is passed in;
 * segments come in through ust_tcp_input() (hooked to the network layer)
 * and go out through ust_ip_output(). The user interface is one function
 * per user call of RFC 9293 §3.9.1 (OPEN, SEND, RECEIVE, CLOSE, ABORT,
 * STATUS) plus the BSD-socket extras a program needs (listen/accept,
 * shutdown, options). Events for the user (readable, writable, closed…) are
 * reported through a callback. */
#ifndef USTCP_TCP_H
#define USTCP_TCP_H

#include <sys/uio.h>

#include "base.h"
#include "stack.h"
#include "tcp_buf.h"
#include "tcp_seq.h"
#include "wire6.h"

/* States in the order of RFC 9293's diagram, as BSD orders them, so that
 * checks are ranges: a state >= ESTABLISHED is synchronized, and a state >
 * CLOSE_WAIT has sent a FIN. */
enum ust_tcp_state {
	UST_TCP_CLOSED = 0,
	UST_TCP_LISTEN,
	UST_TCP_SYN_SENT,
	UST_TCP_SYN_RECEIVED,
	UST_TCP_ESTABLISHED,
	UST_TCP_CLOSE_WAIT,
	UST_TCP_FIN_WAIT_1,
	UST_TCP_CLOSING,
	UST_TCP_LAST_ACK,
	UST_TCP_FIN_WAIT_2,
	UST_TCP_TIME_WAIT,
	UST_TCP_NSTATES
};
#define UST_TCP_SYNCHRONIZED(s) ((s) >= UST_TCP_ESTABLISHED)
#define UST_TCP_SENT_FIN(s) ((s) > UST_TCP_CLOSE_WAIT)
#define UST_TCP_RCVD_FIN(s) \
	((s) == UST_TCP_CLOSE_WAIT || (s) == UST_TCP_CLOSING || (s) == UST_TCP_LAST_ACK || \
	 (s) == UST_TCP_TIME_WAIT)

/* State names as ss(8) prints them. */
const char *ust_tcp_state_name(enum ust_tcp_state s);
/* Does the state diagram (with Linux's extra arrows) allow from -> to? */
bool ust_tcp_transition_allowed(enum ust_tcp_state from, enum ust_tcp_state to);

/* ---- options ---- */

/* What a SYN (or any segment) carried. */
struct ust_tcp_opts {
	uint16_t mss;           /* 0: absent */
	int8_t wscale;          /* -1: absent; clamped to 14 */
	bool sack_ok;
	bool ts;                /* timestamps present */
	uint32_t ts_val, ts_ecr;
	uint8_t nsack;          /* SACK blocks */
	struct { uint32_t start, end; } sack[4];
	/* An MD5 signature option (RFC 2385): where its digest starts,
	 * counted from the TCP header's first byte; 0: none. md5_bad:
	 * options Linux drops the segment for where it looks for one
	 * (tcp_opt.c, auth_opts). */
	uint8_t md5;
	bool md5_bad;
};

#define UST_TCP_HLEN 20
#define UST_TCP_OPT_MAX 40

/* TCP header flags. */
#define UST_TH_FIN 0x01
#define UST_TH_SYN 0x02
#define UST_TH_RST 0x04
#define UST_TH_PSH 0x08
#define UST_TH_ACK 0x10
#define UST_TH_URG 0x20
#define UST_TH_ECE 0x40 /* ECN-Echo (RFC 3168 §6.1) */
#define UST_TH_CWR 0x80 /* Congestion Window Reduced */

/* The ECN field of the IP header (RFC 3168 §5): the TOS byte's two low
 * bits. */
#define UST_ECN_NOT_ECT 0
#define UST_ECN_ECT1    1
#define UST_ECN_ECT0    2
#define UST_ECN_CE      3
#define UST_ECN_MASK    3

/* A parsed segment: header fields in host order, options, payload. */
struct ust_tcp_seg {
	struct ust_ip6 src, dst; /* an IPv4 segment's mapped (::ffff:a.b.c.d) */
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;          /* all eight: UST_TH_* */
	uint8_t ecn;            /* the IP header's ECN field (UST_ECN_*) */
	uint32_t flow;          /* IPv6's flow label; 0 over IPv4 */
	uint8_t hops;           /* the hop limit (IPv6) or TTL (IPv4) it came with */
	uint16_t wnd;           /* as on the wire, not scaled */
	uint16_t up;
	struct ust_tcp_opts opt;
	const uint8_t *data;
	uint32_t len;           /* payload bytes */
	uint8_t hlen;           /* header bytes, options included */
	/* Where the headers below it start, for TCP_SAVE_SYN: the IP header
	 * (IPv6's with its extension headers) of net_len bytes, and the link
	 * header of mac_len bytes (0: none, or not known) before it. */
	const uint8_t *net;
	uint16_t net_len;
	uint8_t mac_len;
	bool looped;            /* from our own address (Linux's lo: a zeroed link header) */
};

/* Parses and validates a TCP segment (checksum unless csum_ok). Returns
 * UST_OK or the drop reason. Malformed options make the segment invalid, as
 * in Linux only where they cannot be skipped; unknown options are skipped. */
enum ust_drop ust_tcp_parse(const struct ust_ipv4 *ip, bool csum_ok, struct ust_tcp_seg *seg);
/* The same for a segment over IPv6: its pseudo-header (RFC 8200 §8.1) in
 * the checksum, the traffic class's ECN field. */
enum ust_drop ust_tcp_parse6(const struct ust_ipv6 *ip, bool csum_ok, struct ust_tcp_seg *seg);
/* Parses the options area alone (also used by tests). */
enum ust_drop ust_tcp_parse_opts(const uint8_t *p, unsigned len, bool syn, struct ust_tcp_opts *o);

/* SEG.LEN: payload plus one for each of SYN and FIN. */
static inline uint32_t ust_seg_len(const struct ust_tcp_seg *s)
{
	return s->len + !!(s->flags & UST_TH_SYN) + !!(s->flags & UST_TH_FIN);
}

/* ---- the connection record (close log, ustcp-stat, error mapping) ---- */

enum ust_tcp_outcome {
	UST_OUTCOME_NONE = 0,       /* not finished */
	UST_OUTCOME_ORDERLY,        /* FINs both ways, all acknowledged */
	UST_OUTCOME_RESET_RECEIVED,
	UST_OUTCOME_RESET_SENT,
	UST_OUTCOME_TIMEOUT,        /* retransmissions or user timeout exhausted */
	UST_OUTCOME_REFUSED,        /* RST in answer to our SYN */
	UST_OUTCOME_UNREACHABLE,    /* ICMP or ARP said the peer cannot be reached */
};

enum ust_tcp_initiator {
	UST_INIT_NONE = 0,          /* nobody closed (refused, timed out…) */
	UST_INIT_LOCAL,
	UST_INIT_REMOTE,
	UST_INIT_SIMULTANEOUS,
};

#define UST_TCP_HISTORY_MAX 12

struct ust_tcp_record {
	enum ust_tcp_outcome outcome;
	enum ust_tcp_initiator initiator;
	const char *reason;          /* a short phrase, "" when orderly */
	uint8_t states[UST_TCP_HISTORY_MAX]; /* enum ust_tcp_state, in order */
	uint8_t nstates;
	uint64_t bytes_sent;         /* payload acknowledged by the peer */
	uint64_t bytes_received;     /* payload delivered in order */
	ust_time start, end;
};

const char *ust_tcp_outcome_name(enum ust_tcp_outcome o);
const char *ust_tcp_initiator_name(enum ust_tcp_initiator i); /* NULL for none */

/* ---- control block ---- */

struct ust_tcp;
struct tcp_md5;
struct tcp_cc;
struct tcp_sent;

/* What the user hears (ust_tcp_config.event), as a bitmask. */
#define UST_TCP_EV_CONNECTED  0x01 /* synchronized: connect finished */
#define UST_TCP_EV_READABLE   0x02 /* in-order data arrived */
#define UST_TCP_EV_WRITABLE   0x04 /* send buffer space opened */
#define UST_TCP_EV_EOF        0x08 /* the peer's FIN: nothing after the buffered data */
#define UST_TCP_EV_ERROR      0x10 /* aborted: tcb->so_error says why */
#define UST_TCP_EV_ACCEPT     0x20 /* a listener's accept queue grew */
#define UST_TCP_EV_DONE       0x40 /* our FIN (and all data) acknowledged: linger ends */
#define UST_TCP_EV_CLOSED     0x80 /* reached CLOSED; the record is final */

/* Timers of a connection, in a table indexed by this (tcp_timer.c). */
enum ust_tcp_timer {
	UST_TT_RTX,        /* retransmission (SYN, data, FIN) and zero-window probe */
	UST_TT_DELACK,     /* delayed ACK */
	UST_TT_KEEPALIVE,  /* keepalive, and the orphaned FIN-WAIT-2 timeout */
	UST_TT_TIMEWAIT,   /* 2 MSL */
	UST_TT_REO,        /* RACK's reordering window (Linux's ICSK_TIME_REO_TIMEOUT) */
	UST_TT_PACE,       /* pacing: the next burst's departure time (Linux's pacing hrtimer) */
	UST_TT_TLP,        /* the tail loss probe (RFC 8985 §7, Linux's ICSK_TIME_LOSS_PROBE) */
	UST_TT_SHED,       /* a grown ring, empty for a while, gives its memory back (no Linux twin) */
	UST_TT_SACK,       /* compressed SACKs go out (Linux's compressed_ack_timer) */
	UST_TT_N
};

/* ECN's state of a connection (Linux's TCP_ECN_*). */
#define UST_TCP_ECN_OK         0x01 /* negotiated (or asked for, in SYN-SENT) */
#define UST_TCP_ECN_QUEUE_CWR  0x02 /* the window was reduced: CWR on the next new data */
#define UST_TCP_ECN_DEMAND_CWR 0x04 /* CE arrived: ECE on what we send until the peer's CWR */
#define UST_TCP_ECN_SEEN       0x08 /* ECT or CE arrived on the peer's data */

struct ust_tcb {
	struct ust_tcp *tcp;
	void *user;                 /* the shim's socket; NULL once released */
	enum ust_tcp_state state;

	/* identity: the addresses of either family, an IPv4 one mapped
	 * (::ffff:a.b.c.d); a listener's raddr is ::, its laddr :: (any
	 * address of an AF_INET6 socket), ::ffff:0.0.0.0 (any IPv4 one) or
	 * the address it was bound to */
	struct ust_ip6 laddr, raddr;
	uint16_t lport, rport;
	bool ipv6;                  /* an AF_INET6 socket's (ust_tcp_set_family) */
	bool v6only;                /* IPV6_V6ONLY: no IPv4 through it */
	struct ust_tcb *hnext;      /* hash chain */
	struct ust_tcb **hprev;     /* what points at it there: O(1) removal */
	bool hashed;
	struct ust_tcb *pnext;      /* the blocks on the same local port */
	struct ust_tcb **pprev;
	struct ust_tcb *listener;   /* for an embryonic or unaccepted child */
	bool port_claimed;          /* holds a port_claim reference on lport */
	bool reuseaddr;             /* SO_REUSEADDR when the port is claimed (port_claim's reuse) */
	bool reuseport;             /* SO_REUSEPORT: shares lport with others that have it */
	bool group_shared;          /* a child of a group other stacks share (reuseport_pick) */
	bool from_cookie;           /* a child made by a SYN cookie's ACK: no SYN-ACK time kept */
	struct ust_tcb *qnext;      /* accept queue / SYN queue link */

	/* send sequence variables (RFC 9293 §3.3.1) */
	uint32_t snd_una;           /* oldest unacknowledged */
	uint32_t snd_nxt;           /* next to send */
	uint32_t snd_max;           /* highest sent + 1 (snd_nxt moves back on RTO) */
	uint32_t snd_wnd;           /* peer's window, scaled */
	uint32_t snd_wl1, snd_wl2;  /* seq and ack of the last window update */
	uint32_t iss;               /* initial send sequence number */
	uint32_t max_snd_wnd;       /* largest window the peer offered (RFC 5961 ACK check) */
	uint32_t snd_sml;           /* end of the last small segment sent (Minshall's Nagle) */

	/* receive sequence variables */
	uint32_t rcv_nxt;           /* next expected */
	uint32_t rcv_adv;           /* right edge advertised: rcv_nxt + window last sent */
	uint32_t irs;               /* initial receive sequence number */

	/* negotiated options */
	uint16_t mss;               /* largest payload we send: mss_path, bound to half a tiny window */
	uint16_t mss_path;          /* what the peer's MSS, the path's MTU and our options allow */
	uint16_t rcv_mss;           /* what we announced */
	uint16_t mss_clamp;         /* the peer's MSS, no more than ours (Linux's rx_opt.mss_clamp); 0: no SYN yet */
	uint16_t user_mss;          /* TCP_MAXSEG set before the connection, 0: none (Linux's user_mss) */
	uint8_t snd_wscale, rcv_wscale; /* shift for the peer's / our window */
	bool ws_ok, ts_ok, sack_ok;
	uint32_t ts_recent;         /* peer's latest TSval (RFC 7323) */
	ust_time ts_recent_stamp;   /* when ts_recent was set (PAWS 24-day rule) */
	uint32_t ts_offset;         /* randomises our TSval clock */
	/* ECN (RFC 3168; tcp_ecn.c), Linux's ecn_flags: UST_TCP_ECN_* */
	uint8_t ecn_flags;

	/* buffers */
	struct ust_ring sndbuf;     /* bytes from snd_buf_seq on, FIN not included */
	uint32_t snd_buf_seq;       /* sequence number of sndbuf's first byte */
	struct ust_ring rcvbuf;     /* in-order bytes not yet read, then out-of-order */
	struct ust_seqset ofo;      /* out-of-order ranges held in rcvbuf */
	/* The buffers' sizes as SO_RCVBUF and SO_SNDBUF report them (Linux's
	 * sk_rcvbuf, sk_sndbuf): they grow with the flow (tcp_rcv.c) unless
	 * the program set them (Linux's SOCK_RCVBUF_LOCK, SOCK_SNDBUF_LOCK).
	 * The send ring holds sndbuf_cap bytes; the receive ring holds the
	 * largest window, rcv_wnd_clamp. */
	uint32_t rcvbuf_cap, sndbuf_cap;
	bool rcvbuf_locked, sndbuf_locked;

	/* the receive window and the receiver's round trip (tcp_rcv.c) */
	uint32_t rcv_wnd_clamp;     /* the largest window we offer (Linux's window_clamp) */
	uint32_t user_wnd_clamp;    /* TCP_WINDOW_CLAMP before the first window (0: none) */
	uint8_t rcv_scaling;        /* the window per byte of buffer, of 256 (scaling_ratio) */
	uint32_t rcv_ssthresh;      /* the window opens up to here, growing with the data */
	uint32_t copied_seq;        /* the next byte the reader takes */
	uint32_t rcvq_space;        /* most bytes the reader took in one round trip */
	uint32_t rcvq_seq;          /* copied_seq when this round trip began */
	ust_time rcvq_time;
	ust_time rcv_rtt;           /* the receiver's round trip, µs; 0: not measured */
	uint32_t rcv_rtt_seq;       /* the round trip ends when RCV.NXT passes this */
	ust_time rcv_rtt_time;      /* and began then; 0: not timing */
	uint32_t rcv_rtt_tsecr;     /* the echo that gave the last timestamp sample */
	/* A sequence number in each SACK block reported lately, the newest
	 * first (RFC 2018 §4): the blocks themselves come from ofo. */
	uint32_t sack_recent[4];
	uint8_t nsack_recent;

	/* user-side flags */
	bool fin_queued;            /* CLOSE/SHUT_WR: send a FIN after the data */
	bool rd_shut;               /* SHUT_RD */
	bool released;              /* the user closed it (orphan) */
	bool fin_rcvd;              /* the peer's FIN is in sequence (Linux's SOCK_DONE) */
	bool ofo_fin;               /* a FIN waits beyond a gap, at ofo_fin_seq */
	bool dsack;                 /* report dsack_start..end in the next ACK (RFC 2883) */
	uint32_t dsack_start, dsack_end;
	uint32_t ofo_fin_seq;
	bool nodelay;
	/* Linux's TCP_NAGLE_CORK: a partial segment waits for the rest of
	 * it, the uncork, or the probe timer (the RTO, at least 200 ms: the
	 * persist path of tcp_output). cork is TCP_CORK; more is MSG_MORE's,
	 * for the bytes of that call, and ends at the next ACK (Linux pushes
	 * then without the cork) or the shim's next send without it. */
	bool cork, more;
	/* Urgent data (tcp_urg.c): sending, SND.UP while in urgent mode;
	 * receiving, the sequence number of the urgent byte announced and
	 * not yet read. */
	bool urg_mode, rcv_urg;
	uint32_t snd_up, rcv_urg_seq;
	bool keepalive;
	bool linger_on;
	unsigned linger_s;
	/* The IPv4 header of what it sends (IP_TOS, IP_TTL,
	 * IP_MTU_DISCOVER), which a listener's children inherit, as Linux's
	 * inet_sock: the TOS byte less its ECN field (that is tcp_ecn.c's),
	 * the TTL (0: UST_IP_TTL_DEFAULT) and the PMTU discovery mode
	 * (UST_PMTUDISC_*: DF or not). */
	uint8_t ip_tos, ip_ttl, ip_pmtudisc;
	/* The same for what it sends over IPv6 (IPV6_TCLASS,
	 * IPV6_UNICAST_HOPS, IPV6_MTU_DISCOVER), Linux's ipv6_pinfo: an
	 * AF_INET6 socket's IPv4-mapped connections go by the IPv4 ones. The
	 * traffic class less its ECN field, the hop limit
	 * (UST_TCP_HOPS_DEFAULT: the link's, 64), the PMTU mode. */
	uint8_t ip6_tclass, ip6_pmtudisc;
	uint16_t ip6_hops;
	/* The IPv6 flow label of every segment (RFC 6437): a keyed hash of
	 * the 4-tuple, as Linux's auto flow labels (net.ipv6.auto_flowlabels
	 * 1), made at the first segment (tcb_flow_label); with
	 * UST_TCP_FLOW_SET once made. A new one after a retransmission
	 * timeout, or the peer's data again under another label
	 * (tcp_flow_relabel: Linux's sk_rethink_txhash, which picks another
	 * path through routers that hash the label). lrcv_flow: the label of
	 * the peer's last data (Linux's lrcv_flowlabel). */
	uint32_t flow_label, lrcv_flow;
	/* IPV6_MINHOPCOUNT (RFC 5082's check): a segment over IPv6 with a
	 * smaller hop limit is dropped, as Linux's tcp_v6_rcv; 0: none. */
	uint8_t min_hops;
	uint8_t min_ttl;            /* IP_MINTTL (RFC 5082), as min_hops for IPv4 */
	bool thin_lto;              /* TCP_THIN_LINEAR_TIMEOUTS (Linux's tp->thin_lto) */
	bool txrehash;              /* SO_TXREHASH (Linux's sk_txrehash): relabel after a timeout */
	/* TCP_SAVE_SYN (0, 1, 2), and a child's SYN headers it kept for
	 * TCP_SAVED_SYN (malloc'd, freed once read or with the block). */
	uint8_t save_syn;
	uint16_t saved_syn_len;
	uint8_t *saved_syn;
	uint8_t rcv_tos;            /* a child's: IP_PKTOPTIONS' TOS (ust_tcp_rcv_tos) */
	/* Over IPv6, Linux's np->mcast_hops and np->rcv_flowinfo (traffic
	 * class << 20 | flow label): a child's from the segment that
	 * completed its handshake, then from each segment received in order
	 * while rx6opt asks (UST_TCP_RX6_*; tcp_input.c, note_rcv_ip6).
	 * rcv_hops 0: none yet. */
	uint8_t rcv_hops, rx6opt;
	uint32_t rcv_flowinfo;
	/* And what Linux keeps of a received segment (np->pktoptions):
	 * kept when the receive options accept it (ipv6_opt_accepted: a flow
	 * label or traffic class with IPV6_FLOWINFO, an extension header
	 * asked for), or a listener's child's SYN when its listener asked
	 * for the interface or hop limit; the next segment in order replaces
	 * or clears it. Its hop limit and flow information, and its IPv6
	 * header with the extension headers when it had some (kept_net,
	 * malloc'd, UST_TCP_KEPT_NET_MAX bytes at most: a longer one keeps
	 * none); rcv_oif: the interface was noted (np->mcast_oif). */
	bool kept, rcv_oif;
	uint8_t kept_hops;
	uint16_t kept_net_len;
	uint32_t kept_flowinfo;
	uint8_t *kept_net;
	/* What goes between the IP header and TCP's (tcp_ipext.c), malloc'd,
	 * NULL: none: IP_OPTIONS, which a listener's children do not take
	 * (Linux's inet_opt); the sticky IPv6 extension headers, which they
	 * do, its SYN-ACK too (Linux's ipv6_pinfo opt). A timewait socket
	 * sends neither (tcb_emit). */
	struct ust_ip4_opts *ip4_opts;
	struct ust_ip6_ext *ip6_ext;
	/* TCP_MD5SIG's keys (tcp_md5.c); NULL: none. A listener's child
	 * holds its listener's key for its peer alone; TIME-WAIT keeps the
	 * block's. */
	struct tcp_md5 *md5;
	/* The path MTU that packet too big or fragmentation needed left
	 * (IP_MTU, IPV6_MTU); 0: the link's. */
	uint16_t pmtu;
	/* A new TOS or traffic class dropped the socket's route, as Linux's
	 * sk_dst_reset in __ip_sock_set_tos and IPV6_TCLASS: until the next
	 * segment goes out (tcb_ip_hdr) IP_MTU and IPV6_MTU have no path to
	 * read (ENOTCONN; measured on 6.18, ip6matrix.py connected). */
	bool route_reset;
	/* The ECN field of the last segment other than a SYN, which Linux
	 * keeps in inet->tos (INET_ECN_xmit, INET_ECN_dontxmit), so that
	 * getsockopt(IP_TOS) shows ECT(0) after new data on an ECN
	 * connection (measured on 6.18: 0x28 set, 0x2a read back). */
	uint8_t ip_ecn_sent;
	/* Linux's full socket ACKs the FIN that ends in TIME-WAIT, then
	 * becomes a timewait socket, which sends with the default TTL and DF
	 * (tcp_output.c, tcb_ip_hdr): that ACK is still owed. */
	bool tw_ack_as_socket;
	/* It entered TIME-WAIT beyond cfg.max_tw: it ends at the next run of
	 * the timers, and no segment restarts its 2 MSL meanwhile. */
	bool tw_overflow;
	int so_error;               /* pending error, reported once (Linux's sk_err) */
	int hard_error;             /* why it died, kept for later calls (ECONNRESET…) */

	/* retransmission (RFC 6298) */
	ust_time srtt, rttvar, rto; /* microseconds; srtt 0 = no sample yet; rttvar as TCP_INFO's (mdev / 4) */
	/* Linux's estimator (tcp_rtt_estimator): mdev, 4 × the mean
	 * deviation; its largest value over the current round trip
	 * (mdev_max, from TCP_RTO_MIN); the variance term of the RTO, which
	 * follows mdev_max up at once and down by a quarter per round trip
	 * (rto_var, Linux's rttvar_us); the round trip ends when SND.UNA
	 * passes rtt_seq. */
	ust_time mdev, mdev_max, rto_var;
	uint32_t rtt_seq;
	ust_time rtt_start;         /* when the SYN or SYN-ACK went: the handshake's round trip */
	unsigned backoff;           /* RTOs since the last RTT sample: the RTO's doublings (icsk_backoff) */
	unsigned rto_count;         /* RTOs since SND.UNA last moved (Linux's icsk_retransmits) */
	ust_time first_rtx;         /* when the current run of retransmissions began */
	unsigned syn_retries;
	uint64_t total_retrans;
	ust_time user_timeout;      /* TCP_USER_TIMEOUT; 0 = by retry count */

	/* congestion control (RFC 5681), counted in segments as Linux does
	 * (tcp_snd_cwnd): the window is snd_cwnd full segments in flight */
	const struct tcp_cc *cc;    /* the algorithm (tcp_cc.c) */
	/* enum tcp_ca_state (tcp_impl.h), Linux's icsk_ca_state, changed only
	 * by tcp_set_ca_state. Not the enum's type here: glibc's
	 * <netinet/tcp.h>, which the shim includes with this file, declares
	 * an enum tcp_ca_state of its own. */
	uint8_t ca_state;
	uint32_t snd_cwnd;          /* segments that may be in flight */
	uint32_t snd_ssthresh;      /* slow start below this; TCP_INFINITE_SSTHRESH: none yet */
	uint32_t snd_cwnd_cnt;      /* congestion avoidance: segments acked towards the next +1 */
	uint32_t snd_cwnd_clamp;    /* cwnd never grows beyond this */
	uint32_t prior_cwnd;        /* cwnd and ssthresh before the loss episode (undo) */
	uint32_t prior_ssthresh;
	ust_time snd_cwnd_stamp;    /* when cwnd was last used or changed (idle restart) */
	ust_time lsndtime;          /* when data was last sent (Linux's lsndtime) */
	/* The algorithm's own per-connection state, Linux's icsk_ca_priv
	 * (ICSK_CA_PRIV_SIZE, 104 bytes): each algorithm casts it to its
	 * struct, with a _Static_assert on the size. */
	uint64_t ca_priv[13];
	/* Loss recovery and the window meanwhile (Linux's high_seq; PRR,
	 * RFC 9937, tcp_cwnd_reduction). */
	uint32_t recover;           /* SND.MAX when the recovery or loss episode began */
	uint32_t prr_delivered;     /* segments delivered since recovery began */
	uint32_t prr_out;           /* segments sent since recovery began */
	/* Is the flow using its window (RFC 7661, Linux's tcp_cwnd_validate)?
	 * Over the last window: the largest flight in segments, and whether a
	 * send was held back by cwnd; the window ends at cwnd_usage_seq. */
	uint32_t max_packets_out;
	uint32_t cwnd_usage_seq;
	bool is_cwnd_limited;
	/* Pacing (tcp_output.c), as Linux's internal pacing: an algorithm
	 * that sets pacing_rate has the sender's bursts leave no earlier than
	 * their departure times (Linux's tcp_wstamp_ns, earliest departure
	 * time), each burst moving the next one on by its length at the rate. */
	uint64_t pacing_rate;       /* bytes per second; 0: no pacing */
	/* SO_MAX_PACING_RATE (bytes per second; UINT64_MAX: none) caps the
	 * rate of every algorithm; once set, a flow no algorithm paces is
	 * paced at Linux's rate for it (tcp_update_pacing_rate), as Linux's
	 * sk_pacing_status turns SK_PACING_NEEDED for good. */
	uint64_t max_pacing_rate;
	bool pacing_needed;
	uint64_t pacing_next_ns;    /* the next burst's departure time, ns of the stack's clock */
	uint64_t pacing_credit_ns;  /* how late the current burst left: what it may make up */

	/* The scoreboard (tcp_sb.c, Linux's retransmission queue): a record
	 * per segment sent and not cumulatively acknowledged, in sequence
	 * order, tiling SND.UNA..SND.MAX. The array exists only while
	 * something is in flight (issue 13: an idle connection keeps none). */
	struct tcp_sent *sb;        /* sb_cap slots; the records: sb[sb_head ..] */
	uint32_t sb_cap, sb_head;
	uint32_t packets_out;       /* records (Linux's packets_out) */
	uint32_t sacked_out;        /* SACKed records; without SACK, duplicate ACKs (tcp_add_reno_sack) */
	uint32_t lost_out;          /* records marked lost */
	uint32_t retrans_out;       /* records whose retransmission is in flight */
	uint32_t highest_sack;      /* end of the highest SACKed record (valid with sacked_out) */
	uint32_t reordering;        /* degree of reordering seen, segments (Linux's tp->reordering, 3) */
	uint32_t reord_seen;        /* reorderings detected */
	bool dsack_seen;            /* the peer reports duplicates (D-SACK, RFC 2883) */
	uint32_t dsacks;            /* segments it reported received twice */
	uint64_t lost;              /* segments ever marked lost (Linux's tp->lost) */
	/* Undo (RFC 3522, Linux's undo_marker): set when a loss episode
	 * begins, for the undo of a spurious one. */
	bool undo_armed;
	uint32_t undo_marker;       /* SND.UNA when it began */
	int32_t undo_retrans;       /* retransmissions not yet reported as duplicates; -1: none */
	/* The first retransmission of the episode (Linux's retrans_stamp):
	 * an echo older than it answers an original (RFC 3522, Eifel). 0:
	 * nothing retransmitted. */
	ust_time retrans_stamp;
	/* Tail loss probe (RFC 8985 §7, Linux's tlp_high_seq and
	 * tlp_retrans): one probe per episode, which ends when SND.NXT at the
	 * probe is acknowledged. */
	bool tlp_active;            /* a probe is out (Linux: tlp_high_seq != 0) */
	bool tlp_retrans;           /* it resent the last segment (not new data) */
	uint32_t tlp_high_seq;      /* SND.NXT when it went */
	/* F-RTO (RFC 5682, SACK-enhanced, Linux's tp->frto): after an RTO,
	 * an ACK of data never retransmitted shows the timeout spurious.
	 * frto_new_data: the ACK just handled asks for new data rather than
	 * retransmissions (step 2b, Linux's REXMIT_NEW), taken by the next
	 * transmission. */
	bool frto;
	bool frto_new_data;

	/* Delivery rate (tcp_rate.c; Linux's tcp_rate.c,
	 * draft-cheng-iccrg-delivery-rate-estimation). */
	uint64_t delivered;         /* segments delivered (acknowledged or SACKed) */
	ust_time delivered_time;    /* when delivered last grew */
	ust_time first_tx_time;     /* send time of the newest segment delivered */
	uint64_t app_limited;       /* 0, or the delivered count that ends an application-limited phase */
	uint64_t rate_delivered;    /* the latest good sample: segments over rate_interval */
	ust_time rate_interval;
	bool rate_app_limited;
	/* RACK (RFC 8985, tcp_rack.c): the most recently sent segment
	 * delivered, and the reordering window. */
	struct {
		ust_time xmit_time;     /* RACK.xmit_ts: its last transmission */
		uint32_t end_seq;       /* RACK.end_seq */
		ust_time rtt;           /* RACK.rtt: its RTT */
		bool valid;             /* a segment was delivered */
		bool advanced;          /* it moved since losses were last looked for */
		bool dsack_seen;        /* a D-SACK waits to widen the window */
		uint8_t reo_wnd_steps;  /* the window, in steps of min_rtt/4 */
		uint8_t reo_wnd_persist; /* recoveries a widened window still lasts */
		uint64_t last_delivered; /* t->delivered when it last widened */
	} rack;
	/* The least RTT over the last 5 minutes (Linux's rtt_min, a windowed
	 * min filter, tcp_min_rtt_wlen): RACK and the rate samples use it. */
	struct tcp_min_sample { ust_time at, rtt; } rtt_min[3];

	/* when to ACK (tcp_rcv.c): Linux's delayed-ACK engine, inet_csk's ack
	 * state */
	bool ack_now;               /* an ACK owed at once (ICSK_ACK_NOW) */
	bool ack_sched;             /* an ACK owed for data received (ICSK_ACK_SCHED) */
	uint8_t ack_pushed;         /* UST_ACK_PUSHED, UST_ACK_PUSHED2 since our last ACK */
	uint8_t ack_quick;          /* ACKs still to send at once (quick-ACK mode) */
	uint8_t ack_pingpong;       /* replies sent soon after data: interactive when >= 1 */
	uint8_t ack_compressed;     /* ACKs held back for data out of order (compressed_ack) */
	uint8_t ack_dup_count;      /* ACKs sent at once for the same RCV.NXT (dup_ack_counter) */
	uint32_t ack_compressed_nxt; /* the RCV.NXT they were for (compressed_ack_rcv_nxt) */
	ust_time ack_ato;           /* the delayed-ACK timeout, adapted; 0 until data came */
	ust_time ack_lrcvtime;      /* when in-order data last came */
	uint16_t rcv_seg_mss;       /* the peer's segment size as seen (icsk_ack.rcv_mss) */
	uint16_t rcv_last_seg;      /* the last small segment's size (icsk_ack.last_seg_size) */
	uint32_t last_ack_sent;     /* RCV.NXT in our latest ACK (RFC 7323 Last.ACK.sent; Linux's rcv_wup) */
	bool persist;               /* the RTX timer is probing a zero window */
	unsigned persist_probes;    /* unanswered zero-window probes */

	/* keepalive */
	ust_time keep_idle, keep_intvl;
	unsigned keep_cnt, keep_probes;
	ust_time last_rcv;

	/* challenge ACK rate limit (RFC 5961 §7) */
	ust_time last_challenge;

	/* timers: absolute deadlines, UST_TIME_NEVER when off */
	ust_time timer[UST_TT_N];
	ust_time ring_drained;      /* when a grown ring last held nothing (UST_TT_SHED) */
	ust_time due;               /* min of timer[], the key in the heap */
	unsigned heap_idx;
	unsigned tw_pidx;           /* its place + 1 in tcp->twpending; 0: not there */

	/* listener */
	unsigned backlog;
	/* TCP_DEFER_ACCEPT as SYN-ACK timeouts (Linux's rskq_defer_accept),
	 * copied to the children; defer_acked: a child's handshake was ACKed
	 * without data (Linux's inet_rsk(req)->acked). */
	uint8_t defer_accept;
	bool defer_acked;
	unsigned acceptq_len, synq_len;
	/* The SYN queue's bound: the program's backlog (somaxconn-capped),
	 * as Linux's sk_max_ack_backlog; beyond it, SYN cookies. */
	unsigned synq_max;
	/* When a SYN cookie was last sent (0: never): for two minutes after,
	 * an ACK to the listener is checked for one (Linux's
	 * tcp_synq_overflow). */
	ust_time cookie_sent_at;
	struct ust_tcb *acceptq_head, *acceptq_tail;

	/* What TCP_INFO reports beyond the state above, counted as Linux
	 * counts it (tcp_stats.c; RFC 4898's names in Linux's tcp_info). */
	struct tcp_stats {
		uint64_t bytes_acked;       /* SND.UNA's advance: SYN, data, FIN */
		uint64_t bytes_received;    /* RCV.NXT's advance by data and FIN */
		uint64_t bytes_sent;        /* payload sent, retransmissions included */
		uint64_t bytes_retrans;     /* payload sent again */
		uint32_t segs_in, segs_out; /* every segment of this connection */
		uint32_t data_segs_in, data_segs_out; /* those with payload */
		uint32_t rcv_ooopack;       /* segments that arrived out of order */
		uint32_t received_ce;       /* segments that arrived marked CE (RFC 3168) */
		uint32_t delivered_ce;      /* segments delivered with ECE reported for them */
		uint16_t total_rto;         /* retransmission timeouts, SYN's included */
		uint16_t total_rto_recoveries; /* runs of them (from the first to an ACK ending Loss) */
		uint32_t total_rto_time;    /* ms spent in those runs, the current one excluded */
		ust_time rto_stamp;         /* when the current run began */
		bool in_rto_run;            /* a run is under way */
		/* Linux's chronograph (tcp_chrono_start): time busy sending,
		 * split by what limited it; one kind runs at a time, the
		 * higher one winning (enum tcp_chrono). */
		uint8_t chrono_type;
		ust_time chrono_start;
		ust_time chrono_stat[3];    /* µs: busy, rwnd-limited, sndbuf-limited */
		bool snd_nospace;           /* a write found the send buffer full (SOCK_NOSPACE) */
	} stats;

	struct ust_tcp_record rec;
	/* The stack thread's mark, which the engine only keeps: the program
	 * a TIME-WAIT handed over from another stack came from (0: none). */
	uint32_t tag;
	uint32_t fin_timeout_ms;    /* TCP_LINGER2 for this connection; 0 = default */
	bool linger2_neg;
};

/* ---- the TCP layer of one stack ---- */

struct ust_tcp_config {
	unsigned msl_ms;            /* TIME-WAIT is 2 MSL */
	unsigned fin_timeout_ms;    /* orphaned FIN-WAIT-2 */
	/* Buffer sizes as Linux's tcp_rmem and tcp_wmem: the smallest, the
	 * size a connection starts with, the most it grows to. */
	uint32_t rmem[3], wmem[3];
	/* The ceiling on control blocks, listeners and orphans included,
	 * TIME-WAITs not (0: none). Tables grow up to it; a socket beyond it
	 * gets ENFILE and a SYN is dropped (tcp-no-tcb). The shim sets it
	 * from the fd limit (USTCP_MAX_CONNS). */
	unsigned max_conns;
	/* TIME-WAITs held at once, apart from the ceiling, as Linux's
	 * tcp_max_tw_buckets (UINT_MAX, the default: no bound; 0: none
	 * held). A connection that would go beyond it ends where TIME-WAIT
	 * would begin, as Linux's does (its ACK of the peer's FIN still
	 * goes), counted tcp-tw-overflow. */
	unsigned max_tw;
	unsigned syn_retries;       /* Linux tcp_syn_retries: 6 */
	unsigned synack_retries;    /* Linux tcp_synack_retries: 5 */
	unsigned retries2;          /* Linux tcp_retries2: 15 */
	/* Linux's tcp_thin_linear_timeouts (0, its default): every connection
	 * as if it had set TCP_THIN_LINEAR_TIMEOUTS. */
	bool thin_linear_timeouts;
	/* Linux's net.core.txrehash (1, its default): a new IPv6 flow label
	 * after a timeout, for SO_TXREHASH -1 and new sockets. */
	bool txrehash;
	unsigned orphan_retries;    /* Linux tcp_orphan_retries 0 means 8 */
	bool rfc1337;               /* ignore RST in TIME-WAIT (Linux default: no) */
	/* Linux's tcp_early_retrans: 3 (its default) or 4 sends tail loss
	 * probes (RACK-TLP); 0..2 do not. */
	unsigned early_retrans;
	/* Linux's tcp_ecn: 0 never ECN; 1 ask for it on connect and accept
	 * it; 2 (the default, as Linux's) accept it when a peer asks. */
	unsigned ecn;
	/* Linux's tcp_frto: 0 turns F-RTO (RFC 5682) off; 2, its default,
	 * and 1 turn it on (both as the SACK-enhanced version, as Linux). */
	unsigned frto;
	/* Linux's tcp_syncookies: 0 never; 1 (the default) when a
	 * listener's SYN queue is full; 2 for every SYN (tcp_syncookie.c). */
	unsigned syncookies;
	/* Congestion control of new connections (tcp_cc_find names them;
	 * TCP_CONGESTION changes one); NULL: the default, cubic. */
	const struct tcp_cc *cc;
	uint64_t isn_key[2];        /* RFC 6528 secret */
	/* Events for the user (the shim); may be NULL in tests that poll. */
	void (*event)(void *ctx, struct ust_tcb *tcb, unsigned events);
	/* A connection reached CLOSED: its record is final (close log). */
	void (*closed)(void *ctx, const struct ust_tcb *tcb);
	/* Ports shared with other stacks on the same address (other
	 * processes); all three may be NULL (one stack owns the address).
	 * port_claim takes a reference on *port, choosing one when it is 0,
	 * sharing it with remnants of other stacks (TIME-WAIT) if how has
	 * UST_PORT_REUSEADDR (SO_REUSEADDR), with other stacks' SO_REUSEPORT
	 * sockets if UST_PORT_REUSEPORT, for the families whose datagrams the
	 * block takes (UST_TCP_PORT_V4, UST_TCP_PORT_V6: each has a port space
	 * of its own, as on Linux); 0 or -EADDRINUSE/-EADDRNOTAVAIL. port_release
	 * drops one, for a control block that talked to raddr:rport (0:0
	 * for a listener).
	 * port_foreign: is this segment from raddr:rport to our port another
	 * stack's, now or until a moment ago? One that matches nothing here
	 * is then left to that stack instead of being answered with RST. */
	int (*port_claim)(void *ctx, uint16_t *port, unsigned how, unsigned families);
	void (*port_release)(void *ctx, uint16_t port, const struct ust_ip6 *raddr, uint16_t rport);
	bool (*port_foreign)(void *ctx, uint16_t port, const struct ust_ip6 *raddr, uint16_t rport);
	/* An SO_REUSEPORT group that spans stacks (listeners of other
	 * processes on our address in it too): of the whole group's
	 * listeners on lport, which takes the flow from raddr:rport? The
	 * index among our nlocal listeners, or -1 when another stack's
	 * does. *shared says whether another stack holds the port in the
	 * group at all (false: the group is ours alone and the answer means
	 * nothing). Every stack must answer alike for a flow: hash it with
	 * ust_tcp_flow_hash. Without exact (a segment that is neither a SYN
	 * nor an answer to a SYN cookie of ours), only *shared matters, and
	 * may be had cheaper (no question to the kernel per member): the
	 * answer is then -1. May be NULL. */
	int (*reuseport_pick)(void *ctx, uint16_t lport, const struct ust_ip6 *raddr, uint16_t rport,
			      unsigned nlocal, bool exact, bool *shared);
	/* Has another stack on our address taken the 4-tuple lport <->
	 * raddr:rport over a moment ago (a connect from the same bound port
	 * in another process)? A TIME-WAIT of ours on it then ends, as
	 * Linux's does when tcp_twsk_unique gives its 4-tuple to a new
	 * socket. May be NULL. */
	bool (*tuple_taken)(void *ctx, uint16_t lport, const struct ust_ip6 *raddr, uint16_t rport);
	/* A listener's accept queue is at the backlog last set
	 * (ust_tcp_set_backlog) as a SYN or a cookie's ACK comes: the user
	 * may set it again, from what it knows now, before the segment is
	 * dropped. May be NULL. */
	void (*backlog_full)(void *ctx, struct ust_tcb *listener);
	/* A group that spans stacks, and a segment that matches no
	 * connection here and is no SYN: tuple_hold notes each connection a
	 * listener of ours with SO_REUSEPORT makes (before its SYN-ACK
	 * leaves; port_release lets it go), so that every stack may know
	 * the group's connections; group_stray says whether this stack
	 * answers such a segment with RST, as Linux's one table would: no
	 * stack holds its 4-tuple, and the group picks us to answer (one
	 * stack does). Both may be NULL (never reset: the segment may be
	 * another stack's). */
	void (*tuple_hold)(void *ctx, uint16_t lport, const struct ust_ip6 *raddr, uint16_t rport);
	bool (*group_stray)(void *ctx, uint16_t lport, const struct ust_ip6 *raddr, uint16_t rport);
	void *ctx;
};

/* port_claim's how. */
#define UST_PORT_REUSEADDR 1u
#define UST_PORT_REUSEPORT 2u

/* The 4-tuple table's first size; it doubles whenever it holds more
 * blocks than buckets, so chains stay about one block long. */
#define UST_TCP_HASH_MIN 256u
#define UST_TCP_PORTS 65536u

struct ust_tcp {
	struct ust_stack *st;
	struct ust_tcp_config cfg;
	struct ust_tcb **hash;                /* by 4-tuple; listeners by port with raddr 0 */
	unsigned hash_size;                   /* buckets, a power of two */
	struct ust_tcb **ports;               /* UST_TCP_PORTS chains: the blocks by local port */
	struct ust_tcb **heap;                /* timers: min-heap on tcb->due */
	unsigned heap_len, heap_cap;          /* heap_cap >= nconns */
	unsigned nconns;
	unsigned ntw;                         /* TIME-WAITs: blocks (tcb_store_state) and records */
	/* TIME-WAITs kept compact (tcp_twrec.c): records by 4-tuple and by
	 * local port, a heap of their deadlines (as long as ntwrec), all
	 * made at the first record; and the blocks that entered TIME-WAIT
	 * or were let go of in it since the last sweep (a NULL for one
	 * freed meanwhile). */
	struct tcp_twrec **twhash, **twports, **twheap;
	unsigned twhash_size, ntwrec, twheap_cap;
	struct ust_tcb **twpending;
	unsigned npending, pending_cap;
	uint16_t next_ephemeral;
	ust_time now;                         /* of the call being processed */
	/* The segment being taken in (segment_arrives), NULL otherwise: a
	 * timewait socket answers with the echo of its IP options. */
	const struct ust_tcp_seg *seg_in;
	ust_time challenge_window;            /* global challenge-ACK budget (RFC 5961) */
	unsigned challenge_count;
};

void ust_tcp_default_config(struct ust_tcp_config *cfg);
int ust_tcp_init(struct ust_tcp *tcp, struct ust_stack *st, const struct ust_tcp_config *cfg);
/* Frees every control block without sending anything. */
void ust_tcp_destroy(struct ust_tcp *tcp);
/* Runs due timers; returns the next deadline. */
ust_time ust_tcp_timers(struct ust_tcp *tcp, ust_time now);
/* The network layer's handlers (installed by ust_tcp_init). */
void ust_tcp_input(void *ctx, const struct ust_ipv4 *ip, unsigned rxflags, ust_time now);
void ust_tcp_icmp_error(void *ctx, const struct ust_icmp_error *err, ust_time now);
void ust_tcp_unreachable(void *ctx, uint32_t dst, int err, ust_time now);
void ust_tcp_input6(void *ctx, const struct ust_ipv6 *ip, unsigned rxflags, ust_time now);
void ust_tcp_icmp6_error(void *ctx, const struct ust_icmp6_error *err, ust_time now);
void ust_tcp_unreachable6(void *ctx, const struct ust_ip6 *dst, int err, ust_time now);

/* ---- user calls (RFC 9293 §3.9.1, in BSD-socket shape) ----
 * All return 0 or a byte count, or -errno as Linux's socket call would. */

/* A new control block in CLOSED, for a socket; NULL with *err -ENFILE at
 * cfg.max_conns, -ENOBUFS without memory. */
struct ust_tcb *ust_tcp_create(struct ust_tcp *tcp, void *user, int *err);
/* The socket's family, before bind or connect: AF_INET6 (ipv6) takes
 * IPv6 peers, and IPv4 ones mapped unless v6only (IPV6_V6ONLY); a
 * block is AF_INET until told. */
void ust_tcp_set_family(struct ust_tcb *tcb, bool ipv6, bool v6only);
/* The local address a listener takes connections to (bind with an
 * address): NULL or the unspecified address of its family for any. */
void ust_tcp_set_local(struct ust_tcb *tcb, const struct ust_ip6 *laddr);
/* Claims the local port (0: an ephemeral one, now, as Linux). */
int ust_tcp_bind(struct ust_tcb *tcb, uint16_t lport, bool reuseaddr);
/* SO_REUSEADDR, for the port an ephemeral pick claims (connect's). */
void ust_tcp_set_reuseaddr(struct ust_tcb *tcb, bool on);
/* SO_REUSEPORT, before bind: sockets that all set it may bind the same
 * port and listen there together, a group whose listeners share the
 * connections by the 4-tuple (Linux's reuseport group, one user). */
void ust_tcp_set_reuseport(struct ust_tcb *tcb, bool on);
/* The families whose datagrams a block on its port takes: its own; an
 * AF_INET6 one's IPv4 too unless IPV6_V6ONLY or bound to an IPv6
 * address; one bound to an IPv4-mapped address, IPv4 only. */
#define UST_TCP_PORT_V4 1u
#define UST_TCP_PORT_V6 2u
unsigned ust_tcp_port_families(const struct ust_tcb *tcb);
/* Does a listener of this stack remain on lport? */
bool ust_tcp_port_listening(struct ust_tcp *tcp, uint16_t lport);
/* How many of this stack's SO_REUSEPORT listeners are on lport. */
unsigned ust_tcp_port_group_size(struct ust_tcp *tcp, uint16_t lport);
/* A flow's hash, keyed by cfg.isn_key: the same in every stack that
 * shares the secret (reuseport_pick). */
uint32_t ust_tcp_flow_hash(const struct ust_tcp *tcp, const struct ust_ip6 *raddr, uint16_t lport,
			   uint16_t rport);
/* OPEN, active: sends the SYN. */
int ust_tcp_connect(struct ust_tcb *tcb, uint32_t raddr, uint16_t rport, ust_time now);
/* The same to an address of either family (IPv4 mapped): -EAFNOSUPPORT
 * for an IPv4 one from a v6only socket or an IPv6 one from an AF_INET
 * socket; -EADDRNOTAVAIL while no address of ours for it is through
 * DAD; -ENETUNREACH without a route. */
int ust_tcp_connect_to(struct ust_tcb *tcb, const struct ust_ip6 *raddr, uint16_t rport, ust_time now);
/* OPEN, passive. */
int ust_tcp_listen(struct ust_tcb *tcb, unsigned backlog);
/* The oldest established connection of a listener, or NULL (-EAGAIN). */
struct ust_tcb *ust_tcp_accept(struct ust_tcb *listener, void *user, int *err);
/* SEND: queues up to len bytes; returns how many (0 if the buffer is full). */
long ust_tcp_send(struct ust_tcb *tcb, const void *buf, size_t len, ust_time now);
/* RECEIVE: >0 bytes, 0 at EOF, -EAGAIN when nothing is there yet, or the
 * pending error once (-ECONNRESET, -ETIMEDOUT…). */
long ust_tcp_receive(struct ust_tcb *tcb, void *buf, size_t len, ust_time now);
/* shutdown(2): how is SHUT_RD, SHUT_WR or SHUT_RDWR. */
int ust_tcp_shutdown(struct ust_tcb *tcb, int how, ust_time now);
/* CLOSE: the user lets go. A FIN after the data, or a RST if received data
 * was never read or SO_LINGER is {1, 0}. The block lives on until CLOSED. */
int ust_tcp_close(struct ust_tcb *tcb, ust_time now);
/* ABORT: RST (where the state calls for one) and CLOSED at once. */
void ust_tcp_abort(struct ust_tcb *tcb, ust_time now);

/* Zero-copy variants for a relay: the in-order received bytes as up to
 * two spans (read them, then report how many were taken), and the send
 * ring's free space as up to two spans (fill them, then commit). The spans
 * stay valid until the next call into TCP. snd_spans gives 0 spans when
 * SEND would not queue (not synchronized, FIN queued, error, no memory);
 * it gives the ring memory, and the commit that follows (of 0 bytes too)
 * gives it back if the ring stays empty. */
unsigned ust_tcp_rcv_spans(const struct ust_tcb *tcb, struct iovec iov[2]);
void ust_tcp_rcv_consumed(struct ust_tcb *tcb, uint32_t n, ust_time now);
unsigned ust_tcp_snd_spans(struct ust_tcb *tcb, struct iovec iov[2]);
void ust_tcp_snd_commit(struct ust_tcb *tcb, uint32_t n, ust_time now);
/* The bytes SEND may queue now, without giving the send ring memory. */
uint32_t ust_tcp_snd_room(const struct ust_tcb *tcb);

/* MSG_OOB: the urgent pointer goes after the byte beyond bytes past the
 * send ring's end (bytes on their way to it), and urgent mode pushes. */
void ust_tcp_send_urgent(struct ust_tcb *tcb, uint32_t beyond, ust_time now);
/* The urgent byte the peer announced, when it is among the bytes
 * ust_tcp_rcv_spans gives: its offset there. */
bool ust_tcp_rcv_urgent(const struct ust_tcb *tcb, uint32_t *offset);

/* Takes the pending error (SO_ERROR): returns it and clears it. */
int ust_tcp_take_error(struct ust_tcb *tcb);

enum ust_tcp_opt {
	UST_TCP_OPT_NODELAY,
	UST_TCP_OPT_KEEPALIVE,
	UST_TCP_OPT_KEEPIDLE,       /* seconds */
	UST_TCP_OPT_KEEPINTVL,      /* seconds */
	UST_TCP_OPT_KEEPCNT,
	UST_TCP_OPT_USER_TIMEOUT,   /* milliseconds */
	UST_TCP_OPT_LINGER2,        /* seconds; < 0: reset instead of FIN-WAIT-2 */
	UST_TCP_OPT_SNDBUF,         /* bytes */
	UST_TCP_OPT_RCVBUF,
	UST_TCP_OPT_MAXSEG,
	UST_TCP_OPT_SYNCNT,
	UST_TCP_OPT_QUICKACK,       /* 1: ACK now and leave interactive mode; 0: delay */
	UST_TCP_OPT_IP_TOS,         /* the TOS byte; its ECN bits are ignored */
	UST_TCP_OPT_IP_TTL,         /* 1..255, or -1: the default */
	UST_TCP_OPT_IP_MTU_DISCOVER, /* UST_PMTUDISC_* */
	UST_TCP_OPT_IP_MTU,         /* read only: the path MTU; -ENOTCONN unless connected */
	UST_TCP_OPT_IPV6_TCLASS,    /* -1..255 (-1: 0); its ECN bits are ignored */
	UST_TCP_OPT_IPV6_UNICAST_HOPS, /* 0..255, or -1: the default */
	UST_TCP_OPT_IPV6_MTU_DISCOVER, /* UST_PMTUDISC_* (Linux's IPV6_PMTUDISC_* are the same) */
	UST_TCP_OPT_CORK,           /* TCP_CORK: 1 holds partial segments; 0 pushes them */
	UST_TCP_OPT_MORE,           /* MSG_MORE: 1 holds them until the next ACK; 0 pushes them */
	UST_TCP_OPT_WINDOW_CLAMP,   /* TCP_WINDOW_CLAMP: bytes; 0 (before connect) none */
	UST_TCP_OPT_DEFER_ACCEPT,   /* TCP_DEFER_ACCEPT: seconds, read back as Linux rounds them */
	UST_TCP_OPT_IPV6_FLOWLABEL, /* 1: the automatic flow label (the default); 0: label 0 */
	UST_TCP_OPT_IPV6_MINHOPCOUNT, /* IPV6_MINHOPCOUNT: 0..255; a segment under it is dropped */
	UST_TCP_OPT_IP_MINTTL,      /* IP_MINTTL: 0..255; an IPv4 segment with a lower TTL is dropped */
	UST_TCP_OPT_THIN_LINEAR_TIMEOUTS, /* 0 or 1: a thin stream's first timeouts do not back off */
	UST_TCP_OPT_TXREHASH,       /* SO_TXREHASH: 0 or 1, -1 the namespace's; 0 keeps the flow label */
	UST_TCP_OPT_SAVE_SYN,       /* TCP_SAVE_SYN: 1 keeps a child's SYN headers, 2 with the link's too */
	/* Over IPv6, what the receive options ask to note of each segment
	 * received in order (UST_TCP_RX6_*), as Linux's np->rxopt: its hop
	 * limit (IPV6_RECVHOPLIMIT, IPV6_2292HOPLIMIT), its traffic class and
	 * flow label (IPV6_RECVTCLASS, IPV6_FLOWINFO); a child has its
	 * listener's. */
	UST_TCP_OPT_IPV6_RXOPT,
	/* Read only: the hop limit noted (Linux's np->mcast_hops: a child's
	 * from the segment that completed its handshake, then as RXOPT asks;
	 * 0: none), and the flow information (np->rcv_flowinfo, traffic
	 * class << 20 | flow label), which IPV6_MULTICAST_HOPS,
	 * IPV6_2292PKTOPTIONS and IPV6_FL_F_REMOTE read. */
	UST_TCP_OPT_IPV6_RCV_HOPS,
	UST_TCP_OPT_IPV6_RCV_FLOWINFO,
	/* Read only: the segment kept (0x100 | its hop limit, 0: none), with
	 * 0x200 once the interface was noted; and its flow information. */
	UST_TCP_OPT_IPV6_RCV_KEPT,
	UST_TCP_OPT_IPV6_KEPT_FLOWINFO,
};
/* The IPv6 header and extension headers a connection keeps of a segment
 * (ust_tcp_kept_net). */
#define UST_TCP_KEPT_NET_MAX 256
/* UST_TCP_OPT_IPV6_RXOPT's bits, from the receive options set (Linux's
 * np->rxopt). */
#define UST_TCP_RX6_HOPS 1      /* note the hop limit: IPV6_RECVHOPLIMIT, IPV6_2292HOPLIMIT */
#define UST_TCP_RX6_FLOW 2      /* the flow information: IPV6_RECVTCLASS, IPV6_FLOWINFO */
#define UST_TCP_RX6_INFO 4      /* the interface: IPV6_RECVPKTINFO, IPV6_2292PKTINFO */
#define UST_TCP_RX6_ANY 8       /* any receive option at all (rxopt.all) */
#define UST_TCP_RX6_KEEP_FLOW 16 /* keep a segment with flow information: IPV6_FLOWINFO */
#define UST_TCP_RX6_KEEP_HBH 32 /* with hop-by-hop options: IPV6_RECVHOPOPTS, IPV6_2292HOPOPTS */
#define UST_TCP_RX6_KEEP_RT 64  /* with a routing header: IPV6_RECVRTHDR, IPV6_2292RTHDR */
#define UST_TCP_RX6_KEEP_DST 128 /* with destination options: IPV6_RECVDSTOPTS, IPV6_2292DSTOPTS */
/* IP_MTU_DISCOVER's modes, Linux's IP_PMTUDISC_*: DF is set with WANT
 * (the default) and DO, and clear with the others. */
enum {
	UST_PMTUDISC_DONT, UST_PMTUDISC_WANT, UST_PMTUDISC_DO, UST_PMTUDISC_PROBE,
	UST_PMTUDISC_INTERFACE, UST_PMTUDISC_OMIT,
};
int ust_tcp_setopt(struct ust_tcb *tcb, enum ust_tcp_opt opt, int value);
/* TCP_MD5SIG and TCP_MD5SIG_EXT (RFC 2385), as Linux keeps the keys: one
 * per peer address and prefix, of either family, the longest prefix
 * matching the peer signs and checks its segments (the newest of equals).
 * Every segment to or from a peer with a key carries the signature; one
 * without it, with a wrong one, or with one where no key is, is dropped
 * and counted (tcp-md5-*). Keys may be set in any state; a connection's
 * segments go by the keys of the moment. */
#define UST_TCP_MD5_KEYLEN_MAX 80
/* Keys on one socket, at most: Linux's bound is the socket's option
 * memory (net.core.optmem_max, 128 KiB by default, 136 bytes a key), 963
 * keys with its default (measured on 6.18: the 964th is ENOMEM). */
#define UST_TCP_MD5_KEYS_MAX 963
struct ust_tcp_md5_key {
	struct ust_ip6 addr;        /* the peer's, IPv4 mapped */
	bool v4;                    /* an IPv4 key: for IPv4 peers only, its prefix of 32 bits */
	uint8_t prefixlen;          /* 0..32 (v4) or 0..128 */
	bool ifindex_flag;          /* TCP_MD5SIG_FLAG_IFINDEX with index 0: a key of its own */
	uint8_t keylen;             /* 1..80; 0 in ust_tcp_md5_set: delete */
	uint8_t key[UST_TCP_MD5_KEYLEN_MAX];
};
/* Adds the key, replaces the one of the same address, prefix and flag, or
 * with keylen 0 deletes that one: 0, -ENOENT (nothing to delete), -ENOMEM. */
int ust_tcp_md5_set(struct ust_tcb *tcb, const struct ust_tcp_md5_key *key);
/* The keys, oldest first: *n of them (NULL, 0: none). */
const struct ust_tcp_md5_key *ust_tcp_md5_keys(const struct ust_tcb *tcb, unsigned *n);
/* The same on a set of keys of its own (NULL: none), which a socket keeps
 * once its control block is gone (Linux's closed socket keeps its keys):
 * taken from the block, set and read as above, and freed. */
struct tcp_md5 *ust_tcp_md5_take(struct ust_tcb *tcb);
int ust_tcp_md5_list_set(struct tcp_md5 **keys, const struct ust_tcp_md5_key *key);
const struct ust_tcp_md5_key *ust_tcp_md5_list(const struct tcp_md5 *keys, unsigned *n);
void ust_tcp_md5_list_free(struct tcp_md5 *keys);
/* TCP_SAVED_SYN: the headers of the SYN that made this connection (its
 * listener had TCP_SAVE_SYN; none for a SYN cookie's), *len bytes, or NULL;
 * and letting them go once they are read elsewhere (Linux's getsockopt
 * frees them). */
const uint8_t *ust_tcp_saved_syn(const struct ust_tcb *tcb, unsigned *len);
/* The TOS byte of the segment that completed a listener's child's
 * handshake (Linux's inet->rcv_tos, which IP_PKTOPTIONS reads); 0 for
 * any other connection. */
uint8_t ust_tcp_rcv_tos(const struct ust_tcb *tcb);
void ust_tcp_saved_syn_drop(struct ust_tcb *tcb);
/* SO_RCVLOWAT as Linux's tcp_set_rcvlowat takes it: the mark to keep
 * (none above half the receive buffer the program set, or else half of
 * tcp_rmem's largest, a negative one the largest; 0 is 1), the buffer
 * grown to hold it when the program did not set one. */
int ust_tcp_set_rcvlowat(struct ust_tcb *tcb, int value);
/* IP_TOS, IP_TTL, IP_MTU_DISCOVER and their IPv6 twins as Linux takes
 * them, with no control block needed: the value kept (the TOS byte or
 * traffic class less its ECN field; a TTL of -1, the default, kept as 0;
 * a hop limit of -1 as UST_TCP_HOPS_DEFAULT), or -EINVAL. */
#define UST_TCP_HOPS_DEFAULT 0x100
#define UST_TCP_FLOW_SET 0x80000000u
/* In flow_label too: IPV6_AUTOFLOWLABEL 0, every segment goes with label 0
 * (Linux's ip6_make_flowlabel without autolabel). */
#define UST_TCP_FLOW_OFF 0x40000000u
int ust_tcp_ip_opt_value(enum ust_tcp_opt opt, int value);
int ust_tcp_getopt(const struct ust_tcb *tcb, enum ust_tcp_opt opt, int *value);
/* TCP_TIMESTAMP as Linux's getsockopt reads it: the connection's TSval
 * clock at now, in ms, its offset included (0 before a connect). */
uint32_t ust_tcp_ts_clock(const struct ust_tcb *tcb, ust_time now);
/* TCP_CONGESTION: the algorithm called name from now on, 0; or -ENOENT if
 * none is called that (Linux reads the name up to a NUL, 15 bytes at most).
 * The new algorithm starts afresh (its init) once the connection is
 * synchronized; the old one is told nothing, as in Linux. */
int ust_tcp_set_cc(struct ust_tcb *tcb, const char *name);
/* Its name, as TCP_CONGESTION reads it. */
const char *ust_tcp_cc_name(const struct ust_tcb *tcb);
/* Is there an algorithm called name? */
bool ust_tcp_cc_exists(const char *name);
/* USTCP_CC: the algorithm of new connections; -ENOENT if none is called
 * name. */
int ust_tcp_config_cc(struct ust_tcp_config *cfg, const char *name);
/* The name of the layer's default algorithm, new connections'. */
const char *ust_tcp_cc_default_name(const struct ust_tcp *tcp);
/* TCP_CC_INFO as Linux's getsockopt fills it (union tcp_cc_info): for
 * BBR, struct tcp_bbr_info (the bandwidth in bytes per second as its low
 * and high 32 bits, the minimum RTT in µs, the pacing and cwnd gains with
 * 256 = 1.0); for an algorithm without get_info (Reno, CUBIC), nothing.
 * A model not started yet (before the handshake) reads as zeros, as a
 * Linux socket's. Returns the length in bytes. */
#define UST_TCP_CC_INFO_WORDS 5
size_t ust_tcp_cc_info(const struct ust_tcb *tcb, uint32_t out[UST_TCP_CC_INFO_WORDS]);
/* The same for the algorithm called name on a socket TCP let go of and
 * switched to it since (Linux's tcp_reinit_congestion_control zeroes the
 * model and starts nothing on a closed socket): zeros, or nothing; 0 for
 * a name no algorithm has. */
size_t ust_tcp_cc_info_unstarted(const char *name, uint32_t out[UST_TCP_CC_INFO_WORDS]);
/* SO_MAX_PACING_RATE, bytes per second (UINT64_MAX: no cap), as Linux's
 * sock_setsockopt: the pacing rate of every algorithm is capped by it,
 * and a flow no algorithm paces is paced from then on. */
void ust_tcp_set_max_pacing_rate(struct ust_tcb *tcb, uint64_t rate);

/* IP_OPTIONS (len 0: none) and the sticky IPv6 extension headers
 * (IPV6_HOPOPTS, IPV6_RTHDRDSTOPTS, IPV6_RTHDR, IPV6_DSTOPTS, in that
 * order; len 0: not set), as the kernel's setsockopt accepted them: sent
 * on every segment from now on, the MSS made smaller by their length, as
 * Linux's icsk_ext_hdr_len. 0, -EINVAL (a form the kernel takes that the
 * stack cannot send), -ENOMEM. */
int ust_tcp_set_ip_opts(struct ust_tcb *tcb, const uint8_t *opt, unsigned len);
int ust_tcp_set_ip6_ext(struct ust_tcb *tcb, const uint8_t *const hdr[4], const unsigned len[4]);
/* The IPv4 options it sends as getsockopt(IP_OPTIONS) reads them (an
 * accepted connection's: the echo of its SYN's), into out; their length. */
unsigned ust_tcp_ip_opts(const struct ust_tcb *tcb, uint8_t out[UST_IPV4_OPT_MAX]);
/* The IPv6 header and extension headers of the segment kept
 * (UST_TCP_OPT_IPV6_RCV_KEPT), if it had extension headers: their length,
 * 0 otherwise; *net points at them until the next segment. */
unsigned ust_tcp_kept_net(const struct ust_tcb *tcb, const uint8_t **net);
uint64_t ust_tcp_max_pacing_rate(const struct ust_tcb *tcb);
/* SO_LINGER */
void ust_tcp_set_linger(struct ust_tcb *tcb, bool on, unsigned seconds);

/* STATUS */
struct ust_tcp_status {
	enum ust_tcp_state state;
	struct ust_ip6 laddr, raddr; /* IPv4 mapped */
	uint16_t lport, rport;
	uint32_t rcv_queued;        /* readable bytes (SIOCINQ) */
	/* A listener's: connections ready for accept() (the engine's accept
	 * queue; a relay adds those it delivered and the program did not yet
	 * take), and its backlog (Linux's sk_ack_backlog, sk_max_ack_backlog) */
	uint32_t acceptq, backlog_max;
	uint32_t snd_queued;        /* unacknowledged + unsent (SIOCOUTQ) */
	uint32_t snd_space;
	ust_time srtt, rttvar, rto;
	uint32_t cwnd, ssthresh;    /* segments, as TCP_INFO reports them */
	uint32_t mss, rcv_mss;
	unsigned ca_state;          /* enum tcp_ca_state */
	/* the scoreboard, in segments (TCP_INFO's unacked, sacked, lost,
	 * retrans) */
	uint32_t packets_out, sacked_out, lost_out, retrans_out;
	uint32_t reordering, reord_seen;
	uint32_t dsacks;            /* segments the peer reported twice (D-SACK) */
	uint64_t delivered;         /* segments delivered */
	ust_time min_rtt;           /* 0: none yet */
	uint64_t pacing_rate;       /* bytes per second; 0: not paced */
	const char *cc;             /* the algorithm's name (static) */
	unsigned retransmits, backoff;
	uint64_t total_retrans;
	/* the rest of Linux's tcp_info (tcp_get_info), in its units */
	bool ts_ok, sack_ok, ws_ok;
	bool ecn_ok;                /* ECN negotiated (TCPI_OPT_ECN) */
	bool ecn_seen;              /* ECT or CE arrived on the peer's data (TCPI_OPT_ECN_SEEN) */
	uint8_t snd_wscale, rcv_wscale;
	ust_time ato;               /* µs */
	ust_time since_data_sent, since_data_recv, since_ack_recv; /* µs ago */
	uint32_t rcv_ssthresh, rcv_space, rcv_wnd, snd_wnd, notsent;
	ust_time rcv_rtt;           /* µs; 0: not measured */
	uint16_t rcv_seg_mss;       /* the peer's segment size as seen */
	uint32_t advmss;            /* our MSS, less the timestamps' room */
	uint32_t pmtu;              /* the path MTU our MSS comes from */
	uint64_t info_pacing_rate;  /* as TCP_INFO reports it: pacing_rate, or Linux's for an unpaced flow */
	uint64_t max_pacing_rate;   /* bytes per second; UINT64_MAX: no cap */
	uint64_t delivery_rate;     /* bytes per second of the best recent sample; 0: none */
	bool delivery_rate_app_limited;
	ust_time busy_time, rwnd_limited, sndbuf_limited; /* µs */
	struct tcp_stats stats;
	bool eof;                   /* the peer's FIN has been received */
	uint32_t ring_mem;          /* bytes of memory the two rings hold now */
	int timer;                  /* the running timer (enum ust_tcp_timer) or -1 */
	ust_time timer_due;
};
/* The times "ago" (TCP_INFO's last_data_sent…) and the running chronograph
 * are measured to now; ust_tcp_status takes the engine's latest now. */
void ust_tcp_status_at(const struct ust_tcb *tcb, struct ust_tcp_status *s, ust_time now);
void ust_tcp_status(const struct ust_tcb *tcb, struct ust_tcp_status *s);

/* ---- queries: what a user of the engine reads (stack/tcp_query.c) ----
 * The relay, ustcp-stat, the close log and the exit keeper read a control
 * block through these, never through its fields. */

enum ust_tcp_state ust_tcp_get_state(const struct ust_tcb *tcb);
struct ust_tcp_ends {
	struct ust_ip6 laddr, raddr; /* IPv4 mapped */
	uint16_t lport, rport;
};
void ust_tcp_ends(const struct ust_tcb *tcb, struct ust_tcp_ends *e);
uint16_t ust_tcp_local_port(const struct ust_tcb *tcb);
/* The user's pointer (ust_tcp_create, ust_tcp_accept); set it to NULL
 * before letting go so that no event names the user any more. */
void *ust_tcp_user(const struct ust_tcb *tcb);
void ust_tcp_set_user(struct ust_tcb *tcb, void *user);
/* The listener an embryonic or not yet accepted child hangs on, or NULL. */
const struct ust_tcb *ust_tcp_listener_of(const struct ust_tcb *tcb);
/* A listener's half-open children (SYN-RECEIVED), which its close lets go
 * quietly (C30). */
unsigned ust_tcp_half_open(const struct ust_tcb *listener);
/* The peer's FIN is in sequence: nothing follows the queued bytes. */
bool ust_tcp_fin_rcvd(const struct ust_tcb *tcb);
/* In-order bytes received and not yet read (SIOCINQ). */
uint32_t ust_tcp_rcv_queued(const struct ust_tcb *tcb);
/* What the receive ring can hold now (it may grow: autotuning). */
uint32_t ust_tcp_rcv_capacity(const struct ust_tcb *tcb);
/* Bytes in the send ring: unacknowledged and unsent. */
uint32_t ust_tcp_snd_queued(const struct ust_tcb *tcb);
/* Of those, the bytes never sent (Linux's write_seq - snd_nxt). */
uint32_t ust_tcp_snd_notsent(const struct ust_tcb *tcb);
/* The program set SO_SNDBUF (Linux's SOCK_SNDBUF_LOCK): the send buffer
 * no longer grows by itself. */
bool ust_tcp_sndbuf_locked(const struct ust_tcb *tcb);
/* Why it died (ECONNRESET…), kept after the pending error was taken. */
int ust_tcp_hard_error(const struct ust_tcb *tcb);
/* The retransmission timer is probing a zero window. */
bool ust_tcp_persisting(const struct ust_tcb *tcb);
/* The connection's record (close log); final once it reached CLOSED. */
const struct ust_tcp_record *ust_tcp_record(const struct ust_tcb *tcb);
/* The stack thread's mark (tcb->tag). */
uint32_t ust_tcp_tag(const struct ust_tcb *tcb);
void ust_tcp_set_tag(struct ust_tcb *tcb, uint32_t tag);
/* Reached CLOSED after living (not a block that never opened). */
bool ust_tcp_finished(const struct ust_tcb *tcb);

/* Listeners: the backlog (ust_tcp_listen clamps it; a relay that keeps
 * delivered connections of its own moves it), the accept queue's length,
 * and its oldest connection without taking it (ust_tcp_accept takes it). */
unsigned ust_tcp_backlog(const struct ust_tcb *listener);
void ust_tcp_set_backlog(struct ust_tcb *listener, unsigned backlog);
unsigned ust_tcp_acceptq_len(const struct ust_tcb *listener);
struct ust_tcb *ust_tcp_accept_peek(const struct ust_tcb *listener);

/* ---- a TIME-WAIT handed to another stack on the address ----
 *
 * An exit keeper whose connections are all in TIME-WAIT hands them to one
 * keeper on the address, and leaves (issue 13: one process per address
 * waits out the TIME-WAITs of programs that exited, not one per program).
 * What goes over is what TIME-WAIT answers from (tcp_time_wait_input, the
 * ACK of tcp_output.c) and the close record, as plain data. Times are on
 * the host's monotonic clock, which every stack reads; timestamps and
 * ISNs keep growing across the hand-over because the stacks on one
 * address share their secret (addrshare.c). */
struct ust_tcp_tw {
	struct ust_ip6 laddr, raddr;
	uint16_t lport, rport;
	uint8_t ipv6, v6only, reuseaddr, reuseport, port_claimed;
	uint32_t iss, snd_una, snd_nxt, snd_max, snd_buf_seq;
	uint32_t irs, rcv_nxt, rcv_adv, last_ack_sent;
	uint16_t mss;
	uint32_t rcv_wnd_clamp, rcv_ssthresh;
	uint16_t rcv_mss, rcv_seg_mss;
	uint8_t rcv_wscale, ws_ok, ts_ok, sack_ok, ecn_flags, tw_ack_as_socket;
	uint32_t ts_recent, ts_offset;
	ust_time ts_recent_stamp;
	uint8_t ip_tos, ip_ttl, ip_pmtudisc, ip6_tclass, ip6_pmtudisc, min_hops;
	uint16_t ip6_hops;
	uint32_t flow_label;
	ust_time deadline;          /* when 2 MSL are over */
	/* the record, its reason "" (a TIME-WAIT ends in order) */
	uint8_t initiator, nstates;
	uint8_t states[UST_TCP_HISTORY_MAX];
	uint64_t bytes_sent, bytes_received;
	ust_time start;
};

/* Fills *tw from a connection in TIME-WAIT that the user let go of;
 * -EINVAL for any other, and for one with a TCP MD5 key (the key stays
 * with its stack). The connection is not changed. */
int ust_tcp_tw_export(const struct ust_tcb *tcb, struct ust_tcp_tw *tw);
/* Ends an exported connection here without a word: no segment, no
 * record, no event. Its port goes back through port_release (the taker
 * holds its own claim by then). */
void ust_tcp_tw_forget(struct ust_tcb *tcb);
/* The block of a 4-tuple that is neither a listener nor CLOSED. */
struct ust_tcb *ust_tcp_find(struct ust_tcp *tcp, const struct ust_ip6 *laddr, uint16_t lport,
			     const struct ust_ip6 *raddr, uint16_t rport);
/* Makes the TIME-WAIT another stack exported, released (no user) and
 * with tw->port_claimed's claim on its port, which the caller has taken
 * already (the engine gives it back through port_release at the end).
 * NULL with *err: -EADDRINUSE when this stack has the 4-tuple, -EINVAL
 * for a state no TIME-WAIT has, -ENFILE with cfg.max_tw TIME-WAITs held,
 * or what a new block fails with. */
struct ust_tcb *ust_tcp_tw_adopt(struct ust_tcp *tcp, const struct ust_tcp_tw *tw, ust_time now, int *err);
/* A block adopted without a claim holds one on its port from now on (the
 * caller took it after the block was had: nothing to undo if it was not). */
void ust_tcp_tw_claimed(struct ust_tcb *tcb);

/* Every connection: how many, and each in turn (fn may not free any). A
 * TIME-WAIT kept compact (tcp_twrec.c) comes as a copy made into a block
 * for the call: fn reads it, and keeps no pointer to it. */
unsigned ust_tcp_count(const struct ust_tcp *tcp);
/* Of them, those the ceiling counts (cfg.max_conns): all but TIME-WAITs. */
unsigned ust_tcp_socket_count(const struct ust_tcp *tcp);
void ust_tcp_each(struct ust_tcp *tcp, void (*fn)(struct ust_tcb *tcb, void *arg), void *arg);

#endif
