/* SPDX-License-Identifier: MIT */
/*
 * Address-range invalidation (AddSecureMemoryCacheCallback): watches,
 * listeners, and the lock-free lookup every hooked call makes.
 *
 * The watch index (index.c) is a copy-on-write B+tree over the watched
 * ranges: adding or removing a watch copies one root-to-leaf path and
 * publishes it with one atomic store, O(log n); a lookup for [lo, hi)
 * visits only subtrees whose largest end is above lo.  Replaced nodes and
 * removed watches are retired and freed by a later writer once the index's
 * reader counters show no lookup can still hold them: nobody waits for a
 * grace period.
 *
 * Everything reachable from mn__vm_notify() is async-signal-safe: atomics,
 * the chain walk, syscall(SYS_gettid), the callbacks.
 */
#include <sched.h>
#include <stdlib.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../core/core.h"
#include "index.h"
#include "vmrange.h"

_Atomic int mn__vm_active;
_Atomic unsigned long mn__vm_map_seq;

struct vmwatch {
	struct mn_sub sub;     /* registry; sub.node.dead marks it removed */
	struct mn__idx_retiree ret; /* freed through the index's reclamation */
	uint64_t start, end;   /* page-aligned */
	unsigned int flags;
	bool uffd;             /* registered with userfaultfd */
	bool uffd_whole;       /* ... with its whole mappings */
	bool in_index;         /* core lock: still to be taken out */
	bool after_done;       /* core lock: watch_after() has run */
	bool retired;          /* core lock: handed to the reclamation */
	struct vmwatch *pending_next; /* removal waiting for memory */
	_Atomic int running;   /* invocations of cb under way */
	mn_vm_cb cb;
	void *ctx;
	struct vmring *ring;   /* MN_VM_DISPATCH, else NULL */
	struct vmwatch *ring_prev, *ring_next; /* vm.ring_watches, core lock */
};

struct vmlistener {
	struct mn_sub sub;
	mn_vm_cb cb;
	void *ctx;
	struct vmring *ring;   /* MN_VM_DISPATCH, else NULL */
	bool late;             /* mn__vm_listen_late(): late events too */
};

static struct {
	bool ready;                     /* core lock */
	struct mn__chain listeners;     /* oldest first */
	struct mn__idx idx;             /* the watches; writers: core lock */
	size_t n_watches, n_uffd;       /* core lock */
	struct vmwatch *pending;        /* core lock: removals to retry */
	struct mn__idx_retiree *to_free; /* core lock: freed after unlock */
	struct vmwatch *ring_watches;   /* core lock: the MN_VM_DISPATCH ones */
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

struct deliver_ctx {
	struct mn_vm_event *ev;
	uint64_t call_addr, call_len, hi;
};

/* One overlapping watch (signal-safe). */
static bool deliver_one(uint64_t start, uint64_t end, void *owner, void *arg)
{
	struct deliver_ctx *c = arg;
	struct mn_vm_event *ev = c->ev;
	struct vmwatch *w = owner;

	/* Count the invocation, then look at dead: an unsubscription marks
	   dead, then waits for running to drop (seq_cst on both sides: one
	   of the two sees the other). */
	atomic_fetch_add(&w->running, 1);
	if (atomic_load(&w->sub.node.dead)) {
		atomic_fetch_sub(&w->running, 1);
		return true;
	}
	if (ev->tid == -1)
		ev->tid = (int)syscall(SYS_gettid);
	ev->address = MN__MAX(start, c->call_addr);
	ev->length = MN__MIN(end, c->hi) - ev->address;
	ev->watch_address = start;
	ev->watch_length = end - start;
	if (w->ring) {
		ring_push(w->ring, ev); /* told on its lane, in thread context */
	} else {
		w->cb(ev, w->ctx);
		mn__count(delivered, 1);
	}
	atomic_fetch_sub(&w->running, 1);
	return true;
}

static void deliver_watches(struct mn_vm_event *ev)
{
	struct deliver_ctx c = { ev, ev->address, ev->length,
				 ev->address + ev->length };
	unsigned int slot;

	if (mn__idx_empty(&vm.idx))
		return;
	slot = mn__idx_read_begin(&vm.idx);

	mn__idx_query(&vm.idx, c.call_addr, c.hi, deliver_one, &c);
	mn__idx_read_end(&vm.idx, slot);
	ev->address = c.call_addr;
	ev->length = c.call_len;
	ev->watch_address = ev->watch_length = 0;
}

static void deliver_listeners(struct mn_vm_event *ev)
{
	struct mn__chain_reader rd;
	struct mn__chain_node *n;

	mn__chain_walk_begin(&vm.listeners, &rd);
	while ((n = mn__chain_walk_next(&rd))) {
		struct vmlistener *l = mn__container_of(n, struct vmlistener, sub.node);
		/* A late listener (the range cache) reads no tid: it is not
		   worth a system call on every hooked call. */
		if (ev->tid == -1 && !l->late)
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

static int inflight_begin(enum mn_vm_kind kind, uint64_t lo, uint64_t hi)
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

static void inflight_end(int slot)
{
	if (slot < 0)
		return;
	/* The call's copy may have been read and not matched yet. */
	mn__uffd_reader_sync();
	atomic_store_explicit(&inflight[slot].kind, 0, memory_order_release);
}

void mn__vm_discard_begin(uint64_t lo, uint64_t hi, struct mn__vm_discard *d)
{
	d->lo = lo;
	d->hi = hi;
	d->held = mn__uffd_covered(lo, hi);
	if (d->held)
		mn__uffd_forget(lo, hi - lo);
	d->slot = inflight_begin(MN_VM_DISCARD, lo, hi);
}

void mn__vm_discard_end(struct mn__vm_discard *d)
{
	if (d->held)
		mn__uffd_rehold(d->lo, d->hi);
	inflight_end(d->slot);
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
	bool unmaps = (ev->kind == MN_VM_UNMAP || ev->kind == MN_VM_MOVE) &&
		      mn__uffd_in_use();
	if (unmaps)
		atomic_fetch_add_explicit(&mn__vm_map_seq, 1, memory_order_relaxed);
	deliver_listeners(ev);
	deliver_watches(ev);
	/* An unmap or a move of registered memory, reported before its
	   call: take the call's range out of userfaultfd, so that the
	   kernel sends no late copy and the call does not wait for the
	   reader.  Whatever the range holds (a watch, a cached region, or a
	   neighbour in a mapping registered whole). */
	if (unmaps && mn__uffd_covered(ev->address, ev->address + ev->length))
		mn__uffd_forget(ev->address, ev->length);
	tls_depth--;
	errno = saved_errno;
}

/* The listeners made by mn__vm_listen_late(): told the late events too
   (thread context: the dispatcher). */
static void deliver_late_listeners(struct mn_vm_event *ev)
{
	struct mn__chain_reader rd;
	struct mn__chain_node *n;

	mn__chain_walk_begin(&vm.listeners, &rd);
	while ((n = mn__chain_walk_next(&rd))) {
		struct vmlistener *l = mn__container_of(n, struct vmlistener, sub.node);
		if (!l->late)
			continue;
		l->cb(ev, l->ctx);
		mn__count(delivered, 1);
	}
	mn__chain_walk_end(&rd);
}

void mn__vm_notify_late(struct mn_vm_event *ev)
{
	ev->sz = sizeof(*ev);
	ev->via = MN_VM_VIA_USERFAULTFD;
	ev->late = 1;
	if (ev->kind == MN_VM_UNMAP || ev->kind == MN_VM_MOVE)
		atomic_fetch_add_explicit(&mn__vm_map_seq, 1, memory_order_relaxed);
	deliver_watches(ev);
	deliver_late_listeners(ev);
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

static void ready_lane(mn_sub *sub, struct vmring *r)
{
	if (!r || !atomic_load(&r->pending))
		return;
	mn__lane_lock();
	mn__lane_ready(&sub->lane);
	mn__lane_unlock();
}

static void ready_listeners(void)
{
	struct mn__chain_reader rd;
	struct mn__chain_node *n;

	mn__chain_walk_begin(&vm.listeners, &rd);
	while ((n = mn__chain_walk_next(&rd))) {
		struct vmlistener *l = mn__container_of(n, struct vmlistener, sub.node);
		ready_lane(&l->sub, l->ring);
	}
	mn__chain_walk_end(&rd);
}

/* Watches are in the index, not a chain: the dispatched ones are also on
   a list the core lock guards (a watch leaves it, under that lock, before
   it can be freed).  The lane lock ranks above the core lock. */
static void ready_watches(void)
{
	mn__lock();
	for (struct vmwatch *w = vm.ring_watches; w; w = w->ring_next)
		if (!atomic_load(&w->sub.node.dead))
			ready_lane(&w->sub, w->ring);
	mn__unlock();
}

/* The dispatcher, after a signal-safe wakeup: hand each ring that has
   something to its lane. */
static void rings_hook_fn(void)
{
	if (!atomic_exchange(&rings_pending, 0))
		return;
	ready_listeners();
	ready_watches();
}

static struct mn__async_hook rings_hook = { .fn = rings_hook_fn };

/* --- writers (core lock) ----------------------------------------------------- */

static void fork_count(void *owner, void *arg)
{
	*(bool *)arg |= ((struct vmwatch *)owner)->uffd;
}

static void fork_register(void *owner, void *arg)
{
	struct vmwatch *w = owner;

	(void)arg;
	if (w->uffd && mn__dispatch_ensure() == 0)
		w->uffd = mn__uffd_register(w->start, w->end - w->start,
					    &w->uffd_whole) == 0;
}

/*
 * A fork child: its watched ranges are not registered with any
 * userfaultfd (the parent's descriptor was dropped at fork).  After the
 * core's rebuild, with no lock held, make the child's own and register
 * them there.
 */
static void fork_after(void)
{
	bool any = false;

	mn__lock();
	mn__idx_each(&vm.idx, fork_count, &any);
	mn__unlock();
	if (!any || mn__uffd_prepare() != 0)
		return;
	mn__dispatch_start();
	mn__lock();
	mn__idx_each(&vm.idx, fork_register, NULL);
	mn__unlock();
}

/* Core lock held, in the child: lookups of threads the child does not
   have left their counts behind. */
static void fork_rebuild(void)
{
	mn__idx_atfork_child(&vm.idx);
}

static struct mn__fork_hook fork_hook = { .rebuild = fork_rebuild,
					  .after = fork_after };

static int setup(void)
{
	if (vm.ready)
		return 0;
	mn__chain_init(&vm.listeners, MN__CHAIN_OLDEST_FIRST);
	mn__fork_hook_register(&fork_hook);
	mn__async_hook_register(&rings_hook);
	vm.ready = true;
	return 0;
}

static void update_active(void)
{
	atomic_store(&mn__vm_active,
		     vm.n_watches + mn__chain_count(&vm.listeners) > 0);
}

static void watch_release(struct mn__chain_node *n)
{
	struct vmwatch *w = mn__container_of(n, struct vmwatch, sub.node);

	free(w->ring);
	free(w);
}

/* The index's reclamation: no lookup can reach the watch any more. */
static void watch_free(struct mn__idx_retiree *r)
{
	struct vmwatch *w = mn__container_of(r, struct vmwatch, ret);

	w->sub.node.release(&w->sub.node); /* the core's, then watch_release */
}

/* Core lock: take @w out of the index, or keep it (dead: lookups skip it)
   for the next writer when the index has no memory for the change. */
static void take_out(struct vmwatch *w)
{
	if (mn__idx_remove(&vm.idx, w->start, w) == -ENOMEM) {
		w->pending_next = vm.pending;
		vm.pending = w;
		return;
	}
	w->in_index = false;
}

/* Core lock: once out of the index and past watch_after(), the watch goes
   to the reclamation (freed when no lookup can reach it). */
static void maybe_retire(struct vmwatch *w)
{
	if (!w->in_index && w->after_done && !w->retired) {
		w->retired = true;
		mn__idx_retire(&vm.idx, &w->ret);
	}
}

/* Core lock: retry removals that lacked memory, reclaim what no lookup
   can see any more (freed after the unlock: mn__vm_reclaim_unlocked). */
static void writer_tail(void)
{
	struct vmwatch *list = vm.pending;

	vm.pending = NULL;
	while (list) {
		struct vmwatch *w = list;
		list = w->pending_next;
		take_out(w);
		maybe_retire(w);
	}
	mn__idx_poll(&vm.idx, &vm.to_free);
}

static void reclaim_unlocked(void)
{
	struct mn__idx_retiree *list;

	mn__lock();
	list = vm.to_free;
	vm.to_free = NULL;
	mn__unlock();
	mn__idx_free_list(list);
}

static void uffd_drop(struct vmwatch *w)
{
	if (!w->uffd)
		return;
	if (!w->uffd_whole)
		mn__uffd_unregister(w->start, w->end - w->start);
	if (--vm.n_uffd == 0)
		mn__uffd_release_all();
}

/* The watch watch_unlink() took out, for watch_after() on the same
   thread (mn_unsubscribe() calls one, then the other). */
static __thread struct vmwatch *tls_unlinked;

static struct mn__chain *watch_unlink(mn_sub *sub, struct mn__chain_removal *rm)
{
	struct vmwatch *w = mn__container_of(sub, struct vmwatch, sub);

	memset(rm, 0, sizeof(*rm)); /* nothing for the chain's grace period */
	atomic_store(&w->sub.node.dead, 1);
	if (w->ring) {
		if (w->ring_prev)
			w->ring_prev->ring_next = w->ring_next;
		else
			vm.ring_watches = w->ring_next;
		if (w->ring_next)
			w->ring_next->ring_prev = w->ring_prev;
	}
	take_out(w);
	uffd_drop(w);
	vm.n_watches--;
	update_active();
	writer_tail();
	tls_unlinked = w; /* retired by watch_after: it may wait on it */
	return &vm.listeners;
}

/*
 * Without the lock: mn_unsubscribe() returns once the callback is not
 * running anywhere — except from inside a callback, where waiting could
 * wait for itself.  The wait is for this watch's invocations only, never
 * a grace period.  Then the watch is retired: freed once no lookup can
 * still reach it.
 */
static void watch_after(struct mn__chain *chain)
{
	struct vmwatch *w = tls_unlinked;

	(void)chain;
	tls_unlinked = NULL;
	if (w && !tls_depth && !mn__chain_in_any_walk() && !mn__in_signal())
		while (atomic_load(&w->running))
			sched_yield();
	mn__lock();
	if (w) {
		w->after_done = true;
		maybe_retire(w); /* or writer_tail, once out of the index */
	}
	writer_tail();
	mn__unlock();
	reclaim_unlocked();
}

static const struct mn__sub_ops watch_ops = {
	.kind = "vm-watch",
	.unlink = watch_unlink,
	.after = watch_after,
};

/* Core lock: publish @w (userfaultfd first, then the index). */
static int watch_add_locked(struct vmwatch *w)
{
	int err;

	setup();
	if (!(w->flags & MN_VM_NO_USERFAULTFD) && mn__dispatch_ensure() == 0) {
		w->uffd = mn__uffd_register(w->start, w->end - w->start,
					    &w->uffd_whole) == 0;
		vm.n_uffd += w->uffd;
	}
	err = mn__idx_insert(&vm.idx, w->start, w->end, w);
	if (err) {
		uffd_drop(w);
		return err;
	}
	w->in_index = true;
	if (w->ring) {
		w->ring_next = vm.ring_watches;
		if (w->ring_next)
			w->ring_next->ring_prev = w;
		vm.ring_watches = w;
	}
	mn__sub_register(&w->sub, &watch_ops);
	vm.n_watches++;
	update_active();
	writer_tail();
	return 0;
}

int mn_vm_watch(const void *addr, size_t len, unsigned int flags, mn_vm_cb cb,
		void *ctx, mn_sub **out)
{
	uint64_t ps = mn__page_size();
	uint64_t lo = (uint64_t)(uintptr_t)addr;
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
	w->ret.free_fn = watch_free;
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
	err = watch_add_locked(w);
	mn__unlock();
	if (err) {
		watch_release(&w->sub.node);
		return err;
	}
	reclaim_unlocked();
	if (w->uffd || w->ring)
		mn__dispatch_start(); /* a concurrent mn_shutdown() stopped it */
	*out = &w->sub;
	return 0;
}

/* The userfaultfd counters of the watches, for the range cache's stats. */
void mn__vm_uffd_counts(struct mn__uffd_counts *out)
{
	mn__lock();
	mn__uffd_counts(out);
	mn__unlock();
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

static struct mn__chain *listener_attach(mn_sub *sub, void *arg, int *err)
{
	(void)sub;
	(void)arg;
	*err = 0;
	setup();
	return &vm.listeners;
}

static void listener_joined(mn_sub *sub, void *arg)
{
	(void)sub;
	(void)arg;
	update_active();
}

static const struct mn__sub_spec listener_spec = {
	.ops = &listener_ops, .attach = listener_attach,
	.joined = listener_joined,
};

int mn_vm_listen(unsigned int flags, mn_vm_cb cb, void *ctx, mn_sub **out)
{
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
	if ((err = mn__sub_add(&l->sub, &listener_spec)))
		return err;
	if (l->ring)
		mn__dispatch_start(); /* a concurrent mn_shutdown() stopped it */
	*out = &l->sub;
	return 0;
}

/* --- for a cache with its own index (src/rcache) ------------------------------
 *
 * A late listener is a listener (hook events, oldest first, in the hooked
 * thread) that is also told the late userfaultfd events, and that holds
 * the safety net's whole-mapping registrations while it lives (it counts
 * as one watch using it).  Its owner registers the ranges it cares about
 * with mn__vm_uffd_cover().
 */
static struct mn__chain *late_listener_unlink(mn_sub *sub, struct mn__chain_removal *rm)
{
	mn__chain_unlink(&vm.listeners, &sub->node, rm);
	if (vm.n_uffd && --vm.n_uffd == 0)
		mn__uffd_release_all();
	update_active();
	return &vm.listeners;
}

static const struct mn__sub_ops late_listener_ops = {
	.kind = "vm-listener",
	.unlink = late_listener_unlink,
};

static struct mn__chain *late_listener_attach(mn_sub *sub, void *arg, int *err)
{
	(void)sub;
	(void)arg;
	*err = 0;
	setup();
	vm.n_uffd++;
	return &vm.listeners;
}

static void late_listener_undo(mn_sub *sub, void *arg)
{
	(void)sub;
	(void)arg;
	if (--vm.n_uffd == 0)
		mn__uffd_release_all();
}

static const struct mn__sub_spec late_listener_spec = {
	.ops = &late_listener_ops, .attach = late_listener_attach,
	.undo = late_listener_undo, .joined = listener_joined,
};

int mn__vm_listen_late(mn_vm_cb cb, void *ctx, mn_sub **out)
{
	struct vmlistener *l;
	int err;

	*out = NULL;
	mn__check_unlocked();
	mn__enter();
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->cb = cb;
	l->ctx = ctx;
	l->late = true;
	l->sub.node.release = listener_release;
	mn__vm_hooks_install(); /* no lock held: dlopen, code changes */
	if ((err = mn__sub_add(&l->sub, &late_listener_spec)))
		return err;
	*out = &l->sub;
	return 0;
}

int mn__vm_uffd_cover(uint64_t start, uint64_t len)
{
	bool whole;
	int err;

	if ((err = mn__uffd_prepare()) != 0)
		return err;
	/* Inside the mapping registered last, nothing unmapped since: no
	   lock, no system call (a miss of the range cache). */
	if (mn__uffd_covered_fast(start, len))
		return 0;
	mn__dispatch_start(); /* no lock held: its thread */
	mn__lock();
	err = mn__dispatch_ensure();
	if (!err)
		err = mn__uffd_register(start, len, &whole);
	mn__unlock();
	return err;
}
