/*
 * test_users.c - accounts over the real store (SQLite in a temporary
 * data_dir). Called off-shard, so callbacks run on the storage workers and
 * each test waits for them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "core/cfg.h"
#include "core/log.h"
#include "core/pl.h"
#include "core/scram.h"
#include "core/store.h"
#include "core/users.h"

static char tmpdir[256];
static char *hosts[] = { "localhost", "example.test" };
static struct cfg test_cfg = { .hosts = hosts, .nhosts = 2, .scram_iterations = 1000 };

/* One outstanding call at a time: its answer lands here. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool answered;
	int status;
	bool have_creds;
	struct user_creds creds;
	char names[16][64];
	size_t nnames;
} ans = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .status = -1 };

static void answer(int status)
{
	pthread_mutex_lock(&ans.mu);
	ans.status = status;
	ans.answered = true;
	pthread_cond_broadcast(&ans.cv);
	pthread_mutex_unlock(&ans.mu);
}

static void on_done(void *arg, int status)
{
	assert_ptr_equal(arg, &ans);
	answer(status);
}

static void on_creds(void *arg, int status, const struct user_creds *c)
{
	assert_ptr_equal(arg, &ans);
	ans.have_creds = c != NULL;
	if (c)
		ans.creds = *c;
	answer(status);
}

static void on_list(void *arg, int status, char **names, size_t n)
{
	assert_ptr_equal(arg, &ans);
	ans.nnames = n < 16 ? n : 16;
	for (size_t i = 0; i < ans.nnames; i++)
		snprintf(ans.names[i], sizeof(ans.names[i]), "%s", names[i]);
	answer(status);
}

static int wait_answer(void)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	pthread_mutex_lock(&ans.mu);
	while (!ans.answered) {
		if (pthread_cond_timedwait(&ans.cv, &ans.mu, &until) == ETIMEDOUT)
			break;
	}
	assert_true(ans.answered);
	ans.answered = false;
	pthread_mutex_unlock(&ans.mu);
	return ans.status;
}

static int do_register(const char *host, const char *user, const char *pw)
{
	users_register(host, user, pw, on_done, &ans);
	return wait_answer();
}

static int do_check(const char *host, const char *user, const char *pw)
{
	users_check_password(host, user, pw, on_done, &ans);
	return wait_answer();
}

static int do_get_creds(const char *host, const char *user)
{
	ans.have_creds = false;
	users_get_creds(host, user, on_creds, &ans);
	return wait_answer();
}

static int do_list(const char *host)
{
	ans.nnames = 0;
	users_list(host, on_list, &ans);
	return wait_answer();
}

static int setup(void **state)
{
	char err[512];

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/parley-test-users.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	cfg_set_current(&test_cfg);
	if (store_open(tmpdir, 2, err, sizeof(err)) != PL_OK) {
		fprintf(stderr, "store_open: %s\n", err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	store_close();
	cfg_set_current(NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void users_register_then_get_creds(void **state)
{
	struct scram_creds want;

	(void)state;
	assert_int_equal(do_register("localhost", "alice", "secret"), USERS_OK);
	assert_int_equal(do_get_creds("localhost", "alice"), USERS_OK);
	assert_true(ans.have_creds);
	assert_int_equal(ans.creds.sha1.iterations, 1000);
	assert_int_equal(ans.creds.sha1.salt_len, 16);
	assert_int_equal(ans.creds.sha1.key_len, 20);
	assert_int_equal(ans.creds.sha256.iterations, 1000);
	assert_int_equal(ans.creds.sha256.salt_len, 16);
	assert_int_equal(ans.creds.sha256.key_len, 32);
	/* each hash has its own salt */
	assert_memory_not_equal(ans.creds.sha1.salt, ans.creds.sha256.salt, 16);
	/* the stored keys are those of the password under the stored salt */
	assert_int_equal(scram_make_creds(SCRAM_SHA256, "secret", ans.creds.sha256.salt, 16, 1000,
					  &want), PL_OK);
	assert_memory_equal(want.stored_key, ans.creds.sha256.stored_key, 32);
	assert_memory_equal(want.server_key, ans.creds.sha256.server_key, 32);
	assert_int_equal(scram_make_creds(SCRAM_SHA1, "secret", ans.creds.sha1.salt, 16, 1000,
					  &want), PL_OK);
	assert_memory_equal(want.stored_key, ans.creds.sha1.stored_key, 20);
	assert_memory_equal(want.server_key, ans.creds.sha1.server_key, 20);
}

static void users_register_twice_exists(void **state)
{
	(void)state;
	assert_int_equal(do_register("localhost", "alice", "secret"), USERS_OK);
	assert_int_equal(do_register("localhost", "alice", "other"), USERS_EXISTS);
	/* the first password still holds */
	assert_int_equal(do_check("localhost", "alice", "secret"), USERS_OK);
	/* the same name on another host is another account */
	assert_int_equal(do_register("example.test", "alice", "x"), USERS_OK);
}

static void users_same_password_different_salts(void **state)
{
	uint8_t salt_a[16];

	(void)state;
	assert_int_equal(do_register("localhost", "a", "same"), USERS_OK);
	assert_int_equal(do_register("localhost", "b", "same"), USERS_OK);
	assert_int_equal(do_get_creds("localhost", "a"), USERS_OK);
	memcpy(salt_a, ans.creds.sha256.salt, 16);
	assert_int_equal(do_get_creds("localhost", "b"), USERS_OK);
	assert_memory_not_equal(salt_a, ans.creds.sha256.salt, 16);
}

static void users_check_password_good_and_bad(void **state)
{
	(void)state;
	assert_int_equal(do_register("localhost", "bob", "pass word with spaces"), USERS_OK);
	assert_int_equal(do_check("localhost", "bob", "pass word with spaces"), USERS_OK);
	assert_int_equal(do_check("localhost", "bob", "pass word with space"), USERS_BAD_PASSWORD);
	assert_int_equal(do_check("localhost", "bob", "Pass word with spaces"), USERS_BAD_PASSWORD);
	assert_int_equal(do_check("localhost", "nobody", "x"), USERS_NOT_FOUND);
	assert_int_equal(do_check("example.test", "bob", "pass word with spaces"), USERS_NOT_FOUND);
}

static void users_unregister_removes(void **state)
{
	(void)state;
	assert_int_equal(do_register("localhost", "carol", "pw"), USERS_OK);
	users_unregister("localhost", "carol", on_done, &ans);
	assert_int_equal(wait_answer(), USERS_OK);
	assert_int_equal(do_get_creds("localhost", "carol"), USERS_NOT_FOUND);
	assert_false(ans.have_creds);
	users_unregister("localhost", "carol", on_done, &ans);
	assert_int_equal(wait_answer(), USERS_NOT_FOUND);
	/* and the name is free again */
	assert_int_equal(do_register("localhost", "carol", "pw2"), USERS_OK);
	assert_int_equal(do_check("localhost", "carol", "pw2"), USERS_OK);
}

static void users_list_sorted_per_host(void **state)
{
	(void)state;
	assert_int_equal(do_list("localhost"), USERS_OK);
	assert_int_equal(ans.nnames, 0);
	assert_int_equal(do_register("localhost", "zoe", "p"), USERS_OK);
	assert_int_equal(do_register("localhost", "alice", "p"), USERS_OK);
	assert_int_equal(do_register("localhost", "mallory", "p"), USERS_OK);
	assert_int_equal(do_register("example.test", "bob", "p"), USERS_OK);
	assert_int_equal(do_list("localhost"), USERS_OK);
	assert_int_equal(ans.nnames, 3);
	assert_string_equal(ans.names[0], "alice");
	assert_string_equal(ans.names[1], "mallory");
	assert_string_equal(ans.names[2], "zoe");
	assert_int_equal(do_list("example.test"), USERS_OK);
	assert_int_equal(ans.nnames, 1);
	assert_string_equal(ans.names[0], "bob");
}

static void users_set_password_replaces(void **state)
{
	uint8_t old_salt[16];

	(void)state;
	assert_int_equal(do_register("localhost", "dave", "old"), USERS_OK);
	assert_int_equal(do_get_creds("localhost", "dave"), USERS_OK);
	memcpy(old_salt, ans.creds.sha256.salt, 16);
	users_set_password("localhost", "dave", "new", on_done, &ans);
	assert_int_equal(wait_answer(), USERS_OK);
	assert_int_equal(do_check("localhost", "dave", "old"), USERS_BAD_PASSWORD);
	assert_int_equal(do_check("localhost", "dave", "new"), USERS_OK);
	/* a new password gets a new salt */
	assert_int_equal(do_get_creds("localhost", "dave"), USERS_OK);
	assert_memory_not_equal(old_salt, ans.creds.sha256.salt, 16);
	users_set_password("localhost", "nobody", "new", on_done, &ans);
	assert_int_equal(wait_answer(), USERS_NOT_FOUND);
}

static void users_invalid_input(void **state)
{
	(void)state;
	assert_int_equal(do_register("localhost", "", "pw"), USERS_INVALID);
	assert_int_equal(do_register("localhost", "eve", ""), USERS_INVALID);
	assert_int_equal(do_register("", "eve", "pw"), USERS_INVALID);
	assert_int_equal(do_register("not-served.test", "eve", "pw"), USERS_INVALID);
	assert_int_equal(do_check("localhost", "eve", ""), USERS_INVALID);
	users_set_password("localhost", "eve", "", on_done, &ans);
	assert_int_equal(wait_answer(), USERS_INVALID);
	assert_int_equal(do_list("not-served.test"), USERS_INVALID);
	/* nothing was created by the refused calls */
	assert_int_equal(do_get_creds("localhost", "eve"), USERS_NOT_FOUND);
}

static void users_without_config_defaults(void **state)
{
	(void)state;
	/* no configuration (tools, tests): any host, 4096 iterations */
	cfg_set_current(NULL);
	assert_int_equal(do_register("anywhere.test", "frank", "pw"), USERS_OK);
	assert_int_equal(do_get_creds("anywhere.test", "frank"), USERS_OK);
	assert_int_equal(ans.creds.sha1.iterations, 4096);
	assert_int_equal(ans.creds.sha256.iterations, 4096);
	cfg_set_current(&test_cfg);
}

static void users_store_closed_fails(void **state)
{
	(void)state;
	store_close();
	assert_int_equal(do_register("localhost", "gina", "pw"), USERS_FAILED);
	assert_int_equal(do_get_creds("localhost", "gina"), USERS_FAILED);
	assert_false(ans.have_creds);
}

static void users_status_strings(void **state)
{
	(void)state;
	assert_string_equal(users_status_str(USERS_OK), "ok");
	assert_string_equal(users_status_str(USERS_NOT_FOUND), "no such user");
	assert_string_equal(users_status_str(99), "unknown status");
	assert_string_equal(users_status_str(-1), "unknown status");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(users_register_then_get_creds, setup, teardown),
		cmocka_unit_test_setup_teardown(users_register_twice_exists, setup, teardown),
		cmocka_unit_test_setup_teardown(users_same_password_different_salts, setup, teardown),
		cmocka_unit_test_setup_teardown(users_check_password_good_and_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(users_unregister_removes, setup, teardown),
		cmocka_unit_test_setup_teardown(users_list_sorted_per_host, setup, teardown),
		cmocka_unit_test_setup_teardown(users_set_password_replaces, setup, teardown),
		cmocka_unit_test_setup_teardown(users_invalid_input, setup, teardown),
		cmocka_unit_test_setup_teardown(users_without_config_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(users_store_closed_fails, setup, teardown),
		cmocka_unit_test(users_status_strings),
	};

	log_threshold = LOG_WARNING;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
