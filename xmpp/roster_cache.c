/*
 * roster_cache.c - the per-user roster cache on the home shard (roster.h):
 * loading it from the store, and transactions, which write a change
 * through the store and release what it causes (iq result, roster pushes,
 * stanzas) only after the commit, one transaction in flight per user so
 * the store sees a user's changes in the order they were made.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/log.h"
#include "core/pl.h"
#include "core/store.h"
#include "xmpp/iq.h"
#include "xmpp/roster.h"
#include "xmpp/sm.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

struct roster_op {
	struct roster_op *next;
	roster_fn *fn;
	void *arg;
};

enum roster_fx_kind {
	FX_ROUTE,       /* router_route(el) */
	FX_PUSH,        /* roster push of the <item/> el to interested resources */
	FX_DELIVER,     /* el to the user's available resources */
	FX_RESULT,      /* iq_result(req, el) */
	FX_CALL,        /* call(u, ok, jid, arg) */
};

struct roster_fx {
	struct roster_fx *next;
	enum roster_fx_kind kind;
	struct xml_node *el;
	struct iq_req *req;
	roster_call_fn *call;
	void *arg;
	char *jid;
	int64_t version;
};

/* One row as it is to be written; a snapshot, because the cache may move
 * on before the worker gets to it. */
struct roster_row {
	struct roster_row *next;
	bool del;
	char *jid, *name, *groups, *pending_xml;
	uint8_t sub;
	bool ask, approved, pending_in, in_roster;
};

struct roster_tx {
	struct store_job job;          /* first: the store hands this back */
	struct roster_tx *next;        /* the user's queue */
	struct roster_user *u;         /* shard side only */
	char *host, *user;             /* worker side */
	struct roster_row *rows;
	int64_t version;               /* > 0: store it */
	bool submitted;
	struct roster_fx *fx, *fx_tail;
};

struct roster_load {
	struct store_job job;
	struct roster_user *u;
	char *host, *user;
	struct roster_item **items;
	size_t n, cap;
	int64_t version;
	bool exists;
};

struct roster_cache {
	struct strtab users;
	unsigned push_seq;
};

static __thread struct roster_cache cache = {
	.users = STRTAB_INIT_PTR(struct roster_user, node, bare),
};
/* The mark a session carries once it asked for the roster (§2.1.6). */
static const char roster_interested = 1;

static void roster_kick(struct roster_user *u);
static void roster_maybe_drop(struct roster_user *u);

void roster_set_interested(struct c2s *s)
{
	c2s_set_data(s, C2S_SLOT_ROSTER, (void *)&roster_interested);
}

/* ---- items ---- */

static void roster_item_free(struct roster_item *it)
{
	for (size_t i = 0; i < it->ngroups; i++)
		free(it->groups[i]);
	free(it->groups);
	free(it->jid);
	free(it->name);
	free(it->pending_xml);
	free(it);
}

struct roster_item *roster_find(const struct roster_user *u, const char *jid)
{
	for (size_t i = 0; i < u->n; i++)
		if (strcmp(u->items[i]->jid, jid) == 0)
			return u->items[i];
	return NULL;
}

bool roster_fits(const struct roster_user *u, const char *jid, bool in_roster, size_t max)
{
	const struct roster_item *found = NULL;
	size_t items = 0, requests = 0;
	for (size_t i = 0; i < u->n; i++) {
		const struct roster_item *it = u->items[i];
		if (strcmp(it->jid, jid) == 0)
			found = it;
		if (it->in_roster)
			items++;
		else
			requests++;
	}
	if (found && (found->in_roster || !in_roster))
		return true;
	return (in_roster ? items : requests) < max;
}

static void roster_items_push(struct roster_item ***items, size_t *n, size_t *cap,
			      struct roster_item *it)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*items = pl_realloc(*items, *cap * sizeof(**items));
	}
	(*items)[(*n)++] = it;
}

struct roster_item *roster_item_add(struct roster_user *u, const char *jid)
{
	struct roster_item *it = pl_calloc(1, sizeof(*it));
	it->jid = pl_strdup(jid);
	roster_items_push(&u->items, &u->n, &u->cap, it);
	return it;
}

void roster_item_remove(struct roster_user *u, struct roster_item *it)
{
	for (size_t i = 0; i < u->n; i++) {
		if (u->items[i] == it) {
			u->items[i] = u->items[--u->n];
			roster_item_free(it);
			return;
		}
	}
}

/* Groups as one column: joined by '\n', with '\\' and '\n' escaped. */
static char *roster_groups_encode(const struct roster_item *it)
{
	size_t len = 1;
	for (size_t i = 0; i < it->ngroups; i++)
		len += 2 * strlen(it->groups[i]) + 1;
	char *out = pl_malloc(len), *p = out;
	for (size_t i = 0; i < it->ngroups; i++) {
		if (i)
			*p++ = '\n';
		for (const char *c = it->groups[i]; *c; c++) {
			if (*c == '\\' || *c == '\n') {
				*p++ = '\\';
				*p++ = *c == '\n' ? 'n' : '\\';
			} else {
				*p++ = *c;
			}
		}
	}
	*p = '\0';
	return out;
}

static void roster_groups_decode(struct roster_item *it, const char *s)
{
	if (!s || !*s)
		return;
	size_t n = strlen(s);
	char *cur = pl_malloc(n + 1), *p = cur;
	for (const char *c = s;; c++) {
		if (*c == '\n' || *c == '\0') {
			*p = '\0';
			it->groups = pl_realloc(it->groups, (it->ngroups + 1) * sizeof(char *));
			it->groups[it->ngroups++] = pl_strdup(cur);
			p = cur;
			if (*c == '\0')
				break;
		} else if (*c == '\\' && c[1]) {
			c++;
			*p++ = *c == 'n' ? '\n' : *c;
		} else {
			*p++ = *c;
		}
	}
	free(cur);
}

/* <item/> as RFC 6121 §2.1.2 writes it: appended to parent, or a new tree. */
struct xml_node *roster_item_xml(struct xml_node *parent, const struct roster_item *it,
				 bool removed)
{
	struct xml_node *x = parent ? xml_add_child(parent, "item", NS_ROSTER)
				    : xml_new("item", NS_ROSTER);
	xml_set_attr(x, "jid", it->jid);
	if (removed) {
		xml_set_attr(x, "subscription", "remove");
		return x;
	}
	if (it->name)
		xml_set_attr(x, "name", it->name);
	xml_set_attr(x, "subscription", roster_sub_name(it->st.sub));
	if (it->st.ask)
		xml_set_attr(x, "ask", "subscribe");
	if (it->st.approved)
		xml_set_attr(x, "approved", "true");
	for (size_t i = 0; i < it->ngroups; i++) {
		struct xml_node *g = xml_add_child(x, "group", NS_ROSTER);
		xml_add_text(g, it->groups[i], strlen(it->groups[i]));
	}
	return x;
}

/* ---- the per-shard table of cached users ---- */

static void roster_user_free(struct roster_user *u)
{
	for (size_t i = 0; i < u->n; i++)
		roster_item_free(u->items[i]);
	free(u->items);
	free(u->host);
	free(u->user);
	free(u->bare);
	free(u);
}

static void roster_maybe_drop(struct roster_user *u)
{
	if (u->sessions > 0 || u->busy > 0 || u->kicking || u->waiting || u->txq || !u->loaded)
		return;
	if (strtab_get(&cache.users, u->bare) == &u->node)
		strtab_del(&cache.users, u->bare);
	roster_user_free(u);
	if (cache.users.n == 0)
		/* a shard with nobody online holds nothing (and one that
		 * stops leaves nothing behind) */
		strtab_clear(&cache.users);
}

/* ---- loading ---- */

static struct roster_item *roster_row_item(sqlite3_stmt *s)
{
	struct roster_item *it = pl_calloc(1, sizeof(*it));
	const char *name = (const char *)sqlite3_column_text(s, 1);
	const char *pxml = (const char *)sqlite3_column_text(s, 6);
	int sub = roster_sub_parse((const char *)sqlite3_column_text(s, 2));

	it->jid = pl_strdup((const char *)sqlite3_column_text(s, 0));
	it->name = name ? pl_strdup(name) : NULL;
	it->st.sub = (uint8_t)(sub < 0 ? 0 : sub);
	it->st.ask = sqlite3_column_int(s, 3) != 0;
	it->st.approved = sqlite3_column_int(s, 4) != 0;
	it->st.pending_in = sqlite3_column_int(s, 5) != 0;
	it->pending_xml = pxml ? pl_strdup(pxml) : NULL;
	it->in_roster = sqlite3_column_int(s, 7) != 0;
	roster_groups_decode(it, (const char *)sqlite3_column_text(s, 8));
	return it;
}

static void roster_load_run(struct store_job *j, struct sqlite3 *db)
{
	struct roster_load *l = PL_CONTAINER_OF(j, struct roster_load, job);
	sqlite3_stmt *s;
	int rc;

	j->status = PL_ERR;
	s = store_prepare(db, "SELECT 1 FROM users WHERE host = ?1 AND username = ?2");
	if (!s)
		return;
	sqlite3_bind_text(s, 1, l->host, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, l->user, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	store_release(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto fail;
	l->exists = rc == SQLITE_ROW;

	s = store_prepare(db, "SELECT version FROM roster_version WHERE host = ?1 AND username = ?2");
	if (!s)
		return;
	sqlite3_bind_text(s, 1, l->host, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, l->user, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		l->version = sqlite3_column_int64(s, 0);
	store_release(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto fail;

	s = store_prepare(db, "SELECT jid, name, subscription, ask, approved, pending_in,"
			  " pending_in_xml, in_roster, groups FROM roster"
			  " WHERE host = ?1 AND username = ?2");
	if (!s)
		return;
	sqlite3_bind_text(s, 1, l->host, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, l->user, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		roster_items_push(&l->items, &l->n, &l->cap, roster_row_item(s));
	store_release(s);
	if (rc != SQLITE_DONE)
		goto fail;
	j->status = PL_OK;
	return;
fail:
	log_error("roster: %s@%s: cannot load: %s", l->user, l->host, sqlite3_errmsg(db));
}

static void roster_load_done(struct store_job *j)
{
	struct roster_load *l = PL_CONTAINER_OF(j, struct roster_load, job);
	struct roster_user *u = l->u;

	if (j->status == PL_OK) {
		u->items = l->items;
		u->n = l->n;
		u->cap = l->cap;
		u->version = l->version;
		u->exists = l->exists;
	} else {
		/* Treated as an account without roster; the cache goes with
		 * the last session, so the next login tries again. */
		for (size_t i = 0; i < l->n; i++)
			roster_item_free(l->items[i]);
		free(l->items);
	}
	free(l->host);
	free(l->user);
	free(l);
	u->loaded = true;
	u->busy++;
	while (u->waiting) {
		struct roster_op *op = u->waiting;
		u->waiting = op->next;
		if (!u->waiting)
			u->waiting_tail = NULL;
		op->fn(u, op->arg);
		free(op);
	}
	u->busy--;
	roster_maybe_drop(u);
}

struct roster_user *roster_get(const char *host, const char *user)
{
	size_t blen = strlen(user) + strlen(host) + 2;
	char *bare = pl_malloc(blen);
	snprintf(bare, blen, "%s@%s", user, host);
	struct roster_user *found = STRTAB_GET(&cache.users, bare, struct roster_user, node);
	if (found) {
		free(bare);
		return found;
	}
	struct roster_user *u = pl_calloc(1, sizeof(*u));
	u->host = pl_strdup(host);
	u->user = pl_strdup(user);
	u->bare = bare;
	strtab_put(&cache.users, &u->node);

	struct roster_load *l = pl_calloc(1, sizeof(*l));
	l->job.run = roster_load_run;
	l->job.done = roster_load_done;
	l->u = u;
	l->host = pl_strdup(host);
	l->user = pl_strdup(user);
	store_submit(&l->job);
	return u;
}

void roster_use(const char *host, const char *user, roster_fn *fn, void *arg)
{
	struct roster_user *u = roster_get(host, user);
	if (!u->loaded || u->waiting) {
		struct roster_op *op = pl_malloc(sizeof(*op));
		op->fn = fn;
		op->arg = arg;
		op->next = NULL;
		if (u->waiting_tail)
			u->waiting_tail->next = op;
		else
			u->waiting = op;
		u->waiting_tail = op;
		return;
	}
	u->busy++;
	fn(u, arg);
	u->busy--;
	roster_maybe_drop(u);
}

/* ---- transactions ---- */

struct roster_tx *roster_tx_new(struct roster_user *u)
{
	struct roster_tx *tx = pl_calloc(1, sizeof(*tx));
	tx->u = u;
	return tx;
}

static struct roster_fx *roster_fx_add(struct roster_tx *tx, enum roster_fx_kind kind,
				       struct xml_node *el)
{
	struct roster_fx *fx = pl_calloc(1, sizeof(*fx));
	fx->kind = kind;
	fx->el = el;
	if (tx->fx_tail)
		tx->fx_tail->next = fx;
	else
		tx->fx = fx;
	tx->fx_tail = fx;
	return fx;
}

void roster_tx_call(struct roster_tx *tx, roster_call_fn *call, const char *jid, void *arg)
{
	struct roster_fx *fx = roster_fx_add(tx, FX_CALL, NULL);
	fx->call = call;
	fx->arg = arg;
	fx->jid = jid ? pl_strdup(jid) : NULL;
}

void roster_tx_result(struct roster_tx *tx, struct iq_req *req, struct xml_node *payload)
{
	roster_fx_add(tx, FX_RESULT, payload)->req = req;
}

void roster_tx_route(struct roster_tx *tx, struct xml_node *el)
{
	roster_fx_add(tx, FX_ROUTE, el);
}

void roster_tx_deliver(struct roster_tx *tx, struct xml_node *el)
{
	roster_fx_add(tx, FX_DELIVER, el);
}

void roster_tx_write(struct roster_tx *tx, const struct roster_item *it)
{
	struct roster_row *r = pl_calloc(1, sizeof(*r));
	r->jid = pl_strdup(it->jid);
	r->name = it->name ? pl_strdup(it->name) : NULL;
	r->groups = roster_groups_encode(it);
	r->pending_xml = it->pending_xml ? pl_strdup(it->pending_xml) : NULL;
	r->sub = it->st.sub;
	r->ask = it->st.ask;
	r->approved = it->st.approved;
	r->pending_in = it->st.pending_in;
	r->in_roster = it->in_roster;
	r->next = tx->rows;
	tx->rows = r;
}

void roster_tx_delete(struct roster_tx *tx, const char *jid)
{
	struct roster_row *r = pl_calloc(1, sizeof(*r));
	r->del = true;
	r->jid = pl_strdup(jid);
	r->next = tx->rows;
	tx->rows = r;
}

void roster_tx_push(struct roster_tx *tx, const struct roster_item *it, bool removed)
{
	struct roster_user *u = tx->u;
	u->version++;
	tx->version = u->version;
	roster_fx_add(tx, FX_PUSH, roster_item_xml(NULL, it, removed))->version = u->version;
}

static int roster_tx_run_rows(struct roster_tx *tx, sqlite3 *db)
{
	/* rows were prepended; write them oldest first */
	struct roster_row *rev = NULL;
	while (tx->rows) {
		struct roster_row *r = tx->rows;
		tx->rows = r->next;
		r->next = rev;
		rev = r;
	}
	tx->rows = rev;
	for (struct roster_row *r = tx->rows; r; r = r->next) {
		sqlite3_stmt *s;
		if (r->del) {
			s = store_prepare(db, "DELETE FROM roster WHERE host = ?1 AND username = ?2"
					  " AND jid = ?3");
		} else {
			s = store_prepare(db, "INSERT OR REPLACE INTO roster (host, username, jid,"
					  " name, subscription, ask, approved, pending_in,"
					  " pending_in_xml, in_roster, groups)"
					  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
		}
		if (!s)
			return SQLITE_ERROR;
		sqlite3_bind_text(s, 1, tx->host, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, tx->user, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, r->jid, -1, SQLITE_STATIC);
		if (!r->del) {
			if (r->name)
				sqlite3_bind_text(s, 4, r->name, -1, SQLITE_STATIC);
			sqlite3_bind_text(s, 5, roster_sub_name(r->sub), -1, SQLITE_STATIC);
			sqlite3_bind_int(s, 6, r->ask);
			sqlite3_bind_int(s, 7, r->approved);
			sqlite3_bind_int(s, 8, r->pending_in);
			if (r->pending_xml)
				sqlite3_bind_text(s, 9, r->pending_xml, -1, SQLITE_STATIC);
			sqlite3_bind_int(s, 10, r->in_roster);
			sqlite3_bind_text(s, 11, r->groups, -1, SQLITE_STATIC);
		}
		int rc = sqlite3_step(s);
		store_release(s);
		if (rc != SQLITE_DONE)
			return rc;
	}
	if (tx->version > 0) {
		sqlite3_stmt *s = store_prepare(db, "INSERT OR REPLACE INTO roster_version"
						" (host, username, version) VALUES (?1, ?2, ?3)");
		if (!s)
			return SQLITE_ERROR;
		sqlite3_bind_text(s, 1, tx->host, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, tx->user, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, tx->version);
		int rc = sqlite3_step(s);
		store_release(s);
		if (rc != SQLITE_DONE)
			return rc;
	}
	return SQLITE_DONE;
}

static void roster_tx_run(struct store_job *j, struct sqlite3 *db)
{
	struct roster_tx *tx = PL_CONTAINER_OF(j, struct roster_tx, job);

	j->status = PL_ERR;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if (roster_tx_run_rows(tx, db) != SQLITE_DONE) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		goto fail;
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		goto fail;
	}
	j->status = PL_OK;
	return;
fail:
	log_error("roster: %s@%s: cannot store a roster change: %s", tx->user, tx->host,
		  sqlite3_errmsg(db));
}

/* Roster push (RFC 6121 §2.1.6) to each resource that asked for the roster. */
static void roster_push(struct roster_user *u, const struct xml_node *item, int64_t version)
{
	struct c2s *ss[64];
	size_t n = sm_sessions_of(u->bare, ss, PL_ARRAY_LEN(ss));
	for (size_t i = 0; i < n; i++) {
		if (c2s_get_data(ss[i], C2S_SLOT_ROSTER) != &roster_interested)
			continue;
		char id[32];
		snprintf(id, sizeof(id), "push%u", ++cache.push_seq);
		struct xml_node *iq = xml_new("iq", NS_CLIENT);
		xml_set_attr(iq, "type", "set");
		xml_set_attr(iq, "id", id);
		xml_set_attr(iq, "to", c2s_full_jid(ss[i]));
		struct xml_node *q = xml_add_child(iq, "query", NS_ROSTER);
		if (roster_versioning(u->host)) {
			char ver[24];
			snprintf(ver, sizeof(ver), "%lld", (long long)version);
			xml_set_attr(q, "ver", ver);
		}
		xml_add_copy(q, item);
		c2s_send(ss[i], iq);
		xml_free(iq);
	}
}

static void roster_fx_run(struct roster_user *u, struct roster_tx *tx, bool ok)
{
	struct roster_fx *fx = tx->fx;
	while (fx) {
		struct roster_fx *next = fx->next;
		if (!ok && fx->kind != FX_CALL) {
			if (fx->req)
				iq_error(fx->req, "wait", "internal-server-error");
			xml_free(fx->el);
		} else {
			switch (fx->kind) {
			case FX_ROUTE:
				router_route(fx->el);
				break;
			case FX_PUSH:
				roster_push(u, fx->el, fx->version);
				xml_free(fx->el);
				break;
			case FX_DELIVER:
				presence_deliver_available(u, fx->el);
				xml_free(fx->el);
				break;
			case FX_RESULT:
				iq_result(fx->req, fx->el);
				break;
			case FX_CALL:
				fx->call(u, ok, fx->jid, fx->arg);
				break;
			}
		}
		free(fx->jid);
		free(fx);
		fx = next;
	}
	tx->fx = tx->fx_tail = NULL;
}

static void roster_tx_free(struct roster_tx *tx)
{
	while (tx->rows) {
		struct roster_row *r = tx->rows;
		tx->rows = r->next;
		free(r->jid);
		free(r->name);
		free(r->groups);
		free(r->pending_xml);
		free(r);
	}
	free(tx->host);
	free(tx->user);
	free(tx);
}

static void roster_tx_done(struct store_job *j)
{
	struct roster_tx *tx = PL_CONTAINER_OF(j, struct roster_tx, job);
	struct roster_user *u = tx->u;

	u->txq = tx->next;
	if (!u->txq)
		u->txq_tail = NULL;
	u->busy++;
	roster_fx_run(u, tx, j->status == PL_OK);
	roster_tx_free(tx);
	roster_kick(u);
	u->busy--;
	roster_maybe_drop(u);
}

/* Start the head of the queue, or release what needs no storage. */
static void roster_kick(struct roster_user *u)
{
	if (u->kicking)
		return;
	u->kicking = true;
	while (u->txq && !u->txq->submitted) {
		struct roster_tx *tx = u->txq;
		if (tx->rows || tx->version > 0) {
			tx->submitted = true;
			tx->host = pl_strdup(u->host);
			tx->user = pl_strdup(u->user);
			tx->job.run = roster_tx_run;
			tx->job.done = roster_tx_done;
			store_submit(&tx->job);
			break;
		}
		u->txq = tx->next;
		if (!u->txq)
			u->txq_tail = NULL;
		roster_fx_run(u, tx, true);
		roster_tx_free(tx);
	}
	u->kicking = false;
}

void roster_tx_commit(struct roster_tx *tx)
{
	struct roster_user *u = tx->u;
	if (u->txq_tail)
		u->txq_tail->next = tx;
	else
		u->txq = tx;
	u->txq_tail = tx;
	roster_kick(u);
}

struct roster_user *roster_cached(const char *bare)
{
	return STRTAB_GET(&cache.users, bare, struct roster_user, node);
}

void roster_session_open(const char *host, const char *user)
{
	roster_get(host, user)->sessions++;
}

void roster_session_close(const char *host, const char *user)
{
	size_t blen = strlen(user) + strlen(host) + 2;
	char *bare = pl_malloc(blen);
	snprintf(bare, blen, "%s@%s", user, host);
	struct roster_user *u = roster_cached(bare);
	free(bare);
	if (u && u->sessions > 0) {
		u->sessions--;
		roster_maybe_drop(u);
	}
}
