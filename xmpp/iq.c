/*
 * iq.c - the iq handler tables: a fixed open hash per table keyed by
 * "host\0xmlns", filled at startup and read-only afterwards.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/cfg.h"
#include "core/pl.h"
#include "xmpp/iq.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

#define IQ_BUCKETS 256

struct iq_entry {
	struct iq_entry *next;
	iq_handler_fn *fn;
	char *host;
	char *xmlns;
};

static struct iq_entry *tables[2][IQ_BUCKETS];

static unsigned iq_hash(const char *host, const char *xmlns)
{
	uint32_t h = 2166136261u;
	for (const char *p = host; *p; p++)
		h = (h ^ (uint8_t)(*p | 0x20)) * 16777619u;
	h = (h ^ 0xff) * 16777619u;
	for (const char *p = xmlns; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return h % IQ_BUCKETS;
}

static struct iq_entry **iq_find(const char *host, const char *xmlns, enum iq_table t)
{
	struct iq_entry **p = &tables[t][iq_hash(host, xmlns)];
	while (*p && (strcasecmp((*p)->host, host) != 0 || strcmp((*p)->xmlns, xmlns) != 0))
		p = &(*p)->next;
	return p;
}

void iq_handler_add(const char *host, const char *xmlns, enum iq_table t, iq_handler_fn *fn)
{
	struct iq_entry **p = iq_find(host, xmlns, t);
	if (*p) {
		(*p)->fn = fn;
		return;
	}
	struct iq_entry *e = pl_calloc(1, sizeof(*e));
	e->fn = fn;
	e->host = pl_strdup(host);
	e->xmlns = pl_strdup(xmlns);
	*p = e;
}

void iq_handler_remove(const char *host, const char *xmlns, enum iq_table t)
{
	struct iq_entry **p = iq_find(host, xmlns, t);
	struct iq_entry *e = *p;
	if (!e)
		return;
	*p = e->next;
	free(e->host);
	free(e->xmlns);
	free(e);
}

static void iq_req_free(struct iq_req *req)
{
	jid_free(&req->from);
	jid_free(&req->to);
	xml_free(req->iq);
	free(req);
}

void iq_result(struct iq_req *req, struct xml_node *payload)
{
	struct xml_node *r = xml_new("iq", NS_CLIENT);
	const char *to = xml_attr(req->iq, "to");
	xml_set_attr(r, "type", "result");
	xml_set_attr(r, "id", xml_attr(req->iq, "id"));
	if (to)
		xml_set_attr(r, "from", to);
	xml_set_attr(r, "to", xml_attr(req->iq, "from"));
	if (payload) {
		xml_add_copy(r, payload);
		xml_free(payload);
	}
	iq_req_free(req);
	router_route(r);
}

void iq_error(struct iq_req *req, const char *type, const char *condition)
{
	iq_error_text(req, type, condition, NULL);
}

void iq_error_text(struct iq_req *req, const char *type, const char *condition,
		   const char *text)
{
	struct xml_node *iq = req->iq;
	req->iq = NULL;
	iq_req_free(req);
	router_bounce_text(iq, type, condition, text);
}

/* The domain an iq is for: its 'to', or (no 'to') the sender's. */
static const char *iq_target(const struct xml_node *iq, const char *from, struct jid *to)
{
	const char *a = xml_attr(iq, "to");
	if (!a) {
		/* No 'to': the sender's own account (RFC 6120 §10.3.3). */
		if (jid_parse(from, strlen(from), to) != PL_OK)
			return NULL;
		free(to->resource);
		to->resource = NULL;
		return to->domain;
	}
	if (jid_parse(a, strlen(a), to) != PL_OK)
		return NULL;
	return to->domain;
}

void iq_dispatch(struct xml_node *iq, enum iq_table t)
{
	const char *type = xml_attr(iq, "type");
	const char *from = xml_attr(iq, "from");
	struct xml_node *q = xml_first_child_el(iq);
	if (!type || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0)) {
		xml_free(iq);   /* results and errors addressed to us end here */
		return;
	}
	if (!q || xml_next_el(q) || !from) {
		/* RFC 6120 §8.2.3: exactly one payload child. */
		router_bounce(iq, "modify", "bad-request");
		return;
	}
	struct iq_req *req = pl_calloc(1, sizeof(*req));
	req->iq = iq;
	req->query = q;
	req->set = strcmp(type, "set") == 0;
	req->host = iq_target(iq, from, &req->to);
	if (!req->host || jid_parse(from, strlen(from), &req->from) != PL_OK) {
		iq_error(req, "modify", "jid-malformed");
		return;
	}
	req->from_self = req->from.local && req->to.local &&
		strcmp(req->from.local, req->to.local) == 0 &&
		strcmp(req->from.domain, req->to.domain) == 0;
	struct iq_entry *e = *iq_find(req->host, q->ns, t);
	if (!e && t == IQ_ACCOUNT && !xml_attr(iq, "to"))
		e = *iq_find(req->host, q->ns, IQ_SERVER);
	if (!e) {
		iq_error(req, "cancel", "service-unavailable");
		return;
	}
	e->fn(req);
}
