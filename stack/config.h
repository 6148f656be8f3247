/* Configuration from the environment (the USTCP_* variables of ustcp(7)).
 *
 * Parsing never exits and never prints: a bad value yields one line naming
 * the variable and the value, for the caller to log, and an errno. */
#ifndef USTCP_CONFIG_H
#define USTCP_CONFIG_H

#include <limits.h>
#include <net/if.h>

#include "base.h"
#include "log.h"
#include "wire6.h"

#define UST_PASSTHROUGH_MAX 16
/* Room for the one-line error of ust_config_load. */
#define UST_CONFIG_ERR_MAX 1200

struct ust_cidr {
	uint32_t net, mask; /* host order */
};

struct ust_cidr6 {
	struct ust_ip6 net;  /* host bits clear */
	unsigned prefix;
};

/* USTCP_CALL_SPIN's default, microseconds: how long the stack thread
 * looks for the program's next call after serving one (stack/loop.c,
 * ust_loop_run's linger). */
#define UST_CALL_SPIN_DEFAULT 50
/* USTCP_RX_RING's default, KiB: at MTU 1500, 2592 slots of 1600 bytes,
 * set on the link's socket before it is bound (link.c, link_socket_ring;
 * docs/architecture.md §9e), by the launcher's broker for a program under
 * ustcp(1). */
#define UST_RX_RING_DEFAULT 4096

struct ust_config {
	char iface[IFNAMSIZ];           /* USTCP_IFACE */
	uint32_t addr;                  /* USTCP_ADDR, host order */
	unsigned prefix;                /*   its prefix length */
	uint32_t gw;                    /* USTCP_GW's IPv4 router, 0 if none */
	bool has_addr6;                 /* USTCP_ADDR6 given: IPv6 on */
	struct ust_ip6 addr6;           /* USTCP_ADDR6 */
	unsigned prefix6;               /*   its prefix length */
	struct ust_ip6 gw6;             /* USTCP_GW's IPv6 router, all zero if none */
	unsigned mtu;                   /* USTCP_MTU, 0: the interface's */
	unsigned msl_ms;                /* USTCP_MSL */
	unsigned fin_timeout_ms;        /* USTCP_FIN_TIMEOUT */
	unsigned max_conns;             /* USTCP_MAX_CONNS, 0: twice the fd limit */
	unsigned max_tw;                /* USTCP_MAX_TW, UINT_MAX: the namespace's tcp_max_tw_buckets */
	char cc[16];                    /* USTCP_CC, "" for the namespace's, else cubic (namespace_cc) */
	unsigned ecn;                   /* USTCP_ECN: 0, 1 or 2 (the default), as Linux's tcp_ecn */
	bool rfc1337;                   /* USTCP_RFC1337: ignore RST in TIME-WAIT, as Linux's tcp_rfc1337 */
	unsigned syncookies;            /* USTCP_SYNCOOKIES: 0, 1 (the default) or 2, as Linux's tcp_syncookies */
	bool tw_collect;                /* USTCP_TW_COLLECT: exit keepers hand TIME-WAITs to one per address (default) */
	unsigned busy_poll_us;          /* USTCP_BUSY_POLL, 0: off */
	unsigned call_spin_us;          /* USTCP_CALL_SPIN: the stack thread's look for the next call, 0: none */
	unsigned rx_ring_kib;           /* USTCP_RX_RING: the link's receive ring, KiB, 0: none */
	/* USTCP_RMEM, USTCP_WMEM: min, default, max; all 0 when unset (the
	 * engine's own, ust_tcp_default_config). */
	uint32_t rmem[3], wmem[3];
	struct ust_cidr passthrough[UST_PASSTHROUGH_MAX]; /* USTCP_PASSTHROUGH, its IPv4 prefixes */
	unsigned n_passthrough;
	struct ust_cidr6 passthrough6[UST_PASSTHROUGH_MAX]; /* and its IPv6 ones */
	unsigned n_passthrough6;
	enum ust_log_level log_level;   /* USTCP_LOG */
	char log_file[PATH_MAX];        /* USTCP_LOG_FILE, "" for stderr */
	char pcap[PATH_MAX];            /* USTCP_PCAP, "" for off */
	char close_log[PATH_MAX];       /* USTCP_CLOSE_LOG, "" for off */
	char run_dir[PATH_MAX];         /* USTCP_RUN_DIR */
};

/* Looks a variable up; getenv fits, tests pass their own. */
typedef const char *(*ust_getenv_fn)(const char *name);

/* Fills c from the variables. Returns 0, or -EINVAL with err holding one
 * line such as: USTCP_ADDR="10.9.0.300/24": not an IPv4 address/prefix. */
int ust_config_load(struct ust_config *c, ust_getenv_fn get, char *err, size_t errlen);

/* Parsers the launcher and tools share. Return 0 or -EINVAL. */
int ust_parse_ipv4(const char *s, uint32_t *addr);
int ust_parse_cidr(const char *s, uint32_t *addr, unsigned *prefix);
/* "2001:db8::2/64"; without "/len" the prefix is 128, as ip(8) takes it. */
int ust_parse_cidr6(const char *s, struct ust_ip6 *addr, unsigned *prefix);
static inline uint32_t ust_prefix_mask(unsigned prefix)
{
	return prefix ? ~(uint32_t)0 << (32 - prefix) : 0;
}
/* Decimal seconds with up to millisecond precision ("60", "0.5"). */
int ust_parse_seconds_ms(const char *s, unsigned max_s, unsigned *ms);

/* Is dst one of the USTCP_PASSTHROUGH destinations? */
bool ust_config_passthrough(const struct ust_config *c, uint32_t dst);
/* The same for an IPv6 destination; an IPv4-mapped one is asked of the
 * IPv4 prefixes. */
bool ust_config_passthrough6(const struct ust_config *c, const struct ust_ip6 *dst);

#endif
