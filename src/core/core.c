/* SPDX-License-Identifier: MIT */
/*
 * Core lock, subscription registry, fork handling.
 */
#include <pthread.h>

#include "core.h"

static pthread_mutex_t core_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mn_sub *subs;            /* registry head */
static size_t n_subs;
static struct mn__fork_hook *fork_hooks;
static _Atomic int forked;             /* set in a fork child */

void mn__lock(void)
{
	pthread_mutex_lock(&core_lock);
}

void mn__unlock(void)
{
	pthread_mutex_unlock(&core_lock);
}

/*
 * fork(): the prepare handler takes the core lock so that no writer is
 * half-way through a change when the address space is copied; the child
 * then repairs the chains' reader counts and marks itself for a rebuild.
 * Nothing here allocates or makes a system call.
 */
static void atfork_prepare(void)
{
	pthread_mutex_lock(&core_lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&core_lock);
}

static void atfork_child(void)
{
	mn__chain_atfork_child();
	atomic_store(&forked, 1);
	pthread_mutex_unlock(&core_lock);
}

__attribute__((constructor)) static void core_init(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

void mn__fork_hook_register(struct mn__fork_hook *h)
{
	h->next = fork_hooks;
	fork_hooks = h;
}

static _Atomic(mn_sub *) deferred_subs; /* lock-free stack */

void mn__enter(void)
{
	/* Unsubscriptions made in signal handlers are finished by the
	   dispatcher, or here when no dispatcher runs. */
	if (MN__UNLIKELY(atomic_load_explicit(&deferred_subs,
					      memory_order_relaxed) != NULL))
		mn__sub_process_deferred();
	if (MN__LIKELY(!atomic_load_explicit(&forked, memory_order_acquire)))
		return;
	mn__lock();
	if (atomic_load(&forked)) {
		if (mn__dispatch_rebuild_after_fork() == 0) {
			for (struct mn__fork_hook *h = fork_hooks; h; h = h->next)
				h->rebuild();
		}
		atomic_store(&forked, 0);
	}
	mn__unlock();
}

void mn__sub_register(mn_sub *sub, const struct mn__sub_ops *ops)
{
	sub->ops = ops;
	atomic_store(&sub->unsubscribed, 0);
	sub->deferred_next = NULL;
	sub->reg_prev = NULL;
	sub->reg_next = subs;
	if (subs)
		subs->reg_prev = sub;
	subs = sub;
	n_subs++;
}

size_t mn__sub_count(void)
{
	return n_subs;
}

static bool registered(const mn_sub *sub)
{
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

	if (atomic_exchange(&sub->unsubscribed, 1))
		return -ENOENT;
	atomic_store_explicit(&sub->node.dead, 1, memory_order_release);
	head = atomic_load(&deferred_subs);
	do {
		sub->deferred_next = head;
	} while (!atomic_compare_exchange_weak(&deferred_subs, &head, sub));
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
}

/*
 * Called with the core lock held; returns with it released.  Takes @sub
 * out of the registry and its chain, then, outside the lock, waits for the
 * grace period (unless the removal was deferred) and lets the source drop
 * what the subscription held.
 */
static void remove_locked(mn_sub *sub)
{
	/* Read before the grace period lets release free the subscription. */
	const struct mn__sub_ops *ops = sub->ops;
	struct mn__chain_removal rm;
	struct mn__chain *chain;

	unregister_locked(sub);
	chain = ops->unlink(sub, &rm);
	mn__unlock();
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
		remove_locked(sub);
	}
}

int mn_unsubscribe(mn_sub *sub)
{
	mn__check(sub, -EINVAL);
	if (mn__in_signal())
		return unsubscribe_from_signal(sub);
	mn__enter();
	mn__lock();
	/* Look the pointer up before touching it: a stale handle is -ENOENT,
	   not a use after free.  One already unsubscribed from a signal
	   handler is on its way out. */
	if (!registered(sub) || atomic_load(&sub->unsubscribed)) {
		mn__unlock();
		return -ENOENT;
	}
	remove_locked(sub);
	return 0;
}
