/* SPDX-License-Identifier: MIT */
/*
 * Parsers for the /proc and cgroup files the memory source reads.
 *
 * Every function works on a buffer the caller already read (not necessarily
 * NUL-terminated: @len bytes are all it may look at), never touches files,
 * never allocates, and never crashes on malformed input: it returns -EIO
 * (content present but not understood) or -ENOENT (a required key absent).
 * Numbers that overflow uint64_t are -ERANGE.  Each has a libFuzzer target
 * in tests/fuzz/.  Lines end with '\n'; a last line without one counts, and
 * lines or keys a parser does not know are ignored.  When a key occurs twice,
 * the first occurrence counts.
 */
#ifndef MN_MEMORY_PARSE_H
#define MN_MEMORY_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/internal.h"

/* "unlimited" as a byte count. */
#define MN__UNLIMITED UINT64_MAX

/* /proc/meminfo: mn__parse_meminfo() and struct mn__meminfo are the
   core's (core/internal.h), shared with the bad-memory source. */

/*
 * PSI file (/proc/pressure/memory, <cgroup v2>/memory.pressure):
 *   some avg10=0.00 avg60=0.00 avg300=0.00 total=0
 *   full avg10=0.00 avg60=0.00 avg300=0.00 total=0
 * "full" may be absent (the CPU file on old kernels); has_full says, and
 * the full_* fields are then 0.  Each line needs avg10, avg60, avg300 (a
 * decimal such as "12.34", parsed without the locale) and total, once each.
 */
struct mn__psi {
	double some_avg10, some_avg60, some_avg300;
	uint64_t some_total_us;
	double full_avg10, full_avg60, full_avg300;
	uint64_t full_total_us;
	int has_full;
};

/*
 * Return 0; -ENOENT without a "some" line; -EIO on a malformed "some" or
 * "full" line; -ERANGE if a number in one overflows uint64_t.
 */
int mn__parse_psi(const char *buf, size_t len, struct mn__psi *out);

/*
 * A single-value cgroup file: a decimal number (v1 memory.limit_in_bytes,
 * memory.usage_in_bytes, v2 memory.current) or "max" (v2 memory.max,
 * memory.high), optionally followed by a newline.  "max" and any value
 * >= 2^62 (v1 reports "unlimited" as PAGE_COUNTER_MAX * page size, e.g.
 * 9223372036854771712) are stored as MN__UNLIMITED.
 * Return 0; -EIO for anything else (empty, trailing junk, sign, blanks);
 * -ERANGE for a number that does not even fit in uint64_t.
 */
int mn__parse_cgroup_value(const char *buf, size_t len, uint64_t *out);

/*
 * A flat-keyed file: lines "key value" (memory.stat v1 or v2,
 * memory.events, memory.events.local).  Looks up @key (exact match of the whole
 * first word) and stores its decimal value.  Key and value are separated by
 * blanks (space or tab); blanks after the value are allowed.
 * Return 0; -ENOENT if the key is absent (or @key is ""); -EIO if its value
 * is malformed; -ERANGE on overflow.
 */
int mn__parse_keyed(const char *buf, size_t len, const char *key,
		    uint64_t *out);

/*
 * /proc/self/cgroup.  Lines are "hierarchy-ID:controller-list:path".
 * mn__parse_proc_cgroup_v1() finds the v1 line whose comma-separated
 * controller list contains @controller (e.g. "memory") as a whole word and
 * copies its path; named hierarchies ("name=systemd") are not controllers.
 * mn__parse_proc_cgroup_v2() finds the "0::path" line.  The first such line
 * counts; the path is the rest of the line, ':' included.
 * @out gets a NUL-terminated path of at most @outlen - 1 bytes; on error it
 * is "" (if @outlen > 0).
 * Return 0; -ENOENT if there is no such line; -ENAMETOOLONG if the path does
 * not fit; -EIO on a malformed line that would have matched (hierarchy ID
 * not decimal, path empty, not starting with '/', or holding a NUL byte).
 */
int mn__parse_proc_cgroup_v1(const char *buf, size_t len,
			     const char *controller, char *out, size_t outlen);
int mn__parse_proc_cgroup_v2(const char *buf, size_t len, char *out,
			     size_t outlen);

/*
 * /proc/self/mountinfo.  Finds the mount of a cgroup hierarchy:
 *  - @fstype "cgroup" with @super_opt naming the controller in the
 *    super options (e.g. "memory"; a whole comma-separated word, so
 *    "memory_recursiveprot" does not count), or
 *  - @fstype "cgroup2" with @super_opt NULL.
 * The first such mount counts.  Stores its mount point and its root (the 4th
 * field, the path inside the hierarchy that is mounted there), with the
 * kernel's octal escapes (\040 for space, ...) decoded, NUL-terminated; on
 * error both are "" (where their length is > 0).
 * Return 0; -ENOENT if no such mount; -ENAMETOOLONG if either does not fit;
 * -EIO on a malformed line of the right type (fields missing or not numeric,
 * an empty root, a mount point not starting with '/', an escape decoding
 * to a NUL byte).
 */
int mn__parse_mountinfo(const char *buf, size_t len, const char *fstype,
			const char *super_opt, char *mnt, size_t mntlen,
			char *root, size_t rootlen);

/*
 * A cgroup v2 controllers list (cgroup.controllers): words separated by
 * spaces, tabs or newlines.  Return 1 if @name is one of them, 0 if not
 * (always 0 for "").
 */
int mn__controllers_has(const char *buf, size_t len, const char *name);

#endif /* MN_MEMORY_PARSE_H */
