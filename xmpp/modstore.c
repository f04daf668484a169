/*
 * modstore.c - the one storage job the basic modules need: a statement run
 * once per row of text parameters inside one transaction, handing back the
 * first column of what a SELECT returned; or several such statements in
 * one transaction under a per-user quota counted in it. Each module keeps
 * its SQL next to its protocol code; this file only knows how to run it.
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/pl.h"
#include "core/store.h"
#include "xmpp/modules.h"
#include "xmpp/xml.h"

/* A statement and its rows of parameters, copied for the worker. */
struct modstore_stmt {
	const char *sql;
	char **params;
	size_t ncols, nrows;
};

struct modstore_job {
	struct store_job job;        /* first: the store hands us back this */
	struct modstore_stmt *stmts;
	size_t nstmts;
	struct modstore_stmt count;  /* sql NULL: no quota */
	long max;
	char **rows;
	size_t nout, cap;
	long changes;
	modstore_done_fn *done;
	void *arg;
};

static void modstore_stmt_copy(struct modstore_stmt *to, const char *sql,
			       const char *const *params, size_t ncols, size_t nrows)
{
	size_t n = ncols * nrows;
	to->sql = sql;
	to->ncols = ncols;
	to->nrows = nrows;
	to->params = pl_calloc(n ? n : 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		to->params[i] = pl_strdup(params[i] ? params[i] : "");
}

static void modstore_stmt_free(struct modstore_stmt *st)
{
	for (size_t i = 0; i < st->ncols * st->nrows; i++)
		free(st->params[i]);
	free(st->params);
}

static int modstore_step_all(struct modstore_job *mj, sqlite3 *db, sqlite3_stmt *st)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);
		if (mj->nout == mj->cap) {
			mj->cap = mj->cap ? mj->cap * 2 : 8;
			mj->rows = pl_realloc(mj->rows, mj->cap * sizeof(*mj->rows));
		}
		mj->rows[mj->nout++] = pl_strdup(t ? (const char *)t : "");
	}
	if (rc != SQLITE_DONE)
		return PL_ERR;
	mj->changes += sqlite3_changes(db);
	return PL_OK;
}

static int modstore_run_stmt(struct modstore_job *mj, sqlite3 *db, const struct modstore_stmt *ms)
{
	if (ms->nrows == 0)
		return PL_OK;
	sqlite3_stmt *st = store_prepare(db, ms->sql);
	if (!st)
		return PL_ERR;
	for (size_t r = 0; r < ms->nrows; r++) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		for (size_t c = 0; c < ms->ncols; c++)
			sqlite3_bind_text(st, (int)c + 1, ms->params[r * ms->ncols + c], -1,
					  SQLITE_STATIC);
		if (modstore_step_all(mj, db, st) != PL_OK) {
			log_error("modules: storage: %s: %s", ms->sql, sqlite3_errmsg(db));
			store_release(st);
			return PL_ERR;
		}
	}
	store_release(st);
	return PL_OK;
}

static int modstore_count(const struct modstore_stmt *ms, sqlite3 *db, long *count)
{
	sqlite3_stmt *st = store_prepare(db, ms->sql);
	if (!st)
		return PL_ERR;
	for (size_t c = 0; c < ms->ncols; c++)
		sqlite3_bind_text(st, (int)c + 1, ms->params[c], -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*count = (long)sqlite3_column_int64(st, 0);
	else
		log_error("modules: storage: %s: %s", ms->sql, sqlite3_errmsg(db));
	store_release(st);
	return rc == SQLITE_ROW ? PL_OK : PL_ERR;
}

/* The statements, and for a quota the counts around them, in one
 * transaction (BEGIN IMMEDIATE: two sets of one user cannot both pass the
 * count). A change is refused only if it raised the count past max, so
 * replacing what is stored works even above a quota lowered since. */
static int modstore_run_txn(struct modstore_job *mj, sqlite3 *db)
{
	long before = 0, after = 0;
	if (mj->count.sql && modstore_count(&mj->count, db, &before) != PL_OK)
		return PL_ERR;
	for (size_t i = 0; i < mj->nstmts; i++)
		if (modstore_run_stmt(mj, db, &mj->stmts[i]) != PL_OK)
			return PL_ERR;
	if (mj->count.sql && modstore_count(&mj->count, db, &after) != PL_OK)
		return PL_ERR;
	if (mj->count.sql && after > mj->max && after > before)
		return PL_DECLINED;
	return PL_OK;
}

static void modstore_run(struct store_job *j, sqlite3 *db)
{
	struct modstore_job *mj = PL_CONTAINER_OF(j, struct modstore_job, job);
	bool txn = mj->count.sql || mj->nstmts > 1 || mj->stmts[0].nrows > 1;
	int rc = PL_ERR;

	if (!txn || sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK)
		rc = modstore_run_txn(mj, db);
	else
		log_error("modules: storage: cannot begin: %s", sqlite3_errmsg(db));
	if (rc == PL_OK && txn && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		log_error("modules: storage: cannot commit: %s", sqlite3_errmsg(db));
		rc = PL_ERR;
	}
	if (rc != PL_OK && txn)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	if (rc == PL_DECLINED)
		mj->changes = 0;
	j->status = rc;
}

static void modstore_done(struct store_job *j)
{
	struct modstore_job *mj = PL_CONTAINER_OF(j, struct modstore_job, job);
	int ok = j->status == PL_OK;

	mj->done(mj->arg, j->status, ok ? mj->rows : NULL, ok ? mj->nout : 0, mj->changes);
	for (size_t i = 0; i < mj->nout; i++)
		free(mj->rows[i]);
	free(mj->rows);
	for (size_t i = 0; i < mj->nstmts; i++)
		modstore_stmt_free(&mj->stmts[i]);
	free(mj->stmts);
	if (mj->count.sql)
		modstore_stmt_free(&mj->count);
	free(mj);
}

static struct modstore_job *modstore_job_new(size_t nstmts, modstore_done_fn *done, void *arg)
{
	struct modstore_job *mj = pl_calloc(1, sizeof(*mj));
	mj->job.run = modstore_run;
	mj->job.done = modstore_done;
	mj->stmts = pl_calloc(nstmts, sizeof(*mj->stmts));
	mj->nstmts = nstmts;
	mj->done = done;
	mj->arg = arg;
	return mj;
}

void modstore_exec(const char *sql, const char *const *params, size_t ncols, size_t nrows,
		   modstore_done_fn *done, void *arg)
{
	struct modstore_job *mj = modstore_job_new(1, done, arg);
	modstore_stmt_copy(&mj->stmts[0], sql, params, ncols, nrows);
	store_submit(&mj->job);
}

void modstore_exec_capped(const struct modstore_rows *stmts, size_t nstmts,
			  const char *count_sql, const char *const *count_params,
			  size_t ncount, long max, modstore_done_fn *done, void *arg)
{
	struct modstore_job *mj = modstore_job_new(nstmts, done, arg);
	for (size_t i = 0; i < nstmts; i++)
		modstore_stmt_copy(&mj->stmts[i], stmts[i].sql, stmts[i].params, stmts[i].ncols,
				   stmts[i].nrows);
	modstore_stmt_copy(&mj->count, count_sql, count_params, ncount, 1);
	mj->max = max;
	store_submit(&mj->job);
}

/* ---- elements kept as text ---- */

char *modstore_xml_text(const struct xml_node *el)
{
	struct buf b = { 0 };
	xml_serialize(el, "", &b);
	char *s = pl_strndup((const char *)buf_head(&b), buf_used(&b));
	buf_free(&b);
	return s;
}

struct modstore_parse {
	struct xml_node *el;
	int failed;
};

static void parse_open(void *ud, struct xml_node *st)
{
	PL_UNUSED(ud);
	xml_free(st);
}

static void parse_stanza(void *ud, struct xml_node *el)
{
	struct modstore_parse *p = ud;
	if (p->el) {
		p->failed = 1;
		xml_free(el);
		return;
	}
	p->el = el;
}

static void parse_close(void *ud)
{
	PL_UNUSED(ud);
}

static void parse_error(void *ud, enum xml_stream_error e, const char *detail)
{
	struct modstore_parse *p = ud;
	PL_UNUSED(e);
	PL_UNUSED(detail);
	p->failed = 1;
}

static const struct xml_stream_handler parse_handler = {
	.stream_open = parse_open,
	.stanza = parse_stanza,
	.stream_close = parse_close,
	.error = parse_error,
};

struct xml_node *modstore_xml_parse(const char *text)
{
	static const char hdr[] = "<stream:stream xmlns='jabber:client' "
		"xmlns:stream='http://etherx.jabber.org/streams'>";
	struct modstore_parse p = { NULL, 0 };
	size_t len = strlen(text);
	struct xml_stream *xs = xml_stream_new(&parse_handler, &p, len + 1024);
	/* What we stored ourselves, but a damaged row must not crash anyone. */
	if (xml_stream_feed(xs, hdr, sizeof(hdr) - 1) != PL_OK ||
	    xml_stream_feed(xs, text, len) != PL_OK)
		p.failed = 1;
	xml_stream_free(xs);
	if (p.failed || !p.el) {
		xml_free(p.el);
		return NULL;
	}
	return p.el;
}
