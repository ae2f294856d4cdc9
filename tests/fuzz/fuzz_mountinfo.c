/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for mn__parse_mountinfo().
 *
 * Input: one byte choosing the (fstype, super option) pair ((byte - '0')
 * modulo the number of pairs below), one byte each for the mount point and
 * root buffer sizes (below 'A': that many bytes, 0 to 64; otherwise large
 * enough for anything), then the file.  The buffers are allocated at exactly
 * those sizes, so a sanitizer sees any write past them.
 *
 * Invariants: the return code is a documented one; on success both strings
 * are NUL-terminated inside their buffers, the mount point starts with '/'
 * and the root is not empty; on error both hold "" (or are untouched when
 * empty); the result does not depend on the buffer sizes except for
 * -ENAMETOOLONG, which large enough buffers turn into success; a last line
 * without '\n' parses as if it had one.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "parse.h"

static const struct {
	const char *fstype, *opt;
} targets[] = {
	{ "cgroup", "memory" },		/* '0' */
	{ "cgroup2", NULL },		/* '1' */
	{ "cgroup", "cpu" },		/* '2' */
	{ "cgroup", "name=systemd" },	/* '3' */
	{ "cgroup", NULL },		/* '4' */
	{ "tmpfs", NULL },		/* '5' */
	{ "cgroup", "" },		/* '6' */
};
#define NTARGETS (sizeof(targets) / sizeof(targets[0]))

static size_t size_from(uint8_t b, size_t large)
{
	return b < 'A' ? b : large;
}

static void check_strings(int ret, const char *m, size_t ml, const char *r,
			  size_t rl)
{
	if (!ret) {
		CHECK(ml && memchr(m, '\0', ml));
		CHECK(rl && memchr(r, '\0', rl));
		CHECK(m[0] == '/');
		CHECK(r[0] != '\0');
	} else {
		if (ml)
			CHECK(m[0] == '\0');
		if (rl)
			CHECK(r[0] == '\0');
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data + 3, *fstype, *opt;
	char *m = NULL, *r = NULL, *bm = NULL, *br = NULL;
	size_t ml, rl, i;
	int ret, ret2;

	if (size < 3)
		return 0;
	i = (uint8_t)(data[0] - '0') % NTARGETS;
	fstype = targets[i].fstype;
	opt = targets[i].opt;
	size -= 3;
	ml = size_from(data[1], size + 1);
	rl = size_from(data[2], size + 1);

	m = malloc(ml);
	r = malloc(rl);
	bm = malloc(size + 1);
	br = malloc(size + 1);
	if ((ml && !m) || (rl && !r) || !bm || !br)
		goto out;
	if (ml)
		memset(m, 'x', ml);
	if (rl)
		memset(r, 'x', rl);

	ret = mn__parse_mountinfo(buf, size, fstype, opt, m, ml, r, rl);
	CHECK(ret == 0 || ret == -ENOENT || ret == -EIO ||
	      ret == -ENAMETOOLONG);
	check_strings(ret, m, ml, r, rl);

	/* The same with room for anything. */
	ret2 = mn__parse_mountinfo(buf, size, fstype, opt, bm, size + 1, br,
				   size + 1);
	check_strings(ret2, bm, size + 1, br, size + 1);
	if (ret == -ENAMETOOLONG) {
		CHECK(ret2 == 0);
		CHECK(strlen(bm) >= ml || strlen(br) >= rl);
	} else {
		CHECK(ret2 == ret);
		if (!ret)
			CHECK(!strcmp(m, bm) && !strcmp(r, br));
	}

	/* The same with a final newline. */
	char *copy = fuzz_with_newline(buf, size);
	if (copy) {
		char *m2 = malloc(size + 2), *r2 = malloc(size + 2);

		if (m2 && r2) {
			CHECK(mn__parse_mountinfo(copy, size + 1, fstype, opt,
						  m2, size + 2, r2,
						  size + 2) == ret2);
			if (!ret2)
				CHECK(!strcmp(m2, bm) && !strcmp(r2, br));
		}
		free(copy);
		free(m2);
		free(r2);
	}
out:
	free(m);
	free(r);
	free(bm);
	free(br);
	return 0;
}
