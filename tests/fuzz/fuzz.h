/* SPDX-License-Identifier: MIT */
/* Shared by the libFuzzer targets: the invariant check and the entry point. */
#ifndef MN_FUZZ_H
#define MN_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* An invariant that must hold for every input: abort (a finding) if not. */
#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "%s:%d: invariant failed: %s\n", \
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

/*
 * Every parser promises that a last line without its '\n' counts as if it
 * had one.  The input again with that newline: a malloc'ed copy of @size +
 * 1 bytes for the caller to parse and free, or NULL when the check does
 * not apply (empty input, already ending with '\n', no memory).
 */
static inline char *fuzz_with_newline(const char *buf, size_t size)
{
	char *copy;

	if (!size || buf[size - 1] == '\n' || !(copy = malloc(size + 1)))
		return NULL;
	for (size_t i = 0; i < size; i++)
		copy[i] = buf[i];
	copy[size] = '\n';
	return copy;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
