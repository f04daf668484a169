/*
 * sm.c - the session manager: per shard, the online users whose home is this
 * shard and their bound resources, and delivery to them (RFC 6121 §8.5).
 *
 * Lookups are O(1) (open hash on the bare JID); nothing here scans all
 * sessions except the admin command that lists them.
 */
#include <stdlib.h>
#include <string.h>

#include "core/hook.h"
#include "core/log.h"
#include "core/pl.h"
#include "core/shard.h"
#include "core/strtab.h"
#include "xmpp/events.h"
#include "xmpp/iq.h"
#include "xmpp/jid.h"
#include "xmpp/sm.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

struct sm_res {
	struct sm_res *next;
	struct c2s *s;
	char resource[];
};

struct sm_user {
	struct strtab_node node;
	struct sm_res *res;
	char bare[];
};

struct sm_table {
	struct strtab users;
	size_t nsessions;
};

/* NULL once the shard has stopped (a message delivered late finds nobody). */
static struct sm_table *sm_here(void)
{
	return shard_self()->subsys[SHARD_SLOT_ROUTER];
}

static struct sm_user *sm_find(const char *bare)
{
	return STRTAB_GET(&sm_here()->users, bare, struct sm_user, node);
}

void sm_shard_start(struct shard *sh)
{
	struct sm_table *t = pl_calloc(1, sizeof(*t));
	t->users = (struct strtab)STRTAB_INIT(struct sm_user, node, bare);
	sh->subsys[SHARD_SLOT_ROUTER] = t;
}

static void sm_user_free(struct strtab_node *n, void *arg)
{
	PL_UNUSED(arg);
	struct sm_user *u = PL_CONTAINER_OF(n, struct sm_user, node);
	struct sm_res *r = u->res;
	while (r) {
		struct sm_res *rn = r->next;
		free(r);
		r = rn;
	}
	free(u);
}

void sm_shard_stop(struct shard *sh)
{
	struct sm_table *t = sh->subsys[SHARD_SLOT_ROUTER];
	if (!t)
		return;
	strtab_each(&t->users, sm_user_free, NULL);
	strtab_clear(&t->users);
	free(t);
	sh->subsys[SHARD_SLOT_ROUTER] = NULL;
}

void sm_session_add(struct c2s *s, const char *bare, const char *resource)
{
	struct sm_table *t = sm_here();
	struct sm_user *u = sm_find(bare);
	if (!u) {
		size_t n = strlen(bare) + 1;
		u = pl_malloc(sizeof(*u) + n);
		memcpy(u->bare, bare, n);
		u->res = NULL;
		strtab_put(&t->users, &u->node);
	}
	for (struct sm_res **rp = &u->res; *rp; rp = &(*rp)->next) {
		if (strcmp((*rp)->resource, resource) == 0) {
			/* resource_conflict: closeold. The old session leaves the
			 * table now; its close later finds nothing to remove. */
			struct sm_res *old = *rp;
			*rp = old->next;
			t->nsessions--;
			log_info("sm: %s/%s: replaced by a new session", bare, resource);
			c2s_stream_error(old->s, "conflict", "Replaced by new connection");
			free(old);
			break;
		}
	}
	size_t n = strlen(resource) + 1;
	struct sm_res *r = pl_malloc(sizeof(*r) + n);
	memcpy(r->resource, resource, n);
	r->s = s;
	r->next = u->res;
	u->res = r;
	t->nsessions++;
}

void sm_session_remove(struct c2s *s, const char *bare, const char *resource)
{
	struct sm_table *t = sm_here();
	struct sm_user *u = sm_find(bare);
	if (!u)
		return;
	for (struct sm_res **rp = &u->res; *rp; rp = &(*rp)->next) {
		if ((*rp)->s == s && strcmp((*rp)->resource, resource) == 0) {
			struct sm_res *r = *rp;
			*rp = r->next;
			free(r);
			t->nsessions--;
			break;
		}
	}
	if (!u->res) {
		strtab_del(&t->users, bare);
		free(u);
	}
}

size_t sm_sessions_of(const char *bare, struct c2s **out, size_t max)
{
	struct sm_user *u = sm_find(bare);
	size_t n = 0;
	for (struct sm_res *r = u ? u->res : NULL; r && n < max; r = r->next)
		out[n++] = r->s;
	return n;
}

size_t sm_session_count(void)
{
	return sm_here()->nsessions;
}

struct c2s *sm_find_session(const char *bare, const char *resource)
{
	struct sm_user *u = sm_find(bare);
	for (struct sm_res *r = u ? u->res : NULL; r; r = r->next)
		if (strcmp(r->resource, resource) == 0)
			return r->s;
	return NULL;
}

struct sm_collect {
	char **v;
	size_t n, max;
};

static void sm_collect_one(struct strtab_node *node, void *arg)
{
	struct sm_collect *c = arg;
	struct sm_user *u = PL_CONTAINER_OF(node, struct sm_user, node);
	for (struct sm_res *r = u->res; r && c->n < c->max; r = r->next)
		c->v[c->n++] = pl_strdup(c2s_full_jid(r->s));
}

size_t sm_list_jids(char ***out)
{
	struct sm_table *t = sm_here();
	struct sm_collect c = { pl_calloc(t->nsessions + 1, sizeof(char *)), 0, t->nsessions };
	strtab_each(&t->users, sm_collect_one, &c);
	*out = c.v;
	return c.n;
}

/* ---- delivery on the home shard (RFC 6121 §8.5) ---- */

static void sm_send_and_free(struct c2s *s, struct xml_node *el)
{
	c2s_send(s, el);
	xml_free(el);
}

/* The available resources with the highest non-negative priority. */
static size_t sm_best_resources(struct sm_user *u, struct c2s **best, size_t max, int all_nonneg)
{
	int top = -129;
	size_t n = 0;
	for (struct sm_res *r = u ? u->res : NULL; r; r = r->next) {
		if (!c2s_available(r->s) || c2s_priority(r->s) < 0)
			continue;
		int p = c2s_priority(r->s);
		if (all_nonneg) {
			if (n < max)
				best[n++] = r->s;
			continue;
		}
		if (p > top) {
			top = p;
			n = 0;
		}
		if (p == top && n < max)
			best[n++] = r->s;
	}
	return n;
}

static void sm_deliver_bare(struct sm_user *u, struct xml_node *el, const char *host)
{
	const char *name = el->name;
	const char *type = xml_attr(el, "type");
	struct c2s *best[32];
	if (strcmp(name, "message") == 0) {
		if (type && strcmp(type, "error") == 0) {
			xml_free(el);
			return;
		}
		if (type && strcmp(type, "groupchat") == 0) {
			router_bounce(el, "cancel", "service-unavailable");
			return;
		}
		int headline = type && strcmp(type, "headline") == 0;
		size_t n = sm_best_resources(u, best, PL_ARRAY_LEN(best), headline);
		if (n == 0) {
			if (headline) {
				xml_free(el);
				return;
			}
			struct stanza_event ev = { NULL, el, host };
			if (hook_run(xmpp_hooks.offline_message, host, &ev) == PL_DONE)
				return;
			router_bounce(el, "cancel", "service-unavailable");
			return;
		}
		for (size_t i = 0; i < n; i++)
			c2s_send(best[i], el);
		xml_free(el);
		return;
	}
	if (strcmp(name, "presence") == 0) {
		size_t n = sm_best_resources(u, best, PL_ARRAY_LEN(best), 1);
		for (size_t i = 0; i < n; i++)
			c2s_send(best[i], el);
		xml_free(el);
		return;
	}
	/* iq to a bare JID is answered by the server on the user's behalf. */
	iq_dispatch(el, IQ_ACCOUNT);
}

void sm_deliver(struct xml_node *el)
{
	const char *to = xml_attr(el, "to");
	struct jid j;
	if (!to || jid_parse(to, strlen(to), &j) != PL_OK) {
		xml_free(el);
		return;
	}
	struct stanza_event ev = { NULL, el, j.domain };
	if (hook_run(xmpp_hooks.local_deliver, j.domain, &ev) == PL_DONE) {
		jid_free(&j);
		return;
	}
	char *bare = jid_bare(&j);
	struct sm_user *u = sm_find(bare);
	if (j.resource) {
		for (struct sm_res *r = u ? u->res : NULL; r; r = r->next) {
			if (strcmp(r->resource, j.resource) == 0) {
				sm_send_and_free(r->s, el);
				goto out;
			}
		}
		/* No such resource (RFC 6121 §8.5.3.2.1). */
		const char *type = xml_attr(el, "type");
		if (strcmp(el->name, "message") == 0 && !(type && strcmp(type, "groupchat") == 0)) {
			sm_deliver_bare(u, el, j.domain);
		} else if (strcmp(el->name, "iq") == 0) {
			if (type && (strcmp(type, "get") == 0 || strcmp(type, "set") == 0))
				router_bounce(el, "cancel", "service-unavailable");
			else
				xml_free(el);
		} else if (strcmp(el->name, "message") == 0) {
			router_bounce(el, "cancel", "service-unavailable");
		} else {
			xml_free(el);
		}
		goto out;
	}
	sm_deliver_bare(u, el, j.domain);
out:
	free(bare);
	jid_free(&j);
}
