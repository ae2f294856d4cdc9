/* SPDX-License-Identifier: MIT */
/*
 * The Windows face: shared helpers.  The face only translates to the
 * native API (memnotify.h); it owns no kernel mechanism.
 */
#ifndef MN_WIN32_FACE_H
#define MN_WIN32_FACE_H

#include "memnotify/win32.h"

#include "../core/internal.h"

/* Export the Mn-prefixed spelling of a user-mode function too (the name a
   program sees after Wine's windows.h). */
#define MN__W32_ALIAS(name)                                                   \
	extern __typeof__(name) Mn##name                                      \
		__attribute__((alias(#name), visibility("default")))

/* Set the thread's last error from a native -errno and return @ret. */
DWORD mn__w32_error_of(int err);
#define mn__w32_fail(err, ret) (SetLastError(mn__w32_error_of(err)), (ret))

/* PROT_* <-> PAGE_* (winnt.h).  -1 for a PAGE_* value with no meaning. */
DWORD mn__w32_page_of_prot(int prot);
int mn__w32_prot_of_page(DWORD page);

#endif
