/* strtab.c - intrusive string-keyed hash table (FNV-1a, chained, doubling). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/strtab.h"

static size_t strtab_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return (size_t)h;
}

static struct strtab_node **strtab_slot(const struct strtab *t, const char *key)
{
	size_t h = strtab_hash(key);
	struct strtab_node **p = &t->slots[h & (t->nslots - 1)];
	while (*p && ((*p)->hash != h || strcmp(strtab_key(t, *p), key) != 0))
		p = &(*p)->next;
	return p;
}

struct strtab_node *strtab_get(const struct strtab *t, const char *key)
{
	return t->nslots ? *strtab_slot(t, key) : NULL;
}

static void strtab_grow(struct strtab *t)
{
	size_t n = t->nslots ? t->nslots * 2 : 64;
	struct strtab_node **slots = pl_calloc(n, sizeof(*slots));
	for (size_t i = 0; i < t->nslots; i++) {
		struct strtab_node *e = t->slots[i];
		while (e) {
			struct strtab_node *next = e->next;
			size_t j = e->hash & (n - 1);
			e->next = slots[j];
			slots[j] = e;
			e = next;
		}
	}
	free(t->slots);
	t->slots = slots;
	t->nslots = n;
}

void strtab_put(struct strtab *t, struct strtab_node *n)
{
	if (t->n >= t->nslots)
		strtab_grow(t);
	n->hash = strtab_hash(strtab_key(t, n));
	struct strtab_node **p = &t->slots[n->hash & (t->nslots - 1)];
	n->next = *p;
	*p = n;
	t->n++;
}

struct strtab_node *strtab_del(struct strtab *t, const char *key)
{
	if (!t->nslots)
		return NULL;
	struct strtab_node **p = strtab_slot(t, key);
	struct strtab_node *e = *p;
	if (e) {
		*p = e->next;
		e->next = NULL;
		t->n--;
	}
	return e;
}

void strtab_each(struct strtab *t, void (*fn)(struct strtab_node *n, void *arg), void *arg)
{
	for (size_t i = 0; i < t->nslots; i++) {
		struct strtab_node *e = t->slots[i];
		while (e) {
			struct strtab_node *next = e->next;
			fn(e, arg);
			e = next;
		}
	}
}

void strtab_clear(struct strtab *t)
{
	free(t->slots);
	t->slots = NULL;
	t->nslots = t->n = 0;
}
