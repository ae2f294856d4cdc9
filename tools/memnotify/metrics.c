/* SPDX-License-Identifier: MIT */
/*
 * Metrics of `memnotify watch`: what one machine's memnotify sees, in the
 * form a fleet's Prometheus collects.  Two renderings of the same samples:
 * OpenMetrics 1.0 (--format openmetrics: counters' families without
 * "_total", UNIT lines, a stateset, "# EOF") and the Prometheus text format
 * 0.0.4 (--textfile: what node_exporter's textfile collector parses).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metrics.h"

void metrics_sample(struct metrics *m, const struct mn_memory_status *st,
		    bool level_too)
{
	enum mn_memory_level level = m->level;

	m->st = *st;
	m->have = true;
	m->up = true;
	m->level = level_too ? st->level : level;
}

void metrics_down(struct metrics *m, const struct mn_memory_status *st)
{
	/* Keep the last good values; only the time and up change. */
	if (!m->have) {
		m->st = *st;
		m->have = true;
	}
	m->st.time_usec = st->time_usec;
	m->up = false;
}

void metrics_badmem(struct metrics *m, const struct mn_badmem_event *ev)
{
	if (ev->kind == MN_BADMEM_LOST) {
		m->bad_lost += ev->lost;
		return;
	}
	int i = ev->page.scope == MN_BADMEM_SYSTEM ? 1 : 0;
	m->bad_pages[i]++;
	m->bad_bytes[i] += ev->page.length;
}

/* A label value: backslash, double quote and newline escaped. */
static void label_value(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

enum kind { GAUGE, COUNTER, STATESET, INFO };

/* The HELP, TYPE (and in OpenMetrics UNIT) lines of one family.  @name is
   the family name: a counter's samples add "_total", an info's "_info". */
static void family(FILE *f, enum metrics_format fmt, const char *name,
		   enum kind kind, const char *unit, const char *help)
{
	static const char *const om[] = { "gauge", "counter", "stateset", "info" };
	const char *suffix = "";

	if (fmt == METRICS_PROMETHEUS) {
		suffix = kind == COUNTER ? "_total" : kind == INFO ? "_info" : "";
		fprintf(f, "# HELP %s%s %s\n", name, suffix, help);
		fprintf(f, "# TYPE %s%s %s\n", name, suffix,
			kind == COUNTER ? "counter" : "gauge");
		return;
	}
	fprintf(f, "# TYPE %s %s\n", name, om[kind]);
	if (unit)
		fprintf(f, "# UNIT %s %s\n", name, unit);
	fprintf(f, "# HELP %s %s\n", name, help);
}

/* name{cgroup="..."[,extra]} */
static void sample_start(FILE *f, const char *name, const char *cgroup,
			 const char *extra)
{
	fprintf(f, "%s{cgroup=", name);
	label_value(f, cgroup);
	if (extra)
		fprintf(f, ",%s", extra);
	fputs("} ", f);
}

static void gauge_u64(FILE *f, enum metrics_format fmt, const char *name,
		      const char *cgroup, const char *help, uint64_t v)
{
	family(f, fmt, name, GAUGE, "bytes", help);
	sample_start(f, name, cgroup, NULL);
	fprintf(f, "%llu\n", (unsigned long long)v);
}

static void counter_scoped(FILE *f, enum metrics_format fmt, const char *name,
			   const char *unit, const char *help,
			   const uint64_t v[2])
{
	family(f, fmt, name, COUNTER, unit, help);
	fprintf(f, "%s_total{scope=\"process\"} %llu\n", name,
		(unsigned long long)v[0]);
	fprintf(f, "%s_total{scope=\"system\"} %llu\n", name,
		(unsigned long long)v[1]);
}

static void counter(FILE *f, enum metrics_format fmt, const char *name,
		    const char *help, uint64_t v)
{
	family(f, fmt, name, COUNTER, NULL, help);
	fprintf(f, "%s_total %llu\n", name, (unsigned long long)v);
}

/* Up, the level and the level's state set. */
static void write_level(FILE *f, const struct metrics *m,
			enum metrics_format fmt, const char *cg)
{
	static const enum mn_memory_level levels[] = {
		MN_MEMORY_LOW, MN_MEMORY_NEUTRAL, MN_MEMORY_HIGH,
	};
	char extra[96];

	family(f, fmt, "memnotify_memory_up", GAUGE, NULL,
	       "1 while the watched group can be read, 0 once it "
	       "failed (vanished or unreadable).");
	sample_start(f, "memnotify_memory_up", cg, NULL);
	fprintf(f, "%d\n", m->up ? 1 : 0);

	family(f, fmt, "memnotify_memory_level", GAUGE, NULL,
	       "Memory level of the watch: 0 unknown, 1 low, "
	       "2 neutral, 3 high.");
	sample_start(f, "memnotify_memory_level", cg, NULL);
	fprintf(f, "%d\n", (int)m->level);

	family(f, fmt, "memnotify_memory_level_state", STATESET, NULL,
	       "Memory level of the watch, one sample per level, 1 "
	       "for the current one.");
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		snprintf(extra, sizeof(extra),
			 "memnotify_memory_level_state=\"%s\"",
			 mn_memory_level_name(levels[i]));
		sample_start(f, "memnotify_memory_level_state", cg, extra);
		fprintf(f, "%d\n", m->level == levels[i] ? 1 : 0);
	}
}

/* Bytes, load, PSI and the sample's time. */
static void write_memory(FILE *f, const struct mn_memory_status *st,
			 enum metrics_format fmt, const char *cg)
{
	gauge_u64(f, fmt, "memnotify_memory_available_bytes", cg,
		  "Memory still available to the group (or machine) "
		  "before it must reclaim working set.",
		  st->available_bytes);
	gauge_u64(f, fmt, "memnotify_memory_limit_bytes", cg,
		  "Effective limit: the smallest of physical memory and "
		  "every limit of the group and its ancestors.",
		  st->limit_bytes);
	gauge_u64(f, fmt, "memnotify_memory_usage_bytes", cg,
		  "Limit minus available.", st->usage_bytes);
	gauge_u64(f, fmt, "memnotify_memory_low_threshold_bytes", cg,
		  "The level is low below this many available bytes.",
		  st->low_bytes);
	gauge_u64(f, fmt, "memnotify_memory_high_threshold_bytes", cg,
		  "The level is high from this many available bytes.",
		  st->high_bytes);

	family(f, fmt, "memnotify_memory_load_ratio", GAUGE, "ratio",
	       "Used over limit, 0 to 1 (the load percent over 100).");
	sample_start(f, "memnotify_memory_load_ratio", cg, NULL);
	fprintf(f, "%g\n", st->load_percent / 100.0);

	if (st->psi_valid) {
		const struct {
			const char *labels;
			double pct;
		} psi[] = {
			{ "kind=\"some\",window=\"10s\"", st->psi_some_avg10 },
			{ "kind=\"some\",window=\"60s\"", st->psi_some_avg60 },
			{ "kind=\"full\",window=\"10s\"", st->psi_full_avg10 },
			{ "kind=\"full\",window=\"60s\"", st->psi_full_avg60 },
		};
		family(f, fmt, "memnotify_memory_pressure_stall_ratio",
		       GAUGE, "ratio",
		       "PSI memory stall: share of wall time some or "
		       "all tasks waited for memory, averaged over the "
		       "window.");
		for (size_t i = 0; i < 4; i++) {
			sample_start(f, "memnotify_memory_pressure_stall_ratio",
				     cg, psi[i].labels);
			fprintf(f, "%g\n", psi[i].pct / 100.0);
		}
	}

	family(f, fmt, "memnotify_memory_sample_timestamp_seconds",
	       GAUGE, "seconds",
	       "When the newest sample was taken (Unix time).");
	sample_start(f, "memnotify_memory_sample_timestamp_seconds", cg,
		     NULL);
	fprintf(f, "%llu.%06u\n",
		(unsigned long long)(st->time_usec / 1000000u),
		(unsigned int)(st->time_usec % 1000000u));
}

/* Bad memory and the library's own counters. */
static void write_counters(FILE *f, const struct metrics *m,
			   enum metrics_format fmt)
{
	struct mn_stats stats = MN_OPTS_INIT(mn_stats);

	counter_scoped(f, fmt, "memnotify_bad_pages", NULL,
		       "Bad-memory ranges reported since the start: poisoned "
		       "pages of this process, rises of the machine's "
		       "HardwareCorrupted.",
		       m->bad_pages);
	counter_scoped(f, fmt, "memnotify_bad_page_bytes", "bytes",
		       "Bytes of the bad-memory ranges reported since the start.",
		       m->bad_bytes);
	counter(f, fmt, "memnotify_bad_pages_lost",
		"Bad-memory ranges not recorded because the table was full.",
		m->bad_lost);
	if (mn_stats(&stats) == 0) {
		counter(f, fmt, "memnotify_events_lost",
			"Events the library could not deliver.",
			stats.events_lost);
		counter(f, fmt, "memnotify_samples",
			"Memory samples the library took.", stats.samples);
		counter(f, fmt, "memnotify_source_errors",
			"Reads of /proc or cgroup files that failed.",
			stats.source_errors);
	}
}

void metrics_write(FILE *f, const struct metrics *m, enum metrics_format fmt)
{
	/* The watched group's directory; "/" for the whole machine. */
	const char *cg = m->st.cgroup_path[0] ? m->st.cgroup_path : "/";

	family(f, fmt, "memnotify_build", INFO, NULL,
	       "The memnotify version that writes these metrics.");
	fputs("memnotify_build_info{version=", f);
	label_value(f, mn_version());
	fputs("} 1\n", f);
	if (m->have) {
		write_level(f, m, fmt, cg);
		write_memory(f, &m->st, fmt, cg);
	}
	write_counters(f, m, fmt);
	if (fmt == METRICS_OPENMETRICS)
		fputs("# EOF\n", f);
}

int metrics_textfile(const char *path, const struct metrics *m)
{
	char copy[PATH_MAX], tmp[PATH_MAX + 32];
	const char *dir, *base;
	int fd, err = 0;
	FILE *f;

	if (strlen(path) >= sizeof(copy))
		return -ENAMETOOLONG;
	/* dirname() and basename() may modify their argument: two copies. */
	strcpy(copy, path);
	dir = dirname(copy);
	snprintf(tmp, sizeof(tmp), "%s", path);
	base = basename(tmp);
	/* Not "*.prom": the collector never reads a half-written one. */
	char name[PATH_MAX + 32];
	if ((size_t)snprintf(name, sizeof(name), "%s/.%s.XXXXXX", dir, base) >=
	    sizeof(name))
		return -ENAMETOOLONG;
	fd = mkstemp(name);
	if (fd < 0)
		return -errno;
	/* mkstemp makes it 0600; node_exporter runs as another user. */
	if (fchmod(fd, 0644) < 0 || !(f = fdopen(fd, "w"))) {
		err = -errno;
		close(fd);
		unlink(name);
		return err;
	}
	metrics_write(f, m, METRICS_PROMETHEUS);
	if (fflush(f) != 0 || ferror(f))
		err = -(errno ? errno : EIO);
	if (fclose(f) != 0 && !err)
		err = -errno;
	if (!err && rename(name, path) < 0)
		err = -errno;
	if (err)
		unlink(name);
	return err;
}
