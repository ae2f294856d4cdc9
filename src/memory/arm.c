/* SPDX-License-Identifier: MIT */
/* Arming and disarming each mechanism of each level of the hierarchy.  (see monitor.h) */
#include "monitor.h"

/* --- arming (under the core lock, or on the dispatcher) ------------------ */

void mn__mon_io_init(struct mn__io *io, void (*ready)(struct mn__io *, uint32_t))
{
	io->fd = -1;
	io->ready = ready;
}

void mn__mon_io_close(struct mn__io *io)
{
	if (io->fd >= 0) {
		mn__dispatch_del(io);
		close(io->fd);
		io->fd = -1;
	}
}

/* After fork: the fd is not in the new epoll set; just close it. */
void mn__mon_io_forget(struct mn__io *io)
{
	if (io->fd >= 0)
		close(io->fd);
	io->fd = -1;
}

static void lvl_close_events(struct mon_lvl *l, void (*close_fn)(struct mn__io *))
{
	close_fn(&l->pl_low_io);
	close_fn(&l->pl_crit_io);
	close_fn(&l->events_io);
	l->events_armed = false;
}

static void lvl_close_thr(struct mon_lvl *l, void (*close_fn)(struct mn__io *))
{
	close_fn(&l->thr_io);
	l->thr_armed = false;
	l->thr_limit = l->thr_eff = 0;
}

/* Close every fd of @m: io_close on the dispatcher, io_forget in a fork
   child (whose epoll set is new). */
void mn__mon_close_all(struct mon *m, void (*close_fn)(struct mn__io *))
{
	if (close_fn == mn__mon_io_close)
		mn__wheel_cancel(&m->tick); /* after fork: the wheel forgot it */
	close_fn(&m->psi_io);
	close_fn(&m->oom_io);
	for (int i = 0; i < MN__CG_MAX_LEVELS; i++) {
		lvl_close_events(&m->lv[i], close_fn);
		lvl_close_thr(&m->lv[i], close_fn);
	}
	m->levels_gen = 0;
	mn__sampler_close(&m->sampler);
}

void mn__mon_disarm(struct mon *m)
{
	mn__mon_close_all(m, mn__mon_io_close);
	m->armed = false;
}

/*
 * Register an eventfd through cgroup v1's cgroup.event_control of @dir:
 * "<eventfd> <fd of the watched file> <argument>".  For memory.pressure_level
 * the argument is a level ("low", "critical"), tried with ",hierarchy"
 * first so that descendants' pressure counts; for memory.usage_in_bytes it
 * is a threshold in bytes, signalled when usage crosses it either way.
 * The kernel keeps what it needs: @file_fd may be closed afterwards.
 * An @io already open gets one more registration (no second epoll entry).
 */
static int v1_register(const char *dir, struct mn__io *io, int file_fd,
		       const char *arg, bool hierarchy)
{
	char path[MN__CG_PATH_MAX + 64], line[96];
	bool created = io->fd < 0; /* else: one more event on the same fd */
	int err;

	if (created)
		io->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (io->fd < 0)
		return -errno;
	snprintf(path, sizeof(path), "%s/cgroup.event_control", dir);
	snprintf(line, sizeof(line), "%d %d %s%s", io->fd, file_fd, arg,
		 hierarchy ? ",hierarchy" : "");
	err = mn__write_file(path, line, false);
	if (err == -EINVAL && hierarchy) { /* kernels before 4.5: no modes */
		snprintf(line, sizeof(line), "%d %d %s", io->fd, file_fd, arg);
		err = mn__write_file(path, line, false);
	}
	if (!err && created)
		err = mn__dispatch_add(io, EPOLLIN);
	if (err && created) {
		close(io->fd);
		io->fd = -1;
	}
	return err;
}

/* Level @i's pressure events: v1 memory.pressure_level low and critical,
   v2 memory.events.  Returns true if armed. */
static bool lvl_arm_events(struct mon *m, int i)
{
	struct mon_lvl *l = &m->lv[i];
	const char *dir = m->sampler.lv[i].path;
	char path[MN__CG_PATH_MAX + 64];
	int fd;

	if (m->p.cg.version == MN_CGROUP_V1) {
		snprintf(path, sizeof(path), "%s/memory.pressure_level", dir);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 &&
		    v1_register(dir, &l->pl_low_io, fd, "low", true) == 0 &&
		    v1_register(dir, &l->pl_crit_io, fd, "critical", true) == 0)
			l->events_armed = true;
		if (fd >= 0)
			close(fd);
	} else {
		snprintf(path, sizeof(path), "%s/memory.events", dir);
		l->events_io.fd = open(path, O_RDONLY | O_CLOEXEC);
		struct v2_events ev;
		if (l->events_io.fd >= 0 &&
		    mn__mon_read_v2_events(l->events_io.fd, &ev) == 0 &&
		    mn__dispatch_add(&l->events_io, EPOLLPRI) == 0) {
			l->events_armed = true;
			l->alarms = ev.alarms;
			l->ooms = ev.ooms;
			if (i == 0 && (m->p.flags & MN_MEMORY_OOM_EVENTS))
				m->oom_kills = ev.kills;
		}
	}
	if (!l->events_armed) {
		mn__info("memory: no pressure events on %s", dir);
		lvl_close_events(l, mn__mon_io_close);
	}
	return l->events_armed;
}

/*
 * cgroup v1 memory thresholds on level @i's memory.usage_in_bytes at the
 * usages where its available memory could fall below high% and low% of
 * the effective limit @eff: crossing one is an event, so a group far from
 * every limit needs no fast sampling.  Only for a limited level.
 */
static void lvl_arm_thr(struct mon *m, int i, uint64_t eff)
{
	struct mon_lvl *l = &m->lv[i];
	const struct mn__cg_level *sl = &m->sampler.lv[i];
	struct mn__thresholds t;
	char arg[32];

	lvl_close_thr(l, mn__mon_io_close);
	l->thr_limit = sl->limit;
	l->thr_eff = eff;
	mn__mon_thresholds(&m->p, eff, &t);
	if (sl->usage_fd < 0 || t.high >= sl->limit)
		return;
	l->thr_hi = sl->limit - t.high;
	/* Both thresholds on one eventfd: either crossing means "sample". */
	snprintf(arg, sizeof(arg), "%llu", (unsigned long long)l->thr_hi);
	if (v1_register(sl->path, &l->thr_io, sl->usage_fd, arg, false))
		return;
	snprintf(arg, sizeof(arg), "%llu",
		 (unsigned long long)(sl->limit - t.low));
	if (v1_register(sl->path, &l->thr_io, sl->usage_fd, arg, false)) {
		mn__mon_io_close(&l->thr_io);
		return;
	}
	l->thr_armed = true;
}

/* Make each level's armed events match the sampler's limits: the group's
   own always, an ancestor's while it is limited; thresholds re-armed on
   every change of a level's limit or the effective one. */
void mn__mon_sync_levels(struct mon *m)
{
	const struct mn__sampler *s = &m->sampler;
	uint64_t phys = m->last.physical_bytes, eff = m->last.limit_bytes;
	unsigned int mech = m->mechanisms &
			    ~(unsigned int)(MN_MECH_CGROUP_V1_PRESSURE |
					    MN_MECH_CGROUP_V2_EVENTS |
					    MN_MECH_CGROUP_V1_THRESHOLD);

	m->levels_gen = s->limits_gen;
	for (int i = 0; i < s->n_levels && !(m->p.flags & MN_MEMORY_NO_EVENTS);
	     i++) {
		struct mon_lvl *l = &m->lv[i];
		bool limited = mn__level_limited(s, i, phys);
		if ((i == 0 || limited) && !l->events_armed)
			lvl_arm_events(m, i);
		else if (!(i == 0 || limited) && l->events_armed)
			lvl_close_events(l, mn__mon_io_close);
		if (!limited)
			lvl_close_thr(l, mn__mon_io_close);
		else if (m->p.cg.version == MN_CGROUP_V1 &&
			 (l->thr_limit != s->lv[i].limit || l->thr_eff != eff))
			lvl_arm_thr(m, i, eff);
		if (l->events_armed)
			mech |= m->p.cg.version == MN_CGROUP_V1
					? MN_MECH_CGROUP_V1_PRESSURE
					: MN_MECH_CGROUP_V2_EVENTS;
		if (l->thr_armed)
			mech |= MN_MECH_CGROUP_V1_THRESHOLD;
	}
	m->mechanisms = mech;
}

/* PSI: the group's own memory.pressure (v2), or the system file when
   the watch covers the whole machine or a v1 group without a limit
   below it (whose stalls are the machine's). */
static void arm_psi(struct mon *m, const struct mn_memory_status *first)
{
	const struct params *p = &m->p;
	char path[MN__CG_PATH_MAX + 64];
	const char *psi = NULL;

	if (p->flags & MN_MEMORY_NO_PSI)
		return;
	/* systemd's $MEMORY_PRESSURE_WATCH, for the own group (systemd.c):
	   its file and threshold, or none at all (/dev/null). */
	int sd = mn__systemd_psi_arm(&m->psi_io, p->cg.path, p->psi_stall_us,
				     &m->psi_window_us);
	if (sd == 0)
		m->mechanisms |= MN_MECH_PSI;
	if (sd != -ENOENT)
		return;
	if (p->cg.version == MN_CGROUP_V2) {
		snprintf(path, sizeof(path), "%s/memory.pressure", p->cg.path);
		psi = path;
	} else if (mn__cap_supported(MN_CAP_PSI_TRIGGER) &&
		   first->limit_bytes >= first->physical_bytes) {
		psi = "/proc/pressure/memory";
	}
	if (!psi || mn__psi_min_window(psi, &m->psi_window_us) != 0)
		return;
	unsigned int win = MN__MAX(m->psi_window_us, MN__PSI_WINDOW_MIN_US);
	unsigned int stall = MN__MIN(p->psi_stall_us, win / 2);
	m->psi_window_us = win;
	m->psi_io.fd = mn__psi_trigger_open(psi, "some", stall, win);
	if (m->psi_io.fd >= 0 && mn__dispatch_add(&m->psi_io, EPOLLPRI) == 0) {
		m->mechanisms |= MN_MECH_PSI;
		return;
	}
	mn__info("memory: no PSI trigger on %s: %s", psi,
		 strerror(m->psi_io.fd < 0 ? -m->psi_io.fd : EBADF));
	mn__mon_io_close(&m->psi_io);
	m->psi_io.fd = -1;
}

/* v1 OOM notifications (MN_MEMORY_OOM_EVENTS): an eventfd on the group's
   memory.oom_control, which the kernel signals for an OOM at the group or
   at any ancestor (it walks the sub-tree of the level out of memory). */
static void arm_v1_oom(struct mon *m)
{
	char path[MN__CG_PATH_MAX + 64];
	int fd;

	if (m->p.cg.version != MN_CGROUP_V1 ||
	    !(m->p.flags & MN_MEMORY_OOM_EVENTS) ||
	    mn__mon_v1_read_oom_kills(m, &m->oom_kills) < 0)
		return;
	snprintf(path, sizeof(path), "%s/memory.oom_control", m->p.cg.path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && v1_register(m->p.cg.path, &m->oom_io, fd, "", false) == 0)
		m->mechanisms |= MN_MECH_CGROUP_V1_OOM;
	else
		mn__info("memory: no memory.oom_control events on %s",
			 m->p.cg.path);
	if (fd >= 0)
		close(fd);
}

/* Open every mechanism this machine has for the group.  Only the sampler
   is required; each event source that fails is logged and skipped. */
int mn__mon_arm(struct mon *m)
{
	const struct params *p = &m->p;
	int err;

	m->mechanisms = 0;
	atomic_store(&m->failed, false);
	err = mn__sampler_open(&m->sampler, &p->cg);
	if (err)
		return err;
	/* One sample now, so that unreadable or malformed files are the
	   subscriber's error now rather than an error event later. */
	m->last.sz = sizeof(m->last);
	err = mn__sampler_read(&m->sampler, &m->last, mn__now_mono_usec());
	if (err) {
		mn__sampler_close(&m->sampler);
		return err;
	}

	if (!(p->flags & MN_MEMORY_NO_POLL))
		m->mechanisms |= MN_MECH_POLL;
	arm_psi(m, &m->last);
	mn__mon_sync_levels(m);
	arm_v1_oom(m);
	if (!m->mechanisms) {
		mn__mon_disarm(m);
		return -EOPNOTSUPP;
	}
	m->armed = true;
	return 0;
}
