/* Where ustcp's own fds go in a program's table: above the range programs
 * pick numbers in, so that a program that counts on getting the lowest
 * free number, or that closes every fd from 3 up, never meets them. */
#ifndef USTCP_FDBASE_H
#define USTCP_FDBASE_H

/* Half the soft fd limit (at most 32768, at least 64), read now. */
int ust_fd_high_base(void);

#endif
