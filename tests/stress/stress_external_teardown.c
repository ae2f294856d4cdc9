/* SPDX-License-Identifier: MIT */
/*
 * External dispatch (MN_DISPATCH_EXTERNAL) and monitor teardown.
 *
 * Part 1: with RLIMIT_NOFILE at 1024 and nobody calling mn_dispatch(),
 * 300 cycles of mn_memory_subscribe() + mn_unsubscribe().  Each monitor
 * owns a dozen fds (sampler files, timerfd, PSI trigger, ...); they must
 * be closed by the unsubscription itself, so the number of open fds stays
 * bounded.  Before the fix the teardown waited for a dispatcher that never
 * came and subscribing failed with -EMFILE at about cycle 85.
 *
 * Part 2: the same while another thread loops in mn_dispatch(): the
 * teardown then runs on whichever thread dispatches (the dispatching
 * thread, or the unsubscriber when nobody is inside mn_dispatch()), the
 * initial delivery runs on the dispatching thread, nothing crashes and the
 * fds come back (bounded wait, dispatching).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "helpers.h"
#include "memnotify.h"
#include "stress.h"

#define CYCLES 300
#define SLACK 4 /* fds a cycle may leave open for a while (none expected) */


static _Atomic unsigned long delivered;
static _Atomic int delivered_tid;

static void on_level(const struct mn_memory_status *st, void *ctx)
{
	(void)st;
	(void)ctx;
	atomic_store(&delivered_tid, (int)syscall(SYS_gettid));
	atomic_fetch_add(&delivered, 1);
}

static _Atomic int stop;
static _Atomic int dispatcher_tid;
static _Atomic unsigned long dispatch_calls, dispatch_errors;

static void *dispatcher(void *arg)
{
	unsigned int i = 0;

	(void)arg;
	atomic_store(&dispatcher_tid, (int)syscall(SYS_gettid));
	while (!atomic_load(&stop)) {
		/* Alternate short waits and polls, so the unsubscriber sometimes
		   finds the dispatcher inside mn_dispatch() and sometimes not. */
		int r = mn_dispatch((i++ & 1) ? 5 : 0);
		if (r < 0 && r != -EBUSY && r != -EINTR)
			atomic_fetch_add(&dispatch_errors, 1);
		atomic_fetch_add(&dispatch_calls, 1);
		if (!(i & 7))
			sched_yield();
	}
	return NULL;
}

int main(void)
{
	MN_OPTS(mn_dispatch_opts, dopts, .mode = MN_DISPATCH_EXTERNAL);
	struct rlimit rl;
	uint64_t iterations = 0;
	char what[160];
	mn_sub *sub;
	int err, base, most = 0, first_fail = -1, first_err = 0;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = 1024;
		if (rl.rlim_max < 1024)
			rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	err = mn_dispatch_configure(&dopts);
	if (err) {
		printf("FAIL: mn_dispatch_configure(EXTERNAL): %s\n", mn_strerror(err));
		return 1;
	}
	/* One cycle first: probes and the epoll set are made once. */
	err = mn_memory_subscribe(NULL, on_level, NULL, &sub);
	if (err) {
		printf("skip: mn_memory_subscribe: %s\n", mn_strerror(err));
		return 77;
	}
	stress_check(mn_unsubscribe(sub) == 0, "first unsubscribe");
	base = mn_test_count_fds();
	printf("open fds after one cycle: %d (limit %llu)\n", base,
	       (unsigned long long)rl.rlim_cur);

	/* Part 1: nobody dispatches. */
	for (int i = 0; i < CYCLES; i++) {
		err = mn_memory_subscribe(NULL, on_level, NULL, &sub);
		if (err) {
			if (first_fail < 0) {
				first_fail = i;
				first_err = err;
			}
			continue;
		}
		if (mn_unsubscribe(sub) != 0 && first_fail < 0) {
			first_fail = i;
			first_err = -ENOENT;
		}
		int n = mn_test_count_fds();
		if (n > most)
			most = n;
		iterations++;
	}
	snprintf(what, sizeof(what), "nobody dispatching: %d cycles, first failure at #%d: %s",
		 CYCLES, first_fail, first_fail < 0 ? "none" : mn_strerror(first_err));
	stress_check(first_fail < 0, what);
	snprintf(what, sizeof(what), "nobody dispatching: open fds peaked at %d (after one cycle %d)",
		 most, base);
	stress_check(most <= base + SLACK, what);
	printf("part 1: %d cycles, open fds %d..%d\n", CYCLES, base, most);

	/* Part 2: another thread is in mn_dispatch() meanwhile. */
	pthread_t t;
	if (pthread_create(&t, NULL, dispatcher, NULL)) {
		printf("FAIL: pthread_create\n");
		return 1;
	}
	unsigned long cycles2 = 0, fails2 = 0, on_dispatcher = 0, waited = 0;
	most = 0;
	while (stress_running() || cycles2 < CYCLES) {
		unsigned long before = atomic_load(&delivered);
		err = mn_memory_subscribe(NULL, on_level, NULL, &sub);
		if (err) {
			fails2++;
			if (fails2 == 1) {
				snprintf(what, sizeof(what),
					 "with a dispatcher: subscribe #%lu: %s", cycles2,
					 mn_strerror(err));
				stress_check(false, what);
			}
			continue;
		}
		/* Every other cycle: wait (bounded) for the initial delivery,
		   which must run on the dispatching thread. */
		if (cycles2 & 1) {
			for (int ms = 0; ms < 2000 && atomic_load(&delivered) == before; ms++)
				usleep(1000);
			if (atomic_load(&delivered) != before) {
				waited++;
				if (atomic_load(&delivered_tid) == atomic_load(&dispatcher_tid))
					on_dispatcher++;
			}
		}
		if (mn_unsubscribe(sub) != 0)
			fails2++;
		int n = mn_test_count_fds();
		if (n > most)
			most = n;
		cycles2++;
		iterations++;
	}
	/* The dispatcher runs the teardowns queued while it dispatched:
	   wait for the fds to come back while it still runs. */
	int n = mn_test_count_fds();
	for (int ms = 0; ms < 3000 && n > base + SLACK; ms++) {
		usleep(1000);
		n = mn_test_count_fds();
	}
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	snprintf(what, sizeof(what), "with a dispatcher: %lu failures in %lu cycles",
		 fails2, cycles2);
	stress_check(fails2 == 0, what);
	snprintf(what, sizeof(what), "with a dispatcher: %lu of %lu initial deliveries seen, %lu on the dispatching thread",
		 waited, cycles2 / 2, on_dispatcher);
	stress_check(waited == cycles2 / 2 && on_dispatcher == waited, what);
	snprintf(what, sizeof(what), "with a dispatcher: open fds peaked at %d, %d at the end (after one cycle %d)",
		 most, n, base);
	stress_check(n <= base + SLACK && most <= base + 64, what);
	snprintf(what, sizeof(what), "mn_dispatch errors: %lu of %lu calls",
		 atomic_load(&dispatch_errors), atomic_load(&dispatch_calls));
	stress_check(atomic_load(&dispatch_errors) == 0, what);
	printf("part 2: %lu cycles, %lu mn_dispatch calls, open fds peaked at %d, %d at the end\n",
	       cycles2, atomic_load(&dispatch_calls), most, n);
	stress_check(mn_shutdown() == 0, "mn_shutdown");
	return stress_finish("stress_external_teardown", iterations);
}
