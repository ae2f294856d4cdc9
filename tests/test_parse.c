/* SPDX-License-Identifier: MIT */
/*
 * Tests for src/memory/parse.c: real samples of each file, malformed inputs
 * with their exact return codes, and the live files of the machine running
 * the tests (skipped where a file does not exist).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parse.h"

/* A string literal as (buffer, length): embedded NULs count, the last does not. */
#define S(lit) (lit), (sizeof(lit) - 1)

#define KB(x) ((uint64_t)(x) * 1024)

/* ------------------------------------------------------------------------
 * Samples
 * ------------------------------------------------------------------------ */

/*
 * The samples are the fuzz corpus (tests/fuzz/corpus/TARGET/NAME), read
 * when the test starts: one copy of each, shared by the fuzzers and these
 * tests.  A fuzz input starts with its target's selector bytes (the key,
 * the controller, ...), skipped here.
 */
static const char *meminfo_real; /* /proc/meminfo of a 6.18 x86-64 VM */
static size_t meminfo_real_len;
static const char *meminfo_hwcorrupt; /* /proc/meminfo with HardwareCorrupted set */
static size_t meminfo_hwcorrupt_len;
static const char *meminfo_old; /* /proc/meminfo of a kernel before MemAvailable (3.14) */
static size_t meminfo_old_len;
static const char *psi_memory_real; /* /proc/pressure/memory */
static size_t psi_memory_real_len;
static const char *psi_io_real; /* /proc/pressure/io */
static size_t psi_io_real_len;
static const char *psi_busy; /* a busy PSI file */
static size_t psi_busy_len;
static const char *psi_cpu_old; /* /proc/pressure/cpu without a "full" line */
static size_t psi_cpu_old_len;
static const char *proc_cgroup_real; /* /proc/self/cgroup, cgroup v1 */
static size_t proc_cgroup_real_len;
static const char *proc_cgroup_hybrid; /* /proc/self/cgroup, hybrid */
static size_t proc_cgroup_hybrid_len;
static const char *proc_cgroup_v2; /* /proc/self/cgroup, v2 only */
static size_t proc_cgroup_v2_len;
static const char *mountinfo_real; /* /proc/self/mountinfo of this VM */
static size_t mountinfo_real_len;
static const char *mountinfo_v2_host; /* a v2 host */
static size_t mountinfo_v2_host_len;
static const char *mountinfo_v1_host; /* a v1 host */
static size_t mountinfo_v1_host_len;
static const char *mountinfo_docker; /* a docker container */
static size_t mountinfo_docker_len;
static const char *stat_v1_real; /* v1 memory.stat */
static size_t stat_v1_real_len;
static const char *stat_v2; /* v2 memory.stat */
static size_t stat_v2_len;
static const char *events_v2; /* v2 memory.events */
static size_t events_v2_len;
static const char *controllers_real; /* cgroup.controllers */
static size_t controllers_real_len;
static const char *controllers_v2; /* cgroup.controllers with memory */
static size_t controllers_v2_len;

static const struct {
	const char *file;
	size_t skip;
	const char **text;
	size_t *len;
} corpus[] = {
	{ "meminfo/real", 0, &meminfo_real, &meminfo_real_len },
	{ "meminfo/hwcorrupt", 0, &meminfo_hwcorrupt, &meminfo_hwcorrupt_len },
	{ "meminfo/no_available", 0, &meminfo_old, &meminfo_old_len },
	{ "psi/memory", 0, &psi_memory_real, &psi_memory_real_len },
	{ "psi/io", 0, &psi_io_real, &psi_io_real_len },
	{ "psi/busy", 0, &psi_busy, &psi_busy_len },
	{ "psi/cpu_no_full", 0, &psi_cpu_old, &psi_cpu_old_len },
	{ "proc_cgroup/v1_memory", 2, &proc_cgroup_real, &proc_cgroup_real_len },
	{ "proc_cgroup/hybrid_cpu_small", 2, &proc_cgroup_hybrid, &proc_cgroup_hybrid_len },
	{ "proc_cgroup/v2_only", 2, &proc_cgroup_v2, &proc_cgroup_v2_len },
	{ "mountinfo/real_memory", 3, &mountinfo_real, &mountinfo_real_len },
	{ "mountinfo/v2_host", 3, &mountinfo_v2_host, &mountinfo_v2_host_len },
	{ "mountinfo/v1_host_cpu", 3, &mountinfo_v1_host, &mountinfo_v1_host_len },
	{ "mountinfo/docker_small", 3, &mountinfo_docker, &mountinfo_docker_len },
	{ "keyed/v1_stat_inactive_file", 1, &stat_v1_real, &stat_v1_real_len },
	{ "keyed/v2_stat_anon", 1, &stat_v2, &stat_v2_len },
	{ "keyed/events_oom_kill", 1, &events_v2, &events_v2_len },
	{ "controllers/real_hugetlb", 1, &controllers_real, &controllers_real_len },
	{ "controllers/v2_memory", 1, &controllers_v2, &controllers_v2_len },
};

/* Read every sample (NUL-terminated).  0, or -1 with a message. */
static int load_corpus(void)
{
	char path[512];

	for (size_t i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++) {
		char *buf = NULL;
		size_t n = 0;
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", MN_TEST_CORPUS, corpus[i].file);
		f = fopen(path, "re");
		if (!f || getdelim(&buf, &n, '\0', f) < 0) {
			fprintf(stderr, "test_parse: cannot read %s\n", path);
			return -1;
		}
		fclose(f);
		*corpus[i].text = buf + corpus[i].skip;
		*corpus[i].len = strlen(buf) - corpus[i].skip;
	}
	return 0;
}

/* A sample as (buffer, length). */
#define C(x) (x), (x##_len)

/* ------------------------------------------------------------------------
 * /proc/meminfo
 * ------------------------------------------------------------------------ */

static void test_meminfo_real(void **state)
{
	struct mn__meminfo mi;

	(void)state;
	assert_int_equal(mn__parse_meminfo(C(meminfo_real), &mi), 0);
	assert_true(mi.total_bytes == KB(24683656));
	assert_true(mi.free_bytes == KB(24352620));
	assert_true(mi.available_bytes == KB(24377224));
	assert_true(mi.hw_corrupted_bytes == 0);
	assert_int_equal(mi.has_available, 1);

	assert_int_equal(mn__parse_meminfo(C(meminfo_hwcorrupt), &mi), 0);
	assert_true(mi.total_bytes == KB(8009180));
	assert_true(mi.free_bytes == KB(228300));
	assert_true(mi.available_bytes == KB(3410720));
	assert_true(mi.hw_corrupted_bytes == KB(8));
	assert_int_equal(mi.has_available, 1);
}

static void test_meminfo_no_available(void **state)
{
	struct mn__meminfo mi;

	(void)state;
	assert_int_equal(mn__parse_meminfo(C(meminfo_old), &mi), 0);
	assert_true(mi.total_bytes == KB(2051396));
	assert_true(mi.free_bytes == KB(201432));
	assert_int_equal(mi.has_available, 0);
	assert_true(mi.available_bytes == 0);
}

static void test_meminfo_layout(void **state)
{
	struct mn__meminfo mi;

	(void)state;
	/* No newline at the end, a tab, trailing blanks, unit-less lines. */
	assert_int_equal(mn__parse_meminfo(S("HugePages_Total:       0\n"
					     "MemTotal:\t100 kB  \n"
					     "Garbage line\n"
					     "\n"
					     "MemFree: 50 kB"), &mi), 0);
	assert_true(mi.total_bytes == KB(100));
	assert_true(mi.free_bytes == KB(50));
	assert_int_equal(mi.has_available, 0);

	/* Prefix collisions, and the first of two equal keys counts. */
	assert_int_equal(mn__parse_meminfo(S("MemTotalX: 1 kB\n"
					     "xMemTotal: 2 kB\n"
					     "MemFreeZ: 3 kB\n"
					     "MemTotal: 4 kB\n"
					     "MemFree: 5 kB\n"
					     "MemTotal: 6 kB\n"
					     "MemAvailableNow: 7 kB\n"), &mi), 0);
	assert_true(mi.total_bytes == KB(4));
	assert_true(mi.free_bytes == KB(5));
	assert_int_equal(mi.has_available, 0);

	/* Zero and the largest value that fits. */
	assert_int_equal(mn__parse_meminfo(S("MemTotal: 18014398509481983 kB\n"
					     "MemFree: 0 kB\n"), &mi), 0);
	assert_true(mi.total_bytes == UINT64_MAX - 1023);
	assert_true(mi.free_bytes == 0);
}

static void test_meminfo_missing(void **state)
{
	struct mn__meminfo mi;

	(void)state;
	assert_int_equal(mn__parse_meminfo(NULL, 0, &mi), -ENOENT);
	assert_int_equal(mn__parse_meminfo(S(""), &mi), -ENOENT);
	assert_int_equal(mn__parse_meminfo(S("\n\n"), &mi), -ENOENT);
	assert_int_equal(mn__parse_meminfo(S("MemFree: 5 kB\n"), &mi),
			 -ENOENT);
	assert_int_equal(mn__parse_meminfo(S("MemTotal: 5 kB\n"), &mi),
			 -ENOENT);
	assert_int_equal(mn__parse_meminfo(S("hello world\n\x01\x02\xff"),
					   &mi), -ENOENT);
	/* Truncated inside a key: it is just another key. */
	assert_int_equal(mn__parse_meminfo(S("MemTotal: 5 kB\nMemFr"), &mi),
			 -ENOENT);
	/* A key with a NUL in it is not the key. */
	assert_int_equal(mn__parse_meminfo(S("Mem\0Total: 5 kB\nMemFree: 1 kB\n"),
					   &mi), -ENOENT);
	/* The real file cut after its first line. */
	assert_int_equal(mn__parse_meminfo(meminfo_real, 28, &mi), -ENOENT);
}

static void test_meminfo_malformed(void **state)
{
	static const char *const bad[] = {
		"MemTotal:       2468",		/* truncated number */
		"MemTotal:",			/* truncated before it */
		"MemTotal:   ",
		"MemTotal: 5 k",		/* truncated unit */
		"MemTotal: 5",			/* no unit */
		"MemTotal: 5kB",
		"MemTotal: 5 MB",
		"MemTotal: 5 kB x",
		"MemTotal: -5 kB",
		"MemTotal: +5 kB",
		"MemTotal: 5.5 kB",
		"MemTotal: 0x10 kB",
		"MemTotal: kB",
		"MemTotal: 1 2 kB",
		"MemFree: lots kB",
		"MemAvailable: ? kB",
		"HardwareCorrupted: 1",
	};
	struct mn__meminfo mi;
	char buf[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int n = snprintf(buf, sizeof(buf),
				 "MemTotal: 1 kB\nMemFree: 1 kB\n%s\n", bad[i]);

		/* The bad line comes after good ones: repeats are skipped... */
		if (strncmp(bad[i], "MemTotal", 8) &&
		    strncmp(bad[i], "MemFree", 7)) {
			print_message("  bad line: %s\n", bad[i]);
			assert_int_equal(mn__parse_meminfo(buf, (size_t)n, &mi),
					 -EIO);
		}
		/* ...so also try it first. */
		n = snprintf(buf, sizeof(buf), "%s\nMemTotal: 1 kB\nMemFree: 1 kB\n",
			     bad[i]);
		assert_int_equal(mn__parse_meminfo(buf, (size_t)n, &mi), -EIO);
	}
	/* An embedded NUL in the value. */
	assert_int_equal(mn__parse_meminfo(S("MemTotal:\0 100 kB\nMemFree: 1 kB\n"),
					   &mi), -EIO);
	assert_int_equal(mn__parse_meminfo(S("MemTotal: 100\0 kB\nMemFree: 1 kB\n"),
					   &mi), -EIO);
}

static void test_meminfo_overflow(void **state)
{
	struct mn__meminfo mi;

	(void)state;
	/* 2^54 kB is 2^64 bytes. */
	assert_int_equal(mn__parse_meminfo(S("MemTotal: 18014398509481984 kB\n"
					     "MemFree: 0 kB\n"), &mi), -ERANGE);
	/* UINT64_MAX kB, and more than UINT64_MAX. */
	assert_int_equal(mn__parse_meminfo(S("MemTotal: 18446744073709551615 kB\n"
					     "MemFree: 0 kB\n"), &mi), -ERANGE);
	assert_int_equal(mn__parse_meminfo(S("MemTotal: 1 kB\n"
					     "MemFree: 99999999999999999999999 kB\n"),
					   &mi), -ERANGE);
	/* Structure is checked before size: a huge number without unit. */
	assert_int_equal(mn__parse_meminfo(S("MemTotal: 99999999999999999999999\n"
					     "MemFree: 0 kB\n"), &mi), -EIO);
}

/* ------------------------------------------------------------------------
 * PSI
 * ------------------------------------------------------------------------ */

#define assert_double(a, b) \
	assert_true((a) - (b) < 1e-9 && (b) - (a) < 1e-9)

static void test_psi_real(void **state)
{
	struct mn__psi p;

	(void)state;
	assert_int_equal(mn__parse_psi(C(psi_memory_real), &p), 0);
	assert_true(p.some_avg10 == 0.0 && p.some_avg60 == 0.0 &&
		    p.some_avg300 == 0.0);
	assert_true(p.some_total_us == 0 && p.full_total_us == 0);
	assert_int_equal(p.has_full, 1);

	assert_int_equal(mn__parse_psi(C(psi_io_real), &p), 0);
	assert_true(p.some_avg10 == 0.0);
	assert_true(p.some_avg60 == 0.29);
	assert_true(p.some_avg300 == 0.39);
	assert_true(p.some_total_us == 2349427);
	assert_true(p.full_avg60 == 0.29);
	assert_true(p.full_total_us == 2282558);
	assert_int_equal(p.has_full, 1);

	assert_int_equal(mn__parse_psi(C(psi_busy), &p), 0);
	assert_double(p.some_avg10, 12.34);
	assert_double(p.some_avg60, 5.67);
	assert_double(p.some_avg300, 1.08);
	assert_true(p.some_total_us == 98765432);
	assert_double(p.full_avg10, 100.0);
	assert_double(p.full_avg60, 99.99);
	assert_double(p.full_avg300, 0.01);
	assert_true(p.full_total_us == 1234567);
	assert_int_equal(p.has_full, 1);
}

static void test_psi_no_full(void **state)
{
	struct mn__psi p;

	(void)state;
	memset(&p, 0xff, sizeof(p));
	assert_int_equal(mn__parse_psi(C(psi_cpu_old), &p), 0);
	assert_true(p.some_avg10 == 0.36);
	assert_true(p.some_avg60 == 0.12);
	assert_true(p.some_avg300 == 0.16);
	assert_true(p.some_total_us == 1399356);
	assert_int_equal(p.has_full, 0);
	assert_true(p.full_avg10 == 0.0 && p.full_avg60 == 0.0 &&
		    p.full_avg300 == 0.0 && p.full_total_us == 0);
}

static void test_psi_layout(void **state)
{
	struct mn__psi p;

	(void)state;
	/* No final newline; unknown keys, unknown lines, order, blanks. */
	assert_int_equal(mn__parse_psi(S("# comment\n"
					 "\n"
					 "some  total=7 avg300=3 avg900=9.9 "
					 "avg60=2.5\tavg10=1.25 \n"
					 "weird 1 2 3\n"
					 "full avg10=0.00 avg60=0.00 avg300=0.00 total=8"), &p), 0);
	assert_double(p.some_avg10, 1.25);
	assert_double(p.some_avg60, 2.5);
	assert_double(p.some_avg300, 3.0);
	assert_true(p.some_total_us == 7);
	assert_true(p.full_total_us == 8);
	assert_int_equal(p.has_full, 1);

	/* Long fractions; the first "some" line counts. */
	assert_int_equal(mn__parse_psi(S("some avg10=0.1234567890123456789012345 "
					 "avg60=007.50 avg300=0.0 total=18446744073709551615\n"
					 "some avg10=9.00 avg60=9.00 avg300=9.00 total=9\n"),
				       &p), 0);
	assert_double(p.some_avg10, 0.123456789012345678);
	assert_double(p.some_avg60, 7.5);
	assert_true(p.some_total_us == UINT64_MAX);
	assert_int_equal(p.has_full, 0);
}

static void test_psi_missing(void **state)
{
	struct mn__psi p;

	(void)state;
	assert_int_equal(mn__parse_psi(NULL, 0, &p), -ENOENT);
	assert_int_equal(mn__parse_psi(S(""), &p), -ENOENT);
	assert_int_equal(mn__parse_psi(S("\n"), &p), -ENOENT);
	assert_int_equal(mn__parse_psi(S("full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"),
				       &p), -ENOENT);
	assert_int_equal(mn__parse_psi(S("something avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"),
				       &p), -ENOENT);
	assert_int_equal(mn__parse_psi(S("Some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"),
				       &p), -ENOENT);
	assert_int_equal(mn__parse_psi(S("\x7f\x45\x4c\x46\x02\x01\x01"), &p),
			 -ENOENT);
}

static void test_psi_malformed(void **state)
{
	static const char *const bad[] = {
		"some avg10=0.00 avg60=0.00 avg300=0.00",	/* no total */
		"some avg10=0.00 avg60=0.00 avg300=0.00 total=",
		"some avg10=0.00 avg6",				/* truncated */
		"some",
		"some avg10=abc avg60=0.00 avg300=0.00 total=0",
		"some avg10=1. avg60=0.00 avg300=0.00 total=0",
		"some avg10=.5 avg60=0.00 avg300=0.00 total=0",
		"some avg10=-1.00 avg60=0.00 avg300=0.00 total=0",
		"some avg10=1,50 avg60=0.00 avg300=0.00 total=0",
		"some avg10=1.2.3 avg60=0.00 avg300=0.00 total=0",
		"some avg10=1e3 avg60=0.00 avg300=0.00 total=0",
		"some avg10= avg60=0.00 avg300=0.00 total=0",
		"some avg10=0.00 avg60=0.00 avg300=0.00 total=-1",
		"some avg10=0.00 avg60=0.00 avg300=0.00 total=12x",
		"some avg10=0.00 avg60=0.00 avg300=0.00 total=0 junk",
		"some avg10=0.00 avg10=0.00 avg60=0.00 avg300=0.00 total=0",
		"some avg10 =0.00 avg60=0.00 avg300=0.00 total=0",
	};
	struct mn__psi p;
	char buf[160];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int n = snprintf(buf, sizeof(buf), "%s\n", bad[i]);

		print_message("  bad line: %s\n", bad[i]);
		assert_int_equal(mn__parse_psi(buf, (size_t)n, &p), -EIO);
		/* Same, as a bad "full" line after a good "some" line. */
		n = snprintf(buf, sizeof(buf), "%sfull%s", psi_cpu_old,
			     bad[i] + 4);
		assert_int_equal(mn__parse_psi(buf, (size_t)n, &p), -EIO);
	}
	/* Truncated real file: the "full" line cut short. */
	assert_int_equal(mn__parse_psi(psi_io_real,
				       psi_io_real_len - 10, &p), -EIO);
	/* Embedded NUL. */
	assert_int_equal(mn__parse_psi(S("some avg10=0.00\0 avg60=0.00 avg300=0.00 total=0\n"),
				       &p), -EIO);
}

static void test_psi_overflow(void **state)
{
	struct mn__psi p;

	(void)state;
	assert_int_equal(mn__parse_psi(S("some avg10=0.00 avg60=0.00 avg300=0.00 "
					 "total=18446744073709551616\n"), &p),
			 -ERANGE);
	assert_int_equal(mn__parse_psi(S("some avg10=99999999999999999999.00 "
					 "avg60=0.00 avg300=0.00 total=0\n"), &p),
			 -ERANGE);
	assert_int_equal(mn__parse_psi(S("some avg10=0.00 avg60=0.00 avg300=0.00 total=1\n"
					 "full avg10=0.00 avg60=0.00 avg300=0.00 "
					 "total=99999999999999999999999\n"), &p),
			 -ERANGE);
}

/* ------------------------------------------------------------------------
 * Single-value cgroup files
 * ------------------------------------------------------------------------ */

static void test_cgroup_value(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(mn__parse_cgroup_value(S("max\n"), &v), 0);
	assert_true(v == MN__UNLIMITED);
	assert_int_equal(mn__parse_cgroup_value(S("max"), &v), 0);
	assert_true(v == MN__UNLIMITED);
	/* v1 memory.limit_in_bytes when unlimited. */
	assert_int_equal(mn__parse_cgroup_value(S("9223372036854771712\n"), &v),
			 0);
	assert_true(v == MN__UNLIMITED);
	assert_int_equal(mn__parse_cgroup_value(S("4611686018427387904\n"), &v),
			 0);
	assert_true(v == MN__UNLIMITED);
	assert_int_equal(mn__parse_cgroup_value(S("18446744073709551615"), &v),
			 0);
	assert_true(v == MN__UNLIMITED);
	assert_int_equal(mn__parse_cgroup_value(S("4611686018427387903\n"), &v),
			 0);
	assert_true(v == UINT64_C(4611686018427387903));
	/* v1 memory.usage_in_bytes, v2 memory.current. */
	assert_int_equal(mn__parse_cgroup_value(S("228098048\n"), &v), 0);
	assert_true(v == 228098048);
	assert_int_equal(mn__parse_cgroup_value(S("536870912"), &v), 0);
	assert_true(v == 536870912);
	assert_int_equal(mn__parse_cgroup_value(S("0\n"), &v), 0);
	assert_true(v == 0);
	assert_int_equal(mn__parse_cgroup_value(S("000042\n"), &v), 0);
	assert_true(v == 42);
}

static void test_cgroup_value_malformed(void **state)
{
	static const struct {
		const char *s;
		size_t n;
	} bad[] = {
#define B(lit) { lit, sizeof(lit) - 1 }
		B(""), B("\n"), B("\n\n"), B("-1\n"), B("-1"), B("+5"),
		B(" 5"), B("5 "), B("5 \n"), B("5\t"), B("5\n\n"), B("5\n6"),
		B("\n5"), B("5x"), B("0x10"), B("1.5"), B("maxx"), B("ma"),
		B("max "), B("Max"), B("MAX\n"), B("max\n\n"), B("max\0"),
		B("12\0"), B("1\0" "2"), B("\0"), B("unlimited\n"),
#undef B
	};
	uint64_t v = 7;
	size_t i;

	(void)state;
	assert_int_equal(mn__parse_cgroup_value(NULL, 0, &v), -EIO);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(mn__parse_cgroup_value(bad[i].s, bad[i].n, &v),
				 -EIO);
	assert_true(v == 7);
	assert_int_equal(mn__parse_cgroup_value(S("18446744073709551616\n"), &v),
			 -ERANGE);
	assert_int_equal(mn__parse_cgroup_value(S("99999999999999999999999999"),
						&v), -ERANGE);
	/* Junk wins over overflow. */
	assert_int_equal(mn__parse_cgroup_value(S("99999999999999999999999999x"),
						&v), -EIO);
}

/* ------------------------------------------------------------------------
 * Flat-keyed files
 * ------------------------------------------------------------------------ */

static void assert_keyed(const char *buf, size_t len, const char *key,
			 int ret, uint64_t val)
{
	uint64_t v = 0xdead;

	print_message("  key \"%s\"\n", key);
	assert_int_equal(mn__parse_keyed(buf, len, key, &v), ret);
	if (!ret)
		assert_true(v == val);
	else
		assert_true(v == 0xdead);
}

static void test_keyed_real(void **state)
{
	(void)state;
	assert_keyed(C(stat_v1_real), "cache", 0, 9801728);
	assert_keyed(C(stat_v1_real), "inactive_file", 0, 122880);
	assert_keyed(C(stat_v1_real), "total_inactive_file", 0, 192593920);
	assert_keyed(C(stat_v1_real), "total_unevictable", 0, 9523200);
	assert_keyed(C(stat_v1_real), "hierarchical_memory_limit", 0,
		     UINT64_C(9223372036854771712));
	assert_keyed(C(stat_v1_real), "anon", -ENOENT, 0);

	assert_keyed(C(stat_v2), "anon", 0, 1289879552);
	assert_keyed(C(stat_v2), "file", 0, 2410315776);
	assert_keyed(C(stat_v2), "inactive_file", 0, 1196744704);
	assert_keyed(C(stat_v2), "active_file", 0, 911769600);
	assert_keyed(C(stat_v2), "thp_collapse_alloc", 0, 56);
	assert_keyed(C(stat_v2), "total_inactive_file", -ENOENT, 0);

	assert_keyed(C(events_v2), "low", 0, 0);
	assert_keyed(C(events_v2), "high", 0, 12);
	assert_keyed(C(events_v2), "max", 0, 3);
	assert_keyed(C(events_v2), "oom", 0, 0);
	assert_keyed(C(events_v2), "oom_kill", 0, 0);
	assert_keyed(C(events_v2), "oom_group_kill", 0, 0);
}

static void test_keyed_prefix(void **state)
{
	static const char ev[] = "oom_group_kill 3\noom_kill 2\noom 1\n";
	static const char st[] = "total_inactive_file 5\ninactive_file_x 6\n";

	(void)state;
	assert_keyed(S(ev), "oom", 0, 1);
	assert_keyed(S(ev), "oom_kill", 0, 2);
	assert_keyed(S(ev), "oom_group_kill", 0, 3);
	assert_keyed(S(ev), "oo", -ENOENT, 0);
	assert_keyed(S(ev), "oom_k", -ENOENT, 0);
	assert_keyed(S(st), "inactive_file", -ENOENT, 0);
	assert_keyed(S(st), "inactive_file_x", 0, 6);
	assert_keyed(S(st), "inactive", -ENOENT, 0);
	assert_keyed(S(st), "file", -ENOENT, 0);
	assert_keyed(S("inactive_file_x 1\ninactive_file 2\n"),
		     "inactive_file", 0, 2);
	/* A NUL inside the first word makes it another word. */
	assert_keyed(S("an\0on 5\nanon 7\n"), "anon", 0, 7);
	assert_keyed(S("anon\0 5\nanon 7\n"), "anon", 0, 7);
	/* A key with a blank in it matches no first word. */
	assert_keyed(S("anon 5\n"), "anon 5", -ENOENT, 0);
	assert_keyed(S("anon 5\n"), "", -ENOENT, 0);
}

static void test_keyed_layout(void **state)
{
	(void)state;
	assert_keyed(S("anon 5"), "anon", 0, 5);
	assert_keyed(S("anon\t5  \t\n"), "anon", 0, 5);
	assert_keyed(S("anon    5\n"), "anon", 0, 5);
	assert_keyed(S("garbage!!\n\n\x01\x02\nanon 5\n"), "anon", 0, 5);
	assert_keyed(S("anon 1\nanon 2\n"), "anon", 0, 1);
	assert_keyed(S("anon 18446744073709551615\n"), "anon", 0, UINT64_MAX);
	assert_keyed(S("file x\nanon 5\n"), "anon", 0, 5);
	assert_keyed(NULL, 0, "anon", -ENOENT, 0);
	assert_keyed(S(""), "anon", -ENOENT, 0);
	/* The real file cut inside the key of its last line. */
	assert_keyed(stat_v1_real, stat_v1_real_len - 12,
		     "total_unevictable", -ENOENT, 0);
}

static void test_keyed_malformed(void **state)
{
	(void)state;
	assert_keyed(S("anon\n"), "anon", -EIO, 0);
	assert_keyed(S("anon"), "anon", -EIO, 0);
	assert_keyed(S("anon "), "anon", -EIO, 0);
	assert_keyed(S("anon abc\n"), "anon", -EIO, 0);
	assert_keyed(S("anon -5\n"), "anon", -EIO, 0);
	assert_keyed(S("anon +5\n"), "anon", -EIO, 0);
	assert_keyed(S("anon 5 6\n"), "anon", -EIO, 0);
	assert_keyed(S("anon 5x\n"), "anon", -EIO, 0);
	assert_keyed(S("anon 5.0\n"), "anon", -EIO, 0);
	assert_keyed(S("anon 5\0\n"), "anon", -EIO, 0);
	assert_keyed(S("anon \0" "5\n"), "anon", -EIO, 0);
	assert_keyed(S("anon max\n"), "anon", -EIO, 0);
	/* The first occurrence counts, even when it is the bad one. */
	assert_keyed(S("anon x\nanon 5\n"), "anon", -EIO, 0);
	/* The real file cut inside the value of its last line, and before. */
	assert_keyed(stat_v2, stat_v2_len - 2, "thp_collapse_alloc",
		     0, 5);
	assert_keyed(stat_v2, stat_v2_len - 3, "thp_collapse_alloc",
		     -EIO, 0);
	assert_keyed(stat_v2, stat_v2_len - 4, "thp_collapse_alloc",
		     -EIO, 0);
}

static void test_keyed_overflow(void **state)
{
	(void)state;
	assert_keyed(S("anon 18446744073709551616\n"), "anon", -ERANGE, 0);
	assert_keyed(S("anon 99999999999999999999999999999\n"), "anon",
		     -ERANGE, 0);
	assert_keyed(S("anon 99999999999999999999999999999x\n"), "anon",
		     -EIO, 0);
}

/* ------------------------------------------------------------------------
 * /proc/self/cgroup
 * ------------------------------------------------------------------------ */

static void assert_v1(const char *buf, size_t len, const char *ctl, int ret,
		      const char *path)
{
	char out[256];

	memset(out, 'x', sizeof(out));
	print_message("  v1 controller \"%s\"\n", ctl);
	assert_int_equal(mn__parse_proc_cgroup_v1(buf, len, ctl, out,
						  sizeof(out)), ret);
	assert_string_equal(out, ret ? "" : path);
}

static void assert_v2(const char *buf, size_t len, int ret, const char *path)
{
	char out[256];

	memset(out, 'x', sizeof(out));
	assert_int_equal(mn__parse_proc_cgroup_v2(buf, len, out, sizeof(out)),
			 ret);
	assert_string_equal(out, ret ? "" : path);
}

static void test_proc_cgroup_real(void **state)
{
	(void)state;
	assert_v1(C(proc_cgroup_real), "memory", 0,
		  "/process_api/1a3d98be82a41ff51b5d3dee860a4944");
	assert_v1(C(proc_cgroup_real), "cpu", 0, "/");
	assert_v1(C(proc_cgroup_real), "cpuacct", 0, "/");
	assert_v1(C(proc_cgroup_real), "hugetlb", -ENOENT, NULL);
	assert_v2(C(proc_cgroup_real), 0, "/");

	assert_v1(C(proc_cgroup_hybrid), "memory", 0,
		  "/user.slice/user-1000.slice/session-2.scope");
	assert_v1(C(proc_cgroup_hybrid), "cpu", 0, "/user.slice");
	assert_v1(C(proc_cgroup_hybrid), "cpuacct", 0, "/user.slice");
	assert_v1(C(proc_cgroup_hybrid), "net_prio", 0, "/");
	assert_v2(C(proc_cgroup_hybrid), 0,
		  "/user.slice/user-1000.slice/session-2.scope");

	assert_v1(C(proc_cgroup_v2), "memory", -ENOENT, NULL);
	assert_v2(C(proc_cgroup_v2), 0,
		  "/user.slice/user-1000.slice/user@1000.service/app.slice/"
		  "app-org.gnome.Terminal.slice/vte-spawn-3f1c.scope");
}

static void test_proc_cgroup_words(void **state)
{
	(void)state;
	/* Whole words of the controller list only. */
	assert_v1(C(proc_cgroup_hybrid), "cpuac", -ENOENT, NULL);
	assert_v1(C(proc_cgroup_hybrid), "acct", -ENOENT, NULL);
	assert_v1(C(proc_cgroup_hybrid), "cpu,cpuacct", -ENOENT, NULL);
	assert_v1(C(proc_cgroup_hybrid), "net", -ENOENT, NULL);
	assert_v1(S("4:memory_foo:/x\n"), "memory", -ENOENT, NULL);
	assert_v1(S("4:memory_foo:/x\n4:memory:/y\n"), "memory", 0, "/y");
	assert_v1(S("4:foo,memory:/x\n"), "memory", 0, "/x");
	assert_v1(S("4:xmemory:/x\n"), "memory", -ENOENT, NULL);
	/* Named hierarchies are not controllers. */
	assert_v1(C(proc_cgroup_hybrid), "systemd", -ENOENT, NULL);
	assert_v1(C(proc_cgroup_hybrid), "name=systemd", -ENOENT, NULL);
	assert_v1(C(proc_cgroup_hybrid), "name", -ENOENT, NULL);
	assert_v1(C(proc_cgroup_hybrid), "", -ENOENT, NULL);
	/* The empty controller list of the v2 line holds no "" controller. */
	assert_v1(S("0::/\n"), "", -ENOENT, NULL);
	/* The path is the rest of the line, ':' included. */
	assert_v1(S("4:memory:/a:b:c\n"), "memory", 0, "/a:b:c");
	assert_v2(S("0::/a:b\n"), 0, "/a:b");
	/* First match; no final newline; junk lines skipped. */
	assert_v1(S("junk\n\n::\n4:memory:/first\n5:memory:/second"), "memory",
		  0, "/first");
	assert_v1(S("4:memory:/last"), "memory", 0, "/last");
	assert_v2(S("junk\n0::/last"), 0, "/last");
	/* Not v2 lines. */
	assert_v2(S("0:memory:/x\n"), -ENOENT, NULL);
	assert_v2(S("00::/x\n"), -ENOENT, NULL);
	assert_v2(S("1::/x\n"), -ENOENT, NULL);
	assert_v2(S(":0::/x\n"), -ENOENT, NULL);
	/* Truncated before the path's ':' cannot match. */
	assert_v1(S("4:memory"), "memory", -ENOENT, NULL);
	assert_v1(S("4:memo"), "memory", -ENOENT, NULL);
	assert_v2(S("0:"), -ENOENT, NULL);
	assert_v1(NULL, 0, "memory", -ENOENT, NULL);
	assert_v2(NULL, 0, -ENOENT, NULL);
	assert_v2(S("\xff\xfe\x00\x01"), -ENOENT, NULL);
}

static void test_proc_cgroup_malformed(void **state)
{
	(void)state;
	assert_v1(S("4:memory:\n"), "memory", -EIO, NULL);
	assert_v1(S("4:memory:"), "memory", -EIO, NULL);
	assert_v1(S("4:memory:relative\n"), "memory", -EIO, NULL);
	assert_v1(S("x:memory:/a\n"), "memory", -EIO, NULL);
	assert_v1(S(":memory:/a\n"), "memory", -EIO, NULL);
	assert_v1(S("-4:memory:/a\n"), "memory", -EIO, NULL);
	assert_v1(S("4:memory:/a\0b\n"), "memory", -EIO, NULL);
	assert_v2(S("0::\n"), -EIO, NULL);
	assert_v2(S("0::"), -EIO, NULL);
	assert_v2(S("0::user.slice\n"), -EIO, NULL);
	assert_v2(S("0::/\0\n"), -EIO, NULL);
	/* A malformed line that would not have matched is skipped. */
	assert_v1(S("x:cpu:/a\n4:memory:/b\n"), "memory", 0, "/b");
	assert_v2(S("0:cpu:\n0::/b\n"), 0, "/b");
}

static void test_proc_cgroup_toolong(void **state)
{
	static const char line[] = "4:memory:/abcdef\n0::/abcdef\n";
	char out[16];

	(void)state;
	/* "/abcdef" needs 8 bytes. */
	memset(out, 'x', sizeof(out));
	assert_int_equal(mn__parse_proc_cgroup_v1(S(line), "memory", out, 8),
			 0);
	assert_string_equal(out, "/abcdef");
	memset(out, 'x', sizeof(out));
	assert_int_equal(mn__parse_proc_cgroup_v1(S(line), "memory", out, 7),
			 -ENAMETOOLONG);
	assert_int_equal(out[0], '\0');
	assert_int_equal(out[7], 'x');
	memset(out, 'x', sizeof(out));
	assert_int_equal(mn__parse_proc_cgroup_v2(S(line), out, 7),
			 -ENAMETOOLONG);
	assert_int_equal(out[0], '\0');
	assert_int_equal(out[7], 'x');
	memset(out, 'x', sizeof(out));
	assert_int_equal(mn__parse_proc_cgroup_v2(S(line), out, 1),
			 -ENAMETOOLONG);
	assert_int_equal(out[0], '\0');
	assert_int_equal(out[1], 'x');
	/* outlen 0: nothing is written. */
	memset(out, 'x', sizeof(out));
	assert_int_equal(mn__parse_proc_cgroup_v2(S(line), out, 0),
			 -ENAMETOOLONG);
	assert_int_equal(out[0], 'x');
	assert_int_equal(mn__parse_proc_cgroup_v1(S(line), "cpu", out, 0),
			 -ENOENT);
	assert_int_equal(out[0], 'x');
}

/* ------------------------------------------------------------------------
 * /proc/self/mountinfo
 * ------------------------------------------------------------------------ */

static void assert_mount(const char *buf, size_t len, const char *fstype,
			 const char *opt, int ret, const char *mnt,
			 const char *root)
{
	char m[256], r[256];

	memset(m, 'x', sizeof(m));
	memset(r, 'x', sizeof(r));
	print_message("  mount %s %s\n", fstype, opt ? opt : "(null)");
	assert_int_equal(mn__parse_mountinfo(buf, len, fstype, opt, m,
					     sizeof(m), r, sizeof(r)), ret);
	assert_string_equal(m, ret ? "" : mnt);
	assert_string_equal(r, ret ? "" : root);
}

static void test_mountinfo_real(void **state)
{
	(void)state;
	assert_mount(C(mountinfo_real), "cgroup", "memory", 0,
		     "/sys/fs/cgroup/memory", "/");
	assert_mount(C(mountinfo_real), "cgroup", "cpu", 0,
		     "/sys/fs/cgroup/cpu", "/");
	assert_mount(C(mountinfo_real), "cgroup", "cpuacct", 0,
		     "/sys/fs/cgroup/cpuacct", "/");
	assert_mount(C(mountinfo_real), "cgroup", "hugetlb", -ENOENT, NULL,
		     NULL);
	assert_mount(C(mountinfo_real), "cgroup", "systemd", -ENOENT, NULL,
		     NULL);
	assert_mount(C(mountinfo_real), "cgroup2", NULL, 0,
		     "/sys/fs/cgroup/unified", "/");
	/* Not a cgroup mount, but the parser does not care. */
	assert_mount(C(mountinfo_real), "ext4", NULL, 0, "/", "/");

	assert_mount(C(mountinfo_v2_host), "cgroup2", NULL, 0,
		     "/sys/fs/cgroup", "/");
	assert_mount(C(mountinfo_v2_host), "cgroup", "memory", -ENOENT, NULL,
		     NULL);
	assert_mount(C(mountinfo_v2_host), "cgroup", NULL, -ENOENT, NULL,
		     NULL);

	assert_mount(C(mountinfo_v1_host), "cgroup", "memory", 0,
		     "/sys/fs/cgroup/memory", "/");
	assert_mount(C(mountinfo_v1_host), "cgroup", "cpu", 0,
		     "/sys/fs/cgroup/cpu,cpuacct", "/");
	assert_mount(C(mountinfo_v1_host), "cgroup", "cpuacct", 0,
		     "/sys/fs/cgroup/cpu,cpuacct", "/");
	assert_mount(C(mountinfo_v1_host), "cgroup2", NULL, 0,
		     "/sys/fs/cgroup/unified", "/");

	assert_mount(C(mountinfo_docker), "cgroup", "memory", 0,
		     "/sys/fs/cgroup/memory", "/docker/4f2a9c0d1e7b");
}

static void test_mountinfo_fields(void **state)
{
	(void)state;
	/* Super options are whole words. */
	assert_mount(S("35 31 0:32 / /a rw - cgroup cgroup rw,memory_foo\n"
		       "36 31 0:33 / /b rw - cgroup cgroup memory\n"),
		     "cgroup", "memory", 0, "/b", "/");
	assert_mount(S("35 31 0:32 / /a rw - cgroup cgroup rw,xmemory\n"),
		     "cgroup", "memory", -ENOENT, NULL, NULL);
	assert_mount(S("35 31 0:32 / /a rw - cgroup cgroup rw,memory\n"),
		     "cgroup", "", -ENOENT, NULL, NULL);
	assert_mount(S("35 31 0:32 / /a rw - cgroup cgroup rw,,memory\n"),
		     "cgroup", "", -ENOENT, NULL, NULL);
	/* fstype is a whole field too. */
	assert_mount(C(mountinfo_real), "cgroup2x", NULL, -ENOENT, NULL, NULL);
	assert_mount(C(mountinfo_real), "cgrou", NULL, -ENOENT, NULL, NULL);
	assert_mount(C(mountinfo_real), "", NULL, -ENOENT, NULL, NULL);
	/* memory in the per-mount options, not the super options. */
	assert_mount(S("35 31 0:32 / /a rw,memory - cgroup cgroup rw,cpu\n"),
		     "cgroup", "memory", -ENOENT, NULL, NULL);
	/* Several optional fields; an empty source. */
	assert_mount(S("30 22 0:26 / /sys/fs/cgroup rw shared:9 master:2 "
		       "propagate_from:3 unbindable - cgroup2  rw,nsdelegate\n"),
		     "cgroup2", NULL, 0, "/sys/fs/cgroup", "/");
	/* Extra fields after the super options are tolerated. */
	assert_mount(S("30 22 0:26 / /c rw - cgroup2 cgroup2 rw future\n"),
		     "cgroup2", NULL, 0, "/c", "/");
	/* First match; no final newline; junk lines. */
	assert_mount(S("junk\n\n- - - - - - - -\n"
		       "1 2 3:4 /r1 /m1 rw - cgroup2 cgroup2 rw\n"
		       "5 6 7:8 /r2 /m2 rw - cgroup2 cgroup2 rw"),
		     "cgroup2", NULL, 0, "/m1", "/r1");
	assert_mount(S("5 6 7:8 /r2 /m2 rw - cgroup2 cgroup2 rw"),
		     "cgroup2", NULL, 0, "/m2", "/r2");
	/* Lines without the separator cannot be told apart: skipped. */
	assert_mount(S("41 31 0:38 / /sys/fs/cgroup/unified rw,relatime cgroup2 cgroup2 rw\n"),
		     "cgroup2", NULL, -ENOENT, NULL, NULL);
	/* Truncated inside the type: another type. */
	assert_mount(mountinfo_real, mountinfo_real_len - 17,
		     "cgroup2", NULL, -ENOENT, NULL, NULL);
	assert_mount(mountinfo_real, mountinfo_real_len - 20,
		     "cgroup2", NULL, -ENOENT, NULL, NULL);
	/* Truncated after the type: a broken line of the right type. */
	assert_mount(mountinfo_real, mountinfo_real_len - 12,
		     "cgroup2", NULL, -EIO, NULL, NULL);
	assert_mount(mountinfo_real, mountinfo_real_len - 4,
		     "cgroup2", NULL, -EIO, NULL, NULL);
	assert_mount(mountinfo_real, mountinfo_real_len - 2,
		     "cgroup2", NULL, 0, "/sys/fs/cgroup/unified", "/");
	assert_mount(NULL, 0, "cgroup2", NULL, -ENOENT, NULL, NULL);
	assert_mount(S(""), "cgroup2", NULL, -ENOENT, NULL, NULL);
	assert_mount(S("\x00\x01\x02 - cgroup2"), "cgroup2", NULL, -ENOENT,
		     NULL, NULL);
}

static void test_mountinfo_escapes(void **state)
{
	(void)state;
	assert_mount(S("50 31 0:40 /a\\040b /mnt/my\\040cgroup\\011tab\\134back\\012nl rw"
		       " - cgroup2 cgroup2 rw\n"),
		     "cgroup2", NULL, 0, "/mnt/my cgroup\ttab\\back\nnl", "/a b");
	/* \ooo above \377, too short, not octal: kept as they are. */
	assert_mount(S("50 31 0:40 /\\400 /m\\9\\08\\1 rw - cgroup2 cgroup2 rw\n"),
		     "cgroup2", NULL, 0, "/m\\9\\08\\1", "/\\400");
	assert_mount(S("50 31 0:40 / /m\\04 rw - cgroup2 cgroup2 rw\n"),
		     "cgroup2", NULL, 0, "/m\\04", "/");
	/* High bytes. */
	assert_mount(S("50 31 0:40 / /m\\303\\251 rw - cgroup2 cgroup2 rw\n"),
		     "cgroup2", NULL, 0, "/m\xc3\xa9", "/");
	/* A NUL can not be returned in a C string. */
	assert_mount(S("50 31 0:40 / /m\\000 rw - cgroup2 cgroup2 rw\n"),
		     "cgroup2", NULL, -EIO, NULL, NULL);
	assert_mount(S("50 31 0:40 /\\000 /m rw - cgroup2 cgroup2 rw\n"),
		     "cgroup2", NULL, -EIO, NULL, NULL);
	assert_mount(S("50 31 0:40 / /m\0 rw - cgroup2 cgroup2 rw\n"),
		     "cgroup2", NULL, -EIO, NULL, NULL);
}

static void test_mountinfo_malformed(void **state)
{
	static const char *const bad[] = {
		"x 31 0:38 / /u rw - cgroup2 cgroup2 rw",
		"41 -1 0:38 / /u rw - cgroup2 cgroup2 rw",
		"41 31 0-38 / /u rw - cgroup2 cgroup2 rw",
		"41 31 0: / /u rw - cgroup2 cgroup2 rw",
		"41 31 :38 / /u rw - cgroup2 cgroup2 rw",
		"41 31 0:38:1 / /u rw - cgroup2 cgroup2 rw",
		"41 31 0:38  /u rw - cgroup2 cgroup2 rw",	/* empty root */
		"41 31 0:38 / u rw - cgroup2 cgroup2 rw",	/* relative */
		"41 31 0:38 /  rw - cgroup2 cgroup2 rw",	/* empty mnt */
		"41 31 0:38 / /u rw - cgroup2 cgroup2",		/* truncated */
		"41 31 0:38 / /u rw - cgroup2",
		"41  0:38 / /u rw - cgroup2 cgroup2 rw",	/* no parent */
	};
	char buf[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int n = snprintf(buf, sizeof(buf), "%s\n", bad[i]);

		print_message("  bad line: %s\n", bad[i]);
		assert_mount(buf, (size_t)n, "cgroup2", NULL, -EIO, NULL, NULL);
		/* Broken lines of another type do not matter. */
		assert_mount(buf, (size_t)n, "cgroup", NULL, -ENOENT, NULL,
			     NULL);
	}
	/* A broken cgroup line without the controller does not matter. */
	assert_mount(S("x 31 0:38 / /u rw - cgroup cgroup rw,cpu\n"
		       "35 31 0:32 / /m rw - cgroup cgroup rw,memory\n"),
		     "cgroup", "memory", 0, "/m", "/");
	/* Truncated before the super options: cannot tell, so -EIO. */
	assert_mount(S("35 31 0:32 / /m rw - cgroup cgroup\n"),
		     "cgroup", "memory", -EIO, NULL, NULL);
}

static void test_mountinfo_toolong(void **state)
{
	static const char line[] = "41 31 0:38 /rootdir /mnt rw - cgroup2 cgroup2 rw\n";
	char m[16], r[16];

	(void)state;
	/* "/mnt" needs 5 bytes, "/rootdir" 9. */
	memset(m, 'x', sizeof(m));
	memset(r, 'x', sizeof(r));
	assert_int_equal(mn__parse_mountinfo(S(line), "cgroup2", NULL, m, 5,
					     r, 9), 0);
	assert_string_equal(m, "/mnt");
	assert_string_equal(r, "/rootdir");

	memset(m, 'x', sizeof(m));
	memset(r, 'x', sizeof(r));
	assert_int_equal(mn__parse_mountinfo(S(line), "cgroup2", NULL, m, 4,
					     r, 9), -ENAMETOOLONG);
	assert_int_equal(m[0], '\0');
	assert_int_equal(r[0], '\0');
	assert_int_equal(m[4], 'x');
	assert_int_equal(r[9], 'x');

	memset(m, 'x', sizeof(m));
	memset(r, 'x', sizeof(r));
	assert_int_equal(mn__parse_mountinfo(S(line), "cgroup2", NULL, m, 5,
					     r, 8), -ENAMETOOLONG);
	assert_int_equal(m[0], '\0');
	assert_int_equal(r[0], '\0');
	assert_int_equal(m[5], 'x');
	assert_int_equal(r[8], 'x');

	/* Escapes count once decoded: "/a b" fits in 5. */
	assert_int_equal(mn__parse_mountinfo(S("1 2 3:4 / /a\\040b rw - cgroup2 x rw\n"),
					     "cgroup2", NULL, m, 5, r, 2), 0);
	assert_string_equal(m, "/a b");
	assert_string_equal(r, "/");

	/* Zero lengths: nothing written. */
	memset(m, 'x', sizeof(m));
	memset(r, 'x', sizeof(r));
	assert_int_equal(mn__parse_mountinfo(S(line), "cgroup2", NULL, m, 0,
					     r, 0), -ENAMETOOLONG);
	assert_int_equal(m[0], 'x');
	assert_int_equal(r[0], 'x');

	/* -EIO in one field wins over -ENAMETOOLONG in the other. */
	assert_int_equal(mn__parse_mountinfo(S("1 2 3:4 /\\000 /mnt rw - cgroup2 x rw\n"),
					     "cgroup2", NULL, m, 2, r, 16), -EIO);
	assert_int_equal(mn__parse_mountinfo(S("1 2 3:4 /r /m\\000 rw - cgroup2 x rw\n"),
					     "cgroup2", NULL, m, 16, r, 1), -EIO);
}

/* ------------------------------------------------------------------------
 * cgroup.controllers
 * ------------------------------------------------------------------------ */

static void test_controllers(void **state)
{
	(void)state;
	assert_int_equal(mn__controllers_has(C(controllers_real), "hugetlb"), 1);
	assert_int_equal(mn__controllers_has(C(controllers_real), "memory"), 0);
	assert_int_equal(mn__controllers_has(C(controllers_real), "huge"), 0);
	assert_int_equal(mn__controllers_has(C(controllers_real), "hugetlb\n"), 0);

	assert_int_equal(mn__controllers_has(C(controllers_v2), "cpuset"), 1);
	assert_int_equal(mn__controllers_has(C(controllers_v2), "cpu"), 1);
	assert_int_equal(mn__controllers_has(C(controllers_v2), "memory"), 1);
	assert_int_equal(mn__controllers_has(C(controllers_v2), "misc"), 1);
	assert_int_equal(mn__controllers_has(C(controllers_v2), "mem"), 0);
	assert_int_equal(mn__controllers_has(C(controllers_v2), "memoryx"), 0);
	assert_int_equal(mn__controllers_has(C(controllers_v2), "cpu io"), 0);
	assert_int_equal(mn__controllers_has(C(controllers_v2), "perf_event"), 0);
	assert_int_equal(mn__controllers_has(C(controllers_v2), ""), 0);

	assert_int_equal(mn__controllers_has(S("cpu memory"), "memory"), 1);
	assert_int_equal(mn__controllers_has(S("cpu memor"), "memory"), 0);
	assert_int_equal(mn__controllers_has(S("  cpu\t\tmemory  \n\n"), "memory"), 1);
	assert_int_equal(mn__controllers_has(S("memory_foo"), "memory"), 0);
	assert_int_equal(mn__controllers_has(S("xmemory"), "memory"), 0);
	assert_int_equal(mn__controllers_has(S("mem\0ory memory\n"), "memory"), 1);
	assert_int_equal(mn__controllers_has(S("memory\0\n"), "memory"), 0);
	assert_int_equal(mn__controllers_has(S(""), "memory"), 0);
	assert_int_equal(mn__controllers_has(S("\n"), "memory"), 0);
	assert_int_equal(mn__controllers_has(NULL, 0, "memory"), 0);
	/* Only @len bytes count. */
	assert_int_equal(mn__controllers_has("memory", 3, "memory"), 0);
	assert_int_equal(mn__controllers_has("memory", 3, "mem"), 1);
}

/* ------------------------------------------------------------------------
 * Bounds: parse every prefix of every sample from an exact-size copy, so
 * that a sanitizer build catches any read past @len.
 * ------------------------------------------------------------------------ */

static void test_all_prefixes(void **state)
{
	const char *const samples[] = {
		meminfo_real, meminfo_hwcorrupt, meminfo_old, psi_memory_real,
		psi_io_real, psi_busy, psi_cpu_old, proc_cgroup_real,
		proc_cgroup_hybrid, proc_cgroup_v2, mountinfo_real,
		mountinfo_v2_host, mountinfo_v1_host, mountinfo_docker,
		stat_v1_real, stat_v2, events_v2, controllers_real,
		controllers_v2,
	};
	static char copy[8192];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		size_t len = strlen(samples[i]);

		assert_true(len <= sizeof(copy));
		for (n = 0; n <= len; n++) {
			/* Right-aligned: byte n of the copy is past the end. */
			char *p = copy + sizeof(copy) - n;
			struct mn__meminfo mi;
			struct mn__psi psi;
			char a[64], b[64];
			uint64_t v;
			int ret;

			memcpy(p, samples[i], n);
			ret = mn__parse_meminfo(p, n, &mi);
			assert_true(ret == 0 || ret == -ENOENT || ret == -EIO);
			ret = mn__parse_psi(p, n, &psi);
			assert_true(ret == 0 || ret == -ENOENT || ret == -EIO);
			ret = mn__parse_cgroup_value(p, n, &v);
			assert_true(ret == 0 || ret == -EIO);
			ret = mn__parse_keyed(p, n, "inactive_file", &v);
			assert_true(ret == 0 || ret == -ENOENT || ret == -EIO);
			ret = mn__parse_proc_cgroup_v1(p, n, "memory", a,
						       sizeof(a));
			assert_true(ret == 0 || ret == -ENOENT ||
				    ret == -EIO || ret == -ENAMETOOLONG);
			ret = mn__parse_proc_cgroup_v2(p, n, a, sizeof(a));
			assert_true(ret == 0 || ret == -ENOENT ||
				    ret == -EIO || ret == -ENAMETOOLONG);
			ret = mn__parse_mountinfo(p, n, "cgroup", "memory", a,
						  sizeof(a), b, sizeof(b));
			assert_true(ret == 0 || ret == -ENOENT ||
				    ret == -EIO || ret == -ENAMETOOLONG);
			ret = mn__controllers_has(p, n, "memory");
			assert_true(ret == 0 || ret == 1);
		}
	}
}

/* ------------------------------------------------------------------------
 * The live files of this machine
 * ------------------------------------------------------------------------ */

static char live[1 << 20];

/* Read all of @path into live[]: its length, or -errno. */
static ssize_t read_live(const char *path)
{
	size_t len = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, live + len, sizeof(live) - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;

			close(fd);
			return -err;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == sizeof(live)) {
			close(fd);
			return -EFBIG;
		}
	}
	close(fd);
	return (ssize_t)len;
}

/* read_live(), or skip() the test when the file is missing. */
static size_t read_live_or_skip(const char *path)
{
	ssize_t n = read_live(path);

	if (n == -ENOENT || n == -EOPNOTSUPP || n == -EACCES) {
		print_message("  skipping: %s: %s\n", path, strerror((int)-n));
		skip();
	}
	if (n < 0)
		fail_msg("%s: %s", path, strerror((int)-n));
	return (size_t)n;
}

static void test_live_meminfo(void **state)
{
	struct mn__meminfo mi;
	size_t n;

	(void)state;
	n = read_live_or_skip("/proc/meminfo");
	assert_int_equal(mn__parse_meminfo(live, n, &mi), 0);
	assert_true(mi.total_bytes > 0);
	assert_true(mi.free_bytes <= mi.total_bytes);
	if (mi.has_available)
		assert_true(mi.available_bytes <= mi.total_bytes);
	print_message("  MemTotal %llu, MemFree %llu, MemAvailable %llu%s\n",
		      (unsigned long long)mi.total_bytes,
		      (unsigned long long)mi.free_bytes,
		      (unsigned long long)mi.available_bytes,
		      mi.has_available ? "" : " (absent)");
}

static void assert_psi_sane(const struct mn__psi *p)
{
	assert_true(p->some_avg10 >= 0.0 && p->some_avg10 <= 100.0);
	assert_true(p->some_avg60 >= 0.0 && p->some_avg60 <= 100.0);
	assert_true(p->some_avg300 >= 0.0 && p->some_avg300 <= 100.0);
	assert_true(p->full_avg10 >= 0.0 && p->full_avg10 <= p->some_avg10 + 1e-9);
	assert_true(p->full_avg60 >= 0.0 && p->full_avg60 <= p->some_avg60 + 1e-9);
	assert_true(p->full_avg300 >= 0.0 &&
		    p->full_avg300 <= p->some_avg300 + 1e-9);
	assert_true(p->full_total_us <= p->some_total_us);
}

static void test_live_psi(void **state)
{
	struct mn__psi p;
	size_t n;

	(void)state;
	n = read_live_or_skip("/proc/pressure/memory");
	assert_int_equal(mn__parse_psi(live, n, &p), 0);
	/* The memory file has always had a "full" line. */
	assert_int_equal(p.has_full, 1);
	assert_psi_sane(&p);
	print_message("  memory some avg10 %.2f total %llu us\n", p.some_avg10,
		      (unsigned long long)p.some_total_us);
}

static void test_live_proc_cgroup(void **state)
{
	char v1[4096], v2[4096];
	int r1, r2;
	size_t n;

	(void)state;
	n = read_live_or_skip("/proc/self/cgroup");
	live[n] = '\0';
	r1 = mn__parse_proc_cgroup_v1(live, n, "memory", v1, sizeof(v1));
	r2 = mn__parse_proc_cgroup_v2(live, n, v2, sizeof(v2));
	print_message("  v1 memory: %d %s, v2: %d %s\n", r1, v1, r2, v2);
	assert_true(r1 == 0 || r1 == -ENOENT);
	assert_true(r2 == 0 || r2 == -ENOENT);
	assert_true(r1 == 0 || r2 == 0);
	/* Independent check with the C library on a terminated copy. */
	if (strstr(live, ":memory:") || strstr(live, ",memory:") ||
	    strstr(live, ":memory,") || strstr(live, ",memory,"))
		assert_int_equal(r1, 0);
	if (!strncmp(live, "0::", 3) || strstr(live, "\n0::"))
		assert_int_equal(r2, 0);
	if (!r1)
		assert_int_equal(v1[0], '/');
	if (!r2)
		assert_int_equal(v2[0], '/');
}

/* What a plain strtok()/strstr() reading of mountinfo says is mounted. */
static void scan_mounts(char *text, int *has_v1_memory, int *has_v2)
{
	char *save = NULL, *line;

	*has_v1_memory = *has_v2 = 0;
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *sep = strstr(line, " - ");
		char *opts, *w, *save2 = NULL;

		if (!sep)
			continue;
		if (!strncmp(sep, " - cgroup2 ", 11)) {
			*has_v2 = 1;
			continue;
		}
		if (strncmp(sep, " - cgroup ", 10))
			continue;
		opts = strrchr(line, ' ') + 1;
		for (w = strtok_r(opts, ",", &save2); w;
		     w = strtok_r(NULL, ",", &save2))
			if (!strcmp(w, "memory"))
				*has_v1_memory = 1;
	}
}

/* A mount point is a directory, unless something was mounted over it. */
static void assert_is_dir(const char *path)
{
	struct stat st;

	print_message("  %s\n", path);
	if (stat(path, &st)) {
		print_message("  (%s: %s; over-mounted?)\n", path,
			      strerror(errno));
		return;
	}
	assert_true(S_ISDIR(st.st_mode));
}

static void test_live_mountinfo(void **state)
{
	char mnt[4096], root[4096];
	int v1, v2, ret;
	size_t n;

	(void)state;
	n = read_live_or_skip("/proc/self/mountinfo");
	live[n] = '\0';

	ret = mn__parse_mountinfo(live, n, "cgroup", "memory", mnt,
				  sizeof(mnt), root, sizeof(root));
	assert_true(ret == 0 || ret == -ENOENT);
	if (!ret) {
		assert_is_dir(mnt);
		assert_int_equal(root[0], '/');
	}
	v1 = !ret;
	ret = mn__parse_mountinfo(live, n, "cgroup2", NULL, mnt, sizeof(mnt),
				  root, sizeof(root));
	assert_true(ret == 0 || ret == -ENOENT);
	if (!ret) {
		assert_is_dir(mnt);
		assert_int_equal(root[0], '/');
	}
	v2 = !ret;

	{
		int want_v1, want_v2;

		scan_mounts(live, &want_v1, &want_v2);
		assert_int_equal(v1, want_v1);
		assert_int_equal(v2, want_v2);
		if (!want_v1 && !want_v2) {
			print_message("  skipping: no cgroup memory or cgroup2 mount\n");
			skip();
		}
	}
}

/*
 * Find the directory of this process's cgroup in the hierarchy mounted per
 * mountinfo (@fstype, @opt) and named in /proc/self/cgroup: "" if unknown.
 */
static void live_cgroup_dir(int v2, char *dir, size_t dirlen)
{
	char mnt[2048], root[2048], path[2048];
	size_t n, rl;
	ssize_t r;
	int ret;

	dir[0] = '\0';
	r = read_live("/proc/self/mountinfo");
	if (r < 0)
		return;
	ret = mn__parse_mountinfo(live, (size_t)r, v2 ? "cgroup2" : "cgroup",
				  v2 ? NULL : "memory", mnt, sizeof(mnt),
				  root, sizeof(root));
	if (ret)
		return;
	r = read_live("/proc/self/cgroup");
	if (r < 0)
		return;
	n = (size_t)r;
	ret = v2 ? mn__parse_proc_cgroup_v2(live, n, path, sizeof(path)) :
		   mn__parse_proc_cgroup_v1(live, n, "memory", path,
					    sizeof(path));
	if (ret)
		return;
	/* The mount shows the hierarchy from @root down. */
	rl = strlen(root);
	if (!strcmp(root, "/") && strcmp(path, "/"))
		snprintf(dir, dirlen, "%s%s", mnt, path);
	else if (rl > 1 && !strncmp(path, root, rl) && path[rl] == '/')
		snprintf(dir, dirlen, "%s%s", mnt, path + rl);
	else
		snprintf(dir, dirlen, "%s", mnt);
	if (access(dir, F_OK))
		snprintf(dir, dirlen, "%s", mnt);
}

/* Parse @dir/@file if it exists: 1 if it was there. */
static int live_file(const char *dir, const char *file, size_t *len)
{
	char path[4200];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	n = read_live(path);
	if (n < 0) {
		print_message("  not checked: %s: %s\n", path,
			      strerror((int)-n));
		return 0;
	}
	print_message("  checking %s\n", path);
	*len = (size_t)n;
	return 1;
}

static void test_live_cgroup_files(void **state)
{
	char dir[4096];
	int checked = 0;
	uint64_t v, w;
	size_t n;

	(void)state;
	live_cgroup_dir(0, dir, sizeof(dir));
	if (dir[0]) {
		if (live_file(dir, "memory.stat", &n)) {
			assert_int_equal(mn__parse_keyed(live, n, "cache", &v), 0);
			assert_int_equal(mn__parse_keyed(live, n, "inactive_file",
							 &v), 0);
			assert_int_equal(mn__parse_keyed(live, n,
							 "total_inactive_file",
							 &w), 0);
			assert_true(v <= w);
			assert_int_equal(mn__parse_keyed(live, n, "inactive_fil",
							 &v), -ENOENT);
			checked++;
		}
		if (live_file(dir, "memory.limit_in_bytes", &n)) {
			assert_int_equal(mn__parse_cgroup_value(live, n, &v), 0);
			checked++;
		}
		if (live_file(dir, "memory.usage_in_bytes", &n)) {
			assert_int_equal(mn__parse_cgroup_value(live, n, &v), 0);
			assert_true(v != MN__UNLIMITED);
			checked++;
		}
	} else {
		print_message("  no cgroup v1 memory hierarchy\n");
	}

	live_cgroup_dir(1, dir, sizeof(dir));
	if (dir[0]) {
		if (live_file(dir, "cgroup.controllers", &n)) {
			char words[4096], *w1, *save = NULL;
			int has_memory;

			assert_true(n < sizeof(words));
			memcpy(words, live, n);
			words[n] = '\0';
			has_memory = mn__controllers_has(live, n, "memory");
			assert_int_equal(has_memory,
					 strstr(words, "memory") != NULL);
			assert_int_equal(mn__controllers_has(live, n,
							     "no_such_ctl"), 0);
			for (w1 = strtok_r(words, " \n", &save); w1;
			     w1 = strtok_r(NULL, " \n", &save))
				assert_int_equal(mn__controllers_has(live, n, w1),
						 1);
			checked++;
		}
		if (live_file(dir, "memory.pressure", &n)) {
			struct mn__psi p;

			assert_int_equal(mn__parse_psi(live, n, &p), 0);
			assert_int_equal(p.has_full, 1);
			assert_psi_sane(&p);
			checked++;
		}
		if (live_file(dir, "memory.current", &n)) {
			assert_int_equal(mn__parse_cgroup_value(live, n, &v), 0);
			checked++;
		}
		if (live_file(dir, "memory.max", &n)) {
			assert_int_equal(mn__parse_cgroup_value(live, n, &v), 0);
			checked++;
		}
		if (live_file(dir, "memory.events", &n)) {
			assert_int_equal(mn__parse_keyed(live, n, "oom_kill", &v),
					 0);
			checked++;
		}
		if (live_file(dir, "memory.stat", &n)) {
			assert_int_equal(mn__parse_keyed(live, n, "inactive_file",
							 &v), 0);
			checked++;
		}
	} else {
		print_message("  no cgroup v2 hierarchy\n");
	}
	if (!checked) {
		print_message("  skipping: no cgroup memory files to read\n");
		skip();
	}
}

int main(void)
{
	if (load_corpus())
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_meminfo_real),
		cmocka_unit_test(test_meminfo_no_available),
		cmocka_unit_test(test_meminfo_layout),
		cmocka_unit_test(test_meminfo_missing),
		cmocka_unit_test(test_meminfo_malformed),
		cmocka_unit_test(test_meminfo_overflow),
		cmocka_unit_test(test_psi_real),
		cmocka_unit_test(test_psi_no_full),
		cmocka_unit_test(test_psi_layout),
		cmocka_unit_test(test_psi_missing),
		cmocka_unit_test(test_psi_malformed),
		cmocka_unit_test(test_psi_overflow),
		cmocka_unit_test(test_cgroup_value),
		cmocka_unit_test(test_cgroup_value_malformed),
		cmocka_unit_test(test_keyed_real),
		cmocka_unit_test(test_keyed_prefix),
		cmocka_unit_test(test_keyed_layout),
		cmocka_unit_test(test_keyed_malformed),
		cmocka_unit_test(test_keyed_overflow),
		cmocka_unit_test(test_proc_cgroup_real),
		cmocka_unit_test(test_proc_cgroup_words),
		cmocka_unit_test(test_proc_cgroup_malformed),
		cmocka_unit_test(test_proc_cgroup_toolong),
		cmocka_unit_test(test_mountinfo_real),
		cmocka_unit_test(test_mountinfo_fields),
		cmocka_unit_test(test_mountinfo_escapes),
		cmocka_unit_test(test_mountinfo_malformed),
		cmocka_unit_test(test_mountinfo_toolong),
		cmocka_unit_test(test_controllers),
		cmocka_unit_test(test_all_prefixes),
		cmocka_unit_test(test_live_meminfo),
		cmocka_unit_test(test_live_psi),
		cmocka_unit_test(test_live_proc_cgroup),
		cmocka_unit_test(test_live_mountinfo),
		cmocka_unit_test(test_live_cgroup_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
