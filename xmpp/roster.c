/*
 * roster.c - mod_roster: rosters (RFC 6121 §2), versioning (XEP-0237) and
 * presence subscriptions (§3, Appendix A) on top of a per-user cache that
 * lives on the user's home shard (roster.h says who owns what).
 *
 * Each change is applied to the cache and made a transaction
 * (roster_cache.c): what it causes - the iq result, roster pushes, the
 * stanza to the contact - is released only once the change is stored, so
 * a client never hears of a change that a crash could still undo.
 *
 * A roster holds at most `max_items` items, and as many subscription
 * requests from contacts outside it may wait for an answer. What would
 * pass either count is refused before anything changes: a roster set with
 * <not-allowed/>, the user's own subscription stanza with a presence
 * error, and a stranger's request with 'unsubscribed', as if denied.
 * Updates and removals always work, also above a lowered limit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/cfg.h"
#include "core/hook.h"
#include "core/log.h"
#include "core/module.h"
#include "core/pl.h"
#include "xmpp/events.h"
#include "xmpp/iq.h"
#include "xmpp/jid.h"
#include "xmpp/modules.h"
#include "xmpp/roster.h"
#include "xmpp/sm.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

/* Longest item name and group name a client may set (RFC 6121 §2.3.3
 * lets the server choose; XEP-0237 clients keep them in small fields). */
#define ROSTER_MAX_NAME 1023
#define ROSTER_MAX_GROUPS 64
#define ROSTER_DEFAULT_MAX_ITEMS 1000

struct roster_host {
	char *host;
	bool versioning;
	size_t max_items;
};

static struct roster_host roster_hosts[16];
static size_t roster_nhosts;
static struct hook *hook_features;

bool roster_versioning(const char *host)
{
	for (size_t i = 0; i < roster_nhosts; i++)
		if (strcasecmp(roster_hosts[i].host, host) == 0)
			return roster_hosts[i].versioning;
	return true;
}

static size_t roster_max_items(const char *host)
{
	for (size_t i = 0; i < roster_nhosts; i++)
		if (strcasecmp(roster_hosts[i].host, host) == 0)
			return roster_hosts[i].max_items;
	return ROSTER_DEFAULT_MAX_ITEMS;
}

static void roster_full_text(const struct roster_user *u, char *text, size_t len)
{
	snprintf(text, len, "the roster is limited to %zu items", roster_max_items(u->host));
}

/* ---- presence stanzas the server makes ---- */

static struct xml_node *roster_presence(const char *type, const char *from, const char *to)
{
	struct xml_node *p = xml_new("presence", NS_CLIENT);
	if (type)
		xml_set_attr(p, "type", type);
	xml_set_attr(p, "from", from);
	xml_set_attr(p, "to", to);
	return p;
}

static void fx_send_current(struct roster_user *u, bool ok, const char *jid, void *arg)
{
	PL_UNUSED(arg);
	if (ok)
		presence_send_current(u, jid);
}

static void fx_send_unavailable(struct roster_user *u, bool ok, const char *jid, void *arg)
{
	PL_UNUSED(arg);
	if (ok)
		presence_send_unavailable(u, jid);
}

static bool state_visible_eq(const struct roster_state *a, const struct roster_state *b)
{
	return a->sub == b->sub && a->ask == b->ask && a->approved == b->approved;
}

/* Store an item whose state changed; push it if the user can see it. */
static void roster_tx_item(struct roster_tx *tx, struct roster_user *u, struct roster_item *it,
			   const struct roster_state *before, bool was_visible)
{
	bool visible = it->in_roster &&
		(!was_visible || !state_visible_eq(before, &it->st));
	if (!it->in_roster && !it->st.pending_in) {
		roster_tx_delete(tx, it->jid);
		roster_item_remove(u, it);
		return;
	}
	roster_tx_write(tx, it);
	if (visible)
		roster_tx_push(tx, it, false);
}

/* ---- outbound subscription stanzas (RFC 6121 §3, A.2) ---- */

struct roster_sub_op {
	struct xml_node *el;
	enum roster_subtype t;
	char *contact;
	char *sender;         /* outbound: the full JID it came from */
};

static void roster_sub_op_free(struct roster_sub_op *op)
{
	free(op->contact);
	free(op->sender);
	free(op);
}

/* The user's subscription stanza would put a new item in a full roster:
 * it goes back to the resource that sent it as a presence error. */
static void roster_refuse_outbound(struct roster_user *u, struct roster_sub_op *op)
{
	char text[96];
	roster_full_text(u, text, sizeof(text));
	log_info("roster: %s: roster full, %s to %s refused", u->bare,
		 roster_subtype_name(op->t), op->contact);
	xml_set_attr(op->el, "from", op->sender);
	router_bounce_text(op->el, "cancel", "not-allowed", text);
}

static void roster_out_fn(struct roster_user *u, void *arg)
{
	struct roster_sub_op *op = arg;
	struct roster_item *it = roster_find(u, op->contact);
	struct roster_state cur = { 0 };
	struct roster_verdict v;

	if (it)
		cur = it->st;
	roster_sub_outbound(&cur, op->t, &v);
	bool was_visible = it && it->in_roster;
	/* Asking, approving and pre-approving put the contact in the roster
	 * (§3.1.2, §3.1.5, §3.4); the others only change an existing item. */
	bool adds = op->t == ROSTER_SUBSCRIBE || (op->t == ROSTER_SUBSCRIBED && v.changed);
	if (adds && !roster_fits(u, op->contact, true, roster_max_items(u->host))) {
		roster_refuse_outbound(u, op);
		roster_sub_op_free(op);
		return;
	}
	struct roster_tx *tx = roster_tx_new(u);
	if (!it && adds)
		it = roster_item_add(u, op->contact);
	if (it && (v.changed || (adds && !it->in_roster))) {
		it->st = v.next;
		if (adds)
			it->in_roster = true;
		if (!it->st.pending_in) {
			free(it->pending_xml);
			it->pending_xml = NULL;
		}
		roster_tx_item(tx, u, it, &cur, was_visible);
	}
	if (v.forward)
		roster_tx_route(tx, op->el);
	else
		xml_free(op->el);
	if (v.forward && op->t == ROSTER_SUBSCRIBED)
		roster_tx_call(tx, fx_send_current, op->contact, NULL);
	if (v.forward && op->t == ROSTER_UNSUBSCRIBED && (cur.sub & ROSTER_SUB_FROM))
		roster_tx_call(tx, fx_send_unavailable, op->contact, NULL);
	roster_tx_commit(tx);
	roster_sub_op_free(op);
}

/* A subscription stanza from the user's client (home shard); takes el. */
static void roster_outbound(struct c2s *s, struct xml_node *el, enum roster_subtype t)
{
	const char *to = xml_attr(el, "to");
	struct jid j;

	if (!to || jid_parse(to, strlen(to), &j) != PL_OK) {
		xml_free(el);
		return;
	}
	char *contact = jid_bare(&j);
	jid_free(&j);
	size_t blen = strlen(c2s_user(s)) + strlen(c2s_host(s)) + 2;
	char *bare = pl_malloc(blen);
	snprintf(bare, blen, "%s@%s", c2s_user(s), c2s_host(s));
	/* §3.1.2: subscriptions are between bare JIDs */
	xml_set_attr(el, "from", bare);
	xml_set_attr(el, "to", contact);
	if (strcmp(contact, bare) == 0) {
		/* A user is implicitly subscribed to itself (§4.2.2): a
		 * request is answered at once, the rest change nothing. */
		if (t == ROSTER_SUBSCRIBE) {
			struct xml_node *ok = roster_presence("subscribed", bare, c2s_full_jid(s));
			c2s_send(s, ok);
			xml_free(ok);
		}
		xml_free(el);
		free(contact);
		free(bare);
		return;
	}
	free(bare);
	struct roster_sub_op *op = pl_calloc(1, sizeof(*op));
	op->el = el;
	op->t = t;
	op->contact = contact;
	op->sender = pl_strdup(c2s_full_jid(s));
	roster_use(c2s_host(s), c2s_user(s), roster_out_fn, op);
}

/* ---- inbound subscription stanzas (RFC 6121 §3, A.3) ---- */

static void roster_in_fn(struct roster_user *u, void *arg)
{
	struct roster_sub_op *op = arg;
	struct roster_item *it = roster_find(u, op->contact);
	struct roster_state cur = { 0 };
	struct roster_verdict v;

	if (!u->exists) {
		/* §3.1.3: no such user; tell the requester so it stops asking */
		if (op->t == ROSTER_SUBSCRIBE)
			router_route(roster_presence("unsubscribed", u->bare, op->contact));
		xml_free(op->el);
		goto out;
	}
	if (it)
		cur = it->st;
	roster_sub_inbound(&cur, op->t, &v);
	if (v.changed && !it && !roster_fits(u, op->contact, false, roster_max_items(u->host))) {
		/* Too many requests wait already: denied as the user would
		 * deny it (§3.2), so the contact's server stops asking. */
		log_info("roster: %s: too many pending requests, subscribe from %s denied",
			 u->bare, op->contact);
		router_route(roster_presence("unsubscribed", u->bare, op->contact));
		xml_free(op->el);
		goto out;
	}
	bool was_visible = it && it->in_roster;
	struct roster_tx *tx = roster_tx_new(u);
	if (v.changed) {
		if (!it)
			it = roster_item_add(u, op->contact);   /* a request, not in the roster yet */
		it->st = v.next;
		free(it->pending_xml);
		it->pending_xml = NULL;
		if (it->st.pending_in) {
			/* kept for re-delivery at each initial presence until
			 * answered; the copy says when it came (XEP-0203) */
			struct xml_node *kept = xml_copy(op->el);
			presence_add_delay(kept, u->host, time(NULL));
			it->pending_xml = modstore_xml_text(kept);
			xml_free(kept);
		}
		roster_tx_item(tx, u, it, &cur, was_visible);
	}
	if (v.auto_reply) {
		roster_tx_route(tx, roster_presence("subscribed", u->bare, op->contact));
		if (v.changed)
			roster_tx_call(tx, fx_send_current, op->contact, NULL);
	}
	if (op->t == ROSTER_UNSUBSCRIBE && v.forward && (cur.sub & ROSTER_SUB_FROM))
		roster_tx_call(tx, fx_send_unavailable, op->contact, NULL);   /* §3.3.3 */
	if (v.forward)
		roster_tx_deliver(tx, op->el);
	else
		xml_free(op->el);
	roster_tx_commit(tx);
out:
	roster_sub_op_free(op);
}

static void roster_probe_fn(struct roster_user *u, void *arg)
{
	presence_probe(u, arg);
}

/* Set while a presence that waited for the roster is handed back to the
 * session manager, so that it is not held a second time. */
static __thread bool roster_redelivering;

static void fx_redeliver(struct roster_user *u, bool ok, const char *jid, void *arg)
{
	PL_UNUSED(u);
	PL_UNUSED(ok);      /* a transaction without writes cannot fail */
	PL_UNUSED(jid);
	roster_redelivering = true;
	sm_deliver(arg);
	roster_redelivering = false;
}

static void roster_hold_fn(struct roster_user *u, void *arg)
{
	struct roster_tx *tx = roster_tx_new(u);
	roster_tx_call(tx, fx_redeliver, NULL, arg);
	roster_tx_commit(tx);
}

/* A contact's presence must not overtake a subscription stanza still
 * waiting for its commit (the 'subscribed' before the presence it
 * allows, §3.1.5): while the user's roster is busy, presence queues. */
static bool roster_hold_presence(struct xml_node *el, const struct jid *to)
{
	if (roster_redelivering)
		return false;
	char *bare = jid_bare(to);
	struct roster_user *u = roster_cached(bare);
	free(bare);
	if (!u || (!u->txq && !u->waiting && u->loaded))
		return false;
	roster_use(u->host, u->user, roster_hold_fn, el);
	return true;
}

/* sm_local_deliver: subscription stanzas and probes for a local user are
 * the server's, not the client's, to handle first. */
static int roster_on_deliver(const char *host, void *event, void *arg)
{
	struct stanza_event *ev = event;
	struct xml_node *el = ev->el;
	PL_UNUSED(host);
	PL_UNUSED(arg);
	if (strcmp(el->name, "presence") != 0)
		return PL_OK;
	const char *type = xml_attr(el, "type");
	int t = roster_subtype_parse(type);
	bool probe = type && strcmp(type, "probe") == 0;
	const char *to = xml_attr(el, "to");
	const char *from = xml_attr(el, "from");
	struct jid tj, fj;
	if (!to || jid_parse(to, strlen(to), &tj) != PL_OK)
		return PL_OK;
	if (t < 0 && !probe) {
		bool held = tj.local && roster_hold_presence(el, &tj);
		jid_free(&tj);
		return held ? PL_DONE : PL_OK;
	}
	if (!tj.local || !from || jid_parse(from, strlen(from), &fj) != PL_OK) {
		jid_free(&tj);
		xml_free(el);
		return PL_DONE;
	}
	char *contact = jid_bare(&fj);
	jid_free(&fj);
	if (probe) {
		free(contact);
		roster_use(tj.domain, tj.local, roster_probe_fn, el);
		jid_free(&tj);
		return PL_DONE;
	}
	char *bare = jid_bare(&tj);
	bool self = strcmp(bare, contact) == 0;
	free(bare);
	if (self) {
		/* implicit self-subscription: nothing to change */
		free(contact);
		jid_free(&tj);
		xml_free(el);
		return PL_DONE;
	}
	/* delivered as from the contact's bare JID (§3.1.3) */
	xml_set_attr(el, "from", contact);
	struct roster_sub_op *op = pl_calloc(1, sizeof(*op));
	op->el = el;
	op->t = (enum roster_subtype)t;
	op->contact = contact;
	roster_use(tj.domain, tj.local, roster_in_fn, op);
	jid_free(&tj);
	return PL_DONE;
}

/* ---- jabber:iq:roster (RFC 6121 §2) ---- */

static struct c2s *roster_req_session(const struct roster_user *u, const struct iq_req *req)
{
	return req->from.resource ? sm_find_session(u->bare, req->from.resource) : NULL;
}

static void roster_get_fx(struct roster_user *u, bool ok, const char *jid, void *arg)
{
	struct iq_req *req = arg;
	PL_UNUSED(jid);
	if (!ok) {
		iq_error(req, "wait", "internal-server-error");
		return;
	}
	struct xml_node *q = xml_new("query", NS_ROSTER);
	if (roster_versioning(u->host)) {
		char ver[24];
		snprintf(ver, sizeof(ver), "%lld", (long long)u->version);
		xml_set_attr(q, "ver", ver);
	}
	for (size_t i = 0; i < u->n; i++)
		if (u->items[i]->in_roster)
			roster_item_xml(q, u->items[i], false);
	iq_result(req, q);
}

static void roster_iq_get(struct roster_user *u, struct iq_req *req)
{
	struct c2s *s = roster_req_session(u, req);
	/* this resource is now interested in pushes (§2.1.6) */
	if (s)
		roster_set_interested(s);
	const char *ver = xml_attr(req->query, "ver");
	struct roster_tx *tx = roster_tx_new(u);
	if (ver && roster_versioning(u->host)) {
		char cur[24];
		snprintf(cur, sizeof(cur), "%lld", (long long)u->version);
		if (strcmp(ver, cur) == 0) {
			/* XEP-0237 §4.2: unchanged; later changes come as pushes */
			roster_tx_result(tx, req, NULL);
			roster_tx_commit(tx);
			return;
		}
	}
	/* answered once the changes before it are stored */
	roster_tx_call(tx, roster_get_fx, NULL, req);
	roster_tx_commit(tx);
}

static void roster_remove(struct roster_user *u, struct iq_req *req, const char *jid)
{
	struct roster_item *it = roster_find(u, jid);
	if (!it || !it->in_roster) {
		iq_error(req, "cancel", "item-not-found");    /* §2.5.3 */
		return;
	}
	/* §2.5.2: removing the contact ends both directions */
	struct roster_tx *tx = roster_tx_new(u);
	struct roster_state st = it->st;
	if ((st.sub & ROSTER_SUB_TO) || st.ask)
		roster_tx_route(tx, roster_presence("unsubscribe", u->bare, jid));
	if ((st.sub & ROSTER_SUB_FROM) || st.pending_in)
		roster_tx_route(tx, roster_presence("unsubscribed", u->bare, jid));
	if (st.sub & ROSTER_SUB_FROM)
		roster_tx_call(tx, fx_send_unavailable, jid, NULL);
	roster_tx_push(tx, it, true);
	roster_tx_delete(tx, it->jid);
	roster_item_remove(u, it);
	roster_tx_result(tx, req, NULL);
	roster_tx_commit(tx);
}

static void roster_iq_set(struct roster_user *u, struct iq_req *req)
{
	struct xml_node *item = NULL;
	int nitems = 0;
	for (struct xml_node *c = xml_first_child_el(req->query); c; c = xml_next_el(c)) {
		if (xml_is(c, "item", NS_ROSTER)) {
			item = c;
			nitems++;
		}
	}
	if (nitems != 1) {
		iq_error(req, "modify", "bad-request");    /* §2.3.3 */
		return;
	}
	const char *ja = xml_attr(item, "jid");
	struct jid j;
	if (!ja || jid_parse(ja, strlen(ja), &j) != PL_OK) {
		iq_error(req, "modify", "bad-request");
		return;
	}
	char *jid = jid_full(&j);
	jid_free(&j);
	const char *sub = xml_attr(item, "subscription");
	if (sub && strcmp(sub, "remove") == 0) {
		roster_remove(u, req, jid);
		free(jid);
		return;
	}
	/* Any other 'subscription', and 'ask', are the server's to set:
	 * ignored (§2.1.2.5, §2.1.2.1). */
	const char *name = xml_attr(item, "name");
	if (name && strlen(name) > ROSTER_MAX_NAME) {
		free(jid);
		iq_error(req, "modify", "not-acceptable");
		return;
	}
	char *groups[ROSTER_MAX_GROUPS];
	size_t ng = 0;
	const char *cond = NULL;
	for (struct xml_node *g = xml_first_child_el(item); g && !cond; g = xml_next_el(g)) {
		if (!xml_is(g, "group", NS_ROSTER))
			continue;
		const char *text = xml_text(g);
		if (!*text || strlen(text) > ROSTER_MAX_NAME || ng == ROSTER_MAX_GROUPS) {
			cond = "not-acceptable";
			break;
		}
		for (size_t i = 0; i < ng; i++)
			if (strcmp(groups[i], text) == 0)
				cond = "bad-request";
		if (!cond)
			groups[ng++] = (char *)text;
	}
	if (cond) {
		free(jid);
		iq_error(req, "modify", cond);
		return;
	}
	if (!roster_fits(u, jid, true, roster_max_items(u->host))) {
		/* A policy no retry gets past, hence not <resource-constraint/>
		 * (RFC 6120 §8.3.3.10, §8.3.3.18). */
		char text[96];
		roster_full_text(u, text, sizeof(text));
		log_info("roster: %s: roster full, item %s refused", u->bare, jid);
		free(jid);
		iq_error_text(req, "cancel", "not-allowed", text);
		return;
	}
	struct roster_item *it = roster_find(u, jid);
	if (!it)
		it = roster_item_add(u, jid);
	free(jid);
	free(it->name);
	it->name = name && *name ? pl_strdup(name) : NULL;
	for (size_t i = 0; i < it->ngroups; i++)
		free(it->groups[i]);
	free(it->groups);
	it->groups = ng ? pl_malloc(ng * sizeof(char *)) : NULL;
	for (size_t i = 0; i < ng; i++)
		it->groups[i] = pl_strdup(groups[i]);
	it->ngroups = ng;
	it->in_roster = true;
	struct roster_tx *tx = roster_tx_new(u);
	roster_tx_write(tx, it);
	roster_tx_push(tx, it, false);
	roster_tx_result(tx, req, NULL);
	roster_tx_commit(tx);
}

static void roster_iq_fn(struct roster_user *u, void *arg)
{
	struct iq_req *req = arg;
	if (!u->exists) {
		/* the sender is logged in, so its account could not be read */
		iq_error(req, "wait", "internal-server-error");
		return;
	}
	if (req->set)
		roster_iq_set(u, req);
	else
		roster_iq_get(u, req);
}

static void roster_iq(struct iq_req *req)
{
	if (!req->from_self || !req->to.local) {
		/* §2.1.5: nobody else reads or writes a user's roster */
		iq_error(req, "auth", "forbidden");
		return;
	}
	roster_use(req->to.domain, req->to.local, roster_iq_fn, req);
}

/* ---- sessions ---- */

static int roster_on_bound(const char *host, void *event, void *arg)
{
	struct c2s *s = event;
	PL_UNUSED(arg);
	/* load now, so the roster is there by the initial presence */
	roster_session_open(host, c2s_user(s));
	presence_session_bound(s);
	return PL_OK;
}

static int roster_on_closed(const char *host, void *event, void *arg)
{
	struct c2s *s = event;
	PL_UNUSED(arg);
	presence_session_closed(s);
	roster_session_close(host, c2s_user(s));
	return PL_OK;
}

static int roster_on_send(const char *host, void *event, void *arg)
{
	struct stanza_event *ev = event;
	struct xml_node *el = ev->el;
	PL_UNUSED(host);
	PL_UNUSED(arg);
	if (!ev->s || strcmp(el->name, "presence") != 0)
		return PL_OK;
	int t = roster_subtype_parse(xml_attr(el, "type"));
	if (t >= 0) {
		roster_outbound(ev->s, el, (enum roster_subtype)t);
		return PL_DONE;
	}
	return presence_user_send(ev->s, el);
}

static int roster_on_features(const char *host, void *event, void *arg)
{
	struct features_event *fe = event;
	PL_UNUSED(arg);
	if (!fe->authenticated)
		return PL_OK;
	if (roster_versioning(host))
		xml_add_child(fe->features, "ver", NS_ROSTERVER);
	xml_add_child(fe->features, "sub", NS_PREAPPROVAL);
	return PL_OK;
}

/* ---- the module ---- */

static const struct modopt roster_opts[] = {
	{ "versioning", MODOPT_BOOL, 0, 0, NULL },
	{ "max_items", MODOPT_INT, 1, 1000000, NULL },
	{ NULL, MODOPT_BOOL, 0, 0, NULL },
};

static int roster_check(const struct cfg_node *opts, char *err, size_t errlen)
{
	return modopt_check("mod_roster", opts, roster_opts, err, errlen);
}

static int roster_start(const char *host, const struct cfg_node *opts)
{
	if (roster_nhosts == PL_ARRAY_LEN(roster_hosts)) {
		log_error("mod_roster: too many hosts");
		return PL_ERR;
	}
	roster_hosts[roster_nhosts].host = pl_strdup(host);
	roster_hosts[roster_nhosts].versioning = modopt_bool(opts, "versioning", true);
	roster_hosts[roster_nhosts].max_items =
		(size_t)modopt_int(opts, "max_items", ROSTER_DEFAULT_MAX_ITEMS);
	roster_nhosts++;
	if (!hook_features)
		hook_features = hook_get("c2s_stream_features");
	presence_start();
	iq_handler_add(host, NS_ROSTER, IQ_ACCOUNT, roster_iq);
	/* before other modules see the events: presence is routed here */
	hook_add(xmpp_hooks.session_bound, host, roster_on_bound, NULL, 50);
	hook_add(xmpp_hooks.session_closed, host, roster_on_closed, NULL, 50);
	hook_add(xmpp_hooks.user_send, host, roster_on_send, NULL, 10);
	hook_add(xmpp_hooks.local_deliver, host, roster_on_deliver, NULL, 10);
	hook_add(hook_features, host, roster_on_features, NULL, 0);
	return PL_OK;
}

static void roster_stop(const char *host)
{
	iq_handler_remove(host, NS_ROSTER, IQ_ACCOUNT);
	hook_remove(xmpp_hooks.session_bound, host, roster_on_bound);
	hook_remove(xmpp_hooks.session_closed, host, roster_on_closed);
	hook_remove(xmpp_hooks.user_send, host, roster_on_send);
	hook_remove(xmpp_hooks.local_deliver, host, roster_on_deliver);
	if (hook_features)
		hook_remove(hook_features, host, roster_on_features);
	for (size_t i = 0; i < roster_nhosts; i++) {
		if (strcasecmp(roster_hosts[i].host, host) == 0) {
			free(roster_hosts[i].host);
			roster_hosts[i] = roster_hosts[--roster_nhosts];
			break;
		}
	}
}

const struct pm_module mod_roster = {
	.name = "mod_roster",
	.api_version = PARLEY_MODULE_API_VERSION,
	.default_enabled = true,
	.check = roster_check,
	.start = roster_start,
	.stop = roster_stop,
};
