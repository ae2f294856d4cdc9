/* SPDX-License-Identifier: MIT */
/*
 * The core every event source shares: the core lock, the subscription
 * registry, fork handling and the dispatcher.
 *
 * Locking: one core lock (mn__lock) serializes every writer — subscription
 * registry, chain writers, source registries, the dispatcher's work list.
 * It is never held while a callback runs or while waiting for a grace
 * period, so callbacks may call any mn_* function.  It is never taken in
 * signal context.
 */
#ifndef MN_CORE_CORE_H
#define MN_CORE_CORE_H

#include <pthread.h>
#include <stdint.h>

#include "chain.h"
#include "internal.h"

void mn__lock(void);
void mn__unlock(void);
/* True if this thread holds the core lock.  A callback can run while it
   does: memnotify's own allocations under the lock may grow or trim a
   malloc heap, which the range hooks report synchronously. */
bool mn__lock_held(void);
/* Public writers called from such a callback cannot take the lock: they
   fail with -EDEADLK (mn_unsubscribe() takes its deferred path instead). */
#define mn__check_unlocked() mn__check(!mn__lock_held(), -EDEADLK)
/* Hand the program's log sink the lines logged under the core lock;
   mn__unlock() calls it. */
void mn__log_flush(void);

/*
 * Every internal mutex, with its rank in the lock order (see
 * ARCHITECTURE.md, "Locks"): a thread that holds a lock of rank r takes
 * only locks of a higher rank.  fork() takes every registered lock in rank
 * order before the address space is copied and releases them on both
 * sides, so the child never inherits a lock held by a thread it does not
 * have.  Registration is lock-free (a constructor may call it).
 */
/* enum mn__lock_rank and mn__lock_register(): core/faceapi.h. */

/*
 * Once per process, fork-aware and lock-free for the caller: @fn(@arg)
 * runs on the first caller's thread while no memnotify lock is held;
 * concurrent callers wait (futex) until it is done.  A run that a fork()
 * interrupted (its thread is not in the child) is started again by the
 * child's first caller.  A caller on the thread that is running @fn (a
 * recursion) returns at once.  Call it holding no memnotify lock.
 */
struct mn__once {
	_Atomic unsigned int state; /* phase 0 new, 1 running, 2 done;
	                               fork generation above bit 2 */
	_Atomic int owner;          /* tid running it */
};
void mn__once(struct mn__once *o, void (*fn)(void *), void *arg);
bool mn__once_done(const struct mn__once *o);
/* Increases in every fork child (atfork child handler). */
unsigned int mn__fork_generation(void);

/*
 * Every public entry point that touches shared state calls mn__enter()
 * first: after fork() it rebuilds, in the child, what the child lost (the
 * dispatcher thread, the epoll fd, each source's kernel fds).
 */
/* void mn__enter(void): declared in core/faceapi.h. */

/* A source's fork hook: rebuild its kernel objects in the child.  Called
   with the core lock held, once the dispatcher's epoll fd exists again. */
struct mn__fork_hook {
	void (*rebuild)(void);          /* optional */
	/* Optional: after the rebuild, with no lock held (it may start a
	   thread). */
	void (*after)(void);
	struct mn__fork_hook *next;
};
void mn__fork_hook_register(struct mn__fork_hook *h);

/* --- subscriptions -------------------------------------------------------- */

struct mn__sub_ops {
	const char *kind;
	/* Under the core lock: unlink @sub from its chain; return that chain
	   (for the grace period) and fill @rm.  The node's release frees the
	   subscription. */
	struct mn__chain *(*unlink)(mn_sub *sub, struct mn__chain_removal *rm);
	/* Without the lock, after the grace period (or at once when the
	   removal was deferred); the subscription may be freed already: drop
	   what it held in its source (found through @chain). */
	void (*after)(struct mn__chain *chain);
};

/*
 * A delivery lane: one per subscription whose callbacks run in thread
 * context (memory levels, range subscriptions with MN_VM_DISPATCH).  The
 * dispatcher never runs such a callback itself: a source fills the lane's
 * mailbox (its own fields, under mn__lane_lock()) and makes the lane ready;
 * a delivery thread (thread mode) or the mn_dispatch() caller (external
 * mode) runs @run.  One lane runs on one thread at a time, so a subscriber
 * sees its events in order and never concurrently; while it runs, what the
 * source posts for it is merged in its mailbox (the source's rule: the
 * memory source keeps the newest level and counts the changes it folded).
 * A lane whose callback has run for a while no longer holds up the others:
 * the dispatcher starts another delivery thread (see dispatch.c).
 */
struct mn__lane {
	struct mn__lane *next;          /* ready queue, lane lock */
	/* No lock held, on a delivery thread: take what is pending (under
	   mn__lane_lock()) and call the callback. */
	void (*run)(struct mn__lane *l);
	uint64_t ready_usec;            /* monotonic, when queued */
	unsigned int flags;             /* lane lock: MN__LANE_* */
};

struct mn_sub {
	struct mn__chain_node node;      /* in its source's chain */
	const struct mn__sub_ops *ops;
	struct mn_sub *reg_prev, *reg_next; /* registry, under the core lock */
	_Atomic int unsubscribed;        /* claimed by one unsubscription
	                                    (thread or signal handler) */
	void (*release)(struct mn__chain_node *); /* the source's; the node's
	                                    own release waits first for
	                                    signal-handler unsubscriptions */
	struct mn_sub *deferred_next;    /* lock-free stack of those */
	struct mn__lane lane;            /* lane.run NULL: no lane */
};

/* Under the core lock. */
void mn__sub_register(mn_sub *sub, const struct mn__sub_ops *ops);

/*
 * One subscription added the way every source adds one (sd-event's
 * source_new(), the kernel's notifier_chain_register()).  The caller has
 * validated, allocated @sub (its node.release set) and done, with no lock
 * held, what may start a thread or run a probe.  Then, under the core
 * lock: @attach (the source's own part) names the chain to join, the node
 * joins it, the registry gets @sub with @ops, @joined runs; the lock is
 * dropped and the replaced snapshot reclaimed.  If @attach or the join
 * fails, @undo (after a failed join) puts the source back and @sub is
 * released.  Returns 0 or that -errno.  Thread context, no lock held.
 */
struct mn__sub_spec {
	const struct mn__sub_ops *ops;
	/* Core lock: the chain to join, or NULL with *err set. */
	struct mn__chain *(*attach)(mn_sub *sub, void *arg, int *err);
	/* Core lock, optional: the join failed after attach succeeded. */
	void (*undo)(mn_sub *sub, void *arg);
	/* Core lock, optional: joined and registered. */
	void (*joined)(mn_sub *sub, void *arg);
	void *arg;
};
int mn__sub_add(mn_sub *sub, const struct mn__sub_spec *spec);
size_t mn__sub_count(void);

/*
 * Signal context tracking: memnotify's signal handlers bracket their work
 * with these (initial-exec TLS, async-signal-safe), so that mn_unsubscribe()
 * knows to take its lock-free path.
 */
void mn__signal_enter(void);
void mn__signal_exit(void);
bool mn__in_signal(void);
/* Thread context: finish the unsubscriptions made from signal handlers. */
void mn__sub_process_deferred(void);

/* --- dispatcher ----------------------------------------------------------- */

/* A file descriptor the dispatcher watches; @ready runs in thread context. */
struct mn__io {
	int fd;
	void (*ready)(struct mn__io *io, uint32_t events);
};

/* Work to run in thread context after the current batch of events. */
struct mn__work {
	struct mn__work *next;
	void (*fn)(struct mn__work *w);
	bool queued;
	bool anywhere;  /* calls no callback (a teardown): may run on any
	                   thread while nobody dispatches */
};

/* Under the core lock: create the epoll fd (never a thread).  Returns 0 or
   -errno. */
int mn__dispatch_ensure(void);
/* Holding no memnotify lock: the epoll fd and, in thread mode, memnotify's
   thread (created unlocked).  Every subscribe calls it before taking the
   core lock and again after.  Returns 0 or -errno. */
int mn__dispatch_start(void);
/* Run by mn_shutdown() once the dispatcher has stopped, holding no lock:
   a source stops its threads and closes its fds. */
struct mn__shutdown_hook {
	void (*fn)(void);
	struct mn__shutdown_hook *next;
};
/* Under the core lock. */
void mn__shutdown_hook_register(struct mn__shutdown_hook *h);
/* Add or remove an fd (epoll_ctl).  Removal must happen on the dispatcher
   (in a work item) or when it is stopped, so no batch still holds @io. */
int mn__dispatch_add(struct mn__io *io, uint32_t events);
void mn__dispatch_del(struct mn__io *io);
/* Under the core lock: queue @w (once) and wake the dispatcher. */
void mn__dispatch_post(struct mn__work *w);
/* Under the core lock: take @w off the queue if it is queued.  A teardown
   that frees the memory of other work items calls it first: a teardown
   marked anywhere may run before items queued earlier (external mode,
   nobody dispatching), which then must never run. */
void mn__dispatch_cancel(struct mn__work *w);
/*
 * Wake the dispatcher from a signal handler: one write(2) to an eventfd
 * that memnotify never closes (after fork() it is replaced in place with
 * dup3(2)).  Async-signal-safe.  The dispatcher then runs every async hook
 * and finishes deferred unsubscriptions.
 */
void mn__dispatch_wake_async(void);
struct mn__async_hook {
	void (*fn)(void);           /* thread context */
	struct mn__async_hook *next;
};
/* Under the core lock. */
void mn__async_hook_register(struct mn__async_hook *h);

/* Increases each time a new epoll set is made (first use, after
   mn_shutdown(), in a fork child): an fd added under an older generation
   is not watched any more. */
unsigned int mn__dispatch_generation(void);

/* No lock held: in external mode, when nobody is dispatching, run the
   queued work marked anywhere (teardowns) on this thread, so that
   unsubscribing without dispatching frees what it held at once. */
void mn__dispatch_run_detached(void);

/* --- delivery lanes (dispatch.c) ----------------------------------------- */

/* The lane lock (rank LEAF): guards every lane's flags and queue link and
   the mailboxes the sources keep beside them.  Never held while a callback
   runs; never taken in signal context. */
void mn__lane_lock(void);
void mn__lane_unlock(void);
/* Lane lock held: @l has something new.  Queued once; if it is running, it
   runs again when it returns.  Wakes a delivery thread. */
void mn__lane_ready(struct mn__lane *l);
/* Core lock held, at unsubscription: the lane never starts again. */
void mn__lane_close(struct mn__lane *l);
/* No lock held: wait until @l's callback is not running, unless this
   thread may not wait (it runs a callback itself). */
void mn__lane_wait_idle(struct mn__lane *l);
/* From the subscription's release: false if @l is running now (the
   delivery thread then frees the subscription when the callback returns). */
bool mn__lane_release(struct mn__lane *l);

/* True on the thread that is dispatching right now, or running a lane's
   callback (a callback in thread context). */
bool mn__dispatch_on_thread(void);
/* Called by mn__enter() in a fork child, core lock held. */
int mn__dispatch_rebuild_after_fork(void);

#endif /* MN_CORE_CORE_H */
