/* connect_eintr ADDR PORT [restart]: a blocking connect() interrupted by
 * SIGALRM after one second, with a handler installed without or with
 * SA_RESTART. Prints what connect returned and when, e.g.
 *   connect=-1 EINTR after 1.0 s
 * Linux's connect fails with EINTR without SA_RESTART and goes on waiting
 * with it; the shim must do the same (tests/bats/090-lifetime.bats). */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void on_alarm(int sig)
{
	(void)sig;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	struct sockaddr_in in = { .sin_family = AF_INET };
	double start;
	int fd, r, e;

	if (argc < 3 || inet_pton(AF_INET, argv[1], &in.sin_addr) != 1) {
		fprintf(stderr, "usage: connect_eintr ADDR PORT [restart]\n");
		return 2;
	}
	in.sin_port = htons((unsigned short)atoi(argv[2]));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = argc > 3 && !strcmp(argv[3], "restart") ? SA_RESTART : 0;
	sigaction(SIGALRM, &sa, NULL);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	start = now();
	alarm(1);
	r = connect(fd, (struct sockaddr *)&in, sizeof(in));
	e = errno;
	printf("connect=%d %s after %.1f s\n", r, r ? strerrorname_np(e) : "", now() - start);
	return 0;
}
