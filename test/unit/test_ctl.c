/*
 * test_ctl.c - the control socket protocol on a real shard 0 reactor.
 *
 * The test thread becomes shard 0 and runs the loop; a client thread speaks
 * raw netstrings to the socket, records every reply and then stops the loop.
 * Assertions happen on the test thread once the loop has returned.
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/cfg.h"
#include "core/cmd.h"
#include "core/ctl.h"
#include "core/log.h"
#include "core/pl.h"
#include "core/shard.h"
#include "core/store.h"

#define MAX_REQ 16

static char tmpdir[64];
static char sock_path[96];
static char *hosts[] = { "localhost" };
static struct cfg test_cfg = { .hosts = hosts, .nhosts = 1, .scram_iterations = 64 };

struct exchange {
	const char *req;          /* raw bytes sent */
	size_t len;               /* 0: strlen(req) */
	bool hang_up;             /* close right after sending, read nothing */
	char reply[4096];
};

static struct exchange ex[MAX_REQ];
static size_t nex;
static int stop_calls;

static void add(const char *req)
{
	assert_true(nex < MAX_REQ);
	memset(&ex[nex], 0, sizeof(ex[nex]));
	ex[nex].req = req;
	nex++;
}

static void fill_addr(struct sockaddr_un *sa)
{
	assert_true(strlen(sock_path) < sizeof(sa->sun_path));
	memcpy(sa->sun_path, sock_path, strlen(sock_path) + 1);
}

static int connect_ctl(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 10 };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	fill_addr(&sa);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void *client_main(void *arg)
{
	PL_UNUSED(arg);
	for (size_t i = 0; i < nex; i++) {
		struct exchange *e = &ex[i];
		size_t len = e->len ? e->len : strlen(e->req), got = 0;
		int fd = connect_ctl();
		ssize_t n;

		if (fd < 0) {
			snprintf(e->reply, sizeof(e->reply), "<connect failed: %s>", strerror(errno));
			continue;
		}
		n = send(fd, e->req, len, MSG_NOSIGNAL);
		PL_UNUSED(n);
		if (e->hang_up) {
			close(fd);
			continue;
		}
		while (got < sizeof(e->reply) - 1) {
			n = recv(fd, e->reply + got, sizeof(e->reply) - 1 - got, 0);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		e->reply[got] = '\0';
		close(fd);
	}
	shards_stop();
	return NULL;
}

static void on_stop(void)
{
	stop_calls++;
}

static int setup(void **state)
{
	char err[512];

	(void)state;
	nex = 0;
	stop_calls = 0;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/parley-test-ctl.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(sock_path, sizeof(sock_path), "%s/parley.sock", tmpdir);
	cfg_set_current(&test_cfg);
	if (shards_create(1) != PL_OK)
		return -1;
	if (store_open(tmpdir, 1, err, sizeof(err)) != PL_OK) {
		fprintf(stderr, "store_open: %s\n", err);
		return -1;
	}
	ctl_set_stop_handler(on_stop);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	ctl_close();
	store_close();
	shards_destroy();
	cfg_set_current(NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void open_ctl(void)
{
	char err[512] = "";

	if (ctl_open(sock_path, err, sizeof(err)) != PL_OK)
		fail_msg("ctl_open: %s", err);
}

/* Serve the queued exchanges, then return when the client is done. */
static void serve(void)
{
	pthread_t t;

	open_ctl();
	assert_int_equal(pthread_create(&t, NULL, client_main, NULL), 0);
	shards_run();
	pthread_join(t, NULL);
}

static void ctl_status_answers_running(void **state)
{
	(void)state;
	add("6:status,0:,");
	serve();
	assert_non_null(strstr(ex[0].reply, "0\nparleyd "));
	assert_non_null(strstr(ex[0].reply, " running: 1 shards, 1 hosts, uptime "));
	assert_int_equal(ex[0].reply[strlen(ex[0].reply) - 1], '\n');
}

static void ctl_socket_is_owner_only(void **state)
{
	struct stat sb;

	(void)state;
	open_ctl();
	assert_int_equal(lstat(sock_path, &sb), 0);
	assert_true(S_ISSOCK(sb.st_mode));
	assert_int_equal(sb.st_mode & 0777, 0600);
	ctl_close();
	/* closing removes it */
	assert_int_equal(lstat(sock_path, &sb), -1);
}

static void ctl_account_commands(void **state)
{
	(void)state;
	add("8:register,5:alice,9:localhost,6:secret,0:,");
	add("8:register,3:bob,9:localhost,13:with   spaces,0:,");
	add("8:register,5:alice,9:localhost,5:other,0:,");
	add("16:registered_users,9:localhost,0:,");
	add("15:change_password,5:alice,9:localhost,3:new,0:,");
	add("15:change_password,5:carol,9:localhost,3:new,0:,");
	add("10:unregister,5:carol,9:localhost,0:,");
	add("10:unregister,3:bob,9:localhost,0:,");
	add("16:registered_users,9:localhost,0:,");
	serve();
	assert_string_equal(ex[0].reply, "0\nuser alice@localhost registered\n");
	assert_string_equal(ex[1].reply, "0\nuser bob@localhost registered\n");
	assert_string_equal(ex[2].reply, "1\nuser alice@localhost already exists\n");
	assert_string_equal(ex[3].reply, "0\nalice\nbob\n");
	assert_string_equal(ex[4].reply, "0\npassword of alice@localhost changed\n");
	assert_string_equal(ex[5].reply, "1\nuser carol@localhost does not exist\n");
	assert_string_equal(ex[6].reply, "1\nuser carol@localhost does not exist\n");
	assert_string_equal(ex[7].reply, "0\nuser bob@localhost unregistered\n");
	assert_string_equal(ex[8].reply, "0\nalice\n");
}

static void ctl_usage_errors(void **state)
{
	(void)state;
	add("8:register,5:alice,0:,");
	add("8:register,5:alice,11:nowhere.net,1:p,0:,");
	add("4:nope,0:,");
	add("16:registered_users,9:localhost,0:,");    /* empty list */
	serve();
	assert_string_equal(ex[0].reply, "2\nregister: expects 3 arguments, got 1\n"
			    "usage: register USER HOST PASSWORD\n");
	assert_string_equal(ex[1].reply, "2\nregister: host 'nowhere.net' is not served here\n"
			    "usage: register USER HOST PASSWORD\n");
	assert_string_equal(ex[2].reply, "2\nunknown command 'nope' (parleyctl help lists them)\n");
	assert_string_equal(ex[3].reply, "0\n");
}

static void ctl_malformed_requests_refused(void **state)
{
	static char many[1024];
	static char big[80];
	size_t o = 0;

	(void)state;
	/* 33 arguments after the command: one too many */
	o += (size_t)snprintf(many + o, sizeof(many) - o, "6:status,");
	for (int i = 0; i < 33; i++)
		o += (size_t)snprintf(many + o, sizeof(many) - o, "1:x,");
	snprintf(many + o, sizeof(many) - o, "0:,");
	snprintf(big, sizeof(big), "70000:");
	add("hello\n");
	add("0:,");                 /* no command */
	add("06:status,0:,");       /* leading zero */
	add("6:status;0:,");        /* wrong terminator */
	add("6:status,3:a\0b,0:,"); /* NUL inside an argument */
	ex[nex - 1].len = 19;
	add(many);
	add(big);                   /* declared length over 64 KiB */
	add("6:status,0:,");        /* still serving */
	add("6:status,0:,junk");    /* what follows the end is not read */
	serve();
	for (size_t i = 0; i < 7; i++) {
		if (strncmp(ex[i].reply, "2\nmalformed request", 19) != 0)
			fail_msg("request %zu: got \"%s\"", i, ex[i].reply);
	}
	assert_non_null(strstr(ex[7].reply, "0\nparleyd "));
	assert_non_null(strstr(ex[8].reply, "0\nparleyd "));
}

static void ctl_help_lists_commands(void **state)
{
	(void)state;
	add("4:help,0:,");
	serve();
	assert_int_equal(strncmp(ex[0].reply, "0\n", 2), 0);
	assert_non_null(strstr(ex[0].reply, "\nregister USER HOST PASSWORD - create an account\n"));
	assert_non_null(strstr(ex[0].reply, "\nregistered_users HOST - "));
	assert_non_null(strstr(ex[0].reply, "\nstatus - "));
	assert_non_null(strstr(ex[0].reply, "\nstop - "));
	/* sorted: change_password before help before register */
	assert_true(strstr(ex[0].reply, "change_password") < strstr(ex[0].reply, "help -"));
	assert_true(strstr(ex[0].reply, "help -") < strstr(ex[0].reply, "register "));
}

static void ctl_stop_replies_then_calls_handler(void **state)
{
	(void)state;
	add("4:stop,0:,");
	serve();
	assert_string_equal(ex[0].reply, "0\nstopping\n");
	assert_int_equal(stop_calls, 1);
}

static void ctl_client_gone_before_reply(void **state)
{
	(void)state;
	/* the account is created on a worker while nobody waits for it */
	add("8:register,4:gone,9:localhost,2:pw,0:,");
	ex[0].hang_up = true;
	add("6:status,0:,");
	add("6:status");          /* hangs up mid-request */
	ex[2].hang_up = true;
	add("16:registered_users,9:localhost,0:,");
	serve();
	assert_non_null(strstr(ex[1].reply, "0\nparleyd "));
	/* the abandoned request still did its work, or is about to */
	assert_true(strcmp(ex[3].reply, "0\ngone\n") == 0 || strcmp(ex[3].reply, "0\n") == 0);
}

static void ctl_open_replaces_stale_socket(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	(void)state;
	/* a socket file nobody listens on: what a killed server leaves */
	fill_addr(&sa);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	add("6:status,0:,");
	serve();
	assert_non_null(strstr(ex[0].reply, "0\nparleyd "));
}

static void ctl_open_refuses_live_socket(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	char err[512] = "", want[200];
	FILE *f;

	(void)state;
	fill_addr(&sa);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(ctl_open(sock_path, err, sizeof(err)), PL_ERR);
	snprintf(want, sizeof(want), "control socket %s is in use", sock_path);
	assert_string_equal(err, want);
	close(fd);
	/* the other server's socket file was left alone */
	assert_int_equal(access(sock_path, F_OK), 0);
	unlink(sock_path);

	/* a regular file is not ours to delete */
	f = fopen(sock_path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(ctl_open(sock_path, err, sizeof(err)), PL_ERR);
	assert_non_null(strstr(err, "is not a socket"));
	assert_int_equal(access(sock_path, F_OK), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(ctl_status_answers_running, setup, teardown),
		cmocka_unit_test_setup_teardown(ctl_socket_is_owner_only, setup, teardown),
		cmocka_unit_test_setup_teardown(ctl_account_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(ctl_usage_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(ctl_malformed_requests_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(ctl_help_lists_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(ctl_stop_replies_then_calls_handler, setup, teardown),
		cmocka_unit_test_setup_teardown(ctl_client_gone_before_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(ctl_open_replaces_stale_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(ctl_open_refuses_live_socket, setup, teardown),
	};

	log_threshold = LOG_WARNING;
	ctl_register_builtin_commands();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
