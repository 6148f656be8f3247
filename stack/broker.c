/* The launcher's broker: one request, one answer (broker.h). */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "link.h"

/* The reply socket, the first fd of the request; any others are closed.
 * The credentials, if the kernel attached them. */
struct request {
	int reply;
	bool have_cred;
	struct ucred cred;
};

static void take_cmsgs(struct msghdr *m, struct request *rq)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
		if (c->cmsg_level != SOL_SOCKET)
			continue;
		if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(rq->cred))) {
			memcpy(&rq->cred, CMSG_DATA(c), sizeof(rq->cred));
			rq->have_cred = true;
		} else if (c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(0)) {
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < k; i++) {
				int f;
				memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				if (rq->reply < 0)
					rq->reply = f;
				else
					close(f); /* one reply socket only */
			}
		}
	}
}

/* The answer: status, and with 0 the packet socket. Never waits: a client
 * whose socket is full or gone loses its answer. */
static void answer(int reply, int status, int fd)
{
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} rbuf;
	struct iovec riov = { &status, sizeof(status) };
	struct msghdr rm = { .msg_iov = &riov, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *c;
		memset(&rbuf, 0, sizeof(rbuf));
		rm.msg_control = rbuf.b;
		rm.msg_controllen = sizeof(rbuf.b);
		c = CMSG_FIRSTHDR(&rm);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	(void)sendmsg(reply, &rm, MSG_DONTWAIT | MSG_NOSIGNAL);
}

enum ust_broker_outcome ust_broker_serve(int bfd, const struct ust_config *cfg, uid_t uid)
{
	static const char want[] = UST_BROKER_REQUEST;
	char buf[64];
	union {
		char b[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(8 * sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b,
			    .msg_controllen = sizeof(cbuf.b) };
	struct request rq = { .reply = -1 };
	enum ust_broker_outcome out;
	int status, fd = -1;
	ssize_t n = recvmsg(bfd, &m, MSG_CMSG_CLOEXEC);

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? UST_BROKER_IDLE : UST_BROKER_ERROR;
	if (n == 0 && m.msg_controllen == 0) {
		/* End of file, or an empty message: only a hang-up ends us. */
		struct pollfd p = { .fd = bfd, .events = POLLIN | POLLRDHUP };
		if (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLRDHUP)))
			return UST_BROKER_HANGUP;
		return UST_BROKER_IDLE;
	}
	take_cmsgs(&m, &rq);
	if (rq.reply < 0)
		return UST_BROKER_NO_REPLY; /* nowhere to answer */
	if ((size_t)n != sizeof(want) - 1 || memcmp(buf, want, sizeof(want) - 1) != 0 ||
	    (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		status = EPROTO;
		out = UST_BROKER_MALFORMED;
	} else if (!rq.have_cred || rq.cred.uid != uid) {
		status = EPERM;
		out = UST_BROKER_FOREIGN;
	} else {
		char err[256];
		fd = ust_link_socket(cfg, err, sizeof(err));
		status = fd < 0 ? -fd : 0;
		out = fd < 0 ? UST_BROKER_FAILED : UST_BROKER_GRANTED;
	}
	answer(rq.reply, status, fd);
	close(rq.reply);
	if (fd >= 0)
		close(fd);
	return out;
}
