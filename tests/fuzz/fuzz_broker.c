/* libFuzzer harness for the launcher's broker (stack/broker.c): what a
 * launched program, the only party that can write to it, may send.
 *
 * Each input is one message put on a fresh SOCK_SEQPACKET pair whose other
 * end is the broker's (SO_PASSCRED), then served once:
 *
 *   byte 0   bit 0  attach SCM_CREDENTIALS        bits 4-7  how many fds (0..15)
 *            bit 1  credentials of another uid (the harness runs as root,
 *                   which may claim any)
 *            bit 2  the credentials and the fds in one control block
 *   byte 1.. for each fd, one byte: its kind (mod 5): a SOCK_SEQPACKET
 *            pair's end (we keep the other and read the answer), a
 *            SOCK_STREAM pair's end, a pipe's write end, /dev/null, a
 *            SOCK_DGRAM socket
 *   the rest the message's bytes (up to 200: the broker reads 64)
 *
 * The interface does not exist, so a well-formed request from the right
 * user fails in ust_link_socket (no packet socket is ever opened on a real
 * interface). Checked: the outcome is the one the message deserves, the
 * first reply socket (if it is a SEQPACKET pair) gets exactly the status
 * that outcome sends and never an fd, and every fd the broker was given is
 * closed by it (none leaks: the process's fd count is back where it was). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"

#define MAX_FDS 15
#define MAX_DATA 200

static unsigned open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	if (!d)
		abort();
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* One fd of the given kind to send; *keep gets the end we read from (or -1). */
static int make_fd(unsigned kind, int *keep)
{
	int sv[2], p[2];

	*keep = -1;
	switch (kind % 5) {
	case 0:
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
			abort();
		*keep = sv[0];
		return sv[1];
	case 1:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			abort();
		close(sv[0]);
		return sv[1];
	case 2:
		if (pipe2(p, O_CLOEXEC) < 0)
			abort();
		close(p[0]);
		return p[1];
	case 3:
		return open("/dev/null", O_RDWR | O_CLOEXEC);
	default:
		return socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ust_config cfg = { .iface = "ustfz-none0", .addr = 0x0a090002u };
	uint8_t mode = size ? data[0] : 0;
	unsigned nfd = mode >> 4, before = open_fds();
	int bsv[2], one = 1, fds[MAX_FDS], keep[MAX_FDS];
	union {
		char b[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct ucred cred = { getpid(), getuid(), getgid() };
	char msg[MAX_DATA];
	size_t off = 1, len;
	struct iovec iov;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	enum ust_broker_outcome out, want;
	bool right_text, right_user = !(mode & 2), with_cred = mode & 1;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, bsv) < 0)
		abort();
	setsockopt(bsv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
	for (unsigned i = 0; i < nfd; i++)
		fds[i] = make_fd(off < size ? data[off++] : 0, &keep[i]);
	len = size > off ? size - off : 0;
	if (len > MAX_DATA)
		len = MAX_DATA;
	memcpy(msg, data + off, len);
	iov.iov_base = msg;
	iov.iov_len = len;
	if (!right_user)
		cred.uid = 4242;

	memset(&cbuf, 0, sizeof(cbuf));
	m.msg_control = cbuf.b;
	m.msg_controllen = 0;
	c = (struct cmsghdr *)cbuf.b;
	if (with_cred) {
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_CREDENTIALS;
		c->cmsg_len = CMSG_LEN(sizeof(cred));
		memcpy(CMSG_DATA(c), &cred, sizeof(cred));
		m.msg_controllen += CMSG_SPACE(sizeof(cred));
		c = (struct cmsghdr *)(cbuf.b + m.msg_controllen);
	}
	if (nfd) {
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfd * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfd * sizeof(int));
		m.msg_controllen += CMSG_SPACE(nfd * sizeof(int));
	}
	if (!m.msg_controllen)
		m.msg_control = NULL;
	if (sendmsg(bsv[1], &m, MSG_DONTWAIT) < 0)
		abort();
	for (unsigned i = 0; i < nfd; i++)
		close(fds[i]); /* in flight now: the broker holds the only copies */

	out = ust_broker_serve(bsv[0], &cfg, getuid());

	/* What it deserved. The kernel attaches credentials itself to every
	 * message on a SO_PASSCRED socket (the sender's real ones when it
	 * sent none), so "no credentials" means "ours". */
	right_text = len == strlen(UST_BROKER_REQUEST) && memcmp(msg, UST_BROKER_REQUEST, len) == 0;
	if (!nfd)
		want = UST_BROKER_NO_REPLY; /* even empty: the credentials came */
	else if (!right_text)
		want = UST_BROKER_MALFORMED;
	else if (with_cred && !right_user)
		want = UST_BROKER_FOREIGN;
	else
		want = UST_BROKER_FAILED;
	/* More fds than the broker's control buffer holds: MSG_CTRUNC, so
	 * malformed whatever the text. */
	if (nfd > 8)
		want = UST_BROKER_MALFORMED;
	if (out != want)
		abort();

	/* The first fd was the reply socket: a SEQPACKET one carries the
	 * status, an int, and never an fd (no packet socket was opened). */
	if (nfd && keep[0] >= 0) {
		int status = -1;
		union {
			char b[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} rb;
		struct iovec riov = { &status, sizeof(status) };
		struct msghdr rm = { .msg_iov = &riov, .msg_iovlen = 1, .msg_control = rb.b,
				     .msg_controllen = sizeof(rb.b) };
		ssize_t n = recvmsg(keep[0], &rm, MSG_DONTWAIT);
		int sent = want == UST_BROKER_MALFORMED ? EPROTO : want == UST_BROKER_FOREIGN ? EPERM : ENODEV;

		if (n != (ssize_t)sizeof(status) || rm.msg_controllen != 0 || status != sent)
			abort();
	}
	for (unsigned i = 0; i < nfd; i++)
		if (keep[i] >= 0)
			close(keep[i]);
	close(bsv[0]);
	close(bsv[1]);
	if (open_fds() != before)
		abort(); /* the broker kept an fd it was given */
	return 0;
}
