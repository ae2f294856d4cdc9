/* SPDX-License-Identifier: MIT */
/*
 * stress_dlopen's module (not a stress program of its own: the glob takes
 * stress_*.c only).  Its constructor, which the dynamic loader runs with
 * its own lock held, calls memnotify: a watch of an anonymous page (which
 * installs the hooks and userfaultfd on first use), its unsubscription, and
 * every capability.  The module is linked against nothing: the mn_*
 * symbols resolve to the loading program's copy of the library (the
 * program exports its symbols), so there is one memnotify in the process.
 * The counters are read by the program with dlsym().
 */
#include <sys/mman.h>

#include "memnotify.h"

__attribute__((visibility("default"))) int mn_stress_ctor_runs;
__attribute__((visibility("default"))) int mn_stress_ctor_errors;

static void on_vm(const struct mn_vm_event *ev, void *ctx)
{
	(void)ev;
	(void)ctx;
}

__attribute__((constructor)) static void ctor(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mn_sub *s;

	if (p == MAP_FAILED) {
		mn_stress_ctor_errors++;
		return;
	}
	*(volatile char *)p = 1;
	if (mn_vm_watch(p, 4096, 0, on_vm, NULL, &s) != 0 || mn_unsubscribe(s) != 0)
		mn_stress_ctor_errors++;
	munmap(p, 4096);
	for (unsigned int c = 0; c < MN_CAP__COUNT; c++) {
		struct mn_capability cap = { .sz = sizeof(cap) };
		if (mn_capability(c, &cap) != 0)
			mn_stress_ctor_errors++;
	}
	mn_stress_ctor_runs++;
}
