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
 * pthread_sigmask, rt_tgsigqueueinfo.  No lock, no allocation, no stdio,
 * no lazily allocated TLS.
 */
#include <dlfcn.h>
#include <sched.h>
#include <signal.h>
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
	_Atomic unsigned int seq;  /* seqlock over dfl: odd while written */
	struct sigaction dfl;      /* the default handler */
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
/* Our sigaction() is the one the program's calls reach: asked of the
   loader at load time, not in the capability probe, which runs in a once
   that a module constructor (the loader's lock held) may wait for. */
static bool interposing;

/* --- the C library's sigaction ------------------------------------------ */

MN__NO_TSAN __attribute__((constructor)) static void sigchain_init(void)
{
	const char *off = secure_getenv("MEMNOTIFY_NO_INTERPOSE");

	interpose_off = off && *off && *off != '0';
	/* The next definition after ours: the C library's (or a sanitizer's
	   interceptor in front of it). */
	real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
	if (!real_sigaction)
		real_sigaction = (sigaction_fn)dlsym(RTLD_DEFAULT, "__sigaction");
	interposing = dlsym(RTLD_DEFAULT, "sigaction") == (void *)sigaction;
}

MN__NO_TSAN static int libc_sigaction(int sig, const struct sigaction *act,
			  struct sigaction *old)
{
	if (MN__UNLIKELY(!real_sigaction))
		sigchain_init();
	return real_sigaction(sig, act, old);
}

bool mn__sigchain_interposing(void)
{
	/* Our sigaction() is the one the program's calls reach. */
	return !interpose_off && interposing;
}

/* --- the default handler, under a seqlock -------------------------------- */

/* Writers block every signal on their thread while they hold wlock, so a
   handler can never spin on a lock its own thread holds. */
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

MN__NO_TSAN static void dfl_write(struct sigslot *s, const struct sigaction *act)
{
	atomic_fetch_add_explicit(&s->seq, 1, memory_order_acq_rel);
	s->dfl = *act;
	atomic_fetch_add_explicit(&s->seq, 1, memory_order_release);
}

/* Async-signal-safe read of the default handler. */
static void dfl_read(struct sigslot *s, struct sigaction *out)
{
	unsigned int a, b;

	do {
		a = atomic_load_explicit(&s->seq, memory_order_acquire);
		__builtin_memcpy(out, &s->dfl, sizeof(*out));
		/* A read-modify-write with release order keeps the copy above
		   before the second read of seq (Boehm's seqlock reader),
		   without a bare fence. */
		b = atomic_fetch_add_explicit(&s->seq, 0, memory_order_acq_rel);
	} while ((a & 1u) || a != b);
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

static bool default_is_ignore(int sig)
{
	return sig == SIGCHLD || sig == SIGURG || sig == SIGWINCH ||
	       sig == SIGCONT;
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
	default: return NULL;
	}
}

static void report_unhandled(int sig, const siginfo_t *si)
{
	char line[160], *p = line, *end = line + sizeof(line) - 1;
	const char *name = mn__signal_name(sig);

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
	p = put_str(p, end, ": default action\n");
	if (write(STDERR_FILENO, line, (size_t)(p - line)) < 0) {
		/* nothing more can be done about it here */
	}
}

/* The process dies by @sig, with its siginfo, as if memnotify were not
   there: restore SIG_DFL, queue the signal to this thread, unblock it. */
static void die_by(int sig, siginfo_t *si)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t one;
	siginfo_t info;

	report_unhandled(sig, si);
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

static void run_default(int sig, siginfo_t *si, void *uc)
{
	struct sigaction a;
	sigset_t saved;

	dfl_read(&slots[sig], &a);
	if ((a.sa_flags & SA_SIGINFO) && a.sa_sigaction &&
	    (void *)a.sa_sigaction != (void *)SIG_IGN &&
	    (void *)a.sa_sigaction != (void *)SIG_DFL) {
		pthread_sigmask(SIG_BLOCK, &a.sa_mask, &saved);
		a.sa_sigaction(sig, si, uc);
		pthread_sigmask(SIG_SETMASK, &saved, NULL);
		return;
	}
	if (a.sa_handler == SIG_IGN) {
		/* The kernel does not let a fault be ignored: it kills. */
		if (is_sync_fault(sig, si))
			die_by(sig, si);
		return;
	}
	if (a.sa_handler == SIG_DFL) {
		if (!default_is_ignore(sig))
			die_by(sig, si);
		return;
	}
	pthread_sigmask(SIG_BLOCK, &a.sa_mask, &saved);
	a.sa_handler(sig);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
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
	__builtin_memset(&ours, 0, sizeof(ours));
	ours.sa_sigaction = handler;
	ours.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigemptyset(&ours.sa_mask);
	slot_wlock(s, &saved);
	if (libc_sigaction(sig, &ours, &old) < 0) {
		err = -errno;
	} else {
		/* What the process had becomes the default handler. */
		dfl_write(s, &old);
		atomic_store(&s->installed, true);
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
static int add_handler(int sig, mn_signal_fn fn, void *ctx,
		       struct mn__chain_removal *rm, struct sigsub **out)
{
	struct sigsub *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return -ENOMEM;
	s->fn = fn;
	s->ctx = ctx;
	s->sig = sig;
	s->sub.node.release = sigsub_release;
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

int mn_signal_register(int sig, mn_signal_fn fn, void *ctx, mn_sub **out)
{
	struct mn__chain_removal rm;
	struct sigsub *s;
	int err;

	mn__check(out, -EINVAL);
	*out = NULL;
	mn__check(fn && sig > 0 && sig < NSIG && sig != SIGKILL && sig != SIGSTOP,
		  -EINVAL);
	mn__enter();
	mn__lock();
	err = add_handler(sig, fn, ctx, &rm, &s);
	if (err) {
		mn__unlock();
		return err;
	}
	mn__sub_register(&s->sub, &sigsub_ops);
	mn__unlock();
	mn__chain_finish_remove(&slots[sig].chain, &rm);
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
	struct sigslot *s;
	sigset_t saved;
	int ret = 0;

	if (interpose_off || sig <= 0 || sig >= NSIG || sig == SIGKILL ||
	    sig == SIGSTOP)
		return libc_sigaction(sig, act, oldact);
	s = &slots[sig];
	if (!atomic_load(&s->installed))
		return libc_sigaction(sig, act, oldact);
	slot_wlock(s, &saved);
	if (!atomic_load(&s->installed)) {
		ret = libc_sigaction(sig, act, oldact);
	} else {
		if (oldact)
			*oldact = s->dfl;
		if (act)
			dfl_write(s, act);
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
