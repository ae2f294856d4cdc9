/* SPDX-License-Identifier: MIT */
/*
 * mn_vm_levelwatch MODE CGROUP SECONDS - one memory subscription with only
 * some mechanisms, for test_cgroup_v2.sh to check each one's contribution.
 *   MODE    all (the defaults), events (cgroup events only), psi (PSI
 *           trigger only), poll (sampling only)
 *   CGROUP  the group's directory, or "-" for the own group
 *   SECONDS 0: print the first delivery and exit 0; else wait up to SECONDS
 *           for a delivery with level low and exit 0, or exit 1.
 * Each delivery: "reason R level L mechanism M active A,B limit BYTES".
 * MEMNOTIFY_LOG=info shows the library's log on stderr.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memnotify.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int deliveries, low;

static void on_level(const struct mn_memory_status *st, void *ctx)
{
	(void)ctx;
	printf("reason %d level %s mechanism %s active", st->reason,
	       mn_memory_level_name(st->level),
	       mn_memory_mechanism_name(st->mechanism));
	for (unsigned int b = 1; b <= st->mechanisms_active; b <<= 1)
		if (st->mechanisms_active & b)
			printf(" %s", mn_memory_mechanism_name(b));
	printf(" limit %llu\n", (unsigned long long)st->limit_bytes);
	fflush(stdout);
	pthread_mutex_lock(&mu);
	deliveries++;
	if (st->level == MN_MEMORY_LOW)
		low = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void to_stderr(enum mn_log_level l, const char *msg, void *ctx)
{
	(void)l; (void)ctx;
	fprintf(stderr, "log: %s\n", msg);
}

int main(int argc, char **argv)
{
	MN_OPTS(mn_memory_opts, o);
	struct timespec ts;
	mn_sub *sub;
	int err, ok;

	if (argc != 4)
		return 2;
	mn_set_log(to_stderr, NULL);
	if (!strcmp(argv[1], "events"))
		o.flags = MN_MEMORY_NO_PSI | MN_MEMORY_NO_POLL;
	else if (!strcmp(argv[1], "psi"))
		o.flags = MN_MEMORY_PSI_ONLY;
	else if (!strcmp(argv[1], "poll"))
		o.flags = MN_MEMORY_NO_PSI | MN_MEMORY_NO_EVENTS;
	else if (strcmp(argv[1], "all"))
		return 2;
	o.cgroup = strcmp(argv[2], "-") ? argv[2] : NULL;
	err = mn_memory_subscribe(&o, on_level, NULL, &sub);
	if (err) {
		printf("subscribe: %s\n", mn_strerror(err));
		return 3;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += atoi(argv[3]) ? atoi(argv[3]) : 10;
	pthread_mutex_lock(&mu);
	while (atoi(argv[3]) ? !low : !deliveries)
		if (pthread_cond_timedwait(&cv, &mu, &ts))
			break;
	ok = atoi(argv[3]) ? low : deliveries;
	pthread_mutex_unlock(&mu);
	mn_unsubscribe(sub);
	return ok ? 0 : 1;
}
