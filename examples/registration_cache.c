/*
 * Build: cc registration_cache.c $(pkg-config --cflags --libs memnotify) -o registration_cache
 *
 * An RDMA-style registration cache in miniature: each cached buffer is
 * watched, and its entry is dropped the moment any part of it is freed,
 * moved, discarded or re-protected — before the memory goes, in the thread
 * that frees it (AddSecureMemoryCacheCallback, on Linux).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memnotify.h>

struct entry {
	void *addr;
	size_t len;
	_Atomic int valid; /* what a real cache would check before use */
	mn_sub *watch;
};

/* Synchronous context (maybe a signal handler): only atomics here. */
static void invalidate(const struct mn_vm_event *ev, void *ctx)
{
	struct entry *e = ctx;

	(void)ev;
	atomic_store(&e->valid, 0);
}

int main(void)
{
	struct entry e = { .len = 8 << 20 };
	int err;

	e.addr = malloc(e.len); /* big enough for its own mapping */
	memset(e.addr, 0, e.len);
	atomic_store(&e.valid, 1); /* "registered with the device" */
	err = mn_vm_watch(e.addr, e.len, 0, invalidate, &e, &e.watch);
	if (err) {
		fprintf(stderr, "mn_vm_watch: %s\n", mn_strerror(err));
		return 1;
	}
	printf("entry valid: %d\n", atomic_load(&e.valid));
	free(e.addr); /* glibc unmaps it: the callback runs first */
	printf("after free(): entry valid: %d\n", atomic_load(&e.valid));
	mn_unsubscribe(e.watch);
	return atomic_load(&e.valid) == 0 ? 0 : 1;
}
