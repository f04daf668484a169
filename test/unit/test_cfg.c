/* Unit tests of the configuration loader: values, defaults, and errors that
 * name file:line and the key. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/cfg.h"
#include "core/listen.h"
#include "core/module.h"
#include "core/pl.h"

static const char *const c2s_opts[] = { "starttls_required", NULL };
static const struct listen_module lm_c2s = { .name = "c2s", .transports = LISTEN_TCP,
					     .options = c2s_opts, .implemented = 1 };
static const struct listen_module lm_sip = { .name = "sip", .transports = LISTEN_TCP | LISTEN_UDP,
					     .implemented = 1 };
static const struct listen_module lm_stun = { .name = "stun", .transports = LISTEN_UDP | LISTEN_TCP,
					      .implemented = 1 };
static const struct pm_module mod_ping = { .name = "mod_ping", .default_enabled = true };

static char dir[64];
static char path[128];

static int setup(void **state)
{
	(void)state;
	listen_register(&lm_c2s);
	listen_register(&lm_sip);
	listen_register(&lm_stun);
	pm_register(&mod_ping);
	strcpy(dir, "/tmp/parley-cfg-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/parley.yml", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	rmdir(dir);
	return 0;
}

static int load(const char *text, struct cfg **out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	err[0] = '\0';
	return cfg_load(path, out, err, errlen);
}

static void expect_error(const char *text, int line, const char *needle)
{
	struct cfg *c = NULL;
	char err[512];
	assert_int_equal(load(text, &c, err, sizeof(err)), PL_ERR);
	char where[160];
	snprintf(where, sizeof(where), "%s:%d: ", path, line);
	if (strncmp(err, where, strlen(where)) != 0 || !strstr(err, needle))
		fail_msg("expected '%s...%s', got '%s'", where, needle, err);
}

static void valid_config_gives_values_and_defaults(void **state)
{
	(void)state;
	struct cfg *c;
	char err[512];
	int rc = load("hosts: [Example.TEST, localhost]\n"
		      "threads: 3\n"
		      "data_dir: data\n"
		      "loglevel: debug\n"
		      "listen:\n"
		      "  - {port: 5222, module: c2s, starttls_required: false}\n"
		      "  - port: 5060\n"
		      "    ip: 127.0.0.1\n"
		      "    module: sip\n"
		      "modules:\n"
		      "  mod_ping: {}\n", &c, err, sizeof(err));
	if (rc != PL_OK)
		fail_msg("%s", err);
	assert_int_equal(c->nhosts, 2);
	assert_string_equal(c->hosts[0], "example.test");   /* domains are case-folded */
	assert_int_equal(c->threads, 3);
	assert_int_equal(c->loglevel, LOG_DEBUG);
	char want[200];
	snprintf(want, sizeof(want), "%s/data", dir);
	assert_string_equal(c->data_dir, want);             /* relative to the file */
	snprintf(want, sizeof(want), "%s/data/parley.sock", dir);
	assert_string_equal(c->ctl_socket, want);
	assert_int_equal(c->nlisten, 2);
	assert_int_equal(c->listen[0].port, 5222);
	assert_string_equal(c->listen[0].ip, "::");
	assert_int_equal(c->listen[0].max_stanza_size, 65536);
	assert_string_equal(c->listen[1].ip, "127.0.0.1");
	assert_string_equal(c->listen[1].module, "sip");
	assert_int_equal(c->listen[1].line, 7);
	assert_int_equal(c->scram_iterations, 4096);
	assert_non_null(c->modules);
	cfg_free(c);
}

static void threads_auto_means_cores(void **state)
{
	(void)state;
	struct cfg *c;
	char err[512];
	assert_int_equal(load("hosts: [localhost]\nthreads: auto\n", &c, err, sizeof(err)), PL_OK);
	assert_true(c->threads >= 1);
	assert_int_equal(c->threads, (int)sysconf(_SC_NPROCESSORS_ONLN));
	cfg_free(c);
}

static void unknown_top_level_key_names_line_and_key(void **state)
{
	(void)state;
	expect_error("hosts: [localhost]\n\nfrobnicate: 1\n", 3, "key 'frobnicate': unknown option");
}

static void bad_ports_are_errors_with_line(void **state)
{
	(void)state;
	expect_error("hosts: [localhost]\nlisten:\n  - {port: 0, module: c2s}\n", 3, "key 'port'");
	expect_error("hosts: [localhost]\nlisten:\n  - port: 70000\n    module: c2s\n", 3,
		     "out of range 1..65535");
	expect_error("hosts: [localhost]\nlisten:\n  - module: c2s\n    port: abc\n", 4,
		     "'abc' is not a number");
}

static void listen_errors(void **state)
{
	(void)state;
	expect_error("hosts: [localhost]\nlisten:\n  - {port: 1, module: gopher}\n", 3,
		     "unknown listen module 'gopher'");
	expect_error("hosts: [localhost]\nlisten:\n  - port: 1\n    module: c2s\n    colour: red\n",
		     5, "key 'colour': unknown option for listen module c2s");
	expect_error("hosts: [localhost]\nlisten:\n  - {module: c2s}\n", 3, "has no 'port'");
	expect_error("hosts: [localhost]\nlisten:\n  - {port: 5, module: c2s}\n"
		     "  - {port: 5, module: sip}\n", 4, "port 5 is already used");
	expect_error("hosts: [localhost]\nlisten:\n  - {port: 5, module: c2s, ip: 1.2.3}\n", 3,
		     "not an IP address");
}

static void hosts_and_values(void **state)
{
	(void)state;
	expect_error("threads: 2\n", 1, "at least one host");
	expect_error("hosts: localhost\n", 1, "expected a list");
	expect_error("hosts: [localhost]\nloglevel: chatty\n", 2, "'chatty' is not one of");
	expect_error("hosts: [localhost]\nthreads: 0\n", 2, "out of range");
	expect_error("hosts: [localhost]\nmodules:\n  mod_nonsense: {}\n", 3,
		     "unknown module 'mod_nonsense'");
	expect_error("hosts: [localhost]\nmodules:\n  mod_ping: {interval: 3}\n", 3,
		     "unknown option 'interval'");
}

static void yaml_syntax_error_has_line(void **state)
{
	(void)state;
	expect_error("hosts: [localhost]\nlisten:\n  - {port: 1, module: c2s\n", 4, "YAML syntax error");
}

static void missing_file_is_clear(void **state)
{
	(void)state;
	struct cfg *c;
	char err[512];
	assert_int_equal(cfg_load("/nonexistent/parley.yml", &c, err, sizeof(err)), PL_ERR);
	assert_non_null(strstr(err, "/nonexistent/parley.yml: cannot open"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(valid_config_gives_values_and_defaults),
		cmocka_unit_test(threads_auto_means_cores),
		cmocka_unit_test(unknown_top_level_key_names_line_and_key),
		cmocka_unit_test(bad_ports_are_errors_with_line),
		cmocka_unit_test(listen_errors),
		cmocka_unit_test(hosts_and_values),
		cmocka_unit_test(yaml_syntax_error_has_line),
		cmocka_unit_test(missing_file_is_clear),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
