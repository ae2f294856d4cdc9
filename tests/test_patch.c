/* SPDX-License-Identifier: MIT */
/*
 * The x86-64 code patcher of the entry redirection
 * (src/vmrange/arch/x86_64): the site decoder on the C library's real
 * prologues and on what it must refuse; live patching of small functions
 * while other threads call them; a thread stopped *between* the first
 * instructions of a function while it is patched (the split-jump hazard);
 * and every refusal of the kernel (seccomp) leaving the code as it was.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include "core/internal.h"
#include "memnotify.h"
#include "vmrange/arch/x86_64/patch.h"

/* --- the decoder ------------------------------------------------------------ */

static int site_of(const unsigned char *code, size_t n, struct mn__x86_site *s,
		   char *why)
{
	unsigned char buf[64];

	memset(buf, 0x90, sizeof(buf)); /* what follows: nops */
	memcpy(buf, code, n);
	return mn__x86_find_site(buf, sizeof(buf), 0x1000, s, why, 120);
}

static void test_sites_of_glibc_prologues(void **state)
{
	/* Debian 12's glibc 2.36, as disassembled on this machine. */
	static const unsigned char munmap_[] = { 0xb8, 0x0b, 0, 0, 0, 0x0f, 0x05 };
	static const unsigned char mmap_[] = { 0x41, 0x89, 0xca, 0x41, 0xf7, 0xc1,
					       0xff, 0x0f, 0x00, 0x00, 0x75, 0x14 };
	static const unsigned char mremap_[] = { 0x48, 0x83, 0xec, 0x58, 0x4c, 0x89,
						 0x44, 0x24, 0x40 };
	static const unsigned char sbrk_[] = { 0x41, 0x54, 0x4c, 0x8b, 0x25, 0xa7,
					       0x51, 0x0d, 0x00 };
	static const unsigned char cet_munmap[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0xb8,
						    0x0b, 0, 0, 0, 0x0f, 0x05 };
	static const unsigned char cet_mmap[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x41, 0x89,
						  0xca, 0x41, 0xf7, 0xc1, 0xff,
						  0x0f, 0x00, 0x00 };
	struct mn__x86_site s;
	char why[120];

	(void)state;
	assert_int_equal(site_of(munmap_, sizeof(munmap_), &s, why), 0);
	assert_int_equal(s.offset, 0);
	assert_int_equal(s.length, 5);
	assert_int_equal(s.stack_adjust, 0);
	/* mmap: the 3-byte register move into %r10 is kept; the jump
	   replaces the 7-byte test after it. */
	assert_int_equal(site_of(mmap_, sizeof(mmap_), &s, why), 0);
	assert_int_equal(s.offset, 3);
	assert_int_equal(s.length, 7);
	/* mremap: sub $0x58,%rsp is undone by the pad. */
	assert_int_equal(site_of(mremap_, sizeof(mremap_), &s, why), 0);
	assert_int_equal(s.offset, 4);
	assert_int_equal(s.length, 5);
	assert_int_equal(s.stack_adjust, 0x58);
	/* sbrk: push %r12, then a %rip-relative load. */
	assert_int_equal(site_of(sbrk_, sizeof(sbrk_), &s, why), 0);
	assert_int_equal(s.offset, 2);
	assert_int_equal(s.length, 7);
	assert_int_equal(s.stack_adjust, 8);
	/* A CET build: endbr64 stays, so indirect calls still land on it. */
	assert_int_equal(site_of(cet_munmap, sizeof(cet_munmap), &s, why), 0);
	assert_int_equal(s.offset, 4);
	assert_int_equal(site_of(cet_mmap, sizeof(cet_mmap), &s, why), 0);
	assert_int_equal(s.offset, 7);
}

static void test_sites_refused(void **state)
{
	/* pkey_mprotect: a branch comes before any 5-byte instruction. */
	static const unsigned char pkey[] = { 0x41, 0x89, 0xca, 0x83, 0xf9, 0xff,
					      0x74, 0x30, 0xb8, 0x49, 0x01, 0, 0 };
	static const unsigned char breakpoint[] = { 0xcc, 0x0b, 0, 0, 0 };
	static const unsigned char indirect[] = { 0xff, 0x25, 0x10, 0, 0, 0 };
	static const unsigned char frame[] = { 0x55, 0x48, 0x89, 0xe5, 0xb8, 1, 0, 0, 0 };
	static const unsigned char unknown[] = { 0x06, 0xb8, 1, 0, 0, 0 };
	struct mn__x86_site s;
	char why[120];

	(void)state;
	assert_int_equal(site_of(pkey, sizeof(pkey), &s, why), -ENOTSUP);
	assert_non_null(strstr(why, "+6"));
	assert_int_equal(site_of(breakpoint, sizeof(breakpoint), &s, why), -ENOTSUP);
	assert_non_null(strstr(why, "breakpoint"));
	assert_int_equal(site_of(indirect, sizeof(indirect), &s, why), -ENOTSUP);
	assert_non_null(strstr(why, "indirect"));
	/* mov %rsp,%rbp writes a register the function's caller keeps. */
	assert_int_equal(site_of(frame, sizeof(frame), &s, why), -ENOTSUP);
	assert_int_equal(site_of(unknown, sizeof(unknown), &s, why), -ENOTSUP);
	assert_non_null(strstr(why, "not known"));
}

static void test_chain_of_another_hooker(void **state)
{
	static const unsigned char jmp[] = { 0xe9, 0x00, 0x10, 0x00, 0x00 };
	struct mn__x86_site s;
	char why[120];

	(void)state;
	assert_int_equal(site_of(jmp, sizeof(jmp), &s, why), 0);
	assert_int_equal(s.offset, 0);
	assert_int_equal(s.chain, 0x1000 + 5 + 0x1000);
}

static void test_insn_lengths(void **state);

/* An entry whose mapping ends a few bytes in: the decoder is handed only
   what is mapped, so redirecting it is refused with a reason, and nothing
   reads the page beyond (which would be SIGSEGV). */
static void test_entry_at_mapping_end(void **state)
{
	long ps = sysconf(_SC_PAGESIZE);
	unsigned char *m = mmap(NULL, (size_t)ps * 2, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	(void)state;
	assert_true(m != MAP_FAILED);
	assert_int_equal(munmap(m + ps, (size_t)ps), 0);
	unsigned char *entry = m + ps - 3;
	memset(m, 0x55, (size_t)ps); /* push %rbp to the end: the decoder would
				      walk on, past the mapping, for a site */
	assert_int_equal(mprotect(m, (size_t)ps, PROT_READ | PROT_EXEC), 0);
	assert_int_equal(mn__x86_code_avail(entry, 64), 3);
	assert_int_equal(mn__x86_code_avail(m, 64), 64);
	assert_int_equal(mn__x86_code_avail(m + ps, 64), 0);

	struct mn__x86_redirect r = { .name = "edge", .entry = entry,
				      .target = (void *)test_insn_lengths };
	char why[120];
	int done = mn__x86_redirect_all(&r, 1, (uintptr_t)entry, why, sizeof(why));
	assert_int_equal(done, 0);
	assert_int_equal(r.err, -ENOTSUP);
	assert_false(r.done);
	assert_non_null(strstr(r.why, "first 3"));
	assert_int_equal(entry[0], 0x55); /* untouched */
	munmap(m, (size_t)ps);
}

static void test_insn_lengths(void **state)
{
	static const struct {
		unsigned char b[12];
		size_t len;
	} t[] = {
		{ { 0x0f, 0x05 }, 2 },                           /* syscall */
		{ { 0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff }, 6 },   /* cmp imm32,%rax */
		{ { 0x73, 0x01 }, 2 },                           /* jae rel8 */
		{ { 0xc3 }, 1 },                                 /* ret */
		{ { 0x48, 0x8b, 0x05, 1, 2, 3, 4 }, 7 },         /* mov rip+d32 */
		{ { 0x64, 0x89, 0x01 }, 3 },                     /* mov %eax,%fs:(%rcx) */
		{ { 0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8 }, 10 },  /* movabs */
		{ { 0x0f, 0x1f, 0x44, 0x00, 0x00 }, 5 },         /* nopl 0(%rax,%rax) */
		{ { 0x66, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0 }, 9 },/* nopw */
		{ { 0xf6, 0x05, 1, 2, 3, 4, 0x10 }, 7 },         /* testb imm,rip */
		{ { 0x0f, 0x84, 1, 2, 3, 4 }, 6 },               /* je rel32 */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_int_equal(mn__x86_insn_length(t[i].b, sizeof(t[i].b)), t[i].len);
	/* Cut short: unknown, never a guess. */
	assert_int_equal(mn__x86_insn_length(t[1].b, 3), 0);
}

/* --- live patching ----------------------------------------------------------- */

/*
 * Two small functions on a page of their own, each returning 1:
 *   f1 at +0x40: mov %ecx,%r10d; mov $1,%rax; ret
 *   f2 at +0x90: sub $8,%rsp; mov $1,%rax; add $8,%rsp; ret
 * f1's jump goes in one aligned 8-byte word; f2's straddles an 8-byte
 * boundary (one 16-byte compare-and-swap) and its pad undoes the sub.
 */
static unsigned char *code_page;
typedef long (*fn_t)(void);
static fn_t f1, f2;

static long returns_two(void)
{
	return 2;
}

static void make_code(void)
{
	static const unsigned char c1[] = { 0x41, 0x89, 0xca, 0x48, 0xc7, 0xc0,
					    0x01, 0, 0, 0, 0xc3 };
	static const unsigned char c2[] = { 0x48, 0x83, 0xec, 0x08, 0x48, 0xc7,
					    0xc0, 0x01, 0, 0, 0, 0x48, 0x83,
					    0xc4, 0x08, 0xc3 };

	code_page = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(code_page != MAP_FAILED);
	memset(code_page, 0xcc, 4096);
	memcpy(code_page + 0x40, c1, sizeof(c1));
	memcpy(code_page + 0x90, c2, sizeof(c2));
	assert_int_equal(mprotect(code_page, 4096, PROT_READ | PROT_EXEC), 0);
	f1 = (fn_t)(void *)(code_page + 0x40);
	f2 = (fn_t)(void *)(code_page + 0x90);
}

static void drop_code(void)
{
	munmap(code_page, 4096);
}

static int redirect_both(struct mn__x86_redirect r[2], char *detail)
{
	memset(r, 0, 2 * sizeof(r[0]));
	r[0].name = "f1";
	r[0].entry = (void *)f1;
	r[0].target = (void *)returns_two;
	r[1].name = "f2";
	r[1].entry = (void *)f2;
	r[1].target = (void *)returns_two;
	return mn__x86_redirect_all(r, 2, (uintptr_t)code_page, detail, 160);
}

static _Atomic int callers_stop;
static _Atomic long calls, twos;

static void *caller(void *arg)
{
	(void)arg;
	while (!atomic_load(&callers_stop)) {
		long a = f1(), b = f2();
		if (a != 1 && a != 2)
			abort();
		if (b != 1 && b != 2)
			abort();
		atomic_fetch_add(&twos, (a == 2) + (b == 2));
		atomic_fetch_add(&calls, 1);
	}
	return NULL;
}

static void test_patch_while_threads_call(void **state)
{
	struct mn__x86_redirect r[2];
	char detail[160];
	pthread_t t[3];

	(void)state;
	make_code();
	atomic_store(&callers_stop, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[i], NULL, caller, NULL), 0);
	while (atomic_load(&calls) < 10000)
		sched_yield();
	assert_int_equal(redirect_both(r, detail), 2);
	assert_true(r[0].done && r[1].done);
	assert_int_equal(r[0].width, 8);
	assert_int_equal(r[1].width, 16);
	long before = atomic_load(&twos);
	while (atomic_load(&twos) < before + 10000)
		sched_yield();
	atomic_store(&callers_stop, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(f1(), 2);
	assert_int_equal(f2(), 2);
	/* The page's protection is what it was. */
	uintptr_t ms, me;
	int prot;
	assert_int_equal(mn__maps_lookup((uintptr_t)code_page, &ms, &me, &prot), 0);
	assert_int_equal(prot, PROT_READ | PROT_EXEC);
	assert_int_equal(mn__x86_unredirect_all(r, 2), 0);
	assert_int_equal(f1(), 1);
	assert_int_equal(f2(), 1);
	drop_code();
}

/*
 * A thread stopped after the first instruction of f1 and f2 (single-step
 * with the trap flag; its SIGTRAP handler parks it exactly there) while
 * both are patched, then let go: it resumes at the site, takes the jump,
 * and returns 2 with its stack intact.  With a jump written over the
 * first instruction's boundary it would run the middle of the jump.
 */
static _Atomic int parked, release_parked;
static uintptr_t park_at;

static void on_trap(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	uintptr_t ip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];

	(void)sig;
	(void)si;
	if (ip != park_at)
		return; /* keep stepping */
	uc->uc_mcontext.gregs[REG_EFL] &= ~0x100LL; /* trap flag off */
	atomic_store(&parked, 1);
	while (!atomic_load(&release_parked))
		sched_yield();
}

__attribute__((noinline)) static long call_stepping(fn_t f)
{
	long r;

	/* Set TF, call; the handler clears it at park_at.  The call's
	   return address must not land in this function's red zone. */
	__asm__ volatile("subq $128, %%rsp\n\t"
			 "pushfq\n\t"
			 "orq $0x100, (%%rsp)\n\t"
			 "popfq\n\t"
			 "call *%1\n\t"
			 "addq $128, %%rsp\n\t"
			 : "=a"(r)
			 : "r"(f)
			 : "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11",
			   "memory", "cc");
	return r;
}

static _Atomic long stepped_result;

static void *stepper(void *arg)
{
	atomic_store(&stepped_result, call_stepping((fn_t)arg));
	return NULL;
}

static void park_and_patch(fn_t f, size_t boundary)
{
	struct mn__x86_redirect r[2];
	char detail[160];
	pthread_t t;

	atomic_store(&parked, 0);
	atomic_store(&release_parked, 0);
	atomic_store(&stepped_result, 0);
	park_at = (uintptr_t)f + boundary;
	assert_int_equal(pthread_create(&t, NULL, stepper, (void *)f), 0);
	while (!atomic_load(&parked))
		sched_yield();
	assert_int_equal(redirect_both(r, detail), 2);
	atomic_store(&release_parked, 1);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&stepped_result), 2);
	assert_int_equal(mn__x86_unredirect_all(r, 2), 0);
}

static void test_thread_between_instructions(void **state)
{
	struct sigaction sa = { .sa_sigaction = on_trap, .sa_flags = SA_SIGINFO };

	(void)state;
#if defined(__SANITIZE_THREAD__)
	skip(); /* TSan's signal handling does not single-step faithfully */
#endif
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGTRAP, &sa, NULL), 0);
	make_code();
	park_and_patch(f1, 3); /* after mov %ecx,%r10d */
	park_and_patch(f2, 4); /* after sub $8,%rsp: the pad gives it back */
	drop_code();
	signal(SIGTRAP, SIG_DFL);
}

/* --- refusals ---------------------------------------------------------------- */

/* A seccomp filter that fails mprotect(..., @prot) with EPERM — for every
   address, or only for the page at @addr when it is not 0. */
static void refuse_mprotect(int prot, uintptr_t addr)
{
	struct sock_filter any[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mprotect, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, args[2])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)prot, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_filter page[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mprotect, 0, 7),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, args[2])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)prot, 0, 5),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, args[0])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)addr, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, args[0]) + 4),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(addr >> 32), 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = addr ? sizeof(page) / sizeof(page[0]) : sizeof(any) / sizeof(any[0]),
		.filter = addr ? page : any,
	};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		_exit(77);
}

/* In a child: the refusal leaves f1/f2 as they were and says why. */
static int refused_child(int prot, bool page_only, const char *expect)
{
	struct mn__x86_redirect r[2];
	char detail[160];
	int n;

	make_code();
	refuse_mprotect(prot, page_only ? (uintptr_t)code_page : 0);
	n = redirect_both(r, detail);
	if (n >= 0 || !strstr(detail, expect) || f1() != 1 || f2() != 1) {
		fprintf(stderr, "redirect: %d (%s)\n", n, detail);
		return 1;
	}
	return 0;
}

static void expect_child_ok(int prot, bool page_only, const char *expect)
{
	int st;
	pid_t pid = fork();

	if (pid == 0)
		_exit(refused_child(prot, page_only, expect));
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
		skip();
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_pads_not_executable(void **state)
{
	(void)state;
	expect_child_ok(PROT_READ | PROT_EXEC, false, "landing pads executable");
}

static void test_text_not_writable(void **state)
{
	(void)state;
	expect_child_ok(PROT_READ | PROT_WRITE | PROT_EXEC, false,
			"writable was refused");
}

static void test_restore_refused(void **state)
{
	(void)state;
	/* The pads may become read+execute (another address); restoring
	   the code page may not: the jump is taken back. */
	expect_child_ok(PROT_READ | PROT_EXEC, true, "restoring");
}

static void on_vm_event(const struct mn_vm_event *ev, void *ctx)
{
	(void)ev;
	(void)ctx;
}

/* The library under the same refusal: nothing redirected, the reason in
   the capability, and munmap keeps working. */
static void test_library_refused(void **state)
{
	int st;
	pid_t pid;

	(void)state;
#if defined(__SANITIZE_THREAD__)
	skip(); /* nothing is redirected under TSan: nothing to refuse */
#endif
	pid = fork();
	if (pid == 0) {
		struct mn_capability cap = { .sz = sizeof(cap) };
		mn_sub *sub;

		refuse_mprotect(PROT_READ | PROT_EXEC, 0);
		if (mn_vm_listen(0, on_vm_event, NULL, &sub))
			_exit(2);
		mn_capability(MN_CAP_VM_LIBC_PATCH, &cap);
		if (cap.supported || !strstr(cap.detail, "refused"))
			_exit(3);
		mn_unsubscribe(sub);
		for (int i = 0; i < 1000; i++)
			free(malloc(1 << 20)); /* glibc's own munmap */
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
		skip();
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sites_of_glibc_prologues),
		cmocka_unit_test(test_sites_refused),
		cmocka_unit_test(test_chain_of_another_hooker),
		cmocka_unit_test(test_insn_lengths),
		cmocka_unit_test(test_entry_at_mapping_end),
		cmocka_unit_test(test_patch_while_threads_call),
		cmocka_unit_test(test_thread_between_instructions),
		cmocka_unit_test(test_pads_not_executable),
		cmocka_unit_test(test_text_not_writable),
		cmocka_unit_test(test_restore_refused),
		cmocka_unit_test(test_library_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
