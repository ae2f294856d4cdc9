/* SPDX-License-Identifier: MIT */
/*
 * userfaultfd across fork().  The parent watches an anonymous range with
 * mn_vm_watch() (userfaultfd on) and forks; the child makes ordinary,
 * hooked munmap() calls — of its copy of the watched range (which the
 * hooks report, and which takes the range out of userfaultfd first), of
 * other memory and through free() — and exits.  The parent then unmaps
 * the watched range with a raw syscall(SYS_munmap), which no hook sees:
 * the late event (MN_VM_VIA_USERFAULTFD, ev->late == 1) must arrive
 * within a bound.  Every other iteration the child also makes its first
 * mn_* call and then unmaps its own copy with a raw system call: it must
 * get its own late event (from a userfaultfd of its own).
 * Before the fix the child's hooks used the inherited userfaultfd, whose
 * ioctls act on the parent's address space: the child's munmap()
 * unregistered the parent's range, and the parent's late event was lost.
 */
#include <errno.h>
#include <sched.h>
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

#define PAGES 4

struct seen {
	uint64_t addr, len;
	_Atomic int late;   /* late unmaps of exactly this range */
	_Atomic int other;  /* anything else late */
};

static void on_vm(const struct mn_vm_event *ev, void *ctx)
{
	struct seen *s = ctx;

	if (!ev->late)
		return;
	if (ev->via == MN_VM_VIA_USERFAULTFD && ev->kind == MN_VM_UNMAP &&
	    ev->address == s->addr && ev->length == s->len)
		atomic_fetch_add(&s->late, 1);
	else
		atomic_fetch_add(&s->other, 1);
}

static void on_any(const struct mn_vm_event *ev, void *ctx)
{
	(void)ev;
	(void)ctx;
}

/* Poll @v until it is non-zero, at most @seconds. */
static bool wait_nonzero(_Atomic int *v, double seconds)
{
	double end = stress_now() + seconds;

	while (!atomic_load(v) && stress_now() < end)
		usleep(100);
	return atomic_load(v) != 0;
}

/* The child.  Exit 0, or the step that failed. */
static int child(char *r, size_t len, struct seen *s, bool own)
{
	if (own) {
		/* The child's first mn_* call: it resumes here, with a
		   userfaultfd of its own for the inherited watch. */
		mn_sub *l;
		if (mn_vm_listen(0, on_any, NULL, &l) != 0 || mn_unsubscribe(l) != 0)
			return 2;
		if (syscall(SYS_munmap, r, len) != 0)
			return 3;
		if (!wait_nonzero(&s->late, 5))
			return 4;
	} else {
		if (munmap(r, len) != 0)
			return 3;
	}
	char *o = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (o == MAP_FAILED)
		return 5;
	o[0] = 1;
	munmap(o + 4096, 4096);
	munmap(o, 3 * 4096);
	free(malloc(512 * 1024)); /* glibc's own munmap */
	return 0;
}

int main(void)
{
	struct mn_capability cap = { .sz = sizeof(cap) };
	uint64_t iters = 0;
	char what[128];
	size_t len = PAGES * 4096;

	if (mn_capability(MN_CAP_USERFAULTFD, &cap) != 0 || !cap.supported) {
		printf("skip: no userfaultfd here: %s\n", cap.detail);
		return 77;
	}
	while (stress_running() || iters < 20) {
		static struct seen s;
		bool own = iters & 1;
		mn_sub *w;

		char *r = mmap(NULL, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (r == MAP_FAILED) {
			stress_check(false, "mmap");
			break;
		}
		for (size_t i = 0; i < len; i += 4096)
			r[i] = 1;
		s.addr = (uint64_t)(uintptr_t)r;
		s.len = len;
		atomic_store(&s.late, 0);
		atomic_store(&s.other, 0);
		if (mn_vm_watch(r, len, 0, on_vm, &s, &w) != 0) {
			stress_check(false, "mn_vm_watch");
			break;
		}
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0)
			_exit(child(r, len, &s, own));
		int st = stress_wait_child(pid, 10000);
		snprintf(what, sizeof(what), "iteration %llu: child (%s) %s %d",
			 (unsigned long long)iters,
			 own ? "own userfaultfd" : "hooked munmap",
			 st == -1 ? "hung" : WIFSIGNALED(st) ? "died by signal"
							     : "exited",
			 st == -1 ? 0 : WIFSIGNALED(st) ? WTERMSIG(st)
							: WEXITSTATUS(st));
		stress_check(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, what);
		/* The child's calls changed nothing here. */
		stress_check(atomic_load(&s.late) == 0 && atomic_load(&s.other) == 0,
			     "a late event in the parent before its own unmap");
		if (syscall(SYS_munmap, r, len) != 0) {
			stress_check(false, "syscall(SYS_munmap)");
			break;
		}
		bool got = wait_nonzero(&s.late, 5);
		snprintf(what, sizeof(what),
			 "iteration %llu (child: %s): the parent's late unmap "
			 "event within 5 s",
			 (unsigned long long)iters,
			 own ? "own userfaultfd" : "hooked munmap");
		stress_check(got, what);
		stress_check(mn_unsubscribe(w) == 0, "mn_unsubscribe");
		iters++;
		if (!got)
			break; /* one lost event says it: no 5 s per iteration */
	}
	return stress_finish("stress_uffd_fork", iters);
}
