/*
 * test_cmd.c - the command registry: lookup, help order, argument checks
 * and the reply functions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/cfg.h"
#include "core/cmd.h"
#include "core/pl.h"

static char *hosts[] = { "localhost" };
static struct cfg test_cfg = { .hosts = hosts, .nhosts = 1 };

static int replies;
static int last_status;
static char last_text[2048];
static int handled;
static struct cmd_req *handled_req;

static void record_reply(struct cmd_req *req, int status, const char *text)
{
	PL_UNUSED(req);
	replies++;
	last_status = status;
	snprintf(last_text, sizeof(last_text), "%s", text);
}

static void handler_ok(struct cmd_req *req)
{
	handled++;
	handled_req = req;
	cmd_reply_ok(req, "done");
}

static void handler_list(struct cmd_req *req)
{
	char *items[] = { "alice", "bob", "zoe" };

	cmd_reply_list(req, items, 3);
}

static const struct cmd_arg setpw_args[] = {
	{ "USER", CMD_ARG_USER }, { "HOST", CMD_ARG_HOST }, { "PASSWORD", CMD_ARG_PASSWORD },
};
static const struct cmd_arg int_args[] = { { "SECONDS", CMD_ARG_INT } };
static const struct cmd_arg str_args[] = { { "TEXT", CMD_ARG_STRING } };

static const struct cmd_def def_setpw = { "t_setpw", "test", setpw_args, 3, handler_ok };
static const struct cmd_def def_int = { "t_int", "test", int_args, 1, handler_ok };
static const struct cmd_def def_str = { "t_str", "test", str_args, 1, handler_ok };
static const struct cmd_def def_list = { "t_list", "test", NULL, 0, handler_list };
static const struct cmd_def def_a = { "a_first", "test", NULL, 0, handler_ok };
static const struct cmd_def def_z = { "zz_last", "test", NULL, 0, handler_ok };
static const struct cmd_def def_z2 = { "zz_last", "replacement", NULL, 0, handler_list };

static int setup_group(void **state)
{
	(void)state;
	cmd_register(&def_setpw);
	cmd_register(&def_z);
	cmd_register(&def_int);
	cmd_register(&def_a);
	cmd_register(&def_str);
	cmd_register(&def_list);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	replies = 0;
	handled = 0;
	handled_req = NULL;
	last_status = -1;
	last_text[0] = '\0';
	cfg_set_current(&test_cfg);
	return 0;
}

static int dispatch(const char *name, size_t argc, ...)
{
	static char *argv[8];
	static struct cmd_req req;
	va_list ap;

	memset(&req, 0, sizeof(req));
	req.def = cmd_find(name);
	assert_non_null(req.def);
	va_start(ap, argc);
	for (size_t i = 0; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	req.argv = argv;
	req.argc = argc;
	req.reply = record_reply;
	cmd_dispatch(&req);
	assert_int_equal(replies, 1);
	replies = 0;
	return last_status;
}

static void cmd_find_registered_and_unknown(void **state)
{
	(void)state;
	assert_ptr_equal(cmd_find("t_setpw"), &def_setpw);
	assert_ptr_equal(cmd_find("a_first"), &def_a);
	assert_null(cmd_find("t_set"));
	assert_null(cmd_find(""));
	assert_null(cmd_find("T_SETPW"));
}

static void cmd_all_sorted_by_name(void **state)
{
	const struct cmd_def *all[16], *two[2];
	size_t n = cmd_all(all, 16);

	(void)state;
	assert_int_equal(n, 6);
	for (size_t i = 1; i < n; i++)
		assert_true(strcmp(all[i - 1]->name, all[i]->name) < 0);
	assert_string_equal(all[0]->name, "a_first");
	assert_string_equal(all[n - 1]->name, "zz_last");
	/* bounded by the caller's array */
	assert_int_equal(cmd_all(two, 2), 2);
	assert_ptr_equal(two[0], all[0]);
}

static void cmd_register_twice_last_wins(void **state)
{
	const struct cmd_def *all[16];

	(void)state;
	cmd_register(&def_z2);
	assert_ptr_equal(cmd_find("zz_last"), &def_z2);
	assert_int_equal(cmd_all(all, 16), 6);
	cmd_register(&def_z);
}

static void cmd_dispatch_runs_handler_with_args(void **state)
{
	(void)state;
	assert_int_equal(dispatch("t_setpw", 3, "alice", "localhost", "pass with spaces"), CMD_OK);
	assert_int_equal(handled, 1);
	assert_string_equal(last_text, "done");
	assert_string_equal(handled_req->argv[2], "pass with spaces");
}

static void cmd_dispatch_wrong_argc_usage(void **state)
{
	(void)state;
	assert_int_equal(dispatch("t_setpw", 2, "alice", "localhost"), CMD_USAGE);
	assert_int_equal(handled, 0);
	assert_non_null(strstr(last_text, "usage: t_setpw USER HOST PASSWORD"));
	assert_non_null(strstr(last_text, "expects 3 arguments, got 2"));
	assert_int_equal(dispatch("t_setpw", 4, "a", "localhost", "p", "extra"), CMD_USAGE);
	assert_int_equal(dispatch("t_list", 1, "x"), CMD_USAGE);
	assert_string_equal(last_text, "t_list: expects 0 arguments, got 1\nusage: t_list");
	assert_int_equal(handled, 0);
}

static void cmd_dispatch_empty_user_or_password_usage(void **state)
{
	(void)state;
	assert_int_equal(dispatch("t_setpw", 3, "", "localhost", "p"), CMD_USAGE);
	assert_non_null(strstr(last_text, "USER must not be empty"));
	assert_int_equal(dispatch("t_setpw", 3, "alice", "localhost", ""), CMD_USAGE);
	assert_non_null(strstr(last_text, "PASSWORD must not be empty"));
	assert_int_equal(dispatch("t_setpw", 3, "alice", "", "p"), CMD_USAGE);
	assert_non_null(strstr(last_text, "HOST must not be empty"));
	assert_int_equal(handled, 0);
}

static void cmd_dispatch_host_must_be_served(void **state)
{
	(void)state;
	assert_int_equal(dispatch("t_setpw", 3, "alice", "elsewhere.test", "p"), CMD_USAGE);
	assert_non_null(strstr(last_text, "host 'elsewhere.test' is not served here"));
	assert_non_null(strstr(last_text, "usage: t_setpw USER HOST PASSWORD"));
	assert_int_equal(handled, 0);
	/* without a configuration any non-empty host passes */
	cfg_set_current(NULL);
	assert_int_equal(dispatch("t_setpw", 3, "alice", "elsewhere.test", "p"), CMD_OK);
	assert_int_equal(handled, 1);
}

static void cmd_dispatch_int_checked(void **state)
{
	(void)state;
	assert_int_equal(dispatch("t_int", 1, "30"), CMD_OK);
	assert_int_equal(dispatch("t_int", 1, "-5"), CMD_OK);
	assert_int_equal(handled, 2);
	assert_int_equal(dispatch("t_int", 1, "3x"), CMD_USAGE);
	assert_non_null(strstr(last_text, "SECONDS must be a number, not '3x'"));
	assert_int_equal(dispatch("t_int", 1, ""), CMD_USAGE);
	assert_int_equal(dispatch("t_int", 1, " 7"), CMD_USAGE);
	assert_int_equal(dispatch("t_int", 1, "99999999999999999999999"), CMD_USAGE);
	assert_int_equal(handled, 2);
	/* a STRING takes anything, even empty */
	assert_int_equal(dispatch("t_str", 1, ""), CMD_OK);
}

static void cmd_reply_list_one_per_line(void **state)
{
	(void)state;
	assert_int_equal(dispatch("t_list", 0), CMD_OK);
	assert_string_equal(last_text, "alice\nbob\nzoe\n");
}

static void cmd_reply_error_formats_long_text(void **state)
{
	struct cmd_req req = { .reply = record_reply };
	char big[1500];

	(void)state;
	cmd_reply_error(&req, CMD_ERROR, "user %s@%s does not exist", "bob", "localhost");
	assert_int_equal(last_status, CMD_ERROR);
	assert_string_equal(last_text, "user bob@localhost does not exist");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cmd_reply_error(&req, CMD_ERROR, "[%s]", big);
	assert_int_equal(strlen(last_text), sizeof(big) + 1);
	assert_int_equal(last_text[0], '[');
	assert_int_equal(last_text[sizeof(big)], ']');
	cmd_reply_ok(&req, NULL);
	assert_int_equal(last_status, CMD_OK);
	assert_string_equal(last_text, "");
	assert_int_equal(replies, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(cmd_find_registered_and_unknown, setup),
		cmocka_unit_test_setup(cmd_all_sorted_by_name, setup),
		cmocka_unit_test_setup(cmd_register_twice_last_wins, setup),
		cmocka_unit_test_setup(cmd_dispatch_runs_handler_with_args, setup),
		cmocka_unit_test_setup(cmd_dispatch_wrong_argc_usage, setup),
		cmocka_unit_test_setup(cmd_dispatch_empty_user_or_password_usage, setup),
		cmocka_unit_test_setup(cmd_dispatch_host_must_be_served, setup),
		cmocka_unit_test_setup(cmd_dispatch_int_checked, setup),
		cmocka_unit_test_setup(cmd_reply_list_one_per_line, setup),
		cmocka_unit_test_setup(cmd_reply_error_formats_long_text, setup),
	};

	return cmocka_run_group_tests(tests, setup_group, NULL);
}
