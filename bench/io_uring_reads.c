/* SPDX-License-Identifier: MIT */
/*
 * bench/io_uring_reads: reads per second of 64 KiB from a 16 MiB file in
 * the page cache, same run:
 *   read(2)          pread into one buffer
 *   fixed, no cache  IORING_OP_READ_FIXED, the buffer registered once (the
 *                    fastest, and stale if the buffer's memory changes)
 *   fixed + rcache   mn_rcache_get / READ_FIXED / mn_rcache_put per read
 *                    (examples/io_uring_cache.c's reader)
 */
#define IO_URING_CACHE_NO_MAIN
#include "../examples/io_uring_cache.c"

#include <time.h>

#define FILE_SIZE (16u << 20)
#define READS 20000
#define RCHUNK (64 * 1024)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static off_t offset(unsigned int *seed)
{
	return (off_t)((unsigned int)rand_r(seed) % (FILE_SIZE / RCHUNK)) * RCHUNK;
}

static int read_fixed_once(struct reader *rd, void *buf, off_t off)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&rd->ring);
	struct io_uring_cqe *cqe;
	int res;

	io_uring_prep_read_fixed(sqe, rd->fd, buf, RCHUNK, (__u64)off, 0);
	io_uring_submit(&rd->ring);
	res = io_uring_wait_cqe(&rd->ring, &cqe);
	if (!res) {
		res = cqe->res;
		io_uring_cqe_seen(&rd->ring, cqe);
	}
	return res;
}

int main(void)
{
	char path[] = "/tmp/mn_bench_uringXXXXXX", *buf;
	unsigned int seed = 7;
	struct reader rd;
	double plain, once, cached;
	uint64_t t;
	int fd = mkstemp(path);

	if (fd < 0 || ftruncate(fd, FILE_SIZE) != 0)
		return 1;
	buf = aligned_alloc(4096, RCHUNK);
	memset(buf, 1, RCHUNK);
	for (off_t o = 0; o < FILE_SIZE; o += RCHUNK)
		if (pwrite(fd, buf, RCHUNK, o) != RCHUNK)
			return 1;
	close(fd);
	if (reader_open(&rd, path) != 0) {
		printf("skip: io_uring is not available\n");
		unlink(path);
		return 77;
	}
	unlink(path);
	t = now_ns();
	for (int i = 0; i < READS; i++)
		if (pread(rd.fd, buf, RCHUNK, offset(&seed)) != RCHUNK)
			return 1;
	plain = READS / ((now_ns() - t) / 1e9);
	struct iovec iov = { buf, RCHUNK };
	__u64 tag = 0;
	io_uring_register_buffers_update_tag(&rd.ring, 0, &iov, &tag, 1);
	t = now_ns();
	for (int i = 0; i < READS; i++)
		if (read_fixed_once(&rd, buf, offset(&seed)) != RCHUNK)
			return 1;
	once = READS / ((now_ns() - t) / 1e9);
	iov.iov_base = NULL;
	iov.iov_len = 0;
	io_uring_register_buffers_update_tag(&rd.ring, 0, &iov, &tag, 1);
	t = now_ns();
	for (int i = 0; i < READS; i++)
		if (read_cached(&rd, buf, RCHUNK, offset(&seed)) != RCHUNK)
			return 1;
	cached = READS / ((now_ns() - t) / 1e9);
	printf("io_uring_reads: 64 KiB reads from the page cache, reads/s (higher is better)\n");
	printf("  read(2)           %10.0f  1.00\n", plain);
	printf("  fixed, no cache   %10.0f  %.2f\n", once, once / plain);
	printf("  fixed + mn_rcache %10.0f  %.2f (vs fixed, no cache: %.2f)\n", cached,
	       cached / plain, cached / once);
	reader_close(&rd);
	free(buf);
	return 0;
}
