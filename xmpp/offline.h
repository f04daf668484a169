/*
 * offline.h - the two halves of mod_offline: offline.c stores messages for
 * a user with no available resource and floods them to the first resource
 * that sends initial presence (XEP-0160); offline_flex.c lets a client
 * count, list, read and delete them itself instead (XEP-0013), which turns
 * the flood off while that client's session lasts.
 *
 * offline_flex_* run on the user's home shard (main thread for start and
 * stop); the pure pieces at the end on any thread.
 */
#ifndef PL_XMPP_OFFLINE_H
#define PL_XMPP_OFFLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct c2s;
struct xml_node;

#define NS_FLEX_OFFLINE "http://jabber.org/protocol/offline"

/* From mod_offline's start and stop, per host. */
void offline_flex_start(const char *host);
void offline_flex_stop(const char *host);
/* XEP-0013 §2.2: a session of s's user asked for the message count, the
 * headers or a fetch, so none of the user's resources gets the flood
 * while that session lasts. */
bool offline_flex_chosen(const struct c2s *s);

/* ---- pure pieces ---- */

/* A message's node is its row id, zero-padded to this many digits (every
 * positive int64_t fits). */
#define OFFLINE_NODE_LEN 19
void offline_node_format(int64_t id, char out[OFFLINE_NODE_LEN + 1]);
/* PL_OK and the id for a node offline_node_format can write; PL_ERR for
 * any other string (a node no message of ours can have). */
int offline_node_parse(const char *node, int64_t *id);

enum offline_flex_op {
	OFFLINE_FLEX_COUNT,      /* disco#info on the node (§2.2) */
	OFFLINE_FLEX_HEADERS,    /* disco#items on the node (§2.3) */
	OFFLINE_FLEX_VIEW,       /* <offline/> iqs from here on (§2.4-2.7) */
	OFFLINE_FLEX_REMOVE,
	OFFLINE_FLEX_FETCH,
	OFFLINE_FLEX_PURGE,
};

struct offline_flex_req {
	enum offline_flex_op op;
	int64_t *ids;            /* VIEW, REMOVE: distinct, in request order */
	size_t nids;
};

/* The <offline/> child of an iq get (set false) or set. NULL with *out
 * filled (free out->ids), or the stanza error condition to answer:
 * "bad-request" for what XEP-0013 does not define (fetch in a set, purge
 * in a get, items mixed with fetch or purge, an item without node or with
 * the other action, another element), "item-not-found" for a node that
 * cannot name a stored message. */
const char *offline_flex_parse(const struct xml_node *offline, bool set,
			       struct offline_flex_req *out);

#endif
