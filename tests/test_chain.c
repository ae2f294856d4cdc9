/* SPDX-License-Identifier: MIT */
/*
 * The callback chain (src/core/chain.c): order, removal from inside a walk,
 * and the promise of removal — once mn__chain_finish_remove() returns, the
 * node's callback is not running anywhere and never runs again — under
 * real concurrency.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/chain.h"
#include "core/core.h"

struct node {
	struct mn__chain_node n;
	int id;
	_Atomic int running;     /* invocations in progress */
	_Atomic long calls;
	_Atomic int released;
	_Atomic int removed;     /* set once removal has returned */
};

static void release_node(struct mn__chain_node *n)
{
	struct node *x = (struct node *)n;
	atomic_store(&x->released, 1);
}

static void node_init(struct node *x, int id)
{
	memset(x, 0, sizeof(*x));
	x->id = id;
	x->n.release = release_node;
}

static void add(struct mn__chain *c, struct node *x)
{
	struct mn__chain_removal rm;

	mn__lock();
	assert_int_equal(mn__chain_add(c, &x->n, &rm), 0);
	mn__unlock();
	mn__chain_finish_remove(c, &rm);
}

static int removal(struct mn__chain *c, struct node *x)
{
	struct mn__chain_removal rm;
	int err;

	mn__lock();
	err = mn__chain_unlink(c, &x->n, &rm);
	mn__unlock();
	if (!err)
		mn__chain_finish_remove(c, &rm);
	return err;
}

static void init_chain(struct mn__chain *c, enum mn__chain_order o)
{
	mn__lock();
	mn__chain_init(c, o);
	mn__unlock();
}

static int walk_ids(struct mn__chain *c, int *ids, int max)
{
	struct mn__chain_reader rd;
	struct mn__chain_node *n;
	int k = 0;

	mn__chain_walk_begin(c, &rd);
	while ((n = mn__chain_walk_next(&rd)) && k < max)
		ids[k++] = ((struct node *)n)->id;
	mn__chain_walk_end(&rd);
	return k;
}

static void test_order(void **state)
{
	struct mn__chain fifo, lifo;
	struct node a, b, c;
	int ids[8];

	(void)state;
	init_chain(&fifo, MN__CHAIN_OLDEST_FIRST);
	init_chain(&lifo, MN__CHAIN_NEWEST_FIRST);
	node_init(&a, 1);
	node_init(&b, 2);
	node_init(&c, 3);
	add(&fifo, &a);
	add(&fifo, &b);
	add(&fifo, &c);
	assert_int_equal(walk_ids(&fifo, ids, 8), 3);
	assert_int_equal(ids[0], 1);
	assert_int_equal(ids[1], 2);
	assert_int_equal(ids[2], 3);
	assert_int_equal(removal(&fifo, &b), 0);
	assert_int_equal(walk_ids(&fifo, ids, 8), 2);
	assert_int_equal(ids[1], 3);
	/* Removing twice is -ENOENT; adding twice is -EEXIST. */
	assert_int_equal(removal(&fifo, &b), -ENOENT);
	{
		struct mn__chain_removal rm;
		mn__lock();
		assert_int_equal(mn__chain_add(&fifo, &a.n, &rm), -EEXIST);
		mn__unlock();
	}
	/* Two of three removed: the compaction frees them. */
	assert_int_equal(removal(&fifo, &a), 0);
	assert_true(atomic_load(&b.released));
	assert_true(atomic_load(&a.released));
	assert_int_equal(removal(&fifo, &c), 0);
	assert_true(atomic_load(&c.released));
	assert_int_equal(mn__chain_count(&fifo), 0);
	mn__chain_destroy(&fifo);

	node_init(&a, 1);
	node_init(&b, 2);
	node_init(&c, 3);
	add(&lifo, &a);
	add(&lifo, &b);
	add(&lifo, &c);
	assert_int_equal(walk_ids(&lifo, ids, 8), 3);
	assert_int_equal(ids[0], 3);
	assert_int_equal(ids[1], 2);
	assert_int_equal(ids[2], 1);
	removal(&lifo, &a);
	removal(&lifo, &b);
	removal(&lifo, &c);
	mn__chain_destroy(&lifo);
}

/*
 * Adding and removing cost O(1) amortised: 4,096 adds and as many removals
 * replace the snapshot only a logarithmic number of times (the old design
 * copied it on every call, 8,192 times).
 */
static void test_amortised(void **state)
{
	enum { N = 4096 };
	static struct node nodes[N];
	struct mn__chain c;
	struct mn__chain_snap *last = NULL;
	int replaced = 0, ids[4];

	(void)state;
	init_chain(&c, MN__CHAIN_OLDEST_FIRST);
	for (int i = 0; i < N; i++) {
		node_init(&nodes[i], i);
		add(&c, &nodes[i]);
		if (atomic_load(&c.snap) != last)
			replaced++, last = atomic_load(&c.snap);
	}
	assert_int_equal(mn__chain_count(&c), N);
	assert_true(replaced <= 16);
	assert_int_equal(walk_ids(&c, ids, 4), 4);
	assert_int_equal(ids[3], 3);
	replaced = 0;
	for (int i = 0; i < N; i++) {
		assert_int_equal(removal(&c, &nodes[i]), 0);
		if (atomic_load(&c.snap) != last)
			replaced++, last = atomic_load(&c.snap);
	}
	assert_true(replaced <= 16);
	assert_null(atomic_load(&c.snap));
	for (int i = 0; i < N; i++)
		assert_true(atomic_load(&nodes[i].released));
	mn__chain_destroy(&c);
}

/*
 * A removed node stays its remover's until mn__chain_finish_remove(): a
 * compaction by another writer in between drops it from the snapshot but
 * does not free it (the remover may still wait on it), and the remover
 * frees it when it finishes.
 */
static void test_handover(void **state)
{
	struct mn__chain c;
	struct node a, b, d;
	struct mn__chain_removal rm_a;

	(void)state;
	init_chain(&c, MN__CHAIN_OLDEST_FIRST);
	node_init(&a, 1);
	node_init(&b, 2);
	node_init(&d, 3);
	add(&c, &a);
	add(&c, &b);
	add(&c, &d);
	mn__lock();
	assert_int_equal(mn__chain_unlink(&c, &a.n, &rm_a), 0);
	mn__unlock();
	/* Two of three removed: this compaction drops a and b. */
	assert_int_equal(removal(&c, &b), 0);
	assert_true(atomic_load(&b.released));
	assert_false(atomic_load(&a.released));
	assert_int_equal(walk_ids(&c, (int[4]){ 0 }, 4), 1);
	mn__chain_finish_remove(&c, &rm_a);
	assert_true(atomic_load(&a.released));
	assert_int_equal(removal(&c, &d), 0);
	mn__chain_destroy(&c);
}

/* A node removes itself, and a later node, from inside the walk. */
static void test_remove_inside_walk(void **state)
{
	struct mn__chain c;
	struct node a, b, d;
	struct mn__chain_reader rd;
	struct mn__chain_node *n;
	int seen = 0;

	(void)state;
	init_chain(&c, MN__CHAIN_OLDEST_FIRST);
	node_init(&a, 1);
	node_init(&b, 2);
	node_init(&d, 3);
	add(&c, &a);
	add(&c, &b);
	add(&c, &d);

	mn__chain_walk_begin(&c, &rd);
	while ((n = mn__chain_walk_next(&rd))) {
		struct node *x = (struct node *)n;
		seen |= 1 << x->id;
		if (x->id == 1) {
			assert_true(mn__chain_in_walk(&c));
			/* Would deadlock if it waited for its own walk. */
			assert_int_equal(removal(&c, &a), 0);
			assert_int_equal(removal(&c, &b), 0);
			/* Memory still in use by this walk is not freed. */
			assert_false(atomic_load(&a.released));
			assert_false(atomic_load(&b.released));
		}
	}
	mn__chain_walk_end(&rd);
	/* b was removed before the walk reached it: never called. */
	assert_int_equal(seen, (1 << 1) | (1 << 3));
	assert_false(mn__chain_in_walk(&c));
	mn__chain_reclaim(&c);
	assert_true(atomic_load(&a.released));
	assert_true(atomic_load(&b.released));
	assert_int_equal(walk_ids(&c, (int[8]){ 0 }, 8), 1);
	removal(&c, &d);
	mn__chain_destroy(&c);
}

/*
 * Readers walk continuously on several threads while the main thread adds
 * and removes nodes.  After removal returns, no call of that node may be
 * in progress or begin.
 */
#define N_READERS 2
#define N_NODES 8
#define ROUNDS 150

static struct mn__chain stress_chain;
static _Atomic int stop_readers;
static _Atomic long total_walks;
static _Atomic long late_calls; /* calls that began after removal returned */
/* Per node id, outside the node (which a compaction may free): calls in
   progress, and whether its removal has returned. */
static _Atomic int running_of[2 * ROUNDS];
static _Atomic int removed_of[2 * ROUNDS];

static void *reader(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop_readers)) {
		struct mn__chain_reader rd;
		struct mn__chain_node *n;

		mn__chain_walk_begin(&stress_chain, &rd);
		while ((n = mn__chain_walk_next(&rd))) {
			int id = ((struct node *)n)->id;
			if (atomic_load(&removed_of[id]))
				atomic_fetch_add(&late_calls, 1);
			atomic_fetch_add(&running_of[id], 1);
			for (volatile int spin = 0; spin < 200; spin++)
				;
			atomic_fetch_sub(&running_of[id], 1);
		}
		mn__chain_walk_end(&rd);
		atomic_fetch_add(&total_walks, 1);
	}
	return NULL;
}

/* Two writers add and remove at once (their grace periods overlap, with
   epoch flips interleaved) while readers walk.  Nodes are on the heap:
   a removed node is freed by whichever compaction drops it, maybe the
   other writer's, and never while its remover still uses it. */
struct writer_arg {
	int base; /* its node ids are base + round */
	struct node *nodes[N_NODES];
	_Atomic int failures;
};

static _Atomic long heap_released;

static void release_heap(struct mn__chain_node *n)
{
	atomic_fetch_add(&heap_released, 1);
	free(n);
}

static struct node *heap_node(int id)
{
	struct node *x = malloc(sizeof(*x));

	if (!x)
		abort();
	node_init(x, id);
	x->n.release = release_heap;
	return x;
}

static void *writer(void *arg)
{
	struct writer_arg *w = arg;

	for (int r = 0; r < ROUNDS; r++) {
		struct node *x = w->nodes[r % N_NODES] = heap_node(w->base + r);
		add(&stress_chain, x);
		if (r % 16 == 0)
			usleep(200);
		if (r >= N_NODES / 2) {
			int k = (r - N_NODES / 2) % N_NODES;
			struct node *old = w->nodes[k];
			int id = old->id;
			struct mn__chain_removal rm;
			mn__lock();
			if (mn__chain_unlink(&stress_chain, &old->n, &rm) != 0)
				atomic_fetch_add(&w->failures, 1);
			mn__unlock();
			/* Still ours until finished, whatever the other writer
			   compacts (ASan sees a use after free here). */
			atomic_fetch_add(&old->calls, 1);
			mn__chain_finish_remove(&stress_chain, &rm);
			w->nodes[k] = NULL;
			/* The promise: not running now, never again. */
			atomic_store(&removed_of[id], 1);
			if (atomic_load(&running_of[id]) != 0)
				atomic_fetch_add(&w->failures, 1);
		}
	}
	for (int i = 0; i < N_NODES; i++)
		if (w->nodes[i] && removal(&stress_chain, w->nodes[i]) != 0)
			atomic_fetch_add(&w->failures, 1);
	return NULL;
}

static void test_concurrent_removal(void **state)
{
	static struct writer_arg wa[2];
	pthread_t th[N_READERS], wt[2];

	(void)state;
	init_chain(&stress_chain, MN__CHAIN_OLDEST_FIRST);
	for (int i = 0; i < N_READERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader, NULL), 0);
	for (int i = 0; i < 2; i++) {
		wa[i].base = i * ROUNDS;
		assert_int_equal(pthread_create(&wt[i], NULL, writer, &wa[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(wt[i], NULL);
	atomic_store(&stop_readers, 1);
	for (int i = 0; i < N_READERS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&wa[0].failures), 0);
	assert_int_equal(atomic_load(&wa[1].failures), 0);
	assert_int_equal(atomic_load(&late_calls), 0);
	assert_true(atomic_load(&total_walks) > 0);
	assert_int_equal(mn__chain_count(&stress_chain), 0);
	mn__chain_destroy(&stress_chain);
	/* Every node was freed, each once (ASan checks the once). */
	assert_int_equal(atomic_load(&heap_released), 2 * ROUNDS);
}

/* A walk in a fork child is not blocked by reader counts of threads that
   do not exist there. */
static int release_pipe[2];

static void *stuck_reader(void *arg)
{
	struct mn__chain_reader rd;
	char c;

	mn__chain_walk_begin(arg, &rd);
	/* Hold the walk until the parent lets go. */
	if (read(release_pipe[0], &c, 1) != 1)
		abort();
	mn__chain_walk_end(&rd);
	return NULL;
}

static void test_fork_resets_readers(void **state)
{
	static struct mn__chain c;
	static struct node a;
	pthread_t t;
	pid_t pid;
	int status;

	(void)state;
	assert_int_equal(pipe(release_pipe), 0);
	init_chain(&c, MN__CHAIN_OLDEST_FIRST);
	node_init(&a, 1);
	add(&c, &a);
	assert_int_equal(pthread_create(&t, NULL, stuck_reader, &c), 0);
	while (atomic_load(&c.readers[0]) + atomic_load(&c.readers[1]) == 0)
		usleep(100);
	pid = fork();
	if (pid == 0) {
		alarm(10); /* a hang is a failure, not a stuck test */
		_exit(removal(&c, &a) == 0 ? 0 : 1);
	}
	assert_true(waitpid(pid, &status, 0) == pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(write(release_pipe[1], "x", 1), 1);
	pthread_join(t, NULL);
	/* In the parent the walk has ended: removal completes here too. */
	assert_int_equal(removal(&c, &a), 0);
	mn__chain_destroy(&c);
	close(release_pipe[0]);
	close(release_pipe[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_amortised),
		cmocka_unit_test(test_handover),
		cmocka_unit_test(test_remove_inside_walk),
		cmocka_unit_test(test_concurrent_removal),
		cmocka_unit_test(test_fork_resets_readers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
