/* SPDX-License-Identifier: MIT */
/*
 * RegisterBadMemoryNotification over mn_badmem_subscribe(), and
 * QueryWorkingSetEx over mn_page_query().
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "face.h"

struct badreg {
	struct mn__w32_link link; /* regs, lock */
	MN_PBAD_MEMORY_CALLBACK_ROUTINE fn;
	mn_sub *sub;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct mn__w32_link *regs;

/* fork() takes the lock (core.c's atfork handlers): a child never
   inherits it held. */
__attribute__((constructor)) static void badmem_face_init(void)
{
	mn__lock_register(&lock, MN__RANK_FACE);
}

/* Thread context (the dispatcher): one call per bad range, per rise of
   HardwareCorrupted, or per overflow report. */
static void on_bad(const struct mn_badmem_event *ev, void *ctx)
{
	(void)ev;
	((struct badreg *)ctx)->fn();
}

PVOID RegisterBadMemoryNotification(MN_PBAD_MEMORY_CALLBACK_ROUTINE fn)
{
	struct mn_capability cap = { .sz = sizeof(cap) };
	struct mn_badmem_opts o = { .sz = sizeof(o) };
	struct badreg *r;
	int err;

	if (!fn)
		return mn__w32_fail(-EINVAL, NULL);
	r = calloc(1, sizeof(*r));
	if (!r)
		return mn__w32_fail(-ENOMEM, NULL);
	r->fn = fn;
	/* Early notice where the kernel has it: Windows calls back when the
	   page is found bad, not when it is touched. */
	mn_capability(MN_CAP_MCE_EARLY_KILL, &cap);
	o.flags = cap.supported ? MN_BADMEM_EARLY_KILL : 0;
	err = mn_badmem_subscribe(&o, on_bad, r, &r->sub);
	if (err && o.flags) {
		o.flags = 0;
		err = mn_badmem_subscribe(&o, on_bad, r, &r->sub);
	}
	if (err) {
		free(r);
		return mn__w32_fail(err, NULL);
	}
	pthread_mutex_lock(&lock);
	mn__w32_push(&regs, r);
	pthread_mutex_unlock(&lock);
	return r;
}
MN__W32_ALIAS(RegisterBadMemoryNotification);

BOOL UnregisterBadMemoryNotification(PVOID handle)
{
	struct badreg *r;

	pthread_mutex_lock(&lock);
	r = mn__w32_take(&regs, handle);
	pthread_mutex_unlock(&lock);
	if (!r)
		return mn__w32_fail(-ENOENT, FALSE);
	mn_unsubscribe(r->sub);
	free(r);
	return TRUE;
}
MN__W32_ALIAS(UnregisterBadMemoryNotification);

BOOL GetMemoryErrorHandlingCapabilities(PULONG caps)
{
	struct mn_capability cap = { .sz = sizeof(cap) };

	if (!caps)
		return mn__w32_fail(-EINVAL, FALSE);
	mn_capability(MN_CAP_PATROL_SCRUBBER, &cap);
	*caps = cap.supported ? MEHC_PATROL_SCRUBBER_PRESENT : 0;
	return TRUE;
}
MN__W32_ALIAS(GetMemoryErrorHandlingCapabilities);

/* --- QueryWorkingSetEx: a translation of mn_page_query() ------------------ */

/* One entry's attributes from the native description of its page. */
static PSAPI_WORKING_SET_EX_BLOCK block_of(const struct mn_page_info *p)
{
	PSAPI_WORKING_SET_EX_BLOCK b = { .Flags = 0 };
	bool shared = p->flags & MN_PAGE_SHARED;

	/* Windows: an inaccessible page is not in the working set (Valid 0,
	   protection 0), resident or not. */
	if ((p->flags & MN_PAGE_RESIDENT) && p->prot != PROT_NONE) {
		b.Valid = 1;
		b.Win32Protection = mn__w32_page_of_prot(p->prot);
		b.Shared = shared;
		if (shared) /* 3 bits */
			b.ShareCount = p->share_count > 7 ? 7 : p->share_count;
		b.Locked = !!(p->flags & MN_PAGE_LOCKED);
		b.LargePage = !!(p->flags & MN_PAGE_HUGE);
		if (p->node >= 0 && p->node < 64)
			b.Node = (unsigned)p->node;
	} else if (p->flags & MN_PAGE_MAPPED) {
		b.Invalid.Shared = shared;
	}
	if (p->flags & MN_PAGE_BAD)
		b.Flags |= MN_WORKING_SET_EX_BAD;
	return b;
}

BOOL QueryWorkingSetEx(HANDLE process, PVOID pv, DWORD cb)
{
	PSAPI_WORKING_SET_EX_INFORMATION *e = pv;
	size_t n = cb / sizeof(*e);

	if (process != GetCurrentProcess())
		return mn__w32_fail(-ENOENT, FALSE);
	if (!pv)
		return mn__w32_fail(-EINVAL, FALSE);
	if (n == 0) {
		/* Windows: a buffer too small for one entry is a bad length. */
		SetLastError(ERROR_BAD_LENGTH);
		return FALSE;
	}
	for (size_t i = 0; i < n; i++) {
		struct mn_page_info p = MN_OPTS_INIT(mn_page_info);
		int r = mn_page_query(e[i].VirtualAddress, 1, 0, &p, 1);
		if (r < 0)
			return mn__w32_fail(r, FALSE);
		e[i].VirtualAttributes = block_of(&p);
	}
	return TRUE;
}
MN__W32_ALIAS(QueryWorkingSetEx);
