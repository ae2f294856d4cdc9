/* SPDX-License-Identifier: MIT */
/*
 * CreateMemoryResourceNotification and its handles: a memory subscription
 * with Windows' absolute default thresholds, turned into a waitable state.
 * The handles of this face that CloseHandle/WaitForSingleObject know.
 *
 * Locks and fork(): the registry's reg_lock is registered with the core
 * (rank FACE), so fork() takes it and a child never inherits it held.  A
 * handle has no lock: its state is one atomic word (signaled, closed) that
 * on_level() and CloseHandle() change with one atomic operation and wake
 * the waiters of with a futex; WaitForSingleObject() sleeps on the word,
 * not under a mutex.  A per-handle mutex (and condition variable) would
 * need fork handling of its own — one held by a thread of the parent when
 * fork() copies it stays held in the child for ever, and a condition
 * variable's internal counts of the parent's waiters can block a
 * broadcast in the child — and there may be any number of handles, more
 * than the core's table of locks.  A futex word has no owner: whatever
 * the parent's threads were doing, the child sees a plain value.
 */
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "face.h"

#define MiB (1024ull * 1024)

struct resnotif {
	struct mn__w32_link link;   /* handles, reg_lock */
	MEMORY_RESOURCE_NOTIFICATION_TYPE type;
	_Atomic unsigned int word;  /* SIGNALED | CLOSED; a futex */
	_Atomic int refs;
	mn_sub *sub;
};

#define SIGNALED 1u
#define CLOSED 2u

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mn__w32_link *handles;

__attribute__((constructor)) static void resource_init(void)
{
	mn__lock_register(&reg_lock, MN__RANK_FACE);
}

static void wake_all(struct resnotif *h)
{
	syscall(SYS_futex, &h->word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static void put(struct resnotif *h)
{
	if (atomic_fetch_sub(&h->refs, 1) != 1)
		return;
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

	unsigned int old;

	if (st->reason == MN_MEMORY_ERROR)
		return; /* the last known state stands */
	if (signaled(h->type, st->level))
		old = atomic_fetch_or(&h->word, SIGNALED);
	else
		old = atomic_fetch_and(&h->word, ~SIGNALED);
	if ((old & SIGNALED) != signaled(h->type, st->level))
		wake_all(h);
}

HANDLE CreateMemoryResourceNotification(MEMORY_RESOURCE_NOTIFICATION_TYPE type)
{
	struct mn_memory_opts o = { .sz = sizeof(o) };
	struct mn_memory_status st = { .sz = sizeof(st) };
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
	h->word = signaled(type, st.level) ? SIGNALED : 0;
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
	*state = (atomic_load(&h->word) & SIGNALED) ? TRUE : FALSE;
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
	for (;;) {
		unsigned int w = atomic_load(&h->word);
		if (w & (SIGNALED | CLOSED))
			break;
		if (ms == 0) {
			ret = WAIT_TIMEOUT;
			break;
		}
		/* Sleeps only while the word is still @w: a change made
		   after the load above is not missed.  The deadline is
		   absolute, on CLOCK_MONOTONIC. */
		if (syscall(SYS_futex, &h->word, FUTEX_WAIT_BITSET_PRIVATE, w,
			    ms == INFINITE ? NULL : &end, NULL,
			    FUTEX_BITSET_MATCH_ANY) < 0 &&
		    errno == ETIMEDOUT &&
		    !(atomic_load(&h->word) & (SIGNALED | CLOSED))) {
			ret = WAIT_TIMEOUT;
			break;
		}
	}
	if ((atomic_load(&h->word) & CLOSED) && ret == WAIT_OBJECT_0) {
		SetLastError(ERROR_INVALID_HANDLE);
		ret = WAIT_FAILED;
	}
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
	atomic_fetch_or(&h->word, CLOSED);
	wake_all(h);
	put(h);
	return TRUE;
}
