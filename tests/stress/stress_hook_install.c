/* SPDX-License-Identifier: MIT */
/*
 * The entry redirection installed while other threads run the C library's
 * entry points it changes.  Each round is a fresh process (the redirection
 * is installed once per process): four threads loop on mmap, munmap,
 * mprotect, madvise and mremap — through the C library's own entry points
 * (dlsym RTLD_NEXT) and through free() of large blocks (glibc's internal
 * munmap) — while the main thread makes the process's first
 * mn_vm_listen().  Before the fix the process died by SIGSEGV in 9 of 10
 * runs (a jump to a landing pad that was not executable yet).  Pass: every
 * round's child exits 0 and the listener heard the threads' calls.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memnotify.h"
#include "stress.h"

#define THREADS 4

typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
typedef int (*munmap_fn)(void *, size_t);
typedef int (*mprotect_fn)(void *, size_t, int);
typedef int (*madvise_fn)(void *, size_t, int);
typedef void *(*mremap_fn)(void *, size_t, size_t, int, ...);

static mmap_fn libc_mmap;
static munmap_fn libc_munmap;
static mprotect_fn libc_mprotect;
static madvise_fn libc_madvise;
static mremap_fn libc_mremap;

static _Atomic int stop;
static _Atomic unsigned long loops[THREADS];
static _Atomic unsigned long heard;

static void *worker(void *arg)
{
	_Atomic unsigned long *n = arg;

	while (!atomic_load(&stop)) {
		char *p = libc_mmap(NULL, 8192, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			abort();
		p[0] = 1;
		libc_mprotect(p, 4096, PROT_READ);
		libc_madvise(p + 4096, 4096, MADV_DONTNEED);
		p = libc_mremap(p, 8192, 4096, 0);
		libc_munmap(p, 4096);
		free(malloc(256 * 1024)); /* glibc's own munmap */
		atomic_fetch_add(n, 1);
	}
	return NULL;
}

static void on_event(const struct mn_vm_event *ev, void *ctx)
{
	(void)ev;
	(void)ctx;
	atomic_fetch_add(&heard, 1);
}

/* One round, in a fresh child process; exit 0 if all went well. */
static int round_child(void)
{
	pthread_t t[THREADS];
	mn_sub *sub;

	for (int i = 0; i < THREADS; i++)
		if (pthread_create(&t[i], NULL, worker, (void *)&loops[i]))
			return 2;
	/* Every thread is inside its loop before the redirection starts. */
	for (int i = 0; i < THREADS; i++)
		while (atomic_load(&loops[i]) < 50)
			sched_yield();
	if (mn_vm_listen(0, on_event, NULL, &sub) != 0)
		return 3;
	unsigned long after[THREADS];
	for (int i = 0; i < THREADS; i++)
		after[i] = atomic_load(&loops[i]);
	for (int i = 0; i < THREADS; i++)
		while (atomic_load(&loops[i]) < after[i] + 200u)
			sched_yield();
	atomic_store(&stop, 1);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	mn_unsubscribe(sub);
	return atomic_load(&heard) > 0 ? 0 : 4;
}

int main(void)
{
	uint64_t rounds = 0;
	char what[96];

	libc_mmap = (mmap_fn)dlsym(RTLD_NEXT, "mmap");
	libc_munmap = (munmap_fn)dlsym(RTLD_NEXT, "munmap");
	libc_mprotect = (mprotect_fn)dlsym(RTLD_NEXT, "mprotect");
	libc_madvise = (madvise_fn)dlsym(RTLD_NEXT, "madvise");
	libc_mremap = (mremap_fn)dlsym(RTLD_NEXT, "mremap");
	if (!libc_mmap || !libc_munmap || !libc_mprotect || !libc_madvise ||
	    !libc_mremap) {
		printf("skip: the C library's entry points are not found\n");
		return 77;
	}
#if defined(__SANITIZE_THREAD__)
	/* Nothing is redirected under ThreadSanitizer (ARCHITECTURE.md). */
	printf("skip: no entry redirection under ThreadSanitizer\n");
	return 77;
#endif
	while (stress_running() || rounds < 5) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0)
			_exit(round_child());
		int st = stress_wait_child(pid, 20000);
		snprintf(what, sizeof(what), "round %llu: child %s %d",
			 (unsigned long long)rounds,
			 st == -1 ? "hung" : WIFSIGNALED(st) ? "died by signal"
							     : "exited",
			 st == -1 ? 0 : WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
		stress_check(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, what);
		rounds++;
	}
	return stress_finish("stress_hook_install", rounds);
}
