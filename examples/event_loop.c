/*
 * Build: cc event_loop.c $(pkg-config --cflags --libs memnotify) -o event_loop
 *
 * Drive memnotify from your own poll() loop instead of its thread (the
 * libuv / sd-event integration): callbacks then run on this thread, inside
 * mn_dispatch().
 */
#include <poll.h>
#include <stdio.h>

#include <memnotify.h>

static void on_level(const struct mn_memory_status *st, void *ctx)
{
	int *changes = (int *)ctx; /* a cast, so the file also builds as C++ */

	(*changes)++;
	printf("memory level: %s (%u%% load)\n", mn_memory_level_name(st->level),
	       st->load_percent);
}

int main(void)
{
	struct mn_dispatch_opts d = MN_OPTS_INIT(mn_dispatch_opts);

	d.mode = MN_DISPATCH_EXTERNAL;
	int changes = 0, err;
	mn_sub *sub;

	if ((err = mn_dispatch_configure(&d)) ||
	    (err = mn_memory_subscribe(NULL, on_level, &changes, &sub))) {
		fprintf(stderr, "memnotify: %s\n", mn_strerror(err));
		return 1;
	}
	struct pollfd pfd = { .fd = mn_dispatch_fd(), .events = POLLIN, .revents = 0 };
	/* Ten seconds of your loop; memnotify's fd is one among yours. */
	for (int i = 0; i < 10; i++)
		if (poll(&pfd, 1, 1000) > 0)
			mn_dispatch(0);
	mn_unsubscribe(sub);
	mn_shutdown();
	return changes > 0 ? 0 : 1; /* at least the first status arrived */
}
