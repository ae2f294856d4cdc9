/* SPDX-License-Identifier: MIT */
/*
 * The memory-pressure source: argument checks, the level rule, status
 * against the kernel's own numbers, and — as root — a real memory cgroup
 * with a real hog driving LOW and back to HIGH, and the group's removal
 * reported as an error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "memnotify.h"
#include "memory/level.h"

#define MiB (1024ull * 1024ull)
#define WAIT_MS 15000

static void noop(const struct mn_memory_status *st, void *ctx)
{
	(void)st;
	(void)ctx;
}

static int subscribe_with(const struct mn_memory_opts *o)
{
	mn_sub *sub = NULL;
	int err = mn_memory_subscribe(o, noop, NULL, &sub);

	if (!err)
		assert_int_equal(mn_unsubscribe(sub), 0);
	else
		assert_null(sub);
	return err;
}

static void test_bad_arguments(void **state)
{
	mn_sub *sub;

	(void)state;
	assert_int_equal(mn_memory_subscribe(NULL, NULL, NULL, &sub), -EINVAL);
	assert_int_equal(mn_memory_subscribe(NULL, noop, NULL, NULL), -EINVAL);
	{
		MN_OPTS(mn_memory_opts, o, .low_percent = 40, .high_percent = 30);
		assert_int_equal(subscribe_with(&o), -EINVAL);
	}
	{
		MN_OPTS(mn_memory_opts, o, .low_percent = 10, .high_percent = 100);
		assert_int_equal(subscribe_with(&o), -EINVAL);
	}
	{
		MN_OPTS(mn_memory_opts, o, .low_percent = 10, .high_percent = 20,
			.hysteresis_percent = 5);
		assert_int_equal(subscribe_with(&o), -EINVAL);
	}
	{
		MN_OPTS(mn_memory_opts, o, .flags = 1u << 20);
		assert_int_equal(subscribe_with(&o), -EINVAL);
	}
	{
		MN_OPTS(mn_memory_opts, o, .poll_min_ms = 500, .poll_max_ms = 100);
		assert_int_equal(subscribe_with(&o), -EINVAL);
	}
	{
		MN_OPTS(mn_memory_opts, o, .cgroup = "/nonexistent/memnotify");
		assert_int_equal(subscribe_with(&o), -ENOENT);
		o.cgroup = "/proc/meminfo";
		assert_int_equal(subscribe_with(&o), -ENOTDIR);
		o.cgroup = "/proc";
		assert_int_equal(subscribe_with(&o), -EMEDIUMTYPE);
	}
	{
		/* A cgroup v1 hierarchy without the memory controller. */
		MN_OPTS(mn_memory_opts, o, .cgroup = "/sys/fs/cgroup/pids");
		if (access("/sys/fs/cgroup/pids/cgroup.procs", F_OK) == 0)
			assert_int_equal(subscribe_with(&o), -EOPNOTSUPP);
	}
	{
		struct mn_memory_status st = { .sz = 8 };
		assert_int_equal(mn_memory_status(NULL, &st), -EINVAL);
		assert_int_equal(mn_memory_status(NULL, NULL), -EINVAL);
	}
	assert_int_equal(mn_shutdown(), 0);
}

static void test_environment_thresholds(void **state)
{
	struct mn_memory_status st = { .sz = sizeof(st) };

	(void)state;
	setenv("MEMNOTIFY_LOW_PERCENT", "abc", 1);
	assert_int_equal(mn_memory_status(NULL, &st), -EINVAL);
	setenv("MEMNOTIFY_LOW_PERCENT", "150", 1);
	assert_int_equal(mn_memory_status(NULL, &st), -EINVAL);
	setenv("MEMNOTIFY_LOW_PERCENT", "20", 1);
	setenv("MEMNOTIFY_HIGH_PERCENT", "15", 1);
	assert_int_equal(mn_memory_status(NULL, &st), -EINVAL);
	unsetenv("MEMNOTIFY_HIGH_PERCENT");
	setenv("MEMNOTIFY_LOW_PERCENT", "15", 1);
	assert_int_equal(mn_memory_status(NULL, &st), 0);
	assert_int_equal(st.low_percent, 15);
	assert_int_equal(st.high_percent, 45); /* three times low */
	/* An explicit option wins over the environment. */
	MN_OPTS(mn_memory_opts, o, .low_percent = 5, .high_percent = 50);
	assert_int_equal(mn_memory_status(&o, &st), 0);
	assert_int_equal(st.low_percent, 5);
	assert_int_equal(st.high_percent, 50);
	unsetenv("MEMNOTIFY_LOW_PERCENT");
}

static void test_level_rule(void **state)
{
	const uint64_t L = 1000 * MiB;

	(void)state;
	/* Without history: straight thresholds. */
	assert_int_equal(mn__level_next(10, 30, 2, 0, 50 * MiB, L), MN_MEMORY_LOW);
	assert_int_equal(mn__level_next(10, 30, 2, 0, 100 * MiB, L),
			 MN_MEMORY_NEUTRAL);
	assert_int_equal(mn__level_next(10, 30, 2, 0, 300 * MiB, L), MN_MEMORY_HIGH);
	/* Hysteresis: LOW is left only at low + hyst. */
	assert_int_equal(mn__level_next(10, 30, 2, MN_MEMORY_LOW, 110 * MiB, L),
			 MN_MEMORY_LOW);
	assert_int_equal(mn__level_next(10, 30, 2, MN_MEMORY_LOW, 120 * MiB, L),
			 MN_MEMORY_NEUTRAL);
	/* HIGH is left only below high - hyst. */
	assert_int_equal(mn__level_next(10, 30, 2, MN_MEMORY_HIGH, 290 * MiB, L),
			 MN_MEMORY_HIGH);
	assert_int_equal(mn__level_next(10, 30, 2, MN_MEMORY_HIGH, 279 * MiB, L),
			 MN_MEMORY_NEUTRAL);
	/* Big jumps skip NEUTRAL. */
	assert_int_equal(mn__level_next(10, 30, 2, MN_MEMORY_HIGH, 10 * MiB, L),
			 MN_MEMORY_LOW);
	assert_int_equal(mn__level_next(10, 30, 2, MN_MEMORY_LOW, 900 * MiB, L),
			 MN_MEMORY_HIGH);
	/* No overflow at the top of the range. */
	assert_int_equal(mn__level_next(10, 30, 2, 0, UINT64_MAX, UINT64_MAX),
			 MN_MEMORY_HIGH);
	assert_int_equal(mn__level_next(10, 30, 2, 0, 0, UINT64_MAX), MN_MEMORY_LOW);
	assert_string_equal(mn_memory_level_name(MN_MEMORY_LOW), "low");
	assert_string_equal(mn_memory_level_name(MN_MEMORY_NEUTRAL), "neutral");
	assert_string_equal(mn_memory_level_name(MN_MEMORY_HIGH), "high");
	assert_string_equal(mn_memory_level_name(99), "unknown");
	assert_string_equal(mn_memory_mechanism_name(MN_MECH_PSI), "psi");
	assert_string_equal(mn_memory_mechanism_name(3), "?");
}

/* Byte thresholds (what CreateMemoryResourceNotification's absolute
   defaults need): straight comparisons, hysteresis at most a quarter of
   the gap, and the status reports them. */
static void test_byte_thresholds(void **state)
{
	struct mn__thresholds t;
	struct mn_memory_status st = { .sz = sizeof(st) };
	struct mn_memory_opts o = { .sz = sizeof(o) };

	(void)state;
	mn__thresholds_for(0, 0, 2, 32 * MiB, 96 * MiB, 4096 * MiB, &t);
	assert_int_equal(t.low, 32 * MiB);
	assert_int_equal(t.high, 96 * MiB);
	assert_int_equal(t.low_exit, 32 * MiB + 16 * MiB); /* 2 % > 64/4 */
	assert_int_equal(mn__level_step(&t, 0, 31 * MiB), MN_MEMORY_LOW);
	assert_int_equal(mn__level_step(&t, 0, 32 * MiB), MN_MEMORY_NEUTRAL);
	assert_int_equal(mn__level_step(&t, 0, 96 * MiB), MN_MEMORY_HIGH);
	assert_int_equal(mn__level_step(&t, MN_MEMORY_LOW, 40 * MiB), MN_MEMORY_LOW);
	assert_int_equal(mn__level_step(&t, MN_MEMORY_HIGH, 90 * MiB), MN_MEMORY_HIGH);
	assert_int_equal(mn__level_step(&t, MN_MEMORY_HIGH, 79 * MiB), MN_MEMORY_NEUTRAL);

	o.low_bytes = 32 * MiB;
	o.high_bytes = 96 * MiB;
	assert_int_equal(mn_memory_status(&o, &st), 0);
	assert_int_equal(st.low_bytes, 32 * MiB);
	assert_int_equal(st.high_bytes, 96 * MiB);
	assert_int_equal(st.low_percent, 0);
	assert_int_equal(st.level, st.available_bytes < 32 * MiB ? MN_MEMORY_LOW
				   : st.available_bytes >= 96 * MiB ? MN_MEMORY_HIGH
								    : MN_MEMORY_NEUTRAL);
	/* Bad combinations. */
	o.low_percent = 10;
	assert_int_equal(mn_memory_status(&o, &st), -EINVAL);
	o.low_percent = 0;
	o.high_bytes = 0;
	assert_int_equal(mn_memory_status(&o, &st), -EINVAL);
	o.high_bytes = 16 * MiB; /* low >= high */
	assert_int_equal(mn_memory_status(&o, &st), -EINVAL);
	o.low_bytes = 0; /* high without low */
	assert_int_equal(mn_memory_status(&o, &st), -EINVAL);
}

static uint64_t meminfo_kb(const char *key)
{
	char line[256];
	unsigned long long v = 0;
	size_t kl = strlen(key);
	FILE *f = fopen("/proc/meminfo", "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':')
			sscanf(line + kl + 1, "%llu", &v);
	fclose(f);
	return v;
}

static void test_status_matches_kernel(void **state)
{
	struct mn_memory_status st = { .sz = sizeof(st) };
	uint64_t total;

	(void)state;
	assert_int_equal(mn_memory_status(NULL, &st), 0);
	total = meminfo_kb("MemTotal") * 1024;
	assert_true(total > 0);
	assert_int_equal(st.physical_bytes, total);
	assert_true(st.limit_bytes > 0 && st.limit_bytes <= st.physical_bytes);
	assert_true(st.available_bytes <= st.limit_bytes);
	assert_int_equal(st.usage_bytes, st.limit_bytes - st.available_bytes);
	assert_true(st.load_percent <= 100);
	assert_int_equal(st.mechanism, MN_MECH_QUERY);
	assert_int_equal(st.level,
			 mn__level_next(st.low_percent, st.high_percent, 2, 0,
					st.available_bytes, st.limit_bytes));
	/* Without a limit below the machine, available is MemAvailable. */
	if (st.limit_bytes == st.physical_bytes) {
		uint64_t avail = meminfo_kb("MemAvailable") * 1024;
		uint64_t diff = avail > st.available_bytes
					? avail - st.available_bytes
					: st.available_bytes - avail;
		assert_true(diff < 256 * MiB); /* moved between two reads */
	}
	if (access("/proc/pressure/memory", R_OK) == 0)
		assert_true(st.psi_valid);
}

/* --- a real memory cgroup -------------------------------------------- */

/* The memory-level recorder of the helper library. */
#define seen mn_test_seen
#define record mn_test_seen_record

static int wait_for(struct seen *s, int from, enum mn_memory_reason reason,
		    enum mn_memory_level level)
{
	return mn_test_seen_wait(s, from, reason, level, WAIT_MS);
}

static void test_real_cgroup(void **state)
{
	static struct seen s = MN_TEST_SEEN_INIT;
	char cg[512], why[256];
	mn_sub *sub;
	pid_t hog;
	int i, j;

	(void)state;
	if (geteuid() != 0)
		skip(); /* needs root to make a memory cgroup */
	if (mn_test_cgroup_create(256 * MiB, cg, sizeof(cg), why, sizeof(why))) {
		print_message("skipped: cannot make a memory cgroup: %s\n", why);
		skip();
	}
	MN_OPTS(mn_memory_opts, o, .cgroup = cg);
	assert_int_equal(mn_memory_subscribe(&o, record, &s, &sub), 0);
	i = wait_for(&s, 0, MN_MEMORY_INITIAL, 0);
	assert_true(i >= 0);
	assert_int_equal(s.ev[i].level, MN_MEMORY_HIGH);
	assert_int_equal(s.ev[i].limit_bytes, 256 * MiB);
	assert_string_equal(s.ev[i].cgroup_path, cg);
	assert_true(s.ev[i].mechanisms_active & MN_MECH_POLL);

	/* 240 MiB in a 256 MiB group: under 10 % left -> LOW. */
	hog = mn_test_hog_start(cg, 240 * MiB, 8 * MiB, 2000, -1);
	assert_true(hog > 0);
	j = wait_for(&s, i + 1, MN_MEMORY_CHANGE, MN_MEMORY_LOW);
	mn_test_hog_stop(hog);
	assert_true(j >= 0);
	assert_true(s.ev[j].available_bytes < 256 * MiB / 10);
	assert_true(s.ev[j].load_percent >= 90);
	/* The hog is gone: back to HIGH. */
	i = wait_for(&s, j + 1, MN_MEMORY_CHANGE, MN_MEMORY_HIGH);
	assert_true(i >= 0);
	assert_true(s.ev[i].available_bytes >= 256 * MiB * 3 / 10);

	/* The group disappears under the watch: reported, not silent, with
	   the time of the failure (not of the last good sample, taken
	   before the group was removed). */
	struct timespec before;
	clock_gettime(CLOCK_REALTIME, &before);
	uint64_t removed_usec = (uint64_t)before.tv_sec * 1000000u +
				(uint64_t)before.tv_nsec / 1000u;
	assert_int_equal(mn_test_cgroup_destroy(cg), 0);
	j = wait_for(&s, i + 1, MN_MEMORY_ERROR, 0);
	if (j < 0) {
		/* No event source noticed the removal by itself; the next
		   sample (at most poll_max_ms away) must. */
		fail_msg("removal of %s was not reported", cg);
	}
	assert_int_equal(s.ev[j].error, -ENOENT);
	if (s.ev[j].time_usec < removed_usec)
		fail_msg("memory.error time %llu is before the group's removal "
			 "at %llu (the last good sample's?)",
			 (unsigned long long)s.ev[j].time_usec,
			 (unsigned long long)removed_usec);
	assert_int_equal(mn_unsubscribe(sub), 0);
	assert_int_equal(mn_shutdown(), 0);
}

/*
 * A group that exists but that the caller may not read (mode 0700, owned by
 * root, looked at by nobody) is -EACCES, not "no memory controller".
 */
static void test_unreadable_cgroup(void **state)
{
	char cg[512], why[256];
	pid_t pid;
	int status;

	(void)state;
	if (geteuid() != 0)
		skip(); /* needs root to make a group and drop to nobody */
	if (mn_test_cgroup_create(256 * MiB, cg, sizeof(cg), why, sizeof(why))) {
		print_message("skipped: cannot make a memory cgroup: %s\n", why);
		skip();
	}
	assert_int_equal(chmod(cg, 0700), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		MN_OPTS(mn_memory_opts, o, .cgroup = cg);
		struct mn_memory_status st = { .sz = sizeof(st) };
		mn_sub *sub = NULL;
		if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534))
			_exit(3);
		if (mn_memory_status(&o, &st) != -EACCES)
			_exit(4);
		if (mn_memory_subscribe(&o, noop, NULL, &sub) != -EACCES || sub)
			_exit(5);
		if (strcmp(mn_strerror(-EACCES), "permission denied"))
			_exit(6);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(mn_test_cgroup_destroy(cg), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/*
 * Many subscribers of one group, joined while first deliveries run and
 * with every third one leaving again: each that stays hears exactly one
 * first delivery (the newcomers' walk starts at the newest and stops at
 * the first subscriber already served; leaving compacts the chain).
 */
#define MANY 3000
static _Atomic int initial_of[MANY];

static void count_initial(const struct mn_memory_status *st, void *ctx)
{
	if (st->reason == MN_MEMORY_INITIAL)
		atomic_fetch_add(&initial_of[(intptr_t)ctx], 1);
}

static void test_many_subscribers(void **state)
{
	static mn_sub *subs[MANY];
	int served = 0;

	(void)state;
	for (intptr_t i = 0; i < MANY; i++) {
		assert_int_equal(mn_memory_subscribe(NULL, count_initial, (void *)i,
						     &subs[i]), 0);
		if (i % 3 == 2) {
			assert_int_equal(mn_unsubscribe(subs[i]), 0);
			subs[i] = NULL;
		}
	}
	uint64_t end = mn_test_now_usec() + WAIT_MS * 1000ull;
	while (served < MANY - MANY / 3) {
		served = 0;
		for (int i = 0; i < MANY; i++)
			served += subs[i] && atomic_load(&initial_of[i]) > 0;
		if (mn_test_now_usec() > end)
			break;
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	assert_int_equal(served, MANY - MANY / 3);
	for (int i = 0; i < MANY; i++) {
		if (subs[i]) {
			assert_int_equal(atomic_load(&initial_of[i]), 1);
			assert_int_equal(mn_unsubscribe(subs[i]), 0);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_environment_thresholds),
		cmocka_unit_test(test_level_rule),
		cmocka_unit_test(test_byte_thresholds),
		cmocka_unit_test(test_status_matches_kernel),
		cmocka_unit_test(test_real_cgroup),
		cmocka_unit_test(test_unreadable_cgroup),
		cmocka_unit_test(test_many_subscribers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
