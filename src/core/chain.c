/* SPDX-License-Identifier: MIT */
/*
 * The callback chain; see chain.h for the design.
 */
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include "chain.h"
#include "core.h"
#include "internal.h"

/*
 * The walks this thread is inside, innermost last.  Initial-exec TLS is laid
 * out when the thread is created, so reading and writing it is
 * async-signal-safe (no lazy allocation through __tls_get_addr).  Signal
 * handlers nest strictly, so a handler that walks pushes above the
 * interrupted walk and pops before returning.
 */
#define MN__MAX_TRACKED_WALKS 8
struct walk_rec {
	const struct mn__chain *chain;
	unsigned int slot;
};
static __thread struct walk_rec tls_walks[MN__MAX_TRACKED_WALKS]
	__attribute__((tls_model("initial-exec")));
static __thread unsigned int tls_depth __attribute__((tls_model("initial-exec")));

/* All chains, for the fork fix-up; guarded by the core lock. */
static struct mn__chain *all_chains;

void mn__chain_init(struct mn__chain *c, enum mn__chain_order order)
{
	memset(c, 0, sizeof(*c));
	atomic_init(&c->snap, NULL);
	atomic_init(&c->epoch, 0);
	atomic_init(&c->readers[0], 0);
	atomic_init(&c->readers[1], 0);
	c->order = order;
	c->all_next = all_chains;
	all_chains = c;
}

/* --- readers: async-signal-safe, lock-free, allocation-free ------------- */

void mn__chain_walk_begin(struct mn__chain *c, struct mn__chain_reader *rd)
{
	unsigned int slot = atomic_load(&c->epoch) & 1u;
	unsigned int d = tls_depth;

	if (d < MN__MAX_TRACKED_WALKS) {
		tls_walks[d].chain = c;
		tls_walks[d].slot = slot;
	}
	atomic_signal_fence(memory_order_seq_cst);
	tls_depth = d + 1;
	atomic_fetch_add(&c->readers[slot], 1);
	rd->chain = c;
	rd->slot = slot;
	rd->next = 0;
	rd->snap = atomic_load(&c->snap);
	/* Entries below the count are complete: the writer stored them before
	   publishing the count. */
	rd->n = rd->snap ? atomic_load_explicit(&rd->snap->n, memory_order_acquire)
			 : 0;
	rd->newest_first = c->order == MN__CHAIN_NEWEST_FIRST;
}

void mn__chain_walk_begin_newest(struct mn__chain *c,
				 struct mn__chain_reader *rd)
{
	mn__chain_walk_begin(c, rd);
	rd->newest_first = true;
}

struct mn__chain_node *mn__chain_walk_next(struct mn__chain_reader *rd)
{
	const struct mn__chain_snap *s = rd->snap;

	while (rd->next < rd->n) {
		size_t i = rd->next++;
		struct mn__chain_node *n = s->nodes[rd->newest_first ? rd->n - 1 - i : i];
		if (!atomic_load_explicit(&n->dead, memory_order_acquire))
			return n;
	}
	return NULL;
}

void mn__chain_walk_end(struct mn__chain_reader *rd)
{
	atomic_fetch_sub(&rd->chain->readers[rd->slot], 1);
	atomic_signal_fence(memory_order_seq_cst);
	tls_depth--;
}

bool mn__chain_in_walk(const struct mn__chain *c)
{
	unsigned int d = tls_depth;

	if (d > MN__MAX_TRACKED_WALKS)
		return true; /* too deep to know: assume so, which is safe */
	for (unsigned int i = 0; i < d; i++)
		if (tls_walks[i].chain == c)
			return true;
	return false;
}

bool mn__chain_in_any_walk(void)
{
	return tls_depth > 0;
}

/* --- writers (caller holds the core lock) -------------------------------- */

size_t mn__chain_count(struct mn__chain *c)
{
	return c->live;
}

/*
 * Publish a new snapshot with room for twice the live nodes: the current
 * one's nodes less the removed ones, in order, plus @add.  The old
 * snapshot goes to @rm->old_snap; removed nodes whose remover has finished
 * go to @rm->nodes (freed after the grace period), and those whose remover
 * is still busy with them are marked dropped, for it to free.  A node that
 * is only dead (killed from a signal handler, not yet unlinked) stays:
 * walks skip it, and its own unlink removes it.
 */
static int compact(struct mn__chain *c, struct mn__chain_node *add,
		   struct mn__chain_removal *rm)
{
	struct mn__chain_snap *old = atomic_load(&c->snap);
	size_t n = old ? atomic_load_explicit(&old->n, memory_order_relaxed) : 0;
	size_t live = c->live + (add != NULL), k = 0;
	struct mn__chain_snap *s = NULL;

	if (live) {
		size_t cap = live < 4 ? 8 : 2 * live;
		s = malloc(sizeof(*s) + cap * sizeof(s->nodes[0]));
		if (!s)
			return -ENOMEM;
		s->retired_next = NULL;
		s->cap = cap;
		for (size_t i = 0; i < n; i++)
			if (!old->nodes[i]->unlinked)
				s->nodes[k++] = old->nodes[i];
		if (add)
			s->nodes[k++] = add;
		atomic_init(&s->n, k);
	}
	atomic_store(&c->snap, s);
	rm->old_snap = old;
	for (size_t i = 0; i < n; i++) {
		struct mn__chain_node *d = old->nodes[i];
		if (!d->unlinked)
			continue;
		if (d->held) {
			d->dropped = true;
		} else {
			d->retired_next = rm->nodes;
			rm->nodes = d;
		}
	}
	c->unlinked = 0;
	return 0;
}

void mn__chain_defer(struct mn__chain *c, struct mn__chain_removal *rm)
{
	if (rm->old_snap) {
		rm->old_snap->retired_next = c->retired_snaps;
		c->retired_snaps = rm->old_snap;
	}
	while (rm->nodes) {
		struct mn__chain_node *n = rm->nodes;
		rm->nodes = n->retired_next;
		n->retired_next = c->retired_nodes;
		c->retired_nodes = n;
	}
	rm->old_snap = NULL;
	rm->deferred = true;
}

int mn__chain_add(struct mn__chain *c, struct mn__chain_node *node,
		  struct mn__chain_removal *rm)
{
	struct mn__chain_snap *s = atomic_load(&c->snap);
	int err;

	memset(rm, 0, sizeof(*rm));
	if (node->owner == c && !node->unlinked)
		return -EEXIST;
	atomic_store(&node->dead, 0);
	node->unlinked = false;
	node->held = false;
	node->dropped = false;
	node->retired_next = NULL;
	if (s && atomic_load_explicit(&s->n, memory_order_relaxed) < s->cap) {
		size_t n = atomic_load_explicit(&s->n, memory_order_relaxed);
		s->nodes[n] = node; /* beyond every walk's count until: */
		atomic_store_explicit(&s->n, n + 1, memory_order_release);
	} else if ((err = compact(c, node, rm))) {
		return err;
	}
	node->owner = c;
	c->live++;
	/* A replaced snapshot may still be walked: the caller frees it after
	   a grace period, or later if it is inside a walk. */
	if (mn__chain_in_walk(c))
		mn__chain_defer(c, rm);
	return 0;
}

int mn__chain_unlink(struct mn__chain *c, struct mn__chain_node *node,
		     struct mn__chain_removal *rm)
{
	struct mn__chain_snap *s = atomic_load(&c->snap);
	bool deferred = mn__chain_in_walk(c);

	memset(rm, 0, sizeof(*rm));
	if (node->owner != c || node->unlinked)
		return -ENOENT;
	atomic_store_explicit(&node->dead, 1, memory_order_release);
	node->unlinked = true;
	/* A remover that cannot wait (inside a walk) hands the node over at
	   once: the compaction that drops it frees it. */
	node->held = !deferred;
	c->live--;
	c->unlinked++;
	if (c->unlinked * 2 > atomic_load_explicit(&s->n, memory_order_relaxed))
		(void)compact(c, NULL, rm); /* no memory: a later writer */
	if (!deferred)
		rm->self = node;
	else
		mn__chain_defer(c, rm);
	return 0;
}

static void wait_drained(_Atomic long *counter)
{
	unsigned int spins = 0;

	while (atomic_load(counter) != 0) {
		if (++spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
			__builtin_ia32_pause();
#elif defined(__aarch64__)
			__asm__ __volatile__("yield");
#endif
		} else if (spins < 256) {
			sched_yield();
		} else {
			struct timespec ts = { 0, 100 * 1000 };
			nanosleep(&ts, NULL);
		}
	}
}

void mn__chain_synchronize(struct mn__chain *c)
{
	/*
	 * A walk that may hold an older snapshot counted itself in one of the
	 * two counters before this call began; seeing each counter at zero
	 * once, after the call began, proves every such walk has ended.  Wait
	 * on both counters by name: other writers may flip the epoch at the
	 * same time, so the parity the epoch returns cannot choose them.  The
	 * flips only send new walks to the other counter so that the awaited
	 * one drains.
	 */
	unsigned int first = atomic_fetch_add(&c->epoch, 1) & 1u;

	wait_drained(&c->readers[first]);
	atomic_fetch_add(&c->epoch, 1);
	wait_drained(&c->readers[first ^ 1u]);
}

static void free_lists(struct mn__chain_snap *snaps,
		       struct mn__chain_node *nodes)
{
	while (snaps) {
		struct mn__chain_snap *next = snaps->retired_next;
		free(snaps);
		snaps = next;
	}
	while (nodes) {
		struct mn__chain_node *next = nodes->retired_next;
		if (nodes->release)
			nodes->release(nodes);
		nodes = next;
	}
}

void mn__chain_finish_remove(struct mn__chain *c, struct mn__chain_removal *rm)
{
	struct mn__chain_node *self = rm->self;

	if (rm->deferred)
		return;
	if (self) {
		/* The node is handed over: to the compaction that drops it,
		   or, when one already has, to us. */
		mn__lock();
		self->held = false;
		if (self->dropped) {
			self->retired_next = rm->nodes;
			rm->nodes = self;
		}
		mn__unlock();
		rm->self = NULL;
	} else if (!rm->old_snap && !rm->nodes) {
		return;
	}
	/* Even with nothing to free: a walk that began before the removal
	   may be calling the node; this returns once none is. */
	mn__chain_synchronize(c);
	free_lists(rm->old_snap, rm->nodes);
	rm->old_snap = NULL;
	rm->nodes = NULL;
}

void mn__chain_reclaim(struct mn__chain *c)
{
	struct mn__chain_snap *snaps;
	struct mn__chain_node *nodes;

	if (mn__chain_in_walk(c))
		return;
	mn__lock();
	snaps = c->retired_snaps;
	nodes = c->retired_nodes;
	c->retired_snaps = NULL;
	c->retired_nodes = NULL;
	mn__unlock();
	if (!snaps && !nodes)
		return;
	mn__chain_synchronize(c);
	free_lists(snaps, nodes);
}

void mn__chain_destroy(struct mn__chain *c)
{
	struct mn__chain_snap *s = atomic_load(&c->snap);
	struct mn__chain **pp;

	mn__lock();
	for (pp = &all_chains; *pp; pp = &(*pp)->all_next) {
		if (*pp == c) {
			*pp = c->all_next;
			break;
		}
	}
	mn__unlock();
	/* The caller guarantees no walk is running or can start; a last
	   grace period covers walks that ended just before. */
	mn__chain_synchronize(c);
	if (s) {
		size_t n_nodes = atomic_load(&s->n);
		for (size_t i = 0; i < n_nodes; i++) {
			struct mn__chain_node *n = s->nodes[i];
			if (n->unlinked && n->release)
				n->release(n);
		}
		free(s);
	}
	atomic_store(&c->snap, NULL);
	free_lists(c->retired_snaps, c->retired_nodes);
	c->retired_snaps = NULL;
	c->retired_nodes = NULL;
}

void mn__chain_atfork_child(void)
{
	unsigned int d = MN__MIN(tls_depth, (unsigned int)MN__MAX_TRACKED_WALKS);

	/* Only the forking thread exists in the child: its own walks are the
	   only ones still running. */
	for (struct mn__chain *c = all_chains; c; c = c->all_next) {
		atomic_store(&c->readers[0], 0);
		atomic_store(&c->readers[1], 0);
	}
	for (unsigned int i = 0; i < d; i++) {
		struct mn__chain *c = (struct mn__chain *)tls_walks[i].chain;
		atomic_fetch_add(&c->readers[tls_walks[i].slot], 1);
	}
}
