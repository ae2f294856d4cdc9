/* SPDX-License-Identifier: MIT */
/*
 * The callback chain: an ordered set of nodes that many threads (and, from
 * the signal-chain source on, signal handlers) walk without locks while
 * writers add and remove nodes.
 *
 * How it works (a small SRCU):
 * - Writers build a new immutable snapshot (an array of node pointers) and
 *   publish it with one atomic pointer store.  Writers are serialized by the
 *   caller (memnotify's core lock, mn__lock()); the chain has no lock.
 * - A reader counts itself in one of two reader counters chosen by the
 *   chain's epoch parity, then loads the snapshot.  Entering and leaving are
 *   two atomic adds: lock-free, allocation-free, async-signal-safe.
 * - mn__chain_synchronize() waits for a grace period: it flips the epoch
 *   twice and waits for each old counter to drain, after which no reader
 *   can still hold a snapshot published before the call.  Old snapshots and
 *   removed nodes are freed only after one.
 * - A thread that is inside a walk of a chain (tracked in initial-exec TLS,
 *   set up at thread creation, never lazily allocated) must not wait for
 *   that chain's grace period: it would wait for itself.  Removal from
 *   inside a walk therefore retires the node and the old snapshot to a
 *   deferred list, reclaimed by the next writer or dispatcher pass that is
 *   outside a walk.  A removed node is marked dead at once, so walks that
 *   start later never see it and walks in progress skip it.
 *
 * Order: fixed per chain at init — oldest first (FIFO) or newest first
 * (LIFO, the NMI chain's order).
 */
#ifndef MN_CORE_CHAIN_H
#define MN_CORE_CHAIN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

enum mn__chain_order {
	MN__CHAIN_OLDEST_FIRST = 0,
	MN__CHAIN_NEWEST_FIRST = 1,
};

struct mn__chain_node {
	_Atomic int dead;                       /* never call it again */
	bool unlinked;                          /* removed by a writer: the
	                                           next snapshot drops it */
	void (*release)(struct mn__chain_node *); /* frees the node; called
	                                            once no reader can see it */
	struct mn__chain_node *retired_next;    /* deferred-free list link */
};

struct mn__chain_snap {
	struct mn__chain_snap *retired_next; /* deferred-free list link */
	size_t n;
	struct mn__chain_node *nodes[]; /* in call order */
};

struct mn__chain {
	_Atomic(struct mn__chain_snap *) snap; /* NULL when empty */
	_Atomic unsigned int epoch;
	_Atomic long readers[2];
	enum mn__chain_order order;
	/* Deferred frees, guarded by the writers' lock. */
	struct mn__chain_node *retired_nodes;
	struct mn__chain_snap *retired_snaps;
	struct mn__chain *all_next; /* list of all chains, for fork */
};

struct mn__chain_reader {
	struct mn__chain *chain;
	struct mn__chain_snap *snap;
	size_t next;
	unsigned int slot;
};

/* Core lock held (the chain joins the list of all chains). */
void mn__chain_init(struct mn__chain *c, enum mn__chain_order order);
/* Free retired memory; the chain must be empty and no walk may be running
   or start.  Takes the core lock itself: call it without. */
void mn__chain_destroy(struct mn__chain *c);

struct mn__chain_removal;
/* Writers (caller holds mn__lock()).  Returns 0, -ENOMEM or -EEXIST; the
   replaced snapshot is handed back in @rm as for mn__chain_unlink(). */
int mn__chain_add(struct mn__chain *c, struct mn__chain_node *node,
		  struct mn__chain_removal *rm);
/*
 * Mark @node dead and publish a snapshot without it (and without any other
 * dead node).  Returns -ENOENT if @node is not in the chain.  On success the
 * memory to free — the old snapshot and the dead nodes it held — is either
 * handed back in @rm, to be freed by mn__chain_finish_remove() outside the
 * lock after a grace period, or, when this thread is inside a walk of @c,
 * put on the chain's deferred list (@rm->deferred).  If the new snapshot
 * cannot be allocated the node stays in the old one, dead (never called),
 * and is freed by the next writer that can rebuild: removal never fails.
 */
struct mn__chain_removal {
	struct mn__chain_snap *old_snap;
	struct mn__chain_node *nodes; /* linked by retired_next */
	bool deferred;
};
int mn__chain_unlink(struct mn__chain *c, struct mn__chain_node *node,
		     struct mn__chain_removal *rm);
/* Writer lock held: hand @rm's memory to the chain's deferred list, freed
   by a later mn__chain_reclaim() (for writers that cannot wait). */
void mn__chain_defer(struct mn__chain *c, struct mn__chain_removal *rm);
/* Without any lock held: wait for the grace period, then free. */
void mn__chain_finish_remove(struct mn__chain *c,
			     struct mn__chain_removal *rm);
/* Wait until no walk that began before this call is still running. */
void mn__chain_synchronize(struct mn__chain *c);
/* Free deferred memory if this thread is not inside a walk of @c.  Takes
   the writers' lock itself. */
void mn__chain_reclaim(struct mn__chain *c);
size_t mn__chain_count(struct mn__chain *c);
/* True if the calling thread is inside a walk of @c (or of too many chains
   to tell).  Async-signal-safe. */
bool mn__chain_in_walk(const struct mn__chain *c);
/* True if the calling thread is inside any walk.  Async-signal-safe.
   bool mn__chain_in_any_walk(void): declared in core/faceapi.h. */

/* Readers: lock-free, allocation-free, async-signal-safe. */
void mn__chain_walk_begin(struct mn__chain *c, struct mn__chain_reader *rd);
struct mn__chain_node *mn__chain_walk_next(struct mn__chain_reader *rd);
void mn__chain_walk_end(struct mn__chain_reader *rd);

/* After fork(), in the child: drop reader counts of threads that do not
   exist there.  Called with the core lock held (atfork child). */
void mn__chain_atfork_child(void);

#endif /* MN_CORE_CHAIN_H */
