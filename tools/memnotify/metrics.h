/* SPDX-License-Identifier: MIT */
/*
 * Metrics of `memnotify watch`: the Prometheus text exposition (0.0.4, what
 * node_exporter's textfile collector reads) and OpenMetrics 1.0.
 */
#ifndef MN_TOOL_METRICS_H
#define MN_TOOL_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "memnotify.h"

enum metrics_format {
	METRICS_PROMETHEUS = 0, /* text format 0.0.4 */
	METRICS_OPENMETRICS = 1, /* OpenMetrics 1.0, ends with "# EOF" */
};

struct metrics {
	struct mn_memory_status st;  /* the newest sample */
	bool have;                   /* st holds a sample */
	bool up;                     /* the watched group could be read */
	enum mn_memory_level level;  /* the watch's level (with hysteresis) */
	/* Bad memory since the start, [0] process scope, [1] system scope. */
	uint64_t bad_pages[2];
	uint64_t bad_bytes[2];
	uint64_t bad_lost;
};

/* A memory sample: @level_too takes its level as the watch's (a
   subscription delivery); otherwise only the byte values, load and PSI are
   taken (a fresh mn_memory_status() between level changes). */
void metrics_sample(struct metrics *m, const struct mn_memory_status *st,
		    bool level_too);
/* The watched group failed (memory.error): up becomes 0. */
void metrics_down(struct metrics *m, const struct mn_memory_status *st);
void metrics_badmem(struct metrics *m, const struct mn_badmem_event *ev);
/* One whole exposition. */
void metrics_write(FILE *f, const struct metrics *m, enum metrics_format fmt);
/* Replace @path atomically with the Prometheus text exposition: a temporary
   file in the same directory, then rename(2).  Return 0 or -errno. */
int metrics_textfile(const char *path, const struct metrics *m);

#endif
