/* SPDX-License-Identifier: MIT */
/*
 * MN_CAP_SIGNAL_INTERPOSE tells the truth however the library is loaded:
 * this program is not linked with libmemnotify; it dlopen()s it with
 * RTLD_LOCAL (as ctypes does), or finds it preloaded (LD_PRELOAD), puts a
 * handler in the chain of SIGUSR2, then sets its own handler with the
 * sigaction() it resolves, as a later library would (Python's
 * faulthandler.enable()), and raises SIGUSR2.  The chain survived exactly
 * when the capability said "supported".  Built with MN_LINKED, the same
 * program is linked with the shared library instead (with a sanitizer's
 * interceptors in front of it in sanitizer builds).
 *
 * usage: test_sigchain_dlopen LIBMEMNOTIFY [expect-supported|expect-unsupported]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "memnotify.h"

static volatile sig_atomic_t chain_calls, program_calls;

static int chain_fn(int sig, siginfo_t *info, void *uc, int handled, void *ctx)
{
	(void)sig; (void)info; (void)uc; (void)handled; (void)ctx;
	chain_calls++;
	return 1;
}

static void program_handler(int sig)
{
	(void)sig;
	program_calls++;
}

int main(int argc, char **argv)
{
	int (*cap_fn)(unsigned int, struct mn_capability *);
	int (*reg_fn)(int, mn_signal_fn, void *, mn_sub **);
	struct mn_capability cap;
	struct sigaction sa;
	mn_sub *sub = NULL;
	void *lib;
	int err, survived;

	if (argc < 2) {
		fprintf(stderr, "usage: %s LIBMEMNOTIFY [expect-supported|expect-unsupported]\n", argv[0]);
		return 2;
	}
#ifdef MN_LINKED
	/* Built linked with the shared library (sanitizer runtimes, when
	   there are, in front of it): argv[1] only names it. */
	(void)lib;
	cap_fn = mn_capability;
	reg_fn = mn_signal_register;
#else
	lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	cap_fn = (int (*)(unsigned int, struct mn_capability *))dlsym(lib, "mn_capability");
	reg_fn = (int (*)(int, mn_signal_fn, void *, mn_sub **))dlsym(lib, "mn_signal_register");
#endif
	if (!cap_fn || !reg_fn) {
		fprintf(stderr, "dlsym: %s\n", dlerror());
		return 1;
	}
	memset(&cap, 0, sizeof(cap));
	cap.sz = sizeof(cap);
	if ((err = cap_fn(MN_CAP_SIGNAL_INTERPOSE, &cap)) != 0) {
		fprintf(stderr, "mn_capability: %d\n", err);
		return 1;
	}
	printf("signal_interpose: supported=%d error=%d detail=\"%s\"\n",
	       cap.supported, cap.error, cap.detail);
	if ((err = reg_fn(SIGUSR2, chain_fn, NULL, &sub)) != 0) {
		fprintf(stderr, "mn_signal_register: %d\n", err);
		return 1;
	}
	/* A later sigaction(), through the program's own reference. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = program_handler;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR2, &sa, NULL) < 0) {
		perror("sigaction");
		return 1;
	}
	raise(SIGUSR2);
	survived = chain_calls > 0;
	printf("after a later sigaction(): chain %s (chain calls %d, program "
	       "handler calls %d)\n", survived ? "survived" : "replaced",
	       (int)chain_calls, (int)program_calls);
	if (!survived && program_calls != 1) {
		fprintf(stderr, "FAIL: neither handler ran\n");
		return 1;
	}
	if (cap.supported != survived) {
		fprintf(stderr, "FAIL: the capability says %s but the chain was %s\n",
			cap.supported ? "yes" : "no", survived ? "kept" : "replaced");
		return 1;
	}
	if (!cap.supported && !strstr(cap.detail, "LD_PRELOAD")) {
		fprintf(stderr, "FAIL: the reason does not name LD_PRELOAD\n");
		return 1;
	}
	if (argc > 2 && (!strcmp(argv[2], "expect-supported")) != cap.supported) {
		fprintf(stderr, "FAIL: expected %s\n", argv[2]);
		return 1;
	}
	printf("ok: the capability matches what happened\n");
	return 0;
}
