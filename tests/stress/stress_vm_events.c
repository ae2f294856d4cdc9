/* SPDX-License-Identifier: MIT */
/*
 * Range events are never lost silently.  Each iteration:
 *  (a) mremap(MREMAP_MAYMOVE | MREMAP_DONTUNMAP) of a range watched with
 *      MN_VM_NO_USERFAULTFD: the hooks must report MN_VM_MOVE of the old
 *      range and MN_VM_DISCARD of the old range (it stays mapped, empty).
 *      Before the fix nothing was reported.
 *  (b) per-call de-duplication, on a range watched with userfaultfd: a
 *      hooked madvise(MADV_DONTNEED) gives exactly one hook event and no
 *      late copy; a raw syscall(SYS_madvise, ..., MADV_DONTNEED) of the same
 *      range right after gives exactly one late event.  A raw discard of a
 *      second watched range follows, and its late event (same reader, same
 *      queue, in order) says every earlier late event has been delivered.
 *      Before the fix a 1-second record per range swallowed the raw call's
 *      event, uncounted.
 * mn_stats()'s events_lost must not grow.
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "memnotify.h"
#include "stress.h"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

#define PS 4096u

struct rec {
	uint64_t addr, len;
	_Atomic int hook_move, hook_discard, hook_other;
	_Atomic int late_discard, late_other;
};

static void on_vm(const struct mn_vm_event *ev, void *ctx)
{
	struct rec *r = ctx;
	bool whole = ev->address == r->addr && ev->length == r->len;

	if (ev->late) {
		if (ev->via == MN_VM_VIA_USERFAULTFD && ev->kind == MN_VM_DISCARD &&
		    whole)
			atomic_fetch_add(&r->late_discard, 1);
		else
			atomic_fetch_add(&r->late_other, 1);
	} else if (ev->via == MN_VM_VIA_HOOK && whole && ev->kind == MN_VM_MOVE &&
		   ev->new_length == r->len) {
		atomic_fetch_add(&r->hook_move, 1);
	} else if (ev->via == MN_VM_VIA_HOOK && whole && ev->kind == MN_VM_DISCARD) {
		atomic_fetch_add(&r->hook_discard, 1);
	} else {
		atomic_fetch_add(&r->hook_other, 1);
	}
}

static void reset(struct rec *r)
{
	atomic_store(&r->hook_move, 0);
	atomic_store(&r->hook_discard, 0);
	atomic_store(&r->hook_other, 0);
	atomic_store(&r->late_discard, 0);
	atomic_store(&r->late_other, 0);
}

/* (a): one DONTUNMAP move of a freshly watched range. */
static bool dontunmap_once(char *what, size_t wlen)
{
	static struct rec r;
	size_t len = 2 * PS;
	char *p = stress_anon(len);
	mn_sub *w;
	bool ok;

	if (!p)
		return snprintf(what, wlen, "mmap"), false;
	r.addr = (uint64_t)(uintptr_t)p;
	r.len = len;
	reset(&r);
	if (mn_vm_watch(p, len, MN_VM_NO_USERFAULTFD, on_vm, &r, &w) != 0)
		return snprintf(what, wlen, "mn_vm_watch"), false;
	void *q = mremap(p, len, len, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
	if (q == MAP_FAILED) {
		mn_unsubscribe(w);
		munmap(p, len);
		return snprintf(what, wlen, "mremap(MREMAP_DONTUNMAP) failed"), false;
	}
	ok = atomic_load(&r.hook_move) == 1 && atomic_load(&r.hook_discard) == 1 &&
	     atomic_load(&r.hook_other) == 0 && atomic_load(&r.late_discard) == 0;
	snprintf(what, wlen,
		 "MREMAP_DONTUNMAP: move %d, discard %d, other %d (want 1, 1, 0)",
		 atomic_load(&r.hook_move), atomic_load(&r.hook_discard),
		 atomic_load(&r.hook_other));
	mn_unsubscribe(w);
	munmap(p, len);
	munmap(q, len);
	return ok;
}

int main(void)
{
	struct mn_capability cap = { .sz = sizeof(cap) };
	struct mn_stats st0 = { .sz = sizeof(st0) }, st1 = { .sz = sizeof(st1) };
	static struct rec r, sentinel;
	size_t len = 4 * PS;
	uint64_t iters = 0;
	mn_sub *w, *ws;
	char what[160];

	/* (a) needs the hooks only. */
	void *probe = stress_anon(2 * PS);
	void *moved = probe ? mremap(probe, 2 * PS, 2 * PS,
				     MREMAP_MAYMOVE | MREMAP_DONTUNMAP) : MAP_FAILED;
	if (moved == MAP_FAILED) {
		printf("skip: mremap(MREMAP_DONTUNMAP) is refused here\n");
		return 77;
	}
	munmap(probe, 2 * PS);
	munmap(moved, 2 * PS);
	if (mn_capability(MN_CAP_USERFAULTFD, &cap) != 0 || !cap.supported) {
		printf("skip: no userfaultfd here: %s\n", cap.detail);
		return 77;
	}
	char *p = stress_anon(len), *s = stress_anon(PS);
	if (!p || !s)
		return 1;
	r.addr = (uint64_t)(uintptr_t)p;
	r.len = len;
	sentinel.addr = (uint64_t)(uintptr_t)s;
	sentinel.len = PS;
	if (mn_vm_watch(p, len, 0, on_vm, &r, &w) != 0 ||
	    mn_vm_watch(s, PS, 0, on_vm, &sentinel, &ws) != 0)
		return 1;
	mn_stats(&st0);
	while (stress_running() || iters < 50) {
		bool ok = dontunmap_once(what, sizeof(what));
		stress_check(ok, what);
		if (!ok)
			break;

		/* (b) */
		reset(&r);
		reset(&sentinel);
		madvise(p, len, MADV_DONTNEED);
		int hooked = atomic_load(&r.hook_discard);
		syscall(SYS_madvise, p, len, MADV_DONTNEED);
		syscall(SYS_madvise, s, PS, MADV_DONTNEED);
		double end = stress_now() + 5;
		while (!atomic_load(&sentinel.late_discard) && stress_now() < end)
			sched_yield();
		if (!atomic_load(&sentinel.late_discard)) {
			stress_check(false, "the sentinel's late event within 5 s");
			break;
		}
		ok = hooked == 1 && atomic_load(&r.hook_discard) == 1 &&
		     atomic_load(&r.late_discard) == 1 &&
		     atomic_load(&r.hook_other) == 0 && atomic_load(&r.late_other) == 0;
		snprintf(what, sizeof(what),
			 "iteration %llu: hooked discard %d, late discards %d, "
			 "other %d/%d (want 1, 1, 0/0)",
			 (unsigned long long)iters, atomic_load(&r.hook_discard),
			 atomic_load(&r.late_discard), atomic_load(&r.hook_other),
			 atomic_load(&r.late_other));
		stress_check(ok, what);
		iters++;
		if (!ok)
			break;
	}
	mn_stats(&st1);
	snprintf(what, sizeof(what), "events_lost %llu -> %llu",
		 (unsigned long long)st0.events_lost,
		 (unsigned long long)st1.events_lost);
	stress_check(st1.events_lost == st0.events_lost, what);
	stress_check(mn_unsubscribe(w) == 0 && mn_unsubscribe(ws) == 0,
		     "mn_unsubscribe");
	return stress_finish("stress_vm_events", iters);
}
