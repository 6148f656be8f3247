/* Logging: one function, honouring USTCP_LOG and USTCP_LOG_FILE. Never
 * stdout: it belongs to the program. */
#ifndef USTCP_LOG_H
#define USTCP_LOG_H

enum ust_log_level { UST_LOG_ERROR, UST_LOG_WARN, UST_LOG_INFO, UST_LOG_DEBUG };

/* Where and how much; fd -1 means stderr. */
void ust_log_setup(enum ust_log_level level, int fd);
/* The fd set up (-1: stderr). */
int ust_log_fd(void);
void ust_log(enum ust_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ust_log_enabled(enum ust_log_level level);

#endif
