/*
 * iq_server.c - iqs addressed to the server itself: ping (XEP-0199,
 * mod_ping) and a minimal service discovery (XEP-0030, mod_disco).
 * Everything else is service-unavailable (RFC 6120 §8.4).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/module.h"
#include "core/pl.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

static void iq_result(struct xml_node *el, const char *host)
{
	const char *from = xml_attr(el, "from");
	const char *to = xml_attr(el, "to");
	struct xml_node *r = xml_new("iq", NS_CLIENT);
	xml_set_attr(r, "type", "result");
	xml_set_attr(r, "id", xml_attr(el, "id"));
	if (to)
		xml_set_attr(r, "from", to);
	xml_set_attr(r, "to", from);
	struct xml_node *q = xml_first_child_el(el);
	if (q && xml_is(q, "query", NS_DISCO_INFO)) {
		struct xml_node *rq = xml_add_child(r, "query", NS_DISCO_INFO);
		struct xml_node *id = xml_add_child(rq, "identity", NULL);
		xml_set_attr(id, "category", "server");
		xml_set_attr(id, "type", "im");
		xml_set_attr(id, "name", "Parley");
		xml_set_attr(xml_add_child(rq, "feature", NULL), "var", NS_DISCO_INFO);
		xml_set_attr(xml_add_child(rq, "feature", NULL), "var", NS_DISCO_ITEMS);
		if (pm_enabled(host, "mod_ping"))
			xml_set_attr(xml_add_child(rq, "feature", NULL), "var", NS_PING);
	} else if (q && xml_is(q, "query", NS_DISCO_ITEMS)) {
		xml_add_child(r, "query", NS_DISCO_ITEMS);
	}
	xml_free(el);
	router_route(r);
}

/* The host an iq is addressed to: its 'to', or the sender's domain. */
static void iq_host(const struct xml_node *el, char *out, size_t outlen)
{
	const char *a = xml_attr(el, "to");
	if (!a) {
		a = xml_attr(el, "from");
		const char *at = a ? strchr(a, '@') : NULL;
		a = at ? at + 1 : (a ? a : "");
	}
	size_t n = strcspn(a, "/");
	snprintf(out, outlen, "%.*s", (int)(n < outlen ? n : outlen - 1), a);
}

void iq_server_handle(struct xml_node *el)
{
	const char *type = xml_attr(el, "type");
	char host[1024];
	iq_host(el, host, sizeof(host));
	if (!type || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0)) {
		xml_free(el);   /* results and errors to the server end here */
		return;
	}
	struct xml_node *q = xml_first_child_el(el);
	int get = strcmp(type, "get") == 0;
	bool ping = q && xml_is(q, "ping", NS_PING) && pm_enabled(host, "mod_ping");
	bool disco = q && (xml_is(q, "query", NS_DISCO_INFO) || xml_is(q, "query", NS_DISCO_ITEMS)) &&
		pm_enabled(host, "mod_disco");
	if (get && (ping || disco)) {
		iq_result(el, host);
		return;
	}
	router_bounce(el, "cancel", "service-unavailable");
}

const struct pm_module mod_ping = {
	.name = "mod_ping",
	.api_version = PARLEY_MODULE_API_VERSION,
	.default_enabled = true,
};

const struct pm_module mod_disco = {
	.name = "mod_disco",
	.api_version = PARLEY_MODULE_API_VERSION,
	.default_enabled = true,
};
