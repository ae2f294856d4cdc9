/* SPDX-License-Identifier: MIT */
/*
 * Address-range invalidation, one test per path: a direct call, a caller
 * in a dlopen()ed library, free() of a large block, realloc() through
 * mremap, a thread stack released at thread exit, a raw syscall (seen by
 * the userfaultfd safety net, late), an mremap move, mprotect from a signal
 * handler, a callback that unmaps, fork, and bad input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memnotify.h"

#define MAXEV 64
#define PG 4096ul

struct log {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int n;
	struct mn_vm_event ev[MAXEV];
	int still_mapped[MAXEV]; /* the range was readable in the callback */
	pid_t tid[MAXEV];
};

static void log_init(struct log *l)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
}

/* Is the page mapped right now?  mincore(2) answers ENOMEM if not; a
   plain system call, safe in any context. */
static int mapped(uint64_t addr)
{
	unsigned char v;

	return syscall(SYS_mincore, (void *)(uintptr_t)(addr & ~(PG - 1)), PG, &v) == 0;
}

/* Synchronous context; may run in a signal handler (test_signal uses a
   log without the mutex). */
static void record(const struct mn_vm_event *ev, void *ctx)
{
	struct log *l = ctx;
	int i;

	pthread_mutex_lock(&l->lock);
	i = l->n;
	if (i < MAXEV) {
		l->ev[i] = *ev;
		l->still_mapped[i] = mapped(ev->address);
		l->tid[i] = (pid_t)syscall(SYS_gettid);
	}
	l->n++;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

static int find(struct log *l, enum mn_vm_kind kind, uint64_t addr, uint64_t len)
{
	for (int i = 0; i < l->n && i < MAXEV; i++)
		if (l->ev[i].kind == kind && l->ev[i].address == addr &&
		    l->ev[i].length == len)
			return i;
	return -1;
}

static int wait_find(struct log *l, enum mn_vm_kind kind, uint64_t addr,
		     uint64_t len, int ms)
{
	struct timespec ts;
	int i;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	pthread_mutex_lock(&l->lock);
	while ((i = find(l, kind, addr, len)) < 0)
		if (pthread_cond_timedwait(&l->cond, &l->lock, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&l->lock);
	return i;
}

static char *map_pages(size_t n)
{
	char *p = mmap(NULL, n * PG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	memset(p, 1, n * PG);
	return p;
}

static uint64_t u(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

static void test_direct_calls(void **state)
{
	struct log l;
	mn_sub *w;
	char *p = map_pages(8);

	(void)state;
	log_init(&l);
	/* Unaligned: widened to pages 1..3. */
	assert_int_equal(mn_vm_watch(p + PG + 100, 2 * PG, 0, record, &l, &w), 0);

	assert_int_equal(mprotect(p + 2 * PG, PG, PROT_READ), 0);
	int i = find(&l, MN_VM_PROTECT, u(p + 2 * PG), PG);
	assert_true(i >= 0);
	assert_int_equal(l.ev[i].prot, PROT_READ);
	assert_int_equal(l.ev[i].via, MN_VM_VIA_HOOK);
	assert_int_equal(l.ev[i].late, 0);
	assert_int_equal(l.tid[i], (pid_t)syscall(SYS_gettid));
	assert_int_equal(l.ev[i].watch_address, u(p + PG));
	assert_int_equal(l.ev[i].watch_length, 3 * PG);

	assert_int_equal(madvise(p, 8 * PG, MADV_DONTNEED), 0);
	i = find(&l, MN_VM_DISCARD, u(p + PG), 3 * PG); /* the intersection */
	assert_true(i >= 0);
	assert_int_equal(l.ev[i].advice, MADV_DONTNEED);
	int before = l.n;
	assert_int_equal(madvise(p, 8 * PG, MADV_WILLNEED), 0);
	assert_int_equal(l.n, before); /* not a discard */

	/* Outside the watch: nothing. */
	assert_int_equal(mprotect(p + 6 * PG, PG, PROT_READ), 0);
	assert_int_equal(l.n, before);

	/* munmap: synchronous, before the memory goes. */
	assert_int_equal(munmap(p + PG, 2 * PG), 0);
	i = find(&l, MN_VM_UNMAP, u(p + PG), 2 * PG);
	assert_true(i >= 0);
	assert_true(l.still_mapped[i]);
	assert_false(mapped(u(p + PG)));

	/* mmap(MAP_FIXED) over the rest of it. */
	assert_true(mmap(p + 3 * PG, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS |
			 MAP_FIXED, -1, 0) != MAP_FAILED);
	assert_true(find(&l, MN_VM_UNMAP, u(p + 3 * PG), PG) >= 0);

	assert_int_equal(mn_unsubscribe(w), 0);
	before = l.n;
	assert_int_equal(munmap(p, 8 * PG), 0);
	assert_int_equal(l.n, before); /* never again */
	assert_int_equal(mn_unsubscribe(w), -ENOENT);
}

static void test_mremap(void **state)
{
	struct log l;
	mn_sub *w;
	char *p = map_pages(4), *q;
	char *dest = map_pages(8);

	(void)state;
	log_init(&l);
	assert_int_equal(mn_vm_watch(p, 4 * PG, 0, record, &l, &w), 0);
	/* Shrink: the tail is unmapped. */
	assert_true(mremap(p, 4 * PG, 3 * PG, 0) == p);
	assert_true(find(&l, MN_VM_UNMAP, u(p + 3 * PG), PG) >= 0);
	/* Move to a chosen place. */
	q = mremap(p, 3 * PG, 3 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, dest);
	assert_true(q == dest);
	int i = find(&l, MN_VM_MOVE, u(p), 3 * PG);
	assert_true(i >= 0);
	assert_int_equal(l.ev[i].new_address, u(dest));
	assert_true(l.still_mapped[i]);
	assert_int_equal(mn_unsubscribe(w), 0);
	munmap(dest, 8 * PG);
}

/* glibc's own callers: free() and realloc() of mmap()ed blocks. */
static void test_glibc_internal(void **state)
{
	struct mn_capability cap = { .sz = sizeof(cap) };
	struct log l;
	mn_sub *w;
	size_t big = 4 << 20;
	char *p;

	(void)state;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	/* The sanitizer's allocator replaces glibc's: there is no glibc
	   free()/realloc() path to see.  The plain run covers this test. */
	print_message("skipped under a sanitizer: glibc's allocator is not in use\n");
	skip();
#endif
	mn_capability(MN_CAP_VM_LIBC_PATCH, &cap);
	if (!cap.supported) {
		print_message("skipped: %s\n", cap.detail);
		skip();
	}
	log_init(&l);
	p = malloc(big); /* above the mmap threshold: its own mapping */
	memset(p, 2, big);
	assert_int_equal(mn_vm_watch(p, big, 0, record, &l, &w), 0);
	uint64_t lo = u(p) & ~(PG - 1), old = u(p);
	/* realloc to a much bigger size: glibc's internal mremap. */
	char *q = realloc(p, 64 << 20);
	assert_non_null(q);
	if (u(q) != old) {
		int i = -1;
		for (int k = 0; k < l.n; k++)
			if (l.ev[k].kind == MN_VM_MOVE)
				i = k;
		assert_true(i >= 0);
		assert_true(l.ev[i].address <= lo);
	}
	assert_int_equal(mn_unsubscribe(w), 0);

	log_init(&l);
	assert_int_equal(mn_vm_watch(q, 64 << 20, 0, record, &l, &w), 0);
	free(q); /* glibc's internal munmap */
	int found = 0;
	for (int k = 0; k < l.n; k++)
		if (l.ev[k].kind == MN_VM_UNMAP && l.ev[k].via == MN_VM_VIA_HOOK)
			found++;
	assert_true(found >= 1);
	assert_int_equal(mn_unsubscribe(w), 0);
}

/* A thread's stack, released by glibc when the thread is joined.  The
   thread reports its stack and waits while the test watches it. */
struct stack_report {
	pthread_barrier_t reported, watched;
	uint64_t addr, size;
};

static void *stack_reporter(void *arg)
{
	struct stack_report *r = arg;
	pthread_attr_t a;
	void *addr;
	size_t size;

	pthread_getattr_np(pthread_self(), &a);
	pthread_attr_getstack(&a, &addr, &size);
	pthread_attr_destroy(&a);
	r->addr = u(addr);
	r->size = size;
	pthread_barrier_wait(&r->reported);
	pthread_barrier_wait(&r->watched);
	return NULL;
}

static void test_thread_stack(void **state)
{
	struct mn_capability patch = { .sz = sizeof(patch) };
	struct mn_capability uffd = { .sz = sizeof(uffd) };
	struct stack_report r;
	struct log l;
	pthread_attr_t attr;
	pthread_t t;
	mn_sub *w;

	(void)state;
	mn_capability(MN_CAP_VM_LIBC_PATCH, &patch);
	mn_capability(MN_CAP_USERFAULTFD, &uffd);
	if (!patch.supported && !uffd.supported) {
		print_message("skipped: %s; %s\n", patch.detail, uffd.detail);
		skip();
	}
	log_init(&l);
	pthread_barrier_init(&r.reported, NULL, 2);
	pthread_barrier_init(&r.watched, NULL, 2);
	/* Bigger than glibc's stack cache (40 MiB): freed at join. */
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 96 << 20);
	assert_int_equal(pthread_create(&t, &attr, stack_reporter, &r), 0);
	pthread_barrier_wait(&r.reported);
	assert_int_equal(mn_vm_watch((void *)(uintptr_t)r.addr, r.size, 0, record, &l, &w), 0);
	pthread_barrier_wait(&r.watched);
	pthread_join(t, NULL);
	pthread_attr_destroy(&attr);
	/* glibc's internal munmap of the stack: the redirected entry point
	   sees it in the joining thread, before it happens; without the
	   redirection (under ThreadSanitizer, or MEMNOTIFY_NO_PATCH) the
	   userfaultfd safety net sees it, late. */
	int i = wait_find(&l, MN_VM_UNMAP, r.addr, r.size, 5000);
	assert_true(i >= 0);
	if (patch.supported) {
		assert_int_equal(l.ev[i].via, MN_VM_VIA_HOOK);
		assert_true(l.still_mapped[i]);
	} else {
		print_message("redirection off (%s): checking the late event\n", patch.detail);
		assert_int_equal(l.ev[i].via, MN_VM_VIA_USERFAULTFD);
		assert_int_equal(l.ev[i].late, 1);
	}
	assert_int_equal(mn_unsubscribe(w), 0);
	pthread_barrier_destroy(&r.reported);
	pthread_barrier_destroy(&r.watched);
}

/* A caller in a library loaded later, through its own PLT. */
static void test_dlopen_caller(void **state)
{
	struct log l;
	mn_sub *w;
	void *h;
	int (*dl_unmap)(void *, size_t);
	char *p = map_pages(2);

	(void)state;
	h = dlopen(MN_TEST_DLCALLER, RTLD_NOW | RTLD_LOCAL);
	assert_non_null(h);
	dl_unmap = (int (*)(void *, size_t))dlsym(h, "dl_unmap");
	assert_non_null(dl_unmap);
	log_init(&l);
	assert_int_equal(mn_vm_watch(p, 2 * PG, 0, record, &l, &w), 0);
	assert_int_equal(dl_unmap(p, 2 * PG), 0);
	int i = find(&l, MN_VM_UNMAP, u(p), 2 * PG);
	assert_true(i >= 0);
	assert_int_equal(l.ev[i].via, MN_VM_VIA_HOOK);
	assert_true(l.still_mapped[i]);
	assert_int_equal(mn_unsubscribe(w), 0);
	dlclose(h);
}

/* A raw system call: no hook sees it; userfaultfd does, late. */
static void test_raw_syscall_late(void **state)
{
	struct mn_capability cap = { .sz = sizeof(cap) };
	struct log l;
	mn_sub *w;
	char *p = map_pages(4);

	(void)state;
	mn_capability(MN_CAP_USERFAULTFD, &cap);
	if (!cap.supported) {
		print_message("skipped: %s\n", cap.detail);
		skip();
	}
	log_init(&l);
	assert_int_equal(mn_vm_watch(p, 4 * PG, 0, record, &l, &w), 0);
	assert_int_equal(syscall(SYS_madvise, p, 4 * PG, MADV_DONTNEED), 0);
	int i = wait_find(&l, MN_VM_DISCARD, u(p), 4 * PG, 5000);
	assert_true(i >= 0);
	assert_int_equal(l.ev[i].via, MN_VM_VIA_USERFAULTFD);
	assert_int_equal(l.ev[i].late, 1);
	assert_true(l.tid[i] != (pid_t)syscall(SYS_gettid)); /* the dispatcher */
	assert_int_equal(syscall(SYS_munmap, p + 2 * PG, 2 * PG), 0);
	assert_true(wait_find(&l, MN_VM_UNMAP, u(p + 2 * PG), 2 * PG, 5000) >= 0);
	/* A hooked call is reported once, not again late. */
	int before = l.n;
	assert_int_equal(munmap(p, 2 * PG), 0);
	assert_true(find(&l, MN_VM_UNMAP, u(p), 2 * PG) >= 0);
	usleep(100 * 1000);
	int copies = 0;
	for (int k = before; k < l.n; k++)
		if (l.ev[k].kind == MN_VM_UNMAP && l.ev[k].address == u(p))
			copies++;
	assert_int_equal(copies, 1);
	assert_int_equal(mn_unsubscribe(w), 0);
}

/* mprotect from a signal handler, as GCs and JITs do. */
static char *sig_page;
static struct {
	_Atomic int n;
	_Atomic int in_handler;
	_Atomic int prot;
} sig_log;
static _Atomic int in_handler_now;

static void sig_record(const struct mn_vm_event *ev, void *ctx)
{
	(void)ctx;
	if (ev->kind == MN_VM_PROTECT && ev->address == u(sig_page)) {
		atomic_store(&sig_log.prot, ev->prot);
		atomic_store(&sig_log.in_handler, atomic_load(&in_handler_now));
		atomic_fetch_add(&sig_log.n, 1);
	}
}

static void on_usr1(int sig)
{
	(void)sig;
	atomic_store(&in_handler_now, 1);
	mprotect(sig_page, PG, PROT_NONE);
	atomic_store(&in_handler_now, 0);
}

static void test_mprotect_in_signal_handler(void **state)
{
	mn_sub *lis;

	(void)state;
	sig_page = map_pages(1);
	assert_int_equal(mn_vm_listen(0, sig_record, NULL, &lis), 0);
	signal(SIGUSR1, on_usr1);
	raise(SIGUSR1);
	assert_int_equal(atomic_load(&sig_log.n), 1);
	assert_int_equal(atomic_load(&sig_log.in_handler), 1);
	assert_int_equal(atomic_load(&sig_log.prot), PROT_NONE);
	assert_int_equal(mn_unsubscribe(lis), 0);
	munmap(sig_page, PG);
}

/* A callback that unmaps: reported one level deep, no recursion. */
static char *other;
static _Atomic int nested_calls;

static void unmapper(const struct mn_vm_event *ev, void *ctx)
{
	struct log *l = ctx;

	record(ev, l);
	atomic_fetch_add(&nested_calls, 1);
	if (other) {
		char *o = other;
		other = NULL;
		munmap(o, PG); /* inside the callback */
	}
}

static void test_callback_unmaps(void **state)
{
	struct log l;
	mn_sub *w1, *w2;
	char *p = map_pages(1);

	(void)state;
	other = map_pages(1);
	log_init(&l);
	assert_int_equal(mn_vm_watch(p, PG, 0, unmapper, &l, &w1), 0);
	assert_int_equal(mn_vm_watch(other, PG, 0, unmapper, &l, &w2), 0);
	char *o = other;
	assert_int_equal(munmap(p, PG), 0);
	assert_true(find(&l, MN_VM_UNMAP, u(p), PG) >= 0);
	assert_true(find(&l, MN_VM_UNMAP, u(o), PG) >= 0); /* the nested one */
	assert_int_equal(mn_unsubscribe(w1), 0);
	assert_int_equal(mn_unsubscribe(w2), 0);
}

static void test_fork_child_keeps_working(void **state)
{
	struct log l;
	mn_sub *w;
	char *p = map_pages(2);
	pid_t pid;
	int status;

	(void)state;
	log_init(&l);
	assert_int_equal(mn_vm_watch(p, 2 * PG, MN_VM_NO_USERFAULTFD, record, &l, &w), 0);
	pid = fork();
	if (pid == 0) {
		alarm(10);
		if (munmap(p, PG) != 0)
			_exit(2);
		_exit(find(&l, MN_VM_UNMAP, u(p), PG) >= 0 ? 0 : 3);
	}
	assert_true(waitpid(pid, &status, 0) == pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(mn_unsubscribe(w), 0);
	munmap(p, 2 * PG);
}

/* shmdt: the whole attached segment is unmapped. */
static void test_shmdt(void **state)
{
	struct log l;
	mn_sub *w;
	int id = shmget(IPC_PRIVATE, 3 * PG, IPC_CREAT | 0600);
	char *p;

	(void)state;
	if (id < 0) {
		print_message("skipped: shmget: %s\n", strerror(errno));
		skip();
	}
	p = shmat(id, NULL, 0);
	shmctl(id, IPC_RMID, NULL);
	assert_true(p != (void *)-1);
	log_init(&l);
	assert_int_equal(mn_vm_watch(p, 3 * PG, 0, record, &l, &w), 0);
	assert_int_equal(shmdt(p), 0);
	int i = find(&l, MN_VM_UNMAP, u(p), 3 * PG);
	assert_true(i >= 0);
	assert_true(l.still_mapped[i]);
	assert_int_equal(mn_unsubscribe(w), 0);
}

static void noop(const struct mn_vm_event *ev, void *ctx)
{
	(void)ev;
	(void)ctx;
}

static void test_bad_arguments(void **state)
{
	mn_sub *s;
	char c = 0;

	(void)state;
	assert_int_equal(mn_vm_watch(&c, 0, 0, noop, NULL, &s), -EINVAL);
	assert_int_equal(mn_vm_watch((void *)(UINTPTR_MAX - PG), 2 * PG, 0, noop,
				     NULL, &s), -EINVAL);
	assert_int_equal(mn_vm_watch(&c, 1, 1u << 7, noop, NULL, &s), -EINVAL);
	assert_int_equal(mn_vm_watch(&c, 1, 0, NULL, NULL, &s), -EINVAL);
	assert_int_equal(mn_vm_watch(&c, 1, 0, noop, NULL, NULL), -EINVAL);
	assert_int_equal(mn_vm_listen(3, noop, NULL, &s), -EINVAL);
	assert_int_equal(mn_vm_listen(0, NULL, NULL, &s), -EINVAL);
	assert_string_equal(mn_vm_event_name(MN_VM_MOVE), "vm.move");
	assert_string_equal(mn_vm_event_name(99), "vm.unknown");
}

/* Many watches: the index finds exactly the overlapping ones. */
static _Atomic int hits[64];

static void count_hit(const struct mn_vm_event *ev, void *ctx)
{
	(void)ev;
	atomic_fetch_add(&hits[(intptr_t)ctx], 1);
}

static void test_many_overlapping_watches(void **state)
{
	mn_sub *s[64];
	char *p = map_pages(64);

	(void)state;
	/* Watch i covers pages [i, i + 4). */
	for (intptr_t i = 0; i < 60; i++)
		assert_int_equal(mn_vm_watch(p + i * PG, 4 * PG, MN_VM_NO_USERFAULTFD,
					     count_hit, (void *)i, &s[i]), 0);
	mprotect(p + 30 * PG, PG, PROT_READ); /* page 30: watches 27..30 */
	for (int i = 0; i < 60; i++)
		assert_int_equal(atomic_load(&hits[i]), i >= 27 && i <= 30);
	for (int i = 0; i < 60; i++)
		assert_int_equal(mn_unsubscribe(s[i]), 0);
	munmap(p, 64 * PG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_direct_calls),
		cmocka_unit_test(test_mremap),
		cmocka_unit_test(test_shmdt),
		cmocka_unit_test(test_many_overlapping_watches),
		cmocka_unit_test(test_glibc_internal),
		cmocka_unit_test(test_thread_stack),
		cmocka_unit_test(test_dlopen_caller),
		cmocka_unit_test(test_raw_syscall_late),
		cmocka_unit_test(test_mprotect_in_signal_handler),
		cmocka_unit_test(test_callback_unmaps),
		cmocka_unit_test(test_fork_child_keeps_working),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
