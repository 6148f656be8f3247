/* What every stack on one address shares with the others: a small file in
 * the run directory, RUN_DIR/addr-A.B.C.D, mapped by each of them (the
 * processes of a pipeline, a forking server's children, keepers).
 *
 * It holds two things one kernel has once and N processes must share:
 *
 *   the secret  that initial sequence numbers and timestamp offsets are
 *               keyed with (RFC 6528). With one secret and one clock (the
 *               monotonic clock is the host's), a 4-tuple's ISN and TSval
 *               grow from one connection to the next whichever process
 *               makes them, so a peer still in TIME-WAIT takes the new SYN
 *               as a new incarnation (RFC 6191, Linux's
 *               tcp_timewait_state_process) instead of answering it with an
 *               ACK of the old one.
 *
 *   tombstones  of connections that ended a moment ago. Every stack reads
 *               every frame for the address; when the owner of a
 *               connection lets its port go on the last segment (the ACK
 *               that ends LAST-ACK, say), another stack may read that same
 *               frame a moment later, find the port free and answer it with
 *               a RST that would kill the peer's fresh TIME-WAIT — or a new
 *               connection the port was given to. A tombstone says "this
 *               4-tuple was someone's until just now": others stay quiet.
 *
 * A second file, RUN_DIR/ports-A.B.C.D, holds the client ports: a
 * connection's port chosen at connect() is held there, a word per port
 * naming its owner, instead of by a kernel socket of its own: an fd and
 * ~3.5 KiB of kernel memory less per connection (issue 13). An owner is a
 * slot of the file's owner table, alive while an OFD lock on the slot's
 * byte is held: the lock belongs to the open file, so a forked keeper that
 * inherits the file keeps its ports, and a process that dies (SIGKILL too)
 * lets them go, as its kernel sockets would. A generation per slot tells a
 * dead owner's words from a new owner's of the same slot. (A file of its
 * own, so that the first file's layout, which running stacks of an older
 * ustcp map, stays as it was.)
 *
 * A third, RUN_DIR/groups-A.B.C.D, holds the SO_REUSEPORT groups that
 * span processes (issue 14): an entry per stack and port, naming the
 * stack as its ports' owner (so it dies with the owner lock) and how many
 * listeners it has in the port's group. Every stack reads every SYN for
 * the address; each reads the port's entries and the flow's hash picks
 * one listener of the whole group (us_port_group_pick), the same for all.
 *
 * After the tombstones, the IPv6 addresses a live stack on the address
 * has checked (DAD passed): a new stack takes them as its own at once, as
 * a second program on a kernel finds its addresses configured, instead of
 * spending a second of its start on DAD (RFC 4862 §5.4: the node checks
 * an address once; the stacks on one address are one node to the link).
 * And the neighbours a stack resolved (version 4): a new stack's first
 * datagram to a neighbour another stack confirmed within ARP's reachable
 * time goes at once, as a program on a kernel finds the neighbour table
 * filled, instead of waiting for an ARP or ND exchange of its own (whose
 * answer every other stack and keeper on the address reads as well).
 * And the stack that answers for the address: one host answers a ping
 * once, and a segment for a port nobody holds with one RST, so of the
 * stacks that read every frame for the address one does (the answerer,
 * elected: the first to find none alive takes the word).
 *
 * The files are created once (under flock), readable and writable by their
 * owner only, and never shrink; a stack that cannot use it keeps a secret
 * of its own and no tombstones, and says so once. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "portshare.h"
#include "rundir.h"
#include "stack_impl.h"

#define SHARE_MAGIC 0x75737463u /* "ustc" */
#define SHARE_VERSION 4u
/* Enough for every connection that ends within TOMB_MS at the highest
 * rates seen (ab: 6,000 a second), four slots tried per 4-tuple: 1 MiB. */
#define TOMB_SLOTS 65536u /* a power of two */
#define TOMB_WAYS 4u     /* slots tried per 4-tuple */
/* How long other stacks stay quiet about a 4-tuple that just ended: far
 * longer than any stack takes to read a frame its peers read too. */
#define TOMB_MS 3000u

/* One tombstone: the 4-tuple (our address is the file's) and, in one word
 * so that a reader never sees half of it, until when (monotonic ms, mod
 * 2^32) and which process wrote it. A torn pair of key and word costs at
 * worst one RST too many or too few for that moment: no worse than having
 * no tombstone. */
struct tomb {
	_Atomic uint64_t key;  /* raddr << 32 | rport << 16 | lport; 0: empty */
	_Atomic uint64_t word; /* until_ms << 32 | pid */
};

/* An IPv6 address a live stack checked: its owner word (the ports
 * file's), written last; 0 empty, DAD_WRITING while the address is
 * written. A record is live while its owner is (owner_alive). */
#define DAD_SLOTS 8u
#define DAD_WRITING UINT32_MAX
struct dad_record {
	_Atomic uint32_t owner;
	uint32_t reserved;
	uint8_t addr[16];
};

/* A neighbour a stack on the address resolved: its address (IPv4
 * mapped) and link address, when it last confirmed them (ms, mod 2^32;
 * 0: empty), and the link address of the stack's own interface: the run
 * directory is the user's, not the network namespace's, and the same
 * address on another interface (another namespace, or a veth made again
 * since) is another link, whose neighbours are others. Written under a
 * sequence word, odd while a writer is at it: a reader that sees it odd,
 * or changed after reading, found nothing (the record is a cache; a miss
 * costs one ARP or ND exchange). */
#define NEIGH_SLOTS 64u /* a power of two */
#define NEIGH_WAYS 4u
struct neigh_record {
	_Atomic uint32_t seq;
	_Atomic uint32_t when_ms;
	_Atomic uint32_t addr[4];
	_Atomic uint32_t mac[2]; /* six bytes, then two zero */
	_Atomic uint32_t own[2]; /* ours, the same way */
};

/* The header (struct ust_share_head, portshare.h) is read and written on
 * its own: a whole struct share is 1 MiB, too much for a program thread's
 * stack (and its zeroing alone took a quarter of a one-shot program's
 * start-up). The ports file's layout is in portshare.h too: the
 * launcher's broker reads it. */
struct share {
	struct ust_share_head h;
	struct tomb tomb[TOMB_SLOTS];
	struct dad_record dad[DAD_SLOTS];
	_Atomic uint32_t answerer; /* its owner word; 0 none */
	uint32_t reserved;
	struct neigh_record neigh[NEIGH_SLOTS]; /* version 4 */
};
/* The layout of SHARE_VERSION 4, which other processes map (a change is a
 * new version; 065-churn.bats checks the file's size). */
_Static_assert(offsetof(struct share, tomb) == sizeof(struct ust_share_head), "struct share's layout");
_Static_assert(offsetof(struct share, neigh) == 1048808, "struct share's layout: version 3's fields first");
_Static_assert(sizeof(struct share) == 1048808 + NEIGH_SLOTS * 40, "struct share's size: version 4's");

/* RUN_DIR/groups-A.B.C.D: a member word per stack and port in an
 * SO_REUSEPORT group, in a window of GROUP_WAYS slots from the port's own.
 * A word: the port (16 bits), the stack's listeners in the group (16;
 * 0 for a stack whose listeners closed while their connections live on:
 * the port is still shared), and its owner word (32). 0: empty. 64
 * processes per port, and far more ports than any machine's groups. */
#define GROUPS_MAGIC 0x75737467u /* "ustg" */
#define GROUPS_VERSION 2u
#define GROUP_SLOTS 16384u /* a power of two */
#define GROUP_WAYS 64u

/* Beside them, the members' connections on their groups' ports (issue 14):
 * a 4-tuple's key (tomb_key: the peer's address folded to 32 bits for
 * IPv6) and its owner word, in a window of TUPLE_WAYS slots from the
 * key's hash. A stack writes one as its listener's child is made (before
 * its SYN-ACK leaves) and clears it as the child's control block goes;
 * a dead owner's are free. A segment that matches no connection on such
 * a port is reset only when no live entry holds its 4-tuple and the
 * table never overflowed (tuple_full: then nobody resets on any port,
 * as before). */
#define TUPLE_SLOTS 65536u /* a power of two */
#define TUPLE_WAYS 32u

struct group_share {
	struct ust_share_head h;
	_Atomic uint64_t member[GROUP_SLOTS];
	_Atomic uint64_t tuple[TUPLE_SLOTS];
	_Atomic uint32_t tuple_owner[TUPLE_SLOTS];
	_Atomic uint32_t tuple_full;
};

static struct share *share; /* mapped once per process; forks inherit it */
static uint32_t share_addr;  /* the address it is for */
static struct ust_port_share *pshare; /* the ports file, mapped by each owner */
static int share_fd = -1;    /* the ports file: our owner lock is its open file's */
static uint32_t my_owner;    /* our owner word (no REUSE bit); 0: none */
static struct group_share *gshare; /* the groups file, mapped at the first SO_REUSEPORT bind */
static const struct ust_config *share_cfg; /* where the files are (the stack's, for ever) */
static bool groups_tried;

/* Whether RUN_DIR may hold this process's files (rundir.h): checked once,
 * and a refusal said once, since the control socket and the address share
 * both ask. A refused directory costs ustcp-stat its view of this process
 * and the processes on one address their shared state; the program runs. */
bool us_run_dir_usable(const char *dir)
{
	static int verdict; /* 0 unknown, 1 usable, -1 refused */
	char why[128];

	if (verdict)
		return verdict > 0;
	if (ust_run_dir_check(dir, geteuid(), true, why, sizeof(why)) == 0) {
		verdict = 1;
		return true;
	}
	verdict = -1;
	ust_log(UST_LOG_WARN, "run directory \"%s\" refused: %s (ustcp-stat will not see this process, "
		"and it shares no state with other processes on its address)", dir, why);
	return false;
}

static uint64_t tomb_key(uint16_t lport, uint32_t raddr, uint16_t rport)
{
	return (uint64_t)raddr << 32 | (uint64_t)rport << 16 | lport;
}

static unsigned tomb_slot(uint64_t key)
{
	/* Fibonacci hashing: the ports vary in the low bits. */
	return (unsigned)((key * 0x9e3779b97f4a7c15ull) >> 32) & (TOMB_SLOTS - 1);
}

static uint32_t now_ms(void)
{
	return (uint32_t)(ust_now() / 1000);
}

/* Opens (creating it the first time) and checks the file: ours, a regular
 * file, nobody else's to read. Returns the fd or -errno. */
static int share_open(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	struct stat st;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077)) {
		REAL(close)(fd);
		return -EPERM;
	}
	return fd;
}

/* What a file is: the address share (with a secret) or the ports file. */
struct share_kind {
	uint32_t magic, version, size;
	bool secret;
};
static const struct share_kind addr_kind = { SHARE_MAGIC, SHARE_VERSION, sizeof(struct share), true };
static const struct share_kind ports_kind = { UST_PORTS_MAGIC, UST_PORTS_VERSION, sizeof(struct ust_port_share), false };
static const struct share_kind groups_kind = { GROUPS_MAGIC, GROUPS_VERSION, sizeof(struct group_share), false };

/* Under the file's lock: a new (empty) file gets its size and secret. */
static int share_init(int fd, const struct share_kind *k)
{
	struct ust_share_head head = { .magic = k->magic, .version = k->version, .size = k->size };
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size == 0) {
		if (k->secret && getrandom(head.secret, sizeof(head.secret), 0) != sizeof(head.secret))
			return -EIO;
		if (ftruncate(fd, k->size) < 0 ||
		    pwrite(fd, &head, sizeof(head), 0) != sizeof(head))
			return -errno;
		return 0;
	}
	if (pread(fd, &head, sizeof(head), 0) != sizeof(head) ||
	    head.magic != k->magic || head.version != k->version ||
	    head.size != k->size || st.st_size < (off_t)k->size)
		return -EPROTO;
	return 0;
}

/* Under the file's lock: is fd still the file at path? (Another process
 * may have replaced a file of an older layout meanwhile.) */
static bool still_there(int fd, const char *path)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
	       a.st_dev == b.st_dev;
}

/* Opens the file, initialised and locked for use; a file of another
 * layout (an older ustcp) is replaced. Returns the fd or -errno. */
static int share_get(const char *path, const struct share_kind *k)
{
	for (int tries = 0; tries < 4; tries++) {
		int fd = share_open(path), r;

		if (fd < 0)
			return fd;
		if (flock(fd, LOCK_EX) < 0) {
			r = -errno;
			REAL(close)(fd);
			return r;
		}
		r = still_there(fd, path) ? share_init(fd, k) : -EAGAIN;
		if (r == -EPROTO)
			unlink(path);
		flock(fd, LOCK_UN);
		if (r == 0)
			return fd;
		REAL(close)(fd);
		if (r != -EPROTO && r != -EAGAIN)
			return r;
	}
	return -EBUSY;
}

/* F_OFD_GETLK or F_OFD_SETLK on an owner slot's byte. */
static int owner_lock(int cmd, short type, unsigned slot, struct flock *fl)
{
	*fl = (struct flock){ .l_type = type, .l_whence = SEEK_SET,
			      .l_start = UST_OWNER_LOCK_BASE + slot, .l_len = 1 };
	return REAL(fcntl)(share_fd, cmd, fl);
}

/* Becomes an owner: the first slot whose lock we get, from one picked by
 * pid so that processes rarely contend. Without one (all taken, or no
 * OFD locks) ports stay in the kernel. */
static void share_own(void)
{
	struct flock fl;

	for (unsigned i = 0, base = (unsigned)getpid(); i < UST_OWNER_SLOTS; i++) {
		unsigned slot = (base + i) % UST_OWNER_SLOTS;
		uint32_t gen;

		if (owner_lock(F_OFD_SETLK, F_WRLCK, slot, &fl) < 0) {
			if (errno == EAGAIN || errno == EACCES)
				continue;
			return;
		}
		do
			gen = (atomic_fetch_add(&pshare->owner_gen[slot], 1) + 1) & UST_OWNER_GEN_MASK;
		while (!gen);
		my_owner = slot << UST_OWNER_SHIFT | gen;
		return;
	}
}

/* Is the owner word w (a port's) ours or a live stack's? A slot whose
 * generation moved on, or whose lock nobody holds, is a dead owner's. An
 * answer we cannot get counts as alive: a port left unused is the safe
 * mistake. */
static bool owner_alive(uint32_t w)
{
	unsigned slot;
	struct flock fl;

	w &= ~UST_OWNER_REUSE;
	slot = w >> UST_OWNER_SHIFT;
	if (w == my_owner)
		return true;
	if (slot >= UST_OWNER_SLOTS || (atomic_load(&pshare->owner_gen[slot]) & UST_OWNER_GEN_MASK) != (w & UST_OWNER_GEN_MASK))
		return false;
	if (owner_lock(F_OFD_GETLK, F_WRLCK, slot, &fl) < 0)
		return true;
	return fl.l_type != F_UNLCK;
}

unsigned us_share_owners(unsigned *slots, unsigned max)
{
	/* Ranges of slots still to look in. A query reports one lock in its
	 * range that is not this open file's (ours is not), not the first:
	 * the range splits around it. One query per owner and per gap. */
	struct { unsigned from, to; } todo[2 * 64 + 2];
	unsigned n = 0, ntodo = 1;

	if (!pshare || !my_owner)
		return 0;
	todo[0].from = 0;
	todo[0].to = UST_OWNER_SLOTS;
	while (ntodo && n < max) {
		unsigned from = todo[--ntodo].from, to = todo[ntodo].to, slot;
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
				    .l_start = UST_OWNER_LOCK_BASE + from, .l_len = to - from };

		if (from >= to || REAL(fcntl)(share_fd, F_OFD_GETLK, &fl) < 0 || fl.l_type == F_UNLCK)
			continue;
		if (fl.l_start < UST_OWNER_LOCK_BASE + from || fl.l_start >= UST_OWNER_LOCK_BASE + to)
			continue; /* not an owner's lock */
		slot = (unsigned)(fl.l_start - UST_OWNER_LOCK_BASE);
		if (slot != my_owner >> UST_OWNER_SHIFT)
			slots[n++] = slot;
		if (ntodo + 2 > sizeof(todo) / sizeof(todo[0]))
			break;
		todo[ntodo].from = from;
		todo[ntodo++].to = slot;
		todo[ntodo].from = slot + 1;
		todo[ntodo++].to = to;
	}
	return n;
}

bool us_share_port_take(uint16_t port, bool reuse)
{
	uint32_t w;

	if (!pshare || !my_owner)
		return false;
	w = atomic_load(&pshare->port[port]);
	if (w && owner_alive(w))
		return false;
	return atomic_compare_exchange_strong(&pshare->port[port], &w, my_owner | (reuse ? UST_OWNER_REUSE : 0));
}

bool us_share_port_adopt(uint16_t port, uint32_t from, bool reuse)
{
	uint32_t mark = reuse ? UST_OWNER_REUSE : 0, w = from | mark;

	if (!pshare || !my_owner || !from)
		return false;
	return atomic_compare_exchange_strong(&pshare->port[port], &w, my_owner | mark);
}

bool us_share_port_ours(uint16_t port)
{
	return pshare && my_owner && (atomic_load(&pshare->port[port]) & ~UST_OWNER_REUSE) == my_owner;
}

void us_share_port_give(uint16_t port)
{
	uint32_t w;

	if (!pshare || !my_owner)
		return;
	w = atomic_load(&pshare->port[port]);
	if ((w & ~UST_OWNER_REUSE) == my_owner)
		atomic_compare_exchange_strong(&pshare->port[port], &w, 0);
}

bool us_share_port_busy(uint16_t port, bool reuse)
{
	uint32_t w;

	if (!pshare)
		return false;
	/* The caller's kernel bind comes before this read, and a taker's
	 * word before its kernel probe: one of the two sees the other. */
	atomic_thread_fence(memory_order_seq_cst);
	w = atomic_load(&pshare->port[port]);
	if (!w || (w & ~UST_OWNER_REUSE) == my_owner || (reuse && (w & UST_OWNER_REUSE)))
		return false;
	return owner_alive(w);
}

bool us_share_owner(void)
{
	return pshare && my_owner;
}

uint32_t us_share_owner_word(void)
{
	return pshare ? my_owner : 0;
}

void us_share_port_mark(uint16_t port, bool reuse)
{
	uint32_t w;

	if (!pshare || !my_owner)
		return;
	w = atomic_load(&pshare->port[port]);
	if ((w & ~UST_OWNER_REUSE) == my_owner)
		atomic_compare_exchange_strong(&pshare->port[port], &w, my_owner | (reuse ? UST_OWNER_REUSE : 0));
}

int us_share_fd(void)
{
	return share_fd;
}

void us_share_disown(void)
{
	/* Only our copy of the fd: the lock is the open file's, and whoever
	 * else holds it (the parent, or the keeper) still owns those ports. */
	if (share_fd >= 0)
		REAL(close)(share_fd);
	if (pshare)
		munmap(pshare, sizeof(*pshare));
	if (gshare)
		munmap(gshare, sizeof(*gshare));
	pshare = NULL;
	gshare = NULL;
	groups_tried = false;
	share_fd = -1;
	my_owner = 0;
}

/* RUN_DIR/NAME-A.B.C.D of kind k, opened (created the first time) and
 * mapped at *map: 0, or -errno without it. Its fd stays open in *fd if fd
 * is given, else it is closed (the mapping holds the file). */
static int share_map(const struct ust_config *cfg, const char *name, const struct share_kind *k, void **map,
		     int *fd)
{
	char path[PATH_MAX + 32];
	uint32_t a = cfg->addr;
	void *m;
	int f, r;

	snprintf(path, sizeof(path), "%s/%s-%u.%u.%u.%u", cfg->run_dir, name, a >> 24,
		 (a >> 16) & 255, (a >> 8) & 255, a & 255);
	f = share_get(path, k);
	if (f < 0)
		return f;
	m = mmap(NULL, k->size, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
	r = m == MAP_FAILED ? -errno : 0;
	if (r < 0 || !fd)
		REAL(close)(f);
	else
		*fd = f;
	if (r == 0)
		*map = m;
	return r;
}

/* RUN_DIR/ports-A.B.C.D, opened for this stack alone (an open file of its
 * own, so an owner of its own) and mapped. Without it, client ports are
 * held in the kernel as the others are. */
static void ports_open(const struct ust_config *cfg)
{
	void *m;
	int fd;

	share_cfg = cfg;
	if (share_map(cfg, "ports", &ports_kind, &m, &fd) < 0)
		return;
	pshare = m;
	share_fd = us_fd_high(fd);
	share_own();
}

int us_share_open(const struct ust_config *cfg)
{
	void *m;
	int r;

	if (!us_run_dir_usable(cfg->run_dir))
		return -EPERM; /* another user could read the secret or write the tombs */
	/* A new stack (a forked child's, say) is a new owner of ports. */
	us_share_disown();
	ports_open(cfg);
	if (share && share_addr == cfg->addr)
		return 0;
	if (share) { /* a forked child on another address */
		munmap(share, sizeof(struct share));
		share = NULL;
	}
	if ((r = share_map(cfg, "addr", &addr_kind, &m, NULL)) < 0)
		return r;
	share = m;
	share_addr = cfg->addr;
	return 0;
}

bool us_share_dad_passed(const struct ust_ip6 *a)
{
	if (!share || !pshare)
		return false;
	for (unsigned i = 0; i < DAD_SLOTS; i++) {
		uint32_t w = atomic_load(&share->dad[i].owner);
		uint8_t addr[16];

		if (!w || w == DAD_WRITING)
			continue;
		memcpy(addr, share->dad[i].addr, sizeof(addr));
		/* A record is rewritten only after its owner died, and an
		 * owner word is never used twice: the same word, alive after
		 * the read, means the address read was its. */
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load(&share->dad[i].owner) == w && !memcmp(addr, a->b, sizeof(addr)) && owner_alive(w))
			return true;
	}
	return false;
}

void us_share_dad_note(const struct ust_ip6 *a)
{
	if (!share || !my_owner || us_share_dad_passed(a))
		return;
	for (unsigned i = 0; i < DAD_SLOTS; i++) {
		uint32_t w = atomic_load(&share->dad[i].owner);

		if (w == DAD_WRITING || (w && owner_alive(w)) ||
		    !atomic_compare_exchange_strong(&share->dad[i].owner, &w, DAD_WRITING))
			continue;
		memcpy(share->dad[i].addr, a->b, sizeof(share->dad[i].addr));
		atomic_store(&share->dad[i].owner, my_owner);
		return;
	}
	/* All taken by live stacks on other IPv6 addresses: the next
	 * stack on this one checks it itself. */
}

/* How long another answerer found alive is taken to live on without
 * asking again: the kernel is asked (F_OFD_GETLK) at most this often, and
 * an answerer that died answers nothing for at most this long. */
#define ANSWERER_LOOK UST_MS(100)

bool us_share_answerer(bool may)
{
	static uint32_t seen;   /* another answerer, found alive */
	static ust_time seen_at;
	uint32_t w;
	ust_time now;

	if (!share || !my_owner)
		return may; /* no share, no election: as before, each answers */
	w = atomic_load(&share->answerer);
	if (!may) {
		if (w == my_owner)
			atomic_compare_exchange_strong(&share->answerer, &w, 0);
		return false;
	}
	if (w == my_owner)
		return true;
	now = ust_now();
	if (w && w == seen && now - seen_at < ANSWERER_LOOK)
		return false;
	if (!w || !owner_alive(w)) {
		if (atomic_compare_exchange_strong(&share->answerer, &w, my_owner))
			return true;
		/* Another took it meanwhile (w is its word now). */
	}
	seen = w;
	seen_at = now;
	return false;
}

bool us_share_secret(uint64_t key[2])
{
	if (!share)
		return false;
	memcpy(key, share->h.secret, sizeof(share->h.secret));
	return true;
}

void us_share_bury(uint16_t lport, uint32_t raddr, uint16_t rport)
{
	uint64_t key = tomb_key(lport, raddr, rport);
	uint32_t now = now_ms();
	uint64_t word = (uint64_t)(now + TOMB_MS) << 32 | (uint32_t)getpid();
	unsigned base = tomb_slot(key), pick = base;

	if (!share)
		return;
	/* The 4-tuple's own slot, else the first expired one, else the one
	 * nearest its end. */
	for (unsigned i = 0, oldest = UINT32_MAX; i < TOMB_WAYS; i++) {
		unsigned s = (base + i) & (TOMB_SLOTS - 1);
		uint32_t left = (uint32_t)(atomic_load(&share->tomb[s].word) >> 32) - now;

		if (atomic_load(&share->tomb[s].key) == key) {
			pick = s;
			break;
		}
		if ((int32_t)left <= 0)
			left = 0;
		if (left < oldest) {
			oldest = left;
			pick = s;
		}
	}
	atomic_store(&share->tomb[pick].word, 0);
	atomic_store(&share->tomb[pick].key, key);
	atomic_store(&share->tomb[pick].word, word);
}

/* The live tombstone of this 4-tuple: its burier's pid, or 0. */
static uint32_t tomb_of(uint16_t lport, uint32_t raddr, uint16_t rport)
{
	uint64_t key = tomb_key(lport, raddr, rport);
	unsigned base = tomb_slot(key);
	uint32_t now = now_ms();

	if (!share)
		return 0;
	for (unsigned i = 0; i < TOMB_WAYS; i++) {
		unsigned s = (base + i) & (TOMB_SLOTS - 1);
		uint64_t word;

		if (atomic_load(&share->tomb[s].key) != key)
			continue;
		word = atomic_load(&share->tomb[s].word);
		return (int32_t)((uint32_t)(word >> 32) - now) > 0 ? (uint32_t)word : 0;
	}
	return 0;
}

bool us_share_buried(uint16_t lport, uint32_t raddr, uint16_t rport)
{
	uint32_t pid = tomb_of(lport, raddr, rport);

	/* Our own: a late duplicate gets the RST Linux would send. */
	return pid && pid != (uint32_t)getpid();
}

bool us_share_buried_ours(uint16_t lport, uint32_t raddr, uint16_t rport)
{
	uint32_t pid = tomb_of(lport, raddr, rport);

	return pid && pid == (uint32_t)getpid();
}

/* ---- SO_REUSEPORT groups across processes ---- */

static uint64_t group_word(uint16_t port, unsigned listeners, uint32_t owner)
{
	return (uint64_t)port << 48 | (uint64_t)(listeners & 0xffff) << 32 | owner;
}

static unsigned group_base(uint16_t port)
{
	return (unsigned)(((uint64_t)port * 0x9e3779b97f4a7c15ull) >> 40) & (GROUP_SLOTS - 1);
}

static _Atomic uint64_t *group_slot(uint16_t port, unsigned i)
{
	return &gshare->member[(group_base(port) + i) & (GROUP_SLOTS - 1)];
}

/* The groups file needs an owner slot (its entries name their owner) and
 * is mapped when first wanted, so that a program that never binds with
 * SO_REUSEPORT never opens it (its fd closed: the owner lock lives on the
 * ports file). Without it, SO_REUSEPORT groups span one stack. */
bool us_share_groups(void)
{
	void *m;

	if (!pshare || !my_owner)
		return false;
	if (!gshare && !groups_tried) {
		groups_tried = true;
		if (share_map(share_cfg, "groups", &groups_kind, &m, NULL) == 0)
			gshare = m;
	}
	return gshare != NULL;
}

bool us_share_group_set(uint16_t port, unsigned listeners)
{
	uint64_t want = group_word(port, listeners, my_owner), w;

	if (!us_share_groups())
		return false;
	/* Our entry, if we have one: only we write it. */
	for (unsigned i = 0; i < GROUP_WAYS; i++) {
		_Atomic uint64_t *m = group_slot(port, i);

		w = atomic_load(m);
		if ((uint16_t)(w >> 48) == port && (uint32_t)w == my_owner) {
			atomic_store(m, want);
			return true;
		}
	}
	/* Else an empty slot in the window, or a dead stack's. */
	for (unsigned i = 0; i < GROUP_WAYS; i++) {
		_Atomic uint64_t *m = group_slot(port, i);

		w = atomic_load(m);
		if ((w == 0 || !owner_alive((uint32_t)w)) && atomic_compare_exchange_strong(m, &w, want))
			return true;
	}
	return false;
}

void us_share_group_leave(uint16_t port)
{
	if (!us_share_groups())
		return;
	for (unsigned i = 0; i < GROUP_WAYS; i++) {
		_Atomic uint64_t *m = group_slot(port, i);
		uint64_t w = atomic_load(m);

		if ((uint16_t)(w >> 48) == port && (uint32_t)w == my_owner)
			atomic_compare_exchange_strong(m, &w, 0);
	}
}

bool us_share_group_others(uint16_t port)
{
	if (!us_share_groups())
		return false;
	for (unsigned i = 0; i < GROUP_WAYS; i++) {
		uint64_t w = atomic_load(group_slot(port, i));
		uint32_t owner = (uint32_t)w;

		if (w && (uint16_t)(w >> 48) == port && owner != my_owner && (owner >> UST_OWNER_SHIFT) < UST_OWNER_SLOTS &&
		    (atomic_load(&pshare->owner_gen[owner >> UST_OWNER_SHIFT]) & UST_OWNER_GEN_MASK) == (owner & UST_OWNER_GEN_MASK))
			return true;
	}
	return false;
}

unsigned us_share_group_members(uint16_t port, struct us_group_member *out, unsigned max)
{
	unsigned n = 0;

	if (!us_share_groups())
		return 0;
	for (unsigned i = 0; i < GROUP_WAYS && n < max; i++) {
		uint64_t w = atomic_load(group_slot(port, i));
		struct us_group_member m = { .owner = (uint32_t)w, .listeners = (uint16_t)(w >> 32),
					     .self = (uint32_t)w == my_owner };
		unsigned j;

		if (!w || (uint16_t)(w >> 48) != port || (!m.self && !owner_alive(m.owner)))
			continue;
		/* In owner order, so that every stack sees one list. */
		for (j = n; j > 0 && out[j - 1].owner > m.owner; j--)
			out[j] = out[j - 1];
		out[j] = m;
		n++;
	}
	return n;
}

/* ---- the group members' connections ---- */

static _Atomic uint64_t *tuple_at(uint64_t key, unsigned i, _Atomic uint32_t **owner)
{
	unsigned s = ((unsigned)((key * 0x9e3779b97f4a7c15ull) >> 40) + i) & (TUPLE_SLOTS - 1);

	*owner = &gshare->tuple_owner[s];
	return &gshare->tuple[s];
}

void us_share_tuple_hold(uint16_t lport, uint32_t raddr, uint16_t rport)
{
	uint64_t key = tomb_key(lport, raddr, rport);
	_Atomic uint32_t *o;

	if (!us_share_groups())
		return;
	/* An empty slot first; a dead owner's only when the window has
	 * none (each costs an F_OFD_GETLK). The key goes in after the
	 * claim: readers match the key, then ask whether its owner lives. */
	for (int pass = 0; pass < 2; pass++)
		for (unsigned i = 0; i < TUPLE_WAYS; i++) {
			_Atomic uint64_t *k = tuple_at(key, i, &o);
			uint32_t w = atomic_load(o);
			if ((pass == 0 && w != 0) || (pass == 1 && (w == 0 || owner_alive(w))))
				continue;
			if (atomic_compare_exchange_strong(o, &w, my_owner)) {
				atomic_store(k, key);
				return;
			}
		}
	atomic_store(&gshare->tuple_full, 1);
}

void us_share_tuple_let_go(uint16_t lport, uint32_t raddr, uint16_t rport)
{
	uint64_t key = tomb_key(lport, raddr, rport);
	_Atomic uint32_t *o;

	if (!gshare)
		return;
	for (unsigned i = 0; i < TUPLE_WAYS; i++) {
		_Atomic uint64_t *k = tuple_at(key, i, &o);
		if (atomic_load(k) == key && atomic_load(o) == my_owner) {
			atomic_store(k, 0);
			atomic_store(o, 0);
			return;
		}
	}
}

bool us_share_tuple_free(uint16_t lport, uint32_t raddr, uint16_t rport)
{
	uint64_t key = tomb_key(lport, raddr, rport);
	_Atomic uint32_t *o;

	if (!us_share_groups() || atomic_load(&gshare->tuple_full))
		return false;
	for (unsigned i = 0; i < TUPLE_WAYS; i++) {
		_Atomic uint64_t *k = tuple_at(key, i, &o);
		uint32_t w = atomic_load(o);
		if (atomic_load(k) == key && w && owner_alive(w))
			return false;
	}
	return true;
}

/* ---- neighbours ---- */

static unsigned neigh_slot(const struct ust_ip6 *a)
{
	uint64_t k = (uint64_t)ust_get32(a->b + 8) << 32 ^ ust_get32(a->b + 12) ^ (uint64_t)ust_get32(a->b) << 16 ^
		     ust_get32(a->b + 4);

	return (unsigned)((k * 0x9e3779b97f4a7c15ull) >> 40) & (NEIGH_SLOTS - 1);
}

/* Reads record r whole (addr: the neighbour's address and our link
 * address, as stored), or says it could not (being written, or empty). */
static bool neigh_read(struct neigh_record *r, uint32_t addr[6], uint8_t mac[UST_ETH_ALEN], uint32_t *when)
{
	uint32_t seq = atomic_load_explicit(&r->seq, memory_order_acquire), m[2];

	if (seq & 1)
		return false;
	for (unsigned i = 0; i < 4; i++)
		addr[i] = atomic_load_explicit(&r->addr[i], memory_order_relaxed);
	addr[4] = atomic_load_explicit(&r->own[0], memory_order_relaxed);
	addr[5] = atomic_load_explicit(&r->own[1], memory_order_relaxed);
	m[0] = atomic_load_explicit(&r->mac[0], memory_order_relaxed);
	m[1] = atomic_load_explicit(&r->mac[1], memory_order_relaxed);
	*when = atomic_load_explicit(&r->when_ms, memory_order_relaxed);
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&r->seq, memory_order_relaxed) != seq || !*when)
		return false;
	memcpy(mac, m, UST_ETH_ALEN);
	return true;
}

/* A record's key as neigh_read gives it: the address, then our link
 * address and two zero bytes. */
static void neigh_key(uint32_t key[6], const struct ust_ip6 *a, const uint8_t *own)
{
	memset(key, 0, 6 * sizeof(uint32_t));
	memcpy(key, a->b, 16);
	memcpy(key + 4, own, UST_ETH_ALEN);
}

bool us_share_neigh_recall(void *ctx, const struct ust_ip6 *a, uint8_t mac[UST_ETH_ALEN], ust_time *age)
{
	unsigned base = neigh_slot(a);
	uint32_t now = now_ms(), key[6];
	bool found = false;

	if (!share)
		return false;
	neigh_key(key, a, ctx);
	/* The newest, should two records hold the address (two writers at
	 * once, one of them in a record that was busy). */
	for (unsigned i = 0; i < NEIGH_WAYS; i++) {
		struct neigh_record *r = &share->neigh[(base + i) & (NEIGH_SLOTS - 1)];
		uint32_t addr[6], when;
		uint8_t m[UST_ETH_ALEN];
		int32_t ago;

		if (!neigh_read(r, addr, m, &when) || memcmp(addr, key, sizeof(key)))
			continue;
		ago = (int32_t)(now - when);
		if (ago < 0)
			ago = 0; /* within a writer's millisecond */
		if (!found || UST_MS(ago) < *age) {
			*age = UST_MS(ago);
			memcpy(mac, m, UST_ETH_ALEN);
			found = true;
		}
	}
	return found;
}

void us_share_neigh_note(void *ctx, const struct ust_ip6 *a, const uint8_t mac[UST_ETH_ALEN])
{
	unsigned base = neigh_slot(a), pick = NEIGH_SLOTS;
	uint32_t now = now_ms() | 1, oldest = 0, m[2] = { 0, 0 }, key[6];
	bool own = false;
	struct neigh_record *r;
	uint32_t seq;

	if (!share)
		return;
	neigh_key(key, a, ctx);
	/* The address's own record, else an empty one, else the oldest. A
	 * record left odd by a writer that died is neither: that way is lost
	 * until the file is made again, a miss at worst. */
	for (unsigned i = 0; i < NEIGH_WAYS && !own; i++) {
		unsigned s = (base + i) & (NEIGH_SLOTS - 1);
		struct neigh_record *x = &share->neigh[s];
		uint32_t addr[6], when;
		uint8_t old[UST_ETH_ALEN];

		if (neigh_read(x, addr, old, &when)) {
			if (!memcmp(addr, key, sizeof(key))) {
				pick = s;
				own = true;
			} else if (oldest != UINT32_MAX && now - when >= oldest) {
				oldest = now - when;
				pick = s;
			}
		} else if (!(atomic_load(&x->seq) & 1) && !atomic_load(&x->when_ms)) {
			pick = s;
			oldest = UINT32_MAX;
		}
	}
	/* Forgetting (mac NULL): only the address's own record. */
	if (pick == NEIGH_SLOTS || (!mac && !own))
		return;
	r = &share->neigh[pick];
	/* One writer at a time; one that finds another at it lets it be. */
	seq = atomic_load(&r->seq);
	if ((seq & 1) || !atomic_compare_exchange_strong(&r->seq, &seq, seq + 1))
		return;
	/* The odd word before any field (a seqlock's writer): a reader that
	 * sees a new field sees the odd word too, and retries. */
	atomic_thread_fence(memory_order_release);
	if (mac)
		memcpy(m, mac, UST_ETH_ALEN);
	for (unsigned i = 0; i < 4; i++)
		atomic_store_explicit(&r->addr[i], key[i], memory_order_relaxed);
	atomic_store_explicit(&r->own[0], key[4], memory_order_relaxed);
	atomic_store_explicit(&r->own[1], key[5], memory_order_relaxed);
	atomic_store_explicit(&r->mac[0], m[0], memory_order_relaxed);
	atomic_store_explicit(&r->mac[1], m[1], memory_order_relaxed);
	atomic_store_explicit(&r->when_ms, mac ? now : 0, memory_order_relaxed);
	atomic_store_explicit(&r->seq, seq + 2, memory_order_release);
}
