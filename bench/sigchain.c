/* SPDX-License-Identifier: MIT */
/*
 * bench/sigchain: what the signal chain costs, against a bare sigaction
 * handler measured in the same run, and how fast a bad-memory (AO) SIGBUS
 * reaches a thread-context subscriber.
 *
 * Fault cost: one iteration = mprotect(PROT_NONE) + a store that faults +
 * the handler's mprotect(PROT_READ|PROT_WRITE) + the retried store.  The
 * bare handler does the repair itself; the chain runs N handlers (N - 1
 * decline, the oldest repairs).  Best of 5 interleaved rounds.
 *
 * AO latency: CLOCK_MONOTONIC before mn_badmem_inject() (a real SIGBUS
 * siginfo with BUS_MCEERR_AO queued to this thread) to the subscriber's
 * callback on the dispatcher thread.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "memnotify.h"

#define ITERS 20000
#define ROUNDS 5
#define AO_SAMPLES 1000

static char *page;
static size_t pagesz;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void bare_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	mprotect(page, pagesz, PROT_READ | PROT_WRITE);
}

static int repair(int sig, siginfo_t *si, void *uc, int handled, void *ctx)
{
	(void)sig;
	(void)si;
	(void)uc;
	(void)ctx;
	if (handled)
		return 0;
	mprotect(page, pagesz, PROT_READ | PROT_WRITE);
	return 1;
}

static int decline(int sig, siginfo_t *si, void *uc, int handled, void *ctx)
{
	(void)sig;
	(void)si;
	(void)uc;
	(void)handled;
	(void)ctx;
	return 0;
}

/* ns per faulting iteration. */
static double run_faults(void)
{
	uint64_t t0 = now_ns();

	for (int i = 0; i < ITERS; i++) {
		mprotect(page, pagesz, PROT_NONE);
		((volatile char *)page)[0] = (char)i;
	}
	return (double)(now_ns() - t0) / ITERS;
}

/* Cost with no fault at all, to show what the handler part is. */
static double run_mprotect_only(void)
{
	uint64_t t0 = now_ns();

	for (int i = 0; i < ITERS; i++) {
		mprotect(page, pagesz, PROT_NONE);
		mprotect(page, pagesz, PROT_READ | PROT_WRITE);
		((volatile char *)page)[0] = (char)i;
	}
	return (double)(now_ns() - t0) / ITERS;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static _Atomic uint64_t ao_seen_ns;
static _Atomic int ao_count;

static void on_bad(const struct mn_badmem_event *ev, void *ctx)
{
	(void)ctx;
	if (ev->kind != MN_BADMEM_PAGE || ev->page.scope != MN_BADMEM_PROCESS)
		return;
	atomic_store(&ao_seen_ns, now_ns());
	atomic_fetch_add(&ao_count, 1);
}

int main(void)
{
	static const int ns[] = { 1, 8, 64 };
	double bare = 1e30, chain[3] = { 1e30, 1e30, 1e30 }, base = 1e30;
	struct sigaction sa;
	mn_sub *subs[64];
	int err;

	pagesz = (size_t)sysconf(_SC_PAGESIZE);
	page = mmap(NULL, pagesz, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		return 1;

	/* Bare handler first: once memnotify chains SIGSEGV it keeps it. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = bare_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, NULL) < 0)
		return 1;
	for (int r = 0; r < ROUNDS; r++) {
		double b = run_faults(), m = run_mprotect_only();
		if (b < bare)
			bare = b;
		if (m < base)
			base = m;
	}

	/* The chain with 1, 8 and 64 handlers; rounds interleaved. */
	for (int r = 0; r < ROUNDS; r++) {
		for (int k = 0; k < 3; k++) {
			int n = 0;
			if ((err = mn_signal_register(SIGSEGV, repair, NULL, &subs[n++]))) {
				fprintf(stderr, "sigchain: register: %s\n", mn_strerror(err));
				return 1;
			}
			while (n < ns[k])
				if (mn_signal_register(SIGSEGV, decline, NULL, &subs[n++]))
					return 1;
			double t = run_faults();
			if (t < chain[k])
				chain[k] = t;
			while (n > 0)
				mn_unsubscribe(subs[--n]);
		}
	}

	/* AO latency. */
	MN_OPTS(mn_badmem_opts, o, .flags = MN_BADMEM_NO_SYSTEM);
	mn_sub *bad;
	uint64_t lat[AO_SAMPLES];
	int got = 0, missed = 0;
	if ((err = mn_badmem_subscribe(&o, on_bad, NULL, &bad))) {
		fprintf(stderr, "sigchain: badmem: %s\n", mn_strerror(err));
		return 1;
	}
	usleep(50000); /* let the subscription's first pass run */
	for (int i = 0; i < AO_SAMPLES; i++) {
		int before = atomic_load(&ao_count);
		/* Distinct pages: the table records each range once. */
		void *addr = (void *)(uintptr_t)(0x200000000000ull + (uint64_t)i * 4096);
		uint64_t t0 = now_ns();
		mn_badmem_inject(0, addr, 12, 0);
		uint64_t deadline = t0 + 1000000000ull;
		while (atomic_load(&ao_count) == before && now_ns() < deadline)
			;
		if (atomic_load(&ao_count) == before) {
			missed++;
			continue;
		}
		lat[got++] = atomic_load(&ao_seen_ns) - t0;
	}
	mn_unsubscribe(bad);
	qsort(lat, (size_t)got, sizeof(lat[0]), cmp_u64);
	double p50 = got ? (double)lat[got / 2] / 1000.0 : -1;
	double p99 = got ? (double)lat[(got * 99) / 100 - (got >= 100 ? 1 : 0)] / 1000.0 : -1;

	printf("sigchain: delivered-and-handled SIGSEGV (mprotect + fault + repair), "
	       "ns per fault, best of %d x %d\n", ROUNDS, ITERS);
	printf("  %-28s %10.1f\n", "no fault (2 x mprotect)", base);
	printf("  %-28s %10.1f  1.00\n", "bare sigaction handler", bare);
	for (int k = 0; k < 3; k++)
		printf("  chain, %2d handler(s)        %10.1f  %.3f\n", ns[k],
		       chain[k], chain[k] / bare);
	printf("  target: chain with 1 handler within 1.10x of bare: %s\n",
	       chain[0] / bare <= 1.10 ? "PASS" : "MISS");
	printf("\nAO SIGBUS to thread-context callback: %d samples, %d missed\n",
	       got, missed);
	printf("  p50 %.1f us, p99 %.1f us; target p99 < 1 ms: %s\n", p50, p99,
	       got && p99 < 1000.0 ? "PASS" : "MISS");
	printf("\nsigchain.bare_ns=%.1f\n", bare);
	for (int k = 0; k < 3; k++)
		printf("sigchain.ratio_n%d=%.3f\n", ns[k], chain[k] / bare);
	printf("sigchain.ao_p50_us=%.1f\nsigchain.ao_p99_us=%.1f\n", p50, p99);
	mn_shutdown();
	return 0;
}
