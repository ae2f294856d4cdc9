/* SPDX-License-Identifier: MIT */
/*
 * Address-range invalidation (AddSecureMemoryCacheCallback): watches,
 * listeners, and the lock-free lookup every hooked call makes.
 *
 * The watch index is an immutable array sorted by start address, with a
 * running maximum of the end addresses, published with one atomic store.
 * A lookup for [lo, hi) binary-searches the first entry starting at or
 * after hi and scans back while the running maximum end is above lo.
 * Readers count themselves in the watch chain (the chain's SRCU), so an
 * old index and a removed watch are freed only after a grace period.
 *
 * Everything reachable from mn__vm_notify() is async-signal-safe: atomics,
 * the chain walk, syscall(SYS_gettid), the callbacks.
 */
#include <stdlib.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../core/core.h"
#include "vmrange.h"

_Atomic int mn__vm_active;

struct vmwatch {
	struct mn_sub sub;     /* node in vm.watches */
	uint64_t start, end;   /* page-aligned */
	unsigned int flags;
	bool uffd;             /* registered with userfaultfd */
	mn_vm_cb cb;
	void *ctx;
	struct vmring *ring;   /* MN_VM_DISPATCH, else NULL */
};

struct vmlistener {
	struct mn_sub sub;
	mn_vm_cb cb;
	void *ctx;
	struct vmring *ring;   /* MN_VM_DISPATCH, else NULL */
};

struct idx_entry {
	uint64_t start, end;
	uint64_t max_end;      /* max end over entries [0, i] */
	struct vmwatch *w;
};

struct vm_index {
	struct vm_index *retired_next;
	size_t n;
	struct idx_entry e[];
};

static struct {
	bool ready;                     /* core lock */
	struct mn__chain watches;       /* nodes: vmwatch; readers: lookups */
	struct mn__chain listeners;     /* oldest first */
	_Atomic(struct vm_index *) index;
	struct vm_index *retired;       /* core lock; freed after a grace */
} vm;

/* Nesting of notifications on this thread (a callback that unmaps).
   Initial-exec TLS: safe in signal context. */
static __thread unsigned int tls_depth __attribute__((tls_model("initial-exec")));

uint64_t mn__page_size(void)
{
	/* Atomic: two threads' first calls (two mn_vm_watch() at once) may
	   both store it; the value is the same, relaxed order suffices. */
	static _Atomic uint64_t ps;
	uint64_t v = atomic_load_explicit(&ps, memory_order_relaxed);

	if (!v) {
		v = (uint64_t)sysconf(_SC_PAGESIZE);
		atomic_store_explicit(&ps, v, memory_order_relaxed);
	}
	return v;
}

const char *mn_vm_event_name(enum mn_vm_kind kind)
{
	switch (kind) {
	case MN_VM_UNMAP: return "vm.unmap";
	case MN_VM_MOVE: return "vm.move";
	case MN_VM_DISCARD: return "vm.discard";
	case MN_VM_PROTECT: return "vm.protect";
	case MN_VM_LOST: return "vm.lost";
	default: return "vm.unknown";
	}
}

/* --- dispatched subscriptions (MN_VM_DISPATCH) -------------------------------
 *
 * A dispatched watch or listener is told on a delivery thread (thread
 * context), never in the hooked thread or a signal handler: the hook
 * copies the event into the subscription's ring and wakes the dispatcher;
 * the subscription's delivery lane drains the ring in order.
 *
 * The ring is a fixed array allocated at subscription (RING_SIZE events),
 * a bounded multi-producer queue (Vyukov's): a producer claims a slot
 * with one compare-and-swap on head, copies the event and publishes it by
 * storing the slot's sequence number.  Producers take no lock, allocate
 * nothing and make no system call but the eventfd write(2) of
 * mn__dispatch_wake_async(): async-signal-safe, so it runs from a hook in
 * a signal handler too.  A producer interrupted between its claim and its
 * publication (by a signal handler that pushes too) only makes the
 * consumer stop at that slot until it is published; the producer's own
 * wakeup brings the consumer back.  When the ring is full the event is
 * dropped and counted (here and in mn_stats events_lost); the lane reports
 * the count to the subscriber with an MN_VM_LOST event after the events
 * that preceded the loss.
 */
#define RING_SIZE 256u /* a power of two */

struct vmring {
	_Atomic uint64_t head;      /* next position to claim */
	uint64_t tail;              /* next to read: its lane only */
	_Atomic uint64_t lost;      /* dropped, the ring being full */
	uint64_t lost_told;         /* its lane only */
	_Atomic int pending;        /* pushed since the lane last drained */
	struct {
		_Atomic uint64_t seq;   /* pos: free for pos; pos + 1: holds pos */
		struct mn_vm_event ev;
	} slot[RING_SIZE];
};

/* Some ring has something the dispatcher has not handed to its lane. */
static _Atomic int rings_pending;

static struct vmring *ring_new(void)
{
	struct vmring *r = calloc(1, sizeof(*r));

	for (uint64_t i = 0; r && i < RING_SIZE; i++)
		atomic_init(&r->slot[i].seq, i);
	return r;
}

/* Async-signal-safe (see above). */
static void ring_push(struct vmring *r, const struct mn_vm_event *ev)
{
	uint64_t pos = atomic_load_explicit(&r->head, memory_order_relaxed);

	for (;;) {
		uint64_t seq = atomic_load_explicit(&r->slot[pos % RING_SIZE].seq,
						    memory_order_acquire);
		int64_t diff = (int64_t)(seq - pos);
		if (diff == 0) {
			if (atomic_compare_exchange_weak(&r->head, &pos, pos + 1))
				break;
		} else if (diff < 0) {
			atomic_fetch_add(&r->lost, 1); /* full */
			mn__count(lost, 1);
			pos = UINT64_MAX;
			break;
		} else {
			pos = atomic_load_explicit(&r->head, memory_order_relaxed);
		}
	}
	if (pos != UINT64_MAX) {
		r->slot[pos % RING_SIZE].ev = *ev;
		atomic_store_explicit(&r->slot[pos % RING_SIZE].seq, pos + 1,
				      memory_order_release);
	}
	atomic_store(&r->pending, 1);
	if (!atomic_exchange(&rings_pending, 1))
		mn__dispatch_wake_async();
}

/* Its lane, on a delivery thread: every published event in order, then
   the losses since the last report. */
static void ring_drain(struct vmring *r, mn_vm_cb cb, void *ctx)
{
	struct mn_vm_event ev;
	uint64_t lost;

	atomic_store(&r->pending, 0);
	for (;;) {
		uint64_t pos = r->tail;
		if (atomic_load_explicit(&r->slot[pos % RING_SIZE].seq,
					 memory_order_acquire) != pos + 1)
			break;
		ev = r->slot[pos % RING_SIZE].ev;
		atomic_store_explicit(&r->slot[pos % RING_SIZE].seq,
				      pos + RING_SIZE, memory_order_release);
		r->tail = pos + 1;
		cb(&ev, ctx);
		mn__count(delivered, 1);
	}
	lost = atomic_load(&r->lost);
	if (lost > r->lost_told) {
		memset(&ev, 0, sizeof(ev));
		ev.sz = sizeof(ev);
		ev.kind = MN_VM_LOST;
		ev.prot = -1;
		ev.lost = lost - r->lost_told;
		r->lost_told = lost;
		cb(&ev, ctx);
		mn__count(delivered, 1);
	}
}

/* --- the lookup (signal-safe) ---------------------------------------------- */

static void deliver_watches(struct mn_vm_event *ev)
{
	struct mn__chain_reader rd;
	const struct vm_index *idx;
	uint64_t lo = ev->address, hi = ev->address + ev->length;
	const uint64_t call_addr = ev->address, call_len = ev->length;

	mn__chain_walk_begin(&vm.watches, &rd);
	idx = atomic_load_explicit(&vm.index, memory_order_acquire);
	if (idx && idx->n) {
		/* First entry with start >= hi. */
		size_t a = 0, b = idx->n;
		while (a < b) {
			size_t mid = a + (b - a) / 2;
			if (idx->e[mid].start < hi)
				a = mid + 1;
			else
				b = mid;
		}
		for (size_t i = a; i-- > 0;) {
			const struct idx_entry *e = &idx->e[i];
			if (e->max_end <= lo)
				break; /* nothing at or before i reaches lo */
			if (e->end <= lo)
				continue;
			if (atomic_load_explicit(&e->w->sub.node.dead,
						 memory_order_acquire))
				continue;
			if (ev->tid == -1)
				ev->tid = (int)syscall(SYS_gettid);
			ev->address = MN__MAX(e->start, call_addr);
			ev->length = MN__MIN(e->end, hi) - ev->address;
			ev->watch_address = e->start;
			ev->watch_length = e->end - e->start;
			/* An unmap or a move a hook reports: take the range out
			   of userfaultfd first, so the kernel sends no late copy
			   (a discard's copy is dropped per call by the reader:
			   mn__vm_inflight_match). */
			if (!ev->late && e->w->uffd &&
			    (ev->kind == MN_VM_UNMAP || ev->kind == MN_VM_MOVE))
				mn__uffd_forget(ev->address, ev->length);
			if (e->w->ring) {
				ring_push(e->w->ring, ev);
				continue;
			}
			e->w->cb(ev, e->w->ctx);
			mn__count(delivered, 1);
		}
	}
	mn__chain_walk_end(&rd);
	ev->address = call_addr;
	ev->length = call_len;
	ev->watch_address = ev->watch_length = 0;
}


static void deliver_listeners(struct mn_vm_event *ev)
{
	struct mn__chain_reader rd;
	struct mn__chain_node *n;

	mn__chain_walk_begin(&vm.listeners, &rd);
	while ((n = mn__chain_walk_next(&rd))) {
		struct vmlistener *l = mn__container_of(n, struct vmlistener, sub.node);
		if (ev->tid == -1)
			ev->tid = (int)syscall(SYS_gettid);
		if (l->ring) {
			ring_push(l->ring, ev);
			continue;
		}
		l->cb(ev, l->ctx);
		mn__count(delivered, 1);
	}
	mn__chain_walk_end(&rd);
}

/* Calls the hooks reported and that are still running, for the
   userfaultfd reader's per-call de-duplication.  A slot is claimed with
   one compare-and-swap; when all are busy the call is not recorded and its
   late copy is delivered too (a duplicate, never a loss). */
#define INFLIGHT 64
static struct {
	_Atomic int kind;      /* 0: free */
	_Atomic uint64_t lo, hi;
} inflight[INFLIGHT];

int mn__vm_inflight_begin(enum mn_vm_kind kind, uint64_t lo, uint64_t hi)
{
	for (int i = 0; i < INFLIGHT; i++) {
		int free_ = 0;
		if (atomic_load_explicit(&inflight[i].kind, memory_order_relaxed))
			continue;
		if (!atomic_compare_exchange_strong(&inflight[i].kind, &free_, -1))
			continue;
		atomic_store(&inflight[i].lo, lo);
		atomic_store(&inflight[i].hi, hi);
		atomic_store_explicit(&inflight[i].kind, (int)kind, memory_order_release);
		return i;
	}
	return -1;
}

void mn__vm_inflight_end(int slot)
{
	if (slot < 0)
		return;
	/* The call's copy may have been read and not matched yet. */
	mn__uffd_reader_sync();
	atomic_store_explicit(&inflight[slot].kind, 0, memory_order_release);
}

bool mn__vm_inflight_match(enum mn_vm_kind kind, uint64_t lo, uint64_t hi)
{
	for (int i = 0; i < INFLIGHT; i++) {
		if (atomic_load_explicit(&inflight[i].kind, memory_order_acquire) ==
			    (int)kind &&
		    atomic_load(&inflight[i].lo) <= lo && atomic_load(&inflight[i].hi) >= hi)
			return true;
	}
	return false;
}

void mn__vm_notify(struct mn_vm_event *ev)
{
	int saved_errno;

	if (!atomic_load_explicit(&mn__vm_active, memory_order_acquire) ||
	    ev->length == 0)
		return;
	if (tls_depth >= 2) {
		/* A callback's call's callback's call: not reported. */
		mn__count(lost, 1);
		return;
	}
	saved_errno = errno;
	tls_depth++;
	ev->sz = sizeof(*ev);
	ev->via = MN_VM_VIA_HOOK;
	ev->late = 0;
	ev->tid = -1; /* filled in (one system call) only if someone is told */
	deliver_listeners(ev);
	deliver_watches(ev);
	tls_depth--;
	errno = saved_errno;
}

void mn__vm_notify_late(struct mn_vm_event *ev)
{
	ev->sz = sizeof(*ev);
	ev->via = MN_VM_VIA_USERFAULTFD;
	ev->late = 1;
	deliver_watches(ev);
	mn__chain_reclaim(&vm.watches);
}

/* --- dispatched subscriptions: thread context ------------------------------ */

static void watch_run(struct mn__lane *l)
{
	struct vmwatch *w = mn__container_of(l, struct vmwatch, sub.lane);

	ring_drain(w->ring, w->cb, w->ctx);
}

static void listener_run(struct mn__lane *l)
{
	struct vmlistener *li = mn__container_of(l, struct vmlistener, sub.lane);

	ring_drain(li->ring, li->cb, li->ctx);
}

static void ready_pending(struct mn__chain *c)
{
	struct mn__chain_reader rd;
	struct mn__chain_node *n;

	mn__chain_walk_begin(c, &rd);
	while ((n = mn__chain_walk_next(&rd))) {
		mn_sub *sub = mn__container_of(n, mn_sub, node);
		/* Both kinds start with their mn_sub; the ring follows cb. */
		struct vmring *r = c == &vm.watches
			? mn__container_of(sub, struct vmwatch, sub)->ring
			: mn__container_of(sub, struct vmlistener, sub)->ring;
		if (!r || !atomic_load(&r->pending))
			continue;
		mn__lane_lock();
		mn__lane_ready(&sub->lane);
		mn__lane_unlock();
	}
	mn__chain_walk_end(&rd);
}

/* The dispatcher, after a signal-safe wakeup: hand each ring that has
   something to its lane. */
static void rings_hook_fn(void)
{
	if (!atomic_exchange(&rings_pending, 0))
		return;
	ready_pending(&vm.listeners);
	ready_pending(&vm.watches);
}

static struct mn__async_hook rings_hook = { .fn = rings_hook_fn };

/* --- writers (core lock) ----------------------------------------------------- */

/*
 * A fork child: its watched ranges are not registered with any
 * userfaultfd (the parent's descriptor was dropped at fork).  After the
 * core's rebuild, with no lock held, make the child's own and register
 * them there.
 */
static void fork_after(void)
{
	const struct vm_index *idx;
	bool any = false;

	mn__lock();
	idx = atomic_load(&vm.index);
	for (size_t i = 0; idx && i < idx->n; i++)
		any |= idx->e[i].w->uffd;
	mn__unlock();
	if (!any || mn__uffd_prepare() != 0)
		return;
	mn__dispatch_start();
	mn__lock();
	idx = atomic_load(&vm.index);
	for (size_t i = 0; idx && i < idx->n; i++) {
		struct vmwatch *w = idx->e[i].w;
		if (w->uffd && mn__dispatch_ensure() == 0)
			w->uffd = mn__uffd_register(w->start, w->end - w->start) == 0;
	}
	mn__unlock();
}

static struct mn__fork_hook fork_hook = { .after = fork_after };

static int setup(void)
{
	if (vm.ready)
		return 0;
	mn__chain_init(&vm.watches, MN__CHAIN_OLDEST_FIRST);
	mn__chain_init(&vm.listeners, MN__CHAIN_OLDEST_FIRST);
	mn__fork_hook_register(&fork_hook);
	mn__async_hook_register(&rings_hook);
	vm.ready = true;
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct idx_entry *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Publish an index of the watches in the chain, less @drop, plus @add.
   The old index goes on the retired list. */
static int rebuild_index(struct vmwatch *add, struct vmwatch *drop)
{
	struct vm_index *old = atomic_load(&vm.index), *idx;
	size_t n = (old ? old->n : 0) + (add ? 1 : 0), k = 0;
	uint64_t max_end = 0;

	idx = malloc(sizeof(*idx) + (n ? n : 1) * sizeof(idx->e[0]));
	if (!idx)
		return -ENOMEM;
	for (size_t i = 0; old && i < old->n; i++)
		if (old->e[i].w != drop)
			idx->e[k++] = old->e[i];
	if (add)
		idx->e[k++] = (struct idx_entry){ add->start, add->end, 0, add };
	idx->n = k;
	qsort(idx->e, k, sizeof(idx->e[0]), cmp_entry);
	for (size_t i = 0; i < k; i++) {
		max_end = MN__MAX(max_end, idx->e[i].end);
		idx->e[i].max_end = max_end;
	}
	idx->retired_next = NULL;
	atomic_store_explicit(&vm.index, idx, memory_order_release);
	if (old) {
		old->retired_next = vm.retired;
		vm.retired = old;
	}
	return 0;
}

/* Free retired indexes after a grace period: without the core lock, and
   not from inside a lookup. */
static void reclaim_indexes(void)
{
	struct vm_index *list;

	if (mn__chain_in_walk(&vm.watches))
		return;
	mn__lock();
	list = vm.retired;
	vm.retired = NULL;
	mn__unlock();
	if (!list)
		return;
	mn__chain_synchronize(&vm.watches);
	while (list) {
		struct vm_index *next = list->retired_next;
		free(list);
		list = next;
	}
}

static void update_active(void)
{
	atomic_store(&mn__vm_active,
		     mn__chain_count(&vm.watches) + mn__chain_count(&vm.listeners) > 0);
}

static void watch_release(struct mn__chain_node *n)
{
	struct vmwatch *w = mn__container_of(n, struct vmwatch, sub.node);

	free(w->ring);
	free(w);
}

static struct mn__chain *watch_unlink(mn_sub *sub, struct mn__chain_removal *rm)
{
	struct vmwatch *w = mn__container_of(sub, struct vmwatch, sub);

	/* Drop it from the index first (a failed rebuild leaves it there,
	   dead: lookups skip dead watches). */
	rebuild_index(NULL, w);
	if (w->uffd)
		mn__uffd_unregister(w->start, w->end - w->start);
	mn__chain_unlink(&vm.watches, &w->sub.node, rm);
	update_active();
	return &vm.watches;
}

static void watch_after(struct mn__chain *chain)
{
	(void)chain;
	reclaim_indexes();
}

static const struct mn__sub_ops watch_ops = {
	.kind = "vm-watch",
	.unlink = watch_unlink,
	.after = watch_after,
};

int mn_vm_watch(const void *addr, size_t len, unsigned int flags, mn_vm_cb cb,
		void *ctx, mn_sub **out)
{
	uint64_t ps = mn__page_size();
	uint64_t lo = (uint64_t)(uintptr_t)addr;
	struct mn__chain_removal rm;
	struct vmwatch *w;
	int err;

	mn__check(out, -EINVAL);
	*out = NULL;
	mn__check(cb && len > 0 && lo + len > lo &&
		  !(flags & ~(MN_VM_NO_USERFAULTFD | MN_VM_DISPATCH)),
		  -EINVAL);
	mn__check(lo + len <= UINT64_MAX - ps, -EINVAL);
	mn__check_unlocked();
	mn__enter();
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->start = lo & ~(ps - 1);
	w->end = (lo + len + ps - 1) & ~(ps - 1);
	w->flags = flags;
	w->cb = cb;
	w->ctx = ctx;
	w->sub.node.release = watch_release;
	if ((flags & MN_VM_DISPATCH) && !(w->ring = ring_new())) {
		free(w);
		return -ENOMEM;
	}
	if (w->ring) {
		w->sub.lane.run = watch_run;
		err = mn__dispatch_start(); /* no lock held: its thread */
		if (err) {
			watch_release(&w->sub.node);
			return err;
		}
	}
	/* With no lock held: the entry redirection (it calls dlopen and
	   changes code), the userfaultfd reader and the dispatcher's thread. */
	mn__vm_hooks_install();
	if (!(flags & MN_VM_NO_USERFAULTFD) && mn__uffd_prepare() == 0)
		mn__dispatch_start();

	mn__lock();
	setup();
	err = mn__chain_add(&vm.watches, &w->sub.node, &rm);
	if (!err) {
		err = rebuild_index(w, NULL);
		if (err) {
			struct mn__chain_removal rm2;
			mn__chain_unlink(&vm.watches, &w->sub.node, &rm2);
			mn__chain_defer(&vm.watches, &rm2);
			mn__chain_defer(&vm.watches, &rm);
			mn__unlock();
			return err; /* w is freed by the chain's reclaim */
		}
	}
	if (err) {
		mn__unlock();
		watch_release(&w->sub.node);
		return err;
	}
	if (!(flags & MN_VM_NO_USERFAULTFD) && mn__dispatch_ensure() == 0)
		w->uffd = mn__uffd_register(w->start, w->end - w->start) == 0;
	mn__sub_register(&w->sub, &watch_ops);
	update_active();
	mn__unlock();
	mn__chain_finish_remove(&vm.watches, &rm);
	reclaim_indexes();
	if (w->uffd || w->ring)
		mn__dispatch_start(); /* a concurrent mn_shutdown() stopped it */
	*out = &w->sub;
	return 0;
}

static void listener_release(struct mn__chain_node *n)
{
	struct vmlistener *l = mn__container_of(n, struct vmlistener, sub.node);

	free(l->ring);
	free(l);
}

static struct mn__chain *listener_unlink(mn_sub *sub, struct mn__chain_removal *rm)
{
	mn__chain_unlink(&vm.listeners, &sub->node, rm);
	update_active();
	return &vm.listeners;
}

static const struct mn__sub_ops listener_ops = {
	.kind = "vm-listener",
	.unlink = listener_unlink,
};

int mn_vm_listen(unsigned int flags, mn_vm_cb cb, void *ctx, mn_sub **out)
{
	struct mn__chain_removal rm;
	struct vmlistener *l;
	int err;

	mn__check(out, -EINVAL);
	*out = NULL;
	mn__check(cb && !(flags & ~MN_VM_DISPATCH), -EINVAL);
	mn__check_unlocked();
	mn__enter();
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->cb = cb;
	l->ctx = ctx;
	l->sub.node.release = listener_release;
	if ((flags & MN_VM_DISPATCH) && !(l->ring = ring_new())) {
		free(l);
		return -ENOMEM;
	}
	if (l->ring) {
		l->sub.lane.run = listener_run;
		err = mn__dispatch_start(); /* no lock held: its thread */
		if (err) {
			listener_release(&l->sub.node);
			return err;
		}
	}
	mn__vm_hooks_install(); /* no lock held: dlopen, code changes */
	mn__lock();
	setup();
	err = mn__chain_add(&vm.listeners, &l->sub.node, &rm);
	if (err) {
		mn__unlock();
		listener_release(&l->sub.node);
		return err;
	}
	mn__sub_register(&l->sub, &listener_ops);
	update_active();
	mn__unlock();
	mn__chain_finish_remove(&vm.listeners, &rm);
	if (l->ring)
		mn__dispatch_start(); /* a concurrent mn_shutdown() stopped it */
	*out = &l->sub;
	return 0;
}
