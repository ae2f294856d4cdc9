/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for mn__parse_proc_cgroup_v1() and _v2().
 *
 * Input: one byte choosing the v1 controller ((byte - '0') modulo the number
 * of controllers below), one byte giving the output size (below 'A': that
 * many bytes, 0 to 64; otherwise large enough for any path), then the file.
 * The output buffer is allocated at exactly that size, so a sanitizer sees
 * any write past it.
 *
 * Invariants: the return code is a documented one; on success the path is
 * NUL-terminated inside the buffer, starts with '/' and is in the input
 * (v2: right after "0::"); on error the buffer holds "" (or is untouched
 * when empty); the result does not depend on the buffer size except for
 * -ENAMETOOLONG, which a large enough buffer turns into success; a last line
 * without '\n' parses as if it had one.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "parse.h"

static const char *const controllers[] = {
	"memory",		/* '0' */
	"cpu",			/* '1' */
	"cpuacct",		/* '2' */
	"name=systemd",		/* '3' */
	"systemd",		/* '4' */
	"",			/* '5' */
	"net_cls",		/* '6' */
};
#define NCTL (sizeof(controllers) / sizeof(controllers[0]))

static int call(int v2, const char *buf, size_t len, const char *ctl,
		char *out, size_t outlen)
{
	return v2 ? mn__parse_proc_cgroup_v2(buf, len, out, outlen) :
		    mn__parse_proc_cgroup_v1(buf, len, ctl, out, outlen);
}

static int contains(const char *buf, size_t len, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i + n <= len; i++)
		if (!memcmp(buf + i, s, n))
			return 1;
	return 0;
}

static void check_one(int v2, const char *buf, size_t len, const char *ctl,
		      size_t outlen)
{
	char *out = malloc(outlen), *big = malloc(len + 1);
	size_t plen = 0;
	int ret, ret2;

	if ((outlen && !out) || !big)
		goto out;
	if (outlen)
		memset(out, 'x', outlen);
	ret = call(v2, buf, len, ctl, out, outlen);
	CHECK(ret == 0 || ret == -ENOENT || ret == -EIO ||
	      ret == -ENAMETOOLONG);
	if (!ret) {
		CHECK(outlen && memchr(out, '\0', outlen));
		plen = strlen(out);
		CHECK(plen >= 1 && out[0] == '/');
		CHECK(contains(buf, len, out, plen));
		if (v2) {
			char *pat = malloc(plen + 3);

			if (pat) {
				memcpy(pat, "0::", 3);
				memcpy(pat + 3, out, plen);
				CHECK(contains(buf, len, pat, plen + 3));
				free(pat);
			}
		}
	} else if (outlen) {
		CHECK(out[0] == '\0');
	}

	/* The same with room for anything. */
	ret2 = call(v2, buf, len, ctl, big, len + 1);
	if (ret == -ENAMETOOLONG) {
		CHECK(ret2 == 0);
		CHECK(strlen(big) >= outlen);
	} else {
		CHECK(ret2 == ret);
		if (!ret)
			CHECK(!strcmp(big, out));
	}

	/* The same with a final newline. */
	if (len && buf[len - 1] != '\n') {
		char *copy = malloc(len + 1), *big2 = malloc(len + 2);

		if (copy && big2) {
			memcpy(copy, buf, len);
			copy[len] = '\n';
			CHECK(call(v2, copy, len + 1, ctl, big2, len + 2) ==
			      ret2);
			if (!ret2)
				CHECK(!strcmp(big, big2));
		}
		free(copy);
		free(big2);
	}
out:
	free(out);
	free(big);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data + 2, *ctl;
	size_t outlen;

	if (size < 2)
		return 0;
	ctl = controllers[(uint8_t)(data[0] - '0') % NCTL];
	size -= 2;
	outlen = data[1] < 'A' ? data[1] : size + 1;

	check_one(0, buf, size, ctl, outlen);
	check_one(1, buf, size, ctl, outlen);
	return 0;
}
