/* SPDX-License-Identifier: MIT */
/*
 * Diagnostics: the library never prints; it hands formatted lines to the
 * sink set with mn_set_log(), filtered by MEMNOTIFY_LOG.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "internal.h"

struct log_sink {
	mn_log_fn fn;
	void *ctx;
};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct log_sink sink;
static _Atomic int log_level = -1; /* -1: not read from the environment yet */

static int env_level(void)
{
	const char *s = secure_getenv("MEMNOTIFY_LOG");

	if (!s || !*s)
		return MN_LOG_WARN;
	if (!strcasecmp(s, "error"))
		return MN_LOG_ERROR;
	if (!strcasecmp(s, "warn") || !strcasecmp(s, "warning"))
		return MN_LOG_WARN;
	if (!strcasecmp(s, "info"))
		return MN_LOG_INFO;
	if (!strcasecmp(s, "debug"))
		return MN_LOG_DEBUG;
	return MN_LOG_WARN;
}

int mn_set_log(mn_log_fn fn, void *ctx)
{
	pthread_mutex_lock(&log_lock);
	sink.fn = fn;
	sink.ctx = ctx;
	pthread_mutex_unlock(&log_lock);
	return 0;
}

void mn__log(enum mn_log_level level, const char *fmt, ...)
{
	struct log_sink s;
	char line[512];
	va_list ap;
	int lvl = atomic_load_explicit(&log_level, memory_order_relaxed);

	if (lvl < 0) {
		lvl = env_level();
		atomic_store(&log_level, lvl);
	}
	if ((int)level > lvl)
		return;
	pthread_mutex_lock(&log_lock);
	s = sink;
	pthread_mutex_unlock(&log_lock);
	if (!s.fn)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	s.fn(level, line, s.ctx);
}
