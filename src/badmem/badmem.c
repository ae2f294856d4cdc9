/* SPDX-License-Identifier: MIT */
/*
 * Bad memory (hwpoison): RegisterBadMemoryNotification on Linux.
 *
 * A node in the SIGBUS chain records every BUS_MCEERR_AO/AR range in a
 * fixed table (signal context: atomics only) and wakes the dispatcher with
 * one write(2); the dispatcher hands new ranges to the subscribers in
 * thread context, each subscriber with its own cursor into the table.
 * Action-required faults are also offered, in signal context on the
 * touching thread, to a chain of AR handlers (newest first).
 * HardwareCorrupted in /proc/meminfo is sampled on a timer for the
 * machine's own bad memory.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "../core/core.h"
#include "../sigchain/sigchain.h"
#include "badmem.h"

#ifndef BUS_MCEERR_AR
#define BUS_MCEERR_AR 4
#endif
#ifndef BUS_MCEERR_AO
#define BUS_MCEERR_AO 5
#endif
#ifndef MADV_HWPOISON
#define MADV_HWPOISON 100
#endif
#ifndef PR_MCE_KILL
#define PR_MCE_KILL 33
#define PR_MCE_KILL_SET 1
#define PR_MCE_KILL_EARLY 1
#endif

#define DEFAULT_SYSTEM_POLL_MS 10000u

struct bm_slot {
	_Atomic int ready;
	struct mn_bad_page page;
};

/* The table: append-only (bad memory stays bad), preallocated. */
static struct bm_slot table[MN__BADMEM_CAPACITY];
static _Atomic unsigned int claimed;
static _Atomic uint64_t lost_total;

struct bmsub {
	struct mn_sub sub;
	mn_badmem_cb cb;
	void *ctx;
	unsigned int flags;
	unsigned int poll_ms;
	/* Its delivery lane's mailbox (lane lock): the machine total when
	   the lane was last made ready. */
	bool hw_valid_post;
	uint64_t hw_bytes_post;
	/* Cursors, touched only by its lane (one thread at a time): a slow
	   subscriber catches up from them, nothing is merged away. */
	unsigned int next;         /* next table index to deliver */
	uint64_t lost_seen;
	uint64_t hw_seen;
	bool hw_first;             /* has seen one HardwareCorrupted sample */
};

struct arsub {
	struct mn_sub sub;
	mn_badmem_ar_fn fn;
	void *ctx;
};

static struct {
	bool ready;                  /* core lock: chains and hooks set up */
	struct mn__chain subs;       /* thread-context subscribers, oldest first */
	struct mn__chain ar;         /* AR handlers, newest first */
	struct mn__async_hook hook;
	struct mn__work kick;
	struct mn__io timer_io;      /* HardwareCorrupted sampling */
	unsigned int timer_ms;       /* armed period, 0 = off */
	unsigned int timer_gen;      /* dispatcher generation it was added in */
	uint64_t hw_bytes;           /* last HardwareCorrupted */
	bool hw_valid;
	/* Early-kill thread: started (mn__once, no lock held) by the first
	   MN_BADMEM_EARLY_KILL subscriber, stopped when the last one leaves;
	   joined by the next start or by mn_shutdown(). */
	struct mn__once early_once;
	int early_err;
	unsigned int early_refs;     /* core lock */
	pthread_t early_thread;
	_Atomic bool early_joinable; /* early_stopped ended, not joined yet */
	pthread_t early_stopped;
	int early_stop;              /* eventfd that ends it, or -1 */
	struct mn__fork_hook fork_hook;
	struct mn__shutdown_hook shutdown_hook;
} bm = { .timer_io = { .fd = -1 }, .early_stop = -1 };

/* --- signal context -------------------------------------------------------- */

static long gettid_(void)
{
	return syscall(SYS_gettid);
}

/* Record one range; async-signal-safe.  Duplicates are not re-added. */
static void record(const struct mn_bad_page *pg)
{
	unsigned int n = atomic_load(&claimed);
	unsigned int idx;

	if (n > MN__BADMEM_CAPACITY)
		n = MN__BADMEM_CAPACITY;
	for (unsigned int i = 0; i < n; i++)
		if (atomic_load_explicit(&table[i].ready, memory_order_acquire) &&
		    table[i].page.address == pg->address &&
		    table[i].page.length == pg->length)
			return;
	idx = atomic_fetch_add(&claimed, 1);
	if (idx >= MN__BADMEM_CAPACITY) {
		atomic_fetch_add(&lost_total, 1);
		mn__count(lost, 1);
	} else {
		table[idx].page = *pg;
		atomic_store_explicit(&table[idx].ready, 1, memory_order_release);
	}
	mn__dispatch_wake_async();
}

/* The SIGBUS chain node.  Signal context. */
static int on_sigbus(int sig, siginfo_t *si, void *uc, int handled, void *ctx)
{
	struct mn__chain_reader rd;
	struct mn__chain_node *n;
	struct mn_bad_page pg;
	struct timespec ts;
	unsigned int lsb;

	(void)sig;
	(void)ctx;
	if (!si || (si->si_code != BUS_MCEERR_AO && si->si_code != BUS_MCEERR_AR))
		return 0; /* not ours: pass it on */
	lsb = si->si_addr_lsb;
	if (lsb == 0 || lsb >= 48)
		lsb = (unsigned int)__builtin_ctzl((unsigned long)sysconf(_SC_PAGESIZE));
	__builtin_memset(&pg, 0, sizeof(pg));
	pg.length = 1ull << lsb;
	pg.address = (uint64_t)(uintptr_t)si->si_addr & ~(pg.length - 1);
	pg.scope = MN_BADMEM_PROCESS;
	pg.action_required = si->si_code == BUS_MCEERR_AR;
	pg.si_code = si->si_code;
	pg.tid = (int)gettid_();
	clock_gettime(CLOCK_REALTIME, &ts);
	pg.time_usec = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	record(&pg);
	if (!pg.action_required)
		return 1; /* action optional: recorded, the process goes on */

	/* Action required: this thread touched the poison. */
	mn__chain_walk_begin(&bm.ar, &rd);
	while ((n = mn__chain_walk_next(&rd))) {
		struct arsub *a = mn__container_of(n, struct arsub, sub.node);
		if (a->fn(&pg, si, uc, handled, a->ctx))
			handled = 1;
	}
	mn__chain_walk_end(&rd);
	return handled;
}

/* --- thread context: delivery -------------------------------------------- */

/* The lane's run: on a delivery thread, no lock held (see dispatch.c). */
static void deliver_to(struct mn__lane *l)
{
	struct bmsub *s = mn__container_of(l, struct bmsub, sub.lane);
	struct mn_badmem_event ev;
	unsigned int n = MN__MIN(atomic_load(&claimed),
				 (unsigned int)MN__BADMEM_CAPACITY);
	uint64_t lost = atomic_load(&lost_total);
	struct { bool hw_valid; uint64_t hw_bytes; } hw;

	mn__lane_lock();
	hw.hw_valid = s->hw_valid_post;
	hw.hw_bytes = s->hw_bytes_post;
	mn__lane_unlock();

	while (s->next < n &&
	       atomic_load_explicit(&table[s->next].ready, memory_order_acquire)) {
		memset(&ev, 0, sizeof(ev));
		ev.sz = sizeof(ev);
		ev.kind = MN_BADMEM_PAGE;
		ev.page = table[s->next].page;
		ev.hw_corrupted_bytes = hw.hw_valid ? hw.hw_bytes : 0;
		s->next++;
		s->cb(&ev, s->ctx);
		mn__count(delivered, 1);
	}
	if (lost > s->lost_seen) {
		memset(&ev, 0, sizeof(ev));
		ev.sz = sizeof(ev);
		ev.kind = MN_BADMEM_LOST;
		ev.lost = lost - s->lost_seen;
		s->lost_seen = lost;
		s->cb(&ev, s->ctx);
		mn__count(delivered, 1);
	}
	if (hw.hw_valid && !(s->flags & MN_BADMEM_NO_SYSTEM) &&
	    (!s->hw_first || hw.hw_bytes > s->hw_seen)) {
		bool rise = hw.hw_bytes > s->hw_seen;
		s->hw_first = true;
		if (rise) {
			memset(&ev, 0, sizeof(ev));
			ev.sz = sizeof(ev);
			ev.kind = MN_BADMEM_PAGE;
			ev.page.scope = MN_BADMEM_SYSTEM;
			ev.page.length = hw.hw_bytes - s->hw_seen;
			ev.page.time_usec = mn__now_real_usec();
			ev.hw_corrupted_bytes = hw.hw_bytes;
			s->cb(&ev, s->ctx);
			mn__count(delivered, 1);
		}
		s->hw_seen = hw.hw_bytes;
	}
}

static void deliver_all(void)
{
	struct mn__chain_reader rd;
	struct mn__chain_node *n;

	mn__chain_walk_begin(&bm.subs, &rd);
	while ((n = mn__chain_walk_next(&rd))) {
		struct bmsub *s = mn__container_of(n, struct bmsub, sub.node);
		mn__lane_lock();
		s->hw_valid_post = bm.hw_valid;
		s->hw_bytes_post = bm.hw_bytes;
		mn__lane_ready(&s->sub.lane);
		mn__lane_unlock();
	}
	mn__chain_walk_end(&rd);
	mn__chain_reclaim(&bm.subs);
}

static void sample_hw(void)
{
	char buf[8192];
	struct mn__meminfo mi;
	ssize_t n = mn__read_file("/proc/meminfo", buf, sizeof(buf));

	if (n < 0 || mn__parse_meminfo(buf, (size_t)n, &mi) < 0) {
		mn__count(source_errors, 1);
		return;
	}
	bm.hw_bytes = mi.hw_corrupted_bytes;
	bm.hw_valid = true;
}

static void on_timer(struct mn__io *io, uint32_t events)
{
	uint64_t ticks;

	(void)events;
	if (read(io->fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		mn__count(source_errors, 1);
	sample_hw();
	deliver_all();
}

/* Dispatcher: (re)arm the HardwareCorrupted timer at the fastest period
   any subscriber asked for. */
static void timer_update(void)
{
	struct mn__chain_reader rd;
	struct mn__chain_node *n;
	unsigned int ms = 0;

	mn__chain_walk_begin(&bm.subs, &rd);
	while ((n = mn__chain_walk_next(&rd))) {
		struct bmsub *s = mn__container_of(n, struct bmsub, sub.node);
		if (!(s->flags & MN_BADMEM_NO_SYSTEM) && (!ms || s->poll_ms < ms))
			ms = s->poll_ms;
	}
	mn__chain_walk_end(&rd);
	if (bm.timer_io.fd >= 0 && bm.timer_gen != mn__dispatch_generation()) {
		close(bm.timer_io.fd); /* its epoll set is gone */
		bm.timer_io.fd = -1;
	}
	if (ms && bm.timer_io.fd < 0) {
		/* Made here, on the dispatcher, so that it joins whichever
		   epoll set is current (after fork or shutdown too). */
		bm.timer_io.fd = timerfd_create(CLOCK_MONOTONIC,
						TFD_CLOEXEC | TFD_NONBLOCK);
		if (bm.timer_io.fd >= 0 &&
		    mn__dispatch_add(&bm.timer_io, EPOLLIN) < 0) {
			close(bm.timer_io.fd);
			bm.timer_io.fd = -1;
		}
		bm.timer_gen = mn__dispatch_generation();
		bm.timer_ms = 0;
	}
	if (ms == bm.timer_ms || bm.timer_io.fd < 0)
		return;
	struct itimerspec its = { 0 };
	its.it_value.tv_sec = ms / 1000;
	its.it_value.tv_nsec = (long)(ms % 1000) * 1000000;
	its.it_interval = its.it_value;
	if (timerfd_settime(bm.timer_io.fd, 0, &its, NULL) < 0)
		mn__count(source_errors, 1);
	bm.timer_ms = ms;
}

static void kick_fn(struct mn__work *w)
{
	(void)w;
	timer_update();
	if (bm.timer_ms && !bm.hw_valid)
		sample_hw();
	deliver_all();
}

static void async_hook(void)
{
	deliver_all();
}

/* --- setup (core lock held) ------------------------------------------------ */

static void fork_rebuild(void)
{
	/* A new epoll set: the timer is made again on the dispatcher (the
	   inherited one is shared with the parent). */
	if (bm.timer_io.fd >= 0)
		close(bm.timer_io.fd);
	bm.timer_io.fd = -1;
	bm.timer_ms = 0;
	/* The early-kill thread does not exist in the child: the next early
	   subscriber starts one. */
	if (bm.early_stop >= 0)
		close(bm.early_stop);
	bm.early_stop = -1;
	bm.early_refs = 0;
	atomic_store(&bm.early_joinable, false);
	atomic_store(&bm.early_once.state, 0);
	mn__dispatch_post(&bm.kick);
}

/* Core lock held: the last early subscriber left.  The thread closes its
   eventfd itself (the number is never reused under it). */
static void early_stop(void)
{
	uint64_t one = 1;

	if (bm.early_stop < 0)
		return;
	if (write(bm.early_stop, &one, sizeof(one)) != (ssize_t)sizeof(one))
		mn__count(source_errors, 1);
	bm.early_stop = -1;
	bm.early_stopped = bm.early_thread;
	atomic_store(&bm.early_joinable, true);
	atomic_store(&bm.early_once.state, 0); /* the next one starts anew */
}

/*
 * No lock held (joining frees the thread's stack: a hooked munmap whose
 * listeners may call mn_* functions).  Whoever comes first — the last
 * unsubscription's after-step, the next start, or mn_shutdown() — joins;
 * a start always joins before a new thread can be stopped again.
 */
static void early_join(void)
{
	if (atomic_exchange(&bm.early_joinable, false))
		pthread_join(bm.early_stopped, NULL);
}

/* mn_shutdown(), no lock held, the dispatcher stopped: no thread, no fd. */
static void shutdown_fn(void)
{
	if (bm.timer_io.fd >= 0)
		close(bm.timer_io.fd);
	bm.timer_io.fd = -1;
	bm.timer_ms = 0;
	early_join();
}

static int setup(void)
{
	int err;

	/* Every call: the dispatcher may have been shut down, or this may be
	   a fork child that had no subscription at fork time. */
	err = mn__dispatch_ensure();
	if (err || bm.ready)
		return err;
	bm.shutdown_hook.fn = shutdown_fn;
	mn__shutdown_hook_register(&bm.shutdown_hook);
	mn__chain_init(&bm.subs, MN__CHAIN_OLDEST_FIRST);
	mn__chain_init(&bm.ar, MN__CHAIN_NEWEST_FIRST);
	err = mn__signal_register_internal(SIGBUS, on_sigbus, NULL);
	if (err)
		return err;
	bm.hook.fn = async_hook;
	mn__async_hook_register(&bm.hook);
	bm.kick.fn = kick_fn;
	bm.timer_io.ready = on_timer;
	bm.timer_io.fd = -1;
	bm.fork_hook.rebuild = fork_rebuild;
	mn__fork_hook_register(&bm.fork_hook);
	bm.ready = true;
	return 0;
}

/* --- early kill ------------------------------------------------------------ */

struct early_start {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int result; /* 1: not yet */
	int stopfd;
};

static void *early_main(void *arg)
{
	struct early_start *st = arg;
	sigset_t only_bus;
	int stopfd = st->stopfd, err = 0;
	uint64_t v;

	/* This thread takes SIGBUS for the process: the kernel sends
	   BUS_MCEERR_AO to a thread that asked for early kill. */
	sigfillset(&only_bus);
	sigdelset(&only_bus, SIGBUS);
	pthread_sigmask(SIG_SETMASK, &only_bus, NULL);
	pthread_setname_np(pthread_self(), "memnotify-mce");
	if (prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY, 0, 0) < 0)
		err = -errno;
	pthread_mutex_lock(&st->lock);
	st->result = err;
	pthread_cond_signal(&st->cond);
	pthread_mutex_unlock(&st->lock);
	if (err)
		return NULL;
	/* Until the last early subscriber leaves. */
	while (read(stopfd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	close(stopfd);
	return NULL;
}

/* mn__once: no memnotify lock is held while the thread is created. */
static void early_start(void *arg)
{
	struct early_start st = { PTHREAD_MUTEX_INITIALIZER,
				  PTHREAD_COND_INITIALIZER, 1, -1 };
	int err;

	(void)arg;
	early_join(); /* the one the last unsubscription stopped */
	st.stopfd = eventfd(0, EFD_CLOEXEC);
	if (st.stopfd < 0) {
		bm.early_err = -errno;
		return;
	}
	err = pthread_create(&bm.early_thread, NULL, early_main, &st);
	if (err) {
		close(st.stopfd);
		bm.early_err = -EAGAIN;
		return;
	}
	pthread_mutex_lock(&st.lock);
	while (st.result == 1)
		pthread_cond_wait(&st.cond, &st.lock);
	err = st.result;
	pthread_mutex_unlock(&st.lock);
	if (err) {
		pthread_join(bm.early_thread, NULL);
		close(st.stopfd);
		bm.early_err = err;
		return;
	}
	bm.early_err = 0;
	bm.early_stop = st.stopfd;
}

/* --- subscriptions ---------------------------------------------------------- */

static void bmsub_release(struct mn__chain_node *n)
{
	free(mn__container_of(n, struct bmsub, sub.node));
}

static struct mn__chain *bmsub_unlink(mn_sub *sub, struct mn__chain_removal *rm)
{
	struct bmsub *s = mn__container_of(sub, struct bmsub, sub);

	mn__chain_unlink(&bm.subs, &s->sub.node, rm);
	if ((s->flags & MN_BADMEM_EARLY_KILL) && --bm.early_refs == 0)
		early_stop();
	mn__dispatch_post(&bm.kick); /* the timer period may change */
	return &bm.subs;
}

static void bmsub_after(struct mn__chain *chain)
{
	(void)chain;
	early_join();
}

static const struct mn__sub_ops bmsub_ops = {
	.kind = "badmem",
	.unlink = bmsub_unlink,
	.after = bmsub_after,
};

/* Core lock: bad-memory subscribers join one chain; an early-kill one
   needs the early-kill thread, which a last unsubscription may have
   stopped since it was started (-ESTALE: start it again). */
static struct mn__chain *bmsub_attach(mn_sub *sub, void *arg, int *err)
{
	struct bmsub *s = mn__container_of(sub, struct bmsub, sub);

	(void)arg;
	if ((s->flags & MN_BADMEM_EARLY_KILL) && bm.early_stop < 0) {
		*err = -ESTALE;
		return NULL;
	}
	if ((*err = setup()))
		return NULL;
	return &bm.subs;
}

static void bmsub_joined(mn_sub *sub, void *arg)
{
	struct bmsub *s = mn__container_of(sub, struct bmsub, sub);

	(void)arg;
	if (s->flags & MN_BADMEM_EARLY_KILL)
		bm.early_refs++;
	mn__dispatch_post(&bm.kick);
}

static const struct mn__sub_spec bmsub_spec = {
	.ops = &bmsub_ops, .attach = bmsub_attach, .joined = bmsub_joined,
};

int mn_badmem_subscribe(const struct mn_badmem_opts *opts, mn_badmem_cb cb,
			void *ctx, mn_sub **out)
{
	struct bmsub *s;
	int err;

	mn__check(out, -EINVAL);
	*out = NULL;
	mn__check(cb && MN__OPTS_VALID(opts, mn_badmem_opts), -EINVAL);
	unsigned int flags = MN__OPTS_GET(opts, mn_badmem_opts, flags, 0u);
	unsigned int poll = MN__OPTS_GET(opts, mn_badmem_opts, system_poll_ms, 0u);
	mn__check(!(flags & ~(MN_BADMEM_EARLY_KILL | MN_BADMEM_NO_SYSTEM)), -EINVAL);
	mn__check_unlocked();
	mn__enter();
	do {
		/* Threads are created with no lock held. */
		err = mn__dispatch_start();
		if (!err && (flags & MN_BADMEM_EARLY_KILL)) {
			mn__once(&bm.early_once, early_start, NULL);
			err = mn__once_done(&bm.early_once) ? bm.early_err : -EAGAIN;
		}
		if (err)
			return err;
		if (!(s = calloc(1, sizeof(*s))))
			return -ENOMEM;
		s->cb = cb;
		s->ctx = ctx;
		s->flags = flags;
		s->poll_ms = poll ? poll : DEFAULT_SYSTEM_POLL_MS;
		s->sub.node.release = bmsub_release;
		s->sub.lane.run = deliver_to;
		err = mn__sub_add(&s->sub, &bmsub_spec);
	} while (err == -ESTALE); /* the early-kill thread stopped meanwhile */
	if (err)
		return err;
	mn__dispatch_start(); /* a concurrent mn_shutdown() stopped it */
	*out = &s->sub;
	return 0;
}

static void arsub_release(struct mn__chain_node *n)
{
	free(mn__container_of(n, struct arsub, sub.node));
}

static struct mn__chain *arsub_unlink(mn_sub *sub, struct mn__chain_removal *rm)
{
	mn__chain_unlink(&bm.ar, &sub->node, rm);
	return &bm.ar;
}

static const struct mn__sub_ops arsub_ops = {
	.kind = "badmem-ar",
	.unlink = arsub_unlink,
};

static struct mn__chain *arsub_attach(mn_sub *sub, void *arg, int *err)
{
	(void)sub;
	(void)arg;
	return (*err = setup()) ? NULL : &bm.ar;
}

static const struct mn__sub_spec arsub_spec = {
	.ops = &arsub_ops, .attach = arsub_attach,
};

int mn_badmem_register_ar(mn_badmem_ar_fn fn, void *ctx, mn_sub **out)
{
	struct arsub *a;
	int err;

	mn__check(out, -EINVAL);
	*out = NULL;
	mn__check(fn, -EINVAL);
	mn__check_unlocked();
	mn__enter();
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->fn = fn;
	a->ctx = ctx;
	a->sub.node.release = arsub_release;
	err = mn__dispatch_start();
	if (err) {
		free(a);
		return err;
	}
	if ((err = mn__sub_add(&a->sub, &arsub_spec)))
		return err;
	*out = &a->sub;
	return 0;
}

/* --- queries and helpers ---------------------------------------------------- */

int mn_badmem_query(const void *addr, size_t len, struct mn_bad_page *out,
		    size_t max)
{
	uint64_t lo = (uint64_t)(uintptr_t)addr, hi;
	unsigned int n;
	int found = 0;

	mn__check(len > 0 && lo + len > lo, -EINVAL);
	hi = lo + len;
	n = MN__MIN(atomic_load(&claimed), (unsigned int)MN__BADMEM_CAPACITY);
	for (unsigned int i = 0; i < n; i++) {
		if (!atomic_load_explicit(&table[i].ready, memory_order_acquire))
			continue;
		const struct mn_bad_page *p = &table[i].page;
		if (p->address < hi && p->address + p->length > lo) {
			if (out && (size_t)found < max)
				out[found] = *p;
			found++;
		}
	}
	return found;
}

int mn_badmem_replace(void *addr, size_t len)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t lo = (uintptr_t)addr & ~(page - 1);
	uintptr_t hi;
	int prot;

	mn__check(addr && len > 0 && (uintptr_t)addr + len > (uintptr_t)addr,
		  -EINVAL);
	hi = ((uintptr_t)addr + len + page - 1) & ~(page - 1);
	uintptr_t ms, me;
	if (mn__maps_lookup(lo, &ms, &me, &prot) < 0)
		prot = PROT_READ | PROT_WRITE;
	if (mmap((void *)lo, hi - lo, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		 -1, 0) == MAP_FAILED)
		return -errno;
	return 0;
}

int mn_badmem_inject(pid_t tid, void *addr, unsigned int lsb, int action_required)
{
	siginfo_t si;

	mn__check(tid >= 0 && lsb < 48 && (action_required == 0 || action_required == 1),
		  -EINVAL);
	if (lsb == 0)
		lsb = (unsigned int)__builtin_ctzl((unsigned long)sysconf(_SC_PAGESIZE));
	__builtin_memset(&si, 0, sizeof(si));
	si.si_signo = SIGBUS;
	si.si_code = action_required ? BUS_MCEERR_AR : BUS_MCEERR_AO;
	si.si_addr = addr;
	si.si_addr_lsb = (short)lsb;
	if (syscall(SYS_rt_tgsigqueueinfo, getpid(), tid ? tid : (pid_t)gettid_(),
		    SIGBUS, &si) < 0)
		return -errno;
	return 0;
}

int mn_badmem_inject_hwpoison(void *addr)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);

	mn__check(addr, -EINVAL);
	if (madvise((void *)((uintptr_t)addr & ~(page - 1)), page, MADV_HWPOISON) < 0)
		return errno == EINVAL ? -EOPNOTSUPP : -errno;
	return 0;
}
