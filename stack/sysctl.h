/* Reading the kernel's settings (/proc/sys) the way Linux's own code would
 * see them, cheaply: one open, one read, one close. stdio costs a one-shot
 * program far more here: the first fopen and fscanf of a process took
 * 200-350 us on the development VM (buffers and locale set up, pages first
 * touched), the raw read 20-80 us; ports.c reads two files at the first
 * connect(), the shim one at the first AF_INET6 socket. */
#ifndef USTCP_SYSCTL_H
#define USTCP_SYSCTL_H

#include <stddef.h>

/* The file at path, NUL-terminated, in buf (len bytes at most, the NUL
 * included): its length, or -errno; a file that fills buf (len - 1 bytes
 * or more) is cut there, -EFBIG. */
int ust_sysctl_read(const char *path, char *buf, size_t len);
/* The first number in the file at path, or dflt when it cannot be read. */
int ust_sysctl_int(const char *path, int dflt);

#endif
