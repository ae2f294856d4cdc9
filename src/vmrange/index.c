/* SPDX-License-Identifier: MIT */
/*
 * The watch index: a copy-on-write B+tree with deferred reclamation (see
 * index.h).  Readers (mn__idx_read_begin/query/read_end) are
 * async-signal-safe: atomics and reads of immutable nodes only, no lock,
 * no allocation, bounded recursion (the depth is at most a few levels).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"

#define FAN MN__IDX_FAN
#define MAX_DEPTH 16

struct ent {
	uint64_t ks;       /* start (leaf) or the subtree's smallest start */
	uintptr_t kw;      /* owner: the tie-break of equal starts */
	uint64_t me;       /* end (leaf) or the subtree's largest end */
	void *p;           /* owner (leaf) or child node */
};

struct mn__idx_node {
	struct mn__idx_retiree ret;
	unsigned int n;
	bool leaf;
	uint64_t ks[FAN];  /* e[i].ks again, packed: the binary search's */
	uint64_t pm[FAN];  /* max of e[0..i].me: where a backward scan stops */
	struct ent e[FAN];
};

struct pool {
	struct mn__idx_node *n[2 * MAX_DEPTH + 2];
	int have, used;
	struct mn__idx_node *old[MAX_DEPTH + 1]; /* replaced: retired on success */
	int n_old;
};

static int key_cmp(uint64_t s1, uintptr_t w1, uint64_t s2, uintptr_t w2)
{
	if (s1 != s2)
		return s1 < s2 ? -1 : 1;
	return w1 < w2 ? -1 : w1 > w2;
}

static void node_free(struct mn__idx_retiree *r)
{
	free(r);
}

static int depth_of(const struct mn__idx_node *root)
{
	int d = 0;

	for (; root; root = root->leaf ? NULL : root->e[0].p)
		d++;
	return d;
}

#define MAX_SPARE 64

/* The nodes an update may need, from the writer's spares first (an
   update rarely splits: most of what it reserves comes back). */
static int pool_fill(struct mn__idx *x, struct pool *pl, int want)
{
	memset(pl, 0, sizeof(*pl));
	if (want > (int)(sizeof(pl->n) / sizeof(pl->n[0])))
		return -ENOMEM;
	for (; pl->have < want; pl->have++) {
		struct mn__idx_node *nd = x->spare;
		if (nd) {
			x->spare = nd->ret.next ? (struct mn__idx_node *)nd->ret.next : NULL;
			x->n_spare--;
		} else {
			nd = malloc(sizeof(struct mn__idx_node));
		}
		if (!nd) {
			while (pl->have-- > 0)
				free(pl->n[pl->have]);
			return -ENOMEM;
		}
		pl->n[pl->have] = nd;
	}
	return 0;
}

static void pool_drain(struct mn__idx *x, struct pool *pl)
{
	for (int i = pl->used; i < pl->have; i++) {
		struct mn__idx_node *nd = pl->n[i];
		if (x->n_spare >= MAX_SPARE) {
			free(nd);
			continue;
		}
		nd->ret.next = (struct mn__idx_retiree *)x->spare;
		x->spare = nd;
		x->n_spare++;
	}
}

static struct ent summary(struct mn__idx_node *nd)
{
	struct ent s = { nd->e[0].ks, nd->e[0].kw, 0, nd };

	for (unsigned int i = 0; i < nd->n; i++)
		if (nd->e[i].me > s.me)
			s.me = nd->e[i].me;
	return s;
}

static struct mn__idx_node *make(struct pool *pl, const struct ent *e,
				 unsigned int n, bool leaf)
{
	struct mn__idx_node *nd = pl->n[pl->used++];

	nd->ret.next = NULL;
	nd->ret.free_fn = node_free;
	nd->n = n;
	nd->leaf = leaf;
	memcpy(nd->e, e, n * sizeof(*e));
	for (unsigned int i = 0; i < n; i++) {
		nd->ks[i] = e[i].ks;
		nd->pm[i] = i && nd->pm[i - 1] > e[i].me ? nd->pm[i - 1] : e[i].me;
	}
	return nd;
}

/* @n entries (at most FAN + 1) into one node, or two halves. */
static void build(struct pool *pl, const struct ent *e, unsigned int n,
		  bool leaf, struct mn__idx_node **l, struct mn__idx_node **r)
{
	if (n <= FAN) {
		*l = make(pl, e, n, leaf);
		*r = NULL;
		return;
	}
	*l = make(pl, e, n / 2, leaf);
	*r = make(pl, e + n / 2, n - n / 2, leaf);
}

/* Last slot whose key is <= (s, w), or -1. */
static int slot_le(const struct mn__idx_node *nd, uint64_t s, uintptr_t w)
{
	int a = 0, b = (int)nd->n;

	while (a < b) {
		int mid = (a + b) / 2;
		if (key_cmp(nd->e[mid].ks, nd->e[mid].kw, s, w) <= 0)
			a = mid + 1;
		else
			b = mid;
	}
	return a - 1;
}

static void ins_rec(struct pool *pl, struct mn__idx_node *nd, const struct ent *add,
		    struct mn__idx_node **l, struct mn__idx_node **r)
{
	struct ent tmp[FAN + 1];
	unsigned int n = nd->n;
	int i = slot_le(nd, add->ks, add->kw);

	memcpy(tmp, nd->e, n * sizeof(tmp[0]));
	if (nd->leaf) {
		memmove(&tmp[i + 2], &tmp[i + 1], (n - (unsigned int)(i + 1)) * sizeof(tmp[0]));
		tmp[i + 1] = *add;
		n++;
	} else {
		struct mn__idx_node *cl, *cr;
		if (i < 0)
			i = 0;
		ins_rec(pl, tmp[i].p, add, &cl, &cr);
		tmp[i] = summary(cl);
		if (cr) {
			memmove(&tmp[i + 2], &tmp[i + 1],
				(n - (unsigned int)(i + 1)) * sizeof(tmp[0]));
			tmp[i + 1] = summary(cr);
			n++;
		}
	}
	pl->old[pl->n_old++] = nd;
	build(pl, tmp, n, nd->leaf, l, r);
}

static void publish(struct mn__idx *x, struct mn__idx_node *root, struct pool *pl)
{
	atomic_store(&x->root, root);
	for (int i = 0; i < pl->n_old; i++)
		mn__idx_retire(x, &pl->old[i]->ret);
	pool_drain(x, pl);
}

int mn__idx_insert(struct mn__idx *x, uint64_t start, uint64_t end, void *owner)
{
	struct mn__idx_node *root = atomic_load(&x->root), *l, *r;
	struct ent add = { start, (uintptr_t)owner, end, owner };
	int d = depth_of(root);
	struct pool pl;

	if (d >= MAX_DEPTH || pool_fill(x, &pl, 2 * d + 2) != 0)
		return -ENOMEM;
	if (!root) {
		l = make(&pl, &add, 1, true);
	} else {
		ins_rec(&pl, root, &add, &l, &r);
		if (r) {
			struct ent two[2] = { summary(l), summary(r) };
			l = make(&pl, two, 2, false);
		}
	}
	publish(x, l, &pl);
	x->n++;
	return 0;
}

/* Remove (s, w) below @nd: 0 with *out the replacement (NULL: empty). */
static int rem_rec(struct pool *pl, struct mn__idx_node *nd, uint64_t s,
		   uintptr_t w, struct mn__idx_node **out)
{
	struct ent tmp[FAN];
	unsigned int n = nd->n;
	int i = slot_le(nd, s, w);
	struct mn__idx_node *r;

	if (i < 0)
		return -ENOENT;
	memcpy(tmp, nd->e, n * sizeof(tmp[0]));
	if (nd->leaf) {
		if (tmp[i].ks != s || tmp[i].kw != w)
			return -ENOENT;
		memmove(&tmp[i], &tmp[i + 1], (n - (unsigned int)i - 1) * sizeof(tmp[0]));
		n--;
	} else {
		struct mn__idx_node *c;
		if (rem_rec(pl, tmp[i].p, s, w, &c))
			return -ENOENT;
		if (c) {
			tmp[i] = summary(c);
		} else {
			memmove(&tmp[i], &tmp[i + 1],
				(n - (unsigned int)i - 1) * sizeof(tmp[0]));
			n--;
		}
	}
	pl->old[pl->n_old++] = nd;
	*out = NULL;
	if (n)
		build(pl, tmp, n, nd->leaf, out, &r);
	return 0;
}

int mn__idx_remove(struct mn__idx *x, uint64_t start, void *owner)
{
	struct mn__idx_node *root = atomic_load(&x->root), *nr;
	int d = depth_of(root);
	struct pool pl;

	if (!root)
		return -ENOENT;
	if (pool_fill(x, &pl, d) != 0)
		return -ENOMEM;
	if (rem_rec(&pl, root, start, (uintptr_t)owner, &nr)) {
		pool_drain(x, &pl);
		return -ENOENT;
	}
	/* A root left with one child gives way to it (the new root was never
	   published: freed at once). */
	while (nr && !nr->leaf && nr->n == 1) {
		struct mn__idx_node *c = nr->e[0].p;
		free(nr);
		nr = c;
	}
	publish(x, nr, &pl);
	x->n--;
	return 0;
}

void mn__idx_drop_spares(struct mn__idx *x)
{
	while (x->spare) {
		struct mn__idx_node *nd = x->spare;
		x->spare = (struct mn__idx_node *)nd->ret.next;
		free(nd);
	}
	x->n_spare = 0;
}

void mn__idx_retire(struct mn__idx *x, struct mn__idx_retiree *r)
{
	r->next = x->gen[0];
	x->gen[0] = r;
}

void mn__idx_free_list(struct mn__idx_retiree *list)
{
	while (list) {
		struct mn__idx_retiree *next = list->next;
		list->free_fn(list);
		list = next;
	}
}

void mn__idx_poll(struct mn__idx *x, struct mn__idx_retiree **out)
{
	unsigned int prev = (atomic_load(&x->epoch) & 1u) ^ 1u;
	struct mn__idx_retiree *done;

	if (!x->gen[0] && !x->gen[1] && !x->gen[2])
		return;
	/* The last flip has not drained yet: try again at the next update. */
	for (int i = 0; i < MN__IDX_STRIPES; i++)
		if (atomic_load(&x->readers[prev][i].n) != 0)
			return;
	done = x->gen[2];
	x->gen[2] = x->gen[1];
	x->gen[1] = x->gen[0];
	x->gen[0] = NULL;
	atomic_fetch_add(&x->epoch, 1);
	for (struct mn__idx_retiree *r = done; r; r = r->next)
		x->freed++;
	if (out) {
		struct mn__idx_retiree **tail = out;
		while (*tail)
			tail = &(*tail)->next;
		*tail = done;
	} else {
		mn__idx_free_list(done);
	}
}

static void each_rec(struct mn__idx_node *nd, void (*fn)(void *, void *), void *arg)
{
	for (unsigned int i = 0; i < nd->n; i++) {
		if (nd->leaf)
			fn(nd->e[i].p, arg);
		else
			each_rec(nd->e[i].p, fn, arg);
	}
}

void mn__idx_each(struct mn__idx *x, void (*fn)(void *owner, void *arg), void *arg)
{
	struct mn__idx_node *root = atomic_load(&x->root);

	if (root)
		each_rec(root, fn, arg);
}

/* --- readers (async-signal-safe) -------------------------------------------- */

/* This thread's stripe plus one (0: not chosen yet).  Initial-exec TLS:
   safe in a signal handler. */
static __thread unsigned int tls_stripe __attribute__((tls_model("initial-exec")));

unsigned int mn__idx_stripe(void)
{
	static _Atomic unsigned int next_stripe;
	unsigned int stripe = tls_stripe;

	if (!stripe)
		tls_stripe = stripe = atomic_fetch_add_explicit(
			&next_stripe, 1, memory_order_relaxed) % MN__IDX_STRIPES + 1;
	return stripe - 1;
}

unsigned int mn__idx_read_begin(struct mn__idx *x)
{
	unsigned int stripe = mn__idx_stripe(), parity;

	parity = atomic_load(&x->epoch) & 1u;
	atomic_fetch_add(&x->readers[parity][stripe].n, 1);
	return parity | stripe << 1;
}

void mn__idx_read_end(struct mn__idx *x, unsigned int slot)
{
	atomic_fetch_sub(&x->readers[slot & 1u][slot >> 1].n, 1);
}

/*
 * The slots that can overlap [lo, hi): those before the first start >= hi
 * (binary search), scanned backward while the prefix maximum of the ends
 * is above lo, visited in start order.  With disjoint ranges that is one
 * slot per level.
 */
static bool query_rec(const struct mn__idx_node *nd, uint64_t lo, uint64_t hi,
		      bool (*fn)(uint64_t, uint64_t, void *, void *), void *arg)
{
	unsigned int a = 0, b = nd->n, first;

	while (a < b) {
		unsigned int mid = (a + b) / 2;
		if (nd->ks[mid] < hi)
			a = mid + 1;
		else
			b = mid;
	}
	first = a;
	while (first > 0 && nd->pm[first - 1] > lo)
		first--;
	for (unsigned int i = first; i < a; i++) {
		const struct ent *e = &nd->e[i];
		if (e->me <= lo)
			continue;
		if (nd->leaf ? !fn(e->ks, e->me, e->p, arg)
			     : !query_rec(e->p, lo, hi, fn, arg))
			return false;
	}
	return true;
}

void mn__idx_query(struct mn__idx *x, uint64_t lo, uint64_t hi,
		   bool (*fn)(uint64_t start, uint64_t end, void *owner, void *arg),
		   void *arg)
{
	const struct mn__idx_node *root = atomic_load(&x->root);

	if (root)
		query_rec(root, lo, hi, fn, arg);
}

void mn__idx_atfork_child(struct mn__idx *x)
{
	for (int i = 0; i < MN__IDX_STRIPES; i++) {
		atomic_store(&x->readers[0][i].n, 0);
		atomic_store(&x->readers[1][i].n, 0);
	}
}
