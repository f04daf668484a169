/*
 * xmpp.h - the XMPP subsystem's internal interface: c2s sessions, the
 * session manager (who is online where) and stanza routing.
 *
 * Ownership: a c2s session belongs to the shard its conn is on. Until
 * resource binding that is the shard that accepted it; at bind the conn
 * moves to the user's home shard, shard_of_key(bare JID), where the
 * session manager's table for that user lives. All of a user's resources
 * therefore share one shard, and delivering to a user is: post the stanza
 * to its home shard (or call directly when already there).
 */
#ifndef PL_XMPP_H
#define PL_XMPP_H

#include <stdbool.h>
#include <stddef.h>

#include "core/listen.h"

struct xml_node;
struct shard;
struct c2s;
struct pm_module;

#define NS_CLIENT "jabber:client"
#define NS_STREAMS "http://etherx.jabber.org/streams"
#define NS_STREAM_ERRORS "urn:ietf:params:xml:ns:xmpp-streams"
#define NS_STANZA_ERRORS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"
#define NS_PING "urn:xmpp:ping"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"

extern const struct listen_module c2s_listen_module;
extern const struct pm_module mod_ping;
extern const struct pm_module mod_disco;
extern const struct pm_module mod_roster;    /* RFC 6121 rosters and presence */
extern const struct pm_module mod_offline;   /* XEP-0160 */
extern const struct listen_module c2s_tls_listen_module;
/* The basic server modules (ejabberd's names); mod_register is off unless
 * configured. */
extern const struct pm_module mod_version;
extern const struct pm_module mod_time;
extern const struct pm_module mod_last;
extern const struct pm_module mod_vcard;
extern const struct pm_module mod_private;
extern const struct pm_module mod_blocking;
extern const struct pm_module mod_register;
extern const struct pm_module mod_caps;
/* Password change for logged-in users on hosts without mod_register
 * (a user_send_packet handler for every host; main thread, at startup). */
void register_password_init(void);

/* Per-shard setup/teardown (on that shard's thread). */
void xmpp_shard_start(struct shard *sh);
void xmpp_shard_stop(struct shard *sh);
/* Registers the XMPP admin commands (connected_users). */
void xmpp_register_commands(void);

/* ---- c2s (c2s.c) ---- */
void c2s_shard_start(struct shard *sh);
void c2s_shard_stop(struct shard *sh);
/* Sessions (any state) owned by the calling shard. */
size_t c2s_count_here(void);
/* Write a stanza to the session's client. */
void c2s_send(struct c2s *s, const struct xml_node *el);
/* Close with a stream error (condition from RFC 6120 §4.9.3). */
void c2s_stream_error(struct c2s *s, const char *condition, const char *text);
const char *c2s_full_jid(const struct c2s *s);
const char *c2s_user(const struct c2s *s);
const char *c2s_host(const struct c2s *s);
const char *c2s_resource(const struct c2s *s);
/* Available: sent initial presence and not unavailable since (the server
 * tracks this from the client's presence without 'to'). */
int c2s_priority(const struct c2s *s);
bool c2s_available(const struct c2s *s);
/* Per-session data of modules (free it on c2s_session_closed). */
enum c2s_slot { C2S_SLOT_ROSTER, C2S_SLOT_PRESENCE, C2S_SLOT_MODULE1, C2S_SLOT_MODULE2,
		C2S_SLOT_BLOCKING, C2S_SLOTS };
void *c2s_get_data(const struct c2s *s, enum c2s_slot slot);
void c2s_set_data(struct c2s *s, enum c2s_slot slot, void *data);
/* Keep s allocated while a module waits for storage on its behalf. Before
 * binding (in-band registration), stanzas the client sends meanwhile wait
 * and are handled, in order, at c2s_release(). On a session that is
 * closing (mod_blocking replaying what it sent before it left), s stays
 * valid as the sender until released. Same shard only. */
void c2s_hold(struct c2s *s);
void c2s_release(struct c2s *s);
/* The client's address without port ("192.0.2.1", "2001:db8::1"). */
const char *c2s_peer_ip(const struct c2s *s, char *out, size_t outlen);

/* ---- session manager (sm.c), home-shard state ---- */
/* Register a bound session on its home shard. Applies resource_conflict
 * (closeold): an older session with the same full JID is closed. */
void sm_session_add(struct c2s *s, const char *bare, const char *resource);
void sm_session_remove(struct c2s *s, const char *bare, const char *resource);
/* Number of sessions on the calling shard. */
size_t sm_session_count(void);
/* The sessions of a local user (home shard only); returns how many. */
size_t sm_sessions_of(const char *bare, struct c2s **out, size_t max);

/* ---- routing (router.c) ---- */
/* Route a stanza whose 'from' is already stamped. Takes ownership of el.
 * Any thread that is a shard. */
void router_route(struct xml_node *el);
/* Answer a stanza with a stanza error (type 'cancel' etc.) unless it is an
 * error itself. Takes ownership of el. */
void router_bounce(struct xml_node *el, const char *type, const char *condition);
/* Append <error type=type><condition/>[<text/>]</error> (RFC 6120 §8.3.2)
 * to el; returns the <error/> so a caller can add an application
 * condition. */
struct xml_node *stanza_add_error(struct xml_node *el, const char *type,
				  const char *condition, const char *text);
/* router_bounce with a human-readable <text xml:lang='en'/>. */
void router_bounce_text(struct xml_node *el, const char *type, const char *condition,
			const char *text);


#endif
