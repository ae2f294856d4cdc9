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
#include <fcntl.h>
#include <stddef.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "../core/caps.h"
#include "../core/core.h"
#include "cgroup.h"
#include "parse.h"
#include "psi.h"
#include "level.h"
#include "systemd.h"
#include "wheel.h"

#define DEFAULT_LOW 10u
#define DEFAULT_HIGH 30u
#define DEFAULT_HYST 2u
#define DEFAULT_PSI_STALL_US 100000u
#define DEFAULT_POLL_MIN_MS 10u
#define DEFAULT_POLL_MAX_MS 2000u
#define DEFAULT_DWELL_MS 1000u
#define MAX_DWELL_MS 60000u
/* The fastest fill rate assumed when sizing the next sleep, as earlyoom
   does; a faster measured rate takes over. */
#define ASSUMED_FILL_BYTES_PER_SEC (2ull << 30)

struct params {
	struct mn__cgroup cg;
	unsigned int low, high, hyst;
	uint64_t low_bytes, high_bytes; /* non-zero: thresholds in bytes */
	unsigned int psi_stall_us;
	unsigned int poll_min_ms, poll_max_ms;
	unsigned int flags;
	unsigned int dwell_ms;
	bool own;          /* the caller's own group: follows the process */
};

struct mon;

/*
 * The kernel events of one level of the hierarchy (index 0: the watched
 * group; above it: an ancestor whose limit the group shares).  A level's
 * events are armed while it matters: always for the group itself, for an
 * ancestor while it is limited.
 */
struct mon_lvl {
	struct mon *m;
	bool events_armed;         /* pressure_level (v1) / memory.events (v2) */
	bool thr_armed;            /* v1 usage thresholds */
	uint64_t thr_limit, thr_eff; /* the limits the thresholds were set for */
	uint64_t thr_hi;           /* usage below this: available >= high% */
	struct mn__io pl_low_io;   /* v1 eventfd: memory.pressure_level low */
	struct mn__io pl_crit_io;  /* ... and critical */
	struct mn__io thr_io;      /* v1 usage thresholds at limit - high and
	                              limit - low, one eventfd for both */
	struct mn__io events_io;   /* v2 memory.events */
	uint64_t alarms;           /* v2: high + max + oom + oom_kill, last seen */
	uint64_t ooms;             /* v2: oom + oom_kill, last seen */
};

struct mon {
	struct params p;
	struct mn__chain chain;
	_Atomic int refs;
	struct mon *next;          /* registry, core lock */
	bool dying;                /* core lock */
	struct mn__work kick;      /* initial deliveries */
	struct mn__work teardown;
	_Atomic int pending_initial;

	_Atomic bool failed;       /* set on the dispatcher, read anywhere */
	int fail_err;

	/* Dispatcher-only state. */
	bool armed;
	struct mn__sampler sampler;
	struct mn__wheel_entry tick; /* the shared sampling timer */
	struct mn__io psi_io;
	struct mon_lvl lv[MN__CG_MAX_LEVELS];
	unsigned int levels_gen;   /* sampler.limits_gen the levels follow */
	unsigned int psi_window_us;
	unsigned int mechanisms;
	enum mn_memory_level level;
	struct mn_memory_status last;
	uint64_t last_avail, last_sample_mono;
	double fill_rate;          /* bytes/s, EWMA of the fall of avail */
	uint64_t hold_low_until;   /* monotonic usec; 0 = no hold */
	uint64_t interval_us;      /* the sampling interval last armed */
	uint64_t backoff_us;       /* steady state: the interval, doubled per
	                              steady sample up to poll_max; 0 = moving */
	uint64_t self_checked;     /* own group: when /proc/self/cgroup was
	                              last compared (monotonic usec) */
	char *self_cgroup;         /* ... and its content then (malloc) */
	size_t self_cgroup_len;
	bool moved;                /* the next delivery says MN_MEMORY_MOVED */
	uint64_t level_since;      /* monotonic usec of the last level change */
	bool dwell_held;           /* a change waits for the dwell to end */
	struct mn__io oom_io;      /* v1 memory.oom_control eventfd */
	uint64_t oom_kills;        /* the group's oom_kill count, last read */
	int oom_recheck;           /* v1: samples left that re-read it */
};

struct memsub {
	struct mn_sub sub;
	mn_memory_cb cb;
	void *ctx;
	struct mon *mon;
	_Atomic int needs_initial;
	/* The mailbox of its delivery lane (lane lock): the newest status
	   not yet delivered, and what this subscriber was last told. */
	bool has_pending;
	struct mn_memory_status pending;
	enum mn_memory_level told;
};

static struct mon *monitors; /* core lock */
static struct mn__fork_hook fork_hook;

/* --- parameters ---------------------------------------------------------- */

static int env_percent(const char *name, unsigned int *out)
{
	const char *s = secure_getenv(name);
	unsigned long v = 0;

	if (!s)
		return 0;
	if (!*s)
		goto bad;
	for (const char *c = s; *c; c++) {
		if (*c < '0' || *c > '9' || v > 1000)
			goto bad;
		v = v * 10 + (unsigned long)(*c - '0');
	}
	if (v < 1 || v > 99)
		goto bad;
	*out = (unsigned int)v;
	return 0;
bad:
	mn__err("%s='%s': not a whole number from 1 to 99", name, s);
	return -EINVAL;
}

static int dwell_param(unsigned int ms, unsigned int *out)
{
	if (ms > MAX_DWELL_MS) {
		mn__err("memory: dwell %u ms is over %u ms", ms, MAX_DWELL_MS);
		return -EINVAL;
	}
	*out = ms ? ms : DEFAULT_DWELL_MS;
	return 0;
}

/* Absolute thresholds (CreateMemoryResourceNotification's kind). */
static int byte_params(struct params *p)
{
	if (p->low || p->high || !p->low_bytes || p->low_bytes >= p->high_bytes) {
		mn__err("memory: byte thresholds low=%llu high=%llu: need "
			"0 < low < high, and no percentages",
			(unsigned long long)p->low_bytes,
			(unsigned long long)p->high_bytes);
		return -EINVAL;
	}
	if (p->hyst > 49) {
		mn__err("memory: hysteresis %u%% is too large", p->hyst);
		return -EINVAL;
	}
	if (!p->hyst)
		p->hyst = DEFAULT_HYST;
	return 0;
}

/* Percentages: the options, else the environment, else 10 and 30. */
static int percent_params(struct params *p)
{
	int err;

	if (!p->low && (err = env_percent("MEMNOTIFY_LOW_PERCENT", &p->low)))
		return err;
	if (!p->high && (err = env_percent("MEMNOTIFY_HIGH_PERCENT", &p->high)))
		return err;
	if (!p->low)
		p->low = p->high && p->high <= DEFAULT_LOW ? p->high / 3 : DEFAULT_LOW;
	if (!p->high)
		p->high = MN__MIN(p->low * 3, 99u);
	if (p->low < 1 || p->high > 99 || p->low >= p->high) {
		mn__err("memory: thresholds low=%u%% high=%u%%: need "
			"1 <= low < high <= 99",
			p->low, p->high);
		return -EINVAL;
	}
	if (!p->hyst) {
		p->hyst = MN__MIN(DEFAULT_HYST, (p->high - p->low - 1) / 2);
	} else if (p->hyst * 2 >= p->high - p->low) {
		mn__err("memory: hysteresis %u%% must be smaller than half of "
			"high - low (%u%%)",
			p->hyst, p->high - p->low);
		return -EINVAL;
	}
	return 0;
}

/* PSI stall and sampling bounds, with their defaults. */
static int timing_params(struct params *p)
{
	if (!p->psi_stall_us)
		p->psi_stall_us = DEFAULT_PSI_STALL_US;
	if (!p->poll_min_ms)
		p->poll_min_ms = DEFAULT_POLL_MIN_MS;
	if (!p->poll_max_ms)
		p->poll_max_ms = MN__MAX(DEFAULT_POLL_MAX_MS, p->poll_min_ms);
	if (p->poll_min_ms > p->poll_max_ms || p->poll_max_ms > 3600000u) {
		mn__err("memory: poll bounds %u..%u ms are invalid",
			p->poll_min_ms, p->poll_max_ms);
		return -EINVAL;
	}
	return 0;
}

static int make_params(const struct mn_memory_opts *o, struct params *p)
{
	const char *cg;
	int err;

	if (!MN__OPTS_VALID(o, mn_memory_opts))
		return -EINVAL;
	memset(p, 0, sizeof(*p));
	p->low = MN__OPTS_GET(o, mn_memory_opts, low_percent, 0u);
	p->high = MN__OPTS_GET(o, mn_memory_opts, high_percent, 0u);
	p->hyst = MN__OPTS_GET(o, mn_memory_opts, hysteresis_percent, 0u);
	p->psi_stall_us = MN__OPTS_GET(o, mn_memory_opts, psi_stall_us, 0u);
	p->poll_min_ms = MN__OPTS_GET(o, mn_memory_opts, poll_min_ms, 0u);
	p->poll_max_ms = MN__OPTS_GET(o, mn_memory_opts, poll_max_ms, 0u);
	p->flags = MN__OPTS_GET(o, mn_memory_opts, flags, 0u);
	p->low_bytes = MN__OPTS_GET(o, mn_memory_opts, low_bytes, (uint64_t)0);
	p->high_bytes = MN__OPTS_GET(o, mn_memory_opts, high_bytes, (uint64_t)0);
	cg = MN__OPTS_GET(o, mn_memory_opts, cgroup, (const char *)NULL);
	if ((err = dwell_param(MN__OPTS_GET(o, mn_memory_opts, min_dwell_ms, 0u),
			       &p->dwell_ms)))
		return err;
	if (p->flags & ~(MN_MEMORY_NO_PSI | MN_MEMORY_NO_EVENTS |
			 MN_MEMORY_NO_POLL | MN_MEMORY_OOM_EVENTS)) {
		mn__err("memory: unknown flags 0x%x", p->flags);
		return -EINVAL;
	}
	err = p->low_bytes || p->high_bytes ? byte_params(p) : percent_params(p);
	if (err || (err = timing_params(p)))
		return err;
	if (cg && *cg) /* the return code names the problem: no log */
		return mn__cgroup_from_path(cg, &p->cg);
	mn__cgroup_self(&p->cg);
	p->own = true;
	return 0;
}

/* The thresholds of @p in bytes for @limit. */
static void thresholds(const struct params *p, uint64_t limit,
		       struct mn__thresholds *t)
{
	mn__thresholds_for(p->low, p->high, p->hyst, p->low_bytes,
			   p->high_bytes, limit, t);
}

static bool same_params(const struct params *a, const struct params *b)
{
	/* The own group's watch is shared whatever group the process was in
	   when it began: it follows the process (and its cg changes on the
	   dispatcher, under the core lock). */
	bool same_group = a->own || b->own
				  ? a->own == b->own
				  : a->cg.version == b->cg.version &&
					    !strcmp(a->cg.path, b->cg.path);
	return same_group && a->low == b->low &&
	       a->high == b->high && a->hyst == b->hyst &&
	       a->low_bytes == b->low_bytes && a->high_bytes == b->high_bytes &&
	       a->psi_stall_us == b->psi_stall_us &&
	       a->poll_min_ms == b->poll_min_ms &&
	       a->poll_max_ms == b->poll_max_ms && a->flags == b->flags &&
	       a->dwell_ms == b->dwell_ms;
}

/* --- levels -------------------------------------------------------------- */

const char *mn_memory_level_name(enum mn_memory_level level)
{
	switch (level) {
	case MN_MEMORY_LOW: return "low";
	case MN_MEMORY_NEUTRAL: return "neutral";
	case MN_MEMORY_HIGH: return "high";
	default: return "unknown";
	}
}

const char *mn_memory_mechanism_name(unsigned int mechanism)
{
	switch (mechanism) {
	case MN_MECH_NONE: return "none";
	case MN_MECH_QUERY: return "query";
	case MN_MECH_POLL: return "poll";
	case MN_MECH_PSI: return "psi";
	case MN_MECH_CGROUP_V1_PRESSURE: return "cgroup_v1_pressure";
	case MN_MECH_CGROUP_V2_EVENTS: return "cgroup_v2_events";
	case MN_MECH_CGROUP_V1_THRESHOLD: return "cgroup_v1_threshold";
	case MN_MECH_CGROUP_V1_OOM: return "cgroup_v1_oom";
	default: return "?";
	}
}

/* --- delivery (dispatcher) ----------------------------------------------- */

/*
 * Hand @st to @s's delivery lane; its callback runs on a delivery thread
 * (see dispatch.c), so a slow subscriber holds up no other.  If the last
 * status is still waiting there (the callback is still running), the two
 * merge: the newest level and figures win, the change in between is
 * counted (skipped_changes, mn_stats events_coalesced), and the reason
 * that says most is kept (reason_rank: an error is never folded away).  previous_level is
 * set at delivery: the level the subscriber was last told.
 */
/* Which reason a merged call keeps: the one that says most (an error is
   never folded away; an OOM or a move outranks a plain change, whose new
   level the merged status carries anyway). */
static int reason_rank(enum mn_memory_reason r)
{
	switch (r) {
	case MN_MEMORY_ERROR: return 5;
	case MN_MEMORY_OOM: return 4;
	case MN_MEMORY_MOVED: return 3;
	case MN_MEMORY_INITIAL: return 2;
	default: return 1;
	}
}

static void post(struct memsub *s, const struct mn_memory_status *st)
{
	enum mn_memory_reason reason = st->reason;
	uint64_t skipped = 0;

	mn__lane_lock();
	if (s->has_pending) {
		enum mn_memory_reason was = s->pending.reason;
		skipped = s->pending.skipped_changes + 1;
		if (reason_rank(was) > reason_rank(reason))
			reason = was;
		mn__count(coalesced, 1);
	}
	s->pending = *st;
	s->pending.reason = reason;
	s->pending.skipped_changes = skipped;
	if (st->reason == MN_MEMORY_INITIAL)
		s->told = MN_MEMORY_LEVEL_UNKNOWN;
	s->has_pending = true;
	mn__lane_ready(&s->sub.lane);
	mn__lane_unlock();
}

/* The lane's run: on a delivery thread, no lock held. */
static void memsub_run(struct mn__lane *l)
{
	struct memsub *s = mn__container_of(l, struct memsub, sub.lane);
	struct mn_memory_status st;

	mn__lane_lock();
	if (!s->has_pending) {
		mn__lane_unlock();
		return;
	}
	st = s->pending;
	s->has_pending = false;
	st.previous_level = s->told;
	s->told = st.level;
	mn__lane_unlock();
	s->cb(&st, s->ctx);
	mn__count(delivered, 1);
}

/* The status delivered for @m's current state. */
static void status_for(const struct mon *m, struct mn_memory_status *out,
		       unsigned int mechanism, int error)
{
	struct mn_memory_status st = m->last;

	st.sz = sizeof(st);
	st.oom_kill_count = m->oom_kills;
	st.mechanism = mechanism;
	st.mechanisms_active = m->mechanisms;
	st.error = error;
	st.level = m->level;
	st.low_percent = m->p.low;
	st.high_percent = m->p.high;
	{
		struct mn__thresholds t;
		thresholds(&m->p, st.limit_bytes, &t);
		st.low_bytes = t.low;
		st.high_bytes = t.high;
	}
	*out = st;
}

static void deliver(struct mon *m, enum mn_memory_level prev, bool changed,
		    unsigned int mechanism, int error)
{
	struct mn__chain_reader rd;
	struct mn__chain_node *n;
	struct mn_memory_status st;

	status_for(m, &st, mechanism, error);
	mn__chain_walk_begin(&m->chain, &rd);
	while ((n = mn__chain_walk_next(&rd))) {
		struct memsub *s = mn__container_of(n, struct memsub, sub.node);
		if (atomic_exchange(&s->needs_initial, 0)) {
			st.reason = error ? MN_MEMORY_ERROR : MN_MEMORY_INITIAL;
			st.previous_level = MN_MEMORY_LEVEL_UNKNOWN;
		} else if (error) {
			st.reason = MN_MEMORY_ERROR;
			st.previous_level = prev;
		} else if (m->moved) {
			st.reason = MN_MEMORY_MOVED;
			st.previous_level = prev;
		} else if (changed) {
			st.reason = MN_MEMORY_CHANGE;
			st.previous_level = prev;
		} else {
			continue;
		}
		post(s, &st);
	}
	mn__chain_walk_end(&rd);
	mn__chain_reclaim(&m->chain);
	if (!error)
		m->moved = false;
}

/* An OOM under the group's limits (MN_MEMORY_OOM_EVENTS): every subscriber
   that has had its first delivery hears it, with the level unchanged. */
static void deliver_oom(struct mon *m, unsigned int mechanism)
{
	struct mn__chain_reader rd;
	struct mn__chain_node *n;
	struct mn_memory_status st;

	status_for(m, &st, mechanism, 0);
	st.reason = MN_MEMORY_OOM;
	st.previous_level = m->level;
	mn__chain_walk_begin(&m->chain, &rd);
	while ((n = mn__chain_walk_next(&rd))) {
		struct memsub *s = mn__container_of(n, struct memsub, sub.node);
		if (atomic_load(&s->needs_initial))
			continue;
		post(s, &st);
	}
	mn__chain_walk_end(&rd);
	mn__chain_reclaim(&m->chain);
}

/* v1: the group's oom_kill count from memory.oom_control (read rarely:
   opened each time).  Return 0 or -errno. */
static int v1_read_oom_kills(const struct mon *m, uint64_t *out)
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
	if (v1_read_oom_kills(m, &kills) == 0 && kills > m->oom_kills) {
		m->oom_kills = kills;
		deliver_oom(m, MN_MECH_CGROUP_V1_OOM);
	}
}

static void disarm(struct mon *m);
static void sync_levels(struct mon *m);

/* Arm the one-shot sampling timer; a delay of 0 disarms it. */
static void arm_timer(struct mon *m, uint64_t delay_usec)
{
	mn__wheel_set(&m->tick, delay_usec);
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
	uint64_t limit = m->last.limit_bytes, avail = m->last.available_bytes;
	struct mn__thresholds t;
	uint64_t lo, hi;
	uint64_t dist, rate, usec;
	uint64_t min_us = (uint64_t)p->poll_min_ms * 1000;
	uint64_t max_us = (uint64_t)p->poll_max_ms * 1000;

	thresholds(p, limit, &t);
	lo = t.low;
	hi = t.high;
	if (p->flags & MN_MEMORY_NO_POLL) {
		/* Only the end of a pressure hold or a dwell needs a timer. */
		usec = m->hold_low_until > now ? m->hold_low_until - now : 0;
		if (m->dwell_held)
			usec = usec ? MN__MIN(usec, dwell_wait(m, now))
				    : dwell_wait(m, now);
		return usec;
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
	uint64_t avail = m->last.available_bytes;
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
static enum mn_memory_level mark_failed(struct mon *m, int err)
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
	enum mn_memory_level prev = mark_failed(m, err);
	mn__warn("memory: %s: %s; the watch stops",
		 m->p.cg.path[0] ? m->p.cg.path : "system", mn_strerror(err));
	disarm(m);
	deliver(m, prev, false, MN_MECH_NONE, err);
}

static int arm(struct mon *m);
static void io_close(struct mn__io *io);
static void close_all(struct mon *m, void (*close_fn)(struct mn__io *));

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
	close_all(m, io_close);
	mn__lock();
	m->p.cg = cg;
	mn__unlock();
	err = arm(m);
	if (err < 0)
		return err;
	m->moved = true;
	m->backoff_us = 0;
	m->last_sample_mono = 0;
	return 1;
}

/* Minimum dwell: a level other than LOW is entered only once the current
   one has lasted dwell_ms (the sample at the dwell's end decides);
   entering LOW is never delayed. */
static enum mn_memory_level dwell(struct mon *m, enum mn_memory_level lvl,
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

/* Take a sample and deliver what changed.  @mechanism is what made us look;
   @force_low asks for LOW whatever the sample says (sustained stall). */
static void evaluate(struct mon *m, unsigned int mechanism, bool force_low)
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
	/* Fill rate: EWMA of how fast available memory falls. */
	if (m->last_sample_mono && now > m->last_sample_mono) {
		double dt = (double)(now - m->last_sample_mono) / 1e6;
		double fall = m->last_avail > m->last.available_bytes
				      ? (double)(m->last_avail -
						 m->last.available_bytes)
				      : 0.0;
		m->fill_rate = 0.5 * m->fill_rate + 0.5 * (fall / dt);
	}
	uint64_t prev_avail = m->last_avail;
	bool had_sample = m->last_sample_mono != 0;
	m->last_avail = m->last.available_bytes;
	m->last_sample_mono = now;
	if (m->sampler.limits_gen != m->levels_gen)
		sync_levels(m); /* a limit moved: the events follow it */

	if (force_low)
		m->hold_low_until = now + MN__MAX(m->psi_window_us, 1000000u);
	thresholds(&m->p, m->last.limit_bytes, &t);
	lvl = mn__level_step(&t, m->level, m->last.available_bytes);
	if (m->hold_low_until > now)
		lvl = MN_MEMORY_LOW;
	else
		m->hold_low_until = 0;
	lvl = dwell(m, lvl, now);
	m->level = lvl;
	update_backoff(m, prev, prev_avail, had_sample);
	deliver(m, prev, lvl != prev, mechanism, 0);
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

/* The shared sampling timer says this watch is due. */
static void on_tick(struct mn__wheel_entry *e)
{
	struct mon *m = mn__container_of(e, struct mon, tick);

	if (!atomic_load(&m->failed))
		evaluate(m, MN_MECH_POLL, false);
}

static void on_psi(struct mn__io *io, uint32_t events)
{
	struct mon *m = mn__container_of(io, struct mon, psi_io);

	if (stale(m, io))
		return;
	if (events & EPOLLIN) /* a FIFO or socket of MEMORY_PRESSURE_WATCH */
		mn__systemd_psi_drain(io->fd);
	if (events & (EPOLLERR | EPOLLHUP)) {
		/* The group's pressure file went away with the group. */
		fail(m, -ENOENT);
		return;
	}
	/* At machine scope PSI includes stalls of limited groups elsewhere,
	   so it drives LOW only when memory is not plentiful here; a group's
	   own memory.pressure always does. */
	bool own = m->p.cg.version == MN_CGROUP_V2;
	bool plentiful = m->level == MN_MEMORY_HIGH;
	evaluate(m, MN_MECH_PSI, own || !plentiful);
}

static void drain_eventfd(struct mn__io *io)
{
	uint64_t cnt;

	if (read(io->fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		mn__count(source_errors, 1);
}

static void on_pl_low(struct mn__io *io, uint32_t events)
{
	struct mon_lvl *l = mn__container_of(io, struct mon_lvl, pl_low_io);

	(void)events;
	if (stale(l->m, io))
		return;
	drain_eventfd(io);
	/* The kernel also signals the eventfd when the group is removed;
	   the sample then fails and reports it. */
	evaluate(l->m, MN_MECH_CGROUP_V1_PRESSURE, false);
}

static void on_pl_crit(struct mn__io *io, uint32_t events)
{
	struct mon_lvl *l = mn__container_of(io, struct mon_lvl, pl_crit_io);

	(void)events;
	if (stale(l->m, io))
		return;
	drain_eventfd(io);
	evaluate(l->m, MN_MECH_CGROUP_V1_PRESSURE, true);
}

/* A usage threshold was crossed (either way): sample now. */
static void on_thr(struct mn__io *io, uint32_t events)
{
	struct mon_lvl *l = mn__container_of(io, struct mon_lvl, thr_io);

	(void)events;
	if (stale(l->m, io))
		return;
	drain_eventfd(io);
	evaluate(l->m, MN_MECH_CGROUP_V1_THRESHOLD, false);
}

/* The kernel ran out of memory at the group or an ancestor (v1 signals
   the eventfds of the whole sub-tree under the level that hit its limit;
   also when the group is removed, which the sample then reports). */
static void on_v1_oom(struct mn__io *io, uint32_t events)
{
	struct mon *m = mn__container_of(io, struct mon, oom_io);
	uint64_t kills;

	(void)events;
	if (stale(m, io))
		return;
	drain_eventfd(io);
	if (v1_read_oom_kills(m, &kills) == 0) {
		m->oom_kills = MN__MAX(m->oom_kills, kills);
		m->oom_recheck = 5;
		deliver_oom(m, MN_MECH_CGROUP_V1_OOM);
	}
	evaluate(m, MN_MECH_CGROUP_V1_OOM, false);
}

struct v2_events {
	uint64_t alarms; /* high + max + oom + oom_kill */
	uint64_t ooms;   /* oom + oom_kill */
	uint64_t kills;  /* oom_kill */
};

static int read_v2_events(int fd, struct v2_events *ev)
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

static void on_v2_events(struct mn__io *io, uint32_t events)
{
	struct mon_lvl *l = mn__container_of(io, struct mon_lvl, events_io);
	struct mon *m = l->m;
	struct v2_events ev;
	int err;

	(void)events;
	if (stale(m, io))
		return;
	err = read_v2_events(io->fd, &ev);
	if (err) {
		/* The group's own file: it vanished.  An ancestor's: the
		   sample says whether the group did too. */
		if (l == &m->lv[0])
			fail(m, err == -ENODEV ? -ENOENT : err);
		else
			evaluate(m, MN_MECH_CGROUP_V2_EVENTS, false);
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
		deliver_oom(m, MN_MECH_CGROUP_V2_EVENTS);
	evaluate(m, MN_MECH_CGROUP_V2_EVENTS, alarm);
}

/* --- arming (under the core lock, or on the dispatcher) ------------------ */

static void io_init(struct mn__io *io, void (*ready)(struct mn__io *, uint32_t))
{
	io->fd = -1;
	io->ready = ready;
}

static void io_close(struct mn__io *io)
{
	if (io->fd >= 0) {
		mn__dispatch_del(io);
		close(io->fd);
		io->fd = -1;
	}
}

/* After fork: the fd is not in the new epoll set; just close it. */
static void io_forget(struct mn__io *io)
{
	if (io->fd >= 0)
		close(io->fd);
	io->fd = -1;
}

static void lvl_close_events(struct mon_lvl *l, void (*close_fn)(struct mn__io *))
{
	close_fn(&l->pl_low_io);
	close_fn(&l->pl_crit_io);
	close_fn(&l->events_io);
	l->events_armed = false;
}

static void lvl_close_thr(struct mon_lvl *l, void (*close_fn)(struct mn__io *))
{
	close_fn(&l->thr_io);
	l->thr_armed = false;
	l->thr_limit = l->thr_eff = 0;
}

/* Close every fd of @m: io_close on the dispatcher, io_forget in a fork
   child (whose epoll set is new). */
static void close_all(struct mon *m, void (*close_fn)(struct mn__io *))
{
	if (close_fn == io_close)
		mn__wheel_cancel(&m->tick); /* after fork: the wheel forgot it */
	close_fn(&m->psi_io);
	close_fn(&m->oom_io);
	for (int i = 0; i < MN__CG_MAX_LEVELS; i++) {
		lvl_close_events(&m->lv[i], close_fn);
		lvl_close_thr(&m->lv[i], close_fn);
	}
	m->levels_gen = 0;
	mn__sampler_close(&m->sampler);
}

static void disarm(struct mon *m)
{
	close_all(m, io_close);
	m->armed = false;
}

/*
 * Register an eventfd through cgroup v1's cgroup.event_control of @dir:
 * "<eventfd> <fd of the watched file> <argument>".  For memory.pressure_level
 * the argument is a level ("low", "critical"), tried with ",hierarchy"
 * first so that descendants' pressure counts; for memory.usage_in_bytes it
 * is a threshold in bytes, signalled when usage crosses it either way.
 * The kernel keeps what it needs: @file_fd may be closed afterwards.
 * An @io already open gets one more registration (no second epoll entry).
 */
static int v1_register(const char *dir, struct mn__io *io, int file_fd,
		       const char *arg, bool hierarchy)
{
	char path[MN__CG_PATH_MAX + 64], line[96];
	bool created = io->fd < 0; /* else: one more event on the same fd */
	int err;

	if (created)
		io->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (io->fd < 0)
		return -errno;
	snprintf(path, sizeof(path), "%s/cgroup.event_control", dir);
	snprintf(line, sizeof(line), "%d %d %s%s", io->fd, file_fd, arg,
		 hierarchy ? ",hierarchy" : "");
	err = mn__write_file(path, line, false);
	if (err == -EINVAL && hierarchy) { /* kernels before 4.5: no modes */
		snprintf(line, sizeof(line), "%d %d %s", io->fd, file_fd, arg);
		err = mn__write_file(path, line, false);
	}
	if (!err && created)
		err = mn__dispatch_add(io, EPOLLIN);
	if (err && created) {
		close(io->fd);
		io->fd = -1;
	}
	return err;
}

/* Level @i's pressure events: v1 memory.pressure_level low and critical,
   v2 memory.events.  Returns true if armed. */
static bool lvl_arm_events(struct mon *m, int i)
{
	struct mon_lvl *l = &m->lv[i];
	const char *dir = m->sampler.lv[i].path;
	char path[MN__CG_PATH_MAX + 64];
	int fd;

	if (m->p.cg.version == MN_CGROUP_V1) {
		snprintf(path, sizeof(path), "%s/memory.pressure_level", dir);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 &&
		    v1_register(dir, &l->pl_low_io, fd, "low", true) == 0 &&
		    v1_register(dir, &l->pl_crit_io, fd, "critical", true) == 0)
			l->events_armed = true;
		if (fd >= 0)
			close(fd);
	} else {
		snprintf(path, sizeof(path), "%s/memory.events", dir);
		l->events_io.fd = open(path, O_RDONLY | O_CLOEXEC);
		struct v2_events ev;
		if (l->events_io.fd >= 0 &&
		    read_v2_events(l->events_io.fd, &ev) == 0 &&
		    mn__dispatch_add(&l->events_io, EPOLLPRI) == 0) {
			l->events_armed = true;
			l->alarms = ev.alarms;
			l->ooms = ev.ooms;
			if (i == 0 && (m->p.flags & MN_MEMORY_OOM_EVENTS))
				m->oom_kills = ev.kills;
		}
	}
	if (!l->events_armed) {
		mn__info("memory: no pressure events on %s", dir);
		lvl_close_events(l, io_close);
	}
	return l->events_armed;
}

/*
 * cgroup v1 memory thresholds on level @i's memory.usage_in_bytes at the
 * usages where its available memory could fall below high% and low% of
 * the effective limit @eff: crossing one is an event, so a group far from
 * every limit needs no fast sampling.  Only for a limited level.
 */
static void lvl_arm_thr(struct mon *m, int i, uint64_t eff)
{
	struct mon_lvl *l = &m->lv[i];
	const struct mn__cg_level *sl = &m->sampler.lv[i];
	struct mn__thresholds t;
	char arg[32];

	lvl_close_thr(l, io_close);
	l->thr_limit = sl->limit;
	l->thr_eff = eff;
	thresholds(&m->p, eff, &t);
	if (sl->usage_fd < 0 || t.high >= sl->limit)
		return;
	l->thr_hi = sl->limit - t.high;
	/* Both thresholds on one eventfd: either crossing means "sample". */
	snprintf(arg, sizeof(arg), "%llu", (unsigned long long)l->thr_hi);
	if (v1_register(sl->path, &l->thr_io, sl->usage_fd, arg, false))
		return;
	snprintf(arg, sizeof(arg), "%llu",
		 (unsigned long long)(sl->limit - t.low));
	if (v1_register(sl->path, &l->thr_io, sl->usage_fd, arg, false)) {
		io_close(&l->thr_io);
		return;
	}
	l->thr_armed = true;
}

/* Make each level's armed events match the sampler's limits: the group's
   own always, an ancestor's while it is limited; thresholds re-armed on
   every change of a level's limit or the effective one. */
static void sync_levels(struct mon *m)
{
	const struct mn__sampler *s = &m->sampler;
	uint64_t phys = m->last.physical_bytes, eff = m->last.limit_bytes;
	unsigned int mech = m->mechanisms &
			    ~(unsigned int)(MN_MECH_CGROUP_V1_PRESSURE |
					    MN_MECH_CGROUP_V2_EVENTS |
					    MN_MECH_CGROUP_V1_THRESHOLD);

	m->levels_gen = s->limits_gen;
	for (int i = 0; i < s->n_levels && !(m->p.flags & MN_MEMORY_NO_EVENTS);
	     i++) {
		struct mon_lvl *l = &m->lv[i];
		bool limited = mn__level_limited(s, i, phys);
		if ((i == 0 || limited) && !l->events_armed)
			lvl_arm_events(m, i);
		else if (!(i == 0 || limited) && l->events_armed)
			lvl_close_events(l, io_close);
		if (!limited)
			lvl_close_thr(l, io_close);
		else if (m->p.cg.version == MN_CGROUP_V1 &&
			 (l->thr_limit != s->lv[i].limit || l->thr_eff != eff))
			lvl_arm_thr(m, i, eff);
		if (l->events_armed)
			mech |= m->p.cg.version == MN_CGROUP_V1
					? MN_MECH_CGROUP_V1_PRESSURE
					: MN_MECH_CGROUP_V2_EVENTS;
		if (l->thr_armed)
			mech |= MN_MECH_CGROUP_V1_THRESHOLD;
	}
	m->mechanisms = mech;
}

/* PSI: the group's own memory.pressure (v2), or the system file when
   the watch covers the whole machine or a v1 group without a limit
   below it (whose stalls are the machine's). */
static void arm_psi(struct mon *m, const struct mn_memory_status *first)
{
	const struct params *p = &m->p;
	char path[MN__CG_PATH_MAX + 64];
	const char *psi = NULL;

	if (p->flags & MN_MEMORY_NO_PSI)
		return;
	/* systemd's $MEMORY_PRESSURE_WATCH, for the own group (systemd.c):
	   its file and threshold, or none at all (/dev/null). */
	int sd = mn__systemd_psi_arm(&m->psi_io, p->cg.path, p->psi_stall_us,
				     &m->psi_window_us);
	if (sd == 0)
		m->mechanisms |= MN_MECH_PSI;
	if (sd != -ENOENT)
		return;
	if (p->cg.version == MN_CGROUP_V2) {
		snprintf(path, sizeof(path), "%s/memory.pressure", p->cg.path);
		psi = path;
	} else if (mn__cap_supported(MN_CAP_PSI_TRIGGER) &&
		   first->limit_bytes >= first->physical_bytes) {
		psi = "/proc/pressure/memory";
	}
	if (!psi || mn__psi_min_window(psi, &m->psi_window_us) != 0)
		return;
	unsigned int win = MN__MAX(m->psi_window_us, MN__PSI_WINDOW_MIN_US);
	unsigned int stall = MN__MIN(p->psi_stall_us, win / 2);
	m->psi_window_us = win;
	m->psi_io.fd = mn__psi_trigger_open(psi, "some", stall, win);
	if (m->psi_io.fd >= 0 && mn__dispatch_add(&m->psi_io, EPOLLPRI) == 0) {
		m->mechanisms |= MN_MECH_PSI;
		return;
	}
	mn__info("memory: no PSI trigger on %s: %s", psi,
		 strerror(m->psi_io.fd < 0 ? -m->psi_io.fd : EBADF));
	io_close(&m->psi_io);
	m->psi_io.fd = -1;
}

/* v1 OOM notifications (MN_MEMORY_OOM_EVENTS): an eventfd on the group's
   memory.oom_control, which the kernel signals for an OOM at the group or
   at any ancestor (it walks the sub-tree of the level out of memory). */
static void arm_v1_oom(struct mon *m)
{
	char path[MN__CG_PATH_MAX + 64];
	int fd;

	if (m->p.cg.version != MN_CGROUP_V1 ||
	    !(m->p.flags & MN_MEMORY_OOM_EVENTS) ||
	    v1_read_oom_kills(m, &m->oom_kills) < 0)
		return;
	snprintf(path, sizeof(path), "%s/memory.oom_control", m->p.cg.path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && v1_register(m->p.cg.path, &m->oom_io, fd, "", false) == 0)
		m->mechanisms |= MN_MECH_CGROUP_V1_OOM;
	else
		mn__info("memory: no memory.oom_control events on %s",
			 m->p.cg.path);
	if (fd >= 0)
		close(fd);
}

/* Open every mechanism this machine has for the group.  Only the sampler
   is required; each event source that fails is logged and skipped. */
static int arm(struct mon *m)
{
	const struct params *p = &m->p;
	int err;

	m->mechanisms = 0;
	atomic_store(&m->failed, false);
	err = mn__sampler_open(&m->sampler, &p->cg);
	if (err)
		return err;
	/* One sample now, so that unreadable or malformed files are the
	   subscriber's error now rather than an error event later. */
	m->last.sz = sizeof(m->last);
	err = mn__sampler_read(&m->sampler, &m->last, mn__now_mono_usec());
	if (err) {
		mn__sampler_close(&m->sampler);
		return err;
	}

	if (!(p->flags & MN_MEMORY_NO_POLL))
		m->mechanisms |= MN_MECH_POLL;
	arm_psi(m, &m->last);
	sync_levels(m);
	arm_v1_oom(m);
	if (!m->mechanisms) {
		disarm(m);
		return -EOPNOTSUPP;
	}
	m->armed = true;
	return 0;
}

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
		deliver(m, m->level, false, MN_MECH_NONE, m->fail_err);
		return;
	}
	/* A fresh sample for the newcomers; others hear only of changes. */
	evaluate(m, MN_MECH_QUERY, false);
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
	disarm(m);
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
		close_all(m, io_forget);
		int err = arm(m);
		m->level = MN_MEMORY_LEVEL_UNKNOWN;
		if (err < 0)
			mark_failed(m, err);
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
	m->tick.fire = on_tick;
	io_init(&m->psi_io, on_psi);
	io_init(&m->oom_io, on_v1_oom);
	for (int i = 0; i < MN__CG_MAX_LEVELS; i++) {
		struct mon_lvl *l = &m->lv[i];
		l->m = m;
		io_init(&l->pl_low_io, on_pl_low);
		io_init(&l->pl_crit_io, on_pl_crit);
		io_init(&l->thr_io, on_thr);
		io_init(&l->events_io, on_v2_events);
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
		if (!m->dying && !atomic_load(&m->failed) && same_params(&m->p, p))
			break;
	if (!m) {
		if (!(m = mon_new(p))) {
			*err = -ENOMEM;
			return NULL;
		}
		m->next = monitors;
		monitors = m;
		if ((*err = arm(m))) {
			mon_retire(m);
			return NULL;
		}
	}
	s->mon = m;
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
	err = make_params(opts, &p);
	if (err)
		return err;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cb = cb;
	s->ctx = ctx;
	s->sub.node.release = memsub_release;
	s->sub.lane.run = memsub_run;
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
	err = make_params(opts, &p);
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
	thresholds(&p, st.limit_bytes, &t);
	st.level = mn__level_step(&t, MN_MEMORY_LEVEL_UNKNOWN, st.available_bytes);
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
