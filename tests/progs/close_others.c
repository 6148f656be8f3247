/* close_others ADDR PORT range|from|each: a program that closes "every other
 * fd" as daemons and launchers do, while it holds a TCP connection.
 *
 * Connects to ADDR:PORT (an echo server), keeps the socket as fd 100, then
 * closes everything else from 3 up: with close_range(3, 99, 0) and
 * close_range(101, ~0U, 0) ("range"), or close_range(3, 99, 0) and
 * closefrom(101) ("from"), or with close() on each number up to the soft
 * limit, as an old-style daemon does ("each"; the limit is lowered to 4096
 * first, so that the loop is short). Then it sends "ping\n" on fd 100,
 * shuts its sending side, and reads the echo to EOF; then it opens a second
 * connection and does the same. Prints "echo 1: ping" and "echo 2: ping",
 * or the call that failed; "each" first prints how many of its closes
 * succeeded on numbers that were not open when it started: on Linux one,
 * the socket's first number. On Linux this simply works; under ustcp the
 * stack's own fds (packet socket, relays, eventfds) live in the same table
 * and must survive, and must look absent to close() (EBADF), as they are
 * on Linux (tests/bats/060-shim.bats). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static int dial(const char *addr, int port)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || inet_pton(AF_INET, addr, &in.sin_addr) != 1 ||
	    connect(fd, (struct sockaddr *)&in, sizeof(in)) < 0) {
		printf("connect: %s\n", strerror(errno));
		exit(1);
	}
	return fd;
}

static void echo(int n, int fd)
{
	char buf[64];
	size_t got = 0;
	ssize_t r;

	if (write(fd, "ping\n", 5) != 5 || shutdown(fd, SHUT_WR) < 0) {
		printf("echo %d: send: %s\n", n, strerror(errno));
		exit(1);
	}
	while (got < sizeof(buf) - 1 && (r = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)r;
	if (r < 0) {
		printf("echo %d: read: %s\n", n, strerror(errno));
		exit(1);
	}
	buf[got] = 0;
	buf[strcspn(buf, "\n")] = 0;
	printf("echo %d: %s\n", n, buf);
	close(fd);
}

#define EACH_LIMIT 4096

/* close() on every number from 3 to the soft limit but keep; prints how
 * many succeeded on numbers not in inherited (open at the start). */
static void close_each(int keep, const unsigned char *inherited)
{
	struct rlimit rl;
	int fresh = 0;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		printf("getrlimit: %s\n", strerror(errno));
		exit(1);
	}
	for (int fd = 3; fd < (int)rl.rlim_cur; fd++) {
		if (fd == keep)
			continue;
		if (close(fd) == 0) {
			fresh += fd >= EACH_LIMIT || !inherited[fd];
		} else if (errno != EBADF) {
			printf("close(%d): %s\n", fd, strerror(errno));
			exit(1);
		}
	}
	printf("closed %d number%s not open at the start\n", fresh, fresh == 1 ? "" : "s");
}

int main(int argc, char **argv)
{
	static unsigned char inherited[EACH_LIMIT];
	int fd, port;

	if (argc != 4 || (strcmp(argv[3], "range") && strcmp(argv[3], "from") && strcmp(argv[3], "each"))) {
		fprintf(stderr, "usage: close_others ADDR PORT range|from|each\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	port = atoi(argv[2]);
	if (strcmp(argv[3], "each") == 0) {
		/* Before the first socket: under ustcp the stack places its
		 * fds by the limit it reads when it starts. */
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > EACH_LIMIT) {
			rl.rlim_cur = EACH_LIMIT;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		for (int i = 0; i < EACH_LIMIT; i++)
			inherited[i] = fcntl(i, F_GETFD) >= 0;
	}
	fd = dial(argv[1], port);
	if (strcmp(argv[3], "each") == 0) {
		if (dup2(fd, 100) != 100) {
			printf("dup2: %s\n", strerror(errno));
			return 1;
		}
		close_each(100, inherited);
		echo(1, 100);
		echo(2, dial(argv[1], port));
		return 0;
	}
	if (dup2(fd, 100) != 100) {
		printf("dup2: %s\n", strerror(errno));
		return 1;
	}
	if (close_range(3, 99, 0) < 0) {
		printf("close_range: %s\n", strerror(errno));
		return 1;
	}
	if (strcmp(argv[3], "range") == 0) {
		if (close_range(101, ~0U, 0) < 0) {
			printf("close_range: %s\n", strerror(errno));
			return 1;
		}
	} else {
		closefrom(101);
	}
	echo(1, 100);
	echo(2, dial(argv[1], port));
	return 0;
}
