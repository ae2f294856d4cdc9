/* SPDX-License-Identifier: MIT */
/*
 * subscribe_scale — what N memory-level subscriptions to one group cost.
 *
 * For N = 1,000, 10,000 and 20,000 subscriptions of the process's own
 * group (default options): the time to subscribe all N, the time until
 * every one has had its first delivery, and the time to unsubscribe all N,
 * each per subscription.  The baseline, measured in the same run, is the
 * per-subscription cost at N = 1,000: with O(N) work in all the ratios stay
 * near 1; the O(N^2) design this replaced (each subscription copied the
 * chain and each first delivery walked it) took 5.8 s for 20,000.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "memnotify.h"

static _Atomic long initial_seen;

static void count_initial(const struct mn_memory_status *st, void *ctx)
{
	(void)ctx;
	if (st->reason == MN_MEMORY_INITIAL)
		atomic_fetch_add(&initial_seen, 1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct cost {
	double sub, first, unsub; /* seconds in all */
};

static int run(int n, struct cost *c)
{
	mn_sub **subs = calloc((size_t)n, sizeof(*subs));
	double t0, t1;
	int err = 0;

	if (!subs)
		return -ENOMEM;
	atomic_store(&initial_seen, 0);
	t0 = now_s();
	for (int i = 0; i < n && !err; i++)
		err = mn_memory_subscribe(NULL, count_initial, NULL, &subs[i]);
	t1 = now_s();
	c->sub = t1 - t0;
	/* Bounded: 60 s for the first deliveries. */
	while (!err && atomic_load(&initial_seen) < n && now_s() - t1 < 60) {
		struct timespec ts = { 0, 200000 };
		nanosleep(&ts, NULL);
	}
	c->first = now_s() - t0;
	if (!err && atomic_load(&initial_seen) < n) {
		printf("only %ld of %d first deliveries within 60 s\n",
		       atomic_load(&initial_seen), n);
		err = -ETIMEDOUT;
	}
	t0 = now_s();
	for (int i = 0; i < n; i++)
		if (subs[i])
			mn_unsubscribe(subs[i]);
	c->unsub = now_s() - t0;
	free(subs);
	return err;
}

int main(void)
{
	static const int ns[] = { 1000, 10000, 20000 };
	struct cost base = { 0 }, c;
	int err;

	printf("%-8s %14s %14s %14s  %s\n", "N", "subscribe", "first delivery",
	       "unsubscribe", "(us per subscription; x = against N=1000)");
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		if ((err = run(ns[i], &c))) {
			printf("N=%d: %s\n", ns[i], mn_strerror(err));
			return 1;
		}
		double k = 1e6 / ns[i];
		if (i == 0)
			base = (struct cost){ c.sub * k, c.first * k, c.unsub * k };
		printf("%-8d %7.1f (%4.2fx) %7.1f (%4.2fx) %7.1f (%4.2fx)   %.2f s in all\n",
		       ns[i], c.sub * k, c.sub * k / base.sub, c.first * k,
		       c.first * k / base.first, c.unsub * k,
		       c.unsub * k / base.unsub, c.first + c.unsub);
	}
	mn_shutdown();
	return 0;
}
