/* Unit tests of shards: cross-shard posting under contention, ordering,
 * shard_call_all_sync and key placement. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/pl.h"
#include "core/shard.h"

#define PRODUCERS 4
#define PER_PRODUCER 50000

struct tally {
	uint64_t next_seq[PRODUCERS];
	uint64_t received;
	int out_of_order;
	int wrong_thread;
};

static struct tally tally;

struct item {
	int producer;
	uint64_t seq;
};

static void consume(void *arg)
{
	struct item *it = arg;
	if (shard_self() != shard_get(0))
		tally.wrong_thread++;
	if (tally.next_seq[it->producer] != it->seq)
		tally.out_of_order++;
	tally.next_seq[it->producer] = it->seq + 1;
	free(it);
	if (++tally.received == (uint64_t)PRODUCERS * PER_PRODUCER)
		shards_stop();
}

static void *producer(void *arg)
{
	int id = (int)(intptr_t)arg;
	for (uint64_t i = 0; i < PER_PRODUCER; i++) {
		struct item *it = pl_malloc(sizeof(*it));
		it->producer = id;
		it->seq = i;
		shard_post(0, consume, it);
	}
	return NULL;
}

static void mpsc_inbox_keeps_per_poster_order_under_contention(void **state)
{
	(void)state;
	memset(&tally, 0, sizeof(tally));
	assert_int_equal(shards_create(2), PL_OK);
	assert_int_equal(shards_start(), PL_OK);
	pthread_t th[PRODUCERS];
	for (int i = 0; i < PRODUCERS; i++)
		pthread_create(&th[i], NULL, producer, (void *)(intptr_t)i);
	shards_run();   /* returns after consume() saw everything */
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(tally.received, (uint64_t)PRODUCERS * PER_PRODUCER);
	assert_int_equal(tally.out_of_order, 0);
	assert_int_equal(tally.wrong_thread, 0);
	shards_destroy();
}

/* Messages ping-pong between shards: each hop runs on the right thread. */
struct ball {
	int hops;
	int bad;
	struct shard_msg msg;   /* embedded: posting allocates nothing */
};

static void bounce(void *arg)
{
	struct ball *b = arg;
	int here = shard_self()->id;
	if (here != b->hops % shards_count())
		b->bad++;
	if (++b->hops == 3000) {
		shards_stop();
		return;
	}
	b->msg.fn = bounce;
	b->msg.arg = b;
	b->msg.owned = 0;
	shard_post_msg(b->hops % shards_count(), &b->msg);
}

static void embedded_messages_hop_across_shards(void **state)
{
	(void)state;
	assert_int_equal(shards_create(3), PL_OK);
	assert_int_equal(shards_start(), PL_OK);
	struct ball b = { .hops = 0, .bad = 0 };
	shard_post(0, bounce, &b);
	shards_run();
	assert_int_equal(b.hops, 3000);
	assert_int_equal(b.bad, 0);
	shards_destroy();
}

static int seen[8];

static void mark(void *arg)
{
	(void)arg;
	seen[shard_self()->id]++;
}

static void stop_all(void *arg)
{
	(void)arg;
	shards_stop();
}

static void call_all_sync_runs_once_on_every_shard(void **state)
{
	(void)state;
	memset(seen, 0, sizeof(seen));
	assert_int_equal(shards_create(4), PL_OK);
	assert_int_equal(shards_start(), PL_OK);
	shard_call_all_sync(mark, NULL);
	for (int i = 0; i < 4; i++)
		assert_int_equal(seen[i], 1);
	shard_post(0, stop_all, NULL);
	shards_run();
	shards_destroy();
}

static void key_placement_is_stable_and_spread(void **state)
{
	(void)state;
	assert_int_equal(shards_create(4), PL_OK);
	int counts[4] = { 0 };
	char key[32];
	for (int i = 0; i < 4000; i++) {
		int n = snprintf(key, sizeof(key), "user%d@example.test", i);
		int a = shard_of_key(key, (size_t)n);
		assert_int_equal(a, shard_of_key(key, (size_t)n));
		assert_true(a >= 0 && a < 4);
		counts[a]++;
	}
	for (int i = 0; i < 4; i++)
		assert_true(counts[i] > 700);   /* roughly even: 1000 each */
	shards_destroy();
}

static void shard_count_out_of_range_is_refused(void **state)
{
	(void)state;
	assert_int_equal(shards_create(0), PL_ERR);
	assert_int_equal(shards_create(SHARD_MAX + 1), PL_ERR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(mpsc_inbox_keeps_per_poster_order_under_contention),
		cmocka_unit_test(embedded_messages_hop_across_shards),
		cmocka_unit_test(call_all_sync_runs_once_on_every_shard),
		cmocka_unit_test(key_placement_is_stable_and_spread),
		cmocka_unit_test(shard_count_out_of_range_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
