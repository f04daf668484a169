/*
 * iq_server.c - iqs addressed to the server itself: ping (XEP-0199) and a
 * minimal service discovery (XEP-0030). Everything else is
 * service-unavailable (RFC 6120 §8.4).
 */
#include <string.h>

#include "core/pl.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

static void iq_result(struct xml_node *el)
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
		static const char *const features[] = { NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PING };
		for (size_t i = 0; i < PL_ARRAY_LEN(features); i++)
			xml_set_attr(xml_add_child(rq, "feature", NULL), "var", features[i]);
	} else if (q && xml_is(q, "query", NS_DISCO_ITEMS)) {
		xml_add_child(r, "query", NS_DISCO_ITEMS);
	}
	xml_free(el);
	router_route(r);
}

void iq_server_handle(struct xml_node *el)
{
	const char *type = xml_attr(el, "type");
	if (!type || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0)) {
		xml_free(el);   /* results and errors to the server end here */
		return;
	}
	struct xml_node *q = xml_first_child_el(el);
	int get = strcmp(type, "get") == 0;
	if (q && get && (xml_is(q, "ping", NS_PING) || xml_is(q, "query", NS_DISCO_INFO) ||
			 xml_is(q, "query", NS_DISCO_ITEMS))) {
		iq_result(el);
		return;
	}
	router_bounce(el, "cancel", "service-unavailable");
}
