/*
 * c2s.c - client-to-server streams (RFC 6120): stream header, STARTTLS,
 * SASL (SCRAM-SHA-256, SCRAM-SHA-1, PLAIN over TLS), resource binding, then
 * stanzas routed with the session's full JID stamped as 'from'.
 *
 * A session is owned by its conn's shard. Credential look-ups go to the
 * storage pool and come back to the same shard; a session waiting for one
 * holds a reference so that a client who disconnects meanwhile cannot free
 * it under the callback. At bind the conn moves to the user's home shard
 * (xmpp.h); stanzas parsed from the same read after the bind request wait in
 * a small queue and are handled there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/rand.h>

#include "core/cfg.h"
#include "core/conn.h"
#include "core/hook.h"
#include "core/log.h"
#include "core/pl.h"
#include "core/scram.h"
#include "core/shard.h"
#include "core/tls.h"
#include "core/users.h"
#include "xmpp/events.h"
#include "xmpp/jid.h"
#include "xmpp/sm.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

#define C2S_MAX_SASL_FAILURES 5
/* Stanzas a client may send while a module holds its unbound stream. */
#define C2S_MAX_HELD 16
/* A stream quiet this long gives its XML parser back (about 16 KB of a
 * session's 20); re-creating it costs about 1.3 us on the next stanza, so
 * streams busier than this keep theirs. Measured at 5,000 idle sessions:
 * 10.1 KiB of RSS each with 2 s, 3.5 KiB with 250 ms. */
#define C2S_IDLE_SHRINK_MS 250

enum c2s_state {
	C2S_WAIT_HEADER,    /* expecting <stream:stream> */
	C2S_NEGOTIATE,      /* features sent, before authentication */
	C2S_SASL,           /* in a SASL exchange */
	C2S_AUTHED,         /* authenticated; expecting bind */
	C2S_MOVING,         /* bind requested; conn on its way to the home shard */
	C2S_BOUND,          /* a session: stanzas flow */
	C2S_CLOSED,
};

enum sasl_mech { MECH_PLAIN, MECH_SCRAM_SHA1, MECH_SCRAM_SHA256 };

struct c2s_pending {
	struct c2s_pending *next;
	struct xml_node *el;
};

struct c2s {
	struct conn *conn;
	struct xml_stream *xs;
	const struct listen_cfg *lc;
	struct c2s *prev, *next;        /* the owning shard's list */
	enum c2s_state state;
	int refs;                       /* conn + pending storage calls */
	uint8_t header_sent;
	uint8_t sasl_failures;
	uint8_t available;
	uint8_t in_sm;
	uint8_t awaiting_tls;           /* <proceed/> sent, handshake not done */
	uint8_t holds;                  /* c2s_hold() calls not yet released */
	uint8_t npending;               /* stanzas waiting for a release */
	int8_t priority;
	enum sasl_mech mech;
	bool mech_plus;
	struct scram_server *scram;
	char *host;                     /* our domain, from the stream's 'to' */
	char *user;                     /* authenticated local part */
	char *resource;
	char *jid;                      /* full JID once bound */
	char *bind_id;                  /* id of the bind iq, answered after the move */
	struct c2s_pending *pending, *pending_tail;
	struct ev_timer idle_timer;
	uint64_t last_rx_ms;
	void *slots[C2S_SLOTS];
	char stream_id[17];
};

struct c2s_shard {
	struct c2s *head;
	size_t count;
};

static __thread struct buf out_buf;

static void c2s_unref(struct c2s *s);
static void c2s_handle_stanza(struct c2s *s, struct xml_node *el);

static struct c2s_shard *c2s_shard_state(void)
{
	return shard_self()->subsys[SHARD_SLOT_SPARE1];
}

static void c2s_link(struct c2s *s)
{
	struct c2s_shard *cs = c2s_shard_state();
	s->prev = NULL;
	s->next = cs->head;
	if (cs->head)
		cs->head->prev = s;
	cs->head = s;
	cs->count++;
}

static void c2s_unlink(struct c2s *s)
{
	struct c2s_shard *cs = c2s_shard_state();
	if (s->prev)
		s->prev->next = s->next;
	else if (cs->head == s)
		cs->head = s->next;
	else
		return;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	cs->count--;
}

const char *c2s_full_jid(const struct c2s *s)
{
	return s->jid ? s->jid : "";
}

const char *c2s_user(const struct c2s *s)
{
	return s->user;
}

const char *c2s_host(const struct c2s *s)
{
	return s->host;
}

const char *c2s_resource(const struct c2s *s)
{
	return s->resource;
}

void *c2s_get_data(const struct c2s *s, enum c2s_slot slot)
{
	return s->slots[slot];
}

void c2s_set_data(struct c2s *s, enum c2s_slot slot, void *data)
{
	s->slots[slot] = data;
}

int c2s_priority(const struct c2s *s)
{
	return s->priority;
}

bool c2s_available(const struct c2s *s)
{
	return s->available;
}

static void c2s_write(struct c2s *s, const char *text)
{
	if (s->conn)
		conn_write_str(s->conn, text);
}

void c2s_send(struct c2s *s, const struct xml_node *el)
{
	if (!s->conn || s->state == C2S_CLOSED)
		return;
	if (s->state == C2S_BOUND) {
		struct stanza_event ev = { s, (struct xml_node *)el, s->host };
		if (hook_run(xmpp_hooks.user_receive, s->host, &ev) == PL_DONE)
			return;
	}
	buf_reset(&out_buf);
	xml_serialize(el, NS_CLIENT, &out_buf);
	conn_write(s->conn, buf_head(&out_buf), buf_used(&out_buf));
	if (out_buf.cap > 65536)
		buf_free(&out_buf);   /* one huge stanza should not pin memory */
}

static void c2s_send_header(struct c2s *s)
{
	if (s->header_sent)
		return;
	char hdr[512];
	RAND_bytes((unsigned char *)s->stream_id, 8);
	static const char hex[] = "0123456789abcdef";
	uint8_t raw[8];
	memcpy(raw, s->stream_id, 8);
	for (int i = 0; i < 8; i++) {
		s->stream_id[2 * i] = hex[raw[i] >> 4];
		s->stream_id[2 * i + 1] = hex[raw[i] & 15];
	}
	s->stream_id[16] = '\0';
	buf_reset(&out_buf);
	xml_escape(&out_buf, s->host ? s->host : (cfg->hosts[0]), strlen(s->host ? s->host : cfg->hosts[0]), 1);
	snprintf(hdr, sizeof(hdr),
		 "<?xml version='1.0'?><stream:stream xmlns='" NS_CLIENT "' xmlns:stream='"
		 NS_STREAMS "' id='%s' from='%.*s' version='1.0' xml:lang='en'>",
		 s->stream_id, (int)buf_used(&out_buf), (const char *)buf_head(&out_buf));
	c2s_write(s, hdr);
	s->header_sent = 1;
}

void c2s_stream_error(struct c2s *s, const char *condition, const char *text)
{
	if (s->state == C2S_CLOSED || !s->conn)
		return;
	char peer[64];
	log_info("c2s: %s %s: stream error %s%s%s", conn_peer_str(s->conn, peer, sizeof(peer)),
		 s->jid ? s->jid : "", condition, text ? ": " : "", text ? text : "");
	c2s_send_header(s);
	struct xml_node *e = xml_new("error", NS_STREAMS);
	xml_add_child(e, condition, NS_STREAM_ERRORS);
	if (text) {
		struct xml_node *t = xml_add_child(e, "text", NS_STREAM_ERRORS);
		xml_set_attr(t, "xml:lang", "en");
		xml_add_text(t, text, strlen(text));
	}
	c2s_send(s, e);
	xml_free(e);
	c2s_write(s, "</stream:stream>");
	s->state = C2S_CLOSED;
	conn_close(s->conn);
}

static bool c2s_tls_required(const struct c2s *s)
{
	const struct cfg_node *v = cfg_map_get(s->lc->node, "starttls_required");
	bool req = true;
	if (v)
		cfg_node_bool(v, "starttls_required", &req, NULL, 0);
	return req;
}

static bool c2s_plain_allowed(const struct c2s *s)
{
	if (conn_is_tls(s->conn))
		return true;
	const struct cfg_node *v = cfg_map_get(s->lc->node, "allow_unencrypted_plain");
	bool ok = false;
	if (v)
		cfg_node_bool(v, "allow_unencrypted_plain", &ok, NULL, 0);
	return ok;
}

/* XEP-0440: the channel binding types a -PLUS mechanism may use here.
 * tls-unique is only defined for TLS 1.2 (RFC 9266), so it is advertised
 * there only; it is still accepted under TLS 1.3 from clients that compute
 * it from the Finished message. */
static const char *const c2s_cb_types[] = { "tls-exporter", "tls-server-end-point", "tls-unique" };

static void c2s_add_cb_types(struct c2s *s, struct xml_node *features)
{
	struct xml_node *cb = xml_add_child(features, "sasl-channel-binding", "urn:xmpp:sasl-cb:0");
	bool tls13 = SSL_version(s->conn->ssl) >= TLS1_3_VERSION;
	for (size_t i = 0; i < PL_ARRAY_LEN(c2s_cb_types); i++) {
		if ((tls13 && strcmp(c2s_cb_types[i], "tls-unique") == 0) ||
		    !tls_binding_usable(s->conn->ssl, c2s_cb_types[i]))
			continue;
		xml_set_attr(xml_add_child(cb, "channel-binding", NULL), "type", c2s_cb_types[i]);
	}
}

static void c2s_send_features(struct c2s *s)
{
	struct xml_node *f = xml_new("features", NS_STREAMS);
	if (s->state == C2S_AUTHED) {
		xml_add_child(f, "bind", NS_BIND);
		struct xml_node *sess = xml_add_child(f, "session", NS_SESSION);
		xml_add_child(sess, "optional", NULL);
		struct features_event fev = { s, f, 1 };
		hook_run(xmpp_hooks.stream_features, s->host, &fev);
	} else {
		bool tls = conn_is_tls(s->conn);
		if (!tls) {
			struct xml_node *st = xml_add_child(f, "starttls", NS_TLS);
			if (c2s_tls_required(s))
				xml_add_child(st, "required", NULL);
		}
		if (tls || !c2s_tls_required(s)) {
			struct xml_node *m = xml_add_child(f, "mechanisms", NS_SASL);
			if (tls) {
				xml_add_text(xml_add_child(m, "mechanism", NULL), "SCRAM-SHA-256-PLUS", 18);
				xml_add_text(xml_add_child(m, "mechanism", NULL), "SCRAM-SHA-1-PLUS", 16);
			}
			xml_add_text(xml_add_child(m, "mechanism", NULL), "SCRAM-SHA-256", 13);
			xml_add_text(xml_add_child(m, "mechanism", NULL), "SCRAM-SHA-1", 11);
			if (c2s_plain_allowed(s))
				xml_add_text(xml_add_child(m, "mechanism", NULL), "PLAIN", 5);
			if (tls)
				c2s_add_cb_types(s, f);
			struct features_event fev = { s, f, 0 };
			hook_run(xmpp_hooks.stream_features, s->host, &fev);
		}
	}
	c2s_send(s, f);
	xml_free(f);
}

/* ---- stream parser callbacks ---- */

static void c2s_on_stream_open(void *ud, struct xml_node *st)
{
	struct c2s *s = ud;
	const char *to = xml_attr(st, "to");
	const char *version = xml_attr(st, "version");
	bool version_ok = version && strncmp(version, "1.", 2) == 0;
	if (s->state != C2S_WAIT_HEADER) {
		xml_free(st);
		c2s_stream_error(s, "invalid-xml", "unexpected stream header");
		return;
	}
	if (!to || !cfg_is_local_host(to)) {
		xml_free(st);
		c2s_stream_error(s, "host-unknown", "this server does not serve that domain");
		return;
	}
	if (!s->host) {
		s->host = pl_strdup(to);
		for (char *p = s->host; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p + 32);
	} else if (strcasecmp(s->host, to) != 0) {
		xml_free(st);
		c2s_stream_error(s, "host-unknown", "the domain changed during negotiation");
		return;
	}
	xml_free(st);
	const char *ns = xml_stream_content_ns(s->xs);
	if (strcmp(ns, NS_CLIENT) != 0) {
		c2s_stream_error(s, "invalid-namespace", "the stream's default namespace must be jabber:client");
		return;
	}
	c2s_send_header(s);
	if (!version_ok) {
		c2s_stream_error(s, "unsupported-version", "version 1.0 is required");
		return;
	}
	s->state = s->user ? C2S_AUTHED : C2S_NEGOTIATE;
	c2s_send_features(s);
}

static void c2s_on_stream_close(void *ud)
{
	struct c2s *s = ud;
	if (s->state == C2S_CLOSED)
		return;
	c2s_write(s, "</stream:stream>");
	s->state = C2S_CLOSED;
	conn_close(s->conn);
}

static void c2s_on_xml_error(void *ud, enum xml_stream_error e, const char *detail)
{
	struct c2s *s = ud;
	c2s_stream_error(s, xml_stream_error_condition(e), detail);
}

static void c2s_on_stanza(void *ud, struct xml_node *el)
{
	struct c2s *s = ud;
	if (s->state == C2S_CLOSED) {
		xml_free(el);
		return;
	}
	if (s->holds && s->state != C2S_MOVING) {
		/* A module is answering an earlier request; keep the order. */
		if (++s->npending > C2S_MAX_HELD) {
			xml_free(el);
			c2s_stream_error(s, "policy-violation", "too many requests at once");
			return;
		}
	}
	if (s->state == C2S_MOVING || s->holds) {
		struct c2s_pending *p = pl_malloc(sizeof(*p));
		p->el = el;
		p->next = NULL;
		if (s->pending_tail)
			s->pending_tail->next = p;
		else
			s->pending = p;
		s->pending_tail = p;
		return;
	}
	c2s_handle_stanza(s, el);
}

static const struct xml_stream_handler c2s_xml_handler = {
	.stream_open = c2s_on_stream_open,
	.stanza = c2s_on_stanza,
	.stream_close = c2s_on_stream_close,
	.error = c2s_on_xml_error,
};

/* ---- conn callbacks ---- */

static void c2s_on_data(struct conn *c, const uint8_t *data, size_t len)
{
	struct c2s *s = c->proto;
	while (len > 0 && s->state != C2S_CLOSED) {
		int rc = xml_stream_feed(s->xs, (const char *)data, len);
		if (rc != PL_AGAIN)
			break;
		/* A restart (SASL success) stopped the parser: the rest is the
		 * new stream. After STARTTLS the client must wait for
		 * <proceed/>, so anything more is discarded (conn_read stops). */
		if (s->awaiting_tls)
			break;
		size_t used = xml_stream_consumed(s->xs);
		data += used;
		len -= used;
	}
	if (s->state == C2S_CLOSED || s->state == C2S_MOVING)
		return;
	s->last_rx_ms = ev_now(c->loop);
	if (!ev_timer_active(&s->idle_timer))
		ev_timer_start(c->loop, &s->idle_timer, C2S_IDLE_SHRINK_MS);
}

/* Re-armed at most once per period however busy the stream is: reads only
 * record their time. */
static void c2s_idle_check(struct ev_loop *loop, struct ev_timer *t)
{
	struct c2s *s = t->data;
	if (s->state == C2S_CLOSED || s->state == C2S_MOVING || !s->conn)
		return;
	uint64_t quiet = ev_now(loop) - s->last_rx_ms;
	if (quiet < C2S_IDLE_SHRINK_MS) {
		ev_timer_start(loop, t, C2S_IDLE_SHRINK_MS - quiet);
		return;
	}
	if (xml_stream_idle(s->xs))
		xml_stream_shrink(s->xs);
}

static void c2s_free(struct c2s *s)
{
	struct c2s_pending *p = s->pending;
	while (p) {
		struct c2s_pending *n = p->next;
		xml_free(p->el);
		free(p);
		p = n;
	}
	if (s->scram) {
		scram_server_clear(s->scram);
		free(s->scram);
	}
	xml_stream_free(s->xs);
	free(s->host);
	free(s->user);
	free(s->resource);
	free(s->jid);
	free(s->bind_id);
	free(s);
}

static void c2s_unref(struct c2s *s)
{
	if (--s->refs == 0)
		c2s_free(s);
}

void c2s_hold(struct c2s *s)
{
	s->refs++;
	s->holds++;
}

void c2s_release(struct c2s *s)
{
	s->holds--;
	while (!s->holds && s->pending && s->conn && s->state != C2S_CLOSED &&
	       s->state != C2S_MOVING) {
		struct c2s_pending *p = s->pending;
		s->pending = p->next;
		if (!s->pending)
			s->pending_tail = NULL;
		s->npending--;
		struct xml_node *el = p->el;
		free(p);
		c2s_handle_stanza(s, el);
	}
	if (!s->holds)
		s->npending = 0;
	c2s_unref(s);
}

const char *c2s_peer_ip(const struct c2s *s, char *out, size_t outlen)
{
	const struct sockaddr_storage *ss = &s->conn->peer;
	const void *addr = &((const struct sockaddr_in *)(const void *)ss)->sin_addr;
	int family = AF_INET;
	if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)ss)->sin6_addr;
		/* A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d. */
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			addr = &a6->s6_addr[12];
		} else {
			addr = a6;
			family = AF_INET6;
		}
	}
	if (!inet_ntop(family, addr, out, (socklen_t)outlen))
		snprintf(out, outlen, "?");
	return out;
}

static void c2s_on_close(struct conn *c, int err)
{
	struct c2s *s = c->proto;
	PL_UNUSED(err);
	if (s->in_sm) {
		char *bare = pl_malloc(strlen(s->user) + strlen(s->host) + 2);
		sprintf(bare, "%s@%s", s->user, s->host);
		sm_session_remove(s, bare, s->resource);
		free(bare);
		s->in_sm = 0;
		log_info("c2s: %s: session closed", s->jid);
		hook_run(xmpp_hooks.session_closed, s->host, s);
	}
	c2s_unlink(s);
	ev_timer_stop(c->loop, &s->idle_timer);
	s->state = C2S_CLOSED;
	s->conn = NULL;
	c2s_unref(s);
}

static void c2s_on_tls(struct conn *c)
{
	struct c2s *s = c->proto;
	s->state = C2S_WAIT_HEADER;
	s->header_sent = 0;
	s->awaiting_tls = 0;
}

static const struct conn_handler c2s_conn_handler = {
	.on_data = c2s_on_data,
	.on_close = c2s_on_close,
	.on_tls = c2s_on_tls,
};

static void c2s_accept_common(const struct listen_cfg *lc, int fd, const struct sockaddr *peer,
			      socklen_t plen, bool direct_tls)
{
	struct c2s *s = pl_calloc(1, sizeof(*s));
	s->lc = lc;
	s->refs = 1;
	s->state = C2S_WAIT_HEADER;
	s->xs = xml_stream_new(&c2s_xml_handler, s, lc->max_stanza_size);
	ev_timer_init(&s->idle_timer, c2s_idle_check, s);
	s->conn = conn_new(fd, peer, plen, &c2s_conn_handler, s);
	if (!s->conn) {
		c2s_free(s);
		return;
	}
	c2s_link(s);
	if (direct_tls)
		conn_starttls(s->conn, tls_ctx_for(NULL));
}

static void c2s_accept(const struct listen_cfg *lc, int fd, const struct sockaddr *peer,
		       socklen_t plen)
{
	c2s_accept_common(lc, fd, peer, plen, false);
}

static void c2s_tls_accept(const struct listen_cfg *lc, int fd, const struct sockaddr *peer,
			   socklen_t plen)
{
	c2s_accept_common(lc, fd, peer, plen, true);
}

static const char *const c2s_options[] = { "starttls_required", "allow_unencrypted_plain", NULL };

const struct listen_module c2s_listen_module = {
	.name = "c2s",
	.transports = LISTEN_TCP,
	.options = c2s_options,
	.accept = c2s_accept,
	.implemented = 1,
};

const struct listen_module c2s_tls_listen_module = {
	.name = "c2s_tls",
	.transports = LISTEN_TCP,
	.options = c2s_options,
	.accept = c2s_tls_accept,
	.implemented = 1,
};

/* ---- STARTTLS ---- */

static void c2s_starttls(struct c2s *s, struct xml_node *el)
{
	xml_free(el);
	if (conn_is_tls(s->conn) || s->state != C2S_NEGOTIATE) {
		c2s_stream_error(s, "policy-violation", "STARTTLS is not allowed now");
		return;
	}
	c2s_write(s, "<proceed xmlns='" NS_TLS "'/>");
	xml_stream_restart(s->xs);
	s->awaiting_tls = 1;
	s->state = C2S_WAIT_HEADER;
	conn_starttls(s->conn, tls_ctx_for(s->host));
}

/* ---- SASL (RFC 6120 §6) ---- */

static void sasl_failure(struct c2s *s, const char *condition, const char *text)
{
	buf_reset(&out_buf);
	buf_printf(&out_buf, "<failure xmlns='" NS_SASL "'><%s/>", condition);
	if (text)
		buf_printf(&out_buf, "<text xml:lang='en'>%s</text>", text);
	buf_append_str(&out_buf, "</failure>");
	c2s_write(s, buf_cstr(&out_buf));
	if (s->scram) {
		scram_server_clear(s->scram);
		free(s->scram);
		s->scram = NULL;
	}
	s->state = C2S_NEGOTIATE;
	if (strcmp(condition, "aborted") != 0 && ++s->sasl_failures >= C2S_MAX_SASL_FAILURES)
		c2s_stream_error(s, "policy-violation", "too many failed authentication attempts");
}

static void sasl_success(struct c2s *s, const char *user, const char *additional)
{
	char peer[64];
	free(s->user);
	s->user = pl_strdup(user);
	log_info("c2s: %s: %s@%s authenticated (%s)", conn_peer_str(s->conn, peer, sizeof(peer)),
		 s->user, s->host,
		 s->mech == MECH_PLAIN ? "PLAIN" : s->mech == MECH_SCRAM_SHA1 ?
		 (s->mech_plus ? "SCRAM-SHA-1-PLUS" : "SCRAM-SHA-1") :
		 (s->mech_plus ? "SCRAM-SHA-256-PLUS" : "SCRAM-SHA-256"));
	buf_reset(&out_buf);
	buf_append_str(&out_buf, "<success xmlns='" NS_SASL "'");
	if (additional) {
		buf_append_str(&out_buf, ">");
		buf_append_str(&out_buf, additional);
		buf_append_str(&out_buf, "</success>");
	} else {
		buf_append_str(&out_buf, "/>");
	}
	c2s_write(s, buf_cstr(&out_buf));
	s->state = C2S_WAIT_HEADER;
	s->header_sent = 0;
	xml_stream_restart(s->xs);
}

/* Decode base64 SASL data; "=" means empty (RFC 6120 §6.4.2). */
static long sasl_decode(const char *b64, uint8_t *out, size_t outlen)
{
	if (strcmp(b64, "=") == 0)
		return 0;
	size_t n = strlen(b64);
	if (n == 0)
		return 0;
	return base64_decode(b64, n, out, outlen);
}

/* Local part normalised the way JIDs are (so "Alice" logs in as alice). */
static char *sasl_normalize_user(const struct c2s *s, const char *user, size_t len)
{
	if (len == 0 || len > 1023)
		return NULL;
	size_t n = len + strlen(s->host) + 2;
	char *tmp = pl_malloc(n);
	snprintf(tmp, n, "%.*s@%s", (int)len, user, s->host);
	struct jid j;
	char *r = NULL;
	if (jid_parse(tmp, strlen(tmp), &j) == PL_OK) {
		if (j.local && !j.resource)
			r = pl_strdup(j.local);
		jid_free(&j);
	}
	free(tmp);
	return r;
}

struct sasl_plain_call {
	struct c2s *s;
	char *user;
};

static void sasl_plain_done(void *arg, int status)
{
	struct sasl_plain_call *pc = arg;
	struct c2s *s = pc->s;
	if (s->state == C2S_SASL && s->conn) {
		if (status == USERS_OK)
			sasl_success(s, pc->user, NULL);
		else if (status == USERS_FAILED)
			sasl_failure(s, "temporary-auth-failure", NULL);
		else
			sasl_failure(s, "not-authorized", NULL);
	}
	free(pc->user);
	free(pc);
	c2s_unref(s);
}

static void sasl_plain(struct c2s *s, const uint8_t *msg, size_t len)
{
	/* authzid NUL authcid NUL passwd */
	const uint8_t *z1 = memchr(msg, 0, len);
	const uint8_t *z2 = z1 ? memchr(z1 + 1, 0, len - (size_t)(z1 + 1 - msg)) : NULL;
	if (!z1 || !z2) {
		sasl_failure(s, "malformed-request", NULL);
		return;
	}
	const char *authcid = (const char *)z1 + 1;
	size_t authcid_len = (size_t)(z2 - (z1 + 1));
	size_t pwlen = len - (size_t)(z2 + 1 - msg);
	char *user = sasl_normalize_user(s, authcid, authcid_len);
	if (!user || pwlen == 0) {
		free(user);
		sasl_failure(s, "not-authorized", NULL);
		return;
	}
	if (z1 != msg) {
		/* An authzid other than the user's own JID is not allowed. */
		size_t zl = (size_t)(z1 - msg);
		size_t want = strlen(user) + 1 + strlen(s->host);
		char *self = pl_malloc(want + 1);
		snprintf(self, want + 1, "%s@%s", user, s->host);
		int ok = zl == want && memcmp(msg, self, zl) == 0;
		free(self);
		if (!ok) {
			free(user);
			sasl_failure(s, "invalid-authzid", NULL);
			return;
		}
	}
	char *pw = pl_strndup((const char *)z2 + 1, pwlen);
	struct sasl_plain_call *pc = pl_malloc(sizeof(*pc));
	pc->s = s;
	pc->user = user;
	s->refs++;
	users_check_password(s->host, user, pw, sasl_plain_done, pc);
	OPENSSL_cleanse(pw, pwlen);
	free(pw);
}

static void sasl_scram_creds(void *arg, int status, const struct user_creds *creds)
{
	struct c2s *s = arg;
	if (s->state == C2S_SASL && s->conn && s->scram) {
		if (status == USERS_OK) {
			const struct scram_creds *c = s->mech == MECH_SCRAM_SHA1 ? &creds->sha1 : &creds->sha256;
			struct buf sf = { 0 };
			if (scram_server_first(s->scram, c, &sf) == PL_OK) {
				char *b64 = pl_malloc(buf_used(&sf) * 2 + 8);
				base64_encode(buf_head(&sf), buf_used(&sf), b64, buf_used(&sf) * 2 + 8);
				buf_reset(&out_buf);
				buf_printf(&out_buf, "<challenge xmlns='" NS_SASL "'>%s</challenge>", b64);
				c2s_write(s, buf_cstr(&out_buf));
				free(b64);
			} else {
				sasl_failure(s, "temporary-auth-failure", NULL);
			}
			buf_free(&sf);
		} else if (status == USERS_FAILED) {
			sasl_failure(s, "temporary-auth-failure", NULL);
		} else {
			/* Unknown user: the same answer as a wrong password. */
			sasl_failure(s, "not-authorized", NULL);
		}
	}
	c2s_unref(s);
}

static void c2s_auth(struct c2s *s, struct xml_node *el)
{
	if (s->state != C2S_NEGOTIATE) {
		xml_free(el);
		c2s_stream_error(s, "policy-violation", "authentication is not allowed now");
		return;
	}
	if (!conn_is_tls(s->conn) && c2s_tls_required(s)) {
		xml_free(el);
		sasl_failure(s, "encryption-required", NULL);
		return;
	}
	const char *mech = xml_attr(el, "mechanism");
	bool tls = conn_is_tls(s->conn);
	int plain = mech && strcmp(mech, "PLAIN") == 0 && c2s_plain_allowed(s);
	int sha1 = mech && (strcmp(mech, "SCRAM-SHA-1") == 0 ||
			    (tls && strcmp(mech, "SCRAM-SHA-1-PLUS") == 0));
	int sha256 = mech && (strcmp(mech, "SCRAM-SHA-256") == 0 ||
			      (tls && strcmp(mech, "SCRAM-SHA-256-PLUS") == 0));
	bool plus = mech && strstr(mech, "-PLUS") != NULL;
	uint8_t msg[4096];
	long len = sasl_decode(xml_text(el), msg, sizeof(msg));
	xml_free(el);
	if (!plain && !sha1 && !sha256) {
		sasl_failure(s, "invalid-mechanism", NULL);
		return;
	}
	if (len < 0) {
		sasl_failure(s, "incorrect-encoding", NULL);
		return;
	}
	s->state = C2S_SASL;
	if (plain) {
		s->mech = MECH_PLAIN;
		if (len == 0) {
			c2s_write(s, "<challenge xmlns='" NS_SASL "'/>");
			return;
		}
		sasl_plain(s, msg, (size_t)len);
		return;
	}
	s->mech = sha1 ? MECH_SCRAM_SHA1 : MECH_SCRAM_SHA256;
	s->mech_plus = plus;
	s->scram = pl_calloc(1, sizeof(*s->scram));
	s->scram->plus = plus;
	s->scram->cb_offered = tls;
	const char *why = "malformed-request";
	if (len == 0 || scram_server_client_first(s->scram, sha1 ? SCRAM_SHA1 : SCRAM_SHA256,
						  (const char *)msg, (size_t)len, &why) != PL_OK) {
		sasl_failure(s, why, NULL);
		return;
	}
	if (s->scram->cb_name[0]) {
		s->scram->cb_len = tls_channel_binding(s->conn->ssl, s->scram->cb_name,
						       s->scram->cb_data, sizeof(s->scram->cb_data));
		if (s->scram->cb_len == 0) {
			sasl_failure(s, "malformed-request", "unsupported channel binding type");
			return;
		}
	}
	char *user = sasl_normalize_user(s, s->scram->username, strlen(s->scram->username));
	if (!user) {
		sasl_failure(s, "not-authorized", NULL);
		return;
	}
	free(s->scram->username);
	s->scram->username = user;
	s->refs++;
	users_get_creds(s->host, user, sasl_scram_creds, s);
}

static void c2s_sasl_response(struct c2s *s, struct xml_node *el)
{
	if (s->state != C2S_SASL) {
		xml_free(el);
		c2s_stream_error(s, "policy-violation", "no SASL exchange in progress");
		return;
	}
	uint8_t msg[4096];
	long len = sasl_decode(xml_text(el), msg, sizeof(msg));
	xml_free(el);
	if (len < 0) {
		sasl_failure(s, "incorrect-encoding", NULL);
		return;
	}
	if (s->mech == MECH_PLAIN) {
		sasl_plain(s, msg, (size_t)len);
		return;
	}
	if (!s->scram || !s->scram->server_first) {
		sasl_failure(s, "malformed-request", NULL);
		return;
	}
	struct buf sfin = { 0 };
	const char *why = "not-authorized";
	if (scram_server_final(s->scram, (const char *)msg, (size_t)len, &sfin, &why) != PL_OK) {
		buf_free(&sfin);
		sasl_failure(s, why, NULL);
		return;
	}
	char *b64 = pl_malloc(buf_used(&sfin) * 2 + 8);
	base64_encode(buf_head(&sfin), buf_used(&sfin), b64, buf_used(&sfin) * 2 + 8);
	buf_free(&sfin);
	char *user = pl_strdup(s->scram->username);
	scram_server_clear(s->scram);
	free(s->scram);
	s->scram = NULL;
	sasl_success(s, user, b64);
	free(user);
	free(b64);
}

/* ---- resource binding (RFC 6120 §7) and the move to the home shard ---- */

static void c2s_iq_error(struct c2s *s, struct xml_node *el, const char *type, const char *cond)
{
	struct xml_node *r = xml_new("iq", NS_CLIENT);
	xml_set_attr(r, "type", "error");
	xml_set_attr(r, "id", xml_attr(el, "id"));
	stanza_add_error(r, type, cond, NULL);
	c2s_send(s, r);
	xml_free(r);
}

static void c2s_make_resource(char *out, size_t outlen)
{
	uint8_t rnd[8];
	RAND_bytes(rnd, sizeof(rnd));
	snprintf(out, outlen, "parley-%02x%02x%02x%02x%02x%02x%02x%02x",
		 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
}

/* The full JID is taken (resource_conflict). closeold is done by
 * sm_session_add; closenew refuses this bind (RFC 6120 §7.7.2.2) and lets
 * the client try again; setresource gives this session another resource. */
static int c2s_resolve_conflict(struct c2s *s)
{
	if (cfg->resource_conflict == RESOURCE_CLOSEOLD)
		return PL_OK;
	if (cfg->resource_conflict == RESOURCE_CLOSENEW) {
		buf_reset(&out_buf);
		buf_append_str(&out_buf, "<iq type='error' id='");
		xml_escape(&out_buf, s->bind_id, strlen(s->bind_id), 1);
		buf_append_str(&out_buf, "'><error type='cancel'><conflict xmlns='" NS_STANZA_ERRORS
			       "'/></error></iq>");
		c2s_write(s, buf_cstr(&out_buf));
		free(s->bind_id);
		free(s->resource);
		free(s->jid);
		s->bind_id = s->resource = s->jid = NULL;
		s->state = C2S_AUTHED;
		return PL_ERR;
	}
	char res[40];
	c2s_make_resource(res, sizeof(res));
	size_t n = strlen(s->user) + strlen(s->host) + strlen(res) + 3;
	free(s->resource);
	free(s->jid);
	s->resource = pl_strdup(res);
	s->jid = pl_malloc(n);
	snprintf(s->jid, n, "%s@%s/%s", s->user, s->host, res);
	return PL_OK;
}

static void c2s_arrived(struct conn *c)
{
	struct c2s *s = c->proto;
	c2s_link(s);
	if (s->state == C2S_CLOSED || c->state != CONN_OPEN)
		return;
	char *bare = pl_malloc(strlen(s->user) + strlen(s->host) + 2);
	sprintf(bare, "%s@%s", s->user, s->host);
	if (!sm_find_session(bare, s->resource) || c2s_resolve_conflict(s) == PL_OK) {
		sm_session_add(s, bare, s->resource);
		s->in_sm = 1;
		s->state = C2S_BOUND;
		log_info("c2s: %s: session bound on shard %d", s->jid, c->shard);
		buf_reset(&out_buf);
		buf_append_str(&out_buf, "<iq type='result' id='");
		xml_escape(&out_buf, s->bind_id, strlen(s->bind_id), 1);
		buf_append_str(&out_buf, "'><bind xmlns='" NS_BIND "'><jid>");
		xml_escape(&out_buf, s->jid, strlen(s->jid), 0);
		buf_append_str(&out_buf, "</jid></bind></iq>");
		c2s_write(s, buf_cstr(&out_buf));
		free(s->bind_id);
		s->bind_id = NULL;
		hook_run(xmpp_hooks.session_bound, s->host, s);
	}
	free(bare);
	/* What the client sent after its bind request, in order: stanzas of
	 * the new session, or (bind refused) more negotiation. */
	while (s->pending && (s->state == C2S_BOUND || s->state == C2S_AUTHED)) {
		struct c2s_pending *p = s->pending;
		s->pending = p->next;
		if (!s->pending)
			s->pending_tail = NULL;
		struct xml_node *el = p->el;
		free(p);
		c2s_handle_stanza(s, el);
	}
	if (s->state == C2S_BOUND || s->state == C2S_AUTHED) {
		s->last_rx_ms = ev_now(c->loop);
		ev_timer_start(c->loop, &s->idle_timer, C2S_IDLE_SHRINK_MS);
	}
}

static void c2s_bind(struct c2s *s, struct xml_node *el, struct xml_node *bind)
{
	struct xml_node *res = xml_child(bind, "resource", NS_BIND);
	char *want = res ? xml_text(res) : NULL;
	char generated[40];
	if (!want || !*want) {
		c2s_make_resource(generated, sizeof(generated));
		want = generated;
	}
	size_t n = strlen(s->user) + strlen(s->host) + strlen(want) + 3;
	char *full = pl_malloc(n);
	snprintf(full, n, "%s@%s/%s", s->user, s->host, want);
	struct jid j;
	if (jid_parse(full, strlen(full), &j) != PL_OK || !j.resource) {
		free(full);
		c2s_iq_error(s, el, "modify", "bad-request");
		xml_free(el);
		return;
	}
	s->resource = pl_strdup(j.resource);
	s->jid = jid_full(&j);
	char *bare = jid_bare(&j);
	jid_free(&j);
	free(full);
	const char *id = xml_attr(el, "id");
	s->bind_id = pl_strdup(id ? id : "");
	xml_free(el);
	int home = shard_of_key(bare, strlen(bare));
	free(bare);
	s->state = C2S_MOVING;
	c2s_unlink(s);
	ev_timer_stop(s->conn->loop, &s->idle_timer);
	conn_move(s->conn, home, c2s_arrived);
}

/* ---- stanzas ---- */

static void c2s_update_presence(struct c2s *s, struct xml_node *el)
{
	const char *type = xml_attr(el, "type");
	if (type && strcmp(type, "unavailable") == 0) {
		s->available = 0;
		return;
	}
	if (type)
		return;   /* subscriptions and probes: roster handling, later */
	s->available = 1;
	struct xml_node *p = xml_child(el, "priority", NS_CLIENT);
	if (p) {
		long v = strtol(xml_text(p), NULL, 10);
		s->priority = (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
	}
}

static bool c2s_from_is_self(const struct c2s *s, const char *from)
{
	struct jid j;
	if (jid_parse(from, strlen(from), &j) != PL_OK)
		return false;
	bool ok = j.local && strcmp(j.local, s->user) == 0 && strcmp(j.domain, s->host) == 0 &&
		(!j.resource || strcmp(j.resource, s->resource) == 0);
	jid_free(&j);
	return ok;
}

static void c2s_handle_stanza(struct c2s *s, struct xml_node *el)
{
	const char *ns = el->ns;
	if (strcmp(ns, NS_TLS) == 0 && strcmp(el->name, "starttls") == 0) {
		c2s_starttls(s, el);
		return;
	}
	if (strcmp(ns, NS_SASL) == 0) {
		if (strcmp(el->name, "auth") == 0) {
			c2s_auth(s, el);
		} else if (strcmp(el->name, "response") == 0) {
			c2s_sasl_response(s, el);
		} else if (strcmp(el->name, "abort") == 0) {
			xml_free(el);
			if (s->state == C2S_SASL)
				sasl_failure(s, "aborted", NULL);
		} else {
			xml_free(el);
			c2s_stream_error(s, "unsupported-stanza-type", NULL);
		}
		return;
	}
	bool is_stanza = strcmp(ns, NS_CLIENT) == 0 &&
		(strcmp(el->name, "message") == 0 || strcmp(el->name, "presence") == 0 ||
		 strcmp(el->name, "iq") == 0);
	if (!is_stanza) {
		const char *cond = strcmp(ns, NS_CLIENT) == 0 || ns[0] == '\0'
			? (ns[0] ? "unsupported-stanza-type" : "invalid-namespace")
			: "unsupported-stanza-type";
		xml_free(el);
		c2s_stream_error(s, cond, NULL);
		return;
	}
	if (s->state == C2S_AUTHED && strcmp(el->name, "iq") == 0) {
		struct xml_node *bind = xml_child(el, "bind", NS_BIND);
		const char *type = xml_attr(el, "type");
		if (bind && type && strcmp(type, "set") == 0) {
			c2s_bind(s, el, bind);
			return;
		}
	}
	if (s->state == C2S_NEGOTIATE && strcmp(el->name, "iq") == 0 &&
	    (conn_is_tls(s->conn) || !c2s_tls_required(s))) {
		/* In-band registration (XEP-0077) before authentication. */
		struct stanza_event ev = { s, el, s->host };
		if (hook_run(xmpp_hooks.unauth_iq, s->host, &ev) == PL_DONE)
			return;
	}
	if (s->state != C2S_BOUND) {
		xml_free(el);
		c2s_stream_error(s, "not-authorized", "authenticate and bind a resource first");
		return;
	}
	/* Legacy session establishment (RFC 3921 §3): a no-op that must succeed. */
	if (strcmp(el->name, "iq") == 0 && xml_child(el, "session", NS_SESSION)) {
		struct xml_node *r = xml_new("iq", NS_CLIENT);
		xml_set_attr(r, "type", "result");
		xml_set_attr(r, "id", xml_attr(el, "id"));
		c2s_send(s, r);
		xml_free(r);
		xml_free(el);
		return;
	}
	if (strcmp(el->name, "iq") == 0) {
		const char *type = xml_attr(el, "type");
		const char *id = xml_attr(el, "id");
		if (!id || !type || (strcmp(type, "get") && strcmp(type, "set") &&
				     strcmp(type, "result") && strcmp(type, "error"))) {
			c2s_iq_error(s, el, "modify", "bad-request");
			xml_free(el);
			return;
		}
	}
	if (strcmp(el->name, "presence") == 0 && !xml_attr(el, "to"))
		c2s_update_presence(s, el);
	/* RFC 6120 §8.1.2.1: a 'from' the client gives must be its own bare
	 * or full JID (else invalid-from, §4.9.3.9); the server then stamps
	 * the full JID either way. */
	const char *claimed = xml_attr(el, "from");
	if (claimed && !c2s_from_is_self(s, claimed)) {
		xml_free(el);
		c2s_stream_error(s, "invalid-from", "the 'from' address is not this session's");
		return;
	}
	xml_set_attr(el, "from", s->jid);
	const char *to = xml_attr(el, "to");
	if (to) {
		struct jid j;
		if (jid_parse(to, strlen(to), &j) != PL_OK) {
			router_bounce(el, "modify", "jid-malformed");
			return;
		}
		jid_free(&j);
	}
	struct stanza_event ev = { s, el, s->host };
	if (hook_run(xmpp_hooks.user_send, s->host, &ev) == PL_DONE)
		return;
	if (strcmp(el->name, "presence") == 0 && !to) {
		/* Broadcast presence goes to contacts: mod_roster's job. */
		xml_free(el);
		return;
	}
	router_route(el);
}

/* ---- per shard ---- */

void c2s_shard_start(struct shard *sh)
{
	sh->subsys[SHARD_SLOT_SPARE1] = pl_calloc(1, sizeof(struct c2s_shard));
}

void c2s_shard_stop(struct shard *sh)
{
	struct c2s_shard *cs = sh->subsys[SHARD_SLOT_SPARE1];
	if (!cs)
		return;
	for (struct c2s *s = cs->head; s; s = s->next)
		c2s_stream_error(s, "system-shutdown", NULL);
}

size_t c2s_count_here(void)
{
	struct c2s_shard *cs = c2s_shard_state();
	return cs ? cs->count : 0;
}
