/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for mn__parse_keyed().
 *
 * Input: one byte choosing the key ((byte - '0') modulo the number of keys
 * below), then the file.
 *
 * Invariant: the result (return code and value) is exactly that of a plain
 * byte-by-byte reference implementation of the documented format.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "parse.h"

static const char *const keys[] = {
	"inactive_file",	/* '0' */
	"total_inactive_file",	/* '1' */
	"anon",			/* '2' */
	"file",			/* '3' */
	"oom",			/* '4' */
	"oom_kill",		/* '5' */
	"max",			/* '6' */
	"workingset_refault_file", /* '7' */
	"",			/* '8' */
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static int blank(char c)
{
	return c == ' ' || c == '\t';
}

static int reference(const char *buf, size_t len, const char *key,
		     uint64_t *out)
{
	size_t klen = strlen(key), pos = 0;

	if (!klen)
		return -ENOENT;
	while (pos < len) {
		const char *l = buf + pos;
		size_t n = 0, i, j, k;

		while (pos + n < len && buf[pos + n] != '\n')
			n++;
		pos += n + 1;
		if (n < klen || memcmp(l, key, klen) ||
		    (n > klen && !blank(l[klen])))
			continue;
		for (i = klen; i < n && blank(l[i]); i++)
			;
		for (j = n; j > i && blank(l[j - 1]); j--)
			;
		if (i == j)
			return -EIO;
		for (k = i; k < j; k++)
			if (l[k] < '0' || l[k] > '9')
				return -EIO;
		while (j - i > 1 && l[i] == '0')
			i++;
		if (j - i > 20)
			return -ERANGE;
		{
			char tmp[32];

			memcpy(tmp, l + i, j - i);
			tmp[j - i] = '\0';
			errno = 0;
			*out = strtoull(tmp, NULL, 10);
			if (errno == ERANGE)
				return -ERANGE;
		}
		return 0;
	}
	return -ENOENT;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data + 1, *key;
	uint64_t v = 42, ref = 43;
	int ret, rret;

	if (!size)
		return 0;
	key = keys[(uint8_t)(data[0] - '0') % NKEYS];
	size--;

	ret = mn__parse_keyed(buf, size, key, &v);
	CHECK(ret == 0 || ret == -ENOENT || ret == -EIO || ret == -ERANGE);
	rret = reference(buf, size, key, &ref);
	CHECK(ret == rret);
	if (!ret)
		CHECK(v == ref);
	else
		CHECK(v == 42);
	return 0;
}
