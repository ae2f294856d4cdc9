/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for mn__parse_cgroup_value().  The whole input is the
 * file.
 *
 * Invariant: the result (return code and value) is exactly that of a
 * straightforward reference built on strtoull(), which sees a NUL-terminated
 * copy.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "parse.h"

static int reference(const char *buf, size_t len, uint64_t *out)
{
	unsigned long long v;
	char tmp[64];
	size_t i;

	if (len && buf[len - 1] == '\n')
		len--;
	if (len == 3 && !memcmp(buf, "max", 3)) {
		*out = UINT64_MAX;
		return 0;
	}
	if (!len)
		return -EIO;
	for (i = 0; i < len; i++)
		if (buf[i] < '0' || buf[i] > '9')
			return -EIO;
	while (len > 1 && *buf == '0') {
		buf++;
		len--;
	}
	if (len >= sizeof(tmp))
		return -ERANGE;
	memcpy(tmp, buf, len);
	tmp[len] = '\0';
	errno = 0;
	v = strtoull(tmp, NULL, 10);
	if (errno == ERANGE)
		return -ERANGE;
	*out = v >= (1ULL << 62) ? UINT64_MAX : v;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	uint64_t v = 42, ref = 43;
	int ret, rret;

	ret = mn__parse_cgroup_value(buf, size, &v);
	CHECK(ret == 0 || ret == -EIO || ret == -ERANGE);
	rret = reference(buf, size, &ref);
	CHECK(ret == rret);
	if (!ret) {
		CHECK(v == ref);
		CHECK(v < (UINT64_C(1) << 62) || v == MN__UNLIMITED);
	} else {
		CHECK(v == 42);
	}
	return 0;
}
