/* SPDX-License-Identifier: MIT */
/*
 * One handle unsubscribed twice at once: from a signal handler and from a
 * thread.  Each iteration registers a handler on a real-time signal with
 * mn_signal_register(); the handler (signal context) calls
 * mn_unsubscribe() on its own handle while another thread calls
 * mn_unsubscribe() on the same handle, with a varying head start either
 * side.  When the handler ran, exactly one of the two calls must return 0
 * and the other -ENOENT; when the thread's removal came first (the chain
 * no longer calls the handler) the program's own default handler runs and
 * the thread's call returns 0.  At the end mn_shutdown() must return 0
 * (it refuses with -EBUSY while any subscription is counted).
 * Before the fix both unsubscriptions went ahead: a double free under
 * ASan, and in release builds the subscription count underflowed, so
 * mn_shutdown() returned -EBUSY forever.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "memnotify.h"
#include "stress.h"

static int sig;
static mn_sub *_Atomic cur;
static _Atomic unsigned int gen, done_gen;
static _Atomic int thread_ret, handler_ret;
static _Atomic unsigned int handler_calls, default_calls;
static _Atomic unsigned int thread_spin;
static _Atomic int quit;

static int on_signal(int s, siginfo_t *si, void *uc, int handled, void *ctx)
{
	(void)s;
	(void)si;
	(void)uc;
	(void)handled;
	(void)ctx;
	atomic_store(&handler_ret, mn_unsubscribe(atomic_load(&cur)));
	atomic_fetch_add(&handler_calls, 1);
	return 1; /* handled: the default handler does not run */
}

/* The program's own disposition, the chain's default handler. */
static void on_default(int s)
{
	(void)s;
	atomic_fetch_add(&default_calls, 1);
}

static void spin(unsigned int n)
{
	for (volatile unsigned int i = 0; i < n; i++)
		;
}

static void *unsubscriber(void *arg)
{
	unsigned int seen = 0;

	(void)arg;
	for (;;) {
		unsigned int g;
		while ((g = atomic_load(&gen)) == seen && !atomic_load(&quit))
			sched_yield();
		if (atomic_load(&quit))
			return NULL;
		seen = g;
		spin(atomic_load(&thread_spin));
		atomic_store(&thread_ret, mn_unsubscribe(atomic_load(&cur)));
		atomic_store(&done_gen, g);
	}
}

int main(void)
{
	struct sigaction sa;
	uint64_t iters = 0, raced = 0, handler_won = 0;
	unsigned int rnd = 12345;
	bool ok = true;
	pthread_t t;
	char what[128];

	sig = SIGRTMIN + 2;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_default;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL) != 0) {
		printf("skip: sigaction(SIGRTMIN+2) failed\n");
		return 77;
	}
	if (pthread_create(&t, NULL, unsubscriber, NULL))
		return 1;
	while (ok && (stress_running() || iters < 100)) {
		mn_sub *h;
		unsigned int g = (unsigned int)iters + 1;
		unsigned int calls = atomic_load(&handler_calls) +
				     atomic_load(&default_calls);

		if (mn_signal_register(sig, on_signal, NULL, &h) != 0) {
			stress_check(false, "mn_signal_register");
			break;
		}
		atomic_store(&cur, h);
		atomic_store(&thread_ret, 1);
		atomic_store(&handler_ret, 1);
		unsigned int hc = atomic_load(&handler_calls);
		/* A varying head start for one side or the other. */
		rnd = rnd * 1103515245u + 12345u;
		unsigned int delay = (rnd >> 16) % 40000;
		atomic_store(&thread_spin, (rnd & 1) ? delay : 0);
		atomic_store(&gen, g);
		spin((rnd & 1) ? 0 : delay);
		pthread_kill(pthread_self(), sig);
		/* Both sides done, within a bound. */
		double end = stress_now() + 5;
		while ((atomic_load(&done_gen) != g ||
			atomic_load(&handler_calls) + atomic_load(&default_calls) ==
				calls) && stress_now() < end)
			sched_yield();
		if (atomic_load(&done_gen) != g ||
		    atomic_load(&handler_calls) + atomic_load(&default_calls) == calls) {
			stress_check(false, "the signal or the thread's call did not "
					    "finish within 5 s");
			ok = false;
			break;
		}
		int tr = atomic_load(&thread_ret), hr = atomic_load(&handler_ret);
		if (atomic_load(&handler_calls) != hc) {
			raced++;
			handler_won += hr == 0;
			ok = (tr == 0 && hr == -ENOENT) || (tr == -ENOENT && hr == 0);
		} else {
			ok = tr == 0;
		}
		if (!ok) {
			snprintf(what, sizeof(what),
				 "iteration %llu: thread %d, handler%s %d",
				 (unsigned long long)iters, tr,
				 atomic_load(&handler_calls) != hc ? "" : " (not called)",
				 hr);
			stress_check(false, what);
		}
		iters++;
	}
	atomic_store(&quit, 1);
	pthread_join(t, NULL);
	printf("handler called in %llu iterations (its call won %llu)\n",
	       (unsigned long long)raced, (unsigned long long)handler_won);
	stress_check(raced > 0, "the handler ran while the thread unsubscribed");
	/* Unsubscriptions made in the handler finish in thread context (the
	   dispatcher or the next mn_* call): -EBUSY may last a moment. */
	int r;
	double end = stress_now() + 5;
	while ((r = mn_shutdown()) == -EBUSY && stress_now() < end)
		sched_yield();
	snprintf(what, sizeof(what), "mn_shutdown() returned %d", r);
	stress_check(r == 0, what);
	return stress_finish("stress_double_unsub", iters);
}
