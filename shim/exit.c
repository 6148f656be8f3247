/* _exit, _Exit: they skip atexit, where the connections go to a keeper
 * (stackthread/keeper.c): hand over first, as exit would. */
#include "shim.h"

US_EXPORT void _exit(int status)
{
	us_stack_exit();
	REAL(exit_)(status);
}

US_EXPORT void _Exit(int status)
{
	_exit(status);
}
