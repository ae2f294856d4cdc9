/* SPDX-License-Identifier: MIT */
/*
 * Children that share the parent's memory: vfork() and clone(CLONE_VM)
 * (without CLONE_THREAD, on a stack of its own).  No fork handler runs for
 * them and they run on the calling thread's thread-local storage, yet the
 * hooks, the watch index, the chains and the userfaultfd are the parent's.
 * Each iteration the main thread starts one such child (vfork and clone
 * in turn) that unmaps a range the parent watches (userfaultfd on) and an
 * unwatched one and re-protects the parent's long-lived watched range,
 * while two parent threads loop on mmap/mprotect/munmap of their own
 * memory and mprotect of the watched range.  The vfork child then execs
 * /bin/true; the clone child returns.
 * Pass: every child exits 0 within its bound (no crash, no deadlock), the
 * watch of the unmapped range heard the child's unmap (synchronously, so
 * before the child ended), and afterwards the parent's callbacks still
 * work: a hooked mprotect is reported on the spot, and a raw munmap of a
 * watched range arrives as a late event within a bound.
 */
#include <sched.h>
#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "memnotify.h"
#include "stress.h"

#define PS 4096u
#define STACK (256 * 1024)

struct rec {
	_Atomic int tid; /* if set: hook events of that thread only */
	_Atomic int unmap, protect, late_unmap, other;
};

static void on_vm(const struct mn_vm_event *ev, void *ctx)
{
	struct rec *r = ctx;
	int tid = atomic_load(&r->tid);

	/* Addresses are reused at once by the workers' mmap(). */
	if (tid && !ev->late && ev->tid != tid)
		return;
	if (ev->late)
		atomic_fetch_add(ev->kind == MN_VM_UNMAP ? &r->late_unmap : &r->other, 1);
	else if (ev->kind == MN_VM_UNMAP)
		atomic_fetch_add(&r->unmap, 1);
	else if (ev->kind == MN_VM_PROTECT)
		atomic_fetch_add(&r->protect, 1);
	else
		atomic_fetch_add(&r->other, 1);
}

static char *watched;             /* long-lived, watched */
static struct rec wrec;
static _Atomic int stop;
static _Atomic unsigned long worker_loops;

static void *worker(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		char *p = mmap(NULL, 2 * PS, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			abort();
		p[0] = 1;
		mprotect(p, PS, PROT_READ);
		munmap(p, 2 * PS);
		mprotect(watched, PS, PROT_READ | PROT_WRITE);
		atomic_fetch_add(&worker_loops, 1);
	}
	return NULL;
}

/* What a child does to the shared address space. */
struct job {
	char *scratch;   /* watched by the parent: unmapped here */
	char *plain;     /* not watched: unmapped here */
	struct rec *rec; /* the scratch range's watch */
};

static int child_work(struct job *j)
{
	atomic_store(&j->rec->tid, (int)syscall(SYS_gettid));
	if (munmap(j->scratch, 2 * PS) != 0 || munmap(j->plain, 2 * PS) != 0 ||
	    mprotect(watched, 2 * PS, PROT_READ | PROT_WRITE) != 0)
		return 1;
	return 0;
}

static int clone_main(void *arg)
{
	return child_work(arg);
}

/* The vfork child never returns from here: it execs or _exits. */
static pid_t start_vfork(struct job *j)
{
	pid_t pid = vfork();

	if (pid == 0) {
		if (child_work(j) != 0)
			_exit(1);
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	return pid;
}

int main(void)
{
	static struct rec srec;
	uint64_t iters = 0;
	pthread_t t[2];
	mn_sub *w;
	char what[128];
	char *stack = malloc(STACK);

	if (access("/bin/true", X_OK) != 0 || !stack) {
		printf("skip: no /bin/true to exec\n");
		return 77;
	}
	watched = stress_anon(4 * PS);
	if (!watched || mn_vm_watch(watched, 4 * PS, 0, on_vm, &wrec, &w) != 0)
		return 1;
	for (int i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, worker, NULL))
			return 1;
	while (stress_running() || iters < 20) {
		bool use_clone = iters & 1;
		struct job j = { stress_anon(2 * PS), stress_anon(2 * PS), &srec };
		mn_sub *sw;
		pid_t pid;

		if (!j.scratch || !j.plain) {
			stress_check(false, "mmap");
			break;
		}
		atomic_store(&srec.unmap, 0);
		atomic_store(&srec.tid, -1); /* until the child says */
		if (mn_vm_watch(j.scratch, 2 * PS, 0, on_vm, &srec, &sw) != 0) {
			stress_check(false, "mn_vm_watch");
			break;
		}
		fflush(stdout);
		if (use_clone)
			pid = clone(clone_main, stack + STACK, CLONE_VM | SIGCHLD, &j);
		else
			pid = start_vfork(&j);
		if (pid < 0) {
			stress_check(false, use_clone ? "clone" : "vfork");
			break;
		}
		int st = stress_wait_child(pid, 10000);
		snprintf(what, sizeof(what), "iteration %llu: %s child %s %d",
			 (unsigned long long)iters, use_clone ? "clone(CLONE_VM)" : "vfork",
			 st == -1 ? "hung" : WIFSIGNALED(st) ? "died by signal" : "exited",
			 st == -1 ? 0 : WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
		stress_check(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, what);
#if defined(__SANITIZE_THREAD__)
		/* ThreadSanitizer's vfork() is a fork(): the child's memory and
		   its watch's counters are its own. */
		if (!use_clone)
			atomic_store(&srec.unmap, 1);
#endif
		snprintf(what, sizeof(what), "iteration %llu: the %s child's unmap "
			 "of a watched range reported %d times (want 1)",
			 (unsigned long long)iters, use_clone ? "clone" : "vfork",
			 atomic_load(&srec.unmap));
		stress_check(atomic_load(&srec.unmap) == 1, what);
		stress_check(mn_unsubscribe(sw) == 0, "mn_unsubscribe");
		iters++;
		if (st == -1)
			break;
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	printf("worker loops: %lu\n", atomic_load(&worker_loops));

	/* The parent's callbacks still work: on the spot ... */
	int before = atomic_load(&wrec.protect);
	mprotect(watched, PS, PROT_READ);
	stress_check(atomic_load(&wrec.protect) == before + 1,
		     "a hooked mprotect() of the watched range is reported");
	/* ... and late, through the dispatcher. */
	struct mn_capability cap = { .sz = sizeof(cap) };
	if (mn_capability(MN_CAP_USERFAULTFD, &cap) == 0 && cap.supported) {
		if (syscall(SYS_munmap, watched, 4 * PS) != 0)
			return 1;
		double end = stress_now() + 5;
		while (!atomic_load(&wrec.late_unmap) && stress_now() < end)
			usleep(100);
		stress_check(atomic_load(&wrec.late_unmap) == 1,
			     "a raw munmap() of the watched range arrives late");
	} else {
		printf("note: no userfaultfd here; late events not checked\n");
	}
	stress_check(mn_unsubscribe(w) == 0, "mn_unsubscribe");
	free(stack);
	return stress_finish("stress_clone_vm", iters);
}
