/* SPDX-License-Identifier: MIT */
/*
 * CreateMemoryResourceNotification and its handles: a memory subscription
 * with Windows' absolute default thresholds, turned into a waitable state.
 * The handles of this face that CloseHandle/WaitForSingleObject know.
 */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "face.h"

#define MiB (1024ull * 1024)

struct resnotif {
	struct mn__w32_link link;   /* handles, reg_lock */
	MEMORY_RESOURCE_NOTIFICATION_TYPE type;
	pthread_mutex_t lock;
	pthread_cond_t cond;        /* CLOCK_MONOTONIC */
	bool state;                 /* signaled; lock */
	bool closed;                /* lock */
	_Atomic int refs;
	mn_sub *sub;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mn__w32_link *handles;

static void put(struct resnotif *h)
{
	if (atomic_fetch_sub(&h->refs, 1) != 1)
		return;
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

/* The live handle @p with a reference, or NULL. */
static struct resnotif *get(HANDLE p)
{
	struct resnotif *h = NULL;

	pthread_mutex_lock(&reg_lock);
	for (struct mn__w32_link *l = handles; l && !h; l = l->next)
		if (l == p)
			h = (struct resnotif *)l;
	if (h)
		atomic_fetch_add(&h->refs, 1);
	pthread_mutex_unlock(&reg_lock);
	return h;
}

static bool signaled(MEMORY_RESOURCE_NOTIFICATION_TYPE type,
		     enum mn_memory_level level)
{
	return type == LowMemoryResourceNotification ? level == MN_MEMORY_LOW
						     : level == MN_MEMORY_HIGH;
}

/* Thread context (the dispatcher). */
static void on_level(const struct mn_memory_status *st, void *ctx)
{
	struct resnotif *h = ctx;

	if (st->reason == MN_MEMORY_ERROR)
		return; /* the last known state stands */
	pthread_mutex_lock(&h->lock);
	h->state = signaled(h->type, st->level);
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

HANDLE CreateMemoryResourceNotification(MEMORY_RESOURCE_NOTIFICATION_TYPE type)
{
	struct mn_memory_opts o = { .sz = sizeof(o) };
	struct mn_memory_status st = { .sz = sizeof(st) };
	pthread_condattr_t ca;
	struct resnotif *h;
	int err;

	if (type != LowMemoryResourceNotification &&
	    type != HighMemoryResourceNotification)
		return mn__w32_fail(-EINVAL, NULL);
	/* Windows' defaults, over the effective limit: low 32 MiB per 4 GiB,
	   at most 64 MiB; high three times low. */
	err = mn_memory_status(NULL, &st);
	if (err)
		return mn__w32_fail(err, NULL);
	o.low_bytes = MN__MIN(st.limit_bytes / 128, 64 * MiB);
	o.low_bytes = MN__MAX(o.low_bytes, 4096u);
	o.high_bytes = 3 * o.low_bytes;
	err = mn_memory_status(&o, &st);
	if (err)
		return mn__w32_fail(err, NULL);

	h = calloc(1, sizeof(*h));
	if (!h)
		return mn__w32_fail(-ENOMEM, NULL);
	h->type = type;
	h->refs = 1;
	h->state = signaled(type, st.level);
	pthread_mutex_init(&h->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cond, &ca);
	pthread_condattr_destroy(&ca);
	err = mn_memory_subscribe(&o, on_level, h, &h->sub);
	if (err) {
		put(h);
		return mn__w32_fail(err, NULL);
	}
	pthread_mutex_lock(&reg_lock);
	mn__w32_push(&handles, h);
	pthread_mutex_unlock(&reg_lock);
	return h;
}
MN__W32_ALIAS(CreateMemoryResourceNotification);

BOOL QueryMemoryResourceNotification(HANDLE handle, PBOOL state)
{
	struct resnotif *h;

	/* Windows: a NULL handle is an invalid parameter (Wine's
	   dlls/kernel32/tests/sync.c records it), an unknown one an invalid
	   handle. */
	if (!state || !handle)
		return mn__w32_fail(-EINVAL, FALSE);
	h = get(handle);
	if (!h)
		return mn__w32_fail(-ENOENT, FALSE);
	pthread_mutex_lock(&h->lock);
	*state = h->state ? TRUE : FALSE;
	pthread_mutex_unlock(&h->lock);
	put(h);
	return TRUE;
}
MN__W32_ALIAS(QueryMemoryResourceNotification);

DWORD MnWaitForSingleObject(HANDLE handle, DWORD ms)
{
	struct resnotif *h = get(handle);
	struct timespec end;
	DWORD ret = WAIT_OBJECT_0;

	if (!h)
		return mn__w32_fail(-ENOENT, WAIT_FAILED);
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += ms / 1000;
	end.tv_nsec += (long)(ms % 1000) * 1000000;
	if (end.tv_nsec >= 1000000000) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&h->lock);
	while (!h->state && !h->closed) {
		if (ms == 0) {
			ret = WAIT_TIMEOUT;
			break;
		}
		if (ms == INFINITE)
			pthread_cond_wait(&h->cond, &h->lock);
		else if (pthread_cond_timedwait(&h->cond, &h->lock, &end) == ETIMEDOUT &&
			 !h->state && !h->closed) {
			ret = WAIT_TIMEOUT;
			break;
		}
	}
	if (h->closed && ret == WAIT_OBJECT_0) {
		SetLastError(ERROR_INVALID_HANDLE);
		ret = WAIT_FAILED;
	}
	pthread_mutex_unlock(&h->lock);
	put(h);
	return ret;
}

BOOL MnCloseHandle(HANDLE handle)
{
	struct resnotif *h;

	if (handle == GetCurrentProcess())
		return TRUE;
	pthread_mutex_lock(&reg_lock);
	h = mn__w32_take(&handles, handle);
	pthread_mutex_unlock(&reg_lock);
	if (!h)
		return mn__w32_fail(-ENOENT, FALSE);
	mn_unsubscribe(h->sub); /* returns once on_level cannot run */
	pthread_mutex_lock(&h->lock);
	h->closed = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	put(h);
	return TRUE;
}
