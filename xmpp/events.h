/*
 * events.h - the XMPP hooks modules attach to (core/hook.h), with the event
 * each one carries. Hooks run per host (the user's domain) on the shard that
 * owns the session or user: sessions and home-shard state may be touched
 * directly from a handler.
 *
 *   c2s_session_bound   struct c2s *      a resource was bound (home shard)
 *   c2s_session_closed  struct c2s *      the session ended; it is already
 *                                         out of the session manager
 *   user_send_packet    stanza_event      a client sent a stanza ('from'
 *                                         stamped); PL_DONE: the handler
 *                                         took el (routing it or not)
 *   user_receive_packet stanza_event      el is about to be written to
 *                                         session s (el is not the
 *                                         handler's); PL_DONE: don't
 *   sm_local_deliver    stanza_event      a stanza for a local user reached
 *                                         its home shard (s is NULL);
 *                                         PL_DONE: the handler took el
 *   offline_message     stanza_event      a message found no available
 *                                         resource; PL_DONE: stored (took
 *                                         el); otherwise it bounces
 *   presence_out        stanza_event      presence the server sends to a
 *                                         contact on a user's behalf
 *                                         (broadcast, probe answers); the
 *                                         user's home shard, s NULL;
 *                                         PL_DONE: not sent (took el)
 *   c2s_stream_features features_event    <stream:features/> about to be
 *                                         sent (before authentication only
 *                                         once SASL is offered); handlers
 *                                         add children
 *   c2s_unauthenticated_iq stanza_event   an iq before authentication (on
 *                                         the accepting shard; el has no
 *                                         'from'); PL_DONE: the handler took
 *                                         el and answers with c2s_send();
 *                                         otherwise the stream is closed
 */
#ifndef PL_XMPP_EVENTS_H
#define PL_XMPP_EVENTS_H

struct c2s;
struct hook;
struct xml_node;

struct stanza_event {
	struct c2s *s;
	struct xml_node *el;
	const char *host;
};

struct features_event {
	struct c2s *s;
	struct xml_node *features;
	int authenticated;
};

struct xmpp_hooks {
	struct hook *session_bound;
	struct hook *session_closed;
	struct hook *user_send;
	struct hook *user_receive;
	struct hook *local_deliver;
	struct hook *offline_message;
	struct hook *presence_out;
	struct hook *stream_features;
	struct hook *unauth_iq;
};

/* Filled by xmpp_register_commands() at startup; read-only afterwards. */
extern struct xmpp_hooks xmpp_hooks;

#endif
