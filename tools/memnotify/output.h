/* SPDX-License-Identifier: MIT */
/* Formatting of memnotify's command output: JSON lines and plain text. */
#ifndef MN_TOOL_OUTPUT_H
#define MN_TOOL_OUTPUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "memnotify.h"

/* RFC 3339 UTC with milliseconds, e.g. 2026-11-22T01:55:18.123Z. */
void out_time(char *buf, size_t len, uint64_t time_usec);
/* A JSON string literal, quoted and escaped. */
void out_json_str(FILE *f, const char *s);
/* One memory event: @event is "memory.status", "memory.level" or
   "memory.error". */
/* The event name of a delivery: memory.status, .level, .moved, .oom or
   .error. */
const char *out_memory_event(enum mn_memory_reason reason);
void out_memory(FILE *f, bool json, const char *event,
		const struct mn_memory_status *st);
void out_memory_header(FILE *f);
/* One bad-memory event: "memory.bad_page" or "memory.bad_page_lost". */
void out_badmem(FILE *f, bool json, const struct mn_badmem_event *ev);
/* The capability table (status). */
void out_capabilities(FILE *f, bool json);

#endif
