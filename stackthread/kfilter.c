/* The exit keeper's filter (issue 13, docs/architecture.md §5): a keeper
 * on a packet socket it opened itself (root preloading the library, no
 * launcher to steer frames by port) reads only the frames of the ports it
 * still holds, not every frame for the address.
 *
 * Once no other process holds a socket the keeper serves (no relay left),
 * nothing can give it a port: its connections only end, and the set of
 * their ports only shrinks. So the filter may lag behind by a tick and
 * never miss a frame the keeper needs. While a relay is left (a forked
 * child holding a socket, which may still bind, connect or listen through
 * the keeper) the keeper keeps the address's whole filter. A socket kept
 * for an exec'd image (relay.c, us_relay_sync) is no such relay: the image
 * connects or listens through a socket of its own stack. */
#include <string.h>

#include "log.h"
#include "stack_impl.h"

/* The ports the filter passes now; narrowed once it was set. A keeper's
 * ports only shrink, but the address's collector (twcollect.c) takes
 * more: the filter follows them on the tick it takes them. */
static uint64_t applied[1024];
static bool narrowed, failed;

static void note_port(struct ust_tcb *t, void *arg)
{
	uint64_t *ports = arg;
	uint16_t p = ust_tcp_local_port(t);

	if (p)
		ports[p / 64] |= 1ull << (p % 64);
}

/* Is a relay left through which a port may still be taken here? */
static bool relays_may_claim(void)
{
	for (struct us_conn *c = us_st.all; c; c = c->all_next)
		if (!c->exec_kept)
			return true;
	return false;
}

void us_keeper_filter(void)
{
	static uint64_t ports[1024];
	static struct ust_steer_range r[UST_LINK_PORT_RANGES_MAX];
	static struct sock_filter prog[UST_LINK_PORT_FILTER_MAX];
	unsigned n, len;
	int e;

	if (!us_st.keeper || !us_st.link.filter_own || failed || relays_may_claim() ||
	    ust_now() < us_st.answer_until)
		return;
	memset(ports, 0, sizeof(ports));
	ust_tcp_each(&us_st.tcp, note_port, ports);
	if (narrowed && memcmp(ports, applied, sizeof(ports)) == 0)
		return;
	n = ust_steer_ranges(ports, r, UST_LINK_PORT_RANGES_MAX);
	len = ust_link_port_filter(us_st.cfg->addr, us_st.cfg->has_addr6 ? &us_st.cfg->addr6 : NULL, us_st.link.mac,
				   us_st.link.l3, r, n, prog);
	e = ust_link_set_filter(&us_st.link, prog, len);
	if (e < 0) {
		/* The address's whole filter, put back if an earlier narrowing
		 * had replaced it (a collector's ports grow): more to read,
		 * nothing lost. */
		ust_log(UST_LOG_INFO, "exit keeper: cannot narrow the link's filter to its ports: %s", strerror(-e));
		if (narrowed) {
			len = ust_link_filter(us_st.cfg->addr, us_st.cfg->has_addr6 ? &us_st.cfg->addr6 : NULL,
					      us_st.link.mac, us_st.link.l3, prog);
			if (ust_link_set_filter(&us_st.link, prog, len) < 0)
				ust_log(UST_LOG_WARN, "exit keeper: the link's filter stays narrowed to its old ports");
		}
		failed = true;
		return;
	}
	memcpy(applied, ports, sizeof(ports));
	narrowed = true;
	/* Echo requests and segments for ports nobody holds no longer reach
	 * us: another stack on the address answers them, or none. */
	us_ports_answer_never();
	us_st.st.ctr.event[UST_EV_LINK_FILTERS]++;
	ust_log(UST_LOG_DEBUG, "exit keeper: the link takes the frames of %u ranges of ports", n);
}
