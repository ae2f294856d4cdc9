/* SPDX-License-Identifier: MIT */
/*
 * mn_rcache: hits and misses, references, every invalidation path through
 * real calls (munmap, free() of a large block, mremap, madvise, mprotect,
 * a raw system call seen late by userfaultfd), deregistration deferred
 * while referenced, merging, LRU eviction by count and bytes, concurrent
 * hits, statistics and bad input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "memnotify.h"

#define PG 4096ul

static _Atomic int n_reg, n_dereg;

static int reg(void *ctx, struct mn_rcache_region *r)
{
	(void)ctx;
	r->handle = (void *)(uintptr_t)(atomic_fetch_add(&n_reg, 1) + 1);
	return 0;
}

static void dereg(void *ctx, struct mn_rcache_region *r)
{
	(void)ctx;
	assert_non_null(r->handle);
	atomic_fetch_add(&n_dereg, 1);
}

static int fail_reg(void *ctx, struct mn_rcache_region *r)
{
	(void)ctx;
	(void)r;
	return -EPERM;
}

static mn_rcache *make(unsigned int flags, size_t max_regions, uint64_t max_bytes)
{
	struct mn_rcache_opts o = { .sz = sizeof(o), .reg = reg, .dereg = dereg,
				    .flags = flags, .max_regions = max_regions,
				    .max_bytes = max_bytes };
	mn_rcache *c;

	atomic_store(&n_reg, 0);
	atomic_store(&n_dereg, 0);
	assert_int_equal(mn_rcache_create(&o, &c), 0);
	return c;
}

static struct mn_rcache_stats stats(mn_rcache *c)
{
	struct mn_rcache_stats s = { .sz = sizeof(s) };

	assert_int_equal(mn_rcache_stats(c, &s), 0);
	return s;
}

/* Skips the test where the kernel has no usable userfaultfd. */
static void need_userfaultfd(void)
{
	struct mn_capability cap = { .sz = sizeof(cap) };

	mn_capability(MN_CAP_USERFAULTFD, &cap);
	if (!cap.supported) {
		print_message("skipped: %s\n", cap.detail);
		skip();
	}
}

/* Waits (5 s at most) for the cache's first late invalidation. */
static void wait_late(mn_rcache *c)
{
	for (int i = 0; i < 5000 && stats(c).inval_late == 0; i++)
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
}

static char *map(size_t pages)
{
	char *p = mmap(NULL, pages * PG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(p != MAP_FAILED);
	memset(p, 1, pages * PG);
	return p;
}

static void test_bad_arguments(void **state)
{
	struct mn_rcache_opts o = { .sz = sizeof(o), .reg = reg, .dereg = dereg };
	struct mn_rcache_region *r;
	mn_rcache *c;
	char buf[8];

	(void)state;
	assert_int_equal(mn_rcache_create(NULL, &c), -EINVAL);
	assert_int_equal(mn_rcache_create(&o, NULL), -EINVAL);
	o.reg = NULL;
	assert_int_equal(mn_rcache_create(&o, &c), -EINVAL);
	o.reg = reg;
	o.flags = 0x80;
	assert_int_equal(mn_rcache_create(&o, &c), -EINVAL);
	o.flags = 0;
	o.sz = 4;
	assert_int_equal(mn_rcache_create(&o, &c), -EINVAL);
	c = make(0, 0, 0);
	assert_int_equal(mn_rcache_get(NULL, buf, 1, PROT_READ, &r), -EINVAL);
	assert_int_equal(mn_rcache_get(c, buf, 0, PROT_READ, &r), -EINVAL);
	assert_int_equal(mn_rcache_get(c, buf, 1, PROT_READ, NULL), -EINVAL);
	assert_int_equal(mn_rcache_get(c, (void *)UINTPTR_MAX, 2, PROT_READ, &r), -EINVAL);
	assert_int_equal(mn_rcache_get(c, buf, 1, 0x100, &r), -EINVAL);
	assert_int_equal(mn_rcache_put(c, NULL), -EINVAL);
	assert_int_equal(mn_rcache_put(NULL, NULL), -EINVAL);
	assert_int_equal(mn_rcache_flush(NULL), -EINVAL);
	assert_int_equal(mn_rcache_stats(c, NULL), -EINVAL);
	assert_int_equal(mn_rcache_stats_json(c, buf, sizeof(buf)), -ENOSPC);
	assert_int_equal(mn_rcache_destroy(NULL), -EINVAL);
	assert_int_equal(mn_rcache_destroy(c), 0);
}

static void test_hit_miss_refs(void **state)
{
	mn_rcache *c = make(0, 0, 0);
	char *p = map(4), json[1024];
	struct mn_rcache_region *a, *b;

	(void)state;
	assert_int_equal(mn_rcache_get(c, p + 10, 100, PROT_READ, &a), 0);
	assert_int_equal(a->start, (uint64_t)(uintptr_t)p);
	assert_int_equal(a->end, (uint64_t)(uintptr_t)p + PG);
	assert_int_equal(mn_rcache_get(c, p + 200, 8, PROT_READ, &b), 0);
	assert_ptr_equal(a, b);
	assert_int_equal(n_reg, 1);
	/* A wider access than it was registered for is a miss. */
	struct mn_rcache_region *w;
	assert_int_equal(mn_rcache_get(c, p, 8, PROT_READ | PROT_WRITE, &w), 0);
	assert_ptr_not_equal(w, a);
	assert_int_equal(stats(c).hits, 1);
	assert_int_equal(stats(c).misses, 2);
	/* One region per page (as UCX's): the wider one replaced the
	   first, deregistered once its last reference went. */
	assert_int_equal(mn_rcache_put(c, a), 0);
	assert_int_equal(n_dereg, 0);
	assert_int_equal(mn_rcache_put(c, b), 0);
	assert_int_equal(n_dereg, 1);
	assert_int_equal(mn_rcache_put(c, w), 0);
	assert_int_equal(n_dereg, 1);
	assert_int_equal(stats(c).merges, 1);
	assert_int_equal(stats(c).regions, 1); /* cached, unreferenced */
	/* Destroy with a reference held: -EBUSY, nothing changed. */
	assert_int_equal(mn_rcache_get(c, p, 8, PROT_READ, &a), 0);
	assert_int_equal(mn_rcache_destroy(c), -EBUSY);
	assert_int_equal(mn_rcache_put(c, a), 0);
	assert_true(mn_rcache_stats_json(c, json, sizeof(json)) > 0);
	assert_non_null(strstr(json, "\"hits\":2"));
	/* The style of `memnotify status --format json`. */
	assert_int_equal(strncmp(json, "{\"time\":\"20", 11), 0);
	assert_non_null(strstr(json, "Z\",\"event\":\"rcache.stats\","));
	assert_non_null(strstr(json, "\"table_bytes\":"));
	assert_int_equal(mn_rcache_destroy(c), 0);
	assert_int_equal(n_dereg, 2);
	munmap(p, 4 * PG);
}

/* One invalidation path: @change alters the memory under a cached region;
   the next get is a miss with a new registration, the old one is
   deregistered exactly once. */
static void check_path(mn_rcache *c, char *p, size_t len, void (*change)(char *, size_t),
		       uint64_t (*counter)(const struct mn_rcache_stats *))
{
	struct mn_rcache_region *r, *r2;
	struct mn_rcache_stats s0 = stats(c);
	uint64_t before = counter(&s0);

	assert_int_equal(mn_rcache_get(c, p, len, PROT_READ | PROT_WRITE, &r), 0);
	void *h = r->handle;
	int regs = n_reg, deregs = n_dereg;
	assert_int_equal(mn_rcache_put(c, r), 0);
	change(p, len);
	assert_int_equal(mn_rcache_get(c, p, len, PROT_READ | PROT_WRITE, &r2), 0);
	assert_ptr_not_equal(r2->handle, h);
	assert_int_equal(n_reg, regs + 1);
	assert_int_equal(n_dereg, deregs + 1);
	struct mn_rcache_stats s = stats(c);
	assert_int_equal(counter(&s), before + 1);
	assert_int_equal(mn_rcache_put(c, r2), 0);
}

static void ch_munmap(char *p, size_t len)
{
	assert_int_equal(munmap(p, len), 0);
	assert_true(mmap(p, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == p);
}

static void ch_madvise(char *p, size_t len)
{
	assert_int_equal(madvise(p, len, MADV_DONTNEED), 0);
}

static void ch_mprotect(char *p, size_t len)
{
	/* Adding an access keeps it; taking one away invalidates. */
	assert_int_equal(mprotect(p, len, PROT_READ | PROT_WRITE | PROT_EXEC), 0);
	assert_int_equal(mprotect(p, len, PROT_READ), 0);
	assert_int_equal(mprotect(p, len, PROT_READ | PROT_WRITE), 0);
}

static void ch_mremap(char *p, size_t len)
{
	char *q = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(q != MAP_FAILED);
	assert_true(mremap(p, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, q) == q);
	assert_true(mremap(q, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, p) == p);
}

static uint64_t k_unmap(const struct mn_rcache_stats *s) { return s->inval_unmap; }
static uint64_t k_discard(const struct mn_rcache_stats *s) { return s->inval_discard; }
static uint64_t k_protect(const struct mn_rcache_stats *s) { return s->inval_protect; }
static uint64_t k_move(const struct mn_rcache_stats *s) { return s->inval_move; }

static void test_invalidation_paths(void **state)
{
	mn_rcache *c = make(0, 0, 0);
	char *p = map(8);

	(void)state;
	check_path(c, p, 2 * PG, ch_munmap, k_unmap);
	check_path(c, p, 2 * PG, ch_madvise, k_discard);
	check_path(c, p, 2 * PG, ch_mprotect, k_protect);
	check_path(c, p, 2 * PG, ch_mremap, k_move);
	assert_int_equal(mn_rcache_destroy(c), 0);
	munmap(p, 8 * PG);
}

/* free() of a large block (glibc munmaps it) and a new block at the same
   address: a miss. */
static void test_free_large_block(void **state)
{
	mn_rcache *c = make(0, 0, 0);
	struct mn_rcache_region *r;
	size_t len = 4 << 20;
	char *p = malloc(len);
	void *h;

	(void)state;
	assert_non_null(p);
	memset(p, 2, len);
	assert_int_equal(mn_rcache_get(c, p, len, PROT_READ | PROT_WRITE, &r), 0);
	h = r->handle;
	assert_int_equal(mn_rcache_put(c, r), 0);
	free(p);
	char *q = malloc(len);
	assert_non_null(q);
	assert_int_equal(mn_rcache_get(c, q, len, PROT_READ | PROT_WRITE, &r), 0);
	if (q == p && stats(c).inval_unmap >= 1) {
		/* The block was unmapped and the address handed out again:
		   new memory, a new registration. */
		assert_ptr_not_equal(r->handle, h);
	} else if (q == p) {
		/* A sanitizer's allocator keeps freed blocks mapped: the same
		   pages, so the registration is still good. */
		print_message("the allocator kept the block mapped\n");
		assert_ptr_equal(r->handle, h);
	} else {
		print_message("the allocator put the new block elsewhere\n");
	}
	assert_int_equal(mn_rcache_put(c, r), 0);
	free(q);
	assert_int_equal(mn_rcache_destroy(c), 0);
}

/* Invalidated while referenced: deregistered at the last put, not before. */
static void test_deferred_while_referenced(void **state)
{
	mn_rcache *c = make(0, 0, 0);
	struct mn_rcache_region *r, *r2;
	char *p = map(2);

	(void)state;
	assert_int_equal(mn_rcache_get(c, p, PG, PROT_READ, &r), 0);
	assert_int_equal(madvise(p, PG, MADV_DONTNEED), 0);
	assert_int_equal(mn_rcache_flush(c), 0);
	assert_int_equal(n_dereg, 0);
	assert_int_equal(mn_rcache_get(c, p, PG, PROT_READ, &r2), 0);
	assert_ptr_not_equal(r2, r);
	assert_int_equal(mn_rcache_put(c, r), 0);
	assert_int_equal(n_dereg, 1);
	assert_int_equal(stats(c).deferred, 1);
	assert_int_equal(mn_rcache_put(c, r2), 0);
	assert_int_equal(mn_rcache_destroy(c), 0);
	munmap(p, 2 * PG);
}

/* A raw system call: no hook sees it; userfaultfd's late event does. */
static void test_raw_syscall_late(void **state)
{
	mn_rcache *c;
	struct mn_rcache_region *r;
	char *p;

	(void)state;
	need_userfaultfd();
	c = make(0, 0, 0);
	p = map(2);
	assert_int_equal(mn_rcache_get(c, p, PG, PROT_READ, &r), 0);
	assert_int_equal(mn_rcache_put(c, r), 0);
	assert_int_equal(syscall(SYS_madvise, p, PG, MADV_DONTNEED), 0);
	wait_late(c);
	assert_int_equal(stats(c).inval_late, 1);
	assert_int_equal(stats(c).inval_discard, 1);
	assert_int_equal(mn_rcache_get(c, p, PG, PROT_READ, &r), 0);
	assert_int_equal(n_reg, 2);
	assert_int_equal(mn_rcache_put(c, r), 0);
	assert_int_equal(mn_rcache_destroy(c), 0);
	munmap(p, 2 * PG);
}

/* A number field of the cache's stats JSON. */
static uint64_t json_field(mn_rcache *c, const char *name)
{
	char json[1024], key[64];
	const char *k;

	assert_true(mn_rcache_stats_json(c, json, sizeof(json)) > 0);
	snprintf(key, sizeof(key), "\"%s\":", name);
	k = strstr(json, key);
	assert_non_null(k);
	return strtoull(k + strlen(key), NULL, 10);
}

/* The safety net registers whole mappings.  A hooked call of registered
   memory must not make the kernel send its copy (the calling thread would
   wait for the reader thread: tens of microseconds), whether the range is
   cached or a neighbour; a hooked discard must leave its range registered
   (a raw call there is still seen).  Counted with the reader's messages,
   in order: the last raw call's late invalidation is the bound. */
static void test_no_round_trip(void **state)
{
	struct mn_rcache_region *r;
	mn_rcache *c;
	uint64_t m0, w0;
	bool whole;
	char *p;

	(void)state;
	need_userfaultfd();
	c = make(0, 0, 0);
	p = map(8);
	w0 = json_field(c, "uffd_whole");
	assert_int_equal(mn_rcache_get(c, p, PG, PROT_READ, &r), 0);
	assert_int_equal(mn_rcache_put(c, r), 0);
	/* Without PROCMAP_QUERY (before Linux 6.11) the region is registered
	   alone: no neighbour is, and the rehold has nothing to keep. */
	whole = json_field(c, "uffd_whole") > w0;
	if (!whole)
		print_message("registered alone (no PROCMAP_QUERY): the neighbours "
			      "are not registered\n");
	m0 = json_field(c, "uffd_messages");
	assert_int_equal(munmap(p + 7 * PG, PG), 0);                 /* neighbour */
	assert_int_equal(madvise(p + 2 * PG, 3 * PG, MADV_DONTNEED), 0); /* neighbour */
	assert_int_equal(mremap(p + 6 * PG, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED,
				p + 5 * PG), p + 5 * PG);              /* neighbour */
	assert_int_equal(stats(c).inval_unmap + stats(c).inval_discard +
			 stats(c).inval_move, 0);
	/* Pages 2..4 are registered again after the hooked discard. */
	assert_int_equal(syscall(SYS_madvise, p + 3 * PG, PG, MADV_DONTNEED), 0);
	/* The cached page, raw: seen late, after everything above. */
	assert_int_equal(syscall(SYS_madvise, p, PG, MADV_DONTNEED), 0);
	wait_late(c);
	assert_int_equal(stats(c).inval_late, 1);
	assert_int_equal(json_field(c, "uffd_messages") - m0, whole ? 2 : 1);
	assert_int_equal(mn_rcache_destroy(c), 0);
	munmap(p, 7 * PG);
}

/* The page table frees the nodes a removal empties: regions in 64
   distinct 2 MiB blocks take a leaf node each, and once they are gone the
   table is back to its size before them (the root, set once, stays). */
static void test_table_frees_nodes(void **state)
{
	const size_t blk = 2ul << 20, nblk = 64;
	struct mn_rcache_region *r;
	mn_rcache *c = make(0, 0, 0);
	uint64_t t0, t1, t2;
	char *p;

	(void)state;
	p = mmap(NULL, (nblk + 1) * blk, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	assert_true(p != MAP_FAILED);
	p = (char *)(((uintptr_t)p + blk - 1) & ~(uintptr_t)(blk - 1));
	/* The root and the upper levels for this part of the address space. */
	assert_int_equal(mn_rcache_get(c, p - PG, PG, PROT_READ, &r), 0);
	assert_int_equal(mn_rcache_put(c, r), 0);
	t0 = json_field(c, "table_bytes");
	for (size_t i = 0; i < nblk; i++) {
		assert_int_equal(mn_rcache_get(c, p + i * blk, PG, PROT_READ, &r), 0);
		assert_int_equal(mn_rcache_put(c, r), 0);
	}
	t1 = json_field(c, "table_bytes");
	print_message("table: %llu bytes, %llu with %zu blocks\n",
		      (unsigned long long)t0, (unsigned long long)t1, nblk);
	assert_true(t1 >= t0 + nblk * 4096);
	assert_int_equal(munmap(p, nblk * blk), 0);
	assert_int_equal(mn_rcache_flush(c), 0);
	assert_int_equal(stats(c).regions, 1);
	t2 = json_field(c, "table_bytes");
	assert_true(t2 <= t0);
	assert_int_equal(mn_rcache_destroy(c), 0);
}

/* The page table's shapes against a model of pages: random gets of one
   page to three 2 MiB blocks (inside one leaf node, across leaves, whole
   blocks held by an upper level's entry) in 16 MiB aligned to 2 MiB, for
   reading or writing (a write inside a region registered for reading is
   a miss: the page table is searched inside a block it holds whole).
   Each get must be the hit or the miss the model says (a miss replaces
   the regions it overlaps: no merging), and every cached region stays
   found. */
#define SH_PAGES 4096
#define SH_STEPS 4000

struct sh_model {
	struct mn_rcache_region *r[SH_STEPS];
	size_t s[SH_STEPS], e[SH_STEPS]; /* pages */
	int prot[SH_STEPS];
	int owner[SH_PAGES];             /* region id or -1 */
	int live;
};

static size_t sh_len(unsigned int *seed)
{
	unsigned int k = (unsigned int)rand_r(seed) % 100;

	if (k < 90)
		return 1 + (size_t)rand_r(seed) % 8;
	if (k < 97)
		return 1 + (size_t)rand_r(seed) % 1100;
	return 512 * (1 + (size_t)rand_r(seed) % 3); /* whole blocks */
}

/* The model after a miss: [s, e) is region @id, the regions it overlaps
   are gone. */
static void sh_place(struct sh_model *m, int id, size_t s, size_t e)
{
	for (size_t pg = s; pg < e; pg++) {
		int old = m->owner[pg];
		if (old < 0)
			continue;
		for (size_t q = m->s[old]; q < m->e[old]; q++)
			m->owner[q] = -1;
		m->live--;
	}
	for (size_t pg = s; pg < e; pg++)
		m->owner[pg] = id;
	m->live++;
}

static void sh_check_all(mn_rcache *c, char *p, struct sh_model *m)
{
	struct mn_rcache_region *r;
	uint64_t misses = stats(c).misses;

	for (size_t pg = 0; pg < SH_PAGES; pg++) {
		int id = m->owner[pg];
		if (id < 0 || m->s[id] != pg)
			continue;
		assert_int_equal(mn_rcache_get(c, p + pg * PG, PG, PROT_READ, &r), 0);
		assert_ptr_equal(r, m->r[id]);
		assert_int_equal(mn_rcache_put(c, r), 0);
	}
	assert_int_equal(stats(c).misses, misses);
	assert_int_equal(stats(c).regions, (uint64_t)m->live);
}

static void test_table_shapes(void **state)
{
	const size_t blk = 2ul << 20;
	static struct sh_model m;
	unsigned int seed = 14;
	int most = 0;
	struct mn_rcache_region *r;
	mn_rcache *c = make(0, 0, 0);
	char *map0, *p;

	(void)state;
	map0 = mmap(NULL, SH_PAGES * PG + blk, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	assert_true(map0 != MAP_FAILED);
	p = (char *)(((uintptr_t)map0 + blk - 1) & ~(uintptr_t)(blk - 1));
	memset(m.owner, -1, sizeof(m.owner));
	m.live = 0;
	for (int id = 0; id < SH_STEPS; id++) {
		size_t len = sh_len(&seed), s = (size_t)rand_r(&seed) % SH_PAGES;
		size_t e = s + len < SH_PAGES ? s + len : SH_PAGES;
		int have = m.owner[s], prot = rand_r(&seed) % 4 ? PROT_READ
							       : PROT_READ | PROT_WRITE;
		bool hit = have >= 0 && m.e[have] >= e && (m.prot[have] & prot) == prot;
		uint64_t misses = stats(c).misses;

		assert_int_equal(mn_rcache_get(c, p + s * PG, (e - s) * PG,
					       prot, &r), 0);
		assert_int_equal(stats(c).misses, misses + !hit);
		if (hit) {
			assert_ptr_equal(r, m.r[have]);
		} else {
			assert_int_equal(r->start, (uint64_t)(uintptr_t)(p + s * PG));
			assert_int_equal(r->end, (uint64_t)(uintptr_t)(p + e * PG));
			m.r[id] = r;
			m.s[id] = s;
			m.e[id] = e;
			m.prot[id] = prot;
			sh_place(&m, id, s, e);
		}
		assert_int_equal(mn_rcache_put(c, r), 0);
		most = m.live > most ? m.live : most;
		if (id % 200 == 199)
			sh_check_all(c, p, &m);
	}
	print_message("%d regions cached at the end (%d at most), %" PRIu64
		      " replaced\n", m.live, most, stats(c).merges);
	assert_int_equal(mn_rcache_destroy(c), 0);
	munmap(map0, SH_PAGES * PG + blk);
}

/* MN_RCACHE_BACKGROUND: an invalidated, unreferenced region is
   deregistered on memnotify's dispatcher thread, with no further call on
   the cache; destroy from its own background deregister says -EDEADLK. */
static _Atomic pid_t bg_dereg_tid;
static _Atomic int bg_destroy_err;
static mn_rcache *bg_self;

static void bg_dereg(void *ctx, struct mn_rcache_region *r)
{
	(void)ctx;
	(void)r;
	atomic_store(&bg_dereg_tid, (pid_t)syscall(SYS_gettid));
	atomic_store(&bg_destroy_err, mn_rcache_destroy(bg_self));
	atomic_fetch_add(&n_dereg, 1);
}

static void test_background(void **state)
{
	struct mn_rcache_opts o = { .sz = sizeof(o), .reg = reg, .dereg = bg_dereg,
				    .flags = MN_RCACHE_BACKGROUND };
	struct mn_rcache_region *r;
	char *p = map(2);

	(void)state;
	atomic_store(&n_dereg, 0);
	assert_int_equal(mn_rcache_create(&o, &bg_self), 0);
	assert_int_equal(mn_rcache_get(bg_self, p, PG, PROT_READ, &r), 0);
	assert_int_equal(mn_rcache_put(bg_self, r), 0);
	assert_int_equal(munmap(p, PG), 0);
	for (int i = 0; i < 5000 && atomic_load(&n_dereg) == 0; i++)
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	assert_int_equal(atomic_load(&n_dereg), 1);
	assert_true(atomic_load(&bg_dereg_tid) != (pid_t)syscall(SYS_gettid));
	assert_int_equal(atomic_load(&bg_destroy_err), -EDEADLK);
	assert_int_equal(stats(bg_self).deferred, 1);
	assert_int_equal(stats(bg_self).regions, 0);
	assert_int_equal(mn_rcache_destroy(bg_self), 0);
	munmap(p + PG, PG);
}

static void test_merge(void **state)
{
	mn_rcache *c = make(MN_RCACHE_MERGE, 0, 0);
	struct mn_rcache_region *a, *b, *h;
	char *p = map(8);

	(void)state;
	assert_int_equal(mn_rcache_get(c, p, 2 * PG, PROT_READ, &a), 0);
	assert_int_equal(mn_rcache_put(c, a), 0);
	assert_int_equal(mn_rcache_get(c, p + 2 * PG, 2 * PG, PROT_WRITE, &b), 0);
	assert_int_equal(b->start, (uint64_t)(uintptr_t)p);
	assert_int_equal(b->end, (uint64_t)(uintptr_t)p + 4 * PG);
	assert_int_equal(b->prot, PROT_READ | PROT_WRITE);
	assert_int_equal(stats(c).merges, 1);
	assert_int_equal(stats(c).regions, 1);
	assert_int_equal(n_dereg, 1); /* the merged one, unreferenced */
	assert_int_equal(mn_rcache_get(c, p + PG, PG, PROT_READ, &h), 0);
	assert_ptr_equal(h, b);
	assert_int_equal(mn_rcache_put(c, h), 0);
	assert_int_equal(mn_rcache_put(c, b), 0);
	assert_int_equal(mn_rcache_destroy(c), 0);
	munmap(p, 8 * PG);
}

static void test_eviction(void **state)
{
	mn_rcache *c = make(0, 4, 0);
	struct mn_rcache_region *r;
	char *p = map(16);

	(void)state;
	for (int i = 0; i < 8; i++) {
		assert_int_equal(mn_rcache_get(c, p + 2 * i * PG, PG, PROT_READ, &r), 0);
		assert_int_equal(mn_rcache_put(c, r), 0);
	}
	assert_true(stats(c).regions <= 4);
	assert_int_equal(stats(c).evictions, 8 - stats(c).regions);
	assert_int_equal(n_dereg, (int)stats(c).evictions);
	/* The newest is still there. */
	assert_int_equal(mn_rcache_get(c, p + 14 * PG, PG, PROT_READ, &r), 0);
	assert_int_equal(stats(c).hits, 1);
	assert_int_equal(mn_rcache_put(c, r), 0);
	assert_int_equal(mn_rcache_destroy(c), 0);
	/* By bytes: at most 3 pages. */
	c = make(0, 0, 3 * PG);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(mn_rcache_get(c, p + 2 * i * PG, PG, PROT_READ, &r), 0);
		assert_int_equal(mn_rcache_put(c, r), 0);
	}
	assert_true(stats(c).bytes <= 3 * PG);
	assert_int_equal(mn_rcache_destroy(c), 0);
	munmap(p, 16 * PG);
}

static void test_register_error(void **state)
{
	struct mn_rcache_opts o = { .sz = sizeof(o), .reg = fail_reg, .dereg = dereg };
	struct mn_rcache_region *r;
	mn_rcache *c;
	char *p = map(1);

	(void)state;
	assert_int_equal(mn_rcache_create(&o, &c), 0);
	assert_int_equal(mn_rcache_get(c, p, PG, PROT_READ, &r), -EPERM);
	assert_null(r);
	assert_int_equal(stats(c).register_errors, 1);
	assert_int_equal(mn_rcache_destroy(c), 0);
	munmap(p, PG);
}

/* Two threads hit while a third invalidates and re-maps: every region a
   get returns was valid when the get began (its generation). */
static mn_rcache *tc;
static char *tp;
static _Atomic unsigned int gen; /* odd while the pages are being replaced */
static _Atomic int stop, stale;

static void *hitter(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		struct mn_rcache_region *r;
		unsigned int g0 = atomic_load(&gen);
		if (g0 & 1)
			continue;
		if (mn_rcache_get(tc, tp, PG, PROT_READ, &r) == 0) {
			/* handle: the generation it was registered in (odd:
			   during a change, valid for the era after it) */
			unsigned int h = (unsigned int)(uintptr_t)r->handle;
			if (h + (h & 1) < g0)
				atomic_fetch_add(&stale, 1);
			mn_rcache_put(tc, r);
		}
	}
	return NULL;
}

static int reg_gen(void *ctx, struct mn_rcache_region *r)
{
	(void)ctx;
	r->handle = (void *)(uintptr_t)atomic_load(&gen);
	return 0;
}

static void test_concurrent_hits(void **state)
{
	struct mn_rcache_opts o = { .sz = sizeof(o), .reg = reg_gen, .dereg = dereg };
	pthread_t t[2];

	(void)state;
	assert_int_equal(mn_rcache_create(&o, &tc), 0);
	tp = map(1);
	atomic_store(&gen, 2);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hitter, NULL), 0);
	for (int i = 0; i < 300; i++) {
		atomic_fetch_add(&gen, 1); /* odd: changing */
		assert_int_equal(madvise(tp, PG, MADV_DONTNEED), 0);
		atomic_fetch_add(&gen, 1);
		nanosleep(&(struct timespec){ 0, 100000 }, NULL);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&stale), 0);
	assert_true(stats(tc).hits > 0);
	assert_int_equal(mn_rcache_destroy(tc), 0);
	munmap(tp, PG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_hit_miss_refs),
		cmocka_unit_test(test_invalidation_paths),
		cmocka_unit_test(test_free_large_block),
		cmocka_unit_test(test_deferred_while_referenced),
		cmocka_unit_test(test_raw_syscall_late),
		cmocka_unit_test(test_no_round_trip),
		cmocka_unit_test(test_table_frees_nodes),
		cmocka_unit_test(test_table_shapes),
		cmocka_unit_test(test_background),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_eviction),
		cmocka_unit_test(test_register_error),
		cmocka_unit_test(test_concurrent_hits),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	mn_shutdown();
	return rc;
}
