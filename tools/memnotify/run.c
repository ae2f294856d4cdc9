/* SPDX-License-Identifier: MIT */
/*
 * memnotify run [--json] [--output FILE] -- PROGRAM [ARGS...]
 *
 * Runs PROGRAM with this command's own libmemnotify preloaded; the
 * library's preloaded side (src/run/preload.c) writes one line per range
 * event to the descriptor named by MEMNOTIFY_RUN_FD.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

struct run_args {
	bool json;
	const char *output; /* NULL: stderr; "-": stdout */
	char **program;     /* argv of PROGRAM */
};

static void parse_run(int argc, char **argv, struct run_args *r)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*r = (struct run_args){ 0 };
	/* "+": stop at PROGRAM; its own options are its own. */
	optind = 1;
	while ((c = next_option(argc, argv, opts)) != -1) {
		switch (c) {
		case 'j':
			r->json = true;
			break;
		case 'o':
			if (!strcmp(optarg, "--"))
				die_usage("--output needs a file");
			r->output = optarg;
			break;
		}
	}
	bool dashes = optind > 1 && !strcmp(argv[optind - 1], "--");
	if (optind >= argc)
		die_usage(dashes ? "run needs a program after '--'"
				 : "run needs '--' before the program");
	if (!dashes)
		die_usage("run needs '--' before the program ('%s')", argv[optind]);
	r->program = argv + optind;
}

/* LD_PRELOAD's new value: this command's own library first.  0, or an
   exit status after saying why. */
static int preload_value(char *out, size_t len)
{
	char lib[PATH_MAX];
	Dl_info info;

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
	int n = snprintf(out, len, "%s%s%s", lib, old && *old ? " " : "",
			 old ? old : "");
	if (n < 0 || (size_t)n >= len) {
		fprintf(stderr, "%s: run: LD_PRELOAD is too long to add "
			"memnotify to it\n", prog);
		return EXIT_USAGE;
	}
	return 0;
}

/* The events' descriptor and its identity "FD:DEV:INO" in @id.  The
   events go to stderr unless asked elsewhere: the program's own standard
   output stays its own ("--output -" mixes them on purpose; "--output
   FILE" keeps them apart from both).  The fd, or -(exit status). */
static int open_output(const char *output, char *id, size_t len)
{
	bool to_stdout = output && !strcmp(output, "-");
	struct stat st;
	int fd;

	if (output && !to_stdout)
		fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	else
		fd = dup(to_stdout ? STDOUT_FILENO : STDERR_FILENO);
	if (fd < 0) {
		fprintf(stderr, "%s: run: %s: %s\n", prog,
			!output ? "stderr" : to_stdout ? "stdout" : output,
			strerror(errno));
		return output && !to_stdout ? -EXIT_USAGE : -1;
	}
	/* The descriptor's identity goes with its number: the library writes
	   only while the number still names this file (a program may close
	   it and reuse the number for its own). */
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -1;
	}
	snprintf(id, len, "%d:%llu:%llu", fd, (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	return fd;
}

/* Fork and exec PROGRAM with the environment set; an exec failure comes
   back through a close-on-exec pipe.  Its pid, with *exec_err set to the
   exec's errno or 0; -1 if fork fails. */
static pid_t spawn(const struct run_args *r, const char *preload,
		   const char *fdid, int *exec_err)
{
	int pipefd[2];
	pid_t pid;

	*exec_err = 0;
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		int err;
		setenv("MEMNOTIFY_RUN_FD", fdid, 1);
		setenv("MEMNOTIFY_RUN_JSON", r->json ? "1" : "0", 1);
		setenv("LD_PRELOAD", preload, 1);
		execvp(r->program[0], r->program);
		err = errno;
		if (write(pipefd[1], &err, sizeof(err)) < 0)
			_exit(127);
		_exit(127);
	}
	close(pipefd[1]);
	if (pid > 0 && read(pipefd[0], exec_err, sizeof(*exec_err)) !=
			       (ssize_t)sizeof(*exec_err))
		*exec_err = 0;
	close(pipefd[0]);
	return pid;
}

int cmd_run(int argc, char **argv)
{
	char preload[PATH_MAX * 2 + 2], fdid[64];
	struct run_args r;
	int fd, status, exec_err, err;
	pid_t pid;

	parse_run(argc, argv, &r);
	if ((err = preload_value(preload, sizeof(preload))))
		return err;
	if ((fd = open_output(r.output, fdid, sizeof(fdid))) < 0)
		return -fd;
	pid = spawn(&r, preload, fdid, &exec_err);
	close(fd);
	if (pid < 0)
		return 1;
	/* The terminal's Ctrl-C reaches the program; the command waits for
	   it and returns its status. */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (exec_err) {
		fprintf(stderr, "%s: run: %s: %s\n", prog, r.program[0],
			strerror(exec_err));
		return EXIT_USAGE;
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}
