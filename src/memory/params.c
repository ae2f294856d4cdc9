/* SPDX-License-Identifier: MIT */
/* The options of a watch, checked, with their defaults; thresholds in bytes.  (see monitor.h) */
#include "monitor.h"

/* --- parameters ---------------------------------------------------------- */

static int env_percent(const char *name, unsigned int *out)
{
	const char *s = secure_getenv(name);
	unsigned long v = 0;

	if (!s)
		return 0;
	if (!*s)
		goto bad;
	for (const char *c = s; *c; c++) {
		if (*c < '0' || *c > '9' || v > 1000)
			goto bad;
		v = v * 10 + (unsigned long)(*c - '0');
	}
	if (v < 1 || v > 99)
		goto bad;
	*out = (unsigned int)v;
	return 0;
bad:
	mn__err("%s='%s': not a whole number from 1 to 99", name, s);
	return -EINVAL;
}

static int dwell_param(unsigned int ms, unsigned int *out)
{
	if (ms > MAX_DWELL_MS) {
		mn__err("memory: dwell %u ms is over %u ms", ms, MAX_DWELL_MS);
		return -EINVAL;
	}
	*out = ms ? ms : DEFAULT_DWELL_MS;
	return 0;
}

/* Absolute thresholds (CreateMemoryResourceNotification's kind). */
static int byte_params(struct params *p)
{
	if (p->low || p->high || !p->low_bytes || p->low_bytes >= p->high_bytes) {
		mn__err("memory: byte thresholds low=%llu high=%llu: need "
			"0 < low < high, and no percentages",
			(unsigned long long)p->low_bytes,
			(unsigned long long)p->high_bytes);
		return -EINVAL;
	}
	if (p->hyst > 49) {
		mn__err("memory: hysteresis %u%% is too large", p->hyst);
		return -EINVAL;
	}
	if (!p->hyst)
		p->hyst = DEFAULT_HYST;
	return 0;
}

/* Percentages: the options, else the environment, else 10 and 30. */
static int percent_params(struct params *p)
{
	int err;

	if (!p->low && (err = env_percent("MEMNOTIFY_LOW_PERCENT", &p->low)))
		return err;
	if (!p->high && (err = env_percent("MEMNOTIFY_HIGH_PERCENT", &p->high)))
		return err;
	if (!p->low)
		p->low = p->high && p->high <= DEFAULT_LOW ? p->high / 3 : DEFAULT_LOW;
	if (!p->high)
		p->high = MN__MIN(p->low * 3, 99u);
	if (p->low < 1 || p->high > 99 || p->low >= p->high) {
		mn__err("memory: thresholds low=%u%% high=%u%%: need "
			"1 <= low < high <= 99",
			p->low, p->high);
		return -EINVAL;
	}
	if (!p->hyst) {
		p->hyst = MN__MIN(DEFAULT_HYST, (p->high - p->low - 1) / 2);
	} else if (p->hyst * 2 >= p->high - p->low) {
		mn__err("memory: hysteresis %u%% must be smaller than half of "
			"high - low (%u%%)",
			p->hyst, p->high - p->low);
		return -EINVAL;
	}
	return 0;
}

/* PSI stall and sampling bounds, with their defaults. */
static int timing_params(struct params *p)
{
	if (!p->psi_stall_us)
		p->psi_stall_us = DEFAULT_PSI_STALL_US;
	if (!p->poll_min_ms)
		p->poll_min_ms = DEFAULT_POLL_MIN_MS;
	if (!p->poll_max_ms)
		p->poll_max_ms = MN__MAX(DEFAULT_POLL_MAX_MS, p->poll_min_ms);
	if (p->poll_min_ms > p->poll_max_ms || p->poll_max_ms > 3600000u) {
		mn__err("memory: poll bounds %u..%u ms are invalid",
			p->poll_min_ms, p->poll_max_ms);
		return -EINVAL;
	}
	return 0;
}

int mn__mon_make_params(const struct mn_memory_opts *o, struct params *p)
{
	const char *cg;
	int err;

	if (!MN__OPTS_VALID(o, mn_memory_opts))
		return -EINVAL;
	memset(p, 0, sizeof(*p));
	p->low = MN__OPTS_GET(o, mn_memory_opts, low_percent, 0u);
	p->high = MN__OPTS_GET(o, mn_memory_opts, high_percent, 0u);
	p->hyst = MN__OPTS_GET(o, mn_memory_opts, hysteresis_percent, 0u);
	p->psi_stall_us = MN__OPTS_GET(o, mn_memory_opts, psi_stall_us, 0u);
	p->poll_min_ms = MN__OPTS_GET(o, mn_memory_opts, poll_min_ms, 0u);
	p->poll_max_ms = MN__OPTS_GET(o, mn_memory_opts, poll_max_ms, 0u);
	p->flags = MN__OPTS_GET(o, mn_memory_opts, flags, 0u);
	p->low_bytes = MN__OPTS_GET(o, mn_memory_opts, low_bytes, (uint64_t)0);
	p->high_bytes = MN__OPTS_GET(o, mn_memory_opts, high_bytes, (uint64_t)0);
	cg = MN__OPTS_GET(o, mn_memory_opts, cgroup, (const char *)NULL);
	if ((err = dwell_param(MN__OPTS_GET(o, mn_memory_opts, min_dwell_ms, 0u),
			       &p->dwell_ms)))
		return err;
	if (p->flags & ~(MN_MEMORY_NO_PSI | MN_MEMORY_NO_EVENTS |
			 MN_MEMORY_NO_POLL | MN_MEMORY_OOM_EVENTS |
			 MN_MEMORY_COUNT_ACTIVE_FILE)) {
		mn__err("memory: unknown flags 0x%x", p->flags);
		return -EINVAL;
	}
	err = p->low_bytes || p->high_bytes ? byte_params(p) : percent_params(p);
	if (err || (err = timing_params(p)))
		return err;
	if (cg && *cg) /* the return code names the problem: no log */
		return mn__cgroup_from_path(cg, &p->cg);
	mn__cgroup_self(&p->cg);
	p->own = true;
	return 0;
}

/* The thresholds of @p in bytes for @limit. */
void mn__mon_thresholds(const struct params *p, uint64_t limit,
		       struct mn__thresholds *t)
{
	mn__thresholds_for(p->low, p->high, p->hyst, p->low_bytes,
			   p->high_bytes, limit, t);
}

bool mn__mon_same_params(const struct params *a, const struct params *b)
{
	/* The own group's watch is shared whatever group the process was in
	   when it began: it follows the process (and its cg changes on the
	   dispatcher, under the core lock). */
	bool same_group = a->own || b->own
				  ? a->own == b->own
				  : a->cg.version == b->cg.version &&
					    !strcmp(a->cg.path, b->cg.path);
	return same_group && a->low == b->low &&
	       a->high == b->high && a->hyst == b->hyst &&
	       a->low_bytes == b->low_bytes && a->high_bytes == b->high_bytes &&
	       a->psi_stall_us == b->psi_stall_us &&
	       a->poll_min_ms == b->poll_min_ms &&
	       a->poll_max_ms == b->poll_max_ms && a->flags == b->flags &&
	       a->dwell_ms == b->dwell_ms;
}
