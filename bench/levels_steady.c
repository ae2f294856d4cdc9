/* SPDX-License-Identifier: MIT */
/*
 * levels_steady — what a memory watch costs when nothing changes.
 *
 * Setup (root, a memory cgroup controller): N child groups with a 512 MiB
 * limit each (tests/helpers.c), one subscription per group, nothing
 * running in them unless said.  For each case the benchmark waits 3 s for
 * the watch to settle, then reads mn_stats() twice, 6 s apart, and prints
 * the dispatcher's wakeups and the samples taken per group per second, and
 * the fds the process holds per group.  Cases:
 *  - far:  default thresholds (LOW < 10 %, HIGH >= 30 %), the group idle:
 *          HIGH, far from either threshold;
 *  - near: byte thresholds 10 MiB above and 30 MiB below the group's
 *          available memory at the start (NEUTRAL, 10 MiB from HIGH);
 *  - low:  a real hog holding 480 MiB of the 512 MiB (LOW, steady) — one
 *          group only.
 * each with 1 and with 200 groups (low: 1).  The baseline, measured in the
 * same run, is the 2 s sampling ceiling: 0.5 samples/s per group; the
 * issue's goal is under 2 wakeups/s per group in any steady state.
 *
 * Flapping: a hog holding 444 MiB of a 512 MiB group and swinging another
 * 24 MiB every 200 ms (available memory about 68 <-> 44 MiB, across LOW at
 * 51 and its exit at 61): level changes per second over 6 s with a 1 ms
 * dwell (the baseline: no damping) and with the default dwell.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "memnotify.h"

#define MiB (1024ull * 1024ull)
#define MAX_GROUPS 200

static char groups[MAX_GROUPS][512];
static mn_sub *subs[MAX_GROUPS];

static void noop(const struct mn_memory_status *st, void *ctx)
{
	(void)st;
	(void)ctx;
}


static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int run_case(const char *name, int n, int mode)
{
	struct mn_stats a = { .sz = sizeof(a) }, b = { .sz = sizeof(b) };
	pid_t hog = 0;
	int fds0 = mn_test_count_fds();

	for (int i = 0; i < n; i++) {
		char why[256];
		if (mn_test_cgroup_create(512 * MiB, groups[i], sizeof(groups[i]),
					  why, sizeof(why))) {
			printf("skip: cannot make a memory cgroup: %s\n", why);
			return 77;
		}
	}
	if (mode == 2) {
		hog = mn_test_hog_start(groups[0], 480 * MiB, 16 * MiB, 1000, -1);
		sleep_ms(1500);
	}
	for (int i = 0; i < n; i++) {
		MN_OPTS(mn_memory_opts, o, .cgroup = groups[i]);
		if (mode == 1) {
			struct mn_memory_status st = { .sz = sizeof(st) };
			if (mn_memory_status(&o, &st))
				return 1;
			o.low_bytes = st.available_bytes - 30 * MiB;
			o.high_bytes = st.available_bytes + 10 * MiB;
		}
		int err = mn_memory_subscribe(&o, noop, NULL, &subs[i]);
		if (err) {
			printf("%s: subscribe %d: %s\n", name, i, mn_strerror(err));
			return 1;
		}
	}
	sleep_ms(3000);
	int fds = mn_test_count_fds() - fds0;
	mn_get_stats(&a);
	sleep_ms(6000);
	mn_get_stats(&b);
	double w = (double)(b.wakeups - a.wakeups) / 6.0 / n;
	double s = (double)(b.samples - a.samples) / 6.0 / n;
	printf("%-5s %3d group(s): %6.2f wakeups/s and %6.2f samples/s per "
	       "group (%.1fx the 2 s ceiling), %.1f fds per group\n",
	       name, n, w, s, s / 0.5, (double)fds / n);
	for (int i = 0; i < n; i++)
		mn_unsubscribe(subs[i]);
	mn_shutdown();
	if (hog)
		mn_test_hog_stop(hog);
	for (int i = 0; i < n; i++)
		mn_test_cgroup_destroy(groups[i]);
	return 0;
}


static _Atomic int changes;

static void count_change(const struct mn_memory_status *st, void *ctx)
{
	(void)ctx;
	if (st->reason == MN_MEMORY_CHANGE)
		changes++;
}

/* Level changes per second for a hog swinging 24 MiB every 200 ms across
   the LOW threshold of a 512 MiB group, with a dwell of @dwell_ms. */
static int run_swing(unsigned int dwell_ms)
{
	char why[256];
	mn_sub *sub;

	if (mn_test_cgroup_create(512 * MiB, groups[0], sizeof(groups[0]), why,
				  sizeof(why))) {
		printf("skip: cannot make a memory cgroup: %s\n", why);
		return 77;
	}
	MN_OPTS(mn_memory_opts, o, .cgroup = groups[0], .min_dwell_ms = dwell_ms);
	if (mn_memory_subscribe(&o, count_change, NULL, &sub))
		return 1;
	pid_t hog = mn_test_swing_start(groups[0], 444, 24, 200);
	sleep_ms(1000);
	changes = 0;
	sleep_ms(6000);
	printf("swing ±24 MiB/200 ms, dwell %s: %5.2f level changes/s\n",
	       dwell_ms ? "1 ms (baseline)" : "default (1 s)", changes / 6.0);
	mn_unsubscribe(sub);
	mn_shutdown();
	mn_test_hog_stop(hog);
	mn_test_cgroup_destroy(groups[0]);
	return 0;
}

int main(void)
{
	static const struct {
		const char *name;
		int n, mode;
	} cases[] = {
		{ "far", 1, 0 },  { "near", 1, 1 }, { "low", 1, 2 },
		{ "far", 200, 0 }, { "near", 200, 1 },
	};
	struct rlimit rl = { 65536, 65536 };

	if (geteuid() != 0) {
		printf("skip: needs root to make memory cgroups\n");
		return 77;
	}
	setrlimit(RLIMIT_NOFILE, &rl);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = run_case(cases[i].name, cases[i].n, cases[i].mode);
		if (rc)
			return rc;
	}
	/* 1 ms: no damping to speak of (the baseline); 0: the default. */
	int rc = run_swing(1);
	return rc ? rc : run_swing(0);
}
