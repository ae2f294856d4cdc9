/* SPDX-License-Identifier: MIT */
/*
 * Coexistence with UCX's libucm (Debian libucx-dev) in bistro mode, its
 * default, linked after libmemnotify.  Built twice:
 *  - test_ucm: linked with -lucm -lucs.  libucs's constructor makes libucm
 *    write its jumps into the C library's mmap, munmap, mremap, madvise,
 *    brk... before main(): memnotify installs second and chains onto them.
 *  - test_ucm_rev (MN_UCM_LINKED_FIRST): linked -lucm -lucs -lmemnotify.
 *    libucm looks "the original" munmap up after itself and finds
 *    memnotify's interposer: it writes its jumps there, not in the C
 *    library; memnotify takes its interposers back and calls libucm from
 *    the C library's entries.
 *  - test_ucm_late (MN_UCM_DLOPEN): libucs is dlopen()ed after memnotify
 *    installed, so libucm writes its jumps over memnotify's; the next
 *    mn_vm_watch() chains onto them again.
 * Each call of the program — munmap, madvise(DONTNEED), mprotect,
 * mremap(MREMAP_FIXED), mremap(MREMAP_MAYMOVE) that has to move, shmdt — and
 * glibc's own munmap() inside free() must reach memnotify's watch (through
 * the hooks, before the memory goes) and libucm's handlers (libucm has no
 * mprotect event), and the mremap calls must return the right address with
 * the data moved.  An munmap() made inside libucm's handler is a call like
 * any other: both see it too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>
#include <ucm/api/ucm.h>

#include "memnotify.h"

#define SZ (4ul << 20)

typedef ucs_status_t (*set_handler_fn)(int, int, ucm_event_callback_t, void *);

/* What each side saw last (written from the hooks: plain stores). */
static struct {
	int n;
	void *addr;
	size_t size;
	int advice;
} ucm_seen[32];
static struct {
	int n;
	uint64_t addr, len, new_addr;
} mn_seen[MN_VM_LOST + 1];

static int bit(ucm_event_type_t t)
{
	return __builtin_ctz((unsigned)t);
}

/* A libucm handler that unmaps more memory when it sees @nested_trigger go
   (as a cache's handler may free memory): that call is the program's too. */
static void *nested_trigger;
static char *nested_target;

static void on_ucm(ucm_event_type_t t, ucm_event_t *ev, void *arg)
{
	int b = bit(t);

	(void)arg;
	ucm_seen[b].n++;
	switch (t) {
	case UCM_EVENT_MUNMAP:
		ucm_seen[b].addr = ev->munmap.address;
		ucm_seen[b].size = ev->munmap.size;
		break;
	case UCM_EVENT_MREMAP:
		ucm_seen[b].addr = ev->mremap.address;
		ucm_seen[b].size = ev->mremap.old_size;
		break;
	case UCM_EVENT_SHMDT:
		ucm_seen[b].addr = (void *)ev->shmdt.shmaddr;
		ucm_seen[b].size = 0;
		break;
	case UCM_EVENT_VM_UNMAPPED:
		ucm_seen[b].addr = ev->vm_unmapped.address;
		ucm_seen[b].size = ev->vm_unmapped.size;
		break;
	case UCM_EVENT_MADVISE:
		ucm_seen[b].addr = ev->madvise.addr;
		ucm_seen[b].size = ev->madvise.length;
		ucm_seen[b].advice = ev->madvise.advice;
		break;
	default:
		break;
	}
	if (t == UCM_EVENT_MUNMAP && nested_target &&
	    ev->munmap.address == nested_trigger) {
		char *n = nested_target;
		nested_target = NULL;
		munmap(n, SZ);
	}
}

static void on_mn(const struct mn_vm_event *ev, void *ctx)
{
	(void)ctx;
	if (ev->via != MN_VM_VIA_HOOK || ev->kind > MN_VM_LOST)
		return;
	mn_seen[ev->kind].n++;
	mn_seen[ev->kind].addr = ev->address;
	mn_seen[ev->kind].len = ev->length;
	mn_seen[ev->kind].new_addr = ev->new_address;
}

static void forget(void)
{
	memset(ucm_seen, 0, sizeof(ucm_seen));
	memset(mn_seen, 0, sizeof(mn_seen));
}

/* memnotify's log: says when it chained again onto a later hooker. */
static int chained_again;

static void on_log(enum mn_log_level level, const char *msg, void *ctx)
{
	(void)level;
	(void)ctx;
	if (strstr(msg, "chained onto it again"))
		chained_again++;
}

static char *arena;     /* 16 * SZ, watched whole */
static mn_sub *arena_watch;

static char *fresh(int slot)
{
	char *p = mmap(arena + (size_t)slot * SZ, SZ, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);

	assert_ptr_equal(p, arena + (size_t)slot * SZ);
	memset(p, 0x5a, SZ);
	forget();
	return p;
}

static void assert_ucm(ucm_event_type_t t, void *addr, size_t size)
{
	int b = bit(t);

	if (!ucm_seen[b].n)
		fail_msg("libucm's handler did not see event 0x%x", t);
	assert_ptr_equal(ucm_seen[b].addr, addr);
	assert_int_equal(ucm_seen[b].size, size);
}

static void assert_mn(enum mn_vm_kind k, void *addr, size_t len)
{
	if (!mn_seen[k].n)
		fail_msg("memnotify's watch did not see a %s", mn_vm_event_name(k));
	assert_int_equal(mn_seen[k].addr, (uintptr_t)addr);
	assert_int_equal(mn_seen[k].len, len);
}

static int setup(void **state)
{
	set_handler_fn set_handler;
	int events = UCM_EVENT_MUNMAP | UCM_EVENT_MREMAP | UCM_EVENT_MADVISE |
		     UCM_EVENT_SHMDT | UCM_EVENT_VM_UNMAPPED;

	(void)state;
	mn_set_log(on_log, NULL);
	arena = mmap(NULL, 16 * SZ, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (arena == MAP_FAILED ||
	    mn_vm_watch(arena, 16 * SZ, MN_VM_NO_USERFAULTFD, on_mn, NULL,
			&arena_watch))
		return -1;
#ifdef MN_UCM_DLOPEN
	/* memnotify's jumps are in place: libucm now writes over them. */
	if (!dlopen("libucs.so.0", RTLD_NOW | RTLD_GLOBAL))
		return -1;
	set_handler = (set_handler_fn)dlsym(RTLD_DEFAULT, "ucm_set_event_handler");
#else
	set_handler = ucm_set_event_handler;
#endif
	if (!set_handler || set_handler(events, 1000, on_ucm, NULL) != UCS_OK)
		return -1;
#ifdef MN_UCM_DLOPEN
	/* The next watch finds libucm's jumps and chains onto them. */
	mn_sub *w;
	if (mn_vm_watch(arena, 4096, MN_VM_NO_USERFAULTFD, on_mn, NULL, &w))
		return -1;
	mn_unsubscribe(w);
#endif
	return 0;
}

static void test_munmap(void **state)
{
	char *p = fresh(0);

	(void)state;
	assert_int_equal(munmap(p, SZ), 0);
	assert_mn(MN_VM_UNMAP, p, SZ);
	assert_ucm(UCM_EVENT_MUNMAP, p, SZ);
	assert_ucm(UCM_EVENT_VM_UNMAPPED, p, SZ);
}

static void test_munmap_in_ucm_handler(void **state)
{
	char *p = fresh(6), *n = fresh(7);

	(void)state;
	forget();
	nested_trigger = p;
	nested_target = n;
	assert_int_equal(munmap(p, SZ), 0);
	assert_null(nested_target); /* the handler ran */
	assert_int_equal(msync(n, 4096, MS_ASYNC), -1); /* and unmapped n */
	assert_int_equal(mn_seen[MN_VM_UNMAP].n, 2);
	assert_mn(MN_VM_UNMAP, n, SZ);
	assert_int_equal(ucm_seen[bit(UCM_EVENT_MUNMAP)].n, 2);
	assert_ucm(UCM_EVENT_MUNMAP, n, SZ);
}

static void test_madvise(void **state)
{
	char *p = fresh(1);

	(void)state;
	assert_int_equal(madvise(p, SZ, MADV_DONTNEED), 0);
	assert_int_equal(p[0], 0); /* really discarded */
	assert_mn(MN_VM_DISCARD, p, SZ);
	assert_ucm(UCM_EVENT_MADVISE, p, SZ);
	assert_int_equal(ucm_seen[bit(UCM_EVENT_MADVISE)].advice, MADV_DONTNEED);
}

static void test_mprotect(void **state)
{
	char *p = fresh(2);

	(void)state;
	assert_int_equal(mprotect(p, SZ, PROT_READ), 0);
	assert_mn(MN_VM_PROTECT, p, SZ);
	/* libucm has no mprotect event. */
}

static void test_mremap_fixed(void **state)
{
	char *p = fresh(3), *to = arena + 8 * SZ;
	void *r;

	(void)state;
	p[1] = 1;
	r = mremap(p, SZ, SZ, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	assert_ptr_equal(r, to);
	assert_int_equal(to[1], 1); /* the pages went there */
	assert_int_equal(to[0], 0x5a);
	assert_int_equal(msync(p, 4096, MS_ASYNC), -1); /* and left here */
	assert_mn(MN_VM_MOVE, p, SZ);
	assert_int_equal(mn_seen[MN_VM_MOVE].new_addr, (uintptr_t)to);
	assert_ucm(UCM_EVENT_MREMAP, p, SZ);
}

static void test_mremap_maymove(void **state)
{
	char *p = fresh(4);
	char *r;

	(void)state;
	fresh(5); /* the next slot is mapped: growing in place fails */
	p[2] = 2;
	forget();
	r = mremap(p, SZ, 2 * SZ, MREMAP_MAYMOVE);
	assert_true(r != MAP_FAILED && r != p);
	assert_int_equal(r[2], 2);
	assert_mn(MN_VM_MOVE, p, SZ);
	assert_ucm(UCM_EVENT_MREMAP, p, SZ);
	assert_int_equal(munmap(r, 2 * SZ), 0);
}

static void test_shmdt(void **state)
{
	int id = shmget(IPC_PRIVATE, SZ, IPC_CREAT | 0600);
	mn_sub *w;
	char *p;

	(void)state;
	assert_true(id >= 0);
	p = shmat(id, NULL, 0);
	shmctl(id, IPC_RMID, NULL); /* goes with the last detach */
	assert_true(p != (void *)-1);
	assert_int_equal(mn_vm_watch(p, SZ, MN_VM_NO_USERFAULTFD, on_mn, NULL, &w), 0);
	forget();
	assert_int_equal(shmdt(p), 0);
	assert_mn(MN_VM_UNMAP, p, SZ);
	assert_ucm(UCM_EVENT_SHMDT, p, 0);
	mn_unsubscribe(w);
}

static void test_free_block(void **state)
{
	mn_sub *w;
	char *q;

	(void)state;
	/* A fixed threshold: the block gets its own mapping, which free()
	   unmaps (the default one grows past blocks freed before). */
	assert_int_equal(mallopt(M_MMAP_THRESHOLD, 128 * 1024), 1);
	q = malloc(SZ);
	assert_non_null(q);
	q[0] = 1;
	assert_int_equal(mn_vm_watch(q, SZ, MN_VM_NO_USERFAULTFD, on_mn, NULL, &w), 0);
	forget();
	free(q); /* glibc's own munmap, not the program's */
	/* The compiler takes free() to touch no memory but the block: what
	   the hooks wrote in the meantime must be read again. */
	__asm__ volatile("" ::: "memory");
	if (!mn_seen[MN_VM_UNMAP].n)
		fail_msg("memnotify's watch did not see free()'s munmap");
	assert_true(mn_seen[MN_VM_UNMAP].addr <= (uintptr_t)q &&
		    mn_seen[MN_VM_UNMAP].addr + mn_seen[MN_VM_UNMAP].len >=
			    (uintptr_t)q + SZ);
	if (!ucm_seen[bit(UCM_EVENT_MUNMAP)].n)
		fail_msg("libucm did not see free()'s munmap");
	mn_unsubscribe(w);
}

/* memnotify said in its log that it chained onto libucm's later jumps
   (and, linked first, had no cause to); linked after libucm, that it took
   its interposers back from libucm. */
static void test_log(void **state)
{
	struct mn_capability cap = { .sz = sizeof(cap) };

	(void)state;
	assert_int_equal(mn_capability(MN_CAP_VM_LIBC_PATCH, &cap), 0);
#ifdef MN_UCM_DLOPEN
	assert_true(chained_again >= 4); /* mmap, munmap, mremap, madvise */
#else
	assert_int_equal(chained_again, 0);
#endif
#ifdef MN_UCM_LINKED_FIRST
	if (!strstr(cap.detail, "taken back"))
		fail_msg("linked after libucm, and no interposer taken back: %s",
			 cap.detail);
#else
	assert_null(strstr(cap.detail, "taken back"));
#endif
}

int main(void)
{
	struct mn_capability cap = { .sz = sizeof(cap) };
	const char *mode = getenv("UCX_MEM_MMAP_HOOK_MODE");

	setenv("MEMNOTIFY_LOG", "info", 1); /* before memnotify's first log */

	if (mode && strcmp(mode, "bistro")) {
		printf("skipped: libucm in %s mode (tested: bistro, its default)\n", mode);
		return 77;
	}
	mn_capability(MN_CAP_VM_LIBC_PATCH, &cap);
	if (!cap.supported) {
		printf("skipped: %s\n", cap.detail);
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_munmap),
		cmocka_unit_test(test_munmap_in_ucm_handler),
		cmocka_unit_test(test_madvise),
		cmocka_unit_test(test_mprotect),
		cmocka_unit_test(test_mremap_fixed),
		cmocka_unit_test(test_mremap_maymove),
		cmocka_unit_test(test_shmdt),
		cmocka_unit_test(test_free_block),
		cmocka_unit_test(test_log),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
