/* SPDX-License-Identifier: MIT */
/*
 * bench/patch_install: how long the first mn_vm_listen() takes — the
 * C library's entry points redirected (decode, landing pads, one page
 * made writable and restored per entry, membarrier SYNC_CORE) plus the
 * self-test — in a process with 1, 16 and 256 running threads.  Each
 * measurement is a fresh child (the redirection happens once per process);
 * the other threads loop on mmap/munmap through the entry points being
 * changed.  Printed per row, the median of 7 children: the wall time, and
 * the installing thread's own CPU time (CLOCK_THREAD_CPUTIME_ID) — on a
 * machine with few cores the wall time mostly measures the installing
 * thread's share of the CPU among N runnable threads — each with its ratio
 * to the 1-thread row of the same run.
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
#include <time.h>
#include <unistd.h>

#include "memnotify.h"

#define SAMPLES 7

typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
typedef int (*munmap_fn)(void *, size_t);

static mmap_fn libc_mmap;
static munmap_fn libc_munmap;
static _Atomic int stop;
static _Atomic int started;

static uint64_t clock_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *worker(void *arg)
{
	(void)arg;
	atomic_fetch_add(&started, 1);
	while (!atomic_load(&stop)) {
		void *p = libc_mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED)
			libc_munmap(p, 4096);
	}
	return NULL;
}

static void on_event(const struct mn_vm_event *ev, void *ctx)
{
	(void)ev;
	(void)ctx;
}

/* In a child: start @threads - 1 workers, time the first listen. */
static int child(int threads, int wfd)
{
	pthread_t *t = calloc((size_t)threads, sizeof(*t));
	uint64_t ns[2];
	mn_sub *sub;

	for (int i = 1; i < threads; i++)
		if (pthread_create(&t[i], NULL, worker, NULL))
			return 1;
	while (atomic_load(&started) < threads - 1)
		sched_yield();
	ns[0] = clock_ns(CLOCK_MONOTONIC);
	ns[1] = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	if (mn_vm_listen(0, on_event, NULL, &sub))
		return 1;
	ns[0] = clock_ns(CLOCK_MONOTONIC) - ns[0];
	ns[1] = clock_ns(CLOCK_THREAD_CPUTIME_ID) - ns[1];
	atomic_store(&stop, 1);
	for (int i = 1; i < threads; i++)
		pthread_join(t[i], NULL);
	return write(wfd, ns, sizeof(ns)) == sizeof(ns) ? 0 : 1;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int measure(int threads, uint64_t median[2])
{
	uint64_t v[2][SAMPLES];

	for (int i = 0; i < SAMPLES; i++) {
		uint64_t ns[2] = { 0, 0 };
		int p[2], st;
		if (pipe(p))
			return -1;
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0)
			_exit(child(threads, p[1]));
		close(p[1]);
		if (read(p[0], ns, sizeof(ns)) != sizeof(ns))
			ns[0] = 0;
		close(p[0]);
		waitpid(pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) || !ns[0])
			return -1;
		v[0][i] = ns[0];
		v[1][i] = ns[1];
	}
	for (int k = 0; k < 2; k++) {
		qsort(v[k], SAMPLES, sizeof(v[k][0]), cmp);
		median[k] = v[k][SAMPLES / 2];
	}
	return 0;
}

int main(void)
{
	static const int rows[] = { 1, 16, 256 };
	struct mn_capability cap = { .sz = sizeof(cap) };
	uint64_t base[2] = { 0, 0 }, t[2];

	libc_mmap = (mmap_fn)dlsym(RTLD_NEXT, "mmap");
	libc_munmap = (munmap_fn)dlsym(RTLD_NEXT, "munmap");
	if (!libc_mmap || !libc_munmap) {
		printf("skip: the C library's mmap/munmap are not found\n");
		return 77;
	}
	/* Not probed here: a child must be the first to install. */
	printf("%-8s %12s %8s %14s %8s\n", "threads", "wall (us)", "vs 1",
	       "its CPU (us)", "vs 1");
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (measure(rows[i], t) < 0) {
			printf("%d threads: a child failed\n", rows[i]);
			return 1;
		}
		if (!base[0]) {
			base[0] = t[0];
			base[1] = t[1] ? t[1] : 1;
		}
		printf("%-8d %12.1f %7.2fx %14.1f %7.2fx\n", rows[i],
		       (double)t[0] / 1000.0, (double)t[0] / (double)base[0],
		       (double)t[1] / 1000.0, (double)t[1] / (double)base[1]);
	}
	mn_capability(MN_CAP_VM_LIBC_PATCH, &cap);
	printf("entry redirection: %s\n", cap.detail);
	return cap.supported ? 0 : 77;
}
