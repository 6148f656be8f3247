/* What the operator sees: the close log (USTCP_CLOSE_LOG) and the control
 * socket ustcp-stat reads (RUN_DIR/PID.sock). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "stack_impl.h"

static void json_str(char *out, size_t size, const char *s)
{
	size_t o = 0;

	for (; *s && o + 7 < size; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			o += (size_t)snprintf(out + o, size - o, "\\%c", ch);
		else if (ch < 0x20)
			o += (size_t)snprintf(out + o, size - o, "\\u%04x", ch);
		else
			out[o++] = (char)ch;
	}
	out[o] = 0;
}

/* "a.b.c.d:port", or "[v6]:port" as ss writes an IPv6 end. An IPv4 end
 * is written as IPv4 also on a dual-stack socket, where ss writes
 * [::ffff:a.b.c.d]: the engine does not know the socket's family here. */
static const char *end_str(const struct ust_ip6 *a, uint16_t port, char buf[64])
{
	char s[48];

	if (ust_ip6_is_v4mapped(a)) {
		uint32_t v = ust_ip6_to_v4(a);
		snprintf(buf, 64, "%u.%u.%u.%u:%u", v >> 24, v >> 16 & 255, v >> 8 & 255, v & 255, port);
	} else {
		snprintf(buf, 64, "[%s]:%u", ust_ip6_str(a, s), port);
	}
	return buf;
}

int us_close_log_fd(void)
{
	if (!us_st.cfg->close_log[0] || us_st.close_log_off)
		return -1;
	if (us_st.close_log_fd < 0) {
		int fd = open(us_st.cfg->close_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0) {
			ust_log(UST_LOG_ERROR, "USTCP_CLOSE_LOG=\"%s\": %s", us_st.cfg->close_log, strerror(errno));
			us_st.close_log_off = true;
			return -1;
		}
		us_st.close_log_fd = us_fd_high(fd);
	}
	return us_st.close_log_fd;
}

/* USTCP_CLOSE_LOG: one JSON line per finished connection (ustcp(7), "Close log"). */
void us_close_log(void *ctx, const struct ust_tcb *t)
{
	const struct ust_tcp_record *r = ust_tcp_record(t);
	struct ust_tcp_ends e;
	const char *who = ust_tcp_initiator_name(r->initiator);
	char line[1024], cause[128], reason[128], states[UST_TCP_HISTORY_MAX * 16], ts[64], local[64], remote[64];
	struct timespec wall;
	struct tm tm;
	ust_time ago = ust_now() - r->end;
	int n, fd;
	size_t o = 0;
	pid_t pid = us_st.program;
	const char *death = us_st.death;

	/* A TIME-WAIT handed over from another keeper: its program's line,
	 * in its close log. */
	if (ust_tcp_tag(t)) {
		fd = us_twc_origin(ust_tcp_tag(t), &pid, &death);
		if (fd >= 0)
			goto write;
		us_twc_origin_put(ust_tcp_tag(t));
		return;
	}
	if ((fd = us_close_log_fd()) < 0)
		return;
write:
	ust_tcp_ends(t, &e);
	clock_gettime(CLOCK_REALTIME, &wall);
	wall.tv_sec -= (time_t)(ago / 1000000u);
	wall.tv_nsec -= (long)(ago % 1000000u) * 1000;
	if (wall.tv_nsec < 0) {
		wall.tv_nsec += 1000000000;
		wall.tv_sec--;
	}
	gmtime_r(&wall.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, wall.tv_nsec / 1000000);
	for (unsigned i = 0; i < r->nstates; i++)
		o += (size_t)snprintf(states + o, sizeof(states) - o, "%s\"%s\"", i ? "," : "",
				      ust_tcp_state_name((enum ust_tcp_state)r->states[i]));
	states[o] = 0;
	/* A killed program's connections: the signal, before TCP's own. */
	snprintf(cause, sizeof(cause), "%s%s%s", death, death[0] && r->reason && r->reason[0] ? ": " : "",
		 r->reason ? r->reason : "");
	json_str(reason, sizeof(reason), cause);
	n = snprintf(line, sizeof(line),
		     "{\"ts\":\"%s\",\"pid\":%d,\"local\":\"%s\",\"remote\":\"%s\","
		     "\"outcome\":\"%s\",\"initiator\":%s%s%s,\"reason\":\"%s\",\"states\":[%s],"
		     "\"bytes_sent\":%llu,\"bytes_received\":%llu,\"duration_ms\":%llu}\n",
		     ts, (int)pid, end_str(&e.laddr, e.lport, local), end_str(&e.raddr, e.rport, remote),
		     ust_tcp_outcome_name(r->outcome), who ? "\"" : "",
		     who ? who : "null", who ? "\"" : "", reason, states,
		     (unsigned long long)r->bytes_sent, (unsigned long long)r->bytes_received,
		     (unsigned long long)((r->end - r->start) / 1000u));
	if (n > 0 && REAL(write)(fd, line, (size_t)n) < 0)
		ust_log(UST_LOG_WARN, "close log: %s", strerror(errno));
	if (ust_tcp_tag(t))
		us_twc_origin_put(ust_tcp_tag(t));
}


/* ---- the control socket (ustcp-stat) ---- */

/* One "tcp" line of the dump (below) per control block that is a
 * connection or a listener. */
struct dump_ctx {
	FILE *f;
	ust_time now;
};

static void dump_tcb(struct ust_tcb *t, void *arg)
{
	/* As /proc/net/tcp's timer_active (tcp4_seq_show): retransmission,
	 * RACK's reordering window and the loss probe all read "on"; delayed
	 * ACK, compressed SACKs and pacing are not shown. */
	static const char *const timers[UST_TT_N] = {
		[UST_TT_RTX] = "on",	     [UST_TT_DELACK] = "off", [UST_TT_KEEPALIVE] = "keepalive",
		[UST_TT_TIMEWAIT] = "timewait", [UST_TT_REO] = "on",   [UST_TT_PACE] = "off",
		[UST_TT_TLP] = "on",	     [UST_TT_SHED] = "off",   [UST_TT_SACK] = "off",
	};
	const struct dump_ctx *d = arg;
	enum ust_tcp_state state = ust_tcp_get_state(t);
	struct ust_tcp_status st;
	struct ust_tcp_ends e;
	const char *timer = "off";
	char local[64], remote[64];
	long long ms = 0;
	unsigned rq, sq;

	ust_tcp_ends(t, &e);
	if (!e.lport || (state == UST_TCP_CLOSED && !ust_tcp_record(t)->nstates))
		return;
	ust_tcp_status(t, &st);
	if (st.timer >= 0) {
		timer = ust_tcp_persisting(t) && st.timer == UST_TT_RTX ? "persist" : timers[st.timer];
		ms = st.timer_due > d->now ? (long long)((st.timer_due - d->now) / 1000u) : 0;
	}
	rq = st.rcv_queued;
	sq = st.snd_queued;
	if (state == UST_TCP_LISTEN) {
		/* As ss: the queue, the program's backlog, and the address it
		 * bound (0.0.0.0 for any). The relay's own bookkeeping moves
		 * TCP's backlog. */
		const struct us_conn *l = ust_tcp_user(t);
		rq = ust_tcp_acceptq_len(t) + (l ? l->nout : 0);
		sq = l ? l->backlog : ust_tcp_backlog(t);
		if (l && ust_ip6_is_v4mapped(&e.laddr))
			e.laddr = ust_ip6_from_v4(us_addr(atomic_load(&l->sock->local)));
	}
	fprintf(d->f, "tcp %s %u %u %s %s %s %lld\n", ust_tcp_state_name(state), rq, sq,
		end_str(&e.laddr, e.lport, local), end_str(&e.raddr, e.rport, remote), timer, ms);
}

/* What ustcp-stat reads, one record per line (ustcp-stat(1) parses it):
 *   ustcp 1
 *   process PID COMM IFACE ADDR/PREFIX program [ADDR6/PREFIX6]
 *   tcp STATE RECV-Q SEND-Q LOCAL PEER TIMER MS     (STATE and TIMER as ss)
 *   counter NAME VALUE
 *   end */
static void dump(FILE *f)
{
	struct dump_ctx d = { f, ust_now() };
	char comm[32] = "?";
	FILE *cf = fopen("/proc/self/comm", "re");

	if (cf) {
		if (fgets(comm, sizeof(comm), cf))
			comm[strcspn(comm, "\n ")] = 0;
		fclose(cf);
	}
	fprintf(f, "ustcp 1\nprocess %d %s %s %u.%u.%u.%u/%u %s", (int)us_st.pid, comm, us_st.cfg->iface,
		us_st.cfg->addr >> 24, us_st.cfg->addr >> 16 & 255, us_st.cfg->addr >> 8 & 255, us_st.cfg->addr & 255, us_st.cfg->prefix,
		us_st.keeper ? "keeper" : "program");
	/* The IPv6 address last: an older ustcp-stat reads the line's first
	 * five fields and ignores the rest. */
	if (us_st.cfg->has_addr6) {
		char a6[48];

		fprintf(f, " %s/%u", ust_ip6_str(&us_st.cfg->addr6, a6), us_st.cfg->prefix6);
	}
	fputc('\n', f);
	ust_tcp_each(&us_st.tcp, dump_tcb, &d);
	ust_link_count_overruns(&us_st.link);
	us_steer_count_overruns();
	for (unsigned i = 0; i < UST_EVENT_MAX; i++)
		fprintf(f, "counter %s %llu\n", ust_event_name((enum ust_event)i),
			(unsigned long long)us_st.st.ctr.event[i]);
	for (unsigned i = 1; i < UST_DROP_MAX; i++)
		fprintf(f, "counter drop.%s %llu\n", ust_drop_name((enum ust_drop)i),
			(unsigned long long)us_st.st.ctr.drop[i]);
	fprintf(f, "end\n");
}

/* The control socket's share of the stack thread: after each caller it
 * rests CTL_REST_FACTOR times as long as the caller took, and at least
 * CTL_MIN_REST, with the socket unwatched. However often it is asked, it
 * takes at most 1/(1 + CTL_REST_FACTOR) of the thread and CTL_MIN_REST
 * bounds the callers per second; callers wait in the listen backlog, and
 * beyond it connect() waits or fails as for any busy AF_UNIX server. */
#define CTL_REST_FACTOR 20
#define CTL_MIN_REST UST_MS(10)

/* Only this process's user and root may read the dump: it names every
 * connection. The file's mode says the same; this holds where the mode
 * cannot (the instant before chmod, a directory opened up later). */
static bool ctl_caller_allowed(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (REAL(getsockopt)(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	return us_uid_trusted(cred.uid, geteuid());
}

static void ctl_answer(int fd)
{
	char *buf = NULL;
	size_t len = 0, off = 0;
	int big = 8 << 20;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return;
	dump(f);
	fclose(f);
	/* The whole answer goes in one go or not at all: the stack thread
	 * never waits for a reader. */
	REAL(setsockopt)(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	while (off < len) {
		ssize_t r = REAL(send)(fd, buf + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	free(buf);
}

static void on_ctl(struct ev_loop *ev, ev_io *w, int revents)
{
	ust_time start = ust_now(), rest;
	int fd = REAL(accept4)(us_st.ctl_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (ctl_caller_allowed(fd))
		ctl_answer(fd);
	else
		us_st.st.ctr.event[UST_EV_CTL_REFUSED]++;
	REAL(close)(fd);
	rest = (ust_now() - start) * CTL_REST_FACTOR;
	ev_io_stop(ev, w);
	ev_timer_set(&us_st.ctl_rest, (double)(rest > CTL_MIN_REST ? rest : CTL_MIN_REST) / UST_SEC(1), 0.);
	ev_timer_start(ev, &us_st.ctl_rest);
}

static void on_ctl_rested(struct ev_loop *ev, ev_timer *w, int revents)
{
	ev_io_start(ev, &us_st.ctl);
}

/* Removes the control sockets of this user's processes that ended without
 * removing theirs (a SIGKILL, a crash): PID.sock whose PID is gone. A live
 * process that reused such a pid keeps the file until ustcp-stat finds it
 * dead. Once per start, over one directory of our own. */
static void remove_stale_sockets(void)
{
	DIR *d = opendir(us_st.cfg->run_dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		char path[PATH_MAX + 300];
		struct stat st;

		if (end == e->d_name || strcmp(end, ".sock") != 0 || pid <= 0 || pid > INT_MAX ||
		    pid == getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "%s/%s", us_st.cfg->run_dir, e->d_name);
		if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_uid == geteuid())
			unlink(path);
	}
	closedir(d);
}

/* Publishes RUN_DIR/PID.sock; without it ustcp-stat does not see this
 * process, which is worth a warning but not a failure. The socket is the
 * owner's alone (mode 0600, and on_ctl checks each caller's credentials). */
void us_ctl_open(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, r;

	if (!us_run_dir_usable(us_st.cfg->run_dir))
		return;
	if ((size_t)snprintf(us_st.ctl_path, sizeof(us_st.ctl_path), "%s/%d.sock", us_st.cfg->run_dir,
			     (int)getpid()) >= sizeof(sun.sun_path))
		return;
	remove_stale_sockets();
	strcpy(sun.sun_path, us_st.ctl_path);
	unlink(us_st.ctl_path); /* a previous process with our pid */
	fd = REAL(socket)(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	fd = us_fd_fixed(fd);
	/* Connecting needs write permission on the file: 0600 leaves the
	 * owner (and root). Before the chmod the umask's mode holds for an
	 * instant; on_ctl's credential check covers that instant. */
	r = REAL(bind)(fd, (struct sockaddr *)&sun, sizeof(sun));
	if (r == 0)
		chmod(us_st.ctl_path, 0600);
	if (r < 0 || REAL(listen)(fd, 64) < 0) {
		ust_log(UST_LOG_WARN, "%s: %s (ustcp-stat will not see this process)", us_st.ctl_path,
			strerror(errno));
		REAL(close)(fd);
		us_st.ctl_path[0] = 0;
		return;
	}
	us_st.ctl_fd = fd;
	ev_io_init(&us_st.ctl, on_ctl, fd, EV_READ);
	ev_io_start(us_st.ev, &us_st.ctl);
	ev_init(&us_st.ctl_rest, on_ctl_rested);
}

void us_ctl_close(bool in_loop)
{
	if (us_st.ctl_fd < 0)
		return;
	if (in_loop) {
		ev_io_stop(us_st.ev, &us_st.ctl);
		ev_timer_stop(us_st.ev, &us_st.ctl_rest);
	}
	REAL(close)(us_st.ctl_fd);
	us_st.ctl_fd = -1;
	us_st.ctl_path[0] = 0;
}
