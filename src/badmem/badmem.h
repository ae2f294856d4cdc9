/* SPDX-License-Identifier: MIT */
#ifndef MN_BADMEM_H
#define MN_BADMEM_H

#include <stddef.h>

/* Bad ranges the table holds; more are counted as lost and reported. */
#define MN__BADMEM_CAPACITY 4096

/* The capability rows of bad memory (probe.c): X(enum mn_cap, name,
   probe), for src/caps_table.c. */
#define MN__BADMEM_CAPS(X)                                                    \
	X(MN_CAP_MEMORY_FAILURE, "memory_failure", mn__probe_memory_failure)  \
	X(MN_CAP_MCE_EARLY_KILL, "mce_early_kill", mn__probe_mce_early_kill)  \
	X(MN_CAP_PATROL_SCRUBBER, "patrol_scrubber",                          \
	  mn__probe_patrol_scrubber)                                          \
	X(MN_CAP_HWPOISON_INJECT, "hwpoison_inject",                          \
	  mn__probe_hwpoison_inject)                                          \
	X(MN_CAP_MEMORY_FAILURE_TRACEPOINT, "memory_failure_tracepoint",      \
	  mn__probe_memory_failure_tracepoint)

int mn__probe_memory_failure(char *detail, size_t len);
int mn__probe_mce_early_kill(char *detail, size_t len);
int mn__probe_patrol_scrubber(char *detail, size_t len);
int mn__probe_hwpoison_inject(char *detail, size_t len);
int mn__probe_memory_failure_tracepoint(char *detail, size_t len);

#endif
