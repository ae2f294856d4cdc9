/* SPDX-License-Identifier: MIT */
/*
 * Diagnostics: the library does not print them; it hands formatted lines
 * to the sink set with mn_set_log() (none by default: they are dropped),
 * filtered by MEMNOTIFY_LOG.  (The unhandled-signal report of
 * sigchain.c is the one line the library writes to stderr itself.)
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "core.h"

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

/*
 * The sink is the program's code: it never runs under the core lock.  A
 * line logged while this thread holds it waits in a small queue that
 * mn__unlock() flushes once the lock is released (mn__log_flush()).
 */
#define PENDING 8
static struct {
	enum mn_log_level level;
	char line[512];
} pending[PENDING];
static unsigned int n_pending;     /* log_lock */
static _Atomic int any_pending;

__attribute__((constructor)) static void log_init(void)
{
	mn__lock_register(&log_lock, MN__RANK_LEAF);
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
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&log_lock);
	s = sink;
	if (s.fn && mn__lock_held()) {
		if (n_pending < PENDING) {
			pending[n_pending].level = level;
			memcpy(pending[n_pending].line, line, sizeof(line));
			n_pending++;
			atomic_store(&any_pending, 1);
		} else {
			mn__count(lost, 1);
		}
		s.fn = NULL;
	}
	pthread_mutex_unlock(&log_lock);
	if (s.fn)
		s.fn(level, line, s.ctx);
}

void mn__log_flush(void)
{
	if (!atomic_load_explicit(&any_pending, memory_order_relaxed))
		return;
	for (;;) {
		struct log_sink s;
		enum mn_log_level level;
		char line[512];

		pthread_mutex_lock(&log_lock);
		if (!n_pending) {
			atomic_store(&any_pending, 0);
			pthread_mutex_unlock(&log_lock);
			return;
		}
		level = pending[0].level;
		memcpy(line, pending[0].line, sizeof(line));
		memmove(&pending[0], &pending[1], (n_pending - 1) * sizeof(pending[0]));
		n_pending--;
		s = sink;
		pthread_mutex_unlock(&log_lock);
		if (s.fn)
			s.fn(level, line, s.ctx);
	}
}
