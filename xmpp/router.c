/*
 * router.c - where a stanza goes: to the server itself, to a local user's
 * home shard, or back to its sender as an error.
 */
#include <stdlib.h>
#include <string.h>

#include "core/cfg.h"
#include "core/log.h"
#include "core/pl.h"
#include "core/shard.h"
#include "xmpp/iq.h"
#include "xmpp/jid.h"
#include "xmpp/sm.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

static void router_deliver_here(void *arg)
{
	sm_deliver(arg);
}

void router_route(struct xml_node *el)
{
	const char *to = xml_attr(el, "to");
	struct jid j;
	if (!to) {
		/* RFC 6120 §10.3: no 'to' means the sender's account (or, for
		 * iq, the server answering for it). */
		if (strcmp(el->name, "iq") == 0)
			iq_dispatch(el, IQ_ACCOUNT);
		else
			xml_free(el);
		return;
	}
	if (jid_parse(to, strlen(to), &j) != PL_OK) {
		router_bounce(el, "modify", "jid-malformed");
		return;
	}
	if (!cfg_is_local_host(j.domain)) {
		/* Federation comes with s2s. */
		jid_free(&j);
		router_bounce(el, "cancel", "remote-server-not-found");
		return;
	}
	if (!j.local) {
		jid_free(&j);
		if (strcmp(el->name, "iq") == 0)
			iq_dispatch(el, IQ_SERVER);
		else
			xml_free(el);
		return;
	}
	char *bare = jid_bare(&j);
	int home = shard_of_key(bare, strlen(bare));
	free(bare);
	jid_free(&j);
	if (home == shard_self()->id)
		sm_deliver(el);
	else
		shard_post(home, router_deliver_here, el);
}

struct xml_node *stanza_add_error(struct xml_node *el, const char *type,
				  const char *condition, const char *text)
{
	struct xml_node *e = xml_add_child(el, "error", NS_CLIENT);
	xml_set_attr(e, "type", type);
	xml_add_child(e, condition, NS_STANZA_ERRORS);
	if (text) {
		struct xml_node *t = xml_add_child(e, "text", NS_STANZA_ERRORS);
		xml_set_attr(t, "xml:lang", "en");
		xml_add_text(t, text, strlen(text));
	}
	return e;
}

void router_bounce(struct xml_node *el, const char *type, const char *condition)
{
	router_bounce_text(el, type, condition, NULL);
}

void router_bounce_text(struct xml_node *el, const char *type, const char *condition,
			const char *text)
{
	const char *st = xml_attr(el, "type");
	const char *from = xml_attr(el, "from");
	if ((st && strcmp(st, "error") == 0) || !from) {
		xml_free(el);
		return;
	}
	/* Swap addresses in place and keep the payload (RFC 6120 §8.3.1). */
	char *orig_to = pl_strdup(xml_attr(el, "to") ? xml_attr(el, "to") : "");
	char *orig_from = pl_strdup(from);
	xml_set_attr(el, "to", orig_from);
	xml_set_attr(el, "from", orig_to[0] ? orig_to : NULL);
	xml_set_attr(el, "type", "error");
	stanza_add_error(el, type, condition, text);
	free(orig_to);
	free(orig_from);
	router_route(el);
}
