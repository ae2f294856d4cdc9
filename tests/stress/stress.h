/* SPDX-License-Identifier: MIT */
/*
 * The stress suite's few shared pieces: a deadline, a verdict line, and a
 * child that must finish in time.
 */
#ifndef MN_STRESS_H
#define MN_STRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Seconds a stress program runs its loops for (MEMNOTIFY_STRESS_SECONDS,
   default 2). */
double stress_seconds(void);
/* True until stress_seconds() have passed since the first call. */
bool stress_running(void);
/* CLOCK_MONOTONIC in seconds. */
double stress_now(void);
/* @len bytes of fresh private anonymous memory, every page touched (so
   resident); NULL if mmap fails. */
char *stress_anon(size_t len);
/* Record one check: @ok, with a line naming it when it fails. */
void stress_check(bool ok, const char *what);
/* Print "NAME: ITERS iterations" and the closing "P passed, F failed"
   line; return the exit code (0 or 1). */
int stress_finish(const char *name, uint64_t iterations);
/*
 * Wait for @pid for at most @timeout_ms; a child still running then is
 * killed and counts as a hang.  Returns the wait status, or -1 for a hang.
 */
int stress_wait_child(pid_t pid, int timeout_ms);

#endif
