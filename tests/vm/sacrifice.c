/* SPDX-License-Identifier: MIT */
/*
 * Preloaded into `memnotify watch` by test_inject.sh: one private anonymous
 * page, written once and never touched again, whose address goes to the
 * file named by $MN_VM_SACRIFICE_FILE.  Poisoning it (memnotify inject
 * --early) gives the real watch a real BUS_MCEERR_AO without taking memory
 * it uses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

__attribute__((constructor)) static void sacrifice(void)
{
	const char *file = getenv("MN_VM_SACRIFICE_FILE");
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	char *p;
	FILE *f;

	if (!file)
		return;
	p = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	if (p == MAP_FAILED)
		return;
	p[0] = 1;
	f = fopen(file, "we");
	if (f) {
		fprintf(f, "%p\n", (void *)p);
		fclose(f);
	}
}
