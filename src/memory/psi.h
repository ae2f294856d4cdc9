/* SPDX-License-Identifier: MIT */
/*
 * PSI triggers (Documentation/accounting/psi.rst): write
 * "some|full STALL_US WINDOW_US" to a pressure file opened O_RDWR, then
 * poll the fd for POLLPRI.  The kernel accepts windows of 500 ms to 10 s;
 * without CAP_SYS_RESOURCE only multiples of 2 s.
 */
#ifndef MN_MEMORY_PSI_H
#define MN_MEMORY_PSI_H

#define MN__PSI_WINDOW_MIN_US 500000u
#define MN__PSI_WINDOW_MAX_US 10000000u

/*
 * Arm a trigger on @path: returns the fd (>= 0) or -errno.  The string is
 * written with its terminating NUL, as the kernel expects.
 */
int mn__psi_trigger_open(const char *path, const char *kind,
			 unsigned int stall_us, unsigned int window_us);

/*
 * The smallest window this process may use on @path, found by arming
 * real triggers (500 ms, 1 s, 2 s) once per path kind and caching the
 * answer.  Returns 0 or -errno (no PSI, no permission).
 */
int mn__psi_min_window(const char *path, unsigned int *window_us);

#endif /* MN_MEMORY_PSI_H */
