/* SPDX-License-Identifier: MIT */
/* The memory source's capability rows and probes (probe.c). */
#ifndef MN_MEMORY_PROBE_H
#define MN_MEMORY_PROBE_H

#include <stddef.h>

/* X(enum mn_cap, name, probe), for src/caps_table.c. */
#define MN__MEMORY_CAPS(X)                                                    \
	X(MN_CAP_MEMINFO, "meminfo", mn__probe_meminfo)                       \
	X(MN_CAP_PSI, "psi", mn__probe_psi)                                   \
	X(MN_CAP_PSI_TRIGGER, "psi_trigger", mn__probe_psi_trigger)           \
	X(MN_CAP_CGROUP_V1_MEMORY, "cgroup_v1_memory",                        \
	  mn__probe_cgroup_v1_memory)                                         \
	X(MN_CAP_CGROUP_V1_PRESSURE_LEVEL, "cgroup_v1_pressure_level",        \
	  mn__probe_cgroup_v1_pressure_level)                                 \
	X(MN_CAP_CGROUP_V2_MEMORY, "cgroup_v2_memory",                        \
	  mn__probe_cgroup_v2_memory)                                         \
	X(MN_CAP_CGROUP_V2_PSI, "cgroup_v2_psi", mn__probe_cgroup_v2_psi)

int mn__probe_meminfo(char *detail, size_t len);
int mn__probe_psi(char *detail, size_t len);
int mn__probe_psi_trigger(char *detail, size_t len);
int mn__probe_cgroup_v1_memory(char *detail, size_t len);
int mn__probe_cgroup_v1_pressure_level(char *detail, size_t len);
int mn__probe_cgroup_v2_memory(char *detail, size_t len);
int mn__probe_cgroup_v2_psi(char *detail, size_t len);

#endif
