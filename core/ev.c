/*
 * ev.c - the per-shard reactor: epoll, a binary timer heap, deferred calls.
 *
 * Watchers live in their owners; epoll's data.ptr points at the ev_io. A
 * watcher stopped during a batch keeps its memory until the batch ends
 * (owners free through ev_defer), and its mask is 0, so a stale event for it
 * later in the same batch is skipped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/ev.h"
#include "core/log.h"
#include "core/pl.h"

#define EV_BATCH 256
#define EV_MAX_HOOKS 8

struct ev_defer_node {
	struct ev_defer_node *next;
	ev_defer_fn *fn;
	void *arg;
};

struct ev_hook {
	ev_defer_fn *fn;
	void *arg;
};

struct ev_loop {
	int epfd;
	int wakefd;
	struct ev_io wake_io;
	int stop;
	uint64_t now;
	struct ev_timer **heap;    /* 1-based */
	unsigned heap_len, heap_cap;
	struct ev_defer_node *defer_head, *defer_tail;
	struct ev_hook hooks[EV_MAX_HOOKS];
	int nhooks;
	struct ev_pending *pending;
};

static void ev_wake_cb(struct ev_loop *loop, struct ev_io *io, int events)
{
	PL_UNUSED(loop);
	PL_UNUSED(events);
	uint64_t v;
	while (read(io->fd, &v, sizeof(v)) > 0)
		;
}

struct ev_loop *ev_loop_new(void)
{
	struct ev_loop *loop = pl_calloc(1, sizeof(*loop));
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	loop->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (loop->epfd < 0 || loop->wakefd < 0) {
		log_error("ev: cannot create epoll/eventfd: %s", strerror(errno));
		if (loop->epfd >= 0)
			close(loop->epfd);
		if (loop->wakefd >= 0)
			close(loop->wakefd);
		free(loop);
		return NULL;
	}
	loop->now = pl_now_ms();
	ev_io_init(&loop->wake_io, loop->wakefd, ev_wake_cb, NULL);
	ev_io_start(loop, &loop->wake_io, EV_READ);
	return loop;
}

static void ev_run_defers(struct ev_loop *loop)
{
	/* Calls deferred while running defers run in the same pass. */
	while (loop->defer_head) {
		struct ev_defer_node *d = loop->defer_head;
		loop->defer_head = d->next;
		if (!loop->defer_head)
			loop->defer_tail = NULL;
		d->fn(d->arg);
		free(d);
	}
}

void ev_loop_free(struct ev_loop *loop)
{
	if (!loop)
		return;
	ev_run_defers(loop);
	close(loop->epfd);
	close(loop->wakefd);
	free(loop->heap);
	free(loop);
}

void ev_io_init(struct ev_io *io, int fd, ev_io_fn *cb, void *data)
{
	io->fd = fd;
	io->mask = 0;
	io->active = 0;
	io->cb = cb;
	io->data = data;
}

static uint32_t ev_epoll_mask(int mask)
{
	uint32_t e = 0;
	if (mask & EV_READ)
		e |= EPOLLIN | EPOLLRDHUP;
	if (mask & EV_WRITE)
		e |= EPOLLOUT;
	return e;
}

int ev_io_start(struct ev_loop *loop, struct ev_io *io, int mask)
{
	struct epoll_event ee = { .events = ev_epoll_mask(mask), .data.ptr = io };
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, io->fd, &ee) < 0) {
		log_error("ev: epoll add fd %d: %s", io->fd, strerror(errno));
		return PL_ERR;
	}
	io->mask = mask;
	io->active = 1;
	return PL_OK;
}

int ev_io_set(struct ev_loop *loop, struct ev_io *io, int mask)
{
	if (io->mask == mask)
		return PL_OK;
	struct epoll_event ee = { .events = ev_epoll_mask(mask), .data.ptr = io };
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ee) < 0) {
		log_error("ev: epoll mod fd %d: %s", io->fd, strerror(errno));
		return PL_ERR;
	}
	io->mask = mask;
	return PL_OK;
}

void ev_io_stop(struct ev_loop *loop, struct ev_io *io)
{
	if (io->active && io->fd >= 0)
		epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->mask = 0;
	io->active = 0;
}

/* ---- timers: binary min-heap on when_ms ---- */

void ev_timer_init(struct ev_timer *t, ev_timer_fn *cb, void *data)
{
	t->when_ms = 0;
	t->heap_index = 0;
	t->cb = cb;
	t->data = data;
}

static void heap_set(struct ev_loop *loop, unsigned i, struct ev_timer *t)
{
	loop->heap[i] = t;
	t->heap_index = i;
}

static void heap_up(struct ev_loop *loop, unsigned i)
{
	struct ev_timer *t = loop->heap[i];
	while (i > 1 && loop->heap[i / 2]->when_ms > t->when_ms) {
		heap_set(loop, i, loop->heap[i / 2]);
		i /= 2;
	}
	heap_set(loop, i, t);
}

static void heap_down(struct ev_loop *loop, unsigned i)
{
	struct ev_timer *t = loop->heap[i];
	for (;;) {
		unsigned c = i * 2;
		if (c > loop->heap_len)
			break;
		if (c + 1 <= loop->heap_len && loop->heap[c + 1]->when_ms < loop->heap[c]->when_ms)
			c++;
		if (loop->heap[c]->when_ms >= t->when_ms)
			break;
		heap_set(loop, i, loop->heap[c]);
		i = c;
	}
	heap_set(loop, i, t);
}

void ev_timer_start(struct ev_loop *loop, struct ev_timer *t, uint64_t after_ms)
{
	if (t->heap_index)
		ev_timer_stop(loop, t);
	t->when_ms = pl_now_ms() + after_ms;
	if (loop->heap_len + 1 >= loop->heap_cap) {
		loop->heap_cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
		loop->heap = pl_realloc(loop->heap, loop->heap_cap * sizeof(*loop->heap));
	}
	loop->heap_len++;
	loop->heap[loop->heap_len] = t;
	heap_up(loop, loop->heap_len);
}

void ev_timer_stop(struct ev_loop *loop, struct ev_timer *t)
{
	unsigned i = t->heap_index;
	if (!i)
		return;
	struct ev_timer *last = loop->heap[loop->heap_len--];
	t->heap_index = 0;
	if (last == t)
		return;
	heap_set(loop, i, last);
	if (i > 1 && loop->heap[i / 2]->when_ms > last->when_ms)
		heap_up(loop, i);
	else
		heap_down(loop, i);
}

static void ev_run_timers(struct ev_loop *loop)
{
	/* Bounded per iteration so a timer that re-arms at 0 ms cannot starve
	 * fd events. */
	unsigned budget = loop->heap_len + 1;
	while (loop->heap_len > 0 && budget-- > 0) {
		struct ev_timer *t = loop->heap[1];
		if (t->when_ms > loop->now)
			break;
		ev_timer_stop(loop, t);
		t->cb(loop, t);
	}
}

void ev_defer(struct ev_loop *loop, ev_defer_fn *fn, void *arg)
{
	struct ev_defer_node *d = pl_malloc(sizeof(*d));
	d->next = NULL;
	d->fn = fn;
	d->arg = arg;
	if (loop->defer_tail)
		loop->defer_tail->next = d;
	else
		loop->defer_head = d;
	loop->defer_tail = d;
}

int ev_add_before_sleep(struct ev_loop *loop, ev_defer_fn *fn, void *arg)
{
	if (loop->nhooks >= EV_MAX_HOOKS)
		return PL_ERR;
	loop->hooks[loop->nhooks].fn = fn;
	loop->hooks[loop->nhooks].arg = arg;
	loop->nhooks++;
	return PL_OK;
}

void ev_pending_add(struct ev_loop *loop, struct ev_pending *p)
{
	if (p->pprev)
		return;
	p->next = loop->pending;
	if (p->next)
		p->next->pprev = &p->next;
	loop->pending = p;
	p->pprev = &loop->pending;
}

void ev_pending_cancel(struct ev_pending *p)
{
	if (!p->pprev)
		return;
	*p->pprev = p->next;
	if (p->next)
		p->next->pprev = p->pprev;
	p->next = NULL;
	p->pprev = NULL;
}

static void ev_run_pending(struct ev_loop *loop)
{
	/* Unlinked before the call, so fn may queue p again or free it. */
	while (loop->pending) {
		struct ev_pending *p = loop->pending;
		ev_pending_cancel(p);
		p->fn(p);
	}
}

uint64_t ev_now(struct ev_loop *loop)
{
	return loop->now;
}

void ev_loop_stop(struct ev_loop *loop)
{
	loop->stop = 1;
	ev_loop_wake(loop);
}

void ev_loop_wake(struct ev_loop *loop)
{
	uint64_t one = 1;
	ssize_t w = write(loop->wakefd, &one, sizeof(one));
	(void)w;
}

static int ev_poll_timeout(struct ev_loop *loop)
{
	if (loop->defer_head)
		return 0;
	if (loop->heap_len == 0)
		return -1;
	uint64_t when = loop->heap[1]->when_ms;
	uint64_t now = pl_now_ms();
	if (when <= now)
		return 0;
	uint64_t d = when - now;
	return d > 60000 ? 60000 : (int)d;
}

int ev_loop_run(struct ev_loop *loop)
{
	struct epoll_event events[EV_BATCH];
	loop->stop = 0;
	while (!loop->stop) {
		for (int h = 0; h < loop->nhooks; h++)
			loop->hooks[h].fn(loop->hooks[h].arg);
		ev_run_pending(loop);
		int n = epoll_wait(loop->epfd, events, EV_BATCH, ev_poll_timeout(loop));
		if (n < 0 && errno != EINTR) {
			log_error("ev: epoll_wait: %s", strerror(errno));
			return PL_ERR;
		}
		loop->now = pl_now_ms();
		for (int i = 0; i < n; i++) {
			struct ev_io *io = events[i].data.ptr;
			uint32_t e = events[i].events;
			int ev = 0;
			if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
				ev |= EV_READ;
			if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
				ev |= EV_WRITE;
			if (!io->active)
				continue;   /* stopped earlier in this batch */
			/* Errors go to whichever direction is watched; a watcher
			 * idle at mask 0 still hears a hang-up as readable, or
			 * level-triggered HUP would spin. */
			ev &= io->mask;
			if (!ev && (e & (EPOLLHUP | EPOLLERR)))
				ev = EV_READ;
			if (ev)
				io->cb(loop, io, ev);
		}
		ev_run_timers(loop);
		ev_run_defers(loop);
	}
	ev_run_pending(loop);
	ev_run_defers(loop);
	return PL_OK;
}
