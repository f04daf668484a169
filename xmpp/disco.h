/*
 * disco.h - service discovery (XEP-0030) for the server's domains: modules
 * announce the features they serve on a host when they start (main thread);
 * mod_disco answers disco#info from that list, so disabling a module
 * removes its feature. A module may also answer a node of an account's
 * disco itself (XEP-0013's message list).
 */
#ifndef PL_XMPP_DISCO_H
#define PL_XMPP_DISCO_H

#include <stddef.h>

struct iq_req;
struct xml_node;

void disco_add_feature(const char *host, const char *var);
void disco_remove_feature(const char *host, const char *var);
/* Extended info (XEP-0128): a form a module adds to the server's
 * disco#info (e.g. contact addresses, XEP-0157). Takes ownership. */
void disco_add_form(const char *host, struct xml_node *x);
/* Appends <feature/>s (and forms) of host to a disco#info query element. */
void disco_fill_info(const char *host, struct xml_node *query);
size_t disco_feature_count(const char *host);
/* The XEP-0115 verification string of host's disco#info, kept current as
 * features and forms come and go (NULL for an unknown host). */
const char *disco_caps_ver(const char *host);
/* disco#info and disco#items gets to a local account (its bare JID, or no
 * 'to') naming node go to the module's handler, which owns req as an iq
 * handler does (iq.h) and checks who asks. Main thread, at module start. */
typedef void disco_node_fn(struct iq_req *req);
void disco_account_node_add(const char *host, const char *node, disco_node_fn *info,
			    disco_node_fn *items);
void disco_account_node_remove(const char *host, const char *node);

#endif
