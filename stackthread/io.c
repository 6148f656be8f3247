/* Watchers of the fds the stack holds per connection or per listener: the
 * stack ends of the pairs and the kernel listeners beside a listener on
 * loopback, as many as the program makes. They are in an epoll set of their
 * own (the stack's io_fd), which libev watches as one fd (us_on_io).
 *
 * Why not libev's own ev_io: libev keeps a table indexed by fd number, and
 * the stack's fds lie above half the fd limit (fds.c), so the first
 * watcher on one made libev zero a table of 10,000 entries at an fd limit
 * of 20,000 (32,768 above 65,536): 0.7 to 1.0 ms of every program's
 * start-up on the VM this was measured on, where each page written for the
 * first time costs a fault of about 11 us. The fds libev still watches
 * (the link, the wake-ups, the sets, the control socket, and the looped
 * connections and steering groups' sockets, 64 each at most, which keep
 * libev's top priority as the link's) are few and sit at the fixed base
 * (us_fd_fixed, fds.c), just above the numbers select() can use.
 *
 * The semantics are libev's: a watcher waits for its fd to be readable
 * (US_IO_IN) or writable (US_IO_OUT), or both, until stopped; a hang-up or
 * an error counts as both, and a callback that stops the other direction,
 * or forgets the watcher, before it ran keeps it from running. Like
 * libev, a stop changes nothing in the set at once: the set learns it when
 * it next reports what nobody waits for (one epoll_ctl, as libev's own
 * lazy removal), so a direction stopped and started again within a turn
 * costs no system call. A watcher's fd must not close, or change, while
 * the set holds it: us_io_forget takes it out first, and drops whatever
 * the set reported for it that is still to be dispatched in this turn
 * (its memory may go next). Used on the stack thread only. */
#include <errno.h>
#include <sys/epoll.h>

#include "stack_impl.h"

#define IO_BATCH 64

/* The turn being dispatched: what the set reported, and the next entry. */
static struct epoll_event batch[IO_BATCH];
static int batch_n, batch_next;

static uint32_t epoll_events(unsigned dirs)
{
	return (dirs & US_IO_IN ? EPOLLIN : 0u) | (dirs & US_IO_OUT ? EPOLLOUT : 0u);
}

void us_io_init(struct us_io *w, int set, int fd, void (*on_in)(struct us_io *), void (*on_out)(struct us_io *))
{
	w->set = set;
	w->fd = fd;
	w->want = w->reg = 0;
	w->in_set = false;
	w->on_in = on_in;
	w->on_out = on_out;
}

void us_io_set_fd(struct us_io *w, int fd)
{
	us_io_forget(w);
	w->fd = fd;
}

/* The set made to hold what the watcher waits for (and nothing more). */
static void io_sync(struct us_io *w)
{
	struct epoll_event e = { .events = epoll_events(w->want), .data.ptr = w };

	if (!w->want) {
		if (w->in_set)
			epoll_ctl(w->set, EPOLL_CTL_DEL, w->fd, NULL);
		w->in_set = false;
		w->reg = 0;
		return;
	}
	if (w->in_set && epoll_ctl(w->set, EPOLL_CTL_MOD, w->fd, &e) == 0) {
		w->reg = w->want;
		return;
	}
	/* Not in the set yet (or its entry went with a file closed
	 * behind our back, which MOD reports as ENOENT). */
	w->in_set = epoll_ctl(w->set, EPOLL_CTL_ADD, w->fd, &e) == 0 ||
		    (errno == EEXIST && epoll_ctl(w->set, EPOLL_CTL_MOD, w->fd, &e) == 0);
	w->reg = w->in_set ? w->want : 0;
}

void us_io_start(struct us_io *w, unsigned dirs)
{
	w->want |= (uint8_t)dirs;
	if (w->fd >= 0 && (w->reg & w->want) != w->want)
		io_sync(w);
}

void us_io_stop(struct us_io *w, unsigned dirs)
{
	w->want &= (uint8_t)~dirs;
}

void us_io_forget(struct us_io *w)
{
	w->want = 0;
	if (w->in_set && w->fd >= 0)
		epoll_ctl(w->set, EPOLL_CTL_DEL, w->fd, NULL);
	w->in_set = false;
	w->reg = 0;
	/* From the entry being dispatched on: its own callback may forget
	 * (and free) the watcher it runs for. */
	for (int i = batch_next > 0 ? batch_next - 1 : 0; i < batch_n; i++)
		if (batch[i].data.ptr == w)
			batch[i].data.ptr = NULL;
}

void us_on_io(struct ev_loop *ev, ev_io *iow, int revents)
{
	(void)ev;
	(void)revents;
	batch_n = epoll_wait(iow->fd, batch, IO_BATCH, 0);
	for (batch_next = 0; batch_next < batch_n;) {
		struct epoll_event *e = &batch[batch_next++];
		struct us_io *w = e->data.ptr;
		unsigned got = 0, act;

		if (!w)
			continue;
		if (e->events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			got |= US_IO_IN;
		if (e->events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
			got |= US_IO_OUT;
		act = got & w->want;
		/* Reported for a direction nobody waits for any more: the set
		 * learns what is wanted now (a hang-up with nothing wanted
		 * would be reported on every turn). */
		if (!act || (got & w->reg & ~w->want))
			io_sync(w);
		if (act & US_IO_IN)
			w->on_in(w);
		/* Unless the first callback forgot it (e->data.ptr) or
		 * stopped this direction. */
		if ((act & US_IO_OUT) && e->data.ptr && (w->want & US_IO_OUT))
			w->on_out(w);
	}
	batch_n = batch_next = 0;
}
