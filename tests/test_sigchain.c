/* SPDX-License-Identifier: MIT */
/*
 * The signal chain, on real signals and real faults: newest-first order and
 * the Handled rule, a handler that repairs a PROT_NONE fault, unhandled
 * faults ending a child by that signal after the one-line report, handlers
 * installed later through sigaction()/signal() chained behind,
 * unregistration (also from inside a handler), a stress run of signals
 * on several threads while others register and unregister; stop signals
 * (the chain survives a stop and SIGCONT), the default handler's
 * SA_RESETHAND, SA_NODEFER and SA_RESTART, the report and its switches,
 * and fork() while another thread is inside sigaction().
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

#include "helpers.h"
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

struct death {
	int sig;
	int (*fault)(void);
	bool with_handler;
};

/* In the child (cmocka's crash catcher gone: the plain default back). */
static void fault_child(void *arg)
{
	const struct death *d = arg;
	mn_sub *s;

	if (d->with_handler && mn_signal_register(d->sig, decline, NULL, &s))
		_exit(70);
	if (!d->with_handler && mn_signal_register(SIGUSR1, decline, NULL, &s))
		_exit(71);
	d->fault();
	_exit(0); /* must not get here */
}

static void expect_death(int sig, int (*fault)(void), bool with_handler)
{
	struct death d = { sig, fault, with_handler };
	char out[512], why[120];
	int status = mn_test_child(fault_child, &d, sig, out, sizeof(out));

	if (!mn_test_died_by(status, sig, why, sizeof(why)))
		fail_msg("child %s; stderr: %s", why, out);
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

/* --- helpers for tests that run in a child ---------------------------- */

/* In a child: no cmocka there, an exit code and a line on stderr. */
#define CHILD_CHECK(expr)                                                     \
	do {                                                                  \
		if (!(expr)) {                                                \
			dprintf(STDERR_FILENO, "%s:%d: %s failed\n", __FILE__, \
				__LINE__, #expr);                             \
			_exit(1);                                             \
		}                                                             \
	} while (0)

static uint64_t deadline_after_ms(int ms)
{
	return mn_test_now_usec() + (uint64_t)ms * 1000;
}

/* waitpid(@options) with a deadline: the child is killed and the test
   fails if nothing happens in @timeout_ms. */
static int wait_child(pid_t pid, int options, int timeout_ms)
{
	uint64_t deadline = deadline_after_ms(timeout_ms);
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, options | WNOHANG);
		if (r == pid)
			return status;
		assert_int_equal(r, 0);
		if (mn_test_now_usec() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("child %d: no state change in %d ms", (int)pid,
				 timeout_ms);
		}
		usleep(1000);
	}
}

/* Read what is there (up to @len - 1 bytes) within @timeout_ms, until EOF
   if @to_eof.  Returns the count; @buf is NUL-terminated. */
static size_t read_within(int fd, char *buf, size_t len, int timeout_ms,
			  bool to_eof)
{
	uint64_t deadline = deadline_after_ms(timeout_ms);
	size_t got = 0;

	while (got < len - 1) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = (int64_t)(deadline - mn_test_now_usec()) / 1000;
		if ((int64_t)(deadline - mn_test_now_usec()) <= 0 ||
		    poll(&pfd, 1, (int)(left > 0 ? left : 1)) == 0)
			break;
		ssize_t n = read(fd, buf + got, len - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (!to_eof)
			break;
	}
	buf[got] = '\0';
	return got;
}

/* Fork @body into a child and expect it to exit 0 within @timeout_ms. */
static void run_in_child(void (*body)(void), int timeout_ms)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		body();
		_exit(0);
	}
	status = wait_child(pid, 0, timeout_ms);
	if (WIFSIGNALED(status))
		fail_msg("child killed by signal %d", WTERMSIG(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static bool interposing(void)
{
	struct mn_capability cap = { .sz = sizeof(cap) };

	mn_capability(MN_CAP_SIGNAL_INTERPOSE, &cap);
	if (!cap.supported)
		print_message("skipped: %s\n", cap.detail);
	return cap.supported;
}

/* --- stop signals: the process stops, the chain stays ---------------- */

static int stop_report_fd = -1;

static void tstp_app_handler(int sig)
{
	(void)sig;
	if (write(stop_report_fd, "h", 1) < 0) {
		/* the parent sees no 'h' and fails */
	}
}

/* In a child: wait (at most 10 s) for the byte @want on @fd.  Polls with
   usleep: ThreadSanitizer holds a signal back while its thread sleeps in
   read(), but not in usleep(). */
static void child_wait_byte(int fd, char want)
{
	uint64_t deadline = deadline_after_ms(10000);
	char c;

	CHILD_CHECK(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
	for (;;) {
		ssize_t n = read(fd, &c, 1);
		if (n == 1) {
			CHILD_CHECK(c == want);
			return;
		}
		CHILD_CHECK(n < 0 && (errno == EAGAIN || errno == EINTR));
		CHILD_CHECK(mn_test_now_usec() < deadline);
		usleep(1000);
	}
}

static void test_stop_signal_keeps_chain(void **state)
{
	int rep[2], go[2], err[2], status;
	char buf[512];
	pid_t pid;

	(void)state;
	if (!interposing())
		skip();
	assert_int_equal(pipe(rep), 0);
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(err), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sigaction sa;
		mn_sub *s;

		dup2(err[1], STDERR_FILENO);
		stop_report_fd = rep[1];
		CHILD_CHECK(mn_signal_register(SIGTSTP, decline, NULL, &s) == 0);
		CHILD_CHECK(write(rep[1], "r", 1) == 1);
		/* Stopped and continued in here. */
		child_wait_byte(go[0], 'i');
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = tstp_app_handler;
		sa.sa_flags = SA_RESTART;
		CHILD_CHECK(sigaction(SIGTSTP, &sa, NULL) == 0);
		/* Still memnotify's in the kernel, after the stop. */
		CHILD_CHECK(kernel_handler(SIGTSTP) != (void *)SIG_DFL);
		CHILD_CHECK(kernel_handler(SIGTSTP) != (void *)tstp_app_handler);
		CHILD_CHECK(write(rep[1], "i", 1) == 1);
		child_wait_byte(go[0], 'q');
		_exit(0);
	}
	close(rep[1]);
	close(go[0]);
	close(err[1]);
	assert_int_equal(read_within(rep[0], buf, 2, 5000, false), 1);
	assert_int_equal(buf[0], 'r');

	/* Declined, SIG_DFL: the child stops, with the report line. */
	assert_int_equal(kill(pid, SIGTSTP), 0);
	status = wait_child(pid, WUNTRACED, 5000);
	assert_true(WIFSTOPPED(status));
	read_within(err[0], buf, sizeof(buf), 2000, false);
	print_message("  %s", buf);
	assert_non_null(strstr(buf, "memnotify: unhandled SIGTSTP (code 0)"));
	assert_non_null(strstr(buf, ": default action (stop)\n"));

	/* Continued: the program's later handler is chained and runs. */
	assert_int_equal(kill(pid, SIGCONT), 0);
	assert_int_equal(write(go[1], "i", 1), 1);
	assert_int_equal(read_within(rep[0], buf, 2, 5000, false), 1);
	assert_int_equal(buf[0], 'i');
	assert_int_equal(kill(pid, SIGTSTP), 0);
	assert_int_equal(read_within(rep[0], buf, 2, 5000, false), 1);
	assert_int_equal(buf[0], 'h');
	assert_int_equal(write(go[1], "q", 1), 1);
	status = wait_child(pid, 0, 5000);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* Nothing more was reported: the program's handler took it. */
	assert_int_equal(read_within(err[0], buf, sizeof(buf), 2000, true), 0);
	close(rep[0]);
	close(go[1]);
	close(err[0]);
}

/* SIGCHLD, SIGURG, SIGWINCH, SIGCONT: SIG_DFL ignores them, chained too. */
static void ignore_defaults_body(void)
{
	static const int sigs[] = { SIGCHLD, SIGURG, SIGWINCH, SIGCONT };
	mn_sub *s;

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		CHILD_CHECK(signal(sigs[i], SIG_DFL) != SIG_ERR);
		CHILD_CHECK(mn_signal_register(sigs[i], decline, NULL, &s) == 0);
		CHILD_CHECK(raise(sigs[i]) == 0);
	}
}

static void test_ignore_defaults_stay_ignore(void **state)
{
	(void)state;
	run_in_child(ignore_defaults_body, 5000);
}

/* --- the default handler's flags ------------------------------------- */

static int crash_fd = -1;

static void crash_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	/* Returns: the access faults again, now with SIG_DFL. */
	if (write(crash_fd, "c", 1) < 0) {
		/* the parent counts */
	}
}

static void test_resethand_runs_once(void **state)
{
	int rep[2], status;
	char buf[64];
	pid_t pid;

	(void)state;
	if (!interposing())
		skip();
	assert_int_equal(pipe(rep), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = { 0, 0 };
		struct sigaction sa;
		mn_sub *s;

		setrlimit(RLIMIT_CORE, &rl);
		close(rep[0]);
		crash_fd = rep[1];
		signal(SIGSEGV, SIG_DFL); /* cmocka's own, out */
		CHILD_CHECK(mn_signal_register(SIGSEGV, decline, NULL, &s) == 0);
		/* A crash handler installed later, through sigaction(). */
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = crash_handler;
		sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
		CHILD_CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
		do_segv();
		_exit(0); /* must not get here */
	}
	close(rep[1]);
	status = wait_child(pid, 0, 10000);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSEGV);
	assert_string_equal(
		(read_within(rep[0], buf, sizeof(buf), 2000, true), buf), "c");
	close(rep[0]);
}

static _Atomic int nested_calls, calls_after_raise;

static void nested_handler(int sig)
{
	if (atomic_fetch_add(&nested_calls, 1) == 0) {
		raise(sig);
		/* With SA_NODEFER it was delivered inside raise(). */
		atomic_store(&calls_after_raise, atomic_load(&nested_calls));
	}
}

static void nodefer_body(void)
{
	struct sigaction sa;
	mn_sub *s;

	/* Before memnotify takes the signal: saved as the default handler. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = nested_handler;
	sa.sa_flags = SA_NODEFER;
	CHILD_CHECK(sigaction(SIGUSR2, &sa, NULL) == 0);
	CHILD_CHECK(mn_signal_register(SIGUSR2, decline, NULL, &s) == 0);
	CHILD_CHECK(raise(SIGUSR2) == 0);
	CHILD_CHECK(atomic_load(&nested_calls) == 2);
	CHILD_CHECK(atomic_load(&calls_after_raise) == 2);

	/* Without SA_NODEFER (set through sigaction() now, if it reaches
	   memnotify's), the second one waits until the first returns. */
	if (!interposing())
		return;
	atomic_store(&nested_calls, 0);
	sa.sa_flags = 0;
	CHILD_CHECK(sigaction(SIGUSR2, &sa, NULL) == 0);
	CHILD_CHECK(raise(SIGUSR2) == 0);
	CHILD_CHECK(atomic_load(&nested_calls) == 2);
	CHILD_CHECK(atomic_load(&calls_after_raise) == 1);
}

static void test_nodefer_nests(void **state)
{
	(void)state;
	run_in_child(nodefer_body, 5000);
}

static _Atomic int restart_calls;
static _Atomic int reader_ready;
static _Atomic pid_t reader_tid;

static void restart_handler(int sig)
{
	(void)sig;
	atomic_fetch_add(&restart_calls, 1);
}

struct reader {
	int fd;
	ssize_t ret;
	int err;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	char c;

	atomic_store(&reader_tid, (pid_t)syscall(SYS_gettid));
	atomic_store(&reader_ready, 1);
	r->ret = read(r->fd, &c, 1);
	r->err = errno;
	return NULL;
}

/* True once thread @tid sleeps in read(2) (its /proc syscall file). */
static bool blocked_in_read(pid_t tid)
{
	char path[64], buf[128] = "";
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 && atol(buf) == SYS_read && buf[0] >= '0' && buf[0] <= '9';
}

/* True while @sig is pending for thread @tid (its /proc status file). */
static bool pending_for(pid_t tid, int sig)
{
	char path[64], buf[2048];
	unsigned long long set = 0;
	const char *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	p = strstr(buf, "\nSigPnd:");
	if (p)
		set = strtoull(p + 8, NULL, 16);
	return set & (1ull << (sig - 1));
}

/* A read() on an empty pipe, interrupted by SIGUSR1 once it sleeps; @wake
   writes a byte once the signal was taken (for a restarted read). */
static void interrupted_read(struct reader *r, bool wake)
{
	uint64_t deadline = deadline_after_ms(5000);
	int p[2], before = atomic_load(&restart_calls);
	pthread_t t;

	CHILD_CHECK(pipe(p) == 0);
	r->fd = p[0];
	atomic_store(&reader_ready, 0);
	CHILD_CHECK(pthread_create(&t, NULL, reader_main, r) == 0);
	while (!atomic_load(&reader_ready) ||
	       !blocked_in_read(atomic_load(&reader_tid))) {
		CHILD_CHECK(mn_test_now_usec() < deadline);
		usleep(1000);
	}
	CHILD_CHECK(pthread_kill(t, SIGUSR1) == 0);
	/* Taken: the handler ran, or the kernel delivered the signal and
	   the read sleeps again (restarted; ThreadSanitizer runs the
	   handler only when the read returns). */
	if (wake) {
		while (atomic_load(&restart_calls) == before &&
		       (pending_for(atomic_load(&reader_tid), SIGUSR1) ||
			!blocked_in_read(atomic_load(&reader_tid)))) {
			CHILD_CHECK(mn_test_now_usec() < deadline);
			usleep(1000);
		}
		/* The kernel chose restart or EINTR before the handler. */
		CHILD_CHECK(write(p[1], "w", 1) == 1);
	}
	CHILD_CHECK(pthread_join(t, NULL) == 0);
	CHILD_CHECK(atomic_load(&restart_calls) == before + 1);
	close(p[0]);
	close(p[1]);
}

static void restart_body(void)
{
	struct sigaction sa;
	struct reader r;
	mn_sub *s;

	CHILD_CHECK(mn_signal_register(SIGUSR1, decline, NULL, &s) == 0);
	/* Without SA_RESTART: the read fails with EINTR. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = restart_handler;
	CHILD_CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	interrupted_read(&r, false);
	CHILD_CHECK(r.ret == -1 && r.err == EINTR);
	/* With SA_RESTART: restarted, it returns the byte written later. */
	sa.sa_flags = SA_RESTART;
	CHILD_CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	interrupted_read(&r, true);
	CHILD_CHECK(r.ret == 1);
	/* And without again. */
	sa.sa_flags = 0;
	CHILD_CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	interrupted_read(&r, false);
	CHILD_CHECK(r.ret == -1 && r.err == EINTR);
}

static void test_restart_follows_default(void **state)
{
	(void)state;
	if (!interposing())
		skip();
	run_in_child(restart_body, 20000);
}

/* --- the report and its switches -------------------------------------- */

/* Re-executed as "test_sigchain --segv-child": the environment is read at
   start. */
static int segv_child(void)
{
	mn_sub *s;

	signal(SIGSEGV, SIG_DFL);
	if (mn_signal_register(SIGSEGV, decline, NULL, &s))
		return 70;
	return do_segv();
}

/* A child that dies of an unhandled SIGSEGV; @how: 0 as is, 1 after
   mn_signal_report(0), 2 with MEMNOTIFY_SIGNAL_REPORT=0.  Returns whether
   the report line was on its stderr. */
static bool segv_reported(int how)
{
	int err[2], status;
	char out[512];
	pid_t pid;

	assert_int_equal(pipe(err), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = { 0, 0 };
		setrlimit(RLIMIT_CORE, &rl);
		dup2(err[1], STDERR_FILENO);
		if (how == 2) {
			char *argv[] = { (char *)"test_sigchain",
					 (char *)"--segv-child", NULL };
			setenv("MEMNOTIFY_SIGNAL_REPORT", "0", 1);
			execv("/proc/self/exe", argv);
			_exit(72);
		}
		if (how == 1 && mn_signal_report(0) != 1)
			_exit(73);
		_exit(segv_child());
	}
	close(err[1]);
	read_within(err[0], out, sizeof(out), 10000, true);
	close(err[0]);
	status = wait_child(pid, 0, 10000);
	if (!WIFSIGNALED(status))
		fail_msg("child exited with %d, stderr: %s", WEXITSTATUS(status),
			 out);
	assert_int_equal(WTERMSIG(status), SIGSEGV);
	return strstr(out, "memnotify: unhandled SIGSEGV") != NULL;
}

static void test_report_switch(void **state)
{
	(void)state;
	assert_int_equal(mn_signal_report(2), -EINVAL);
	assert_int_equal(mn_signal_report(-1), -EINVAL);
	assert_int_equal(mn_signal_report(0), 1);
	assert_int_equal(mn_signal_report(0), 0);
	assert_int_equal(mn_signal_report(1), 0);
	assert_int_equal(mn_signal_report(1), 1);
	assert_true(segv_reported(0));
	assert_false(segv_reported(1));
	assert_false(segv_reported(2));
}

/* --- fork() while another thread is inside sigaction() ---------------- */

static _Atomic int stop_flipping;

static void flip_handler(int sig)
{
	(void)sig;
}

static void *flipper(void *arg)
{
	struct sigaction sa;

	(void)arg;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = flip_handler;
	/* Alternating SA_RESTART: memnotify's own action is installed again
	   each time, inside the writer's section. */
	for (unsigned long i = 0; !atomic_load(&stop_flipping); i++) {
		sa.sa_flags = (i & 1) ? SA_RESTART : 0;
		sigaction(SIGUSR2, &sa, NULL);
	}
	return NULL;
}

static void fork_body(void)
{
	pthread_t t;
	mn_sub *s;

	CHILD_CHECK(mn_signal_register(SIGUSR2, decline, NULL, &s) == 0);
	CHILD_CHECK(pthread_create(&t, NULL, flipper, NULL) == 0);
	for (int i = 0; i < 200; i++) {
		uint64_t deadline = deadline_after_ms(5000);
		int status;
		pid_t pid = fork(), r;

		CHILD_CHECK(pid >= 0);
		if (pid == 0) {
			struct sigaction sa;
			memset(&sa, 0, sizeof(sa));
			sa.sa_handler = SIG_IGN;
			sigaction(SIGUSR2, &sa, NULL);
			_exit(0);
		}
		while ((r = waitpid(pid, &status, WNOHANG)) == 0) {
			if (mn_test_now_usec() > deadline) {
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				dprintf(STDERR_FILENO, "fork %d: the child hung "
					"in sigaction()\n", i);
				_exit(2);
			}
			usleep(200);
		}
		CHILD_CHECK(r == pid && WIFEXITED(status) &&
			    WEXITSTATUS(status) == 0);
	}
	atomic_store(&stop_flipping, 1);
	pthread_join(t, NULL);
}

static void test_fork_during_sigaction(void **state)
{
	(void)state;
	if (!interposing())
		skip();
	run_in_child(fork_body, 100000);
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

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--segv-child"))
		return segv_child();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_order_and_handled),
		cmocka_unit_test(test_fault_repaired),
		cmocka_unit_test(test_unhandled_faults_kill),
		cmocka_unit_test(test_later_sigaction_chained),
		cmocka_unit_test(test_unsubscribe_inside_handler),
		cmocka_unit_test(test_stop_signal_keeps_chain),
		cmocka_unit_test(test_ignore_defaults_stay_ignore),
		cmocka_unit_test(test_resethand_runs_once),
		cmocka_unit_test(test_nodefer_nests),
		cmocka_unit_test(test_restart_follows_default),
		cmocka_unit_test(test_report_switch),
		cmocka_unit_test(test_fork_during_sigaction),
		cmocka_unit_test(test_stress),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
