/*
 * shard.c - shard threads and their inboxes.
 *
 * The inbox is Dmitry Vyukov's intrusive MPSC queue: a poster does one
 * atomic exchange and one store; the owner pops without atomics on the fast
 * path. An eventfd wakes the owner, written only when the inbox goes from
 * "drained" to "has work" (pending_wake), so a burst of posts costs one write.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/log.h"
#include "core/pl.h"
#include "core/shard.h"

static struct shard *shards[SHARD_MAX];
static int nshards;
static __thread struct shard *current;

static void inbox_push(struct shard *s, struct shard_msg *m)
{
	atomic_store_explicit(&m->next, NULL, memory_order_relaxed);
	struct shard_msg *prev = atomic_exchange_explicit(&s->head, m, memory_order_acq_rel);
	atomic_store_explicit(&prev->next, m, memory_order_release);
}

enum { POP_OK, POP_EMPTY, POP_RETRY };

static int inbox_pop(struct shard *s, struct shard_msg **out)
{
	struct shard_msg *tail = s->tail;
	struct shard_msg *next = atomic_load_explicit(&tail->next, memory_order_acquire);
	if (tail == &s->stub) {
		if (!next)
			return atomic_load(&s->head) == tail ? POP_EMPTY : POP_RETRY;
		s->tail = next;
		tail = next;
		next = atomic_load_explicit(&next->next, memory_order_acquire);
	}
	if (next) {
		s->tail = next;
		*out = tail;
		return POP_OK;
	}
	if (atomic_load(&s->head) != tail)
		return POP_RETRY;   /* a poster is between its exchange and store */
	inbox_push(s, &s->stub);
	next = atomic_load_explicit(&tail->next, memory_order_acquire);
	if (next) {
		s->tail = next;
		*out = tail;
		return POP_OK;
	}
	return POP_RETRY;
}

/* The next message, waiting out a poster caught between its two steps;
 * NULL when the inbox is empty. */
static struct shard_msg *inbox_take(struct shard *s)
{
	struct shard_msg *m;
	int r;
	while ((r = inbox_pop(s, &m)) == POP_RETRY)
		sched_yield();
	return r == POP_OK ? m : NULL;
}

static void inbox_drain(struct shard *s)
{
	atomic_store(&s->pending_wake, 0);
	struct shard_msg *m;
	while ((m = inbox_take(s)) != NULL) {
		int owned = m->owned;
		m->fn(m->arg);
		if (owned)
			free(m);
	}
}

static void inbox_readable(struct ev_loop *loop, struct ev_io *io, int events)
{
	PL_UNUSED(loop);
	PL_UNUSED(events);
	uint64_t v;
	while (read(io->fd, &v, sizeof(v)) > 0)
		;
	inbox_drain(io->data);
}

int shards_create(int n)
{
	if (n < 1 || n > SHARD_MAX) {
		log_error("shard: %d shards requested; 1..%d allowed", n, SHARD_MAX);
		return PL_ERR;
	}
	for (int i = 0; i < n; i++) {
		struct shard *s = pl_calloc(1, sizeof(*s));
		s->id = i;
		s->loop = ev_loop_new();
		s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (!s->loop || s->efd < 0) {
			log_error("shard: cannot create shard %d: %s", i, strerror(errno));
			return PL_ERR;
		}
		atomic_store(&s->stub.next, NULL);
		atomic_store(&s->head, &s->stub);
		s->tail = &s->stub;
		ev_io_init(&s->efd_io, s->efd, inbox_readable, s);
		ev_io_start(s->loop, &s->efd_io, EV_READ);
		shards[i] = s;
	}
	nshards = n;
	current = shards[0];   /* the main thread is shard 0 */
	return PL_OK;
}

int shards_count(void)
{
	return nshards;
}

struct shard *shard_get(int id)
{
	return (id >= 0 && id < nshards) ? shards[id] : NULL;
}

struct shard *shard_self(void)
{
	return current;
}

static void *shard_thread(void *arg)
{
	struct shard *s = arg;
	current = s;
	char name[16];
	snprintf(name, sizeof(name), "parley-shard%d", s->id);
	pthread_setname_np(pthread_self(), name);
	ev_loop_run(s->loop);
	return NULL;
}

int shards_start(void)
{
	for (int i = 1; i < nshards; i++) {
		int rc = pthread_create(&shards[i]->thread, NULL, shard_thread, shards[i]);
		if (rc != 0) {
			log_error("shard: cannot start thread %d: %s", i, strerror(rc));
			return PL_ERR;
		}
	}
	return PL_OK;
}

void shards_run(void)
{
	struct shard *s = shards[0];
	s->thread = pthread_self();
	ev_loop_run(s->loop);
	for (int i = 1; i < nshards; i++)
		pthread_join(shards[i]->thread, NULL);
}

static void shard_stop_here(void *arg)
{
	PL_UNUSED(arg);
	ev_loop_stop(current->loop);
}

void shards_stop(void)
{
	for (int i = 0; i < nshards; i++)
		shard_post(i, shard_stop_here, NULL);
}

/* After the loops stopped, what is still in an inbox was posted to a shard
 * whose subsystems are gone: running it would touch freed state. Drop it
 * (the process is exiting; durable work was committed by the store). */
static void inbox_discard(struct shard *s)
{
	struct shard_msg *m;
	while ((m = inbox_take(s)) != NULL) {
		if (m->owned)
			free(m);
	}
}

void shards_destroy(void)
{
	for (int i = 0; i < nshards; i++) {
		struct shard *s = shards[i];
		inbox_discard(s);
		ev_io_stop(s->loop, &s->efd_io);
		close(s->efd);
		ev_loop_free(s->loop);
		free(s);
		shards[i] = NULL;
	}
	nshards = 0;
	current = NULL;
}

void shard_post_msg(int id, struct shard_msg *m)
{
	struct shard *s = shards[id];
	inbox_push(s, m);
	if (atomic_exchange(&s->pending_wake, 1) == 0) {
		uint64_t one = 1;
		ssize_t w = write(s->efd, &one, sizeof(one));
		(void)w;
	}
}

void shard_post(int id, shard_fn *fn, void *arg)
{
	struct shard_msg *m = pl_malloc(sizeof(*m));
	m->fn = fn;
	m->arg = arg;
	m->owned = 1;
	shard_post_msg(id, m);
}

void shard_post_all(shard_fn *fn, void *arg)
{
	for (int i = 0; i < nshards; i++)
		shard_post(i, fn, arg);
}

/* ---- synchronous fan-out, for startup and shutdown only ---- */

struct call_all {
	shard_fn *fn;
	void *arg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int left;
};

static void call_all_one(void *p)
{
	struct call_all *ca = p;
	ca->fn(ca->arg);
	pthread_mutex_lock(&ca->mu);
	if (--ca->left == 0)
		pthread_cond_signal(&ca->cv);
	pthread_mutex_unlock(&ca->mu);
}

void shard_call_all_sync(shard_fn *fn, void *arg)
{
	struct call_all ca = { .fn = fn, .arg = arg, .left = nshards - 1 };
	pthread_mutex_init(&ca.mu, NULL);
	pthread_cond_init(&ca.cv, NULL);
	for (int i = 1; i < nshards; i++)
		shard_post(i, call_all_one, &ca);
	fn(arg);    /* shard 0: the caller */
	pthread_mutex_lock(&ca.mu);
	while (ca.left > 0)
		pthread_cond_wait(&ca.cv, &ca.mu);
	pthread_mutex_unlock(&ca.mu);
	pthread_mutex_destroy(&ca.mu);
	pthread_cond_destroy(&ca.cv);
}

int shard_of_key(const char *key, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)key[i];
		h *= 16777619u;
	}
	return nshards > 0 ? (int)(h % (uint32_t)nshards) : 0;
}
