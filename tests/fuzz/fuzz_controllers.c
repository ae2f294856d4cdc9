/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for mn__controllers_has().
 *
 * Input: one byte choosing the name ((byte - '0') modulo the number of
 * names below), then the file.
 *
 * Invariants: the result is 0 or 1 and agrees with a reference that looks
 * for the name at every offset with a separator (or an end) on each side;
 * a final newline changes nothing.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "parse.h"

static const char *const names[] = {
	"memory",	/* '0' */
	"cpu",		/* '1' */
	"cpuset",	/* '2' */
	"io",		/* '3' */
	"hugetlb",	/* '4' */
	"pids",		/* '5' */
	"mem",		/* '6' */
	"",		/* '7' */
};
#define NNAMES (sizeof(names) / sizeof(names[0]))

static int sep(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

static int reference(const char *buf, size_t len, const char *name)
{
	size_t n = strlen(name), i;

	if (!n)
		return 0;
	for (i = 0; i + n <= len; i++) {
		if (i > 0 && !sep(buf[i - 1]))
			continue;
		if (i + n < len && !sep(buf[i + n]))
			continue;
		if (!memcmp(buf + i, name, n))
			return 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data + 1, *name;
	int ret;

	if (!size)
		return 0;
	name = names[(uint8_t)(data[0] - '0') % NNAMES];
	size--;

	ret = mn__controllers_has(buf, size, name);
	CHECK(ret == 0 || ret == 1);
	CHECK(ret == reference(buf, size, name));

	char *copy = fuzz_with_newline(buf, size);
	if (copy) {
		CHECK(mn__controllers_has(copy, size + 1, name) == ret);
		free(copy);
	}
	return 0;
}
