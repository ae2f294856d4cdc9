/* SPDX-License-Identifier: MIT */
/*
 * levels_pagecache — the page-cache rule against the usage rule, in the
 * same run (root, a memory cgroup controller, /var/tmp on a disk
 * filesystem).  Each case makes a fresh 512 MiB group (LOW under 51 MiB
 * available, HIGH from 153) and watches it twice: with the default rule
 * ("new") and with MN_MEMORY_COUNT_ACTIVE_FILE, the usage rule alone
 * ("old", the baseline).  Both watches have MN_MEMORY_NO_PSI (the
 * machine-wide PSI of v1 stalls for other jobs too).  Cases:
 *  - cache: a child reads a 480 MiB file three times (all of it active
 *    page cache, all reclaimable), then idles 3 s;
 *  - ramp:  a 400 MiB file read twice, then an anonymous hog grows to
 *    480 MiB, 8 MiB every 50 ms; the crossing (memory other than file
 *    pages leaving under 51 MiB) is seen by a 5 ms poll of the kernel's
 *    files, and each rule's first LOW is timed from it;
 *  - squeeze: a child re-reads a 300 MiB file for ever while a 300 MiB
 *    anonymous hog joins it (the working set no longer fits: refaults),
 *    for 6 s.
 * Printed per case and rule: level changes, LOW entries, the sequence of
 * levels; ratios new/old.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "memnotify.h"

#define MiB (1024ull * 1024ull)
#define LIMIT (512 * MiB)
#define TMPFS_MAGIC_ 0x01021994

static char cg[512], file[128];

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static uint64_t real_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A file of @mib MiB in /var/tmp, not in the page cache; -1 on tmpfs. */
static int make_file(unsigned int mib)
{
	static char buf[1 << 20];
	struct statfs sf;

	snprintf(file, sizeof(file), "/var/tmp/mn-bench-pcache-%d", (int)getpid());
	if (statfs("/var/tmp", &sf) < 0 || sf.f_type == TMPFS_MAGIC_)
		return -1;
	int fd = open(file, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	memset(buf, 'x', sizeof(buf));
	for (unsigned int i = 0; i < mib; i++)
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			return -1;
	fsync(fd);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	return 0;
}

/* A child in the group reading the file @passes times (< 0: for ever);
   exits after the passes, so that waitpid() says they are done. */
static pid_t reader(int passes)
{
	return mn_test_reader_start(cg, file, passes, -1);
}

static uint64_t key_of(const char *buf, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\n%s ", key);
	const char *p = strstr(buf, pat);
	return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

/* The group's memory other than file pages (usage less inactive and
   active file), from the kernel's files (v1). */
static uint64_t used_not_file(void)
{
	static char buf[8192];
	char p[600];
	uint64_t usage = 0;
	ssize_t n;
	int fd;

	snprintf(p, sizeof(p), "%s/memory.usage_in_bytes", cg);
	if ((fd = open(p, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, buf, 64);
		buf[n > 0 ? n : 0] = '\0';
		usage = strtoull(buf, NULL, 10);
		close(fd);
	}
	snprintf(p, sizeof(p), "%s/memory.stat", cg);
	buf[0] = '\n';
	buf[1] = '\0';
	if ((fd = open(p, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, buf + 1, sizeof(buf) - 2);
		buf[n > 0 ? n + 1 : 1] = '\0';
		close(fd);
	}
	uint64_t f = key_of(buf, "total_inactive_file") +
		     key_of(buf, "total_active_file");
	return usage > f ? usage - f : 0;
}

struct rule {
	const char *name;
	unsigned int flags;
	struct mn_test_seen seen;
	mn_sub *sub;
};

static struct rule rules[2] = {
	{ "old", MN_MEMORY_COUNT_ACTIVE_FILE, MN_TEST_SEEN_INIT, NULL },
	{ "new", 0, MN_TEST_SEEN_INIT, NULL },
};

static int start(void)
{
	char why[256];

	if (mn_test_cgroup_create(LIMIT, cg, sizeof(cg), why, sizeof(why))) {
		printf("skip: cannot make a memory cgroup: %s\n", why);
		return 77;
	}
	for (int r = 0; r < 2; r++) {
		rules[r].seen.n = 0;
		MN_OPTS(mn_memory_opts, o, .cgroup = cg,
			.flags = MN_MEMORY_NO_PSI | rules[r].flags);
		if (mn_memory_subscribe(&o, mn_test_seen_record, &rules[r].seen,
					&rules[r].sub))
			return 1;
		mn_test_seen_wait(&rules[r].seen, 0, MN_MEMORY_INITIAL, 0, 5000);
	}
	return 0;
}

/* Stop the watches and print each rule's figures; @cross: the crossing's
   CLOCK_REALTIME usec (0: none); @changes and @low_entries get the old
   and the new rule's counts.  The watches end before the hogs do. */
static void finish(const char *name, uint64_t cross, int changes[2],
		   int low_entries[2])
{
	for (int r = 0; r < 2; r++) {
		struct mn_test_seen *s = &rules[r].seen;
		char seq[512] = "";
		int lows = 0, n = 0;
		int64_t first_low = 0;
		mn_unsubscribe(rules[r].sub);
		pthread_mutex_lock(&s->lock);
		for (int i = 0; i < s->n; i++) {
			const struct mn_memory_status *e = &s->ev[i];
			size_t l = strlen(seq);
			snprintf(seq + l, sizeof(seq) - l, "%s%s", l ? ">" : "",
				 mn_memory_level_name(e->level));
			if (e->reason != MN_MEMORY_CHANGE)
				continue;
			n++;
			if (e->level == MN_MEMORY_LOW && !lows++ && cross)
				first_low = (int64_t)(e->time_usec - cross);
		}
		pthread_mutex_unlock(&s->lock);
		changes[r] = n;
		low_entries[r] = lows;
		printf("  %-7s %s: %2d changes, %d LOW entries", name,
		       rules[r].name, n, lows);
		if (cross && lows)
			printf(", first LOW %+lld ms from the crossing",
			       (long long)(first_low / 1000));
		printf("\n          %s\n", seq);
	}
	mn_shutdown();
	mn_test_cgroup_destroy(cg);
	unlink(file);
}

static double ratio(int a, int b)
{
	return b ? (double)a / b : (double)a;
}

int main(void)
{
	int c[3][2], l[3][2], err;

	if (geteuid() != 0) {
		printf("skip: needs root for memory cgroups\n");
		return 77;
	}
	/* cache */
	if ((err = start()))
		return err;
	if (make_file(480)) {
		printf("skip: /var/tmp is not a disk filesystem\n");
		return 77;
	}
	pid_t r = reader(3);
	waitpid(r, NULL, 0);
	sleep_ms(3000);
	finish("cache", 0, c[0], l[0]);

	/* ramp */
	if ((err = start()) || make_file(400))
		return err ? err : 1;
	waitpid(reader(2), NULL, 0);
	pid_t h = mn_test_hog_start(cg, 480 * MiB, 8 * MiB, 50000, -1);
	uint64_t cross = 0, end = mn_test_now_usec() + 30000000u;
	while (!cross && mn_test_now_usec() < end) {
		if (used_not_file() > LIMIT - LIMIT / 10)
			cross = real_usec();
		sleep_ms(5);
	}
	sleep_ms(1500);
	finish("ramp", cross, c[1], l[1]);
	mn_test_hog_stop(h);

	/* squeeze */
	if ((err = start()) || make_file(300))
		return err ? err : 1;
	r = reader(-1);
	sleep_ms(1500);
	h = mn_test_hog_start(cg, 300 * MiB, 16 * MiB, 20000, -1);
	sleep_ms(6000);
	finish("squeeze", 0, c[2], l[2]);
	mn_test_hog_stop(h);
	mn_test_hog_stop(r);

	printf("level changes new/old: cache %.2f, ramp %.2f, squeeze %.2f\n",
	       ratio(c[0][1], c[0][0]), ratio(c[1][1], c[1][0]),
	       ratio(c[2][1], c[2][0]));
	printf("LOW entries new/old:   cache %d/%d, ramp %d/%d, squeeze %d/%d\n",
	       l[0][1], l[0][0], l[1][1], l[1][0], l[2][1], l[2][0]);
	return 0;
}
