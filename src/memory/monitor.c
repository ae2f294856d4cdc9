/* SPDX-License-Identifier: MIT */
/*
 * The memory-pressure source: turns PSI triggers, cgroup v1
 * memory.pressure_level, cgroup v2 memory.events and adaptive sampling of
 * available memory into LOW / NEUTRAL / HIGH levels.
 *
 * One monitor per (group, parameters) pair, shared by its subscribers
 * through a chain (oldest first).  A monitor's state is touched only on the
 * dispatcher, so it needs no lock; the registry of monitors and their
 * chains' writers are under the core lock.
 *
 * Lifetime: a monitor holds one reference per subscriber plus one for the
 * dispatcher while its fds are armed.  When its last subscriber leaves, a
 * teardown work item disarms it on the dispatcher, so that no batch of
 * epoll events can still point at it, and drops the dispatcher's reference.
 */
#include "monitor.h"

static struct mon *monitors; /* core lock */
static struct mn__fork_hook fork_hook;

/* --- monitor lifetime ---------------------------------------------------- */

/* Drop a reference; the last one frees.  Core lock not held. */
static void mon_put(struct mon *m)
{
	if (atomic_fetch_sub(&m->refs, 1) != 1)
		return;
	mn__chain_destroy(&m->chain);
	free(m->self_cgroup);
	free(m);
}

/* Under the core lock: take @m out of the registry and have the
   dispatcher disarm it. */
/*
 * Monitors retired and not torn down yet: each still holds its fds until
 * the dispatcher runs its teardown.  A program that subscribes and
 * unsubscribes faster than the dispatcher runs would pile them up to
 * EMFILE, so a new monitor waits (bounded) while more than a few are
 * pending — unless it is made on the dispatcher, which must not wait for
 * itself.
 */
#define MAX_DYING 8
static _Atomic unsigned int dying_monitors;

static void wait_for_teardowns(void)
{
	for (int i = 0; i < 1000 && !mn__dispatch_on_thread(); i++) {
		unsigned int n = atomic_load(&dying_monitors);
		struct timespec ts = { 0, 1000 * 1000 };
		if (n <= MAX_DYING)
			return;
		syscall(SYS_futex, &dying_monitors, FUTEX_WAIT_PRIVATE, n, &ts,
			NULL, 0);
	}
}

static void mon_retire(struct mon *m)
{
	atomic_fetch_add(&dying_monitors, 1);
	m->dying = true;
	for (struct mon **pp = &monitors; *pp; pp = &(*pp)->next) {
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	}
	mn__dispatch_post(&m->teardown);
}

static void kick_fn(struct mn__work *w)
{
	struct mon *m = mn__container_of(w, struct mon, kick);

	if (!atomic_exchange(&m->pending_initial, 0))
		return;
	if (atomic_load(&m->failed)) {
		mn__mon_deliver(m, m->level, false, MN_MECH_NONE, m->fail_err);
		return;
	}
	/* A fresh sample for the newcomers; others hear only of changes. */
	mn__mon_evaluate(m, MN_MECH_QUERY, false);
}

static void teardown_fn(struct mn__work *w)
{
	struct mon *m = mn__container_of(w, struct mon, teardown);

	/* In external mode an unsubscription runs this at once, before the
	   initial delivery queued at subscription time (nobody dispatched):
	   take that off the queue, or the queue keeps a pointer into the
	   freed monitor.  Only one thread runs work at a time, so the kick
	   is not running now. */
	mn__lock();
	mn__dispatch_cancel(&m->kick);
	mn__unlock();
	mn__mon_disarm(m);
	mon_put(m); /* the dispatcher's reference */
	atomic_fetch_sub(&dying_monitors, 1);
	syscall(SYS_futex, &dying_monitors, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL,
		NULL, 0);
}

static void memsub_release(struct mn__chain_node *n)
{
	free(mn__container_of(n, struct memsub, sub.node));
}

static struct mn__chain *memsub_unlink(mn_sub *sub, struct mn__chain_removal *rm)
{
	struct memsub *s = mn__container_of(sub, struct memsub, sub);
	struct mon *m = s->mon;

	mn__chain_unlink(&m->chain, &s->sub.node, rm);
	if (mn__chain_count(&m->chain) == 0 && !m->dying)
		mon_retire(m);
	return &m->chain;
}

static void memsub_after(struct mn__chain *chain)
{
	mon_put(mn__container_of(chain, struct mon, chain));
}

static const struct mn__sub_ops memsub_ops = {
	.kind = "memory",
	.unlink = memsub_unlink,
	.after = memsub_after,
};

/* In a fork child, with the core lock held and a new epoll set: the
   inherited fds share kernel state (PSI triggers, eventfd registrations)
   with the parent, so each monitor re-opens its own. */
static void rebuild_after_fork(void)
{
	mn__wheel_after_fork();
	for (struct mon *m = monitors; m; m = m->next) {
		/* The old fds are not in the new epoll set: just close. */
		mn__mon_close_all(m, mn__mon_io_forget);
		int err = mn__mon_arm(m);
		m->level = MN_MEMORY_LEVEL_UNKNOWN;
		if (err < 0)
			mn__mon_mark_failed(m, err);
		m->last_sample_mono = 0;
		/* Every subscriber hears the child's level anew. */
		struct mn__chain_reader rd;
		struct mn__chain_node *n;
		mn__chain_walk_begin(&m->chain, &rd);
		while ((n = mn__chain_walk_next(&rd)))
			atomic_store(&mn__container_of(n, struct memsub,
						       sub.node)->needs_initial,
				     1);
		mn__chain_walk_end(&rd);
		m->initial_done = 0;
		atomic_store(&m->pending_initial, 1);
		mn__dispatch_post(&m->kick);
	}
}

static struct mon *mon_new(const struct params *p)
{
	struct mon *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->p = *p;
	mn__chain_init(&m->chain, MN__CHAIN_OLDEST_FIRST);
	atomic_init(&m->refs, 1); /* the dispatcher's */
	m->kick.fn = kick_fn;
	m->teardown.fn = teardown_fn;
	m->teardown.anywhere = true;
	m->tick.fire = mn__mon_on_tick;
	mn__mon_io_init(&m->psi_io, mn__mon_on_psi);
	mn__mon_io_init(&m->oom_io, mn__mon_on_v1_oom);
	for (int i = 0; i < MN__CG_MAX_LEVELS; i++) {
		struct mon_lvl *l = &m->lv[i];
		l->m = m;
		mn__mon_io_init(&l->pl_low_io, mn__mon_on_pl_low);
		mn__mon_io_init(&l->pl_crit_io, mn__mon_on_pl_crit);
		mn__mon_io_init(&l->thr_io, mn__mon_on_thr);
		mn__mon_io_init(&l->events_io, mn__mon_on_v2_events);
	}
	m->sampler.meminfo_fd = m->sampler.psi_fd = -1;
	return m;
}

/* Core lock: the monitor @s joins — shared with the subscribers of the
   same parameters, or a new one armed for it. */
static struct mn__chain *memsub_attach(mn_sub *sub, void *arg, int *err)
{
	struct memsub *s = mn__container_of(sub, struct memsub, sub);
	const struct params *p = arg;
	struct mon *m;

	if (!fork_hook.rebuild) {
		fork_hook.rebuild = rebuild_after_fork;
		mn__fork_hook_register(&fork_hook);
	}
	if ((*err = mn__dispatch_ensure()))
		return NULL;
	/* A failed monitor (its group vanished) is not reused: the group may
	   have been made again. */
	for (m = monitors; m; m = m->next)
		if (!m->dying && !atomic_load(&m->failed) && mn__mon_same_params(&m->p, p))
			break;
	if (!m) {
		if (!(m = mon_new(p))) {
			*err = -ENOMEM;
			return NULL;
		}
		m->next = monitors;
		monitors = m;
		if ((*err = mn__mon_arm(m))) {
			mon_retire(m);
			return NULL;
		}
	}
	s->mon = m;
	s->join = ++m->joins;
	return &m->chain;
}

static void memsub_undo(mn_sub *sub, void *arg)
{
	struct mon *m = mn__container_of(sub, struct memsub, sub)->mon;

	(void)arg;
	if (mn__chain_count(&m->chain) == 0)
		mon_retire(m); /* a new monitor nobody uses */
}

static void memsub_joined(mn_sub *sub, void *arg)
{
	struct mon *m = mn__container_of(sub, struct memsub, sub)->mon;

	(void)arg;
	atomic_fetch_add(&m->refs, 1); /* the subscriber's */
	atomic_store(&m->pending_initial, 1);
	mn__dispatch_post(&m->kick);
}

int mn_memory_subscribe(const struct mn_memory_opts *opts, mn_memory_cb cb,
			void *ctx, mn_sub **out)
{
	struct params p;
	struct memsub *s;
	int err;

	mn__check(cb && out, -EINVAL);
	*out = NULL;
	mn__check_unlocked();
	mn__enter();
	err = mn__mon_make_params(opts, &p);
	if (err)
		return err;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cb = cb;
	s->ctx = ctx;
	s->sub.node.release = memsub_release;
	s->sub.lane.run = mn__mon_memsub_run;
	atomic_init(&s->needs_initial, 1);
	/* Probes and the dispatcher's thread run with no lock held. */
	mn__cap_supported(MN_CAP_PSI_TRIGGER);
	err = mn__dispatch_start();
	if (err) {
		free(s);
		return err;
	}
	wait_for_teardowns();
	const struct mn__sub_spec spec = {
		.ops = &memsub_ops, .attach = memsub_attach,
		.undo = memsub_undo, .joined = memsub_joined, .arg = &p,
	};
	if ((err = mn__sub_add(&s->sub, &spec)))
		return err;
	mn__dispatch_start(); /* a concurrent mn_shutdown() stopped it */
	*out = &s->sub;
	return 0;
}

/* The size of struct mn_memory_status in the first release (up to
   high_bytes): a caller built against that header passes this sz, and gets
   that much filled in. */
#define STATUS_SZ_0_1 (offsetof(struct mn_memory_status, high_bytes) + \
		       sizeof(uint64_t))

int mn_memory_status(const struct mn_memory_opts *opts,
		     struct mn_memory_status *out)
{
	struct mn_memory_status st = { .sz = sizeof(st) };
	struct mn__sampler smp;
	struct params p;
	int err;

	mn__check(out && out->sz >= STATUS_SZ_0_1, -EINVAL);
	mn__enter();
	err = mn__mon_make_params(opts, &p);
	if (err)
		return err;
	err = mn__sampler_open(&smp, &p.cg);
	if (err)
		return err;
	err = mn__sampler_read(&smp, &st, mn__now_mono_usec());
	mn__sampler_close(&smp);
	if (err)
		return err;
	struct mn__thresholds t;
	mn__mon_thresholds(&p, st.limit_bytes, &t);
	/* One sample measures no refaults: the page-cache rule holds any LOW
	   that only active file pages make off (see mn_memory_subscribe). */
	st.level = p.flags & MN_MEMORY_COUNT_ACTIVE_FILE ||
				   p.cg.version == MN_CGROUP_NONE ||
				   !smp.has_refaults
			   ? mn__level_step(&t, MN_MEMORY_LEVEL_UNKNOWN,
					    st.available_bytes)
			   : mn__level_step_cache(&t, MN_MEMORY_LEVEL_UNKNOWN,
						  st.available_bytes,
						  smp.avail_active, false);
	st.mechanism = MN_MECH_QUERY;
	st.low_percent = p.low;
	st.high_percent = p.high;
	st.low_bytes = t.low;
	st.high_bytes = t.high;
	/* An older caller's smaller struct gets its part. */
	st.sz = MN__MIN(out->sz, sizeof(st));
	memcpy(out, &st, st.sz);
	return 0;
}

/* The C++-friendly name: the same function. */
extern __typeof__(mn_memory_status) mn_get_memory_status
	__attribute__((alias("mn_memory_status")));
