/*
 * Build: cc memory_levels.c $(pkg-config --cflags --libs memnotify) -o memory_levels
 *
 * Print every memory-level change of this process's memory cgroup (or the
 * machine) for 60 seconds: the EMemoryAvailable levels of
 * ICLRMemoryNotificationCallback::OnMemoryNotification, on Linux.
 */
#include <stdio.h>
#include <unistd.h>

#include <memnotify.h>

static void on_level(const struct mn_memory_status *st, void *ctx)
{
	(void)ctx;
	/* Thread context: a memnotify delivery thread.  Return promptly. */
	printf("%s -> %s: %llu MiB available of %llu MiB (load %u%%, via %s)\n",
	       mn_memory_level_name(st->previous_level),
	       mn_memory_level_name(st->level),
	       (unsigned long long)(st->available_bytes >> 20),
	       (unsigned long long)(st->limit_bytes >> 20), st->load_percent,
	       mn_memory_mechanism_name(st->mechanism));
	fflush(stdout);
}

int main(void)
{
	MN_OPTS(mn_memory_opts, opts, .low_percent = 10, .high_percent = 30);
	mn_sub *sub;
	int err = mn_memory_subscribe(&opts, on_level, NULL, &sub);

	if (err) {
		fprintf(stderr, "mn_memory_subscribe: %s\n", mn_strerror(err));
		return 1;
	}
	sleep(60);
	mn_unsubscribe(sub); /* returns once the callback can no longer run */
	mn_shutdown();
	return 0;
}
