/* ustcp-host: runs a ustcp stack on USTCP_IFACE in a plain process, so that
 * tests can drive the stack on a real link before the shim exists (and
 * afterwards, without a program on top).
 *
 *   ustcp-host [-d seconds] [-r ready-file] [-s counters-file]
 *              [-p addr [-c count] [-i interval] [-W wait]]
 *              [-C addr:port | -L port] [-I in-file] [-O out-file]
 *              [-F | -A] [-U] [-K] [-S] [-w seconds]
 *
 * Configuration is the USTCP_* environment. It answers ARP and ping (and,
 * with USTCP_ADDR6, neighbour solicitations and ping6); with -p it pings
 * addr itself (ICMP or ICMPv6 echo from the stack, by addr's family; an
 * IPv6 one once DAD let the stack use an address), printing each reply or
 * "host unreachable" when ARP or NDP gets no answer; it stops when every request
 * was answered, when the host is found unreachable, or -W seconds (default
 * 5) after the last request. On SIGINT/SIGTERM, at the end
 * of -d, or when the pings are done, it writes its counters to stderr (and to
 * the -s file) and exits: 0, or 1 if pings went unanswered. The -r file is
 * created, holding the host's pid, once its loop runs. SIGUSR2 writes the
 * counters to the -s file at once (whole: a temporary file renamed) and goes
 * on, so that a test can wait for a counter instead of sleeping.
 *
 * TCP: with -C it connects to addr:port (an IPv6 peer as [addr]:port, from
 * an AF_INET6 block, once DAD let the stack use an address: the connect is
 * made on the loop's turn that ends DAD, so a timed transfer waits no
 * more than DAD), with -L it accepts one connection on port. Then, in
 * this order:
 *   1. with -K, it waits for the peer's FIN (keeping the connection open in
 *      CLOSE-WAIT) before going on;
 *   2. it sends the contents of -I (if given);
 *   3. it waits until it is time to close: with -S until SIGUSR1 arrives,
 *      then with -w for that many seconds. Without any of -I, -K, -S, -w,
 *      -F, -A, -U it waits for the peer's FIN (a pure receiver: nc -N peers
 *      keep sending until they are done);
 *   4. it closes, in one of three ways:
 *      (default) shutdown(SHUT_WR): a FIN after the data, and it goes on
 *           receiving (half-close); it calls close() once it has read the
 *           peer's FIN, which sends nothing more;
 *      -F   close(): a FIN after the data, and it reads nothing more, so
 *           data arriving afterwards is answered with RST (half-duplex
 *           close, RFC 9293 §3.6.1);
 *      -A   abort: SO_LINGER {1, 0} and close(): a RST, no FIN.
 * Everything it reads goes to -O (default: nothing kept, only counted), which
 * is closed at the peer's FIN (a pipe's reader sees its end of file then).
 * With -U it never reads what arrives, so its close (-F unless -A is given)
 * finds unread data and resets the connection (RFC 1122 §4.2.2.13).
 * It exits when the connection is CLOSED (after TIME-WAIT when it closed
 * first: set USTCP_MSL small). A line on stderr reports how the connection
 * ended, the bytes each way and the states it went through ("connection
 * closed: outcome=… initiator=… sent=… received=… states=SYN-SENT,ESTAB,…",
 * the close log's fields);
 * the exit status is 0 for an orderly close, 1 otherwise. TCP events are
 * only noted in TCP's callback; pump() acts on them after TCP returns. */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "link.h"
#include "log.h"
#include "loop.h"
#include "stack.h"
#include "tcp.h"

struct host {
	struct ust_config cfg;
	struct ust_stack st;
	struct ust_link link;
	struct ust_loop loop;
	struct ev_loop *ev;

	uint32_t ping_dst;
	bool ping6;                        /* -p gave an IPv6 address: ping_dst6 */
	struct ust_ip6 ping_dst6;
	unsigned ping_count, ping_sent, ping_replies;
	double ping_interval;
	double ping_wait;                  /* after the last request, at most */
	ust_time ping_sent_at[65536 / 64]; /* per sequence number, modulo */
	ev_timer ping_timer;
	ev_timer end_timer;
	ev_signal sigint, sigterm;

	/* TCP */
	struct ust_tcp tcp;
	struct ust_tcb *listener, *conn;
	struct ust_ip6 peer;       /* -C's address (IPv4 mapped) and port */
	uint16_t peer_port;
	bool connect_after_dad;    /* -C to an IPv6 peer while our address is tentative */
	unsigned pending;          /* events since the last pump */
	int in_fd, out_fd;
	bool in_done, out_done, closed;
	uint64_t sent, received;
	uint8_t buf[65536];
	/* How and when to close (the steps in the comment on top). */
	enum { CLOSE_SHUTDOWN, CLOSE_FULL, CLOSE_ABORT } how;
	bool no_read;              /* -U */
	bool keep;                 /* -K: nothing before the peer's FIN */
	bool on_signal;            /* -S: close on SIGUSR1 */
	double wait_s;             /* -w; < 0: none */
	bool wait_eof;             /* step 3 waits for the peer's FIN */
	bool signalled, wait_started, wait_over;
	bool shut;                 /* step 4 done (shutdown, close or abort) */
	bool released;             /* close()d: TCP owns the block until CLOSED */
	ev_timer wait_timer;
	ev_signal sigusr1;
	ev_signal sigusr2;
	const char *counters;      /* -s */
	int status;
};

static const char *host_getenv(const char *name)
{
	return getenv(name);
}

static void usage(void)
{
	fprintf(stderr, "usage: ustcp-host [-d seconds] [-r ready-file] [-s counters-file]\n"
			"                  [-p addr [-c count] [-i interval] [-W wait]]\n"
			"                  [-C addr:port | -L port] [-I in-file] [-O out-file]\n"
			"                  [-F | -A] [-U] [-K] [-S] [-w seconds]\n");
	exit(2);
}

/* TCP events only note what happened; the pump acts after TCP returns. */
static void on_tcp_event(void *ctx, struct ust_tcb *tcb, unsigned events)
{
	struct host *h = ctx;

	h->pending |= events;
}

/* The mark of the one connection (ust_tcp_set_tag). */
#define HOST_TAG 1u

static void on_tcp_closed(void *ctx, const struct ust_tcb *t)
{
	struct host *h = ctx;
	const struct ust_tcp_record *r = &t->rec;
	const char *who = ust_tcp_initiator_name(r->initiator);
	char states[UST_TCP_HISTORY_MAX * 12] = "";

	/* By its tag, not its address: a TIME-WAIT the engine kept as a
	 * record is another block by the time it ends (tcp_twrec.c). */
	if (ust_tcp_tag(t) != HOST_TAG)
		return;
	for (unsigned i = 0; i < r->nstates; i++) {
		if (i)
			strcat(states, ",");
		strcat(states, ust_tcp_state_name((enum ust_tcp_state)r->states[i]));
	}
	fprintf(stderr, "ustcp-host: connection closed: outcome=%s initiator=%s sent=%llu received=%llu states=%s%s%s\n",
		ust_tcp_outcome_name(r->outcome), who ? who : "none",
		(unsigned long long)r->bytes_sent, (unsigned long long)r->bytes_received, states,
		*r->reason ? " reason=" : "", r->reason);
	h->status = r->outcome == UST_OUTCOME_ORDERLY ? 0 : 1;
	h->closed = true;
}

/* Reads everything there is into -O; out_done at the peer's FIN or an error. */
static void receive_all(struct host *h, ust_time now)
{
	while (!h->out_done) {
		long n = ust_tcp_receive(h->conn, h->buf, sizeof(h->buf), now);
		if (n == -EAGAIN)
			break;
		if (n <= 0) {
			if (n < 0)
				fprintf(stderr, "ustcp-host: receive: %s\n", strerror((int)-n));
			h->out_done = true;
			/* A reader of a pipe sees the end of file when a program
			 * would, at the peer's FIN, not after LAST-ACK. */
			if (h->out_fd >= 0)
				close(h->out_fd);
			h->out_fd = -1;
			break;
		}
		h->received += (uint64_t)n;
		if (h->out_fd >= 0 && write(h->out_fd, h->buf, (size_t)n) != n) {
			fprintf(stderr, "ustcp-host: write: %s\n", strerror(errno));
			h->out_fd = -1;
		}
	}
}

/* Queues as much of -I as fits; in_done once all of it is queued. */
static void send_input(struct host *h, ust_time now)
{
	while (!h->in_done) {
		struct ust_tcp_status s;
		ssize_t n;
		long m;

		if (h->in_fd < 0) {
			h->in_done = true;
			break;
		}
		ust_tcp_status(h->conn, &s);
		if (s.snd_space == 0)
			break;
		n = pread(h->in_fd, h->buf, s.snd_space < sizeof(h->buf) ? s.snd_space : sizeof(h->buf),
			  (off_t)h->sent);
		if (n <= 0) {
			h->in_done = true;
			break;
		}
		m = ust_tcp_send(h->conn, h->buf, (size_t)n, now);
		if (m < 0) {
			fprintf(stderr, "ustcp-host: send: %s\n", strerror((int)-m));
			h->in_done = true;
			break;
		}
		h->sent += (uint64_t)m;
		if (m < n)
			break;
	}
}

/* Step 3: whether it is time to close (starting the -w timer on the way). */
static bool time_to_close(struct host *h)
{
	if (h->wait_eof && !h->out_done)
		return false;
	if (h->on_signal && !h->signalled)
		return false;
	if (h->wait_s > 0 && !h->wait_over) {
		if (!h->wait_started) {
			ev_timer_set(&h->wait_timer, h->wait_s, 0.);
			ev_timer_start(h->ev, &h->wait_timer);
			h->wait_started = true;
		}
		return false;
	}
	return true;
}

static void release(struct host *h, ust_time now)
{
	h->released = true;
	ust_tcp_close(h->conn, now); /* the block lives on (TIME-WAIT…) until CLOSED */
}

/* -C: the SYN, unless DAD still holds every address of ours that could
 * be its source (then it waits for a later turn of the loop). */
static int host_connect(struct host *h, ust_time now)
{
	int r = ust_tcp_connect_to(h->conn, &h->peer, h->peer_port, now);

	h->connect_after_dad = r == -EADDRNOTAVAIL && !ust_ip6_is_v4mapped(&h->peer) &&
			       h->st.addr6[UST_ADDR6_GLOBAL].state == UST_ADDR6_TENTATIVE;
	return h->connect_after_dad ? 0 : r;
}

/* The host's side of the connection: the steps in the comment on top. */
static void pump(struct ust_loop *l, ust_time now)
{
	struct host *h = l->ctx;
	struct ust_tcp_status s;
	int err;

	if (h->connect_after_dad && (err = host_connect(h, now)) < 0) {
		fprintf(stderr, "ustcp-host: connect: %s\n", strerror(-err));
		h->status = 1;
		ev_break(h->ev, EVBREAK_ALL);
		return;
	}
	if (h->connect_after_dad)
		return; /* no connection to read from yet */
	if (!h->conn && h->listener && (h->pending & UST_TCP_EV_ACCEPT)) {
		h->conn = ust_tcp_accept(h->listener, h, &err);
		if (h->conn) {
			ust_tcp_set_tag(h->conn, HOST_TAG);
			ust_tcp_close(h->listener, now); /* one connection */
			h->listener = NULL;
		}
	}
	h->pending = 0;
	if (!h->conn)
		return;
	/* Data that came before a RST is still read (C33). */
	if (!h->released && !h->no_read)
		receive_all(h, now);
	if (h->closed || h->released)
		goto out;
	ust_tcp_status(h->conn, &s);
	if (!UST_TCP_SYNCHRONIZED(s.state))
		goto out;
	/* 1. -K: nothing before the peer's FIN. */
	if (h->keep && !s.eof)
		goto out;
	/* 2. Send -I. */
	send_input(h, now);
	if (!h->in_done)
		goto out;
	/* 3, 4. Close when it is time. */
	if (!h->shut) {
		if (!time_to_close(h))
			goto out;
		h->shut = true;
		switch (h->how) {
		case CLOSE_SHUTDOWN:
			ust_tcp_shutdown(h->conn, SHUT_WR, now);
			break;
		case CLOSE_FULL:
			release(h, now);
			break;
		case CLOSE_ABORT:
			ust_tcp_set_linger(h->conn, true, 0);
			release(h, now);
			break;
		}
	}
	/* After shutdown(SHUT_WR): close() once the peer's FIN has been read. */
	if (!h->released && h->out_done)
		release(h, now);
out:
	/* Closing may have finished the connection at once (a RST). */
	if (h->closed)
		ev_break(h->ev, EVBREAK_ALL);
}

/* The network layer's hooks have one context, TCP's (ust_tcp_init sets
 * it); the host holds its TCP, so it finds itself from there. */
static struct host *host_of(void *ctx)
{
	return ust_container_of(ctx, struct host, tcp);
}

static void on_echo_reply(void *ctx, uint32_t from, uint32_t rest, const uint8_t *data, size_t len,
			  ust_time now)
{
	struct host *h = host_of(ctx);
	unsigned seq = rest & 0xffff;
	char a[16];

	if (from != h->ping_dst || (rest >> 16) != (unsigned)(getpid() & 0xffff) || seq >= h->ping_sent)
		return;
	h->ping_replies++;
	if (h->ping_replies == h->ping_count)
		ev_break(h->ev, EVBREAK_ALL);
	printf("%zu bytes from %s: icmp_seq=%u time=%.3f ms\n", len + UST_ICMP_HLEN,
	       ust_ip_str(from, a), seq,
	       (double)(now - h->ping_sent_at[seq % UST_ARRAY_SIZE(h->ping_sent_at)]) / 1000.);
	fflush(stdout);
}

static void on_echo_reply6(void *ctx, const struct ust_ip6 *from, uint32_t rest, const uint8_t *data,
			   size_t len, ust_time now)
{
	struct host *h = host_of(ctx);
	unsigned seq = rest & 0xffff;
	char a[46];

	if (!h->ping6 || !ust_ip6_eq(from, &h->ping_dst6) || (rest >> 16) != (unsigned)(getpid() & 0xffff) ||
	    seq >= h->ping_sent)
		return;
	h->ping_replies++;
	if (h->ping_replies == h->ping_count)
		ev_break(h->ev, EVBREAK_ALL);
	printf("%zu bytes from %s: icmp_seq=%u time=%.3f ms\n", len + UST_ICMP6_HLEN, ust_ip6_str(from, a), seq,
	       (double)(now - h->ping_sent_at[seq % UST_ARRAY_SIZE(h->ping_sent_at)]) / 1000.);
	fflush(stdout);
}

static void on_unreachable6(void *ctx, const struct ust_ip6 *dst, int err, ust_time now)
{
	struct host *h = host_of(ctx);
	char a[46];

	if (h->ping6 && ust_ip6_eq(dst, &h->ping_dst6)) {
		printf("%s: %s\n", ust_ip6_str(dst, a), strerror(err));
		fflush(stdout);
		ev_break(h->ev, EVBREAK_ALL);
	} else {
		fprintf(stderr, "ustcp-host: %s: %s\n", ust_ip6_str(dst, a), strerror(err));
	}
}

static void on_unreachable(void *ctx, uint32_t dst, int err, ust_time now)
{
	struct host *h = host_of(ctx);
	char a[16];

	ust_tcp_unreachable(ctx, dst, err, now);
	/* On stdout only for ping, as ping's own report: with -O /dev/stdout
	 * it is the stream's output, and the message would join the data. */
	if (h->ping_dst) {
		printf("%s: %s\n", ust_ip_str(dst, a), strerror(err));
		fflush(stdout);
	} else {
		fprintf(stderr, "ustcp-host: %s: %s\n", ust_ip_str(dst, a), strerror(err));
	}
	if (dst == h->ping_dst)
		ev_break(h->ev, EVBREAK_ALL);
}

static void on_ping_timer(struct ev_loop *ev, ev_timer *w, int revents)
{
	struct host *h = ust_container_of(w, struct host, ping_timer);
	uint8_t payload[56];
	ust_time now = ust_now();
	int r;

	if (h->ping_sent == h->ping_count) {
		/* The wait for the last answers is over. */
		ev_break(ev, EVBREAK_ALL);
		return;
	}
	if (h->ping6 && !ust_ip6_source(&h->st, &h->ping_dst6) && h->st.addr6[UST_ADDR6_GLOBAL].state ==
	    UST_ADDR6_TENTATIVE) {
		/* DAD has not given us an address yet: ask again soon. */
		ev_timer_set(w, 0.1, 0.);
		ev_timer_start(ev, w);
		return;
	}
	for (unsigned i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i + h->ping_sent);
	h->ping_sent_at[h->ping_sent % UST_ARRAY_SIZE(h->ping_sent_at)] = now;
	if (h->ping6)
		r = ust_icmp6_echo_request(&h->st, &h->ping_dst6, (uint16_t)getpid(), (uint16_t)h->ping_sent,
					   payload, sizeof(payload), now);
	else
		r = ust_icmp_echo_request(&h->st, h->ping_dst, (uint16_t)getpid(), (uint16_t)h->ping_sent,
					  payload, sizeof(payload), now);
	if (r < 0) {
		printf("ping: %s\n", strerror(-r));
		fflush(stdout);
	}
	h->ping_sent++;
	ust_loop_kick(&h->loop, now);
	ev_timer_set(w, h->ping_sent == h->ping_count ? h->ping_wait : h->ping_interval, 0.);
	ev_timer_start(ev, w);
}

static void on_end(struct ev_loop *ev, ev_timer *w, int revents)
{
	ev_break(ev, EVBREAK_ALL);
}

static void on_signal(struct ev_loop *ev, ev_signal *w, int revents)
{
	ev_break(ev, EVBREAK_ALL);
}

/* -S and -w: note it, and let the pump act. */
static void on_sigusr1(struct ev_loop *ev, ev_signal *w, int revents)
{
	struct host *h = ust_container_of(w, struct host, sigusr1);

	h->signalled = true;
	ust_loop_kick(&h->loop, ust_now());
}

/* SIGUSR2: the counters as they are now, in the -s file. */
static void on_sigusr2(struct ev_loop *ev, ev_signal *w, int revents)
{
	struct host *h = ust_container_of(w, struct host, sigusr2);
	char tmp[4096];
	FILE *f;

	if (!h->counters)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", h->counters);
	ust_link_count_overruns(&h->link);
	f = fopen(tmp, "we");
	if (f)
		ust_counters_print(&h->st.ctr, f);
	if (!f || fclose(f) != 0 || rename(tmp, h->counters) < 0)
		fprintf(stderr, "ustcp-host: %s: %s\n", h->counters, strerror(errno));
}

static void on_wait_over(struct ev_loop *ev, ev_timer *w, int revents)
{
	struct host *h = ust_container_of(w, struct host, wait_timer);

	h->wait_over = true;
	ust_loop_kick(&h->loop, ust_now());
}

static void write_counters(struct host *h, const char *path)
{
	FILE *f;

	ust_link_count_overruns(&h->link);
	ust_counters_print(&h->st.ctr, stderr);
	if (!path)
		return;
	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "ustcp-host: %s: %s\n", path, strerror(errno));
		return;
	}
	ust_counters_print(&h->st.ctr, f);
	fclose(f);
}

int main(int argc, char **argv)
{
	static struct host h; /* large: keep it off the stack */
	const char *ready = NULL, *counters = NULL;
	double duration = 0;
	char err[UST_CONFIG_ERR_MAX];
	struct ust_netif nif;
	int c, r, status = 0;

	const char *connect_to = NULL, *in_file = NULL, *out_file = NULL;
	unsigned listen_port = 0;

	h.ping_count = 3;
	h.ping_interval = 1;
	h.ping_wait = 5;
	h.in_fd = h.out_fd = -1;
	h.wait_s = -1;
	while ((c = getopt(argc, argv, "c:d:i:p:r:s:W:C:L:I:O:FAUKSw:")) != -1) {
		switch (c) {
		case 'C': connect_to = optarg; break;
		case 'L': listen_port = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'I': in_file = optarg; break;
		case 'O': out_file = optarg; break;
		case 'F': h.how = CLOSE_FULL; break;
		case 'A': h.how = CLOSE_ABORT; break;
		case 'U': h.no_read = true; break;
		case 'K': h.keep = true; break;
		case 'S': h.on_signal = true; break;
		case 'w':
			h.wait_s = strtod(optarg, NULL);
			if (h.wait_s < 0)
				usage();
			break;
		case 'c': h.ping_count = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'd': duration = strtod(optarg, NULL); break;
		case 'i': h.ping_interval = strtod(optarg, NULL); break;
		case 'p': {
			unsigned plen;
			if (strchr(optarg, ':')) {
				if (ust_parse_cidr6(optarg, &h.ping_dst6, &plen) || plen != 128)
					usage();
				h.ping6 = true;
				h.ping_dst = 1; /* pinging, of the other family */
			} else if (ust_parse_ipv4(optarg, &h.ping_dst)) {
				usage();
			}
			break;
		}
		case 'r': ready = optarg; break;
		case 's': counters = optarg; break;
		case 'W': h.ping_wait = strtod(optarg, NULL); break;
		default: usage();
		}
	}
	if (optind != argc || h.ping_interval <= 0 || h.ping_wait <= 0 || h.ping_count == 0)
		usage();
	if (h.no_read && h.how == CLOSE_SHUTDOWN)
		h.how = CLOSE_FULL; /* -U: nothing is read, so nothing waits for the FIN */
	h.wait_eof = !in_file && !h.keep && !h.on_signal && h.wait_s < 0 && h.how == CLOSE_SHUTDOWN &&
		     !h.no_read;

	if (ust_config_load(&h.cfg, host_getenv, err, sizeof(err)) < 0) {
		fprintf(stderr, "ustcp-host: %s\n", err);
		return 2;
	}
	ust_log_setup(h.cfg.log_level, -1);
	r = ust_link_open(&h.link, &h.cfg, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "ustcp-host: %s\n", err);
		return 1;
	}
	if (h.cfg.pcap[0] && (r = ust_pcap_open(&h.link.pcap, h.cfg.pcap, h.link.l3)) < 0) {
		fprintf(stderr, "ustcp-host: USTCP_PCAP=\"%s\": %s\n", h.cfg.pcap, strerror(-r));
		return 1;
	}
	ust_link_netif(&h.link, &h.cfg, &nif);
	if (ust_stack_init(&h.st, &nif, 512, ust_link_output, &h.link) < 0) {
		fprintf(stderr, "ustcp-host: out of memory\n");
		return 1;
	}
	h.link.ctr = &h.st.ctr;
	{
		struct ust_tcp_config tc;
		ust_tcp_default_config(&tc);
		tc.msl_ms = h.cfg.msl_ms;
		tc.fin_timeout_ms = h.cfg.fin_timeout_ms;
		tc.ecn = h.cfg.ecn;
		if (h.cfg.cc[0])
			ust_tcp_config_cc(&tc, h.cfg.cc); /* USTCP_CC, checked at load */
		if (h.cfg.rmem[2])
			memcpy(tc.rmem, h.cfg.rmem, sizeof(tc.rmem));
		if (h.cfg.wmem[2])
			memcpy(tc.wmem, h.cfg.wmem, sizeof(tc.wmem));
		tc.isn_key[0] = ((uint64_t)getpid() << 32) ^ (uint64_t)ust_now();
		tc.isn_key[1] = (uint64_t)ust_now() * 0x9e3779b97f4a7c15ull;
		tc.event = on_tcp_event;
		tc.closed = on_tcp_closed;
		tc.ctx = &h;
		if (ust_tcp_init(&h.tcp, &h.st, &tc) < 0) {
			fprintf(stderr, "ustcp-host: out of memory\n");
			return 1;
		}
	}
	/* ICMP hooks of the test host ride along with TCP's. */
	h.st.upper.echo_reply = on_echo_reply;
	h.st.upper.unreachable = on_unreachable;
	h.st.upper.echo_reply6 = on_echo_reply6;
	h.st.upper.unreachable6 = on_unreachable6;

	h.ev = ev_default_loop(EVFLAG_AUTO);
	ust_loop_start(&h.loop, h.ev, &h.st, &h.link, &h.tcp);
	h.loop.after = pump;
	h.loop.ctx = &h;
	if (in_file && (h.in_fd = open(in_file, O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "ustcp-host: %s: %s\n", in_file, strerror(errno));
		return 1;
	}
	if (out_file && (h.out_fd = open(out_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		fprintf(stderr, "ustcp-host: %s: %s\n", out_file, strerror(errno));
		return 1;
	}
	if (connect_to || listen_port) {
		struct ust_tcb *t = ust_tcp_create(&h.tcp, &h, &r);
		if (!t) {
			fprintf(stderr, "ustcp-host: %s\n", strerror(-r));
			return 1;
		}
		if (connect_to) {
			char a[64];
			const char *colon = strrchr(connect_to, ':');
			bool v6 = connect_to[0] == '[';
			size_t alen = colon ? (size_t)(colon - connect_to) : 0;
			uint32_t addr;
			unsigned plen;
			if (!colon || alen >= sizeof(a) || (v6 && (alen < 3 || colon[-1] != ']')))
				usage();
			memcpy(a, connect_to + v6, alen - 2 * v6);
			a[alen - 2 * v6] = 0;
			if (v6) {
				if (ust_parse_cidr6(a, &h.peer, &plen) || plen != 128)
					usage();
				ust_tcp_set_family(t, true, false);
			} else {
				if (ust_parse_ipv4(a, &addr))
					usage();
				h.peer = ust_ip6_from_v4(addr);
			}
			h.peer_port = (uint16_t)atoi(colon + 1);
			h.conn = t;
			ust_tcp_set_tag(t, HOST_TAG);
			r = host_connect(&h, ust_now());
		} else {
			r = ust_tcp_bind(t, (uint16_t)listen_port, true);
			if (!r)
				r = ust_tcp_listen(t, 16);
			h.listener = t;
		}
		if (r) {
			fprintf(stderr, "ustcp-host: %s: %s\n", connect_to ? "connect" : "listen", strerror(-r));
			return 1;
		}
		ust_loop_kick(&h.loop, ust_now());
	}
	ev_signal_init(&h.sigint, on_signal, SIGINT);
	ev_signal_init(&h.sigterm, on_signal, SIGTERM);
	ev_signal_start(h.ev, &h.sigint);
	ev_signal_start(h.ev, &h.sigterm);
	ev_signal_init(&h.sigusr1, on_sigusr1, SIGUSR1);
	ev_signal_start(h.ev, &h.sigusr1);
	h.counters = counters;
	ev_signal_init(&h.sigusr2, on_sigusr2, SIGUSR2);
	ev_signal_start(h.ev, &h.sigusr2);
	ev_timer_init(&h.wait_timer, on_wait_over, 0., 0.);
	if (duration > 0) {
		ev_timer_init(&h.end_timer, on_end, duration, 0.);
		ev_timer_start(h.ev, &h.end_timer);
	}
	if (h.ping_dst) {
		ev_timer_init(&h.ping_timer, on_ping_timer, 0., 0.);
		ev_timer_start(h.ev, &h.ping_timer);
	}
	if (ready) {
		/* Its pid, for signals (-S), written whole before it appears. */
		char tmp[4096];
		FILE *f;
		snprintf(tmp, sizeof(tmp), "%s.tmp", ready);
		f = fopen(tmp, "we");
		if (f)
			fprintf(f, "%d\n", (int)getpid());
		if (!f || fclose(f) != 0 || rename(tmp, ready) < 0)
			fprintf(stderr, "ustcp-host: %s: %s\n", ready, strerror(errno));
	}

	ev_run(h.ev, 0);

	ust_loop_stop(&h.loop);
	if (h.conn || h.listener)
		status = h.closed ? h.status : 1;
	if (h.ping_dst) {
		printf("%u packets transmitted, %u received\n", h.ping_sent, h.ping_replies);
		status = h.ping_replies ? 0 : 1;
	}
	write_counters(&h, counters);
	ust_tcp_destroy(&h.tcp);
	ust_stack_destroy(&h.st);
	ust_link_close(&h.link);
	return status;
}
