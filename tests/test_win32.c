/* SPDX-License-Identifier: MIT */
/*
 * Conformance of the Windows face (memnotify/win32.h) to Microsoft's
 * documentation of each API (docs/windows-mapping.md lists them): one group
 * per API, each assertion citing the documented behaviour it checks.
 *   000 RegisterBadMemoryNotification      -> test_badmem_*
 *   001 IHostMemoryManager::Register...    -> test_clr_*, test_system_*
 *   002 KeRegisterNmiCallback              -> test_nmi_*
 *   003 AddSecureMemoryCacheCallback       -> test_secure_*
 *   CreateMemoryResourceNotification (README) -> test_resource_*, test_system_*
 *   issue 12 (Windows' own answers, C++/IHostMalloc, exported names):
 *     QueryWorkingSetEx                    -> test_ws_windows_answers,
 *                                             test_badmem_working_set_bits
 *     QueryMemoryResourceNotification(NULL) -> test_resource_state_and_handles
 *     VirtualQuery / VirtualAlloc          -> test_clr_virtual_windows_answers
 *     secured ranges, once per change      -> test_secure_once_per_change
 *     CreateMalloc / IHostMalloc           -> test_clr_create_malloc
 *     standard names                       -> test_standard_names
 *     generic names only as Mn...          -> test_exports_generic_names_prefixed
 * Real mechanisms throughout: real faults, a real SIGBUS siginfo, real
 * munmap/mprotect, a real memory cgroup with a real hog (root).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "memnotify/win32.h"
#include "helpers.h"

#define PG 4096ul

static pid_t gettid_(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static uint64_t now_ms(void)
{
	return mn_test_now_usec() / 1000;
}

/* ---- 002 KeRegisterNmiCallback ------------------------------------------ */

struct nmi_log {
	_Atomic int n;
	int who[8];
	BOOLEAN handled[8];
};
static struct nmi_log nlog;
static char *nmi_page;

/* Signal context: async-signal-safe only. */
static BOOLEAN nmi_record(PVOID ctx, BOOLEAN handled, BOOLEAN ret)
{
	int i = atomic_fetch_add(&nlog.n, 1);

	if (i < 8) {
		nlog.who[i] = (int)(intptr_t)ctx;
		nlog.handled[i] = handled;
	}
	return ret;
}
static BOOLEAN nmi_false(PVOID ctx, BOOLEAN handled)
{
	return nmi_record(ctx, handled, FALSE);
}
static BOOLEAN nmi_true(PVOID ctx, BOOLEAN handled)
{
	return nmi_record(ctx, handled, TRUE);
}
/* Removes the cause (makes the page writable) and claims the fault. */
static BOOLEAN nmi_fix(PVOID ctx, BOOLEAN handled)
{
	if (nmi_page)
		mprotect(nmi_page, PG, PROT_READ | PROT_WRITE);
	return nmi_record(ctx, handled, TRUE);
}

static void test_nmi_reverse_order_and_handled(void **state)
{
	PVOID a, b, c;

	(void)state;
	memset(&nlog, 0, sizeof(nlog));
	nmi_page = mmap(NULL, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(nmi_page != MAP_FAILED);
	a = KeRegisterNmiCallback(nmi_fix, (PVOID)1);
	b = KeRegisterNmiCallback(nmi_true, (PVOID)2);
	c = KeRegisterNmiCallback(nmi_false, (PVOID)3);
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);

	/* A real fault: the write hits a PROT_NONE page (SIGSEGV). */
	*(volatile char *)nmi_page = 7;
	assert_int_equal(nmi_page[0], 7); /* the fault was handled and retried */

	assert_int_equal(atomic_load(&nlog.n), 3);
	/* 002: "the system calls each registered callback in reverse order
	   from the order in which they were registered." */
	assert_int_equal(nlog.who[0], 3);
	assert_int_equal(nlog.who[1], 2);
	assert_int_equal(nlog.who[2], 1);
	/* 002: "For the first callback, the system passes FALSE as the
	   Handled parameter." */
	assert_int_equal(nlog.handled[0], FALSE);
	/* 002: "if any previous callback returned TRUE, the system passes
	   TRUE ... otherwise it passes FALSE." (3 returned FALSE, 2 TRUE) */
	assert_int_equal(nlog.handled[1], FALSE);
	assert_int_equal(nlog.handled[2], TRUE);

	/* The process-wide NMI signal runs the same chain. */
	memset(&nlog, 0, sizeof(nlog));
	assert_int_equal(kill(getpid(), mn_nmi_signal()), 0);
	for (uint64_t end = now_ms() + 5000; atomic_load(&nlog.n) < 3 && now_ms() < end;)
		usleep(1000);
	assert_int_equal(atomic_load(&nlog.n), 3);
	assert_int_equal(nlog.who[0], 3);
	assert_int_equal(nlog.handled[2], TRUE);

	/* README: KeDeregisterNmiCallback "returns STATUS_SUCCESS". */
	assert_int_equal(KeDeregisterNmiCallback(c), STATUS_SUCCESS);
	assert_int_equal(KeDeregisterNmiCallback(b), STATUS_SUCCESS);
	assert_int_equal(KeDeregisterNmiCallback(a), STATUS_SUCCESS);
	munmap(nmi_page, PG);
	nmi_page = NULL;
}

/* 002: "Otherwise, the system calls the HAL's default handler for the
   interrupt, which normally causes the system to bug check" — in a
   process: death by the signal. */
static void test_nmi_unhandled_ends_child(void **state)
{
	int st;
	pid_t pid;

	(void)state;
	/* A fault nobody handles. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *p = mmap(NULL, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		/* cmocka catches SIGSEGV in the test process; the child has
		   no handler of its own, as a plain program. */
		signal(SIGSEGV, SIG_DFL);
		if (!KeRegisterNmiCallback(nmi_false, (PVOID)9))
			_exit(10);
		*(volatile char *)p = 1;
		_exit(11); /* not reached */
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSEGV);

	/* The NMI signal from another process: unhandled, the child dies by
	   it; handled, it goes on. */
	for (int handle = 0; handle < 2; handle++) {
		int ready[2];
		char c;

		assert_int_equal(pipe(ready), 0);
		memset(&nlog, 0, sizeof(nlog));
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			if (!KeRegisterNmiCallback(handle ? nmi_true : nmi_false, (PVOID)9))
				_exit(10);
			if (write(ready[1], "r", 1) != 1)
				_exit(12);
			for (int i = 0; i < 5000 && atomic_load(&nlog.n) == 0; i++)
				usleep(1000);
			_exit(atomic_load(&nlog.n) ? 0 : 13);
		}
		close(ready[1]);
		assert_int_equal(read(ready[0], &c, 1), 1);
		close(ready[0]);
		assert_int_equal(kill(pid, mn_nmi_signal()), 0);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (handle) {
			assert_true(WIFEXITED(st));
			assert_int_equal(WEXITSTATUS(st), 0);
		} else {
			assert_true(WIFSIGNALED(st));
			assert_int_equal(WTERMSIG(st), mn_nmi_signal());
		}
	}
}

static void test_nmi_bad_input(void **state)
{
	int not_a_handle;
	PVOID h;

	(void)state;
	/* README: KeDeregisterNmiCallback returns "STATUS_INVALID_HANDLE". */
	assert_int_equal(KeDeregisterNmiCallback(NULL), STATUS_INVALID_HANDLE);
	assert_int_equal(KeDeregisterNmiCallback(&not_a_handle), STATUS_INVALID_HANDLE);
	h = KeRegisterNmiCallback(nmi_false, NULL);
	assert_non_null(h);
	assert_int_equal(KeDeregisterNmiCallback(h), STATUS_SUCCESS);
	assert_int_equal(KeDeregisterNmiCallback(h), STATUS_INVALID_HANDLE);
	/* 002: "The routine returns NULL if it is unable to register the
	   callback." */
	SetLastError(0);
	assert_null(KeRegisterNmiCallback(NULL, NULL));
	assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
	setenv("MEMNOTIFY_NMI_SIGNAL", "SIGSEGV", 1); /* not allowed */
	assert_null(KeRegisterNmiCallback(nmi_false, NULL));
	setenv("MEMNOTIFY_NMI_SIGNAL", "RTMAX-2", 1);
	assert_int_equal(mn_nmi_signal(), SIGRTMAX - 2);
	setenv("MEMNOTIFY_NMI_SIGNAL", "SIGUSR2", 1);
	assert_int_equal(mn_nmi_signal(), SIGUSR2);
	setenv("MEMNOTIFY_NMI_SIGNAL", "RTMIN+x", 1);
	assert_int_equal(mn_nmi_signal(), -EINVAL);
	unsetenv("MEMNOTIFY_NMI_SIGNAL");
	assert_int_equal(mn_nmi_signal(), SIGRTMAX - MN_NMI_SIGNAL_DEFAULT_OFFSET);
}

/* ---- 000 RegisterBadMemoryNotification ---------------------------------- */

static struct mn_test_rec bad_rec = { PTHREAD_MUTEX_INITIALIZER,
				      PTHREAD_COND_INITIALIZER, 0 };
static pid_t bad_tid;

/* README: "BadMemoryCallbackRoutine is VOID CALLBACK
   BadMemoryCallbackRoutine(VOID)". */
static VOID CALLBACK on_bad_memory(VOID)
{
	mn_test_rec_lock(&bad_rec);
	bad_tid = gettid_();
	mn_test_rec_done(&bad_rec);
}

static PSAPI_WORKING_SET_EX_BLOCK ws_of(const void *addr)
{
	PSAPI_WORKING_SET_EX_INFORMATION e = { .VirtualAddress = (PVOID)addr };

	assert_true(QueryWorkingSetEx(GetCurrentProcess(), &e, sizeof(e)));
	return e.VirtualAttributes;
}

static void test_badmem_callback_and_bad_bit(void **state)
{
	char *p = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	PVOID h;
	int before;

	(void)state;
	assert_true(p != MAP_FAILED);
	memset(p, 1, 2 * PG);
	/* 000: "Returns: Registration handle that represents the callback
	   notification." */
	h = RegisterBadMemoryNotification(on_bad_memory);
	assert_non_null(h);
	before = mn_test_rec_count(&bad_rec);

	/* 000: "called when one or more bad memory pages are detected": a
	   real SIGBUS with BUS_MCEERR_AO for the first page. */
	assert_int_equal(mn_badmem_inject(0, p, 12, 0), 0);
	mn_test_rec_wait(&bad_rec, before + 1, 5000);
	mn_test_rec_lock(&bad_rec);
	int calls = bad_rec.n;
	pid_t tid = bad_tid;
	pthread_mutex_unlock(&bad_rec.lock);
	assert_true(calls > before);
	/* Thread context: not the thread the signal interrupted. */
	assert_true(tid != gettid_());

	/* README: "an application finds the bad pages with
	   QueryWorkingSetEx, whose PSAPI_WORKING_SET_EX_BLOCK has a Bad
	   bit". */
	PSAPI_WORKING_SET_EX_BLOCK bad = ws_of(p), good = ws_of(p + PG);
	assert_int_equal(bad.Valid, 1);
	assert_int_equal(bad.Bad, 1);
	assert_true(bad.Flags & MN_WORKING_SET_EX_BAD);
	assert_int_equal(good.Valid, 1);
	assert_int_equal(good.Bad, 0);
	assert_int_equal(good.Win32Protection, PAGE_READWRITE);

	/* README: "UnregisterBadMemoryNotification(PVOID) returns nonzero on
	   success." */
	assert_true(UnregisterBadMemoryNotification(h));
	SetLastError(0);
	assert_false(UnregisterBadMemoryNotification(h));
	assert_int_equal(GetLastError(), ERROR_INVALID_HANDLE);
	assert_null(RegisterBadMemoryNotification(NULL));
	assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
	munmap(p, 2 * PG);
}

static void test_badmem_working_set_bits(void **state)
{
	char *p = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	PSAPI_WORKING_SET_EX_INFORMATION e[2];
	ULONG caps = 0xdead;
	struct mn_capability cap = { .sz = sizeof(cap) };

	(void)state;
	assert_true(p != MAP_FAILED);
	p[0] = 1;                           /* resident */
	assert_int_equal(ws_of(p).Valid, 1);
	assert_int_equal(ws_of(p + PG).Valid, 0); /* never touched */
	assert_int_equal(ws_of(p + PG).Bad, 0);
	p[2 * PG] = 1;
	assert_int_equal(mprotect(p + 2 * PG, PG, PROT_READ), 0);
	assert_int_equal(ws_of(p + 2 * PG).Win32Protection, PAGE_READONLY);
	/* The system call itself: AddressSanitizer makes mlock() a no-op. */
	if (syscall(SYS_mlock, p + 3 * PG, PG) == 0) {
		assert_int_equal(ws_of(p + 3 * PG).Locked, 1);
		assert_int_equal(ws_of(p + 3 * PG).Valid, 1);
		assert_int_equal(ws_of(p).Locked, 0);
		syscall(SYS_munlock, p + 3 * PG, PG);
	}
	/* Whole arrays, in bytes. */
	e[0].VirtualAddress = p;
	e[1].VirtualAddress = p + PG;
	assert_true(QueryWorkingSetEx(GetCurrentProcess(), e, sizeof(e)));
	assert_int_equal(e[0].VirtualAttributes.Valid, 1);
	assert_int_equal(e[1].VirtualAttributes.Valid, 0);
	/* Bad input. */
	SetLastError(0);
	assert_false(QueryWorkingSetEx((HANDLE)(intptr_t)1234, e, sizeof(e)));
	assert_int_equal(GetLastError(), ERROR_INVALID_HANDLE);
	/* Windows (Wine's dlls/psapi/tests/psapi_main.c, test_QueryWorkingSetEx,
	   run on Windows): cb below one entry fails with ERROR_BAD_LENGTH. */
	assert_false(QueryWorkingSetEx(GetCurrentProcess(), e, sizeof(e[0]) - 1));
	assert_int_equal(GetLastError(), ERROR_BAD_LENGTH);
	assert_false(QueryWorkingSetEx(GetCurrentProcess(), e, 0));
	assert_int_equal(GetLastError(), ERROR_BAD_LENGTH);
	assert_false(QueryWorkingSetEx(GetCurrentProcess(), NULL, sizeof(e)));
	/* The layout is Windows' own: 64 bits, Bad at bit 31. */
	assert_int_equal(sizeof(PSAPI_WORKING_SET_EX_BLOCK), 8);
	assert_int_equal(sizeof(PSAPI_WORKING_SET_EX_INFORMATION), 16);
	PSAPI_WORKING_SET_EX_BLOCK b = { .Flags = 0 };
	b.Bad = 1;
	assert_true(b.Flags == (1ull << 31));
	b.Flags = 0;
	b.Win32Protection = 0x7ff;
	assert_true(b.Flags == (0x7ffull << 4));

	/* README: GetMemoryErrorHandlingCapabilities "reports
	   MEHC_PATROL_SCRUBBER_PRESENT (0x1)". */
	assert_true(GetMemoryErrorHandlingCapabilities(&caps));
	mn_capability(MN_CAP_PATROL_SCRUBBER, &cap);
	assert_int_equal(caps, cap.supported ? MEHC_PATROL_SCRUBBER_PRESENT : 0);
	assert_false(GetMemoryErrorHandlingCapabilities(NULL));
	munmap(p, 4 * PG);
}

/* Windows' answers, as Wine's conformance test records them when it runs
   on Windows (dlls/psapi/tests/psapi_main.c, test_QueryWorkingSetEx). */
static void test_ws_windows_answers(void **state)
{
	char *p = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	PSAPI_WORKING_SET_EX_BLOCK b;

	(void)state;
	assert_true(p != MAP_FAILED);
	p[0] = 1;
	assert_int_equal(ws_of(p).Valid, 1);
	/* A PAGE_NOACCESS page is not in the working set: Valid 0 and
	   protection 0, though Linux keeps it resident. */
	assert_int_equal(mprotect(p, PG, PROT_NONE), 0);
	b = ws_of(p);
	assert_int_equal(b.Valid, 0);
	assert_int_equal((b.Flags >> 4) & 0x7ff, 0);
	/* Windows: back to PAGE_READWRITE the page stays Valid 0 until it is
	   touched.  Not mirrored (docs/windows-mapping.md, "Remaining
	   differences"): Linux keeps the page table entry and does not show
	   a process whether it was touched since; memnotify reports Valid 1. */
	assert_int_equal(mprotect(p, PG, PROT_READ | PROT_WRITE), 0);
	b = ws_of(p);
	assert_int_equal(b.Valid, 1);
	assert_int_equal(b.Win32Protection, PAGE_READWRITE);
	/* A private anonymous page is not shared. */
	assert_int_equal(b.Shared, 0);
	assert_int_equal(b.ShareCount, 0);

	/* Image pages (the library's code, running now) are Shared = 1 with
	   ShareCount > 0, as Windows reports for its DLLs' code. */
	b = ws_of((const void *)(uintptr_t)&QueryWorkingSetEx);
	assert_int_equal(b.Valid, 1);
	assert_int_equal(b.Shared, 1);
	assert_true(b.ShareCount > 0);
	assert_true(b.Win32Protection == PAGE_EXECUTE_READ ||
		    b.Win32Protection == PAGE_EXECUTE);
	/* A MAP_SHARED page, resident: shared, counted. */
	char *s = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(s != MAP_FAILED);
	s[0] = 1;
	b = ws_of(s);
	assert_int_equal(b.Valid, 1);
	assert_int_equal(b.Shared, 1);
	assert_true(b.ShareCount > 0);
	munmap(s, PG);
	munmap(p, 2 * PG);
}

/* AnonHugePages of the mapping holding @addr, in kB (/proc/self/smaps): the
   kernel's own account, the oracle for LargePage. */
static long anon_huge_kb(const void *addr)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	bool in = false;
	long kb = -1;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perms[5];
		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3) {
			if (in)
				break;
			in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
		} else if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1) {
			break;
		}
	}
	fclose(f);
	return kb;
}

static void test_badmem_large_page(void **state)
{
	size_t huge = 2u << 20;
	char *raw = mmap(NULL, 3 * huge, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *p;

	(void)state;
	assert_true(raw != MAP_FAILED);
	p = (char *)(((uintptr_t)raw + huge - 1) & ~(uintptr_t)(huge - 1));
	if (madvise(p, huge, MADV_HUGEPAGE) != 0) {
		munmap(raw, 3 * huge);
		print_message("skipped: no transparent huge pages (%s)\n", strerror(errno));
		skip();
	}
	memset(p, 1, huge);
	long kb = anon_huge_kb(p);
	if (kb < 2048) {
		munmap(raw, 3 * huge);
		print_message("skipped: the kernel gave no huge page (AnonHugePages %ld kB)\n", kb);
		skip();
	}
	assert_int_equal(ws_of(p + 4096).Valid, 1);
	assert_int_equal(ws_of(p + 4096).LargePage, 1);
	raw[0] = 1; /* before the aligned part: a small page */
	if (raw < p)
		assert_int_equal(ws_of(raw).LargePage, 0);
	munmap(raw, 3 * huge);
}

/* ---- 003 AddSecureMemoryCacheCallback ------------------------------------ */

struct sec_call {
	uintptr_t addr;
	size_t len;
};
static struct sec_call sec_calls[32];
static _Atomic int sec_n;
static _Atomic int sec_drop; /* return TRUE (dropped) */

/* README: "BOOLEAN CALLBACK SecureMemoryCacheCallback(PVOID Addr, SIZE_T
   Range)".  Synchronous context: async-signal-safe. */
static BOOLEAN CALLBACK on_secure(PVOID addr, SIZE_T range)
{
	int i = atomic_fetch_add(&sec_n, 1);

	if (i < 32) {
		sec_calls[i].addr = (uintptr_t)addr;
		sec_calls[i].len = range;
	}
	return atomic_load(&sec_drop) ? TRUE : FALSE;
}

static void sec_reset(void)
{
	memset(sec_calls, 0, sizeof(sec_calls));
	atomic_store(&sec_n, 0);
	atomic_store(&sec_drop, 0);
}

static bool sec_saw(const void *addr, size_t len)
{
	for (int i = 0; i < atomic_load(&sec_n) && i < 32; i++)
		if (sec_calls[i].addr == (uintptr_t)addr && sec_calls[i].len == len)
			return true;
	return false;
}

static void test_secure_free_and_protect(void **state)
{
	char *p = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *other = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	HANDLE h;

	(void)state;
	assert_true(p != MAP_FAILED && other != MAP_FAILED);
	sec_reset();
	/* 003: "If the function succeeds, it registers the callback function
	   and returns TRUE." */
	assert_true(AddSecureMemoryCacheCallback(on_secure));
	h = MmSecureVirtualMemory(p, 8 * PG, PAGE_READWRITE);
	assert_non_null(h);

	/* README: "called after any attempt to free the range or change its
	   protection" — with the part of the range concerned. */
	assert_int_equal(munmap(p + 2 * PG, PG), 0);
	assert_true(sec_saw(p + 2 * PG, PG));
	assert_int_equal(mprotect(p + 4 * PG, PG, PROT_READ), 0);
	assert_true(sec_saw(p + 4 * PG, PG));
	assert_int_equal(madvise(p + 6 * PG, 2 * PG, MADV_DONTNEED), 0);
	assert_true(sec_saw(p + 6 * PG, 2 * PG));

	/* Memory that is not secured gives no callback. */
	int n = atomic_load(&sec_n);
	assert_int_equal(munmap(other, 2 * PG), 0);
	assert_int_equal(atomic_load(&sec_n), n);

	/* README: "if the application had secured any part of the range it
	   drops its cached mapping, unsecures it and returns TRUE": that
	   part gives no more callbacks. */
	atomic_store(&sec_drop, 1);
	assert_int_equal(mprotect(p, PG, PROT_READ), 0);
	assert_true(sec_saw(p, PG));
	n = atomic_load(&sec_n);
	assert_int_equal(mprotect(p, PG, PROT_NONE), 0);
	assert_int_equal(atomic_load(&sec_n), n);
	atomic_store(&sec_drop, 0);

	/* After MmUnsecureVirtualMemory nothing more. */
	MmUnsecureVirtualMemory(h);
	n = atomic_load(&sec_n);
	assert_int_equal(munmap(p, 8 * PG), 0);
	assert_int_equal(atomic_load(&sec_n), n);
	assert_true(RemoveSecureMemoryCacheCallback(on_secure));
}

static _Atomic int sec2_n;
static BOOLEAN CALLBACK on_secure2(PVOID addr, SIZE_T range)
{
	(void)addr;
	(void)range;
	atomic_fetch_add(&sec2_n, 1);
	return FALSE;
}

/* One change over several secured ranges: each callback once, with the
   call's range — as Windows, whose kernelbase VirtualFree/VirtualProtect,
   refused for a secured range, calls RtlFlushSecureMemoryCache once with
   the call's address and size (each registered callback once) and then
   retries (docs/windows-mapping.md, "Secured ranges"). */
static void test_secure_once_per_change(void **state)
{
	char *p = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	HANDLE a, b;

	(void)state;
	assert_true(p != MAP_FAILED);
	sec_reset();
	atomic_store(&sec2_n, 0);
	assert_true(AddSecureMemoryCacheCallback(on_secure));
	assert_true(AddSecureMemoryCacheCallback(on_secure2));
	a = MmSecureVirtualMemory(p, 2 * PG, PAGE_READWRITE);
	b = MmSecureVirtualMemory(p + 4 * PG, 2 * PG, PAGE_READWRITE);
	assert_non_null(a);
	assert_non_null(b);
	/* One mprotect over both ranges. */
	assert_int_equal(mprotect(p, 8 * PG, PROT_READ), 0);
	assert_int_equal(atomic_load(&sec_n), 1);
	assert_int_equal(atomic_load(&sec2_n), 1);
	assert_true(sec_saw(p, 8 * PG));
	/* A change inside one range: once, with its range. */
	assert_int_equal(mprotect(p + 4 * PG, PG, PROT_READ | PROT_WRITE), 0);
	assert_int_equal(atomic_load(&sec_n), 2);
	assert_true(sec_saw(p + 4 * PG, PG));
	assert_int_equal(atomic_load(&sec2_n), 2);
	/* TRUE for the change unsecures every part it touched (for every
	   callback: the part is no longer secured). */
	atomic_store(&sec_drop, 1);
	assert_int_equal(madvise(p, 8 * PG, MADV_DONTNEED), 0);
	assert_int_equal(atomic_load(&sec_n), 3);
	atomic_store(&sec_drop, 0);
	int n2 = atomic_load(&sec2_n);
	assert_true(n2 <= 3);
	assert_int_equal(mprotect(p + 5 * PG, PG, PROT_NONE), 0);
	assert_int_equal(mprotect(p, PG, PROT_NONE), 0);
	assert_int_equal(atomic_load(&sec_n), 3);
	assert_int_equal(atomic_load(&sec2_n), n2);
	MmUnsecureVirtualMemory(a);
	MmUnsecureVirtualMemory(b);
	assert_true(RemoveSecureMemoryCacheCallback(on_secure));
	assert_true(RemoveSecureMemoryCacheCallback(on_secure2));
	munmap(p, 8 * PG);
}

/* The listener that tells one change from its parts lives only while some
   range is secured: with none left, nothing of the face keeps
   mn_shutdown() busy.  Runs first, when no other subscription exists. */
static void test_secure_listener_ends(void **state)
{
	char *p = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	HANDLE h;

	(void)state;
	assert_true(p != MAP_FAILED);
	sec_reset();
	assert_true(AddSecureMemoryCacheCallback(on_secure));
	h = MmSecureVirtualMemory(p, 2 * PG, PAGE_READWRITE);
	assert_non_null(h);
	assert_int_equal(mn_shutdown(), -EBUSY);
	assert_int_equal(mprotect(p, 2 * PG, PROT_READ), 0);
	assert_int_equal(atomic_load(&sec_n), 1);
	MmUnsecureVirtualMemory(h);
	assert_true(RemoveSecureMemoryCacheCallback(on_secure));
	assert_int_equal(mn_shutdown(), 0);
	/* Usable again: a new range, a new listener. */
	assert_true(AddSecureMemoryCacheCallback(on_secure));
	h = MmSecureVirtualMemory(p, 2 * PG, PAGE_READONLY);
	assert_non_null(h);
	assert_int_equal(mprotect(p, 2 * PG, PROT_READ | PROT_WRITE), 0);
	assert_int_equal(atomic_load(&sec_n), 2);
	assert_true(sec_saw(p, 2 * PG));
	MmUnsecureVirtualMemory(h);
	assert_true(RemoveSecureMemoryCacheCallback(on_secure));
	munmap(p, 2 * PG);
}

static void test_secure_virtualfree_and_order(void **state)
{
	IHostMemoryManager *m;
	void *mem;
	HANDLE h;

	(void)state;
	sec_reset();
	assert_int_equal(MnGetHostMemoryManager(&m), S_OK);
	assert_int_equal(m->lpVtbl->VirtualAlloc(m, NULL, 4 * PG, MEM_RESERVE | MEM_COMMIT,
						 PAGE_READWRITE, eTaskCritical, &mem),
			 S_OK);
	memset(mem, 3, 4 * PG);
	/* Secured before the callback is added: still reported. */
	h = MmSecureVirtualMemory(mem, 4 * PG, PAGE_READONLY);
	assert_non_null(h);
	assert_true(AddSecureMemoryCacheCallback(on_secure));
	/* VirtualFree(MEM_DECOMMIT) of part of the range. */
	assert_int_equal(m->lpVtbl->VirtualFree(m, (char *)mem + PG, PG, MEM_DECOMMIT), S_OK);
	assert_true(sec_saw((char *)mem + PG, PG));
	/* VirtualFree(MEM_RELEASE) of all of it. */
	assert_int_equal(m->lpVtbl->VirtualFree(m, mem, 0, MEM_RELEASE), S_OK);
	assert_true(sec_saw(mem, 4 * PG));
	MmUnsecureVirtualMemory(h);
	assert_true(RemoveSecureMemoryCacheCallback(on_secure));
	m->lpVtbl->Release(m);
}

/* Windows code unsecures from inside its callback (README: it "drops its
   cached mapping, unsecures it and returns TRUE"). */
static HANDLE self_unsecure_handle;
static _Atomic int self_unsecure_calls;
static BOOLEAN CALLBACK on_secure_unsecure(PVOID addr, SIZE_T range)
{
	(void)addr;
	(void)range;
	atomic_fetch_add(&self_unsecure_calls, 1);
	MmUnsecureVirtualMemory(self_unsecure_handle);
	return TRUE;
}

static void test_secure_unsecure_from_callback(void **state)
{
	char *p = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	(void)state;
	assert_true(p != MAP_FAILED);
	assert_true(AddSecureMemoryCacheCallback(on_secure_unsecure));
	self_unsecure_handle = MmSecureVirtualMemory(p, 4 * PG, PAGE_READWRITE);
	assert_non_null(self_unsecure_handle);
	assert_int_equal(mprotect(p, PG, PROT_READ), 0);
	assert_int_equal(atomic_load(&self_unsecure_calls), 1);
	/* Unsecured: nothing more, and (under ASan) no use after free. */
	assert_int_equal(munmap(p, 4 * PG), 0);
	assert_int_equal(atomic_load(&self_unsecure_calls), 1);
	assert_true(RemoveSecureMemoryCacheCallback(on_secure_unsecure));
}

static void test_secure_bad_input(void **state)
{
	char *p = mmap(NULL, 2 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	(void)state;
	assert_true(p != MAP_FAILED);
	SetLastError(0);
	/* The issue: "fails with NULL if the range is not mapped with that
	   access". */
	assert_null(MmSecureVirtualMemory(p, 2 * PG, PAGE_READWRITE));
	assert_int_equal(GetLastError(), ERROR_INVALID_ADDRESS);
	HANDLE h = MmSecureVirtualMemory(p, 2 * PG, PAGE_READONLY);
	assert_non_null(h);
	MmUnsecureVirtualMemory(h);
	assert_null(MmSecureVirtualMemory(p, 2 * PG, PAGE_EXECUTE));
	assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
	assert_null(MmSecureVirtualMemory(p, 0, PAGE_READONLY));
	munmap(p, 2 * PG);
	assert_null(MmSecureVirtualMemory(p, PG, PAGE_READONLY));
	assert_int_equal(GetLastError(), ERROR_INVALID_ADDRESS);
	SetLastError(0);
	MmUnsecureVirtualMemory((HANDLE)p);
	assert_int_equal(GetLastError(), ERROR_INVALID_HANDLE);
	assert_false(AddSecureMemoryCacheCallback(NULL));
	assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
	assert_false(RemoveSecureMemoryCacheCallback(on_secure));
	assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
}

/* ---- 001 IHostMemoryManager::RegisterMemoryNotificationCallback ---------- */

struct clr_cb {
	ICLRMemoryNotificationCallback iface;
	_Atomic int refs;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int n;
	EMemoryAvailable levels[64];
	pid_t tid;
};

static struct clr_cb *clr_of(ICLRMemoryNotificationCallback *This)
{
	return (struct clr_cb *)This;
}
static HRESULT STDMETHODCALLTYPE clr_qi(ICLRMemoryNotificationCallback *This,
				       REFIID riid, void **ppv)
{
	(void)riid;
	*ppv = This;
	return S_OK;
}
static ULONG STDMETHODCALLTYPE clr_add_ref(ICLRMemoryNotificationCallback *This)
{
	return (ULONG)atomic_fetch_add(&clr_of(This)->refs, 1) + 1;
}
static ULONG STDMETHODCALLTYPE clr_release(ICLRMemoryNotificationCallback *This)
{
	return (ULONG)atomic_fetch_sub(&clr_of(This)->refs, 1) - 1;
}
static HRESULT STDMETHODCALLTYPE clr_on_memory(ICLRMemoryNotificationCallback *This,
					       EMemoryAvailable level)
{
	struct clr_cb *c = clr_of(This);

	pthread_mutex_lock(&c->lock);
	if (c->n < 64)
		c->levels[c->n] = level;
	c->n++;
	c->tid = gettid_();
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return S_OK;
}
static const ICLRMemoryNotificationCallbackVtbl clr_vtbl = {
	clr_qi, clr_add_ref, clr_release, clr_on_memory,
};

static void clr_init(struct clr_cb *c)
{
	memset(c, 0, sizeof(*c));
	c->iface.lpVtbl = &clr_vtbl;
	c->refs = 1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
}

/* Wait up to @ms for a notification of @level after index @from; its
   index, or -1. */
static int clr_wait(struct clr_cb *c, int from, EMemoryAvailable level, int ms)
{
	struct timespec ts;
	int found = -1;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		for (int i = from; i < c->n && i < 64; i++)
			if (c->levels[i] == level) {
				found = i;
				break;
			}
		if (found >= 0 ||
		    pthread_cond_timedwait(&c->cond, &c->lock, &ts) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&c->lock);
	return found;
}

static void test_clr_register_and_load(void **state)
{
	struct mn_memory_status st = { .sz = sizeof(st) };
	IHostMemoryManager *m;
	struct clr_cb c;
	void *q = NULL;
	DWORD load = 999;
	SIZE_T avail = 0;
	static const IID bogus = { 1, 2, 3, { 4 } };

	(void)state;
	clr_init(&c);
	assert_int_equal(MnGetHostMemoryManager(NULL), E_POINTER);
	assert_int_equal(MnGetHostMemoryManager(&m), S_OK);
	assert_int_equal(m->lpVtbl->QueryInterface(m, &MN_IID_IHostMemoryManager, &q), S_OK);
	assert_ptr_equal(q, m);
	m->lpVtbl->Release(m);
	assert_int_equal(m->lpVtbl->QueryInterface(m, &bogus, &q), E_NOINTERFACE);
	assert_null(q);

	/* 001 (the issue): "returns E_POINTER for NULL". */
	assert_int_equal(m->lpVtbl->RegisterMemoryNotificationCallback(m, NULL), E_POINTER);
	/* 001: "S_OK: RegisterMemoryNotificationCallback returned
	   successfully"; the host keeps a reference. */
	assert_int_equal(m->lpVtbl->RegisterMemoryNotificationCallback(m, &c.iface), S_OK);
	assert_int_equal(atomic_load(&c.refs), 2);
	/* The current level arrives on the host's thread. */
	int i = -1;
	for (int lvl = eMemoryAvailableLow; lvl <= eMemoryAvailableHigh && i < 0; lvl++)
		i = clr_wait(&c, 0, (EMemoryAvailable)lvl, lvl == eMemoryAvailableHigh ? 5000 : 0);
	assert_true(i >= 0);
	assert_true(c.tid != gettid_());

	/* GetMemoryLoad reports the same status as memnotify. */
	assert_int_equal(m->lpVtbl->GetMemoryLoad(m, NULL, &avail), E_POINTER);
	assert_int_equal(m->lpVtbl->GetMemoryLoad(m, &load, &avail), S_OK);
	assert_int_equal(mn_memory_status(NULL, &st), 0);
	assert_true(load <= 100);
	assert_true(avail > 0 && avail <= st.limit_bytes);

	/* Methods with no meaning here. */
	assert_int_equal(m->lpVtbl->NeedsVirtualAddressSpace(m, NULL, PG), S_OK);

	/* The last Release ends the registration and drops the reference. */
	assert_int_equal(m->lpVtbl->Release(m), 0);
	assert_int_equal(atomic_load(&c.refs), 1);
}

static IHostMalloc *mt_heap;
static void *malloc_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 2000; i++) {
		void *p = NULL;
		if (mt_heap->lpVtbl->Alloc(mt_heap, (SIZE_T)(i % 300), eTaskCritical, &p) != S_OK)
			return (void *)1;
		memset(p, i, (size_t)(i % 300));
		if (mt_heap->lpVtbl->Free(mt_heap, p) != S_OK)
			return (void *)1;
	}
	return NULL;
}

/* Issue 12 §2: CreateMalloc gives a real heap (Microsoft's
   IHostMemoryManager::CreateMalloc and IHostMalloc pages: Alloc, DebugAlloc,
   Free; MALLOC_THREADSAFE, MALLOC_EXECUTABLE; S_OK / E_OUTOFMEMORY). */
static void test_clr_create_malloc(void **state)
{
	IHostMemoryManager *m;
	IHostMalloc *h = NULL, *x = NULL;
	void *a = NULL, *b = NULL, *q = NULL;
	pthread_t t[4];

	(void)state;
	assert_int_equal(MnGetHostMemoryManager(&m), S_OK);
	assert_int_equal(m->lpVtbl->CreateMalloc(m, MALLOC_THREADSAFE, NULL), E_POINTER);
	assert_int_equal(m->lpVtbl->CreateMalloc(m, 0x80, &h), E_INVALIDARG);
	assert_null(h);
	assert_int_equal(m->lpVtbl->CreateMalloc(m, MALLOC_THREADSAFE, &h), S_OK);
	assert_non_null(h);
	assert_int_equal(h->lpVtbl->QueryInterface(h, &IID_IHostMalloc, &q), S_OK);
	assert_ptr_equal(q, h);
	h->lpVtbl->Release(h);
	assert_int_equal(h->lpVtbl->QueryInterface(h, &IID_IHostMemoryManager, &q),
			 E_NOINTERFACE);
	assert_int_equal(h->lpVtbl->Alloc(h, 100, eTaskCritical, NULL), E_POINTER);
	assert_int_equal(h->lpVtbl->Alloc(h, 100, eProcessCritical, &a), S_OK);
	assert_true((uintptr_t)a % 16 == 0);
	memset(a, 1, 100);
	assert_int_equal(h->lpVtbl->DebugAlloc(h, 200, eTaskCritical, (char *)__FILE__,
					       __LINE__, &b), S_OK);
	memset(b, 2, 200);
	assert_int_equal(h->lpVtbl->Alloc(h, (SIZE_T)-1, eTaskCritical, &q), E_OUTOFMEMORY);
	assert_null(q);
	/* Threads at once on a MALLOC_THREADSAFE heap. */
	mt_heap = h;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, malloc_thread, NULL), 0);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		assert_null(r);
	}

	/* MALLOC_EXECUTABLE: the block is in a mapping with execute
	   permission; code written there runs. */
	assert_int_equal(m->lpVtbl->CreateMalloc(m, MALLOC_THREADSAFE | MALLOC_EXECUTABLE, &x),
			 S_OK);
	void *code = NULL;
	assert_int_equal(x->lpVtbl->Alloc(x, 16, eTaskCritical, &code), S_OK);
	assert_int_equal(ws_of(code).Win32Protection, PAGE_EXECUTE_READWRITE);
#if defined(__x86_64__)
	static const unsigned char ret42[] = { 0xb8, 0x2a, 0, 0, 0, 0xc3 }; /* mov eax, 42; ret */
	memcpy(code, ret42, sizeof(ret42));
	int (*fn)(void);
	memcpy(&fn, &code, sizeof(fn));
	assert_int_equal(fn(), 42);
#endif
	/* A block is freed by the heap that gave it. */
	assert_int_equal(x->lpVtbl->Free(x, a), E_INVALIDARG);
	assert_int_equal(h->lpVtbl->Free(h, code), E_INVALIDARG);
	assert_int_equal(x->lpVtbl->Free(x, code), S_OK);
	assert_int_equal(h->lpVtbl->Free(h, a), S_OK);
	assert_int_equal(h->lpVtbl->Free(h, b), S_OK);
	assert_int_equal(h->lpVtbl->Free(h, NULL), S_OK);
	assert_int_equal(x->lpVtbl->Release(x), 0);
	assert_int_equal(h->lpVtbl->Release(h), 0);
	m->lpVtbl->Release(m);
}

/* Issue 12 §2: the standard names of the SDK. */
static BOOLEAN std_nmi(PVOID ctx, BOOLEAN handled)
{
	(void)ctx;
	return handled;
}
static BOOLEAN std_secure(PVOID addr, SIZE_T range)
{
	(void)addr;
	(void)range;
	return FALSE;
}
static VOID std_bad(VOID)
{
}

static void test_standard_names(void **state)
{
	NMI_CALLBACK *nmi = std_nmi;
	SECURE_MEMORY_CACHE_CALLBACK *sec = std_secure;
	BAD_MEMORY_CALLBACK_ROUTINE *bad = std_bad;
	PSAPI_WORKING_SET_EX_INFORMATION e = { .VirtualAddress = (PVOID)&e };

	(void)state;
	assert_true(nmi(NULL, TRUE));
	assert_false(sec(NULL, 0));
	bad();
	assert_true(NT_SUCCESS(STATUS_SUCCESS));
	assert_false(NT_SUCCESS(STATUS_INVALID_HANDLE));
	assert_ptr_equal(INVALID_HANDLE_VALUE, GetCurrentProcess());
	assert_int_equal(ERROR_BAD_LENGTH, 24);
	assert_int_equal(MALLOC_THREADSAFE, 1);
	assert_int_equal(MALLOC_EXECUTABLE, 2);
	assert_true(K32QueryWorkingSetEx(GetCurrentProcess(), &e, sizeof(e)));
	assert_int_equal(e.VirtualAttributes.Valid, 1);
	assert_int_equal(IID_IHostMalloc.Data1, 0x1831991C);
	assert_int_equal(IID_IHostMemoryManager.Data1, 0x7BC698D1);
	assert_int_equal(IID_ICLRMemoryNotificationCallback.Data1, 0x47EB8E57);
	assert_int_equal(IID_IUnknown.Data4[0], 0xC0);
}

static void test_clr_virtual_memory(void **state)
{
	MEMORY_BASIC_INFORMATION mbi;
	IHostMemoryManager *m;
	SIZE_T got = 0;
	DWORD old = 0;
	void *mem = NULL;

	(void)state;
	assert_int_equal(MnGetHostMemoryManager(&m), S_OK);
	/* Reserve, then commit part. */
	assert_int_equal(m->lpVtbl->VirtualAlloc(m, NULL, 16 * PG, MEM_RESERVE,
						 PAGE_READWRITE, eTaskCritical, &mem),
			 S_OK);
	assert_int_equal(m->lpVtbl->VirtualQuery(m, mem, &mbi, sizeof(mbi), &got), S_OK);
	assert_int_equal(got, sizeof(mbi));
	assert_int_equal(mbi.State, MEM_RESERVE);
	assert_ptr_equal(mbi.AllocationBase, mem);
	void *c = NULL;
	assert_int_equal(m->lpVtbl->VirtualAlloc(m, mem, 2 * PG, MEM_COMMIT,
						 PAGE_READWRITE, eTaskCritical, &c),
			 S_OK);
	memset(c, 5, 2 * PG);
	assert_int_equal(m->lpVtbl->VirtualQuery(m, mem, &mbi, sizeof(mbi), &got), S_OK);
	assert_int_equal(mbi.State, MEM_COMMIT);
	assert_int_equal(mbi.Protect, PAGE_READWRITE);
	assert_int_equal(mbi.RegionSize, 2 * PG);
	assert_int_equal(m->lpVtbl->VirtualProtect(m, mem, PG, PAGE_READONLY, &old), S_OK);
	assert_int_equal(old, PAGE_READWRITE);
	assert_int_equal(ws_of(mem).Win32Protection, PAGE_READONLY);
	/* Bad input. */
	assert_int_equal(m->lpVtbl->VirtualAlloc(m, NULL, 0, MEM_COMMIT, PAGE_READWRITE,
						 eTaskCritical, &c),
			 E_INVALIDARG);
	assert_int_equal(m->lpVtbl->VirtualAlloc(m, NULL, PG, MEM_COMMIT | MEM_RESERVE,
						 0x1234, eTaskCritical, &c),
			 E_INVALIDARG);
	assert_int_equal(m->lpVtbl->VirtualFree(m, mem, PG, MEM_RELEASE), E_INVALIDARG);
	assert_int_equal(m->lpVtbl->VirtualProtect(m, mem, PG, PAGE_READONLY, NULL), E_POINTER);
	/* Release: the range is gone. */
	assert_int_equal(m->lpVtbl->VirtualFree(m, mem, 0, MEM_RELEASE), S_OK);
	assert_int_equal(m->lpVtbl->VirtualQuery(m, mem, &mbi, sizeof(mbi), &got), S_OK);
	assert_int_equal(mbi.State, MEM_FREE);
	assert_int_equal(m->lpVtbl->VirtualFree(m, mem, 0, MEM_RELEASE), E_INVALIDARG);
	m->lpVtbl->Release(m);
}

/* A free, 64 KiB-aligned hole of @len bytes (found, then let go). */
static char *free_hole(size_t len)
{
	char *p = mmap(NULL, len + (64u << 10), PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	munmap(p, len + (64u << 10));
	return (char *)(((uintptr_t)p + (64u << 10) - 1) & ~(uintptr_t)((64u << 10) - 1));
}

/* The end of the /proc/self/maps line holding @a. */
static uintptr_t maps_end(const void *a)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	uintptr_t end = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 &&
		    (uintptr_t)a >= lo && (uintptr_t)a < hi) {
			end = hi;
			break;
		}
	}
	fclose(f);
	return end;
}

static MEMORY_BASIC_INFORMATION vq(IHostMemoryManager *m, const void *a)
{
	MEMORY_BASIC_INFORMATION mbi;
	SIZE_T got = 0;

	assert_int_equal(m->lpVtbl->VirtualQuery(m, (void *)a, &mbi, sizeof(mbi), &got), S_OK);
	assert_int_equal(got, sizeof(mbi));
	return mbi;
}

/* Windows' answers for IHostMemoryManager's Virtual* methods, which call
   kernel32's VirtualAlloc/VirtualQuery (their behaviour as Wine's
   dlls/kernel32/tests/virtual.c records it on Windows, and Microsoft's
   VirtualAlloc page: "If the memory is being reserved, the specified
   address is rounded down to the nearest multiple of the allocation
   granularity"). */
static void test_clr_virtual_windows_answers(void **state)
{
	MEMORY_BASIC_INFORMATION mbi;
	IHostMemoryManager *m;
	void *a = NULL, *b = NULL, *c = NULL;

	(void)state;
	assert_int_equal(MnGetHostMemoryManager(&m), S_OK);

	/* Two neighbouring allocations with one protection: the kernel shows
	   one mapping, VirtualQuery stops at each allocation's end. */
	char *hole = free_hole(32 * PG);
	assert_int_equal(m->lpVtbl->VirtualAlloc(m, hole, 16 * PG, MEM_RESERVE | MEM_COMMIT,
						 PAGE_READWRITE, eTaskCritical, &a), S_OK);
	assert_ptr_equal(a, hole);
	assert_int_equal(m->lpVtbl->VirtualAlloc(m, hole + 16 * PG, 16 * PG,
						 MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE,
						 eTaskCritical, &b), S_OK);
	assert_ptr_equal(b, hole + 16 * PG);
	assert_true(maps_end(a) >= (uintptr_t)hole + 32 * PG); /* merged by the kernel */
	mbi = vq(m, a);
	assert_int_equal(mbi.RegionSize, 16 * PG);
	assert_ptr_equal(mbi.AllocationBase, a);
	mbi = vq(m, (char *)a + 3 * PG + 5);
	assert_ptr_equal(mbi.BaseAddress, (char *)a + 3 * PG);
	assert_int_equal(mbi.RegionSize, 13 * PG);
	mbi = vq(m, b);
	assert_ptr_equal(mbi.AllocationBase, b);
	assert_int_equal(mbi.RegionSize, 16 * PG);
	assert_int_equal(m->lpVtbl->VirtualFree(m, a, 0, MEM_RELEASE), S_OK);
	assert_int_equal(m->lpVtbl->VirtualFree(m, b, 0, MEM_RELEASE), S_OK);

	/* A committed PAGE_NOACCESS region is MEM_COMMIT, not MEM_RESERVE. */
	assert_int_equal(m->lpVtbl->VirtualAlloc(m, NULL, 4 * PG, MEM_RESERVE | MEM_COMMIT,
						 PAGE_NOACCESS, eTaskCritical, &a), S_OK);
	mbi = vq(m, a);
	assert_int_equal(mbi.State, MEM_COMMIT);
	assert_int_equal(mbi.Protect, PAGE_NOACCESS);
	assert_int_equal(mbi.AllocationProtect, PAGE_NOACCESS);
	assert_int_equal(mbi.RegionSize, 4 * PG);
	/* ... and a reserved-only part stays MEM_RESERVE, Protect 0. */
	assert_int_equal(m->lpVtbl->VirtualFree(m, (char *)a + 2 * PG, 2 * PG, MEM_DECOMMIT), S_OK);
	mbi = vq(m, a);
	assert_int_equal(mbi.State, MEM_COMMIT);
	assert_int_equal(mbi.RegionSize, 2 * PG);
	mbi = vq(m, (char *)a + 2 * PG);
	assert_int_equal(mbi.State, MEM_RESERVE);
	assert_int_equal(mbi.Protect, 0);
	assert_int_equal(mbi.RegionSize, 2 * PG);
	assert_int_equal(m->lpVtbl->VirtualFree(m, a, 0, MEM_RELEASE), S_OK);

	/* An unaligned address is rounded down (a reservation to the 64 KiB
	   granularity, a commit to the page), not refused. */
	hole = free_hole(32 * PG);
	assert_int_equal(m->lpVtbl->VirtualAlloc(m, hole + 123, 8 * PG, MEM_RESERVE,
						 PAGE_READWRITE, eTaskCritical, &a), S_OK);
	assert_ptr_equal(a, hole);
	assert_int_equal(m->lpVtbl->VirtualAlloc(m, hole + PG + 17, 10, MEM_COMMIT,
						 PAGE_READWRITE, eTaskCritical, &c), S_OK);
	assert_ptr_equal(c, hole + PG);
	mbi = vq(m, hole + PG);
	assert_int_equal(mbi.State, MEM_COMMIT);
	assert_int_equal(mbi.RegionSize, PG);
	assert_int_equal(m->lpVtbl->VirtualFree(m, a, 0, MEM_RELEASE), S_OK);

	/* MEM_COMMIT with no address reserves and commits. */
	assert_int_equal(m->lpVtbl->VirtualAlloc(m, NULL, 3 * PG, MEM_COMMIT,
						 PAGE_READWRITE, eTaskCritical, &a), S_OK);
	memset(a, 7, 3 * PG);
	mbi = vq(m, a);
	assert_int_equal(mbi.State, MEM_COMMIT);
	assert_ptr_equal(mbi.AllocationBase, a);
	assert_int_equal(mbi.RegionSize, 3 * PG);
	assert_int_equal(m->lpVtbl->VirtualFree(m, a, 0, MEM_RELEASE), S_OK);
	/* Committing memory the face never reserved is refused. */
	char *foreign = mmap(NULL, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_int_equal(m->lpVtbl->VirtualAlloc(m, foreign, PG, MEM_COMMIT, PAGE_READWRITE,
						 eTaskCritical, &c), E_INVALIDARG);
	munmap(foreign, PG);
	m->lpVtbl->Release(m);
}

/* ---- CreateMemoryResourceNotification ------------------------------------- */

static void test_resource_state_and_handles(void **state)
{
	struct mn_memory_status st = { .sz = sizeof(st) };
	struct mn_memory_opts o = { .sz = sizeof(o) };
	HANDLE lo, hi;
	BOOL s_lo = 7, s_hi = 7;

	(void)state;
	lo = CreateMemoryResourceNotification(LowMemoryResourceNotification);
	hi = CreateMemoryResourceNotification(HighMemoryResourceNotification);
	assert_non_null(lo);
	assert_non_null(hi);
	assert_true(QueryMemoryResourceNotification(lo, &s_lo));
	assert_true(QueryMemoryResourceNotification(hi, &s_hi));
	/* README: "by default low is about 32 MB per 4 GB, at most 64 MB,
	   and high is three times low" — over the effective limit. */
	assert_int_equal(mn_memory_status(NULL, &st), 0);
	o.low_bytes = st.limit_bytes / 128 < (64u << 20) ? st.limit_bytes / 128 : (64u << 20);
	o.high_bytes = 3 * o.low_bytes;
	assert_int_equal(mn_memory_status(&o, &st), 0);
	assert_int_equal(s_lo, st.available_bytes < o.low_bytes);
	assert_int_equal(s_hi, st.available_bytes >= o.high_bytes);
	/* A signaled handle satisfies a wait at once; the other times out. */
	HANDLE on = s_hi ? hi : lo, off = s_hi ? lo : hi;
	if (s_hi || s_lo) {
		assert_int_equal(WaitForSingleObject(on, 0), WAIT_OBJECT_0);
		uint64_t t0 = now_ms();
		assert_int_equal(WaitForSingleObject(off, 100), WAIT_TIMEOUT);
		assert_true(now_ms() - t0 >= 90);
	}
	/* Bad input. */
	SetLastError(0);
	assert_null(CreateMemoryResourceNotification((MEMORY_RESOURCE_NOTIFICATION_TYPE)2));
	assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
	assert_false(QueryMemoryResourceNotification(lo, NULL));
	assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
	/* Windows (Wine's dlls/kernel32/tests/sync.c, run on Windows): a NULL
	   handle is ERROR_INVALID_PARAMETER, not ERROR_INVALID_HANDLE; an
	   event handle — here, the face's only kind — is accepted. */
	SetLastError(0);
	assert_false(QueryMemoryResourceNotification(NULL, &s_lo));
	assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
	SetLastError(0);
	assert_true(QueryMemoryResourceNotification(hi, &s_hi));
	assert_int_equal(GetLastError(), 0);
	assert_true(CloseHandle(lo));
	assert_true(CloseHandle(hi));
	assert_false(CloseHandle(lo));
	assert_int_equal(GetLastError(), ERROR_INVALID_HANDLE);
	assert_false(QueryMemoryResourceNotification(lo, &s_lo));
	assert_int_equal(GetLastError(), ERROR_INVALID_HANDLE);
	assert_int_equal(WaitForSingleObject(lo, 0), WAIT_FAILED);
	assert_true(CloseHandle(GetCurrentProcess()));
	assert_ptr_equal(GetCurrentProcess(), (HANDLE)(intptr_t)-1);
	/* Last error is per thread. */
	SetLastError(1234);
	assert_int_equal(GetLastError(), 1234);
}

/* Issue 12 §3: the generic kernel32 names are exported only as Mn..., so a
   process that also loads WinPR or winelib binds each name to one library;
   the header maps the Windows names, so source is unchanged. */
static void test_exports_generic_names_prefixed(void **state)
{
	static const char *const generic[] = {
		"GetLastError", "SetLastError", "GetCurrentProcess",
		"CloseHandle", "WaitForSingleObject",
	};
	char cmd[4096], line[256];
	bool seen[5][2] = { { false } }, spec = false;
	FILE *f;

	(void)state;
	/* The shared library's dynamic symbols (this test links the static
	   archive; loading a second copy would install a second set of
	   interposers). */
	snprintf(cmd, sizeof(cmd), "nm -D --defined-only '%s'", MN_TEST_SHARED_LIB);
	f = popen(cmd, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *sym = strrchr(line, ' ');
		if (!sym)
			continue;
		sym++;
		sym[strcspn(sym, "@\n")] = 0;
		for (size_t i = 0; i < 5; i++) {
			seen[i][0] |= !strcmp(sym, generic[i]);
			seen[i][1] |= !strncmp(sym, "Mn", 2) && !strcmp(sym + 2, generic[i]);
		}
		spec |= !strcmp(sym, "QueryWorkingSetEx");
	}
	assert_int_equal(pclose(f), 0);
	for (size_t i = 0; i < 5; i++) {
		assert_false(seen[i][0]);
		assert_true(seen[i][1]);
	}
	/* The spec's own names stay. */
	assert_true(spec);
	/* Source written for Windows calls them by their Windows names. */
	SetLastError(77);
	assert_int_equal(GetLastError(), 77);
	assert_int_equal(MnGetLastError(), 77);
	assert_false(CloseHandle(NULL));
	assert_int_equal(GetLastError(), ERROR_INVALID_HANDLE);
	assert_int_equal(WaitForSingleObject(NULL, 0), WAIT_FAILED);
}

/* ---- System: a real memory cgroup and a real hog (root) ----------------- */

#define SYS_LIMIT (4096ull << 20)

static void fail_child(const char *what)
{
	fprintf(stderr, "system child: %s\n", what);
	_exit(1);
}

/* In the group: the CLR callback object must get Low under the hog, then
   High after; the resource handles must signal and clear. */
static void system_child(int go)
{
	IHostMemoryManager *m;
	struct clr_cb c;
	HANDLE lo, hi;
	BOOL s;
	char b;

	if (read(go, &b, 1) != 1)
		fail_child("no go");
	alarm(120);
	clr_init(&c);
	if (MnGetHostMemoryManager(&m) != S_OK ||
	    m->lpVtbl->RegisterMemoryNotificationCallback(m, &c.iface) != S_OK)
		fail_child("register");
	lo = CreateMemoryResourceNotification(LowMemoryResourceNotification);
	hi = CreateMemoryResourceNotification(HighMemoryResourceNotification);
	if (!lo || !hi)
		fail_child("CreateMemoryResourceNotification");
	/* 4 GiB group: low below 32 MiB, high from 96 MiB (Windows'
	   defaults); the CLR levels at 10 % and 30 %. */
	if (clr_wait(&c, 0, eMemoryAvailableHigh, 10000) < 0)
		fail_child("not High before the hog");
	if (WaitForSingleObject(hi, 0) != WAIT_OBJECT_0)
		fail_child("high handle not signaled before the hog");
	int from = c.n;
	pid_t hog = mn_test_hog_start(NULL, SYS_LIMIT - (16ull << 20), 64ull << 20, 0, -1);
	if (hog < 0)
		fail_child("hog");
	/* 001: the host invokes OnMemoryNotification "to report memory
	   pressure conditions": Low while the hog fills the group. */
	int low_at = clr_wait(&c, from, eMemoryAvailableLow, 60000);
	DWORD w = WaitForSingleObject(lo, 60000);
	/* The two handles share one level: once the low one is signaled,
	   the high one is already clear (never both at once). */
	BOOL hi_during = TRUE;
	QueryMemoryResourceNotification(hi, &hi_during);
	mn_test_hog_stop(hog);
	if (low_at < 0)
		fail_child("CLR callback never got eMemoryAvailableLow");
	if (w != WAIT_OBJECT_0)
		fail_child("low handle never signaled under the hog");
	if (hi_during)
		fail_child("high handle still signaled under the hog");
	if (clr_wait(&c, low_at, eMemoryAvailableHigh, 60000) < 0)
		fail_child("CLR callback never back to eMemoryAvailableHigh");
	if (WaitForSingleObject(hi, 60000) != WAIT_OBJECT_0)
		fail_child("high handle not signaled after the hog");
	if (!QueryMemoryResourceNotification(lo, &s) || s)
		fail_child("low handle still signaled after the hog");
	fprintf(stderr, "system child: %d notifications, Low at #%d\n", c.n, low_at);
	CloseHandle(lo);
	CloseHandle(hi);
	m->lpVtbl->Release(m);
	_exit(0);
}

static void test_system_clr_and_resource_in_cgroup(void **state)
{
	char cg[512], why[256];
	int go[2], st;
	pid_t pid;

	(void)state;
	/* The hog fills the whole 4 GiB group: a machine must have it to
	   spare (the 1 GiB VM guest has not). */
	uint64_t phys = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
	if (phys < SYS_LIMIT + (1024ull << 20)) {
		print_message("skipped: the 4 GiB group needs 5 GiB of memory; "
			      "this machine has %llu MiB\n",
			      (unsigned long long)(phys >> 20));
		skip();
	}
	if (mn_test_cgroup_create(SYS_LIMIT, cg, sizeof(cg), why, sizeof(why))) {
		print_message("skipped: %s\n", why);
		skip();
	}
	assert_int_equal(pipe(go), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(go[1]);
		system_child(go[0]);
	}
	close(go[0]);
	assert_int_equal(mn_test_cgroup_enter(cg, pid), 0);
	assert_int_equal(write(go[1], "g", 1), 1);
	close(go[1]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	mn_test_cgroup_destroy(cg);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_secure_listener_ends),
		cmocka_unit_test(test_nmi_reverse_order_and_handled),
		cmocka_unit_test(test_nmi_unhandled_ends_child),
		cmocka_unit_test(test_nmi_bad_input),
		cmocka_unit_test(test_badmem_callback_and_bad_bit),
		cmocka_unit_test(test_badmem_working_set_bits),
		cmocka_unit_test(test_badmem_large_page),
		cmocka_unit_test(test_ws_windows_answers),
		cmocka_unit_test(test_secure_free_and_protect),
		cmocka_unit_test(test_secure_once_per_change),
		cmocka_unit_test(test_secure_virtualfree_and_order),
		cmocka_unit_test(test_secure_unsecure_from_callback),
		cmocka_unit_test(test_secure_bad_input),
		cmocka_unit_test(test_clr_register_and_load),
		cmocka_unit_test(test_clr_create_malloc),
		cmocka_unit_test(test_standard_names),
		cmocka_unit_test(test_clr_virtual_memory),
		cmocka_unit_test(test_clr_virtual_windows_answers),
		cmocka_unit_test(test_resource_state_and_handles),
		cmocka_unit_test(test_exports_generic_names_prefixed),
		cmocka_unit_test(test_system_clr_and_resource_in_cgroup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
