/* SPDX-License-Identifier: MIT */
/*
 * The hooks of address-range invalidation.
 *
 * Two layers, one notification:
 *  1. Interposers: libmemnotify exports munmap, mremap, mprotect,
 *     pkey_mprotect, madvise, mmap, mmap64, shmdt, brk and sbrk
 *     (unversioned, like sigaction).  Calls through the PLT of any library
 *     — including ones dlopen()ed later — reach them when libmemnotify is
 *     linked or preloaded.  They report, then forward to the next
 *     definition (the C library's, or a sanitizer's interceptor).
 *  2. Entry redirection (x86-64): the C library's own munmap, mremap,
 *     mprotect, pkey_mprotect, madvise and mmap entry points get a jump to
 *     memnotify's replacement, which reports and makes the system call
 *     itself.  glibc's internal callers (free, realloc, thread-stack
 *     release) call those same entry points, so they are seen too.  The
 *     jump is one aligned 8-byte store, atomic for threads running the
 *     code at that moment, which then either run the old code whole or
 *     take the jump; a self-test fires a real call afterwards.
 * A thread-local flag set while an interposer forwards keeps the
 * redirected entry from reporting the same call twice.
 *
 * Everything here is async-signal-safe on the call path: no locks, no
 * allocation, initial-exec TLS, errno preserved.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../core/caps.h"
#include "../core/core.h"
#include "vmrange.h"
#if defined(__x86_64__)
#include "arch/x86_64/patch.h"
#endif

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MREMAP_FIXED
#define MREMAP_FIXED 2
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

/*
 * A system call with six arguments, as the C library's syscall() makes it:
 * -1 with errno set on failure.  Async-signal-safe.
 */
#if defined(__x86_64__)
MN__NO_TSAN static long raw_syscall(long nr, long a, long b, long c, long d,
				    long e, long f)
{
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8),
			   "r"(r9)
			 : "rcx", "r11", "memory");
	if ((unsigned long)ret > -4096UL) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}
#else
static long (*libc_syscall)(long, ...);
static long raw_syscall(long nr, long a, long b, long c, long d, long e, long f)
{
	if (!libc_syscall) {
		errno = ENOSYS;
		return -1;
	}
	return libc_syscall(nr, a, b, c, d, e, f);
}
#endif

/* Set while an interposer forwards: the redirected entry stays quiet. */
static __thread int tls_forwarding __attribute__((tls_model("initial-exec")));

typedef int (*munmap_fn)(void *, size_t);
typedef void *(*mremap_fn)(void *, size_t, size_t, int, ...);
typedef int (*mprotect_fn)(void *, size_t, int);
typedef int (*pkey_mprotect_fn)(void *, size_t, int, int);
typedef int (*madvise_fn)(void *, size_t, int);
typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
typedef int (*shmdt_fn)(const void *);
typedef int (*brk_fn)(void *);
typedef void *(*sbrk_fn)(intptr_t);

static struct {
	munmap_fn munmap;
	mremap_fn mremap;
	mprotect_fn mprotect;
	pkey_mprotect_fn pkey_mprotect;
	madvise_fn madvise;
	mmap_fn mmap;
	shmdt_fn shmdt;
	brk_fn brk;
	sbrk_fn sbrk;
	bool resolved;
} next;

static struct {
	struct mn__once once;
	int err;
	int ldso_err;
	char detail[160];
} patch;

/* The self-test: set on the installing thread while it makes its test
   call, which is counted and reported to no one.  Every other thread's
   events go on as usual meanwhile. */
static __thread int tls_selftest __attribute__((tls_model("initial-exec")));
static __thread int tls_selftest_hits __attribute__((tls_model("initial-exec")));

/* --- event building (signal-safe) ------------------------------------------ */

MN__NO_TSAN static void page_range(uint64_t addr, uint64_t len, uint64_t *lo, uint64_t *n)
{
	uint64_t ps = mn__page_size();
	uint64_t start = addr & ~(ps - 1);
	uint64_t end = addr + len;

	end = end < addr ? UINT64_MAX & ~(ps - 1) : (end + ps - 1) & ~(ps - 1);
	*lo = start;
	*n = end > start ? end - start : 0;
}

MN__NO_TSAN static void report(enum mn_vm_kind kind, const void *addr, size_t len,
		   int prot, int advice, uint64_t new_addr, uint64_t new_len)
{
	struct mn_vm_event ev;

	if (MN__UNLIKELY(tls_selftest)) {
		tls_selftest_hits++;
		return;
	}
	if (!atomic_load_explicit(&mn__vm_active, memory_order_relaxed) || !len)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.kind = kind;
	page_range((uint64_t)(uintptr_t)addr, len, &ev.address, &ev.length);
	ev.prot = prot;
	ev.advice = advice;
	ev.new_address = new_addr;
	ev.new_length = new_len;
	mn__vm_notify(&ev);
}

MN__NO_TSAN static bool discards(int advice)
{
	return advice == MADV_DONTNEED || advice == MADV_DONTNEED_LOCKED ||
	       advice == MADV_FREE || advice == MADV_REMOVE;
}

/* mremap: a shrink unmaps the tail; a move reports the old range before
   it goes; MREMAP_FIXED first unmaps whatever the new range held.
   MREMAP_DONTUNMAP always moves the pages and leaves the old range mapped
   but empty: a move, then a discard of the old range.  Growing in place
   changes nothing a cache holds. */
MN__NO_TSAN static void report_mremap(void *old, size_t old_len, size_t new_len, int flags,
			  void *new_addr)
{
	if ((flags & MREMAP_FIXED) && new_len)
		report(MN_VM_UNMAP, new_addr, new_len, -1, 0, 0, 0);
	if (new_len < old_len)
		report(MN_VM_UNMAP, (char *)old + new_len, old_len - new_len, -1,
		       0, 0, 0);
	if (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP))
		report(MN_VM_MOVE, old, MN__MIN(old_len, new_len), -1, 0,
		       (uint64_t)(uintptr_t)new_addr, new_len);
	if (flags & MREMAP_DONTUNMAP)
		report(MN_VM_DISCARD, old, old_len, -1, MADV_DONTNEED, 0, 0);
}

/*
 * The new address of an mremap that another hooker may drop.  UCX's libucm
 * (1.13) takes mremap with four arguments: its replacement and its
 * "original" (syscall(SYS_mremap, old, old_len, new_len, flags), or the C
 * library's mremap) pass whatever a register holds as the new address, so
 * an MREMAP_FIXED move through it lands anywhere — at address 0, or
 * fails.  While memnotify hands such a call on, it keeps the arguments
 * here; the call that reaches the kernel through memnotify's syscall() or
 * mremap() with the same first four arguments gets the kept address back.
 * Thread-local, so async-signal-safe; a signal handler's own mremap on
 * this thread saves and restores it (MREMAP_ARM/MREMAP_DISARM nest).
 */
struct mremap_args {
	void *old;
	size_t old_len, new_len;
	int flags;
	void *new_addr;
	int armed;
};
static __thread struct mremap_args tls_mremap __attribute__((tls_model("initial-exec")));

/* Flags with which the kernel reads the 5th argument (DONTUNMAP without
   FIXED: as a hint).  memnotify's own mremap() reads it from its caller
   only with MREMAP_FIXED, as it always did (callers of DONTUNMAP alone pass
   four arguments), and hands NULL on otherwise. */
#define MREMAP_NEW_ADDR_FLAGS (MREMAP_FIXED | MREMAP_DONTUNMAP)

MN__NO_TSAN static struct mremap_args mremap_arm(void *old, size_t old_len,
						 size_t new_len, int flags,
						 void *new_addr)
{
	struct mremap_args saved = tls_mremap;

	if (flags & MREMAP_NEW_ADDR_FLAGS)
		tls_mremap = (struct mremap_args){ old, old_len, new_len, flags,
						   new_addr, 1 };
	return saved;
}

MN__NO_TSAN static void mremap_disarm(struct mremap_args saved)
{
	tls_mremap = saved;
}

/* The new address a call with these arguments was made with: the kept
   one when memnotify handed this very call on, else @new_addr. */
MN__NO_TSAN static void *mremap_new_addr(void *old, size_t old_len, size_t new_len,
					 int flags, void *new_addr)
{
	if (MN__UNLIKELY(tls_mremap.armed) && (flags & MREMAP_NEW_ADDR_FLAGS) &&
	    tls_mremap.old == old && tls_mremap.old_len == old_len &&
	    tls_mremap.new_len == new_len && tls_mremap.flags == flags)
		return tls_mremap.new_addr;
	return new_addr;
}

/* --- replacements: report, then the system call ------------------------------ */

static long sys_ret(long r)
{
	/* syscall(3) already returned -1 with errno set on failure. */
	return r;
}

/*
 * Another hooker (UCX's libucm, for one) may have redirected an entry point
 * before us with the same 5-byte jmp.  We then call its target instead of
 * making the system call, so that both see the call; a thread-local guard
 * lets its own call of the "original" (which may come back through the
 * entry point) fall through to the system call.
 */
static struct {
	munmap_fn munmap;
	mprotect_fn mprotect;
	madvise_fn madvise;
	mmap_fn mmap;
	mremap_fn mremap;
	brk_fn brk;
	sbrk_fn sbrk;
	shmdt_fn shmdt; /* only a hooker that took memnotify's shmdt */
} chained;
/*
 * The call being handed on, so that the hooker's own "original" call —
 * the same call, arriving with the same first two arguments — falls
 * through to the kernel, while any other call its handlers make (a
 * handler that frees memory) is seen and handed on like the program's.
 * Saved and restored around each hand-off, so hand-offs nest.
 */
struct chain_call {
	int nr;                 /* SYS_munmap, ...; 0: none */
	uintptr_t a, b;
};
static __thread struct chain_call tls_chain __attribute__((tls_model("initial-exec")));

#define CHAIN(nr_, a_, b_, call)                                              \
	({                                                                    \
		struct chain_call s_ = tls_chain;                             \
		tls_chain = (struct chain_call){ (nr_), (uintptr_t)(a_),      \
						 (uintptr_t)(b_) };           \
		__typeof__(call) c_ = (call);                                 \
		tls_chain = s_;                                               \
		c_;                                                           \
	})
/* This call is the hooker's own "original" of the one handed on. */
#define ORIGINAL(nr_, a_, b_)                                                 \
	(MN__UNLIKELY(tls_chain.nr == (nr_)) &&                               \
	 tls_chain.a == (uintptr_t)(a_) && tls_chain.b == (uintptr_t)(b_))

static int mn_munmap_impl(void *addr, size_t len)
{
	bool orig = ORIGINAL(SYS_munmap, addr, len);

	if (!tls_forwarding && !orig)
		report(MN_VM_UNMAP, addr, len, -1, 0, 0, 0);
	if (chained.munmap && !orig)
		return CHAIN(SYS_munmap, addr, len, chained.munmap(addr, len));
	return (int)sys_ret(syscall(SYS_munmap, addr, len));
}

static int mn_mprotect_impl(void *addr, size_t len, int prot)
{
	bool orig = ORIGINAL(SYS_mprotect, addr, len);

	if (!tls_forwarding && !orig)
		report(MN_VM_PROTECT, addr, len, prot, 0, 0, 0);
	if (chained.mprotect && !orig)
		return CHAIN(SYS_mprotect, addr, len, chained.mprotect(addr, len, prot));
	return (int)syscall(SYS_mprotect, addr, len, prot);
}

MN__NO_TSAN static int mn_pkey_mprotect_impl(void *addr, size_t len, int prot, int pkey)
{
	if (!tls_forwarding)
		report(MN_VM_PROTECT, addr, len, prot, 0, 0, 0);
	if (pkey == -1)
		return (int)syscall(SYS_mprotect, addr, len, prot);
	return (int)syscall(SYS_pkey_mprotect, addr, len, prot, pkey);
}

/* A discard reported before its system call (mn__vm_discard_begin: its
   registered memory leaves userfaultfd for the call, and a copy the
   kernel sends anyway is dropped); false: nothing to end. */
MN__NO_TSAN static bool discard_begin(void *addr, size_t len, int advice,
				      struct mn__vm_discard *d)
{
	uint64_t lo, n;

	if (!discards(advice) ||
	    !atomic_load_explicit(&mn__vm_active, memory_order_relaxed))
		return false;
	report(MN_VM_DISCARD, addr, len, -1, advice, 0, 0);
	if (!mn__uffd_in_use())
		return false;
	page_range((uint64_t)(uintptr_t)addr, len, &lo, &n);
	mn__vm_discard_begin(lo, lo + n, d);
	return true;
}

static int mn_madvise_impl(void *addr, size_t len, int advice)
{
	bool orig = ORIGINAL(SYS_madvise, addr, len);
	struct mn__vm_discard d;
	bool held = !tls_forwarding && !orig && discard_begin(addr, len, advice, &d);
	int r;

	if (chained.madvise && !orig)
		r = CHAIN(SYS_madvise, addr, len, chained.madvise(addr, len, advice));
	else
		r = (int)syscall(SYS_madvise, addr, len, advice);
	if (held)
		mn__vm_discard_end(&d);
	return r;
}

static void *mn_mmap_impl(void *addr, size_t len, int prot, int flags, int fd,
			  off_t off)
{
	bool orig = ORIGINAL(SYS_mmap, addr, len);

	if (!tls_forwarding && !orig && (flags & MAP_FIXED) &&
	    !(flags & MAP_FIXED_NOREPLACE))
		report(MN_VM_UNMAP, addr, len, -1, 0, 0, 0);
	if (chained.mmap && !orig)
		return CHAIN(SYS_mmap, addr, len,
			     chained.mmap(addr, len, prot, flags, fd, off));
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

MN__NO_TSAN static void *sys_mremap(void *old, size_t old_len, size_t new_len,
				    int flags, void *new_addr)
{
	new_addr = mremap_new_addr(old, old_len, new_len, flags, new_addr);
	if (chained.mremap && !ORIGINAL(SYS_mremap, old, old_len)) {
		struct mremap_args saved = mremap_arm(old, old_len, new_len, flags,
						      new_addr);
		void *r = CHAIN(SYS_mremap, old, old_len,
				chained.mremap(old, old_len, new_len, flags, new_addr));
		mremap_disarm(saved);
		return r;
	}
	return (void *)raw_syscall(SYS_mremap, (long)old, (long)old_len,
				   (long)new_len, flags, (long)new_addr, 0);
}

/* mremap with a move that the caller left to the kernel: try in place
   first, so that only a real move is reported (before it happens). */
MN__NO_TSAN static void *mn_mremap_impl(void *old, size_t old_len, size_t new_len,
			    int flags, void *new_addr)
{
	void *r;

	if (tls_forwarding || ORIGINAL(SYS_mremap, old, old_len) ||
	    !atomic_load_explicit(&mn__vm_active, memory_order_relaxed))
		return sys_mremap(old, old_len, new_len, flags, new_addr);
	report_mremap(old, old_len, new_len, flags, new_addr);
	if ((flags & MREMAP_MAYMOVE) && !(flags & MREMAP_FIXED) &&
	    new_len > old_len) {
		r = sys_mremap(old, old_len, new_len, 0, NULL);
		if (r != MAP_FAILED)
			return r;
		report(MN_VM_MOVE, old, old_len, -1, 0, 0, new_len);
	}
	return sys_mremap(old, old_len, new_len, flags, new_addr);
}

/*
 * brk and sbrk replacements that keep the C library's own record of the
 * break, __curbrk, as its own brk()/sbrk() do: malloc trims its heap
 * through the internal sbrk, which these catch.
 */
static void **libc_curbrk;

static int mn_brk_impl(void *addr)
{
	void *cur = (void *)syscall(SYS_brk, 0);
	bool orig = ORIGINAL(SYS_brk, addr, 0);

	if (!tls_forwarding && !orig && (uintptr_t)addr < (uintptr_t)cur)
		report(MN_VM_UNMAP, addr, (uintptr_t)cur - (uintptr_t)addr, -1, 0,
		       0, 0);
	if (chained.brk && !orig)
		return CHAIN(SYS_brk, addr, 0, chained.brk(addr));
	void *now = (void *)syscall(SYS_brk, addr);
	*libc_curbrk = now;
	if ((uintptr_t)now < (uintptr_t)addr) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

static void *mn_sbrk_impl(intptr_t incr)
{
	void *old;

	/* (-1: no system call has that number) */
	if (chained.sbrk && !ORIGINAL(-1, incr, 0)) {
		if (incr < 0 && !tls_forwarding && *libc_curbrk)
			report(MN_VM_UNMAP, (char *)*libc_curbrk + incr,
			       (size_t)-incr, -1, 0, 0, 0);
		return CHAIN(-1, incr, 0, chained.sbrk(incr));
	}

	if (!*libc_curbrk)
		*libc_curbrk = (void *)syscall(SYS_brk, 0);
	old = *libc_curbrk;
	if (incr == 0)
		return old;
	if (incr > 0 ? (uintptr_t)old + (uintptr_t)incr < (uintptr_t)old
		     : (uintptr_t)old < (uintptr_t)-incr) {
		errno = ENOMEM;
		return (void *)-1;
	}
	if (mn_brk_impl((char *)old + incr) < 0)
		return (void *)-1;
	return old;
}

/* Entry-point shims with the C library's calling convention. */
static void *mn_mremap_entry(void *old, size_t old_len, size_t new_len,
			     int flags, ...)
{
	void *new_addr = NULL;
	va_list ap;

	if (flags & MREMAP_FIXED) {
		va_start(ap, flags);
		new_addr = va_arg(ap, void *);
		va_end(ap);
	}
	return mn_mremap_impl(old, old_len, new_len, flags, new_addr);
}

/* --- interposers (exported) ---------------------------------------------------- */

/* Resolve the next definitions; before that (very early calls), make the
   system call directly. */
MN__NO_TSAN static void resolve_next(void)
{
	if (next.resolved)
		return;
	next.munmap = (munmap_fn)dlsym(RTLD_NEXT, "munmap");
	next.mremap = (mremap_fn)dlsym(RTLD_NEXT, "mremap");
	next.mprotect = (mprotect_fn)dlsym(RTLD_NEXT, "mprotect");
	next.pkey_mprotect = (pkey_mprotect_fn)dlsym(RTLD_NEXT, "pkey_mprotect");
	next.madvise = (madvise_fn)dlsym(RTLD_NEXT, "madvise");
	next.mmap = (mmap_fn)dlsym(RTLD_NEXT, "mmap");
	next.shmdt = (shmdt_fn)dlsym(RTLD_NEXT, "shmdt");
	next.brk = (brk_fn)dlsym(RTLD_NEXT, "brk");
	next.sbrk = (sbrk_fn)dlsym(RTLD_NEXT, "sbrk");
#if !defined(__x86_64__)
	libc_syscall = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
#endif
	next.resolved = true;
}

/* Whether the program's munmap() calls reach ours: asked of the loader
   here, at load time, not in the capability probe (see
   mn__vm_hooks_install() for why no once may wait for the loader). */
static bool interposing;

MN__NO_TSAN __attribute__((constructor)) static void hooks_init(void)
{
	resolve_next();
	interposing = dlsym(RTLD_DEFAULT, "munmap") == (void *)munmap;
}

#define FORWARD(call)                                                         \
	({                                                                    \
		tls_forwarding++;                                             \
		__typeof__(call) r_ = (call);                                 \
		tls_forwarding--;                                             \
		r_;                                                           \
	})

static __attribute__((noinline)) MN__NO_TSAN int
exp_munmap(void *addr, size_t len)
{
	/* (A hooker that memnotify handed this call on to may call back here
	   as its "original": it was reported.) */
	if (!ORIGINAL(SYS_munmap, addr, len))
		report(MN_VM_UNMAP, addr, len, -1, 0, 0, 0);
	if (!next.munmap)
		return (int)syscall(SYS_munmap, addr, len);
	return FORWARD(next.munmap(addr, len));
}

MN_API MN__NO_TSAN int mprotect(void *addr, size_t len, int prot)
{
	if (!ORIGINAL(SYS_mprotect, addr, len))
		report(MN_VM_PROTECT, addr, len, prot, 0, 0, 0);
	if (!next.mprotect)
		return (int)syscall(SYS_mprotect, addr, len, prot);
	return FORWARD(next.mprotect(addr, len, prot));
}

MN_API MN__NO_TSAN int pkey_mprotect(void *addr, size_t len, int prot, int pkey)
{
	report(MN_VM_PROTECT, addr, len, prot, 0, 0, 0);
	if (!next.pkey_mprotect)
		return mn_pkey_mprotect_impl(addr, len, prot, pkey);
	return FORWARD(next.pkey_mprotect(addr, len, prot, pkey));
}

static __attribute__((noinline)) MN__NO_TSAN int
exp_madvise(void *addr, size_t len, int advice)
{
	struct mn__vm_discard d;
	bool held = !ORIGINAL(SYS_madvise, addr, len) &&
		    discard_begin(addr, len, advice, &d);
	int r;

	if (!next.madvise)
		r = (int)syscall(SYS_madvise, addr, len, advice);
	else
		r = FORWARD(next.madvise(addr, len, advice));
	if (held)
		mn__vm_discard_end(&d);
	return r;
}

static __attribute__((noinline)) MN__NO_TSAN void *
exp_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if ((flags & MAP_FIXED) && !(flags & MAP_FIXED_NOREPLACE) &&
	    !ORIGINAL(SYS_mmap, addr, len))
		report(MN_VM_UNMAP, addr, len, -1, 0, 0, 0);
	if (!next.mmap)
		return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
	return FORWARD(next.mmap(addr, len, prot, flags, fd, off));
}

static __attribute__((noinline)) MN__NO_TSAN void *
exp_mremap(void *old, size_t old_len, size_t new_len, int flags, void *new_addr)
{
	/* A hooker that called us as its "original" may have lost it. */
	new_addr = mremap_new_addr(old, old_len, new_len, flags, new_addr);
	if (!next.mremap)
		return mn_mremap_impl(old, old_len, new_len, flags, new_addr);
	if (atomic_load_explicit(&mn__vm_active, memory_order_relaxed) &&
	    !ORIGINAL(SYS_mremap, old, old_len)) {
		report_mremap(old, old_len, new_len, flags, new_addr);
		if ((flags & MREMAP_MAYMOVE) && !(flags & MREMAP_FIXED) &&
		    new_len > old_len) {
			void *r = FORWARD(next.mremap(old, old_len, new_len, 0));
			if (r != MAP_FAILED)
				return r;
			report(MN_VM_MOVE, old, old_len, -1, 0, 0, new_len);
		}
	}
	struct mremap_args saved = mremap_arm(old, old_len, new_len, flags, new_addr);
	void *r = FORWARD(next.mremap(old, old_len, new_len, flags, new_addr));
	mremap_disarm(saved);
	return r;
}

/*
 * syscall(): the C library's, with one repair: an mremap that memnotify
 * handed on to another hooker gets back the new address that hooker lost
 * (see tls_mremap).  Nothing is reported here — a raw system call is
 * still caught by userfaultfd only.  The kernel takes at most six
 * arguments; like the C library's, this reads six whatever the caller
 * passed: the sixth comes from the caller's stack, a slot a caller of
 * fewer arguments never wrote, so AddressSanitizer must not check this
 * function's reads (the C library's, in assembly, is not checked either).
 * Async-signal-safe.
 */
#if defined(__SANITIZE_ADDRESS__)
__attribute__((no_sanitize_address))
#endif
MN_API MN__NO_TSAN long syscall(long nr, ...)
{
	long a[6];
	va_list ap;

	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (MN__UNLIKELY(nr == SYS_mremap))
		a[4] = (long)mremap_new_addr((void *)a[0], (size_t)a[1],
					     (size_t)a[2], (int)a[3],
					     (void *)a[4]);
	return raw_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* The extent of the mappings that start at @addr and continue without a
   gap (mprotect may have split a shm segment).  Async-signal-safe. */
MN__NO_TSAN static size_t mapping_length(uintptr_t addr)
{
	uintptr_t start, end, at = addr;
	int prot;

	while (mn__maps_lookup(at, &start, &end, &prot) == 0 &&
	       (at == addr ? start == addr : start == at))
		at = end;
	return at - addr;
}

static __attribute__((noinline)) MN__NO_TSAN int
exp_shmdt(const void *addr)
{
	if (atomic_load_explicit(&mn__vm_active, memory_order_relaxed))
		report(MN_VM_UNMAP, addr, mapping_length((uintptr_t)addr), -1, 0,
		       0, 0);
	/* The C library's shmdt is not redirected: a hooker that took this
	   interposer (hijacked()) is called from here. */
	if (chained.shmdt)
		return FORWARD(chained.shmdt(addr));
	if (!next.shmdt)
		return (int)syscall(SYS_shmdt, addr);
	return FORWARD(next.shmdt(addr));
}

MN_API MN__NO_TSAN int shmdt(const void *addr)
{
	return exp_shmdt(addr);
}

static __attribute__((noinline)) MN__NO_TSAN int
exp_brk(void *addr)
{
	if (atomic_load_explicit(&mn__vm_active, memory_order_relaxed)) {
		uintptr_t cur = (uintptr_t)syscall(SYS_brk, 0);
		if ((uintptr_t)addr < cur)
			report(MN_VM_UNMAP, addr, cur - (uintptr_t)addr, -1, 0, 0, 0);
	}
	if (!next.brk)
		return syscall(SYS_brk, addr) == (long)(uintptr_t)addr ? 0 : -1;
	return FORWARD(next.brk(addr));
}

static __attribute__((noinline)) MN__NO_TSAN void *
exp_sbrk(intptr_t incr)
{
	if (incr < 0 && atomic_load_explicit(&mn__vm_active, memory_order_relaxed)) {
		uintptr_t cur = (uintptr_t)syscall(SYS_brk, 0);
		report(MN_VM_UNMAP, (void *)(cur + (uintptr_t)incr), (size_t)-incr,
		       -1, 0, 0, 0);
	}
	if (!next.sbrk) {
		errno = ENOMEM;
		return (void *)-1;
	}
	return FORWARD(next.sbrk(incr));
}

/*
 * The exported interposers proper.  Each only calls its body above, which
 * is also where a redirection leads when another hooker wrote its jump
 * over the interposer itself: a hooker that finds "the original munmap"
 * with dlsym(RTLD_NEXT) from a library linked before libmemnotify finds
 * this one (UCX's libucm does, linked -lucm -lucs -lmemnotify).
 */
MN_API MN__NO_TSAN int munmap(void *addr, size_t len)
{
	return exp_munmap(addr, len);
}

MN_API MN__NO_TSAN int madvise(void *addr, size_t len, int advice)
{
	return exp_madvise(addr, len, advice);
}

MN_API MN__NO_TSAN void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return exp_mmap(addr, len, prot, flags, fd, off);
}

MN_API void *mmap64(void *addr, size_t len, int prot, int flags, int fd,
		    off_t off) __attribute__((alias("mmap")));

/* The 5th argument only with MREMAP_FIXED, which says it is there. */
#define MREMAP_VA_BODY                                                        \
	void *new_addr = NULL;                                                \
	va_list ap;                                                           \
									      \
	if (flags & MREMAP_FIXED) {                                           \
		va_start(ap, flags);                                          \
		new_addr = va_arg(ap, void *);                                \
		va_end(ap);                                                   \
	}                                                                     \
	return exp_mremap(old, old_len, new_len, flags, new_addr)

MN_API MN__NO_TSAN void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	MREMAP_VA_BODY;
}

/* Where a redirected mremap interposer leads (it must read the 5th
   argument the same way). */
static __attribute__((noinline, unused)) MN__NO_TSAN void *
exp_mremap_va(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	MREMAP_VA_BODY;
}

MN_API MN__NO_TSAN int brk(void *addr)
{
	return exp_brk(addr);
}

MN_API MN__NO_TSAN void *sbrk(intptr_t incr)
{
	return exp_sbrk(incr);
}

bool mn__vm_interposing(void)
{
	return interposing;
}

/* --- entry redirection (x86-64) ------------------------------------------------ */

#if defined(__x86_64__)
/*
 * The dynamic loader keeps its own copies of munmap and mprotect (dlopen
 * maps, protects RELRO and unmaps its cache with them), with no symbol to
 * find them by: they are the two 16-byte-aligned system-call stubs
 *   mov $NR,%eax; syscall; cmp $-4095,%rax; jae 1f; ret
 *   1: lea rtld_errno(%rip),%rcx; neg %eax; mov %eax,(%rcx); ...
 * Exactly one match each is required, or nothing is changed.  The
 * replacements set the loader's own errno variable on failure.
 */
static int *ldso_errno;

static int ldso_fail(long r)
{
	if (r < 0 && r > -4096) {
		if (ldso_errno)
			*ldso_errno = (int)-r;
		return -1;
	}
	return (int)r;
}

static long raw_syscall3(long nr, long a, long b, long c)
{
	long ret;
	register long r10 __asm__("r10") = 0;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
			 : "rcx", "r11", "memory");
	return ret;
}

static int mn_ldso_munmap(void *addr, size_t len)
{
	report(MN_VM_UNMAP, addr, len, -1, 0, 0, 0);
	return ldso_fail(raw_syscall3(SYS_munmap, (long)addr, (long)len, 0));
}

static int mn_ldso_mprotect(void *addr, size_t len, int prot)
{
	report(MN_VM_PROTECT, addr, len, prot, 0, 0, 0);
	return ldso_fail(raw_syscall3(SYS_mprotect, (long)addr, (long)len, prot));
}

static unsigned char *find_stub(unsigned char *lo, unsigned char *hi, int nr,
				int *count)
{
	static const unsigned char tail[] = { 0x0f, 0x05, 0x48, 0x3d, 0x01, 0xf0,
					      0xff, 0xff, 0x73, 0x01, 0xc3, 0x48,
					      0x8d, 0x0d };
	unsigned char *found = NULL;

	*count = 0;
	for (unsigned char *p = (unsigned char *)(((uintptr_t)lo + 15) & ~(uintptr_t)15);
	     p + 32 <= hi; p += 16) {
		if (p[0] != 0xb8 || p[1] != nr || p[2] || p[3] || p[4])
			continue;
		if (memcmp(p + 5, tail, sizeof(tail)))
			continue;
		found = p;
		(*count)++;
	}
	return found;
}

#include <elf.h>
#include <link.h>
#include <sys/auxv.h>

/* The loader's munmap and mprotect stubs, or -errno. */
static int find_ldso_stubs(void **mp_out, void **mu_out)
{
	uintptr_t base = getauxval(AT_BASE);
	const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)base;
	unsigned char *lo = NULL, *hi = NULL;
	unsigned char *mp, *mu;
	int nmp, nmu;

	if (!base || memcmp(eh->e_ident, ELFMAG, SELFMAG))
		return -ENOENT;
	for (int i = 0; i < eh->e_phnum; i++) {
		const ElfW(Phdr) *ph = (const ElfW(Phdr) *)(base + eh->e_phoff +
							    (size_t)i * eh->e_phentsize);
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
			lo = (unsigned char *)(base + ph->p_vaddr);
			hi = lo + ph->p_memsz;
		}
	}
	if (!lo)
		return -ENOENT;
	mp = find_stub(lo, hi, SYS_mprotect, &nmp);
	mu = find_stub(lo, hi, SYS_munmap, &nmu);
	if (nmp != 1 || nmu != 1)
		return -ESRCH; /* not the code we know: leave it alone */
	/* Both stubs store into the same errno variable. */
	int32_t disp;
	memcpy(&disp, mp + 19, 4);
	int *e1 = (int *)(mp + 23 + disp);
	memcpy(&disp, mu + 19, 4);
	int *e2 = (int *)(mu + 23 + disp);
	if (e1 != e2)
		return -ESRCH;
	ldso_errno = e1;
	*mp_out = mp;
	*mu_out = mu;
	return 0;
}


enum { R_MUNMAP, R_MREMAP, R_MPROTECT, R_PKEY_MPROTECT, R_MADVISE, R_MMAP,
       R_BRK, R_SBRK, R_LIBC_COUNT, R_LDSO_MPROTECT = R_LIBC_COUNT,
       R_LDSO_MUNMAP, R_EXP_MUNMAP, R_EXP_MREMAP, R_EXP_MADVISE, R_EXP_MMAP,
       R_EXP_BRK, R_EXP_SBRK, R_EXP_SHMDT, R_COUNT };

static struct mn__x86_redirect redirects[R_COUNT] = {
	[R_MUNMAP] = { .name = "munmap", .target = (void *)mn_munmap_impl },
	[R_MREMAP] = { .name = "mremap", .target = (void *)mn_mremap_entry },
	[R_MPROTECT] = { .name = "mprotect", .target = (void *)mn_mprotect_impl },
	[R_PKEY_MPROTECT] = { .name = "pkey_mprotect",
			      .target = (void *)mn_pkey_mprotect_impl },
	[R_MADVISE] = { .name = "madvise", .target = (void *)mn_madvise_impl },
	[R_MMAP] = { .name = "mmap", .target = (void *)mn_mmap_impl },
	[R_BRK] = { .name = "brk", .target = (void *)mn_brk_impl },
	[R_SBRK] = { .name = "sbrk", .target = (void *)mn_sbrk_impl },
	[R_LDSO_MPROTECT] = { .name = "ld.so mprotect",
			      .target = (void *)mn_ldso_mprotect },
	[R_LDSO_MUNMAP] = { .name = "ld.so munmap",
			    .target = (void *)mn_ldso_munmap },
	/* memnotify's own interposers, redirected to their bodies only when
	   another hooker wrote its jump over them (see hijacked()). */
	[R_EXP_MUNMAP] = { .name = "memnotify's munmap", .target = (void *)exp_munmap },
	[R_EXP_MREMAP] = { .name = "memnotify's mremap", .target = (void *)exp_mremap_va },
	[R_EXP_MADVISE] = { .name = "memnotify's madvise", .target = (void *)exp_madvise },
	[R_EXP_MMAP] = { .name = "memnotify's mmap", .target = (void *)exp_mmap },
	[R_EXP_BRK] = { .name = "memnotify's brk", .target = (void *)exp_brk },
	[R_EXP_SBRK] = { .name = "memnotify's sbrk", .target = (void *)exp_sbrk },
	[R_EXP_SHMDT] = { .name = "memnotify's shmdt", .target = (void *)exp_shmdt },
};

/* The interposer each R_EXP_ entry watches. */
static void *const exported[R_COUNT] = {
	[R_EXP_MUNMAP] = (void *)munmap, [R_EXP_MREMAP] = (void *)mremap,
	[R_EXP_MADVISE] = (void *)madvise, [R_EXP_MMAP] = (void *)mmap,
	[R_EXP_BRK] = (void *)brk, [R_EXP_SBRK] = (void *)sbrk,
	[R_EXP_SHMDT] = (void *)shmdt,
};

/* Another hooker's jump already at an entry: our replacement calls it. */
static void **const chain_slot[R_COUNT] = {
	[R_MUNMAP] = (void **)&chained.munmap,
	[R_MREMAP] = (void **)&chained.mremap,
	[R_MPROTECT] = (void **)&chained.mprotect,
	[R_MADVISE] = (void **)&chained.madvise,
	[R_MMAP] = (void **)&chained.mmap,
	[R_BRK] = (void **)&chained.brk,
	[R_SBRK] = (void **)&chained.sbrk,
	/* A hooker that took memnotify's interposer is handed the call where
	   it would have been had it taken the C library's entry. */
	[R_EXP_MUNMAP] = (void **)&chained.munmap,
	[R_EXP_MREMAP] = (void **)&chained.mremap,
	[R_EXP_MADVISE] = (void **)&chained.madvise,
	[R_EXP_MMAP] = (void **)&chained.mmap,
	[R_EXP_BRK] = (void **)&chained.brk,
	[R_EXP_SBRK] = (void **)&chained.sbrk,
	[R_EXP_SHMDT] = (void **)&chained.shmdt,
};

/*
 * Interposers of memnotify's that carry another hooker's jump: each is
 * redirected to its body, and the hooker is called from the C library's
 * entry (note_chains()), so that it sees both the program's calls and the
 * C library's own, and memnotify sees them before it.
 */
static void hijacked(void)
{
	for (int i = R_EXP_MUNMAP; i <= R_EXP_SHMDT; i++) {
		struct mn__x86_site site;
		char why[120];

		redirects[i].entry = NULL;
		if (mn__x86_find_site(exported[i],
				      mn__x86_code_avail(exported[i], 16),
				      (uintptr_t)exported[i], &site, why,
				      sizeof(why)) == 0 &&
		    site.chain && site.chain != (uintptr_t)redirects[i].target &&
		    !*chain_slot[i])
			redirects[i].entry = exported[i];
	}
}

static void fail(int err, const char *fmt, const char *arg)
{
	patch.err = err;
	snprintf(patch.detail, sizeof(patch.detail), fmt, arg);
}

/*
 * The C library's entry points, looked up by each caller of
 * mn__vm_hooks_install() before it enters the once (dlopen and dlsym take
 * the loader's lock: see there).  @missing names the first one not found.
 */
struct libc_syms {
	bool loaded;                 /* libc.so.6 is in the process */
	void *entry[R_LIBC_COUNT];
	void **curbrk;
	const char *missing;
};

static void lookup_libc(struct libc_syms *ls)
{
	void *libc = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);

	memset(ls, 0, sizeof(*ls));
	if (!libc)
		return;
	ls->loaded = true;
	ls->curbrk = (void **)dlsym(libc, "__curbrk");
	for (int i = 0; i < R_LIBC_COUNT; i++) {
		ls->entry[i] = dlsym(libc, redirects[i].name);
		if (!ls->entry[i] && !ls->missing)
			ls->missing = redirects[i].name;
	}
	dlclose(libc); /* RTLD_NOLOAD: libc stays, as do its addresses */
}

/* Which entries to redirect; false (with the reason set) when none. */
static bool collect_entries(const struct libc_syms *ls)
{
	void *mp, *mu;

	if (ls->missing) {
		fail(-ENOENT, "libc.so.6 has no %s", ls->missing);
		return false;
	}
	libc_curbrk = ls->curbrk;
	for (int i = 0; i < R_LIBC_COUNT; i++)
		redirects[i].entry = ls->entry[i];
	if (!libc_curbrk) /* a C library that keeps the break elsewhere */
		redirects[R_BRK].entry = redirects[R_SBRK].entry = NULL;
	patch.ldso_err = find_ldso_stubs(&mp, &mu);
	if (!patch.ldso_err) {
		redirects[R_LDSO_MPROTECT].entry = mp;
		redirects[R_LDSO_MUNMAP].entry = mu;
	}
	return true;
}

/* Before any jump exists: where a previous hooker's jump leads. */
static void note_chains(void)
{
	for (int i = 0; i < R_COUNT; i++) {
		struct mn__x86_site site;
		char why[120];
		if (chain_slot[i] && redirects[i].entry &&
		    mn__x86_find_site(redirects[i].entry,
				      mn__x86_code_avail(redirects[i].entry, 16),
				      (uintptr_t)redirects[i].entry, &site, why,
				      sizeof(why)) == 0)
			*chain_slot[i] = (void *)site.chain;
	}
}

/* A real call of the C library's own munmap entry (not our export) on
   this thread must be seen. */
static bool selftest(void)
{
	void *p = (void *)syscall(SYS_mmap, NULL, 4096, PROT_READ,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return false;
	tls_selftest_hits = 0;
	tls_selftest = 1;
	((munmap_fn)redirects[R_MUNMAP].entry)(p, 4096);
	tls_selftest = 0;
	return tls_selftest_hits > 0;
}

static void describe(int done)
{
	char refused[100] = "";
	size_t k = 0;

	for (int i = 0; i < R_COUNT; i++)
		if (redirects[i].entry && redirects[i].err == -ENOTSUP && k < 60)
			k += (size_t)snprintf(refused + k, sizeof(refused) - k,
					      "%s%s", k ? ", " : "; refused: ",
					      redirects[i].name);
	int taken = 0;
	for (int i = R_EXP_MUNMAP; i <= R_EXP_SHMDT; i++)
		taken += redirects[i].done;
	snprintf(patch.detail, sizeof(patch.detail),
		 "%d entry points redirected (loader: %s)%s; self-test passed%s",
		 done, patch.ldso_err ? strerror(-patch.ldso_err) : "yes",
		 refused, taken ? "; memnotify's interposers taken back from "
				  "another hooker" : "");
}

/*
 * Another hooker that installs after memnotify (UCX's libucm loaded with
 * dlopen(), say) writes its jump over memnotify's at the same entry: the
 * C library's internal calls then reach only that hooker.  Each
 * mn__vm_hooks_install() (every watch and listener) compares the first
 * bytes of every redirected entry with what memnotify left there — a few
 * loads — and when they changed, chains onto the newcomer: the chain slot
 * takes the newcomer's target (or none, when the original code came back),
 * then a new jump goes over the newcomer's.  No memnotify lock is held; a
 * second thread that finds the work taken skips it.  Not signal-safe.
 */
static unsigned char heads[R_COUNT][16];
static atomic_int rechain_owner; /* pid of the thread's process at work */
static atomic_int rechains;      /* how many entries were chained again */
static char lost[100];           /* entries whose jump is gone for good */

static bool gave_up[R_COUNT];    /* heads[] holds the other's code */

static bool entry_changed(const struct mn__x86_redirect *r, int i)
{
	return memcmp(r->entry, heads[i], sizeof(heads[i])) ||
	       (!gave_up[i] && memcmp((const void *)r->word, r->patched, r->width));
}

static void remember_heads(void)
{
	for (int i = 0; i < R_COUNT; i++)
		if (redirects[i].done)
			memcpy(heads[i], redirects[i].entry, sizeof(heads[i]));
}

/* Chain onto what is now at entry @i; false when that cannot be done. */
static bool rechain_one(int i)
{
	struct mn__x86_redirect *r = &redirects[i];
	struct mn__x86_redirect one = *r;
	struct mn__x86_site site;
	char why[120];

	if (!chain_slot[i] ||
	    mn__x86_find_site(r->entry, mn__x86_code_avail(r->entry, 64),
			      (uintptr_t)r->entry, &site, why, sizeof(why)))
		return false;
	*chain_slot[i] = (void *)site.chain; /* before the jump leads here */
	if (mn__x86_redirect_all(&one, 1, (uintptr_t)r->entry, why,
				 sizeof(why)) != 1)
		return false;
	*r = one;
	gave_up[i] = false;
	memcpy(heads[i], r->entry, sizeof(heads[i]));
	atomic_fetch_add_explicit(&rechains, 1, memory_order_relaxed);
	mn__info("vm hooks: another hooker's jump replaced memnotify's at the C "
		 "library's %s; chained onto it again (%s)", r->name,
		 site.chain ? "both see every call" : "its original code is back");
	return true;
}

static void rechain(void)
{
	bool any = false;
	int me, cur;
	size_t k;

	for (int i = 0; i < R_COUNT && !any; i++)
		any = redirects[i].done && entry_changed(&redirects[i], i);
	if (!any)
		return;
	/* One thread at a time; a child of a fork() inherits a parent's
	   mark, which is not its own. */
	me = (int)getpid();
	cur = atomic_load(&rechain_owner);
	if ((cur && cur == me) ||
	    !atomic_compare_exchange_strong(&rechain_owner, &cur, me))
		return;
	k = strlen(lost);
	for (int i = 0; i < R_COUNT; i++) {
		if (!redirects[i].done || !entry_changed(&redirects[i], i) ||
		    rechain_one(i))
			continue;
		/* Given up until the code there changes again. */
		memcpy(heads[i], redirects[i].entry, sizeof(heads[i]));
		gave_up[i] = true;
		mn__warn("vm hooks: another hooker replaced memnotify's jump at the "
			 "C library's %s with code memnotify cannot chain onto: the "
			 "C library's own calls of it reach only that hooker",
			 redirects[i].name);
		if (k < sizeof(lost) - 20 && !strstr(lost, redirects[i].name))
			k += (size_t)snprintf(lost + k, sizeof(lost) - k, "%s%s",
					      k ? ", " : "", redirects[i].name);
	}
	atomic_store(&rechain_owner, 0);
}

/* mn__once, no memnotify lock held. */
static void install(void *arg)
{
	const char *off = secure_getenv("MEMNOTIFY_NO_PATCH");
	const struct libc_syms *ls = arg;
	char why[100];
	size_t n = 0;

#if defined(__SANITIZE_THREAD__)
	/* TSan's runtime calls the C library's mmap/munmap itself, from places
	   that cannot run instrumented code: leave the entry points alone. */
	fail(-EOPNOTSUPP, "%s", "not under ThreadSanitizer (its runtime calls "
	     "the C library's entry points itself)");
	return;
#endif
	if (off && *off && *off != '0') {
		fail(-EPERM, "%s", "turned off by MEMNOTIFY_NO_PATCH");
		return;
	}
	if (!ls->loaded) {
		fail(-ENOENT, "%s", "libc.so.6 is not loaded (static program?)");
		return;
	}
	if (!collect_entries(ls))
		return;
	hijacked();
	note_chains();
	/* Entries that are NULL (brk without __curbrk, no loader stubs) are
	   compacted away: redirect_all sees only real ones. */
	struct mn__x86_redirect *live[R_COUNT];
	struct mn__x86_redirect batch[R_COUNT];
	for (int i = 0; i < R_COUNT; i++)
		if (redirects[i].entry) {
			live[n] = &redirects[i];
			batch[n++] = redirects[i];
		}
	int done = mn__x86_redirect_all(batch, n, (uintptr_t)redirects[R_MUNMAP].entry,
				       why, sizeof(why));
	for (size_t i = 0; i < n; i++)
		*live[i] = batch[i];
	if (done < 0) {
		fail(done, "nothing redirected: %s", why);
		return;
	}
	if (!redirects[R_MUNMAP].done) {
		mn__x86_unredirect_all(batch, n);
		for (size_t i = 0; i < n; i++)
			*live[i] = batch[i];
		fail(-ENOTSUP, "munmap not redirected: %s", redirects[R_MUNMAP].why);
		return;
	}
	if (!selftest()) {
		mn__x86_unredirect_all(batch, n);
		for (size_t i = 0; i < n; i++)
			*live[i] = batch[i];
		fail(-EIO, "%s", "redirected, but the self-test call was not seen: "
		     "undone");
		return;
	}
	patch.err = 0;
	remember_heads();
	describe(done);
}

#endif

/* No memnotify lock held: install the redirection once, in the first
   thread that needs it; others wait for it. */
void mn__vm_hooks_install(void)
{
	resolve_next();
#if defined(__x86_64__)
	/*
	 * The loader's lock is taken by dlopen()/dlsym()/dlclose(), and held
	 * while dlopen() runs a module's constructors — which may call
	 * mn_vm_watch() and wait here for the install.  So the install itself
	 * must never wait for that lock: every caller looks the C library up
	 * before entering the once (a caller inside a constructor takes the
	 * lock recursively), and the winner installs from its own lookup.
	 */
	if (!mn__once_done(&patch.once)) {
		struct libc_syms ls;
		lookup_libc(&ls);
		mn__once(&patch.once, install, &ls);
	} else if (!patch.err) {
		rechain();
	}
#else
	patch.err = -EOPNOTSUPP;
	snprintf(patch.detail, sizeof(patch.detail),
		 "entry redirection is implemented for x86-64 only");
#endif
}

int mn__vm_patch_status(char *detail, size_t len)
{
	mn__vm_hooks_install();
#if defined(__x86_64__)
	int again = atomic_load_explicit(&rechains, memory_order_relaxed);
	if (!patch.err && (again || lost[0])) {
		snprintf(detail, len, "%s; chained again onto a later hooker: %d%s%s%s",
			 patch.detail, again,
			 lost[0] ? "; jump replaced by another hooker, the C "
				   "library's own calls of " : "",
			 lost, lost[0] ? " reach only that hooker" : "");
		return 0;
	}
#endif
	snprintf(detail, len, "%s", patch.detail);
	return patch.err;
}

int mn__probe_vm_interpose(char *detail, size_t len)
{
	if (!mn__vm_interposing()) {
		snprintf(detail, len,
			 "munmap() resolves to another library: load libmemnotify "
			 "at start (link it or LD_PRELOAD it)");
		return -ENOENT;
	}
	snprintf(detail, len, "munmap(), mprotect(), madvise(), ... calls reach "
			      "memnotify");
	return 0;
}

int mn__probe_vm_libc_patch(char *detail, size_t len)
{
	return mn__vm_patch_status(detail, len);
}
