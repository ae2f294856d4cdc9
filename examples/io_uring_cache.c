/*
 * Build: cc io_uring_cache.c $(pkg-config --cflags --libs memnotify) -luring -o io_uring_cache
 * Run:   ./io_uring_cache [FILE]
 *
 * A file reader that reads with io_uring's fixed buffers (IORING_OP_READ_
 * FIXED: no page pinning per read) and recycles its buffers through
 * malloc()/free(), as a program's allocator would.  Fixed buffers pin the
 * pages they were registered with: a buffer freed and allocated again at
 * the same address would have the kernel write into the old pages.
 * mn_rcache keeps the registrations right: a buffer whose memory changed
 * is registered again (io_uring_register_buffers_update_tag on a slot of a
 * sparse table) at its next use, the old slot is cleared once unused.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <memnotify.h>

#define SLOTS 64
#define CHUNK (256 * 1024) /* above malloc's first mmap threshold */

struct reader {
	struct io_uring ring;
	int fd;
	unsigned char used[SLOTS];
	mn_rcache *cache;
};

/* Register a region in a free slot of the sparse table. */
static int slot_register(void *ctx, struct mn_rcache_region *r)
{
	struct reader *rd = ctx;
	struct iovec iov = { (void *)(uintptr_t)r->start, r->end - r->start };
	__u64 tag = 0;

	for (unsigned int s = 0; s < SLOTS; s++) {
		if (rd->used[s])
			continue;
		int err = io_uring_register_buffers_update_tag(&rd->ring, s, &iov, &tag, 1);
		if (err < 0)
			return err;
		rd->used[s] = 1;
		r->handle = (void *)(uintptr_t)(s + 1);
		return 0;
	}
	return -ENOSPC; /* a real reader would size max_regions to SLOTS */
}

/* Clear the slot: the kernel drops its pin of the old pages. */
static void slot_deregister(void *ctx, struct mn_rcache_region *r)
{
	struct reader *rd = ctx;
	unsigned int s = (unsigned int)(uintptr_t)r->handle - 1;
	struct iovec iov = { NULL, 0 };
	__u64 tag = 0;

	io_uring_register_buffers_update_tag(&rd->ring, s, &iov, &tag, 1);
	rd->used[s] = 0;
}

static int reader_open(struct reader *rd, const char *path)
{
	struct mn_rcache_opts o = MN_OPTS_INIT(mn_rcache_opts);
	int err;

	memset(rd, 0, sizeof(*rd));
	rd->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (rd->fd < 0)
		return -errno;
	err = io_uring_queue_init(8, &rd->ring, 0);
	if (!err)
		err = io_uring_register_buffers_sparse(&rd->ring, SLOTS);
	if (err)
		return err;
	o.reg = slot_register;
	o.dereg = slot_deregister;
	o.ctx = rd;
	o.max_regions = SLOTS / 2; /* room for the ones invalid but in use */
	return mn_rcache_create(&o, &rd->cache);
}

/* One fixed-buffer read of @len bytes at @off into @buf, through the
   cache.  Returns the bytes read or a negative errno. */
static int read_cached(struct reader *rd, void *buf, size_t len, off_t off)
{
	struct mn_rcache_region *r;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int res = mn_rcache_get(rd->cache, buf, len, PROT_READ | PROT_WRITE, &r);

	if (res)
		return res;
	sqe = io_uring_get_sqe(&rd->ring);
	io_uring_prep_read_fixed(sqe, rd->fd, buf, (unsigned int)len, (__u64)off,
				 (int)(uintptr_t)r->handle - 1);
	io_uring_submit(&rd->ring);
	res = io_uring_wait_cqe(&rd->ring, &cqe);
	if (!res) {
		res = cqe->res;
		io_uring_cqe_seen(&rd->ring, cqe);
	}
	mn_rcache_put(rd->cache, r);
	return res;
}

static void reader_close(struct reader *rd)
{
	mn_rcache_destroy(rd->cache);
	io_uring_queue_exit(&rd->ring);
	close(rd->fd);
}

#ifndef IO_URING_CACHE_NO_MAIN
int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/proc/self/exe";
	struct reader rd;
	char *bufs[4] = { 0 }, json[1024];
	uint64_t sum = 0, total = 0;
	int err = reader_open(&rd, path);

	if (err) {
		fprintf(stderr, "io_uring_cache: %s: %s\n", path, strerror(-err));
		return 1;
	}
	for (off_t off = 0, i = 0;; off += CHUNK, i++) {
		char **b = &bufs[i % 4];
		if (i % 7 == 0) { /* the allocator recycles a buffer */
			free(*b);
			*b = NULL;
		}
		if (!*b && !(*b = malloc(CHUNK)))
			return 1;
		int n = read_cached(&rd, *b, CHUNK, off);
		if (n < 0) {
			fprintf(stderr, "io_uring_cache: read: %s\n", strerror(-n));
			return 1;
		}
		for (int k = 0; k < n; k++)
			sum = sum * 31 + (unsigned char)(*b)[k];
		total += (uint64_t)n;
		if (n < CHUNK)
			break;
	}
	/* Check: the same bytes through read(2). */
	uint64_t sum2 = 0, total2 = 0;
	char *plain = malloc(CHUNK);
	ssize_t n;
	while (plain && (n = pread(rd.fd, plain, CHUNK, (off_t)total2)) > 0) {
		for (ssize_t k = 0; k < n; k++)
			sum2 = sum2 * 31 + (unsigned char)plain[k];
		total2 += (uint64_t)n;
	}
	free(plain);
	if (sum2 != sum || total2 != total) {
		fprintf(stderr, "io_uring_cache: the fixed-buffer reads differ from read(2)\n");
		return 1;
	}
	mn_rcache_stats_json(rd.cache, json, sizeof(json));
	printf("%s: %llu bytes, checksum %016llx (as read(2))\ncache: %s\n", path,
	       (unsigned long long)total, (unsigned long long)sum, json);
	for (int i = 0; i < 4; i++)
		free(bufs[i]);
	reader_close(&rd);
	return 0;
}
#endif
