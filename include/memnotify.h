/* SPDX-License-Identifier: MIT */
/*
 * memnotify — tells a Linux process, through callbacks, what is happening to
 * its memory.
 *
 * This is the native API.  Every public symbol starts with mn_ / MN_.
 *
 * Conventions used throughout this header
 * ---------------------------------------
 * - Functions returning int return 0 (or a non-negative count) on success and
 *   a negative errno value on failure (-EINVAL, -ENOMEM, ...).  They never set
 *   errno as their way of reporting.
 * - Options structs start with `size_t sz`; initialise them with
 *   MN_OPTS(type, name, .field = value, ...), or, in C++ (and C),
 *   `struct type name = MN_OPTS_INIT(type);` and then assign the fields.  A struct from a newer caller
 *   whose unknown trailing bytes are not zero is refused with -EINVAL; a NULL
 *   options pointer means "all defaults".
 * - Units are in names: _bytes, _ms, _usec, _percent.
 * - Callbacks run in one of three contexts, named in each function's comment:
 *     thread      - on a memnotify delivery thread ("memnotify-cb"), or
 *                   the thread that calls mn_dispatch() when the
 *                   application drives it; may lock, allocate, log, and
 *                   call back into memnotify.  One subscription's callback
 *                   never runs on two threads at once and sees its events
 *                   in order; different subscriptions' callbacks may run
 *                   at the same time on different delivery threads (see
 *                   "Slow subscribers" at mn_dispatch_configure()).
 *     synchronous - in the thread making the memory-changing call.
 *     signal      - inside a signal handler; async-signal-safe code only.
 *   Memory-level callbacks run in thread context.
 * - fork(): memnotify keeps its registrations in the child and resumes there
 *   at the child's first call into any mn_* function (the dispatcher thread
 *   and the kernel file descriptors are re-created then); until that call
 *   the child receives no events.  No call returns -ECHILD.
 * - Diagnostics are never printed by the library: they go to the sink set
 *   with mn_set_log() (none by default), filtered by MEMNOTIFY_LOG.  The one
 *   line it writes itself (to stderr) is the report before an unhandled
 *   chained signal's default action; see mn_signal_report().
 */
#ifndef MEMNOTIFY_H
#define MEMNOTIFY_H

/*
 * The signal and bad-memory callbacks take siginfo_t, a POSIX type: a
 * strict ISO C build (-std=c11) must ask for POSIX declarations.
 */
#if defined(__STRICT_ANSI__) && !defined(__cplusplus) &&                    \
	!defined(_POSIX_C_SOURCE) && !defined(_XOPEN_SOURCE) &&             \
	!defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE)
#error "memnotify.h needs POSIX declarations (siginfo_t): define _POSIX_C_SOURCE=200809L, or build with -std=gnu11"
#endif

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(MN_API)
#define MN_API __attribute__((visibility("default")))
#elif !defined(MN_API)
#define MN_API
#endif

#define MN_VERSION_MAJOR 0
#define MN_VERSION_MINOR 1
#define MN_VERSION_PATCH 0

/*
 * MN_OPTS - declare and initialise an options struct of @type named @name,
 * with its `sz` set and the remaining fields given as designated
 * initialisers, e.g.
 *     MN_OPTS(mn_memory_opts, o, .low_percent = 15);
 * The fields not named are zero.  No options struct has padding where a
 * later field could go (a place kept for one is a named field, `reserved`,
 * which an initialiser zeroes, where padding copied from a compound
 * literal may hold garbage): the library checks that every byte after the
 * fields it knows is zero (see "The sz rule" in the README).
 */
#define MN_OPTS(type, name, ...)                                              \
	struct type name = { .sz = sizeof(struct type), __VA_ARGS__ }

/*
 * MN_OPTS_INIT - the value of an options (or output) struct of @type with
 * every byte zero but `sz`, which is sizeof(struct @type), for C++ (C++11
 * and later, clean under -Wall -Wextra, any field order) and C alike:
 *     struct mn_memory_opts o = MN_OPTS_INIT(mn_memory_opts);
 *     o.low_percent = 15;
 *     mn_stats_t st = MN_OPTS_INIT(mn_stats);
 * In C it is a statement expression (GNU C, which GCC and Clang accept in
 * every -std mode) that zeroes the whole struct, padding included; in C++
 * a call of mn_opts_init<T>(), an inline template (below, outside the
 * extern "C" block) that value-initialises it.
 */
#ifdef __cplusplus
#define MN_OPTS_INIT(type) mn_opts_init<struct type>()
#else
#define MN_OPTS_INIT(type)                                                    \
	(__extension__({                                                      \
		struct type mn__opts_;                                        \
		__builtin_memset(&mn__opts_, 0, sizeof(mn__opts_));           \
		mn__opts_.sz = sizeof(mn__opts_);                             \
		mn__opts_;                                                    \
	}))
#endif

/**
 * mn_version() - the library's version string, e.g. "0.1.0".
 *
 * Return: a static string.  Thread-safe and async-signal-safe.
 */
MN_API const char *mn_version(void);

/**
 * mn_strerror() - a short English description of a memnotify return code.
 * @err: a value returned by a memnotify function (negative errno) or 0.
 *
 * Return: a static string, never NULL: its own for every error this header
 * documents (test_strerror checks each), "unknown error" for any other
 * value.  Thread-safe and async-signal-safe.  Mirrors strerror(3).
 */
MN_API const char *mn_strerror(int err);

/* ------------------------------------------------------------------------
 * Logging
 * ------------------------------------------------------------------------ */

enum mn_log_level {
	MN_LOG_ERROR = 0,
	MN_LOG_WARN = 1,
	MN_LOG_INFO = 2,
	MN_LOG_DEBUG = 3,
};

/* A log sink: @msg is one line without a trailing newline. */
typedef void (*mn_log_fn)(enum mn_log_level level, const char *msg, void *ctx);

/**
 * mn_set_log() - route the library's diagnostics to @fn.
 * @fn:  the sink, or NULL to drop all messages (the default).
 * @ctx: passed back to @fn unchanged.
 *
 * Messages above the verbosity are not formatted at all.  The verbosity is
 * MN_LOG_WARN unless the environment variable MEMNOTIFY_LOG names another
 * ("error", "warn", "info" or "debug"), read once at the first log call.
 * @fn may be called from any memnotify thread, never from signal context.
 *
 * Return: 0.  Thread-safe.  Mirrors libbpf_set_print().
 */
MN_API int mn_set_log(mn_log_fn fn, void *ctx);

/* ------------------------------------------------------------------------
 * Capabilities: the kernel mechanisms this machine offers
 * ------------------------------------------------------------------------ */

enum mn_cap {
	MN_CAP_MEMINFO = 0,           /* /proc/meminfo with MemAvailable */
	MN_CAP_PSI,                   /* /proc/pressure/memory readable */
	MN_CAP_PSI_TRIGGER,           /* a PSI trigger can be armed on it */
	MN_CAP_CGROUP_V1_MEMORY,      /* cgroup v1 memory controller, own group */
	MN_CAP_CGROUP_V1_PRESSURE_LEVEL, /* memory.pressure_level + eventfd */
	MN_CAP_CGROUP_V2_MEMORY,      /* cgroup v2 memory controller, own group */
	MN_CAP_CGROUP_V2_PSI,         /* memory.pressure of the own v2 group */
	MN_CAP_EVENTFD,               /* eventfd(2) */
	MN_CAP_TIMERFD,               /* timerfd_create(2) */
	MN_CAP_SIGNAL_INTERPOSE,      /* sigaction()/signal() calls reach
	                                 memnotify (linked or preloaded);
	                                 no when loaded by dlopen() (ctypes,
	                                 RTLD_LOCAL) or after the C library */
	MN_CAP_MEMORY_FAILURE,        /* kernel memory-failure recovery
	                                 (CONFIG_MEMORY_FAILURE) */
	MN_CAP_MCE_EARLY_KILL,        /* prctl(PR_MCE_KILL) early kill */
	MN_CAP_PATROL_SCRUBBER,       /* an EDAC memory controller scrubs */
	MN_CAP_HWPOISON_INJECT,       /* madvise(MADV_HWPOISON) allowed */
	MN_CAP_MEMORY_FAILURE_TRACEPOINT, /* memory_failure_event in tracefs */
	MN_CAP_VM_INTERPOSE,          /* munmap()/mprotect()/... calls through
	                                 the PLT reach memnotify */
	MN_CAP_VM_LIBC_PATCH,         /* the C library's own entry points are
	                                 redirected (glibc-internal callers);
	                                 probing it redirects them, as the
	                                 first mn_vm_watch()/listen() would */
	MN_CAP_USERFAULTFD,           /* userfaultfd unmap/remove/remap events;
	                                 probing it opens the userfaultfd and
	                                 starts its reader thread */
	MN_CAP__COUNT
};

struct mn_capability {
	size_t sz;            /* set by the caller: sizeof(struct mn_capability) */
	const char *name;     /* stable identifier, e.g. "psi_trigger" */
	int supported;        /* 1 if usable here, 0 if not */
	int error;            /* 0, or the negative errno the probe met */
	char detail[160];     /* what was found, or why it is missing */
};

/**
 * mn_capability() - report whether one kernel mechanism works on this machine.
 * @cap: one of enum mn_cap.
 * @out: filled in; @out->sz must be set by the caller.
 *
 * Every mechanism is probed once per process (the first time any caller asks
 * or a source needs it) and the answer is cached; ENOSYS, EPERM, EACCES,
 * ENOENT and EINVAL from a probe mean "missing".  The probe acts on the
 * kernel's answer, never on its version number.
 *
 * Return: 0; -EINVAL if @cap is out of range, @out is NULL or @out->sz is
 * too small.  Thread-safe.
 */
MN_API int mn_capability(unsigned int cap, struct mn_capability *out);

/*
 * The struct's name for C++, where `mn_capability` alone names the
 * function: mn_capability_t.
 */
typedef struct mn_capability mn_capability_t;

/**
 * mn_get_capability() - mn_capability() under a name that differs from
 * its struct's, for C++ (the same function: one exported alias).
 * @cap: one of enum mn_cap.
 * @out: filled in; @out->sz must be set (MN_OPTS_INIT(mn_capability)).
 *
 * Return: 0; -EINVAL if @cap is out of range, @out is NULL or @out->sz is
 * too small.  Thread-safe; probes as mn_capability() does.
 */
MN_API int mn_get_capability(unsigned int cap, struct mn_capability *out);

/* ------------------------------------------------------------------------
 * Subscriptions and the dispatcher
 * ------------------------------------------------------------------------ */

/* An opaque subscription handle, returned by every mn_*_subscribe(). */
typedef struct mn_sub mn_sub;

/**
 * mn_unsubscribe() - end a subscription and free its handle.
 * @sub: a handle returned by a mn_*_subscribe() function.
 *
 * When called from outside a callback, returns only once the subscription's
 * callback is not running on any thread and will never run again (it waits
 * for a running invocation to return).  When called from inside a memnotify
 * callback (its own or another's), it does not wait — waiting could deadlock —
 * but guarantees the callback is never started again by this thread and that
 * its memory is freed only after every running invocation has returned.
 *
 * Return: 0; -EINVAL if @sub is NULL; -ENOENT if @sub was already
 * unsubscribed (detected while memnotify still holds the handle's memory;
 * after that, passing a stale pointer is undefined, as with free()).  Two
 * concurrent calls for one handle — from two threads, or from a thread and
 * a signal handler — are safe: exactly one returns 0, the other -ENOENT.
 * In MN_DISPATCH_EXTERNAL mode, when no thread is inside mn_dispatch(),
 * what the subscription held (a memory group's fds) is released before
 * this call returns.  Thread-safe; in signal context only from inside a
 * memnotify signal-chain or AR handler (see mn_signal_register()).
 */
MN_API int mn_unsubscribe(mn_sub *sub);

enum mn_dispatch_mode {
	MN_DISPATCH_THREAD = 0,   /* memnotify runs its own thread (default) */
	MN_DISPATCH_EXTERNAL = 1, /* the application polls mn_dispatch_fd() */
};

struct mn_dispatch_opts {
	size_t sz;
	enum mn_dispatch_mode mode;
	unsigned int reserved;  /* 0: a place for a later field, named so
	                           that an initialiser zeroes it (padding
	                           would not be) */
};

/**
 * mn_dispatch_configure() - choose who runs thread-context callbacks.
 * @opts: the mode; NULL means MN_DISPATCH_THREAD.
 *
 * Call it before the first subscription.  In MN_DISPATCH_THREAD mode one
 * library thread (named "memnotify", all signals blocked) is started on first
 * need to read the event sources, and thread-context callbacks run on
 * delivery threads ("memnotify-cb", all signals blocked; one to start with).
 * In MN_DISPATCH_EXTERNAL mode no thread is started: the application
 * adds mn_dispatch_fd() to its own loop (epoll, libuv's uv_poll, sd-event's
 * sd_event_add_io) and calls mn_dispatch(0) when it is readable; the
 * callbacks run inside that call.
 *
 * Slow subscribers.  Each thread-context subscription (memory levels, bad
 * memory, MN_VM_DISPATCH ranges) has its own delivery queue.  In
 * MN_DISPATCH_THREAD mode, when an event has waited 10 ms because every
 * delivery thread is inside a callback, memnotify starts another delivery
 * thread (at most 16; they stay until mn_shutdown()), so a callback that
 * takes seconds delays the other subscribers by about 10 ms (make bench
 * measures it), not by its own length.  While a subscriber's callback runs,
 * what comes for it waits, merged by its kind's rule, never dropped
 * silently: memory levels merge to the newest status, with the level
 * the subscriber was last told as previous_level and the merged changes
 * in skipped_changes and mn_stats() events_coalesced (an INITIAL or ERROR
 * reason is kept); bad pages are never merged (each is delivered, from
 * the subscriber's own cursor); range events wait in the subscription's
 * ring (a full ring is counted and reported, MN_VM_LOST).  In
 * MN_DISPATCH_EXTERNAL mode the application's thread runs every callback:
 * a slow one holds up its loop, and the same merging applies.  Not covered:
 * the late (userfaultfd) events of a watch made without MN_VM_DISPATCH run
 * on the dispatcher thread itself, between its reads of the sources, so a
 * slow one delays every other delivery: keep it short, or use
 * MN_VM_DISPATCH.
 *
 * Return: 0; -EINVAL for an unknown mode or bad @opts; -EBUSY if the
 * dispatcher is already running in another mode.  Thread-safe.
 */
MN_API int mn_dispatch_configure(const struct mn_dispatch_opts *opts);

/**
 * mn_dispatch_fd() - the file descriptor an external loop polls.
 *
 * It becomes readable (POLLIN) when mn_dispatch() has work.  It is an epoll
 * file descriptor, O_CLOEXEC, owned by memnotify: do not close it.  After
 * fork() the child gets a new one at its first mn_* call, so ask again.
 *
 * Return: the fd (>= 0); -EINVAL unless in MN_DISPATCH_EXTERNAL mode;
 * -ENOMEM/-EMFILE if it cannot be created.  Thread-safe.
 */
MN_API int mn_dispatch_fd(void);

/**
 * mn_dispatch() - run the callbacks whose events are ready.
 * @timeout_ms: how long to wait for an event: 0 returns at once, -1 waits
 *              without limit.
 *
 * Callbacks run on the calling thread (thread context).  One thread
 * dispatches at a time; a call from inside a callback returns -EBUSY.
 *
 * Return: the number of kernel events handled (>= 0); -EINVAL unless in
 * MN_DISPATCH_EXTERNAL mode or if @timeout_ms < -1; -EBUSY when called
 * recursively or while another thread dispatches; -EINTR if a signal
 * interrupted the wait.  Thread-safe.
 */
MN_API int mn_dispatch(int timeout_ms);

/**
 * mn_shutdown() - stop the dispatcher and release every kernel resource.
 *
 * Joins every thread memnotify started (the dispatcher, the delivery
 * threads — waiting for a callback still running on one —, the userfaultfd
 * reader, the early-kill thread) and closes every fd it opened (epoll,
 * eventfds, timerfds, the userfaultfd): afterwards the process has none
 * left.  Subscriptions must have been ended first.  The library can be used
 * again afterwards.  Must not be called from a callback.  What stays: the
 * signal chain's handler where one was installed (the program's own
 * disposition keeps running behind it) and the C library's redirected
 * entry points (they make the system call directly while nothing is
 * watched).
 *
 * Return: 0; -EBUSY if subscriptions remain, if called from a callback, or
 * while memnotify's thread is being started by a concurrent subscription.
 * Thread-safe.
 */
MN_API int mn_shutdown(void);

/* ------------------------------------------------------------------------
 * Counters: nothing is lost silently
 * ------------------------------------------------------------------------ */

struct mn_stats {
	size_t sz;
	uint64_t events_delivered;  /* callback invocations */
	uint64_t events_lost;       /* events that could not be delivered */
	uint64_t source_errors;     /* reads of /proc or cgroup files that failed */
	uint64_t wakeups;           /* dispatcher wakeups (epoll returns) */
	uint64_t samples;           /* memory samples taken */
	uint64_t events_coalesced;  /* memory-level changes folded into a
	                               later call of a subscriber whose
	                               callback was still running (see
	                               mn_memory_subscribe); each is also
	                               in that call's skipped_changes, but
	                               for those still waiting when the
	                               subscription ended */
};

/**
 * mn_stats() - read the process-wide counters.
 * @out: filled in; @out->sz must be set.
 *
 * Return: 0; -EINVAL if @out is NULL or too small.  Thread-safe; the
 * counters are read one by one, not as an atomic snapshot.
 */
MN_API int mn_stats(struct mn_stats *out);

/* The struct's name for C++, where `mn_stats` alone names the function. */
typedef struct mn_stats mn_stats_t;

/**
 * mn_get_stats() - mn_stats() under a name that differs from its struct's,
 * for C++ (the same function: one exported alias).
 * @out: filled in (counts of events, not bytes); @out->sz must be set
 *       (MN_OPTS_INIT(mn_stats)).
 *
 * Return: 0; -EINVAL if @out is NULL or too small.  Thread-safe; the
 * counters are read one by one, not as an atomic snapshot.
 */
MN_API int mn_get_stats(struct mn_stats *out);

/* ------------------------------------------------------------------------
 * Memory pressure
 *
 * Mirrors IHostMemoryManager::RegisterMemoryNotificationCallback ->
 * ICLRMemoryNotificationCallback::OnMemoryNotification(EMemoryAvailable) and
 * the low/high notifications of CreateMemoryResourceNotification.
 * Linux sources: PSI triggers, cgroup v1 memory.pressure_level, cgroup v2
 * memory.events, and adaptive sampling of MemAvailable and cgroup usage.
 * ------------------------------------------------------------------------ */

/* The values of EMemoryAvailable. */
enum mn_memory_level {
	MN_MEMORY_LEVEL_UNKNOWN = 0,
	MN_MEMORY_LOW = 1,     /* eMemoryAvailableLow: memory is scarce */
	MN_MEMORY_NEUTRAL = 2, /* eMemoryAvailableNeutral */
	MN_MEMORY_HIGH = 3,    /* eMemoryAvailableHigh: memory is plentiful */
};

/* What made memnotify look (bit values; `mechanism` holds exactly one). */
enum mn_memory_mechanism {
	MN_MECH_NONE = 0,
	MN_MECH_QUERY = 1 << 0,          /* mn_memory_status() / first delivery */
	MN_MECH_POLL = 1 << 1,           /* adaptive sampling timer */
	MN_MECH_PSI = 1 << 2,            /* a PSI trigger fired */
	MN_MECH_CGROUP_V1_PRESSURE = 1 << 3, /* memory.pressure_level event */
	MN_MECH_CGROUP_V2_EVENTS = 1 << 4,   /* memory.events changed */
	MN_MECH_CGROUP_V1_THRESHOLD = 1 << 5, /* a memory.usage_in_bytes
	                                         threshold was crossed */
	MN_MECH_CGROUP_V1_OOM = 1 << 6,  /* memory.oom_control eventfd (only
	                                    with MN_MEMORY_OOM_EVENTS) */
};

/* Why a callback is being called. */
enum mn_memory_reason {
	MN_MEMORY_INITIAL = 1, /* first delivery after subscribing */
	MN_MEMORY_CHANGE = 2,  /* the level changed */
	MN_MEMORY_ERROR = 3,   /* the watched source failed; see `error` */
	MN_MEMORY_OOM = 4,     /* the kernel ran out of memory under a limit the
	                          group is under (only with MN_MEMORY_OOM_EVENTS);
	                          see oom_kill_count */
	MN_MEMORY_MOVED = 5,   /* the process moved to another memory cgroup and
	                          the watch of its own group followed it: the
	                          status is the new group's (cgroup_path) */
};

/* mn_memory_status.cgroup_version. */
enum mn_cgroup_version {
	MN_CGROUP_NONE = 0, /* the whole machine: no memory cgroup */
	MN_CGROUP_V1 = 1,
	MN_CGROUP_V2 = 2,
};

struct mn_memory_status {
	size_t sz;
	enum mn_memory_level level;
	enum mn_memory_level previous_level; /* UNKNOWN on the first delivery */
	enum mn_memory_reason reason;        /* set for callbacks; 0 for queries */
	int error;                   /* 0, or -errno when reason == ERROR */
	unsigned int mechanism;      /* one enum mn_memory_mechanism value */
	unsigned int mechanisms_active; /* the mechanisms armed for this watch */
	uint64_t time_usec;          /* CLOCK_REALTIME of the sample */
	uint64_t available_bytes;    /* memory still available to the watched
	                                group (or system) before it must reclaim
	                                working set: the smallest, over
	                                MemAvailable, the group and each limited
	                                ancestor, of that level's limit minus its
	                                usage less its inactive file pages (so
	                                siblings' usage of a shared limit counts) */
	uint64_t limit_bytes;        /* effective limit: the smallest of physical
	                                memory and every limit of the group and
	                                its ancestors */
	uint64_t usage_bytes;        /* limit_bytes - available_bytes */
	uint64_t physical_bytes;     /* MemTotal */
	unsigned int load_percent;   /* 0..100, as GlobalMemoryStatusEx's
	                                dwMemoryLoad: used / limit */
	unsigned int low_percent;    /* thresholds in force, % of limit_bytes
	                                (0 with byte thresholds) */
	unsigned int high_percent;
	int psi_valid;               /* 1 if the psi_* fields are filled */
	double psi_some_avg10;       /* PSI averages, percent of wall time */
	double psi_some_avg60;
	double psi_full_avg10;
	double psi_full_avg60;
	enum mn_cgroup_version cgroup_version;
	char cgroup_path[256];       /* the watched group's directory, or "" */
	uint64_t low_bytes;          /* the thresholds in force, in bytes of */
	uint64_t high_bytes;         /* available memory, for limit_bytes */
	uint64_t skipped_changes;    /* level changes since this subscriber's
	                                previous call that were folded into
	                                this one (its callback was running):
	                                0 when each change is its own call */
	uint64_t oom_kill_count;     /* processes of the watched group the
	                                kernel's OOM killer has killed, as the
	                                kernel counts them (v1 memory.oom_control
	                                oom_kill: the group's own tasks; v2
	                                memory.events oom_kill: the group and its
	                                descendants); kept only with
	                                MN_MEMORY_OOM_EVENTS, else 0 */
};

/* Subscription callback; @st is valid only during the call.  Thread context. */
typedef void (*mn_memory_cb)(const struct mn_memory_status *st, void *ctx);

/* Flags for mn_memory_opts.flags */
/* mn_memory_opts.flags (bits, OR'ed into an unsigned int). */
enum mn_memory_flags {
	MN_MEMORY_NO_PSI = 1u << 0,    /* do not arm PSI triggers */
	MN_MEMORY_NO_EVENTS = 1u << 1, /* no cgroup pressure events */
	/* No adaptive sampling: events only.  No kernel event announces a
	   limit change (v1 memory.limit_in_bytes, v2 memory.max /
	   memory.high) or a move of the process, so such a watch re-reads
	   its group's and ancestors' limit files (and, for the own group,
	   /proc/self/cgroup) once per poll_max_ms, all such watches at the
	   same instant (one wakeup for every one of them, whatever their
	   number), and samples only when one changed: the change then
	   comes within about poll_max_ms, with mechanism MN_MECH_POLL.  On
	   v2 nothing else announces usage below memory.high / memory.max:
	   a watch there hears only the kernel's alarms (and PSI). */
	MN_MEMORY_NO_POLL = 1u << 2,
	/* Also call back with reason MN_MEMORY_OOM whenever the kernel runs
	   out of memory in the group or under a limited ancestor's limit it
	   shares (v1: the group's memory.oom_control eventfd, which the kernel
	   signals for an OOM at the group or any ancestor; v2: the `oom` and
	   `oom_kill` counts of memory.events of the group and each limited
	   ancestor).  The OOM killer may have killed a process of the group or
	   of a sibling: oom_kill_count rises when one of the group's own was
	   killed (on v1 a kill that follows the notification is reported by a
	   second MN_MEMORY_OOM within the next few samples).  The level is
	   unchanged by the event itself. */
	MN_MEMORY_OOM_EVENTS = 1u << 3,
	/* Count active file pages as used without confirmation: no
	   page-cache rule (see mn_memory_subscribe()), a LOW whenever usage
	   less inactive file pages leaves under low_percent, as the .NET GC
	   and the Kubernetes working-set figure count. */
	MN_MEMORY_COUNT_ACTIVE_FILE = 1u << 4,
	MN_MEMORY_PSI_ONLY = (1u << 1) | (1u << 2), /* NO_EVENTS | NO_POLL */
};

struct mn_memory_opts {
	size_t sz;
	/* A cgroup directory (v1 memory or v2) to watch instead of the
	   caller's own memory cgroup; NULL or "" for the own. */
	const char *cgroup;
	/* LOW when available < low_percent of the limit; HIGH when available
	   >= high_percent.  0 takes MEMNOTIFY_LOW_PERCENT /
	   MEMNOTIFY_HIGH_PERCENT from the environment, else 10 and 30.
	   Valid: 1 <= low < high <= 99. */
	unsigned int low_percent;
	unsigned int high_percent;
	/* Hysteresis in percentage points: a level is left only once available
	   memory is this far past its threshold.  0 means 2; it must be
	   smaller than (high - low) / 2. */
	unsigned int hysteresis_percent;
	/* PSI trigger: LOW while the "some" stall exceeds psi_stall_us within
	   a window.  0 means 100000 us; the window is chosen from what the
	   kernel accepts (2 s here for unprivileged callers). */
	unsigned int psi_stall_us;
	/* Adaptive sampling bounds in ms; 0 means 10 and 2000.  Sampling is
	   fast near a threshold and slow far from it; in a steady state (same
	   level, available memory moving by at most 1 % of the limit) the
	   interval doubles per sample up to poll_max_ms, where a kernel event
	   (PSI, v1 pressure levels or usage thresholds, v2 memory.events) can
	   bring the watch back. */
	unsigned int poll_min_ms;
	unsigned int poll_max_ms;
	unsigned int flags;          /* enum mn_memory_flags bits */
	/* Thresholds in bytes of available memory instead of percentages
	   (CreateMemoryResourceNotification's are absolute): LOW below
	   low_bytes, HIGH at or above high_bytes.  Both or neither; then
	   low_percent and high_percent must be 0, and the hysteresis is
	   hysteresis_percent of the limit (0 means 2) but at most a quarter
	   of high_bytes - low_bytes. */
	uint64_t low_bytes;
	uint64_t high_bytes;
	/* Minimum dwell time in ms: a level is left (for NEUTRAL or HIGH) only
	   once it has lasted this long, so that a group swinging around a
	   threshold does not flap faster than a subscriber can act; the
	   change is delivered when the dwell ends, if it still holds.
	   Entering LOW is never delayed.  0 means 1000; at most 60000. */
	unsigned int min_dwell_ms;
	unsigned int reserved;       /* 0: room for a later field (no padding) */
};

/**
 * mn_memory_subscribe() - call @cb whenever the memory level changes.
 * @opts: watch parameters, or NULL for the defaults (own cgroup, 10/30 %).
 * @cb:   the callback; thread context (a delivery thread).  Like
 *        OnMemoryNotification it should return promptly, but a slow one
 *        holds up no other subscriber: while it runs, the changes that come
 *        for it are merged into one call with the newest status (see
 *        "Slow subscribers" at mn_dispatch_configure()).
 * @ctx:  passed to @cb unchanged.
 * @out:  receives the subscription handle; end it with mn_unsubscribe().
 *
 * @cb is called once soon after subscribing with the current level (reason
 * MN_MEMORY_INITIAL), then on every level change (MN_MEMORY_CHANGE), and
 * once with MN_MEMORY_ERROR if the watched group disappears or cannot be
 * read (the subscription then stays inactive until unsubscribed).  A watch
 * of the caller's own group (@opts->cgroup NULL or "") follows the process:
 * /proc/self/cgroup is compared once per poll_max_ms (at a sample) and when
 * the group vanishes; if the process is in another group, the watch moves
 * there and every subscriber gets MN_MEMORY_MOVED with the new group's
 * status (no error for the old group's removal).  An
 * error status carries the time of the failure, level
 * MN_MEMORY_LEVEL_UNKNOWN, the last known level as previous_level, the
 * group, physical_bytes and error — and 0 in every other figure (no stale
 * sample).  A clean removal of the group counts no source_errors.
 * Subscribers that watch the same group with the same parameters share one
 * monitor (one set of kernel fds) and are called oldest first.  Levels are
 * states, sampled: each call reports the level of the newest sample.
 * previous_level is the level this subscriber was last told (UNKNOWN on
 * its first call); skipped_changes counts the level changes since then
 * that were folded into this call because its callback was still running
 * (so level == previous_level with skipped_changes >= 1 is a whole episode,
 * e.g. HIGH -> LOW -> HIGH, that came and went meanwhile).
 *
 * The page-cache rule.  available_bytes counts a group's active file pages
 * (page cache read at least twice) as used, though the kernel can reclaim
 * them.  A LOW that only they make — the group would not be LOW were they
 * free — is declared only when a reclaim signal confirms it: the group (or
 * a limited ancestor) refaults file pages (memory.stat
 * workingset_refault_file: evicted cache read back) at 0.5 % of its limit
 * per second or more, measured over spans of at least 100 ms; or a PSI
 * trigger, a v1 memory.pressure_level "critical" event or a v2
 * memory.events high/max event holds LOW (as they do at any level).
 * Without one the level is NEUTRAL (so a level may be NEUTRAL while
 * available_bytes is under low_bytes), and a confirmed LOW whose
 * refaults stop is left at the first sample after a span without them
 * (and min_dwell_ms).  A LOW
 * that memory other than active file pages makes is never delayed: it is
 * entered at the sample that sees the crossing.  The rule's other side is
 * thrashing: a group (or limited ancestor) that refaults, per second over
 * such a span, at least as many bytes of file pages as its inactive file
 * list holds (the cache is read back faster than it can stay) counts its
 * inactive file pages as used too: available_bytes is then its limit less
 * its whole usage (usage_bytes and load_percent follow), and LOW comes as
 * usage says.  The rule is off with
 * MN_MEMORY_COUNT_ACTIVE_FILE, at machine scope (MemAvailable already
 * counts reclaimable cache) and where memory.stat has no refault count
 * (older kernels: the usage rule alone then).
 * mn_memory_status() has no refault history: its level applies the rule
 * unconfirmed.
 *
 * Return: 0; -EINVAL for a NULL @cb or @out, a bad @opts or thresholds
 * (including bad MEMNOTIFY_LOW_PERCENT / MEMNOTIFY_HIGH_PERCENT values,
 * byte thresholds given with percentages or with low >= high, and
 * min_dwell_ms over 60000);
 * -ENOENT if @opts->cgroup does not exist; -ENOTDIR or -EMEDIUMTYPE if it is
 * not a cgroup directory; -EOPNOTSUPP if it has no memory controller or no
 * mechanism at all is available; -EACCES if a file of the group (or
 * /proc/meminfo) may not be read; -EIO if /proc/meminfo has content that
 * cannot be parsed; -ENOMEM, -EMFILE on resource exhaustion.  A mechanism
 * that fails while others work is skipped (and logged at MN_LOG_INFO);
 * st->mechanisms_active says which are armed.
 * Thread-safe; not async-signal-safe.
 */
MN_API int mn_memory_subscribe(const struct mn_memory_opts *opts,
			       mn_memory_cb cb, void *ctx, mn_sub **out);

/**
 * mn_memory_status() - sample the memory status now.
 * @opts: the group and thresholds to evaluate, or NULL for the defaults.
 * @out:  filled in (reason 0, mechanism MN_MECH_QUERY); @out->sz must be set:
 *        sizeof(struct mn_memory_status), or the smaller size of the first
 *        release (up to high_bytes) from a caller built against it, which
 *        gets that part filled and its sz kept.
 *
 * The level is computed from this sample alone (no hysteresis history).
 * Mirrors IHostMemoryManager::GetMemoryLoad / GlobalMemoryStatusEx.
 *
 * Return: 0; the errors of mn_memory_subscribe(); -EIO if a file had
 * content that could not be parsed.  Thread-safe.
 */
MN_API int mn_memory_status(const struct mn_memory_opts *opts,
			    struct mn_memory_status *out);

/*
 * The struct's name for C++, where `mn_memory_status` alone names the
 * function: mn_memory_status_t.
 */
typedef struct mn_memory_status mn_memory_status_t;

/**
 * mn_get_memory_status() - mn_memory_status() under a name that differs
 * from its struct's, for C++ (the same function: one exported alias).
 * @opts: the group and thresholds to evaluate, or NULL for the defaults.
 * @out:  filled in (bytes in the _bytes fields, percent in _percent);
 *        @out->sz must be set (MN_OPTS_INIT(mn_memory_status)).
 *
 * Mirrors GlobalMemoryStatusEx, as mn_memory_status() does.
 *
 * Return: 0; -EINVAL for a NULL or too small @out or bad @opts or
 * thresholds; -ENOENT, -ENOTDIR, -EMEDIUMTYPE, -EOPNOTSUPP, -EACCES for
 * @opts->cgroup as with mn_memory_subscribe(); -EIO if a file had content
 * that could not be parsed; -ENOMEM, -EMFILE.  Thread-safe; not
 * async-signal-safe.
 */
MN_API int mn_get_memory_status(const struct mn_memory_opts *opts,
				struct mn_memory_status *out);

/**
 * mn_memory_level_name() - "low", "neutral", "high" or "unknown".
 * Return: a static string.  Async-signal-safe.
 */
MN_API const char *mn_memory_level_name(enum mn_memory_level level);

/**
 * mn_memory_mechanism_name() - "query", "poll", "psi", "cgroup_v1_pressure",
 * "cgroup_v2_events", "cgroup_v1_threshold", "cgroup_v1_oom" for one
 * mechanism bit, "none"
 * for 0, "?" otherwise.
 * Return: a static string.  Async-signal-safe.
 */
MN_API const char *mn_memory_mechanism_name(unsigned int mechanism);

/* ------------------------------------------------------------------------
 * The signal chain
 *
 * Mirrors KeRegisterNmiCallback / KeDeregisterNmiCallback: in a process,
 * the events that cannot wait are signals (SIGSEGV, SIGBUS, SIGILL, SIGFPE,
 * SIGTRAP, ...).  memnotify owns the kernel disposition of each chained
 * signal and runs a chain of handlers for it:
 *  - newest first (reverse registration order), and every handler is
 *    called; each gets handled = 1 if any handler before it returned
 *    non-zero (Handled |= handler(..., Handled));
 *  - if some handler returned non-zero, the signal returns (a synchronous
 *    fault retries the instruction: a handler that fixed the cause, e.g.
 *    made the page accessible, lets the program go on);
 *  - otherwise the default handler runs: the disposition the process had
 *    before memnotify took the signal, or the one the application (or
 *    another library) set later with sigaction()/signal(), which memnotify
 *    interposes — its SA_SIGINFO or plain handler, SIG_IGN, or SIG_DFL.  A
 *    SIG_DFL (or SIG_IGN for a synchronous fault, as the kernel would) is
 *    done by writing one line naming the signal, code and address to
 *    stderr, restoring SIG_DFL and re-raising the signal with its siginfo,
 *    so the process dies by it, with a core dump where that is the action.
 *
 * Interposition: libmemnotify exports sigaction() and signal().  When it is
 * linked into the program or preloaded (LD_PRELOAD), their calls for a
 * chained signal do not replace memnotify's handler: the new action becomes
 * the default handler behind the chain, and the caller gets back, as
 * oldact, the action it (or the process before it) had set.  Calls for
 * other signals go to the C library untouched.  MEMNOTIFY_NO_INTERPOSE=1
 * turns interposition off (the calls then go straight to the C library and
 * may replace memnotify's handler).  A library loaded with dlopen() after
 * start (RTLD_LOCAL, as Python's ctypes loads it, or RTLD_GLOBAL: the C
 * library's sigaction() comes first either way) does not interpose the
 * program's own calls: a later sigaction() for a chained signal (Python's
 * faulthandler.enable(), for one) replaces memnotify's handler, and the
 * chain no longer runs.  Link libmemnotify or preload it (LD_PRELOAD) to
 * keep the chain.  mn_capability(MN_CAP_SIGNAL_INTERPOSE) tells which: it
 * is decided at load time by calling the sigaction() the program's calls
 * resolve to and seeing whether the call reaches memnotify's, so it also
 * holds with an interceptor (a sanitizer's) in front.
 *
 * Blocking: a thread that blocks a chained synchronous signal
 * (sigprocmask/pthread_sigmask) and then faults is killed by the kernel
 * without any handler running — as without memnotify.  Asynchronous
 * signals that are blocked stay pending, as usual.
 *
 * memnotify's handler is installed with SA_SIGINFO | SA_ONSTACK, plus
 * SA_RESTART when the default handler has it or is SIG_DFL/SIG_IGN (see
 * mn_signal_register for the flags); it saves and restores errno,
 * allocates nothing, touches no lazily allocated thread-local storage and
 * takes no lock (but a per-signal writer flag, to reset an SA_RESETHAND
 * default handler, never held by the thread it runs on).
 * ------------------------------------------------------------------------ */

/*
 * A chained handler.  Signal context: async-signal-safe code only (no
 * malloc, no stdio, no locks that the interrupted code may hold).
 * @sig, @info, @ucontext: as given to an SA_SIGINFO handler, for the
 * current delivery.  @handled: 1 if a handler before this one returned
 * non-zero.  Return non-zero if this handler dealt with the signal.
 */
typedef int (*mn_signal_fn)(int sig, siginfo_t *info, void *ucontext,
			    int handled, void *ctx);

/**
 * mn_signal_register() - add a handler to the chain of @sig.
 * @sig: any catchable signal (not SIGKILL or SIGSTOP), 1..NSIG-1.
 * @fn:  the handler; signal context (see mn_signal_fn).
 * @ctx: passed to @fn unchanged (KeRegisterNmiCallback's Context).
 * @out: receives the handle; end it with mn_unsubscribe().
 *
 * The first registration for @sig saves the current disposition as the
 * default handler and installs memnotify's handler; it stays installed
 * (an empty chain runs the default handler).  mn_unsubscribe() of a signal
 * handle returns only once no thread is inside @fn any more; called from
 * inside a signal handler it marks the handler dead at once (never called
 * again), does not wait and takes no lock: the memory is freed later on
 * the dispatcher.  From a signal handler the handle must be live.
 *
 * When no handler returns non-zero, the default handler runs as the kernel
 * would have run it:
 * - a function: with its sa_mask blocked and @sig too, unless SA_NODEFER
 *   (then @sig is unblocked around the call, unless sa_mask holds it);
 *   SA_SIGINFO chooses the three-argument call; SA_RESETHAND makes it
 *   SIG_DFL as it is called (of two threads taking @sig at once, one runs
 *   it, the other gets SIG_DFL), so a crash handler runs once and a second
 *   fault ends the process;
 * - SIG_IGN: nothing (a synchronous fault still ends the process, as the
 *   kernel's does);
 * - SIG_DFL: SIGCHLD, SIGURG, SIGWINCH, SIGCONT are ignored; SIGTSTP,
 *   SIGTTIN, SIGTTOU stop the process (by SIGSTOP: memnotify's handler
 *   stays installed, so the chain and any later default handler work after
 *   SIGCONT); any other signal ends the process by @sig (SIG_DFL restored,
 *   re-raised with its siginfo: core dump and wait status as without
 *   memnotify).  Before a stop or death, one line goes to stderr unless
 *   mn_signal_report(0) or MEMNOTIFY_SIGNAL_REPORT=0.
 *
 * Flags that cannot be honoured exactly, because the kernel reads them
 * from the installed action (memnotify's), not the default handler:
 * - SA_RESTART: memnotify installs its action again, with or without
 *   SA_RESTART, whenever the default handler's changes (through the
 *   interposed sigaction(), or an SA_RESETHAND reset).  So a call
 *   interrupted by @sig restarts exactly when the default handler asks for
 *   it, also when a chain handler handled @sig and the default handler did
 *   not run.  With SIG_DFL or SIG_IGN it restarts (without memnotify the
 *   kernel would not have interrupted it at all).  Without interposition
 *   (see above) a later change made with the C library's sigaction()
 *   replaces memnotify's action anyway.
 * - SA_NOCLDSTOP, SA_NOCLDWAIT (SIGCHLD) are mirrored the same way; but
 *   SIGCHLD's SIG_IGN does not reap children automatically while memnotify
 *   chains SIGCHLD (the kernel does that only for a SIG_IGN disposition).
 * - SA_ONSTACK: memnotify's action always has it, so a default handler
 *   runs on the thread's alternate signal stack, if it has one, even
 *   without SA_ONSTACK.
 * - Stop signals: the parent's waitpid() sees WSTOPSIG() == SIGSTOP, not
 *   the stop signal, and a process of an orphaned process group stops
 *   (the kernel would have discarded the stop signal there).
 *
 * Return: 0; -EINVAL for a bad @sig, NULL @fn or @out; -ENOMEM; another
 * -errno from sigaction(2).  Thread-safe; not async-signal-safe.
 */
MN_API int mn_signal_register(int sig, mn_signal_fn fn, void *ctx,
			      mn_sub **out);

/**
 * mn_signal_report() - turn on or off the one-line report memnotify writes
 * to stderr before a chained signal's default action, when no handler
 * handled the signal and the default handler is SIG_DFL (or SIG_IGN for a
 * fault): "memnotify: unhandled SIGSEGV (code 2) at 0x... in thread N:
 * default action" before the process dies by the signal, "...: default
 * action (stop)" before it stops.
 * @on: 1 to write the report (the default), 0 not to.
 *
 * The environment variable MEMNOTIFY_SIGNAL_REPORT=0 turns it off at
 * start (read with secure_getenv: a setuid program ignores it); this call
 * overrides it.  The report is the one place where memnotify writes to
 * stderr itself (mn_set_log() callbacks are not async-signal-safe).
 * Mirrors SetErrorMode(SEM_NOGPFAULTERRORBOX), which turns off Windows'
 * own report of an unhandled fault; the Linux kernel's counterpart is its
 * "segfault at" line (sysctl debug.exception-trace).
 *
 * Return: the previous setting, 0 or 1; -EINVAL if @on is neither 0 nor 1.
 * Async-signal-safe and thread-safe (one atomic exchange); may be called
 * from a signal handler, a mn_signal_fn included.
 */
MN_API int mn_signal_report(int on);

/* The process-wide NMI signal when MEMNOTIFY_NMI_SIGNAL is not set:
   SIGRTMAX - 3 (61 with glibc), a real-time signal few programs use. */
#define MN_NMI_SIGNAL_DEFAULT_OFFSET 3

/**
 * mn_nmi_signal() - the signal number another process sends to raise an
 * "NMI" in this one (`memnotify nmi PID`; KeRegisterNmiCallback of
 * <memnotify/win32.h> chains it).
 *
 * MEMNOTIFY_NMI_SIGNAL chooses it: a number (1..SIGRTMAX, catchable, not
 * SIGSEGV/SIGBUS/SIGILL/SIGFPE), or a name: "SIGUSR1", "SIGUSR2",
 * "SIGRTMIN+N", "SIGRTMAX-N" (the "SIG" prefix is optional).  Unset means
 * SIGRTMAX - MN_NMI_SIGNAL_DEFAULT_OFFSET.
 *
 * Return: the signal number (> 0); -EINVAL if MEMNOTIFY_NMI_SIGNAL is set
 * but not one of those.  Thread-safe (reads the environment).
 */
MN_API int mn_nmi_signal(void);

/* ------------------------------------------------------------------------
 * Bad memory (hwpoison)
 *
 * Mirrors RegisterBadMemoryNotification / UnregisterBadMemoryNotification,
 * QueryWorkingSetEx's Bad bit and GetMemoryErrorHandlingCapabilities.
 * Linux sources: SIGBUS with si_code BUS_MCEERR_AO (action optional: the
 * kernel found poison in a page this process maps) or BUS_MCEERR_AR (action
 * required: this thread touched it), taken through the SIGBUS chain above
 * (other SIGBUS codes pass on untouched); prctl(PR_MCE_KILL_EARLY) for early
 * notice; /proc/meminfo HardwareCorrupted for the whole machine.
 * ------------------------------------------------------------------------ */

/* mn_bad_page.scope. */
enum mn_badmem_scope {
	MN_BADMEM_PROCESS = 1, /* a page this process maps */
	MN_BADMEM_SYSTEM = 2,  /* memory of the machine (not mapped here) */
};

struct mn_bad_page {
	uint64_t address;       /* process scope: start of the poisoned range
	                           (si_addr rounded down to 1 << si_addr_lsb) */
	uint64_t length;        /* bytes (1 << si_addr_lsb; more for a huge
	                           page); system scope: bytes newly corrupted */
	uint64_t pfn;           /* page frame number if known, else 0 */
	uint64_t time_usec;     /* CLOCK_REALTIME when it was recorded */
	enum mn_badmem_scope scope;
	int action_required;    /* 1: BUS_MCEERR_AR, 0: BUS_MCEERR_AO */
	int tid;                /* the thread that received the SIGBUS */
	int si_code;            /* BUS_MCEERR_AO / BUS_MCEERR_AR, or 0 */
};

enum mn_badmem_kind {
	MN_BADMEM_PAGE = 1,     /* @page describes a bad range */
	MN_BADMEM_LOST = 2,     /* the table was full: @lost pages were not
	                           recorded (also counted in mn_stats) */
};

struct mn_badmem_event {
	size_t sz;
	enum mn_badmem_kind kind;
	struct mn_bad_page page;
	uint64_t lost;                 /* for MN_BADMEM_LOST */
	uint64_t hw_corrupted_bytes;   /* machine total (/proc/meminfo), or 0 */
};

/* Thread context (a delivery thread: every bad page is delivered, none is
   merged away, however slow the callback); @ev is valid during the call
   only. */
typedef void (*mn_badmem_cb)(const struct mn_badmem_event *ev, void *ctx);

/* mn_badmem_opts.flags (bits, OR'ed into an unsigned int). */
enum mn_badmem_flags {
	MN_BADMEM_EARLY_KILL = 1u << 0, /* ask the kernel for early notice */
	MN_BADMEM_NO_SYSTEM = 1u << 1,  /* no /proc/meminfo watch */
};

struct mn_badmem_opts {
	size_t sz;
	unsigned int flags;       /* enum mn_badmem_flags bits */
	/* How often HardwareCorrupted is read, in ms; 0 means 10000. */
	unsigned int system_poll_ms;
};

/**
 * mn_badmem_subscribe() - be told of every bad page (the spec's
 * BadMemoryCallbackRoutine), in thread context.
 * @opts: NULL for the defaults.  MN_BADMEM_EARLY_KILL starts one dedicated
 *        thread with prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY)
 *        so that the kernel sends BUS_MCEERR_AO to it as soon as it finds
 *        poison in a page this process maps (otherwise the process hears
 *        of it only when it touches the page: BUS_MCEERR_AR).
 * @cb:   called on a delivery thread for each bad range recorded since the
 *        subscription (a subscriber also gets the ranges recorded before
 *        it, once), for each rise of HardwareCorrupted (scope SYSTEM), and
 *        with MN_BADMEM_LOST when the table overflowed.
 * @ctx:  passed to @cb unchanged.
 * @out:  the handle; end it with mn_unsubscribe().
 *
 * The SIGBUS handler records each BUS_MCEERR_AO/AR range in a fixed table
 * (4096 ranges, preallocated, no allocation in the handler) and wakes the
 * dispatcher; an AO is then handled (the process goes on), an AR is offered
 * to the handlers of mn_badmem_register_ar() and, if none handles it, to
 * the default handler (which ends the process).
 *
 * Return: 0; -EINVAL for bad @opts, NULL @cb or @out; -ENOMEM; -EAGAIN if
 * the early-kill thread cannot be started; -errno from sigaction(2) or
 * prctl(2) (-EINVAL: the kernel has no early kill).  Thread-safe.
 */
MN_API int mn_badmem_subscribe(const struct mn_badmem_opts *opts,
			       mn_badmem_cb cb, void *ctx, mn_sub **out);

/*
 * An action-required handler: signal context, on the thread that touched
 * the poisoned memory.  @page: the poisoned range.  @handled: as in
 * mn_signal_fn.  Return non-zero if the thread can go on (for example
 * after mn_badmem_replace()).
 */
typedef int (*mn_badmem_ar_fn)(const struct mn_bad_page *page,
			       siginfo_t *info, void *ucontext, int handled,
			       void *ctx);

/**
 * mn_badmem_register_ar() - add an action-required handler (newest first,
 * every handler called, the Handled rule of the signal chain).
 * @fn: signal context; @ctx: passed unchanged; @out: the handle, ended with
 * mn_unsubscribe() (same rules as a signal handle).
 *
 * Return: 0; -EINVAL; -ENOMEM; -errno from sigaction(2).  Thread-safe.
 */
MN_API int mn_badmem_register_ar(mn_badmem_ar_fn fn, void *ctx, mn_sub **out);

/**
 * mn_badmem_replace() - replace poisoned pages with fresh zero-filled
 * private anonymous memory at the same address and protection
 * (mmap(MAP_FIXED)), for the application to refill.
 * @addr: any address in the first page; @len: bytes (> 0); the range is
 *        widened to whole pages.
 *
 * The protection is read from /proc/self/maps (open/read only); if it
 * cannot be found, PROT_READ | PROT_WRITE is used.  A shared mapping loses
 * its sharing for these pages.
 *
 * Return: 0; -EINVAL for NULL @addr, @len 0 or a wrapping range; -ENOMEM or
 * another -errno from mmap(2).  Async-signal-safe; thread-safe.
 */
MN_API int mn_badmem_replace(void *addr, size_t len);

/**
 * mn_badmem_query() - which pages of a range are known bad (the Bad bit
 * of QueryWorkingSetEx).
 * @addr, @len: the range in bytes (@len > 0, not wrapping).
 * @out:  where to copy the bad ranges that overlap it, or NULL.
 * @max:  entries @out can hold.
 *
 * Return: the number of recorded bad ranges that overlap (may exceed
 * @max; only @max are copied); -EINVAL for bad arguments.  Thread-safe;
 * async-signal-safe.
 */
MN_API int mn_badmem_query(const void *addr, size_t len,
			   struct mn_bad_page *out, size_t max);

/**
 * mn_badmem_inject() - queue a real SIGBUS with BUS_MCEERR_AO or
 * BUS_MCEERR_AR for @addr to a thread of this process
 * (rt_tgsigqueueinfo(2), which the kernel allows within one's own process),
 * for testing without poisoned hardware.
 * @tid:  the target thread (gettid()), 0 for the calling thread.
 * @addr: the address the siginfo names.  @lsb: si_addr_lsb (12 for a 4 KiB
 *        page; 0 means the page shift).  @action_required: 1 for AR, 0 AO.
 *
 * Return: 0; -EINVAL for bad arguments; -ESRCH if @tid is not a thread of
 * this process; -errno.  Async-signal-safe.
 */
MN_API int mn_badmem_inject(pid_t tid, void *addr, unsigned int lsb,
			    int action_required);

/**
 * mn_badmem_inject_hwpoison() - poison the real page holding @addr with
 * madvise(MADV_HWPOISON): the kernel then sends its own SIGBUS.
 *
 * Return: 0; -EOPNOTSUPP if the kernel has no CONFIG_MEMORY_FAILURE
 * (EINVAL); -EPERM without CAP_SYS_ADMIN; -errno.  Dangerous outside tests:
 * the page is lost for good.
 */
MN_API int mn_badmem_inject_hwpoison(void *addr);

/* ------------------------------------------------------------------------
 * Page query: what the kernel knows of each page of a range
 * ---------------------------------------------------------------------- */

/* mn_page_info.flags. */
enum mn_page_flag {
	MN_PAGE_MAPPED    = 1u << 0, /* some mapping holds the page */
	MN_PAGE_RESIDENT  = 1u << 1, /* in RAM now (pagemap "present") */
	MN_PAGE_SWAPPED   = 1u << 2, /* in swap */
	MN_PAGE_SHARED    = 1u << 3, /* can be shared: a MAP_SHARED mapping, or
					an image page not yet written to */
	MN_PAGE_IMAGE     = 1u << 4, /* a private mapping of a file this process
					maps executable: the program, a library */
	MN_PAGE_FILE      = 1u << 5, /* a page-cache or shared-memory page */
	MN_PAGE_EXCLUSIVE = 1u << 6, /* mapped by this process alone */
	MN_PAGE_LOCKED    = 1u << 7, /* in an mlock()ed mapping */
	MN_PAGE_HUGE      = 1u << 8, /* part of a transparent or hugetlb page */
	MN_PAGE_BAD       = 1u << 9, /* hwpoison: known bad (mn_badmem_query()
					or the kernel's page flags) */
};

/* One page, as mn_page_query() describes it. */
struct mn_page_info {
	size_t sz;                /* set by the library: sizeof this struct */
	uintptr_t addr;           /* the page's first byte */
	unsigned int flags;       /* enum mn_page_flag bits */
	int prot;                 /* the mapping's PROT_* bits; 0 unmapped */
	int node;                 /* NUMA node of a resident page; -1 unknown */
	unsigned int share_count; /* page-table entries that map a resident
				     page: exact where /proc/kpagecount can be
				     read (CAP_SYS_ADMIN), else 1 for an
				     exclusive page and 2 (a lower bound) for
				     another; 0 when not resident */
};

/**
 * mn_page_query() - describe each page of a range of this process:
 * resident, protection, shared and share count, locked, NUMA node, huge
 * page, bad.  The native form of QueryWorkingSetEx.
 * @addr:  any address in the first page (need not be mapped).
 * @len:   bytes (> 0, not wrapping); widened to whole pages.
 * @flags: 0 (reserved).
 * @out:   an array of @n entries; the caller sets @out[0].sz to
 *         sizeof(struct mn_page_info) (MN_OPTS_INIT(mn_page_info)): it is
 *         the array's stride, so a program built against an older header
 *         keeps working; the library fills each entry's first sz bytes.
 * @n:     entries @out holds (> 0); pages past @n are not described.
 *
 * Reads /proc/self/pagemap (one read per range), /proc/self/smaps (once
 * per mapping), get_mempolicy(2) (the node), the PAGEMAP_SCAN ioctl (huge
 * pages, Linux 6.7) and, where readable, /proc/kpagecount and
 * /proc/kpageflags (share count, the kernel's hwpoison flag).
 *
 * Return: the number of pages described (at most @n); -EINVAL for @len 0,
 * a wrapping range, @flags not 0, NULL @out, @n 0 or @out[0].sz smaller
 * than this release's struct; -ENOMEM; -errno from opening pagemap
 * (-EACCES, ...).  Thread-safe; thread context only (stdio, malloc).
 * Mirrors QueryWorkingSetEx (PSAPI_WORKING_SET_EX_BLOCK) and the kernel's
 * /proc/PID/pagemap.
 */
MN_API int mn_page_query(const void *addr, size_t len, unsigned int flags,
			 struct mn_page_info *out, size_t n);

/* ------------------------------------------------------------------------
 * Address-range invalidation
 *
 * Mirrors AddSecureMemoryCacheCallback / RemoveSecureMemoryCacheCallback:
 * a cache of translations or registrations (RDMA memory registrations, GPU
 * host registrations, pinned pages) learns when any part of a range it
 * holds is unmapped, moved, discarded or re-protected.
 *
 * Sources:
 *  - hooks: memnotify's munmap(), mremap(), mprotect(), pkey_mprotect(),
 *    madvise(), mmap() (MAP_FIXED over a range), shmdt(), brk() and sbrk()
 *    take calls made through the PLT (libmemnotify linked or preloaded:
 *    MN_CAP_VM_INTERPOSE), and, on x86-64, the C library's own entry points
 *    are redirected too, which catches glibc's internal callers — free() of
 *    an mmap()ed block, realloc() through mremap(), thread stacks released
 *    at thread exit (MN_CAP_VM_LIBC_PATCH).  Hook events are SYNCHRONOUS:
 *    the callback runs in the thread making the call and has returned before
 *    the kernel is asked to change anything — while the memory is still
 *    mapped — so a cache can drop its entry and never hand out a stale one.
 *    The event describes the attempt: the call may still fail.
 *  - userfaultfd: watched ranges are also registered with userfaultfd
 *    (write-protect mode, which traps no page fault, with the UNMAP, REMOVE
 *    and REMAP events), a kernel-level safety net for paths no hook sees
 *    (raw syscall(2), static code).  Those events are LATE (ev->late = 1):
 *    the change has already happened when the callback runs, on the
 *    dispatcher thread.  A cache must then treat the entry as stale from
 *    the moment of the call: drop it, and treat any I/O it served since as
 *    suspect.  Only ranges the kernel lets userfaultfd register (anonymous
 *    and shmem memory) get the safety net; MN_CAP_USERFAULTFD says whether
 *    it exists here.
 *
 * Ranges are widened to whole pages.  Callbacks may themselves call
 * munmap(), mprotect(), free(), ...: those calls are reported too (one
 * level deep; deeper nesting is counted as lost in mn_stats()).
 * ------------------------------------------------------------------------ */

enum mn_vm_kind {
	MN_VM_UNMAP = 1,   /* munmap, mmap(MAP_FIXED) over, shmdt, brk/sbrk
	                      shrinking, mremap shrinking */
	MN_VM_MOVE = 2,    /* mremap that moves the range */
	MN_VM_DISCARD = 3, /* madvise DONTNEED, DONTNEED_LOCKED, FREE, REMOVE */
	MN_VM_PROTECT = 4, /* mprotect, pkey_mprotect */
	MN_VM_LOST = 5,    /* MN_VM_DISPATCH only: @lost events of this
	                      subscription were dropped (its ring was full);
	                      address and length are 0 */
};

/* mn_vm_event.via: who saw the change. */
enum mn_vm_via {
	MN_VM_VIA_HOOK = 1,        /* an interposer, before the call */
	MN_VM_VIA_USERFAULTFD = 2, /* the userfaultfd safety net, after it */
};

struct mn_vm_event {
	size_t sz;
	enum mn_vm_kind kind;
	uint64_t address;      /* the affected range, page-aligned: for a
	                          watch, the part of the watched range the call
	                          touches; for a listener, the call's range */
	uint64_t length;       /* bytes */
	uint64_t new_address;  /* MOVE: the destination if known before the
	                          move (MREMAP_FIXED), else 0 */
	uint64_t new_length;   /* MOVE: the new size */
	int prot;              /* PROTECT: the new PROT_* bits; else -1 */
	int advice;            /* DISCARD: the madvise advice; else 0 */
	enum mn_vm_via via;
	int late;              /* 1: the change has already happened */
	int tid;               /* the calling thread (hooks), or 0 */
	uint64_t watch_address; /* for a watch: the watched range */
	uint64_t watch_length;
	uint64_t lost;         /* MN_VM_LOST: events dropped since the
	                          subscription's previous MN_VM_LOST (or its
	                          start); else 0 */
};

/*
 * A range callback.  Hook events: synchronous context, in the thread
 * making the call, possibly inside a signal handler (GCs and JITs call
 * mprotect() there): keep it async-signal-safe unless you know your
 * callers.  Late (userfaultfd) events: thread context, on the dispatcher.
 * A subscription made with MN_VM_DISPATCH: thread context only, for every
 * event (a delivery thread, or the mn_dispatch() caller).
 * A hook event may also come from memnotify's own allocations (a malloc
 * heap that grows or shrinks) while memnotify holds its lock: from such a
 * call mn_unsubscribe() still works (it completes later, as from a signal
 * handler) and the functions that add a subscription, mn_dispatch*() and
 * mn_shutdown() return -EDEADLK instead of deadlocking.
 */
typedef void (*mn_vm_cb)(const struct mn_vm_event *ev, void *ctx);

/* mn_vm_watch()'s and mn_vm_listen()'s flags (bits). */
enum mn_vm_flags {
	MN_VM_NO_USERFAULTFD = 1u << 0, /* watch: no userfaultfd safety net */
	/*
	 * Watch or listener: deliver in thread context only.  The callback
	 * never runs in the hooked thread or a signal handler: each event is
	 * copied into the subscription's ring (256 events, allocated at
	 * subscription; filling it takes no lock, allocates nothing, and is
	 * async-signal-safe) and the callback runs later on a memnotify
	 * delivery thread (or the mn_dispatch() caller in
	 * MN_DISPATCH_EXTERNAL mode), one event at a time, in the order the
	 * ring got them.  It may lock, allocate, call any mn_* function — and
	 * run Python code.  The price: the call has gone ahead (the range may
	 * be unmapped already) when the callback runs, whatever ev->late
	 * says; a cache must treat the entry as stale from the call on.  When
	 * the ring is full an event is dropped, counted in mn_stats()
	 * events_lost and reported to the subscriber as an MN_VM_LOST event
	 * after the events that came before the loss.
	 */
	MN_VM_DISPATCH = 1u << 1,
};

/**
 * mn_vm_watch() - be told of every change to [addr, addr + len).
 * @addr, @len: the range in bytes; widened to whole pages.  It need not be
 *        mapped yet.
 * @flags: 0, MN_VM_NO_USERFAULTFD, MN_VM_DISPATCH (thread context only,
 *        through a ring: see MN_VM_DISPATCH), or both.
 * @cb, @ctx: the callback (see mn_vm_cb; with MN_VM_DISPATCH, thread
 *        context) and its argument.
 * @out: the handle; end it with mn_unsubscribe(), which returns once no
 *       thread runs @cb for it any more (from inside any memnotify callback
 *       it does not wait, as for every subscription).
 *
 * Watches may overlap; each gets its own event.  The lookup on every hooked
 * call is lock-free and allocation-free (a search of a copy-on-write
 * B+tree).  Adding and removing a watch cost O(log n) in the number of
 * watches.  Unless MN_VM_NO_USERFAULTFD, the range is registered with the
 * userfaultfd safety net together with the whole of every mapping it
 * touches (so watches never split mappings), until the last such watch
 * ends; where the kernel lacks PROCMAP_QUERY (before Linux 6.11) the range
 * alone is registered and that is logged once.
 *
 * Return: 0; -EINVAL for @len 0, a range that wraps the address space,
 * unknown @flags, NULL @cb or @out; -ENOMEM (with MN_VM_DISPATCH: the
 * ring, about 24 KiB); -EAGAIN, -EMFILE if MN_VM_DISPATCH needs the
 * dispatcher and it cannot be started.  Thread-safe; not async-signal-safe.
 */
MN_API int mn_vm_watch(const void *addr, size_t len, unsigned int flags,
		       mn_vm_cb cb, void *ctx, mn_sub **out);

/**
 * mn_vm_listen() - be told of every hooked change anywhere in the process
 * (what UCM's VM_UNMAPPED event gives), for caches with their own index.
 * @flags: 0 or MN_VM_DISPATCH (thread context only, through a ring: the
 * way for code that must not run in the hooked thread or a signal handler,
 * Python's among it).  @cb, @ctx, @out: as for mn_vm_watch().  Listeners
 * get hook events only (userfaultfd covers watched ranges).  Oldest first.
 *
 * Return: 0; -EINVAL for unknown @flags, NULL @cb or @out; -ENOMEM;
 * -EAGAIN, -EMFILE as for mn_vm_watch().  Thread-safe.
 */
MN_API int mn_vm_listen(unsigned int flags, mn_vm_cb cb, void *ctx,
			mn_sub **out);

/**
 * mn_vm_event_name() - "vm.unmap", "vm.move", "vm.discard", "vm.protect",
 * "vm.lost", or "vm.unknown".  Async-signal-safe.
 */
MN_API const char *mn_vm_event_name(enum mn_vm_kind kind);

/* ------------------------------------------------------------------------
 * Registration cache (mn_rcache)
 *
 * What AddSecureMemoryCacheCallback is for, whole: a cache of the
 * registrations (pinning, translation, io_uring fixed buffers, RDMA memory
 * regions) a program makes of its buffers, that drops an entry as soon as
 * the memory under it is unmapped, moved, discarded or loses an access the
 * registration was made for.  Mirrors UCX's ucs_rcache (ucs_rcache_get /
 * ucs_rcache_region_put).  Each cache is one listener of every hooked
 * call (mn_vm_listen()) that also gets the late userfaultfd events, and
 * finds the regions a call touches in its own lock-free page table; its
 * regions' mappings are registered whole with the userfaultfd safety net.
 * A page belongs to one region at most (as in UCX's cache): a miss
 * replaces the regions it overlaps (they are deregistered once
 * unreferenced, counted as merges).
 *
 * Guarantee: mn_rcache_get() never returns a region whose memory changed
 * (by any call the hooks see) before the get began; a change by a raw
 * system call the hooks cannot see invalidates the region once userfaultfd's
 * late event is delivered (the window: until the dispatcher reads it).
 * ------------------------------------------------------------------------ */

typedef struct mn_rcache mn_rcache;

/* A cached region, as the callbacks and mn_rcache_get() see it. */
struct mn_rcache_region {
	uint64_t start;  /* page-aligned address of the first byte */
	uint64_t end;    /* page-aligned address past the last byte */
	int prot;        /* PROT_READ and/or PROT_WRITE it was registered for */
	void *handle;    /* the caller's registration; set by the register
	                    callback, read by the caller after a get */
};

/*
 * The caller's registration functions.  Thread context, no memnotify lock
 * held, on the thread calling mn_rcache_get() / put() / flush() /
 * destroy(); with MN_RCACHE_BACKGROUND deregister may also run on
 * memnotify's dispatcher thread (then it must not destroy its own cache:
 * -EDEADLK).  register returns 0 (and may set region->handle) or a
 * negative errno value, which mn_rcache_get() returns.  deregister runs
 * exactly once for each region that registered, when the region is both
 * out of the cache (invalidated, merged into a bigger one, evicted) and
 * unreferenced; never in signal context.
 */
typedef int (*mn_rcache_register_fn)(void *ctx, struct mn_rcache_region *region);
typedef void (*mn_rcache_deregister_fn)(void *ctx, struct mn_rcache_region *region);

#define MN_RCACHE_MERGE           0x1u /* a miss merges overlapping and
                                          adjacent valid regions (as UCX) */
#define MN_RCACHE_NO_USERFAULTFD  0x2u /* hooks only: no userfaultfd
                                          safety net (raw system calls go
                                          unseen; unmaps are cheaper) */
#define MN_RCACHE_BACKGROUND      0x4u /* also drop invalidated regions
                                          on memnotify's dispatcher thread
                                          soon after the change: their
                                          deregister runs there, without
                                          waiting for the next get, put or
                                          flush (pinned memory of freed
                                          buffers is let go at once; in
                                          a fork child, from its first
                                          memnotify call on) */

struct mn_rcache_opts {
	size_t sz;                       /* sizeof(struct mn_rcache_opts) */
	mn_rcache_register_fn reg;       /* required */
	mn_rcache_deregister_fn dereg;   /* required */
	void *ctx;                       /* passed to both */
	unsigned int flags;              /* MN_RCACHE_* */
	size_t max_regions;              /* 0: no limit */
	uint64_t max_bytes;              /* 0: no limit */
};

struct mn_rcache_stats {
	size_t sz;
	uint64_t hits, misses;      /* gets served from the cache, or not */
	uint64_t merges;            /* regions merged into, or replaced by,
	                               a new one */
	uint64_t inval_unmap, inval_move, inval_discard, inval_protect;
	uint64_t inval_late;        /* of those, told by userfaultfd (late) */
	uint64_t evictions;         /* over max_regions or max_bytes: least
	                               recently used first (CLOCK) */
	uint64_t deregistrations;   /* deregister calls */
	uint64_t deferred;          /* of those, after an invalidation */
	uint64_t register_errors;   /* register callbacks that failed */
	uint64_t retries;           /* misses redone: the memory changed
	                               while it was being registered */
	uint64_t regions, bytes;    /* cached now */
};

/**
 * mn_rcache_create() - make a registration cache.
 * @opts: callbacks and limits (sz set: MN_OPTS_INIT(mn_rcache_opts)).
 * @out:  receives the cache; end it with mn_rcache_destroy().
 *
 * Installs the hooks and starts the listener (as mn_vm_listen()); unless
 * MN_RCACHE_NO_USERFAULTFD, also opens the userfaultfd safety net and
 * starts its reader and memnotify's dispatcher thread, so that the first
 * get pays for none of it.
 *
 * Return: 0; -EINVAL for NULL @opts, @out, a callback, a bad sz or unknown
 * flags; -ENOMEM; -EDEADLK from inside a memnotify callback that holds its
 * lock (see mn_vm_cb).  Thread-safe; not in signal context.
 */
MN_API int mn_rcache_create(const struct mn_rcache_opts *opts, mn_rcache **out);

/**
 * mn_rcache_get() - a region covering [addr, addr + len) registered for at
 * least @prot, with a reference the caller gives back with mn_rcache_put().
 * @addr, @len: the buffer, bytes (len > 0); widened to whole pages.
 * @prot: PROT_READ, PROT_WRITE or both (PROT_NONE: any region).
 * @out: receives the region (read its handle, start, end).
 *
 * A hit takes no lock (a page-table lookup and an atomic reference).  A
 * miss caches a new region in place of those it overlaps (with
 * MN_RCACHE_MERGE it first widens to the valid regions overlapping or
 * adjacent to it), registers its mappings with the safety net, then calls
 * register; if the memory changed meanwhile it tries again.  Deregistrations
 * due (invalidated, unreferenced regions) run first.
 *
 * Return: 0; -EINVAL for NULL @c or @out, len 0, an overflowing range, a
 * range beyond 2^57 bytes (4 KiB pages) or bad @prot; -ENOMEM; a negative
 * errno from the register callback; -EAGAIN if the memory kept changing
 * while it was being registered (three tries) or another thread's
 * overlapping registration never ended.  Thread-safe; not in signal context,
 * not from a memnotify callback.
 */
MN_API int mn_rcache_get(mn_rcache *c, const void *addr, size_t len, int prot,
			 struct mn_rcache_region **out);

/**
 * mn_rcache_put() - give back a reference from mn_rcache_get().
 * @region: as returned; never use it after this call.
 *
 * The last reference of a region that is out of the cache deregisters it
 * here.  Return: 0; -EINVAL for NULL @c or @region.  Thread-safe; not in
 * signal context.
 */
MN_API int mn_rcache_put(mn_rcache *c, struct mn_rcache_region *region);

/**
 * mn_rcache_flush() - run the deregistrations due now (invalidated,
 * unreferenced regions), on this thread.
 * Return: 0; -EINVAL for NULL @c.  Thread-safe; not in signal context.
 */
MN_API int mn_rcache_flush(mn_rcache *c);

/**
 * mn_rcache_stats() - the cache's counters (see struct mn_rcache_stats).
 * @out: filled in; @out->sz must be set.
 * Return: 0; -EINVAL for NULL arguments or a too small sz.  Thread-safe;
 * counters read one by one.
 */
MN_API int mn_rcache_stats(mn_rcache *c, struct mn_rcache_stats *out);

/**
 * mn_rcache_stats_json() - the same as one JSON object in the style of
 * `memnotify status --format json`: "time" (UTC, ISO 8601 with
 * milliseconds) and "event" ("rcache.stats") first, then every field of
 * struct mn_rcache_stats by name, "table_bytes" (the cache's page table),
 * and the safety net's counters for the whole process: "uffd_whole",
 * "uffd_per_range", "uffd_failed" (ranges registered with their whole
 * mappings, alone, or not at all), "uffd_rehold_failed" (ranges a hooked
 * discard took out for its call and could not register again: a hole
 * appeared meanwhile), "uffd_messages" (events the kernel sent, read by
 * the reader thread; a hooked call of registered memory sends none);
 * NUL-terminated, no newline.
 * @buf, @len: the buffer and its size in bytes.
 * Return: the length written (without the NUL); -EINVAL for NULL
 * arguments; -ENOSPC if @len is too small.  Thread-safe.
 */
MN_API int mn_rcache_stats_json(mn_rcache *c, char *buf, size_t len);

/**
 * mn_rcache_destroy() - deregister every region and free the cache.
 * Return: 0; -EINVAL for NULL @c; -EBUSY if a region is still referenced
 * (nothing is changed); -EDEADLK from the cache's own deregister callback
 * run in the background (MN_RCACHE_BACKGROUND).  With MN_RCACHE_BACKGROUND
 * it waits for a background run on the cache to end.  No other call on @c
 * may run or follow.
 */
MN_API int mn_rcache_destroy(mn_rcache *c);

#ifdef __cplusplus
}

/*
 * mn_opts_init<T>() - a T (a memnotify struct starting with `size_t sz`)
 * value-initialised (every field zero) with sz = sizeof(T); what
 * MN_OPTS_INIT(type) expands to in C++.
 */
template <typename T> inline T mn_opts_init()
{
	T t = T();
	t.sz = sizeof(T);
	return t;
}
#endif

#endif /* MEMNOTIFY_H */
