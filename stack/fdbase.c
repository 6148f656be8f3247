/* ust_fd_high_base (fdbase.h). */
#include <sys/resource.h>

#include "fdbase.h"

int ust_fd_high_base(void)
{
	struct rlimit rl;
	rlim_t cur = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;

	if (cur == RLIM_INFINITY || cur > 65536)
		cur = 65536;
	return (int)(cur / 2 > 64 ? cur / 2 : 64);
}
