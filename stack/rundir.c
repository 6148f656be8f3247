/* The run directory's checks (rundir.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "rundir.h"

int ust_run_dir_check(const char *dir, uid_t owner, bool create, char *why, size_t whylen)
{
	struct stat st;

	/* 0700 from the start, whatever the umask: nobody else ever sees a
	 * directory of ours that is open to them. */
	if (create && mkdir(dir, 0700) < 0 && errno != EEXIST) {
		int e = errno;
		snprintf(why, whylen, "%s", strerror(e));
		return -e;
	}
	/* lstat, not stat: a symlink placed by someone else would send our
	 * sockets wherever it points. */
	if (lstat(dir, &st) < 0) {
		int e = errno;
		snprintf(why, whylen, "%s", strerror(e));
		return -e;
	}
	if (S_ISLNK(st.st_mode)) {
		snprintf(why, whylen, "a symbolic link");
		return -ELOOP;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "not a directory");
		return -ENOTDIR;
	}
	if (st.st_uid != owner) {
		snprintf(why, whylen, "owned by uid %u, not %u", (unsigned)st.st_uid, (unsigned)owner);
		return -EPERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(why, whylen, "writable by %s (mode %04o)", st.st_mode & S_IWOTH ? "others" : "its group",
			 (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}
