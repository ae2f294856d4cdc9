/* SPDX-License-Identifier: MIT */
/*
 * mn_page_query() on real memory of this process: resident and not,
 * protection, exclusive and shared pages, an image page, an mlock()ed
 * mapping, a hole, a bad page (a real SIGBUS BUS_MCEERR_AO), the caller's
 * stride, and every argument error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "memnotify.h"

static size_t pg;

/* VmLck of /proc/self/status, in KiB; -1 if unreadable. */
static long vm_locked_kb(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	long kb = -1;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static struct mn_page_info info_of(const void *p)
{
	struct mn_page_info i = MN_OPTS_INIT(mn_page_info);
	assert_int_equal(mn_page_query(p, 1, 0, &i, 1), 1);
	return i;
}

static void test_arguments(void **state)
{
	struct mn_page_info i = MN_OPTS_INIT(mn_page_info);
	(void)state;
	assert_int_equal(mn_page_query(&i, 0, 0, &i, 1), -EINVAL);
	assert_int_equal(mn_page_query((void *)(UINTPTR_MAX - 10), 100, 0, &i, 1),
			 -EINVAL);
	assert_int_equal(mn_page_query(&i, 1, 1, &i, 1), -EINVAL);
	assert_int_equal(mn_page_query(&i, 1, 0, NULL, 1), -EINVAL);
	assert_int_equal(mn_page_query(&i, 1, 0, &i, 0), -EINVAL);
	i.sz = sizeof(i) - 1;
	assert_int_equal(mn_page_query(&i, 1, 0, &i, 1), -EINVAL);
	i.sz = 0;
	assert_int_equal(mn_page_query(&i, 1, 0, &i, 1), -EINVAL);
}

/* Four private pages: 0 written, 1 never touched, 2 written then
   PROT_NONE, 3 unmapped (a hole). */
static void test_private_pages(void **state)
{
	char *p = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct mn_page_info out[4];
	(void)state;
	assert_true(p != MAP_FAILED);
	p[0] = 1;
	p[2 * pg] = 1;
	assert_int_equal(mprotect(p + 2 * pg, pg, PROT_NONE), 0);
	assert_int_equal(munmap(p + 3 * pg, pg), 0);
	out[0].sz = sizeof(out[0]);
	/* An unaligned start and length: widened to whole pages. */
	assert_int_equal(mn_page_query(p + 5, 4 * pg - 10, 0, out, 4), 4);
	for (int k = 0; k < 4; k++) {
		assert_int_equal(out[k].addr, (uintptr_t)(p + k * pg));
		assert_int_equal(out[k].sz, sizeof(out[0]));
	}
	unsigned int must = MN_PAGE_MAPPED | MN_PAGE_RESIDENT | MN_PAGE_EXCLUSIVE;
	assert_int_equal(out[0].flags & must, must);
	assert_int_equal(out[0].flags & (MN_PAGE_SHARED | MN_PAGE_IMAGE |
					 MN_PAGE_FILE | MN_PAGE_BAD), 0);
	assert_int_equal(out[0].prot, PROT_READ | PROT_WRITE);
	assert_int_equal(out[0].share_count, 1);
	assert_true(out[0].node >= 0); /* get_mempolicy answers on Linux */

	assert_int_equal(out[1].flags, MN_PAGE_MAPPED);
	assert_int_equal(out[1].prot, PROT_READ | PROT_WRITE);
	assert_int_equal(out[1].share_count, 0);
	assert_int_equal(out[1].node, -1);

	assert_true(out[2].flags & MN_PAGE_RESIDENT);
	assert_int_equal(out[2].prot, PROT_NONE);

	assert_int_equal(out[3].flags, 0);
	assert_int_equal(out[3].prot, 0);

	/* @n bounds the answer. */
	assert_int_equal(mn_page_query(p, 4 * pg, 0, out, 2), 2);
	munmap(p, 3 * pg);
}

static void test_shared_image_locked(void **state)
{
	char *s = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		       -1, 0);
	char *l = mmap(NULL, pg, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	(void)state;
	assert_true(s != MAP_FAILED && l != MAP_FAILED);
	s[0] = 1;
	struct mn_page_info i = info_of(s);
	assert_true(i.flags & MN_PAGE_SHARED);
	assert_true(i.flags & MN_PAGE_FILE); /* shared anonymous: shmem */
	assert_true(i.share_count >= 1);

	/* The C library's code: an image page, shared until written. */
	i = info_of((const void *)(uintptr_t)&strlen);
	assert_true(i.flags & MN_PAGE_IMAGE);
	assert_true(i.flags & MN_PAGE_SHARED);
	assert_true(i.prot & PROT_EXEC);

	/* Under ASan, mlock() is the sanitizer's no-op: trust only the
	   kernel's own count of locked memory (VmLck). */
	long lck0 = vm_locked_kb();
	if (mlock(l, pg) == 0 && vm_locked_kb() > lck0) {
		i = info_of(l);
		assert_true(i.flags & MN_PAGE_LOCKED);
		assert_true(i.flags & MN_PAGE_RESIDENT);
		munlock(l, pg);
	} else {
		print_message("mlock refused or not done (%s): LOCKED not "
			      "checked\n", strerror(errno));
		munlock(l, pg);
	}
	assert_false(info_of(l).flags & MN_PAGE_LOCKED);
	munmap(s, pg);
	munmap(l, pg);
}

/* A caller whose struct is larger (a newer header): its stride is kept and
   the bytes past this release's struct are left alone. */
static void test_stride_of_a_newer_caller(void **state)
{
	struct newer {
		struct mn_page_info i;
		uint64_t future[3];
	} out[2];
	char *p = mmap(NULL, 2 * pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	(void)state;
	assert_true(p != MAP_FAILED);
	memset(out, 0xab, sizeof(out));
	out[0].i.sz = sizeof(out[0]);
	assert_int_equal(mn_page_query(p, 2 * pg, 0, &out[0].i, 2), 2);
	assert_int_equal(out[1].i.addr, (uintptr_t)(p + pg));
	assert_int_equal(out[1].i.sz, sizeof(out[0]));
	assert_int_equal(out[1].i.flags, MN_PAGE_MAPPED);
	assert_int_equal(out[1].future[2], 0xababababababababull);
	munmap(p, 2 * pg);
}

static void on_bad(const struct mn_badmem_event *ev, void *ctx)
{
	if (ev->kind != MN_BADMEM_PAGE)
		return;
	mn_test_rec_lock(ctx);
	mn_test_rec_done(ctx);
}

/* A real SIGBUS (BUS_MCEERR_AO) for the first of two pages: that page
   reads bad, its neighbour does not. */
static void test_bad_page(void **state)
{
	char *p = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	MN_OPTS(mn_badmem_opts, o, .flags = MN_BADMEM_NO_SYSTEM);
	struct mn_test_rec rec;
	mn_sub *sub;
	(void)state;
	assert_true(p != MAP_FAILED);
	memset(p, 1, 2 * pg);
	assert_false(info_of(p).flags & MN_PAGE_BAD);
	mn_test_rec_init(&rec);
	assert_int_equal(mn_badmem_subscribe(&o, on_bad, &rec, &sub), 0);
	assert_int_equal(mn_badmem_inject(0, p, 0, 0), 0);
	assert_true(mn_test_rec_wait(&rec, 1, 5000));
	assert_true(info_of(p).flags & MN_PAGE_BAD);
	assert_false(info_of(p + pg).flags & MN_PAGE_BAD);
	mn_unsubscribe(sub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arguments),
		cmocka_unit_test(test_private_pages),
		cmocka_unit_test(test_shared_image_locked),
		cmocka_unit_test(test_stride_of_a_newer_caller),
		cmocka_unit_test(test_bad_page),
	};
	pg = (size_t)sysconf(_SC_PAGESIZE);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
