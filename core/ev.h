/*
 * ev.h - the reactor: one per shard, owned and run by that shard's thread.
 *
 * An API you can hold in your head (after Redis' ae.h): watch an fd, arm a
 * timer, defer a call to the end of this loop iteration, run, stop.
 * Watchers and timers are structs embedded in their owner (no allocation per
 * event); all calls on a loop are made from the thread that runs it, except
 * ev_loop_wake(). Cross-thread work goes through shard_post() (shard.h).
 *
 * Freeing: a callback must never free the object it runs inside while the
 * loop may still hold events for it. Use ev_defer() (or conn_close_later())
 * to free after the current batch of events.
 */
#ifndef PL_EV_H
#define PL_EV_H

#include <stdint.h>
#include <stdbool.h>

struct ev_loop;

enum { EV_READ = 1, EV_WRITE = 2 };

struct ev_io;
typedef void ev_io_fn(struct ev_loop *loop, struct ev_io *io, int events);

struct ev_io {
	int fd;
	int mask;        /* EV_READ | EV_WRITE currently watched */
	int active;      /* registered with the loop */
	ev_io_fn *cb;
	void *data;      /* free for the owner */
};

struct ev_timer;
typedef void ev_timer_fn(struct ev_loop *loop, struct ev_timer *t);

struct ev_timer {
	uint64_t when_ms;    /* absolute, pl_now_ms() clock */
	unsigned heap_index; /* 0 = not armed */
	ev_timer_fn *cb;
	void *data;
};

typedef void ev_defer_fn(void *arg);

struct ev_loop *ev_loop_new(void);
void ev_loop_free(struct ev_loop *loop);

/* fd watchers. ev_io_start with mask 0 is allowed (registered, idle). */
void ev_io_init(struct ev_io *io, int fd, ev_io_fn *cb, void *data);
int ev_io_start(struct ev_loop *loop, struct ev_io *io, int mask);
int ev_io_set(struct ev_loop *loop, struct ev_io *io, int mask);
void ev_io_stop(struct ev_loop *loop, struct ev_io *io);

/* Timers: a binary heap, O(log n) arm and cancel. */
void ev_timer_init(struct ev_timer *t, ev_timer_fn *cb, void *data);
void ev_timer_start(struct ev_loop *loop, struct ev_timer *t, uint64_t after_ms);
void ev_timer_stop(struct ev_loop *loop, struct ev_timer *t);
static inline bool ev_timer_active(const struct ev_timer *t) { return t->heap_index != 0; }

/* Run fn(arg) after the current batch of events (allocates a small node). */
void ev_defer(struct ev_loop *loop, ev_defer_fn *fn, void *arg);

/* Called every iteration before the loop sleeps (up to 8 hooks per loop). */

int ev_add_before_sleep(struct ev_loop *loop, ev_defer_fn *fn, void *arg);

/* Work an object wants done once before the loop next sleeps, embedded in
 * the object (no allocation): a connection's queued output is written once
 * per iteration, however many stanzas reached it in the batch. Pending
 * items run after the before-sleep hooks and once more when the loop stops;
 * an item added while they run is run in the same pass. */
struct ev_pending;
typedef void ev_pending_fn(struct ev_pending *p);
struct ev_pending {
	struct ev_pending *next, **pprev;   /* pprev NULL: not pending */
	ev_pending_fn *fn;
};
static inline void ev_pending_init(struct ev_pending *p, ev_pending_fn *fn)
{
	p->next = NULL;
	p->pprev = NULL;
	p->fn = fn;
}
static inline bool ev_pending_queued(const struct ev_pending *p) { return p->pprev != NULL; }
/* Queue p (no-op when already queued); O(1). */
void ev_pending_add(struct ev_loop *loop, struct ev_pending *p);
/* Unqueue p (no-op when not queued); O(1). */
void ev_pending_cancel(struct ev_pending *p);

/* Runs until ev_loop_stop(); returns 0. */
int ev_loop_run(struct ev_loop *loop);
void ev_loop_stop(struct ev_loop *loop);
/* Any thread: make a sleeping loop return from epoll_wait. */
void ev_loop_wake(struct ev_loop *loop);
/* Cached time of the current iteration (cheaper than pl_now_ms()). */
uint64_t ev_now(struct ev_loop *loop);

#endif
