/* SPDX-License-Identifier: MIT */
/*
 * Memory cgroup discovery and sampling: where the watched group lives, its
 * effective limit, and how much memory is still available to it.
 */
#ifndef MN_MEMORY_CGROUP_H
#define MN_MEMORY_CGROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "memnotify.h"

#define MN__CG_PATH_MAX 256
#define MN__CG_MAX_LEVELS 16

struct mn__cgroup {
	int version;                  /* MN_CGROUP_NONE, _V1, _V2 */
	char path[MN__CG_PATH_MAX];   /* the group's directory, or "" */
};

/*
 * The calling process's own memory cgroup: v2 if its group has the memory
 * controller, else v1 with the memory controller, else NONE (the machine).
 * Never fails: a missing or unreadable hierarchy gives NONE (an unreadable
 * group is logged at MN_LOG_INFO).
 */
void mn__cgroup_self(struct mn__cgroup *out);

/*
 * Validate a directory named by the caller.
 * Return 0; -EINVAL (empty/too long), -ENOENT, -ENOTDIR, -EMEDIUMTYPE (not
 * on a cgroup filesystem), -EOPNOTSUPP (no memory controller there),
 * -EACCES (the group or its usage file exists but may not be searched or
 * read; EPERM is reported as -EACCES too), or another -errno from
 * stat/statfs/realpath/open.
 */
int mn__cgroup_from_path(const char *path, struct mn__cgroup *out);

/* Kinds of limit file. */
enum { MN__LIM_V1 = 1, MN__LIM_V2_MAX, MN__LIM_V2_HIGH };

/* Open fds for repeated, cheap samples of one group (pread at offset 0). */
struct mn__sampler {
	struct mn__cgroup cg;
	int meminfo_fd;
	int usage_fd;      /* v1 memory.usage_in_bytes, v2 memory.current */
	int stat_fd;       /* memory.stat */
	int psi_fd;        /* v2 memory.pressure, else /proc/pressure/memory */
	int n_limits;
	int limit_fd[MN__CG_MAX_LEVELS * 2];
	int limit_kind[MN__CG_MAX_LEVELS * 2];
	uint64_t limit_bytes;   /* cached effective limit */
	uint64_t raw_usage;     /* last usage file value (with page cache) */
	uint64_t limit_read_usec;
};

/* Return 0 or -errno (the group vanished, no /proc/meminfo, EMFILE). */
int mn__sampler_open(struct mn__sampler *s, const struct mn__cgroup *cg);
void mn__sampler_close(struct mn__sampler *s);

/*
 * Take one sample into @st: available, limit, usage, physical, load and
 * the PSI averages.  Limits are re-read when @now_usec is past the cache.
 * Return 0; -ENOENT/-ENODEV when the group vanished; -EIO when a file held
 * content that could not be parsed (counted in source_errors).
 */
int mn__sampler_read(struct mn__sampler *s, struct mn_memory_status *st,
		     uint64_t now_usec);

#endif /* MN_MEMORY_CGROUP_H */
