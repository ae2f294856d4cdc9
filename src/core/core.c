/* SPDX-License-Identifier: MIT */
/*
 * Core lock, subscription registry, fork handling.
 */
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core.h"

static pthread_mutex_t core_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mn_sub *subs;            /* registry head */
static size_t n_subs;
/* Pushed under the core lock, walked without it (mn__enter's after
   hooks): published with a release store. */
static _Atomic(struct mn__fork_hook *) fork_hooks;
static _Atomic int forked;             /* set in a fork child */

/* Initial-exec TLS: read in signal context (mn_unsubscribe()). */
static __thread bool tls_core_held __attribute__((tls_model("initial-exec")));

void mn__lock(void)
{
	pthread_mutex_lock(&core_lock);
	tls_core_held = true;
}

void mn__unlock(void)
{
	tls_core_held = false;
	pthread_mutex_unlock(&core_lock);
	mn__log_flush(); /* lines logged under the lock */
}

bool mn__lock_held(void)
{
	return tls_core_held;
}

/* --- locks and fork ------------------------------------------------------ */

#define MAX_LOCKS 32
static struct {
	pthread_mutex_t *m;
	unsigned int rank;
} locks[MAX_LOCKS];
static _Atomic unsigned int n_locks;
static _Atomic unsigned int fork_gen;

void mn__lock_register(pthread_mutex_t *m, enum mn__lock_rank rank)
{
	unsigned int i = atomic_fetch_add(&n_locks, 1);

	if (i >= MAX_LOCKS)
		__builtin_trap(); /* a build with more locks than the table */
	locks[i].rank = (unsigned int)rank;
	atomic_store_explicit((_Atomic(pthread_mutex_t *) *)&locks[i].m, m,
			      memory_order_release);
}

/* The registered locks, in rank order (stable: registration order within
   a rank).  The table is tiny: a selection each time. */
static size_t ordered(pthread_mutex_t **out)
{
	unsigned int n = MN__MIN(atomic_load(&n_locks), MAX_LOCKS);
	size_t k = 0;

	for (unsigned int rank = 0; rank <= MN__RANK_LEAF; rank++)
		for (unsigned int i = 0; i < n; i++)
			if (locks[i].m && locks[i].rank == rank)
				out[k++] = locks[i].m;
	return k;
}

/*
 * fork(): the prepare handler takes every registered lock in rank order
 * (the core lock among them) so that no writer is half-way through a change
 * when the address space is copied; the child then repairs the chains'
 * reader counts and marks itself for a rebuild.  Nothing here allocates or
 * makes a system call.
 */
static pthread_mutex_t *held[MAX_LOCKS];
static size_t n_held;

static void atfork_prepare(void)
{
	n_held = ordered(held);
	for (size_t i = 0; i < n_held; i++)
		pthread_mutex_lock(held[i]);
}

static void atfork_parent(void)
{
	for (size_t i = n_held; i-- > 0;)
		pthread_mutex_unlock(held[i]);
}

static void atfork_child(void)
{
	mn__chain_atfork_child();
	atomic_fetch_add(&fork_gen, 1);
	atomic_store(&forked, 1);
	for (size_t i = n_held; i-- > 0;)
		pthread_mutex_unlock(held[i]);
}

unsigned int mn__fork_generation(void)
{
	return atomic_load_explicit(&fork_gen, memory_order_acquire);
}

__attribute__((constructor)) static void core_init(void)
{
	mn__lock_register(&core_lock, MN__RANK_CORE);
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* --- once ----------------------------------------------------------------- */

static int gettid_(void)
{
	return (int)syscall(SYS_gettid);
}

/* o->state packs the fork generation of the run (above bit 2) with the
   phase (the low two bits): one compare-and-swap both claims a run and
   takes over one that a fork interrupted. */
void mn__once(struct mn__once *o, void (*fn)(void *), void *arg)
{
	for (;;) {
		unsigned int w = atomic_load_explicit(&o->state, memory_order_acquire);
		unsigned int gen = mn__fork_generation();
		unsigned int mine = (gen << 2) | 1u;

		if ((w & 3u) == 2)
			return;
		if ((w & 3u) == 1 && (w >> 2) == (gen & (UINT32_MAX >> 2))) {
			if (atomic_load(&o->owner) == gettid_())
				return; /* a recursion from inside @fn */
			struct timespec ts = { 0, 10 * 1000 * 1000 };
			syscall(SYS_futex, &o->state, FUTEX_WAIT_PRIVATE, w, &ts,
				NULL, 0);
			continue;
		}
		/* New, or a run whose thread stayed in the parent. */
		if (!atomic_compare_exchange_strong(&o->state, &w, mine))
			continue;
		atomic_store(&o->owner, gettid_());
		fn(arg);
		atomic_store(&o->owner, 0);
		atomic_store_explicit(&o->state, 2, memory_order_release);
		syscall(SYS_futex, &o->state, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL,
			NULL, 0);
		return;
	}
}

bool mn__once_done(const struct mn__once *o)
{
	return (atomic_load_explicit(&o->state, memory_order_acquire) & 3u) == 2;
}

void mn__fork_hook_register(struct mn__fork_hook *h)
{
	h->next = atomic_load_explicit(&fork_hooks, memory_order_relaxed);
	atomic_store_explicit(&fork_hooks, h, memory_order_release);
}

static _Atomic(mn_sub *) deferred_subs; /* lock-free stack */

static struct mn__fork_hook *fork_hooks_head(void)
{
	return atomic_load_explicit(&fork_hooks, memory_order_acquire);
}

void mn__enter(void)
{
	if (MN__UNLIKELY(mn__lock_held()))
		return; /* a callback memnotify's own code raised: see core.h */
	/* Unsubscriptions made in signal handlers are finished by the
	   dispatcher, or here when no dispatcher runs. */
	if (MN__UNLIKELY(atomic_load_explicit(&deferred_subs,
					      memory_order_relaxed) != NULL))
		mn__sub_process_deferred();
	if (MN__LIKELY(!atomic_load_explicit(&forked, memory_order_acquire)))
		return;
	bool rebuilt = false, start = false;
	mn__lock();
	if (atomic_load(&forked)) {
		if (mn__dispatch_rebuild_after_fork() == 0) {
			for (struct mn__fork_hook *h = fork_hooks_head(); h; h = h->next)
				if (h->rebuild)
					h->rebuild();
		}
		rebuilt = true;
		start = n_subs > 0;
		atomic_store(&forked, 0);
	}
	mn__unlock();
	if (!rebuilt)
		return; /* another thread did it */
	/* The child's threads, created with no lock held. */
	if (start)
		mn__dispatch_start();
	for (struct mn__fork_hook *h = fork_hooks_head(); h; h = h->next)
		if (h->after)
			h->after();
}

/*
 * Unsubscriptions running in signal handlers now (they read the handle
 * without a lock).  A handle is freed only when none is: two concurrent
 * unsubscriptions of one handle, one of them in a signal handler, never
 * free it under the other (one gets -ENOENT).
 */
static _Atomic int signal_unsubs;

static void sub_release(struct mn__chain_node *n)
{
	mn_sub *sub = mn__container_of(n, mn_sub, node);

	while (atomic_load(&signal_unsubs))
		sched_yield();
	/* A lane callback running now: its delivery thread frees it. */
	if (sub->lane.run && !mn__lane_release(&sub->lane))
		return;
	sub->release(n);
}

static void subset_add(const mn_sub *sub);

void mn__sub_register(mn_sub *sub, const struct mn__sub_ops *ops)
{
	if (sub->node.release != sub_release) {
		sub->release = sub->node.release;
		sub->node.release = sub_release;
	}
	sub->ops = ops;
	atomic_store(&sub->unsubscribed, 0);
	sub->deferred_next = NULL;
	sub->reg_prev = NULL;
	sub->reg_next = subs;
	if (subs)
		subs->reg_prev = sub;
	subs = sub;
	n_subs++;
	subset_add(sub);
}

int mn__sub_add(mn_sub *sub, const struct mn__sub_spec *spec)
{
	struct mn__chain_removal rm;
	struct mn__chain *chain;
	int err = 0;

	mn__lock();
	chain = spec->attach(sub, spec->arg, &err);
	if (chain) {
		err = mn__chain_add(chain, &sub->node, &rm);
		if (err && spec->undo)
			spec->undo(sub, spec->arg);
	}
	if (!chain || err) {
		mn__unlock();
		sub->node.release(&sub->node); /* the source's: never joined */
		return err ? err : -EINVAL;
	}
	mn__sub_register(sub, spec->ops);
	if (spec->joined)
		spec->joined(sub, spec->arg);
	mn__unlock();
	mn__chain_finish_remove(chain, &rm);
	return 0;
}

size_t mn__sub_count(void)
{
	return n_subs;
}

/*
 * The registry's index: an open-addressing set of the registered
 * pointers (core lock), so that mn_unsubscribe() checks a handle in O(1)
 * however many subscriptions exist (a range cache holds one per region).
 * If it cannot grow it is dropped and the list is searched instead.
 */
#define SUBSET_TOMB ((const mn_sub *)1)
static struct {
	const mn_sub **slot;
	size_t cap, used, live; /* used counts tombstones too */
	bool off;               /* out of memory once: search the list */
} subset;

static size_t subset_hash(const mn_sub *sub, size_t cap)
{
	return (size_t)(((uintptr_t)sub >> 4) * 0x9E3779B97F4A7C15ull) & (cap - 1);
}

static void subset_put(const mn_sub *sub)
{
	size_t i = subset_hash(sub, subset.cap);

	while (subset.slot[i] && subset.slot[i] != SUBSET_TOMB)
		i = (i + 1) & (subset.cap - 1);
	if (!subset.slot[i])
		subset.used++;
	subset.slot[i] = sub;
	subset.live++;
}

static void subset_add(const mn_sub *sub)
{
	if (subset.off)
		return;
	if ((subset.used + 1) * 2 > subset.cap) {
		const mn_sub **old = subset.slot;
		size_t cap = 64, old_cap = subset.cap;
		while (cap < 4 * (subset.live + 1))
			cap *= 2;
		subset.slot = calloc(cap, sizeof(*subset.slot));
		if (!subset.slot) {
			free(old);
			subset.off = true;
			return;
		}
		subset.cap = cap;
		subset.used = subset.live = 0;
		for (size_t i = 0; i < old_cap; i++)
			if (old[i] && old[i] != SUBSET_TOMB)
				subset_put(old[i]);
		free(old);
	}
	subset_put(sub);
}

static size_t subset_find(const mn_sub *sub)
{
	if (!subset.cap)
		return SIZE_MAX;
	for (size_t i = subset_hash(sub, subset.cap);; i = (i + 1) & (subset.cap - 1)) {
		if (!subset.slot[i])
			return SIZE_MAX;
		if (subset.slot[i] == sub)
			return i;
	}
}

static void subset_del(const mn_sub *sub)
{
	size_t i = subset.off ? SIZE_MAX : subset_find(sub);

	if (i != SIZE_MAX) {
		subset.slot[i] = SUBSET_TOMB;
		subset.live--;
	}
}

static bool registered(const mn_sub *sub)
{
	if (!subset.off)
		return subset_find(sub) != SIZE_MAX;
	for (const mn_sub *s = subs; s; s = s->reg_next)
		if (s == sub)
			return true;
	return false;
}

static __thread unsigned int tls_in_signal __attribute__((tls_model("initial-exec")));

void mn__signal_enter(void)
{
	tls_in_signal++;
	atomic_signal_fence(memory_order_seq_cst);
}

void mn__signal_exit(void)
{
	atomic_signal_fence(memory_order_seq_cst);
	tls_in_signal--;
}

bool mn__in_signal(void)
{
	return tls_in_signal > 0;
}

/*
 * Unsubscribe from a signal handler: no lock, no allocation, no wait.
 * The node is marked dead (no walk calls it again) and pushed on a
 * lock-free stack that the dispatcher drains in thread context.
 * Async-signal-safe.
 */
static int unsubscribe_from_signal(mn_sub *sub)
{
	mn_sub *head;

	atomic_fetch_add(&signal_unsubs, 1);
	if (atomic_exchange(&sub->unsubscribed, 1)) {
		atomic_fetch_sub(&signal_unsubs, 1);
		return -ENOENT;
	}
	atomic_store_explicit(&sub->node.dead, 1, memory_order_release);
	head = atomic_load(&deferred_subs);
	do {
		sub->deferred_next = head;
	} while (!atomic_compare_exchange_weak(&deferred_subs, &head, sub));
	atomic_fetch_sub(&signal_unsubs, 1);
	mn__dispatch_wake_async();
	return 0;
}

static void unregister_locked(mn_sub *sub)
{
	if (sub->reg_prev)
		sub->reg_prev->reg_next = sub->reg_next;
	else
		subs = sub->reg_next;
	if (sub->reg_next)
		sub->reg_next->reg_prev = sub->reg_prev;
	n_subs--;
	subset_del(sub);
}

/*
 * Called with the core lock held; returns with it released.  Takes @sub
 * out of the registry and its chain, then, outside the lock, waits for the
 * grace period (unless the removal was deferred) and lets the source drop
 * what the subscription held.
 */
static void remove_locked(mn_sub *sub, bool wait)
{
	/* Read before the grace period lets release free the subscription. */
	const struct mn__sub_ops *ops = sub->ops;
	struct mn__chain_removal rm;
	struct mn__chain *chain;
	bool lane = sub->lane.run != NULL;

	unregister_locked(sub);
	chain = ops->unlink(sub, &rm);
	if (lane)
		mn__lane_close(&sub->lane);
	mn__unlock();
	/* Once the lane's callback is not running (unless called from a
	   callback: see mn__lane_wait_idle).  A removal deferred to a later
	   reclaim may free @sub any time after the unlock: no wait then. */
	if (wait && lane && !rm.deferred)
		mn__lane_wait_idle(&sub->lane);
	mn__chain_finish_remove(chain, &rm);
	if (ops->after)
		ops->after(chain);
}

void mn__sub_process_deferred(void)
{
	mn_sub *list = atomic_exchange(&deferred_subs, NULL);

	while (list) {
		mn_sub *sub = list;

		list = sub->deferred_next;
		mn__lock();
		remove_locked(sub, false); /* nobody waits on these */
	}
}

int mn_unsubscribe(mn_sub *sub)
{
	mn__check(sub, -EINVAL);
	/* In a signal handler, or in a hook callback that memnotify's own
	   code raised while this thread holds the core lock: no lock, no
	   wait; the dispatcher or the next mn_* call finishes it. */
	if (mn__in_signal() || mn__lock_held())
		return unsubscribe_from_signal(sub);
	mn__enter();
	mn__lock();
	/* Look the pointer up before touching it: a stale handle is -ENOENT,
	   not a use after free.  One already unsubscribed from a signal
	   handler is on its way out. */
	if (!registered(sub) || atomic_exchange(&sub->unsubscribed, 1)) {
		mn__unlock();
		return -ENOENT;
	}
	remove_locked(sub, true);
	mn__dispatch_run_detached();
	return 0;
}
