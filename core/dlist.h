/*
 * dlist.h - an intrusive doubly linked list with both ends and a count:
 * push at the head and unlink anywhere in O(1), walk from the tail. The
 * shape of every per-shard LRU (idle block lists, last logouts): newest at
 * the head, the oldest leave from the tail.
 *
 *   struct entry { struct dlist_node lru; ... };
 *   dlist_push_head(&t->lru, &e->lru);
 *   struct entry *old = DLIST_ENTRY(t->lru.tail, struct entry, lru);
 *
 * A node does not know whether it is on a list: the owner keeps that
 * (unlinking a node that is not on l corrupts l).
 */
#ifndef PL_DLIST_H
#define PL_DLIST_H

#include <stddef.h>

#include "core/pl.h"

struct dlist_node {
	struct dlist_node *prev, *next;   /* prev: towards the head */
};

struct dlist {
	struct dlist_node *head, *tail;
	size_t n;
};

static inline void dlist_push_head(struct dlist *l, struct dlist_node *n)
{
	n->prev = NULL;
	n->next = l->head;
	if (l->head)
		l->head->prev = n;
	else
		l->tail = n;
	l->head = n;
	l->n++;
}

static inline void dlist_unlink(struct dlist *l, struct dlist_node *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		l->head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		l->tail = n->prev;
	n->prev = n->next = NULL;
	l->n--;
}

/* The entry holding node n, or NULL for a NULL n. */
#define DLIST_ENTRY(n, type, member) \
	({ struct dlist_node *dn_ = (n); dn_ ? PL_CONTAINER_OF(dn_, type, member) : (type *)NULL; })

#endif
