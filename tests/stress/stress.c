/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stress.h"

static unsigned int passed, failed;

double stress_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double stress_seconds(void)
{
	const char *s = getenv("MEMNOTIFY_STRESS_SECONDS");
	double v = s ? atof(s) : 0;

	return v > 0 && v < 3600 ? v : 2.0;
}

bool stress_running(void)
{
	static double start;

	if (start == 0)
		start = stress_now();
	return stress_now() - start < stress_seconds();
}

void stress_check(bool ok, const char *what)
{
	if (ok) {
		passed++;
	} else {
		failed++;
		printf("FAIL: %s\n", what);
		fflush(stdout);
	}
}

int stress_finish(const char *name, uint64_t iterations)
{
	printf("%s: %llu iterations\n", name, (unsigned long long)iterations);
	printf("%u passed, %u failed\n", passed, failed);
	fflush(stdout);
	return failed ? 1 : 0;
}

int stress_wait_child(pid_t pid, int timeout_ms)
{
	int status;

	for (int waited = 0; waited < timeout_ms; waited++) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r < 0 && errno != EINTR)
			return -1;
		usleep(1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

char *stress_anon(size_t len)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	for (size_t i = 0; i < len; i += ps)
		p[i] = 1;
	return p;
}
