/* SPDX-License-Identifier: MIT */
/*
 * PSI trigger helpers.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "../core/core.h"
#include "psi.h"

int mn__psi_trigger_open(const char *path, const char *kind,
			 unsigned int stall_us, unsigned int window_us)
{
	char line[64];
	int fd, n;

	if (stall_us == 0 || stall_us >= window_us)
		return -EINVAL;
	fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = snprintf(line, sizeof(line), "%s %u %u", kind, stall_us, window_us);
	/* n + 1: the NUL is part of what the kernel parses. */
	if (write(fd, line, (size_t)n + 1) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static pthread_mutex_t win_lock = PTHREAD_MUTEX_INITIALIZER; /* leaf */

__attribute__((constructor)) static void psi_init(void)
{
	mn__lock_register(&win_lock, MN__RANK_LEAF);
}
static unsigned int cached_win[2]; /* [0] system file, [1] cgroup files */
static int cached_err[2];
static bool cached[2];

int mn__psi_min_window(const char *path, unsigned int *window_us)
{
	static const unsigned int tries[] = { 500000, 1000000, 2000000 };
	int k = strncmp(path, "/proc/", 6) ? 1 : 0;
	int err = -EINVAL;

	pthread_mutex_lock(&win_lock);
	if (!cached[k]) {
		cached_win[k] = 0;
		for (size_t i = 0; i < MN__ARRAY_SIZE(tries); i++) {
			int fd = mn__psi_trigger_open(path, "some",
						      tries[i] / 10, tries[i]);
			if (fd >= 0) {
				close(fd);
				cached_win[k] = tries[i];
				err = 0;
				break;
			}
			err = fd;
			if (fd != -EINVAL)
				break; /* ENOENT, EACCES, EOPNOTSUPP: final */
		}
		/* Cache the rule, not a missing file of one group. */
		if (err == 0 || err == -EINVAL) {
			cached_err[k] = err;
			cached[k] = true;
		}
	}
	if (cached[k])
		err = cached_err[k];
	*window_us = cached_win[k];
	pthread_mutex_unlock(&win_lock);
	return err;
}
