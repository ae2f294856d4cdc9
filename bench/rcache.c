/* SPDX-License-Identifier: MIT */
/*
 * bench/rcache: mn_rcache against UCX's ucs_rcache, in one run.  The same
 * source is built twice: with memnotify (rcache) and with UCX's libucs and
 * libucm (rcache_ucx, Debian's libucx-dev); the memnotify build runs the
 * other as a child process and prints both columns.  Each cache gets a
 * registration callback that does nothing, so the figures are the cache's.
 *   hit        get + put of a cached one-page region, ns per pair, with 1,
 *              1,000 and 100,000 regions cached, from 1 and 2 threads
 *   miss       get of a new region (register) + put, ns
 *   invalidate munmap of a cached page and the next get, which drops it,
 *              ns per region, above a bare munmap: 20,000 regions, one on
 *              each even page of a mapping made and faulted in together
 *              with a bare one of the same size (so that the holes stay
 *              under vm.max_map_count); each region's pair of calls is
 *              timed side by side, which goes first alternates, and the
 *              figure is the mean of the two orders' medians (_unmap_ns)
 *              plus the next get's share (_next_get_ns); again with
 *              MN_RCACHE_NO_USERFAULTFD (_hooks_only: what UCX's
 *              hooks-only cache promises; the safety net costs one
 *              UFFDIO_UNREGISTER per unmap), each cache in a fresh process
 *              (no thread or registration left from the other figures)
 *   neighbour  munmap of an uncached page beside cached ones (the odd
 *              pages), ns above a bare munmap: what the cache costs
 *              everyone else
 *   memory     resident bytes per cached region (100,000 regions)
 *   scale      region insert and invalidate (one munmap of the mapping
 *              holding them) per region at 1,000, 10,000 and 100,000
 *              regions, each cache fresh (measure_scale); watch_scale
 *              prints UCX's beside mn_vm_watch()/mn_unsubscribe()
 *   watch      (memnotify only) mn_vm_watch/mn_unsubscribe per call at
 *              100,000 watches: see watch_scale
 */
#include <limits.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifdef MN_BENCH_UCX
#include <ucm/api/ucm.h>
#include <ucs/memory/rcache.h>
typedef ucs_rcache_region_t region_t;
static ucs_rcache_t *cache;
#else
#include "memnotify.h"
typedef struct mn_rcache_region region_t;
static mn_rcache *cache;
#endif

#define PG 4096ul
#define MAXN 100000

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long rss_bytes(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * (long)PG;
}

#ifdef MN_BENCH_UCX
static ucs_status_t reg(void *ctx, ucs_rcache_t *rc, void *arg,
			ucs_rcache_region_t *r, uint16_t flags)
{
	(void)ctx; (void)rc; (void)arg; (void)r; (void)flags;
	return UCS_OK;
}

static void dereg(void *ctx, ucs_rcache_t *rc, ucs_rcache_region_t *r)
{
	(void)ctx; (void)rc; (void)r;
}

static void dump(void *ctx, ucs_rcache_t *rc, ucs_rcache_region_t *r,
		 char *buf, size_t max)
{
	(void)ctx; (void)rc; (void)r;
	if (max)
		buf[0] = 0;
}

static const ucs_rcache_ops_t ops = { reg, dereg, dump };

static void cache_make(int hooks_only)
{
	(void)hooks_only; /* UCX's rcache is hooks only */
	ucs_rcache_params_t p = {
		.region_struct_size = sizeof(ucs_rcache_region_t),
		.alignment = PG, .max_alignment = PG,
		.ucm_events = UCM_EVENT_VM_UNMAPPED, .ucm_event_priority = 1000,
		.ops = &ops, .flags = UCS_RCACHE_FLAG_NO_PFN_CHECK,
		.max_regions = ULONG_MAX, .max_size = SIZE_MAX,
		.max_unreleased = SIZE_MAX,
	};
	if (ucs_rcache_create(&p, "bench", NULL, &cache) != UCS_OK) {
		printf("skip: ucs_rcache_create failed\n");
		exit(77);
	}
}

static void cache_drop(void) { ucs_rcache_destroy(cache); }

static region_t *get(void *p)
{
	region_t *r;
	return ucs_rcache_get(cache, p, PG, PROT_READ | PROT_WRITE, NULL, &r) ==
	       UCS_OK ? r : NULL;
}

static void put(region_t *r) { ucs_rcache_region_put(cache, r); }
#else
static int reg(void *ctx, struct mn_rcache_region *r)
{
	(void)ctx; (void)r;
	return 0;
}

static void dereg(void *ctx, struct mn_rcache_region *r)
{
	(void)ctx; (void)r;
}

static void cache_make(int hooks_only)
{
	struct mn_rcache_opts o = { .sz = sizeof(o), .reg = reg, .dereg = dereg,
				    .flags = hooks_only ? MN_RCACHE_NO_USERFAULTFD : 0 };

	if (mn_rcache_create(&o, &cache) != 0)
		exit(1);
}

static void cache_drop(void) { mn_rcache_destroy(cache); }

static region_t *get(void *p)
{
	region_t *r;
	return mn_rcache_get(cache, p, PG, PROT_READ | PROT_WRITE, &r) == 0 ? r : NULL;
}

static void put(region_t *r) { mn_rcache_put(cache, r); }
#endif

static char *base;

/* Both caches drop the regions invalidated so far at their next get: one
   get and put of a page the invalidation left mapped. */
static void flush(void)
{
	region_t *r = get(base + PG);

	if (r)
		put(r);
}

struct hit_arg {
	size_t n, iters;
	unsigned int seed;
	double ns;
};

static void *hit_loop(void *arg)
{
	struct hit_arg *a = arg;
	uint64_t t = now_ns();

	for (size_t i = 0; i < a->iters; i++) {
		size_t k = (size_t)rand_r(&a->seed) % a->n;
		region_t *r = get(base + 2 * k * PG);
		if (r)
			put(r);
	}
	a->ns = (double)(now_ns() - t) / (double)a->iters;
	return NULL;
}

static double hits(size_t n, int threads)
{
	struct hit_arg a[2] = { { n, 400000, 1, 0 }, { n, 400000, 2, 0 } };
	pthread_t t[2];
	double sum = 0;

	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, hit_loop, &a[i]);
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		sum += a[i].ns;
	}
	return sum / threads;
}

/* Regions on the even pages from..to of @at: the miss cost per region. */
static double fill(char *at, size_t from, size_t to)
{
	uint64_t t = now_ns();

	for (size_t k = from; k < to; k++) {
		region_t *r = get(at + 2 * k * PG);
		if (r)
			put(r);
	}
	return (double)(now_ns() - t) / (double)(to - from);
}

/* Regions unmapped by invalidate(): each unmap leaves a hole, and the
   process may hold at most vm.max_map_count (65,530 by default) mappings;
   past that munmap fails with ENOMEM and the figure would time failures. */
#define INVAL_N 20000

static char *bare, *cached; /* map_pair() */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* @d[k] from pair(..., k & 1): the mean of the two orders' medians (the
   first call of a pair may cost more, whichever it is). */
static double pair_median(const int64_t *d, size_t n)
{
	static int64_t h[2][INVAL_N / 2 + 1];
	size_t m[2] = { 0, 0 };

	for (size_t k = 0; k < n; k++)
		h[k & 1][m[k & 1]++] = d[k];
	qsort(h[0], m[0], sizeof(h[0][0]), cmp_i64);
	qsort(h[1], m[1], sizeof(h[1][0]), cmp_i64);
	return ((double)h[0][m[0] / 2] + (double)h[1][m[1] / 2]) / 2;
}

/* munmap of the page @cached_pg minus munmap of the page @bare_pg, ns, timed
   side by side; which goes first alternates (@cached_first). */
static int64_t pair(char *bare_pg, char *cached_pg, int cached_first)
{
	uint64_t t0, t1, t2;
	char *first = cached_first ? cached_pg : bare_pg;
	char *second = cached_first ? bare_pg : cached_pg;

	t0 = now_ns();
	munmap(first, PG);
	t1 = now_ns();
	munmap(second, PG);
	t2 = now_ns();
	return cached_first ? (int64_t)(t1 - t0) - (int64_t)(t2 - t1)
			    : (int64_t)(t2 - t1) - (int64_t)(t1 - t0);
}

/* ns per region: munmap of a cached page less munmap of a bare one,
   timed side by side so that the machine's noise cancels (pair_median),
   plus the next get's share (it drops them all).  @pfx names the lines
   printed with the two parts. */
static double invalidate(size_t n, const char *pfx)
{
	static int64_t d[INVAL_N];
	uint64_t t0, drop;

	n = n < INVAL_N ? n : INVAL_N;
	for (size_t k = 0; k < n; k++)
		d[k] = pair(bare + 2 * k * PG, cached + 2 * k * PG, k & 1);
	t0 = now_ns();
	flush();
	drop = now_ns() - t0;
	double unmap = pair_median(d, n);
	printf("%s_unmap_ns %.1f\n", pfx, unmap);
	printf("%s_next_get_ns %.1f\n", pfx, (double)drop / (double)n);
	return unmap + (double)drop / (double)n;
}

/* An uncached page of a mapping that holds cached ones (the safety net
   registers whole mappings): ns per munmap above a bare one (the odd
   pages of the pair). */
#define NEIGH_N 2000

static double unmap_neighbour(void)
{
	static int64_t d[NEIGH_N];

	for (size_t k = 0; k < NEIGH_N; k++)
		d[k] = pair(bare + (2 * k + 1) * PG, cached + (2 * k + 1) * PG, k & 1);
	return pair_median(d, NEIGH_N);
}

/* The pages for the hit, miss and memory figures. */
static void map_base(void)
{
	base = mmap(NULL, 2 * MAXN * PG, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		exit(1);
	madvise(base, 2 * MAXN * PG, MADV_NOHUGEPAGE);
	for (size_t k = 0; k < 2 * MAXN; k++)
		base[k * PG] = 1; /* faulted in before any RSS is taken */
}

/* For the invalidation figures: two mappings of the same size made and
   faulted in together (the same state of pages, TLB and mapping tree),
   a PROT_NONE page between them, no transparent huge pages; the cached
   one gets a region on each even page. */
#define PAIR_PAGES (2 * INVAL_N)

static void map_pair(void)
{
	char *all = mmap(NULL, (2 * PAIR_PAGES + 1) * PG, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (all == MAP_FAILED)
		exit(1);
	madvise(all, (2 * PAIR_PAGES + 1) * PG, MADV_NOHUGEPAGE);
	bare = all;
	mprotect(all + PAIR_PAGES * PG, PG, PROT_NONE);
	cached = all + (PAIR_PAGES + 1) * PG;
	for (size_t k = 0; k < PAIR_PAGES; k++) {
		bare[k * PG] = 1;
		cached[k * PG] = 1;
	}
	fill(cached, 0, INVAL_N);
}

static void unmap_pair(void)
{
	munmap(bare, (2 * PAIR_PAGES + 1) * PG);
}

/* Without the userfaultfd safety net (mn_rcache's MN_RCACHE_NO_USERFAULTFD):
   hooked calls only, as UCX's; in a process of its own (no thread or
   registration left by the other figures), for both caches. */
static int measure_hooks_only(void)
{
	map_base();
	cache_make(1);
	fill(base, 0, MAXN);
	map_pair();
	printf("invalidate_ns_per_region_hooks_only %.1f\n",
	       invalidate(MAXN, "invalidate_hooks_only"));
	unmap_pair();
	cache_drop();
	return 0;
}

/*
 * The figures beside watch_scale's: N regions (N = 1,000, 10,000, 100,000),
 * one on each even page of a fresh mapping, in a fresh cache.  Insert: get
 * of a new region + put, ns per region.  Invalidate: one munmap of the
 * mapping that holds all N, and the next get (which drops them), ns per
 * region above the munmap of a bare mapping of the same size made with it.
 */
static char *map_plain(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		exit(1);
	madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

static int measure_scale(void)
{
	static const size_t ns[] = { 1000, 10000, MAXN };

	base = map_plain(2 * PG); /* flush()'s page */
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		size_t n = ns[i], len = 2 * n * PG;
		char *c = map_plain(len), *b = map_plain(len);
		cache_make(0);
		printf("region_insert_ns_%zu %.1f\n", n, fill(c, 0, n));
		uint64_t t0 = now_ns();
		munmap(b, len);
		uint64_t t1 = now_ns();
		munmap(c, len);
		flush();
		uint64_t t2 = now_ns();
		printf("region_invalidate_ns_%zu %.1f\n", n,
		       ((double)(t2 - t1) - (double)(t1 - t0)) / (double)n);
		cache_drop();
	}
	munmap(base, 2 * PG);
	return 0;
}

static int measure(void)
{
	static const size_t ns[] = { 1, 1000, MAXN };
	double miss = 0;
	long rss0, rss1;

	map_base();
	cache_make(0);
	rss0 = rss_bytes();
	size_t have = 0;
	for (size_t i = 0; i < 3; i++) {
		double m = fill(base, have, ns[i]);
		if (ns[i] == MAXN)
			miss = m;
		have = ns[i];
		printf("hit_ns_%zu_1t %.1f\n", ns[i], hits(ns[i], 1));
		printf("hit_ns_%zu_2t %.1f\n", ns[i], hits(ns[i], 2));
	}
	rss1 = rss_bytes();
	printf("miss_register_put_ns %.1f\n", miss);
	printf("bytes_per_region %.1f\n", (double)(rss1 - rss0) / MAXN);
	map_pair();
	printf("unmap_uncached_neighbour_ns %.1f\n", unmap_neighbour());
	printf("invalidate_ns_per_region %.1f\n", invalidate(MAXN, "invalidate"));
	unmap_pair();
	cache_drop();
	return 0;
}

#ifdef MN_BENCH_UCX
int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--hooks-only"))
		return measure_hooks_only();
	if (argc > 1 && !strcmp(argv[1], "--scale"))
		return measure_scale();
	return measure();
}
#else
#define KEYS 48
struct col {
	char key[KEYS][48];
	double v[KEYS];
	int n;
};

/* Appends the "key value" lines @cmd prints to @c. */
static int run_col(const char *cmd, struct col *c)
{
	FILE *f = popen(cmd, "r");
	char line[256];

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f) && c->n < KEYS)
		if (sscanf(line, "%47s %lf", c->key[c->n], &c->v[c->n]) == 2)
			c->n++;
	return pclose(f);
}

static bool find(const struct col *c, const char *key, double *v)
{
	for (int i = 0; i < c->n; i++)
		if (!strcmp(c->key[i], key)) {
			*v = c->v[i];
			return true;
		}
	return false;
}

int main(int argc, char **argv)
{
	char self[4096], cmd[4200];
	struct col mn, ucx;
	ssize_t len;

	if (argc > 1 && !strcmp(argv[1], "--raw"))
		return measure();
	if (argc > 1 && !strcmp(argv[1], "--hooks-only"))
		return measure_hooks_only();
	if (argc > 1 && !strcmp(argv[1], "--scale"))
		return measure_scale();
	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len <= 0)
		return 1;
	self[len] = 0;
	mn.n = ucx.n = 0;
	snprintf(cmd, sizeof(cmd), "'%s' --raw", self);
	if (run_col(cmd, &mn) != 0 || mn.n == 0) {
		printf("rcache: the memnotify run failed\n");
		return 1;
	}
	snprintf(cmd, sizeof(cmd), "'%s' --hooks-only", self);
	if (run_col(cmd, &mn) != 0) {
		printf("rcache: the memnotify hooks-only run failed\n");
		return 1;
	}
	snprintf(cmd, sizeof(cmd), "'%s' --scale", self);
	if (run_col(cmd, &mn) != 0) {
		printf("rcache: the memnotify scale run failed\n");
		return 1;
	}
	snprintf(cmd, sizeof(cmd), "'%s_ucx' 2>/dev/null", self);
	if (run_col(cmd, &ucx) != 0)
		ucx.n = 0;
	snprintf(cmd, sizeof(cmd), "'%s_ucx' --hooks-only 2>/dev/null", self);
	if (ucx.n && run_col(cmd, &ucx) != 0)
		ucx.n = 0;
	snprintf(cmd, sizeof(cmd), "'%s_ucx' --scale 2>/dev/null", self);
	if (ucx.n && run_col(cmd, &ucx) != 0)
		ucx.n = 0;
	printf("rcache: mn_rcache vs UCX ucs_rcache (1.13, Debian libucx-dev), same run, lower is better\n");
	printf("  %-36s %14s %14s %8s\n", "figure", "mn_rcache", "ucs_rcache", "mn/ucx");
	for (int i = 0; i < mn.n; i++) {
		double u;
		bool have = find(&ucx, mn.key[i], &u);
		/* A difference can be 0 or below (noise around nothing): no
		   ratio then. */
		if (have && u > 0 && mn.v[i] > 0)
			printf("  %-36s %14.1f %14.1f %8.2f\n", mn.key[i], mn.v[i], u,
			       mn.v[i] / u);
		else if (have)
			printf("  %-36s %14.1f %14.1f %8s\n", mn.key[i], mn.v[i], u, "-");
		else
			printf("  %-36s %14.1f %14s %8s\n", mn.key[i], mn.v[i], "n/a", "");
	}
	if (!ucx.n)
		printf("  (UCX not built or failed: rcache_ucx)\n");
	return 0;
}
#endif
