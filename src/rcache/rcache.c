/* SPDX-License-Identifier: MIT */
/*
 * The registration cache (mn_rcache): regions of the caller's buffers,
 * each registered once by the caller's callback and taken out at once
 * when a change to its memory is reported.
 *
 * Structure:
 * - The regions of a cache are in its page table (pgt.h): a lock-free
 *   radix tree mapping each page to the one region covering it.  A hit is
 *   a lookup (5 dependent loads, the upper ones cached) plus a compare-and-swap on the region's reference
 *   count (never up from 0), then a look at its invalid bits.  Readers
 *   count themselves in an index's epoch counters (src/vmrange/index.h,
 *   used for its reclamation only): a region is freed once no reader can
 *   still hold it.
 * - refs counts the callers' references plus one while the region is in
 *   the table.  Whoever drops it to 0 releases the region: deregister,
 *   retire its memory to the reclamation.
 * - One listener per cache (mn__vm_listen_late: every hooked call in the
 *   calling thread, maybe in a signal handler, and the late userfaultfd
 *   events on the dispatcher) reads the table over the call's range and
 *   only sets the regions' invalid bits and, the first time, pushes each
 *   on a lock-free stack: atomics, no lock, no allocation,
 *   async-signal-safe.  The next get, put or flush takes the stack,
 *   removes those regions from the table and drops the table's reference.
 *   The cached ranges' mappings are registered whole with the userfaultfd
 *   safety net (mn__vm_uffd_cover); an unmap or move the listener sees
 *   takes the call's range out of userfaultfd first (no late copy).
 * - A miss puts the new region in the table first, marked pending (no
 *   hit returns it; the listener marks it like any other), in place of
 *   the regions it overlaps (one region per page, as UCX's pgtable), then
 *   registers it; if a change marked it meanwhile, it tries again.
 * - Writers of every cache share one mutex, rc_lock (rank LEAF: nothing
 *   is taken under it; no callback, subscription or unsubscription runs
 *   under it).  fork(): the core takes and releases it around fork (it is
 *   registered); a child keeps its caches and registers their ranges
 *   with its own userfaultfd at its next miss or flush.
 * - Eviction: over max_regions or max_bytes, CLOCK over the regions in
 *   insertion order: an unreferenced region not used since it was last
 *   passed goes; a used one gets a second chance.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "../core/core.h"
#include "../vmrange/index.h"
#include "../vmrange/vmrange.h"
#include "pgt.h"

enum {
	INV_UNMAP = 1, INV_MOVE = 2, INV_DISCARD = 4, INV_PROTECT = 8,
	INV_LATE = 16, INV_EVICT = 32, INV_MERGED = 64, INV_GONE = 128,
	INV_PENDING = 256, /* in the index, still registering: no hit */
};

/* 80 bytes: the figure `make bench` reports as memory per region. */
struct region {
	struct mn_rcache_region pub;
	_Atomic int refs;           /* callers + 1 while in the index */
	_Atomic unsigned int invalid;
	_Atomic uint32_t used;      /* the cache's clock at the last hit */
	uint32_t seen;              /* rc_lock: `used` when CLOCK last passed */
	_Atomic bool on_stack;      /* pushed on cache->inval, not taken */
	bool in_index, free_pending; /* rc_lock */
	bool no_dereg;              /* register failed: no deregister */
	struct region *inval_next;  /* the stack's link */
	union {
		struct {            /* rc_lock: CLOCK order, oldest first */
			struct region *prev, *next;
		};
		struct mn__idx_retiree ret; /* out of the index: reclaimed */
	};
};

struct mn_rcache {
	struct mn_rcache_opts o;
	struct pgt pgt;                   /* the regions, by page */
	struct mn__idx idx;               /* its readers and reclamation */
	uint64_t ps;                      /* page size */
	mn_sub *listener;                 /* every hooked call, late events */
	_Atomic unsigned int fork_gen;    /* of the uffd cover */
	_Atomic(struct region *) inval;   /* lock-free stack */
	_Atomic uint32_t clock;
	struct region *head, *tail;       /* rc_lock */
	size_t n;                         /* rc_lock */
	uint64_t bytes;                   /* rc_lock */
	struct {
		_Atomic uint64_t n;
		char pad[64 - sizeof(uint64_t)];
	} hits[MN__IDX_STRIPES] __attribute__((aligned(64))); /* per thread */
	/* MN_RCACHE_BACKGROUND: on bg.list (rc_lock); want: a change
	   pushed a region since the last background run; busy: a run on
	   this cache is under way (destroy waits for it). */
	struct mn_rcache *bg_next;
	_Atomic bool bg_want;
	_Atomic int bg_busy;
	struct {
		_Atomic uint64_t misses, merges, unmap, move, discard,
			protect, late, evictions, deregs, deferred, reg_errors,
			retries;
	} st;
};

static pthread_mutex_t rc_lock = PTHREAD_MUTEX_INITIALIZER;

/* The caches made with MN_RCACHE_BACKGROUND, and the dispatcher's async
   hook that serves them (registered once, under the core lock). */
static struct {
	struct mn__async_hook hook;
	bool hooked;                 /* core lock */
	struct mn_rcache *list;      /* rc_lock */
} bg;
static __thread struct mn_rcache *tls_bg_cache; /* the run under way here */

__attribute__((constructor)) static void rcache_init(void)
{
	mn__lock_register(&rc_lock, MN__RANK_LEAF);
}

#define ST(c, f) atomic_fetch_add_explicit(&(c)->st.f, 1, memory_order_relaxed)

static bool uses_uffd(const struct mn_rcache *c)
{
	return !(c->o.flags & MN_RCACHE_NO_USERFAULTFD);
}

/* Lock-free push on the cache's stack (async-signal-safe). */
static void push(struct mn_rcache *c, struct region *r)
{
	struct region *head = atomic_load(&c->inval);

	/* Published by the compare-and-swap (release) with the link. */
	atomic_store_explicit(&r->on_stack, true, memory_order_relaxed);
	do {
		r->inval_next = head;
	} while (!atomic_compare_exchange_weak(&c->inval, &head, r));
}

/* --- the listener (signal-safe) -------------------------------------------- */

struct change {
	struct mn_rcache *c;
	const struct mn_vm_event *ev;
	bool found;
};

/* One region the change touches: mark it, the first time push it. */
static bool mark_one(void *owner, void *arg)
{
	struct change *ch = arg;
	const struct mn_vm_event *ev = ch->ev;
	struct region *r = owner;
	unsigned int bit;

	switch (ev->kind) {
	case MN_VM_UNMAP: bit = INV_UNMAP; break;
	case MN_VM_MOVE: bit = INV_MOVE; break;
	case MN_VM_DISCARD: bit = INV_DISCARD; break;
	case MN_VM_PROTECT:
		/* Only a change that takes away an access it was made for. */
		if ((ev->prot & r->pub.prot) == r->pub.prot)
			return true;
		bit = INV_PROTECT;
		break;
	default: bit = INV_UNMAP; break; /* unknown: safest */
	}
	ch->found = true;
	if (ev->late)
		bit |= INV_LATE;
	if (atomic_fetch_or(&r->invalid, bit) & ~INV_PENDING)
		return true; /* already out, or on its way */
	switch (bit & ~INV_LATE) {
	case INV_UNMAP: ST(ch->c, unmap); break;
	case INV_MOVE: ST(ch->c, move); break;
	case INV_DISCARD: ST(ch->c, discard); break;
	default: ST(ch->c, protect); break;
	}
	if (ev->late)
		ST(ch->c, late);
	push(ch->c, r);
	return true;
}

/*
 * Every hooked call of the process (synchronous: the calling thread, maybe
 * a signal handler) and the late userfaultfd events (the dispatcher): the
 * regions overlapping the call's range are looked up in the cache's index
 * and marked.  Atomics, a lock-free index read, no allocation:
 * async-signal-safe.
 */
static void on_change(const struct mn_vm_event *ev, void *ctx)
{
	struct mn_rcache *c = ctx;
	struct change ch = { c, ev, false };
	unsigned int slot;

	if (ev->kind == MN_VM_LOST || !ev->length)
		return;
	slot = mn__idx_read_begin(&c->idx);
	pgt_each(&c->pgt, ev->address / c->ps,
		 (ev->address + ev->length + c->ps - 1) / c->ps, mark_one, &ch);
	mn__idx_read_end(&c->idx, slot);
	/* (An unmap or a move of registered memory leaves userfaultfd
	   before its call: mn__vm_notify.)  A background cache asks the
	   dispatcher for a run: one write(2), async-signal-safe. */
	if (ch.found && (c->o.flags & MN_RCACHE_BACKGROUND) &&
	    !atomic_exchange(&c->bg_want, true))
		mn__dispatch_wake_async();
}

/* --- release ---------------------------------------------------------------- */

static void region_free(struct mn__idx_retiree *rt)
{
	free(mn__container_of(rt, struct region, ret));
}

/* rc_lock: to the index's reclamation (the link overlays the CLOCK
   links, unused once out of the index). */
static void retire(struct mn_rcache *c, struct region *r)
{
	r->ret.free_fn = region_free;
	mn__idx_retire(&c->idx, &r->ret);
}

/* rc_lock: out of the table and the CLOCK list (the caller drops the
   index's reference). */
static void unindex(struct mn_rcache *c, struct region *r)
{
	if (!r->in_index)
		return;
	pgt_clear(&c->pgt, r->pub.start / c->ps, r->pub.end / c->ps, r);
	r->in_index = false;
	c->n--;
	c->bytes -= r->pub.end - r->pub.start;
	if (r->prev)
		r->prev->next = r->next;
	else
		c->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		c->tail = r->prev;
	r->prev = r->next = NULL;
}

/* Last reference gone: thread context, no lock held.  The region is out
   of the index and invalid: no listener pushes it any more (a push
   follows only the first invalid bit). */
static void deregister(struct mn_rcache *c, struct region *r, uint64_t *deregs,
		       uint64_t *deferred)
{
	if (r->no_dereg)
		return;
	if (atomic_load_explicit(&r->invalid, memory_order_relaxed) &
	    ~(INV_EVICT | INV_MERGED | INV_GONE))
		(*deferred)++;
	c->o.dereg(c->o.ctx, &r->pub);
	(*deregs)++;
}

static void count_deregs(struct mn_rcache *c, uint64_t deregs, uint64_t deferred)
{
	if (deregs)
		atomic_fetch_add_explicit(&c->st.deregs, deregs, memory_order_relaxed);
	if (deferred)
		atomic_fetch_add_explicit(&c->st.deferred, deferred,
					  memory_order_relaxed);
}

/* Deregistered regions (linked by next) to the reclamation, one lock for
   all. */
static void retire_list(struct mn_rcache *c, struct region *list)
{
	struct mn__idx_retiree *done = NULL;

	if (!list)
		return;
	pthread_mutex_lock(&rc_lock);
	while (list) {
		struct region *r = list;
		list = r->next; /* before retire() reuses it */
		if (atomic_load(&r->on_stack))
			r->free_pending = true; /* the stack's taker retires it */
		else
			retire(c, r);
	}
	mn__idx_poll(&c->idx, &done);
	pthread_mutex_unlock(&rc_lock);
	mn__idx_free_list(done);
}

static void unref(struct mn_rcache *c, struct region *r)
{
	uint64_t deregs = 0, deferred = 0;

	if (atomic_fetch_sub(&r->refs, 1) == 1) {
		deregister(c, r, &deregs, &deferred);
		count_deregs(c, deregs, deferred);
		r->next = NULL;
		retire_list(c, r);
	}
}

/* Unref a list of regions out of the index (linked by next). */
static void unref_list(struct mn_rcache *c, struct region *list)
{
	struct region *dead = NULL;
	uint64_t deregs = 0, deferred = 0;

	while (list) {
		struct region *r = list;
		list = r->next;
		if (atomic_fetch_sub(&r->refs, 1) == 1) {
			deregister(c, r, &deregs, &deferred);
			r->next = dead;
			dead = r;
		}
	}
	count_deregs(c, deregs, deferred);
	retire_list(c, dead);
}

/* After fork(), the child's userfaultfd holds none of the regions:
   register them again, from a lock-free read of the table (no rc_lock
   held: mn__vm_uffd_cover takes the core lock). */
static bool cover_one(void *owner, void *arg)
{
	struct region *r = owner;

	(void)arg;
	mn__vm_uffd_cover(r->pub.start, r->pub.end - r->pub.start);
	return true;
}

static void recover_after_fork(struct mn_rcache *c)
{
	unsigned int gen = mn__fork_generation(), was, slot;

	was = atomic_load_explicit(&c->fork_gen, memory_order_relaxed);
	if (was == gen || !uses_uffd(c) ||
	    !atomic_compare_exchange_strong(&c->fork_gen, &was, gen))
		return; /* the same process, or another thread does it */
	slot = mn__idx_read_begin(&c->idx);
	pgt_each(&c->pgt, 0, PGT_MAX_PN, cover_one, NULL);
	mn__idx_read_end(&c->idx, slot);
}

/* Take the invalidated regions out; deregister the unreferenced ones. */
static void process(struct mn_rcache *c)
{
	struct region *list, *drop = NULL;

	if (!atomic_load_explicit(&c->inval, memory_order_relaxed))
		return;
	pthread_mutex_lock(&rc_lock);
	list = atomic_exchange(&c->inval, NULL);
	while (list) {
		struct region *r = list;
		list = r->inval_next;
		/* Read under rc_lock only (retire_list). */
		atomic_store_explicit(&r->on_stack, false, memory_order_relaxed);
		if (r->free_pending) {
			retire(c, r);
			continue;
		}
		if (!r->in_index)
			continue; /* evicted or merged meanwhile */
		unindex(c, r);
		r->next = drop; /* free once out of the CLOCK list */
		drop = r;
	}
	pthread_mutex_unlock(&rc_lock);
	unref_list(c, drop); /* the index's references */
}

/* The dispatcher (async hook, no lock held): process each background
   cache a change asked for.  A cache is held busy while it is processed,
   so that mn_rcache_destroy() waits. */
static void bg_run(void)
{
	for (;;) {
		struct mn_rcache *c;
		pthread_mutex_lock(&rc_lock);
		for (c = bg.list; c && !atomic_load(&c->bg_want); c = c->bg_next)
			;
		if (c) {
			atomic_store(&c->bg_want, false);
			atomic_fetch_add(&c->bg_busy, 1);
		}
		pthread_mutex_unlock(&rc_lock);
		if (!c)
			return;
		tls_bg_cache = c;
		process(c);
		tls_bg_cache = NULL;
		atomic_fetch_sub(&c->bg_busy, 1);
	}
}

/* No lock held: the hook once, the dispatcher running, @c on the list. */
static int bg_join(struct mn_rcache *c)
{
	int err = mn__dispatch_start();

	if (err)
		return err;
	mn__lock();
	err = mn__dispatch_ensure();
	if (!err && !bg.hooked) {
		bg.hook.fn = bg_run;
		mn__async_hook_register(&bg.hook);
		bg.hooked = true;
	}
	mn__unlock();
	if (err)
		return err;
	pthread_mutex_lock(&rc_lock);
	c->bg_next = bg.list;
	bg.list = c;
	pthread_mutex_unlock(&rc_lock);
	return 0;
}

/* Off the list, then no run under way on it. */
static void bg_leave(struct mn_rcache *c)
{
	pthread_mutex_lock(&rc_lock);
	for (struct mn_rcache **p = &bg.list; *p; p = &(*p)->bg_next)
		if (*p == c) {
			*p = c->bg_next;
			break;
		}
	pthread_mutex_unlock(&rc_lock);
	while (atomic_load(&c->bg_busy))
		sched_yield();
}

/* --- lookup ------------------------------------------------------------------ */

struct find {
	struct mn_rcache *c;
	uint64_t s, e;
	int prot;
	struct region *found;
};

/* A valid region covering [s, e) with @prot, referenced (never up from
   0: that region is being released); lock-free. */
static struct region *lookup(struct mn_rcache *c, uint64_t s, uint64_t e, int prot)
{
	unsigned int slot = mn__idx_read_begin(&c->idx);
	struct region *r = pgt_find(&c->pgt, s / c->ps);
	int v;

	if (!r || r->pub.end < e || (r->pub.prot & prot) != prot ||
	    atomic_load(&r->invalid))
		goto none;
	v = atomic_load(&r->refs);
	do {
		if (v <= 0)
			goto none;
	} while (!atomic_compare_exchange_weak(&r->refs, &v, v + 1));
	mn__idx_read_end(&c->idx, slot);
	/* Invalidated between the look and the reference: not this one.
	   Its own reference is still there unless it is out of the index
	   already, so dropping ours may release it. */
	if (atomic_load(&r->invalid)) {
		unref(c, r);
		return NULL;
	}
	atomic_store_explicit(&r->used, atomic_load_explicit(&c->clock,
			      memory_order_relaxed), memory_order_relaxed);
	return r;
none:
	mn__idx_read_end(&c->idx, slot);
	return NULL;
}

/* --- miss ------------------------------------------------------------------- */

/* rc_lock: the regions with a page in a range, in address order (a
   region's entries are consecutive: a repeat is the last one). */
struct gather {
	struct region *r[64];
	int n;
	bool pending;  /* one is still registering: wait for it */
};

static bool gather_one(void *owner, void *arg)
{
	struct gather *g = arg;
	struct region *r = owner;

	if (g->n && g->r[g->n - 1] == r)
		return true;
	if (atomic_load(&r->invalid) == INV_PENDING) {
		g->pending = true;
		return false;
	}
	g->r[g->n++] = r;
	return g->n < 64;
}

/* rc_lock: with MERGE, widen [*s, *e) to the valid regions overlapping or
   touching it (their protections too). */
static void widen(struct mn_rcache *c, uint64_t *s, uint64_t *e, int *prot)
{
	struct gather g = { .n = 0 };

	pgt_each(&c->pgt, *s / c->ps ? *s / c->ps - 1 : 0, *e / c->ps + 1,
		 gather_one, &g);
	for (int i = 0; i < g.n; i++) {
		struct region *r = g.r[i];
		if (atomic_load(&r->invalid))
			continue;
		*s = MN__MIN(*s, r->pub.start);
		*e = MN__MAX(*e, r->pub.end);
		*prot |= r->pub.prot;
	}
}

/* rc_lock: take every region overlapping [s, e) out of the table (one
   region per page), onto @drop for the caller to unref.  0, or -EBUSY
   when one of them is still registering. */
static int replace(struct mn_rcache *c, uint64_t s, uint64_t e,
		   struct region **drop)
{
	struct gather g;

	do {
		g.n = 0;
		g.pending = false;
		pgt_each(&c->pgt, s / c->ps, e / c->ps, gather_one, &g);
		if (g.pending)
			return -EBUSY;
		for (int i = 0; i < g.n; i++) {
			struct region *m = g.r[i];
			if (!atomic_fetch_or(&m->invalid, INV_MERGED))
				ST(c, merges);
			unindex(c, m);
			m->next = *drop; /* free once out of the list */
			*drop = m;
		}
	} while (g.n);
	return 0;
}

/* rc_lock: CLOCK over the regions, oldest first, until within limits. */
static void evict(struct mn_rcache *c, struct region **drop)
{
	size_t budget = 2 * c->n + 2; /* two passes at most */

	while (budget-- && c->head &&
	       ((c->o.max_regions && c->n > c->o.max_regions) ||
		(c->o.max_bytes && c->bytes > c->o.max_bytes))) {
		struct region *r = c->head;
		uint32_t used = atomic_load(&r->used);
		/* Move it to the tail first (a second chance, or skipped). */
		if (r != c->tail) {
			c->head = r->next;
			c->head->prev = NULL;
			r->prev = c->tail;
			r->next = NULL;
			c->tail->next = r;
			c->tail = r;
		}
		if (used != r->seen || atomic_load(&r->refs) > 1) {
			r->seen = used;
			continue;
		}
		if (atomic_fetch_or(&r->invalid, INV_EVICT))
			continue;
		unindex(c, r);
		r->next = *drop;
		*drop = r;
		ST(c, evictions);
	}
}

/* rc_lock: put @r in the index and the CLOCK list.  0 or -ENOMEM. */
static int publish(struct mn_rcache *c, struct region *r)
{
	int err = pgt_set(&c->pgt, r->pub.start / c->ps, r->pub.end / c->ps, r);

	if (err)
		return err;
	r->in_index = true;
	c->n++;
	c->bytes += r->pub.end - r->pub.start;
	r->prev = c->tail;
	r->next = NULL;
	if (c->tail)
		c->tail->next = r;
	else
		c->head = r;
	c->tail = r;
	atomic_fetch_add(&c->clock, 1);
	return 0;
}

/* A new region whose registration failed: out of the table, both
   references dropped, no deregister.  Whoever takes a region out of the
   table drops the table's reference: here, or a change's stack taker, or
   another miss replacing it. */
static void drop_new(struct mn_rcache *c, struct region *r)
{
	bool was;

	atomic_fetch_or(&r->invalid, INV_GONE);
	r->no_dereg = true;
	pthread_mutex_lock(&rc_lock);
	was = r->in_index;
	unindex(c, r);
	pthread_mutex_unlock(&rc_lock);
	if (was)
		unref(c, r); /* the table's */
	unref(c, r);         /* the caller's */
}

/* rc_lock: the new region (pending) in the table, in place of the
   regions it overlaps, and the limits kept.  0, -EBUSY or -ENOMEM. */
static int place(struct mn_rcache *c, struct region *r, struct region **drop)
{
	struct mn__idx_retiree *done = NULL;
	uint64_t s = r->pub.start, e = r->pub.end;
	int prot = r->pub.prot, err;

	pthread_mutex_lock(&rc_lock);
	if (c->o.flags & MN_RCACHE_MERGE)
		widen(c, &s, &e, &prot);
	r->pub.start = s;
	r->pub.end = e;
	r->pub.prot = prot;
	err = replace(c, s, e, drop);
	if (!err)
		err = publish(c, r);
	if (!err)
		evict(c, drop);
	mn__idx_poll(&c->idx, &done);
	pthread_mutex_unlock(&rc_lock);
	mn__idx_free_list(done);
	return err;
}

/*
 * A miss: a new region for [s, e) (widened with MERGE) in the table
 * first, marked pending (no hit returns it, the listener marks it like
 * any other), then registered with userfaultfd, then with the caller: a
 * change during the registration is seen.  0, -EAGAIN (it changed: try
 * again), -EBUSY (an overlapping region is being registered: wait) or an
 * error.
 */
static int miss(struct mn_rcache *c, uint64_t s, uint64_t e, int prot,
		struct region **out)
{
	struct region *r = calloc(1, sizeof(*r)), *drop = NULL;
	int err;

	if (!r)
		return -ENOMEM;
	r->pub.start = s;
	r->pub.end = e;
	r->pub.prot = prot & (PROT_READ | PROT_WRITE | PROT_EXEC);
	atomic_store(&r->refs, 2); /* the caller's and the index's */
	atomic_store(&r->invalid, INV_PENDING);
	err = place(c, r, &drop);
	unref_list(c, drop);
	if (err) {
		free(r); /* never seen: the table is unchanged */
		return err;
	}
	if (uses_uffd(c))
		mn__vm_uffd_cover(r->pub.start, r->pub.end - r->pub.start);
	err = c->o.reg(c->o.ctx, &r->pub);
	if (err) {
		ST(c, reg_errors);
		drop_new(c, r);
		return err < 0 ? err : -EIO;
	}
	if (atomic_fetch_and(&r->invalid, ~(unsigned int)INV_PENDING) & ~INV_PENDING) {
		/* Changed while registering: that registration may be of the
		   old memory.  The change pushed it: deregistered once the
		   stack's taker drops the index's reference. */
		unref(c, r);
		ST(c, retries);
		return -EAGAIN;
	}
	*out = r;
	return 0;
}

/* A miss, again while the memory changed during the registration (three
   tries) or while another thread registers an overlapping region (then
   its region may serve: look again). */
static int miss_loop(struct mn_rcache *c, uint64_t s, uint64_t e, int prot,
		     struct region **r)
{
	int err, tries = 0;

	for (long waits = 0;; waits++) {
		err = miss(c, s, e, prot, r);
		if (err == -EBUSY && waits < 1000000) {
			sched_yield();
			if ((*r = lookup(c, s, e, prot)))
				return 0;
			continue;
		}
		if (err == -EAGAIN && ++tries < 3)
			continue;
		return err == -EBUSY ? -EAGAIN : err;
	}
}

/* --- public ------------------------------------------------------------------- */

int mn_rcache_create(const struct mn_rcache_opts *opts, mn_rcache **out)
{
	struct mn_rcache *c;
	int err;

	mn__check(out, -EINVAL);
	*out = NULL;
	mn__check(opts && MN__OPTS_VALID(opts, mn_rcache_opts) &&
			  opts->sz >= sizeof(*opts) && opts->reg && opts->dereg,
		  -EINVAL);
	mn__check(!(opts->flags & ~(MN_RCACHE_MERGE | MN_RCACHE_NO_USERFAULTFD |
				    MN_RCACHE_BACKGROUND)),
		  -EINVAL);
	/* Aligned: its per-thread counters are one cache line each. */
	c = aligned_alloc(64, (sizeof(*c) + 63) & ~(size_t)63);
	if (!c)
		return -ENOMEM;
	memset(c, 0, sizeof(*c));
	c->o = *opts;
	c->fork_gen = mn__fork_generation();
	c->ps = mn__page_size();
	c->pgt.reclaim = &c->idx;
	if ((opts->flags & MN_RCACHE_BACKGROUND) && (err = bg_join(c)) != 0) {
		free(c);
		return err;
	}
	err = mn__vm_listen_late(on_change, c, &c->listener);
	if (err) {
		if (opts->flags & MN_RCACHE_BACKGROUND)
			bg_leave(c);
		free(c);
		return err;
	}
	/* The safety net's one-time setup (its userfaultfd and reader thread,
	   the dispatcher) here rather than in the first get's miss: no lock
	   held.  A failure is the miss's to count and report, as later. */
	if (uses_uffd(c) && mn__uffd_prepare() == 0)
		mn__dispatch_start();
	*out = c;
	return 0;
}

int mn_rcache_get(mn_rcache *c, const void *addr, size_t len, int prot,
		  struct mn_rcache_region **out)
{
	uint64_t ps = mn__page_size(), a = (uint64_t)(uintptr_t)addr, s, e;
	struct region *r = NULL;
	int err = -EAGAIN;

	mn__check(out, -EINVAL);
	*out = NULL;
	mn__check(c && len > 0 && a + len > a && a + len <= UINT64_MAX - ps, -EINVAL);
	mn__check(!(prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)), -EINVAL);
	s = a & ~(ps - 1);
	e = (a + len + ps - 1) & ~(ps - 1);
	mn__check(e / ps <= PGT_MAX_PN, -EINVAL);
	r = lookup(c, s, e, prot);
	if (r) {
		atomic_fetch_add_explicit(&c->hits[mn__idx_stripe()].n, 1,
					  memory_order_relaxed);
		*out = &r->pub;
		return 0;
	}
	ST(c, misses);
	process(c);
	recover_after_fork(c);
	err = miss_loop(c, s, e, prot, &r);
	if (err)
		return err;
	*out = &r->pub;
	return 0;
}

int mn_rcache_put(mn_rcache *c, struct mn_rcache_region *region)
{
	mn__check(c && region, -EINVAL);
	unref(c, mn__container_of(region, struct region, pub));
	process(c);
	return 0;
}

int mn_rcache_flush(mn_rcache *c)
{
	mn__check(c, -EINVAL);
	process(c);
	recover_after_fork(c);
	return 0;
}

int mn_rcache_stats(mn_rcache *c, struct mn_rcache_stats *out)
{
	struct mn_rcache_stats v = { .sz = sizeof(v) };

	mn__check(c && out && out->sz >= sizeof(*out), -EINVAL);
#define L(f) atomic_load_explicit(&c->st.f, memory_order_relaxed)
	for (int i = 0; i < MN__IDX_STRIPES; i++)
		v.hits += atomic_load_explicit(&c->hits[i].n, memory_order_relaxed);
	v.misses = L(misses);
	v.merges = L(merges);
	v.inval_unmap = L(unmap);
	v.inval_move = L(move);
	v.inval_discard = L(discard);
	v.inval_protect = L(protect);
	v.inval_late = L(late);
	v.evictions = L(evictions);
	v.deregistrations = L(deregs);
	v.deferred = L(deferred);
	v.register_errors = L(reg_errors);
	v.retries = L(retries);
#undef L
	pthread_mutex_lock(&rc_lock);
	v.regions = c->n;
	v.bytes = c->bytes;
	pthread_mutex_unlock(&rc_lock);
	*out = v;
	return 0;
}

/* "2026-11-28T14:13:47.504Z": the time of `memnotify status` JSON. */
static void json_time(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char base[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03ldZ", base, ts.tv_nsec / 1000000);
}

int mn_rcache_stats_json(mn_rcache *c, char *buf, size_t len)
{
	struct mn_rcache_stats v = { .sz = sizeof(v) };
	struct mn__uffd_counts u;
	unsigned long long table;
	char ts[48];
	int n;

	mn__check(c && buf, -EINVAL);
	mn_rcache_stats(c, &v);
	mn__vm_uffd_counts(&u);
	pthread_mutex_lock(&rc_lock);
	table = (unsigned long long)c->pgt.nodes * sizeof(struct pgt_node);
	pthread_mutex_unlock(&rc_lock);
	json_time(ts, sizeof(ts));
#define U(f) (unsigned long long)v.f
	n = snprintf(buf, len,
		     "{\"time\":\"%s\",\"event\":\"rcache.stats\","
		     "\"hits\":%llu,\"misses\":%llu,\"merges\":%llu,"
		     "\"inval_unmap\":%llu,\"inval_move\":%llu,\"inval_discard\":%llu,"
		     "\"inval_protect\":%llu,\"inval_late\":%llu,\"evictions\":%llu,"
		     "\"deregistrations\":%llu,\"deferred\":%llu,"
		     "\"register_errors\":%llu,\"retries\":%llu,\"regions\":%llu,"
		     "\"bytes\":%llu,\"table_bytes\":%llu,\"uffd_whole\":%llu,"
		     "\"uffd_per_range\":%llu,\"uffd_failed\":%llu,"
		     "\"uffd_rehold_failed\":%llu,\"uffd_messages\":%llu}",
		     ts, U(hits), U(misses), U(merges), U(inval_unmap),
		     U(inval_move), U(inval_discard), U(inval_protect),
		     U(inval_late), U(evictions), U(deregistrations), U(deferred),
		     U(register_errors), U(retries), U(regions), U(bytes), table,
		     (unsigned long long)u.whole, (unsigned long long)u.per_range,
		     (unsigned long long)u.failed,
		     (unsigned long long)u.rehold_failed,
		     (unsigned long long)u.messages);
#undef U
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}

int mn_rcache_destroy(mn_rcache *c)
{
	bool busy = false;

	mn__check(c, -EINVAL);
	if (tls_bg_cache == c)
		return -EDEADLK; /* its own deregister, in its background run */
	process(c);
	pthread_mutex_lock(&rc_lock);
	for (struct region *r = c->head; r; r = r->next)
		busy |= atomic_load(&r->refs) > 1;
	pthread_mutex_unlock(&rc_lock);
	if (busy)
		return -EBUSY;
	/* Returns once on_change runs nowhere: no push after this. */
	mn_unsubscribe(c->listener);
	if (c->o.flags & MN_RCACHE_BACKGROUND)
		bg_leave(c);
	for (;;) {
		struct region *r;
		pthread_mutex_lock(&rc_lock);
		r = c->head;
		if (r) {
			atomic_fetch_or(&r->invalid, INV_GONE);
			unindex(c, r);
		}
		pthread_mutex_unlock(&rc_lock);
		if (!r)
			break;
		unref(c, r);
	}
	process(c);
	/* Nobody reads any more: three polls free all that was retired. */
	for (int i = 0; i < 3; i++) {
		struct mn__idx_retiree *done = NULL;
		pthread_mutex_lock(&rc_lock);
		mn__idx_poll(&c->idx, &done);
		pthread_mutex_unlock(&rc_lock);
		mn__idx_free_list(done);
	}
	mn__idx_drop_spares(&c->idx);
	pgt_drop(&c->pgt);
	free(c);
	return 0;
}
