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

/*
 * One level of the hierarchy: the watched group (index 0) or an ancestor
 * whose limit it shares.  A level is "limited" while its own limit is below
 * the machine's memory; only then are its usage and stat files open (always
 * for the group itself) and does it count in available memory.
 */
struct mn__cg_level {
	char path[MN__CG_PATH_MAX];
	int usage_fd;      /* v1 memory.usage_in_bytes, v2 memory.current */
	int stat_fd;       /* memory.stat */
	uint64_t limit;    /* this level's own limit (MN__UNLIMITED: none) */
	uint64_t raw_usage; /* last usage file value (page cache included) */
	uint64_t used;     /* usage - inactive file, last sample */
	uint64_t avail;    /* limit - used (limited levels only) */
	uint64_t active_file; /* active file pages, bytes, last sample */
	uint64_t refaults; /* file pages refaulted (workingset_refault_file,
	                      hierarchical on v1), a count since boot */
};

/* Open fds for repeated, cheap samples of one group (pread at offset 0). */
struct mn__sampler {
	struct mn__cgroup cg;
	int meminfo_fd;    /* shared by every sampler of the process */
	int psi_fd;        /* v2 memory.pressure, else /proc/pressure/memory
	                      (shared) */
	bool psi_shared;
	int n_levels;      /* 0 without a cgroup */
	struct mn__cg_level lv[MN__CG_MAX_LEVELS];
	uint64_t limit_bytes;   /* cached effective limit */
	uint64_t limit_read_usec;
	unsigned int limits_gen; /* bumped whenever a level's limit changes */
	uint64_t avail_active;   /* available memory were active file pages
	                            free too (>= the sample's available) */
	bool has_refaults;       /* the group's memory.stat counts refaults */
};

/* Is level @i of @s limited (its own limit below @physical)? */
static inline int mn__level_limited(const struct mn__sampler *s, int i,
				    uint64_t physical)
{
	return s->lv[i].limit < physical;
}

/* Return 0 or -errno (the group vanished, no /proc/meminfo, EMFILE). */
int mn__sampler_open(struct mn__sampler *s, const struct mn__cgroup *cg);
void mn__sampler_close(struct mn__sampler *s);

/*
 * Take one sample into @st: available, limit, usage, physical, load and
 * the PSI averages.  Available memory is the smallest, over MemAvailable,
 * the group and every limited ancestor, of that level's limit minus that
 * level's usage less its inactive file pages (a sibling's usage counts
 * against a shared ancestor's limit).  Limits are re-read when @now_usec
 * is past the cache (at most 1 s old).
 * Return 0; -ENOENT/-ENODEV when the group vanished; -EIO when a file held
 * content that could not be parsed (counted in source_errors).
 */
int mn__sampler_read(struct mn__sampler *s, struct mn_memory_status *st,
		     uint64_t now_usec);

/*
 * Re-read every level's limit files now, and nothing else (no usage, no
 * /proc/meminfo): true if a limit changed (limits_gen moved), e.g. a
 * removed group, whose files are gone, counts as unlimited.  For watches
 * that take no samples of their own (MN_MEMORY_NO_POLL).
 */
bool mn__sampler_limits_changed(struct mn__sampler *s, uint64_t physical,
				uint64_t now_usec);

#endif /* MN_MEMORY_CGROUP_H */
