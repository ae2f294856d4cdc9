/* SPDX-License-Identifier: MIT */
/*
 * Level rule: LOW below low% available, HIGH at or above high%, NEUTRAL in
 * between; a level is left only once available memory is hyst points past
 * its threshold (entering is immediate).  Pure: unit-tested directly.
 */
#include "level.h"

/* Next level from available memory, with hysteresis around each threshold. */
enum mn_memory_level mn__level_next(unsigned int low, unsigned int high,
				    unsigned int hyst, enum mn_memory_level cur,
				    uint64_t avail, uint64_t limit)
{
	/* Compare avail / limit with pct / 100 without floating point. */
	unsigned __int128 a = (unsigned __int128)avail * 100;
	unsigned __int128 lo = (unsigned __int128)limit * low;
	unsigned __int128 hi = (unsigned __int128)limit * high;
	unsigned __int128 lo_exit = (unsigned __int128)limit * (low + hyst);
	unsigned __int128 hi_exit = (unsigned __int128)limit * (high - hyst);

	switch (cur) {
	case MN_MEMORY_LOW:
		if (a >= hi)
			return MN_MEMORY_HIGH;
		return a >= lo_exit ? MN_MEMORY_NEUTRAL : MN_MEMORY_LOW;
	case MN_MEMORY_NEUTRAL:
		if (a < lo)
			return MN_MEMORY_LOW;
		return a >= hi ? MN_MEMORY_HIGH : MN_MEMORY_NEUTRAL;
	case MN_MEMORY_HIGH:
		if (a < lo)
			return MN_MEMORY_LOW;
		return a < hi_exit ? MN_MEMORY_NEUTRAL : MN_MEMORY_HIGH;
	default:
		if (a < lo)
			return MN_MEMORY_LOW;
		return a >= hi ? MN_MEMORY_HIGH : MN_MEMORY_NEUTRAL;
	}
}

