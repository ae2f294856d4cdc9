/* SPDX-License-Identifier: MIT */
/*
 * A range callback that unsubscribes while memnotify starts one of its own
 * threads.  Creating a thread makes glibc mprotect() the new stack (its
 * guard page), a call the entry redirection reports synchronously to the
 * listeners, on the creating thread.  Here a listener's callback, on its
 * first MN_VM_PROTECT event, calls mn_unsubscribe() on its own handle —
 * which takes the core lock.  Each round is a fresh process:
 *  - variant 0: the process's first mn_memory_subscribe() starts the
 *    dispatcher's thread;
 *  - variant 1: with the dispatcher running, mn_badmem_subscribe() with
 *    MN_BADMEM_EARLY_KILL starts the early-kill thread.
 * Before the fix the thread was created under the core lock (with every
 * signal blocked): the callback's mn_unsubscribe() deadlocked on it.  Pass:
 * every child exits 0 within its bound; the callback ran during the
 * subscribe, its mn_unsubscribe() returned 0, and it is not called again.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memnotify.h"
#include "stress.h"

static mn_sub *listener;
static _Atomic int armed, fired, calls_after;
static _Atomic int unsub_ret = 1;

static void on_vm(const struct mn_vm_event *ev, void *ctx)
{
	(void)ctx;
	if (atomic_load(&fired))
		atomic_fetch_add(&calls_after, 1);
	if (ev->kind != MN_VM_PROTECT || !atomic_load(&armed) ||
	    atomic_exchange(&fired, 1))
		return;
	atomic_store(&unsub_ret, mn_unsubscribe(listener));
}

static void on_level(const struct mn_memory_status *st, void *ctx)
{
	(void)st;
	(void)ctx;
}

static void on_bad(const struct mn_badmem_event *ev, void *ctx)
{
	(void)ev;
	(void)ctx;
}

/*
 * One round in a fresh child.  Exit codes: 0 pass, 77 early kill refused
 * here (variant 1 only), others name the failed step.
 */
static int round_child(int variant)
{
	MN_OPTS(mn_badmem_opts, bo, .flags = MN_BADMEM_EARLY_KILL | MN_BADMEM_NO_SYSTEM);
	mn_sub *mem, *bad = NULL;
	int err;

	if (mn_vm_listen(0, on_vm, NULL, &listener) != 0)
		return 2;
	if (variant == 0)
		atomic_store(&armed, 1);
	if (mn_memory_subscribe(NULL, on_level, NULL, &mem) != 0)
		return 3;
	if (variant == 1) {
		atomic_store(&armed, 1);
		err = mn_badmem_subscribe(&bo, on_bad, NULL, &bad);
		if (err == -EINVAL || err == -EPERM || err == -EOPNOTSUPP)
			return 77;
		if (err != 0)
			return 4;
	}
	if (!atomic_load(&fired))
		return 5; /* the thread's stack protection was not seen */
	if (atomic_load(&unsub_ret) != 0)
		return 6;
	/* Never called again: another protection change on this thread. */
	int before = atomic_load(&calls_after);
	void *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || mprotect(p, 4096, PROT_NONE) != 0)
		return 7;
	munmap(p, 4096);
	if (atomic_load(&calls_after) != before)
		return 8;
	if ((bad && mn_unsubscribe(bad) != 0) || mn_unsubscribe(mem) != 0)
		return 9;
	return mn_shutdown() == 0 ? 0 : 10;
}

static int in_child(int (*fn)(int), int arg, int timeout_ms)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0)
		_exit(fn(arg));
	return stress_wait_child(pid, timeout_ms);
}

static int libc_patched(int unused)
{
	struct mn_capability c = { .sz = sizeof(c) };

	(void)unused;
	return mn_capability(MN_CAP_VM_LIBC_PATCH, &c) == 0 && c.supported ? 0 : 1;
}

int main(void)
{
	uint64_t rounds = 0;
	bool early = true;
	char what[96];

	/* Asked in a throwaway child: this process stays pristine. */
	int s = in_child(libc_patched, 0, 10000);
	if (s == -1 || !WIFEXITED(s) || WEXITSTATUS(s) != 0) {
		printf("skip: the C library's entry points are not redirected "
		       "here (MN_CAP_VM_LIBC_PATCH), so no thread creation is seen\n");
		return 77;
	}
	while (stress_running() || rounds < 8) {
		int variant = early ? (int)(rounds & 1) : 0;
		s = in_child(round_child, variant, 10000);
		if (variant == 1 && s != -1 && WIFEXITED(s) && WEXITSTATUS(s) == 77) {
			printf("note: MN_BADMEM_EARLY_KILL refused here; variant 1 "
			       "not run\n");
			early = false;
			continue;
		}
		snprintf(what, sizeof(what), "round %llu (variant %d): child %s %d",
			 (unsigned long long)rounds, variant,
			 s == -1 ? "hung" : WIFSIGNALED(s) ? "died by signal"
							   : "exited",
			 s == -1 ? 0 : WIFSIGNALED(s) ? WTERMSIG(s) : WEXITSTATUS(s));
		stress_check(s != -1 && WIFEXITED(s) && WEXITSTATUS(s) == 0, what);
		rounds++;
	}
	return stress_finish("stress_callback_unsub", rounds);
}
