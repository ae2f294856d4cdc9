/* SPDX-License-Identifier: MIT */
/*
 * The cache's page table: a radix tree over page numbers (5 levels of 512
 * entries: addresses below 2^57 with 4 KiB pages) that maps each page to
 * the one region covering it, the shape of a CPU's page table and of
 * UCX's pgtable (4 KiB nodes: 64-entry nodes made hits at 1,000 regions
 * about 1.5 times slower in bench/rcache; a region alone in its 2 MiB
 * costs a node, freed when emptied).
 * A region is stored as the largest aligned blocks it
 * covers: an entry of an upper level holds a region (tagged) when the
 * region covers its whole block, so a 1 GiB region takes a few entries.
 *
 * Readers (find, each) are lock-free, allocation-free and
 * async-signal-safe: atomic loads, bounded recursion (5 levels).  Writers
 * (set, clear, drop) are serialized by the caller.  Regions must not
 * overlap (the cache takes overlapping ones out first).  Nodes are
 * allocated as needed; a node that a clear empties is unlinked and
 * retired to the readers' reclamation (@reclaim: readers bracket their
 * reads with mn__idx_read_begin/end on it), so no reader meets a freed
 * node; pgt_drop() frees the rest.
 */
#ifndef MN_RCACHE_PGT_H
#define MN_RCACHE_PGT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../vmrange/index.h"

#define PGT_BITS 9
#define PGT_N (1u << PGT_BITS)
#define PGT_LEVELS 5
#define PGT_MAX_PN (1ull << (PGT_BITS * PGT_LEVELS)) /* page numbers below */

struct pgt_node {
	_Atomic uintptr_t e[PGT_N];
	unsigned int used;  /* writer: entries not empty */
	struct mn__idx_retiree ret;
};

struct pgt {
	_Atomic(struct pgt_node *) root; /* set once, read by readers */
	uint64_t nodes;     /* writer: nodes in the table (stats) */
	struct mn__idx *reclaim; /* the readers' counters: an emptied node
	                            is retired there, freed once no reader
	                            can hold it */
};

/* Writers (reclaim set first).  set: 0 or -ENOMEM (nothing stored).
   clear: every entry of [lo, hi) holding @region is emptied, and the
   nodes left empty are retired.  Page numbers, lo < hi <=
   PGT_MAX_PN.  drop: free every node (no reader left). */
int pgt_set(struct pgt *t, uint64_t lo, uint64_t hi, void *region);
void pgt_clear(struct pgt *t, uint64_t lo, uint64_t hi, void *region);
void pgt_drop(struct pgt *t);

/* Readers (async-signal-safe).  find: the region holding page @pn, or
   NULL.  each: @fn for each entry holding a region with a page in
   [lo, hi), in address order (a region spanning several entries is seen
   once per entry); @fn returns false to stop. */
void *pgt_find(const struct pgt *t, uint64_t pn);
void pgt_each(const struct pgt *t, uint64_t lo, uint64_t hi,
	      bool (*fn)(void *region, void *arg), void *arg);

#endif
