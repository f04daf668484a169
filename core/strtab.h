/*
 * strtab.h - an intrusive hash table keyed by a string stored in the entry
 * (a bare JID, usually): the entry embeds a struct strtab_node and its key,
 * so lookups and inserts allocate nothing but the slot array.
 *
 * Not thread-safe: a table belongs to one shard (or one thread). Chains are
 * kept at about one entry per slot by doubling.
 *
 *   struct user { struct strtab_node node; ...; char bare[]; };
 *   struct strtab t = STRTAB_INIT(struct user, node, bare);
 *   struct user *u = STRTAB_GET(&t, "a@example.test", struct user, node);
 */
#ifndef PL_STRTAB_H
#define PL_STRTAB_H

#include <stddef.h>

#include "core/pl.h"

struct strtab_node {
	struct strtab_node *next;
	size_t hash;          /* of the key: most chain entries are skipped unread */
};

struct strtab {
	struct strtab_node **slots;
	size_t nslots, n;
	size_t key_offset;    /* from the node to the key, in the entry */
	int key_is_ptr;       /* the entry holds a char * to its key */
};

/* The key is a char array in the entry (char bare[]). */
#define STRTAB_INIT(type, node_member, key_member) \
	{ .slots = NULL, .nslots = 0, .n = 0, .key_is_ptr = 0, \
	  .key_offset = offsetof(type, key_member) - offsetof(type, node_member) }
/* The key is a char * in the entry (char *bare). */
#define STRTAB_INIT_PTR(type, node_member, key_member) \
	{ .slots = NULL, .nslots = 0, .n = 0, .key_is_ptr = 1, \
	  .key_offset = offsetof(type, key_member) - offsetof(type, node_member) }

static inline const char *strtab_key(const struct strtab *t, const struct strtab_node *n)
{
	const char *at = (const char *)n + t->key_offset;
	return t->key_is_ptr ? *(const char *const *)(const void *)at : at;
}

struct strtab_node *strtab_get(const struct strtab *t, const char *key);
/* Insert an entry whose key is not in the table yet. */
void strtab_put(struct strtab *t, struct strtab_node *n);
/* Unlink the entry with that key and return it (NULL if none). */
struct strtab_node *strtab_del(struct strtab *t, const char *key);
/* Call fn on every entry; fn may strtab_del() and free the one it gets. */
void strtab_each(struct strtab *t, void (*fn)(struct strtab_node *n, void *arg), void *arg);
/* Free the slot array (not the entries). */
void strtab_clear(struct strtab *t);

#define STRTAB_GET(t, key, type, member) \
	({ struct strtab_node *n_ = strtab_get((t), (key)); \
	   n_ ? PL_CONTAINER_OF(n_, type, member) : (type *)NULL; })

#endif
