/* SPDX-License-Identifier: MIT */
/*
 * The dispatcher: one epoll set that every source adds its fds to, run
 * either by memnotify's own thread or by the application's loop through
 * mn_dispatch_fd() / mn_dispatch().  Sources read their kernel objects
 * here; the callbacks of subscriptions with a delivery lane (see core.h)
 * run on delivery threads, so that a slow subscriber holds up nobody else.
 *
 * The delivery rule (thread mode).  Ready lanes wait in one FIFO queue;
 * delivery threads take them one at a time.  The dispatcher watches the
 * queue: when a lane has waited SLOW_USEC and no delivery thread is idle
 * (each is inside a callback), it starts another one (up to MAX_RUNNERS;
 * they stay until mn_shutdown()).  So a callback that does not return
 * delays the others by about SLOW_USEC plus a thread start, and itself
 * gets, when it returns, only what its source merged for it meanwhile.
 * In external mode the mn_dispatch() caller runs the ready lanes after
 * each batch: the application owns that one thread, a slow callback holds
 * it up, and the merging still applies.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core.h"

#define MN__EPOLL_BATCH 32
/* A ready lane that waited this long while every delivery thread was busy
   gets a new delivery thread. */
#define SLOW_USEC 10000u
#define MAX_RUNNERS 16

/* Lane flags (lane lock). */
#define LANE_QUEUED 1u
#define LANE_RUNNING 2u
#define LANE_AGAIN 4u   /* made ready while running */
#define LANE_CLOSED 8u  /* unsubscribed: never starts again */
#define LANE_ORPHAN 16u /* released while running: its runner frees it */

static pthread_mutex_t lane_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	pthread_cond_t work;            /* a lane is queued, or stop */
	pthread_cond_t done;            /* a lane stopped running */
	struct mn__lane *head, *tail;
	struct runner {
		pthread_t t;
		struct mn__lane *cur;   /* the lane it runs now */
		bool used;
	} r[MAX_RUNNERS];
	unsigned int n_runners, idle;
	bool spawning, stop;
} q = { .work = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER };
static __thread struct mn__lane *tls_lane;

__attribute__((constructor)) static void lanes_init(void)
{
	mn__lock_register(&lane_lock, MN__RANK_LEAF);
}

static struct {
	enum mn_dispatch_mode mode;
	int epfd;
	int wakefd;
	struct mn__io wake_io;
	pthread_t thread;
	bool thread_running;
	bool thread_starting;              /* being created, lock not held */
	_Atomic bool stop;
	_Atomic int dispatching;           /* someone is inside run_once() */
	struct mn__work *work_head, *work_tail; /* under the core lock */
	_Atomic int sigwakefd;             /* see wake_async, mn_shutdown */
	_Atomic int sigwake_users;         /* handlers writing to it now */
	struct mn__io sigwake_io;
	struct mn__async_hook *hooks;      /* under the core lock */
	_Atomic unsigned int generation;
} d = { .mode = MN_DISPATCH_THREAD, .epfd = -1, .wakefd = -1,
	.sigwakefd = -1 };

static __thread bool tls_on_dispatcher;
static struct mn__shutdown_hook *shutdown_hooks; /* core lock */

bool mn__dispatch_on_thread(void)
{
	return tls_on_dispatcher || tls_lane;
}

static void wake(void)
{
	uint64_t one = 1;

	/* write(2) on an eventfd: async-signal-safe; EAGAIN means the
	   counter is already non-zero, which is as good as a wakeup. */
	if (d.wakefd >= 0 && write(d.wakefd, &one, sizeof(one)) < 0 &&
	    errno != EAGAIN)
		mn__count(source_errors, 1);
}

static void wake_ready(struct mn__io *io, uint32_t events)
{
	uint64_t v;

	(void)events;
	if (read(io->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		mn__count(source_errors, 1);
}

/* --- delivery lanes ------------------------------------------------------ */

void mn__lane_lock(void)
{
	pthread_mutex_lock(&lane_lock);
}

void mn__lane_unlock(void)
{
	pthread_mutex_unlock(&lane_lock);
}

static void enqueue(struct mn__lane *l)
{
	l->flags |= LANE_QUEUED;
	l->next = NULL;
	l->ready_usec = mn__now_mono_usec();
	if (q.tail)
		q.tail->next = l;
	else
		q.head = l;
	q.tail = l;
}

static void dequeue(struct mn__lane *l)
{
	struct mn__lane *prev = NULL;

	for (struct mn__lane *x = q.head; x; prev = x, x = x->next) {
		if (x != l)
			continue;
		if (prev)
			prev->next = l->next;
		else
			q.head = l->next;
		if (q.tail == l)
			q.tail = prev;
		break;
	}
	l->next = NULL;
	l->flags &= ~LANE_QUEUED;
}

void mn__lane_ready(struct mn__lane *l)
{
	if (l->flags & LANE_CLOSED)
		return;
	if (l->flags & LANE_RUNNING) {
		l->flags |= LANE_AGAIN;
		return;
	}
	if (l->flags & LANE_QUEUED)
		return;
	enqueue(l);
	if (q.idle)
		pthread_cond_signal(&q.work);
	else if (!tls_on_dispatcher)
		wake(); /* thread mode: the dispatcher decides on a new
		           delivery thread; external: the fd becomes readable */
}

void mn__lane_close(struct mn__lane *l)
{
	mn__lane_lock();
	l->flags |= LANE_CLOSED;
	if (l->flags & LANE_QUEUED)
		dequeue(l);
	mn__lane_unlock();
}

void mn__lane_wait_idle(struct mn__lane *l)
{
	/* A callback must not wait for a callback (it may be its own, or
	   one that waits for it): the release then hands the free to the
	   runner (mn__lane_release). */
	if (tls_lane || mn__chain_in_any_walk())
		return;
	mn__lane_lock();
	while (l->flags & LANE_RUNNING)
		pthread_cond_wait(&q.done, &lane_lock);
	mn__lane_unlock();
}

bool mn__lane_release(struct mn__lane *l)
{
	bool now = true;

	mn__lane_lock();
	if (l->flags & LANE_QUEUED)
		dequeue(l);
	if (l->flags & LANE_RUNNING) {
		l->flags |= LANE_ORPHAN;
		now = false;
	}
	mn__lane_unlock();
	return now;
}

/* Lane lock held, and held again on return: run @l's callback on this
   thread with no lock held.  *@cur names it while it runs (fork). */
static void run_lane(struct mn__lane *l, struct mn__lane **cur)
{
	l->flags = (l->flags & ~(LANE_QUEUED | LANE_AGAIN)) | LANE_RUNNING;
	*cur = l;
	mn__lane_unlock();
	tls_lane = l;
	l->run(l);
	tls_lane = NULL;
	mn__lane_lock();
	*cur = NULL;
	l->flags &= ~LANE_RUNNING;
	if (l->flags & LANE_ORPHAN) {
		/* Unsubscribed and released while it ran: free it now. */
		mn_sub *sub = mn__container_of(l, mn_sub, lane);
		mn__lane_unlock();
		sub->release(&sub->node);
		mn__lane_lock();
	} else if ((l->flags & (LANE_AGAIN | LANE_CLOSED)) == LANE_AGAIN) {
		enqueue(l);
	}
	pthread_cond_broadcast(&q.done);
}

static struct mn__lane *pop(void)
{
	struct mn__lane *l = q.head;

	if (l)
		dequeue(l);
	return l;
}

static void *runner_main(void *arg)
{
	struct runner *me = arg;
	struct mn__lane *l;

	/* Named before the first callback (a new thread has its creator's
	   name until then). */
	pthread_setname_np(pthread_self(), "memnotify-cb");
	mn__lane_lock();
	while (!q.stop) {
		if ((l = pop())) {
			run_lane(l, &me->cur);
			continue;
		}
		q.idle++;
		pthread_cond_wait(&q.work, &lane_lock);
		q.idle--;
	}
	mn__lane_unlock();
	return NULL;
}

/* The dispatcher thread, no lock held: start a delivery thread when a
   lane waits with every delivery thread busy.  Returns the epoll timeout
   for the next wait (ms, -1: none). */
static int lanes_watch(void)
{
	struct runner *slot = NULL;
	sigset_t all, old;
	int timeout = -1, err;

	mn__lane_lock();
	if (q.head && !q.idle && !q.spawning && q.n_runners < MAX_RUNNERS) {
		if (q.n_runners == 0 ||
		    mn__now_mono_usec() - q.head->ready_usec >= SLOW_USEC) {
			for (unsigned int i = 0; i < MAX_RUNNERS && !slot; i++)
				if (!q.r[i].used)
					slot = &q.r[i];
			slot->used = q.spawning = true;
		} else {
			timeout = (int)(SLOW_USEC / 1000);
		}
	}
	mn__lane_unlock();
	if (!slot)
		return timeout;
	/* Unlocked: a new thread maps its stack, which the range hooks
	   report to listeners that may call any mn_* function. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&slot->t, NULL, runner_main, slot);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	mn__lane_lock();
	q.spawning = false;
	if (err) {
		slot->used = false;
		mn__count(source_errors, 1);
	} else {
		q.n_runners++;
	}
	timeout = q.head ? (int)(SLOW_USEC / 1000) : -1;
	mn__lane_unlock();
	return timeout;
}

/* External mode, on the mn_dispatch() caller: run what is ready now (a
   lane made ready again while it runs waits for the next call). */
static void lanes_run_here(void)
{
	static struct mn__lane *cur; /* one dispatching thread at a time */
	struct mn__lane *l, *last;

	mn__lane_lock();
	last = q.tail;
	while ((l = pop())) {
		run_lane(l, &cur);
		if (l == last)
			break;
	}
	if (q.head)
		wake(); /* the rest at the next call */
	mn__lane_unlock();
}

/* mn_shutdown(), no lock held: stop and join the delivery threads. */
static void lanes_stop(void)
{
	mn__lane_lock();
	q.stop = true;
	pthread_cond_broadcast(&q.work);
	mn__lane_unlock();
	for (unsigned int i = 0; i < MAX_RUNNERS; i++) {
		if (!q.r[i].used)
			continue;
		pthread_join(q.r[i].t, NULL);
		q.r[i].used = false;
	}
	mn__lane_lock();
	q.n_runners = q.idle = 0;
	q.stop = false;
	mn__lane_unlock();
}

/* In a fork child (core lock held): the delivery threads stayed in the
   parent.  A lane one of them was running is runnable again; an orphan
   (released meanwhile) is freed. */
static void lanes_after_fork(void)
{
	struct mn__lane *orphans[MAX_RUNNERS];
	unsigned int n_orphans = 0;

	mn__lane_lock();
	pthread_cond_init(&q.work, NULL);
	pthread_cond_init(&q.done, NULL);
	for (unsigned int i = 0; i < MAX_RUNNERS; i++) {
		struct mn__lane *l = q.r[i].cur;
		q.r[i].used = false;
		q.r[i].cur = NULL;
		if (!l)
			continue;
		l->flags &= ~LANE_RUNNING;
		if (l->flags & LANE_ORPHAN)
			orphans[n_orphans++] = l;
		else if ((l->flags & (LANE_AGAIN | LANE_CLOSED)) == LANE_AGAIN)
			enqueue(l);
	}
	q.n_runners = q.idle = 0;
	q.spawning = q.stop = false;
	mn__lane_unlock();
	/* Freed without the lane lock: free() may unmap, which the range
	   hooks report to callbacks. */
	for (unsigned int i = 0; i < n_orphans; i++) {
		mn_sub *sub = mn__container_of(orphans[i], mn_sub, lane);
		sub->release(&sub->node);
	}
}

void mn__dispatch_wake_async(void)
{
	uint64_t one = 1;
	int saved = errno, fd;

	/* Async-signal-safe: one write(2), counted in sigwake_users so that
	   mn_shutdown() closes the eventfd only when no handler can still
	   write to its number.  EAGAIN (counter saturated) is still a
	   pending wakeup. */
	atomic_fetch_add(&d.sigwake_users, 1);
	fd = atomic_load_explicit(&d.sigwakefd, memory_order_acquire);
	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		mn__count(source_errors, 1);
	atomic_fetch_sub(&d.sigwake_users, 1);
	errno = saved;
}

unsigned int mn__dispatch_generation(void)
{
	return atomic_load(&d.generation);
}

void mn__async_hook_register(struct mn__async_hook *h)
{
	h->next = d.hooks;
	d.hooks = h;
}

static void sigwake_ready(struct mn__io *io, uint32_t events)
{
	struct mn__async_hook *h;
	uint64_t v;

	(void)events;
	if (read(io->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		mn__count(source_errors, 1);
	mn__lock();
	h = d.hooks;
	mn__unlock();
	/* Hooks are only ever added, at the head: walking from a head read
	   under the lock is safe without it. */
	for (; h; h = h->next)
		h->fn();
	mn__sub_process_deferred();
}

/* Create the signal wake eventfd once (core lock held). */
static int sigwake_create(void)
{
	int fd;

	if (atomic_load(&d.sigwakefd) >= 0)
		return 0;
	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	d.sigwake_io.fd = fd;
	d.sigwake_io.ready = sigwake_ready;
	atomic_store_explicit(&d.sigwakefd, fd, memory_order_release);
	return 0;
}

static void run_work(void)
{
	struct mn__work *w;

	for (;;) {
		mn__lock();
		w = d.work_head;
		if (w) {
			d.work_head = w->next;
			if (!d.work_head)
				d.work_tail = NULL;
			w->next = NULL;
			w->queued = false;
		}
		mn__unlock();
		if (!w)
			break;
		w->fn(w); /* may free w */
	}
}

void mn__dispatch_run_detached(void)
{
	struct mn__work *w, **pp, *mine = NULL;
	int expected = 0;

	if (tls_on_dispatcher || d.mode != MN_DISPATCH_EXTERNAL ||
	    !atomic_compare_exchange_strong(&d.dispatching, &expected, 1))
		return;
	mn__lock();
	for (pp = &d.work_head, d.work_tail = NULL; (w = *pp);) {
		if (w->anywhere) {
			*pp = w->next;
			w->queued = false;
			w->next = mine;
			mine = w;
		} else {
			d.work_tail = w;
			pp = &w->next;
		}
	}
	mn__unlock();
	tls_on_dispatcher = true;
	while ((w = mine)) {
		mine = w->next;
		w->next = NULL;
		w->fn(w); /* may free w */
	}
	tls_on_dispatcher = false;
	atomic_store(&d.dispatching, 0);
}

static int run_once(int timeout_ms)
{
	struct epoll_event ev[MN__EPOLL_BATCH];
	int n = epoll_wait(d.epfd, ev, MN__EPOLL_BATCH, timeout_ms);

	if (n < 0)
		return -errno;
	mn__count(wakeups, 1);
	for (int i = 0; i < n; i++) {
		struct mn__io *io = ev[i].data.ptr;
		io->ready(io, ev[i].events);
	}
	run_work();
	return n;
}

static void *thread_main(void *arg)
{
	int timeout = -1;

	(void)arg;
	tls_on_dispatcher = true;
	while (!atomic_load(&d.stop)) {
		int r = run_once(timeout);
		timeout = lanes_watch();
		if (r < 0 && r != -EINTR) {
			mn__err("dispatcher: epoll_wait: %s", strerror(-r));
			break;
		}
	}
	tls_on_dispatcher = false;
	return NULL;
}

static int start_thread(void)
{
	sigset_t all, old;
	int err;

	/* The library thread takes no process signals: block them all while
	   creating it so it inherits a full mask. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	atomic_store(&d.stop, false);
	err = pthread_create(&d.thread, NULL, thread_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return -err;
	pthread_setname_np(d.thread, "memnotify");
	return 0;
}

/* Core lock held: the epoll set and its eventfds.  Never a thread: see
   mn__dispatch_start(). */
int mn__dispatch_ensure(void)
{
	struct epoll_event ev = { .events = EPOLLIN };

	if (d.epfd >= 0)
		return 0;
	d.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d.epfd < 0)
		return -errno;
	atomic_fetch_add(&d.generation, 1);
	d.wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d.wakefd < 0) {
		int err = -errno;
		close(d.epfd);
		d.epfd = -1;
		return err;
	}
	d.wake_io.fd = d.wakefd;
	d.wake_io.ready = wake_ready;
	ev.data.ptr = &d.wake_io;
	if (epoll_ctl(d.epfd, EPOLL_CTL_ADD, d.wakefd, &ev) < 0 ||
	    sigwake_create() < 0 ||
	    (ev.data.ptr = &d.sigwake_io,
	     epoll_ctl(d.epfd, EPOLL_CTL_ADD, d.sigwake_io.fd, &ev) < 0)) {
		int err = errno ? -errno : -ENOMEM;
		close(d.wakefd);
		close(d.epfd);
		d.wakefd = d.epfd = -1;
		return err;
	}
	return 0;
}

/*
 * Without any memnotify lock: make sure the epoll set exists and, in
 * thread mode, that memnotify's thread runs.  The thread is created with
 * no lock held: creating it maps and protects a stack, which the range
 * hooks report synchronously to listeners that may call any mn_* function.
 */
int mn__dispatch_start(void)
{
	bool want;
	int err;

	mn__lock();
	err = mn__dispatch_ensure();
	want = !err && d.mode == MN_DISPATCH_THREAD && !d.thread_running &&
	       !d.thread_starting;
	if (want)
		d.thread_starting = true;
	mn__unlock();
	if (!want)
		return err;
	err = start_thread();
	mn__lock();
	d.thread_starting = false;
	if (!err)
		d.thread_running = true;
	mn__unlock();
	return err;
}

int mn__dispatch_add(struct mn__io *io, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	if (d.epfd < 0)
		return -EBADF;
	if (epoll_ctl(d.epfd, EPOLL_CTL_ADD, io->fd, &ev) < 0)
		return -errno;
	return 0;
}

void mn__dispatch_del(struct mn__io *io)
{
	if (d.epfd >= 0 && io->fd >= 0)
		epoll_ctl(d.epfd, EPOLL_CTL_DEL, io->fd, NULL);
}

void mn__dispatch_post(struct mn__work *w)
{
	if (!w->queued) {
		w->queued = true;
		w->next = NULL;
		if (d.work_tail)
			d.work_tail->next = w;
		else
			d.work_head = w;
		d.work_tail = w;
	}
	wake();
}

void mn__dispatch_cancel(struct mn__work *w)
{
	struct mn__work *prev = NULL;

	if (!w->queued)
		return;
	for (struct mn__work *x = d.work_head; x; prev = x, x = x->next) {
		if (x != w)
			continue;
		if (prev)
			prev->next = w->next;
		else
			d.work_head = w->next;
		if (d.work_tail == w)
			d.work_tail = prev;
		break;
	}
	w->next = NULL;
	w->queued = false;
}

int mn__dispatch_rebuild_after_fork(void)
{
	/* The child inherited copies of the parent's epoll and eventfd, which
	   share kernel state with the parent: drop them and start afresh.
	   The parent's thread does not exist here. */
	if (d.epfd >= 0)
		close(d.epfd);
	if (d.wakefd >= 0)
		close(d.wakefd);
	d.epfd = d.wakefd = -1;
	d.thread_running = d.thread_starting = false;
	atomic_store(&d.dispatching, 0);
	lanes_after_fork();
	/* The signal wake eventfd is shared with the parent: put a fresh one
	   at the same number, so that a handler's cached number stays right. */
	if (atomic_load(&d.sigwakefd) >= 0) {
		int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fd >= 0) {
			dup3(fd, d.sigwake_io.fd, O_CLOEXEC);
			close(fd);
		}
	}
	if (mn__sub_count() == 0)
		return 0;
	return mn__dispatch_ensure(); /* the thread: mn__enter(), unlocked */
}

int mn_dispatch_configure(const struct mn_dispatch_opts *opts)
{
	enum mn_dispatch_mode mode;
	int err = 0;

	mn__check(MN__OPTS_VALID(opts, mn_dispatch_opts), -EINVAL);
	mode = MN__OPTS_GET(opts, mn_dispatch_opts, mode, MN_DISPATCH_THREAD);
	mn__check(mode == MN_DISPATCH_THREAD || mode == MN_DISPATCH_EXTERNAL,
		  -EINVAL);
	mn__check_unlocked();
	mn__enter();
	mn__lock();
	if (mode != d.mode && (d.thread_running || d.epfd >= 0))
		err = -EBUSY;
	else
		d.mode = mode;
	mn__unlock();
	return err;
}

int mn_dispatch_fd(void)
{
	int ret;

	mn__check_unlocked();
	mn__enter();
	mn__lock();
	if (d.mode != MN_DISPATCH_EXTERNAL)
		ret = -EINVAL;
	else
		ret = mn__dispatch_ensure();
	if (ret == 0)
		ret = d.epfd;
	mn__unlock();
	return ret;
}

int mn_dispatch(int timeout_ms)
{
	int expected = 0;
	int ret;

	mn__check(timeout_ms >= -1, -EINVAL);
	mn__check_unlocked();
	mn__enter();
	if (tls_on_dispatcher)
		return -EBUSY;
	mn__lock();
	if (d.mode != MN_DISPATCH_EXTERNAL)
		ret = -EINVAL;
	else
		ret = mn__dispatch_ensure();
	mn__unlock();
	if (ret < 0)
		return ret;
	if (!atomic_compare_exchange_strong(&d.dispatching, &expected, 1))
		return -EBUSY;
	tls_on_dispatcher = true;
	ret = run_once(timeout_ms);
	tls_on_dispatcher = false;
	if (ret >= 0)
		lanes_run_here();
	atomic_store(&d.dispatching, 0);
	return ret;
}

int mn_shutdown(void)
{
	struct mn__shutdown_hook *h;
	int sfd;

	mn__check_unlocked();
	mn__enter();
	if (tls_on_dispatcher || tls_lane || mn__chain_in_any_walk())
		return -EBUSY;
	mn__lock();
	if (mn__sub_count() > 0 || d.thread_starting) {
		mn__unlock();
		return -EBUSY;
	}
	if (d.thread_running) {
		pthread_t t = d.thread;
		atomic_store(&d.stop, true);
		wake();
		mn__unlock();
		pthread_join(t, NULL);
		mn__lock();
		d.thread_running = false;
	}
	h = shutdown_hooks;
	mn__unlock();
	lanes_stop();
	mn__lock();
	mn__unlock();
	/* Teardowns queued by the last unsubscriptions. */
	run_work();
	/* Each source stops its threads and closes its fds, unlocked (a
	   thread it joins may be waiting for the core lock). */
	for (; h; h = h->next)
		h->fn();
	mn__lock();
	if (d.epfd >= 0)
		close(d.epfd);
	if (d.wakefd >= 0)
		close(d.wakefd);
	d.epfd = d.wakefd = -1;
	d.mode = MN_DISPATCH_THREAD;
	/* The signal wake eventfd last: no handler may write to the number
	   once it is closed and maybe reused, so wait out those in flight. */
	sfd = atomic_exchange(&d.sigwakefd, -1);
	mn__unlock();
	if (sfd >= 0) {
		while (atomic_load(&d.sigwake_users))
			sched_yield();
		close(sfd);
	}
	return 0;
}

void mn__shutdown_hook_register(struct mn__shutdown_hook *hk)
{
	hk->next = shutdown_hooks;
	shutdown_hooks = hk;
}
