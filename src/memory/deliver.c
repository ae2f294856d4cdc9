/* SPDX-License-Identifier: MIT */
/* Level and mechanism names; delivery to each subscriber through its lane.  (see monitor.h) */
#include "monitor.h"

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
void mn__mon_memsub_run(struct mn__lane *l)
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
		mn__mon_thresholds(&m->p, st.limit_bytes, &t);
		st.low_bytes = t.low;
		st.high_bytes = t.high;
	}
	*out = st;
}

/*
 * Only the newcomers' first deliveries: the chain is in join order, so a
 * walk from the newest node ends at the first one that already had its
 * first delivery.  N subscriptions cost O(N) in all, not a walk of the
 * whole chain each.
 */
static void deliver_initial(struct mon *m, struct mn_memory_status *st)
{
	struct mn__chain_reader rd;
	struct mn__chain_node *n;
	uint64_t newest = m->initial_done;

	st->previous_level = MN_MEMORY_LEVEL_UNKNOWN;
	mn__chain_walk_begin_newest(&m->chain, &rd);
	while ((n = mn__chain_walk_next(&rd))) {
		struct memsub *s = mn__container_of(n, struct memsub, sub.node);
		if (s->join <= m->initial_done)
			break;
		newest = MN__MAX(newest, s->join);
		if (atomic_exchange(&s->needs_initial, 0))
			post(s, st);
	}
	mn__chain_walk_end(&rd);
	m->initial_done = newest;
}

void mn__mon_deliver(struct mon *m, enum mn_memory_level prev, bool changed,
		    unsigned int mechanism, int error)
{
	struct mn__chain_reader rd;
	struct mn__chain_node *n;
	struct mn_memory_status st;
	uint64_t newest = m->initial_done;

	status_for(m, &st, mechanism, error);
	if (!changed && !error && !m->moved) {
		st.reason = MN_MEMORY_INITIAL;
		deliver_initial(m, &st);
		mn__chain_reclaim(&m->chain);
		return;
	}
	mn__chain_walk_begin(&m->chain, &rd);
	while ((n = mn__chain_walk_next(&rd))) {
		struct memsub *s = mn__container_of(n, struct memsub, sub.node);
		newest = MN__MAX(newest, s->join);
		if (atomic_exchange(&s->needs_initial, 0)) {
			st.reason = error ? MN_MEMORY_ERROR : MN_MEMORY_INITIAL;
			st.previous_level = MN_MEMORY_LEVEL_UNKNOWN;
		} else if (error) {
			st.reason = MN_MEMORY_ERROR;
			st.previous_level = prev;
		} else if (m->moved) {
			st.reason = MN_MEMORY_MOVED;
			st.previous_level = prev;
		} else {
			st.reason = MN_MEMORY_CHANGE;
			st.previous_level = prev;
		}
		post(s, &st);
	}
	mn__chain_walk_end(&rd);
	m->initial_done = newest;
	mn__chain_reclaim(&m->chain);
	if (!error)
		m->moved = false;
}

/* An OOM under the group's limits (MN_MEMORY_OOM_EVENTS): every subscriber
   that has had its first delivery hears it, with the level unchanged. */
void mn__mon_deliver_oom(struct mon *m, unsigned int mechanism)
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
