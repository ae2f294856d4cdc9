/* SPDX-License-Identifier: MIT */
/*
 * Delivery lanes under churn: slow callbacks on several delivery threads
 * while subscriptions come and go.
 *  - two threads subscribe to the memory level (own group) with callbacks
 *    that take 0-3 ms, and unsubscribe, from outside (half the time while
 *    the callback runs) or from inside the callback (its own handle);
 *  - one thread keeps an MN_VM_DISPATCH listener coming and going while
 *    another makes mprotect() calls, some inside a SIGUSR1 handler (the
 *    ring's producer in signal context);
 *  - in the plain build, the main thread forks now and then: the child
 *    subscribes, hears its initial level and unsubscribes.  Not under
 *    ThreadSanitizer (it cannot follow a multi-threaded fork whose child
 *    starts threads) nor AddressSanitizer (its allocator's lock, held by
 *    a parent thread mid-malloc at the fork, stays held in the child:
 *    the child hangs in malloc — seen here in gdb —, as
 *    stress_win32_locks explains).
 * Pass: a subscription's callback never runs on two threads at once, never
 * starts after mn_unsubscribe() returned 0 from outside, every
 * mn_unsubscribe() returns 0, no child hangs, and mn_shutdown() returns 0
 * (it joins every delivery thread).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "memnotify.h"
#include "stress.h"

#define SLOTS 4096

struct ctx {
	_Atomic int inside;
	_Atomic int ended;    /* mn_unsubscribe() returned, from outside */
	_Atomic int calls;
	_Atomic(mn_sub *) self_unsub; /* unsubscribe this from inside */
	_Atomic int self_ret;
};

static struct ctx slots[SLOTS];
static _Atomic int next_slot;
static _Atomic uint64_t iterations;
static _Atomic int overlap, after_end, bad_ret;
static char *page;
static long pagesz;

static void on_level(const struct mn_memory_status *st, void *arg)
{
	struct ctx *c = arg;
	mn_sub *self;

	(void)st;
	if (atomic_load(&c->ended))
		atomic_fetch_add(&after_end, 1);
	if (atomic_exchange(&c->inside, 1))
		atomic_fetch_add(&overlap, 1);
	atomic_fetch_add(&c->calls, 1);
	usleep((useconds_t)(rand() % 3000));
	atomic_store(&c->inside, 0);
	self = atomic_exchange(&c->self_unsub, NULL);
	if (self)
		atomic_store(&c->self_ret, mn_unsubscribe(self));
}

static void *churn(void *arg)
{
	(void)arg;
	while (stress_running()) {
		int i = atomic_fetch_add(&next_slot, 1);
		if (i >= SLOTS)
			break;
		struct ctx *c = &slots[i];
		mn_sub *sub;
		atomic_store(&c->self_ret, 1);
		if (mn_memory_subscribe(NULL, on_level, c, &sub)) {
			atomic_fetch_add(&bad_ret, 1);
			continue;
		}
		if (i % 3 == 0) {
			/* From inside: its first call ends it. */
			atomic_store(&c->self_unsub, sub);
			for (int k = 0; k < 2000 && atomic_load(&c->self_ret) == 1; k++)
				usleep(1000);
			if (atomic_load(&c->self_ret) == 1) {
				/* Not called yet: race the callback for it. */
				mn_sub *mine = atomic_exchange(&c->self_unsub, NULL);
				if (mine && mn_unsubscribe(mine))
					atomic_fetch_add(&bad_ret, 1);
			} else if (atomic_load(&c->self_ret) != 0) {
				atomic_fetch_add(&bad_ret, 1);
			}
		} else {
			if (i % 3 == 1) /* while it may be running */
				while (!atomic_load(&c->inside) &&
				       !atomic_load(&c->calls))
					usleep(100);
			if (mn_unsubscribe(sub))
				atomic_fetch_add(&bad_ret, 1);
			atomic_store(&c->ended, 1);
			if (atomic_load(&c->inside))
				atomic_fetch_add(&after_end, 1);
		}
		atomic_fetch_add(&iterations, 1);
	}
	return NULL;
}

static void on_vm(const struct mn_vm_event *ev, void *arg)
{
	struct ctx *c = arg;

	(void)ev;
	if (atomic_load(&c->ended))
		atomic_fetch_add(&after_end, 1);
	if (atomic_exchange(&c->inside, 1))
		atomic_fetch_add(&overlap, 1);
	atomic_fetch_add(&c->calls, 1);
	atomic_store(&c->inside, 0);
}

static void protect_in_handler(int sig)
{
	(void)sig;
	mprotect(page, (size_t)pagesz, PROT_READ | PROT_WRITE);
}

static void *vm_calls(void *arg)
{
	pthread_t self = pthread_self();

	(void)arg;
	for (int i = 0; stress_running(); i++) {
		mprotect(page, (size_t)pagesz, i % 2 ? PROT_READ : PROT_READ | PROT_WRITE);
		if (i % 16 == 0)
			pthread_kill(self, SIGUSR1);
	}
	return NULL;
}

static void *vm_churn(void *arg)
{
	(void)arg;
	while (stress_running()) {
		int i = atomic_fetch_add(&next_slot, 1);
		if (i >= SLOTS)
			break;
		struct ctx *c = &slots[i];
		mn_sub *sub;
		if (mn_vm_listen(MN_VM_DISPATCH, on_vm, c, &sub)) {
			atomic_fetch_add(&bad_ret, 1);
			continue;
		}
		usleep((useconds_t)(rand() % 2000));
		if (mn_unsubscribe(sub))
			atomic_fetch_add(&bad_ret, 1);
		atomic_store(&c->ended, 1);
		atomic_fetch_add(&iterations, 1);
	}
	return NULL;
}

#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
#define FORKS 1
static void fork_round(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct ctx c = { 0 };
		mn_sub *sub;
		alarm(20);
		if (mn_memory_subscribe(NULL, on_level, &c, &sub))
			_exit(2);
		for (int k = 0; k < 5000 && !atomic_load(&c.calls); k++)
			usleep(1000);
		if (!atomic_load(&c.calls))
			_exit(3);
		if (mn_unsubscribe(sub))
			_exit(4);
		_exit(0);
	}
	stress_check(pid > 0, "fork");
	if (pid > 0) {
		int st = stress_wait_child(pid, 15000);
		bool ok = st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
		if (!ok)
			fprintf(stderr, "fork child: %s %d\n",
				st < 0 ? "hang" : WIFEXITED(st) ? "exit" : "signal",
				st < 0 ? 0 : WIFEXITED(st) ? WEXITSTATUS(st)
							   : WTERMSIG(st));
		stress_check(ok, "a fork child subscribes, hears its level, unsubscribes");
	}
}
#endif

int main(void)
{
	pthread_t t[4];

	pagesz = sysconf(_SC_PAGESIZE);
	page = stress_anon((size_t)pagesz);
	stress_check(page != NULL, "mmap");
	signal(SIGUSR1, protect_in_handler);
	stress_running(); /* starts the clock before the threads read it */
	pthread_create(&t[0], NULL, churn, NULL);
	pthread_create(&t[1], NULL, churn, NULL);
	pthread_create(&t[2], NULL, vm_churn, NULL);
	pthread_create(&t[3], NULL, vm_calls, NULL);
	while (stress_running()) {
#ifdef FORKS
		fork_round();
#endif
		usleep(200000);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	stress_check(atomic_load(&overlap) == 0,
		     "a subscription's callback never runs on two threads at once");
	stress_check(atomic_load(&after_end) == 0,
		     "no callback runs after mn_unsubscribe() returned");
	stress_check(atomic_load(&bad_ret) == 0,
		     "every subscribe and unsubscribe returns 0");
	stress_check(mn_shutdown() == 0, "mn_shutdown() joins the delivery threads");
	return stress_finish("stress_lanes", atomic_load(&iterations));
}
