/* Unit tests of the intrusive string-keyed table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/strtab.h"

struct inline_entry {
	int value;
	struct strtab_node node;
	char key[];
};

struct ptr_entry {
	struct strtab_node node;
	char *key;
	int value;
};

static struct inline_entry *mk(const char *key, int value)
{
	size_t n = strlen(key) + 1;
	struct inline_entry *e = malloc(sizeof(*e) + n);
	memcpy(e->key, key, n);
	e->value = value;
	return e;
}

static void free_all(struct strtab_node *n, void *arg)
{
	struct strtab *t = arg;
	struct inline_entry *e = PL_CONTAINER_OF(n, struct inline_entry, node);
	assert_ptr_equal(strtab_del(t, e->key), n);   /* removing the visited entry is fine */
	free(e);
}

static void put_get_del_and_growth(void **state)
{
	(void)state;
	struct strtab t = STRTAB_INIT(struct inline_entry, node, key);
	assert_null(strtab_get(&t, "nobody@example.test"));
	char key[64];
	for (int i = 0; i < 10000; i++) {
		snprintf(key, sizeof(key), "user%d@example.test", i);
		strtab_put(&t, &mk(key, i)->node);
	}
	assert_int_equal(t.n, 10000);
	assert_true(t.nslots >= 10000);   /* about one entry per slot */
	for (int i = 0; i < 10000; i += 7) {
		snprintf(key, sizeof(key), "user%d@example.test", i);
		struct inline_entry *e = STRTAB_GET(&t, key, struct inline_entry, node);
		assert_non_null(e);
		assert_int_equal(e->value, i);
	}
	struct strtab_node *gone = strtab_del(&t, "user42@example.test");
	assert_non_null(gone);
	free(PL_CONTAINER_OF(gone, struct inline_entry, node));
	assert_null(strtab_get(&t, "user42@example.test"));
	assert_null(strtab_del(&t, "user42@example.test"));
	assert_int_equal(t.n, 9999);
	strtab_each(&t, free_all, &t);
	assert_int_equal(t.n, 0);
	strtab_clear(&t);
	assert_null(strtab_get(&t, "user1@example.test"));
}

static void pointer_keys(void **state)
{
	(void)state;
	struct strtab t = STRTAB_INIT_PTR(struct ptr_entry, node, key);
	struct ptr_entry a = { .key = "alice@example.test", .value = 1 };
	struct ptr_entry b = { .key = "bob@example.test", .value = 2 };
	strtab_put(&t, &a.node);
	strtab_put(&t, &b.node);
	assert_int_equal(STRTAB_GET(&t, "bob@example.test", struct ptr_entry, node)->value, 2);
	assert_ptr_equal(strtab_del(&t, "alice@example.test"), &a.node);
	assert_null(strtab_get(&t, "alice@example.test"));
	strtab_clear(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(put_get_del_and_growth),
		cmocka_unit_test(pointer_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
