/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for mn__maps_parse_line().  The whole input is one line
 * of /proc/self/maps without its '\n'.
 *
 * Invariants: the return code is 0 or -EINVAL; on failure the outputs are
 * untouched; on success lo < hi, prot has only PROT_READ, PROT_WRITE and
 * PROT_EXEC bits, the line starts with a hex digit, the permission field
 * after the first blank says exactly prot, and the same line with more path
 * text after it (the head of a longer line) parses to the same values.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/internal.h"
#include "fuzz.h"

#define SENTINEL ((uintptr_t)0x5a5a5a5a)

static int is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	uintptr_t lo = SENTINEL, hi = SENTINEL, lo2, hi2;
	int prot = -1, prot2, ret;

	ret = mn__maps_parse_line(line, size, &lo, &hi, &prot);
	CHECK(ret == 0 || ret == -EINVAL);
	if (ret) {
		CHECK(lo == SENTINEL && hi == SENTINEL && prot == -1);
		return 0;
	}
	CHECK(lo < hi);
	CHECK((prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) == 0);
	CHECK(size > 0 && is_hex(line[0]));

	const char *sp = memchr(line, ' ', size);
	CHECK(sp && (size_t)(sp - line) + 5 <= size);
	CHECK((sp[1] == 'r') == !!(prot & PROT_READ));
	CHECK((sp[2] == 'w') == !!(prot & PROT_WRITE));
	CHECK((sp[3] == 'x') == !!(prot & PROT_EXEC));
	CHECK(sp[4] == 'p' || sp[4] == 's');

	char *longer = malloc(size + 3);
	if (!longer)
		return 0;
	memcpy(longer, line, size);
	memcpy(longer + size, " /x", 3);
	CHECK(mn__maps_parse_line(longer, size + 3, &lo2, &hi2, &prot2) == 0);
	CHECK(lo2 == lo && hi2 == hi && prot2 == prot);
	free(longer);
	return 0;
}
