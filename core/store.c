/*
 * store.c - SQLite on a pool of worker threads.
 *
 * Reactor threads hand jobs to a FIFO guarded by a mutex and a condition
 * variable; workers are plain threads (not shards), so blocking there is the
 * point. Each worker owns one connection and its prepared statements. The
 * schema is migrated once, in store_open(), on the calling thread.
 *
 * DATA_DIR/parley.lock carries an flock() for the life of the process: a
 * second parleyd on the same data_dir fails to start instead of sharing the
 * database, and a crashed one leaves no stale lock behind (the kernel drops
 * it with the process).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/log.h"
#include "core/pl.h"
#include "core/shard.h"
#include "core/store.h"

#define STORE_MAX_WORKERS 16
#define STORE_STMT_CACHE 48
#define STORE_BUSY_MS 10000

/*
 * Migrations, in order; each runs in its own transaction and bumps
 * schema_version. Append only: a released migration is never edited.
 */
struct store_migration {
	int version;
	const char *what;
	const char *sql;
};

static const struct store_migration store_migrations[] = {
	{ 1, "users and their SCRAM credentials",
	  "CREATE TABLE users ("
	  " host TEXT NOT NULL,"
	  " username TEXT NOT NULL,"
	  " sha1_salt BLOB NOT NULL,"
	  " sha1_iterations INTEGER NOT NULL,"
	  " sha1_stored_key BLOB NOT NULL,"
	  " sha1_server_key BLOB NOT NULL,"
	  " sha256_salt BLOB NOT NULL,"
	  " sha256_iterations INTEGER NOT NULL,"
	  " sha256_stored_key BLOB NOT NULL,"
	  " sha256_server_key BLOB NOT NULL,"
	  " created_at INTEGER NOT NULL,"
	  " PRIMARY KEY (host, username)"
	  ") WITHOUT ROWID;" },
	{ 2, "rosters, offline messages, vCards, private storage, block lists, last activity",
	  /* subscription: none|to|from|both; ask: pending-out subscribe;
	   * pending_in: an inbound request not yet answered (stanza kept so it
	   * is re-delivered at login); approved: pre-approval (RFC 6121 3.4). */
	  "CREATE TABLE roster ("
	  " host TEXT NOT NULL, username TEXT NOT NULL, jid TEXT NOT NULL,"
	  " name TEXT, subscription TEXT NOT NULL DEFAULT 'none',"
	  " ask INTEGER NOT NULL DEFAULT 0, approved INTEGER NOT NULL DEFAULT 0,"
	  " pending_in INTEGER NOT NULL DEFAULT 0, pending_in_xml TEXT,"
	  " in_roster INTEGER NOT NULL DEFAULT 1,"
	  " groups TEXT NOT NULL DEFAULT '',"
	  " PRIMARY KEY (host, username, jid)) WITHOUT ROWID;"
	  "CREATE TABLE roster_version ("
	  " host TEXT NOT NULL, username TEXT NOT NULL, version INTEGER NOT NULL,"
	  " PRIMARY KEY (host, username)) WITHOUT ROWID;"
	  "CREATE TABLE offline ("
	  " id INTEGER PRIMARY KEY AUTOINCREMENT,"
	  " host TEXT NOT NULL, username TEXT NOT NULL,"
	  " stamp TEXT NOT NULL, xml TEXT NOT NULL);"
	  "CREATE INDEX offline_user ON offline (host, username, id);"
	  "CREATE TABLE vcard ("
	  " host TEXT NOT NULL, username TEXT NOT NULL, xml TEXT NOT NULL,"
	  " PRIMARY KEY (host, username)) WITHOUT ROWID;"
	  "CREATE TABLE private_storage ("
	  " host TEXT NOT NULL, username TEXT NOT NULL, namespace TEXT NOT NULL,"
	  " xml TEXT NOT NULL,"
	  " PRIMARY KEY (host, username, namespace)) WITHOUT ROWID;"
	  "CREATE TABLE blocklist ("
	  " host TEXT NOT NULL, username TEXT NOT NULL, jid TEXT NOT NULL,"
	  " PRIMARY KEY (host, username, jid)) WITHOUT ROWID;"
	  "CREATE TABLE last_activity ("
	  " host TEXT NOT NULL, username TEXT NOT NULL,"
	  " seconds INTEGER NOT NULL, status TEXT NOT NULL DEFAULT '',"
	  " PRIMARY KEY (host, username)) WITHOUT ROWID;" },
};

struct store_stmt {
	const char *sql;
	sqlite3_stmt *stmt;
};

struct store_worker {
	pthread_t thread;
	sqlite3 *db;
	struct store_stmt cache[STORE_STMT_CACHE];
	size_t ncache;
	int id;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct store_job *head, *tail;
	bool stopping;
	bool open;
	int lock_fd;
	int nworkers;
	int schema_version;
	struct store_worker workers[STORE_MAX_WORKERS];
} st = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
	.lock_fd = -1,
};

static __thread struct store_worker *store_self;

static int store_fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int store_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return PL_ERR;
}

/* mkdir -p, the last component with mode 0700 (it holds keys and the db) */
static int store_mkdirs(const char *dir)
{
	char *path = pl_strdup(dir);
	int rc = 0;

	for (char *p = path + 1; *p && rc == 0; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			rc = -1;
		*p = '/';
	}
	if (rc == 0 && mkdir(path, 0700) < 0 && errno != EEXIST)
		rc = -1;
	free(path);
	return rc;
}

static int store_take_lock(const char *data_dir, int *out, char *err, size_t errlen)
{
	char path[4096], pid[32];
	int fd, n;

	snprintf(path, sizeof(path), "%s/parley.lock", data_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return store_fail(err, errlen, "cannot open %s: %s", path, strerror(errno));
	/* a lock belongs to an open file description, so this also refuses a
	 * second store_open() in this very process */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		close(fd);
		if (e == EWOULDBLOCK)
			return store_fail(err, errlen,
					  "data_dir %s is in use by another parleyd (lock %s)",
					  data_dir, path);
		return store_fail(err, errlen, "cannot lock %s: %s", path, strerror(e));
	}
	/* the pid is only for the administrator's eyes; the lock is the flock */
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		log_warning("store: cannot write pid to %s", path);
	*out = fd;
	return PL_OK;
}

static int store_exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return PL_OK;
	store_fail(err, errlen, "sqlite: %s (in: %.60s)", msg ? msg : sqlite3_errmsg(db), sql);
	sqlite3_free(msg);
	return PL_ERR;
}

static int store_connect(const char *file, sqlite3 **out, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	int rc;

	rc = sqlite3_open_v2(file, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			     SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		store_fail(err, errlen, "cannot open %s: %s", file,
			   db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return PL_ERR;
	}
	sqlite3_busy_timeout(db, STORE_BUSY_MS);
	/* WAL lets readers proceed beside the writer; FULL makes a commit
	 * durable before we acknowledge it (kill -9, power loss) */
	if (store_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
		       " PRAGMA foreign_keys=ON;", err, errlen) != PL_OK) {
		sqlite3_close(db);
		return PL_ERR;
	}
	*out = db;
	return PL_OK;
}

static int store_read_version(sqlite3 *db, int *version, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (store_exec(db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);"
		       " INSERT INTO schema_version SELECT 0"
		       " WHERE NOT EXISTS (SELECT 1 FROM schema_version);", err, errlen) != PL_OK)
		return PL_ERR;
	if (sqlite3_prepare_v2(db, "SELECT MAX(version) FROM schema_version", -1, &s, NULL) != SQLITE_OK)
		return store_fail(err, errlen, "sqlite: %s", sqlite3_errmsg(db));
	rc = sqlite3_step(s);
	*version = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
	sqlite3_finalize(s);
	if (*version < 0)
		return store_fail(err, errlen, "sqlite: cannot read schema_version");
	return PL_OK;
}

static int store_migrate(sqlite3 *db, const char *file, char *err, size_t errlen)
{
	int version = 0;
	int latest = store_migrations[PL_ARRAY_LEN(store_migrations) - 1].version;

	if (store_read_version(db, &version, err, errlen) != PL_OK)
		return PL_ERR;
	if (version > latest)
		return store_fail(err, errlen, "%s has schema version %d, newer than this"
				  " parleyd knows (%d): refusing to touch it", file, version, latest);
	for (size_t i = 0; i < PL_ARRAY_LEN(store_migrations); i++) {
		const struct store_migration *m = &store_migrations[i];
		char sql[64];

		if (m->version <= version)
			continue;
		/* IMMEDIATE: take the write lock first so two starters cannot
		 * both decide to apply the same step */
		if (store_exec(db, "BEGIN IMMEDIATE", err, errlen) != PL_OK)
			return PL_ERR;
		snprintf(sql, sizeof(sql), "UPDATE schema_version SET version = %d", m->version);
		if (store_exec(db, m->sql, err, errlen) != PL_OK ||
		    store_exec(db, sql, err, errlen) != PL_OK) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return PL_ERR;
		}
		if (store_exec(db, "COMMIT", err, errlen) != PL_OK) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return PL_ERR;
		}
		log_info("store: %s: schema version %d (%s)", file, m->version, m->what);
		version = m->version;
	}
	st.schema_version = version;
	return PL_OK;
}

static void store_done_trampoline(void *arg)
{
	struct store_job *j = arg;

	j->done(j);
}

static void store_finish(struct store_job *j)
{
	if (!j->done)
		return;
	if (j->shard < 0) {
		j->done(j);
		return;
	}
	/* at shutdown the shards may be gone before the store is closed;
	 * nobody is left to hear the answer then */
	if (!shard_get(j->shard)) {
		log_warning("store: shard %d is gone; a job's answer is dropped", j->shard);
		return;
	}
	shard_post(j->shard, store_done_trampoline, j);
}

static void *store_worker_main(void *arg)
{
	struct store_worker *w = arg;
	char name[16];

	snprintf(name, sizeof(name), "parley-store%d", w->id);
	pthread_setname_np(pthread_self(), name);
	store_self = w;
	for (;;) {
		struct store_job *j;

		pthread_mutex_lock(&st.lock);
		while (!st.head && !st.stopping)
			pthread_cond_wait(&st.cond, &st.lock);
		j = st.head;
		if (!j) {
			/* stopping and drained */
			pthread_mutex_unlock(&st.lock);
			break;
		}
		st.head = j->next;
		if (!st.head)
			st.tail = NULL;
		pthread_mutex_unlock(&st.lock);

		j->next = NULL;
		j->run(j, w->db);
		store_finish(j);
	}
	store_self = NULL;
	return NULL;
}

static void store_worker_close(struct store_worker *w)
{
	for (size_t i = 0; i < w->ncache; i++)
		sqlite3_finalize(w->cache[i].stmt);
	w->ncache = 0;
	if (w->db)
		sqlite3_close(w->db);
	w->db = NULL;
}

static void store_release_lock(void)
{
	if (st.lock_fd >= 0)
		close(st.lock_fd);
	st.lock_fd = -1;
}

int store_open(const char *data_dir, int workers, char *err, size_t errlen)
{
	char file[4096];
	sqlite3 *db = NULL;
	int started = 0, lock_fd = -1;

	if (workers <= 0)
		workers = 2;
	if (workers > STORE_MAX_WORKERS)
		workers = STORE_MAX_WORKERS;
	if (store_mkdirs(data_dir) < 0)
		return store_fail(err, errlen, "cannot create data_dir %s: %s", data_dir,
				  strerror(errno));
	if (store_take_lock(data_dir, &lock_fd, err, errlen) != PL_OK)
		return PL_ERR;
	if (st.open) {
		close(lock_fd);
		return store_fail(err, errlen, "store: already open");
	}
	st.lock_fd = lock_fd;
	snprintf(file, sizeof(file), "%s/parley.db", data_dir);
	if (store_connect(file, &db, err, errlen) != PL_OK)
		goto fail;
	if (chmod(file, 0600) < 0)
		log_warning("store: cannot chmod %s: %s", file, strerror(errno));
	if (store_migrate(db, file, err, errlen) != PL_OK)
		goto fail;
	sqlite3_close(db);
	db = NULL;

	memset(st.workers, 0, sizeof(st.workers));
	for (int i = 0; i < workers; i++) {
		st.workers[i].id = i;
		if (store_connect(file, &st.workers[i].db, err, errlen) != PL_OK)
			goto fail;
	}
	st.head = st.tail = NULL;
	st.stopping = false;
	for (; started < workers; started++) {
		int rc = pthread_create(&st.workers[started].thread, NULL, store_worker_main,
					&st.workers[started]);

		if (rc != 0) {
			store_fail(err, errlen, "store: cannot start worker: %s", strerror(rc));
			goto fail;
		}
	}
	pthread_mutex_lock(&st.lock);
	st.nworkers = workers;
	st.open = true;
	pthread_mutex_unlock(&st.lock);
	log_info("store: %s open, schema version %d, %d workers", file, st.schema_version,
		 workers);
	return PL_OK;

fail:
	pthread_mutex_lock(&st.lock);
	st.stopping = true;
	pthread_cond_broadcast(&st.cond);
	pthread_mutex_unlock(&st.lock);
	for (int i = 0; i < started; i++)
		pthread_join(st.workers[i].thread, NULL);
	for (int i = 0; i < workers; i++)
		store_worker_close(&st.workers[i]);
	if (db)
		sqlite3_close(db);
	store_release_lock();
	return PL_ERR;
}

void store_submit(struct store_job *j)
{
	struct shard *self = shard_self();

	j->shard = self ? self->id : -1;
	j->next = NULL;
	pthread_mutex_lock(&st.lock);
	if (!st.open || st.stopping) {
		pthread_mutex_unlock(&st.lock);
		log_error("store: job submitted while the store is closed");
		j->status = PL_ERR;
		store_finish(j);
		return;
	}
	if (st.tail)
		st.tail->next = j;
	else
		st.head = j;
	st.tail = j;
	pthread_cond_signal(&st.cond);
	pthread_mutex_unlock(&st.lock);
}

void store_close(void)
{
	if (!st.open)
		return;
	pthread_mutex_lock(&st.lock);
	st.stopping = true;
	pthread_cond_broadcast(&st.cond);
	pthread_mutex_unlock(&st.lock);
	for (int i = 0; i < st.nworkers; i++)
		pthread_join(st.workers[i].thread, NULL);
	/* fold the WAL back into the main file so a copied parley.db is whole */
	if (st.nworkers > 0 && st.workers[0].db)
		sqlite3_wal_checkpoint_v2(st.workers[0].db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
					  NULL, NULL);
	for (int i = 0; i < st.nworkers; i++)
		store_worker_close(&st.workers[i]);
	st.nworkers = 0;
	st.open = false;
	st.stopping = false;
	store_release_lock();
	log_info("store: closed");
}

int store_schema_version(void)
{
	return st.schema_version;
}

sqlite3_stmt *store_prepare(sqlite3 *db, const char *sql)
{
	struct store_worker *w = store_self;
	sqlite3_stmt *s = NULL;

	/* the cache is keyed by the SQL text's address: callers pass literals */
	if (w && w->db == db) {
		for (size_t i = 0; i < w->ncache; i++) {
			if (w->cache[i].sql == sql) {
				sqlite3_reset(w->cache[i].stmt);
				sqlite3_clear_bindings(w->cache[i].stmt);
				return w->cache[i].stmt;
			}
		}
	}
	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
		log_error("store: cannot prepare \"%s\": %s", sql, sqlite3_errmsg(db));
		return NULL;
	}
	if (w && w->db == db && w->ncache < STORE_STMT_CACHE) {
		w->cache[w->ncache].sql = sql;
		w->cache[w->ncache].stmt = s;
		w->ncache++;
		return s;
	}
	/* not cacheable (full cache, not a worker's connection): it works
	 * all the same, and store_release() finalises it */
	if (w)
		log_warning("store: statement cache full, \"%.40s\" not cached", sql);
	return s;
}

void store_release(sqlite3_stmt *s)
{
	struct store_worker *w = store_self;

	if (!s)
		return;
	if (w) {
		for (size_t i = 0; i < w->ncache; i++) {
			if (w->cache[i].stmt == s) {
				sqlite3_reset(s);
				sqlite3_clear_bindings(s);
				return;
			}
		}
	}
	sqlite3_finalize(s);
}
