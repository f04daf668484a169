/* Unit tests of the intrusive doubly linked list (core/dlist.h): order from
 * both ends, unlinking at the head, the tail and in between, and an LRU
 * walk from the tail that drops entries as it goes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/dlist.h"

struct entry {
	int id;
	struct dlist_node node;
};

/* The ids from head to tail, then checked against the walk back. */
static size_t ids(const struct dlist *l, int *out, size_t max)
{
	size_t n = 0;
	for (struct dlist_node *p = l->head; p && n < max; p = p->next)
		out[n++] = PL_CONTAINER_OF(p, struct entry, node)->id;
	size_t back = n;
	for (struct dlist_node *p = l->tail; p; p = p->prev)
		assert_int_equal(PL_CONTAINER_OF(p, struct entry, node)->id, out[--back]);
	assert_int_equal(back, 0);
	assert_int_equal(n, l->n);
	return n;
}

static void push_and_unlink_keep_both_ends_and_the_count(void **state)
{
	(void)state;
	struct dlist l = { 0 };
	struct entry e[5];
	int got[8];
	for (int i = 0; i < 5; i++) {
		e[i].id = i;
		dlist_push_head(&l, &e[i].node);
	}
	assert_int_equal(ids(&l, got, 8), 5);
	assert_int_equal(got[0], 4);
	assert_int_equal(got[4], 0);
	dlist_unlink(&l, &e[2].node);       /* in between */
	dlist_unlink(&l, &e[4].node);       /* the head */
	dlist_unlink(&l, &e[0].node);       /* the tail */
	assert_int_equal(ids(&l, got, 8), 2);
	assert_int_equal(got[0], 3);
	assert_int_equal(got[1], 1);
	assert_null(e[2].node.prev);
	assert_null(e[2].node.next);
	dlist_push_head(&l, &e[2].node);    /* back in, newest again */
	assert_int_equal(ids(&l, got, 8), 3);
	assert_int_equal(got[0], 2);
	dlist_unlink(&l, &e[2].node);
	dlist_unlink(&l, &e[3].node);
	dlist_unlink(&l, &e[1].node);
	assert_null(l.head);
	assert_null(l.tail);
	assert_int_equal(l.n, 0);
	assert_null(DLIST_ENTRY(l.tail, struct entry, node));
}

static void lru_walk_from_the_tail_may_unlink_as_it_goes(void **state)
{
	(void)state;
	struct dlist l = { 0 };
	struct entry e[10];
	for (int i = 0; i < 10; i++) {
		e[i].id = i;
		dlist_push_head(&l, &e[i].node);
	}
	/* Keep at most 4, skipping the odd ones (as if still in use). */
	struct entry *old = DLIST_ENTRY(l.tail, struct entry, node);
	while (l.n > 4 && old) {
		struct entry *newer = DLIST_ENTRY(old->node.prev, struct entry, node);
		if (old->id % 2 == 0)
			dlist_unlink(&l, &old->node);
		old = newer;
	}
	int got[10];
	assert_int_equal(ids(&l, got, 10), 5);   /* 9 7 5 3 1: only odd ones left */
	for (int i = 0; i < 5; i++)
		assert_int_equal(got[i], 9 - 2 * i);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(push_and_unlink_keep_both_ends_and_the_count),
		cmocka_unit_test(lru_walk_from_the_tail_may_unlink_as_it_goes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
