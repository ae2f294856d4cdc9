/* SPDX-License-Identifier: MIT */
/*
 * chain_dispatch — the cost of delivering one event through the core
 * callback chain (src/core/chain.h: walk_begin / walk_next / walk_end, the
 * lock-free reader path every source uses), against calling the very same
 * callbacks through a plain array of function pointers, in the same run.
 *
 * One "dispatch" is one event delivered to every callback: one walk of a
 * chain of N nodes, or one loop over N array slots.  The callback is the
 * same out-of-line function in both (it bumps a counter), so the difference
 * is the chain's bookkeeping: two atomic read-modify-writes on the reader
 * counter, the TLS walk record, the snapshot load and the per-node "dead"
 * check.  Each figure is the best of 5 timings (CLOCK_MONOTONIC), chain and
 * array interleaved; ratio = chain / array.
 *
 * Exit: 0, or 1 if the chain could not be built or a callback count is off.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/chain.h"
#include "core/core.h"

#define MAX_CB 16
#define ROUNDS 5
#define CALLS_PER_TIMING (8u * 1000u * 1000u) /* callback calls per timing */

typedef void (*cb_fn)(void *arg);

struct bnode {
	struct mn__chain_node node;
	cb_fn fn;
	void *arg;
};

static struct mn__chain chain;
static struct bnode nodes[MAX_CB];
static uint64_t counters[MAX_CB];
static cb_fn array_fn[MAX_CB];
static void *array_arg[MAX_CB];

/* The callback both paths call. */
__attribute__((noinline)) static void callback(void *arg)
{
	(*(uint64_t *)arg)++;
	__asm__ __volatile__("" ::: "memory");
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((noinline)) static void dispatch_chain(uint64_t iters)
{
	for (uint64_t i = 0; i < iters; i++) {
		struct mn__chain_reader rd;
		struct mn__chain_node *n;

		mn__chain_walk_begin(&chain, &rd);
		while ((n = mn__chain_walk_next(&rd))) {
			struct bnode *b = mn__container_of(n, struct bnode, node);
			b->fn(b->arg);
		}
		mn__chain_walk_end(&rd);
	}
}

__attribute__((noinline)) static void dispatch_array(uint64_t iters, size_t n)
{
	for (uint64_t i = 0; i < iters; i++) {
		/* Reload the table every time, as a walk reloads the snapshot. */
		__asm__ __volatile__("" ::: "memory");
		for (size_t k = 0; k < n; k++)
			array_fn[k](array_arg[k]);
	}
}

static int add_nodes(size_t from, size_t to)
{
	for (size_t k = from; k < to; k++) {
		struct mn__chain_removal rm;
		int err;

		nodes[k].fn = callback;
		nodes[k].arg = &counters[k];
		nodes[k].node.release = NULL; /* static storage */
		array_fn[k] = callback;
		array_arg[k] = &counters[k];
		mn__lock();
		err = mn__chain_add(&chain, &nodes[k].node, &rm);
		mn__unlock();
		if (err) {
			fprintf(stderr, "chain_dispatch: mn__chain_add: %d\n", err);
			return err;
		}
		mn__chain_finish_remove(&chain, &rm);
	}
	return 0;
}

static uint64_t total_calls(void)
{
	uint64_t sum = 0;

	for (size_t k = 0; k < MAX_CB; k++)
		sum += counters[k];
	return sum;
}

int main(void)
{
	static const size_t sizes[] = { 1, 4, 16 };
	double chain_ns[3], array_ns[3];
	size_t have = 0;
	int rc = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	mn__lock();
	mn__chain_init(&chain, MN__CHAIN_OLDEST_FIRST);
	mn__unlock();

	for (size_t s = 0; s < 3; s++) {
		size_t n = sizes[s];
		uint64_t iters = CALLS_PER_TIMING / n;
		uint64_t best_c = UINT64_MAX, best_a = UINT64_MAX;

		if (add_nodes(have, n)) {
			rc = 1;
			goto out;
		}
		have = n;
		if (mn__chain_count(&chain) != n) {
			fprintf(stderr, "chain_dispatch: chain has %zu nodes, "
				"expected %zu\n", mn__chain_count(&chain), n);
			rc = 1;
			goto out;
		}
		/* Warm up caches and branch predictors. */
		dispatch_chain(iters / 10);
		dispatch_array(iters / 10, n);

		uint64_t before = total_calls();
		for (int r = 0; r < ROUNDS; r++) {
			uint64_t t0 = now_ns();
			dispatch_chain(iters);
			uint64_t t1 = now_ns();
			dispatch_array(iters, n);
			uint64_t t2 = now_ns();
			if (t1 - t0 < best_c)
				best_c = t1 - t0;
			if (t2 - t1 < best_a)
				best_a = t2 - t1;
		}
		/* Both paths must have made every call. */
		if (total_calls() - before != 2ull * ROUNDS * iters * n) {
			fprintf(stderr, "chain_dispatch: %llu callback calls, "
				"expected %llu\n",
				(unsigned long long)(total_calls() - before),
				(unsigned long long)(2ull * ROUNDS * iters * n));
			rc = 1;
			goto out;
		}
		chain_ns[s] = (double)best_c / (double)iters;
		array_ns[s] = (double)best_a / (double)iters;
	}

	printf("chain_dispatch: ns per dispatch (one event to every callback), "
	       "best of %d, %u callback calls per timing\n",
	       ROUNDS, CALLS_PER_TIMING);
	printf("  %9s %10s %10s %8s\n", "callbacks", "chain", "array", "ratio");
	for (size_t s = 0; s < 3; s++)
		printf("  %9zu %10.2f %10.2f %8.2f\n", sizes[s], chain_ns[s],
		       array_ns[s], chain_ns[s] / array_ns[s]);
	printf("\n");
	for (size_t s = 0; s < 3; s++) {
		printf("chain_dispatch.chain_ns_n%zu=%.2f\n", sizes[s], chain_ns[s]);
		printf("chain_dispatch.array_ns_n%zu=%.2f\n", sizes[s], array_ns[s]);
		printf("chain_dispatch.ratio_n%zu=%.2f\n", sizes[s],
		       chain_ns[s] / array_ns[s]);
	}

out:
	for (size_t k = 0; k < have; k++) {
		struct mn__chain_removal rm;

		mn__lock();
		int err = mn__chain_unlink(&chain, &nodes[k].node, &rm);
		mn__unlock();
		if (!err)
			mn__chain_finish_remove(&chain, &rm);
	}
	mn__chain_destroy(&chain);
	return rc;
}
