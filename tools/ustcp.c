/*
 * ustcp: run a program on the ustcp stack with least privilege.
 *
 *   ustcp [-i iface] [-a addr/len] [-A addr6/len] [-g gw] [-u user]
 *         [--pcap file] [--close-log file] [--] command [args...]
 *
 * The options override USTCP_IFACE, USTCP_ADDR, USTCP_ADDR6, USTCP_GW,
 * USTCP_PCAP and USTCP_CLOSE_LOG; the result is checked with
 * ust_config_load before
 * anything runs. The launcher needs CAP_NET_RAW (root, or the file
 * capability cap_net_raw). It splits in two:
 *
 *   the program  keeps the launcher's pid (so its exit status is ours),
 *                loses every capability (effective, permitted, ambient,
 *                and the bounding set where we may change it), with -u
 *                becomes that user (supplementary groups dropped), gets
 *                LD_PRELOAD=libustcp.so and USTCP_BROKER_FD, and execs.
 *   the broker   a detached grandchild keeping CAP_NET_RAW and nothing
 *                else. It answers requests on a SOCK_SEQPACKET socketpair
 *                whose other end every process of the program's tree
 *                inherits, and exits when the last copy of that end is
 *                closed (recvmsg returns 0: the whole tree is gone).
 *
 * The protocol is in stack/broker.h (ust_broker_serve); the library's side
 * is broker_link in stackthread/start.c.
 */
#include <cap-ng.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "broker.h"
#include "config.h"
#include "fdbase.h"
#include "link.h"

#define PROG "ustcp"

#ifndef USTCP_LIBDIR
#define USTCP_LIBDIR "/usr/local/lib/ustcp"
#endif

/* Exit statuses besides the program's own (ustcp(1), EXIT STATUS). */
enum { EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_NOEXEC = 126, EXIT_NOTFOUND = 127 };

static void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

static void die(int status, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: " PROG " [-h] [-A addr6/len] [-a addr/len] [-g gw] [-i iface] [-u user]\n"
		   "             [--close-log file] [--pcap file] [--] command [arg ...]\n");
}

/* ---- options ---- */

struct opts {
	const char *user;
	/* Which variable each option set, to name the option in errors. */
	const char *set_by[6];
};

static const struct {
	const char *var;
	const char *opt;
} option_vars[] = {
	{ "USTCP_IFACE", "-i" },    { "USTCP_ADDR", "-a" },      { "USTCP_GW", "-g" },
	{ "USTCP_PCAP", "--pcap" }, { "USTCP_CLOSE_LOG", "--close-log" }, { "USTCP_ADDR6", "-A" },
};

/* A file option: relative names are taken from the launcher's directory,
 * where the user meant them, not from wherever the program goes later. */
static void set_path_var(const char *var, const char *v)
{
	char cwd[PATH_MAX], *abs;

	if (v[0] == '/' || !v[0] || !getcwd(cwd, sizeof(cwd))) {
		setenv(var, v, 1);
		return;
	}
	if (asprintf(&abs, "%s/%s", cwd, v) < 0)
		die(EXIT_FAIL, "out of memory");
	setenv(var, abs, 1);
	free(abs);
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	enum { OPT_PCAP = 256, OPT_CLOSE_LOG };
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "iface", required_argument, NULL, 'i' },
		{ "addr", required_argument, NULL, 'a' },
		{ "addr6", required_argument, NULL, 'A' },
		{ "gw", required_argument, NULL, 'g' },
		{ "user", required_argument, NULL, 'u' },
		{ "pcap", required_argument, NULL, OPT_PCAP },
		{ "close-log", required_argument, NULL, OPT_CLOSE_LOG },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:hA:a:g:i:u:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			exit(0);
		case 'i':
			setenv("USTCP_IFACE", optarg, 1);
			o->set_by[0] = "-i";
			break;
		case 'a':
			setenv("USTCP_ADDR", optarg, 1);
			o->set_by[1] = "-a";
			break;
		case 'A':
			setenv("USTCP_ADDR6", optarg, 1);
			o->set_by[5] = "-A";
			break;
		case 'g':
			setenv("USTCP_GW", optarg, 1);
			o->set_by[2] = "-g";
			break;
		case OPT_PCAP:
			set_path_var("USTCP_PCAP", optarg);
			o->set_by[3] = "--pcap";
			break;
		case OPT_CLOSE_LOG:
			set_path_var("USTCP_CLOSE_LOG", optarg);
			o->set_by[4] = "--close-log";
			break;
		case 'u':
			o->user = optarg;
			break;
		case ':':
			if (optopt > 0 && optopt < 256)
				die(EXIT_USAGE, "option -%c needs an argument (" PROG " -h for usage)", optopt);
			die(EXIT_USAGE, "option %s needs an argument (" PROG " -h for usage)", argv[optind - 1]);
		default:
			if (optopt > 0 && optopt < 256)
				die(EXIT_USAGE, "unknown option -%c (" PROG " -h for usage)", optopt);
			die(EXIT_USAGE, "unknown option %s (" PROG " -h for usage)", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		die(EXIT_USAGE, "no command given (" PROG " -h for usage)");
	return optind;
}

static const char *env(const char *name)
{
	return getenv(name);
}

/* A configuration error: one line, naming the option too if one set the
 * variable at fault (then it is a usage error). */
static void __attribute__((noreturn)) config_die(const struct opts *o, const char *err, int status)
{
	for (unsigned i = 0; i < UST_ARRAY_SIZE(option_vars); i++) {
		size_t n = strlen(option_vars[i].var);
		if (o->set_by[i] && strncmp(err, option_vars[i].var, n) == 0 &&
		    (err[n] == '=' || err[n] == ':'))
			die(status == EXIT_FAIL ? EXIT_FAIL : EXIT_USAGE, "option %s: %s", option_vars[i].opt, err);
	}
	die(EXIT_FAIL, "%s", err);
}

/* The configuration the program will see, checked now. */
static void check_config(const struct opts *o, struct ust_config *cfg)
{
	char err[UST_CONFIG_ERR_MAX];

	if (ust_config_load(cfg, env, err, sizeof(err)) < 0)
		config_die(o, err, EXIT_USAGE);
}

/* ---- the library ---- */

static bool readable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0;
}

/* USTCP_LIBRARY, else libustcp.so next to this binary (a build tree), else
 * the installed one. */
static void find_library(char *out, size_t size)
{
	const char *v = getenv("USTCP_LIBRARY");
	char exe[PATH_MAX];
	ssize_t n;

	if (v && *v) {
		if (!realpath(v, out) || !readable(out))
			die(EXIT_FAIL, "USTCP_LIBRARY=\"%s\": %s", v,
			    errno ? strerror(errno) : "not a readable file");
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		if ((size_t)snprintf(out, size, "%s/libustcp.so", dirname(exe)) < size && readable(out))
			return;
	}
	if ((size_t)snprintf(out, size, "%s/libustcp.so", USTCP_LIBDIR) < size && readable(out))
		return;
	die(EXIT_FAIL, "cannot find libustcp.so next to " PROG " or in " USTCP_LIBDIR
		       " (set USTCP_LIBRARY to its path)");
}

static void set_preload(const char *lib)
{
	const char *old = getenv("LD_PRELOAD");
	char *v;

	if (old && *old) {
		if (asprintf(&v, "%s %s", lib, old) < 0)
			die(EXIT_FAIL, "out of memory");
		setenv("LD_PRELOAD", v, 1);
		free(v);
	} else {
		setenv("LD_PRELOAD", lib, 1);
	}
}

/* ---- the broker ---- */

/* Could this process empty its bounding set (read before any change)? */
static bool can_setpcap;

/* Keeps CAP_NET_RAW, drops everything else (the bounding set too, where
 * the launcher may change it). */
static void broker_drop_caps(void)
{
	capng_clear(CAPNG_SELECT_ALL);
	capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET, CAP_NET_RAW);
	/* The bounding set first: it needs CAP_SETPCAP, which the next step
	 * drops. */
	if ((can_setpcap && capng_apply(CAPNG_SELECT_BOUNDS) < 0) || capng_apply(CAPNG_SELECT_CAPS) < 0 ||
	    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		_exit(EXIT_FAIL); /* the program's requests fail: EPIPE */
}

/* What the broker refused, for the operator: the program's processes are
 * the only ones that reach it, and a misbehaving program cannot be trusted
 * to count its own refusals. */
struct broker_tally {
	unsigned malformed; /* UST_BROKER_MALFORMED: EPROTO sent */
	unsigned foreign;   /* UST_BROKER_FOREIGN: EPERM sent */
	unsigned no_reply;  /* UST_BROKER_NO_REPLY: nowhere to answer */
};

static void broker_count(struct broker_tally *t, enum ust_broker_outcome out)
{
	if (out == UST_BROKER_MALFORMED)
		t->malformed++;
	else if (out == UST_BROKER_FOREIGN)
		t->foreign++;
	else if (out == UST_BROKER_NO_REPLY)
		t->no_reply++;
}

/* The launcher's stderr, kept for the broker's last word only where
 * nobody waits for it to close: a terminal, a file, a character device. A
 * pipe or a socket is read to its end ($(ustcp ... 2>&1), ssh), and the
 * broker lives as long as any process of the tree (a daemon's too), so
 * there it keeps nothing and syslog has the word alone. -1: not kept. */
static int broker_keep_stderr(void)
{
	struct stat sb;

	if (fstat(2, &sb) < 0 || !(S_ISREG(sb.st_mode) || S_ISCHR(sb.st_mode)))
		return -1;
	return fcntl(2, F_DUPFD_CLOEXEC, 4);
}

/* At the broker's exit, if it refused anything: one line on the
 * launcher's stderr (where kept) and one to syslog's authpriv facility,
 * where sudo and sshd report what they refuse. */
static void broker_report(int err_fd, const struct broker_tally *t, uid_t uid, unsigned claims)
{
	char line[320], more[64] = "";
	unsigned n = t->malformed + t->foreign + t->no_reply;

	if (!n && !claims)
		return;
	/* A claim of a port (steering, stack/steer.h) without its proof, or
	 * that the group's program had no room for. */
	if (claims)
		snprintf(more, sizeof(more), ", and %u claim%s of ports", claims, claims == 1 ? "" : "s");
	snprintf(line, sizeof(line),
		 "the broker refused %u request%s from the program's processes "
		 "(%u malformed, %u not from uid %u, %u with nowhere to answer)%s",
		 n, n == 1 ? "" : "s", t->malformed, t->foreign, (unsigned)uid, t->no_reply, more);
	if (err_fd >= 0)
		dprintf(err_fd, PROG ": %s\n", line);
	openlog("ustcp-broker", LOG_PID, LOG_AUTHPRIV);
	syslog(LOG_WARNING, "%s", line);
	closelog();
}

/* In the launcher's child: becomes the broker (a grandchild, so that it is
 * nobody's child in the program's tree: a shell's wait would collect it).
 * The child exits 0 once the broker is ready to serve, 1 if not. */
static void __attribute__((noreturn)) broker_start(int bfd, const struct ust_config *cfg, uid_t uid)
{
	static struct ust_broker broker;
	struct broker_tally tally = { 0 };
	enum ust_broker_outcome out;
	int null, err_fd;
	pid_t b;

	/* Detached: the terminal's signals are the program's; the broker
	 * goes when the program's tree has let go of its socket. */
	setsid();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	if (dup2(bfd, 3) < 0)
		_exit(EXIT_FAIL);
	syscall(SYS_close_range, 4u, ~0u, 0);
	broker_drop_caps();
	/* Nor does it hold the launcher's output: a caller reading it to the
	 * end ($(ustcp ...)) must not wait for the broker. What it refuses,
	 * the library reports on the program's stderr from the errno, and
	 * the broker counts for broker_report. */
	err_fd = broker_keep_stderr();
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
		_exit(EXIT_FAIL);
	if (null > 3)
		close(null);
	b = fork();
	if (b != 0)
		_exit(b < 0 ? EXIT_FAIL : 0);
	prctl(PR_SET_NAME, "ustcp-broker");
	/* The steering group, where the interface takes one. */
	ust_broker_init(&broker, cfg, uid);
	for (;;) {
		out = ust_broker_step(&broker, 3);
		broker_count(&tally, out);
		if (out == UST_BROKER_HANGUP || out == UST_BROKER_ERROR) {
			broker_report(err_fd, &tally, uid, broker.refused);
			_exit(out == UST_BROKER_HANGUP ? 0 : EXIT_FAIL);
		}
	}
}

/* ---- the program's side ---- */

/* Above the range programs pick numbers in (shells use 3-9 and 10+). */
static int high_fd(int fd)
{
	/* Just below the library's own (without FD_CLOEXEC: the program
	 * keeps it across exec). */
	int h = fcntl(fd, F_DUPFD, ust_fd_high_base() - 1);
	if (h < 0)
		h = fcntl(fd, F_DUPFD, 10);
	if (h < 0)
		die(EXIT_FAIL, "cannot place the broker's socket: %s", strerror(errno));
	close(fd);
	return h;
}

static void program_drop_caps(const struct passwd *pw)
{
	int r;

	capng_clear(CAPNG_SELECT_ALL);
	if (pw) {
		r = capng_change_id((int)pw->pw_uid, (int)pw->pw_gid,
				    CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING | CAPNG_CLEAR_AMBIENT);
		if (r < 0)
			die(EXIT_FAIL, "-u %s: cannot change to uid %u gid %u (capng_change_id: %d)", pw->pw_name,
			    (unsigned)pw->pw_uid, (unsigned)pw->pw_gid, r);
	} else {
		/* The bounding set goes first (it needs CAP_SETPCAP). A
		 * launcher with only the file capability cap_net_raw cannot
		 * change it, and needs not: it is not root, so exec grants
		 * it nothing. */
		if ((can_setpcap && capng_apply(CAPNG_SELECT_BOUNDS) < 0) || capng_apply(CAPNG_SELECT_CAPS) < 0 ||
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
			die(EXIT_FAIL, "cannot drop capabilities: %s", strerror(errno));
	}
	/* Trust, but verify: the program never runs with a capability we
	 * meant to take away. */
	capng_clear(CAPNG_SELECT_ALL);
	if (capng_get_caps_process() < 0)
		die(EXIT_FAIL, "cannot read the capabilities left");
	if (capng_have_capabilities(CAPNG_SELECT_CAPS) != CAPNG_NONE ||
	    capng_have_capabilities(CAPNG_SELECT_AMBIENT) != CAPNG_NONE)
		die(EXIT_FAIL, "capabilities remain after dropping them");
	if ((getuid() == 0 || geteuid() == 0) && capng_have_capabilities(CAPNG_SELECT_BOUNDS) != CAPNG_NONE)
		die(EXIT_FAIL, "cannot empty the bounding set (a root program would regain capabilities)");
}

static const struct passwd *lookup_user(const char *name)
{
	const struct passwd *pw;
	char *end;

	errno = 0;
	pw = getpwnam(name);
	if (!pw && *name >= '0' && *name <= '9') {
		unsigned long u = strtoul(name, &end, 10);
		if (!*end)
			pw = getpwuid((uid_t)u);
	}
	if (!pw)
		die(EXIT_USAGE, "option -u: \"%s\": no such user", name);
	return pw;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct ust_config cfg;
	const struct passwd *pw = NULL;
	char lib[PATH_MAX], err[256], num[16];
	int first, sv[2], fd, status;
	uid_t prog_uid;
	pid_t child;

	first = parse_opts(argc, argv, &o);
	check_config(&o, &cfg);

	if (capng_get_caps_process() < 0)
		die(EXIT_FAIL, "cannot read this process's capabilities");
	can_setpcap = capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP);
	if (!capng_have_capability(CAPNG_EFFECTIVE, CAP_NET_RAW))
		die(EXIT_FAIL, "needs CAP_NET_RAW: run it as root, or give it the file capability "
			       "(setcap cap_net_raw+ep %s)", argv[0]);
	if (o.user) {
		pw = lookup_user(o.user);
		if (!capng_have_capability(CAPNG_EFFECTIVE, CAP_SETUID) ||
		    !capng_have_capability(CAPNG_EFFECTIVE, CAP_SETGID))
			die(EXIT_USAGE, "option -u: changing user needs root");
	}
	prog_uid = pw ? pw->pw_uid : getuid();
	find_library(lib, sizeof(lib));

	/* Fail now, with the reason, rather than at the program's first
	 * socket(): the interface must exist and take our filter. */
	fd = ust_link_socket(&cfg, NULL, err, sizeof(err));
	if (fd < 0)
		config_die(&o, err, EXIT_FAIL);
	close(fd);

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		die(EXIT_FAIL, "socketpair: %s", strerror(errno));
	/* Before any client exists: every request carries checked
	 * credentials. */
	if (setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &(int){ 1 }, sizeof(int)) < 0)
		die(EXIT_FAIL, "SO_PASSCRED: %s", strerror(errno));
	fflush(NULL);
	child = fork();
	if (child < 0)
		die(EXIT_FAIL, "fork: %s", strerror(errno));
	if (child == 0) {
		close(sv[1]);
		broker_start(sv[0], &cfg, prog_uid);
	}
	close(sv[0]);
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die(EXIT_FAIL, "cannot start the broker");

	fd = high_fd(sv[1]);
	snprintf(num, sizeof(num), "%d", fd);
	setenv("USTCP_BROKER_FD", num, 1);
	set_preload(lib);
	program_drop_caps(pw);
	if (pw && access(lib, R_OK) < 0)
		die(EXIT_FAIL, "%s: not readable by user %s: %s", lib, pw->pw_name, strerror(errno));

	execvp(argv[first], argv + first);
	status = errno == ENOENT ? EXIT_NOTFOUND : EXIT_NOEXEC;
	die(status, "%s: %s", argv[first], strerror(errno));
}
