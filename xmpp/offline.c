/*
 * offline.c - mod_offline (XEP-0160): messages for a user with no
 * available resource are stored, up to a per-user limit, and replayed to
 * the first resource that sends non-negative initial presence, each with a
 * <delay/> (XEP-0203) saying when the server received it.
 *
 * Storing: the offline_message hook takes the message and returns at once;
 * a storage job counts and inserts in one IMMEDIATE transaction (so two
 * shards cannot both slip under the limit), and only a failed job answers
 * the sender (service-unavailable, XEP-0160 §2 step 3, with a <text/>
 * saying why when the queue is full).
 * Replaying: on the user's home shard, after the initial presence went out
 * (HOOK_USER_AVAILABLE); rows are deleted only after they were written to
 * the session, so a crash in between repeats a message rather than loses it.
 * A client that chose flexible retrieval (XEP-0013, offline_flex.c) reads
 * the same rows itself and gets no replay.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sqlite3.h>

#include "core/cfg.h"
#include "core/hook.h"
#include "core/log.h"
#include "core/module.h"
#include "core/pl.h"
#include "core/store.h"
#include "xmpp/disco.h"
#include "xmpp/events.h"
#include "xmpp/jid.h"
#include "xmpp/modules.h"
#include "xmpp/offline.h"
#include "xmpp/roster.h"
#include "xmpp/sm.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

#define OFFLINE_DEFAULT_MAX 100
#define OFFLINE_MAX_HOSTS 16
#define NS_CHATSTATES "http://jabber.org/protocol/chatstates"

enum offline_status {
	OFFLINE_STORED = 0,
	OFFLINE_FULL,
	OFFLINE_NO_USER,
	OFFLINE_FAILED,
};

struct offline_queue;

struct offline_store_job {
	struct store_job job;
	struct offline_store_job *qnext;
	struct offline_queue *q;
	struct xml_node *el;        /* kept on the shard for a bounce */
	char *host, *user, *xml;
	char stamp[21];
	long max;
};

struct offline_msg {
	int64_t id;
	char *xml;
	char *stamp;
};

struct offline_fetch_job {
	struct store_job job;
	struct presence_sess *ps;
	char *host, *user;
	struct offline_msg *msgs;
	size_t n, cap;
	int64_t last_id;            /* delete: rows up to this id */
	bool deleting;
};

/* Users whose messages are being replayed on this shard: a second resource
 * coming up meanwhile must not get them again. */
struct offline_busy {
	struct offline_busy *next;
	char bare[];
};

/* A recipient's messages are stored one job at a time, in the order they
 * arrived: on two workers, a later message could otherwise commit first,
 * take the last free place, and be replayed before an earlier one. */
struct offline_queue {
	struct offline_queue *next;
	struct offline_store_job *head, *tail;   /* head: in flight */
	char bare[];
};

struct offline_host {
	char *host;
	long max;
};

static struct offline_host offline_hosts[OFFLINE_MAX_HOSTS];
static size_t offline_nhosts;
static struct hook *hook_available;
static __thread struct offline_busy *busy_users;
static __thread struct offline_queue *store_queues;

static long offline_max(const char *host)
{
	for (size_t i = 0; i < offline_nhosts; i++)
		if (strcasecmp(offline_hosts[i].host, host) == 0)
			return offline_hosts[i].max;
	return OFFLINE_DEFAULT_MAX;
}

/* ---- storing ---- */

/* A message of nothing but chat states (XEP-0085 §5.5) is not worth
 * keeping, nor worth an error. */
static bool offline_worth_storing(const struct xml_node *el)
{
	for (const struct xml_node *c = xml_first_child_el(el); c; c = xml_next_el(c))
		if (strcmp(c->ns, NS_CHATSTATES) != 0)
			return true;
	return false;
}

static int offline_insert(sqlite3 *db, struct offline_store_job *oj)
{
	sqlite3_stmt *s = store_prepare(db, "SELECT 1 FROM users WHERE host = ?1 AND username = ?2");
	if (!s)
		return OFFLINE_FAILED;
	sqlite3_bind_text(s, 1, oj->host, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, oj->user, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	store_release(s);
	if (rc == SQLITE_DONE)
		return OFFLINE_NO_USER;
	if (rc != SQLITE_ROW)
		return OFFLINE_FAILED;

	s = store_prepare(db, "SELECT COUNT(*) FROM offline WHERE host = ?1 AND username = ?2");
	if (!s)
		return OFFLINE_FAILED;
	sqlite3_bind_text(s, 1, oj->host, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, oj->user, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	long count = rc == SQLITE_ROW ? (long)sqlite3_column_int64(s, 0) : -1;
	store_release(s);
	if (count < 0)
		return OFFLINE_FAILED;
	if (count >= oj->max)
		return OFFLINE_FULL;

	s = store_prepare(db, "INSERT INTO offline (host, username, stamp, xml)"
			  " VALUES (?1, ?2, ?3, ?4)");
	if (!s)
		return OFFLINE_FAILED;
	sqlite3_bind_text(s, 1, oj->host, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, oj->user, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, oj->stamp, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, oj->xml, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	store_release(s);
	return rc == SQLITE_DONE ? OFFLINE_STORED : OFFLINE_FAILED;
}

static void offline_store_run(struct store_job *j, struct sqlite3 *db)
{
	struct offline_store_job *oj = PL_CONTAINER_OF(j, struct offline_store_job, job);

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		j->status = OFFLINE_FAILED;
	} else {
		j->status = offline_insert(db, oj);
		if (j->status == OFFLINE_STORED &&
		    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			j->status = OFFLINE_FAILED;
		if (j->status != OFFLINE_STORED)
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	}
	if (j->status == OFFLINE_FAILED)
		log_error("offline: %s@%s: cannot store a message: %s", oj->user, oj->host,
			  sqlite3_errmsg(db));
}

/* router_bounce() with a human-readable reason (RFC 6120 §8.3.2). */
static void offline_enqueue(struct offline_store_job *oj, const char *bare)
{
	struct offline_queue *q = store_queues;
	while (q && strcmp(q->bare, bare) != 0)
		q = q->next;
	oj->qnext = NULL;
	if (q) {
		oj->q = q;
		q->tail->qnext = oj;
		q->tail = oj;
		return;
	}
	size_t n = strlen(bare) + 1;
	q = pl_malloc(sizeof(*q) + n);
	memcpy(q->bare, bare, n);
	q->head = q->tail = oj;
	q->next = store_queues;
	store_queues = q;
	oj->q = q;
	store_submit(&oj->job);
}

static void offline_dequeue(struct offline_store_job *oj)
{
	struct offline_queue *q = oj->q;
	q->head = oj->qnext;
	if (q->head) {
		store_submit(&q->head->job);
		return;
	}
	for (struct offline_queue **p = &store_queues; *p; p = &(*p)->next) {
		if (*p == q) {
			*p = q->next;
			break;
		}
	}
	free(q);
}

static void offline_store_done(struct store_job *j)
{
	struct offline_store_job *oj = PL_CONTAINER_OF(j, struct offline_store_job, job);

	offline_dequeue(oj);
	switch (j->status) {
	case OFFLINE_STORED:
		xml_free(oj->el);
		break;
	case OFFLINE_FULL:
		log_info("offline: %s@%s: storage full (%ld messages), message bounced",
			 oj->user, oj->host, oj->max);
		router_bounce_text(oj->el, "cancel", "service-unavailable", "The recipient is offline and their offline message"
			       " storage is full");
		break;
	default:
		router_bounce(oj->el, "cancel", "service-unavailable");
		break;
	}
	free(oj->host);
	free(oj->user);
	free(oj->xml);
	free(oj);
}

static int offline_on_message(const char *host, void *event, void *arg)
{
	struct stanza_event *ev = event;
	struct xml_node *el = ev->el;
	const char *type = xml_attr(el, "type");
	const char *to = xml_attr(el, "to");
	struct jid j;

	PL_UNUSED(arg);
	if (strcmp(el->name, "message") != 0)
		return PL_OK;
	/* XEP-0160 §3: chat and normal are kept; headline, groupchat and
	 * error are not (the session manager handles those already). */
	if (type && strcmp(type, "chat") != 0 && strcmp(type, "normal") != 0)
		return PL_OK;
	if (!to || jid_parse(to, strlen(to), &j) != PL_OK)
		return PL_OK;
	if (!j.local) {
		jid_free(&j);
		return PL_OK;
	}
	if (!offline_worth_storing(el)) {
		jid_free(&j);
		xml_free(el);
		return PL_DONE;
	}
	struct offline_store_job *oj = pl_calloc(1, sizeof(*oj));
	oj->job.run = offline_store_run;
	oj->job.done = offline_store_done;
	oj->el = el;
	oj->host = pl_strdup(j.domain);
	oj->user = pl_strdup(j.local);
	oj->xml = modstore_xml_text(el);
	oj->max = offline_max(host);
	time_format_utc(time(NULL), oj->stamp);
	char *bare = jid_bare(&j);
	jid_free(&j);
	offline_enqueue(oj, bare);
	free(bare);
	return PL_DONE;
}

/* ---- replaying ---- */

static struct offline_busy **offline_busy_find(const char *bare)
{
	struct offline_busy **p = &busy_users;
	while (*p && strcmp((*p)->bare, bare) != 0)
		p = &(*p)->next;
	return p;
}

static void offline_busy_end(const char *host, const char *user)
{
	char bare[2048];
	snprintf(bare, sizeof(bare), "%s@%s", user, host);
	struct offline_busy **p = offline_busy_find(bare);
	if (*p) {
		struct offline_busy *b = *p;
		*p = b->next;
		free(b);
	}
}

static void offline_fetch_free(struct offline_fetch_job *fj)
{
	for (size_t i = 0; i < fj->n; i++) {
		free(fj->msgs[i].xml);
		free(fj->msgs[i].stamp);
	}
	free(fj->msgs);
	presence_release(fj->ps);
	free(fj->host);
	free(fj->user);
	free(fj);
}

static void offline_fetch_run(struct store_job *j, struct sqlite3 *db)
{
	struct offline_fetch_job *fj = PL_CONTAINER_OF(j, struct offline_fetch_job, job);
	sqlite3_stmt *s;
	int rc;

	if (fj->deleting) {
		s = store_prepare(db, "DELETE FROM offline WHERE host = ?1 AND username = ?2"
				  " AND id <= ?3");
		if (!s) {
			j->status = PL_ERR;
			return;
		}
		sqlite3_bind_text(s, 1, fj->host, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, fj->user, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, fj->last_id);
		rc = sqlite3_step(s);
		store_release(s);
		j->status = rc == SQLITE_DONE ? PL_OK : PL_ERR;
		if (j->status != PL_OK)
			log_error("offline: %s@%s: cannot delete replayed messages: %s", fj->user,
				  fj->host, sqlite3_errmsg(db));
		return;
	}
	s = store_prepare(db, "SELECT id, stamp, xml FROM offline WHERE host = ?1"
			  " AND username = ?2 ORDER BY id");
	if (!s) {
		j->status = PL_ERR;
		return;
	}
	sqlite3_bind_text(s, 1, fj->host, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, fj->user, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (fj->n == fj->cap) {
			fj->cap = fj->cap ? fj->cap * 2 : 16;
			fj->msgs = pl_realloc(fj->msgs, fj->cap * sizeof(*fj->msgs));
		}
		struct offline_msg *m = &fj->msgs[fj->n++];
		m->id = sqlite3_column_int64(s, 0);
		m->stamp = pl_strdup((const char *)sqlite3_column_text(s, 1));
		m->xml = pl_strdup((const char *)sqlite3_column_text(s, 2));
	}
	store_release(s);
	j->status = rc == SQLITE_DONE ? PL_OK : PL_ERR;
	if (j->status != PL_OK)
		log_error("offline: %s@%s: cannot read stored messages: %s", fj->user, fj->host,
			  sqlite3_errmsg(db));
}

static void offline_fetch_done(struct store_job *j)
{
	struct offline_fetch_job *fj = PL_CONTAINER_OF(j, struct offline_fetch_job, job);
	struct c2s *s = presence_c2s(fj->ps);

	if (fj->deleting || j->status != PL_OK || fj->n == 0 || !s) {
		/* done, failed, nothing stored, or the session left first (the
		 * messages stay for the next login) */
		offline_busy_end(fj->host, fj->user);
		offline_fetch_free(fj);
		return;
	}
	for (size_t i = 0; i < fj->n; i++) {
		struct offline_msg *m = &fj->msgs[i];
		struct xml_node *el = modstore_xml_parse(m->xml);
		fj->last_id = m->id;
		if (!el) {
			log_warning("offline: %s@%s: stored message %lld is damaged; dropped",
				    fj->user, fj->host, (long long)m->id);
			continue;
		}
		/* the stamp is when the server took the message, as the store
		 * recorded it */
		stanza_add_delay(el, fj->host, m->stamp);
		c2s_send(s, el);
		xml_free(el);
	}
	log_info("offline: %s: %zu stored message(s) delivered", c2s_full_jid(s), fj->n);
	fj->deleting = true;
	store_submit(&fj->job);
}

static int offline_on_available(const char *host, void *event, void *arg)
{
	struct c2s *s = event;
	PL_UNUSED(arg);
	/* XEP-0160 §2 step 4: to the resource that sent non-negative
	 * presence; negative priority means "not for me" */
	if (c2s_priority(s) < 0)
		return PL_OK;
	if (offline_flex_chosen(s))
		return PL_OK;
	char bare[2048];
	snprintf(bare, sizeof(bare), "%s@%s", c2s_user(s), host);
	if (*offline_busy_find(bare))
		return PL_OK;
	size_t n = strlen(bare) + 1;
	struct offline_busy *b = pl_malloc(sizeof(*b) + n);
	memcpy(b->bare, bare, n);
	b->next = busy_users;
	busy_users = b;

	struct offline_fetch_job *fj = pl_calloc(1, sizeof(*fj));
	fj->job.run = offline_fetch_run;
	fj->job.done = offline_fetch_done;
	fj->ps = presence_hold(s);
	fj->host = pl_strdup(host);
	fj->user = pl_strdup(c2s_user(s));
	if (!fj->ps) {
		offline_busy_end(host, fj->user);
		offline_fetch_free(fj);
		return PL_OK;
	}
	store_submit(&fj->job);
	return PL_OK;
}

/* ---- the module ---- */

static const struct modopt offline_opts[] = {
	{ "max_messages", MODOPT_INT, 1, 1000000, NULL },
	{ NULL, MODOPT_BOOL, 0, 0, NULL },
};

static int offline_check(const struct cfg_node *opts, char *err, size_t errlen)
{
	return modopt_check("mod_offline", opts, offline_opts, err, errlen);
}

static int offline_start(const char *host, const struct cfg_node *opts)
{
	if (offline_nhosts == OFFLINE_MAX_HOSTS) {
		log_error("mod_offline: too many hosts");
		return PL_ERR;
	}
	offline_hosts[offline_nhosts].host = pl_strdup(host);
	offline_hosts[offline_nhosts].max = modopt_int(opts, "max_messages", OFFLINE_DEFAULT_MAX);
	offline_nhosts++;
	if (!hook_available)
		hook_available = hook_get(HOOK_USER_AVAILABLE);
	hook_add(xmpp_hooks.offline_message, host, offline_on_message, NULL, 0);
	hook_add(hook_available, host, offline_on_available, NULL, 0);
	disco_add_feature(host, NS_MSGOFFLINE);
	offline_flex_start(host);
	return PL_OK;
}

static void offline_stop(const char *host)
{
	hook_remove(xmpp_hooks.offline_message, host, offline_on_message);
	if (hook_available)
		hook_remove(hook_available, host, offline_on_available);
	disco_remove_feature(host, NS_MSGOFFLINE);
	offline_flex_stop(host);
	for (size_t i = 0; i < offline_nhosts; i++) {
		if (strcasecmp(offline_hosts[i].host, host) == 0) {
			free(offline_hosts[i].host);
			offline_hosts[i] = offline_hosts[--offline_nhosts];
			break;
		}
	}
}

const struct pm_module mod_offline = {
	.name = "mod_offline",
	.api_version = PARLEY_MODULE_API_VERSION,
	.default_enabled = true,
	.check = offline_check,
	.start = offline_start,
	.stop = offline_stop,
};
