/* SPDX-License-Identifier: MIT */
/*
 * The Windows face: shared helpers.  The face only translates to the
 * native API (memnotify.h); it owns no kernel mechanism.
 */
#ifndef MN_WIN32_FACE_H
#define MN_WIN32_FACE_H

#include "memnotify/win32.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../core/faceapi.h"

/* Export the Mn-prefixed spelling of a user-mode function too (the name a
   program sees after Wine's windows.h). */
#define MN__W32_ALIAS(name)                                                   \
	extern __typeof__(name) Mn##name                                      \
		__attribute__((alias(#name), visibility("default")))

/* The face's registries of live handles: singly linked lists whose nodes
   start with a struct mn__w32_link; each list is guarded by its file's
   lock, held by the caller. */
struct mn__w32_link {
	struct mn__w32_link *next;
};
void mn__w32_push(struct mn__w32_link **head, void *node);
/* Unlink @node if it is on the list: it, or NULL for a handle that is not
   (unknown, or already removed). */
void *mn__w32_take(struct mn__w32_link **head, const void *node);

/* Set the thread's last error from a native -errno and return @ret. */
DWORD mn__w32_error_of(int err);
#define mn__w32_fail(err, ret) (SetLastError(mn__w32_error_of(err)), (ret))

/* PROT_* <-> PAGE_* (winnt.h).  -1 for a PAGE_* value with no meaning. */
DWORD mn__w32_page_of_prot(int prot);
int mn__w32_prot_of_page(DWORD page);

/* IHostMemoryManager::CreateMalloc (malloc.c). */
HRESULT mn__w32_create_malloc(DWORD type, IHostMalloc **out);

#endif
