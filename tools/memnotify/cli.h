/* SPDX-License-Identifier: MIT */
/* What the command's subcommands share: usage errors, option parsing. */
#ifndef MN_TOOL_CLI_H
#define MN_TOOL_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "memnotify.h"

#define EXIT_USAGE 2

extern const char *prog;

/* The usage text, on @f. */
void usage(FILE *f);
/* One line "memnotify: <printf-style message> (see 'memnotify --help')" on
   stderr, then exit 2. */
__attribute__((noreturn, format(printf, 1, 2))) void die_usage(const char *fmt, ...);
/* The library's log lines, on stderr. */
void log_sink(enum mn_log_level level, const char *msg, void *ctx);

/*
 * getopt_long over a subcommand's @argv (argv[0] is the subcommand),
 * stopping at the first operand ("+"); the caller sets optind to 1
 * first.  Returns the next option's code, or
 * -1 at the end (optind then indexes the first operand).  --help prints
 * the usage and exits 0; an unknown option or a missing argument is a
 * usage error (exit 2).  @opts ends with a zero entry.
 */
struct option;
int next_option(int argc, char **argv, const struct option *opts);

/* The options of status and watch. */
struct args {
	bool json;
	bool openmetrics; /* --format openmetrics */
	const char *cgroup;
	const char *textfile;
	double duration; /* seconds; < 0: none */
	double interval; /* seconds; < 0: not given */
};
void parse_args(int argc, char **argv, bool watch, struct args *a);
/* A --cgroup error: a usage error (exit 2) or a permission failure (exit
   1); returns for any other @err. */
void check_cgroup(const char *path, int err);

int cmd_watch(int argc, char **argv);  /* watch.c */
int cmd_run(int argc, char **argv);    /* run.c */

#endif
