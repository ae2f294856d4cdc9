/* SPDX-License-Identifier: MIT */
/*
 * The memory source's monitor, shared by its files: params.c (the
 * options, thresholds), deliver.c (level names, each subscriber's
 * delivery lane), events.c (sampling, levels, the kernel events'
 * handlers), arm.c (arming each mechanism of each level), monitor.c
 * (monitors' lifetime and the public API).  Private: never installed.
 */
#ifndef MN_MEMORY_MONITOR_H
#define MN_MEMORY_MONITOR_H

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
/* The page-cache rule: a LOW made by active file pages stands while the
   group refaults file pages at REFAULT_PERMILLE of its limit per second
   or more, measured over spans of at least REFAULT_SPAN_US. */
#define REFAULT_PERMILLE 5u
#define REFAULT_SPAN_US 100000u
/* Its other side, thrashing: a level whose refaults per second reach its
   inactive file pages (the list turns over through refaults at least once
   a second) counts those pages as used too. */
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
	uint64_t joins;            /* core lock: subscribers ever joined */
	uint64_t initial_done;     /* dispatcher: every subscriber up to this
	                              join number has had its first delivery */

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
	/* The page-cache rule (events.c): each level's refault count at
	   the start of the current measuring span, the span's start
	   (monotonic usec; 0: none yet), the last span's verdict, and
	   whether the last level was held off LOW by the rule. */
	uint64_t refault_base[MN__CG_MAX_LEVELS];
	uint64_t refault_base_usec;
	bool refaulting;
	bool cache_held;
	uint16_t thrashing; /* bit i: level i thrashed over the last span */
};

struct memsub {
	struct mn_sub sub;
	mn_memory_cb cb;
	void *ctx;
	struct mon *mon;
	uint64_t join;             /* its join number, set before it is in the
	                              chain; the chain is in join order */
	_Atomic int needs_initial;
	/* The mailbox of its delivery lane (lane lock): the newest status
	   not yet delivered, and what this subscriber was last told. */
	bool has_pending;
	struct mn_memory_status pending;
	enum mn_memory_level told;
};

/* The counts of a v2 memory.events file that matter here. */
struct v2_events {
	uint64_t alarms; /* high + max + oom + oom_kill */
	uint64_t ooms;   /* oom + oom_kill */
	uint64_t kills;  /* oom_kill */
};

/* params.c */
int mn__mon_make_params(const struct mn_memory_opts *o, struct params *p);
void mn__mon_thresholds(const struct params *p, uint64_t limit,
		       struct mn__thresholds *t);
bool mn__mon_same_params(const struct params *a, const struct params *b);
/* deliver.c */
void mn__mon_memsub_run(struct mn__lane *l);
void mn__mon_deliver(struct mon *m, enum mn_memory_level prev, bool changed,
		    unsigned int mechanism, int error);
void mn__mon_deliver_oom(struct mon *m, unsigned int mechanism);
/* events.c: on the dispatcher */
int mn__mon_v1_read_oom_kills(const struct mon *m, uint64_t *out);
enum mn_memory_level mn__mon_mark_failed(struct mon *m, int err);
enum mn_memory_level mn__mon_dwell(struct mon *m, enum mn_memory_level lvl,
				  uint64_t now);
void mn__mon_evaluate(struct mon *m, unsigned int mechanism, bool force_low);
void mn__mon_on_tick(struct mn__wheel_entry *e);
void mn__mon_on_psi(struct mn__io *io, uint32_t events);
void mn__mon_on_pl_low(struct mn__io *io, uint32_t events);
void mn__mon_on_pl_crit(struct mn__io *io, uint32_t events);
void mn__mon_on_thr(struct mn__io *io, uint32_t events);
void mn__mon_on_v1_oom(struct mn__io *io, uint32_t events);
int mn__mon_read_v2_events(int fd, struct v2_events *ev);
void mn__mon_on_v2_events(struct mn__io *io, uint32_t events);
/* arm.c: under the core lock, or on the dispatcher */
void mn__mon_io_init(struct mn__io *io, void (*ready)(struct mn__io *, uint32_t));
void mn__mon_io_close(struct mn__io *io);
void mn__mon_io_forget(struct mn__io *io);
void mn__mon_close_all(struct mon *m, void (*close_fn)(struct mn__io *));
void mn__mon_disarm(struct mon *m);
void mn__mon_sync_levels(struct mon *m);
int mn__mon_arm(struct mon *m);

#endif /* MN_MEMORY_MONITOR_H */
