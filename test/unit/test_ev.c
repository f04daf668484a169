/* Unit tests of the reactor: timers, fd events, deferred calls. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/ev.h"
#include "core/pl.h"

struct order {
	int fired[16];
	int n;
};

struct tmr {
	struct ev_timer t;
	struct order *o;
	int id;
};

static void record_fire(struct ev_loop *loop, struct ev_timer *t)
{
	struct tmr *x = t->data;
	x->o->fired[x->o->n++] = x->id;
	if (x->o->n == 4)
		ev_loop_stop(loop);
}

static void timers_fire_in_deadline_order(void **state)
{
	(void)state;
	struct ev_loop *loop = ev_loop_new();
	struct order o = { .n = 0 };
	struct tmr t[5];
	const int delays[5] = { 30, 10, 20, 5, 15 };
	for (int i = 0; i < 5; i++) {
		t[i].o = &o;
		t[i].id = i;
		ev_timer_init(&t[i].t, record_fire, &t[i]);
		ev_timer_start(loop, &t[i].t, (uint64_t)delays[i]);
	}
	/* Cancelled timers never fire, whatever their position in the heap. */
	ev_timer_stop(loop, &t[4].t);
	assert_false(ev_timer_active(&t[4].t));
	uint64_t start = pl_now_ms();
	ev_loop_run(loop);
	assert_int_equal(o.n, 4);
	assert_int_equal(o.fired[0], 3);
	assert_int_equal(o.fired[1], 1);
	assert_int_equal(o.fired[2], 2);
	assert_int_equal(o.fired[3], 0);
	assert_true(pl_now_ms() - start >= 30);
	ev_loop_free(loop);
}

static int heap_count;
static uint64_t heap_last;
static int heap_ordered = 1;

static void heap_fire(struct ev_loop *loop, struct ev_timer *t)
{
	if (t->when_ms < heap_last)
		heap_ordered = 0;
	heap_last = t->when_ms;
	if (++heap_count == 500)
		ev_loop_stop(loop);
}

static void timers_many_random_with_cancels(void **state)
{
	(void)state;
	struct ev_loop *loop = ev_loop_new();
	static struct ev_timer t[1000];
	srand(7);
	for (int i = 0; i < 1000; i++) {
		ev_timer_init(&t[i], heap_fire, NULL);
		ev_timer_start(loop, &t[i], (uint64_t)(rand() % 40));
	}
	for (int i = 0; i < 1000; i += 2)
		ev_timer_stop(loop, &t[i]);
	ev_loop_run(loop);
	assert_int_equal(heap_count, 500);
	assert_true(heap_ordered);
	ev_loop_free(loop);
}

struct rd {
	struct ev_io io;
	char got[64];
	size_t n;
};

static void on_readable(struct ev_loop *loop, struct ev_io *io, int events)
{
	struct rd *r = io->data;
	assert_true(events & EV_READ);
	ssize_t n = read(io->fd, r->got + r->n, sizeof(r->got) - r->n);
	if (n > 0)
		r->n += (size_t)n;
	if (r->n >= 5)
		ev_loop_stop(loop);
}

static void fd_read_event_delivers_data(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	struct ev_loop *loop = ev_loop_new();
	struct rd r = { .n = 0 };
	ev_io_init(&r.io, sv[0], on_readable, &r);
	assert_int_equal(ev_io_start(loop, &r.io, EV_READ), PL_OK);
	assert_int_equal(write(sv[1], "hello", 5), 5);
	ev_loop_run(loop);
	assert_int_equal(r.n, 5);
	assert_memory_equal(r.got, "hello", 5);
	ev_io_stop(loop, &r.io);
	close(sv[0]);
	close(sv[1]);
	ev_loop_free(loop);
}

struct pair {
	struct ev_io a, b;
	int a_calls, b_calls;
};

/* a stops b inside the same batch: b's pending event must not be delivered. */
static void stop_other(struct ev_loop *loop, struct ev_io *io, int events)
{
	(void)events;
	struct pair *p = io->data;
	if (io == &p->a) {
		p->a_calls++;
		ev_io_stop(loop, &p->b);
	} else {
		p->b_calls++;
		ev_io_stop(loop, &p->a);
	}
	ev_loop_stop(loop);
}

static void fd_stopped_in_batch_gets_no_stale_event(void **state)
{
	(void)state;
	int s1[2], s2[2];
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s1);
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s2);
	struct ev_loop *loop = ev_loop_new();
	struct pair p = { .a_calls = 0 };
	ev_io_init(&p.a, s1[0], stop_other, &p);
	ev_io_init(&p.b, s2[0], stop_other, &p);
	ev_io_start(loop, &p.a, EV_READ);
	ev_io_start(loop, &p.b, EV_READ);
	assert_int_equal(write(s1[1], "x", 1), 1);
	assert_int_equal(write(s2[1], "y", 1), 1);
	ev_loop_run(loop);
	assert_int_equal(p.a_calls + p.b_calls, 1);
	close(s1[0]); close(s1[1]); close(s2[0]); close(s2[1]);
	ev_loop_free(loop);
}

static void on_hup_idle(struct ev_loop *loop, struct ev_io *io, int events)
{
	int *hits = io->data;
	(*hits)++;
	assert_true(events & EV_READ);
	ev_io_stop(loop, io);
	ev_loop_stop(loop);
}

static void fd_idle_watcher_hears_hangup(void **state)
{
	(void)state;
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
	struct ev_loop *loop = ev_loop_new();
	int hits = 0;
	struct ev_io io;
	ev_io_init(&io, sv[0], on_hup_idle, &hits);
	ev_io_start(loop, &io, 0);
	close(sv[1]);
	ev_loop_run(loop);
	assert_int_equal(hits, 1);
	close(sv[0]);
	ev_loop_free(loop);
}

static int defer_log[4];
static int defer_n;

static void deferred(void *arg)
{
	defer_log[defer_n++] = (int)(intptr_t)arg;
}

static void deferred_stop(void *arg)
{
	ev_loop_stop(arg);
}

static void defer_runs_after_batch_in_order(void **state)
{
	(void)state;
	struct ev_loop *loop = ev_loop_new();
	defer_n = 0;
	ev_defer(loop, deferred, (void *)1);
	ev_defer(loop, deferred, (void *)2);
	ev_defer(loop, deferred, (void *)3);
	ev_defer(loop, deferred_stop, loop);
	ev_loop_run(loop);
	assert_int_equal(defer_n, 3);
	assert_int_equal(defer_log[0], 1);
	assert_int_equal(defer_log[2], 3);
	ev_loop_free(loop);
}

static int hook_calls;

static void hook(void *arg)
{
	if (++hook_calls == 3)
		ev_loop_stop(arg);
	else
		ev_loop_wake(arg);
}

static void before_sleep_hooks_run_each_iteration(void **state)
{
	(void)state;
	struct ev_loop *loop = ev_loop_new();
	hook_calls = 0;
	assert_int_equal(ev_add_before_sleep(loop, hook, loop), PL_OK);
	ev_loop_run(loop);
	assert_int_equal(hook_calls, 3);
	ev_loop_free(loop);
}

/* ---- pending items ---- */

struct item {
	struct ev_pending p;
	struct ev_loop *loop;
	int runs;
	int requeue;      /* times it queues itself again from its own call */
};

static struct item items[3];
static int pending_order[8], npending_order;

static void item_run(struct ev_pending *p)
{
	struct item *it = PL_CONTAINER_OF(p, struct item, p);
	assert_false(ev_pending_queued(p));   /* unlinked before the call */
	it->runs++;
	pending_order[npending_order++] = (int)(it - items);
	if (it->requeue-- > 0)
		ev_pending_add(it->loop, p);
}

static void stop_loop(struct ev_loop *loop, struct ev_timer *t)
{
	if (t->data)
		ev_pending_add(loop, t->data);
	ev_loop_stop(loop);
}

static void pending_items_run_once_before_sleep_and_can_be_cancelled(void **state)
{
	(void)state;
	struct ev_loop *loop = ev_loop_new();
	memset(items, 0, sizeof(items));
	npending_order = 0;
	for (int i = 0; i < 3; i++) {
		ev_pending_init(&items[i].p, item_run);
		items[i].loop = loop;
	}
	items[2].requeue = 1;
	ev_pending_add(loop, &items[0].p);
	ev_pending_add(loop, &items[0].p);   /* already queued: no second run */
	ev_pending_add(loop, &items[1].p);
	ev_pending_add(loop, &items[2].p);
	assert_true(ev_pending_queued(&items[1].p));
	ev_pending_cancel(&items[1].p);
	ev_pending_cancel(&items[1].p);      /* not queued: a no-op */
	assert_false(ev_pending_queued(&items[1].p));
	struct ev_timer t;
	ev_timer_init(&t, stop_loop, NULL);
	ev_timer_start(loop, &t, 5);
	ev_loop_run(loop);
	assert_int_equal(items[0].runs, 1);
	assert_int_equal(items[1].runs, 0);
	assert_int_equal(items[2].runs, 2);   /* queued again from its call: same pass */
	assert_int_equal(npending_order, 3);
	/* Queued by the call that stops the loop: still run on the way out. */
	t.data = &items[1].p;
	ev_timer_start(loop, &t, 0);
	ev_loop_run(loop);
	assert_int_equal(items[1].runs, 1);
	ev_loop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(timers_fire_in_deadline_order),
		cmocka_unit_test(timers_many_random_with_cancels),
		cmocka_unit_test(fd_read_event_delivers_data),
		cmocka_unit_test(fd_stopped_in_batch_gets_no_stale_event),
		cmocka_unit_test(fd_idle_watcher_hears_hangup),
		cmocka_unit_test(defer_runs_after_batch_in_order),
		cmocka_unit_test(before_sleep_hooks_run_each_iteration),
		cmocka_unit_test(pending_items_run_once_before_sleep_and_can_be_cancelled),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
