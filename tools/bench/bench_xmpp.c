/*
 * bench_xmpp.c - the client side of an XMPP c2s stream (RFC 6120) as a load
 * generator needs it: STARTTLS or direct TLS, SASL PLAIN, resource binding,
 * initial presence, one-to-one chat messages, and XEP-0077 registration.
 *
 * Login is pipelined by default: the stream header travels with <auth/>,
 * and the restarted stream's header with the bind request and presence, so
 * a login costs the server's speed, not the client's round trips. The two
 * waits left are the ones RFC 6120 requires (SASL success, TLS proceed).
 *
 * Message bodies carry "b SENDER SEQ STAMP": STAMP is the send time (open
 * loop: the scheduled send time) on this process's monotonic clock, so the
 * receiving half of the same process computes the latency.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/bench/bench.h"

#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define MAX_REPORTED_ERRORS 8
#define SEND_LIT(c, lit) net_send((c), (lit), sizeof(lit) - 1)

enum { EL_OK = 0, EL_CLOSE = -1, EL_STOP = 1 };

static unsigned errors_reported;

void xmpp_note_error(const char *fmt, ...)
{
	char msg[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!B.st.first_error[0])
		snprintf(B.st.first_error, sizeof(B.st.first_error), "%s", msg);
	if (errors_reported < MAX_REPORTED_ERRORS && !B.o.quiet)
		fprintf(stderr, "parley-bench: %s\n", msg);
	else if (errors_reported == MAX_REPORTED_ERRORS && !B.o.quiet)
		fprintf(stderr, "parley-bench: (further errors only counted)\n");
	errors_reported++;
}

static uint32_t user_no(const struct bconn *c)
{
	return B.o.first + c->idx;
}

static void send_header(struct bconn *c)
{
	c->scan.depth = 0;
	net_sendf(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
		  "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>",
		  B.o.domain);
}

static size_t b64(const unsigned char *in, size_t n, char *out)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? tab[v & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

static void send_scram(struct bconn *c)
{
	char user[300], first[1500];
	snprintf(user, sizeof(user), "%s%u", B.o.prefix, user_no(c));
	int sha256 = B.o.sasl == SASL_SCRAM_SHA256;
	c->scram = bscram_start(sha256, user, NULL, first, sizeof(first));
	if (!c->scram)
		return;
	net_sendf(c, "<auth xmlns='" NS_SASL "' mechanism='%s'>%s</auth>",
		  sha256 ? "SCRAM-SHA-256" : "SCRAM-SHA-1", first);
	c->state = BC_WAIT_CHALLENGE;
}

static void send_auth(struct bconn *c)
{
	if (B.o.sasl != SASL_PLAIN) {
		send_scram(c);
		return;
	}
	unsigned char raw[600];
	int n = snprintf((char *)raw + 1, sizeof(raw) - 1, "%s%u", B.o.prefix, user_no(c));
	if (n < 0 || (size_t)n + strlen(B.o.password) + 3 > sizeof(raw))
		return;
	raw[0] = '\0';
	size_t len = 1 + (size_t)n + 1;
	raw[len - 1] = '\0';
	memcpy(raw + len, B.o.password, strlen(B.o.password));
	len += strlen(B.o.password);
	char enc[820];
	b64(raw, len, enc);
	net_sendf(c, "<auth xmlns='" NS_SASL "' mechanism='PLAIN'>%s</auth>", enc);
	c->state = BC_WAIT_SUCCESS;
}

static void send_bind(struct bconn *c)
{
	net_sendf(c, "<iq type='set' id='bind'><bind xmlns='" NS_BIND "'><resource>%s</resource>"
		  "</bind></iq>", B.o.resource);
	if (B.o.presence)
		SEND_LIT(c, "<presence/>");
	c->state = BC_WAIT_BIND;
}

static void send_register(struct bconn *c)
{
	net_sendf(c, "<iq type='set' id='reg'><query xmlns='jabber:iq:register'>"
		  "<username>%s%u</username><password>%s</password></query></iq>",
		  B.o.prefix, user_no(c), B.o.password);
	c->state = BC_WAIT_REGISTER;
}

static void begin_stream(struct bconn *c)
{
	send_header(c);
	if (B.o.tls == TLS_STARTTLS && !c->tls_started) {
		if (B.o.pipeline) {
			SEND_LIT(c, "<starttls xmlns='" NS_TLS "'/>");
			c->state = BC_WAIT_PROCEED;
		} else {
			c->state = BC_WAIT_FEATURES;
		}
		return;
	}
	if (!B.o.pipeline)
		c->state = BC_WAIT_FEATURES;
	else if (B.o.mode == MODE_REGISTER)
		send_register(c);
	else
		send_auth(c);
}

void xmpp_on_connected(struct bconn *c)
{
	if (B.o.tls == TLS_DIRECT) {
		net_start_tls(c);
		return;
	}
	begin_stream(c);
}

void xmpp_on_tls_ready(struct bconn *c)
{
	begin_stream(c);
}

static bool logging_in(enum bconn_state st)
{
	return st >= BC_CONNECTING && st <= BC_WAIT_BIND;
}

static void on_challenge(struct bconn *c, const char *el, size_t len)
{
	if (c->state != BC_WAIT_CHALLENGE || !c->scram) {
		xmpp_on_closed(c, "unexpected SASL challenge");
		return;
	}
	size_t n = 0;
	const char *gt = memchr(el, '>', len);
	const char *text = gt && gt[-1] != '/' ? gt + 1 : NULL;
	const char *lt = text ? memchr(text, '<', (size_t)(el + len - text)) : NULL;
	if (lt)
		n = (size_t)(lt - text);
	char resp[1500];
	if (!lt || bscram_respond(c->scram, B.o.password, text, n, resp, sizeof(resp)) < 0) {
		xmpp_on_closed(c, "malformed SCRAM challenge");
		return;
	}
	net_sendf(c, "<response xmlns='" NS_SASL "'>%s</response>", resp);
	c->state = BC_WAIT_SUCCESS;
}

void xmpp_on_closed(struct bconn *c, const char *why)
{
	if (c->fd < 0)
		return;
	enum bconn_state was = (enum bconn_state)c->state;
	net_close(c);
	if (was == BC_CLOSING)
		return;
	if (was == BC_ONLINE) {
		B.online--;
		if (B.phase != PH_DONE) {
			B.st.dropped++;
			xmpp_note_error("%s%u: session lost: %s", B.o.prefix, user_no(c), why);
		}
		return;
	}
	xmpp_note_error("%s%u: %s: %s", B.o.prefix, user_no(c),
			was == BC_WAIT_REGISTER ? "registration failed" : "login failed", why);
	if (was == BC_WAIT_REGISTER)
		B.st.reg_failed++;
	if (logging_in(was) || was == BC_WAIT_REGISTER)
		bench_login_done(c, false);
}

/* Say goodbye politely: the server closes, and we close on its EOF. */
static void finish_stream(struct bconn *c)
{
	SEND_LIT(c, "</stream:stream>");
	c->state = BC_CLOSING;
}

static bool attr_is(const char *el, size_t len, const char *name, const char *want)
{
	size_t n;
	const char *v = scan_attr(el, len, name, &n);
	return v && n == strlen(want) && memcmp(v, want, n) == 0;
}

/* The first child's name of an element (the condition of an error). */
static void first_child(const char *el, size_t len, char *out, size_t outlen)
{
	out[0] = '\0';
	const char *gt = memchr(el, '>', len);
	if (!gt || gt[-1] == '/')
		return;
	const char *lt = memchr(gt, '<', (size_t)(el + len - gt));
	if (!lt || lt + 1 >= el + len || lt[1] == '/')
		return;
	size_t n;
	const char *name = scan_name(lt, (size_t)(el + len - lt), &n);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, name, n);
	out[n] = '\0';
}

static int on_features(struct bconn *c)
{
	switch (c->state) {
	case BC_WAIT_FEATURES:
		if (B.o.tls == TLS_STARTTLS && !c->tls_started) {
			SEND_LIT(c, "<starttls xmlns='" NS_TLS "'/>");
			c->state = BC_WAIT_PROCEED;
		} else if (B.o.mode == MODE_REGISTER) {
			send_register(c);
		} else {
			send_auth(c);
		}
		break;
	case BC_WAIT_FEATURES2:
		send_bind(c);
		break;
	default:
		break;   /* pipelined: already answered */
	}
	return EL_OK;
}

static int on_sasl_result(struct bconn *c, const char *el, size_t len, bool ok)
{
	if (c->state != BC_WAIT_SUCCESS)
		return EL_OK;
	if (!ok) {
		char cond[64];
		first_child(el, len, cond, sizeof(cond));
		xmpp_on_closed(c, cond[0] ? cond : "SASL failure");
		return EL_CLOSE;
	}
	if (c->scram) {
		/* RFC 5802 §5.1 v=: the server must prove it holds the keys. */
		const char *gt = memchr(el, '>', len);
		const char *text = gt && gt[-1] != '/' ? gt + 1 : NULL;
		const char *lt = text ? memchr(text, '<', (size_t)(el + len - text)) : NULL;
		if (!lt || bscram_verify(c->scram, text, (size_t)(lt - text)) < 0) {
			xmpp_on_closed(c, "SCRAM server signature missing or wrong");
			return EL_CLOSE;
		}
		bscram_free(c->scram);
		c->scram = NULL;
	}
	/* The stream restarts right after <success/>: what follows in this
	 * read is the server's new header. */
	send_header(c);
	if (B.o.pipeline)
		send_bind(c);
	else
		c->state = BC_WAIT_FEATURES2;
	return EL_OK;
}

static int on_iq(struct bconn *c, const char *el, size_t len)
{
	size_t n;
	const char *type = scan_attr(el, len, "type", &n);
	bool result = type && n == 6 && memcmp(type, "result", 6) == 0;
	if (c->state == BC_WAIT_BIND && attr_is(el, len, "id", "bind")) {
		if (!result) {
			xmpp_on_closed(c, "bind refused");
			return EL_CLOSE;
		}
		c->state = BC_ONLINE;
		bench_login_done(c, true);
		return EL_OK;
	}
	if (c->state == BC_WAIT_REGISTER && attr_is(el, len, "id", "reg")) {
		if (result) {
			B.st.registered++;
		} else if (memmem(el, len, "<conflict", 9)) {
			B.st.reg_exists++;
		} else {
			B.st.reg_failed++;
			xmpp_note_error("%s%u: registration refused", B.o.prefix, user_no(c));
		}
		bench_login_done(c, result || memmem(el, len, "<conflict", 9));
		finish_stream(c);
		return EL_OK;
	}
	if (type && ((n == 3 && memcmp(type, "get", 3) == 0) ||
		     (n == 3 && memcmp(type, "set", 3) == 0))) {
		/* Answer the server's pings; refuse anything else politely. */
		size_t idn, fromn;
		const char *id = scan_attr(el, len, "id", &idn);
		const char *from = scan_attr(el, len, "from", &fromn);
		bool ping = memmem(el, len, "urn:xmpp:ping", 13) != NULL;
		net_sendf(c, "<iq type='%s' id='%.*s'%s%.*s%s>%s</iq>", ping ? "result" : "error",
			  id ? (int)idn : 0, id ? id : "", from ? " to='" : "",
			  from ? (int)fromn : 0, from ? from : "", from ? "'" : "",
			  ping ? "" : "<error type='cancel'><service-unavailable "
			  "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>");
	}
	return EL_OK;
}

static bool parse_u64(const char **p, const char *end, uint64_t *out)
{
	const char *s = *p;
	while (s < end && *s == ' ')
		s++;
	if (s >= end || *s < '0' || *s > '9')
		return false;
	uint64_t v = 0;
	while (s < end && *s >= '0' && *s <= '9')
		v = v * 10 + (uint64_t)(*s++ - '0');
	*p = s;
	*out = v;
	return true;
}

static bool in_window(uint64_t t)
{
	return B.t_win_start && t >= B.t_win_start && t < B.t_win_end;
}

static void on_message(struct bconn *c, const char *el, size_t len)
{
	if (attr_is(el, len, "type", "error")) {
		/* Our own message bounced: it will never arrive, so it stops
		 * counting against this sender's window. */
		B.st.stanza_errors++;
		char cond[64] = "";
		const char *e = memmem(el, len, "<error", 6);
		if (e)
			first_child(e, (size_t)(el + len - e), cond, sizeof(cond));
		xmpp_note_error("%s%u: message bounced: %s", B.o.prefix, user_no(c),
				cond[0] ? cond : "error");
		if (c->inflight)
			c->inflight--;
		if (B.phase == PH_WARMUP || B.phase == PH_MEASURE)
			xmpp_chat_fill(c, bench_now());
		return;
	}
	size_t n;
	const char *body = scan_child_text(el, len, "body", &n);
	if (!body)
		return;   /* chat states and the like: not ours */
	const char *p = body, *end = body + n;
	uint64_t sender, seq, stamp;
	if (n < 2 || p[0] != 'b' || p[1] != ' ') {
		B.st.bad_messages++;
		return;
	}
	p += 2;
	if (!parse_u64(&p, end, &sender) || !parse_u64(&p, end, &seq) ||
	    !parse_u64(&p, end, &stamp) || sender < B.o.first ||
	    sender - B.o.first >= B.o.users) {
		B.st.bad_messages++;
		return;
	}
	uint64_t now = bench_now();
	struct bconn *from = &B.conns[sender - B.o.first];
	if (from->idx != (c->idx ^ 1u))
		B.st.bad_messages++;   /* delivered to someone else's partner */
	if (seq != c->rx_seq)
		B.st.seq_errors++;     /* lost, duplicated or reordered */
	c->rx_seq = (uint32_t)seq + 1;
	uint64_t lat = now > stamp ? now - stamp : 0;
	B.st.received++;
	hist_add(&B.st.tick_lat, lat);
	if (in_window(now))
		B.st.win_received++;
	if (in_window(stamp))
		hist_add(&B.st.lat, lat);
	if (B.o.rate > 0)
		return;
	if (from->inflight)
		from->inflight--;
	if (B.phase == PH_WARMUP || B.phase == PH_MEASURE)
		xmpp_chat_fill(from, now);
}

static int on_element(struct bconn *c, const char *el, size_t len)
{
	size_t n;
	const char *name = scan_name(el, len, &n);
#define IS(lit) (n == sizeof(lit) - 1 && memcmp(name, lit, n) == 0)
	if (IS("message")) {
		if (c->state == BC_ONLINE)
			on_message(c, el, len);
		return EL_OK;
	}
	if (IS("presence"))
		return EL_OK;
	if (IS("iq"))
		return on_iq(c, el, len);
	if (IS("features"))
		return on_features(c);
	if (IS("success"))
		return on_sasl_result(c, el, len, true);
	if (IS("failure")) {
		if (c->state == BC_WAIT_PROCEED) {
			xmpp_on_closed(c, "STARTTLS refused");
			return EL_CLOSE;
		}
		return on_sasl_result(c, el, len, false);
	}
	if (IS("proceed")) {
		if (c->state != BC_WAIT_PROCEED)
			return EL_OK;
		if (net_start_tls(c) < 0)
			return EL_CLOSE;
		return EL_STOP;
	}
	if (IS("challenge")) {
		on_challenge(c, el, len);
		return c->fd < 0 ? EL_CLOSE : EL_OK;
	}
	if (IS("error")) {
		char cond[64];
		first_child(el, len, cond, sizeof(cond));
		B.st.stream_errors++;
		char why[96];
		snprintf(why, sizeof(why), "stream error %s", cond[0] ? cond : "(none)");
		xmpp_on_closed(c, why);
		return EL_CLOSE;
	}
#undef IS
	return EL_OK;
}

int xmpp_on_data(struct bconn *c, const char *data, size_t len)
{
	size_t pos = 0, s = 0, e = 0;
	for (;;) {
		enum scan_event ev = scan_next(&c->scan, data, len, &pos, &s, &e);
		switch (ev) {
		case SCAN_NEED_MORE:
			if (pos < len) {
				size_t keep = len - pos;
				c->in = malloc(keep < 1024 ? 1024 : keep);
				if (!c->in)
					exit(2);
				memcpy(c->in, data + pos, keep);
				c->in_len = (uint32_t)keep;
				c->in_cap = (uint32_t)(keep < 1024 ? 1024 : keep);
			}
			return 0;
		case SCAN_ERROR:
			xmpp_on_closed(c, "the server sent something that is not an XMPP stream");
			return -1;
		case SCAN_STREAM_OPEN:
			continue;
		case SCAN_STREAM_CLOSE:
			xmpp_on_closed(c, "the server closed the stream");
			return -1;
		case SCAN_ELEMENT: {
			int r = on_element(c, data + s, e - s);
			if (r == EL_CLOSE)
				return -1;
			if (r == EL_STOP)
				return 0;
			if (c->fd < 0)
				return -1;
			continue;
		}
		}
	}
}

/* ---- chat ---- */

static char pad[4096];

void xmpp_chat_send(struct bconn *c, uint64_t stamp)
{
	char head[64];
	int hl = snprintf(head, sizeof(head), "b %u %u %llu", user_no(c), c->tx_seq,
			  (unsigned long long)stamp);
	int padn = (int)B.o.body - hl - 1;
	if (padn < 0)
		padn = 0;
	if (padn > (int)sizeof(pad))
		padn = (int)sizeof(pad);
	if (!pad[0])
		memset(pad, 'x', sizeof(pad));
	const struct bconn *to = &B.conns[c->idx ^ 1u];
	net_sendf(c, "<message to='%s%u@%s/%s' type='chat' id='m%u'><body>%s%s%.*s</body></message>",
		  B.o.prefix, user_no(to), B.o.domain, B.o.resource, c->tx_seq, head,
		  padn ? " " : "", padn, pad);
	c->tx_seq++;
	c->inflight++;
	B.st.sent++;
	if (in_window(stamp))
		B.st.win_sent++;
}

void xmpp_chat_fill(struct bconn *c, uint64_t now)
{
	if (c->state != BC_ONLINE || B.conns[c->idx ^ 1u].state != BC_ONLINE)
		return;
	while (c->inflight < B.o.inflight)
		xmpp_chat_send(c, now);
}
