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

/* Nonzero once a watch or a listener exists: the hooks' fast-path test. */
extern _Atomic int mn__vm_active;

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

/* Core lock held: a callback that sees every notification (the hooks'
   self-test), or NULL. */
void mn__vm_selftest_arm(mn_vm_cb cb);
/* Hooks note the discards of watched ranges they reported, so that
   userfaultfd's late copy of the same change is dropped (notes expire
   after a short while).  Async-signal-safe. */
void mn__vm_seen_note(enum mn_vm_kind kind, uint64_t lo, uint64_t hi);
bool mn__vm_seen_check(enum mn_vm_kind kind, uint64_t lo, uint64_t hi);

/* Hooks (hooks.c): make sure they are installed; core lock held. */
void mn__vm_hooks_install(void);
bool mn__vm_interposing(void);
int mn__vm_patch_status(char *detail, size_t len);

/* userfaultfd (uffd.c), core lock held: register / drop a watched range.
   Returns 0 or -errno (the range stays watched by the hooks alone). */
int mn__uffd_register(uint64_t start, uint64_t len);
void mn__uffd_unregister(uint64_t start, uint64_t len);
/* From a hook, before an unmap or move a hook has reported: take the range
   out of userfaultfd so the kernel sends no late copy.  Async-signal-safe
   (one ioctl). */
void mn__uffd_forget(uint64_t start, uint64_t len);
int mn__uffd_probe(char *detail, size_t len);

/* Page helpers. */
uint64_t mn__page_size(void);

#endif
