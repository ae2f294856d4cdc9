/* SPDX-License-Identifier: MIT */
/*
 * A program linked with libmemnotify, for test_cli.sh's checks of
 * MEMNOTIFY_RUN_FD (the descriptor `memnotify run` hands down):
 *
 *   run_fd_probe reuse FILE  close the descriptor MEMNOTIFY_RUN_FD names,
 *                            open FILE at the same number, write "own" to
 *                            it, then map and unmap 1 MiB (a vm.unmap the
 *                            library must not write into FILE)
 *   run_fd_probe unmap       print the effective uid, map and unmap 1 MiB
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memnotify.h"

static int unmap_some(void)
{
	size_t len = 1 << 20;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return 1;
	memset(p, 1, len);
	mprotect(p, len, PROT_READ);
	return munmap(p, len) ? 1 : 0;
}

int main(int argc, char **argv)
{
	(void)mn_version(); /* linked, not only preloaded */
	if (argc == 3 && !strcmp(argv[1], "reuse")) {
		const char *v = getenv("MEMNOTIFY_RUN_FD");
		int fd, own;

		if (!v || (fd = atoi(v)) < 3)
			return 3; /* not under `memnotify run --output` */
		close(fd);
		own = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (own < 0)
			return 4;
		if (own != fd && (dup2(own, fd) < 0 || close(own) < 0))
			return 5;
		if (write(fd, "own\n", 4) != 4)
			return 6;
		return unmap_some();
	}
	if (argc == 2 && !strcmp(argv[1], "unmap")) {
		printf("euid %u\n", (unsigned)geteuid());
		fflush(stdout);
		return unmap_some();
	}
	fprintf(stderr, "usage: run_fd_probe reuse FILE | unmap\n");
	return 2;
}
