/* SPDX-License-Identifier: MIT */
/*
 * Find the mapping that holds an address in /proc/self/maps, with open(2)
 * and read(2) only and a buffer on the stack: async-signal-safe, for the
 * hooks and the bad-memory handlers.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

static uintptr_t hex(const char *s, size_t *i, size_t end, char stop)
{
	uintptr_t v = 0;

	for (; *i < end && s[*i] != stop; (*i)++) {
		char c = s[*i];
		v = v * 16 + (uintptr_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	(*i)++;
	return v;
}

int mn__maps_lookup(uintptr_t addr, uintptr_t *start, uintptr_t *end, int *prot)
{
	char buf[4096];
	size_t have = 0;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	int err = -ENOENT;

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - have);
		if (n <= 0)
			break;
		have += (size_t)n;
		size_t line = 0;
		for (size_t i = 0; i < have; i++) {
			if (buf[i] != '\n')
				continue;
			/* "lo-hi perms offset dev inode path" */
			size_t j = line;
			uintptr_t lo = hex(buf, &j, i, '-');
			uintptr_t hi = hex(buf, &j, i, ' ');
			if (addr >= lo && addr < hi && j + 3 <= i) {
				*start = lo;
				*end = hi;
				*prot = (buf[j] == 'r' ? PROT_READ : 0) |
					(buf[j + 1] == 'w' ? PROT_WRITE : 0) |
					(buf[j + 2] == 'x' ? PROT_EXEC : 0);
				err = 0;
				goto out;
			}
			line = i + 1;
		}
		/* Keep the partial last line for the next read. */
		memmove(buf, buf + line, have - line);
		have -= line;
		if (have == sizeof(buf))
			have = 0; /* a line longer than the buffer: skip it */
	}
out:
	close(fd);
	return err;
}
