/* SPDX-License-Identifier: MIT */
/*
 * The userfaultfd safety net: watched ranges are registered with one
 * userfaultfd in write-protect mode (no page fault is trapped: nothing is
 * write-protected) with the UNMAP, REMOVE and REMAP events, which the
 * kernel sends whoever unmaps, discards or moves them — raw syscalls and
 * static code included.  The unmapping thread waits until the event is
 * read, so a dedicated thread reads at once and hands the events to the
 * dispatcher, where they are delivered as late events (thread context).
 *
 * Locks: none.  The reader thread never takes the core lock (an unmapping
 * thread that holds it waits for the reader): it pushes into a
 * single-producer, single-consumer ring and wakes the dispatcher with one
 * write(2) (mn__dispatch_wake_async); the dispatcher drains the ring in an
 * async hook.  A full ring counts the loss in mn_stats' events_lost.
 *
 * Lifetime: set up once (mn__once), with no lock held, by the first watch
 * that wants it; the reader is created with every signal blocked.  In a
 * fork child the inherited descriptor belongs to the parent's address
 * space (an ioctl on it would unregister the parent's ranges): the atfork
 * child handler drops it at once, and the child's first mn_* call makes
 * its own and registers the child's watched ranges there.  mn_shutdown()
 * stops the reader and closes the descriptor.
 */
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../core/caps.h"
#include "../core/core.h"
#include "index.h"
#include "vmrange.h"

#define QUEUE_CAP 1024u /* a power of two */

static struct {
	struct mn__once once;
	_Atomic int fd;          /* -1 when there is none */
	int stopfd;              /* eventfd that ends the reader */
	int err;
	char detail[160];
	pthread_t reader;
	bool reader_running;
	/* Single producer (the reader), single consumer (the dispatcher). */
	struct mn_vm_event q[QUEUE_CAP];
	_Atomic unsigned int qhead, qtail;
	/* The reader's sequence: odd while it is between a read(2) and the
	   end of the matching of what it read. */
	_Atomic unsigned int rseq;
	_Atomic uint64_t msgs;   /* messages read (stats) */
	struct mn__async_hook hook;
	struct mn__shutdown_hook shutdown;
	bool hooks_registered;   /* core lock */
} u = { .fd = -1, .stopfd = -1 };

/*
 * What is registered, for the hooks: every span in sp.spans, keyed (lo,
 * hi) in an index that a hook reads without locks.  Conservative: an entry
 * stays when part of it is unmapped or forgotten (a hook then makes one
 * UFFDIO_UNREGISTER that finds nothing), never the other way round: a
 * range is added after its registration succeeded and removed after it
 * was unregistered.
 */
static struct mn__idx sidx;

/* The dispatcher: deliver what the reader queued. */
static void drain(void)
{
	unsigned int head = atomic_load_explicit(&u.qhead, memory_order_relaxed);

	while (head != atomic_load_explicit(&u.qtail, memory_order_acquire)) {
		struct mn_vm_event ev = u.q[head % QUEUE_CAP];
		atomic_store_explicit(&u.qhead, ++head, memory_order_release);
		mn__vm_notify_late(&ev);
	}
}

static void enqueue(const struct mn_vm_event *ev)
{
	unsigned int tail = atomic_load_explicit(&u.qtail, memory_order_relaxed);

	if (tail - atomic_load_explicit(&u.qhead, memory_order_acquire) >= QUEUE_CAP) {
		mn__count(lost, 1);
		return;
	}
	u.q[tail % QUEUE_CAP] = *ev;
	atomic_store_explicit(&u.qtail, tail + 1, memory_order_release);
}

/* One message to an event; false for messages that are not ours. */
static bool to_event(const struct uffd_msg *m, struct mn_vm_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->sz = sizeof(*ev);
	ev->prot = -1;
	switch (m->event) {
	case UFFD_EVENT_UNMAP:
		ev->kind = MN_VM_UNMAP;
		ev->address = m->arg.remove.start;
		ev->length = m->arg.remove.end - m->arg.remove.start;
		return true;
	case UFFD_EVENT_REMOVE:
		ev->kind = MN_VM_DISCARD;
		ev->address = m->arg.remove.start;
		ev->length = m->arg.remove.end - m->arg.remove.start;
		return true;
	case UFFD_EVENT_REMAP:
		ev->kind = MN_VM_MOVE;
		ev->address = m->arg.remap.from;
		ev->length = m->arg.remap.len;
		ev->new_address = m->arg.remap.to;
		ev->new_length = m->arg.remap.len;
		return true;
	default:
		return false;
	}
}

static void *reader_main(void *arg)
{
	struct uffd_msg msg[16];
	struct pollfd pfd[2] = {
		{ .fd = atomic_load(&u.fd), .events = POLLIN },
		{ .fd = u.stopfd, .events = POLLIN },
	};

	(void)arg;
	pthread_setname_np(pthread_self(), "memnotify-uffd");
	for (;;) {
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break; /* mn_shutdown() */
		/* Odd from before the read(2) until every message it returned
		   has been matched: see mn__uffd_reader_sync(). */
		atomic_fetch_add(&u.rseq, 1);
		ssize_t n = read(pfd[0].fd, msg, sizeof(msg));
		if (n < 0) {
			atomic_fetch_add_explicit(&u.rseq, 1, memory_order_release);
			if (errno == EAGAIN || errno == EINTR)
				continue;
			break;
		}
		bool queued = false;
		atomic_fetch_add_explicit(&u.msgs, (size_t)n / sizeof(msg[0]),
					  memory_order_relaxed);
		for (size_t i = 0; i < (size_t)n / sizeof(msg[0]); i++) {
			struct mn_vm_event ev;
			if (!to_event(&msg[i], &ev))
				continue;
			/* The kernel's copy of a call a hook reported and that is
			   still running (it waits for this read): drop it here,
			   per call — a later call of the same range is news. */
			if (mn__vm_inflight_match(ev.kind, ev.address,
						  ev.address + ev.length))
				continue;
			enqueue(&ev);
			queued = true;
		}
		atomic_fetch_add_explicit(&u.rseq, 1, memory_order_release);
		if (queued)
			mn__dispatch_wake_async();
	}
	return NULL;
}

static int start_reader(void)
{
	sigset_t all, old;
	int err;

	/* The reader takes no process signals. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&u.reader, NULL, reader_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return -err;
	u.reader_running = true;
	return 0;
}

/* mn__once, no lock held: open the userfaultfd and start its reader. */
static void setup(void *arg)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_EVENT_REMOVE |
			    UFFD_FEATURE_EVENT_REMAP,
	};
	int fd;

	(void)arg;
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0 && errno == EINVAL)
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		u.err = -errno;
		snprintf(u.detail, sizeof(u.detail),
			 "userfaultfd(2): %s (CONFIG_USERFAULTFD, "
			 "vm.unprivileged_userfaultfd, or seccomp)",
			 strerror(errno));
		return;
	}
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		u.err = -errno;
		snprintf(u.detail, sizeof(u.detail),
			 "UFFDIO_API with UNMAP/REMOVE/REMAP events: %s",
			 strerror(errno));
		close(fd);
		return;
	}
	u.stopfd = eventfd(0, EFD_CLOEXEC);
	if (u.stopfd < 0) {
		u.err = -errno;
		snprintf(u.detail, sizeof(u.detail), "eventfd: %s", strerror(errno));
		close(fd);
		return;
	}
	atomic_store(&u.fd, fd);
	u.err = start_reader();
	if (u.err) {
		snprintf(u.detail, sizeof(u.detail),
			 "cannot start the reader thread: %s", strerror(-u.err));
		atomic_store(&u.fd, -1);
		close(fd);
		close(u.stopfd);
		u.stopfd = -1;
		return;
	}
	snprintf(u.detail, sizeof(u.detail),
		 "userfaultfd with UNMAP, REMOVE and REMAP events");
}

static void spans_reset(void);

/* mn_shutdown(), no lock held, nothing watched: no thread, no fd left. */
static void shutdown_fn(void)
{
	uint64_t one = 1;
	int fd;

	if (u.reader_running &&
	    write(u.stopfd, &one, sizeof(one)) == (ssize_t)sizeof(one))
		pthread_join(u.reader, NULL);
	u.reader_running = false;
	fd = atomic_exchange(&u.fd, -1);
	if (fd >= 0)
		close(fd);
	if (u.stopfd >= 0)
		close(u.stopfd);
	u.stopfd = -1;
	drain();
	spans_reset(); /* the descriptor took its registrations along */
	atomic_store(&u.once.state, 0); /* the next watch sets up anew */
}

/* The atfork child handler: async-signal-safe, no allocation. */
static void atfork_child(void)
{
	int fd = atomic_exchange(&u.fd, -1);

	if (fd >= 0)
		close(fd); /* the parent's address space's, not ours */
	if (u.stopfd >= 0)
		close(u.stopfd);
	u.stopfd = -1;
	u.reader_running = false; /* it stayed in the parent */
	atomic_store(&u.qhead, 0);
	atomic_store(&u.qtail, 0);
	atomic_store(&u.rseq, 0); /* the parent's reader may have been odd */
	mn__idx_atfork_child(&sidx);
	spans_reset();
	atomic_store(&u.once.state, 0);
}

__attribute__((constructor)) static void uffd_init(void)
{
	pthread_atfork(NULL, NULL, atfork_child);
}

int mn__uffd_prepare(void)
{
	mn__once(&u.once, setup, NULL);
	if (!mn__once_done(&u.once))
		return -EAGAIN; /* a recursion from the setup itself */
	return u.err;
}

bool mn__uffd_in_use(void)
{
	return atomic_load_explicit(&u.fd, memory_order_relaxed) >= 0;
}

/*
 * Registering exactly a watched range splits its mapping in two or three
 * (the registered part carries other flags), and ranges one page apart
 * cost two mappings each: vm.max_map_count (65,530 by default) runs out at
 * about 32,768 watches.  So a watched range is registered together with
 * the whole of every mapping it touches, found with the PROCMAP_QUERY
 * ioctl of /proc/self/maps (Linux 6.11): registering a mapping that is
 * registered already changes nothing, and neighbouring registered
 * mappings merge again.  The whole mappings stay registered until the
 * last watch that uses the safety net goes (mn__uffd_release_all): the
 * kernel then also reports unmaps of their unwatched pages, which find no
 * watch.  Without PROCMAP_QUERY the range alone is registered (and
 * unregistered with its watch); the reason is counted and logged once.
 */
#ifndef PROCMAP_QUERY
struct procmap_query {
	uint64_t size, query_flags, query_addr, vma_start, vma_end, vma_flags,
		vma_page_size, vma_offset, inode;
	uint32_t dev_major, dev_minor, vma_name_size, build_id_size;
	uint64_t vma_name_addr, build_id_addr;
};
#define PROCMAP_QUERY _IOWR('f', 17, struct procmap_query)
#endif

static struct {
	int maps_fd;                /* /proc/self/maps, core lock; -1: none */
	unsigned int maps_gen;      /* fork generation it was opened in */
	bool no_query;              /* PROCMAP_QUERY is not there */
	/* Registered whole or alone, core lock; what is in sidx. */
	struct { uint64_t lo, hi; } *spans;
	size_t n_spans, cap_spans;
	bool stale;                 /* spans and sidx are a fork parent's or
				       a shut-down descriptor's: clear them */
	struct mn__uffd_counts counts;
	_Atomic uint64_t fast_whole; /* covered without the core lock */
	_Atomic uint64_t rehold_failed;
} sp = { .maps_fd = -1 };

static void *span_key(uint64_t hi)
{
	return (void *)(uintptr_t)hi;
}

/*
 * The last span registered whole, and mn__vm_map_seq then: a range inside
 * it needs no system call while no unmap or move was seen.  Published with
 * a sequence count (odd while the core lock holder writes it), so that a
 * miss of the range cache can check it without the core lock.
 */
static struct {
	_Atomic unsigned int ver;
	_Atomic uint64_t lo, hi;
	_Atomic unsigned long seq;
} last;

/* Async-signal-safe (the atfork child handler): writers are the core
   lock's holder, or the only thread. */
static void last_set(uint64_t lo, uint64_t hi, unsigned long seq)
{
	atomic_fetch_add_explicit(&last.ver, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&last.lo, lo, memory_order_relaxed);
	atomic_store_explicit(&last.hi, hi, memory_order_relaxed);
	atomic_store_explicit(&last.seq, seq, memory_order_relaxed);
	atomic_fetch_add_explicit(&last.ver, 1, memory_order_release);
}

/* [start, end) is inside the last span registered whole, and nothing was
   unmapped or moved since; lock-free. */
static bool last_holds(uint64_t start, uint64_t end)
{
	unsigned int v = atomic_load_explicit(&last.ver, memory_order_acquire);
	uint64_t lo, hi;
	unsigned long seq;

	if (v & 1)
		return false;
	lo = atomic_load_explicit(&last.lo, memory_order_relaxed);
	hi = atomic_load_explicit(&last.hi, memory_order_relaxed);
	seq = atomic_load_explicit(&last.seq, memory_order_relaxed);
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&last.ver, memory_order_relaxed) != v)
		return false;
	return hi && lo <= start && end <= hi &&
	       seq == atomic_load(&mn__vm_map_seq);
}

/* The mapping holding @addr: 0 or -errno. */
static int vma_of(uint64_t addr, uint64_t *lo, uint64_t *hi)
{
	struct procmap_query q = { .size = sizeof(q), .query_addr = addr };

	if (sp.maps_fd >= 0 && sp.maps_gen != mn__fork_generation()) {
		close(sp.maps_fd); /* the parent's maps */
		sp.maps_fd = -1;
	}
	if (sp.maps_fd < 0) {
		sp.maps_fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
		sp.maps_gen = mn__fork_generation();
		if (sp.maps_fd < 0)
			return -errno;
	}
	if (ioctl(sp.maps_fd, PROCMAP_QUERY, &q) < 0)
		return -errno;
	*lo = q.vma_start;
	*hi = q.vma_end;
	return 0;
}

/* No allocation, close(2) only (async-signal-safe): the atfork child
   handler runs it.  The spans and their index are cleared by the next
   writer (spans_fresh). */
static void spans_reset(void)
{
	sp.stale = true;
	last_set(0, 0, 0);
	if (sp.maps_fd >= 0)
		close(sp.maps_fd); /* mn_shutdown() leaves no fd; a fork
				      child's is the parent's maps */
	sp.maps_fd = -1;
}

/*
 * Core lock: every span out of the index, then (@fd >= 0) unregistered —
 * in that order: a hook's rehold that still saw the entry either
 * registers before the UFFDIO_UNREGISTER (undone by it) or finds the entry
 * gone when it looks again after registering (and undoes its own).  A
 * span the index cannot take out now (-ENOMEM) stays in sp.spans for the
 * next time.
 */
static void spans_drop(int fd)
{
	size_t keep = 0;

	for (size_t i = 0; i < sp.n_spans; i++) {
		struct uffdio_range r = { .start = sp.spans[i].lo,
					  .len = sp.spans[i].hi - sp.spans[i].lo };
		bool out = mn__idx_remove(&sidx, sp.spans[i].lo,
					  span_key(sp.spans[i].hi)) == 0;
		if (fd >= 0)
			ioctl(fd, UFFDIO_UNREGISTER, &r); /* holes, gone: fine */
		if (!out)
			sp.spans[keep++] = sp.spans[i];
	}
	sp.n_spans = keep;
	mn__idx_poll(&sidx, NULL);
}

/* Core lock: forget spans that a fork or mn_shutdown() left behind (the
   descriptor that held them is gone). */
static void spans_fresh(void)
{
	if (!sp.stale)
		return;
	spans_drop(-1);
	sp.stale = sp.n_spans > 0;
}

struct span_q {
	uint64_t lo, hi;
	bool found;
};

static bool same_span(uint64_t start, uint64_t end, void *owner, void *arg)
{
	struct span_q *q = arg;

	(void)owner;
	q->found = start == q->lo && end == q->hi;
	return !q->found;
}

/* (lo, hi) is in the index (lock-free: async-signal-safe). */
static bool span_present(uint64_t lo, uint64_t hi)
{
	struct span_q q = { lo, hi, false };
	unsigned int slot = mn__idx_read_begin(&sidx);

	mn__idx_query(&sidx, lo, lo + 1, same_span, &q);
	mn__idx_read_end(&sidx, slot);
	return q.found;
}

static void span_add(uint64_t lo, uint64_t hi)
{
	if (span_present(lo, hi))
		return;
	if (sp.n_spans == sp.cap_spans) {
		size_t cap = sp.cap_spans ? 2 * sp.cap_spans : 16;
		void *p = realloc(sp.spans, cap * sizeof(sp.spans[0]));
		if (!p)
			return; /* stays registered until mn_shutdown() */
		sp.spans = p;
		sp.cap_spans = cap;
	}
	if (mn__idx_insert(&sidx, lo, hi, span_key(hi)) != 0)
		return; /* not in the index: hooks do not forget it (a
			   round trip through the reader, no loss) */
	sp.spans[sp.n_spans].lo = lo;
	sp.spans[sp.n_spans++].hi = hi;
	mn__idx_poll(&sidx, NULL);
}

/* The whole mappings [start, end) touches, or a reason not to. */
static int whole_span(uint64_t start, uint64_t end, uint64_t *lo, uint64_t *hi)
{
	uint64_t a, b;
	int err = vma_of(start, lo, hi);

	while (!err && *hi < end) {
		err = vma_of(*hi, &a, &b);
		if (!err && a != *hi)
			err = -ENOENT; /* a hole: registering would fail anyway */
		if (!err)
			*hi = b;
	}
	return err;
}

static int uffd_ioctl_register(int fd, uint64_t start, uint64_t len)
{
	struct uffdio_register reg = {
		.range = { .start = start, .len = len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};

	return ioctl(fd, UFFDIO_REGISTER, &reg) < 0 ? -errno : 0;
}

static void hooks_register(void)
{
	if (u.hooks_registered)
		return;
	u.hook.fn = drain;
	mn__async_hook_register(&u.hook);
	u.shutdown.fn = shutdown_fn;
	mn__shutdown_hook_register(&u.shutdown);
	u.hooks_registered = true;
}

int mn__uffd_register(uint64_t start, uint64_t len, bool *whole)
{
	int fd = atomic_load(&u.fd), err;
	uint64_t lo, hi;

	*whole = false;
	if (fd < 0)
		return u.err ? u.err : -EBADF;
	hooks_register();
	spans_fresh();
	if (last_holds(start, start + len)) {
		*whole = true;
		sp.counts.whole++;
		return 0;
	}
	err = sp.no_query ? -ENOTTY : whole_span(start, start + len, &lo, &hi);
	if (err == -ENOTTY || err == -EINVAL) {
		if (!sp.no_query)
			mn__warn("userfaultfd: PROCMAP_QUERY not available (%s): "
				 "each watched range is registered alone and "
				 "splits its mapping", strerror(-err));
		sp.no_query = true;
	}
	unsigned long seq = atomic_load(&mn__vm_map_seq);
	if (!err && uffd_ioctl_register(fd, lo, hi - lo) == 0) {
		span_add(lo, hi);
		last_set(lo, hi, seq);
		*whole = true;
		sp.counts.whole++;
		return 0;
	}
	/* Not the whole mapping (file-backed neighbours, no PROCMAP_QUERY,
	   a hole): the range alone. */
	err = uffd_ioctl_register(fd, start, len);
	if (err) {
		sp.counts.failed++;
		return err; /* not mapped yet, or not anonymous/shmem */
	}
	span_add(start, start + len);
	sp.counts.per_range++;
	return 0;
}

bool mn__uffd_covered_fast(uint64_t start, uint64_t len)
{
	if (atomic_load_explicit(&u.fd, memory_order_relaxed) < 0 ||
	    !last_holds(start, start + len))
		return false;
	atomic_fetch_add_explicit(&sp.fast_whole, 1, memory_order_relaxed);
	return true;
}

void mn__uffd_release_all(void)
{
	spans_fresh();
	spans_drop(atomic_load(&u.fd));
	last_set(0, 0, 0);
}

void mn__uffd_counts(struct mn__uffd_counts *out)
{
	*out = sp.counts;
	out->whole += atomic_load_explicit(&sp.fast_whole, memory_order_relaxed);
	out->rehold_failed = atomic_load_explicit(&sp.rehold_failed,
						  memory_order_relaxed);
	out->messages = atomic_load_explicit(&u.msgs, memory_order_relaxed);
	out->no_query = sp.no_query;
}

void mn__uffd_unregister(uint64_t start, uint64_t len)
{
	struct uffdio_range r = { .start = start, .len = len };
	int fd = atomic_load(&u.fd);

	spans_fresh();
	for (size_t i = 0; i < sp.n_spans; i++) {
		if (sp.spans[i].lo != start || sp.spans[i].hi != start + len)
			continue;
		/* Out of the index first (see spans_drop). */
		if (mn__idx_remove(&sidx, start, span_key(start + len)) == 0)
			sp.spans[i] = sp.spans[--sp.n_spans];
		break;
	}
	if (fd >= 0)
		ioctl(fd, UFFDIO_UNREGISTER, &r); /* gone already: fine */
	mn__idx_poll(&sidx, NULL);
}

/* --- from the hooks: async-signal-safe, lock-free ------------------------ */

static bool any_span(uint64_t start, uint64_t end, void *owner, void *arg)
{
	(void)start;
	(void)end;
	(void)owner;
	*(bool *)arg = true;
	return false;
}

bool mn__uffd_covered(uint64_t lo, uint64_t hi)
{
	bool hit = false;
	unsigned int slot;

	if (atomic_load_explicit(&u.fd, memory_order_relaxed) < 0 ||
	    mn__idx_empty(&sidx))
		return false;
	slot = mn__idx_read_begin(&sidx);
	mn__idx_query(&sidx, lo, hi, any_span, &hit);
	mn__idx_read_end(&sidx, slot);
	return hit;
}

void mn__uffd_forget(uint64_t start, uint64_t len)
{
	struct uffdio_range r = { .start = start, .len = len };
	int saved = errno;
	int fd = atomic_load_explicit(&u.fd, memory_order_relaxed);

	if (fd >= 0)
		ioctl(fd, UFFDIO_UNREGISTER, &r);
	errno = saved;
}

struct rehold {
	int fd;
	uint64_t lo, hi;
};

static bool rehold_one(uint64_t start, uint64_t end, void *owner, void *arg)
{
	struct rehold *h = arg;
	uint64_t a = MN__MAX(start, h->lo), b = MN__MIN(end, h->hi);

	(void)owner;
	if (uffd_ioctl_register(h->fd, a, b - a) != 0) {
		/* A hole in it (unmapped meanwhile): the next cover looks
		   at the mappings again. */
		atomic_fetch_add_explicit(&sp.rehold_failed, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&mn__vm_map_seq, 1, memory_order_relaxed);
		return true;
	}
	/* Released meanwhile (mn__uffd_release_all): undo ours. */
	if (!span_present(start, end))
		mn__uffd_forget(a, b - a);
	return true;
}

void mn__uffd_rehold(uint64_t lo, uint64_t hi)
{
	struct rehold h = { atomic_load_explicit(&u.fd, memory_order_relaxed),
			    lo, hi };
	int saved = errno;
	unsigned int slot;

	if (h.fd < 0)
		return;
	slot = mn__idx_read_begin(&sidx);
	mn__idx_query(&sidx, lo, hi, rehold_one, &h);
	mn__idx_read_end(&sidx, slot);
	errno = saved;
}

/*
 * A discard's system call returns as soon as the reader's read(2) has taken
 * its message — before the reader has compared it with the calls in
 * flight.  A hook that freed its in-flight slot right then would let the
 * kernel's copy through as a late duplicate (seen about once in a few
 * hundred calls on two cores).  So the hook waits here, after its system
 * call and before freeing its slot, for the reader to finish the read that
 * is under way: if the sequence is even no read is under way and the one
 * that took our message (which began before our call returned) is done.
 * The wait is short — the reader's odd section neither blocks nor takes a
 * lock — and async-signal-safe.
 */
void mn__uffd_reader_sync(void)
{
	unsigned int s = atomic_load_explicit(&u.rseq, memory_order_acquire);

	if (!(s & 1))
		return;
	while (atomic_load_explicit(&u.rseq, memory_order_acquire) == s)
		sched_yield();
}

int mn__probe_userfaultfd(char *detail, size_t len)
{
	int err = mn__uffd_prepare();

	snprintf(detail, len, "%s", u.detail);
	return err;
}
