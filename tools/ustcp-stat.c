/*
 * ustcp-stat: the TCP connections of every process running on ustcp, like
 * `ss -tanpo`, or (-s) their counters.
 *
 * Each stack publishes an AF_UNIX stream socket RUN_DIR/PID.sock (RUN_DIR:
 * USTCP_RUN_DIR, with the library's default); on connect it writes a dump
 * and closes (dump() in stackthread/control.c; the format and its parser,
 * which trusts none of it, in stack/dump.h).
 *
 * A socket whose connect is refused belongs to a process that died without
 * removing it: it is skipped, and removed when we may.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "dump.h"
#include "rundir.h"

#define PROG "ustcp-stat"
#define READ_TIMEOUT_MS 2000
#define DUMP_MAX (64u << 20)

static void warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void warnx(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: " PROG " [-hs] [-p pid]\n");
}

/* ---- where the stacks are ---- */

/* ust_config_load's USTCP_RUN_DIR logic needs an interface and an address
 * to get that far: lend it harmless ones, and nothing else. */
static const char *run_dir_env(const char *name)
{
	if (strcmp(name, "USTCP_IFACE") == 0)
		return "lo";
	if (strcmp(name, "USTCP_ADDR") == 0)
		return "10.0.0.1/8";
	if (strcmp(name, "USTCP_RUN_DIR") == 0 || strcmp(name, "XDG_RUNTIME_DIR") == 0)
		return getenv(name);
	return NULL;
}

static int run_dir(char *out, size_t size)
{
	struct ust_config cfg;
	char err[UST_CONFIG_ERR_MAX];

	if (ust_config_load(&cfg, run_dir_env, err, sizeof(err)) < 0) {
		warnx("%s", err);
		return -1;
	}
	snprintf(out, size, "%s", cfg.run_dir);
	return 0;
}

/* ---- reading one stack's dump ---- */

/* The whole dump, NUL-terminated; NULL if the process is gone (refused:
 * *stale is set) or did not answer in time. */
static char *fetch(const char *path, bool *stale)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct pollfd p;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd;

	*stale = false;
	if (strlen(path) >= sizeof(sun.sun_path))
		return NULL;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return NULL;
	/* EAGAIN: its backlog is full: many readers at once, and the stack
	 * answers them at a bounded pace (on_ctl in stackthread/control.c).
	 * Up to a second of retries; past that, the next run will see it. */
	for (int tries = 0; connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0; tries++) {
		if (errno == EAGAIN && tries < 20) {
			poll(NULL, 0, 50);
			continue;
		}
		*stale = errno == ECONNREFUSED;
		close(fd);
		return NULL;
	}
	p.fd = fd;
	p.events = POLLIN;
	for (;;) {
		ssize_t n;
		if (cap - len < 65536) {
			char *nb;
			if (cap >= DUMP_MAX || !(nb = realloc(buf, cap + 65536 + 1)))
				goto fail;
			buf = nb;
			cap += 65536;
		}
		if (poll(&p, 1, READ_TIMEOUT_MS) != 1)
			goto fail;
		n = read(fd, buf + len, cap - len);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			goto fail;
		}
		len += (size_t)n;
	}
	close(fd);
	buf[len] = 0;
	return buf;
fail:
	close(fd);
	free(buf);
	return NULL;
}

/* ---- collecting every process ---- */

struct procs {
	struct ust_dump *v;
	size_t n;
};

static bool sock_name_pid(const char *name, int *pid)
{
	char *end;
	long v;

	if (name[0] < '1' || name[0] > '9')
		return false;
	v = strtol(name, &end, 10);
	if (strcmp(end, ".sock") != 0 || v <= 0 || v > 0x3fffffff)
		return false;
	*pid = (int)v;
	return true;
}

/* Reads RUN_DIR/PID.sock into ps. Stale sockets are removed when remove is
 * set and we are root or own them. */
static void collect_one(struct procs *ps, const char *dir, int pid, bool remove)
{
	char path[PATH_MAX];
	struct ust_dump p;
	struct stat st;
	bool stale;
	char *buf;

	if ((size_t)snprintf(path, sizeof(path), "%s/%d.sock", dir, pid) >= sizeof(path))
		return;
	buf = fetch(path, &stale);
	if (!buf) {
		if (stale && remove && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
		    (geteuid() == 0 || st.st_uid == geteuid()))
			unlink(path);
		return;
	}
	memset(&p, 0, sizeof(p));
	p.pid = pid;
	strcpy(p.kind, "program");
	/* A stack names its socket and its dump after the same pid: a dump
	 * naming another process is not a stack's. */
	if (!ust_dump_parse(buf, &p) || p.pid != pid) {
		warnx("%s: not a complete ustcp dump; skipped", path);
		ust_dump_free(&p);
	} else {
		struct ust_dump *nv = realloc(ps->v, (ps->n + 1) * sizeof(*nv));
		if (nv) {
			ps->v = nv;
			ps->v[ps->n++] = p;
		} else {
			ust_dump_free(&p);
		}
	}
	free(buf);
}

/* Whether dir's dumps can be believed: a directory that someone other than
 * its user (or root) controls could hold anybody's sockets (rundir.h).
 * A refusal is said once per directory; a missing one is just empty. */
static bool dir_trusted(const char *dir, uid_t owner)
{
	char why[128];
	int r = ust_run_dir_check(dir, owner, false, why, sizeof(why));

	if (r < 0 && r != -ENOENT)
		warnx("%s: refused: %s", dir, why);
	return r == 0;
}

/* Whose a run directory should be: the uid in a default per-user path
 * (ustcp(7): /run/user/UID/ustcp, /tmp/ustcp-UID), else ours. */
static uid_t dir_owner(const char *dir)
{
	unsigned uid;
	char rest[8];

	if (sscanf(dir, "/tmp/ustcp-%u%7s", &uid, rest) == 1 ||
	    sscanf(dir, "/run/user/%u/ustcp%7s", &uid, rest) == 1)
		return (uid_t)uid;
	return geteuid();
}

static void collect_dir(struct procs *ps, const char *dir, bool remove)
{
	DIR *d;
	struct dirent *e;
	int pid;

	if (!dir_trusted(dir, dir_owner(dir)) || !(d = opendir(dir)))
		return;
	while ((e = readdir(d)))
		if (sock_name_pid(e->d_name, &pid))
			collect_one(ps, dir, pid, remove);
	closedir(d);
}

static int by_pid(const void *a, const void *b)
{
	const struct ust_dump *x = a, *y = b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

/* ---- output ---- */

/* A duration as ss -o prints it (print_ms_timer in iproute2's ss.c). */
static void ss_ms(char *out, size_t size, long long timeout)
{
	long long minutes, secs, msecs;
	size_t n = 0;

	if (timeout <= 0) {
		snprintf(out, size, "0ms");
		return;
	}
	secs = timeout / 1000;
	minutes = secs / 60;
	secs %= 60;
	msecs = timeout % 1000;
	out[0] = 0;
	if (minutes) {
		msecs = 0;
		n += (size_t)snprintf(out + n, size - n, "%lldmin", minutes);
		if (minutes > 9)
			secs = 0;
	}
	if (secs) {
		if (secs > 9)
			msecs = 0;
		n += (size_t)snprintf(out + n, size - n, "%lld%s", secs, msecs ? "." : "sec");
	}
	if (msecs && n < size)
		snprintf(out + n, size - n, "%03lldms", msecs);
}

static size_t max_sz(size_t a, size_t b)
{
	return a > b ? a : b;
}

static void print_conns(const struct procs *ps)
{
	size_t w_state = 5, w_rq = 6, w_sq = 6, w_la = 13, w_lp = 4, w_ra = 12, w_rp = 4;
	char num[32];

	for (size_t i = 0; i < ps->n; i++) {
		for (size_t j = 0; j < ps->v[i].nconns; j++) {
			const struct ust_dump_conn *c = &ps->v[i].conns[j];
			w_state = max_sz(w_state, strlen(c->state));
			w_rq = max_sz(w_rq, (size_t)snprintf(num, sizeof(num), "%llu", c->rq));
			w_sq = max_sz(w_sq, (size_t)snprintf(num, sizeof(num), "%llu", c->sq));
			w_la = max_sz(w_la, strlen(c->laddr));
			w_lp = max_sz(w_lp, strlen(c->lport));
			w_ra = max_sz(w_ra, strlen(c->raddr));
			w_rp = max_sz(w_rp, strlen(c->rport));
		}
	}
	printf("%-*s %-*s %-*s %*s:%-*s %*s:%-*s Process\n", (int)w_state, "State", (int)w_rq, "Recv-Q",
	       (int)w_sq, "Send-Q", (int)w_la, "Local Address", (int)w_lp, "Port", (int)w_ra, "Peer Address",
	       (int)w_rp, "Port");
	for (size_t i = 0; i < ps->n; i++) {
		const struct ust_dump *p = &ps->v[i];
		for (size_t j = 0; j < p->nconns; j++) {
			const struct ust_dump_conn *c = &p->conns[j];
			char timer[64] = "";
			if (strcmp(c->timer, "off") != 0) {
				char d[32];
				ss_ms(d, sizeof(d), c->ms);
				snprintf(timer, sizeof(timer), " timer:(%s,%s,0)", c->timer, d);
			}
			printf("%-*s %-*llu %-*llu %*s:%-*s %*s:%-*s users:((\"%s\",pid=%d))", (int)w_state, c->state,
			       (int)w_rq, c->rq, (int)w_sq, c->sq, (int)w_la, c->laddr, (int)w_lp, c->lport, (int)w_ra,
			       c->raddr, (int)w_rp, c->rport, p->comm, p->pid);
			fputs(timer, stdout);
			putchar('\n');
		}
	}
}

static void print_counters(const struct procs *ps)
{
	for (size_t i = 0; i < ps->n; i++) {
		const struct ust_dump *p = &ps->v[i];
		size_t w = 0;

		printf("%sprocess %d (%s) %s %s %s%s%s, %zu connection%s\n", i ? "\n" : "", p->pid, p->comm, p->kind,
		       p->iface, p->addr, p->addr6[0] ? " " : "", p->addr6, p->nconns, p->nconns == 1 ? "" : "s");
		for (size_t j = 0; j < p->nctrs; j++)
			w = max_sz(w, strlen(p->ctrs[j].name));
		for (size_t j = 0; j < p->nctrs; j++)
			printf("  %-*s %llu\n", (int)w, p->ctrs[j].name, p->ctrs[j].value);
	}
}

int main(int argc, char **argv)
{
	struct procs ps = { NULL, 0 };
	char dir[PATH_MAX];
	bool counters = false;
	int pid = 0, c;

	while ((c = getopt(argc, argv, "hsp:")) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case 's':
			counters = true;
			break;
		case 'p': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*optarg < '1' || *optarg > '9' || *end || v <= 0 || v > 0x3fffffff) {
				warnx("-p \"%s\": not a process id", optarg);
				return 2;
			}
			pid = (int)v;
			break;
		}
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		warnx("unexpected argument \"%s\"", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (run_dir(dir, sizeof(dir)) < 0)
		return 1;

	if (pid) {
		if (dir_trusted(dir, dir_owner(dir)))
			collect_one(&ps, dir, pid, true);
		if (!ps.n) {
			warnx("no ustcp process with pid %d answers in %s", pid, dir);
			return 1;
		}
	} else {
		collect_dir(&ps, dir, true);
		/* root sees every user's stacks: those not run by root publish
		 * in $XDG_RUNTIME_DIR/ustcp or /tmp/ustcp-UID (ustcp(7)). */
		if (geteuid() == 0 && !getenv("USTCP_RUN_DIR")) {
			static const char *const others[] = { "/run/user/*/ustcp", "/tmp/ustcp-*" };
			for (size_t k = 0; k < UST_ARRAY_SIZE(others); k++) {
				glob_t g;
				if (glob(others[k], GLOB_ONLYDIR, NULL, &g) != 0)
					continue;
				for (size_t i = 0; i < g.gl_pathc; i++)
					if (strcmp(g.gl_pathv[i], dir) != 0)
						collect_dir(&ps, g.gl_pathv[i], false);
				globfree(&g);
			}
		}
	}
	if (ps.n)
		qsort(ps.v, ps.n, sizeof(*ps.v), by_pid); /* ps.v is NULL without any */
	if (counters)
		print_counters(&ps);
	else
		print_conns(&ps);
	for (size_t i = 0; i < ps.n; i++)
		ust_dump_free(&ps.v[i]);
	free(ps.v);
	return 0;
}
