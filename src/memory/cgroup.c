/* SPDX-License-Identifier: MIT */
/*
 * Memory cgroup discovery and sampling.
 *
 * Usage follows the .NET runtime's container rule: cgroup usage minus
 * inactive file pages (v1: memory.usage_in_bytes - total_inactive_file;
 * v2: memory.current - inactive_file), because clean page cache is
 * reclaimed before the group is in trouble.  The effective limit is the
 * smallest of MemTotal and every limit of the group and its ancestors.
 */
#include <fcntl.h>
#include <pthread.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "../core/core.h"
#include "../core/internal.h"
#include "cgroup.h"
#include "parse.h"

#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define LIMIT_REFRESH_USEC (1000 * 1000)

/*
 * Is @name in @dir there for us to read?  0 if it opens for reading;
 * -EOPNOTSUPP if it does not exist (the controller is not there);
 * -EACCES if it exists but may not be read or the directory may not be
 * searched (EPERM too: one answer for "not allowed"); another -errno.
 */
static int probe_file(const char *dir, const char *name)
{
	char p[MN__CG_PATH_MAX + 64];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	switch (errno) {
	case ENOENT: return -EOPNOTSUPP;
	case EACCES:
	case EPERM: return -EACCES;
	default: return -errno;
	}
}

static int join(char *out, size_t outlen, const char *a, const char *b)
{
	/* a is a mount point, b a path inside the hierarchy ("/..."). */
	int n = snprintf(out, outlen, "%s%s", a, strcmp(b, "/") ? b : "");
	return (n < 0 || (size_t)n >= outlen) ? -ENAMETOOLONG : 0;
}

/* The directory of our group in one hierarchy, from /proc/self/cgroup and
   /proc/self/mountinfo (the mount may show only a sub-tree: strip its
   root from our path). */
static int locate(int version, char *out, size_t outlen)
{
	char path[MN__CG_PATH_MAX], mnt[MN__CG_PATH_MAX], root[MN__CG_PATH_MAX];
	char *cg = NULL, *mi = NULL;
	size_t n, m;
	int err;

	err = mn__read_file_alloc("/proc/self/cgroup", &cg, &n);
	if (!err)
		err = mn__read_file_alloc("/proc/self/mountinfo", &mi, &m);
	if (err)
		goto out;
	if (version == MN_CGROUP_V1) {
		err = mn__parse_proc_cgroup_v1(cg, (size_t)n, "memory", path,
					       sizeof(path));
		if (!err)
			err = mn__parse_mountinfo(mi, (size_t)m, "cgroup",
						  "memory", mnt, sizeof(mnt),
						  root, sizeof(root));
	} else {
		err = mn__parse_proc_cgroup_v2(cg, (size_t)n, path,
					       sizeof(path));
		if (!err)
			err = mn__parse_mountinfo(mi, (size_t)m, "cgroup2",
						  NULL, mnt, sizeof(mnt), root,
						  sizeof(root));
	}
	if (err)
		goto out;
	const char *rel = path;
	size_t rl = strlen(root);
	if (strcmp(root, "/") && !strncmp(path, root, rl) &&
	    (path[rl] == '/' || path[rl] == '\0'))
		rel = path[rl] ? path + rl : "/";
	err = join(out, outlen, mnt, rel);
out:
	free(cg);
	free(mi);
	return err;
}

void mn__cgroup_self(struct mn__cgroup *out)
{
	char dir[MN__CG_PATH_MAX];
	int err = -EOPNOTSUPP;

	memset(out, 0, sizeof(*out));
	if (locate(MN_CGROUP_V2, dir, sizeof(dir)) == 0 &&
	    (err = probe_file(dir, "memory.current")) == 0) {
		out->version = MN_CGROUP_V2;
		snprintf(out->path, sizeof(out->path), "%s", dir);
		return;
	}
	if (err == -EACCES)
		mn__info("memory: own cgroup %s: permission denied", dir);
	err = -EOPNOTSUPP;
	if (locate(MN_CGROUP_V1, dir, sizeof(dir)) == 0 &&
	    (err = probe_file(dir, "memory.usage_in_bytes")) == 0) {
		out->version = MN_CGROUP_V1;
		snprintf(out->path, sizeof(out->path), "%s", dir);
		return;
	}
	if (err == -EACCES)
		mn__info("memory: own cgroup %s: permission denied; watching "
			 "the whole machine", dir);
}

int mn__cgroup_from_path(const char *path, struct mn__cgroup *out)
{
	char real[PATH_MAX];
	struct statfs sfs;
	struct stat st;

	int err, version;

	if (!path || !*path || strlen(path) >= MN__CG_PATH_MAX)
		return -EINVAL;
	if (stat(path, &st) < 0)
		goto fail_errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (statfs(path, &sfs) < 0 || !realpath(path, real))
		goto fail_errno;
	if (strlen(real) >= MN__CG_PATH_MAX)
		return -ENAMETOOLONG;
	memset(out, 0, sizeof(*out));
	/* The usage file tells the controller: missing is EOPNOTSUPP, there
	   but unreadable (a 0700 group of another user) EACCES. */
	if ((unsigned long)sfs.f_type == CGROUP2_SUPER_MAGIC)
		version = MN_CGROUP_V2;
	else if ((unsigned long)sfs.f_type == CGROUP_SUPER_MAGIC)
		version = MN_CGROUP_V1;
	else
		return -EMEDIUMTYPE;
	err = probe_file(real, version == MN_CGROUP_V2 ? "memory.current"
						     : "memory.usage_in_bytes");
	if (err)
		return err;
	out->version = version;
	memcpy(out->path, real, strlen(real) + 1); /* length checked above */
	return 0;
fail_errno:
	return errno == EPERM ? -EACCES : -errno;
}

static int open_at(const char *dir, const char *name)
{
	char p[MN__CG_PATH_MAX + 64];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/*
 * The machine-wide files (/proc/meminfo, /proc/pressure/memory) are opened
 * once for every sampler of the process (pread at offset 0 keeps no state,
 * and a fork child may share them).  Refcounted under a leaf lock (rank 30:
 * nothing is taken under it).
 */
enum { SHARED_MEMINFO, SHARED_PSI };
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	const char *path;
	int fd;
	unsigned int refs;
} shared[] = {
	[SHARED_MEMINFO] = { "/proc/meminfo", -1, 0 },
	[SHARED_PSI] = { "/proc/pressure/memory", -1, 0 },
};

__attribute__((constructor)) static void shared_init(void)
{
	mn__lock_register(&shared_lock, MN__RANK_LEAF);
}

static int shared_get(int which)
{
	int fd;

	pthread_mutex_lock(&shared_lock);
	if (!shared[which].refs) {
		shared[which].fd = open(shared[which].path, O_RDONLY | O_CLOEXEC);
		if (shared[which].fd < 0) {
			fd = -errno;
			pthread_mutex_unlock(&shared_lock);
			return fd;
		}
	}
	shared[which].refs++;
	fd = shared[which].fd;
	pthread_mutex_unlock(&shared_lock);
	return fd;
}

static void shared_put(int which)
{
	pthread_mutex_lock(&shared_lock);
	if (shared[which].refs && !--shared[which].refs) {
		close(shared[which].fd);
		shared[which].fd = -1;
	}
	pthread_mutex_unlock(&shared_lock);
}

void mn__sampler_close(struct mn__sampler *s)
{
	if (s->meminfo_fd >= 0)
		shared_put(SHARED_MEMINFO);
	s->meminfo_fd = -1;
	if (s->psi_shared && s->psi_fd >= 0)
		shared_put(SHARED_PSI);
	else
		close_fd(&s->psi_fd);
	s->psi_fd = -1;
	s->psi_shared = false;
	for (int i = 0; i < s->n_levels; i++) {
		close_fd(&s->lv[i].usage_fd);
		close_fd(&s->lv[i].stat_fd);
	}
	s->n_levels = 0;
}

/* v1: does the parent directory @dir charge its children (use_hierarchy)?
   Kernels from 5.x on always do and may lack the file's 0. */
static bool v1_charges_children(const char *dir)
{
	char p[MN__CG_PATH_MAX + 64], buf[16];
	int fd;
	ssize_t n;

	snprintf(p, sizeof(p), "%s/memory.use_hierarchy", dir);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	n = mn__pread_all(fd, buf, sizeof(buf));
	close(fd);
	return !(n > 0 && buf[0] == '0');
}

/* The group and each ancestor on the same filesystem whose limit applies
   to it (the hierarchy's mount point ends the walk; on v1 so does a parent
   that does not charge its children). */
static int open_levels(struct mn__sampler *s)
{
	char dir[MN__CG_PATH_MAX];
	struct stat st0, st;

	snprintf(dir, sizeof(dir), "%s", s->cg.path);
	if (stat(dir, &st0) < 0)
		return -errno;
	for (int level = 0; level < MN__CG_MAX_LEVELS; level++) {
		struct mn__cg_level *l = &s->lv[level];
		snprintf(l->path, sizeof(l->path), "%s", dir);
		l->usage_fd = l->stat_fd = -1;
		l->limit = MN__UNLIMITED;
		s->n_levels++;
		char *slash = strrchr(dir, '/');
		if (!slash || slash == dir)
			break;
		*slash = '\0';
		if (stat(dir, &st) < 0 || st.st_dev != st0.st_dev)
			break;
		if (s->cg.version == MN_CGROUP_V1 && !v1_charges_children(dir))
			break;
	}
	return 0;
}

static int open_counters(struct mn__cg_level *l, int version)
{
	l->usage_fd = open_at(l->path, version == MN_CGROUP_V1
					       ? "memory.usage_in_bytes"
					       : "memory.current");
	if (l->usage_fd < 0)
		return l->usage_fd;
	l->stat_fd = open_at(l->path, "memory.stat");
	if (l->stat_fd < 0) {
		int err = l->stat_fd;
		close_fd(&l->usage_fd);
		return err;
	}
	return 0;
}

int mn__sampler_open(struct mn__sampler *s, const struct mn__cgroup *cg)
{
	int err = 0;

	memset(s, 0, sizeof(*s));
	s->cg = *cg;
	s->meminfo_fd = s->psi_fd = -1;
	s->meminfo_fd = shared_get(SHARED_MEMINFO);
	if (s->meminfo_fd < 0)
		return s->meminfo_fd;
	if (cg->version != MN_CGROUP_NONE) {
		err = open_levels(s);
		if (!err)
			err = open_counters(&s->lv[0], cg->version);
		if (err)
			goto fail;
	}
	if (cg->version == MN_CGROUP_V2)
		s->psi_fd = open_at(cg->path, "memory.pressure");
	if (s->psi_fd < 0) {
		s->psi_fd = shared_get(SHARED_PSI);
		s->psi_shared = s->psi_fd >= 0;
	}
	/* PSI is optional: psi_fd < 0 just leaves psi_valid 0. */
	return 0;
fail:
	mn__sampler_close(s);
	return err;
}

static int read_value(int fd, uint64_t *v)
{
	char buf[64];
	ssize_t n = mn__pread_all(fd, buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	return mn__parse_cgroup_value(buf, (size_t)n, v);
}

/* One level's own limit: the smallest of its limit files (v1
   memory.limit_in_bytes; v2 memory.max and memory.high), read through a
   short-lived fd (at most once a second) so that no fd is kept per level.
   A level without any (the v2 root) is unlimited. */
static uint64_t level_limit(const struct mn__cg_level *l, int version)
{
	static const char *const v1[] = { "memory.limit_in_bytes" };
	static const char *const v2[] = { "memory.max", "memory.high" };
	const char *const *files = version == MN_CGROUP_V1 ? v1 : v2;
	size_t n = version == MN_CGROUP_V1 ? 1 : 2;
	uint64_t lim = MN__UNLIMITED, v;

	for (size_t i = 0; i < n; i++) {
		int fd = open_at(l->path, files[i]);
		if (fd < 0)
			continue; /* v2 root: none */
		if (read_value(fd, &v) < 0)
			mn__count(source_errors, 1);
		else
			lim = MN__MIN(lim, v);
		close(fd);
	}
	return lim;
}

/* Re-read every level's limit; an ancestor that became limited gets its
   counters opened, one that lost its limit has them closed. */
static void refresh_limits(struct mn__sampler *s, uint64_t physical)
{
	uint64_t eff = physical;

	for (int i = 0; i < s->n_levels; i++) {
		struct mn__cg_level *l = &s->lv[i];
		uint64_t lim = level_limit(l, s->cg.version);
		if (lim != l->limit)
			s->limits_gen++;
		l->limit = lim;
		eff = MN__MIN(eff, lim);
		if (i == 0)
			continue;
		if (lim < physical && l->usage_fd < 0 &&
		    open_counters(l, s->cg.version) < 0)
			mn__count(source_errors, 1);
		else if (lim >= physical && l->usage_fd >= 0) {
			close_fd(&l->usage_fd);
			close_fd(&l->stat_fd);
		}
	}
	s->limit_bytes = eff;
}

bool mn__sampler_limits_changed(struct mn__sampler *s, uint64_t physical,
				uint64_t now_usec)
{
	unsigned int gen = s->limits_gen;

	if (s->cg.version == MN_CGROUP_NONE)
		return false;
	refresh_limits(s, physical);
	s->limit_read_usec = now_usec;
	return s->limits_gen != gen;
}

/* One level's usage and inactive file pages.  Return 0, or -ENOENT when the
   level vanished, or another -errno (counted). */
static int read_level(struct mn__sampler *s, struct mn__cg_level *l)
{
	char buf[8192];
	uint64_t usage, inactive = 0;
	ssize_t n;
	int err;

	err = read_value(l->usage_fd, &usage);
	if (err) {
		/* ENODEV/ENOENT: the group was removed. */
		if (err != -ENODEV && err != -ENOENT)
			mn__count(source_errors, 1);
		return err == -ENODEV ? -ENOENT : err;
	}
	l->raw_usage = usage;
	n = mn__pread_all(l->stat_fd, buf, sizeof(buf));
	if (n < 0)
		return n == -ENODEV ? -ENOENT : (int)n;
	bool v1 = s->cg.version == MN_CGROUP_V1;
	if (mn__parse_keyed(buf, (size_t)n,
			    v1 ? "total_inactive_file" : "inactive_file",
			    &inactive) < 0)
		inactive = 0;
	l->used = usage > inactive ? usage - inactive : 0;
	/* For the page-cache rule (events.c): active file pages, and file
	   refaults (kernels before 5.9 name them without "_file"; v1 has
	   them since 5.x, or not at all). */
	if (mn__parse_keyed(buf, (size_t)n,
			    v1 ? "total_active_file" : "active_file",
			    &l->active_file) < 0)
		l->active_file = 0;
	s->has_refaults =
		mn__parse_keyed(buf, (size_t)n,
				v1 ? "total_workingset_refault_file"
				   : "workingset_refault_file",
				&l->refaults) == 0 ||
		mn__parse_keyed(buf, (size_t)n,
				v1 ? "total_workingset_refault"
				   : "workingset_refault",
				&l->refaults) == 0;
	return 0;
}

/* Available memory over the group and its limited ancestors (and the
   machine's @avail); returns the smallest, or -errno. */
static int hierarchy_avail(struct mn__sampler *s, uint64_t physical,
			   uint64_t now_usec, uint64_t *avail)
{
	int err;

	/* The group's own usage first: its failure says it vanished. */
	err = read_level(s, &s->lv[0]);
	if (err)
		return err;
	if (!s->limit_read_usec ||
	    now_usec - s->limit_read_usec >= LIMIT_REFRESH_USEC) {
		refresh_limits(s, physical);
		s->limit_read_usec = now_usec;
	}
	for (int i = 0; i < s->n_levels; i++) {
		struct mn__cg_level *l = &s->lv[i];
		if (!mn__level_limited(s, i, physical))
			continue;
		if (i > 0 && (l->usage_fd < 0 || read_level(s, l) < 0))
			continue; /* an ancestor we could not read: counted */
		l->avail = l->limit > l->used ? l->limit - l->used : 0;
		*avail = MN__MIN(*avail, l->avail);
		uint64_t used_active = l->used > l->active_file
					       ? l->used - l->active_file : 0;
		s->avail_active = MN__MIN(s->avail_active,
					  l->limit > used_active
						  ? l->limit - used_active : 0);
	}
	return 0;
}

static void read_psi(struct mn__sampler *s, struct mn_memory_status *st)
{
	char buf[512];
	struct mn__psi psi;
	ssize_t n;

	st->psi_valid = 0;
	if (s->psi_fd < 0)
		return;
	n = mn__pread_all(s->psi_fd, buf, sizeof(buf));
	if (n >= 0 && mn__parse_psi(buf, (size_t)n, &psi) == 0) {
		st->psi_valid = 1;
		st->psi_some_avg10 = psi.some_avg10;
		st->psi_some_avg60 = psi.some_avg60;
		st->psi_full_avg10 = psi.full_avg10;
		st->psi_full_avg60 = psi.full_avg60;
	} else {
		mn__count(source_errors, 1);
	}
}

int mn__sampler_read(struct mn__sampler *s, struct mn_memory_status *st,
		     uint64_t now_usec)
{
	char buf[8192];
	struct mn__meminfo mi;
	uint64_t avail, limit;
	ssize_t n;
	int err;

	mn__count(samples, 1);
	n = mn__pread_all(s->meminfo_fd, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	err = mn__parse_meminfo(buf, (size_t)n, &mi);
	if (err) {
		mn__count(source_errors, 1);
		return -EIO;
	}
	avail = mi.has_available ? mi.available_bytes : mi.free_bytes;
	limit = mi.total_bytes;

	s->avail_active = avail;
	if (s->cg.version != MN_CGROUP_NONE) {
		err = hierarchy_avail(s, mi.total_bytes, now_usec, &avail);
		if (err)
			return err;
		limit = MN__MIN(s->limit_bytes, mi.total_bytes);
	}
	avail = MN__MIN(avail, limit);
	s->avail_active = MN__MAX(MN__MIN(s->avail_active, limit), avail);

	st->time_usec = mn__now_real_usec();
	st->available_bytes = avail;
	st->limit_bytes = limit;
	st->usage_bytes = limit - avail;
	st->physical_bytes = mi.total_bytes;
	st->load_percent =
		limit ? (unsigned int)((st->usage_bytes * 100 + limit / 2) / limit)
		      : 0;
	st->cgroup_version = s->cg.version;
	snprintf(st->cgroup_path, sizeof(st->cgroup_path), "%s", s->cg.path);
	read_psi(s, st);
	return 0;
}
