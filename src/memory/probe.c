/* SPDX-License-Identifier: MIT */
/*
 * Probes of the memory-pressure mechanisms (see core/caps.c).  Each asks
 * the kernel directly: opens the file, arms and disarms a trigger, registers
 * and drops an event, and explains what it found.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../core/caps.h"
#include "../core/internal.h"
#include "cgroup.h"
#include "parse.h"
#include "probe.h"
#include "psi.h"

int mn__probe_meminfo(char *detail, size_t len)
{
	char buf[8192];
	struct mn__meminfo mi;
	ssize_t n = mn__read_file("/proc/meminfo", buf, sizeof(buf));
	int err;

	if (n < 0) {
		snprintf(detail, len, "/proc/meminfo: %s", strerror((int)-n));
		return (int)n;
	}
	err = mn__parse_meminfo(buf, (size_t)n, &mi);
	if (err) {
		snprintf(detail, len, "/proc/meminfo: unexpected content");
		return -EIO;
	}
	if (!mi.has_available) {
		snprintf(detail, len,
			 "/proc/meminfo has no MemAvailable (kernel < 3.14): "
			 "MemFree is used instead");
		return -ENOENT;
	}
	snprintf(detail, len, "/proc/meminfo: MemTotal %llu MiB",
		 (unsigned long long)(mi.total_bytes >> 20));
	return 0;
}

int mn__probe_psi(char *detail, size_t len)
{
	char buf[512];
	struct mn__psi psi;
	ssize_t n = mn__read_file("/proc/pressure/memory", buf, sizeof(buf));

	if (n < 0) {
		snprintf(detail, len,
			 "/proc/pressure/memory: %s (needs CONFIG_PSI=y and "
			 "psi=1 on the kernel command line)",
			 strerror((int)-n));
		return (int)n;
	}
	if (mn__parse_psi(buf, (size_t)n, &psi) < 0) {
		snprintf(detail, len, "/proc/pressure/memory: unexpected content");
		return -EIO;
	}
	snprintf(detail, len, "/proc/pressure/memory: some avg10 %.2f%%",
		 psi.some_avg10);
	return 0;
}

int mn__probe_psi_trigger(char *detail, size_t len)
{
	unsigned int win;
	int err = mn__psi_min_window("/proc/pressure/memory", &win);

	if (err) {
		snprintf(detail, len, "/proc/pressure/memory trigger: %s",
			 strerror(-err));
		return err;
	}
	if (win > MN__PSI_WINDOW_MIN_US)
		snprintf(detail, len,
			 "triggers accepted with windows of %u ms or multiples "
			 "(unprivileged rule: no CAP_SYS_RESOURCE)",
			 win / 1000);
	else
		snprintf(detail, len, "triggers accepted, window >= %u ms",
			 win / 1000);
	return 0;
}

int mn__probe_cgroup_v1_memory(char *detail, size_t len)
{
	struct mn__cgroup cg;

	mn__cgroup_self(&cg);
	if (cg.version == MN_CGROUP_V1) {
		snprintf(detail, len, "own group %s", cg.path);
		return 0;
	}
	if (cg.version == MN_CGROUP_V2) {
		snprintf(detail, len, "not used: own group is cgroup v2 (%s)",
			 cg.path);
		return -ENOENT;
	}
	snprintf(detail, len, "no cgroup v1 memory hierarchy mounted for "
			      "this process");
	return -ENOENT;
}

int mn__probe_cgroup_v1_pressure_level(char *detail, size_t len)
{
	struct mn__cgroup cg;
	char path[MN__CG_PATH_MAX + 64], line[64];
	int efd, plfd, err = 0;

	mn__cgroup_self(&cg);
	if (cg.version != MN_CGROUP_V1) {
		snprintf(detail, len, "no cgroup v1 memory group");
		return -ENOENT;
	}
	snprintf(path, sizeof(path), "%s/memory.pressure_level", cg.path);
	plfd = open(path, O_RDONLY | O_CLOEXEC);
	if (plfd < 0) {
		err = -errno;
		snprintf(detail, len, "%s: %s", path, strerror(-err));
		return err;
	}
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0) {
		err = -errno;
		close(plfd);
		snprintf(detail, len, "eventfd: %s", strerror(-err));
		return err;
	}
	snprintf(line, sizeof(line), "%d %d low", efd, plfd);
	snprintf(path, sizeof(path), "%s/cgroup.event_control", cg.path);
	err = mn__write_file(path, line, false);
	if (err)
		snprintf(detail, len, "%s: %s", path, strerror(-err));
	else
		snprintf(detail, len,
			 "eventfd registered through cgroup.event_control");
	/* Closing the eventfd drops the registration. */
	close(efd);
	close(plfd);
	return err;
}

int mn__probe_cgroup_v2_memory(char *detail, size_t len)
{
	struct mn__cgroup cg;

	mn__cgroup_self(&cg);
	if (cg.version == MN_CGROUP_V2) {
		snprintf(detail, len, "own group %s", cg.path);
		return 0;
	}
	snprintf(detail, len,
		 "the memory controller is not enabled for this process's "
		 "cgroup v2 group%s",
		 cg.version == MN_CGROUP_V1 ? " (cgroup v1 memory is used)" : "");
	return -ENOENT;
}

int mn__probe_cgroup_v2_psi(char *detail, size_t len)
{
	struct mn__cgroup cg;
	char path[MN__CG_PATH_MAX + 64];
	unsigned int win;
	int err;

	mn__cgroup_self(&cg);
	if (cg.version != MN_CGROUP_V2) {
		snprintf(detail, len, "no cgroup v2 memory group");
		return -ENOENT;
	}
	snprintf(path, sizeof(path), "%s/memory.pressure", cg.path);
	err = mn__psi_min_window(path, &win);
	if (err) {
		snprintf(detail, len, "%s: %s", path, strerror(-err));
		return err;
	}
	snprintf(detail, len, "%s: triggers with %u ms windows", path,
		 win / 1000);
	return 0;
}
