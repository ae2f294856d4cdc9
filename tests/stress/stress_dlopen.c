/* SPDX-License-Identifier: MIT */
/*
 * The dynamic loader's lock against memnotify's.  dlopen() runs a module's
 * constructors with the loader's lock held; memnotify, installing its
 * hooks, calls dlopen()/dlsym() (the loader's lock) and, starting its
 * threads, the loader's stack bookkeeping.  Each round is a fresh process
 * (the first-time setup is what races): thread A loops on dlopen() +
 * dlclose() of ctor_module.so, whose constructor calls mn_vm_watch(),
 * mn_unsubscribe() and mn_capability(); thread B loops on
 * mn_vm_watch()/mn_unsubscribe() and mn_memory_subscribe()/mn_unsubscribe().
 * A lock taken in the other order on either side deadlocks the round.
 * Pass: every round ends within its bound, every constructor ran, and
 * every call returned 0.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memnotify.h"
#include "stress.h"

#define LOADS 30 /* per round */

static _Atomic int go, a_done, errors;
static char *area;

static void on_vm(const struct mn_vm_event *ev, void *ctx)
{
	(void)ev;
	(void)ctx;
}

static void on_level(const struct mn_memory_status *st, void *ctx)
{
	(void)st;
	(void)ctx;
}

static void *loader(void *arg)
{
	(void)arg;
	while (!atomic_load(&go))
		sched_yield();
	for (int i = 0; i < LOADS; i++) {
		void *h = dlopen(MN_STRESS_CTOR_MODULE, RTLD_NOW | RTLD_LOCAL);
		if (!h) {
			atomic_fetch_add(&errors, 1);
			break;
		}
		int *runs = dlsym(h, "mn_stress_ctor_runs");
		int *errs = dlsym(h, "mn_stress_ctor_errors");
		if (!runs || !errs || *runs != 1 || *errs != 0)
			atomic_fetch_add(&errors, 1);
		dlclose(h);
	}
	atomic_store(&a_done, 1);
	return NULL;
}

static void *subscriber(void *arg)
{
	(void)arg;
	while (!atomic_load(&go))
		sched_yield();
	for (int i = 0; i < 10 || !atomic_load(&a_done); i++) {
		mn_sub *s;
		if (mn_vm_watch(area, 4096, 0, on_vm, NULL, &s) != 0 ||
		    mn_unsubscribe(s) != 0)
			atomic_fetch_add(&errors, 1);
		if (mn_memory_subscribe(NULL, on_level, NULL, &s) != 0 ||
		    mn_unsubscribe(s) != 0)
			atomic_fetch_add(&errors, 1);
	}
	return NULL;
}

/* One round in a fresh process: 0, or 2 setup failed, 3 a call failed. */
static int round_child(void)
{
	pthread_t a, b;

	area = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		return 2;
	area[0] = 1;
	if (pthread_create(&a, NULL, loader, NULL) ||
	    pthread_create(&b, NULL, subscriber, NULL))
		return 2;
	atomic_store(&go, 1);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	return atomic_load(&errors) ? 3 : 0;
}

int main(void)
{
	uint64_t rounds = 0;
	char what[96];

	/* The module loads here at all (in a child: no setup in this one). */
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		void *h = dlopen(MN_STRESS_CTOR_MODULE, RTLD_NOW | RTLD_LOCAL);
		if (!h)
			printf("skip: %s\n", dlerror());
		_exit(h ? 0 : 77);
	}
	int s = stress_wait_child(pid, 20000);
	if (s != -1 && WIFEXITED(s) && WEXITSTATUS(s) == 77)
		return 77;
	while (stress_running() || rounds < 5) {
		fflush(stdout);
		pid = fork();
		if (pid == 0)
			_exit(round_child());
		s = stress_wait_child(pid, 20000);
		snprintf(what, sizeof(what), "round %llu: child %s %d",
			 (unsigned long long)rounds,
			 s == -1 ? "hung" : WIFSIGNALED(s) ? "died by signal"
							   : "exited",
			 s == -1 ? 0 : WIFSIGNALED(s) ? WTERMSIG(s) : WEXITSTATUS(s));
		stress_check(s != -1 && WIFEXITED(s) && WEXITSTATUS(s) == 0, what);
		rounds++;
	}
	return stress_finish("stress_dlopen", rounds);
}
