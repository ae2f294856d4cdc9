/* SPDX-License-Identifier: MIT */
/*
 * Capability table (libbpf's features.c habit): each mechanism is probed
 * once, by asking the kernel, and the tri-state answer is cached.  The
 * rows (names and probes) come from mn__cap_rows (src/caps_table.c); the
 * state of each probe lives here.
 */
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "caps.h"
#include "core.h"

enum { CAP_UNKNOWN = 0, CAP_YES = 1, CAP_NO = 2 };

struct cap_entry {
	struct mn__once once;
	_Atomic int state;
	int error;
	char detail[160];
};

int mn__probe_eventfd(char *detail, size_t len)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	if (fd < 0) {
		int err = -errno;
		snprintf(detail, len, "eventfd: %s", strerror(-err));
		return err;
	}
	close(fd);
	snprintf(detail, len, "eventfd(2) works");
	return 0;
}

int mn__probe_timerfd(char *detail, size_t len)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);

	if (fd < 0) {
		int err = -errno;
		snprintf(detail, len, "timerfd_create: %s", strerror(-err));
		return err;
	}
	close(fd);
	snprintf(detail, len, "timerfd_create(2) works");
	return 0;
}

static struct cap_entry caps[MN_CAP__COUNT];

/*
 * Each probe runs once, on the first asker's thread, with no memnotify lock
 * held (a probe may open files, start a thread, take the core lock);
 * concurrent askers wait for it, and a probe that a fork() interrupted runs
 * again in the child (mn__once).
 */
static void run_probe(void *arg)
{
	struct cap_entry *e = arg;
	mn__probe_fn probe = mn__cap_rows[e - caps].probe;
	int err = -ENOSYS;

	if (probe)
		err = probe(e->detail, sizeof(e->detail));
	else /* a row src/caps_table.c lacks: say so, never crash */
		snprintf(e->detail, sizeof(e->detail), "no probe in this build");

	e->error = err < 0 ? err : 0;
	atomic_store_explicit(&e->state, err < 0 ? CAP_NO : CAP_YES,
			      memory_order_release);
}

static struct cap_entry *probed(unsigned int cap)
{
	struct cap_entry *e = &caps[cap];

	if (atomic_load_explicit(&e->state, memory_order_acquire) == CAP_UNKNOWN)
		mn__once(&e->once, run_probe, e);
	return e;
}

bool mn__cap_supported(unsigned int cap)
{
	if (cap >= MN_CAP__COUNT)
		return false;
	return atomic_load(&probed(cap)->state) == CAP_YES;
}

int mn_capability(unsigned int cap, struct mn_capability *out)
{
	struct cap_entry *e;

	mn__check(cap < MN_CAP__COUNT, -EINVAL);
	mn__check(out && out->sz >= sizeof(struct mn_capability), -EINVAL);
	e = probed(cap);
	out->name = mn__cap_rows[cap].name ? mn__cap_rows[cap].name : "unknown";
	out->supported = atomic_load(&e->state) == CAP_YES;
	out->error = e->error;
	snprintf(out->detail, sizeof(out->detail), "%s", e->detail);
	return 0;
}

/* The C++-friendly name: the same function. */
extern __typeof__(mn_capability) mn_get_capability
	__attribute__((alias("mn_capability")));
