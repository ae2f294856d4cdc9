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

/*
 * Once per change, as on Windows: kernelbase's VirtualFree/VirtualProtect,
 * refused by the kernel for a secured range, call RtlFlushSecureMemoryCache
 * once with the call's own address and size, which calls each registered
 * callback once, and then retry the call.  Here one hooked call reaches one
 * watch per (callback, range) pair, one after the other on the calling
 * thread; a listener, told of every hooked call before the watches, notes
 * the call on this thread, and each callback runs for the first of its
 * pairs only, with the call's range; its answer applies to every secured
 * part the call touches.  Late (userfaultfd) events have no such call and
 * give one callback per range.
 */
#define DONE 8
static __thread struct change {
	unsigned int gen;                  /* the listener that noted it */
	uint64_t lo, len;                  /* the call's range */
	unsigned int n;                    /* callbacks already run for it */
	struct {
		const struct cachecb *cb;
		BOOLEAN dropped;
	} done[DONE];                      /* past DONE: run again (more
					      calls, never fewer) */
} change __attribute__((tls_model("initial-exec")));
/* The listener lives while some range is secured (so mn_shutdown() is not
   kept busy by it), created before that range's watches; each one has a
   new generation, and a call noted by an older one is not used. */
static mn_sub *listener;                 /* lock */
static _Atomic unsigned int listener_gen;

/* Synchronous context, before the watches: async-signal-safe. */
static void on_call(const struct mn_vm_event *ev, void *ctx)
{
	change.gen = (unsigned int)(uintptr_t)ctx;
	change.lo = ev->address;
	change.len = ev->length;
	change.n = 0;
}

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

static void drop_part(struct secured *r, uint64_t a, uint64_t len)
{
	unsigned int i = atomic_fetch_add(&r->nholes, 1);

	if (i < HOLES) {
		atomic_store(&r->holes[i].len, len);
		atomic_store(&r->holes[i].start, a);
	}
}

/* Synchronous context (the thread changing the memory, maybe in a signal
   handler) or the dispatcher for late events: lock-free, no allocation —
   async-signal-safe. */
static void on_change(const struct mn_vm_event *ev, void *ctx)
{
	struct pair *p = ctx;
	struct secured *r = p->rng;
	uint64_t a = ev->address, len = ev->length;
	bool of_call = !ev->late &&
		       change.gen == atomic_load_explicit(&listener_gen,
							  memory_order_relaxed) &&
		       a >= change.lo && a + len <= change.lo + change.len;
	BOOLEAN dropped;

	if (unsecured(r, a, len))
		return;
	if (of_call) {
		for (unsigned int i = 0; i < change.n && i < DONE; i++)
			if (change.done[i].cb == p->cb) {
				/* Already called for this change. */
				if (change.done[i].dropped)
					drop_part(r, a, len);
				return;
			}
		a = change.lo;
		len = change.len;
	}
	/* The callback may change memory itself: its calls note theirs. */
	struct change saved = change;
	in_callback++;
	dropped = p->fn((PVOID)(uintptr_t)a, (SIZE_T)len);
	in_callback--;
	change = saved;
	if (of_call && change.n < DONE) {
		change.done[change.n].cb = p->cb;
		change.done[change.n].dropped = dropped;
		change.n++;
	}
	if (dropped)
		drop_part(r, ev->address, ev->length);
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
	if (!listener) {
		/* The first secured range: the listener that tells a change
		   from its parts, before any watch of the range. */
		unsigned int gen = atomic_load(&listener_gen) + 1;
		if (!gen)
			gen = 1;
		err = mn_vm_listen(0, on_call, (void *)(uintptr_t)gen, &listener);
		if (!err)
			atomic_store(&listener_gen, gen);
		else
			listener = NULL;
	}
	for (struct cachecb *cb = cbs; cb && !err; cb = cb->next)
		err = pair_up(cb, r);
	if (!err)
		mn__w32_push(&ranges, r);
	struct pair *undo = err ? unpair(NULL, r) : NULL;
	mn_sub *idle = NULL;
	if (!ranges) {
		idle = listener;
		listener = NULL;
	}
	pthread_mutex_unlock(&lock);
	if (err) {
		end_pairs(undo);
		if (idle)
			mn_unsubscribe(idle);
		free(r);
		return mn__w32_fail(err, NULL);
	}
	return r;
}

VOID MmUnsecureVirtualMemory(HANDLE handle)
{
	struct secured *r;
	struct pair *gone = NULL;

	mn_sub *idle = NULL;

	pthread_mutex_lock(&lock);
	r = mn__w32_take(&ranges, handle);
	if (r)
		gone = unpair(NULL, r);
	if (r && !ranges) {
		/* The last secured range: no listener needed any more. */
		idle = listener;
		listener = NULL;
	}
	pthread_mutex_unlock(&lock);
	if (!r) {
		SetLastError(ERROR_INVALID_HANDLE);
		return;
	}
	end_pairs(gone);
	if (idle)
		mn_unsubscribe(idle); /* waits, unless in a callback */
	if (!in_callback)
		free(r);
}
