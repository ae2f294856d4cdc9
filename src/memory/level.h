/* SPDX-License-Identifier: MIT */
#ifndef MN_MEMORY_LEVEL_H
#define MN_MEMORY_LEVEL_H

#include <stdint.h>

#include "memnotify.h"

/*
 * The next level for a sample of @avail bytes available out of @limit,
 * from the current level @cur (MN_MEMORY_LEVEL_UNKNOWN: no history).
 * Thresholds in percent of @limit; requires low < high, hyst < (high-low)/2.
 */
enum mn_memory_level mn__level_next(unsigned int low, unsigned int high,
				    unsigned int hyst, enum mn_memory_level cur,
				    uint64_t avail, uint64_t limit);

#endif
