/* SPDX-License-Identifier: MIT */
/* A library that test_vmrange dlopen()s: it calls munmap through its own
   PLT, as any library loaded after start would. */
#include <sys/mman.h>

int dl_unmap(void *addr, size_t len);

__attribute__((visibility("default"))) int dl_unmap(void *addr, size_t len)
{
	return munmap(addr, len);
}
