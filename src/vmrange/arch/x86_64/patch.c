/* SPDX-License-Identifier: MIT */
/*
 * Writing the entry redirection's jumps (see patch.h for the contract and
 * ARCHITECTURE.md, "Redirecting entry points", for why it is safe against
 * every other thread at every instruction).
 *
 * Order of work: decode every site; build every landing pad and make the
 * pads executable (checked) — only then write any jump; for each jump make
 * exactly the page that holds it writable (execute kept, so threads running
 * elsewhere on that page go on), compare-and-swap the aligned word, put the
 * page's own protection back (checked); serialize all cores.  A failure
 * undoes every jump already written.
 */
#include <cpuid.h>
#include <errno.h>
#include <linux/membarrier.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../../../core/internal.h"
#include "patch.h"

#define PAD_SIZE 32

static const char *sync_method = "not run";

const char *mn__x86_sync_method(void)
{
	return sync_method;
}

/*
 * Every core that runs a thread of this process executes a serializing
 * instruction before it returns to user space (membarrier SYNC_CORE), so
 * no core keeps running instructions it fetched before the change.
 * Without it the jump still lands atomically: a core that fetched early
 * runs the old, whole instruction once more.
 */
static void serialize_cores(void)
{
	static int state; /* 0 unknown, 1 registered, -1 not available */
	long cmds;

	if (state == 0) {
		cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
		if (cmds >= 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE) &&
		    syscall(SYS_membarrier,
			    MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, 0,
			    0) == 0)
			state = 1;
		else
			state = -1;
	}
	if (state == 1 &&
	    syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0,
		    0) == 0) {
		sync_method = "membarrier SYNC_CORE";
		return;
	}
	sync_method = "no membarrier SYNC_CORE on this kernel (jumps are "
		      "atomic; a core may run an old instruction once more)";
}

static bool have_cx16(void)
{
	unsigned int a, b, c, d;

	return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_CMPXCHG16B);
}

/* One atomic compare-and-swap of the aligned word at @addr. */
static bool cas_word(uintptr_t addr, unsigned int width, const unsigned char *old,
		     const unsigned char *new_)
{
	if (width == 8) {
		uint64_t o, n;
		memcpy(&o, old, 8);
		memcpy(&n, new_, 8);
		return __atomic_compare_exchange_n((uint64_t *)addr, &o, n, false,
						   __ATOMIC_SEQ_CST,
						   __ATOMIC_SEQ_CST);
	}
	uint64_t olo, ohi, nlo, nhi;
	bool ok;
	memcpy(&olo, old, 8);
	memcpy(&ohi, old + 8, 8);
	memcpy(&nlo, new_, 8);
	memcpy(&nhi, new_ + 8, 8);
	__asm__ volatile("lock cmpxchg16b %1"
			 : "=@ccz"(ok), "+m"(*(volatile unsigned __int128 *)addr),
			   "+a"(olo), "+d"(ohi)
			 : "b"(nlo), "c"(nhi)
			 : "memory");
	return ok;
}

static uintptr_t page_of(uintptr_t a)
{
	return a & ~((uintptr_t)sysconf(_SC_PAGESIZE) - 1);
}

/*
 * Replace @from with @to in the aligned word at @addr: the one page that
 * holds it made writable with execute kept, the swap, the page's own
 * protection restored.  Returns 0 or -errno with @why filled.
 */
static int write_word(uintptr_t addr, unsigned int width, const unsigned char *from,
		      const unsigned char *to, char *why, size_t whylen)
{
	uintptr_t page = page_of(addr), ms, me;
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	int prot, err = 0;

	if (mn__maps_lookup(addr, &ms, &me, &prot) < 0) {
		snprintf(why, whylen, "its page is not in /proc/self/maps");
		return -ENOENT;
	}
	if (!(prot & PROT_EXEC)) {
		snprintf(why, whylen, "its page is not executable");
		return -EINVAL;
	}
	if (syscall(SYS_mprotect, page, ps, prot | PROT_WRITE) < 0) {
		err = -errno;
		snprintf(why, whylen, "making its page writable was refused: %s",
			 strerror(errno));
		return err;
	}
	if (!cas_word(addr, width, from, to)) {
		snprintf(why, whylen, "its code changed while being patched");
		err = -EBUSY;
	}
	if (syscall(SYS_mprotect, page, ps, prot) < 0) {
		int e = errno;
		/* The code must not stay as patched behind a page we could
		   not protect again: put the old bytes back. */
		if (!err)
			cas_word(addr, width, to, from);
		if (syscall(SYS_mprotect, page, ps, prot) < 0)
			snprintf(why, whylen, "restoring its page's protection was "
				 "refused (%s): the page stays writable",
				 strerror(e));
		else
			snprintf(why, whylen, "restoring its page's protection "
				 "failed once (%s)", strerror(e));
		return -e;
	}
	return err;
}

size_t mn__x86_code_avail(const void *code, size_t want)
{
	uintptr_t a = (uintptr_t)code, ms, me;
	int prot;

	if (mn__maps_lookup(a, &ms, &me, &prot) < 0 || !(prot & PROT_READ))
		return 0;
	return me - a < want ? me - a : want;
}

/* Landing pads within ±2 GiB of @near, below then above. */
static unsigned char *alloc_pads_near(uintptr_t near, size_t len)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);

	len = (len + ps - 1) & ~(ps - 1);
	for (intptr_t delta = 1 << 26; delta < (intptr_t)3 << 29; delta += 1 << 26) {
		for (int side = -1; side <= 1; side += 2) {
			uintptr_t hint = page_of(near + (uintptr_t)(side * delta));
			void *p = (void *)syscall(SYS_mmap, (void *)hint, len,
						  PROT_READ | PROT_WRITE,
						  MAP_PRIVATE | MAP_ANONYMOUS |
							  MAP_FIXED_NOREPLACE,
						  -1, 0);
			if (p == MAP_FAILED)
				continue;
			intptr_t dist = (intptr_t)((uintptr_t)p - near);
			if (dist > -((intptr_t)1 << 31) + (1 << 24) &&
			    dist < ((intptr_t)1 << 31) - (1 << 24))
				return p;
			syscall(SYS_munmap, p, len);
		}
	}
	return NULL;
}

/* lea N(%rsp),%rsp (flags kept); movabs $target,%r11; jmp *%r11. */
static void build_pad(unsigned char *pad, uint32_t stack_adjust, void *target)
{
	size_t k = 0;

	memset(pad, 0xcc, PAD_SIZE);
	if (stack_adjust) {
		static const unsigned char lea[] = { 0x48, 0x8d, 0xa4, 0x24 };
		memcpy(pad, lea, 4);
		memcpy(pad + 4, &stack_adjust, 4);
		k = 8;
	}
	pad[k++] = 0x49;
	pad[k++] = 0xbb;
	memcpy(pad + k, &target, 8);
	k += 8;
	pad[k++] = 0x41;
	pad[k++] = 0xff;
	pad[k] = 0xe3;
}

/* The aligned word that holds the jump at @site, and its new content. */
static int plan_word(struct mn__x86_redirect *r, uintptr_t site, uintptr_t pad,
		     bool cx16)
{
	intptr_t rel = (intptr_t)(pad - (site + 5));
	int32_t r32 = (int32_t)rel;

	if (rel != r32) {
		snprintf(r->why, sizeof(r->why), "its landing pad is out of reach");
		return -ERANGE;
	}
	if ((site & 7u) + 5 <= 8) {
		r->width = 8;
		r->word = site & ~(uintptr_t)7;
	} else if ((site & 15u) + 5 <= 16 && cx16) {
		r->width = 16;
		r->word = site & ~(uintptr_t)15;
	} else {
		snprintf(r->why, sizeof(r->why), "the jump at +%zu would straddle "
			 "an aligned word", r->site.offset);
		return -ENOTSUP;
	}
	memcpy(r->orig, (const void *)r->word, r->width);
	memcpy(r->patched, r->orig, r->width);
	r->patched[site - r->word] = 0xe9;
	memcpy(r->patched + (site - r->word) + 1, &r32, 4);
	return 0;
}

int mn__x86_unredirect_all(struct mn__x86_redirect *r, size_t n)
{
	int err = 0;

	for (size_t i = n; i-- > 0;) {
		char why[120];
		if (!r[i].done)
			continue;
		int e = write_word(r[i].word, r[i].width, r[i].patched, r[i].orig,
				   why, sizeof(why));
		if (e)
			err = e;
		else
			r[i].done = false;
	}
	serialize_cores();
	return err;
}

int mn__x86_redirect_all(struct mn__x86_redirect *r, size_t n, uintptr_t near,
			 char *detail, size_t len)
{
	bool cx16 = have_cx16();
	unsigned char *pads;
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	size_t padlen = (n * PAD_SIZE + ps - 1) & ~(ps - 1);
	int done = 0;

	snprintf(detail, len, "nothing to redirect");
	pads = alloc_pads_near(near, padlen ? padlen : ps);
	if (!pads) {
		snprintf(detail, len, "no room for landing pads within 2 GiB");
		return -ENOMEM;
	}
	/* 1-2: decode, build the pads, make them executable. */
	for (size_t i = 0; i < n; i++) {
		r[i].done = false;
		r[i].err = mn__x86_find_site(r[i].entry,
					     mn__x86_code_avail(r[i].entry, 64),
					     (uintptr_t)r[i].entry,
					     &r[i].site, r[i].why, sizeof(r[i].why));
		if (r[i].err)
			continue;
		build_pad(pads + i * PAD_SIZE, r[i].site.stack_adjust, r[i].target);
		r[i].err = plan_word(&r[i], (uintptr_t)r[i].entry + r[i].site.offset,
				     (uintptr_t)(pads + i * PAD_SIZE), cx16);
	}
	if (syscall(SYS_mprotect, pads, padlen, PROT_READ | PROT_EXEC) < 0) {
		int err = -errno;
		snprintf(detail, len, "making the landing pads executable was "
			 "refused: %s", strerror(errno));
		syscall(SYS_munmap, pads, padlen); /* no jump leads there */
		return err;
	}
	/* 3: the jumps, one page at a time. */
	for (size_t i = 0; i < n; i++) {
		if (r[i].err)
			continue;
		int err = write_word(r[i].word, r[i].width, r[i].orig, r[i].patched,
				     r[i].why, sizeof(r[i].why));
		if (err) {
			snprintf(detail, len, "%s: %s", r[i].name, r[i].why);
			r[i].err = err;
			mn__x86_unredirect_all(r, i);
			return err;
		}
		r[i].done = true;
		done++;
	}
	/* 4. */
	serialize_cores();
	snprintf(detail, len, "%d redirected", done);
	return done;
}
