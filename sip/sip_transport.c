/*
 * sip_transport.c - the `sip` listen module: UDP datagrams and TCP streams.
 *
 * UDP: one datagram is one message (RFC 3261 18.3); Content-Length, when
 * present, must not promise more than arrived. A datagram that starts like
 * STUN is a keepalive (RFC 5626 4.4.2) and is answered as the STUN server
 * would. TCP: messages are framed by Content-Length, which is mandatory on
 * streams, and bounded by SIP_MAX_MSG; a stream that breaks framing gets a
 * 400 (or 513) if its headers are readable, then is closed, because nothing
 * after it can be trusted to start a message.
 */
#include "sip/sip.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/conn.h"
#include "core/log.h"
#include "core/pl.h"
#include "ice/stun.h"

static bool is_wsp(char c) { return c == ' ' || c == '\t'; }

/* One header line (no CRLF): is it Content-Length (or compact "l")?
 * Returns PL_DECLINED if not, PL_OK with the value, PL_ERR if malformed. */
static int content_length_line(const char *p, size_t n, size_t *val)
{
	const char *colon = memchr(p, ':', n);
	if (!colon || n == 0 || is_wsp(p[0]))
		return PL_DECLINED;
	size_t nl = (size_t)(colon - p);
	while (nl > 0 && is_wsp(p[nl - 1]))
		nl--;
	if (!((nl == 14 && strncasecmp(p, "Content-Length", 14) == 0) ||
	      (nl == 1 && (p[0] == 'l' || p[0] == 'L'))))
		return PL_DECLINED;

	const char *v = colon + 1, *end = p + n;
	while (v < end && is_wsp(*v))
		v++;
	size_t x = 0, digits = 0;
	while (v < end && isdigit((unsigned char)*v)) {
		/* Nine digits already exceed any message we accept. */
		if (++digits > 9)
			return PL_ERR;
		x = x * 10 + (size_t)(*v++ - '0');
	}
	while (v < end && is_wsp(*v))
		v++;
	if (digits == 0 || v != end)
		return PL_ERR;
	*val = x;
	return PL_OK;
}

int sip_content_length(const char *h, size_t n, size_t *len)
{
	const char *end = h + n;
	/* The start line cannot be a header. */
	const char *p = memchr(h, '\n', n);
	bool found = false;
	size_t val = 0;

	while (p && ++p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t ll = (size_t)((eol ? eol : end) - p);
		if (ll > 0 && p[ll - 1] == '\r')
			ll--;
		size_t v;
		int rc = content_length_line(p, ll, &v);
		if (rc == PL_ERR)
			return PL_ERR;
		if (rc == PL_OK) {
			if (found && v != val)
				return PL_ERR;
			found = true;
			val = v;
		}
		p = eol;
	}
	if (!found)
		return PL_DECLINED;
	*len = val;
	return PL_OK;
}

/* Frame the message at p. Returns its length once complete, 0 while more
 * is needed, -1 on a framing error (*hlen: readable header bytes, 0 if
 * none; *code and *why: what to answer). *scanned and *total carry progress
 * between calls so that a message trickling in is not rescanned. */
static long frame(const uint8_t *p, size_t n, size_t *scanned, size_t *total,
		  size_t *hlen, int *code, const char **why)
{
	*hlen = 0;
	if (*total == 0) {
		size_t lim = n < SIP_MAX_MSG ? n : SIP_MAX_MSG;
		size_t from = *scanned > 3 ? *scanned - 3 : 0;
		const uint8_t *e = lim > from ? memmem(p + from, lim - from, "\r\n\r\n", 4) : NULL;
		if (!e) {
			*scanned = lim;
			if (n < SIP_MAX_MSG)
				return 0;
			*code = 513;
			*why = "Message Too Large";
			return -1;
		}
		size_t hl = (size_t)(e - p) + 4, cl;
		int rc = sip_content_length((const char *)p, hl, &cl);
		if (rc != PL_OK) {
			*hlen = hl;
			*code = 400;
			*why = rc == PL_DECLINED ? "Missing Content-Length"
						 : "Invalid Content-Length";
			return -1;
		}
		if (cl > SIP_MAX_MSG - hl) {
			*hlen = hl;
			*code = 513;
			*why = "Message Too Large";
			return -1;
		}
		*total = hl + cl;
	}
	return n >= *total ? (long)*total : 0;
}

static size_t skip_crlf(const uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < n && (p[i] == '\r' || p[i] == '\n'))
		i++;
	return i;
}

int sip_stream_feed(struct sip_stream *s, const uint8_t *data, size_t n,
		    sip_stream_msg_fn *fn, void *arg)
{
	size_t hl;
	int code;
	const char *why;

	/* Fast path: whole messages straight from the read buffer. */
	while (buf_used(&s->in) == 0 && n > 0) {
		size_t k = skip_crlf(data, n);
		data += k;
		n -= k;
		if (n == 0)
			return PL_OK;
		s->scanned = s->total = 0;
		long fl = frame(data, n, &s->scanned, &s->total, &hl, &code, &why);
		if (fl < 0) {
			fn(arg, (const char *)data, hl, code, why);
			return PL_ERR;
		}
		if (fl == 0) {
			buf_append(&s->in, data, n);
			return PL_OK;
		}
		s->scanned = s->total = 0;
		if (fn(arg, (const char *)data, (size_t)fl, 0, NULL) != PL_OK)
			return PL_ERR;
		data += fl;
		n -= (size_t)fl;
	}
	if (n == 0)
		return PL_OK;

	/* A message is in pieces: collect, then frame from the buffer. */
	buf_append(&s->in, data, n);
	/* (An empty buf has no data pointer: check before every buf_head.) */
	while (buf_used(&s->in) > 0) {
		size_t k = skip_crlf(buf_head(&s->in), buf_used(&s->in));
		if (k) {
			buf_consume(&s->in, k);
			s->scanned = s->total = 0;
			continue;
		}
		long fl = frame(buf_head(&s->in), buf_used(&s->in), &s->scanned,
				&s->total, &hl, &code, &why);
		if (fl < 0) {
			fn(arg, (const char *)buf_head(&s->in), hl, code, why);
			return PL_ERR;
		}
		if (fl == 0)
			return PL_OK;
		int rc = fn(arg, (const char *)buf_head(&s->in), (size_t)fl, 0, NULL);
		buf_consume(&s->in, (size_t)fl);
		s->scanned = s->total = 0;
		if (rc != PL_OK)
			return PL_ERR;
	}
	return PL_OK;
}

void sip_stream_free(struct sip_stream *s)
{
	buf_free(&s->in);
}

static void sip_udp_datagram(struct listen_udp *u, const uint8_t *data, size_t len,
			     const struct sockaddr *peer, socklen_t plen)
{
	/* A SIP message starts with a letter; STUN's first two bits are 0. */
	if (len > 0 && (data[0] & 0xC0) == 0) {
		uint8_t resp[512];
		int rc = stun_server_respond(data, len, peer, resp, sizeof resp);
		if (rc > 0)
			listen_udp_send(u, resp, (size_t)rc, peer, plen);
		return;
	}
	size_t k = skip_crlf(data, len);
	if (k == len)
		return;     /* CRLF keepalive */
	data += k;
	len -= k;

	int code = 0;
	const char *why = NULL;
	const uint8_t *e = memmem(data, len, "\r\n\r\n", 4);
	if (e) {
		size_t hl = (size_t)(e - data) + 4, cl;
		int rc = sip_content_length((const char *)data, hl, &cl);
		if (rc == PL_ERR) {
			code = 400;
			why = "Invalid Content-Length";
		} else if (rc == PL_OK && cl > len - hl) {
			code = 400;
			why = "Content-Length Exceeds Body";
		} else if (rc == PL_OK) {
			len = hl + cl;  /* bytes past the body are not ours */
		}
	}

	struct sip_origin o = {
		.tp = SIP_TP_UDP, .peer = peer, .peer_len = plen, .listen_ip = u->lc->ip,
	};
	struct buf out = { 0 };
	if (sip_handle((const char *)data, len, code, why, &o, &out) == SIP_ANSWER)
		listen_udp_send(u, buf_head(&out), buf_used(&out),
				(const struct sockaddr *)&o.reply_to, o.reply_len);
	buf_free(&out);
}

struct sip_tcp {
	struct sip_stream s;
	struct conn *c;
	const struct listen_cfg *lc;
};

static int sip_tcp_msg(void *arg, const char *msg, size_t len, int code, const char *why)
{
	struct sip_tcp *t = arg;
	struct sip_origin o = {
		.tp = SIP_TP_TCP,
		.peer = (const struct sockaddr *)&t->c->peer,
		.peer_len = t->c->peer_len,
		.listen_ip = t->lc->ip,
	};
	struct buf out = { 0 };
	enum sip_verdict v = len ? sip_handle(msg, len, code, why, &o, &out) : SIP_DROP;
	if (v == SIP_ANSWER)
		conn_write(t->c, buf_head(&out), buf_used(&out));
	buf_free(&out);
	return v == SIP_DROP ? PL_ERR : PL_OK;
}

static void sip_tcp_data(struct conn *c, const uint8_t *data, size_t len)
{
	struct sip_tcp *t = c->proto;
	if (!t || c->state != CONN_OPEN)
		return;
	if (sip_stream_feed(&t->s, data, len, sip_tcp_msg, t) == PL_OK)
		return;
	char peer[64];
	log_debug("sip: %s: malformed stream, closing", conn_peer_str(c, peer, sizeof peer));
	conn_close(c);
}

static void sip_tcp_close(struct conn *c, int err)
{
	PL_UNUSED(err);
	struct sip_tcp *t = c->proto;
	if (!t)
		return;
	sip_stream_free(&t->s);
	free(t);
	c->proto = NULL;
}

static const struct conn_handler sip_conn_handler = {
	.on_data = sip_tcp_data,
	.on_close = sip_tcp_close,
};

static void sip_tcp_accept(const struct listen_cfg *lc, int fd,
			   const struct sockaddr *peer, socklen_t plen)
{
	struct sip_tcp *t = pl_calloc(1, sizeof *t);
	t->lc = lc;
	t->c = conn_new(fd, peer, plen, &sip_conn_handler, t);
	if (!t->c) {
		free(t);    /* conn_new closed fd */
	}
}

const struct listen_module sip_listen_module = {
	.name = "sip",
	.transports = LISTEN_TCP | LISTEN_UDP,
	.accept = sip_tcp_accept,
	.datagram = sip_udp_datagram,
	.implemented = 1,
};
