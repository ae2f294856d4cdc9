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

void mn__enter(void)
{
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

int mn_unsubscribe(mn_sub *sub)
{
	struct mn__chain_removal rm;
	struct mn__chain *chain;

	mn__check(sub, -EINVAL);
	mn__enter();
	mn__lock();
	/* Look the pointer up before touching it: a stale handle is -ENOENT,
	   not a use after free. */
	if (!registered(sub)) {
		mn__unlock();
		return -ENOENT;
	}
	if (sub->reg_prev)
		sub->reg_prev->reg_next = sub->reg_next;
	else
		subs = sub->reg_next;
	if (sub->reg_next)
		sub->reg_next->reg_prev = sub->reg_prev;
	n_subs--;
	chain = sub->ops->unlink(sub, &rm);
	mn__unlock();

	/* Read what we need before the grace period lets release free it. */
	const struct mn__sub_ops *ops = sub->ops;
	mn__chain_finish_remove(chain, &rm);
	if (ops->after)
		ops->after(chain);
	return 0;
}
