/* SPDX-License-Identifier: MIT */
/*
 * /proc readers every source may share (maps.c holds the async-signal-safe
 * one): /proc/meminfo's parser (pure, fuzzed: tests/fuzz/fuzz_meminfo.c)
 * and a mapping's attributes from /proc/self/smaps.  Lines are parsed strictly
 * (mn__maps_parse_entry); a line that does not parse is not trusted.
 * Thread context: stdio and malloc, no memnotify lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "internal.h"
#include "text.h"

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

enum {
	MI_TOTAL,
	MI_FREE,
	MI_AVAILABLE,
	MI_HWCORRUPT,
	MI_NR,
};

static const char *const meminfo_keys[MI_NR] = {
	[MI_TOTAL] = "MemTotal",
	[MI_FREE] = "MemFree",
	[MI_AVAILABLE] = "MemAvailable",
	[MI_HWCORRUPT] = "HardwareCorrupted",
};

/* The value part of a meminfo line, after the ':': "   1234 kB". */
static int meminfo_value(struct span s, uint64_t *bytes)
{
	struct span num;
	uint64_t kb;
	int ret;

	skip_blanks(&s);
	num.p = s.p;
	while (s.n && is_digit(*s.p)) {
		s.p++;
		s.n--;
	}
	num.n = (size_t)(s.p - num.p);
	if (!num.n || !s.n || !is_blank(*s.p))
		return -EIO;
	skip_blanks(&s);
	trim_blanks_end(&s);
	if (!span_eq_n(s, "kB", 2))
		return -EIO;
	ret = parse_u64(num, &kb);
	if (ret)
		return ret;
	if (kb > UINT64_MAX / 1024)
		return -ERANGE;
	*bytes = kb * 1024;
	return 0;
}

int mn__parse_meminfo(const char *buf, size_t len, struct mn__meminfo *out)
{
	uint64_t val[MI_NR] = { 0 };
	bool seen[MI_NR] = { false };
	struct span line;
	size_t pos = 0;

	memset(out, 0, sizeof(*out));
	while (next_line(buf, len, &pos, &line)) {
		const char *colon = line.n ? memchr(line.p, ':', line.n) : NULL;
		struct span key;
		int i, ret;

		if (!colon)
			continue;
		key = span_from(line.p, colon);
		for (i = 0; i < MI_NR; i++)
			if (span_eq(key, meminfo_keys[i]))
				break;
		/* Skip unknown keys, and repeats: the first one counts. */
		if (i == MI_NR || seen[i])
			continue;
		ret = meminfo_value(span_from(colon + 1, line.p + line.n),
				    &val[i]);
		if (ret)
			return ret;
		seen[i] = true;
	}
	if (!seen[MI_TOTAL] || !seen[MI_FREE])
		return -ENOENT;
	out->total_bytes = val[MI_TOTAL];
	out->free_bytes = val[MI_FREE];
	out->available_bytes = val[MI_AVAILABLE];
	out->hw_corrupted_bytes = val[MI_HWCORRUPT];
	out->has_available = seen[MI_AVAILABLE];
	return 0;
}
