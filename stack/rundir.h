/* The run directory (USTCP_RUN_DIR, ustcp(7)): where a stack publishes its
 * control socket and the processes on one address share their state.
 *
 * Other local users must not be able to decide what is in it, so it is
 * checked as tmux, ssh-agent and systemd check theirs before anything is
 * put there or read from it. */
#ifndef USTCP_RUNDIR_H
#define USTCP_RUNDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* With create, makes dir (mode 0700) if it is missing; then accepts it only
 * if it is a directory, not a symlink, owned by owner, and not writable by
 * group or others. Returns 0, or -errno with why holding a reason fit to
 * follow the path in a message ("owned by uid 1000, not 0"); -ENOENT if it
 * is missing and not to be created. Only the last component is created: the
 * parents are the operator's. */
int ust_run_dir_check(const char *dir, uid_t owner, bool create, char *why, size_t whylen);

#endif
