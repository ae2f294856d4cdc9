/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for mn__parse_psi().  The whole input is the file.
 *
 * Invariants: the return code is a documented one; on success the averages
 * are finite and non-negative, the full_* fields are 0 without a "full"
 * line, and the "some" values agree with strtod()/strtoull() (C locale) on
 * the first "some" line; a last line without '\n' parses as if it had one.
 */
#include <errno.h>
#include <float.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "parse.h"

static int blank(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * The value of "key=" in the first line whose first word is "some", copied
 * NUL-terminated into @val; 0 if not found or too long to check.
 */
static int some_value(const char *buf, size_t len, const char *key,
		      char *val, size_t vlen)
{
	size_t klen = strlen(key), pos = 0;

	while (pos < len) {
		const char *l = buf + pos, *nl = memchr(l, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - l) : len - pos, i = 0;

		pos += n + 1;
		while (i < n && blank(l[i]))
			i++;
		if (n - i < 4 || memcmp(l + i, "some", 4) ||
		    (n - i > 4 && !blank(l[i + 4])))
			continue;
		for (i += 4; i + klen <= n; i++) {
			size_t j;

			if (!blank(l[i - 1]) || memcmp(l + i, key, klen))
				continue;
			for (j = i + klen; j < n && !blank(l[j]); j++)
				;
			if (j - (i + klen) >= vlen)
				return 0;
			memcpy(val, l + i + klen, j - (i + klen));
			val[j - (i + klen)] = '\0';
			return 1;
		}
		return 0;
	}
	return 0;
}

static void check_avg(const char *buf, size_t len, const char *key, double v)
{
	char val[256];

	if (some_value(buf, len, key, val, sizeof(val))) {
		double ref = strtod(val, NULL);
		double diff = v > ref ? v - ref : ref - v;

		CHECK(diff <= 1e-12 * (ref > 1.0 ? ref : 1.0));
	}
}

static void check_psi(const struct mn__psi *p)
{
	/* Finite (no NaN, no infinity) and not negative. */
	CHECK(p->some_avg10 >= 0.0 && p->some_avg10 <= DBL_MAX);
	CHECK(p->some_avg60 >= 0.0 && p->some_avg60 <= DBL_MAX);
	CHECK(p->some_avg300 >= 0.0 && p->some_avg300 <= DBL_MAX);
	CHECK(p->full_avg10 >= 0.0 && p->full_avg10 <= DBL_MAX);
	CHECK(p->full_avg60 >= 0.0 && p->full_avg60 <= DBL_MAX);
	CHECK(p->full_avg300 >= 0.0 && p->full_avg300 <= DBL_MAX);
	CHECK(p->has_full == 0 || p->has_full == 1);
	if (!p->has_full)
		CHECK(p->full_avg10 == 0.0 && p->full_avg60 == 0.0 &&
		      p->full_avg300 == 0.0 && p->full_total_us == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct mn__psi a, b;
	int ret, ret2;

	ret = mn__parse_psi(buf, size, &a);
	CHECK(ret == 0 || ret == -ENOENT || ret == -EIO || ret == -ERANGE);
	if (!ret) {
		char val[256];

		check_psi(&a);
		check_avg(buf, size, "avg10=", a.some_avg10);
		check_avg(buf, size, "avg60=", a.some_avg60);
		check_avg(buf, size, "avg300=", a.some_avg300);
		if (some_value(buf, size, "total=", val, sizeof(val)))
			CHECK(strtoull(val, NULL, 10) == a.some_total_us);
	}

	char *copy = fuzz_with_newline(buf, size);
	if (copy) {
		ret2 = mn__parse_psi(copy, size + 1, &b);
		CHECK(ret2 == ret);
		if (!ret) {
			CHECK(a.some_avg10 == b.some_avg10);
			CHECK(a.some_avg60 == b.some_avg60);
			CHECK(a.some_avg300 == b.some_avg300);
			CHECK(a.some_total_us == b.some_total_us);
			CHECK(a.full_avg10 == b.full_avg10);
			CHECK(a.full_avg60 == b.full_avg60);
			CHECK(a.full_avg300 == b.full_avg300);
			CHECK(a.full_total_us == b.full_total_us);
			CHECK(a.has_full == b.has_full);
		}
		free(copy);
	}
	return 0;
}
