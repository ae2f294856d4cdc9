/* SPDX-License-Identifier: MIT */
/*
 * AddSecureMemoryCacheCallback / MmSecureVirtualMemory over mn_vm_watch():
 * one watch per (callback, secured range) pair, so adding, removing and
 * unsecuring inherit the native API's guarantees (a removed callback is not
 * running and never runs again).
 */
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "face.h"

#define HOLES 16

struct secured {
	struct mn__w32_link link;      /* ranges, lock */
	uintptr_t addr;
	size_t len;
	/* Parts a callback dropped (returned TRUE for): unsecured, so no
	   more callbacks for them.  Written lock-free from synchronous
	   context; a slot is published by its start (0: empty).  When the
	   slots run out the parts stay secured (more callbacks, never
	   fewer). */
	_Atomic unsigned int nholes;
	struct {
		_Atomic uint64_t start, len;
	} holes[HOLES];
};

struct cachecb {
	struct cachecb *next;          /* lock */
	MN_PSECURE_MEMORY_CACHE_CALLBACK fn;
};

struct pair {
	struct pair *next;             /* lock */
	struct cachecb *cb;
	struct secured *rng;
	MN_PSECURE_MEMORY_CACHE_CALLBACK fn;
	mn_sub *watch;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* Depth of secure-memory callbacks running on this thread.  Windows code
   unsecures from inside its callback; then the pairs and the range may be
   in use right now (here, or on another thread whose invocation
   mn_unsubscribe() does not wait for from inside a callback), so their
   few bytes are kept, never freed: no use after free. */
static __thread int in_callback __attribute__((tls_model("initial-exec")));
static struct mn__w32_link *ranges;
static struct cachecb *cbs;
static struct pair *pairs;

static bool unsecured(struct secured *r, uint64_t a, uint64_t len)
{
	unsigned int n = MN__MIN(atomic_load(&r->nholes), (unsigned int)HOLES);

	for (unsigned int i = 0; i < n; i++) {
		uint64_t s = atomic_load(&r->holes[i].start);
		uint64_t l = atomic_load(&r->holes[i].len);
		if (s && a >= s && a + len <= s + l)
			return true;
	}
	return false;
}

/* Synchronous context (the thread changing the memory, maybe in a signal
   handler) or the dispatcher for late events: lock-free, no allocation —
   async-signal-safe. */
static void on_change(const struct mn_vm_event *ev, void *ctx)
{
	struct pair *p = ctx;
	struct secured *r = p->rng;

	BOOLEAN dropped;

	if (unsecured(r, ev->address, ev->length))
		return;
	in_callback++;
	dropped = p->fn((PVOID)(uintptr_t)ev->address, (SIZE_T)ev->length);
	in_callback--;
	if (!dropped)
		return;
	unsigned int i = atomic_fetch_add(&r->nholes, 1);
	if (i < HOLES) {
		atomic_store(&r->holes[i].len, ev->length);
		atomic_store(&r->holes[i].start, ev->address);
	}
}

/* Pair @cb with @r (lock held). */
static int pair_up(struct cachecb *cb, struct secured *r)
{
	struct pair *p = calloc(1, sizeof(*p));
	int err;

	if (!p)
		return -ENOMEM;
	p->cb = cb;
	p->rng = r;
	p->fn = cb->fn;
	err = mn_vm_watch((void *)r->addr, r->len, 0, on_change, p, &p->watch);
	if (err) {
		free(p);
		return err;
	}
	p->next = pairs;
	pairs = p;
	return 0;
}

/* Unlink the pairs of @cb or of @r (lock held) into a list to end. */
static struct pair *unpair(struct cachecb *cb, struct secured *r)
{
	struct pair **pp = &pairs, *out = NULL;

	while (*pp) {
		struct pair *p = *pp;
		if (p->cb == cb || p->rng == r) {
			*pp = p->next;
			p->next = out;
			out = p;
		} else {
			pp = &p->next;
		}
	}
	return out;
}

/* Outside the lock: a callback running now may itself take it. */
static void end_pairs(struct pair *p)
{
	while (p) {
		struct pair *next = p->next;
		mn_unsubscribe(p->watch); /* waits, unless in a callback */
		if (!in_callback)
			free(p);
		p = next;
	}
}

BOOL AddSecureMemoryCacheCallback(MN_PSECURE_MEMORY_CACHE_CALLBACK fn)
{
	struct cachecb *cb;
	int err = 0;

	if (!fn)
		return mn__w32_fail(-EINVAL, FALSE);
	cb = calloc(1, sizeof(*cb));
	if (!cb)
		return mn__w32_fail(-ENOMEM, FALSE);
	cb->fn = fn;
	pthread_mutex_lock(&lock);
	for (struct mn__w32_link *l = ranges; l && !err; l = l->next)
		err = pair_up(cb, (struct secured *)l);
	if (!err) {
		cb->next = cbs;
		cbs = cb;
	}
	struct pair *undo = err ? unpair(cb, NULL) : NULL;
	pthread_mutex_unlock(&lock);
	if (err) {
		end_pairs(undo);
		free(cb);
		return mn__w32_fail(err, FALSE);
	}
	return TRUE;
}
MN__W32_ALIAS(AddSecureMemoryCacheCallback);

BOOL RemoveSecureMemoryCacheCallback(MN_PSECURE_MEMORY_CACHE_CALLBACK fn)
{
	struct cachecb **pp, *cb = NULL;
	struct pair *gone = NULL;

	pthread_mutex_lock(&lock);
	for (pp = &cbs; *pp; pp = &(*pp)->next)
		if ((*pp)->fn == fn) {
			cb = *pp;
			*pp = cb->next;
			gone = unpair(cb, NULL);
			break;
		}
	pthread_mutex_unlock(&lock);
	if (!cb)
		return mn__w32_fail(-EINVAL, FALSE);
	end_pairs(gone);
	if (!in_callback)
		free(cb);
	return TRUE;
}
MN__W32_ALIAS(RemoveSecureMemoryCacheCallback);

/* Is all of [lo, hi) mapped with at least @need? */
static int probe(uintptr_t lo, uintptr_t hi, int need)
{
	while (lo < hi) {
		uintptr_t s, e;
		int prot, err = mn__maps_lookup(lo, &s, &e, &prot);

		if (err)
			return err == -ENOENT ? -EFAULT : err;
		if ((prot & need) != need)
			return -EFAULT;
		lo = e;
	}
	return 0;
}

HANDLE MmSecureVirtualMemory(PVOID address, SIZE_T size, ULONG mode)
{
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t lo = (uintptr_t)address & ~(pg - 1), hi;
	struct secured *r;
	int need, err = 0;

	if (mode == PAGE_READONLY)
		need = PROT_READ;
	else if (mode == PAGE_READWRITE)
		need = PROT_READ | PROT_WRITE;
	else
		return mn__w32_fail(-EINVAL, NULL);
	if (!size || (uintptr_t)address + size < (uintptr_t)address ||
	    (uintptr_t)address + size > UINTPTR_MAX - pg)
		return mn__w32_fail(-EINVAL, NULL);
	hi = ((uintptr_t)address + size + pg - 1) & ~(pg - 1);
	err = probe(lo, hi, need);
	if (err)
		return mn__w32_fail(err, NULL);
	r = calloc(1, sizeof(*r));
	if (!r)
		return mn__w32_fail(-ENOMEM, NULL);
	r->addr = lo;
	r->len = hi - lo;
	pthread_mutex_lock(&lock);
	for (struct cachecb *cb = cbs; cb && !err; cb = cb->next)
		err = pair_up(cb, r);
	if (!err)
		mn__w32_push(&ranges, r);
	struct pair *undo = err ? unpair(NULL, r) : NULL;
	pthread_mutex_unlock(&lock);
	if (err) {
		end_pairs(undo);
		free(r);
		return mn__w32_fail(err, NULL);
	}
	return r;
}

VOID MmUnsecureVirtualMemory(HANDLE handle)
{
	struct secured *r;
	struct pair *gone = NULL;

	pthread_mutex_lock(&lock);
	r = mn__w32_take(&ranges, handle);
	if (r)
		gone = unpair(NULL, r);
	pthread_mutex_unlock(&lock);
	if (!r) {
		SetLastError(ERROR_INVALID_HANDLE);
		return;
	}
	end_pairs(gone);
	if (!in_callback)
		free(r);
}
