/* SPDX-License-Identifier: MIT */
/*
 * The Windows face's locks under contention, callbacks and fork().
 *
 * In a child process (so that a deadlock is a bounded wait, not a hung
 * test), with one secure-memory cache callback registered:
 *  - thread A loops MmSecureVirtualMemory / MmUnsecureVirtualMemory on a
 *    range R1 (each secure makes a range watch, each unsecure ends it);
 *  - thread B secures a range R2 and loops munmap / mmap(MAP_FIXED) of
 *    pages of it; the callback, running on B inside the munmap, calls
 *    MmUnsecureVirtualMemory on R2's own handle (what Windows code does),
 *    then B secures R2 again;
 *  - thread C loops QueryMemoryResourceNotification / WaitForSingleObject
 *    (0 ms) on one resource notification handle, makes and closes a
 *    second (high) handle, which joins and leaves the first one's shared
 *    subscription, and KeRegisterNmiCallback / KeDeregisterNmiCallback;
 *  - thread D forks in a loop; each grandchild calls into every part of
 *    the face (secure, resource handle, NMI, bad memory, the CLR host's
 *    VirtualQuery) and must exit within a bound: a face lock inherited
 *    held would hang it.
 * Before the fix B's callback waited for secure.c's mutex, which A held
 * while its mn_vm_watch() waited for B's callback to return (a grace
 * period): both stuck.  Pass: every thread keeps going, the child exits
 * in time, every grandchild exits 0 in time.
 *
 * Under AddressSanitizer and ThreadSanitizer the fork loop first parks A,
 * B and C between calls: GCC 12's sanitizer allocators have no sound fork
 * handling, so a fork while another thread allocates can leave the child
 * stuck in the sanitizer's own allocator lock (seen under both, as in
 * stress_fork_probe), which says nothing about memnotify's locks.  The
 * plain build forks with A, B and C running.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "memnotify.h"
#include "memnotify/win32.h"
#include "stress.h"

#define PG 4096
#define R2_PAGES 16

struct shared {
	_Atomic unsigned long a_loops, b_loops, b_callbacks, c_loops, forks;
	_Atomic unsigned long failures, grandchild_hangs, grandchild_fails;
	_Atomic int done;
};
static struct shared *sh;

static char *r1, *r2;
static _Atomic(HANDLE) r2_handle;
static _Atomic int stop;
static HANDLE resource;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PARK_FOR_FORK 1
#else
#define PARK_FOR_FORK 0
#endif
static _Atomic int park, parked, gone; /* gone: threads out of their loop */

/* Between two calls into the face: wait while the fork loop asks. */
static void park_point(void)
{
	if (!PARK_FOR_FORK || !atomic_load(&park))
		return;
	atomic_fetch_add(&parked, 1);
	while (atomic_load(&park))
		sched_yield();
}

static void fail(const char *what)
{
	atomic_fetch_add(&sh->failures, 1);
	printf("FAIL (child): %s\n", what);
	fflush(stdout);
}

/* Synchronous context: the thread unmapping.  A part of R2: drop it and
   unsecure R2 through its own handle, from inside the callback. */
static BOOLEAN cache_cb(PVOID addr, SIZE_T len)
{
	uintptr_t a = (uintptr_t)addr;

	(void)len;
	if (a >= (uintptr_t)r2 && a < (uintptr_t)r2 + R2_PAGES * PG) {
		HANDLE h = atomic_exchange(&r2_handle, NULL);
		if (h)
			MmUnsecureVirtualMemory(h);
		atomic_fetch_add(&sh->b_callbacks, 1);
		return TRUE;
	}
	return FALSE;
}

static BOOLEAN nmi_cb(PVOID ctx, BOOLEAN handled)
{
	(void)ctx;
	return handled;
}

static void bad_cb(void)
{
}

static void *thread_a(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		park_point();
		HANDLE h = MmSecureVirtualMemory(r1, 4 * PG, PAGE_READWRITE);
		if (!h) {
			char what[80];
			snprintf(what, sizeof(what), "A: MmSecureVirtualMemory(R1): error %u",
				 (unsigned)GetLastError());
			fail(what);
			break;
		}
		MmUnsecureVirtualMemory(h);
		atomic_fetch_add(&sh->a_loops, 1);
	}
	atomic_fetch_add(&gone, 1);
	return NULL;
}

static void *thread_b(void *arg)
{
	unsigned int i = 0;

	(void)arg;
	while (!atomic_load(&stop)) {
		park_point();
		HANDLE h = MmSecureVirtualMemory(r2, R2_PAGES * PG, PAGE_READWRITE);
		if (!h) {
			char what[80];
			snprintf(what, sizeof(what), "B: MmSecureVirtualMemory(R2): error %u",
				 (unsigned)GetLastError());
			fail(what);
			break;
		}
		atomic_store(&r2_handle, h);
		char *p = r2 + (i % R2_PAGES) * PG;
		unsigned long seen = atomic_load(&sh->b_callbacks);
		if (i & 1) {
			/* munmap, then map the page back */
			if (munmap(p, PG) != 0)
				fail("B: munmap");
			if (mmap(p, PG, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != p)
				fail("B: mmap(MAP_FIXED) back");
		} else {
			/* mmap(MAP_FIXED) over the page: an unmap too */
			if (mmap(p, PG, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != p)
				fail("B: mmap(MAP_FIXED) over");
		}
		if (atomic_load(&sh->b_callbacks) == seen)
			fail("B: no callback for a change of a secured range");
		/* The callback unsecured it; if not, do it here. */
		h = atomic_exchange(&r2_handle, NULL);
		if (h)
			MmUnsecureVirtualMemory(h);
		i++;
		atomic_fetch_add(&sh->b_loops, 1);
	}
	atomic_fetch_add(&gone, 1);
	return NULL;
}

static void *thread_c(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		BOOL state;
		park_point();
		if (!QueryMemoryResourceNotification(resource, &state))
			fail("C: QueryMemoryResourceNotification");
		DWORD w = WaitForSingleObject(resource, 0);
		if (w != WAIT_OBJECT_0 && w != WAIT_TIMEOUT)
			fail("C: WaitForSingleObject");
		HANDLE hi = CreateMemoryResourceNotification(HighMemoryResourceNotification);
		BOOL hs;
		if (!hi || !QueryMemoryResourceNotification(hi, &hs) || !CloseHandle(hi))
			fail("C: a second resource handle");
		PVOID n = KeRegisterNmiCallback(nmi_cb, NULL);
		if (!n || KeDeregisterNmiCallback(n) != STATUS_SUCCESS)
			fail("C: KeRegisterNmiCallback/KeDeregisterNmiCallback");
		atomic_fetch_add(&sh->c_loops, 1);
	}
	atomic_fetch_add(&gone, 1);
	return NULL;
}

/* In a fork child of the busy process: every part of the face once. */
static int grandchild(void)
{
	BOOL state;
	HANDLE h = MmSecureVirtualMemory(r1, PG, PAGE_READONLY);
	if (!h)
		return 2;
	MmUnsecureVirtualMemory(h);
	if (!QueryMemoryResourceNotification(resource, &state))
		return 3;
	DWORD w = WaitForSingleObject(resource, 0);
	if (w != WAIT_OBJECT_0 && w != WAIT_TIMEOUT)
		return 4;
	PVOID n = KeRegisterNmiCallback(nmi_cb, NULL);
	if (!n || KeDeregisterNmiCallback(n) != STATUS_SUCCESS)
		return 5;
	PVOID b = RegisterBadMemoryNotification(bad_cb);
	if (!b || !UnregisterBadMemoryNotification(b))
		return 6;
	IHostMemoryManager *hm = NULL;
	MEMORY_BASIC_INFORMATION mbi;
	SIZE_T got = 0;
	if (MnGetHostMemoryManager(&hm) != S_OK || !hm)
		return 7;
	if (hm->lpVtbl->VirtualQuery(hm, r1, &mbi, sizeof(mbi), &got) != S_OK)
		return 8;
	hm->lpVtbl->Release(hm);
	return 0;
}

static void *thread_d(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		if (PARK_FOR_FORK) {
			atomic_store(&park, 1);
			for (int ms = 0; ms < 10000 &&
			     atomic_load(&parked) + atomic_load(&gone) < 3; ms++)
				usleep(1000);
			if (atomic_load(&parked) + atomic_load(&gone) < 3) {
				fail("D: threads A, B, C did not reach a park point in 10 s");
				atomic_store(&parked, 0);
				atomic_store(&park, 0);
				break;
			}
		}
		pid_t pid = fork();
		if (PARK_FOR_FORK) {
			atomic_store(&parked, 0);
			atomic_store(&park, 0);
		}
		if (pid == 0)
			_exit(grandchild());
		if (pid < 0) {
			fail("D: fork");
			break;
		}
		int st = stress_wait_child(pid, 10000);
		if (st == -1) {
			atomic_fetch_add(&sh->grandchild_hangs, 1);
			printf("FAIL (child): a fork child hung (a face lock inherited held?)\n");
			fflush(stdout);
		} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			atomic_fetch_add(&sh->grandchild_fails, 1);
			printf("FAIL (child): a fork child %s %d\n",
			       WIFEXITED(st) ? "exited" : "died by signal",
			       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			fflush(stdout);
		}
		atomic_fetch_add(&sh->forks, 1);
	}
	return NULL;
}

static int child(void)
{
	pthread_t t[4];
	void *(*fn[4])(void *) = { thread_a, thread_b, thread_c, thread_d };

	/* R1 and R2 in mappings of their own, a PROT_NONE page between: B's
	   changes to R2 must not change the mapping that holds R1.  (If they
	   did, MmSecureVirtualMemory's check of R1 in /proc/self/maps could
	   miss it: a read of that file is no snapshot while a mapping it
	   covers changes — a limitation of the probe, not of the locks this
	   program is about.) */
	char *all = mmap(NULL, (4 + 1 + R2_PAGES) * PG, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (all == MAP_FAILED || mprotect(all + 4 * PG, PG, PROT_NONE))
		return 2;
	r1 = all;
	r2 = all + 5 * PG;
	if (!AddSecureMemoryCacheCallback(cache_cb))
		return 3;
	resource = CreateMemoryResourceNotification(LowMemoryResourceNotification);
	if (!resource)
		return 4;
	for (int i = 0; i < 4; i++)
		if (pthread_create(&t[i], NULL, fn[i], NULL))
			return 5;
	while (stress_running())
		usleep(10000);
	atomic_store(&stop, 1);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	if (!RemoveSecureMemoryCacheCallback(cache_cb))
		fail("RemoveSecureMemoryCacheCallback");
	if (!CloseHandle(resource))
		fail("CloseHandle");
	atomic_store(&sh->done, 1);
	return atomic_load(&sh->failures) ? 1 : 0;
}

/* The progress counters, to name the stuck threads of a hung child. */
static void progress(const char *when)
{
	printf("%s: A %lu secure/unsecure, B %lu unmaps (%lu callbacks), C %lu, D %lu forks\n",
	       when, atomic_load(&sh->a_loops), atomic_load(&sh->b_loops),
	       atomic_load(&sh->b_callbacks), atomic_load(&sh->c_loops),
	       atomic_load(&sh->forks));
}

int main(void)
{
	char what[160];

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		printf("FAIL: mmap\n");
		return 1;
	}
	stress_running(); /* the clock starts here and in the child */
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0)
		_exit(child());
	int bound = (int)(stress_seconds() * 1000) + 20000;
	int st = stress_wait_child(pid, bound);
	if (st == -1)
		progress("hung child, last progress");
	else
		progress("done");
	snprintf(what, sizeof(what), "the child %s %d",
		 st == -1 ? "hung (killed after the bound)" :
		 WIFSIGNALED(st) ? "died by signal" : "exited",
		 st == -1 ? bound : WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	stress_check(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, what);
	stress_check(atomic_load(&sh->done) == 1, "the child finished its threads");
	stress_check(atomic_load(&sh->a_loops) > 0 && atomic_load(&sh->b_loops) > 0 &&
		     atomic_load(&sh->c_loops) > 0 && atomic_load(&sh->forks) > 0,
		     "every thread made progress");
	snprintf(what, sizeof(what), "fork children: %lu hung, %lu failed",
		 atomic_load(&sh->grandchild_hangs), atomic_load(&sh->grandchild_fails));
	stress_check(!atomic_load(&sh->grandchild_hangs) &&
		     !atomic_load(&sh->grandchild_fails), what);
	return stress_finish("stress_win32_locks",
			     atomic_load(&sh->a_loops) + atomic_load(&sh->b_loops) +
				     atomic_load(&sh->c_loops) + atomic_load(&sh->forks));
}
