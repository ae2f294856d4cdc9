/* SPDX-License-Identifier: MIT */
/* Shared helpers of the tests and benchmarks; see helpers.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "memory/cgroup.h"

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		err = -errno;
	close(fd);
	return err;
}

int mn_test_cgroup_create(uint64_t limit_bytes, char *path, size_t pathlen,
			  char *why, size_t whylen)
{
	struct mn__cgroup self;
	char file[512], val[32];
	int err;

	mn__cgroup_self(&self);
	if (self.version == MN_CGROUP_NONE) {
		snprintf(why, whylen, "this process has no memory cgroup");
		return -EOPNOTSUPP;
	}
	/* cgroup v2 has no internal processes: a group with processes (ours)
	   cannot give its children the memory controller.  Then the group
	   goes beside ours, under our parent, as a delegated service does. */
	if (self.version == MN_CGROUP_V2) {
		snprintf(file, sizeof(file), "%s/cgroup.subtree_control", self.path);
		if (write_str(file, "+memory") != 0) {
			char *slash = strrchr(self.path, '/');
			if (slash && slash != self.path)
				*slash = '\0';
		}
	}
	snprintf(path, pathlen, "%s/mntest-%d-%ld", self.path, (int)getpid(),
		 (long)(mn_test_now_usec() % 1000000));
	if (mkdir(path, 0755) < 0) {
		err = -errno;
		snprintf(why, whylen, "mkdir %s: %s", path, strerror(errno));
		return err;
	}
	snprintf(val, sizeof(val), "%llu", (unsigned long long)limit_bytes);
	snprintf(file, sizeof(file), "%s/%s", path,
		 self.version == MN_CGROUP_V2 ? "memory.max"
					      : "memory.limit_in_bytes");
	err = write_str(file, val);
	if (err) {
		snprintf(why, whylen, "%s: %s", file, strerror(-err));
		rmdir(path);
		return err;
	}
	if (self.version == MN_CGROUP_V2) {
		/* No swap either, so the limit is a real wall. */
		snprintf(file, sizeof(file), "%s/memory.swap.max", path);
		write_str(file, "0");
	}
	return 0;
}

int mn_test_cgroup_enter(const char *path, pid_t pid)
{
	char file[512], val[32];

	snprintf(file, sizeof(file), "%s/cgroup.procs", path);
	snprintf(val, sizeof(val), "%d", (int)pid);
	return write_str(file, val);
}

int mn_test_cgroup_destroy(const char *path)
{
	char file[512], buf[4096];

	snprintf(file, sizeof(file), "%s/cgroup.procs", path);
	for (int tries = 0; tries < 200; tries++) {
		int fd = open(file, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (n <= 0)
			break;
		buf[n] = '\0';
		for (char *p = buf; *p;) {
			long pid = strtol(p, &p, 10);
			if (pid > 0)
				kill((pid_t)pid, SIGKILL);
			while (*p == '\n')
				p++;
		}
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (rmdir(path) < 0)
		return -errno;
	return 0;
}

pid_t mn_test_fork_into(const char *cg)
{
	char procs[600];
	pid_t pid;

	/* Formatted before fork(): the child of a threaded process keeps to
	   async-signal-safe calls. */
	if (cg)
		snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg);
	pid = fork();
	if (pid != 0 || !cg)
		return pid;
	/* Writing "0" to cgroup.procs moves the writer itself. */
	int fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "0", 1) != 1)
		_exit(3);
	close(fd);
	return 0;
}

pid_t mn_test_reader_start(const char *cg, const char *file, int passes,
			   int done_fd)
{
	static char buf[1 << 20];
	pid_t pid = mn_test_fork_into(cg);

	if (pid != 0)
		return pid;
	for (int i = 0; passes < 0 || i < passes; i++) {
		int fd = open(file, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			_exit(4);
		while (read(fd, buf, sizeof(buf)) > 0)
			;
		close(fd);
		if (done_fd >= 0 && write(done_fd, "x", 1) != 1)
			_exit(5);
	}
	if (done_fd < 0)
		_exit(0); /* waitpid() says the passes are done */
	for (;;)
		pause();
}

pid_t mn_test_hog_start(const char *cgroup, uint64_t bytes, uint64_t step_bytes,
			unsigned int step_usec, int hold_ms)
{
	pid_t pid = mn_test_fork_into(cgroup);

	if (pid != 0)
		return pid;
	char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(4);
	long pg = sysconf(_SC_PAGESIZE);
	for (uint64_t off = 0; off < bytes;) {
		uint64_t end = off + (step_bytes ? step_bytes : bytes);
		if (end > bytes)
			end = bytes;
		for (; off < end; off += (uint64_t)pg)
			p[off] = 1;
		if (step_usec) {
			struct timespec ts = { step_usec / 1000000,
					       (long)(step_usec % 1000000) * 1000 };
			nanosleep(&ts, NULL);
		}
	}
	if (hold_ms >= 0) {
		struct timespec ts = { hold_ms / 1000, (long)(hold_ms % 1000) * 1000000 };
		nanosleep(&ts, NULL);
		_exit(0);
	}
	for (;;)
		pause();
}

void mn_test_hog_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

uint64_t mn_test_now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* CLOCK_REALTIME @ms from now, for pthread_cond_timedwait. */
static void deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

void mn_test_rec_init(struct mn_test_rec *r)
{
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->n = 0;
}

void mn_test_rec_lock(struct mn_test_rec *r)
{
	pthread_mutex_lock(&r->lock);
}

void mn_test_rec_done(struct mn_test_rec *r)
{
	r->n++;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

bool mn_test_rec_wait(struct mn_test_rec *r, int n, int timeout_ms)
{
	struct timespec ts;
	bool ok;

	deadline_in(&ts, timeout_ms);
	pthread_mutex_lock(&r->lock);
	while (r->n < n)
		if (pthread_cond_timedwait(&r->cond, &r->lock, &ts) == ETIMEDOUT)
			break;
	ok = r->n >= n;
	pthread_mutex_unlock(&r->lock);
	return ok;
}

int mn_test_rec_count(struct mn_test_rec *r)
{
	int n;

	pthread_mutex_lock(&r->lock);
	n = r->n;
	pthread_mutex_unlock(&r->lock);
	return n;
}

int mn_test_child(void (*fn)(void *), void *arg, int sig, char *err, size_t len)
{
	int pipefd[2], status = -1;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	if (len)
		err[0] = '\0';
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return -1;
	}
	if (pid == 0) {
		struct rlimit rl = { 0, 0 };
		dup2(pipefd[1], STDERR_FILENO);
		setrlimit(RLIMIT_CORE, &rl); /* no cores from deliberate crashes */
		if (sig > 0)
			signal(sig, SIG_DFL);
		fn(arg);
		_exit(0);
	}
	close(pipefd[1]);
	while (len && got + 1 < len &&
	       (n = read(pipefd[0], err + got, len - 1 - got)) > 0)
		got += (size_t)n;
	if (len)
		err[got] = '\0';
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return status;
}

bool mn_test_died_by(int status, int sig, char *why, size_t whylen)
{
	if (status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == sig)
		return true;
	if (status == -1)
		snprintf(why, whylen, "the child could not be started");
	else if (WIFSIGNALED(status))
		snprintf(why, whylen, "died by signal %d, not %d", WTERMSIG(status), sig);
	else
		snprintf(why, whylen, "exited with %d, not killed by signal %d",
			 WEXITSTATUS(status), sig);
	return false;
}

void mn_test_seen_record(const struct mn_memory_status *st, void *ctx)
{
	struct mn_test_seen *s = ctx;

	pthread_mutex_lock(&s->lock);
	if (s->n < MN_TEST_SEEN_MAX)
		s->ev[s->n++] = *st;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

int mn_test_seen_wait(struct mn_test_seen *s, int from,
		      enum mn_memory_reason reason, enum mn_memory_level level,
		      int timeout_ms)
{
	struct timespec ts;
	int found = -1;

	deadline_in(&ts, timeout_ms);
	pthread_mutex_lock(&s->lock);
	for (;;) {
		for (int i = from; i < s->n && found < 0; i++)
			if (s->ev[i].reason == reason &&
			    (!level || s->ev[i].level == level))
				found = i;
		if (found >= 0 ||
		    pthread_cond_timedwait(&s->cond, &s->lock, &ts) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&s->lock);
	return found;
}

pid_t mn_test_swing_start(const char *cg, unsigned int base_mib,
			  unsigned int swing_mib, unsigned int period_ms)
{
	pid_t pid = mn_test_fork_into(cg);

	if (pid != 0)
		return pid;
	size_t base = (size_t)base_mib << 20, swing = (size_t)swing_mib << 20;
	char *p = mmap(NULL, base + swing, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(4);
	memset(p, 1, base);
	struct timespec ts = { 0, (long)period_ms * 1000000 };
	for (;;) {
		memset(p + base, 1, swing);
		nanosleep(&ts, NULL);
		madvise(p + base, swing, MADV_DONTNEED);
		nanosleep(&ts, NULL);
	}
}

int mn_test_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own fd */
}
