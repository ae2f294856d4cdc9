/* SPDX-License-Identifier: MIT */
/*
 * fork() while memnotify is half-way through something process-wide.
 * Each round is a fresh process (the probes run once per process), which
 * forks children while its own threads work:
 *  - even rounds: two threads call mn_capability() for every capability
 *    (so the probes really run now: one opens a userfaultfd and starts its
 *    reader, one redirects the C library's entry points, others read files
 *    and arm triggers); each child calls mn_capability() for every
 *    capability and _exit(0)s;
 *  - odd rounds: a thread loops on mn_memory_subscribe()/mn_unsubscribe()
 *    and mn_vm_watch()/mn_unsubscribe(); each child subscribes and
 *    unsubscribes once of each kind and _exit(0)s.
 * Every child must be done within its bound.  Before the fix a probe that
 * a fork() interrupted stayed "running" in the child for ever, and the
 * child's mn_capability() hung (1 run in 4).  Pass: every round's process
 * and every child it forked exit 0 in time.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memnotify.h"
#include "stress.h"

#define FORKS 4       /* per round */
#define CHILD_MS 5000 /* a child's bound */

static _Atomic int stop, started;
static _Atomic int errors;

static int all_caps(void)
{
	for (unsigned int c = 0; c < MN_CAP__COUNT; c++) {
		struct mn_capability cap = { .sz = sizeof(cap) };
		if (mn_capability(c, &cap) != 0)
			return 1;
	}
	return 0;
}

static void *prober(void *arg)
{
	(void)arg;
	atomic_fetch_add(&started, 1);
	while (!atomic_load(&stop))
		if (all_caps())
			atomic_fetch_add(&errors, 1);
	return NULL;
}

static void on_level(const struct mn_memory_status *st, void *ctx)
{
	(void)st;
	(void)ctx;
}

static void on_vm(const struct mn_vm_event *ev, void *ctx)
{
	(void)ev;
	(void)ctx;
}

static char *area; /* watched by the subscriber and by each child */

/* 0, or 1 with the failing call and its error on stdout. */
static int subscribe_once(void)
{
	mn_sub *s;
	int r;

	if ((r = mn_memory_subscribe(NULL, on_level, NULL, &s)) != 0 ||
	    (r = mn_unsubscribe(s)) != 0) {
		printf("memory subscription: %s\n", mn_strerror(r));
		return 1;
	}
	if ((r = mn_vm_watch(area, 4096, 0, on_vm, NULL, &s)) != 0 ||
	    (r = mn_unsubscribe(s)) != 0) {
		printf("range watch: %s\n", mn_strerror(r));
		return 1;
	}
	return 0;
}

static void *subscriber(void *arg)
{
	(void)arg;
	atomic_fetch_add(&started, 1);
	while (!atomic_load(&stop))
		if (subscribe_once())
			atomic_fetch_add(&errors, 1);
	return NULL;
}

/* One round: threads at work, FORKS children meanwhile.  Exit 0, or 3 a
   child hung, 4 a child failed, 5 a thread's call failed. */
static int round_process(unsigned int round)
{
	bool probe = !(round & 1);
	pthread_t t[2];
	int n = probe ? 2 : 1, ret = 0;

	area = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		return 2;
	area[0] = 1;
	for (int i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, probe ? prober : subscriber, NULL))
			return 2;
	while (atomic_load(&started) < n)
		sched_yield();
	for (int k = 0; k < FORKS; k++) {
		/* Later forks a little later: different points of the work. */
		for (volatile unsigned int i = 0; i < (round * 7919u + k) % 20000u * k; i++)
			;
		pid_t pid = fork();
		if (pid == 0)
			_exit(probe ? all_caps() : subscribe_once());
		if (pid < 0)
			return 2;
		int s = stress_wait_child(pid, CHILD_MS);
		if (s == -1)
			ret = 3;
		else if (!ret && (!WIFEXITED(s) || WEXITSTATUS(s) != 0))
			ret = 4;
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	if (!ret && atomic_load(&errors))
		ret = 5;
	return ret;
}

/*
 * Under AddressSanitizer or ThreadSanitizer a fork child of a process
 * whose other thread is inside malloc() can hang in the sanitizer's
 * allocator, whose locks this toolchain's runtimes (GCC 12's libasan and
 * libtsan) do not take around fork(), as glibc's malloc does.  That is
 * every round here: the program skips.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZER_FORK_UNSAFE 1
#endif

int main(void)
{
	uint64_t rounds = 0;
	char what[96];

#ifdef SANITIZER_FORK_UNSAFE
	printf("skip: the sanitizer's allocator is not fork-safe here (a "
	       "fork child of a thread in malloc() hangs in it)\n");
	return 77;
#endif
	while (stress_running() || rounds < 8) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0)
			_exit(round_process((unsigned int)rounds));
		int s = stress_wait_child(pid, FORKS * CHILD_MS + 10000);
		snprintf(what, sizeof(what), "round %llu (%s): %s %d",
			 (unsigned long long)rounds,
			 rounds & 1 ? "subscribe" : "probe",
			 s == -1 ? "hung" : WIFSIGNALED(s) ? "died by signal"
							   : "exited",
			 s == -1 ? 0 : WIFSIGNALED(s) ? WTERMSIG(s) : WEXITSTATUS(s));
		stress_check(s != -1 && WIFEXITED(s) && WEXITSTATUS(s) == 0, what);
		rounds++;
	}
	return stress_finish("stress_fork_probe", rounds);
}
