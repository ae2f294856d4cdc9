/* SPDX-License-Identifier: MIT */
#ifndef MN_MEMORY_LEVEL_H
#define MN_MEMORY_LEVEL_H

#include <stdbool.h>
#include <stdint.h>

#include "memnotify.h"

/* Thresholds in bytes of available memory, for one limit. */
struct mn__thresholds {
	uint64_t low, high;           /* LOW below low, HIGH at or above high */
	uint64_t low_exit, high_exit; /* where LOW and HIGH are left */
};

/*
 * The thresholds for @limit: @low_bytes/@high_bytes if non-zero, else
 * @low/@high percent of @limit; hysteresis @hyst percent of @limit (at
 * most a quarter of high - low for byte thresholds).
 */
void mn__thresholds_for(unsigned int low, unsigned int high, unsigned int hyst,
			uint64_t low_bytes, uint64_t high_bytes, uint64_t limit,
			struct mn__thresholds *t);

/* The next level for a sample of @avail bytes, from level @cur. */
enum mn_memory_level mn__level_step(const struct mn__thresholds *t,
				    enum mn_memory_level cur, uint64_t avail);

/*
 * The page-cache rule: the next level from @cur for a sample of @avail
 * bytes available (active file pages counted as used) and @avail_active
 * (counted as free).  A LOW that only the active file pages make (the step
 * from @avail_active would not be LOW) stands only when @confirmed (a
 * reclaim signal: the group refaults its file pages); otherwise NEUTRAL.
 */
enum mn_memory_level mn__level_step_cache(const struct mn__thresholds *t,
					  enum mn_memory_level cur,
					  uint64_t avail, uint64_t avail_active,
					  bool confirmed);

/*
 * The next level for a sample of @avail bytes available out of @limit,
 * from the current level @cur (MN_MEMORY_LEVEL_UNKNOWN: no history).
 * Thresholds in percent of @limit; requires low < high, hyst < (high-low)/2.
 */
enum mn_memory_level mn__level_next(unsigned int low, unsigned int high,
				    unsigned int hyst, enum mn_memory_level cur,
				    uint64_t avail, uint64_t limit);

#endif
