/*
 * users.c - accounts and their SCRAM keys, as storage jobs.
 *
 * Every call becomes one job: the work (PBKDF2 included) runs on a storage
 * worker and the callback on the caller's shard. Invalid input is answered
 * through the same path, so a caller always gets its callback later, never
 * from inside the call.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include "core/cfg.h"
#include "core/log.h"
#include "core/pl.h"
#include "core/store.h"
#include "core/users.h"

#define USERS_SALT_LEN 16
#define USERS_DEFAULT_ITERATIONS 4096

enum users_op { OP_REGISTER, OP_UNREGISTER, OP_SET_PASSWORD, OP_GET_CREDS, OP_CHECK, OP_LIST };

struct users_job {
	struct store_job job;      /* first: the store hands us back this */
	enum users_op op;
	char *host, *user, *password;
	int iterations;
	struct user_creds creds;
	char **names;
	size_t nnames;
	union {
		users_done_fn *done;
		users_creds_fn *creds;
		users_list_fn *list;
	} cb;
	void *arg;
};

static const char *const status_str[] = {
	[USERS_OK] = "ok",
	[USERS_EXISTS] = "the account exists",
	[USERS_NOT_FOUND] = "no such user",
	[USERS_BAD_PASSWORD] = "wrong password",
	[USERS_INVALID] = "invalid user, host or password",
	[USERS_FAILED] = "storage error",
};

const char *users_status_str(int status)
{
	if (status < 0 || (size_t)status >= PL_ARRAY_LEN(status_str))
		return "unknown status";
	return status_str[status];
}

static int users_iterations(void)
{
	if (cfg && cfg->scram_iterations > 0)
		return cfg->scram_iterations;
	return USERS_DEFAULT_ITERATIONS;
}

static int users_db_error(sqlite3 *db, const char *what, const struct users_job *uj)
{
	log_error("users: %s %s@%s: %s", what, uj->user ? uj->user : "", uj->host,
		  sqlite3_errmsg(db));
	return USERS_FAILED;
}

/* Fresh salts for both hashes, then PBKDF2 twice: the slow part. */
static int users_derive(struct users_job *uj)
{
	uint8_t salt[USERS_SALT_LEN];

	if (RAND_bytes(salt, sizeof(salt)) != 1 ||
	    scram_make_creds(SCRAM_SHA1, uj->password, salt, sizeof(salt), uj->iterations,
			     &uj->creds.sha1) != PL_OK)
		return USERS_FAILED;
	if (RAND_bytes(salt, sizeof(salt)) != 1 ||
	    scram_make_creds(SCRAM_SHA256, uj->password, salt, sizeof(salt), uj->iterations,
			     &uj->creds.sha256) != PL_OK)
		return USERS_FAILED;
	return USERS_OK;
}

static void users_bind_creds(sqlite3_stmt *s, int at, const struct scram_creds *c)
{
	sqlite3_bind_blob(s, at, c->salt, (int)c->salt_len, SQLITE_STATIC);
	sqlite3_bind_int(s, at + 1, c->iterations);
	sqlite3_bind_blob(s, at + 2, c->stored_key, (int)c->key_len, SQLITE_STATIC);
	sqlite3_bind_blob(s, at + 3, c->server_key, (int)c->key_len, SQLITE_STATIC);
}

static bool users_column_creds(sqlite3_stmt *s, int at, size_t key_len,
			       struct scram_creds *c)
{
	int salt_len = sqlite3_column_bytes(s, at);
	const void *salt = sqlite3_column_blob(s, at);
	const void *stored = sqlite3_column_blob(s, at + 2);
	const void *server = sqlite3_column_blob(s, at + 3);

	if (salt_len <= 0 || salt_len > SCRAM_MAX_SALT || !salt || !stored || !server ||
	    (size_t)sqlite3_column_bytes(s, at + 2) != key_len ||
	    (size_t)sqlite3_column_bytes(s, at + 3) != key_len)
		return false;
	memcpy(c->salt, salt, (size_t)salt_len);
	c->salt_len = (size_t)salt_len;
	c->iterations = sqlite3_column_int(s, at + 1);
	memcpy(c->stored_key, stored, key_len);
	memcpy(c->server_key, server, key_len);
	c->key_len = key_len;
	return c->iterations > 0;
}

static int users_exists(sqlite3 *db, struct users_job *uj)
{
	sqlite3_stmt *s = store_prepare(db,
		"SELECT 1 FROM users WHERE host = ?1 AND username = ?2");
	int rc;

	if (!s)
		return users_db_error(db, "look up", uj);
	sqlite3_bind_text(s, 1, uj->host, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, uj->user, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	store_release(s);
	if (rc == SQLITE_ROW)
		return USERS_EXISTS;
	if (rc == SQLITE_DONE)
		return USERS_NOT_FOUND;
	return users_db_error(db, "look up", uj);
}

static int users_do_register(sqlite3 *db, struct users_job *uj)
{
	sqlite3_stmt *s;
	int rc;

	/* skip the PBKDF2 for a name that is taken; the primary key still
	 * settles a race between two registrations of the same name */
	rc = users_exists(db, uj);
	if (rc != USERS_NOT_FOUND)
		return rc;
	rc = users_derive(uj);
	if (rc != USERS_OK)
		return rc;
	s = store_prepare(db,
		"INSERT INTO users (host, username,"
		" sha1_salt, sha1_iterations, sha1_stored_key, sha1_server_key,"
		" sha256_salt, sha256_iterations, sha256_stored_key, sha256_server_key,"
		" created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
	if (!s)
		return users_db_error(db, "register", uj);
	sqlite3_bind_text(s, 1, uj->host, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, uj->user, -1, SQLITE_STATIC);
	users_bind_creds(s, 3, &uj->creds.sha1);
	users_bind_creds(s, 7, &uj->creds.sha256);
	sqlite3_bind_int64(s, 11, (sqlite3_int64)time(NULL));
	rc = sqlite3_step(s);
	store_release(s);
	if (rc == SQLITE_DONE)
		return USERS_OK;
	if (rc == SQLITE_CONSTRAINT)
		return USERS_EXISTS;
	return users_db_error(db, "register", uj);
}

static int users_do_set_password(sqlite3 *db, struct users_job *uj)
{
	sqlite3_stmt *s;
	int rc;

	rc = users_exists(db, uj);
	if (rc != USERS_EXISTS)
		return rc;
	rc = users_derive(uj);
	if (rc != USERS_OK)
		return rc;
	s = store_prepare(db,
		"UPDATE users SET"
		" sha1_salt = ?3, sha1_iterations = ?4, sha1_stored_key = ?5, sha1_server_key = ?6,"
		" sha256_salt = ?7, sha256_iterations = ?8, sha256_stored_key = ?9,"
		" sha256_server_key = ?10 WHERE host = ?1 AND username = ?2");
	if (!s)
		return users_db_error(db, "set password of", uj);
	sqlite3_bind_text(s, 1, uj->host, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, uj->user, -1, SQLITE_STATIC);
	users_bind_creds(s, 3, &uj->creds.sha1);
	users_bind_creds(s, 7, &uj->creds.sha256);
	rc = sqlite3_step(s);
	store_release(s);
	if (rc != SQLITE_DONE)
		return users_db_error(db, "set password of", uj);
	return sqlite3_changes(db) > 0 ? USERS_OK : USERS_NOT_FOUND;
}

/* Every table that holds a user's data: an account removed leaves nothing.
 * Literals, because the statement cache is keyed by the SQL's address. */
static const char *const users_owned_deletes[] = {
	"DELETE FROM roster WHERE host = ?1 AND username = ?2",
	"DELETE FROM roster_version WHERE host = ?1 AND username = ?2",
	"DELETE FROM offline WHERE host = ?1 AND username = ?2",
	"DELETE FROM vcard WHERE host = ?1 AND username = ?2",
	"DELETE FROM private_storage WHERE host = ?1 AND username = ?2",
	"DELETE FROM blocklist WHERE host = ?1 AND username = ?2",
	"DELETE FROM last_activity WHERE host = ?1 AND username = ?2",
};

static int users_do_unregister(sqlite3 *db, struct users_job *uj)
{
	sqlite3_stmt *s = store_prepare(db,
		"DELETE FROM users WHERE host = ?1 AND username = ?2");
	int rc, changed;

	if (!s)
		return users_db_error(db, "unregister", uj);
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		store_release(s);
		return users_db_error(db, "unregister", uj);
	}
	sqlite3_bind_text(s, 1, uj->host, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, uj->user, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	store_release(s);
	changed = sqlite3_changes(db);
	for (size_t i = 0; rc == SQLITE_DONE && i < PL_ARRAY_LEN(users_owned_deletes); i++) {
		sqlite3_stmt *d = store_prepare(db, users_owned_deletes[i]);
		if (!d) {
			rc = SQLITE_ERROR;
			break;
		}
		sqlite3_bind_text(d, 1, uj->host, -1, SQLITE_STATIC);
		sqlite3_bind_text(d, 2, uj->user, -1, SQLITE_STATIC);
		rc = sqlite3_step(d);
		store_release(d);
	}
	if (rc != SQLITE_DONE) {
		int status = users_db_error(db, "unregister", uj);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return status;
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		int status = users_db_error(db, "unregister", uj);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return status;
	}
	return changed > 0 ? USERS_OK : USERS_NOT_FOUND;
}

static int users_do_get_creds(sqlite3 *db, struct users_job *uj)
{
	sqlite3_stmt *s = store_prepare(db,
		"SELECT sha1_salt, sha1_iterations, sha1_stored_key, sha1_server_key,"
		" sha256_salt, sha256_iterations, sha256_stored_key, sha256_server_key"
		" FROM users WHERE host = ?1 AND username = ?2");
	int rc, status;

	if (!s)
		return users_db_error(db, "read", uj);
	sqlite3_bind_text(s, 1, uj->host, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, uj->user, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		status = USERS_NOT_FOUND;
	} else if (rc != SQLITE_ROW) {
		status = users_db_error(db, "read", uj);
	} else if (!users_column_creds(s, 0, scram_hash_len(SCRAM_SHA1), &uj->creds.sha1) ||
		   !users_column_creds(s, 4, scram_hash_len(SCRAM_SHA256), &uj->creds.sha256)) {
		log_error("users: %s@%s: stored credentials are damaged", uj->user, uj->host);
		status = USERS_FAILED;
	} else {
		status = USERS_OK;
	}
	store_release(s);
	return status;
}

static int users_do_check(sqlite3 *db, struct users_job *uj)
{
	struct scram_creds derived;
	const struct scram_creds *stored = &uj->creds.sha256;
	int rc = users_do_get_creds(db, uj);

	if (rc != USERS_OK)
		return rc;
	if (scram_make_creds(SCRAM_SHA256, uj->password, stored->salt, stored->salt_len,
			     stored->iterations, &derived) != PL_OK)
		return USERS_FAILED;
	rc = CRYPTO_memcmp(derived.stored_key, stored->stored_key, stored->key_len) == 0
		? USERS_OK : USERS_BAD_PASSWORD;
	OPENSSL_cleanse(&derived, sizeof(derived));
	return rc;
}

static int users_do_list(sqlite3 *db, struct users_job *uj)
{
	sqlite3_stmt *s = store_prepare(db,
		"SELECT username FROM users WHERE host = ?1 ORDER BY username");
	size_t cap = 0;
	int rc;

	if (!s)
		return users_db_error(db, "list users of", uj);
	sqlite3_bind_text(s, 1, uj->host, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(s, 0);

		if (uj->nnames == cap) {
			cap = cap ? cap * 2 : 16;
			uj->names = pl_realloc(uj->names, cap * sizeof(*uj->names));
		}
		uj->names[uj->nnames++] = pl_strdup(name ? name : "");
	}
	store_release(s);
	if (rc != SQLITE_DONE)
		return users_db_error(db, "list users of", uj);
	return USERS_OK;
}

static void users_run(struct store_job *j, struct sqlite3 *db)
{
	struct users_job *uj = PL_CONTAINER_OF(j, struct users_job, job);

	if (j->status != USERS_OK)
		return;     /* refused before it was queued */
	switch (uj->op) {
	case OP_REGISTER: j->status = users_do_register(db, uj); break;
	case OP_UNREGISTER: j->status = users_do_unregister(db, uj); break;
	case OP_SET_PASSWORD: j->status = users_do_set_password(db, uj); break;
	case OP_GET_CREDS: j->status = users_do_get_creds(db, uj); break;
	case OP_CHECK: j->status = users_do_check(db, uj); break;
	case OP_LIST: j->status = users_do_list(db, uj); break;
	}
}

static void users_free(struct users_job *uj)
{
	free(uj->host);
	free(uj->user);
	if (uj->password) {
		OPENSSL_cleanse(uj->password, strlen(uj->password));
		free(uj->password);
	}
	for (size_t i = 0; i < uj->nnames; i++)
		free(uj->names[i]);
	free(uj->names);
	OPENSSL_cleanse(&uj->creds, sizeof(uj->creds));
	free(uj);
}

static void users_done(struct store_job *j)
{
	struct users_job *uj = PL_CONTAINER_OF(j, struct users_job, job);
	/* the store reports its own failures as PL_ERR */
	int status = j->status < 0 ? USERS_FAILED : j->status;

	switch (uj->op) {
	case OP_GET_CREDS:
		uj->cb.creds(uj->arg, status, status == USERS_OK ? &uj->creds : NULL);
		break;
	case OP_LIST:
		uj->cb.list(uj->arg, status, status == USERS_OK ? uj->names : NULL,
			    status == USERS_OK ? uj->nnames : 0);
		break;
	default:
		if (uj->cb.done)
			uj->cb.done(uj->arg, status);
		break;
	}
	users_free(uj);
}

static bool users_host_ok(const char *host)
{
	if (!host || !*host)
		return false;
	return !cfg || cfg_is_local_host(host);
}

static struct users_job *users_job_new(enum users_op op, const char *host, const char *user,
				       const char *password, void *arg)
{
	struct users_job *uj = pl_calloc(1, sizeof(*uj));

	uj->op = op;
	uj->job.run = users_run;
	uj->job.done = users_done;
	uj->job.status = USERS_OK;
	uj->host = pl_strdup(host ? host : "");
	uj->user = user ? pl_strdup(user) : NULL;
	uj->password = password ? pl_strdup(password) : NULL;
	uj->iterations = users_iterations();
	uj->arg = arg;
	if (!users_host_ok(host))
		uj->job.status = USERS_INVALID;
	if (op != OP_LIST && (!user || !*user))
		uj->job.status = USERS_INVALID;
	if ((op == OP_REGISTER || op == OP_SET_PASSWORD || op == OP_CHECK) &&
	    (!password || !*password))
		uj->job.status = USERS_INVALID;
	return uj;
}

void users_register(const char *host, const char *user, const char *password,
		    users_done_fn *cb, void *arg)
{
	struct users_job *uj = users_job_new(OP_REGISTER, host, user, password, arg);

	uj->cb.done = cb;
	store_submit(&uj->job);
}

void users_unregister(const char *host, const char *user, users_done_fn *cb, void *arg)
{
	struct users_job *uj = users_job_new(OP_UNREGISTER, host, user, NULL, arg);

	uj->cb.done = cb;
	store_submit(&uj->job);
}

void users_set_password(const char *host, const char *user, const char *password,
			users_done_fn *cb, void *arg)
{
	struct users_job *uj = users_job_new(OP_SET_PASSWORD, host, user, password, arg);

	uj->cb.done = cb;
	store_submit(&uj->job);
}

void users_get_creds(const char *host, const char *user, users_creds_fn *cb, void *arg)
{
	struct users_job *uj = users_job_new(OP_GET_CREDS, host, user, NULL, arg);

	uj->cb.creds = cb;
	store_submit(&uj->job);
}

void users_check_password(const char *host, const char *user, const char *password,
			  users_done_fn *cb, void *arg)
{
	struct users_job *uj = users_job_new(OP_CHECK, host, user, password, arg);

	uj->cb.done = cb;
	store_submit(&uj->job);
}

void users_list(const char *host, users_list_fn *cb, void *arg)
{
	struct users_job *uj = users_job_new(OP_LIST, host, NULL, NULL, arg);

	uj->cb.list = cb;
	store_submit(&uj->job);
}
