/*
 * mod_last.c - Last Activity (XEP-0012). Asked of the server: its uptime.
 * Asked of an account (its bare JID): 0 while the user has a session,
 * otherwise the seconds since the last session closed and, as the query's
 * text (§6), the status of the unavailable presence that session ended with
 * (empty when it just went away), stored when the user's last resource
 * went away. Only the user and contacts subscribed to the user's presence
 * may ask (§4: anyone else gets forbidden); the roster lives on the user's
 * home shard, where account iqs are handled.
 *
 * The same last logout answers presence probes for an offline user
 * (presence.c, RFC 6121 §4.3.2) through last_logout_get(): every contact
 * that logs in probes every offline contact, so each shard keeps the last
 * logouts of its users in a cache bounded by bytes (least recently used
 * out first), filled at logout and on a miss from storage. It holds the
 * users most asked about (just gone, or much probed), not every account.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/dlist.h"
#include "core/hook.h"
#include "core/module.h"
#include "core/pl.h"
#include "core/strtab.h"
#include "xmpp/disco.h"
#include "xmpp/events.h"
#include "xmpp/iq.h"
#include "xmpp/modules.h"
#include "xmpp/roster.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

/* Per shard: about 5,000 users with a short status. */
#define LAST_CACHE_BYTES (512 * 1024)
#define LAST_MAX_WAITING 256      /* askers waiting for one storage read */
/* session_closed: before mod_roster (50) lets go of the session's
 * presence, whose final status is recorded here. */
#define LAST_CLOSE_PRIO 60

/* Set by the first start on the main thread, read by every shard after. */
static uint64_t last_started_ms;

/* ---- the per-shard cache of last logouts ---- */

struct last_wait {
	struct last_wait *next;
	last_logout_fn *fn;
	void *arg;
};

struct last_entry {
	struct strtab_node node;
	struct dlist_node lru;              /* only entries that are in (in_lru) */
	time_t when;                        /* 0: never logged out */
	char *text;
	size_t bytes;
	bool loading;                       /* a storage read is in flight */
	bool recorded;                      /* a logout came meanwhile: it wins */
	bool in_lru;
	struct last_wait *wait, *wait_tail;
	size_t nwait;
	char bare[];
};

struct last_table {
	struct last_table *all_next;
	struct strtab users;
	struct dlist lru;                   /* newest at the head */
	size_t bytes;
};

static __thread struct last_table *last_here;
/* Every shard's table, freed when the last host stops (shards are gone). */
static pthread_mutex_t last_all_mu = PTHREAD_MUTEX_INITIALIZER;
static struct last_table *last_all;
static int last_hosts;

static struct last_table *last_table(void)
{
	if (last_here)
		return last_here;
	struct last_table *t = pl_calloc(1, sizeof(*t));
	t->users = (struct strtab)STRTAB_INIT(struct last_entry, node, bare);
	pthread_mutex_lock(&last_all_mu);
	t->all_next = last_all;
	last_all = t;
	pthread_mutex_unlock(&last_all_mu);
	last_here = t;
	return t;
}

static void last_entry_free(struct last_entry *e)
{
	while (e->wait) {
		struct last_wait *w = e->wait;
		e->wait = w->next;
		free(w);
	}
	free(e->text);
	free(e);
}

static void last_lru_unlink(struct last_table *t, struct last_entry *e)
{
	if (!e->in_lru)
		return;
	dlist_unlink(&t->lru, &e->lru);
	e->in_lru = false;
	t->bytes -= e->bytes;
}

static void last_lru_push(struct last_table *t, struct last_entry *e)
{
	last_lru_unlink(t, e);
	e->in_lru = true;
	dlist_push_head(&t->lru, &e->lru);
	t->bytes += e->bytes;
}

/* Only here are entries dropped, never while an answer is being given. */
static void last_trim(struct last_table *t)
{
	while (t->bytes > LAST_CACHE_BYTES && t->lru.tail) {
		struct last_entry *e = DLIST_ENTRY(t->lru.tail, struct last_entry, lru);
		last_lru_unlink(t, e);
		strtab_del(&t->users, e->bare);
		last_entry_free(e);
	}
}

static void last_fill(struct last_table *t, struct last_entry *e, time_t when, const char *text)
{
	bool kept = e->in_lru;
	last_lru_unlink(t, e);
	free(e->text);
	e->when = when;
	e->text = pl_strdup(text ? text : "");
	e->bytes = sizeof(*e) + strlen(e->bare) + 1 + strlen(e->text) + 1;
	if (kept)
		last_lru_push(t, e);
}

static struct last_entry *last_entry_get(struct last_table *t, const char *bare, bool create)
{
	struct last_entry *e = STRTAB_GET(&t->users, bare, struct last_entry, node);
	if (e || !create)
		return e;
	size_t len = strlen(bare) + 1;
	e = pl_calloc(1, sizeof(*e) + len);
	memcpy(e->bare, bare, len);
	strtab_put(&t->users, &e->node);
	return e;
}

/* "SECONDS STATUS" as stored, or NULL: no row. */
static void last_fill_row(struct last_table *t, struct last_entry *e, const char *row)
{
	char *rest = NULL;
	long long when = row ? strtoll(row, &rest, 10) : 0;
	if (rest && *rest == ' ')
		rest++;
	last_fill(t, e, when > 0 ? (time_t)when : 0, when > 0 ? rest : "");
}

static void last_read_done(void *arg, int status, char **rows, size_t nrows, long changes)
{
	struct last_entry *e = arg;
	struct last_table *t = last_table();
	PL_UNUSED(changes);
	bool ok = e->recorded || status == PL_OK;
	if (!e->recorded && ok)
		last_fill_row(t, e, nrows ? rows[0] : NULL);
	e->loading = false;
	struct last_wait *w = e->wait;
	e->wait = e->wait_tail = NULL;
	e->nwait = 0;
	if (ok)
		last_lru_push(t, e);
	else
		strtab_del(&t->users, e->bare);   /* the next asker reads again */
	while (w) {
		struct last_wait *next = w->next;
		w->fn(w->arg, ok ? PL_OK : PL_ERR, ok ? e->when : 0, ok ? e->text : "");
		free(w);
		w = next;
	}
	if (ok)
		last_trim(t);
	else
		last_entry_free(e);
}

static void last_read(const char *host, const char *user, struct last_entry *e)
{
	const char *params[] = { host, user };
	e->loading = true;
	modstore_exec("SELECT seconds || ' ' || status FROM last_activity"
		      " WHERE host = ?1 AND username = ?2", params, 2, 1, last_read_done, e);
}

void last_logout_get(const char *host, const char *user, last_logout_fn *fn, void *arg)
{
	if (!pm_enabled(host, "mod_last")) {
		fn(arg, PL_OK, 0, "");
		return;
	}
	size_t n = strlen(user) + strlen(host) + 2;
	char *bare = pl_malloc(n);
	snprintf(bare, n, "%s@%s", user, host);
	struct last_table *t = last_table();
	struct last_entry *e = last_entry_get(t, bare, true);
	free(bare);
	if (!e->loading && e->in_lru) {
		last_lru_push(t, e);
		fn(arg, PL_OK, e->when, e->text);
		return;
	}
	if (e->nwait >= LAST_MAX_WAITING) {
		fn(arg, PL_ERR, 0, "");
		return;
	}
	struct last_wait *w = pl_calloc(1, sizeof(*w));
	w->fn = fn;
	w->arg = arg;
	if (e->wait_tail)
		e->wait_tail->next = w;
	else
		e->wait = w;
	e->wait_tail = w;
	e->nwait++;
	if (!e->loading)
		last_read(host, user, e);
}

static void last_written(void *arg, int status, char **rows, size_t nrows, long changes)
{
	PL_UNUSED(arg);
	PL_UNUSED(status);
	PL_UNUSED(rows);
	PL_UNUSED(nrows);
	PL_UNUSED(changes);
}

/* Kept here at once (a probe right after the logout needs no read), and
 * stored; of two writes racing on the storage workers the later logout
 * stays. */
static void last_record(const char *host, const char *user, const char *bare,
			time_t when, const char *text)
{
	struct last_table *t = last_table();
	struct last_entry *e = last_entry_get(t, bare, true);
	last_fill(t, e, when, text);
	if (e->loading)
		e->recorded = true;
	else
		last_lru_push(t, e);
	char secs[24];
	snprintf(secs, sizeof(secs), "%lld", (long long)when);
	const char *params[] = { host, user, secs, e->text };
	modstore_exec("INSERT INTO last_activity (host, username, seconds, status)"
		      " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (host, username)"
		      " DO UPDATE SET seconds = excluded.seconds, status = excluded.status"
		      " WHERE excluded.seconds >= last_activity.seconds",
		      params, 4, 1, last_written, NULL);
	last_trim(t);
}

static void last_free_table_entry(struct strtab_node *n, void *arg)
{
	PL_UNUSED(arg);
	struct last_entry *e = PL_CONTAINER_OF(n, struct last_entry, node);
	if (!e->loading)
		last_entry_free(e);
}

/* ---- the iq ---- */

static void last_answer(struct iq_req *req, long long seconds, const char *status)
{
	char num[24];
	snprintf(num, sizeof(num), "%lld", seconds < 0 ? 0 : seconds);
	struct xml_node *q = xml_new("query", NS_LAST);
	xml_set_attr(q, "seconds", num);
	if (status && *status)
		xml_add_text(q, status, strlen(status));
	iq_result(req, q);
}

static void last_server_iq(struct iq_req *req)
{
	if (req->set) {
		iq_error(req, "cancel", "not-allowed");
		return;
	}
	last_answer(req, (long long)((pl_now_ms() - last_started_ms) / 1000), NULL);
}

static void last_logout_known(void *arg, int status, time_t when, const char *text)
{
	struct iq_req *req = arg;
	if (status != PL_OK)
		iq_error(req, "wait", "internal-server-error");
	else if (when == 0)
		iq_error(req, "cancel", "item-not-found");
	else
		last_answer(req, (long long)(time(NULL) - when), text);
}

/* Authorised: online means 0, else what the last logout stored. */
static void last_of_account(struct iq_req *req)
{
	char *bare = jid_bare(&req->to);
	struct c2s *one;
	size_t online = sm_sessions_of(bare, &one, 1);
	free(bare);
	if (online > 0) {
		last_answer(req, 0, NULL);
		return;
	}
	last_logout_get(req->to.domain, req->to.local, last_logout_known, req);
}

static void last_roster_checked(struct roster_user *u, void *arg)
{
	struct iq_req *req = arg;
	char *asker = jid_bare(&req->from);
	const struct roster_item *it = roster_find(u, asker);
	free(asker);
	if (!it || !roster_item_from(it)) {
		iq_error(req, "auth", "forbidden");
		return;
	}
	last_of_account(req);
}

static void last_account_iq(struct iq_req *req)
{
	if (req->set) {
		iq_error(req, "cancel", "not-allowed");
		return;
	}
	if (!req->to.local) {
		last_server_iq(req);
		return;
	}
	if (req->from_self) {
		last_of_account(req);
		return;
	}
	if (!pm_enabled(req->host, "mod_roster")) {
		iq_error(req, "auth", "forbidden");
		return;
	}
	roster_use(req->to.domain, req->to.local, last_roster_checked, req);
}

/* The last resource of a user went away: remember when, and the status
 * of the unavailable presence it said last (none for a plain disconnect). */
static int last_session_closed(const char *host, void *event, void *arg)
{
	struct c2s *s = event;
	PL_UNUSED(arg);
	const char *user = c2s_user(s);
	if (!user)
		return PL_OK;
	size_t n = strlen(user) + strlen(host) + 2;
	char *bare = pl_malloc(n);
	snprintf(bare, n, "%s@%s", user, host);
	struct c2s *one;
	if (sm_sessions_of(bare, &one, 1) == 0)
		last_record(host, user, bare, time(NULL), presence_gone_status(s));
	free(bare);
	return PL_OK;
}

static int last_start(const char *host, const struct cfg_node *opts)
{
	PL_UNUSED(opts);
	if (!last_started_ms)
		last_started_ms = pl_now_ms();
	last_hosts++;
	iq_handler_add(host, NS_LAST, IQ_SERVER, last_server_iq);
	iq_handler_add(host, NS_LAST, IQ_ACCOUNT, last_account_iq);
	hook_add(xmpp_hooks.session_closed, host, last_session_closed, NULL, LAST_CLOSE_PRIO);
	disco_add_feature(host, NS_LAST);
	return PL_OK;
}

static void last_stop(const char *host)
{
	iq_handler_remove(host, NS_LAST, IQ_SERVER);
	iq_handler_remove(host, NS_LAST, IQ_ACCOUNT);
	hook_remove(xmpp_hooks.session_closed, host, last_session_closed);
	disco_remove_feature(host, NS_LAST);
	if (--last_hosts > 0)
		return;
	/* The shards have stopped: their caches have no owner any more. An
	 * entry still being read is left to its storage callback. */
	pthread_mutex_lock(&last_all_mu);
	while (last_all) {
		struct last_table *t = last_all;
		last_all = t->all_next;
		strtab_each(&t->users, last_free_table_entry, NULL);
		strtab_clear(&t->users);
		free(t);
	}
	pthread_mutex_unlock(&last_all_mu);
}

const struct pm_module mod_last = {
	.name = "mod_last",
	.api_version = PARLEY_MODULE_API_VERSION,
	.default_enabled = true,
	.start = last_start,
	.stop = last_stop,
};
