/* The layout of RUN_DIR/ports-A.B.C.D (stackthread/addrshare.c): a word per
 * port naming its owner, and each owner slot's generation. The stacks map
 * it; the launcher's broker reads it to check a client port's claim
 * (steer.h), so both take the layout from here. */
#ifndef USTCP_PORTSHARE_H
#define USTCP_PORTSHARE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* A shared file's header (the address share's too). */
struct ust_share_head {
	uint32_t magic, version, size, reserved;
	uint64_t secret[2];
};

#define UST_PORTS_MAGIC 0x75737470u /* "ustp" */
#define UST_PORTS_VERSION 1u

/* Owners: as many stacks on one address at once as there are slots. */
#define UST_OWNER_SLOTS 2048u
/* A port's word: its owner's slot and generation, and whether the
 * connection had SO_REUSEADDR. 0: free. */
#define UST_OWNER_SHIFT 20
#define UST_OWNER_GEN_MASK ((1u << UST_OWNER_SHIFT) - 1)
#define UST_OWNER_REUSE (1u << 31)
/* Where the owner slots' lock bytes are: past the file's end (a lock
 * needs no bytes), away from the flock that guards its creation. An owner
 * is alive while an OFD lock on its byte is held. */
#define UST_OWNER_LOCK_BASE (1ll << 32)

struct ust_port_share {
	struct ust_share_head h;
	_Atomic uint32_t port[65536];                /* owner words */
	_Atomic uint32_t owner_gen[UST_OWNER_SLOTS]; /* each slot's latest generation */
};
_Static_assert(UST_OWNER_SLOTS << UST_OWNER_SHIFT <= UST_OWNER_REUSE, "owner words");

#endif
