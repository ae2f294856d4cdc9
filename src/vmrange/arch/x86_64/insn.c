/* SPDX-License-Identifier: MIT */
/*
 * A small x86-64 instruction-length decoder and the choice of a patch site
 * (see patch.h).  It knows the encodings that open system-call wrappers
 * and short functions — moves, arithmetic, compares, pushes, immediate
 * loads, branches, endbr64, syscall — and answers 0 for anything else, so
 * the patcher refuses what it cannot measure instead of guessing.
 *
 * Pure functions: no system calls, no allocation.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "patch.h"

/* ModRM (and SIB and displacement) bytes from @p, or 0 if cut short. */
static size_t modrm_length(const unsigned char *p, size_t avail)
{
	size_t len = 1;
	unsigned int mod, rm;

	if (avail < 1)
		return 0;
	mod = p[0] >> 6;
	rm = p[0] & 7u;
	if (mod != 3 && rm == 4) {
		if (avail < 2)
			return 0;
		len++;
		if (mod == 0 && (p[1] & 7u) == 5)
			len += 4;
	}
	if (mod == 0 && rm == 5)
		len += 4; /* %rip-relative */
	else if (mod == 1)
		len += 1;
	else if (mod == 2)
		len += 4;
	return len <= avail ? len : 0;
}

static bool is_endbr64(const unsigned char *p, size_t avail)
{
	static const unsigned char endbr64[] = { 0xf3, 0x0f, 0x1e, 0xfa };

	return avail >= 4 && !memcmp(p, endbr64, 4);
}

size_t mn__x86_insn_length(const unsigned char *p, size_t avail)
{
	size_t i = 0, m;
	bool opsize16 = false;
	unsigned int rex = 0, op;

	if (is_endbr64(p, avail))
		return 4;
	while (i < avail && i < 4 &&
	       (p[i] == 0x66 || p[i] == 0xf2 || p[i] == 0xf3 || p[i] == 0x2e ||
		p[i] == 0x64 || p[i] == 0x65)) {
		opsize16 |= p[i] == 0x66;
		i++;
	}
	if (i < avail && (p[i] & 0xf0) == 0x40)
		rex = p[i++];
	if (i >= avail)
		return 0;
	op = p[i++];
#define MODRM(extra)                                                          \
	do {                                                                  \
		m = modrm_length(p + i, avail - i);                           \
		if (!m || i + m + (extra) > avail)                            \
			return 0;                                             \
		return i + m + (extra);                                       \
	} while (0)
	if (op == 0x0f) {
		if (i >= avail)
			return 0;
		op = p[i++];
		if (op == 0x05)
			return i; /* syscall */
		if (op >= 0x80 && op <= 0x8f)
			return i + 4 <= avail ? i + 4 : 0; /* jcc rel32 */
		if (op == 0x1f || op == 0xb6 || op == 0xb7 || op == 0xbe ||
		    op == 0xbf || op == 0xaf || (op >= 0x40 && op <= 0x4f) ||
		    op == 0x10 || op == 0x11 || op == 0x28 || op == 0x29 ||
		    op == 0x6f || op == 0x7f)
			MODRM(0);
		return 0;
	}
	if ((op >= 0x50 && op <= 0x5f) || op == 0x90 || op == 0xc3 || op == 0xcc)
		return i;
	if (op >= 0x70 && op <= 0x7f)
		return i + 1 <= avail ? i + 1 : 0; /* jcc rel8 */
	if (op == 0xeb)
		return i + 1 <= avail ? i + 1 : 0;
	if (op == 0xe8 || op == 0xe9)
		return i + 4 <= avail ? i + 4 : 0;
	if (op >= 0xb8 && op <= 0xbf) {
		size_t imm = (rex & 8u) ? 8 : opsize16 ? 2 : 4;
		return i + imm <= avail ? i + imm : 0;
	}
	if ((op < 0x40 && (op & 7u) < 4) || (op >= 0x84 && op <= 0x8b) ||
	    op == 0x8d || op == 0x63 || op == 0xff)
		MODRM(0);
	if (op == 0x80 || op == 0x83 || op == 0xc0 || op == 0xc1 || op == 0x6b ||
	    op == 0xc6)
		MODRM(1);
	if (op == 0x81 || op == 0xc7 || op == 0x69)
		MODRM(opsize16 ? 2u : 4u);
	if (op == 0xf6 || op == 0xf7) {
		unsigned int reg = i < avail ? (p[i] >> 3) & 7u : 8;
		size_t imm = reg > 1 ? 0 : op == 0xf6 ? 1 : opsize16 ? 2 : 4;
		MODRM(imm);
	}
	if (op < 0x40 && (op & 7u) == 4)
		return i + 1 <= avail ? i + 1 : 0; /* op al, imm8 */
	if (op < 0x40 && (op & 7u) == 5) {
		size_t imm = opsize16 ? 2 : 4;
		return i + imm <= avail ? i + imm : 0; /* op eax, imm32 */
	}
	if (op == 0xa8)
		return i + 1 <= avail ? i + 1 : 0;
	if (op == 0xa9)
		return i + 4 <= avail ? i + 4 : 0;
#undef MODRM
	return 0;
}

/* What a short instruction before the site does, as far as a jump that
   follows it is concerned. */
enum prefix_kind { PREFIX_NO, PREFIX_KEEP, PREFIX_STACK };

static enum prefix_kind classify_prefix(const unsigned char *p, size_t len,
					uint32_t *stack)
{
	unsigned int rex = 0, op, dest;
	size_t i = 0;

	*stack = 0;
	if (len == 4 && is_endbr64(p, 4))
		return PREFIX_KEEP;
	if ((p[0] & 0xf0) == 0x40)
		rex = p[i++];
	if (i >= len)
		return PREFIX_NO;
	op = p[i];
	if (op >= 0x50 && op <= 0x57 && i + 1 == len && !(rex & ~0x41u & 0x0fu)) {
		*stack = 8; /* push %reg: undone by adding 8 to %rsp */
		return PREFIX_STACK;
	}
	/* sub $imm8,%rsp (48 83 ec ib), a non-negative amount. */
	if (rex == 0x48 && op == 0x83 && len == 4 && p[2] == 0xec && p[3] < 0x80) {
		*stack = p[3];
		return PREFIX_STACK;
	}
	if (i + 1 >= len || (p[i + 1] >> 6) != 3)
		return PREFIX_NO; /* from here on: register operands only */
	/* mov between registers, into a scratch register that is no
	   argument: %rax, %r10, %r11. */
	if (op == 0x89 || op == 0x8b) {
		unsigned int modrm = p[i + 1];
		dest = op == 0x89 ? (modrm & 7u) | ((rex & 1u) << 3)
				  : ((modrm >> 3) & 7u) | ((rex & 4u) << 1);
		return dest == 0 || dest == 10 || dest == 11 ? PREFIX_KEEP
							     : PREFIX_NO;
	}
	/* Compares and tests of registers: they set flags only, which no
	   function expects to keep across a call. */
	if (op == 0x39 || op == 0x3b || op == 0x84 || op == 0x85)
		return PREFIX_KEEP;
	if (op == 0x83 && ((p[i + 1] >> 3) & 7u) == 7)
		return PREFIX_KEEP; /* cmp $imm8,%reg */
	return PREFIX_NO;
}

static void hexbytes(char *out, size_t outlen, const unsigned char *p, size_t n)
{
	size_t k = 0;

	out[0] = 0;
	for (size_t i = 0; i < n && k + 4 < outlen; i++)
		k += (size_t)snprintf(out + k, outlen - k, "%s%02x", i ? " " : "", p[i]);
}

int mn__x86_find_site(const unsigned char *code, size_t avail, uintptr_t addr,
		      struct mn__x86_site *site, char *why, size_t whylen)
{
	size_t k = 0;
	uint32_t stack = 0;
	char bytes[48];

	memset(site, 0, sizeof(*site));
	while (k < 32 && k < avail) {
		const unsigned char *p = code + k;
		size_t len = mn__x86_insn_length(p, avail - k);
		uint32_t add;

		hexbytes(bytes, sizeof(bytes), p, len ? len : 8 < avail - k ? 8 : avail - k);
		if (!len) {
			snprintf(why, whylen, "+%zu: instruction not known to the "
				 "decoder (%s)", k, bytes);
			return -ENOTSUP;
		}
		if (p[0] == 0xcc) {
			snprintf(why, whylen, "+%zu: a breakpoint (int3) is there", k);
			return -ENOTSUP;
		}
		if (p[0] == 0xff && len >= 2 && (((p[1] >> 3) & 7u) == 4 ||
						  ((p[1] >> 3) & 7u) == 2)) {
			snprintf(why, whylen, "+%zu: an indirect jump or call (%s), "
				 "another hooker's or a stub's", k, bytes);
			return -ENOTSUP;
		}
		if (len >= 5) {
			site->offset = k;
			site->length = len;
			site->stack_adjust = stack;
			if (p[0] == 0xe9) {
				int32_t rel;
				memcpy(&rel, p + 1, 4);
				site->chain = addr + k + 5 + (uintptr_t)(intptr_t)rel;
			}
			return 0;
		}
		switch (classify_prefix(p, len, &add)) {
		case PREFIX_NO:
			snprintf(why, whylen, "+%zu: %s comes before any 5-byte "
				 "instruction and a jump may not follow it",
				 k, bytes);
			return -ENOTSUP;
		case PREFIX_STACK:
			stack += add;
			break;
		case PREFIX_KEEP:
			break;
		}
		k += len;
	}
	snprintf(why, whylen, "no instruction of 5 bytes or more in the first %zu",
		 k);
	return -ENOTSUP;
}
