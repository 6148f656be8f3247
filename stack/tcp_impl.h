/* What the tcp_*.c files share and nobody else needs. */
#ifndef USTCP_TCP_IMPL_H
#define USTCP_TCP_IMPL_H

#include "tcp.h"

#define TCP_RTO_MIN UST_MS(200)     /* Linux TCP_RTO_MIN */
#define TCP_RTO_MAX UST_SEC(120)    /* Linux TCP_RTO_MAX */
#define TCP_RTO_INIT UST_SEC(1)     /* RFC 6298 */
/* The delayed-ACK engine's constants, Linux's (HZ=250 on the 6.18 kernel
 * measured: its timers fire on 4 ms ticks). */
#define TCP_ATO_MIN UST_MS(40)      /* Linux TCP_ATO_MIN: the first ACK delay */
#define TCP_DELACK_MIN UST_MS(40)   /* Linux TCP_DELACK_MIN */
#define TCP_DELACK_MAX UST_MS(200)  /* Linux TCP_DELACK_MAX, tcp_delack_max */
#define TCP_MAX_QUICKACKS 16        /* Linux TCP_MAX_QUICKACKS */
#define TCP_ECN_QUICKACKS 2         /* quick ACKs for a CE mark (Linux's tcp_data_ecn_check) */
#define TCP_PINGPONG_THRESH 1       /* Linux tcp_pingpong_thresh */
/* SACK compression (Linux's tcp_comp_sack_*, their defaults): ACKs for
 * data held out of order, after the first three, wait up to 5% of the
 * round trip, at most the delay, at most this many of them. */
#define TCP_COMP_SACK_NR 44         /* tcp_comp_sack_nr */
#define TCP_COMP_SACK_DELAY 1000    /* tcp_comp_sack_delay_ns, in µs */
#define TCP_FASTRETRANS_THRESH 3    /* Linux's: the ACKs at once before any is held */
#define UST_ACK_PUSHED 1            /* a small or pushed segment since our ACK (ICSK_ACK_PUSHED) */
#define UST_ACK_PUSHED2 2           /* two of them (ICSK_ACK_PUSHED2) */
#define TCP_INIT_CWND 10            /* Linux TCP_INIT_CWND: the first round trip's segments */
#define TCP_CHALLENGE_GAP UST_MS(500) /* Linux tcp_invalid_ratelimit */
#define TCP_MAX_WSCALE 14           /* RFC 7323 §2.3 */
#define TCP_MSS_DEFAULT 536         /* RFC 9293: when the peer sends none */
#define TCP_MIN_SND_MSS 48          /* Linux: the smallest MSS we send with */
#define TCP_PAWS_IDLE (UST_SEC(24 * 24 * 3600)) /* RFC 7323 §5.5 */
#define TCP_KEEPIDLE UST_SEC(7200)
#define TCP_KEEPINTVL UST_SEC(75)
#define TCP_KEEPCNT 9
#define TCP_SYN_LINEAR 4            /* Linux tcp_syn_linear_timeouts */
#define TCP_THIN_LINEAR_RETRIES 6   /* Linux: timeouts a thin stream takes unbacked off */
/* A SYN answered with an ACK of something else (a peer's TIME-WAIT) is
 * sent again this soon after our RST, once: Linux's TCP_TIMEOUT_MIN, two
 * jiffies (8 ms at HZ=250, measured on 6.18). */
#define TCP_SYN_QUICK_RTX UST_MS(8)
#define TCP_TW_ISN_GAP (65535u + 2) /* Linux: new ISN after TIME-WAIT */

static inline struct ust_stack *tcb_stack(const struct ust_tcb *t) { return t->tcp->st; }
static inline void tcp_count(struct ust_tcp *tcp, enum ust_event e) { tcp->st->ctr.event[e]++; }
static inline void tcp_count_n(struct ust_tcp *tcp, enum ust_event e, unsigned n) { tcp->st->ctr.event[e] += n; }
static inline void tcp_drop(struct ust_tcp *tcp, enum ust_drop d) { tcp->st->ctr.drop[d]++; }
/* The segment is another stack's on our address (another process's): one
 * we looped to ourselves goes to the others (ust_stack_loop). */
static inline void tcp_drop_foreign(struct ust_tcp *tcp)
{
	tcp_drop(tcp, UST_DROP_TCP_FOREIGN);
	tcp->st->loop_foreign = true;
}

/* The network header under a connection: IPv4's 20 bytes to a peer of
 * that family (a dual-stack socket's mapped one too, as Linux's
 * ipv6_mapped ops), IPv6's 40 otherwise; before there is a peer, the
 * socket's family decides. */
static inline unsigned tcp_net_hlen(const struct ust_tcb *t)
{
	if (ust_ip6_is_v4mapped(&t->raddr))
		return UST_IPV4_HLEN;
	return t->ipv6 ? UST_IPV6_HLEN : UST_IPV4_HLEN;
}

/* What the socket's IP options or IPv6 extension headers take off the
 * MSS, for the connection's family (tcp_ipext.c). */
unsigned tcp_ext_hlen(const struct ust_tcb *t);
/* The MSS to send with from mss (the peer's, the path's): less those
 * headers and the timestamps' room, never below TCP_MIN_SND_MSS. */
uint16_t tcp_mss_from(const struct ust_tcb *t, unsigned mss, bool ts);
/* The options that answer a received IPv4 segment (ust_ip4_opts_echo):
 * 1, 0 when it had none to echo, -1 when they cannot be answered (Linux's
 * ip_send_unicast_reply then sends nothing). */
int tcp_ip4_echo(struct ust_tcp *tcp, const struct ust_tcp_seg *seg, struct ust_ip4_opts *o);
/* A listener's child takes its IPv6 extension headers, or over IPv4 the
 * echo of its SYN's options (-ENOMEM); a block lets both go. */
int tcp_ipext_inherit(struct ust_tcb *c, const struct ust_tcb *l, const struct ust_tcp_seg *syn);
void tcp_ipext_free(struct ust_tcb *t);

#define TCP_MIN_ADVMSS6 1220 /* Linux's ip6_rt_min_advmss: IPv6's 1280 less 60 */

/* The largest MSS the link allows: its MTU less the headers, for IPv6
 * never below the 1280-byte MTU every IPv6 link has (RFC 8200 §5). */
static inline uint16_t tcp_link_mss(const struct ust_tcb *t)
{
	unsigned mss = t->tcp->st->nif.mtu - tcp_net_hlen(t) - UST_TCP_HLEN;

	if (tcp_net_hlen(t) == UST_IPV6_HLEN && mss < TCP_MIN_ADVMSS6)
		mss = TCP_MIN_ADVMSS6;
	return (uint16_t)mss;
}

/* The MSS to announce on a connection whose family is now known: the
 * link's, or TCP_MAXSEG's if smaller. */
static inline uint16_t tcp_announced_mss(const struct ust_tcb *t)
{
	uint16_t link = tcp_link_mss(t);

	return t->user_mss && t->user_mss < link ? t->user_mss : link;
}

/* Sequence number of the first data byte (after the SYN). */
static inline uint32_t tcb_data_seq(const struct ust_tcb *t) { return t->iss + 1; }
/* The FIN's sequence number, once CLOSE or SHUT_WR queued it. */
static inline uint32_t tcb_fin_seq(const struct ust_tcb *t) { return t->snd_buf_seq + t->sndbuf.len; }
static inline bool tcb_fin_acked(const struct ust_tcb *t)
{
	return t->fin_queued && seq_gt(t->snd_una, tcb_fin_seq(t));
}
/* Bytes in flight (sent, not acknowledged), SYN and FIN included. */
static inline uint32_t tcb_flight(const struct ust_tcb *t) { return t->snd_max - t->snd_una; }
/* An orphan's FIN-WAIT-2: what Linux keeps as a timewait socket already
 * (tcp_time_wait with TCP_FIN_WAIT2), whose segments are not checked for
 * a TCP MD5 signature and whose RSTs are signed as for no connection. */
static inline bool tcb_fin_wait_2_orphan(const struct ust_tcb *t)
{
	return t->state == UST_TCP_FIN_WAIT_2 && t->released;
}

/* The receive ring holds the largest window plus one window-scale unit:
 * the window we advertise is rounded up to that unit (so its edge never
 * moves left), and the peer may fill it. */
static inline uint32_t tcp_rcvbuf_ring_size(const struct ust_tcb *t)
{
	return t->rcv_wnd_clamp + ((uint32_t)1 << t->rcv_wscale);
}

/* tcp_twrec.c: TIME-WAITs kept compact, as records of what TIME-WAIT
 * reads. A block in TIME-WAIT is noted (tcp_twrec_pending: on entering
 * it, and when the program lets go of it there) and becomes a record at
 * the next run of the timers (tcp_twrec_sweep) once nothing else holds
 * it. A record becomes a block again whenever one is needed:
 * tcp_twrec_find for a 4-tuple (tcp_lookup), tcp_twrec_due for the
 * deadlines; a port's users (the bind rules) are read on the records as
 * they are. */
struct tcp_twrec {
	struct tcp_twrec *hnext, **hprev; /* the 4-tuple's chain in twhash */
	struct tcp_twrec *pnext, **pprev; /* the local port's in twports */
	unsigned heap_idx;                /* in twheap, by tw.deadline */
	uint32_t tag;                     /* the block's (ust_tcp_set_tag) */
	ust_time last_challenge;          /* its last out-of-window answer (RFC 5961 §7's limit) */
	struct ust_tcp_tw tw;
};
void tcp_twrec_pending(struct ust_tcb *t);
void tcp_twrec_unpend(struct ust_tcb *t);
void tcp_twrec_sweep(struct ust_tcp *tcp);
struct ust_tcb *tcp_twrec_find(struct ust_tcp *tcp, const struct ust_ip6 *laddr, uint16_t lport,
			       const struct ust_ip6 *raddr, uint16_t rport);
bool tcp_twrec_port_used(const struct ust_tcp *tcp, uint16_t lport);
/* A record on lport whose addresses overlap t's (tcp_ports_overlap), and,
 * with unshared, one without SO_REUSEPORT: the bind rules' walk, made on
 * the records as they are. Returns a block that stands for it (not to be
 * kept), or NULL. */
const struct ust_tcb *tcp_twrec_port_conflict(struct ust_tcp *tcp, uint16_t lport, const struct ust_tcb *t,
					      bool unshared);
void tcp_twrec_due(struct ust_tcp *tcp, ust_time now);
ust_time tcp_twrec_next(const struct ust_tcp *tcp);
/* Calls fn for a copy of each record made into a block on the stack, which
 * lives for the call (ust_tcp_each). */
void tcp_twrec_each(struct ust_tcp *tcp, void (*fn)(struct ust_tcb *t, void *arg), void *arg);
void tcp_twrec_destroy(struct ust_tcp *tcp);
/* The hash of a 4-tuple's remote end and ports, before the mask. */
uint32_t tcp_tuple_hash(const struct ust_ip6 *raddr, uint16_t lport, uint16_t rport);
/* tcp_tw.c: a block's fields from what a TIME-WAIT's export holds; and a
 * new block in TIME-WAIT from it, in the table, its 2 MSL running to
 * tw->deadline (not before now), or NULL without memory (adoption, and
 * tcp_twrec.c's records made blocks again). */
void tcp_tw_fill(struct ust_tcb *t, const struct ust_tcp_tw *tw);
struct ust_tcb *tcp_tw_block(struct ust_tcp *tcp, const struct ust_tcp_tw *tw, ust_time now);

/* tcp_state.c: every state change goes through here; it feeds the record
 * and, with UST_CHECK_STATES, refuses a change the state diagram lacks. */
void tcp_set_state(struct ust_tcb *t, enum ust_tcp_state s);
/* Stores t->state and keeps the count of TIME-WAITs (tcp->ntw): every
 * write of a block's state, tcp_set_state's and the hand-over's
 * (tcp_tw.c), goes through here. */
static inline void tcb_store_state(struct ust_tcb *t, enum ust_tcp_state s)
{
	t->tcp->ntw += (s == UST_TCP_TIME_WAIT) - (t->state == UST_TCP_TIME_WAIT);
	t->state = s;
	if (s == UST_TCP_TIME_WAIT)
		tcp_twrec_pending(t);
}
void tcp_event(struct ust_tcb *t, unsigned events);
/* Marks the connection dead with err for the user (reported once). */
void tcp_set_error(struct ust_tcb *t, int err);

/* tcp_close.c: every transition towards CLOSED (see its head comment). */
/* The connection ends: record the outcome (the first one set wins), stop
 * timers, leave the tables once the user has let go. */
void tcp_finish(struct ust_tcb *t, enum ust_tcp_outcome outcome, const char *reason);
/* The same with an error for the program: record it, signal it, finish. */
void tcp_die(struct ust_tcb *t, int err, enum ust_tcp_outcome outcome, const char *reason);
/* An acceptable RST: the result per state. */
void tcp_reset_received(struct ust_tcb *t);
/* Data after a full close: RST and CLOSED; true if it was that. */
bool tcp_data_after_close(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now);
/* Our FIN was just acknowledged; false when the connection ended. */
bool tcp_fin_acked(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now);
/* The peer's FIN, in order. */
void tcp_fin_received(struct ust_tcb *t, ust_time now);
void tcp_enter_time_wait(struct ust_tcb *t, ust_time now);
/* 2 MSL are over. */
void tcp_time_wait_over(struct ust_tcb *t);
/* A segment for a connection in TIME-WAIT; the ISN for a new connection
 * if it reopens one, else 0. */
uint32_t tcp_time_wait_input(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now);
/* How long an orphan waits in FIN-WAIT-2 (TCP_LINGER2, USTCP_FIN_TIMEOUT). */
ust_time tcp_fin_wait2_timeout(const struct ust_tcb *t);
/* An orphan in FIN-WAIT-2 stops waiting; false if t is not one. */
bool tcp_orphan_timeout(struct ust_tcb *t);

/* tcp_ecn.c: ECN (RFC 3168) as Linux's classic ECN. */
void tcp_ecn_connect(struct ust_tcb *t);
void tcp_ecn_create_request(struct ust_tcb *c, const struct ust_tcp_seg *syn);
void tcp_ecn_rcv_syn(struct ust_tcb *t, const struct ust_tcp_seg *seg);
/* The ECN field of a segment about to go, and its ECE and CWR flags. */
uint8_t tcp_ecn_output(struct ust_tcb *t, uint32_t seq, uint32_t len, uint8_t *flags);
void tcp_ecn_queue_cwr(struct ust_tcb *t);
void tcp_ecn_count_ce(struct ust_tcb *t, const struct ust_tcp_seg *seg, uint32_t segs);
void tcp_ecn_check_ce(struct ust_tcb *t, const struct ust_tcp_seg *seg);
void tcp_ecn_accept_cwr(struct ust_tcb *t, const struct ust_tcp_seg *seg);
bool tcp_ecn_rcv_ece(const struct ust_tcb *t, const struct ust_tcp_seg *seg);

/* tcp_input.c */
/* An ACK answering something out of window, rate-limited (RFC 5961 §7). */
void tcp_send_challenge_ack(struct ust_tcb *t, ust_time now);

/* tcp_ack.c: what an acceptable ACK teaches (SACK, window, RTT, loss). */
void tcp_ack_update(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now);
/* Recovery begins (Linux's tcp_enter_recovery); PRR's window for an ACK
 * that delivered newly_acked_sacked segments and marked newly_lost
 * (tcp_cwnd_reduction; flag: the ACK moved SND.UNA). */
void tcp_enter_recovery(struct ust_tcb *t);
/* The peer echoed a CE mark: reduce the window once per window of data,
 * by PRR as in recovery, without retransmitting (Linux's tcp_enter_cwr). */
void tcp_enter_cwr(struct ust_tcb *t);
void tcp_cwnd_reduction(struct ust_tcb *t, uint32_t newly_acked_sacked, uint32_t newly_lost,
			bool una_advanced);
/* The path MTU shrank below segments in flight: they are lost, and go
 * again cut to the new size (Linux's tcp_simple_retransmit). */
void tcp_simple_retransmit(struct ust_tcb *t, ust_time now);
/* The segment size from mss_path and the largest window the peer offered
 * (tcp_input.c): call it when either changes. */
void tcp_sync_mss(struct ust_tcb *t);

/* tcp_table.c */
struct ust_tcb *tcp_lookup(struct ust_tcp *tcp, const struct ust_ip6 *laddr, uint16_t lport,
			   const struct ust_ip6 *raddr, uint16_t rport);
struct ust_tcb *tcp_lookup_listener(struct ust_tcp *tcp, uint16_t lport);
/* The listener on lport for a SYN from raddr:rport: in a reuseport group,
 * one chosen by the 4-tuple's hash, so a connection always lands on the
 * same one. *group: 0 when the group is this stack's alone, 1 when other
 * stacks' listeners share it and ours was chosen, -1 when theirs was (the
 * result is then NULL: the segment is another process's to answer). */
struct ust_tcb *tcp_select_listener(struct ust_tcp *tcp, uint16_t lport, const struct ust_ip6 *dst,
				    const struct ust_ip6 *raddr, uint16_t rport, bool syn, int *group);
/* How many SO_REUSEPORT listeners of ours are on lport. */
unsigned tcp_port_group_size(struct ust_tcp *tcp, uint16_t lport);
/* May t share lport with every block already on it whose traffic its own
 * would overlap (all SO_REUSEPORT)? */
bool tcp_port_shareable(struct ust_tcp *tcp, uint16_t lport, const struct ust_tcb *t);
/* Would a and b, on one port, take datagrams of one family to one address
 * (Linux's inet_rcv_saddr_equal)? An AF_INET block and an IPV6_V6ONLY
 * one never do; a dual-stack one on :: overlaps both. */
bool tcp_ports_overlap(const struct ust_tcb *a, const struct ust_tcb *b);
/* A block on lport other than t (a listener, with listeners) that t
 * overlaps, or NULL: one port space per family, as Linux's. */
const struct ust_tcb *tcp_port_conflict(struct ust_tcp *tcp, uint16_t lport, const struct ust_tcb *t,
					bool listeners);
/* A new block in CLOSED, or NULL: at the ceiling (tcp_at_ceiling) or out
 * of memory. */
struct ust_tcb *tcp_tcb_new(struct ust_tcp *tcp, void *user);
/* The same past the ceiling: a TIME-WAIT's record made a block again. */
struct ust_tcb *tcp_tcb_new_unbounded(struct ust_tcp *tcp, void *user);
/* Frees t's memory and takes it out of the tables and the heap, and
 * nothing more: no port released, no state or count changed (a block
 * that becomes a record, tcp_twrec.c; tcb_free for the rest). */
void tcp_tcb_discard(struct ust_tcb *t);
/* A zeroed block's defaults, in no table: tcp_tcb_new's, and a SYN
 * cookie's block that lives for one SYN-ACK. */
void tcp_tcb_init(struct ust_tcp *tcp, struct ust_tcb *t, void *user);
/* Does the table hold cfg.max_conns blocks already, TIME-WAITs aside
 * (they have a bound of their own, cfg.max_tw)? */
bool tcp_at_ceiling(const struct ust_tcp *tcp);
/* The first block bound to lport (chained by pnext), or NULL. */
struct ust_tcb *tcp_port_users(struct ust_tcp *tcp, uint16_t lport);
void tcp_hash_insert(struct ust_tcb *t);
void tcp_hash_remove(struct ust_tcb *t);
/* Moves t to a new key in the table. */
void tcp_rehash(struct ust_tcb *t, uint16_t lport, const struct ust_ip6 *raddr, uint16_t rport);
/* Takes a child out of its listener's queues. */
void tcp_listener_forget(struct ust_tcb *listener, struct ust_tcb *child);
/* A child finished its handshake: from the SYN queue to the accept queue. */
void tcp_listener_accept_ready(struct ust_tcb *listener, struct ust_tcb *child);
/* Runs t's due timers (tcp_timer.c). */
void tcp_timer_fire(struct ust_tcb *t, ust_time now);
/* Does a block other than except use lport? O(1): the port's chain. */
bool tcp_port_in_use(struct ust_tcp *tcp, uint16_t lport, const struct ust_tcb *except);
int tcp_pick_ephemeral(struct ust_tcp *tcp, struct ust_tcb *t);
/* A reference on *port in the shared port table (cfg.port_claim), once per
 * control block; 0 when there is no shared table. */
int tcp_claim_port(struct ust_tcb *t, uint16_t *port, bool reuse);
/* Frees t if it is CLOSED and the user has let go. */
void tcp_maybe_free(struct ust_tcb *t);
void tcp_timer_set(struct ust_tcb *t, enum ust_tcp_timer which, ust_time due);
static inline void tcp_timer_stop(struct ust_tcb *t, enum ust_tcp_timer which)
{
	tcp_timer_set(t, which, UST_TIME_NEVER);
}

/* tcp_cc.c: congestion control, shaped as Linux's struct
 * tcp_congestion_ops. The engine detects loss and chooses what to send;
 * an algorithm sizes the window (snd_cwnd, snd_ssthresh, in segments) at
 * the moments the engine tells it about. */
#define TCP_INIT_CWND 10                  /* RFC 6928, Linux's TCP_INIT_CWND */
#define TCP_INFINITE_SSTHRESH 0x7fffffffu /* no slow-start threshold yet */
#define TCP_REORDERING 3                  /* DupThresh (RFC 5681), Linux's tcp_reordering */

/* Linux's ca_state, numbered as tcp_info.tcpi_ca_state. */
enum tcp_ca_state { TCP_CA_OPEN = 0, TCP_CA_DISORDER = 1, TCP_CA_CWR = 2, TCP_CA_RECOVERY = 3, TCP_CA_LOSS = 4 };
enum tcp_ca_event {
	TCP_CA_EV_TX_START,      /* first transmission with nothing in flight */
	TCP_CA_EV_CWND_RESTART,  /* cwnd restarted after idle */
	TCP_CA_EV_COMPLETE_CWR,  /* recovery or CWR ended */
	TCP_CA_EV_LOSS,          /* retransmission timeout */
};
/* What one ACK taught (Linux's struct rate_sample; draft-cheng-iccrg-delivery-rate-estimation). */
struct tcp_rate_sample {
	uint64_t prior_delivered;  /* t->delivered when the acked segment was sent */
	ust_time prior_time;       /* t->delivered_time then */
	int64_t delivered;         /* segments delivered over the interval; -1: no sample */
	ust_time interval;         /* µs over which they were delivered; 0: none */
	ust_time rtt;              /* RTT of the newest segment this ACK delivered (no retransmission); 0: none */
	uint32_t acked_sacked;     /* segments newly delivered by this ACK, cumulatively or by SACK */
	uint32_t prior_in_flight;  /* segments in flight before this ACK */
	uint32_t losses;           /* segments newly marked lost by this ACK */
	/* Of the newest segment delivered (BBRv3's RS.tx_in_flight, RS.lost): */
	uint32_t tx_in_flight;     /* segments in flight just after it was sent */
	uint32_t prior_lost;       /* t->lost when it was sent, */
	uint32_t lost;             /* and segments marked lost since */
	bool is_app_limited;
	bool is_retrans;           /* the sample came from a retransmitted segment */
};
struct tcp_bbr_info;
struct tcp_cc {
	const char *name;                         /* as TCP_CONGESTION names it */
	void (*init)(struct ust_tcb *t);          /* handshake done (and on a change of algorithm) */
	uint32_t (*ssthresh)(struct ust_tcb *t);  /* a loss (recovery or RTO): the new ssthresh, segments */
	/* Outside a window reduction (Open, Disorder, or Loss after an RTO, as Linux), new data acked:
	 * grow cwnd by `acked` segments' worth (not called when cong_control is set) */
	void (*cong_avoid)(struct ust_tcb *t, uint32_t acked, ust_time now);
	uint32_t (*undo_cwnd)(struct ust_tcb *t); /* a loss found spurious: the cwnd to restore */
	/* optional (may be NULL): */
	void (*set_state)(struct ust_tcb *t, enum tcp_ca_state new_state);
	void (*cwnd_event)(struct ust_tcb *t, enum tcp_ca_event ev, ust_time now);
	void (*pkts_acked)(struct ust_tcb *t, const struct tcp_rate_sample *rs, ust_time now);
	/* set: the algorithm sets cwnd (and pacing) itself on every ACK, as Linux's BBR; the engine then does neither cong_avoid nor PRR */
	void (*cong_control)(struct ust_tcb *t, const struct tcp_rate_sample *rs, ust_time now);
	/* the engine marked segment r lost (Linux's skb_marked_lost) */
	void (*marked_lost)(struct ust_tcb *t, const struct tcp_sent *r, ust_time now);
	/* windows of send buffer to provision (Linux's sndbuf_expand; NULL: 2) */
	uint32_t (*sndbuf_expand)(struct ust_tcb *t);
	/* the model, for tests and diagnostics (BBR's get_info) */
	bool (*get_info)(const struct ust_tcb *t, struct tcp_bbr_info *info);
};
extern const struct tcp_cc tcp_cc_reno;
extern const struct tcp_cc tcp_cc_cubic; /* tcp_cubic.c, the default */
extern const struct tcp_cc tcp_cc_bbr;   /* tcp_bbr.c: BBRv1, as Linux's "bbr" */
extern const struct tcp_cc tcp_cc_bbr3;  /* tcp_bbr3.c: BBRv3, draft-ietf-ccwg-bbr */
/* BBR's model as Linux's get_info reports it (struct tcp_bbr_info). */
struct tcp_bbr_info {
	const char *state;          /* "startup", "drain", "probe_bw" (v1), "probe_bw_down",
	                             * "probe_bw_cruise", "probe_bw_refill", "probe_bw_up" (v3),
	                             * "probe_rtt" */
	uint64_t bw;                /* BBR.bw, bytes per second */
	uint64_t max_bw;            /* BBR.max_bw, bytes per second */
	uint32_t min_rtt;           /* µs; UINT32_MAX: none yet */
	uint32_t pacing_gain, cwnd_gain; /* 256 = 1.0 */
	uint32_t bdp;               /* BBR.bdp, segments */
	uint32_t inflight_longterm, inflight_shortterm; /* segments; UINT32_MAX: no bound */
	bool full_bw_reached;
};
/* false when t's algorithm is not a BBR. */
bool tcp_bbr_get_info(const struct ust_tcb *t, struct tcp_bbr_info *info);
/* The algorithms by name, for USTCP_CC and TCP_CONGESTION (NULL: unknown). */
const struct tcp_cc *tcp_cc_find(const char *name);

/* Linux's library for the algorithms (tcp_cong.c), used by every one. */
static inline bool tcp_in_slow_start(const struct ust_tcb *t) { return t->snd_cwnd < t->snd_ssthresh; }
/* Does cwnd limit the flow, so that growing it means something? */
bool tcp_is_cwnd_limited(const struct ust_tcb *t);
/* Slow start: cwnd grows by acked, up to ssthresh; returns what is left
 * above ssthresh for congestion avoidance. */
uint32_t tcp_slow_start(struct ust_tcb *t, uint32_t acked);
/* Congestion avoidance: one segment more per w segments acked. */
void tcp_cong_avoid_ai(struct ust_tcb *t, uint32_t w, uint32_t acked);
/* New data is queued: after an idle RTO, restart from a smaller window. */
void tcp_idle_restart_check(struct ust_tcb *t, ust_time now);
/* Segments in the network (RFC 6675's pipe, in segments). */
uint32_t tcp_packets_in_flight(const struct ust_tcb *t);

/* The engine's side: every change of ca_state goes through here (and
 * through the algorithm's set_state). */
void tcp_set_ca_state(struct ust_tcb *t, enum tcp_ca_state s);
/* Recovery or CWR: the engine reduces the window (PRR). */
static inline bool tcp_in_cwnd_reduction(const struct ust_tcb *t)
{
	return t->ca_state == TCP_CA_CWR || t->ca_state == TCP_CA_RECOVERY;
}
/* ssthresh as it stands, or three quarters of cwnd if larger (Linux's
 * tcp_current_ssthresh): what an undo would restore. */
uint32_t tcp_current_ssthresh(const struct ust_tcb *t);
/* A loss episode begins (Linux's tcp_init_undo): its retransmissions,
 * all reported as duplicates, would show it spurious. */
void tcp_init_undo(struct ust_tcb *t);
/* Tells the algorithm about an event, if it listens. */
void tcp_ca_event(struct ust_tcb *t, enum tcp_ca_event ev, ust_time now);
/* The handshake is done: the initial window (IW10, RFC 6928) and the
 * algorithm's start, as Linux's tcp_init_transfer. */
void tcp_init_transfer(struct ust_tcb *t, ust_time now);
/* The connection starts with algorithm cc (at the handshake, or when
 * TCP_CONGESTION changes it). */
void tcp_cc_start(struct ust_tcb *t, const struct tcp_cc *cc);

/* tcp_sb.c: the scoreboard, a record per segment in flight (Linux's
 * retransmission queue and the flags of its tcp_skb_cb). */
#define TCP_SENT_SACKED       0x01  /* SACKed (Linux's TCPCB_SACKED_ACKED) */
#define TCP_SENT_LOST         0x02  /* marked lost, to be sent again (TCPCB_LOST) */
#define TCP_SENT_RETRANS      0x04  /* a retransmission is in flight (TCPCB_SACKED_RETRANS) */
#define TCP_SENT_EVER_RETRANS 0x08  /* sent more than once (TCPCB_EVER_RETRANS) */
#define TCP_SENT_FIN          0x10  /* its last sequence number is our FIN */
#define TCP_SENT_RATE_USED    0x20  /* its delivery was counted in a rate sample (SACKed) */
/* The records take at most one slot per this many bytes of the send
 * buffer: Linux's write queue is bounded by sndbuf in memory, not bytes. */
#define TCP_SB_BYTES_PER_RECORD 128u

struct tcp_sent {
	uint32_t start, end;        /* sequence range; end counts the FIN */
	ust_time xmit_time;         /* last (re)transmission */
	/* The delivery-rate snapshot at that transmission (tcp_rate.c). */
	uint64_t delivered;         /* t->delivered then */
	ust_time delivered_time;    /* t->delivered_time then */
	ust_time first_tx_time;     /* t->first_tx_time then */
	uint32_t tx_in_flight;      /* segments in flight just after that transmission */
	uint32_t lost;              /* t->lost then */
	uint8_t flags;              /* TCP_SENT_* */
	bool app_limited;           /* sent while the application limited the flow */
};

/* The i-th record from SND.UNA (i < packets_out). */
static inline struct tcp_sent *tcp_sb_at(const struct ust_tcb *t, uint32_t i)
{
	return &t->sb[t->sb_head + i];
}
/* Payload bytes of a record (the FIN is not data). */
static inline uint32_t tcp_sent_len(const struct tcp_sent *r)
{
	return r->end - r->start - ((r->flags & TCP_SENT_FIN) ? 1 : 0);
}
/* A new record after the last one, for [start, end); NULL when the
 * scoreboard is full or memory is short (the segment then waits). */
struct tcp_sent *tcp_sb_append(struct ust_tcb *t, uint32_t start, uint32_t end);
/* Takes back the record just appended (the segment could not go). */
void tcp_sb_drop_last(struct ust_tcb *t);
/* The index of the record holding seq; packets_out when none does. */
uint32_t tcp_sb_find(const struct ust_tcb *t, uint32_t seq);
/* Splits record i at seq (inside it): i keeps the front, i + 1 the rest,
 * both with its flags and times. False when there is no room. */
bool tcp_sb_split(struct ust_tcb *t, uint32_t i, uint32_t seq);
/* Drops the first record (cumulatively acknowledged), counters included;
 * the array goes back once the last one does. */
void tcp_sb_pop(struct ust_tcb *t);
/* Forgets every record (the connection is over). */
void tcp_sb_clear(struct ust_tcb *t);
/* Marks a record lost (Linux's tcp_mark_skb_lost): a retransmission in
 * flight that is lost again is counted as such. */
void tcp_sb_mark_lost(struct ust_tcb *t, struct tcp_sent *r);
/* Sets or clears flag bits of a record, keeping the counters. */
void tcp_sb_set(struct ust_tcb *t, struct tcp_sent *r, uint8_t flags);
void tcp_sb_clear_flags(struct ust_tcb *t, struct tcp_sent *r, uint8_t flags);

/* tcp_rate.c: delivery-rate sampling (Linux's tcp_rate.c). */
/* A record is (re)sent: its snapshot of the delivery state; idle: nothing
 * was in flight before it. */
void tcp_rate_sent(struct ust_tcb *t, struct tcp_sent *r, bool idle, ust_time now);
/* What the records one ACK delivers say about the rate, gathered record
 * by record into rs. */
struct tcp_rate_acc {
	struct tcp_rate_sample *rs;
	bool have;                  /* a record with a snapshot was delivered */
	uint32_t last_end_seq;      /* the newest such record's end */
	ust_time snd_interval;      /* its send phase */
};
/* A record was delivered (acknowledged or SACKed) by this ACK. */
void tcp_rate_delivered(struct ust_tcb *t, struct tcp_sent *r, struct tcp_rate_acc *acc);
/* After the ACK: the sample, from what it delivered and marked lost. */
void tcp_rate_gen(struct ust_tcb *t, uint32_t delivered, uint32_t lost, struct tcp_rate_acc *acc,
		  ust_time now);
/* The application queued data: was the flow limited by it until now? */
void tcp_rate_check_app_limited(struct ust_tcb *t);
/* The windowed min RTT: a sample, and the current value (0: none). */
void tcp_rtt_min_update(struct ust_tcb *t, ust_time rtt, ust_time now);
static inline ust_time tcp_min_rtt(const struct ust_tcb *t) { return t->rtt_min[0].rtt; }

/* tcp_rack.c: RACK loss detection (RFC 8985, Linux's tcp_recovery.c). */
/* A segment was delivered (acknowledged or SACKed): RACK.xmit_ts and
 * RACK.rtt move on (RFC 8985 §6.2 steps 2-3). */
void tcp_rack_advance(struct ust_tcb *t, uint8_t flags, uint32_t end_seq, ust_time xmit_time,
		      ust_time now);
/* Marks the segments RACK finds lost, if it advanced; arms UST_TT_REO for
 * the rest; returns whether it did. */
bool tcp_rack_mark_lost(struct ust_tcb *t, ust_time now);
/* How long r still has before RACK would call it lost, with no
 * reordering window (0: it is old enough). */
ust_time tcp_rack_timeout(const struct ust_tcb *t, const struct tcp_sent *r, ust_time now);
/* UST_TT_REO: the reordering window is over. */
void tcp_rack_reo_timeout(struct ust_tcb *t, ust_time now);
/* A D-SACK arrived; after each ACK, the window's width; a recovery ended
 * without being undone. */
void tcp_rack_dsack(struct ust_tcb *t);
void tcp_rack_update_reo_wnd(struct ust_tcb *t, const struct tcp_rate_sample *rs);
void tcp_rack_recovered(struct ust_tcb *t);
/* Arms UST_TT_TLP for a probe timeout from now if a probe may go (SACK,
 * Open or CWR, something in flight, tcp_early_retrans 3 or 4; Linux's
 * tcp_schedule_loss_probe), else stops it; never later than the RTO,
 * counted in full from now if advancing_rto. Returns whether armed. */
bool tcp_tlp_schedule(struct ust_tcb *t, bool advancing_rto, ust_time now);
/* UST_TT_TLP: sends the probe (tcp_output.c, Linux's tcp_send_loss_probe). */
void tcp_send_loss_probe(struct ust_tcb *t, ust_time now);

/* tcp_stats.c: TCP_INFO's counters that need more than an increment. */
/* Linux's enum tcp_chrono: what the sender is busy with, or limited by. */
enum tcp_chrono {
	TCP_CHRONO_UNSPEC,          /* idle: nothing to send or in flight */
	TCP_CHRONO_BUSY,            /* sending */
	TCP_CHRONO_RWND_LIMITED,    /* held back by the peer's window */
	TCP_CHRONO_SNDBUF_LIMITED,  /* all sent, and the writer waits for room */
};
void tcp_chrono_start(struct ust_tcb *t, enum tcp_chrono type, ust_time now);
void tcp_chrono_stop(struct ust_tcb *t, enum tcp_chrono type, ust_time now);
/* A retransmission timeout fired (Linux's tcp_update_rto_stats); the run
 * of them is over (an ACK took the connection out of Loss, or the
 * handshake completed: tcp_update_rto_time). */
void tcp_rto_stats(struct ust_tcb *t, ust_time now);
void tcp_rto_run_over(struct ust_tcb *t, ust_time now);
/* Fills the tcp_info part of a status (tcp_get_info's units). */
void tcp_stats_report(const struct ust_tcb *t, struct ust_tcp_status *s, ust_time now);
/* Linux's sk_pacing_rate for a flow no algorithm paces (tcp_stats.c). */
uint64_t tcp_cwnd_pacing_rate(const struct ust_tcb *t);
/* After an ACK, for an algorithm that does not pace itself: once
 * SO_MAX_PACING_RATE asked for pacing, the rate follows the window
 * (tcp_output.c, Linux's tcp_update_pacing_rate). */
void tcp_update_pacing_rate(struct ust_tcb *t);

/* tcp_isn.c */
/* SipHash-2-4 of the 16 bytes m0, m1 under key. */
uint64_t tcp_siphash_2w(const uint64_t key[2], uint64_t m0, uint64_t m1);
/* An address pair as one word for the hashes: an IPv4 pair as it always
 * was (hi in the high half, lo in the low), an IPv6 pair through a
 * SipHash of its own, keyed alike, so that F covers all 32 bytes (RFC
 * 6528 §3: "at least the 4-tuple"). */
uint64_t tcp_addr_word(const struct ust_tcp *tcp, const struct ust_ip6 *hi, const struct ust_ip6 *lo);
uint32_t tcp_isn(const struct ust_tcp *tcp, const struct ust_ip6 *laddr, uint16_t lport, const struct ust_ip6 *raddr,
		 uint16_t rport, ust_time now);
uint32_t tcp_ts_offset(const struct ust_tcp *tcp, const struct ust_ip6 *laddr, const struct ust_ip6 *raddr);
/* The IPv6 flow label of a 4-tuple (RFC 6437 §3: "a hash of the 5-tuple"
 * keyed so that it reveals nothing), as Linux's auto flow labels give
 * every segment of a connection one label: 20 bits, possibly 0. */
uint32_t tcp_flow_label(const struct ust_tcp *tcp, const struct ust_ip6 *laddr, uint16_t lport,
			const struct ust_ip6 *raddr, uint16_t rport);
/* Another label for an IPv6 connection whose label is made (Linux's
 * sk_rethink_txhash, whose new hash is random: here a keyed hash of the
 * old label, never the same), counted as event ev; false (nothing done)
 * over IPv4 or before the first segment. */
bool tcp_flow_relabel(struct ust_tcb *t, enum ust_event ev);
static inline uint32_t tcp_ts_now(const struct ust_tcb *t, ust_time now)
{
	return (uint32_t)(now / 1000) + t->ts_offset;
}

/* tcp_syncookie.c: SYN cookies (RFC 4987 §3.6) as Linux's. */
#define TCP_SYNCOOKIE_VALID UST_SEC(120) /* a cookie sent lately: ACKs are checked */
/* The ISN of a cookie SYN-ACK answering syn (the peer's MSS, rounded down
 * to Linux's table, is kept in it); *mss is the MSS kept. */
uint32_t tcp_cookie_isn(const struct ust_tcp *tcp, const struct ust_tcp_seg *syn, ust_time now,
			uint16_t *mss);
/* The MSS an ACK's cookie kept (SEG.ACK - 1 for the peer's SEG.SEQ - 1),
 * 0 when it is not one of ours or older than two minutes. */
unsigned tcp_cookie_check(const struct ust_tcp *tcp, const struct ust_tcp_seg *ack, ust_time now);
/* The TSval clock of a cookie SYN-ACK, before the connection's offset:
 * the options the SYN offered in its low six bits. */
uint32_t tcp_cookie_tsval(const struct ust_tcb *c, ust_time now);
/* What a cookie ACK's echo (its offset taken away) says the SYN offered. */
void tcp_cookie_ts_decode(uint32_t ecr, struct ust_tcp_opts *o, bool *ecn);

/* tcp_md5.c: TCP MD5 signatures (RFC 2385). */
struct tcp_md5 {
	unsigned n, cap;
	struct ust_tcp_md5_key k[];  /* oldest first */
};
#define TCP_MD5_OPT_LEN 20        /* NOP, NOP, the option's 18 bytes */
/* The key for peer among t's (a listener's for a SYN's source), or NULL. */
const struct ust_tcp_md5_key *tcp_md5_lookup(const struct ust_tcb *t, const struct ust_ip6 *peer);
/* The key that signs t's segments to its peer, or NULL. */
const struct ust_tcp_md5_key *tcp_md5_peer(const struct ust_tcb *t);
/* A child c (its raddr set) takes its listener's key for the peer, for
 * that address alone; false without memory for it. */
bool tcp_md5_inherit(struct ust_tcb *c, const struct ust_tcb *l);
void tcp_md5_free(struct ust_tcb *t);
/* Writes the option, digest zeroed, and returns what follows it. */
uint8_t *tcp_md5_put_opt(uint8_t *p);
/* Fills in the digest of a segment (TCP header at th, tcp_len bytes with
 * the data) whose options hold the option (tcp_build_opts). */
void tcp_md5_sign(const struct ust_tcp_md5_key *k, const struct ust_ip6 *src, const struct ust_ip6 *dst,
		  uint8_t *th, unsigned tcp_len);
/* Is seg, to the connection or listener t, signed as t's keys ask
 * (Linux's tcp_inbound_hash)? If not it is dropped and counted. */
bool tcp_md5_inbound(struct ust_tcb *t, const struct ust_tcp_seg *seg);
/* For a RST answering seg, which no connection takes: the key to sign it
 * with, or NULL; *answer false when no RST may go (a signed segment
 * nobody can check, tcp_md5.c). */
const struct ust_tcp_md5_key *tcp_md5_rst_key(struct ust_tcp *tcp, const struct ust_tcp_seg *seg, bool *answer);

/* tcp_opt.c */
/* Bytes the options add to our next segment beyond those t->mss allows
 * for (the timestamps): the SACK option when one is due, and a signature
 * (Linux's tcp_current_mss takes those off at each send). */
unsigned tcp_opt_extra_len(const struct ust_tcb *t);
/* Writes the options of a segment we send, with room for md5's signature
 * (NULL: none; ts_first: after the timestamps), which emit fills in once
 * the segment is whole; returns their length (a multiple of 4). */
unsigned tcp_build_opts(const struct ust_tcb *t, const struct ust_tcp_md5_key *md5, bool ts_first, uint8_t flags,
			ust_time now, uint8_t *p);

/* tcp_output.c */
/* Sends what the window, Nagle and the buffers allow, and the FIN. */
void tcp_output(struct ust_tcb *t, ust_time now);
void tcp_send_ack(struct ust_tcb *t, ust_time now);
void tcp_send_syn(struct ust_tcb *t, ust_time now);
/* A SYN-ACK from a block that is not kept (a SYN cookie's, Linux's
 * request sock freed at once): no timer, nothing remembered. */
void tcp_send_synack_stateless(struct ust_tcb *t, ust_time now);
/* RST|ACK at SND.NXT (abort, close with unread data). */
void tcp_send_rst(struct ust_tcb *t, ust_time now);
/* The RST answering seg when no connection takes it (RFC 9293 §3.10.7.1);
 * none for a signed segment nobody can check (tcp_md5_rst_key). */
void tcp_send_rst_reply(struct ust_tcp *tcp, const struct ust_tcp_seg *seg, ust_time now);
/* The same from a listener or its half-open child, signed with its key
 * for the peer. */
void tcp_send_rst_reply_listener(struct ust_tcb *l, const struct ust_tcp_seg *seg, ust_time now);
/* The same for a segment a connection took, under its IPv6 flow label
 * and signed with its key. */
void tcp_send_rst_reply_tcb(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now);
/* The same from what Linux keeps as a timewait socket (an orphan's
 * FIN-WAIT-2): signed only as one for no connection would be. */
void tcp_send_rst_reply_tw(struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now);
void tcp_send_probe(struct ust_tcb *t, ust_time now);
/* Persist timer with a window too small to fill: send what fits (min of
 * window and MSS) regardless of silly-window rules. Returns whether it did. */
bool tcp_push_window(struct ust_tcb *t, ust_time now);
/* tcp_rcv.c: the receiver. When to ACK (Linux's delayed-ACK engine: quick
 * ACKs, ato, interactive "pingpong" mode), the window to offer, and the
 * buffers' sizes (the window scale, receive autotuning, send-buffer
 * growth). */
/* Before our SYN or SYN-ACK: the receive window's clamp, the first window
 * and the window scale we offer (0 unless wscale_ok: a SYN-ACK answering a
 * SYN without the option), from the receive buffer (Linux's
 * tcp_select_initial_window). */
void tcp_select_initial_window(struct ust_tcb *t, bool wscale_ok);
/* The handshake is done: the first measures of the buffers (Linux's
 * tcp_init_buffer_space). */
void tcp_init_buffer_space(struct ust_tcb *t, ust_time now);
/* The window to advertise, and whether it opened enough to say so. */
uint32_t tcp_rcv_window(const struct ust_tcb *t);
/* In-order data arrived (len bytes of seg at RCV.NXT before it moved):
 * an ACK is owed; measure the peer's segments and the round trip, adapt
 * ato, enter quick-ACK mode at the start and after idle (Linux's
 * tcp_event_data_recv). */
void tcp_rcv_data(struct ust_tcb *t, const struct ust_tcp_seg *seg, uint32_t len, ust_time now);
void tcp_rcv_ofo_data(struct ust_tcb *t, uint32_t len);
/* ACK every segment for a while (up to max_quickacks ACKs) and leave
 * interactive mode: something (a retransmission reaching us, a CE mark)
 * says the peer waits for ACKs. */
void tcp_enter_quickack_mode(struct ust_tcb *t, unsigned max_quickacks);
/* After a segment was processed: send the ACK owed now, or arm the
 * delayed-ACK timer (Linux's __tcp_ack_snd_check). */
void tcp_ack_snd_check(struct ust_tcb *t, ust_time now);
/* The delayed-ACK timer fired. */
void tcp_delack_timeout(struct ust_tcb *t, ust_time now);
/* UST_TT_SACK: the ACKs held back for data out of order go as one. */
void tcp_sack_compress_timeout(struct ust_tcb *t, ust_time now);
/* New data out of order is reported in the SACK block at index slot of
 * those sent lately (the count of blocks, for a new one): past the first
 * two, the ACKs held back go now (a lost ACK must not leave the older
 * blocks unheard), before a new block is added, after an old one was
 * extended in place (tcp_input.c, receive_out_of_order). */
void tcp_sack_compress_flush(struct ust_tcb *t, unsigned slot, ust_time now);
/* An ACK is going out: it settles what was owed (tcp_event_ack_sent). */
void tcp_ack_sent(struct ust_tcb *t);
/* A segment with data is going out: a reply soon after data makes the
 * connection interactive (tcp_event_data_sent). */
void tcp_data_sent(struct ust_tcb *t, ust_time now);
/* The reader took n bytes: grow the buffer if it reads faster than the
 * window allows, and ACK if the window opened or a pushed segment was
 * drained (tcp_rcv_space_adjust, tcp_cleanup_rbuf). */
void tcp_rcv_consumed(struct ust_tcb *t, uint32_t n, ust_time now);
/* A ring that holds nothing gives its memory back (issue 13) at once while
 * that memory is small (tcp_buf.c keeps it for the next ring, its pages
 * already there). A ring whose memory grew for a bulk flow whose reader
 * fell behind keeps it while the flow lasts: given back at
 * every drain, a receiving program lost 20 to 30% of its throughput
 * (tests/bench/scale's bulk flow alone) to pages trimmed and faulted in
 * again. It goes once it has held nothing for TCP_RING_SHED_IDLE
 * (UST_TT_SHED), or at TIME-WAIT or the end: an idle connection that once
 * received fast holds no more than one that never did. */
#define TCP_RING_SHED_MAX (128u << 10)
#define TCP_RING_SHED_IDLE UST_SEC(1)
void tcp_ring_shed(struct ust_tcb *t, struct ust_ring *r);
/* UST_TT_SHED: the grown rings that held nothing since then go. */
void tcp_rings_idle(struct ust_tcb *t, ust_time now);
/* The same for the receive ring, when nothing is held out of order
 * either. */
void tcp_rcvbuf_shed(struct ust_tcb *t);
/* TCP_QUICKACK. */
void tcp_set_quickack(struct ust_tcb *t, int val, ust_time now);
static inline bool tcp_in_pingpong_mode(const struct ust_tcb *t)
{
	return t->ack_pingpong >= TCP_PINGPONG_THRESH;
}
/* SO_RCVBUF: the buffer is size bytes (as getsockopt reports it) and no
 * longer grows by itself; the largest window follows it at once. */
void tcp_rcvbuf_set(struct ust_tcb *t, uint32_t size);

/* Urgent data (tcp_urg.c): the URG flag and pointer of a segment starting
 * at seq; urgent mode ends once SND.UNA reaches SND.UP; a segment's URG
 * announces an urgent byte (Linux's tcp_check_urg). */
uint16_t tcp_urg_output(const struct ust_tcb *t, uint32_t seq, uint8_t *flags);
void tcp_urg_acked(struct ust_tcb *t);
void tcp_urg_input(struct ust_tcb *t, const struct ust_tcp_seg *seg);
/* TCP_WINDOW_CLAMP: 0 or -EINVAL (0 once a window was chosen). */
int tcp_set_window_clamp(struct ust_tcb *t, int val);
/* The receive buffer for a reader that took space bytes in a round trip
 * (rcvq_space becomes space), and for the out-of-order data held beyond
 * the window's start (Linux's tcp_rcvbuf_grow, from tcp_rcv_space_adjust
 * and, with the space unchanged, from tcp_data_queue_ofo). */
void tcp_rcvbuf_grow(struct ust_tcb *t, uint32_t space);
/* The send buffer grows with cwnd, to twice what a window of segments
 * takes in Linux's memory (tcp_sndbuf_expand); never shrinks, nothing
 * when SO_SNDBUF was set. Called when the handshake completes and when an
 * ACK may have grown cwnd. */
void tcp_sndbuf_expand(struct ust_tcb *t);
/* Out-of-order data: a new range came (seq in it), for the SACK blocks. */
void tcp_sack_note(struct ust_tcb *t, uint32_t seq);
/* Which of the blocks reported lately data [seq, end) out of order
 * extends (0 first; *extends), or how many there are when it starts a new
 * one. */
unsigned tcp_sack_slot(const struct ust_tcb *t, uint32_t seq, uint32_t end, bool *extends);
/* The out-of-order ranges reported lately, as indices into t->ofo, newest
 * first, each once; returns how many. */
unsigned tcp_sack_recent(const struct ust_tcb *t, int idx[4]);
/* How many out-of-order ranges the connection may hold: bounded by the
 * window, 128 bytes of window per range. */
unsigned tcp_ofo_max(const struct ust_tcb *t);
/* Segments in one paced burst (Linux's tcp_tso_autosize): about 1 ms of
 * data at the pacing rate, at least 2. */
uint32_t tcp_pacing_burst(const struct ust_tcb *t);

/* tcp_timer.c */
void tcp_rto_restart(struct ust_tcb *t, ust_time now);
void tcp_rtt_sample(struct ust_tcb *t, ust_time rtt);
void tcp_rtt_estimate(struct ust_tcb *t, ust_time rtt);
ust_time tcp_ts_rtt(const struct ust_tcb *t, const struct ust_tcp_seg *seg, ust_time now);
ust_time tcp_rto_backed_off(const struct ust_tcb *t);
/* When the retransmission timer is due next, the user timeout considered. */
ust_time tcp_rtx_due(const struct ust_tcb *t, ust_time now);

#endif
