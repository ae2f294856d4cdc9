/* SPDX-License-Identifier: MIT */
/*
 * KeRegisterNmiCallback over the signal chain: one mn_signal_register() per
 * hardware-exception signal and for the process-wide NMI signal.  The chain
 * gives the spec's order (newest first), the Handled rule and the default
 * handler; this file only adapts the callback's shape.
 */
#include <pthread.h>
#include <stdlib.h>

#include "face.h"

#define NSIGS 5

struct nmireg {
	struct mn__w32_link link; /* regs, lock */
	MN_PNMI_CALLBACK fn;
	PVOID ctx;
	mn_sub *subs[NSIGS];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct mn__w32_link *regs;

/* fork() takes the lock (core.c's atfork handlers): a child never
   inherits it held. */
__attribute__((constructor)) static void nmi_init(void)
{
	mn__lock_register(&lock, MN__RANK_FACE);
}

/* Signal context: async-signal-safe, no lock, no allocation. */
static int on_nmi(int sig, siginfo_t *info, void *uc, int handled, void *ctx)
{
	struct nmireg *r = ctx;

	(void)sig;
	(void)info;
	(void)uc;
	return r->fn(r->ctx, handled ? TRUE : FALSE) ? 1 : 0;
}

PVOID KeRegisterNmiCallback(MN_PNMI_CALLBACK fn, PVOID ctx)
{
	int sigs[NSIGS] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, mn_nmi_signal() };
	struct nmireg *r;
	int i, err = 0;

	if (!fn)
		return mn__w32_fail(-EINVAL, NULL);
	if (sigs[NSIGS - 1] < 0)
		return mn__w32_fail(-EOPNOTSUPP, NULL); /* bad MEMNOTIFY_NMI_SIGNAL */
	r = calloc(1, sizeof(*r));
	if (!r)
		return mn__w32_fail(-ENOMEM, NULL);
	r->fn = fn;
	r->ctx = ctx;
	/* In a fork child the first mn_* call re-creates memnotify's threads
	   (the dispatcher, the userfaultfd reader): let that happen here,
	   before the lock, so that no thread is created — and no range
	   callback of the program runs for its stack — while it is held. */
	mn__enter();
	/* Under the lock, so every chain has the registrations in the same
	   order. */
	pthread_mutex_lock(&lock);
	for (i = 0; i < NSIGS && !err; i++)
		err = mn_signal_register(sigs[i], on_nmi, r, &r->subs[i]);
	if (!err)
		mn__w32_push(&regs, r);
	pthread_mutex_unlock(&lock);
	if (err) {
		for (i = 0; i < NSIGS && r->subs[i]; i++)
			mn_unsubscribe(r->subs[i]);
		free(r);
		return mn__w32_fail(err == -ENOMEM ? err : -EOPNOTSUPP, NULL);
	}
	return r;
}

NTSTATUS KeDeregisterNmiCallback(PVOID handle)
{
	struct nmireg *r;

	pthread_mutex_lock(&lock);
	r = mn__w32_take(&regs, handle);
	pthread_mutex_unlock(&lock);
	if (!r)
		return STATUS_INVALID_HANDLE;
	/* Each returns once no thread runs on_nmi for it. */
	for (int i = 0; i < NSIGS; i++)
		mn_unsubscribe(r->subs[i]);
	free(r);
	return STATUS_SUCCESS;
}
