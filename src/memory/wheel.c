/* SPDX-License-Identifier: MIT */
/* The memory watches' shared sampling timer; see wheel.h. */
#include <errno.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "../core/core.h"
#include "wheel.h"

#define COALESCE_FROM_US 500000u
#define SLOT_US 250000u

static void on_fire(struct mn__io *io, uint32_t events);

static struct {
	struct mn__io io;
	struct mn__wheel_entry *head;
	bool firing;
} w = { .io = { .fd = -1, .ready = on_fire } };

static void unlink_entry(struct mn__wheel_entry *e)
{
	if (!e->queued)
		return;
	if (e->prev)
		e->prev->next = e->next;
	else
		w.head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	e->next = e->prev = NULL;
	e->queued = false;
}

/* Close the timerfd once nothing is queued (not while firing: the entries
   being fired re-queue themselves). */
static void maybe_close(void)
{
	if (w.head || w.firing || w.io.fd < 0)
		return;
	mn__dispatch_del(&w.io);
	close(w.io.fd);
	w.io.fd = -1;
}

/* Set the timerfd to the earliest due time. */
static void rearm(void)
{
	struct itimerspec its = { 0 };
	uint64_t due = UINT64_MAX;

	for (struct mn__wheel_entry *e = w.head; e; e = e->next)
		due = MN__MIN(due, e->due_us);
	if (!w.head) {
		maybe_close();
		if (w.io.fd < 0)
			return;
	} else {
		its.it_value.tv_sec = (time_t)(due / 1000000u);
		its.it_value.tv_nsec = (long)(due % 1000000u) * 1000;
	}
	if (timerfd_settime(w.io.fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		mn__count(source_errors, 1);
}

static int ensure_fd(void)
{
	if (w.io.fd >= 0)
		return 0;
	w.io.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (w.io.fd < 0)
		return -errno;
	int err = mn__dispatch_add(&w.io, EPOLLIN);
	if (err) {
		close(w.io.fd);
		w.io.fd = -1;
	}
	return err;
}

void mn__wheel_set(struct mn__wheel_entry *e, uint64_t delay_us)
{
	uint64_t now = mn__now_mono_usec();

	unlink_entry(e);
	if (!delay_us) {
		rearm();
		return;
	}
	if (ensure_fd() < 0) {
		mn__count(source_errors, 1);
		return;
	}
	e->due_us = now + delay_us;
	if (delay_us >= COALESCE_FROM_US)
		e->due_us = e->due_us / SLOT_US * SLOT_US; /* early, never late */
	e->next = w.head;
	e->prev = NULL;
	if (w.head)
		w.head->prev = e;
	w.head = e;
	e->queued = true;
	if (!w.firing)
		rearm();
}

void mn__wheel_cancel(struct mn__wheel_entry *e)
{
	if (!e->queued)
		return; /* e.g. a new watch that failed to arm, off the dispatcher */
	unlink_entry(e);
	if (!w.firing)
		rearm();
}

/* Fire every entry that is due; each is unqueued first and may set itself
   again (or cancel, or fail) from its callback. */
static void on_fire(struct mn__io *io, uint32_t events)
{
	uint64_t ticks, now = mn__now_mono_usec();
	struct mn__wheel_entry *e;

	(void)events;
	if (read(io->fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		mn__count(source_errors, 1);
	w.firing = true;
	for (;;) {
		for (e = w.head; e && e->due_us > now; e = e->next)
			;
		if (!e)
			break;
		unlink_entry(e);
		e->fire(e);
	}
	w.firing = false;
	rearm();
}

void mn__wheel_after_fork(void)
{
	if (w.io.fd >= 0)
		close(w.io.fd);
	w.io.fd = -1;
	while (w.head)
		unlink_entry(w.head);
	w.firing = false;
}
