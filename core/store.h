/*
 * store.h - durable storage on a worker pool.
 *
 * Reactor threads never block on storage: they submit a job, a worker runs
 * it against the database, and the job's done() callback is posted back to
 * the submitting shard. Jobs submitted by one shard complete in submission
 * order for the same key only if they go to the same worker; callers that
 * need ordering chain jobs in done().
 * The embedded backend is SQLite (DATA_DIR/parley.db, WAL, synchronous=FULL
 * so that what the server acknowledged survives kill -9). The schema is
 * versioned; migrations run in store_open() before any listener is opened.
 * One connection per worker; SQLite serialises writers itself.
 * store_open() also takes DATA_DIR/parley.lock (flock) for the life of the
 * process, so a second parleyd on the same data_dir refuses to start.
 * Any thread may submit; a job submitted off-shard (shard_self() == NULL)
 * has its done() run on the worker.
 */
#ifndef PL_STORE_H
#define PL_STORE_H

#include <stddef.h>

struct sqlite3;
struct sqlite3_stmt;
struct store_job;

typedef void store_run_fn(struct store_job *j, struct sqlite3 *db);
typedef void store_done_fn(struct store_job *j);

struct store_job {
	store_run_fn *run;       /* worker thread */
	store_done_fn *done;     /* submitting shard's thread (or worker, if submitted off-shard) */
	int shard;               /* set by store_submit */
	int status;              /* for the job's own use (PL_OK, ...) */
	struct store_job *next;  /* queue link, store's own */
};

int store_open(const char *data_dir, int workers, char *err, size_t errlen);
void store_submit(struct store_job *j);
/* Waits for queued jobs to finish, then closes the databases. */
void store_close(void);
/* Current schema version (for tests and status). */
int store_schema_version(void);

/* In a job's run(): a prepared statement for sql, cached per worker
 * connection. sql must be a string literal (the cache is keyed by its
 * address). Hand it back with store_release() (it is reset, not freed). */
struct sqlite3_stmt *store_prepare(struct sqlite3 *db, const char *sql);
void store_release(struct sqlite3_stmt *stmt);

#endif
