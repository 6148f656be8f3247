/* The launcher's broker: one request, one answer; and the steering group
 * (broker.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker.h"
#include "link.h"
#include "portshare.h"

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

/* Sends len bytes of msg on sock with nfd (at most 2) of fds
 * (SCM_RIGHTS). Never waits: a client whose socket is full or gone loses
 * the message. */
static void send_fds(int sock, const void *msg, size_t len, const int *fds, size_t nfd)
{
	union {
		char b[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} rbuf;
	struct iovec riov = { (void *)msg, len };
	struct msghdr rm = { .msg_iov = &riov, .msg_iovlen = 1 };

	if (nfd) {
		struct cmsghdr *c;
		memset(&rbuf, 0, sizeof(rbuf));
		rm.msg_control = rbuf.b;
		rm.msg_controllen = CMSG_SPACE(nfd * sizeof(int));
		c = CMSG_FIRSTHDR(&rm);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfd * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfd * sizeof(int));
	}
	(void)sendmsg(sock, &rm, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* The answer to a request: status, and with 0 the packet socket with its
 * ring of ring_kib KiB (and, for a steered stack, its ARP socket: arp >=
 * 0). */
static void answer(int reply, int status, unsigned ring_kib, int fd, int arp)
{
	struct ust_broker_answer a = { .status = status, .ring_kib = ring_kib };
	int fds[2] = { fd, arp };

	send_fds(reply, &a, sizeof(a), fds, fd < 0 ? 0 : arp >= 0 ? 2 : 1);
}

/* ---- the steering group ---- */

#ifndef PACKET_FANOUT_FLAG_IGNORE_OUTGOING
#define PACKET_FANOUT_FLAG_IGNORE_OUTGOING 0x4000
#endif
/* The group's kind: the program picks the member; frames the members send
 * are none of its business (each member's own PACKET_IGNORE_OUTGOING does
 * not count once it is in a group: the group's hook is the one called). */
#define GROUP_TYPE (PACKET_FANOUT_CBPF | PACKET_FANOUT_FLAG_IGNORE_OUTGOING)
/* How often the broker looks whether a zombie's socket closed (ms). */
#define ZOMBIE_LOOK_MS 5

/* Is a packet socket of inode ino still open in our namespace? (A member
 * whose channel hung up while some process kept its socket: the kernel
 * did not move the last member into its place.) */
static bool packet_socket_open(ino_t ino)
{
	char line[256];
	bool found = false;
	FILE *f = fopen("/proc/net/packet", "re");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		const char *sp = strrchr(line, ' ');
		found = sp && strtoull(sp + 1, NULL, 10) == (unsigned long long)ino;
	}
	fclose(f);
	return found;
}

/* Replaces the group's program with the one the table says: every port
 * steered to its member's place, a leaving member's to the broker. The
 * stack that answers for the address (ports nobody holds: RST; echo) is
 * the first member after the broker. False when the ranges do not fit or
 * the kernel refused it: the table must go back. */
static bool steer_apply(struct ust_broker *b)
{
	static struct ust_steer_range r[UST_STEER_RANGES_MAX + 1];
	static struct sock_filter prog[UST_STEER_PROG_MAX];
	struct sock_fprog fp = { .filter = prog };
	unsigned n = 0, n4 = 0;

	/* Each family's ranges, IPv4's first. */
	for (unsigned f = 0; f < 2; f++) {
		for (unsigned p = 1; p < 65536; p++) {
			unsigned s = b->owner[f * UST_BROKER_V6 + p];
			uint16_t idx;

			if (!s || (s != UST_BROKER_GROUPED && b->m[s].leaving))
				continue;
			idx = (uint16_t)(s == UST_BROKER_GROUPED ? UST_STEER_BROKER : b->m[s].idx);
			if (n > n4 && r[n - 1].member == idx && r[n - 1].hi == p - 1) {
				r[n - 1].hi = (uint16_t)p;
				continue;
			}
			if (n == UST_STEER_RANGES_MAX)
				return false;
			r[n++] = (struct ust_steer_range){ (uint16_t)p, (uint16_t)p, idx };
		}
		if (!f)
			n4 = n;
	}
	fp.len = (unsigned short)ust_steer_program(r, n4, r + n4, n - n4, b->n > 1 ? 1 : UST_STEER_BROKER, prog);
	return fp.len && setsockopt(b->own, SOL_PACKET, PACKET_FANOUT_DATA, &fp, sizeof(fp)) == 0;
}

/* The broker's own member: no frame passes its filter, which it alone
 * may change (not locked); the group is made with it, with a fresh id. */
static int steer_own_member(const struct ust_config *cfg, int *group)
{
	static struct sock_filter drop_all[] = { BPF_STMT(BPF_RET | BPF_K, 0) };
	struct sock_fprog drop = { UST_ARRAY_SIZE(drop_all), drop_all };
	struct fanout_args args = { .id = 0, .type_flags = GROUP_TYPE | PACKET_FANOUT_FLAG_UNIQUEID,
				    .max_num_members = UST_BROKER_MEMBERS };
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	socklen_t len = sizeof(int);
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0), val;

	if (fd < 0)
		return -1;
	sll.sll_ifindex = (int)if_nametoindex(cfg->iface);
	if (!sll.sll_ifindex || setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &drop, sizeof(drop)) < 0 ||
	    bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0 ||
	    setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &args, sizeof(args)) < 0 ||
	    getsockopt(fd, SOL_PACKET, PACKET_FANOUT, &val, &len) < 0) {
		close(fd);
		return -1;
	}
	*group = (val & 0xffff) | GROUP_TYPE << 16;
	return fd;
}

void ust_broker_init(struct ust_broker *b, const struct ust_config *cfg, uid_t uid)
{
	memset(b, 0, sizeof(*b));
	b->cfg = cfg;
	b->uid = uid;
	b->own = -1;
	for (unsigned s = 0; s < UST_BROKER_MEMBERS; s++)
		b->m[s].sock = b->m[s].chan = -1;
	b->owner = calloc(2 * UST_BROKER_V6, sizeof(*b->owner));
	if (!b->owner)
		return;
	b->own = steer_own_member(cfg, &b->group);
	b->n = 1;
	if (b->own < 0 || !steer_apply(b)) {
		if (b->own >= 0)
			close(b->own);
		b->own = -1;
		free(b->owner);
		b->owner = NULL;
	}
}

/* A new member: fd joins the group at the end of its array; the broker
 * keeps fd and the channel. 0: no room (fd left as it was). */
static unsigned steer_join(struct ust_broker *b, int fd, int chan)
{
	unsigned s;

	if (b->n >= UST_BROKER_MEMBERS)
		return 0;
	for (s = 1; s < UST_BROKER_MEMBERS && (b->m[s].sock >= 0 || b->m[s].zombie); s++)
		;
	if (s == UST_BROKER_MEMBERS || setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &b->group, sizeof(int)) < 0)
		return 0;
	fcntl(chan, F_SETFL, O_NONBLOCK);
	b->m[s] = (struct ust_broker_member){ .sock = fd, .chan = chan, .idx = b->n };
	b->by_idx[b->n++] = (uint16_t)s;
	/* The first member after the broker's answers for the address. */
	if (b->n == 2)
		steer_apply(b);
	return s;
}

/* The kernel moved the last member into place idx, which s held. */
static void steer_moved(struct ust_broker *b, unsigned s, unsigned idx)
{
	unsigned last = b->by_idx[b->n - 1];

	b->m[last].idx = idx;
	b->by_idx[idx] = (uint16_t)last;
	b->m[last].leaving = false;
	b->m[s] = (struct ust_broker_member){ .sock = -1, .chan = -1 };
	b->n--;
	steer_apply(b);
}

/* Does a member other than s read owner[] index k as a group's? */
static bool group_read_elsewhere(const struct ust_broker *b, unsigned s, uint32_t k)
{
	for (unsigned t = 1; t < UST_BROKER_MEMBERS; t++)
		for (unsigned i = 0; t != s && i < b->m[t].ngroup; i++)
			if (b->m[t].group[i] == k)
				return true;
	return false;
}

/* Takes k off m's list of group ports; false if it was not there. */
static bool group_remove(struct ust_broker_member *m, uint32_t k)
{
	for (unsigned i = 0; i < m->ngroup; i++) {
		if (m->group[i] == k) {
			m->group[i] = m->group[--m->ngroup];
			return true;
		}
	}
	return false;
}

/* Member s reads group port k no more (its release, its end): the port
 * stays the group's while another member reads it, and is nobody's after
 * the last. Returns whether the table changed. */
static bool group_drop(struct ust_broker *b, unsigned s, uint32_t k)
{
	if (!group_remove(&b->m[s], k) || b->owner[k] != UST_BROKER_GROUPED || group_read_elsewhere(b, s, k))
		return false;
	b->owner[k] = 0;
	return true;
}

/* Member s is gone: no process holds its channel, so none should hold its
 * socket but the broker. Its ports go to the broker's member, and the last
 * member's to s's place; then the broker's dup goes, and the kernel moves
 * the last member into that place. Between the two system calls the last
 * member's frames reach s's socket, which nobody reads: lost, never
 * another's. If the socket is still open (a process kept it and let the
 * channel go), the member stays in the array, a zombie the program never
 * names, until it closes. */
static void steer_leave(struct ust_broker *b, unsigned s)
{
	unsigned idx = b->m[s].idx, last = b->by_idx[b->n - 1];
	struct stat st;
	ino_t ino = fstat(b->m[s].sock, &st) == 0 ? st.st_ino : 0;

	b->m[s].leaving = true;
	b->m[last].idx = idx;
	steer_apply(b);
	close(b->m[s].sock);
	close(b->m[s].chan);
	b->m[s].sock = b->m[s].chan = -1;
	for (unsigned p = 1; p < 2 * UST_BROKER_V6; p++)
		if (b->owner[p] == s)
			b->owner[p] = 0;
	/* Its group ports' sockets went with its processes. */
	while (b->m[s].ngroup)
		group_drop(b, s, b->m[s].group[b->m[s].ngroup - 1]);
	if (ino && packet_socket_open(ino)) {
		b->m[s].zombie = ino;
		b->zombies++;
		b->m[last].idx = b->n - 1;
		steer_apply(b);
		return;
	}
	steer_moved(b, s, idx);
}

/* Zombies whose socket closed since: the kernel moved the last member
 * into their place meanwhile (its frames went to the broker: its place
 * was past the array's end, which the kernel's modulo wraps to 0), at
 * most ZOMBIE_LOOK_MS ago. */
static void steer_zombies(struct ust_broker *b)
{
	for (unsigned s = 1; b->zombies && s < UST_BROKER_MEMBERS; s++) {
		if (!b->m[s].zombie || packet_socket_open(b->m[s].zombie))
			continue;
		b->zombies--;
		steer_moved(b, s, b->m[s].idx);
	}
}

/* ---- claims ---- */

/* A packet socket the broker hands out that is not a member of its
 * group joins a group of its own (with a fresh id), because a socket in a
 * group can join no other and can no longer be bound elsewhere: a program
 * that held one out of any group could rebind it to every frame and join
 * a steering group (its id is any member's to read), taking a place in the
 * array that a broker gave another member. Where the kernel has no such
 * groups, there is no group to join either. */
static void fanout_alone(int fd)
{
	int val = (PACKET_FANOUT_LB | PACKET_FANOUT_FLAG_UNIQUEID | PACKET_FANOUT_FLAG_IGNORE_OUTGOING) << 16;

	(void)setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &val, sizeof(val));
}

/* Is fd a kernel TCP socket bound to our address and port (a
 * reservation, stackthread/ports.c), and with group, with SO_REUSEPORT?
 * Holding one is holding the port in the kernel's table; with the option,
 * sharing it with any socket of the user's that has it too, as Linux lets
 * a SO_REUSEPORT group's members. */
static bool proof_bound(const struct ust_broker *b, int fd, uint16_t port, bool group, bool *v6)
{
	struct sockaddr_in6 sa;
	struct sockaddr_in *in = (struct sockaddr_in *)&sa;
	socklen_t len = sizeof(int), alen = sizeof(sa);
	int domain = 0, proto = 0, reuseport = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) < 0 || proto != IPPROTO_TCP ||
	    (group && (getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &reuseport, &len) < 0 || !reuseport)) ||
	    getsockname(fd, (struct sockaddr *)&sa, &alen) < 0)
		return false;
	/* An IPv6 reservation (an IPV6_V6ONLY socket on our IPv6 address)
	 * holds the port in IPv6's space. */
	*v6 = domain == AF_INET6;
	if (domain == AF_INET6)
		return b->cfg->has_addr6 && alen >= sizeof(sa) && sa.sin6_family == AF_INET6 &&
		       !memcmp(&sa.sin6_addr, b->cfg->addr6.b, 16) && ntohs(sa.sin6_port) == port;
	return domain == AF_INET && alen >= sizeof(*in) && in->sin_family == AF_INET &&
	       ntohl(in->sin_addr.s_addr) == b->cfg->addr && ntohs(in->sin_port) == port;
}

/* Is fd an open file description of the program's ports file that holds
 * the OFD lock of owner w's slot, w being the slot's latest generation,
 * and does every port of m name w? The lock is taken on fd if nobody
 * held it: then fd holds it, as it claims. The broker keeps nothing of
 * fd: a reference it kept would keep the lock, and the ports, after the
 * owner's death. */
static bool proof_shared(const struct ust_broker *b, int fd, const struct ust_steer_msg *m)
{
	unsigned slot = m->owner >> UST_OWNER_SHIFT;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = UST_OWNER_LOCK_BASE + slot, .l_len = 1 };
	struct ust_share_head h;
	struct stat st;
	uint32_t gen, w;

	if (m->owner & UST_OWNER_REUSE || slot >= UST_OWNER_SLOTS || !(m->owner & UST_OWNER_GEN_MASK) ||
	    fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != b->uid || (st.st_mode & 077) ||
	    st.st_size < (off_t)sizeof(struct ust_port_share) ||
	    pread(fd, &h, sizeof(h), 0) != sizeof(h) || h.magic != UST_PORTS_MAGIC ||
	    h.version != UST_PORTS_VERSION || fcntl(fd, F_OFD_SETLK, &fl) < 0 ||
	    pread(fd, &gen, sizeof(gen), (off_t)offsetof(struct ust_port_share, owner_gen[slot])) != sizeof(gen) ||
	    (gen & UST_OWNER_GEN_MASK) != (m->owner & UST_OWNER_GEN_MASK))
		return false;
	for (uint32_t i = 0; i < m->n; i++) {
		if (pread(fd, &w, sizeof(w), (off_t)offsetof(struct ust_port_share, port[m->port[i]])) != sizeof(w) ||
		    (w & ~UST_OWNER_REUSE) != m->owner)
			return false;
	}
	return true;
}

/* What a round of members' messages changed, to undo if the program
 * cannot take it, and the answers that go once it does. */
struct round {
	/* port: an owner[] index; group_of: the member whose list of group
	 * ports it joined (0: none) */
	struct { uint32_t port; uint16_t was, group_of; } undo[UST_STEER_PORTS_MAX * 64 * 2];
	unsigned nundo;
	/* fd: a group port's socket for the answer (-1: none) */
	struct { unsigned slot; struct ust_steer_answer a; int fd; } ans[64];
	unsigned nans;
	bool dirty;
};

int ust_broker_check(const struct ust_broker *b, const struct ust_steer_msg *m, size_t len, int fd,
		     unsigned *families)
{
	bool v6 = false;

	*families = 3; /* client ports: either family's connections */
	if (len < offsetof(struct ust_steer_msg, port) || m->n > UST_STEER_PORTS_MAX ||
	    len < offsetof(struct ust_steer_msg, port) + m->n * sizeof(uint16_t))
		return EPROTO;
	for (uint32_t i = 0; i < m->n; i++)
		if (!m->port[i])
			return EINVAL;
	switch (m->op) {
	case UST_STEER_RELEASE:
		return 0;
	case UST_STEER_CLAIM_BOUND:
	case UST_STEER_CLAIM_GROUP:
		if (fd < 0 || m->n != 1 || !proof_bound(b, fd, m->port[0], m->op == UST_STEER_CLAIM_GROUP, &v6))
			return EPERM;
		*families = v6 ? 2 : 1;
		return 0;
	case UST_STEER_CLAIM_SHARED:
		return fd >= 0 && proof_shared(b, fd, m) ? 0 : EPERM;
	default:
		return EPROTO;
	}
}

/* Member s's granted claim msg of a port, in IPv6's space with v6, as a
 * SO_REUSEPORT group's: the port goes to no member, and the answer carries
 * a socket that reads its frames, unless s reads them already. */
static void steer_group_claim(struct ust_broker *b, unsigned s, const struct ust_steer_msg *msg, bool v6,
			      struct round *rd)
{
	struct ust_broker_member *m = &b->m[s];
	uint16_t port = msg->port[0];
	unsigned k = (v6 ? UST_BROKER_V6 : 0) + port, a = rd->nans++;
	char err[256];

	rd->ans[a].slot = s;
	rd->ans[a].a = (struct ust_steer_answer){ .seq = msg->seq };
	rd->ans[a].fd = -1;
	for (unsigned i = 0; i < m->ngroup; i++)
		if (m->group[i] == k)
			return;
	if (m->ngroup == UST_STEER_GROUP_PORTS) {
		rd->ans[a].a.status = ENOBUFS;
		b->refused++;
		return;
	}
	rd->ans[a].fd = ust_link_group_socket(b->cfg, port, v6, err, sizeof(err));
	if (rd->ans[a].fd < 0) {
		rd->ans[a].a.status = -rd->ans[a].fd;
		rd->ans[a].fd = -1;
		b->refused++;
		return;
	}
	fanout_alone(rd->ans[a].fd);
	rd->ans[a].a.group_port = port;
	rd->ans[a].a.group_v6 = v6;
	m->group[m->ngroup++] = k;
	rd->undo[rd->nundo++] = (typeof(rd->undo[0])){ .port = k, .was = b->owner[k], .group_of = (uint16_t)s };
	b->owner[k] = UST_BROKER_GROUPED;
	rd->dirty = true;
}

/* One message of len bytes from member s, with the fd it carried (-1:
 * none). A claim is answered, whatever its fate; a release is not. */
static void steer_message(struct ust_broker *b, unsigned s, const struct ust_steer_msg *m, size_t len, int fd,
			  struct round *rd)
{
	unsigned families = 0;
	int status = ust_broker_check(b, m, len, fd, &families);

	/* A release lets the port go in both families: a stack releases a
	 * port with its last user (and closes its socket for a group's). */
	if (len >= offsetof(struct ust_steer_msg, port) && m->op == UST_STEER_RELEASE) {
		for (uint32_t i = 0; !status && i < m->n; i++) {
			for (unsigned f = 0; f < 2; f++) {
				unsigned k = f * UST_BROKER_V6 + m->port[i];
				if (b->owner[k] == s) {
					b->owner[k] = 0;
					rd->dirty = true;
				}
				rd->dirty |= group_drop(b, s, k);
			}
		}
		return;
	}
	if (len < offsetof(struct ust_steer_msg, port) || rd->nans == UST_ARRAY_SIZE(rd->ans))
		return;
	if (!status && m->op == UST_STEER_CLAIM_GROUP) {
		steer_group_claim(b, s, m, families == 2, rd);
		return;
	}
	rd->ans[rd->nans].slot = s;
	rd->ans[rd->nans].a = (struct ust_steer_answer){ .seq = m->seq, .status = status };
	rd->ans[rd->nans].fd = -1;
	rd->nans++;
	if (status) {
		b->refused++;
		return;
	}
	for (uint32_t i = 0; i < m->n; i++) {
		for (unsigned f = 0; f < 2; f++) {
			unsigned k = f * UST_BROKER_V6 + m->port[i];
			/* A group's port stays the group's: a claim of it
			 * with another proof (a client port, SO_REUSEADDR's
			 * leeway) comes from a member, which reads it
			 * already, or from a stack the kernel let bind
			 * beside the group, which Linux would not give the
			 * group's SYNs either. */
			if (!(families & (1u << f)) || b->owner[k] == UST_BROKER_GROUPED)
				continue;
			rd->undo[rd->nundo++] = (typeof(rd->undo[0])){ .port = k, .was = b->owner[k] };
			b->owner[k] = (uint16_t)s;
		}
	}
	rd->dirty = true;
}

/* Reads what member s sent (a bounded number of messages a round). False
 * when its channel hung up: every process let it go. */
static bool steer_read(struct ust_broker *b, unsigned s, struct round *rd)
{
	for (unsigned k = 0; k < 64 && rd->nans < UST_ARRAY_SIZE(rd->ans); k++) {
		struct ust_steer_msg m;
		union {
			char b[CMSG_SPACE(4 * sizeof(int))];
			struct cmsghdr align;
		} cbuf;
		struct iovec iov = { &m, sizeof(m) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b,
				     .msg_controllen = sizeof(cbuf.b) };
		struct request rq = { .reply = -1 };
		ssize_t n = recvmsg(b->m[s].chan, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		if (n == 0 && mh.msg_controllen == 0)
			return false;
		take_cmsgs(&mh, &rq);
		if (!(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
			steer_message(b, s, &m, (size_t)n, rq.reply, rd);
		if (rq.reply >= 0)
			close(rq.reply);
	}
	return true;
}

/* The round's program, then its answers: a claim is answered once its
 * ports' frames reach the claimer. If the program cannot take the round's
 * claims (too many ranges), they are undone and refused. */
static void steer_finish(struct ust_broker *b, struct round *rd)
{
	if (rd->dirty && !steer_apply(b)) {
		for (unsigned i = rd->nundo; i-- > 0;) {
			b->owner[rd->undo[i].port] = rd->undo[i].was;
			if (rd->undo[i].group_of)
				group_remove(&b->m[rd->undo[i].group_of], rd->undo[i].port);
		}
		for (unsigned i = 0; i < rd->nans; i++) {
			if (!rd->ans[i].a.status) {
				rd->ans[i].a.status = ENOBUFS;
				rd->ans[i].a.group_port = rd->ans[i].a.group_v6 = 0;
				b->refused++;
			}
			if (rd->ans[i].fd >= 0)
				close(rd->ans[i].fd);
			rd->ans[i].fd = -1;
		}
		steer_apply(b);
	}
	for (unsigned i = 0; i < rd->nans; i++) {
		int chan = b->m[rd->ans[i].slot].chan;
		if (chan >= 0)
			send_fds(chan, &rd->ans[i].a, sizeof(rd->ans[i].a), &rd->ans[i].fd, rd->ans[i].fd >= 0);
		if (rd->ans[i].fd >= 0)
			close(rd->ans[i].fd);
	}
}

/* A granted request: the packet socket fd, with its receive ring of
 * ring_kib KiB, goes to the client, as a member of the group with its ARP
 * socket when the broker steers and has room (the reply socket then
 * stays, as the member's channel). Returns whether the broker kept fd and
 * the reply socket. */
static bool grant(struct ust_broker *b, int reply, int fd, unsigned ring_kib)
{
	char err[256];
	int arp = b->own >= 0 ? ust_link_arp_socket(b->cfg, err, sizeof(err)) : -1;

	if (arp >= 0) {
		fanout_alone(arp);
		if (steer_join(b, fd, reply)) {
			answer(reply, 0, ring_kib, fd, arp);
			close(arp);
			return true;
		}
		close(arp);
	}
	fanout_alone(fd);
	answer(reply, 0, ring_kib, fd, -1);
	return false;
}

/* Serves one request on bfd (see ust_broker_serve). */
static enum ust_broker_outcome serve(struct ust_broker *b, int bfd)
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
	unsigned ring_kib = b->cfg->rx_ring_kib;
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
	} else if (!rq.have_cred || rq.cred.uid != b->uid) {
		status = EPERM;
		out = UST_BROKER_FOREIGN;
	} else {
		char err[256];
		fd = ust_link_socket(b->cfg, &ring_kib, err, sizeof(err));
		status = fd < 0 ? -fd : 0;
		out = fd < 0 ? UST_BROKER_FAILED : UST_BROKER_GRANTED;
	}
	if (fd >= 0 && grant(b, rq.reply, fd, ring_kib))
		return out;
	if (fd < 0)
		answer(rq.reply, status, 0, -1, -1);
	close(rq.reply);
	if (fd >= 0)
		close(fd);
	return out;
}

enum ust_broker_outcome ust_broker_serve(int bfd, const struct ust_config *cfg, uid_t uid)
{
	/* No steering: only the fields serve reads. */
	struct ust_broker *b = calloc(1, sizeof(*b));
	enum ust_broker_outcome out;

	if (!b)
		return UST_BROKER_ERROR;
	b->cfg = cfg;
	b->uid = uid;
	b->own = -1;
	out = serve(b, bfd);
	free(b);
	return out;
}


enum ust_broker_outcome ust_broker_step(struct ust_broker *b, int bfd)
{
	static struct pollfd p[UST_BROKER_MEMBERS + 1];
	static uint16_t slot_of[UST_BROKER_MEMBERS + 1];
	static struct round rd;
	unsigned np = 0;
	enum ust_broker_outcome out = UST_BROKER_IDLE;

	if (!b->hung_up)
		p[np++] = (struct pollfd){ .fd = bfd, .events = POLLIN };
	for (unsigned s = 1; s < UST_BROKER_MEMBERS; s++) {
		if (b->m[s].chan < 0)
			continue;
		slot_of[np] = (uint16_t)s;
		p[np++] = (struct pollfd){ .fd = b->m[s].chan, .events = POLLIN };
	}
	if (!np && !b->zombies)
		return UST_BROKER_HANGUP;
	/* A zombie is most often a socket whose last holder is closing it
	 * this very moment (a process's exit closes its fds in order, the
	 * channel perhaps first): look again soon. */
	if (poll(p, np, b->zombies ? ZOMBIE_LOOK_MS : -1) < 0)
		return errno == EINTR ? UST_BROKER_IDLE : UST_BROKER_ERROR;
	steer_zombies(b);
	rd.nundo = rd.nans = 0;
	rd.dirty = false;
	for (unsigned i = b->hung_up ? 0 : 1; i < np; i++) {
		unsigned s = slot_of[i];
		if (p[i].revents && !steer_read(b, s, &rd))
			steer_leave(b, s);
	}
	steer_finish(b, &rd);
	if (!b->hung_up && p[0].revents) {
		out = serve(b, bfd);
		if (out == UST_BROKER_HANGUP) {
			/* The members' processes may outlive the request
			 * socket (a keeper): the group stays theirs. */
			b->hung_up = true;
			out = b->n > 1 ? UST_BROKER_IDLE : UST_BROKER_HANGUP;
		}
	}
	return out;
}
