/* SPDX-License-Identifier: MIT */
/*
 * CreateMemoryResourceNotification and its handles: a memory subscription
 * with Windows' absolute default thresholds, turned into a waitable state.
 * The handles of this face that CloseHandle/WaitForSingleObject know.
 *
 * One level, many handles: every handle made with the same thresholds
 * shares one subscription (a "share"), and its callback updates all of
 * them in one pass, clearing before setting.  So the low and high handles
 * never disagree as two subscriptions delivered on their own lanes could:
 * once the low handle is signaled, the high one is already clear, and the
 * reverse, as Windows' two handles over one memory state behave.
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

struct share {
	struct mn__w32_link link;   /* shares, reg_lock */
	uint64_t low, high;         /* the thresholds, bytes */
	mn_sub *sub;
	int handles;                /* reg_lock */
	enum mn_memory_level level; /* reg_lock: the last delivered */
};

struct resnotif {
	struct mn__w32_link link;   /* handles, reg_lock */
	MEMORY_RESOURCE_NOTIFICATION_TYPE type;
	_Atomic unsigned int word;  /* SIGNALED | CLOSED; a futex */
	_Atomic int refs;
	struct share *share;
};

#define SIGNALED 1u
#define CLOSED 2u

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mn__w32_link *handles;
static struct mn__w32_link *shares;

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

/* reg_lock held: set @h's state for @level; wakes its waiters on a
   change.  @set: only handles becoming signaled, else only those
   becoming clear. */
static void apply(struct resnotif *h, enum mn_memory_level level, bool set)
{
	bool want = signaled(h->type, level);
	unsigned int old;

	if (want != set)
		return;
	old = want ? atomic_fetch_or(&h->word, SIGNALED)
		   : atomic_fetch_and(&h->word, ~SIGNALED);
	if (((old & SIGNALED) != 0) != want)
		wake_all(h);
}

/* Thread context (a delivery thread), no memnotify lock held: every
   handle of the share, clear ones first. */
static void on_level(const struct mn_memory_status *st, void *ctx)
{
	struct share *sh = ctx;

	if (st->reason == MN_MEMORY_ERROR)
		return; /* the last known state stands */
	pthread_mutex_lock(&reg_lock);
	sh->level = st->level;
	for (int set = 0; set < 2; set++)
		for (struct mn__w32_link *l = handles; l; l = l->next)
			if (((struct resnotif *)l)->share == sh)
				apply((struct resnotif *)l, st->level, set);
	pthread_mutex_unlock(&reg_lock);
}

/* reg_lock held: the share of these thresholds, or NULL. */
static struct share *find_share(uint64_t low, uint64_t high)
{
	for (struct mn__w32_link *l = shares; l; l = l->next) {
		struct share *sh = (struct share *)l;
		if (sh->low == low && sh->high == high)
			return sh;
	}
	return NULL;
}

/* The share for @o's thresholds, with @h counted in it and on the handle
   list: found, or made (subscribing with no lock held).  0 or -errno. */
static int join_share(const struct mn_memory_opts *o, struct resnotif *h,
		      enum mn_memory_level now)
{
	struct share *sh, *made = NULL;
	int err;

	pthread_mutex_lock(&reg_lock);
	if (!(sh = find_share(o->low_bytes, o->high_bytes))) {
		pthread_mutex_unlock(&reg_lock);
		if (!(made = calloc(1, sizeof(*made))))
			return -ENOMEM;
		made->low = o->low_bytes;
		made->high = o->high_bytes;
		if ((err = mn_memory_subscribe(o, on_level, made, &made->sub))) {
			free(made);
			return err;
		}
		pthread_mutex_lock(&reg_lock);
		/* Another thread may have made one meanwhile: use that. */
		if (!(sh = find_share(o->low_bytes, o->high_bytes))) {
			mn__w32_push(&shares, made);
			sh = made;
			made = NULL;
		}
	}
	sh->handles++;
	h->share = sh;
	/* The level the share's other handles show, once it has one. */
	if (sh->level != MN_MEMORY_LEVEL_UNKNOWN)
		now = sh->level;
	atomic_store(&h->word, signaled(h->type, now) ? SIGNALED : 0);
	mn__w32_push(&handles, h);
	pthread_mutex_unlock(&reg_lock);
	if (made) {
		mn_unsubscribe(made->sub);
		free(made);
	}
	return 0;
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
	err = join_share(&o, h, st.level);
	if (err) {
		put(h);
		return mn__w32_fail(err, NULL);
	}
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
	struct share *last = NULL;

	pthread_mutex_lock(&reg_lock);
	h = mn__w32_take(&handles, handle);
	if (h && --h->share->handles == 0)
		last = mn__w32_take(&shares, h->share);
	pthread_mutex_unlock(&reg_lock);
	if (!h)
		return mn__w32_fail(-ENOENT, FALSE);
	if (last) {
		mn_unsubscribe(last->sub); /* returns once on_level cannot run */
		free(last);
	}
	atomic_fetch_or(&h->word, CLOSED);
	wake_all(h);
	put(h);
	return TRUE;
}
