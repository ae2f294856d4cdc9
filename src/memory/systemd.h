/* SPDX-License-Identifier: MIT */
/*
 * systemd's $MEMORY_PRESSURE_WATCH / $MEMORY_PRESSURE_WRITE (systemd.c).
 */
#ifndef MN_MEMORY_SYSTEMD_H
#define MN_MEMORY_SYSTEMD_H

#include <stddef.h>

#include "../core/core.h"

/*
 * For a watch of @cg_path: if it is the caller's own group and
 * $MEMORY_PRESSURE_WATCH is set, open what it names, write the decoded
 * $MEMORY_PRESSURE_WRITE (or memnotify's own "some STALL WINDOW" trigger,
 * @stall_us, for a PSI file without it), and add @io to the dispatcher
 * (POLLPRI for a regular file, POLLIN for a FIFO or socket).
 * *@window_us gets the trigger's window (1 s if unknown).
 * Return: 0 armed; -ECANCELED for "/dev/null" (no PSI trigger wanted);
 * -ENOENT when the variables do not apply or could not be used (logged):
 * arm memnotify's own trigger; another -errno from mn__dispatch_add().
 * Called with the core lock held or on the dispatcher; takes no lock.
 */
int mn__systemd_psi_arm(struct mn__io *io, const char *cg_path,
			unsigned int stall_us, unsigned int *window_us);

/* Read and drop what a FIFO or socket delivered (non-blocking). */
void mn__systemd_psi_drain(int fd);

/* Base64 (RFC 4648) into @out: the byte count, or -EINVAL. */
int mn__base64_decode(const char *s, unsigned char *out, size_t max);

#endif /* MN_MEMORY_SYSTEMD_H */
