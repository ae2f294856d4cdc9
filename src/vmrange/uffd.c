/* SPDX-License-Identifier: MIT */
/*
 * The userfaultfd safety net: watched ranges are registered with one
 * userfaultfd in write-protect mode (no page fault is trapped: nothing is
 * write-protected) with the UNMAP, REMOVE and REMAP events, which the
 * kernel sends whoever unmaps, discards or moves them — raw syscalls and
 * static code included.  The unmapping thread waits until the event is
 * read, so a dedicated thread reads at once and hands the events to the
 * dispatcher, where they are delivered as late events (thread context).
 */
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../core/caps.h"
#include "../core/core.h"
#include "vmrange.h"

#define QUEUE_CAP 1024

static struct {
	bool tried;             /* core lock */
	_Atomic int fd;
	int err;
	char detail[160];
	pthread_t reader;
	pthread_mutex_t qlock;
	struct mn_vm_event q[QUEUE_CAP];
	unsigned int qhead, qlen;
	struct mn__work work;
} u = { .fd = -1, .qlock = PTHREAD_MUTEX_INITIALIZER };

static void drain(struct mn__work *w)
{
	struct mn_vm_event ev;

	(void)w;
	for (;;) {
		pthread_mutex_lock(&u.qlock);
		if (!u.qlen) {
			pthread_mutex_unlock(&u.qlock);
			return;
		}
		ev = u.q[u.qhead];
		u.qhead = (u.qhead + 1) % QUEUE_CAP;
		u.qlen--;
		pthread_mutex_unlock(&u.qlock);
		mn__vm_notify_late(&ev);
	}
}

static void enqueue(const struct mn_vm_event *ev)
{
	pthread_mutex_lock(&u.qlock);
	if (u.qlen == QUEUE_CAP) {
		mn__count(lost, 1);
	} else {
		u.q[(u.qhead + u.qlen) % QUEUE_CAP] = *ev;
		u.qlen++;
	}
	pthread_mutex_unlock(&u.qlock);
	mn__lock();
	mn__dispatch_post(&u.work);
	mn__unlock();
}

static void *reader_main(void *arg)
{
	struct uffd_msg msg[16];
	struct pollfd pfd = { .fd = u.fd, .events = POLLIN };

	(void)arg;
	pthread_setname_np(pthread_self(), "memnotify-uffd");
	for (;;) {
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			break;
		ssize_t n = read(u.fd, msg, sizeof(msg));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			break;
		}
		for (size_t i = 0; i < (size_t)n / sizeof(msg[0]); i++) {
			struct mn_vm_event ev = { .sz = sizeof(ev), .prot = -1 };
			switch (msg[i].event) {
			case UFFD_EVENT_UNMAP:
				ev.kind = MN_VM_UNMAP;
				ev.address = msg[i].arg.remove.start;
				ev.length = msg[i].arg.remove.end - msg[i].arg.remove.start;
				break;
			case UFFD_EVENT_REMOVE:
				ev.kind = MN_VM_DISCARD;
				ev.address = msg[i].arg.remove.start;
				ev.length = msg[i].arg.remove.end - msg[i].arg.remove.start;
				break;
			case UFFD_EVENT_REMAP:
				ev.kind = MN_VM_MOVE;
				ev.address = msg[i].arg.remap.from;
				ev.length = msg[i].arg.remap.len;
				ev.new_address = msg[i].arg.remap.to;
				ev.new_length = msg[i].arg.remap.len;
				break;
			default:
				continue;
			}
			enqueue(&ev);
		}
	}
	return NULL;
}

/* Core lock held.  Open the userfaultfd and start its reader, once. */
static int setup(void)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_EVENT_REMOVE |
			    UFFD_FEATURE_EVENT_REMAP,
	};
	int fd;

	if (u.tried)
		return u.err;
	u.tried = true;
	u.work.fn = drain;
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0 && errno == EINVAL)
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		u.err = -errno;
		snprintf(u.detail, sizeof(u.detail),
			 "userfaultfd(2): %s (CONFIG_USERFAULTFD, "
			 "vm.unprivileged_userfaultfd, or seccomp)",
			 strerror(errno));
		return u.err;
	}
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		u.err = -errno;
		snprintf(u.detail, sizeof(u.detail),
			 "UFFDIO_API with UNMAP/REMOVE/REMAP events: %s",
			 strerror(errno));
		close(fd);
		return u.err;
	}
	u.fd = fd;
	if (pthread_create(&u.reader, NULL, reader_main, NULL) != 0) {
		u.err = -EAGAIN;
		snprintf(u.detail, sizeof(u.detail), "cannot start the reader thread");
		close(fd);
		u.fd = -1;
		return u.err;
	}
	pthread_detach(u.reader);
	snprintf(u.detail, sizeof(u.detail),
		 "userfaultfd with UNMAP, REMOVE and REMAP events");
	return 0;
}

int mn__uffd_register(uint64_t start, uint64_t len)
{
	struct uffdio_register reg = {
		.range = { .start = start, .len = len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	int err = setup();

	if (err)
		return err;
	if (mn__dispatch_ensure() < 0)
		return -EAGAIN;
	if (ioctl(u.fd, UFFDIO_REGISTER, &reg) < 0)
		return -errno; /* not mapped yet, or not anonymous/shmem */
	return 0;
}

void mn__uffd_unregister(uint64_t start, uint64_t len)
{
	struct uffdio_range r = { .start = start, .len = len };

	if (u.fd >= 0)
		ioctl(u.fd, UFFDIO_UNREGISTER, &r); /* gone already: fine */
}

void mn__uffd_forget(uint64_t start, uint64_t len)
{
	struct uffdio_range r = { .start = start, .len = len };
	int saved = errno;

	if (u.fd >= 0)
		ioctl(u.fd, UFFDIO_UNREGISTER, &r);
	errno = saved;
}

int mn__uffd_probe(char *detail, size_t len)
{
	int err;

	mn__lock();
	err = setup();
	snprintf(detail, len, "%s", u.detail);
	mn__unlock();
	return err;
}

int mn__probe_userfaultfd(char *detail, size_t len)
{
	return mn__uffd_probe(detail, len);
}
