/* SPDX-License-Identifier: MIT */
/*
 * mn_rcache under concurrency: two threads get and put regions of eight
 * buffers (lock-free hits) while a third changes the buffers — munmap +
 * mmap, madvise(DONTNEED), and mprotect from inside a signal handler (the
 * invalidation runs there) — and a fourth adds and removes unrelated
 * watches (the index changing under the hooks' lookups).  A generation
 * per buffer is the truth: no get may return a region registered before
 * the last completed change of its buffer.  One registration in four
 * fails, and the hitters ask for one or two pages (a two-page get replaces
 * the one-page region, maybe while it is still registering): every region
 * registered is deregistered exactly once, a failed one never.  The cache
 * is MN_RCACHE_BACKGROUND: the dispatcher drops invalidated regions too,
 * against the hitters' own drops.  At the end the cache must be
 * destroyable (no reference leaked) and no event lost.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memnotify.h"
#include "stress.h"

#define PG 4096ul
#define NB 8

static char *area;
static _Atomic unsigned int gen[NB]; /* odd while buffer i changes */
static _Atomic int stop, sig_buf;
static _Atomic unsigned long stale, gets;
static mn_rcache *cache;

static char *bufp(int i)
{
	return area + (size_t)i * 2 * PG;
}

static int buf_of(uint64_t a)
{
	return (int)((a - (uint64_t)(uintptr_t)area) / (2 * PG));
}

static _Atomic unsigned long n_reg, n_fail, n_dereg, n_bad_dereg;

static int reg(void *ctx, struct mn_rcache_region *r)
{
	(void)ctx;
	if (atomic_fetch_add(&n_reg, 1) % 4 == 3) {
		atomic_fetch_add(&n_fail, 1);
		r->handle = NULL;
		return -EPERM;
	}
	/* gen + 1: never NULL, so a deregistration of a failed one shows. */
	r->handle = (void *)(uintptr_t)(atomic_load(&gen[buf_of(r->start)]) + 1);
	return 0;
}

static void dereg(void *ctx, struct mn_rcache_region *r)
{
	(void)ctx;
	if (!r->handle)
		atomic_fetch_add(&n_bad_dereg, 1);
	atomic_fetch_add(&n_dereg, 1);
}

static void *hitter(void *arg)
{
	unsigned int seed = (unsigned int)(uintptr_t)arg;

	while (!atomic_load(&stop)) {
		int b = rand_r(&seed) % NB;
		unsigned int g0 = atomic_load(&gen[b]);
		struct mn_rcache_region *r;
		if (g0 & 1)
			continue;
		size_t len = rand_r(&seed) % 2 ? 2 * PG : PG;
		if (mn_rcache_get(cache, bufp(b), len, PROT_READ | PROT_WRITE, &r) != 0)
			continue;
		unsigned int h = (unsigned int)(uintptr_t)r->handle - 1;
		if (h + (h & 1) < g0)
			atomic_fetch_add(&stale, 1);
		atomic_fetch_add(&gets, 1);
		mn_rcache_put(cache, r);
	}
	return NULL;
}

/* The invalidation runs in this handler (mprotect's hook). */
static void on_usr1(int sig)
{
	char *p = bufp(atomic_load(&sig_buf));

	(void)sig;
	mprotect(p, PG, PROT_READ);
	mprotect(p, PG, PROT_READ | PROT_WRITE);
}

static void *changer(void *arg)
{
	unsigned int seed = 99;

	(void)arg;
	while (!atomic_load(&stop)) {
		int b = rand_r(&seed) % NB, k = rand_r(&seed) % 3;
		char *p = bufp(b);
		atomic_fetch_add(&gen[b], 1);
		if (k == 0) {
			munmap(p, PG);
			mmap(p, PG, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		} else if (k == 1) {
			madvise(p, PG, MADV_DONTNEED);
		} else {
			atomic_store(&sig_buf, b);
			raise(SIGUSR1);
		}
		atomic_fetch_add(&gen[b], 1);
		usleep(200);
	}
	return NULL;
}

static void nop_cb(const struct mn_vm_event *ev, void *ctx)
{
	(void)ev;
	(void)ctx;
}

static void *churner(void *arg)
{
	char *p = stress_anon(64 * PG);
	mn_sub *subs[64] = { 0 };
	unsigned int seed = 5;

	(void)arg;
	while (p && !atomic_load(&stop)) {
		int i = rand_r(&seed) % 64;
		if (subs[i]) {
			mn_unsubscribe(subs[i]);
			subs[i] = NULL;
		} else {
			mn_vm_watch(p + (size_t)i * PG, PG, MN_VM_NO_USERFAULTFD, nop_cb,
				    NULL, &subs[i]);
		}
	}
	for (int i = 0; i < 64; i++)
		if (subs[i])
			mn_unsubscribe(subs[i]);
	return NULL;
}

int main(void)
{
	struct mn_rcache_opts o = { .sz = sizeof(o), .reg = reg, .dereg = dereg,
				    .flags = MN_RCACHE_BACKGROUND };
	struct mn_stats st = { .sz = sizeof(st) };
	pthread_t t[4];
	uint64_t lost0;

	signal(SIGUSR1, on_usr1);
	area = stress_anon(2 * NB * PG);
	stress_check(area != NULL, "mmap");
	stress_check(mn_rcache_create(&o, &cache) == 0, "mn_rcache_create");
	mn_stats(&st);
	lost0 = st.events_lost;
	pthread_create(&t[0], NULL, hitter, (void *)1);
	pthread_create(&t[1], NULL, hitter, (void *)2);
	pthread_create(&t[2], NULL, changer, NULL);
	pthread_create(&t[3], NULL, churner, NULL);
	while (stress_running())
		usleep(10000);
	atomic_store(&stop, 1);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	printf("stress_rcache: %lu gets, %lu stale\n", atomic_load(&gets),
	       atomic_load(&stale));
	stress_check(atomic_load(&stale) == 0, "no stale hit");
	stress_check(atomic_load(&gets) > 0, "some gets");
	stress_check(mn_rcache_destroy(cache) == 0, "destroy: no reference left");
	printf("stress_rcache: %lu registrations, %lu failed, %lu deregistrations\n",
	       atomic_load(&n_reg), atomic_load(&n_fail), atomic_load(&n_dereg));
	stress_check(atomic_load(&n_fail) > 0, "some registrations failed");
	stress_check(atomic_load(&n_bad_dereg) == 0, "no failed one deregistered");
	stress_check(atomic_load(&n_dereg) == atomic_load(&n_reg) - atomic_load(&n_fail),
		     "each registered region deregistered once");
	mn_stats(&st);
	stress_check(st.events_lost == lost0, "no event lost");
	return stress_finish("stress_rcache", atomic_load(&gets));
}
