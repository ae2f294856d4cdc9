/* SPDX-License-Identifier: MIT */
/*
 * systemd's memory-pressure protocol (the one sd_event_add_memory_pressure()
 * follows): the service manager names, in $MEMORY_PRESSURE_WATCH, what a
 * service should watch for pressure — usually its cgroup's memory.pressure,
 * else a FIFO or an AF_UNIX stream socket, or "/dev/null" for "do not" —
 * and, in $MEMORY_PRESSURE_WRITE (base64, optional), the bytes to write to
 * it right after opening it (for a PSI file: the threshold it wants, e.g.
 * "some 100000 1000000" and a NUL).  A regular file is watched for POLLPRI
 * and never read; a FIFO or socket for POLLIN, its data read and dropped.
 *
 * memnotify honours it for a watch of the caller's own group (the group
 * systemd set it up for): the PSI trigger mechanism then uses that file and
 * that threshold instead of its own.  Without MEMORY_PRESSURE_WRITE, a
 * regular file gets memnotify's own trigger line.  If the path cannot be
 * used, memnotify logs why and arms its own trigger, as without the
 * variables.  Both are read with secure_getenv().
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../core/core.h"
#include "cgroup.h"
#include "psi.h"
#include "systemd.h"

#define WRITE_MAX 256 /* decoded bytes; a PSI trigger line is < 64 */

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* RFC 4648 base64 (padding optional, whitespace skipped) into @out.
   Returns the byte count or -EINVAL (bad character, too long). */
int mn__base64_decode(const char *s, unsigned char *out, size_t max)
{
	unsigned int acc = 0;
	int bits = 0, pad = 0;
	size_t n = 0;

	for (; *s; s++) {
		int v;
		if (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
			continue;
		if (*s == '=') {
			pad++;
			continue;
		}
		if (pad || (v = b64_value(*s)) < 0)
			return -EINVAL;
		acc = (acc << 6) | (unsigned int)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n >= max)
				return -EINVAL;
			out[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	return pad > 2 || (bits >= 6) ? -EINVAL : (int)n;
}

/* Is @cg_path the caller's own group (the one systemd described)? */
static bool own_group(const char *cg_path)
{
	struct mn__cgroup self;

	mn__cgroup_self(&self);
	return !strcmp(self.path, cg_path);
}

static int open_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	/* Non-blocking: connect() to a listener whose backlog is full fails
	   (EAGAIN) instead of waiting with the core lock held, and drain()
	   never waits. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* The window of a "some|full STALL WINDOW" line, else 1 s. */
static unsigned int window_of(const unsigned char *buf, int n)
{
	char line[WRITE_MAX + 1], kind[8];
	unsigned int stall, win;

	memcpy(line, buf, (size_t)n);
	line[n] = '\0';
	if (sscanf(line, "%7s %u %u", kind, &stall, &win) == 3 &&
	    win >= MN__PSI_WINDOW_MIN_US && win <= MN__PSI_WINDOW_MAX_US)
		return win;
	return 1000000u;
}

/* Open @path as the protocol says; *@events: what to wait for. */
static int open_watch(const char *path, const unsigned char *data, int n,
		      unsigned int stall_us, unsigned int *window_us,
		      uint32_t *events)
{
	struct stat st;
	int fd;

	if (stat(path, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode) && n < 0) {
		/* A PSI file and no threshold given: memnotify's own. */
		unsigned int win;
		int err = mn__psi_min_window(path, &win);
		if (err)
			return err;
		*window_us = MN__MAX(win, MN__PSI_WINDOW_MIN_US);
		*events = EPOLLPRI;
		return mn__psi_trigger_open(path, "some",
					    MN__MIN(stall_us, *window_us / 2),
					    *window_us);
	}
	if (S_ISSOCK(st.st_mode)) {
		fd = open_socket(path);
		if (fd < 0)
			return fd;
	} else if (S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode)) {
		/* O_RDWR: a FIFO then never reports POLLHUP for want of a
		   writer, and a PSI file takes the trigger.  Bytes written
		   to a FIFO that no one else reads come back as one event,
		   as with sd-event. */
		fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			return -errno;
	} else {
		return -EINVAL;
	}
	if (n > 0 && write(fd, data, (size_t)n) != n) {
		int err = errno ? -errno : -EIO;
		close(fd);
		return err;
	}
	*events = S_ISREG(st.st_mode) ? EPOLLPRI : EPOLLIN;
	*window_us = n > 0 ? window_of(data, n) : 1000000u;
	return fd;
}

int mn__systemd_psi_arm(struct mn__io *io, const char *cg_path,
			unsigned int stall_us, unsigned int *window_us)
{
	const char *watch = secure_getenv("MEMORY_PRESSURE_WATCH");
	const char *write_b64 = secure_getenv("MEMORY_PRESSURE_WRITE");
	unsigned char data[WRITE_MAX];
	uint32_t events = 0;
	int n = -1, fd, err;

	if (!watch || !*watch || !own_group(cg_path))
		return -ENOENT;
	if (!strcmp(watch, "/dev/null")) {
		mn__info("memory: MEMORY_PRESSURE_WATCH=/dev/null: no PSI "
			 "trigger, as the service manager asks");
		return -ECANCELED;
	}
	if (write_b64 && *write_b64 &&
	    (n = mn__base64_decode(write_b64, data, sizeof(data))) < 0) {
		mn__warn("memory: MEMORY_PRESSURE_WRITE is not base64 of at "
			 "most %d bytes: ignored, memnotify's own trigger is used",
			 WRITE_MAX);
		return -ENOENT;
	}
	fd = open_watch(watch, data, n, stall_us, window_us, &events);
	if (fd < 0) {
		mn__warn("memory: MEMORY_PRESSURE_WATCH=%s: %s: memnotify's "
			 "own trigger is used", watch, strerror(-fd));
		return -ENOENT;
	}
	io->fd = fd;
	if ((err = mn__dispatch_add(io, events)) < 0) {
		close(fd);
		io->fd = -1;
		return err;
	}
	mn__info("memory: pressure from MEMORY_PRESSURE_WATCH=%s", watch);
	return 0;
}

void mn__systemd_psi_drain(int fd)
{
	char buf[256];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}
