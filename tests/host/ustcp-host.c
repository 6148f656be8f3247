/* ustcp-host: runs a ustcp stack on USTCP_IFACE in a plain process, so that
 * tests can drive the stack on a real link before the shim exists (and
 * afterwards, without a program on top).
 *
 *   ustcp-host [-d seconds] [-r ready-file] [-s counters-file]
 *              [-p addr [-c count] [-i interval] [-W wait]]
 *              [-C addr:port | -L port] [-I in-file] [-O out-file]
 *
 * Configuration is the USTCP_* environment. It answers ARP and ping; with -p
 * it pings addr itself (ICMP echo from the stack), printing each reply or
 * "host unreachable" when ARP gets no answer; it stops when every request
 * was answered, when the host is found unreachable, or -W seconds (default
 * 5) after the last request. On SIGINT/SIGTERM, at the end
 * of -d, or when the pings are done, it writes its counters to stderr (and to
 * the -s file) and exits: 0, or 1 if pings went unanswered.
 *
 * TCP: with -C it connects to addr:port, with -L it accepts one connection
 * on port. Either way it sends the contents of -I (if given) and then shuts
 * its sending side (FIN; without -I it sends nothing and waits for the
 * peer's FIN), writes everything it receives to -O (default:
 * nothing kept, only counted), closes when the peer has closed too, and
 * exits when the connection is CLOSED (after TIME-WAIT when it closed
 * first: set USTCP_MSL small). A line on stderr reports the bytes each way
 * and how the connection ended; the exit status is 0 for an orderly close,
 * 1 otherwise. */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <getopt.h>
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
	unsigned pending;          /* events since the last pump */
	int in_fd, out_fd;
	bool in_done, out_done, closed;
	uint64_t sent, received;
	uint8_t buf[65536];
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
			"                  [-C addr:port | -L port] [-I in-file] [-O out-file]\n");
	exit(2);
}

/* TCP events only note what happened; the pump acts after TCP returns. */
static void on_tcp_event(void *ctx, struct ust_tcb *tcb, unsigned events)
{
	struct host *h = ctx;

	h->pending |= events;
}

static void on_tcp_closed(void *ctx, const struct ust_tcb *t)
{
	struct host *h = ctx;
	const struct ust_tcp_record *r = &t->rec;
	const char *who = ust_tcp_initiator_name(r->initiator);

	if (t != h->conn)
		return;
	fprintf(stderr, "ustcp-host: connection closed: outcome=%s initiator=%s sent=%llu received=%llu%s%s\n",
		ust_tcp_outcome_name(r->outcome), who ? who : "none",
		(unsigned long long)r->bytes_sent, (unsigned long long)r->bytes_received,
		*r->reason ? " reason=" : "", r->reason);
	h->status = r->outcome == UST_OUTCOME_ORDERLY ? 0 : 1;
	h->closed = true;
}

static void pump(struct ust_loop *l, ust_time now)
{
	struct host *h = l->ctx;
	int err;

	if (!h->conn && h->listener && (h->pending & UST_TCP_EV_ACCEPT)) {
		h->conn = ust_tcp_accept(h->listener, h, &err);
		if (h->conn) {
			ust_tcp_close(h->listener, now); /* one connection */
			h->listener = NULL;
		}
	}
	h->pending = 0;
	if (!h->conn)
		return;
	if (h->closed) {
		ev_break(h->ev, EVBREAK_ALL);
		return;
	}
	/* Receive everything there is. */
	while (!h->out_done) {
		long n = ust_tcp_receive(h->conn, h->buf, sizeof(h->buf), now);
		if (n == -EAGAIN)
			break;
		if (n <= 0) {
			if (n < 0)
				fprintf(stderr, "ustcp-host: receive: %s\n", strerror((int)-n));
			h->out_done = true;
			break;
		}
		h->received += (uint64_t)n;
		if (h->out_fd >= 0 && write(h->out_fd, h->buf, (size_t)n) != n) {
			fprintf(stderr, "ustcp-host: write: %s\n", strerror(errno));
			h->out_fd = -1;
		}
	}
	/* Without -I nothing is sent: the sending side stays open until the
	 * peer has finished (so nc -N peers keep sending). */
	if (h->in_fd < 0 && h->out_done)
		h->in_done = true;
	/* Send what fits. */
	while (!h->in_done && h->in_fd >= 0) {
		struct ust_tcp_status s;
		ssize_t n;
		long m;

		ust_tcp_status(h->conn, &s);
		if (s.state == UST_TCP_SYN_SENT || s.state == UST_TCP_SYN_RECEIVED || s.snd_space == 0)
			break;
		n = pread(h->in_fd, h->buf, s.snd_space < sizeof(h->buf) ? s.snd_space : sizeof(h->buf),
			  (off_t)h->sent);
		if (n <= 0) {
			h->in_done = true;
			ust_tcp_shutdown(h->conn, SHUT_WR, now);
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
	if (h->in_done && h->out_done && !h->closed) {
		struct ust_tcb *c = h->conn;
		ust_tcp_close(c, now);
		/* The block lives on (TIME-WAIT…) until CLOSED. */
	}
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

static void on_unreachable(void *ctx, uint32_t dst, int err, ust_time now)
{
	struct host *h = host_of(ctx);
	char a[16];

	ust_tcp_unreachable(ctx, dst, err, now);
	printf("%s: %s\n", ust_ip_str(dst, a), strerror(err));
	fflush(stdout);
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
	for (unsigned i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i + h->ping_sent);
	h->ping_sent_at[h->ping_sent % UST_ARRAY_SIZE(h->ping_sent_at)] = now;
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

static void write_counters(const struct host *h, const char *path)
{
	FILE *f;

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
	while ((c = getopt(argc, argv, "c:d:i:p:r:s:W:C:L:I:O:")) != -1) {
		switch (c) {
		case 'C': connect_to = optarg; break;
		case 'L': listen_port = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'I': in_file = optarg; break;
		case 'O': out_file = optarg; break;
		case 'c': h.ping_count = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'd': duration = strtod(optarg, NULL); break;
		case 'i': h.ping_interval = strtod(optarg, NULL); break;
		case 'p':
			if (ust_parse_ipv4(optarg, &h.ping_dst))
				usage();
			break;
		case 'r': ready = optarg; break;
		case 's': counters = optarg; break;
		case 'W': h.ping_wait = strtod(optarg, NULL); break;
		default: usage();
		}
	}
	if (optind != argc || h.ping_interval <= 0 || h.ping_wait <= 0 || h.ping_count == 0)
		usage();

	if (ust_config_load(&h.cfg, host_getenv, err, sizeof(err)) < 0) {
		fprintf(stderr, "ustcp-host: %s\n", err);
		return 2;
	}
	ust_log_setup(h.cfg.log_level, -1);
	r = ust_link_open(&h.link, h.cfg.iface, h.cfg.addr, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "ustcp-host: %s\n", err);
		return 1;
	}
	if (h.cfg.pcap[0] && (r = ust_pcap_open(&h.link.pcap, h.cfg.pcap, h.link.l3)) < 0) {
		fprintf(stderr, "ustcp-host: USTCP_PCAP=\"%s\": %s\n", h.cfg.pcap, strerror(-r));
		return 1;
	}
	ust_link_netif(&h.link, h.cfg.addr, h.cfg.prefix, h.cfg.gw, h.cfg.mtu, &nif);
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
			char a[32];
			const char *colon = strrchr(connect_to, ':');
			uint32_t addr;
			if (!colon || (size_t)(colon - connect_to) >= sizeof(a))
				usage();
			memcpy(a, connect_to, (size_t)(colon - connect_to));
			a[colon - connect_to] = 0;
			if (ust_parse_ipv4(a, &addr))
				usage();
			r = ust_tcp_connect(t, addr, (uint16_t)atoi(colon + 1), ust_now());
			h.conn = t;
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
	if (duration > 0) {
		ev_timer_init(&h.end_timer, on_end, duration, 0.);
		ev_timer_start(h.ev, &h.end_timer);
	}
	if (h.ping_dst) {
		ev_timer_init(&h.ping_timer, on_ping_timer, 0., 0.);
		ev_timer_start(h.ev, &h.ping_timer);
	}
	if (ready) {
		int fd = open(ready, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd >= 0)
			close(fd);
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
