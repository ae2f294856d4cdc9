/* SPDX-License-Identifier: MIT */
/*
 * Bad memory: real SIGBUS siginfo with BUS_MCEERR_AO/AR queued to this
 * process (rt_tgsigqueueinfo), and MADV_HWPOISON on a real page where the
 * kernel and privileges allow it.  AO reaches subscribers in thread context
 * and the query; AR is recovered by replacing the page; unhandled AR kills
 * a child by SIGBUS; other SIGBUS codes pass on; a full table is reported.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "memnotify.h"

#define WAIT_MS 5000

struct seen {
	struct mn_test_rec rec; /* first: the count, the lock, the wait */
	struct mn_badmem_event ev[64];
	pthread_t thread;
	uint64_t lost;
};

static void on_bad(const struct mn_badmem_event *ev, void *ctx)
{
	struct seen *s = ctx;

	mn_test_rec_lock(&s->rec);
	if (s->rec.n < 64)
		s->ev[s->rec.n] = *ev;
	if (ev->kind == MN_BADMEM_LOST)
		s->lost += ev->lost;
	s->thread = pthread_self();
	mn_test_rec_done(&s->rec);
}

static bool wait_n(struct seen *s, int n)
{
	return mn_test_rec_wait(&s->rec, n, WAIT_MS);
}

static void seen_init(struct seen *s)
{
	memset(s, 0, sizeof(*s));
	mn_test_rec_init(&s->rec);
}

static size_t pagesz(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static void test_ao_reaches_subscribers(void **state)
{
	MN_OPTS(mn_badmem_opts, o, .flags = MN_BADMEM_NO_SYSTEM);
	struct seen s;
	struct mn_bad_page pg[4];
	mn_sub *sub;
	char *mem;

	(void)state;
	seen_init(&s);
	mem = mmap(NULL, 4 * pagesz(), PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(mem != MAP_FAILED);
	assert_int_equal(mn_badmem_subscribe(&o, on_bad, &s, &sub), 0);
	/* The kernel found poison in our second page (action optional). */
	assert_int_equal(mn_badmem_inject(0, mem + pagesz() + 100, 12, 0), 0);
	assert_true(wait_n(&s, 1));
	assert_int_equal(s.ev[0].kind, MN_BADMEM_PAGE);
	assert_int_equal(s.ev[0].page.scope, MN_BADMEM_PROCESS);
	assert_int_equal(s.ev[0].page.address, (uintptr_t)(mem + pagesz()));
	assert_int_equal(s.ev[0].page.length, 4096);
	assert_int_equal(s.ev[0].page.action_required, 0);
	assert_int_equal(s.ev[0].page.tid, (int)syscall(SYS_gettid));
	/* Thread context: the dispatcher, not the thread that got SIGBUS. */
	assert_false(pthread_equal(s.thread, pthread_self()));
	/* The process goes on, and the query knows the page is bad. */
	assert_int_equal(mn_badmem_query(mem, 4 * pagesz(), pg, 4), 1);
	assert_int_equal(pg[0].address, (uintptr_t)(mem + pagesz()));
	assert_int_equal(mn_badmem_query(mem, pagesz(), NULL, 0), 0);
	assert_int_equal(mn_badmem_query(mem + pagesz() + 4095, 1, NULL, 0), 1);
	/* A huge page reports its whole extent. */
	assert_int_equal(mn_badmem_inject(0, mem + 3 * pagesz(), 21, 0), 0);
	assert_true(wait_n(&s, 2));
	assert_int_equal(s.ev[1].page.length, 2u << 20);
	assert_int_equal(s.ev[1].page.address,
			 (uintptr_t)(mem + 3 * pagesz()) & ~((2ull << 20) - 1));
	/* The same page again is not a new bad range. */
	assert_int_equal(mn_badmem_inject(0, mem + pagesz(), 12, 0), 0);
	/* A later subscriber hears of the earlier ranges once. */
	struct seen s2;
	mn_sub *sub2;
	seen_init(&s2);
	assert_int_equal(mn_badmem_subscribe(&o, on_bad, &s2, &sub2), 0);
	assert_true(wait_n(&s2, 2));
	assert_int_equal(mn_unsubscribe(sub2), 0);
	assert_int_equal(mn_test_rec_count(&s.rec), 2);
	assert_int_equal(mn_unsubscribe(sub), 0);
	munmap(mem, 4 * pagesz());
}

/* --- action required ------------------------------------------------------ */

static _Atomic int ar_calls;

static int recover(const struct mn_bad_page *pg, siginfo_t *si, void *uc,
		   int handled, void *ctx)
{
	(void)si;
	(void)uc;
	(void)ctx;
	atomic_fetch_add(&ar_calls, 1);
	if (handled)
		return 0;
	/* Signal context: replace the poisoned page with a fresh one. */
	return mn_badmem_replace((void *)(uintptr_t)pg->address, pg->length) == 0;
}

static void test_ar_recovered(void **state)
{
	mn_sub *ar;
	char *mem;

	(void)state;
	mem = mmap(NULL, pagesz(), PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(mem != MAP_FAILED);
	memset(mem, 0x5a, pagesz());
	assert_int_equal(mn_badmem_register_ar(recover, NULL, &ar), 0);
	/* This thread touched poison: the SIGBUS arrives before the call
	   returns, the handler replaces the page, and we go on. */
	assert_int_equal(mn_badmem_inject(0, mem + 8, 12, 1), 0);
	assert_int_equal(atomic_load(&ar_calls), 1);
	assert_int_equal(mem[8], 0);       /* fresh zero-filled page */
	mem[8] = 7;                        /* same protection: writable */
	assert_int_equal(mem[8], 7);
	/* The query lists this page as bad (earlier tests' ranges, such as
	   a 2 MiB extent, may overlap too). */
	struct mn_bad_page pg[8];
	int n = mn_badmem_query(mem, pagesz(), pg, 8), found = 0;
	assert_true(n >= 1 && n <= 8);
	for (int i = 0; i < n; i++)
		if (pg[i].address == (uintptr_t)mem && pg[i].length == 4096 &&
		    pg[i].action_required)
			found++;
	assert_int_equal(found, 1);
	assert_int_equal(mn_unsubscribe(ar), 0);
	munmap(mem, pagesz());
}

/* In the child: an AR that nothing handles. */
static void unhandled_ar_child(void *arg)
{
	MN_OPTS(mn_badmem_opts, o, .flags = MN_BADMEM_NO_SYSTEM);
	static struct seen s;
	mn_sub *sub;

	(void)arg;
	seen_init(&s);
	if (mn_badmem_subscribe(&o, on_bad, &s, &sub))
		_exit(70);
	mn_badmem_inject(0, &s, 12, 1);
}

static void test_ar_unhandled_kills(void **state)
{
	char out[512], why[120];
	int status;

	(void)state;
	status = mn_test_child(unhandled_ar_child, NULL, SIGBUS, out, sizeof(out));
	if (!mn_test_died_by(status, SIGBUS, why, sizeof(why)))
		fail_msg("child %s: %s", why, out);
	assert_non_null(strstr(out, "memnotify: unhandled SIGBUS (code 4)"));
	print_message("  %s", out);
}

/* --- other SIGBUS codes pass on ------------------------------------------ */

static _Atomic int other_bus;

static int count_bus(int sig, siginfo_t *si, void *uc, int handled, void *ctx)
{
	(void)sig;
	(void)uc;
	(void)ctx;
	if (si->si_code == BUS_ADRERR) {
		atomic_fetch_add(&other_bus, 1);
		return 1;
	}
	(void)handled;
	return 0;
}

static void test_other_sigbus_passes(void **state)
{
	MN_OPTS(mn_badmem_opts, o, .flags = MN_BADMEM_NO_SYSTEM);
	struct seen s;
	mn_sub *sub, *chain;
	siginfo_t si;

	(void)state;
	seen_init(&s);
	assert_int_equal(mn_signal_register(SIGBUS, count_bus, NULL, &chain), 0);
	assert_int_equal(mn_badmem_subscribe(&o, on_bad, &s, &sub), 0);
	int before = mn_badmem_query((void *)4096, (size_t)-1 - 8192, NULL, 0);
	memset(&si, 0, sizeof(si));
	si.si_signo = SIGBUS;
	si.si_code = BUS_ADRERR;
	si.si_addr = &si;
	assert_int_equal(syscall(SYS_rt_tgsigqueueinfo, getpid(),
				 syscall(SYS_gettid), SIGBUS, &si),
			 0);
	assert_int_equal(atomic_load(&other_bus), 1);
	/* Not a bad page. */
	assert_int_equal(mn_badmem_query((void *)4096, (size_t)-1 - 8192, NULL, 0),
			 before);
	assert_int_equal(mn_unsubscribe(sub), 0);
	assert_int_equal(mn_unsubscribe(chain), 0);
}

/* --- a full table is reported, in a child (the table is the process's) --- */

static void test_full_table_reported(void **state)
{
	pid_t pid;
	int status;

	(void)state;
	pid = fork();
	if (pid == 0) {
		MN_OPTS(mn_badmem_opts, o, .flags = MN_BADMEM_NO_SYSTEM);
		static struct seen s;
		mn_sub *sub;
		int existing;

		alarm(30);
		seen_init(&s);
		if (mn_badmem_subscribe(&o, on_bad, &s, &sub))
			_exit(70);
		existing = mn_badmem_query((void *)4096, (size_t)-1 - 8192, NULL, 0);
		/* 4096 distinct ranges fit; the rest are lost, and said so. */
		for (int i = 0; i < 4096 - existing + 3; i++)
			mn_badmem_inject(0, (void *)(uintptr_t)(0x100000000ull +
							(uint64_t)i * 4096), 12, 0);
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		for (int t = 0; t < 500; t++) {
			mn_test_rec_lock(&s.rec);
			uint64_t lost = s.lost;
			pthread_mutex_unlock(&s.rec.lock);
			if (lost >= 3)
				break;
			nanosleep(&ts, NULL);
		}
		struct mn_stats st = { .sz = sizeof(st) };
		mn_stats(&st);
		if (s.lost != 3)
			_exit(71);
		if (st.events_lost < 3)
			_exit(72);
		if (mn_badmem_query((void *)4096, (size_t)-1 - 8192, NULL, 0) != 4096)
			_exit(73);
		_exit(0);
	}
	assert_true(waitpid(pid, &status, 0) == pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* --- early kill ------------------------------------------------------------ */

static bool thread_named(const char *name)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	bool found = false;

	while (d && (e = readdir(d))) {
		char path[300], comm[64] = "";
		FILE *f;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		if ((f = fopen(path, "r"))) {
			if (fgets(comm, sizeof(comm), f) && !strncmp(comm, name, strlen(name)))
				found = true;
			fclose(f);
		}
	}
	if (d)
		closedir(d);
	return found;
}

static void test_early_kill_thread(void **state)
{
	MN_OPTS(mn_badmem_opts, o, .flags = MN_BADMEM_EARLY_KILL | MN_BADMEM_NO_SYSTEM);
	struct mn_capability cap = { .sz = sizeof(cap) };
	struct seen s;
	mn_sub *sub;
	int err;

	(void)state;
	seen_init(&s);
	err = mn_badmem_subscribe(&o, on_bad, &s, &sub);
	if (err == -EINVAL) {
		print_message("skipped: prctl(PR_MCE_KILL) refused\n");
		skip();
	}
	assert_int_equal(err, 0);
	assert_true(thread_named("memnotify-mce"));
	mn_capability(MN_CAP_MCE_EARLY_KILL, &cap);
	print_message("  early kill: %s\n", cap.detail);
	assert_int_equal(mn_unsubscribe(sub), 0);
	/* The thread ends once nobody asks for early kill (bounded wait). */
	for (int i = 0; i < 200 && thread_named("memnotify-mce"); i++)
		usleep(10000);
	assert_false(thread_named("memnotify-mce"));
}

/* --- a real poisoned page, where the kernel allows it -------------------- */

static void test_real_hwpoison(void **state)
{
	struct mn_capability cap = { .sz = sizeof(cap) };
	int status;
	pid_t pid;

	(void)state;
	mn_capability(MN_CAP_HWPOISON_INJECT, &cap);
	if (!cap.supported) {
		print_message("skipped: no real poison here: %s\n", cap.detail);
		skip();
	}
	pid = fork();
	if (pid == 0) {
		static struct seen s;
		mn_sub *sub, *ar;
		char *p = mmap(NULL, pagesz(), PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uint64_t pm = 0;
		int fd, ok;
		seen_init(&s);
		alarm(30);
		p[0] = 1;
		/* The frame, to give it back afterwards (debugfs hwpoison). */
		fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && pread(fd, &pm, 8, (off_t)((uintptr_t)p / pagesz() * 8)) != 8)
			pm = 0;
		if (fd >= 0)
			close(fd);
		if (mn_badmem_subscribe(NULL, on_bad, &s, &sub) ||
		    mn_badmem_register_ar(recover, NULL, &ar))
			_exit(70);
		if (mn_badmem_inject_hwpoison(p) != 0)
			_exit(71);
		(void)*(volatile char *)p; /* AR (or the kernel killed us) */
		ok = wait_n(&s, 1);
		fd = open("/sys/kernel/debug/hwpoison/unpoison-pfn", O_WRONLY | O_CLOEXEC);
		if (fd >= 0 && (pm >> 63)) {
			char v[32];
			int n = snprintf(v, sizeof(v), "%llu\n",
					 (unsigned long long)(pm & ((1ull << 55) - 1)));
			if (write(fd, v, (size_t)n) != n)
				print_message("note: unpoison: %s\n", strerror(errno));
		}
		if (fd >= 0)
			close(fd);
		_exit(ok ? 0 : 72);
	}
	assert_true(waitpid(pid, &status, 0) == pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_bad_arguments(void **state)
{
	mn_sub *s;

	(void)state;
	assert_int_equal(mn_badmem_subscribe(NULL, NULL, NULL, &s), -EINVAL);
	assert_int_equal(mn_badmem_subscribe(NULL, on_bad, NULL, NULL), -EINVAL);
	MN_OPTS(mn_badmem_opts, o, .flags = 1u << 9);
	assert_int_equal(mn_badmem_subscribe(&o, on_bad, NULL, &s), -EINVAL);
	assert_int_equal(mn_badmem_register_ar(NULL, NULL, &s), -EINVAL);
	assert_int_equal(mn_badmem_query(&s, 0, NULL, 0), -EINVAL);
	assert_int_equal(mn_badmem_query((void *)-4096, 8192, NULL, 0), -EINVAL);
	assert_int_equal(mn_badmem_replace(NULL, 4096), -EINVAL);
	assert_int_equal(mn_badmem_replace(&s, 0), -EINVAL);
	assert_int_equal(mn_badmem_inject(0, &s, 60, 0), -EINVAL);
	assert_int_equal(mn_badmem_inject(0, &s, 12, 2), -EINVAL);
	assert_int_equal(mn_badmem_inject(-1, &s, 12, 0), -EINVAL);
	assert_int_equal(mn_badmem_inject_hwpoison(NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_ao_reaches_subscribers),
		cmocka_unit_test(test_ar_recovered),
		cmocka_unit_test(test_ar_unhandled_kills),
		cmocka_unit_test(test_other_sigbus_passes),
		cmocka_unit_test(test_early_kill_thread),
		cmocka_unit_test(test_real_hwpoison),
		cmocka_unit_test(test_full_table_reported),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
