/*
 * mod_private.c - Private XML Storage (XEP-0049): a user keeps elements
 * (bookmarks, client settings) under their namespace, readable and
 * writable only by that user. Each namespace is one row; a get of one with
 * nothing stored answers the empty element that was asked for.
 *
 * Storing an element with neither attributes nor content removes its
 * namespace. What one user may keep is bounded: at most `max_items`
 * namespaces (counted by the store in the transaction that writes them)
 * of at most `max_size` bytes each, measured as stored. The listener's
 * max_stanza_size alone does not bound that: serializing declares a
 * namespace again wherever a prefixed element switches back to it, so a
 * stanza within the limit can be stored many times its size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/cfg.h"
#include "core/log.h"
#include "core/module.h"
#include "core/pl.h"
#include "xmpp/disco.h"
#include "xmpp/iq.h"
#include "xmpp/modules.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

/* A set stores at most this many namespaces at once. */
#define PRIVATE_MAX_ITEMS 32
#define PRIVATE_DEFAULT_MAX_ITEMS 100
#define PRIVATE_DEFAULT_MAX_SIZE (64 * 1024)
#define PRIVATE_MAX_HOSTS 64

struct private_host {
	char *host;
	long max_items;
	size_t max_size;
};

/* Filled at start (main thread), read-only after. */
static struct private_host private_hosts[PRIVATE_MAX_HOSTS];

static const struct private_host *private_limits(const char *host)
{
	static const struct private_host defaults = {
		NULL, PRIVATE_DEFAULT_MAX_ITEMS, PRIVATE_DEFAULT_MAX_SIZE,
	};
	for (size_t i = 0; i < PRIVATE_MAX_HOSTS; i++)
		if (private_hosts[i].host && strcasecmp(private_hosts[i].host, host) == 0)
			return &private_hosts[i];
	return &defaults;
}

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
	if (status == PL_DECLINED) {
		/* A quota, not a passing shortage: <not-allowed/> (RFC 6120
		 * §8.3.3.10), type cancel, since trying again changes nothing
		 * until the user drops a namespace; <resource-constraint/>
		 * would tell the client to wait and retry. */
		long max = private_limits(req->host)->max_items;
		char text[96];
		snprintf(text, sizeof(text), "private storage is limited to %ld namespaces", max);
		log_info("private: %s@%s: limit of %ld namespaces reached, set refused", req->to.local,
			 req->to.domain, max);
		iq_error_text(req, "cancel", "not-allowed", text);
	} else if (status != PL_OK) {
		iq_error(req, "wait", "internal-server-error");
	} else {
		iq_result(req, NULL);
	}
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

/* An element with neither attributes nor content is what a get answers
 * when nothing is stored, so storing one removes the namespace (as
 * Prosody does): the only way XEP-0049 leaves to free one. */
static bool private_is_removal(const struct xml_node *el)
{
	return !el->first && !el->attrs;
}

/* A set's removals and writes, all applied or none. */
static void private_store(struct iq_req *req)
{
	const struct private_host *lim = private_limits(req->host);
	const char *writes[PRIVATE_MAX_ITEMS * 4], *removals[PRIVATE_MAX_ITEMS * 3];
	char *texts[PRIVATE_MAX_ITEMS];
	size_t nw = 0, nr = 0, nt = 0;
	bool fits = true;
	for (const struct xml_node *c = xml_first_child_el(req->query); c; c = xml_next_el(c)) {
		if (private_is_removal(c)) {
			removals[nr * 3] = req->to.domain;
			removals[nr * 3 + 1] = req->to.local;
			removals[nr * 3 + 2] = c->ns;
			nr++;
			continue;
		}
		texts[nt] = modstore_xml_text(c);
		fits = fits && strlen(texts[nt]) <= lim->max_size;
		writes[nw * 4] = req->to.domain;
		writes[nw * 4 + 1] = req->to.local;
		writes[nw * 4 + 2] = c->ns;
		writes[nw * 4 + 3] = texts[nt++];
		nw++;
	}
	if (fits) {
		const struct modstore_rows stmts[] = {
			{ "DELETE FROM private_storage"
			  " WHERE host = ?1 AND username = ?2 AND namespace = ?3",
			  removals, 3, nr },
			{ "INSERT OR REPLACE INTO private_storage (host, username, namespace, xml)"
			  " VALUES (?1, ?2, ?3, ?4)", writes, 4, nw },
		};
		const char *user[] = { req->to.domain, req->to.local };
		modstore_exec_capped(stmts, PL_ARRAY_LEN(stmts),
				     "SELECT COUNT(*) FROM private_storage"
				     " WHERE host = ?1 AND username = ?2",
				     user, 2, lim->max_items, private_stored, req);
	} else {
		char text[96];
		snprintf(text, sizeof(text), "a private XML element may be at most %zu bytes",
			 lim->max_size);
		iq_error_text(req, "modify", "not-acceptable", text);
	}
	for (size_t k = 0; k < nt; k++)
		free(texts[k]);
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
	private_store(req);
}

static const struct modopt private_opts[] = {
	{ "max_items", MODOPT_INT, 1, 1000000, NULL },
	{ "max_size", MODOPT_SIZE, 1024, 16L * 1024 * 1024, NULL },
	{ NULL, MODOPT_BOOL, 0, 0, NULL },
};

static int private_check(const struct cfg_node *opts, char *err, size_t errlen)
{
	return modopt_check("mod_private", opts, private_opts, err, errlen);
}

static int private_start(const char *host, const struct cfg_node *opts)
{
	for (size_t i = 0; i < PRIVATE_MAX_HOSTS; i++) {
		if (!private_hosts[i].host) {
			private_hosts[i].host = pl_strdup(host);
			private_hosts[i].max_items = modopt_int(opts, "max_items",
								PRIVATE_DEFAULT_MAX_ITEMS);
			private_hosts[i].max_size = modopt_size(opts, "max_size",
								PRIVATE_DEFAULT_MAX_SIZE);
			break;
		}
	}
	iq_handler_add(host, NS_PRIVATE, IQ_ACCOUNT, private_iq);
	disco_add_feature(host, NS_PRIVATE);
	return PL_OK;
}

static void private_stop(const char *host)
{
	iq_handler_remove(host, NS_PRIVATE, IQ_ACCOUNT);
	disco_remove_feature(host, NS_PRIVATE);
	for (size_t i = 0; i < PRIVATE_MAX_HOSTS; i++) {
		if (private_hosts[i].host && strcasecmp(private_hosts[i].host, host) == 0) {
			free(private_hosts[i].host);
			private_hosts[i].host = NULL;
		}
	}
}

const struct pm_module mod_private = {
	.name = "mod_private",
	.api_version = PARLEY_MODULE_API_VERSION,
	.default_enabled = true,
	.check = private_check,
	.start = private_start,
	.stop = private_stop,
};
