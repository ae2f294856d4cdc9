/* SPDX-License-Identifier: MIT */
/*
 * The signal chain, on real signals and real faults: newest-first order and
 * the Handled rule, a handler that repairs a PROT_NONE fault, unhandled
 * faults ending a child by that signal after the one-line report, handlers
 * installed later through sigaction()/signal() chained behind,
 * unregistration (also from inside a handler), and a stress run of signals
 * on several threads while others register and unregister.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memnotify.h"

/* --- order and the Handled rule -------------------------------------- */

struct rec {
	int id;
	int ret;
};
static int calls[16];
static int handled_seen[16];
static _Atomic int ncalls;

static int record_fn(int sig, siginfo_t *si, void *uc, int handled, void *ctx)
{
	struct rec *r = ctx;
	int i = atomic_fetch_add(&ncalls, 1);

	(void)sig;
	(void)si;
	(void)uc;
	if (i < 16) {
		calls[i] = r->id;
		handled_seen[i] = handled;
	}
	return r->ret;
}

static void test_order_and_handled(void **state)
{
	struct rec r1 = { 1, 0 }, r2 = { 2, 1 }, r3 = { 3, 0 };
	mn_sub *s1, *s2, *s3;

	(void)state;
	assert_int_equal(mn_signal_register(SIGUSR1, record_fn, &r1, &s1), 0);
	assert_int_equal(mn_signal_register(SIGUSR1, record_fn, &r2, &s2), 0);
	assert_int_equal(mn_signal_register(SIGUSR1, record_fn, &r3, &s3), 0);
	atomic_store(&ncalls, 0);
	raise(SIGUSR1); /* delivered before raise() returns */
	/* Newest first; every handler called; Handled |= ret. */
	assert_int_equal(atomic_load(&ncalls), 3);
	assert_int_equal(calls[0], 3);
	assert_int_equal(calls[1], 2);
	assert_int_equal(calls[2], 1);
	assert_int_equal(handled_seen[0], 0);
	assert_int_equal(handled_seen[1], 0);
	assert_int_equal(handled_seen[2], 1);

	/* After unsubscribe returns, the handler is never called again. */
	assert_int_equal(mn_unsubscribe(s2), 0);
	atomic_store(&ncalls, 0);
	r1.ret = 1; /* keep the signal handled: SIGUSR1's default kills */
	raise(SIGUSR1);
	assert_int_equal(atomic_load(&ncalls), 2);
	assert_int_equal(calls[0], 3);
	assert_int_equal(calls[1], 1);
	assert_int_equal(mn_unsubscribe(s1), 0);
	assert_int_equal(mn_unsubscribe(s3), 0);
	assert_int_equal(mn_unsubscribe(s3), -ENOENT);
}

/* --- a handler that repairs a fault ---------------------------------- */

static char *guard_page;
static size_t page_size;
static _Atomic int fixes;

static int fix_guard(int sig, siginfo_t *si, void *uc, int handled, void *ctx)
{
	(void)sig;
	(void)uc;
	(void)ctx;
	if (handled)
		return 0;
	if ((char *)si->si_addr < guard_page ||
	    (char *)si->si_addr >= guard_page + page_size)
		return 0; /* not ours */
	mprotect(guard_page, page_size, PROT_READ | PROT_WRITE);
	atomic_fetch_add(&fixes, 1);
	return 1;
}

static _Atomic int observed;

static int observer(int sig, siginfo_t *si, void *uc, int handled, void *ctx)
{
	(void)sig;
	(void)si;
	(void)uc;
	(void)handled;
	(void)ctx;
	atomic_fetch_add(&observed, 1);
	return 0;
}

static void test_fault_repaired(void **state)
{
	mn_sub *fix, *obs;

	(void)state;
	page_size = (size_t)sysconf(_SC_PAGESIZE);
	guard_page = mmap(NULL, page_size, PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(guard_page != MAP_FAILED);
	assert_int_equal(mn_signal_register(SIGSEGV, fix_guard, NULL, &fix), 0);
	assert_int_equal(mn_signal_register(SIGSEGV, observer, NULL, &obs), 0);
	/* A real fault: the instruction is retried after the repair. */
	((volatile char *)guard_page)[7] = 42;
	assert_int_equal(((volatile char *)guard_page)[7], 42);
	assert_int_equal(atomic_load(&fixes), 1);
	assert_int_equal(atomic_load(&observed), 1); /* newest ran too */
	assert_int_equal(mn_unsubscribe(obs), 0);
	assert_int_equal(mn_unsubscribe(fix), 0);
	munmap(guard_page, page_size);
}

/* --- unhandled faults end a child by that signal ---------------------- */

static int decline(int sig, siginfo_t *si, void *uc, int handled, void *ctx)
{
	(void)sig;
	(void)si;
	(void)uc;
	(void)handled;
	(void)ctx;
	return 0;
}

static int do_segv(void)
{
	/* A page with no access: a real SIGSEGV (SEGV_ACCERR). */
	volatile int *p = mmap(NULL, 4096, PROT_NONE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return *p;
}

static int do_bus(void)
{
	/* A file mapping past the end of the file: SIGBUS (BUS_ADRERR). */
	char path[] = "/tmp/mn_sigbus_XXXXXX";
	int fd = mkstemp(path);
	unlink(path);
	if (fd < 0 || ftruncate(fd, 0) < 0)
		return -1;
	volatile char *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	return p[0];
}

/* The hardware's own trap, not UBSan's report of it. */
__attribute__((no_sanitize("integer-divide-by-zero")))
static int do_fpe(void)
{
	volatile int zero = 0, seven = 7;
	return seven / zero; /* a real idiv: SIGFPE (FPE_INTDIV) */
}

static int do_ill(void)
{
	__builtin_trap(); /* ud2 on x86: SIGILL */
	return 0;
}

static void expect_death(int sig, int (*fault)(void), bool with_handler)
{
	int pipefd[2], status;
	char out[512] = "";
	pid_t pid;

	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	if (pid == 0) {
		mn_sub *s;
		dup2(pipefd[1], STDERR_FILENO);
		/* No core files from the test's deliberate crashes. */
		struct rlimit rl = { 0, 0 };
		setrlimit(RLIMIT_CORE, &rl);
		/* cmocka catches crashes with its own handlers: the child
		   wants the process's plain default back. */
		signal(sig, SIG_DFL);
		if (with_handler && mn_signal_register(sig, decline, NULL, &s))
			_exit(70);
		if (!with_handler && mn_signal_register(SIGUSR1, decline, NULL, &s))
			_exit(71);
		fault();
		_exit(0); /* must not get here */
	}
	close(pipefd[1]);
	ssize_t n = read(pipefd[0], out, sizeof(out) - 1);
	if (n > 0)
		out[n] = '\0';
	close(pipefd[0]);
	assert_true(waitpid(pid, &status, 0) == pid);
	if (!WIFSIGNALED(status))
		fail_msg("child exited with %d, stderr: %s", WEXITSTATUS(status),
			 out);
	assert_int_equal(WTERMSIG(status), sig);
	if (with_handler) {
		/* The one-line report came first. */
		assert_non_null(strstr(out, "memnotify: unhandled "));
		print_message("  %s", out);
	}
}

static void test_unhandled_faults_kill(void **state)
{
	(void)state;
	expect_death(SIGSEGV, do_segv, true);
	expect_death(SIGBUS, do_bus, true);
	expect_death(SIGFPE, do_fpe, true);
	expect_death(SIGILL, do_ill, true);
	/* Without a chain on the signal, nothing changes. */
	expect_death(SIGSEGV, do_segv, false);
}

/* --- handlers set later through sigaction()/signal() ------------------ */

static _Atomic int app_calls, app2_calls, before_calls;

static void app_handler(int sig)
{
	(void)sig;
	atomic_fetch_add(&app_calls, 1);
}

static void app2_handler(int sig)
{
	(void)sig;
	atomic_fetch_add(&app2_calls, 1);
}

static void before_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	atomic_fetch_add(&before_calls, 1);
}

/* The kernel's own view of the disposition, past any interposer. */
static void *kernel_handler(int sig)
{
	struct {
		void *handler;
		unsigned long flags;
		void *restorer;
		uint64_t mask;
	} k;

	assert_int_equal(syscall(SYS_rt_sigaction, sig, NULL, &k, 8), 0);
	return k.handler;
}

static void test_later_sigaction_chained(void **state)
{
	struct sigaction sa, old;
	struct mn_capability cap = { .sz = sizeof(cap) };
	mn_sub *s;

	(void)state;
	mn_capability(MN_CAP_SIGNAL_INTERPOSE, &cap);
	if (!cap.supported) {
		print_message("skipped: %s\n", cap.detail);
		skip();
	}
	/* A handler the process had before memnotify took the signal. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = before_handler;
	sa.sa_flags = SA_SIGINFO;
	assert_int_equal(sigaction(SIGUSR2, &sa, NULL), 0);
	assert_int_equal(mn_signal_register(SIGUSR2, observer, NULL, &s), 0);
	atomic_store(&observed, 0);
	raise(SIGUSR2);
	assert_int_equal(atomic_load(&observed), 1);
	assert_int_equal(atomic_load(&before_calls), 1); /* the default */

	/* Set later with plain sigaction: chained behind, not replacing. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = app_handler;
	assert_int_equal(sigaction(SIGUSR2, &sa, &old), 0);
	assert_true((void *)old.sa_sigaction == (void *)before_handler);
	assert_true(kernel_handler(SIGUSR2) != (void *)app_handler);
	raise(SIGUSR2);
	assert_int_equal(atomic_load(&observed), 2);
	assert_int_equal(atomic_load(&app_calls), 1);
	assert_int_equal(atomic_load(&before_calls), 1);
	/* sigaction reports what the caller set. */
	assert_int_equal(sigaction(SIGUSR2, NULL, &old), 0);
	assert_true(old.sa_handler == app_handler);

	/* signal() too. */
	assert_true(signal(SIGUSR2, app2_handler) == app_handler);
	raise(SIGUSR2);
	assert_int_equal(atomic_load(&observed), 3);
	assert_int_equal(atomic_load(&app2_calls), 1);
	assert_int_equal(atomic_load(&app_calls), 1);
	assert_true(signal(SIGUSR2, SIG_IGN) == app2_handler);
	raise(SIGUSR2); /* ignored by the default, still seen by the chain */
	assert_int_equal(atomic_load(&observed), 4);
	assert_int_equal(mn_unsubscribe(s), 0);
	raise(SIGUSR2); /* empty chain: the default (SIG_IGN) */
	assert_int_equal(atomic_load(&observed), 4);
}

/* --- unregistering from inside a handler ------------------------------ */

static mn_sub *self_sub;
static _Atomic int self_calls, self_unsub_ret = 99;

static int self_remover(int sig, siginfo_t *si, void *uc, int handled, void *ctx)
{
	(void)sig;
	(void)si;
	(void)uc;
	(void)handled;
	(void)ctx;
	atomic_fetch_add(&self_calls, 1);
	/* Signal context: no lock, no wait, no free here. */
	atomic_store(&self_unsub_ret, mn_unsubscribe(self_sub));
	return 1;
}

static void test_unsubscribe_inside_handler(void **state)
{
	mn_sub *keep;
	struct rec r = { 9, 1 };

	(void)state;
	assert_int_equal(mn_signal_register(SIGUSR1, record_fn, &r, &keep), 0);
	assert_int_equal(mn_signal_register(SIGUSR1, self_remover, NULL, &self_sub), 0);
	raise(SIGUSR1);
	assert_int_equal(atomic_load(&self_calls), 1);
	assert_int_equal(atomic_load(&self_unsub_ret), 0);
	raise(SIGUSR1);
	assert_int_equal(atomic_load(&self_calls), 1); /* never again */
	/* The handle is gone once memnotify finished the removal. */
	assert_int_equal(mn_unsubscribe(self_sub), -ENOENT);
	assert_int_equal(mn_unsubscribe(keep), 0);
}

static void test_bad_arguments(void **state)
{
	mn_sub *s;

	(void)state;
	assert_int_equal(mn_signal_register(0, decline, NULL, &s), -EINVAL);
	assert_int_equal(mn_signal_register(SIGKILL, decline, NULL, &s), -EINVAL);
	assert_int_equal(mn_signal_register(SIGSTOP, decline, NULL, &s), -EINVAL);
	assert_int_equal(mn_signal_register(NSIG, decline, NULL, &s), -EINVAL);
	assert_int_equal(mn_signal_register(SIGUSR1, NULL, NULL, &s), -EINVAL);
	assert_int_equal(mn_signal_register(SIGUSR1, decline, NULL, NULL), -EINVAL);
}

/* --- stress: signals on 4 threads, registrations on 2 others ---------- */

#define SENDERS 4
static long per_thread;
static _Atomic long permanent_calls;
static _Atomic long late_calls;
static _Atomic int stop_churn;

struct churn_node {
	_Atomic int removed; /* set once unsubscribe returned */
	_Atomic long calls;
};

static int permanent(int sig, siginfo_t *si, void *uc, int handled, void *ctx)
{
	(void)sig;
	(void)si;
	(void)uc;
	(void)handled;
	(void)ctx;
	atomic_fetch_add_explicit(&permanent_calls, 1, memory_order_relaxed);
	return 1;
}

static int transient(int sig, siginfo_t *si, void *uc, int handled, void *ctx)
{
	struct churn_node *c = ctx;

	(void)sig;
	(void)si;
	(void)uc;
	(void)handled;
	if (atomic_load(&c->removed))
		atomic_fetch_add(&late_calls, 1);
	atomic_fetch_add_explicit(&c->calls, 1, memory_order_relaxed);
	return 0;
}

static void *sender(void *arg)
{
	(void)arg;
	for (long i = 0; i < per_thread; i++)
		pthread_kill(pthread_self(), SIGUSR1);
	return NULL;
}

static void *churner(void *arg)
{
	static struct churn_node nodes[2][64];
	struct churn_node *mine = nodes[(intptr_t)arg];
	long rounds = 0;

	while (!atomic_load(&stop_churn)) {
		struct churn_node *c = &mine[rounds % 64];
		mn_sub *s;
		atomic_store(&c->removed, 0);
		if (mn_signal_register(SIGUSR1, transient, c, &s) != 0)
			abort();
		sched_yield();
		if (mn_unsubscribe(s) != 0)
			abort();
		atomic_store(&c->removed, 1);
		rounds++;
	}
	return (void *)(intptr_t)rounds;
}

static void test_stress(void **state)
{
	pthread_t snd[SENDERS], ch[2];
	const char *env = getenv("MN_STRESS_SIGNALS");
	long total = env ? atol(env) : 1000000;
	mn_sub *perm;
	long rounds = 0;

	(void)state;
	per_thread = total / SENDERS;
	assert_int_equal(mn_signal_register(SIGUSR1, permanent, NULL, &perm), 0);
	atomic_store(&permanent_calls, 0);
	for (intptr_t i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&ch[i], NULL, churner, (void *)i), 0);
	for (int i = 0; i < SENDERS; i++)
		assert_int_equal(pthread_create(&snd[i], NULL, sender, NULL), 0);
	for (int i = 0; i < SENDERS; i++)
		pthread_join(snd[i], NULL);
	atomic_store(&stop_churn, 1);
	for (int i = 0; i < 2; i++) {
		void *r;
		pthread_join(ch[i], &r);
		rounds += (intptr_t)r;
	}
	/* Every signal reached the permanent handler exactly once. */
	assert_int_equal(atomic_load(&permanent_calls), per_thread * SENDERS);
	/* No transient handler ran after its unsubscribe returned. */
	assert_int_equal(atomic_load(&late_calls), 0);
	print_message("  %ld signals, %ld register/unregister rounds\n",
		      per_thread * SENDERS, rounds);
	assert_true(rounds > 0);
	assert_int_equal(mn_unsubscribe(perm), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_order_and_handled),
		cmocka_unit_test(test_fault_repaired),
		cmocka_unit_test(test_unhandled_faults_kill),
		cmocka_unit_test(test_later_sigaction_chained),
		cmocka_unit_test(test_unsubscribe_inside_handler),
		cmocka_unit_test(test_stress),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
