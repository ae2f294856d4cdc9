/* SPDX-License-Identifier: MIT */
/*
 * The watch index: an interval index over [start, end) ranges that one
 * writer at a time (the caller serializes: memnotify's core lock) updates
 * in O(log n) and that any thread or signal handler reads without locks.
 *
 * Shape: a copy-on-write B+tree (fanout MN__IDX_FAN).  Entries are sorted
 * by (start, owner pointer); each internal slot carries the smallest key
 * and the largest end of its subtree, so an overlap query visits only the
 * subtrees that can hold a hit.  An update copies the nodes on one
 * root-to-leaf path (a few KiB) and publishes the new root with one atomic
 * store; the replaced nodes are retired, not freed.
 *
 * Reclamation without waiting: readers count themselves in one of two
 * counters chosen by the epoch's parity (two atomic adds, async-signal-
 * safe).  A writer never waits for them: at each update it polls — if the
 * counter of the previous parity has drained it frees what was retired
 * three flips ago and flips again.  Memory retired before flip k is freed
 * only after the drains of flips k+1 and k+2 were both seen, the same
 * guarantee as a two-flip grace period (SRCU), paid for by no one.
 */
#ifndef MN_VMRANGE_INDEX_H
#define MN_VMRANGE_INDEX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MN__IDX_FAN 32
/* Reader counters per parity, one cache line each, a thread keeps to one:
   readers on different threads do not share a line. */
#define MN__IDX_STRIPES 8

struct mn__idx_node;

/* Something freed once no reader can still see it (its own memory). */
struct mn__idx_retiree {
	struct mn__idx_retiree *next;
	void (*free_fn)(struct mn__idx_retiree *r);
};

struct mn__idx {
	_Atomic(struct mn__idx_node *) root;
	_Atomic unsigned int epoch;
	struct {
		_Atomic long n;
		char pad[64 - sizeof(long)];
	} readers[2][MN__IDX_STRIPES] __attribute__((aligned(64)));
	size_t n;                          /* entries (writer) */
	struct mn__idx_retiree *gen[3];    /* retired: now, 1 and 2 flips ago */
	size_t freed;                      /* retirees freed so far (stats) */
	struct mn__idx_node *spare;        /* writer: unused nodes to reuse */
	size_t n_spare;
};

/* Writers: the caller serializes them.  insert: 0 or -ENOMEM (the index
   is unchanged).  remove: 0, -ENOENT, or -ENOMEM (unchanged; the caller
   keeps the owner dead and retries later). */
int mn__idx_insert(struct mn__idx *x, uint64_t start, uint64_t end, void *owner);
int mn__idx_remove(struct mn__idx *x, uint64_t start, void *owner);
/* Hand @r to the index's reclamation: freed (r->free_fn) once every
   reader that could have reached it has left.  Writer context. */
void mn__idx_retire(struct mn__idx *x, struct mn__idx_retiree *r);
/* Writer context: free what is safe to free now; never waits.  Returns
   the retirees freed, for the caller to run outside its lock if it set
   @out (else frees them here). */
void mn__idx_poll(struct mn__idx *x, struct mn__idx_retiree **out);
/* Writer context: free the nodes kept for reuse (an index going away). */
void mn__idx_drop_spares(struct mn__idx *x);
/* Run a list from mn__idx_poll(); no lock needed. */
void mn__idx_free_list(struct mn__idx_retiree *list);
/* Writer context, nothing published any more may be read (fork child,
   teardown): visit every owner. */
void mn__idx_each(struct mn__idx *x, void (*fn)(void *owner, void *arg), void *arg);

/* This thread's stripe, 0 .. MN__IDX_STRIPES - 1 (async-signal-safe):
   for other per-thread counters. */
unsigned int mn__idx_stripe(void);

/* Readers: async-signal-safe, lock-free, allocation-free.  empty: nothing
   is indexed right now (a reader may skip the index: two atomic adds
   saved on every hooked call when nobody watches). */
static inline bool mn__idx_empty(struct mn__idx *x)
{
	return atomic_load_explicit(&x->root, memory_order_acquire) == NULL;
}

unsigned int mn__idx_read_begin(struct mn__idx *x);
void mn__idx_read_end(struct mn__idx *x, unsigned int slot);
/* Between read_begin and read_end: call @fn for each entry overlapping
   [lo, hi), in start order.  @fn may return false to stop. */
void mn__idx_query(struct mn__idx *x, uint64_t lo, uint64_t hi,
		   bool (*fn)(uint64_t start, uint64_t end, void *owner, void *arg),
		   void *arg);

/* After fork(), in the child: the readers of other threads are gone. */
void mn__idx_atfork_child(struct mn__idx *x);

#endif
