/* SPDX-License-Identifier: MIT */
/*
 * /proc readers every source and face may share that are not for signal
 * context (maps.c holds the async-signal-safe one): a mapping's
 * attributes from /proc/self/smaps.  Lines are parsed strictly
 * (mn__maps_parse_entry); a line that does not parse is not trusted.
 * Thread context: stdio and malloc, no memnotify lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "internal.h"

/* Is the 2-letter flag @f among the VmFlags line's tokens? */
static bool vmflag(const char *line, const char *f)
{
	for (const char *p = line + 8; *p; p++) /* after "VmFlags:" */
		if (p[-1] == ' ' && p[0] == f[0] && p[1] == f[1] &&
		    (p[2] == ' ' || p[2] == '\n' || p[2] == '\0'))
			return true;
	return false;
}

/* Does some mapping other than [@lo, ...) map the file (@e's device and
   inode) executable? */
static bool file_mapped_exec(const struct mn__maps_entry *e)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	bool found = false;

	if (!f)
		return false;
	while (!found && (n = getline(&line, &cap, f)) > 0) {
		struct mn__maps_entry o;
		if (mn__maps_parse_entry(line, (size_t)n - (line[n - 1] == '\n'),
					 &o) == 0)
			found = (o.prot & PROT_EXEC) && o.inode == e->inode &&
				o.dev_major == e->dev_major &&
				o.dev_minor == e->dev_minor;
	}
	free(line);
	fclose(f);
	return found;
}

int mn__vma_lookup(uintptr_t addr, struct mn__vma *v)
{
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	bool in = false;

	if (!v)
		return -EINVAL;
	f = fopen("/proc/self/smaps", "re");
	if (!f)
		return -errno;
	while ((n = getline(&line, &cap, f)) > 0) {
		struct mn__maps_entry e;
		/* A mapping's first line; its attribute lines ("Rss:", ...)
		   never parse as one. */
		if (mn__maps_parse_entry(line, (size_t)n - (line[n - 1] == '\n'),
					 &e) == 0) {
			if (in)
				break; /* the next mapping: no VmFlags line */
			if (addr < e.lo || addr >= e.hi)
				continue;
			in = true;
			*v = (struct mn__vma){ .m = e };
		} else if (in && strncmp(line, "VmFlags:", 8) == 0) {
			v->locked = vmflag(line, "lo");
			v->hugetlb = vmflag(line, "ht");
			break;
		}
	}
	free(line);
	fclose(f);
	if (!in)
		return -ENOENT;
	if (v->m.inode && !v->m.shared)
		v->image = (v->m.prot & PROT_EXEC) || file_mapped_exec(&v->m);
	return 0;
}
