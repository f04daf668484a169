/*
 * disco.c - mod_disco: the server's disco#info and disco#items (XEP-0030),
 * built from what the enabled modules announced for the host, with contact
 * addresses (XEP-0157, ejabberd's `server_info` option) and the entity
 * caps hash (XEP-0115) of the result kept current as features change.
 * Nodes of an account's disco that a module registered are handed to it.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/cfg.h"
#include "core/module.h"
#include "core/pl.h"
#include "xmpp/disco.h"
#include "xmpp/iq.h"
#include "xmpp/modules.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

struct disco_node {
	char *node;
	disco_node_fn *info, *items;
};

struct disco_host {
	struct disco_host *next;
	char *host;
	char **features;
	size_t n, cap;
	struct xml_node **forms;
	size_t nforms;
	struct disco_node *nodes;      /* of accounts, answered by modules */
	size_t nnodes;
	char caps_ver[32];
};

static struct disco_host *disco_hosts;

static struct disco_host *disco_host(const char *host, int create)
{
	for (struct disco_host *d = disco_hosts; d; d = d->next)
		if (strcasecmp(d->host, host) == 0)
			return d;
	if (!create)
		return NULL;
	struct disco_host *d = pl_calloc(1, sizeof(*d));
	d->host = pl_strdup(host);
	d->next = disco_hosts;
	disco_hosts = d;
	return d;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The server's disco#info <query/> for host: one identity, then what the
 * modules announced. */
static struct xml_node *disco_server_info(const char *host)
{
	struct xml_node *q = xml_new("query", NS_DISCO_INFO);
	struct xml_node *id = xml_add_child(q, "identity", NULL);
	xml_set_attr(id, "category", "server");
	xml_set_attr(id, "type", "im");
	xml_set_attr(id, "name", "Parley");
	disco_fill_info(host, q);
	return q;
}

/* Features change only at startup (main thread), so hashing on every
 * change keeps the answer ready for any shard without a lock. */
static void disco_update_caps(struct disco_host *d)
{
	struct xml_node *q = disco_server_info(d->host);
	if (caps_ver(q, d->caps_ver, sizeof(d->caps_ver)) != PL_OK)
		d->caps_ver[0] = '\0';
	xml_free(q);
}

const char *disco_caps_ver(const char *host)
{
	struct disco_host *d = disco_host(host, 0);
	return d && d->caps_ver[0] ? d->caps_ver : NULL;
}

void disco_add_feature(const char *host, const char *var)
{
	struct disco_host *d = disco_host(host, 1);
	for (size_t i = 0; i < d->n; i++)
		if (strcmp(d->features[i], var) == 0)
			return;
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 16;
		d->features = pl_realloc(d->features, d->cap * sizeof(char *));
	}
	d->features[d->n++] = pl_strdup(var);
	/* Sorted, so answers (and caps hashes) do not depend on start order. */
	qsort(d->features, d->n, sizeof(char *), cmp_str);
	disco_update_caps(d);
}

void disco_remove_feature(const char *host, const char *var)
{
	struct disco_host *d = disco_host(host, 0);
	for (size_t i = 0; d && i < d->n; i++) {
		if (strcmp(d->features[i], var) == 0) {
			free(d->features[i]);
			memmove(&d->features[i], &d->features[i + 1], (d->n - i - 1) * sizeof(char *));
			d->n--;
			disco_update_caps(d);
			return;
		}
	}
}

void disco_add_form(const char *host, struct xml_node *x)
{
	struct disco_host *d = disco_host(host, 1);
	d->forms = pl_realloc(d->forms, (d->nforms + 1) * sizeof(*d->forms));
	d->forms[d->nforms++] = x;
	disco_update_caps(d);
}

static void disco_clear_forms(const char *host)
{
	struct disco_host *d = disco_host(host, 0);
	if (!d)
		return;
	for (size_t i = 0; i < d->nforms; i++)
		xml_free(d->forms[i]);
	free(d->forms);
	d->forms = NULL;
	d->nforms = 0;
	disco_update_caps(d);
}

void disco_fill_info(const char *host, struct xml_node *query)
{
	struct disco_host *d = disco_host(host, 0);
	for (size_t i = 0; d && i < d->n; i++)
		xml_set_attr(xml_add_child(query, "feature", NULL), "var", d->features[i]);
	for (size_t i = 0; d && i < d->nforms; i++)
		xml_add_copy(query, d->forms[i]);
}

size_t disco_feature_count(const char *host)
{
	struct disco_host *d = disco_host(host, 0);
	return d ? d->n : 0;
}

void disco_account_node_add(const char *host, const char *node, disco_node_fn *info,
			    disco_node_fn *items)
{
	struct disco_host *d = disco_host(host, 1);
	d->nodes = pl_realloc(d->nodes, (d->nnodes + 1) * sizeof(*d->nodes));
	d->nodes[d->nnodes++] = (struct disco_node){ pl_strdup(node), info, items };
}

void disco_account_node_remove(const char *host, const char *node)
{
	struct disco_host *d = disco_host(host, 0);
	for (size_t i = 0; d && i < d->nnodes; i++) {
		if (strcmp(d->nodes[i].node, node) == 0) {
			free(d->nodes[i].node);
			d->nodes[i] = d->nodes[--d->nnodes];
			return;
		}
	}
}

/* A module's node of an account, or NULL (the account's own disco). */
static const struct disco_node *disco_account_node(const struct iq_req *req)
{
	const char *node = xml_attr(req->query, "node");
	struct disco_host *d = node && req->to.local ? disco_host(req->host, 0) : NULL;
	for (size_t i = 0; d && i < d->nnodes; i++)
		if (strcmp(d->nodes[i].node, node) == 0)
			return &d->nodes[i];
	return NULL;
}

static bool disco_is_caps_node(const char *host, const char *node)
{
	const char *ver = disco_caps_ver(host);
	size_t n = strlen(CAPS_NODE);
	return ver && strncmp(node, CAPS_NODE, n) == 0 && node[n] == '#' &&
		strcmp(node + n + 1, ver) == 0;
}

static void disco_info(struct iq_req *req)
{
	if (req->set) {
		iq_error(req, "cancel", "not-allowed");
		return;
	}
	const struct disco_node *dn = disco_account_node(req);
	if (dn) {
		dn->info(req);
		return;
	}
	if (req->to.local) {
		/* An account's disco#info (RFC 6121 bare-JID queries, PEP later). */
		struct xml_node *q = xml_new("query", NS_DISCO_INFO);
		struct xml_node *id = xml_add_child(q, "identity", NULL);
		xml_set_attr(id, "category", "account");
		xml_set_attr(id, "type", "registered");
		iq_result(req, q);
		return;
	}
	const char *node = xml_attr(req->query, "node");
	if (node && !disco_is_caps_node(req->host, node)) {
		iq_error(req, "cancel", "item-not-found");
		return;
	}
	struct xml_node *q = disco_server_info(req->host);
	/* XEP-0115 §6.2: a client checking our caps asks for node#ver. */
	if (node)
		xml_set_attr(q, "node", node);
	iq_result(req, q);
}

static void disco_items(struct iq_req *req)
{
	if (req->set) {
		iq_error(req, "cancel", "not-allowed");
		return;
	}
	const struct disco_node *dn = disco_account_node(req);
	if (dn) {
		dn->items(req);
		return;
	}
	/* Components (conference., pubsub., upload., proxy.) arrive with
	 * their modules; until then the server has no items. */
	iq_result(req, xml_new("query", NS_DISCO_ITEMS));
}

/* ---- contact addresses (XEP-0157), as ejabberd's server_info ---- */

static const char *const serverinfo_names[] = {
	"abuse-addresses", "admin-addresses", "feedback-addresses", "sales-addresses",
	"security-addresses", "status-addresses", "support-addresses", NULL,
};

static bool name_known(const char *name)
{
	for (const char *const *n = serverinfo_names; *n; n++)
		if (strcmp(*n, name) == 0)
			return true;
	return false;
}

static int serverinfo_check_entry(const struct cfg_node *e, char *err, size_t errlen)
{
	if (e->type != CFG_MAP)
		return modopt_fail(e->line, err, errlen, "module 'mod_disco': key 'server_info': "
				   "each entry is a mapping {modules, name, urls}");
	static const struct modopt keys[] = {
		{ "modules", MODOPT_CUSTOM, 0, 0, NULL },
		{ "name", MODOPT_CUSTOM, 0, 0, NULL },
		{ "urls", MODOPT_CUSTOM, 0, 0, NULL },
		{ NULL, MODOPT_CUSTOM, 0, 0, NULL },
	};
	if (modopt_check("mod_disco", e, keys, err, errlen) != PL_OK)
		return PL_ERR;
	const struct cfg_node *name = cfg_map_get(e, "name");
	const struct cfg_node *urls = cfg_map_get(e, "urls");
	const struct cfg_node *mods = cfg_map_get(e, "modules");
	if (!name || !urls)
		return modopt_fail(e->line, err, errlen, "module 'mod_disco': key 'server_info': "
				   "an entry needs 'name' and 'urls'");
	if (name->type != CFG_SCALAR || !name_known(name->value))
		return modopt_fail(name->line, err, errlen, "module 'mod_disco': key 'name': "
				   "'%s' is not one of the XEP-0157 names (abuse-addresses, "
				   "admin-addresses, feedback-addresses, sales-addresses, "
				   "security-addresses, status-addresses, support-addresses)",
				   name->type == CFG_SCALAR ? name->value : "(not a name)");
	if (urls->type != CFG_SEQ || urls->n == 0)
		return modopt_fail(urls->line, err, errlen,
				   "module 'mod_disco': key 'urls': expected a list of URIs");
	for (size_t i = 0; i < urls->n; i++)
		if (urls->items[i]->type != CFG_SCALAR || !strchr(urls->items[i]->value, ':'))
			return modopt_fail(urls->items[i]->line, err, errlen,
					   "module 'mod_disco': key 'urls': '%s' is not a URI "
					   "(mailto:, xmpp:, https:...)",
					   urls->items[i]->type == CFG_SCALAR ? urls->items[i]->value : "");
	if (mods && !(mods->type == CFG_SCALAR && strcmp(mods->value, "all") == 0)) {
		if (mods->type != CFG_SEQ)
			return modopt_fail(mods->line, err, errlen, "module 'mod_disco': key 'modules': "
					   "'all' or a list of module names");
		for (size_t i = 0; i < mods->n; i++)
			if (mods->items[i]->type != CFG_SCALAR || !pm_find(mods->items[i]->value))
				return modopt_fail(mods->items[i]->line, err, errlen,
						   "module 'mod_disco': key 'modules': '%s' is not a module",
						   mods->items[i]->type == CFG_SCALAR
						   ? mods->items[i]->value : "");
	}
	return PL_OK;
}

static int disco_check(const struct cfg_node *opts, char *err, size_t errlen)
{
	static const struct modopt spec[] = {
		{ "server_info", MODOPT_CUSTOM, 0, 0, NULL },
		{ NULL, MODOPT_CUSTOM, 0, 0, NULL },
	};
	if (modopt_check("mod_disco", opts, spec, err, errlen) != PL_OK)
		return PL_ERR;
	const struct cfg_node *si = cfg_map_get(opts, "server_info");
	if (!si)
		return PL_OK;
	if (si->type != CFG_SEQ)
		return modopt_fail(si->line, err, errlen, "module 'mod_disco': key 'server_info': "
				   "expected a list of {modules, name, urls}");
	for (size_t i = 0; i < si->n; i++)
		if (serverinfo_check_entry(si->items[i], err, errlen) != PL_OK)
			return PL_ERR;
	return PL_OK;
}

/* Entries for the server's own info: modules 'all' (the default) or a
 * list naming mod_disco, as ejabberd reads it. */
static bool serverinfo_for_server(const struct cfg_node *e)
{
	const struct cfg_node *mods = cfg_map_get(e, "modules");
	if (!mods || (mods->type == CFG_SCALAR && strcmp(mods->value, "all") == 0))
		return true;
	for (size_t i = 0; mods->type == CFG_SEQ && i < mods->n; i++)
		if (strcmp(mods->items[i]->value, "mod_disco") == 0)
			return true;
	return false;
}

/* One field per name (entries with the same name merge), in the order of
 * serverinfo_names so the form reads the same whatever the config order. */
static struct xml_node *serverinfo_form(const struct cfg_node *si)
{
	struct xml_node *x = xml_new("x", NS_XDATA);
	xml_set_attr(x, "type", "result");
	struct xml_node *ft = xml_add_child(x, "field", NULL);
	xml_set_attr(ft, "var", "FORM_TYPE");
	xml_set_attr(ft, "type", "hidden");
	xml_add_text(xml_add_child(ft, "value", NULL), NS_SERVERINFO, strlen(NS_SERVERINFO));
	for (const char *const *name = serverinfo_names; *name; name++) {
		struct xml_node *field = NULL;
		for (size_t i = 0; i < si->n; i++) {
			const struct cfg_node *e = si->items[i];
			if (strcmp(cfg_map_get(e, "name")->value, *name) != 0 ||
			    !serverinfo_for_server(e))
				continue;
			if (!field) {
				field = xml_add_child(x, "field", NULL);
				xml_set_attr(field, "var", *name);
				xml_set_attr(field, "type", "list-multi");
			}
			const struct cfg_node *urls = cfg_map_get(e, "urls");
			for (size_t u = 0; u < urls->n; u++)
				xml_add_text(xml_add_child(field, "value", NULL), urls->items[u]->value,
					     strlen(urls->items[u]->value));
		}
	}
	return x;
}

static int disco_start(const char *host, const struct cfg_node *opts)
{
	const struct cfg_node *si = cfg_map_get(opts, "server_info");
	if (si && si->n > 0)
		disco_add_form(host, serverinfo_form(si));
	iq_handler_add(host, NS_DISCO_INFO, IQ_SERVER, disco_info);
	iq_handler_add(host, NS_DISCO_ITEMS, IQ_SERVER, disco_items);
	iq_handler_add(host, NS_DISCO_INFO, IQ_ACCOUNT, disco_info);
	iq_handler_add(host, NS_DISCO_ITEMS, IQ_ACCOUNT, disco_items);
	disco_add_feature(host, NS_DISCO_INFO);
	disco_add_feature(host, NS_DISCO_ITEMS);
	return PL_OK;
}

static void disco_stop(const char *host)
{
	iq_handler_remove(host, NS_DISCO_INFO, IQ_SERVER);
	iq_handler_remove(host, NS_DISCO_ITEMS, IQ_SERVER);
	iq_handler_remove(host, NS_DISCO_INFO, IQ_ACCOUNT);
	iq_handler_remove(host, NS_DISCO_ITEMS, IQ_ACCOUNT);
	disco_remove_feature(host, NS_DISCO_INFO);
	disco_remove_feature(host, NS_DISCO_ITEMS);
	disco_clear_forms(host);
}

const struct pm_module mod_disco = {
	.name = "mod_disco",
	.api_version = PARLEY_MODULE_API_VERSION,
	.default_enabled = true,
	.check = disco_check,
	.start = disco_start,
	.stop = disco_stop,
};
