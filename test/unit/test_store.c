/*
 * test_store.c - the storage worker pool: schema migrations at open, the
 * data_dir lock, jobs and their done() callbacks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "core/log.h"
#include "core/pl.h"
#include "core/shard.h"
#include "core/store.h"

static char tmpdir[256];
static char datadir[512];

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/parley-test-store.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	/* two levels that do not exist yet: store_open creates both */
	snprintf(datadir, sizeof(datadir), "%s/var/data", tmpdir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[600];

	(void)state;
	store_close();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void open_ok(void)
{
	char err[512] = "";

	if (store_open(datadir, 2, err, sizeof(err)) != PL_OK)
		fail_msg("store_open: %s", err);
}

/* A job that counts, remembers which thread ran done(), and can wait. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int done_count;
static int done_on_shard;

struct count_job {
	struct store_job job;
	int ran;
	sqlite3_stmt *seen_stmt;
};

static void count_run(struct store_job *j, struct sqlite3 *db)
{
	struct count_job *cj = PL_CONTAINER_OF(j, struct count_job, job);
	sqlite3_stmt *s = store_prepare(db, "SELECT COUNT(*) FROM users");

	cj->ran = 1;
	cj->seen_stmt = s;
	j->status = (s && sqlite3_step(s) == SQLITE_ROW) ? PL_OK : PL_ERR;
	store_release(s);
}

static void count_done(struct store_job *j)
{
	PL_UNUSED(j);
	pthread_mutex_lock(&mu);
	done_count++;
	if (shard_self())
		done_on_shard++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void wait_done(int want)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 20;
	pthread_mutex_lock(&mu);
	while (done_count < want) {
		if (pthread_cond_timedwait(&cv, &mu, &until) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&mu);
	assert_int_equal(done_count, want);
}

static void reset_counts(void)
{
	pthread_mutex_lock(&mu);
	done_count = 0;
	done_on_shard = 0;
	pthread_mutex_unlock(&mu);
}

/* Straight to the file, behind the store's back. */
static int sql_int(const char *sql)
{
	char file[600];
	sqlite3 *db;
	sqlite3_stmt *s;
	int v = -1;

	snprintf(file, sizeof(file), "%s/parley.db", datadir);
	assert_int_equal(sqlite3_open_v2(file, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static void sql_exec(const char *sql)
{
	char file[600];
	sqlite3 *db;

	snprintf(file, sizeof(file), "%s/parley.db", datadir);
	assert_int_equal(sqlite3_open_v2(file, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void store_open_creates_data_dir_and_schema(void **state)
{
	struct stat sb;
	char path[600];

	(void)state;
	open_ok();
	assert_int_equal(store_schema_version(), 2);
	assert_int_equal(stat(datadir, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	assert_int_equal(sb.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/parley.db", datadir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 077, 0);
	snprintf(path, sizeof(path), "%s/parley.lock", datadir);
	assert_int_equal(stat(path, &sb), 0);
	store_close();

	assert_int_equal(sql_int("SELECT version FROM schema_version"), 2);
	assert_int_equal(sql_int("SELECT COUNT(*) FROM sqlite_master WHERE name = 'users'"), 1);
	assert_int_equal(sql_int("SELECT COUNT(*) FROM pragma_table_info('users')"
				 " WHERE name IN ('host', 'username', 'sha1_salt', 'sha1_iterations',"
				 " 'sha1_stored_key', 'sha1_server_key', 'sha256_salt',"
				 " 'sha256_iterations', 'sha256_stored_key', 'sha256_server_key',"
				 " 'created_at')"), 11);
	/* WAL is a property of the file: it stays after close */
	assert_int_equal(sql_int("SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
}

static void store_reopen_keeps_data_and_schema_version(void **state)
{
	(void)state;
	open_ok();
	store_close();
	sql_exec("INSERT INTO users VALUES ('localhost', 'alice', x'00', 1, x'00', x'00',"
		 " x'00', 1, x'00', x'00', 0)");
	open_ok();
	assert_int_equal(store_schema_version(), 2);
	store_close();
	assert_int_equal(sql_int("SELECT COUNT(*) FROM users WHERE username = 'alice'"), 1);
	assert_int_equal(sql_int("SELECT version FROM schema_version"), 2);
}

static void store_migrations_idempotent(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		open_ok();
		assert_int_equal(store_schema_version(), 2);
		store_close();
	}
	assert_int_equal(sql_int("SELECT COUNT(*) FROM schema_version"), 1);
	assert_int_equal(sql_int("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'"
				 " AND name = 'users'"), 1);
}

static void store_refuses_newer_schema(void **state)
{
	char err[512] = "";

	(void)state;
	open_ok();
	store_close();
	sql_exec("UPDATE schema_version SET version = 99");
	assert_int_equal(store_open(datadir, 1, err, sizeof(err)), PL_ERR);
	assert_non_null(strstr(err, "schema version 99"));
	/* the failed open left nothing locked behind */
	sql_exec("UPDATE schema_version SET version = 2");
	open_ok();
}

static void store_refuses_a_damaged_database(void **state)
{
	char path[600], err[512] = "";
	FILE *f;

	(void)state;
	assert_int_equal(mkdir(tmpdir, 0700) == 0 || errno == EEXIST, 1);
	snprintf(path, sizeof(path), "%s/var", tmpdir);
	mkdir(path, 0700);
	mkdir(datadir, 0700);
	snprintf(path, sizeof(path), "%s/parley.db", datadir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("this is not a database, just a text file long enough to have a header.....\n"
	      "..........................................................................\n", f);
	fclose(f);
	assert_int_equal(store_open(datadir, 1, err, sizeof(err)), PL_ERR);
	assert_true(strlen(err) > 0);
}

/* Runs store_open in another process; returns its exit status, err in msg. */
static int open_in_child(char *msg, size_t msglen, bool crash_after_open)
{
	int pfd[2], status = -1;
	pid_t pid;
	ssize_t n;

	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char err[512] = "";
		int rc;

		close(pfd[0]);
		rc = store_open(datadir, 1, err, sizeof(err));
		n = write(pfd[1], err, strlen(err));
		PL_UNUSED(n);
		if (crash_after_open)
			kill(getpid(), SIGKILL);
		_exit(rc == PL_OK ? 0 : 1);
	}
	close(pfd[1]);
	n = read(pfd[0], msg, msglen - 1);
	msg[n > 0 ? n : 0] = '\0';
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static void store_second_open_on_same_dir_refused_while_locked(void **state)
{
	char msg[1200], want[1200];

	(void)state;
	open_ok();
	snprintf(want, sizeof(want), "data_dir %s is in use by another parleyd (lock %s/parley.lock)",
		 datadir, datadir);
	assert_int_equal(open_in_child(msg, sizeof(msg), false), 1);
	assert_string_equal(msg, want);
	/* and in this process too: the lock is per open file, not per process */
	assert_int_equal(store_open(datadir, 1, msg, sizeof(msg)), PL_ERR);
	assert_string_equal(msg, want);
	/* the refused attempt did not disturb the holder */
	reset_counts();
	{
		struct count_job j = { .job = { .run = count_run, .done = count_done } };

		store_submit(&j.job);
		wait_done(1);
		assert_int_equal(j.job.status, PL_OK);
	}
	store_close();
	/* released at close: the next one gets in */
	assert_int_equal(open_in_child(msg, sizeof(msg), false), 0);
}

static void store_lock_of_killed_process_does_not_block(void **state)
{
	char msg[512];

	(void)state;
	/* the child opens and is killed with the lock held */
	assert_int_equal(open_in_child(msg, sizeof(msg), true), 128 + SIGKILL);
	open_ok();
}

static void store_jobs_complete_with_done_called(void **state)
{
	enum { N = 200 };
	static struct count_job jobs[N];

	(void)state;
	open_ok();
	reset_counts();
	for (int i = 0; i < N; i++) {
		memset(&jobs[i], 0, sizeof(jobs[i]));
		jobs[i].job.run = count_run;
		jobs[i].job.done = count_done;
		jobs[i].job.status = 12345;
		store_submit(&jobs[i].job);
	}
	wait_done(N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(jobs[i].ran, 1);
		assert_int_equal(jobs[i].job.status, PL_OK);
		/* submitted off-shard: shard is -1 and done() ran on the worker */
		assert_int_equal(jobs[i].job.shard, -1);
	}
	assert_int_equal(done_on_shard, 0);
}

static void store_prepared_statements_cached_per_worker(void **state)
{
	struct count_job a = { .job = { .run = count_run, .done = count_done } };
	struct count_job b = { .job = { .run = count_run, .done = count_done } };
	char err[512];

	(void)state;
	/* one worker: both jobs see the same connection and its cache */
	assert_int_equal(store_open(datadir, 1, err, sizeof(err)), PL_OK);
	reset_counts();
	store_submit(&a.job);
	wait_done(1);
	store_submit(&b.job);
	wait_done(2);
	assert_non_null(a.seen_stmt);
	assert_ptr_equal(a.seen_stmt, b.seen_stmt);
}

static void store_close_drains_the_queue(void **state)
{
	enum { N = 100 };
	static struct count_job jobs[N];

	(void)state;
	open_ok();
	reset_counts();
	for (int i = 0; i < N; i++) {
		memset(&jobs[i], 0, sizeof(jobs[i]));
		jobs[i].job.run = count_run;
		jobs[i].job.done = count_done;
		store_submit(&jobs[i].job);
	}
	store_close();
	/* every job ran and was answered before store_close returned */
	assert_int_equal(done_count, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(jobs[i].ran, 1);
}

static void store_submit_while_closed_fails_the_job(void **state)
{
	struct count_job j = { .job = { .run = count_run, .done = count_done } };

	(void)state;
	reset_counts();
	store_submit(&j.job);
	wait_done(1);
	assert_int_equal(j.ran, 0);
	assert_int_equal(j.job.status, PL_ERR);
}

static void store_done_posted_to_submitting_shard(void **state)
{
	struct count_job j = { .job = { .run = count_run, .done = count_done } };
	struct shard *s0;

	(void)state;
	/* the calling thread becomes shard 0 */
	assert_int_equal(shards_create(1), PL_OK);
	s0 = shard_self();
	assert_non_null(s0);
	open_ok();
	reset_counts();
	store_submit(&j.job);
	assert_int_equal(j.job.shard, 0);
	/* done() waits in shard 0's inbox until its loop runs */
	usleep(200 * 1000);
	assert_int_equal(done_count, 0);
	shards_stop();
	shards_run();
	assert_int_equal(done_count, 1);
	assert_int_equal(done_on_shard, 1);
	store_close();
	shards_destroy();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(store_open_creates_data_dir_and_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(store_reopen_keeps_data_and_schema_version, setup, teardown),
		cmocka_unit_test_setup_teardown(store_migrations_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(store_refuses_newer_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(store_refuses_a_damaged_database, setup, teardown),
		cmocka_unit_test_setup_teardown(store_second_open_on_same_dir_refused_while_locked,
						setup, teardown),
		cmocka_unit_test_setup_teardown(store_lock_of_killed_process_does_not_block, setup, teardown),
		cmocka_unit_test_setup_teardown(store_jobs_complete_with_done_called, setup, teardown),
		cmocka_unit_test_setup_teardown(store_prepared_statements_cached_per_worker, setup, teardown),
		cmocka_unit_test_setup_teardown(store_close_drains_the_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(store_submit_while_closed_fails_the_job, setup, teardown),
		cmocka_unit_test_setup_teardown(store_done_posted_to_submitting_shard, setup, teardown),
	};

	log_threshold = LOG_WARNING;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
