/* Unit tests of hooks: priority order, stopping the chain, per-host handlers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "core/hook.h"
#include "core/pl.h"

static char trace[64];

static int record(const char *host, void *event, void *arg)
{
	(void)host;
	(void)event;
	strncat(trace, arg, sizeof(trace) - strlen(trace) - 1);
	return PL_OK;
}

static int stopper(const char *host, void *event, void *arg)
{
	record(host, event, arg);
	return PL_DONE;
}

static void handlers_run_by_priority_then_insertion(void **state)
{
	(void)state;
	struct hook *h = hook_get("test_order");
	hook_add(h, NULL, record, "b", 10);
	hook_add(h, NULL, record, "a", 50);
	hook_add(h, NULL, record, "c", 10);
	hook_add(h, NULL, record, "d", -5);
	trace[0] = '\0';
	assert_int_equal(hook_run(h, "example.test", NULL), PL_OK);
	assert_string_equal(trace, "abcd");
	assert_ptr_equal(hook_get("test_order"), h);
}

static void done_stops_the_chain(void **state)
{
	(void)state;
	struct hook *h = hook_get("test_stop");
	hook_add(h, NULL, record, "1", 30);
	hook_add(h, NULL, stopper, "2", 20);
	hook_add(h, NULL, record, "3", 10);
	trace[0] = '\0';
	assert_int_equal(hook_run(h, "example.test", NULL), PL_DONE);
	assert_string_equal(trace, "12");
}

static void host_handlers_only_run_for_their_host(void **state)
{
	(void)state;
	struct hook *h = hook_get("test_host");
	hook_add(h, "a.test", record, "A", 0);
	hook_add(h, "b.test", record, "B", 0);
	hook_add(h, NULL, record, "*", 0);
	trace[0] = '\0';
	hook_run(h, "A.TEST", NULL);
	assert_string_equal(trace, "A*");
	trace[0] = '\0';
	hook_run(h, "c.test", NULL);
	assert_string_equal(trace, "*");
	hook_remove(h, "a.test", record);
	assert_int_equal(hook_count(h), 2);
	trace[0] = '\0';
	hook_run(h, "a.test", NULL);
	assert_string_equal(trace, "*");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(handlers_run_by_priority_then_insertion),
		cmocka_unit_test(done_stops_the_chain),
		cmocka_unit_test(host_handlers_only_run_for_their_host),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
