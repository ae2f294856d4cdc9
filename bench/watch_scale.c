/* SPDX-License-Identifier: MIT */
/*
 * bench/watch_scale: what a watch costs as their number grows.
 *   watch / unwatch  mn_vm_watch() and mn_unsubscribe() of N ranges of
 *                    4 KiB, one page apart (the userfaultfd safety net on,
 *                    the default), N = 1,000, 10,000 and 100,000: total
 *                    time, time per call, and the process's mappings
 *                    (vm.max_map_count bounds them) while all are watched
 *   hook path        with 100,000 ranges watched, the median cost of a
 *                    hooked mprotect() and madvise(MADV_DONTNEED) of an
 *                    unwatched page against the same system call made raw
 *                    (syscall(2), no hook), in this one run
 *   UCX              beside each N, UCX's region insert and invalidate
 *                    per region at the same N (ucs_rcache, what a range
 *                    watch stands for in it), run as `rcache_ucx --scale`
 *                    of this build (see bench/rcache.c), same run
 * Goals: 100,000 watches registered and removed in under 1 s each; the
 * hook path within 1.10x of the raw call.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "memnotify.h"

#define PG 4096
#define SAMPLES 20001

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void cb(const struct mn_vm_event *ev, void *ctx)
{
	(void)ev;
	(void)ctx;
}

static long maps_count(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	long n = 0;
	int c;

	if (!f)
		return -1;
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static uint64_t samples[SAMPLES];

/* Median ns of one mprotect (hooked or raw) of @p. */
static double mprotect_median(char *p, int raw)
{
	for (int i = 0; i < SAMPLES; i++) {
		int prot = (i & 1) ? PROT_READ : PROT_READ | PROT_WRITE;
		uint64_t t = now_ns();
		if (raw)
			syscall(SYS_mprotect, p, PG, prot);
		else
			mprotect(p, PG, prot);
		samples[i] = now_ns() - t;
	}
	qsort(samples, SAMPLES, sizeof(samples[0]), cmp);
	return (double)samples[SAMPLES / 2];
}

static double madvise_median(char *p, int raw)
{
	for (int i = 0; i < SAMPLES; i++) {
		p[0] = 1;
		uint64_t t = now_ns();
		if (raw)
			syscall(SYS_madvise, p, PG, MADV_DONTNEED);
		else
			madvise(p, PG, MADV_DONTNEED);
		samples[i] = now_ns() - t;
	}
	qsort(samples, SAMPLES, sizeof(samples[0]), cmp);
	return (double)samples[SAMPLES / 2];
}

static void hook_path(void)
{
	char *p = mmap(NULL, PG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	double raw, hooked;

	if (p == MAP_FAILED)
		return;
	/* Interleave raw and hooked rounds: the machine's drift hits both. */
	raw = mprotect_median(p, 1);
	hooked = mprotect_median(p, 0);
	raw = (raw + mprotect_median(p, 1)) / 2;
	printf("  hook path, 100,000 watched: mprotect %.0f ns vs raw %.0f ns: %.2fx (goal <= 1.10x)\n",
	       hooked, raw, hooked / raw);
	raw = madvise_median(p, 1);
	hooked = madvise_median(p, 0);
	raw = (raw + madvise_median(p, 1)) / 2;
	printf("  hook path, 100,000 watched: madvise(DONTNEED) %.0f ns vs raw %.0f ns: %.2fx (goal <= 1.10x)\n",
	       hooked, raw, hooked / raw);
	munmap(p, PG);
}

/* UCX's figures from `rcache_ucx --scale` beside this program: "key ns"
   lines, looked up by find_ucx(); none when UCX was not built. */
static char ucx_out[2048];

static void run_ucx(void)
{
	char self[PATH_MAX], cmd[PATH_MAX + 64];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	FILE *f;

	if (len <= 0)
		return;
	self[len] = 0;
	*strrchr(self, '/') = 0;
	snprintf(cmd, sizeof(cmd), "'%s/rcache_ucx' --scale 2>/dev/null", self);
	if (!(f = popen(cmd, "r")))
		return;
	len = (ssize_t)fread(ucx_out, 1, sizeof(ucx_out) - 1, f);
	ucx_out[len > 0 ? len : 0] = 0;
	if (pclose(f) != 0)
		ucx_out[0] = 0;
}

static double find_ucx(const char *what, size_t n)
{
	char key[64];
	const char *p;

	snprintf(key, sizeof(key), "region_%s_ns_%zu ", what, n);
	p = strstr(ucx_out, key);
	return p ? strtod(p + strlen(key), NULL) : -1;
}

static void print_ucx(size_t n)
{
	double ins = find_ucx("insert", n), inv = find_ucx("invalidate", n);

	if (ins < 0 || inv < 0)
		printf("  %7zu regions: UCX ucs_rcache not built (rcache_ucx)\n", n);
	else
		printf("  %7zu regions: UCX ucs_rcache insert %6.2f us/region, "
		       "invalidate %6.2f us/region (one munmap of them all)\n",
		       n, ins / 1e3, inv / 1e3);
}

static int run(size_t n)
{
	char *base = mmap(NULL, 2 * n * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	mn_sub **subs = calloc(n, sizeof(*subs));
	uint64_t t0, t1, t2;
	long maps;

	if (base == MAP_FAILED || !subs)
		return -1;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		int err = mn_vm_watch(base + 2 * i * PG, PG, 0, cb, NULL, &subs[i]);
		if (err) {
			printf("  %zu watches: mn_vm_watch #%zu failed: %d\n", n, i + 1, err);
			return -1;
		}
	}
	t1 = now_ns();
	maps = maps_count();
	if (n == 100000)
		hook_path();
	t2 = now_ns();
	for (size_t i = 0; i < n; i++)
		mn_unsubscribe(subs[i]);
	uint64_t t3 = now_ns();
	printf("  %7zu watches: watch %8.1f ms (%6.2f us/call)  unwatch %8.1f ms (%6.2f us/call)  mappings while watched %ld\n",
	       n, (t1 - t0) / 1e6, (t1 - t0) / 1e3 / (double)n, (t3 - t2) / 1e6,
	       (t3 - t2) / 1e3 / (double)n, maps);
	print_ucx(n);
	munmap(base, 2 * n * PG);
	free(subs);
	return 0;
}

int main(void)
{
	static const size_t ns[] = { 1000, 10000, 100000 };
	int rc = 0;

	run_ucx();
	printf("watch_scale: 4 KiB ranges one page apart, userfaultfd safety net on\n");
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		rc |= run(ns[i]) != 0;
	mn_shutdown();
	return rc;
}
