/* recv_wait ADDR PORT CASE [CALL]: one blocking read on a TCP connection to
 * ADDR:PORT, in the way CASE says, with CALL (recv, read, readv, recvfrom,
 * recvmsg; default recv). Prints what the read returned and when, e.g.
 *   recv=-1 EINTR after 0.3 s
 * The peer sends one byte 1.5 s after accepting (090-lifetime.bats's
 * LATE_PEER_PY), or echoes (echo_server.py) for "pingpong".
 *
 * CASE:
 *   norestart   SIGALRM at 0.3 s, handler without SA_RESTART: EINTR at 0.3 s
 *   restart     the same with SA_RESTART: the byte at 1.5 s
 *   mixed       as norestart, and a SIGUSR1 handler with SA_RESTART
 *               installed too: EINTR at 0.3 s
 *   timeo       SO_RCVTIMEO 0.5 s: EAGAIN at 0.5 s
 *   timeo-sig   SO_RCVTIMEO 3 s, SIGALRM at 0.3 s with SA_RESTART: EINTR at
 *               0.3 s (Linux never restarts a read with a timeout)
 *   late-handler no handler at first; a thread installs one without
 *               SA_RESTART at 0.1 s, SIGALRM at 0.3 s: EINTR at 0.3 s
 *   pingpong N  N 64-byte messages, each written and its echo read back:
 *               prints the reading thread's voluntary context switches
 *               per message (getrusage RUSAGE_THREAD), whether every
 *               echo matched, and the median round trip
 * These are Linux's answers (measured with the kernel's TCP by the [kernel]
 * twins of the tests in tests/bats/060-shim.bats); ustcp's blocking reads
 * wait in poll (shim/io.c) and must give the same. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static void on_signal(int sig)
{
	(void)sig;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void handle(int sig, int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = flags;
	sigaction(sig, &sa, NULL);
}

/* SIGALRM in ms milliseconds (setitimer: alarm() counts whole seconds). */
static void alarm_in(int ms)
{
	struct itimerval it = { .it_value = { .tv_sec = ms / 1000, .tv_usec = ms % 1000 * 1000 } };

	setitimer(ITIMER_REAL, &it, NULL);
}

static ssize_t read_with(const char *call, int fd, char *buf, size_t n)
{
	struct iovec iov[2] = { { buf, n / 2 }, { buf + n / 2, n - n / 2 } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
	struct sockaddr_in from;
	socklen_t flen = sizeof(from);

	if (!strcmp(call, "read"))
		return read(fd, buf, n);
	if (!strcmp(call, "readv"))
		return readv(fd, iov, 2);
	if (!strcmp(call, "recvfrom"))
		return recvfrom(fd, buf, n, 0, (struct sockaddr *)&from, &flen);
	if (!strcmp(call, "recvmsg"))
		return recvmsg(fd, &m, 0);
	return recv(fd, buf, n, 0);
}

static void *install_late(void *arg)
{
	(void)arg;
	usleep(100000);
	handle(SIGALRM, 0);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int pingpong(int fd, long n)
{
	char out[64], in[64];
	struct rusage before, after;
	bool same = true;
	double *rtt = calloc((size_t)n, sizeof(*rtt));

	if (!rtt)
		return 1;
	getrusage(RUSAGE_THREAD, &before);
	for (long i = 0; i < n; i++) {
		size_t got = 0;
		double t0 = now();
		memset(out, (int)(i & 0xff), sizeof(out));
		if (send(fd, out, sizeof(out), 0) != (ssize_t)sizeof(out)) {
			perror("send");
			return 1;
		}
		while (got < sizeof(in)) {
			ssize_t r = recv(fd, in + got, sizeof(in) - got, 0);
			if (r <= 0) {
				fprintf(stderr, "recv: %s\n", r ? strerror(errno) : "end of file");
				return 1;
			}
			got += (size_t)r;
		}
		same = same && !memcmp(in, out, sizeof(in));
		rtt[i] = now() - t0;
	}
	getrusage(RUSAGE_THREAD, &after);
	qsort(rtt, (size_t)n, sizeof(*rtt), cmp_double);
	/* The time is for people (a figure, never asserted). */
	printf("switches per message %.2f, echoes %s, round trip p50 %.1f us\n",
	       (double)(after.ru_nvcsw - before.ru_nvcsw) / (double)n, same ? "match" : "differ", rtt[n / 2] * 1e6);
	free(rtt);
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in in = { .sin_family = AF_INET };
	const char *kase, *call = "recv";
	pthread_t th;
	double start;
	char buf[16];
	ssize_t r;
	int fd, e;

	if (argc < 4 || inet_pton(AF_INET, argv[1], &in.sin_addr) != 1) {
		fprintf(stderr, "usage: recv_wait ADDR PORT CASE [CALL | N]\n");
		return 2;
	}
	in.sin_port = htons((unsigned short)atoi(argv[2]));
	kase = argv[3];
	if (argc > 4)
		call = argv[4];
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&in, sizeof(in)) < 0) {
		perror("connect");
		return 1;
	}
	if (!strcmp(kase, "pingpong"))
		return pingpong(fd, argc > 4 ? atol(argv[4]) : 1000);
	if (!strcmp(kase, "norestart") || !strcmp(kase, "mixed")) {
		handle(SIGALRM, 0);
		if (!strcmp(kase, "mixed"))
			handle(SIGUSR1, SA_RESTART);
		alarm_in(300);
	} else if (!strcmp(kase, "restart")) {
		handle(SIGALRM, SA_RESTART);
		alarm_in(300);
	} else if (!strcmp(kase, "timeo") || !strcmp(kase, "timeo-sig")) {
		struct timeval tv = { .tv_sec = !strcmp(kase, "timeo") ? 0 : 3,
				      .tv_usec = !strcmp(kase, "timeo") ? 500000 : 0 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (!strcmp(kase, "timeo-sig")) {
			handle(SIGALRM, SA_RESTART);
			alarm_in(300);
		}
	} else if (!strcmp(kase, "late-handler")) {
		signal(SIGALRM, SIG_IGN);
		pthread_create(&th, NULL, install_late, NULL);
		alarm_in(300);
	} else {
		fprintf(stderr, "recv_wait: unknown case %s\n", kase);
		return 2;
	}
	start = now();
	r = read_with(call, fd, buf, sizeof(buf));
	e = errno;
	printf("%s=%zd%s%s after %.1f s\n", call, r, r < 0 ? " " : "", r < 0 ? strerrorname_np(e) : "",
	       now() - start);
	return 0;
}
