/* SPDX-License-Identifier: MIT */
/*
 * Probes of the bad-memory mechanisms: what GetMemoryErrorHandlingCapabilities
 * answers on Windows (a patrol scrubber), plus Linux's own: memory-failure
 * recovery, early kill, hwpoison injection, the memory-failure tracepoint,
 * and whether sigaction() calls reach memnotify.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "../core/caps.h"
#include "badmem.h"
#include "../core/internal.h"
#include "../sigchain/sigchain.h"

#ifndef MADV_HWPOISON
#define MADV_HWPOISON 100
#endif
#ifndef PR_MCE_KILL_GET
#define PR_MCE_KILL_GET 34
#endif

static int read_sysctl(const char *path, long *v)
{
	char buf[64];
	ssize_t n = mn__read_file(path, buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	*v = strtol(buf, NULL, 10);
	return 0;
}

int mn__probe_memory_failure(char *detail, size_t len)
{
	long v = 0;
	int err = read_sysctl("/proc/sys/vm/memory_failure_recovery", &v);

	if (err) {
		snprintf(detail, len,
			 "no /proc/sys/vm/memory_failure_recovery: the kernel "
			 "has no CONFIG_MEMORY_FAILURE");
		return err;
	}
	if (!v) {
		snprintf(detail, len, "vm.memory_failure_recovery = 0: the "
				      "kernel panics on poison");
		return -EPERM;
	}
	snprintf(detail, len, "vm.memory_failure_recovery = %ld", v);
	return 0;
}

int mn__probe_mce_early_kill(char *detail, size_t len)
{
	long v = -1;
	int pol = prctl(PR_MCE_KILL_GET, 0, 0, 0, 0);

	if (pol < 0) {
		int err = -errno;
		snprintf(detail, len, "prctl(PR_MCE_KILL_GET): %s", strerror(-err));
		return err;
	}
	if (read_sysctl("/proc/sys/vm/memory_failure_early_kill", &v) < 0) {
		snprintf(detail, len,
			 "prctl(PR_MCE_KILL) is accepted, but without "
			 "CONFIG_MEMORY_FAILURE the kernel never sends early "
			 "notice");
		return -ENOENT;
	}
	snprintf(detail, len, "prctl(PR_MCE_KILL) works; "
			      "vm.memory_failure_early_kill = %ld", v);
	return 0;
}

int mn__probe_patrol_scrubber(char *detail, size_t len)
{
	DIR *d = opendir("/sys/devices/system/edac/mc");
	struct dirent *e;
	int found = 0, scrubbing = 0;

	if (!d) {
		snprintf(detail, len, "no EDAC memory controller "
				      "(/sys/devices/system/edac/mc)");
		return -ENOENT;
	}
	while ((e = readdir(d))) {
		char path[512], buf[64];
		if (strncmp(e->d_name, "mc", 2))
			continue;
		found++;
		snprintf(path, sizeof(path),
			 "/sys/devices/system/edac/mc/%s/sdram_scrub_rate",
			 e->d_name);
		if (mn__read_file(path, buf, sizeof(buf)) > 0 &&
		    strtol(buf, NULL, 10) > 0)
			scrubbing++;
	}
	closedir(d);
	if (!found) {
		snprintf(detail, len, "EDAC present but no memory controller");
		return -ENOENT;
	}
	if (!scrubbing) {
		snprintf(detail, len, "%d EDAC memory controller(s), none "
				      "reports a scrub rate",
			 found);
		return -ENOENT;
	}
	snprintf(detail, len, "%d of %d EDAC memory controller(s) scrub",
		 scrubbing, found);
	return 0;
}

int mn__probe_hwpoison_inject(char *detail, size_t len)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, (size_t)page, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int err;

	if (p == MAP_FAILED) {
		err = -errno;
		snprintf(detail, len, "mmap: %s", strerror(-err));
		return err;
	}
	/* A PROT_NONE page that was never touched: the kernel checks the
	   advice and the capability, then fails to get the page, so nothing
	   is poisoned. */
	err = madvise(p, (size_t)page, MADV_HWPOISON) < 0 ? -errno : 0;
	munmap(p, (size_t)page);
	if (err == -EINVAL) {
		snprintf(detail, len, "madvise(MADV_HWPOISON): EINVAL: the kernel "
				      "has no CONFIG_MEMORY_FAILURE");
		return -EINVAL;
	}
	if (err == -EPERM) {
		snprintf(detail, len, "madvise(MADV_HWPOISON) needs CAP_SYS_ADMIN");
		return -EPERM;
	}
	snprintf(detail, len, "madvise(MADV_HWPOISON) accepted (%s)",
		 err ? strerror(-err) : "ok");
	return 0;
}

int mn__probe_memory_failure_tracepoint(char *detail, size_t len)
{
	static const char *const paths[] = {
		"/sys/kernel/tracing/events/ras/memory_failure_event",
		"/sys/kernel/tracing/events/memory_failure/memory_failure_event",
		"/sys/kernel/debug/tracing/events/ras/memory_failure_event",
		"/sys/kernel/debug/tracing/events/memory_failure/memory_failure_event",
	};

	for (size_t i = 0; i < MN__ARRAY_SIZE(paths); i++) {
		if (access(paths[i], R_OK) == 0) {
			snprintf(detail, len,
				 "%s present (memnotify reads HardwareCorrupted "
				 "instead; the tracepoint is not consumed yet)",
				 paths[i]);
			return 0;
		}
	}
	snprintf(detail, len, "no memory_failure_event tracepoint under "
			      "ras/ or memory_failure/ (tracefs not mounted, "
			      "not readable, or no CONFIG_MEMORY_FAILURE)");
	return -ENOENT;
}
