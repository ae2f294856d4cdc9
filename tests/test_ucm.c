/* SPDX-License-Identifier: MIT */
/*
 * Coexistence with UCX's libucm (Debian libucx-dev), linked after
 * libmemnotify: whichever installs its hooks first, both see an munmap()
 * by the program and glibc's own munmap() inside free(), and memnotify
 * reports before the memory goes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <ucm/api/ucm.h>

#include "memnotify.h"

#define SZ (8ul << 20)

static int ucm_hits, mn_hits;

static void on_ucm(ucm_event_type_t t, ucm_event_t *ev, void *arg)
{
	(void)t;
	(void)arg;
	if (ev->vm_unmapped.size >= SZ)
		ucm_hits++;
}

static void on_mn(const struct mn_vm_event *ev, void *ctx)
{
	(void)ctx;
	if (ev->kind == MN_VM_UNMAP && ev->via == MN_VM_VIA_HOOK && ev->length >= SZ)
		mn_hits++;
}

/* In a child: the hooks are the process's for good. */
static void run(int memnotify_first)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		mn_sub *w1, *w2;
		char *p;

		alarm(20);
		p = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
		if (memnotify_first &&
		    mn_vm_watch(p, SZ, MN_VM_NO_USERFAULTFD, on_mn, NULL, &w1))
			_exit(10);
		if (ucm_set_event_handler(UCM_EVENT_VM_UNMAPPED, 0, on_ucm, NULL) != UCS_OK)
			_exit(11);
		if (!memnotify_first &&
		    mn_vm_watch(p, SZ, MN_VM_NO_USERFAULTFD, on_mn, NULL, &w1))
			_exit(12);
		munmap(p, SZ);                     /* the program's own call */
		char *q = malloc(SZ);              /* its own mapping */
		q[0] = 1;
		if (mn_vm_watch(q, SZ, MN_VM_NO_USERFAULTFD, on_mn, NULL, &w2))
			_exit(13);
		free(q);                           /* glibc's internal munmap */
		/* Both saw both (memnotify: w1 once, w2 once; the freed block
		   may also overlap w1's old range). */
		if (ucm_hits < 2)
			_exit(20 + ucm_hits);
		if (mn_hits < 2)
			_exit(30 + mn_hits);
		_exit(0);
	}
	assert_true(waitpid(pid, &status, 0) == pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status))
		fail_msg("%s first: exit %d (2x: ucm saw x; 3x: memnotify saw x)",
			 memnotify_first ? "memnotify" : "ucm", WEXITSTATUS(status));
}

static void test_memnotify_installs_first(void **state)
{
	(void)state;
	run(1);
}

static void test_ucm_installs_first(void **state)
{
	(void)state;
	run(0);
}

int main(void)
{
	struct mn_capability cap = { .sz = sizeof(cap) };

	mn_capability(MN_CAP_VM_LIBC_PATCH, &cap);
	if (!cap.supported) {
		printf("skipped: %s\n", cap.detail);
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memnotify_installs_first),
		cmocka_unit_test(test_ucm_installs_first),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
