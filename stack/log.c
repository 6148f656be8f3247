#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"

static enum ust_log_level log_level = UST_LOG_WARN;
static int log_fd = -1;

void ust_log_setup(enum ust_log_level level, int fd)
{
	log_level = level;
	log_fd = fd;
}

int ust_log_fd(void)
{
	return log_fd;
}

int ust_log_enabled(enum ust_log_level level)
{
	return level <= log_level;
}

void ust_log(enum ust_log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	char line[512];
	va_list ap;
	int n, m;

	if (level > log_level)
		return;
	/* Format the whole line first and write it at once, so that lines of
	 * several threads or processes do not interleave. */
	n = snprintf(line, sizeof(line), "ustcp[%d]: %s: ", (int)getpid(), names[level]);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n += m < 0 ? 0 : m;
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(log_fd >= 0 ? log_fd : STDERR_FILENO, line, (size_t)n) < 0) {
		/* Nowhere left to complain. */
	}
}
