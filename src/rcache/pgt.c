/* SPDX-License-Identifier: MIT */
/* The cache's page table (see pgt.h). */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "pgt.h"

#define TAG ((uintptr_t)1) /* an upper level's entry holding a region */

static uint64_t span_of(int level)
{
	return 1ull << (PGT_BITS * level);
}

static unsigned int index_of(uint64_t pn, int level)
{
	return (unsigned int)(pn >> (PGT_BITS * level)) & (PGT_N - 1);
}

/* Is [lo, hi) inside one leaf node (the common shape: at most 2 MiB,
   crossing no 2 MiB boundary)? */
static bool in_one_leaf(uint64_t lo, uint64_t hi)
{
	return (lo >> PGT_BITS) == ((hi - 1) >> PGT_BITS);
}

/* --- readers (async-signal-safe) -------------------------------------------- */

void *pgt_find(const struct pgt *t, uint64_t pn)
{
	const struct pgt_node *nd = atomic_load_explicit(&t->root, memory_order_acquire);

	if (!nd || pn >= PGT_MAX_PN)
		return NULL;
	for (int level = PGT_LEVELS - 1;; level--) {
		uintptr_t v = atomic_load_explicit(&nd->e[index_of(pn, level)],
						   memory_order_acquire);
		if (!v || level == 0)
			return (void *)v;
		if (v & TAG)
			return (void *)(v & ~TAG);
		nd = (const struct pgt_node *)v;
	}
}

/* [lo, hi) within this node's block, which starts at @base. */
static bool each_rec(const struct pgt_node *nd, int level, uint64_t base,
		     uint64_t lo, uint64_t hi, bool (*fn)(void *, void *), void *arg)
{
	uint64_t span = span_of(level);
	unsigned int i = lo > base ? index_of(lo - base, level) : 0;

	for (; i < PGT_N && base + i * span < hi; i++) {
		uintptr_t v = atomic_load_explicit(&nd->e[i], memory_order_acquire);
		uint64_t eb = base + i * span;
		if (!v)
			continue;
		if (level == 0 || (v & TAG)) {
			if (!fn((void *)(v & ~TAG), arg))
				return false;
		} else if (!each_rec((const struct pgt_node *)v, level - 1, eb,
				     lo > eb ? lo : eb, hi, fn, arg)) {
			return false;
		}
	}
	return true;
}

/* The common shape, without recursion: [lo, hi) inside one leaf node. */
static void each_in_leaf(const struct pgt_node *nd, uint64_t lo, uint64_t hi,
			 bool (*fn)(void *, void *), void *arg)
{
	for (int level = PGT_LEVELS - 1; level > 0; level--) {
		uintptr_t v = atomic_load_explicit(&nd->e[index_of(lo, level)],
						   memory_order_acquire);
		if (!v)
			return;
		if (v & TAG) {
			fn((void *)(v & ~TAG), arg);
			return;
		}
		nd = (const struct pgt_node *)v;
	}
	for (uint64_t pn = lo; pn < hi; pn++) {
		uintptr_t v = atomic_load_explicit(&nd->e[index_of(pn, 0)],
						   memory_order_acquire);
		if (v && !fn((void *)v, arg))
			return;
	}
}

void pgt_each(const struct pgt *t, uint64_t lo, uint64_t hi,
	      bool (*fn)(void *region, void *arg), void *arg)
{
	const struct pgt_node *root = atomic_load_explicit(&t->root, memory_order_acquire);

	if (root && lo < hi && hi <= PGT_MAX_PN && in_one_leaf(lo, hi))
		each_in_leaf(root, lo, hi, fn, arg);
	else if (root && lo < hi && lo < PGT_MAX_PN)
		each_rec(root, PGT_LEVELS - 1, 0, lo,
			 hi < PGT_MAX_PN ? hi : PGT_MAX_PN, fn, arg);
}

/* --- writers ------------------------------------------------------------------ */

static void node_free(struct mn__idx_retiree *r)
{
	free((char *)r - offsetof(struct pgt_node, ret));
}

static struct pgt_node *node_new(struct pgt *t)
{
	struct pgt_node *nd = calloc(1, sizeof(*nd));

	if (nd)
		t->nodes++;
	return nd;
}

static int set_rec(struct pgt *t, struct pgt_node *nd, int level, uint64_t base,
		   uint64_t lo, uint64_t hi, uintptr_t r)
{
	uint64_t span = span_of(level);
	unsigned int i = lo > base ? index_of(lo - base, level) : 0;

	for (; i < PGT_N && base + i * span < hi; i++) {
		uint64_t eb = base + i * span;
		uintptr_t v = atomic_load_explicit(&nd->e[i], memory_order_relaxed);
		if (level == 0 || (!v && lo <= eb && eb + span <= hi)) {
			nd->used += !v;
			atomic_store_explicit(&nd->e[i], level ? r | TAG : r,
					      memory_order_release);
			continue;
		}
		if (v & TAG)
			return -EEXIST; /* overlap: the caller's bug */
		if (!v) {
			struct pgt_node *child = node_new(t);
			if (!child)
				return -ENOMEM;
			v = (uintptr_t)child;
			nd->used++;
			atomic_store_explicit(&nd->e[i], v, memory_order_release);
		}
		int err = set_rec(t, (struct pgt_node *)v, level - 1, eb,
				  lo > eb ? lo : eb, hi, r);
		if (err)
			return err;
	}
	return 0;
}

static void clear_rec(struct pgt *t, struct pgt_node *nd, int level,
		      uint64_t base, uint64_t lo, uint64_t hi, uintptr_t r)
{
	uint64_t span = span_of(level);
	unsigned int i = lo > base ? index_of(lo - base, level) : 0;

	for (; i < PGT_N && base + i * span < hi; i++) {
		uint64_t eb = base + i * span;
		uintptr_t v = atomic_load_explicit(&nd->e[i], memory_order_relaxed);
		struct pgt_node *child = (struct pgt_node *)v;
		if (!v)
			continue;
		if (v == r || (level > 0 && v == (r | TAG))) {
			atomic_store_explicit(&nd->e[i], 0, memory_order_release);
			nd->used--;
			continue;
		}
		if (level == 0 || (v & TAG))
			continue;
		clear_rec(t, child, level - 1, eb, lo > eb ? lo : eb, hi, r);
		if (child->used)
			continue;
		/* Emptied: unlinked, then freed once no reader holds it. */
		atomic_store_explicit(&nd->e[i], 0, memory_order_release);
		nd->used--;
		child->ret.free_fn = node_free;
		mn__idx_retire(t->reclaim, &child->ret);
		t->nodes--;
	}
}

/* The common shape, without recursion: [lo, hi) inside one leaf node,
   no upper-level entry holding a region on the way.  Makes the missing
   nodes, then stores the leaf's entries (as set_rec's level 0 does).
   1: done, 0: another shape (nothing stored), -ENOMEM. */
static int set_in_leaf(struct pgt *t, struct pgt_node *nd, uint64_t lo,
		       uint64_t hi, uintptr_t r)
{
	if (!in_one_leaf(lo, hi))
		return 0;
	for (int level = PGT_LEVELS - 1; level > 0; level--) {
		_Atomic uintptr_t *e = &nd->e[index_of(lo, level)];
		uintptr_t v = atomic_load_explicit(e, memory_order_relaxed);
		if (v & TAG)
			return 0;
		if (!v) {
			struct pgt_node *child = node_new(t);
			if (!child)
				return -ENOMEM; /* pgt_set's clear retires
						   the empty nodes made */
			v = (uintptr_t)child;
			nd->used++;
			atomic_store_explicit(e, v, memory_order_release);
		}
		nd = (struct pgt_node *)v;
	}
	for (uint64_t pn = lo; pn < hi; pn++) {
		_Atomic uintptr_t *e = &nd->e[index_of(pn, 0)];
		nd->used += !atomic_load_explicit(e, memory_order_relaxed);
		atomic_store_explicit(e, r, memory_order_release);
	}
	return 1;
}

int pgt_set(struct pgt *t, uint64_t lo, uint64_t hi, void *region)
{
	struct pgt_node *root = atomic_load_explicit(&t->root, memory_order_relaxed);
	int err;

	if (!root) {
		if (!(root = node_new(t)))
			return -ENOMEM;
		atomic_store_explicit(&t->root, root, memory_order_release);
	}
	err = set_in_leaf(t, root, lo, hi, (uintptr_t)region);
	if (err > 0)
		return 0;
	if (!err)
		err = set_rec(t, root, PGT_LEVELS - 1, 0, lo, hi, (uintptr_t)region);
	if (err)
		pgt_clear(t, lo, hi, region);
	return err;
}

/* The common shape, without recursion: [lo, hi) inside one leaf node
   and no upper-level entry on the way.  Clears, then retires the nodes
   left empty from the leaf up (never the root).  false: another shape,
   nothing done. */
static bool clear_in_leaf(struct pgt *t, struct pgt_node *root, uint64_t lo,
			  uint64_t hi, uintptr_t r)
{
	struct pgt_node *path[PGT_LEVELS], *nd = root;
	unsigned int idx[PGT_LEVELS];

	if (!in_one_leaf(lo, hi))
		return false;
	for (int level = PGT_LEVELS - 1; level > 0; level--) {
		unsigned int i = index_of(lo, level);
		uintptr_t v = atomic_load_explicit(&nd->e[i], memory_order_relaxed);
		if (!v || (v & TAG))
			return false;
		path[level] = nd;
		idx[level] = i;
		nd = (struct pgt_node *)v;
	}
	for (uint64_t pn = lo; pn < hi; pn++) {
		_Atomic uintptr_t *e = &nd->e[index_of(pn, 0)];
		if (atomic_load_explicit(e, memory_order_relaxed) == r) {
			atomic_store_explicit(e, 0, memory_order_release);
			nd->used--;
		}
	}
	for (int level = 1; level < PGT_LEVELS && !nd->used; level++) {
		struct pgt_node *parent = path[level];
		atomic_store_explicit(&parent->e[idx[level]], 0, memory_order_release);
		parent->used--;
		nd->ret.free_fn = node_free;
		mn__idx_retire(t->reclaim, &nd->ret);
		t->nodes--;
		nd = parent;
	}
	return true;
}

void pgt_clear(struct pgt *t, uint64_t lo, uint64_t hi, void *region)
{
	struct pgt_node *root = atomic_load_explicit(&t->root, memory_order_relaxed);

	if (root && !clear_in_leaf(t, root, lo, hi, (uintptr_t)region))
		clear_rec(t, root, PGT_LEVELS - 1, 0, lo, hi, (uintptr_t)region);
}

static void drop_rec(struct pgt_node *nd, int level)
{
	for (unsigned int i = 0; level > 0 && i < PGT_N; i++) {
		uintptr_t v = atomic_load_explicit(&nd->e[i], memory_order_relaxed);
		if (v && !(v & TAG))
			drop_rec((struct pgt_node *)v, level - 1);
	}
	free(nd);
}

void pgt_drop(struct pgt *t)
{
	struct pgt_node *root = atomic_load_explicit(&t->root, memory_order_relaxed);

	if (root)
		drop_rec(root, PGT_LEVELS - 1);
	atomic_store_explicit(&t->root, NULL, memory_order_relaxed);
	t->nodes = 0;
}
