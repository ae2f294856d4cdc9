/* SPDX-License-Identifier: MIT */
/*
 * Capability table: one probe per kernel mechanism, run once, cached.
 */
#ifndef MN_CORE_CAPS_H
#define MN_CORE_CAPS_H

#include <stdbool.h>
#include <stddef.h>

/* A probe returns 0 when the mechanism works, or -errno; either way it
   writes a one-line explanation into @detail. */
typedef int (*mn__probe_fn)(char *detail, size_t len);

/* Probes that live in the event sources (src/memory/probe.c). */
int mn__probe_meminfo(char *detail, size_t len);
int mn__probe_psi(char *detail, size_t len);
int mn__probe_psi_trigger(char *detail, size_t len);
int mn__probe_cgroup_v1_memory(char *detail, size_t len);
int mn__probe_cgroup_v1_pressure_level(char *detail, size_t len);
int mn__probe_cgroup_v2_memory(char *detail, size_t len);
int mn__probe_cgroup_v2_psi(char *detail, size_t len);
/* src/badmem/probe.c */
int mn__probe_memory_failure(char *detail, size_t len);
int mn__probe_mce_early_kill(char *detail, size_t len);
int mn__probe_patrol_scrubber(char *detail, size_t len);
int mn__probe_hwpoison_inject(char *detail, size_t len);
int mn__probe_memory_failure_tracepoint(char *detail, size_t len);
int mn__probe_signal_interpose(char *detail, size_t len);
/* src/vmrange/ */
int mn__probe_vm_interpose(char *detail, size_t len);
int mn__probe_vm_libc_patch(char *detail, size_t len);
int mn__probe_userfaultfd(char *detail, size_t len);

/* True if @cap (enum mn_cap) is supported; probes on first use.
   Thread-safe; not async-signal-safe. */
bool mn__cap_supported(unsigned int cap);

#endif /* MN_CORE_CAPS_H */
