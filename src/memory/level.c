/* SPDX-License-Identifier: MIT */
/*
 * Level rule: LOW below low% available, HIGH at or above high%, NEUTRAL in
 * between; a level is left only once available memory is hyst points past
 * its threshold (entering is immediate).  Pure: unit-tested directly.
 */
#include "level.h"

/* limit * pct / 100 without overflow. */
static uint64_t pct_of(uint64_t limit, unsigned int pct)
{
	return (uint64_t)((unsigned __int128)limit * pct / 100);
}

void mn__thresholds_for(unsigned int low, unsigned int high, unsigned int hyst,
			uint64_t low_bytes, uint64_t high_bytes, uint64_t limit,
			struct mn__thresholds *t)
{
	uint64_t h = pct_of(limit, hyst);

	if (low_bytes || high_bytes) {
		t->low = low_bytes;
		t->high = high_bytes;
		if (h > (high_bytes - low_bytes) / 4)
			h = (high_bytes - low_bytes) / 4;
	} else {
		t->low = pct_of(limit, low);
		t->high = pct_of(limit, high);
	}
	t->low_exit = t->low + h;
	t->high_exit = t->high - h;
}

/* Next level from available memory, with hysteresis around each threshold
   (entering a level is immediate, leaving it needs the margin). */
enum mn_memory_level mn__level_step(const struct mn__thresholds *t,
				    enum mn_memory_level cur, uint64_t avail)
{
	switch (cur) {
	case MN_MEMORY_LOW:
		if (avail >= t->high)
			return MN_MEMORY_HIGH;
		return avail >= t->low_exit ? MN_MEMORY_NEUTRAL : MN_MEMORY_LOW;
	case MN_MEMORY_NEUTRAL:
		if (avail < t->low)
			return MN_MEMORY_LOW;
		return avail >= t->high ? MN_MEMORY_HIGH : MN_MEMORY_NEUTRAL;
	case MN_MEMORY_HIGH:
		if (avail < t->low)
			return MN_MEMORY_LOW;
		return avail < t->high_exit ? MN_MEMORY_NEUTRAL : MN_MEMORY_HIGH;
	default:
		if (avail < t->low)
			return MN_MEMORY_LOW;
		return avail >= t->high ? MN_MEMORY_HIGH : MN_MEMORY_NEUTRAL;
	}
}

enum mn_memory_level mn__level_step_cache(const struct mn__thresholds *t,
					  enum mn_memory_level cur,
					  uint64_t avail, uint64_t avail_active,
					  bool confirmed)
{
	enum mn_memory_level lvl = mn__level_step(t, cur, avail);

	if (lvl != MN_MEMORY_LOW || confirmed)
		return lvl;
	return mn__level_step(t, cur, avail_active) == MN_MEMORY_LOW
		       ? MN_MEMORY_LOW
		       : MN_MEMORY_NEUTRAL;
}

enum mn_memory_level mn__level_next(unsigned int low, unsigned int high,
				    unsigned int hyst, enum mn_memory_level cur,
				    uint64_t avail, uint64_t limit)
{
	struct mn__thresholds t;

	mn__thresholds_for(low, high, hyst, 0, 0, limit, &t);
	return mn__level_step(&t, cur, avail);
}
