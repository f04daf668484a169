/*
 * mod_vcard.c - vcard-temp (XEP-0054): a user sets their own vCard and
 * anyone may read it at the user's bare JID. An account without a vCard
 * answers an empty one (§3.1); a vCard larger than `max_size` (serialized,
 * default 64 KiB) is refused, so one user cannot fill the store.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/module.h"
#include "core/pl.h"
#include "xmpp/disco.h"
#include "xmpp/iq.h"
#include "xmpp/modules.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

#define VCARD_DEFAULT_MAX (64 * 1024)
#define VCARD_MAX_HOSTS 64

struct vcard_host {
	char *host;
	size_t max;
};

/* Filled at start (main thread), read-only after. */
static struct vcard_host vcard_hosts[VCARD_MAX_HOSTS];

static size_t vcard_max(const char *host)
{
	for (size_t i = 0; i < VCARD_MAX_HOSTS; i++)
		if (vcard_hosts[i].host && strcasecmp(vcard_hosts[i].host, host) == 0)
			return vcard_hosts[i].max;
	return VCARD_DEFAULT_MAX;
}

bool vcard_fits(const struct xml_node *vcard, size_t max, size_t *size)
{
	struct buf b = { 0 };
	xml_serialize(vcard, "", &b);
	size_t n = buf_used(&b);
	buf_free(&b);
	if (size)
		*size = n;
	return n <= max;
}

static void vcard_got(void *arg, int status, char **rows, size_t nrows, long changes)
{
	struct iq_req *req = arg;
	PL_UNUSED(changes);
	if (status != PL_OK) {
		iq_error(req, "wait", "internal-server-error");
		return;
	}
	if (nrows == 0) {
		/* No such account (RFC 6121 §8.5.1). */
		iq_error(req, "cancel", "service-unavailable");
		return;
	}
	struct xml_node *v = rows[0][0] ? modstore_xml_parse(rows[0]) : NULL;
	iq_result(req, v ? v : xml_new("vCard", NS_VCARD));
}

static void vcard_stored(void *arg, int status, char **rows, size_t nrows, long changes)
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

static void vcard_iq(struct iq_req *req)
{
	if (!xml_is(req->query, "vCard", NS_VCARD)) {
		iq_error(req, "modify", "bad-request");
		return;
	}
	if (!req->to.local) {
		/* The server itself has no vCard. */
		iq_error(req, "cancel", "service-unavailable");
		return;
	}
	if (!req->set) {
		const char *params[] = { req->to.domain, req->to.local };
		modstore_exec("SELECT (SELECT xml FROM vcard WHERE host = ?1 AND username = ?2)"
			      " FROM users WHERE host = ?1 AND username = ?2",
			      params, 2, 1, vcard_got, req);
		return;
	}
	if (!req->from_self) {
		iq_error(req, "auth", "forbidden");
		return;
	}
	if (!vcard_fits(req->query, vcard_max(req->host), NULL)) {
		iq_error(req, "modify", "not-acceptable");
		return;
	}
	char *text = modstore_xml_text(req->query);
	const char *params[] = { req->to.domain, req->to.local, text };
	modstore_exec("INSERT OR REPLACE INTO vcard (host, username, xml) VALUES (?1, ?2, ?3)",
		      params, 3, 1, vcard_stored, req);
	free(text);
}

static const struct modopt vcard_opts[] = {
	{ "max_size", MODOPT_SIZE, 1024, 16L * 1024 * 1024, NULL },
	{ NULL, MODOPT_BOOL, 0, 0, NULL },
};

static int vcard_check(const struct cfg_node *opts, char *err, size_t errlen)
{
	return modopt_check("mod_vcard", opts, vcard_opts, err, errlen);
}

static int vcard_start(const char *host, const struct cfg_node *opts)
{
	for (size_t i = 0; i < VCARD_MAX_HOSTS; i++) {
		if (!vcard_hosts[i].host) {
			vcard_hosts[i].host = pl_strdup(host);
			vcard_hosts[i].max = modopt_size(opts, "max_size", VCARD_DEFAULT_MAX);
			break;
		}
	}
	iq_handler_add(host, NS_VCARD, IQ_ACCOUNT, vcard_iq);
	disco_add_feature(host, NS_VCARD);
	return PL_OK;
}

static void vcard_stop(const char *host)
{
	iq_handler_remove(host, NS_VCARD, IQ_ACCOUNT);
	disco_remove_feature(host, NS_VCARD);
	for (size_t i = 0; i < VCARD_MAX_HOSTS; i++) {
		if (vcard_hosts[i].host && strcasecmp(vcard_hosts[i].host, host) == 0) {
			free(vcard_hosts[i].host);
			vcard_hosts[i].host = NULL;
		}
	}
}

const struct pm_module mod_vcard = {
	.name = "mod_vcard",
	.api_version = PARLEY_MODULE_API_VERSION,
	.default_enabled = true,
	.check = vcard_check,
	.start = vcard_start,
	.stop = vcard_stop,
};
