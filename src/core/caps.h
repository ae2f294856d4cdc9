/* SPDX-License-Identifier: MIT */
/*
 * Capability table: one probe per kernel mechanism, run once, cached.
 *
 * The core knows no source: each source lists its own rows as an X-macro
 * in its own header (MN__MEMORY_CAPS in memory/probe.h, ...), and
 * src/caps_table.c, which assembles the library, puts every list into
 * mn__cap_rows.  The core adds its own rows (MN__CORE_CAPS) there too.
 */
#ifndef MN_CORE_CAPS_H
#define MN_CORE_CAPS_H

#include <stdbool.h>
#include <stddef.h>

/* A probe returns 0 when the mechanism works, or -errno; either way it
   writes a one-line explanation into @detail.  Runs with no memnotify
   lock held (it may open files, start a thread, take the core lock). */
typedef int (*mn__probe_fn)(char *detail, size_t len);

/* One capability: its name in mn_capability() and its probe. */
struct mn__cap_row {
	const char *name;
	mn__probe_fn probe;
};

/* Indexed by enum mn_cap; every index has a row (test_dispatch checks
   each name).  Defined in src/caps_table.c. */
extern const struct mn__cap_row mn__cap_rows[];

/* The rows of the core's own mechanisms: X(enum mn_cap, name, probe). */
#define MN__CORE_CAPS(X)                                                      \
	X(MN_CAP_EVENTFD, "eventfd", mn__probe_eventfd)                       \
	X(MN_CAP_TIMERFD, "timerfd", mn__probe_timerfd)
int mn__probe_eventfd(char *detail, size_t len);
int mn__probe_timerfd(char *detail, size_t len);

/* True if @cap (enum mn_cap) is supported; probes on first use.
   Thread-safe; not async-signal-safe. */
bool mn__cap_supported(unsigned int cap);

#endif /* MN_CORE_CAPS_H */
