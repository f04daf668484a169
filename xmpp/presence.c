/*
 * presence.c - presence (RFC 6121 §4) on the user's home shard: initial,
 * subsequent and unavailable broadcast to the contacts the roster says may
 * see it, probes out and answers to probes in, directed presence, and the
 * user's own resources seeing each other.
 *
 * Each bound session has a presence_sess (c2s slot C2S_SLOT_PRESENCE) with
 * its last available presence and the JIDs it sent directed presence to.
 * Broadcasts need the roster, which may still be loading right after
 * login, so they run through roster_use() in the order the client sent
 * them; a session that closes meanwhile is recognised by ps->s == NULL.
 *
 * A probe for a user with no session is answered with the last logout
 * mod_last recorded (last_logout_get(): its status text, and a <delay/>
 * saying when), which needs no storage read for users who left recently;
 * the session keeps the status of the unavailable presence it sent last
 * for that record.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/hook.h"
#include "core/pl.h"
#include "xmpp/events.h"
#include "xmpp/jid.h"
#include "xmpp/modules.h"
#include "xmpp/roster.h"
#include "xmpp/sm.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

/* Directed presence targets remembered per session: enough for MUC rooms
 * and the odd peer, bounded so a client cannot grow it without end. */
#define PRESENCE_MAX_DIRECTED 256
#define PRESENCE_MAX_SESSIONS 64

struct presence_sess {
	struct c2s *s;             /* NULL once the session closed */
	int refs;
	bool available;            /* initial presence out, no unavailable since */
	int priority;              /* of the last available presence */
	struct xml_node *last;     /* the last available presence broadcast */
	time_t stamp;              /* when it was */
	char **directed;           /* full JIDs sent available presence directly */
	size_t ndirected;
	char *gone_status;         /* of its last unavailable presence, if any */
};

struct presence_op {
	struct presence_sess *ps;
	struct xml_node *el;
	bool available;
};

static struct hook *hook_available;

void presence_start(void)
{
	if (!hook_available)
		hook_available = hook_get(HOOK_USER_AVAILABLE);
}

struct xml_node *stanza_add_delay(struct xml_node *el, const char *from, const char *stamp)
{
	struct xml_node *d = xml_add_child(el, "delay", NS_DELAY);
	xml_set_attr(d, "from", from);
	xml_set_attr(d, "stamp", stamp);
	return d;
}

void presence_add_delay(struct xml_node *el, const char *domain, time_t t)
{
	char stamp[21];
	time_format_utc(t, stamp);
	stanza_add_delay(el, domain, stamp);
}

/* ---- per-session state ---- */

static struct presence_sess *presence_of(const struct c2s *s)
{
	return c2s_get_data(s, C2S_SLOT_PRESENCE);
}

static void presence_clear_directed(struct presence_sess *ps)
{
	for (size_t i = 0; i < ps->ndirected; i++)
		free(ps->directed[i]);
	free(ps->directed);
	ps->directed = NULL;
	ps->ndirected = 0;
}

struct presence_sess *presence_hold(struct c2s *s)
{
	struct presence_sess *ps = presence_of(s);
	if (ps)
		ps->refs++;
	return ps;
}

struct c2s *presence_c2s(const struct presence_sess *ps)
{
	return ps->s;
}

void presence_release(struct presence_sess *ps)
{
	if (!ps || --ps->refs > 0)
		return;
	xml_free(ps->last);
	presence_clear_directed(ps);
	free(ps->gone_status);
	free(ps);
}

void presence_session_bound(struct c2s *s)
{
	struct presence_sess *ps = pl_calloc(1, sizeof(*ps));
	ps->s = s;
	ps->refs = 1;
	c2s_set_data(s, C2S_SLOT_PRESENCE, ps);
}

static bool presence_directed_has(const struct presence_sess *ps, const char *jid)
{
	for (size_t i = 0; i < ps->ndirected; i++)
		if (strcmp(ps->directed[i], jid) == 0)
			return true;
	return false;
}

static void presence_directed(struct presence_sess *ps, const char *to, bool available)
{
	struct jid j;
	if (jid_parse(to, strlen(to), &j) != PL_OK)
		return;
	char *full = jid_full(&j);
	jid_free(&j);
	for (size_t i = 0; i < ps->ndirected; i++) {
		if (strcmp(ps->directed[i], full) == 0) {
			if (!available) {
				free(ps->directed[i]);
				ps->directed[i] = ps->directed[--ps->ndirected];
			}
			free(full);
			return;
		}
	}
	if (!available || ps->ndirected == PRESENCE_MAX_DIRECTED) {
		free(full);
		return;
	}
	ps->directed = pl_realloc(ps->directed, (ps->ndirected + 1) * sizeof(char *));
	ps->directed[ps->ndirected++] = full;
}

/* The sessions of u with their presence state (bound through mod_roster). */
static size_t presence_sessions(const struct roster_user *u, struct presence_sess **out)
{
	struct c2s *ss[PRESENCE_MAX_SESSIONS];
	size_t n = sm_sessions_of(u->bare, ss, PL_ARRAY_LEN(ss)), k = 0;
	for (size_t i = 0; i < n; i++) {
		struct presence_sess *ps = presence_of(ss[i]);
		if (ps)
			out[k++] = ps;
	}
	return k;
}

/* ---- broadcast ---- */

/* Every presence sent to a contact on the user's behalf leaves here, so a
 * module can hold some back (XEP-0191: not to blocked contacts). */
static void presence_out(const char *host, struct xml_node *el)
{
	struct stanza_event ev = { NULL, el, host };
	if (hook_run(xmpp_hooks.presence_out, host, &ev) == PL_DONE)
		return;
	router_route(el);
}

static void presence_route_copy(const char *host, const struct xml_node *el, const char *to)
{
	struct xml_node *c = xml_copy(el);
	xml_set_attr(c, "to", to);
	presence_out(host, c);
}

/* el to the user's own available resources (except skip), each addressed
 * to its full JID. */
static void presence_to_own(struct roster_user *u, struct xml_node *el,
			    const struct presence_sess *skip)
{
	struct presence_sess *all[PRESENCE_MAX_SESSIONS];
	size_t n = presence_sessions(u, all);
	for (size_t i = 0; i < n; i++) {
		if (all[i] == skip || !all[i]->available || !all[i]->s)
			continue;
		xml_set_attr(el, "to", c2s_full_jid(all[i]->s));
		c2s_send(all[i]->s, el);
	}
	xml_set_attr(el, "to", NULL);
}

/* A presence the server kept, replayed: marked with when it was sent. */
static struct xml_node *presence_replay(const struct presence_sess *ps, const char *host,
					const char *to)
{
	struct xml_node *c = xml_copy(ps->last);
	xml_set_attr(c, "from", c2s_full_jid(ps->s));
	xml_set_attr(c, "to", to);
	presence_add_delay(c, host, ps->stamp);
	return c;
}

static void presence_initial_extras(struct roster_user *u, struct presence_sess *ps)
{
	struct presence_sess *all[PRESENCE_MAX_SESSIONS];
	size_t n = presence_sessions(u, all);
	const char *me = c2s_full_jid(ps->s);

	/* the user's other resources, as this one has not seen them yet */
	for (size_t i = 0; i < n; i++) {
		if (all[i] == ps || !all[i]->available || !all[i]->s || !all[i]->last)
			continue;
		struct xml_node *c = presence_replay(all[i], u->host, me);
		c2s_send(ps->s, c);
		xml_free(c);
	}
	/* §4.2.2: probe the contacts whose presence the user may see */
	for (size_t i = 0; i < u->n; i++) {
		const struct roster_item *it = u->items[i];
		if (!it->in_roster || !roster_item_to(it))
			continue;
		struct xml_node *p = xml_new("presence", NS_CLIENT);
		xml_set_attr(p, "type", "probe");
		xml_set_attr(p, "from", u->bare);
		xml_set_attr(p, "to", it->jid);
		router_route(p);
	}
	/* §3.1.3: requests not yet answered come again at each login */
	for (size_t i = 0; i < u->n && ps->s; i++) {
		const struct roster_item *it = u->items[i];
		if (!it->st.pending_in || !it->pending_xml)
			continue;
		struct xml_node *req = modstore_xml_parse(it->pending_xml);
		if (!req)
			continue;
		xml_set_attr(req, "to", u->bare);
		c2s_send(ps->s, req);
		xml_free(req);
	}
	if (ps->s)
		hook_run(hook_available, u->host, ps->s);
}

static int presence_priority(const struct xml_node *el)
{
	const struct xml_node *p = xml_child(el, "priority", NS_CLIENT);
	long v = p ? strtol(xml_text(p), NULL, 10) : 0;
	return v < -128 ? -128 : v > 127 ? 127 : (int)v;
}

static void presence_available(struct roster_user *u, struct presence_sess *ps,
			       struct xml_node *el)
{
	bool initial = !ps->available;
	int was = ps->priority;
	ps->available = true;
	ps->priority = presence_priority(el);
	xml_set_attr(el, "to", NULL);
	xml_free(ps->last);
	ps->last = xml_copy(el);
	ps->stamp = time(NULL);
	/* §4.2.2 / §4.4.2: to every contact with a subscription from the user */
	for (size_t i = 0; i < u->n; i++) {
		const struct roster_item *it = u->items[i];
		if (it->in_roster && roster_item_from(it))
			presence_route_copy(u->host, el, it->jid);
	}
	/* and to all the user's available resources, this one included */
	presence_to_own(u, el, NULL);
	if (initial)
		presence_initial_extras(u, ps);
	else if (was < 0 && ps->priority >= 0)
		/* XEP-0160 §2: stored messages go to the resource that says
		 * non-negative available presence, initial or not */
		hook_run(hook_available, u->host, ps->s);
}

static void presence_unavailable(struct roster_user *u, struct presence_sess *ps,
				 struct xml_node *el)
{
	ps->available = false;
	xml_free(ps->last);
	ps->last = NULL;
	xml_set_attr(el, "to", NULL);
	for (size_t i = 0; i < u->n; i++) {
		const struct roster_item *it = u->items[i];
		if (it->in_roster && roster_item_from(it))
			presence_route_copy(u->host, el, it->jid);
	}
	/* §4.6.3: whoever got directed presence hears of the end too */
	for (size_t i = 0; i < ps->ndirected; i++) {
		struct jid j;
		if (jid_parse(ps->directed[i], strlen(ps->directed[i]), &j) != PL_OK)
			continue;
		char *bare = jid_bare(&j);
		jid_free(&j);
		const struct roster_item *it = roster_find(u, bare);
		bool covered = strcmp(bare, u->bare) == 0 ||
			(it && it->in_roster && roster_item_from(it));
		free(bare);
		if (!covered)
			presence_route_copy(u->host, el, ps->directed[i]);
	}
	presence_clear_directed(ps);
	presence_to_own(u, el, NULL);
	if (ps->s) {
		xml_set_attr(el, "to", c2s_full_jid(ps->s));
		c2s_send(ps->s, el);
	}
}

static void presence_op_fn(struct roster_user *u, void *arg)
{
	struct presence_op *op = arg;
	struct presence_sess *ps = op->ps;
	if (op->available) {
		if (ps->s)
			presence_available(u, ps, op->el);
	} else if (ps->available) {
		presence_unavailable(u, ps, op->el);
	}
	xml_free(op->el);
	presence_release(ps);
	free(op);
}

static void presence_queue(struct c2s *s, struct presence_sess *ps, struct xml_node *el,
			   bool available)
{
	struct presence_op *op = pl_malloc(sizeof(*op));
	op->ps = ps;
	op->el = el;
	op->available = available;
	ps->refs++;
	roster_use(c2s_host(s), c2s_user(s), presence_op_fn, op);
}

/* XEP-0012 §6 and RFC 6121 §4.3.2 want the status a client signs off with
 * after it is gone; noted as the client sends it, since the broadcast may
 * still wait for the roster when the session closes. */
static void presence_note_gone(struct presence_sess *ps, const struct xml_node *unavailable)
{
	free(ps->gone_status);
	ps->gone_status = NULL;
	if (unavailable) {
		const struct xml_node *st = xml_child(unavailable, "status", NS_CLIENT);
		ps->gone_status = pl_strdup(st ? xml_text(st) : "");
	}
}

const char *presence_gone_status(const struct c2s *s)
{
	const struct presence_sess *ps = presence_of(s);
	return ps ? ps->gone_status : NULL;
}

int presence_user_send(struct c2s *s, struct xml_node *el)
{
	struct presence_sess *ps = presence_of(s);
	const char *to = xml_attr(el, "to");
	const char *type = xml_attr(el, "type");
	if (!ps)
		return PL_OK;
	if (to) {
		/* directed presence (§4.6): routed as it is, remembered */
		if (!type)
			presence_directed(ps, to, true);
		else if (strcmp(type, "unavailable") == 0)
			presence_directed(ps, to, false);
		return PL_OK;
	}
	if (type && strcmp(type, "unavailable") != 0) {
		/* a probe or an error addressed to nobody */
		xml_free(el);
		return PL_DONE;
	}
	presence_note_gone(ps, type ? el : NULL);
	presence_queue(s, ps, el, type == NULL);
	return PL_DONE;
}

void presence_session_closed(struct c2s *s)
{
	struct presence_sess *ps = presence_of(s);
	if (!ps)
		return;
	c2s_set_data(s, C2S_SLOT_PRESENCE, NULL);
	/* §4.5.2 / §4.6.3: the server says unavailable for a client that
	 * left without saying so; queued behind a broadcast still waiting */
	struct xml_node *el = xml_new("presence", NS_CLIENT);
	xml_set_attr(el, "type", "unavailable");
	xml_set_attr(el, "from", c2s_full_jid(s));
	ps->s = NULL;       /* nothing more is written to the closing stream */
	presence_queue(s, ps, el, false);
	presence_release(ps);
}

/* ---- answers the server gives for the user ---- */

struct presence_gone {
	char *host, *bare, *to;
};

static bool presence_anyone_available(const char *bare)
{
	struct c2s *ss[PRESENCE_MAX_SESSIONS];
	size_t n = sm_sessions_of(bare, ss, PL_ARRAY_LEN(ss));
	for (size_t i = 0; i < n; i++) {
		const struct presence_sess *ps = presence_of(ss[i]);
		if (ps && ps->available)
			return true;
	}
	return false;
}

static void presence_gone_answer(void *arg, int status, time_t when, const char *text)
{
	struct presence_gone *g = arg;
	/* A resource that came up meanwhile told the prober itself: an
	 * unavailable now would contradict it. */
	if (!presence_anyone_available(g->bare)) {
		struct xml_node *p = xml_new("presence", NS_CLIENT);
		xml_set_attr(p, "type", "unavailable");
		xml_set_attr(p, "from", g->bare);
		xml_set_attr(p, "to", g->to);
		if (status == PL_OK && when > 0) {
			if (*text)
				xml_add_text(xml_add_child(p, "status", NS_CLIENT), text, strlen(text));
			presence_add_delay(p, g->host, when);
		}
		presence_out(g->host, p);
	}
	free(g->host);
	free(g->bare);
	free(g->to);
	free(g);
}

/* §4.3.2: "unavailable", with the last unavailable presence the user
 * left with when it is known. */
static void presence_answer_offline(struct roster_user *u, const char *to)
{
	struct presence_gone *g = pl_malloc(sizeof(*g));
	g->host = pl_strdup(u->host);
	g->bare = pl_strdup(u->bare);
	g->to = pl_strdup(to);
	struct c2s *one;
	if (sm_sessions_of(u->bare, &one, 1) > 0)
		/* connected but not available: no logout to tell of */
		presence_gone_answer(g, PL_OK, 0, "");
	else
		last_logout_get(u->host, u->user, presence_gone_answer, g);
}

void presence_probe(struct roster_user *u, struct xml_node *el)
{
	const char *from = xml_attr(el, "from");
	struct presence_sess *all[PRESENCE_MAX_SESSIONS];
	struct jid j;

	if (!from || jid_parse(from, strlen(from), &j) != PL_OK) {
		xml_free(el);
		return;
	}
	char *bare = jid_bare(&j);
	char *full = jid_full(&j);
	jid_free(&j);
	const struct roster_item *it = roster_find(u, bare);
	bool allowed = u->exists &&
		(strcmp(bare, u->bare) == 0 || (it && it->in_roster && roster_item_from(it)));
	size_t n = u->exists ? presence_sessions(u, all) : 0, sent = 0;
	for (size_t i = 0; i < n; i++) {
		/* §4.3.2: the last presence of each available resource; one the
		 * prober got as directed presence may be told again (§4.6) */
		if (!all[i]->available || !all[i]->last || !all[i]->s)
			continue;
		if (!allowed && !presence_directed_has(all[i], full))
			continue;
		presence_out(u->host, presence_replay(all[i], u->host, from));
		sent++;
	}
	if (!sent && allowed) {
		presence_answer_offline(u, from);
	} else if (!sent && !(it && it->st.pending_in)) {
		/* §4.3.2: not the prober's business; the prober's server
		 * learns it has no subscription */
		struct xml_node *p = xml_new("presence", NS_CLIENT);
		xml_set_attr(p, "type", "unsubscribed");
		xml_set_attr(p, "from", u->bare);
		xml_set_attr(p, "to", bare);
		router_route(p);
	}
	free(bare);
	free(full);
	xml_free(el);
}

void presence_send_current(struct roster_user *u, const char *contact)
{
	struct presence_sess *all[PRESENCE_MAX_SESSIONS];
	size_t n = presence_sessions(u, all);
	for (size_t i = 0; i < n; i++)
		if (all[i]->available && all[i]->last && all[i]->s)
			presence_out(u->host, presence_replay(all[i], u->host, contact));
}

void presence_send_unavailable(struct roster_user *u, const char *contact)
{
	struct presence_sess *all[PRESENCE_MAX_SESSIONS];
	size_t n = presence_sessions(u, all);
	for (size_t i = 0; i < n; i++) {
		if (!all[i]->available || !all[i]->s)
			continue;
		struct xml_node *p = xml_new("presence", NS_CLIENT);
		xml_set_attr(p, "type", "unavailable");
		xml_set_attr(p, "from", c2s_full_jid(all[i]->s));
		xml_set_attr(p, "to", contact);
		router_route(p);
	}
}

void presence_deliver_available(struct roster_user *u, const struct xml_node *el)
{
	struct presence_sess *all[PRESENCE_MAX_SESSIONS];
	size_t n = presence_sessions(u, all);
	/* Sessions that have not sent initial presence yet get it then,
	 * with the stored requests (presence_initial_extras). */
	for (size_t i = 0; i < n; i++)
		if (all[i]->available && all[i]->s)
			c2s_send(all[i]->s, el);
}
