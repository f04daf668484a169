/*
 * stun_server.c - the `stun` listen module: Binding over UDP and TCP.
 *
 * A Binding request gets the source address back (RFC 8489 section 3):
 * XOR-MAPPED-ADDRESS for current clients and MAPPED-ADDRESS for those that
 * predate it. Other methods get 400 (TURN is not served yet), unknown
 * comprehension-required attributes 420. Anything that is not STUN is
 * dropped without a word: answering noise would make the server a reflector.
 *
 * State: none per datagram (the response is built on the stack); one
 * reassembly buffer per TCP connection, owned by the connection's shard.
 */
#include "ice/stun.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "core/conn.h"
#include "core/log.h"
#include "core/pl.h"

/* Largest response we build: header, two addresses, ERROR-CODE,
 * UNKNOWN-ATTRIBUTES with STUN_MAX_UNKNOWN types, SOFTWARE, FINGERPRINT. */
#define STUN_RESP_MAX 512
/* More unknown attributes than this are not listed: the response must not
 * grow with what a stranger puts in a datagram. */
#define STUN_MAX_UNKNOWN 16

static bool attr_understood(const struct stun_attr *a)
{
	switch (a->type) {
	case STUN_A_MAPPED_ADDRESS:
	case STUN_A_USERNAME:
	case STUN_A_MESSAGE_INTEGRITY:
	case STUN_A_ERROR_CODE:
	case STUN_A_UNKNOWN_ATTRIBUTES:
	case STUN_A_REALM:
	case STUN_A_NONCE:
	case STUN_A_MESSAGE_INTEGRITY_SHA256:
	case STUN_A_PASSWORD_ALGORITHM:
	case STUN_A_USERHASH:
	case STUN_A_XOR_MAPPED_ADDRESS:
		return true;
	case STUN_A_CHANGE_REQUEST:
		/* We have no second address or port: a request to answer from
		 * one is refused with 420, which is how RFC 5780 clients learn
		 * that the server cannot do it. Flags 0 (RFC 3489 clients send
		 * that in every test) ask for nothing we cannot do. */
		return a->len == 4 && (a->val[3] & 0x06) == 0;
	default:
		return !stun_attr_required(a->type);
	}
}

/* Comprehension-required attributes we do not understand, up to the limit.
 * Attributes after MESSAGE-INTEGRITY are ignored (RFC 8489 14.5): they are
 * not covered by it, so they cannot make a request fail either. */
static size_t unknown_attrs(const struct stun_msg *m, uint16_t *out)
{
	struct stun_attr a;
	size_t pos = 0, n = 0;
	while (n < STUN_MAX_UNKNOWN && stun_attr_next(m, &pos, &a)) {
		if (m->integrity_off && a.off > m->integrity_off)
			break;
		if (!attr_understood(&a))
			out[n++] = a.type;
	}
	return n;
}

int stun_server_respond(const uint8_t *req, size_t n, const struct sockaddr *peer,
			uint8_t *out, size_t cap)
{
	struct stun_msg m;
	if (stun_parse(req, n, STUN_PARSE_CLASSIC, &m) != STUN_PARSE_OK)
		return -1;
	if (stun_class_of(m.type) != STUN_REQUEST)
		return 0;

	uint16_t method = stun_method(m.type);
	uint16_t unknown[STUN_MAX_UNKNOWN];
	size_t nunknown = method == STUN_BINDING ? unknown_attrs(&m, unknown) : 0;
	struct stun_builder b;

	if (method != STUN_BINDING) {
		stun_build_start(&b, out, cap, stun_type(method, STUN_ERROR), m.cookie, m.tid);
		stun_put_error(&b, 400, "Bad Request");
	} else if (nunknown) {
		stun_build_start(&b, out, cap, stun_type(method, STUN_ERROR), m.cookie, m.tid);
		stun_put_error(&b, 420, "Unknown Attribute");
		stun_put_unknown(&b, unknown, nunknown);
	} else {
		stun_build_start(&b, out, cap, stun_type(method, STUN_SUCCESS), m.cookie, m.tid);
		/* RFC 8489 12.2: an RFC 3489 client gets its cookie field back
		 * and MAPPED-ADDRESS only; it would not know the XOR form. */
		if (!m.classic)
			stun_put_addr(&b, STUN_A_XOR_MAPPED_ADDRESS, peer, true);
		stun_put_addr(&b, STUN_A_MAPPED_ADDRESS, peer, false);
	}
	stun_put_attr(&b, STUN_A_SOFTWARE, STUN_SOFTWARE, strlen(STUN_SOFTWARE));
	if (m.fingerprint)
		stun_put_fingerprint(&b);
	return (int)stun_build_finish(&b);
}

/* One complete message from a stream: PL_ERR if it was not STUN. */
static int stream_answer(const uint8_t *msg, size_t n, const struct sockaddr *peer,
			 stun_stream_reply_fn *reply, void *arg)
{
	uint8_t out[STUN_RESP_MAX];
	int rc = stun_server_respond(msg, n, peer, out, sizeof out);
	if (rc < 0)
		return PL_ERR;
	if (rc > 0)
		reply(arg, out, (size_t)rc);
	return PL_OK;
}

int stun_stream_feed(struct stun_stream *s, const uint8_t *data, size_t n,
		     const struct sockaddr *peer, stun_stream_reply_fn *reply, void *arg)
{
	while (n > 0) {
		size_t have = buf_used(&s->in);
		long fl;

		if (have == 0) {
			/* Whole messages are answered straight from the read
			 * buffer; only a tail that is cut short is copied. */
			fl = stun_frame_len(data, n);
			if (fl < 0)
				return PL_ERR;
			if (fl == 0 || (size_t)fl > n) {
				buf_append(&s->in, data, n);
				return PL_OK;
			}
			if (stream_answer(data, (size_t)fl, peer, reply, arg) != PL_OK)
				return PL_ERR;
			data += fl;
			n -= (size_t)fl;
			continue;
		}

		fl = stun_frame_len(buf_head(&s->in), have);
		size_t want = fl > 0 ? (size_t)fl - have : STUN_HDR_LEN - have;
		size_t take = want < n ? want : n;
		buf_append(&s->in, data, take);
		data += take;
		n -= take;
		have += take;

		fl = stun_frame_len(buf_head(&s->in), have);
		if (fl < 0)
			return PL_ERR;
		if (fl > 0 && have == (size_t)fl) {
			int rc = stream_answer(buf_head(&s->in), have, peer, reply, arg);
			buf_consume(&s->in, have);
			if (rc != PL_OK)
				return PL_ERR;
		}
	}
	return PL_OK;
}

void stun_stream_free(struct stun_stream *s)
{
	buf_free(&s->in);
}

static const char *addr_str(const struct sockaddr *sa, char *out, size_t outlen)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip);
		port = ntohs(sin->sin_port);
		snprintf(out, outlen, "%s:%u", ip, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof ip);
		port = ntohs(sin6->sin6_port);
		snprintf(out, outlen, "[%s]:%u", ip, port);
	} else {
		snprintf(out, outlen, "?");
	}
	return out;
}

static void stun_udp_datagram(struct listen_udp *u, const uint8_t *data, size_t len,
			      const struct sockaddr *peer, socklen_t plen)
{
	uint8_t out[STUN_RESP_MAX];
	char who[64];
	int rc = stun_server_respond(data, len, peer, out, sizeof out);
	if (rc > 0)
		listen_udp_send(u, out, (size_t)rc, peer, plen);
	log_debug("stun: udp %s: %zu bytes, %s", addr_str(peer, who, sizeof who), len,
		  rc > 0 ? "answered" : rc == 0 ? "no answer needed" : "not STUN, dropped");
}

static void stun_tcp_reply(void *arg, const uint8_t *resp, size_t n)
{
	conn_write(arg, resp, n);
}

static void stun_tcp_data(struct conn *c, const uint8_t *data, size_t len)
{
	struct stun_stream *s = c->proto;
	if (!s || c->state != CONN_OPEN)
		return;
	if (stun_stream_feed(s, data, len, (const struct sockaddr *)&c->peer,
			     stun_tcp_reply, c) == PL_OK)
		return;
	char peer[64];
	log_debug("stun: %s: not STUN, closing", conn_peer_str(c, peer, sizeof peer));
	conn_close(c);
}

static void stun_tcp_close(struct conn *c, int err)
{
	PL_UNUSED(err);
	struct stun_stream *s = c->proto;
	if (!s)
		return;
	stun_stream_free(s);
	free(s);
	c->proto = NULL;
}

static const struct conn_handler stun_conn_handler = {
	.on_data = stun_tcp_data,
	.on_close = stun_tcp_close,
};

static void stun_tcp_accept(const struct listen_cfg *lc, int fd,
			    const struct sockaddr *peer, socklen_t plen)
{
	PL_UNUSED(lc);
	struct stun_stream *s = pl_calloc(1, sizeof *s);
	if (!conn_new(fd, peer, plen, &stun_conn_handler, s)) {
		free(s);    /* conn_new closed fd */
	}
}

const struct listen_module stun_listen_module = {
	.name = "stun",
	.transports = LISTEN_TCP | LISTEN_UDP,
	.accept = stun_tcp_accept,
	.datagram = stun_udp_datagram,
	.implemented = 1,
};
