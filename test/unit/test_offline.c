/*
 * Unit tests of XEP-0013's pure pieces in mod_offline: message nodes
 * (format and strict parse) and the classification of <offline/>
 * requests into view, remove, fetch and purge, with the error every
 * malformed request must get.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/pl.h"
#include "xmpp/offline.h"
#include "xmpp/xml.h"

/* <offline/> with children described as "item:ACTION:NODE" (ACTION or
 * NODE "-" leaves the attribute out), "fetch", "purge", or "other". */
static struct xml_node *offline_el(const char *const *children, size_t n)
{
	struct xml_node *o = xml_new("offline", NS_FLEX_OFFLINE);
	for (size_t i = 0; i < n; i++) {
		char buf[128];
		snprintf(buf, sizeof(buf), "%s", children[i]);
		char *action = strchr(buf, ':');
		if (!action) {
			if (strcmp(buf, "other") == 0)
				xml_add_child(o, "item", "urn:example:other");
			else
				xml_add_child(o, buf, NULL);
			continue;
		}
		*action++ = '\0';
		char *node = strchr(action, ':');
		*node++ = '\0';
		struct xml_node *it = xml_add_child(o, buf, NULL);
		if (strcmp(action, "-") != 0)
			xml_set_attr(it, "action", action);
		if (strcmp(node, "-") != 0)
			xml_set_attr(it, "node", node);
	}
	return o;
}

static const char *parse(bool set, struct offline_flex_req *r, size_t n, ...)
{
	const char *children[16];
	va_list ap;
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		children[i] = va_arg(ap, const char *);
	va_end(ap);
	struct xml_node *o = offline_el(children, n);
	const char *err = offline_flex_parse(o, set, r);
	xml_free(o);
	return err;
}

#define N42 "0000000000000000042"
#define N7 "0000000000000000007"

static void xep0013_2_3_node_is_the_row_id_zero_padded(void **state)
{
	char node[OFFLINE_NODE_LEN + 1];
	int64_t id = 0;
	(void)state;
	offline_node_format(42, node);
	assert_string_equal(node, N42);
	assert_int_equal(offline_node_parse(node, &id), PL_OK);
	assert_int_equal(id, 42);
	offline_node_format(INT64_MAX, node);
	assert_string_equal(node, "9223372036854775807");
	assert_int_equal(offline_node_parse(node, &id), PL_OK);
	assert_true(id == INT64_MAX);
	/* dictionary order is arrival order (§2.3 lets clients sort by it) */
	char a[OFFLINE_NODE_LEN + 1], b[OFFLINE_NODE_LEN + 1];
	offline_node_format(9, a);
	offline_node_format(10, b);
	assert_true(strcmp(a, b) < 0);
}

static void xep0013_2_3_nodes_we_never_write_do_not_parse(void **state)
{
	static const char *const bad[] = {
		"", "42", "000000000000000042", "00000000000000000042",
		"0000000000000000000",                   /* id 0 is never used */
		"9223372036854775808",                   /* INT64_MAX + 1 */
		"9999999999999999999",
		"-000000000000000042", "+000000000000000042", " 000000000000000042",
		"000000000000000004a", "2003-02-27T22:49:17.008Z",
	};
	(void)state;
	for (size_t i = 0; i < PL_ARRAY_LEN(bad); i++) {
		int64_t id = -1;
		if (offline_node_parse(bad[i], &id) != PL_ERR)
			fail_msg("node '%s' parsed as %lld", bad[i], (long long)id);
		assert_int_equal(id, -1);
	}
}

static void xep0013_2_4_view_several_in_a_get(void **state)
{
	struct offline_flex_req r;
	(void)state;
	assert_null(parse(false, &r, 3, "item:view:" N42, "item:view:" N7, "item:view:" N42));
	assert_int_equal(r.op, OFFLINE_FLEX_VIEW);
	/* a node named twice is looked up once */
	assert_int_equal(r.nids, 2);
	assert_int_equal(r.ids[0], 42);
	assert_int_equal(r.ids[1], 7);
	free(r.ids);
}

/* Thousands of nodes in one request (what fits in a stanza): each once,
 * in the order first named. */
static void xep0013_many_nodes_with_repeats(void **state)
{
	struct offline_flex_req r;
	(void)state;
	struct xml_node *o = xml_new("offline", NS_FLEX_OFFLINE);
	for (int i = 0; i < 6000; i++) {
		char node[OFFLINE_NODE_LEN + 1];
		offline_node_format(3000 - i % 3000, node);   /* 3000..1, twice */
		struct xml_node *it = xml_add_child(o, "item", NULL);
		xml_set_attr(it, "action", "view");
		xml_set_attr(it, "node", node);
	}
	assert_null(offline_flex_parse(o, false, &r));
	xml_free(o);
	assert_int_equal(r.nids, 3000);
	for (size_t i = 0; i < r.nids; i++)
		assert_int_equal(r.ids[i], 3000 - (int64_t)i);
	free(r.ids);
}

static void xep0013_2_5_remove_in_a_set(void **state)
{
	struct offline_flex_req r;
	(void)state;
	assert_null(parse(true, &r, 2, "item:remove:" N7, "item:remove:" N42));
	assert_int_equal(r.op, OFFLINE_FLEX_REMOVE);
	assert_int_equal(r.nids, 2);
	assert_int_equal(r.ids[0], 7);
	assert_int_equal(r.ids[1], 42);
	free(r.ids);
}

static void xep0013_2_6_fetch_in_a_get_2_7_purge_in_a_set(void **state)
{
	struct offline_flex_req r;
	(void)state;
	assert_null(parse(false, &r, 1, "fetch"));
	assert_int_equal(r.op, OFFLINE_FLEX_FETCH);
	assert_null(r.ids);
	assert_null(parse(true, &r, 1, "purge"));
	assert_int_equal(r.op, OFFLINE_FLEX_PURGE);
	assert_null(r.ids);
}

static void xep0013_malformed_requests_are_bad_request(void **state)
{
	struct offline_flex_req r;
	(void)state;
	assert_string_equal(parse(false, &r, 0), "bad-request");
	assert_string_equal(parse(true, &r, 1, "fetch"), "bad-request");
	assert_string_equal(parse(false, &r, 1, "purge"), "bad-request");
	assert_string_equal(parse(false, &r, 2, "fetch", "fetch"), "bad-request");
	assert_string_equal(parse(true, &r, 2, "purge", "item:remove:" N42), "bad-request");
	assert_string_equal(parse(false, &r, 2, "fetch", "item:view:" N42), "bad-request");
	assert_string_equal(parse(false, &r, 1, "item:remove:" N42), "bad-request");
	assert_string_equal(parse(true, &r, 1, "item:view:" N42), "bad-request");
	assert_string_equal(parse(false, &r, 1, "item:-:" N42), "bad-request");
	assert_string_equal(parse(false, &r, 1, "item:view:-"), "bad-request");
	assert_string_equal(parse(false, &r, 1, "item:VIEW:" N42), "bad-request");
	assert_string_equal(parse(false, &r, 1, "other"), "bad-request");
	assert_string_equal(parse(false, &r, 1, "list"), "bad-request");
	/* malformed wins over unknown: nothing is looked up */
	assert_string_equal(parse(false, &r, 2, "item:view:nope", "item:view:-"), "bad-request");
	assert_null(r.ids);
}

static void xep0013_2_4_unknown_node_is_item_not_found(void **state)
{
	struct offline_flex_req r;
	(void)state;
	assert_string_equal(parse(false, &r, 1, "item:view:42"), "item-not-found");
	assert_null(r.ids);
	assert_string_equal(parse(true, &r, 2, "item:remove:" N42,
				  "item:remove:2003-02-27T22:49:17.008Z"), "item-not-found");
	assert_null(r.ids);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(xep0013_2_3_node_is_the_row_id_zero_padded),
		cmocka_unit_test(xep0013_2_3_nodes_we_never_write_do_not_parse),
		cmocka_unit_test(xep0013_2_4_view_several_in_a_get),
		cmocka_unit_test(xep0013_many_nodes_with_repeats),
		cmocka_unit_test(xep0013_2_5_remove_in_a_set),
		cmocka_unit_test(xep0013_2_6_fetch_in_a_get_2_7_purge_in_a_set),
		cmocka_unit_test(xep0013_malformed_requests_are_bad_request),
		cmocka_unit_test(xep0013_2_4_unknown_node_is_item_not_found),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
