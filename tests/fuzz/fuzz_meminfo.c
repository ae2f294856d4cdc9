/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for mn__parse_meminfo().  The whole input is the file.
 *
 * Invariants: the return code is a documented one; on success every value
 * is a whole number of KiB, available_bytes is 0 when MemAvailable is
 * absent, and the MemTotal/MemFree values are written "<n> ... kB" on the
 * first line with that key; a last line without '\n' parses as if it had one.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "core/internal.h" /* mn__parse_meminfo */

/*
 * Is "<bytes / 1024>" followed by a blank on the first line starting with
 * "<key>:", with "kB" at its end?
 */
static int value_on_line(const char *buf, size_t len, const char *key,
			 uint64_t bytes)
{
	size_t klen = strlen(key), pos = 0;
	char want[32];
	int wlen;

	wlen = snprintf(want, sizeof(want), "%llu",
			(unsigned long long)(bytes / 1024));
	while (pos < len) {
		const char *l = buf + pos, *nl = memchr(l, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - l) : len - pos;

		if (n > klen && !memcmp(l, key, klen) && l[klen] == ':') {
			size_t i, e = n;

			while (e && (l[e - 1] == ' ' || l[e - 1] == '\t'))
				e--;
			if (e < 2 || memcmp(l + e - 2, "kB", 2))
				return 0;
			for (i = klen + 1; i + (size_t)wlen < e; i++)
				if (!memcmp(l + i, want, (size_t)wlen) &&
				    (l[i + wlen] == ' ' || l[i + wlen] == '\t'))
					return 1;
			return 0;
		}
		pos += n + 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct mn__meminfo a, b;
	int ret, ret2;

	ret = mn__parse_meminfo(buf, size, &a);
	CHECK(ret == 0 || ret == -ENOENT || ret == -EIO || ret == -ERANGE);
	if (!ret) {
		CHECK(a.total_bytes % 1024 == 0);
		CHECK(a.free_bytes % 1024 == 0);
		CHECK(a.available_bytes % 1024 == 0);
		CHECK(a.hw_corrupted_bytes % 1024 == 0);
		CHECK(a.has_available == 0 || a.has_available == 1);
		if (!a.has_available)
			CHECK(a.available_bytes == 0);
		CHECK(value_on_line(buf, size, "MemTotal", a.total_bytes));
		CHECK(value_on_line(buf, size, "MemFree", a.free_bytes));
	}

	char *copy = fuzz_with_newline(buf, size);
	if (copy) {
		ret2 = mn__parse_meminfo(copy, size + 1, &b);
		CHECK(ret2 == ret);
		if (!ret) {
			CHECK(b.total_bytes == a.total_bytes);
			CHECK(b.free_bytes == a.free_bytes);
			CHECK(b.available_bytes == a.available_bytes);
			CHECK(b.hw_corrupted_bytes == a.hw_corrupted_bytes);
			CHECK(b.has_available == a.has_available);
		}
		free(copy);
	}
	return 0;
}
