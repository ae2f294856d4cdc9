/* SPDX-License-Identifier: MIT */
/*
 * memnotify inject: poison a page of another running process, for chaos
 * testing of its bad-memory handlers, with the kernel's own injector.
 *
 *   memnotify inject [--early] PID ADDRESS
 *   memnotify inject --unpoison PFN
 *
 * The page frame comes from /proc/PID/pagemap (frame numbers need
 * CAP_SYS_ADMIN); the kernel's hwpoison injector (module hwpoison_inject,
 * debugfs hwpoison/corrupt-pfn) runs its memory-failure code on it, as a
 * machine check would: a dirty page is taken away from every process that
 * maps it, which gets BUS_MCEERR_AO at once if it asked for early kill
 * (PR_MCE_KILL_EARLY; --early sets vm.memory_failure_early_kill for the
 * injection so every mapper is told at once) and BUS_MCEERR_AR when it
 * next touches the page.  A clean file page is dropped from the page cache
 * and read again on the next touch (no signal).  --unpoison PFN hands the
 * frame that inject printed back to unpoison-pfn.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <getopt.h>

#include "cli.h"
#include "inject.h"

#define HWPOISON_DIR "/sys/kernel/debug/hwpoison"
#define EARLY_KILL "/proc/sys/vm/memory_failure_early_kill"
#define PM_PRESENT (1ull << 63)
#define PM_SWAP (1ull << 62)
#define PM_PFN_MASK ((1ull << 55) - 1)

/* Why inject cannot run here, or NULL if it can.  Also used by status. */
const char *inject_unavailable(void)
{
	if (access(HWPOISON_DIR "/corrupt-pfn", F_OK) == 0)
		return geteuid() == 0 ? NULL
				      : "needs root (CAP_SYS_ADMIN): page frame "
					"numbers and the injector are root's";
	if (access("/proc/sys/vm/memory_failure_recovery", F_OK) != 0)
		return "the kernel has no CONFIG_MEMORY_FAILURE";
	if (geteuid() != 0)
		return "needs root (CAP_SYS_ADMIN), and no " HWPOISON_DIR
		       "/corrupt-pfn visible";
	return "no " HWPOISON_DIR "/corrupt-pfn: modprobe hwpoison_inject "
	       "and mount debugfs on /sys/kernel/debug (kernel "
	       "CONFIG_HWPOISON_INJECT)";
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int err = 0;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	if (n < 0)
		err = -errno;
	else if ((size_t)n != strlen(s))
		err = -EIO;
	close(fd);
	return err;
}

/* The frame of @addr in process @pid: 0 and *pfn, or a message. */
static const char *lookup_pfn(long pid, uint64_t addr, uint64_t *pfn)
{
	static char msg[160];
	char path[64];
	uint64_t e;
	long page = sysconf(_SC_PAGESIZE);
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%ld/pagemap", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(msg, sizeof(msg), "%s: %s", path, strerror(errno));
		return msg;
	}
	n = pread(fd, &e, sizeof(e), (off_t)(addr / (uint64_t)page * 8));
	close(fd);
	if (n != (ssize_t)sizeof(e)) {
		snprintf(msg, sizeof(msg), "%s: cannot read the entry of %#" PRIx64,
			 path, addr);
		return msg;
	}
	if (e & PM_SWAP)
		return "the page is swapped out, or already poisoned";
	if (!(e & PM_PRESENT))
		return "no page there: not mapped, or never touched";
	*pfn = e & PM_PFN_MASK;
	if (!*pfn)
		return "the kernel hid the page frame number (needs CAP_SYS_ADMIN)";
	return NULL;
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	return errno || end == s || *end || *s == '-' ? -1 : 0;
}

/* Write @pfn to hwpoison/@file, with early kill on for the call if @early. */
static int hand_over(const char *file, uint64_t pfn, bool early)
{
	char path[128], v[32], old[32] = "";
	int err, fd;

	snprintf(v, sizeof(v), "%#" PRIx64 "\n", pfn);
	snprintf(path, sizeof(path), HWPOISON_DIR "/%s", file);
	if (early) {
		fd = open(EARLY_KILL, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || read(fd, old, sizeof(old) - 1) <= 0) {
			fprintf(stderr, "%s: inject: %s: %s\n", prog, EARLY_KILL,
				strerror(errno));
			if (fd >= 0)
				close(fd);
			return 1;
		}
		close(fd);
		if ((err = write_str(EARLY_KILL, "1"))) {
			fprintf(stderr, "%s: inject: %s: %s\n", prog, EARLY_KILL,
				strerror(-err));
			return 1;
		}
	}
	err = write_str(path, v);
	if (early)
		write_str(EARLY_KILL, old);
	if (err) {
		fprintf(stderr, "%s: inject: %s: %s\n", prog, path, strerror(-err));
		return 1;
	}
	return 0;
}

/* inject's arguments: --early, --unpoison PFN, or PID ADDRESS. */
static void parse_inject(int argc, char **argv, bool *early, bool *unpoison,
			 uint64_t *pid, uint64_t *addr, uint64_t *pfn)
{
	static const struct option opts[] = {
		{ "early", no_argument, NULL, 'e' },
		{ "unpoison", required_argument, NULL, 'u' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*early = *unpoison = false;
	optind = 1;
	while ((c = next_option(argc, argv, opts)) != -1) {
		if (c == 'e')
			*early = true;
		if (c == 'u') {
			*unpoison = true;
			if (parse_u64(optarg, pfn) || !*pfn)
				die_usage("inject: --unpoison takes one page frame "
					  "number, not '%s'", optarg);
		}
	}
	if (*unpoison) {
		if (*early || optind < argc)
			die_usage("inject: --unpoison takes one page frame number "
				  "and nothing else");
		return;
	}
	if (argc - optind > 2)
		die_usage("inject: unexpected argument '%s'", argv[optind + 2]);
	if (argc - optind != 2)
		die_usage("inject needs a process id and an address");
	if (parse_u64(argv[optind], pid) || !*pid || *pid > 0x7fffffff)
		die_usage("inject needs a process id and an address: bad "
			  "process id '%s'", argv[optind]);
	if (parse_u64(argv[optind + 1], addr))
		die_usage("inject needs a process id and an address: bad "
			  "address '%s'", argv[optind + 1]);
}

int cmd_inject(int argc, char **argv)
{
	bool early, unpoison;
	uint64_t pid = 0, addr = 0, pfn = 0;
	const char *why;

	parse_inject(argc, argv, &early, &unpoison, &pid, &addr, &pfn);
	if ((why = inject_unavailable())) {
		fprintf(stderr, "%s: inject: refused: %s\n", prog, why);
		return 1;
	}
	if (unpoison) {
		if (hand_over("unpoison-pfn", pfn, false))
			return 1;
		printf("unpoisoned pfn %#" PRIx64 "\n", pfn);
		return 0;
	}
	if ((why = lookup_pfn((long)pid, addr, &pfn))) {
		fprintf(stderr, "%s: inject: refused: process %" PRIu64
				", address %#" PRIx64 ": %s\n",
			prog, pid, addr, why);
		return 1;
	}
	if (hand_over("corrupt-pfn", pfn, early))
		return 1;
	printf("poisoned pfn %#" PRIx64 " (process %" PRIu64 ", address %#" PRIx64
	       "%s); undo: %s inject --unpoison %#" PRIx64 "\n",
	       pfn, pid, addr, early ? ", early kill" : "", prog, pfn);
	return 0;
}
