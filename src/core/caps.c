/* SPDX-License-Identifier: MIT */
/*
 * Capability table (libbpf's features.c habit): each mechanism is probed
 * once, by asking the kernel, and the tri-state answer is cached.
 */
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "caps.h"
#include "core.h"

enum { CAP_UNKNOWN = 0, CAP_YES = 1, CAP_NO = 2 };

struct cap_entry {
	const char *name;
	mn__probe_fn probe;
	struct mn__once once;
	_Atomic int state;
	int error;
	char detail[160];
};

static int probe_eventfd(char *detail, size_t len)
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

static int probe_timerfd(char *detail, size_t len)
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

static struct cap_entry caps[MN_CAP__COUNT] = {
	[MN_CAP_MEMINFO] = { "meminfo", mn__probe_meminfo },
	[MN_CAP_PSI] = { "psi", mn__probe_psi },
	[MN_CAP_PSI_TRIGGER] = { "psi_trigger", mn__probe_psi_trigger },
	[MN_CAP_CGROUP_V1_MEMORY] = { "cgroup_v1_memory",
				      mn__probe_cgroup_v1_memory },
	[MN_CAP_CGROUP_V1_PRESSURE_LEVEL] = { "cgroup_v1_pressure_level",
					      mn__probe_cgroup_v1_pressure_level },
	[MN_CAP_CGROUP_V2_MEMORY] = { "cgroup_v2_memory",
				      mn__probe_cgroup_v2_memory },
	[MN_CAP_CGROUP_V2_PSI] = { "cgroup_v2_psi", mn__probe_cgroup_v2_psi },
	[MN_CAP_EVENTFD] = { "eventfd", probe_eventfd },
	[MN_CAP_TIMERFD] = { "timerfd", probe_timerfd },
	[MN_CAP_SIGNAL_INTERPOSE] = { "signal_interpose",
				      mn__probe_signal_interpose },
	[MN_CAP_MEMORY_FAILURE] = { "memory_failure", mn__probe_memory_failure },
	[MN_CAP_MCE_EARLY_KILL] = { "mce_early_kill", mn__probe_mce_early_kill },
	[MN_CAP_PATROL_SCRUBBER] = { "patrol_scrubber",
				     mn__probe_patrol_scrubber },
	[MN_CAP_HWPOISON_INJECT] = { "hwpoison_inject",
				     mn__probe_hwpoison_inject },
	[MN_CAP_VM_INTERPOSE] = { "vm_interpose", mn__probe_vm_interpose },
	[MN_CAP_VM_LIBC_PATCH] = { "vm_libc_patch", mn__probe_vm_libc_patch },
	[MN_CAP_USERFAULTFD] = { "userfaultfd", mn__probe_userfaultfd },
	[MN_CAP_MEMORY_FAILURE_TRACEPOINT] = {
		"memory_failure_tracepoint",
		mn__probe_memory_failure_tracepoint },
};

/*
 * Each probe runs once, on the first asker's thread, with no memnotify lock
 * held (a probe may open files, start a thread, take the core lock);
 * concurrent askers wait for it, and a probe that a fork() interrupted runs
 * again in the child (mn__once).
 */
static void run_probe(void *arg)
{
	struct cap_entry *e = arg;
	int err = e->probe(e->detail, sizeof(e->detail));

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
	out->name = e->name;
	out->supported = atomic_load(&e->state) == CAP_YES;
	out->error = e->error;
	snprintf(out->detail, sizeof(out->detail), "%s", e->detail);
	return 0;
}

/* The C++-friendly name: the same function. */
extern __typeof__(mn_capability) mn_get_capability
	__attribute__((alias("mn_capability")));
