/*
 * disco.c - mod_disco: the server's disco#info and disco#items (XEP-0030),
 * built from what the enabled modules announced for the host.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/module.h"
#include "core/pl.h"
#include "xmpp/disco.h"
#include "xmpp/iq.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

struct disco_host {
	struct disco_host *next;
	char *host;
	char **features;
	size_t n, cap;
	struct xml_node **forms;
	size_t nforms;
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
}

void disco_remove_feature(const char *host, const char *var)
{
	struct disco_host *d = disco_host(host, 0);
	for (size_t i = 0; d && i < d->n; i++) {
		if (strcmp(d->features[i], var) == 0) {
			free(d->features[i]);
			memmove(&d->features[i], &d->features[i + 1], (d->n - i - 1) * sizeof(char *));
			d->n--;
			return;
		}
	}
}

void disco_add_form(const char *host, struct xml_node *x)
{
	struct disco_host *d = disco_host(host, 1);
	d->forms = pl_realloc(d->forms, (d->nforms + 1) * sizeof(*d->forms));
	d->forms[d->nforms++] = x;
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

static void disco_info(struct iq_req *req)
{
	if (req->set) {
		iq_error(req, "cancel", "not-allowed");
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
	if (xml_attr(req->query, "node")) {
		iq_error(req, "cancel", "item-not-found");
		return;
	}
	struct xml_node *q = xml_new("query", NS_DISCO_INFO);
	struct xml_node *id = xml_add_child(q, "identity", NULL);
	xml_set_attr(id, "category", "server");
	xml_set_attr(id, "type", "im");
	xml_set_attr(id, "name", "Parley");
	disco_fill_info(req->host, q);
	iq_result(req, q);
}

static void disco_items(struct iq_req *req)
{
	if (req->set) {
		iq_error(req, "cancel", "not-allowed");
		return;
	}
	/* Components (conference., pubsub., upload., proxy.) arrive with
	 * their modules; until then the server has no items. */
	iq_result(req, xml_new("query", NS_DISCO_ITEMS));
}

static int disco_start(const char *host, const struct cfg_node *opts)
{
	PL_UNUSED(opts);
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
}

const struct pm_module mod_disco = {
	.name = "mod_disco",
	.api_version = PARLEY_MODULE_API_VERSION,
	.default_enabled = true,
	.start = disco_start,
	.stop = disco_stop,
};
