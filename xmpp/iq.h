/*
 * iq.h - who answers an iq: handlers registered per (host, namespace of the
 * iq's child element), as ejabberd's gen_iq_handler and Prosody's
 * "iq/host/xmlns" events.
 *
 * Two tables: IQ_SERVER for iqs addressed to the server (to = a served
 * domain), IQ_ACCOUNT for iqs the server answers on behalf of an account
 * (no 'to', or to a local user's bare JID; RFC 6120 §10.3.3 and §10.5.3).
 * An account iq with no account handler falls back to the server table
 * (so a ping with no 'to' is answered).
 *
 * Registration happens when modules start, on the main thread before any
 * listener is open; lookups afterwards are read-only from any shard.
 * Handlers run on the shard the iq reached: for IQ_ACCOUNT, the home shard
 * of the addressed account (its sessions and caches are there); for
 * IQ_SERVER, the sender's shard. A handler owns the request: it answers
 * exactly once (iq_result / iq_error), possibly later after a storage job.
 */
#ifndef PL_XMPP_IQ_H
#define PL_XMPP_IQ_H

#include <stdbool.h>

#include "xmpp/jid.h"

struct xml_node;

enum iq_table { IQ_SERVER = 0, IQ_ACCOUNT = 1 };

struct iq_req {
	struct xml_node *iq;      /* the request; freed by iq_result/iq_error */
	struct xml_node *query;   /* its child element */
	const char *host;         /* the served domain it is for */
	struct jid from;          /* the sender (full JID, stamped by c2s) */
	struct jid to;            /* the addressed account or domain */
	bool set;                 /* type='set' (else 'get') */
	bool from_self;           /* the sender's bare JID is the addressed account */
};

typedef void iq_handler_fn(struct iq_req *req);

void iq_handler_add(const char *host, const char *xmlns, enum iq_table t, iq_handler_fn *fn);
void iq_handler_remove(const char *host, const char *xmlns, enum iq_table t);

/* Route an iq get/set to its handler, or answer service-unavailable.
 * Takes ownership of iq. Returns after answering or handing it to a
 * handler (which may answer later). */
void iq_dispatch(struct xml_node *iq, enum iq_table t);

/* Answer: result with an optional payload (ownership taken: a new tree
 * from xml_new, appended as a copy), or an error (RFC 6120 §8.3). Both
 * free the request. */
void iq_result(struct iq_req *req, struct xml_node *payload);
void iq_error(struct iq_req *req, const char *type, const char *condition);
/* iq_error with a human-readable <text xml:lang='en'/> (a limit, say). */
void iq_error_text(struct iq_req *req, const char *type, const char *condition,
		   const char *text);

#endif
