/* SPDX-License-Identifier: MIT */
/*
 * Find the mapping that holds an address in /proc/self/maps — by the
 * kernel's PROCMAP_QUERY ioctl where it has one, else by reading the text —
 * with open(2), ioctl(2), read(2) and close(2) only and a buffer on the
 * stack: async-signal-safe,
 * for the hooks and the bad-memory handlers (it gates mn_badmem_replace()
 * and MmSecureVirtualMemory(), so it must not be fooled).
 *
 * Everything here is async-signal-safe and takes no lock: no malloc, no
 * stdio, no locale, no errno-dependent library call other than the three
 * system calls.  Keep it that way.
 *
 * Defences, because a path is attacker-chosen text at the end of a line:
 *  - a line is parsed only from its real start: a line longer than the
 *    buffer has its head parsed (the address part is at its start) and the
 *    rest discarded up to its newline, never read as a line of its own;
 *  - the parser is strict: hex digits only in the addresses and offset,
 *    '-', ':' and ' ' exactly where the kernel puts them, lo < hi, and a
 *    4-character permission field [r-][w-][x-][ps]; anything else is
 *    skipped, not trusted.  (The kernel escapes '\n' in paths, so a path
 *    cannot end a line early.)
 */
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * A number in base 16 (or 10) at @s[*i], up to the first non-digit: at
 * least one digit, no overflow of uintptr_t.  Advances *i past it.
 */
static int number(const char *s, size_t len, size_t *i, unsigned int base,
		  uintptr_t *out)
{
	uintptr_t v = 0;
	size_t start = *i;

	for (; *i < len; (*i)++) {
		int d = base == 16 ? hexval(s[*i])
			: (s[*i] >= '0' && s[*i] <= '9') ? s[*i] - '0'
							 : -1;
		if (d < 0)
			break;
		if (v > (UINTPTR_MAX - (uintptr_t)d) / base)
			return -EINVAL;
		v = v * base + (uintptr_t)d;
	}
	if (*i == start)
		return -EINVAL;
	*out = v;
	return 0;
}

/* @s[*i] is @c: step over it. */
static int expect(const char *s, size_t len, size_t *i, char c)
{
	if (*i >= len || s[*i] != c)
		return -EINVAL;
	(*i)++;
	return 0;
}

int mn__maps_parse_line(const char *line, size_t len, uintptr_t *lo,
			uintptr_t *hi, int *prot)
{
	struct mn__maps_entry e;

	if (!lo || !hi || !prot || mn__maps_parse_entry(line, len, &e))
		return -EINVAL;
	*lo = e.lo;
	*hi = e.hi;
	*prot = e.prot;
	return 0;
}

int mn__maps_parse_entry(const char *line, size_t len, struct mn__maps_entry *e)
{
	uintptr_t a, b, off, maj, min, ino;
	size_t i = 0;
	int p = 0;
	bool shared;

	if (!line || !e)
		return -EINVAL;
	/* "lo-hi " */
	if (number(line, len, &i, 16, &a) || expect(line, len, &i, '-') ||
	    number(line, len, &i, 16, &b) || expect(line, len, &i, ' ') ||
	    a >= b)
		return -EINVAL;
	/* "rwxp " */
	if (len - i < 5)
		return -EINVAL;
	if (line[i] == 'r')
		p |= PROT_READ;
	else if (line[i] != '-')
		return -EINVAL;
	if (line[i + 1] == 'w')
		p |= PROT_WRITE;
	else if (line[i + 1] != '-')
		return -EINVAL;
	if (line[i + 2] == 'x')
		p |= PROT_EXEC;
	else if (line[i + 2] != '-')
		return -EINVAL;
	if (line[i + 3] != 'p' && line[i + 3] != 's')
		return -EINVAL;
	shared = line[i + 3] == 's';
	i += 4;
	/* " offset dev:dev inode", then the end or " [path]" */
	if (expect(line, len, &i, ' ') || number(line, len, &i, 16, &off) ||
	    expect(line, len, &i, ' ') || number(line, len, &i, 16, &maj) ||
	    expect(line, len, &i, ':') || number(line, len, &i, 16, &min) ||
	    expect(line, len, &i, ' ') || number(line, len, &i, 10, &ino) ||
	    (i < len && line[i] != ' '))
		return -EINVAL;
	*e = (struct mn__maps_entry){ .lo = a, .hi = b, .offset = off,
				      .dev_major = maj, .dev_minor = min,
				      .inode = ino, .prot = p, .shared = shared };
	return 0;
}

/* Does the line hold @addr?  1 (and the outputs set) or 0. */
static int line_holds(const char *line, size_t len, uintptr_t addr,
		      uintptr_t *start, uintptr_t *end, int *prot)
{
	uintptr_t lo, hi;
	int p;

	if (mn__maps_parse_line(line, len, &lo, &hi, &p) < 0)
		return 0; /* malformed: skipped, never trusted */
	if (addr < lo || addr >= hi)
		return 0;
	*start = lo;
	*end = hi;
	*prot = p;
	return 1;
}

/*
 * The kernel's own one-mapping query on a /proc/PID/maps descriptor
 * (PROCMAP_QUERY, Linux 6.11): one ioctl, one consistent answer even while
 * other threads change neighbouring mappings — a text read of the file is
 * several reads, not a snapshot, and can miss a mapping that another
 * thread splits or merges meanwhile.  Our own copy of the UAPI, for older
 * headers.
 */
struct mn__procmap_query {
	uint64_t size, query_flags, query_addr;
	uint64_t vma_start, vma_end, vma_flags, vma_page_size, vma_offset;
	uint64_t inode;
	uint32_t dev_major, dev_minor, vma_name_size, build_id_size;
	uint64_t vma_name_addr, build_id_addr;
};
#define MN__PROCMAP_QUERY _IOWR('f', 17, struct mn__procmap_query)
#define MN__PROCMAP_VMA_RWX 0x07u /* readable, writable, executable: the
				     PROT_* values */

/* 0 or -ENOENT: the kernel's answer; 1: no such ioctl here. */
static int query_kernel(int fd, uintptr_t addr, uintptr_t *start, uintptr_t *end,
			int *prot)
{
	struct mn__procmap_query q;

	__builtin_memset(&q, 0, sizeof(q));
	q.size = sizeof(q);
	q.query_addr = addr;
	if (ioctl(fd, MN__PROCMAP_QUERY, &q) < 0)
		return errno == ENOENT ? -ENOENT : 1;
	if (q.vma_start > addr || q.vma_end <= addr)
		return 1; /* not what we asked: read the text instead */
	*start = (uintptr_t)q.vma_start;
	*end = (uintptr_t)q.vma_end;
	*prot = (int)(q.vma_flags & MN__PROCMAP_VMA_RWX);
	return 0;
}

int mn__maps_lookup(uintptr_t addr, uintptr_t *start, uintptr_t *end, int *prot)
{
	return mn__maps_lookup_how(addr, start, end, prot, false);
}

int mn__maps_lookup_how(uintptr_t addr, uintptr_t *start, uintptr_t *end,
			int *prot, bool text_only)
{
	/* Async-signal-safe: open/read/close and this stack buffer only. */
	char buf[4096];
	size_t have = 0;
	bool skipping = false; /* discarding the tail of an over-long line */
	int fd, err = -ENOENT;

	if (!start || !end || !prot)
		return -EINVAL;
	fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = text_only ? 1 : query_kernel(fd, addr, start, end, prot);
	if (err <= 0) {
		close(fd);
		return err;
	}
	err = -ENOENT;
	for (;;) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			break;
		}
		if (n == 0) {
			/* The kernel ends every line with '\n'; a last line
			   without one is still parsed from its start. */
			if (have && !skipping &&
			    line_holds(buf, have, addr, start, end, prot))
				err = 0;
			break;
		}
		have += (size_t)n;
		size_t line = 0;
		for (size_t i = 0; i < have; i++) {
			if (buf[i] != '\n')
				continue;
			if (skipping) {
				skipping = false; /* the long line ends here */
			} else if (line_holds(buf + line, i - line, addr,
					      start, end, prot)) {
				err = 0;
				goto out;
			}
			line = i + 1;
		}
		if (skipping) {
			have = 0; /* still inside the long line */
			continue;
		}
		/* Keep the partial last line (it starts a line) for the
		   next read. */
		memmove(buf, buf + line, have - line);
		have -= line;
		if (have == sizeof(buf)) {
			/* A line longer than the buffer (a long path): its
			   head holds the address part; the rest is path text,
			   discarded up to its newline. */
			if (line_holds(buf, have, addr, start, end, prot)) {
				err = 0;
				goto out;
			}
			skipping = true;
			have = 0;
		}
	}
out:
	close(fd);
	return err;
}
