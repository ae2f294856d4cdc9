/* SPDX-License-Identifier: MIT */
/*
 * Real memory failure (the kernel's CONFIG_MEMORY_FAILURE code, reached
 * with madvise(MADV_HWPOISON) as root): runs in the VM bed (tests/vm/, a
 * 6.1 guest) and skips, with the reason, on a kernel without it.
 *
 * - AR: a handler with mn_badmem_replace() survives a real poisoned page;
 *   the program goes on with the other pages intact; mn_badmem_query(),
 *   QueryWorkingSetEx's Bad bit and a subscriber see it; HardwareCorrupted
 *   rises and a SYSTEM-scope event reports it.
 * - AO, early kill: another process poisons a page it shares with us; our
 *   early-kill subscriber gets the kernel's BUS_MCEERR_AO at once.
 * - RegisterBadMemoryNotification's callback fires for a real poison (AO
 *   through its early-kill thread) and QueryWorkingSetEx reports Bad.
 * Each case runs in a child process and the poisoned frame is unpoisoned
 * afterwards (debugfs hwpoison/unpoison-pfn) so the guest stays usable.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "memnotify/win32.h"

#define WAIT_MS 5000
#define UNPOISON "/sys/kernel/debug/hwpoison/unpoison-pfn"

static long pagesz(void) { return sysconf(_SC_PAGESIZE); }

static uint64_t pfn_of(const void *p)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (pread(fd, &e, 8, (off_t)((uintptr_t)p / (uintptr_t)pagesz() * 8)) != 8)
		e = 0;
	close(fd);
	return (e >> 63) ? e & ((1ull << 55) - 1) : 0;
}

static long hw_corrupted_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "re");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "HardwareCorrupted: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

/* Give the frame back; prints what the kernel said (a frame still
   referenced stays poisoned: EBUSY). */
static void unpoison(uint64_t pfn)
{
	char v[32];
	int fd = open(UNPOISON, O_WRONLY | O_CLOEXEC);
	int n = snprintf(v, sizeof(v), "%#" PRIx64 "\n", pfn);
	ssize_t w = fd < 0 ? -1 : write(fd, v, (size_t)n);

	printf("unpoison pfn %#" PRIx64 ": %s (HardwareCorrupted %ld kB)\n", pfn,
	       w == n ? "ok" : strerror(errno), hw_corrupted_kb());
	if (fd >= 0)
		close(fd);
}

static int need_real_poison(void **state)
{
	struct mn_capability mf = { .sz = sizeof(mf) }, hw = { .sz = sizeof(hw) };

	(void)state;
	mn_capability(MN_CAP_MEMORY_FAILURE, &mf);
	mn_capability(MN_CAP_HWPOISON_INJECT, &hw);
	if (!mf.supported || !hw.supported) {
		printf("skipped: no real memory failure here: %s; %s\n",
		       mf.detail, hw.detail);
		exit(77);
	}
	if (access(UNPOISON, W_OK) != 0)
		printf("note: no %s: poisoned frames stay poisoned\n", UNPOISON);
	return 0;
}

/* --- what the subscriber saw ------------------------------------------- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct mn_badmem_event last_proc, last_sys;
static int n_proc, n_sys;

static void on_bad(const struct mn_badmem_event *ev, void *ctx)
{
	(void)ctx;
	pthread_mutex_lock(&mu);
	if (ev->kind == MN_BADMEM_PAGE && ev->page.scope == MN_BADMEM_PROCESS) {
		last_proc = *ev;
		n_proc++;
	} else if (ev->kind == MN_BADMEM_PAGE) {
		last_sys = *ev;
		n_sys++;
	}
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* Wait until *count >= n, at most WAIT_MS. */
static int wait_for(int *count, int n)
{
	struct timespec ts;
	int ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&mu);
	while (*count < n)
		if (pthread_cond_timedwait(&cv, &mu, &ts) == ETIMEDOUT)
			break;
	ok = *count >= n;
	pthread_mutex_unlock(&mu);
	return ok;
}

/* Run @fn in a child; its exit status is the case's (0 passed). */
static void in_child(int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(30);
		fflush(stdout);
		_exit(fn());
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		fail_msg("the child died of signal %d", WTERMSIG(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

#define CHECK(c)                                                              \
	do {                                                                  \
		if (!(c)) {                                                   \
			printf("failed: %s (line %d)\n", #c, __LINE__);       \
			return __LINE__ % 200 + 1;                            \
		}                                                             \
	} while (0)

/* --- AR: replace and go on --------------------------------------------- */

static atomic_int ar_calls, ar_code;

/* Signal context: mn_badmem_replace() and atomics only. */
static int replace_page(const struct mn_bad_page *page, siginfo_t *info,
			void *uc, int handled, void *ctx)
{
	(void)uc; (void)handled; (void)ctx;
	atomic_fetch_add(&ar_calls, 1);
	atomic_store(&ar_code, info->si_code);
	return mn_badmem_replace((void *)(uintptr_t)page->address,
				 (size_t)page->length) == 0;
}

static int ar_case(void)
{
	long ps = pagesz();
	struct mn_badmem_opts o = { .sz = sizeof(o), .system_poll_ms = 100 };
	struct mn_bad_page q[4];
	PSAPI_WORKING_SET_EX_INFORMATION ws[2];
	mn_sub *sub, *ar;
	long hc0 = hw_corrupted_kb();
	char *p = mmap(NULL, (size_t)ps * 3, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t pfn;

	CHECK(p != MAP_FAILED);
	memset(p, 'A', (size_t)ps);
	memset(p + ps, 'B', (size_t)ps);
	memset(p + 2 * ps, 'C', (size_t)ps);
	pfn = pfn_of(p + ps);
	CHECK(pfn != 0);
	CHECK(mn_badmem_subscribe(&o, on_bad, NULL, &sub) == 0);
	CHECK(mn_badmem_register_ar(replace_page, NULL, &ar) == 0);
	CHECK(mn_badmem_inject_hwpoison(p + ps + 100) == 0);
	/* The kernel took the page away: this read is the real AR. */
	CHECK(*(volatile char *)(p + ps + 100) == 0);
	CHECK(atomic_load(&ar_calls) == 1);
	CHECK(atomic_load(&ar_code) == BUS_MCEERR_AR);
	p[ps] = 'b'; /* the replacement is ordinary memory */
	CHECK(p[0] == 'A' && p[ps - 1] == 'A' && p[2 * ps] == 'C' && p[ps] == 'b');
	CHECK(wait_for(&n_proc, 1));
	CHECK(last_proc.page.action_required == 1);
	CHECK(last_proc.page.si_code == BUS_MCEERR_AR);
	CHECK(last_proc.page.address == (uintptr_t)(p + ps));
	CHECK(last_proc.page.length == (uint64_t)ps);
	CHECK(mn_badmem_query(p, (size_t)ps * 3, q, 4) == 1);
	CHECK(q[0].address == (uintptr_t)(p + ps));
	CHECK(mn_badmem_query(p, (size_t)ps, NULL, 0) == 0);
	ws[0].VirtualAddress = p + ps;
	ws[1].VirtualAddress = p;
	CHECK(QueryWorkingSetEx(GetCurrentProcess(), ws, sizeof(ws)));
	CHECK(ws[0].VirtualAttributes.Flags & MN_WORKING_SET_EX_BAD);
	CHECK(!(ws[1].VirtualAttributes.Flags & MN_WORKING_SET_EX_BAD));
	/* The machine's counter rose by the page, and the watch reported it
	   (its first report may be older corruption: wait for the new total). */
	for (int i = 1; i <= 10; i++) {
		CHECK(wait_for(&n_sys, i));
		pthread_mutex_lock(&mu);
		uint64_t total = last_sys.hw_corrupted_bytes;
		pthread_mutex_unlock(&mu);
		if (total >= (uint64_t)(hc0 * 1024 + ps))
			break;
	}
	printf("AR recovered at %p; HardwareCorrupted %ld -> %ld kB; system "
	       "event: %" PRIu64 " bytes, total %" PRIu64 "\n", (void *)(p + ps),
	       hc0, hw_corrupted_kb(), last_sys.page.length,
	       last_sys.hw_corrupted_bytes);
	CHECK(hw_corrupted_kb() >= hc0 + ps / 1024);
	CHECK(last_sys.hw_corrupted_bytes >= (uint64_t)(hc0 * 1024 + ps));
	mn_unsubscribe(ar);
	mn_unsubscribe(sub);
	unpoison(pfn);
	return 0;
}

static void test_ar_replace_survives(void **state)
{
	(void)state;
	in_child(ar_case);
}

/* --- AO: early kill, a page shared with the process that poisons it ---- */

static int ao_case(void)
{
	long ps = pagesz();
	struct mn_badmem_opts o = { .sz = sizeof(o),
				    .flags = MN_BADMEM_EARLY_KILL |
					     MN_BADMEM_NO_SYSTEM };
	mn_sub *sub;
	int status;
	pid_t other;
	char *p = mmap(NULL, (size_t)ps, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	uint64_t pfn;

	CHECK(p != MAP_FAILED);
	memset(p, 'S', (size_t)ps);
	pfn = pfn_of(p);
	CHECK(pfn != 0);
	CHECK(mn_badmem_subscribe(&o, on_bad, NULL, &sub) == 0);
	other = fork();
	if (other == 0)
		_exit(madvise(p, (size_t)ps, MADV_HWPOISON) == 0 ? 0 : 1);
	CHECK(waitpid(other, &status, 0) == other);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* We never touched the page since: only early kill tells us. */
	CHECK(wait_for(&n_proc, 1));
	CHECK(last_proc.page.action_required == 0);
	CHECK(last_proc.page.si_code == BUS_MCEERR_AO);
	CHECK(last_proc.page.address == (uintptr_t)p);
	CHECK(mn_badmem_query(p, (size_t)ps, NULL, 0) == 1);
	printf("AO (early kill) for the shared page %p, thread %d\n", (void *)p,
	       last_proc.page.tid);
	mn_unsubscribe(sub);
	munmap(p, (size_t)ps);
	unpoison(pfn);
	return 0;
}

static void test_early_kill_ao_shared(void **state)
{
	(void)state;
	in_child(ao_case);
}

/* --- the Windows face ---------------------------------------------------- */

static atomic_int w32_calls;

static VOID CALLBACK on_bad_w32(VOID)
{
	atomic_fetch_add(&w32_calls, 1);
}

static int w32_case(void)
{
	long ps = pagesz();
	PSAPI_WORKING_SET_EX_INFORMATION ws[1];
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	PVOID h;
	char *p = mmap(NULL, (size_t)ps, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t pfn;

	CHECK(p != MAP_FAILED);
	p[0] = 1;
	pfn = pfn_of(p);
	h = RegisterBadMemoryNotification(on_bad_w32);
	CHECK(h != NULL);
	CHECK(madvise(p, (size_t)ps, MADV_HWPOISON) == 0);
	/* Not touched: the callback comes from early notice (AO). */
	for (int i = 0; i < WAIT_MS / 10 && atomic_load(&w32_calls) == 0; i++)
		nanosleep(&ts, NULL);
	CHECK(atomic_load(&w32_calls) >= 1);
	ws[0].VirtualAddress = p;
	CHECK(QueryWorkingSetEx(GetCurrentProcess(), ws, sizeof(ws)));
	CHECK(ws[0].VirtualAttributes.Flags & MN_WORKING_SET_EX_BAD);
	printf("RegisterBadMemoryNotification callback ran %d time(s)\n",
	       atomic_load(&w32_calls));
	CHECK(UnregisterBadMemoryNotification(h));
	munmap(p, (size_t)ps);
	unpoison(pfn);
	return 0;
}

static void test_register_bad_memory_notification(void **state)
{
	(void)state;
	in_child(w32_case);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ar_replace_survives),
		cmocka_unit_test(test_early_kill_ao_shared),
		cmocka_unit_test(test_register_bad_memory_notification),
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, need_real_poison, NULL);
}
