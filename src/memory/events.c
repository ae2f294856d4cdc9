/* SPDX-License-Identifier: MIT */
/* Sampling, the level rule, dwell, backoff, following the process, and the handlers of the kernel events.  (see monitor.h) */
#include "monitor.h"

/* v1: the group's oom_kill count from memory.oom_control (read rarely:
   opened each time).  Return 0 or -errno. */
int mn__mon_v1_read_oom_kills(const struct mon *m, uint64_t *out)
{
	char path[MN__CG_PATH_MAX + 64];
	char *buf = NULL;
	size_t n;
	int err;

	snprintf(path, sizeof(path), "%s/memory.oom_control", m->p.cg.path);
	err = mn__read_file_alloc(path, &buf, &n);
	if (!err && mn__parse_keyed(buf, n, "oom_kill", out) < 0)
		*out = 0; /* kernels before 4.13 have no count */
	free(buf);
	return err;
}

/* After a v1 OOM notification the kill itself may come a moment later:
   the next few samples re-read the count and report a rise. */
static void v1_oom_recheck(struct mon *m)
{
	uint64_t kills;

	if (m->oom_recheck <= 0)
		return;
	m->oom_recheck--;
	if (mn__mon_v1_read_oom_kills(m, &kills) == 0 && kills > m->oom_kills) {
		m->oom_kills = kills;
		mn__mon_deliver_oom(m, MN_MECH_CGROUP_V1_OOM);
	}
}


/* Arm the one-shot sampling timer; a delay of 0 disarms it. */
static void arm_timer(struct mon *m, uint64_t delay_usec)
{
	mn__wheel_set(&m->tick, delay_usec);
}

/* The available memory the level was decided on: with the page-cache
   rule holding LOW off, the figure that counts active file pages free. */
static uint64_t decided_avail(const struct mon *m)
{
	return m->cache_held ? m->sampler.avail_active
			     : m->last.available_bytes;
}

/* A held change is looked at again when the dwell ends. */
static uint64_t dwell_wait(const struct mon *m, uint64_t now)
{
	uint64_t end = m->level_since + (uint64_t)m->p.dwell_ms * 1000;

	if (!m->dwell_held)
		return UINT64_MAX;
	return end > now ? end - now + 1000 : 1000;
}

/* Is every limited level's usage below its "high" usage threshold, each
   armed?  Then available memory is at least high% at every level whatever
   the page cache does, and the kernel will say when that changes. */
static bool below_usage_thresholds(const struct mon *m)
{
	const struct mn__sampler *s = &m->sampler;
	bool any = false;

	for (int i = 0; i < s->n_levels; i++) {
		if (!mn__level_limited(s, i, m->last.physical_bytes))
			continue;
		if (!m->lv[i].thr_armed || s->lv[i].raw_usage >= m->lv[i].thr_hi)
			return false;
		any = true;
	}
	return any;
}

/* How long until the next sample (0: no sample is needed): the time a fill
   at the fastest rate we believe in would need to reach the nearest
   threshold (earlyoom's rule), within the poll bounds. */
static uint64_t next_interval_usec(const struct mon *m, uint64_t now)
{
	const struct params *p = &m->p;
	uint64_t limit = m->last.limit_bytes, avail = decided_avail(m);
	struct mn__thresholds t;
	uint64_t lo, hi;
	uint64_t dist, rate, usec;
	uint64_t min_us = (uint64_t)p->poll_min_ms * 1000;
	uint64_t max_us = (uint64_t)p->poll_max_ms * 1000;

	mn__mon_thresholds(p, limit, &t);
	lo = t.low;
	hi = t.high;
	if (p->flags & MN_MEMORY_NO_POLL) {
		/* No samples: the end of a pressure hold or a dwell, and the
		   limit check (limit_check()) on the poll_max grid of the
		   monotonic clock, where every events-only watch with the
		   same poll_max_ms comes due at once: one wakeup for all.
		   A machine-wide watch has no limit to check. */
		bool check = p->cg.version != MN_CGROUP_NONE || p->own;
		usec = check ? max_us - now % max_us : UINT64_MAX;
		if (m->hold_low_until > now)
			usec = MN__MIN(usec, m->hold_low_until - now);
		usec = MN__MIN(usec, dwell_wait(m, now));
		return usec == UINT64_MAX ? 0 : usec;
	}
	/* Below the usage threshold the kernel will tell us when usage
	   rises: available memory is at least high% whatever the page cache
	   does, so nothing can change before that event. */
	if (below_usage_thresholds(m)) {
		usec = max_us;
		if (m->hold_low_until > now)
			usec = MN__MIN(usec, m->hold_low_until - now);
		return MN__MIN(usec, dwell_wait(m, now));
	}
	dist = avail > lo ? avail - lo : lo - avail;
	dist = MN__MIN(dist, avail > hi ? avail - hi : hi - avail);
	rate = MN__MAX((uint64_t)m->fill_rate, ASSUMED_FILL_BYTES_PER_SEC);
	usec = (uint64_t)((double)dist / (double)rate * 1e6);
	usec = MN__MIN(MN__MAX(MN__MAX(usec, min_us), m->backoff_us), max_us);
	if (m->hold_low_until > now)
		usec = MN__MIN(usec, m->hold_low_until - now);
	return MN__MIN(usec, dwell_wait(m, now));
}

/* Kernel events that bring a backed-off watch back: PSI, v1 pressure
   levels and usage thresholds, v2 memory.events. */
#define WAKING_MECHS                                                        \
	(MN_MECH_PSI | MN_MECH_CGROUP_V1_PRESSURE | MN_MECH_CGROUP_V2_EVENTS | \
	 MN_MECH_CGROUP_V1_THRESHOLD)

/*
 * Steady state: a sample at the same level whose available memory moved by
 * at most 1 % of the limit since the previous one doubles the sampling
 * interval, up to poll_max_ms; any other sample starts again from the
 * distance rule.  Only where a kernel event can wake the watch: a fill that
 * starts while backed off crosses a usage threshold, stalls (PSI) or
 * reclaims (pressure level, memory.events) before it can matter.
 */
static void update_backoff(struct mon *m, enum mn_memory_level prev,
			   uint64_t prev_avail, bool had_sample)
{
	uint64_t avail = decided_avail(m);
	uint64_t moved = avail > prev_avail ? avail - prev_avail : prev_avail - avail;
	uint64_t max_us = (uint64_t)m->p.poll_max_ms * 1000;
	bool steady = had_sample && m->level == prev &&
		      moved <= m->last.limit_bytes / 100 &&
		      (m->mechanisms & WAKING_MECHS);

	m->backoff_us = steady ? MN__MIN(MN__MAX(m->backoff_us, m->interval_us) * 2,
					 max_us)
			       : 0;
}

/*
 * The watch failed with @err: its status from now on says only what is
 * true at the failure — the failure's time, level UNKNOWN, no figures of
 * a sample taken up to a poll interval before (the group, the machine's
 * memory and the error remain).  Returns the level it had.
 */
enum mn_memory_level mn__mon_mark_failed(struct mon *m, int err)
{
	enum mn_memory_level prev = m->level;
	struct mn_memory_status *st = &m->last;
	uint64_t physical = st->physical_bytes;

	m->fail_err = err;
	memset(st, 0, sizeof(*st));
	st->sz = sizeof(*st);
	st->time_usec = mn__now_real_usec();
	st->physical_bytes = physical;
	st->cgroup_version = m->p.cg.version;
	snprintf(st->cgroup_path, sizeof(st->cgroup_path), "%s", m->p.cg.path);
	m->level = MN_MEMORY_LEVEL_UNKNOWN;
	atomic_store(&m->failed, true);
	return prev;
}

static void fail(struct mon *m, int err)
{
	if (atomic_load(&m->failed))
		return;
	enum mn_memory_level prev = mn__mon_mark_failed(m, err);
	mn__warn("memory: %s: %s; the watch stops",
		 m->p.cg.path[0] ? m->p.cg.path : "system", mn_strerror(err));
	mn__mon_disarm(m);
	mn__mon_deliver(m, prev, false, MN_MECH_NONE, err);
}


/* Has /proc/self/cgroup changed since the last look?  Keeps the content. */
static bool self_cgroup_changed(struct mon *m)
{
	char *buf = NULL;
	size_t n;

	if (mn__read_file_alloc("/proc/self/cgroup", &buf, &n) < 0)
		return false;
	bool changed = !m->self_cgroup || n != m->self_cgroup_len ||
		       memcmp(buf, m->self_cgroup, n);
	free(m->self_cgroup);
	m->self_cgroup = buf;
	m->self_cgroup_len = n;
	return changed;
}

/*
 * The own group follows the process: when /proc/self/cgroup changed (looked
 * at once per poll_max_ms, and at once when the group vanished: @gone),
 * resolve the group again and, if it is another, re-arm the watch on it;
 * the next delivery then says MN_MEMORY_MOVED to every subscriber.  Returns
 * 1 if the watch moved, 0 if not, -errno if the new group cannot be
 * watched.  On the dispatcher.
 */
static int follow_process(struct mon *m, uint64_t now, bool gone)
{
	struct mn__cgroup cg;
	int err;

	m->self_checked = now;
	if (!self_cgroup_changed(m) && !gone)
		return 0;
	mn__cgroup_self(&cg);
	if (cg.version == m->p.cg.version && !strcmp(cg.path, m->p.cg.path))
		return 0;
	mn__info("memory: the process moved from %s to %s",
		 m->p.cg.path[0] ? m->p.cg.path : "system",
		 cg.path[0] ? cg.path : "system");
	mn__mon_close_all(m, mn__mon_io_close);
	mn__lock();
	m->p.cg = cg;
	mn__unlock();
	err = mn__mon_arm(m);
	if (err < 0)
		return err;
	m->moved = true;
	m->backoff_us = 0;
	m->last_sample_mono = 0;
	m->refault_base_usec = 0;
	return 1;
}

/*
 * A file of the watched group says the group is gone (v2: its
 * memory.pressure trigger hung up, its memory.events cannot be read).  A
 * watch of the own group looks for the process first — it was moved out
 * before the group was removed — and moves with it (MN_MEMORY_MOVED); any
 * other watch, or one whose process is still "there", fails with -ENOENT.
 */
static void group_gone(struct mon *m, unsigned int mechanism)
{
	int moved = m->p.own ? follow_process(m, mn__now_mono_usec(), true) : 0;

	if (moved > 0)
		mn__mon_evaluate(m, mechanism, false);
	else
		fail(m, moved < 0 ? moved : -ENOENT);
}

/* Minimum dwell: a level other than LOW is entered only once the current
   one has lasted dwell_ms (the sample at the dwell's end decides);
   entering LOW is never delayed. */
enum mn_memory_level mn__mon_dwell(struct mon *m, enum mn_memory_level lvl,
				  uint64_t now)
{
	uint64_t end = m->level_since + (uint64_t)m->p.dwell_ms * 1000;

	m->dwell_held = false;
	if (lvl == m->level)
		return lvl;
	if (lvl != MN_MEMORY_LOW && m->level != MN_MEMORY_LEVEL_UNKNOWN &&
	    now < end) {
		m->dwell_held = true;
		return m->level;
	}
	m->level_since = now;
	return lvl;
}

/* Do @bytes over @span_us reach @per_sec bytes per second? */
static bool rate_reaches(uint64_t bytes, uint64_t span_us, uint64_t per_sec)
{
	return (unsigned __int128)bytes * 1000000u >=
	       (unsigned __int128)per_sec * span_us;
}

/*
 * The page-cache rule's reclaim signal: does a limited level refault its
 * file pages at REFAULT_PERMILLE of its limit per second or more?  Measured
 * over spans of at least REFAULT_SPAN_US since the previous measure (a
 * sample sooner keeps the last verdict); the first span only starts one.
 * A refaulting level whose refaults per second also reach its inactive
 * file pages is thrashing (its bit in m->thrashing).
 */
static bool refaulting(struct mon *m, uint64_t now)
{
	const struct mn__sampler *s = &m->sampler;
	uint64_t span = now - m->refault_base_usec;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	bool hot = false;

	if (m->refault_base_usec && span < REFAULT_SPAN_US)
		return m->refaulting;
	m->thrashing = 0;
	for (int i = 0; i < s->n_levels; i++) {
		const struct mn__cg_level *l = &s->lv[i];
		uint64_t base = m->refault_base[i];
		m->refault_base[i] = l->refaults;
		if (!m->refault_base_usec || l->refaults <= base ||
		    !mn__level_limited(s, i, m->last.physical_bytes))
			continue;
		uint64_t bytes = (l->refaults - base) * page;
		uint64_t inactive = l->raw_usage > l->used
					    ? l->raw_usage - l->used : 0;
		if (!rate_reaches(bytes, span, l->limit / 1000 *
							REFAULT_PERMILLE))
			continue;
		hot = true;
		if (rate_reaches(bytes, span, inactive))
			m->thrashing |= (uint16_t)(1u << i);
	}
	m->refault_base_usec = now;
	m->refaulting = hot;
	return hot;
}

/*
 * Thrashing levels count their inactive file pages as used: the sample's
 * available memory becomes the smallest of its own and each such level's
 * limit less its whole usage (usage and load follow).
 */
static void count_thrashing(struct mon *m)
{
	const struct mn__sampler *s = &m->sampler;
	struct mn_memory_status *st = &m->last;
	uint64_t avail = st->available_bytes;

	for (int i = 0; i < s->n_levels; i++) {
		const struct mn__cg_level *l = &s->lv[i];
		if (!(m->thrashing & (1u << i)))
			continue;
		avail = MN__MIN(avail, l->limit > l->raw_usage
					       ? l->limit - l->raw_usage : 0);
	}
	if (avail == st->available_bytes)
		return;
	st->available_bytes = avail;
	st->usage_bytes = st->limit_bytes - avail;
	st->load_percent = (unsigned int)((st->usage_bytes * 100 +
					   st->limit_bytes / 2) /
					  st->limit_bytes);
}

/*
 * The level this sample says from the current one.  The page-cache rule
 * (see mn_memory_subscribe): a LOW that only active file pages make is
 * NEUTRAL unless the group refaults file pages, and a thrashing group's
 * inactive file pages count as used; off with
 * MN_MEMORY_COUNT_ACTIVE_FILE, at machine scope (MemAvailable already
 * counts the page cache) and where memory.stat counts no refaults (the
 * usage rule alone then, as before).
 */
static enum mn_memory_level sample_level(struct mon *m,
					 const struct mn__thresholds *t,
					 uint64_t now)
{
	bool on = !(m->p.flags & MN_MEMORY_COUNT_ACTIVE_FILE) &&
		  m->p.cg.version != MN_CGROUP_NONE && m->sampler.has_refaults;

	m->cache_held = false;
	if (!on)
		return mn__level_step(t, m->level, m->last.available_bytes);
	bool confirmed = refaulting(m, now);
	if (m->thrashing)
		count_thrashing(m);
	uint64_t avail = m->last.available_bytes;
	enum mn_memory_level lvl = mn__level_step(t, m->level, avail);
	enum mn_memory_level c = mn__level_step_cache(
		t, m->level, avail, m->sampler.avail_active, confirmed);
	m->cache_held = c != lvl;
	return c;
}

/* Fill rate: EWMA of how fast the decided available memory falls. */
static void track_fill(struct mon *m, uint64_t now, uint64_t avail)
{
	if (m->last_sample_mono && now > m->last_sample_mono) {
		double dt = (double)(now - m->last_sample_mono) / 1e6;
		double fall = m->last_avail > avail
				      ? (double)(m->last_avail - avail)
				      : 0.0;
		m->fill_rate = 0.5 * m->fill_rate + 0.5 * (fall / dt);
	}
	m->last_avail = avail;
	m->last_sample_mono = now;
}

/* Take a sample and deliver what changed.  @mechanism is what made us look;
   @force_low asks for LOW whatever the sample says (sustained stall). */
void mn__mon_evaluate(struct mon *m, unsigned int mechanism, bool force_low)
{
	uint64_t now = mn__now_mono_usec();
	enum mn_memory_level prev = m->level, lvl;
	struct mn__thresholds t;
	int err;

	if (atomic_load(&m->failed))
		return;
	err = 0;
	if (m->p.own && now - m->self_checked >=
				(uint64_t)m->p.poll_max_ms * 1000)
		err = MN__MIN(follow_process(m, now, false), 0);
	if (!err)
		err = mn__sampler_read(&m->sampler, &m->last, now);
	if (err == -ENOENT && m->p.own) {
		int moved = follow_process(m, now, true);
		err = moved < 0 ? moved
		      : moved ? mn__sampler_read(&m->sampler, &m->last, now)
			      : err;
	}
	if (err) {
		fail(m, err);
		return;
	}
	uint64_t prev_avail = m->last_avail;
	bool had_sample = m->last_sample_mono != 0;
	if (m->sampler.limits_gen != m->levels_gen) {
		mn__mon_sync_levels(m); /* a limit moved: the events follow it */
		m->refault_base_usec = 0; /* ... and refaults count afresh */
	}

	if (force_low)
		m->hold_low_until = now + MN__MAX(m->psi_window_us, 1000000u);
	mn__mon_thresholds(&m->p, m->last.limit_bytes, &t);
	lvl = sample_level(m, &t, now);
	track_fill(m, now, decided_avail(m));
	if (m->hold_low_until > now)
		lvl = MN_MEMORY_LOW;
	else
		m->hold_low_until = 0;
	lvl = mn__mon_dwell(m, lvl, now);
	m->level = lvl;
	update_backoff(m, prev, prev_avail, had_sample);
	mn__mon_deliver(m, prev, lvl != prev, mechanism, 0);
	v1_oom_recheck(m);
	if (!atomic_load(&m->failed)) {
		m->interval_us = next_interval_usec(m, now);
		arm_timer(m, m->interval_us);
	}
}

/* A handler's fd was closed earlier in the same batch of epoll events (the
   group failed and was disarmed): nothing to read, nothing to count. */
static bool stale(const struct mon *m, const struct mn__io *io)
{
	return io->fd < 0 || atomic_load(&m->failed);
}

/*
 * An events-only watch (MN_MEMORY_NO_POLL) takes no samples of its own,
 * and no kernel event says that a limit changed (v1 limit_in_bytes, v2
 * memory.max / memory.high; memory.events counts only its alarms) or that
 * the process moved.  So once per poll_max_ms it re-reads its levels'
 * limit files (and, watching the own group, /proc/self/cgroup), and
 * samples only when something changed: the delivery then says
 * MN_MECH_POLL.  Cost per watch and check: one open/read/close per limit
 * file of each level (v2: two per level), no wakeup of its own.
 */
static void limit_check(struct mon *m, uint64_t now)
{
	int moved = m->p.own ? follow_process(m, now, false) : 0;

	if (moved < 0) {
		fail(m, moved);
		return;
	}
	if (moved || mn__sampler_limits_changed(&m->sampler,
						m->last.physical_bytes, now)) {
		mn__mon_evaluate(m, MN_MECH_POLL, false);
		return;
	}
	m->interval_us = next_interval_usec(m, now);
	arm_timer(m, m->interval_us);
}

/* The shared sampling timer says this watch is due. */
void mn__mon_on_tick(struct mn__wheel_entry *e)
{
	struct mon *m = mn__container_of(e, struct mon, tick);
	uint64_t now = mn__now_mono_usec();

	if (atomic_load(&m->failed))
		return;
	/* An events-only watch's tick is a limit check unless a pressure
	   hold or a dwell ended. */
	if ((m->p.flags & MN_MEMORY_NO_POLL) &&
	    !(m->hold_low_until && m->hold_low_until <= now) &&
	    !(m->dwell_held && dwell_wait(m, now) <= 1000)) {
		limit_check(m, now);
		return;
	}
	mn__mon_evaluate(m, MN_MECH_POLL, false);
}

void mn__mon_on_psi(struct mn__io *io, uint32_t events)
{
	struct mon *m = mn__container_of(io, struct mon, psi_io);

	if (stale(m, io))
		return;
	if (events & EPOLLIN) /* a FIFO or socket of MEMORY_PRESSURE_WATCH */
		mn__systemd_psi_drain(io->fd);
	if (events & (EPOLLERR | EPOLLHUP)) {
		/* The group's pressure file went away with the group. */
		group_gone(m, MN_MECH_PSI);
		return;
	}
	/* At machine scope PSI includes stalls of limited groups elsewhere,
	   so it drives LOW only when memory is not plentiful here; a group's
	   own memory.pressure always does. */
	bool own = m->p.cg.version == MN_CGROUP_V2;
	bool plentiful = m->level == MN_MEMORY_HIGH;
	mn__mon_evaluate(m, MN_MECH_PSI, own || !plentiful);
}

static void drain_eventfd(struct mn__io *io)
{
	uint64_t cnt;

	if (read(io->fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		mn__count(source_errors, 1);
}

void mn__mon_on_pl_low(struct mn__io *io, uint32_t events)
{
	struct mon_lvl *l = mn__container_of(io, struct mon_lvl, pl_low_io);

	(void)events;
	if (stale(l->m, io))
		return;
	drain_eventfd(io);
	/* The kernel also signals the eventfd when the group is removed;
	   the sample then fails and reports it. */
	mn__mon_evaluate(l->m, MN_MECH_CGROUP_V1_PRESSURE, false);
}

void mn__mon_on_pl_crit(struct mn__io *io, uint32_t events)
{
	struct mon_lvl *l = mn__container_of(io, struct mon_lvl, pl_crit_io);

	(void)events;
	if (stale(l->m, io))
		return;
	drain_eventfd(io);
	mn__mon_evaluate(l->m, MN_MECH_CGROUP_V1_PRESSURE, true);
}

/* A usage threshold was crossed (either way): sample now. */
void mn__mon_on_thr(struct mn__io *io, uint32_t events)
{
	struct mon_lvl *l = mn__container_of(io, struct mon_lvl, thr_io);

	(void)events;
	if (stale(l->m, io))
		return;
	drain_eventfd(io);
	mn__mon_evaluate(l->m, MN_MECH_CGROUP_V1_THRESHOLD, false);
}

/* The kernel ran out of memory at the group or an ancestor (v1 signals
   the eventfds of the whole sub-tree under the level that hit its limit;
   also when the group is removed, which the sample then reports). */
void mn__mon_on_v1_oom(struct mn__io *io, uint32_t events)
{
	struct mon *m = mn__container_of(io, struct mon, oom_io);
	uint64_t kills;

	(void)events;
	if (stale(m, io))
		return;
	drain_eventfd(io);
	if (mn__mon_v1_read_oom_kills(m, &kills) == 0) {
		m->oom_kills = MN__MAX(m->oom_kills, kills);
		m->oom_recheck = 5;
		mn__mon_deliver_oom(m, MN_MECH_CGROUP_V1_OOM);
	}
	mn__mon_evaluate(m, MN_MECH_CGROUP_V1_OOM, false);
}


int mn__mon_read_v2_events(int fd, struct v2_events *ev)
{
	static const char *const keys[] = { "high", "max", "oom", "oom_kill" };
	char buf[512];
	ssize_t n = mn__pread_all(fd, buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	memset(ev, 0, sizeof(*ev));
	for (size_t i = 0; i < MN__ARRAY_SIZE(keys); i++) {
		uint64_t v;
		if (mn__parse_keyed(buf, (size_t)n, keys[i], &v) < 0)
			continue;
		ev->alarms += v;
		if (i >= 2)
			ev->ooms += v;
		if (i == 3)
			ev->kills = v;
	}
	return 0;
}

void mn__mon_on_v2_events(struct mn__io *io, uint32_t events)
{
	struct mon_lvl *l = mn__container_of(io, struct mon_lvl, events_io);
	struct mon *m = l->m;
	struct v2_events ev;
	int err;

	(void)events;
	if (stale(m, io))
		return;
	err = mn__mon_read_v2_events(io->fd, &ev);
	if (err) {
		/* The group's own file: it vanished.  An ancestor's: the
		   sample says whether the group did too. */
		if (l == &m->lv[0] && (err == -ENODEV || err == -ENOENT))
			group_gone(m, MN_MECH_CGROUP_V2_EVENTS);
		else if (l == &m->lv[0])
			fail(m, err);
		else
			mn__mon_evaluate(m, MN_MECH_CGROUP_V2_EVENTS, false);
		return;
	}
	/* memory.high / memory.max reached or OOM at this level: pressure. */
	bool alarm = ev.alarms > l->alarms;
	bool oom = ev.ooms > l->ooms;
	l->alarms = ev.alarms;
	l->ooms = ev.ooms;
	if (l == &m->lv[0] && (m->p.flags & MN_MEMORY_OOM_EVENTS))
		m->oom_kills = ev.kills;
	if (oom && (m->p.flags & MN_MEMORY_OOM_EVENTS))
		mn__mon_deliver_oom(m, MN_MECH_CGROUP_V2_EVENTS);
	mn__mon_evaluate(m, MN_MECH_CGROUP_V2_EVENTS, alarm);
}
