/* SPDX-License-Identifier: MIT */
/*
 * Small shared helpers: options validation, clocks, file reads, version,
 * error strings, counters.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

struct mn__counters mn__counters;

/* The field MN__OPTS_END() names is each options struct's last, and no
   padding follows it (a reserved field may: an initialiser zeroes it). */
#define MN__LAST_IS_LAST(type, reserved_bytes)                                \
	_Static_assert(sizeof(struct type) == MN__OPTS_END(type) +             \
						      (reserved_bytes),       \
		       #type ": mn__opts_last_" #type " is not its last field, " \
		       "or padding follows it")
MN__LAST_IS_LAST(mn_dispatch_opts, sizeof(unsigned int)); /* reserved */
MN__LAST_IS_LAST(mn_memory_opts, sizeof(unsigned int)); /* reserved */
MN__LAST_IS_LAST(mn_badmem_opts, 0);
MN__LAST_IS_LAST(mn_rcache_opts, 0);

bool mn__opts_valid(const void *opts, size_t user_sz, size_t known_sz)
{
	const unsigned char *p = opts;

	if (!opts)
		return true;
	if (user_sz < sizeof(size_t))
		return false;
	/* A newer caller's extra fields must be zero: we cannot honour them. */
	for (size_t i = known_sz; i < user_sz; i++)
		if (p[i])
			return false;
	return true;
}

static uint64_t clock_usec(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t mn__now_mono_usec(void)
{
	return clock_usec(CLOCK_MONOTONIC);
}

uint64_t mn__now_real_usec(void)
{
	return clock_usec(CLOCK_REALTIME);
}

ssize_t mn__pread_all(int fd, char *buf, size_t size)
{
	size_t got = 0;

	if (size == 0)
		return -EINVAL;
	while (got < size - 1) {
		ssize_t n = pread(fd, buf + got, size - 1 - got, (off_t)got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	return (ssize_t)got;
}

ssize_t mn__read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = mn__pread_all(fd, buf, size);
	close(fd);
	return n;
}

int mn__read_file_alloc(const char *path, char **buf, size_t *len)
{
	size_t cap = 16384, got = 0;
	char *b = malloc(cap);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int err = 0;

	if (fd < 0 || !b) {
		err = fd < 0 ? -errno : -ENOMEM;
		goto fail;
	}
	for (;;) {
		if (got + 1 >= cap) {
			char *nb = cap >= (64u << 20) ? NULL : realloc(b, cap * 2);
			if (!nb) {
				err = -ENOMEM;
				goto fail;
			}
			b = nb;
			cap *= 2;
		}
		ssize_t n = read(fd, b + got, cap - 1 - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto fail;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	b[got] = '\0';
	*buf = b;
	*len = got;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	free(b);
	*buf = NULL;
	*len = 0;
	return err;
}

int mn__write_file(const char *path, const char *s, bool with_nul)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	size_t len = strlen(s) + (with_nul ? 1 : 0);
	ssize_t n;
	int err = 0;

	if (fd < 0)
		return -errno;
	n = write(fd, s, len);
	if (n < 0)
		err = -errno;
	else if ((size_t)n != len)
		err = -EIO;
	close(fd);
	return err;
}

const char *mn_version(void)
{
	return "0.1.0";
}

const char *mn_strerror(int err)
{
	switch (err) {
	case 0: return "success";
	case -EINVAL: return "invalid argument";
	case -ENOENT: return "no such file, group or handle";
	case -ENOMEM: return "out of memory";
	case -EMFILE: return "too many open files";
	case -EBUSY: return "busy";
	case -EEXIST: return "already exists";
	case -EOPNOTSUPP: return "not supported by this kernel or group";
	case -ENOTDIR: return "not a directory";
	case -EMEDIUMTYPE: return "not a cgroup directory";
	case -EIO: return "unexpected file content";
	case -ERANGE: return "number out of range";
	case -EACCES: return "permission denied";
	case -EPERM: return "operation not permitted";
	case -EINTR: return "interrupted";
	case -ENAMETOOLONG: return "path too long";
	case -ESRCH: return "no such thread";
	case -ENOSPC: return "no room in the buffer";
	case -EDEADLK: return "called under memnotify's own lock (from a callback its allocation raised)";
	case -EAGAIN: return "resource temporarily unavailable (a thread could not be started)";
	default: return "unknown error";
	}
}

int mn_stats(struct mn_stats *out)
{
	mn__check(out && out->sz >= offsetof(struct mn_stats, samples) +
				      sizeof(out->samples),
		  -EINVAL);
	out->events_delivered = atomic_load(&mn__counters.delivered);
	out->events_lost = atomic_load(&mn__counters.lost);
	out->source_errors = atomic_load(&mn__counters.source_errors);
	out->wakeups = atomic_load(&mn__counters.wakeups);
	out->samples = atomic_load(&mn__counters.samples);
	if (out->sz >= offsetof(struct mn_stats, events_coalesced) +
			       sizeof(out->events_coalesced))
		out->events_coalesced = atomic_load(&mn__counters.coalesced);
	return 0;
}

/* The C++-friendly name: the same function. */
extern __typeof__(mn_stats) mn_get_stats __attribute__((alias("mn_stats")));
