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
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "inject.h"
#include "output.h"

/* --duration, --interval: at most 10^7 s (about 115 days). */
#define MAX_DURATION_S 1e7

const char *prog = "memnotify";

void usage(FILE *f)
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
		"  --interval SECS  watch: also print the status every SECS (the\n"
		"                   metrics: sampled every SECS, default 5)\n"
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

void die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see '%s --help')\n", prog);
	exit(EXIT_USAGE);
}

int next_option(int argc, char **argv, const struct option *opts)
{
	static const struct option help = { "help", no_argument, NULL, 'h' };
	struct option all[16];
	size_t n = 0;
	int c;

	while (opts[n].name && n + 2 < sizeof(all) / sizeof(all[0])) {
		all[n] = opts[n];
		n++;
	}
	all[n++] = help;
	all[n] = (struct option){ 0 };
	opterr = 0;
	c = getopt_long(argc, argv, "+:", all, NULL);
	if (c == 'h') {
		usage(stdout);
		exit(0);
	}
	if (c == ':')
		die_usage("option '%s' needs an argument", argv[optind - 1]);
	if (c == '?')
		die_usage("unknown option '%s'", argv[optind - 1]);
	return c;
}

void log_sink(enum mn_log_level level, const char *msg, void *ctx)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };

	(void)ctx;
	fprintf(stderr, "%s: %s: %s\n", prog,
		level <= MN_LOG_DEBUG ? names[level] : "log", msg);
}

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

void parse_args(int argc, char **argv, bool watch, struct args *a)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "cgroup", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 'd' },
		{ "format", required_argument, NULL, 'f' },
		{ "textfile", required_argument, NULL, 't' },
		{ "interval", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	a->json = false;
	a->openmetrics = false;
	a->cgroup = NULL;
	a->textfile = NULL;
	a->duration = -1;
	a->interval = -1;
	optind = 1;
	while ((c = next_option(argc, argv, opts)) != -1) {
		switch (c) {
		case 'j':
			a->json = true;
			break;
		case 'c':
			if (!*optarg)
				die_usage("--cgroup needs a directory");
			a->cgroup = optarg;
			break;
		case 'd':
			if (!watch)
				die_usage("--duration is an option of 'watch'");
			a->duration = parse_seconds("duration", optarg);
			break;
		case 'i':
			if (!watch)
				die_usage("--interval is an option of 'watch'");
			a->interval = parse_seconds("interval", optarg);
			break;
		case 'f':
			a->json = !strcmp(optarg, "json");
			a->openmetrics = !strcmp(optarg, "openmetrics");
			if (a->openmetrics && !watch)
				die_usage("--format openmetrics is a format of "
					  "'watch'");
			if (!a->json && !a->openmetrics && strcmp(optarg, "text"))
				die_usage("unknown format '%s': want text, json "
					  "or openmetrics", optarg);
			break;
		case 't':
			if (!watch)
				die_usage("--textfile is an option of 'watch'");
			if (!*optarg)
				die_usage("--textfile needs a file");
			a->textfile = optarg;
			break;
		}
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
}

/* A --cgroup that is not a memory cgroup is a usage error: say which.  One
   that is but may not be read is a run-time failure (exit 1). */
void check_cgroup(const char *path, int err)
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

/* nmi's arguments: the signal's text (or NULL) and the process id. */
static long parse_nmi(int argc, char **argv, const char **sigarg)
{
	static const struct option opts[] = {
		{ "signal", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	long pid;
	int c;

	*sigarg = NULL;
	optind = 1;
	while ((c = next_option(argc, argv, opts)) != -1) {
		switch (c) {
		case 's':
			*sigarg = optarg;
			break;
		}
	}
	if (optind >= argc)
		die_usage("nmi needs a process id");
	if (optind + 1 < argc)
		die_usage("unexpected argument '%s'", argv[optind + 1]);
	errno = 0;
	pid = strtol(argv[optind], &end, 10);
	if (errno || *end || pid <= 0 || pid > INT_MAX)
		die_usage("bad process id '%s'", argv[optind]);
	return pid;
}

/* memnotify nmi [--signal SIG] PID */
static int cmd_nmi(int argc, char **argv)
{
	const char *sigarg;
	long pid = parse_nmi(argc, argv, &sigarg);
	char name[32];
	int sig;

	/* The library's own parser and rules for the signal. */
	if (sigarg && setenv("MEMNOTIFY_NMI_SIGNAL", sigarg, 1))
		return 1;
	mn_set_log(NULL, NULL); /* the usage line below says it */
	sig = mn_nmi_signal();
	mn_set_log(log_sink, NULL);
	if (sig < 0 && sigarg)
		die_usage("bad signal '%s'", sigarg);
	if (sig < 0)
		die_usage("bad MEMNOTIFY_NMI_SIGNAL");
	signal_name(sig, name, sizeof(name));
	if (kill((pid_t)pid, sig) < 0) {
		fprintf(stderr, "%s: nmi: cannot signal process %ld: %s\n", prog,
			pid, strerror(errno));
		return 1;
	}
	printf("sent %s (%d) to process %ld\n", name, sig, pid);
	return 0;
}

/* status --json: one object; "memory" holds the status or its error. */
static int status_json(int err, const struct mn_memory_status *st, int nmi,
		       const char *nmi_name)
{
	const char *no_inject = inject_unavailable();

	printf("{\"version\":\"%s\",", mn_version());
	printf("\"inject\":{\"available\":%s,\"reason\":",
	       no_inject ? "false" : "true");
	if (no_inject)
		out_json_str(stdout, no_inject);
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
		return 0;
	}
	/* out_memory ends with a newline: print the object, then close the
	   outer one on its own. */
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (!m)
		return -ENOMEM;
	out_memory(m, true, "memory.status", st);
	fclose(m);
	if (len && buf[len - 1] == '\n')
		buf[len - 1] = '\0';
	printf("%s}\n", buf);
	free(buf);
	return 0;
}

static void status_memory_text(const struct mn_memory_status *st)
{
	printf("watching        %s\n",
	       st->cgroup_path[0] ? st->cgroup_path : "the whole machine");
	printf("cgroup version  %s\n",
	       st->cgroup_version == MN_CGROUP_V2   ? "v2"
	       : st->cgroup_version == MN_CGROUP_V1 ? "v1"
						    : "none");
	printf("level           %s (low below %u%%, high from %u%% available)\n",
	       mn_memory_level_name(st->level), st->low_percent,
	       st->high_percent);
	printf("available       %.1f MiB\n", (double)st->available_bytes / 1048576.0);
	printf("limit           %.1f MiB\n", (double)st->limit_bytes / 1048576.0);
	printf("physical        %.1f MiB\n", (double)st->physical_bytes / 1048576.0);
	printf("load            %u%%\n", st->load_percent);
	if (st->psi_valid)
		printf("psi some        avg10 %.2f%%  avg60 %.2f%%\n"
		       "psi full        avg10 %.2f%%  avg60 %.2f%%\n",
		       st->psi_some_avg10, st->psi_some_avg60,
		       st->psi_full_avg10, st->psi_full_avg60);
}

static void status_text(int err, const struct mn_memory_status *st, int nmi,
			const char *nmi_name)
{
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
	if (err)
		printf("memory status: %s\n", mn_strerror(err));
	else
		status_memory_text(st);
}

static int cmd_status(int argc, char **argv)
{
	struct mn_memory_opts mo = MN_OPTS_INIT(mn_memory_opts);
	struct mn_memory_status st = MN_OPTS_INIT(mn_memory_status);
	char nmi_name[32];
	struct args a;
	int err, nmi;

	parse_args(argc, argv, false, &a);
	mo.cgroup = a.cgroup;
	err = mn_memory_status(&mo, &st);
	check_cgroup(a.cgroup, err);
	nmi = mn_nmi_signal();
	signal_name(nmi, nmi_name, sizeof(nmi_name));
	if (a.json) {
		if (status_json(err, &st, nmi, nmi_name))
			return 1;
	} else {
		status_text(err, &st, nmi, nmi_name);
	}
	return err ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *cmd;

	mn_set_log(log_sink, NULL);
	if (argc < 2)
		die_usage("no command given");
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
