/* SPDX-License-Identifier: MIT */
/*
 * pressure_latency — how late does memnotify tell a watcher that memory is
 * running out, compared with a PSI trigger armed by hand?
 *
 * Setup: a child memory cgroup with a 256 MiB hard limit (tests/helpers.c),
 * a subscription on it with the default thresholds (LOW below 10 % of the
 * limit available, HIGH from 30 %), and, per ramp, a child process that
 * allocates and touches 240 MiB inside the group in 8 MiB steps 5 ms apart
 * (about 150-250 ms from empty to full) and then holds it.
 *
 * What is measured, per ramp:
 *  - t_cross: the benchmark samples the group itself every 1 ms, the way the
 *    library does (v1: limit - (memory.usage_in_bytes - total_inactive_file),
 *    v2: memory.max - (memory.current - inactive_file)); t_cross is the
 *    CLOCK_MONOTONIC time right after the first read that shows available <
 *    10 % of the limit.  Its resolution is the 1 ms period plus one read.
 *  - memnotify: t of the first callback after the ramp started that reports
 *    a change to MN_MEMORY_LOW (taken with CLOCK_MONOTONIC inside the
 *    callback).  Latency = t_callback - t_cross.  It is negative when the
 *    library sampled the crossing before the benchmark did; the sign is
 *    kept.  No callback within 3 s of t_cross counts as "missed".
 *  - PSI baseline: a fresh trigger armed by the benchmark (not the library)
 *    before each ramp on the most specific pressure file — the group's
 *    memory.pressure on cgroup v2, else the machine-wide
 *    /proc/pressure/memory — as "some <window/20> <window>" with the
 *    smallest window the kernel accepts.  Latency = t(POLLPRI) - t_cross,
 *    waited for up to 5 s after t_cross, same ramps, same crossing.  PSI
 *    reports time lost to stalls (reclaim, refaults), not an approaching
 *    limit: a ramp that stays below the limit may stall nothing and then
 *    the trigger rightly never fires.  The ramp is not tuned either way;
 *    the baseline's percentiles are over the ramps where it fired.  On v1
 *    the system-wide file also hears stalls of any other process on the
 *    machine, which can make it fire (early or late) for reasons unrelated
 *    to the ramp.
 * Between ramps the hog is killed and the benchmark waits for the library to
 * report HIGH again, so every ramp starts from HIGH.
 *
 * Idle cost: with no hog running, the dispatcher's wakeups (mn_stats) over
 * 10 s, for one subscription on the 256 MiB group and then, separately, one
 * with default options (the process's own group).
 *
 * Exit: 0 when the benchmark ran (targets are informational), 77 when it
 * cannot run here (not root, no memory cgroup can be made), 1 when it failed
 * to run, 130 on SIGINT/SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "memnotify.h"
#include "helpers.h"
#include "core/internal.h"
#include "memory/parse.h"
#include "memory/psi.h"

#define MiB ((uint64_t)1 << 20)
#define GROUP_LIMIT (256 * MiB)
#define HOG_BYTES (240 * MiB)
#define HOG_STEP (8 * MiB)
#define HOG_STEP_USEC 5000u
#define LOW_PCT 10u
#define HIGH_PCT 30u
#define SAMPLE_PERIOD_MS 1
#define LOW_WAIT_USEC (3u * 1000000u)
#define HIGH_WAIT_USEC (3u * 1000000u)
#define PSI_WAIT_USEC (5u * 1000000u)
#define CROSS_WAIT_USEC (10u * 1000000u)
#define TARGET_P50_MS 50.0
#define TARGET_P99_MS 200.0

/* --- state shared with the cleanup path ---------------------------------- */

static volatile sig_atomic_t stop_requested;
static char group[512];
static bool group_made;
static pid_t hog = -1;
static mn_sub *sub;
static int psi_fd = -1;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void cleanup(void)
{
	if (psi_fd >= 0)
		close(psi_fd);
	psi_fd = -1;
	if (hog > 0)
		mn_test_hog_stop(hog);
	hog = -1;
	if (sub)
		mn_unsubscribe(sub);
	sub = NULL;
	mn_shutdown();
	if (group_made) {
		int err = mn_test_cgroup_destroy(group);
		if (err)
			fprintf(stderr, "pressure_latency: removing %s: %s\n",
				group, strerror(-err));
		group_made = false;
	}
}

/* --- the callback: a log of deliveries ----------------------------------- */

struct ev {
	uint64_t t_usec; /* CLOCK_MONOTONIC at the start of the callback */
	int level, prev, reason;
	unsigned int mechanism;
};

#define EV_MAX 16384
static struct ev evlog[EV_MAX];
static atomic_uint ev_count;        /* entries published in evlog */
static atomic_uint ev_overflow;
static atomic_int cur_level;        /* level of the newest delivery */
static atomic_uint cur_mechanisms;  /* mechanisms_active of the newest */

static void on_memory(const struct mn_memory_status *st, void *ctx)
{
	uint64_t now = mn_test_now_usec();
	unsigned int i = atomic_load_explicit(&ev_count, memory_order_relaxed);

	(void)ctx;
	/* One writer (the dispatcher), so a plain slot write then a release
	   store of the count publishes it. */
	if (i < EV_MAX) {
		evlog[i].t_usec = now;
		evlog[i].level = (int)st->level;
		evlog[i].prev = (int)st->previous_level;
		evlog[i].reason = (int)st->reason;
		evlog[i].mechanism = st->mechanism;
		atomic_store_explicit(&ev_count, i + 1, memory_order_release);
	} else {
		atomic_fetch_add(&ev_overflow, 1);
	}
	atomic_store(&cur_mechanisms, st->mechanisms_active);
	atomic_store(&cur_level, (int)st->level);
}

static void log_sink(enum mn_log_level level, const char *msg, void *ctx)
{
	(void)ctx;
	fprintf(stderr, "memnotify[%d]: %s\n", (int)level, msg);
}

/* --- time ------------------------------------------------------------------ */

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL); /* EINTR: the caller checks stop_requested */
}

/* Wait until the newest delivery reports @level (bounded). */
static bool wait_level(int level, uint64_t max_usec)
{
	uint64_t t0 = mn_test_now_usec();

	while (!stop_requested) {
		if (atomic_load(&cur_level) == level)
			return true;
		if (mn_test_now_usec() - t0 > max_usec)
			return false;
		sleep_ms(1);
	}
	return false;
}

/* Wait until at least @n deliveries have been logged (bounded). */
static bool wait_events(unsigned int n, uint64_t max_usec)
{
	uint64_t t0 = mn_test_now_usec();

	while (!stop_requested) {
		if (atomic_load_explicit(&ev_count, memory_order_acquire) >= n)
			return true;
		if (mn_test_now_usec() - t0 > max_usec)
			return false;
		sleep_ms(1);
	}
	return false;
}

/* --- the benchmark's own view of the group -------------------------------- */

struct observer {
	int version; /* MN_CGROUP_V1 or _V2 */
	int usage_fd, stat_fd;
	uint64_t limit;
};

static int open_in(const char *dir, const char *name)
{
	char p[600];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return open(p, O_RDONLY | O_CLOEXEC);
}

static int observer_open(struct observer *o, const char *dir)
{
	char buf[64];
	int fd, err;
	ssize_t n;

	o->usage_fd = o->stat_fd = -1;
	o->version = MN_CGROUP_V1;
	o->usage_fd = open_in(dir, "memory.usage_in_bytes");
	if (o->usage_fd < 0) {
		o->version = MN_CGROUP_V2;
		o->usage_fd = open_in(dir, "memory.current");
	}
	if (o->usage_fd < 0)
		return -errno;
	o->stat_fd = open_in(dir, "memory.stat");
	if (o->stat_fd < 0)
		return -errno;
	fd = open_in(dir, o->version == MN_CGROUP_V1 ? "memory.limit_in_bytes"
						     : "memory.max");
	if (fd < 0)
		return -errno;
	n = mn__pread_all(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0)
		return (int)n;
	err = mn__parse_cgroup_value(buf, (size_t)n, &o->limit);
	if (err)
		return err;
	if (o->limit == MN__UNLIMITED)
		return -EINVAL;
	return 0;
}

static void observer_close(struct observer *o)
{
	if (o->usage_fd >= 0)
		close(o->usage_fd);
	if (o->stat_fd >= 0)
		close(o->stat_fd);
	o->usage_fd = o->stat_fd = -1;
}

/* Available bytes as the library computes them for a cgroup. */
static int observer_read(struct observer *o, uint64_t *avail)
{
	char buf[8192];
	uint64_t usage, inactive = 0;
	ssize_t n;
	int err;

	n = mn__pread_all(o->usage_fd, buf, 64);
	if (n < 0)
		return (int)n;
	err = mn__parse_cgroup_value(buf, (size_t)n, &usage);
	if (err)
		return err;
	n = mn__pread_all(o->stat_fd, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	if (mn__parse_keyed(buf, (size_t)n,
			    o->version == MN_CGROUP_V1 ? "total_inactive_file"
						       : "inactive_file",
			    &inactive) < 0)
		inactive = 0;
	uint64_t used = usage > inactive ? usage - inactive : 0;
	*avail = o->limit > used ? o->limit - used : 0;
	return 0;
}

static bool below_pct(uint64_t avail, uint64_t limit, unsigned int pct)
{
	return (unsigned __int128)avail * 100 < (unsigned __int128)limit * pct;
}

/* --- statistics ------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

struct summary {
	int n;
	double p50, p99, min, max, mean;
};

/* Nearest-rank percentiles; sorts @v. */
static struct summary summarize(double *v, int n)
{
	struct summary s = { .n = n };
	double sum = 0;

	if (n == 0)
		return s;
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	for (int i = 0; i < n; i++)
		sum += v[i];
	int r50 = (50 * n + 99) / 100, r99 = (99 * n + 99) / 100;
	s.p50 = v[(r50 < 1 ? 1 : r50) - 1];
	s.p99 = v[(r99 < 1 ? 1 : r99) - 1];
	s.min = v[0];
	s.max = v[n - 1];
	s.mean = sum / n;
	return s;
}

static void fmt_ms(char *out, size_t len, const struct summary *s, double v)
{
	if (s->n == 0)
		snprintf(out, len, "n/a");
	else
		snprintf(out, len, "%.2f", v);
}

/* --- one ramp ----------------------------------------------------------- */

struct ramp {
	bool crossed;       /* the benchmark saw available < low */
	bool lib_fired, psi_fired, high_again;
	int64_t lib_usec, psi_usec; /* latency from t_cross, signed */
	unsigned int lib_mechanism;
	uint64_t ramp_usec;         /* hog start to t_cross */
	uint64_t min_avail;
};

static int run_ramp(struct observer *o, const char *psi_path,
		    unsigned int psi_stall, unsigned int psi_window,
		    struct ramp *r)
{
	uint64_t t_start, t_cross = 0, t_lib = 0, t_psi = 0, avail;
	unsigned int ev_seen;
	bool psi_armed = false;
	int err;

	memset(r, 0, sizeof(*r));
	r->min_avail = UINT64_MAX;

	/* Start from an empty group (the benchmark's own view too). */
	for (uint64_t t0 = mn_test_now_usec();
	     mn_test_now_usec() - t0 < 2000000 && !stop_requested;) {
		if (observer_read(o, &avail) == 0 &&
		    !below_pct(avail, o->limit, HIGH_PCT))
			break;
		sleep_ms(5);
	}

	if (psi_path) {
		/* A fresh trigger per ramp: no rate limit carried over from a
		   previous window, no stale event. */
		psi_fd = mn__psi_trigger_open(psi_path, "some", psi_stall,
					      psi_window);
		if (psi_fd < 0) {
			fprintf(stderr, "pressure_latency: PSI trigger on %s: %s\n",
				psi_path, strerror(-psi_fd));
			psi_fd = -1;
		} else {
			psi_armed = true;
		}
	}

	ev_seen = atomic_load_explicit(&ev_count, memory_order_acquire);
	t_start = mn_test_now_usec();
	hog = mn_test_hog_start(group, HOG_BYTES, HOG_STEP, HOG_STEP_USEC, -1);
	if (hog < 0) {
		err = -errno;
		hog = -1;
		fprintf(stderr, "pressure_latency: fork: %s\n", strerror(-err));
		goto out;
	}

	while (!stop_requested) {
		uint64_t now;

		err = observer_read(o, &avail);
		now = mn_test_now_usec();
		if (err) {
			fprintf(stderr, "pressure_latency: reading %s: %s\n",
				group, strerror(-err));
			goto out;
		}
		if (avail < r->min_avail)
			r->min_avail = avail;
		if (!t_cross && below_pct(avail, o->limit, LOW_PCT)) {
			t_cross = now;
			r->ramp_usec = now - t_start;
		}

		/* The first change to LOW delivered since the ramp began. */
		unsigned int n = atomic_load_explicit(&ev_count,
						      memory_order_acquire);
		for (; !t_lib && ev_seen < n; ev_seen++) {
			const struct ev *e = &evlog[ev_seen];
			if (e->level == MN_MEMORY_LOW && e->prev != MN_MEMORY_LOW) {
				t_lib = e->t_usec;
				r->lib_mechanism = e->mechanism;
			}
		}

		/* Sleep the sampling period, listening to the trigger. */
		if (psi_fd >= 0 && !t_psi) {
			struct pollfd pfd = { .fd = psi_fd, .events = POLLPRI };
			int pr = poll(&pfd, 1, SAMPLE_PERIOD_MS);
			if (pr > 0 && (pfd.revents & POLLPRI))
				t_psi = mn_test_now_usec();
			else if (pr > 0 && (pfd.revents & (POLLERR | POLLHUP))) {
				close(psi_fd);
				psi_fd = -1;
			}
		} else {
			sleep_ms(SAMPLE_PERIOD_MS);
		}

		/* A hog that died (OOM, failed to join the group) ends the
		   ramp early. */
		int status;
		if (hog > 0 && waitpid(hog, &status, WNOHANG) == hog) {
			hog = -1;
			if (!t_cross) {
				fprintf(stderr,
					"pressure_latency: hog exited (status 0x%x) "
					"before the crossing\n",
					(unsigned int)status);
				err = -ECHILD;
				goto out;
			}
		}

		now = mn_test_now_usec();
		if (!t_cross) {
			if (now - t_start > CROSS_WAIT_USEC) {
				fprintf(stderr,
					"pressure_latency: available memory never "
					"fell below %u %% (lowest %" PRIu64
					" KiB)\n",
					LOW_PCT, r->min_avail / 1024);
				err = -ETIMEDOUT;
				goto out;
			}
			continue;
		}
		bool lib_done = t_lib || now - t_cross > LOW_WAIT_USEC;
		bool psi_done = !psi_armed || t_psi || psi_fd < 0 ||
				now - t_cross > PSI_WAIT_USEC;
		if (lib_done && psi_done)
			break;
	}
	err = stop_requested ? -EINTR : 0;
	r->crossed = t_cross != 0;
	if (t_lib && t_cross) {
		r->lib_fired = true;
		r->lib_usec = (int64_t)t_lib - (int64_t)t_cross;
	}
	if (t_psi && t_cross) {
		r->psi_fired = true;
		r->psi_usec = (int64_t)t_psi - (int64_t)t_cross;
	}
out:
	if (psi_fd >= 0)
		close(psi_fd);
	psi_fd = -1;
	if (hog > 0)
		mn_test_hog_stop(hog);
	hog = -1;
	/* Let the library see the group empty again before the next ramp. */
	if (!err && !stop_requested)
		r->high_again = wait_level(MN_MEMORY_HIGH, HIGH_WAIT_USEC);
	return err;
}

/* --- idle wakeups ----------------------------------------------------------- */

static const char *mechs_str(unsigned int m, char *buf, size_t len)
{
	size_t k = 0;

	buf[0] = '\0';
	for (unsigned int bit = 1; bit <= MN_MECH_CGROUP_V1_THRESHOLD; bit <<= 1) {
		if (!(m & bit))
			continue;
		int w = snprintf(buf + k, len - k, "%s%s", k ? "+" : "",
				 mn_memory_mechanism_name(bit));
		if (w < 0 || (size_t)w >= len - k)
			break;
		k += (size_t)w;
	}
	return buf;
}

/* Wakeups per second of one subscription while nothing happens.  Returns 0
   or -errno; @mechs gets the subscription's active mechanisms. */
static int idle_rate(const char *cgroup, unsigned int seconds, double *rate,
		     unsigned int *mechs, int *level)
{
	MN_OPTS(mn_memory_opts, opts, .cgroup = cgroup);
	struct mn_stats s0 = { .sz = sizeof(s0) }, s1 = { .sz = sizeof(s1) };
	unsigned int n0 = atomic_load(&ev_count);
	uint64_t t0, t1;
	int err;

	err = mn_memory_subscribe(&opts, on_memory, NULL, &sub);
	if (err)
		return err;
	if (!wait_events(n0 + 1, 3000000)) {
		err = stop_requested ? -EINTR : -ETIMEDOUT;
		goto out;
	}
	*mechs = atomic_load(&cur_mechanisms);
	*level = atomic_load(&cur_level);
	sleep_ms(500); /* let the initial burst settle */
	mn_stats(&s0);
	t0 = mn_test_now_usec();
	while (!stop_requested && mn_test_now_usec() - t0 < seconds * 1000000ull)
		sleep_ms(50);
	mn_stats(&s1);
	t1 = mn_test_now_usec();
	if (stop_requested) {
		err = -EINTR;
		goto out;
	}
	*rate = (double)(s1.wakeups - s0.wakeups) / ((double)(t1 - t0) / 1e6);
out:
	mn_unsubscribe(sub);
	sub = NULL;
	return err;
}

/* --- main -------------------------------------------------------------------- */

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [-n RAMPS] [-i IDLE_SECONDS] [-v]\n"
		"  -n  ramps of the hog (default 20, at least 1)\n"
		"  -i  seconds of each idle-wakeup measurement (default 10)\n"
		"  -v  print every ramp\n",
		argv0);
}

int main(int argc, char **argv)
{
	int nramps = 20, idle_s = 10, verbose = 0, opt, err, rc = 1;
	char why[256], psi_path_buf[600], mbuf[128];
	const char *psi_path = NULL;
	unsigned int psi_window = 0, psi_stall = 0;
	struct observer obs = { .usage_fd = -1, .stat_fd = -1 };
	struct ramp *ramps = NULL;
	double *lib_v = NULL, *psi_v = NULL;
	int n_lib = 0, n_psi = 0, n_crossed = 0, n_missed = 0, n_not_high = 0;
	int n_done = 0, n_via_poll = 0, n_via_event = 0;
	unsigned int ramp_mechs = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "n:i:vh")) != -1) {
		switch (opt) {
		case 'n': nramps = atoi(optarg); break;
		case 'i': idle_s = atoi(optarg); break;
		case 'v': verbose = 1; break;
		default: usage(argv[0]); return opt == 'h' ? 0 : 2;
		}
	}
	if (nramps < 1 || idle_s < 1) {
		usage(argv[0]);
		return 2;
	}

	if (geteuid() != 0) {
		printf("skip: pressure_latency needs root (it creates a memory "
		       "cgroup)\n");
		return MN_TEST_SKIP;
	}

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* A closed output pipe must not kill us before the group is removed. */
	signal(SIGPIPE, SIG_IGN);

	err = mn_test_cgroup_create(GROUP_LIMIT, group, sizeof(group), why,
				    sizeof(why));
	if (err) {
		printf("skip: cannot create a memory cgroup: %s\n", why);
		return MN_TEST_SKIP;
	}
	group_made = true;
	mn_set_log(log_sink, NULL);

	ramps = calloc((size_t)nramps, sizeof(*ramps));
	lib_v = calloc((size_t)nramps, sizeof(*lib_v));
	psi_v = calloc((size_t)nramps, sizeof(*psi_v));
	if (!ramps || !lib_v || !psi_v) {
		fprintf(stderr, "pressure_latency: out of memory\n");
		goto done;
	}
	err = observer_open(&obs, group);
	if (err) {
		fprintf(stderr, "pressure_latency: opening %s: %s\n", group,
			strerror(-err));
		goto done;
	}

	/* The baseline's trigger file and window. */
	if (obs.version == MN_CGROUP_V2) {
		snprintf(psi_path_buf, sizeof(psi_path_buf),
			 "%s/memory.pressure", group);
		psi_path = psi_path_buf;
	} else {
		psi_path = "/proc/pressure/memory";
	}
	err = mn__psi_min_window(psi_path, &psi_window);
	if (err || psi_window == 0) {
		printf("PSI baseline unavailable: %s: %s\n", psi_path,
		       strerror(err ? -err : EINVAL));
		psi_path = NULL;
	} else {
		psi_stall = psi_window / 20;
	}

	printf("pressure_latency: cgroup v%d %s, limit %" PRIu64
	       " MiB, thresholds low %u %% / high %u %%\n",
	       obs.version == MN_CGROUP_V1 ? 1 : 2, group, obs.limit / MiB,
	       LOW_PCT, HIGH_PCT);
	printf("  ramp: hog of %" PRIu64 " MiB in %" PRIu64 " MiB steps every %u ms, held; "
	       "benchmark samples every %d ms\n",
	       HOG_BYTES / MiB, HOG_STEP / MiB, HOG_STEP_USEC / 1000,
	       SAMPLE_PERIOD_MS);
	if (psi_path)
		printf("  baseline: PSI trigger \"some %u %u\" on %s (smallest "
		       "window accepted)\n",
		       psi_stall, psi_window, psi_path);

	/* --- latency ramps --- */
	{
		MN_OPTS(mn_memory_opts, opts, .cgroup = group);
		err = mn_memory_subscribe(&opts, on_memory, NULL, &sub);
		if (err) {
			fprintf(stderr, "pressure_latency: mn_memory_subscribe(%s): "
				"%s\n", group, mn_strerror(err));
			goto done;
		}
	}
	if (!wait_events(1, 3000000) || !wait_level(MN_MEMORY_HIGH, 3000000)) {
		if (!stop_requested)
			fprintf(stderr, "pressure_latency: no initial HIGH delivery "
				"within 3 s (level %s)\n",
				mn_memory_level_name(atomic_load(&cur_level)));
		goto done;
	}
	ramp_mechs = atomic_load(&cur_mechanisms);
	printf("  memnotify mechanisms on the group: %s\n",
	       mechs_str(ramp_mechs, mbuf, sizeof(mbuf)));

	for (int i = 0; i < nramps && !stop_requested; i++) {
		struct ramp *r = &ramps[i];

		err = run_ramp(&obs, psi_path, psi_stall, psi_window, r);
		if (err == -EINTR || stop_requested)
			break;
		n_done++;
		if (err) {
			fprintf(stderr, "pressure_latency: ramp %d failed\n", i + 1);
			continue;
		}
		n_crossed += r->crossed;
		if (r->lib_fired) {
			lib_v[n_lib++] = (double)r->lib_usec / 1000.0;
			if (r->lib_mechanism == MN_MECH_POLL)
				n_via_poll++;
			else
				n_via_event++;
		} else if (r->crossed) {
			n_missed++;
		}
		if (r->psi_fired)
			psi_v[n_psi++] = (double)r->psi_usec / 1000.0;
		if (!r->high_again)
			n_not_high++;
		if (verbose) {
			char l[32] = "missed", p[32] = "-";
			if (r->lib_fired)
				snprintf(l, sizeof(l), "%.2f ms (%s)",
					 (double)r->lib_usec / 1000.0,
					 mn_memory_mechanism_name(r->lib_mechanism));
			if (r->psi_fired)
				snprintf(p, sizeof(p), "%.2f ms",
					 (double)r->psi_usec / 1000.0);
			printf("  ramp %2d: crossing after %5.1f ms, lowest "
			       "available %" PRIu64 " MiB; memnotify %s; PSI %s%s\n",
			       i + 1, (double)r->ramp_usec / 1000.0,
			       r->min_avail / MiB, l, p,
			       r->high_again ? "" : "; no HIGH afterwards");
		}
	}
	mn_unsubscribe(sub);
	sub = NULL;
	if (stop_requested)
		goto done;
	if (n_crossed == 0) {
		fprintf(stderr, "pressure_latency: no ramp reached the low "
			"threshold; nothing to measure\n");
		goto done;
	}

	/* --- idle wakeups --- */
	double idle_group = 0, idle_default = 0;
	unsigned int mech_group = 0, mech_default = 0;
	int lvl_group = 0, lvl_default = 0;
	err = idle_rate(group, (unsigned int)idle_s, &idle_group, &mech_group,
			&lvl_group);
	if (!err)
		err = idle_rate(NULL, (unsigned int)idle_s, &idle_default,
				&mech_default, &lvl_default);
	if (err) {
		if (err != -EINTR)
			fprintf(stderr, "pressure_latency: idle measurement: %s\n",
				err == -ETIMEDOUT ? "no initial delivery within 3 s"
						  : mn_strerror(err));
		goto done;
	}

	/* --- report --- */
	struct summary sl = summarize(lib_v, n_lib);
	struct summary sp = summarize(psi_v, n_psi);
	char a[5][24], b[5][24];

	fmt_ms(a[0], sizeof(a[0]), &sl, sl.p50);
	fmt_ms(a[1], sizeof(a[1]), &sl, sl.p99);
	fmt_ms(a[2], sizeof(a[2]), &sl, sl.min);
	fmt_ms(a[3], sizeof(a[3]), &sl, sl.max);
	fmt_ms(a[4], sizeof(a[4]), &sl, sl.mean);
	fmt_ms(b[0], sizeof(b[0]), &sp, sp.p50);
	fmt_ms(b[1], sizeof(b[1]), &sp, sp.p99);
	fmt_ms(b[2], sizeof(b[2]), &sp, sp.min);
	fmt_ms(b[3], sizeof(b[3]), &sp, sp.max);
	fmt_ms(b[4], sizeof(b[4]), &sp, sp.mean);

	printf("\nlatency from crossing to notification, ms (%d ramps, %d crossed "
	       "the low threshold):\n",
	       n_done, n_crossed);
	printf("  %-22s %7s %8s %8s %8s %8s %8s\n", "", "fired", "p50", "p99",
	       "min", "max", "mean");
	printf("  %-22s %3d/%-3d %8s %8s %8s %8s %8s\n", "memnotify callback",
	       n_lib, n_crossed, a[0], a[1], a[2], a[3], a[4]);
	if (psi_path)
		printf("  %-22s %3d/%-3d %8s %8s %8s %8s %8s\n",
		       "PSI trigger (baseline)", n_psi, n_crossed, b[0], b[1],
		       b[2], b[3], b[4]);
	else
		printf("  %-22s %7s\n", "PSI trigger (baseline)", "n/a");
	printf("  memnotify LOW came from: poll %d, kernel event %d; missed "
	       "(none within %u s): %d; no HIGH within %u s after a ramp: %d\n",
	       n_via_poll, n_via_event, LOW_WAIT_USEC / 1000000, n_missed,
	       HIGH_WAIT_USEC / 1000000, n_not_high);
	if (psi_path && n_psi < n_crossed)
		printf("  PSI did not fire within %u s in %d ramp(s): it reports "
		       "stall time, and those ramps may have stalled little.\n",
		       PSI_WAIT_USEC / 1000000, n_crossed - n_psi);
	printf("\nidle dispatcher wakeups per second (%d s each, no hog):\n",
	       idle_s);
	printf("  %-34s %6.2f  (%s; level %s)\n", "subscription on the 256 MiB group",
	       idle_group, mechs_str(mech_group, mbuf, sizeof(mbuf)),
	       mn_memory_level_name((enum mn_memory_level)lvl_group));
	printf("  %-34s %6.2f  (%s; level %s)\n", "default opts (own group)",
	       idle_default, mechs_str(mech_default, mbuf, sizeof(mbuf)),
	       mn_memory_level_name((enum mn_memory_level)lvl_default));

	bool p50_ok = sl.n > 0 && sl.p50 < TARGET_P50_MS;
	bool p99_ok = sl.n > 0 && n_missed == 0 && sl.p99 < TARGET_P99_MS;
	printf("\ntargets (informational): memnotify p50 < %.0f ms: %s (%s); "
	       "p99 < %.0f ms: %s (%s%s)\n",
	       TARGET_P50_MS, p50_ok ? "PASS" : "MISS", a[0], TARGET_P99_MS,
	       p99_ok ? "PASS" : "MISS", a[1],
	       n_missed ? ", with missed callbacks" : "");

	printf("\npressure_latency.ramps=%d\n", n_crossed);
	printf("pressure_latency.memnotify_fired=%d\n", n_lib);
	printf("pressure_latency.memnotify_p50_ms=%s\n", a[0]);
	printf("pressure_latency.memnotify_p99_ms=%s\n", a[1]);
	printf("pressure_latency.psi_fired=%d\n", n_psi);
	printf("pressure_latency.psi_p50_ms=%s\n", b[0]);
	printf("pressure_latency.psi_p99_ms=%s\n", b[1]);
	if (sp.n > 0 && sl.n > 0 && sp.p50 > 0)
		printf("pressure_latency.p50_ratio_vs_psi=%.3f\n", sl.p50 / sp.p50);
	printf("pressure_latency.idle_wakeups_per_s_cgroup=%.2f\n", idle_group);
	printf("pressure_latency.idle_wakeups_per_s_default=%.2f\n", idle_default);
	printf("pressure_latency.target_p50=%s\n", p50_ok ? "PASS" : "MISS");
	printf("pressure_latency.target_p99=%s\n", p99_ok ? "PASS" : "MISS");
	if (atomic_load(&ev_overflow))
		printf("  (event log overflowed: %u deliveries not recorded)\n",
		       atomic_load(&ev_overflow));
	rc = 0;

done:
	observer_close(&obs);
	cleanup();
	free(ramps);
	free(lib_v);
	free(psi_v);
	if (stop_requested) {
		fprintf(stderr, "pressure_latency: interrupted\n");
		return 130;
	}
	return rc;
}
