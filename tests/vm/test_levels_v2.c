/* SPDX-License-Identifier: MIT */
/*
 * Memory levels on cgroup v2 (the VM bed's guest; root): the situations of
 * tests/test_memory_levels.c, which this machine runs on v1, with real v2
 * groups and real hogs.  Skips (77) with the reason where the own group is
 * not a v2 group with the memory controller, or without root.
 *  - the hierarchy: a sibling's usage under a limited parent counts in an
 *    idle child's available memory, and the parent's memory.events wake
 *    the child's events-only watch;
 *  - the process moves from a 512 MiB group to a 256 MiB one: its own
 *    group's watch says MN_MEMORY_MOVED with the new limit, and the
 *    groups' removal is no error;
 *  - an OOM kill in the group or a sibling is an MN_MEMORY_OOM event, with
 *    oom_kill_count as the group's memory.events counts it;
 *  - an events-only watch follows memory.max and memory.high changes.
 * Waits are bounded (generous: the guest runs under TCG emulation).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "memnotify.h"

#define MiB (1024ull * 1024ull)
#define WAIT_MS 60000

#define seen mn_test_seen
#define record mn_test_seen_record

static int wait_for(struct seen *s, int from, enum mn_memory_reason reason,
		    enum mn_memory_level level)
{
	return mn_test_seen_wait(s, from, reason, level, WAIT_MS);
}

static int write_file(const char *dir, const char *name, uint64_t v)
{
	char p[600], val[32];
	int fd, err = 0;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	snprintf(val, sizeof(val), "%llu", (unsigned long long)v);
	fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		err = -errno;
	close(fd);
	return err;
}

/* A key's value in a flat-keyed file of @dir ("" for a one-value file). */
static uint64_t read_key(const char *dir, const char *name, const char *key)
{
	char p[600], buf[8192], *at = buf;
	unsigned long long v = 0;
	ssize_t n;
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	size_t klen = strlen(key);
	while (klen && at && !(!strncmp(at, key, klen) && at[klen] == ' '))
		at = (at = strchr(at, '\n')) ? at + 1 : NULL;
	assert_non_null(at);
	assert_int_equal(sscanf(at + (klen ? klen + 1 : 0), "%llu", &v), 1);
	return v;
}

/* What a limited v2 group has left: limit - (current - inactive_file). */
static uint64_t remaining(const char *g, uint64_t limit)
{
	uint64_t used = read_key(g, "memory.current", "") -
			read_key(g, "memory.stat", "inactive_file");
	return limit > used ? limit - used : 0;
}

/* A step of a test, with the time since the program started (the guest
   runs under emulation: where the time goes is worth seeing). */
static uint64_t t0;
#define note(...)                                                           \
	do {                                                                 \
		print_message("[%6.1f s] ",                                   \
			      (double)(mn_test_now_usec() - t0) / 1e6);       \
		print_message(__VA_ARGS__);                                   \
		print_message("\n");                                          \
	} while (0)

static uint64_t diff(uint64_t a, uint64_t b)
{
	return a > b ? a - b : b - a;
}

/* Wait (bounded) until the group's memory.current reaches @bytes. */
static void wait_usage(const char *g, uint64_t bytes)
{
	uint64_t end = mn_test_now_usec() + WAIT_MS * 1000ull;

	while (read_key(g, "memory.current", "") < bytes) {
		if (mn_test_now_usec() > end)
			fail_msg("%s never reached %llu MiB", g,
				 (unsigned long long)(bytes / MiB));
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

/* The group's usage once what is in it has stopped growing (bounded). */
static uint64_t settled_usage(const char *g, uint64_t at_least)
{
	uint64_t prev = 0, now = read_key(g, "memory.current", "");

	for (int n = 0; n < WAIT_MS / 100; n++) {
		if (now >= at_least && now - prev < MiB / 4)
			return now;
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		prev = now;
		now = read_key(g, "memory.current", "");
	}
	fail_msg("%s did not settle at %llu MiB or more", g,
		 (unsigned long long)(at_least / MiB));
	return 0;
}

/*
 * What a test leaves behind if it fails half-way (a hog holding the output
 * pipe open would keep ctest waiting): each test's hogs and groups, killed
 * and removed by the teardown in reverse order.
 */
static pid_t hogs[4];
static char groups[6][600];
static int n_hogs, n_groups;

/*
 * A hog (as mn_test_hog_start: it joins @g, touches @bytes, then waits to be
 * killed, or exits after @hold_ms if >= 0) that also dies with this
 * process, whatever ends it (PR_SET_PDEATHSIG).
 */
static pid_t hog_start(const char *g, uint64_t bytes, int hold_ms)
{
	char procs[600];
	pid_t parent = getpid(), pid;

	snprintf(procs, sizeof(procs), "%s/cgroup.procs", g);
	pid = fork();
	assert_true(pid >= 0);
	if (pid > 0) {
		hogs[n_hogs++] = pid;
		return pid;
	}
	/* The child of a threaded process: async-signal-safe calls only. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(2);
	int fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "0", 1) != 1)
		_exit(3);
	close(fd);
	char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(4);
	for (uint64_t off = 0; off < bytes; off += 4096)
		p[off] = 1;
	if (hold_ms >= 0) {
		struct timespec ts = { hold_ms / 1000, (hold_ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
		_exit(0);
	}
	for (;;)
		pause();
}

static void hog_stop(pid_t pid)
{
	for (int i = 0; i < n_hogs; i++)
		if (hogs[i] == pid) {
			mn_test_hog_stop(pid);
			hogs[i] = 0;
		}
}

/* Reap a hog that ends by itself; its wait status. */
static int hog_wait(pid_t pid)
{
	int status = 0;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	for (int i = 0; i < n_hogs; i++)
		if (hogs[i] == pid)
			hogs[i] = 0;
	return status;
}

/* Where the process was before a test moved it ("": not moved). */
static char home[512];

static void keep_group(const char *g)
{
	snprintf(groups[n_groups++], sizeof(groups[0]), "%s", g);
}

/* Remove a group: EBUSY is retried for a while (a killed task may still
   be on its way out), and what keeps it is printed. */
static int destroy(const char *g)
{
	int err = 0;

	for (int i = 0; i < 100; i++) {
		err = mn_test_cgroup_destroy(g);
		if (err != -EBUSY)
			break;
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (err) {
		char cmd[700];
		print_message("cannot remove %s: %s\n", g, strerror(-err));
		snprintf(cmd, sizeof(cmd), "cd %s && head cgroup.procs cgroup.events "
			 "memory.current >&2; ls -d */ >&2", g);
		if (system(cmd) < 0)
			print_message("cannot run sh\n");
	}
	for (int i = 0; i < n_groups; i++)
		if (!strcmp(groups[i], g))
			groups[i][0] = '\0';
	return err;
}

static int teardown(void **state)
{
	(void)state;
	if (home[0] && mn_test_cgroup_enter(home, 0) != 0)
		print_message("cannot go back to %s\n", home);
	home[0] = '\0';
	for (int i = n_hogs; i-- > 0;)
		if (hogs[i] > 0)
			hog_stop(hogs[i]);
	for (int i = n_groups; i-- > 0;)
		if (groups[i][0])
			destroy(groups[i]);
	n_hogs = n_groups = 0;
	return 0;
}

/* A group limited to @limit (memory.max, no swap) beside ours. */
static void make_group(uint64_t limit, char *g, size_t len)
{
	char why[256];

	if (mn_test_cgroup_create(limit, g, len, why, sizeof(why))) {
		print_message("skipped: cannot make a memory cgroup: %s\n", why);
		skip();
	}
	keep_group(g);
}

/* A limited parent and its children a and b, with the memory controller. */
static void make_family(uint64_t limit, char *p, size_t plen, char *a,
			char *b, size_t len)
{
	char file[600];

	make_group(limit, p, plen);
	snprintf(file, sizeof(file), "%s/cgroup.subtree_control", p);
	int fd = open(file, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_true(write(fd, "+memory", 7) == 7);
	close(fd);
	snprintf(a, len, "%s/a", p);
	snprintf(b, len, "%s/b", p);
	assert_int_equal(mkdir(a, 0755), 0);
	keep_group(a);
	assert_int_equal(mkdir(b, 0755), 0);
	keep_group(b);
}

/*
 * Parent: memory.max 600 MiB; child a idle, child b a 500 MiB hog.  a's
 * watch reports what the parent has left (about 100 MiB, NEUTRAL), not
 * a's own ~600 MiB (HIGH).  Then a second hog in b outgrows the parent:
 * the parent's memory.events ("max", "oom") wake a's events-only watch
 * (no sampling, no PSI: a's own files say nothing), which reports LOW.
 */
static void test_v2_sibling_fills_parent(void **state)
{
	static struct seen s = MN_TEST_SEEN_INIT, e = MN_TEST_SEEN_INIT;
	char p[512], a[600], b[600];
	mn_sub *sub, *esub;
	int i, j, k;

	(void)state;
	make_family(600 * MiB, p, sizeof(p), a, b, sizeof(a));
	MN_OPTS(mn_memory_opts, o, .cgroup = a);
	MN_OPTS(mn_memory_opts, eo, .cgroup = a,
		.flags = MN_MEMORY_NO_POLL | MN_MEMORY_NO_PSI);
	assert_int_equal(mn_memory_subscribe(&o, record, &s, &sub), 0);
	assert_int_equal(mn_memory_subscribe(&eo, record, &e, &esub), 0);
	i = wait_for(&s, 0, MN_MEMORY_INITIAL, 0);
	k = wait_for(&e, 0, MN_MEMORY_INITIAL, 0);
	assert_true(i >= 0 && k >= 0);
	assert_int_equal(s.ev[i].cgroup_version, MN_CGROUP_V2);
	assert_int_equal(s.ev[i].level, MN_MEMORY_HIGH);
	assert_int_equal(s.ev[i].limit_bytes, 600 * MiB);
	assert_int_equal(e.ev[k].mechanisms_active, MN_MECH_CGROUP_V2_EVENTS);

	pid_t hog = hog_start(b, 500 * MiB, -1);
	wait_usage(p, 500 * MiB);
	note("b's hog holds 500 MiB");
	j = wait_for(&s, i + 1, MN_MEMORY_CHANGE, 0);
	if (j < 0)
		fail_msg("a sibling's 500 MiB left %s at %s", a,
			 mn_memory_level_name(s.ev[s.n - 1].level));
	print_message("a's watch: %s, available %llu MiB, parent's left %llu "
		      "MiB\n", mn_memory_level_name(s.ev[j].level),
		      (unsigned long long)(s.ev[j].available_bytes / MiB),
		      (unsigned long long)(remaining(p, 600 * MiB) / MiB));
	/* Left at the crossing of the 30 % line (less the hysteresis). */
	assert_int_not_equal(s.ev[j].level, MN_MEMORY_HIGH);
	assert_true(s.ev[j].available_bytes < 600 * MiB * 30 / 100);
	assert_int_equal(s.ev[j].limit_bytes, 600 * MiB);
	/* Now, with the hog holding still: the parent's figure exactly. */
	struct mn_memory_status st = { .sz = sizeof(st) };
	MN_OPTS(mn_memory_opts, qo, .cgroup = a);
	assert_int_equal(mn_memory_status(&qo, &st), 0);
	uint64_t left = remaining(p, 600 * MiB);
	assert_true(diff(st.available_bytes, left) < 8 * MiB);

	/* 200 MiB more in b: the parent hits memory.max and the OOM killer
	   steps in.  Only the parent's memory.events can tell a's watch. */
	pid_t hog2 = hog_start(b, 200 * MiB, -1);
	note("b's second hog started");
	int l = wait_for(&e, k + 1, MN_MEMORY_CHANGE, MN_MEMORY_LOW);
	hog_stop(hog2);
	hog_stop(hog);
	if (l < 0)
		fail_msg("the parent's memory.events did not wake a's "
			 "events-only watch (parent's: max %llu oom %llu)",
			 (unsigned long long)read_key(p, "memory.events", "max"),
			 (unsigned long long)read_key(p, "memory.events", "oom"));
	assert_int_equal(e.ev[l].mechanism, MN_MECH_CGROUP_V2_EVENTS);
	assert_true(read_key(p, "memory.events", "max") > 0);
	assert_int_equal(read_key(a, "memory.events", "max"), 0);

	assert_int_equal(mn_unsubscribe(sub), 0);
	assert_int_equal(mn_unsubscribe(esub), 0);
	assert_int_equal(mn_shutdown(), 0);
	assert_int_equal(destroy(a), 0);
	assert_int_equal(destroy(b), 0);
	assert_int_equal(destroy(p), 0);
}

/*
 * The own group follows the process on v2: the test moves itself from a
 * 512 MiB group into a 256 MiB one; its watch (opts->cgroup NULL) says
 * MN_MEMORY_MOVED with the new group and limit, on re-armed v2 mechanisms.
 * The old group's removal is nothing to it; back home, the removal of the
 * group it was in is followed at once (its memory.pressure trigger hangs
 * up), with no error event at any point.
 */
static void test_v2_own_group_follows_process(void **state)
{
	static struct seen s = MN_TEST_SEEN_INIT;
	char a[512], b[512];
	mn_sub *sub;
	int i, j;

	(void)state;
	make_group(512 * MiB, a, sizeof(a));
	/* Where the process is now, to go back to. */
	struct mn_memory_status st = { .sz = sizeof(st) };
	assert_int_equal(mn_memory_status(NULL, &st), 0);
	snprintf(home, sizeof(home), "%s", st.cgroup_path);
	make_group(256 * MiB, b, sizeof(b));
	assert_int_equal(mn_test_cgroup_enter(a, 0), 0);
	assert_int_equal(mn_memory_subscribe(NULL, record, &s, &sub), 0);
	i = wait_for(&s, 0, MN_MEMORY_INITIAL, 0);
	assert_true(i >= 0);
	assert_string_equal(s.ev[i].cgroup_path, a);
	assert_int_equal(s.ev[i].limit_bytes, 512 * MiB);

	assert_int_equal(mn_test_cgroup_enter(b, 0), 0);
	note("moved into %s", b);
	j = wait_for(&s, i + 1, MN_MEMORY_MOVED, 0);
	if (j < 0)
		fail_msg("the watch did not follow the process into %s", b);
	assert_string_equal(s.ev[j].cgroup_path, b);
	assert_int_equal(s.ev[j].limit_bytes, 256 * MiB);
	assert_int_equal(s.ev[j].cgroup_version, MN_CGROUP_V2);
	assert_true(s.ev[j].mechanisms_active & MN_MECH_CGROUP_V2_EVENTS);
	assert_true(s.ev[j].mechanisms_active & MN_MECH_PSI);
	note("MOVED delivered");
	assert_int_equal(destroy(a), 0);

	/* Back home (the guest's test group: no limit of its own), then b
	   goes while the watch is still on it. */
	char back[512];
	snprintf(back, sizeof(back), "%s", home);
	assert_int_equal(mn_test_cgroup_enter(back, 0), 0);
	home[0] = '\0';
	assert_int_equal(destroy(b), 0);
	note("back home, %s removed", b);
	j = wait_for(&s, j + 1, MN_MEMORY_MOVED, 0);
	if (j < 0)
		fail_msg("the watch did not follow the process home when %s "
			 "went: %s (error %d)", b,
			 mn_memory_level_name(s.ev[s.n - 1].level),
			 s.ev[s.n - 1].error);
	assert_string_equal(s.ev[j].cgroup_path, back);
	for (int k = 0; k < s.n; k++)
		assert_int_not_equal(s.ev[k].reason, MN_MEMORY_ERROR);
	assert_int_equal(mn_unsubscribe(sub), 0);
	assert_int_equal(mn_shutdown(), 0);
}

/* Wait (bounded) for an OOM event with oom_kill_count >= @kills. */
static int wait_oom(struct seen *s, uint64_t kills)
{
	int i = 0;

	while ((i = wait_for(s, i, MN_MEMORY_OOM, 0)) >= 0) {
		if (s->ev[i].oom_kill_count >= kills)
			return i;
		i++;
	}
	return -1;
}

/*
 * A hog in child b outgrows its 200 MiB parent and is OOM-killed: b's
 * watch hears MN_MEMORY_OOM with oom_kill_count rising from 0 to b's
 * memory.events oom_kill; its idle sibling a's watch hears MN_MEMORY_OOM
 * too (the parent's memory.events), with no kill of its own; a watch
 * without MN_MEMORY_OOM_EVENTS hears none.
 */
static void test_v2_oom_kill_reported(void **state)
{
	static struct seen sa = MN_TEST_SEEN_INIT, sb = MN_TEST_SEEN_INIT,
			   plain = MN_TEST_SEEN_INIT;
	char p[512], a[600], b[600];
	mn_sub *suba, *subb, *subp;
	int status;

	(void)state;
	make_family(200 * MiB, p, sizeof(p), a, b, sizeof(a));
	MN_OPTS(mn_memory_opts, oa, .cgroup = a, .flags = MN_MEMORY_OOM_EVENTS);
	MN_OPTS(mn_memory_opts, ob, .cgroup = b, .flags = MN_MEMORY_OOM_EVENTS);
	MN_OPTS(mn_memory_opts, op, .cgroup = b);
	assert_int_equal(mn_memory_subscribe(&oa, record, &sa, &suba), 0);
	assert_int_equal(mn_memory_subscribe(&ob, record, &sb, &subb), 0);
	assert_int_equal(mn_memory_subscribe(&op, record, &plain, &subp), 0);
	int i = wait_for(&sb, 0, MN_MEMORY_INITIAL, 0);
	assert_true(i >= 0 && wait_for(&sa, 0, MN_MEMORY_INITIAL, 0) >= 0);
	assert_int_equal(sb.ev[i].oom_kill_count, 0);
	assert_true(sb.ev[i].mechanisms_active & MN_MECH_CGROUP_V2_EVENTS);

	/* It exits by itself if it is not killed (bounded). */
	pid_t hog = hog_start(b, 400 * MiB, 0);
	status = hog_wait(hog);
	note("b's hog ended");
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	uint64_t kills = read_key(b, "memory.events", "oom_kill");
	assert_true(kills >= 1);

	int j = wait_oom(&sb, kills);
	if (j < 0)
		fail_msg("the OOM kill in %s was not reported", b);
	assert_int_equal(sb.ev[j].oom_kill_count, kills);
	assert_int_equal(sb.ev[j].mechanism, MN_MECH_CGROUP_V2_EVENTS);
	int k = wait_for(&sa, 0, MN_MEMORY_OOM, 0);
	if (k < 0)
		fail_msg("the sibling of an OOM-killed process heard nothing");
	assert_int_equal(sa.ev[k].oom_kill_count, 0);

	assert_int_equal(mn_unsubscribe(suba), 0);
	assert_int_equal(mn_unsubscribe(subb), 0);
	assert_int_equal(mn_unsubscribe(subp), 0);
	for (int n = 0; n < plain.n; n++)
		assert_int_not_equal(plain.ev[n].reason, MN_MEMORY_OOM);
	assert_int_equal(mn_shutdown(), 0);
	assert_int_equal(destroy(a), 0);
	assert_int_equal(destroy(b), 0);
	assert_int_equal(destroy(p), 0);
}

/*
 * An events-only watch (no sampling) follows limit changes, which no v2
 * event announces: a 200 MiB hog settles at usage U in a 512 MiB group
 * (HIGH); memory.max lowered to U / 0.93 (7 % left; above U, so nothing is
 * reclaimed and no memory.events alarm fires) gives LOW with that limit,
 * raised back to 512 MiB HIGH, and memory.high at U / 0.93 LOW again.
 */
static void test_v2_events_only_follows_limits(void **state)
{
	static struct seen e = MN_TEST_SEEN_INIT;
	char g[512];
	mn_sub *esub;
	int i;

	(void)state;
	make_group(512 * MiB, g, sizeof(g));
	pid_t hog = hog_start(g, 200 * MiB, -1);
	uint64_t used = settled_usage(g, 200 * MiB);
	uint64_t lo = (used * 100 / 93 + MiB - 1) / MiB * MiB;
	note("the hog holds %llu MiB; the low limit is %llu MiB",
	     (unsigned long long)(used / MiB), (unsigned long long)(lo / MiB));
	MN_OPTS(mn_memory_opts, eo, .cgroup = g, .flags = MN_MEMORY_NO_POLL);
	assert_int_equal(mn_memory_subscribe(&eo, record, &e, &esub), 0);
	i = wait_for(&e, 0, MN_MEMORY_INITIAL, MN_MEMORY_HIGH);
	assert_true(i >= 0);
	assert_false(e.ev[i].mechanisms_active & MN_MECH_POLL);

	assert_int_equal(write_file(g, "memory.max", lo), 0);
	note("memory.max lowered");
	i = wait_for(&e, i + 1, MN_MEMORY_CHANGE, MN_MEMORY_LOW);
	if (i < 0)
		fail_msg("an events-only watch missed memory.max lowered");
	assert_int_equal(e.ev[i].limit_bytes, lo);
	assert_int_equal(write_file(g, "memory.max", 512 * MiB), 0);
	i = wait_for(&e, i + 1, MN_MEMORY_CHANGE, MN_MEMORY_HIGH);
	assert_true(i >= 0);
	assert_int_equal(e.ev[i].limit_bytes, 512 * MiB);
	assert_int_equal(write_file(g, "memory.high", lo), 0);
	note("memory.high lowered");
	i = wait_for(&e, i + 1, MN_MEMORY_CHANGE, MN_MEMORY_LOW);
	if (i < 0)
		fail_msg("an events-only watch missed memory.high lowered");
	assert_int_equal(e.ev[i].limit_bytes, lo);
	hog_stop(hog);
	assert_int_equal(mn_unsubscribe(esub), 0);
	assert_int_equal(mn_shutdown(), 0);
	assert_int_equal(destroy(g), 0);
}

/* The whole program's bound: a wait that does not end (a bug) kills the
   hogs, which would hold ctest's output pipe open, and fails. */
#define WATCHDOG_SEC 200

static void on_watchdog(int sig)
{
	static const char msg[] = "test_levels_v2: watchdog: still running "
				  "after 200 s\n";

	(void)sig;
	/* Signal context: kill() and write() only. */
	for (int i = 0; i < n_hogs; i++)
		if (hogs[i] > 0)
			kill(hogs[i], SIGKILL);
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(1);
	_exit(1);
}

int main(void)
{
	struct mn_memory_status st = { .sz = sizeof(st) };

	setvbuf(stdout, NULL, _IONBF, 0);
	t0 = mn_test_now_usec();
	signal(SIGALRM, on_watchdog);
	alarm(WATCHDOG_SEC);

	if (geteuid() != 0) {
		printf("skipped: needs root to make memory cgroups\n");
		return MN_TEST_SKIP;
	}
	if (mn_memory_status(NULL, &st) != 0 || st.cgroup_version != MN_CGROUP_V2) {
		printf("skipped: the own group is not a cgroup v2 group with the "
		       "memory controller (the VM bed's guest has one: make "
		       "check-vm)\n");
		return MN_TEST_SKIP;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_v2_events_only_follows_limits, teardown),
		cmocka_unit_test_teardown(test_v2_own_group_follows_process, teardown),
		cmocka_unit_test_teardown(test_v2_oom_kill_reported, teardown),
		cmocka_unit_test_teardown(test_v2_sibling_fills_parent, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
