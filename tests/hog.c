/* SPDX-License-Identifier: MIT */
/*
 * mn_hog MIB [SECONDS] - touch MIB mebibytes of anonymous memory, 8 MiB at
 * a time, then hold them for SECONDS (default: until killed).  The system
 * test's own memory hog, beside stress-ng.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char *end;
	unsigned long mib, secs = 0;
	char *p;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: mn_hog MIB [SECONDS]\n");
		return 2;
	}
	mib = strtoul(argv[1], &end, 10);
	if (*end || mib == 0) {
		fprintf(stderr, "mn_hog: bad size '%s'\n", argv[1]);
		return 2;
	}
	if (argc == 3) {
		secs = strtoul(argv[2], &end, 10);
		if (*end) {
			fprintf(stderr, "mn_hog: bad seconds '%s'\n", argv[2]);
			return 2;
		}
	}
	size_t bytes = (size_t)mib << 20;
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mn_hog: mmap");
		return 1;
	}
	for (size_t off = 0; off < bytes; off += 4096) {
		p[off] = 1;
		if (off % (8u << 20) == 0)
			usleep(2000);
	}
	if (secs)
		sleep((unsigned int)secs);
	else
		for (;;)
			pause();
	return 0;
}
