/* SPDX-License-Identifier: MIT */
/*
 * The userfaultfd safety net's registrations under churn.  One thread
 * makes and ends the only watch that uses userfaultfd, over and over: each
 * watch registers the area's mappings whole, each end releases every
 * registration.  Meanwhile hooked discards take their range out of
 * userfaultfd for their call and register it again after (a rehold that
 * races the release), hooked unmaps take theirs out for good and map the
 * page again, and raw discards make the kernel send late events.
 * Checks: at the end, with nothing watched, no page of the area is left
 * registered (no "uw" in its VmFlags in /proc/self/smaps: a leaked
 * registration would make every later unmap there wait for the reader),
 * and no event was lost.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "memnotify.h"
#include "stress.h"

#define PG 4096ul
#define NP 64

static char *area;
static _Atomic int stop;
static _Atomic unsigned long watches, discards, remaps, raws, events;

static void count(const struct mn_vm_event *ev, void *ctx)
{
	(void)ev;
	(void)ctx;
	atomic_fetch_add_explicit(&events, 1, memory_order_relaxed);
}

static void *watcher(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		mn_sub *w;
		if (mn_vm_watch(area + 8 * PG, 8 * PG, 0, count, NULL, &w) != 0)
			continue;
		sched_yield();
		mn_unsubscribe(w);
		atomic_fetch_add(&watches, 1);
	}
	return NULL;
}

static void *discarder(void *arg)
{
	unsigned int seed = (unsigned int)(uintptr_t)arg;

	while (!atomic_load(&stop)) {
		size_t i = (size_t)rand_r(&seed) % (NP - 4);
		madvise(area + i * PG, 4 * PG, MADV_DONTNEED);
		atomic_fetch_add(&discards, 1);
	}
	return NULL;
}

static void *remapper(void *arg)
{
	unsigned int seed = 7;

	(void)arg;
	while (!atomic_load(&stop)) {
		char *p = area + (size_t)(rand_r(&seed) % NP) * PG;
		munmap(p, PG);
		mmap(p, PG, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (rand_r(&seed) % 8 == 0) {
			syscall(SYS_madvise, p, PG, MADV_DONTNEED);
			atomic_fetch_add(&raws, 1);
		}
		atomic_fetch_add(&remaps, 1);
	}
	return NULL;
}

/* Pages of the area in a mapping registered with a userfaultfd. */
static size_t registered_pages(void)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	unsigned long lo = 0, hi = 0, a = (unsigned long)(uintptr_t)area,
		      b = a + NP * PG;
	char line[512];
	size_t n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2) {
			lo = s;
			hi = e;
		} else if (!strncmp(line, "VmFlags:", 8) && lo < b && hi > a &&
			   strstr(line, " uw")) {
			n += ((hi < b ? hi : b) - (lo > a ? lo : a)) / PG;
		}
	}
	fclose(f);
	return n;
}

int main(void)
{
	struct mn_capability cap = { .sz = sizeof(cap) };
	struct mn_stats st = { .sz = sizeof(st) };
	pthread_t t[4];
	uint64_t lost0;

	mn_capability(MN_CAP_USERFAULTFD, &cap);
	if (!cap.supported) {
		printf("skip: %s\n", cap.detail);
		return 77;
	}
	area = stress_anon(NP * PG);
	stress_check(area != NULL, "mmap");
	mn_stats(&st);
	lost0 = st.events_lost;
	pthread_create(&t[0], NULL, watcher, NULL);
	pthread_create(&t[1], NULL, discarder, (void *)1);
	pthread_create(&t[2], NULL, discarder, (void *)2);
	pthread_create(&t[3], NULL, remapper, NULL);
	while (stress_running())
		usleep(10000);
	atomic_store(&stop, 1);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	printf("stress_uffd_spans: %lu watches, %lu discards, %lu remaps, "
	       "%lu raw discards, %lu events\n", atomic_load(&watches),
	       atomic_load(&discards), atomic_load(&remaps), atomic_load(&raws),
	       atomic_load(&events));
	stress_check(atomic_load(&watches) > 0 && atomic_load(&discards) > 0,
		     "the loops ran");
	size_t left = registered_pages();
	if (left)
		printf("stress_uffd_spans: %zu pages left registered\n", left);
	stress_check(left == 0, "nothing left registered once nothing is watched");
	mn_stats(&st);
	stress_check(st.events_lost == lost0, "no event lost");
	return stress_finish("stress_uffd_spans",
			     atomic_load(&discards) + atomic_load(&remaps));
}
