/* SPDX-License-Identifier: MIT */
/*
 * mn_strerror() against the public header: every error code the header
 * documents (each "-EXXX" in include/memnotify.h, read when the test runs)
 * has its own description, and codes no call returns are "unknown error".
 * The C library names the codes (strerrorname_np), so the test needs no
 * table of its own.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memnotify.h"

/* The errno value named @name ("EAGAIN"), or 0. */
static int errno_of(const char *name)
{
	for (int e = 1; e < 4096; e++) {
		const char *n = strerrorname_np(e);
		if (n && strcmp(n, name) == 0)
			return e;
	}
	return 0;
}

static void test_every_documented_error_has_a_description(void **state)
{
	FILE *f = fopen(MN_TEST_HEADER, "r");
	char line[512], name[32];
	int seen = 0, missing = 0;
	const char *unknown = mn_strerror(-4095);

	(void)state;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		for (char *p = line; (p = strstr(p, "-E")) != NULL; p += 2) {
			size_t k = 0;
			if (p > line && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
				continue;
			while (k + 1 < sizeof(name) &&
			       (isupper((unsigned char)p[1 + k]) ||
				isdigit((unsigned char)p[1 + k])))
				name[k] = p[1 + k], k++;
			name[k] = '\0';
			int e = errno_of(name);
			if (!e)
				continue; /* not an errno name (e.g. -EXAMPLE) */
			seen++;
			/* "No call returns -ECHILD": documented as never. */
			if (e == ECHILD && strstr(line, "No call returns"))
				continue;
			if (strcmp(mn_strerror(-e), unknown) == 0) {
				print_error("%s is documented but mn_strerror() "
					    "does not know it\n", name);
				missing++;
			}
		}
	}
	fclose(f);
	assert_true(seen >= 10); /* the header was read, not skipped */
	assert_int_equal(missing, 0);
}

static void test_codes_no_call_returns(void **state)
{
	(void)state;
	assert_string_equal(mn_strerror(-ECHILD), "unknown error");
	assert_string_equal(mn_strerror(1), "unknown error"); /* not negative */
	assert_string_equal(mn_strerror(INT_MIN), "unknown error");
	assert_string_equal(mn_strerror(0), "success");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_documented_error_has_a_description),
		cmocka_unit_test(test_codes_no_call_returns),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
