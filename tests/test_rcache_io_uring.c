/* SPDX-License-Identifier: MIT */
/*
 * The hazard mn_rcache exists for, on a real consumer: io_uring's fixed
 * buffers pin their pages at registration.  When the program unmaps a
 * buffer and new memory appears at the same address, IORING_OP_READ_FIXED
 * still writes into the old pinned pages and the program reads zeros.
 * For each path — munmap, free() of a large block, mremap, madvise
 * (MADV_DONTNEED), and a raw syscall(SYS_munmap) that no hook sees — this
 * test shows the stale read with a plain registration, and a correct read
 * with mn_rcache driving io_uring_register_buffers_update_tag (the region
 * is registered again after the change).  For the raw system call the
 * region is invalidated when userfaultfd's late event is delivered: the
 * test waits for it (bounded) and prints the window it measured.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "memnotify.h"

#define PG 4096ul
#define SLOTS 64
#define BIG (4ul << 20) /* above glibc's mmap threshold */

static struct io_uring ring;
static int file_fd = -1;
static unsigned char slot_used[SLOTS];

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One READ_FIXED of the file's first page into @buf (fixed buffer @idx). */
static int read_fixed(void *buf, unsigned int idx)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
	struct io_uring_cqe *cqe;
	int res;

	assert_non_null(sqe);
	io_uring_prep_read_fixed(sqe, file_fd, buf, PG, 0, (int)idx);
	assert_int_equal(io_uring_submit(&ring), 1);
	assert_int_equal(io_uring_wait_cqe(&ring, &cqe), 0);
	res = cqe->res;
	io_uring_cqe_seen(&ring, cqe);
	return res;
}

static bool has_data(const unsigned char *p)
{
	for (size_t i = 0; i < PG; i++)
		if (p[i] != (unsigned char)(i * 7 + 3))
			return false;
	return true;
}

/* --- the cache's registration: a slot of a sparse buffer table ---------- */

static int reg(void *ctx, struct mn_rcache_region *r)
{
	struct iovec iov = { (void *)(uintptr_t)r->start, r->end - r->start };
	__u64 tag = 0;

	(void)ctx;
	for (unsigned int s = 0; s < SLOTS; s++) {
		if (slot_used[s])
			continue;
		int err = io_uring_register_buffers_update_tag(&ring, s, &iov, &tag, 1);
		if (err < 0)
			return err;
		slot_used[s] = 1;
		r->handle = (void *)(uintptr_t)(s + 1);
		return 0;
	}
	return -ENOSPC;
}

static void dereg(void *ctx, struct mn_rcache_region *r)
{
	unsigned int s = (unsigned int)(uintptr_t)r->handle - 1;
	struct iovec iov = { NULL, 0 };
	__u64 tag = 0;

	(void)ctx;
	io_uring_register_buffers_update_tag(&ring, s, &iov, &tag, 1);
	slot_used[s] = 0;
}

/* --- the paths ---------------------------------------------------------- */

/* Each returns the buffer's address after the change (new memory). */
static char *ch_munmap(char *p)
{
	assert_int_equal(munmap(p, PG), 0);
	assert_true(mmap(p, PG, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == p);
	return p;
}

static uint64_t t_raw; /* when the raw munmap returned */

static char *ch_raw_munmap(char *p)
{
	assert_int_equal(syscall(SYS_munmap, p, PG), 0);
	t_raw = now_ns();
	assert_true((void *)syscall(SYS_mmap, p, PG, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == p);
	return p;
}

static char *ch_mremap(char *p)
{
	static char *away;
	if (away)
		munmap(away, PG);
	away = mmap(NULL, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(away != MAP_FAILED);
	assert_true(mremap(p, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, away) == away);
	assert_true(mmap(p, PG, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == p);
	return p;
}

static char *ch_madvise(char *p)
{
	assert_int_equal(madvise(p, PG, MADV_DONTNEED), 0);
	return p;
}

static char *new_buffer(void)
{
	char *p = mmap(NULL, PG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	memset(p, 0x55, PG); /* faulted in: pinned pages */
	return p;
}

/* Without a cache: registered once, the read lands in the old pages. */
static void hazard(char *(*change)(char *), const char *name)
{
	char *p = new_buffer();
	struct iovec iov = { p, PG };

	assert_int_equal(io_uring_register_buffers(&ring, &iov, 1), 0);
	p = change(p);
	assert_int_equal(read_fixed(p, 0), (int)PG);
	assert_false(has_data((unsigned char *)p)); /* stale: the hazard */
	print_message("%s, no cache: the read landed in the old pages\n", name);
	assert_int_equal(io_uring_unregister_buffers(&ring), 0);
	munmap(p, PG);
}

static void wait_late(mn_rcache *c, uint64_t before, uint64_t t0, const char *name)
{
	struct mn_rcache_stats s = { .sz = sizeof(s) };

	for (int i = 0; i < 5000; i++) {
		mn_rcache_stats(c, &s);
		if (s.inval_late > before)
			break;
		nanosleep(&(struct timespec){ 0, 20000 }, NULL);
	}
	assert_true(s.inval_late > before);
	print_message("%s: invalidated by the late event within %.1f us of the munmap's return\n",
		      name, (now_ns() - t0) / 1e3);
}

/* With the cache: a get after the change registers the new pages. */
static void with_cache(mn_rcache *c, char *(*change)(char *), const char *name,
		       bool late)
{
	struct mn_rcache_region *r;
	struct mn_rcache_stats s = { .sz = sizeof(s) };
	char *p = new_buffer();

	assert_int_equal(mn_rcache_get(c, p, PG, PROT_READ | PROT_WRITE, &r), 0);
	assert_int_equal(mn_rcache_put(c, r), 0);
	mn_rcache_stats(c, &s);
	p = change(p);
	if (late)
		wait_late(c, s.inval_late, t_raw, name);
	assert_int_equal(mn_rcache_get(c, p, PG, PROT_READ | PROT_WRITE, &r), 0);
	assert_int_equal(read_fixed(p, (unsigned int)(uintptr_t)r->handle - 1), (int)PG);
	assert_true(has_data((unsigned char *)p));
	assert_int_equal(mn_rcache_put(c, r), 0);
	munmap(p, PG);
}

static void test_paths(void **state)
{
	struct mn_rcache_opts o = { .sz = sizeof(o), .reg = reg, .dereg = dereg };
	struct mn_capability cap = { .sz = sizeof(cap) };
	mn_rcache *c;

	(void)state;
	hazard(ch_munmap, "munmap");
	hazard(ch_mremap, "mremap");
	hazard(ch_madvise, "madvise(MADV_DONTNEED)");
	hazard(ch_raw_munmap, "syscall(SYS_munmap)");
	assert_int_equal(io_uring_register_buffers_sparse(&ring, SLOTS), 0);
	assert_int_equal(mn_rcache_create(&o, &c), 0);
	with_cache(c, ch_munmap, "munmap", false);
	with_cache(c, ch_mremap, "mremap", false);
	with_cache(c, ch_madvise, "madvise(MADV_DONTNEED)", false);
	mn_capability(MN_CAP_USERFAULTFD, &cap);
	if (cap.supported)
		with_cache(c, ch_raw_munmap, "syscall(SYS_munmap)", true);
	else
		print_message("raw syscall part skipped: %s\n", cap.detail);
	assert_int_equal(mn_rcache_destroy(c), 0);
	assert_int_equal(io_uring_unregister_buffers(&ring), 0);
}

/* free() of a large block and a new block at the same address (the
   mmap threshold fixed, so both are mappings of their own). */
static void test_free_large_block(void **state)
{
	struct mn_rcache_opts o = { .sz = sizeof(o), .reg = reg, .dereg = dereg };
	struct mn_rcache_region *r;
	mn_rcache *c;
	uintptr_t was;
	char *p, *q;

	(void)state;
	/* No cache: registered once, freed, allocated again. */
	p = malloc(BIG);
	assert_non_null(p);
	memset(p, 0x55, BIG);
	struct iovec iov = { p, BIG };
	assert_int_equal(io_uring_register_buffers(&ring, &iov, 1), 0);
	was = (uintptr_t)p;
	free(p);
	q = malloc(BIG);
	assert_non_null(q);
	memset(q, 0, BIG);
	if ((uintptr_t)q == was) {
		assert_int_equal(read_fixed(q, 0), (int)PG);
		assert_false(has_data((unsigned char *)q));
		print_message("free(), no cache: the read landed in the old pages\n");
	} else {
		print_message("free(): the new block is elsewhere: no hazard to show\n");
	}
	free(q);
	assert_int_equal(io_uring_unregister_buffers(&ring), 0);

	/* With the cache. */
	assert_int_equal(io_uring_register_buffers_sparse(&ring, SLOTS), 0);
	assert_int_equal(mn_rcache_create(&o, &c), 0);
	p = malloc(BIG);
	assert_non_null(p);
	memset(p, 0x55, BIG);
	assert_int_equal(mn_rcache_get(c, p, BIG, PROT_READ | PROT_WRITE, &r), 0);
	assert_int_equal(mn_rcache_put(c, r), 0);
	was = (uintptr_t)p;
	free(p);
	q = malloc(BIG);
	assert_non_null(q);
	memset(q, 0, BIG);
	assert_int_equal(mn_rcache_get(c, q, BIG, PROT_READ | PROT_WRITE, &r), 0);
	assert_int_equal(read_fixed(q, (unsigned int)(uintptr_t)r->handle - 1), (int)PG);
	assert_true(has_data((unsigned char *)q));
	print_message("free(), with the cache: read correct (same address: %s)\n",
		      (uintptr_t)q == was ? "yes" : "no");
	assert_int_equal(mn_rcache_put(c, r), 0);
	free(q);
	assert_int_equal(mn_rcache_destroy(c), 0);
	assert_int_equal(io_uring_unregister_buffers(&ring), 0);
}

static int setup(void **state)
{
	char path[] = "/tmp/mn_rcache_uringXXXXXX";
	unsigned char data[PG];
	int err;

	(void)state;
	mallopt(M_MMAP_THRESHOLD, 128 * 1024); /* fixed: big blocks are mmapped */
	err = io_uring_queue_init(8, &ring, 0);
	if (err < 0) {
		print_message("skipped: io_uring_queue_init: %s\n", strerror(-err));
		return -1;
	}
	file_fd = mkstemp(path);
	assert_true(file_fd >= 0);
	unlink(path);
	for (size_t i = 0; i < PG; i++)
		data[i] = (unsigned char)(i * 7 + 3);
	assert_int_equal(write(file_fd, data, PG), (ssize_t)PG);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_free_large_block),
	};

	if (setup(NULL) != 0)
		return 77;
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	io_uring_queue_exit(&ring);
	mn_shutdown();
	return rc;
}
