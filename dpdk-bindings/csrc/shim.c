/* Macros that are not functions, so neither bindgen nor wrap_static_fns can reach them. */
#include "wrapper.h"

/* rte_errno is a per-lcore (thread-local) variable behind a macro. */
int ironvs_rte_errno(void)
{
	return rte_errno;
}

void ironvs_set_rte_errno(int value)
{
	rte_errno = value;
}
