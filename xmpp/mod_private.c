/*
 * mod_private.c - Private XML Storage (XEP-0049): a user keeps elements
 * (bookmarks, client settings) under their namespace, readable and
 * writable only by that user. Each namespace is one row; a get of one with
 * nothing stored answers the empty element that was asked for.
 */
#include <stdlib.h>
#include <string.h>

#include "core/module.h"
#include "core/pl.h"
#include "xmpp/disco.h"
#include "xmpp/iq.h"
#include "xmpp/modules.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

/* A set stores at most this many namespaces at once. */
#define PRIVATE_MAX_ITEMS 32

bool private_ns_forbidden(const char *ns)
{
	/* §3: storage of stanzas and of the protocol itself is refused. */
	return strcmp(ns, "jabber:client") == 0 || strcmp(ns, "jabber:server") == 0 ||
		strcmp(ns, NS_PRIVATE) == 0;
}

static void private_got(void *arg, int status, char **rows, size_t nrows, long changes)
{
	struct iq_req *req = arg;
	PL_UNUSED(changes);
	if (status != PL_OK) {
		iq_error(req, "wait", "internal-server-error");
		return;
	}
	struct xml_node *q = xml_new("query", NS_PRIVATE);
	struct xml_node *stored = nrows > 0 ? modstore_xml_parse(rows[0]) : NULL;
	xml_add_copy(q, stored ? stored : xml_first_child_el(req->query));
	xml_free(stored);
	iq_result(req, q);
}

static void private_stored(void *arg, int status, char **rows, size_t nrows, long changes)
{
	struct iq_req *req = arg;
	PL_UNUSED(rows);
	PL_UNUSED(nrows);
	PL_UNUSED(changes);
	if (status != PL_OK)
		iq_error(req, "wait", "internal-server-error");
	else
		iq_result(req, NULL);
}

/* Each child must be namespaced, and in a namespace we store. */
static const char *private_check_children(const struct xml_node *query, size_t *n)
{
	*n = 0;
	for (const struct xml_node *c = xml_first_child_el(query); c; c = xml_next_el(c)) {
		if (!c->ns[0])
			return "bad-request";
		if (private_ns_forbidden(c->ns))
			return "not-acceptable";
		(*n)++;
	}
	if (*n == 0 || *n > PRIVATE_MAX_ITEMS)
		return "bad-request";
	return NULL;
}

static void private_iq(struct iq_req *req)
{
	if (!req->to.local || !req->from_self) {
		/* Only one's own storage exists for anyone. */
		iq_error(req, "cancel", "forbidden");
		return;
	}
	size_t n;
	const char *bad = private_check_children(req->query, &n);
	if (bad || (!req->set && n != 1)) {
		iq_error(req, "modify", bad ? bad : "bad-request");
		return;
	}
	if (!req->set) {
		const struct xml_node *want = xml_first_child_el(req->query);
		const char *params[] = { req->to.domain, req->to.local, want->ns };
		modstore_exec("SELECT xml FROM private_storage"
			      " WHERE host = ?1 AND username = ?2 AND namespace = ?3",
			      params, 3, 1, private_got, req);
		return;
	}
	const char *params[PRIVATE_MAX_ITEMS * 4];
	char *texts[PRIVATE_MAX_ITEMS];
	size_t i = 0;
	for (const struct xml_node *c = xml_first_child_el(req->query); c; c = xml_next_el(c), i++) {
		texts[i] = modstore_xml_text(c);
		params[i * 4] = req->to.domain;
		params[i * 4 + 1] = req->to.local;
		params[i * 4 + 2] = c->ns;
		params[i * 4 + 3] = texts[i];
	}
	modstore_exec("INSERT OR REPLACE INTO private_storage (host, username, namespace, xml)"
		      " VALUES (?1, ?2, ?3, ?4)", params, 4, n, private_stored, req);
	for (size_t k = 0; k < n; k++)
		free(texts[k]);
}

static int private_start(const char *host, const struct cfg_node *opts)
{
	PL_UNUSED(opts);
	iq_handler_add(host, NS_PRIVATE, IQ_ACCOUNT, private_iq);
	disco_add_feature(host, NS_PRIVATE);
	return PL_OK;
}

static void private_stop(const char *host)
{
	iq_handler_remove(host, NS_PRIVATE, IQ_ACCOUNT);
	disco_remove_feature(host, NS_PRIVATE);
}

const struct pm_module mod_private = {
	.name = "mod_private",
	.api_version = PARLEY_MODULE_API_VERSION,
	.default_enabled = true,
	.start = private_start,
	.stop = private_stop,
};
