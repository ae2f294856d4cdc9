/* SPDX-License-Identifier: MIT */
/*
 * The watch index at scale: 40,000 watched ranges one page apart with the
 * userfaultfd safety net on (registering each range alone split its
 * mapping and ran into vm.max_map_count near 32,768), each still told of
 * its own unmap; and a randomized check of the index (B+tree splits,
 * removals, overlapping ranges) against a brute-force list, through real
 * mprotect calls.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "memnotify.h"

#define PG 4096ul

/* --- 40,000 watches ------------------------------------------------------- */

#define MANY 40000
static _Atomic long hit_idx = -1;
static _Atomic int hits, late_hits;

static void many_cb(const struct mn_vm_event *ev, void *ctx)
{
	atomic_store(&hit_idx, (long)(intptr_t)ctx);
	atomic_fetch_add(ev->late ? &late_hits : &hits, 1);
}

static long maps_count(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	long n = 0;
	int c;

	assert_non_null(f);
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static int wait_late(int want, int ms)
{
	for (int i = 0; i < ms && atomic_load(&late_hits) < want; i++) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return atomic_load(&late_hits) >= want;
}

static void test_many_watches_keep_mappings(void **state)
{
	struct mn_capability cap = { .sz = sizeof(cap) };
	char *base = mmap(NULL, 2 * MANY * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	mn_sub **subs = calloc(MANY, sizeof(*subs));
	long before = maps_count();

	(void)state;
	assert_true(base != MAP_FAILED);
	assert_non_null(subs);
	for (long i = 0; i < MANY; i++)
		assert_int_equal(mn_vm_watch(base + 2 * i * PG, PG, 0, many_cb,
					     (void *)(intptr_t)i, &subs[i]), 0);
	/* Whole mappings registered: not two more per watch (80,000); the
	   allocator's own mappings (a sanitizer's) may add some. */
	assert_true(maps_count() < before + 1000);

	/* A hooked unmap of one watched page: that watch alone, at once. */
	assert_int_equal(munmap(base + 2 * 30000 * PG, PG), 0);
	assert_int_equal(atomic_load(&hits), 1);
	assert_int_equal(atomic_load(&hit_idx), 30000);

	/* A raw discard: the safety net still covers a range in the middle. */
	mn_capability(MN_CAP_USERFAULTFD, &cap);
	if (cap.supported) {
		base[2 * 20000 * PG] = 1;
		assert_int_equal(syscall(SYS_madvise, base + 2 * 20000 * PG, PG,
					 MADV_DONTNEED), 0);
		assert_true(wait_late(1, 5000));
		assert_int_equal(atomic_load(&hit_idx), 20000);
	} else {
		print_message("userfaultfd part skipped: %s\n", cap.detail);
	}
	for (long i = 0; i < MANY; i++)
		assert_int_equal(mn_unsubscribe(subs[i]), 0);
	assert_int_equal(mn_unsubscribe(subs[0]), -ENOENT);
	munmap(base, 2 * MANY * PG);
	free(subs);
}

/* --- randomized index check ----------------------------------------------- */

#define WIN 512                /* pages */
#define NW 3000
static struct {
	mn_sub *sub;
	size_t lo, hi;         /* pages */
} ws[NW];
static unsigned char seen[NW];

static void rand_cb(const struct mn_vm_event *ev, void *ctx)
{
	(void)ev;
	seen[(intptr_t)ctx]++;
}

static void check_range(char *base, size_t lo, size_t hi)
{
	memset(seen, 0, sizeof(seen));
	assert_int_equal(mprotect(base + lo * PG, (hi - lo) * PG,
				  PROT_READ | PROT_WRITE), 0);
	for (int i = 0; i < NW; i++) {
		int want = ws[i].sub && ws[i].lo < hi && ws[i].hi > lo;
		if (seen[i] != want)
			fail_msg("watch %d [%zu, %zu) query [%zu, %zu): told %d times",
				 i, ws[i].lo, ws[i].hi, lo, hi, seen[i]);
	}
}

static void test_index_against_brute_force(void **state)
{
	char *base = mmap(NULL, WIN * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned int seed = 12345;

	(void)state;
	assert_true(base != MAP_FAILED);
	for (int round = 0; round < 20000; round++) {
		int i = rand_r(&seed) % NW;
		if (ws[i].sub) {
			assert_int_equal(mn_unsubscribe(ws[i].sub), 0);
			ws[i].sub = NULL;
		} else {
			ws[i].lo = (size_t)rand_r(&seed) % (WIN - 16);
			ws[i].hi = ws[i].lo + 1 + (size_t)rand_r(&seed) % 16;
			assert_int_equal(mn_vm_watch(base + ws[i].lo * PG,
						     (ws[i].hi - ws[i].lo) * PG,
						     MN_VM_NO_USERFAULTFD, rand_cb,
						     (void *)(intptr_t)i, &ws[i].sub), 0);
		}
		if (round % 50 == 0) {
			size_t lo = (size_t)rand_r(&seed) % (WIN - 32);
			check_range(base, lo, lo + 1 + (size_t)rand_r(&seed) % 32);
		}
	}
	check_range(base, 0, WIN);
	for (int i = 0; i < NW; i++)
		if (ws[i].sub)
			assert_int_equal(mn_unsubscribe(ws[i].sub), 0);
	munmap(base, WIN * PG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_watches_keep_mappings),
		cmocka_unit_test(test_index_against_brute_force),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	mn_shutdown();
	return rc;
}
