/*
 * offline_flex.c - Flexible Offline Message Retrieval (XEP-0013), the half
 * of mod_offline that lets a client handle its stored messages like a POP3
 * mailbox, as ejabberd's mod_offline offers it: the count is a disco#info
 * and the headers a disco#items on the node
 * 'http://jabber.org/protocol/offline' of the client's own account;
 * <offline/> iqs view, remove, fetch or purge. Messages go only when the
 * client removes or purges them (§2.5); viewed and fetched ones carry
 * <offline><item node/></offline> and the <delay/> of the flood.
 *
 * A session that asked for the count, the headers or a fetch is marked
 * (c2s slot C2S_SLOT_MODULE2); while a marked session lasts, offline.c
 * floods none of the user's resources at initial presence (§2.2, §2.6).
 *
 * A message's node is its row id, zero-padded: the offline table's id is
 * AUTOINCREMENT, never handed out twice, so a node names one message for
 * good (a stale header list cannot view or remove a newer message), and
 * the dictionary order of nodes, which §2.3 lets clients sort by, is the
 * order messages arrived in.
 *
 * Account iqs run on the user's home shard, so the requesting session is
 * found there; each request is one store job (one transaction), answered
 * in its done(). Requests are independent, as iqs are: a client that needs
 * one to see another's effect waits for its answer.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/log.h"
#include "core/pl.h"
#include "core/store.h"
#include "xmpp/disco.h"
#include "xmpp/iq.h"
#include "xmpp/jid.h"
#include "xmpp/modules.h"
#include "xmpp/offline.h"
#include "xmpp/roster.h"
#include "xmpp/sm.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

#define FLEX_SLOT C2S_SLOT_MODULE2
#define FLEX_MAX_SESSIONS 64

struct flex_msg {
	int64_t id;
	char *stamp, *xml;
};

struct flex_job {
	struct store_job job;
	struct iq_req *req;            /* answered in done() */
	struct offline_flex_req r;
	struct flex_msg *msgs;
	size_t n, cap;
	int64_t count;
	bool missing;                  /* a requested node is not stored */
};

/* What a marked session's slot points to: nothing to free. */
static const char flex_marker = 1;

/* ---- nodes and requests (pure) ---- */

void offline_node_format(int64_t id, char out[OFFLINE_NODE_LEN + 1])
{
	snprintf(out, OFFLINE_NODE_LEN + 1, "%0*" PRId64, OFFLINE_NODE_LEN, id);
}

int offline_node_parse(const char *node, int64_t *id)
{
	int64_t v = 0;
	size_t i;
	for (i = 0; node[i]; i++) {
		if (i == OFFLINE_NODE_LEN || node[i] < '0' || node[i] > '9')
			return PL_ERR;
		int d = node[i] - '0';
		if (v > (INT64_MAX - d) / 10)
			return PL_ERR;
		v = v * 10 + d;
	}
	if (i != OFFLINE_NODE_LEN || v == 0)
		return PL_ERR;
	*id = v;
	return PL_OK;
}

struct id_at {
	int64_t id;
	size_t at;
};

static int id_at_cmp(const void *a, const void *b)
{
	const struct id_at *x = a, *y = b;
	if (x->id != y->id)
		return (x->id > y->id) - (x->id < y->id);
	return (x->at > y->at) - (x->at < y->at);
}

/* Each id once, in the order first named. A request may name thousands
 * of nodes and this runs on the reactor thread: sorted, not compared
 * pairwise. */
static size_t ids_unique(int64_t *ids, size_t n)
{
	if (n < 2)
		return n;
	struct id_at *v = pl_malloc(n * sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = (struct id_at){ ids[i], i };
	qsort(v, n, sizeof(*v), id_at_cmp);
	for (size_t i = 1; i < n; i++)
		if (v[i].id == v[i - 1].id)
			ids[v[i].at] = 0;          /* a repeat; 0 is never a node */
	free(v);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (ids[i])
			ids[k++] = ids[i];
	return k;
}

/* The items of a view (get) or remove (set): bad-request before
 * item-not-found, so a malformed request is never half-looked-up. */
static const char *flex_parse_items(const struct xml_node *offline, bool set, size_t n,
				    struct offline_flex_req *out)
{
	const char *want = set ? "remove" : "view";
	bool unknown = false;

	out->op = set ? OFFLINE_FLEX_REMOVE : OFFLINE_FLEX_VIEW;
	out->ids = pl_calloc(n, sizeof(*out->ids));
	for (const struct xml_node *c = xml_first_child_el(offline); c; c = xml_next_el(c)) {
		const char *action = xml_attr(c, "action");
		const char *node = xml_attr(c, "node");
		int64_t id;
		if (!action || strcmp(action, want) != 0 || !node) {
			free(out->ids);
			out->ids = NULL;
			out->nids = 0;
			return "bad-request";
		}
		if (offline_node_parse(node, &id) != PL_OK)
			unknown = true;
		else
			out->ids[out->nids++] = id;
	}
	if (unknown) {
		free(out->ids);
		out->ids = NULL;
		out->nids = 0;
		return "item-not-found";
	}
	out->nids = ids_unique(out->ids, out->nids);
	return NULL;
}

const char *offline_flex_parse(const struct xml_node *offline, bool set,
			       struct offline_flex_req *out)
{
	size_t items = 0;
	int fetch = 0, purge = 0;

	memset(out, 0, sizeof(*out));
	for (const struct xml_node *c = xml_first_child_el(offline); c; c = xml_next_el(c)) {
		if (strcmp(c->ns, NS_FLEX_OFFLINE) != 0)
			return "bad-request";
		if (strcmp(c->name, "item") == 0)
			items++;
		else if (strcmp(c->name, "fetch") == 0)
			fetch++;
		else if (strcmp(c->name, "purge") == 0)
			purge++;
		else
			return "bad-request";
	}
	if ((items > 0) + fetch + purge != 1)
		return "bad-request";
	/* §2.6 fetches with a get, §2.7 purges with a set (as ejabberd) */
	if (fetch) {
		out->op = OFFLINE_FLEX_FETCH;
		return set ? "bad-request" : NULL;
	}
	if (purge) {
		out->op = OFFLINE_FLEX_PURGE;
		return set ? NULL : "bad-request";
	}
	return flex_parse_items(offline, set, items, out);
}

/* ---- the requesting session ---- */

static struct c2s *flex_requester(const struct iq_req *req)
{
	if (!req->from.resource)
		return NULL;
	char *bare = jid_bare(&req->from);
	struct c2s *s = sm_find_session(bare, req->from.resource);
	free(bare);
	return s;
}

static void flex_mark(const struct iq_req *req)
{
	struct c2s *s = flex_requester(req);
	if (s && !c2s_get_data(s, FLEX_SLOT))
		c2s_set_data(s, FLEX_SLOT, (void *)&flex_marker);
}

bool offline_flex_chosen(const struct c2s *s)
{
	struct c2s *all[FLEX_MAX_SESSIONS];
	char bare[2048];
	snprintf(bare, sizeof(bare), "%s@%s", c2s_user(s), c2s_host(s));
	size_t n = sm_sessions_of(bare, all, PL_ARRAY_LEN(all));
	for (size_t i = 0; i < n; i++)
		if (c2s_get_data(all[i], FLEX_SLOT) == &flex_marker)
			return true;
	return false;
}

/* §2.3-2.7 (and §4): a user's messages go to that user's resources only. */
static bool flex_own(struct iq_req *req)
{
	if (req->from_self)
		return true;
	iq_error(req, "auth", "forbidden");
	return false;
}

/* ---- storage (worker thread) ---- */

static int flex_read_rows(sqlite3_stmt *s, struct flex_job *fj)
{
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (fj->n == fj->cap) {
			fj->cap = fj->cap ? fj->cap * 2 : 16;
			fj->msgs = pl_realloc(fj->msgs, fj->cap * sizeof(*fj->msgs));
		}
		struct flex_msg *m = &fj->msgs[fj->n++];
		m->id = sqlite3_column_int64(s, 0);
		m->stamp = pl_strdup((const char *)sqlite3_column_text(s, 1));
		m->xml = pl_strdup((const char *)sqlite3_column_text(s, 2));
	}
	return rc == SQLITE_DONE ? PL_OK : PL_ERR;
}

static sqlite3_stmt *flex_prepare(sqlite3 *db, const char *sql, const struct iq_req *req)
{
	sqlite3_stmt *s = store_prepare(db, sql);
	if (s) {
		sqlite3_bind_text(s, 1, req->to.domain, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, req->to.local, -1, SQLITE_STATIC);
	}
	return s;
}

static int flex_count(sqlite3 *db, struct flex_job *fj)
{
	sqlite3_stmt *s = flex_prepare(db, "SELECT COUNT(*) FROM offline"
				       " WHERE host = ?1 AND username = ?2", fj->req);
	if (!s)
		return PL_ERR;
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		fj->count = sqlite3_column_int64(s, 0);
	store_release(s);
	return rc == SQLITE_ROW ? PL_OK : PL_ERR;
}

static int flex_read_all(sqlite3 *db, struct flex_job *fj)
{
	sqlite3_stmt *s = flex_prepare(db, "SELECT id, stamp, xml FROM offline"
				       " WHERE host = ?1 AND username = ?2 ORDER BY id", fj->req);
	if (!s)
		return PL_ERR;
	int rc = flex_read_rows(s, fj);
	store_release(s);
	return rc;
}

static int flex_purge(sqlite3 *db, struct flex_job *fj)
{
	sqlite3_stmt *s = flex_prepare(db, "DELETE FROM offline"
				       " WHERE host = ?1 AND username = ?2", fj->req);
	if (!s)
		return PL_ERR;
	int rc = sqlite3_step(s);
	fj->count = sqlite3_changes(db);
	store_release(s);
	return rc == SQLITE_DONE ? PL_OK : PL_ERR;
}

/* One row per requested id, read or deleted; fj->missing if one is not
 * there. Inside the caller's transaction. */
static int flex_each_id(sqlite3 *db, struct flex_job *fj)
{
	bool del = fj->r.op == OFFLINE_FLEX_REMOVE;
	for (size_t i = 0; i < fj->r.nids && !fj->missing; i++) {
		sqlite3_stmt *s = del
			? flex_prepare(db, "DELETE FROM offline WHERE host = ?1"
				       " AND username = ?2 AND id = ?3", fj->req)
			: flex_prepare(db, "SELECT id, stamp, xml FROM offline WHERE host = ?1"
				       " AND username = ?2 AND id = ?3", fj->req);
		if (!s)
			return PL_ERR;
		sqlite3_bind_int64(s, 3, fj->r.ids[i]);
		size_t before = fj->n;
		int rc = del ? (sqlite3_step(s) == SQLITE_DONE ? PL_OK : PL_ERR)
			: flex_read_rows(s, fj);
		fj->missing = del ? sqlite3_changes(db) == 0 : fj->n == before;
		store_release(s);
		if (rc != PL_OK)
			return PL_ERR;
	}
	return PL_OK;
}

/* §2.4/2.5: all the nodes or none: a remove naming one unknown node
 * deletes nothing, a view sends nothing. */
static int flex_by_ids(sqlite3 *db, struct flex_job *fj)
{
	const char *begin = fj->r.op == OFFLINE_FLEX_REMOVE ? "BEGIN IMMEDIATE" : "BEGIN";
	if (sqlite3_exec(db, begin, NULL, NULL, NULL) != SQLITE_OK)
		return PL_ERR;
	int rc = flex_each_id(db, fj);
	if (rc == PL_OK && !fj->missing &&
	    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		return PL_OK;
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static void flex_run(struct store_job *j, struct sqlite3 *db)
{
	struct flex_job *fj = PL_CONTAINER_OF(j, struct flex_job, job);

	switch (fj->r.op) {
	case OFFLINE_FLEX_COUNT:
		j->status = flex_count(db, fj);
		break;
	case OFFLINE_FLEX_HEADERS:
	case OFFLINE_FLEX_FETCH:
		j->status = flex_read_all(db, fj);
		break;
	case OFFLINE_FLEX_VIEW:
	case OFFLINE_FLEX_REMOVE:
		j->status = flex_by_ids(db, fj);
		break;
	case OFFLINE_FLEX_PURGE:
		j->status = flex_purge(db, fj);
		break;
	}
	if (j->status != PL_OK)
		log_error("offline: %s@%s: flexible retrieval: %s", fj->req->to.local,
			  fj->req->to.domain, sqlite3_errmsg(db));
}

/* ---- answers (home shard) ---- */

static void flex_add_field(struct xml_node *x, const char *var, const char *type,
			   const char *value)
{
	struct xml_node *f = xml_add_child(x, "field", NULL);
	xml_set_attr(f, "var", var);
	if (type)
		xml_set_attr(f, "type", type);
	xml_add_text(xml_add_child(f, "value", NULL), value, strlen(value));
}

/* §2.2: the node's identity and the XEP-0128 form with the count. */
static struct xml_node *flex_info(int64_t count)
{
	struct xml_node *q = xml_new("query", NS_DISCO_INFO);
	xml_set_attr(q, "node", NS_FLEX_OFFLINE);
	struct xml_node *id = xml_add_child(q, "identity", NULL);
	xml_set_attr(id, "category", "automation");
	xml_set_attr(id, "type", "message-list");
	xml_set_attr(xml_add_child(q, "feature", NULL), "var", NS_FLEX_OFFLINE);
	struct xml_node *x = xml_add_child(q, "x", NS_XDATA);
	xml_set_attr(x, "type", "result");
	flex_add_field(x, "FORM_TYPE", "hidden", NS_FLEX_OFFLINE);
	char n[24];
	snprintf(n, sizeof(n), "%" PRId64, count);
	flex_add_field(x, "number_of_messages", NULL, n);
	return q;
}

/* §2.3: one item per message, the sender's full JID as its name. A row
 * that no longer parses is listed without one, so it can be removed. */
static struct xml_node *flex_headers(const struct flex_job *fj)
{
	struct xml_node *q = xml_new("query", NS_DISCO_ITEMS);
	char *bare = jid_bare(&fj->req->to);
	xml_set_attr(q, "node", NS_FLEX_OFFLINE);
	for (size_t i = 0; i < fj->n; i++) {
		char node[OFFLINE_NODE_LEN + 1];
		struct xml_node *el = modstore_xml_parse(fj->msgs[i].xml);
		struct xml_node *item = xml_add_child(q, "item", NULL);
		offline_node_format(fj->msgs[i].id, node);
		xml_set_attr(item, "jid", bare);
		xml_set_attr(item, "node", node);
		xml_set_attr(item, "name", el ? xml_attr(el, "from") : NULL);
		xml_free(el);
	}
	free(bare);
	return q;
}

/* §2.4/2.6: each message as the flood sends it, plus its node. */
static void flex_send(const struct flex_job *fj)
{
	struct c2s *s = flex_requester(fj->req);
	for (size_t i = 0; s && i < fj->n; i++) {
		const struct flex_msg *m = &fj->msgs[i];
		struct xml_node *el = modstore_xml_parse(m->xml);
		char node[OFFLINE_NODE_LEN + 1];
		if (!el) {
			log_warning("offline: %s: stored message %" PRId64 " is damaged; not sent",
				    c2s_full_jid(s), m->id);
			continue;
		}
		stanza_add_delay(el, fj->req->to.domain, m->stamp);
		offline_node_format(m->id, node);
		struct xml_node *off = xml_add_child(el, "offline", NS_FLEX_OFFLINE);
		xml_set_attr(xml_add_child(off, "item", NULL), "node", node);
		c2s_send(s, el);
		xml_free(el);
	}
}

/* Whole-mailbox actions are worth a line; single views and removals not. */
static void flex_log(const struct flex_job *fj)
{
	const struct jid *to = &fj->req->to;
	if (fj->r.op == OFFLINE_FLEX_FETCH)
		log_info("offline: %s@%s: %zu stored message(s) fetched (XEP-0013)", to->local,
			 to->domain, fj->n);
	else if (fj->r.op == OFFLINE_FLEX_PURGE)
		log_info("offline: %s@%s: %" PRId64 " stored message(s) purged (XEP-0013)",
			 to->local, to->domain, fj->count);
}

static void flex_job_free(struct flex_job *fj)
{
	for (size_t i = 0; i < fj->n; i++) {
		free(fj->msgs[i].stamp);
		free(fj->msgs[i].xml);
	}
	free(fj->msgs);
	free(fj->r.ids);
	free(fj);
}

static void flex_done(struct store_job *j)
{
	struct flex_job *fj = PL_CONTAINER_OF(j, struct flex_job, job);
	struct iq_req *req = fj->req;

	if (j->status != PL_OK) {
		iq_error(req, "wait", "internal-server-error");
	} else if (fj->missing) {
		iq_error(req, "cancel", "item-not-found");
	} else if (fj->r.op == OFFLINE_FLEX_COUNT) {
		iq_result(req, flex_info(fj->count));
	} else if (fj->r.op == OFFLINE_FLEX_HEADERS) {
		iq_result(req, flex_headers(fj));
	} else {
		/* §2.4, §2.6: the messages, then the result */
		flex_send(fj);
		flex_log(fj);
		iq_result(req, NULL);
	}
	flex_job_free(fj);
}

/* Takes r's ids. */
static void flex_submit(struct iq_req *req, const struct offline_flex_req *r)
{
	struct flex_job *fj = pl_calloc(1, sizeof(*fj));
	fj->job.run = flex_run;
	fj->job.done = flex_done;
	fj->req = req;
	fj->r = *r;
	store_submit(&fj->job);
}

/* ---- handlers ---- */

static void flex_disco(struct iq_req *req, enum offline_flex_op op)
{
	struct offline_flex_req r = { .op = op };
	if (!flex_own(req))
		return;
	flex_mark(req);
	flex_submit(req, &r);
}

static void flex_disco_info(struct iq_req *req)
{
	flex_disco(req, OFFLINE_FLEX_COUNT);
}

static void flex_disco_items(struct iq_req *req)
{
	flex_disco(req, OFFLINE_FLEX_HEADERS);
}

static void flex_iq(struct iq_req *req)
{
	struct offline_flex_req r;
	if (!flex_own(req))
		return;
	const char *bad = offline_flex_parse(req->query, req->set, &r);
	if (bad) {
		iq_error(req, strcmp(bad, "item-not-found") == 0 ? "cancel" : "modify", bad);
		return;
	}
	if (r.op == OFFLINE_FLEX_FETCH)
		flex_mark(req);
	flex_submit(req, &r);
}

void offline_flex_start(const char *host)
{
	iq_handler_add(host, NS_FLEX_OFFLINE, IQ_ACCOUNT, flex_iq);
	disco_account_node_add(host, NS_FLEX_OFFLINE, flex_disco_info, flex_disco_items);
	disco_add_feature(host, NS_FLEX_OFFLINE);
}

void offline_flex_stop(const char *host)
{
	iq_handler_remove(host, NS_FLEX_OFFLINE, IQ_ACCOUNT);
	disco_account_node_remove(host, NS_FLEX_OFFLINE);
	disco_remove_feature(host, NS_FLEX_OFFLINE);
}
