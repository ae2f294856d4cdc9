/* SPDX-License-Identifier: MIT */
/* memnotify inject (inject.c). */
#ifndef MEMNOTIFY_CLI_INJECT_H
#define MEMNOTIFY_CLI_INJECT_H

/* The subcommand: argv[0] is "inject".  Exit status 0, 1 or 2. */
int cmd_inject(int argc, char **argv);
/* NULL if inject can run here, else why not (a constant string). */
const char *inject_unavailable(void);

#endif
