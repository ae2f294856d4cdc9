/* SPDX-License-Identifier: MIT */
/*
 * The signal chain (KeRegisterNmiCallback semantics) and the interposition
 * of sigaction()/signal() that keeps it in place.
 *
 * Per signal: a chain of handlers, newest first; the "default handler"
 * (the disposition the process had before, or set later through the
 * interposed sigaction), kept under a seqlock so that the signal handler
 * reads it without a lock; and whether memnotify's handler is installed.
 *
 * Everything reachable from handler() is async-signal-safe: atomics, the
 * chain walk, write(2), sigaction through the C library's entry point,
 * pthread_sigmask, rt_tgsigqueueinfo, tgkill.  No allocation, no stdio, no
 * lazily allocated TLS, and no lock but one: a default handler with
 * SA_RESETHAND is reset under the slot's writer flag, which a handler can
 * take without waiting on its own thread (see slot_wlock).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../core/core.h"
#include "sigchain.h"

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);

struct sigslot {
	struct mn__chain chain;    /* newest first */
	bool chain_ready;          /* core lock */
	_Atomic bool installed;
	/* The default handler, double-buffered: seq counts half-writes, and
	   dfl[(seq >> 1) & 1] is the current one, also while a writer (seq
	   odd) fills the other.  So a reader never waits for a writer, and a
	   writer that vanished half-way (fork) leaves a whole current copy. */
	_Atomic unsigned int seq;
	struct sigaction dfl[2];
	int kflags;                /* wlock: mirrored flags of ours (kflags_of) */
	atomic_flag wlock;         /* writers of dfl / installation */
};

struct sigsub {
	struct mn_sub sub;
	mn_signal_fn fn;
	void *ctx;
	int sig;
};

static struct sigslot slots[NSIG];
static sigaction_fn real_sigaction;
static bool interpose_off;
/* The program's sigaction() calls reach ours: asked at load time, not in
   the capability probe, which runs in a once that a module constructor
   (the loader's lock held) may wait for. */
static bool interposing;

/* --- the C library's sigaction ------------------------------------------ */

/* The load-time check's query (see reaches_us): its @oldact is this
   struct, an address no other caller passes, counted in probe_calls. */
static struct sigaction probe_old;
static _Atomic unsigned int probe_calls;

/*
 * Whether the program's sigaction() calls reach ours.  Not by comparing
 * addresses: inside this library `sigaction` is resolved through the same
 * global scope as the program's reference, so loaded with RTLD_LOCAL (ctypes)
 * or after the C library both would name the C library's, and an
 * interceptor (a sanitizer's) in front of ours would hide it.  So the
 * definition the program resolves is called with a query (SIGURG, no new
 * action: interceptors pass it on), and we look whether it came through
 * ours.
 */
MN__NO_TSAN static bool reaches_us(void)
{
	sigaction_fn first = (sigaction_fn)dlsym(RTLD_DEFAULT, "sigaction");
	unsigned int before = atomic_load(&probe_calls);
	int saved = errno;

	if (!first)
		return false;
	(void)first(SIGURG, NULL, &probe_old);
	errno = saved;
	return atomic_load(&probe_calls) != before;
}

/* Also called before our constructor, from the first sigaction() that
   reaches us (a sanitizer's runtime initialising): only what that needs. */
MN__NO_TSAN static void sigchain_resolve(void)
{
	const char *off = secure_getenv("MEMNOTIFY_NO_INTERPOSE");

	interpose_off = off && *off && *off != '0';
	/* The next definition after ours: the C library's (or a sanitizer's
	   interceptor in front of it). */
	real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
	if (!real_sigaction)
		real_sigaction = (sigaction_fn)dlsym(RTLD_DEFAULT, "__sigaction");
}

MN__NO_TSAN __attribute__((constructor)) static void sigchain_init(void)
{
	sigchain_resolve();
	interposing = reaches_us();
}

MN__NO_TSAN static int libc_sigaction(int sig, const struct sigaction *act,
			  struct sigaction *old)
{
	if (MN__UNLIKELY(!real_sigaction))
		sigchain_resolve();
	return real_sigaction(sig, act, old);
}

bool mn__sigchain_interposing(void)
{
	/* Our sigaction() is the one the program's calls reach. */
	return !interpose_off && interposing;
}

/* --- the default handler, under a sequence count --------------------------- */

/*
 * Writers of a slot (its default handler, the installation of memnotify's
 * action) take the slot's spin flag with every signal blocked on their
 * thread, and hold it over a bounded section that waits for nothing: a copy
 * of a struct sigaction and at most one sigaction system call.  So:
 * - a signal handler never runs on a thread that holds the flag (the holder
 *   has all signals blocked; a synchronous fault there is not delivered to
 *   a handler: the kernel kills the process), so a handler that takes the
 *   flag (SA_RESETHAND, dfl_take_oneshot) never spins on its own thread;
 * - a flag held by another thread is released after that bounded section,
 *   whatever this thread does (it never needs this thread to progress);
 * - in a fork child, where the holder does not exist, the atfork child
 *   handler clears it (sigchain_atfork_child).
 * Async-signal-safe: pthread_sigmask, atomics, sched_yield.
 */
MN__NO_TSAN static void slot_wlock(struct sigslot *s, sigset_t *saved)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, saved);
	while (atomic_flag_test_and_set_explicit(&s->wlock, memory_order_acquire))
		sched_yield();
}

MN__NO_TSAN static void slot_wunlock(struct sigslot *s, const sigset_t *saved)
{
	atomic_flag_clear_explicit(&s->wlock, memory_order_release);
	pthread_sigmask(SIG_SETMASK, saved, NULL);
}

/* wlock held: the current default handler. */
MN__NO_TSAN static struct sigaction *dfl_current(struct sigslot *s)
{
	unsigned int seq = atomic_load_explicit(&s->seq, memory_order_relaxed);

	return &s->dfl[(seq >> 1) & 1u];
}

/* wlock held: fill the other copy, then make it the current one. */
MN__NO_TSAN static void dfl_write(struct sigslot *s, const struct sigaction *act)
{
	/* The acquire half keeps the copy below after the odd count. */
	unsigned int seq = atomic_fetch_add_explicit(&s->seq, 1,
						     memory_order_acq_rel);

	s->dfl[((seq >> 1) + 1) & 1u] = *act;
	atomic_fetch_add_explicit(&s->seq, 1, memory_order_release);
}

/* Async-signal-safe read of the default handler; never waits for a
   writer, retries only if a second write began on the copy it read. */
static void dfl_read(struct sigslot *s, struct sigaction *out)
{
	unsigned int a, b;

	do {
		a = atomic_load_explicit(&s->seq, memory_order_acquire);
		__builtin_memcpy(out, &s->dfl[(a >> 1) & 1u], sizeof(*out));
		/* A read-modify-write with release order keeps the copy above
		   before the second read of seq (Boehm's seqlock reader),
		   without a bare fence. */
		b = atomic_fetch_add_explicit(&s->seq, 0, memory_order_acq_rel);
		/* dfl[(a >> 1) & 1] is overwritten only from count
		   (a | 1) + 1 on. */
	} while (b - (a & ~1u) > 1u);
}

/* A handler function, not SIG_DFL or SIG_IGN. */
static bool is_handler(const struct sigaction *a)
{
	return a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN;
}

/*
 * The flags of memnotify's own action that the kernel acts on without a
 * handler's say, mirrored from the default handler:
 * - SA_RESTART: the kernel restarts an interrupted system call by the flags
 *   of the installed action, memnotify's.  Ours restarts when the default
 *   handler does, and when it is SIG_DFL or SIG_IGN (with which the kernel
 *   would not have interrupted the call at all: restarting is the nearest).
 * - SA_NOCLDSTOP, SA_NOCLDWAIT for SIGCHLD.
 */
static int kflags_of(int sig, const struct sigaction *a)
{
	int f = 0;

	if (!is_handler(a) || (a->sa_flags & SA_RESTART))
		f |= SA_RESTART;
	if (sig == SIGCHLD)
		f |= a->sa_flags & (SA_NOCLDSTOP | SA_NOCLDWAIT);
	return f;
}

static void handler(int sig, siginfo_t *si, void *uc);

static void ours_action(struct sigaction *ours, int kflags)
{
	__builtin_memset(ours, 0, sizeof(*ours));
	ours->sa_sigaction = handler;
	/* Never SA_NODEFER (run_default unblocks the signal itself for a
	   default handler that asks) nor SA_RESETHAND (dfl_take_oneshot). */
	ours->sa_flags = SA_SIGINFO | SA_ONSTACK | kflags;
	sigemptyset(&ours->sa_mask);
}

/*
 * wlock held, memnotify's handler installed: @act becomes the default
 * handler, and memnotify's action is installed again if the flags it
 * mirrors change.  Async-signal-safe (also called from signal context).
 */
MN__NO_TSAN static void slot_set_default(struct sigslot *s, int sig,
					 const struct sigaction *act)
{
	int kflags = kflags_of(sig, act);
	struct sigaction ours;

	if (kflags != s->kflags) {
		ours_action(&ours, kflags);
		/* Cannot fail for a signal ours is installed on; if it did,
		   the next write tries again. */
		if (libc_sigaction(sig, &ours, NULL) == 0)
			s->kflags = kflags;
	}
	dfl_write(s, act);
}

/*
 * SA_RESETHAND: take the default handler for this one delivery and leave
 * SIG_DFL in its place (flags kept, as the kernel keeps them), atomically
 * with respect to other writers: of two threads that take the signal at
 * once, one runs the handler and the other finds SIG_DFL, as with the
 * kernel's own SA_RESETHAND.  @a gets the handler to run now.  Signal
 * context: takes the slot's writer flag, which is safe here (see
 * slot_wlock: never held by this thread, released by any other holder
 * after a bounded section); nothing else.
 */
MN__NO_TSAN static void dfl_take_oneshot(struct sigslot *s, int sig,
					 struct sigaction *a)
{
	struct sigaction reset;
	sigset_t saved;

	slot_wlock(s, &saved);
	*a = *dfl_current(s);
	if (is_handler(a) && (a->sa_flags & SA_RESETHAND)) {
		reset = *a;
		reset.sa_handler = SIG_DFL;
		slot_set_default(s, sig, &reset);
	}
	slot_wunlock(s, &saved);
}

/* fork child: the other threads are gone, and with them any writer that
   held a flag; such a writer's half-written copy was never current. */
static void sigchain_atfork_child(void)
{
	for (int i = 0; i < NSIG; i++) {
		unsigned int seq = atomic_load_explicit(&slots[i].seq,
							memory_order_relaxed);
		if (seq & 1u)
			atomic_store_explicit(&slots[i].seq, seq - 1,
					      memory_order_relaxed);
		atomic_flag_clear_explicit(&slots[i].wlock,
					   memory_order_relaxed);
	}
}

/* --- the handler ---------------------------------------------------------- */

static bool is_sync_fault(int sig, const siginfo_t *si)
{
	/* Kernel-generated faults have si_code > 0 (SI_USER and friends are
	   <= 0). */
	return (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL ||
		sig == SIGFPE || sig == SIGTRAP) &&
	       si && si->si_code > 0;
}

/* What SIG_DFL does with @sig (signal(7)).  SIGSTOP never reaches a
   handler. */
enum dfl_kind { DFL_TERMINATE, DFL_IGNORE, DFL_STOP };

static enum dfl_kind default_kind(int sig)
{
	switch (sig) {
	case SIGCHLD:
	case SIGURG:
	case SIGWINCH:
	case SIGCONT: /* the kernel continues the process before any handler */
		return DFL_IGNORE;
	case SIGTSTP:
	case SIGTTIN:
	case SIGTTOU:
		return DFL_STOP;
	default:
		return DFL_TERMINATE;
	}
}

/* Async-signal-safe formatting for the one-line report. */
static char *put_str(char *p, char *end, const char *s)
{
	while (*s && p < end)
		*p++ = *s++;
	return p;
}

static char *put_dec(char *p, char *end, long v)
{
	char tmp[24];
	int n = 0;
	unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;

	if (v < 0 && p < end)
		*p++ = '-';
	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u && n < (int)sizeof(tmp));
	while (n && p < end)
		*p++ = tmp[--n];
	return p;
}

static char *put_hex(char *p, char *end, uintptr_t v)
{
	static const char digits[] = "0123456789abcdef";
	char tmp[2 * sizeof(v)];
	int n = 0;

	do {
		tmp[n++] = digits[v & 15u];
		v >>= 4;
	} while (v && n < (int)sizeof(tmp));
	p = put_str(p, end, "0x");
	while (n && p < end)
		*p++ = tmp[--n];
	return p;
}

const char *mn__signal_name(int sig)
{
	switch (sig) {
	case SIGSEGV: return "SIGSEGV";
	case SIGBUS: return "SIGBUS";
	case SIGILL: return "SIGILL";
	case SIGFPE: return "SIGFPE";
	case SIGTRAP: return "SIGTRAP";
	case SIGABRT: return "SIGABRT";
	case SIGUSR1: return "SIGUSR1";
	case SIGUSR2: return "SIGUSR2";
	case SIGTSTP: return "SIGTSTP";
	case SIGTTIN: return "SIGTTIN";
	case SIGTTOU: return "SIGTTOU";
	default: return NULL;
	}
}

/* The one-line report before a default action; on unless the program
   turned it off (mn_signal_report, MEMNOTIFY_SIGNAL_REPORT=0).  A lock-free
   atomic int: async-signal-safe to read and write. */
static _Atomic int report_on = 1;

/* @action: NULL for a fatal default, else its name ("stop"). */
static void report_unhandled(int sig, const siginfo_t *si, const char *action)
{
	char line[160], *p = line, *end = line + sizeof(line) - 1;
	const char *name = mn__signal_name(sig);

	if (!atomic_load_explicit(&report_on, memory_order_relaxed))
		return;
	p = put_str(p, end, "memnotify: unhandled ");
	if (name)
		p = put_str(p, end, name);
	else
		p = put_dec(put_str(p, end, "signal "), end, sig);
	p = put_dec(put_str(p, end, " (code "), end, si ? si->si_code : 0);
	p = put_str(p, end, ")");
	if (si && is_sync_fault(sig, si))
		p = put_hex(put_str(p, end, " at "), end,
			    (uintptr_t)si->si_addr);
	p = put_dec(put_str(p, end, " in thread "), end, (long)syscall(SYS_gettid));
	p = put_str(p, end, ": default action");
	if (action)
		p = put_str(put_str(put_str(p, end, " ("), end, action), end, ")");
	p = put_str(p, end, "\n");
	if (write(STDERR_FILENO, line, (size_t)(p - line)) < 0) {
		/* nothing more can be done about it here */
	}
}

int mn_signal_report(int on)
{
	mn__check(on == 0 || on == 1, -EINVAL);
	return atomic_exchange(&report_on, on);
}

/* The report's switch from the environment; the fork handler of the
   writer flags. */
__attribute__((constructor)) static void sigchain_setup(void)
{
	const char *v = secure_getenv("MEMNOTIFY_SIGNAL_REPORT");

	if (v && v[0] == '0' && !v[1])
		atomic_store(&report_on, 0);
	pthread_atfork(NULL, NULL, sigchain_atfork_child);
}

/* The process dies by @sig, with its siginfo, as if memnotify were not
   there: restore SIG_DFL, queue the signal to this thread, unblock it. */
static void die_by(int sig, siginfo_t *si)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t one;
	siginfo_t info;

	report_unhandled(sig, si, NULL);
	sigemptyset(&dfl.sa_mask);
	libc_sigaction(sig, &dfl, NULL);
	if (si) {
		info = *si;
	} else {
		__builtin_memset(&info, 0, sizeof(info));
		info.si_signo = sig;
		info.si_code = SI_TKILL;
	}
	if (syscall(SYS_rt_tgsigqueueinfo, getpid(), syscall(SYS_gettid), sig,
		    &info) < 0)
		syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
	sigemptyset(&one);
	sigaddset(&one, sig);
	pthread_sigmask(SIG_UNBLOCK, &one, NULL);
	/* A synchronous fault that somehow survived refaults on return. */
}

/*
 * The stop signal's default action, with memnotify's handler kept as the
 * kernel's disposition (re-raising @sig would need SIG_DFL there, and the
 * chain would be gone after SIGCONT): SIGSTOP to this thread stops the
 * whole process the same way, on the way back from tgkill, so this returns
 * after SIGCONT.  Differences: the parent's waitpid() sees WSTOPSIG ==
 * SIGSTOP, and a process in an orphaned process group stops, where the
 * kernel would have discarded the stop signal.  Async-signal-safe.
 */
static void stop_by(int sig, siginfo_t *si)
{
	report_unhandled(sig, si, "stop");
	syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGSTOP);
}

/*
 * The program's handler, as the kernel would have called it: with its
 * sa_mask blocked and, unless SA_NODEFER, @sig too (ours was delivered
 * with @sig blocked: SA_NODEFER unblocks it, unless sa_mask holds it).
 * Async-signal-safe.
 */
static void call_default(int sig, siginfo_t *si, void *uc,
			 const struct sigaction *a)
{
	sigset_t saved, one;

	pthread_sigmask(SIG_BLOCK, &a->sa_mask, &saved);
	if ((a->sa_flags & SA_NODEFER) && !sigismember(&a->sa_mask, sig)) {
		sigemptyset(&one);
		sigaddset(&one, sig);
		pthread_sigmask(SIG_UNBLOCK, &one, NULL);
	}
	if (a->sa_flags & SA_SIGINFO)
		a->sa_sigaction(sig, si, uc);
	else
		a->sa_handler(sig);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

/*
 * No chain handler handled @sig: the default handler.  Signal context;
 * async-signal-safe; lock-free except for SA_RESETHAND (dfl_take_oneshot).
 * The default handler's flags: SA_SIGINFO, SA_NODEFER and SA_RESETHAND are
 * honoured here, SA_RESTART (and SIGCHLD's SA_NOCLDSTOP, SA_NOCLDWAIT)
 * through memnotify's own action (kflags_of); SA_ONSTACK cannot be: ours
 * has it, so a handler runs on an alternate stack, when the thread has one,
 * even if it did not ask for it.
 */
static void run_default(int sig, siginfo_t *si, void *uc)
{
	struct sigslot *s = &slots[sig];
	struct sigaction a;

	dfl_read(s, &a);
	if (is_handler(&a) && (a.sa_flags & SA_RESETHAND))
		dfl_take_oneshot(s, sig, &a);
	if (is_handler(&a)) {
		call_default(sig, si, uc, &a);
		return;
	}
	if (a.sa_handler == SIG_IGN) {
		/* The kernel does not let a fault be ignored: it kills. */
		if (is_sync_fault(sig, si))
			die_by(sig, si);
		return;
	}
	switch (default_kind(sig)) {
	case DFL_IGNORE:
		break;
	case DFL_STOP:
		stop_by(sig, si);
		break;
	case DFL_TERMINATE:
		die_by(sig, si);
		break;
	}
}

/* memnotify's handler for every chained signal.  Signal context. */
static void handler(int sig, siginfo_t *si, void *uc)
{
	struct mn__chain_reader rd;
	struct mn__chain_node *n;
	int saved_errno = errno;
	int handled = 0;

	mn__signal_enter();
	mn__chain_walk_begin(&slots[sig].chain, &rd);
	while ((n = mn__chain_walk_next(&rd))) {
		struct sigsub *s = mn__container_of(n, struct sigsub, sub.node);
		/* Every handler is called; Handled |= fn(..., Handled). */
		if (s->fn(sig, si, uc, handled, s->ctx))
			handled = 1;
	}
	mn__chain_walk_end(&rd);
	mn__signal_exit();
	errno = saved_errno;
	/* Outside the walk: a default handler may siglongjmp away. */
	if (!handled)
		run_default(sig, si, uc);
	errno = saved_errno;
}

/* --- installation --------------------------------------------------------- */

/* Core lock held. */
static int slot_prepare(int sig)
{
	struct sigslot *s = &slots[sig];
	struct sigaction ours, old;
	sigset_t saved;
	int err = 0;

	if (!s->chain_ready) {
		mn__chain_init(&s->chain, MN__CHAIN_NEWEST_FIRST);
		s->chain_ready = true;
	}
	if (atomic_load(&s->installed))
		return 0;
	slot_wlock(s, &saved);
	/* What the process has now decides the flags ours mirrors. */
	if (libc_sigaction(sig, NULL, &old) < 0) {
		err = -errno;
	} else {
		s->kflags = kflags_of(sig, &old);
		ours_action(&ours, s->kflags);
		if (libc_sigaction(sig, &ours, &old) < 0) {
			err = -errno;
		} else {
			/* What the process had becomes the default handler
			   (a sigaction() of another thread in between: ours
			   is installed again with its flags). */
			slot_set_default(s, sig, &old);
			atomic_store(&s->installed, true);
		}
	}
	slot_wunlock(s, &saved);
	return err;
}

int mn__sigchain_prepare(int sig)
{
	if (sig <= 0 || sig >= NSIG || sig == SIGKILL || sig == SIGSTOP)
		return -EINVAL;
	return slot_prepare(sig);
}

struct mn__chain *mn__sigchain_chain(int sig)
{
	return &slots[sig].chain;
}

/* --- registration --------------------------------------------------------- */

static void sigsub_release(struct mn__chain_node *n)
{
	free(mn__container_of(n, struct sigsub, sub.node));
}

static struct mn__chain *sigsub_unlink(mn_sub *sub, struct mn__chain_removal *rm)
{
	struct sigsub *s = mn__container_of(sub, struct sigsub, sub);

	mn__chain_unlink(&slots[s->sig].chain, &s->sub.node, rm);
	return &slots[s->sig].chain;
}

static const struct mn__sub_ops sigsub_ops = {
	.kind = "signal",
	.unlink = sigsub_unlink,
};

/* Core lock held: a new handler in the chain of @sig (memnotify's handler
   installed first if needed).  The replaced snapshot is handed back in @rm. */
static struct sigsub *sigsub_new(int sig, mn_signal_fn fn, void *ctx)
{
	struct sigsub *s = calloc(1, sizeof(*s));

	if (s) {
		s->fn = fn;
		s->ctx = ctx;
		s->sig = sig;
		s->sub.node.release = sigsub_release;
	}
	return s;
}

static int add_handler(int sig, mn_signal_fn fn, void *ctx,
		       struct mn__chain_removal *rm, struct sigsub **out)
{
	struct sigsub *s = sigsub_new(sig, fn, ctx);
	int err;

	if (!s)
		return -ENOMEM;
	err = slot_prepare(sig);
	if (!err)
		err = mn__chain_add(&slots[sig].chain, &s->sub.node, rm);
	if (err) {
		free(s);
		return err;
	}
	*out = s;
	return 0;
}

int mn__signal_register_internal(int sig, mn_signal_fn fn, void *ctx)
{
	struct mn__chain_removal rm;
	struct sigsub *s;
	int err = add_handler(sig, fn, ctx, &rm, &s);

	if (err)
		return err;
	/* Under the core lock we cannot wait: the old snapshot is freed by
	   the chain's next reclaim. */
	mn__chain_defer(&slots[sig].chain, &rm);
	return 0;
}

/* "N", or "[SIG]USR1", "[SIG]USR2", "[SIG]RTMIN+N", "[SIG]RTMAX-N". */
static int parse_nmi_signal(const char *s)
{
	char *end;
	long v;

	if (!strncmp(s, "SIG", 3))
		s += 3;
	if (!strcmp(s, "USR1"))
		return SIGUSR1;
	if (!strcmp(s, "USR2"))
		return SIGUSR2;
	if (!strncmp(s, "RTMIN", 5) || !strncmp(s, "RTMAX", 5)) {
		bool min = s[4] == 'N';
		v = 0;
		if (s[5]) {
			if (s[5] != (min ? '+' : '-') || s[6] < '0' || s[6] > '9')
				return -EINVAL;
			errno = 0;
			v = strtol(s + 6, &end, 10);
			if (errno || *end || v > SIGRTMAX - SIGRTMIN)
				return -EINVAL;
		}
		return min ? SIGRTMIN + (int)v : SIGRTMAX - (int)v;
	}
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 1 || v > SIGRTMAX)
		return -EINVAL;
	return (int)v;
}

int mn_nmi_signal(void)
{
	const char *s = secure_getenv("MEMNOTIFY_NMI_SIGNAL");
	int sig;

	if (!s)
		return SIGRTMAX - MN_NMI_SIGNAL_DEFAULT_OFFSET;
	sig = parse_nmi_signal(s);
	/* 32 .. SIGRTMIN - 1 are the C library's own (thread cancellation,
	   setxid). */
	if (sig < 0 || sig == SIGKILL || sig == SIGSTOP || sig == SIGSEGV ||
	    sig == SIGBUS || sig == SIGILL || sig == SIGFPE ||
	    (sig >= 32 && sig < SIGRTMIN)) {
		mn__err("MEMNOTIFY_NMI_SIGNAL='%s': not a catchable signal other "
			"than SIGSEGV, SIGBUS, SIGILL and SIGFPE", s);
		return -EINVAL;
	}
	return sig;
}

/* Core lock: memnotify's handler owns the signal; its chain is joined. */
static struct mn__chain *sigsub_attach(mn_sub *sub, void *arg, int *err)
{
	int sig = mn__container_of(sub, struct sigsub, sub)->sig;

	(void)arg;
	return (*err = slot_prepare(sig)) ? NULL : &slots[sig].chain;
}

static const struct mn__sub_spec sigsub_spec = {
	.ops = &sigsub_ops, .attach = sigsub_attach,
};

int mn_signal_register(int sig, mn_signal_fn fn, void *ctx, mn_sub **out)
{
	struct sigsub *s;
	int err;

	mn__check(out, -EINVAL);
	*out = NULL;
	mn__check(fn && sig > 0 && sig < NSIG && sig != SIGKILL && sig != SIGSTOP,
		  -EINVAL);
	mn__check_unlocked();
	mn__enter();
	if (!(s = sigsub_new(sig, fn, ctx)))
		return -ENOMEM;
	if ((err = mn__sub_add(&s->sub, &sigsub_spec)))
		return err;
	*out = &s->sub;
	return 0;
}

/* --- interposition -------------------------------------------------------- */

/*
 * sigaction(2) as the program sees it.  For a signal memnotify chains, the
 * new action becomes the default handler behind the chain and the kernel's
 * disposition stays memnotify's; @oldact gets the previous default handler.
 * Everything else goes to the C library.  Async-signal-safe, like the real
 * one.
 */
MN_API MN__NO_TSAN int sigaction(int sig, const struct sigaction *act,
		     struct sigaction *oldact)
{
	struct sigaction copy;
	struct sigslot *s;
	sigset_t saved;
	int ret = 0;

	if (oldact == &probe_old)
		atomic_fetch_add_explicit(&probe_calls, 1, memory_order_relaxed);
	if (interpose_off || sig <= 0 || sig >= NSIG || sig == SIGKILL ||
	    sig == SIGSTOP)
		return libc_sigaction(sig, act, oldact);
	s = &slots[sig];
	if (!atomic_load(&s->installed))
		return libc_sigaction(sig, act, oldact);
	/* Read the caller's struct before taking wlock: a bad pointer then
	   faults where a handler can run, not with every signal blocked. */
	if (act)
		copy = *act;
	slot_wlock(s, &saved);
	if (!atomic_load(&s->installed)) {
		ret = libc_sigaction(sig, act, oldact);
	} else {
		if (oldact)
			*oldact = *dfl_current(s);
		if (act)
			slot_set_default(s, sig, &copy);
	}
	slot_wunlock(s, &saved);
	return ret;
}

/* signal(3) with glibc's (BSD) semantics, through the sigaction above:
   glibc's own signal() calls its internal sigaction, which no
   interposition reaches. */
MN_API MN__NO_TSAN sighandler_t signal(int sig, sighandler_t h)
{
	struct sigaction sa, old;

	__builtin_memset(&sa, 0, sizeof(sa));
	sa.sa_handler = h;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sig <= 0 || sig >= NSIG) {
		errno = EINVAL;
		return SIG_ERR;
	}
	if (sigaction(sig, &sa, &old) < 0)
		return SIG_ERR;
	return old.sa_handler;
}

/* Capability: do the program's sigaction() calls reach the chain? */
int mn__probe_signal_interpose(char *detail, size_t len)
{
	const char *off = secure_getenv("MEMNOTIFY_NO_INTERPOSE");

	if (off && *off && *off != '0') {
		snprintf(detail, len, "turned off by MEMNOTIFY_NO_INTERPOSE");
		return -EPERM;
	}
	if (!mn__sigchain_interposing()) {
		snprintf(detail, len,
			 "loaded with RTLD_LOCAL / after the C library: a "
			 "later sigaction() replaces the chain; use "
			 "LD_PRELOAD or link it");
		return -ENOENT;
	}
	snprintf(detail, len, "sigaction() and signal() reach memnotify");
	return 0;
}
