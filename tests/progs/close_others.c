/* close_others ADDR PORT range|from: a program that closes "every other fd"
 * as daemons and launchers do, while it holds a TCP connection.
 *
 * Connects to ADDR:PORT (an echo server), keeps the socket as fd 100, then
 * closes everything else from 3 up: with close_range(3, 99, 0) and
 * close_range(101, ~0U, 0) ("range"), or close_range(3, 99, 0) and
 * closefrom(101) ("from"). Then it sends "ping\n" on fd 100, shuts its
 * sending side, and reads the echo to EOF; then it opens a second
 * connection and does the same. Prints "echo 1: ping" and "echo 2: ping",
 * or the call that failed. On Linux this simply works; under ustcp the
 * stack's own fds (packet socket, relays, eventfds) live in the same table
 * and must survive (tests/bats/060-shim.bats). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int main(int argc, char **argv)
{
	int fd, port;

	if (argc != 4 || (strcmp(argv[3], "range") && strcmp(argv[3], "from"))) {
		fprintf(stderr, "usage: close_others ADDR PORT range|from\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	port = atoi(argv[2]);
	fd = dial(argv[1], port);
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
