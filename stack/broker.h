/* The launcher's broker (ustcp(1)): the one process that keeps CAP_NET_RAW
 * and hands packet sockets to the programs it launched.
 *
 * The protocol, on a SOCK_SEQPACKET socket every process of the program's
 * tree inherits (USTCP_BROKER_FD): a request is the text UST_BROKER_REQUEST
 * with SCM_CREDENTIALS (checked by the kernel: the broker's end has
 * SO_PASSCRED) and SCM_RIGHTS carrying one end of a fresh SOCK_SEQPACKET
 * pair. The answer goes on that pair: an int, 0 with SCM_RIGHTS carrying a
 * packet socket opened, filtered for the configured address, locked and
 * bound to the configured interface (ust_link_socket), or an errno and no
 * fd. The library's side is broker_link in stackthread/start.c. */
#ifndef USTCP_BROKER_H
#define USTCP_BROKER_H

#include <sys/types.h>

#include "config.h"

#define UST_BROKER_REQUEST "ustcp-link 1\n"

/* What the broker did with what it read. */
enum ust_broker_outcome {
	UST_BROKER_GRANTED,   /* a packet socket sent */
	UST_BROKER_FAILED,    /* a good request, but the socket could not be opened (its errno sent) */
	UST_BROKER_MALFORMED, /* not the request text, or cut short (EPROTO sent) */
	UST_BROKER_FOREIGN,   /* credentials missing or not the program's user (EPERM sent) */
	UST_BROKER_NO_REPLY,  /* no socket to answer on: nothing sent */
	UST_BROKER_IDLE,      /* nothing read (EINTR, an empty message) */
	UST_BROKER_HANGUP,    /* every client end closed: the broker is done */
	UST_BROKER_ERROR,     /* its own socket failed: the broker is done */
};

/* Reads one request from bfd, the broker's end (SO_PASSCRED set), blocking,
 * and answers it without ever waiting for the client: a packet socket for
 * cfg's interface and address if the request is well formed and comes from
 * uid. Returns what it did. */
enum ust_broker_outcome ust_broker_serve(int bfd, const struct ust_config *cfg, uid_t uid);

#endif
