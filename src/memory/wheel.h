/* SPDX-License-Identifier: MIT */
/*
 * One sampling timer for every memory watch: a single timerfd in the
 * dispatcher's epoll set serves a list of entries, each with its own due
 * time.  Long delays (>= 500 ms) are rounded down to a 250 ms boundary
 * (a sample comes up to 250 ms early, never late), so
 * that idle watches come due together and N idle groups cost one wakeup
 * per period, not N.  Dispatcher-only (and the fork child's rebuild, with
 * the core lock held and no dispatcher running): no lock.
 */
#ifndef MN_MEMORY_WHEEL_H
#define MN_MEMORY_WHEEL_H

#include <stdbool.h>
#include <stdint.h>

struct mn__wheel_entry {
	uint64_t due_us;               /* CLOCK_MONOTONIC usec */
	struct mn__wheel_entry *next, *prev;
	bool queued;
	void (*fire)(struct mn__wheel_entry *e); /* on the dispatcher */
};

/* Fire @e once, @delay_us from now (0 cancels).  The timerfd is made on
   first use; failing that is counted in source_errors. */
void mn__wheel_set(struct mn__wheel_entry *e, uint64_t delay_us);
/* A no-op for an entry not queued (safe off the dispatcher then). */
void mn__wheel_cancel(struct mn__wheel_entry *e);

/* In a fork child, before the entries are set again: the inherited
   timerfd is not in the child's epoll set; forget it and every entry. */
void mn__wheel_after_fork(void);

#endif /* MN_MEMORY_WHEEL_H */
