/* SPDX-License-Identifier: MIT */
/*
 * ABBA between the core lock and the capability probes.  A probe runs once
 * per process, the first time anyone asks; the userfaultfd probe starts a
 * thread and the libc-patch probe changes code, and both end up taking the
 * core lock.  Each round is a fresh process: one thread loops on
 * mn_memory_subscribe() + mn_unsubscribe() while another asks
 * mn_capability(MN_CAP_USERFAULTFD) and mn_capability(MN_CAP_VM_LIBC_PATCH).
 * Before the fix a probe ran under the core lock while the subscriber
 * waited for the probe's once: the round hung in 6 of 8 runs.  Pass: every
 * round's child exits 0 within its bound, every call returned 0.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memnotify.h"
#include "stress.h"

#define SUBSCRIBES 20 /* per round, at least */

static _Atomic int go, probed;
static _Atomic int errors;

static void on_level(const struct mn_memory_status *st, void *ctx)
{
	(void)st;
	(void)ctx;
}

static void *subscriber(void *arg)
{
	(void)arg;
	while (!atomic_load(&go))
		sched_yield();
	for (int i = 0; i < SUBSCRIBES || !atomic_load(&probed); i++) {
		mn_sub *s;
		if (mn_memory_subscribe(NULL, on_level, NULL, &s) != 0 ||
		    mn_unsubscribe(s) != 0)
			atomic_fetch_add(&errors, 1);
	}
	return NULL;
}

static void *prober(void *arg)
{
	struct mn_capability c = { .sz = sizeof(c) };

	(void)arg;
	while (!atomic_load(&go))
		sched_yield();
	if (mn_capability(MN_CAP_USERFAULTFD, &c) != 0 ||
	    mn_capability(MN_CAP_VM_LIBC_PATCH, &c) != 0)
		atomic_fetch_add(&errors, 1);
	atomic_store(&probed, 1);
	return NULL;
}

/* One round, in a fresh child process; exit 0 if all went well. */
static int round_child(unsigned int round)
{
	pthread_t a, b;

	if (pthread_create(&a, NULL, subscriber, NULL) ||
	    pthread_create(&b, NULL, prober, NULL))
		return 2;
	/* Alternate who is let go first, to vary the interleaving. */
	if (round & 1)
		sched_yield();
	atomic_store(&go, 1);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	return atomic_load(&errors) ? 3 : 0;
}

int main(void)
{
	struct mn_memory_status st = { .sz = sizeof(st) };
	uint64_t rounds = 0;
	char what[96];

	/* Asked in a throwaway child: no probe may run in this process,
	   whose state every round inherits. */
	pid_t pid = fork();
	if (pid == 0)
		_exit(mn_memory_status(NULL, &st) == 0 ? 0 : 1);
	int s = stress_wait_child(pid, 10000);
	if (s == -1 || !WIFEXITED(s) || WEXITSTATUS(s) != 0) {
		printf("skip: no memory status here (mn_memory_status failed)\n");
		return 77;
	}
	while (stress_running() || rounds < 8) {
		fflush(stdout);
		pid = fork();
		if (pid == 0)
			_exit(round_child((unsigned int)rounds));
		s = stress_wait_child(pid, 10000);
		snprintf(what, sizeof(what), "round %llu: child %s %d",
			 (unsigned long long)rounds,
			 s == -1 ? "hung" : WIFSIGNALED(s) ? "died by signal"
							   : "exited",
			 s == -1 ? 0 : WIFSIGNALED(s) ? WTERMSIG(s) : WEXITSTATUS(s));
		stress_check(s != -1 && WIFEXITED(s) && WEXITSTATUS(s) == 0, what);
		rounds++;
	}
	return stress_finish("stress_abba", rounds);
}
