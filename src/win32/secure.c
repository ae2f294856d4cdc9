/* SPDX-License-Identifier: MIT */
/*
 * AddSecureMemoryCacheCallback / MmSecureVirtualMemory over mn_vm_watch():
 * one watch per (callback, secured range) pair, so adding, removing and
 * unsecuring inherit the native API's guarantees (a removed callback is not
 * running and never runs again).
 */
#include <linux/futex.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
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

/*
 * A pair's watch is made with the lock released: mn_vm_watch() may wait
 * for a grace period — for every thread inside a range callback to
 * return — and may create threads, and a callback may call
 * MmUnsecureVirtualMemory(), which takes the lock.  Holding the lock
 * there deadlocked: thread A in MmSecureVirtualMemory() held it and
 * waited in mn_vm_watch() for thread B's callback, which waited for the
 * lock.  So a pair is linked first ("making"), its watch made unlocked,
 * then published; a removal that meets a pair being made leaves the end
 * of its watch to its maker ("gone") and, unless it runs inside a
 * callback (where nothing waits), waits until the maker is done with it
 * ("settled"), so that it returns, as documented, only once the callback
 * no longer runs for it.
 */
struct pair {
	struct pair *next;             /* pairs, lock; then the remover's list */
	struct pair *todo;             /* its maker's list */
	struct cachecb *cb;
	struct secured *rng;
	MN_PSECURE_MEMORY_CACHE_CALLBACK fn;
	mn_sub *watch;                 /* lock; NULL while being made */
	bool making;                   /* lock: mn_vm_watch() runs for it */
	bool gone;                     /* lock: removed while being made */
	bool waited;                   /* lock: its remover waits and frees it */
	bool settled;                  /* lock: its maker is done with it */
	_Atomic bool dead;             /* removed: on_change calls no more */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* Bumped (and woken) each time a maker settles a removed pair. */
static _Atomic unsigned int settle_gen;

/* fork() takes the lock (core.c's atfork handlers), so a child never
   inherits it held.  Nothing else here needs fork handling: a pair's
   maker or waiter that was a thread of the parent is not in the child,
   but neither is any caller that could wait for it. */
__attribute__((constructor)) static void secure_init(void)
{
	mn__lock_register(&lock, MN__RANK_FACE);
}
/* Depth of secure-memory callbacks running on this thread.  Windows code
   unsecures from inside its callback; then the pairs and the range may be
   in use right now (here, or on another thread whose invocation
   mn_unsubscribe() does not wait for from inside a callback), so their
   few bytes are kept, never freed: no use after free. */
static __thread int in_callback __attribute__((tls_model("initial-exec")));

/* May this thread wait for callbacks (and free what they use)?  Not
   inside a secure-memory callback, nor inside any other memnotify
   callback: a maker's mn_vm_watch() may be waiting for it to return. */
static bool may_wait(void)
{
	return !in_callback && !mn__chain_in_any_walk();
}
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
static mn_sub *_Atomic listener;         /* written under the lock */
static _Atomic unsigned int listener_gen; /* the installed one's */
static _Atomic unsigned int listener_next; /* generations handed out */

/* Synchronous context, before the watches: async-signal-safe. */
static void on_call(const struct mn_vm_event *ev, void *ctx)
{
	change.gen = (unsigned int)(uintptr_t)ctx;
	change.lo = ev->address;
	change.len = ev->length;
	change.n = 0;
}

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

	if (atomic_load(&p->dead) || unsecured(r, a, len))
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

/* Lock held: link a new pair of @cb and @r, being made, and put it on
   @todo; its watch is made by make_watches(), unlocked.  (calloc under
   the lock: an allocation never unmaps; nothing is freed under it.) */
static int pair_new(struct cachecb *cb, struct secured *r, struct pair **todo)
{
	struct pair *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->cb = cb;
	p->rng = r;
	p->fn = cb->fn;
	p->making = true;
	p->next = pairs;
	pairs = p;
	p->todo = *todo;
	*todo = p;
	return 0;
}

/* No lock held: make the watches of @todo and publish them.  A pair
   removed meanwhile is ended here.  Returns 0 or the first error, @err
   if it is one (the pairs after it get no watch; the caller's undo
   removes them). */
static int make_watches(struct pair *todo, int err)
{
	while (todo) {
		struct pair *p = todo;
		mn_sub *w = NULL;
		bool mine;

		todo = p->todo;
		if (!err)
			err = mn_vm_watch((void *)p->rng->addr, p->rng->len, 0,
					  on_change, p, &w);
		pthread_mutex_lock(&lock);
		p->making = false;
		if (!p->gone) {
			p->watch = w;
			pthread_mutex_unlock(&lock);
			continue;
		}
		pthread_mutex_unlock(&lock);
		if (w)
			mn_unsubscribe(w); /* waits, unless in a callback */
		pthread_mutex_lock(&lock);
		p->settled = true;
		mine = !p->waited;
		pthread_mutex_unlock(&lock);
		atomic_fetch_add(&settle_gen, 1);
		syscall(SYS_futex, &settle_gen, FUTEX_WAKE_PRIVATE, INT32_MAX,
			NULL, NULL, 0);
		if (mine && may_wait())
			free(p);
	}
	return err;
}

/* Lock held: unlink the pairs of @cb or of @r, which are called no more.
   Returns those to end; those being made are left to their maker and,
   if this thread may wait for them, put on @wait. */
static struct pair *unpair(struct cachecb *cb, struct secured *r,
			   struct pair **wait)
{
	struct pair **pp = &pairs, *out = NULL;
	bool can_wait = may_wait();

	*wait = NULL;
	while (*pp) {
		struct pair *p = *pp;
		if (p->cb != cb && p->rng != r) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		atomic_store(&p->dead, true);
		if (p->making) {
			p->gone = true;
			p->waited = can_wait;
			if (can_wait) {
				p->next = *wait;
				*wait = p;
			}
		} else {
			p->next = out;
			out = p;
		}
	}
	return out;
}

/* Outside the lock: a callback running now may itself take it. */
static void end_pairs(struct pair *p, struct pair *wait)
{
	while (p) {
		struct pair *next = p->next;
		if (p->watch)
			mn_unsubscribe(p->watch); /* waits, unless in a callback */
		if (may_wait())
			free(p);
		p = next;
	}
	/* Pairs being made when they were removed: until their makers have
	   ended their watches (only a thread that may wait has any). */
	while (wait) {
		struct pair *next = wait->next;
		for (;;) {
			unsigned int gen = atomic_load(&settle_gen);
			pthread_mutex_lock(&lock);
			bool done = wait->settled;
			pthread_mutex_unlock(&lock);
			if (done)
				break;
			syscall(SYS_futex, &settle_gen, FUTEX_WAIT_PRIVATE, gen,
				NULL, NULL, 0);
		}
		free(wait);
		wait = next;
	}
}

/* Lock held; returns with it released: take @cb off the list and end its
   pairs.  Only the caller that found it listed frees it (two removals of
   one registration, or a removal racing the undo of its addition). */
static void remove_cb_unlock(struct cachecb *cb)
{
	struct pair *gone = NULL, *wait = NULL;
	bool listed = false;

	for (struct cachecb **pp = &cbs; *pp; pp = &(*pp)->next)
		if (*pp == cb) {
			*pp = cb->next;
			listed = true;
			break;
		}
	if (listed)
		gone = unpair(cb, NULL, &wait);
	pthread_mutex_unlock(&lock);
	end_pairs(gone, wait);
	if (listed && may_wait())
		free(cb);
}

BOOL AddSecureMemoryCacheCallback(MN_PSECURE_MEMORY_CACHE_CALLBACK fn)
{
	struct pair *todo = NULL;
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
		err = pair_new(cb, (struct secured *)l, &todo);
	/* Listed now, so that a range secured from now on pairs with it. */
	cb->next = cbs;
	cbs = cb;
	pthread_mutex_unlock(&lock);
	err = make_watches(todo, err);
	if (err) {
		pthread_mutex_lock(&lock);
		remove_cb_unlock(cb);
		return mn__w32_fail(err, FALSE);
	}
	return TRUE;
}
MN__W32_ALIAS(AddSecureMemoryCacheCallback);

BOOL RemoveSecureMemoryCacheCallback(MN_PSECURE_MEMORY_CACHE_CALLBACK fn)
{
	struct cachecb *cb = NULL;

	pthread_mutex_lock(&lock);
	for (cb = cbs; cb && cb->fn != fn; cb = cb->next)
		;
	if (!cb) {
		pthread_mutex_unlock(&lock);
		return mn__w32_fail(-EINVAL, FALSE);
	}
	remove_cb_unlock(cb);
	return TRUE;
}
MN__W32_ALIAS(RemoveSecureMemoryCacheCallback);
static bool unsecure_unlock(HANDLE handle);

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
	struct pair *todo = NULL;
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
	for (;;) {
		/* The listener is made with the lock released (mn_vm_listen()
		   may wait for range callbacks, which may unsecure), before
		   any watch of this range; a spare one is ended. */
		mn_sub *cand = NULL;
		unsigned int gen = 0;
		if (!atomic_load(&listener)) {
			gen = atomic_fetch_add(&listener_next, 1) + 1;
			if (!gen)
				gen = atomic_fetch_add(&listener_next, 1) + 1;
			err = mn_vm_listen(0, on_call, (void *)(uintptr_t)gen, &cand);
			if (err) {
				free(r);
				return mn__w32_fail(err, NULL);
			}
		}
		pthread_mutex_lock(&lock);
		if (!atomic_load(&listener) && !cand) {
			pthread_mutex_unlock(&lock); /* ended meanwhile: again */
			continue;
		}
		if (!atomic_load(&listener)) {
			atomic_store(&listener_gen, gen);
			atomic_store(&listener, cand);
			cand = NULL;
		}
		for (struct cachecb *cb = cbs; cb && !err; cb = cb->next)
			err = pair_new(cb, r, &todo);
		/* Listed now, so that a callback added from now on pairs
		   with it. */
		mn__w32_push(&ranges, r);
		pthread_mutex_unlock(&lock);
		if (cand)
			mn_unsubscribe(cand);
		break;
	}
	err = make_watches(todo, err);
	if (err) {
		pthread_mutex_lock(&lock);
		unsecure_unlock(r);
		return mn__w32_fail(err, NULL);
	}
	return r;
}

/* Lock held; returns with it released: unsecure @handle if it is a
   secured range.  False for an unknown handle. */
static bool unsecure_unlock(HANDLE handle)
{
	struct secured *r;
	struct pair *gone = NULL, *wait = NULL;
	mn_sub *idle = NULL;

	r = mn__w32_take(&ranges, handle);
	if (r)
		gone = unpair(NULL, r, &wait);
	if (r && !ranges) {
		/* The last secured range: no listener needed any more. */
		idle = atomic_exchange(&listener, NULL);
	}
	pthread_mutex_unlock(&lock);
	if (!r)
		return false;
	end_pairs(gone, wait);
	if (idle)
		mn_unsubscribe(idle); /* waits, unless in a callback */
	if (may_wait())
		free(r);
	return true;
}

VOID MmUnsecureVirtualMemory(HANDLE handle)
{
	pthread_mutex_lock(&lock);
	if (!unsecure_unlock(handle))
		SetLastError(ERROR_INVALID_HANDLE);
}
