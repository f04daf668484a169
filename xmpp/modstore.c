/*
 * modstore.c - the one storage job the basic modules need: a statement run
 * once per row of text parameters inside one transaction, handing back the
 * first column of what a SELECT returned. Each module keeps its SQL next
 * to its protocol code; this file only knows how to run it.
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

struct modstore_job {
	struct store_job job;        /* first: the store hands us back this */
	const char *sql;
	char **params;
	size_t ncols, nrows;
	char **rows;
	size_t nout, cap;
	long changes;
	modstore_done_fn *done;
	void *arg;
};

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

static void modstore_run(struct store_job *j, sqlite3 *db)
{
	struct modstore_job *mj = PL_CONTAINER_OF(j, struct modstore_job, job);
	sqlite3_stmt *st = store_prepare(db, mj->sql);
	bool txn = mj->nrows > 1;

	j->status = PL_ERR;
	if (!st)
		goto fail;
	if (txn && sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		store_release(st);
		goto fail;
	}
	for (size_t r = 0; r < mj->nrows; r++) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		for (size_t c = 0; c < mj->ncols; c++)
			sqlite3_bind_text(st, (int)c + 1, mj->params[r * mj->ncols + c], -1,
					  SQLITE_STATIC);
		if (modstore_step_all(mj, db, st) != PL_OK) {
			store_release(st);
			if (txn)
				sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			goto fail;
		}
	}
	store_release(st);
	if (txn && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		goto fail;
	}
	j->status = PL_OK;
	return;
fail:
	log_error("modules: storage: %s: %s", mj->sql, sqlite3_errmsg(db));
}

static void modstore_done(struct store_job *j)
{
	struct modstore_job *mj = PL_CONTAINER_OF(j, struct modstore_job, job);
	int ok = j->status == PL_OK;

	mj->done(mj->arg, ok ? PL_OK : PL_ERR, ok ? mj->rows : NULL, ok ? mj->nout : 0,
		 mj->changes);
	for (size_t i = 0; i < mj->nout; i++)
		free(mj->rows[i]);
	free(mj->rows);
	for (size_t i = 0; i < mj->ncols * mj->nrows; i++)
		free(mj->params[i]);
	free(mj->params);
	free(mj);
}

void modstore_exec(const char *sql, const char *const *params, size_t ncols, size_t nrows,
		   modstore_done_fn *done, void *arg)
{
	struct modstore_job *mj = pl_calloc(1, sizeof(*mj));
	size_t n = ncols * nrows;

	mj->job.run = modstore_run;
	mj->job.done = modstore_done;
	mj->sql = sql;
	mj->ncols = ncols;
	mj->nrows = nrows;
	mj->params = pl_calloc(n ? n : 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		mj->params[i] = pl_strdup(params[i] ? params[i] : "");
	mj->done = done;
	mj->arg = arg;
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
