/*
 * hook.h - named events with priority-ordered handlers (Prosody's
 * module:hook, ejabberd's hooks).
 *
 * Handlers are added at startup (main thread, before the shards run) and the
 * table is read-only afterwards, so any shard runs hooks without locking.
 * A hook is looked up once by name (hook_get) and then run by handle, so the
 * hot path does no string compare. Handlers run highest priority first; one
 * that returns PL_DONE stops the chain (the event is handled), PL_OK passes
 * it on. Per-host: a handler added for host NULL runs for every host.
 */
#ifndef PL_HOOK_H
#define PL_HOOK_H

struct hook;

typedef int hook_fn(const char *host, void *event, void *arg);

/* The hook with that name, created on first use. */
struct hook *hook_get(const char *name);
void hook_add(struct hook *h, const char *host, hook_fn *fn, void *arg, int priority);
/* Remove every handler fn added for host (a module stopping). */
void hook_remove(struct hook *h, const char *host, hook_fn *fn);
/* PL_DONE if a handler stopped the chain, PL_OK otherwise. */
int hook_run(struct hook *h, const char *host, void *event);
/* Number of handlers (any host), for tests. */
int hook_count(const struct hook *h);

#endif
