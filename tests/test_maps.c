/* SPDX-License-Identifier: MIT */
/*
 * Tests for src/core/maps.c: the strict line parser on good and malformed
 * lines, and mn__maps_lookup() on this process's real mappings, including
 * a file whose very long path forges a mapping line that must not be
 * believed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"

/* A string literal as (buffer, length). */
#define S(lit) (lit), (sizeof(lit) - 1)

/*
 * Every lookup here runs both ways — the kernel's PROCMAP_QUERY where it
 * exists and the text reader — and the two must agree, so the reader's
 * defences are tested on kernels that have the ioctl too.
 */
static int both_lookups(uintptr_t addr, uintptr_t *s, uintptr_t *e, int *prot)
{
	uintptr_t s2 = 0, e2 = 0;
	int p2 = 0;
	int r1 = mn__maps_lookup_how(addr, s, e, prot, true);
	int r2 = (s && e && prot) ? mn__maps_lookup_how(addr, &s2, &e2, &p2, false)
				  : mn__maps_lookup_how(addr, s, e, prot, false);

	assert_int_equal(r1, r2);
	if (r1 == 0 && s && e && prot) {
		assert_int_equal(*s, s2);
		assert_int_equal(*e, e2);
		assert_int_equal(*prot, p2);
	}
	return r1;
}
#define mn__maps_lookup both_lookups

static int parse(const char *s, size_t len, uintptr_t *lo, uintptr_t *hi,
		 int *prot)
{
	return mn__maps_parse_line(s, len, lo, hi, prot);
}

static void test_parse_good(void **state)
{
	static const struct {
		const char *line;
		uintptr_t lo, hi;
		int prot;
	} good[] = {
		{ "55d0c8a00000-55d0c8a28000 r--p 00000000 08:01 1835059"
		  "                    /usr/bin/cat",
		  0x55d0c8a00000, 0x55d0c8a28000, PROT_READ },
		{ "7f3a1c000000-7f3a1c021000 rw-p 00000000 00:00 0 ",
		  0x7f3a1c000000, 0x7f3a1c021000, PROT_READ | PROT_WRITE },
		{ "7f3a1c000000-7f3a1c021000 rw-p 00000000 00:00 0",
		  0x7f3a1c000000, 0x7f3a1c021000, PROT_READ | PROT_WRITE },
		{ "7ffc9e5f1000-7ffc9e5f3000 r-xp 00000000 00:00 0"
		  "                          [vdso]",
		  0x7ffc9e5f1000, 0x7ffc9e5f3000, PROT_READ | PROT_EXEC },
		{ "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0"
		  "                  [vsyscall]",
		  0xffffffffff600000, 0xffffffffff601000, PROT_EXEC },
		{ "7f00-8000 ---s 0001a000 103:0a 4294967296 /dev/shm/x (deleted)",
		  0x7f00, 0x8000, 0 },
		{ "7F00-8aB0 rwxs 0 0:0 0 /a b c", 0x7f00, 0x8ab0,
		  PROT_READ | PROT_WRITE | PROT_EXEC },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		uintptr_t lo = 0, hi = 0;
		int prot = -1;

		assert_int_equal(parse(good[i].line, strlen(good[i].line), &lo,
				       &hi, &prot),
				 0);
		assert_true(lo == good[i].lo);
		assert_true(hi == good[i].hi);
		assert_int_equal(prot, good[i].prot);
	}
}

static void test_parse_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"-",
		"7f00-",
		"7f00-8000",
		"7f00-8000 ",
		"7f00-8000 rw-p",
		"7f00-8000 rw-p ",
		"7f00-8000 rw-p 0",
		"7f00-8000 rw-p 0 00",
		"7f00-8000 rw-p 0 00:",
		"7f00-8000 rw-p 0 00:00",
		"7f00-8000 rw-p 0 00:00 ",
		"7f00-8000 rw-p 0 00:00 x",
		"7f00-8000 rw-p 0 00:00 0x",
		"7f00-8000 rw-p 0 00:00 0\t/x",
		"-8000 rw-p 0 00:00 0",
		"7f00- rw-p 0 00:00 0",
		" 7f00-8000 rw-p 0 00:00 0",
		"7f00 -8000 rw-p 0 00:00 0",
		"7f00- 8000 rw-p 0 00:00 0",
		"7f00-8000  rw-p 0 00:00 0",
		"7f00_8000 rw-p 0 00:00 0",
		"0x7f00-8000 rw-p 0 00:00 0",
		"7g00-8000 rw-p 0 00:00 0",
		"7f00-8z00 rw-p 0 00:00 0",
		"/a/b 7f00-8000 rw-p 0 00:00 0",
		"8000-7f00 rw-p 0 00:00 0",     /* lo > hi */
		"8000-8000 rw-p 0 00:00 0",     /* empty */
		"7f00-8000 RW-P 0 00:00 0",
		"7f00-8000 rw-x 0 00:00 0",
		"7f00-8000 rwp 0 00:00 0",
		"7f00-8000 rw-pp 0 00:00 0",
		"7f00-8000 wr-p 0 00:00 0",
		"7f00-8000 r-wp 0 00:00 0",
		"7f00-8000 r?-p 0 00:00 0",
		"7f00-8000 rw-p g 00:00 0",
		"7f00-8000 rw-p 0 0000 0",
		"7f00-8000 rw-p 0 00:0g 0",
		"7f00-8000 rw-p 0 :00 0",
		"7f00-8000 rw-p 0 00:00 1a",
		/* overflow of a 64-bit address */
		"10000000000000000-10000000000001000 rw-p 0 00:00 0",
		"0-10000000000000000 rw-p 0 00:00 0",
		"0-1 rw-p 0 00:00 99999999999999999999",
	};
	uintptr_t lo = 1, hi = 2;
	int prot = 3;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i], strlen(bad[i]), &lo, &hi, &prot) != -EINVAL)
			fail_msg("accepted: '%s'", bad[i]);
		/* Failure leaves the outputs alone. */
		assert_true(lo == 1 && hi == 2 && prot == 3);
	}
	/* Embedded NUL and a length shorter than the text. */
	assert_int_equal(parse(S("7f00-8000 rw-p 0 00:00\0 0"), &lo, &hi, &prot),
			 -EINVAL);
	assert_int_equal(parse(S("7f00-8000 rw-p 0 00:00 0 /x"), &lo, &hi,
			       &prot),
			 0);
	assert_int_equal(parse("7f00-8000 rw-p 0 00:00 0 /x", 12, &lo, &hi,
			       &prot),
			 -EINVAL);
	/* Arguments. */
	assert_int_equal(parse(NULL, 0, &lo, &hi, &prot), -EINVAL);
	assert_int_equal(parse(S("7f00-8000 rw-p 0 00:00 0"), NULL, &hi, &prot),
			 -EINVAL);
	assert_int_equal(parse(S("7f00-8000 rw-p 0 00:00 0"), &lo, NULL, &prot),
			 -EINVAL);
	assert_int_equal(parse(S("7f00-8000 rw-p 0 00:00 0"), &lo, &hi, NULL),
			 -EINVAL);
}

/* Real mappings: a stack variable, this function's code, a fresh mapping. */
static void test_lookup_real(void **state)
{
	uintptr_t s, e;
	int prot, local = 0;
	long page = sysconf(_SC_PAGESIZE);
	char *m;

	(void)state;
	assert_int_equal(mn__maps_lookup((uintptr_t)&local, &s, &e, &prot), 0);
	assert_true(s <= (uintptr_t)&local && (uintptr_t)&local < e);
	assert_int_equal(prot & (PROT_READ | PROT_WRITE), PROT_READ | PROT_WRITE);

	assert_int_equal(mn__maps_lookup((uintptr_t)test_lookup_real, &s, &e,
					 &prot),
			 0);
	assert_true(prot & PROT_EXEC);

	m = mmap(NULL, 3 * page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(m != MAP_FAILED);
	assert_int_equal(mprotect(m + page, page, PROT_READ | PROT_WRITE), 0);
	assert_int_equal(mn__maps_lookup((uintptr_t)m + page + 5, &s, &e, &prot),
			 0);
	assert_true(s == (uintptr_t)m + page && e == (uintptr_t)m + 2 * page);
	assert_int_equal(prot, PROT_READ | PROT_WRITE);
	assert_int_equal(munmap(m, 3 * page), 0);
	assert_int_equal(mn__maps_lookup((uintptr_t)m + page, &s, &e, &prot),
			 -ENOENT);
	assert_int_equal(mn__maps_lookup((uintptr_t)m, NULL, &e, &prot), -EINVAL);
}

/*
 * The forged text: the range of a free region, read-write-execute.  It is
 * repeated to the end of the path, where a reader that restarted parsing at
 * the 4096th byte of the line (the old one) began, and wherever it began in
 * it, it read one of the copies as "lo-hi rwxp".
 */
static char forged[64];
/* The test's directory tree, removed by the teardown even on failure. */
static char tree_base[] = "/tmp/mn_test_maps.XXXXXX";
static char tree_path[PATH_MAX];

static void remove_tree(char *path, size_t base_len)
{
	/* Remove the file (or the deepest directory made so far), then each
	   directory, deepest first. */
	if (unlink(path) < 0)
		rmdir(path);
	for (;;) {
		char *slash = strrchr(path, '/');
		if (!slash || (size_t)(slash - path) <= base_len)
			break;
		*slash = '\0';
		rmdir(path);
	}
}

/* Is the page at @a unmapped? */
static bool unmapped(uintptr_t a, long page)
{
	return msync((void *)a, (size_t)page, MS_ASYNC) < 0 && errno == ENOMEM;
}

static void test_lookup_long_path(void **state)
{
	long page = sysconf(_SC_PAGESIZE);
	char *base = tree_base, *path = tree_path;
	uintptr_t s, e, free_lo;
	size_t len, base_len, name_len, flen;
	char *area, *probe;
	int fd, prot, checked = 0;

	(void)state;
	/* Page 0: the file (below); page 1: none; page 2: read-write (a real
	   mapping whose line comes after the long one). */
	area = mmap(NULL, 3 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(area != MAP_FAILED);
	assert_int_equal(mprotect(area + 2 * page, page, PROT_READ | PROT_WRITE),
			 0);
	/* A free region to forge: map it, then give it back. */
	probe = mmap(NULL, 4 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		     -1, 0);
	assert_true(probe != MAP_FAILED);
	free_lo = (uintptr_t)probe;
	assert_int_equal(munmap(probe, 4 * page), 0);
	snprintf(forged, sizeof(forged), "%016lx-%016lx rwxp ",
		 (unsigned long)free_lo, (unsigned long)(free_lo + 4 * page));
	flen = strlen(forged);

	/* Directories down to a path of PATH_MAX - 1 bytes whose last
	   component, about 240 bytes, ends with copies of the forged text. */
	assert_non_null(mkdtemp(base));
	base_len = strlen(base);
	memcpy(path, base, base_len + 1); /* the teardown's path */
	len = base_len;
	while (PATH_MAX - 1 - len - 1 > 240) {
		size_t n = MN__MIN((size_t)200, PATH_MAX - 1 - len - 1 - 240);
		path[len++] = '/';
		memset(path + len, 'd', n);
		len += n;
		path[len] = '\0';
		assert_int_equal(mkdir(path, 0700), 0);
	}
	path[len++] = '/';
	name_len = PATH_MAX - 1 - len;
	assert_true(name_len <= NAME_MAX);
	for (size_t i = 0; i < name_len; i++) /* right-aligned copies */
		path[len + i] = forged[(flen - name_len % flen + i) % flen];
	len += name_len;
	path[len] = '\0';
	assert_int_equal(len, PATH_MAX - 1);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		fail_msg("cannot create a %zu-byte path: %s", len, strerror(errno));
	assert_int_equal(ftruncate(fd, page), 0);
	assert_true(mmap(area, page, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0) ==
		    area);
	close(fd);

	/* The forged region is not mapped, whatever the path says. */
	for (uintptr_t a = free_lo; a < free_lo + 4 * page; a += (uintptr_t)page) {
		if (!unmapped(a, page))
			continue; /* something else took it meanwhile */
		assert_int_equal(mn__maps_lookup(a + 8, &s, &e, &prot), -ENOENT);
		checked++;
	}
	assert_true(checked > 0);
	/* The long line itself is found from its head. */
	assert_int_equal(mn__maps_lookup((uintptr_t)area, &s, &e, &prot), 0);
	assert_true(s == (uintptr_t)area && e == (uintptr_t)area + page);
	assert_int_equal(prot, PROT_READ);
	/* And the lines after it are still read. */
	assert_int_equal(mn__maps_lookup((uintptr_t)area + 2 * page + 1, &s, &e,
					 &prot),
			 0);
	/* (an anonymous neighbour with the same protection may merge) */
	assert_true(s == (uintptr_t)area + 2 * page &&
		    e >= (uintptr_t)area + 3 * page);
	assert_int_equal(prot, PROT_READ | PROT_WRITE);
	{
		int local;
		assert_int_equal(mn__maps_lookup((uintptr_t)&local, &s, &e,
						 &prot),
				 0);
		assert_true(prot & PROT_WRITE);
	}

	assert_int_equal(munmap(area, 3 * page), 0);
}

static int remove_test_tree(void **state)
{
	(void)state;
	if (tree_path[0])
		remove_tree(tree_path, strlen(tree_base));
	if (strcmp(tree_base + strlen(tree_base) - 6, "XXXXXX"))
		rmdir(tree_base);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_lookup_real),
		cmocka_unit_test_teardown(test_lookup_long_path,
					  remove_test_tree),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
