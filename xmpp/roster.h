/*
 * roster.h - rosters, presence subscriptions and presence (RFC 6121 §2-4,
 * XEP-0237), and offline messages (XEP-0160): mod_roster and mod_offline.
 *
 *   roster_sub.c  the subscription state machine of RFC 6121 Appendix A as
 *                 pure functions (any thread)
 *   roster_cache.c  the per-user roster cache, its loading and its
 *                 transactions through the store
 *   roster.c      mod_roster: the jabber:iq:roster handler, subscription
 *                 processing, the module's hooks
 *   presence.c    broadcast, probes, directed presence, per-session state
 *   offline.c     mod_offline: storing and replaying messages
 *   offline_flex.c  mod_offline: flexible retrieval (XEP-0013, offline.h)
 *
 * Ownership: a user's roster cache lives on the user's home shard and is
 * touched only there. It is loaded from the store when first needed (the
 * first session, or a subscription stanza for a user who is offline) and
 * dropped when the user has no session and nothing is in flight. Every
 * change is applied to the cache at once, so later stanzas see it, and
 * written through the store; what the change causes (iq result, roster
 * pushes, stanzas to the contact) happens after the commit, in order per
 * user, so what a client was told survives kill -9.
 */
#ifndef PL_XMPP_ROSTER_H
#define PL_XMPP_ROSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/strtab.h"

struct c2s;
struct xml_node;

#define NS_ROSTER "jabber:iq:roster"
#define NS_ROSTERVER "urn:xmpp:features:rosterver"
#define NS_PREAPPROVAL "urn:xmpp:features:pre-approval"
#define NS_DELAY "urn:xmpp:delay"
#define NS_MSGOFFLINE "msgoffline"
/* Run on a user's home shard after the initial presence of session s
 * (struct c2s *) went out: mod_offline replays stored messages then. */
#define HOOK_USER_AVAILABLE "user_available"

/* ---- the subscription state machine (roster_sub.c) ---- */

enum { ROSTER_SUB_TO = 1, ROSTER_SUB_FROM = 2 };

enum roster_subtype {
	ROSTER_SUBSCRIBE,
	ROSTER_SUBSCRIBED,
	ROSTER_UNSUBSCRIBE,
	ROSTER_UNSUBSCRIBED,
};

/* One contact as the user's server sees it. Appendix A's nine states are
 * sub x ask x pending_in (From + Pending In and the like cannot occur);
 * approved is the pre-approval of §3.4, only while there is no 'from'. */
struct roster_state {
	uint8_t sub;          /* ROSTER_SUB_* bits */
	bool ask;             /* Pending Out: the user asked, no answer yet */
	bool pending_in;      /* Pending In: the contact asked, no answer yet */
	bool approved;
};

struct roster_verdict {
	struct roster_state next;
	bool changed;         /* next differs from the state before */
	bool forward;         /* outbound: route to the contact;
	                       * inbound: deliver to the user */
	bool auto_reply;      /* inbound subscribe: the server answers
	                       * 'subscribed' on the user's behalf */
};

/* "subscribe" ... "unsubscribed" -> ROSTER_*, anything else -1. */
int roster_subtype_parse(const char *type);
const char *roster_subtype_name(enum roster_subtype t);
/* "none", "to", "from", "both". */
const char *roster_sub_name(uint8_t sub);
/* The reverse; -1 if s is none of them. */
int roster_sub_parse(const char *s);
/* Appendix A.2: the user sent t to the contact. */
void roster_sub_outbound(const struct roster_state *cur, enum roster_subtype t,
			 struct roster_verdict *v);
/* Appendix A.3: t arrived from the contact. */
void roster_sub_inbound(const struct roster_state *cur, enum roster_subtype t,
			struct roster_verdict *v);

/* ---- the roster cache's contents ---- */

struct roster_item {
	char *jid;            /* normalised; the key */
	char *name;           /* NULL: none */
	char **groups;
	size_t ngroups;
	struct roster_state st;
	bool in_roster;       /* false: only a pending inbound request */
	char *pending_xml;    /* that request, kept for re-delivery */
};

struct roster_user {
	struct strtab_node node;      /* in the shard's cache, keyed by bare */
	char *host, *user, *bare;
	struct roster_item **items;
	size_t n, cap;
	int64_t version;
	bool loaded;
	bool exists;                  /* the account exists */
	int sessions;                 /* bound sessions holding the cache */
	int busy;                     /* callbacks running on it */
	bool kicking;
	struct roster_op *waiting, *waiting_tail;   /* until loaded */
	struct roster_tx *txq, *txq_tail;           /* head: in flight */
};

typedef void roster_fn(struct roster_user *u, void *arg);

/* ---- the roster cache (roster_cache.c), home shard only ---- */

/* Run fn(u, arg) with user@host's roster, now if it is cached, else once
 * it is loaded; calls for one user run in the order they were made. */
void roster_use(const char *host, const char *user, roster_fn *fn, void *arg);
/* The cached user, created (and its load started) if need be. */
struct roster_user *roster_get(const char *host, const char *user);
/* The cached user of a bare JID, or NULL: never loads. */
struct roster_user *roster_cached(const char *bare);
/* A bound session keeps its user's cache; the last one to go drops it. */
void roster_session_open(const char *host, const char *user);
void roster_session_close(const char *host, const char *user);
/* The session asked for the roster: it gets roster pushes (§2.1.6). */
void roster_set_interested(struct c2s *s);

struct roster_item *roster_find(const struct roster_user *u, const char *jid);
/* Room for jid under mod_roster's max_items (RFC 6121 leaves the roster's
 * size to the server): as a roster item (in_roster), or as a subscription
 * request from outside the roster, which are counted apart so strangers
 * cannot fill the user's roster. What changes no count always fits. */
bool roster_fits(const struct roster_user *u, const char *jid, bool in_roster, size_t max);
struct roster_item *roster_item_add(struct roster_user *u, const char *jid);
/* Takes it out of u and frees it. */
void roster_item_remove(struct roster_user *u, struct roster_item *it);
/* <item/> as §2.1.2 writes it, appended to parent (or a new tree). */
struct xml_node *roster_item_xml(struct xml_node *parent, const struct roster_item *it,
				 bool removed);

/* A transaction: rows to store, then, once they are committed and in the
 * order added, what they cause. A transaction without rows waits only for
 * those queued before it. The el and req handed in are taken. */
struct roster_tx;
struct iq_req;
/* ok: the transaction committed (else the call should only clean up). */
typedef void roster_call_fn(struct roster_user *u, bool ok, const char *jid, void *arg);

struct roster_tx *roster_tx_new(struct roster_user *u);
void roster_tx_write(struct roster_tx *tx, const struct roster_item *it);
void roster_tx_delete(struct roster_tx *tx, const char *jid);
/* The roster as the user sees it changed: a new version and a push. */
void roster_tx_push(struct roster_tx *tx, const struct roster_item *it, bool removed);
void roster_tx_route(struct roster_tx *tx, struct xml_node *el);
/* el to the user's available resources. */
void roster_tx_deliver(struct roster_tx *tx, struct xml_node *el);
/* iq_result(req, payload); on failure iq_error internal-server-error. */
void roster_tx_result(struct roster_tx *tx, struct iq_req *req, struct xml_node *payload);
void roster_tx_call(struct roster_tx *tx, roster_call_fn *call, const char *jid, void *arg);
void roster_tx_commit(struct roster_tx *tx);

/* ---- mod_roster (roster.c) ---- */

/* XEP-0237 on for host (mod_roster's `versioning` option, default true). */
bool roster_versioning(const char *host);
/* Contact's presence goes to the contacts this is true for. */
static inline bool roster_item_from(const struct roster_item *it)
{
	return (it->st.sub & ROSTER_SUB_FROM) != 0;
}
static inline bool roster_item_to(const struct roster_item *it)
{
	return (it->st.sub & ROSTER_SUB_TO) != 0;
}

/* ---- presence (presence.c), home shard only ---- */

struct presence_sess;

/* Main thread, when mod_roster starts. */
void presence_start(void);
/* Hook handlers mod_roster installs for presence.c. */
void presence_session_bound(struct c2s *s);
void presence_session_closed(struct c2s *s);
/* A presence the user's client sent ('from' stamped): PL_DONE if taken. */
int presence_user_send(struct c2s *s, struct xml_node *el);
/* An inbound probe for user u (takes el). */
void presence_probe(struct roster_user *u, struct xml_node *el);
/* After the user approved contact: the current presence of each of the
 * user's available resources goes to it; after a cancellation,
 * unavailable from each. */
void presence_send_current(struct roster_user *u, const char *contact);
void presence_send_unavailable(struct roster_user *u, const char *contact);
/* Deliver el (not taken) to each available resource of u. */
void presence_deliver_available(struct roster_user *u, const struct xml_node *el);
/* Keep a session's presence state past an asynchronous call; the session
 * itself may be gone when it returns (presence_c2s() is NULL then). */
struct presence_sess *presence_hold(struct c2s *s);
struct c2s *presence_c2s(const struct presence_sess *ps);
void presence_release(struct presence_sess *ps);
/* XEP-0203: append <delay xmlns='urn:xmpp:delay' from=domain stamp=t/>. */
void presence_add_delay(struct xml_node *el, const char *domain, time_t t);

#endif
