/*
 * mod_blocking.c - Blocking Command (XEP-0191): a user's block list, its
 * pushes to the resources that asked for it, and its enforcement: what
 * the user sends to a blocked JID comes back as not-acceptable with
 * <blocked/>, and what a blocked JID sends the user is dropped (an iq get
 * or set is answered service-unavailable, as if the user did not exist).
 *
 * Ownership: the lists live on the users' home shards, in a per-shard
 * cache: loaded when a user's first session binds or when a stanza for an
 * offline user arrives, kept while a session is bound, and then among a
 * bounded set of recently used idle entries.
 *
 * Until a list is in, nothing is decided without it: stanzas for the user,
 * stanzas the user's clients send to anyone but themselves and the server
 * (a client may send them with its bind request, long before the list can
 * be read) and presence sent on the user's behalf all wait, in arrival
 * order, and then go through their hooks again as if they had just come.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dlist.h"
#include "core/hook.h"
#include "core/log.h"
#include "core/module.h"
#include "core/pl.h"
#include "core/strtab.h"
#include "xmpp/disco.h"
#include "xmpp/events.h"
#include "xmpp/iq.h"
#include "xmpp/jid.h"
#include "xmpp/modules.h"
#include "xmpp/roster.h"
#include "xmpp/sm.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

#define BLK_MAX_ITEMS 1000     /* per user */
#define BLK_IDLE_MAX 1024      /* idle (no session) lists kept per shard */
#define BLK_MAX_WAITING 256    /* stanzas for a user held while the list loads */
/* What the user's clients send and presence on the user's behalf while the
 * list loads: a login's initial broadcast alone is one per contact. */
#define BLK_MAX_HELD_OUT 4096
#define BLK_PRIO 100           /* before delivery and offline storage */
/* user_send_packet: before every other handler (mod_ping's is 1000), so a
 * held stanza replayed through the whole chain is seen by each one once. */
#define BLK_SEND_PRIO 2000

enum blk_held {
	BLK_HELD_IN,           /* for the user (sm_local_deliver) */
	BLK_HELD_SENT,         /* from one of the user's sessions */
	BLK_HELD_PRESENCE,     /* sent on the user's behalf (presence_out) */
};

struct blk_wait {
	struct blk_wait *next;
	struct xml_node *el;
	struct c2s *s;         /* BLK_HELD_SENT: the session that sent el */
	enum blk_held kind;
	bool closed;           /* s closed meanwhile: kept with c2s_hold() */
};

struct blk_user {
	struct strtab_node node;
	struct dlist_node idle_node;   /* on the table's idle list (idle) */
	char **jids;
	size_t n, cap;
	int sessions;
	bool loaded, reload, idle;
	size_t nwait_in, nwait_out;
	struct blk_wait *wait, *wait_tail;
	char *host, *user;
	char bare[];
};

struct blk_table {
	struct blk_table *all_next;
	struct strtab users;
	struct dlist idle;             /* newest at the head */
};

static __thread struct blk_table *blk_here;
/* Every shard's table, freed when the module stops (shards are gone). */
static pthread_mutex_t blk_all_mu = PTHREAD_MUTEX_INITIALIZER;
static struct blk_table *blk_all;
static int blk_hosts;

/* ---- JID matching (XEP-0191 §6, the rules of XEP-0016 §2.1) ---- */

struct jid_parts {
	const char *local, *domain, *res;
	size_t llen, dlen, rlen;
};

static void split_jid(const char *s, struct jid_parts *p)
{
	const char *slash = strchr(s, '/');
	const char *at = strchr(s, '@');
	if (at && slash && at > slash)
		at = NULL;   /* an '@' in the resource */
	p->local = at ? s : NULL;
	p->llen = at ? (size_t)(at - s) : 0;
	p->domain = at ? at + 1 : s;
	p->dlen = slash ? (size_t)(slash - p->domain) : strlen(p->domain);
	p->res = slash ? slash + 1 : NULL;
	p->rlen = slash ? strlen(slash + 1) : 0;
}

static bool part_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

bool blocking_item_matches(const char *item, const char *who)
{
	struct jid_parts i, w;
	split_jid(item, &i);
	split_jid(who, &w);
	if (!part_eq(i.domain, i.dlen, w.domain, w.dlen))
		return false;
	if (i.local) {
		/* user@domain: any resource; user@domain/res: that one. */
		if (!w.local || !part_eq(i.local, i.llen, w.local, w.llen))
			return false;
		return !i.res || (w.res && part_eq(i.res, i.rlen, w.res, w.rlen));
	}
	if (i.res)   /* domain/resource: that JID only */
		return !w.local && w.res && part_eq(i.res, i.rlen, w.res, w.rlen);
	return true; /* domain: everyone there, and the domain itself */
}

/* ---- the per-shard cache ---- */

static struct blk_table *blk_table(void)
{
	if (blk_here)
		return blk_here;
	struct blk_table *t = pl_calloc(1, sizeof(*t));
	t->users = (struct strtab)STRTAB_INIT(struct blk_user, node, bare);
	pthread_mutex_lock(&blk_all_mu);
	t->all_next = blk_all;
	blk_all = t;
	pthread_mutex_unlock(&blk_all_mu);
	blk_here = t;
	return t;
}

static void blk_user_free(struct blk_user *u)
{
	for (size_t i = 0; i < u->n; i++)
		free(u->jids[i]);
	free(u->jids);
	while (u->wait) {
		struct blk_wait *w = u->wait;
		u->wait = w->next;
		xml_free(w->el);
		free(w);
	}
	free(u->host);
	free(u->user);
	free(u);
}

static void blk_idle_unlink(struct blk_table *t, struct blk_user *u)
{
	if (!u->idle)
		return;
	dlist_unlink(&t->idle, &u->idle_node);
	u->idle = false;
}

/* Newest idle entries at the head; the oldest leave once there are too
 * many (never one still loading or holding stanzas). */
static void blk_idle_push(struct blk_table *t, struct blk_user *u)
{
	u->idle = true;
	dlist_push_head(&t->idle, &u->idle_node);
	struct blk_user *old = DLIST_ENTRY(t->idle.tail, struct blk_user, idle_node);
	while (t->idle.n > BLK_IDLE_MAX && old) {
		struct blk_user *prev = DLIST_ENTRY(old->idle_node.prev, struct blk_user, idle_node);
		if (old->loaded && !old->wait && old != u) {
			blk_idle_unlink(t, old);
			strtab_del(&t->users, old->bare);
			blk_user_free(old);
		}
		old = prev;
	}
}

static void blk_load(struct blk_user *u);

/* The list of bare ("user@host"), looked up or (create) made and loaded. */
static struct blk_user *blk_get(const char *host, const char *bare, bool create)
{
	struct blk_table *t = blk_table();
	struct blk_user *found = STRTAB_GET(&t->users, bare, struct blk_user, node);
	const char *at = strchr(bare, '@');
	if (found || !create || !at)
		return found;
	size_t len = strlen(bare) + 1;
	struct blk_user *u = pl_calloc(1, sizeof(*u) + len);
	memcpy(u->bare, bare, len);
	u->host = pl_strdup(host);
	u->user = pl_strndup(bare, (size_t)(at - bare));
	strtab_put(&t->users, &u->node);
	blk_load(u);
	return u;
}

static bool blk_has(const struct blk_user *u, const char *jid)
{
	for (size_t i = 0; i < u->n; i++)
		if (strcmp(u->jids[i], jid) == 0)
			return true;
	return false;
}

static void blk_add(struct blk_user *u, const char *jid)
{
	if (blk_has(u, jid))
		return;
	if (u->n == u->cap) {
		u->cap = u->cap ? u->cap * 2 : 8;
		u->jids = pl_realloc(u->jids, u->cap * sizeof(char *));
	}
	u->jids[u->n++] = pl_strdup(jid);
}

static void blk_del(struct blk_user *u, const char *jid)
{
	for (size_t i = 0; i < u->n; i++) {
		if (strcmp(u->jids[i], jid) == 0) {
			free(u->jids[i]);
			u->jids[i] = u->jids[--u->n];
			return;
		}
	}
}

static void blk_clear(struct blk_user *u)
{
	for (size_t i = 0; i < u->n; i++)
		free(u->jids[i]);
	u->n = 0;
}

static bool blk_blocks(const struct blk_user *u, const char *who)
{
	for (size_t i = 0; i < u->n; i++)
		if (blocking_item_matches(u->jids[i], who))
			return true;
	return false;
}

/* ---- holding while the list loads ---- */

/* PL_ERR when u already holds as many of that kind as it may. */
static int blk_hold(struct blk_user *u, enum blk_held kind, struct c2s *s,
		    struct xml_node *el)
{
	size_t *n = kind == BLK_HELD_IN ? &u->nwait_in : &u->nwait_out;
	if (*n >= (kind == BLK_HELD_IN ? BLK_MAX_WAITING : BLK_MAX_HELD_OUT))
		return PL_ERR;
	struct blk_wait *w = pl_calloc(1, sizeof(*w));
	w->el = el;
	w->s = s;
	w->kind = kind;
	if (u->wait_tail)
		u->wait_tail->next = w;
	else
		u->wait = w;
	u->wait_tail = w;
	(*n)++;
	return PL_OK;
}

/* A closing session's held stanzas still go out (the client sent them
 * before it left), so the session is kept until they have been replayed. */
static void blk_hold_closing(struct blk_user *u, struct c2s *s)
{
	size_t n = 0;
	for (struct blk_wait *w = u->wait; w; w = w->next) {
		if (w->kind != BLK_HELD_SENT || w->s != s || w->closed)
			continue;
		w->closed = true;
		c2s_hold(s);
		n++;
	}
	if (n)
		log_debug("blocking: %s: closed with %zu stanza(s) waiting for the block list",
			  c2s_full_jid(s), n);
}

static bool blk_is_available_presence(const struct xml_node *el)
{
	return strcmp(el->name, "presence") == 0 && !xml_attr(el, "type");
}

/* What c2s does with a stanza it read, from the user_send hook on. */
static void blk_replay_sent(const char *host, struct blk_wait *w)
{
	if (w->closed && blk_is_available_presence(w->el)) {
		/* the resource is gone and its unavailable presence went out
		 * already: an available one now would outlive it */
		xml_free(w->el);
	} else {
		struct stanza_event ev = { w->s, w->el, host };
		if (hook_run(xmpp_hooks.user_send, host, &ev) != PL_DONE)
			router_route(w->el);
	}
	if (w->closed)
		c2s_release(w->s);
}

static void blk_replay(struct blk_user *u, struct blk_wait *w)
{
	struct stanza_event ev = { NULL, w->el, u->host };
	switch (w->kind) {
	case BLK_HELD_IN:
		sm_deliver(w->el);
		break;
	case BLK_HELD_SENT:
		blk_replay_sent(u->host, w);
		break;
	case BLK_HELD_PRESENCE:
		if (hook_run(xmpp_hooks.presence_out, u->host, &ev) != PL_DONE)
			router_route(w->el);
		break;
	}
}

static void blk_loaded(void *arg, int status, char **rows, size_t nrows, long changes)
{
	struct blk_user *u = arg;
	PL_UNUSED(changes);
	if (u->reload) {
		/* A change committed while we read: read again to see it. */
		u->reload = false;
		blk_load(u);
		return;
	}
	blk_clear(u);
	for (size_t i = 0; status == PL_OK && i < nrows; i++)
		blk_add(u, rows[i]);
	/* A list that cannot be read blocks nothing: losing messages to a
	 * storage hiccup would be worse. */
	u->loaded = true;
	struct blk_wait *w = u->wait;
	u->wait = u->wait_tail = NULL;
	u->nwait_in = u->nwait_out = 0;
	bool idle = u->sessions == 0 && !u->idle;
	while (w) {
		struct blk_wait *next = w->next;
		blk_replay(u, w);
		free(w);
		w = next;
	}
	if (idle)
		blk_idle_push(blk_table(), u);
}

static void blk_load(struct blk_user *u)
{
	const char *params[] = { u->host, u->user };
	u->loaded = false;
	modstore_exec("SELECT jid FROM blocklist WHERE host = ?1 AND username = ?2",
		      params, 2, 1, blk_loaded, u);
}

/* ---- enforcement ---- */

/* The normalised bare JID of a JID already known to be valid, into buf
 * in the common case (short, ASCII lower case: every stanza delivered
 * passes here, so no allocation), else a jid_parse'd copy in *heap. */
static const char *bare_of(const char *jid, char *buf, size_t buflen, char **heap)
{
	const char *slash = strchr(jid, '/');
	size_t len = slash ? (size_t)(slash - jid) : strlen(jid);
	bool plain = len > 0 && len < buflen && jid[len - 1] != '.';
	for (size_t i = 0; plain && i < len; i++)
		plain = (uint8_t)jid[i] < 0x80 && !(jid[i] >= 'A' && jid[i] <= 'Z');
	*heap = NULL;
	if (plain) {
		memcpy(buf, jid, len);
		buf[len] = '\0';
		return buf;
	}
	struct jid j;
	if (jid_parse(jid, strlen(jid), &j) != PL_OK)
		return NULL;
	*heap = jid_bare(&j);
	jid_free(&j);
	return *heap;
}

/* "user@host" of a session into buf (or *heap when it does not fit). */
static const char *bare_of_session(const struct c2s *s, const char *host, char *buf,
				   size_t buflen, char **heap)
{
	size_t n = strlen(c2s_user(s)) + strlen(host) + 2;
	char *out = n <= buflen ? buf : (*heap = pl_malloc(n));
	if (n <= buflen)
		*heap = NULL;
	snprintf(out, n, "%s@%s", c2s_user(s), host);
	return out;
}

/* The server itself and the user's own resources are never blocked: the
 * user's session depends on them. */
static bool blk_exempt(const char *from, const char *bare, const char *host)
{
	size_t bl = strlen(bare);
	if (strncmp(from, bare, bl) == 0 && (from[bl] == '\0' || from[bl] == '/'))
		return true;
	return strcmp(from, host) == 0;
}

static int blk_local_deliver(const char *host, void *event, void *arg)
{
	struct stanza_event *ev = event;
	PL_UNUSED(arg);
	const char *to = xml_attr(ev->el, "to");
	const char *from = xml_attr(ev->el, "from");
	if (!to || !from)
		return PL_OK;
	char buf[256], *heap;
	const char *bare = bare_of(to, buf, sizeof(buf), &heap);
	struct blk_user *u = bare ? blk_get(host, bare, true) : NULL;
	if (!u) {
		free(heap);
		return PL_OK;
	}
	int rc = PL_OK;
	if (!u->loaded) {
		if (blk_hold(u, BLK_HELD_IN, NULL, ev->el) != PL_OK)
			router_bounce(ev->el, "wait", "resource-constraint");
		rc = PL_DONE;
	} else if (u->n > 0 && !blk_exempt(from, bare, host) && blk_blocks(u, from)) {
		const char *type = xml_attr(ev->el, "type");
		if (strcmp(ev->el->name, "iq") == 0 && type &&
		    (strcmp(type, "get") == 0 || strcmp(type, "set") == 0))
			router_bounce(ev->el, "cancel", "service-unavailable");
		else
			xml_free(ev->el);
		rc = PL_DONE;
	}
	free(heap);
	return rc;
}

/* Like router_bounce, written to the sending session directly: routed, it
 * would come from the blocked JID and be dropped on the way in (or wait
 * for the list that is loading). §3.5's <blocked/> when blocked. */
static void blk_bounce_to_session(struct c2s *s, struct xml_node *el, const char *type,
				  const char *condition, bool blocked)
{
	const char *t = xml_attr(el, "type");
	if (t && strcmp(t, "error") == 0) {
		xml_free(el);
		return;
	}
	char *to = pl_strdup(xml_attr(el, "to"));
	char *from = pl_strdup(xml_attr(el, "from"));
	xml_set_attr(el, "to", from);
	xml_set_attr(el, "from", to);
	xml_set_attr(el, "type", "error");
	struct xml_node *e = stanza_add_error(el, type, condition, NULL);
	if (blocked)
		xml_add_child(e, "blocked", NS_BLOCKING_ERRORS);
	free(to);
	free(from);
	c2s_send(s, el);
	xml_free(el);
}

/* The normalised full JID of a stanza's 'to' (malloc'd), unless it is the
 * user's own or the server's, which are never blocked. */
static char *blk_target(const char *to, const char *bare, const char *host)
{
	struct jid j;
	if (jid_parse(to, strlen(to), &j) != PL_OK)
		return NULL;
	char *who = jid_full(&j);
	jid_free(&j);
	if (blk_exempt(who, bare, host)) {
		free(who);
		return NULL;
	}
	return who;
}

static int blk_user_send(const char *host, void *event, void *arg)
{
	struct stanza_event *ev = event;
	PL_UNUSED(arg);
	const char *to = xml_attr(ev->el, "to");
	if (!to || !c2s_user(ev->s))
		return PL_OK;
	char buf[256], *heap;
	const char *bare = bare_of_session(ev->s, host, buf, sizeof(buf), &heap);
	struct blk_user *u = blk_get(host, bare, true);
	char *who = u && (!u->loaded || u->n > 0) ? blk_target(to, bare, host) : NULL;
	free(heap);
	if (!who)
		return PL_OK;
	bool loaded = u->loaded, blocked = loaded && blk_blocks(u, who);
	free(who);
	if (loaded && !blocked)
		return PL_OK;
	if (blocked)
		blk_bounce_to_session(ev->s, ev->el, "cancel", "not-acceptable", true);
	else if (blk_hold(u, BLK_HELD_SENT, ev->s, ev->el) != PL_OK)
		blk_bounce_to_session(ev->s, ev->el, "wait", "resource-constraint", false);
	return PL_DONE;
}

static int blk_session_bound(const char *host, void *event, void *arg)
{
	struct c2s *s = event;
	PL_UNUSED(arg);
	char buf[256], *heap;
	struct blk_user *u = blk_get(host, bare_of_session(s, host, buf, sizeof(buf), &heap), true);
	free(heap);
	if (!u)
		return PL_OK;
	blk_idle_unlink(blk_table(), u);
	u->sessions++;
	return PL_OK;
}

static int blk_session_closed(const char *host, void *event, void *arg)
{
	struct c2s *s = event;
	PL_UNUSED(arg);
	if (!c2s_user(s))
		return PL_OK;
	char buf[256], *heap;
	struct blk_user *u = blk_get(host, bare_of_session(s, host, buf, sizeof(buf), &heap), false);
	free(heap);
	if (u && !u->loaded)
		blk_hold_closing(u, s);
	if (u && u->sessions > 0 && --u->sessions == 0 && u->loaded)
		blk_idle_push(blk_table(), u);
	return PL_OK;
}

/* ---- the protocol (§3) ---- */

struct blk_change {
	struct iq_req *req;
	char *bare;
	char **jids;
	size_t n;
	enum { BLK_BLOCK, BLK_UNBLOCK, BLK_UNBLOCK_ALL } op;
};

static void blk_change_free(struct blk_change *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->jids[i]);
	free(c->jids);
	free(c->bare);
	free(c);
}

static struct xml_node *blk_list_el(const char *name, char *const *jids, size_t n)
{
	struct xml_node *x = xml_new(name, NS_BLOCKING);
	for (size_t i = 0; i < n; i++)
		xml_set_attr(xml_add_child(x, "item", NULL), "jid", jids[i]);
	return x;
}

/* §3.3, §3.4: every resource that asked for the list hears of a change. */
static void blk_push(const char *bare, const struct xml_node *payload)
{
	struct c2s *sess[64];
	size_t n = sm_sessions_of(bare, sess, PL_ARRAY_LEN(sess));
	static __thread unsigned long push_seq;
	for (size_t i = 0; i < n; i++) {
		if (!c2s_get_data(sess[i], C2S_SLOT_BLOCKING))
			continue;
		char id[32];
		snprintf(id, sizeof(id), "blockpush%lu", ++push_seq);
		struct xml_node *iq = xml_new("iq", NS_CLIENT);
		xml_set_attr(iq, "type", "set");
		xml_set_attr(iq, "id", id);
		xml_set_attr(iq, "to", c2s_full_jid(sess[i]));
		xml_add_copy(iq, payload);
		c2s_send(sess[i], iq);
		xml_free(iq);
	}
}

/* Does this blocklist item name a contact the user's presence goes to? */
static bool blk_had_presence(struct roster_user *ru, const char *item)
{
	const struct roster_item *it = roster_find(ru, item);
	return it && it->in_roster && roster_item_from(it);
}

/* §3.3: presence the server sends on the user's behalf (broadcast, probe
 * answers) does not go to a blocked contact. */
static int blk_presence_out(const char *host, void *event, void *arg)
{
	struct stanza_event *ev = event;
	PL_UNUSED(arg);
	const char *from = xml_attr(ev->el, "from");
	const char *to = xml_attr(ev->el, "to");
	struct jid f;
	if (!from || !to || jid_parse(from, strlen(from), &f) != PL_OK)
		return PL_OK;
	char *bare = jid_bare(&f);
	jid_free(&f);
	struct blk_user *u = blk_get(host, bare, true);
	char *who = u && (!u->loaded || u->n > 0) ? blk_target(to, bare, host) : NULL;
	if (!who) {
		free(bare);
		return PL_OK;
	}
	bool loaded = u->loaded, blocked = loaded && blk_blocks(u, who);
	free(who);
	if (loaded && !blocked) {
		free(bare);
		return PL_OK;
	}
	if (blocked) {
		xml_free(ev->el);
	} else if (blk_hold(u, BLK_HELD_PRESENCE, NULL, ev->el) != PL_OK) {
		/* withheld rather than sent unchecked */
		log_warning("blocking: %s: presence to %s withheld: %d stanzas already wait"
			    " for the block list", bare, to, BLK_MAX_HELD_OUT);
		xml_free(ev->el);
	}
	free(bare);
	return PL_DONE;
}

static void blk_changed(void *arg, int status, char **rows, size_t nrows, long changes)
{
	struct blk_change *c = arg;
	PL_UNUSED(rows);
	PL_UNUSED(nrows);
	PL_UNUSED(changes);
	if (status != PL_OK) {
		iq_error(c->req, "wait", "internal-server-error");
		blk_change_free(c);
		return;
	}
	struct blk_user *u = blk_get(c->req->to.domain, c->bare, false);
	if (u && !u->loaded)
		u->reload = true;
	/* §3.3: a contact that had the user's presence sees the user go
	 * unavailable when blocked (sent before the block takes effect), and
	 * gets it back when unblocked (after). */
	struct roster_user *ru = roster_cached(c->bare);
	for (size_t i = 0; ru && c->op == BLK_BLOCK && i < c->n; i++)
		if (blk_had_presence(ru, c->jids[i]))
			presence_send_unavailable(ru, c->jids[i]);
	for (size_t i = 0; u && i < c->n; i++) {
		if (c->op == BLK_BLOCK)
			blk_add(u, c->jids[i]);
		else
			blk_del(u, c->jids[i]);
	}
	char **was = NULL;
	size_t nwas = 0;
	if (u && c->op == BLK_UNBLOCK_ALL) {
		was = u->jids;
		nwas = u->n;
		u->jids = NULL;
		u->n = u->cap = 0;
	}
	for (size_t i = 0; ru && c->op == BLK_UNBLOCK && i < c->n; i++)
		if (blk_had_presence(ru, c->jids[i]))
			presence_send_current(ru, c->jids[i]);
	for (size_t i = 0; i < nwas; i++) {
		if (ru && blk_had_presence(ru, was[i]))
			presence_send_current(ru, was[i]);
		free(was[i]);
	}
	free(was);
	iq_result(c->req, NULL);
	struct xml_node *push = blk_list_el(c->op == BLK_BLOCK ? "block" : "unblock",
					    c->jids, c->n);
	blk_push(c->bare, push);
	xml_free(push);
	blk_change_free(c);
}

static void blk_got_list(void *arg, int status, char **rows, size_t nrows, long changes)
{
	struct iq_req *req = arg;
	PL_UNUSED(changes);
	if (status != PL_OK) {
		iq_error(req, "wait", "internal-server-error");
		return;
	}
	iq_result(req, blk_list_el("blocklist", rows, nrows));
}

/* The items of a block/unblock, normalised; NULL and *cond on error. */
static char **blk_items(const struct xml_node *q, size_t *n, const char **cond)
{
	size_t cap = 0;
	char **v = NULL;
	*n = 0;
	*cond = NULL;
	for (const struct xml_node *c = xml_first_child_el(q); c; c = xml_next_el(c)) {
		const char *jid = xml_is(c, "item", NS_BLOCKING) ? xml_attr(c, "jid") : NULL;
		struct jid j;
		if (!jid || jid_parse(jid, strlen(jid), &j) != PL_OK) {
			*cond = jid ? "jid-malformed" : "bad-request";
			break;
		}
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			v = pl_realloc(v, cap * sizeof(char *));
		}
		v[(*n)++] = jid_full(&j);
		jid_free(&j);
		if (*n > BLK_MAX_ITEMS) {
			*cond = "resource-constraint";
			break;
		}
	}
	if (!*cond)
		return v;
	for (size_t i = 0; i < *n; i++)
		free(v[i]);
	free(v);
	*n = 0;
	return NULL;
}

static void blk_iq(struct iq_req *req)
{
	if (!req->from_self) {
		iq_error(req, "cancel", "not-allowed");
		return;
	}
	const char *name = req->query->name;
	if (!req->set) {
		if (strcmp(name, "blocklist") != 0) {
			iq_error(req, "modify", "bad-request");
			return;
		}
		/* §3.2: this resource now wants pushes. */
		char *bare = jid_bare(&req->from);
		struct c2s *s = req->from.resource ? sm_find_session(bare, req->from.resource) : NULL;
		free(bare);
		if (s)
			c2s_set_data(s, C2S_SLOT_BLOCKING, (void *)1);
		const char *params[] = { req->to.domain, req->to.local };
		modstore_exec("SELECT jid FROM blocklist WHERE host = ?1 AND username = ?2"
			      " ORDER BY jid", params, 2, 1, blk_got_list, req);
		return;
	}
	bool block = strcmp(name, "block") == 0;
	if (!block && strcmp(name, "unblock") != 0) {
		iq_error(req, "modify", "bad-request");
		return;
	}
	struct blk_change *c = pl_calloc(1, sizeof(*c));
	const char *cond;
	c->req = req;
	c->bare = jid_bare(&req->to);
	c->jids = blk_items(req->query, &c->n, &cond);
	if (cond || (block && c->n == 0)) {
		blk_change_free(c);
		iq_error(req, cond && strcmp(cond, "resource-constraint") == 0 ? "wait" : "modify",
			 cond ? cond : "bad-request");
		return;
	}
	c->op = block ? BLK_BLOCK : c->n ? BLK_UNBLOCK : BLK_UNBLOCK_ALL;
	if (c->op == BLK_UNBLOCK_ALL) {
		const char *params[] = { req->to.domain, req->to.local };
		modstore_exec("DELETE FROM blocklist WHERE host = ?1 AND username = ?2",
			      params, 2, 1, blk_changed, c);
		return;
	}
	const char **params = pl_calloc(c->n * 3, sizeof(char *));
	for (size_t i = 0; i < c->n; i++) {
		params[i * 3] = req->to.domain;
		params[i * 3 + 1] = req->to.local;
		params[i * 3 + 2] = c->jids[i];
	}
	if (block)
		modstore_exec("INSERT OR IGNORE INTO blocklist (host, username, jid)"
			      " VALUES (?1, ?2, ?3)", params, 3, c->n, blk_changed, c);
	else
		modstore_exec("DELETE FROM blocklist WHERE host = ?1 AND username = ?2"
			      " AND jid = ?3", params, 3, c->n, blk_changed, c);
	free(params);
}

static void blk_free_loaded(struct strtab_node *n, void *arg)
{
	PL_UNUSED(arg);
	struct blk_user *u = PL_CONTAINER_OF(n, struct blk_user, node);
	if (u->loaded)
		blk_user_free(u);
}

static int blk_start(const char *host, const struct cfg_node *opts)
{
	PL_UNUSED(opts);
	blk_hosts++;
	iq_handler_add(host, NS_BLOCKING, IQ_ACCOUNT, blk_iq);
	hook_add(xmpp_hooks.local_deliver, host, blk_local_deliver, NULL, BLK_PRIO);
	hook_add(xmpp_hooks.user_send, host, blk_user_send, NULL, BLK_SEND_PRIO);
	hook_add(xmpp_hooks.session_bound, host, blk_session_bound, NULL, BLK_PRIO);
	hook_add(xmpp_hooks.session_closed, host, blk_session_closed, NULL, BLK_PRIO);
	hook_add(xmpp_hooks.presence_out, host, blk_presence_out, NULL, BLK_PRIO);
	disco_add_feature(host, NS_BLOCKING);
	return PL_OK;
}

static void blk_stop(const char *host)
{
	iq_handler_remove(host, NS_BLOCKING, IQ_ACCOUNT);
	hook_remove(xmpp_hooks.local_deliver, host, blk_local_deliver);
	hook_remove(xmpp_hooks.user_send, host, blk_user_send);
	hook_remove(xmpp_hooks.session_bound, host, blk_session_bound);
	hook_remove(xmpp_hooks.session_closed, host, blk_session_closed);
	hook_remove(xmpp_hooks.presence_out, host, blk_presence_out);
	disco_remove_feature(host, NS_BLOCKING);
	if (--blk_hosts > 0)
		return;
	/* The shards have stopped: their tables have no owner any more. A
	 * list still loading is left to its storage callback. */
	pthread_mutex_lock(&blk_all_mu);
	while (blk_all) {
		struct blk_table *t = blk_all;
		blk_all = t->all_next;
		strtab_each(&t->users, blk_free_loaded, NULL);
		strtab_clear(&t->users);
		free(t);
	}
	pthread_mutex_unlock(&blk_all_mu);
}

const struct pm_module mod_blocking = {
	.name = "mod_blocking",
	.api_version = PARLEY_MODULE_API_VERSION,
	.default_enabled = true,
	.start = blk_start,
	.stop = blk_stop,
};
