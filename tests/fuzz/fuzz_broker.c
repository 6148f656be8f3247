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
 * closed by it (none leaks: the process's fd count is back where it was).
 *
 * With bit 3 of byte 0 set, the input is instead a message on a member's
 * channel (steering by port, stack/steer.h), which the broker checks with
 * ust_broker_check: byte 1 the proof that comes with it (mod 5: none, a
 * kernel TCP socket bound to the address and port 40000, the ports file,
 * /dev/null, that socket with SO_REUSEPORT), the rest the message (struct
 * ust_steer_msg, cut anywhere).
 * The ports file is the harness's: ports 1000 to 1063 held by owner slot
 * 5, generation 1. Checked: the verdict is one of the four, a claim
 * without its proof is never granted, the right proofs are, and nothing
 * leaks. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "portshare.h"
#include <netinet/in.h>
#include <stdio.h>
#include <sys/stat.h>

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

#define FUZZ_OWNER (5u << UST_OWNER_SHIFT | 1u)

static char ports_path[64];

static void ports_file_remove(void)
{
	unlink(ports_path);
}

/* The harness's ports file (see above), made once (and removed at exit);
 * a fresh open file description of it each time, as a stack's own. */
static int ports_file(void)
{
	char *path = ports_path;

	if (!path[0]) {
		struct ust_share_head h = { .magic = UST_PORTS_MAGIC, .version = UST_PORTS_VERSION,
					    .size = sizeof(struct ust_port_share) };
		uint32_t gen = 1, w = FUZZ_OWNER;
		int fd;

		snprintf(path, sizeof(ports_path), "/tmp/fuzz-broker-ports-%d", (int)getpid());
		atexit(ports_file_remove);
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || ftruncate(fd, sizeof(struct ust_port_share)) < 0 ||
		    pwrite(fd, &h, sizeof(h), 0) != sizeof(h) ||
		    pwrite(fd, &gen, sizeof(gen), (off_t)offsetof(struct ust_port_share, owner_gen[5])) != sizeof(gen))
			abort();
		for (unsigned p = 1000; p < 1064; p++)
			if (pwrite(fd, &w, sizeof(w), (off_t)offsetof(struct ust_port_share, port[p])) != sizeof(w))
				abort();
		close(fd);
	}
	return open(path, O_RDWR | O_CLOEXEC);
}

/* A reservation as a stack makes one: our address (IP_FREEBIND), port
 * 40000; with reuseport, a SO_REUSEPORT group member's. */
static int bound_socket(uint32_t addr, bool reuseport)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(40000), .sin_addr.s_addr = htonl(addr) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		abort();
	setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&in, sizeof(in)) < 0)
		abort();
	return fd;
}

static int fuzz_claim(const struct ust_config *cfg, const uint8_t *data, size_t size, unsigned before)
{
	struct ust_broker *b = calloc(1, sizeof(*b));
	struct ust_steer_msg m;
	unsigned kind = size ? data[0] % 5 : 0;
	size_t len = size > 1 ? size - 1 : 0;
	int fd = -1, r;
	bool ports_ok = true;

	if (!b)
		abort();
	b->cfg = cfg;
	b->uid = getuid();
	b->own = -1;
	if (len > sizeof(m))
		len = sizeof(m);
	memset(&m, 0, sizeof(m));
	memcpy(&m, data + 1, len);
	if (kind == 1 || kind == 4)
		fd = bound_socket(cfg->addr, kind == 4);
	else if (kind == 2)
		fd = ports_file();
	else if (kind == 3)
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	unsigned families;
	r = ust_broker_check(b, &m, len, fd, &families);
	if (r != 0 && r != EPROTO && r != EINVAL && r != EPERM)
		abort();
	/* What it deserved, where the harness can tell. */
	if (len >= offsetof(struct ust_steer_msg, port) && m.n <= UST_STEER_PORTS_MAX &&
	    len >= offsetof(struct ust_steer_msg, port) + m.n * sizeof(uint16_t)) {
		for (uint32_t i = 0; i < m.n; i++)
			ports_ok = ports_ok && m.port[i] >= 1000 && m.port[i] < 1064;
		if (m.op == UST_STEER_CLAIM_BOUND && r == 0 && !((kind == 1 || kind == 4) && m.n == 1 && m.port[0] == 40000))
			abort(); /* a bound port granted without its reservation */
		if (m.op == UST_STEER_CLAIM_BOUND && (kind == 1 || kind == 4) && m.n == 1 && m.port[0] == 40000 && r != 0)
			abort();
		if (m.op == UST_STEER_CLAIM_GROUP && r == 0 && !(kind == 4 && m.n == 1 && m.port[0] == 40000))
			abort(); /* a group's port granted without a SO_REUSEPORT reservation */
		if (m.op == UST_STEER_CLAIM_GROUP && kind == 4 && m.n == 1 && m.port[0] == 40000 && r != 0)
			abort();
		if (m.op == UST_STEER_CLAIM_SHARED && r == 0 && !(kind == 2 && m.owner == FUZZ_OWNER && ports_ok))
			abort(); /* client ports granted without the owner's proof */
		if (m.op == UST_STEER_CLAIM_SHARED && kind == 2 && m.owner == FUZZ_OWNER && ports_ok && r != 0)
			abort();
	}
	if (fd >= 0)
		close(fd);
	free(b);
	if (open_fds() != before)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ust_config cfg = { .iface = "ustfz-none0", .addr = 0x0a090002u, .rx_ring_kib = 4096 };
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

	if (mode & 8)
		return fuzz_claim(&cfg, data + 1, size ? size - 1 : 0, before);

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
	 * answer, its status and no ring, and never an fd (no packet socket
	 * was opened). */
	if (nfd && keep[0] >= 0) {
		struct ust_broker_answer a = { .status = -1, .ring_kib = 1 };
		union {
			char b[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} rb;
		struct iovec riov = { &a, sizeof(a) };
		struct msghdr rm = { .msg_iov = &riov, .msg_iovlen = 1, .msg_control = rb.b,
				     .msg_controllen = sizeof(rb.b) };
		ssize_t n = recvmsg(keep[0], &rm, MSG_DONTWAIT);
		int sent = want == UST_BROKER_MALFORMED ? EPROTO : want == UST_BROKER_FOREIGN ? EPERM : ENODEV;

		if (n != (ssize_t)sizeof(a) || rm.msg_controllen != 0 || a.status != sent || a.ring_kib)
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
