/* SPDX-License-Identifier: MIT */
/*
 * The sz rule, as the README's "ABI and versioning" states it, with
 * structs as an older and a newer caller would build them: an older
 * caller's smaller options struct is read up to its sz and defaulted
 * beyond; a newer caller's larger one is accepted when what this release
 * does not know is zero (its trailing padding included) and refused with
 * -EINVAL otherwise; MN_OPTS and MN_OPTS_INIT leave no byte but sz and the
 * given fields set; an output struct too small for 0.1 is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "memnotify.h"

/* Built without optimisation (tests/CMakeLists.txt), where a compound
   literal's padding is garbage: mn_dispatch_opts has none to leak (its
   free room is a named field the initialiser zeroes), so the whole struct
   compares equal; mn_memory_opts is compared by its fields. */
static void test_macros_zero_padding(void **state)
{
	struct mn_dispatch_opts dwant;
	(void)state;
	memset(&dwant, 0, sizeof(dwant));
	dwant.sz = sizeof(dwant);
	dwant.mode = MN_DISPATCH_EXTERNAL;
	/* Where the structs will be, the stack holds garbage first. */
	for (int round = 0; round < 3; round++) {
		volatile unsigned char dirt[512];
		memset((void *)dirt, 0xa5, sizeof(dirt));
		(void)dirt[round];
		MN_OPTS(mn_dispatch_opts, d, .mode = MN_DISPATCH_EXTERNAL);
		assert_memory_equal(&d, &dwant, sizeof(d));
		MN_OPTS(mn_memory_opts, m, .low_percent = 15);
		assert_int_equal(m.sz, sizeof(m));
		assert_int_equal(m.low_percent, 15);
		assert_null(m.cgroup);
		assert_int_equal(m.high_percent + m.hysteresis_percent + m.flags, 0);
		assert_true(m.low_bytes == 0 && m.high_bytes == 0);
		assert_int_equal(mn_dispatch_configure(&d), 0);
		struct mn_dispatch_opts i = MN_OPTS_INIT(mn_dispatch_opts);
		i.mode = MN_DISPATCH_EXTERNAL;
		assert_memory_equal(&i, &dwant, sizeof(i));
	}
}

/* A newer caller: its struct is larger; bytes this release does not know
   must be zero, and the trailing padding of this release's struct counts
   among them. */
static void test_newer_caller(void **state)
{
	struct {
		struct mn_dispatch_opts o;
		uint64_t later[2];
	} big;
	struct mn_dispatch_opts d;
	size_t end = offsetof(struct mn_dispatch_opts, mode) + sizeof(d.mode);
	(void)state;

	memset(&big, 0, sizeof(big));
	big.o.sz = sizeof(big);
	assert_int_equal(mn_dispatch_configure(&big.o), 0);
	big.later[1] = 1;
	assert_int_equal(mn_dispatch_configure(&big.o), -EINVAL);

	/* A field a later release put in today's reserved slot after mode. */
	assert_int_equal(end, offsetof(struct mn_dispatch_opts, reserved));
	memset(&d, 0, sizeof(d));
	d.sz = sizeof(d);
	((unsigned char *)&d)[end] = 1;
	assert_int_equal(mn_dispatch_configure(&d), -EINVAL);
	((unsigned char *)&d)[end] = 0;
	assert_int_equal(mn_dispatch_configure(&d), 0);
}

/* An older caller: a struct that ends before fields added later.  Those
   fields take their defaults; what it has is read. */
static void test_older_caller(void **state)
{
	struct mn_memory_opts o;
	struct mn_memory_status st = MN_OPTS_INIT(mn_memory_status);
	(void)state;

	/* Garbage where the older struct ends: never read. */
	memset(&o, 0xff, sizeof(o));
	o.sz = offsetof(struct mn_memory_opts, high_percent) +
	       sizeof(o.high_percent);
	o.cgroup = NULL;
	o.low_percent = 20;
	o.high_percent = 40;
	assert_int_equal(mn_memory_status(&o, &st), 0);
	assert_int_equal(st.low_percent, 20);
	assert_int_equal(st.high_percent, 40);
	/* sz too small to hold anything after itself. */
	o.sz = sizeof(size_t) - 1;
	assert_int_equal(mn_memory_status(&o, &st), -EINVAL);
}

/* Outputs: at least 0.1's size; a larger one is filled up to this
   release's size and the rest left alone. */
static void test_outputs(void **state)
{
	struct {
		struct mn_stats s;
		uint64_t later;
	} big;
	struct mn_stats small = MN_OPTS_INIT(mn_stats);
	(void)state;

	/* 0.1's struct ended with samples: one byte less is refused; that
	   size exactly is filled, the later fields left alone. */
	size_t v01 = offsetof(struct mn_stats, samples) + sizeof(small.samples);
	small.sz = v01 - 1;
	assert_int_equal(mn_stats(&small), -EINVAL);
	if (v01 < sizeof(small)) {
		memset(&small, 0xcd, sizeof(small));
		small.sz = v01;
		assert_int_equal(mn_stats(&small), 0);
		assert_int_equal(((unsigned char *)&small)[v01], 0xcd);
	}
	memset(&big, 0xee, sizeof(big));
	big.s.sz = sizeof(big);
	assert_int_equal(mn_stats(&big.s), 0);
	assert_int_equal(big.later, 0xeeeeeeeeeeeeeeeeull);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_macros_zero_padding),
		cmocka_unit_test(test_newer_caller),
		cmocka_unit_test(test_older_caller),
		cmocka_unit_test(test_outputs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
