/* SPDX-License-Identifier: MIT */
/*
 * Address-range invalidation: the notification core shared by the hooks
 * (hooks.c) and the userfaultfd safety net (uffd.c).
 */
#ifndef MN_VMRANGE_H
#define MN_VMRANGE_H

#include <stdbool.h>
#include <stdint.h>

#include "memnotify.h"

/* The capability rows of range invalidation: X(enum mn_cap, name, probe),
   for src/caps_table.c. */
#define MN__VMRANGE_CAPS(X)                                                   \
	X(MN_CAP_VM_INTERPOSE, "vm_interpose", mn__probe_vm_interpose)        \
	X(MN_CAP_VM_LIBC_PATCH, "vm_libc_patch", mn__probe_vm_libc_patch)     \
	X(MN_CAP_USERFAULTFD, "userfaultfd", mn__probe_userfaultfd)
int mn__probe_vm_interpose(char *detail, size_t len);   /* hooks.c */
int mn__probe_vm_libc_patch(char *detail, size_t len);  /* hooks.c */
int mn__probe_userfaultfd(char *detail, size_t len);    /* uffd.c */

/* Nonzero once a watch or a listener exists: the hooks' fast-path test. */
extern _Atomic int mn__vm_active;
/* Counts the unmaps and moves reported (hooks and late events) while
   userfaultfd is in use: a registration of whole mappings made under an
   unchanged count still covers them. */
extern _Atomic unsigned long mn__vm_map_seq;

/*
 * Report a change before it is made.  Synchronous context: the calling
 * thread, maybe in a signal handler.  Lock-free and allocation-free:
 * walks the listener chain and looks the range up in the watch index.
 * @ev: kind, address, length (page-aligned by the caller) and the
 * kind-specific fields; via, tid and the watch fields are filled here.
 */
void mn__vm_notify(struct mn_vm_event *ev);

/* Late events from userfaultfd: thread context (the dispatcher). */
void mn__vm_notify_late(struct mn_vm_event *ev);

/* A hooked discard of [lo, hi) (pages), reported already: begin before its
   system call, end after.  Registered memory in it is taken out of
   userfaultfd for the call and registered again after (no round trip
   through the reader); the call is also recorded as in flight, and the
   userfaultfd reader drops a REMOVE event a running call covers
   (inflight_match: the copy of a registration made meanwhile).
   Async-signal-safe. */
struct mn__vm_discard {
	int slot;
	bool held;
	uint64_t lo, hi;
};
void mn__vm_discard_begin(uint64_t lo, uint64_t hi, struct mn__vm_discard *d);
void mn__vm_discard_end(struct mn__vm_discard *d);
bool mn__vm_inflight_match(enum mn_vm_kind kind, uint64_t lo, uint64_t hi);

/* Hooks (hooks.c): make sure they are installed, once; no memnotify lock
   may be held (it calls dlopen and changes code). */
void mn__vm_hooks_install(void);
bool mn__vm_interposing(void);
int mn__vm_patch_status(char *detail, size_t len);

/* userfaultfd (uffd.c).  prepare: no lock held; sets it up once (a
   descriptor and its reader thread); 0 or -errno.  register / unregister:
   core lock held; 0 or -errno (the range stays watched by the hooks
   alone).  in_use: a descriptor exists (async-signal-safe). */
int mn__uffd_prepare(void);
bool mn__uffd_in_use(void);
/* register: @whole set when the range was registered with its whole
   mappings (never unregistered per range: mn__uffd_release_all() when the
   last watch using the safety net goes); otherwise the range alone. */
int mn__uffd_register(uint64_t start, uint64_t len, bool *whole);
void mn__uffd_unregister(uint64_t start, uint64_t len);
void mn__uffd_release_all(void);
struct mn__uffd_counts {
	uint64_t whole;      /* registered with their whole mappings */
	uint64_t per_range;  /* registered alone (the reason logged) */
	uint64_t failed;     /* not registered: the hooks alone watch them */
	uint64_t rehold_failed; /* a discard's range not registered again */
	uint64_t messages;   /* events the reader read, every kind */
	bool no_query;       /* PROCMAP_QUERY missing: every range alone */
};
void mn__uffd_counts(struct mn__uffd_counts *out);
/* The same, taking the core lock (for callers outside vmrange). */
void mn__vm_uffd_counts(struct mn__uffd_counts *out);
/* From a hook: [lo, hi) overlaps what is registered (conservative: true
   for a part unmapped since).  Lock-free, async-signal-safe. */
bool mn__uffd_covered(uint64_t lo, uint64_t hi);
/* From a hook, before an unmap or move a hook has reported: take the range
   out of userfaultfd so the kernel sends no late copy (the calling thread
   would wait for the reader: tens of microseconds).  Async-signal-safe
   (one ioctl). */
void mn__uffd_forget(uint64_t start, uint64_t len);
/* From a hook, after the system call of a discard whose range it forgot:
   register the parts of [lo, hi) that were registered again (a failure is
   counted in rehold_failed).  Async-signal-safe (ioctls). */
void mn__uffd_rehold(uint64_t lo, uint64_t hi);
/* Lock-free: [start, start + len) is inside the last span registered whole
   and nothing was unmapped or moved since (no system call needed). */
bool mn__uffd_covered_fast(uint64_t start, uint64_t len);
/* From a hook, after the system call of a discard it recorded in flight:
   wait until the reader has matched what its current read(2) took (our
   call's copy among it).  Async-signal-safe. */
void mn__uffd_reader_sync(void);

/* For a range cache with its own index (src/rcache).  listen_late: a
   listener (as mn_vm_listen() with no flags) that is also told the late
   userfaultfd events, on the dispatcher (its hook events may carry tid
   -1: no system call is made for it), and keeps the safety net's
   whole-mapping registrations while it lives; 0 or -errno; end it with
   mn_unsubscribe().  uffd_cover: register [start, start + len) with the
   safety net (its whole mappings; no system call when a mapping
   registered since the last unmap or move holds it); 0 or -errno, counted
   in mn__uffd_counts().  A range registered alone (no PROCMAP_QUERY) stays
   so until the last user of the safety net goes.  Thread context, no lock
   held, for both. */
int mn__vm_listen_late(mn_vm_cb cb, void *ctx, mn_sub **out);
int mn__vm_uffd_cover(uint64_t start, uint64_t len);

/* Page helpers. */
uint64_t mn__page_size(void);

#endif
