/* SPDX-License-Identifier: MIT */
/*
 * Output of the memnotify command.  JSON lines carry the same keys in
 * every event so that scripts can rely on them; plain text is for people.
 */
#include <string.h>
#include <time.h>

#include "output.h"

void out_time(char *buf, size_t len, uint64_t time_usec)
{
	time_t secs = (time_t)(time_usec / 1000000u);
	struct tm tm;
	char base[32];

	gmtime_r(&secs, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03uZ", base,
		 (unsigned int)(time_usec % 1000000u / 1000u));
}

void out_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\')
			fprintf(f, "\\%c", *c);
		else if (*c < 0x20)
			fprintf(f, "\\u%04x", *c);
		else
			fputc(*c, f);
	}
	fputc('"', f);
}

static void mechanisms_json(FILE *f, unsigned int mask)
{
	bool first = true;

	fputc('[', f);
	for (unsigned int bit = 1; bit && bit <= MN_MECH_CGROUP_V1_THRESHOLD;
	     bit <<= 1) {
		if (!(mask & bit))
			continue;
		fprintf(f, "%s\"%s\"", first ? "" : ",",
			mn_memory_mechanism_name(bit));
		first = false;
	}
	fputc(']', f);
}

static double mib(uint64_t bytes)
{
	return (double)bytes / (1024.0 * 1024.0);
}

void out_memory_header(FILE *f)
{
	fprintf(f, "%-24s  %-7s  %-7s  %12s  %12s  %4s  %s\n", "TIME", "EVENT",
		"LEVEL", "AVAILABLE", "LIMIT", "LOAD", "MECHANISM");
}

const char *out_memory_event(enum mn_memory_reason reason)
{
	switch (reason) {
	case MN_MEMORY_INITIAL: return "memory.status";
	case MN_MEMORY_ERROR: return "memory.error";
	case MN_MEMORY_MOVED: return "memory.moved";
	case MN_MEMORY_OOM: return "memory.oom";
	default: return "memory.level";
	}
}

void out_memory(FILE *f, bool json, const char *event,
		const struct mn_memory_status *st)
{
	char ts[48];

	out_time(ts, sizeof(ts), st->time_usec);
	if (json) {
		fprintf(f, "{\"time\":\"%s\",\"event\":\"%s\",\"level\":\"%s\"",
			ts, event, mn_memory_level_name(st->level));
		if (st->previous_level)
			fprintf(f, ",\"previous_level\":\"%s\"",
				mn_memory_level_name(st->previous_level));
		fprintf(f,
			",\"available_bytes\":%llu,\"limit_bytes\":%llu,"
			"\"usage_bytes\":%llu,\"physical_bytes\":%llu,"
			"\"load_percent\":%u,\"low_percent\":%u,"
			"\"high_percent\":%u,\"mechanism\":\"%s\",\"mechanisms\":",
			(unsigned long long)st->available_bytes,
			(unsigned long long)st->limit_bytes,
			(unsigned long long)st->usage_bytes,
			(unsigned long long)st->physical_bytes, st->load_percent,
			st->low_percent, st->high_percent,
			mn_memory_mechanism_name(st->mechanism));
		mechanisms_json(f, st->mechanisms_active);
		if (st->psi_valid)
			fprintf(f,
				",\"psi_some_avg10\":%.2f,\"psi_some_avg60\":%.2f,"
				"\"psi_full_avg10\":%.2f,\"psi_full_avg60\":%.2f",
				st->psi_some_avg10, st->psi_some_avg60,
				st->psi_full_avg10, st->psi_full_avg60);
		fprintf(f, ",\"cgroup_version\":%d,\"cgroup\":", st->cgroup_version);
		out_json_str(f, st->cgroup_path);
		if (st->skipped_changes)
			fprintf(f, ",\"skipped_changes\":%llu",
				(unsigned long long)st->skipped_changes);
		if (st->reason == MN_MEMORY_OOM)
			fprintf(f, ",\"oom_kill_count\":%llu",
				(unsigned long long)st->oom_kill_count);
		if (st->error) {
			fprintf(f, ",\"error\":");
			out_json_str(f, mn_strerror(st->error));
		}
		fputs("}\n", f);
	} else {
		char lvl[16];
		snprintf(lvl, sizeof(lvl), "%s", mn_memory_level_name(st->level));
		fprintf(f, "%-24s  %-7s  %-7s  %8.1f MiB  %8.1f MiB  %3u%%  %s",
			ts, event + strlen("memory."), lvl,
			mib(st->available_bytes), mib(st->limit_bytes),
			st->load_percent, mn_memory_mechanism_name(st->mechanism));
		if (st->reason == MN_MEMORY_MOVED)
			fprintf(f, "  cgroup: %s", st->cgroup_path);
		if (st->reason == MN_MEMORY_OOM)
			fprintf(f, "  oom_kills: %llu",
				(unsigned long long)st->oom_kill_count);
		if (st->skipped_changes)
			fprintf(f, "  skipped: %llu",
				(unsigned long long)st->skipped_changes);
		if (st->error)
			fprintf(f, "  error: %s", mn_strerror(st->error));
		fputc('\n', f);
	}
	fflush(f);
}

void out_badmem(FILE *f, bool json, const struct mn_badmem_event *ev)
{
	char ts[48];
	const struct mn_bad_page *p = &ev->page;
	bool lost = ev->kind == MN_BADMEM_LOST;
	bool system = p->scope == MN_BADMEM_SYSTEM;

	uint64_t t = p->time_usec;
	if (!t) { /* a loss report carries no time of its own */
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		t = (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
	}
	out_time(ts, sizeof(ts), t);
	if (json) {
		fprintf(f, "{\"time\":\"%s\",\"event\":\"%s\"", ts,
			lost ? "memory.bad_page_lost" : "memory.bad_page");
		if (lost) {
			fprintf(f, ",\"lost\":%llu}\n", (unsigned long long)ev->lost);
			fflush(f);
			return;
		}
		if (system && p->pfn)
			fprintf(f, ",\"pfn\":%llu", (unsigned long long)p->pfn);
		else if (!system)
			fprintf(f, ",\"address\":%llu",
				(unsigned long long)p->address);
		fprintf(f, ",\"length\":%llu,\"action_required\":%s,"
			   "\"scope\":\"%s\"",
			(unsigned long long)p->length,
			p->action_required ? "true" : "false",
			system ? "system" : "process");
		if (!system)
			fprintf(f, ",\"tid\":%d", p->tid);
		if (ev->hw_corrupted_bytes)
			fprintf(f, ",\"hw_corrupted_bytes\":%llu",
				(unsigned long long)ev->hw_corrupted_bytes);
		fputs("}\n", f);
	} else if (lost) {
		fprintf(f, "%-24s  bad-page lost: %llu range(s) not recorded "
			   "(table full)\n",
			ts, (unsigned long long)ev->lost);
	} else if (system) {
		fprintf(f, "%-24s  bad-page system: %llu KiB newly corrupted "
			   "(HardwareCorrupted %llu KiB)\n",
			ts, (unsigned long long)(p->length >> 10),
			(unsigned long long)(ev->hw_corrupted_bytes >> 10));
	} else {
		fprintf(f, "%-24s  bad-page process: 0x%llx +%llu bytes, %s, "
			   "thread %d\n",
			ts, (unsigned long long)p->address,
			(unsigned long long)p->length,
			p->action_required ? "action required" : "action optional",
			p->tid);
	}
	fflush(f);
}

void out_capabilities(FILE *f, bool json)
{
	if (json)
		fputs("\"capabilities\":[", f);
	else
		fprintf(f, "%-26s  %-3s  %s\n", "CAPABILITY", "OK", "DETAIL");
	for (unsigned int c = 0; c < MN_CAP__COUNT; c++) {
		struct mn_capability cap = { .sz = sizeof(cap) };
		if (mn_capability(c, &cap) < 0)
			continue;
		if (json) {
			fprintf(f, "%s{\"name\":\"%s\",\"supported\":%s,\"error\":%d,"
				   "\"detail\":",
				c ? "," : "", cap.name,
				cap.supported ? "true" : "false", cap.error);
			out_json_str(f, cap.detail);
			fputc('}', f);
		} else {
			fprintf(f, "%-26s  %-3s  %s\n", cap.name,
				cap.supported ? "yes" : "no", cap.detail);
		}
	}
	if (json)
		fputc(']', f);
}
