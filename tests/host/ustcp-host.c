/* ustcp-host: runs a ustcp stack on USTCP_IFACE in a plain process, so that
 * tests can drive the stack on a real link before the shim exists (and
 * afterwards, without a program on top).
 *
 *   ustcp-host [-d seconds] [-r ready-file] [-s counters-file]
 *              [-p addr [-c count] [-i interval] [-W wait]]
 *
 * Configuration is the USTCP_* environment. It answers ARP and ping; with -p
 * it pings addr itself (ICMP echo from the stack), printing each reply or
 * "host unreachable" when ARP gets no answer; it stops when every request
 * was answered, when the host is found unreachable, or -W seconds (default
 * 5) after the last request. On SIGINT/SIGTERM, at the end
 * of -d, or when the pings are done, it writes its counters to stderr (and to
 * the -s file) and exits: 0, or 1 if pings went unanswered. */
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
};

static const char *host_getenv(const char *name)
{
	return getenv(name);
}

static void usage(void)
{
	fprintf(stderr, "usage: ustcp-host [-d seconds] [-r ready-file] [-s counters-file]\n"
			"                  [-p addr [-c count] [-i interval] [-W wait]]\n");
	exit(2);
}

static void on_echo_reply(void *ctx, uint32_t from, uint32_t rest, const uint8_t *data, size_t len,
			  ust_time now)
{
	struct host *h = ctx;
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
	struct host *h = ctx;
	char a[16];

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

	h.ping_count = 3;
	h.ping_interval = 1;
	h.ping_wait = 5;
	while ((c = getopt(argc, argv, "c:d:i:p:r:s:W:")) != -1) {
		switch (c) {
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
	h.st.upper.ctx = &h;
	h.st.upper.echo_reply = on_echo_reply;
	h.st.upper.unreachable = on_unreachable;

	h.ev = ev_default_loop(EVFLAG_AUTO);
	ust_loop_start(&h.loop, h.ev, &h.st, &h.link);
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
	if (h.ping_dst) {
		printf("%u packets transmitted, %u received\n", h.ping_sent, h.ping_replies);
		status = h.ping_replies ? 0 : 1;
	}
	write_counters(&h, counters);
	ust_stack_destroy(&h.st);
	ust_link_close(&h.link);
	return status;
}
