/* exit_ways HOW ADDR PORT FILE: connect, send FILE, close, and leave the
 * process in one of the ways that skip atexit handlers or end the last
 * thread differently (090-lifetime.bats):
 *   _exit         close, then _exit(0)
 *   execv         keep the socket (inheritable), exec /bin/true with execv
 *                 (glibc's execv does not go through the execve symbol)
 *   execle        the same through execle, whose environment (after the
 *                 argument list's NULL) must reach the new program: sh
 *                 exits 0 only if it sees EXIT_WAYS_ENV=ok
 *   pthread_exit  close, then pthread_exit() from main: the process lives
 *                 on in its other threads
 * Every byte and a FIN must reach the peer each time. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in in = { .sin_family = AF_INET };
	static char buf[1 << 16];
	int fd, file;
	ssize_t n;

	if (argc != 5 || inet_pton(AF_INET, argv[2], &in.sin_addr) != 1) {
		fprintf(stderr, "usage: exit_ways _exit|execv|execle|pthread_exit ADDR PORT FILE\n");
		return 2;
	}
	in.sin_port = htons((unsigned short)atoi(argv[3]));
	file = open(argv[4], O_RDONLY);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (file < 0 || fd < 0 || connect(fd, (struct sockaddr *)&in, sizeof(in)) < 0) {
		perror("exit_ways");
		return 1;
	}
	while ((n = read(file, buf, sizeof(buf))) > 0) {
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));
			if (w <= 0) {
				perror("exit_ways: write");
				return 1;
			}
			off += w;
		}
	}
	if (!strcmp(argv[1], "_exit")) {
		close(fd);
		_exit(0);
	}
	if (!strcmp(argv[1], "execv")) {
		char *av[] = { "true", NULL };
		execv("/bin/true", av);
		perror("exit_ways: execv");
		return 1;
	}
	if (!strcmp(argv[1], "execle")) {
		char *envp[] = { "EXIT_WAYS_ENV=ok", NULL };
		execle("/bin/sh", "sh", "-c", "test \"$EXIT_WAYS_ENV\" = ok", (char *)NULL, envp);
		perror("exit_ways: execle");
		return 1;
	}
	if (!strcmp(argv[1], "pthread_exit")) {
		close(fd);
		pthread_exit(NULL);
	}
	fprintf(stderr, "exit_ways: unknown way %s\n", argv[1]);
	return 2;
}
