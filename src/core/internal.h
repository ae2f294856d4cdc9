/* SPDX-License-Identifier: MIT */
/*
 * Private helpers shared by every part of memnotify.  Never installed.
 */
#ifndef MN_CORE_INTERNAL_H
#define MN_CORE_INTERNAL_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "faceapi.h"
#include "memnotify.h"

#define MN__LIKELY(x) __builtin_expect(!!(x), 1)
#define MN__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MN__ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Functions that a sanitizer runtime may call while it starts (through
 * memnotify's interposers of sigaction, mmap, munmap, ...), before it can
 * run instrumented code: leave them uninstrumented under TSan.
 */
#if defined(__SANITIZE_THREAD__)
#define MN__NO_TSAN __attribute__((no_sanitize_thread))
#else
#define MN__NO_TSAN
#endif

/* Always-on argument check of a public function (sd-event's assert_return). */
#define mn__check(expr, ret)                                                  \
	do {                                                                  \
		if (MN__UNLIKELY(!(expr)))                                    \
			return (ret);                                         \
	} while (0)

#define mn__container_of(ptr, type, member)                                   \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/*
 * Options-struct validation (libbpf's OPTS_VALID): a NULL struct is valid;
 * otherwise sz must cover at least the first field after sz, and every byte
 * after the last field this build knows must be zero — a `reserved` field
 * kept for a later one too.  The last field each options struct uses is
 * named here; util.c checks at build time that nothing but such a
 * reserved field follows it (no padding: an initialiser does not zero it).
 */
bool mn__opts_valid(const void *opts, size_t user_sz, size_t known_sz);
#define mn__opts_last_mn_dispatch_opts mode
#define mn__opts_last_mn_memory_opts min_dwell_ms
#define mn__opts_last_mn_badmem_opts system_poll_ms
#define mn__opts_last_mn_rcache_opts max_bytes
#define MN__OPTS_END(type)                                                    \
	(offsetof(struct type, mn__opts_last_##type) +                        \
	 sizeof(((struct type *)0)->mn__opts_last_##type))
#define MN__OPTS_VALID(opts, type)                                            \
	(!(opts) || mn__opts_valid((opts), (opts)->sz, MN__OPTS_END(type)))
/* Read field of an options struct, or a default if the caller's is older. */
#define MN__OPTS_GET(opts, type, field, def)                                  \
	(((opts) && (opts)->sz >= offsetof(struct type, field) +              \
					  sizeof((opts)->field))              \
		 ? (opts)->field                                              \
		 : (def))

/* Logging (log.c).  Never called from signal context. */
void mn__log(enum mn_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
#define mn__err(...) mn__log(MN_LOG_ERROR, __VA_ARGS__)
#define mn__warn(...) mn__log(MN_LOG_WARN, __VA_ARGS__)
#define mn__info(...) mn__log(MN_LOG_INFO, __VA_ARGS__)
#define mn__debug(...) mn__log(MN_LOG_DEBUG, __VA_ARGS__)

/* Time (util.c). */
uint64_t mn__now_mono_usec(void);
uint64_t mn__now_real_usec(void);

/*
 * Read a whole small file into @buf with one pread at offset 0 (proc, sysfs
 * and cgroupfs regenerate the content on each read from offset 0).
 * Returns the byte count (>= 0) or -errno.  @buf is NUL-terminated when
 * there is room; the parsers do not rely on it.
 */
ssize_t mn__pread_all(int fd, char *buf, size_t size);
ssize_t mn__read_file(const char *path, char *buf, size_t size);
/* Read a whole file of any size into a malloc'ed, NUL-terminated buffer.
   Returns 0 or -errno; the caller frees *@buf. */
int mn__read_file_alloc(const char *path, char **buf, size_t *len);
/* Write a string to a file (with its NUL if @with_nul); -errno on failure. */
int mn__write_file(const char *path, const char *s, bool with_nul);

/*
 * The mapping of this process that holds @addr, from /proc/self/maps:
 * [*start, *end) and its PROT_* bits.  Returns 0, -ENOENT if no mapping
 * holds it, -EINVAL for a NULL output, or -errno from open/read.
 * Malformed lines are skipped; a line longer than its buffer is parsed
 * from its start only.  Async-signal-safe (open/read/close only, a stack
 * buffer, no lock).
 */
/* int mn__maps_lookup(addr, start, end, prot): in core/faceapi.h. */
/* The same, by reading the text even where the kernel has PROCMAP_QUERY
   (@text_only: for the tests of the reader). */
int mn__maps_lookup_how(uintptr_t addr, uintptr_t *start, uintptr_t *end,
			int *prot, bool text_only);

/*
 * Parse one line of /proc/PID/maps, @len bytes without its '\n' (a line's
 * head, cut inside its path, parses the same):
 * "lo-hi perms offset major:minor inode[ path]".  Strict: hex digits only
 * in lo, hi, offset and the device, decimal in the inode, no overflow,
 * lo < hi, perms [r-][w-][x-][ps].  On success sets [*lo, *hi) and *prot
 * (PROT_READ/PROT_WRITE/PROT_EXEC bits only) and returns 0; otherwise
 * returns -EINVAL and leaves them alone.  Pure and async-signal-safe.
 */
int mn__maps_parse_line(const char *line, size_t len, uintptr_t *lo,
			uintptr_t *hi, int *prot);
/* The same line, every field: -EINVAL for a malformed line or NULL. */
struct mn__maps_entry {
	uintptr_t lo, hi, offset;
	uintptr_t dev_major, dev_minor, inode;
	int prot;       /* PROT_READ/WRITE/EXEC */
	bool shared;    /* 's': MAP_SHARED */
};
int mn__maps_parse_entry(const char *line, size_t len, struct mn__maps_entry *e);

/*
 * /proc/meminfo (procfs.c): the lines MemTotal, MemFree, MemAvailable and
 * HardwareCorrupted, strictly "Key: <decimal> kB"; other lines ignored, the
 * first of a repeated key counts.  Pure; @buf need not be NUL-terminated.
 */
/* /proc/meminfo: values in bytes (the file says kB = 1024 bytes). */
struct mn__meminfo {
	uint64_t total_bytes;     /* MemTotal */
	uint64_t free_bytes;      /* MemFree */
	uint64_t available_bytes; /* MemAvailable (0 if absent) */
	uint64_t hw_corrupted_bytes; /* HardwareCorrupted (0 if absent) */
	int has_available;        /* MemAvailable was present */
};

/*
 * Return 0; -ENOENT without MemTotal or MemFree; -EIO/-ERANGE if one of the
 * MemTotal, MemFree, MemAvailable, HardwareCorrupted lines is not
 * "Key: <decimal> kB" or its value overflows.
 */
int mn__parse_meminfo(const char *buf, size_t len, struct mn__meminfo *out);

/*
 * The mapping that holds @addr, with what /proc/self/smaps adds: locked
 * (VmFlags "lo"), hugetlb ("ht"), and image — a private mapping of a file
 * this process also maps executable (the program or a library).  Returns
 * 0, -ENOENT when no mapping holds @addr, -EINVAL for NULL, or -errno.
 * Thread context: stdio, no memnotify lock.  (procfs.c)
 */
struct mn__vma {
	struct mn__maps_entry m;
	bool locked, hugetlb, image;
};
int mn__vma_lookup(uintptr_t addr, struct mn__vma *v);

/* Global counters (util.c, read by mn_stats()); relaxed atomics, cheap on the hot path. */
struct mn__counters {
	_Atomic uint64_t delivered;
	_Atomic uint64_t lost;
	_Atomic uint64_t source_errors;
	_Atomic uint64_t wakeups;
	_Atomic uint64_t samples;
	_Atomic uint64_t coalesced;
};
extern struct mn__counters mn__counters;
#define mn__count(name, n)                                                    \
	atomic_fetch_add_explicit(&mn__counters.name, (n),                    \
				  memory_order_relaxed)

#endif /* MN_CORE_INTERNAL_H */
