/* SPDX-License-Identifier: MIT */
/*
 * The target of `memnotify inject` in test_inject.sh: a program written as
 * a user would, with the library's bad-memory handlers.  It asks for early
 * notice, keeps a page of data, prints "PAGE ADDRESS" and waits.  When the
 * kernel reports the page poisoned (BUS_MCEERR_AO), it prints "ao ADDRESS",
 * touches the page anyway (BUS_MCEERR_AR), survives through
 * mn_badmem_replace(), refills it, prints "recovered" and exits 0.  Exits 1
 * on any other outcome, and dies of SIGALRM after 60 s.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memnotify.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static uint64_t bad_addr;
static int bad_code;
static atomic_int ar_calls;

static void on_bad(const struct mn_badmem_event *ev, void *ctx)
{
	(void)ctx;
	if (ev->kind != MN_BADMEM_PAGE || ev->page.scope != MN_BADMEM_PROCESS)
		return;
	pthread_mutex_lock(&mu);
	if (!bad_addr) {
		bad_addr = ev->page.address;
		bad_code = ev->page.si_code;
	}
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* Signal context: mn_badmem_replace() and an atomic only. */
static int on_ar(const struct mn_bad_page *page, siginfo_t *info, void *uc,
		 int handled, void *ctx)
{
	(void)info; (void)uc; (void)handled; (void)ctx;
	atomic_fetch_add(&ar_calls, 1);
	return mn_badmem_replace((void *)(uintptr_t)page->address,
				 (size_t)page->length) == 0;
}

int main(void)
{
	struct mn_badmem_opts o = { .sz = sizeof(o),
				    .flags = MN_BADMEM_EARLY_KILL |
					     MN_BADMEM_NO_SYSTEM };
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	mn_sub *sub, *ar;
	char *p = mmap(NULL, ps, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	alarm(60);
	if (p == MAP_FAILED || mn_badmem_subscribe(&o, on_bad, NULL, &sub) ||
	    mn_badmem_register_ar(on_ar, NULL, &ar))
		return 1;
	memset(p, 'D', ps);
	printf("page %p\n", (void *)p);
	fflush(stdout);
	pthread_mutex_lock(&mu);
	while (!bad_addr)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	printf("ao %#" PRIx64 " code %d\n", bad_addr, bad_code);
	if (bad_addr != (uintptr_t)p || bad_code != BUS_MCEERR_AO)
		return 1;
	if (*(volatile char *)p != 0 || atomic_load(&ar_calls) != 1)
		return 1;
	memset(p, 'D', ps);
	printf("recovered\n");
	return 0;
}
