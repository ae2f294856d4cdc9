/* SPDX-License-Identifier: MIT */
/*
 * The x86-64 code patcher of the entry redirection: where a jump may go in
 * a function's first instructions (insn.c), and writing it so that no
 * thread of the process can ever run a half-written or non-executable
 * instruction (patch.c).  See ARCHITECTURE.md, "Redirecting entry points".
 *
 * Nothing here knows about memnotify's events: the redirection machinery
 * of src/vmrange/hooks.c hands in (entry, replacement) pairs.
 */
#ifndef MN_VMRANGE_X86_64_PATCH_H
#define MN_VMRANGE_X86_64_PATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Where the 5-byte `jmp rel32` goes, found by decoding from @code (the
 * function's entry, @avail readable bytes):
 *  - a run of *prefix* instructions that the jump may follow — each has an
 *    effect the landing pad can undo or that does not matter at a call
 *    boundary: endbr64; a register move into %rax, %r10 or %r11 (scratch,
 *    not an argument); a compare or test of registers (flags only);
 *    `sub $imm,%rsp` and `push %reg` (undone: the pad adds their total
 *    back to %rsp first);
 *  - then the *site*: one whole instruction of at least 5 bytes, which the
 *    jump replaces.  No instruction boundary lies inside the 5 patched
 *    bytes, so a thread stopped anywhere — at the entry, between prefix
 *    instructions, at the site, past it, or in a signal handler that
 *    interrupted any of those — resumes at a boundary the new code still
 *    has, and one atomic store makes the site either the old instruction
 *    or the jump.
 * Anything else — an instruction this decoder does not know, a branch
 * before a long enough instruction, a breakpoint (int3), another hooker's
 * indirect jump — is refused with the reason in @why, never guessed.  A
 * `jmp rel32` site (another hooker that patched the same way) is accepted
 * and its target returned in @chain, so the replacement can call it.
 *
 * Returns 0, or -ENOTSUP with @why filled.  Pure: reads @code only.
 */
struct mn__x86_site {
	size_t offset;          /* of the site from the entry */
	size_t length;          /* of the site instruction (>= 5) */
	uint32_t stack_adjust;  /* bytes the prefix took from %rsp */
	uintptr_t chain;        /* a jmp rel32 site's target, or 0 */
};
int mn__x86_find_site(const unsigned char *code, size_t avail, uintptr_t addr,
		      struct mn__x86_site *site, char *why, size_t whylen);

/* How many of the @want bytes from @code can be read: @want, or fewer when
   the mapping that holds @code ends sooner (0 when it is not mapped).  The
   decoder is never handed bytes past the end of an entry's mapping. */
size_t mn__x86_code_avail(const void *code, size_t want);

/* The length of the instruction at @p (at most @avail bytes), or 0 when it
   is not one this decoder knows.  Pure. */
size_t mn__x86_insn_length(const unsigned char *p, size_t avail);

/*
 * One redirection: calls that reach @entry run @target instead (with the
 * same arguments and return address).  @name is for reasons.
 */
struct mn__x86_redirect {
	const char *name;
	void *entry;
	void *target;
	/* Filled by mn__x86_redirect_all(): */
	struct mn__x86_site site;
	bool done;              /* the jump is in place */
	int err;                /* why not: -ENOTSUP refused, other failed */
	char why[120];
	uintptr_t word;         /* the aligned 8 or 16 bytes written */
	unsigned int width;
	unsigned char orig[16], patched[16];
};

/*
 * Redirect each of @r[0..n) whose site is acceptable, from landing pads
 * within ±2 GiB of @near:
 *  1. decode every site (a refusal skips that entry: ->err = -ENOTSUP);
 *  2. write the landing pads (undo the prefix, then movabs + jmp *%r11)
 *     into a fresh mapping and make it read+execute — checked, before any
 *     jump exists;
 *  3. per entry: make the one page that holds the site writable (its
 *     protection read from /proc/self/maps, execute kept), write the jump
 *     with one atomic 8- or 16-byte compare-and-swap (it must still hold
 *     what was decoded), restore the page's protection — checked;
 *  4. serialize every core that runs this process (membarrier
 *     SYNC_CORE where the kernel has it).
 * Any failure in 2–3 undoes every jump already written and returns -errno
 * with the reason in @detail; landing pads are never unmapped (a thread
 * may still be running in one).  Returns the number of entries redirected
 * (>= 0), or -errno.  Not thread-safe against itself: the caller runs it
 * once (mn__once).  Not async-signal-safe.
 */
int mn__x86_redirect_all(struct mn__x86_redirect *r, size_t n, uintptr_t near,
			 char *detail, size_t len);
/* Put back the original bytes of every done entry of @r (after a failed
   self-test), as safely as they were written.  Returns 0 or -errno. */
int mn__x86_unredirect_all(struct mn__x86_redirect *r, size_t n);
/* What serialization the last redirect_all used (for the capability
   detail): "membarrier SYNC_CORE" or a reason it was not available. */
const char *mn__x86_sync_method(void);

#endif
