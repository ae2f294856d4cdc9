/* SPDX-License-Identifier: MIT */
/*
 * mn_shutdown() leaves nothing behind.  Each round subscribes to every
 * source — memory levels, bad memory with MN_BADMEM_EARLY_KILL (that part
 * is skipped, with the reason printed, where the kernel refuses it), a
 * range watch with the userfaultfd safety net, a range listener and a
 * signal-chain handler — checks that every memnotify thread blocks every
 * signal except the one it is documented to take (memnotify-mce takes
 * SIGBUS), unsubscribes them all and calls mn_shutdown().  Then:
 *  - no fd is open that was not open before the first mn_* call (the
 *    eventfd, userfaultfd, timerfd and epoll fds are named when they stay);
 *  - /proc/self/task holds only the threads there were before (bounded
 *    wait for exiting threads);
 *  - the library works again: a new watch hears a munmap, a new memory
 *    subscription gets its initial delivery.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memnotify.h"
#include "stress.h"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1 /* the runtime may start threads of its own */
#else
#define SANITIZED 0
#endif

#define MAXFD 256

struct fdset {
	int n;
	int fd[MAXFD];
	char link[MAXFD][128];
};

static void fds_read(struct fdset *s)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int self = d ? dirfd(d) : -1;

	s->n = 0;
	while (d && (e = readdir(d)) && s->n < MAXFD) {
		char path[64];
		int fd = atoi(e->d_name);

		if (e->d_name[0] == '.' || fd == self)
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		ssize_t k = readlink(path, s->link[s->n], sizeof(s->link[0]) - 1);
		s->link[s->n][k > 0 ? k : 0] = 0;
		s->fd[s->n++] = fd;
	}
	if (d)
		closedir(d);
}

/* Fds of @now that @before does not have (same number, same file). */
static int fds_new(const struct fdset *before, const struct fdset *now,
		   char *out, size_t outlen)
{
	int extra = 0;

	out[0] = 0;
	for (int i = 0; i < now->n; i++) {
		bool known = false;
		for (int j = 0; j < before->n && !known; j++)
			known = before->fd[j] == now->fd[i] &&
				!strcmp(before->link[j], now->link[i]);
		if (known)
			continue;
		extra++;
		size_t l = strlen(out);
		snprintf(out + l, outlen - l, " %d=%s", now->fd[i], now->link[i]);
	}
	return extra;
}

/* Threads: count, and how many are named memnotify*. */
static int tasks(int *mn_threads, char *names, size_t nameslen)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	*mn_threads = 0;
	if (names)
		names[0] = 0;
	while (d && (e = readdir(d))) {
		char path[300], comm[32] = "";
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		n++;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		if ((f = fopen(path, "re"))) {
			if (fgets(comm, sizeof(comm), f))
				comm[strcspn(comm, "\n")] = 0;
			fclose(f);
		}
		if (!strncmp(comm, "memnotify", 9))
			++*mn_threads;
		if (names) {
			size_t l = strlen(names);
			snprintf(names + l, nameslen - l, " %s(%s)", e->d_name, comm);
		}
	}
	if (d)
		closedir(d);
	return n;
}

static unsigned long long sigblk_of(const char *tid)
{
	char path[300], line[256];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%s/status", tid);
	if (!(f = fopen(path, "re")))
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "SigBlk: %llx", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* The mask of a thread that blocked everything it can (sigfillset): the
   C library keeps its own two signals and the kernel SIGKILL/SIGSTOP. */
static unsigned long long full_mask;

static void *ref_thread(void *arg)
{
	sigset_t all;
	char tid[24];

	(void)arg;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	snprintf(tid, sizeof(tid), "%d", gettid());
	full_mask = sigblk_of(tid);
	return NULL;
}

#define BIT(sig) (1ull << ((sig) - 1))

/* The C library's two internal signals (SIGRTMIN - 2 and - 1 for the
   kernel): pthread_create() holds them blocked in a new thread until it
   starts, and no program can send or block them; compared out. */
#define GLIBC_INTERNAL (BIT(32) | BIT(33))

/* Is a thread named @name there? */
static bool thread_named(const char *name)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	bool found = false;

	while (d && !found && (e = readdir(d))) {
		char path[300], comm[32] = "";
		FILE *f;

		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		if (e->d_name[0] == '.' || !(f = fopen(path, "re")))
			continue;
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = 0;
		fclose(f);
		found = !strcmp(comm, name);
	}
	if (d)
		closedir(d);
	return found;
}

/* Every memnotify thread's SigBlk: a check per thread.  Threads name
   themselves as they start: a bounded wait for the expected names. */
static void check_masks(bool want_mce, bool want_uffd)
{
	DIR *d;
	struct dirent *e;
	bool seen_mn = false, seen_mce = false, seen_uffd = false;
	char what[400];

	for (int ms = 0; ms < 2000; ms++) {
		if (thread_named("memnotify") &&
		    (!want_mce || thread_named("memnotify-mce")) &&
		    (!want_uffd || thread_named("memnotify-uffd")))
			break;
		usleep(1000);
	}
	d = opendir("/proc/self/task");
	while (d && (e = readdir(d))) {
		char path[300], comm[32] = "";
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		if (!(f = fopen(path, "re")))
			continue;
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = 0;
		fclose(f);
		if (strncmp(comm, "memnotify", 9))
			continue;
		unsigned long long want = full_mask, got = sigblk_of(e->d_name);
		if (!strcmp(comm, "memnotify-mce")) {
			want &= ~BIT(SIGBUS);
			seen_mce = true;
		} else if (!strcmp(comm, "memnotify-uffd")) {
			seen_uffd = true;
		} else if (!strcmp(comm, "memnotify")) {
			seen_mn = true;
		}
		snprintf(what, sizeof(what), "thread %s (%s): SigBlk %016llx, want %016llx",
			 e->d_name, comm, got, want);
		stress_check((got & ~GLIBC_INTERNAL) == (want & ~GLIBC_INTERNAL), what);
	}
	if (d)
		closedir(d);
	stress_check(seen_mn, "the dispatcher thread \"memnotify\" is there");
	if (want_mce)
		stress_check(seen_mce, "the early-kill thread \"memnotify-mce\" is there");
	if (want_uffd)
		stress_check(seen_uffd, "the userfaultfd reader \"memnotify-uffd\" is there");
}

static _Atomic unsigned long levels, watch_events, listen_events, sig_events;

static void on_level(const struct mn_memory_status *st, void *ctx)
{
	(void)st;
	(void)ctx;
	atomic_fetch_add(&levels, 1);
}

static void on_bad(const struct mn_badmem_event *ev, void *ctx)
{
	(void)ev;
	(void)ctx;
}

static void on_watch(const struct mn_vm_event *ev, void *ctx)
{
	(void)ctx;
	if (ev->kind == MN_VM_UNMAP)
		atomic_fetch_add(&watch_events, 1);
}

static void on_listen(const struct mn_vm_event *ev, void *ctx)
{
	(void)ev;
	(void)ctx;
	atomic_fetch_add(&listen_events, 1);
}

static int on_signal(int sig, siginfo_t *info, void *uc, int handled, void *ctx)
{
	(void)sig;
	(void)info;
	(void)uc;
	(void)handled;
	(void)ctx;
	atomic_fetch_add(&sig_events, 1);
	return 1;
}

static bool wait_for(_Atomic unsigned long *v, unsigned long above, int ms)
{
	for (int i = 0; i < ms && atomic_load(v) <= above; i++)
		usleep(1000);
	return atomic_load(v) > above;
}

static bool early_kill = true;
static char early_why[128];

/* One round: subscribe to everything, check, unsubscribe, shut down. */
static void round_all(const struct fdset *before, int tasks_before, bool check)
{
	MN_OPTS(mn_badmem_opts, bo, .flags = MN_BADMEM_EARLY_KILL);
	struct mn_capability cap = { .sz = sizeof(cap) };
	mn_sub *mem = NULL, *bad = NULL, *watch = NULL, *listen = NULL, *sig = NULL;
	char what[1200];
	int err;

	err = mn_memory_subscribe(NULL, on_level, NULL, &mem);
	snprintf(what, sizeof(what), "mn_memory_subscribe: %s", mn_strerror(err));
	stress_check(err == 0, what);
	if (early_kill) {
		err = mn_badmem_subscribe(&bo, on_bad, NULL, &bad);
		if (err) {
			early_kill = false;
			snprintf(early_why, sizeof(early_why),
				 "mn_badmem_subscribe(MN_BADMEM_EARLY_KILL): %s",
				 mn_strerror(err));
			printf("skip the bad-memory part: %s\n", early_why);
		}
	}
	size_t len = 16 * 4096;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	stress_check(p != MAP_FAILED, "mmap");
	err = mn_vm_watch(p, len, 0, on_watch, NULL, &watch);
	snprintf(what, sizeof(what), "mn_vm_watch: %s", mn_strerror(err));
	stress_check(err == 0, what);
	err = mn_vm_listen(0, on_listen, NULL, &listen);
	snprintf(what, sizeof(what), "mn_vm_listen: %s", mn_strerror(err));
	stress_check(err == 0, what);
	err = mn_signal_register(SIGUSR1, on_signal, NULL, &sig);
	snprintf(what, sizeof(what), "mn_signal_register: %s", mn_strerror(err));
	stress_check(err == 0, what);

	/* Every source delivers. */
	unsigned long w0 = atomic_load(&watch_events), l0 = atomic_load(&listen_events);
	unsigned long s0 = atomic_load(&sig_events);
	munmap(p + 4096, 4096);
	stress_check(atomic_load(&watch_events) > w0, "the watch heard a munmap");
	stress_check(atomic_load(&listen_events) > l0, "the listener heard a munmap");
	raise(SIGUSR1);
	stress_check(atomic_load(&sig_events) > s0, "the signal handler ran");
	stress_check(wait_for(&levels, 0, 3000), "a memory level was delivered");

	if (check) {
		mn_capability(MN_CAP_USERFAULTFD, &cap);
		check_masks(bad != NULL, cap.supported);
	}

	if (mem)
		stress_check(mn_unsubscribe(mem) == 0, "unsubscribe memory");
	if (bad)
		stress_check(mn_unsubscribe(bad) == 0, "unsubscribe bad memory");
	if (watch)
		stress_check(mn_unsubscribe(watch) == 0, "unsubscribe watch");
	if (listen)
		stress_check(mn_unsubscribe(listen) == 0, "unsubscribe listener");
	if (sig)
		stress_check(mn_unsubscribe(sig) == 0, "unsubscribe signal handler");
	munmap(p, len);
	err = mn_shutdown();
	snprintf(what, sizeof(what), "mn_shutdown: %s", mn_strerror(err));
	stress_check(err == 0, what);

	/* Threads: joined by mn_shutdown(); a bounded wait for the kernel
	   to take exiting ones out of /proc. */
	int mn_threads, n = tasks(&mn_threads, NULL, 0);
	for (int ms = 0; ms < 2000 && (mn_threads || (!SANITIZED && n > tasks_before)); ms++) {
		usleep(1000);
		n = tasks(&mn_threads, NULL, 0);
	}
	char names[512];
	n = tasks(&mn_threads, names, sizeof(names));
	snprintf(what, sizeof(what), "threads after mn_shutdown: %d (before: %d):%s",
		 n, tasks_before, names);
	stress_check(mn_threads == 0 && (SANITIZED || n == tasks_before), what);

	struct fdset now;
	char extra[1000];
	fds_read(&now);
	int k = fds_new(before, &now, extra, sizeof(extra));
	snprintf(what, sizeof(what), "fds left after mn_shutdown: %d:%s", k, extra);
	stress_check(k == 0, what);
}

/* After a shutdown the library works again. */
static void round_again(void)
{
	char *p = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned long w0 = atomic_load(&watch_events), l0 = atomic_load(&levels);
	mn_sub *watch = NULL, *mem = NULL;
	int err;

	err = mn_vm_watch(p, 4 * 4096, 0, on_watch, NULL, &watch);
	stress_check(err == 0, "after shutdown: mn_vm_watch");
	err = mn_memory_subscribe(NULL, on_level, NULL, &mem);
	stress_check(err == 0, "after shutdown: mn_memory_subscribe");
	munmap(p, 4 * 4096);
	stress_check(atomic_load(&watch_events) > w0, "after shutdown: the watch heard a munmap");
	stress_check(wait_for(&levels, l0, 3000), "after shutdown: a memory level was delivered");
	if (watch)
		mn_unsubscribe(watch);
	if (mem)
		mn_unsubscribe(mem);
	stress_check(mn_shutdown() == 0, "after shutdown: mn_shutdown again");
}

int main(void)
{
	static struct fdset before;
	uint64_t rounds = 0;
	pthread_t t;
	int mn_threads, tasks_before;

	/* Before the first mn_* call. */
	fds_read(&before);
	if (pthread_create(&t, NULL, ref_thread, NULL) || pthread_join(t, NULL)) {
		printf("FAIL: reference thread\n");
		return 1;
	}
	tasks_before = tasks(&mn_threads, NULL, 0);
	printf("before: %d fds, %d threads, full signal mask %016llx\n", before.n,
	       tasks_before, full_mask);

	while (stress_running() || rounds < 3) {
		round_all(&before, tasks_before, rounds < 3 || (rounds & 7) == 0);
		round_again();
		rounds++;
	}
	if (!early_kill)
		printf("note: bad memory with early kill not covered: %s\n", early_why);
	return stress_finish("stress_shutdown", rounds);
}
