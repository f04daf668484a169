/*
 * shard.h - shards: one thread, one reactor, one owner of state.
 *
 * Every piece of mutable state has exactly one owning shard; other threads
 * never touch it, they shard_post() work to its owner. A user (bare JID)
 * lives on shard_of_key(bare_jid). The inbox is an intrusive MPSC queue plus
 * an eventfd, so posting never takes a lock and wakes the target at most once
 * per batch.
 */
#ifndef PL_SHARD_H
#define PL_SHARD_H

#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <pthread.h>

#include "core/ev.h"

#define SHARD_MAX 64

typedef void shard_fn(void *arg);

/* A message in a shard's inbox. Embed it to post without allocating, or let
 * shard_post() allocate one. */
struct shard_msg {
	_Atomic(struct shard_msg *) next;
	shard_fn *fn;
	void *arg;
	int owned;      /* 1: allocated by shard_post, freed after running */
};

struct shard {
	int id;
	pthread_t thread;
	struct ev_loop *loop;
	/* inbox (Vyukov intrusive MPSC queue) */
	_Atomic(struct shard_msg *) head;
	struct shard_msg *tail;
	struct shard_msg stub;
	int efd;
	struct ev_io efd_io;
	_Atomic int pending_wake;
	void *subsys[8];    /* per-shard state of subsystems, indexed by SHARD_SLOT_* */
};

enum {
	SHARD_SLOT_ROUTER = 0,
	SHARD_SLOT_HTTP,
	SHARD_SLOT_SIP,
	SHARD_SLOT_STUN,
	SHARD_SLOT_LISTEN,
	SHARD_SLOT_STORE,
	SHARD_SLOT_SPARE1,
	SHARD_SLOT_SPARE2,
};

/* Create n shards (threads are not started yet). */
int shards_create(int n);
int shards_count(void);
struct shard *shard_get(int id);
/* The shard whose thread is calling, or NULL on a non-shard thread. */
struct shard *shard_self(void);
/* Start the threads; shard 0 runs on the calling thread in shards_run(). */
int shards_start(void);
/* Runs shard 0's loop on the calling thread until shards_stop(); then joins. */
void shards_run(void);
/* Any thread: ask every shard to stop. */
void shards_stop(void);
void shards_destroy(void);

/* Any thread: run fn(arg) on shard `id`'s thread, in posting order per poster. */
void shard_post(int id, shard_fn *fn, void *arg);
/* Same, with a caller-provided message (must stay valid until fn runs). */
void shard_post_msg(int id, struct shard_msg *m);
/* Run fn(arg) on every shard (e.g. to open listeners). */
void shard_post_all(shard_fn *fn, void *arg);

/* Run fn(arg) on every shard's thread and wait for all (startup and
 * shutdown only: called on shard 0's thread while the others run). */
void shard_call_all_sync(shard_fn *fn, void *arg);

/* FNV-1a over the key, reduced to a shard id. */
int shard_of_key(const char *key, size_t len);

#endif
