/* SPDX-License-Identifier: MIT */
/*
 * slow_subscriber — how long does a subscriber whose callback takes 3 s
 * hold up another subscriber's memory-level deliveries?  (Issue: with one
 * dispatcher running every callback in turn, 3,000 ms, and a whole HIGH
 * episode reached nobody.)
 *
 * Setup: a child memory cgroup with a 256 MiB hard limit (tests/helpers.c)
 * and, per ramp, a child that touches 240 MiB inside it in 8 MiB steps 2 ms
 * apart; once the fast subscriber hears LOW the hog is killed and it waits
 * for HIGH.  RAMPS ramps in each of two configurations, same run:
 *  - baseline: the fast subscriber alone;
 *  - slow: a subscriber whose callback sleeps 3 s on every call, subscribed
 *    first (it is first in the monitor's chain), plus the fast one.
 * Figure: the fast subscriber's delay per call (its INITIAL one included:
 * there the slow callback has just taken the only delivery thread, so it
 * shows what starting another one costs), from the sample's
 * time (st->time_usec, CLOCK_REALTIME, taken on the dispatcher) to the
 * callback; median, 95th percentile and maximum per configuration, and the
 * slow configuration's median over the baseline's.  Also: the slow
 * subscriber's calls and the changes folded into them (skipped_changes,
 * mn_stats events_coalesced).
 *
 * Exit: 0 when it ran (the figures are informational), 77 when it cannot
 * run here (no memory cgroup can be made), 1 when it failed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "memnotify.h"

#define MiB (1024ull * 1024)
#define RAMPS 6
#define MAXD 256
#define SLOW_SLEEP_US 3000000u

struct fast {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum mn_memory_level level;
	uint64_t delay[MAXD];
	int n;
};

struct slow {
	_Atomic int calls;
	_Atomic uint64_t skipped;
};

static uint64_t real_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void on_fast(const struct mn_memory_status *st, void *ctx)
{
	struct fast *f = ctx;
	uint64_t now = real_usec();

	pthread_mutex_lock(&f->lock);
	if (f->n < MAXD)
		f->delay[f->n++] = now > st->time_usec ? now - st->time_usec : 0;
	f->level = st->level;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

static void on_slow(const struct mn_memory_status *st, void *ctx)
{
	struct slow *s = ctx;

	s->calls++;
	s->skipped += st->skipped_changes;
	usleep(SLOW_SLEEP_US);
}

static int wait_level(struct fast *f, enum mn_memory_level want)
{
	struct timespec ts;
	int ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 20;
	pthread_mutex_lock(&f->lock);
	while (f->level != want)
		if (pthread_cond_timedwait(&f->cond, &f->lock, &ts))
			break;
	ok = f->level == want;
	pthread_mutex_unlock(&f->lock);
	return ok ? 0 : -1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Run the ramps; fill @f's delays.  Returns 0 or -1. */
static int run(const char *cg, bool with_slow, struct fast *f, struct slow *s)
{
	MN_OPTS(mn_memory_opts, o, .cgroup = cg);
	mn_sub *fs = NULL, *ss = NULL;
	int err = 0;

	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	if (with_slow && mn_memory_subscribe(&o, on_slow, s, &ss))
		return -1;
	if (mn_memory_subscribe(&o, on_fast, f, &fs) ||
	    wait_level(f, MN_MEMORY_HIGH)) {
		err = -1;
		goto out;
	}
	for (int r = 0; r < RAMPS && !err; r++) {
		pid_t hog = mn_test_hog_start(cg, 240 * MiB, 8 * MiB, 2000, -1);
		if (hog <= 0)
			return -1;
		err = wait_level(f, MN_MEMORY_LOW);
		mn_test_hog_stop(hog);
		if (!err)
			err = wait_level(f, MN_MEMORY_HIGH);
	}
out:
	if (fs)
		mn_unsubscribe(fs);
	if (ss)
		mn_unsubscribe(ss); /* waits for its callback to return */
	return err;
}

static void report(const char *name, struct fast *f, uint64_t *median)
{
	qsort(f->delay, (size_t)f->n, sizeof(f->delay[0]), cmp_u64);
	*median = f->n ? f->delay[f->n / 2] : 0;
	printf("%-26s %3d calls  median %7.2f ms  p95 %7.2f ms  max %7.2f ms\n",
	       name, f->n, *median / 1000.0,
	       f->n ? f->delay[(f->n * 95) / 100 < f->n ? (f->n * 95) / 100
							: f->n - 1] / 1000.0
		    : 0.0,
	       f->n ? f->delay[f->n - 1] / 1000.0 : 0.0);
}

int main(void)
{
	char cg[512], why[256];
	struct fast base, slowcfg;
	struct slow s = { 0 };
	struct mn_stats s0 = { .sz = sizeof(s0) }, s1 = { .sz = sizeof(s1) };
	uint64_t m0, m1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (mn_test_cgroup_create(256 * MiB, cg, sizeof(cg), why, sizeof(why))) {
		printf("skip: %s\n", why);
		return 77;
	}
	printf("fast subscriber's delay, sample to callback, %d LOW/HIGH "
	       "ramps of a 256 MiB group\n", RAMPS);
	if (run(cg, false, &base, NULL)) {
		fprintf(stderr, "slow_subscriber: baseline ramps failed\n");
		goto fail;
	}
	report("baseline (fast alone)", &base, &m0);
	mn_stats(&s0);
	if (run(cg, true, &slowcfg, &s)) {
		fprintf(stderr, "slow_subscriber: ramps with a slow subscriber failed\n");
		goto fail;
	}
	mn_stats(&s1);
	report("with a 3 s subscriber", &slowcfg, &m1);
	printf("ratio of medians (slow / baseline): %.2f; target: delay <= 50 ms\n",
	       m0 ? (double)m1 / (double)m0 : 0.0);
	printf("slow subscriber: %d calls, %llu changes folded into them "
	       "(mn_stats events_coalesced +%llu)\n",
	       (int)s.calls, (unsigned long long)s.skipped,
	       (unsigned long long)(s1.events_coalesced - s0.events_coalesced));
	mn_shutdown();
	mn_test_cgroup_destroy(cg);
	return 0;
fail:
	mn_test_cgroup_destroy(cg);
	return 1;
}
