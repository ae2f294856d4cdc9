/* SPDX-License-Identifier: MIT */
/*
 * Differential stale-entry test: one random sequence (a fixed seed) of
 * munmap + mmap, free() + malloc() of large blocks, mremap moves,
 * madvise(DONTNEED), mprotect taking write access away, and raw system
 * calls (no hook sees them), interleaved with gets.  The truth is a
 * generation number per buffer, bumped by every change; a get that
 * returns a region registered in an older generation is a stale hit.
 * Built twice: with mn_rcache (test_rcache_diff: none allowed; after a raw
 * call once its late event is delivered — it waits, bounded) and with
 * UCX's ucs_rcache driven by libucm (test_rcache_diff_ucx, run by the
 * first: its counts are reported, not judged).  Each cache runs in a
 * process of its own, with only its own hooks: with libucs loaded (its
 * memory-type cache installs libucm's hooks at load) the program's munmap,
 * madvise and mremap calls go to libucm and bypass memnotify's interposers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifdef MN_DIFF_UCX
#include <ucm/api/ucm.h>
#include <ucs/memory/rcache.h>
#else
#include "memnotify.h"
#endif

#define PG 4096ul
#define SLOTS 16
#define SLOT_PAGES 4
#define SPACING 8           /* pages between slot starts: never adjacent */
#define BLOCKS 4
#define BLOCK (512 * 1024ul)
#define STEPS 3000

enum op { OP_MUNMAP, OP_FREE, OP_MREMAP, OP_MADVISE, OP_MPROTECT, OP_RAW, N_OPS };
static const char *op_name[N_OPS] = { "munmap", "free", "mremap", "madvise",
				      "mprotect", "raw syscall" };

struct buf {
	char *addr;
	size_t len;
	unsigned int gen;
	enum op last;     /* the last change, for the report */
	bool cached;      /* a get since the last change: a region holds it */
};

static char *area;
static const char *cur_req; /* the address of the get under way */
static struct buf bufs[SLOTS + BLOCKS];

/* The buffer an address belongs to now, or -1. */
static int buf_of(uint64_t a)
{
	for (int i = 0; i < SLOTS + BLOCKS; i++)
		if (bufs[i].addr && a >= (uint64_t)(uintptr_t)bufs[i].addr &&
		    a < (uint64_t)(uintptr_t)bufs[i].addr + bufs[i].len)
			return i;
	return -1;
}

/* A registration remembers the buffer (of the address asked for) and its
   generation. */
static uint64_t tag(void)
{
	int b = buf_of((uint64_t)(uintptr_t)cur_req);

	return b < 0 ? UINT64_MAX : (uint64_t)b << 32 | bufs[b].gen;
}

#ifndef MN_DIFF_UCX
/* --- mn_rcache -------------------------------------------------------------- */

static int mn_reg(void *ctx, struct mn_rcache_region *r)
{
	(void)ctx;
	r->handle = (void *)(uintptr_t)tag();
	return 0;
}

static void mn_dereg(void *ctx, struct mn_rcache_region *r)
{
	(void)ctx;
	(void)r;
}

#else
/* --- UCX ------------------------------------------------------------------------ */

struct ucx_region {
	ucs_rcache_region_t super;
	uint64_t tag;
};

static ucs_status_t ucx_reg(void *ctx, ucs_rcache_t *rc, void *arg,
			    ucs_rcache_region_t *r, uint16_t flags)
{
	(void)ctx; (void)rc; (void)arg; (void)flags;
	((struct ucx_region *)r)->tag = tag();
	return UCS_OK;
}

static void ucx_dereg(void *ctx, ucs_rcache_t *rc, ucs_rcache_region_t *r)
{
	(void)ctx; (void)rc; (void)r;
}

static void ucx_dump(void *ctx, ucs_rcache_t *rc, ucs_rcache_region_t *r,
		     char *buf, size_t max)
{
	(void)ctx; (void)rc; (void)r;
	if (max)
		buf[0] = 0;
}

static const ucs_rcache_ops_t ucx_ops = { ucx_reg, ucx_dereg, ucx_dump };
#endif

#ifdef MN_DIFF_UCX
static ucs_rcache_t *uc;

static bool cache_make(void)
{
	ucs_rcache_params_t up = {
		.region_struct_size = sizeof(struct ucx_region),
		.alignment = PG, .max_alignment = PG,
		.ucm_events = UCM_EVENT_VM_UNMAPPED, .ucm_event_priority = 1000,
		.ops = &ucx_ops, .flags = UCS_RCACHE_FLAG_NO_PFN_CHECK,
		.max_regions = 1000000, .max_size = SIZE_MAX, .max_unreleased = SIZE_MAX,
	};
	return ucs_rcache_create(&up, "diff", NULL, &uc) == UCS_OK;
}

/* The tag of the region a get returns, or UINT64_MAX - 1 if none. */
static uint64_t cache_get(char *p, size_t len)
{
	ucs_rcache_region_t *r;
	uint64_t t;

	cur_req = p;
	if (ucs_rcache_get(uc, p, len, PROT_READ | PROT_WRITE, NULL, &r) != UCS_OK)
		return UINT64_MAX - 1;
	t = ((struct ucx_region *)r)->tag;
	ucs_rcache_region_put(uc, r);
	return t;
}

static void cache_wait_late(unsigned long before) { (void)before; }
static unsigned long cache_late(void) { return 0; }
static bool cache_uffd(void) { return true; } /* the raw calls too: unseen */
static void cache_drop(void) { ucs_rcache_destroy(uc); }
#define CACHE_NAME "ucs_rcache"
#else
static mn_rcache *mc;

static bool cache_make(void)
{
	struct mn_rcache_opts o = { .sz = sizeof(o), .reg = mn_reg, .dereg = mn_dereg };

	return mn_rcache_create(&o, &mc) == 0;
}

static uint64_t cache_get(char *p, size_t len)
{
	struct mn_rcache_region *r;
	uint64_t t;

	cur_req = p;
	assert_int_equal(mn_rcache_get(mc, p, len, PROT_READ | PROT_WRITE, &r), 0);
	t = (uint64_t)(uintptr_t)r->handle;
	mn_rcache_put(mc, r);
	return t;
}

static unsigned long cache_late(void)
{
	struct mn_rcache_stats s = { .sz = sizeof(s) };

	mn_rcache_stats(mc, &s);
	return s.inval_late;
}

/* Bounded wait (5 s) for the late event of a raw call on a buffer a
   region holds. */
static void cache_wait_late(unsigned long before)
{
	for (int i = 0; i < 50000 && cache_late() == before; i++)
		nanosleep(&(struct timespec){ 0, 100000 }, NULL);
}

static bool cache_uffd(void)
{
	struct mn_capability cap = { .sz = sizeof(cap) };

	mn_capability(MN_CAP_USERFAULTFD, &cap);
	return cap.supported;
}

static void cache_drop(void) { assert_int_equal(mn_rcache_destroy(mc), 0); }
#define CACHE_NAME "mn_rcache"
#endif

/* --- the changes ------------------------------------------------------------ */

static void remap_fixed(char *p, size_t len, bool raw)
{
	void *q = raw ? (void *)syscall(SYS_mmap, p, len, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
		      : mmap(p, len, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	assert_true(q == p);
	memset(p, 1, len);
}

static void change_slot(struct buf *x, enum op op)
{
	char *p = x->addr;

	switch (op) {
	case OP_MREMAP: {
		/* Grown with a move (its neighbours are mapped). */
		char *away = mremap(p, x->len, 2 * x->len, MREMAP_MAYMOVE);
		assert_true(away != MAP_FAILED && away != p);
		remap_fixed(p, x->len, false);
		munmap(away, 2 * x->len);
		break;
	}
	case OP_MADVISE:
		assert_int_equal(madvise(p, x->len, MADV_DONTNEED), 0);
		break;
	case OP_MPROTECT:
		assert_int_equal(mprotect(p, x->len, PROT_READ), 0);
		assert_int_equal(mprotect(p, x->len, PROT_READ | PROT_WRITE), 0);
		break;
	case OP_RAW: {
		unsigned long before = cache_late();
		assert_int_equal(syscall(SYS_munmap, p, x->len), 0);
		remap_fixed(p, x->len, true);
		if (x->cached)
			cache_wait_late(before);
		break;
	}
	default:
		assert_int_equal(munmap(p, x->len), 0);
		remap_fixed(p, x->len, false);
		break;
	}
}

static void change(int b, enum op op)
{
	struct buf *x = &bufs[b];

	if (b >= SLOTS) {
		op = OP_FREE; /* the blocks: free() and malloc() */
		free(x->addr);
		x->addr = malloc(BLOCK);
		assert_non_null(x->addr);
		memset(x->addr, 1, BLOCK);
	} else {
		if (op == OP_FREE || (op == OP_RAW && !cache_uffd()))
			op = OP_MUNMAP;
		change_slot(x, op);
	}
	x->gen++;
	x->last = op;
	x->cached = false;
}

static void test_differential(void **state)
{
	unsigned long stale[N_OPS] = { 0 }, n_ops[N_OPS] = { 0 }, gets = 0, total = 0;
	unsigned int seed = 2026;

	(void)state;
	if (!cache_make()) {
		print_message("skipped: the cache cannot be made\n");
		skip();
	}
	for (int step = 0; step < STEPS; step++) {
		int b = rand_r(&seed) % (SLOTS + BLOCKS);
		struct buf *x = &bufs[b];
		if (rand_r(&seed) % 4 == 0) {
			change(b, (enum op)(rand_r(&seed) % N_OPS));
			n_ops[x->last]++;
			continue;
		}
		size_t off = (size_t)rand_r(&seed) % (x->len / PG) * PG;
		size_t len = PG * (1 + (size_t)rand_r(&seed) % ((x->len - off) / PG));
		uint64_t t = cache_get(x->addr + off, len);
		x->cached = true;
		gets++;
		if (t != UINT64_MAX - 1 && t != ((uint64_t)b << 32 | x->gen))
			stale[x->last]++;
	}
	print_message("%s: %lu gets; stale hits by the last change of the buffer:\n",
		      CACHE_NAME, gets);
	for (int k = 0; k < N_OPS; k++) {
		print_message("  %-12s changes %5lu  stale %5lu\n", op_name[k], n_ops[k],
			      stale[k]);
		total += stale[k];
	}
	cache_drop();
#ifndef MN_DIFF_UCX
	assert_int_equal(total, 0);
#ifdef MN_DIFF_UCX_PROGRAM
	/* The same sequence with UCX's rcache, in its own process. */
	fflush(stdout);
	if (system(MN_DIFF_UCX_PROGRAM) != 0)
		print_message("(%s did not run to the end)\n", MN_DIFF_UCX_PROGRAM);
#endif
#endif
}

static int setup(void **state)
{
	(void)state;
	mallopt(M_MMAP_THRESHOLD, 128 * 1024); /* the blocks are mappings */
	area = mmap(NULL, SLOTS * SPACING * PG, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		return -1;
	for (int i = 0; i < SLOTS; i++) {
		bufs[i].addr = area + (size_t)i * SPACING * PG;
		bufs[i].len = SLOT_PAGES * PG;
		remap_fixed(bufs[i].addr, bufs[i].len, false);
	}
	for (int i = SLOTS; i < SLOTS + BLOCKS; i++) {
		bufs[i].addr = malloc(BLOCK);
		bufs[i].len = BLOCK;
		if (!bufs[i].addr)
			return -1;
		memset(bufs[i].addr, 1, BLOCK);
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_differential, setup),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

#ifndef MN_DIFF_UCX
	mn_shutdown();
#endif
	return rc;
}
