/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers of the tests and benchmarks: real memory cgroups, child
 * processes that hog memory, bounded waits.  Exit code 77 means "skipped".
 */
#ifndef MN_TEST_HELPERS_H
#define MN_TEST_HELPERS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "memnotify.h"

#define MN_TEST_SKIP 77

/*
 * Make a child memory cgroup with a hard limit of @limit_bytes under this
 * process's own memory cgroup (v2 if it has the memory controller, else v1).
 * @path gets its directory.  Returns 0, or -errno with a reason in @why
 * (for a skip message) when this machine cannot make one (not root, no
 * memory controller, read-only cgroupfs).
 */
int mn_test_cgroup_create(uint64_t limit_bytes, char *path, size_t pathlen,
			  char *why, size_t whylen);
/* Move @pid into the group (cgroup.procs).  Returns 0 or -errno. */
int mn_test_cgroup_enter(const char *path, pid_t pid);
/* Remove the group, killing what is left in it.  Returns 0 or -errno. */
int mn_test_cgroup_destroy(const char *path);

/*
 * fork(); the child joins the cgroup directory @cg (NULL: stays where it
 * is) and gets 0, or _exit(3)s if it cannot.  The parent gets the child's
 * pid, or -1.  The child of a threaded process: it makes only
 * async-signal-safe calls until it is on its own.
 */
pid_t mn_test_fork_into(const char *cg);
/*
 * A page-cache reader in @cg: it reads @file whole @passes times (< 0:
 * for ever), writes one byte to @done_fd after each pass, then waits to
 * be killed (mn_test_hog_stop).  The pid, or -1.
 */
pid_t mn_test_reader_start(const char *cg, const char *file, int passes,
			   int done_fd);
/*
 * Fork a child that joins @cgroup (if not NULL), then allocates and touches
 * @bytes in steps of @step_bytes with @step_usec between steps, then waits
 * to be killed (or exits after @hold_ms if >= 0).
 */
pid_t mn_test_hog_start(const char *cgroup, uint64_t bytes, uint64_t step_bytes,
			unsigned int step_usec, int hold_ms);
/*
 * Fork a child that joins @cgroup, holds @base_mib and touches, then
 * drops (MADV_DONTNEED), another @swing_mib every @period_ms, until killed
 * (mn_test_hog_stop).  The pid, or -1.
 */
pid_t mn_test_swing_start(const char *cgroup, unsigned int base_mib,
			  unsigned int swing_mib, unsigned int period_ms);
/* SIGKILL and reap. */
void mn_test_hog_stop(pid_t pid);

uint64_t mn_test_now_usec(void); /* CLOCK_MONOTONIC */
/* The file descriptors this process has open now (/proc/self/fd, not
   counting the one that reads it); -1 if it cannot be read. */
int mn_test_count_fds(void);

/*
 * An event recorder with a bounded wait: a callback records what it saw
 * between mn_test_rec_lock() and mn_test_rec_done() (which counts one
 * event and wakes the waiters); the test waits for the count with
 * mn_test_rec_wait().  Zero-initialise it, then mn_test_rec_init().
 */
struct mn_test_rec {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int n;              /* events counted */
};
void mn_test_rec_init(struct mn_test_rec *r);
void mn_test_rec_lock(struct mn_test_rec *r);
void mn_test_rec_done(struct mn_test_rec *r); /* n++, wake, unlock */
/* Wait until at least @n events were counted, at most @timeout_ms.
   True if they were. */
bool mn_test_rec_wait(struct mn_test_rec *r, int n, int timeout_ms);
/* The count now. */
int mn_test_rec_count(struct mn_test_rec *r);

/*
 * A recorder of memory-level deliveries: mn_test_seen_record is the
 * callback (ctx: the recorder), mn_test_seen_wait waits (bounded) for a
 * delivery with @reason and @level (0: any) at index @from or later and
 * returns its index, or -1.  Static ones start as MN_TEST_SEEN_INIT.
 */
#define MN_TEST_SEEN_MAX 256
struct mn_test_seen {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int n;
	struct mn_memory_status ev[MN_TEST_SEEN_MAX];
};
#define MN_TEST_SEEN_INIT                                                     \
	{ PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, { { 0 } } }
void mn_test_seen_record(const struct mn_memory_status *st, void *ctx);
int mn_test_seen_wait(struct mn_test_seen *s, int from,
		      enum mn_memory_reason reason, enum mn_memory_level level,
		      int timeout_ms);

/*
 * Run @fn(@arg) in a forked child whose stderr is captured (core dumps
 * off, @sig's disposition back to SIG_DFL so that no test framework's
 * crash catcher stands in the way; 0: none), and wait for it.  Returns its
 * wait status; what it wrote to stderr (up to @len - 1 bytes) is in @err.
 * -1 if it could not be started.
 */
int mn_test_child(void (*fn)(void *), void *arg, int sig, char *err, size_t len);
/* True if @status is a death by signal @sig; otherwise says how the child
   ended in @why. */
bool mn_test_died_by(int status, int sig, char *why, size_t whylen);

#endif
