/* SPDX-License-Identifier: MIT */
/*
 * memnotify watch: the memory status, then one line per level change and
 * per bad-memory event (and, with --interval, a status line every
 * interval), or the metrics exposition; until interrupted or --duration
 * passes.  The command drives memnotify from its own poll loop (the
 * external dispatch mode), with SIGINT/SIGTERM read from a signalfd.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "metrics.h"
#include "output.h"

/* How long past --duration it still waits for the initial status line,
   which it always prints (the first sample is taken at once). */
#define INITIAL_GRACE_MS 2000
/* --interval with metrics: the sampling period, default 5 s. */
#define DEFAULT_INTERVAL_S 5.0

struct watch {
	struct args a;
	struct mn_memory_opts mo;
	bool failed;
	bool initial;      /* the memory.status line was printed */
	bool interrupted;
	bool metrics;      /* --format openmetrics or --textfile */
	int textfile_err;  /* the last --textfile error reported, or 0 */
	struct metrics m;
	mn_sub *sub, *bad;
	struct pollfd pfd[2]; /* the dispatcher's fd, the signalfd */
	uint64_t deadline, next_sample, interval_ms; /* 0: none */
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Metrics out: on stdout (--format openmetrics) and to --textfile.  A
   --textfile that cannot be written is said once per new error; the watch
   goes on. */
static void emit_metrics(struct watch *w)
{
	int err = 0;

	if (w->a.openmetrics) {
		metrics_write(stdout, &w->m, METRICS_OPENMETRICS);
		fflush(stdout);
	}
	if (w->a.textfile) {
		err = metrics_textfile(w->a.textfile, &w->m);
		if (err && err != w->textfile_err)
			fprintf(stderr, "%s: watch: --textfile %s: %s\n", prog,
				w->a.textfile, strerror(-err));
		w->textfile_err = err;
	}
}

static void on_memory(const struct mn_memory_status *st, void *ctx)
{
	struct watch *w = ctx;
	const char *event = out_memory_event(st->reason);

	if (w->metrics) {
		if (st->reason == MN_MEMORY_ERROR)
			metrics_down(&w->m, st);
		else
			metrics_sample(&w->m, st, true);
		emit_metrics(w);
	}
	if (!w->a.openmetrics)
		out_memory(stdout, w->a.json, event, st);
	if (st->reason == MN_MEMORY_INITIAL)
		w->initial = true;
	if (st->reason == MN_MEMORY_ERROR)
		w->failed = true;
}

static void on_badmem(const struct mn_badmem_event *ev, void *ctx)
{
	struct watch *w = ctx;

	if (w->metrics) {
		metrics_badmem(&w->m, ev);
		emit_metrics(w);
	}
	if (!w->a.openmetrics)
		out_badmem(stdout, w->a.json, ev);
}

/* External dispatch, the signalfd, and a first sample that refuses a bad
   --cgroup or threshold before anything is printed.  0 or -errno. */
static int watch_prepare(struct watch *w)
{
	MN_OPTS(mn_dispatch_opts, dopts, .mode = MN_DISPATCH_EXTERNAL);
	struct mn_memory_status st = MN_OPTS_INIT(mn_memory_status);
	sigset_t sigs;
	int err, sfd;

	if ((err = mn_dispatch_configure(&dopts)))
		return err;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	if ((sfd = signalfd(-1, &sigs, SFD_CLOEXEC)) < 0)
		return -errno;
	w->pfd[1] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	err = mn_memory_status(&w->mo, &st);
	check_cgroup(w->a.cgroup, err);
	if (err)
		return err;
	metrics_sample(&w->m, &st, true);
	return 0;
}

/* Subscribe to memory levels and bad memory (this process's pages and
   the machine's HardwareCorrupted).  0 or -errno. */
static int watch_subscribe(struct watch *w)
{
	int err, dfd;

	if (!w->a.json && !w->a.openmetrics)
		out_memory_header(stdout);
	if ((err = mn_memory_subscribe(&w->mo, on_memory, w, &w->sub)))
		return err;
	if ((err = mn_badmem_subscribe(NULL, on_badmem, w, &w->bad)))
		return err;
	if ((dfd = mn_dispatch_fd()) < 0)
		return dfd;
	w->pfd[0] = (struct pollfd){ .fd = dfd, .events = POLLIN };
	return 0;
}

/* Every interval, between changes: a fresh sample, as metrics or as a
   memory.status line. */
static void watch_tick(struct watch *w, uint64_t now)
{
	struct mn_memory_status st = MN_OPTS_INIT(mn_memory_status);

	if (!w->interval_ms || now < w->next_sample)
		return;
	w->next_sample = now + w->interval_ms;
	if (!w->initial || mn_memory_status(&w->mo, &st))
		return;
	if (w->metrics) {
		metrics_sample(&w->m, &st, false);
		emit_metrics(w);
	}
	if (!w->a.openmetrics) {
		out_memory(stdout, w->a.json, "memory.status", &st);
		fflush(stdout);
	}
}

/* How long poll may wait: -1 forever; -2 when the watch is over.  A
   duration shorter than the first sample still prints the initial
   status: past the deadline, wait (a bounded time) for that line only. */
static int watch_timeout(const struct watch *w, uint64_t now)
{
	int64_t timeout = -1;

	if (w->deadline) {
		uint64_t until = w->initial ? w->deadline
					    : w->deadline + INITIAL_GRACE_MS;
		if (now >= until)
			return -2;
		timeout = (int64_t)((now < w->deadline ? w->deadline : until) - now);
	}
	if (w->interval_ms) {
		int64_t left = (int64_t)(w->next_sample - now);
		if (timeout < 0 || left < timeout)
			timeout = left;
	}
	return timeout > INT_MAX ? INT_MAX : (int)timeout;
}

/* Until the group fails, the deadline passes or a signal comes.  0 or
   -errno. */
static int watch_loop(struct watch *w)
{
	while (!w->failed) {
		uint64_t now = mono_ms();
		watch_tick(w, now);
		int timeout = watch_timeout(w, now);
		if (timeout == -2)
			return 0;
		int n = poll(w->pfd, 2, timeout);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0 && (w->pfd[1].revents & POLLIN)) {
			w->interrupted = true;
			return 0;
		}
		if (n > 0 && (w->pfd[0].revents & POLLIN)) {
			int err = mn_dispatch(0);
			if (err < 0 && err != -EINTR)
				return err;
		}
	}
	return 0;
}

int cmd_watch(int argc, char **argv)
{
	struct watch *w = calloc(1, sizeof(*w));
	int err, rc;

	if (!w)
		return 1;
	parse_args(argc, argv, true, &w->a);
	w->mo = MN_OPTS_INIT(mn_memory_opts);
	w->mo.cgroup = w->a.cgroup;
	/* An OOM kill under the group's limits is a line of its own. */
	w->mo.flags |= MN_MEMORY_OOM_EVENTS;
	w->metrics = w->a.openmetrics || w->a.textfile;
	if (w->a.interval > 0 || w->metrics) {
		double s = w->a.interval > 0 ? w->a.interval : DEFAULT_INTERVAL_S;
		w->interval_ms = s * 1000.0 < 1 ? 1 : (uint64_t)(s * 1000.0);
	}
	if ((err = watch_prepare(w)))
		goto fail;
	/* A --textfile that cannot be written fails now, not later. */
	if (w->a.textfile && (err = metrics_textfile(w->a.textfile, &w->m))) {
		fprintf(stderr, "%s: watch: --textfile %s: %s\n", prog,
			w->a.textfile, strerror(-err));
		free(w);
		return 1;
	}
	if ((err = watch_subscribe(w)))
		goto fail;
	if (w->a.duration > 0)
		w->deadline = mono_ms() + (uint64_t)(w->a.duration * 1000.0);
	if (w->interval_ms)
		w->next_sample = mono_ms() + w->interval_ms;
	if ((err = watch_loop(w)))
		goto fail;
	mn_unsubscribe(w->bad);
	mn_unsubscribe(w->sub);
	mn_shutdown();
	rc = w->failed ? 1 : 0;
	if (!w->initial && !w->failed && !w->interrupted) {
		fprintf(stderr, "%s: watch: no memory status within %g s\n",
			prog, w->a.duration + INITIAL_GRACE_MS / 1000.0);
		rc = 1;
	}
	free(w);
	return rc;
fail:
	fprintf(stderr, "%s: watch: %s\n", prog, mn_strerror(err));
	free(w);
	return 1;
}
