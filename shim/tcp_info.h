/* Linux 6.18's struct tcp_info (include/uapi/linux/tcp.h), all 280 bytes
 * of it: glibc's <netinet/tcp.h> stops at tcpi_total_retrans (104 bytes)
 * and the 6.1 <linux/tcp.h> of build machines at tcpi_snd_wnd (232).
 * getsockopt(TCP_INFO) on a 6.18 kernel returns 280; a program built
 * against either header reads its prefix, as the kernel lets it. */
#ifndef USTCP_SHIM_TCP_INFO_H
#define USTCP_SHIM_TCP_INFO_H

#include <stddef.h>
#include <stdint.h>

/* tcpi_options bits (Linux's TCPI_OPT_*) */
#define UST_TCPI_OPT_TIMESTAMPS 1
#define UST_TCPI_OPT_SACK 2
#define UST_TCPI_OPT_WSCALE 4
#define UST_TCPI_OPT_ECN 8          /* ECN was negotiated at the handshake */
#define UST_TCPI_OPT_ECN_SEEN 16    /* at least one ECT segment was received */

struct ust_linux_tcp_info {
	uint8_t tcpi_state;
	uint8_t tcpi_ca_state;
	uint8_t tcpi_retransmits;
	uint8_t tcpi_probes;
	uint8_t tcpi_backoff;
	uint8_t tcpi_options;
	uint8_t tcpi_wscales;        /* snd_wscale : 4 (low bits), rcv_wscale : 4 */
	uint8_t tcpi_rate_flags;     /* delivery_rate_app_limited : 1, fastopen_client_fail : 2 */

	uint32_t tcpi_rto;           /* µs */
	uint32_t tcpi_ato;           /* µs */
	uint32_t tcpi_snd_mss;
	uint32_t tcpi_rcv_mss;

	uint32_t tcpi_unacked;       /* segments (packets_out) */
	uint32_t tcpi_sacked;
	uint32_t tcpi_lost;
	uint32_t tcpi_retrans;
	uint32_t tcpi_fackets;       /* always 0 since Linux 4.15 */

	uint32_t tcpi_last_data_sent; /* ms ago */
	uint32_t tcpi_last_ack_sent;  /* never set by Linux */
	uint32_t tcpi_last_data_recv; /* ms ago */
	uint32_t tcpi_last_ack_recv;  /* ms ago */

	uint32_t tcpi_pmtu;
	uint32_t tcpi_rcv_ssthresh;
	uint32_t tcpi_rtt;           /* µs */
	uint32_t tcpi_rttvar;        /* µs */
	uint32_t tcpi_snd_ssthresh;  /* segments */
	uint32_t tcpi_snd_cwnd;      /* segments */
	uint32_t tcpi_advmss;
	uint32_t tcpi_reordering;

	uint32_t tcpi_rcv_rtt;       /* µs */
	uint32_t tcpi_rcv_space;

	uint32_t tcpi_total_retrans;

	uint64_t tcpi_pacing_rate;   /* bytes per second */
	uint64_t tcpi_max_pacing_rate;
	uint64_t tcpi_bytes_acked;   /* RFC 4898 tcpEStatsAppHCThruOctetsAcked */
	uint64_t tcpi_bytes_received; /* RFC 4898 tcpEStatsAppHCThruOctetsReceived */
	uint32_t tcpi_segs_out;      /* RFC 4898 tcpEStatsPerfSegsOut */
	uint32_t tcpi_segs_in;       /* RFC 4898 tcpEStatsPerfSegsIn */

	uint32_t tcpi_notsent_bytes;
	uint32_t tcpi_min_rtt;       /* µs */
	uint32_t tcpi_data_segs_in;  /* RFC 4898 tcpEStatsDataSegsIn */
	uint32_t tcpi_data_segs_out; /* RFC 4898 tcpEStatsDataSegsOut */

	uint64_t tcpi_delivery_rate; /* bytes per second */

	uint64_t tcpi_busy_time;     /* µs busy sending data */
	uint64_t tcpi_rwnd_limited;  /* µs limited by the receive window */
	uint64_t tcpi_sndbuf_limited; /* µs limited by the send buffer */

	uint32_t tcpi_delivered;
	uint32_t tcpi_delivered_ce;

	uint64_t tcpi_bytes_sent;    /* RFC 4898 tcpEStatsPerfHCDataOctetsOut */
	uint64_t tcpi_bytes_retrans; /* RFC 4898 tcpEStatsPerfOctetsRetrans */
	uint32_t tcpi_dsack_dups;    /* RFC 4898 tcpEStatsStackDSACKDups */
	uint32_t tcpi_reord_seen;

	uint32_t tcpi_rcv_ooopack;   /* out-of-order segments received */

	uint32_t tcpi_snd_wnd;       /* the peer's window, scaled, bytes */
	uint32_t tcpi_rcv_wnd;       /* ours, as last advertised, bytes */

	uint32_t tcpi_rehash;        /* PLB or timeout rehash attempts */

	uint16_t tcpi_total_rto;     /* RTOs, SYN's included */
	uint16_t tcpi_total_rto_recoveries;
	uint32_t tcpi_total_rto_time; /* ms */
	uint32_t tcpi_received_ce;   /* CE marks received */
	uint32_t tcpi_delivered_e1_bytes; /* Accurate ECN byte counters */
	uint32_t tcpi_delivered_e0_bytes;
	uint32_t tcpi_delivered_ce_bytes;
	uint32_t tcpi_received_e1_bytes;
	uint32_t tcpi_received_e0_bytes;
	uint32_t tcpi_received_ce_bytes;
	uint16_t tcpi_accecn_fail_mode;
	uint16_t tcpi_accecn_opt_seen;
};

/* The offsets of Linux's layout: where glibc's struct ends, where the 6.1
 * header's does, and the fields added since. */
#define UST_TCPI_AT(f, off) _Static_assert(offsetof(struct ust_linux_tcp_info, f) == (off), #f)
UST_TCPI_AT(tcpi_rto, 8);
UST_TCPI_AT(tcpi_unacked, 24);
UST_TCPI_AT(tcpi_last_data_sent, 44);
UST_TCPI_AT(tcpi_pmtu, 60);
UST_TCPI_AT(tcpi_rcv_rtt, 92);
UST_TCPI_AT(tcpi_total_retrans, 100);
UST_TCPI_AT(tcpi_pacing_rate, 104);
UST_TCPI_AT(tcpi_segs_out, 136);
UST_TCPI_AT(tcpi_notsent_bytes, 144);
UST_TCPI_AT(tcpi_delivery_rate, 160);
UST_TCPI_AT(tcpi_busy_time, 168);
UST_TCPI_AT(tcpi_delivered, 192);
UST_TCPI_AT(tcpi_bytes_sent, 200);
UST_TCPI_AT(tcpi_dsack_dups, 216);
UST_TCPI_AT(tcpi_rcv_ooopack, 224);
UST_TCPI_AT(tcpi_snd_wnd, 228);
UST_TCPI_AT(tcpi_rcv_wnd, 232);
UST_TCPI_AT(tcpi_rehash, 236);
UST_TCPI_AT(tcpi_total_rto, 240);
UST_TCPI_AT(tcpi_total_rto_recoveries, 242);
UST_TCPI_AT(tcpi_total_rto_time, 244);
UST_TCPI_AT(tcpi_received_ce, 248);
UST_TCPI_AT(tcpi_delivered_e1_bytes, 252);
UST_TCPI_AT(tcpi_received_e1_bytes, 264);
UST_TCPI_AT(tcpi_accecn_fail_mode, 276);
UST_TCPI_AT(tcpi_accecn_opt_seen, 278);
_Static_assert(sizeof(struct ust_linux_tcp_info) == 280, "Linux 6.18's struct tcp_info");
#undef UST_TCPI_AT

/* Linux's struct tcp_md5sig (include/uapi/linux/tcp.h), 216 bytes: glibc's
 * has no name for the ifindex, nor for its flag. */
struct ust_linux_md5sig {
	struct sockaddr_storage addr;
	uint8_t flags;
	uint8_t prefixlen;
	uint16_t keylen;
	int32_t ifindex;
	uint8_t key[80];
};
#define UST_LINUX_MD5SIG_FLAG_PREFIX 0x1
#define UST_LINUX_MD5SIG_FLAG_IFINDEX 0x2

/* Linux's struct tcp_zerocopy_receive (include/uapi/linux/tcp.h), 64
 * bytes in 6.18, and its msg_flags' one valid bit (TCP_CMSG_TS). */
struct ust_linux_zc {
	uint64_t address;
	uint32_t length;
	uint32_t recv_skip_hint;
	uint32_t inq;
	int32_t err;
	uint64_t copybuf_address;
	int32_t copybuf_len;
	uint32_t flags;
	uint64_t msg_control;
	uint64_t msg_controllen;
	uint32_t msg_flags;
	uint32_t reserved;
};
#define UST_TCP_CMSG_TS 2

#endif
