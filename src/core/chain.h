/* SPDX-License-Identifier: MIT */
/*
 * The callback chain: an ordered set of nodes that many threads (and, from
 * the signal-chain source on, signal handlers) walk without locks while
 * writers add and remove nodes.
 *
 * How it works (a small SRCU):
 * - A snapshot is an array of node pointers in registration order, with
 *   spare room.  Adding a node writes it into the room and publishes the new
 *   count with one release store: walks that began before see the old
 *   count, later ones the new; nothing is copied.  Only when the room is
 *   full is a new snapshot (twice the live nodes) built and published with
 *   one atomic pointer store.  Writers are serialized by the caller
 *   (memnotify's core lock, mn__lock()); the chain has no lock.
 * - Removal marks the node dead (walks skip it) and leaves it in place; the
 *   snapshot is compacted (copied without the removed nodes) once they are
 *   more than half of it.  So adding and removing cost O(1) amortised, and
 *   N subscriptions cost O(N), not O(N^2).
 * - A removed node belongs to the thread that removed it until that thread
 *   calls mn__chain_finish_remove() (it may still wait on the node, e.g.
 *   for its callback to return).  A compaction in between drops it from
 *   the snapshot but leaves the freeing to that thread; otherwise the
 *   compaction that drops it frees it, after a grace period.
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
	                                           next compaction drops it */
	/* Writers' lock: */
	bool held;    /* unlinked, and its remover has not finished yet */
	bool dropped; /* out of every snapshot: the remover frees it */
	const struct mn__chain *owner;          /* the chain it was added to */
	void (*release)(struct mn__chain_node *); /* frees the node; called
	                                            once no reader can see it */
	struct mn__chain_node *retired_next;    /* deferred-free list link */
};

struct mn__chain_snap {
	struct mn__chain_snap *retired_next; /* deferred-free list link */
	size_t cap;
	_Atomic size_t n;               /* published with release */
	struct mn__chain_node *nodes[]; /* in registration order */
};

struct mn__chain {
	_Atomic(struct mn__chain_snap *) snap; /* NULL when empty */
	_Atomic unsigned int epoch;
	_Atomic long readers[2];
	enum mn__chain_order order;
	/* Writers' lock: nodes not removed, nodes removed but still in the
	   snapshot. */
	size_t live, unlinked;
	/* Deferred frees, guarded by the writers' lock. */
	struct mn__chain_node *retired_nodes;
	struct mn__chain_snap *retired_snaps;
	struct mn__chain *all_next; /* list of all chains, for fork */
};

struct mn__chain_reader {
	struct mn__chain *chain;
	struct mn__chain_snap *snap;
	size_t n;    /* the snapshot's count when the walk began */
	size_t next; /* how many entries were read */
	bool newest_first;
	unsigned int slot;
};

/* Core lock held (the chain joins the list of all chains). */
void mn__chain_init(struct mn__chain *c, enum mn__chain_order order);
/* Free retired memory; the chain must be empty and no walk may be running
   or start.  Takes the core lock itself: call it without. */
void mn__chain_destroy(struct mn__chain *c);

struct mn__chain_removal;
/* Writers (caller holds mn__lock()).  O(1) amortised.  Returns 0, -ENOMEM
   or -EEXIST (@node is in the chain); a replaced snapshot is handed back in
   @rm as for mn__chain_unlink().  A node is added at most once. */
int mn__chain_add(struct mn__chain *c, struct mn__chain_node *node,
		  struct mn__chain_removal *rm);
/*
 * Mark @node dead (no walk that starts later calls it; walks in progress
 * skip it) and, O(1) amortised, compact the snapshot when removed nodes
 * are more than half of it.  Returns -ENOENT if @node is not in the chain.
 * The caller then calls mn__chain_finish_remove() with @rm outside the
 * lock: it waits for a grace period, so that @node's callback is not
 * running, and frees what a compaction retired.  When this thread is
 * inside a walk of @c that wait is impossible: the memory goes to the
 * chain's deferred list (@rm->deferred) and @node may be freed by a later
 * reclaim as soon as the lock is dropped.  Removal never fails: a
 * compaction that cannot allocate is left to a later writer.
 */
struct mn__chain_removal {
	struct mn__chain_snap *old_snap;
	struct mn__chain_node *nodes; /* linked by retired_next */
	struct mn__chain_node *self;  /* the node removed, until finished */
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
/* The same, newest node first whatever the chain's order (a source that
   wants only its newest nodes stops early). */
void mn__chain_walk_begin_newest(struct mn__chain *c,
				 struct mn__chain_reader *rd);
struct mn__chain_node *mn__chain_walk_next(struct mn__chain_reader *rd);
void mn__chain_walk_end(struct mn__chain_reader *rd);

/* After fork(), in the child: drop reader counts of threads that do not
   exist there.  Called with the core lock held (atfork child). */
void mn__chain_atfork_child(void);

#endif /* MN_CORE_CHAIN_H */
