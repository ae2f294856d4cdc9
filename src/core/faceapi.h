/* SPDX-License-Identifier: MIT */
/*
 * What the core offers a face beyond the public API, and nothing else: a
 * face (src/win32) includes include/ and this header only
 * (tools/check-boundaries.sh keeps it so).  Each item is here because a
 * face living in the same library must obey the library's own rules:
 *  - its locks join the lock order and fork handling (mn__lock_register);
 *  - it lets the library finish a fork child's rebuild before it takes
 *    one of them (mn__enter), so no thread starts under a face lock;
 *  - it can tell whether this thread is inside a callback walk (a wait
 *    there would wait for itself);
 *  - it finds a mapping without locks or allocation (VirtualQuery is
 *    lock-free, secured-range checks may run in signal context).
 * Defined in core.c, chain.c and maps.c; documented where declared there.
 */
#ifndef MN_CORE_FACEAPI_H
#define MN_CORE_FACEAPI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

enum mn__lock_rank {
	MN__RANK_FACE = 10,  /* a face's registries */
	MN__RANK_CORE = 20,  /* the core lock */
	MN__RANK_LEAF = 30,  /* a lock under which no other is taken */
};
void mn__lock_register(pthread_mutex_t *m, enum mn__lock_rank rank);
void mn__enter(void);
bool mn__chain_in_any_walk(void);
int mn__maps_lookup(uintptr_t addr, uintptr_t *start, uintptr_t *end, int *prot);

#define MN__MIN(a, b) ((a) < (b) ? (a) : (b))
#define MN__MAX(a, b) ((a) > (b) ? (a) : (b))

#endif /* MN_CORE_FACEAPI_H */
