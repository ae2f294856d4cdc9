/* SPDX-License-Identifier: MIT */
/*
 * memnotify - the command: a thin face over the library.
 *
 *   memnotify status [--json] [--cgroup PATH]
 *   memnotify watch  [--json] [--cgroup PATH] [--duration SECONDS]
 *                    [--format text|json|openmetrics] [--textfile PATH]
 *                    [--interval SECONDS]
 *   memnotify run    [--json] [--output FILE] -- PROGRAM [ARGS...]
 *   memnotify nmi    [--signal SIG] PID
 *   memnotify inject [--early] PID ADDRESS | --unpoison PFN   (inject.c)
 *
 * Exit status: 0 success, 1 runtime failure, 2 usage error.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "memnotify.h"
#include "inject.h"
#include "metrics.h"
#include "output.h"

#define EXIT_USAGE 2
/* --duration: at most 10^7 s (about 115 days). */
#define MAX_DURATION_S 1e7
/* watch: how long past --duration it still waits for the initial status
   line, which it always prints (the first sample is taken at once). */
#define INITIAL_GRACE_MS 2000
/* --interval: the metrics' sampling period, default 5 s. */
#define DEFAULT_INTERVAL_S 5.0

static const char *prog = "memnotify";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s status [--json] [--cgroup PATH]\n"
		"       %s watch  [--json] [--cgroup PATH] [--duration SECONDS]\n"
		"                        [--format FORMAT] [--textfile PATH] "
		"[--interval SECONDS]\n"
		"       %s run    [--json] [--output FILE] -- PROGRAM [ARGS...]\n"
		"       %s nmi    [--signal SIG] PID\n"
		"       %s inject [--early] PID ADDRESS | --unpoison PFN\n"
		"       %s --version | --help\n"
		"\n"
		"status  print the version, each kernel mechanism memnotify can\n"
		"        use here (with the reason when one is missing), and the\n"
		"        current memory status\n"
		"watch   print the current memory status, then one line per\n"
		"        memory-level change and per bad-memory event, until\n"
		"        interrupted or SECONDS pass\n"
		"run     run PROGRAM with memnotify preloaded and print one line\n"
		"        per unmap, move, discard or protection change in it and\n"
		"        its children, on stderr (PROGRAM's stdout stays its own),\n"
		"        each process's first line being run.start with its\n"
		"        executable and arguments; exits with PROGRAM's status\n"
		"        (refuses, exit 2, if libmemnotify's path holds a space,\n"
		"        tab or colon, which LD_PRELOAD cannot carry)\n"
		"nmi     raise an NMI in process PID: send it the process-wide NMI\n"
		"        signal, which its KeRegisterNmiCallback() callbacks handle\n"
		"        (unhandled, it ends the process)\n"
		"inject  poison the page at ADDRESS in process PID with the\n"
		"        kernel's hwpoison injector (root, debugfs\n"
		"        hwpoison/corrupt-pfn); --early: every process mapping\n"
		"        it gets BUS_MCEERR_AO now; --unpoison PFN undoes it\n"
		"\n"
		"  --json           one JSON object per line\n"
		"  --cgroup PATH    watch this cgroup directory (v1 memory or v2)\n"
		"                   instead of the command's own\n"
		"  --duration SECS  stop after SECS seconds (decimal, > 0, at most\n"
		"                   1e7); the status line is printed even if\n"
		"                   SECS is shorter than the first sample\n"
		"  --format FORMAT  text (the default), json (as --json), or,\n"
		"                   for watch, openmetrics: the metrics\n"
		"                   exposition, on every change and every\n"
		"                   --interval, each ending with '# EOF'\n"
		"  --textfile PATH  watch: also keep PATH replaced (atomically)\n"
		"                   with the metrics in Prometheus text format,\n"
		"                   for node_exporter's textfile collector\n"
		"  --interval SECS  watch: metrics sampling period (default 5)\n"
		"  --output FILE    run: write the events to FILE instead of\n"
		"                   stderr ('-': to stdout, with PROGRAM's output)\n"
		"  --signal SIG     nmi: the signal (number, or USR1, USR2,\n"
		"                   RTMIN+N, RTMAX-N) instead of the NMI signal\n"
		"\n"
		"Environment: MEMNOTIFY_LOW_PERCENT, MEMNOTIFY_HIGH_PERCENT "
		"(thresholds),\nMEMNOTIFY_NMI_SIGNAL (the NMI signal, default "
		"SIGRTMAX-3),\nMEMNOTIFY_LOG=error|warn|info|debug.\n",
		prog, prog, prog, prog, prog, prog);
}

static void die_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: ", prog);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see '%s --help')\n", prog);
	exit(EXIT_USAGE);
}

static void log_sink(enum mn_log_level level, const char *msg, void *ctx)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };

	(void)ctx;
	fprintf(stderr, "%s: %s: %s\n", prog,
		level <= MN_LOG_DEBUG ? names[level] : "log", msg);
}

struct args {
	bool json;
	bool openmetrics; /* --format openmetrics */
	const char *cgroup;
	const char *textfile;
	double duration; /* seconds; < 0: none */
	double interval; /* seconds; < 0: not given */
};

/* --duration, --interval: decimal seconds, > 0, at most 1e7. */
static double parse_seconds(const char *opt, const char *arg)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(arg, &end);
	/* !(d > 0) also refuses NaN; inf is above 1e7. */
	if (errno || end == arg || *end || !isfinite(d) || !(d > 0) ||
	    d > MAX_DURATION_S) {
		fprintf(stderr, "%s: bad %s '%s': want a number of seconds "
			"greater than 0 and at most 10000000 (see '%s --help')\n",
			prog, opt, arg, prog);
		exit(EXIT_USAGE);
	}
	return d;
}

static void parse_args(int argc, char **argv, bool watch, struct args *a)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "cgroup", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 'd' },
		{ "format", required_argument, NULL, 'f' },
		{ "textfile", required_argument, NULL, 't' },
		{ "interval", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	a->json = false;
	a->openmetrics = false;
	a->cgroup = NULL;
	a->textfile = NULL;
	a->duration = -1;
	a->interval = -1;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			a->json = true;
			break;
		case 'c':
			if (!*optarg)
				die_usage("--cgroup needs a directory%s", "");
			a->cgroup = optarg;
			break;
		case 'd':
			if (!watch)
				die_usage("--duration is an option of 'watch'%s", "");
			a->duration = parse_seconds("duration", optarg);
			break;
		case 'i':
			if (!watch)
				die_usage("--interval is an option of 'watch'%s", "");
			a->interval = parse_seconds("interval", optarg);
			break;
		case 'f':
			a->json = !strcmp(optarg, "json");
			a->openmetrics = !strcmp(optarg, "openmetrics");
			if (a->openmetrics && !watch)
				die_usage("--format openmetrics is a format of "
					  "'watch'%s", "");
			if (!a->json && !a->openmetrics && strcmp(optarg, "text"))
				die_usage("unknown format '%s': want text, json "
					  "or openmetrics", optarg);
			break;
		case 't':
			if (!watch)
				die_usage("--textfile is an option of 'watch'%s", "");
			if (!*optarg)
				die_usage("--textfile needs a file%s", "");
			a->textfile = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case ':':
			die_usage("option '%s' needs an argument", argv[optind - 1]);
			break;
		default:
			die_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (a->interval > 0 && !a->openmetrics && !a->textfile)
		die_usage("--interval needs --format openmetrics or "
			  "--textfile%s", "");
}

/* A --cgroup that is not a memory cgroup is a usage error: say which.  One
   that is but may not be read is a run-time failure (exit 1). */
static void check_cgroup(const char *path, int err)
{
	if (path && (err == -EACCES || err == -EPERM)) {
		fprintf(stderr, "%s: --cgroup %s: permission denied\n", prog,
			path);
		exit(1);
	}
	if (!path || (err != -ENOENT && err != -ENOTDIR && err != -EMEDIUMTYPE &&
		      err != -EOPNOTSUPP && err != -EINVAL))
		return;
	fprintf(stderr, "%s: --cgroup %s: %s\n", prog, path,
		err == -EOPNOTSUPP ? "no memory controller in this cgroup"
		: err == -EMEDIUMTYPE ? "not a cgroup directory"
		: err == -ENOTDIR ? "not a directory"
		: err == -ENOENT ? "no such directory"
				   : mn_strerror(err));
	exit(EXIT_USAGE);
}

/* "SIGUSR2", "SIGRTMIN+3", "SIGRTMAX-3". */
static void signal_name(int sig, char *buf, size_t len)
{
	const char *abbrev;

	if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
		if (sig - SIGRTMIN <= SIGRTMAX - sig)
			snprintf(buf, len, "SIGRTMIN+%d", sig - SIGRTMIN);
		else
			snprintf(buf, len, "SIGRTMAX-%d", SIGRTMAX - sig);
	} else if (sig > 0 && (abbrev = sigabbrev_np(sig))) {
		snprintf(buf, len, "SIG%s", abbrev);
	} else {
		snprintf(buf, len, "%d", sig);
	}
}

/* memnotify nmi [--signal SIG] PID */
static int cmd_nmi(int argc, char **argv)
{
	const char *sigarg = NULL, *pidarg = NULL;
	char name[32], *end;
	long pid;
	int sig;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--signal")) {
			if (++i >= argc)
				die_usage("--signal needs a signal%s", "");
			sigarg = argv[i];
		} else if (!strcmp(argv[i], "--help")) {
			usage(stdout);
			exit(0);
		} else if (argv[i][0] == '-') {
			die_usage("unknown option '%s'", argv[i]);
		} else if (pidarg) {
			die_usage("unexpected argument '%s'", argv[i]);
		} else {
			pidarg = argv[i];
		}
	}
	if (!pidarg)
		die_usage("nmi needs a process id%s", "");
	errno = 0;
	pid = strtol(pidarg, &end, 10);
	if (errno || *end || pid <= 0 || pid > INT_MAX)
		die_usage("bad process id '%s'", pidarg);
	/* The library's own parser and rules for the signal. */
	if (sigarg && setenv("MEMNOTIFY_NMI_SIGNAL", sigarg, 1))
		return 1;
	mn_set_log(NULL, NULL); /* the usage line below says it */
	sig = mn_nmi_signal();
	mn_set_log(log_sink, NULL);
	if (sig < 0)
		die_usage(sigarg ? "bad signal '%s'" : "bad MEMNOTIFY_NMI_SIGNAL%s",
			  sigarg ? sigarg : "");
	signal_name(sig, name, sizeof(name));
	if (kill((pid_t)pid, sig) < 0) {
		fprintf(stderr, "%s: nmi: cannot signal process %ld: %s\n", prog,
			pid, strerror(errno));
		return 1;
	}
	printf("sent %s (%d) to process %ld\n", name, sig, pid);
	return 0;
}

static int cmd_status(int argc, char **argv)
{
	struct args a;
	MN_OPTS(mn_memory_opts, mo);
	struct mn_memory_status st = { .sz = sizeof(st) };
	int err;

	parse_args(argc, argv, false, &a);
	mo.cgroup = a.cgroup;
	err = mn_memory_status(&mo, &st);
	check_cgroup(a.cgroup, err);
	int nmi = mn_nmi_signal();
	char nmi_name[32];
	signal_name(nmi, nmi_name, sizeof(nmi_name));
	if (a.json) {
		printf("{\"version\":\"%s\",", mn_version());
		printf("\"inject\":{\"available\":%s,\"reason\":",
		       inject_unavailable() ? "false" : "true");
		if (inject_unavailable())
			out_json_str(stdout, inject_unavailable());
		else
			printf("null");
		printf("},");
		if (nmi > 0)
			printf("\"nmi_signal\":%d,\"nmi_signal_name\":\"%s\",", nmi, nmi_name);
		else
			printf("\"nmi_signal\":null,");
		out_capabilities(stdout, true);
		printf(",\"memory\":");
		if (err) {
			printf("{\"error\":");
			out_json_str(stdout, mn_strerror(err));
			printf("}}\n");
		} else {
			/* out_memory ends with a newline: print the object,
			   then close the outer one on its own. */
			char *buf = NULL;
			size_t len = 0;
			FILE *m = open_memstream(&buf, &len);
			if (!m)
				return 1;
			out_memory(m, true, "memory.status", &st);
			fclose(m);
			if (len && buf[len - 1] == '\n')
				buf[len - 1] = '\0';
			printf("%s}\n", buf);
			free(buf);
		}
	} else {
		printf("memnotify %s\n\n", mn_version());
		out_capabilities(stdout, false);
		printf("\n");
		if (nmi > 0)
			printf("nmi signal      %d (%s%s)\n", nmi, nmi_name,
			       getenv("MEMNOTIFY_NMI_SIGNAL") ? ", from MEMNOTIFY_NMI_SIGNAL" : "");
		else
			printf("nmi signal      none: MEMNOTIFY_NMI_SIGNAL is invalid\n");
		printf("inject          %s\n", inject_unavailable() ? inject_unavailable()
								: "available (debugfs hwpoison/corrupt-pfn)");
		if (err) {
			printf("memory status: %s\n", mn_strerror(err));
		} else {
			printf("watching        %s\n",
			       st.cgroup_path[0] ? st.cgroup_path
						 : "the whole machine");
			printf("cgroup version  %s\n",
			       st.cgroup_version == MN_CGROUP_V2 ? "v2"
			       : st.cgroup_version == MN_CGROUP_V1 ? "v1"
								   : "none");
			printf("level           %s (low below %u%%, high from %u%% "
			       "available)\n",
			       mn_memory_level_name(st.level), st.low_percent,
			       st.high_percent);
			printf("available       %.1f MiB\n",
			       (double)st.available_bytes / 1048576.0);
			printf("limit           %.1f MiB\n",
			       (double)st.limit_bytes / 1048576.0);
			printf("physical        %.1f MiB\n",
			       (double)st.physical_bytes / 1048576.0);
			printf("load            %u%%\n", st.load_percent);
			if (st.psi_valid)
				printf("psi some        avg10 %.2f%%  avg60 %.2f%%\n"
				       "psi full        avg10 %.2f%%  avg60 %.2f%%\n",
				       st.psi_some_avg10, st.psi_some_avg60,
				       st.psi_full_avg10, st.psi_full_avg60);
		}
	}
	return err ? 1 : 0;
}

struct watch_state {
	bool json;
	bool failed;
	bool initial; /* the memory.status line was printed */
	bool openmetrics;       /* stdout gets expositions, not event lines */
	const char *textfile;   /* or NULL */
	int textfile_err;       /* the last --textfile error reported, or 0 */
	struct metrics m;
};

/* Metrics out: on stdout (--format openmetrics) and to --textfile.  A
   --textfile that cannot be written is said once per new error; the watch
   goes on.  Return the --textfile's error, or 0. */
static int emit_metrics(struct watch_state *w)
{
	int err = 0;

	if (w->openmetrics) {
		metrics_write(stdout, &w->m, METRICS_OPENMETRICS);
		fflush(stdout);
	}
	if (w->textfile) {
		err = metrics_textfile(w->textfile, &w->m);
		if (err && err != w->textfile_err)
			fprintf(stderr, "%s: watch: --textfile %s: %s\n", prog,
				w->textfile, strerror(-err));
		w->textfile_err = err;
	}
	return err;
}

static void on_memory(const struct mn_memory_status *st, void *ctx)
{
	struct watch_state *w = ctx;
	const char *event = st->reason == MN_MEMORY_INITIAL ? "memory.status"
			    : st->reason == MN_MEMORY_ERROR ? "memory.error"
							    : "memory.level";

	if (w->openmetrics || w->textfile) {
		if (st->reason == MN_MEMORY_ERROR)
			metrics_down(&w->m, st);
		else
			metrics_sample(&w->m, st, true);
		emit_metrics(w);
	}
	if (!w->openmetrics)
		out_memory(stdout, w->json, event, st);
	if (st->reason == MN_MEMORY_INITIAL)
		w->initial = true;
	if (st->reason == MN_MEMORY_ERROR)
		w->failed = true;
}

static void on_badmem(const struct mn_badmem_event *ev, void *ctx)
{
	struct watch_state *w = ctx;

	if (w->openmetrics || w->textfile) {
		metrics_badmem(&w->m, ev);
		emit_metrics(w);
	}
	if (!w->openmetrics)
		out_badmem(stdout, w->json, ev);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int cmd_watch(int argc, char **argv)
{
	MN_OPTS(mn_dispatch_opts, dopts, .mode = MN_DISPATCH_EXTERNAL);
	MN_OPTS(mn_memory_opts, mo);
	struct watch_state w = { 0 };
	struct args a;
	struct pollfd pfd[2];
	sigset_t sigs;
	mn_sub *sub, *bad;
	uint64_t deadline = 0, next_sample = 0, interval_ms = 0;
	bool interrupted = false;
	int err, sfd, dfd;

	parse_args(argc, argv, true, &a);
	w.json = a.json;
	w.openmetrics = a.openmetrics;
	w.textfile = a.textfile;
	mo.cgroup = a.cgroup;
	if (a.openmetrics || a.textfile)
		interval_ms = (uint64_t)((a.interval > 0 ? a.interval
					  : DEFAULT_INTERVAL_S) * 1000.0);
	if (interval_ms == 0 && (a.openmetrics || a.textfile))
		interval_ms = 1;

	/* The command drives memnotify from its own loop: the external
	   dispatch mode, with SIGINT/SIGTERM read from a signalfd. */
	err = mn_dispatch_configure(&dopts);
	if (err)
		goto fail;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (sfd < 0) {
		err = -errno;
		goto fail;
	}
	/* Refuse a bad --cgroup or threshold before printing anything. */
	{
		struct mn_memory_status st = { .sz = sizeof(st) };
		err = mn_memory_status(&mo, &st);
		check_cgroup(a.cgroup, err);
		if (err)
			goto fail;
		metrics_sample(&w.m, &st, true);
	}
	/* A --textfile that cannot be written fails now, not later. */
	if (a.textfile && (err = metrics_textfile(a.textfile, &w.m))) {
		fprintf(stderr, "%s: watch: --textfile %s: %s\n", prog,
			a.textfile, strerror(-err));
		return 1;
	}
	if (!a.json && !a.openmetrics)
		out_memory_header(stdout);
	err = mn_memory_subscribe(&mo, on_memory, &w, &sub);
	if (err)
		goto fail;
	/* Bad memory: this process's pages and the machine's
	   HardwareCorrupted (read every 10 s). */
	err = mn_badmem_subscribe(NULL, on_badmem, &w, &bad);
	if (err)
		goto fail;
	dfd = mn_dispatch_fd();
	if (dfd < 0) {
		err = dfd;
		goto fail;
	}
	if (a.duration > 0)
		deadline = mono_ms() + (uint64_t)(a.duration * 1000.0);

	pfd[0] = (struct pollfd){ .fd = dfd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	if (interval_ms)
		next_sample = mono_ms() + interval_ms;
	while (!w.failed) {
		int timeout = -1;
		uint64_t now = mono_ms();
		if (deadline) {
			/* A duration shorter than the first sample still
			   prints the initial status: past the deadline, wait
			   (a bounded time) for that line only. */
			uint64_t until = w.initial ? deadline
						   : deadline + INITIAL_GRACE_MS;
			if (now >= until)
				break;
			uint64_t left = (now < deadline ? deadline : until) - now;
			timeout = left > INT_MAX ? INT_MAX : (int)left;
		}
		/* Metrics: a fresh sample every interval, between changes. */
		if (interval_ms && now >= next_sample) {
			struct mn_memory_status st = { .sz = sizeof(st) };
			if (w.initial && mn_memory_status(&mo, &st) == 0) {
				metrics_sample(&w.m, &st, false);
				emit_metrics(&w);
			}
			next_sample = now + interval_ms;
		}
		if (interval_ms) {
			uint64_t left = next_sample - now;
			if (left > INT_MAX)
				left = INT_MAX;
			if (timeout < 0 || left < (uint64_t)timeout)
				timeout = (int)left;
		}
		int n = poll(pfd, 2, timeout);
		if (n < 0 && errno != EINTR) {
			err = -errno;
			goto fail;
		}
		if (n > 0 && (pfd[1].revents & POLLIN)) {
			interrupted = true;
			break;
		}
		if (n > 0 && (pfd[0].revents & POLLIN)) {
			err = mn_dispatch(0);
			if (err < 0 && err != -EINTR)
				goto fail;
		}
	}
	mn_unsubscribe(bad);
	mn_unsubscribe(sub);
	mn_shutdown();
	if (!w.initial && !w.failed && !interrupted) {
		fprintf(stderr, "%s: watch: no memory status within %g s\n",
			prog, a.duration + INITIAL_GRACE_MS / 1000.0);
		return 1;
	}
	return w.failed ? 1 : 0;
fail:
	fprintf(stderr, "%s: watch: %s\n", prog, mn_strerror(err));
	return 1;
}

/* memnotify run [--json] [--output FILE] -- PROGRAM [ARGS...] */
static int cmd_run(int argc, char **argv)
{
	const char *output = NULL;
	bool json = false;
	int i, fd, pipefd[2], status;
	char lib[PATH_MAX], preload[PATH_MAX * 2 + 2], fdbuf[64];
	Dl_info info;
	pid_t pid;

	for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--output")) {
			if (++i >= argc || !strcmp(argv[i], "--"))
				die_usage("--output needs a file%s", "");
			output = argv[i];
		} else if (!strcmp(argv[i], "--help")) {
			usage(stdout);
			exit(0);
		} else if (argv[i][0] != '-') {
			die_usage("run needs '--' before the program ('%s')", argv[i]);
		} else {
			die_usage("unknown option '%s'", argv[i]);
		}
	}
	if (i >= argc)
		die_usage("run needs '--' before the program%s", "");
	if (i + 1 >= argc)
		die_usage("run needs a program after '--'%s", "");
	argv += i + 1;

	/* The library this command itself runs on is the one to preload. */
	if (!dladdr((void *)mn_version, &info) || !info.dli_fname ||
	    !realpath(info.dli_fname, lib)) {
		fprintf(stderr, "%s: run: cannot find libmemnotify.so\n", prog);
		return 1;
	}
	/* LD_PRELOAD has no quoting: the loader splits it at blanks and
	   colons, so such a path would preload nothing, silently.  Refuse
	   rather than trace nothing (a bare name with LD_LIBRARY_PATH, or a
	   symlink elsewhere, would change how the program finds its own
	   libraries or outlive it). */
	if (strpbrk(lib, " \t:")) {
		fprintf(stderr, "%s: run: cannot preload '%s': LD_PRELOAD cannot "
			"hold a path with a space, tab or colon (install "
			"memnotify under a path without them)\n", prog, lib);
		return EXIT_USAGE;
	}
	const char *old = getenv("LD_PRELOAD");
	int plen = snprintf(preload, sizeof(preload), "%s%s%s", lib,
			    old && *old ? " " : "", old ? old : "");
	if (plen < 0 || (size_t)plen >= sizeof(preload)) {
		fprintf(stderr, "%s: run: LD_PRELOAD is too long to add "
			"memnotify to it\n", prog);
		return EXIT_USAGE;
	}
	/* The events go to stderr unless asked elsewhere: the program's own
	   standard output stays its own ("--output -" mixes them on
	   purpose; "--output FILE" keeps them apart from both). */
	bool to_stdout = output && !strcmp(output, "-");
	if (output && !to_stdout)
		fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	else
		fd = dup(to_stdout ? STDOUT_FILENO : STDERR_FILENO);
	if (fd < 0) {
		fprintf(stderr, "%s: run: %s: %s\n", prog,
			!output ? "stderr" : to_stdout ? "stdout" : output,
			strerror(errno));
		return output && !to_stdout ? EXIT_USAGE : 1;
	}
	/* The descriptor's identity goes with its number: the library writes
	   only while the number still names this file (a program may close
	   it and reuse the number for its own). */
	struct stat st;
	if (fstat(fd, &st) < 0)
		return 1;
	snprintf(fdbuf, sizeof(fdbuf), "%d:%llu:%llu", fd,
		 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return 1;
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		int err;
		setenv("MEMNOTIFY_RUN_FD", fdbuf, 1);
		setenv("MEMNOTIFY_RUN_JSON", json ? "1" : "0", 1);
		setenv("LD_PRELOAD", preload, 1);
		execvp(argv[0], argv);
		err = errno;
		if (write(pipefd[1], &err, sizeof(err)) < 0)
			_exit(127);
		_exit(127);
	}
	close(pipefd[1]);
	close(fd);
	int exec_err = 0;
	ssize_t n = read(pipefd[0], &exec_err, sizeof(exec_err));
	close(pipefd[0]);
	/* The terminal's Ctrl-C reaches the program; the command waits for
	   it and returns its status. */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (n == (ssize_t)sizeof(exec_err)) {
		fprintf(stderr, "%s: run: %s: %s\n", prog, argv[0], strerror(exec_err));
		return EXIT_USAGE;
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

int main(int argc, char **argv)
{
	const char *cmd;

	mn_set_log(log_sink, NULL);
	if (argc < 2)
		die_usage("no command given%s", "");
	cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version")) {
		printf("memnotify %s\n", mn_version());
		return 0;
	}
	if (!strcmp(cmd, "status"))
		return cmd_status(argc - 1, argv + 1);
	if (!strcmp(cmd, "watch"))
		return cmd_watch(argc - 1, argv + 1);
	if (!strcmp(cmd, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(cmd, "nmi"))
		return cmd_nmi(argc - 1, argv + 1);
	if (!strcmp(cmd, "inject"))
		return cmd_inject(argc - 1, argv + 1);
	die_usage("unknown command '%s'", cmd);
	return EXIT_USAGE;
}
