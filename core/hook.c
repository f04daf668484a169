/* hook.c - the hook table: a small array per hook, sorted by priority. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/hook.h"
#include "core/pl.h"

struct hook_handler {
	char *host;          /* NULL: every host */
	hook_fn *fn;
	void *arg;
	int priority;
};

struct hook {
	struct hook *next;
	struct hook_handler *h;
	int n, cap;
	char name[];
};

static struct hook *hooks;

struct hook *hook_get(const char *name)
{
	for (struct hook *h = hooks; h; h = h->next)
		if (strcmp(h->name, name) == 0)
			return h;
	size_t len = strlen(name) + 1;
	struct hook *h = pl_calloc(1, sizeof(*h) + len);
	memcpy(h->name, name, len);
	h->next = hooks;
	hooks = h;
	return h;
}

void hook_add(struct hook *h, const char *host, hook_fn *fn, void *arg, int priority)
{
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 4;
		h->h = pl_realloc(h->h, (size_t)h->cap * sizeof(*h->h));
	}
	/* Stable: equal priorities run in the order they were added. */
	int i = h->n;
	while (i > 0 && h->h[i - 1].priority < priority) {
		h->h[i] = h->h[i - 1];
		i--;
	}
	h->h[i].host = host ? pl_strdup(host) : NULL;
	h->h[i].fn = fn;
	h->h[i].arg = arg;
	h->h[i].priority = priority;
	h->n++;
}

void hook_remove(struct hook *h, const char *host, hook_fn *fn)
{
	int j = 0;
	for (int i = 0; i < h->n; i++) {
		struct hook_handler *x = &h->h[i];
		bool same_host = (!host && !x->host) || (host && x->host && !strcasecmp(host, x->host));
		if (x->fn == fn && same_host) {
			free(x->host);
			continue;
		}
		h->h[j++] = *x;
	}
	h->n = j;
}

int hook_run(struct hook *h, const char *host, void *event)
{
	for (int i = 0; i < h->n; i++) {
		const struct hook_handler *x = &h->h[i];
		if (x->host && (!host || strcasecmp(x->host, host) != 0))
			continue;
		if (x->fn(host, event, x->arg) == PL_DONE)
			return PL_DONE;
	}
	return PL_OK;
}

int hook_count(const struct hook *h)
{
	return h->n;
}
